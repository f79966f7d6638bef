"""minialbert vs transformers (vs ONNX Runtime), side by side in one process.

    python scripts/bench.py [--quick] [--json bench.json] [--checkpoint DIR]

It lives outside the package because it needs transformers and onnxruntime (the `bench`
extra) and the test fixtures' tokenizer; minialbert itself imports neither.

What it measures (fp32 unless said otherwise, `--threads` threads, default 2):
  * model level, the same random-weight albert-base-v2-sized checkpoint for every side:
    batch 1 x 16 latency, 32 x 128 and 8 x 512 throughput; transformers (sdpa), minialbert
    (the default fast path) and, when onnxruntime is installed, the torch.onnx export of the
    same weights run by onnxruntime;
  * precision options of minialbert: bf16 (weights cast once) and int8 (torchao's dynamic
    int8 when it is installed), with their agreement with minialbert fp32 (cosine similarity
    of pooled embeddings and max |diff| of last_hidden_state);
  * a mixed-length corpus (fixed seed, lognormal lengths), raw strings -> vectors: the minialbert
    Embedder vs transformers run the usual way (given order, batches of 32,
    padding to the longest) and vs transformers fed the Embedder's length-sorted batches;
  * cold start, in separate fresh processes: import, load, embed one sentence; wall and peak RSS.
The sides alternate within each round ("interleaved") so that load from other processes hits
them alike; each cell reports the median, min and max over rounds. A JSON file has everything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

# ----------------------------------------------------------------------------- inputs
_WORDS = (
    "the of and to in is was that for it with as his on be at by had are but from or have an they "
    "which one you were her all she there would their we him been has when who will more no if out "
    "so said what up its about into than them can only other new some could time these two may then "
    "do first any my now such like our over man me even most made after also did many before must "
    "through back years where much your way well down should because each just those people how too "
    "little state good very make world still own see men work long get here between both life being "
    "under never day same another know while last might us great old year off come since against go "
    "came right used take three university research network protein quantum engine river mountain "
    "government economy history language music science water energy computer market system 1,024 "
    "3.5 2019 (see above) - \"quoted\" £40 €12 naïve café résumé"
).split()


def make_corpus(n: int, seed: int = 0) -> list[str]:
    """n texts of lognormal length: 2 to 148 words, median 12; with the bench tokenizer (the test
    fixture's small SentencePiece model, ~3 tokens per word) that is a median of ~39 tokens,
    8 to ~465, the issue's corpus."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        words = int(min(max(rng.lognormvariate(2.5, 0.8), 2), 148))
        texts.append(" ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + ".")
    return texts


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _stats(times: list[float], work: float) -> dict:
    """work units per second: median and the min-max range over rounds."""
    rates = sorted(work / t for t in times)
    return {"median": statistics.median(rates), "min": rates[0], "max": rates[-1],
            "seconds": sorted(times), "rounds": len(times)}


def interleave(sides: dict, rounds: int, work: float, warmup: int = 1) -> dict:
    """Run every side once per round, in rotating order; return per-side rate stats."""
    names = list(sides)
    for _ in range(warmup):
        for name in names:
            sides[name]()
    times = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            times[name].append(_timed(sides[name]))
    return {name: _stats(times[name], work) for name in names}


# ------------------------------------------------------------------------ checkpoint
BASE_V2 = dict(vocab_size=30000, embedding_size=128, hidden_size=768, num_hidden_layers=12,
               num_attention_heads=12, intermediate_size=3072, hidden_act="gelu_new",
               max_position_embeddings=512, type_vocab_size=2)


def _tokenizer_files() -> Path | None:
    here = REPO / "tests" / "fixtures" / "tokenizer" / "hub"
    return here if (here / "spiece.model").exists() else None


def _train_tokenizer(directory: Path) -> None:
    """A small SentencePiece model in ALBERT's id layout, trained on the bench corpus."""
    import sentencepiece as spm

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("\n".join(make_corpus(3000, seed=1)), encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(corpus), model_prefix=str(directory / "spiece"), vocab_size=1000,
            model_type="unigram", pad_id=0, unk_id=1, bos_id=-1, eos_id=-1,
            control_symbols=["[CLS]", "[SEP]", "[MASK]"], user_defined_symbols=["(", ")", '"', "-", ".", "–", "£", "€"],
            normalization_rule_name="nmt_nfkc", minloglevel=2)


def build_checkpoint(directory: Path) -> Path:
    """Random albert-base-v2-sized weights (seed 0, transformers' init) + a tokenizer, once."""
    directory = Path(directory)
    if (directory / "model.safetensors").exists() and (directory / "spiece.model").exists():
        return directory
    import shutil

    import torch

    from minialbert.config import AlbertConfig
    from minialbert.model import AlbertModel

    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = AlbertModel(AlbertConfig(**BASE_V2))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p) if name.endswith("weight") else 0.1 * torch.randn_like(p))
            elif p.dim() > 1:
                p.normal_(0.0, 0.02)
            else:
                p.normal_(0.0, 0.02)
    model.save_pretrained(directory)
    files = _tokenizer_files()
    if files is not None:
        for f in ("spiece.model", "tokenizer.json"):
            if (files / f).exists():
                shutil.copy(files / f, directory / f)
    else:
        _train_tokenizer(directory)
    return directory


