"""Property tests (hypothesis) for minialbert.AlbertTokenizer, against transformers where the
Unicode tables allow (see test_unicode_tables_only_differences): a spiece.model folder, a
Hub-style one with tokenizer.json, and a tokenizer.json-only folder saved by transformers v5."""

from __future__ import annotations

import unicodedata
import warnings
from pathlib import Path

import transformers
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from tokenizers import normalizers

from minialbert.tokenizer import AlbertTokenizer

FIXTURES = Path(__file__).parent / "fixtures" / "tokenizer"
TOK = AlbertTokenizer.from_pretrained(FIXTURES / "spm")
TOK_KEEP = AlbertTokenizer.from_pretrained(FIXTURES / "hub", keep_accents=True, do_lower_case=False)
# the reference is the pinned transformers (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("reference_transformers")
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    HF = transformers.AlbertTokenizer.from_pretrained(str(FIXTURES / "spm"))
    HF_KEEP = transformers.AlbertTokenizer.from_pretrained(str(FIXTURES / "hub"), keep_accents=True, do_lower_case=False)


@SETTINGS
@given(st.text(max_size=80))
def test_no_unicode_string_crashes(text):
    """Any string: well-formed output, the API's entry points agree, decoding as transformers."""
    for tok, hf in ((TOK, HF), (TOK_KEEP, HF_KEEP)):
        enc = tok(text, return_offsets_mapping=True)
        ids = enc["input_ids"]
        assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
        assert all(0 <= i < tok.vocab_size for i in ids)
        assert len(enc["offset_mapping"]) == len(ids)
        assert all(0 <= a <= b <= len(text) for a, b in enc["offset_mapping"])
        assert tok(text)["input_ids"] == ids
        assert tok.encode(text, add_special_tokens=False) == ids[1:-1]
        assert len(tok.tokenize(text)) == len(ids) - 2
        for skip in (False, True):  # decoding the same ids: transformers is the reference
            assert tok.decode(ids, skip_special_tokens=skip) == hf.decode(ids, skip_special_tokens=skip)
        pair = tok(text, text[::-1], truncation=True, max_length=16, padding="max_length")
        n = sum(pair["attention_mask"])
        assert len(pair["input_ids"]) == len(pair["token_type_ids"]) == 16
        assert pair["attention_mask"] == [1] * n + [0] * (16 - n)
        assert pair["input_ids"][n:] == [tok.pad_token_id] * (16 - n)
        assert pair["input_ids"][0] == tok.cls_token_id and pair["input_ids"][n - 1] == tok.sep_token_id
        # type ids: 0 over [CLS] A [SEP], 1 over B [SEP] (an empty second text is no pair), 0 on padding
        first = pair["token_type_ids"].index(1) if 1 in pair["token_type_ids"] else n
        assert pair["token_type_ids"] == [0] * first + [1] * (n - first) + [0] * (16 - n)
        assert pair["input_ids"][first - 1] == tok.sep_token_id
        assert (first < n) == (text != "")


_PIECE_CHARS = "".join(sorted(c for c in "abcdefghijklmnopqrstuvwxyz0123456789" if c in TOK.get_vocab()))
_WORD = st.text(alphabet=_PIECE_CHARS, min_size=1, max_size=12)


@SETTINGS
@given(st.lists(_WORD, min_size=0, max_size=12))
def test_decode_encode_round_trip_on_normalised_ascii(words):
    text = " ".join(words)
    assert TOK.decode(TOK.encode(text, add_special_tokens=False)) == text
    assert TOK.decode(TOK.encode(text), skip_special_tokens=True) == text


_RUST_NFKD, _RUST_LOWER = normalizers.NFKD(), normalizers.Lowercase()


def _same_tables(text: str) -> bool:
    """False when a character's NFKD or lower-case mapping differs between Python's Unicode
    14.0 tables and the Rust crates' newer ones (the documented, tested difference)."""
    return all(
        _RUST_NFKD.normalize_str(c) == unicodedata.normalize("NFKD", c) and _RUST_LOWER.normalize_str(c) == c.lower()
        for c in set(text)
    )


_ASSIGNED = st.characters(blacklist_categories=("Cs", "Cn", "Co"))


@pytest.fixture(scope="module")
def json_only(tmp_path_factory):
    """A folder as transformers v5 saves it: tokenizer.json, no spiece.model."""
    d = tmp_path_factory.mktemp("json-only")
    HF.save_pretrained(d)
    assert not (d / "spiece.model").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf = transformers.AlbertTokenizer.from_pretrained(str(d))
    return AlbertTokenizer.from_pretrained(d), hf


@SETTINGS
@given(text=st.text(alphabet=_ASSIGNED, max_size=60) | st.text(max_size=40))
def test_random_text_parity_with_transformers(json_only, text):
    assume(_same_tables(text))
    for me, hf in ((TOK, HF), (TOK_KEEP, HF_KEEP), json_only):
        ref = hf(text, return_offsets_mapping=True)
        got = me(text, return_offsets_mapping=True)
        assert got["input_ids"] == ref["input_ids"]
        assert got["offset_mapping"] == [tuple(x) for x in ref["offset_mapping"]]
        kw = dict(truncation=True, max_length=16, padding="max_length", return_token_type_ids=True)
        ref = hf(text, text[::-1], **kw)
        got = me(text, text[::-1], **kw)
        assert all(got[k] == ref[k] for k in ("input_ids", "token_type_ids", "attention_mask"))
