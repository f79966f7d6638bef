"""Embedder: every pooling equals the same arithmetic on transformers outputs, order is kept,
long texts chunk as computed by hand, sentence-transformers layouts set the defaults."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_hf_checkpoint, make_hub_cache
from minialbert import Embedder
from minialbert.embed import LongTextWarning
from minialbert.errors import MinialbertError

SPM = Path(__file__).parent / "fixtures" / "tokenizer" / "spm" / "spiece.model"
TOL = 1e-5

TEXTS = [
    "A short one.",
    "The quick brown fox jumps over the lazy dog, then runs far away into the forest.",
    "",
    "Mid length sentence about ALBERT embeddings.",
    "   ",
    "x",
    "Numbers like 1,234.56 and words, words, words that go on for a while to make this longer than most.",
]


def vocab_size() -> int:
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=str(SPM)).get_piece_size()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    d = tmp_path_factory.mktemp("embed_ckpt")
    ref = make_hf_checkpoint(d, "AlbertModel", attn="eager", vocab_size=vocab_size(), num_hidden_layers=2)
    shutil.copy(SPM, d / "spiece.model")
    return d, ref


@pytest.fixture(scope="module")
def embedder(checkpoint):
    return Embedder.from_pretrained(checkpoint[0])


@pytest.fixture(scope="module")
def hf_tok(checkpoint, reference_transformers):
    """transformers' tokenizer (the pinned version) for the same spiece.model: the reference
    side never uses minialbert's own tokenizer."""
    return reference_transformers.AlbertTokenizer.from_pretrained(checkpoint[0])


def reference_vectors(ref, tok, texts, pooling, max_length=64, layer=None):
    """Each text alone through transformers (its tokenizer, its model; no padding at all),
    pooled by hand."""
    rows = []
    for t in texts:
        ids = tok(t, truncation=True, max_length=max_length)["input_ids"]
        with torch.no_grad():
            out = ref(torch.tensor([ids]), output_hidden_states=layer is not None)
        h = out.last_hidden_state[0] if layer is None else out.hidden_states[layer][0]
        rows.append({
            "cls": h[0],
            "mean": h.mean(0),
            "max": h.max(0).values,
            "mean_sqrt_len": h.sum(0) / np.sqrt(len(ids)),
            "weightedmean": (h * torch.arange(1, len(ids) + 1)[:, None]).sum(0) / (len(ids) * (len(ids) + 1) / 2),
            "lasttoken": h[-1],
            "pooler": out.pooler_output[0],
        }[pooling])
    return torch.stack(rows).numpy()


@pytest.mark.parametrize("pooling", ["cls", "mean", "max", "mean_sqrt_len", "weightedmean", "lasttoken", "pooler"])
def test_pooling_matches_transformers_and_order_is_restored(checkpoint, embedder, hf_tok, pooling):
    _, ref = checkpoint
    got = embedder.embed(TEXTS, pooling=pooling, batch_size=3)  # several sorted, padded batches
    want = reference_vectors(ref, hf_tok, TEXTS, pooling)
    assert got.shape == (len(TEXTS), ref.config.hidden_size) and got.dtype == np.float32
    assert np.abs(got - want).max() <= TOL


def test_layers_and_layer_average(checkpoint, embedder, hf_tok):
    _, ref = checkpoint
    for layer in (0, 1, -2):
        got = embedder.embed(TEXTS, pooling="mean", layer=layer)
        assert np.abs(got - reference_vectors(ref, hf_tok, TEXTS, "mean", layer=layer)).max() <= TOL
    got = embedder.embed(TEXTS, pooling="cls", layer=[-1, -2])
    want = (reference_vectors(ref, hf_tok, TEXTS, "cls", layer=-1)
            + reference_vectors(ref, hf_tok, TEXTS, "cls", layer=-2)) / 2
    assert np.abs(got - want).max() <= TOL
    with pytest.raises(MinialbertError, match="layer 7 out of range"):
        embedder.embed(["a"], layer=7)


def test_normalize_single_text_torch_output(embedder):
    v = embedder.embed(TEXTS, normalize=True)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)
    one = embedder.embed("A short one.", convert_to="torch")
    assert isinstance(one, torch.Tensor) and one.shape == (embedder.dim,)
    assert torch.allclose(one, torch.from_numpy(embedder.embed(["A short one."])[0]), atol=1e-6)


