"""Labelled data for fine-tuning: read it, check it, turn it into model inputs.

Sequence tasks read a table (CSV, TSV or JSON lines, see files.read_table) with a text column,
an optional second text (a pair: premise/hypothesis, question/sentence) and a label column:
  classify    the label is a class name (any string; "0"/"1" in GLUE files)
  regression  the label is a number (STS-B's similarity score)
  multilabel  the label is a list of class names (JSON list, or a string split on --label-separator)
Token tagging reads JSON lines with a list of words and a list of tags of the same length
(CoNLL-style BIO tags). The tag of a word goes on its first sub-token; the other sub-tokens,
[CLS], [SEP] and padding get -100, which the loss ignores.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from ..files import read_table
from . import FinetuneError

SEQUENCE_TASKS = ("classify", "regression", "multilabel")
TASKS = (*SEQUENCE_TASKS, "tag", "qa")
DEFAULT_COLUMNS = {  # task -> (text column, label column)
    "classify": ("text", "label"), "regression": ("text", "label"), "multilabel": ("text", "label"),
    "tag": ("tokens", "tags"),
}


@dataclass
class TextExample:
    text: str
    text_pair: str | None
    label: Any  # class name (classify), float (regression), list of class names (multilabel)
    line: int


@dataclass
class TaggedSentence:
    words: list[str]
    tags: list[str]
    line: int


@dataclass
class Feature:
    """One model input. `labels` is an int, a float, a list of floats (multilabel) or, for tagging,
    one id per token (-100 = ignored). `word_of_token` (tagging): the word a first sub-token starts."""

    input_ids: list[int]
    token_type_ids: list[int]
    labels: Any = None
    example_index: int = 0
    first_token_of_word: list[int | None] = field(default_factory=list)


def _column(columns: list[str], name: str | None, what: str, path, flag: str, required: bool = True) -> str | None:
    if name is None:
        return None
    if name not in columns:
        if not required:
            return None
        raise FinetuneError(f"{path}: no {what} column {name!r} (its columns: {', '.join(columns) or 'none'}); "
                            f"choose one with {flag}")
    return name


def _string(value: Any, path, line: int, column: str) -> str:
    if not isinstance(value, str):
        raise FinetuneError(f"{path}: line {line}: {column!r} is {type(value).__name__}, not a string")
    return value


# ----------------------------------------------------------------------- sequence tasks
def read_examples(path, task: str, *, text_column: str | None = None, pair_column: str | None = None,
                  label_column: str | None = None, label_separator: str = ",",
                  require_labels: bool = True) -> list[TextExample]:
    """Rows of a CSV/TSV/JSONL file as TextExamples. `pair_column` None = 'text_pair' if present."""
    default_text, default_label = DEFAULT_COLUMNS[task]
    rows, columns = read_table(path)
    if not rows:
        raise FinetuneError(f"{path}: no examples (the file is empty)")
    text_col = _column(columns, text_column or default_text, "text", path, "--text-column")
    if pair_column is None:
        pair_col = "text_pair" if "text_pair" in columns else None
    else:
        pair_col = _column(columns, pair_column, "text-pair", path, "--pair-column")
    # Without require_labels (inputs to classify), labels are not read at all.
    label_col = _column(columns, label_column or default_label, "label", path, "--label-column") if require_labels else None
    examples = []
    for line, row in rows:
        for col in (text_col, pair_col, label_col):
            if col is not None and col not in row:
                raise FinetuneError(f"{path}: line {line} has no {col!r}")
        text = _string(row[text_col], path, line, text_col)
        pair = _string(row[pair_col], path, line, pair_col) if pair_col else None
        label = _parse_label(row[label_col], task, path, line, label_separator) if label_col else None
        examples.append(TextExample(text, pair, label, line))
    return examples


def _parse_label(value: Any, task: str, path, line: int, separator: str) -> Any:
    if task == "regression":
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        except (TypeError, ValueError):
            raise FinetuneError(f"{path}: line {line}: label {value!r} is not a number (task regression)") from None
    if task == "multilabel":
        if isinstance(value, list):
            return [_label_name(v, path, line) for v in value]
        if isinstance(value, str):
            return [v.strip() for v in value.split(separator) if v.strip()]
        raise FinetuneError(f"{path}: line {line}: multilabel labels must be a list or a "
                            f"{separator!r}-separated string, got {value!r}")
    return _label_name(value, path, line)


def _label_name(value: Any, path, line: int) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise FinetuneError(f"{path}: line {line}: label {value!r} is not a class name")
    return str(value)


def collect_labels(names: Sequence[str]) -> list[str]:
    """The label set in id order: numeric names ("0", "1", "2") by value, others alphabetically."""
    unique = set(names)
    try:
        return sorted(unique, key=lambda n: (float(n), n))
    except ValueError:
        return sorted(unique)


def check_labels(names: Sequence[tuple[str, int]], label2id: dict[str, int], path) -> None:
    """Each (name, line) must be a known label: a one-line error names the first that is not."""
    for name, line in names:
        if name not in label2id:
            known = ", ".join(sorted(label2id, key=lambda n: label2id[n]))
            raise FinetuneError(f"{path}: line {line}: label {name!r} is not in the model's label2id ({known}); "
                                "fix the data, or give the full label set with --labels")


def encode_examples(examples: Sequence[TextExample], tokenizer, task: str, label2id: dict[str, int] | None,
                    max_length: int) -> list[Feature]:
    texts = [e.text for e in examples]
    pairs = [e.text_pair or "" for e in examples] if any(e.text_pair is not None for e in examples) else None
    enc = tokenizer(texts, pairs, truncation=True, max_length=max_length)
    features = []
    for i, e in enumerate(examples):
        if e.label is None:
            label = None
        elif task == "regression":
            label = float(e.label)
        elif task == "multilabel":
            label = [0.0] * len(label2id)
            for name in e.label:
                label[label2id[name]] = 1.0
        else:
            label = label2id[e.label]
        features.append(Feature(enc["input_ids"][i], enc["token_type_ids"][i], label, i))
    return features


# ------------------------------------------------------------------------------ tagging
def read_tagged(path, *, tokens_column: str | None = None, tags_column: str | None = None,
                require_tags: bool = True) -> list[TaggedSentence]:
    rows, columns = read_table(path)
    if not rows:
        raise FinetuneError(f"{path}: no examples (the file is empty)")
    words_col = _column(columns, tokens_column or "tokens", "tokens", path, "--text-column")
    tags_col = _column(columns, tags_column or "tags", "tags", path, "--label-column", required=require_tags)
    sentences = []
    for line, row in rows:
        words = row.get(words_col)
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise FinetuneError(f"{path}: line {line}: {words_col!r} must be a list of strings (the words)")
        tags = row.get(tags_col) if tags_col else None
        if tags_col is not None:
            if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
                raise FinetuneError(f"{path}: line {line}: {tags_col!r} must be a list of tags (strings)")
            if len(tags) != len(words):
                raise FinetuneError(f"{path}: line {line}: {len(words)} words but {len(tags)} tags")
        sentences.append(TaggedSentence(words, tags if tags is not None else [], line))
    return sentences


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the whitespace-separated words of a raw text."""
    return [m.span() for m in re.finditer(r"\S+", text)]


