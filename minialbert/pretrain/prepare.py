"""Prepare once, train many times: a corpus -> token-id shards on disk (`minialbert pretrain-data`).

    minialbert pretrain-data corpus/ wiki.jsonl.gz --field text --output data/ --vocab-size 30000 --workers 2

The corpus is read as a stream (data.iter_documents: .txt blank-line documents, .jsonl and
.parquet rows, directories, globs, .gz) and tokenized by the AlbertTokenizer inference uses, in
--workers processes. Memory holds a bounded window of documents, never the corpus.

DATA_DIR layout (in the way of nanoGPT's train.bin / Megatron's indexed datasets):

    manifest.json                    tokenizer sha256 + compat, counts, every shard's files and checksums
    spiece.model, tokenizer_config.json
    train-00000/tokens.npy           all token ids of the shard, flat (uint16 when the vocabulary fits, else int32)
    train-00000/segments.npy         int64 (S + 1,): segment j is tokens[segments[j]:segments[j + 1]]
    train-00000/documents.npy        int64 (D + 1,): document d is segments[documents[d]:documents[d + 1]]
    valid-00000/...                  the held-out documents (--valid-fraction), same layout

Documents keep their order; a document goes to the held-out split when a hash of (seed, its
index) falls below --valid-fraction, so the split does not depend on --workers or on resuming.
A shard is written into a temp folder and renamed (atomic), and only then recorded in the
manifest (rewritten atomically): a preparation killed at any moment keeps every shard the
manifest lists, and --resume continues after the last of them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from collections import OrderedDict, deque
from pathlib import Path

import numpy as np

from ..files import atomic_write
from . import PretrainError
from .data import TOKENIZER_COMPATS, Vocab, corpus_files, iter_documents, train_sentencepiece

MANIFEST = "manifest.json"
FORMAT = "minialbert-pretrain-data"
VERSION = 1
SHARD_FILES = ("tokens.npy", "segments.npy", "documents.npy")
_CHUNK_DOCS = 256  # documents per tokenization task


# ----------------------------------------------------------------------------- helpers
def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_valid_document(index: int, fraction: float, seed: int) -> bool:
    """The held-out split: a hash of (seed, document index) below `fraction`."""
    if fraction <= 0:
        return False
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64 < fraction


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.int32)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())


class _ShardBuffer:
    """The documents of the shard being built: per document its tokens and the lengths of its
    non-empty segments, as arrays (views into the workers' chunks)."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.clear()

    def clear(self):
        self.tokens: list[np.ndarray] = []
        self.lengths: list[np.ndarray] = []
        self.document_ends: list[int] = []
        self.n_tokens = 0
        self.n_segments = 0

    def add(self, tokens: np.ndarray, lengths: np.ndarray) -> None:
        """One document: its tokens, flat, and its segments' lengths (all > 0)."""
        self.tokens.append(tokens)
        self.lengths.append(lengths)
        self.n_tokens += len(tokens)
        self.n_segments += len(lengths)
        self.document_ends.append(self.n_segments)

    @property
    def n_documents(self) -> int:
        return len(self.document_ends)

    def arrays(self) -> dict[str, np.ndarray]:
        tokens = np.concatenate(self.tokens).astype(self.dtype, copy=False) if self.tokens \
            else np.zeros(0, self.dtype)
        segments = np.zeros(self.n_segments + 1, dtype=np.int64)
        if self.n_segments:
            np.cumsum(np.concatenate(self.lengths), out=segments[1:])
        return {"tokens.npy": tokens, "segments.npy": segments,
                "documents.npy": np.asarray([0, *self.document_ends], dtype=np.int64)}


# ------------------------------------------------------------------------ worker side
_WORKER_VOCAB: Vocab | None = None


def _init_worker(vocab_path: str, compat: str) -> None:
    global _WORKER_VOCAB
    _WORKER_VOCAB = Vocab.load(vocab_path, compat, threads=1)


def _encode_chunk(docs: list[list[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token ids of every segment of every document (the tokenizer's batched path), packed for
    the trip back to the writer: all ids flat (the shard dtype), the length of every non-empty
    segment, and how many of those each document has. (Arrays pickle as bytes; nested lists of
    ints cost the writer process a Python object per token.)"""
    from itertools import chain

    ids = _WORKER_VOCAB.encode([s for d in docs for s in d])
    lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    keep = lengths > 0
    kept_before = np.concatenate([[0], np.cumsum(keep)])  # non-empty segments before each segment
    bounds = np.cumsum([0] + [len(d) for d in docs])  # each document's first segment
    per_doc = kept_before[bounds[1:]] - kept_before[bounds[:-1]]
    flat = np.fromiter(chain.from_iterable(ids), dtype=token_dtype(_WORKER_VOCAB.size), count=int(lengths.sum()))
    return flat, lengths[keep], per_doc.astype(np.int64)


def _split_chunk(chunk):
    """Per document of an encoded chunk: (its tokens, its segments' lengths)."""
    flat, lengths, per_doc = chunk
    t = s = 0
    for n in per_doc.tolist():
        seg = lengths[s:s + n]
        size = int(seg.sum())
        yield flat[t:t + size], seg
        t += size
        s += n


def _chunks(documents, size: int):
    chunk = []
    for doc in documents:
        chunk.append(doc)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _encoded(documents, vocab_path: Path, compat: str, workers: int):
    """Token ids of each document, in order, from `workers` processes; at most 2 x workers
    chunks in flight, so memory stays bounded however long the stream."""
    if workers <= 1:
        _init_worker(str(vocab_path), compat)
        for chunk in _chunks(documents, _CHUNK_DOCS):
            yield from _split_chunk(_encode_chunk(chunk))
        return
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # a fresh interpreter: no tokenizer thread pool copied by fork
    with ctx.Pool(workers, initializer=_init_worker, initargs=(str(vocab_path), compat)) as pool:
        pending: deque = deque()
        for chunk in _chunks(documents, _CHUNK_DOCS):
            pending.append(pool.apply_async(_encode_chunk, (chunk,)))
            if len(pending) >= 2 * workers:
                yield from _split_chunk(pending.popleft().get())
        while pending:
            yield from _split_chunk(pending.popleft().get())


# ---------------------------------------------------------------------------- writer
def prepare(corpus: list[str | os.PathLike], output: str | os.PathLike, *, vocab: str | os.PathLike | None = None,
            vocab_size: int = 30000, vocab_sample_bytes: int = 100_000_000, field: str | None = None,
            compat: str = "transformers", workers: int = 1, shard_tokens: int = 50_000_000,
            valid_fraction: float = 0.0, seed: int = 12345, resume: bool = False, overwrite: bool = False,
            quiet: bool = True, kill_after_shards: int | None = None) -> dict:
    """Tokenize `corpus` into DATA_DIR `output` (see the module docstring); return the manifest."""
    out = Path(output)
    if compat not in TOKENIZER_COMPATS:
        raise PretrainError(f"tokenizer compat must be one of {', '.join(TOKENIZER_COMPATS)}, got {compat!r}")
    if not 0 <= valid_fraction < 1:
        raise PretrainError(f"--valid-fraction must be in [0, 1), got {valid_fraction}")
    if workers < 1 or shard_tokens < 1:
        raise PretrainError("--workers and --shard-tokens must be >= 1")
    files = corpus_files(corpus)
    sources = [{"path": str(f.resolve()), "bytes": f.stat().st_size} for f in files]
    settings = {"sources": sources, "field": field, "compat": compat, "valid_fraction": valid_fraction,
                "seed": seed, "shard_tokens": shard_tokens}
    manifest_path = out / MANIFEST
    old = read_manifest(out) if manifest_path.is_file() else None
    if old is not None and not overwrite:
        if not resume:
            raise PretrainError(f"{out} already holds prepared data: pass --resume to continue it or --overwrite")
        changed = [k for k in settings if old["settings"].get(k) != settings[k]]
        if changed:
            raise PretrainError(f"--resume: {changed[0]} differs from the preparation in {out}; "
                                "resume with the same corpus and options, or --overwrite")
        if old["complete"]:
            if not quiet:
                print(f"pretrain-data: {out} is already complete", file=sys.stderr)
            return old
    elif out.exists() and overwrite:
        for child in out.iterdir():
            if child.name == MANIFEST or child.name.startswith(("train-", "valid-", ".tmp-")):
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        old = None
    out.mkdir(parents=True, exist_ok=True)

    # 1. vocabulary (ALBERT layout): given, or trained on a bounded sample of the stream
    vocab_path = out / "spiece.model"
    if old is None:
        if vocab is not None:
            Vocab.load(vocab, compat)  # the layout check, before copying
            if Path(vocab).resolve() != vocab_path.resolve():
                shutil.copyfile(vocab, vocab_path)
        else:
            if not quiet:
                print(f"pretrain-data: training a vocabulary of up to {vocab_size} pieces on the first "
                      f"{vocab_sample_bytes / 1e6:g} MB of text", file=sys.stderr, flush=True)
            train_sentencepiece(iter_documents(files, field), vocab_path, vocab_size, seed=seed,
                                threads=max(1, workers), compat=compat, max_bytes=vocab_sample_bytes)
        Vocab.load(vocab_path, compat).tokenizer.save_pretrained(out)
    elif vocab is not None and file_sha256(vocab) != old["tokenizer"]["sha256"]:
        raise PretrainError(f"--resume: {vocab} is not the vocabulary {out} was prepared with")
    tok = Vocab.load(vocab_path, compat)
    dtype = token_dtype(tok.size)

    manifest = old or {
        "format": FORMAT, "version": VERSION, "settings": settings,
        "tokenizer": {"file": "spiece.model", "sha256": file_sha256(vocab_path), "compat": compat,
                      "vocab_size": tok.size},
        "dtype": dtype.name, "shards": [], "documents_read": 0, "complete": False,
    }
    for child in out.glob(".tmp-*"):  # a shard the last run did not finish
        shutil.rmtree(child, ignore_errors=True)

    # 2. stream, tokenize, write shards
    skip = manifest["documents_read"]
    documents = iter_documents(files, field)
    for _ in range(skip):  # what completed shards already hold: read past it, no tokenizing
        if next(documents, None) is None:
            break
    buffers = {"train": _ShardBuffer(dtype), "valid": _ShardBuffer(dtype)}
    first = {"train": None, "valid": None}
    index = skip
    t0, written_now = time.perf_counter(), 0

    def flush():
        nonlocal written_now
        for split, buf in buffers.items():
            if buf.n_documents:
                number = sum(1 for s in manifest["shards"] if s["split"] == split)
                manifest["shards"].append(_write_shard(out, f"{split}-{number:05d}", split, buf, first[split]))
                written_now += 1
                buf.clear()
                first[split] = None
        manifest["documents_read"] = index
        write_manifest(out, manifest)
        if not quiet:
            n = sum(s["tokens"] for s in manifest["shards"])
            print(f"pretrain-data: {index:,} documents, {n:,} tokens, {len(manifest['shards'])} shards "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
        if kill_after_shards is not None and written_now >= kill_after_shards:
            import signal

            os.kill(os.getpid(), signal.SIGKILL)  # tests: a preparation killed between shards

    for tokens, lengths in _encoded(documents, vocab_path, compat, workers):
        split = "valid" if is_valid_document(index, valid_fraction, seed) else "train"
        if first[split] is None:
            first[split] = index
        buffers[split].add(tokens, lengths)
        index += 1
        if buffers["train"].n_tokens >= shard_tokens:
            flush()
    flush()
    totals = {split: {k: sum(s[k] for s in manifest["shards"] if s["split"] == split)
                      for k in ("documents", "segments", "tokens")} for split in ("train", "valid")}
    if totals["train"]["tokens"] == 0:
        raise PretrainError(f"corpus is empty (no text in {', '.join(str(c) for c in corpus)})")
    manifest["counts"] = totals
    manifest["complete"] = True
    write_manifest(out, manifest)
    if not quiet:
        t = totals["train"]
        print(f"pretrain-data: done: {t['documents']:,} documents, {t['tokens']:,} tokens for training, "
              f"{totals['valid']['documents']:,} held out; {out}", file=sys.stderr, flush=True)
    return manifest


def _write_shard(out: Path, name: str, split: str, buf: _ShardBuffer, first_document: int) -> dict:
    tmp = out / f".tmp-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    files = {}
    for filename, array in buf.arrays().items():
        _save_npy(tmp / filename, array)
        files[filename] = {"bytes": (tmp / filename).stat().st_size, "sha256": file_sha256(tmp / filename)}
    final = out / name
    if final.exists():  # left by a run killed after the rename but before the manifest: redo it
        shutil.rmtree(final)
    os.replace(tmp, final)
    return {"name": name, "split": split, "first_document": first_document, "documents": buf.n_documents,
            "segments": buf.n_segments, "tokens": buf.n_tokens, "files": files}


def write_manifest(out: Path, manifest: dict) -> None:
    atomic_write(out / MANIFEST, lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=1) + "\n"))


def read_manifest(data_dir: str | os.PathLike) -> dict:
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        raise PretrainError(f"{data_dir} is not a prepared data directory (no {MANIFEST}); "
                            "make one with `minialbert pretrain-data CORPUS --output DIR`")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise PretrainError(f"cannot read {path}: {e}") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise PretrainError(f"{path} is not a minialbert pretrain-data manifest (version {VERSION})")
    return manifest


# ---------------------------------------------------------------------------- reader
class PreparedData:
    """A DATA_DIR opened for training: the shards of one split, checked against the manifest and
    opened as memory maps (nothing is read until used). `documents()` reads through the maps;
    the trainer reads by offset instead (ShardPairs, _Slices), so that its RSS stays flat."""

    def __init__(self, data_dir: str | os.PathLike, split: str = "train", *, verify: bool = False):
        self.dir = Path(data_dir)
        self.manifest = read_manifest(self.dir)
        if not self.manifest["complete"]:
            raise PretrainError(f"{self.dir} is an unfinished preparation: finish it with "
                                "`minialbert pretrain-data ... --resume`")
        self.split = split
        self.shards = []
        for shard in self.manifest["shards"]:
            if shard["split"] != split:
                continue
            arrays = {}
            for filename, info in shard["files"].items():
                path = self.dir / shard["name"] / filename
                size = path.stat().st_size if path.is_file() else -1
                if size != info["bytes"]:
                    raise PretrainError(f"shard {path} is {'missing' if size < 0 else f'truncated ({size:,} bytes'}"
                                        f"{'' if size < 0 else ')'} where the manifest says {info['bytes']:,} "
                                        f"bytes; prepare the data again")
                if verify and file_sha256(path) != info["sha256"]:
                    raise PretrainError(f"shard {path} does not match its checksum in the manifest; "
                                        "prepare the data again")
                try:
                    arrays[filename] = np.load(path, mmap_mode="r", allow_pickle=False)
                except (ValueError, OSError) as e:
                    raise PretrainError(f"shard {path} is unreadable ({e}); prepare the data again") from None
            self.shards.append(arrays)

    @property
    def tokenizer_sha256(self) -> str:
        return self.manifest["tokenizer"]["sha256"]

    @property
    def compat(self) -> str:
        return self.manifest["tokenizer"]["compat"]

    @property
    def fingerprint(self) -> str:
        """Identifies the prepared token stream (the checksums of every shard)."""
        h = hashlib.sha256(self.tokenizer_sha256.encode())
        for shard in self.manifest["shards"]:
            for info in shard["files"].values():
                h.update(info["sha256"].encode())
        return h.hexdigest()[:16]

    def documents(self):
        """Each document as a list of segment id arrays (views into the memory map), in order."""
        for arrays in self.shards:
            tokens, seg, docs = arrays["tokens.npy"], arrays["segments.npy"], arrays["documents.npy"]
            for d in range(len(docs) - 1):
                yield [tokens[seg[j]:seg[j + 1]] for j in range(docs[d], docs[d + 1])]


class _Slices:
    """Slices of one .npy array of a shard, read with os.pread at the array's offset in the file,
    not through a memory map: the pages go through the OS page cache (shared by every rank) and
    are never mapped into this process, so its RSS does not grow with what a long run has read
    (a mapped page stays in RSS once touched)."""

    def __init__(self, array: np.memmap, label: str = "shard", truncated: str = "prepare the data again"):
        self.path = array.filename
        self.offset = int(array.offset)
        self.dtype = array.dtype
        self.length = len(array)
        self.label, self.truncated = label, truncated  # the one-line error: what is truncated, what to do
        self.fd = -1  # opened on first use

    @classmethod
    def raw(cls, path: Path, dtype: np.dtype, label: str, truncated: str) -> "_Slices":
        """The same reader over a headerless file of `dtype` items (the pair index)."""
        self = cls.__new__(cls)
        self.path, self.offset, self.dtype, self.fd = str(path), 0, np.dtype(dtype), -1
        self.label, self.truncated = label, truncated
        self.length = os.path.getsize(path) // self.dtype.itemsize
        return self

    def __call__(self, start: int, stop: int) -> np.ndarray:
        if self.fd < 0:
            self.fd = os.open(self.path, os.O_RDONLY)
        size = self.dtype.itemsize
        want = (stop - start) * size
        buf = os.pread(self.fd, want, self.offset + start * size)
        if len(buf) != want:
            raise PretrainError(f"{self.label} {self.path} is truncated (reading items {start}..{stop}); "
                                f"{self.truncated}")
        return np.frombuffer(buf, dtype=self.dtype)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self):
        self.close()


_WINDOW_DOCS = 65536  # documents read at a time by pair_index
_OPEN_SHARDS = 64  # token files a ShardPairs keeps open (the least recently used is closed)


class ShardPairs:
    """The sentence-order pairs of a prepared split, through the pair index written by pair_index:
    rows (a_start, a_end, b_end) of token offsets into their shard, shard by shard (uint32, or
    uint64 for a shard of 2**32 tokens or more; 12 bytes a row), and the number of rows of each
    shard. pairs[i] -> (A ids, B ids), as data.build_pairs gives for the same documents: two reads
    (the row, then A and B, which are contiguous); nothing is memory-mapped or held per pair."""

    def __init__(self, data: PreparedData, path: Path, meta: dict):
        self.data = data
        self.path = path
        self.dtype = np.dtype(meta["dtype"])
        self.row_starts = np.concatenate([[0], np.cumsum(meta["shard_rows"], dtype=np.int64)])
        self.n = int(self.row_starts[-1])
        self.rows = _Slices.raw(path, self.dtype, "the pair index", "delete it to rebuild it")
        self.tokens = [_Slices(a["tokens.npy"]) for a in data.shards]
        self._open: OrderedDict[int, None] = OrderedDict()

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        i = int(i)
        if not 0 <= i < self.n:
            raise IndexError(f"pair {i} out of range [0, {self.n})")
        a0, a1, b1 = self.rows(3 * i, 3 * i + 3).tolist()
        shard = int(np.searchsorted(self.row_starts, i, side="right")) - 1
        self._open[shard] = None
        self._open.move_to_end(shard)
        if len(self._open) > _OPEN_SHARDS:  # bounded file descriptors, however many shards
            self.tokens[self._open.popitem(last=False)[0]].close()
        ab = self.tokens[shard](a0, b1).astype(np.int32)
        return ab[:a1 - a0], ab[a1 - a0:]

    def close(self) -> None:
        self.rows.close()
        for t in self.tokens:
            t.close()

    def __del__(self):
        self.close()


def pair_index(data: PreparedData, path: Path, max_seq_length: int, short_seq_prob: float, seed: int) -> dict:
    """Write the pair index of `data` to `path` (see ShardPairs) and return its description
    (dtype, rows per shard), with the random draws of data.build_pairs over the same documents
    in the same order. Streamed both ways: the shards' segment and document offsets are read
    _WINDOW_DOCS documents at a time (os.pread, not mapped) and rows go to disk in blocks, so
    memory does not grow with the corpus."""
    from .data import Draws, chunk_document

    rng = Draws(np.random.default_rng([seed, 1]))
    max_tokens = max_seq_length - 3
    big = any(sh["tokens"] >= 2**32 for sh in data.manifest["shards"] if sh["split"] == data.split)
    dtype = np.dtype(np.uint64 if big else np.uint32)
    shard_rows: list[int] = []

    def body(tmp):
        with open(tmp, "wb") as f:
            for arrays in data.shards:
                segments, documents = _Slices(arrays["segments.npy"]), _Slices(arrays["documents.npy"])
                rows: list[int] = []
                count = 0
                for w0 in range(0, documents.length - 1, _WINDOW_DOCS):
                    docs = documents(w0, min(documents.length, w0 + _WINDOW_DOCS + 1)).tolist()
                    seg = segments(docs[0], docs[-1] + 1).tolist()
                    lengths = [y - x for x, y in zip(seg, seg[1:])]
                    first = docs[0]
                    for j0, j1 in zip(docs, docs[1:]):
                        j0 -= first
                        j1 -= first
                        base = seg[j0]
                        for a0, a1, b1 in chunk_document(lengths[j0:j1], max_tokens, short_seq_prob, rng):
                            rows += (base + a0, base + a1, base + b1)
                    if len(rows) >= 3 * 65536:
                        f.write(np.asarray(rows, dtype=dtype).tobytes())
                        count += len(rows) // 3
                        rows = []
                f.write(np.asarray(rows, dtype=dtype).tobytes())
                shard_rows.append(count + len(rows) // 3)
                segments.close()
                documents.close()

    atomic_write(path, body)
    return {"dtype": dtype.name, "shard_rows": shard_rows, "rows": sum(shard_rows)}


def open_pairs(data: PreparedData, cache: Path, max_seq_length: int, short_seq_prob: float, seed: int,
               build: bool) -> ShardPairs:
    """The ShardPairs of `data`; build=True (rank 0) writes the index if the cache lacks it:
    CACHE/pairs-SPLIT-KEY.bin (the rows), then CACHE/pairs-SPLIT-KEY.json (their description),
    each atomically; the .json is what says the index is complete."""
    key = hashlib.sha256(f"{data.fingerprint}:{data.split}:{max_seq_length}:{short_seq_prob}:{seed}".encode())
    path = cache / f"pairs-{data.split}-{key.hexdigest()[:16]}.bin"
    meta_path = path.with_suffix(".json")
    if build and not meta_path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        meta = pair_index(data, path, max_seq_length, short_seq_prob, seed)
        atomic_write(meta_path, lambda tmp: Path(tmp).write_text(json.dumps(meta) + "\n"))
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as e:
        raise PretrainError(f"cannot read the pair index {meta_path} ({e}); delete it to rebuild it") from None
    expected = meta["rows"] * 3 * np.dtype(meta["dtype"]).itemsize
    if not path.is_file() or path.stat().st_size != expected:
        raise PretrainError(f"the pair index {path} is missing or truncated; delete {meta_path} to rebuild it")
    return ShardPairs(data, path, meta)


# ------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="minialbert pretrain-data", allow_abbrev=False,
                                description="Tokenize a corpus once into memory-mappable shards for "
                                            "`minialbert pretrain --data DIR`.")
    p.add_argument("corpus", nargs="+", metavar="CORPUS",
                   help=".txt (blank-line-separated documents), .jsonl, .parquet, .gz of the line formats, "
                        "directories, globs")
    p.add_argument("--output", "-o", required=True, metavar="DATA_DIR")
    p.add_argument("--field", default=None, help="the text field of .jsonl/.parquet rows (default: text)")
    p.add_argument("--vocab", help="an existing ALBERT-layout spiece.model (default: train one)")
    p.add_argument("--vocab-size", type=int, default=30000, help="size of the vocabulary to train (soft limit)")
    p.add_argument("--vocab-sample-mb", type=float, default=100.0,
                   help="train the vocabulary on the first this many MB of text (default 100)")
    p.add_argument("--tokenizer-compat", choices=TOKENIZER_COMPATS, default="transformers",
                   help="AlbertTokenizer's algorithm: transformers (default; transformers >= 5.25), "
                        "transformers<5.25 or original (docs/guides/tokenizer.md)")
    p.add_argument("--workers", type=int, default=1, help="tokenizer processes")
    p.add_argument("--shard-tokens", type=int, default=50_000_000, help="training tokens per shard")
    p.add_argument("--valid-fraction", type=float, default=0.0, help="share of documents held out for validation")
    p.add_argument("--seed", type=int, default=12345, help="seeds the vocabulary training and the held-out split")
    p.add_argument("--resume", action="store_true", help="continue an interrupted preparation")
    p.add_argument("--overwrite", action="store_true", help="replace a finished or unfinished preparation")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--kill-after-shards", type=int, default=None, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    from ..argv import attach_negative_values

    parser = build_parser()
    args = parser.parse_args(attach_negative_values(parser, sys.argv[1:] if argv is None else list(argv)))
    if args.vocab and "--vocab-size" in (argv or sys.argv):
        parser.error("give --vocab (an existing vocabulary) or --vocab-size (train one), not both")
    for name in ("workers", "shard_tokens", "vocab_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not 0 <= args.valid_fraction < 1:
        parser.error(f"--valid-fraction must be in [0, 1), got {args.valid_fraction}")
    if args.vocab_sample_mb <= 0:
        parser.error("--vocab-sample-mb must be positive")
    prepare(args.corpus, args.output, vocab=args.vocab, vocab_size=args.vocab_size,
            vocab_sample_bytes=int(args.vocab_sample_mb * 1e6), field=args.field, compat=args.tokenizer_compat,
            workers=args.workers, shard_tokens=args.shard_tokens, valid_fraction=args.valid_fraction,
            seed=args.seed, resume=args.resume, overwrite=args.overwrite, quiet=args.quiet,
            kill_after_shards=args.kill_after_shards)
    return 0
