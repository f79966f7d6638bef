"""The offline demo checkpoint (scripts/make_demo_checkpoint.py): a real word-piece vocabulary in
ALBERT's layout, read the same way by transformers, on albert-base-v2's shape (issue 26: its
tokenizer used to turn English into single characters and `q` into <unk>)."""

from __future__ import annotations

import importlib.util
import json
import os
import string
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "make_demo_checkpoint.py"
ENGLISH = [
    "The quick brown fox jumps over the lazy dog.",
    "Return a new list containing all items from the iterable in ascending order.",
    "Paris is the capital of France, and Quebec is a province of Canada.",
    "Quiet queens quickly acquire unique antique quilts; jazz, wax and zebras too.",
]
# albert-base-v2's config.json on the Hub (NOTES.md), apart from the vocabulary
BASE_SHAPE = dict(embedding_size=128, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                  intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2, hidden_act="gelu_new",
                  num_hidden_groups=1, inner_group_num=1)


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _script():
    return _load(SCRIPT)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    r = subprocess.run([sys.executable, str(SCRIPT), "demo-albert"], cwd=work, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("wrote a random-weight ALBERT (") and "6,000-piece vocabulary" in r.stdout, r.stdout
    return work / "demo-albert"


def test_demo_has_albert_base_shape_and_a_hub_layout(demo):
    assert sorted(p.name for p in demo.iterdir()) == ["config.json", "model.safetensors", "spiece.model"]
    config = json.loads((demo / "config.json").read_text())
    assert {k: config[k] for k in BASE_SHAPE} == BASE_SHAPE and config["vocab_size"] == 6000


def test_demo_tokenizer_makes_word_pieces_and_agrees_with_transformers(demo):
    import transformers

    from minialbert import AlbertTokenizer

    ref = transformers.AlbertTokenizer.from_pretrained(str(demo))
    ours = AlbertTokenizer.from_pretrained(demo)
    assert len(ref) == 6000 and ref.convert_ids_to_tokens(list(range(5))) == ["<pad>", "<unk>", "[CLS]", "[SEP]",
                                                                            "[MASK]"]
    for text in ENGLISH:
        ids = ref(text)["input_ids"]
        assert ours(text)["input_ids"] == ids, text
        assert ref.unk_token_id not in ids, (text, ref.convert_ids_to_tokens(ids))
    # Every ASCII letter, digit and common punctuation mark is known (q used to be <unk>).
    for ch in string.ascii_letters + string.digits + ".,;:!?'()-\"":
        assert ref.unk_token_id not in ref(ch, add_special_tokens=False)["input_ids"], ch
    # English words are word pieces, not letters (the old demo tokenizer: 1.1 letters a piece,
    # this one 2.5 on these sentences), and common words are whole pieces.
    pieces = [p.lstrip("▁") for t in ENGLISH for p in ref.tokenize(t)]
    pieces = [p for p in pieces if p.isalpha()]
    assert sum(map(len, pieces)) / len(pieces) > 2, pieces
    for word in ("the", "return", "list", "new", "is", "of", "and", "function", "value"):
        assert ref.tokenize(word) == ["▁" + word], (word, ref.tokenize(word))


@pytest.mark.slow  # albert-base-sized
def test_demo_loads_in_transformers_with_the_same_outputs(demo):
    import transformers

    import minialbert

    ref = transformers.AlbertForPreTraining.from_pretrained(demo).eval()
    ours = minialbert.AlbertForPreTraining.from_pretrained(demo).eval()
    enc = transformers.AlbertTokenizer.from_pretrained(str(demo))("Paris is the [MASK] of France.",
                                                                  return_tensors="pt")
    with torch.no_grad():
        want = ref(**enc).prediction_logits
        got = ours(enc["input_ids"], attention_mask=enc["attention_mask"]).prediction_logits
    assert want.shape == (1, enc["input_ids"].shape[1], 6000)
    assert (want - got).abs().max().item() < 1e-4


def test_vocabulary_training_is_deterministic_and_needs_no_paths():
    script = _script()
    corpus = _load(ROOT / "docs" / "mk_stdlib_corpus.py")
    docs = corpus.docstring_documents(max_chars=60_000)  # a sample of the standard library's docstrings
    a, b = script.train_vocabulary(docs, 500), script.train_vocabulary(docs, 500)
    assert a == b  # the same bytes: no temporary file name is recorded in the model
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_proto=a)
    assert [sp.id_to_piece(i) for i in range(5)] == ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
    assert "▁the" in [sp.id_to_piece(i) for i in range(sp.get_piece_size())]


def test_a_missing_corpus_is_one_line_and_writes_nothing(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    r = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "demo"), "--corpus", str(tmp_path / "none.txt")],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == f"make_demo_checkpoint.py: error: corpus file not found: {tmp_path / 'none.txt'}\n"
    assert not (tmp_path / "demo").exists()
