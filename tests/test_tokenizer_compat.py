"""compat="transformers<5.25" against transformers 5.24.0, and what the modes record and refuse.

The default mode is compared with the pinned transformers (5.25.0) live in test_tokenizer.py.
The old mode needs transformers 5.24.0, which cannot be installed beside the pinned release in
one environment (CI installs only pyproject's extras), so its reference is the recorded output
of transformers 5.24.0 itself on the same hard cases and fixture models:
tests/fixtures/tokenizer/transformers-5.24.0.json.gz, written by
`python scripts/tokenizer_reference.py --transformers 5.24.0 --out ...` (it pip-installs 5.24.0
into a temporary folder and runs it there). The file records the digests of the cases and
models it was made from, checked here, so it cannot go stale silently.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from minialbert.errors import ConfigError
from minialbert.tokenizer import AlbertTokenizer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import tokenizer_reference as reference  # noqa: E402

RECORD_524 = reference.FIXTURES / "transformers-5.24.0.json.gz"
REGENERATE = f"regenerate it: python scripts/tokenizer_reference.py --transformers 5.24.0 --out {RECORD_524.relative_to(ROOT)}"


@pytest.fixture(scope="module")
def record_524():
    data = reference.load(RECORD_524)
    assert data["transformers"] == "5.24.0", f"{RECORD_524.name} was written by transformers {data['transformers']}"
    assert data["models"] == reference.model_digests(), f"the fixture models changed since {RECORD_524.name}: {REGENERATE}"
    cases = reference.cases()
    assert data["cases"] == {k: reference.digest(v) for k, v in cases.items()}, (
        f"tests/tokenizer_cases.py changed since {RECORD_524.name}: {REGENERATE}"
    )
    return data


def _mine(tok: AlbertTokenizer) -> dict:
    def tokenize(texts, pairs=None, **kw):
        return tok(texts, pairs, **kw)

    return reference.encode_all(tokenize)


def _mismatches(got: dict, want: dict) -> dict[str, int]:
    return {
        f"{name}.{field}": sum(a != b for a, b in zip(got[name][field], want[name][field], strict=True))
        for name in want for field in want[name]
    }


@pytest.mark.parametrize("config", reference.CONFIGS, ids=lambda c: reference.config_name(*c) if isinstance(c, tuple) else c)
def test_old_mode_equals_transformers_524(record_524, config):
    """Every hard case (ids and offsets of single texts; ids, token types, mask and offsets of
    truncated, padded pairs) as transformers 5.24.0 tokenized it."""
    folder, kwargs = config
    want = record_524["configs"][reference.config_name(folder, kwargs)]
    old = AlbertTokenizer.from_pretrained(reference.FIXTURES / folder, compat="transformers<5.25", **kwargs)
    bad = {k: n for k, n in _mismatches(_mine(old), want).items() if n}
    assert not bad, f"compat='transformers<5.25' differs from transformers 5.24.0: {bad}"
    # The default mode differs from 5.24 exactly where 5.25 does: with spiece.model alone
    # (no tokenizer.json listing the added tokens), on texts with ALBERT's symbols.
    new = _mismatches(_mine(AlbertTokenizer.from_pretrained(reference.FIXTURES / folder, **kwargs)), want)
    if folder == "spm":
        assert new["symbols.input_ids"] > 500 and new["hard.input_ids"] > 50
    else:
        assert not any(new.values()), new


def test_old_mode_on_the_issue_examples():
    """Issue 25's table (5.24 column), by hand."""
    old = AlbertTokenizer.from_pretrained(reference.FIXTURES / "spm", compat="transformers<5.25")
    new = AlbertTokenizer.from_pretrained(reference.FIXTURES / "spm")
    assert old.tokenize("(paren)") == ["(", "▁", "p", "a", "re", "n", ")"]
    assert new.tokenize("(paren)") == ["▁", "(", "p", "a", "re", "n", ")"]
    assert old.tokenize("a(b)c") == ["▁", "a", "(", "▁", "b", ")", "▁", "c"]
    assert new.tokenize("a(b)c") == ["▁", "a", "(", "b", ")", "c"]
    assert old.tokenize("$1,234.56") == ["▁", "$", "1", ",", "2", "3", "4", ".", "▁", "5", "6"]
    assert new.tokenize("$1,234.56") == ["▁", "$", "1", ",", "2", "3", "4", ".", "5", "6"]