def test_empty_and_whitespace_texts_give_cls_sep_vector(checkpoint, embedder, hf_tok):
    _, ref = checkpoint
    tok = hf_tok
    with torch.no_grad():
        want = ref(torch.tensor([[tok.cls_token_id, tok.sep_token_id]])).last_hidden_state[0, 0].numpy()
    got = embedder.embed(["", "   ", "\n\t"])
    assert np.abs(got - want).max() <= TOL
    assert embedder.embed([]).shape == (0, embedder.dim)


def test_bad_input_types(embedder):
    with pytest.raises(TypeError, match="item 1 is int"):
        embedder.embed(["ok", 3])
    with pytest.raises(TypeError, match="got NoneType"):
        embedder.embed(None)
    with pytest.raises(MinialbertError, match="unknown pooling"):
        embedder.embed(["a"], pooling="median")
    with pytest.raises(MinialbertError, match="unknown long_text"):
        embedder.embed(["a"], long_text="squeeze")


LONG = " ".join(f"word{i % 17} and thing{i % 5}," for i in range(60))


def test_truncation_warns_once(checkpoint, embedder, hf_tok):
    _, ref = checkpoint
    emb = Embedder(embedder.model, embedder.tokenizer)  # fresh warning state
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = emb.embed([LONG, LONG + " more"], max_length=16)
        emb.embed([LONG], max_length=16)
    assert sum(issubclass(w.category, LongTextWarning) for w in caught) == 1
    want = reference_vectors(ref, hf_tok, [LONG], "cls", max_length=16)
    assert np.abs(got[:1] - want).max() <= TOL


def test_chunking_equals_hand_computed_windows(checkpoint, embedder, hf_tok):
    _, ref = checkpoint
    tok = hf_tok
    max_length, stride = 16, 4
    ids = tok(LONG, add_special_tokens=False)["input_ids"]
    assert len(ids) > 3 * max_length
    # windows of 14 content tokens, each starting 10 after the previous one, the last one ending at the text's end
    spans, start = [], 0
    while True:
        end = min(start + max_length - 2, len(ids))
        spans.append((start, end))
        if end == len(ids):
            break
        start += max_length - 2 - stride
    pooled, weights = [], []
    for s, e in spans:
        seq = [tok.cls_token_id, *ids[s:e], tok.sep_token_id]
        with torch.no_grad():
            pooled.append(ref(torch.tensor([seq])).last_hidden_state[0].mean(0).numpy())
        weights.append(e - s)
    want = np.average(np.stack(pooled), axis=0, weights=weights)
    got = embedder.embed(["short text", LONG], pooling="mean", max_length=max_length, long_text="chunk", stride=stride)
    assert np.abs(got[1] - want).max() <= TOL
    chunks = embedder.embed_chunks([LONG], pooling="mean", max_length=max_length, stride=stride)[0]
    assert chunks.token_spans == spans and chunks.weights == weights
    assert np.abs(chunks.vectors - np.stack(pooled)).max() <= TOL
    with pytest.raises(MinialbertError, match="stride"):
        embedder.embed([LONG], max_length=max_length, long_text="chunk", stride=14)
    with pytest.raises(MinialbertError, match="more than max_length"):
        embedder.embed([LONG], max_length=max_length, long_text="error")


def test_embed_tokens(checkpoint, embedder, hf_tok):
    _, ref = checkpoint
    text = "Hello, world! Café prices: 1,234.56"
    result = embedder.embed_tokens(["", text])
    assert result[0].tokens == ["[CLS]", "[SEP]"] and result[0].vectors.shape == (2, embedder.dim)
    r = result[1]
    enc = hf_tok(text, return_offsets_mapping=True)
    assert r.tokens == hf_tok.convert_ids_to_tokens(enc["input_ids"])
    with torch.no_grad():
        want = ref(torch.tensor([enc["input_ids"]])).last_hidden_state[0].numpy()
    assert r.vectors.shape == want.shape and np.abs(r.vectors - want).max() <= TOL
    assert r.offsets[0] is None and r.offsets[-1] is None
    assert r.offsets[1:-1] == [tuple(span) for span in enc["offset_mapping"][1:-1]]


def test_rank_orders_by_cosine(embedder):
    cands = ["The quick brown fox.", "Completely different words here.", "the quick brown fox"]
    ranked = embedder.rank("The quick brown fox.", cands, pooling="mean")
    assert ranked[0][1] == 0 and ranked[0][0] == pytest.approx(1.0, abs=1e-5)
    scores = [s for s, _, _ in ranked]
    assert scores == sorted(scores, reverse=True)
    assert len(embedder.rank("q", cands, top_k=2)) == 2


