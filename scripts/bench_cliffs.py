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
  * first call after a change of torch's thread count.
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
    for int8 in (False, True):
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
    print("\n| case (8 x 128) | time | steady state, normal load | speed vs steady |\n|---|---:|---:|---:|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
