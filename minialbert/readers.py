"""Input files read as streams of texts: .txt, .jsonl, .csv/.tsv and .parquet, one text at a time.
Line-based formats may be gzip-compressed (corpus.txt.gz, rows.jsonl.gz): read as they decompress.

    inp = open_input("corpus.jsonl", field="body")
    for text in inp.texts():            # never holds more than one line (or one Parquet batch)
        ...

A stream remembers where the next text starts (`stream.position`), and `inp.texts(position)`
starts reading there: the Ray path hands each worker a position instead of the texts, and a
position's `line` keeps error messages true ("line 30,001 is not valid UTF-8") wherever the
read started. Text ids are 0, 1, 2, ... in input order: line i + 1 of a .txt file is text i
(empty lines included, as `minialbert.files.read_texts` reads it); blank lines of .jsonl and
.csv files are skipped, so there the id counts texts, not lines.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .files import InputError, decode_line, jsonl_text

FORMATS = {".txt": "txt", ".text": "txt", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv",
           ".parquet": "parquet", ".pq": "parquet"}
DEFAULT_FIELD = "text"
_PARQUET_BATCH = 8192  # rows per Parquet read: small enough to stay out of the way of the memory bound


def require_pyarrow(what: str):
    """Import pyarrow, or say in one line which extra brings it."""
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise InputError(f"{what} needs pyarrow, which is not installed: pip install 'minialbert[stream]'") from None
    return pyarrow


@dataclass(frozen=True)
class Position:
    """Where a text starts: its id, and for line-based files its byte offset and line number."""

    index: int = 0
    offset: int = 0
    line: int = 1


class TextInput:
    """An input file, checked when opened (exists, readable, the column is there), read lazily.

    format: txt | jsonl | csv | tsv | parquet, from the file name; a --field with a plain text
    file means JSON lines (as read_texts does). size: bytes on disk. num_rows: the number of
    texts when the file says so up front (Parquet), else None.
    """

    def __init__(self, path: str | os.PathLike, *, field: str | None = None, format: str | None = None):
        self.path = Path(path)
        self.name = str(path)
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            raise InputError(f"input file not found: {path}") from None
        except OSError as e:
            raise InputError(f"cannot read input file {path}: {e.strerror}") from None
        if self.path.is_dir():
            raise InputError(f"input is a directory, not a file: {path}")
        self.size = stat.st_size
        self.mtime_ns = stat.st_mtime_ns
        self.compressed = self.path.suffix.lower() == ".gz"
        suffix = Path(self.path.stem).suffix if self.compressed else self.path.suffix
        fmt = format or FORMATS.get(suffix.lower(), "txt")
        if fmt == "txt" and field is not None:
            fmt = "jsonl"
        if fmt not in set(FORMATS.values()):
            raise InputError(f"unknown input format {fmt!r}: use txt, jsonl, csv, tsv or parquet")
        if self.compressed and fmt == "parquet":
            raise InputError(f"{path}: a gzip-compressed Parquet file cannot be streamed; Parquet compresses "
                             "its own columns, so store it uncompressed")
        self.format = fmt
        self.field = None if fmt == "txt" else (field or DEFAULT_FIELD)
        self.num_rows: int | None = None
        self._column: int | None = None  # csv: index of the field in the header
        self._header_end = Position()    # csv: where the first record starts
        try:
            if fmt == "parquet":
                self._open_parquet()
            elif fmt in ("csv", "tsv"):
                self._open_csv()
            else:
                with open(self.path, "rb") as f:
                    if self.compressed and f.read(2) not in (b"\x1f\x8b", b""):
                        raise InputError(f"{path}: not a gzip file (its name ends in .gz)")
        except PermissionError as e:
            raise InputError(f"cannot read input file {path}: {e.strerror}") from None

    def __repr__(self) -> str:
        return f"TextInput({self.name!r}, format={self.format!r}, field={self.field!r})"

    def texts(self, start: Position | None = None) -> "TextStream":
        """Texts from `start` (default: the first) to the end of the file."""
        return TextStream(self, start)

    # ---------------------------------------------------------------- opening
    def _open_parquet(self) -> None:
        require_pyarrow("reading Parquet input")
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(self.path)
        except (pa.ArrowException, OSError) as e:
            raise InputError(f"{self.name}: not a readable Parquet file ({_first_line(e)})") from None
        schema = pf.schema_arrow
        if self.field not in schema.names:
            raise InputError(f"{self.name} has no column {self.field!r} (its columns: {', '.join(schema.names)}); "
                             "choose one with --field")
        kind = schema.field(self.field).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)
                or getattr(pa.types, "is_string_view", lambda _: False)(kind)):
            raise InputError(f"{self.name}: column {self.field!r} holds {kind}, not strings; choose a text column "
                             "with --field")
        self.num_rows = pf.metadata.num_rows

    def _open_csv(self) -> None:
        lines = _LineReader(self, Position())
        try:
            header = next(self._csv_records(lines), None)
        finally:
            lines.close()
        if header is None:  # an empty file: no columns, no texts
            self._column = 0
            self._header_end = Position(0, lines.offset, lines.line)
            return
        names = [h.strip() for h in header]
        if self.field not in names:
            raise InputError(f"{self.name} has no column {self.field!r} (its columns: {', '.join(names)}); "
                             "choose one with --field")
        self._column = names.index(self.field)
        self._header_end = Position(0, lines.offset, lines.line)

    def _csv_records(self, lines: "_LineReader") -> Iterator[list[str]]:
        # Records may span lines (quoted newlines); csv pulls exactly the lines of one record
        # from `lines`, so lines.offset is the start of the next record after each one.
        reader = csv.reader(lines, delimiter="\t" if self.format == "tsv" else ",")
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                raise InputError(f"{self.name}: line {lines.line - 1} is not valid {self.format.upper()} ({e})") from None
            yield record


class _LineReader:
    """Raw lines of a file from a byte offset, decoded as UTF-8 with true line numbers.

    `offset`/`line` always point at the next unread line, so they are the resume position of
    whatever was built from the lines read so far. keep_newline: csv needs the line ends.
    """

    def __init__(self, inp: TextInput, start: Position, keep_newline: bool = True):
        self.name = inp.name
        self.offset, self.line = start.offset, start.line
        self.keep_newline = keep_newline
        self._file = gzip.open(inp.path, "rb") if inp.compressed else open(inp.path, "rb")
        if start.offset:
            self._file.seek(start.offset)  # a gzip stream seeks by decompressing up to the offset

    def __iter__(self) -> "_LineReader":
        return self

    def __next__(self) -> str:
        try:
            raw = self._file.readline()
        except (OSError, EOFError) as e:  # a corrupt or truncated .gz
            raise InputError(f"{self.name}: cannot decompress after line {self.line - 1} ({e})") from None
        if not raw:
            self.close()
            raise StopIteration
        number = self.line
        self.offset += len(raw)
        self.line += 1
        if self.keep_newline:  # csv: keep the line end as it is (\r\n inside a quoted field is data)
            return decode_line(raw, number, self.name)
        return decode_line(raw[:-1] if raw.endswith(b"\n") else raw, number, self.name)

    def close(self) -> None:
        self._file.close()


class TextStream:
    """An iterator of texts. After each text, `position` is where the next one starts."""

    def __init__(self, inp: TextInput, start: Position | None):
        self.input = inp
        start = start or Position()
        if inp.format in ("csv", "tsv") and start.offset < inp._header_end.offset:
            start = inp._header_end  # never read the header as a text
        self.index = start.index
        self._lines: _LineReader | None = None
        if inp.format == "parquet":
            self._gen = self._parquet(start.index)
        else:
            self._lines = _LineReader(inp, start, keep_newline=inp.format in ("csv", "tsv"))
            self._gen = {"txt": self._txt, "jsonl": self._jsonl}.get(inp.format, self._csv)()

    def __iter__(self) -> "TextStream":
        return self

    def __next__(self) -> str:
        text = next(self._gen)
        self.index += 1
        return text

    @property
    def position(self) -> Position:
        if self._lines is None:
            return Position(self.index)
        return Position(self.index, self._lines.offset, self._lines.line)

    @property
    def bytes_read(self) -> int:
        """How far into the file the stream is (for Parquet: estimated from rows)."""
        if self._lines is not None:
            return self._lines.offset
        rows = self.input.num_rows or 0
        return int(self.input.size * self.index / rows) if rows else self.input.size

    def take(self, n: int) -> list[str]:
        return list(itertools.islice(self, n))

    def close(self) -> None:
        if self._lines is not None:
            self._lines.close()
        self._gen.close()

    # ------------------------------------------------------------ formats
    def _txt(self) -> Iterator[str]:
        yield from self._lines

    def _jsonl(self) -> Iterator[str]:
        lines = self._lines
        for line in lines:
            text = jsonl_text(line, lines.line - 1, self.input.name, self.input.field)
            if text is not None:
                yield text

    def _csv(self) -> Iterator[str]:
        inp, lines, column = self.input, self._lines, self.input._column
        for record in inp._csv_records(lines):
            if not record:
                continue  # a blank line
            if len(record) <= column:
                raise InputError(f"{inp.name}: the record ending on line {lines.line - 1} has {len(record)} field(s), "
                                 f"and column {inp.field!r} is number {column + 1}")
            yield record[column]

    def _parquet(self, start: int) -> Iterator[str]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        inp = self.input
        try:
            pf = pq.ParquetFile(inp.path)
            meta = pf.metadata
            first, row = 0, 0  # first row group that holds row `start`, and its first row
            while first < meta.num_row_groups and row + meta.row_group(first).num_rows <= start:
                row += meta.row_group(first).num_rows
                first += 1
            if first >= meta.num_row_groups:
                return
            skip = start - row
            for batch in pf.iter_batches(batch_size=_PARQUET_BATCH, columns=[inp.field],
                                         row_groups=range(first, meta.num_row_groups)):
                values = batch.column(0)
                if skip:
                    cut = min(skip, len(values))
                    values, skip, row = values.slice(cut), skip - cut, row + cut
                texts = values.to_pylist()
                if values.null_count:  # the texts before it first, as a line-based file would
                    bad = texts.index(None)
                    yield from texts[:bad]
                    raise InputError(f"{inp.name}: row {row + bad + 1} has no text (null in column {inp.field!r})")
                row += len(texts)
                yield from texts
        except pa.ArrowException as e:
            raise InputError(f"{inp.name}: cannot read Parquet data ({_first_line(e)})") from None


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def open_input(path: str | os.PathLike, *, field: str | None = None, format: str | None = None) -> TextInput:
    """Open an input file as a stream of texts (see TextInput)."""
    return TextInput(path, field=field, format=format)


# csv's default limit (131,072 characters per field) would reject long documents, which are
# exactly what --long-text chunk is for. The limit is process-wide: raise it once, here.
csv.field_size_limit(2**31 - 1)
