"""Batching and long texts, the parts of `Embedder.embed` that do not touch the model.

* `check_texts`: a str or a list of str, with a clear error for anything else;
* `plan_batches`: sort by length (longest first) and cut batches that pad little;
* `window_spans`: the overlapping windows a long text is cut into (`long_text="chunk"`), also
  SQuAD's doc_stride windows (finetune/squad.py) and the task pipelines' (tasks.py).
"""

from __future__ import annotations

from typing import Iterable, Sequence

from .errors import MinialbertError

LONG_TEXT_MODES = ("truncate", "chunk", "error")


class LongTextWarning(UserWarning):
    """Some texts were longer than max_length and were truncated."""


def check_texts(texts) -> tuple[list[str], bool]:
    if isinstance(texts, str):
        return [texts], True
    if isinstance(texts, (bytes, bytearray)) or not isinstance(texts, Iterable):
        raise TypeError(f"texts must be a str or a list of str, got {type(texts).__name__}")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts must be strings: item {i} is {type(t).__name__}")
    return texts, False


def window_spans(n: int, width: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) spans covering n tokens, at most `width` each, consecutive windows sharing
    `overlap` tokens (0 <= overlap < width). Long-text chunking and SQuAD's doc_stride windows
    (finetune/squad.py) both use it."""
    if n <= width:
        return [(0, n)]
    spans, start = [], 0
    while True:
        end = min(start + width, n)
        spans.append((start, end))
        if end == n:
            return spans
        start += width - overlap


# A batch closes early when the next (shorter) sequence is under SPLIT_RATIO of the batch's width,
# once the batch holds MIN_BATCH_TOKENS tokens: the long tail of a corpus then runs in small
# batches of similar lengths instead of padding 32 rows to its longest text.
SPLIT_RATIO = 0.8
MIN_BATCH_TOKENS = 1024


def plan_batches(lengths: Sequence[int], batch_size: int, *, split_ratio: float = SPLIT_RATIO,
                 min_batch_tokens: int = MIN_BATCH_TOKENS) -> list[list[int]]:
    """Indices grouped into batches, longest sequences first, each batch at most batch_size rows."""
    if batch_size < 1:
        raise MinialbertError(f"batch_size must be at least 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda k: -lengths[k])
    batches, start = [], 0
    while start < len(order):
        width, end = lengths[order[start]], start + 1
        while end < len(order) and end - start < batch_size and (
            lengths[order[end]] >= split_ratio * width or (end - start) * width < min_batch_tokens
        ):
            end += 1
        batches.append(order[start:end])
        start = end
    return batches
