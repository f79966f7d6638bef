"""minialbert vs transformers vs ONNX Runtime, fp32 and int8, side by side in one process.

    python scripts/bench.py [--quick] [--json bench.json] [--markdown]
    python scripts/bench.py --from-json scripts/bench-results.json --page docs/guides/speed.md
    python scripts/bench.py --from-json scripts/bench-results-vnni.json --page docs/guides/speed.md --markers vnni

It lives outside the package because it needs transformers and onnxruntime (the `bench`
extra) and the test fixtures' tokenizer; minialbert itself imports neither. Prints the CPU model
and flags first: absolute numbers mean nothing without their machine.

What it measures (`--threads` threads, default 2), on one random-weight albert-base-v2-sized
checkpoint for every side:
  * model level, 32 x 128, 8 x 128, 8 x 512 tokens/s and 1 x 16 latency, for every side:
    transformers (sdpa), the minialbert engine fp32 and int8, ONNX Runtime on torch.onnx's export
    (full runs; minutes to export, then cached), ONNX Runtime's own quantize_dynamic on the fp32
    export (U8U8 / U8S8, per-tensor / per-channel; the unshared variant too), and minialbert's own
    ONNX export fp32 / int8 (minialbert/export.py);
  * accuracy of every side against model.py on the benchmark corpus: min cosine of mean-pooled
    vectors and of pooler outputs (and bf16 of the engine, not timed);
  * memory, in fresh processes: RSS growth from loading and running each way, and file sizes;
  * a mixed-length corpus (fixed seed, lognormal lengths), raw strings -> vectors: the minialbert
    Embedder vs transformers run the usual way (given order, batches of 32, padding to the
    longest) and vs transformers fed the Embedder's length-sorted batches;
  * cold start, in separate fresh processes: import, load, embed one sentence; wall and peak RSS.
The sides alternate within each round ("interleaved") so that load from other processes hits
them alike; each cell reports the median over rounds, min-max in the JSON. --from-json renders
a JSON into the README's table (between its bench-table markers), so the table is never retyped.
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
sys.path.insert(0, str(REPO / "scripts"))  # bench_report.py, when imported from elsewhere

from bench_report import markdown_table, render_readme  # noqa: E402  (the tables, from a run's JSON)

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


CLOCK = time.perf_counter  # --clock cpu: time.thread_time (one thread; see main)


def _timed(fn) -> float:
    t = CLOCK()
    fn()
    return CLOCK() - t


def _stats(times: list[float], work: float) -> dict:
    """work units per second: median and the min-max range over rounds."""
    rates = sorted(work / t for t in times)
    # "seconds" in round order: side A's round r ran next to side B's round r, so the ratio of the
    # two within a round is free of the slow drifts (other load, clocks) that move whole rounds;
    # bench_report.py's goal ratios are medians of these paired ratios.
    return {"median": statistics.median(rates), "min": rates[0], "max": rates[-1],
            "seconds": list(times), "in_round_order": True, "rounds": len(times)}


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


def _session(path_or_bytes, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    source = path_or_bytes if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def _ort_side(session):
    import numpy as np

    names = {i.name for i in session.get_inputs()}

    def run(ids, mask):
        feed = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
        if "token_type_ids" in names:
            feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
        return session.run(None, feed)

    return run


def _torch_onnx_export(ckpt: Path, ours, allow_export: bool, log) -> Path | None:
    """The reference model exported by torch.onnx (dynamo, the default exporter), cached beside the
    checkpoint: what a user of the standard toolchain runs. Minutes to make on 2 cores."""
    import torch

    path = ckpt / "model.torch-onnx.onnx"
    if path.exists():
        return path
    if not allow_export:
        log("  (no cached torch.onnx export; --quick skips making one)")
        return None

    from minialbert.model import additive_attention_mask

    class Wrapper(torch.nn.Module):
        """model.py's forward minus its input checks (check_inputs reads values, .item(), which
        torch.export cannot trace): the same modules and equations."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            m = self.model
            embedded = m.embeddings(input_ids)
            h, _, _ = m.encoder(embedded, additive_attention_mask(attention_mask, embedded.dtype))
            return h, torch.tanh(m.pooler(h[:, 0]))

    try:  # calling the model runs model.py: the export holds the plain reference equations
        batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq", max=512)
        ids = torch.randint(5, 1000, (2, 16))
        tmp = ckpt / "model.torch-onnx.onnx.tmp"
        import contextlib
        import io

        t = time.perf_counter()
        import warnings

        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(Wrapper(ours).eval(), (ids, torch.ones_like(ids)), str(tmp),
                              input_names=["input_ids", "attention_mask"],
                              output_names=["last_hidden_state", "pooler_output"],
                              dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
                              dynamo=True, optimize=True, external_data=False)
        os.replace(tmp, path)
        log(f"  torch.onnx export made in {time.perf_counter() - t:.0f} s (cached in {path})")
        return path
    except Exception as e:  # pragma: no cover - exporter problems: skip the side
        log(f"  (torch.onnx export failed: {type(e).__name__}: {str(e)[:200]}; no such side)")
        return None


