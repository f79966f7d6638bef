"""Vector search at scale: minialbert's index kinds, built and searched through its own API.

    python scripts/bench_search.py --cache /var/tmp/bench-search --data clustered --n 1000000
    python scripts/bench_search.py --cache /var/tmp/bench-search --data real --n 100000
    python scripts/bench_search.py --cache /var/tmp/bench-search --data clustered --n 50000 --libraries

Data (made once and kept under --cache; a re-run measures the queries again without rebuilding):
  clustered  --n x --dim synthetic vectors (1,000 Gaussian clusters of random spread, unit length),
             written as a vectors directory (the shards `embed --output DIR/` writes); queries are
             held-out vectors drawn the same way.
  real       --n passages of English text (sentences of the Python standard library's docstrings,
             alone, as consecutive runs, and as seeded random pairs; deterministic for one Python),
             embedded by `minialbert embed --output DIR/` (the real pipeline: mean pooling, --int8,
             --max-length 64) with the demo checkpoint (scripts/make_demo_checkpoint.py: albert-base
             shape, RANDOM weights, so the neighbours mean nothing, but the vectors have the geometry
             this model gives). The queries are other passages of the same kind, embedded alike.
             Embedding is resumable (`embed --resume`): an interrupted preparation continues.

For every index kind (--kinds): build time (recorded when built; "cached" on later runs), index
bytes on disk, the memory-mapped vectors it also reads, latency p50/p99 of one query at k=10
through VectorIndex.search_vectors on --threads threads, and recall@10 against the exact top-10
(a plain torch matrix product over all vectors, kept in the cache). IVF kinds are measured at each
--nprobe (a search-time setting: no rebuild). The exact kind's memory is measured in a child
process: the peak of its anonymous memory while it searches (sampled after every query), which
stays bounded because it streams over the memory-mapped vectors in chunks.
--libraries adds the earlier FAISS-vs-usearch comparison (raw library calls, in memory).
Long builds: run under `nice -n 10` on a shared machine. Prints the CPU model, flags and load.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
K = 10


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------- data
def clustered(n: int, dim: int, seed: int, clusters: int = 1000, out: np.ndarray | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, dim)).astype(np.float32)
    spread = rng.uniform(0.2, 0.8, clusters).astype(np.float32)
    out = np.empty((n, dim), np.float32) if out is None else out
    for s in range(0, n, 100_000):
        e = min(n, s + 100_000)
        which = rng.integers(0, clusters, e - s)
        block = centers[which] + spread[which, None] * rng.standard_normal((e - s, dim), dtype=np.float32)
        out[s:e] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def write_vectors_dir(path: Path, vectors: np.ndarray, window: int = 50_000) -> None:
    """A vectors directory as `embed --output DIR/` writes it (normalized vectors, no model)."""
    from minialbert.shards import OutputDirectory

    header = {"model": {"name": None, "fingerprint": "sha256:synthetic-clustered", "dtype": "float32"},
              "options": {"pooling": "mean", "normalize": True, "window": window, "with_text": False},
              "input": {}, "dim": int(vectors.shape[1])}
    with OutputDirectory.open(path, header, resume=True) as out:
        for w, s in enumerate(range(0, len(vectors), window)):
            if w in out.completed:
                continue
            e = min(len(vectors), s + window)
            out.write_shard(w, np.arange(s, e), np.ascontiguousarray(vectors[s:e]), None, "-")
        out.finish(len(vectors))


def prepare_clustered(cache: Path, n: int, dim: int, n_queries: int) -> tuple[Path, np.ndarray]:
    d = cache / f"clustered-{n}x{dim}"
    d.mkdir(parents=True, exist_ok=True)
    vec = d / "vec"
    if not _complete(vec):
        log(f"generating {n:,} x {dim} clustered vectors into {vec}")
        data = np.lib.format.open_memmap(d / "data.npy", mode="w+", dtype=np.float32, shape=(n + n_queries, dim))
        clustered(n + n_queries, dim, seed=0, out=data)
        np.save(d / "queries.npy", np.array(data[n:]))
        write_vectors_dir(vec, data[:n])
        del data
        (d / "data.npy").unlink()
    return vec, np.load(d / "queries.npy")[:n_queries]


def _complete(vec: Path) -> bool:
    m = vec / "manifest.json"
    return m.exists() and bool(json.loads(m.read_text()).get("complete"))


def _sentences(docs: list[list[str]]) -> list[list[str]]:
    out = []
    for doc in docs:
        sents = [s.strip() for p in doc for s in re.split(r"(?<=[.!?])\s+", p)]
        sents = [s for s in sents if 4 <= len(s.split()) <= 60]
        if sents:
            out.append(sents)
    return out


def real_texts(total: int, seed: int = 0) -> list[str]:
    """`total` distinct English passages, the same for the same Python: stdlib docstring sentences
    alone, runs of 2 and 3 consecutive sentences, then seeded random pairs from two documents."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("mk_stdlib_corpus", ROOT / "docs" / "mk_stdlib_corpus.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    docs = _sentences(mod.docstring_documents())
    seen: dict[str, None] = {}
    for run in (1, 2, 3):
        for sents in docs:
            for i in range(len(sents) - run + 1):
                seen.setdefault(" ".join(sents[i:i + run]), None)
    flat = [s for sents in docs for s in sents]
    rng = np.random.default_rng(seed)
    pool = max(total, POOL)  # a fixed pool: a smaller set is a prefix of a larger one
    while len(seen) < pool:
        a, b = rng.integers(0, len(flat), 2)
        seen.setdefault(f"{flat[a]} {flat[b]}", None)
    texts = list(seen)
    order = np.random.default_rng(seed + 1).permutation(len(texts))[:total]
    return [texts[i] for i in order]


