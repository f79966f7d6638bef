"""Reading texts from files and writing vectors, atomically. Used by the CLI; usable alone."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from .errors import MinialbertError

if TYPE_CHECKING:
    import numpy as np

# Output formats by file suffix (lower-cased): what write_vectors writes, and JSON lines.
VECTOR_SUFFIXES = (".npy", ".jsonl", ".ndjson", ".json")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
LOCK_FILE = ".lock"  # held (flock) by a process writing a vectors or index directory


class InputError(MinialbertError):
    """An input file that cannot be read as texts."""


def check_output_path(path: str | os.PathLike, suffixes: Sequence[str] = VECTOR_SUFFIXES, hint: str = "") -> str:
    """Check an output path before any work is done; return its lower-cased suffix.

    The suffix must be one of `suffixes` and the directory must exist, so that a typo costs
    nothing rather than the whole computation.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        raise MinialbertError(f"unknown output format {suffix or '(none)'!r} for {path}: use a name ending in "
                              f"{', '.join(suffixes[:-1])} or {suffixes[-1]}{hint}")
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise MinialbertError(f"cannot write {path}: directory {directory} does not exist")
    return suffix


def _create_temp_beside(path: Path) -> str:
    """A new empty file in path's directory, created as open() creates files: mode 0o666 minus
    the process umask (tempfile.mkstemp would make it 0600, and os.replace keeps that)."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return str(tmp)
        except FileExistsError:
            continue


def _fsync_path(path: str | os.PathLike, directory: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        if directory:  # some platforms (Windows) cannot open a directory: nothing to sync there
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call write(tmp_path) on a temp file beside `path`, then rename it onto `path`.

    A reader (or an interrupted run) never sees a half-written file: either the old file or
    nothing stays, and the temp file is removed on any error, Ctrl-C included. The data is
    flushed to disk before the rename and the directory entry after it, so that a power cut
    cannot leave an empty file under the final name. The file gets the permissions a plain
    open() would give it (0o666 minus the umask).
    """
    path = Path(path)
    if not str(path.parent):
        path = Path(".") / path
    if not path.parent.is_dir():
        raise MinialbertError(f"cannot write {path}: directory {path.parent} does not exist")
    tmp = _create_temp_beside(path)
    try:
        wanted = os.stat(tmp).st_mode  # what the umask made of 0o666
        write(tmp)
        if os.stat(tmp).st_mode != wanted:  # the writer made its own file (safetensors does, 0600)
            os.chmod(tmp, wanted)
        _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_path(path.parent, directory=True)


def lock_directory(path: str | os.PathLike, busy: str, error: type[MinialbertError] = MinialbertError):
    """Hold an exclusive lock on a directory while writing it: the open lock file `path/.lock`
    (close it to release), or None where the OS has no flock (Windows). Another process holding
    it raises error(busy) at once. The kernel drops a flock when its process dies (kill -9
    included), so a crashed writer leaves no stale lock; the empty .lock file itself is harmless."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; the manifest checks still apply
        return None
    f = open(Path(path) / LOCK_FILE, "a")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise error(busy) from None
    return f


def decode_line(raw: bytes, number: int, name: str) -> str:
    """One line of a text file (without its newline) as str: UTF-8, BOM dropped on line 1, CR stripped."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{name}: line {number} is not valid UTF-8 (byte {e.start + 1}: "
                         f"{raw[e.start:e.start + 1]!r}); convert the file to UTF-8") from None
    if number == 1 and text.startswith("\ufeff"):
        text = text[1:]  # byte-order mark
    return text[:-1] if text.endswith("\r") else text


def _json_object(line: str, number: int, name: str) -> dict | None:
    """One line of a JSON-lines file as a dict; None for a blank line (skipped)."""
    if not line.strip():
        return None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(f"{name}: line {number} is not valid JSON ({e.msg})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{name}: line {number} is not a JSON object")
    return obj


def jsonl_text(line: str, number: int, name: str, field: str) -> str | None:
    """The text in `field` of one JSON-lines line; None for a blank line (skipped)."""
    obj = _json_object(line, number, name)
    if obj is None:
        return None
    if field not in obj:
        keys = ", ".join(sorted(obj)) or "none"
        raise InputError(f"{name}: line {number} has no field {field!r} (its fields: {keys}); "
                         "choose one with --field")
    value = obj[field]
    if not isinstance(value, str):
        raise InputError(f"{name}: line {number}: field {field!r} is {type(value).__name__}, not a string")
    return value


def _decode_lines(data: bytes, name: str) -> list[str]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the file does not start another text
    return [decode_line(raw, number, name) for number, raw in enumerate(lines, start=1)]


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
        obj = _json_object(line, number, name)
        if obj is not None:
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
    texts = (jsonl_text(line, number, name, field) for number, line in enumerate(lines, start=1))
    return [t for t in texts if t is not None]


def write_vectors(path: str | os.PathLike, vectors: np.ndarray, texts: Sequence[str]) -> None:
    """.npy: float32 matrix (row i = text i); .jsonl: {"text", "vector"} per line; .json: a list."""
    import numpy as np

    path = Path(path)
    suffix = check_output_path(path)
    vectors = np.asarray(vectors, dtype=np.float32)
    if suffix == ".npy":
        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.save(f, vectors)
    else:
        def write(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8") as f:
                rows = ({"text": t, "vector": v.tolist()} for t, v in zip(texts, vectors))
                if suffix == ".json":
                    json.dump(list(rows), f, ensure_ascii=False)
                    f.write("\n")
                else:
                    for row in rows:
                        f.write(json.dumps(row, ensure_ascii=False) + "\n")
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
