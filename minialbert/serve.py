"""An HTTP embedding server: OpenAI's and TEI's embedding APIs, search, health and metrics.

    minialbert serve --model albert-base-v2 [--index vectors/index] [--port 8080] [--api-key KEY]

Endpoints (the `[serve]` extra: FastAPI + uvicorn + prometheus_client):
  POST /v1/embeddings  OpenAI-compatible: {"input": str | [str], "encoding_format": "float"|"base64",
                       "dimensions": only the model's own}, answers {"data": [...], "usage": {...}}
  POST /embed          TEI-compatible: {"inputs": str | [str], "normalize": true, "truncate": false} -> [[...]]
  POST /search         with --index: {"queries": str | [str], "k": 10} -> {"results": [[{id, score, text}]]}
  GET  /health, GET /metrics (Prometheus text)

Dynamic batching: every request's texts go into one queue; a worker thread takes what waits,
sorts it by length and runs a run of neighbours that holds the oldest waiting text (at most
--max-batch-size texts and --max-batch-tokens padded tokens) through Embedder.embed, so
concurrent requests share model batches and the event loop never runs the model; while the model
computes one batch, the next one gathers. A full queue (--max-queue texts waiting) answers 503
with Retry-After at once. Errors are
JSON with one readable message ({"error": {"message", "type", "code"}}), never a traceback.
SIGTERM stops accepting connections and answers every accepted request before exiting.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import os
import signal
import socket
import sys
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import MinialbertError


class ServeError(MinialbertError):
    """The server cannot start as asked (port in use, missing extra, index of another model)."""


def require_serve():
    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise ServeError(f"minialbert serve needs the [serve] extra ({e.name} is missing): "
                         "pip install 'minialbert[serve]'") from None


@dataclass
class ServeOptions:
    model: str = "albert-base-v2"
    index: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    int8: bool = False
    backend: str = "torch"
    max_batch_tokens: int = 16384
    max_batch_size: int = 32
    max_queue: int = 256
    max_inputs: int = 512
    max_body_bytes: int = 4 * 2**20
    api_key: str | None = None
    device: str | None = None
    revision: str | None = None
    cache_dir: str | None = None
    local_files_only: bool = False
    log_level: str = "warning"


class HTTPError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", headers=None):
        super().__init__(message)
        self.status, self.message, self.kind, self.headers = status, message, kind, headers or {}


# ------------------------------------------------------------------------- metrics
class Metrics:
    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = r = CollectorRegistry()
        self.requests = Counter("minialbert_requests", "HTTP requests", ["endpoint", "code"], registry=r)
        self.texts = Counter("minialbert_texts", "texts embedded", registry=r)
        self.tokens = Counter("minialbert_tokens", "tokens embedded (with [CLS]/[SEP], after truncation)",
                              registry=r)
        self.batch_texts = Histogram("minialbert_batch_texts", "texts per merged model batch", registry=r,
                                     buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
        self.batch_tokens = Histogram("minialbert_batch_tokens", "padded tokens per merged model batch", registry=r,
                                      buckets=(64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536))
        self.queue = Gauge("minialbert_queue_depth", "texts waiting for the model", registry=r)
        self.latency = Histogram("minialbert_request_seconds", "request latency", ["endpoint"], registry=r,
                                 buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
        self.rejected = Counter("minialbert_rejected", "requests refused because the queue was full", registry=r)

    def text(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


# ------------------------------------------------------------------------- batcher
@dataclass
class _Job:
    texts: list[str]
    lengths: list[int]
    key: tuple  # embed options: jobs with the same key can share a batch
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    results: list | None = None
    pending: int = 0


class Batcher:
    """Merge concurrent requests into length-sorted model batches up to a token budget (one worker thread)."""

    def __init__(self, embedder, *, max_batch_tokens: int, max_queue: int, metrics: Metrics,
                 max_batch_size: int = 32):
        self.embedder = embedder
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_size = max_batch_size
        self.max_queue = max_queue
        self.metrics = metrics
        self._items: deque = deque()  # (job, index in job)
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="minialbert-batcher", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        return len(self._items)

    def token_lengths(self, texts: list[str]) -> list[int]:
        """Tokens per text with [CLS] and [SEP], before truncation (the count `usage` reports)."""
        emb = self.embedder
        source = [t.lower() for t in texts] if emb.lowercase else texts
        return [len(ids) + 2 for ids in emb.tokenizer.encode_batch_ids(source)]

    def submit(self, texts: list[str], lengths: list[int], key: tuple) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        job = _Job(texts, lengths, key, loop.create_future(), loop, [None] * len(texts), len(texts))
        with self._cond:
            if self._stop:
                raise HTTPError(503, "the server is shutting down", "server_error", {"Retry-After": "1"})
            if len(self._items) + len(texts) > self.max_queue:
                self.metrics.rejected.inc()
                raise HTTPError(503, f"the queue is full ({len(self._items)} texts waiting, --max-queue "
                                     f"{self.max_queue}); retry later", "server_error", {"Retry-After": "1"})
            self._items.extend((job, i) for i in range(len(texts)))
            self.metrics.queue.set(len(self._items))
            self._cond.notify()
        return job.future

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout=60)

    def _take(self) -> list:
        """A batch of what waits with the oldest text's options: a run of neighbours in length order
        (longest first) that holds the oldest text, up to max_batch_size texts and max_batch_tokens
        padded tokens. Holding the oldest text means that no text waits for ever behind a stream of
        longer ones; taking neighbours in length order keeps the padding small."""
        with self._cond:
            while not self._items and not self._stop:
                self._cond.wait()
            if not self._items:
                return []
            oldest = self._items[0]
            key = oldest[0].key
            cap = key[-1]

            def length(it) -> int:
                return min(it[0].lengths[it[1]], cap)

            same = sorted((it for it in self._items if it[0].key == key), key=lambda it: -length(it))
            j = next(i for i, it in enumerate(same) if it is oldest)
            batch: list = []
            for start in (max(0, j - self.max_batch_size + 1), j):
                width, batch = length(same[start]), [same[start]]
                for it in same[start + 1:]:
                    if len(batch) >= self.max_batch_size or width * (len(batch) + 1) > self.max_batch_tokens:
                        break
                    batch.append(it)
                if any(it is oldest for it in batch):
                    break
            chosen = {id(it) for it in batch}
            self._items = deque(it for it in self._items if id(it) not in chosen)
            self.metrics.queue.set(len(self._items))
            return batch

    def _run(self) -> None:
        import torch

        while True:
            batch = self._take()
            if not batch:
                return
            key = batch[0][0].key
            texts = [job.texts[i] for job, i in batch]
            try:
                with warnings.catch_warnings(), torch.inference_mode():
                    warnings.simplefilter("ignore")
                    vectors = self.embedder.embed(texts, batch_size=len(texts), max_length=key[-1], **dict(key[:-1]))
                error = None
            except Exception as e:  # noqa: BLE001 - handed to the waiting requests as a 500/400
                vectors, error = None, e
            self.metrics.batch_texts.observe(len(texts))
            self.metrics.batch_tokens.observe(len(texts) * max(min(job.lengths[i], key[-1]) for job, i in batch))
            done = []
            for r, (job, i) in enumerate(batch):
                if error is None:
                    job.results[i] = vectors[r]
                job.pending -= 1
                if error is not None or job.pending == 0:
                    done.append(job)
            for job in {id(j): j for j in done}.values():
                job.loop.call_soon_threadsafe(_resolve, job, error)


def _resolve(job: _Job, error: Exception | None) -> None:
    if job.future.done():
        return
    if error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result(np.stack(job.results) if job.results else np.zeros((0, 0), np.float32))


# ------------------------------------------------------------------------- the app
# Requests with at most this many characters are measured (tokenized) on the event loop: that takes
# well under a millisecond, less than handing the work to a thread and back.
INLINE_TOKENIZE_CHARS = 4096


def _texts_of(value: Any, field: str, max_inputs: int) -> list[str]:
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, list) and all(isinstance(t, str) for t in value):
        texts = value
    else:
        raise HTTPError(422, f"'{field}' must be a string or a list of strings")
    if not texts:
        raise HTTPError(422, f"'{field}' is empty")
    if len(texts) > max_inputs:
        raise HTTPError(413, f"{len(texts)} inputs in one request; the limit is {max_inputs} (--max-inputs)")
    return texts


def _fits_queue(texts: list[str], max_queue: int) -> list[str]:
    if len(texts) > max_queue:
        raise HTTPError(413, f"{len(texts)} inputs in one request; the queue holds {max_queue} (--max-queue)")
    return texts


def _check_fields(body: Any, allowed: dict[str, tuple]) -> dict:
    if not isinstance(body, dict):
        raise HTTPError(422, "the request body must be a JSON object")
    for name, value in body.items():
        if allowed.get(name) is None:  # unknown fields (clients send extras) and the texts (checked by _texts_of)
            continue
        types = allowed[name]
        if value is not None and not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            want = " or ".join(t.__name__.replace("str", "string").replace("bool", "boolean").replace("int", "integer")
                               for t in types)
            raise HTTPError(422, f"'{name}' must be {want}, got {type(value).__name__}")
    return body


def create_app(embedder, options: ServeOptions, searcher=None):
    """The FastAPI application around one Embedder (and a Searcher for /search)."""
    require_serve()
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response

    metrics = Metrics()
    state: dict = {}
    model_name = os.path.basename(str(options.model).rstrip("/")) or str(options.model)
    max_length = embedder.max_length
    default_key = (("normalize", bool(embedder.normalize)), ("long_text", "truncate"), max_length)

    @asynccontextmanager
    async def lifespan(app):
        state["batcher"] = Batcher(embedder, max_batch_tokens=options.max_batch_tokens, max_queue=options.max_queue,
                                   max_batch_size=options.max_batch_size, metrics=metrics)
        yield
        state["batcher"].close()  # after uvicorn has answered every accepted request

    app = FastAPI(title="minialbert", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.metrics = metrics

    def error(status: int, message: str, kind: str = "invalid_request_error", headers=None):
        return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status,
                            headers=headers)

    endpoints = {"/v1/embeddings", "/embed", "/search", "/health", "/metrics"}
    api_key = options.api_key.encode() if options.api_key else None

    async def guard(scope, receive, send, app) -> None:
        """API key, Content-Length limit, one-line 500s and metrics around every HTTP request.

        A plain ASGI wrapper: Starlette's @app.middleware("http") runs each request through an
        extra task and memory streams, which cost more event-loop time than the rest of a small
        request."""
        if scope["type"] != "http":
            return await app(scope, receive, send)
        t0 = time.perf_counter()
        path = scope["path"]
        label = path if path in endpoints else "other"  # unknown paths share one label: bounded metrics
        headers = dict(scope["headers"])
        if api_key is not None and path != "/health":
            header = headers.get(b"authorization", b"")
            given = header[7:] if header[:7].lower() == b"bearer " else b""
            if not hmac.compare_digest(given, api_key):
                metrics.requests.labels(label, "401").inc()
                return await error(401, "missing or wrong API key: send 'Authorization: Bearer KEY'",
                                   "authentication_error", {"WWW-Authenticate": "Bearer"})(scope, receive, send)
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > options.max_body_bytes:
            metrics.requests.labels(label, "413").inc()
            return await error(413, f"request body of {int(length):,} bytes; the limit is "
                                    f"{options.max_body_bytes:,} (--max-body-bytes)")(scope, receive, send)
        status = 500
        started = False

        async def send_status(message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        try:
            await app(scope, receive, send_status)
        except Exception as e:  # noqa: BLE001 - a bug: one line to the client, the traceback to the log
            import traceback

            traceback.print_exc()
            status = 500
            if not started:
                first = str(e).splitlines()[0] if str(e) else ""
                await error(500, f"internal error: {type(e).__name__}: {first}", "server_error")(scope, receive, send)
        metrics.requests.labels(label, str(status)).inc()
        metrics.latency.labels(label).observe(time.perf_counter() - t0)

    class Guard:
        def __init__(self, app):
            self.app = app

        async def __call__(self, scope, receive, send):
            await guard(scope, receive, send, self.app)

    app.add_middleware(Guard)

    async def read_json(request: Request) -> Any:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > options.max_body_bytes:
                raise HTTPError(413, f"request body over {options.max_body_bytes:,} bytes (--max-body-bytes)")
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise HTTPError(422, f"the request body is not valid JSON ({e})".splitlines()[0]) from None

    async def embed_texts(texts: list[str], *, normalize: bool, truncate: bool, key=None) -> tuple[np.ndarray, int]:
        batcher: Batcher = state["batcher"]
        _fits_queue(texts, options.max_queue)
        if sum(map(len, texts)) <= INLINE_TOKENIZE_CHARS:  # a thread handoff costs more than this
            lengths = batcher.token_lengths(texts)
        else:  # tokenizing is CPU work: a large request is measured off the event loop
            lengths = await asyncio.to_thread(batcher.token_lengths, texts)
        too_long = [i for i, n in enumerate(lengths) if n > max_length]
        if too_long and not truncate:
            i = too_long[0]
            raise HTTPError(413, f"input {i} has {lengths[i]} tokens, more than the model's {max_length}; shorten it "
                                 "or send truncate: true")
        key = key or (("normalize", bool(normalize)), ("long_text", "truncate"), max_length)
        try:
            vectors = await batcher.submit(texts, lengths, key)
        except MinialbertError as e:
            raise HTTPError(400, str(e)) from None
        used = sum(min(n, max_length) for n in lengths)
        metrics.texts.inc(len(texts))
        metrics.tokens.inc(used)
        return vectors, used

    def handled(fn):
        async def wrapper(request: Request):
            try:
                return await fn(request)
            except HTTPError as e:
                return error(e.status, e.message, e.kind, e.headers)

        import inspect

        wrapper.__name__ = fn.__name__
        # FastAPI reads the handler's signature (string annotations would not resolve here)
        wrapper.__signature__ = inspect.Signature(
            [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request)])
        return wrapper

    @app.post("/v1/embeddings")
    @handled
    async def openai_embeddings(request: Request):
        body = _check_fields(await read_json(request), {"input": None, "encoding_format": (str,),
                                                         "dimensions": (int,), "model": (str,), "user": (str,),
                                                         "truncate": (bool,)})
        if "input" not in body:
            raise HTTPError(422, "'input' is required")
        texts = _texts_of(body["input"], "input", options.max_inputs)
        fmt = body.get("encoding_format") or "float"
        if fmt not in ("float", "base64"):
            raise HTTPError(422, f"'encoding_format' must be 'float' or 'base64', got {fmt!r}")
        dims = body.get("dimensions")
        if dims is not None and dims != embedder.dim:
            raise HTTPError(422, f"'dimensions' {dims} is not supported: this model gives {embedder.dim}-d vectors "
                                 "and was not trained to be shortened; leave 'dimensions' out")
        truncate = body.get("truncate")
        vectors, used = await embed_texts(texts, normalize=embedder.normalize,
                                          truncate=True if truncate is None else truncate, key=default_key
                                          if truncate is not False else None)
        data = []
        for i, v in enumerate(vectors):
            v = np.asarray(v, dtype=np.float32)
            emb = base64.b64encode(v.astype("<f4").tobytes()).decode() if fmt == "base64" else v.tolist()
            data.append({"object": "embedding", "index": i, "embedding": emb})
        return JSONResponse({"object": "list", "data": data, "model": body.get("model") or model_name,
                             "usage": {"prompt_tokens": used, "total_tokens": used}})

    @app.post("/embed")
    @handled
    async def tei_embed(request: Request):
        body = _check_fields(await read_json(request), {"inputs": None, "normalize": (bool,),
                                                         "truncate": (bool,), "truncation_direction": (str,),
                                                         "prompt_name": (str,), "dimensions": (int,)})
        if "inputs" not in body:
            raise HTTPError(422, "'inputs' is required")
        texts = _texts_of(body["inputs"], "inputs", options.max_inputs)
        if body.get("truncation_direction", "Right") not in ("Right", "right"):
            raise HTTPError(422, "only truncation_direction 'Right' is supported")
        if body.get("prompt_name") is not None:
            raise HTTPError(422, "'prompt_name' is not supported by this server: send the prompt in the text")
        dims = body.get("dimensions")
        if dims is not None and dims != embedder.dim:
            raise HTTPError(422, f"'dimensions' {dims} is not supported: this model gives {embedder.dim}-d vectors")
        normalize = body.get("normalize")
        vectors, _ = await embed_texts(texts, normalize=True if normalize is None else normalize,
                                       truncate=bool(body.get("truncate", False)))
        return JSONResponse(np.asarray(vectors, dtype=np.float32).tolist())

    @app.post("/search")
    @handled
    async def search(request: Request):
        if searcher is None:
            raise HTTPError(404, "this server has no index: start it with --index DIR", "not_found")
        body = _check_fields(await read_json(request), {"queries": None, "query": None, "k": (int,),
                                                         "with_text": (bool,)})
        raw = body.get("queries", body.get("query"))
        if raw is None:
            raise HTTPError(422, "'queries' is required")
        queries = _texts_of(raw, "queries", options.max_inputs)
        k = body.get("k", 10)
        if k <= 0:
            raise HTTPError(422, f"'k' must be at least 1, got {k}")
        kw = searcher.kwargs
        key = (("pooling", kw["pooling"]), ("layer", kw["layer"]), ("normalize", kw["normalize"]),
               ("long_text", "truncate"), ("prompt", kw["prompt"]), kw["max_length"])
        vectors, _ = await embed_texts(queries, normalize=kw["normalize"], truncate=True, key=key)
        with_text = body.get("with_text")
        with_text = searcher.index.record.get("with_text") if with_text is None else with_text

        def run():
            scores, ids = searcher.index.search_vectors(vectors, k)
            texts = searcher.index.texts(ids) if with_text else None
            return scores, ids, texts

        try:
            scores, ids, texts = await asyncio.to_thread(run)
        except MinialbertError as e:
            raise HTTPError(422, str(e)) from None
        results = []
        for i in range(len(queries)):
            row = []
            for j in range(ids.shape[1]):
                hit = {"id": int(ids[i, j]), "score": float(scores[i, j])}
                if texts is not None:
                    hit["text"] = texts[i][j]
                row.append(hit)
            results.append(row)
        return JSONResponse({"results": results, "metric": searcher.index.metric, "kind": searcher.index.kind})

    @app.get("/health")
    async def health():
        return JSONResponse({"status": "ok", "model": model_name, "dim": embedder.dim, "max_length": max_length,
                             "queue": state["batcher"].depth if "batcher" in state else 0,
                             "index": searcher.index.kind if searcher is not None else None})

    @app.get("/metrics")
    async def prometheus():
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.text(), media_type=CONTENT_TYPE_LATEST)

    from fastapi.exceptions import RequestValidationError

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc):
        first = (exc.errors() or [{}])[0]
        where = ".".join(str(x) for x in first.get("loc", ()))
        return error(422, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(404)
    async def not_found(request, exc):
        return error(404, f"no such endpoint: {request.method} {request.url.path}", "not_found")

    @app.exception_handler(405)
    async def not_allowed(request, exc):
        return error(405, f"{request.method} is not allowed on {request.url.path}", "invalid_request_error")

    return app


# ------------------------------------------------------------------------- running
def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or one line saying why not (port in use, no such address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named explicitly: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets
    # whose proto says TCP, and accepted connections inherit this socket's. With proto 0, a response
    # written as headers + body waited for the client's delayed ACK: +40 ms on every request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if e.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise ServeError(f"port {port} on {host} is already in use; stop what listens there or choose another "
                             "--port") from None
        raise ServeError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def load(options: ServeOptions):
    """(embedder, searcher or None) for these options; one line if the index holds another model's vectors."""
    from .embed import Embedder

    embedder = Embedder.from_pretrained(options.model, revision=options.revision, cache_dir=options.cache_dir,
                                        local_files_only=options.local_files_only, device=options.device,
                                        backend=options.backend, int8=options.int8)
    searcher = None
    if options.index is not None:
        from .search import Searcher, VectorIndex

        searcher = Searcher(VectorIndex(options.index), embedder)
    return embedder, searcher


