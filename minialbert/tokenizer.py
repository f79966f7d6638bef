"""ALBERT's tokenizer on the `sentencepiece` package alone, id-for-id equal to transformers.

transformers (v5) tokenizes ALBERT text with the Rust `tokenizers` library. Its pipeline, read
from transformers/models/albert/tokenization_albert.py and tokenization_utils_tokenizers.py, is:

1. Added tokens are cut out of the raw text first (leftmost-longest match): the special
   tokens (<pad> <unk> [CLS] [SEP] [MASK]) and, when the folder has only spiece.model, the
   model's control and user-defined pieces (( ) " - . – £ € in ALBERT). With a tokenizer.json
   the added tokens are the ones listed in that file. Each stretch of text between them is
   processed on its own.
2. Normalization of each stretch, in this order: "``" -> '"', "''" -> '"'; NFKD and removal of
   all combining marks (categories Mn, Mc, Me) unless keep_accents; per-character lower-casing
   (no Greek final-sigma rule) when do_lower_case; the model's precompiled SentencePiece
   character map (nmt_nfkc), applied per grapheme cluster the way the Rust `spm_precompiled`
   crate does it.
3. Pre-tokenization: split on Unicode White_Space, prefix every word with "▁" (unless it already
   starts with one) and split before every "▁".
4. Unigram (Viterbi) segmentation of each pre-token with the piece scores of spiece.model, or of
   tokenizer.json when present (its digit+comma pieces are 100 lower, from AlbertConverter).
5. [CLS] A [SEP] (B [SEP]), token type ids 0 / 1, longest-first truncation, right padding.

Here steps 1-3 are done in Python on whole strings (str.translate, unicodedata.normalize,
regular expressions), with a slower per-character path only for the rare characters that the
character map or grapheme rules touch; step 4 runs in sentencepiece's C++ Viterbi, batched,
on a copy of the model whose own normalization is switched off (pieces all made "normal" so that
their scores decide, exactly as in the Rust Unigram model). Offsets are tracked through every
step with the same alignment rules as the Rust NormalizedString, so offset_mapping matches too.

`compat="original"` reproduces the google-research ALBERT tokenizer instead (see the README).
"""

from __future__ import annotations

import json
import os
import re
import struct
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

import sentencepiece as spm

from .errors import CheckpointError, ConfigError, MinialbertError

__all__ = ["AlbertTokenizer", "BatchEncoding", "normalize_text"]

SPIECE_UNDERLINE = "▁"

# Rust's char::is_whitespace (Unicode White_Space). Python's str.split() also splits on
# \x1c-\x1f, so it is only used when those are absent.
_WS_CHARS = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_WS_CLASS = "[" + re.escape(_WS_CHARS) + "]"
_WS_SPLIT_RE = re.compile(_WS_CLASS + "+")
_INFO_SEP_RE = re.compile("[\x1c-\x1f]")
_WS_SET = frozenset(_WS_CHARS)
_NON_WS_RE = re.compile("[^" + re.escape(_WS_CHARS) + "]+")

# sentencepiece piece types
_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _UNUSED, _BYTE = 1, 2, 3, 4, 5, 6


# --------------------------------------------------------------------------------------------
# A minimal protobuf reader/writer for sentencepiece's ModelProto (so protobuf is not needed)
# --------------------------------------------------------------------------------------------


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _write_varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """Decode one protobuf message into (field number, wire type, value) triples."""
    out = []
    pos = 0
    n = len(buf)
    while pos < n:
        key, pos = _read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _read_varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((field, wire, value))
    return out


def _encode_fields(fields: Iterable[tuple[int, int, Any]]) -> bytes:
    out = bytearray()
    for field, wire, value in fields:
        out += _write_varint((field << 3) | wire)
        if wire == 0:
            out += _write_varint(value)
        elif wire == 2:
            out += _write_varint(len(value)) + value
        else:
            out += value
    return bytes(out)


@dataclass
class _SpmModel:
    pieces: list[tuple[str, float, int]]  # (piece, score, type)
    trainer: list[tuple[int, int, Any]]
    normalizer: dict[int, Any]
    other: list[tuple[int, int, Any]]

    @classmethod
    def parse(cls, data: bytes) -> "_SpmModel":
        pieces, trainer, normalizer, other = [], [], {}, []
        for field, wire, value in _fields(data):
            if field == 1 and wire == 2:
                piece, score, ptype = "", 0.0, _NORMAL
                for f, w, v in _fields(value):
                    if f == 1:
                        piece = v.decode("utf-8")
                    elif f == 2:
                        score = struct.unpack("<f", v)[0]
                    elif f == 3:
                        ptype = v
                pieces.append((piece, score, ptype))
            elif field == 2 and wire == 2:
                trainer = _fields(value)
            elif field == 3 and wire == 2:
                normalizer = {f: v for f, w, v in _fields(value)}
            else:
                other.append((field, wire, value))
        if not pieces:
            raise ValueError("no pieces")
        return cls(pieces, trainer, normalizer, other)

    def trainer_value(self, field: int, default: Any) -> Any:
        for f, _, v in self.trainer:
            if f == field:
                return v
        return default

    @property
    def model_type(self) -> int:
        return self.trainer_value(3, 1)  # 1 = UNIGRAM

    @property
    def charsmap(self) -> bytes:
        return self.normalizer.get(2, b"")


def _serialize_model(pieces: list[tuple[str, float, int]], trainer: list) -> bytes:
    out = []
    for piece, score, ptype in pieces:
        body = _encode_fields(
            [(1, 2, piece.encode("utf-8")), (2, 5, struct.pack("<f", score)), (3, 0, ptype)]
        )
        out.append((1, 2, body))
    # Keep the trainer spec (model type) but drop fields that would make sentencepiece
    # re-derive special ids; normalization fully off: identity, no dummy prefix, no
    # whitespace removal or escaping. The input we give it is already normalized.
    keep = [(f, w, v) for f, w, v in trainer if f in (3,)]
    out.append((2, 2, _encode_fields(keep)))
    normalizer = _encode_fields(
        [(1, 2, b"identity"), (3, 0, 0), (4, 0, 0), (5, 0, 0)]
    )
    out.append((3, 2, normalizer))
    return _encode_fields(out)


# --------------------------------------------------------------------------------------------
# The precompiled character map (a Darts double-array trie), as spm_precompiled reads it
# --------------------------------------------------------------------------------------------


class _CharsMap:
    def __init__(self, blob: bytes):
        trie_size = struct.unpack("<I", blob[:4])[0]
        n = trie_size // 4
        self.array = struct.unpack(f"<{n}I", blob[4 : 4 + trie_size])
        self.normalized = blob[4 + trie_size :]
        self._cache: dict[str, str | None] = {}

    def transform(self, chunk: str) -> str | None:
        """Replacement of the SHORTEST key that is a prefix of `chunk` (spm_precompiled's
        `transform`: common_prefix_search(...)[0]); None when no key is a prefix."""
        cached = self._cache.get(chunk, 0)
        if cached != 0:
            return cached  # type: ignore[return-value]
        array = self.array
        unit = array[0]
        node = (unit >> 10) << ((unit & (1 << 9)) >> 6)
        result = None
        for c in chunk.encode("utf-8"):
            node ^= c
            if node >= len(array):
                break
            unit = array[node]
            if (unit & ((1 << 31) | 0xFF)) != c:
                break
            node ^= (unit >> 10) << ((unit & (1 << 9)) >> 6)
            if (unit >> 8) & 1:
                value = array[node] & ((1 << 31) - 1)
                end = self.normalized.index(b"\0", value)
                result = self.normalized[value:end].decode("utf-8")
                break
        if len(self._cache) < 100_000:
            self._cache[chunk] = result
        return result


