"""int8 GEMMs for the inference engine (CPU): `InferenceEngine(model, int8=True)` in fast.py.

Every Linear of the encoder (and the pooler) keeps its fp32 weight (training, the reference
forward and hidden-state outputs still use it); beside it, a per-output-channel symmetric int8
copy is packed once for FBGEMM (a quarter of the fp32 size). At run time each activation
matrix is quantized per call (uint8, its own min/max) and multiplied in int8 with int32
accumulation: torch.ops.quantized.linear_dynamic, the kernel that the deprecated
torch.ao.quantization.quantize_dynamic also uses, called directly.

Why not torchao? torchao 0.18's Int8DynamicActivationInt8WeightConfig installs and runs with
torch 2.13 on CPU, but in eager mode it ends in torch._int_mm, which on this AVX2 CPU is a slow
reference loop (measured ~0.4-0.8 GFLOP/s on a 512x768x3072 GEMM, ~100x slower than fp32); its
fast CPU path needs torch.compile (a long start-up). Caveat of this module: torch 2.13 marks
the quantized tensor types (torch.quantize_per_channel, qint8) as deprecated, the same family as
torch.ao.quantization; the FBGEMM kernels still ship and work. If they go, this module should
move to torchao + torch.compile, or to oneDNN's int8 inner product.

This module holds the kernels only; the engine owns the switch and the cache of packed weights
(repacked when a parameter changes, like the fused QKV weight in fast.py).
"""

from __future__ import annotations

import warnings

import torch


def int8_available() -> bool:
    return "fbgemm" in torch.backends.quantized.supported_engines


def pack(weight: torch.Tensor, bias: torch.Tensor | None):
    """Per-output-channel symmetric int8 weight (+ fp32 bias), packed for FBGEMM."""
    w = weight.detach().float()
    scale = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-12).double()
    with warnings.catch_warnings():  # the deprecation of quantized tensor types (see the docstring)
        warnings.simplefilter("ignore", UserWarning)
        wq = torch.quantize_per_channel(w, scale, torch.zeros_like(scale, dtype=torch.long), 0, torch.qint8)
    return torch.ops.quantized.linear_prepack(wq, None if bias is None else bias.detach().float())


def linear_int8(x: torch.Tensor, pack) -> torch.Tensor:
    """x (..., K) fp32 -> (..., N): dynamic uint8 activations x int8 weights, int32 accumulate."""
    shape = x.shape
    y = torch.ops.quantized.linear_dynamic(x.reshape(-1, shape[-1]).float(), pack, True)
    return y.view(*shape[:-1], y.shape[-1])