def serve(options: ServeOptions, *, ready=None) -> int:
    """Run until SIGTERM/SIGINT (then finish the accepted requests). ready(url) is called once listening."""
    require_serve()
    import uvicorn

    if min(options.max_batch_tokens, options.max_batch_size, options.max_queue, options.max_inputs) < 1:
        raise ServeError("--max-batch-tokens, --max-batch-size, --max-queue and --max-inputs must be at least 1")
    api_key = options.api_key or os.environ.get("MINIALBERT_API_KEY") or None
    options.api_key = api_key
    sock = bind(options.host, options.port)  # before the model loads: a taken port costs nothing
    try:
        embedder, searcher = load(options)
        app = create_app(embedder, options, searcher)
        config = uvicorn.Config(app, log_level=options.log_level, timeout_graceful_shutdown=None,
                                access_log=options.log_level in ("info", "debug"), lifespan="on")
        server = uvicorn.Server(config)
        host, port = sock.getsockname()[:2]
        print(f"minialbert serve: {options.model} on http://{host}:{port} (Ctrl-C or SIGTERM to stop)",
              file=sys.stderr, flush=True)
        if ready is not None:
            ready(f"http://{host}:{port}")
        if threading.current_thread() is threading.main_thread():
            # uvicorn finishes the accepted requests on SIGTERM, then re-raises the signal to the
            # handler that was there before it: make that one a clean exit (status 0)
            signal.signal(signal.SIGTERM, lambda *_: None)
        server.run(sockets=[sock])
        print("minialbert serve: stopped; every accepted request was answered", file=sys.stderr, flush=True)
    finally:
        sock.close()
    return 0
