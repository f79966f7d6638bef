"""Ray Data: a local 2-CPU cluster gives the vectors of single-process Embedder.embed, row for row,
both through RayEmbedder in a user's own pipeline and through `embed --ray`'s driver."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import make_hf_checkpoint
from minialbert import Embedder, load_vectors

if os.environ.get("CI"):
    import ray  # CI installs the [ray] extra: a missing one must fail, not skip
else:
    ray = pytest.importorskip("ray")

from minialbert.ray import RayEmbedder, embed_with_ray  # noqa: E402
from test_stream import corpus, write_input  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::minialbert.embed.LongTextWarning", "ignore::DeprecationWarning")
SPM = Path(__file__).parent / "fixtures" / "tokenizer" / "spm" / "spiece.model"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    import sentencepiece as spm

    d = tmp_path_factory.mktemp("ray_ckpt")
    make_hf_checkpoint(d, "AlbertModel", num_hidden_layers=2,
                       vocab_size=spm.SentencePieceProcessor(model_file=str(SPM)).get_piece_size())
    shutil.copy(SPM, d / "spiece.model")
    return d


@pytest.fixture(scope="module")
def cluster():
    # Workers inherit this environment, PYTHONPATH included, so they import this minialbert.
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             object_store_memory=200 * 2**20)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def test_ray_equals_single_process_embed(cluster, ckpt, tmp_path):
    texts = corpus(300, seed=11, newlines=True)
    want = Embedder.from_pretrained(ckpt).embed(texts, pooling="mean")

    # 1. RayEmbedder in a pipeline of one's own (numpy batches in, a pyarrow table out)
    ds = ray.data.from_items([{"id": i, "text": t} for i, t in enumerate(texts)], override_num_blocks=4)
    ds = ds.map_batches(RayEmbedder, fn_constructor_kwargs={"model": str(ckpt), "pooling": "mean"}, batch_size=64,
                        compute=ray.data.ActorPoolStrategy(size=1), num_cpus=1)
    table = ds.to_arrow_refs()
    import pyarrow as pa

    table = pa.concat_tables(ray.get(table))
    order = np.argsort(table.column("id").to_numpy())
    assert table.column("id").to_numpy()[order].tolist() == list(range(len(texts)))
    assert [table.column("text").to_pylist()[i] for i in order] == texts
    got = np.stack(table.column("vector").to_numpy(zero_copy_only=False))[order]
    assert table.schema.field("vector").type == pa.list_(pa.float32(), want.shape[1])
    assert np.abs(got - want).max() <= 1e-6

    # 2. the CLI's driver: a file in, the resumable shard directory out, two actors
    src = write_input(tmp_path / "in.jsonl", texts, "jsonl")
    summary = embed_with_ray(src, tmp_path / "out", model=str(ckpt), pooling="mean", window=50, actors=2,
                             with_text=True)
    assert summary.complete and summary.shards_written == 6
    ids, vectors = load_vectors(tmp_path / "out")
    assert ids.tolist() == list(range(len(texts)))
    assert np.abs(vectors - want).max() <= 1e-6
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [s["window"] for s in manifest["shards"]] == list(range(6))
    again = embed_with_ray(src, tmp_path / "out", model=str(ckpt), pooling="mean", window=50, resume=True,
                           with_text=True)
    assert again.complete and again.embedded == 0

    # 3. --int8 reaches the actors (and the manifest): the int8 engine's vectors, not float32's
    few = texts[:60]
    src = write_input(tmp_path / "few.txt", [t.replace("\n", " ") for t in few], "txt")
    summary = embed_with_ray(src, tmp_path / "int8", model=str(ckpt), pooling="mean", window=30, actors=1, int8=True)
    assert summary.complete
    _, got = load_vectors(tmp_path / "int8")
    fp32 = Embedder.from_pretrained(ckpt).embed([t.replace("\n", " ") for t in few], pooling="mean")
    # dynamic int8 scales each batch's activations by their own range, so the values depend on the
    # batches; what holds is closeness to float32, and that int8 did run
    cos = (got * fp32).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(fp32, axis=1)
    assert cos.min() >= 0.999 and np.abs(got - fp32).max() > 1e-6
    assert json.loads((tmp_path / "int8" / "manifest.json").read_text())["options"]["runtime"] == "torch-int8"


def test_ray_layer_calls_reach_the_actors(cluster, ckpt, tmp_path):
    """`embed --ray --layer-calls 1` on a 2-call checkpoint: the actors run one call (the vectors of
    Embedder.from_pretrained(num_layer_calls=1)), and the manifest's model identity records it."""
    from minialbert.cli import main

    texts = [t.replace("\n", " ") for t in corpus(40, seed=5, newlines=False)]
    src = write_input(tmp_path / "in.txt", texts, "txt")
    out = tmp_path / "out"
    assert main(["embed", "--model", str(ckpt), "--input", str(src), "--output", f"{out}/", "--ray", "local",
                 "--ray-actors", "1", "--layer-calls", "1", "--pooling", "mean", "--quiet"]) == 0
    _, got = load_vectors(out)
    want = Embedder.from_pretrained(ckpt, num_layer_calls=1).embed(texts, pooling="mean")
    full = Embedder.from_pretrained(ckpt).embed(texts, pooling="mean")
    assert np.abs(got - want).max() <= 1e-6 and np.abs(got - full).max() > 1e-3
    # the same directory cannot be resumed with the checkpoint's own depth: other vectors
    assert main(["embed", "--model", str(ckpt), "--input", str(src), "--output", f"{out}/", "--ray", "local",
                 "--pooling", "mean", "--resume", "--quiet"]) != 0


def test_ray_resume_appends_a_grown_input(cluster, ckpt, tmp_path):
    """Texts appended to the input, then --ray --resume: the partial last window is embedded again
    whole (its shard records what it extends, for `index --update`) and new windows are added; the
    vectors equal single-process Embedder.embed's over the whole input, as without --ray."""
    texts = corpus(190, seed=12)
    first, more = texts[:120], texts[120:]
    src = write_input(tmp_path / "in.txt", first, "txt")
    embed_with_ray(src, tmp_path / "out", model=str(ckpt), pooling="mean", window=50, actors=1, with_text=True)
    write_input(tmp_path / "in.txt", first + more, "txt")
    again = embed_with_ray(src, tmp_path / "out", model=str(ckpt), pooling="mean", window=50, actors=1,
                           with_text=True, resume=True)
    assert again.complete and again.rows == 190 and again.embedded == 90  # window 2 (20 -> 50 texts), window 3 (40)
    ids, vectors = load_vectors(tmp_path / "out")
    want = Embedder.from_pretrained(ckpt).embed(first + more, pooling="mean")
    assert ids.tolist() == list(range(190)) and np.abs(vectors - want).max() <= 1e-6
    shards = json.loads((tmp_path / "out" / "manifest.json").read_text())["shards"]
    assert [s["rows"] for s in shards] == [50, 50, 50, 40]
    assert shards[2]["extends"]["rows"] == 20 and "extends" not in shards[3]
