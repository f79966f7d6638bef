"""int8 GEMMs for the inference engine (CPU): `InferenceEngine(model, int8=True)` in minialbert/fast/.

Weights: each Linear's weight is quantized once, symmetric per output channel (int8, scale =
max |w_row| / 127), and packed for the kernel; the fp32 weight stays in the model (training,
model.py and hidden-state outputs use it). Activations: quantized per call (uint8 with its own
min/max), multiplied with int32 accumulation, scaled back to fp32. Two kernels, chosen by the
number of rows (tokens) of the call, because each wins on one side (scripts/profile_kernels.py; on a
2-core AVX2 EPYC, one core: at 16 rows FBGEMM ~120 GOP/s vs oneDNN ~70; at 1024 rows oneDNN
~160 vs FBGEMM ~130, and only oneDNN fuses the epilogues):

  * oneDNN's int8 inner product (`torch.ops.onednn.qlinear_pointwise`, the kernel PyTorch's
    inductor uses for int8 models) for SMALL_ROWS rows or more. It applies the bias, the erf
    GELU / ReLU and the residual add inside the GEMM's output stage, so those cost no extra pass
    over memory. (Its tanh-GELU post-op is slower than ATen's gelu_ afterwards, so fast/ops.py
    applies tanh GELU separately.)
  * FBGEMM's dynamic int8 linear (`torch.ops.quantized.linear_dynamic`, what the deprecated
    torch.ao.quantization.quantize_dynamic runs) below it: better at skinny GEMMs.
Each kind is packed on first use, so a workload that only ever runs one kind holds one copy.

Activations are uint8 from their own min/max, in one of two ranges, a choice of the engine's
per-machine plan (plan.py): full 8-bit (0..255) where the CPU has VNNI or AMX, whose uint8 x
int8 products accumulate in int32 and never saturate; 7-bit (0..127, "reduce_range") elsewhere,
because CPUs without VNNI multiply with vpmaddubsw, which adds pairs of products in int16 and
saturates with the full range (a relative error of ~8% on a 768-wide product on an AVX2 EPYC,
against ~4e-7 with 7 bits; scripts/profile_kernels.py checks it). Both kernels see the same
activations. The row crossover between the kernels is the plan's too (measured per machine).

Why not torchao? torchao 0.18's Int8DynamicActivationInt8WeightConfig runs with torch 2.13 on
CPU, but in eager mode it ends in torch._int_mm, a slow reference loop on this AVX2 CPU (~0.5
GFLOP/s, ~100x slower than fp32); its fast path needs torch.compile. Caveat: torch 2.13 marks
the quantized tensor types that FBGEMM's packs and quantize_per_tensor_dynamic use as
deprecated; the kernels still ship and work, and tests/test_fast.py would catch a change.
"""

from __future__ import annotations

import platform
import warnings

import torch

# The default for calls made without a plan: at least this many rows (tokens) take oneDNN, fewer
# take FBGEMM (the crossover measured by scripts/profile_kernels.py on AVX2 is between 64 and 256
# rows; the engine passes its plan's, plan.py).
SMALL_ROWS = 128
# The row count oneDNN lays the packed weight out for (any count works; "None" picked a slower
# layout for the 768 x 2304 QKV weight at 1024 rows: ~140 GOP/s against ~160 with a hint).
_ONEDNN_ROWS_HINT = 1024


def int8_available() -> bool:
    """FBGEMM and oneDNN's int8 inner product: x86 CPU builds of PyTorch."""
    return ("fbgemm" in torch.backends.quantized.supported_engines and torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.onednn, "qlinear_pointwise")
            and platform.machine().lower() in ("x86_64", "amd64", "i686", "x86"))


