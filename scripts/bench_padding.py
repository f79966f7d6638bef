"""Padding skipped or computed: the inference engine on batches of texts of different lengths.

    python scripts/bench_padding.py [--threads 1] [--rounds 5] [--json padding.json]

The engine runs a right-padded batch's GEMMs on the real tokens alone (minialbert/fast/forward.py,
_Packing). This measures what that saves, against the same engine made to run the padded batch
(fast.forward.PACK_PADDING = False: the path it took before), interleaved in one process, on the
random-weight albert-base-v2-sized checkpoint of scripts/bench.py, fp32 and int8. Batches of 32
texts with bench.py's lognormal corpus lengths (median ~39 tokens), truncated at 128:
  * arrival order: the texts as they come, padded to the longest (a server's batch, a user's list);
  * length-sorted: 32 neighbours in length order (what Embedder.embed forms): little padding.
Reported: real tokens/s (median of rounds, min-max), the share of padding, and the ratio of
skipping to computing it. Prints the CPU model and flags first.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))


def batches(n_batches: int, size: int = 32, seed: int = 0):
    """(name, input_ids, attention_mask) for each kind of batch: lengths from bench.py's corpus."""
    import torch

    rng = random.Random(seed)
    lengths = [min(128, max(4, int(rng.lognormvariate(2.5, 0.8) * 3.2))) for _ in range(size * n_batches * 4)]

    def make(ls):
        seq = max(ls)
        ids = torch.zeros(len(ls), seq, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, n in enumerate(ls):
            ids[i, :n] = torch.randint(5, 1000, (n,))
            mask[i, :n] = 1
        return ids, mask

    arrival = [make(lengths[i * size:(i + 1) * size]) for i in range(n_batches)]
    ordered = sorted(lengths)
    step = len(ordered) // n_batches
    sorted_ = [make(ordered[i * step:i * step + size]) for i in range(n_batches)]
    return {"arrival order": arrival, "length-sorted": sorted_}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batches", type=int, default=4, help="batches of 32 texts per kind (default 4)")
    ap.add_argument("--work-dir", default=None, help="where bench.py's random checkpoint is cached")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import tempfile

    import torch

    import bench
    from minialbert import AlbertModel, fast
    from minialbert.fast import InferenceEngine

    torch.set_num_threads(args.threads)
    info = bench.machine()
    print(f"scripts/bench_padding.py on {info['cpu']} ({info['cpu_flags']}), {args.threads} thread(s), "
          f"torch {info['torch']}", flush=True)
    work = Path(args.work_dir or Path(tempfile.gettempdir()) / "minialbert-bench")
    model = AlbertModel.from_pretrained(bench.build_checkpoint(work / "albert-base-v2-random")).eval()
    engines = {"fp32": InferenceEngine(model), "int8": InferenceEngine(model, int8=True)}
    results = {"machine": info, "threads": args.threads, "command": "python scripts/bench_padding.py "
               + " ".join(argv if argv is not None else sys.argv[1:]), "rows": []}
    for kind, group in batches(args.batches).items():
        real = sum(int(m.sum()) for _, m in group)
        padded = sum(m.numel() for _, m in group)
        for dtype, engine in engines.items():
            def run(pack, engine=engine, group=group):
                def go():
                    fast.forward.PACK_PADDING = pack
                    try:
                        with torch.inference_mode():
                            for ids, mask in group:
                                engine(ids, attention_mask=mask)
                    finally:
                        fast.forward.PACK_PADDING = True
                return go

            stats = bench.interleave({"skipped": run(True), "computed": run(False)}, args.rounds, real)
            ratio = stats["skipped"]["median"] / stats["computed"]["median"]
            row = {"batches": kind, "dtype": dtype, "real_tokens": real, "padding_share": 1 - real / padded,
                   "skipped": stats["skipped"], "computed": stats["computed"], "ratio": ratio}
            results["rows"].append(row)
            print(f"  {kind:14s} {dtype}  padding {100 * (1 - real / padded):4.1f}%   "
                  f"skipped {stats['skipped']['median']:8.1f} tok/s ({stats['skipped']['min']:.0f}-"
                  f"{stats['skipped']['max']:.0f})   computed {stats['computed']['median']:8.1f} tok/s "
                  f"({stats['computed']['min']:.0f}-{stats['computed']['max']:.0f})   {ratio:.2f}x", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
