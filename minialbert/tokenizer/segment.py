"""From text to ids: added tokens, pre-tokenization and sentencepiece's C++ Viterbi.

1. Added tokens (special tokens, and the model's control and user-defined pieces) are cut out
   of the raw text first, leftmost-longest, honouring their lstrip/rstrip flags.
2. Each stretch between them is normalized (normalize.py); added tokens with normalized=True
   (what transformers' add_tokens makes) are then cut out of the normalized text. What is left
   is pre-tokenized as tokenizers' WhitespaceSplit + Metaspace do it: split on Unicode
   White_Space, "▁" before every word.
3. All pre-tokens of one text are joined into ONE string, added tokens standing in it as
   private-use sentinel characters, and segmented by sentencepiece's C++ Viterbi, batched over
   texts. The sentencepiece model used for that is a copy of the tokenizer's pieces with its
   own normalization off, every piece "normal" (so that the scores alone decide, as in the Rust
   Unigram model), a fresh unknown piece, and one user-defined piece per sentinel.

Offsets: `segmenter_input_aligned` also returns, for every character of that string, the
index in the original text it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sentencepiece as spm

from .normalize import Normalizer
from .spm_model import NORMAL, UNKNOWN, USER_DEFINED, serialize_model

SPIECE_UNDERLINE = "▁"

# Rust's char::is_whitespace (Unicode White_Space). Python's str.split() also splits on
# \x1c-\x1f, so it is only used when those are absent.
WS_CHARS = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_WS_CLASS = "[" + re.escape(WS_CHARS) + "]"
_WS_SPLIT_RE = re.compile(_WS_CLASS + "+")
_INFO_SEP_RE = re.compile("[\x1c-\x1f]")
_NON_WS_RE = re.compile("[^" + re.escape(WS_CHARS) + "]+")


@dataclass
class AddedToken:
    content: str
    id: int
    special: bool
    lstrip: bool = False  # also takes the whitespace before it
    rstrip: bool = False  # ... and after it
    normalized: bool = False  # matched in the normalized text (else in the raw text, first)


class Segmenter:
    """Ids (and offsets) of texts, for one vocabulary, set of added tokens and normalizer."""

    def __init__(
        self,
        pieces_and_scores: list[tuple[str, float]],
        added: dict[str, AddedToken],
        *,
        unk_token_id: int,
        normalizer: Normalizer,
    ):
        self._pieces = [p for p, _ in pieces_and_scores]
        self._added = added
        self.unk_token_id = unk_token_id
        self._normalizer = normalizer
        self._build(pieces_and_scores)
        # As tokenizers' AddedVocabulary: tokens with normalized=False are cut out of the raw
        # text first; those with normalized=True are then looked for (normalized themselves)
        # in the normalized text of each stretch between.
        self._raw_added = {t.content: t for t in added.values() if not t.normalized}
        self._norm_added: dict[str, AddedToken] = {}
        for t in added.values():
            if t.normalized and normalizer.normalize(t.content):
                self._norm_added.setdefault(normalizer.normalize(t.content), t)
        self._added_re = _token_regex(self._raw_added)
        self._norm_re = _token_regex(self._norm_added)

    def _build(self, pieces_and_scores: list[tuple[str, float]]) -> None:
        """A copy of the model for sentencepiece's Viterbi: all pieces normal (so their scores
        decide, as in the Rust Unigram model, which also matches <unk> and [CLS] as text), a
        fresh unknown piece appended, then one user-defined sentinel piece per added token."""
        n = len(pieces_and_scores)
        self._n_vocab = n
        pieces = [(p, s, NORMAL) for p, s in pieces_and_scores]
        self._dummy_unk_id = n
        pieces.append(("\u2047<minialbert-unk>\u2047", 0.0, UNKNOWN))
        # Private-use sentinels stand for added tokens inside the single string per text.
        self._sentinel_base = n + 1
        self._sentinel_of: dict[str, str] = {}
        self._sentinel_id_to_token: list[int] = []
        for k, tok in enumerate(self._added.values()):
            ch = chr(0xF0000 + k)
            self._sentinel_of[tok.content] = ch
            self._sentinel_id_to_token.append(tok.id)
            pieces.append((ch, 0.0, USER_DEFINED))
        self._sentinel_chars = frozenset(self._sentinel_of.values())
        proto = serialize_model(pieces)
        self._sp = spm.SentencePieceProcessor()
        self._sp.LoadFromSerializedProto(proto)
        # Lengths (in characters) of every id the segmenter can return.
        self._piece_len = [len(p) for p, _, _ in pieces]
        self._piece_len[self._dummy_unk_id] = -1
        # Concatenating all pre-tokens of a text is safe when no piece holds "▁" past its
        # first character and "▁" itself is a piece (so unknown runs never fuse across words).
        self._joinable = any(p == SPIECE_UNDERLINE for p, _ in pieces_and_scores) and not any(
            SPIECE_UNDERLINE in p[1:] for p, _ in pieces_and_scores
        )

    def split_added(self, text: str) -> list[tuple[bool, int, int]]:
        """(is_added_token, start, end) spans covering `text` (raw added tokens only)."""
        return _split(self._added_re, text)

    def _pretokenize(self, norm: str) -> str:
        """Pre-tokens of one normalized stretch, normalized added tokens as sentinels."""
        if self._norm_re is None or not self._norm_re.search(norm):
            return self._pretokens(norm)
        return "".join(
            self._sentinel_of[_token_of(self._norm_added, norm[a:b]).content] if is_added else self._pretokens(norm[a:b])
            for is_added, a, b in _split(self._norm_re, norm)
        )

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

    def segmenter_input(self, text: str) -> str:
        """One string per text: pre-tokens of each stretch, sentinels for added tokens."""
        if self._added_re is None or not self._added_re.search(text):
            return self._pretokenize(self._normalizer.normalize(text))
        parts = []
        for is_added, a, b in self.split_added(text):
            if is_added:
                parts.append(self._sentinel_of[_token_of(self._raw_added, text[a:b]).content])
            else:
                parts.append(self._pretokenize(self._normalizer.normalize(text[a:b])))
        return "".join(parts)

    def segmenter_input_aligned(self, text: str) -> tuple[str, list[int], dict[int, int]]:
        """Like segmenter_input, plus the original index each character aligns with (its
        start; the end is start + 1, except for added tokens, whose ends are in the dict)."""
        out: list[str] = []
        starts: list[int] = []
        ends_at: dict[int, int] = {}
        for is_added, a, b in self.split_added(text):
            if is_added:
                out.append(self._sentinel_of[_token_of(self._raw_added, text[a:b]).content])
                ends_at[len(starts)] = b
                starts.append(a)
                continue
            seg = text[a:b]
            fast = self._normalizer.normalize(seg)
            if len(fast) == len(seg) and self._normalizer.identity_aligned(seg, fast):
                chars, align = fast, range(len(seg))
            else:
                chars, align = self._normalizer.normalize_aligned(seg)
            # pre-tokenize with alignment, a word at a time
            norm = "".join(chars) if not isinstance(chars, str) else chars
            identity = isinstance(align, range)
            for is_norm_added, p, q in _split(self._norm_re, norm):
                if is_norm_added:
                    out.append(self._sentinel_of[_token_of(self._norm_added, norm[p:q]).content])
                    ends_at[len(starts)] = a + align[q - 1] + 1
                    starts.append(a + align[p])
                    continue
                for m in _NON_WS_RE.finditer(norm, p, q):
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

    def _fix_ids(self, ids: list[int]) -> list[int]:
        if ids and max(ids) >= self._n_vocab:
            n = self._n_vocab
            unk = self.unk_token_id
            base = self._sentinel_base
            table = self._sentinel_id_to_token
            ids = [i if i < n else (unk if i == n else table[i - base]) for i in ids]
        return ids

    def segment(self, strings: list[str], num_threads: int) -> list[list[int]]:
        """Ids of already prepared segmenter inputs (see segmenter_input), batched in C++."""
        if not strings:
            return []
        if self._joinable:
            if len(strings) == 1:  # no thread pool for one text
                return [self._fix_ids(self._sp.encode(strings[0], out_type=int))]
            raw = self._sp.encode(strings, out_type=int, num_threads=num_threads)
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
        raw = self._sp.encode(flat, out_type=int, num_threads=num_threads)
        out, k = [], 0
        for c in counts:
            ids: list[int] = []
            for r in raw[k : k + c]:
                ids.extend(r)
            out.append(self._fix_ids(ids))
            k += c
        return out

    def segment_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids of one text and the (start, end) character span in `text` of each."""
        joined, starts, ends_at = self.segmenter_input_aligned(text)
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

    def tokens(self, text: str) -> list[str]:
        """Token strings: pieces, the surface text of unknown runs, the matched added tokens."""
        joined = self.segmenter_input(text)
        raw = self._segment_raw_single(joined)
        if self._dummy_unk_id in raw:
            proto = self._sp.encode(joined, return_type="proto")
            surfaces = [p.surface for p in proto.pieces]
        else:
            surfaces = [None] * len(raw)
        # An added token's string is the text it matched (with lstrip/rstrip whitespace),
        # in the normalized text for normalized=True tokens.
        matched_text = []
        for is_added, a, b in self.split_added(text):
            if is_added:
                matched_text.append(text[a:b])
            elif self._norm_re is not None:
                norm = self._normalizer.normalize(text[a:b])
                matched_text += [norm[p:q] for is_norm_added, p, q in _split(self._norm_re, norm) if is_norm_added]
        matched = iter(matched_text)
        out = []
        for i, surf in zip(raw, surfaces):
            if i < self._n_vocab:
                out.append(self._pieces[i])
            elif i == self._dummy_unk_id:
                out.append(surf)
            else:
                out.append(next(matched))
        return out


def _token_regex(tokens: dict[str, AddedToken]) -> re.Pattern | None:
    """Leftmost-longest alternation of `tokens` (keyed by the text to match), each with the
    whitespace its lstrip/rstrip flags take."""
    if not tokens:
        return None
    alts = []
    for key in sorted(tokens, key=len, reverse=True):
        pat = re.escape(key)
        if tokens[key].lstrip:
            pat = _WS_CLASS + "*" + pat
        if tokens[key].rstrip:
            pat = pat + _WS_CLASS + "*"
        alts.append(f"(?:{pat})")
    return re.compile("|".join(alts))


def _split(rx: re.Pattern | None, text: str) -> list[tuple[bool, int, int]]:
    """(is_match, start, end) spans covering `text`; one unmatched span for no regex."""
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


def _token_of(tokens: dict[str, AddedToken], span: str) -> AddedToken:
    """The token a regex match `span` stands for (the match may hold lstrip/rstrip whitespace)."""
    tok = tokens.get(span) or tokens.get(span.strip(WS_CHARS))
    if tok is None:  # whitespace that is itself part of a token's content
        tok = next(t for key, t in tokens.items() if key in span)
    return tok
