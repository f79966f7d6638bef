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
    into the up-projection (the tanh GELU of ALBERT v2 too where the plan measured that faster:
    not on AVX2, yes on AVX-512; see ops._FUSED_TANH), so those never make an extra pass over
    memory. Calls of few rows (batch-1 latency) use a copy of the weight laid out once for oneDNN
    (below the plan's fp32_packed_below rows).
  * Each distinct layer's weights are looked up once per call (forward._BoundLayer), not once
    per layer call: ALBERT calls one shared layer 12 times, and at batch 1 the lookups were ~1 ms.
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

The package's modules, along its seams:

  stock.py     why_not_stock: is the model exactly what model.py builds?
  engine.py    InferenceEngine: the checks before each call, the fallback, the task heads
  forward.py   fused_forward: the encoder's equations through the kernels below
  ops.py       the kernels: oneDNN fp32/bf16 linears with fused epilogues, int8 (quantize.py),
               weights derived once and cached
"""

from __future__ import annotations

from .engine import EngineFallbackWarning, InferenceEngine
from .forward import SLICE_TOKENS, fused_forward
from .ops import clear_cache
from .stock import why_not_stock

__all__ = ["InferenceEngine", "EngineFallbackWarning", "why_not_stock", "fused_forward", "clear_cache",
           "SLICE_TOKENS"]
