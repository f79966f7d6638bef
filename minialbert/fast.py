"""The fused inference path: the same equations as model.py, fewer and faster kernels.

`AlbertModel.forward` calls `fast_forward` when nothing needs gradients or per-layer outputs
(eval mode, under torch.no_grad()/inference_mode(), no hidden states/attentions requested;
MINIALBERT_FAST=0 turns it off). tests/test_fast.py proves it equal to model.py and to
transformers. What it does differently, and why (measured on a 2-core AVX2 CPU, see README):

  * Linear layers run through oneDNN (`torch.ops.mkldnn._linear_pointwise`) instead of
    MKL's sgemm: about 1.5-2x the GFLOP/s on these shapes. oneDNN also fuses the epilogues:
    the FFN activation (GELU tanh/erf, ReLU) into the up-projection, and each residual add
    into the projection before its LayerNorm, so those never make an extra pass over memory.
  * Q, K and V come from one GEMM against the three weight matrices stacked (3H x H); the
    stacked copy is made once per shared layer and cached (see `_Prepared`).
  * Attention is torch's fused scaled_dot_product_attention; q/k/v are strided views of the
    one QKV output, so no copies are made to split heads.
  * No mask at all when every token is real; otherwise the same additive mask as model.py.

Anything oneDNN cannot do here (other devices, other activations, non-fp32/bf16 dtypes) falls
back to F.linear plus the activation from model.py, so the path stays exact and general.
"""

from __future__ import annotations

import sys
import weakref

import torch
import torch.nn.functional as F

from .model import ACTIVATIONS, AlbertOutput, additive_attention_mask

# Activations that oneDNN can apply inside the GEMM: config name -> (attr, algorithm).
_FUSED_ACT = {
    "gelu_new": ("gelu", "tanh"),
    "gelu_pytorch_tanh": ("gelu", "tanh"),
    "gelu": ("gelu", "none"),
    "gelu_python": ("gelu", "none"),
    "relu": ("relu", ""),
}

try:  # a CPU build with oneDNN (every x86/ARM wheel from pytorch.org has it)
    _LINEAR = torch.ops.mkldnn._linear_pointwise.default
    _LINEAR_ADD = torch.ops.mkldnn._linear_pointwise.binary
    _HAS_ONEDNN = torch.backends.mkldnn.is_available()
    # bf16 inner products need a CPU with bf16 instructions (AVX512-BF16/AMX); without them
    # oneDNN refuses the primitive, and plain F.linear (ATen's bf16 GEMM) is used instead.
    _ONEDNN_DTYPES = (torch.float32, torch.bfloat16) if torch.ops.mkldnn._is_mkldnn_bf16_supported() else (torch.float32,)
except (AttributeError, RuntimeError):  # pragma: no cover - builds without oneDNN
    _HAS_ONEDNN = False
    _ONEDNN_DTYPES = ()


_PLAIN = (torch.Tensor, torch.nn.Parameter)


def _onednn_ok(x: torch.Tensor, w: torch.Tensor) -> bool:
    # Tensor subclasses (quantized or sharded weights from other libraries) take F.linear.
    return (_HAS_ONEDNN and x.device.type == "cpu" and x.dtype in _ONEDNN_DTYPES
            and w.__class__ in _PLAIN and w.dtype == x.dtype)


# ---------------------------------------------------------------------------------------------
# Prepared weights of one layer module, cached and invalidated when any parameter changes.
# The key holds, for every parameter, its identity, storage pointer, in-place version
# counter, dtype and device: load_state_dict (copy_), optimizer steps, .to(), replacing a
# Parameter all change it. Only the stacked QKV weight is a copy (3H x H per distinct layer:
# ALBERT shares one layer, so this is ~7 MB for base); everything else is used in place.
# ---------------------------------------------------------------------------------------------
def _param_key(p: torch.Tensor) -> tuple:
    try:
        version = p._version
    except RuntimeError:  # inference tensors have no version counter: never cache those
        version = None
    return (p.data_ptr(), version, p.dtype, p.device)


def params_unchanged(refs: tuple, keys: tuple, params: tuple) -> bool:
    """True when `params` are the very tensors (weak refs), unmodified, that `keys` describe."""
    return (len(refs) == len(params) and all(r() is p for r, p in zip(refs, params))
            and all(k[1] is not None for k in keys) and keys == tuple(_param_key(p) for p in params))


class _Prepared:
    __slots__ = ("refs", "keys", "qkv_weight", "qkv_bias", "int8")

    def __init__(self, params, qkv_weight, qkv_bias):
        self.refs = tuple(weakref.ref(p) for p in params)
        self.keys = tuple(_param_key(p) for p in params)
        self.qkv_weight = qkv_weight
        self.qkv_bias = qkv_bias
        self.int8 = None  # the packed int8 QKV weight, made on first use by quantize.py's path


_CACHE: "weakref.WeakKeyDictionary[torch.nn.Module, _Prepared]" = weakref.WeakKeyDictionary()


def _qkv(attention) -> _Prepared:
    params = (attention.query.weight, attention.query.bias, attention.key.weight,
              attention.key.bias, attention.value.weight, attention.value.bias)
    cached = _CACHE.get(attention)
    if cached is not None and params_unchanged(cached.refs, cached.keys, params):
        return cached
    w = torch.cat([params[0], params[2], params[4]]).detach()
    b = torch.cat([params[1], params[3], params[5]]).detach()
    cached = _CACHE[attention] = _Prepared(params, w, b)
    return cached


