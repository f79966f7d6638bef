#!/usr/bin/env python
"""Pre-train ALBERT from scratch: a thin wrapper around minialbert.pretrain.train.main.

    python scripts/pretrain.py --corpus corpus.txt --output-dir out --hidden-size 256 ...
    torchrun --nproc_per_node 2 scripts/pretrain.py --corpus corpus.txt --output-dir out ...

See `python scripts/pretrain.py --help` for every flag.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from minialbert.cli import main  # noqa: E402

if __name__ == "__main__":
    # The same as `minialbert pretrain ...`: a user mistake is one line on stderr and exit
    # status 1, a bad flag exits with 2.
    sys.exit(main(["pretrain", *sys.argv[1:]]))
