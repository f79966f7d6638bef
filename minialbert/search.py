"""A vector index over a directory that `minialbert embed --output DIR/` wrote, and search in it.

    minialbert index vectors/ --kind hnsw          # writes vectors/index/ (index.json + the index)
    minialbert search "how do I reset it?" --index vectors/index -k 10 --with-text

    from minialbert.search import build_index, Searcher
    build_index("vectors/", kind="exact")
    hits = Searcher.from_index("vectors/index").search(["how do I reset it?"], k=10)
    hits.ids[0], hits.scores[0], hits.texts[0]

Kinds:
  exact   no extra: a chunked matrix product over the memory-mapped vectors (load_vectors(mmap=True)),
          a running top-k per chunk, so memory stays bounded by the chunk size whatever the corpus.
  hnsw    FAISS IndexHNSWFlat (the [search] extra): a graph over the full vectors; recall ~1 at sub-ms
          latency, index ~ (4*dim + 8*M) bytes per vector. Incremental adds; no removal.
  ivf-flat, ivf-sq8, ivf-pq
          FAISS inverted lists (4 sqrt(n) k-means cells; a query scans the nprobe nearest cells):
          ivf-flat stores the float32 vectors (4*dim bytes per vector), ivf-sq8 one byte per
          dimension (IndexIVFScalarQuantizer, 8 bit), ivf-pq product-quantized codes (dim/4 bytes).
          The k*rerank best candidates are re-scored exactly against the memory-mapped vectors,
          so scores equal exact search's. They build in minutes at 1M (no graph to link); adds
          use the trained quantizer. nprobe (and rerank, ef_search for hnsw) can be changed at
          search time without a rebuild.

FAISS was picked over usearch by scripts/bench_search.py (docs/guides/search-and-serve.md): same
recall, faster builds here, and it has both a graph and a compressed kind.

The index records the model (name and fingerprint), pooling, normalization, prompt and metric
of its vectors, their count, and a SHA-256 of the vectors' manifest.json: a changed directory makes
the index stale (one line, and `index --update` to catch up). The metric follows the model: the
sentence-transformers config's similarity_fn_name when there is one, else cosine.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import MinialbertError
from .files import LOCK_FILE, atomic_write, lock_directory

INDEX_MANIFEST = "index.json"
INDEX_FORMAT = "minialbert.index"
INDEX_VERSION = 1
KINDS = ("exact", "hnsw", "ivf-flat", "ivf-sq8", "ivf-pq")
IVF_KINDS = ("ivf-flat", "ivf-sq8", "ivf-pq")
SEARCH_PARAMS = {"hnsw": ("ef_search",), **{k: ("nprobe", "rerank") for k in IVF_KINDS}}
METRICS = ("cosine", "dot", "euclidean", "manhattan")
ANN_FILE = "index.faiss"
NORMS_FILE = "norms.npy"
CHUNK_ROWS = 65_536  # exact search: rows scored per matrix product (bounded memory)


class SearchIndexError(MinialbertError):
    """An index that is missing, stale, or cannot be built or searched as asked."""


@dataclass
class SearchResults:
    """One row per query: ids (int64) and scores (float32), best first; texts when the shards hold them."""

    ids: np.ndarray  # (n_queries, k)
    scores: np.ndarray  # (n_queries, k), higher is more similar (minus the distance for euclidean/manhattan)
    texts: list[list[str]] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, i: int) -> list[dict]:
        """Query i's hits as dicts: id, score (and text)."""
        out = []
        for j in range(self.ids.shape[1]):
            hit = {"id": int(self.ids[i, j]), "score": float(self.scores[i, j])}
            if self.texts is not None:
                hit["text"] = self.texts[i][j]
            out.append(hit)
        return out


