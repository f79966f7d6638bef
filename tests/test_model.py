"""The model equals transformers on the same weights: every output, many configs, both file formats."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import make_hf_checkpoint, make_hub_cache, random_inputs
from minialbert import AlbertConfig, AlbertForMaskedLM, AlbertForPreTraining, AlbertModel
from minialbert.errors import CheckpointError, ConfigError

TOL = 1e-5


def max_diff(a, b) -> float:
    return (a.float() - b.float()).abs().max().item()


def compare_pretraining(ref, ours, ids, mask, tt, pos=None) -> dict[str, float]:
    """Max |diff| of every output of AlbertForPreTraining. Calling a model always runs model.py
    (the inference engine's fused path is compared with it and transformers in test_fast.py)."""
    with torch.no_grad():
        r = ref(ids, attention_mask=mask, token_type_ids=tt, position_ids=pos,
                output_hidden_states=True, output_attentions=True)
        o = ours(ids, attention_mask=mask, token_type_ids=tt, position_ids=pos,
                 output_hidden_states=True, output_attentions=True)
        rb = ref.albert(ids, attention_mask=mask, token_type_ids=tt, position_ids=pos)
        ob = ours.albert(ids, attention_mask=mask, token_type_ids=tt, position_ids=pos)
    assert len(r.hidden_states) == len(o.hidden_states)
    assert len(r.attentions) == len(o.attentions)
    return {
        "last_hidden_state": max_diff(rb.last_hidden_state, ob.last_hidden_state),
        "pooler_output": max_diff(rb.pooler_output, ob.pooler_output),
        "hidden_states": max(max_diff(a, b) for a, b in zip(r.hidden_states, o.hidden_states)),
        "attentions": max(max_diff(a, b) for a, b in zip(r.attentions, o.attentions)),
        "mlm_logits": max_diff(r.prediction_logits, o.prediction_logits),
        "sop_logits": max_diff(r.sop_logits, o.sop_logits),
    }


CONFIGS = [
    dict(num_hidden_groups=g, inner_group_num=i, hidden_act="gelu_new")
    for g in (1, 2, 3) for i in (1, 2)
] + [dict(hidden_act="gelu"), dict(hidden_act="relu"), dict(num_hidden_groups=2, hidden_act="gelu", num_hidden_layers=5)]


@pytest.mark.parametrize("overrides", CONFIGS, ids=lambda d: "-".join(f"{k}={v}" for k, v in d.items()))
def test_equivalence_small_configs(tmp_path, overrides):
    ref = make_hf_checkpoint(tmp_path, "AlbertForPreTraining", **overrides)
    ours = AlbertForPreTraining.from_pretrained(tmp_path)
    ids, mask, tt = random_inputs()
    diffs = compare_pretraining(ref, ours, ids, mask, tt)
    assert max(diffs.values()) <= TOL, diffs
    # Hidden states follow the installed transformers: projection output + one per layer call.
    with torch.no_grad():
        o = ours(ids, attention_mask=mask, output_hidden_states=True)
    cfg = ours.config
    assert len(o.hidden_states) == 1 + cfg.num_hidden_layers * cfg.inner_group_num


def test_equivalence_bin_format_and_position_ids(tmp_path):
    ref = make_hf_checkpoint(tmp_path, "AlbertForPreTraining", bin_format=True, num_hidden_groups=2)
    assert (tmp_path / "pytorch_model.bin").exists() and not (tmp_path / "model.safetensors").exists()
    ours = AlbertForPreTraining.from_pretrained(tmp_path)
    ids, mask, tt = random_inputs(batch=2, seq=9)
    pos = torch.tensor([[3, 4, 5, 6, 7, 8, 9, 10, 11], [0, 2, 4, 6, 8, 10, 12, 14, 16]])
    diffs = compare_pretraining(ref, ours, ids, mask, tt, pos)
    assert max(diffs.values()) <= TOL, diffs


def test_albertmodel_checkpoint_model_and_engine(tmp_path):
    """An AlbertModel checkpoint (no 'albert.' prefix): model(...) (model.py) and the inference
    engine both equal transformers' sdpa path, with and without token types."""
    from minialbert.fast import InferenceEngine

    ref = make_hf_checkpoint(tmp_path, "AlbertModel", attn="sdpa")
    ours = AlbertModel.from_pretrained(tmp_path)
    assert not ours.training
    engine = InferenceEngine(ours)
    ids, mask, tt = random_inputs(batch=4, seq=13)
    with torch.inference_mode():
        assert engine.why_not_fused() is None
        for kwargs in (dict(attention_mask=mask, token_type_ids=tt), dict(attention_mask=mask)):
            r = ref(ids, **kwargs)
            o = ours(ids, **kwargs)
            assert max_diff(r.last_hidden_state, o.last_hidden_state) <= TOL  # model.py: every position
            assert max_diff(r.pooler_output, o.pooler_output) <= TOL
            e, real = engine(ids, **kwargs), mask.bool()  # the engine: real tokens; zeros at padding
            assert max_diff(r.last_hidden_state[real], e.last_hidden_state[real]) <= TOL
            assert e.last_hidden_state[~real].abs().max().item() == 0
            assert max_diff(r.pooler_output, e.pooler_output) <= TOL


def test_masked_lm_checkpoint_has_no_pooler(tmp_path):
    ref = make_hf_checkpoint(tmp_path, "AlbertForMaskedLM")
    mlm = AlbertForMaskedLM.from_pretrained(tmp_path)
    ids, mask, tt = random_inputs()
    with torch.no_grad():
        assert max_diff(ref(ids, attention_mask=mask, token_type_ids=tt).logits,
                        mlm(ids, attention_mask=mask, token_type_ids=tt).prediction_logits) <= TOL
    base = AlbertModel.from_pretrained(tmp_path)  # pooler follows the checkpoint
    assert base.pooler is None
    with pytest.raises(CheckpointError, match="add_pooling_layer=False"):
        AlbertModel.from_pretrained(tmp_path, add_pooling_layer=True)


def test_save_pretrained_round_trips_through_transformers(tmp_path):
    import transformers

    ref = make_hf_checkpoint(tmp_path / "a", "AlbertForPreTraining", num_hidden_groups=3, inner_group_num=2)
    ours = AlbertForPreTraining.from_pretrained(tmp_path / "a")
    ours.save_pretrained(tmp_path / "b")
    assert json.loads((tmp_path / "b" / "config.json").read_text())["model_type"] == "albert"
    back = transformers.AlbertForPreTraining.from_pretrained(tmp_path / "b", attn_implementation="eager").eval()
    ids, mask, tt = random_inputs()
    diffs = compare_pretraining(back, ours, ids, mask, tt)
    assert max(diffs.values()) <= TOL, diffs
    # transformers got back exactly the tensors it saved in the first place
    original = ref.state_dict()
    for key, tensor in back.state_dict().items():
        assert torch.equal(tensor, original[key]), key
    # and AlbertModel saves load into transformers' AlbertModel
    base = AlbertModel.from_pretrained(tmp_path / "a")
    base.save_pretrained(tmp_path / "c")
    back_base = transformers.AlbertModel.from_pretrained(tmp_path / "c").eval()
    with torch.no_grad():
        assert max_diff(back_base(ids, attention_mask=mask).last_hidden_state,
                        base(ids, attention_mask=mask).last_hidden_state) <= TOL


def test_hub_repo_resolved_offline_from_cache(tmp_path, monkeypatch):
    files = tmp_path / "files"
    ref = make_hf_checkpoint(files, "AlbertModel", attn="sdpa")
    cache = tmp_path / "hub"
    # The cache holds the canonical id; the user asks for the short name, and vice versa.
    make_hub_cache(cache, "albert/albert-base-v2", files)
    make_hub_cache(cache, "someone/tiny-albert", files)
    ids, mask, tt = random_inputs()
    with torch.no_grad():
        expected = ref(ids, attention_mask=mask).last_hidden_state
        for name in ("albert-base-v2", "albert/albert-base-v2", "someone/tiny-albert"):
            m = AlbertModel.from_pretrained(name, cache_dir=cache, local_files_only=True)
            assert max_diff(m(ids, attention_mask=mask).last_hidden_state, expected) <= TOL
        monkeypatch.setenv("HF_HUB_CACHE", str(cache))
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="not in the local Hugging Face cache"):
        AlbertModel.from_pretrained("someone/not-cached", cache_dir=cache)


