"""The InferenceEngine: checks that a model may take the fused path (stock.py), then runs it
(forward.py, with ops.py's kernels), or calls the model's own forward and says why."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from .. import quantize
from ..errors import MinialbertError, ModelInputError
from ..model import (
    AlbertForMultipleChoice,
    AlbertForSequenceClassification,
    AlbertForTokenClassification,
    AlbertModel,
    AlbertOutput,
    AlbertPreTrainingOutput,
    QuestionAnsweringOutput,
    TaskOutput,
    check_inputs,
)
from ..plan import Plan, current_plan
from . import forward
from .ops import _FloatOps, _Int8Ops, _PackCache
from .stock import _PRETRAINING_CLASSES, why_not_stock

__all__ = ["InferenceEngine", "EngineFallbackWarning"]


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

    Padding: for an AlbertModel and a right-padded batch (each row's tokens, then its padding:
    what the tokenizer makes) every GEMM runs on the real tokens alone, and the last hidden state
    is zero at padding positions; model.py computes values there (padding queries still attend to
    the real tokens) that no pooling reads. Real tokens and the pooler are model.py's numbers.
    Other masks (left padding, holes), and the pre-training and task heads (whose logits at every
    position stay model.py's), run the padded batch, as model.py does.

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
        # Padding is skipped for the encoder alone (AlbertModel: vectors, where pooling reads real
        # tokens only); the heads keep model.py's logits at every position, padding included.
        out = forward.fused_forward(base, input_ids, attention_mask, token_type_ids, position_ids, self._ops(base),
                                    skip_padding=base is model)
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
