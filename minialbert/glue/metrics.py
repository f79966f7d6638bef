"""GLUE's official metric per task, and the GLUE score, from gold labels and predictions.

The formulas are minialbert.finetune.metrics' (accuracy, Matthews correlation, Pearson,
Spearman) plus binary F1 with label 1 as the positive class (MRPC: equivalent, QQP: duplicate),
as the GLUE server computes it. Everything here is in percent.
"""

from __future__ import annotations

from typing import Sequence

from ..finetune.metrics import accuracy, matthews_corrcoef, pearson, spearman
from .tasks import EXCLUDED_FROM_AVERAGE, TASKS, Task


def binary_f1(gold: Sequence[int], pred: Sequence[int], positive: int = 1) -> float:
    """2 TP / (2 TP + FP + FN) for the positive class; 0 when it never occurs on either side."""
    tp = sum(g == positive and p == positive for g, p in zip(gold, pred))
    fp = sum(g != positive and p == positive for g, p in zip(gold, pred))
    fn = sum(g == positive and p != positive for g, p in zip(gold, pred))
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def split_metrics(task: Task, gold: Sequence, pred: Sequence) -> dict[str, float]:
    """The task's metrics on one dev split, in percent (MNLI: accuracy; see task_metrics)."""
    if task.kind == "regression":
        return {"pearson": 100 * pearson(gold, pred), "spearman": 100 * spearman(gold, pred)}
    out = {}
    if "mcc" in task.metrics:
        out["mcc"] = 100 * matthews_corrcoef(gold, pred)
    if "f1" in task.metrics:
        out["f1"] = 100 * binary_f1(gold, pred)
    out["accuracy"] = 100 * accuracy(gold, pred)
    return out


def task_metrics(task: Task, per_split: dict[str, tuple[Sequence, Sequence]]) -> dict[str, float]:
    """{metric: value} for the task's official metrics; per_split: split -> (gold, predictions)."""
    if task.key == "mnli":
        return {name: split_metrics(task, *per_split[name])["accuracy"] for name in ("matched", "mismatched")}
    values = split_metrics(task, *per_split["dev"])
    return {m: values[m] for m in task.metrics}


def task_score(metrics: dict[str, float]) -> float:
    """The unweighted mean of a task's official metrics (GLUE's rule for tasks with two)."""
    return sum(metrics.values()) / len(metrics)


def glue_average(scores: dict[str, float]) -> dict:
    """The GLUE dev score from {task key: task score}: the mean over the eight tasks other than WNLI.

    `value` is None unless all eight are there; `partial` is the mean over those present (a
    smoke run's number, not a GLUE score)."""
    counted = [k for k in TASKS if k in scores and k not in EXCLUDED_FROM_AVERAGE]
    missing = [TASKS[k].name for k in TASKS if k not in scores and k not in EXCLUDED_FROM_AVERAGE]
    mean = sum(scores[k] for k in counted) / len(counted) if counted else None
    return {"value": None if missing else mean, "partial": mean, "tasks": [TASKS[k].name for k in counted],
            "missing": missing, "excluded": [TASKS[k].name for k in EXCLUDED_FROM_AVERAGE]}
