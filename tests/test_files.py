"""files.atomic_write: the permissions of a plain open(), data on disk before the rename, output
formats checked in one place."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from minialbert import files, jsonio
from minialbert.errors import MinialbertError


@pytest.fixture
def umask():
    """Set the process umask for one test, and put the old one back."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002])
def test_new_file_gets_the_mode_open_would_give(tmp_path, umask, mask):
    umask(mask)
    with open(tmp_path / "plain.txt", "w") as f:
        f.write("x")
    files.atomic_write(tmp_path / "atomic.txt", lambda tmp: open(tmp, "w").write("x"))
    assert mode(tmp_path / "atomic.txt") == mode(tmp_path / "plain.txt") == 0o666 & ~mask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["atomic.txt", "plain.txt"]


def test_save_pretrained_and_cli_outputs_are_readable_by_others(tmp_path, umask):
    """The issue's case: with the usual umask 022 every output is world-readable (mkstemp's 0600
    used to survive the rename)."""
    from minialbert import AlbertConfig, AlbertModel

    umask(0o022)
    config = AlbertConfig(vocab_size=20, embedding_size=4, hidden_size=8, num_hidden_layers=1,
                          num_attention_heads=2, intermediate_size=8, max_position_embeddings=16)
    AlbertModel(config).save_pretrained(tmp_path / "out")
    files.write_vectors(tmp_path / "v.npy", np.zeros((2, 3)), ["a", "b"])
    files.write_jsonl(tmp_path / "t.jsonl", [{"a": 1}])
    for path in (tmp_path / "out" / "model.safetensors", tmp_path / "out" / "config.json", tmp_path / "v.npy",
                 tmp_path / "t.jsonl"):
        assert mode(path) == 0o644, (path, oct(mode(path)))


def test_data_is_synced_before_the_rename_and_the_directory_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.path.realpath(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.path.realpath(src), os.path.realpath(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "v.json"
    files.atomic_write(target, lambda tmp: open(tmp, "w").write("[]"))
    (_, synced), (_, src, dst), (_, directory) = events
    assert synced == src and dst == str(target.resolve())  # the temp file's data, then the rename
    assert directory == str(tmp_path.resolve())  # then the directory entry
    assert target.read_text() == "[]"


def test_output_format_is_checked_once_for_library_and_cli(tmp_path):
    assert files.check_output_path(tmp_path / "V.NPY") == ".npy"
    assert files.check_output_path(tmp_path / "t.ndjson", files.JSONL_SUFFIXES) == ".ndjson"
    with pytest.raises(MinialbertError, match=r"unknown output format '.csv' .* \.npy, \.jsonl, \.ndjson or \.json"):
        files.write_vectors(tmp_path / "v.csv", np.zeros((1, 2)), ["a"])
    with pytest.raises(MinialbertError, match="unknown output format '.npy' .* .jsonl or .ndjson"):
        files.check_output_path(tmp_path / "t.npy", files.JSONL_SUFFIXES)
    with pytest.raises(MinialbertError, match="directory .* does not exist"):
        files.check_output_path(tmp_path / "no" / "v.npy")
    assert not list(tmp_path.iterdir())


def test_read_json_checks_the_kind(tmp_path):
    (tmp_path / "a.json").write_text('{"x": 1}')
    (tmp_path / "l.json").write_text("[1, 2]")
    (tmp_path / "bad.json").write_text("{oops")
    assert jsonio.read_json(tmp_path / "a.json") == {"x": 1}
    assert jsonio.read_json(tmp_path / "l.json", expect=list) == [1, 2]
    with pytest.raises(MinialbertError, match="does not hold a JSON object"):
        jsonio.read_json(tmp_path / "l.json")
    with pytest.raises(MinialbertError, match="cannot read .*bad.json"):
        jsonio.read_json(tmp_path / "bad.json")
