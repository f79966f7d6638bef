"""GEMM kernel study: what fp32 and int8 kernels reach on ALBERT-base's shapes on *this* CPU.

    python scripts/profile_kernels.py [--rounds 5] [--json kernels.json] [--skip gemm,epilogue,ort]

For M = 16, 1024, 4096 rows (tokens) and the four weight shapes of an ALBERT-base layer
(K x N = 768 x 2304 fused QKV, 768 x 768 attention output, 768 x 3072 FFN up, 3072 x 768 FFN
down) it times, interleaved in one process (rotating order per round, medians):

  fp32  mkl          F.linear (ATen -> MKL sgemm)
        onednn       torch.ops.mkldnn._linear_pointwise, plain weight (what minialbert/fast/ uses)
        onednn-pk    the same with the weight pre-packed once (_reorder_linear_weight)
        ort          ONNX Runtime MatMul (MLAS), a one-node graph
  int8  fbgemm-dyn   quantized.linear_dynamic: activation min/max + quantize + GEMM + dequant,
                     per-tensor (pt) or per-channel (pc) weights, reduce_range (rr) on/off
        fbgemm-q     linear_with_input_q_dq_qweight_dq_output_fp32: the activation scale is given
                     (static), so no min/max pass: the GEMM as if the activation was quantized once
        onednn-u7    torch.ops.onednn.qlinear_pointwise on a uint8 activation quantized to 0..127
                     (u7: without VNNI, vpmaddubsw sums two u8 x s8 products in int16 and
                     saturates with full-range u8; --check shows the error), fp32 output;
                     timed with and without the activation quantization
        ort-u8s8 / ort-u8u8  ONNX Runtime DynamicQuantizeMatMul (what quantize_dynamic's
                     MatMulInteger graph is fused into), int8 or uint8 weights, per-tensor or
                     per-column scales
Rates are GOP/s = 2 M K N / time (int8 ops counted like fp32 flops). The epilogue section times
the non-GEMM work of one layer at 32 x 128 (LayerNorm, GELU, residual adds, activation
quantization, attention) so that an end-to-end figure can be checked against its parts; the profile section times each
operation of the inference engine's forward (fp32 and int8, 1 x 16 and 8 x 128) with its GOP/s,
to set beside the isolated kernels' rates: the "time per kernel against its ceiling" table.
The hot section runs each fp32 kernel back to back on one weight, as the shared layer does: the
ceiling that an end-to-end number should be compared with.
The machine may be shared: compare columns (ratios), not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

SHAPES = [(768, 2304, "qkv"), (768, 768, "attn-out"), (768, 3072, "ffn-up"), (3072, 768, "ffn-down")]
ROWS = [16, 1024, 4096]
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")


def cpu_line() -> str:
    """'model name | flags that matter for GEMMs', from /proc/cpuinfo."""
    from minialbert.cpuinfo import cpu_name, flag_summary

    model, (have, lack) = cpu_name(), flag_summary(ISA_FLAGS)
    return f"{model}, {os.cpu_count()} logical CPUs; has {' '.join(have) or '-'}; lacks {' '.join(lack) or '-'}"


# --------------------------------------------------------------------------- int8 helpers
def quantize_weight(w: torch.Tensor, per_channel: bool, bits: int = 8):
    """Symmetric int8 weight: (int8 values, fp32 scale per row or one scale)."""
    qmax = 2 ** (bits - 1) - 1
    amax = w.abs().amax(dim=1) if per_channel else w.abs().amax().expand(w.shape[0])
    scale = (amax / qmax).clamp(min=1e-12)
    return torch.clamp(torch.round(w / scale[:, None]), -qmax, qmax).to(torch.int8), scale.float()


def quantize_u7(x: torch.Tensor):
    """Asymmetric uint8 activation restricted to 0..127 (reduce_range): (uint8, scale, zero point)."""
    lo, hi = torch.aminmax(x)
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = max((hi - lo) / 127.0, 1e-12)
    zp = int(round(-lo / scale))
    return torch.clamp(torch.round(x * (1.0 / scale)) + zp, 0, 127).to(torch.uint8), scale, zp


def fbgemm_pack(w: torch.Tensor, b: torch.Tensor, per_channel: bool):
    import warnings

    q, scale = quantize_weight(w, per_channel)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if per_channel:
            wq = torch._make_per_channel_quantized_tensor(q, scale.double(), torch.zeros(len(scale), dtype=torch.long), 0)
        else:
            wq = torch._make_per_tensor_quantized_tensor(q, float(scale[0]), 0)
    return torch.ops.quantized.linear_prepack(wq, b)


class OnednnInt8:
    """A oneDNN int8 inner product with a pre-packed weight; fp32 output with bias."""

    def __init__(self, w: torch.Tensor, b: torch.Tensor, per_channel: bool = True):
        q, self.scale = quantize_weight(w, per_channel)
        self.zp = torch.zeros(w.shape[0], dtype=torch.long)
        self.packed = torch.ops.onednn.qlinear_prepack(q, None)
        self.bias = b

    def __call__(self, qx, x_scale, x_zp, act: str = "none", algo: str = ""):
        return torch.ops.onednn.qlinear_pointwise(qx, x_scale, x_zp, self.packed, self.scale, self.zp, self.bias,
                                                  1.0, 0, torch.float32, act, [], algo)


# --------------------------------------------------------------------------- ONNX Runtime helpers
def ort_session(kind: str, w: torch.Tensor, b: torch.Tensor, threads: int):
    """A one-node ONNX Runtime graph y = x W^T + b: 'fp32', or 'u8s8'/'u8u8' + '-pt'/'-pc'."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    K, N = w.shape[1], w.shape[0]
    wt = w.T.contiguous().numpy()  # (K, N): ONNX MatMul's B
    inits = [numpy_helper.from_array(b.numpy(), "bias")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["M", K])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["M", N])
    if kind == "fp32":
        inits.append(numpy_helper.from_array(wt, "W"))
        nodes = [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "bias"], ["y"])]
        opset = [helper.make_opsetid("", 17)]
    else:
        signed = kind.startswith("u8s8")
        per_col = kind.endswith("-pc")
        amax = np.abs(wt).max(axis=0) if per_col else np.abs(wt).max(keepdims=True).reshape(1)
        if signed:
            scale = (amax / 127.0).astype(np.float32)
            q = np.clip(np.round(wt / scale), -127, 127).astype(np.int8)
            zp = np.zeros(scale.shape, np.int8)
        else:  # uint8 weights, zero point 128 (ORT's U8U8 with a symmetric range)
            scale = (amax / 127.0).astype(np.float32)
            q = (np.clip(np.round(wt / scale), -127, 127) + 128).astype(np.uint8)
            zp = np.full(scale.shape, 128, np.uint8)
        inits += [numpy_helper.from_array(q, "Wq"), numpy_helper.from_array(scale, "Ws"),
                  numpy_helper.from_array(zp, "Wz")]
        nodes = [helper.make_node("DynamicQuantizeMatMul", ["x", "Wq", "Ws", "Wz", "bias"], ["y"], domain="com.microsoft")]
        opset = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    graph = helper.make_graph(nodes, "g", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=opset)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