def test_import_and_forward_do_not_import_transformers(tmp_path):
    make_hf_checkpoint(tmp_path, "AlbertModel")
    code = (
        "import sys, torch, minialbert\n"
        f"m = minialbert.AlbertModel.from_pretrained({str(tmp_path)!r})\n"
        "with torch.no_grad(): m(torch.tensor([[2, 10, 11, 3]]))\n"
        "bad = [k for k in sys.modules if k.split('.')[0] in ('transformers', 'tokenizers')]\n"
        "assert not bad, bad\n"
        "engine = [k for k in ('minialbert.fast', 'minialbert.quantize') if k in sys.modules]\n"
        "assert not engine, engine  # model.py runs on its own: the engine is opt-in\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_import_minialbert_is_light():
    code = "import sys, minialbert; print(sorted(k for k in ('torch', 'transformers', 'sentencepiece', 'huggingface_hub') if k in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_dropout_active_in_train_mode(tmp_path):
    make_hf_checkpoint(tmp_path, "AlbertModel", hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2)
    m = AlbertModel.from_pretrained(tmp_path)
    ids, mask, _ = random_inputs()
    with torch.no_grad():
        a, b = m(ids, attention_mask=mask).last_hidden_state, m(ids, attention_mask=mask).last_hidden_state
        assert torch.equal(a, b)
        m.train()
        c = m(ids, attention_mask=mask).last_hidden_state
    assert not torch.allclose(a, c)
    # gradients flow in train mode
    m.train()
    m(ids, attention_mask=mask).last_hidden_state.sum().backward()
    assert m.encoder.groups[0][0].attention.query.weight.grad is not None


# ----------------------------------------------------------------------------- errors
def test_errors_are_clear(tmp_path):
    with pytest.raises(CheckpointError, match="no such directory"):
        AlbertModel.from_pretrained(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="config.json not found"):
        AlbertModel.from_pretrained(empty)

    good = tmp_path / "good"
    make_hf_checkpoint(good, "AlbertModel")
    noweights = tmp_path / "noweights"
    noweights.mkdir()
    (noweights / "config.json").write_text((good / "config.json").read_text())
    with pytest.raises(CheckpointError, match="no weights found"):
        AlbertModel.from_pretrained(noweights)

    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "config.json").write_text((good / "config.json").read_text())
    data = (good / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cannot read weights file .*model.safetensors"):
        AlbertModel.from_pretrained(truncated)

    badbin = tmp_path / "badbin"
    badbin.mkdir()
    (badbin / "config.json").write_text((good / "config.json").read_text())
    (badbin / "pytorch_model.bin").write_bytes(b"not a zip file at all")
    with pytest.raises(CheckpointError, match=r"cannot read weights file .*pytorch_model.bin"):
        AlbertModel.from_pretrained(badbin)

    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 32}))
    with pytest.raises(ConfigError, match="model_type is 'bert'"):
        AlbertModel.from_pretrained(bert)

    rel = json.loads((good / "config.json").read_text())
    rel["position_embedding_type"] = "relative_key"
    with pytest.raises(ConfigError, match="relative_key"):
        AlbertConfig.from_dict(rel)

    shape = tmp_path / "shape"
    shape.mkdir()
    cfg = json.loads((good / "config.json").read_text())
    cfg["intermediate_size"] = 40
    (shape / "config.json").write_text(json.dumps(cfg))
    (shape / "model.safetensors").write_bytes((good / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match=r"wrong shape: .*ffn\.weight"):
        AlbertModel.from_pretrained(shape)


def test_unexpected_and_missing_keys_listed(tmp_path):
    from safetensors.torch import load_file, save_file

    make_hf_checkpoint(tmp_path, "AlbertModel")
    state = load_file(tmp_path / "model.safetensors")
    state["encoder.mystery.weight"] = torch.zeros(2)
    del state["encoder.embedding_hidden_mapping_in.bias"]
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError) as e:
        AlbertModel.from_pretrained(tmp_path)
    msg = str(e.value)
    assert "missing 1: encoder.embedding_hidden_mapping_in.bias" in msg
    assert "unexpected 1: encoder.mystery.weight" in msg


