"""The `minialbert` command: outputs, inputs, atomic writes, and one clear line per user error."""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_hf_checkpoint, make_hub_cache
from minialbert.cli import main

SPM = Path(__file__).parent / "fixtures" / "tokenizer" / "spm" / "spiece.model"
ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """An AlbertForPreTraining checkpoint with a tokenizer: serves embed, similarity and fill-mask."""
    import sentencepiece as spm

    d = tmp_path_factory.mktemp("cli_ckpt")
    vocab = spm.SentencePieceProcessor(model_file=str(SPM)).get_piece_size()
    ref = make_hf_checkpoint(d, "AlbertForPreTraining", vocab_size=vocab, num_hidden_layers=2)
    shutil.copy(SPM, d / "spiece.model")
    return d, ref


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def reference(ckpt):
    """Vectors computed by transformers alone: its tokenizer and model, each text on its own
    (no padding), pooled by hand. `layers` averages those hidden states."""
    import transformers

    d, ref = ckpt
    tok = transformers.AlbertTokenizer.from_pretrained(d)

    def vectors(texts, pooling="mean", layers=(-1,)):
        rows = []
        for text in texts:
            ids = tok(text)["input_ids"]
            with torch.no_grad():
                out = ref.albert(torch.tensor([ids]), output_hidden_states=True)
            h = torch.stack([out.hidden_states[k][0] for k in layers]).mean(0)
            rows.append(h.mean(0) if pooling == "mean" else h[0])
        return torch.stack(rows).numpy()

    return vectors


