"""Extractive question answering data: SQuAD files, windows over long contexts, span decoding.

Reading: the official SQuAD JSON ({"data": [{"paragraphs": [{"context", "qas": [...]}]}]}, v1.1 and
v2.0 with "is_impossible") or JSON lines as `datasets` exports SQuAD ({"id", "question", "context",
"answers": {"text": [...], "answer_start": [...]}}).

Windows (the "doc_stride" scheme of BERT/ALBERT's run_squad and transformers' run_qa): each input
is [CLS] question [SEP] window of the context [SEP]. A context longer than fits is cut into windows
that overlap by `doc_stride` tokens, so every answer lies whole inside at least one window. For
training, a window that does not contain the whole answer (or a question without answer) points
both positions at [CLS] (index 0): "no answer here".

Decoding: for every window, the n_best highest start and end scores are paired; a pair is a
candidate if both tokens are in the context, end >= start and the span is at most
max_answer_length tokens. score(span) = start_logit + end_logit, and the character offsets of its
first and last tokens give the answer text. For SQuAD 2.0 the null score s_[CLS] + e_[CLS] (its
minimum over the windows) competes: "no answer" wins when it beats the best span by more than
null_threshold.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..embed import window_spans
from ..files import InputError
from . import FinetuneError


@dataclass
class QAExample:
    id: str
    question: str
    context: str
    answers: list[tuple[str, int]] = field(default_factory=list)  # (text, character start)
    is_impossible: bool = False


@dataclass
class QAFeature:
    example_index: int
    input_ids: list[int]
    token_type_ids: list[int]
    offsets: list[tuple[int, int] | None]  # character span in the context; None outside the context
    start_position: int = 0  # training targets (0 = [CLS] = no answer in this window)
    end_position: int = 0


@dataclass
class Answer:
    text: str  # "" = no answer
    start: int | None  # character span [start, end) in the context; None for no answer
    end: int | None
    score: float  # probability among the n-best candidates (and "no answer" for SQuAD 2.0)
    logit: float = 0.0  # start_logit + end_logit

    @property
    def is_null(self) -> bool:
        return self.start is None


# ------------------------------------------------------------------------------ reading
def _not_squad(path, where: str) -> FinetuneError:
    return FinetuneError(
        f"{path} is not SQuAD-shaped ({where}): expected {{\"data\": [{{\"paragraphs\": [{{\"context\": ..., "
        "\"qas\": [{\"id\", \"question\", \"answers\": [{\"text\", \"answer_start\"}]}]}]}]} (SQuAD v1.1/v2.0 JSON) "
        "or JSON lines with id, question, context and answers {\"text\": [...], \"answer_start\": [...]}"
    )


def read_squad(path, *, require_answers: bool = True) -> tuple[list[QAExample], bool]:
    """Examples of a SQuAD file and whether it is SQuAD 2.0 (has unanswerable questions).

    Every answer must sit at its answer_start in the context (a one-line error names the question
    otherwise); with `require_answers` (training), a v1.1 question needs at least one answer.
    """
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"input file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read {path}: {e}") from None
    records: list[dict] = []
    version_2 = False
    data = None  # JSON lines: by suffix, or when the whole file is not one JSON document
    if path.suffix.lower() not in (".jsonl", ".ndjson"):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            pass
    if isinstance(data, dict):
        if not isinstance(data.get("data"), list):
            raise _not_squad(path, "no \"data\" list")
        version_2 = str(data.get("version", "")).startswith("v2")
        for a, article in enumerate(data["data"]):
            paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
            if not isinstance(paragraphs, list):
                raise _not_squad(path, f"data[{a}] has no \"paragraphs\" list")
            for p, para in enumerate(paragraphs):
                if not isinstance(para, dict) or not isinstance(para.get("context"), str) \
                        or not isinstance(para.get("qas"), list):
                    raise _not_squad(path, f"data[{a}].paragraphs[{p}] needs \"context\" and \"qas\"")
                for q, qa in enumerate(para["qas"]):
                    if not isinstance(qa, dict):
                        raise _not_squad(path, f"data[{a}].paragraphs[{p}].qas[{q}] is not an object")
                    records.append({**qa, "context": para["context"], "_where": f"data[{a}].paragraphs[{p}].qas[{q}]"})
    elif data is None:  # JSON lines
        for n, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                raise _not_squad(path, f"line {n} is not JSON") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("answers", {}), dict):
                raise _not_squad(path, f"line {n}")
            ans = obj.get("answers", {})
            texts, starts = ans.get("text", []), ans.get("answer_start", [])
            if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
                raise _not_squad(path, f"line {n}: answers.text and answers.answer_start must be lists of one length")
            records.append({**obj, "answers": [{"text": t, "answer_start": s} for t, s in zip(texts, starts)],
                            "_where": f"line {n}"})
    else:
        raise _not_squad(path, f"the top level is a {type(data).__name__}")
    if not records:
        raise FinetuneError(f"{path}: no questions")

    examples = []
    for r in records:
        where = r["_where"]
        for key in ("question", "context"):
            if not isinstance(r.get(key), str):
                raise _not_squad(path, f"{where} has no string {key!r}")
        qid = str(r.get("id", where))
        answers = r.get("answers", [])
        if not isinstance(answers, list):
            raise _not_squad(path, f"{where}: \"answers\" is not a list")
        impossible = bool(r.get("is_impossible", False))
        version_2 = version_2 or "is_impossible" in r
        spans = []
        for answer in ([] if impossible else answers):
            text, start = (answer.get("text"), answer.get("answer_start")) if isinstance(answer, dict) else (None, None)
            if not isinstance(text, str) or not isinstance(start, int) or isinstance(start, bool):
                raise _not_squad(path, f"{where}: each answer needs \"text\" and an integer \"answer_start\"")
            found = r["context"][start:start + len(text)]
            if found != text:
                raise FinetuneError(
                    f"{path}: question {qid!r}: the context has no answer span {text!r} at character {start} "
                    f"(it reads {found!r} there); fix answer_start"
                )
            spans.append((text, start))
        if not spans and not impossible:
            if require_answers and not version_2:
                raise FinetuneError(
                    f"{path}: question {qid!r} has no answer span; mark unanswerable questions with "
                    "\"is_impossible\": true (SQuAD 2.0)"
                )
            impossible = True
            version_2 = True
        examples.append(QAExample(qid, r["question"], r["context"], spans, impossible))
    return examples, version_2


# ------------------------------------------------------------------------------ windows
def make_features(examples: Sequence[QAExample], tokenizer, *, max_length: int = 384, doc_stride: int = 128,
                  max_query_length: int = 64, training: bool = False) -> list[QAFeature]:
    """[CLS] question [SEP] context window [SEP] inputs, with token types 0 (question) and 1 (context)."""
    questions = tokenizer.encode_batch_ids([e.question for e in examples])
    contexts = {}  # SQuAD asks several questions about one paragraph: tokenize it once
    for e in examples:
        if e.context not in contexts:
            enc = tokenizer(e.context, add_special_tokens=False, return_offsets_mapping=True)
            contexts[e.context] = (enc["input_ids"], enc["offset_mapping"])
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    features = []
    for i, e in enumerate(examples):
        q = questions[i][:max_query_length]
        width = max_length - len(q) - 3
        ids, offsets = contexts[e.context]
        if width < 1 or (len(ids) > width and width <= doc_stride):  # windows needed, but they cannot advance
            raise FinetuneError(
                f"doc_stride {doc_stride} leaves no progress: a window has room for {width} context tokens "
                f"(max_length {max_length} minus a {len(q)}-token question and 3 special tokens); "
                "lower --doc-stride or --max-query-length, or raise --max-length"
            )
        first_tok = last_tok = None
        if training and e.answers and not e.is_impossible:
            a_text, a_start = e.answers[0]
            a_end = a_start + len(a_text)
            inside = [t for t, (s, f) in enumerate(offsets) if s < a_end and f > a_start]
            if inside:
                first_tok, last_tok = inside[0], inside[-1]
        head = [cls_id, *q, sep_id]
        for ws, we in window_spans(len(ids), width, doc_stride):
            input_ids = head + ids[ws:we] + [sep_id]
            types = [0] * len(head) + [1] * (we - ws + 1)
            offs: list[tuple[int, int] | None] = [None] * len(head) + list(offsets[ws:we]) + [None]
            start = end = 0
            if first_tok is not None and ws <= first_tok and last_tok < we:
                start, end = len(head) + first_tok - ws, len(head) + last_tok - ws
            features.append(QAFeature(i, input_ids, types, offs, start, end))
    return features


# ----------------------------------------------------------------------------- decoding
def decode_answers(examples: Sequence[QAExample], features: Sequence[QAFeature], start_logits: Sequence[np.ndarray],
                   end_logits: Sequence[np.ndarray], *, n_best: int = 20, max_answer_length: int = 30,
                   version_2: bool = False, null_threshold: float = 0.0) -> list[list[Answer]]:
    """For each example, its answers best first (the first is the prediction), at most n_best."""
    by_example = defaultdict(list)
    for k, f in enumerate(features):
        by_example[f.example_index].append(k)
    results = []
    for i, e in enumerate(examples):
        best: dict[tuple[int, int], float] = {}  # character span -> best score over windows
        null_score = math.inf
        for k in by_example[i]:
            s_log = np.asarray(start_logits[k], dtype=np.float64)[: len(features[k].input_ids)]
            e_log = np.asarray(end_logits[k], dtype=np.float64)[: len(features[k].input_ids)]
            offs = features[k].offsets
            null_score = min(null_score, s_log[0] + e_log[0])
            top_s = np.argsort(-s_log, kind="stable")[:n_best]
            top_e = np.argsort(-e_log, kind="stable")[:n_best]
            for a in top_s:
                if offs[a] is None:
                    continue
                for b in top_e:
                    if offs[b] is None or b < a or b - a + 1 > max_answer_length:
                        continue
                    span = (offs[a][0], offs[b][1])
                    score = float(s_log[a] + e_log[b])
                    if score > best.get(span, -math.inf):
                        best[span] = score
        ranked = sorted(best.items(), key=lambda kv: -kv[1])[:n_best]
        candidates = [Answer(e.context[s:t], s, t, 0.0, score) for (s, t), score in ranked]
        if version_2 and math.isfinite(null_score):
            null = Answer("", None, None, 0.0, float(null_score))
            wins = not candidates or null_score > candidates[0].logit + null_threshold
            first = null if wins else candidates[0]
            rest = sorted((c for c in [*candidates, null] if c is not first), key=lambda c: -c.logit)
            candidates = [first, *rest]
        if not candidates:  # nothing valid (an empty context): no answer
            candidates = [Answer("", None, None, 1.0, 0.0)]
        logits = np.array([c.logit for c in candidates])
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        for c, p in zip(candidates, probs):
            c.score = float(p)
        results.append(candidates[:n_best])
    return results
