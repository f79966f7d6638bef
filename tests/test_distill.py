"""Distillation (issue 23, minialbert/pretrain/distill.py) through the pre-training loop.

References: the KL is computed here by hand from the two models' MLM distributions on held-out
text the student never saw; resume is compared with the uninterrupted run, weight for weight.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from minialbert import AlbertConfig, AlbertModel
from minialbert.cli import main as cli_main
from minialbert.model import AlbertForPreTraining, AlbertForSequenceClassification
from minialbert.pretrain.toy import write_corpus
from minialbert.tokenizer import AlbertTokenizer

REPO = Path(__file__).resolve().parent.parent
COMMON = ["--max-seq-length", "64", "--batch-size", "8", "--threads", "1", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A 4-call tiny teacher with the toy corpus's vocabulary; large random weights, so that its
    MLM distribution is far from uniform and a 1-call student starts far from it."""
    from minialbert.pretrain.data import Vocab, read_documents, train_sentencepiece

    d = tmp_path_factory.mktemp("distill")
    corpus = write_corpus(d / "corpus.txt", documents=300, seed=0)
    write_corpus(d / "heldout.txt", documents=30, seed=1)
    t = d / "teacher"
    t.mkdir()
    train_sentencepiece(read_documents([corpus]), t / "spiece.model", 120)
    vocab = Vocab.load(t / "spiece.model")
    config = AlbertConfig(vocab_size=vocab.size, embedding_size=16, hidden_size=32, num_hidden_layers=4,
                          num_attention_heads=4, intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    model = AlbertForPreTraining(config)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.2)
    model.save_pretrained(t)
    vocab.tokenizer.save_pretrained(t)
    return d