def write_sentence_transformers(root: Path, model_dir: Path, *, pooling: str, normalize: bool, max_seq_length: int,
                                subfolder: str = "") -> None:
    target = root / subfolder if subfolder else root
    target.mkdir(parents=True, exist_ok=True)
    for f in model_dir.iterdir():
        shutil.copy(f, target / f.name)
    modules = [{"idx": 0, "name": "0", "path": subfolder, "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (root / "modules.json").write_text(json.dumps(modules))
    (target / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False}))
    (root / "1_Pooling").mkdir(exist_ok=True)
    flags = {f"pooling_mode_{m}": False for m in ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")}
    flags[{"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token", "max": "pooling_mode_max_tokens"}[pooling]] = True
    (root / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, **flags}))


@pytest.mark.parametrize("subfolder", ["", "0_Transformer"])
def test_sentence_transformers_layout_sets_defaults(tmp_path, checkpoint, hf_tok, subfolder):
    model_dir, ref = checkpoint
    write_sentence_transformers(tmp_path / "st", model_dir, pooling="mean", normalize=True, max_seq_length=12,
                                subfolder=subfolder)
    emb = Embedder.from_pretrained(tmp_path / "st")
    assert (emb.pooling, emb.normalize, emb.max_length) == ("mean", True, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LongTextWarning)
        got = emb.embed(TEXTS)
    want = reference_vectors(ref, hf_tok, TEXTS, "mean", max_length=12)
    want = want / np.linalg.norm(want, axis=1, keepdims=True)
    assert np.abs(got - want).max() <= TOL


def test_sentence_transformers_hub_repo_offline(tmp_path, checkpoint, hf_tok):
    model_dir, ref = checkpoint
    write_sentence_transformers(tmp_path / "st", model_dir, pooling="max", normalize=False, max_seq_length=40)
    cache = tmp_path / "hub"
    snapshot = make_hub_cache(cache, "sentence-transformers/paraphrase-albert-small-v2", tmp_path / "st")
    shutil.copytree(tmp_path / "st" / "1_Pooling", snapshot / "1_Pooling")
    emb = Embedder.from_pretrained("sentence-transformers/paraphrase-albert-small-v2", cache_dir=cache,
                                   local_files_only=True)
    assert (emb.pooling, emb.normalize, emb.max_length) == ("max", False, 40)
    assert np.abs(emb.embed(TEXTS) - reference_vectors(ref, hf_tok, TEXTS, "max", max_length=40)).max() <= TOL


def test_unsupported_sentence_transformers_module(tmp_path, checkpoint):
    model_dir, _ = checkpoint
    write_sentence_transformers(tmp_path / "st", model_dir, pooling="mean", normalize=False, max_seq_length=12)
    modules = json.loads((tmp_path / "st" / "modules.json").read_text())
    modules.append({"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (tmp_path / "st" / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(MinialbertError, match="Dense"):
        Embedder.from_pretrained(tmp_path / "st")


def test_checkpoint_without_tokenizer(tmp_path):
    make_hf_checkpoint(tmp_path, "AlbertModel")
    with pytest.raises(MinialbertError, match="no spiece.model"):
        Embedder.from_pretrained(tmp_path)


def test_batch_plan_covers_every_text_once_and_splits_the_long_tail():
    lengths = [12, 400, 30, 30, 31, 200, 5, 390, 12, 12] * 7
    batches = Embedder.plan_batches(lengths, batch_size=8)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert all(1 <= len(b) <= 8 for b in batches)
    widths = [lengths[b[0]] for b in batches]
    assert widths == sorted(widths, reverse=True)
    # the 400/390-token texts are not padded together with the 200-token ones
    long_batches = [b for b in batches if lengths[b[0]] >= 390]
    assert all(min(lengths[i] for i in b) >= 390 for b in long_batches)
    padded = sum(lengths[b[0]] * len(b) for b in batches)
    fixed = sum(max(lengths[i] for i in b) * len(b) for b in
                [sorted(range(len(lengths)), key=lambda k: -lengths[k])[s:s + 8] for s in range(0, len(lengths), 8)])
    assert padded < fixed
    with pytest.raises(MinialbertError, match="batch_size"):
        Embedder.plan_batches([3], 0)
