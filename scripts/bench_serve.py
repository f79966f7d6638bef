"""The embedding server against Embedder.embed in-process, on the same texts (issue 21).

    python scripts/bench_serve.py [--model DIR | --work DIR [--layers N]] [--texts 256] [--rounds 3]
                                  [--threads 2] [--infinity-python /path/to/venv/bin/python]

Starts `minialbert serve` on a free 127.0.0.1 port (its own process, --threads torch threads),
and with --infinity-python also Infinity (`infinity_emb v2`, from that Python's environment) on
the same checkpoint. Then, round after round (interleaved, so a change of machine load hits
every side alike), on the same texts:

* in-process, one call: `Embedder.embed(texts)`, as a user with the whole list would call it;
* in-process, per request: `Embedder.embed([text])` for each text, the same grouping as the
  requests (one text each): what concurrency 1 can at best reach;
* each server at concurrency 1, 8 and 64: a load generator in a SEPARATE process (asyncio, raw
  HTTP/1.1 over keep-alive connections, request bodies built beforehand, so that the client
  costs little CPU) sends one text per POST /v1/embeddings request (base64), bounded: each text
  once, a timeout on every request.

Reported: texts/s (median over rounds) and its ratio to both in-process sides; request latency
p50/p99; errors (anything but a 200, and any vector further than 1e-4 from in-process); and CPU
time per text (server process: /proc/PID/stat; client process; in-process: process_time), which
shows the cost of serving independently of how loaded the machine is. Then an overload burst:
10x --max-queue requests at once against minialbert, counted by status (200, or 503 with
Retry-After), then a recovery pass that must be all 200; no request may hang (each has a timeout
and is counted).

Without --model, an albert-base-sized random-weight demo checkpoint (scripts/make_demo_checkpoint.py)
is written to --work (kept there and reused by later runs) or a temporary folder; --layers N
makes it call its shared layer N times instead of 12 (a cheaper model, where the serving
overhead weighs more). --baseline-root DIR adds a `minialbert serve` from another checkout (say
an older commit: `git archive COMMIT | tar -x -C DIR`), to compare versions on the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("the river mountain city music train food water light garden stone cloud bread paper window question "
         "answer library museum forest ocean summer winter morning evening").split()
CONCURRENCY = (1, 8, 64)


def corpus(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, int(min(rng.lognormal(2.5, 0.6), 120)) + 1)) for _ in range(n)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- the load generator (its own process)
async def _load(port: int, path: str, bodies: list[bytes], concurrency: int, timeout: float):
    n = len(bodies)
    lat, status, retry_after, answers = [0.0] * n, [""] * n, [False] * n, [None] * n
    todo = iter(range(n))

    async def connection() -> None:
        reader = writer = None
        for i in todo:
            request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(bodies[i])}\r\n\r\n").encode() + bodies[i]
            t0 = time.perf_counter()
            try:
                async with asyncio.timeout(timeout):
                    if writer is None:
                        reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.write(request)
                    head = await reader.readuntil(b"\r\n\r\n")
                    headers = {k.strip().lower(): v.strip() for k, _, v in
                               (line.partition(b":") for line in head.split(b"\r\n")[1:] if line)}
                    body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
                status[i] = head.split(b" ", 2)[1].decode()
                retry_after[i] = b"retry-after" in headers
                if status[i] == "200":
                    answers[i] = json.loads(body)["data"][0]["embedding"]
                if headers.get(b"connection", b"").lower() == b"close":
                    writer.close()
                    writer = None
            except Exception as e:  # noqa: BLE001 - counted as an error of this request
                status[i] = type(e).__name__
                if writer is not None:
                    writer.close()
                    writer = None
            lat[i] = time.perf_counter() - t0
        if writer is not None:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(min(concurrency, n))))
    return time.perf_counter() - t0, lat, status, retry_after, answers


def client_main(argv: list[str]) -> None:
    port, path, bodies_file, concurrency, timeout = argv
    bodies = [b.encode() for b in json.loads(Path(bodies_file).read_text())]
    wall, lat, status, retry_after, answers = asyncio.run(_load(int(port), path, bodies, int(concurrency),
                                                                float(timeout)))
    ru = resource.getrusage(resource.RUSAGE_SELF)
    json.dump({"wall": wall, "lat": lat, "status": status, "retry_after": retry_after, "answers": answers,
               "cpu": ru.ru_utime + ru.ru_stime}, sys.stdout)


def run_load(port: int, bodies_file: str, concurrency: int, server_pid: int, timeout: float = 300) -> dict:
    """One bounded load run from a separate client process; adds the server's CPU seconds."""
    before = cpu_seconds(server_pid)
    out = subprocess.run([sys.executable, __file__, "--_client", str(port), "/v1/embeddings", bodies_file,
                          str(concurrency), str(timeout)], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    result["server_cpu"] = cpu_seconds(server_pid) - before
    return result


# ---------------------------------------------------------------- servers
def wait_ready(proc: subprocess.Popen, port: int, what: str, log: Path) -> None:
    import httpx

    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with status {proc.returncode}; its log ({log}) ends:\n"
                             + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"{what} did not start in 10 minutes; see {log}")


