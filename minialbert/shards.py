"""A directory of vectors: Parquet shards plus a manifest, written so that a kill -9 loses nothing.

    out/
      manifest.json          model, options, input, and every completed shard (rows, checksum)
      part-000000.parquet    rows of window 0: id (int64), [text], vector (fixed_size_list<float32>[H])
      part-000001.parquet    ...

Shard k holds the texts with ids [k * window, (k + 1) * window): shard boundaries are window
boundaries, so which texts a shard holds depends only on the input and the window size, never
on where an earlier run stopped. Each shard is written to a temp file, fsynced and renamed
before the manifest names it; the manifest is replaced the same way. On resume, a shard the
manifest names is checked (size, SHA-256) and redone if it is missing or damaged.

`load_vectors(dir)` and `iter_vectors(dir)` read such a directory back (or any directory of
Parquet files with `id`/`vector` columns, such as a Ray Data pipeline's output).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .errors import MinialbertError
from .files import LOCK_FILE, atomic_write, lock_directory
from .readers import require_pyarrow

MANIFEST = "manifest.json"
FORMAT = "minialbert.vectors"
VERSION = 1
LOCK = LOCK_FILE


class OutputDirError(MinialbertError):
    """An output directory that cannot be written or resumed as asked."""


class IncompleteRunWarning(UserWarning):
    """The directory holds the vectors of a run that has not finished (yet)."""


def shard_name(window: int) -> str:
    return f"part-{window:06d}.parquet"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_manifest(directory: Path) -> dict | None:
    path = directory / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise OutputDirError(f"{path} is unreadable ({e}); remove {directory} to start over") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise OutputDirError(f"{path} is not a minialbert manifest; choose another output directory")
    if manifest.get("version") != VERSION:
        raise OutputDirError(f"{path} has format version {manifest.get('version')}, this minialbert writes "
                             f"{VERSION}; finish it with the minialbert that started it, or start over elsewhere")
    return manifest


def _differences(here: dict, there: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(here) | set(there)):
        a, b = here.get(key), there.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {json.dumps(a)} now, {json.dumps(b)} there")
    return out


class OutputDirectory:
    """The writer side: create or resume a directory, add shards, mark it complete.

    header = {"model": {...}, "options": {...}, "input": {...}, "dim": H}. A resumed run must
    match the manifest's model fingerprint and options exactly (they decide the numbers);
    the input is checked window by window by the caller (texts_sha256 of each shard).
    """

    def __init__(self, path: Path, manifest: dict, lock_file):
        self.path = path
        self.manifest = manifest
        self._lock_file = lock_file
        self.completed: dict[int, dict] = {s["window"]: s for s in manifest["shards"]}
        self.redone: list[str] = []  # shards found damaged on open, to be written again
        self.grown: dict[int, dict] = {}  # partial last windows that grew: {window: what they extend}

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: str | os.PathLike, header: dict, *, resume: bool) -> "OutputDirectory":
        require_pyarrow("writing vectors to a directory (Parquet shards)")
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise OutputDirError(f"{path} is a file, not a directory; end the output path with / for a directory")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputDirError(f"cannot create output directory {path}: {e.strerror}") from None
        lock = _lock(path)
        try:
            _remove_temp_files(path)
            manifest = _read_manifest(path)
            if manifest is None:
                others = sorted(p.name for p in path.iterdir() if p.name != LOCK)
                if others:
                    raise OutputDirError(f"{path} is not empty and holds no {MANIFEST} (it has {', '.join(others[:3])}"
                                         f"{', ...' if len(others) > 3 else ''}); choose a new or empty directory")
                manifest = {"format": FORMAT, "version": VERSION, **header, "shards": [], "complete": False,
                            "total_rows": None}
                from . import __version__

                manifest["created_by"] = f"minialbert {__version__}"
                out = cls(path, manifest, lock)
                out._save()
                return out
            done = f"{sum(s['rows'] for s in manifest['shards']):,} texts in {len(manifest['shards'])} shard(s)"
            if not resume:
                state = "a complete run" if manifest.get("complete") else "an unfinished run"
                raise OutputDirError(f"{path} already holds {state} ({done}); add --resume (resume=True) to continue "
                                     "it, or choose another directory")
            diffs = []
            if header["model"]["fingerprint"] != manifest["model"]["fingerprint"]:
                diffs.append(f"model: {header['model']['name']} now, {manifest['model']['name']} there "
                             "(different weights, config such as --layer-calls, tokenizer or dtype)")
            diffs += _differences(header["options"], manifest["options"], "")
            if header.get("dim") != manifest.get("dim"):
                diffs.append(f"dim: {header.get('dim')} now, {manifest.get('dim')} there")
            if diffs:
                raise OutputDirError(f"{path} was written with other settings ({'; '.join(diffs)}); resume with the "
                                     "same model and options, or choose another directory")
            out = cls(path, manifest, lock)
            out._verify_shards()
            return out
        except BaseException:
            _unlock(lock)
            raise

    def _verify_shards(self) -> None:
        """Drop every named shard whose file is missing or differs from its recorded size/checksum."""
        good = []
        for shard in self.manifest["shards"]:
            file = self.path / shard["file"]
            ok = file.is_file() and file.stat().st_size == shard["bytes"] and _sha256_file(file) == shard["sha256"]
            if ok:
                good.append(shard)
            else:
                self.redone.append(shard["file"])
        if self.redone:
            self.manifest["shards"] = good
            self.manifest["complete"] = False
            self.completed = {s["window"]: s for s in good}
            self._save()

    # ------------------------------------------------------------------ writing
    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete"))

    @property
    def rows_done(self) -> int:
        return sum(s["rows"] for s in self.manifest["shards"])

    def write_shard(self, window: int, ids: np.ndarray, vectors: np.ndarray, texts: Sequence[str] | None,
                    texts_sha256: str, extends: dict | None = None) -> dict:
        """Write shard `window` durably, then name it in the manifest. Rows must be in id order.

        extends = {"rows", "texts_sha256"}: this shard replaces one whose texts were its first rows."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, dim = vectors.shape
        columns = {"id": pa.array(np.asarray(ids, dtype=np.int64))}
        if texts is not None:
            columns["text"] = pa.array(list(texts), type=pa.string())
        columns["vector"] = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim)
        table = pa.table(columns)
        sink = pa.BufferOutputStream()
        # No dictionary encoding or statistics for the vector floats: they would cost time and
        # save nothing (every value is distinct); the id column keeps its min/max statistics.
        pq.write_table(table, sink, use_dictionary=["text"] if texts is not None else False,
                       write_statistics=["id"], compression="snappy")
        data = sink.getvalue()
        name = shard_name(window)
        atomic_write(self.path / name, lambda tmp: Path(tmp).write_bytes(memoryview(data)))
        shard = {"window": window, "file": name, "first_id": int(ids[0]) if n else None, "rows": int(n),
                 "bytes": data.size, "sha256": hashlib.sha256(memoryview(data)).hexdigest(),
                 "texts_sha256": texts_sha256}
        if extends is not None:
            shard["extends"] = extends
        self.completed[window] = shard
        self.manifest["shards"] = [self.completed[k] for k in sorted(self.completed)]
        self._save()
        return shard

    def finish(self, total_rows: int) -> None:
        self.manifest["complete"] = True
        self.manifest["total_rows"] = int(total_rows)
        self._save()

    def update(self, **fields) -> None:
        self.manifest.update(fields)
        self._save()

    def _save(self) -> None:
        text = json.dumps(self.manifest, indent=1, ensure_ascii=False) + "\n"
        atomic_write(self.path / MANIFEST, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))

    def close(self) -> None:
        _unlock(self._lock_file)
        self._lock_file = None

    def __enter__(self) -> "OutputDirectory":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _remove_temp_files(path: Path) -> None:
    """Temp files of a killed run (atomic_write names them .NAME.XXXX.tmp): never valid data."""
    for p in path.iterdir():
        if p.name.startswith((".part-", f".{MANIFEST}.", ".vectors-")) and p.name.endswith(".tmp"):
            p.unlink(missing_ok=True)


