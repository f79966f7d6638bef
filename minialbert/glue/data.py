"""Finding and reading GLUE data, in the two layouts people have, detected per task.

The official distribution (download_glue_data.py, or the zips on dl.fbaipublicfiles.com/glue):
  GLUE_DIR/CoLA/{train,dev,test}.tsv, SST-2/, MRPC/, STS-B/, QQP/, MNLI/ (dev_matched.tsv,
  dev_mismatched.tsv, test_matched.tsv, test_mismatched.tsv), QNLI/, RTE/, WNLI/.
  Tab-separated, no quoting (a `"` is just a character). Its quirks, all handled here: CoLA's
  train.tsv and dev.tsv have no header row (columns: source, label, original label, sentence)
  while its test.tsv has one; MRPC's columns are `Quality`, `#1 ID`, `#2 ID`, `#1 String`,
  `#2 String` (and the MSR files start with a byte-order mark); STS-B's label is the float column
  `score`; MNLI's label is `gold_label`, after many parse columns; some QQP rows have missing
  fields: rows too short for the columns a task needs are skipped and counted (results.json says
  how many), as the Hugging Face loader does.
The Hugging Face `glue` dataset exported to Parquet (the nyu-mll/glue repo:
  GLUE_DIR/cola/train-00000-of-00001.parquet, validation-..., test-...) or to JSON lines
  (`Dataset.to_json`: GLUE_DIR/cola/train.jsonl, validation.jsonl, test.jsonl). Columns
  sentence / sentence1+sentence2 / question1+question2 / premise+hypothesis / question+sentence,
  integer labels (-1 in test splits), idx. MNLI's splits are validation_matched,
  validation_mismatched, test_matched, test_mismatched. Parquet needs pyarrow (the `glue` extra).
The diagnostic set AX (official: GLUE_DIR/diagnostic/diagnostic.tsv; Hugging Face: GLUE_DIR/ax/test.*)
has no training data: when present, the MNLI model predicts it for the GLUE server (AX.tsv).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .tasks import TASKS, GlueError, Task


@dataclass
class Example:
    idx: int
    text: str
    pair: str | None
    label: Any  # label id (classify), float (regression), None (test split)


@dataclass
class Split:
    path: Path
    examples: list[Example]
    skipped: int = 0  # rows without the fields the task needs (QQP has some)


@dataclass
class TaskFiles:
    task: Task
    directory: Path
    layout: str  # "official", "hf-parquet" or "hf-jsonl"
    train: list[Path]
    dev: dict[str, list[Path]]  # split name (dev, matched, mismatched) -> files
    test: dict[str, list[Path]] = field(default_factory=dict)

    def read(self, which: str, split: str | None = None) -> Split:
        """which: train, dev or test; split: the dev/test split's name (dev, matched, ...)."""
        paths = self.train if which == "train" else (self.dev if which == "dev" else self.test)[split]
        if self.layout == "official":
            return read_official(self.task, paths[0], labelled=which != "test")
        return read_hf(self.task, paths, labelled=which != "test")


# -------------------------------------------------------------------------------- finding
def find_tasks(data_dir: str | Path) -> dict[str, Path]:
    """{task key: its directory} for every GLUE task folder in data_dir (either layout)."""
    root = Path(data_dir)
    if not root.is_dir():
        raise GlueError(f"{root}: no such directory (--data takes the folder holding CoLA/, SST-2/, ... or "
                        "cola/, sst2/, ...)")
    found: dict[str, Path] = {}
    for child in sorted(root.iterdir()):
        if not child.is_dir():
            continue
        task = next((t for t in TASKS.values() if child.name.lower() in t.aliases), None)
        if task is not None and task.key not in found and any(child.iterdir()):
            found[task.key] = child
    if not found:
        itself = next((t for t in TASKS.values() if root.resolve().name.lower() in t.aliases), None)
        if itself is not None:
            raise GlueError(f"{root}: this is the {itself.name} folder itself; --data takes the folder that holds "
                            f"it ({root.resolve().parent})")
        names = ", ".join(f"{t.official.directory}/" for t in TASKS.values())
        raise GlueError(f"{root}: no GLUE task in it (looked for {names} or the Hugging Face names cola/, sst2/, ...)")
    return found


