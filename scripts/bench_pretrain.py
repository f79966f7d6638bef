"""Pre-training benchmarks (issue 19): data preparation and the training step.

    python scripts/bench_pretrain.py prep --sizes-mb 10 100       # peak RSS, MB/s (1 and 2 workers), datasets.map peer
    python scripts/bench_pretrain.py step --batches 8 32 --reps 3  # albert-base step vs transformers' AlbertForPreTraining
    python scripts/bench_pretrain.py equal                          # prepared-shards run vs the pre-issue in-memory run
    python scripts/bench_pretrain.py prep-ab --size-mb 10           # preparation MB/s: this tree vs an older commit

`prep` generates a synthetic corpus (pretrain.toy's documents, repeated with varied words) of
each size, prepares it with `minialbert pretrain-data` in a subprocess and reports that
process's peak RSS (its own and its workers': ru_maxrss), and MB/s; the peer is `datasets`
(`load_dataset("text")` + `map` with transformers' AlbertTokenizerFast, batched, num_proc 1
and 2) on the same file, the [bench-pretrain] extra.

`step` builds one random albert-base-v2-config model, saves it, loads it into transformers'
AlbertForPreTraining and minialbert's, and times one optimizer step (AdamW, the same batch:
ids, 15% masked labels, SOP labels) for each side, interleaved, reporting medians of the
process CPU time (`--clock cpu`, default: robust to other processes on a shared machine) or
wall time. minialbert runs what `minialbert pretrain` runs (PretrainingObjective: the MLM head
on the masked positions only, as google-research/albert does); transformers runs its
documented `model(**batch, labels=..., sentence_order_label=...)`. Variants: eager fp32, bf16
autocast, torch.compile (inductor), compile + bf16; transformers fp32 and bf16. Compile time
is the first compiled step minus an eager step.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def machine() -> dict:
    flags = []
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("", "x86_64"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                break
    except OSError:
        pass
    keep = [f for f in flags if f.startswith(("avx512", "amx", "avx2", "fma"))]
    return {"cpu": model, "flags": " ".join(sorted(keep)), "cores": os.cpu_count(), "load": os.getloadavg()}


# ------------------------------------------------------------------------------- prep
def make_corpus(path: Path, mb: float) -> Path:
    """Blank-line-separated documents up to `mb` MB: pretrain.toy's generator, many seeds."""
    from minialbert.pretrain.toy import write_corpus

    target = int(mb * 1e6)
    with tempfile.TemporaryDirectory() as tmp:
        block = write_corpus(Path(tmp) / "block.txt", documents=2000, seed=0).read_text(encoding="utf-8")
    words = block.split()
    with open(path, "w", encoding="utf-8") as f:
        written, k = 0, 0
        while written < target:  # vary each copy so the text is not one repeated block
            rot = k % len(words)
            text = block if k == 0 else block.replace(words[rot % 50], words[(rot * 7) % len(words)])
            f.write(text + "\n\n")
            written += len(text.encode()) + 2
            k += 1
    return path


_MEASURE = r"""
import json, resource, sys, threading, time
sys.path.insert(0, {repo!r})

def status():
    return {{k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in open("/proc/self/status"))
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile")}}

peaks = {{"RssAnon": 0, "RssFile": 0}}
def sample():  # the split of RSS into anonymous memory and file-backed (mapped) pages, every 20 ms
    while True:
        s = status()
        for k in peaks:
            peaks[k] = max(peaks[k], s.get(k, 0))
        time.sleep(0.02)
threading.Thread(target=sample, daemon=True).start()
t = time.perf_counter()
{body}
dt = time.perf_counter() - t
# VmHWM: this process's own peak since exec. (ru_maxrss of RUSAGE_SELF is not: Linux carries the
# high-water mark across fork + exec, so it would include the benchmark's own memory at spawn time.)
hwm = status()["VmHWM"]
rss = max(hwm, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({{"seconds": dt, "peak_rss_mb": rss / 1024, "peak_anon_mb": peaks["RssAnon"] / 1024,
                  "peak_file_mb": peaks["RssFile"] / 1024}}))
"""


