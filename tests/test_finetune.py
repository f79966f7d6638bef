"""Fine-tuning end to end: tiny models learn generated tasks, a killed run resumes bit-identically,
and the classify / answer / tag commands on the fine-tuned checkpoints agree with transformers."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from minialbert.cli import main as cli
from minialbert.finetune import toy
from minialbert.finetune.train import main as finetune

REPO = Path(__file__).resolve().parent.parent
SPM = REPO / "tests" / "fixtures" / "tokenizer" / "spm" / "spiece.model"
COMMON = ["--threads", "1", "--device", "cpu", "--quiet", "--lr", "3e-3"]
pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: tiny models, one thread


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("finetune")
    toy.write_base_checkpoint(d / "base", vocab_file=SPM)  # E=32, H=64, 2 layers, random weights
    toy.write_classification(d, n_train=400, n_dev=100)
    toy.write_squad(d, n_train=300, n_dev=100, version_2=True, max_words=24)
    toy.write_tagging(d, n_train=200, n_dev=50)
    return d


@pytest.fixture(scope="module")
def classifier(work):
    out = work / "cls"
    assert finetune(["--model", str(work / "base"), "--train", str(work / "train.csv"), "--dev", str(work / "dev.csv"),
                     "--output-dir", str(out), "--batch-size", "16", "--max-steps", "120", "--warmup-steps", "10",
                     "--eval-every", "20", *COMMON]) == 0
    return out


@pytest.fixture(scope="module")
def reader(work):
    """SQuAD 2.0 (a quarter unanswerable); max_length 32 cuts most passages into doc_stride windows."""
    out = work / "qa"
    assert finetune(["--task", "qa", "--model", str(work / "base"), "--train", str(work / "train.json"),
                     "--dev", str(work / "dev.json"), "--output-dir", str(out), "--batch-size", "16",
                     "--max-steps", "60", "--warmup-steps", "6", "--eval-every", "20", "--max-length", "32",
                     "--doc-stride", "8", *COMMON]) == 0
    return out


@pytest.fixture(scope="module")
def tagger(work):
    out = work / "tag"
    assert finetune(["--task", "tag", "--model", str(work / "base"), "--train", str(work / "train.jsonl"),
                     "--dev", str(work / "dev.jsonl"), "--output-dir", str(out), "--batch-size", "16",
                     "--max-steps", "40", "--warmup-steps", "4", *COMMON]) == 0
    return out


def _metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


# ------------------------------------------------------------------------------ learning
def test_classifier_learns_and_loads_in_transformers(classifier):
    import transformers

    m = _metrics(classifier)
    history = [h["accuracy"] for h in m["history"]]
    print("dev accuracy every 20 steps:", history)
    assert m["best"]["accuracy"] >= 0.9 and history[0] < 0.9  # it learned, from a model that could not
    assert m["labels"] == ["blue", "green", "red"] and m["steps"] == 120 and m["dev_examples"] == 100
    assert set(m["best"]) >= {"accuracy", "macro_f1", "mcc", "step"}
    log = [json.loads(x) for x in (classifier / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert losses[-1] < 0.5 * losses[0]
    # a finished run keeps its model, not the resumable state of its periodic checkpoints (every 20 steps)
    assert not (classifier / "checkpoint" / "trainer_state.pt").exists()
    with pytest.raises(Exception, match="has finished .*nothing to resume"):
        finetune(["--model", "unused", "--train", "unused.csv", "--output-dir", str(classifier), "--resume"])
    # the best checkpoint is a transformers checkpoint, labels included
    ref = transformers.AlbertForSequenceClassification.from_pretrained(classifier)
    assert ref.config.id2label == {0: "blue", 1: "green", 2: "red"}
    assert ref.config.problem_type == "single_label_classification"


def test_squad_reader_learns_spans_and_no_answer(reader):
    m = _metrics(reader)
    print("dev EM every 20 steps:", [round(h["exact_match"], 1) for h in m["history"]], "best", m["best"])
    assert m["best"]["exact_match"] >= 80
    assert m["best"]["HasAns_exact"] >= 80 and m["best"]["NoAns_exact"] >= 80
    assert m["train_inputs"] > m["train_examples"]  # long passages were windowed
    assert json.loads((reader / "config.json").read_text())["version_2_with_negative"] is True


def test_killed_run_resumes_bit_identically(work, tmp_path):
    from safetensors.torch import load_file

    args = ["--model", str(work / "base"), "--train", str(work / "train.csv"), "--dev", str(work / "dev.csv"),
            "--batch-size", "8", "--grad-accum", "2", "--max-steps", "9", "--eval-every", "3", "--log-every", "1",
            "--classifier-dropout", "0.3", "--seed", "5", *COMMON]
    ref, crash = tmp_path / "ref", tmp_path / "crash"
    assert finetune([*args, "--output-dir", str(ref), "--save-final-state"]) == 0  # uninterrupted

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    p = subprocess.run([sys.executable, str(REPO / "scripts" / "finetune.py"), *args, "--output-dir", str(crash),
                        "--kill-after-step", "5"], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == -9, p.stderr  # SIGKILL after step 5: steps 4-5 are lost with the process
    assert torch.load(crash / "checkpoint" / "trainer_state.pt", weights_only=True)["step"] == 3
    (crash / "checkpoint" / ".trainer_state.pt.x.tmp").write_bytes(b"half a checkpoint")  # a crash mid-write
    assert finetune([*args, "--output-dir", str(crash), "--resume", "--save-final-state"]) == 0

    # Ctrl-C (SIGINT) in the middle of step 4 (not a --save-every step): the step completes, its
    # state is saved, the run says so in one line and exits 130; --resume continues from step 4
    stopped = tmp_path / "stopped"
    p = subprocess.run([sys.executable, str(REPO / "scripts" / "finetune.py"), *args, "--output-dir", str(stopped),
                        "--interrupt-after-step", "4"], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 130, p.stderr
    assert "Traceback" not in p.stderr and "interrupted (SIGINT) after step 4 of 9" in p.stderr
    assert torch.load(stopped / "checkpoint" / "trainer_state.pt", weights_only=True)["step"] == 4
    assert finetune([*args, "--output-dir", str(stopped), "--resume", "--save-final-state"]) == 0

    def losses(out):
        return {r["step"]: r["loss"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "loss" in r}

    a = torch.load(ref / "checkpoint" / "trainer_state.pt", weights_only=True)
    for other in (crash, stopped):
        b = torch.load(other / "checkpoint" / "trainer_state.pt", weights_only=True)
        assert a["step"] == b["step"] == 9
        assert a["model"].keys() == b["model"].keys() and all(torch.equal(a["model"][k], b["model"][k])
                                                              for k in a["model"])
        assert a["history"] == b["history"] and a["best"] == b["best"]
        opt_a, opt_b = a["optimizer"]["state"], b["optimizer"]["state"]
        assert opt_a.keys() == opt_b.keys() and all(
            torch.equal(opt_a[k][name], opt_b[k][name]) for k in opt_a for name in ("exp_avg", "exp_avg_sq"))
        wa, wb = load_file(str(ref / "model.safetensors")), load_file(str(other / "model.safetensors"))
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
        assert losses(ref) == losses(other) and len(losses(ref)) == 9
        assert _metrics(ref)["history"] == _metrics(other)["history"]
    with pytest.raises(Exception, match="--lr differs from the checkpoint"):
        finetune([*args, "--output-dir", str(crash), "--resume", "--lr", "1e-4"])


def test_tagger_trains_with_bf16_and_accumulation(work, tmp_path):
    out = tmp_path / "bf16"
    assert finetune(["--task", "tag", "--model", str(work / "base"), "--train", str(work / "train.jsonl"),
                     "--dev", str(work / "dev.jsonl"), "--output-dir", str(out), "--batch-size", "4",
                     "--grad-accum", "2", "--max-steps", "3", "--bf16", *COMMON]) == 0
    m = _metrics(out)
    assert m["steps"] == 3 and all(math.isfinite(v) for v in m["final"].values())
    assert m["labels"] == ["B-LOC", "B-PER", "I-LOC", "I-PER", "O"]


# ---------------------------------------------------------------------------------- CLI
def run(argv, capsys):
    code = cli([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_classify_command_matches_transformers(classifier, tmp_path, capsys):
    import transformers

    texts = ["many people came here", "a vector of state and flow"]
    pairs = ["", "the model"]
    code, out, _ = run(["classify", *texts, "--pair", pairs[0], "--pair", pairs[1], "-m", classifier, "--all-scores"],
                       capsys)
    assert code == 0
    rows = [json.loads(x) for x in out.splitlines()]
    ref = transformers.AlbertForSequenceClassification.from_pretrained(classifier).eval()
    hf_tok = transformers.AlbertTokenizer.from_pretrained(str(classifier))
    enc = hf_tok(texts, pairs, padding=True, return_tensors="pt", return_token_type_ids=True)
    with torch.no_grad():
        probs = torch.softmax(ref(**enc).logits, -1)
    for row, p in zip(rows, probs):
        assert row["label"] == ref.config.id2label[int(p.argmax())]
        assert abs(row["score"] - p.max().item()) < 1e-5
        assert max(abs(row["scores"][ref.config.id2label[i]] - p[i].item()) for i in range(3)) < 1e-5

    from minialbert.embed import LongTextWarning

    with pytest.warns(LongTextWarning, match=r"^1 input\(s\) longer than max_length=16 tokens were truncated "
                                             r"\(--max-length on the command line\)$"):
        code, out, err = run(["classify", "many people came here " * 10, "-m", classifier, "--max-length", "16"],
                             capsys)
    assert code == 0 and len(out.splitlines()) == 1

    src = tmp_path / "in.tsv"
    src.write_text("id\tsentence\n1\tmany people came here\n2\tthree years of flow\n", encoding="utf-8")
    code, _, err = run(["classify", "--input", src, "--text-column", "sentence", "-o", tmp_path / "out.csv", "-m",
                        classifier], capsys)
    assert code == 0 and "wrote 2 results" in err
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines[0] == "text,label,score" and lines[1].startswith(f"many people came here,{rows[0]['label']},")


def test_answer_command_finds_spans_windows_and_no_answer(reader, work, tmp_path, capsys):
    # passages in the words of the toy task (the tiny model knows no others)
    long_context = " ".join(["many make between take more same"] * 6) + " hidden embedding since more"
    questions = [
        {"id": "a", "question": "what comes next?", "context": "were there hidden finance since last"},
        {"id": "b", "question": "what comes next?", "context": long_context},  # 40 words: several windows
        {"id": "c", "question": "what comes next?", "context": "were there since last"},
    ]
    src = tmp_path / "q.jsonl"
    src.write_text("".join(json.dumps(q) + "\n" for q in questions), encoding="utf-8")
    code, out, _ = run(["answer", "--input", src, "-m", reader, "--max-length", "32", "--doc-stride", "8"], capsys)
    assert code == 0
    rows = [json.loads(x) for x in out.splitlines()]
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    assert rows[0]["answer"] == "finance" and questions[0]["context"][rows[0]["start"]:rows[0]["end"]] == "finance"
    assert rows[1]["answer"] == "embedding" and long_context[rows[1]["start"]:rows[1]["end"]] == "embedding"
    assert rows[2]["no_answer"] and rows[2]["answer"] == "" and rows[2]["start"] is None
    assert all(0 < r["score"] <= 1 for r in rows)

    code, out, _ = run(["answer", "-Q", "what comes next?", "-C", questions[0]["context"], "-m", reader, "-k", "3"],
                       capsys)
    [row] = [json.loads(x) for x in out.splitlines()]
    assert code == 0 and row["answer"] == "finance" and len(row["answers"]) == 3


def test_tag_command_matches_transformers(tagger, capsys):
    import transformers

    from minialbert.finetune.metrics import entities

    texts = ["many albert language were here in state flow", "life came"]
    code, out, _ = run(["tag", *texts, "-m", tagger], capsys)
    assert code == 0
    rows = [json.loads(x) for x in out.splitlines()]
    ref = transformers.AlbertForTokenClassification.from_pretrained(tagger).eval()
    hf_tok = transformers.AlbertTokenizer.from_pretrained(str(tagger))
    for text, row in zip(texts, rows):
        words = text.split()
        enc = hf_tok(words, is_split_into_words=True, return_tensors="pt")
        with torch.no_grad():
            probs = torch.softmax(ref(**enc).logits[0], -1)
        first = {}
        for t, w in enumerate(enc.word_ids()):
            if w is not None and w not in first:
                first[w] = t
        tags = [ref.config.id2label[int(probs[first[w]].argmax())] for w in range(len(words))]
        starts = [text.index(w, sum(len(x) + 1 for x in words[:i])) for i, w in enumerate(words)]
        expected = [(kind, starts[a], starts[b - 1] + len(words[b - 1])) for kind, a, b in entities(tags)]
        assert [(e["label"], e["start"], e["end"]) for e in row["entities"]] == expected
        assert all(text[e["start"]:e["end"]] == e["text"] for e in row["entities"])
    assert any(rows[0]["entities"])


@pytest.mark.parametrize("case", ["label column", "label not in label2id", "not squad", "no answer span",
                                  "empty context", "answer input not squad"])
def test_user_errors_are_one_line(case, work, reader, tmp_path, capsys):
    base = ["--model", work / "base", "--output-dir", tmp_path / "out", "--quiet", "--max-steps", "1"]
    if case == "label column":
        argv = ["finetune", *base, "--train", work / "train.csv", "--label-column", "gold"]
        expected = "no label column 'gold' (its columns: text, label); choose one with --label-column"
    elif case == "label not in label2id":
        argv = ["finetune", *base, "--train", work / "train.csv", "--labels", "red,blue"]
        expected = "label 'green' is not in the model's label2id (red, blue)"
    elif case == "not squad":
        argv = ["finetune", *base, "--task", "qa", "--train", work / "train.csv"]
        expected = "is not SQuAD-shaped"
    elif case == "no answer span":
        data = json.loads((work / "train.json").read_text())
        qa = next(p for p in data["data"][0]["paragraphs"] if p["qas"][0]["answers"])["qas"][0]
        qa["answers"][0]["answer_start"] += 1
        (tmp_path / "bad.json").write_text(json.dumps(data))
        argv = ["finetune", *base, "--task", "qa", "--train", tmp_path / "bad.json"]
        expected = f"question '{qa['id']}': the context has no answer span"
    elif case == "empty context":
        argv = ["answer", "-Q", "what?", "-C", "  ", "-m", reader]
        expected = "the context of question 0 is empty"
    else:
        (tmp_path / "q.jsonl").write_text('{"query": "what?"}\n')
        argv = ["answer", "--input", tmp_path / "q.jsonl", "-m", reader]
        expected = "is not SQuAD-shaped"
    code, out, err = run(argv, capsys)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"minialbert {argv[0]}: error: ") and expected in err, err
    assert not (tmp_path / "out" / "model.safetensors").exists()


@pytest.mark.parametrize("flags", [["--bogus"], ["--max-steps", "0"], ["--lr", "-1"], ["--task", "poetry"]])
def test_bad_flags_print_usage_and_exit_2(flags, tmp_path, capsys):
    from minialbert import cli

    with pytest.raises(SystemExit) as e:
        cli.main(["finetune", "--train", str(tmp_path / "t.csv"), "--output-dir", str(tmp_path / "o"), *flags])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("usage: minialbert finetune") and "error:" in err
    assert not (tmp_path / "o").exists()