def _quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel int8 values and their fp32 scales."""
    w = weight.detach().float()
    scale = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-12)
    return torch.clamp(torch.round(w / scale[:, None]), -127, 127).to(torch.int8), scale


class Int8Linear:
    """One Linear's int8 weight, packed for each kernel on first use (see the module docstring).

    Holds the fp32 weight it came from (the model's own tensor, no copy) to quantize it again for
    the second kernel, rather than keeping a third int8 copy around."""

    __slots__ = ("weight", "scale", "bias", "_fbgemm", "_onednn", "_zero_points")

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        self.weight = weight
        self.scale = _quantize_rows(weight)[1]
        self.bias = None if bias is None else bias.detach().float().contiguous()
        self._fbgemm = self._onednn = None
        self._zero_points = torch.zeros(weight.shape[0], dtype=torch.long)

    def nbytes(self) -> int:
        """Bytes of what this object made: the int8 values once per kernel used, scales, bias."""
        kinds = (self._fbgemm is not None) + (self._onednn is not None)
        return kinds * self.weight.numel() + self.scale.numel() * 4 + (0 if self.bias is None else self.bias.numel() * 4)

    def fbgemm(self):
        if self._fbgemm is None:
            values, scale = _quantize_rows(self.weight)
            with warnings.catch_warnings():  # the deprecation of quantized tensor types (see the docstring)
                warnings.simplefilter("ignore", UserWarning)
                wq = torch._make_per_channel_quantized_tensor(values, scale.double(), self._zero_points, 0)
                self._fbgemm = torch.ops.quantized.linear_prepack(wq, self.bias)
        return self._fbgemm

    def onednn(self):
        if self._onednn is None:
            values = _quantize_rows(self.weight)[0]
            self._onednn = torch.ops.onednn.qlinear_prepack(values, [_ONEDNN_ROWS_HINT, values.shape[1]])
        return self._onednn


def quantize_activation(x: torch.Tensor, full_range: bool = False) -> tuple[torch.Tensor, float, int]:
    """(rows, K) fp32 -> (uint8 values in 0..127, or 0..255 with full_range, scale, zero point),
    from its own min and max."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        q = torch.quantize_per_tensor_dynamic(x, torch.quint8, not full_range)
    # The same bytes as a plain uint8 tensor, without a copy. (q.view(torch.uint8) also gives one,
    # but a broken tensor: reductions on it crash. set_ makes an ordinary tensor on q's storage.)
    values = torch.empty(0, dtype=torch.uint8).set_(q.untyped_storage(), q.storage_offset(), q.shape, q.stride())
    return values, q.q_scale(), q.q_zero_point()


_GELU_ALGORITHM = {"gelu": "none", "gelu_tanh": "tanh"}  # act -> oneDNN's GELU algorithm


def linear(x: torch.Tensor, w: Int8Linear, act: str = "none", *, onednn_rows: int | None = None,
           full_range: bool = False) -> torch.Tensor:
    """act(x W^T + b), x (..., K) fp32 -> (..., N) fp32 through an int8 GEMM. act: "none", or
    "relu" / "gelu" (erf) / "gelu_tanh", which oneDNN applies inside the GEMM. oneDNN from `onednn_rows` rows
    (default SMALL_ROWS), FBGEMM below; full_range: 8-bit activations (only on VNNI/AMX CPUs)."""
    x2 = x.reshape(-1, x.shape[-1])
    if x2.shape[0] < (SMALL_ROWS if onednn_rows is None else onednn_rows):
        y = torch.ops.quantized.linear_dynamic(x2.float(), w.fbgemm(), not full_range)
        if act != "none":
            y = torch.relu_(y) if act == "relu" else torch.ops.aten.gelu_(y, approximate=_GELU_ALGORITHM.get(act, "none"))
    else:
        qx, scale, zero_point = quantize_activation(x2.contiguous(), full_range)
        algorithm = _GELU_ALGORITHM.get(act, "")
        y = torch.ops.onednn.qlinear_pointwise(qx, scale, zero_point, w.onednn(), w.scale, w._zero_points, w.bias,
                                               1.0, 0, torch.float32, "gelu" if algorithm else act, [], algorithm)
    return y.view(*x.shape[:-1], y.shape[-1])


def linear_add(x: torch.Tensor, w: Int8Linear, residual: torch.Tensor, *, onednn_rows: int | None = None,
               full_range: bool = False) -> torch.Tensor:
    """x W^T + b + residual through an int8 GEMM; oneDNN adds the residual in the GEMM's output
    stage. onednn_rows, full_range: as for linear()."""
    x2 = x.reshape(-1, x.shape[-1])
    if x2.shape[0] < (SMALL_ROWS if onednn_rows is None else onednn_rows):
        y = torch.ops.quantized.linear_dynamic(x2.float(), w.fbgemm(), not full_range)
        y.add_(residual.reshape(x2.shape[0], -1))
    else:
        qx, scale, zero_point = quantize_activation(x2.contiguous(), full_range)
        y = torch.ops.onednn.qlinear_pointwise.binary(
            qx, scale, zero_point, w.onednn(), w.scale, w._zero_points, residual.reshape(x2.shape[0], -1).contiguous(),
            w.bias, 1.0, 0, torch.float32, 1.0, 0, "add", 1.0, "none", [], "")
    return y.view(*x.shape[:-1], y.shape[-1])
