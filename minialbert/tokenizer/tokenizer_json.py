"""ALBERT's tokenizer as a `tokenizers` tokenizer.json records it, read without `tokenizers`.

transformers v5 saves an ALBERT tokenizer as tokenizer.json alone (no spiece.model). The file
holds everything the tokenizer needs: the Unigram pieces and their scores, the unknown id,
the normalizer (the "``" and "''" replacements, NFKD + StripAccents unless keep_accents,
Lowercase when do_lower_case, the precompiled character map), the Metaspace pre-tokenizer,
the [CLS] A [SEP] B [SEP] template and the added tokens with their lstrip/rstrip flags.

Only that shape is accepted. Anything else (a WordPiece or BPE model, another normalizer or
pre-tokenizer, byte fallback, another template) is refused with one line that names what
was found: minialbert would otherwise tokenize differently from the file, silently.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from ..jsonio import read_json
from .segment import SPIECE_UNDERLINE

_QUOTES = (("``", '"'), ("''", '"'))
# The normalizers of ALBERT's tokenizer.json (AlbertConverter, transformers' AlbertTokenizer).
_ALBERT_NORMALIZERS = ("Replace", "NFKD", "StripAccents", "Lowercase", "Precompiled")


@dataclass
class TokenizerJson:
    pieces: list[tuple[str, float]]
    unk_id: int | None
    charsmap: bytes  # b"" when the normalizer has no character map
    added_tokens: list[dict]
    lowercase: bool  # the normalizer lower-cases (do_lower_case)
    strip_accents: bool  # the normalizer has NFKD + StripAccents (not keep_accents)
    template_ids: tuple[int, int] | None  # ids of the template's [CLS] and [SEP], if it has one


class _Refused(Exception):
    pass


def read_tokenizer_json(path: str | Path) -> TokenizerJson:
    """Parse and check an ALBERT tokenizer.json; CheckpointError (one line) otherwise."""
    data = read_json(path, expect=object)
    try:
        if not isinstance(data, dict):
            raise _Refused("it does not hold a JSON object")
        pieces, unk_id = _model(data.get("model"))
        charsmap, lowercase, strip_accents = _normalizer(data.get("normalizer"))
        _pre_tokenizer(data.get("pre_tokenizer"))
        template_ids = _post_processor(data.get("post_processor"))
        added = data.get("added_tokens") or []
        if not isinstance(added, list) or not all(isinstance(t, dict) and isinstance(t.get("content"), str) for t in added):
            raise _Refused("its added_tokens are not a list of tokens")
    except _Refused as e:
        raise CheckpointError(
            f"{path} is not an ALBERT tokenizer.json (a Unigram model with ALBERT's normalizer and "
            f"a Metaspace pre-tokenizer): {e}"
        ) from None
    return TokenizerJson(pieces, unk_id, charsmap, added, lowercase, strip_accents, template_ids)


def _type(component: Any) -> str:
    return str(component.get("type")) if isinstance(component, dict) else type(component).__name__


def _model(model: Any) -> tuple[list[tuple[str, float]], int | None]:
    if not isinstance(model, dict):
        raise _Refused(f"its model is {_type(model)}")
    vocab = model.get("vocab")
    # Old files have no "type"; a list of (piece, score) pairs is a Unigram vocabulary.
    kind = model.get("type", "Unigram" if isinstance(vocab, list) else "unknown")
    if kind != "Unigram":
        raise _Refused(f"it holds a {kind} model")
    if model.get("byte_fallback"):
        raise _Refused("its Unigram model uses byte fallback, which ALBERT's does not")
    try:
        pieces = [(str(p), float(s)) for p, s in vocab]
    except (TypeError, ValueError):
        raise _Refused("its Unigram vocab is not a list of [piece, score] pairs") from None
    if not pieces:
        raise _Refused("its Unigram vocab is empty")
    unk_id = model.get("unk_id")
    if unk_id is not None and not (isinstance(unk_id, int) and 0 <= unk_id < len(pieces)):
        raise _Refused(f"its unk_id {unk_id!r} is not an id of the vocab")
    return pieces, unk_id


def _normalizer(normalizer: Any) -> tuple[bytes, bool, bool]:
    """(character map, lower-cases, strips accents) of ALBERT's normalizer Sequence."""
    if normalizer is None:
        raise _Refused("it has no normalizer (ALBERT's replaces `` and '' first)")
    parts = normalizer.get("normalizers") if _type(normalizer) == "Sequence" else [normalizer]
    if not isinstance(parts, list):
        raise _Refused(f"its normalizer is {_type(normalizer)}")
    # AlbertConverter (the Hub's files) ends with Replace(" {2,}" -> " "): runs of spaces become
    # one, which changes nothing once words are split on whitespace (transformers drops it too).
    if parts and _type(parts[-1]) == "Replace" and parts[-1].get("pattern") == {"Regex": " {2,}"} and parts[-1].get("content") == " ":
        parts = parts[:-1]
    kinds = [_type(p) for p in parts]
    unknown = [k for k in kinds if k not in _ALBERT_NORMALIZERS]
    if unknown:
        raise _Refused(f"its normalizer has {', '.join(unknown)}, which ALBERT's does not")
    strip, lower = "NFKD" in kinds or "StripAccents" in kinds, "Lowercase" in kinds
    expected = ["Replace", "Replace"] + ["NFKD", "StripAccents"] * strip + ["Lowercase"] * lower
    expected += ["Precompiled"] * ("Precompiled" in kinds)
    if kinds != expected:
        raise _Refused(
            f"its normalizer is {' + '.join(kinds)}; ALBERT's is Replace(``) + Replace('') + NFKD + "
            "StripAccents + Lowercase + Precompiled (NFKD + StripAccents and Lowercase optional)"
        )
    replaces = [(p.get("pattern", {}).get("String"), p.get("content")) for p in parts if _type(p) == "Replace"]
    if tuple(replaces) != _QUOTES:
        raise _Refused(f"its normalizer replaces {replaces}, not ALBERT's {list(_QUOTES)}")
    charsmap = b""
    for p in parts:
        if _type(p) == "Precompiled" and p.get("precompiled_charsmap"):
            try:
                charsmap = base64.b64decode(p["precompiled_charsmap"], validate=True)
            except (ValueError, TypeError):
                raise _Refused("its precompiled_charsmap is not base64") from None
    return charsmap, lower, strip


