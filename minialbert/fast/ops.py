"""The engine's kernels: oneDNN linear layers with fused epilogues (exact fallbacks to F.linear),
the stacked QKV weight, weights derived once per engine (packed fp32/bf16 layouts, int8 packs) and
the two sets of linear operations the fused forward calls (_FloatOps, _Int8Ops)."""

from __future__ import annotations

import warnings
import weakref

import torch
import torch.nn.functional as F
from torch import nn

from .. import quantize
from ..model import ACTIVATIONS, SelfAttention
from ..plan import FIXED, Plan
from .act import gelu_tanh_

__all__ = ["clear_cache"]


# ---------------------------------------------------------------------------------------------
# Kernels, with exact fallbacks
# ---------------------------------------------------------------------------------------------
# Activations that oneDNN applies inside the GEMM: config name -> (attr, algorithm). Not the tanh
# GELU of ALBERT v2 ("gelu_new"): oneDNN's tanh-GELU post-op costs more than the GEMM's own
# output stage on AVX2 (a 1024x768x3072 fp32 GEMM: 70 ms alone, 110 ms with it fused, 81 ms with
# ATen's in-place gelu_ after it; scripts/profile_kernels.py), so that one runs in place afterwards.
_FUSED_ACT = {
    "gelu": ("gelu", "none"),
    "gelu_python": ("gelu", "none"),
    "relu": ("relu", ""),
}
# The tanh GELU inside the GEMM too, where the plan measured it faster (plan.gelu_tanh_fused: on
# AVX-512 ATen's tanh GELU is the slow part, and the post-op saves ~12% of the up-projection).
_FUSED_TANH = {"gelu_new": ("gelu", "tanh"), "gelu_pytorch_tanh": ("gelu", "tanh")}
# Activations applied in place on a GEMM's fresh output (no new tensor; see act.py).
_INPLACE_ACT = {"gelu_new": gelu_tanh_, "gelu_pytorch_tanh": gelu_tanh_}


def _activate(y: torch.Tensor, act: str) -> torch.Tensor:
    """act(y) for a GEMM output nobody else holds: in place when possible."""
    inplace = _INPLACE_ACT.get(act)
    return inplace(y) if inplace is not None else ACTIVATIONS[act](y)

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
# Prepared weights, cached and invalidated when any parameter changes. The key holds, for every
# parameter, its identity, storage pointer, in-place version counter, dtype and device:
# load_state_dict (copy_), optimizer steps, .to(), replacing a Parameter all change it. Only the
# stacked QKV weight is a copy (3H x H per distinct attention module: ALBERT shares one layer, so
# this is ~7 MB for base); everything else is used in place.
# ---------------------------------------------------------------------------------------------
def _param_key(p: torch.Tensor) -> tuple:
    try:
        version = p._version
    except RuntimeError:  # inference tensors have no version counter: never cache those
        version = None
    return (p.data_ptr(), version, p.dtype, p.device)


def _params_unchanged(refs: tuple, keys: tuple, params: tuple) -> bool:
    """True when `params` are the very tensors (weak refs), unmodified, that `keys` describe."""
    return (len(refs) == len(params) and all(r() is p for r, p in zip(refs, params))
            and all(k[1] is not None for k in keys) and keys == tuple(_param_key(p) for p in params))


class _Prepared:
    __slots__ = ("refs", "keys", "qkv_weight", "qkv_bias")

    def __init__(self, params, qkv_weight, qkv_bias):
        self.refs = tuple(weakref.ref(p) for p in params)
        self.keys = tuple(_param_key(p) for p in params)
        self.qkv_weight = qkv_weight
        self.qkv_bias = qkv_bias


_CACHE: "weakref.WeakKeyDictionary[nn.Module, _Prepared]" = weakref.WeakKeyDictionary()


def _qkv(attention: SelfAttention) -> _Prepared:
    linears = (attention.query, attention.key, attention.value)
    params = tuple(p for lin in linears for p in (lin.weight, lin.bias) if p is not None)
    cached = _CACHE.get(attention)
    if cached is not None and _params_unchanged(cached.refs, cached.keys, params):
        return cached
    # Made outside inference mode (the engine usually runs inside it): an ordinary tensor has a
    # version counter, so the weights derived from it (int8 packs, small-batch layouts) can be
    # cached against it instead of being remade on every call.
    with torch.inference_mode(False):
        w = torch.cat([lin.weight for lin in linears]).detach()
        b = torch.cat([lin.bias if lin.bias is not None else lin.weight.new_zeros(lin.weight.shape[0])
                       for lin in linears]).detach()
    cached = _CACHE[attention] = _Prepared(params, w, b)
    return cached


def clear_cache() -> None:
    """Drop every prepared weight (they are rebuilt on the next forward)."""
    _CACHE.clear()


