"""Which kernel the inference engine uses for each GEMM kind, chosen per machine.

The engine (minialbert/fast/) has more than one kernel for the same product, and which one is fastest
depends on the CPU: `Plan` holds the choices, and `current_plan()` makes them on first use:

  * int8 activations: full 8-bit (0..255) where the CPU multiplies uint8 x int8 without
    saturating (VNNI: AVX512-VNNI or AVX-VNNI; AMX), else 7-bit ("reduce_range", 0..127).
    The CPU flags decide; a one-GEMM probe confirms that both int8 kernels really give the exact
    sum of 255 x 127 products (without VNNI, vpmaddubsw saturates it at 32767 per pair).
  * int8 kernel by rows: FBGEMM (better for skinny GEMMs) below `int8_onednn_rows` rows,
    oneDNN (which fuses the epilogues) from there on. Measured: no flag predicts the crossover.
  * fp32 / bf16 weight layout by rows: below `fp32_packed_below` rows, a copy of each weight laid out
    once for oneDNN; from there on the weight as it is. Measured.
  * tanh GELU (ALBERT v2's "gelu_new"): inside oneDNN's GEMM (its eltwise post-op, fp32, bf16 and
    int8 alike) or in place after it (fast/act.py). On the 2-core AVX2 EPYC the post-op cost more
    than the pass it saves (measured against ATen's gelu_); on an AVX-512 EPYC it saves ~12% of
    the up-projection at 1024 rows. Measured.
  * bf16: whether the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX); Embedder(dtype="auto")
    and `--dtype auto` then run bfloat16. From the flags.

The measurement takes about a second, once per machine: the plan is cached in
`plan_cache_path()` (the user cache directory: $MINIALBERT_CACHE_DIR, else $XDG_CACHE_HOME/minialbert,
else ~/.cache/minialbert; %LOCALAPPDATA%\\minialbert on Windows) under a key made of the CPU
signature (model name, the flags above, logical CPUs) and the torch version, so another CPU or
another torch measures again. The file is written atomically and safe to delete; a corrupt one is
ignored with a warning (and rewritten).

MINIALBERT_ENGINE_PLAN=fixed forces the fixed plan the engine used before plans were chosen per
machine (tuned on a 2-core AVX2 EPYC: 7-bit activations, oneDNN from 128 rows, packed fp32 weights
below 128 rows, tanh GELU after the GEMM), for reproducible runs or to compare; "auto" (or unset) chooses per machine.
`minialbert info --engine` prints the plan, `InferenceEngine(model).plan()` returns it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import torch

from .cpuinfo import cpu_name
from .errors import MinialbertError

__all__ = ["Plan", "FIXED", "current_plan", "cpu_features", "plan_cache_path", "auto_dtype", "PlanCacheWarning"]

PLAN_ENV = "MINIALBERT_ENGINE_PLAN"
CACHE_ENV = "MINIALBERT_CACHE_DIR"
_FORMAT = 1


class PlanCacheWarning(UserWarning):
    """The engine's plan cache could not be read or written (the plan is measured again)."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """The engine's kernel choices for one machine (see the module docstring)."""

    int8_full_range: bool = False   # activations 0..255 (VNNI/AMX) instead of 0..127
    int8_onednn_rows: int = 128     # int8 calls of at least this many rows take oneDNN, fewer FBGEMM
    fp32_packed_below: int = 128    # fp32/bf16 calls of fewer rows use weights laid out once for oneDNN
    gelu_tanh_fused: bool = False   # tanh GELU as oneDNN's post-op inside the GEMM (else ATen's gelu_ after)
    bf16: bool = False              # the CPU multiplies bfloat16 natively (dtype="auto" picks it)
    source: str = "fixed"           # "fixed", "measured" or "cache"
    cpu: str = ""                   # what it was chosen for

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """A few lines for `minialbert info --engine`."""
        bits = "8-bit (0..255, no saturation with VNNI/AMX)" if self.int8_full_range else "7-bit (0..127, reduce_range)"
        return "\n".join([
            f"engine plan ({self.source}) for {self.cpu or 'this CPU'}",
            f"  int8 activations:      {bits}",
            f"  int8 GEMM kernel:      FBGEMM below {self.int8_onednn_rows} rows, oneDNN (fused epilogues) from there",
            f"  fp32/bf16 weights:     packed for oneDNN below {self.fp32_packed_below} rows, as stored from there",
            f"  tanh GELU:             {'fused into the GEMM (oneDNN post-op)' if self.gelu_tanh_fused else 'in place after the GEMM'}",
            f"  dtype auto:            {'bfloat16 (native bf16 GEMMs)' if self.bf16 else 'float32 (no native bf16)'}",
        ])


FIXED = Plan(cpu="the fixed plan (2-core AVX2 EPYC), forced by MINIALBERT_ENGINE_PLAN=fixed")


# ----------------------------------------------------------------------------- the CPU
def _flag(name: str) -> bool:
    fn = getattr(torch.cpu, name, None)
    try:
        return bool(fn()) if fn is not None else False
    except Exception:  # pragma: no cover - a build without cpuinfo
        return False


def cpu_features() -> dict:
    """The CPU's name and the instruction-set flags the plan depends on (through torch's cpuinfo)."""
    return {
        "name": cpu_name(),
        "machine": platform.machine().lower(),
        "logical_cpus": os.cpu_count() or 1,
        "avx2": _flag("_is_avx2_supported"),
        "avx512": _flag("_is_avx512_supported"),
        "vnni": _flag("_is_vnni_supported"),
        "avx512_bf16": _flag("_is_avx512_bf16_supported"),
        "amx": _flag("_is_amx_tile_supported"),
    }


# Bumped when the plan gains a measured choice: a cached plan without it is measured again.
_PLAN_VERSION = 2


def _signature(features: dict) -> dict:
    return {**features, "torch": torch.__version__, "plan_version": _PLAN_VERSION}


def _key(signature: dict) -> str:
    return hashlib.sha256(json.dumps(signature, sort_keys=True).encode()).hexdigest()[:16]


def _describe_cpu(features: dict) -> str:
    flags = [n for n in ("avx2", "avx512", "vnni", "avx512_bf16", "amx") if features.get(n)]
    return f"{features['name']} ({', '.join(flags) or 'no AVX2'}), torch {torch.__version__}"


def native_bf16(features: dict | None = None) -> bool:
    features = cpu_features() if features is None else features
    if not (features.get("avx512_bf16") or features.get("amx")):
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover
        return False


def int8_without_saturation(features: dict | None = None) -> bool:
    """Whether the CPU, by its flags, sums uint8 x int8 products without int16 saturation: VNNI or
    AMX on x86 (without them vpmaddubsw saturates pairs at 32767); any other architecture, whose
    int8 dot products have no such step. The engine's plan also probes its kernels (_saturation_free);
    ONNX exports made for this CPU (export.Int8Options.for_this_cpu) go by the flags alone."""
    features = cpu_features() if features is None else features
    if features["machine"] not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return True
    return bool(features.get("vnni") or features.get("amx"))


# ----------------------------------------------------------------------------- measuring
def _best_time(fn, repeats: int = 5) -> float:
    """Least thread CPU time of fn() over `repeats` calls (run on one thread: see measure)."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.thread_time()
        fn()
        times.append(time.thread_time() - t)
    return min(times)


