"""The GLUE harness: each task fine-tuned by `minialbert finetune`, then scored on dev.

    minialbert glue --data GLUE_DIR --model M --output OUT [--tasks all|cola,sst2,...] [--seeds 1,2,3]

For each task and seed, in GLUE's order:
  1. the task's files are found and read (data.py), checked (labels in the task's set, STS-B
     scores numeric) and written as OUT/TASK/data/{train,dev}.jsonl;
  2. `minialbert.finetune.train.main` trains it with the task's hyperparameters (tasks.py: the
     ALBERT paper's, each overridable with --set) into OUT/TASK/seed-S/, scoring dev every EVAL
     steps and keeping the best checkpoint (--select best, as google-research/albert's
     run_classifier.py does) or the last one (--select last);
  3. that checkpoint predicts every dev example (minialbert.tasks.TextClassifier): one row
     {"idx", "label", "prediction"} per example in OUT/TASK/seed-S/dev_predictions.jsonl, and the
     official metrics are computed from those rows; with a test.tsv (or test split) beside the
     data, the GLUE server file OUT/TASK/seed-S/NAME.tsv ("index", "prediction") too.
With several seeds, a task reports the run whose task score is the median (the lower of the two
middle runs for an even count), and its predictions are copied to OUT/TASK/dev_predictions.jsonl
and its server files to OUT/submission/. OUT/results.json and OUT/results.md are rewritten after
every task. A killed run continues with --resume: finished task runs are kept, and the task it
stopped in continues from its last finetune checkpoint (finetune --resume, exactly).
A task whose data is bad (missing dev file, unknown label, non-numeric score) is reported on one
line and in results.json, and the other tasks still run; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from ..errors import MinialbertError
from .data import TaskFiles, find_tasks, finetune_rows, locate
from .metrics import glue_average, task_metrics, task_score
from .tasks import METRIC_NAMES, SCORE_RULE, TASKS, GlueError, Hyperparameters, Task, parse_tasks

RUN_FILE = "run.json"
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
PREDICTIONS = "dev_predictions.jsonl"
SEED_RESULT = "result.json"
SUBMISSION_DIR = "submission"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="minialbert glue", allow_abbrev=False, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Hyperparameter keys for --set: " + ", ".join(Hyperparameters.KEYS)
                                + ". Defaults per task: the ALBERT paper's Appendix A.4 table (docs/guides/glue.md).")
    p.add_argument("--data", required=True, metavar="GLUE_DIR",
                   help="folder holding the tasks: the official CoLA/, SST-2/, ... or the Hugging Face cola/, sst2/, ...")
    p.add_argument("--model", "-m", default="albert-base-v2", help="checkpoint directory or Hub repo id")
    p.add_argument("--output", "-o", required=True, metavar="OUT", help="directory for results and task runs")
    p.add_argument("--tasks", default="all", help="all (default) or a comma-separated list: cola,sst2,mrpc,stsb,"
                                                  "qqp,mnli,qnli,rte,wnli")
    p.add_argument("--seeds", default="42", help="comma-separated seeds; a task reports the median run (default: 42)")
    p.add_argument("--set", action="append", default=[], metavar="[TASK.]KEY=VALUE", dest="overrides",
                   help="override a hyperparameter for every task (lr=2e-5) or one (rte.steps=1200); repeatable")
    p.add_argument("--select", choices=("best", "last"), default="best",
                   help="checkpoint scored: best = the best dev score of the evaluations every EVAL steps (what "
                        "google-research/albert's run_classifier.py reports), last = the final one")
    q = p.add_argument_group("quick runs (the scores are then not comparable to published ones)")
    q.add_argument("--max-steps", type=int, default=None,
                   help="train every task this many steps (warm-up scaled to the same fraction)")
    q.add_argument("--max-train-examples", type=int, default=None, help="use the first N training examples")
    q.add_argument("--max-dev-examples", type=int, default=None, help="score the first N examples of each dev split")
    r = p.add_argument_group("run")
    r.add_argument("--resume", action="store_true", help="continue a killed run in OUT (finished tasks are kept)")
    r.add_argument("--overwrite", action="store_true", help="start afresh even if OUT holds a run")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    r.add_argument("--bf16", action="store_true", help="bf16 autocast while training")
    r.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    r.add_argument("--eval-batch-size", type=int, default=64)
    r.add_argument("--revision", default=None, help="Hub revision of --model")
    r.add_argument("--cache-dir", default=None)
    r.add_argument("--offline", action="store_true", help="use only the local Hugging Face cache")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress bars (results are still written)")
    p.add_argument("--kill-in", default=None, help=argparse.SUPPRESS)  # tests: TASK:STEP, simulate a crash
    return p


# ------------------------------------------------------------------------------ options
def parse_seeds(spec: str) -> list[int]:
    try:
        seeds = [int(s) for s in spec.split(",") if s.strip()]
    except ValueError:
        raise GlueError(f"--seeds takes comma-separated integers, got {spec!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise GlueError(f"--seeds must name distinct seeds, got {spec!r}")
    return seeds


_INT_KEYS = {"batch_size", "steps", "warmup", "max_length", "eval_every"}


def parse_overrides(items: list[str], tasks: list[Task]) -> dict[str, dict[str, float]]:
    """['lr=2e-5', 'rte.steps=1200'] -> {task key: {key: value}} for the chosen tasks."""
    out: dict[str, dict] = {t.key: {} for t in tasks}
    for item in items:
        target, sep, value = item.partition("=")
        if not sep:
            raise GlueError(f"--set takes [TASK.]KEY=VALUE, got {item!r}")
        task_name, _, key = target.rpartition(".")
        key = key.strip().replace("-", "_")
        if key not in Hyperparameters.KEYS:
            raise GlueError(f"--set {item}: unknown hyperparameter {key!r}; use one of {', '.join(Hyperparameters.KEYS)}")
        try:
            number = int(value) if key in _INT_KEYS else float(value)
        except ValueError:
            raise GlueError(f"--set {item}: {key} takes {'an integer' if key in _INT_KEYS else 'a number'}") from None
        if (key in _INT_KEYS and key != "warmup" and number < 1) or number < 0 or (
                key in ("dropout", "classifier_dropout") and number >= 1) or (key == "lr" and number <= 0):
            raise GlueError(f"--set {item}: value out of range")
        targets = [t for t in tasks if not task_name or task_name.lower() in t.aliases]
        if task_name and not targets:
            if not any(task_name.lower() in t.aliases for t in TASKS.values()):
                raise GlueError(f"--set {item}: unknown task {task_name!r}")
        for t in targets:
            out[t.key][key] = number
    return out


def effective_hyperparameters(task: Task, overrides: dict, max_steps: int | None, max_position: int) -> Hyperparameters:
    hp = replace(task.defaults, **overrides)
    if max_steps is not None:  # a quick run: same warm-up fraction, evaluations no rarer than the run
        hp = replace(hp, steps=max_steps, warmup=round(hp.warmup * max_steps / hp.steps) if "warmup" not in overrides
                     else min(hp.warmup, max_steps))
    if hp.warmup > hp.steps:
        raise GlueError(f"{task.name}: warmup {hp.warmup} is more than steps {hp.steps}")
    return replace(hp, eval_every=min(hp.eval_every, hp.steps), max_length=min(hp.max_length, max_position))


# -------------------------------------------------------------------------------- model
def check_model(model: str, *, revision=None, cache_dir=None, offline=False) -> tuple[Path, int]:
    """The model's local folder and its max_position_embeddings; a one-line error when it cannot
    be fine-tuned (no config, no tokenizer)."""
    from ..config import AlbertConfig
    from ..hub import ModelSource
    from ..tokenizer import AlbertTokenizer

    source = ModelSource(model, revision=revision, cache_dir=cache_dir, local_files_only=offline)
    folder = source.checkpoint_folder()
    if not (folder / "spiece.model").is_file() and not (folder / "tokenizer.json").is_file():
        raise GlueError(f"{folder / 'spiece.model'}: missing: the model has no tokenizer (spiece.model or "
                        "tokenizer.json), which GLUE needs to encode the data; copy the tokenizer files of the "
                        "model it was trained from into that folder")
    try:
        AlbertTokenizer.from_pretrained(folder)
    except MinialbertError as e:
        raise GlueError(f"{folder}: its tokenizer cannot be loaded: {e}") from None
    config = AlbertConfig.from_json(folder / "config.json")
    return folder, config.max_position_embeddings


# ---------------------------------------------------------------------------- one task
def _write_json(path: Path, obj) -> None:
    from ..files import atomic_write

    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n",
                                                         encoding="utf-8"))


def _write_text(path: Path, text: str) -> None:
    from ..files import atomic_write

    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _finetune_argv(task: Task, hp: Hyperparameters, seed: int, train: Path, dev: Path, out: Path, opts: dict) -> list[str]:
    argv = ["--task", task.kind, "--model", opts["model"], "--train", str(train), "--dev", str(dev),
            "--output-dir", str(out), "--lr", repr(hp.lr), "--batch-size", str(hp.batch_size),
            "--max-steps", str(hp.steps), "--warmup-steps", str(hp.warmup), "--max-length", str(hp.max_length),
            "--dropout", repr(hp.dropout), "--classifier-dropout", repr(hp.classifier_dropout),
            "--seed", str(seed), "--metric", task.select_metric, "--eval-batch-size", str(opts["eval_batch_size"]),
            "--eval-every", str(hp.eval_every if opts["select"] == "best" else hp.steps), "--device", opts["device"]]
    if task.kind == "classify":
        argv += ["--labels", ",".join(task.labels)]
    for flag in ("revision", "cache_dir"):
        if opts.get(flag):
            argv += [f"--{flag.replace('_', '-')}", str(opts[flag])]
    if opts.get("offline"):
        argv.append("--offline")
    if opts.get("bf16"):
        argv.append("--bf16")
    if opts.get("threads"):
        argv += ["--threads", str(opts["threads"])]
    if opts.get("quiet"):
        argv.append("--quiet")
    return argv


def _classifier(model_dir: Path, opts: dict, max_length: int):
    """The fine-tuned checkpoint as a minialbert.tasks.TextClassifier (what `minialbert classify` runs)."""
    import torch

    from ..tasks import TextClassifier

    device = opts["device"]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return TextClassifier.from_pretrained(model_dir, device=device, max_length=max_length)


def _predict(task: Task, classifier, examples, opts: dict) -> list:
    """The classifier's prediction for each example: a label id, or a float (STS-B)."""
    texts = [e.text for e in examples]
    pairs = [e.pair for e in examples] if examples[0].pair is not None else None
    results = classifier(texts, pairs, batch_size=opts["eval_batch_size"])
    if task.kind == "regression":
        return [float(r.score) for r in results]
    return [task.labels.index(r.label) for r in results]


