"""The hard cases of the tokenizer tests, in one place so that scripts/tokenizer_reference.py
(which records and compares transformers' output on them) and the tests use the same strings.

HARD_STRINGS: scripts, Unicode corner cases, whitespace, special tokens in the text, numbers,
and random mixtures; SYMBOL_STRINGS: ALBERT's user-defined symbols ( ) " - . – £ € and their
neighbours (digits with commas, quotes, control characters, form feeds, Greek final sigma),
where transformers 5.24, 5.25, the google-research code and SentencePiece disagree (issue 25).
Every list is built deterministically (fixed seeds): never edit one without regenerating the
recorded references (tests/fixtures/tokenizer/transformers-*.json).
"""

from __future__ import annotations

import itertools
import random

BASE = [
    "",
    " ",
    "   ",
    "\t",
    "\n\n",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "  leading and trailing spaces  ",
    "runs   of    spaces\tand\ttabs\nand\r\nnewlines",
    "ALBERT: A Lite BERT for Self-supervised Learning of Language Representations",
    "``Quoted'' text and ``nested ``quotes'' here''",
    "it's a ''test'' with `single` and ``` triple",
    "1,000,000 people paid $1,234.56 (about €1.234,56) on 10, 20, and 30,",
    "3.14159 2,5 0,5 1, 2, 3, 10,000, 100,000.00",
    "Über straße Mädchen Größe schön fünf Brücke Äpfel Öl",
    "İstanbul ışık çiçek güzel öğrenci şehir Türkçe IİıI",
    "Αθήνα ελληνικά ΟΔΟΣ ΣΩΚΡΑΤΗΣ σοφός Σ",
    "Москва русский язык привет Ёлка ёж",
    "東京 日本語 中文 北京 学习 漢字",
    "こんにちは カタカナ ひらがな ｶﾀｶﾅ ｶﾞｷﾞ",
    "한국어 서울 안녕하세요 감사합니다 ᄒᆞᆫ",
    "العربية مرحبا شكرا القاهرة ﻻ",
    "עברית שלום",
    "हिन्दी भाषा क्षत्रिय",
    "ภาษาไทย สวัสดี",
    "café naïve résumé façade coöperate jalapeño",
    "cafe\u0301 nai\u0308ve re\u0301sume\u0301",
    "e\u0301\u0302\u0303 a\u0308\u0304 o\u0328\u0301",
    "\u0301 leading combining mark",
    "ﬁnance ﬂow ｆｕｌｌｗｉｄｔｈ ①②③ ½ ™ № Ⅻ ㎏ ㍻",
    "emoji 😀 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇩🇪🇫🇷 ❤️ ☺︎ #️⃣",
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom",
    "control\x00chars\x01\x02\x07\x1b\x7f\x85here",
    "info\x1cseparators\x1d\x1e\x1fbetween",
    "nbsp\xa0thin\u2009ideographic\u3000space\u2028line\u2029para",
    "soft\xadhyphen and\u00a0no-break",
    "▁already▁has▁underline ▁▁x",
    "[MASK] [CLS] [SEP] <pad> <unk>",
    "a[MASK]b [mask] [MASK][MASK]  [MASK]\t[MASK]",
    "<unk><unk> ＜unk＞ [[CLS]] [CLS",
    "(parenthesised) - dashes – and — \"quotes\" £5 €10",
    "hello.world...end. …ellipsis",
    "x" * 300,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "Mixed CASE WoRdS and CamelCaseIdentifiers snake_case_names",
    "email@example.com https://example.com/path?q=1&r=2#frag",
    "C++ C# F# .NET node.js 3D 4K 5G",
    "tab\tseparated\tvalues\t1\t2\t3",
    "\u0130\u0131 \u1e9e\u00df \u01c5\u01c6 \u03a3\u03c2\u03c3",
    "\U0001d400\U0001d401 \U0001d7ce math bold",
    "\u2126 \u212b \u2160 \u00b5 \u00c5",
    "\u1100\u1161\u11a8 \u1100\u1161",
    "\uac00\u11a8 \u1100\uac00",
    "\u0915\u094d\u0937 \u0d15\u0d4d",
    "a\ufe0f \u00a9\ufe0f \u00ae",
    "\r\n\r\n",
    "x\r\ny\n\rz",
    "\u0600\u0661 \u06dd\u0662",
    "\U000e0041\U000e0042 tags",
    "mixed 日本 and english 中文 text 123,456",
    "\x01abc",
    "\ufeffBOM at the start",
    "\x00\x01x y\x02",
    "\u200bzero width first",
    "\x01\u0301e\u0301 \x01",
]