# ------------------------------------------------------------------------ sides
def _load_sides(ckpt: Path, threads: int):
    import torch
    import transformers

    from minialbert.model import AlbertModel

    torch.set_num_threads(threads)
    transformers.logging.set_verbosity_error()
    ours = AlbertModel.from_pretrained(ckpt)
    theirs = transformers.AlbertModel.from_pretrained(ckpt, attn_implementation="sdpa").eval()
    return ours, theirs


def _onnx_session(ckpt: Path, ours, threads: int):
    """The reference model exported by torch.onnx (cached beside the checkpoint) in onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    import torch

    path = ckpt / "model.onnx"
    if not path.exists():
        class Wrapper(torch.nn.Module):
            def __init__(self, model):
                super().__init__()
                self.model = model

            def forward(self, ids, mask):
                out = self.model(ids, attention_mask=mask)
                return out.last_hidden_state, out.pooler_output

        try:  # calling the model runs model.py: the export holds the plain reference equations
            batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq", max=512)
            ids = torch.randint(5, 1000, (2, 16))
            tmp = ckpt / "model.onnx.tmp"
            import contextlib
            import io

            with contextlib.redirect_stdout(io.StringIO()):
                torch.onnx.export(Wrapper(ours), (ids, torch.ones_like(ids)), str(tmp),
                                  input_names=["ids", "mask"], output_names=["hidden", "pooled"],
                                  dynamic_shapes={"ids": {0: batch, 1: seq}, "mask": {0: batch, 1: seq}},
                                  dynamo=True, optimize=True, external_data=False)
            os.replace(tmp, path)
        except Exception as e:  # pragma: no cover - exporter problems: skip the column
            print(f"  (onnx export failed: {type(e).__name__}: {str(e)[:200]}; no onnxruntime column)")
            return None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _int8_model(ours):
    """The inference engine with int8 GEMMs on a copy of the model, or (None, reason)."""
    import copy

    from minialbert.fast import InferenceEngine
    from minialbert.quantize import int8_available

    if not int8_available():
        return None, "no FBGEMM in this torch build"
    return InferenceEngine(copy.deepcopy(ours), int8=True), "InferenceEngine(int8=True) (FBGEMM dynamic int8, per-channel weights)"


# ------------------------------------------------------------------------ sections
def model_level(ours, theirs, session, shapes, rounds: int, log) -> dict:
    import numpy as np
    import torch

    from minialbert.fast import InferenceEngine

    engine = InferenceEngine(ours)  # what the Embedder runs: the fused path for a stock model
    results = {}
    for batch, seq in shapes:
        g = torch.Generator().manual_seed(batch * 1000 + seq)
        ids = torch.randint(5, 30000, (batch, seq), generator=g)
        mask = torch.ones_like(ids)
        sides = {
            "transformers": lambda: theirs(input_ids=ids, attention_mask=mask),
            "minialbert": lambda: engine(ids, attention_mask=mask),
        }
        if session is not None:
            feed = {"ids": ids.numpy(), "mask": mask.numpy()}
            sides["onnxruntime"] = lambda: session.run(None, feed)
        with torch.inference_mode():
            stats = interleave(sides, rounds, batch * seq)
            diff = (engine(ids, attention_mask=mask).last_hidden_state
                    - theirs(input_ids=ids, attention_mask=mask).last_hidden_state).abs().max().item()
        if session is not None:
            h = session.run(None, {"ids": ids.numpy(), "mask": mask.numpy()})[0]
            with torch.inference_mode():
                stats["onnxruntime"]["max_abs_diff_vs_minialbert"] = float(
                    np.abs(h - engine(ids, attention_mask=mask).last_hidden_state.numpy()).max())
        stats["minialbert"]["max_abs_diff_vs_transformers"] = diff
        key = f"{batch}x{seq}"
        results[key] = stats
        log(_row(key, stats, "tok/s"))
    return results


def precision(ours, theirs, shape, rounds: int, log) -> dict:
    import copy

    import torch
    import torch.nn.functional as F

    batch, seq = shape
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(5, 30000, (batch, seq), generator=g)
    mask = torch.ones_like(ids)
    mask[batch // 2:, seq // 2:] = 0  # half the rows padded: pooled vectors over real tokens
    from minialbert.fast import InferenceEngine

    variants = {"minialbert fp32": InferenceEngine(ours)}
    variants["minialbert bf16"] = InferenceEngine(copy.deepcopy(ours).to(torch.bfloat16))
    int8, int8_note = _int8_model(ours)
    if int8 is not None:
        variants["minialbert int8"] = int8
    sides = {"transformers fp32": lambda: theirs(input_ids=ids, attention_mask=mask)}
    for name, model in variants.items():
        sides[name] = (lambda m: lambda: m(ids, attention_mask=mask))(model)
    with torch.inference_mode():
        stats = interleave(sides, rounds, batch * seq)
        ref = ours(ids, attention_mask=mask)
        m = mask.unsqueeze(-1).float()
        ref_mean = (ref.last_hidden_state * m).sum(1) / m.sum(1)
        for name, model in variants.items():
            out = model(ids, attention_mask=mask)
            h = out.last_hidden_state.float()
            mean = (h * m).sum(1) / m.sum(1)
            real = mask.bool()
            stats[name].update(
                cos_min_mean_pooled=F.cosine_similarity(mean, ref_mean, dim=-1).min().item(),
                cos_min_cls=F.cosine_similarity(h[:, 0], ref.last_hidden_state[:, 0], dim=-1).min().item(),
                cos_min_pooler=F.cosine_similarity(out.pooler_output.float(), ref.pooler_output, dim=-1).min().item(),
                max_abs_diff=(h - ref.last_hidden_state)[real].abs().max().item(),
                mean_abs_hidden=ref.last_hidden_state[real].abs().mean().item(),
            )
    if int8 is None:
        stats["minialbert int8"] = {"skipped": int8_note}
    else:
        stats["minialbert int8"]["method"] = int8_note
    log(_row(f"{batch}x{seq} half padded", stats, "tok/s"))
    return stats


def corpus(ckpt: Path, ours, theirs, n_texts: int, rounds: int, threads: int, log) -> dict:
    import torch
    import transformers

    from minialbert.embed import Embedder

    texts = make_corpus(n_texts)
    embedder = Embedder.from_pretrained(ckpt)
    embedder.model = ours
    hf_tok = transformers.AlbertTokenizer.from_pretrained(str(ckpt))
    lengths = [len(x) for x in hf_tok(texts, truncation=True, max_length=512)["input_ids"]]
    real_tokens = sum(lengths)

    def given_order():
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), 32):
                enc = hf_tok(texts[i:i + 32], padding=True, truncation=True, max_length=512, return_tensors="pt")
                out.append(theirs(**enc).last_hidden_state[:, 0])
        return torch.cat(out)

    def sorted_batches():
        order = sorted(range(len(texts)), key=lambda k: -lengths[k])
        out = [None] * len(texts)
        with torch.inference_mode():
            for i in range(0, len(order), 32):
                rows = order[i:i + 32]
                enc = hf_tok([texts[k] for k in rows], padding=True, truncation=True, max_length=512,
                             return_tensors="pt")
                h = theirs(**enc).last_hidden_state[:, 0]
                for r, k in enumerate(rows):
                    out[k] = h[r]
        return torch.stack(out)

    def ours_embed():
        return embedder.embed(texts, pooling="cls", batch_size=32, convert_to="torch")

    sides = {"transformers given order": given_order, "transformers sorted": sorted_batches,
             "minialbert Embedder": ours_embed}
    stats = interleave(sides, rounds, real_tokens, warmup=0)
    for s in stats.values():
        s["texts_per_s"] = s["median"] * n_texts / real_tokens
    padded = sum(max(lengths[i:i + 32]) * len(lengths[i:i + 32]) for i in range(0, len(lengths), 32))
    a, b = ours_embed(), given_order()
    info = {"texts": n_texts, "real_tokens": real_tokens, "median_tokens": statistics.median(lengths),
            "min_tokens": min(lengths), "max_tokens": max(lengths),
            "given_order_padded_over_real": padded / real_tokens,
            "max_abs_diff_cls_vs_transformers": (a - b).abs().max().item()}
    log(_row(f"corpus {n_texts} texts", stats, "tok/s"))
    return {"sides": stats, "corpus": info}


_COLD = {
    "minialbert": (
        "import minialbert, sys\n"
        "e = minialbert.Embedder.from_pretrained(sys.argv[1])\n"
        "v = e.embed(['A short sentence to embed, about sixteen tokens long in all.'])\n"
    ),
    "transformers": (
        "import sys, torch\n"
        "from transformers import AlbertModel, AlbertTokenizer\n"
        "tok = AlbertTokenizer.from_pretrained(sys.argv[1])\n"
        "model = AlbertModel.from_pretrained(sys.argv[1]).eval()\n"
        "with torch.no_grad():\n"
        "    v = model(**tok(['A short sentence to embed, about sixteen tokens long in all.'], return_tensors='pt')).last_hidden_state[:, 0]\n"
    ),
}
# VmHWM (this process's peak RSS, KiB): ru_maxrss would also count the benchmark process that
# forked the child, since Linux carries it across exec.
_RSS = ("\nprint('RSS', [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])\n")


def cold_start(ckpt: Path, rounds: int, threads: int, log) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), TRANSFORMERS_VERBOSITY="error",
               HF_HUB_OFFLINE="1", PYTHONPATH=os.pathsep.join([str(REPO),
                                                               os.environ.get("PYTHONPATH", "")]))
    times = {k: [] for k in _COLD}
    rss = {k: [] for k in _COLD}
    for r in range(rounds):
        for name in (list(_COLD) if r % 2 == 0 else list(_COLD)[::-1]):
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", _COLD[name] + _RSS, str(ckpt)], env=env,
                                  capture_output=True, text=True)
            times[name].append(time.perf_counter() - t)
            if proc.returncode != 0:
                raise RuntimeError(f"cold start ({name}) failed:\n{proc.stderr[-2000:]}")
            rss[name].append(int(proc.stdout.split("RSS")[-1].split()[0]) / 1024)  # KiB -> MiB
    out = {}
    for name in _COLD:
        ts = sorted(times[name])
        out[name] = {"wall_s_median": statistics.median(ts), "wall_s_min": ts[0], "wall_s_max": ts[-1],
                     "peak_rss_mb_median": statistics.median(rss[name]), "peak_rss_mb": sorted(rss[name])}
    m, t = out["minialbert"], out["transformers"]
    out["ratios"] = {"wall": m["wall_s_median"] / t["wall_s_median"],
                     "rss": m["peak_rss_mb_median"] / t["peak_rss_mb_median"]}
    for name in _COLD:
        log(f"  cold start {name:<13} {out[name]['wall_s_median']:6.2f} s "
            f"({out[name]['wall_s_min']:.2f}-{out[name]['wall_s_max']:.2f})  "
            f"peak RSS {out[name]['peak_rss_mb_median']:6.0f} MB")
    log(f"  cold start minialbert/transformers: wall {out['ratios']['wall']:.2f}x, RSS {out['ratios']['rss']:.2f}x")
    return out


# ------------------------------------------------------------------------ report
def _row(title: str, stats: dict, unit: str) -> str:
    base = next((v["median"] for k, v in stats.items() if k.startswith("transformers")), None)
    lines = [f"  {title}"]
    for name, s in stats.items():
        if "median" not in s:
            lines.append(f"    {name:<26} {s.get('skipped', '')}")
            continue
        ratio = f"{s['median'] / base:5.2f}x" if base else ""
        extra = ""
        if "cos_min_mean_pooled" in s:
            extra = f"  cos(mean) >= {s['cos_min_mean_pooled']:.5f}  max|diff| {s['max_abs_diff']:.3g}"
        lines.append(f"    {name:<26} {s['median']:9.1f} {unit} ({s['min']:.1f}-{s['max']:.1f})  {ratio}{extra}")
    return "\n".join(lines)


def markdown_table(result: dict) -> str:
    """The README table: one row per workload, one column per side (median, min-max, ratio)."""
    rows = ["| workload | side | median | min-max | vs transformers |", "|---|---|---|---|---|"]

    def add(work, stats, unit, base_key):
        base = stats[base_key]["median"]
        for name, s in stats.items():
            if "median" not in s:
                continue
            rows.append(f"| {work} | {name} | {s['median']:.1f} {unit} | {s['min']:.1f}-{s['max']:.1f} | "
                        f"{s['median'] / base:.2f}x |")

    for key, stats in result.get("model", {}).items():
        unit = "tok/s"
        add(f"fp32 {key}", stats, unit, "transformers")
    if "precision" in result:
        add("precision " + result["precision_shape"], result["precision"], "tok/s", "transformers fp32")
    if "corpus" in result:
        add(f"corpus {result['corpus']['corpus']['texts']} texts", result["corpus"]["sides"], "tok/s",
            "transformers given order")
    if "cold_start" in result:
        c = result["cold_start"]
        for name in ("transformers", "minialbert"):
            rows.append(f"| cold start | {name} | {c[name]['wall_s_median']:.2f} s, "
                        f"{c[name]['peak_rss_mb_median']:.0f} MB RSS | {c[name]['wall_s_min']:.2f}-"
                        f"{c[name]['wall_s_max']:.2f} s | "
                        + (f"{c['ratios']['wall']:.2f}x wall, {c['ratios']['rss']:.2f}x RSS |" if name == "minialbert" else "1.00x |"))
    return "\n".join(rows)


def machine() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "logical_cpus": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "onednn_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())}
    for mod in ("transformers", "onnxruntime", "torchao"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:
            info[mod] = None
    try:
        info["load_average_at_start"] = os.getloadavg()
    except OSError:
        pass
    return info


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="scripts/bench.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 2 rounds, 8x128 instead of 32x128 and 8x512, a 96-text corpus, one cold start")
    p.add_argument("--json", default="bench.json", help="where to write the results (default bench.json)")
    p.add_argument("--checkpoint", help="a local checkpoint directory (with spiece.model) to use instead of "
                                        "the random albert-base-v2-sized one")
    p.add_argument("--work-dir", default=os.path.join(tempfile.gettempdir(), "minialbert-bench"),
                   help="where the random checkpoint and its ONNX export are cached")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, help="rounds per model-level cell (default 5, quick 3)")
    p.add_argument("--corpus-texts", type=int, help="texts in the corpus (default 2000, quick 200)")
    p.add_argument("--skip", default="", help="comma list of sections to skip: model,precision,corpus,cold,onnx")
    p.add_argument("--markdown", action="store_true", help="also print the README table")
    args = p.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    rounds = args.rounds or (2 if args.quick else 5)

    def log(msg):
        print(msg, flush=True)

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    ckpt = Path(args.checkpoint) if args.checkpoint else build_checkpoint(Path(args.work_dir) / "albert-base-v2-random")
    import torch

    torch.set_num_threads(args.threads)
    result = {"machine": machine(), "threads": args.threads, "quick": args.quick, "checkpoint": str(ckpt)}
    log(f"scripts/bench.py on {result['machine']['cpu']} ({args.threads} threads), checkpoint {ckpt}")
    ours, theirs = _load_sides(ckpt, args.threads)
    if "model" not in skip:
        session = None if "onnx" in skip else _onnx_session(ckpt, ours, args.threads)
        shapes = [(1, 16), (8, 128)] if args.quick else [(1, 16), (32, 128), (8, 512)]
        log("model level, fp32 (tokens/s; median (min-max) ratio vs transformers)")
        result["model"] = model_level(ours, theirs, session, shapes, rounds, log)
        del session
    if "precision" not in skip:
        shape = (8, 64) if args.quick else (32, 128)
        result["precision_shape"] = f"{shape[0]}x{shape[1]}"
        log("precision options (agreement with minialbert fp32)")
        result["precision"] = precision(ours, theirs, shape, max(2, rounds - 1), log)
    if "corpus" not in skip:
        n = args.corpus_texts or (96 if args.quick else 2000)
        log("mixed-length corpus, raw text -> vectors (real tokens/s)")
        result["corpus"] = corpus(ckpt, ours, theirs, n, 1 if n > 500 else 2, args.threads, log)
    if "cold" not in skip:
        log("cold start (fresh processes)")
        result["cold_start"] = cold_start(ckpt, 1 if args.quick else 3, args.threads, log)
    Path(args.json).write_text(json.dumps(result, indent=2))
    log(f"wrote {args.json}")
    if args.markdown:
        log(markdown_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