def _measure(body: str) -> dict:
    code = _MEASURE.format(repo=str(REPO), body=body)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false"))
    if p.returncode:
        raise SystemExit(p.stderr[-3000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def bench_prep(args) -> dict:
    """With --work DIR the corpora, the vocabulary and each preparation (with its measured row)
    are kept there and reused by the next run (--remeasure-prep times the preparations again);
    the training rows are always measured afresh (pair index included)."""
    import shutil

    from minialbert.pretrain.prepare import MANIFEST

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench_prep_"))
    work.mkdir(parents=True, exist_ok=True)
    # one vocabulary for every run (trained once on the smallest corpus): the runs time tokenizing
    vocab = work / "spiece.model"
    if not vocab.is_file():
        small = make_corpus(work / "small.txt", min(5.0, *args.sizes_mb))  # bounded: this process stays small
        from minialbert.pretrain.data import read_documents, train_sentencepiece

        train_sentencepiece(read_documents([small]), vocab, 8000)
    vocab = str(vocab)
    rows = []
    for mb in args.sizes_mb:
        corpus, done = work / f"c{mb:g}.txt", work / f"c{mb:g}.done"
        if not done.is_file():  # made whole, then marked: a killed run makes it again
            make_corpus(corpus, mb)
            done.touch()
        size = corpus.stat().st_size / 1e6
        for workers in args.workers:
            out, cached = work / f"d{mb:g}_{workers}", work / f"prep-{mb:g}-{workers}.json"
            complete = (out / MANIFEST).is_file() and json.loads((out / MANIFEST).read_text())["complete"]
            if cached.is_file() and complete and not args.remeasure_prep:
                rows.append({**json.loads(cached.read_text()), "cached": True})
                print(rows[-1], flush=True)
                continue
            shutil.rmtree(out, ignore_errors=True)
            body = (f"from minialbert.pretrain.prepare import prepare\n"
                    f"prepare([{str(corpus)!r}], {str(out)!r}, vocab={vocab!r}, workers={workers}, "
                    f"shard_tokens=5_000_000)")
            r = _measure(body)
            rows.append({"side": "minialbert pretrain-data", "size_mb": round(size, 1), "workers": workers,
                         "seconds": round(r["seconds"], 2), "mb_per_s": round(size / r["seconds"], 2),
                         "peak_rss_mb": round(r["peak_rss_mb"], 1)})
            cached.write_text(json.dumps(rows[-1]) + "\n")
            print(rows[-1], flush=True)
        if args.no_train:
            continue
        # a short training run on the prepared data: its peak RSS should not grow with the corpus
        shutil.rmtree(work / f"t{mb:g}", ignore_errors=True)  # the pair index too: its build is part of the run
        body = (f"from minialbert.pretrain.train import main\n"
                f"main(['--data', {str(work / f'd{mb:g}_{args.workers[0]}')!r}, '--output-dir', {str(work / f't{mb:g}')!r}, "
                f"'--hidden-size', '64', '--num-layers', '2', '--num-heads', '2', '--intermediate-size', '128', "
                f"'--embedding-size', '32', '--max-seq-length', '128', '--batch-size', '8', '--max-steps', '5', "
                f"'--threads', '1', '--device', 'cpu', '--quiet'])")
        r = _measure(body)
        rows.append({"side": "minialbert pretrain --data (5 steps, tiny model)", "size_mb": round(size, 1),
                     "workers": 1, "seconds": round(r["seconds"], 2), "mb_per_s": None,
                     "peak_rss_mb": round(r["peak_rss_mb"], 1), "peak_anon_mb": round(r["peak_anon_mb"], 1),
                     "peak_file_mb": round(r["peak_file_mb"], 1)})
        print(rows[-1], flush=True)
        if args.peer and mb == min(args.sizes_mb):
            tok_dir = work / "hf_tok"
            if not tok_dir.exists():
                from minialbert.tokenizer import AlbertTokenizer

                AlbertTokenizer(vocab).save_pretrained(tok_dir)
            for workers in args.workers:
                body = (f"import datasets, transformers\n"
                        f"datasets.disable_progress_bars()\n"
                        f"tok = transformers.AlbertTokenizerFast.from_pretrained({str(tok_dir)!r})\n"
                        f"ds = datasets.load_dataset('text', data_files={str(corpus)!r}, split='train', "
                        f"cache_dir={str(work / 'hf_cache')!r})\n"
                        f"ds = ds.filter(lambda b: [bool(t.strip()) for t in b['text']], batched=True)\n"
                        f"ds.map(lambda b: tok(b['text'], add_special_tokens=False), batched=True, "
                        f"num_proc={workers if workers > 1 else None}, remove_columns=['text'])")
                r = _measure(body)
                rows.append({"side": "datasets.map + AlbertTokenizerFast", "size_mb": round(size, 1),
                             "workers": workers, "seconds": round(r["seconds"], 2),
                             "mb_per_s": round(size / r["seconds"], 2), "peak_rss_mb": round(r["peak_rss_mb"], 1)})
                print(rows[-1], flush=True)
                shutil.rmtree(work / "hf_cache", ignore_errors=True)
    return {"machine": machine(), "rows": rows}


def bench_prep_ab(args) -> dict:
    """Preparation throughput of this tree against --old-rev's (extracted with `git archive`), on
    one generated corpus, one vocabulary, --workers; the two sides alternate --reps times, and
    every run's output is checked to be the same shards (checksums). Reports wall time and CPU
    time (the preparing process and its workers, which a busy shared machine disturbs less)."""
    import shutil

    work = Path(tempfile.mkdtemp(prefix="bench_prep_ab_"))
    old = work / "old"
    old.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", args.old_rev, "minialbert"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
    corpus = make_corpus(work / "corpus.txt", args.size_mb)
    size = corpus.stat().st_size / 1e6
    from minialbert.pretrain.data import read_documents, train_sentencepiece

    train_sentencepiece(read_documents([make_corpus(work / "small.txt", min(2.0, args.size_mb))]),
                        work / "spiece.model", 8000)
    times: dict[str, list[float]] = {"old": [], "new": []}
    cpu: dict[str, list[float]] = {"old": [], "new": []}
    checksums = set()
    for _ in range(args.reps):
        for name, root in (("old", old), ("new", REPO)):
            out = work / f"d_{name}"
            shutil.rmtree(out, ignore_errors=True)
            code = (f"import resource, sys, time; sys.path.insert(0, {str(root)!r})\n"
                    f"from minialbert.pretrain.prepare import prepare\n"
                    f"t = time.perf_counter()\n"
                    f"prepare([{str(corpus)!r}], {str(out)!r}, vocab={str(work / 'spiece.model')!r}, "
                    f"workers={args.workers}, shard_tokens=5_000_000)\n"
                    f"r = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]\n"
                    f"print(time.perf_counter() - t, sum(x.ru_utime + x.ru_stime for x in r))")
            p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                               env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(root)))
            wall, used = map(float, p.stdout.strip().splitlines()[-1].split())
            times[name].append(wall)
            cpu[name].append(used)
            checksums.add(json.dumps(json.loads((out / "manifest.json").read_text())["shards"], sort_keys=True))
            print(name, round(wall, 2), "s wall", round(used, 2), "s CPU", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    return {"machine": machine(), "old_rev": args.old_rev, "size_mb": round(size, 1), "workers": args.workers,
            "seconds": times, "cpu_seconds": cpu, "mb_per_s": {k: round(size / v, 2) for k, v in med.items()},
            "mb_per_cpu_s": {k: round(size / v, 2) for k, v in med_cpu.items()},
            "speedup_wall": round(med["old"] / med["new"], 2), "speedup_cpu": round(med_cpu["old"] / med_cpu["new"], 2),
            "same_shards": len(checksums) == 1}


# ------------------------------------------------------------------------------- step
def bench_step(args) -> dict:
    import torch
    import transformers

    from minialbert.config import AlbertConfig
    from minialbert.model import AlbertForPreTraining
    from minialbert.pretrain.objectives import PretrainingObjective

    torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    work = Path(tempfile.mkdtemp(prefix="bench_step_"))
    config = AlbertConfig.from_preset("albert-base-v2")
    torch.manual_seed(0)
    ours0 = AlbertForPreTraining(config)
    ours0.save_pretrained(work)
    results = {"machine": machine(), "threads": args.threads, "clock": args.clock, "rows": []}

    for batch_size in args.batches:
        g = torch.Generator().manual_seed(batch_size)
        ids = torch.randint(5, config.vocab_size, (batch_size, args.seq), generator=g)
        labels = torch.full_like(ids, -100)
        pick = torch.rand(ids.shape, generator=g) < 0.15
        pick[:, 0] = False
        labels[pick] = ids[pick]
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
        sop = torch.randint(0, 2, (batch_size,), generator=g)

        sides = {}

        def add_ours(name, compiled, bf16):
            model = AlbertForPreTraining.from_pretrained(work).train()
            objective = PretrainingObjective(model)
            run = torch.compile(objective) if compiled else objective
            opt = torch.optim.AdamW(model.parameters(), lr=1e-5)

            def step():
                opt.zero_grad(set_to_none=True)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    loss = run(**batch, labels=labels, sentence_order_label=sop)[0]
                loss.backward()
                opt.step()
                return loss.item()
            sides[name] = step

        def add_theirs(name, bf16):
            model = transformers.AlbertForPreTraining.from_pretrained(work).train()
            opt = torch.optim.AdamW(model.parameters(), lr=1e-5)

            def step():
                opt.zero_grad(set_to_none=True)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    loss = model(**batch, labels=labels, sentence_order_label=sop).loss
                loss.backward()
                opt.step()
                return loss.item()
            sides[name] = step

        add_theirs("transformers fp32", False)
        add_ours("minialbert eager fp32", False, False)
        if "bf16" in args.variants:
            add_theirs("transformers bf16", True)
            add_ours("minialbert eager bf16", False, True)
        if "compile" in args.variants:
            add_ours("minialbert compile fp32", True, False)
        if "compile-bf16" in args.variants:
            add_ours("minialbert compile bf16", True, True)

        first, times, losses = {}, {k: [] for k in sides}, {}
        for name, step in sides.items():  # warm-up (and compilation), timed
            t = time.perf_counter()
            losses[name] = step()
            first[name] = time.perf_counter() - t
            print(f"{batch_size}x{args.seq} {name}: first step {first[name]:.1f} s, loss {losses[name]:.4f}",
                  flush=True)
        for _ in range(args.reps):  # interleaved
            for name, step in sides.items():
                t = clock()
                step()
                times[name].append(clock() - t)
        ref = statistics.median(times["transformers fp32"])
        ref_bf16 = statistics.median(times["transformers bf16"]) if "transformers bf16" in times else None
        eager = first["minialbert eager fp32"]
        for name in sides:
            med = statistics.median(times[name])
            row = {"batch": f"{batch_size}x{args.seq}", "side": name, "median_s": round(med, 3),
                   "tokens_per_s": round(batch_size * args.seq / med, 1),
                   "vs_transformers_fp32": round(ref / med, 2),
                   "vs_transformers_bf16": round(ref_bf16 / med, 2) if ref_bf16 else None,
                   "first_loss": round(losses[name], 5)}
            if "compile" in name:
                row["compile_s"] = round(first[name] - eager, 1)
            results["rows"].append(row)
            print(row, flush=True)
    return results


# ------------------------------------------------------------------------------ equal
_STATS = r"""
import json, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, {root!r})
from minialbert.pretrain.data import PretrainingData, Vocab
out, corpus = Path({out!r}), {corpus!r}
kw = dict(max_seq_length=64, seed=12345)
if (out / "data").is_dir():  # this tree: the prepared shards and their pair index
    from minialbert.pretrain.prepare import PreparedData, open_pairs
    vocab = Vocab.load(out / "data" / "spiece.model")
    data = PretrainingData(open_pairs(PreparedData(out / "data"), out / "cache", 64, 0.1, 12345, build=True), vocab, **kw)
else:  # the pre-issue tree: in-memory lists
    vocab = Vocab.load(out / "spiece.model")
    data = PretrainingData.from_corpus([corpus], vocab, **kw)
lengths, masked, maskable, swapped = [], 0, 0, 0
for i in range(len(data)):
    e = data.example(i, 0)
    lengths.append(len(e["input_ids"]))
    masked += int((e["labels"] != -100).sum())
    maskable += len(e["input_ids"]) - 3
    swapped += int(e["sentence_order_label"])
print(json.dumps({{"examples": len(data), "mean_tokens": float(np.mean(lengths)), "masked_share": masked / maskable,
                  "masked_per_example": masked / len(data), "sop_swapped_share": swapped / len(data)}}))
"""


def bench_equal(args) -> dict:
    """The same small corpus and seed through (a) this tree's `pretrain --corpus` (prepared
    shards) and (b) the pre-issue tree (in-memory lists, explicit-softmax attention), extracted
    with `git archive` from --old-rev; compares the logged losses step by step, whether the
    steps used the same examples, and the data statistics over all examples of epoch 0
    (examples, tokens per example, masked share, SOP swaps)."""
    work = Path(tempfile.mkdtemp(prefix="bench_equal_"))
    old = work / "old"
    old.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", args.old_rev, "minialbert", "scripts/pretrain.py"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
    from minialbert.pretrain.toy import write_corpus

    corpus = write_corpus(work / "corpus.txt", documents=400, seed=0)
    flags = ["--corpus", str(corpus), "--hidden-size", "64", "--num-layers", "2", "--num-heads", "2",
             "--intermediate-size", "128", "--embedding-size", "32", "--max-seq-length", "64", "--threads", "1",
             "--device", "cpu", "--quiet", "--vocab-size", "120", "--batch-size", "8", "--max-steps", str(args.steps),
             "--log-every", "1", "--optimizer", "adamw", "--lr", "1e-3", "--log-data"]
    logs, stats = {}, {}
    for name, root in (("old (in-memory)", old), ("new (prepared shards)", REPO)):
        out = work / name.split()[0]
        env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS="1")
        subprocess.run([sys.executable, str(root / "scripts" / "pretrain.py"), *flags, "--output-dir", str(out)],
                       env=env, check=True)
        logs[name] = ([json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()],
                      [json.loads(x) for x in (out / "data_rank0.jsonl").read_text().splitlines()])
        p = subprocess.run([sys.executable, "-c", _STATS.format(root=str(root), out=str(out), corpus=str(corpus))],
                           env=env, capture_output=True, text=True, check=True)
        stats[name] = json.loads(p.stdout.strip().splitlines()[-1])
        print(name, stats[name], flush=True)
    (a_log, a_data), (b_log, b_data) = logs.values()
    rows = []
    for ra, rb in zip((r for r in a_log if "mlm_loss" in r), (r for r in b_log if "mlm_loss" in r)):
        rows.append({"step": ra["step"], "old_mlm": ra["mlm_loss"], "new_mlm": rb["mlm_loss"],
                     "mlm_diff": abs(ra["mlm_loss"] - rb["mlm_loss"]), "old_sop": ra["sop_loss"],
                     "new_sop": rb["sop_loss"], "same_batch": None})
    same = [x["index"] == y["index"] for x, y in zip(a_data, b_data)]
    for row, s in zip(rows, same):
        row["same_batch"] = s
    mean = statistics.mean
    return {"machine": machine(), "old_rev": args.old_rev, "rows": rows, "stats": stats,
            "all_batches_identical": all(same) and len(a_data) == len(b_data),
            "steps_with_identical_batches": sum(same),
            "max_mlm_loss_diff": max(r["mlm_diff"] for r in rows),
            "mean_mlm_loss": {"old": mean(r["old_mlm"] for r in rows), "new": mean(r["new_mlm"] for r in rows)},
            "mean_sop_loss": {"old": mean(r["old_sop"] for r in rows), "new": mean(r["new_sop"] for r in rows)}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    sub = p.add_subparsers(dest="what", required=True)
    a = sub.add_parser("prep", allow_abbrev=False)
    a.add_argument("--sizes-mb", type=float, nargs="+", default=[10, 100])
    a.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    a.add_argument("--no-peer", dest="peer", action="store_false")
    a.add_argument("--work", help="keep corpora, vocabulary and preparations here and reuse them next time")
    a.add_argument("--remeasure-prep", action="store_true", help="with --work: time the preparations again")
    a.add_argument("--no-train", action="store_true", help="only the preparations")
    b = sub.add_parser("step", allow_abbrev=False)
    b.add_argument("--batches", type=int, nargs="+", default=[8, 32])
    b.add_argument("--seq", type=int, default=128)
    b.add_argument("--reps", type=int, default=3)
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    b.add_argument("--variants", nargs="+", default=["bf16", "compile", "compile-bf16"],
                   choices=["bf16", "compile", "compile-bf16"])
    ab = sub.add_parser("prep-ab", allow_abbrev=False)
    ab.add_argument("--old-rev", default="eef3e60", help="the tree to compare with (default: before the speed-ups)")
    ab.add_argument("--size-mb", type=float, default=10)
    ab.add_argument("--workers", type=int, default=2)
    ab.add_argument("--reps", type=int, default=3)
    c = sub.add_parser("equal", allow_abbrev=False)
    c.add_argument("--old-rev", default="f0d39b7", help="the commit before issue 19's changes")
    c.add_argument("--steps", type=int, default=20)
    for x in (a, ab, b, c):
        x.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    result = {"prep": bench_prep, "prep-ab": bench_prep_ab, "step": bench_step, "equal": bench_equal}[args.what](args)
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