def _unshared(model):
    """A copy of an ONNX model in which every use of a 2-D weight has its own copy (the export an
    exporter that copies the shared layer per depth would give)."""
    import copy

    import onnx

    model = copy.deepcopy(model)
    inits = {i.name: i for i in model.graph.initializer}
    seen: dict = {}
    for node in model.graph.node:
        for k, name in enumerate(node.input):
            if name in inits and len(inits[name].dims) == 2 and node.op_type == "MatMul":
                seen[name] = seen.get(name, 0) + 1
                if seen[name] > 1:
                    clone = onnx.TensorProto()
                    clone.CopyFrom(inits[name])
                    clone.name = f"{name}.copy{seen[name]}"
                    model.graph.initializer.append(clone)
                    node.input[k] = clone.name
    return model


def onnx_files(ckpt: Path, ours, work: Path, quick: bool, log) -> dict:
    """name -> .onnx path for the ONNX Runtime sides (made once, cached in the work directory)."""
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        log("  (onnx / onnxruntime not installed: no ONNX Runtime sides)")
        return {}
    from minialbert.export import Int8Options, build_onnx

    work.mkdir(parents=True, exist_ok=True)
    files = {}
    torch_export = _torch_onnx_export(ckpt, ours, not quick, log)
    if torch_export is not None:
        files["ORT fp32, torch.onnx export"] = torch_export
    fp32 = work / "minialbert-fp32.onnx"
    int8 = work / "minialbert-int8.onnx"
    int8_s8 = work / "minialbert-int8-s8.onnx"
    if not fp32.exists():
        fp32.write_bytes(build_onnx(ours).SerializeToString())
        int8.write_bytes(build_onnx(ours, int8=True).SerializeToString())
    if not int8_s8.exists():  # `export onnx --int8 --int8-weights s8`: ONNX Runtime's U8S8 kernel
        int8_s8.write_bytes(build_onnx(ours, int8=Int8Options(weights="s8")).SerializeToString())
    files["ORT fp32, minialbert export"] = fp32
    # ONNX Runtime's own quantizer on the float32 export, with its defaults (reduce_range off):
    # the ORT int8 baseline. Weight types and granularity as the issue lists them.
    variants = {("U8U8", "per-channel"): (QuantType.QUInt8, True), ("U8S8", "per-channel"): (QuantType.QInt8, True)}
    if not quick:
        variants.update({("U8U8", "per-tensor"): (QuantType.QUInt8, False),
                         ("U8S8", "per-tensor"): (QuantType.QInt8, False)})
    import logging

    logging.getLogger().setLevel(logging.ERROR)  # quantize_dynamic's "consider pre-processing" advice
    for (kind, granularity), (weight_type, per_channel) in variants.items():
        out = work / f"ort-quantize-dynamic-{kind}-{granularity}.onnx"
        if not out.exists():
            quantize_dynamic(str(fp32), str(out), weight_type=weight_type, per_channel=per_channel)
        files[f"ORT int8 {kind} {granularity}"] = out
    if not quick:  # every layer call with its own weight copy, then quantized: the 90 MB variant
        unshared = work / "ort-quantize-dynamic-U8U8-per-channel-unshared.onnx"
        if not unshared.exists():
            plain = work / "minialbert-fp32-unshared.onnx"
            onnx.save(_unshared(onnx.load(str(fp32))), str(plain))
            quantize_dynamic(str(plain), str(unshared), weight_type=QuantType.QUInt8, per_channel=True)
        files["ORT int8 U8U8 per-channel, unshared"] = unshared
    files["ORT int8, minialbert export"] = int8
    files["ORT int8, minialbert export s8"] = int8_s8
    return files


