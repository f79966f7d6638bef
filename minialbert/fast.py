"""The inference engine: model.py's equations through fewer, faster kernels, for stock models only.

Calling the model runs model.py; the engine is an optimisation that refuses to run anything it
was not built for.

    from minialbert import AlbertModel, InferenceEngine
    model = AlbertModel.from_pretrained("albert-base-v2")
    engine = InferenceEngine(model)               # InferenceEngine(model, int8=True): int8 GEMMs
    with torch.inference_mode():
        out = engine(input_ids, attention_mask=mask)   # the AlbertOutput model(...) would give

`Embedder` and `FillMask` (and so the CLI) call their model through an engine. Before every call
the engine checks the model (`why_not_stock`, below, plus eval mode and no gradients wanted). If
anything is not what minialbert builds, it calls the model itself, which runs model.py with your
changes, and warns once per reason with a line that names what it found, e.g.

    fast inference engine not used: encoder.groups.0.0.attention is a GatedSelfAttention, not
    SelfAttention; running the model's own forward instead

tests/test_fast.py proves the fused path equal to model.py (every sharing layout) and to
transformers. What it does differently, and why (measured on a 2-core AVX2 CPU, see README):

  * Linear layers run through oneDNN (`torch.ops.mkldnn._linear_pointwise`) instead of
    MKL's sgemm: about 1.5-2x the GFLOP/s on these shapes. oneDNN also fuses the epilogues:
    the FFN activation (GELU tanh/erf, ReLU) into the up-projection, and each residual add
    into the projection before its LayerNorm, so those never make an extra pass over memory.
  * Q, K and V come from one GEMM against the three weight matrices stacked (3H x H); the
    stacked copy is made once per distinct attention module and cached (see `_Prepared`).
  * Attention is torch's fused scaled_dot_product_attention; q/k/v are strided views of the
    one QKV output, so no copies are made to split heads.
  * No mask at all when every token is real; otherwise the same additive mask as model.py.
  * int8=True: every encoder Linear (and the pooler) through FBGEMM's dynamic int8 GEMM
    (quantize.py); the epilogues then run separately. The MLM/SOP heads stay fp32.

Anything oneDNN cannot do here (other devices, other activations, non-fp32/bf16 dtypes) falls
back to F.linear plus the activation from model.py, so the path stays exact and general.
"""

from __future__ import annotations

import warnings
import weakref

import torch
import torch.nn.functional as F
from torch import nn

from . import model as reference
from . import quantize
from .errors import MinialbertError, ModelInputError
from .model import (
    ACTIVATIONS,
    STOCK_ACTIVATIONS,
    STOCK_FUNCTIONS,
    STOCK_METHODS,
    AlbertForMaskedLM,
    AlbertForPreTraining,
    AlbertLayer,
    AlbertModel,
    AlbertOutput,
    AlbertPreTrainingOutput,
    Embeddings,
    Encoder,
    FeedForward,
    MLMHead,
    SelfAttention,
    SOPHead,
    additive_attention_mask,
    check_inputs,
)

__all__ = ["InferenceEngine", "EngineFallbackWarning", "why_not_stock", "fused_forward", "clear_cache"]


