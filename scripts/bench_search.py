"""Vector search on this machine: FAISS (faiss-cpu) against usearch, and minialbert's exact search.

    python scripts/bench_search.py --n 200000 --dim 768 --threads 2 [--real VECTORS_DIR] [--json out.json]

Data: clustered synthetic vectors (--n x --dim, 1,000 Gaussian clusters of random spread, cosine
metric, as embeddings are: many near-duplicates, uneven density), and optionally a real set
written by `minialbert embed --output DIR/` (--real DIR). Queries are held-out vectors drawn the
same way. For every engine: build time, index bytes (serialized), latency p50/p99 for one query
at k=10 (single query, --threads threads), and recall@10 against exact top-10 (computed by a
plain matrix product). Engines run on the same data in one process; the table is printed as
Markdown with the CPU model and load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np


def clustered(n: int, dim: int, seed: int, clusters: int = 1000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, dim)).astype(np.float32)
    spread = rng.uniform(0.2, 0.8, clusters).astype(np.float32)
    out = np.empty((n, dim), np.float32)
    for s in range(0, n, 100_000):
        e = min(n, s + 100_000)
        which = rng.integers(0, clusters, e - s)
        out[s:e] = centers[which] + spread[which, None] * rng.standard_normal((e - s, dim), dtype=np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def exact_top(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    import torch

    b = torch.from_numpy(base)
    q = torch.from_numpy(queries)
    best_s = torch.full((len(queries), k), -np.inf)
    best_i = torch.zeros((len(queries), k), dtype=torch.int64)
    for s in range(0, len(base), 100_000):
        scores = q @ b[s:s + 100_000].T
        v, i = torch.topk(scores, min(k, scores.shape[1]), dim=1)
        cat_s, cat_i = torch.cat([best_s, v], 1), torch.cat([best_i, i + s], 1)
        best_s, j = torch.topk(cat_s, k, dim=1)
        best_i = torch.gather(cat_i, 1, j)
    return best_i.numpy()


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[f >= 0]) & set(t)) / len(t) for f, t in zip(found, truth)]))


def latencies(fn, queries: np.ndarray, k: int):
    found, times = [], []
    for q in queries:
        t = time.perf_counter()
        found.append(fn(q[None, :], k))
        times.append(time.perf_counter() - t)
    times = np.array(times) * 1000
    return np.vstack(found), float(np.percentile(times, 50)), float(np.percentile(times, 99))


def file_bytes(write) -> int:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "index")
        write(path)
        return os.path.getsize(path)


def run_faiss_hnsw(base, queries, k, M=32, ef_construction=100, ef_search=128):
    import faiss

    t = time.perf_counter()
    index = faiss.IndexHNSWFlat(base.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    index.add(base)
    build = time.perf_counter() - t
    index.hnsw.efSearch = ef_search
    found, p50, p99 = latencies(lambda q, k: index.search(q, k)[1], queries, k)
    return {"engine": f"faiss HNSW M={M} efC={ef_construction} ef={ef_search}", "build_s": build,
            "bytes": file_bytes(lambda p: faiss.write_index(index, p)), "found": found, "p50_ms": p50, "p99_ms": p99}


def run_faiss_ivfpq(base, queries, k, nprobe=32, rerank=10):
    import faiss

    n, dim = base.shape
    nlist = int(min(4 * np.sqrt(n), n // 39))
    t = time.perf_counter()
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFPQ(quantizer, dim, nlist, dim // 4, 8, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = index.pq.cp.niter = 10  # as minialbert's ivf-pq kind
    rng = np.random.default_rng(0)
    sample = base[np.sort(rng.choice(n, min(n, max(64 * nlist, 39 * 256), 100_000), replace=False))]
    index.train(sample)
    index.add(base)
    build = time.perf_counter() - t
    index.nprobe = nprobe

    def search(q, k):  # PQ candidates, re-scored against the full vectors (as minialbert's ivf-pq does)
        _, cand = index.search(q, k * rerank)
        cand = cand[0][cand[0] >= 0]
        scores = base[cand] @ q[0]
        return cand[np.argsort(-scores, kind="stable")[:k]][None, :]

    found, p50, p99 = latencies(search, queries, k)
    return {"engine": f"faiss IVF{nlist},PQ{dim // 4} nprobe={nprobe} rerank x{rerank}", "build_s": build,
            "bytes": file_bytes(lambda p: faiss.write_index(index, p)), "found": found, "p50_ms": p50, "p99_ms": p99}


def run_usearch(base, queries, k, M=32, ef_construction=100, ef_search=128, dtype="f32"):
    from usearch.index import Index

    t = time.perf_counter()
    index = Index(ndim=base.shape[1], metric="ip", dtype=dtype, connectivity=M, expansion_add=ef_construction,
                  expansion_search=ef_search)
    index.add(np.arange(len(base)), base, threads=int(os.environ.get("BENCH_THREADS", 2)))
    build = time.perf_counter() - t

    def search(q, k):
        return np.asarray(index.search(q[0], k).keys, dtype=np.int64)[None, :]

    found, p50, p99 = latencies(search, queries, k)
    return {"engine": f"usearch HNSW {dtype} M={M} efC={ef_construction} ef={ef_search}", "build_s": build,
            "bytes": file_bytes(lambda p: index.save(p)), "found": found, "p50_ms": p50, "p99_ms": p99}


def run_exact(base, queries, k, directory):
    """minialbert's exact kind through its own API: chunked products over the memory map."""
    from minialbert.search import ExactIndex

    t = time.perf_counter()
    index = ExactIndex.over_matrix(base, metric="cosine", normalized=True)
    build = time.perf_counter() - t
    found, p50, p99 = latencies(lambda q, k: index.search(q, k)[1], queries, k)
    return {"engine": "minialbert exact (chunked matmul over the memory map)", "build_s": build, "bytes": base.nbytes,
            "found": found, "p50_ms": p50, "p99_ms": p99}


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


