"""Reading the runs `minialbert compare` puts side by side: pre-training and GLUE output folders.

A pre-training folder (minialbert pretrain --output-dir) holds config.json, model.safetensors,
the tokenizer, train_args.json and log.jsonl: one record per --log-every steps with mlm_loss,
sop_loss, tokens_per_s and elapsed_s, and validation records (any record whose loss keys start
with val/valid/eval, or whose "event" is eval/valid/validation). A GLUE folder (minialbert glue
--output) holds results.json and run.json. A folder may be both.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MinialbertError


class CompareError(MinialbertError):
    """A run folder `minialbert compare` cannot read."""


VALID_PREFIXES = ("val_", "valid_", "validation_", "eval_", "dev_")


@dataclass
class Curve:
    name: str  # mlm_loss, sop_loss, validation mlm_loss, ...
    steps: list[int]
    tokens: list[float]
    values: list[float]


@dataclass
class Run:
    label: str
    path: Path
    kinds: list[str]  # "pretrain", "glue"
    config: dict | None = None  # config.json of the model (the pre-trained one, or GLUE's fine-tuned)
    model_path: Path | None = None  # a local checkpoint to run Figure 1 on
    train_args: dict = field(default_factory=dict)
    curves: list[Curve] = field(default_factory=list)
    tokens_estimated: bool = False
    glue: dict | None = None  # results.json


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CompareError(f"{path}: cannot be read as JSON ({e})") from None


def _log_records(path: Path) -> list[dict]:
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            raise CompareError(f"{path}: line {number} is not valid JSON") from None
        if isinstance(obj, dict):
            records.append(obj)
    return records


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def pretraining_curves(records: list[dict]) -> tuple[list[Curve], bool]:
    """Training and validation curves from log.jsonl records, against steps and tokens.

    Tokens: a record's cumulative `tokens` (or `tokens_seen`) when the log has it; otherwise the
    sum of tokens_per_s x the time between records (elapsed_s restarts at a resume), which the
    second return value flags as an estimate."""
    train = [r for r in records if _number(r.get("step")) and _number(r.get("mlm_loss")) and "event" not in r]
    exact = bool(train) and all(_number(r.get("tokens", r.get("tokens_seen"))) for r in train)
    tokens_at: dict[int, float] = {}
    total, last_elapsed = 0.0, 0.0
    for r in train:
        if exact:
            total = float(r.get("tokens", r.get("tokens_seen")))
        else:
            elapsed = float(r.get("elapsed_s", 0.0))
            span = elapsed - last_elapsed if elapsed >= last_elapsed else elapsed  # a resume restarts the clock
            total += float(r.get("tokens_per_s", 0.0)) * span
            last_elapsed = elapsed
        tokens_at[int(r["step"])] = total

    def tokens_of(step: int) -> float:
        before = [s for s in tokens_at if s <= step]
        return tokens_at[max(before)] if before else 0.0

    curves = []
    for key in ("mlm_loss", "sop_loss"):
        points = [r for r in train if _number(r.get(key))]
        if points:
            curves.append(Curve(key, [int(r["step"]) for r in points], [tokens_at[int(r["step"])] for r in points],
                                [float(r[key]) for r in points]))
    valid: dict[str, list[tuple[int, float]]] = {}
    for r in records:
        if not _number(r.get("step")):
            continue
        is_eval = str(r.get("event", "")).lower() in ("eval", "valid", "validation")
        for k, v in r.items():
            if "loss" not in k or not _number(v):
                continue
            if k.startswith(VALID_PREFIXES) or is_eval:
                name = k if k.startswith(VALID_PREFIXES) else f"valid_{k}"
                valid.setdefault(name, []).append((int(r["step"]), float(v)))
    for name, points in sorted(valid.items()):
        curves.append(Curve(name, [s for s, _ in points], [tokens_of(s) for s, _ in points], [v for _, v in points]))
    return curves, not exact


def read_run(path: str | os.PathLike, label: str | None = None) -> Run:
    root = Path(path)
    if not root.is_dir():
        raise CompareError(f"{root}: no such directory (give pre-training or GLUE output folders)")
    run = Run(label or root.name, root, [])
    log = root / "log.jsonl"
    if log.is_file() and (root / "config.json").is_file():
        records = _log_records(log)
        run.curves, run.tokens_estimated = pretraining_curves(records)
        if run.curves:
            run.kinds.append("pretrain")
            run.config = _read_json(root / "config.json")
            run.model_path = root if any((root / f).is_file() for f in ("model.safetensors", "pytorch_model.bin")) else None
            if (root / "train_args.json").is_file():
                run.train_args = _read_json(root / "train_args.json")
    results = root / "results.json"
    if results.is_file():
        glue = _read_json(results)
        if isinstance(glue.get("tasks"), dict) and "score_rule" in glue:
            run.kinds.append("glue")
            run.glue = glue
            if run.config is None:
                model = Path(str(glue.get("model", "")))
                if (model / "config.json").is_file():
                    run.config, run.model_path = _read_json(model / "config.json"), model
                else:  # a Hub model: the fine-tuned checkpoints have its config
                    seed_configs = sorted(root.glob("*/seed-*/config.json"))
                    if seed_configs:
                        run.config = _read_json(seed_configs[0])
            if (root / "run.json").is_file():
                run.train_args = {**run.train_args, **{f"glue.{k}": v for k, v in _read_json(root / "run.json").items()}}
    if not run.kinds:
        raise CompareError(f"{root}: neither a pre-training output (config.json + log.jsonl with mlm_loss) nor a "
                           "GLUE output (results.json from minialbert glue)")
    return run
