"""Vector index and search (issue 21): exact top-k against a brute-force reference (scikit-learn),
ANN recall on a medium set, the metric from a sentence-transformers config, incremental updates
after `embed --resume` on a longer input, and the one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import make_hf_checkpoint
from minialbert import Embedder, load_vectors
from minialbert.errors import MinialbertError
from minialbert.search import Searcher, VectorIndex, build_index
from minialbert.stream import embed_file

if os.environ.get("CI"):
    import faiss  # CI installs the [search] extra: a missing one must fail, not skip
else:
    faiss = pytest.importorskip("faiss", reason="the [search] extra (faiss-cpu) is not installed")

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore::minialbert.embed.LongTextWarning")]
SPM = Path(__file__).parent / "fixtures" / "tokenizer" / "spm" / "spiece.model"
WORDS = ("river mountain city music train food water light garden stone cloud bread paper window "
         "question answer library museum forest ocean").split()


def texts_of(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, rng.integers(2, 12))) for _ in range(n)]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    import sentencepiece as spm

    d = tmp_path_factory.mktemp("search_ckpt")
    make_hf_checkpoint(d, "AlbertModel", num_hidden_layers=2,
                       vocab_size=spm.SentencePieceProcessor(model_file=str(SPM)).get_piece_size())
    shutil.copy(SPM, d / "spiece.model")
    return d


@pytest.fixture(scope="module")
def vectors(ckpt, tmp_path_factory):
    d = tmp_path_factory.mktemp("search_vectors")
    texts = texts_of(230, 0)
    (d / "corpus.txt").write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    embed_file(Embedder.from_pretrained(ckpt), d / "corpus.txt", d / "vec", pooling="mean", window=100,
               with_text=True, model_name=str(ckpt))
    return d / "vec", texts


def brute_force(ckpt, vec_dir, queries, k, metric="cosine"):
    """The reference: scikit-learn's pairwise scores over every stored vector, stable order."""
    from sklearn.metrics.pairwise import cosine_similarity

    _, matrix = load_vectors(vec_dir)
    q = Embedder.from_pretrained(ckpt).embed(queries, pooling="mean")
    scores = cosine_similarity(q, matrix) if metric == "cosine" else q @ matrix.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, 1)


def test_exact_search_is_brute_force_top_k_api_and_cli(ckpt, vectors):
    vec_dir, texts = vectors
    summary = build_index(vec_dir)
    assert summary.kind == "exact" and summary.count == 230 and (vec_dir / "index" / "index.json").exists()
    record = json.loads((vec_dir / "index" / "index.json").read_text())
    assert record["metric"] == "cosine" and record["options"]["pooling"] == "mean"
    assert record["model"]["fingerprint"].startswith("sha256:") and record["count"] == 230
    queries = ["river music", "a question about the library"]
    want_ids, want_scores = brute_force(ckpt, vec_dir, queries, 5)
    hits = Searcher.from_index(vec_dir / "index").search(queries, k=5)
    assert hits.ids.tolist() == want_ids.tolist()
    np.testing.assert_allclose(hits.scores, want_scores, atol=1e-5)
    assert hits.texts[0] == [texts[i] for i in want_ids[0]]

    out = subprocess.run([sys.executable, "-m", "minialbert", "search", *queries, "--index", str(vec_dir), "-k", "5",
                          "--json"], capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [[h["id"] for h in r["hits"]] for r in rows] == want_ids.tolist()
    assert rows[1]["hits"][0]["text"] == texts[want_ids[1][0]]


def _clustered(n, dim, seed):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((40, dim)).astype(np.float32)
    return (centers[rng.integers(0, 40, n)] + 0.6 * rng.standard_normal((n, dim))).astype(np.float32)


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    """4,000 clustered 48-d vectors in a vectors directory (written by the shards writer, no model)."""
    from minialbert.shards import OutputDirectory

    d = tmp_path_factory.mktemp("medium") / "vec"
    x = _clustered(4000, 48, 0)
    header = {"model": {"name": None, "fingerprint": "sha256:test", "dtype": "float32"},
              "options": {"pooling": "mean", "normalize": False, "window": 1000, "with_text": False},
              "input": {}, "dim": 48}
    with OutputDirectory.open(d, header, resume=False) as out:
        for w in range(4):
            out.write_shard(w, np.arange(w * 1000, (w + 1) * 1000), x[w * 1000:(w + 1) * 1000], None, "-")
        out.finish(4000)
    return d, x


@pytest.mark.parametrize("kind,floor", [("hnsw", 0.95), ("ivf-flat", 0.9), ("ivf-sq8", 0.9), ("ivf-pq", 0.9)])
def test_ann_recall_on_a_medium_set(medium, kind, floor):
    from sklearn.neighbors import NearestNeighbors

    d, x = medium
    build_index(d, kind=kind, output=d.parent / kind, nlist=32, threads=1)
    q = _clustered(100, 48, 1)
    truth = NearestNeighbors(n_neighbors=10, metric="cosine", algorithm="brute").fit(x).kneighbors(q)[1]
    scores, ids = VectorIndex(d.parent / kind).search_vectors(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth)])
    assert recall >= floor, recall
    # scores are cosines of the returned ids (re-scored exactly for the IVF kinds)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    np.testing.assert_allclose(scores[:, 0], np.sum(qn * xn[ids[:, 0]], axis=1), atol=1e-4)


