"""The embedding server (issue 21): the official openai client and a TEI-style httpx request get
Embedder.embed's vectors; search through the API; 401/413/422/503; metrics; SIGTERM during load
answers every accepted request; a port in use is one line. Each test starts its own server on a
free 127.0.0.1 port (in a thread, or as a `minialbert serve` process) and stops it."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

if os.environ.get("CI"):  # CI installs the [serve] extra and the test extra: a missing one must fail
    import fastapi  # noqa: F401
    import httpx
    import openai
    import uvicorn
else:
    fastapi = pytest.importorskip("fastapi", reason="the [serve] extra is not installed")
    uvicorn = pytest.importorskip("uvicorn", reason="the [serve] extra is not installed")
    httpx = pytest.importorskip("httpx", reason="httpx (test extra) is not installed")
    openai = pytest.importorskip("openai", reason="openai (test extra) is not installed")

from minialbert import Embedder  # noqa: E402
from minialbert.serve import ServeOptions, bind, create_app  # noqa: E402
from test_search import brute_force, ckpt, texts_of, vectors  # noqa: E402,F401

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore::minialbert.embed.LongTextWarning", "ignore::DeprecationWarning")]


@pytest.fixture(scope="module")
def embedder(ckpt):  # noqa: F811
    return Embedder.from_pretrained(ckpt)


class Server:
    """create_app + uvicorn in a thread, on a socket bound to a free loopback port."""

    def __init__(self, embedder, searcher=None, **options):
        sock = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        app = create_app(embedder, ServeOptions(model="tiny", **options), searcher)
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


TEXTS = ["The capital of France is Paris.", "", "a much longer text " * 5, "短い文", "river and mountain"]


def test_openai_client_gets_embedder_vectors_float_and_base64(embedder, ckpt):  # noqa: F811
    from transformers import AlbertTokenizer

    want = embedder.embed(TEXTS)
    tokens = sum(min(len(ids), 64) for ids in AlbertTokenizer.from_pretrained(str(ckpt))(TEXTS)["input_ids"])
    with Server(embedder) as s:
        client = openai.OpenAI(base_url=s.url + "/v1", api_key="unused", max_retries=0, timeout=60)
        r = client.embeddings.create(model="tiny", input=TEXTS, encoding_format="float")
        np.testing.assert_allclose(np.array([d.embedding for d in r.data]), want, atol=1e-5)
        assert [d.index for d in r.data] == list(range(len(TEXTS)))
        assert r.usage.prompt_tokens == r.usage.total_tokens == tokens
        b = client.embeddings.create(model="tiny", input=TEXTS, encoding_format="base64")
        got = np.array([np.frombuffer(base64.b64decode(d.embedding), dtype="<f4") for d in b.data])
        np.testing.assert_allclose(got, want, atol=1e-5)
        one = client.embeddings.create(model="tiny", input=TEXTS[0])  # the client's default: base64, decoded
        np.testing.assert_allclose(np.array(one.data[0].embedding), want[0], atol=1e-5)
        with pytest.raises(openai.UnprocessableEntityError, match="'dimensions' 8 is not supported"):
            client.embeddings.create(model="tiny", input="x", dimensions=8)


def test_tei_request_gets_the_same_vectors_and_truncate(embedder):
    long = "word " * 200  # far over the tiny model's 64 positions
    with Server(embedder) as s, httpx.Client(base_url=s.url, timeout=60) as http:
        r = http.post("/embed", json={"inputs": TEXTS, "normalize": False, "truncate": True})
        assert r.status_code == 200
        np.testing.assert_allclose(np.array(r.json()), embedder.embed(TEXTS, normalize=False), atol=1e-5)
        r = http.post("/embed", json={"inputs": TEXTS[0]})  # TEI normalizes by default (and TEXTS[0] is short)
        want = embedder.embed(TEXTS[:1], normalize=True)
        np.testing.assert_allclose(np.array(r.json()), want, atol=1e-5)
        r = http.post("/embed", json={"inputs": [long]})
        assert r.status_code == 413 and "more than the model's 64" in r.json()["error"]["message"]
        r = http.post("/embed", json={"inputs": [long], "truncate": True, "normalize": False})
        np.testing.assert_allclose(np.array(r.json()), embedder.embed([long], normalize=False), atol=1e-5)
        health = http.get("/health").json()
        assert health["status"] == "ok" and health["dim"] == 32
        metrics = http.get("/metrics").text
        for name in ("minialbert_requests_total", "minialbert_tokens_total", "minialbert_batch_texts_bucket",
                     "minialbert_queue_depth", "minialbert_request_seconds_bucket"):
            assert name in metrics


def test_search_endpoint_returns_exact_top_k(ckpt, vectors):  # noqa: F811
    from minialbert.search import Searcher, build_index

    vec_dir, texts = vectors
    build_index(vec_dir)
    searcher = Searcher.from_index(vec_dir)
    queries = ["garden light", "ocean forest museum"]
    want_ids, want_scores = brute_force(ckpt, vec_dir, queries, 4)
    with Server(searcher.embedder, searcher) as s, httpx.Client(base_url=s.url, timeout=60) as http:
        r = http.post("/search", json={"queries": queries, "k": 4})
        assert r.status_code == 200, r.text
        res = r.json()["results"]
        assert [[h["id"] for h in row] for row in res] == want_ids.tolist()
        np.testing.assert_allclose([[h["score"] for h in row] for row in res], want_scores, atol=1e-5)
        assert res[0][0]["text"] == texts[want_ids[0][0]]
        assert http.post("/search", json={"queries": "x", "k": 0}).status_code == 422


def test_error_codes_401_413_422(embedder):
    with Server(embedder, api_key="s3cret", max_body_bytes=2000, max_inputs=3) as s, \
            httpx.Client(base_url=s.url, timeout=60) as http:
        ok = {"Authorization": "Bearer s3cret"}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            r = http.post("/v1/embeddings", json={"input": "x"}, headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert http.get("/health").status_code == 200  # probes need no key
        assert http.post("/v1/embeddings", json={"input": "x"}, headers=ok).status_code == 200
        cases = [
            (b"{not json", 422, "not valid JSON"),
            (b'{"input": 5}', 422, "'input' must be a string or a list of strings"),
            (b'{"input": ["a", 3]}', 422, "'input' must be a string or a list of strings"),
            (b'{"input": "a", "encoding_format": "int8"}', 422, "'encoding_format' must be 'float' or 'base64'"),
            (b'[1, 2]', 422, "must be a JSON object"),
            (b'{"inputs": "a"}', 422, "'input' is required"),
            (b'{"input": ["a", "b", "c", "d"]}', 413, "4 inputs in one request; the limit is 3"),
            (b'{"input": "' + b"x" * 3000 + b'"}', 413, "the limit is 2,000"),
        ]
        for body, status, message in cases:
            r = http.post("/v1/embeddings", content=body, headers={**ok, "Content-Type": "application/json"})
            assert r.status_code == status, (body[:40], r.text)
            assert message in r.json()["error"]["message"] and "Traceback" not in r.text
            assert len(r.json()["error"]["message"].splitlines()) == 1
        # a chunked body without Content-Length is counted as it arrives
        r = http.post("/embed", content=iter([b'{"inputs": "', b"y" * 3000, b'"}']), headers=ok)
        assert r.status_code == 413


def test_full_queue_answers_503_then_recovers(embedder):
    gate, entered = threading.Event(), threading.Event()
    real = embedder.embed

    class Gated:  # the model blocks until the gate opens: the queue fills deterministically
        def __getattr__(self, name):
            return getattr(embedder, name)

        def embed(self, texts, **kw):
            entered.set()
            gate.wait(30)
            return real(texts, **kw)

    with Server(Gated(), max_queue=4) as s, httpx.Client(base_url=s.url, timeout=60) as http, \
            ThreadPoolExecutor(8) as pool:
        first = pool.submit(http.post, "/embed", json={"inputs": "held in the model"})
        assert entered.wait(30)
        queued = [pool.submit(http.post, "/embed", json={"inputs": [f"q{i}a", f"q{i}b"]}) for i in range(2)]
        deadline = time.monotonic() + 30
        while http.get("/health").json()["queue"] < 4:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        burst = [http.post("/embed", json={"inputs": f"burst {i}"}) for i in range(40)]  # 10x --max-queue
        assert {r.status_code for r in burst} == {503}
        assert all(r.headers["retry-after"] == "1" and "queue is full" in r.json()["error"]["message"] for r in burst)
        gate.set()
        answers = [first.result(60), *(f.result(60) for f in queued)]
        assert [r.status_code for r in answers] == [200, 200, 200]
        got = np.array(answers[1].json() + answers[2].json())
        np.testing.assert_allclose(got, real(["q0a", "q0b", "q1a", "q1b"], normalize=True), atol=1e-5)
        after = http.post("/embed", json={"inputs": "after the burst"})
        assert after.status_code == 200
        metrics = http.get("/metrics").text
        # the two queued requests (4 texts) went through the model as one merged batch
        assert 'minialbert_batch_texts_bucket{le="4.0"} 3.0' in metrics, metrics
        assert "minialbert_rejected_total 40.0" in metrics


def test_a_bug_is_a_one_line_500_and_metrics_stay_bounded(embedder, capsys):
    class Broken:  # the model fails: the client gets one line, the log gets the traceback
        def __getattr__(self, name):
            return getattr(embedder, name)

        def embed(self, texts, **kw):
            raise RuntimeError("boom\nsecond line")

    with Server(Broken()) as s, httpx.Client(base_url=s.url, timeout=60) as http:
        r = http.post("/embed", json={"inputs": "x"})
        assert r.status_code == 500
        assert r.json()["error"]["message"] == "internal error: RuntimeError: boom"
        for i in range(3):  # unknown paths: 404 in one line, counted under one label
            r = http.get(f"/scan/{i}")
            assert r.status_code == 404 and r.json()["error"]["message"] == f"no such endpoint: GET /scan/{i}"
        metrics = http.get("/metrics").text
    assert 'minialbert_requests_total{code="500",endpoint="/embed"} 1.0' in metrics
    assert 'minialbert_requests_total{code="404",endpoint="other"} 3.0' in metrics
    assert "/scan/" not in metrics
    assert "RuntimeError: boom" in capsys.readouterr().err


def test_batcher_caps_batches_and_serves_the_oldest_text_first():
    """Hand-worked: with --max-batch-size 2, five waiting texts become three length-sorted batches,
    each holding the oldest text still waiting (so a short text is not passed over for ever)."""
    import asyncio

    from minialbert.serve import Batcher, Metrics

    gate, calls = threading.Event(), []

    class Fake:
        def embed(self, texts, **kw):
            calls.append(list(texts))
            gate.wait(30)
            return np.array([[len(t), ord(t[-1])] for t in texts], dtype=np.float32)

    async def main():
        batcher = Batcher(Fake(), max_batch_tokens=1000, max_queue=16, max_batch_size=2, metrics=Metrics())
        key = (("normalize", False), ("long_text", "truncate"), 64)
        first = batcher.submit(["a"], [10], key)  # taken at once: the model holds it at the gate
        while not calls:
            await asyncio.sleep(0.01)
        jobs = [batcher.submit(["s1", "L1", "L2", "L3"], [5, 50, 40, 30], key),
                batcher.submit(["L4"], [60], key)]
        assert batcher.depth == 5
        gate.set()
        out = [await first, *[await j for j in jobs]]
        batcher.close()
        return out

    first, job1, job2 = asyncio.run(main())
    assert calls == [["a"], ["L3", "s1"], ["L4", "L1"], ["L2"]]
    np.testing.assert_array_equal(job1, [[2, ord("1")], [2, ord("1")], [2, ord("2")], [2, ord("3")]])
    np.testing.assert_array_equal(job2, [[2, ord("4")]])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_during_load_answers_every_accepted_request(ckpt):  # noqa: F811
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "minialbert", "serve", "--model", str(ckpt), "--port", str(port),
                             "--max-batch-tokens", "256"], stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read()
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.1)
        texts = texts_of(64, 9)

        def call(i):
            try:
                r = httpx.post(url + "/v1/embeddings", json={"input": texts[i % 64: i % 64 + 4]}, timeout=120)
                return r.status_code
            except httpx.ConnectError:
                return "not accepted"  # came after the listening socket closed: never accepted
            except httpx.TransportError as e:
                return f"dropped: {type(e).__name__}"

        with ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(call, i) for i in range(48)]
            deadline = time.monotonic() + 60  # SIGTERM once requests are in (a fixed sleep raced a loaded machine)
            while not any(f.done() for f in futures) and httpx.get(url + "/health", timeout=30).json()["queue"] == 0:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            proc.send_signal(signal.SIGTERM)
            results = [f.result(180) for f in futures]
        assert proc.wait(120) == 0
        assert not [r for r in results if r not in (200, "not accepted")], results
        assert results.count(200) >= 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_connections_send_without_waiting_for_acks(embedder):
    """Nagle's algorithm off on every accepted connection (TCP_NODELAY). uvicorn writes a response
    as headers, then body; with Nagle on, the body waited for the client's delayed ACK, and every
    request took ~40 ms longer than its work (measured: 124 against 83 ms at concurrency 1)."""
    with Server(embedder) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.post("/embed", json={"inputs": "hello"}).status_code == 200  # keep-alive: still open
        connections = list(server.server.server_state.connections)
        assert connections
        for protocol in connections:
            sock = protocol.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_port_in_use_is_one_line(ckpt):  # noqa: F811
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "minialbert", "serve", "--model", str(ckpt), "--port", str(port)],
                           capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip() == (f"minialbert serve: error: port {port} on 127.0.0.1 is already in use; stop what "
                                "listens there or choose another --port")


def test_batch_size_below_one_is_one_line(ckpt):  # noqa: F811
    r = subprocess.run([sys.executable, "-m", "minialbert", "serve", "--model", str(ckpt), "--port", "0",
                        "--max-batch-size", "0"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip() == ("minialbert serve: error: --max-batch-tokens, --max-batch-size, --max-queue and "
                                "--max-inputs must be at least 1")
