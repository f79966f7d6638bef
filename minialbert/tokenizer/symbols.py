"""ALBERT's special pieces: their names, and the SentencePiece trainer options that give a new
model the same id layout as the official spiece.model (used by pre-training and test fixtures).

Layout of albert-base-v2's spiece.model: <pad>=0, <unk>=1, control pieces [CLS] [SEP] [MASK]
= 2, 3, 4, no BOS/EOS, then the user-defined pieces ( ) " - . – £ € and the learned ones.
"""

from __future__ import annotations

PAD_TOKEN, UNK_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN = "<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD_TOKEN, UNK_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN)  # ids 0..4
# Lists, because sentencepiece's trainer accepts lists (not tuples) for these options; never
# mutate them.
CONTROL_SYMBOLS = [CLS_TOKEN, SEP_TOKEN, MASK_TOKEN]
USER_DEFINED_SYMBOLS = ["(", ")", '"', "-", ".", "–", "£", "€"]

# The tokenization algorithms AlbertTokenizer(compat=...) offers (docs/guides/tokenizer.md):
# "transformers"       what transformers >= 5.25 does (the pinned reference, 5.25.0): a
#                      spiece.model's user-defined pieces are ordinary pieces of the Unigram
#                      model, emitted whole as SentencePiece does;
# "transformers<5.25"  what transformers 5.x before 5.25 did: with spiece.model alone, the
#                      user-defined pieces are added tokens that cut the text, and the word
#                      after one restarts with "▁" ("a(b)" is "▁a ( ▁b )", not "▁a ( b )");
# "original"           the google-research ALBERT tokenizer (original.py).
COMPAT_MODES = ("transformers", "transformers<5.25", "original")


def trainer_options() -> dict:
    """Keyword arguments for `sentencepiece.SentencePieceTrainer.train` that reproduce
    ALBERT's id layout (add the corpus, vocab size and model type)."""
    return dict(
        pad_id=0, pad_piece=PAD_TOKEN, unk_id=1, unk_piece=UNK_TOKEN, bos_id=-1, eos_id=-1,
        control_symbols=list(CONTROL_SYMBOLS), user_defined_symbols=list(USER_DEFINED_SYMBOLS),
    )