# --------------------------------------------------------------------------- timing
CLOCK = time.perf_counter  # --clock cpu: time.process_time (see main)


def interleave(sides: dict, rounds: int, inner: int) -> dict:
    """Median seconds per call of each side; sides rotate order every round."""
    names = list(sides)
    for n in names:
        sides[n]()
    times = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:
            t = CLOCK()
            for _ in range(inner):
                sides[n]()
            times[n].append((CLOCK() - t) / inner)
    return {n: statistics.median(v) for n, v in times.items()}


def hot_study(rounds: int, threads: int, log) -> dict:
    """GEMMs run back to back on one weight, as ALBERT's shared layer runs them (its weights stay
    in cache between calls), unlike gemm_study, whose sides evict each other's weights: fp32
    oneDNN (plain and pre-packed) against ONNX Runtime's MLAS, and int8 FBGEMM (dynamic,
    per-channel, reduce_range: what the int8 engine runs below 128 rows) against ONNX Runtime's
    DynamicQuantizeMatMul (u8u8 and u8s8, per column), at 16 and 1024 rows."""
    g = torch.Generator().manual_seed(0)
    out = {}
    for K, N, label in SHAPES:
        w, b = torch.randn(N, K, generator=g) * 0.02, torch.zeros(N)
        sessions = {kind: ort_session(kind, w, b, threads) for kind in ("fp32", "u8u8-pc", "u8s8-pc")}
        fbgemm = fbgemm_pack(w, b, True)
        for M in (16, 1024):
            x = torch.randn(M, K, generator=g)
            x_np, pw = x.numpy(), torch.ops.mkldnn._reorder_linear_weight(w, M)
            sides = {
                "onednn": lambda: torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], ""),
                "onednn-pk": lambda: torch.ops.mkldnn._linear_pointwise(x, pw, b, "none", [], ""),
                "ort": lambda: sessions["fp32"].run(None, {"x": x_np}),
                "int8 fbgemm-dyn pc rr": lambda: torch.ops.quantized.linear_dynamic(x, fbgemm, True),
                "int8 ort u8u8-pc": lambda: sessions["u8u8-pc"].run(None, {"x": x_np}),
                "int8 ort u8s8-pc": lambda: sessions["u8s8-pc"].run(None, {"x": x_np}),
            }
            for f in sides.values():  # warm: packs, caches
                f()
            med = interleave(sides, rounds, 200 if M == 16 else 10)
            rates = {n: 2 * M * K * N / t / 1e9 for n, t in med.items()}
            out[f"{M}x{label}"] = rates
            log(f"  M={M:<5} {label:8} K={K:<5} N={N:<5} " + "  ".join(f"{n}={r:.0f}" for n, r in rates.items()))
    return out


