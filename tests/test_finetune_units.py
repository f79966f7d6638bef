"""Fine-tuning building blocks: metrics on hand-worked examples, data readers, token/word alignment
and SQuAD windows against transformers' tokenizer, span decoding on hand-made logits."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from minialbert.finetune import FinetuneError
from minialbert.finetune import metrics as m
from minialbert.finetune.data import check_labels, collect_labels, encode_tagged, read_examples, read_tagged, TaggedSentence
from minialbert.embed import window_spans
from minialbert.finetune.squad import QAExample, QAFeature, decode_answers, make_features, read_squad

SPM_DIR = Path(__file__).parent / "fixtures" / "tokenizer" / "spm"


@pytest.fixture(scope="module")
def tok():
    from minialbert.tokenizer import AlbertTokenizer

    return AlbertTokenizer.from_pretrained(SPM_DIR)


@pytest.fixture(scope="module")
def hf_tok(reference_transformers):
    return reference_transformers.AlbertTokenizer.from_pretrained(str(SPM_DIR))


# ------------------------------------------------------------------------------- metrics
def test_classification_metrics_by_hand():
    gold, pred = ["a", "b", "a", "c"], ["a", "a", "a", "c"]
    assert m.accuracy(gold, pred) == 0.75
    # F1: a = 2*2/(2*2+1+0) = 0.8, b = 0 (tp 0, fn 1), c = 1 -> mean 0.6
    assert m.macro_f1(gold, pred) == pytest.approx(0.6)
    # multi-class MCC: s=4, c=3, t=(a2,b1,c1), p=(a3,c1): (3*4 - 7) / sqrt((16 - 10) * (16 - 6)) = 5 / sqrt(60)
    assert m.matthews_corrcoef(gold, pred) == pytest.approx(5 / math.sqrt(60))
    # binary: TP 3, TN 3, FP 1, FN 1 -> (9 - 1) / sqrt(4^4) = 0.5
    assert m.matthews_corrcoef([1, 1, 1, 0, 0, 0, 0, 1], [1, 1, 0, 0, 0, 1, 0, 1]) == pytest.approx(0.5)
    assert m.matthews_corrcoef([1, 1, 0], [1, 1, 1]) == 0.0  # constant prediction: undefined -> 0


def test_correlations_by_hand():
    # deviations (-1.5 -.5 .5 1.5) and (-3 -1 0 4): 11 / sqrt(5 * 26)
    assert m.pearson([1, 2, 3, 4], [2, 4, 5, 9]) == pytest.approx(11 / math.sqrt(130))
    # ties share ranks: x -> (1, 2.5, 2.5, 4), y -> (1, 3, 2, 4): 4.5 / sqrt(4.5 * 5)
    assert m.spearman([10, 20, 20, 30], [1, 3, 2, 4]) == pytest.approx(4.5 / math.sqrt(22.5))
    assert m.spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)


def test_bio_entities_and_f1_by_hand():
    tags = ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "I-PER", "B-ORG"]
    assert m.entities(tags) == [("PER", 0, 2), ("LOC", 3, 5), ("PER", 5, 6), ("ORG", 6, 7)]
    assert m.entities(["I-MISC", "I-MISC", "O", "B-X", "B-X"]) == [("MISC", 0, 2), ("X", 3, 4), ("X", 4, 5)]
    assert m.entities(["B-A", "E-A", "S-A", "O"]) == [("A", 0, 2), ("A", 2, 3)]  # IOBES works too
    # gold PER(0,2) LOC(3,4); predicted PER(0,1) LOC(3,4): 1 of 2 right both ways
    scores = m.entity_f1([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "O", "O", "B-LOC"]])
    assert scores == {"precision": 0.5, "recall": 0.5, "f1": 0.5}


def test_squad_metrics_by_hand():
    assert m.normalize_answer("The U.S. Army!") == "us army"
    assert m.squad_exact("The U.S. Army!", "us army") == 1.0
    # gold "cat sat on mat" vs pred "cat on mat": P = 3/3, R = 3/4 -> F1 = 6/7
    assert m.squad_f1("the cat sat on the mat", "a cat on mat") == pytest.approx(6 / 7)
    assert m.squad_f1("Denver Broncos", "Broncos win") == 0.5
    s = m.squad_scores([["Denver Broncos", "Broncos"], [], ["x y"]], ["the Broncos", "", "y"])
    # q1 exact via "Broncos"; q2 unanswerable and empty prediction; q3 F1 = 2/3 (P 1, R 1/2)
    assert s["exact_match"] == pytest.approx(200 / 3) and s["f1"] == pytest.approx(100 * (1 + 1 + 2 / 3) / 3)
    assert s["NoAns_exact"] == 100.0 and s["HasAns_exact"] == 50.0
    assert m.squad_scores([[]], ["something"])["exact_match"] == 0.0  # answering the unanswerable


# ---------------------------------------------------------------------------- readers
def test_table_readers_and_label_errors(tmp_path):
    tsv = tmp_path / "train.tsv"
    tsv.write_text('sentence\tlabel\nit\'s "quoted" here\t1\nplain\t0\n', encoding="utf-8")
    with pytest.raises(FinetuneError, match=r"no text column 'text' \(its columns: sentence, label\); choose one with --text-column"):
        read_examples(tsv, "classify")
    rows = read_examples(tsv, "classify", text_column="sentence")
    assert [(r.text, r.label, r.line) for r in rows] == [('it\'s "quoted" here', "1", 2), ("plain", "0", 3)]
    with pytest.raises(FinetuneError, match="no label column 'gold'"):
        read_examples(tsv, "classify", text_column="sentence", label_column="gold")

    jl = tmp_path / "pairs.jsonl"
    jl.write_text('{"text": "a", "text_pair": "b", "label": "yes", "tags": "x;y"}\n\n'
                  '{"text": "c", "text_pair": "d", "label": 2.5, "tags": ["z"]}\n', encoding="utf-8")
    with pytest.raises(FinetuneError, match=r"line 1: label 'yes' is not a number"):
        read_examples(jl, "regression")
    multi = read_examples(jl, "multilabel", label_column="tags", label_separator=";")
    assert [(r.text, r.text_pair, r.label) for r in multi] == [("a", "b", ["x", "y"]), ("c", "d", ["z"])]

    assert collect_labels(["10", "9", "2"]) == ["2", "9", "10"] and collect_labels(["pos", "neg"]) == ["neg", "pos"]
    with pytest.raises(FinetuneError, match=r"dev.tsv: line 7: label 'maybe' is not in the model's label2id \(neg, pos\)"):
        check_labels([("pos", 2), ("maybe", 7)], {"neg": 0, "pos": 1}, "dev.tsv")

    bad = tmp_path / "tags.jsonl"
    bad.write_text('{"tokens": ["a", "b"], "tags": ["O"]}\n', encoding="utf-8")
    with pytest.raises(FinetuneError, match="line 1: 2 words but 1 tags"):
        read_tagged(bad)


def test_first_subtoken_labels_match_transformers_word_ids(tok, hf_tok):
    """Our alignment (words joined by spaces, character offsets) gives the labels transformers'
    tokenize_and_align_labels recipe gives (is_split_into_words + word_ids)."""
    words = ["Albert", "visited", "New-York", "(again)", "in", "1999,", "naïve", "transformers"]
    tags = ["B-PER", "O", "B-LOC", "O", "O", "B-DATE", "O", "B-MISC"]
    label2id = {t: i for i, t in enumerate(sorted(set(tags)))}
    [feature] = encode_tagged([TaggedSentence(words, tags, 1)], tok, label2id, 64)
    ref = hf_tok(words, is_split_into_words=True)
    assert feature.input_ids == ref["input_ids"]
    expected, seen = [], set()
    for w in ref.word_ids():
        expected.append(-100 if w is None or w in seen else label2id[tags[w]])
        seen.add(w)
    assert feature.labels == expected
    # truncation: words that lost their tokens have no first sub-token
    [short] = encode_tagged([TaggedSentence(words, tags, 1)], tok, label2id, 8)
    assert short.first_token_of_word[-1] is None and short.first_token_of_word[0] == 1


# ------------------------------------------------------------------------------- SQuAD
def _squad_file(path: Path, answer_start: int = 27, version_2: bool = False) -> Path:
    qas = [{"id": "q1", "question": "Who was there?", "answers": [{"text": "Albert", "answer_start": answer_start}]}]
    if version_2:
        qas.append({"id": "q2", "question": "Who left?", "answers": [], "is_impossible": True})
    data = {"version": "v2.0" if version_2 else "1.1",
            "data": [{"title": "t", "paragraphs": [{"context": "In the morning we saw that Albert was there.", "qas": qas}]}]}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_read_squad_versions_and_errors(tmp_path):
    examples, v2 = read_squad(_squad_file(tmp_path / "v1.json"))
    assert not v2 and examples[0].answers == [("Albert", 27)]
    examples, v2 = read_squad(_squad_file(tmp_path / "v2.json", version_2=True))
    assert v2 and examples[1].is_impossible and examples[1].answers == []
    with pytest.raises(FinetuneError, match=r"question 'q1': the context has no answer span 'Albert' at character 25 "
                                            r"\(it reads 't Albe' there\)"):
        read_squad(_squad_file(tmp_path / "bad.json", answer_start=25))
    (tmp_path / "notsquad.json").write_text('{"questions": []}', encoding="utf-8")
    with pytest.raises(FinetuneError, match="is not SQuAD-shaped"):
        read_squad(tmp_path / "notsquad.json")
    no_answer = json.loads((tmp_path / "v1.json").read_text())
    no_answer["data"][0]["paragraphs"][0]["qas"][0]["answers"] = []
    (tmp_path / "noans.json").write_text(json.dumps(no_answer))
    with pytest.raises(FinetuneError, match="question 'q1' has no answer span; mark unanswerable"):
        read_squad(tmp_path / "noans.json")
    # datasets' JSON lines export
    (tmp_path / "d.jsonl").write_text(json.dumps({"id": "a", "question": "Who?", "context": "It is Ada.",
                                                  "answers": {"text": ["Ada"], "answer_start": [6]}}) + "\n")
    [ex], v2 = read_squad(tmp_path / "d.jsonl")
    assert ex.answers == [("Ada", 6)] and not v2


def test_windows_match_transformers_overflow_and_map_back(tok, hf_tok):
    """doc_stride windows = transformers' return_overflowing_tokens with stride (the run_qa recipe);
    the training positions of the window holding the answer map back to its characters."""
    context = " ".join(f"word{i % 7} filler" for i in range(40)) + " the answer is Albert Einstein, clearly."
    start = context.index("Albert Einstein")
    ex = QAExample("x", "What is the answer?", context, [("Albert Einstein", start)])
    feats = make_features([ex], tok, max_length=40, doc_stride=10, training=True)
    ref = hf_tok("What is the answer?", context, truncation="only_second", max_length=40, stride=10,
                 return_overflowing_tokens=True, return_token_type_ids=True)
    assert len(feats) == len(ref["input_ids"]) > 3
    for f, ids, tt in zip(feats, ref["input_ids"], ref["token_type_ids"]):
        assert f.input_ids == ids and f.token_type_ids == tt
    holding = [f for f in feats if f.start_position > 0]
    assert holding, "some window holds the whole answer"
    for f in holding:
        assert context[f.offsets[f.start_position][0]:f.offsets[f.end_position][1]] == "Albert Einstein"
    assert all(f.start_position == f.end_position == 0 for f in feats if f not in holding)
    assert window_spans(10, 4, 1) == [(0, 4), (3, 7), (6, 10)]


def test_decoding_by_hand():
    context = "aa bb cc dd"
    ex = QAExample("x", "q", context)
    # tokens: [CLS] q [SEP] aa bb cc dd [SEP]
    offsets = [None, None, None, (0, 2), (3, 5), (6, 8), (9, 11), None]
    f = QAFeature(0, [0] * 8, [0] * 8, offsets)
    start = np.array([1.0, 9.0, 0, 2.0, 5.0, 0.5, 0, 0])  # the question token scores highest: not allowed
    end = np.array([1.0, 0, 0, 0.0, 1.0, 4.0, 3.0, 8.0])  # [SEP] too
    [answers] = decode_answers([ex], [f], [start], [end], n_best=20, max_answer_length=30)
    best = answers[0]
    assert (best.text, best.start, best.end, best.logit) == ("bb cc", 3, 8, 9.0)  # 5 + 4
    assert sum(a.score for a in decode_answers([ex], [f], [start], [end], n_best=100)[0]) == pytest.approx(1.0)
    # spans longer than max_answer_length are skipped: of the one-token spans "bb" (5 + 1) scores best
    [short] = decode_answers([ex], [f], [start], [end], max_answer_length=1)
    assert short[0].text == "bb"
    # SQuAD 2.0: "no answer" scores s_CLS + e_CLS; it wins when it beats the best span by more than the threshold
    start2 = start.copy()
    start2[0] = 9.5  # null = 9.5 + 1 = 10.5 > 9
    [v2] = decode_answers([ex], [f], [start2], [end], version_2=True)
    assert v2[0].is_null and v2[0].text == "" and v2[1].text == "bb cc"
    [v2t] = decode_answers([ex], [f], [start2], [end], version_2=True, null_threshold=2.0)  # 10.5 < 9 + 2
    assert v2t[0].text == "bb cc"
