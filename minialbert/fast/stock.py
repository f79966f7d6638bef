"""Is this model stock? The inference engine (minialbert.fast) computes model.py's equations from
the weights alone, so it may run only when the model's code is exactly model.py's.

`why_not_stock(model)` says, in one line, what is not (or None). Also used by the ONNX exporter.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import model as reference
from ..model import (
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
    Embeddings,
    Encoder,
    FeedForward,
    MLMHead,
    SelfAttention,
    SOPHead,
)

__all__ = ["why_not_stock"]


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
