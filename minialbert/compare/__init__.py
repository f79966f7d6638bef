"""Put runs side by side: pre-training and GLUE output folders in one self-contained HTML page.

    minialbert compare baseline/ no-sharing/ glue-baseline/ glue-no-sharing/ --output report.html

    from minialbert.compare import make_compare
    make_compare(["baseline", "glue-baseline"], "report.html")

The page (made as `minialbert inspect`'s is, with its code: minialbert/inspect/render.py and
charts.js) shows each model's parameter count and the part shared across layers, the
pre-training loss curves (MLM, SOP, validation) against steps and tokens, the GLUE table side by
side with the difference to the first run, the Figure 1 overlay on a fixed text, and the config
and training options that differ. runs.py reads the folders; report.py writes the page.
"""

from __future__ import annotations

import argparse
import sys

from .runs import CompareError, read_run


def make_compare(*args, **kwargs):
    """See minialbert.compare.report.make_compare."""
    from .report import make_compare as make

    return make(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    from .report import FIXED_TEXT

    p = argparse.ArgumentParser(prog="minialbert compare", allow_abbrev=False, description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", metavar="RUN", help="pre-training output folders and/or GLUE output folders")
    p.add_argument("--output", "-o", default="compare-report.html", help="the HTML file to write (default: %(default)s)")
    p.add_argument("--label", action="append", default=[], help="a name for each run, in order (default: folder names)")
    p.add_argument("--text", default=FIXED_TEXT, help="the text Figure 1 is computed on (default: a fixed sentence)")
    p.add_argument("--device", default=None, help="cpu, cuda, ... for the Figure 1 forward passes (default: cpu)")
    return p


def main(argv: list[str] | None = None) -> int:
    """`minialbert compare`: bad flags exit 2; unreadable runs raise CompareError (one line, exit 1)."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    path = make_compare(args.runs, args.output, labels=args.label, text=args.text, device=args.device)
    print(path)
    return 0


__all__ = ["CompareError", "make_compare", "read_run", "main"]
