"""The google-research ALBERT tokenizer (`compat="original"`), for models trained with it.

This is `tokenization.py` of google-research/albert (FullTokenizer with an spm model):
`preprocess_text` (whitespace collapsed with str.split, `` and '' to ", NFKD and removal of
combining marks by canonical combining class, lower-casing with Python's str.lower), then
sentencepiece with the model's own normalization on the whole string, and `encode_pieces`
re-splitting every piece that ends in a digit followed by a comma. Special tokens written in
the text are plain text there.
"""

from __future__ import annotations


import sentencepiece as spm

from .normalize import normalize_text
from .segment import SPIECE_UNDERLINE


def original_ids(sp: spm.SentencePieceProcessor, text: str, *, do_lower_case: bool, keep_accents: bool) -> list[int]:
    """Ids of `text` (no special tokens) as google-research ALBERT computes them; `sp` is the
    model file's own processor, its normalization included."""
    s = normalize_text(text, do_lower_case=do_lower_case, keep_accents=keep_accents, compat="original")
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
