"""What both trainers (pretrain/train.py and finetune/train.py) share: torchrun's process group,
RNG bookkeeping for bit-identical resumes, bf16 autocast, torch.compile of model.py, and the
experiment log (log.jsonl, optional TensorBoard, a tqdm bar with loss, tokens/s, MFU and ETA).

The CLI imports the trainers, the trainers import this module, and this module imports neither.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

from .errors import MinialbertError


class TrainingError(MinialbertError):
    """A training option this machine or install cannot honour (no CUDA, no tensorboard, ...)."""


# ------------------------------------------------------------------------ processes
class Dist:
    """torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK) or a single process.

    One machine:  torchrun --nproc_per_node 2 ...
    Many:         torchrun --nnodes 2 --node_rank {0,1} --nproc_per_node 8 --rdzv_backend c10d \\
                           --rdzv_endpoint HOST:29500 ...
    """

    def __init__(self, device_flag: str, error: type[MinialbertError] = TrainingError, prefix: str = ""):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device_flag not in ("auto", "cpu", "cuda") and not device_flag.startswith("cuda:"):
            raise error(f"{prefix}--device must be auto, cpu or cuda, got {device_flag!r}")
        want_cuda = device_flag.startswith("cuda") or (device_flag == "auto" and torch.cuda.is_available())
        if want_cuda and not torch.cuda.is_available():
            raise error(f"{prefix}--device {device_flag} but no CUDA device is available")
        if device_flag.startswith("cuda:") and self.world == 1:
            self.device = torch.device(device_flag)
        else:
            self.device = torch.device(f"cuda:{self.local_rank}" if want_cuda else "cpu")
        if want_cuda:
            torch.cuda.set_device(self.device)
        self.enabled = self.world > 1
        if self.enabled:
            import torch.distributed as dist

            dist.init_process_group(backend="nccl" if want_cuda else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self):
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            import torch.distributed as dist

            t = t.to(self.device)
            dist.all_reduce(t)
        return t.cpu()

    def gather(self, obj) -> list:
        if not self.enabled:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj):
        if not self.enabled:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def wrap(self, module: nn.Module) -> nn.Module:
        """DistributedDataParallel around `module` when there is more than one rank."""
        if not self.enabled:
            return module
        from torch.nn.parallel import DistributedDataParallel as DDP

        return DDP(module, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def close(self, *, finished: bool = False):
        """Destroy the process group. finished=True (every rank got here after the last
        collective): first drop what still holds Gloo work (the DDP wrapper, if a reference cycle
        keeps it) and wait for the other ranks, so that no rank tears Gloo down while a peer
        still talks to it (seen as "terminate called without an active exception", SIGABRT).
        After an error another rank may be gone, so no barrier then."""
        if self.enabled:
            import gc

            import torch.distributed as dist

            if dist.is_initialized():
                if finished:
                    gc.collect()
                    dist.barrier()
                dist.destroy_process_group()


def run_distributed(device_flag: str, train, error: type[MinialbertError] = TrainingError, prefix: str = "") -> int:
    """Set up the process group, call train(dist), and tear it down in the right order."""
    dist = Dist(device_flag, error, prefix)
    try:
        code = train(dist)
    except BaseException:
        dist.close()
        raise
    dist.close(finished=True)
    return code


# ------------------------------------------------------------------------------ RNG
def rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


# ------------------------------------------------------------------------ speed-ups
def autocast(device: torch.device, bf16: bool):
    """bf16 autocast on `device` (weights and optimizer stay float32), or nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()


def bf16_native(device: torch.device) -> bool:
    """Does the device compute bf16 in hardware (else autocast emulates it, slowly)?"""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def add_speed_args(group) -> None:
    """--bf16, --compile (and the hidden --compile-backend): the options autocast() and
    compile_module() read, the same in both trainers."""
    import argparse

    group.add_argument("--bf16", action="store_true", help="bf16 autocast (CPU or GPU); weights stay fp32")
    group.add_argument("--compile", action="store_true",
                       help="torch.compile the model (model.py as it is, subclasses and patches included)")
    group.add_argument("--compile-backend", default="inductor", help=argparse.SUPPRESS)  # tests: aot_eager


