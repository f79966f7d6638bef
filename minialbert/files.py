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


def atomic_write(path: str | os.PathLike, write: Callable[[str], None], *, durable: bool = False) -> None:
    """Call write(tmp_path) on a temp file beside `path`, then rename it onto `path`.

    A reader (or an interrupted run) never sees a half-written file: either the old file or
    nothing stays, and the temp file is removed on any error, Ctrl-C included.
    durable=True also fsyncs the file before the rename and the directory after it, so the
    new file survives a power cut or a kill -9 once this returns (resumable outputs need it).
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise MinialbertError(f"cannot write {path}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        write(tmp)
        if durable:
            _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if durable:
        _fsync(directory)  # the rename itself is only durable once the directory entry is


def _fsync(path: str | os.PathLike) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # directories cannot be opened on some platforms (Windows): nothing to sync
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories
    finally:
        os.close(fd)


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


def jsonl_text(line: str, number: int, name: str, field: str) -> str | None:
    """The text in `field` of one JSON-lines line; None for a blank line (skipped)."""
    if not line.strip():
        return None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(f"{name}: line {number} is not valid JSON ({e.msg})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{name}: line {number} is not a JSON object")
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


def read_texts(path: str | os.PathLike | None, *, field: str | None = None, stdin_bytes: bytes | None = None) -> list[str]:
    """Texts from a file (one per line; .jsonl: one JSON object per line, text in `field`) or stdin.

    Every line of a plain file is one text, empty lines included, so row i of the output is
    line i + 1 of the input. In .jsonl files blank lines are skipped.
    """
    if path is None:
        name, data = "<stdin>", stdin_bytes or b""
    else:
        name = str(path)
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise InputError(f"input file not found: {path}") from None
        except IsADirectoryError:
            raise InputError(f"input is a directory, not a file: {path}") from None
        except OSError as e:
            raise InputError(f"cannot read input file {path}: {e.strerror}") from None
    lines = _decode_lines(data, name)
    is_jsonl = field is not None or name.endswith((".jsonl", ".ndjson"))
    if not is_jsonl:
        return lines
    field = field or "text"
    texts = (jsonl_text(line, number, name, field) for number, line in enumerate(lines, start=1))
    return [t for t in texts if t is not None]


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