# ---------------------------------------------------------------------------------------------
# Is this model stock? The engine computes model.py's equations from the weights alone, so it
# may run only when the model's code is exactly model.py's: the exact classes (a subclass may
# override anything), the methods recorded when model.py was imported (monkeypatching), no hooks
# (they may change any output), and every sub-module where model.py put it, of the exact type.
# ---------------------------------------------------------------------------------------------
_TOP_CLASSES = (AlbertModel, AlbertForPreTraining, AlbertForMaskedLM)
_NONE = type(None)
# For each stock class, the sub-modules its forward uses and the exact types they must have.
_LAYOUT: dict[type, dict[str, tuple[type, ...]]] = {
    AlbertModel: {"embeddings": (Embeddings,), "encoder": (Encoder,), "pooler": (nn.Linear, _NONE)},
    AlbertForPreTraining: {"albert": (AlbertModel,), "mlm_head": (MLMHead,), "sop_head": (SOPHead, _NONE)},
    AlbertForMaskedLM: {"albert": (AlbertModel,), "mlm_head": (MLMHead,), "sop_head": (SOPHead, _NONE)},
    Embeddings: {"word": (nn.Embedding,), "position": (nn.Embedding,), "token_type": (nn.Embedding,),
                 "norm": (nn.LayerNorm,), "dropout": (nn.Dropout,)},
    Encoder: {"project": (nn.Linear,)},  # its layers are checked through layer_calls(), below
    AlbertLayer: {"attention": (SelfAttention,), "feed_forward": (FeedForward,)},
    SelfAttention: {"query": (nn.Linear,), "key": (nn.Linear,), "value": (nn.Linear,), "output": (nn.Linear,),
                    "norm": (nn.LayerNorm,), "attention_dropout": (nn.Dropout,), "output_dropout": (nn.Dropout,)},
    FeedForward: {"up": (nn.Linear,), "down": (nn.Linear,), "norm": (nn.LayerNorm,), "dropout": (nn.Dropout,)},
    MLMHead: {"dense": (nn.Linear,), "norm": (nn.LayerNorm,)},
    SOPHead: {"dropout": (nn.Dropout,), "classifier": (nn.Linear,)},
}
_MISSING = object()


def _resolve(cls: type, name: str):
    """What `cls.name` resolves to, without invoking descriptors (the function, not a bound method)."""
    for base in cls.__mro__:
        if name in base.__dict__:
            return base.__dict__[name]
    return _MISSING


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _class_problem(cls: type) -> str | None:
    """Has a method of a stock class been replaced since model.py was imported?"""
    for name, original in STOCK_METHODS[cls].items():
        if _resolve(cls, name) is not original:
            return f"{cls.__name__}.{name} was replaced (it is no longer the function model.py defines)"
    return None


def _module_problem(path: str, module: nn.Module, hidden_act: str, classes_seen: dict,
                    eval_mode: bool) -> str | None:
    """What makes one module non-stock (or, with eval_mode, not in eval mode), or None."""
    if eval_mode and module.training:
        return f"{path or 'the model'} is in training mode (dropout active); call model.eval()"
    cls = type(module)
    if cls is nn.ModuleList:  # a container, never called; _layers_problem checks what it holds
        return None
    methods = STOCK_METHODS.get(cls)
    if methods is None:
        return f"{path or 'the model'} is a {cls.__name__}, a module the engine was not built for"
    if cls not in classes_seen:
        classes_seen[cls] = _class_problem(cls)
    if classes_seen[cls] is not None:
        return classes_seen[cls]
    if not module.__dict__.keys().isdisjoint(methods):
        name = next(n for n in methods if n in module.__dict__)
        return f"{_join(path, name)} was replaced on the instance"
    if module._forward_hooks or module._forward_pre_hooks:
        return f"{path or 'the model'} has a forward hook or pre-hook"
    layout = _LAYOUT.get(cls)
    if layout is not None:
        children = module._modules
        for name, allowed in layout.items():
            child = children[name] if name in children else module.__dict__.get(name, _MISSING)
            if type(child) not in allowed:
                got = "missing" if child is _MISSING else f"a {type(child).__name__}"
                return f"{_join(path, name)} is {got}, not {allowed[0].__name__}"
        if cls is FeedForward or cls is MLMHead:
            if module.act is not STOCK_ACTIVATIONS.get(hidden_act):
                return f"{_join(path, 'act')} is not the config's activation {hidden_act!r}"
        elif cls is Encoder:
            return _layers_problem(path, module)
    elif cls is nn.Embedding and module.max_norm is not None:
        return f"{path} renormalizes its rows (max_norm={module.max_norm})"
    return None


