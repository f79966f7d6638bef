"""Benchmark streaming embedding (--output DIR/): memory against corpus size, throughput against
in-memory Embedder.embed, and Ray's overhead on one machine.

    python scripts/bench_stream.py                      # everything (~15-30 min on 2 busy cores)
    python scripts/bench_stream.py --only rss --sizes 10000,100000,1000000
    python scripts/bench_stream.py --only throughput --texts 100000 --rounds 3
    python scripts/bench_stream.py --only ray --ray-texts 20000

Models are random-weight checkpoints built here (no download), with the benchmark tokenizer
(tests/fixtures/tokenizer/hub). On a 2-core CPU a real ALBERT would take hours for these corpora,
so:
  * rss: a tiny model (H=32, 2 layers) embeds 10k, 100k and 1M short texts with the CLI, one
    fresh process per size; peak RSS is the process's ru_maxrss. A tiny model is the harshest
    case for the memory bound: the model adds almost nothing, so whatever grows with the corpus
    shows. The same sizes through `--output x.npy` (everything in memory) are shown beside it.
  * throughput: a small model (H=128, 2 layers by default) on the mixed-length corpus of the
    main benchmark (minialbert/bench.py: lognormal word counts, median ~39 tokens), 100,000
    texts: in memory (read_texts + Embedder.embed + write .npy, what `--output x.npy` does)
    against embed_file into a directory, in one process, interleaved rounds, medians. The
    smaller the model, the larger the streaming overhead's share: a real model only narrows it.
  * ray: the CLI with and without --ray (2 actors x 1 CPU against one process with 2 torch
    threads), wall time including startup, on a large and a tiny input, so that the fixed
    startup cost and the steady throughput can be told apart.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TOKENIZER = ROOT / "tests" / "fixtures" / "tokenizer" / "hub"


# ------------------------------------------------------------------------------ inputs
def mixed_corpus(n: int, seed: int = 0) -> list[str]:
    """The main benchmark's corpus (its make_corpus), wherever that module lives now."""
    try:
        from minialbert.bench import make_corpus
    except ImportError:
        sys.path.insert(0, str(ROOT / "scripts"))
        from bench import make_corpus  # the benchmark moved to scripts/
    return make_corpus(n, seed)


def write_short_texts(path: Path, n: int, seed: int = 0) -> None:
    """n short texts (3-12 words), written as they are generated: the file, not the list, is big."""
    words = " ".join(mixed_corpus(200, seed=99)).lower().replace(".", "").split()
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n):
            f.write(" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) + "\n")


def build_checkpoint(directory: Path, hidden: int, layers: int, heads: int, intermediate: int,
                     embedding: int = 64) -> Path:
    import sentencepiece as spm
    import torch

    from minialbert import AlbertConfig, AlbertModel

    if (directory / "model.safetensors").exists():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    vocab = spm.SentencePieceProcessor(model_file=str(TOKENIZER / "spiece.model")).get_piece_size()
    config = AlbertConfig(vocab_size=vocab, embedding_size=embedding, hidden_size=hidden, num_hidden_layers=layers,
                          num_attention_heads=heads, intermediate_size=intermediate, max_position_embeddings=512)
    torch.manual_seed(0)
    model = AlbertModel(config)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.02)
    model.save_pretrained(directory)
    for name in ("spiece.model", "tokenizer.json"):
        if (TOKENIZER / name).exists():
            shutil.copy(TOKENIZER / name, directory / name)
    return directory


