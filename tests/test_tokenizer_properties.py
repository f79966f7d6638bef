"""Property tests (hypothesis) for minialbert.AlbertTokenizer."""

from __future__ import annotations

import unicodedata
import warnings
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from minialbert.tokenizer import AlbertTokenizer  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "tokenizer"
TOK = AlbertTokenizer.from_pretrained(FIXTURES / "spm")
TOK_KEEP = AlbertTokenizer.from_pretrained(FIXTURES / "hub", keep_accents=True, do_lower_case=False)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.text(max_size=80))
def test_no_unicode_string_crashes(text):
    for tok in (TOK, TOK_KEEP):
        enc = tok(text, return_offsets_mapping=True)
        ids = enc["input_ids"]
        assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
        assert all(0 <= i < tok.vocab_size for i in ids)
        assert len(enc["offset_mapping"]) == len(ids)
        assert all(0 <= a <= b <= len(text) for a, b in enc["offset_mapping"])
        assert tok(text)["input_ids"] == ids
        assert tok.encode(text, add_special_tokens=False) == ids[1:-1]
        assert len(tok.tokenize(text)) == len(ids) - 2
        assert isinstance(tok.decode(ids, skip_special_tokens=True), str)
        tok(text, text[::-1], truncation=True, max_length=16, padding="max_length")


_PIECE_CHARS = "".join(sorted(c for c in "abcdefghijklmnopqrstuvwxyz0123456789" if c in TOK.get_vocab()))
_WORD = st.text(alphabet=_PIECE_CHARS, min_size=1, max_size=12)


@SETTINGS
@given(st.lists(_WORD, min_size=0, max_size=12))
def test_decode_encode_round_trip_on_normalised_ascii(words):
    text = " ".join(words)
    assert TOK.decode(TOK.encode(text, add_special_tokens=False)) == text
    assert TOK.decode(TOK.encode(text), skip_special_tokens=True) == text


transformers = pytest.importorskip("transformers")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    HF = transformers.AlbertTokenizer.from_pretrained(str(FIXTURES / "spm"))
    HF_KEEP = transformers.AlbertTokenizer.from_pretrained(str(FIXTURES / "hub"), keep_accents=True, do_lower_case=False)


def _same_tables(text: str) -> bool:
    """False when a character's NFKD or lower-case mapping differs between Python's Unicode
    14.0 tables and the Rust crates' newer ones (the documented, tested difference)."""
    from tokenizers import normalizers

    nfkd, lower = normalizers.NFKD(), normalizers.Lowercase()
    return all(
        nfkd.normalize_str(c) == unicodedata.normalize("NFKD", c) and lower.normalize_str(c) == c.lower()
        for c in set(text)
    )


_ASSIGNED = st.characters(blacklist_categories=("Cs", "Cn", "Co"))


@SETTINGS
@given(st.text(alphabet=_ASSIGNED, max_size=60) | st.text(max_size=40))
def test_random_text_parity_with_transformers(text):
    assume(_same_tables(text))
    for me, hf in ((TOK, HF), (TOK_KEEP, HF_KEEP)):
        ref = hf(text, return_offsets_mapping=True)
        got = me(text, return_offsets_mapping=True)
        assert got["input_ids"] == ref["input_ids"]
        assert got["offset_mapping"] == [tuple(x) for x in ref["offset_mapping"]]