def _saturation_free() -> bool:
    """Do both int8 kernels sum 255 x 127 products exactly? Without VNNI they saturate in int16."""
    from . import quantize

    k = 64
    x = torch.ones(4, k)
    x[:, 0] = 0.0  # range [0, 1]: every other element quantizes to 255
    w = quantize.Int8Linear(torch.ones(8, k), None)  # every weight quantizes to 127
    exact = float(k - 1)
    for rows in (10**9, 1):  # FBGEMM, then oneDNN
        y = quantize.linear(x, w, onednn_rows=rows, full_range=True)
        if not torch.allclose(y, torch.full_like(y, exact), rtol=1e-3):
            return False
    return True


def _crossover(candidates, small_is_faster) -> int:
    """The first candidate row count from which the large-rows kernel is never slower."""
    result = candidates[-1] * 2
    for rows in reversed(candidates):
        if small_is_faster(rows):
            break
        result = rows
    return result


def measure(features: dict) -> Plan:
    """Choose the plan for this CPU: flags where they decide, a short measurement where they do not.

    The kernels are timed on one thread by thread CPU time (not wall time), so that other
    processes on a busy machine do not decide the crossover; the choice is per core."""
    from . import quantize

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _measure(features, quantize)
    finally:
        torch.set_num_threads(threads)


