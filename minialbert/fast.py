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

  * Linear layers run through oneDNN (`torch.ops.mkldnn._linear_pointwise`), which also fuses
    epilogues: each residual add into the projection before its LayerNorm, the erf GELU / ReLU
    into the up-projection (not the tanh GELU of ALBERT v2, slower fused: see _FUSED_ACT), so
    those never make an extra pass over memory. Calls of few rows (batch-1 latency) use a copy of
    the weight laid out once for oneDNN (below the plan's fp32_packed_below rows).
  * Q, K and V come from one GEMM against the three weight matrices stacked (3H x H); the
    stacked copy is made once per distinct attention module and cached (see `_Prepared`).
  * Attention is torch's fused scaled_dot_product_attention; q/k/v are strided views of the
    one QKV output, so no copies are made to split heads.
  * No mask at all when every token is real; otherwise the same additive mask as model.py.
  * Batches of more than SLICE_TOKENS tokens run in slices of rows (see there).
  * int8=True: every encoder Linear (and the projection and pooler) through int8 GEMMs with
    dynamic int8 activations (quantize.py: oneDNN with the bias / activation / residual add
    fused for many rows, FBGEMM for few). The MLM/SOP heads stay fp32.
  * Which kernel runs where (the int8 row crossover, 8- or 7-bit activations, the fp32 weight
    layout by rows) is the engine's plan, chosen per machine on first use and cached (plan.py;
    `engine.plan()`, `minialbert info --engine`; MINIALBERT_ENGINE_PLAN=fixed forces the old one).
  * A model loaded under torch.inference_mode() has inference-tensor parameters, which have no
    version counter, so no derived weight could be cached against them: on its first fused call
    the engine replaces them with ordinary tensors of the same values (one copy, once; see
    InferenceEngine). That used to cost 2.8x with int8 (everything re-derived on every call).

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
from .plan import FIXED, Plan, current_plan
from .errors import MinialbertError, ModelInputError
from .model import (
    ACTIVATIONS,
    STOCK_ACTIVATIONS,
    STOCK_FUNCTIONS,
    STOCK_METHODS,
    AlbertForMaskedLM,
    AlbertForMultipleChoice,
    AlbertForPreTraining,
    AlbertForQuestionAnswering,
    AlbertForSequenceClassification,
    AlbertForTokenClassification,
    AlbertLayer,
    AlbertModel,
    AlbertOutput,
    AlbertPreTrainingOutput,
    Embeddings,
    Encoder,
    FeedForward,
    MLMHead,
    QuestionAnsweringOutput,
    SelfAttention,
    SOPHead,
    TaskOutput,
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
_PRETRAINING_CLASSES = (AlbertForPreTraining, AlbertForMaskedLM)
_TASK_CLASSES = (AlbertForSequenceClassification, AlbertForTokenClassification, AlbertForQuestionAnswering,
                 AlbertForMultipleChoice)
_TOP_CLASSES = (AlbertModel,) + _PRETRAINING_CLASSES + _TASK_CLASSES
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
    AlbertForSequenceClassification: {"albert": (AlbertModel,), "dropout": (nn.Dropout,), "classifier": (nn.Linear,)},
    AlbertForTokenClassification: {"albert": (AlbertModel,), "dropout": (nn.Dropout,), "classifier": (nn.Linear,)},
    AlbertForQuestionAnswering: {"albert": (AlbertModel,), "qa_outputs": (nn.Linear,)},
    AlbertForMultipleChoice: {"albert": (AlbertModel,), "dropout": (nn.Dropout,), "classifier": (nn.Linear,)},
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

    Stock means: an AlbertModel, a pre-training class or a task-head class of model.py (exact
    classes, not subclasses) whose every sub-module is where model.py puts it and of the exact class it
    builds (torch's Linear, LayerNorm, Embedding, Dropout included); every method as it was when
    model.py was imported (class or instance monkeypatching is caught); no forward hooks or
    pre-hooks (on any module, or registered globally); the config's activation. It says nothing
    about the weights, dtype or device, which are free. With eval_mode=True every module must
    also be in eval mode. Reusable by anything that must refuse non-stock models (an exporter,
    another engine).
    """
    cls = type(model)
    if cls not in _TOP_CLASSES:
        return (f"the model is a {cls.__name__}, not one of minialbert's own classes "
                f"({', '.join(c.__name__ for c in _TOP_CLASSES)})")
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
           pre-training classes; TaskOutput / QuestionAnsweringOutput (logits; start and end
           logits) for the task heads of model.py section 7 (multiple choice: inputs of shape
           (batch, choices, seq)). No hidden states, attentions or losses: call the model for those.

    Calling the model runs model.py; the engine is an optimisation that refuses to run anything it
    was not built for. The fused path runs when `why_not_fused()` is None: a stock model
    (`why_not_stock`), every module in eval mode, and no gradients wanted (under
    torch.inference_mode() / torch.no_grad(), or no parameter requires grad). Otherwise the
    engine calls the model itself and warns once per reason (EngineFallbackWarning).

    int8=True runs every encoder Linear, the projection and the pooler as dynamic int8 x
    per-channel int8 GEMMs (quantize.py; CPU, float32 models); each distinct weight is quantized
    once (the shared layer once, not once per layer call), on first use, and again when it
    changes. `packed_bytes()` says how much memory the engine's derived weights take.

    plan: the kernel choices (plan.Plan); None takes this machine's (plan.current_plan(): chosen
    on first use, cached per CPU and torch version). `plan()` returns the one in use.

    Inference tensors: a model loaded or built under torch.inference_mode() has parameters
    without version counters, so the engine could not tell when they change and would re-derive
    every packed weight on every call. On its first fused call the engine therefore replaces such
    parameters and buffers, in the model, by ordinary tensors with the same values (ties kept);
    the model computes exactly what it did. To avoid that one copy, load the model outside
    inference_mode and call it inside.
    """

    def __init__(self, model: nn.Module, *, int8: bool = False, plan: Plan | None = None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"InferenceEngine expects a minialbert model, got {type(model).__name__}")
        if int8 and not quantize.int8_available():
            raise MinialbertError("int8 needs PyTorch's FBGEMM and oneDNN int8 kernels (x86 CPUs); "
                                  "they are not in this torch build")
        if plan is not None and not isinstance(plan, Plan):
            raise TypeError(f"plan must be a minialbert.plan.Plan, got {type(plan).__name__}")
        self.model = model
        self.int8 = bool(int8)
        self._plan = plan
        # Weights derived for this engine's kernels, made on first use (see _PackCache).
        self._packs = _PackCache()

    def __repr__(self) -> str:
        return f"InferenceEngine({type(self.model).__name__}, int8={self.int8})"

    def plan(self) -> Plan:
        """The kernel choices this engine runs with (this machine's, chosen on first use)."""
        if self._plan is None:
            self._plan = current_plan()
        return self._plan

    def packed_bytes(self) -> int:
        """Bytes of the weights this engine derived (int8 packs; fp32 copies laid out for small
        batches), on top of the model's own parameters."""
        return self._packs.nbytes()

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
        choices = None
        if type(model) is AlbertForMultipleChoice:  # each choice is a row of its own, as model.py does it
            if input_ids.dim() != 3:
                raise ModelInputError(f"input_ids must be (batch, choices, seq), got shape {tuple(input_ids.shape)}")
            choices = input_ids.shape[1]
            input_ids, attention_mask, token_type_ids, position_ids = (
                None if t is None else t.reshape(-1, t.shape[-1])
                for t in (input_ids, attention_mask, token_type_ids, position_ids))
        check_inputs(base.config, input_ids, attention_mask, token_type_ids, position_ids)
        _ordinary_parameters(model)
        out = fused_forward(base, input_ids, attention_mask, token_type_ids, position_ids, self._ops(base))
        if base is model:
            return out
        return _run_head(model, out, choices)

    def _ops(self, base: AlbertModel):
        if not self.int8:
            return _FloatOps(self._packs, self.plan())
        if base.device.type != "cpu" or base.dtype != torch.float32:
            raise MinialbertError(f"int8 runs float32 models on the CPU; this one is {base.dtype} on "
                                  f"{base.device}: move it with model.to('cpu', torch.float32) or use int8=False")
        return _Int8Ops(self._packs, self.plan())


def _ordinary_parameters(model: nn.Module) -> None:
    """Replace inference-tensor parameters and buffers by ordinary copies (same values, ties kept)."""
    modules = list(model.modules())
    if not any(t is not None and t.is_inference()
               for m in modules for table in (m._parameters, m._buffers) for t in table.values()):
        return
    copies: dict[int, torch.Tensor] = {}
    with torch.inference_mode(False):
        for module in modules:
            for table, make in ((module._parameters, lambda t: nn.Parameter(t.clone(), t.requires_grad)),
                                (module._buffers, lambda t: t.clone())):
                for name, t in list(table.items()):
                    if t is not None and t.is_inference():
                        if id(t) not in copies:
                            copies[id(t)] = make(t)
                        table[name] = copies[id(t)]


def _run_head(model: nn.Module, out: AlbertOutput, choices: int | None):
    """The head of a stock pre-training or task model on the fused encoder's output. The heads
    are model.py's own modules, called as its forwards call them, and cheap next to the encoder;
    dropout is the identity in eval mode (checked before the fused path runs), so it is skipped."""
    h, pooled = out.last_hidden_state, out.pooler_output
    cls = type(model)
    if cls in _PRETRAINING_CLASSES:
        logits = model.mlm_head(h, model.albert.embeddings.word.weight)
        return AlbertPreTrainingOutput(logits, model.sop_head(pooled) if model.sop_head is not None else None)
    if cls is AlbertForSequenceClassification:
        return TaskOutput(model.classifier(pooled))
    if cls is AlbertForTokenClassification:
        return TaskOutput(model.classifier(h))
    if cls is AlbertForMultipleChoice:
        return TaskOutput(model.classifier(pooled).view(-1, choices))
    start_logits, end_logits = model.qa_outputs(h).unbind(dim=-1)  # AlbertForQuestionAnswering
    return QuestionAnsweringOutput(start_logits.contiguous(), end_logits.contiguous())


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
# Activations applied in place on a GEMM's fresh output (no new tensor).
_INPLACE_ACT = {
    "gelu_new": lambda y: torch.ops.aten.gelu_(y, approximate="tanh"),
    "gelu_pytorch_tanh": lambda y: torch.ops.aten.gelu_(y, approximate="tanh"),
}


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


def _linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    if _onednn_ok(x, w):
        return _LINEAR(x, w, b, "none", [], "")
    return F.linear(x, w, b)


def _linear_act(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, act: str) -> torch.Tensor:
    fused = _FUSED_ACT.get(act)
    if fused is not None and _onednn_ok(x, w):
        return _LINEAR(x, w, b, fused[0], [], fused[1])
    return _activate(_linear(x, w, b), act)


def _linear_add(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, residual: torch.Tensor) -> torch.Tensor:
    """x W^T + b + residual, the add done inside the GEMM's epilogue when possible."""
    if _onednn_ok(x, w):
        return _LINEAR_ADD(x, residual, w, b, "add")
    return torch.add(F.linear(x, w, b), residual)


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
    """The three linear shapes of a layer in the model's own dtype (oneDNN when it can)."""

    def __init__(self, packs: _PackCache, plan: Plan = FIXED):
        self.packs = packs
        self.small_rows = plan.fp32_packed_below

    def _weight(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        # fp32 and bf16 alike (bf16 at 1 x 16 on an AVX512-BF16 CPU: 40 -> 26 ms, one thread)
        if _rows(x) >= self.small_rows or x.dtype not in _PACKED_DTYPES or not _onednn_ok(x, w):
            return w
        return self.packs.get(w, None, lambda w, _: torch.ops.mkldnn._reorder_linear_weight(w.detach(), _rows(x)))

    def linear(self, x, module_or_prepared):
        w, b = _weights(module_or_prepared)
        return _linear(x, self._weight(x, w), b)

    def linear_act(self, x, module, act):
        return _linear_act(x, self._weight(x, module.weight), module.bias, act)

    def linear_add(self, x, module, residual):
        return _linear_add(x, self._weight(x, module.weight), module.bias, residual)


class _Int8Ops:
    """The same three linear shapes with int8 GEMMs (quantize.py), epilogues fused where it can."""

    def __init__(self, packs: _PackCache, plan: Plan = FIXED):
        self.packs = packs  # the engine's: packed weights live as long as the engine
        self.kw = {"onednn_rows": plan.int8_onednn_rows, "full_range": plan.int8_full_range}

    def _int8(self, module_or_prepared) -> quantize.Int8Linear:
        w, b = _weights(module_or_prepared)
        return self.packs.get(w, b, quantize.Int8Linear)

    def linear(self, x, module_or_prepared):
        return quantize.linear(x, self._int8(module_or_prepared), **self.kw)

    def linear_act(self, x, module, act):
        fused = _FUSED_ACT.get(act)
        if fused is not None:
            return quantize.linear(x, self._int8(module), fused[0], **self.kw)
        return _activate(quantize.linear(x, self._int8(module), **self.kw), act)

    def linear_add(self, x, module, residual):
        return quantize.linear_add(x, self._int8(module), residual, **self.kw)


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


# Batches of more than SLICE_TOKENS tokens run in slices of whole rows. The GEMMs are at least as
# fast at 1024 rows as at 4096 (scripts/profile_kernels.py), and a slice's intermediates (12 MB for base)
# are reused by the allocator, while a 32 x 128 batch's 38-50 MB QKV and FFN outputs are above
# glibc's mmap threshold: handed back to the OS after each use and paged in again by the next
# call, ~0.7 ms per MB on the machine measured (int8 at 32 x 128: ~7% faster sliced). It also
# bounds the working memory of very large batches.
SLICE_TOKENS = 1024


def fused_forward(model: AlbertModel, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                  ops=None) -> AlbertOutput:
    """AlbertModel.forward for inference (last layer and pooler only), fused kernels.

    Assumes what InferenceEngine checks first: a stock model, eval mode, valid inputs. Use the
    engine rather than this function."""
    ops = ops if ops is not None else _FloatOps(_PackCache())
    batch, seq = input_ids.shape
    rows = max(1, SLICE_TOKENS // max(seq, 1))
    if batch > rows:  # rows are independent: run slices and join them
        def part(t, i):  # token types / positions may be one row shared by the batch
            return t[i:i + rows] if t is not None and t.shape[0] == batch else t

        outs = [fused_forward(model, input_ids[i:i + rows], part(attention_mask, i), part(token_type_ids, i),
                              part(position_ids, i), ops) for i in range(0, batch, rows)]
        pooled = None if outs[0].pooler_output is None else torch.cat([o.pooler_output for o in outs])
        return AlbertOutput(torch.cat([o.last_hidden_state for o in outs]), pooled)
    h = _embed(model, input_ids, token_type_ids, position_ids)
    h = ops.linear(h, model.encoder.project)
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