def _lock(path: Path):
    """Hold an exclusive lock on the directory while writing (two runs into one directory would
    interleave shards). The OS drops it when the process dies, kill -9 included."""
    return lock_directory(path, f"{path} is being written by another minialbert run; wait for it to finish or "
                                "choose another directory", OutputDirError)


def _unlock(f) -> None:
    if f is not None:
        f.close()  # closing the file releases the flock


# ------------------------------------------------------------------------- reading
def _shard_files(path: Path) -> tuple[list[Path], dict | None]:
    require_pyarrow("reading a vectors directory")
    if not path.is_dir():
        raise OutputDirError(f"no such directory: {path}")
    manifest = _read_manifest(path)
    if manifest is not None:
        if not manifest.get("complete"):
            warnings.warn(f"{path} holds an unfinished run: {sum(s['rows'] for s in manifest['shards']):,} texts so "
                          "far; resume it to get the rest", IncompleteRunWarning, stacklevel=3)
        return [path / s["file"] for s in manifest["shards"]], manifest
    files = sorted(p for p in path.glob("*.parquet") if p.is_file())
    if not files:
        raise OutputDirError(f"{path} holds no {MANIFEST} and no .parquet files")
    return files, None


def _read_columns(file: Path, columns: list[str]):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(file).names
        table = pq.read_table(file, columns=[c for c in columns if c in names])
    except (pa.ArrowException, OSError) as e:
        raise OutputDirError(f"{file}: cannot read it as Parquet ({str(e).strip().splitlines()[0]})") from None
    if "vector" in columns and "vector" not in names:
        raise OutputDirError(f"{file} has no 'vector' column (its columns: {', '.join(names)})")
    return table


