"""Train the small ALBERT-layout SentencePiece model used by the tokenizer tests.

    python scripts/make_tokenizer_fixture.py

writes, under tests/fixtures/tokenizer/:

    spm/spiece.model          a unigram model in ALBERT's id layout: <pad>=0, <unk>=1,
                              control symbols [CLS] [SEP] [MASK] = 2, 3, 4, bos/eos disabled,
                              ALBERT's user-defined symbols ( ) " - . – £ €, nmt_nfkc
                              normalization, plus a few injected pieces that end in digit+comma
                              ("▁1," "0," ...) so the digit-comma rules are exercised.
    hub/spiece.model          the same model, and
    hub/tokenizer.json        what transformers' AlbertConverter makes of it (the real
                              albert-base-v2 repository ships such a file; transformers then
                              reads piece scores from it, digit-comma pieces lowered by 100),
                              with the added tokens of the real file: the five special tokens,
                              [MASK] with lstrip.
    hub_converted/            the same, with the converter's own added-token list (which also
                              holds the user-defined symbols, in 5.24 and 5.25 alike; only
                              AlbertTokenizer's loading of a bare spiece.model changed in 5.25).
                              After regenerating any of these, regenerate the recorded 5.24
                              output too (scripts/tokenizer_reference.py).

The corpus is synthetic (no downloads): words from a dozen scripts, numbers with commas and
decimals, punctuation. Training takes a few seconds; the outputs are committed, so the tests
never train. Needs sentencepiece, protobuf and (for hub/) transformers.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

import sentencepiece as spm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from minialbert.tokenizer.symbols import SPECIAL_TOKENS, trainer_options  # noqa: E402

ROOT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "tokenizer"

WORDS = """
the of and to in is was that for it with as his on be at by had are but from or have an they which
one you were her all she there would their we him been has when who will more no if out so said what
up its about into than them can only other new some could time these two may then do first any my now
such like our over man me even most made after also did many before must through back years where
much your way well down should because each just those people how too little state good very make
world still own see men work long get here between both life being under never day same another know
while last might us great old year off come since against go came right used take three tokenizer
albert sentencepiece unigram language model embedding transformer attention layer hidden vector
Über straße Mädchen Größe schön fünf Brücke Äpfel Öl übermäßig Fußgängerübergang Käse müde Bäume
İstanbul ışık çiçek güzel öğrenci şehir ağaç Türkçe kırmızı İzmir
Αθήνα ελληνικά γλώσσα καλημέρα ΟΔΟΣ Σωκράτης φιλοσοφία λόγος
Москва русский язык привет спасибо Ёлка ёж большой
東京 日本語 中文 北京 学习 漢字 こんにちは カタカナ ひらがな
한국어 서울 안녕하세요 감사합니다 대한민국
العربية مرحبا شكرا القاهرة
café naïve résumé façade coöperate jalapeño São Paulo Zürich Ångström Øresund Łódź Dvořák
ﬁnance ﬂow ｆｕｌｌｗｉｄｔｈ ①②③ ½ ™ № Ⅻ
""".split()

SYLLABLES = """ka to ri mo ne sa lu pe gi da ven tor ash ing tion er est ly ment ous ful con pre
un re in ex sch ber ung lich keit ска ов ни ра ко λο γι κα ση 的 是 了 한 국 어 ال ين ون""".split()

PUNCT = list(".,;:!?()-\"'") + ["–", "£", "€", "``", "''", "...", "—"]


def number(rng: random.Random) -> str:
    kind = rng.randrange(5)
    if kind == 0:
        return f"{rng.choice([1, 2, 10, 25, 100, 500])},{rng.choice([0, 250, 500])}00"
    if kind == 1:
        return f"{rng.randrange(10)}.{rng.randrange(10)}"
    if kind == 2:
        return f"{rng.randrange(0, 10)},"
    if kind == 3:
        return f"{rng.choice([1999, 2000, 2024])}"
    return f"£{rng.randrange(1, 10)}.{rng.choice([0, 50, 99]):02d}"


def corpus(n_lines: int = 20_000, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        toks = []
        for _ in range(rng.randrange(3, 25)):
            r = rng.random()
            if r < 0.3:
                # pseudo-words give the trainer sub-word structure to learn
                w = "".join(rng.choice(SYLLABLES) for _ in range(rng.randrange(1, 5)))
                toks.append(w)
            elif r < 0.88:
                w = rng.choice(WORDS)
                toks.append(w.capitalize() if rng.random() < 0.05 else w)
            elif r < 0.92:
                toks.append(number(rng))
            else:
                toks.append(rng.choice(PUNCT))
        lines.append(" ".join(toks))
    return lines


# Pieces that end in a digit followed by a comma, injected with scores good enough to be chosen.
DIGIT_COMMA_PIECES = ["▁1,", "▁2,", "▁10,", "0,", "00,", "000,", "5,", "9,"]


def train(out: Path) -> None:
    from sentencepiece import sentencepiece_model_pb2 as pb

    with tempfile.TemporaryDirectory() as tmp:
        txt = Path(tmp) / "corpus.txt"
        txt.write_text("\n".join(corpus()), encoding="utf-8")
        prefix = str(Path(tmp) / "spiece")
        spm.SentencePieceTrainer.train(
            input=str(txt),
            model_prefix=prefix,
            model_type="unigram",
            vocab_size=1500,
            hard_vocab_limit=False,
            character_coverage=0.9995,
            **trainer_options(),  # ALBERT's id layout and special pieces
            normalization_rule_name="nmt_nfkc",
            num_threads=2,
            seed_sentencepiece_size=200_000,
            minloglevel=2,
        )
        proto = pb.ModelProto()
        proto.ParseFromString(Path(prefix + ".model").read_bytes())

    existing = {p.piece for p in proto.pieces}
    scores = sorted(p.score for p in proto.pieces if p.type == 1)
    good = scores[len(scores) // 2]  # a median score: often but not always chosen
    for piece in DIGIT_COMMA_PIECES:
        if piece not in existing:
            proto.pieces.add(piece=piece, score=good, type=1)
    out.mkdir(parents=True, exist_ok=True)
    (out / "spiece.model").write_bytes(proto.SerializeToString())


def make_hub(spm_dir: Path, out: Path, real_like: bool) -> None:
    from types import SimpleNamespace

    from transformers.convert_slow_tokenizer import AlbertConverter

    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(spm_dir / "spiece.model", out / "spiece.model")
    sp = spm.SentencePieceProcessor(model_file=str(out / "spiece.model"))
    fake_slow = SimpleNamespace(
        vocab_file=str(out / "spiece.model"),
        keep_accents=False,
        do_lower_case=True,
        handle_byte_fallback=False,
        convert_tokens_to_ids=sp.piece_to_id,
    )
    tok = AlbertConverter(fake_slow).converted()
    tok.save(str(out / "tokenizer.json"))
    if real_like:
        # The albert-base-v2 repository's tokenizer.json lists only the five special tokens
        # as added tokens, [MASK] with lstrip (it swallows the whitespace before it).
        data = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
        data["added_tokens"] = [
            {
                "id": sp.piece_to_id(t),
                "content": t,
                "single_word": False,
                "lstrip": t == "[MASK]",
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
            for t in SPECIAL_TOKENS
        ]
        (out / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False).parse_args()
    if hasattr(spm, "set_random_generator_seed"):
        spm.set_random_generator_seed(0)
    train(ROOT / "spm")
    make_hub(ROOT / "spm", ROOT / "hub", real_like=True)
    make_hub(ROOT / "spm", ROOT / "hub_converted", real_like=False)
    sp = spm.SentencePieceProcessor(model_file=str(ROOT / "spm" / "spiece.model"))
    print("vocab", sp.get_piece_size(), [sp.id_to_piece(i) for i in range(12)])
    print(sp.encode("Hello, world! 1,000,000 and 10, 20, ﬁnance ①", out_type=str))