def _hf_files(directory: Path, split: str) -> tuple[str, list[Path]] | None:
    parquet = sorted(directory.glob(f"{split}.parquet")) or sorted(directory.glob(f"{split}-*.parquet"))
    if parquet:
        return "hf-parquet", parquet
    jsonl = [p for p in (directory / f"{split}.jsonl", directory / f"{split}.json") if p.is_file()]
    if jsonl:
        return "hf-jsonl", jsonl[:1]
    return None


def locate(task: Task, directory: Path) -> TaskFiles:
    """The task's train/dev/test files in `directory`; a one-line error names what is missing."""
    if (directory / "train.tsv").is_file() or (directory / "dev.tsv").is_file() or any(
            (directory / f).is_file() for _, f, _ in task.dev):
        def need(name: str) -> list[Path]:
            path = directory / name
            if not path.is_file():
                wanted = ", ".join(["train.tsv", *(f for _, f, _ in task.dev)])
                raise GlueError(f"{path}: missing ({task.name} needs {wanted})")
            return [path]

        train = need("train.tsv")
        dev = {name: need(f) for name, f, _ in task.dev}
        test = {name: [directory / f] for name, f, _ in task.test if (directory / f).is_file()}
        diagnostic = directory.parent / "diagnostic" / "diagnostic.tsv"
        if task.key == "mnli" and diagnostic.is_file():  # AX, the diagnostic set, is scored by the MNLI model
            test["ax"] = [diagnostic]
        return TaskFiles(task, directory, "official", train, dev, test)
    train = _hf_files(directory, "train")
    if train is None:
        raise GlueError(f"{directory}: no train.tsv (GLUE layout) and no train.parquet, train-*.parquet or "
                        f"train.jsonl (Hugging Face export) for {task.name}")
    dev = {}
    for name, _, hf_split in task.dev:
        found = _hf_files(directory, hf_split)
        if found is None:
            raise GlueError(f"{directory / hf_split}.parquet: missing ({task.name}'s dev split '{hf_split}': "
                            f"no {hf_split}.parquet, {hf_split}-*.parquet or {hf_split}.jsonl)")
        dev[name] = found[1]
    test = {}
    for name, _, hf_split in task.test:
        found = _hf_files(directory, hf_split)
        if found is not None:
            test[name] = found[1]
    if task.key == "mnli" and (directory.parent / "ax").is_dir():
        found = _hf_files(directory.parent / "ax", "test")
        if found is not None:
            test["ax"] = found[1]
    return TaskFiles(task, directory, train[0], train[1], dev, test)


