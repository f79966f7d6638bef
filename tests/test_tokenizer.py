"""minialbert.AlbertTokenizer against transformers.AlbertTokenizer (v5, tokenizers-backed).

Expected outputs are generated live from transformers (a test-only dependency) on the
committed fixture models in tests/fixtures/tokenizer/ (made by scripts/make_tokenizer_fixture.py):
spm/ (spiece.model alone), hub/ (spiece.model + tokenizer.json as in the albert-base-v2 repo,
[MASK] with lstrip) and hub_converted/ (tokenizer.json as transformers' converter writes it).

Folders with a tokenizer.json and no spiece.model are made at test time (json_only_dirs):
v5-spm/ and v5-hub/ are what the installed transformers' `save_pretrained` writes for spm/ and
hub/; json-hub/ and json-hub_converted/ hold only the converter's tokenizer.json of hub/ and
hub_converted/ (no tokenizer_config.json).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import unicodedata
import warnings
from pathlib import Path

import pytest
import transformers

from minialbert.errors import CheckpointError, MinialbertError
from minialbert.tokenizer import AlbertTokenizer

# Every test here compares with the pinned transformers (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("reference_transformers")
FIXTURES = Path(__file__).parent / "fixtures" / "tokenizer"
FOLDERS = ["spm", "hub", "hub_converted"]


JSON_ONLY = ["v5-spm", "v5-hub", "json-hub", "json-hub_converted"]
_made: dict[str, Path] = {}


@pytest.fixture(scope="session")
def json_only_dirs(tmp_path_factory):
    """Folders with tokenizer.json and no spiece.model (see the module docstring)."""
    if not _made:
        for name in JSON_ONLY:
            d = tmp_path_factory.mktemp(name)
            kind, src = name.split("-", 1)
            if kind == "v5":
                _hf(src).save_pretrained(d)
            else:
                shutil.copy(FIXTURES / src / "tokenizer.json", d / "tokenizer.json")
            assert not (d / "spiece.model").exists()
            _made[name] = d
    return dict(_made)


def _path(folder: str) -> Path:
    return _made[folder] if folder in _made else FIXTURES / folder


def _hf(folder: str, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return transformers.AlbertTokenizer.from_pretrained(str(_path(folder)), **kw)


# ------------------------------------------------------------------------------------------
# The hard strings
# ------------------------------------------------------------------------------------------

# The hard strings live in tests/tokenizer_cases.py (scripts/tokenizer_reference.py uses them too).
from tokenizer_cases import HARD_STRINGS, LONG_TEXTS, PAIRS, SYMBOL_STRINGS  # noqa: E402

CONFIGS = [
    ("spm", {}),
    ("spm", {"keep_accents": True}),
    ("spm", {"do_lower_case": False}),
    ("spm", {"do_lower_case": False, "keep_accents": True}),
    ("hub", {}),
    ("hub", {"do_lower_case": False, "keep_accents": True}),
    ("hub_converted", {}),
    ("hub_converted", {"keep_accents": True}),
    # tokenizer.json without spiece.model
    ("v5-spm", {}),
    ("v5-spm", {"do_lower_case": False, "keep_accents": True}),
    ("v5-hub", {}),
    ("json-hub", {}),
    ("json-hub_converted", {"keep_accents": True}),
]


def _cid(c):
    folder, kw = c
    return folder + "".join(f"-{k}={v}" for k, v in kw.items())


@pytest.fixture(scope="module", params=CONFIGS, ids=_cid)
def pair_of_tokenizers(request, json_only_dirs):
    folder, kw = request.param
    me = AlbertTokenizer.from_pretrained(_path(folder), **kw)
    assert (me.vocab_file is None) == (folder in JSON_ONLY)
    return _hf(folder, **kw), me


def _ref(hf, *args, **kw):
    enc = hf(*args, return_token_type_ids=True, return_attention_mask=True, **kw)
    out = {k: enc[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
    if "offset_mapping" in enc:
        om = enc["offset_mapping"]
        out["offset_mapping"] = (
            [[tuple(x) for x in row] for row in om] if om and isinstance(om[0], list) else [tuple(x) for x in om]
        )
    return out


def _mine(me, *args, **kw):
    enc = me(*args, **kw)
    return {k: enc[k] for k in ("input_ids", "token_type_ids", "attention_mask", "offset_mapping") if k in enc}


# ------------------------------------------------------------------------------------------
# Parity
# ------------------------------------------------------------------------------------------


ALL_HARD = HARD_STRINGS + SYMBOL_STRINGS


def test_hard_strings_batch(pair_of_tokenizers):
    hf, me = pair_of_tokenizers
    ref = _ref(hf, ALL_HARD)
    got = _mine(me, ALL_HARD)
    bad = [s for k, s in enumerate(ALL_HARD) if any(ref[f][k] != got[f][k] for f in ref)]
    assert not bad, f"{len(bad)} mismatches, first: {bad[:3]!r}"


def test_hard_strings_offsets(pair_of_tokenizers):
    hf, me = pair_of_tokenizers
    ref = _ref(hf, ALL_HARD, return_offsets_mapping=True)
    got = _mine(me, ALL_HARD, return_offsets_mapping=True)
    bad = [s for k, s in enumerate(ALL_HARD) if any(ref[f][k] != got[f][k] for f in ref)]
    assert not bad, f"{len(bad)} mismatches, first: {bad[:3]!r}"


def test_single_text_and_tokenize(pair_of_tokenizers):
    hf, me = pair_of_tokenizers
    for s in HARD_STRINGS[:80]:
        assert _mine(me, s) == {k: v for k, v in _ref(hf, s).items()}, repr(s)
        assert me.tokenize(s) == hf.tokenize(s), repr(s)
        assert me.encode(s, add_special_tokens=False) == hf.encode(s, add_special_tokens=False), repr(s)
        assert me.encode(s) == hf.encode(s), repr(s)


@pytest.mark.parametrize("truncation", [False, "longest_first", "only_first", "only_second"])
def test_pairs(pair_of_tokenizers, truncation):
    hf, me = pair_of_tokenizers
    a = [p[0] for p in PAIRS]
    b = [p[1] for p in PAIRS]
    if truncation is False:
        kw: dict = {"padding": True}
    else:
        kw = {"truncation": truncation, "max_length": 40, "padding": "max_length"}
    if truncation in ("only_first", "only_second"):
        # only where the chosen side is long enough (transformers errors otherwise); lengths
        # from the reference, so that the code under test does not choose what is compared
        ids_a = hf(a, add_special_tokens=False)["input_ids"]
        ids_b = hf(b, add_special_tokens=False)["input_ids"]
        keep = [
            k for k in range(len(a))
            if len(ids_a[k]) + len(ids_b[k]) <= 37
            or (len(ids_a[k] if truncation == "only_first" else ids_b[k]) > len(ids_a[k]) + len(ids_b[k]) - 37)
        ]
        a = [a[k] for k in keep]
        b = [b[k] for k in keep]
        assert len(a) > 40
    ref = _ref(hf, a, b, return_offsets_mapping=True, **kw)
    got = _mine(me, a, b, return_offsets_mapping=True, **kw)
    for f in ref:
        bad = [(a[k], b[k]) for k in range(len(a)) if ref[f][k] != got[f][k]]
        assert not bad, f"{f}: {len(bad)} mismatches, first {bad[:2]!r}"
    got2 = _mine(me, a, b, **kw)
    for f in got2:
        assert got2[f] == ref[f]


EMPTY_PAIRS = [("x", ""), ("", ""), ("a", ""), ("", "x"), (" ", ""), ("x", " "), ("[MASK]", ""), ("a b c d e f", "")]


@pytest.mark.parametrize("folder", ["spm", "hub"])
def test_empty_second_text(folder):
    """transformers v5 drops an empty text_pair of a single text ([CLS] x [SEP], issue 13) but
    keeps empty pairs inside a batch ([CLS] x [SEP] [SEP]); both ways are compared."""
    hf, me = _hf(folder), AlbertTokenizer.from_pretrained(FIXTURES / folder)
    assert hf("x", "")["input_ids"] == [hf.cls_token_id, *hf("x", add_special_tokens=False)["input_ids"], hf.sep_token_id]
    options = [
        {},
        {"return_offsets_mapping": True},
        {"add_special_tokens": False},
        {"truncation": "longest_first", "max_length": 4, "return_offsets_mapping": True},
        {"truncation": "only_first", "max_length": 4},
        {"padding": "max_length", "max_length": 12},
    ]
    for kw in options:
        cases = [*EMPTY_PAIRS, ([p[0] for p in EMPTY_PAIRS], [p[1] for p in EMPTY_PAIRS])]
        for a, b in cases:
            try:
                ref = _ref(hf, a, b, **kw)
            except Exception:  # "sequence to truncate too short" (only_first): ours must refuse too
                with pytest.raises(MinialbertError, match="too short"):
                    me(a, b, **kw)
                continue
            assert _mine(me, a, b, **kw) == ref, (a, b, kw)
    for a, b in EMPTY_PAIRS:
        assert me.encode(a, b) == hf.encode(a, b), (a, b)
        assert me.tokenize(a, b, add_special_tokens=True) == hf.tokenize(a, b, add_special_tokens=True), (a, b)
        pt, pt_ref = me(a, b, return_tensors="pt"), hf(a, b, return_tensors="pt", return_token_type_ids=True)
        assert all(pt[k].tolist() == pt_ref[k].tolist() for k in ("input_ids", "token_type_ids", "attention_mask"))


def test_max_length_below_special_tokens():
    me = AlbertTokenizer.from_pretrained(FIXTURES / "spm")
    with pytest.raises(MinialbertError) as e:
        me("x y", truncation=True, max_length=1)
    assert str(e.value) == (
        "max_length=1 is too small for the 2 special tokens ([CLS] ... [SEP]): 1 more needed; "
        "use max_length=2 or more"
    )
    with pytest.raises(MinialbertError, match=r"^max_length=1 is too small for the 3 special tokens .*: 2 more needed; use max_length=3 or more$"):
        me(["x y"], ["z"], truncation="longest_first", max_length=1)
    # without special tokens, no minimum
    assert me("x y", add_special_tokens=False, truncation=True, max_length=1)["input_ids"] == me.encode("x", add_special_tokens=False)[:1]


@pytest.mark.parametrize("max_length", [512, 128, 7, 3, 2])
def test_truncation_lengths(max_length):
    hf, me = _hf("spm"), AlbertTokenizer.from_pretrained(FIXTURES / "spm")
    texts = LONG_TEXTS + HARD_STRINGS[:40]
    assert _mine(me, texts, truncation=True, max_length=max_length) == _ref(
        hf, texts, truncation=True, max_length=max_length
    )
    if max_length >= 128:
        pairs_a, pairs_b = LONG_TEXTS + ["short", "a b c d e f g h"], ["tiny", *LONG_TEXTS, "x y"]
    else:  # (transformers is very slow truncating long texts to a handful of tokens)
        pairs_a, pairs_b = HARD_STRINGS[5:45], HARD_STRINGS[45:85]
    if max_length >= 3:
        assert _mine(me, pairs_a, pairs_b, truncation="longest_first", max_length=max_length, return_offsets_mapping=True) == _ref(
            hf, pairs_a, pairs_b, truncation="longest_first", max_length=max_length, return_offsets_mapping=True
        )


def test_long_texts_default_max_length():
    me = AlbertTokenizer.from_pretrained(FIXTURES / "spm")
    hf = _hf("spm", model_max_length=512)
    enc = me(LONG_TEXTS, truncation=True, return_offsets_mapping=True)
    assert [len(x) for x in enc["input_ids"]] == [512, 512, 512]
    assert _mine(me, LONG_TEXTS, truncation=True, return_offsets_mapping=True) == _ref(
        hf, LONG_TEXTS, truncation=True, return_offsets_mapping=True
    )
    assert len(me(LONG_TEXTS[0])["input_ids"]) > 512  # no truncation unless asked


def test_padding_and_tensors():
    import numpy as np
    import torch

    hf, me = _hf("hub"), AlbertTokenizer.from_pretrained(FIXTURES / "hub")
    texts = ["short", "a much longer text with [MASK] in it", "", "日本語"]
    for padding in (True, "longest", "max_length"):
        kw = {"padding": padding, "max_length": 24, "truncation": True}
        assert _mine(me, texts, **kw) == _ref(hf, texts, **kw)
    pt = me(texts, padding=True, return_tensors="pt")
    ref = hf(texts, padding=True, return_tensors="pt", return_token_type_ids=True)
    for k in ("input_ids", "token_type_ids", "attention_mask"):
        assert isinstance(pt[k], torch.Tensor) and pt[k].dtype == torch.long
        assert torch.equal(pt[k], ref[k])
    npt = me(texts, padding="max_length", truncation=True, max_length=16, return_tensors="np")
    assert isinstance(npt["input_ids"], np.ndarray) and npt["input_ids"].shape == (4, 16)
    one = me("one text", return_tensors="pt")
    one_ref = hf("one text", return_tensors="pt", return_token_type_ids=True)
    for k in ("input_ids", "token_type_ids", "attention_mask"):
        assert one[k].shape == one_ref[k].shape == (1, one_ref[k].shape[1]) and torch.equal(one[k], one_ref[k])
    with pytest.raises(MinialbertError, match="padding"):
        me(texts, return_tensors="pt")


def test_decode_parity():
    hf, me = _hf("spm"), AlbertTokenizer.from_pretrained(FIXTURES / "spm")
    for s in HARD_STRINGS[:120] + ["hello [MASK] world", "a. b - c"]:
        ids = hf(s)["input_ids"]
        for skip in (False, True):
            assert me.decode(ids, skip_special_tokens=skip) == hf.decode(ids, skip_special_tokens=skip), repr(s)
        assert me.convert_ids_to_tokens(ids) == hf.convert_ids_to_tokens(ids)
    toks = hf.convert_ids_to_tokens(hf("hello world")["input_ids"]) + ["not-a-piece"]
    assert me.convert_tokens_to_ids(toks) == hf.convert_tokens_to_ids(toks)


def test_special_ids_and_sizes():
    for folder in FOLDERS:
        hf, me = _hf(folder), AlbertTokenizer.from_pretrained(FIXTURES / folder)
        assert (me.pad_token_id, me.unk_token_id, me.cls_token_id, me.sep_token_id, me.mask_token_id) == (
            hf.pad_token_id, hf.unk_token_id, hf.cls_token_id, hf.sep_token_id, hf.mask_token_id
        ) == (0, 1, 2, 3, 4)
        assert me.vocab_size == hf.vocab_size == len(me)
        assert me.model_max_length == 512
        assert me.build_inputs_with_special_tokens([7, 8], [9]) == [2, 7, 8, 3, 9, 3]


# ------------------------------------------------------------------------------------------
# Unicode tables: the only differences are in the underlying Unicode data
# ------------------------------------------------------------------------------------------


def _code_points():
    for cp in (*range(0xD800), *range(0xE000, 0x20000), *range(0x2F800, 0x2FA20), *range(0xE0000, 0xE0200)):
        yield cp


# Measured with Python 3.11 (unicodedata 14.0.0) and tokenizers 0.23: the code points where the
# whole normalizer's output differs, split by the Rust table that differs from Python's there.
# (NFKD, lower-casing, total); docs/guides/tokenizer.md quotes these numbers.
UNICODE_DIFFERENCES = {"default": (5, 55, 60), "keep_accents": (0, 55, 55)}


@pytest.mark.parametrize("kw", [{}, {"keep_accents": True}], ids=["default", "keep_accents"])
def test_unicode_tables_only_differences(kw):
    """Normalize every code point of planes 0-1 (and more) both ways, 128 at a time. Every
    difference must come from Rust's NFKD or lower-case tables (newer Unicode than Python
    3.11's 14.0), never from minialbert's pipeline, and their number is pinned."""
    from tokenizers import normalizers

    hf, me = _hf("spm", **kw), AlbertTokenizer.from_pretrained(FIXTURES / "spm", **kw)
    rust = hf.backend_tokenizer.normalizer
    rust_nfkd, rust_lower = normalizers.NFKD(), normalizers.Lowercase()
    cps = list(_code_points())
    differ = []
    for k in range(0, len(cps), 128):
        chunk = "".join(" " + chr(c) for c in cps[k : k + 128])
        if rust.normalize_str(chunk) != me._normalizer.normalize(chunk):
            differ += [cp for cp in cps[k : k + 128] if rust.normalize_str(chr(cp)) != me._normalizer.normalize(chr(cp))]
    by_nfkd = {cp for cp in differ if rust_nfkd.normalize_str(chr(cp)) != unicodedata.normalize("NFKD", chr(cp))}
    by_lower = {cp for cp in differ if rust_lower.normalize_str(chr(cp)) != chr(cp).lower()}
    unexplained = set(differ) - by_nfkd - by_lower
    assert not unexplained, [hex(c) for c in sorted(unexplained)[:20]]
    assert unicodedata.unidata_version == "14.0.0", "numbers measured with Unicode 14.0: re-measure"
    assert (len(by_nfkd), len(by_lower), len(differ)) == UNICODE_DIFFERENCES["keep_accents" if kw else "default"]
    if not kw:  # the examples docs/guides/tokenizer.md names
        assert {0xA7F2, 0xA7F3, 0xA7F4, 0x1F16C} <= by_nfkd and {0x1C89, 0xA7CB} <= by_lower


def test_unicode_table_sizes():
    """The count (docs/guides/tokenizer.md) of code points whose NFKD / lower-case mapping differs between the
    Rust crates and Python's unicodedata (most do not change the normalizer's output)."""
    from tokenizers import normalizers

    cps = list(_code_points())
    counts = []
    for rust, py in ((normalizers.NFKD(), lambda t: unicodedata.normalize("NFKD", t)), (normalizers.Lowercase(), str.lower)):
        n = 0
        for k in range(0, len(cps), 256):
            chunk = " ".join(chr(c) for c in cps[k : k + 256])
            if rust.normalize_str(chunk) != py(chunk):
                n += sum(rust.normalize_str(chr(c)) != py(chr(c)) for c in cps[k : k + 256])
        counts.append(n)
    assert counts == [73, 55]


# ------------------------------------------------------------------------------------------
# Loading and errors
# ------------------------------------------------------------------------------------------


def test_from_model_file_and_config(tmp_path):
    me = AlbertTokenizer.from_pretrained(FIXTURES / "spm" / "spiece.model")
    assert me("Hello")["input_ids"] == AlbertTokenizer.from_pretrained(FIXTURES / "spm")("Hello")["input_ids"]
    shutil.copy(FIXTURES / "spm" / "spiece.model", tmp_path / "spiece.model")
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({"do_lower_case": False, "keep_accents": True, "model_max_length": 64})
    )
    me = AlbertTokenizer.from_pretrained(tmp_path)
    hf = _hf_path(tmp_path)
    assert (me.do_lower_case, me.keep_accents, me.model_max_length) == (False, True, 64)
    for s in HARD_STRINGS[:60]:
        assert _mine(me, s) == _ref(hf, s), repr(s)
    assert len(me(LONG_TEXTS[0], truncation=True)["input_ids"]) == 64
    assert AlbertTokenizer.from_pretrained(tmp_path, do_lower_case=True).do_lower_case


def _hf_path(p):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return transformers.AlbertTokenizer.from_pretrained(str(p))


def test_errors(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="spiece.model"):
        AlbertTokenizer.from_pretrained(tmp_path)
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"\xff\xfenot a model")
    with pytest.raises(CheckpointError, match="SentencePiece"):
        AlbertTokenizer.from_pretrained(bad)
    with pytest.raises(CheckpointError):
        AlbertTokenizer.from_pretrained(tmp_path / "missing-dir" / "x")
    shutil.copy(FIXTURES / "spm" / "spiece.model", tmp_path / "spiece.model")
    (tmp_path / "tokenizer_config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="^cannot read .*tokenizer_config.json: "):
        AlbertTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="tokenizer_config.json does not hold a JSON object"):
        AlbertTokenizer.from_pretrained(tmp_path)
    me = AlbertTokenizer.from_pretrained(FIXTURES / "spm")
    for bad_input in (None, 3, b"bytes", ["ok", 5]):
        with pytest.raises(TypeError, match="str"):
            me(bad_input)
    with pytest.raises(TypeError):
        me.encode(None)
    with pytest.raises(MinialbertError, match="padding"):
        me("x", padding="sideways")
    with pytest.raises(MinialbertError, match="truncation"):
        me("x", truncation="middle")
    with pytest.raises(MinialbertError, match="same length|different lengths"):
        me(["a", "b"], ["c"])
    with pytest.raises(MinialbertError):
        me.convert_ids_to_tokens(10**6)


# ------------------------------------------------------------------------------------------
# compat="original": the google-research algorithm
# ------------------------------------------------------------------------------------------


def test_original_compat_digit_comma():
    import sentencepiece as spm

    orig = AlbertTokenizer.from_pretrained(FIXTURES / "spm", compat="original")
    sp = spm.SentencePieceProcessor(model_file=str(FIXTURES / "spm" / "spiece.model"))
    text = "Paid 1, 2, and 10,000 ``today''"
    pieces = orig.convert_ids_to_tokens(orig.encode(text, add_special_tokens=False))
    # sentencepiece alone, on the preprocessed text, keeps "▁1," and "▁2," as pieces ...
    assert sp.encode('paid 1, 2, and 10,000 "today"', out_type=str) == [
        "▁", "p", "a", "i", "d", "▁1,", "▁2,", "▁", "a", "n", "d", "▁10,000", "▁", '"', "t", "o", "d", "a", "y", '"'
    ]
    assert sp.encode("1", out_type=str) == ["▁", "1"] and sp.encode("2", out_type=str) == ["▁", "2"]
    # ... and the original ALBERT code re-encodes each without its comma, then appends the
    # comma ("▁10,000" does not end in digit + comma and stays). Worked by hand from the above:
    assert pieces == [
        "▁", "p", "a", "i", "d", "▁", "1", ",", "▁", "2", ",", "▁", "a", "n", "d", "▁10,000", "▁", '"', "t", "o", "d", "a", "y", '"'
    ]
    # whitespace is collapsed before sentencepiece, special tokens are plain text
    assert orig("a \t\n b")["input_ids"] == orig("a b")["input_ids"]
    with pytest.raises(MinialbertError):
        orig("x", return_offsets_mapping=True)


@pytest.mark.parametrize("folder", FOLDERS)
def test_save_pretrained_round_trip(folder, tmp_path):
    """A saved folder tokenizes as the source did: in transformers (independent reader) and here."""
    me = AlbertTokenizer.from_pretrained(FIXTURES / folder, model_max_length=77)
    me.save_pretrained(tmp_path)
    hf_src, hf_saved = _hf(folder), _hf_path(tmp_path)
    again = AlbertTokenizer.from_pretrained(tmp_path)
    assert again.model_max_length == 77 and again.compat == "transformers"
    for s in HARD_STRINGS[:80]:
        assert _ref(hf_saved, s) == _ref(hf_src, s), repr(s)
        assert _mine(again, s) == _ref(hf_src, s), repr(s)


def test_save_pretrained_records_compat(tmp_path):
    orig = AlbertTokenizer.from_pretrained(FIXTURES / "spm", compat="original")
    orig.save_pretrained(tmp_path)
    again = AlbertTokenizer.from_pretrained(tmp_path)
    assert again.compat == "original"
    text = "Paid 1, 2, and 10,000 ``today''"
    assert again.encode(text) == orig.encode(text)
    assert again.encode(text) != AlbertTokenizer.from_pretrained(FIXTURES / "spm").encode(text)


# ------------------------------------------------------------------------------------------
# tokenizer.json without spiece.model (what transformers v5 saves)
# ------------------------------------------------------------------------------------------


def test_transformers_v5_saves_no_spiece_model(json_only_dirs):
    """The reason for the json-only path: transformers v5 writes only these two files."""
    assert sorted(p.name for p in json_only_dirs["v5-spm"].iterdir()) == ["tokenizer.json", "tokenizer_config.json"]


def test_json_only_loads_without_tokenizers_or_transformers(json_only_dirs, tmp_path):
    code = (
        "import sys\n"
        "from minialbert.tokenizer import AlbertTokenizer\n"
        f"t = AlbertTokenizer.from_pretrained({str(json_only_dirs['v5-hub'])!r})\n"
        "assert t.vocab_file is None and t('a [MASK] b', 'c', return_offsets_mapping=True)['input_ids']\n"
        f"t.save_pretrained({str(tmp_path / 'saved')!r})\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tokenizers', 'transformers'))\n"
        "assert not bad, bad\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]


def test_json_only_from_file_path_and_hub_cache(json_only_dirs, tmp_path):
    from conftest import make_hub_cache

    src = json_only_dirs["v5-spm"]
    hf = _hf("v5-spm")
    texts = HARD_STRINGS[:60]
    make_hub_cache(tmp_path / "cache", "someone/albert-finetuned", src)
    for me in (
        AlbertTokenizer.from_pretrained(src / "tokenizer.json"),
        AlbertTokenizer.from_pretrained("someone/albert-finetuned", cache_dir=tmp_path / "cache"),
    ):
        assert me.vocab_file is None
        assert _mine(me, texts) == _ref(hf, texts)


@pytest.mark.parametrize("folder", ["v5-spm", "json-hub"])
def test_json_only_save_pretrained_round_trip(folder, json_only_dirs, tmp_path):
    """tokenizer.json goes back byte for byte, no spiece.model is invented, and transformers
    (an independent reader) tokenizes the saved folder as the source."""
    src = json_only_dirs[folder]
    me = AlbertTokenizer.from_pretrained(src)
    me.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokenizer.json", "tokenizer_config.json"]
    assert (tmp_path / "tokenizer.json").read_bytes() == (src / "tokenizer.json").read_bytes()
    hf_src, hf_saved = _hf(folder), _hf_path(tmp_path)
    again = AlbertTokenizer.from_pretrained(tmp_path)
    texts = HARD_STRINGS[:80]
    assert _ref(hf_saved, texts, return_offsets_mapping=True) == _ref(hf_src, texts, return_offsets_mapping=True)
    assert _mine(again, texts, return_offsets_mapping=True) == _ref(hf_src, texts, return_offsets_mapping=True)


def test_json_only_settings_come_from_the_file_without_a_config(json_only_dirs, tmp_path):
    """With no tokenizer_config.json, lower-casing and accent stripping are what tokenizer.json's
    normalizer does. Reference: the `tokenizers` library running the file itself (transformers'
    AlbertTokenizer would fall back to its defaults here; documented in docs/guides/tokenizer.md)."""
    from tokenizers import Tokenizer

    data = json.loads((json_only_dirs["v5-spm"] / "tokenizer.json").read_text(encoding="utf-8"))
    data["normalizer"]["normalizers"] = [n for n in data["normalizer"]["normalizers"] if n["type"] not in ("NFKD", "StripAccents", "Lowercase")]
    (tmp_path / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    me = AlbertTokenizer.from_pretrained(tmp_path)
    assert (me.do_lower_case, me.keep_accents) == (False, True)
    ref = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    for s in HARD_STRINGS[:120]:
        enc = ref.encode(s)
        assert me(s, return_offsets_mapping=True)["input_ids"] == enc.ids, repr(s)
    assert me.tokenize("Über") == ref.encode("Über", add_special_tokens=False).tokens


def test_json_only_compat_original_refused(json_only_dirs):
    with pytest.raises(CheckpointError, match="compat='original' needs ALBERT's spiece.model") as e:
        AlbertTokenizer.from_pretrained(json_only_dirs["v5-spm"], compat="original")
    assert "\n" not in str(e.value)


def _albert_json(json_only_dirs) -> dict:
    return json.loads((json_only_dirs["v5-spm"] / "tokenizer.json").read_text(encoding="utf-8"))


def _wordpiece_json() -> str:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    tok = Tokenizer(models.WordPiece({"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "hello": 3, "##s": 4}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tok.to_str()


def _bpe_json() -> str:
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.BPE({"a": 0, "b": 1, "ab": 2}, [("a", "b")]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    return tok.to_str()


def _edit(**changes):
    def apply(data):
        for dotted, value in changes.items():
            *keys, last = dotted.split(".")
            target = data
            for k in keys:
                target = target[int(k)] if isinstance(target, list) else target[k]
            target[int(last) if isinstance(target, list) else last] = value
        return data

    return apply


REFUSED = {
    "WordPiece": ("wordpiece", "holds a WordPiece model"),
    "BPE": ("bpe", "holds a BPE model"),
    "byte_fallback": (_edit(**{"model.byte_fallback": True}), "byte fallback"),
    "NFC": (_edit(**{"normalizer.normalizers.2": {"type": "NFC"}}), "its normalizer has NFC"),
    "order": (_edit(**{"normalizer.normalizers.2": {"type": "Lowercase"}, "normalizer.normalizers.4": {"type": "NFKD"}}),
              "normalizer is Replace \\+ Replace \\+ Lowercase \\+ StripAccents \\+ NFKD"),
    "replace": (_edit(**{"normalizer.normalizers.0.content": "'"}), "normalizer replaces"),
    "ByteLevel": (_edit(pre_tokenizer={"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}),
                  "pre-tokenizer is ByteLevel"),
    "prepend never": (_edit(**{"pre_tokenizer.pretokenizers.1.prepend_scheme": "never"}), "prepend_scheme is 'never'"),
    "replacement": (_edit(**{"pre_tokenizer.pretokenizers.1.replacement": "_"}), "Metaspace replacement is '_'"),
    "template": (_edit(post_processor={"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}),
                 "post-processor is ByteLevel"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_non_albert_tokenizer_json_refused(case, json_only_dirs, tmp_path):
    """Anything but ALBERT's Unigram/Metaspace tokenizer.json is refused in one line naming what
    was found (else it would silently tokenize differently from the file)."""
    make, expected = REFUSED[case]
    if make == "wordpiece":
        text = _wordpiece_json()
    elif make == "bpe":
        text = _bpe_json()
    else:
        text = json.dumps(make(_albert_json(json_only_dirs)))
    (tmp_path / "tokenizer.json").write_text(text, encoding="utf-8")
    with pytest.raises(CheckpointError, match=expected) as e:
        AlbertTokenizer.from_pretrained(tmp_path)
    assert "\n" not in str(e.value) and "is not an ALBERT tokenizer.json" in str(e.value)


def test_old_metaspace_format_and_add_prefix_space(json_only_dirs, tmp_path):
    """tokenizers < 0.19 wrote Metaspace with add_prefix_space instead of prepend_scheme."""
    data = _albert_json(json_only_dirs)
    data["pre_tokenizer"]["pretokenizers"][1] = {"type": "Metaspace", "replacement": "▁", "str_rep": "▁", "add_prefix_space": True}
    (tmp_path / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    me, hf = AlbertTokenizer.from_pretrained(tmp_path), _hf("v5-spm")
    assert _mine(me, HARD_STRINGS[:60]) == _ref(hf, HARD_STRINGS[:60])
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"add_prefix_space": False}))
    with pytest.raises(CheckpointError, match="add_prefix_space=false"):
        AlbertTokenizer.from_pretrained(tmp_path)


ADDED_TEXTS = [
    "a <new> b <NEW> zq ZQ Zq xy Xy XY",
    "``<new>''",
    "x<new>y",
    "Zq",
    "x  ÉÉ y ee EE É\u0301",
    "AB CD  x abcd ab  cd ab\tcd",
    "ﬁ<NEW>ﬁ  Éé [MASK]zq",
    *HARD_STRINGS[:40],
]


@pytest.mark.parametrize("with_spiece", [False, True], ids=["json-only", "spiece+json"])
def test_added_tokens_of_a_fine_tuned_folder(with_spiece, tmp_path):
    """Tokens added with transformers' add_tokens (normalized=True by default: matched in the
    normalized text) and with explicit lstrip / rstrip / normalized=False, saved by v5."""
    from transformers import AddedToken

    hf = _hf("spm")
    hf.add_tokens([
        "<new>", AddedToken("Zq", normalized=True), AddedToken("Xy", normalized=False),
        AddedToken("Éé", normalized=True, lstrip=True), AddedToken("ab cd", normalized=True, rstrip=True),
    ])
    hf.save_pretrained(tmp_path)
    if with_spiece:
        shutil.copy(FIXTURES / "spm" / "spiece.model", tmp_path / "spiece.model")
    hf, me = _hf_path(tmp_path), AlbertTokenizer.from_pretrained(tmp_path)
    assert (me.vocab_file is not None) == with_spiece and len(me._added) == len(hf.added_tokens_decoder)
    assert _mine(me, ADDED_TEXTS, return_offsets_mapping=True) == _ref(hf, ADDED_TEXTS, return_offsets_mapping=True)
    for s in ADDED_TEXTS[:7]:
        assert me.tokenize(s) == hf.tokenize(s), repr(s)
    a, b = ADDED_TEXTS[:7], ADDED_TEXTS[7:14]
    assert _mine(me, a, b, return_offsets_mapping=True, padding=True) == _ref(hf, a, b, return_offsets_mapping=True, padding=True)
    me.save_pretrained(tmp_path / "again")  # the flags survive our own save, read by transformers
    again = _hf_path(tmp_path / "again")
    assert _ref(again, ADDED_TEXTS, return_offsets_mapping=True) == _ref(hf, ADDED_TEXTS, return_offsets_mapping=True)


def test_single_word_added_token_refused(json_only_dirs, tmp_path):
    data = _albert_json(json_only_dirs)
    data["added_tokens"][-1]["single_word"] = True
    (tmp_path / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    name = re.escape(repr(data["added_tokens"][-1]["content"]))
    with pytest.raises(CheckpointError, match=rf"added token {name} has single_word=true, which minialbert does not support$"):
        AlbertTokenizer.from_pretrained(tmp_path)
