"""ONNX export of a stock minialbert model: each shared weight stored once, fp32 or int8.

    minialbert export onnx MODEL OUT.onnx [--int8]

    from minialbert.export import export_onnx
    export_onnx("albert-base-v2", "albert/model.onnx")               # fp32, tokenizer files beside it
    export_onnx(model, "albert/model-int8.onnx", int8=True, tokenizer=tokenizer)

The graph has inputs input_ids, attention_mask, token_type_ids (int64, batch x sequence, both
axes dynamic) and outputs last_hidden_state (batch x sequence x H) and pooler_output (batch x H;
absent when the model has no pooler). The model's config travels in the file's metadata
(`minialbert_config`), so `Embedder.from_pretrained(folder, backend="onnxruntime")` needs
only the .onnx file and the tokenizer files written beside it.

Why the graph is written here, op by op, and not traced by torch.onnx.export:
  * one copy of every weight by construction: a module's weights become one initializer, however
    many layer calls use it. (torch's TorchScript exporter reaches shared weights through
    Identity nodes, and ONNX Runtime's quantize_dynamic then converts only the first use; its
    dynamo exporter keeps one copy but took 15-40 s for a 3-layer toy model on 2 busy cores and
    minutes for albert-base, too slow to export on the fly or in tests.)
  * int8 needs a rewrite of every weight MatMul anyway (below), with each shared int8 weight
    stored once, which is simplest to do while writing the graph.
  * Q, K and V run as one MatMul against the three weights stacked: one GEMM, and in int8 one
    quantization of the activation instead of three.
So the graph is a second transcription of model.py's equations. That is why only stock models
(fast.why_not_stock) are exported: a model whose code was changed would not be what the graph
computes. tests/test_export.py runs exports in ONNX Runtime against minialbert.

int8 (dynamic quantization, as ONNX Runtime's quantize_dynamic does it, but for every weight
MatMul): each weight matrix is quantized once, symmetric, per output column (or per tensor), to
int8 ("s8") or to uint8 with zero point 128 ("u8"); at run time DynamicQuantizeLinear turns the
activation into uint8 with its own min/max, MatMulInteger multiplies with int32 accumulation, and
the product is scaled back to float. ONNX Runtime fuses this pattern into its
DynamicQuantizeMatMul kernel. The word-embedding table is stored as float16 (it is a lookup,
not a GEMM; halves the largest remaining tensor): the file is about a third of the fp32 export.
On CPUs without VNNI, int8 x uint8 products are summed in int16 with saturation (vpmaddubsw); "u8"
weights avoid that (ONNX Runtime multiplies u8 x u8 with another instruction sequence) and
"s8" + reduce_range (7-bit weights) does too; plain "s8" is for VNNI CPUs.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import MinialbertError

OPSET = 20  # Gelu (with approximate="tanh") is an ONNX op from opset 20
IR_VERSION = 10  # readable by onnxruntime >= 1.17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class ExportError(MinialbertError):
    """A model or option that the ONNX export cannot handle."""


@dataclass(frozen=True)
class Int8Options:
    """How weights are quantized. weights: "s8" (int8, zero point 0) or "u8" (uint8, zero point 128)."""

    weights: str = "u8"
    per_channel: bool = True
    reduce_range: bool = False  # 7-bit weights (-63..63): no int16 saturation on CPUs without VNNI

    def __post_init__(self):
        if self.weights not in ("s8", "u8"):
            raise ExportError(f"int8 weights must be 's8' or 'u8', got {self.weights!r}")

    def describe(self) -> str:
        return (f"U8{self.weights.upper()} {'per-channel' if self.per_channel else 'per-tensor'}"
                + (" reduce_range" if self.reduce_range else ""))

    @classmethod
    def for_this_cpu(cls) -> "Int8Options":
        """The faster weights for an export that runs on this machine: "s8" (ONNX Runtime's U8S8
        kernel) where the CPU multiplies uint8 x int8 without saturating (VNNI, AMX), "u8" elsewhere.
        On a 2-core AVX-512 VNNI EPYC, s8 ran batch 1 x 16 at 1.23x ONNX Runtime's own
        quantize_dynamic U8S8 and 2.2x u8 (docs/guides/speed.md)."""
        from .plan import int8_without_saturation

        return cls(weights="s8" if int8_without_saturation() else "u8")


def _onnx():
    try:
        import onnx
    except ImportError:
        raise MinialbertError("ONNX export needs the onnx package: pip install 'minialbert[onnx]'") from None
    return onnx


# ---------------------------------------------------------------------------------------------
# A small graph builder: nodes get fresh output names; initializers are keyed by name, so a
# weight added twice (a shared module called again) is stored once.
# ---------------------------------------------------------------------------------------------
class _Graph:
    def __init__(self):
        self.onnx = _onnx()
        self.nodes: list = []
        self.initializers: dict = {}
        self._count = 0

    def has(self, name: str) -> bool:
        return name in self.initializers

    def const(self, name: str, value) -> str:
        if name not in self.initializers:
            array = np.asarray(value)  # (np.ascontiguousarray would make a 0-d scalar 1-d)
            self.initializers[name] = self.onnx.numpy_helper.from_array(np.require(array, requirements="C"), name)
        return name

    def scalar(self, value: float) -> str:
        return self.const(f"const_{np.float32(value)!r}", np.array(value, dtype=np.float32))

    def ints(self, *values: int) -> str:
        return self.const("const_i64_" + "_".join(map(str, values)), np.array(values, dtype=np.int64))

    def op(self, op_type: str, *inputs: str, outputs: int = 1, name: str | None = None, **attrs):
        self._count += 1
        base = name or f"{op_type.lower()}_{self._count}"
        outs = [base] if outputs == 1 else [f"{base}_{i}" for i in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), outs, name=f"n{self._count}_{op_type}",
                                                     **attrs))
        return outs[0] if outputs == 1 else outs


def _array(t: torch.Tensor, dtype=np.float32) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy().astype(dtype, copy=False)


def quantize_weight(w: np.ndarray, options: Int8Options) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K, N) float weight -> (quantized, scale, zero point), per column N or per tensor."""
    qmax = 63 if options.reduce_range else 127
    amax = np.abs(w).max(axis=0) if options.per_channel else np.abs(w).max(keepdims=True).reshape(1)
    scale = np.maximum(amax / qmax, np.float32(1e-12)).astype(np.float32)
    q = np.clip(np.rint(w / scale), -qmax, qmax)
    if options.weights == "s8":
        return q.astype(np.int8), scale, np.zeros(scale.shape, np.int8)
    return (q + 128).astype(np.uint8), scale, np.full(scale.shape, 128, np.uint8)


