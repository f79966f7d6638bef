#!/usr/bin/env python
"""Fine-tune a tiny ALBERT on the generated tasks and plot the measured curves (docs/finetune_curve.png).

    python scripts/finetune_curve.py [--work DIR] [--output PNG]       # default: DIR/finetune_curve.png
    python scripts/finetune_curve.py --output docs/finetune_curve.png   # update the README's figure

Offline and self-contained: it writes a randomly initialised tiny ALBERT (E=32, H=64, 2 layers,
the test tokenizer's 1,506-piece vocabulary), generates the toy tasks of minialbert/finetune/toy.py
(3-class marker-word classification; SQuAD 2.0 "the word after 'hidden'" with a quarter
unanswerable and passages cut into doc_stride windows), runs `minialbert finetune` on each with
one CPU thread, and plots training loss and dev metric against the step. It prints the CPU model
and the numbers the README quotes. Needs matplotlib (a development-only dependency).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

ROOT = Path(__file__).resolve().parent.parent
SPM = ROOT / "tests" / "fixtures" / "tokenizer" / "spm" / "spiece.model"


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def read_log(out: Path) -> tuple[list[dict], list[dict]]:
    rows = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    return [r for r in rows if "loss" in r], [r for r in rows if r.get("event") == "eval"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("--work", "--out", dest="work", default=str(Path(tempfile.gettempdir()) / "finetune-curve"),
                    help="working directory for checkpoints and logs (default: %(default)s)")
    ap.add_argument("--output", "--png", dest="png", default=None, metavar="PNG",
                    help="the figure to write (default: WORK/finetune_curve.png; the README's figure, "
                         "docs/finetune_curve.png, is written only when named here)")
    args = ap.parse_args(argv)
    args.png = args.png or str(Path(args.work) / "finetune_curve.png")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from minialbert.finetune import toy
    from minialbert.finetune.train import main as finetune

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    toy.write_base_checkpoint(work / "base", vocab_file=SPM)
    toy.write_classification(work, n_train=400, n_dev=200)
    toy.write_squad(work, n_train=400, n_dev=200, version_2=True, max_words=24)
    common = ["--model", str(work / "base"), "--threads", "1", "--device", "cpu", "--quiet", "--lr", "3e-3",
              "--batch-size", "16", "--log-every", "5", "--eval-every", "10", "--overwrite"]
    runs = {
        "classification (3 classes)": (work / "cls", "accuracy", 1.0,
                                       ["--train", str(work / "train.csv"), "--dev", str(work / "dev.csv"),
                                        "--max-steps", "200", "--warmup-steps", "20"]),
        "SQuAD 2.0 (windows of 32 tokens)": (work / "qa", "exact_match", 100.0,
                                             ["--task", "qa", "--train", str(work / "train.json"), "--dev",
                                              str(work / "dev.json"), "--max-steps", "100", "--warmup-steps", "10",
                                              "--max-length", "32", "--doc-stride", "8"]),
    }
    results = {}
    for name, (out, metric, scale, extra) in runs.items():
        finetune([*common, *extra, "--output-dir", str(out)])
        summary = json.loads((out / "metrics.json").read_text())
        results[name] = (read_log(out), metric, scale, summary)
        print(f"{name}: best dev {metric} {summary['best'][metric]:.3f} at step {summary['best']['step']}; "
              f"first evaluation {summary['history'][0][metric]:.3f}; {summary['runtime_s']:.1f} s "
              f"({summary['train_inputs']} training inputs)")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, (name, ((train, evals), metric, scale, _)) in zip(axes, results.items()):
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], color="tab:blue", label="training loss")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss (nats)", color="tab:blue")
        ax.grid(alpha=0.3)
        ax2 = ax.twinx()
        ax2.plot([r["step"] for r in evals], [r[metric] / scale for r in evals], color="tab:orange", marker="o",
                 ms=3, label=f"dev {metric}")
        ax2.set_ylim(0, 1.05)
        ax2.set_ylabel(f"dev {metric.replace('_', ' ')}" + (" / 100" if scale != 1 else ""), color="tab:orange")
        ax.set_title(name)
    fig.suptitle(f"minialbert finetune, tiny random-init ALBERT (92k parameters), 1 thread of {cpu_model()}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
