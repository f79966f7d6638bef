#!/usr/bin/env python
"""The compression trade-off table (issue 23): what each way of making ALBERT smaller or faster
costs in accuracy and buys in speed, on a generated task.

    nice -n 10 python scripts/compress.py --workdir /tmp/compress   # 10.7 min on 2 busy cores; a rerun: 2 min
    python scripts/compress.py --workdir /tmp/compress --json compress-results.json

1. Generates a task and fine-tunes a small ALBERT (6 layer calls, H=64, 4 heads, FFN 256) on it
   from random weights with `minialbert finetune`: the teacher. --task majority (default,
   toy.majority_rows): which of five word groups has the most words, the runner-up one word
   behind; a counting task with a graded score (chance 1/5; the teacher ends well above it and
   below 1), so that losing depth or attention capacity shows. --task groups: toy.py's
   one-word classification (every variant scores 1.000: it cannot rank them). --task lookup:
   the word after the marker (toy.lookup_rows; needs a previous-token attention learned through
   absolute position embeddings): from random weights it stays at chance in this budget.
2. Makes the variants, each with the library's own commands: fewer layer calls (from_pretrained
   num_layer_calls, then `minialbert distill --task` for the distilled one), heads pruned 25% / 50%
   and FFN neurons pruned 25% / 50% (`minialbert prune` on the training file, task loss), and the
   int8 engine on the best compressed variant.
3. For each: dev accuracy (with its 95% interval), parameters, 8x128 tokens/s and 1x16 latency
   through the inference engine (sides interleaved in one process, medians), and the checkpoint's
   file size.
4. Engine speed ratios at albert-base size (random weights; speed depends on shapes only):
   50%-FFN-pruned vs unpruned at 8x128, and 6 vs 12 layer calls, measured interleaved in one run.

Every checkpoint is kept in --workdir and reused by a rerun with the same settings (settings.json
says which; other settings are refused there), so a rerun only measures. Prints the CPU model, its
flags of interest and the load average, since absolute numbers mean nothing without them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import torch  # noqa: E402

from minialbert import AlbertModel, AlbertTokenizer, InferenceEngine  # noqa: E402
from minialbert.cli import main as cli  # noqa: E402
from minialbert.cpuinfo import cpu_name, flag_summary  # noqa: E402
from minialbert.finetune.toy import (write_base_checkpoint, write_classification, write_lookup,  # noqa: E402
                                     write_majority)
from minialbert.model import AlbertForSequenceClassification  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SPM = REPO / "tests" / "fixtures" / "tokenizer" / "spm" / "spiece.model"


def cpu_description() -> str:
    model, (wanted, _) = cpu_name(), flag_summary(("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile"))
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (f"{model}; flags: {', '.join(wanted) or 'none of avx2/avx512'}; torch threads {torch.get_num_threads()}; "
            f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


def run_cli(argv: list[str]) -> None:
    code = cli([str(a) for a in argv])
    if code != 0:
        raise SystemExit(f"minialbert {argv[0]} failed ({code})")


def read_dev(path: Path) -> tuple[list[str], list[str]]:
    import csv

    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def dev_accuracy(model, tokenizer, texts, labels, int8=False) -> float:
    engine = InferenceEngine(model, int8=int8)
    right = 0
    with torch.inference_mode():
        for i in range(0, len(texts), 64):
            enc = tokenizer(texts[i:i + 64], padding=True, return_tensors="pt")
            logits = engine(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]).logits
            predicted = [model.config.id2label[int(k)] for k in logits.argmax(-1)]
            right += sum(p == y for p, y in zip(predicted, labels[i:i + 64]))
    return right / len(texts)


def timed(engines: dict, shapes: dict, reps: int, vocab: int, clock=time.perf_counter) -> dict:
    """{name: {shape: median seconds}}, every engine and shape interleaved in each repetition.
    clock=time.thread_time (with one torch thread) counts this thread's CPU time only, which a
    busy machine disturbs far less than wall time."""
    g = torch.Generator().manual_seed(0)
    inputs = {s: torch.randint(5, vocab, s, generator=g) for s in shapes.values()}
    times = {n: {s: [] for s in shapes} for n in engines}
    with torch.inference_mode():
        for engine in engines.values():  # warm-up (packs, caches)
            for s in shapes.values():
                engine(inputs[s])
        for _ in range(reps):
            for name, engine in engines.items():
                for label, s in shapes.items():
                    t0 = clock()
                    engine(inputs[s])
                    times[name][label].append(clock() - t0)
    return {n: {label: statistics.median(v) for label, v in d.items()} for n, d in times.items()}


def file_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.glob("*.safetensors")) / 1e6


TASKS = {"majority": (write_majority, "majority-group", 5), "groups": (write_classification, "marker-word group", 3),
         "lookup": (write_lookup, "word-after-the-marker", 3)}  # writer, name, number of labels
BUILD_SETTINGS = ("task", "lr", "layer_calls", "student_calls", "epochs", "train_examples", "dev_examples",
                  "distill_steps", "distill_lr", "max_length", "seed")


def say(*parts) -> None:
    print("#", *parts, file=sys.stderr, flush=True)


def check_settings(work: Path, args) -> None:
    """The workdir's checkpoints are reused only by a run with the settings that built them."""
    wanted = {k: getattr(args, k) for k in BUILD_SETTINGS}
    stamp = work / "settings.json"
    if stamp.exists():
        have = json.loads(stamp.read_text())
        if have != wanted:
            diff = ", ".join(f"{k}: {have.get(k)} there, {v} now" for k, v in wanted.items() if have.get(k) != v)
            raise SystemExit(f"{work} holds variants built with other settings ({diff}); use another --workdir")
    else:
        work.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps(wanted, indent=2) + "\n")