def _format_prediction(task: Task, value) -> str:
    return f"{value:.3f}" if task.kind == "regression" else task.labels[value]


def run_seed(task: Task, files: TaskFiles, data: dict, hp: Hyperparameters, seed: int, task_dir: Path,
             opts: dict) -> dict:
    """Train one (task, seed) through finetune, predict dev (and test), score; returns its result."""
    from ..finetune.train import main as finetune_main

    seed_dir = task_dir / f"seed-{seed}"
    done = seed_dir / SEED_RESULT
    if done.is_file() and not opts["overwrite"]:
        return json.loads(done.read_text(encoding="utf-8"))
    started = time.perf_counter()
    argv = _finetune_argv(task, hp, seed, data["train_file"], data["dev_file"], seed_dir, opts)
    state = seed_dir / "checkpoint" / "trainer_state.pt"
    # finetune writes metrics.json last and then keeps no trainer state: a run killed after that
    # point has finished training, so only the scoring below is left to do
    finished = (seed_dir / "metrics.json").is_file() and not state.is_file() and not opts["overwrite"]
    argv.append("--resume" if state.is_file() and not opts["overwrite"] else "--overwrite")
    kill = opts.get("kill_in")
    if kill and kill[0] == task.key:
        argv += ["--kill-after-step", str(kill[1])]
    if not opts["quiet"]:
        print(f"glue: {task.name} seed {seed}: {hp.steps} steps, lr {hp.lr:g}, batch {hp.batch_size}, "
              f"warm-up {hp.warmup}, max length {hp.max_length}" + (" (resuming)" if "--resume" in argv else ""),
              file=sys.stderr, flush=True)
    try:
        if not finished:
            finetune_main(argv)
    except SystemExit as e:
        if e.code != 2:  # SIGTERM while training (exit 143): the state is saved, stop as the signal asks
            raise
        # finetune's argparse refused a value: say which task
        raise GlueError(f"{task.name}: minialbert finetune rejected the hyperparameters (exit {e.code}); "
                        f"see the message above") from None
    summary = json.loads((seed_dir / "metrics.json").read_text(encoding="utf-8"))

    classifier = _classifier(seed_dir, opts, hp.max_length)
    per_split, rows = {}, []
    for split, examples in data["dev"].items():
        preds = _predict(task, classifier, examples, opts)
        gold = [e.label for e in examples]
        per_split[split] = (gold, preds)
        for e, p in zip(examples, preds):
            row = {"idx": e.idx, "label": e.label, "prediction": p}
            if len(data["dev"]) > 1:
                row["split"] = split
            rows.append(row)
    from ..files import write_jsonl

    write_jsonl(seed_dir / PREDICTIONS, rows)
    submissions = []
    for split, examples in data["test"].items():
        preds = _predict(task, classifier, examples, opts)
        name = f"{task.server_name(split)}.tsv"
        _write_text(seed_dir / name, "index\tprediction\n" + "".join(
            f"{e.idx}\t{_format_prediction(task, p)}\n" for e, p in zip(examples, preds)))
        submissions.append(name)
    metrics = task_metrics(task, per_split)
    best = summary.get("best") or {}
    result = {"seed": seed, "metrics": metrics, "score": task_score(metrics), "steps": summary["steps"],
              "checkpoint_step": best.get("step"), "selection_metric": task.select_metric,
              "submission_files": submissions, "runtime_s": round(time.perf_counter() - started, 3)}
    _write_json(done, result)
    # The model stays (OUT/TASK/seed-S is a fine-tuned checkpoint); the optimizer state, only
    # needed to resume training, goes: with albert-base it is ~100 MB per task and seed.
    shutil.rmtree(seed_dir / "checkpoint", ignore_errors=True)
    return result