@dataclass
class IndexSummary:
    path: Path
    kind: str
    count: int
    added: int
    rebuilt: bool
    seconds: float
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- helpers
def require_faiss(what: str):
    try:
        import faiss
    except ImportError:
        raise SearchIndexError(f"{what} needs FAISS: pip install 'minialbert[search]' (or use --kind exact)") from None
    return faiss


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _vectors_manifest(directory: Path) -> dict:
    from .shards import MANIFEST, _read_manifest

    if not directory.is_dir():
        raise SearchIndexError(f"no such vectors directory: {directory}")
    manifest = _read_manifest(directory)
    if manifest is None:
        raise SearchIndexError(f"{directory} holds no {MANIFEST}: index a directory written by "
                          "`minialbert embed --input FILE --output DIR/`")
    if not manifest.get("complete"):
        raise SearchIndexError(f"{directory} holds an unfinished run ({sum(s['rows'] for s in manifest['shards']):,} texts "
                          "so far): finish it with `minialbert embed ... --resume` before indexing")
    return manifest


def model_metric(model: dict) -> str:
    """The similarity the model was trained for: sentence-transformers' similarity_fn_name, else cosine.

    Read from the checkpoint the vectors manifest names (locally: a folder or the Hub cache); a
    model that cannot be found there counts as a plain checkpoint (cosine).
    """
    name = model.get("name")
    if not name:
        return "cosine"
    try:
        from .hub import ModelSource
        from .jsonio import read_json

        source = ModelSource(name, revision=model.get("revision"), local_files_only=True)
        path = source.file("config_sentence_transformers.json", required=False)
        fn = read_json(path).get("similarity_fn_name") if path is not None else None
    except Exception:  # noqa: BLE001 - not reachable here: the plain default
        fn = None
    return fn if fn in METRICS else "cosine"


def _scores_from(metric: str, queries, block, block_norms=None):
    """(q, n) similarity of torch queries to a torch block; higher is better for every metric."""
    import torch

    if metric == "dot":
        return queries @ block.T
    if metric == "cosine":
        s = queries @ block.T
        return s / block_norms[None, :] if block_norms is not None else s
    return -torch.cdist(queries, block, p=2.0 if metric == "euclidean" else 1.0)


def _prepare_queries(metric: str, q: np.ndarray) -> np.ndarray:
    q = np.ascontiguousarray(np.atleast_2d(q), dtype=np.float32)
    if metric == "cosine":
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    return q