def test_embed_outputs_match_transformers(ckpt, reference, tmp_path, capsys):
    d, _ = ckpt
    texts = ["first text", "", "a second, longer text with more words"]
    expected = reference(texts)

    code, out, _ = run(["embed", *texts, "--model", d, "--pooling", "mean"], capsys)
    assert code == 0
    rows = json.loads(out)
    assert [r["text"] for r in rows] == texts
    assert np.abs(np.array([r["vector"] for r in rows]) - expected).max() < 1e-5

    inp = tmp_path / "in.txt"
    inp.write_text("\n".join(texts) + "\n", encoding="utf-8")
    code, _, err = run(["embed", "--input", inp, "--output", tmp_path / "v.npy", "--model", d, "--pooling", "mean"], capsys)
    assert code == 0 and "wrote 3 x 32" in err
    mat = np.load(tmp_path / "v.npy")
    assert mat.dtype == np.float32 and mat.shape == (3, 32) and np.abs(mat - expected).max() < 1e-5

    code, _, _ = run(["embed", "--input", inp, "-o", tmp_path / "v.jsonl", "-m", d, "--pooling", "mean", "-q"], capsys)
    lines = [json.loads(x) for x in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert [r["text"] for r in lines] == texts
    assert np.abs(np.array([r["vector"] for r in lines]) - expected).max() < 1e-5


def test_embed_int8_and_onnxruntime_backends_against_transformers(ckpt, reference, tmp_path, capsys):
    """--int8 (the engine's int8 GEMMs) stays within cosine 0.999 of transformers' float32 vectors
    and is not them (it really ran int8); --backend onnxruntime equals them to 1e-4."""
    d, _ = ckpt
    texts = ["first text", "a second, longer text with more words", "x y z " * 6]
    expected = reference(texts)
    code, out, err = run(["embed", *texts, "-m", d, "--pooling", "mean", "--int8"], capsys)
    assert code == 0, err
    got = np.array([r["vector"] for r in json.loads(out)])
    cos = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    assert cos.min() >= 0.999 and np.abs(got - expected).max() > 1e-5
    code, out, err = run(["embed", *texts, "-m", d, "--pooling", "mean", "--backend", "onnxruntime"], capsys)
    assert code == 0, err
    assert np.abs(np.array([r["vector"] for r in json.loads(out)]) - expected).max() < 1e-4


@pytest.mark.parametrize("vnni, weights", [(True, "U8S8"), (False, "U8U8")])
def test_int8_onnxruntime_exports_in_memory_for_this_cpu(ckpt, reference, capsys, fake_int8_flags, vnni, weights):
    """--backend onnxruntime --int8 on a checkpoint: an in-memory int8 export with the weights this
    CPU runs fastest without saturating (s8 with VNNI/AMX, u8 elsewhere; the flags are faked here),
    within cosine 0.999 of transformers' float32 vectors and not equal to them."""
    from minialbert import Embedder

    real = fake_int8_flags(vnni)
    d, _ = ckpt
    texts = ["first text", "a second, longer text with more words", "x y z " * 6]
    expected = reference(texts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # s8 on a real CPU without VNNI warns; the fake flags say it has it
        code, out, err = run(["embed", *texts, "-m", d, "--pooling", "mean", "--int8", "--backend", "onnxruntime"],
                             capsys)
    assert code == 0, err
    got = np.array([r["vector"] for r in json.loads(out)])
    cos = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    # s8 forced onto a real CPU without VNNI saturates (what the warning of OnnxAlbert says): looser there
    bound = 0.999 if weights == "U8U8" or real["vnni"] or real["amx"] else 0.99
    assert cos.min() >= bound and np.abs(got - expected).max() > 1e-5
    embedder = Embedder.from_pretrained(d, backend="onnxruntime", int8=True)
    assert embedder.model.int8 == f"{weights} per-channel" and embedder.runtime == "onnxruntime-int8"


@pytest.mark.parametrize("argv, message", [
    (["--int8", "--layer", "-2"], "--int8 applies to the last layer"),
    (["--int8", "--dtype", "bfloat16"], "int8 runs float32 models on the CPU"),
    (["--backend", "onnxruntime", "--layer", "-2"], "the onnxruntime backend returns the last layer only"),
])
def test_int8_and_backend_misuse_is_one_line(ckpt, capsys, argv, message):
    d, _ = ckpt
    code, out, err = run(["embed", "x", "-m", d, *argv], capsys)
    assert code == 1 and message in err and err.count("\n") == 1 and out == ""


@pytest.mark.parametrize("form, layer, layers", [("space", "-1,-2", (-1, -2)), ("equals", "-1,-2", (-1, -2)),
                                                 ("space", "-2", (-2,)), ("space", "0,-1", (0, -1))])
def test_layer_flag_in_both_forms(ckpt, reference, capsys, form, layer, layers):
    """`--layer -1,-2` (the README's spelling) and `--layer=-1,-2` both average those layers."""
    d, _ = ckpt
    texts = ["one text", "and another one"]
    flag = ["--layer", layer] if form == "space" else [f"--layer={layer}"]
    code, out, err = run(["embed", *texts, *flag, "-m", d, "--pooling", "cls"], capsys)
    assert code == 0, err
    got = np.array([r["vector"] for r in json.loads(out)])
    assert np.abs(got - reference(texts, "cls", layers)).max() < 1e-5


@pytest.mark.parametrize("argv, code, message", [
    (["embed", "x", "--top-k", "-1"], 2, "unrecognized arguments"),   # embed has no --top-k
    (["similarity", "q", "a", "--top-k", "-1"], 2, "--top-k must be at least 1"),
    (["embed", "x", "--batch-size", "-3"], 2, "--batch-size must be at least 1"),
    (["embed", "x", "--layer", "-1,x"], 2, "argument --layer: takes an integer or a comma-separated list"),
    (["embed", "x", "--layer", "last"], 2, "argument --layer: takes an integer or a comma-separated list"),
    (["embed", "x", "--max-length", "-5"], 1, "max_length must be between 3 and 64"),
    (["embed", "a longer text of several words", "--stride", "-1", "--long-text", "chunk", "--max-length", "4"], 1,
     "stride must be in [0, 2) for max_length 4, got -1"),
    (["info", "--embedding-size", "-4", "albert-base-v2"], 1, "embedding_size must be a positive integer"),
])
def test_negative_values_reach_their_checks(ckpt, capsys, argv, code, message):
    """Every flag that takes a number accepts a negative one after a space, and says what is
    wrong with it, instead of argparse's "expected one argument"."""
    d, _ = ckpt
    model = [] if argv[0] == "info" else ["-m", d]
    try:
        got, _, err = run(argv + model, capsys)
    except SystemExit as e:
        got, err = e.code, capsys.readouterr().err
    assert got == code and message in err and "expected one argument" not in err, err


def test_words_after_double_dash_stay_texts(ckpt, capsys):
    d, _ = ckpt
    code, out, _ = run(["embed", "-m", d, "--layer", "-1", "--", "-1,-2", "--layer"], capsys)
    assert code == 0 and [r["text"] for r in json.loads(out)] == ["-1,-2", "--layer"]


def test_embed_jsonl_field_stdin_and_normalize(ckpt, tmp_path, capsys, monkeypatch):
    d, _ = ckpt
    src = tmp_path / "docs.jsonl"
    src.write_text('{"id": 1, "body": "alpha beta"}\n\n{"id": 2, "body": "gamma"}\n', encoding="utf-8")
    code, out, _ = run(["embed", "-i", src, "--field", "body", "-m", d, "--normalize"], capsys)
    rows = json.loads(out)
    assert code == 0 and [r["text"] for r in rows] == ["alpha beta", "gamma"]
    assert np.allclose(np.linalg.norm([r["vector"] for r in rows], axis=1), 1.0, atol=1e-5)

    class FakeStdin:
        buffer = io.BytesIO("from stdin\nsecond line\n".encode())

        def isatty(self):
            return False

    monkeypatch.setattr(sys, "stdin", FakeStdin())
    code, out, _ = run(["embed", "-m", d], capsys)
    assert code == 0 and [r["text"] for r in json.loads(out)] == ["from stdin", "second line"]


def test_embed_tokens_output(ckpt, tmp_path, capsys):
    d, _ = ckpt
    code, _, _ = run(["embed", "hello world", "--tokens", "-o", tmp_path / "t.jsonl", "-m", d], capsys)
    row = json.loads((tmp_path / "t.jsonl").read_text())
    assert code == 0 and row["tokens"][0] == "[CLS]" and row["tokens"][-1] == "[SEP]"
    assert len(row["vectors"]) == len(row["tokens"]) == len(row["offsets"]) and row["offsets"][0] is None


def test_output_is_atomic(ckpt, tmp_path, capsys, monkeypatch):
    d, _ = ckpt
    target = tmp_path / "v.npy"
    target.write_bytes(b"previous content")

    def exploding_save(f, arr):
        f.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", exploding_save)
    code, _, err = run(["embed", "some text", "-o", target, "-m", d], capsys)
    assert code == 130 and "interrupted" in err
    assert target.read_bytes() == b"previous content"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.npy"]  # no temp file left behind


@pytest.mark.parametrize("setup, argv, message", [
    (None, ["embed", "-i", "{tmp}/missing.txt"], "input file not found: "),
    ("badutf8", ["embed", "-i", "{tmp}/bad.txt"], "line 2 is not valid UTF-8"),
    ("jsonl", ["embed", "-i", "{tmp}/d.jsonl", "--field", "nope"], "line 1 has no field 'nope' (its fields: body, id)"),
    ("badjson", ["embed", "-i", "{tmp}/b.jsonl"], "line 2 is not valid JSON"),
    (None, ["embed", "x", "-o", "{tmp}/v.csv"], "unknown output format '.csv'"),
    (None, ["embed", "x", "--tokens", "-o", "{tmp}/v.npy"], "unknown output format '.npy'"),
    (None, ["embed", "x", "-o", "{tmp}/no/such/dir/v.npy"], "does not exist"),
    (None, ["embed", "x", "--device", "nosuchdevice"], "cannot use device 'nosuchdevice'"),
    ("empty", ["embed", "-i", "{tmp}/empty.txt"], "no texts in "),
])
def test_embed_user_errors(ckpt, tmp_path, capsys, setup, argv, message):
    d, _ = ckpt
    if setup == "badutf8":
        (tmp_path / "bad.txt").write_bytes(b"fine line\nbad \xff byte\n")
    elif setup == "jsonl":
        (tmp_path / "d.jsonl").write_text('{"id": 1, "body": "x"}\n')
    elif setup == "empty":
        (tmp_path / "empty.txt").write_text("")
    elif setup == "badjson":
        (tmp_path / "b.jsonl").write_text('{"text": "x"}\n{oops\n')
    code, out, err = run([a.format(tmp=tmp_path) for a in argv] + ["-m", d], capsys)
    assert code == 1
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert out == ""


def test_unknown_model_offline_is_one_line_without_traceback(tmp_path):
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty-cache"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "minialbert", "embed", "hello", "--model", "nobody/no-such-model"],
                         capture_output=True, text=True, cwd=ROOT, env={**env, "HOME": str(tmp_path)})
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert "not in the local Hugging Face cache" in out.stderr and "--model PATH" in out.stderr
    missing = subprocess.run([sys.executable, "-m", "minialbert", "embed", "hello", "--model", "./not/a/dir"],
                             capture_output=True, text=True, cwd=tmp_path, env={**env, "HOME": str(tmp_path)})
    assert missing.returncode == 1 and "no such directory: ./not/a/dir" in missing.stderr


def test_embed_from_hub_cache_by_repo_id(ckpt, tmp_path, capsys):
    d, _ = ckpt
    cache = tmp_path / "hub"
    make_hub_cache(cache, "albert/albert-base-v2", d)
    code, out, _ = run(["embed", "hello", "--offline", "--cache-dir", cache], capsys)  # default model: albert-base-v2
    assert code == 0 and len(json.loads(out)[0]["vector"]) == 32


def test_similarity_matches_transformers(ckpt, reference, capsys):
    d, _ = ckpt
    query, cands = "the cat sat", ["a dog ran", "the cat sat", "something else entirely"]
    code, out, _ = run(["similarity", query, *cands, "-m", d, "-k", "2"], capsys)
    lines = [line.split("\t") for line in out.strip().splitlines()]
    q, c = reference([query]), reference(cands)  # mean pooling: the default for plain checkpoints
    cos = (c @ q[0]) / (np.linalg.norm(c, axis=1) * np.linalg.norm(q[0]))
    best = np.argsort(-cos)[:2]
    assert code == 0 and [t for _, t in lines] == [cands[i] for i in best]
    assert np.allclose([float(s) for s, _ in lines], cos[best], atol=1e-4)  # printed with 4 decimals
    code, out, _ = run(["similarity", query, *cands, "-m", d, "--layer", "-1,-2", "--pooling", "cls"], capsys)
    q, c = reference([query], "cls", (-1, -2)), reference(cands, "cls", (-1, -2))
    cos = (c @ q[0]) / (np.linalg.norm(c, axis=1) * np.linalg.norm(q[0]))
    assert code == 0 and [line.split("\t")[1] for line in out.strip().splitlines()] == [cands[i] for i in np.argsort(-cos)]


@pytest.mark.parametrize("layout", ["spiece.model", "tokenizer.json only"])
def test_fill_mask_matches_transformers(ckpt, layout, tmp_path, capsys):
    """Predictions equal transformers' (its tokenizer, its MLM head). The second layout is what
    transformers v5's save_pretrained writes: tokenizer.json and no spiece.model."""
    import transformers

    d, ref = ckpt
    from minialbert.fill_mask import FillMask

    hf_tok = transformers.AlbertTokenizer.from_pretrained(d)
    if layout != "spiece.model":
        shutil.copytree(d, tmp_path / "m")
        d = tmp_path / "m"
        (d / "spiece.model").unlink()
        hf_tok.save_pretrained(d)
        assert not (d / "spiece.model").exists()
    fill = FillMask.from_pretrained(d)
    text = "Paris is the [MASK] of France."
    preds = fill(text, top_k=3)[0]
    ids = hf_tok(text)["input_ids"]
    pos = ids.index(hf_tok.mask_token_id)
    with torch.no_grad():
        probs = torch.softmax(ref(torch.tensor([ids])).prediction_logits[0, pos], -1)
    top = torch.topk(probs, 3)
    assert [p.token_id for p in preds] == top.indices.tolist()
    assert [p.token for p in preds] == hf_tok.convert_ids_to_tokens(top.indices.tolist())
    assert np.allclose([p.score for p in preds], top.values.numpy(), atol=1e-5)
    code, out, _ = run(["fill-mask", text, "-m", d, "-k", "3"], capsys)
    assert code == 0 and len(out.strip().splitlines()) == 3
    code, _, err = run(["fill-mask", "no mask here", "-m", d], capsys)
    assert code == 1 and "no [MASK] token" in err


def test_info(tmp_path, capsys):
    code, out, _ = run(["info", "albert-base-v2"], capsys)
    assert code == 0 and "11,683,584" in out and "= AlbertModel" in out
    make_hf_checkpoint(tmp_path, "AlbertModel")
    code, out, _ = run(["info", tmp_path], capsys)
    n = sum(p.numel() for p in __import__("transformers").AlbertModel.from_pretrained(tmp_path).parameters())
    assert code == 0 and f"{n:,}" in out
    code, _, err = run(["info", tmp_path / "nope"], capsys)
    assert code == 1 and "no such directory" in err


def test_pretrain_is_passed_through_to_its_own_parser(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["pretrain", "--help"])
    assert e.value.code == 0 and "--corpus" in capsys.readouterr().out
    code, _, err = run(["pretrain", "--corpus", tmp_path / "none.txt", "--output-dir", tmp_path / "out"], capsys)
    assert code == 1 and err.strip() == f"minialbert pretrain: error: corpus file not found: {tmp_path / 'none.txt'}"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", [["embed", "some text"], ["similarity", "q", "a", "b"], ["fill-mask", "a [MASK]"],
                                     ["classify", "some text"], ["serve"]])