def _median_run(runs: list[dict]) -> dict:
    ordered = sorted(runs, key=lambda r: (r["score"], r["seed"]))
    return ordered[(len(ordered) - 1) // 2]


def run_task(task: Task, files: TaskFiles, seeds: list[int], hp: Hyperparameters, out: Path, opts: dict) -> dict:
    from ..files import write_jsonl

    task_dir = out / task.key
    (task_dir / "data").mkdir(parents=True, exist_ok=True)
    train = files.read("train")
    dev = {name: files.read("dev", name) for name in files.dev}
    test = {name: files.read("test", name) for name in files.test}
    train_examples = train.examples[:opts["max_train_examples"]] if opts["max_train_examples"] else train.examples
    dev_examples = {k: (s.examples[:opts["max_dev_examples"]] if opts["max_dev_examples"] else s.examples)
                    for k, s in dev.items()}
    first_dev = next(iter(dev_examples))
    data = {"train_file": task_dir / "data" / "train.jsonl", "dev_file": task_dir / "data" / "dev.jsonl",
            "dev": dev_examples, "test": {k: s.examples for k, s in test.items()}}
    write_jsonl(data["train_file"], finetune_rows(task, train_examples))
    write_jsonl(data["dev_file"], finetune_rows(task, dev_examples[first_dev]))
    skipped = {"train": train.skipped, **{f"dev_{k}" if len(dev) > 1 else "dev": s.skipped for k, s in dev.items()},
               **{f"test_{k}" if len(test) > 1 else "test": s.skipped for k, s in test.items()}}
    if any(skipped.values()) and not opts["quiet"]:
        print(f"glue: {task.name}: skipped rows without the fields the task needs: "
              + ", ".join(f"{k} {v}" for k, v in skipped.items() if v), file=sys.stderr)

    runs = [run_seed(task, files, data, hp, seed, task_dir, opts) for seed in seeds]
    chosen = _median_run(runs)
    chosen_dir = task_dir / f"seed-{chosen['seed']}"
    shutil.copyfile(chosen_dir / PREDICTIONS, task_dir / PREDICTIONS)
    submission = []
    for name in chosen["submission_files"]:
        (out / SUBMISSION_DIR).mkdir(exist_ok=True)
        shutil.copyfile(chosen_dir / name, out / SUBMISSION_DIR / name)
        submission.append(f"{SUBMISSION_DIR}/{name}")
    return {
        "name": task.name, "metrics": chosen["metrics"], "score": chosen["score"], "seed": chosen["seed"],
        "per_seed": {str(r["seed"]): r["metrics"] for r in runs},
        "scores_per_seed": {str(r["seed"]): r["score"] for r in runs},
        "hyperparameters": asdict(hp), "layout": files.layout, "directory": str(files.directory),
        "train_examples": len(train_examples), "dev_examples": {k: len(v) for k, v in dev_examples.items()},
        "skipped_rows": skipped, "checkpoint_step": chosen["checkpoint_step"],
        "predictions": f"{task.key}/{PREDICTIONS}", "submission": submission,
        "runtime_s": round(sum(r["runtime_s"] for r in runs), 3),
    }


# ------------------------------------------------------------------------------ results
def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def results_markdown(results: dict) -> str:
    lines = [f"# GLUE dev results: {results['model']}", ""]
    if results.get("quick"):
        lines += [f"> Quick run ({results['quick']}): not comparable to published scores.", ""]
    lines += ["| Task | Metric | Value | Task score | Seeds (reported) |", "|---|---|---|---|---|"]
    for key, task in TASKS.items():
        r = results["tasks"].get(key)
        if r is None:
            if key in results["errors"]:
                lines.append(f"| {task.name} | error: {results['errors'][key]} | | | |".replace("\n", " "))
            continue
        names = " / ".join(METRIC_NAMES[m] for m in r["metrics"])
        values = " / ".join(_fmt(v) for v in r["metrics"].values())
        score = _fmt(r["score"]) + (" (not in the average)" if key == "wnli" else "")
        seeds = ", ".join(r["per_seed"])
        seeds += f" (median: {r['seed']})" if len(r["per_seed"]) > 1 else ""
        lines.append(f"| {task.name} | {names} | {values} | {score} | {seeds} |")
    avg = results["glue_score"]
    if avg["value"] is not None:
        lines.append(f"| **GLUE score** | mean of {len(avg['tasks'])} task scores, WNLI excluded | | "
                     f"**{_fmt(avg['value'])}** | |")
    elif avg["partial"] is not None:
        lines.append(f"| Average of the {len(avg['tasks'])} tasks run | not a GLUE score (missing: "
                     f"{', '.join(avg['missing'])}) | | {_fmt(avg['partial'])} | |")
    lines += ["", SCORE_RULE, "", f"Scores in percent; checkpoint selection: {results['select']}; metrics recomputable "
              "from each TASK/dev_predictions.jsonl.", ""]
    return "\n".join(lines)


def _write_results(out: Path, results: dict) -> None:
    scores = {k: r["score"] for k, r in results["tasks"].items()}
    results["glue_score"] = glue_average(scores)
    _write_json(out / RESULTS_JSON, results)
    _write_text(out / RESULTS_MD, results_markdown(results))


def run_glue(data: str | os.PathLike, model: str, output: str | os.PathLike, *, tasks: str = "all",
             seeds=(42,), overrides: list[str] | None = None, select: str = "best", max_steps: int | None = None,
             max_train_examples: int | None = None, max_dev_examples: int | None = None, resume: bool = False,
             overwrite: bool = False, device: str = "auto", bf16: bool = False, threads: int | None = None,
             eval_batch_size: int = 64, revision: str | None = None, cache_dir: str | None = None,
             offline: bool = False, quiet: bool = False, kill_in: str | None = None) -> dict:
    """Fine-tune and score `model` on the GLUE tasks in `data`; write OUT/results.json etc.

    Returns the results dict (also in OUT/results.json). Raises GlueError for a problem that
    stops every task (no task found, model without tokenizer, OUT holding another run); a
    problem with one task's data is recorded in results["errors"] and the other tasks run.
    """
    for name, value in (("max_steps", max_steps), ("max_train_examples", max_train_examples),
                        ("max_dev_examples", max_dev_examples), ("threads", threads), ("eval_batch_size", eval_batch_size)):
        if value is not None and value < 1:
            raise GlueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    chosen = parse_tasks(tasks)
    seeds = parse_seeds(seeds) if isinstance(seeds, str) else list(seeds)
    hp_overrides = parse_overrides(overrides or [], chosen)
    found = find_tasks(data)
    _, max_position = check_model(model, revision=revision, cache_dir=cache_dir, offline=offline)
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise GlueError(f"{out}: exists and is not a directory")
    quick = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in (
        ("max_steps", max_steps), ("max_train_examples", max_train_examples), ("max_dev_examples", max_dev_examples))
        if v is not None)
    model_id = str(Path(model).resolve()) if Path(model).exists() else model
    settings = {"model": model_id, "data": str(Path(data).resolve()), "seeds": seeds, "select": select,
                "overrides": {k: v for k, v in hp_overrides.items() if v}, "max_steps": max_steps, "max_train_examples": max_train_examples,
                "max_dev_examples": max_dev_examples, "bf16": bf16, "revision": revision}
    run_file = out / RUN_FILE
    if run_file.is_file() and not overwrite:
        if not resume:
            raise GlueError(f"{out} already holds a GLUE run: pass --resume to continue it or --overwrite")
        saved = json.loads(run_file.read_text(encoding="utf-8"))
        for key in settings:
            if saved.get(key) != settings[key]:
                raise GlueError(f"--resume: {key} differs from the run in {out} ({saved.get(key)!r} there, "
                                f"{settings[key]!r} now); resume with the same options, or use --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    _write_json(run_file, settings)
    previous = {}
    if resume and (out / RESULTS_JSON).is_file():
        previous = json.loads((out / RESULTS_JSON).read_text(encoding="utf-8")).get("tasks", {})
    opts = {"model": model_id, "device": device, "bf16": bf16, "threads": threads, "quiet": quiet,
            "eval_batch_size": eval_batch_size, "select": select, "overwrite": overwrite, "revision": revision,
            "cache_dir": cache_dir, "offline": offline, "max_train_examples": max_train_examples,
            "max_dev_examples": max_dev_examples,
            "kill_in": (kill_in.split(":")[0], int(kill_in.split(":")[1])) if kill_in else None}
    results = {"model": model_id, "data": settings["data"], "seeds": seeds, "select": select, "quick": quick or None,
               "score_rule": SCORE_RULE, "tasks": {k: v for k, v in previous.items() if k in {t.key for t in chosen}},
               "errors": {}}
    for task in chosen:
        started = time.perf_counter()
        try:
            if task.key not in found:
                raise GlueError(f"{Path(data) / task.official.directory}: missing (no {task.official.directory}/ or "
                                f"{task.key}/ folder in {data})")
            files = locate(task, found[task.key])
            hp = effective_hyperparameters(task, hp_overrides[task.key], max_steps, max_position)
            results["tasks"][task.key] = run_task(task, files, seeds, hp, out, opts)
        except MinialbertError as e:
            results["tasks"].pop(task.key, None)
            results["errors"][task.key] = str(e)
            print(f"minialbert glue: {task.name}: error: {e}", file=sys.stderr, flush=True)
        else:
            if not quiet:
                r = results["tasks"][task.key]
                print(f"glue: {task.name}: " + ", ".join(f"{METRIC_NAMES[m]} {v:.2f}" for m, v in r["metrics"].items())
                      + f" ({time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)
        _write_results(out, results)
    if not quiet:
        avg = results["glue_score"]
        what = (f"GLUE score {avg['value']:.2f}" if avg["value"] is not None else
                f"average of {len(avg['tasks'])} task(s) {avg['partial']:.2f} (not a GLUE score)"
                if avg["partial"] is not None else "no task scored")
        print(f"glue: {what}; {out / RESULTS_MD}", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> int:
    """`minialbert glue`: bad flags exit 2 (argparse); other mistakes raise GlueError (exit 1)."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    results = run_glue(args.data, args.model, args.output, tasks=args.tasks, seeds=args.seeds, overrides=args.overrides,
                       select=args.select, max_steps=args.max_steps, max_train_examples=args.max_train_examples,
                       max_dev_examples=args.max_dev_examples, resume=args.resume, overwrite=args.overwrite,
                       device=args.device, bf16=args.bf16, threads=args.threads, eval_batch_size=args.eval_batch_size,
                       revision=args.revision, cache_dir=args.cache_dir, offline=args.offline, quiet=args.quiet,
                       kill_in=args.kill_in)
    print(Path(args.output) / RESULTS_MD)
    return 1 if results["errors"] else 0

