"""Embedding size and cross-layer sharing as switches: the paper's parameter counts, transformers'
exact counts for ALBERT proper, and save/reload round trips for every strategy."""

from __future__ import annotations

import json

import pytest
import torch

from minialbert.config import AlbertConfig
from minialbert.model import AlbertForPreTraining, AlbertModel
from minialbert.params import count_parameters

# Lan et al. 2019 (ALBERT), ALBERT-base (H=768, L=12, V=30000), in millions.
# Table 3 (embedding size E, not-shared vs all-shared) and Table 4 (sharing strategy, E=768 / 128).
PAPER = {
    ("none", 64): 87, ("none", 128): 89, ("none", 256): 93, ("none", 768): 108,
    ("all", 64): 10, ("all", 128): 12, ("all", 256): 16, ("all", 768): 31,
    ("attention", 768): 83, ("ffn", 768): 57,
    ("attention", 128): 64, ("ffn", 128): 38,
}


def base(sharing: str, E: int) -> AlbertConfig:
    return AlbertConfig.from_preset("albert-base-v2").replace(embedding_size=E, sharing=sharing)


def built_count(config: AlbertConfig, pooler: bool = True) -> int:
    with torch.device("meta"):
        model = AlbertModel(config, add_pooling_layer=pooler)
    return sum(p.numel() for p in model.parameters())  # shared parameters count once


def paper_comparable(config: AlbertConfig) -> int:
    """The count the paper reports: with the pooler, except for the not-shared rows (which match
    BERT-base's 108M only without it; see the README table)."""
    n = count_parameters(config)
    return n.model - (n.pooler if config.sharing == "none" else 0)


@pytest.mark.parametrize("sharing,E", sorted(PAPER))
def test_paper_tables_within_1_5M(sharing, E):
    config = base(sharing, E)
    ours = paper_comparable(config)
    assert abs(ours - PAPER[sharing, E] * 1_000_000) <= 1_500_000, (sharing, E, ours)


@pytest.mark.parametrize("sharing", ["all", "attention", "ffn", "none"])
@pytest.mark.parametrize("E", [64, 128, 256, 768])
def test_closed_form_count_equals_built_model(sharing, E):
    config = base(sharing, E)
    n = count_parameters(config)
    assert n.model == built_count(config)
    assert n.model - n.pooler == built_count(config, pooler=False)
    with torch.device("meta"):
        pt = AlbertForPreTraining(config)
    assert n.pretraining == sum(p.numel() for p in pt.parameters())


@pytest.mark.parametrize("E", [64, 128, 256, 768])
def test_all_shared_counts_equal_transformers_exactly(E):
    import transformers

    hf = transformers.AlbertConfig(**{k: v for k, v in base("all", E).to_dict().items() if k != "model_type"})
    with torch.device("meta"):
        model = transformers.AlbertModel(hf)
    theirs = sum(p.numel() for p in model.parameters())
    assert count_parameters(base("all", E)).model == theirs == built_count(base("all", E))


def test_official_base_count():
    assert count_parameters(AlbertConfig.from_preset("albert-base-v2")).model == 11_683_584


# ------------------------------------------------------------------------- round trips
TINY = dict(vocab_size=99, embedding_size=16, hidden_size=32, num_hidden_layers=3,
            num_attention_heads=4, intermediate_size=37, max_position_embeddings=64)


def tiny(sharing: str) -> AlbertConfig:
    return AlbertConfig(**TINY, sharing=sharing)


def randomize(model: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)


@pytest.mark.parametrize("cls", [AlbertModel, AlbertForPreTraining])
@pytest.mark.parametrize("sharing", ["all", "attention", "ffn", "none"])
def test_save_reload_round_trips_exactly(tmp_path, cls, sharing):
    model = cls(tiny(sharing)).eval()
    randomize(model)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved.get("minialbert_sharing", "all") == sharing  # the config says which strategy
    again = cls.from_pretrained(tmp_path)
    assert again.config.sharing == sharing
    a, b = model.state_dict(), again.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert sum(p.numel() for p in again.parameters()) == sum(p.numel() for p in model.parameters())
    # Sharing survives the reload: the same module object, not equal copies.
    enc = (again.albert if cls is AlbertForPreTraining else again).encoder
    if sharing == "attention":
        assert all(layer.attention is enc.layers[0].attention for layer in enc.layers)
        assert len({id(layer.feed_forward) for layer in enc.layers}) == 3
    if sharing == "ffn":
        assert all(layer.feed_forward is enc.layers[0].feed_forward for layer in enc.layers)
        assert len({id(layer.attention) for layer in enc.layers}) == 3
    if sharing == "none":
        assert len({id(m) for layer in enc.layers for m in (layer.attention, layer.feed_forward)}) == 6
    ids = torch.randint(0, 99, (2, 9))
    out1, out2 = model(ids), again(ids)
    key = "last_hidden_state" if cls is AlbertModel else "prediction_logits"
    assert torch.equal(getattr(out1, key), getattr(out2, key))


def test_shared_block_stored_once(tmp_path):
    from safetensors.torch import load_file

    for sharing, n_attn, n_ffn in [("attention", 1, 3), ("ffn", 3, 1), ("none", 3, 3)]:
        AlbertModel(tiny(sharing)).save_pretrained(tmp_path / sharing)
        keys = load_file(str(tmp_path / sharing / "model.safetensors")).keys()
        assert sum(k.endswith("attention.query.weight") for k in keys) == n_attn
        assert sum(k.endswith("feed_forward.up.weight") for k in keys) == n_ffn


def test_official_layout_unchanged(tmp_path):
    """sharing="all" saves transformers' names, no minialbert key, and transformers reads it."""
    import transformers

    model = AlbertModel(tiny("all")).eval()
    randomize(model, seed=3)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert "minialbert_sharing" not in config
    from safetensors.torch import load_file

    keys = set(load_file(str(tmp_path / "model.safetensors")))
    assert "encoder.albert_layer_groups.0.albert_layers.0.attention.query.weight" in keys
    assert "encoder.embedding_hidden_mapping_in.weight" in keys
    ref = transformers.AlbertModel.from_pretrained(tmp_path, attn_implementation="eager").eval()
    ids = torch.randint(0, 99, (2, 9))
    with torch.no_grad():
        diff = (ref(ids).last_hidden_state - model(ids).last_hidden_state).abs().max().item()
    assert diff < 1e-5


def test_sharing_gradients_accumulate_into_one_tensor():
    """A shared block gets the sum of the gradients of all its calls (it is one tensor)."""
    model = AlbertModel(tiny("attention"))
    model(torch.randint(0, 99, (2, 5))).last_hidden_state.sum().backward()
    q = model.encoder.layers[0].attention.query.weight
    assert q.grad is not None and all(layer.attention.query.weight is q for layer in model.encoder.layers)
