"""Extended grapheme clusters (Unicode UAX #29), approximated from `unicodedata`.

The Rust `spm_precompiled` crate applies the character map one grapheme cluster at a time, so
the cluster boundaries decide which keys can match. Python's `unicodedata` has no
Grapheme_Cluster_Break property: `gcb` derives it from the general category plus the short
lists of exceptions below. It is only consulted around the rare characters the character map
touches, never on plain text.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Sequence

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
def gcb(c: str) -> int:
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


def grapheme_breaks(chars: Sequence[str]) -> list[int]:
    """Start indexes of the extended grapheme clusters of `chars`, plus len(chars)."""
    n = len(chars)
    if n == 0:
        return [0]
    starts = [0]
    classes = [gcb(c) for c in chars]
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


def may_join_cluster(c: str) -> bool:
    """True when `c` can be part of a multi-character cluster with its neighbours (so a key of
    the character map that spans several characters could match around it)."""
    g = gcb(c)
    return g != _OTHER and g != _LV and g != _LVT and g != _PICT