def gemm_study(rounds: int, threads: int, use_ort: bool, log) -> dict:
    g = torch.Generator().manual_seed(0)
    out = {}
    for K, N, label in SHAPES:
        w = torch.randn(N, K, generator=g) * 0.02
        b = torch.randn(N, generator=g) * 0.02
        packed_fp32 = {}
        fb = {(pc, rr): fbgemm_pack(w, b, pc) for pc in (False, True) for rr in (False, True)}
        onednn = OnednnInt8(w, b, per_channel=True)
        sessions = {}
        if use_ort:
            for kind in ("fp32", "u8s8-pt", "u8s8-pc", "u8u8-pt", "u8u8-pc"):
                sessions[kind] = ort_session(kind, w, b, threads)
        for M in ROWS:
            x = torch.randn(M, K, generator=g)
            x_np = x.numpy()
            if M not in packed_fp32:
                packed_fp32[M] = torch.ops.mkldnn._reorder_linear_weight(w, M)
            pw = packed_fp32[M]
            qx, xs, xz = quantize_u7(x)
            sides = {
                "fp32 mkl": lambda: F.linear(x, w, b),
                "fp32 onednn": lambda: torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], ""),
                "fp32 onednn-pk": lambda: torch.ops.mkldnn._linear_pointwise(x, pw, b, "none", [], ""),
            }
            for (pc, rr), p in fb.items():
                name = f"int8 fbgemm-dyn {'pc' if pc else 'pt'}{' rr' if rr else ''}"
                sides[name] = (lambda p, rr: lambda: torch.ops.quantized.linear_dynamic(x, p, rr))(p, rr)
            sides["int8 fbgemm-q pc (static act)"] = lambda: torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32(
                x, xs, xz, fb[(True, True)])
            sides["int8 onednn-u7 pc (gemm only)"] = lambda: onednn(qx, xs, xz)
            sides["int8 onednn-u7 pc (+act quant)"] = lambda: onednn(*quantize_u7(x))
            for kind, s in sessions.items():
                sides[f"{'fp32' if kind == 'fp32' else 'int8'} ort {kind}"] = (lambda s: lambda: s.run(None, {"x": x_np}))(s)
            inner = max(1, int(2e8 // (M * K * N)))
            med = interleave(sides, rounds, inner)
            ops = 2.0 * M * K * N
            key = f"{M}x{K}x{N}"
            out[key] = {"label": label, "M": M, "K": K, "N": N,
                        "seconds": med, "gops": {n: ops / t / 1e9 for n, t in med.items()}}
            best32 = max(v for n, v in out[key]["gops"].items() if n.startswith("fp32"))
            log(f"  M={M:<5} {label:<8} K={K:<5} N={N:<5} "
                + "  ".join(f"{n.split(' ', 1)[1]}={v:.0f}" for n, v in out[key]["gops"].items())
                + f"  (best fp32 {best32:.0f})")
    return out


def accuracy_check(log) -> dict:
    """Max |int8 kernel - exact integer reference| per kernel: shows u8 x s8 saturation without VNNI."""
    g = torch.Generator().manual_seed(1)
    K, N, M = 768, 768, 64
    w = torch.randn(N, K, generator=g) * 0.02
    b = torch.zeros(N)
    x = torch.randn(M, K, generator=g)
    q, scale = quantize_weight(w, True)
    res = {}
    for name, hi in (("u8 0..255", 255), ("u7 0..127", 127)):
        lo_, hi_ = float(x.min()), float(x.max())
        s = (hi_ - lo_) / hi
        zp = int(round(-lo_ / s))
        qx = torch.clamp(torch.round(x / s) + zp, 0, hi).to(torch.uint8)
        exact = ((qx.float() - zp) * s) @ (q.float() * scale[:, None]).T
        y = OnednnInt8(w, b)(qx, s, zp)
        res[f"onednn {name}"] = (y - exact).abs().max().item() / exact.abs().max().item()
    for rr in (False, True):
        p = fbgemm_pack(w, b, True)
        y = torch.ops.quantized.linear_dynamic(x, p, rr)
        res[f"fbgemm dyn rr={rr} vs fp32"] = (y - x @ w.T).abs().max().item() / (x @ w.T).abs().max().item()
    for k, v in res.items():
        log(f"  {k:<28} relative max error {v:.2e}")
    return res


def epilogue_study(rounds: int, log) -> dict:
    """The non-GEMM work of one ALBERT-base layer at 32 x 128 tokens (ms per call)."""
    g = torch.Generator().manual_seed(2)
    B, S, H, I, heads = 32, 128, 768, 3072, 12
    h = torch.randn(B * S, H, generator=g)
    u = torch.randn(B * S, I, generator=g)
    ln = torch.nn.LayerNorm(H)
    q = torch.randn(B, heads, S, H // heads, generator=g)
    sides = {
        "layernorm 4096x768": lambda: F.layer_norm(h, (H,), ln.weight, ln.bias, 1e-12),
        "gelu tanh 4096x3072": lambda: F.gelu(u, approximate="tanh"),
        "residual add 4096x768": lambda: h + h,
        "bias add 4096x3072": lambda: u + u[0],
        "quant u7 4096x768": lambda: quantize_u7(h),
        "quant u7 4096x3072": lambda: quantize_u7(u),
        "quant dyn (torch) 4096x3072": lambda: torch.quantize_per_tensor_dynamic(u, torch.quint8, True),
        "sdpa 32x12x128x64": lambda: F.scaled_dot_product_attention(q, q, q),
    }
    med = interleave(sides, rounds, 3)
    for n, t in med.items():
        log(f"  {n:<30} {t * 1e3:7.2f} ms")
    return {n: t * 1e3 for n, t in med.items()}


# --------------------------------------------------------------------------- engine profile
BASE_V2 = dict(vocab_size=30000, embedding_size=128, hidden_size=768, num_hidden_layers=12,
               num_attention_heads=12, intermediate_size=3072, hidden_act="gelu_new")


class _Timer:
    def __init__(self):
        self.seconds: dict = {}

    def wrap(self, label, fn):
        def timed(*args, **kwargs):
            t = CLOCK()
            out = fn(*args, **kwargs)
            self.seconds[label] = self.seconds.get(label, 0.0) + CLOCK() - t
            return out
        return timed


def engine_profile(shapes, rounds: int, log) -> dict:
    """Time per kernel of one forward of the inference engine (fp32 and int8), by operation, with
    the GOP/s it reaches: to set beside the isolated kernels' rates (gemm section) and their best."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from minialbert import fast
    from minialbert.config import AlbertConfig
    from minialbert.model import AlbertModel

    torch.manual_seed(0)
    model = AlbertModel(AlbertConfig(**BASE_V2)).eval()
    H, I = BASE_V2["hidden_size"], BASE_V2["intermediate_size"]
    out = {}
    for int8 in (False, True):
        engine = fast.InferenceEngine(model, int8=int8)
        for batch, seq in shapes:
            ids = torch.randint(5, 30000, (batch, seq))
            timer = _Timer()
            real_ops, real_sdpa, real_ln = engine._ops, F.scaled_dot_product_attention, torch.layer_norm

            def ops(base):
                o = real_ops(base)

                class Timed:
                    bind = o.bind
                    linear = timer.wrap("qkv / projection / pooler GEMM", o.linear)
                    linear_act = timer.wrap("ffn up GEMM + GELU", o.linear_act)

                    @staticmethod
                    def linear_add(x, bound, residual):
                        label = "attention out GEMM + residual" if x.shape[-1] == H else "ffn down GEMM + residual"
                        return timer.wrap(label, o.linear_add)(x, bound, residual)
                return Timed

            engine._ops = ops
            F.scaled_dot_product_attention = timer.wrap("attention (sdpa)", real_sdpa)
            torch.layer_norm = timer.wrap("layer norm", real_ln)  # what fast/forward.py calls
            try:
                with torch.inference_mode():
                    engine(ids)
                    timer.seconds.clear()
                    reps = max(1, 256 // (batch * seq)) * rounds
                    t = CLOCK()
                    for _ in range(reps):
                        engine(ids)
                    total = (CLOCK() - t) / reps
            finally:
                del engine._ops
                F.scaled_dot_product_attention, torch.layer_norm = real_sdpa, real_ln
            tokens = batch * seq
            layer_ops = {"qkv / projection / pooler GEMM": 2 * tokens * H * 3 * H * 12 + 2 * tokens * 128 * H + 2 * batch * H * H,
                         "attention out GEMM + residual": 2 * tokens * H * H * 12,
                         "ffn up GEMM + GELU": 2 * tokens * H * I * 12,
                         "ffn down GEMM + residual": 2 * tokens * I * H * 12,
                         "attention (sdpa)": 2 * 2 * batch * seq * seq * H * 12}
            rows = {}
            for label, sec in sorted(timer.seconds.items(), key=lambda kv: -kv[1]):
                sec /= reps
                rows[label] = {"ms": sec * 1e3, "share": sec / total,
                               "gops": layer_ops[label] / sec / 1e9 if label in layer_ops else None}
            rows["other (embeddings, mask, Python)"] = {"ms": (total - sum(r["ms"] for r in rows.values()) / 1e3) * 1e3,
                                                         "share": None, "gops": None}
            key = f"{'int8' if int8 else 'fp32'} {batch}x{seq}"
            out[key] = {"total_ms": total * 1e3, "tokens_per_s": tokens / total, "ops": rows}
            log(f"  engine {key}: {total * 1e3:.1f} ms per forward ({tokens / total:.0f} tokens/s)")
            for label, r in rows.items():
                log(f"    {label:<34} {r['ms']:9.2f} ms" + (f" {100 * r['share']:5.1f}%" if r["share"] else "")
                    + (f" {r['gops']:7.1f} GOP/s" if r["gops"] else ""))
    return out


_OP_SHAPES = {"qkv / projection / pooler GEMM": (768, 2304), "attention out GEMM + residual": (768, 768),
              "ffn up GEMM + GELU": (768, 3072), "ffn down GEMM + residual": (3072, 768)}


def profile_markdown(result: dict) -> str:
    """The engine's time per operation against the kernels' rates on the same shapes."""
    gemm = result.get("gemm", {})
    lines = [f"CPU: {result['cpu']}; {result['threads']} thread(s), {result['clock']} clock.", "",
             "| engine forward | operation | ms | share | GOP/s in the engine | same kernel alone | best kernel alone |",
             "|---|---|---:|---:|---:|---:|---|"]
    for key, prof in result.get("profile", {}).items():
        kind, shape = key.split()
        batch, seq = map(int, shape.split("x"))
        rows = batch * seq
        for label, r in prof["ops"].items():
            same = best = ""
            if label in _OP_SHAPES and f"{rows}x{_OP_SHAPES[label][0]}x{_OP_SHAPES[label][1]}" in gemm:
                rates = gemm[f"{rows}x{_OP_SHAPES[label][0]}x{_OP_SHAPES[label][1]}"]["gops"]
                if kind == "fp32":
                    mine = "fp32 onednn-pk" if rows < 128 else "fp32 onednn"
                else:
                    mine = "int8 fbgemm-dyn pc rr" if rows < 128 else "int8 onednn-u7 pc (+act quant)"
                same = f"{rates[mine]:.0f} ({mine.split(' ', 1)[1]})"
                pool = {n: v for n, v in rates.items() if n.startswith(kind)}
                if kind == "int8":  # full-range u8 x s8 saturates without VNNI: not a valid ceiling there
                    pool = {n: v for n, v in pool.items() if "u8s8" not in n} or pool
                name = max(pool, key=pool.get)
                best = f"{pool[name]:.0f} ({name.split(' ', 1)[1]})"
            share = f"{100 * r['share']:.0f}%" if r.get("share") else ""
            gops = f"{r['gops']:.0f}" if r.get("gops") else ""
            lines.append(f"| {key} ({prof['total_ms']:.0f} ms) | {label} | {r['ms']:.1f} | {share} | {gops} | {same} | {best} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default="kernels.json")
    p.add_argument("--skip", default="", help="comma list: gemm,hot,epilogue,accuracy,ort,profile")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="cpu: this process's CPU time, for a busy machine (use with --threads 1: with more "
                        "threads, spinning waits would count)")
    p.add_argument("--markdown", metavar="JSON", help="measure nothing: print JSON's profile table as markdown")
    args = p.parse_args(argv)
    if args.markdown:
        print(profile_markdown(json.loads(Path(args.markdown).read_text())))
        return 0
    global CLOCK
    if args.clock == "cpu":
        CLOCK = time.process_time
    skip = set(filter(None, args.skip.split(",")))
    torch.set_num_threads(args.threads)
    log = lambda m: print(m, flush=True)  # noqa: E731
    result = {"cpu": cpu_line(), "torch": torch.__version__, "threads": args.threads, "clock": args.clock,
              "load_average_at_start": os.getloadavg()}
    log(f"CPU: {result['cpu']}; torch {torch.__version__}, {args.threads} threads, {args.clock} clock")
    if "accuracy" not in skip:
        log("int8 kernel accuracy (u8 x s8 saturation check)")
        result["accuracy"] = accuracy_check(log)
    if "epilogue" not in skip:
        log("non-GEMM work of one layer at 32x128")
        result["epilogue_ms"] = epilogue_study(args.rounds, log)
    if "profile" not in skip:
        log("inference engine, time per operation of one forward")
        result["profile"] = engine_profile([(1, 16), (8, 128)], args.rounds, log)
    if "hot" not in skip and "ort" not in skip:
        log("GEMMs back to back on one weight (a shared layer's weights stay cached), GOP/s")
        result["hot"] = hot_study(args.rounds, args.threads, log)
    if "gemm" not in skip:
        log("GEMMs, GOP/s (median over rounds)")
        result["gemm"] = gemm_study(args.rounds, args.threads, "ort" not in skip, log)
    result["load_average_at_end"] = os.getloadavg()
    Path(args.json).write_text(json.dumps(result, indent=2))
    log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