POOL = 101_000


EMBED_OPTIONS = ["--pooling", "mean", "--max-length", "64", "--batch-size", "64"]


def embed_options(device: str) -> list[str]:
    """The CPU embeds through the int8 engine (how a CPU user embeds a corpus); a GPU in float32.
    The two give the same geometry (mean-pooled cosine to float32 >= 0.9997 for int8)."""
    return [*EMBED_OPTIONS, *(["--int8"] if device == "cpu" else ["--device", device])]


def prepare_real(cache: Path, n: int, n_queries: int, device: str = "cpu") -> tuple[Path, np.ndarray]:
    # vectors embedded elsewhere than the CPU (float32, not int8) are another data set: keep them apart
    d = cache / (f"real-{n}" if device == "cpu" else f"real-{n}-{device.replace(':', '-')}")
    d.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    ckpt = d / "demo-albert"
    if not (ckpt / "config.json").exists():
        log(f"writing the demo checkpoint to {ckpt}")
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_demo_checkpoint.py"), str(ckpt)], check=True,
                       env=env)
    texts_file, queries_file = d / "texts.txt", d / "queries.txt"
    if not queries_file.exists():  # base: the first n of the order; queries: its last n_queries (never in a base)
        texts = real_texts(max(n + n_queries, POOL))
        texts_file.write_text("".join(t + "\n" for t in texts[:n]), encoding="utf-8")
        queries_file.write_text("".join(t + "\n" for t in texts[-n_queries:]), encoding="utf-8")
    vec = d / "vec"
    if not _complete(vec):
        log(f"embedding {n:,} passages with the demo checkpoint into {vec}/ (resumable)")
        subprocess.run([sys.executable, "-m", "minialbert", "embed", "--model", str(ckpt), "--input", str(texts_file),
                        "--output", f"{vec}/", "--resume", "--with-text", "--window", "2000", *embed_options(device)],
                       check=True, env=env)
    q = d / "queries.npy"
    if not q.exists():
        subprocess.run([sys.executable, "-m", "minialbert", "embed", "--model", str(ckpt), "--input",
                        str(queries_file), "--output", str(q), "--quiet", *embed_options(device)], check=True, env=env)
    return vec, np.load(q)[:n_queries]


def exact_truth(vec: Path, queries: np.ndarray, k: int) -> np.ndarray:
    """The reference top-k: cosine by a plain torch matrix product over every stored vector."""
    import torch

    from minialbert.shards import load_vectors

    ids, base = load_vectors(vec, mmap=True)
    q = torch.from_numpy(queries / np.linalg.norm(queries, axis=1, keepdims=True))
    best_s = torch.full((len(q), k), -np.inf)
    best_i = torch.zeros((len(q), k), dtype=torch.int64)
    for s in range(0, len(base), 100_000):
        block = torch.from_numpy(np.array(base[s:s + 100_000]))
        scores = (q @ block.T) / block.norm(dim=1).clamp_min(1e-12)[None, :]
        v, i = torch.topk(scores, min(k, scores.shape[1]), dim=1)
        cat_s, cat_i = torch.cat([best_s, v], 1), torch.cat([best_i, i + s], 1)
        best_s, j = torch.topk(cat_s, k, dim=1)
        best_i = torch.gather(cat_i, 1, j)
    return ids[best_i.numpy()]