def _pre_tokenizer(pre: Any) -> None:
    """WhitespaceSplit + Metaspace("▁", prepend always, split), or Metaspace alone (transformers
    builds WhitespaceSplit + Metaspace for ALBERT either way)."""
    parts = pre.get("pretokenizers") if _type(pre) == "Sequence" else [pre]
    kinds = [_type(p) for p in parts] if isinstance(parts, list) else [_type(pre)]
    if kinds not in (["Metaspace"], ["WhitespaceSplit", "Metaspace"]):
        raise _Refused(f"its pre-tokenizer is {' + '.join(kinds)}, not ALBERT's WhitespaceSplit + Metaspace")
    meta = parts[-1]
    if meta.get("replacement") != SPIECE_UNDERLINE:
        raise _Refused(f"its Metaspace replacement is {meta.get('replacement')!r}, not {SPIECE_UNDERLINE!r}")
    # Files from tokenizers < 0.19 say add_prefix_space instead of prepend_scheme.
    scheme = meta.get("prepend_scheme", "always" if meta.get("add_prefix_space", True) else "never")
    if scheme != "always":
        raise _Refused(f"its Metaspace prepend_scheme is {scheme!r}; ALBERT prepends {SPIECE_UNDERLINE!r} to every word")
    if meta.get("split", True) is not True:
        raise _Refused("its Metaspace does not split words at the replacement character")


def _post_processor(post: Any) -> tuple[int, int] | None:
    """The ids of [CLS] and [SEP] in ALBERT's template [CLS]:0 $A:0 [SEP]:0 ($B:1 [SEP]:1)."""
    if post is None:
        return None  # transformers then uses ALBERT's own template
    if _type(post) != "TemplateProcessing":
        raise _Refused(f"its post-processor is {_type(post)}, not ALBERT's [CLS] A [SEP] B [SEP] template")

    def shape(items: Any) -> list[tuple[str, str, int]]:
        out = []
        for item in items if isinstance(items, list) else []:
            ((kind, spec),) = item.items()
            out.append((kind, str(spec.get("id")), int(spec.get("type_id", 0))))
        return out

    try:
        single, pair = shape(post.get("single")), shape(post.get("pair"))
        cls, sep = single[0][1], single[-1][1]
        want_single = [("SpecialToken", cls, 0), ("Sequence", "A", 0), ("SpecialToken", sep, 0)]
        want_pair = want_single + [("Sequence", "B", 1), ("SpecialToken", sep, 1)]
        ok = single == want_single and pair == want_pair
        ids = [post["special_tokens"][name]["ids"] for name in (cls, sep)]
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        ok = False
    if not ok or not all(isinstance(i, list) and len(i) == 1 for i in ids):
        raise _Refused("its post-processor template is not ALBERT's [CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1")
    return ids[0][0], ids[1][0]
