"""ALBERT's n-gram masking for the masked-LM objective (Lan et al. 2019, section 4.1).

BERT masks single pieces. ALBERT masks *spans of whole words*: it picks n-grams of n = 1, 2 or 3
words, with probability

    p(n) = (1/n) / sum_{k=1}^{3} (1/k)            ->  6/11, 3/11, 2/11

until about 15% of the tokens are chosen. A "word" is a run of SentencePiece pieces whose first
piece starts a word (begins with "▁", or is a punctuation piece); a word is always masked as a
whole. Each chosen token is then, independently,

    80%: replaced by [MASK],   10%: replaced by a random token,   10%: left unchanged,

and the model must predict the original token at every chosen position (label = original id,
-100 elsewhere, the ignore index of the loss).

This follows create_masked_lm_predictions() of google-research/albert, with the randomness
coming from a numpy Generator so that a given (seed, epoch, example) always masks the same way.
"""

from __future__ import annotations

import numpy as np

IGNORE_INDEX = -100  # label of positions the MLM loss ignores

# Pieces that start a word even without "▁" (google-research/albert, _is_start_piece).
_PUNCTUATION = set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~')


def is_start_piece(piece: str) -> bool:
    return piece.startswith(("▁", "<")) or piece in _PUNCTUATION or piece in "–£€"


def word_start_table(pieces: list[str]) -> np.ndarray:
    """Boolean array over the vocabulary: does this piece begin a new word?"""
    return np.array([is_start_piece(p) for p in pieces], dtype=bool)


def ngram_probabilities(max_ngram: int) -> np.ndarray:
    p = 1.0 / np.arange(1, max_ngram + 1)
    return p / p.sum()


def word_spans(ids: np.ndarray, maskable: np.ndarray, starts: np.ndarray) -> list[list[int]]:
    """Group the maskable positions into words: [[i, i+1], [i+2], ...] (lists of token positions)."""
    words: list[list[int]] = []
    for i in np.flatnonzero(maskable):
        i = int(i)
        if words and not starts[ids[i]] and words[-1][-1] == i - 1:
            words[-1].append(i)  # a continuation piece joins the word before it
        else:
            words.append([i])
    return words


def mask_tokens(
    ids: np.ndarray,
    maskable: np.ndarray,
    starts: np.ndarray,
    rng: np.random.Generator,
    *,
    mask_id: int,
    vocab_size: int,
    random_low: int = 5,
    masked_lm_prob: float = 0.15,
    max_predictions: int = 20,
    max_ngram: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (input_ids, labels) for one sequence.

    ids: (seq,) token ids including [CLS]/[SEP]; maskable: (seq,) bool, False for [CLS], [SEP]
    and padding; starts: word_start_table of the vocabulary. Random replacements are drawn
    from [random_low, vocab_size) so they are never a special token.
    """
    ids = np.asarray(ids, dtype=np.int64)
    labels = np.full_like(ids, IGNORE_INDEX)
    inputs = ids.copy()
    words = word_spans(ids, maskable, starts)
    if not words:
        return inputs, labels
    # ALBERT: 15% of all tokens of the sequence (special tokens included), at least one.
    num_to_predict = min(max_predictions, max(1, int(round(len(ids) * masked_lm_prob))))
    pvals = ngram_probabilities(max_ngram)

    # For every start word, the candidate spans of 1..max_ngram words beginning there.
    candidates = [[words[s:s + n] for n in range(1, max_ngram + 1) if s + n <= len(words)]
                  for s in range(len(words))]
    order = rng.permutation(len(candidates))
    covered: set[int] = set()
    chosen: list[int] = []
    for s in order:
        if len(chosen) >= num_to_predict:
            break
        spans = candidates[s]
        if any(i in covered for i in spans[0][0]):
            continue
        p = pvals[: len(spans)] / pvals[: len(spans)].sum()
        n = int(rng.choice(len(spans), p=p)) + 1  # number of words in this span
        # Shrink the span when it would overshoot the budget (as the original does).
        while n > 1 and len(chosen) + sum(len(w) for w in spans[n - 1]) > num_to_predict:
            n -= 1
        positions = [i for w in spans[n - 1] for i in w]
        if len(chosen) + len(positions) > num_to_predict:
            continue
        if any(i in covered for i in positions):
            continue
        covered.update(positions)
        chosen.extend(positions)

    for i in chosen:
        labels[i] = ids[i]
        r = rng.random()
        if r < 0.8:
            inputs[i] = mask_id  # 80%: [MASK]
        elif r < 0.9:
            inputs[i] = int(rng.integers(random_low, vocab_size))  # 10%: a random token
        # else 10%: unchanged
    return inputs, labels
