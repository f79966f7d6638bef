#!/usr/bin/env python
"""Pre-train ALBERT from scratch: a thin wrapper around minialbert.pretrain.train.main.

    python scripts/pretrain.py --corpus corpus.txt --output-dir out --hidden-size 256 ...
    torchrun --nproc_per_node 2 scripts/pretrain.py --corpus corpus.txt --output-dir out ...

See `python scripts/pretrain.py --help` for every flag.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from minialbert.errors import MinialbertError  # noqa: E402
from minialbert.pretrain.train import main  # noqa: E402

if __name__ == "__main__":
    try:
        sys.exit(main())
    except MinialbertError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
