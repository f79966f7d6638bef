"""The embedding server against Embedder.embed in-process, on the same texts (issue 21).

    python scripts/bench_serve.py [--model DIR] [--texts 256] [--rounds 3] [--threads 2]

Starts `minialbert serve` on a free 127.0.0.1 port (a separate process, --threads torch threads),
then, round after round (interleaved, so load drifts hit every side alike): Embedder.embed on
all texts in this process; the server with 1, 8 and 64 concurrent clients sending one text per
request (POST /v1/embeddings). Reports texts/s (medians over rounds), the ratio to in-process,
request latency p50/p99 and the error count. Then an overload burst: 10x --max-queue
concurrent requests, counted by status (200 or 503 with Retry-After), then a recovery pass that
must be all 200; no request may hang (every one has a timeout and is counted).
Without --model, a random-weight albert-base-sized demo checkpoint is written to a temp folder.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("the river mountain city music train food water light garden stone cloud bread paper window question "
         "answer library museum forest ocean summer winter morning evening").split()


def corpus(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, int(min(rng.lognormal(2.5, 0.6), 120)) + 1)) for _ in range(n)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, threads: int, max_queue: int, max_batch_tokens: int):
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "minialbert", "serve", "--model", model, "--port", str(port),
                             "--max-queue", str(max_queue), "--max-batch-tokens", str(max_batch_tokens)],
                            env=env, stderr=subprocess.DEVNULL)
    import httpx

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start")


def run_clients(url: str, texts: list[str], concurrency: int, timeout: float = 300):
    import httpx

    lat, statuses = [], []
    client = httpx.Client(timeout=timeout, limits=httpx.Limits(max_connections=concurrency + 8))

    def one(t):
        t0 = time.perf_counter()
        try:
            r = client.post(url + "/v1/embeddings", json={"input": t, "encoding_format": "base64"})
            status = r.status_code
        except httpx.TransportError as e:
            status = type(e).__name__
        lat.append(time.perf_counter() - t0)
        statuses.append(status)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, texts))
    wall = time.perf_counter() - t0
    client.close()
    return wall, np.array(lat) * 1000, statuses


def main() -> None:
    ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--texts", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-queue", type=int, default=64)
    ap.add_argument("--max-batch-tokens", type=int, default=16384)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model_name = next((l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("Model name")), "?")
    flags = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if f in cpu]
    print(f"CPU: {model_name} ({', '.join(flags)}), {os.cpu_count()} cores, load average {os.getloadavg()}",
          flush=True)
    tmp = tempfile.TemporaryDirectory()
    model = args.model
    if model is None:
        model = os.path.join(tmp.name, "demo")
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_demo_checkpoint.py"), model], check=True,
                       stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    from minialbert import Embedder

    emb = Embedder.from_pretrained(model)
    texts = corpus(args.texts)
    tokens = sum(len(ids) + 2 for ids in emb.tokenizer.encode_batch_ids(texts))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(model, port, args.threads, args.max_queue, args.max_batch_tokens)
    try:
        emb.embed(texts[:16])
        run_clients(url, texts[:16], 4)  # warm both sides
        rates = {"in-process": []}
        lats = {}
        errors = {}
        for r in range(args.rounds):
            t0 = time.perf_counter()
            emb.embed(texts)
            rates["in-process"].append(len(texts) / (time.perf_counter() - t0))
            for c in (1, 8, 64):
                wall, lat, statuses = run_clients(url, texts, c)
                rates.setdefault(c, []).append(len(texts) / wall)
                lats.setdefault(c, []).extend(lat.tolist())
                errors[c] = errors.get(c, 0) + sum(s != 200 for s in statuses)
            print(f"round {r + 1}: " + ", ".join(f"{k}: {v[-1]:.1f} texts/s" for k, v in rates.items()), flush=True)
        base = statistics.median(rates["in-process"])
        print(f"\n{len(texts)} texts ({tokens:,} tokens), {args.rounds} rounds, {args.threads} torch threads per "
              f"side; CPU {model_name}; load average at end {os.getloadavg()}\n")
        print("| side | texts/s (median) | vs in-process | p50 ms | p99 ms | errors |")
        print("|---|---|---|---|---|---|")
        print(f"| Embedder.embed in-process (batch 32) | {base:.1f} | 1.00x | | | |")
        for c in (1, 8, 64):
            m = statistics.median(rates[c])
            print(f"| server, concurrency {c} | {m:.1f} | {m / base:.2f}x | {np.percentile(lats[c], 50):.0f} | "
                  f"{np.percentile(lats[c], 99):.0f} | {errors[c]} |")
        # overload: a burst of 10x --max-queue single-text requests at once
        burst = (texts * 20)[:10 * args.max_queue]
        wall, lat, statuses = run_clients(url, burst, len(burst), timeout=600)
        counts = {s: statuses.count(s) for s in set(statuses)}
        _, _, after = run_clients(url, texts[:32], 8)
        print(f"\noverload: {len(burst)} concurrent requests (10x --max-queue {args.max_queue}) -> {counts} in "
              f"{wall:.1f} s (slowest {lat.max():.0f} ms); recovery: {after.count(200)}/{len(after)} ok; "
              f"answered {len(statuses)}/{len(burst)} (none hung)")
    finally:
        proc.terminate()
        proc.wait(120)
        tmp.cleanup()


if __name__ == "__main__":
    main()
