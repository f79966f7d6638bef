"""The `minialbert finetune` command line: its parser and the checks of its values (split from
train.py, which runs the training)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from ..training import add_speed_args
from . import FinetuneError
from .data import TASKS

DESCRIPTION = "Fine-tune ALBERT on a labelled task: classification, regression, tagging or extractive QA."
METRICS = {"classify": ("accuracy", "macro_f1", "mcc"), "regression": ("pearson", "spearman"),
           "multilabel": ("micro_f1", "subset_accuracy"), "tag": ("f1", "precision", "recall", "token_accuracy"),
           "qa": ("f1", "exact_match")}

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="minialbert finetune", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    d = p.add_argument_group("task and data")
    d.add_argument("--task", choices=TASKS, default="classify",
                   help="classify (one label per text), regression, multilabel, tag (BIO tags per word), "
                        "qa (SQuAD-style extractive question answering)")
    d.add_argument("--train", required=True, metavar="FILE",
                   help=".csv/.tsv/.jsonl (classify, regression, multilabel), .jsonl (tag), SQuAD .json/.jsonl (qa)")
    d.add_argument("--dev", metavar="FILE", help="evaluation file, same format (optional)")
    d.add_argument("--text-column", help="text column (default: text; tag: tokens)")
    d.add_argument("--pair-column", help="second text of a pair (default: text_pair when the file has it)")
    d.add_argument("--label-column", help="label column (default: label; tag: tags)")
    d.add_argument("--label-separator", default=",", help="multilabel: separator of labels in a CSV/TSV cell")
    d.add_argument("--labels", help="comma-separated label names in id order (default: the model's "
                                    "id2label if fine-tuned, else the training file's labels, sorted)")
    d.add_argument("--max-length", type=int, default=None,
                   help="tokens per input, special tokens included (default: 128; qa: 384)")
    d.add_argument("--doc-stride", type=int, default=128, help="qa: tokens shared by consecutive context windows")
    d.add_argument("--max-query-length", type=int, default=64, help="qa: question tokens kept")
    d.add_argument("--max-answer-length", type=int, default=30, help="qa: longest answer, in tokens")
    d.add_argument("--n-best", type=int, default=20, help="qa: start/end candidates per window")
    d.add_argument("--null-threshold", type=float, default=0.0,
                   help="qa, SQuAD 2.0: answer 'no answer' when its score beats the best span by more than this")
    m = p.add_argument_group("model and output")
    m.add_argument("--model", "-m", default="albert-base-v2", help="checkpoint directory or Hub repo id to start from")
    m.add_argument("--revision", default=None)
    m.add_argument("--cache-dir", default=None)
    m.add_argument("--offline", action="store_true", help="use only the local Hugging Face cache")
    m.add_argument("--classifier-dropout", type=float, default=None,
                   help="dropout before the head (default: the config's classifier_dropout_prob, 0.1)")
    m.add_argument("--dropout", type=float, default=None,
                   help="dropout inside the model: hidden_dropout_prob and attention_probs_dropout_prob "
                        "(default: the config's; 0 in the v2 checkpoints)")
    m.add_argument("--output-dir", required=True)
    m.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/checkpoint")
    m.add_argument("--overwrite", action="store_true", help="start afresh even if OUTPUT_DIR holds a run")
    t = p.add_argument_group("optimization")
    t.add_argument("--batch-size", type=int, default=32, help="examples per micro-batch")
    t.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step")
    t.add_argument("--epochs", type=float, default=3.0, help="passes over the training data (if no --max-steps)")
    t.add_argument("--max-steps", type=int, default=None, help="optimizer steps (overrides --epochs)")
    t.add_argument("--lr", type=float, default=2e-5, help="peak learning rate")
    t.add_argument("--warmup-steps", type=int, default=None, help="default: --warmup-ratio of the steps")
    t.add_argument("--warmup-ratio", type=float, default=0.1)
    t.add_argument("--weight-decay", type=float, default=0.01)
    t.add_argument("--adam-beta1", type=float, default=0.9)
    t.add_argument("--adam-beta2", type=float, default=0.999)
    t.add_argument("--adam-eps", type=float, default=1e-6)
    t.add_argument("--max-grad-norm", type=float, default=1.0, help="0 disables clipping")
    add_speed_args(t)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    t.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    t.add_argument("--seed", type=int, default=42)
    o = p.add_argument_group("evaluation, logging, checkpoints")
    o.add_argument("--eval-every", type=int, default=None, help="steps between dev evaluations (default: once per epoch)")
    o.add_argument("--eval-batch-size", type=int, default=64)
    o.add_argument("--metric", default=None, help="dev metric that picks the best checkpoint (default: "
                   + "; ".join(f"{k}: {v[0]}" for k, v in METRICS.items()) + ")")
    o.add_argument("--save-every", type=int, default=None, help="steps between resumable checkpoints "
                                                                "(default: --eval-every)")
    o.add_argument("--save-final-state", action="store_true",
                   help="keep the resumable trainer state (optimizer etc.) of the last step too; by default a "
                        "finished run keeps only its model, metrics and logs")
    o.add_argument("--log-every", type=int, default=10)
    o.add_argument("--quiet", action="store_true", help="no progress bar or messages (logs are still written)")
    p.add_argument("--kill-after-step", type=int, default=None, help=argparse.SUPPRESS)  # tests: simulate a crash
    p.add_argument("--interrupt-after-step", type=int, default=None, help=argparse.SUPPRESS)  # tests: Ctrl-C
    return p


# ------------------------------------------------------------------------------ checks
def _check_args(args) -> None:
    for name in ("batch_size", "grad_accum", "max_steps", "eval_every", "save_every", "log_every", "threads",
                 "eval_batch_size", "max_query_length", "max_answer_length", "n_best"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise FinetuneError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.max_length is None:
        args.max_length = 384 if args.task == "qa" else 128
    if args.max_length < 8:
        raise FinetuneError(f"--max-length must be >= 8, got {args.max_length}")
    if args.doc_stride < 0:
        raise FinetuneError(f"--doc-stride must be >= 0, got {args.doc_stride}")
    if args.lr <= 0:
        raise FinetuneError(f"--lr must be positive, got {args.lr}")
    if args.epochs <= 0:
        raise FinetuneError(f"--epochs must be positive, got {args.epochs}")
    if not 0 <= args.warmup_ratio <= 1:
        raise FinetuneError(f"--warmup-ratio must be in [0, 1], got {args.warmup_ratio}")
    if args.classifier_dropout is not None and not 0 <= args.classifier_dropout < 1:
        raise FinetuneError(f"--classifier-dropout must be in [0, 1), got {args.classifier_dropout}")
    if args.dropout is not None and not 0 <= args.dropout < 1:
        raise FinetuneError(f"--dropout must be in [0, 1), got {args.dropout}")
    metric = args.metric or METRICS[args.task][0]
    if metric not in METRICS[args.task]:
        raise FinetuneError(f"--metric {metric!r} is not a {args.task} metric; use one of "
                            f"{', '.join(METRICS[args.task])}")
    args.metric = metric
    # absolute paths, so that a --resume from another directory is recognised as the same run
    for name in ("train", "dev", "model"):
        value = getattr(args, name)
        if value and os.path.exists(value):
            setattr(args, name, str(Path(value).resolve()))
    if args.labels is not None and args.task in ("regression", "qa"):
        raise FinetuneError(f"--labels does not apply to --task {args.task}")


def _device(flag: str) -> torch.device:
    if flag == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(flag)
    except RuntimeError:
        raise FinetuneError(f"unknown --device {flag!r}; use auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FinetuneError("--device cuda but no CUDA device is available")
    return device