def compile_module(module: nn.Module, enabled: bool, backend: str = "inductor") -> nn.Module:
    """torch.compile(module), or the module itself.

    torch.compile traces the module's *current* Python: model.py's forward, or a subclass's,
    or a monkeypatched method, whatever a call would run; so a compiled run computes the model
    the researcher wrote (tests/test_pretrain_shards.py checks a modified layer). The original
    module keeps its parameters: save and load it, not the compiled wrapper.
    """
    if not enabled:
        return module
    return torch.compile(module, backend=backend)


def train_flops_per_token(model: nn.Module, seq_len: int) -> float:
    """Approximate training FLOPs per token: 6 x (matmul parameters x layer calls) + attention.

    Counts every Linear weight once per call (ALBERT calls a shared layer L times), forward
    2 FLOPs per multiply-add, backward twice the forward. Used for MFU, an estimate."""
    albert = getattr(model, "albert", model)
    encoder = getattr(albert, "encoder", None)
    n = 0
    if encoder is not None and hasattr(encoder, "layer_calls"):
        for layer in encoder.layer_calls():
            n += sum(m.weight.numel() for m in layer.modules() if isinstance(m, nn.Linear))
        n += encoder.project.weight.numel()
        config = albert.config
        attention = 2 * seq_len * config.hidden_size * config.num_hidden_layers  # QK^T and PV per token
    else:
        n = sum(p.numel() for p in model.parameters())
        attention = 0
    return 6.0 * n + 6.0 * attention


# ------------------------------------------------------------------------------ logs
class ExperimentLog:
    """log.jsonl (always), TensorBoard event files (report_to="tensorboard", needs the
    `tensorboard` extra), on the main rank only."""

    def __init__(self, out: Path, *, main: bool, report_to: str = "none", mode: str = "a",
                 filename: str = "log.jsonl"):
        self.main = main
        self.file = open(out / filename, mode, encoding="utf-8") if main else None
        self.tb = None
        if main and report_to == "tensorboard":
            self.tb = tensorboard_writer(out / "tensorboard")

    def write(self, record: dict, prefix: str | None = "train") -> None:
        if not self.main:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.tb is not None and prefix is not None and "step" in record:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.tb.add_scalar(f"{prefix}/{key}", value, record["step"])
            self.tb.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.tb is not None:
            self.tb.close()


def tensorboard_writer(folder: Path):
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise TrainingError("--report-to tensorboard needs the tensorboard package: "
                            "pip install 'minialbert[tensorboard]'") from None
    return SummaryWriter(log_dir=str(folder))


REPORT_TO = ("none", "tensorboard")


class Progress:
    """A tqdm bar over optimizer steps showing loss, tokens/s, MFU and ETA (tqdm's own)."""

    def __init__(self, total: int, initial: int, desc: str, *, enabled: bool, flops_per_token: float = 0.0,
                 peak_flops: float | None = None):
        self.bar = None
        self.flops_per_token = flops_per_token
        self.peak_flops = peak_flops
        self.postfix: dict = {}
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True, file=sys.stderr)

    def update(self, *, loss: float | None = None, tokens_per_s: float | None = None, **extra) -> None:
        if self.bar is None:
            return
        if loss is not None:
            self.postfix["loss"] = f"{loss:.4f}"
        if tokens_per_s is not None:
            self.postfix["tok/s"] = f"{tokens_per_s:,.0f}"
            if self.peak_flops:
                self.postfix["MFU"] = f"{100 * tokens_per_s * self.flops_per_token / self.peak_flops:.1f}%"
        self.postfix.update(extra)
        self.bar.set_postfix(self.postfix, refresh=False)
        self.bar.update(1)

    def write(self, line: str) -> None:
        """A log line on stdout, above the bar (which is on stderr): tqdm clears the bar, the line
        is written and flushed, the bar is drawn again. The flush matters when stdout is a pipe or
        a file (block-buffered) and both streams reach one terminal or log (`2>&1 | tee`): without
        it the lines would come out in a lump, out of order with the bar."""
        if self.bar is None:
            print(line, flush=True)
            return
        from tqdm import tqdm

        with tqdm.external_write_mode(file=sys.stdout):
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def mfu(tokens_per_s: float, flops_per_token: float, peak_flops: float | None) -> float | None:
    return tokens_per_s * flops_per_token / peak_flops if peak_flops else None


class Timer:
    def __init__(self):
        self.t0 = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        dt, self.t0 = now - self.t0, now
        return dt
