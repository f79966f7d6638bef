"""Plot a pre-training log (OUT/log.jsonl of scripts/pretrain.py) as docs/pretrain_curve.png.

    python docs/plot_pretrain_curve.py OUT/log.jsonl docs/pretrain_curve.png "title"

Needs matplotlib (a development-only dependency; the package does not use it).
"""

import argparse
import json


def main(log_path: str, png: str, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in open(log_path, encoding="utf-8")]
    rows = [r for r in rows if "mlm_loss" in r]
    step = [r["step"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(step, [r["mlm_loss"] for r in rows], label="MLM loss")
    ax1.plot(step, [r["sop_loss"] for r in rows], label="SOP loss")
    ax1.set_xlabel("optimizer step")
    ax1.set_ylabel("loss (nats)")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax2.plot(step, [r["mlm_acc"] for r in rows], label="MLM accuracy")
    ax2.plot(step, [r["sop_acc"] for r in rows], label="SOP accuracy")
    ax2.axhline(0.5, color="grey", lw=0.8, ls="--", label="SOP chance")
    ax2.set_xlabel("optimizer step")
    ax2.set_ylim(0, 1)
    ax2.legend()
    ax2.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("log", help="a pre-training log (OUT/log.jsonl)")
    ap.add_argument("png", help="the figure to write")
    ap.add_argument("title", nargs="?", default="", help="the figure's title")
    args = ap.parse_args()
    main(args.log, args.png, args.title)