def cached_truth(vec: Path, queries: np.ndarray, k: int) -> np.ndarray:
    key = hashlib.sha256((vec / "manifest.json").read_bytes() + queries.tobytes()).hexdigest()[:16]
    path = vec.parent / f"truth-k{k}-{key}.npy"
    if not path.exists():
        log("exact top-10 of every query (the recall reference)")
        np.save(path, exact_truth(vec, queries, k))
    return np.load(path)


# -------------------------------------------------------------------------------------- measuring
def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[f >= 0].tolist()) & set(t.tolist())) / len(t) for f, t in zip(found, truth)]))


CPU_MS: list[float] = []  # the CPU time of each query of the last latencies() call


def latencies(fn, queries: np.ndarray):
    """Wall-clock p50/p99 (ms) of one query at a time; CPU_MS gets each query's process CPU time
    (all threads), which a loaded machine inflates far less than the wall clock."""
    found, times = [], []
    CPU_MS.clear()
    for q in queries:
        c, t = time.process_time(), time.perf_counter()
        found.append(fn(q[None, :]))
        times.append(time.perf_counter() - t)
        CPU_MS.append((time.process_time() - c) * 1000)
    ms = np.array(times) * 1000
    return np.vstack(found), float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def dir_bytes(path: Path, skip=(".lock",)) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file() and p.name not in skip)


DEFAULTS = {"hnsw": {"M": 16, "ef_construction": 40, "ef_search": 64}, "ivf-flat": {}, "ivf-sq8": {}, "ivf-pq": {},
            "exact": {}}


def build(vec: Path, kind: str, params: dict, threads: int, rebuild: bool) -> tuple[Path, float | None, float]:
    """Build (or reuse) the index; returns (dir, build seconds, load average when built)."""
    from minialbert.search import build_index

    tag = "-".join(f"{k}{v}" for k, v in sorted(params.items()))
    out = vec.parent / f"index-{kind}{'-' + tag if tag else ''}"
    meta = out.parent / f"{out.name}.bench.json"  # beside the index: its directory holds only what it wrote
    if not rebuild and meta.exists():
        m = json.loads(meta.read_text())
        if m.get("manifest_sha256") == hashlib.sha256((vec / "manifest.json").read_bytes()).hexdigest():
            return out, m["build_s"], m["load"]
    log(f"building {kind} {params} in {out}")
    load0 = os.getloadavg()[0]
    s = build_index(vec, kind=kind, output=out, threads=threads, **params)
    load = (load0 + os.getloadavg()[0]) / 2
    meta.write_text(json.dumps({"build_s": s.seconds, "load": load,
                                "manifest_sha256": hashlib.sha256((vec / "manifest.json").read_bytes()).hexdigest()}))
    log(f"built {kind} in {s.seconds:.1f} s")
    return out, s.seconds, load


def exact_memory_child(index_dir: str, queries_file: str, threads: int) -> None:
    """Runs in a child process: the exact kind's memory while it searches."""
    import tracemalloc

    import torch

    torch.set_num_threads(threads)

    def status(field: str) -> float:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field)) / 1024

    from minialbert.search import VectorIndex

    queries = np.load(queries_file)
    base_anon = status("RssAnon")
    tracemalloc.start()
    index = VectorIndex(index_dir, threads=threads)
    peak_anon = 0.0
    for q in queries:
        index.search_vectors(q[None, :], K)
        peak_anon = max(peak_anon, status("RssAnon"))
    print(json.dumps({"anon_growth_mb": peak_anon - base_anon, "tracemalloc_peak_mb": tracemalloc.get_traced_memory()[1]
                      / 2**20, "hwm_mb": status("VmHWM"), "vectors_mb": index.count * index.dim * 4 / 2**20}))


