"""Easy ways to lose the inference engine's speed, measured (issue 22's "no cliffs").

    python scripts/bench_cliffs.py [--threads 1] [--clock cpu] [--rounds 5] [--json cliffs.json]

On the same random albert-base-v2-sized checkpoint as scripts/bench.py (8 x 128 tokens), each
case against the engine's steady state, in one process:
  * inference-mode load: a model loaded under torch.inference_mode() (inference-tensor
    parameters), fp32 and int8, steady state, interleaved with a normally loaded one; and the
    same without the engine's fix (parameters left as inference tensors), as the engine was;
  * first call at a new shape (a sequence length not seen before: oneDNN makes new primitives);
  * first call after a dtype round trip (model.to(bfloat16).to(float32): every packed weight is
    derived again);
  * first call after a change of torch's thread count (with --clock wall);
  * thread counts (--threads-section): an engine built and warmed at 1 thread then run at 2, and
    built at 2 then run at 1, each against an engine built and warmed at the thread count it runs
    at, interleaved (the time of the 2-thread side is wall time: a ratio, meaningful on a quiet
    machine); and one engine called from 2 Python threads at once: outputs equal to one thread's,
    and throughput against the same calls made one after the other.
A device change cannot be measured on a CPU-only machine (the engine's packs are keyed by device
as by dtype, so it is the dtype case). Prints the CPU and the engine's plan first.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="scripts/bench_cliffs.py", description=__doc__.split("\n\n")[0],
                                allow_abbrev=False)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clock", choices=["wall", "cpu"], default="cpu",
                   help="cpu (default): CPU time of the calling thread (needs --threads 1); wall: elapsed")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--work-dir", default="/tmp/minialbert-bench")
    p.add_argument("--json", default=None)
    p.add_argument("--threads-section", choices=["on", "off", "only"], default="on",
                   help="the thread-count cases (wall clock for their 2-thread sides; default on)")
    args = p.parse_args(argv)
    if args.clock == "cpu" and args.threads != 1:
        p.error("--clock cpu needs --threads 1")
    import torch

    import bench
    from minialbert import AlbertModel, InferenceEngine, fast
    from minialbert.plan import current_plan

    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    info = bench.machine()
    plan = current_plan()
    print(f"{info['cpu']} ({info['cpu_flags']}), {args.threads} thread(s), {args.clock} clock, torch {info['torch']}, "
          f"load average {os.getloadavg()}")
    print(plan.describe())
    ckpt = bench.build_checkpoint(Path(args.work_dir) / "albert-base-v2-random")
    normal = AlbertModel.from_pretrained(ckpt)
    with torch.inference_mode():
        loaded = AlbertModel.from_pretrained(ckpt)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 30000, (8, 128), generator=g)

    def timed(fn, x=ids) -> float:
        with torch.inference_mode():
            t = clock()
            fn(x)
            return clock() - t

    result = {"machine": info, "plan": plan.as_dict(), "threads": args.threads, "clock": args.clock, "cases": {}}
    rows = []
    for int8 in ((False, True) if args.threads_section != "only" else ()):
        kind = "int8" if int8 else "fp32"
        engines = {"normal": InferenceEngine(normal, int8=int8), "inference-mode load": InferenceEngine(loaded, int8=int8)}
        for e in engines.values():
            timed(e)
        times = {k: [] for k in engines}
        for _ in range(args.rounds):  # interleaved
            for k, e in engines.items():
                times[k].append(timed(e))
        med = {k: statistics.median(v) for k, v in times.items()}
        ratio = med["normal"] / med["inference-mode load"]
        result["cases"][f"{kind} inference-mode load"] = {"steady_s": med, "speed_vs_normal": ratio}
        rows.append((f"{kind}: model loaded under inference_mode, steady", f"{1000 * med['inference-mode load']:.0f} ms",
                     f"{1000 * med['normal']:.0f} ms", f"{ratio:.2f}x"))

        # The engine before the fix, for comparison: inference-tensor parameters left as they are
        # (so every packed weight is derived again on every call), on a fresh inference-mode load.
        with torch.inference_mode():
            fresh = AlbertModel.from_pretrained(ckpt)
        real = fast.engine._ordinary_parameters
        fast.engine._ordinary_parameters = lambda model: None
        try:
            old = InferenceEngine(fresh, int8=int8)
            timed(old)
            before = statistics.median(timed(old) for _ in range(args.rounds))
        finally:
            fast.engine._ordinary_parameters = real
        result["cases"][f"{kind} inference-mode load, before the fix"] = {"steady_s": before}
        rows.append((f"{kind}: the same, parameters left as inference tensors (the engine before)",
                     f"{1000 * before:.0f} ms", f"{1000 * med['normal']:.0f} ms", f"{med['normal'] / before:.2f}x"))

        engine = engines["normal"]
        steady = statistics.median(timed(engine) for _ in range(args.rounds))
        firsts = []
        for seq in (97, 113, 121):  # lengths never run before: new oneDNN primitives
            x = ids[:, :seq]
            first = timed(engine, x)
            again = statistics.median(timed(engine, x) for _ in range(3))
            firsts.append((first, again))
        first, again = (statistics.median(v) for v in zip(*firsts))
        result["cases"][f"{kind} first call at a new shape"] = {"first_s": first, "steady_s": again}
        rows.append((f"{kind}: first call at a new length (8 x 97/113/121, median)", f"{1000 * first:.0f} ms",
                     f"{1000 * again:.0f} ms", f"{again / first:.2f}x"))

        normal.to(torch.bfloat16).to(torch.float32)
        first = timed(engine)
        result["cases"][f"{kind} first call after a dtype round trip"] = {"first_s": first, "steady_s": steady}
        rows.append((f"{kind}: first call after model.to(bf16).to(fp32)", f"{1000 * first:.0f} ms",
                     f"{1000 * steady:.0f} ms", f"{steady / first:.2f}x"))
        if args.clock == "wall":
            torch.set_num_threads(1 if args.threads > 1 else 2)
            timed(engine)
            torch.set_num_threads(args.threads)
            first = timed(engine)
            result["cases"][f"{kind} first call after a thread-count change"] = {"first_s": first, "steady_s": steady}
            rows.append((f"{kind}: first call after a thread-count change and back", f"{1000 * first:.0f} ms",
                         f"{1000 * steady:.0f} ms", f"{steady / first:.2f}x"))
    if rows:
        print("\n| case (8 x 128) | time | steady state, normal load | speed vs steady |\n|---|---:|---:|---:|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
    if args.threads_section != "off":
        result["threads_section"] = thread_cases(normal, ids, args.rounds, args.threads)
    result["machine"]["load_average_at_end"] = os.getloadavg()
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


def thread_cases(model, ids, rounds: int, threads: int) -> dict:
    """Engines moved between thread counts, and one engine shared by two Python threads."""
    import threading

    import torch

    from minialbert import InferenceEngine

    def timed(engine, x, clock):
        with torch.inference_mode():
            t = clock()
            engine(x)
            return clock() - t

    out, rows = {}, []
    small = ids[:1, :16]
    for int8 in (False, True):
        kind = "int8" if int8 else "fp32"
        for built, run in ((1, 2), (2, 1)):
            clock = time.thread_time if run == 1 else time.perf_counter
            torch.set_num_threads(built)
            moved = InferenceEngine(model, int8=int8)
            for x in (ids, small):
                timed(moved, x, clock)
            torch.set_num_threads(run)
            native = InferenceEngine(model, int8=int8)
            for x in (ids, small):
                timed(native, x, clock)
                timed(moved, x, clock)
            for name, x in (("8 x 128", ids), ("1 x 16", small)):
                times = {"moved": [], "native": []}
                for _ in range(rounds if x is ids else 5 * rounds):  # interleaved
                    for k, e in (("moved", moved), ("native", native)):
                        times[k].append(timed(e, x, clock))
                med = {k: statistics.median(v) for k, v in times.items()}
                ratio = med["native"] / med["moved"]
                out[f"{kind} built at {built} thread(s), run at {run}, {name}"] = {"median_s": med, "speed_vs_native": ratio}
                rows.append((f"{kind}: built and warmed at {built} thread(s), run at {run} ({name})",
                             f"{1000 * med['moved']:.1f} ms", f"{1000 * med['native']:.1f} ms", f"{ratio:.2f}x",
                             "wall" if run > 1 else "thread CPU"))
        # one engine, two Python threads (torch at 1 thread each): same outputs, throughput
        torch.set_num_threads(1)
        engine = InferenceEngine(model, int8=int8)
        batches = [ids[i:i + 2] for i in range(0, ids.shape[0], 2)] * max(1, rounds // 2)
        with torch.inference_mode():
            expected = [engine(b).last_hidden_state for b in batches]
            results = [None] * len(batches)

            def work(k, engine=engine, batches=batches, results=results):
                with torch.inference_mode():
                    for i in range(k, len(batches), 2):
                        results[i] = engine(batches[i]).last_hidden_state

            seq_times, par_times = [], []
            for _ in range(3):  # interleaved: one after the other, then the same calls from two threads
                t = time.perf_counter()
                for b in batches:
                    engine(b)
                seq_times.append(time.perf_counter() - t)
                workers = [threading.Thread(target=work, args=(k,)) for k in range(2)]
                t = time.perf_counter()
                for w in workers:
                    w.start()
                for w in workers:
                    w.join()
                par_times.append(time.perf_counter() - t)
        equal = all(torch.equal(a, b) for a, b in zip(expected, results))
        seq, par = statistics.median(seq_times), statistics.median(par_times)
        out[f"{kind} one engine, 2 Python threads"] = {"sequential_s": seq, "two_threads_s": par, "outputs_equal": equal}
        rows.append((f"{kind}: one engine called from 2 Python threads ({len(batches)} calls of 2 x 128; "
                     f"outputs {'equal' if equal else 'DIFFERENT'})", f"{1000 * par:.0f} ms", f"{1000 * seq:.0f} ms",
                     f"{seq / par:.2f}x", "wall"))
    torch.set_num_threads(threads)
    print(f"\nthread counts (load average {os.getloadavg()}; wall-clock rows need a quiet machine)")
    print("| case | time | reference (native / one thread after the other) | speed vs reference | clock |\n"
          "|---|---:|---:|---:|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return out


if __name__ == "__main__":
    sys.exit(main())
