"""Evaluation metrics, written out so each can be checked by hand (tests/test_finetune_metrics.py).

Classification: accuracy, macro-F1, Matthews correlation. Regression: Pearson and Spearman.
Token tagging: entity-level F1 over BIO tags (the CoNLL / seqeval convention). Extractive QA:
SQuAD exact match and F1 with the official answer normalisation (v1.1 and v2.0).
Pure Python + numpy: no scikit-learn, seqeval or evaluate needed.
"""

from __future__ import annotations

import collections
import math
import re
import string
from typing import Hashable, Sequence

import numpy as np


# ------------------------------------------------------------------------- classification
def accuracy(gold: Sequence[Hashable], pred: Sequence[Hashable]) -> float:
    _same_length(gold, pred)
    return sum(g == p for g, p in zip(gold, pred)) / len(gold) if gold else 0.0


def macro_f1(gold: Sequence[Hashable], pred: Sequence[Hashable]) -> float:
    """Mean over classes of F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c); the classes are those that occur
    in gold or pred (scikit-learn's choice); a class with no TP, FP or FN cannot occur."""
    _same_length(gold, pred)
    classes = sorted(set(gold) | set(pred), key=repr)
    if not classes:
        return 0.0
    scores = []
    for c in classes:
        tp = sum(g == c and p == c for g, p in zip(gold, pred))
        fp = sum(g != c and p == c for g, p in zip(gold, pred))
        fn = sum(g == c and p != c for g, p in zip(gold, pred))
        scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)


def matthews_corrcoef(gold: Sequence[Hashable], pred: Sequence[Hashable]) -> float:
    """Matthews correlation for any number of classes (Gorodkin's R_K), from the confusion matrix C:

        MCC = (c s - sum_k p_k t_k) / sqrt((s^2 - sum_k p_k^2) (s^2 - sum_k t_k^2))

    with s samples, c correct, t_k = times class k truly occurs, p_k = times it is predicted.
    Two classes: (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)). 0 when undefined.
    """
    _same_length(gold, pred)
    s = len(gold)
    c = sum(g == p for g, p in zip(gold, pred))
    t = collections.Counter(gold)
    p = collections.Counter(pred)
    classes = set(t) | set(p)
    cov_tp = c * s - sum(p[k] * t[k] for k in classes)
    cov_pp = s * s - sum(p[k] ** 2 for k in classes)
    cov_tt = s * s - sum(t[k] ** 2 for k in classes)
    if cov_pp == 0 or cov_tt == 0:
        return 0.0
    return cov_tp / math.sqrt(cov_pp * cov_tt)


# ----------------------------------------------------------------------------- regression
def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """sum (x - x̄)(y - ȳ) / sqrt(sum (x - x̄)^2 sum (y - ȳ)^2); 0 when either side is constant."""
    _same_length(x, y)
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    a = a - a.mean()
    b = b - b.mean()
    denom = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum()) / denom if denom > 0 else 0.0


def _ranks(values: Sequence[float]) -> np.ndarray:
    """1-based ranks; tied values share the mean of the ranks they span."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v), dtype=np.float64)
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation of the ranks (ties averaged)."""
    _same_length(x, y)
    return pearson(_ranks(x), _ranks(y))


# -------------------------------------------------------------------------------- tagging
def _split_tag(tag: str) -> tuple[str, str]:
    """'B-PER' -> ('B', 'PER'); 'O' -> ('O', ''); a tag without prefix ('PER') acts as 'I-PER'."""
    if tag == "O" or not tag:
        return "O", ""
    if len(tag) > 2 and tag[1] in "-_" and tag[0] in "BIESU":
        prefix = "S" if tag[0] == "U" else tag[0]
        return prefix, tag[2:]
    return "I", tag


def entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """(type, first, last + 1) of each entity in a tag sequence, CoNLL's conlleval rules.

    An entity starts at B- (or S-), or at an I-/E- that follows O, another type, or an entity
    that already ended (E-/S-); it ends before O, B-, S- or a change of type, and after E-/S-.
    So "I-PER I-PER" is one PER entity and "B-PER I-LOC" is two.
    """
    found = []
    start, kind = None, ""
    prev_prefix, prev_kind = "O", ""
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, k = _split_tag(tag)
        ends = start is not None and (
            prefix in ("O", "B", "S") or k != prev_kind or prev_prefix in ("E", "S"))
        if ends:
            found.append((kind, start, i))
            start = None
        begins = prefix != "O" and (
            prefix in ("B", "S") or start is None)
        if begins:
            start, kind = i, k
        prev_prefix, prev_kind = prefix, k
    return found


def entity_f1(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro precision/recall/F1 over entities: a predicted entity counts only if its type and
    both boundaries match a gold one (seqeval's default). gold/pred: one tag list per sentence."""
    _same_length(gold, pred)
    n_gold = n_pred = n_ok = 0
    for g, p in zip(gold, pred):
        if len(g) != len(p):
            raise ValueError(f"a sentence has {len(g)} gold tags but {len(p)} predicted ones")
        eg, ep = set(entities(g)), set(entities(p))
        n_gold += len(eg)
        n_pred += len(ep)
        n_ok += len(eg & ep)
    precision = n_ok / n_pred if n_pred else 0.0
    recall = n_ok / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


# ---------------------------------------------------------------------------------- SQuAD
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower-case, drop ASCII punctuation, drop the articles a/an/the,
    collapse whitespace (in that order: 'The U.S.' -> 'us')."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def squad_exact(gold: str, pred: str) -> float:
    return float(normalize_answer(gold) == normalize_answer(pred))


def squad_f1(gold: str, pred: str) -> float:
    """Harmonic mean of token precision and recall, tokens = normalised text split on spaces and
    counted with multiplicity. An empty side (no answer) scores 1 only against another empty side."""
    g = normalize_answer(gold).split()
    p = normalize_answer(pred).split()
    if not g or not p:
        return float(g == p)
    same = sum((collections.Counter(g) & collections.Counter(p)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def squad_scores(golds: Sequence[Sequence[str]], preds: Sequence[str]) -> dict[str, float]:
    """exact_match and f1 in percent, each the best over a question's gold answers.

    A question without gold answers (or whose answers all normalise to nothing) is unanswerable:
    its one gold answer is "" and only an empty prediction scores (SQuAD 2.0's rule).
    """
    _same_length(golds, preds)
    em = f1 = 0.0
    has_ans = [0.0, 0.0, 0]
    no_ans = [0.0, 0.0, 0]
    for answers, pred in zip(golds, preds):
        answers = [a for a in answers if normalize_answer(a)] or [""]
        e = max(squad_exact(a, pred) for a in answers)
        f = max(squad_f1(a, pred) for a in answers)
        em += e
        f1 += f
        bucket = no_ans if answers == [""] else has_ans
        bucket[0] += e
        bucket[1] += f
        bucket[2] += 1
    n = max(1, len(preds))
    scores = {"exact_match": 100 * em / n, "f1": 100 * f1 / n}
    if no_ans[2]:  # SQuAD 2.0: also split by answerable / unanswerable
        scores.update(HasAns_exact=100 * has_ans[0] / max(1, has_ans[2]), HasAns_f1=100 * has_ans[1] / max(1, has_ans[2]),
                      NoAns_exact=100 * no_ans[0] / no_ans[2], NoAns_f1=100 * no_ans[1] / no_ans[2])
    return scores


def _same_length(a: Sequence, b: Sequence) -> None:
    if len(a) != len(b):
        raise ValueError(f"gold and predictions differ in length ({len(a)} and {len(b)})")