# --------------------------------------------------------------------------------------------
# Grapheme clusters (UAX #29), approximated from unicodedata; only needed around the rare
# characters the character map touches.
# --------------------------------------------------------------------------------------------

_OTHER, _CR, _LF, _CONTROLC, _EXTEND, _ZWJ, _RI, _PREPEND, _SPACING, _L, _V, _T, _LV, _LVT, _PICT = range(15)

_PREPEND_CPS = frozenset(
    [*range(0x600, 0x606), 0x6DD, 0x70F, 0x890, 0x891, 0x8E2, 0xD4E, 0x110BD, 0x110CD,
     0x111C2, 0x111C3, 0x1193F, 0x11941, 0x11A3A, *range(0x11A84, 0x11A8A), 0x11D46]
)
_EXTEND_MC = frozenset(
    [0x9BE, 0x9D7, 0xB3E, 0xB57, 0xBBE, 0xBD7, 0xCC2, 0xCD5, 0xCD6, 0xD3E, 0xD57, 0xDCF,
     0xDDF, 0x1B35, 0x302E, 0x302F, 0x1133E, 0x11357, 0x114B0, 0x114BD, 0x115AF, 0x11930,
     0x1D165, *range(0x1D16E, 0x1D173)]
)
_NOT_SPACING = frozenset(
    [0x102B, 0x102C, 0x1038, 0x1062, 0x1063, 0x1064, *range(0x1067, 0x106E), 0x1083,
     *range(0x1087, 0x108D), 0x108F, 0x109A, 0x109B, 0x109C, 0x1A61, 0x1A63, 0x1A64, 0xAA7B,
     0xAA7D, 0x11720, 0x11721]
)
_PICT_EXTRA = frozenset(
    [0xA9, 0xAE, 0x203C, 0x2049, 0x2122, 0x2139, *range(0x2194, 0x219A), 0x21A9, 0x21AA,
     0x231A, 0x231B, 0x2328, 0x2388, 0x23CF, *range(0x23E9, 0x23F4), *range(0x23F8, 0x23FB),
     0x24C2, 0x25AA, 0x25AB, 0x25B6, 0x25C0, *range(0x25FB, 0x25FF), 0x2934, 0x2935,
     0x2B05, 0x2B06, 0x2B07, 0x2B1B, 0x2B1C, 0x2B50, 0x2B55, 0x3030, 0x303D, 0x3297, 0x3299]
)


@lru_cache(maxsize=65536)
def _gcb(c: str) -> int:
    cp = ord(c)
    if cp < 0x7F:
        if c == "\r":
            return _CR
        if c == "\n":
            return _LF
        return _CONTROLC if cp < 0x20 else _OTHER
    if cp in _PREPEND_CPS:
        return _PREPEND
    if cp == 0x200D:
        return _ZWJ
    if 0x1F1E6 <= cp <= 0x1F1FF:
        return _RI
    if 0x1100 <= cp <= 0x115F or 0xA960 <= cp <= 0xA97C:
        return _L
    if 0x1160 <= cp <= 0x11A7 or 0xD7B0 <= cp <= 0xD7C6:
        return _V
    if 0x11A8 <= cp <= 0x11FF or 0xD7CB <= cp <= 0xD7FB:
        return _T
    if 0xAC00 <= cp <= 0xD7A3:
        return _LV if (cp - 0xAC00) % 28 == 0 else _LVT
    if cp == 0x200C or 0xFF9E <= cp <= 0xFF9F or 0x1F3FB <= cp <= 0x1F3FF or 0xE0020 <= cp <= 0xE007F:
        return _EXTEND
    cat = unicodedata.category(c)
    if cat in ("Mn", "Me"):
        return _EXTEND
    if cat == "Mc":
        if cp in _EXTEND_MC:
            return _EXTEND
        return _OTHER if cp in _NOT_SPACING else _SPACING
    if cp in (0xE33, 0xEB3):
        return _SPACING
    if cat in ("Cc", "Zl", "Zp") or (cat == "Cf" and cp not in (0x200C, 0x200D)):
        return _CONTROLC
    if 0x1F000 <= cp <= 0x1FAFF or 0x2600 <= cp <= 0x27BF or 0x1FC00 <= cp <= 0x1FFFD or cp in _PICT_EXTRA:
        return _PICT
    return _OTHER


def _grapheme_breaks(chars: Sequence[str]) -> list[int]:
    """Start indexes of the extended grapheme clusters of `chars`, plus len(chars)."""
    n = len(chars)
    if n == 0:
        return [0]
    starts = [0]
    classes = [_gcb(c) for c in chars]
    ri_run = 1 if classes[0] == _RI else 0
    pict_state = 1 if classes[0] == _PICT else 0  # 1: ExtPict Extend*, 2: ... ZWJ
    for i in range(1, n):
        a, b = classes[i - 1], classes[i]
        join: bool
        if a == _CR and b == _LF:
            join = True
        elif a in (_CR, _LF, _CONTROLC) or b in (_CR, _LF, _CONTROLC):
            join = False
        elif a == _L and b in (_L, _V, _LV, _LVT):
            join = True
        elif a in (_LV, _V) and b in (_V, _T):
            join = True
        elif a in (_LVT, _T) and b == _T:
            join = True
        elif b in (_EXTEND, _ZWJ, _SPACING):
            join = True
        elif a == _PREPEND:
            join = True
        elif a == _ZWJ and b == _PICT and pict_state == 2:
            join = True
        elif a == _RI and b == _RI and ri_run % 2 == 1:
            join = True
        else:
            join = False
        if not join:
            starts.append(i)
        # state updates
        ri_run = ri_run + 1 if b == _RI else 0
        if b == _PICT:
            pict_state = 1
        elif b == _EXTEND and pict_state == 1:
            pict_state = 1
        elif b == _ZWJ and pict_state == 1:
            pict_state = 2
        else:
            pict_state = 0
    starts.append(n)
    return starts


# --------------------------------------------------------------------------------------------
# Alignment-tracking normalization (the slow path; same rules as tokenizers' NormalizedString)
# --------------------------------------------------------------------------------------------


def _apply_transformations(
    align: list[int], transformations: list[tuple[str, int]], cursor: int = 0
) -> tuple[list[str], list[int]]:
    """NormalizedString::transform: a change of 0 consumes one character, >0 inserts (aligned
    with the previous consumed character), <0 consumes and drops that many more after it.
    `cursor` is the index in `align` of the first character to consume."""
    chars: list[str] = []
    new_align: list[int] = []
    n = len(align)
    for c, change in transformations:
        if change > 0:
            a = align[cursor - 1] if cursor > 0 else (align[0] if n else 0)
        else:
            a = align[cursor] if cursor < n else (align[-1] if n else 0)
            cursor += 1
            if change < 0:
                cursor -= change
        chars.append(c)
        new_align.append(a)
    return chars, new_align