def bench(name: str, base: np.ndarray, queries: np.ndarray, k: int, engines: list[str]) -> list[dict]:
    truth = exact_top(base, queries, k)
    rows = []
    runners = {"faiss-hnsw": run_faiss_hnsw, "usearch-hnsw": run_usearch,
               "usearch-hnsw-i8": lambda b, q, k: run_usearch(b, q, k, dtype="i8"),
               "faiss-ivfpq": run_faiss_ivfpq, "exact": lambda b, q, k: run_exact(b, q, k, None)}
    for engine in engines:
        before = rss_mb()
        r = runners[engine](base, queries, k)
        r["rss_growth_mb"] = rss_mb() - before
        r["recall@10"] = recall(r.pop("found"), truth)
        r["data"] = name
        rows.append(r)
        print(f"  {r['engine']}: build {r['build_s']:.1f} s, {r['bytes'] / 2**20:.0f} MiB, p50 {r['p50_ms']:.2f} ms, "
              f"p99 {r['p99_ms']:.2f} ms, recall@10 {r['recall@10']:.3f}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--real", default=None, help="a vectors directory (embed --output DIR/) to search as well")
    ap.add_argument("--engines", default="exact,faiss-hnsw,usearch-hnsw,usearch-hnsw-i8,faiss-ivfpq")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    os.environ["BENCH_THREADS"] = str(args.threads)
    import faiss
    import torch

    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("Model name")), "?")
    flags = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if f in cpu]
    print(f"CPU: {model} ({', '.join(flags)}), {os.cpu_count()} cores, load average {os.getloadavg()}, "
          f"threads {args.threads}, {platform.python_version()}", flush=True)
    engines = args.engines.split(",")
    rows = []
    data = clustered(args.n + args.queries, args.dim, seed=0)
    print(f"clustered {args.n:,} x {args.dim}", flush=True)
    rows += bench(f"clustered {args.n:,}x{args.dim}", data[:args.n], data[args.n:], 10, engines)
    del data
    if args.real:
        from minialbert import load_vectors

        _, vecs = load_vectors(args.real)
        vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
        rng = np.random.default_rng(1)
        pick = rng.permutation(len(vecs))
        q, b = vecs[pick[:args.queries]], np.ascontiguousarray(vecs[np.sort(pick[args.queries:])])
        print(f"real {len(b):,} x {b.shape[1]} from {args.real}", flush=True)
        rows += bench(f"real {len(b):,}x{b.shape[1]}", b, q, 10, engines)
    print(f"\nCPU: {model}; {args.threads} threads; load average at end {os.getloadavg()}\n")
    print("| data | engine | build s | index MiB | RSS growth MiB | p50 ms | p99 ms | recall@10 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['data']} | {r['engine']} | {r['build_s']:.1f} | {r['bytes'] / 2**20:.0f} | {r['rss_growth_mb']:.0f} "
              f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['recall@10']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": model, "threads": args.threads, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
