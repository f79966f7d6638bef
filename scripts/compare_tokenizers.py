"""The evidence for the tokenizer's default mode (issue 25): how often transformers 5.24, 5.25,
minialbert's modes and the google-research algorithm agree with plain SentencePiece.

    python scripts/compare_tokenizers.py [--examples N]

"SentencePiece" here is `spiece.model` run by the `sentencepiece` package on the text as
ALBERT's pre-training prepared it (google-research/albert's preprocess_text: whitespace
collapsed, `` and '' to ", accents stripped unless keep_accents, lower-cased): what the model
saw in training, without the digit+comma re-split that the original tokenizer adds on top.
transformers 5.24.0 is the recorded output in tests/fixtures/tokenizer/transformers-5.24.0.json.gz
(scripts/tokenizer_reference.py); 5.25 is the installed transformers, run live. Ids are compared
without [CLS]/[SEP], on the spm fixture model (spiece.model alone), for ALBERT's default settings
and for do_lower_case=False, keep_accents=True. Prints Markdown tables (docs/guides/tokenizer.md),
then the texts where compat="original" and transformers 5.25 still differ, by cause.
"""

from __future__ import annotations

import argparse
import sys
import unicodedata
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import sentencepiece as spm  # noqa: E402
import tokenizer_reference as reference  # noqa: E402

from minialbert.tokenizer import AlbertTokenizer  # noqa: E402

SETTINGS = [("spm", {}), ("spm", {"do_lower_case": False, "keep_accents": True})]


def preprocess_text(text: str, lower: bool, keep_accents: bool) -> str:
    """google-research/albert tokenization.py preprocess_text (remove_space=True)."""
    out = " ".join(text.strip().split())
    out = out.replace("``", '"').replace("''", '"')
    if not keep_accents:
        out = unicodedata.normalize("NFKD", out)
        out = "".join(c for c in out if not unicodedata.combining(c))
    return out.lower() if lower else out


CAUSES = [  # (name, test on (text, settings)), the first that applies names a difference
    ("digit+comma piece re-split (original only; plain SentencePiece agrees with 5.25)", None),
    ("[MASK] [CLS] <unk> ... written in the text (plain text in the original)",
     lambda t, kw: any(x in t for x in ("[MASK]", "[CLS]", "[SEP]", "<pad>", "<unk>"))),
    ("\\x1c-\\x1f: whitespace to Python's split, deleted by nmt_nfkc in transformers",
     lambda t, kw: any(c in t for c in "\x1c\x1d\x1e\x1f")),
    ("\\x0b (vertical tab): whitespace to Python's split, deleted by nmt_nfkc in transformers",
     lambda t, kw: "\x0b" in t),
    ("final sigma: str.lower() gives ς, per-character lower-casing σ",
     lambda t, kw: "Σ" in t and kw.get("do_lower_case", True)),
    ("Hangul: NFKD jamo recomposed by sentencepiece, not by transformers' per-grapheme map",
     lambda t, kw: not kw.get("keep_accents", False) and any("\uac00" <= c <= "\ud7a3" for c in t)),
    ("combining marks: removed by combining class (original) vs category Mn/Mc/Me",
     lambda t, kw: any(unicodedata.category(c).startswith("M") for c in unicodedata.normalize("NFKD", t))),
    ("other", lambda t, kw: True),
]


def cause(text: str, kw: dict, raw_equals_new: bool) -> str:
    if raw_equals_new:
        return CAUSES[0][0]
    return next(name for name, test in CAUSES[1:] if test(text, kw))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--examples", type=int, default=2, help="original-vs-5.25 differences to print per cause")
    args = p.parse_args(argv)
    import transformers

    warnings.simplefilter("ignore")
    rec = reference.load(reference.FIXTURES / "transformers-5.24.0.json.gz")
    cases = reference.cases()
    sp = spm.SentencePieceProcessor(model_file=str(reference.FIXTURES / "spm" / "spiece.model"))
    diffs = []
    print(f"transformers installed: {transformers.__version__}; recorded: {rec['transformers']}; "
          f"sentencepiece {spm.__version__}\n")
    for folder, kw in SETTINGS:
        name = reference.config_name(folder, kw)
        lower, keep = kw.get("do_lower_case", True), kw.get("keep_accents", False)
        hf = transformers.AlbertTokenizer.from_pretrained(str(reference.FIXTURES / folder), **kw)
        mine = {c: AlbertTokenizer.from_pretrained(reference.FIXTURES / folder, compat=c, **kw)
                for c in ("transformers", "transformers<5.25", "original")}
        columns = ["transformers 5.24.0", f"transformers {transformers.__version__}", 'compat="transformers"',
                   'compat="transformers<5.25"', 'compat="original"']
        print(f"settings: {name}\n")
        print("| set | texts | " + " | ".join(columns) + " |")
        print("|---|---:|" + "---:|" * len(columns))
        totals = [0] * len(columns)
        n_all = 0
        for set_name in ("hard", "symbols"):
            texts = cases[set_name]
            raw = [sp.encode(preprocess_text(t, lower, keep)) for t in texts]
            got = [
                [ids[1:-1] for ids in rec["configs"][name][set_name]["input_ids"]],
                hf(texts, add_special_tokens=False)["input_ids"],
                *[m.encode_batch_ids(texts) for m in mine.values()],
            ]
            agree = [sum(a == b for a, b in zip(g, raw)) for g in got]
            totals = [t + a for t, a in zip(totals, agree)]
            n_all += len(texts)
            print(f"| {set_name} | {len(texts)} | " + " | ".join(f"{a} ({100 * a / len(texts):.0f}%)" for a in agree) + " |")
            diffs += [(name, t, o, n, cause(t, kw, r == n)) for t, o, n, r in zip(texts, got[4], got[1], raw) if o != n]
        print(f"| all | {n_all} | " + " | ".join(f"{a} ({100 * a / n_all:.1f}%)" for a in totals) + " |\n")
    print(f"compat='original' vs transformers {transformers.__version__}: texts that differ, by cause "
          "(the first that applies)\n")
    names = [reference.config_name(f, kw) for f, kw in SETTINGS]
    print("| cause | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for c, _ in CAUSES:
        print(f"| {c} | " + " | ".join(str(sum(d[4] == c and d[0] == n for d in diffs)) for n in names) + " |")
    print("| total | " + " | ".join(str(sum(d[0] == n for d in diffs)) for n in names) + " |\n")
    for c, _ in CAUSES:
        for name, text, o, n, _c in [d for d in diffs if d[4] == c][: args.examples]:
            print(f"  [{c[:30]}] {name} {text!r}: original {' '.join(sp.id_to_piece(o))} | "
                  f"transformers {' '.join(sp.id_to_piece(n))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