def first_subtokens(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[int | None]:
    """For each word span, the index of the first token whose character span starts inside it
    (None: the word got no token, e.g. it was truncated). Special tokens have empty spans."""
    starts = [s for s, _ in spans]
    first: list[int | None] = [None] * len(spans)
    for t, (a, b) in enumerate(offsets):
        if b <= a:
            continue  # [CLS], [SEP], padding
        w = bisect.bisect_right(starts, a) - 1
        if 0 <= w < len(spans) and a < spans[w][1] and first[w] is None:
            first[w] = t
    return first


def encode_tagged(sentences: Sequence[TaggedSentence], tokenizer, label2id: dict[str, int] | None,
                  max_length: int) -> list[Feature]:
    """Words joined by single spaces, tokenized with offsets; each word's tag on its first sub-token."""
    texts, all_spans = [], []
    for s in sentences:
        spans, pos = [], 0
        for w in s.words:
            spans.append((pos, pos + len(w)))
            pos += len(w) + 1
        texts.append(" ".join(s.words))
        all_spans.append(spans)
    enc = tokenizer(texts, truncation=True, max_length=max_length, return_offsets_mapping=True)
    features = []
    for i, s in enumerate(sentences):
        first = first_subtokens(enc["offset_mapping"][i], all_spans[i])
        labels = None
        if s.tags and label2id is not None:
            labels = [-100] * len(enc["input_ids"][i])
            for w, t in enumerate(first):
                if t is not None:
                    labels[t] = label2id[s.tags[w]]
        features.append(Feature(enc["input_ids"][i], enc["token_type_ids"][i], labels, i, first))
    return features


# ---------------------------------------------------------------------------- batching
def collate(features: Sequence[Feature], pad_id: int, label_dtype: torch.dtype | None = None,
            with_labels: bool = True) -> dict[str, torch.Tensor]:
    """Pad a list of features to the longest: input_ids, attention_mask, token_type_ids (+ labels)."""
    width = max(len(f.input_ids) for f in features)
    n = len(features)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    types = torch.zeros((n, width), dtype=torch.long)
    for i, f in enumerate(features):
        k = len(f.input_ids)
        ids[i, :k] = torch.tensor(f.input_ids)
        mask[i, :k] = 1
        types[i, :k] = torch.tensor(f.token_type_ids)
    batch = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    if with_labels and getattr(features[0], "labels", None) is not None:
        first = features[0].labels
        if isinstance(first, list) and label_dtype == torch.long:  # per-token labels, padded with -100
            labels = torch.full((n, width), -100, dtype=torch.long)
            for i, f in enumerate(features):
                labels[i, :len(f.labels)] = torch.tensor(f.labels)
        else:
            labels = torch.tensor([f.labels for f in features], dtype=label_dtype)
        batch["labels"] = labels
    return batch