# ---------------------------------------------------------------------------------------------
# model.py's equations, as ONNX nodes
# ---------------------------------------------------------------------------------------------
class _AlbertGraph:
    def __init__(self, model, int8: Int8Options | None):
        self.g = _Graph()
        self.model = model
        self.config = model.config
        self.int8 = int8
        # The first path of every module; a shared module has one (named_modules skips repeats).
        self.names = {id(m): path for path, m in model.named_modules()}

    # y = x W^T + b, as MatMul against the (K, N) transposed weight, stored once under `name`
    def linear(self, x: str, weight: torch.Tensor, bias: torch.Tensor | None, name: str) -> str:
        g = self.g
        if self.int8 is None:
            if not g.has(name + ".weight"):
                g.const(name + ".weight", _array(weight).T)
            y = g.op("MatMul", x, name + ".weight")
        else:
            y = self._int8_matmul(x, weight, name)
        if bias is not None:
            y = g.op("Add", y, g.const(name + ".bias", _array(bias)))
        return y

    def _int8_matmul(self, x: str, weight: torch.Tensor, name: str) -> str:
        g = self.g
        wq, ws, wz = name + ".weight_quantized", name + ".weight_scale", name + ".weight_zero_point"
        if not g.has(wq):  # quantized once, whichever layer call comes first
            q, scale, zp = quantize_weight(_array(weight).T, self.int8)
            g.const(wq, q), g.const(ws, scale), g.const(wz, zp)
        xq, xs, xz = g.op("DynamicQuantizeLinear", x, outputs=3)
        acc = g.op("MatMulInteger", xq, wq, xz, wz)
        scale = g.op("Mul", xs, ws)
        return g.op("Mul", g.op("Cast", acc, to=self.g.onnx.TensorProto.FLOAT), scale)

    def module_linear(self, x: str, module: nn.Linear) -> str:
        return self.linear(x, module.weight, module.bias, self.names[id(module)])

    def layer_norm(self, x: str, module: nn.LayerNorm) -> str:
        name = self.names[id(module)]
        g = self.g
        return g.op("LayerNormalization", x, g.const(name + ".weight", _array(module.weight)),
                    g.const(name + ".bias", _array(module.bias)), axis=-1, epsilon=float(module.eps))

    def activation(self, x: str, act: str) -> str:
        g = self.g
        if act in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
            return g.op("Gelu", x, approximate="tanh")
        if act in ("gelu", "gelu_python"):
            return g.op("Gelu", x)
        if act == "quick_gelu":
            return g.op("Mul", x, g.op("Sigmoid", g.op("Mul", x, g.scalar(1.702))))
        if act in ("silu", "swish"):
            return g.op("Mul", x, g.op("Sigmoid", x))
        if act == "relu6":
            return g.op("Clip", x, g.scalar(0.0), g.scalar(6.0))
        if act == "linear":
            return x
        simple = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "mish": "Mish"}
        if act in simple:
            return g.op(simple[act], x)
        raise ExportError(f"activation {act!r} has no ONNX export")

    # 1. embeddings: LayerNorm(word[ids] + type[types] + position[0..seq-1])
    def embeddings(self, ids: str, types: str) -> str:
        g, emb = self.g, self.model.embeddings
        if self.int8 is not None:  # the vocabulary table is a lookup, not a GEMM: float16 halves it
            word = g.op("Cast", g.op("Gather", g.const("embeddings.word.weight_fp16", _array(emb.word.weight, np.float16)),
                                     ids), to=g.onnx.TensorProto.FLOAT)
        else:
            word = g.op("Gather", g.const("embeddings.word.weight", _array(emb.word.weight)), ids)
        x = g.op("Add", word, g.op("Gather", g.const("embeddings.token_type.weight", _array(emb.token_type.weight)), types))
        seq = g.op("Slice", g.op("Shape", ids), g.ints(1), g.ints(2))
        positions = g.op("Slice", g.const("embeddings.position.weight", _array(emb.position.weight)), g.ints(0), seq,
                         g.ints(0))
        return self.layer_norm(g.op("Add", x, positions), emb.norm)

    # (batch, seq) of 1/0 -> (batch, 1, 1, seq) of 0 / the most negative float, as model.py
    def additive_mask(self, mask: str) -> str:
        g = self.g
        keep = g.op("Cast", mask, to=g.onnx.TensorProto.BOOL)
        add = g.op("Where", keep, g.scalar(0.0), g.scalar(float(np.finfo(np.float32).min)))
        return g.op("Unsqueeze", add, g.ints(1, 2))

    # 2. attention: softmax(Q K^T / sqrt(d_k) + M) V, then W^O, residual, LayerNorm
    def attention(self, h: str, mask: str, att) -> str:
        g = self.g
        heads, d, hidden = att.num_heads, att.head_dim, att.num_heads * att.head_dim
        name = self.names[id(att)] + ".qkv"  # the three projections stacked: one GEMM
        w = torch.cat([att.query.weight, att.key.weight, att.value.weight])
        b = torch.cat([att.query.bias, att.key.bias, att.value.bias])
        q, k, v = g.op("Split", self.linear(h, w, b, name), g.ints(hidden, hidden, hidden), axis=-1, outputs=3)
        split = g.ints(0, 0, heads, d)  # (batch, seq, H) -> (batch, seq, heads, d_k)
        q = g.op("Transpose", g.op("Reshape", q, split), perm=[0, 2, 1, 3])
        k_t = g.op("Transpose", g.op("Reshape", k, split), perm=[0, 2, 3, 1])  # K^T per head
        v = g.op("Transpose", g.op("Reshape", v, split), perm=[0, 2, 1, 3])
        scores = g.op("Div", g.op("MatMul", q, k_t), g.scalar(math.sqrt(d)))
        if mask is not None:
            scores = g.op("Add", scores, mask)
        context = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        concat = g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), g.ints(0, 0, hidden))
        return self.layer_norm(g.op("Add", h, self.module_linear(concat, att.output)), att.norm)

    # 3. feed-forward: LayerNorm(x + act(x W_1 + b_1) W_2 + b_2)
    def feed_forward(self, h: str, ff) -> str:
        g = self.g
        u = self.activation(self.module_linear(h, ff.up), self.config.hidden_act)
        return self.layer_norm(g.op("Add", h, self.module_linear(u, ff.down)), ff.norm)

    def build(self):
        onnx, g, model = self.g.onnx, self.g, self.model
        ids, mask_in, types = INPUTS
        h = self.module_linear(self.embeddings(ids, types), model.encoder.project)
        mask = self.additive_mask(mask_in)
        for layer in model.encoder.layer_calls():  # 4. L layer calls; shared weights stored once
            h = self.feed_forward(self.attention(h, mask, layer.attention), layer.feed_forward)
        g.op("Identity", h, name="last_hidden_state")
        outputs = [onnx.helper.make_tensor_value_info("last_hidden_state", onnx.TensorProto.FLOAT,
                                                      ["batch", "sequence", self.config.hidden_size])]
        if model.pooler is not None:  # 5. pooler: tanh(W h_[CLS] + b)
            cls = g.op("Gather", h, g.const("const_i64_scalar_0", np.array(0, dtype=np.int64)), axis=1)
            g.op("Identity", g.op("Tanh", self.module_linear(cls, model.pooler)), name="pooler_output")
            outputs.append(onnx.helper.make_tensor_value_info("pooler_output", onnx.TensorProto.FLOAT,
                                                              ["batch", self.config.hidden_size]))
        inputs = [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.INT64, ["batch", "sequence"]) for n in INPUTS]
        graph = onnx.helper.make_graph(g.nodes, "minialbert", inputs, outputs, list(g.initializers.values()))
        proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                       producer_name="minialbert", ir_version=IR_VERSION)
        from . import __version__

        meta = {"minialbert_version": __version__, "minialbert_config": json.dumps(self.config.to_dict()),
                "minialbert_int8": self.int8.describe() if self.int8 else "none"}
        onnx.helper.set_model_props(proto, meta)
        return proto


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------
def build_onnx(model: nn.Module, *, int8: bool | Int8Options = False):
    """The ONNX ModelProto of a stock model (AlbertModel, or the encoder of a pre-training model)."""
    from .fast import why_not_stock

    reason = why_not_stock(model)
    if reason is not None:
        raise ExportError(f"cannot export this model to ONNX: {reason}. The export writes the graph of "
                          "minialbert's own model.py; export a model as minialbert builds it")
    if not hasattr(model, "encoder") and not hasattr(model, "mlm_head"):
        raise ExportError(f"cannot export an {type(model).__name__}: the ONNX graph is the encoder "
                          "(last_hidden_state, pooler_output); export its model.albert and apply the head to "
                          "those outputs")
    base = model if hasattr(model, "encoder") else model.albert
    options = Int8Options() if int8 is True else (int8 or None)
    with torch.no_grad():
        return _AlbertGraph(base, options).build()