def test_config_json_round_trip_and_presets(tmp_path):
    c = AlbertConfig.from_preset("albert-xlarge-v2")
    assert (c.hidden_size, c.num_attention_heads, c.num_hidden_layers) == (2048, 16, 24)
    assert AlbertConfig.from_preset("albert/albert-large-v1").hidden_act == "gelu"
    c.to_json(tmp_path / "config.json")
    assert AlbertConfig.from_json(tmp_path / "config.json") == c
    with pytest.raises(ConfigError, match="not divisible"):
        AlbertConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ConfigError, match="not valid JSON"):
        (tmp_path / "bad.json").write_text("{oops")
        AlbertConfig.from_json(tmp_path / "bad.json")


def test_preset_values_match_transformers_defaults_for_xxlarge():
    import transformers

    ref = transformers.AlbertConfig()  # transformers' defaults are albert-xxlarge-v2's
    ours = AlbertConfig.from_preset("albert-xxlarge-v2")
    for field in ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                  "intermediate_size", "hidden_act", "max_position_embeddings", "layer_norm_eps"):
        assert getattr(ours, field) == getattr(ref, field), field


# ------------------------------------------------------------------------- full size
@pytest.mark.slow
@pytest.mark.parametrize("seq", [128, 512])
def test_equivalence_full_size_base(tmp_path_factory, seq):
    import transformers

    d = tmp_path_factory.mktemp(f"base{seq}")
    config = transformers.AlbertConfig(**{k: v for k, v in AlbertConfig.from_preset("albert-base-v2").to_dict().items()
                                          if k != "model_type"})
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    ref = transformers.AlbertForPreTraining(config).eval()
    with torch.no_grad():  # every parameter random: LayerNorm weights/biases and biases too (init: 1 and 0)
        for name, p in ref.named_parameters():
            scale = 0.1 if ("LayerNorm" in name or name.endswith("bias")) else 0.02
            p.add_(torch.randn_like(p) * scale)
    ref.save_pretrained(d)
    ours = AlbertForPreTraining.from_pretrained(d)
    ids, mask, tt = random_inputs(batch=2, seq=seq, vocab=30000)
    diffs = compare_pretraining(ref, ours, ids, mask, tt)
    assert max(diffs.values()) <= TOL, diffs


def test_heads_missing_from_a_base_checkpoint_are_explained(tmp_path):
    make_hf_checkpoint(tmp_path, "AlbertModel")
    with pytest.raises(CheckpointError, match=r"missing .*predictions\.dense\.weight.*no pre-training heads"):
        AlbertForMaskedLM.from_pretrained(tmp_path)


def test_activations_are_the_configs_names_and_match_transformers():
    """One list of names (config.py, torch-free) and their implementations (model.py), equal to
    transformers' ACT2FN on a range of inputs."""
    from transformers.activations import ACT2FN

    from minialbert.config import SUPPORTED_ACTIVATIONS
    from minialbert.model import ACTIVATIONS

    assert sorted(ACTIVATIONS) == sorted(SUPPORTED_ACTIVATIONS)
    x = torch.linspace(-6, 6, 1001)
    for name, fn in ACTIVATIONS.items():
        assert max_diff(fn(x), ACT2FN[name](x)) <= 1e-6, name