def _measure(features: dict, quantize) -> Plan:
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(3072, 768, generator=gen) * 0.02  # albert-base's FFN up-projection
    bias = torch.zeros(3072)
    candidates = (32, 64, 128, 256, 512, 1024)
    full_range = False
    int8_rows = FIXED.int8_onednn_rows
    with torch.inference_mode(False), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if quantize.int8_available():
            full_range = int8_without_saturation(features) and _saturation_free()
            w8 = quantize.Int8Linear(weight, bias)

            def fbgemm_faster(rows):
                x = torch.randn(rows, 768, generator=gen)
                fb = _best_time(lambda: quantize.linear(x, w8, onednn_rows=10**9, full_range=full_range))
                od = _best_time(lambda: quantize.linear(x, w8, onednn_rows=1, full_range=full_range))
                return fb < od

            int8_rows = _crossover(candidates, fbgemm_faster)
        fp32_rows = FIXED.fp32_packed_below
        gelu_fused = FIXED.gelu_tanh_fused
        if torch.backends.mkldnn.is_available():
            linear = torch.ops.mkldnn._linear_pointwise.default

            # The engine lays a weight out for the rows of its first small call: time a layout made
            # for a batch-1 call (16 rows) at each row count.
            packed = torch.ops.mkldnn._reorder_linear_weight(weight, 16)

            def packed_faster(rows):
                x = torch.randn(rows, 768, generator=gen)
                p = _best_time(lambda: linear(x, packed, bias, "none", [], ""))
                q = _best_time(lambda: linear(x, weight, bias, "none", [], ""))
                return p < q

            fp32_rows = _crossover(candidates, packed_faster)

            # tanh GELU in the GEMM's output stage, or in place after it (256 rows: a batch)
            from .fast.act import gelu_tanh_

            x = torch.randn(256, 768, generator=gen)
            fused = _best_time(lambda: linear(x, weight, bias, "gelu", [], "tanh"))
            apart = _best_time(lambda: gelu_tanh_(linear(x, weight, bias, "none", [], "")))
            gelu_fused = fused < apart
    return Plan(int8_full_range=full_range, int8_onednn_rows=int8_rows, fp32_packed_below=fp32_rows,
                gelu_tanh_fused=gelu_fused, bf16=native_bf16(features), source="measured", cpu=_describe_cpu(features))


# ----------------------------------------------------------------------------- the cache
def plan_cache_path() -> Path:
    """Where plans are cached (a JSON file; safe to delete)."""
    base = os.environ.get(CACHE_ENV)
    if base:
        return Path(base) / "engine-plan.json"
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        root = Path(os.environ["LOCALAPPDATA"])
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "minialbert" / "engine-plan.json"


def _read_cache(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError as e:
        warnings.warn(f"cannot read the engine plan cache {path} ({e.strerror}); measuring again", PlanCacheWarning,
                      stacklevel=4)
        return {}
    try:
        data = json.loads(text)
        if data.get("format") != _FORMAT or not isinstance(data.get("plans"), dict):
            raise ValueError("not a plan cache of this version")
        return data["plans"]
    except (ValueError, AttributeError) as e:
        warnings.warn(f"ignoring the corrupt engine plan cache {path} ({e}); measuring again and rewriting it",
                      PlanCacheWarning, stacklevel=4)
        return {}


def _from_cache(entry, signature: dict) -> Plan | None:
    try:
        if entry["signature"] != signature:
            return None
        fields = {f.name for f in dataclasses.fields(Plan)}
        plan = Plan(**{k: v for k, v in entry["plan"].items() if k in fields})
        if not (isinstance(plan.int8_onednn_rows, int) and isinstance(plan.fp32_packed_below, int)):
            return None
        return dataclasses.replace(plan, source="cache")
    except (KeyError, TypeError):
        return None


def _write_cache(path: Path, plans: dict) -> None:
    from .files import atomic_write

    text = json.dumps({"format": _FORMAT, "plans": plans}, indent=1, sort_keys=True) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    except (OSError, MinialbertError) as e:
        warnings.warn(f"cannot write the engine plan cache {path} ({e}); the plan is measured again next time",
                      PlanCacheWarning, stacklevel=4)


_MEMO: dict[str, Plan] = {}


def current_plan(features: dict | None = None) -> Plan:
    """This machine's plan: forced fixed, remembered in this process, cached on disk, or measured."""
    mode = os.environ.get(PLAN_ENV, "auto").strip().lower() or "auto"
    if mode == "fixed":
        return FIXED
    if mode != "auto":
        raise MinialbertError(f"{PLAN_ENV}={os.environ[PLAN_ENV]!r} is not a plan; use 'auto' (choose per machine) "
                              "or 'fixed' (the plan tuned on a 2-core AVX2 CPU)")
    features = cpu_features() if features is None else features
    signature = _signature(features)
    key = _key(signature)
    path = plan_cache_path()
    memo_key = f"{path}:{key}"
    if memo_key in _MEMO:
        return _MEMO[memo_key]
    plans = _read_cache(path)
    plan = _from_cache(plans.get(key), signature)
    if plan is None:
        plan = measure(features)
        plans[key] = {"signature": signature, "plan": plan.as_dict()}
        _write_cache(path, plans)
    _MEMO[memo_key] = plan
    return plan


def auto_dtype(features: dict | None = None) -> tuple[torch.dtype, str]:
    """dtype="auto": bfloat16 where the CPU multiplies it natively (AVX512-BF16 or AMX), else
    float32; and a line saying why. On such CPUs bfloat16 is ~1.7x float32 through the engine
    with mean-pooled cosine to float32 >= 0.999 on the benchmark corpus (docs/guides/speed.md)."""
    features = cpu_features() if features is None else features
    if native_bf16(features):
        kind = "AMX" if features.get("amx") else "AVX512-BF16"
        return torch.bfloat16, f"dtype auto: bfloat16 (this CPU has {kind})"
    return torch.float32, "dtype auto: float32 (this CPU has no native bfloat16: no AVX512-BF16 or AMX)"
