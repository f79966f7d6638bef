"""finetune under torchrun (2 CPU ranks) and with --compile: the same training as one process.

Reference: one process with the whole global batch. DistributedDataParallel averages the two
ranks' gradients of their halves, which is the gradient of the whole batch's mean loss, so the
weights agree up to float summation order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from minialbert.finetune import toy
from minialbert.finetune.train import main as finetune

REPO = Path(__file__).resolve().parent.parent
SPM = REPO / "tests" / "fixtures" / "tokenizer" / "spm" / "spiece.model"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("finetune_dist")
    toy.write_base_checkpoint(d / "base", vocab_file=SPM)
    toy.write_classification(d, n_train=64, n_dev=16)
    return d


def _args(work, out):
    return ["--model", str(work / "base"), "--train", str(work / "train.csv"), "--dev", str(work / "dev.csv"),
            "--output-dir", str(out), "--max-steps", "3", "--eval-every", "3", "--log-every", "1",
            "--classifier-dropout", "0", "--threads", "1", "--device", "cpu", "--quiet", "--lr", "3e-3", "--seed", "3"]


def _weights(out):
    from safetensors.torch import load_file

    return load_file(str(out / "model.safetensors"))


def test_two_torchrun_ranks_train_as_one_process_with_the_global_batch(work, tmp_path):
    assert finetune([*_args(work, tmp_path / "one"), "--batch-size", "8"]) == 0
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "scripts" / "finetune.py"), *_args(work, tmp_path / "two"), "--batch-size", "4"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert a.keys() == b.keys()
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
    base = {k.removeprefix("albert."): w for k, w in _weights(work / "base").items()}
    moved = max((a[k] - base[k.removeprefix("albert.")]).abs().max().item() for k in a
                if k.removeprefix("albert.") in base)
    assert moved > 1e-3  # it trained
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics["steps"] == 3 and metrics["history"][-1]["step"] == 3
    # the logged loss is the whole global batch's (the mean over both ranks), as one process logs it
    la, lb = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(la) == len(lb) == 3 and all(abs(x - y) <= 1e-5 for x, y in zip(la, lb)), (la, lb)


def _losses(out):
    return [r["loss"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "loss" in r]


def test_compile_trains_like_eager(work, tmp_path):
    """--compile (TorchDynamo's trace; aot_eager backend here, inductor's code generation takes
    minutes on 2 cores) gives the eager run's losses."""
    assert finetune([*_args(work, tmp_path / "eager"), "--batch-size", "8"]) == 0
    torch._dynamo.reset()
    assert finetune([*_args(work, tmp_path / "compiled"), "--batch-size", "8", "--compile",
                     "--compile-backend", "aot_eager"]) == 0
    torch._dynamo.reset()

    la, lb = _losses(tmp_path / "eager"), _losses(tmp_path / "compiled")
    assert len(la) == 3 and all(abs(x - y) <= 1e-5 for x, y in zip(la, lb))