def _layers_problem(path: str, encoder: Encoder) -> str | None:
    """The encoder's layers are AlbertLayers in ModuleLists, as model.py builds them."""
    if encoder.config.sharing == "all":  # groups: ModuleList of G ModuleLists of inner_group_num layers
        outer = getattr(encoder, "groups", None)
        if type(outer) is not nn.ModuleList:
            return f"{_join(path, 'groups')} is a {type(outer).__name__}, not ModuleList"
        lists = [(f"groups.{g}", group) for g, group in enumerate(outer)]
    else:
        lists = [("layers", getattr(encoder, "layers", None))]
    for name, layers in lists:
        if type(layers) is not nn.ModuleList:
            return f"{_join(path, name)} is a {type(layers).__name__}, not ModuleList"
        for i, layer in enumerate(layers):
            if type(layer) is not AlbertLayer:
                return f"{_join(path, name)}.{i} is a {type(layer).__name__}, not AlbertLayer"
    return None


def why_not_stock(model: nn.Module, *, eval_mode: bool = False) -> str | None:
    """None when `model` is exactly what minialbert builds, else one line that says what is not.

    Stock means: an AlbertModel, AlbertForPreTraining or AlbertForMaskedLM (exact classes, not
    subclasses) whose every sub-module is where model.py puts it and of the exact class it
    builds (torch's Linear, LayerNorm, Embedding, Dropout included); every method as it was when
    model.py was imported (class or instance monkeypatching is caught); no forward hooks or
    pre-hooks (on any module, or registered globally); the config's activation. It says nothing
    about the weights, dtype or device, which are free. With eval_mode=True every module must
    also be in eval mode. Reusable by anything that must refuse non-stock models (an exporter,
    another engine).
    """
    cls = type(model)
    if cls not in _TOP_CLASSES:
        return f"the model is a {cls.__name__}, not AlbertModel, AlbertForPreTraining or AlbertForMaskedLM"
    hooks = torch.nn.modules.module
    if hooks._global_forward_hooks or hooks._global_forward_pre_hooks:
        return "a global forward hook or pre-hook is registered (torch.nn.modules.module.register_module_forward_hook)"
    for name, original in STOCK_FUNCTIONS.items():
        if getattr(reference, name, None) is not original:
            return f"minialbert.model.{name} was replaced"
    hidden_act = getattr(getattr(model, "config", None), "hidden_act", None)
    classes_seen: dict = {}
    # Every module once (shared layers are one module), parents first: model.named_modules()
    # without its recursive generators, which cost more than the checks on a 12-layer model.
    stack, seen = [("", model)], set()
    while stack:
        path, module = stack.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        problem = _module_problem(path, module, hidden_act, classes_seen, eval_mode)
        if problem is not None:
            return problem
        stack.extend((f"{path}.{name}" if path else name, child)
                     for name, child in reversed(module._modules.items()) if child is not None)
    return None


class EngineFallbackWarning(UserWarning):
    """The inference engine ran the model's own forward instead of the fused path."""


_WARNED: set[str] = set()


def _warn_once(reason: str) -> None:
    if reason not in _WARNED:
        _WARNED.add(reason)
        warnings.warn(f"fast inference engine not used: {reason}; running the model's own forward instead",
                      EngineFallbackWarning, stacklevel=3)


