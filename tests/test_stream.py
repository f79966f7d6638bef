"""Streaming into Parquet shards: same vectors as Embedder.embed for every input format, exact
resume after kill -9, refusal of mismatched runs, damaged shards redone, bad input reported on one
line with every completed shard kept."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import make_hf_checkpoint
from minialbert import Embedder, load_vectors
from minialbert.cli import main
from minialbert.errors import MinialbertError
from minialbert.shards import IncompleteRunWarning, iter_vectors
from minialbert.stream import embed_file

if os.environ.get("CI"):
    import pyarrow as pa  # CI installs the [stream] extra: a missing one must fail, not skip
    import pyarrow.parquet as pq
else:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

pytestmark = [pytest.mark.filterwarnings("ignore::minialbert.embed.LongTextWarning"), pytest.mark.usefixtures("one_thread")]

SPM = Path(__file__).parent / "fixtures" / "tokenizer" / "spm" / "spiece.model"
ROOT = Path(__file__).parents[1]
WORDS = ("the of and ALBERT embeddings streaming shard window résumé naïve café 1,024 3.5 (see above) "
         "\"quoted\" £40 €12 日本語 emoji 🙂 comma, semicolon; tab").split()


def corpus(n: int, seed: int = 0, newlines: bool = False) -> list[str]:
    """Mixed lengths (empty to longer than the tiny model's 64 positions), accents, CJK, emoji."""
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        k = 0 if i % 17 == 3 else int(min(rng.lognormvariate(2.0, 0.9), 90))
        text = " ".join(rng.choice(WORDS) for _ in range(k))
        if newlines and i % 11 == 5:
            text += "\nsecond line\r\nthird"
        texts.append(text)
    texts[7] = "   "
    return texts


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    import sentencepiece as spm

    d = tmp_path_factory.mktemp("stream_ckpt")
    vocab = spm.SentencePieceProcessor(model_file=str(SPM)).get_piece_size()
    make_hf_checkpoint(d, "AlbertModel", vocab_size=vocab, num_hidden_layers=2)
    shutil.copy(SPM, d / "spiece.model")
    return d


@pytest.fixture(scope="module")
def embedder(ckpt):
    return Embedder.from_pretrained(ckpt)


def write_input(path: Path, texts: list[str], fmt: str, field: str = "text") -> Path:
    if fmt == "txt":
        path.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    elif fmt == "jsonl":
        lines = [json.dumps({"id": f"doc{i}", field: t, "n": i}, ensure_ascii=False) for i, t in enumerate(texts)]
        lines.insert(4, "   ")  # blank lines are skipped
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif fmt in ("csv", "tsv"):
        with open(path, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, delimiter="\t" if fmt == "tsv" else ",")
            w.writerow(["doc", field, "lang"])
            for i, t in enumerate(texts):
                w.writerow([f"doc{i}", t, "en"])
    elif fmt == "parquet":  # several row groups, none aligned with the windows
        pq.write_table(pa.table({"doc": [f"doc{i}" for i in range(len(texts))], field: texts}), path,
                       row_group_size=37)
    return path


def read_dir(path: Path):
    ids, vectors = load_vectors(path)
    return ids, vectors


@pytest.mark.parametrize("fmt", ["txt", "jsonl", "csv", "tsv", "parquet"])
def test_stream_equals_embed_for_every_format(embedder, tmp_path, fmt):
    texts = corpus(230, seed=1, newlines=fmt != "txt")
    src = write_input(tmp_path / f"in.{fmt}", texts, fmt, field="body" if fmt != "txt" else "text")
    field = None if fmt == "txt" else "body"
    summary = embed_file(embedder, src, tmp_path / "out", field=field, pooling="mean", window=40, with_text=True,
                         batch_size=8)
    assert summary.complete and summary.rows == len(texts) and summary.shards_written == 6
    ids, vectors = load_vectors(tmp_path / "out")
    want = embedder.embed(texts, pooling="mean", batch_size=8)
    assert ids.tolist() == list(range(len(texts)))
    assert vectors.dtype == np.float32 and np.abs(vectors - want).max() <= 1e-6
    # the shards themselves: id, text, vector as fixed_size_list<float32>[H]
    table = pq.read_table(tmp_path / "out" / "part-000001.parquet")
    assert table.schema.field("vector").type == pa.list_(pa.float32(), embedder.dim)
    assert table.column("id").to_pylist() == list(range(40, 80))
    assert table.column("text").to_pylist() == texts[40:80]


def test_chunked_long_texts_and_normalize_stream_too(embedder, tmp_path):
    texts = corpus(60, seed=2)
    src = write_input(tmp_path / "in.txt", texts, "txt")
    embed_file(embedder, src, tmp_path / "out", long_text="chunk", max_length=24, stride=6, normalize=True, window=25)
    want = embedder.embed(texts, long_text="chunk", max_length=24, stride=6, normalize=True)
    assert np.abs(load_vectors(tmp_path / "out")[1] - want).max() <= 1e-6


def test_kept_vectors_do_not_hold_the_batch_hidden_states(embedder):
    """What bounds a window's memory: cls pooling used to return a view of the whole (batch, seq,
    H) output, so every kept row kept its batch's hidden states alive (GBs per window at H=768)."""
    import torch

    ids = torch.randint(5, 50, (8, 40))
    with torch.inference_mode():
        for pooling in ("cls", "mean", "pooler"):
            out = embedder._pooling_step(pooling, None)(ids, torch.ones_like(ids))
            assert out.untyped_storage().nbytes() == 8 * embedder.dim * 4, pooling


def test_load_vectors_mmap_and_iter(embedder, tmp_path):
    texts = corpus(90, seed=3)
    embed_file(embedder, write_input(tmp_path / "in.txt", texts, "txt"), tmp_path / "out", window=40)
    ids, vectors = load_vectors(tmp_path / "out")
    ids2, mapped = load_vectors(tmp_path / "out", mmap=True)
    assert isinstance(mapped, np.memmap) and np.array_equal(np.asarray(mapped), vectors)
    assert np.array_equal(ids2, ids)
    caches = list((tmp_path / "out").glob("vectors-*.npy"))
    assert len(caches) == 1
    before = caches[0].stat().st_mtime_ns
    load_vectors(tmp_path / "out", mmap=True)  # reused, not rebuilt
    assert caches[0].stat().st_mtime_ns == before
    parts = list(iter_vectors(tmp_path / "out"))
    assert [len(i) for i, _ in parts] == [40, 40, 10]
    assert np.array_equal(np.concatenate([v for _, v in parts]), vectors)

    # a directory written by another pipeline: no manifest, rows out of order across files
    other = tmp_path / "other"
    other.mkdir()
    order = np.random.default_rng(0).permutation(len(ids))
    for k, rows in enumerate(np.array_split(order, 3)):
        pq.write_table(pa.table({"id": ids[rows], "vector": pa.FixedSizeListArray.from_arrays(
            pa.array(vectors[rows].reshape(-1)), vectors.shape[1])}), other / f"x{k}.parquet")
    ids3, vectors3 = load_vectors(other)
    assert np.array_equal(ids3, ids) and np.array_equal(vectors3, vectors)


def _cli(ckpt, src, out, *extra):
    return [sys.executable, "-m", "minialbert", "embed", "--model", str(ckpt), "--input", str(src),
            "--output", f"{out}/", "--window", "25", "--batch-size", "2", "--resume", *extra]


def _shards_named(out: Path) -> int:
    try:
        return len(json.loads((out / "manifest.json").read_text())["shards"])
    except (OSError, ValueError):  # not there yet (the rename is atomic, so never half-written)
        return 0


def _kill_when(proc: subprocess.Popen, out: Path, shards: int) -> None:
    deadline = time.monotonic() + 120
    while _shards_named(out) < shards:
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "no shard was written in 120 s"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_kill_9_and_resume_is_bit_identical(ckpt, embedder, tmp_path):
    texts = corpus(600, seed=4)
    src = write_input(tmp_path / "in.txt", texts, "txt")
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    killed = subprocess.Popen(_cli(ckpt, src, tmp_path / "resumed", "-q"), cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _kill_when(killed, tmp_path / "resumed", 1)  # right after the first shard lands
    assert not json.loads((tmp_path / "resumed" / "manifest.json").read_text())["complete"]
    # the uninterrupted run, in this process (one torch thread, as the subprocesses)
    embed_file(embedder, src, tmp_path / "full", window=25, batch_size=2)
    resumed = subprocess.run(_cli(ckpt, src, tmp_path / "resumed"), cwd=ROOT, env=env, capture_output=True,
                             text=True)
    assert resumed.returncode == 0, resumed.stderr

    ids_a, a = load_vectors(tmp_path / "full")
    ids_b, b = load_vectors(tmp_path / "resumed")
    assert ids_b.tolist() == list(range(len(texts)))  # no id missing, none twice
    assert np.array_equal(ids_a, ids_b) and a.tobytes() == b.tobytes()  # bit for bit
    assert not list((tmp_path / "resumed").glob(".*.tmp"))  # the killed run's temp files are gone
    assert "part-000023.parquet written" in resumed.stderr and "wrote" in resumed.stderr


def test_prompts_stream_too_and_are_part_of_the_run(ckpt, embedder, tmp_path, capsys):
    """A prompt (sentence-transformers style) changes every vector; the stream applies it as
    Embedder.embed does, and a resume with another prompt is refused."""
    texts = corpus(45, seed=4)
    src = write_input(tmp_path / "in.txt", texts, "txt")
    embed_file(embedder, src, tmp_path / "out", prompt="query: ", window=20)
    want = embedder.embed(texts, prompt="query: ")
    got = load_vectors(tmp_path / "out")[1]
    assert np.abs(got - want).max() <= 1e-6 and np.abs(got - embedder.embed(texts)).max() > 1e-3
    code = main(["embed", "--model", str(ckpt), "--input", str(src), "--output", f"{tmp_path / 'out'}/",
                 "--window", "20", "--resume", "--prompt", "passage: ", "-q"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "prompt" in err, err


@pytest.mark.parametrize("flags", [["--int8"], ["--backend", "onnxruntime"]])
def test_streaming_with_int8_or_onnxruntime(ckpt, embedder, tmp_path, flags):
    """The faster runtimes stream too (and their manifest says which ran): int8 within cosine
    0.999 of the float32 vectors, ONNX Runtime within 1e-4."""
    texts = [t for t in corpus(40, seed=9) if t.strip()]
    src = write_input(tmp_path / "in.txt", texts, "txt")
    assert main(["embed", "--model", str(ckpt), "--input", str(src), "--output", f"{tmp_path}/out/", "-q",
                 "--pooling", "mean", *flags]) == 0
    ids, got = load_vectors(tmp_path / "out")
    want = embedder.embed(texts, pooling="mean")
    assert ids.tolist() == list(range(len(texts)))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    if flags == ["--int8"]:
        cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
        assert cos.min() >= 0.999 and np.abs(got - want).max() > 1e-6
        assert manifest["options"]["runtime"] == "torch-int8"
    else:
        assert np.abs(got - want).max() <= 1e-4
        assert manifest["options"]["runtime"] == "onnxruntime"


def test_mismatched_runs_are_refused(ckpt, embedder, tmp_path, capsys):
    src = write_input(tmp_path / "in.txt", corpus(50, seed=5), "txt")
    out = tmp_path / "out"
    base = ["embed", "--model", str(ckpt), "--input", str(src), "--output", f"{out}/", "--window", "20", "-q"]
    assert main(base) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def refused(argv, *needles):
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 1 and err.count("\n") == 1, err
        for needle in needles:
            assert needle in err, err
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing touched

    refused(base, "already holds a complete run", "--resume")
    refused(base + ["--resume", "--pooling", "mean"], "pooling", '"mean" now, "cls" there')
    refused(base + ["--resume", "--window", "25"], "window")
    refused(base + ["--resume", "--int8"], "runtime", '"torch-int8" now, "torch" there')
    other = tmp_path / "other_ckpt"
    import sentencepiece as spm

    make_hf_checkpoint(other, "AlbertModel", seed=1, num_hidden_layers=2,
                       vocab_size=spm.SentencePieceProcessor(model_file=str(SPM)).get_piece_size())
    shutil.copy(SPM, other / "spiece.model")
    refused(["embed", "--model", str(other), *base[3:], "--resume"], "model:", "different weights")
    # the same model from another folder is the same model: accepted (and nothing left to do)
    moved = tmp_path / "moved_ckpt"
    shutil.copytree(ckpt, moved)
    assert main(["embed", "--model", str(moved), *base[3:], "--resume"]) == 0
    # an input that changed under completed shards
    changed = write_input(tmp_path / "in2.txt", corpus(50, seed=6), "txt")
    partial = tmp_path / "partial"
    embed_file(embedder, changed, partial, window=20)
    manifest = json.loads((partial / "manifest.json").read_text())
    manifest["complete"] = False
    manifest["shards"] = manifest["shards"][:2]
    (partial / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(MinialbertError, match="input changed"):
        embed_file(embedder, src, partial, window=20, resume=True)
    # another process (here: another open) writing the directory
    from minialbert.shards import OutputDirectory

    holder = OutputDirectory.open(tmp_path / "busy", {"model": {}, "options": {}, "input": {}, "dim": 1}, resume=False)
    with pytest.raises(MinialbertError, match="being written by another minialbert run"):
        embed_file(embedder, src, tmp_path / "busy", window=20, resume=True)
    holder.close()
    # not our directory
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(MinialbertError, match="not empty and holds no manifest.json"):
        embed_file(embedder, src, stranger, window=20)


def test_damaged_shards_are_detected_and_redone(embedder, tmp_path):
    texts = corpus(130, seed=7)
    src = write_input(tmp_path / "in.txt", texts, "txt")
    out = tmp_path / "out"
    embed_file(embedder, src, out, window=30)
    ids, want = load_vectors(out)
    last, middle = out / "part-000004.parquet", out / "part-000001.parquet"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # truncated
    data = bytearray(middle.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    middle.write_bytes(bytes(data))
    (out / ".part-000002.parquet.x1y2.tmp").write_bytes(b"junk of a killed run")
    redone = []
    summary = embed_file(embedder, src, out, window=30, resume=True, on_redo=redone.append)
    assert sorted(redone) == ["part-000001.parquet", "part-000004.parquet"]
    assert summary.shards_written == 2 and summary.embedded == 30 + 10 and summary.complete
    ids2, got = load_vectors(out)
    assert np.array_equal(ids, ids2) and got.tobytes() == want.tobytes()
    assert not list(out.glob(".*.tmp"))

    # killed between the shard's rename and the manifest update: the file is there, unnamed
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["shards"].pop()
    manifest["complete"] = False
    (out / "manifest.json").write_text(json.dumps(manifest))
    summary = embed_file(embedder, src, out, window=30, resume=True)
    assert summary.shards_written == 1 and load_vectors(out)[1].tobytes() == want.tobytes()


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_bad_input_is_one_line_and_keeps_completed_shards(ckpt, embedder, tmp_path, capsys):
    texts = corpus(200, seed=8)
    out = tmp_path / "out"
    base = ["--model", str(ckpt), "--output", f"{out}/", "--window", "40", "-q"]

    # an unreadable line (invalid UTF-8) in the fourth window: three shards done and kept
    raw = [t.encode() for t in texts]
    raw[129] = b"caf\xe9 latin-1"
    bad = tmp_path / "in.txt"
    bad.write_bytes(b"\n".join(raw) + b"\n")
    err = _one_line_error(capsys, ["embed", "--input", str(bad), *base])
    assert "line 130 is not valid UTF-8" in err and "3 completed shard(s) (120 texts)" in err and "--resume" in err
    assert sorted(p.name for p in out.glob("part-*")) == [f"part-{k:06d}.parquet" for k in range(3)]
    with pytest.warns(IncompleteRunWarning, match="unfinished run: 120 texts"):
        assert load_vectors(out)[0].tolist() == list(range(120))
    # fix the line and resume: the kept shards are checked against the input and reused
    texts[129] = "café latin-1"
    write_input(bad, texts, "txt")
    assert main(["embed", "--input", str(bad), *base, "--resume"]) == 0
    assert np.abs(load_vectors(out)[1] - embedder.embed(texts)).max() <= 1e-6

    # a JSON line without the field, after two windows
    out2 = tmp_path / "out2"
    lines = [json.dumps({"text": t}) for t in texts[:100]]
    lines[90] = json.dumps({"body": "no text field here"})
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    err = _one_line_error(capsys, ["embed", "--input", str(tmp_path / "in.jsonl"), "--model", str(ckpt),
                                   "--output", f"{out2}/", "--window", "40", "-q"])
    assert "line 91 has no field 'text' (its fields: body)" in err and "2 completed shard(s)" in err
    assert json.loads((out2 / "manifest.json").read_text())["shards"][-1]["rows"] == 40

    # a CSV whose header lacks the column: refused before anything is written
    (tmp_path / "in.csv").write_text("doc,body\n1,hello\n")
    err = _one_line_error(capsys, ["embed", "--input", str(tmp_path / "in.csv"), "--model", str(ckpt),
                                   "--output", f"{tmp_path / 'out3'}/"])
    assert "has no column 'text' (its columns: doc, body)" in err and "--field" in err
    assert not (tmp_path / "out3").exists()

    # a Parquet file without that column, resumed into a directory of completed shards
    pqin = write_input(tmp_path / "in.parquet", texts[:60], "parquet")
    out4 = tmp_path / "out4"
    assert main(["embed", "--input", str(pqin), "--model", str(ckpt), "--output", f"{out4}/", "--window", "40",
                 "-q"]) == 0
    before = {p.name: p.read_bytes() for p in out4.iterdir()}
    pq.write_table(pa.table({"body": texts[:60]}), pqin)
    err = _one_line_error(capsys, ["embed", "--input", str(pqin), "--model", str(ckpt), "--output", f"{out4}/",
                                   "--window", "40", "--resume"])
    assert "has no column 'text' (its columns: body)" in err
    assert {p.name: p.read_bytes() for p in out4.iterdir()} == before

    # a null text in a Parquet column (row numbers count from 1, as line numbers do); not Parquet at all
    pq.write_table(pa.table({"text": texts[:50] + [None] + texts[51:60]}), pqin, row_group_size=16)
    err = _one_line_error(capsys, ["embed", "--input", str(pqin), "--model", str(ckpt), "--output",
                                   f"{tmp_path / 'out5'}/", "--window", "40", "-q"])
    assert "row 51 has no text (null in column 'text')" in err and "1 completed shard(s) (40 texts)" in err
    (tmp_path / "fake.parquet").write_text("not parquet")
    err = _one_line_error(capsys, ["embed", "--input", str(tmp_path / "fake.parquet"), "--model", str(ckpt),
                                   "--output", f"{tmp_path / 'out6'}/"])
    assert "not a readable Parquet file" in err


def test_cli_directory_output_rules(ckpt, tmp_path, capsys, monkeypatch):
    src = write_input(tmp_path / "in.txt", corpus(10), "txt")
    m = ["--model", str(ckpt)]
    assert "only work(s) with a directory output" in _one_line_error(
        capsys, ["embed", "--input", str(src), "-o", str(tmp_path / "v.npy"), "--resume", *m])
    assert "give it with --input FILE" in _one_line_error(capsys, ["embed", "hello", "-o", f"{tmp_path}/d/", *m])
    assert "a directory of Parquet shards (end the path with /)" in _one_line_error(
        capsys, ["embed", "--input", str(src), "-o", str(tmp_path / "vectors"), *m])
    (tmp_path / "empty.txt").write_text("")
    assert "it is empty" in _one_line_error(capsys, ["embed", "--input", str(tmp_path / "empty.txt"),
                                                     "-o", f"{tmp_path}/e/", *m])
    assert not (tmp_path / "e").exists()
    # without pyarrow, a directory output names the extra to install
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    assert "pip install 'minialbert[stream]'" in _one_line_error(
        capsys, ["embed", "--input", str(src), "-o", f"{tmp_path}/p/", *m])
