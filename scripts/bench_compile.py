"""CPU graph capture (torch.compile) against the inference engine, interleaved in one process.

    python scripts/bench_compile.py [--shapes 1x16,8x128] [--rounds 9] [--threads 1] [--json compile.json]

Issue 22 asked whether a CPU graph capture would make batch-1 calls faster than the engine's
eager fused path (minialbert/fast/). This times, on scripts/bench.py's random-weight
albert-base-v2-sized checkpoint:
  * the engine, fp32 and int8 (what the Embedder runs);
  * model.py compiled by inductor with freezing (constant weights folded and pre-packed for
    oneDNN: inductor's inference recipe on CPU), fp32;
  * the engine's fused int8 forward compiled by inductor (its FBGEMM / oneDNN calls stay extern
    kernels; inductor may fuse what lies between them: GELU, LayerNorm, the attention reshapes).
Every side's last hidden state is compared with model.py's eager forward (max |delta|: int8
sides differ by their quantization error) before it is timed; compile times are reported. With --threads 1 calls are timed by the calling
thread's CPU time. Reported: median ms per call, min-max, and the median of the per-round ratios
engine / compiled (>1: the engine is faster). Prints the CPU model and flags first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))


def _call(fn, ids, mask, positional: bool = False):
    """A no-argument side: fn on these inputs, its last hidden state."""
    if positional:
        return lambda: fn(ids, mask).last_hidden_state
    return lambda: fn(ids, attention_mask=mask).last_hidden_state


def _repeated(fn, n: int):
    return lambda: [fn() for _ in range(n)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    ap.add_argument("--shapes", default="1x16,8x128", help="comma list of batch x seq (default 1x16,8x128)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--work-dir", default=None, help="where bench.py's random checkpoint is cached")
    ap.add_argument("--max-autotune", action="store_true",
                    help="compile with mode='max-autotune' (inductor also tries its own C++ GEMM templates "
                         "against the library kernels at each shape; minutes of compiling)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    try:
        shapes = [tuple(int(v) for v in s.lower().split("x")) for s in args.shapes.split(",")]
    except ValueError:
        ap.error(f"--shapes: expected e.g. 1x16,8x128, got {args.shapes!r}")

    import tempfile

    import torch
    import torch._inductor.config as inductor

    import bench
    import bench_report
    from minialbert import AlbertModel
    from minialbert.fast import InferenceEngine, forward
    from minialbert.fast.ops import _Int8Ops, _PackCache

    torch.set_num_threads(args.threads)
    if args.threads == 1:
        bench.CLOCK = time.thread_time
    info = bench.machine()
    print(f"scripts/bench_compile.py on {info['cpu']} ({info['cpu_flags']}), {args.threads} thread(s), "
          f"torch {info['torch']}", flush=True)
    work = Path(args.work_dir or Path(tempfile.gettempdir()) / "minialbert-bench")
    model = AlbertModel.from_pretrained(bench.build_checkpoint(work / "albert-base-v2-random")).eval()
    fp32, int8 = InferenceEngine(model), InferenceEngine(model, int8=True)
    int8_ops = _Int8Ops(_PackCache(), int8.plan())

    # model.py compiles with freezing (weights are constants, folded and pre-packed: inductor's
    # inference recipe); the int8 forward without it (its packed weights are opaque objects, which
    # freezing's quantization passes do not accept). Each compiles at its first call per shape.
    freezing = {"fp32": True, "int8": False}
    mode = "max-autotune" if args.max_autotune else None
    compiled_model = torch.compile(model, dynamic=False, mode=mode)
    compiled_int8 = torch.compile(
        lambda ids, mask: forward.fused_forward(model, ids, mask, None, None, int8_ops, skip_padding=True),
        dynamic=False, mode=mode)
    pairs = {"fp32": ("engine fp32", "model.py, inductor + freezing"),
             "int8": ("engine int8", "engine int8 forward, inductor")}
    results = {"machine": info, "threads": args.threads, "rounds": args.rounds,
               "command": "python scripts/bench_compile.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "shapes": {}}
    for batch, seq in shapes:
        g = torch.Generator().manual_seed(batch * 1000 + seq)
        ids = torch.randint(5, 30000, (batch, seq), generator=g)
        mask = torch.ones_like(ids)
        sides = {"engine fp32": _call(fp32, ids, mask), "engine int8": _call(int8, ids, mask),
                 "model.py, inductor + freezing": _call(compiled_model, ids, mask),
                 "engine int8 forward, inductor": _call(compiled_int8, ids, mask, positional=True)}
        row = {"compile_s": {}, "max_abs_delta": {}, "failed": {}}
        with torch.inference_mode():
            exact = model(ids, attention_mask=mask).last_hidden_state
            for kind, (engine, compiled) in pairs.items():
                row["max_abs_delta"][engine] = (sides[engine]() - exact).abs().max().item()
                t = time.perf_counter()
                try:
                    with inductor.patch(freezing=freezing[kind]):
                        out = sides[compiled]()  # compiles for this shape
                except Exception as e:  # an inductor limitation at this shape: reported, not timed
                    row["failed"][compiled] = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
                    print(f"  {compiled}: compile failed ({row['failed'][compiled][:160]})", flush=True)
                    del sides[compiled]
                    continue
                row["compile_s"][compiled] = time.perf_counter() - t
                row["max_abs_delta"][compiled] = (out - exact).abs().max().item()
            repeat = max(1, 1024 // (batch * seq))
            timed = {name: _repeated(f, repeat) for name, f in sides.items()}
            stats = bench.interleave(timed, args.rounds, batch * seq * repeat)
        row["sides"] = stats
        print(f"{batch}x{seq}:", flush=True)
        for name, s in stats.items():
            ms = [1000 * t / repeat for t in s["seconds"]]
            print(f"  {name:32s} {statistics.median(ms):8.2f} ms per call ({min(ms):.2f}-{max(ms):.2f})"
                  + f"   max |delta| vs model.py {row['max_abs_delta'][name]:.1e}"
                  + (f", compiled in {row['compile_s'][name]:.0f} s" if name in row["compile_s"] else ""), flush=True)
        row["engine_over_compiled"] = {}
        for kind, (engine, compiled) in pairs.items():
            if compiled not in stats:
                continue
            r, rounds = bench_report.ratio({"model": {"shape": stats}}, "shape", engine, compiled)
            row["engine_over_compiled"][kind] = r
            print(f"  {kind}: the engine is {r:.2f}x the compiled side's speed (median of per-round ratios; {rounds})")
        results["shapes"][f"{batch}x{seq}"] = row
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