def build_variants(work: Path, args) -> dict:
    """Every variant as a checkpoint directory (the int8 row reuses its source's)."""
    check_settings(work, args)
    threads = ["--threads", args.threads]
    task = work / "task"
    task.mkdir(parents=True, exist_ok=True)
    writer = TASKS[args.task][0]
    train, dev = writer(task, n_train=args.train_examples, n_dev=args.dev_examples, seed=args.seed)
    teacher = work / "teacher"
    if not (teacher / "model.safetensors").exists():
        say(f"fine-tuning the teacher ({args.layer_calls} layer calls) on {args.train_examples} examples")
        base = write_base_checkpoint(work / "base", vocab_file=SPM, hidden_size=64, num_layers=args.layer_calls,
                                     num_heads=4, intermediate_size=256, embedding_size=32,
                                     max_position_embeddings=128, seed=args.seed)
        run_cli(["finetune", "--task", "classify", "--model", base, "--train", train, "--dev", dev,
                 "--output-dir", teacher, "--lr", args.lr, "--epochs", args.epochs, "--batch-size", 16,
                 "--max-length", args.max_length, "--device", "cpu", "--quiet", "--overwrite", "--seed", args.seed,
                 *threads])
    variants = {"teacher": teacher}
    fewer = args.student_calls
    shallow = work / f"calls{fewer}"
    model = AlbertForSequenceClassification.from_pretrained(teacher)
    if not (shallow / "model.safetensors").exists():
        shallow_model = AlbertForSequenceClassification.from_pretrained(teacher, num_layer_calls=fewer)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            shallow_model.save_pretrained(shallow)
        (shallow / "spiece.model").write_bytes((teacher / "spiece.model").read_bytes())
    variants[f"{fewer} layer calls (of {args.layer_calls}), no distillation"] = shallow
    distilled = work / f"calls{fewer}-distilled"
    if not (distilled / "model.safetensors").exists():
        say(f"distilling a {fewer}-call student for {args.distill_steps} steps")
        run_cli(["distill", "--teacher", teacher, "--task", train, "--layer-calls", fewer, "--output-dir", distilled,
                 "--max-steps", args.distill_steps, "--lr", args.distill_lr, "--batch-size", 32,
                 "--max-seq-length", args.max_length, "--device", "cpu", "--quiet", "--overwrite", "--log-every", 50,
                 "--save-every", args.distill_steps, "--seed", args.seed, *threads])
    variants[f"{fewer} layer calls, distilled"] = distilled
    heads = model.config.num_attention_heads
    for label, flag, value in (("heads pruned 25%", "--heads", heads // 4), ("heads pruned 50%", "--heads", heads // 2),
                               ("FFN pruned 25%", "--ffn-fraction", 0.25), ("FFN pruned 50%", "--ffn-fraction", 0.5)):
        out = work / label.replace(" ", "-").replace("%", "")
        if not (out / "model.safetensors").exists():
            say(f"pruning: {label}")
            run_cli(["prune", teacher, flag, value, "--data", train, "--output", out, "--max-length", args.max_length,
                     "--max-examples", 1024, "--seed", args.seed, "--quiet"])
        variants[label] = out
    return variants, dev


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--workdir", required=True, help="where the task, teacher and variants are written (reused)")
    p.add_argument("--task", choices=sorted(TASKS), default="majority",
                   help="majority: the most frequent of five word groups (graded; see toy.majority_rows); groups: "
                        "toy.py's one-word classification (too easy to rank); lookup: the word after the marker "
                        "(stays at chance from random weights)")
    p.add_argument("--lr", type=float, default=1e-3, help="the teacher's fine-tuning learning rate")
    p.add_argument("--layer-calls", type=int, default=6, help="the teacher's layer calls")
    p.add_argument("--student-calls", type=int, default=None, help="the shallow variants' calls (default: half)")
    p.add_argument("--epochs", type=float, default=3)
    p.add_argument("--train-examples", type=int, default=6000)
    p.add_argument("--dev-examples", type=int, default=1000)
    p.add_argument("--max-length", type=int, default=40, help="tokens per example (the longest has 32)")
    p.add_argument("--distill-steps", type=int, default=300)
    p.add_argument("--distill-lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reps", type=int, default=15, help="timed repetitions per variant and shape")
    p.add_argument("--base-reps", type=int, default=7, help="repetitions of the albert-base-size ratios")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                   help="cpu: this thread's CPU time (default; needs --threads 1), wall: elapsed time")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args()
    if args.student_calls is None:
        args.student_calls = args.layer_calls // 2
    if not 1 <= args.student_calls < args.layer_calls:
        p.error(f"--student-calls must be in [1, {args.layer_calls - 1}]")
    torch.set_num_threads(args.threads)
    if args.clock == "cpu" and args.threads != 1:
        p.error("--clock cpu measures one thread: use --threads 1 (or --clock wall)")
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    work = Path(args.workdir)
    print(f"# CPU: {cpu_description()}; clock: {args.clock}", flush=True)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        variants, dev = build_variants(work, args)
    built_s = time.perf_counter() - t0
    texts, labels = read_dev(dev)
    tokenizer = AlbertTokenizer.from_pretrained(variants["teacher"])
    models = {name: AlbertForSequenceClassification.from_pretrained(d) for name, d in variants.items()}
    rows = {}
    for name, model in models.items():
        rows[name] = {"dev_acc": dev_accuracy(model, tokenizer, texts, labels),
                      "params": sum(p.numel() for p in model.parameters()), "file_mb": file_mb(variants[name])}
    best = max((n for n in rows if n != "teacher"), key=lambda n: (rows[n]["dev_acc"], -rows[n]["params"]))
    int8_name = f"int8 engine of: {best}"
    rows[int8_name] = {"dev_acc": dev_accuracy(models[best], tokenizer, texts, labels, int8=True),
                       "params": rows[best]["params"], "file_mb": None}
    try:  # the int8 artefact a user ships: the ONNX export with int8 weights (the [onnx] extra)
        from minialbert.export import export_onnx

        path = export_onnx(str(variants[best]), work / "int8-onnx" / "model.onnx", int8=True)
        rows[int8_name]["file_mb"] = path.stat().st_size / 1e6
    except ImportError:
        pass
    engines = {name: InferenceEngine(models[name]) for name in models}
    engines[int8_name] = InferenceEngine(models[best], int8=True)
    speed = timed(engines, {"8x128": (8, 128), "1x16": (1, 16)}, args.reps, models["teacher"].config.vocab_size, clock)
    for name in rows:
        rows[name]["tokens_per_s_8x128"] = 8 * 128 / speed[name]["8x128"]
        rows[name]["latency_ms_1x16"] = speed[name]["1x16"] * 1e3

    _, what, n_labels = TASKS[args.task]
    print(f"\n## Trade-off on the {what} task (dev set of {len(texts)}, chance 1/{n_labels}), teacher: "
          f"{args.layer_calls} layer calls, H=64, 4 heads, FFN 256\n")
    print("| variant | dev accuracy (95% interval) | parameters | tokens/s 8x128 | latency 1x16 (ms) | file (MB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        size = f"{r['file_mb']:.2f}" + (" (int8 ONNX)" if name == int8_name else "") if r["file_mb"] else "n/a"
        half = 1.96 * math.sqrt(r["dev_acc"] * (1 - r["dev_acc"]) / len(texts))  # binomial, normal approximation
        print(f"| {name} | {r['dev_acc']:.3f} ± {half:.3f} | {r['params']:,} | {r['tokens_per_s_8x128']:,.0f} | "
              f"{r['latency_ms_1x16']:.2f} | {size} |")

    # ------------------------------------------------------------- albert-base-size ratios
    from minialbert.config import AlbertConfig
    from minialbert.prune import prune_model

    torch.manual_seed(0)
    config = AlbertConfig.from_preset("albert-base-v2")
    full = AlbertModel(config).eval()
    half_ffn = prune_model(full, [list(range(12))], [list(range(0, 3072, 2))]).eval()
    six = AlbertModel(config.replace(num_layer_calls=6)).eval()
    six.load_state_dict(full.state_dict())
    base_speed = timed({"12 calls": InferenceEngine(full), "50% FFN": InferenceEngine(half_ffn),
                        "6 calls": InferenceEngine(six)}, {"8x128": (8, 128)}, args.base_reps, config.vocab_size, clock)
    ffn_ratio = base_speed["12 calls"]["8x128"] / base_speed["50% FFN"]["8x128"]
    calls_ratio = base_speed["12 calls"]["8x128"] / base_speed["6 calls"]["8x128"]
    print("\n## Engine speed ratios at albert-base size, 8x128 (medians, interleaved)\n")
    print("| comparison | unpruned / 12 calls (ms) | variant (ms) | speed-up |")
    print("|---|---:|---:|---:|")
    print(f"| 50% FFN neurons pruned vs unpruned | {base_speed['12 calls']['8x128'] * 1e3:.0f} | "
          f"{base_speed['50% FFN']['8x128'] * 1e3:.0f} | {ffn_ratio:.2f}x |")
    print(f"| 6 vs 12 layer calls | {base_speed['12 calls']['8x128'] * 1e3:.0f} | "
          f"{base_speed['6 calls']['8x128'] * 1e3:.0f} | {calls_ratio:.2f}x |")
    print(f"\n# load average after: {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "")
    print(f"# wall time: building (or, on a rerun, finding) the variants {built_s:.0f} s, "
          f"in all {time.perf_counter() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu_description(), "rows": rows,
                                               "base_ms_8x128": {k: v["8x128"] * 1e3 for k, v in base_speed.items()},
                                               "ffn50_speedup": ffn_ratio, "calls6_speedup": calls_ratio},
                                              indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