def measure_exact_memory(index_dir: Path, queries: np.ndarray, threads: int) -> dict:
    qf = index_dir.parent / "exact-memory-queries.npy"
    np.save(qf, queries)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, __file__, "--exact-memory-child", str(index_dir), str(qf),
                          "--threads", str(threads)], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_kinds(name: str, vec: Path, queries: np.ndarray, args) -> list[dict]:
    from minialbert.search import VectorIndex

    truth = cached_truth(vec, queries, K)
    vectors_mb = next(vec.glob("vectors-*.npy")).stat().st_size / 2**20 if list(vec.glob("vectors-*.npy")) else None
    rows = []
    kinds = args.kinds.split(",")
    # exact last: its large products leave numpy's BLAS threads spinning for a while, which on 2
    # cores delayed the FAISS searches measured after it ~8 ms each (OpenMP barrier waits)
    for kind in sorted(kinds, key=lambda k: k == "exact"):
        params = {k: v for k, v in {**DEFAULTS[kind], **json.loads(args.params).get(kind, {})}.items()}
        out, build_s, build_load = build(vec, kind, params, args.threads, args.rebuild)
        index = VectorIndex(out, threads=args.threads)
        vectors_mb = index.count * index.dim * 4 / 2**20
        nq = min(len(queries), args.exact_queries) if kind == "exact" else len(queries)
        settings = [None]
        if kind.startswith("ivf"):
            reranks = [int(r) for r in args.rerank.split(",")] if args.rerank else [None]
            settings = [(int(p), r) for p in args.nprobe.split(",") for r in reranks]
        elif kind == "hnsw":
            settings = [int(p) for p in args.ef_search.split(",")]
        for setting in settings:
            if kind.startswith("ivf"):
                index.set_search_params(nprobe=setting[0], rerank=setting[1] or index.record["params"]["rerank"])
            elif kind == "hnsw":
                index.set_search_params(ef_search=setting)
            def top(q, search=index.search_vectors):
                return search(q, K)[1]

            latencies(top, queries[:min(nq, 20)])  # warm: page the vectors in
            found, p50, p99 = latencies(top, queries[:nq])
            r = {"data": name, "kind": kind, "params": {**index.record["params"], **index.search_params},
                 "build_s": build_s, "build_load": build_load,
                 "index_mb": dir_bytes(out) / 2**20,
                 "reads_vectors_mb": vectors_mb if kind != "hnsw" else 0.0, "queries": nq,
                 "p50_ms": p50, "p99_ms": p99, "cpu_p50_ms": float(np.median(CPU_MS)),
                 "recall@10": recall(found, truth[:nq]), "load": os.getloadavg()[0]}
            if kind == "exact":
                r["memory"] = measure_exact_memory(out, queries[:nq], args.threads)
            rows.append(r)
            log(f"{kind} {setting}: p50 {p50:.2f} ms, p99 {p99:.2f} ms, CPU p50 {r['cpu_p50_ms']:.2f} ms, "
                f"recall@10 {r['recall@10']:.3f}")
    return rows


# ------------------------------------------------------------------------ FAISS against usearch (raw)
def bench_libraries(name: str, vec: Path, queries: np.ndarray, threads: int) -> list[dict]:
    """The comparison that chose FAISS: each library's HNSW on the same in-memory matrix."""
    import faiss
    from usearch.index import Index

    from minialbert.shards import load_vectors

    _, base = load_vectors(vec)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    truth = cached_truth(vec, queries, K)  # ids == rows here: vectors directories hold ids 0..n-1
    q = np.ascontiguousarray(queries / np.linalg.norm(queries, axis=1, keepdims=True), dtype=np.float32)
    rows = []
    t = time.perf_counter()
    index = faiss.IndexHNSWFlat(base.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 100
    index.add(base)
    build_s = time.perf_counter() - t
    index.hnsw.efSearch = 128
    found, p50, p99 = latencies(lambda x: index.search(x, K)[1], q)
    rows.append({"data": name, "kind": "faiss HNSW M=32 efC=100 ef=128 (raw)", "build_s": build_s, "p50_ms": p50,
                 "p99_ms": p99, "recall@10": recall(found, truth), "index_mb": base.nbytes / 2**20})
    for dtype in ("f32", "i8"):
        t = time.perf_counter()
        u = Index(ndim=base.shape[1], metric="ip", dtype=dtype, connectivity=32, expansion_add=100,
                  expansion_search=128)
        u.add(np.arange(len(base)), base, threads=threads)
        build_s = time.perf_counter() - t
        found, p50, p99 = latencies(lambda x, u=u: np.asarray(u.search(x[0], K).keys, dtype=np.int64)[None, :], q)
        rows.append({"data": name, "kind": f"usearch HNSW {dtype} M=32 efC=100 ef=128 (raw)", "build_s": build_s,
                     "p50_ms": p50, "p99_ms": p99, "recall@10": recall(found, truth),
                     "index_mb": u.memory_usage / 2**20})
    return rows


# ------------------------------------------------------------------------------------------- main
def cpu_line(threads: int) -> str:
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((x.split(":", 1)[1].strip() for x in cpu.splitlines() if x.startswith("Model name")), "?")
    flags = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if f in cpu]
    return (f"CPU: {model} ({', '.join(flags)}), {os.cpu_count()} cores, {threads} threads, Python "
            f"{platform.python_version()}")


