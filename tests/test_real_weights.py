"""The real albert-base-v2, when it is in the local Hugging Face cache (tests never download),
and scripts/verify_real_weights.py, which does the full comparison for users with network."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import closed_port, make_hf_checkpoint, online_env
from minialbert.errors import CheckpointError
from minialbert.hub import ModelSource

ROOT = Path(__file__).parents[1]
HUB_FIXTURE = ROOT / "tests" / "fixtures" / "tokenizer" / "hub"


def cached_albert_base() -> Path:
    try:  # HF_HUB_OFFLINE=1 in the tests (conftest.py): the cache only, under either name
        return ModelSource("albert-base-v2", local_files_only=True).file("config.json").parent
    except CheckpointError:
        pytest.skip("albert-base-v2 is not in the local Hugging Face cache (tests never download); "
                    "`python scripts/verify_real_weights.py` fetches it and runs the full comparison")


def test_published_transformers_integration_slice():
    """The numbers transformers' own AlbertModel integration test expects from albert-base-v2."""
    from minialbert import AlbertModel

    cached_albert_base()
    model = AlbertModel.from_pretrained("albert-base-v2", local_files_only=True)
    input_ids = torch.tensor([[0, 345, 232, 328, 740, 140, 1695, 69, 6078, 1588, 2]])
    attention_mask = torch.tensor([[0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        out = model(input_ids, attention_mask=attention_mask).last_hidden_state
    expected = torch.tensor([[[-0.6513, 1.5035, -0.2766], [-0.6515, 1.5046, -0.2780], [-0.6512, 1.5049, -0.2784]]])
    assert out.shape == (1, 11, 768)
    torch.testing.assert_close(out[:, 1:4, 1:4], expected, rtol=1e-4, atol=1e-4)


def _script():
    spec = importlib.util.spec_from_file_location("verify_real_weights", ROOT / "scripts" / "verify_real_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_verify_script_on_a_local_checkpoint(tmp_path, capsys, one_thread):
    """The script's comparisons run (and pass) on a small random checkpoint laid out like the
    real repo: spiece.model, tokenizer.json, an AlbertForPreTraining checkpoint."""
    import sentencepiece as spm

    vocab = spm.SentencePieceProcessor(model_file=str(HUB_FIXTURE / "spiece.model")).get_piece_size()
    make_hf_checkpoint(tmp_path, "AlbertForPreTraining", vocab_size=vocab, num_hidden_layers=2,
                       max_position_embeddings=96)  # the script's 512-token text is cut to 96 tokens
    for f in HUB_FIXTURE.iterdir():
        shutil.copy(f, tmp_path / f.name)
    code = _script().main(["--model", str(tmp_path), "--strings", "100"])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| check")]
    assert code == 0, out
    assert len(rows) == 6 and all(row.endswith("| yes |") for row in rows), out
    assert "tokenizer, 100 strings" in out and "0 differ" in out and "all checks passed" in out


def test_verify_script_without_network_is_one_line(tmp_path):
    url = closed_port()
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "verify_real_weights.py")],
                          capture_output=True, text=True, env=online_env(tmp_path, url), timeout=120)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("verify_real_weights: cannot get albert-base-v2: albert-base-v2: config.json is "
                                  f"not in the local Hugging Face cache and the Hub ({url}) could not be reached")
    assert proc.stderr.count("\n") == 1