def machine(threads: int) -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                have = set(line.split(":", 1)[1].split())
                flags = " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile") if f in have)
    except OSError:
        pass
    return {"cpu": cpu, "flags": flags, "logical_cpus": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": threads, "load_average_at_start": os.getloadavg()}


# ------------------------------------------------------------------------------ rss
def run_measured(argv: list[str], env: dict) -> tuple[float, float, int]:
    """Run a command; return (wall seconds, peak RSS in MiB, exit status)."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if status:
        sys.stderr.write(proc.stderr.read().decode(errors="replace"))
    proc.stderr.close()
    return wall, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def bench_rss(work: Path, sizes: list[int], threads: int, npy: bool, log) -> list[dict]:
    ckpt = build_checkpoint(work / "tiny", hidden=32, layers=2, heads=2, intermediate=64, embedding=16)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT)}
    rows = []
    for n in sizes:
        src = work / f"short_{n}.txt"
        if not src.exists():
            write_short_texts(src, n)
        out = work / f"rss_out_{n}"
        shutil.rmtree(out, ignore_errors=True)
        wall, rss, code = run_measured([sys.executable, "-m", "minialbert", "embed", "--model", str(ckpt), "--input",
                                        str(src), "--output", f"{out}/", "-q"], env)
        row = {"texts": n, "input_mb": src.stat().st_size / 2**20, "stream_rss_mb": rss, "stream_wall_s": wall,
               "stream_ok": code == 0}
        shutil.rmtree(out, ignore_errors=True)
        if npy:
            wall, rss, code = run_measured([sys.executable, "-m", "minialbert", "embed", "--model", str(ckpt),
                                            "--input", str(src), "--output", str(work / "x.npy"), "-q"], env)
            row.update(npy_rss_mb=rss, npy_wall_s=wall, npy_ok=code == 0)
            (work / "x.npy").unlink(missing_ok=True)
        rows.append(row)
        log(f"  {n:>9,} texts: stream {row['stream_rss_mb']:.0f} MiB in {row['stream_wall_s']:.0f} s"
            + (f", .npy {row['npy_rss_mb']:.0f} MiB in {row['npy_wall_s']:.0f} s" if npy else ""))
    return rows


# ------------------------------------------------------------------------ throughput
def bench_throughput(work: Path, n: int, rounds: int, threads: int, hidden: int, layers: int, log) -> dict:
    import torch

    from minialbert import Embedder
    from minialbert.files import read_texts, write_vectors
    from minialbert.stream import embed_file

    torch.set_num_threads(threads)
    ckpt = build_checkpoint(work / f"small_{hidden}x{layers}", hidden=hidden, layers=layers, heads=max(1, hidden // 64),
                            intermediate=4 * hidden)
    src = work / f"mixed_{n}.txt"
    if not src.exists():
        src.write_text("".join(t + "\n" for t in mixed_corpus(n)), encoding="utf-8")
    emb = Embedder.from_pretrained(ckpt)
    tokens = sum(len(ids) + 2 for ids in emb.tokenizer.encode_batch_ids(read_texts(src)))

    def in_memory():
        texts = read_texts(src)
        write_vectors(work / "mem.npy", emb.embed(texts, batch_size=32), texts)

    def streaming():
        out = work / "stream_out"
        shutil.rmtree(out, ignore_errors=True)
        embed_file(emb, src, out, batch_size=32)

    sides = {"in_memory": in_memory, "streaming": streaming}
    times = {k: [] for k in sides}
    cpu = {k: [] for k in sides}  # this process's CPU seconds: what other tenants of a shared machine disturb least
    emb.embed(read_texts(src)[:2000], batch_size=32)  # warm-up: caches, allocator
    for r in range(rounds):
        order = list(sides) if r % 2 == 0 else list(sides)[::-1]
        for name in order:
            t, c = time.perf_counter(), time.process_time()
            sides[name]()
            times[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
            log(f"  round {r + 1}: {name} {times[name][-1]:.1f} s wall, {cpu[name][-1]:.1f} s CPU")
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    return {"texts": n, "tokens": tokens, "model": f"H={hidden}, {layers} layers, random weights",
            "seconds": times, "cpu_seconds": cpu, "texts_per_s": {k: n / v for k, v in med.items()},
            "tokens_per_s": {k: tokens / v for k, v in med.items()},
            "ratio_streaming_over_in_memory": med["in_memory"] / med["streaming"],
            "cpu_ratio_streaming_over_in_memory": med_cpu["in_memory"] / med_cpu["streaming"],
            "paired_wall_ratios": [a / b for a, b in zip(times["in_memory"], times["streaming"])]}


# -------------------------------------------------------------------------------- ray
def bench_ray(work: Path, n: int, rounds: int, hidden: int, layers: int, log) -> dict:
    ckpt = build_checkpoint(work / f"small_{hidden}x{layers}", hidden=hidden, layers=layers, heads=max(1, hidden // 64),
                            intermediate=4 * hidden)
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT)}
    env.pop("OMP_NUM_THREADS", None)
    inputs = {}
    for size in (n, 200):
        inputs[size] = work / f"ray_mixed_{size}.txt"
        if not inputs[size].exists():
            inputs[size].write_text("".join(t + "\n" for t in mixed_corpus(size, seed=5)), encoding="utf-8")
    modes = ("cli", "cli1", "ray")  # cli1: the plain CLI with one torch thread (OMP_NUM_THREADS=1)
    walls = {(mode, size): [] for mode in modes for size in inputs}
    for r in range(rounds):
        for mode in (modes if r % 2 == 0 else modes[::-1]):
            for size, src in inputs.items():
                out = work / "ray_out"
                shutil.rmtree(out, ignore_errors=True)
                extra = ["--ray", "--ray-cpus", "1"] if mode == "ray" else []
                wall, rss, code = run_measured([sys.executable, "-m", "minialbert", "embed", "--model", str(ckpt),
                                                "--input", str(src), "--output", f"{out}/", "--window", "2000",
                                                "-q", *extra], {**env, "OMP_NUM_THREADS": "1"} if mode == "cli1" else env)
                if code:
                    raise SystemExit(f"{mode} run failed")
                walls[(mode, size)].append(wall)
                log(f"  round {r + 1}: {mode:3} {size:>7,} texts {wall:.1f} s")
    med = {k: statistics.median(v) for k, v in walls.items()}
    result = {"texts": n, "model": f"H={hidden}, {layers} layers, random weights", "walls": {f"{m}_{s}": v for (m, s), v in walls.items()}}
    for mode in modes:
        marginal = med[(mode, n)] - med[(mode, 200)]  # the time the extra texts took, startup excluded
        result[mode] = {"wall_s": med[(mode, n)], "startup_s": med[(mode, 200)], "texts_per_s": n / med[(mode, n)],
                        "steady_texts_per_s": (n - 200) / marginal if marginal > 0 else None}
    for base in ("cli", "cli1"):
        result[f"ratio_ray_over_{base}"] = result["ray"]["texts_per_s"] / result[base]["texts_per_s"]
        steady = result["ray"]["steady_texts_per_s"], result[base]["steady_texts_per_s"]
        result[f"ratio_steady_ray_over_{base}"] = steady[0] / steady[1] if None not in steady else None
    return result


# ------------------------------------------------------------------------------ main
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--only", choices=["rss", "throughput", "ray"], action="append")
    p.add_argument("--sizes", default="10000,100000,1000000", help="RSS table sizes")
    p.add_argument("--no-npy", action="store_true", help="skip the in-memory .npy column of the RSS table")
    p.add_argument("--texts", type=int, default=100_000, help="throughput corpus size")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads for rss/throughput (ray uses its own)")
    p.add_argument("--ray-texts", type=int, default=10_000)
    p.add_argument("--ray-rounds", type=int, default=1)
    p.add_argument("--workdir", default=None, help="keep inputs and checkpoints here between runs")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)
    parts = args.only or ["rss", "throughput", "ray"]

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_stream_"))
    work.mkdir(parents=True, exist_ok=True)
    result = {"machine": machine(args.threads)}
    log(json.dumps(result["machine"]))
    if "rss" in parts:
        log("peak RSS against corpus size (tiny model, one process per size)")
        result["rss"] = bench_rss(work, [int(s) for s in args.sizes.split(",")], args.threads, not args.no_npy, log)
    if "throughput" in parts:
        log(f"throughput, {args.texts:,} mixed-length texts, in memory vs streaming")
        result["throughput"] = bench_throughput(work, args.texts, args.rounds, args.threads, args.hidden,
                                                args.layers, log)
    if "ray" in parts:
        log(f"Ray on this machine vs the plain CLI, {args.ray_texts:,} texts")
        result["ray"] = bench_ray(work, args.ray_texts, args.ray_rounds, args.hidden, args.layers, log)
    print(markdown(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [f"{m['cpu']} ({m['logical_cpus']} logical CPUs; {m['flags']}), torch {m['torch']}, load average at "
             f"start {m['load_average_at_start'][0]:.1f}"]
    if "rss" in result:
        base = result["rss"][0]
        lines += ["", "| texts | input | stream: peak RSS | × smallest | wall | .npy in memory: peak RSS | wall |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        for r in result["rss"]:
            lines.append(f"| {r['texts']:,} | {r['input_mb']:.1f} MiB | {r['stream_rss_mb']:.0f} MiB | "
                         f"{r['stream_rss_mb'] / base['stream_rss_mb']:.2f}× | {r['stream_wall_s']:.0f} s | "
                         + (f"{r['npy_rss_mb']:.0f} MiB | {r['npy_wall_s']:.0f} s |" if "npy_rss_mb" in r else "– | – |"))
    if "throughput" in result:
        t = result["throughput"]
        lines += ["", f"Throughput, {t['texts']:,} mixed-length texts ({t['tokens']:,} tokens), {t['model']}, "
                      f"{m['torch_threads']} torch thread(s), medians of {len(t['seconds']['streaming'])} interleaved rounds:",
                  "", "| side | texts/s | tokens/s | wall s (each round) | CPU s (each round) |",
                  "|---|---:|---:|---|---|"]
        for k in ("in_memory", "streaming"):
            lines.append(f"| {k.replace('_', ' ')} | {t['texts_per_s'][k]:,.0f} | {t['tokens_per_s'][k]:,.0f} | "
                         f"{', '.join(f'{s:.1f}' for s in t['seconds'][k])} | "
                         f"{', '.join(f'{s:.1f}' for s in t['cpu_seconds'][k])} |")
        lines.append(f"\nstreaming / in memory throughput: **{t['ratio_streaming_over_in_memory']:.3f}×** by median "
                     f"wall time, **{t['cpu_ratio_streaming_over_in_memory']:.3f}×** by median CPU time (per round: "
                     f"{', '.join(f'{x:.2f}' for x in t['paired_wall_ratios'])})")
    if "ray" in result:
        r = result["ray"]
        lines += ["", f"Ray Data on this machine, {r['texts']:,} texts, {r['model']} (CLI: one process, torch's "
                      "default threads (2); --ray: a local Ray with 2 actors × 1 CPU):", "",
                  "| mode | wall | texts/s (all) | wall for 200 texts (startup) | steady texts/s |",
                  "|---|---:|---:|---:|---:|"]
        names = {"cli": "plain CLI, 2 torch threads", "cli1": "plain CLI, 1 torch thread", "ray": "--ray, 2 actors × 1 CPU"}
        for k in ("cli", "cli1", "ray"):
            x = r[k]
            steady = f"{x['steady_texts_per_s']:,.0f}" if x["steady_texts_per_s"] else "n/a (noise)"
            lines.append(f"| {names[k]} | {x['wall_s']:.1f} s | {x['texts_per_s']:,.0f} | "
                         f"{x['startup_s']:.1f} s | {steady} |")
        for base in ("cli", "cli1"):
            ratio = r[f"ratio_steady_ray_over_{base}"]
            lines.append(f"\n--ray / {names[base]}: {r[f'ratio_ray_over_{base}']:.2f}× overall"
                         + (f", {ratio:.2f}× steady" if ratio else ""))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