def heldout_kl(student_dir: Path, teacher_dir: Path, text_file: Path, layer_calls=None) -> float:
    """mean over real tokens of KL(teacher || student) of the MLM distributions (T = 1)."""
    tok = AlbertTokenizer.from_pretrained(teacher_dir)
    texts = [line for line in text_file.read_text().splitlines() if line.strip()]
    enc = tok(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
    t = AlbertForPreTraining.from_pretrained(teacher_dir)
    s = AlbertForPreTraining.from_pretrained(student_dir, num_layer_calls=layer_calls)
    with torch.no_grad():
        lt = t(enc["input_ids"], enc["attention_mask"]).prediction_logits.log_softmax(-1)
        ls = s(enc["input_ids"], enc["attention_mask"]).prediction_logits.log_softmax(-1)
    kl = (lt.exp() * (lt - ls)).sum(-1)
    keep = enc["attention_mask"].bool()
    return float(kl[keep].mean())


def test_distillation_lowers_heldout_kl(teacher, tmp_path, capsys):
    t = teacher / "teacher"
    before = heldout_kl(t, t, teacher / "heldout.txt", layer_calls=1)  # the student's start: 1 call of the teacher
    out = tmp_path / "student"
    code = cli_main(["distill", "--teacher", str(t), "--layer-calls", "1", "--corpus", str(teacher / "corpus.txt"),
                     "--output-dir", str(out), "--max-steps", "80", "--lr", "3e-3", "--log-every", "40", *COMMON])
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["num_hidden_layers"] == 1 and "num_layer_calls" not in config  # transformers-loadable
    after = heldout_kl(out, t, teacher / "heldout.txt")
    assert before > 0.05 and after < 0.5 * before, (before, after)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert {"kl", "hidden_mse", "teacher_agreement"} <= set(log[0])
    assert AlbertModel.from_pretrained(out).config.num_hidden_layers == 1


def test_distillation_resume_after_kill_is_bit_identical(teacher, tmp_path):
    from safetensors.torch import load_file

    args = ["--teacher", str(teacher / "teacher"), "--layer-calls", "2", "--corpus", str(teacher / "corpus.txt"),
            "--max-steps", "6", "--save-every", "3", "--log-every", "1", *COMMON]
    ref, crash = tmp_path / "ref", tmp_path / "crash"
    assert cli_main(["distill", *args, "--output-dir", str(ref)]) == 0
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "minialbert.cli", "distill", *args, "--output-dir", str(crash)]
    p = subprocess.run([*cmd, "--kill-after-step", "4"], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == -9, p.stderr
    assert cli_main(["distill", *args, "--output-dir", str(crash), "--resume"]) == 0
    wa, wb = load_file(str(ref / "model.safetensors")), load_file(str(crash / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    def kl(d):
        return {r["step"]: r["kl"] for r in map(json.loads, (d / "log.jsonl").read_text().splitlines()) if "kl" in r}

    assert kl(ref) == kl(crash)


def test_task_distillation_on_a_finetune_table(teacher, tmp_path):
    t = teacher / "teacher"
    clf = tmp_path / "clf"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a fresh (random) head: fine for a teacher here
        model = AlbertForSequenceClassification.from_pretrained(t, id2label={0: "neg", 1: "pos"})
    torch.manual_seed(0)
    with torch.no_grad():
        model.classifier.weight.normal_(0, 1.0)
    model.save_pretrained(clf)
    (clf / "spiece.model").write_bytes((t / "spiece.model").read_bytes())
    table = tmp_path / "train.jsonl"
    lines = [line for line in (teacher / "heldout.txt").read_text().splitlines() if line.strip()]
    table.write_text("".join(json.dumps({"text": x, "label": "pos"}) + "\n" for x in lines))
    out = tmp_path / "out"
    code = cli_main(["distill", "--teacher", str(clf), "--task", str(table), "--layer-calls", "2",
                     "--output-dir", str(out), "--max-steps", "60", "--log-every", "20", "--lr", "3e-3", *COMMON])
    assert code == 0
    student = AlbertForSequenceClassification.from_pretrained(out)
    assert student.config.num_hidden_layers == 2 and student.config.id2label == {0: "neg", 1: "pos"}
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if "kl" in line]
    assert "mlm_acc" not in log[0]

    def task_kl(model):  # on the table's texts, as a classifier sees them: [CLS] text [SEP]
        tok = AlbertTokenizer.from_pretrained(clf)
        enc = tok(lines, padding=True, return_tensors="pt")
        with torch.no_grad():
            lt = teacher_model(enc["input_ids"], enc["attention_mask"]).logits.log_softmax(-1)
            ls = model(enc["input_ids"], enc["attention_mask"]).logits.log_softmax(-1)
        return float((lt.exp() * (lt - ls)).sum(-1).mean())

    teacher_model = AlbertForSequenceClassification.from_pretrained(clf)
    start = AlbertForSequenceClassification.from_pretrained(clf, num_layer_calls=2)
    assert task_kl(student) < 0.5 * task_kl(start), (task_kl(student), task_kl(start))


def test_distill_bad_input_one_line(teacher, tmp_path, capsys):
    t = teacher / "teacher"
    corpus = str(teacher / "corpus.txt")
    # a student whose vocabulary differs
    student = tmp_path / "student.json"
    AlbertConfig(vocab_size=99, embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=64, max_position_embeddings=64).to_json(student)
    code = cli_main(["distill", "--teacher", str(t), "--student", str(student), "--corpus", corpus,
                     "--output-dir", str(tmp_path / "a"), "--max-steps", "2", *COMMON])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "vocabulary (99 pieces) differs from the teacher's" in err, err
    # a teacher without an MLM head
    bare = tmp_path / "bare"
    AlbertModel.from_pretrained(t).save_pretrained(bare)
    (bare / "spiece.model").write_bytes((t / "spiece.model").read_bytes())
    code = cli_main(["distill", "--teacher", str(bare), "--corpus", corpus, "--output-dir", str(tmp_path / "b"),
                     "--max-steps", "2", *COMMON])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "without an MLM head" in err, err