# ------------------------------------------------------------------------------- reading
def _lines(path: Path) -> list[tuple[int, str]]:
    """(line number, line) of a UTF-8 text file: BOM dropped, CR stripped, blank lines skipped."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise GlueError(f"{path}: cannot read it ({e.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise GlueError(f"{path}: line {line} is not valid UTF-8; convert the file to UTF-8") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    out = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line[:-1] if line.endswith("\r") else line
        if line.strip():
            out.append((number, line))
    return out


def _label(task: Task, value: Any, where: str) -> Any:
    if task.kind == "regression":
        try:
            if isinstance(value, bool):
                raise ValueError
            score = float(value.strip() if isinstance(value, str) else value)
            if not math.isfinite(score):
                raise ValueError
            return score
        except (TypeError, ValueError):
            raise GlueError(f"{where}: score {value!r} is not a number ({task.name} labels are similarity "
                            "scores from 0 to 5)") from None
    if isinstance(value, str):
        name = value.strip()
        if name in task.labels:
            return task.labels.index(name)
        raise GlueError(f"{where}: label {value!r} is not one of {task.name}'s labels ({', '.join(task.labels)})")
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(task.labels):
        return value
    raise GlueError(f"{where}: label {value!r} is not one of {task.name}'s label ids "
                    f"(0..{len(task.labels) - 1}: {', '.join(task.labels)})")


def read_official(task: Task, path: Path, labelled: bool = True) -> Split:
    spec = task.official
    lines = _lines(path)
    if labelled:
        text_col, pair_col, label_col, index_col = spec.text, spec.pair, spec.label, None
        header = spec.header
    else:
        text_col, pair_col, label_col, index_col = spec.test_text, spec.test_pair, None, spec.test_index
        header = True
    if header:
        if not lines:
            raise GlueError(f"{path}: empty file (expected a header row)")
        names = lines[0][1].split("\t")
        lines = lines[1:]

        def position(col):
            if col is None:
                return None
            if col not in names:
                raise GlueError(f"{path}: no column {col!r} (its header: {', '.join(names)}); is this GLUE's {task.name}?")
            return names.index(col)

        if labelled and index_col is None:
            index_col = next((c for c in ("index", "id", "idx") if c in names), None)
        text_i, pair_i, label_i, index_i = (position(c) for c in (text_col, pair_col, label_col, index_col))
    else:
        text_i, pair_i, label_i, index_i = text_col, pair_col, label_col, None
    needed = max(i for i in (text_i, pair_i, label_i, index_i) if i is not None)
    examples, skipped = [], 0
    for number, line in lines:
        fields = line.split("\t")
        if len(fields) <= needed:
            skipped += 1
            continue
        where = f"{path}: line {number}"
        label = _label(task, fields[label_i], where) if label_i is not None else None
        idx = len(examples)
        if index_i is not None:
            try:
                idx = int(fields[index_i])
            except ValueError:
                if not labelled:
                    raise GlueError(f"{where}: index {fields[index_i]!r} is not an integer") from None
        examples.append(Example(idx, fields[text_i], fields[pair_i] if pair_i is not None else None, label))
    if not examples:
        raise GlueError(f"{path}: no examples")
    return Split(path, examples, skipped)


def _hf_rows(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise GlueError(f"{path}: reading Parquet needs pyarrow: pip install 'minialbert[glue]'") from None
        try:
            return pq.read_table(path).to_pylist()
        except Exception as e:
            raise GlueError(f"{path}: not a readable Parquet file ({str(e).splitlines()[0][:200]})") from None
    rows = []
    for number, line in _lines(path):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise GlueError(f"{path}: line {number} is not valid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise GlueError(f"{path}: line {number} is not a JSON object")
        rows.append(row)
    return rows


def read_hf(task: Task, paths: list[Path], labelled: bool = True) -> Split:
    text_col, pair_col = task.hf_columns
    examples, skipped = [], 0
    for path in paths:
        rows = _hf_rows(path)
        unit = "row" if path.suffix == ".parquet" else "line"
        for number, row in enumerate(rows, start=1):
            for col in (text_col, pair_col, "label" if labelled else None):
                if col is not None and col not in row:
                    raise GlueError(f"{path}: {unit} {number} has no {col!r} (its fields: {', '.join(row)}); "
                                    f"is this the Hugging Face glue/{task.key} export?")
            text, pair = row[text_col], row[pair_col] if pair_col else None
            if not isinstance(text, str) or (pair_col and not isinstance(pair, str)):
                skipped += 1
                continue
            label = _label(task, row["label"], f"{path}: {unit} {number}") if labelled else None
            idx = row.get("idx", len(examples))
            examples.append(Example(int(idx), text, pair, label))
    if not examples:
        raise GlueError(f"{paths[0]}: no examples")
    return Split(paths[0], examples, skipped)


def finetune_rows(task: Task, examples: list[Example]) -> list[dict]:
    """Rows of the JSON-lines file handed to `minialbert finetune` (label names, not ids)."""
    rows = []
    for e in examples:
        row = {"text": e.text}
        if e.pair is not None:
            row["text_pair"] = e.pair
        row["label"] = e.label if task.kind == "regression" else task.labels[e.label]
        rows.append(row)
    return rows