def test_ivf_search_settings_change_without_a_rebuild(medium):
    """nprobe is a search-time setting: visiting every list is exact search; one list misses neighbours."""
    from sklearn.neighbors import NearestNeighbors

    d, x = medium
    build_index(d, kind="ivf-sq8", output=d.parent / "ivf-sq8-knobs", nlist=32, threads=1)
    q = _clustered(50, 48, 2)
    truth = NearestNeighbors(n_neighbors=10, metric="cosine", algorithm="brute").fit(x).kneighbors(q)[1]
    index = VectorIndex(d.parent / "ivf-sq8-knobs", nprobe=32, rerank=4)
    assert index.search_params == {"nprobe": 32, "rerank": 4}
    assert index.search_vectors(q, 10)[1].tolist() == truth.tolist()  # all 32 lists, re-scored: exact
    index.set_search_params(nprobe=1, rerank=1)
    one = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(index.search_vectors(q, 10)[1], truth)])
    assert one < 0.95, one  # one list of 32 cannot hold every neighbour of these clustered queries
    with pytest.raises(MinialbertError, match=r"--ef-search does not apply to ivf-sq8 indexes \(only to hnsw\)"):
        index.set_search_params(ef_search=10)
    with pytest.raises(MinialbertError, match="nprobe must be a positive integer"):
        index.set_search_params(nprobe=0)