def build_sides(ours, theirs, onnx_paths: dict, threads: int, ckpt: Path | None = None) -> dict:
    """Every side of the table: name -> fn(ids, mask). Besides the engine with this machine's plan
    (minialbert/plan.py): bf16 where the CPU has native bf16, the engine with the plan forced to
    the fixed (AVX2-tuned) choices when this machine's differs, and int8 over a model loaded
    under torch.inference_mode() (the cliff of issue 22)."""
    import copy

    import torch

    from minialbert.fast import InferenceEngine
    from minialbert.model import AlbertModel
    from minialbert.plan import FIXED, current_plan, native_bf16
    from minialbert.quantize import int8_available

    def as_pair(out):
        return out.last_hidden_state, out.pooler_output

    def engine_side(engine):
        return lambda ids, mask: as_pair(engine(ids, attention_mask=mask))

    plan = current_plan()
    fixed = dict(plan=FIXED) if plan != FIXED else None
    # what the Embedder runs: the fused path for a stock model
    sides = {"transformers fp32": lambda ids, mask: as_pair(theirs(input_ids=ids, attention_mask=mask)),
             "minialbert fp32": engine_side(InferenceEngine(ours))}
    if native_bf16():
        sides["minialbert bf16"] = engine_side(InferenceEngine(copy.deepcopy(ours).to(torch.bfloat16)))
    if fixed:
        sides["minialbert fp32, fixed plan"] = engine_side(InferenceEngine(ours, **fixed))
    if int8_available():
        sides["minialbert int8"] = engine_side(InferenceEngine(ours, int8=True))
        if fixed:
            sides["minialbert int8, fixed plan"] = engine_side(InferenceEngine(ours, int8=True, **fixed))
        if ckpt is not None:
            with torch.inference_mode():
                loaded = AlbertModel.from_pretrained(ckpt)
            sides["minialbert int8, inference-mode load"] = engine_side(InferenceEngine(loaded, int8=True))
    for name, path in onnx_paths.items():
        sides[name] = _ort_side(_session(path, threads))
    return sides


# ------------------------------------------------------------------------ sections
SHAPES_FULL = [(1, 16), (8, 128), (32, 128), (8, 512)]  # small first: they warm every side up
SHAPES_QUICK = [(1, 16), (8, 128)]