# ---------------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------------
class InferenceEngine:
    """Fused inference for a stock minialbert model; the model's own forward for anything else.

    engine = InferenceEngine(model, int8=False)
    engine(input_ids, attention_mask=None, token_type_ids=None, position_ids=None)
        -> what model(...) returns: AlbertOutput (last_hidden_state, pooler_output) for an
           AlbertModel; AlbertPreTrainingOutput (prediction_logits, sop_logits) for the
           pre-training classes. No hidden states, attentions or losses: call the model for those.

    Calling the model runs model.py; the engine is an optimisation that refuses to run anything it
    was not built for. The fused path runs when `why_not_fused()` is None: a stock model
    (`why_not_stock`), every module in eval mode, and no gradients wanted (under
    torch.inference_mode() / torch.no_grad(), or no parameter requires grad). Otherwise the
    engine calls the model itself and warns once per reason (EngineFallbackWarning).

    int8=True runs every encoder Linear and the pooler as dynamic int8 x per-channel int8 GEMMs
    (FBGEMM, CPU, float32 models); weights are packed on first use and repacked when they change.
    """

    def __init__(self, model: nn.Module, *, int8: bool = False):
        if not isinstance(model, nn.Module):
            raise TypeError(f"InferenceEngine expects a minialbert model, got {type(model).__name__}")
        if int8 and not quantize.int8_available():
            raise MinialbertError("int8 needs PyTorch's FBGEMM engine (x86 CPUs); it is not in this torch build")
        self.model = model
        self.int8 = bool(int8)
        self._int8_packs: dict = {}  # id(weight) -> (weak refs, keys, packed int8 weight)

    def __repr__(self) -> str:
        return f"InferenceEngine({type(self.model).__name__}, int8={self.int8})"

    def why_not_fused(self) -> str | None:
        """Why the next call would run the model's own forward, or None if it takes the fused path."""
        reason = why_not_stock(self.model, eval_mode=True)
        if reason is not None:
            return reason
        if torch.is_grad_enabled() and any(p.requires_grad for p in self.model.parameters()):
            return ("gradients are enabled and the engine computes none; "
                    "call it under torch.inference_mode() or torch.no_grad()")
        return None

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                 output_hidden_states: bool = False, output_attentions: bool = False):
        if output_hidden_states or output_attentions:
            raise ModelInputError("the inference engine returns the last layer only; for hidden states or "
                                  "attentions call the model itself: model(..., output_hidden_states=True)")
        reason = self.why_not_fused()
        if reason is not None:
            _warn_once(reason)
            return self.model(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                              position_ids=position_ids)
        model = self.model
        base = model if type(model) is AlbertModel else model.albert
        check_inputs(base.config, input_ids, attention_mask, token_type_ids, position_ids)
        out = fused_forward(base, input_ids, attention_mask, token_type_ids, position_ids, self._ops(base))
        if base is model:
            return out
        # The heads are stock (checked above) and cheap next to the encoder: model.py's own code.
        logits = model.mlm_head(out.last_hidden_state, base.embeddings.word.weight)
        sop_logits = model.sop_head(out.pooler_output) if model.sop_head is not None else None
        return AlbertPreTrainingOutput(logits, sop_logits)

    def _ops(self, base: AlbertModel):
        if not self.int8:
            return _FloatOps
        if base.device.type != "cpu" or base.dtype != torch.float32:
            raise MinialbertError(f"int8 runs float32 models on the CPU; this one is {base.dtype} on "
                                  f"{base.device}: move it with model.to('cpu', torch.float32) or use int8=False")
        return _Int8Ops(self._int8_packs)


# ---------------------------------------------------------------------------------------------
# Kernels, with exact fallbacks
# ---------------------------------------------------------------------------------------------
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
    __slots__ = ("refs", "keys", "qkv_weight", "qkv_bias", "int8")

    def __init__(self, params, qkv_weight, qkv_bias):
        self.refs = tuple(weakref.ref(p) for p in params)
        self.keys = tuple(_param_key(p) for p in params)
        self.qkv_weight = qkv_weight
        self.qkv_bias = qkv_bias
        self.int8 = None  # the packed int8 QKV weight, made on first use by an int8 engine


_CACHE: "weakref.WeakKeyDictionary[nn.Module, _Prepared]" = weakref.WeakKeyDictionary()


def _qkv(attention: SelfAttention) -> _Prepared:
    linears = (attention.query, attention.key, attention.value)
    params = tuple(p for lin in linears for p in (lin.weight, lin.bias) if p is not None)
    cached = _CACHE.get(attention)
    if cached is not None and _params_unchanged(cached.refs, cached.keys, params):
        return cached
    w = torch.cat([lin.weight for lin in linears]).detach()
    b = torch.cat([lin.bias if lin.bias is not None else lin.weight.new_zeros(lin.weight.shape[0])
                   for lin in linears]).detach()
    cached = _CACHE[attention] = _Prepared(params, w, b)
    return cached


def clear_cache() -> None:
    """Drop every prepared weight (they are rebuilt on the next forward)."""
    _CACHE.clear()


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


