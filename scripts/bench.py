"""Benchmark minialbert vs transformers (and ONNX Runtime): see minialbert/bench.py.

    python scripts/bench.py --quick            # ~2 minutes
    python scripts/bench.py --json bench.json  # the full run behind the README table
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minialbert.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