def model_level(sides: dict, shapes, rounds: int, log) -> dict:
    """Throughput (tokens/s) of every side at every shape, interleaved; 1 x 16 also as latency."""
    import torch

    results = {}
    for batch, seq in shapes:
        g = torch.Generator().manual_seed(batch * 1000 + seq)
        ids = torch.randint(5, 30000, (batch, seq), generator=g)
        mask = torch.ones_like(ids)
        calls = {name: (lambda f: lambda: f(ids, mask))(f) for name, f in sides.items()}
        with torch.inference_mode():
            # Small shapes: several calls per timing, so that one descheduled call does not decide it.
            repeat = max(1, 1024 // (batch * seq))
            timed = {name: (lambda c: lambda: [c() for _ in range(repeat)])(c) for name, c in calls.items()}
            stats = interleave(timed, rounds, batch * seq * repeat, warmup=1 if batch * seq <= 1024 or not results else 0)
        for s in stats.values():
            s["latency_ms"] = 1000 * batch * seq / s["median"]
        key = f"{batch}x{seq}"
        results[key] = stats
        log(_row(key, stats, "tok/s", base="minialbert fp32"))
    return results


def _pool_mean(hidden, mask):
    import torch

    h = torch.as_tensor(hidden).float()
    m = mask.unsqueeze(-1).float()
    return (h * m).sum(1) / m.sum(1)


def accuracy(ckpt: Path, sides: dict, ours, n_texts: int, log, bf16: bool = True) -> dict:
    """Each side's vectors on the benchmark corpus against minialbert fp32 (model.py's numbers):
    min cosine of the mean-pooled vectors and of the pooler outputs, max |diff| of hidden states."""
    import copy

    import torch
    import torch.nn.functional as F

    from minialbert.fast import InferenceEngine
    from minialbert.tokenizer import AlbertTokenizer

    tok = AlbertTokenizer.from_pretrained(ckpt)
    texts = make_corpus(n_texts, seed=3)
    enc = [tok(t, truncation=True, max_length=512)["input_ids"] for t in texts]
    order = sorted(range(len(enc)), key=lambda k: -len(enc[k]))
    batches = []
    for i in range(0, len(order), 16):
        rows = [enc[k] for k in order[i:i + 16]]
        width = len(rows[0])
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, row in enumerate(rows):
            ids[r, :len(row)] = torch.tensor(row)
            mask[r, :len(row)] = 1
        batches.append((ids, mask))
    every = dict(sides)
    emulated = "minialbert bf16" not in sides  # timed (native) sides run on the whole corpus
    if bf16 and emulated:  # emulated (slow) on CPUs without bf16 instructions: accuracy only, not timed
        engine = InferenceEngine(copy.deepcopy(ours).to(torch.bfloat16))
        every["minialbert bf16"] = lambda ids, mask: (lambda o: (o.last_hidden_state, o.pooler_output))(
            engine(ids, attention_mask=mask))
    out = {}
    with torch.inference_mode():
        refs = [ours(ids, attention_mask=mask) for ids, mask in batches]  # model.py
        for name, fn in every.items():
            means, pools, diff = [], [], 0.0
            # bf16 is emulated on most CPUs (~7x slower): its cosines come from the 32 shortest texts.
            pairs = list(zip(batches, refs))
            for (ids, mask), ref in (pairs[-2:] if name == "minialbert bf16" and emulated else pairs):
                hidden, pooled = fn(ids, mask)
                hidden = torch.as_tensor(hidden).float()
                means.append(F.cosine_similarity(_pool_mean(hidden, mask), _pool_mean(ref.last_hidden_state, mask), dim=-1))
                pools.append(F.cosine_similarity(torch.as_tensor(pooled).float(), ref.pooler_output, dim=-1))
                diff = max(diff, (hidden - ref.last_hidden_state)[mask.bool()].abs().max().item())
            out[name] = {"cos_min_mean_pooled": torch.cat(means).min().item(),
                         "cos_min_pooler": torch.cat(pools).min().item(), "max_abs_diff": diff}
            log(f"    {name:<38} cos(mean) >= {out[name]['cos_min_mean_pooled']:.5f}  "
                f"cos(pooler) >= {out[name]['cos_min_pooler']:.5f}  max|diff| {diff:.3g}")
    return {"texts": n_texts, "tokens": sum(map(len, enc)), "sides": out}


_MEMORY = r"""
import json, os, sys, torch
def rss():
    return int([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmRSS')][0]) / 1024
kind, ckpt, onnx_path, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
torch.set_num_threads(threads)
import onnxruntime  # imported by every kind, so that the baseline holds the same libraries
from minialbert.model import AlbertModel
from minialbert.fast import InferenceEngine
ids = torch.randint(5, 30000, (8, 128))
before = rss()
if kind.startswith("minialbert"):
    model = AlbertModel.from_pretrained(ckpt)
    engine = InferenceEngine(model, int8=kind.endswith("int8"))
    with torch.inference_mode():
        engine(ids); engine(ids[:1, :16])  # both kernel sizes
    extra = engine.packed_bytes()
else:
    sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[5])))
    from bench import _session, _ort_side
    session = _session(onnx_path, threads)
    _ort_side(session)(ids, torch.ones_like(ids)); _ort_side(session)(ids[:1, :16], torch.ones_like(ids[:1, :16]))
    extra = 0
print("MEM", json.dumps({"rss_growth_mb": rss() - before, "derived_mb": extra / 1e6}))
"""


def memory(ckpt: Path, onnx_paths: dict, threads: int, log, quick: bool = False) -> dict:
    """Resident memory of each way to run the model: RSS growth of a fresh process from loading it
    and running 8 x 128 and 1 x 16 (what the weights, packs and buffers add), and file sizes."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    kinds = {"minialbert fp32": None, "minialbert int8": None}
    for name in (("ORT int8, minialbert export",) if quick else (
            "ORT fp32, minialbert export", "ORT int8, minialbert export", "ORT int8 U8U8 per-channel",
            "ORT int8 U8U8 per-channel, unshared")):
        if name in onnx_paths:
            kinds[name] = onnx_paths[name]
    out = {"files_mb": {"model.safetensors": (ckpt / "model.safetensors").stat().st_size / 1e6}}
    for name, path in onnx_paths.items():
        out["files_mb"][name] = Path(path).stat().st_size / 1e6
    out["processes"] = {}
    for name, path in kinds.items():
        proc = subprocess.run([sys.executable, "-c", _MEMORY, name, str(ckpt), str(path), str(threads), __file__],
                              env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            log(f"  memory ({name}) failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        out["processes"][name] = json.loads(proc.stdout.split("MEM", 1)[1])
        m = out["processes"][name]
        log(f"    {name:<38} RSS +{m['rss_growth_mb']:6.1f} MB" + (f"  (engine-derived weights {m['derived_mb']:.1f} MB)"
                                                                 if m["derived_mb"] else ""))
    for name, mb in out["files_mb"].items():
        log(f"    file {name:<33} {mb:7.1f} MB")
    return out


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
def _row(title: str, stats: dict, unit: str, base: str | None = None) -> str:
    base_rate = stats[base]["median"] if base in stats else next(
        (v["median"] for k, v in stats.items() if k.startswith("transformers")), None)
    lines = [f"  {title}"]
    for name, s in stats.items():
        if "median" not in s:
            lines.append(f"    {name:<38} {s.get('skipped', '')}")
            continue
        ratio = f"{s['median'] / base_rate:5.2f}x" if base_rate else ""
        lines.append(f"    {name:<38} {s['median']:9.1f} {unit} ({s['min']:.1f}-{s['max']:.1f})  {ratio}")
    return "\n".join(lines)


def machine() -> dict:
    import torch

    from minialbert.cpuinfo import cpu_name, flag_summary

    have, lack = flag_summary(("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8"))
    info = {"cpu_flags": " ".join(have) + "; no " + " ".join(lack),
            "cpu": cpu_name(), "logical_cpus": os.cpu_count(), "python": platform.python_version(),
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
    p = argparse.ArgumentParser(prog="scripts/bench.py", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--quick", action="store_true",
                   help="smoke run (under 3 minutes on 2 quiet cores): 8x128 and 1x16, fewer ONNX sides, "
                        "a 24-text corpus, one cold start")
    p.add_argument("--json", default="bench.json", help="where to write the results (default bench.json)")
    p.add_argument("--checkpoint", help="a local checkpoint directory (with spiece.model) to use instead of "
                                        "the random albert-base-v2-sized one")
    p.add_argument("--work-dir", default=os.path.join(tempfile.gettempdir(), "minialbert-bench"),
                   help="where the random checkpoint and the ONNX files are cached")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, help="timed rounds per shape, after one warm-up (default 2, quick 1)")
    p.add_argument("--corpus-texts", type=int, help="texts in the corpus (default 160, quick 24)")
    p.add_argument("--skip", default="", help="comma list of sections to skip: model,accuracy,memory,corpus,cold,onnx")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="cpu: time each call by the CPU time of the calling thread, with --threads 1: on a "
                        "shared machine other processes then slow no side down (ONNX Runtime with one thread "
                        "runs on the calling thread too); wall (default): elapsed time")
    p.add_argument("--shapes", help="comma list of batch x seq shapes to time instead of the default, e.g. 32x128")
    p.add_argument("--markdown", action="store_true", help="also print the README tables")
    p.add_argument("--readme", "--page", dest="readme", metavar="PAGE.md",
                   help="with --from-json: rewrite that page's tables from the JSON (docs/guides/speed.md)")
    p.add_argument("--markers", default="", metavar="NAME",
                   help="with --readme: the bench-table-NAME / bench-goals-NAME blocks (default: bench-table / bench-goals)")
    p.add_argument("--from-json", metavar="FILE", help="measure nothing; render FILE (see --readme, --markdown)")
    args = p.parse_args(argv)

    def log(msg):
        print(msg, flush=True)

    if args.from_json:
        result = json.loads(Path(args.from_json).read_text())
        if args.readme:
            render_readme(result, Path(args.readme), args.markers)
            log(f"rewrote the tables in {args.readme} from {args.from_json}")
        if args.markdown or not args.readme:
            log(markdown_table(result))
        return 0
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    rounds = args.rounds or (1 if args.quick else 2)
    if args.clock == "cpu":
        if args.threads != 1:
            p.error("--clock cpu needs --threads 1 (the CPU time of one thread)")
        global CLOCK
        CLOCK = time.thread_time
    started = time.perf_counter()
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    work = Path(args.work_dir)
    ckpt = Path(args.checkpoint) if args.checkpoint else build_checkpoint(work / "albert-base-v2-random")
    import torch

    torch.set_num_threads(args.threads)
    result = {"machine": machine(), "threads": args.threads, "clock": args.clock, "quick": args.quick,
              "checkpoint": str(ckpt),
              "command": "python scripts/bench.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    log(f"scripts/bench.py on {result['machine']['cpu']} ({result['machine']['cpu_flags']}), "
        f"{args.threads} threads, {args.clock} clock, checkpoint {ckpt}")
    from minialbert.plan import current_plan

    plan = current_plan()
    result["plan"] = plan.as_dict()
    log(plan.describe())
    ours, theirs = _load_sides(ckpt, args.threads)
    onnx_paths = {} if "onnx" in skip else onnx_files(ckpt, ours, work / ckpt.name, args.quick, log)
    sides = build_sides(ours, theirs, onnx_paths, args.threads, ckpt)
    if "model" not in skip:
        log("model level (tokens/s; median (min-max), ratio to minialbert fp32)")
        shapes = SHAPES_QUICK if args.quick else SHAPES_FULL
        if args.shapes:
            shapes = [tuple(int(v) for v in shape.lower().split("x")) for shape in args.shapes.split(",")]
        result["model"] = model_level(sides, shapes, rounds, log)
    if "accuracy" not in skip:
        n = 32 if args.quick else 160
        log(f"accuracy against model.py on {n} corpus texts")
        result["accuracy"] = accuracy(ckpt, sides, ours, n, log, bf16=not args.quick)
    del sides
    if "memory" not in skip:
        log("memory (fresh processes)")
        result["memory"] = memory(ckpt, onnx_paths, args.threads, log, quick=args.quick)
    if "corpus" not in skip:
        n = args.corpus_texts or (24 if args.quick else 160)
        log("mixed-length corpus, raw text -> vectors (real tokens/s)")
        result["corpus"] = corpus(ckpt, ours, theirs, n, 1, args.threads, log)
    if "cold" not in skip:
        log("cold start (fresh processes)")
        result["cold_start"] = cold_start(ckpt, 1 if args.quick else 2, args.threads, log)
    result["machine"]["load_average_at_end"] = os.getloadavg()
    result["seconds"] = time.perf_counter() - started
    Path(args.json).write_text(json.dumps(result, indent=2))
    log(f"wrote {args.json} ({result['seconds']:.0f} s)")
    if args.markdown:
        log(markdown_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
