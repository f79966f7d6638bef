"""Reading texts from files and writing vectors, atomically. Used by the CLI; usable alone."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .errors import MinialbertError


class InputError(MinialbertError):
    """An input file that cannot be read as texts."""


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call write(tmp_path) on a temp file beside `path`, then rename it onto `path`.

    A reader (or an interrupted run) never sees a half-written file: either the old file or
    nothing stays, and the temp file is removed on any error, Ctrl-C included.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise MinialbertError(f"cannot write {path}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _decode_lines(data: bytes, name: str) -> list[str]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the file does not start another text
    texts = []
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"{name}: line {number} is not valid UTF-8 (byte {e.start + 1}: "
                             f"{raw[e.start:e.start + 1]!r}); convert the file to UTF-8") from None
        if number == 1 and text.startswith("\ufeff"):
            text = text[1:]  # byte-order mark
        texts.append(text[:-1] if text.endswith("\r") else text)
    return texts


def _read_bytes(path: str | os.PathLike) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"input file not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"input is a directory, not a file: {path}") from None
    except OSError as e:
        raise InputError(f"cannot read input file {path}: {e.strerror}") from None


def _json_objects(lines: list[str], name: str):
    """(line number, object) for each non-blank line of a JSON-lines file."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{name}: line {number} is not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise InputError(f"{name}: line {number} is not a JSON object")
        yield number, obj


def read_texts(path: str | os.PathLike | None, *, field: str | None = None, stdin_bytes: bytes | None = None) -> list[str]:
    """Texts from a file (one per line; .jsonl: one JSON object per line, text in `field`) or stdin.

    Every line of a plain file is one text, empty lines included, so row i of the output is
    line i + 1 of the input. In .jsonl files blank lines are skipped.
    """
    if path is None:
        name, data = "<stdin>", stdin_bytes or b""
    else:
        name, data = str(path), _read_bytes(path)
    lines = _decode_lines(data, name)
    is_jsonl = field is not None or name.endswith((".jsonl", ".ndjson"))
    if not is_jsonl:
        return lines
    field = field or "text"
    texts = []
    for number, obj in _json_objects(lines, name):
        if field not in obj:
            keys = ", ".join(sorted(obj)) or "none"
            raise InputError(f"{name}: line {number} has no field {field!r} (its fields: {keys}); "
                             "choose one with --field")
        value = obj[field]
        if not isinstance(value, str):
            raise InputError(f"{name}: line {number}: field {field!r} is {type(value).__name__}, not a string")
        texts.append(value)
    return texts


def write_vectors(path: str | os.PathLike, vectors: np.ndarray, texts: Sequence[str]) -> None:
    """.npy: float32 matrix (row i = text i); .jsonl: {"text", "vector"} per line; .json: a list."""
    path = Path(path)
    vectors = np.asarray(vectors, dtype=np.float32)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.save(f, vectors)
    elif suffix in (".jsonl", ".ndjson", ".json"):
        def write(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8") as f:
                rows = ({"text": t, "vector": v.tolist()} for t, v in zip(texts, vectors))
                if suffix == ".json":
                    json.dump(list(rows), f, ensure_ascii=False)
                    f.write("\n")
                else:
                    for row in rows:
                        f.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        raise MinialbertError(f"unknown output format {path.suffix or '(none)'!r} for {path}: use .npy, .jsonl or .json")
    atomic_write(path, write)


def write_jsonl(path: str | os.PathLike, rows: Sequence[dict]) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")

    atomic_write(path, write)


# --------------------------------------------------------------------------- tables
TABLE_SUFFIXES = (".csv", ".tsv", ".tab", ".jsonl", ".ndjson")


def read_table(path: str | os.PathLike) -> tuple[list[tuple[int, dict]], list[str]]:
    """Rows of a labelled data file: ([(line number, {column: value}), ...], column names).

    .csv: comma-separated with a header row and standard quoting. .tsv/.tab: tab-separated with a
    header row and no quoting (GLUE's convention: a `"` inside a sentence is just a character).
    .jsonl/.ndjson: one JSON object per line (blank lines skipped); the columns are the keys.
    """
    import csv
    import io

    name = str(path)
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError(f"{name}: unknown table format {suffix or '(no suffix)'!r}; use .csv, .tsv or .jsonl")
    data = _read_bytes(path)
    if suffix in (".jsonl", ".ndjson"):
        rows, columns = [], {}
        for number, obj in _json_objects(_decode_lines(data, name), name):
            rows.append((number, obj))
            columns.update(dict.fromkeys(obj))
        return rows, list(columns)
    text = "\n".join(_decode_lines(data, name))  # UTF-8 errors name their line
    if suffix == ".csv":
        reader = csv.reader(io.StringIO(text, newline=""))
    else:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    try:
        header = next(reader, None)
        if header is None:
            return [], []
        rows = []
        for record in reader:
            if not record or record == [""]:
                continue
            if len(record) != len(header):
                raise InputError(f"{name}: line {reader.line_num} has {len(record)} fields but the header has "
                                 f"{len(header)} ({', '.join(header)})")
            rows.append((reader.line_num, dict(zip(header, record))))
    except csv.Error as e:
        raise InputError(f"{name}: line {reader.line_num}: {e}") from None
    return rows, header


def write_rows(path: str | os.PathLike, rows: Sequence[dict]) -> None:
    """Result rows as .jsonl (one JSON object per line), .json (a list), .csv or .tsv (the first
    row's keys as header; lists and dicts written as JSON), atomically."""
    import csv

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        write_jsonl(path, rows)
        return
    if suffix == ".json":
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(list(rows), ensure_ascii=False) + "\n",
                                                             encoding="utf-8"))
        return
    if suffix not in (".csv", ".tsv"):
        raise MinialbertError(f"unknown output format {path.suffix or '(none)'!r} for {path}: use .jsonl, .json, .csv or .tsv")
    columns = list(dict.fromkeys(k for row in rows for k in row))

    def cell(v):
        return json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else ("" if v is None else v)

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, delimiter="," if suffix == ".csv" else "\t", lineterminator="\n")
            w.writerow(columns)
            for row in rows:
                w.writerow([cell(row.get(c)) for c in columns])

    atomic_write(path, write)
