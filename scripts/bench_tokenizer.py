"""Texts per second: minialbert.AlbertTokenizer vs transformers.AlbertTokenizer (Rust tokenizers).

    python scripts/bench_tokenizer.py [--model DIR_OR_REPO] [--n 10000] [--repeat 5] [--clock wall|cpu]

10,000 mixed-length texts (3 to 400 words; English prose, accented Latin, Greek, Cyrillic,
CJK, Korean, numbers with commas, [MASK] and punctuation), encoded one at a time and as one
batch (no padding, truncation to 512), plus the batch with offsets. Both sides run in one
process, interleaved round by round; medians and per-round ratios, with the CPU and load average.
Prints a Markdown table. Needs transformers (for the comparison only).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from minialbert.cpuinfo import cpu_name, flag_summary  # noqa: E402
from minialbert.tokenizer import AlbertTokenizer  # noqa: E402

WORDS = (
    "the of and to in is was that for it with as on be at by from or have an they which one you "
    "were her all she there would their we him been has when who will more no if out so said what "
    "tokenizer albert language model embedding transformer attention layer hidden vector Hello World "
    "Über straße Mädchen Größe schön café naïve résumé İstanbul ışık çiçek Αθήνα ελληνικά ΟΔΟΣ "
    "Москва русский язык 東京 日本語 中文 こんにちは 한국어 서울 العربية ﬁnance 1,000 3.14 10, "
    "(note) - \"quoted\" ``x'' [MASK] e.g. U.S.A. £5 €10 😀"
).split()


def make_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        k = int(rng.choice([3, 8, 15, 30, 60, 120, 250, 400]) * rng.uniform(0.5, 1.0)) + 1
        texts.append(" ".join(rng.choice(WORDS) for _ in range(k)))
    return texts


def clocks() -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads)."""
    return time.perf_counter(), time.process_time()


def cpu_description() -> str:
    """The CPU model, the flags that matter here, and the load average."""
    model, (wanted, _) = cpu_name(), flag_summary(("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile"))
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return f"{model}; flags {' '.join(wanted) or 'none of avx2/avx512'}; {os.cpu_count()} CPUs; load average {load}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    ap.add_argument("--model", default=str(ROOT / "tests" / "fixtures" / "tokenizer" / "hub"))
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5, help="rounds; each runs both sides, interleaved")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall time, or the CPU time of the process (all threads; steadier on a busy machine)")
    args = ap.parse_args()

    texts = make_texts(args.n)
    me = AlbertTokenizer.from_pretrained(args.model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import transformers

        hf = transformers.AlbertTokenizer.from_pretrained(args.model)

    ref = hf(texts, truncation=True, max_length=512)["input_ids"]
    got = me(texts, truncation=True, max_length=512)["input_ids"]
    mismatches = sum(a != b for a, b in zip(ref, got))
    n_tokens = sum(len(x) for x in got)

    cases = [
        ("single (one call per text)", lambda t: [t(x, truncation=True, max_length=512) for x in texts]),
        (f"batch (one call, {args.n:,} texts)", lambda t: t(texts, truncation=True, max_length=512)),
        ("batch + offsets", lambda t: t(texts, truncation=True, max_length=512, return_offsets_mapping=True)),
    ]
    k = 0 if args.clock == "wall" else 1
    rows = []
    for name, fn in cases:
        times: dict[str, list[float]] = {"hf": [], "me": []}
        for r in range(args.repeat):  # interleaved, the side that goes first alternating
            for side in (("hf", "me") if r % 2 == 0 else ("me", "hf")):
                tok = hf if side == "hf" else me
                start = clocks()
                fn(tok)
                times[side].append(clocks()[k] - start[k])
        t_hf, t_me = statistics.median(times["hf"]), statistics.median(times["me"])
        ratios = [b / a for a, b in zip(times["hf"], times["me"])]
        rows.append((name, args.n / t_hf, args.n / t_me, t_me / t_hf, min(ratios), max(ratios)))
    ids_times = []
    for _ in range(args.repeat):
        start = clocks()
        me.encode_batch_ids(texts)
        ids_times.append(clocks()[k] - start[k])
    t_ids = statistics.median(ids_times)

    print(f"{args.n} texts, {n_tokens} tokens (mean {n_tokens / args.n:.0f}), model {Path(args.model).name}, "
          f"transformers {transformers.__version__}, id mismatches vs transformers: {mismatches}")
    print(f"{cpu_description()}; clock {args.clock}; medians of {args.repeat} interleaved rounds")
    print()
    print("| case | transformers texts/s | minialbert texts/s | minialbert time / transformers time (range over rounds) |")
    print("|---|---:|---:|---:|")
    for name, a, b, r, lo, hi in rows:
        print(f"| {name} | {a:,.0f} | {b:,.0f} | {r:.2f}x ({lo:.2f}-{hi:.2f}) |")
    print(f"| ids only, `encode_batch_ids` (no special tokens) | | {args.n / t_ids:,.0f} | |")


if __name__ == "__main__":
    main()