# tokenizers' StripAccents uses an older Unicode table of combining marks than Python 3.11's
# unicodedata (14.0): these marks, added in later Unicode versions, are NOT removed by it ...
_RUST_KEEPS_MARKS = (
    (0x7FD, 0x7FD), (0x898, 0x89F), (0x8CA, 0x8D3), (0x9FE, 0x9FE), (0xAFA, 0xAFF), (0xB55, 0xB55),
    (0xC04, 0xC04), (0xC3C, 0xC3C), (0xD00, 0xD00), (0xD3B, 0xD3C), (0xD81, 0xD81), (0xEBA, 0xEBA),
    (0x1715, 0x1715), (0x180F, 0x180F), (0x1ABF, 0x1ACE), (0x1CF7, 0x1CF7), (0x1DF6, 0x1DFA),
    (0xA82C, 0xA82C), (0xA8FF, 0xA8FF), (0x10D24, 0x10D27), (0x10EAB, 0x10EAC), (0x10F46, 0x10F50),
    (0x10F82, 0x10F85), (0x11070, 0x11070), (0x11073, 0x11074), (0x110C2, 0x110C2), (0x11145, 0x11146),
    (0x111C9, 0x111C9), (0x111CE, 0x111CF), (0x1133B, 0x1133B), (0x1145E, 0x1145E), (0x1182C, 0x1183A),
    (0x11930, 0x11935), (0x11937, 0x11938), (0x1193B, 0x1193E), (0x11940, 0x11940), (0x11942, 0x11943),
    (0x119D1, 0x119D7), (0x119DA, 0x119E0), (0x119E4, 0x119E4), (0x11A01, 0x11A0A), (0x11A33, 0x11A39),
    (0x11A3B, 0x11A3E), (0x11A47, 0x11A47), (0x11A51, 0x11A5B), (0x11A8A, 0x11A99), (0x11D31, 0x11D36),
    (0x11D3A, 0x11D3A), (0x11D3C, 0x11D3D), (0x11D3F, 0x11D45), (0x11D47, 0x11D47), (0x11D8A, 0x11D8E),
    (0x11D90, 0x11D91), (0x11D93, 0x11D97), (0x11EF3, 0x11EF6), (0x16F4F, 0x16F4F), (0x16F7F, 0x16F87),
    (0x16FE4, 0x16FE4), (0x16FF0, 0x16FF1), (0x1CF00, 0x1CF2D), (0x1CF30, 0x1CF46), (0x1E130, 0x1E136),
    (0x1E2AE, 0x1E2AE), (0x1E2EC, 0x1E2EF),
)
# ... and these two, marks in its table but letters (Lo) today, ARE removed.
_RUST_STRIPS_LETTERS = (0x1CF2, 0x1CF3)


@lru_cache(maxsize=1)
def _marks_pattern() -> re.Pattern:
    """A character class of the combining marks tokenizers' StripAccents removes: Python's
    Mn, Mc and Me, adjusted to the Rust crate's (older) table, see above."""
    keep = set()
    for a, b in _RUST_KEEPS_MARKS:
        keep.update(range(a, b + 1))
    ranges = []
    start = None
    prev = None
    category = unicodedata.category
    # No combining marks live outside these blocks (planes 3-13 and 15-16 have none).
    for cp in (*range(0x300, 0xD800), *range(0xE000, 0x30000), *range(0xE0000, 0xE0200)):
        is_mark = (category(chr(cp))[0] == "M" and cp not in keep) or cp in _RUST_STRIPS_LETTERS
        if is_mark and start is None:
            start = cp
        elif not is_mark and start is not None:
            ranges.append((start, prev))
            start = None
        prev = cp
    if start is not None:
        ranges.append((start, prev))
    cls = "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges
    )
    return re.compile(f"[{cls}]")


_LOWER_FIX = str.maketrans({"Σ": "σ"})  # Rust lower-cases per character: no final-sigma rule


def normalize_text(text: str, *, do_lower_case: bool = True, keep_accents: bool = False,
                   compat: str = "transformers") -> str:
    """The normalization AlbertTokenizer applies before the model's own character map (step 2).

    "``" and "''" -> '"'; accents stripped (NFKD, then combining marks removed) unless
    keep_accents; lower-cased when do_lower_case. compat="original" first collapses whitespace
    and removes marks by combining class, as google-research ALBERT does. Pre-training trains its
    SentencePiece vocabulary on this text, so the pieces are those the tokenizer will look for.
    """
    if compat == "original":
        s = " ".join(text.strip().split())
        s = s.replace("``", '"').replace("''", '"')
        if not keep_accents:
            s = unicodedata.normalize("NFKD", s)
            s = "".join(c for c in s if not unicodedata.combining(c))
        return s.lower() if do_lower_case else s
    s = text
    if "`" in s or "'" in s:
        s = s.replace("``", '"').replace("''", '"')
    ascii_ = s.isascii()
    if not keep_accents and not ascii_:
        s = unicodedata.normalize("NFKD", s)
        s = _marks_pattern().sub("", s)
    if do_lower_case:
        if not ascii_:
            s = s.translate(_LOWER_FIX)
        s = s.lower()
    return s


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------