def export_onnx(model: nn.Module | str | os.PathLike, path: str | os.PathLike, *, int8: bool | Int8Options = False,
                tokenizer=None, revision: str | None = None, cache_dir=None, local_files_only: bool = False,
                num_layer_calls: int | None = None) -> Path:
    """Write `model` as ONNX to `path` (atomically); return the path.

    model: a stock minialbert model, or a checkpoint folder / Hub id to load (its tokenizer is
    then written beside the export). tokenizer: an AlbertTokenizer (or a folder to load one
    from) to write beside the export when `model` is a module. int8: True for the default
    Int8Options (uint8 weights, per channel), or an Int8Options. num_layer_calls: the depth to
    export when loading a checkpoint (default: its own; a module exports as it is configured).
    """
    from .files import atomic_write
    from .tokenizer import AlbertTokenizer

    path = Path(path)
    if path.suffix != ".onnx":
        raise ExportError(f"the output file must end in .onnx, got {path}")
    if not isinstance(model, nn.Module):
        from .model import AlbertModel

        source = model
        model = AlbertModel.from_pretrained(source, revision=revision, cache_dir=cache_dir,
                                            local_files_only=local_files_only, num_layer_calls=num_layer_calls)
        if tokenizer is None:
            tokenizer = AlbertTokenizer.from_pretrained(source, revision=revision, cache_dir=cache_dir,
                                                        local_files_only=local_files_only)
    elif num_layer_calls is not None:
        raise ExportError("num_layer_calls applies when exporting a checkpoint path; a loaded model exports as its "
                          "config says (load it with from_pretrained(..., num_layer_calls=N))")
    elif isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = AlbertTokenizer.from_pretrained(tokenizer)
    proto = build_onnx(model, int8=int8)
    data = proto.SerializeToString()
    try:  # the export is a folder (the graph and the tokenizer files), made as save_pretrained makes one
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot write {path}: cannot make directory {path.parent} ({e.strerror or e})") from None
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    if tokenizer is not None:
        tokenizer.save_pretrained(path.parent)
    return path