def _vectors_of(table, file: Path) -> np.ndarray:
    import pyarrow as pa

    column = table.column("vector").combine_chunks()
    kind = column.type
    if pa.types.is_fixed_size_list(kind):
        dim = kind.list_size
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
        lengths = column.value_lengths().to_numpy(zero_copy_only=False)
        dim = int(lengths[0]) if len(lengths) else 0
        if len(lengths) and (lengths != dim).any():
            raise OutputDirError(f"{file}: vectors of different lengths in one column")
    else:
        raise OutputDirError(f"{file}: column 'vector' holds {kind}, not lists of floats")
    values = column.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float32).reshape(len(column), dim)


def _ids_of(table, start: int) -> np.ndarray:
    if "id" in table.column_names:
        return table.column("id").to_numpy().astype(np.int64, copy=False)
    return np.arange(start, start + table.num_rows, dtype=np.int64)  # no ids: file order is row order


def iter_vectors(directory: str | os.PathLike) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, vectors) shard by shard, each an int64 array and a float32 (rows, H) matrix.

    Memory holds one shard at a time. With a manifest the shards come in id order; without
    one (a directory written by another pipeline), in file-name order.
    """
    files, _ = _shard_files(Path(directory))
    start = 0
    for file in files:
        table = _read_columns(file, ["id", "vector"])
        ids = _ids_of(table, start)
        start += table.num_rows
        yield ids, _vectors_of(table, file)


def load_vectors(directory: str | os.PathLike, *, mmap: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """ids (int64, sorted) and their vectors (float32, (n, H)), row i belonging to ids[i].

    mmap=False reads everything into memory. mmap=True copies the shards, one at a time, into
    DIR/vectors-<digest>.npy once (rebuilt when the shards change) and returns a read-only
    memory map of it: for collections larger than memory.
    """
    path = Path(directory)
    files, manifest = _shard_files(path)
    # ids first (small), to size the matrix and to place every row by id
    starts, ids_per_file, start = [], [], 0
    for file in files:
        ids = _ids_of(_read_columns(file, ["id"]), start)
        ids_per_file.append(ids)
        starts.append(start)
        start += len(ids)
    all_ids = np.concatenate(ids_per_file) if ids_per_file else np.zeros(0, np.int64)
    order_ids = np.sort(all_ids)
    if len(order_ids) > 1 and (order_ids[1:] == order_ids[:-1]).any():
        dup = int(order_ids[1:][order_ids[1:] == order_ids[:-1]][0])
        raise OutputDirError(f"{path}: id {dup} appears more than once; the directory mixes two runs")
    dim = manifest["dim"] if manifest else None
    if dim is None:
        dim = _vectors_of(_read_columns(files[0], ["vector"]), files[0]).shape[1] if files else 0

    def fill(matrix: np.ndarray) -> None:
        for file, ids in zip(files, ids_per_file):
            vectors = _vectors_of(_read_columns(file, ["vector"]), file)
            if vectors.shape[1] != dim:
                raise OutputDirError(f"{file}: vectors of dimension {vectors.shape[1]}, expected {dim}")
            matrix[np.searchsorted(order_ids, ids)] = vectors

    if not mmap:
        matrix = np.empty((len(order_ids), dim), dtype=np.float32)
        fill(matrix)
        return order_ids, matrix
    digest = hashlib.sha256(json.dumps([[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files])
                            .encode()).hexdigest()[:16]
    cache = path / f"vectors-{digest}.npy"
    if not cache.exists():
        def write(tmp: str) -> None:
            matrix = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(order_ids), dim))
            fill(matrix)
            matrix.flush()
            del matrix

        atomic_write(cache, write)
        for stale in path.glob("vectors-*.npy"):
            if stale != cache:
                stale.unlink(missing_ok=True)
    return order_ids, np.load(cache, mmap_mode="r")