POOLS = {
    "ascii": "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:!?'\"()-`",
    "latin": "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßœŁłŒĞğŞşİı ",
    "greek": "αβγδεζηθικλμνξοπρσςτυφχψωΑΒΓΔΣΩάέήίόύώ ",
    "cyrillic": "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВЁЖЯ ",
    "cjk": "東京日本語中文北京学习漢字の人大国こんにちはカタカナ ",
    "hangul": "한국어서울안녕하세요감사합니다각힣 ",
    "arabic": "العربيةمرحباشكراالقاهرة ",
    "marks": "\u0300\u0301\u0302\u0308\u0327\u0328\u0331\u20d7\u0903\u093e\u05b0\u064b",
    "space": " \t\n\r\x0b\x0c\xa0\u2003\u3000\u200b\u2028",
    "control": "\x00\x01\x08\x1b\x1c\x1f\x7f\x85\u200e\u200f\u2060\ufeff",
    "digits": "0123456789,,,..",
    "emoji": "😀👍🏽🏳️‍🌈🇩🇪❤️\u200d",
    "special": ".-()\"£€–",
    "compat": "ﬁﬂｆｕｌｌ①½™№Ⅻ㎏ｶﾞ",
}


def _random_strings(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    names = list(POOLS)
    out = []
    for _ in range(n):
        pools = rng.sample(names, rng.randrange(1, 4))
        alphabet = "".join(POOLS[p] for p in pools)
        out.append("".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 60))))
    return out


def _number_strings() -> list[str]:
    out = []
    for a in (1, 2, 10, 25, 100, 500, 1999, 123456):
        out += [f"{a},", f"{a},000", f" {a}, x", f"x{a},y", f"{a:,}.50,", f"({a},)", f"{a},,{a}"]
    return out


HARD_STRINGS = BASE + _number_strings() + _random_strings(360, seed=1)
LONG_TEXTS = [
    " ".join(["The tokenizer must truncate this long document correctly, 1,000 times."] * 120),
    "日本語のテキスト。" * 200,
    "word " * 700,
]
PAIRS = [(HARD_STRINGS[i], HARD_STRINGS[-1 - i]) for i in range(60)] + list(
    zip(_random_strings(50, seed=2), _random_strings(50, seed=3))
)



def _symbol_strings() -> list[str]:
    """Every symbol between, before and after words, digits and other symbols, plus sentences."""
    symbols = ["(", ")", '"', "-", ".", "–", "£", "€", ",", "'", "``", "''"]
    neighbours = ["", " ", "a", "Ab", "1", "12,", "3.5", "\x0c", "\t", "\x01", "ς", "Σ"]
    out = []
    for sym, left, right in itertools.product(symbols, neighbours, neighbours[:6]):
        out.append(f"{left}{sym}{right}")
    out += [
        "(paren)", "a(b)c", "$1,234.56", "x - y", 'say "hi".', "end.", "a.b.c", "3.14", "e.g. (i.e.)",
        "well-known state-of-the-art", "U.S.A. vs. U.K.", "(1,000) (2,500.75) [3,000,]", '"(-.)"',
        "£1,000,000.00 – €2,50", "1,2,3,4,5, 6,", "x,y, 10,x 10, x", "a\x0cb (c\x0c) \x0c.\x0c",
        "ΟΔΟΣ. σοφός (ΣΟΦΟΣ) «ΛΟΓΟΣ»", "Σ. ς. σ.", "ctrl\x00(x)\x01-\x02.\x7f\x85\x1c\x1f",
        "--- ... ((( ))) \"\"\" ...", "(a)(b)(c) a.(b).c", "x\u00ad-y z\u2010w", "“quotes” ‘single’ «guillemets»",
    ]
    rng = random.Random(25)
    pool = "ab Σςσ 01 9,, .-()\"'£€–\x0c\x01\t "
    out += ["".join(rng.choice(pool) for _ in range(rng.randrange(1, 30))) for _ in range(200)]
    seen: set[str] = set()
    return [s for s in out if not (s in seen or seen.add(s))]


SYMBOL_STRINGS = _symbol_strings()

assert len(HARD_STRINGS) >= 400 and len(PAIRS) >= 100 and len(SYMBOL_STRINGS) >= 800
