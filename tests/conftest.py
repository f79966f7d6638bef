"""Shared fixtures: tiny random-weight checkpoints written by transformers, and a Hub cache.

No test touches the network: checkpoints are made here with `save_pretrained`, and Hub
resolution is exercised on a Hugging Face cache directory laid out by `make_hub_cache`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

# Never let a test reach for the network, whatever the machine's environment says.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# The engine's per-machine plan (minialbert/plan.py) is cached for this session only (subprocesses
# included), never in the user's cache directory.
os.environ["MINIALBERT_CACHE_DIR"] = tempfile.mkdtemp(prefix="minialbert-test-cache-")
os.environ.pop("MINIALBERT_ENGINE_PLAN", None)

# The transformers release the reference-comparing tests expect (pinned in pyproject.toml's test
# extra): its tokenization of ALBERT changed in 5.25 (issue 25), so a test must not pass or fail
# by whichever version pip happened to install.
REFERENCE_TRANSFORMERS = "5.25.0"


@pytest.fixture(scope="session")
def reference_transformers():
    """transformers, checked to be the pinned reference version (use in tests that compare with it)."""
    import transformers

    if transformers.__version__ != REFERENCE_TRANSFORMERS:
        pytest.fail(
            f"this test compares with transformers {REFERENCE_TRANSFORMERS} (pinned in pyproject.toml's test "
            f"extra) and found transformers {transformers.__version__}: "
            f"pip install 'transformers=={REFERENCE_TRANSFORMERS}'",
            pytrace=False,
        )
    return transformers


def pytest_report_header(config):
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("transformers")
    except PackageNotFoundError:
        found = "not installed"
    return f"transformers {found} (the parity tests expect {REFERENCE_TRANSFORMERS})"


TINY = dict(
    vocab_size=99, embedding_size=16, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
    intermediate_size=37, max_position_embeddings=64, hidden_act="gelu_new",
)


def hf_config(**overrides):
    import transformers

    return transformers.AlbertConfig(**{**TINY, **overrides})


def make_hf_checkpoint(directory: Path, arch: str = "AlbertModel", *, bin_format: bool = False,
                       seed: int = 0, attn: str = "eager", **overrides):
    """Save a random-weight transformers ALBERT in `directory`; return the reference model (eval)."""
    import transformers

    torch.manual_seed(seed)
    config = hf_config(**overrides)
    config._attn_implementation = attn
    model = getattr(transformers, arch)(config).eval()
    # Random LayerNorm/bias values too, so that a swapped or skipped parameter cannot hide.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(directory)
    if bin_format:  # transformers v5 always writes safetensors; write the legacy format by hand
        (Path(directory) / "model.safetensors").unlink()
        torch.save(model.state_dict(), Path(directory) / "pytorch_model.bin")
    return model


def make_hub_cache(cache_dir: Path, repo_id: str, files_from: Path, commit: str = "0" * 40) -> Path:
    """Lay out `files_from`'s files as huggingface_hub's cache stores repo `repo_id` at `commit`."""
    repo_dir = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    for f in Path(files_from).iterdir():
        if f.is_file():
            shutil.copy(f, snapshot / f.name)
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(commit)
    return snapshot


def run_ort(proto_or_path, ids, mask, tt):
    """An ONNX model (proto or file) run by ONNX Runtime on the CPU: its outputs as numpy arrays."""
    import onnxruntime as ort

    source = proto_or_path.SerializeToString() if hasattr(proto_or_path, "SerializeToString") else str(proto_or_path)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    return session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy(), "token_type_ids": tt.numpy()})


def random_inputs(batch=3, seq=11, vocab=99, seed=1, types=True):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (batch, seq), generator=g)
    mask = torch.ones_like(ids)
    for b in range(1, batch):  # every row but the first is padded at the end
        keep = max(2, seq - 3 * b)
        mask[b, keep:] = 0
        ids[b, keep:] = 0
    tt = torch.zeros_like(ids)
    if types:
        tt[:, seq // 2:] = 1
        tt = tt * mask
    return ids, mask, tt


@pytest.fixture(scope="module")
def one_thread():
    """One torch intra-op thread for a module of tiny models (use with
    `pytestmark = pytest.mark.usefixtures("one_thread")`). Speed only: their matmuls gain nothing
    from threads, and on a busy 2-core machine two spin-waiting OpenMP threads made them ~20x
    slower. Restored after the module."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def fake_int8_flags(monkeypatch):
    """fake_int8_flags(vnni=...): make minialbert.plan.cpu_features report an x86 CPU with or
    without VNNI (no AMX), everything else as this machine's; returns this machine's real flags."""
    import minialbert.plan as plan

    real = plan.cpu_features()

    def fake(vnni: bool) -> dict:
        monkeypatch.setattr(plan, "cpu_features", lambda: {**real, "machine": "x86_64", "vnni": vnni, "amx": False})
        return real

    return fake


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny AlbertForPreTraining checkpoint (all heads) and its transformers reference."""
    d = tmp_path_factory.mktemp("tiny_pretraining")
    ref = make_hf_checkpoint(d, "AlbertForPreTraining")
    return d, ref


def closed_port() -> str:
    """A loopback URL where nothing listens: connecting is refused at once, as on a machine
    without network (tests never send traffic anywhere but 127.0.0.1)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def online_env(tmp_path: Path, endpoint: str, **extra: str) -> dict:
    """The environment of a fresh process that may talk to the Hub at `endpoint`: this session's
    HF_HUB_OFFLINE=1 and every other HF_*/TRANSFORMERS_* setting removed, an empty cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_ENDPOINT=endpoint, HF_HUB_CACHE=str(tmp_path / "cache"), HF_HOME=str(tmp_path / "hf"),
               HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1", **extra)
    return env


@pytest.fixture(scope="session")
def demo_checkpoint(tmp_path_factory) -> Path:
    """scripts/make_demo_checkpoint.py's folder (albert-base-v2's shape, random weights), made once per session."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("demo") / "demo-albert"
    made = subprocess.run([sys.executable, str(Path(__file__).parents[1] / "scripts" / "make_demo_checkpoint.py"),
                           str(out)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    return out
