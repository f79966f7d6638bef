"""Issue 19: prepared, memory-mapped shards (`minialbert pretrain-data`), training from them,
torch.compile and SDPA, TensorBoard, and the one-line errors of bad input.

References: direct tokenization with AlbertTokenizer (id for id), data.build_pairs over the
directly tokenized documents (the in-memory pipeline), model.py's written-out attention, and the
eager model for the compiled one."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from minialbert.errors import MinialbertError
from minialbert.pretrain.data import PretrainingData, Vocab, build_pairs, read_documents, train_sentencepiece
from minialbert.pretrain import PretrainError
from minialbert.pretrain.prepare import PreparedData, open_pairs, prepare
from minialbert.pretrain.toy import write_corpus

REPO = Path(__file__).resolve().parent.parent
TINY = ["--hidden-size", "64", "--num-layers", "2", "--num-heads", "2", "--intermediate-size", "128",
        "--embedding-size", "32", "--max-seq-length", "64", "--threads", "1", "--device", "cpu", "--quiet"]

if os.environ.get("CI"):
    import pyarrow as pa  # CI installs the [stream] extra: a missing one must fail, not skip
    import pyarrow.parquet as pq
else:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq


def env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    d = tmp_path_factory.mktemp("shards")
    corpus = write_corpus(d / "corpus.txt", documents=200, seed=3)
    docs = read_documents([corpus])
    train_sentencepiece(docs, d / "spiece.model", 120)
    return d, corpus, docs, d / "spiece.model"


def shard_documents(data_dir: Path, split: str = "train") -> list[list[list[int]]]:
    return [[seg.tolist() for seg in doc] for doc in PreparedData(data_dir, split).documents()]


def direct(docs, vocab_path) -> list[list[list[int]]]:
    """The reference: every segment through AlbertTokenizer, empty segments dropped."""
    vocab = Vocab.load(vocab_path)
    return [[ids for ids in vocab.encode(d) if ids] for d in docs]


# ------------------------------------------------------------------------ preparation
def test_every_input_format_prepares_to_the_ids_of_direct_tokenization(tmp_path, toy):
    d, corpus, docs, vocab = toy
    expected = direct(docs, vocab)
    texts = ["\n".join(doc) for doc in docs]  # a .jsonl/.parquet row: one document, a segment per line
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    half = len(texts) // 2
    with gzip.open(inputs / "a.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps({"body": t, "id": i}) + "\n" for i, t in enumerate(texts[:half]))
    pq.write_table(pa.table({"body": texts[half:]}), inputs / "sub" / "b.parquet", row_group_size=37)
    with gzip.open(tmp_path / "corpus.txt.gz", "wt", encoding="utf-8") as f:
        f.write(corpus.read_text(encoding="utf-8"))
    cases = {
        "txt": ([corpus], {}),
        "txt.gz": ([tmp_path / "corpus.txt.gz"], {}),
        "dir of jsonl.gz + parquet": ([inputs], {"field": "body"}),
        "glob": ([str(inputs / "**" / "*.*")], {"field": "body"}),
    }
    for name, (paths, kw) in cases.items():
        out = tmp_path / name.replace(" ", "_")
        manifest = prepare(paths, out, vocab=vocab, shard_tokens=3000, **kw)
        assert shard_documents(out) == expected, name
        assert manifest["counts"]["train"]["documents"] == len(docs)
        assert len([s for s in manifest["shards"] if s["split"] == "train"]) > 2  # really sharded
    # two tokenizer processes: the same shards, byte for byte
    out2 = tmp_path / "workers2"
    prepare([corpus], out2, vocab=vocab, shard_tokens=3000, workers=2)
    one = json.loads((tmp_path / "txt" / "manifest.json").read_text())["shards"]
    two = json.loads((out2 / "manifest.json").read_text())["shards"]
    assert one == two
    assert np.load(out2 / "train-00000" / "tokens.npy").dtype == np.uint16  # a small vocabulary fits


def test_pairs_and_examples_from_shards_equal_the_in_memory_pipeline(tmp_path, toy):
    d, corpus, docs, vocab_path = toy
    out = tmp_path / "data"
    prepare([corpus], out, vocab=vocab_path, shard_tokens=2000)
    vocab = Vocab.load(vocab_path)
    reference = build_pairs(direct(docs, vocab_path), 64, 0.3, seed=5)
    pairs = open_pairs(PreparedData(out), tmp_path / "cache", 64, 0.3, 5, build=True)
    assert len(pairs) == len(reference) > 100
    for i in range(len(pairs)):
        a, b = pairs[i]
        assert a.tolist() == reference[i][0].tolist() and b.tolist() == reference[i][1].tolist()
    # and so every masked SOP example is the same
    ours, ref = PretrainingData(pairs, vocab, max_seq_length=64, seed=5), PretrainingData(reference, vocab,
                                                                                        max_seq_length=64, seed=5)
    for i in (0, 7, len(pairs) - 1):
        x, y = ours.example(i, 2), ref.example(i, 2)
        assert all(np.array_equal(x[k], y[k]) for k in ("input_ids", "token_type_ids", "labels"))
    # the index: 12 bytes a pair; cut short, it is refused in one line, not read as fewer pairs
    index = next((tmp_path / "cache").glob("pairs-*.bin"))
    assert index.stat().st_size == 12 * len(pairs)
    pairs.close()
    with open(index, "r+b") as f:
        f.truncate(index.stat().st_size - 12)
    with pytest.raises(PretrainError, match="pair index .* is missing or truncated"):
        open_pairs(PreparedData(out), tmp_path / "cache", 64, 0.3, 5, build=True)


def test_valid_fraction_holds_out_documents_and_the_split_ignores_workers(tmp_path, toy):
    d, corpus, docs, vocab = toy
    m = prepare([corpus], tmp_path / "v", vocab=vocab, valid_fraction=0.2, seed=1, shard_tokens=4000)
    valid, train = shard_documents(tmp_path / "v", "valid"), shard_documents(tmp_path / "v")
    assert 20 <= len(valid) <= 60 and len(valid) + len(train) == len(docs)
    ref = direct(docs, vocab)
    firsts = [s["first_document"] for s in m["shards"] if s["split"] == "valid"]
    assert valid[0] == ref[firsts[0]]
    assert sorted(map(str, valid + train)) == sorted(map(str, ref))


def test_prepare_killed_with_sigkill_keeps_its_shards_and_resumes_to_the_same_result(tmp_path, toy):
    d, corpus, docs, vocab = toy
    base = [sys.executable, "-m", "minialbert", "pretrain-data", str(corpus), "--vocab", str(vocab),
            "--shard-tokens", "1500", "--quiet", "--valid-fraction", "0.1"]
    p = subprocess.run([*base, "--output", str(tmp_path / "ref"), "--workers", "2"], env=env(), capture_output=True,
                       text=True, timeout=120)  # two tokenizer processes started from `python -m minialbert`
    assert p.returncode == 0, p.stderr
    killed = tmp_path / "killed"
    p = subprocess.run([*base, "--output", str(killed), "--kill-after-shards", "3"], env=env(),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == -9
    manifest = json.loads((killed / "manifest.json").read_text())
    assert not manifest["complete"] and len(manifest["shards"]) >= 3
    kept = {s["name"]: s["files"] for s in manifest["shards"]}
    (killed / ".tmp-train-00099").mkdir()  # as if killed while writing a shard
    p = subprocess.run([*base, "--output", str(killed)], env=env(), capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "--resume" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    p = subprocess.run([*base, "--output", str(killed), "--resume"], env=env(), capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    done, ref = (json.loads((x / "manifest.json").read_text()) for x in (killed, tmp_path / "ref"))
    assert done["complete"] and done["shards"] == ref["shards"]
    assert all(s["files"] == kept[s["name"]] for s in done["shards"] if s["name"] in kept)
    assert not list(killed.glob(".tmp-*"))


# -------------------------------------------------------------------------- training
def test_training_on_shards_equals_the_corpus_convenience(tmp_path, toy):
    """--data DIR and --corpus FILE (prepared into OUT/data) are one code path: same losses.
    (Two torchrun ranks on prepared shards: tests/test_pretrain_train.py.)"""
    from minialbert.pretrain.train import main

    d, corpus, docs, vocab = toy
    data = tmp_path / "data"
    assert subprocess.run([sys.executable, "-m", "minialbert", "pretrain-data", str(corpus), "--vocab", str(vocab),
                           "--output", str(data), "--quiet"], env=env(), timeout=120).returncode == 0
    run = [*TINY, "--batch-size", "4", "--max-steps", "3", "--log-every", "1", "--optimizer", "adamw"]
    assert main(["--data", str(data), "--output-dir", str(tmp_path / "a"), *run]) == 0
    assert main(["--corpus", str(corpus), "--vocab", str(vocab), "--output-dir", str(tmp_path / "b"), *run]) == 0
    la, lb = ([r["mlm_loss"] for r in map(json.loads, (tmp_path / x / "log.jsonl").read_text().splitlines())
               if "mlm_loss" in r] for x in "ab")
    assert la == lb and len(la) == 3


def test_validation_loss_and_tensorboard_events(tmp_path, toy):
    from minialbert.pretrain.train import main

    d, corpus, docs, vocab = toy
    if not os.environ.get("CI"):
        pytest.importorskip("tensorboard", reason="the [tensorboard] extra is not installed")
    out = tmp_path / "tb"
    assert main(["--corpus", str(corpus), "--vocab", str(vocab), "--valid-fraction", "0.2", "--output-dir", str(out),
                 *TINY, "--batch-size", "4", "--max-steps", "4", "--eval-every", "2", "--eval-examples", "10",
                 "--report-to", "tensorboard"]) == 0
    records = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    evals = [r for r in records if r.get("event") == "eval"]
    assert [r["step"] for r in evals] == [2, 4] and all(r["valid_examples"] == 10 for r in evals)
    assert all(np.isfinite(r["valid_loss"]) for r in evals)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert "train/mlm_loss" in tags and "valid/valid_loss" in tags
    assert [e.value for e in acc.Scalars("valid/valid_loss")] == pytest.approx([r["valid_loss"] for r in evals])


# ---------------------------------------------------------------------- SDPA, compile
def _tiny_model(seed=0, dropout=0.0):
    from minialbert.config import AlbertConfig
    from minialbert.model import AlbertForPreTraining

    config = AlbertConfig(vocab_size=50, embedding_size=16, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                          intermediate_size=37, max_position_embeddings=32, hidden_dropout_prob=dropout,
                          attention_probs_dropout_prob=dropout, classifier_dropout_prob=0.0)
    torch.manual_seed(seed)
    model = AlbertForPreTraining(config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model


def _batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 50, (3, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    mask[2, 5:] = 0
    labels = torch.full_like(ids, -100)
    labels[:, 2] = ids[:, 2]
    labels[0, 6] = ids[0, 6]
    return dict(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids), labels=labels,
                sentence_order_label=torch.tensor([0, 1, 1]))


def test_sdpa_equals_the_written_out_attention():
    """Without output_attentions the fused kernel runs; with it, the explicit softmax. Same
    outputs and same gradients."""
    from minialbert.pretrain.objectives import PretrainingObjective

    model = _tiny_model().train()  # dropout 0: train mode is deterministic
    b = _batch()
    out_fused = model.albert(b["input_ids"], b["attention_mask"])
    out_explicit = model.albert(b["input_ids"], b["attention_mask"], output_attentions=True)
    assert out_fused.attentions is None and len(out_explicit.attentions) == 3
    keep = b["attention_mask"].bool()
    diff = (out_fused.last_hidden_state - out_explicit.last_hidden_state)[keep].abs().max().item()
    assert diff < 1e-5
    # the probabilities are the ones the fused kernel used: softmax rows sum to 1, zero on padding
    probs = out_explicit.attentions[0]
    assert torch.allclose(probs.sum(-1), torch.ones(())) and probs[2, :, :, 5:].abs().max() < 1e-12

    loss = PretrainingObjective(model)(**b)[0]
    grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    from minialbert import model as M

    original = M.Encoder.forward

    def explicit(self, embedded, mask, hidden=False, attentions=False):  # force the written-out path
        return original(self, embedded, mask, hidden, True)

    M.Encoder.forward = explicit
    try:
        loss2 = PretrainingObjective(model)(**b)[0]
        grads2 = torch.autograd.grad(loss2, list(model.parameters()), allow_unused=True)
    finally:
        M.Encoder.forward = original
    assert abs(loss.item() - loss2.item()) < 1e-5
    for g1, g2 in zip(grads, grads2):
        if g1 is not None:
            assert (g1 - g2).abs().max().item() < 1e-5


def test_compiled_model_runs_what_model_py_says_stock_and_modified():
    """torch.compile traces the model's Python as it is now: a monkeypatched layer changes the
    compiled loss exactly as it changes the eager loss. TorchDynamo's trace (what decides which
    code runs) with the aot_eager backend: the C++ code generation of the default inductor
    backend takes minutes on a 2-core machine; scripts/bench_pretrain.py runs inductor and
    checks its loss against eager."""
    from minialbert import model as M
    from minialbert.pretrain.objectives import PretrainingObjective
    from minialbert.training import compile_module

    torch._dynamo.reset()
    b = _batch()
    model = _tiny_model().eval()
    objective = PretrainingObjective(model)
    eager = objective(**b)[0].item()
    compiled = compile_module(objective, True, backend="aot_eager")(**b)[0].item()
    assert abs(compiled - eager) <= 1e-5

    original = M.FeedForward.forward

    def doubled(self, x):  # a researcher's edit: twice the FFN residual branch
        return self.norm(x + 2.0 * self.dropout(self.down(self.act(self.up(x)))))

    M.FeedForward.forward = doubled
    try:
        torch._dynamo.reset()
        eager_mod = objective(**b)[0].item()
        compiled_mod = compile_module(PretrainingObjective(model), True, backend="aot_eager")(**b)[0].item()
    finally:
        M.FeedForward.forward = original
        torch._dynamo.reset()
    assert abs(eager_mod - eager) > 1e-3  # the edit matters ...
    assert abs(compiled_mod - eager_mod) <= 1e-5  # ... and the compiled model has it


# ---------------------------------------------------------------------------- errors
def _one_line_error(call, *words):
    with pytest.raises(MinialbertError) as info:
        call()
    msg = str(info.value)
    assert "\n" not in msg and all(w in msg for w in words), msg
    return msg


def test_bad_input_gives_one_line(tmp_path, toy):
    d, corpus, docs, vocab = toy
    (tmp_path / "empty.txt").write_text("\n\n  \n")
    _one_line_error(lambda: prepare([tmp_path / "empty.txt"], tmp_path / "o1", vocab=vocab), "empty")
    _one_line_error(lambda: prepare([tmp_path / "empty.txt"], tmp_path / "o1b"), "empty")
    (tmp_path / "latin1.txt").write_bytes("first line\ncaf\xe9 au lait\n".encode("latin-1"))
    _one_line_error(lambda: prepare([tmp_path / "latin1.txt"], tmp_path / "o2", vocab=vocab),
                    "latin1.txt", "line 2", "UTF-8", "byte 4")
    (tmp_path / "rows.jsonl").write_text('{"text": "a b c"}\n{"body": "d e f"}\n')
    _one_line_error(lambda: prepare([tmp_path / "rows.jsonl"], tmp_path / "o3", vocab=vocab), "rows.jsonl",
                    "line 2", "text")
    pq.write_table(pa.table({"body": ["x y"]}), tmp_path / "rows.parquet")
    _one_line_error(lambda: prepare([tmp_path / "rows.parquet"], tmp_path / "o4", vocab=vocab), "no column 'text'")
    # a vocabulary without ALBERT's id layout
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(tmp_path / "plain"), vocab_size=100,
                                   hard_vocab_limit=False, minloglevel=2)
    _one_line_error(lambda: prepare([corpus], tmp_path / "o5", vocab=tmp_path / "plain.model"), "not an ALBERT")
    # DATA_DIR prepared with another tokenizer than --vocab
    from minialbert.pretrain.train import main

    data = tmp_path / "data"
    prepare([corpus], data, vocab=vocab)
    other = tmp_path / "other.model"
    train_sentencepiece(docs, other, 110, seed=9)
    _one_line_error(lambda: main(["--data", str(data), "--vocab", str(other), "--output-dir", str(tmp_path / "t"),
                                  *TINY]), "another tokenizer")
    # a truncated shard
    tokens = data / "train-00000" / "tokens.npy"
    tokens.write_bytes(tokens.read_bytes()[:-10])
    _one_line_error(lambda: main(["--data", str(data), "--output-dir", str(tmp_path / "t2"), *TINY]), "truncated")
    # through the CLI: one line on stderr, exit 1
    p = subprocess.run([sys.executable, "-m", "minialbert", "pretrain-data", str(tmp_path / "latin1.txt"),
                        "--output", str(tmp_path / "o6"), "--vocab", str(vocab)], env=env(), capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1 and "byte 4" in p.stderr, p.stderr