def table(rows: list[dict]) -> str:
    lines = ["| data | kind | settings | build s (load) | index MiB | + mmap vectors MiB | p50 ms | p99 ms | CPU p50 ms "
             "| recall@10 |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        p = r.get("params", {})
        settings = ", ".join(f"{k}={v}" for k, v in p.items() if k not in ("trained_on",)) or "-"
        build_s = "-" if r.get("build_s") is None else f"{r['build_s']:.0f} ({r.get('build_load', 0):.1f})" \
            if "build_load" in r else f"{r['build_s']:.0f}"
        mm = f"{r['reads_vectors_mb']:.0f}" if r.get("reads_vectors_mb") else "-"
        lines.append(f"| {r['data']} | {r['kind']} | {settings} | {build_s} | {r['index_mb']:.0f} | {mm} | "
                     f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r.get('cpu_p50_ms', float('nan')):.2f} | "
                     f"{r['recall@10']:.3f} |")
    mem = [r for r in rows if "memory" in r]
    for r in mem:
        m = r["memory"]
        lines.append(f"\nexact search memory ({r['data']}, {r['queries']} queries): vectors {m['vectors_mb']:.0f} MiB "
                     f"memory-mapped; anonymous memory grew at most {m['anon_growth_mb']:.0f} MiB (Python "
                     f"allocations peak {m['tracemalloc_peak_mb']:.0f} MiB); VmHWM {m['hwm_mb']:.0f} MiB "
                     "(counts the mapped file pages the kernel may drop)")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default="bench-search-cache", help="data, reference top-10s and indexes are kept here")
    ap.add_argument("--data", choices=["clustered", "real"], default="clustered")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=768, help="clustered data only (real: the model's width)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--exact-queries", type=int, default=20, help="queries timed on the exact kind (slow at 1M)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--kinds", default="exact,ivf-flat,ivf-sq8,ivf-pq")
    ap.add_argument("--params", default="{}", help='build settings per kind, JSON: \'{"hnsw": {"M": 32}}\'')
    ap.add_argument("--nprobe", default="8,16,32", help="IVF kinds: search settings to measure (no rebuild)")
    ap.add_argument("--rerank", default="", help="IVF kinds: k x RERANK candidates re-scored, settings to measure "
                                                 "(default: each index's own)")
    ap.add_argument("--ef-search", default="64", help="hnsw: search settings to measure (no rebuild)")
    ap.add_argument("--rebuild", action="store_true", help="build the indexes again (data and references are kept)")
    ap.add_argument("--libraries", action="store_true", help="only the raw FAISS-vs-usearch HNSW comparison")
    ap.add_argument("--embed-device", default="cpu", help="real data: where `minialbert embed` runs (cpu: --int8; "
                                                          "cuda: float32 on the GPU, for a 100k set in seconds)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--exact-memory-child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.exact_memory_child:
        exact_memory_child(*args.exact_memory_child, args.threads)
        return
    sys.path.insert(0, str(ROOT))
    import faiss
    import torch

    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    print(cpu_line(args.threads), f"load average at start {os.getloadavg()}", flush=True)
    cache = Path(args.cache)
    if args.data == "clustered":
        vec, queries = prepare_clustered(cache, args.n, args.dim, args.queries)
        name = f"clustered {args.n:,}x{args.dim}"
    else:
        vec, queries = prepare_real(cache, args.n, args.queries, args.embed_device)
        name = f"real {args.n:,}x{queries.shape[1]} (demo checkpoint, embedded on {args.embed_device})"
    rows = bench_libraries(name, vec, queries, args.threads) if args.libraries else bench_kinds(name, vec, queries, args)
    print(f"\n{cpu_line(args.threads)}; load average at end {os.getloadavg()}\n")
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu_line(args.threads), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
