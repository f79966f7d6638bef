#!/usr/bin/env python
"""Fine-tune ALBERT on a labelled task: a thin wrapper around minialbert.finetune.train.main.

    python scripts/finetune.py --task classify --model albert-base-v2 --train train.tsv --dev dev.tsv \
        --text-column sentence --output-dir out

See `python scripts/finetune.py --help` for every flag, and the README's fine-tuning section.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from minialbert.errors import MinialbertError  # noqa: E402
from minialbert.finetune.train import main  # noqa: E402

if __name__ == "__main__":
    try:
        sys.exit(main())
    except MinialbertError as e:
        print(f"minialbert finetune: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:  # Ctrl-C: the run said where its state is
        sys.exit(130)