class _PackCache:
    """Per-weight derived tensors (int8 packs, pre-packed fp32 weights), owned by an engine.

    Keyed by id(weight) and checked like the QKV cache: the very tensors (weak refs), unmodified
    (version counters), else rebuilt. Inference tensors (no version counter) are never cached."""

    def __init__(self):
        self.entries: dict = {}
        self.warned = False

    def get(self, weight: torch.Tensor, bias: torch.Tensor | None, make):
        params = (weight,) if bias is None else (weight, bias)
        hit = self.entries.get(id(weight))
        if hit is not None and _params_unchanged(hit[0], hit[1], params):
            return hit[2]
        result = make(weight, bias)
        keys = tuple(_param_key(p) for p in params)
        if any(k[1] is None for k in keys) and not self.warned:
            self.warned = True
            warnings.warn("the model's parameters are inference tensors (made under torch.inference_mode()), "
                          "whose changes the engine cannot see, so it re-derives its packed weights on every "
                          "call (slow, above all with int8); load the model outside inference_mode",
                          UserWarning, stacklevel=5)
        if all(k[1] is not None for k in keys):
            # Drop entries of tensors that no longer exist (a rebuilt QKV weight, a replaced Parameter).
            self.entries = {k: v for k, v in self.entries.items() if all(r() is not None for r in v[0])}
            self.entries[id(weight)] = (tuple(weakref.ref(p) for p in params), keys, result)
        return result

    def nbytes(self) -> int:
        total = 0
        for *_, v in self.entries.values():
            total += v.nbytes() if hasattr(v, "nbytes") and callable(v.nbytes) else v.numel() * v.element_size()
        return total


def _weights(module_or_prepared) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(module_or_prepared, _Prepared):  # the fused QKV weight
        return module_or_prepared.qkv_weight, module_or_prepared.qkv_bias
    return module_or_prepared.weight, module_or_prepared.bias


def _rows(x: torch.Tensor) -> int:
    return x.numel() // x.shape[-1] if x.shape[-1] else 0


# Below the plan's fp32_packed_below rows (tokens; 128 in the fixed plan) a GEMM reads each weight
# for little arithmetic, and oneDNN spends a good part of the call re-laying the weight out; a copy
# laid out once (oneDNN's blocked format) makes batch-1 calls ~13% faster (1 x 16 on albert-base,
# one AVX2 core: 83 -> 72 ms), for one extra fp32 copy of the weights (~28 MB for base), made on
# the first small call.


_PACKED_DTYPES = (torch.float32, torch.bfloat16)


class _FloatOps:
    """The three linear shapes of a layer in the model's own dtype (oneDNN when it can).

    bind(module, x) resolves a Linear's weights for inputs like x once (the packed layout below
    the plan's row count; whether oneDNN can run it), so that the fused forward looks each weight
    up once per call, not once per layer call (ALBERT calls one layer 12 times)."""

    def __init__(self, packs: _PackCache, plan: Plan = FIXED):
        self.packs = packs
        self.small_rows = plan.fp32_packed_below
        self.fused_act = {**_FUSED_ACT, **_FUSED_TANH} if plan.gelu_tanh_fused else _FUSED_ACT

    def bind(self, module_or_prepared, x: torch.Tensor) -> tuple:
        w, b = _weights(module_or_prepared)
        onednn = _onednn_ok(x, w)
        # fp32 and bf16 alike (bf16 at 1 x 16 on an AVX512-BF16 CPU: 40 -> 26 ms, one thread)
        if onednn and _rows(x) < self.small_rows and x.dtype in _PACKED_DTYPES:
            rows = _rows(x)
            w = self.packs.get(w, None, lambda w, _: torch.ops.mkldnn._reorder_linear_weight(w.detach(), rows))
        return w, b, onednn

    @staticmethod
    def linear(x, bound):
        w, b, onednn = bound
        return _LINEAR(x, w, b, "none", [], "") if onednn else F.linear(x, w, b)

    def linear_act(self, x, bound, act):
        w, b, onednn = bound
        fused = self.fused_act.get(act)
        if fused is not None and onednn:
            return _LINEAR(x, w, b, fused[0], [], fused[1])
        return _activate(_LINEAR(x, w, b, "none", [], "") if onednn else F.linear(x, w, b), act)

    @staticmethod
    def linear_add(x, bound, residual):
        """x W^T + b + residual, the add done inside the GEMM's epilogue when possible."""
        w, b, onednn = bound
        return _LINEAR_ADD(x, residual, w, b, "add") if onednn else torch.add(F.linear(x, w, b), residual)


class _Int8Ops:
    """The same three linear shapes with int8 GEMMs (quantize.py), epilogues fused where it can."""

    def __init__(self, packs: _PackCache, plan: Plan = FIXED):
        self.packs = packs  # the engine's: packed weights live as long as the engine
        self.kw = {"onednn_rows": plan.int8_onednn_rows, "full_range": plan.int8_full_range}
        self.fused_act = {**_FUSED_ACT, **_FUSED_TANH} if plan.gelu_tanh_fused else _FUSED_ACT

    def bind(self, module_or_prepared, x: torch.Tensor) -> quantize.Int8Linear:
        w, b = _weights(module_or_prepared)
        return self.packs.get(w, b, quantize.Int8Linear)

    def linear(self, x, bound):
        return quantize.linear(x, bound, **self.kw)

    def linear_act(self, x, bound, act):
        fused = self.fused_act.get(act)
        if fused is not None and fused[1] != "tanh":
            return quantize.linear(x, bound, fused[0], **self.kw)
        if fused is not None and _rows(x) >= self.kw["onednn_rows"]:  # tanh GELU in oneDNN's post-op
            return quantize.linear(x, bound, "gelu_tanh", **self.kw)
        return _activate(quantize.linear(x, bound, **self.kw), act)

    def linear_add(self, x, bound, residual):
        return quantize.linear_add(x, bound, residual, **self.kw)