def start_minialbert(model: str, port: int, args, log: Path, root: Path = ROOT) -> subprocess.Popen:
    """`minialbert serve` from the checkout at root (another one: --baseline-root, with its own options)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(root)}
    batch = ["--max-batch-size", str(args.max_batch_size)] if root == ROOT else []
    proc = subprocess.Popen([sys.executable, "-m", "minialbert", "serve", "--model", model, "--port", str(port),
                             "--max-queue", str(args.max_queue), "--max-batch-tokens", str(args.max_batch_tokens),
                             *batch], env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    wait_ready(proc, port, "minialbert serve", log)
    return proc


def start_infinity(python: str, model: str, port: int, args, log: Path) -> subprocess.Popen:
    """Infinity's own CLI (`infinity_emb v2`) from the given environment, offline, torch engine on the CPU."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS=str(args.threads), HF_HUB_OFFLINE="1", INFINITY_ANONYMOUS_USAGE_STATS="0",
               DO_NOT_TRACK="1")
    code = "import sys; from infinity_emb.cli import cli; sys.argv[0] = 'infinity_emb'; cli()"
    proc = subprocess.Popen([python, "-c", code, "v2", "--model-id", model, "--served-model-name", "bench",
                             "--engine", "torch", "--device", "cpu", "--batch-size", str(args.max_batch_size),
                             "--host", "127.0.0.1", "--port", str(port), "--url-prefix", "/v1",
                             "--no-bettertransformer", "--log-level", "warning"],
                            env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    wait_ready(proc, port, "Infinity", log)
    return proc


def write_bodies(path: Path, texts: list[str], model: str | None = None) -> str:
    extra = {"model": model} if model else {}
    path.write_text(json.dumps([json.dumps({"input": t, "encoding_format": "base64", **extra}) for t in texts]))
    return str(path)


def demo_checkpoint(work: Path, layers: int | None) -> str:
    base = work / "demo-albert"
    if not (base / "model.safetensors").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_demo_checkpoint.py"), str(base)], check=True,
                       stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if layers is None or layers == 12:
        return str(base)
    small = work / f"demo-albert-{layers}-layers"  # one shared layer: the same weights, called N times
    if not small.exists():
        tmp = work / f".tmp-{layers}"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(base, tmp)
        config = json.loads((tmp / "config.json").read_text())
        config["num_hidden_layers"] = layers
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        tmp.rename(small)
    return str(small)


def max_error(answers: list, want: np.ndarray) -> float:
    worst = 0.0
    for a, w in zip(answers, want):
        if a is not None:
            worst = max(worst, float(np.abs(np.frombuffer(base64.b64decode(a), "<f4") - w).max()))
    return worst


# ---------------------------------------------------------------- main
def main() -> None:
    if sys.argv[1:2] == ["--_client"]:
        return client_main(sys.argv[2:])
    ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="a checkpoint folder (default: the demo checkpoint)")
    ap.add_argument("--work", default=None, help="folder for the demo checkpoint, kept and reused (default: temp)")
    ap.add_argument("--layers", type=int, default=None, help="demo checkpoint: layer calls (default 12)")
    ap.add_argument("--texts", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch threads of each side (default 2)")
    ap.add_argument("--concurrency", default=",".join(map(str, CONCURRENCY)))
    ap.add_argument("--max-queue", type=int, default=64)
    ap.add_argument("--max-batch-size", type=int, default=32, help="both servers' batch size (default 32)")
    ap.add_argument("--max-batch-tokens", type=int, default=16384)
    ap.add_argument("--infinity-python", default=None, metavar="PYTHON",
                    help="also run Infinity (infinity_emb v2) with this Python, e.g. /tmp/infvenv/bin/python")
    ap.add_argument("--baseline-root", default=None, metavar="DIR",
                    help="also serve with the minialbert of another checkout (e.g. `git archive OLD | tar -x -C DIR`)")
    ap.add_argument("--no-overload", action="store_true", help="skip the overload burst")
    ap.add_argument("--json", default=None, metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: still stop the servers (finally below)
    import torch

    torch.set_num_threads(args.threads)
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model_name = next((l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("Model name")), "?")
    flags = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if f in cpu]
    print(f"CPU: {model_name} ({', '.join(flags)}), {os.cpu_count()} cores, load average {os.getloadavg()}",
          flush=True)
    tmp = tempfile.TemporaryDirectory()
    work = Path(args.work or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    model = args.model or demo_checkpoint(work, args.layers)
    from minialbert import Embedder

    emb = Embedder.from_pretrained(model)
    texts = corpus(args.texts)
    tokens = sum(len(ids) + 2 for ids in emb.tokenizer.encode_batch_ids(texts))
    want = emb.embed(texts)
    want_inf = emb.embed(texts, pooling="mean", normalize=True) if args.infinity_python else None
    print(f"model {model}; {len(texts)} texts, {tokens:,} tokens; {args.threads} torch threads per side", flush=True)

    logs = Path(tmp.name)
    procs: dict[str, tuple[subprocess.Popen, int, str, np.ndarray]] = {}
    try:
        port = free_port()
        procs["minialbert serve"] = (start_minialbert(model, port, args, logs / "minialbert.log"), port,
                                     write_bodies(logs / "bodies.json", texts), want)
        if args.baseline_root:
            port = free_port()
            procs["baseline serve"] = (start_minialbert(model, port, args, logs / "baseline.log",
                                                        Path(args.baseline_root).resolve()), port,
                                       write_bodies(logs / "bodies.json", texts), want)
        if args.infinity_python:
            port = free_port()
            procs["Infinity"] = (start_infinity(args.infinity_python, model, port, args, logs / "infinity.log"), port,
                                 write_bodies(logs / "bodies-inf.json", texts, "bench"), want_inf)
        warm = texts[:16]
        emb.embed(warm)
        for name, (proc, port, _, _) in procs.items():
            bodies = write_bodies(logs / "warm.json", warm, "bench" if name == "Infinity" else None)
            run_load(port, bodies, 4, proc.pid)

        rate: dict = {}
        cpu_per_text: dict = {}
        lat: dict = {}
        errors: dict = {}
        client_cpu: dict = {}

        def note(side, n, wall, cpu_s):
            rate.setdefault(side, []).append(n / wall)
            cpu_per_text.setdefault(side, []).append(1000 * cpu_s / n)

        for r in range(args.rounds):
            t0, c0 = time.perf_counter(), time.process_time()
            emb.embed(texts)
            note("in-process, one call", len(texts), time.perf_counter() - t0, time.process_time() - c0)
            t0, c0 = time.perf_counter(), time.process_time()
            for t in texts:
                emb.embed([t])
            note("in-process, per request", len(texts), time.perf_counter() - t0, time.process_time() - c0)
            for c in levels:
                for name, (proc, port, bodies, ref) in procs.items():
                    side = (name, c)
                    res = run_load(port, bodies, c, proc.pid)
                    note(side, len(texts), res["wall"], res["server_cpu"])
                    lat.setdefault(side, []).extend(res["lat"])
                    bad = sum(s != "200" for s in res["status"])
                    wrong = max_error(res["answers"], ref)
                    errors[side] = errors.get(side, 0) + bad + (len(texts) - bad if wrong > 1e-4 else 0)
                    client_cpu.setdefault(side, []).append(1000 * res["cpu"] / len(texts))
            print(f"round {r + 1}/{args.rounds}, load {os.getloadavg()[0]:.1f}: "
                  + ", ".join(f"{k if isinstance(k, str) else f'{k[0]} c={k[1]}'} {v[-1]:.1f}"
                              for k, v in rate.items()) + " texts/s", flush=True)

        one = statistics.median(rate["in-process, one call"])
        each = statistics.median(rate["in-process, per request"])
        print(f"\n{len(texts)} texts ({tokens:,} tokens), one text per request, {args.rounds} rounds (medians), "
              f"{args.threads} torch threads per side, --max-batch-size {args.max_batch_size}; CPU {model_name}; "
              f"load average at end {os.getloadavg()}\n")
        print("| side | texts/s | vs in-process one call | vs in-process per request | p50 ms | p99 ms | errors "
              "| server CPU ms/text | client CPU ms/text |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        rows = []
        for side in rate:
            m = statistics.median(rate[side])
            cpu_ms = statistics.median(cpu_per_text[side])
            if isinstance(side, str):
                label, p50, p99, err, ccpu = f"`Embedder.embed` {side}", "", "", "", ""
            else:
                label = f"{side[0]}, concurrency {side[1]}"
                p50 = f"{1000 * np.percentile(lat[side], 50):.0f}"
                p99 = f"{1000 * np.percentile(lat[side], 99):.0f}"
                err, ccpu = str(errors[side]), f"{statistics.median(client_cpu[side]):.2f}"
            print(f"| {label} | {m:.1f} | {m / one:.2f}x | {m / each:.2f}x | {p50} | {p99} | {err} | {cpu_ms:.1f} | "
                  f"{ccpu} |")
            rows.append({"side": label, "texts_per_s": m, "vs_one_call": m / one, "vs_per_request": m / each,
                         "p50_ms": p50, "p99_ms": p99, "errors": err, "cpu_ms_per_text": cpu_ms,
                         "rates": rate[side]})
        summary = {"cpu": model_name, "flags": flags, "texts": len(texts), "tokens": tokens, "rows": rows}
        for name in [n for n in procs if n != "Infinity"]:  # how the requests became batches (Prometheus text)
            import httpx

            text = httpx.get(f"http://127.0.0.1:{procs[name][1]}/metrics", timeout=30).text
            value = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
                     if line and not line.startswith("#") and "{" not in line}
            batches = value.get("minialbert_batch_texts_count", 0)
            if batches:
                mean = value["minialbert_batch_texts_sum"] / batches
                real = value["minialbert_tokens_total"] / value["minialbert_batch_tokens_sum"]
                print(f"{name}: {batches:.0f} model batches, {mean:.1f} texts each on average, real tokens "
                      f"{real:.0%} of the padded batches the batcher formed (all runs)")
                summary[f"{name} batches"] = {"count": batches, "mean_texts": mean, "real_token_share": real}

        if not args.no_overload:
            proc, port, _, _ = procs["minialbert serve"]
            burst = (texts * (10 * args.max_queue // len(texts) + 1))[:10 * args.max_queue]
            res = run_load(port, write_bodies(logs / "burst.json", burst), len(burst), proc.pid, timeout=120)
            counts = {s: res["status"].count(s) for s in sorted(set(res["status"]))}
            no_retry = sum(s == "503" and not ra for s, ra in zip(res["status"], res["retry_after"]))
            after = run_load(port, write_bodies(logs / "after.json", texts[:32]), 8, proc.pid)
            ok, sent = after["status"].count("200"), len(after["status"])
            hung = sum(s == "TimeoutError" for s in res["status"] + after["status"])  # no answer in 120 s
            print(f"\noverload: {len(burst)} requests at once (10x --max-queue {args.max_queue}) -> "
                  f"{', '.join(f'{n} x {s}' for s, n in counts.items())} in {res['wall']:.1f} s (slowest "
                  f"{1000 * max(res['lat']):.0f} ms; 503 without Retry-After: {no_retry}); recovery: {ok}/{sent} x 200; "
                  f"{len(res['status'])}/{len(burst)} counted, {hung} hung (no answer in 120 s)")
            summary["overload"] = {"burst": len(burst), "statuses": counts, "no_retry_after": no_retry,
                                   "recovery_ok": ok, "hung": hung, "slowest_ms": 1000 * max(res["lat"])}
        if args.json:
            Path(args.json).write_text(json.dumps(summary, indent=1))
    finally:
        for proc, *_ in procs.values():
            proc.terminate()
        for proc, *_ in procs.values():
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
        tmp.cleanup()


if __name__ == "__main__":
    main()
