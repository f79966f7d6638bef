"""SentencePiece's precompiled character map (nmt_nfkc), applied as the Rust `spm_precompiled`
crate applies it, with the alignments of tokenizers' NormalizedString.

The map is a Darts double-array trie from UTF-8 keys to replacement strings. spm_precompiled
walks the text one grapheme cluster at a time: a cluster under 6 bytes is looked up whole, and
otherwise (or when the whole cluster is no key) each character is looked up on its own. The
changes are recorded as tokenizers' (character, change) transformations so that offsets can be
traced back to the original text.
"""

from __future__ import annotations

import struct

from .graphemes import grapheme_breaks


class CharsMap:
    """The trie of (key -> replacement) strings in a precompiled_charsmap blob."""

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

    def transformations(self, chars: list[str]) -> tuple[list[tuple[str, int]], int]:
        """(transformations, number of leading characters removed before any output)."""
        transformations: list[tuple[str, int]] = []
        lead = 0
        starts = grapheme_breaks(chars)

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
                norm = self.transform(g)
                if norm is not None:
                    replace(b - a, norm)
                    continue
            for k in range(a, b):
                # transform() of a single character finds only a key equal to it
                norm = self.transform(chars[k])
                if norm is not None:
                    replace(1, norm)
                else:
                    transformations.append((chars[k], 0))
        return transformations, lead


def apply_transformations(
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
