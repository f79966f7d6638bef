"""hub.py against huggingface_hub, without the network.

A fake Hub (an HTTP server on 127.0.0.1 that answers like huggingface.co's `resolve` URLs,
error headers included) stands in for the real one; HF_ENDPOINT points huggingface_hub at it.
huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE once, when it is imported, and this test
session runs with HF_HUB_OFFLINE=1 (conftest.py), so every online case runs in a fresh
interpreter that only imports minialbert.hub (no torch: about half a second each).
"""

from __future__ import annotations

import ast
import hashlib
import http.server
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import closed_port, online_env
from minialbert import hub

ROOT = Path(__file__).parents[1]
COMMIT = "c0ffee" + "0" * 34
FILES = {"config.json": b'{"model_type": "albert"}\n', "spiece.model": b"not really a model"}


# --------------------------------------------------------------------------- the fake Hub
class FakeHub(http.server.ThreadingHTTPServer):
    """`/{repo}/resolve/{revision}/{file}` for HEAD and GET, with the Hub's error headers.

    Repos: org/model and albert/albert-base-v2 (FILES), org/gated (403 GatedRepo), org/private
    (401 RepoNotFound: what a private repo answers without a token), org/badtoken (401, what any
    repo answers to a wrong token), org/flaky (503 on the first HEAD of each file, then like
    org/model); any other repo is 404 RepoNotFound. Revisions: main and COMMIT.
    """

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, str]] = []
        self.failed_once: set[str] = set()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FakeHub

    def log_message(self, *args):  # quiet
        pass

    def do_HEAD(self):
        self._answer(body=False)

    def do_GET(self):
        self._answer(body=True)

    def _error(self, status: int, code: str | None = None, message: str | None = None):
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        if message:
            self.send_header("X-Error-Message", message)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _answer(self, body: bool):
        with self.server.lock:
            self.server.requests.append((self.command, self.path))
        repo, sep, rest = self.path.lstrip("/").partition("/resolve/")
        if not sep:
            return self._error(404)
        revision, _, filename = rest.partition("/")
        if repo == "org/gated":
            return self._error(403, "GatedRepo", "Access to model org/gated is restricted.")
        if repo == "org/private":
            return self._error(401, "RepoNotFound", "Invalid username or password.")
        if repo == "org/badtoken":
            return self._error(401, None, "Invalid credentials in Authorization header")
        if repo not in ("org/model", "org/flaky", "albert/albert-base-v2"):
            return self._error(404, "RepoNotFound", "Repository not found")
        if revision not in ("main", COMMIT):
            return self._error(404, "RevisionNotFound", "Invalid rev id")
        if filename not in FILES:
            return self._error(404, "EntryNotFound", "Entry not found")
        if repo == "org/flaky" and self.command == "HEAD":
            with self.server.lock:
                first = self.path not in self.server.failed_once
                self.server.failed_once.add(self.path)
            if first:
                return self._error(503, None, "Service Unavailable")
        data = FILES[filename]
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", '"' + hashlib.sha1(data).hexdigest() + '"')
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if body:
            self.wfile.write(data)


@pytest.fixture
def fake_hub():
    server = FakeHub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_server():
    """Accepts TCP connections and never answers: a Hub behind a black hole."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                accepted.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", accepted
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    sock.close()


# Runs in a fresh interpreter: each operation is [name, filename, required, revision]; prints
# one JSON result per operation ({"path": ...}, {"none": true} or {"error": message}) and the
# time all of them took.
LOOKUP = r"""
import json, sys, time
from minialbert import hub
from minialbert.errors import CheckpointError
hub.PROBE_TIMEOUT = float(sys.argv[2])
results, sources = [], {}
start = time.perf_counter()
for name, filename, required, revision in json.loads(sys.argv[1]):
    source = sources.setdefault((name, revision), hub.ModelSource(name, revision=revision))
    try:
        path = source.file(filename, required=required)
        results.append({"none": True} if path is None else {"path": str(path), "data": path.read_text()})
    except CheckpointError as e:
        results.append({"error": str(e)})