class _FloatOps:
    """The three linear shapes of a layer in the model's own dtype (oneDNN when it can)."""

    @staticmethod
    def linear(x, module_or_prepared):
        if isinstance(module_or_prepared, _Prepared):  # the fused QKV weight
            return _linear(x, module_or_prepared.qkv_weight, module_or_prepared.qkv_bias)
        return _linear(x, module_or_prepared.weight, module_or_prepared.bias)

    @staticmethod
    def linear_act(x, module, act):
        return _linear_act(x, module.weight, module.bias, act)

    @staticmethod
    def linear_add(x, module, residual):
        return _linear_add(x, module.weight, module.bias, residual)


class _Int8Ops:
    """The same three linear shapes with int8 GEMMs (quantize.py); epilogues done separately."""

    def __init__(self, packs: dict):
        self.packs = packs  # the engine's: packed weights live as long as the engine

    def _packed(self, weight: torch.Tensor, bias: torch.Tensor | None):
        """quantize.pack(weight, bias), cached per Linear and rebuilt when either parameter changes."""
        params = (weight,) if bias is None else (weight, bias)
        hit = self.packs.get(id(weight))
        if hit is not None and _params_unchanged(hit[0], hit[1], params):
            return hit[2]
        result = quantize.pack(weight, bias)
        self.packs[id(weight)] = (tuple(weakref.ref(p) for p in params), tuple(_param_key(p) for p in params), result)
        return result

    def linear(self, x, module_or_prepared):
        if isinstance(module_or_prepared, _Prepared):
            prep = module_or_prepared
            if prep.int8 is None:
                prep.int8 = quantize.pack(prep.qkv_weight, prep.qkv_bias)
            return quantize.linear_int8(x, prep.int8)
        return quantize.linear_int8(x, self._packed(module_or_prepared.weight, module_or_prepared.bias))

    def linear_act(self, x, module, act):
        return ACTIVATIONS[act](self.linear(x, module))

    def linear_add(self, x, module, residual):
        return self.linear(x, module) + residual


# ---------------------------------------------------------------------------------------------
# The fused forward pass: AlbertModel.forward's equations, for a model why_not_stock accepts
# ---------------------------------------------------------------------------------------------
def _embed(model: AlbertModel, input_ids, token_type_ids, position_ids) -> torch.Tensor:
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


def _layer(layer: AlbertLayer, h: torch.Tensor, mask: torch.Tensor | None, act: str, ops) -> torch.Tensor:
    att = layer.attention
    batch, seq, hidden = h.shape
    heads, head_dim = att.num_heads, att.head_dim
    qkv = ops.linear(h, _qkv(att)).view(batch, seq, 3, heads, head_dim)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (batch, heads, seq, d_k), views
    context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    context = context.transpose(1, 2).reshape(batch, seq, heads * head_dim)
    norm = att.norm
    h = F.layer_norm(ops.linear_add(context, att.output, h), norm.normalized_shape, norm.weight, norm.bias, norm.eps)
    ff = layer.feed_forward
    u = ops.linear_act(h, ff.up, act)
    norm = ff.norm
    return F.layer_norm(ops.linear_add(u, ff.down, h), norm.normalized_shape, norm.weight, norm.bias, norm.eps)


def fused_forward(model: AlbertModel, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                  ops=_FloatOps) -> AlbertOutput:
    """AlbertModel.forward for inference (last layer and pooler only), fused kernels.

    Assumes what InferenceEngine checks first: a stock model, eval mode, valid inputs. Use the
    engine rather than this function."""
    h = _embed(model, input_ids, token_type_ids, position_ids)
    h = _linear(h, model.encoder.project.weight, model.encoder.project.bias)
    mask = None
    if attention_mask is not None and not bool(attention_mask.all()):
        mask = additive_attention_mask(attention_mask, h.dtype)
    act = model.config.hidden_act
    for layer in model.encoder.layer_calls():
        h = _layer(layer, h, mask, act, ops)
    pooled = None
    if model.pooler is not None:
        pooled = torch.tanh(ops.linear(h[:, 0], model.pooler))
    return AlbertOutput(h, pooled)