def test_old_mode_is_recorded_and_read_back_by_transformers(record_524, tmp_path, reference_transformers):
    """save_pretrained records the mode; minialbert reads it back, and so does transformers 5.25
    (an independent reader): the saved tokenizer_config.json lists the symbols as added tokens,
    so 5.25 tokenizes that folder as 5.24 did."""
    import warnings

    old = AlbertTokenizer.from_pretrained(reference.FIXTURES / "spm", compat="transformers<5.25")
    old.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["minialbert_compat"] == "transformers<5.25"
    again = AlbertTokenizer.from_pretrained(tmp_path)
    assert again.compat == "transformers<5.25"
    want = record_524["configs"]["spm"]
    assert not any(_mismatches(_mine(again), want).values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf = reference_transformers.AlbertTokenizer.from_pretrained(str(tmp_path))
    texts = reference.cases()["symbols"]
    assert hf(texts)["input_ids"] == want["symbols"]["input_ids"]


def test_unknown_compat_is_one_line():
    with pytest.raises(ConfigError) as e:
        AlbertTokenizer.from_pretrained(reference.FIXTURES / "spm", compat="transformers<5.24")
    assert str(e.value) == (
        "compat must be one of 'transformers', 'transformers<5.25', 'original', not 'transformers<5.24'"
    )


def test_folder_saved_before_the_change_keeps_its_tokenization(record_524, tmp_path, reference_transformers):
    """A folder that minialbert saved before this change (pre-training output, Embedder or
    tokenizer save_pretrained from a spiece.model) lists the symbols as added tokens in its
    tokenizer_config.json, under compat 'transformers'. The files decide: it keeps tokenizing as
    it did (as 5.24), here and in transformers 5.25."""
    import warnings

    AlbertTokenizer.from_pretrained(reference.FIXTURES / "spm", compat="transformers<5.25").save_pretrained(tmp_path)
    path = tmp_path / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["minialbert_compat"] = "transformers"  # what the old code wrote
    path.write_text(json.dumps(config), encoding="utf-8")
    texts = reference.cases()["symbols"]
    want = record_524["configs"]["spm"]["symbols"]["input_ids"]
    assert AlbertTokenizer.from_pretrained(tmp_path)(texts)["input_ids"] == want
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert reference_transformers.AlbertTokenizer.from_pretrained(str(tmp_path))(texts)["input_ids"] == want


def test_streaming_fingerprint_tells_the_two_tokenizations_apart():
    """A shard directory started with 5.24's ids must not be resumed with 5.25's: both modes were once
    called "transformers", so the fingerprint records which pieces are added tokens, and that is what
    differs (the symbols are added tokens in the old mode only, as transformers 5.24 made them)."""
    from types import SimpleNamespace

    import torch

    from minialbert.config import AlbertConfig
    from minialbert.model import AlbertModel
    from minialbert.stream import model_identity

    old = AlbertTokenizer.from_pretrained(reference.FIXTURES / "spm", compat="transformers<5.25")
    new = AlbertTokenizer.from_pretrained(reference.FIXTURES / "spm")
    assert set(old.get_added_vocab()) - set(new.get_added_vocab()) >= {"(", ")", "-", "."}
    torch.manual_seed(0)
    model = AlbertModel(AlbertConfig(vocab_size=len(new), embedding_size=8, hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32))

    def identity(tok):
        return model_identity(SimpleNamespace(model=model, tokenizer=tok, lowercase=False))["fingerprint"]

    assert identity(new) == identity(AlbertTokenizer.from_pretrained(reference.FIXTURES / "spm"))
    assert identity(old) != identity(new)
