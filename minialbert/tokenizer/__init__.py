"""ALBERT's tokenizer on the `sentencepiece` package alone, id-for-id equal to transformers.

transformers (v5) tokenizes ALBERT text with the Rust `tokenizers` library. Its pipeline, read
from transformers/models/albert/tokenization_albert.py and tokenization_utils_tokenizers.py, is:

1. Added tokens are cut out of the raw text first (leftmost-longest match): the special
   tokens (<pad> <unk> [CLS] [SEP] [MASK]) and, when the folder has only spiece.model, the
   model's control pieces. (Before transformers 5.25 also its user-defined pieces ( ) " - .
   – £ €: compat="transformers<5.25"; 5.25 leaves them to the Unigram model, which emits them
   whole as SentencePiece does.) With a tokenizer.json
   the added tokens are the ones listed in that file (those with normalized=true are looked
   for after step 2). Each stretch of text between them is processed on its own.
2. Normalization of each stretch, in this order: "``" -> '"', "''" -> '"'; NFKD and removal of
   all combining marks (categories Mn, Mc, Me) unless keep_accents; per-character lower-casing
   (no Greek final-sigma rule) when do_lower_case; the model's precompiled SentencePiece
   character map (nmt_nfkc), applied per grapheme cluster the way the Rust `spm_precompiled`
   crate does it.
3. Pre-tokenization: split on Unicode White_Space, prefix every word with "▁" (unless it already
   starts with one) and split before every "▁".
4. Unigram (Viterbi) segmentation of each pre-token with the piece scores of spiece.model, or of
   tokenizer.json when present (its digit+comma pieces are 100 lower, from AlbertConverter).
   transformers v5 saves tokenizer.json alone: that file is enough here too.
5. [CLS] A [SEP] (B [SEP]), token type ids 0 / 1, longest-first truncation, right padding.

Here steps 1-3 are done in Python on whole strings (str.translate, unicodedata.normalize,
regular expressions), with a slower per-character path only for the rare characters that the
character map or grapheme rules touch; step 4 runs in sentencepiece's C++ Viterbi, batched,
on a copy of the model whose own normalization is switched off (pieces all made "normal" so that
their scores decide, exactly as in the Rust Unigram model). Offsets are tracked through every
step with the same alignment rules as the Rust NormalizedString, so offset_mapping matches too.

`compat="transformers<5.25"` keeps the behaviour of transformers 5.x before 5.25 and
`compat="original"` reproduces the google-research ALBERT tokenizer instead (see
docs/guides/tokenizer.md).

The modules, in pipeline order:

    spm_model.py       spiece.model read and written without protobuf
    tokenizer_json.py  ALBERT's tokenizer.json read (and anything else refused) without tokenizers
    loading.py         the files of a folder: vocabulary, tokenizer_config.json, saving
    symbols.py         ALBERT's special pieces and sentencepiece trainer options
    segment.py         added tokens, pre-tokenization, the C++ Viterbi, offsets  (steps 1, 3, 4)
    normalize.py       quotes, accents, lower-casing, and the mark table         (step 2)
    charsmap.py        the precompiled character map, per grapheme cluster      (step 2)
    graphemes.py       grapheme cluster boundaries (UAX #29) from unicodedata
    encoding.py        truncation, padding, BatchEncoding                       (step 5)
    original.py        compat="original"
    albert.py          AlbertTokenizer: the public API
"""

from .albert import AlbertTokenizer
from .encoding import BatchEncoding
from .normalize import normalize_text

__all__ = ["AlbertTokenizer", "BatchEncoding", "normalize_text"]