def test_threads_option_sets_torch_threads(ckpt, capsys, monkeypatch, command):
    """--threads N sets torch's intra-op threads before the command runs, also for threads the
    command starts later (serve's batching thread); N below 1 is a one-line error."""
    import threading

    import minialbert.cli as cli

    d, _ = ckpt
    seen = {}

    def record(*args, **kwargs):
        worker = threading.Thread(target=lambda: seen.setdefault("worker", torch.get_num_threads()))
        worker.start()
        worker.join()
        seen["main"] = torch.get_num_threads()
        return 0

    before = torch.get_num_threads()
    wanted = before + 1  # differs from the default on any machine
    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: _with_func(parser, command[0], record))
    try:
        code, _, err = run([*command, "-m", d, "--threads", wanted], capsys)
        assert code == 0, err
        assert seen == {"main": wanted, "worker": wanted}
    finally:
        torch.set_num_threads(before)
    with pytest.raises(SystemExit):
        main([*command, "-m", str(d), "--threads", "0"])
    err = capsys.readouterr().err
    assert "--threads must be at least 1" in err and "Traceback" not in err
    assert torch.get_num_threads() == before


def _with_func(parser, command, func):
    """The parser with `command`'s handler replaced (set_defaults captured the original)."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub.choices[command].set_defaults(func=func)
    return parser


def test_threads_with_ray_is_refused(ckpt, capsys):
    d, _ = ckpt
    with pytest.raises(SystemExit):
        main(["embed", "-i", "x.txt", "-o", "out/", "--ray", "--threads", "2", "-m", str(d)])
    assert "with --ray each actor runs --ray-cpus threads" in capsys.readouterr().err