print(json.dumps({"results": results, "seconds": time.perf_counter() - start}))
"""


def lookup(tmp_path: Path, endpoint: str, operations: list, *, offline: bool = False, probe_timeout: float = 5.0):
    env = online_env(tmp_path, endpoint, PYTHONPATH=str(ROOT))
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.run([sys.executable, "-c", LOOKUP, json.dumps(operations), str(probe_timeout)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------- imports
def _names_hub_uses() -> tuple[set[str], set[str], set[str]]:
    """What hub.py takes from huggingface_hub: imported names, those imported under
    `try: ... except ImportError` (optional), and error classes looked up by name."""
    tree = ast.parse((ROOT / "minialbert" / "hub.py").read_text())
    imported, optional, errors = set(), set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id == "ImportError" for h in node.handlers):
            optional.update(f"{n.module}:{a.name}" for n in node.body if isinstance(n, ast.ImportFrom) for a in n.names)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("huggingface_hub"):
            imported.update(f"{node.module}:{a.name}" for a in node.names)
        if isinstance(node, ast.keyword) and node.arg and node.arg.endswith("Error"):
            errors.add(node.arg)
    return imported, optional, errors


def test_every_huggingface_hub_name_hub_py_uses_exists():
    import importlib

    imported, optional, errors = _names_hub_uses()
    assert "huggingface_hub:hf_hub_download" in imported and len(errors) >= 8, (imported, errors)
    assert optional <= imported
    for item in sorted(imported):
        module, name = item.split(":")
        mod = importlib.import_module(module)
        if hasattr(mod, name):
            continue
        try:  # `from huggingface_hub import errors` names a submodule
            importlib.import_module(f"{module}.{name}")
        except ImportError:
            assert item in optional, f"hub.py needs {item}, which this huggingface_hub lacks"
    from huggingface_hub import constants

    assert constants.ENDPOINT.startswith("http")
    assert hasattr(hub._http_session(), "head")
    classes = hub.hf_errors()
    assert set(vars(classes)) == errors
    for name, cls in vars(classes).items():
        assert isinstance(cls, type) and issubclass(cls, Exception), name
    # The order of hub.py's except clauses relies on these relations, in every version.
    assert issubclass(classes.GatedRepoError, classes.RepositoryNotFoundError)
    assert issubclass(classes.LocalEntryNotFoundError, classes.EntryNotFoundError)
    assert issubclass(classes.RemoteEntryNotFoundError, classes.EntryNotFoundError)


# ------------------------------------------------------------------------- error mapping
def test_each_hub_answer_becomes_one_clear_message(tmp_path, fake_hub):
    ops = [
        ["org/model", "config.json", True, None],          # found: downloaded into the cache
        ["org/model", "nope.json", False, None],          # optional and absent
        ["org/model", "nope.json", True, None],           # required and absent
        ["nobody/missing", "config.json", True, None],    # no such repo
        ["org/gated", "config.json", True, None],         # gated
        ["org/private", "config.json", True, None],       # 401: private, or no such repo
        ["org/badtoken", "config.json", True, None],      # 401: a bad token
        ["org/model", "config.json", True, "v9"],         # no such revision
        ["org/flaky", "config.json", True, None],         # one 503, then fine: huggingface_hub retries
        ["albert-base-v2", "spiece.model", True, None],   # official short name -> albert/ repo
    ]
    out = lookup(tmp_path, fake_hub.url, ops)["results"]
    found, optional, required, missing, gated, private, badtoken, revision, flaky, official = out
    assert found["data"] == FILES["config.json"].decode()
    assert Path(found["path"]).is_relative_to(tmp_path / "cache" / "models--org--model")
    assert optional == {"none": True}
    assert required["error"] == "nope.json not found in Hub repo org/model"
    assert missing["error"].startswith("unknown model 'nobody/missing': not a local directory and not found on the Hub")
    assert "gated repo" in gated["error"] and "hf auth login" in gated["error"]
    assert private["error"].startswith("unknown model 'org/private'") and "private" in private["error"]
    assert badtoken["error"].startswith("the Hub refused access to org/badtoken (HTTP 401): check your token")
    assert revision["error"] == "revision 'v9' not found in Hub repo org/model"
    from huggingface_hub import file_download

    if hasattr(file_download, "_ETAG_RETRY_TIMEOUT"):  # 1.x: retries a failed HEAD when nothing is cached
        assert flaky["data"] == FILES["config.json"].decode(), flaky
    else:  # older versions do not retry it; the Hub's answer is reported as such
        assert "the Hub answered with an error (" in flaky["error"] and "503" in flaky["error"], flaky
    assert official["data"] == FILES["spiece.model"].decode()
    assert "models--albert--albert-base-v2" in official["path"]
    asked = [path for _, path in fake_hub.requests]
    assert not any(p.startswith("/albert-base-v2/") for p in asked)  # the canonical name answered first
    for message in (r["error"] for r in out if "error" in r):
        assert "\n" not in message


def test_cache_first_then_offline_messages(tmp_path, fake_hub):
    first = lookup(tmp_path, fake_hub.url, [["org/model", "config.json", True, None]])["results"][0]
    assert "path" in first
    n = len(fake_hub.requests)
    # Cached now: offline mode finds it without a request; an uncached file says offline mode is on.
    out = lookup(tmp_path, fake_hub.url, [["org/model", "config.json", True, None],
                                          ["org/model", "spiece.model", True, None],
                                          ["org/model", "spiece.model", False, None]], offline=True)["results"]
    assert out[0]["path"] == first["path"]
    assert out[1]["error"] == ("org/model: spiece.model is not in the local Hugging Face cache and offline mode is "
                               "on (HF_HUB_OFFLINE / local_files_only); pass a local checkpoint directory instead "
                               "(--model PATH on the command line), or connect once to fill the cache")
    assert out[2] == {"none": True}
    # Online again: the cached file is served from the cache, without asking the Hub.
    again = lookup(tmp_path, fake_hub.url, [["org/model", "config.json", True, None]])["results"][0]
    assert again["path"] == first["path"] and len(fake_hub.requests) == n


# ------------------------------------------------------------------- an unreachable Hub
def test_unreachable_hub_is_detected_once_and_fails_fast(tmp_path, silent_server):
    """A Hub that never answers: one probe (two attempts) for the whole command, then every
    file is "not cached" at once. huggingface_hub alone would retry each file with backoff."""
    url, accepted = silent_server
    ops = [["albert-base-v2", "modules.json", False, None], ["albert-base-v2", "tokenizer.json", False, None],
           ["albert-base-v2", "config.json", True, None], ["albert-base-v2", "spiece.model", True, None]]
    result = lookup(tmp_path, url, ops, probe_timeout=1.0)
    optional1, optional2, config, spiece = result["results"]
    assert optional1 == optional2 == {"none": True}
    assert config["error"] == (f"albert-base-v2: config.json is not in the local Hugging Face cache and the Hub "
                               f"({url}) could not be reached; pass a local checkpoint directory instead "
                               "(--model PATH on the command line), or connect once to fill the cache")
    assert spiece["error"].startswith("albert-base-v2: spiece.model is not in the local Hugging Face cache")
    assert 1 <= len(accepted) <= 2  # the probe's attempts (two, unless its deadline came first), nothing after
    assert result["seconds"] < 10  # the bound; about 1 s with this probe timeout


def test_offline_cli_fails_fast_with_one_line(tmp_path):
    """A command that needs the Hub, HF_HUB_OFFLINE unset, nothing listening at the endpoint:
    exit 1 and the one-line message in well under 10 s, start to end (`minialbert embed` took
    98 s before the probe existed). `info` takes the same path through hub.py as `embed`
    (test_unreachable_hub_is_detected_once_and_fails_fast follows embed's sequence of files)
    without importing torch, whose import alone can take seconds on a loaded machine."""
    url = closed_port()
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "minialbert", "info", "nobody/some-albert"], capture_output=True,
                          text=True, env=online_env(tmp_path, url, PYTHONPATH=str(ROOT)), timeout=120)
    seconds = time.perf_counter() - start
    assert proc.returncode == 1 and proc.stdout == "", proc.stderr
    assert proc.stderr == (f"minialbert info: error: nobody/some-albert: config.json is not in the local Hugging Face "
                           f"cache and the Hub ({url}) could not be reached; pass a local checkpoint directory "
                           "instead (--model PATH on the command line), or connect once to fill the cache\n")
    assert seconds < 10, seconds


# --------------------------------------------------------------- the probe's decisions
class _Session:
    def __init__(self, behaviour):
        self.behaviour, self.calls = list(behaviour), 0

    def head(self, url, timeout):
        self.calls += 1
        action = self.behaviour[min(self.calls, len(self.behaviour)) - 1]
        if action == "hang":
            time.sleep(30)  # in a daemon thread the probe stops waiting for
        elif isinstance(action, type):
            raise action("simulated")


@pytest.mark.parametrize("behaviour, reachable, calls", [
    (["ok"], True, 1),
    ([ConnectionError, "ok"], True, 2),          # one dropped attempt on a working network
    ([ConnectionError], False, 2),              # refused twice: offline
    ([TimeoutError], False, 2),
    ([TypeError], True, 1),                      # an API this code does not know: let huggingface_hub decide
])
def test_probe_decision(monkeypatch, behaviour, reachable, calls):
    session = _Session(behaviour)
    monkeypatch.setattr(hub, "_http_session", lambda: session)
    assert hub._probe("http://hub.invalid", timeout=0.2) is reachable
    assert session.calls == calls


def test_probe_gives_up_at_its_deadline(monkeypatch):
    session = _Session(["hang"])
    monkeypatch.setattr(hub, "_http_session", lambda: session)
    start = time.perf_counter()
    assert hub._probe("http://hub.invalid", timeout=0.2) is False
    assert time.perf_counter() - start < 2


def test_verdict_is_reused_then_expires(monkeypatch):
    probes = []
    monkeypatch.setattr(hub, "_verdicts", {})
    monkeypatch.setattr(hub, "_probe", lambda endpoint, timeout: probes.append(endpoint) or True)
    assert hub.hub_reachable() and hub.hub_reachable() and len(probes) == 1
    hub._mark_unreachable()  # a download failed for want of a network
    assert hub.hub_reachable() is False and len(probes) == 1
    monkeypatch.setattr(hub, "VERDICT_TTL", 0.0)
    assert hub.hub_reachable() is True and len(probes) == 2


def test_candidate_names_share_the_preset_list():
    from minialbert.config import PRESETS

    for short in PRESETS:
        assert hub._repo_candidates(short) == [f"albert/{short}", short]
        assert hub._repo_candidates(f"albert/{short}") == [f"albert/{short}", short]
    assert hub._repo_candidates("albert/albert-base-v3") == ["albert/albert-base-v3"]
    assert hub._repo_candidates("someone/albert-base-v2") == ["someone/albert-base-v2"]
