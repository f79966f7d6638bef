"""What a new user tripped on in the `minialbert` command (issue 26): an abbreviated flag silently
accepted, the top-level usage for a subcommand's bad value, `tag` running a sequence classifier,
and a failed `finetune` leaving an empty OUT/checkpoint/ behind."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import make_hf_checkpoint
from minialbert.cli import _parsers, build_parser
from minialbert.cli import main as cli

SPM = Path(__file__).resolve().parent / "fixtures" / "tokenizer" / "spm" / "spiece.model"


@pytest.fixture(scope="module")
def sequence_classifier(tmp_path_factory):
    """A tiny transformers AlbertForSequenceClassification (3 labels) with the test tokenizer."""
    d = tmp_path_factory.mktemp("seqcls")
    make_hf_checkpoint(d, "AlbertForSequenceClassification", vocab_size=_vocab_size(), num_labels=3)
    shutil.copy(SPM, d / "spiece.model")
    return d


def test_abbreviated_flags_are_rejected(sequence_classifier, capsys):
    with pytest.raises(SystemExit) as e:  # --poolin used to mean --pooling
        cli(["embed", "a text", "--poolin", "mean", "-m", str(sequence_classifier)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("usage: minialbert embed ")
    assert err.endswith("minialbert embed: error: unrecognized arguments: --poolin mean\n")
    for argv in (["export", "onnx", "m", "out.onnx", "--per-t"], ["finetune", "--trai", "x.csv", "--output-dir", "o"],
                 ["pretrain", "--corp", "x.txt", "--output-dir", "o"], ["classify", "x", "--all", "-m", "m"]):
        with pytest.raises(SystemExit) as e:
            cli(argv)
        assert e.value.code == 2, argv
        err = capsys.readouterr().err
        assert "unrecognized arguments" in err or "required" in err, (argv, err)
    from minialbert.finetune.train import build_parser as finetune_parser
    from minialbert.pretrain.train import build_parser as pretrain_parser

    parsers = [*_parsers(build_parser()), finetune_parser(), pretrain_parser()]
    assert len(parsers) > 12 and not [p.prog for p in parsers if p.allow_abbrev]


@pytest.mark.parametrize("command", ["embed", "classify", "similarity"])
def test_a_bad_value_prints_the_subcommands_usage(command, capsys):
    argv = [command, "some text", "--batch-size", "0"]
    if command == "similarity":
        argv.insert(2, "a candidate")
    with pytest.raises(SystemExit) as e:
        cli(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert err.startswith(f"usage: minialbert {command} ") and "COMMAND ..." not in err, err
    assert err.endswith(f"minialbert {command}: error: --batch-size must be at least 1\n")


def test_tag_refuses_a_sequence_classifier(sequence_classifier, capsys):
    code = cli(["tag", "John lives in Paris", "-m", str(sequence_classifier)])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err == (f"minialbert tag: error: {sequence_classifier} is an AlbertForSequenceClassification checkpoint, "
                   "not an AlbertForTokenClassification: use TextClassifier (minialbert classify) for it\n")
    code = cli(["answer", "-Q", "who?", "-C", "John lives in Paris", "-m", str(sequence_classifier)])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("minialbert answer: error: ") and err.endswith(
        "not an AlbertForQuestionAnswering: use TextClassifier (minialbert classify) for it\n"), err
    assert cli(["classify", "John lives in Paris", "-m", str(sequence_classifier)]) == 0  # the right command
    assert '"label": "LABEL_' in capsys.readouterr().out


def test_a_failed_finetune_leaves_no_output_folder(tmp_path, capsys):
    from minialbert.finetune import toy

    toy.write_base_checkpoint(tmp_path / "base", vocab_file=SPM, hidden_size=32, intermediate_size=37,
                              embedding_size=16)
    (tmp_path / "train.csv").write_text("sentence,label\nmany people came,a\nthe flow,b\n", encoding="utf-8")
    common = ["finetune", "--model", str(tmp_path / "base"), "--train", str(tmp_path / "train.csv"), "--quiet",
              "--threads", "1"]
    out = tmp_path / "run"
    code = cli([*common, "--output-dir", str(out)])  # the text column is called "sentence", not "text"
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and err.startswith("minialbert finetune: error: "), err
    assert not out.exists()  # was: an empty run/checkpoint/

    (tmp_path / "file").write_text("")  # an output folder that cannot be made: said before any loading
    code = cli([*common, "--output-dir", str(tmp_path / "file" / "run")])
    err = capsys.readouterr().err
    assert code == 1 and err == f"minialbert finetune: error: cannot create {tmp_path / 'file' / 'run'}: " \
                                f"{tmp_path / 'file'} is not a directory\n"


def test_the_readme_way_to_run_an_int8_export_beside_a_float32_one(tmp_path, capsys):
    """An export folder may hold model.onnx and model-int8.onnx: the folder picks model.onnx, and
    the speed guide's command names the int8 file. Needs the [onnx] extra (fails without it, as
    tests/test_export.py does)."""
    import numpy as np
    import onnxruntime  # noqa: F401

    from minialbert import Embedder

    ckpt = tmp_path / "ckpt"
    make_hf_checkpoint(ckpt, "AlbertModel", vocab_size=_vocab_size())
    shutil.copy(SPM, ckpt / "spiece.model")
    folder = tmp_path / "albert-onnx"
    assert cli(["export", "onnx", str(ckpt), str(folder / "model.onnx")]) == 0
    assert cli(["export", "onnx", str(ckpt), str(folder / "model-int8.onnx"), "--int8"]) == 0
    capsys.readouterr()
    assert Embedder.from_pretrained(folder, backend="onnxruntime").model.int8 == "none"
    int8 = Embedder.from_pretrained(folder / "model-int8.onnx", backend="onnxruntime")
    assert int8.model.int8 != "none"

    readme = (Path(__file__).resolve().parents[1] / "docs" / "guides" / "speed.md").read_text(encoding="utf-8")
    [line] = [x for x in readme.splitlines() if re.match(r"minialbert embed .*model-int8\.onnx", x)]
    argv = line.split("#")[0].split()[1:]
    argv = [str(folder / "model-int8.onnx") if a == "albert-onnx/model-int8.onnx" else a.strip('"') for a in argv]
    assert cli(argv) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert np.allclose(row["vector"], int8.embed([row["text"]])[0], atol=1e-5)


def _vocab_size() -> int:
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_file=str(SPM)).get_piece_size()