# --------------------------------------------------------------------------- exact
class ExactIndex:
    """Exact top-k by a chunked matrix product: (q, H) x (chunk, H)^T, merged into a running top-k."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray, metric: str, norms: np.ndarray | None):
        self.ids, self.vectors, self.metric, self.norms = ids, vectors, metric, norms

    @classmethod
    def over_matrix(cls, vectors: np.ndarray, *, metric: str = "cosine", normalized: bool = False,
                    ids: np.ndarray | None = None) -> "ExactIndex":
        norms = None
        if metric == "cosine" and not normalized:
            norms = np.concatenate([np.maximum(np.linalg.norm(vectors[s:s + CHUNK_ROWS], axis=1), 1e-12)
                                    for s in range(0, len(vectors), CHUNK_ROWS)]).astype(np.float32)
        return cls(np.arange(len(vectors), dtype=np.int64) if ids is None else ids, vectors, metric, norms)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = _prepare_queries(self.metric, queries)
        n = len(self.vectors)
        k = min(k, n)
        best_s = np.full((len(q), 0), -np.inf, np.float32)
        best_r = np.zeros((len(q), 0), np.int64)
        for s in range(0, n, CHUNK_ROWS):
            block = self.vectors[s:s + CHUNK_ROWS]  # a view of the memory map: pages in, no copy
            if self.metric in ("cosine", "dot"):
                scores = q @ block.T
                if self.norms is not None:
                    scores /= np.asarray(self.norms[s:s + CHUNK_ROWS])[None, :]
            else:
                import torch

                scores = _scores_from(self.metric, torch.from_numpy(q), torch.from_numpy(np.array(block))).numpy()
            rows = np.broadcast_to(np.arange(s, s + scores.shape[1], dtype=np.int64), scores.shape)
            cat_s, cat_r = np.concatenate([best_s, scores], 1), np.concatenate([best_r, rows], 1)
            if cat_s.shape[1] > k:
                keep = np.argpartition(-cat_s, k - 1, axis=1)[:, :k]
                cat_s, cat_r = np.take_along_axis(cat_s, keep, 1), np.take_along_axis(cat_r, keep, 1)
            best_s, best_r = cat_s, cat_r
        # best first; equal scores: the lower row first (a stable order, as a sort of all scores gives)
        order = np.array([np.lexsort((r, -sc)) for sc, r in zip(best_s, best_r)]).reshape(best_s.shape)
        best_s, best_r = np.take_along_axis(best_s, order, 1), np.take_along_axis(best_r, order, 1)
        return best_s.astype(np.float32), self.ids[best_r]


# --------------------------------------------------------------------------- building
def _ann_vectors(vectors: np.ndarray, metric: str) -> np.ndarray:
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    if metric == "cosine":
        v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return v


def _new_ann(faiss, kind: str, dim: int, metric: str, params: dict, train: np.ndarray | None):
    space = faiss.METRIC_L2 if metric == "euclidean" else faiss.METRIC_INNER_PRODUCT
    if kind == "hnsw":
        inner = faiss.IndexHNSWFlat(dim, params["M"], space)
        inner.hnsw.efConstruction = params["ef_construction"]
        inner.hnsw.efSearch = params["ef_search"]
    else:
        quantizer = faiss.IndexFlatL2(dim) if space == faiss.METRIC_L2 else faiss.IndexFlatIP(dim)
        if kind == "ivf-flat":
            inner = faiss.IndexIVFFlat(quantizer, dim, params["nlist"], space)
        elif kind == "ivf-sq8":
            inner = faiss.IndexIVFScalarQuantizer(quantizer, dim, params["nlist"], faiss.ScalarQuantizer.QT_8bit, space)
        else:
            if dim % params["pq_m"]:
                raise SearchIndexError(f"--pq-m {params['pq_m']} must divide the dimension {dim}")
            inner = faiss.IndexIVFPQ(quantizer, dim, params["nlist"], params["pq_m"], params["nbits"], space)
            inner.pq.cp.niter = 10
        inner.cp.niter = 10  # k-means iterations for the coarse centroids (FAISS default 25; recall is re-scored)
        inner.train(train)
        inner.nprobe = params["nprobe"]
    return faiss.IndexIDMap2(inner)


def _default_params(kind: str, n: int, dim: int, given: dict) -> dict:
    if kind == "hnsw":
        p = {"M": 32, "ef_construction": 100, "ef_search": 128}
    elif kind in IVF_KINDS:
        nlist = int(max(1, min(4 * np.sqrt(max(n, 1)), n // 39 if n >= 39 else 1)))
        # nprobe 64: on 100k real ALBERT vectors (scripts/bench_search.py --data real; a narrow cone,
        # harder than clustered data) recall@10 was 0.872 at 32 and 0.953 at 64 (ivf-sq8: 0.89 ms)
        p = {"nlist": nlist, "nprobe": 64, "rerank": {"ivf-flat": 1, "ivf-sq8": 2, "ivf-pq": 50}[kind]}
        if kind == "ivf-pq":
            p["pq_m"] = next(m for m in (dim // 4, dim // 2, dim, 1) if m and dim % m == 0)
    else:
        p = {}
    p.update({k: v for k, v in given.items() if v is not None and k in p})
    return p


def _shard_records(manifest: dict) -> list[dict]:
    return [{k: s[k] for k in ("file", "sha256", "rows", "first_id", "texts_sha256", "extends") if k in s}
            for s in manifest["shards"]]


def _vectors_ref(vectors_dir: Path, index_dir: Path) -> str:
    try:
        return os.path.relpath(vectors_dir.resolve(), index_dir.resolve())
    except ValueError:  # another drive (Windows)
        return str(vectors_dir.resolve())


def build_index(vectors_dir: str | os.PathLike, *, kind: str = "exact", output: str | os.PathLike | None = None,
                metric: str | None = None, update: bool = False, threads: int | None = None,
                M: int | None = None, ef_construction: int | None = None, ef_search: int | None = None,
                nlist: int | None = None, pq_m: int | None = None, nprobe: int | None = None,
                rerank: int | None = None) -> IndexSummary:
    """Build (or with update=True, extend) the index of a vectors directory; returns what was done.

    output defaults to VECTORS_DIR/index. update=True adds the shards written since the index
    was built (an `embed --output DIR/ --resume` run on a longer input); a shard that changed
    or disappeared needs a rebuild, which update refuses with a one-line reason (exact indexes
    have nothing to rebuild and always update). Without update, an existing index is replaced.
    One build at a time per output directory: it holds an exclusive lock (flock on
    INDEX_DIR/.lock, released by the kernel if the process dies), and a second build into the
    same directory stops at once with a one-line error.
    """
    t0 = time.perf_counter()
    if kind not in KINDS:
        raise SearchIndexError(f"unknown index kind {kind!r}; choose from {', '.join(KINDS)}")
    if metric is not None and metric not in METRICS:
        raise SearchIndexError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    vdir = Path(vectors_dir)
    manifest = _vectors_manifest(vdir)
    out = Path(output) if output is not None else vdir / "index"
    if out.exists() and not out.is_dir():
        raise SearchIndexError(f"{out} is a file, not a directory")
    if update and not (out / INDEX_MANIFEST).exists():
        raise SearchIndexError(f"no index in {out} to update: build one first (minialbert index {vdir} --kind {kind})")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SearchIndexError(f"cannot create index directory {out}: {e.strerror}") from None
    lock = lock_directory(out, f"{out} is being built by another `minialbert index` run; wait for it to finish, or "
                               "build into another directory (-o)", SearchIndexError)
    try:
        return _build_locked(vdir, manifest, out, t0, kind=kind, metric=metric, update=update, threads=threads,
                             given={"M": M, "ef_construction": ef_construction, "ef_search": ef_search,
                                    "nlist": nlist, "pq_m": pq_m, "nprobe": nprobe, "rerank": rerank})
    except BaseException:
        if created:  # leave no empty index directory behind a failed first build
            (out / LOCK_FILE).unlink(missing_ok=True)
            try:
                out.rmdir()
            except OSError:
                pass
        raise
    finally:
        if lock is not None:
            lock.close()  # releases the flock


def _build_locked(vdir: Path, manifest: dict, out: Path, t0: float, *, kind: str, metric: str | None, update: bool,
                  threads: int | None, given: dict) -> IndexSummary:
    from .shards import MANIFEST, _read_columns, _vectors_of, load_vectors

    for tmp in out.glob(".*.tmp"):  # left by a build that was killed mid-write (we hold the lock)
        tmp.unlink(missing_ok=True)
    old = _read_index_manifest(out) if (out / INDEX_MANIFEST).exists() else None
    if old is None and any(p.name != LOCK_FILE for p in out.iterdir()):
        raise SearchIndexError(f"{out} is not empty and holds no {INDEX_MANIFEST}; choose an empty or new directory")
    if update:
        kind = old["kind"]
        if old["model"]["fingerprint"] != manifest["model"]["fingerprint"]:
            raise SearchIndexError(f"{vdir} now holds vectors of another model than {out} was built from; rebuild the "
                              "index (without --update)")
        metric = old["metric"]
    metric = metric or model_metric(manifest["model"])
    if kind != "exact" and metric == "manhattan":
        raise SearchIndexError("the manhattan metric is only searchable with --kind exact (FAISS has no L1 graph/PQ index)")
    faiss = require_faiss(f"--kind {kind}") if kind != "exact" else None
    if faiss is not None and threads:
        faiss.omp_set_num_threads(int(threads))
    out.mkdir(parents=True, exist_ok=True)
    dim = int(manifest["dim"])
    count = sum(s["rows"] for s in manifest["shards"])
    if count == 0:
        raise SearchIndexError(f"{vdir} holds no vectors: nothing to index")
    notes: list[str] = []
    shards_now = _shard_records(manifest)

    # which shards are new since the index (update), and whether the old ones are untouched
    added_shards = shards_now
    grown: dict = {}
    rebuilt = True
    if update:
        before = {s["file"]: s for s in old["vectors"]["shards"]}
        now = {s["file"]: s for s in shards_now}
        grown = {}  # shards re-written with appended rows (embed --resume on a longer input): add those rows
        for f, s in before.items():
            ext = now.get(f, {}).get("extends")
            if now.get(f, {}).get("sha256") != s["sha256"] and ext and ext.get("rows") == s["rows"] and \
                    ext.get("texts_sha256") == s.get("texts_sha256", ext.get("texts_sha256")):
                grown[f] = s["first_id"] + s["rows"] if s.get("first_id") is not None else None
        changed = [f for f, s in before.items() if now.get(f, {}).get("sha256") != s["sha256"] and f not in grown]
        if changed and kind != "exact":
            raise SearchIndexError(f"{len(changed)} shard(s) indexed in {out} changed or disappeared ({changed[0]}"
                              f"{', ...' if len(changed) > 1 else ''}): a {kind} index cannot remove vectors; "
                              f"rebuild it: minialbert index {vdir} --kind {kind}")
        added_shards = [s for s in shards_now if s["file"] not in before or s["file"] in grown]
        rebuilt = kind == "exact" and bool(changed)
        if kind in IVF_KINDS and count > 4 * old["params"].get("trained_on", count):
            notes.append(f"the {kind} quantizer was trained on {old['params']['trained_on']:,} vectors and the index "
                         f"now holds {count:,}: rebuild it for the best recall (minialbert index {vdir} --kind {kind})")

    params = dict(old["params"]) if update else _default_params(kind, count, dim, given)
    if kind != "hnsw":
        # the memory map that exact search and the IVF kinds' re-scoring read (made once per change of the shards)
        ids, vectors = load_vectors(vdir, mmap=True)
        if metric == "cosine" and not manifest["options"].get("normalize"):
            norms = ExactIndex.over_matrix(vectors, metric="cosine").norms

            def write_norms(tmp: str) -> None:
                with open(tmp, "wb") as f:
                    np.save(f, norms)

            atomic_write(out / NORMS_FILE, write_norms)
        else:
            (out / NORMS_FILE).unlink(missing_ok=True)
    if kind == "exact":
        added = count - (old["count"] if update else 0)
    else:
        if update:
            index = faiss.read_index(str(out / ANN_FILE))
        else:
            train = None
            if kind in IVF_KINDS:
                if count < params["nlist"]:
                    raise SearchIndexError(f"{count} vectors are too few for {kind} with nlist {params['nlist']}; "
                                      "use --kind exact or hnsw")
                # k-means wants >= 39 points per cell (FAISS warns below): 40 per cell, and at least 9,984
                rng = np.random.default_rng(0)
                sample = np.sort(rng.choice(count, min(count, max(40 * params["nlist"], 39 * 256)), replace=False))
                train = _ann_vectors(vectors[sample], metric)
                params["trained_on"] = count
                if kind == "ivf-pq":  # >= 39 training points per PQ centroid: fewer bits per code for small sets
                    params["nbits"] = next(b for b in (8, 7, 6, 5, 4, 3, 2, 1) if len(train) >= 39 * 2**b or b == 1)
            index = _new_ann(faiss, kind, dim, metric, params, train)
        added = 0
        for shard in added_shards:
            file = vdir / shard["file"]
            table = _read_columns(file, ["id", "vector"])
            vecs = _ann_vectors(_vectors_of(table, file), metric)
            row_ids = table.column("id").to_numpy().astype(np.int64)
            if update and grown.get(shard["file"]) is not None:  # only the rows appended since the index
                keep = row_ids >= grown[shard["file"]]
                vecs, row_ids = vecs[keep], row_ids[keep]
            index.add_with_ids(vecs, row_ids)
            added += len(vecs)
        atomic_write(out / ANN_FILE, lambda tmp: faiss.write_index(index, tmp))
    record = {
        "format": INDEX_FORMAT, "version": INDEX_VERSION, "kind": kind, "metric": metric, "params": params,
        "model": manifest["model"], "options": manifest["options"], "dim": dim, "count": count,
        "with_text": bool(manifest["options"].get("with_text")),
        "vectors": {"path": _vectors_ref(vdir, out), "manifest_sha256": _sha256(vdir / MANIFEST),
                    "shards": shards_now},
    }
    from . import __version__

    record["created_by"] = f"minialbert {__version__}"
    text = json.dumps(record, indent=1, ensure_ascii=False) + "\n"
    atomic_write(out / INDEX_MANIFEST, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    if kind == "exact":
        (out / ANN_FILE).unlink(missing_ok=True)  # left by an earlier index of another kind
    return IndexSummary(out, kind, count, added, rebuilt, time.perf_counter() - t0, notes)


# --------------------------------------------------------------------------- opening
def _read_index_manifest(path: Path) -> dict:
    file = path / INDEX_MANIFEST
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SearchIndexError(f"no index in {path}: build one with `minialbert index VECTORS_DIR`") from None
    except (OSError, ValueError) as e:
        raise SearchIndexError(f"{file} is unreadable ({e}); rebuild the index") from None
    if not isinstance(record, dict) or record.get("format") != INDEX_FORMAT:
        raise SearchIndexError(f"{file} is not a minialbert index manifest")
    if record.get("version") != INDEX_VERSION:
        raise SearchIndexError(f"{file} has format version {record.get('version')}; this minialbert reads "
                          f"{INDEX_VERSION}: rebuild the index")
    return record


def resolve_index_dir(path: str | os.PathLike) -> Path:
    """An index directory, or a vectors directory that holds one in index/."""
    p = Path(path)
    if not p.is_dir():
        raise SearchIndexError(f"no such index directory: {p}")
    if not (p / INDEX_MANIFEST).exists() and (p / "index" / INDEX_MANIFEST).exists():
        return p / "index"
    return p


class VectorIndex:
    """An opened index: checked against its vectors directory (stale -> one line), ready to search vectors."""

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None, nprobe: int | None = None,
                 ef_search: int | None = None, rerank: int | None = None):
        from .shards import MANIFEST

        self.path = resolve_index_dir(path)
        self.record = r = _read_index_manifest(self.path)
        ref = Path(r["vectors"]["path"])
        self.vectors_dir = ref if ref.is_absolute() else (self.path / ref)
        vm = self.vectors_dir / MANIFEST
        if not vm.exists():
            raise SearchIndexError(f"the vectors of index {self.path} are gone ({self.vectors_dir} holds no {MANIFEST}); "
                              "rebuild the index")
        if _sha256(vm) != r["vectors"]["manifest_sha256"]:
            now = json.loads(vm.read_text(encoding="utf-8"))
            n_now = sum(s["rows"] for s in now.get("shards", []))
            raise SearchIndexError(f"index {self.path} is stale: {self.vectors_dir} changed since it was built ({r['count']:,} "
                              f"vectors then, {n_now:,} now); run: minialbert index {self.vectors_dir} --update")
        self.kind, self.metric, self.count, self.dim = r["kind"], r["metric"], r["count"], r["dim"]
        if self.count == 0:
            raise SearchIndexError(f"index {self.path} is empty")
        self._shard_by_file = {s["file"]: s for s in r["vectors"]["shards"]}
        self._text_cache: dict[str, list] = {}
        self._exact = None
        self._ann = None
        self.search_params = {name: r["params"][name] for name in SEARCH_PARAMS.get(self.kind, ())}
        self.set_search_params(nprobe=nprobe, ef_search=ef_search, rerank=rerank)
        if self.kind != "hnsw":
            from .shards import load_vectors

            ids, vectors = load_vectors(self.vectors_dir, mmap=True)
            norms = np.load(self.path / NORMS_FILE, mmap_mode="r") if (self.path / NORMS_FILE).exists() else None
            self._exact = ExactIndex(ids, vectors, self.metric, norms)
        if self.kind != "exact":
            faiss = require_faiss(f"searching a {self.kind} index")
            if threads:
                faiss.omp_set_num_threads(int(threads))
            self._ann = faiss.read_index(str(self.path / ANN_FILE))

    def set_search_params(self, **params: int | None) -> None:
        """Change search-time settings without a rebuild: nprobe and rerank (IVF kinds), ef_search
        (hnsw). None leaves a setting as it is; a setting the kind does not have is refused."""
        for name, value in params.items():
            if value is None:
                continue
            if name not in self.search_params:
                flag = "--" + name.replace("_", "-")
                raise SearchIndexError(f"{flag} does not apply to {self.kind} indexes (only to "
                                       f"{', '.join(k for k, v in SEARCH_PARAMS.items() if name in v)})")
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
                raise SearchIndexError(f"{name} must be a positive integer, got {value!r}")
            self.search_params[name] = int(value)

    def search_vectors(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (n_queries, min(k, count)), best first."""
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k <= 0:
            raise SearchIndexError(f"k must be a positive integer, got {k!r}")
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if queries.shape[1] != self.dim:
            raise SearchIndexError(f"query vectors have dimension {queries.shape[1]}, the index {self.dim}")
        k = min(int(k), self.count)
        if self.kind == "exact":
            return self._exact.search(queries, k)
        q = _ann_vectors(queries, self.metric)
        import faiss

        # FAISS splits its work across queries: one query runs on one thread anyway, and a team of
        # OpenMP threads only adds a barrier that waits for a descheduled thread on a busy machine
        # (measured: p50 8 ms instead of 0.5 ms at 1M on 2 cores at load 4)
        threads = faiss.omp_get_max_threads()
        if len(q) == 1:
            faiss.omp_set_num_threads(1)
        try:
            return self._search_ann(faiss, q, queries, k)
        finally:
            faiss.omp_set_num_threads(threads)

    def _search_ann(self, faiss, q: np.ndarray, queries: np.ndarray, k: int):
        p = self.search_params
        if self.kind == "hnsw":
            return self._search_hnsw(q, k, max(p["ef_search"], k))
        # IVF: candidates from the nprobe nearest cells, re-scored exactly against the memory-mapped vectors
        faiss.extract_index_ivf(self._ann).nprobe = p["nprobe"]
        _, cand = self._ann.search(q, min(k * p["rerank"], self.count))
        scores_out = np.full((len(q), k), -np.inf, np.float32)
        ids_out = np.full((len(q), k), -1, np.int64)
        ex = self._exact
        for i in range(len(q)):
            c = cand[i][cand[i] >= 0]
            rows = np.searchsorted(ex.ids, c)
            order = np.argsort(rows)
            rows, c = rows[order], c[order]
            block = np.asarray(ex.vectors[rows], dtype=np.float32)
            # numpy, not torch: a torch call here leaves torch's OpenMP threads spinning while FAISS's
            # own OpenMP pool runs the next query, which made one query 8x slower on 2 cores
            qv = _prepare_queries(self.metric, queries[i])[0]
            if self.metric == "euclidean":
                s = -np.sqrt(np.maximum(((block - qv) ** 2).sum(1), 0))
            else:
                s = block @ qv
                if ex.norms is not None:
                    s /= np.asarray(ex.norms[rows], dtype=np.float32)
            top = np.argsort(-s, kind="stable")[:k]
            scores_out[i, :len(top)], ids_out[i, :len(top)] = s[top], c[top]
        return scores_out, ids_out

    def _search_hnsw(self, q: np.ndarray, k: int, ef: int):
        import faiss

        inner = self._ann.index if hasattr(self._ann, "index") else self._ann
        hnsw = faiss.downcast_index(inner)
        hnsw.hnsw.efSearch = ef
        dist, ids = self._ann.search(q, k)
        if self.metric == "euclidean":
            dist = -np.sqrt(np.maximum(dist, 0))
        return dist.astype(np.float32), ids

    def texts(self, ids: np.ndarray) -> list[list[str]]:
        """The texts of these ids, read from the shards (stored by `embed --with-text`)."""
        if not self.record.get("with_text"):
            raise SearchIndexError(f"the vectors in {self.vectors_dir} were written without --with-text: no texts to show "
                              "(embed again with --with-text)")
        window = self.record["options"]["window"]
        out = []
        for row in np.atleast_2d(ids):
            texts = []
            for i in row:
                if i < 0:
                    texts.append(None)
                    continue
                col = self._shard_texts(f"part-{int(i) // window:06d}.parquet")
                texts.append(col[int(i) % window])
            out.append(texts)
        return out

    def _shard_texts(self, name: str) -> list:
        from .shards import _read_columns

        if name not in self._text_cache:
            if len(self._text_cache) > 8:
                self._text_cache.pop(next(iter(self._text_cache)))
            table = _read_columns(self.vectors_dir / name, ["text"])
            self._text_cache[name] = table.column("text").to_pylist()
        return self._text_cache[name]


