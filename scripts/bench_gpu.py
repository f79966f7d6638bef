"""minialbert against transformers on one CUDA GPU, side by side in one process.

    python scripts/bench_gpu.py --json bench-gpu.json

An albert-base-v2-sized model with random weights (scripts/bench.py's checkpoint, in Hugging Face
layout, so both sides load the same file) runs at each batch x seq shape, in float32, bfloat16 and float16:
transformers' AlbertModel (its default attention, SDPA), minialbert's model.py, and minialbert's
inference engine. Every round times every side once, interleaved, after a warm-up; the table gives
the median tokens/s over the rounds, the ratio to transformers in the same dtype, and max |delta|
of the last hidden state (real tokens only) against transformers float32 on the same inputs.
One row in four is padded to half its length, as a batch of real texts is. Needs a CUDA GPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))  # bench.py: the same random checkpoint as the CPU benchmark

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def inputs(batch: int, seq: int):
    g = torch.Generator().manual_seed(batch * 1000 + seq)
    ids = torch.randint(5, 30000, (batch, seq), generator=g)
    mask = torch.ones_like(ids)
    mask[::4, seq // 2:] = 0
    return ids.cuda(), mask.cuda()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    p.add_argument("--shapes", default="1x16,32x128,256x128,64x512", help="comma list of batch x seq")
    p.add_argument("--dtypes", default="fp32,bf16,fp16")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=0.4, help="time each side runs per round")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_gpu.py: no CUDA GPU here; run it on a machine with one", file=sys.stderr)
        return 2
    import transformers

    import bench
    from minialbert import AlbertModel
    from minialbert.cpuinfo import cpu_name
    from minialbert.fast import InferenceEngine

    torch.backends.cuda.matmul.allow_tf32 = False  # float32 means float32 on both sides
    machine = {"gpu": torch.cuda.get_device_name(), "cpu": cpu_name(), "torch": torch.__version__,
               "transformers": transformers.__version__}
    print(f"bench_gpu.py on {machine['gpu']} (host CPU {machine['cpu']}), torch {machine['torch']}, "
          f"transformers {machine['transformers']}")
    results: dict = {"machine": machine, "command": "python scripts/bench_gpu.py " + " ".join(argv or sys.argv[1:]),
                     "shapes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = bench.build_checkpoint(Path(tmp) / "albert-base-v2-random")
        sides = {}
        for name in args.dtypes.split(","):
            dtype = DTYPES[name]
            ref = transformers.AlbertModel.from_pretrained(tmp, dtype=dtype).cuda().eval()
            ours = AlbertModel.from_pretrained(tmp, dtype=dtype, device="cuda").eval()
            sides[f"transformers {name}"] = lambda i, m, r=ref: r(input_ids=i, attention_mask=m).last_hidden_state
            sides[f"minialbert {name}"] = lambda i, m, o=ours: o(i, attention_mask=m).last_hidden_state
            engine = InferenceEngine(ours)
            sides[f"minialbert engine {name}"] = lambda i, m, e=engine: e(i, attention_mask=m).last_hidden_state
        for shape in args.shapes.split(","):
            batch, seq = map(int, shape.split("x"))
            ids, mask = inputs(batch, seq)
            keep = mask.bool()
            rates: dict[str, list[float]] = {k: [] for k in sides}
            deltas = {}
            with torch.inference_mode():
                want = sides["transformers fp32"](ids, mask).float() if "transformers fp32" in sides else None
                for name, run in sides.items():
                    got = run(ids, mask).float()  # warm-up, and the accuracy of this side
                    if want is not None:
                        deltas[name] = (got[keep] - want[keep]).abs().max().item()
                for _ in range(args.rounds):
                    for name, run in sides.items():
                        torch.cuda.synchronize()
                        n, start = 0, time.perf_counter()
                        while time.perf_counter() - start < args.seconds:
                            run(ids, mask)
                            n += 1
                            if n % 4 == 0:
                                torch.cuda.synchronize()
                        torch.cuda.synchronize()
                        rates[name].append(n * int(keep.sum()) / (time.perf_counter() - start))
            print(f"  {shape}   (tokens/s, median of {args.rounds}; ratio to transformers in the same dtype; "
                  "max |delta| to transformers fp32)")
            row = {}
            for name, r in rates.items():
                med = statistics.median(r)
                ref_name = "transformers " + name.split()[-1]
                ratio = med / statistics.median(rates[ref_name])
                row[name] = {"tokens_per_s": med, "ratio": ratio, "max_abs_delta": deltas.get(name)}
                d = deltas.get(name)
                print(f"    {name:26s} {med:14,.0f}   {ratio:5.2f}x   {'' if d is None else f'{d:.2e}'}")
            results["shapes"][shape] = row
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