class BatchEncoding(dict):
    """A dict (input_ids, token_type_ids, attention_mask[, offset_mapping]) with attribute access."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to(self, device: Any) -> "BatchEncoding":
        return BatchEncoding({k: (v.to(device) if hasattr(v, "to") else v) for k, v in self.items()})


@dataclass
class _AddedToken:
    content: str
    id: int
    special: bool
    lstrip: bool = False
    rstrip: bool = False


_PADDING = {False: None, None: None, "do_not_pad": None, True: "longest", "longest": "longest", "max_length": "max_length"}
_TRUNCATION = {
    False: None,
    None: None,
    "do_not_truncate": None,
    True: "longest_first",
    "longest_first": "longest_first",
    "only_first": "only_first",
    "only_second": "only_second",
}


# --------------------------------------------------------------------------------------------
# The tokenizer
# --------------------------------------------------------------------------------------------


class AlbertTokenizer:
    """ALBERT's SentencePiece tokenizer, equal to `transformers.AlbertTokenizer` (v5) id for id.

    Build it with `AlbertTokenizer.from_pretrained(dir_or_repo_or_model_file)` or directly
    from a `spiece.model` path. Options:

    - do_lower_case (True), keep_accents (False): as in transformers / tokenizer_config.json.
    - model_max_length (512): the default max_length for truncation and "max_length" padding.
    - compat ("transformers"): "original" switches to the google-research ALBERT algorithm
      (whitespace collapsed with str.split, sentencepiece's own normalization of the whole
      string, combining marks removed by canonical combining class, digit+comma pieces
      re-split, special tokens in the text not recognised); see the README table.
    - num_threads: threads for sentencepiece's batched encoding (default: os.cpu_count()).
    """

    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file: str | os.PathLike,
        *,
        tokenizer_file: str | os.PathLike | None = None,
        do_lower_case: bool = True,
        keep_accents: bool = False,
        model_max_length: int = 512,
        compat: str = "transformers",
        added_tokens: Sequence[dict] | None = None,
        unk_token: str = "<unk>",
        pad_token: str = "<pad>",
        cls_token: str = "[CLS]",
        sep_token: str = "[SEP]",
        mask_token: str = "[MASK]",
        num_threads: int | None = None,
    ):
        if compat not in ("transformers", "original"):
            raise ConfigError(f"compat must be 'transformers' or 'original', not {compat!r}")
        self.vocab_file = str(vocab_file)
        self.tokenizer_file = str(tokenizer_file) if tokenizer_file else None
        self.do_lower_case = bool(do_lower_case)
        self.keep_accents = bool(keep_accents)
        self.model_max_length = int(model_max_length)
        self.compat = compat
        self.num_threads = num_threads if num_threads is not None else (os.cpu_count() or 1)
        self.padding_side = "right"

        try:
            data = Path(vocab_file).read_bytes()
        except OSError as e:
            raise CheckpointError(f"cannot read SentencePiece model {vocab_file}: {e}") from None
        try:
            model = _SpmModel.parse(data)
        except Exception:
            raise CheckpointError(
                f"{vocab_file} is not a SentencePiece model file (expected ALBERT's spiece.model)"
            ) from None
        if model.model_type != 1:
            raise CheckpointError(
                f"{vocab_file} is not a unigram SentencePiece model (ALBERT uses unigram)"
            )
        self._spm_model = model

        # The original sentencepiece processor: decoding helpers and compat="original".
        self._sp_orig = spm.SentencePieceProcessor()
        self._sp_orig.LoadFromSerializedProto(data)

        pieces = [(p, s) for p, s, _ in model.pieces]
        charsmap = model.charsmap
        json_added: list[dict] | None = None
        if self.tokenizer_file:
            try:
                tj = json.loads(Path(self.tokenizer_file).read_text(encoding="utf-8"))
                vocab = tj["model"]["vocab"]
                pieces = [(str(p), float(s)) for p, s in vocab]
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise CheckpointError(
                    f"cannot use {self.tokenizer_file}: expected a tokenizers Unigram tokenizer.json ({e})"
                ) from None
            # transformers takes the character map from tokenizer.json's normalizer, or none.
            charsmap = b""
            norm = tj.get("normalizer") or {}
            norms = norm.get("normalizers", [norm]) if norm.get("type") == "Sequence" else [norm]
            for nz in norms:
                if isinstance(nz, dict) and nz.get("type") == "Precompiled" and nz.get("precompiled_charsmap"):
                    import base64

                    charsmap = base64.b64decode(nz["precompiled_charsmap"])
                    break
            json_added = list(tj.get("added_tokens") or [])
        self._pieces = [p for p, _ in pieces]
        self._scores = [s for _, s in pieces]
        self._vocab = {p: i for i, p in enumerate(self._pieces)}
        self._charsmap = _CharsMap(charsmap) if charsmap else None

        # Special tokens: names from tokenizer_config (or ALBERT's defaults), ids from the vocab.
        types = [t for _, _, t in model.pieces]
        unk_from_model = next((i for i, t in enumerate(types) if t == _UNKNOWN), None)
        self.unk_token = unk_token
        self.pad_token, self.cls_token, self.sep_token, self.mask_token = pad_token, cls_token, sep_token, mask_token
        self.unk_token_id = self._vocab.get(unk_token, unk_from_model)
        if self.unk_token_id is None:
            raise CheckpointError(f"{vocab_file} has no unknown piece")
        missing = [t for t in (pad_token, cls_token, sep_token, mask_token) if t not in self._vocab]
        if missing:
            raise CheckpointError(
                f"{vocab_file} lacks ALBERT's special pieces {missing}: is this an ALBERT spiece.model?"
            )
        self.pad_token_id = self._vocab[pad_token]
        self.cls_token_id = self._vocab[cls_token]
        self.sep_token_id = self._vocab[sep_token]
        self.mask_token_id = self._vocab[mask_token]

        # Added tokens, as transformers registers them.
        added: dict[str, _AddedToken] = {}
        if added_tokens is not None:
            source = list(added_tokens)
        elif json_added is not None:
            source = json_added
        else:
            source = [
                {"content": p, "id": i, "special": t == _CONTROL}
                for i, (p, _, t) in enumerate(model.pieces)
                if t in (_CONTROL, _USER_DEFINED)
            ]
        for entry in source:
            content = str(entry["content"])
            tid = int(entry["id"]) if entry.get("id") is not None else self._vocab.get(content)
            if tid is None:
                continue
            added[content] = _AddedToken(
                content, tid, bool(entry.get("special", False)), bool(entry.get("lstrip", False)), bool(entry.get("rstrip", False))
            )
        for tok in (pad_token, unk_token, cls_token, sep_token, mask_token):
            if tok in added:
                added[tok].special = True
            else:
                added[tok] = _AddedToken(tok, self._vocab.get(tok, self.unk_token_id), True)
        self._added = added
        self._added_by_id = {t.id: t for t in added.values()}
        self.all_special_ids = sorted({t.id for t in added.values() if t.special})
        self.all_special_tokens = [self._pieces[i] for i in self.all_special_ids]

        self._safe_chars: set[str] = set()
        self._unsafe_chars: set[str] = set()
        self._hot_re = re.compile("(?!)")
        self._span_cache: dict[str, str] = {}
        self._char_memo: dict[str, str] = {}
        self._build_segmenter()
        self._added_re = self._compile_added_re()

    # ---------------------------------------------------------------- construction helpers

    def _build_segmenter(self) -> None:
        """A copy of the model for sentencepiece's Viterbi: all pieces normal (so their scores
        decide, as in the Rust Unigram model, which also matches <unk> and [CLS] as text), a
        fresh unknown piece appended, then one user-defined sentinel piece per added token."""
        n = len(self._pieces)
        self._n_vocab = n
        pieces = [(p, s, _NORMAL) for p, s in zip(self._pieces, self._scores)]
        self._dummy_unk_id = n
        pieces.append(("\u2047<minialbert-unk>\u2047", 0.0, _UNKNOWN))
        # Private-use sentinels stand for added tokens inside the single string per text.
        self._sentinel_base = n + 1
        self._sentinel_of: dict[str, str] = {}
        self._sentinel_id_to_token: list[int] = []
        for k, tok in enumerate(self._added.values()):
            ch = chr(0xF0000 + k)
            self._sentinel_of[tok.content] = ch
            self._sentinel_id_to_token.append(tok.id)
            pieces.append((ch, 0.0, _USER_DEFINED))
        self._sentinel_chars = frozenset(self._sentinel_of.values())
        proto = _serialize_model(pieces, self._spm_model.trainer)
        self._sp = spm.SentencePieceProcessor()
        self._sp.LoadFromSerializedProto(proto)
        # Lengths (in characters) of every id the segmenter can return.
        self._piece_len = [len(p) for p, _, _ in pieces]
        self._piece_len[self._dummy_unk_id] = -1
        # Concatenating all pre-tokens of a text is safe when no piece holds "▁" past its
        # first character and "▁" itself is a piece (so unknown runs never fuse across words).
        self._joinable = SPIECE_UNDERLINE in self._vocab and not any(
            SPIECE_UNDERLINE in p[1:] for p in self._pieces
        )

    def _compile_added_re(self) -> re.Pattern | None:
        if not self._added:
            return None
        alts = []
        for tok in sorted(self._added.values(), key=lambda t: len(t.content), reverse=True):
            pat = re.escape(tok.content)
            if tok.lstrip:
                pat = _WS_CLASS + "*" + pat
            if tok.rstrip:
                pat = pat + _WS_CLASS + "*"
            alts.append(f"(?:{pat})")
        return re.compile("|".join(alts))

    # ---------------------------------------------------------------- loading

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
        **overrides: Any,
    ) -> "AlbertTokenizer":
        """Load from a checkpoint folder, a Hub repo id, or a path to a `.model` file.

        Reads spiece.model, plus tokenizer_config.json (do_lower_case, keep_accents,
        model_max_length, special token names, added tokens) and tokenizer.json (piece
        scores, character map, added tokens) when present. Keyword overrides win.
        """
        from .hub import ModelSource

        path = os.path.expanduser(os.fspath(name_or_path))
        config: dict[str, Any] = {}
        tokenizer_file = None
        if os.path.isfile(path):
            vocab_file = Path(path)
            folder = vocab_file.parent
            cfg = folder / "tokenizer_config.json"
            if cfg.is_file():
                config = _read_json(cfg)
        else:
            source = ModelSource(name_or_path, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
            try:
                vocab_file = source.file("spiece.model")
            except CheckpointError as e:
                raise CheckpointError(
                    f"{e}. minialbert's AlbertTokenizer needs ALBERT's SentencePiece model "
                    "(spiece.model); a tokenizer.json alone is not enough"
                ) from None
            cfg = source.file("tokenizer_config.json", required=False)
            if cfg is not None:
                config = _read_json(cfg)
            tj = source.file("tokenizer.json", required=False)
            tokenizer_file = str(tj) if tj is not None else None

        kwargs: dict[str, Any] = {}
        for key in ("do_lower_case", "keep_accents", "model_max_length"):
            if key in config and config[key] is not None:
                kwargs[key] = config[key]
        if kwargs.get("model_max_length", 0) > 10**12:  # transformers' "unset" sentinel
            kwargs.pop("model_max_length")
        for key in ("unk_token", "pad_token", "cls_token", "sep_token", "mask_token"):
            value = config.get(key)
            if isinstance(value, dict):
                value = value.get("content")
            if isinstance(value, str):
                kwargs[key] = value
        atd = config.get("added_tokens_decoder")
        if isinstance(atd, dict) and atd:
            base: dict[int, dict] = {}
            if tokenizer_file:
                try:
                    for e in _read_json(Path(tokenizer_file)).get("added_tokens") or []:
                        base[int(e["id"])] = e
                except (OSError, ValueError, KeyError):
                    pass
            for k, v in atd.items():
                if isinstance(v, dict):
                    base[int(k)] = {**v, "id": int(k)}
            kwargs["added_tokens"] = list(base.values())
        if tokenizer_file:
            kwargs["tokenizer_file"] = tokenizer_file
        # minialbert's own key: the tokenization algorithm this folder's model was trained with
        # (written by save_pretrained, e.g. after pre-training with compat="original").
        if isinstance(config.get("minialbert_compat"), str):
            kwargs["compat"] = config["minialbert_compat"]
        kwargs.update(overrides)
        return cls(vocab_file, **kwargs)

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write spiece.model (+ tokenizer.json when loaded with one) and tokenizer_config.json.

        `from_pretrained(directory)`, transformers' AlbertTokenizer and minialbert's Embedder read
        the folder back. tokenizer_config.json records the settings and `minialbert_compat`, so a
        folder tokenizes the same way it did when it was written.
        """
        from .files import atomic_write

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        files = {"spiece.model": Path(self.vocab_file).read_bytes()}
        if self.tokenizer_file:
            files["tokenizer.json"] = Path(self.tokenizer_file).read_bytes()
        config = {
            "tokenizer_class": "AlbertTokenizer",
            "do_lower_case": self.do_lower_case,
            "keep_accents": self.keep_accents,
            "remove_space": True,
            "model_max_length": self.model_max_length,
            "unk_token": self.unk_token,
            "pad_token": self.pad_token,
            "cls_token": self.cls_token,
            "sep_token": self.sep_token,
            "mask_token": self.mask_token,
            "added_tokens_decoder": {
                str(t.id): {"content": t.content, "special": t.special, "lstrip": t.lstrip,
                            "rstrip": t.rstrip, "normalized": False, "single_word": False}
                for t in sorted(self._added.values(), key=lambda t: t.id)
            },
            "minialbert_compat": self.compat,
        }
        files["tokenizer_config.json"] = (json.dumps(config, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        for name, data in files.items():
            atomic_write(out / name, lambda tmp, data=data: Path(tmp).write_bytes(data))

    # ---------------------------------------------------------------- basic properties

    @property
    def vocab_size(self) -> int:
        return self._n_vocab

    def __len__(self) -> int:
        return self._n_vocab

    def get_vocab(self) -> dict[str, int]:
        return dict(self._vocab)

    def __repr__(self) -> str:
        return (
            f"AlbertTokenizer(vocab_size={self.vocab_size}, do_lower_case={self.do_lower_case}, "
            f"keep_accents={self.keep_accents}, model_max_length={self.model_max_length}, compat={self.compat!r})"
        )

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        if isinstance(tokens, str):
            return self._vocab.get(tokens, self.unk_token_id)
        return [self._vocab.get(t, self.unk_token_id) for t in tokens]

    def convert_ids_to_tokens(self, ids: int | Sequence[int], skip_special_tokens: bool = False) -> str | list[str]:
        if isinstance(ids, int) or (hasattr(ids, "ndim") and getattr(ids, "ndim") == 0):
            return self._id_to_piece(int(ids))
        special = set(self.all_special_ids) if skip_special_tokens else ()
        return [self._id_to_piece(int(i)) for i in ids if int(i) not in special]

    def _id_to_piece(self, i: int) -> str:
        if not 0 <= i < self._n_vocab:
            raise MinialbertError(f"token id {i} is outside the vocabulary (0..{self._n_vocab - 1})")
        return self._pieces[i]

    # ---------------------------------------------------------------- normalization

    def _normalize_fast(self, seg: str) -> str:
        """The normalized text of one stretch between added tokens (no alignment)."""
        s = normalize_text(seg, do_lower_case=self.do_lower_case, keep_accents=self.keep_accents)
        if self._charsmap is not None and not self._precompiled_is_identity(s):
            s = self._hot_re.sub(self._precompiled_span, s)
        return s

    def _precompiled_span(self, m: re.Match) -> str:
        """Character map of one stretch around rare characters (a regex match that starts and
        ends on grapheme boundaries), memoized: such stretches repeat (Korean words...)."""
        span = m.group()
        cache = self._span_cache
        out = cache.get(span)
        if out is None:
            chars, _ = self._precompiled(list(span), list(range(len(span))))
            out = "".join(chars)
            if len(cache) > 200_000:
                cache.clear()
            cache[span] = out
        return out

    def _precompiled_is_identity(self, s: str) -> bool:
        """True when the character map cannot change `s`: no character of `s` is a key of the
        map nor can join a grapheme cluster (so no multi-character key can match either).
        Characters are classified once; the "hot" regex finds stretches that need the slow path."""
        safe = self._safe_chars
        if safe.issuperset(s):
            return True
        unsafe = self._unsafe_chars
        grew = False
        for c in set(s) - safe - unsafe:
            g = _gcb(c)
            if (g != _OTHER and g != _LV and g != _LVT and g != _PICT) or self._charsmap.transform(c) is not None:  # type: ignore[union-attr]
                unsafe.add(c)
                grew = True
            else:
                safe.add(c)
        if grew:
            cls = "[" + "".join(re.escape(c) for c in sorted(unsafe)) + "]"
            # a safe base character, a run of rare ones (with single safe characters between),
            # and one safe character after (which may still join the cluster: L + LV, ZWJ + emoji)
            self._hot_re = re.compile(f"(?:(?!{cls}).)?{cls}+(?:(?!{cls}).{cls}+)*(?:(?!{cls}).)?", re.DOTALL)
        return False

    def _precompiled(self, chars: list[str], align: list[int]) -> tuple[list[str], list[int]]:
        """spm_precompiled's normalize over grapheme clusters, with tokenizers' alignments."""
        transformations, _ = self._precompiled_transformations(chars)
        return _apply_transformations(align, transformations)

    def _precompiled_aligned(self, chars: list[str], align: list[int]) -> tuple[list[str], list[int]]:
        """Same result as _precompiled on the whole stretch, but the slow grapheme work is done
        only on the "hot" stretches around rare characters."""
        s = "".join(chars)
        if self._precompiled_is_identity(s):
            return chars, align
        out_c: list[str] = []
        out_a: list[int] = []
        deficit = 0  # characters dropped at the very start, never consumed (tokenizers quirk)
        pos = 0
        for m in self._hot_re.finditer(s):
            a, b = m.span()
            out_c.extend(chars[pos:a])
            out_a.extend(align[pos - deficit : a - deficit])
            trans, lead = self._precompiled_transformations(chars[a:b])
            if out_c:
                # the previous character absorbs a leading removal: consumption stays in step
                c2, a2 = _apply_transformations(align, trans, cursor=a - deficit + lead)
            else:
                c2, a2 = _apply_transformations(align, trans, cursor=a - deficit)
                deficit += lead
            out_c.extend(c2)
            out_a.extend(a2)
            pos = b
        out_c.extend(chars[pos:])
        out_a.extend(align[pos - deficit : len(chars) - deficit])
        return out_c, out_a

    def _precompiled_transformations(self, chars: list[str]) -> tuple[list[tuple[str, int]], int]:
        """(transformations, number of leading characters removed before any output)."""
        cmap = self._charsmap
        assert cmap is not None
        transformations: list[tuple[str, int]] = []
        lead = 0
        starts = _grapheme_breaks(chars)

        def replace(old_count: int, new: str) -> None:
            nonlocal lead
            diff = len(new) - old_count
            transformations.extend((c, 0) for c in new)
            if diff > 0:
                for j in range(len(transformations) - diff, len(transformations)):
                    transformations[j] = (transformations[j][0], 1)
            elif diff < 0:
                if transformations:
                    c, ch = transformations[-1]
                    transformations[-1] = (c, ch + diff)
                else:
                    lead -= diff

        for gi in range(len(starts) - 1):
            a, b = starts[gi], starts[gi + 1]
            g = "".join(chars[a:b])
            if len(g.encode("utf-8")) < 6:
                norm = cmap.transform(g)
                if norm is not None:
                    replace(b - a, norm)
                    continue
            for k in range(a, b):
                norm = cmap.transform(chars[k]) if True else None
                # transform() of a single character finds only a key equal to it
                if norm is not None:
                    replace(1, norm)
                else:
                    transformations.append((chars[k], 0))
        return transformations, lead

    def _normalize_aligned(self, seg: str) -> tuple[list[str], list[int]]:
        """Normalize one stretch and return (characters, index in `seg` each aligns with)."""
        chars = list(seg)
        align = list(range(len(seg)))
        for pat in ("``", "''"):
            if pat in "".join(chars):
                nc, na = [], []
                i = 0
                while i < len(chars):
                    if chars[i] == pat[0] and i + 1 < len(chars) and chars[i + 1] == pat[1]:
                        nc.append('"')
                        na.append(align[i + 1])
                        i += 2
                    else:
                        nc.append(chars[i])
                        na.append(align[i])
                        i += 1
                chars, align = nc, na
        # NFKD, mark removal and lower-casing act per character: memoize each character's result
        memo = self._char_memo
        outs = []
        for c in chars:
            o = memo.get(c)
            if o is None:
                o = self._char_norm(c)
                memo[c] = o
            outs.append(o)
        if any(len(o) != 1 for o in outs):
            align = [a for o, a in zip(outs, align) for _ in o]
            chars = list("".join(outs))
        else:
            chars = outs
        if self._charsmap is not None:
            chars, align = self._precompiled_aligned(chars, align)
        return chars, align

    def _char_norm(self, c: str) -> str:
        if not self.keep_accents and not c.isascii():
            c = _marks_pattern().sub("", unicodedata.normalize("NFKD", c))
        if self.do_lower_case:
            c = "".join("σ" if x == "Σ" else x.lower() for x in c)
        return c

    # ---------------------------------------------------------------- text -> segmenter input

    def _split_added(self, text: str) -> list[tuple[bool, int, int]]:
        """(is_added_token, start, end) spans covering `text`."""
        rx = self._added_re
        if rx is None:
            return [(False, 0, len(text))]
        out = []
        pos = 0
        for m in rx.finditer(text):
            if m.start() > pos:
                out.append((False, pos, m.start()))
            out.append((True, m.start(), m.end()))
            pos = m.end()
        if pos < len(text) or not out:
            out.append((False, pos, len(text)))
        return out

    def _added_token_of_span(self, text: str, start: int, end: int) -> _AddedToken:
        span = text[start:end]
        tok = self._added.get(span)
        if tok is None:
            tok = self._added[span.strip(_WS_CHARS)] if span.strip(_WS_CHARS) in self._added else None
        if tok is None:  # lstrip/rstrip: find the content inside the whitespace
            for t in self._added.values():
                if t.content in span:
                    return t
            raise AssertionError(span)
        return tok

    @staticmethod
    def _pretokens(s: str) -> str:
        """WhitespaceSplit + Metaspace(prepend always, split): the pre-tokens, concatenated."""
        if _INFO_SEP_RE.search(s):
            words = [w for w in _WS_SPLIT_RE.split(s) if w]
        else:
            words = s.split()
        if not words:
            return ""
        if SPIECE_UNDERLINE in s:
            return "".join(w if w.startswith(SPIECE_UNDERLINE) else SPIECE_UNDERLINE + w for w in words)
        return SPIECE_UNDERLINE + SPIECE_UNDERLINE.join(words)

    def _segmenter_input(self, text: str) -> str:
        """One string per text: pre-tokens of each stretch, sentinels for added tokens."""
        if self._added_re is None or not self._added_re.search(text):
            return self._pretokens(self._normalize_fast(text))
        parts = []
        for is_added, a, b in self._split_added(text):
            if is_added:
                parts.append(self._sentinel_of[self._added_token_of_span(text, a, b).content])
            else:
                parts.append(self._pretokens(self._normalize_fast(text[a:b])))
        return "".join(parts)

    def _segmenter_input_aligned(self, text: str) -> tuple[str, list[int], dict[int, int]]:
        """Like _segmenter_input, plus the original index each character aligns with (its
        start; the end is start + 1, except for added tokens, whose ends are in the dict)."""
        out: list[str] = []
        starts: list[int] = []
        ends_at: dict[int, int] = {}
        spans = self._split_added(text) if self._added_re is not None else [(False, 0, len(text))]
        for is_added, a, b in spans:
            if is_added:
                out.append(self._sentinel_of[self._added_token_of_span(text, a, b).content])
                ends_at[len(starts)] = b
                starts.append(a)
                continue
            seg = text[a:b]
            fast = self._normalize_fast(seg)
            if len(fast) == len(seg) and self._identity_aligned(seg, fast):
                chars, align = fast, range(len(seg))
            else:
                chars, align = self._normalize_aligned(seg)
            # pre-tokenize with alignment, a word at a time
            norm = "".join(chars) if not isinstance(chars, str) else chars
            identity = isinstance(align, range)
            for m in _NON_WS_RE.finditer(norm):
                ws, we = m.span()
                first = align[ws]
                if norm[ws] != SPIECE_UNDERLINE:
                    out.append(SPIECE_UNDERLINE)
                    starts.append(a + first)
                out.append(m.group())
                if identity:
                    starts.extend(range(a + ws, a + we))
                else:
                    starts.extend([a + x for x in align[ws:we]])
        return "".join(out), starts, ends_at

    def _identity_aligned(self, seg: str, norm: str) -> bool:
        """True when normalization mapped `seg` to `norm` character by character."""
        if "``" in seg or "''" in seg:
            return False
        if seg.isascii():
            return self._charsmap is None or self._precompiled_is_identity(seg.lower() if self.do_lower_case else seg)
        if not self.keep_accents:
            if not unicodedata.is_normalized("NFKD", seg) or _marks_pattern().search(seg):
                return False
        if self.do_lower_case and len(seg.translate(_LOWER_FIX).lower()) != len(seg):
            return False
        s = seg.translate(_LOWER_FIX).lower() if self.do_lower_case else seg
        return self._charsmap is None or self._precompiled_is_identity(s)

    # ---------------------------------------------------------------- segmentation

    def _fix_ids(self, ids: list[int]) -> list[int]:
        if ids and max(ids) >= self._n_vocab:
            n = self._n_vocab
            unk = self.unk_token_id
            base = self._sentinel_base
            table = self._sentinel_id_to_token
            ids = [i if i < n else (unk if i == n else table[i - base]) for i in ids]
        return ids

    def _segment(self, strings: list[str]) -> list[list[int]]:
        if not strings:
            return []
        if self._joinable:
            if len(strings) == 1:  # no thread pool for one text
                return [self._fix_ids(self._sp.encode(strings[0], out_type=int))]
            raw = self._sp.encode(strings, out_type=int, num_threads=self.num_threads)
            return [self._fix_ids(r) for r in raw]
        # Rare models whose pieces contain "▁" inside: encode every pre-token separately.
        flat: list[str] = []
        counts = []
        for s in strings:
            parts = re.findall(r"▁[^▁]*|[^▁]+", s)
            # sentinels are kept apart too
            sub = []
            for p in parts:
                sub.extend(x for x in re.split("([" + "".join(self._sentinel_chars) + "])", p) if x) if self._sentinel_chars else sub.append(p)
            flat.extend(sub)
            counts.append(len(sub))
        raw = self._sp.encode(flat, out_type=int, num_threads=self.num_threads)
        out, k = [], 0
        for c in counts:
            ids: list[int] = []
            for r in raw[k : k + c]:
                ids.extend(r)
            out.append(self._fix_ids(ids))
            k += c
        return out

    def _segment_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        joined, starts, ends_at = self._segmenter_input_aligned(text)
        raw = self._segment_raw_single(joined)
        lengths = [self._piece_len[i] for i in raw]
        if -1 in lengths:  # unknown runs: take their surface from sentencepiece
            proto = self._sp.encode(joined, return_type="proto")
            lengths = [len(p.surface) for p in proto.pieces]
        offsets = []
        pos = 0
        for L in lengths:
            last = pos + L - 1
            offsets.append((starts[pos], ends_at.get(last, starts[last] + 1) if ends_at else starts[last] + 1))
            pos += L
        return self._fix_ids(raw), offsets

    def _segment_raw_single(self, joined: str) -> list[int]:
        if self._joinable:
            return self._sp.encode(joined, out_type=int)
        parts = re.findall(r"▁[^▁]*|[^▁]+", joined)
        ids: list[int] = []
        for p in parts:
            ids.extend(self._sp.encode(p, out_type=int))
        return ids

    # ---------------------------------------------------------------- original ALBERT

    def _original_ids(self, text: str) -> list[int]:
        s = normalize_text(text, do_lower_case=self.do_lower_case, keep_accents=self.keep_accents, compat="original")
        sp = self._sp_orig
        pieces = sp.encode(s, out_type=str)
        new_pieces: list[str] = []
        for piece in pieces:
            if len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit():
                cur = sp.encode(piece[:-1].replace(SPIECE_UNDERLINE, ""), out_type=str)
                if piece[0] != SPIECE_UNDERLINE and cur and cur[0][0] == SPIECE_UNDERLINE:
                    if len(cur[0]) == 1:
                        cur = cur[1:]
                    else:
                        cur[0] = cur[0][1:]
                cur.append(piece[-1])
                new_pieces.extend(cur)
            else:
                new_pieces.append(piece)
        return [sp.piece_to_id(p) for p in new_pieces]

    # ---------------------------------------------------------------- public encoding API

    def _check_text(self, text: Any, what: str = "text") -> str:
        if not isinstance(text, str):
            raise TypeError(
                f"{what} must be a str or a list of str, got {type(text).__name__}"
                + (f" ({text!r:.60})" if text is not None else "")
            )
        return text

    def encode_batch_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, without special tokens: the fast path (batched C++)."""
        for t in texts:
            self._check_text(t)
        if self.compat == "original":
            return [self._original_ids(t) for t in texts]
        return self._segment([self._segmenter_input(t) for t in texts])

    def encode(self, text: str, text_pair: str | None = None, *, add_special_tokens: bool = True, **kwargs: Any) -> list[int]:
        """Token ids of one text (and optional pair). With add_special_tokens=False and no
        other option this is the fastest way to get ids for chunking long texts."""
        self._check_text(text)
        if not kwargs and text_pair is None:
            ids = self.encode_batch_ids([text])[0]
            return self.build_inputs_with_special_tokens(ids) if add_special_tokens else ids
        enc = self(text, text_pair, add_special_tokens=add_special_tokens, **kwargs)
        return enc["input_ids"]

    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False) -> list[str]:
        """Token strings. Like transformers, an unknown stretch appears as its own (normalized)
        text, not as "<unk>"; its id is unk_token_id."""
        self._check_text(text)
        if self.compat == "original":
            toks = [self._pieces[i] for i in self._original_ids(text)]
        else:
            toks = self._tokens(text)
        if pair is not None:
            self._check_text(pair, "pair")
            toks_b = [self._pieces[i] for i in self._original_ids(pair)] if self.compat == "original" else self._tokens(pair)
        if add_special_tokens:
            out = [self.cls_token, *toks, self.sep_token]
            if pair is not None:
                out += [*toks_b, self.sep_token]
            return out
        return toks + (toks_b if pair is not None else [])

    def _tokens(self, text: str) -> list[str]:
        joined = self._segmenter_input(text)
        raw = self._segment_raw_single(joined)
        if self._dummy_unk_id in raw:
            proto = self._sp.encode(joined, return_type="proto")
            surfaces = [p.surface for p in proto.pieces]
        else:
            surfaces = [None] * len(raw)
        # An added token's string is the text it matched (with lstrip/rstrip whitespace).
        matched = iter(
            [text[a:b] for is_added, a, b in self._split_added(text) if is_added]
            if self._added_re is not None
            else []
        )
        out = []
        for i, surf in zip(raw, surfaces):
            if i < self._n_vocab:
                out.append(self._pieces[i])
            elif i == self._dummy_unk_id:
                out.append(surf)
            else:
                out.append(next(matched))
        return out

    def build_inputs_with_special_tokens(self, ids_a: Sequence[int], ids_b: Sequence[int] | None = None) -> list[int]:
        """[CLS] A [SEP] or [CLS] A [SEP] B [SEP]."""
        out = [self.cls_token_id, *ids_a, self.sep_token_id]
        if ids_b is not None:
            out += [*ids_b, self.sep_token_id]
        return out

    def create_token_type_ids_from_sequences(self, ids_a: Sequence[int], ids_b: Sequence[int] | None = None) -> list[int]:
        n = len(ids_a) + 2
        if ids_b is None:
            return [0] * n
        return [0] * n + [1] * (len(ids_b) + 1)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return 3 if pair else 2

    def __call__(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        return_tensors: str | None = None,
        return_offsets_mapping: bool = False,
        return_token_type_ids: bool = True,
        return_attention_mask: bool = True,
        pad_to_multiple_of: int | None = None,
    ) -> BatchEncoding:
        """Encode one text, a list of texts, or (lists of) pairs, like transformers does."""
        single = isinstance(text, str)
        if single:
            texts = [text]
            if text_pair is not None:
                pairs: list[str] | None = [self._check_text(text_pair, "text_pair")]
            else:
                pairs = None
        else:
            if not isinstance(text, (list, tuple)):
                raise TypeError(f"text must be a str or a list of str, got {type(text).__name__}")
            texts = list(text)
            for t in texts:
                self._check_text(t)
            if text_pair is None:
                pairs = None
            else:
                if isinstance(text_pair, str) or not isinstance(text_pair, (list, tuple)):
                    raise TypeError("with a list of texts, text_pair must be a list of str of the same length")
                pairs = list(text_pair)
                if len(pairs) != len(texts):
                    raise MinialbertError(
                        f"text and text_pair have different lengths ({len(texts)} and {len(pairs)})"
                    )
                for t in pairs:
                    self._check_text(t, "text_pair")

        try:
            pad_mode = _PADDING[padding]  # type: ignore[index]
        except (KeyError, TypeError):
            raise MinialbertError(f"padding must be False, True, 'longest' or 'max_length', not {padding!r}") from None
        try:
            trunc_mode = _TRUNCATION[truncation]  # type: ignore[index]
        except (KeyError, TypeError):
            raise MinialbertError(
                "truncation must be False, True, 'longest_first', 'only_first' or 'only_second', "
                f"not {truncation!r}"
            ) from None
        if return_tensors not in (None, "pt", "np"):
            raise MinialbertError(f"return_tensors must be None, 'pt' or 'np', not {return_tensors!r}")
        if max_length is not None and (not isinstance(max_length, int) or max_length < 0):
            raise MinialbertError(f"max_length must be a positive int, not {max_length!r}")
        if trunc_mode is not None and max_length is None:
            max_length = self.model_max_length
        if trunc_mode is None and pad_mode != "max_length":
            pass
        if return_offsets_mapping and self.compat == "original":
            raise MinialbertError("return_offsets_mapping is not available with compat='original'")

        # 1. segmentation (batched)
        if return_offsets_mapping:
            a_res = [self._segment_with_offsets(t) for t in texts]
            b_res = [self._segment_with_offsets(t) for t in pairs] if pairs is not None else None
            a_ids = [r[0] for r in a_res]
            a_off = [r[1] for r in a_res]
            b_ids = [r[0] for r in b_res] if b_res is not None else None
            b_off = [r[1] for r in b_res] if b_res is not None else None
        else:
            allt = texts + (pairs or [])
            ids = self.encode_batch_ids(allt)
            a_ids = ids[: len(texts)]
            b_ids = ids[len(texts) :] if pairs is not None else None
            a_off = b_off = None

        # 2. truncation, special tokens
        input_ids, type_ids, offsets = [], [], []
        n_special = (3 if pairs is not None else 2) if add_special_tokens else 0
        for k in range(len(texts)):
            ia = a_ids[k]
            ib = b_ids[k] if b_ids is not None else None
            oa = a_off[k] if a_off is not None else None
            ob = b_off[k] if b_off is not None else None
            if trunc_mode is not None:
                assert max_length is not None
                la, lb = self._truncate_lengths(len(ia), len(ib) if ib is not None else None, max_length - n_special, trunc_mode)
                ia = ia[:la]
                oa = oa[:la] if oa is not None else None
                if ib is not None:
                    ib = ib[:lb]
                    ob = ob[:lb] if ob is not None else None
            if add_special_tokens:
                seq = self.build_inputs_with_special_tokens(ia, ib)
                tt = self.create_token_type_ids_from_sequences(ia, ib)
                if oa is not None:
                    off = [(0, 0), *oa, (0, 0)] + ([*ob, (0, 0)] if ob is not None else [])
            else:
                seq = list(ia) + (list(ib) if ib is not None else [])
                tt = [0] * len(ia) + ([1] * len(ib) if ib is not None else [])
                if oa is not None:
                    off = list(oa) + (list(ob) if ob is not None else [])
            input_ids.append(seq)
            type_ids.append(tt)
            if oa is not None:
                offsets.append(off)

        # 3. padding
        masks = [[1] * len(s) for s in input_ids]
        if pad_mode is not None:
            if pad_mode == "max_length":
                target = max_length if max_length is not None else self.model_max_length
            else:
                target = max((len(s) for s in input_ids), default=0)
            if pad_to_multiple_of:
                target = -(-target // pad_to_multiple_of) * pad_to_multiple_of
            for k in range(len(input_ids)):
                missing = target - len(input_ids[k])
                if missing > 0:
                    input_ids[k] = input_ids[k] + [self.pad_token_id] * missing
                    type_ids[k] = type_ids[k] + [0] * missing
                    masks[k] = masks[k] + [0] * missing
                    if offsets:
                        offsets[k] = offsets[k] + [(0, 0)] * missing

        out: dict[str, Any] = {"input_ids": input_ids}
        if return_token_type_ids:
            out["token_type_ids"] = type_ids
        if return_attention_mask:
            out["attention_mask"] = masks
        if return_offsets_mapping:
            out["offset_mapping"] = offsets
        if return_tensors is not None:
            lengths = {len(s) for s in input_ids}
            if len(lengths) > 1:
                raise MinialbertError(
                    "texts of different lengths cannot form one tensor: pass padding=True "
                    "(or padding='max_length')"
                )
            out = {k: _to_tensor(v, return_tensors) for k, v in out.items()}
        elif single:
            out = {k: v[0] for k, v in out.items()}
        return BatchEncoding(out)

    @staticmethod
    def _truncate_lengths(la: int, lb: int | None, budget: int, mode: str) -> tuple[int, int | None]:
        """Target lengths, as tokenizers' truncate_encodings computes them."""
        if budget < 0:
            raise MinialbertError(
                f"max_length is too small: the special tokens alone need {-budget + (budget + 0)} more"
            )
        if lb is None:
            if mode == "only_second":
                raise MinialbertError("truncation='only_second' needs a text_pair")
            return min(la, budget), None
        if la + lb <= budget:
            return la, lb
        if mode == "longest_first":
            n1, n2 = la, lb
            swap = n1 > n2
            if swap:
                n1, n2 = n2, n1
            if n1 > budget:
                n2 = n1
            else:
                n2 = max(n1, budget - n1)
            if n1 + n2 > budget:
                n1 = budget // 2
                n2 = n1 + budget % 2
            if swap:
                n1, n2 = n2, n1
            return min(la, n1), min(lb, n2)
        to_remove = la + lb - budget
        if mode == "only_first":
            if la > to_remove:
                return la - to_remove, lb
        else:
            if lb > to_remove:
                return la, lb - to_remove
        raise MinialbertError(
            f"truncation={mode!r} cannot fit the pair into max_length: the sequence to truncate is "
            "too short; use truncation='longest_first' or a larger max_length"
        )

    # ---------------------------------------------------------------- decoding

    def decode(self, ids: Sequence[int] | Any, skip_special_tokens: bool = False) -> str:
        """Text of `ids`, as transformers decodes it ("▁" becomes a space; the first token's
        leading one is dropped)."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        if isinstance(ids, int):
            ids = [ids]
        special = set(self.all_special_ids) if skip_special_tokens else set()
        tokens = [self._id_to_piece(int(i)) for i in ids if int(i) not in special]
        out = []
        for k, tok in enumerate(tokens):
            if k == 0:
                out.append(tok.replace(SPIECE_UNDERLINE, ""))
            else:
                out.append(tok.replace(SPIECE_UNDERLINE, " "))
        return "".join(out)

    def batch_decode(self, sequences: Sequence[Sequence[int]], skip_special_tokens: bool = False) -> list[str]:
        return [self.decode(s, skip_special_tokens=skip_special_tokens) for s in sequences]


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} does not hold a JSON object")
    return data


def _to_tensor(rows: list, kind: str) -> Any:
    if kind == "np":
        import numpy as np

        return np.asarray(rows, dtype=np.int64)
    import torch

    return torch.tensor(rows, dtype=torch.long)