# --------------------------------------------------------------------------- searching with text
class Searcher:
    """Queries in, nearest stored texts out: the query is embedded as the index's vectors were.

        searcher = Searcher.from_index("vectors/index")
        hits = searcher.search(["how do I reset my password?"], k=5)

    The model, pooling, layer, max_length and normalization come from the index's record; the
    query gets the model's "query" prompt when it has one (sentence-transformers'
    encode_query), else the prompt the documents got. A model other than the one that made the
    vectors (another fingerprint) is refused.
    """

    def __init__(self, index: VectorIndex, embedder):
        from .stream import embed_kwargs, model_identity

        self.index = index
        self.embedder = embedder
        want = index.record["model"]
        got = model_identity(embedder)["fingerprint"]
        if got != want["fingerprint"]:
            raise SearchIndexError(f"index {index.path} holds vectors of model {want.get('name')} ({want['fingerprint'][:19]}"
                              f"...); this model ({got[:19]}...) is another one: search with the model that "
                              "embedded the vectors")
        self.kwargs = embed_kwargs(index.record["options"])
        if "query" in embedder.prompts:
            self.kwargs["prompt"] = embedder.prompts["query"]

    @classmethod
    def from_index(cls, path: str | os.PathLike, *, model: str | os.PathLike | None = None, embedder=None,
                   device: str | None = None, threads: int | None = None, local_files_only: bool = False,
                   cache_dir: str | None = None, nprobe: int | None = None, ef_search: int | None = None,
                   rerank: int | None = None) -> "Searcher":
        """Open an index and load the model its vectors record (or `model`, or a ready `embedder`).
        nprobe / rerank (IVF kinds) and ef_search (hnsw) override the index's search settings."""
        index = VectorIndex(path, threads=threads, nprobe=nprobe, ef_search=ef_search, rerank=rerank)
        if embedder is None:
            embedder = load_recorded_embedder(index.record, model=model, device=device,
                                              local_files_only=local_files_only, cache_dir=cache_dir)
        return cls(index, embedder)

    def embed_queries(self, queries: Sequence[str]) -> np.ndarray:
        return self.embedder.embed(list(queries), **self.kwargs)

    def search(self, queries: str | Sequence[str], k: int = 10, *, with_text: bool | None = None) -> SearchResults:
        """Top-k stored vectors for each query (best first). with_text: None = when the shards hold texts."""
        if isinstance(queries, str):
            queries = [queries]
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k <= 0:
            raise SearchIndexError(f"k must be a positive integer, got {k!r}")
        queries = list(queries)
        if not queries:
            return SearchResults(np.zeros((0, 0), np.int64), np.zeros((0, 0), np.float32), [] if with_text else None)
        scores, ids = self.index.search_vectors(self.embed_queries(queries), k)
        if with_text is None:
            with_text = bool(self.index.record.get("with_text"))
        texts = self.index.texts(ids) if with_text else None
        return SearchResults(ids, scores.astype(np.float32), texts)


def load_recorded_embedder(record: dict, *, model=None, device=None, local_files_only=False, cache_dir=None):
    """The Embedder that made an index's vectors, as its record describes (runtime, dtype)."""
    from .embed import Embedder

    name = model if model is not None else record["model"].get("name")
    if name is None:
        raise SearchIndexError("the index does not name its model: pass model=... (--model)")
    runtime = record["options"].get("runtime", "torch")
    dtype = record["model"].get("dtype")
    kwargs = {"backend": "onnxruntime" if runtime.startswith("onnxruntime") else "torch",
              "int8": runtime == "torch-int8"}
    if kwargs["backend"] == "torch" and dtype not in (None, "float32"):
        kwargs["dtype"] = dtype
    return Embedder.from_pretrained(name, revision=record["model"].get("revision") if model is None else None,
                                    device=device, local_files_only=local_files_only, cache_dir=cache_dir, **kwargs)