def clear_cache() -> None:
    """Drop every prepared weight (they are rebuilt on the next forward)."""
    _CACHE.clear()


# ---------------------------------------------------------------------------------------------
# Kernels, with exact fallbacks
# ---------------------------------------------------------------------------------------------
def _linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    if _onednn_ok(x, w):
        return _LINEAR(x, w, b, "none", [], "")
    return F.linear(x, w, b)


def _linear_act(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, act: str) -> torch.Tensor:
    fused = _FUSED_ACT.get(act)
    if fused is not None and _onednn_ok(x, w):
        return _LINEAR(x, w, b, fused[0], [], fused[1])
    return ACTIVATIONS[act](F.linear(x, w, b))


def _linear_add(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, residual: torch.Tensor) -> torch.Tensor:
    """x W^T + b + residual, the add done inside the GEMM's epilogue when possible."""
    if _onednn_ok(x, w):
        return _LINEAR_ADD(x, residual, w, b, "add")
    return torch.add(F.linear(x, w, b), residual)


# ---------------------------------------------------------------------------------------------
# The forward pass
# ---------------------------------------------------------------------------------------------
def _embed(model, input_ids, token_type_ids, position_ids) -> torch.Tensor:
    emb = model.embeddings
    seq_len = input_ids.shape[1]
    x = F.embedding(input_ids, emb.word.weight)
    # Same sum order as model.py: word + token_type + position.
    if token_type_ids is None:
        x = x + emb.token_type.weight[0]
    else:
        x = x + F.embedding(token_type_ids, emb.token_type.weight)
    if position_ids is None:
        x = x + emb.position.weight[:seq_len]
    else:
        x = x + F.embedding(position_ids, emb.position.weight)
    return F.layer_norm(x, emb.norm.normalized_shape, emb.norm.weight, emb.norm.bias, emb.norm.eps)


class _Int8Ops:
    """The same three linear shapes with int8 GEMMs (quantize.py); epilogues done separately."""

    def __init__(self, cache: dict, quantize):
        self.cache, self.q = cache, quantize

    def linear(self, x, module_or_prepared, name):
        if isinstance(module_or_prepared, _Prepared):  # the fused QKV weight
            prep = module_or_prepared
            if prep.int8 is None:
                prep.int8 = self.q.pack(prep.qkv_weight, prep.qkv_bias)
            return self.q.linear_int8(x, prep.int8)
        return self.q.linear_int8(x, self.q.packed(self.cache, module_or_prepared.weight, module_or_prepared.bias))

    def linear_act(self, x, module, act):
        return ACTIVATIONS[act](self.linear(x, module, None))

    def linear_add(self, x, module, residual):
        return self.linear(x, module, None) + residual


class _FloatOps:
    @staticmethod
    def linear(x, module_or_prepared, name):
        if isinstance(module_or_prepared, _Prepared):
            return _linear(x, module_or_prepared.qkv_weight, module_or_prepared.qkv_bias)
        return _linear(x, module_or_prepared.weight, module_or_prepared.bias)

    @staticmethod
    def linear_act(x, module, act):
        return _linear_act(x, module.weight, module.bias, act)

    @staticmethod
    def linear_add(x, module, residual):
        return _linear_add(x, module.weight, module.bias, residual)


def _layer(layer, h: torch.Tensor, mask: torch.Tensor | None, act: str, ops) -> torch.Tensor:
    att = layer.attention
    batch, seq, hidden = h.shape
    heads, head_dim = att.num_heads, att.head_dim
    qkv = ops.linear(h, _qkv(att), "qkv").view(batch, seq, 3, heads, head_dim)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (batch, heads, seq, d_k), views
    context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    context = context.transpose(1, 2).reshape(batch, seq, hidden)
    norm = att.norm
    h = F.layer_norm(ops.linear_add(context, att.output, h), norm.normalized_shape, norm.weight, norm.bias, norm.eps)
    ff = layer.feed_forward
    u = ops.linear_act(h, ff.up, act)
    norm = ff.norm
    return F.layer_norm(ops.linear_add(u, ff.down, h), norm.normalized_shape, norm.weight, norm.bias, norm.eps)


def fast_forward(model, input_ids, attention_mask=None, token_type_ids=None, position_ids=None) -> AlbertOutput:
    """AlbertModel.forward for inference (no hidden states / attentions), fused kernels."""
    config = model.config
    h = _embed(model, input_ids, token_type_ids, position_ids)
    h = _linear(h, model.encoder.project.weight, model.encoder.project.bias)
    mask = None
    if attention_mask is not None and not bool(attention_mask.all()):
        mask = additive_attention_mask(attention_mask, h.dtype)
    act = config.hidden_act
    ops = _FloatOps
    quantize = sys.modules.get("minialbert.quantize")  # imported only by users of int8
    if quantize is not None and h.device.type == "cpu":
        cache = quantize.packs_for(model)
        if cache is not None:
            ops = _Int8Ops(cache, quantize)
    for layer in model.encoder.layer_calls():
        h = _layer(layer, h, mask, act, ops)
    pooled = None
    if model.pooler is not None:
        pooled = torch.tanh(ops.linear(h[:, 0], model.pooler, "pooler"))
    return AlbertOutput(h, pooled)