def test_two_builds_into_one_directory(medium, tmp_path):
    """A build holds an exclusive lock on its output: a second build there stops with one line; a
    killed build (SIGKILL) leaves no stale lock, and the next build succeeds."""
    import signal
    import time

    d, _ = medium
    out = tmp_path / "locked"
    holder = subprocess.Popen([sys.executable, "-c", f"""
import time, minialbert.search as s
def slow(*a, **k):
    print("building", flush=True)
    time.sleep(120)
s._build_locked = slow
s.build_index({str(d)!r}, kind="ivf-flat", output={str(out)!r})
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "building"
        r = subprocess.run([sys.executable, "-m", "minialbert", "index", str(d), "--kind", "ivf-flat", "-o", str(out)],
                           capture_output=True, text=True)
        assert r.returncode == 1 and r.stdout == "", r.stderr
        assert r.stderr.strip().splitlines() == [f"minialbert index: error: {out} is being built by another `minialbert "
                                                 "index` run; wait for it to finish, or build into another directory (-o)"]
        with pytest.raises(MinialbertError, match="is being built by another"):
            build_index(d, kind="ivf-flat", output=out, update=False)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    t = time.perf_counter()
    s = build_index(d, kind="ivf-flat", output=out, nlist=16, threads=1)
    assert s.count == 4000 and time.perf_counter() - t < 60
    assert VectorIndex(out).search_vectors(np.ones(48, np.float32), 3)[1].shape == (1, 3)


def test_metric_follows_the_sentence_transformers_config(ckpt, tmp_path):
    emb = Embedder.from_pretrained(ckpt, pooling="mean")
    emb.similarity_fn_name = "dot"
    emb.save_pretrained(tmp_path / "st")
    (tmp_path / "c.txt").write_text("".join(t + "\n" for t in texts_of(60, 3)), encoding="utf-8")
    embed_file(Embedder.from_pretrained(tmp_path / "st"), tmp_path / "c.txt", tmp_path / "vec",
               model_name=str(tmp_path / "st"))
    build_index(tmp_path / "vec", kind="hnsw")
    assert json.loads((tmp_path / "vec" / "index" / "index.json").read_text())["metric"] == "dot"
    hits = Searcher.from_index(tmp_path / "vec").search("water light", k=3)
    want_ids, want_scores = brute_force(tmp_path / "st", tmp_path / "vec", ["water light"], 3, metric="dot")
    assert hits.ids.tolist() == want_ids.tolist()
    np.testing.assert_allclose(hits.scores, want_scores, rtol=1e-4)


def test_update_after_resume_on_a_longer_input(ckpt, tmp_path):
    emb = Embedder.from_pretrained(ckpt)
    first, more = texts_of(150, 5), texts_of(120, 6)
    src = tmp_path / "c.txt"
    src.write_text("".join(t + "\n" for t in first), encoding="utf-8")
    embed_file(emb, src, tmp_path / "vec", pooling="mean", window=100, with_text=True, model_name=str(ckpt))
    build_index(tmp_path / "vec", kind="hnsw", threads=1)
    build_index(tmp_path / "vec", kind="exact", output=tmp_path / "exact")
    with open(src, "a", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in more))
    summary = embed_file(emb, src, tmp_path / "vec", pooling="mean", window=100, with_text=True, resume=True,
                         model_name=str(ckpt))
    assert summary.rows == 270 and summary.embedded == 170  # window 1 (50 -> 100 texts) again, and window 2
    with pytest.raises(MinialbertError, match=r"is stale: .* \(150 vectors then, 270 now\); run: minialbert index"):
        Searcher.from_index(tmp_path / "vec")
    s = build_index(tmp_path / "vec", update=True)
    assert (s.kind, s.added, s.count, s.rebuilt) == ("hnsw", 120, 270, False)
    build_index(tmp_path / "vec", output=tmp_path / "exact", update=True)
    searcher = Searcher.from_index(tmp_path / "vec")
    exact = Searcher.from_index(tmp_path / "exact", embedder=searcher.embedder)
    queries = more[:5]
    a, b = searcher.search(queries, k=3), exact.search(queries, k=3)
    assert a.ids[:, 0].tolist() == b.ids[:, 0].tolist()
    assert [t[0] for t in a.texts] == queries  # the appended texts are found: their vectors were added
    # a rewritten (not appended) shard cannot be removed from a graph: a rebuild is asked for
    manifest = json.loads((tmp_path / "vec" / "manifest.json").read_text())
    manifest["shards"][0]["sha256"] = "0" * 64
    (tmp_path / "vec" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(MinialbertError, match="cannot remove vectors; rebuild it: minialbert index"):
        build_index(tmp_path / "vec", update=True)


def test_one_line_errors(ckpt, vectors, tmp_path):
    vec_dir, _ = vectors
    build_index(vec_dir, output=tmp_path / "idx")
    searcher = Searcher.from_index(tmp_path / "idx")
    for k in (0, -3):
        with pytest.raises(MinialbertError, match="k must be a positive integer"):
            searcher.search("x", k=k)
    with pytest.raises(MinialbertError, match="no index in"):
        Searcher.from_index(tmp_path)
    other = tmp_path / "other"
    make_hf_checkpoint(other, "AlbertModel", num_hidden_layers=2, seed=5, vocab_size=searcher.embedder.model.config.vocab_size)
    shutil.copy(SPM, other / "spiece.model")
    with pytest.raises(MinialbertError, match="is another one: search with the model that embedded the vectors"):
        Searcher.from_index(tmp_path / "idx", model=other)
    cli = [sys.executable, "-m", "minialbert"]
    for args, message in (
        (["search", "q", "--index", str(tmp_path / "idx"), "-k", "0"], "k must be a positive integer"),
        (["search", "q", "--index", str(tmp_path / "idx"), "--nprobe", "4"],
         "--nprobe does not apply to exact indexes (only to ivf-flat, ivf-sq8, ivf-pq)"),
        (["search", "q", "--index", str(tmp_path / "nowhere")], "no such index directory"),
        (["index", str(tmp_path / "nowhere")], "no such vectors directory"),
        (["index", str(vec_dir), "--update", "-o", str(tmp_path / "new")], "no index in"),
    ):
        r = subprocess.run(cli + args, capture_output=True, text=True)
        assert r.returncode == 1 and r.stdout == "", r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and message in r.stderr, r.stderr
    # an empty run: nothing to index
    from minialbert.shards import OutputDirectory

    header = {"model": {"name": None, "fingerprint": "sha256:x"}, "options": {"window": 10}, "input": {}, "dim": 4}
    with OutputDirectory.open(tmp_path / "empty", header, resume=False) as out:
        out.finish(0)
    with pytest.raises(MinialbertError, match="holds no vectors: nothing to index"):
        build_index(tmp_path / "empty")
