"""Normalization of the text between added tokens, as tokenizers' ALBERT normalizer does it.

In order: "``" and "''" become '"'; NFKD and removal of combining marks (unless keep_accents);
per-character lower-casing (when do_lower_case); the model's precompiled character map.

`Normalizer.normalize` is the fast path, on whole strings (str.translate, unicodedata,
regular expressions); the character map's slow per-grapheme work is only done on the "hot"
stretches around characters it can change. `Normalizer.normalize_aligned` also returns, for
every output character, the index of the input character it came from (offsets).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Iterable

from .charsmap import CharsMap, apply_transformations
from .graphemes import may_join_cluster

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
    category = unicodedata.category
    # No combining marks live outside these blocks (planes 3-13 and 15-16 have none).
    marks = [
        cp
        for cp in (*range(0x300, 0xD800), *range(0xE000, 0x30000), *range(0xE0000, 0xE0200))
        if (category(chr(cp))[0] == "M" and cp not in keep) or cp in _RUST_STRIPS_LETTERS
    ]
    return re.compile(_char_class(marks))


def _char_class(code_points: Iterable[int]) -> str:
    """A regex character class of `code_points`, runs of consecutive ones written as ranges
    (a class of thousands of single characters takes the re module a long time to compile)."""
    ranges: list[list[int]] = []
    for cp in sorted(code_points):
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    body = "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges
    )
    return f"[{body}]"


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


class Normalizer:
    """One tokenizer's normalization settings, with caches of what it has already seen."""

    def __init__(self, *, do_lower_case: bool, keep_accents: bool, charsmap: bytes | None):
        self.do_lower_case = do_lower_case
        self.keep_accents = keep_accents
        self._charsmap = CharsMap(charsmap) if charsmap else None
        # Characters classified for the character map (see _precompiled_is_identity), the
        # regex that finds stretches around unsafe ones, and memos of earlier results.
        self._safe_chars: set[str] = set()
        self._unsafe_chars: set[str] = set()
        self._hot_re = re.compile("(?!)")
        self._span_cache: dict[str, str] = {}
        self._char_memo: dict[str, str] = {}

    def normalize(self, seg: str) -> str:
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
            if may_join_cluster(c) or self._charsmap.transform(c) is not None:  # type: ignore[union-attr]
                unsafe.add(c)
                grew = True
            else:
                safe.add(c)
        if grew:
            cls = _char_class(map(ord, unsafe))
            # a safe base character, a run of rare ones (with single safe characters between),
            # and one safe character after (which may still join the cluster: L + LV, ZWJ + emoji)
            self._hot_re = re.compile(f"(?:(?!{cls}).)?{cls}+(?:(?!{cls}).{cls}+)*(?:(?!{cls}).)?", re.DOTALL)
        return False

    def _precompiled(self, chars: list[str], align: list[int]) -> tuple[list[str], list[int]]:
        """spm_precompiled's normalize over grapheme clusters, with tokenizers' alignments."""
        transformations, _ = self._charsmap.transformations(chars)  # type: ignore[union-attr]
        return apply_transformations(align, transformations)

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
            trans, lead = self._charsmap.transformations(chars[a:b])  # type: ignore[union-attr]
            if out_c:
                # the previous character absorbs a leading removal: consumption stays in step
                c2, a2 = apply_transformations(align, trans, cursor=a - deficit + lead)
            else:
                c2, a2 = apply_transformations(align, trans, cursor=a - deficit)
                deficit += lead
            out_c.extend(c2)
            out_a.extend(a2)
            pos = b
        out_c.extend(chars[pos:])
        out_a.extend(align[pos - deficit : len(chars) - deficit])
        return out_c, out_a

    def normalize_aligned(self, seg: str) -> tuple[list[str], list[int]]:
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

    def identity_aligned(self, seg: str, norm: str) -> bool:
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
