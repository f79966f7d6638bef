"""Find checkpoint files: a local directory, or a Hugging Face Hub repo through huggingface_hub.

Everything that touches the network or the Hub cache lives here, so the model, the
tokenizer and the embedder only ever see local paths. huggingface_hub does the real work
(cache layout, revisions, HF_HUB_OFFLINE, retries); this module adds ALBERT's two names for
each official checkpoint, asks the Hub only when the cache cannot answer, gives up at once
when the Hub cannot be reached at all, and turns huggingface_hub's many exception types
into one clear message that says what to do.

Supported huggingface_hub versions: 0.20 and later (pyproject.toml). Their exception classes
moved between versions, so they are looked up by name in `hf_errors()`.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

from .config import official_name
from .errors import CheckpointError

# How long one command waits to learn whether the Hub answers at all (two attempts inside it).
PROBE_TIMEOUT = 5.0
# A verdict is reused for this long, so a command that needs a dozen files probes once, and a
# long-running process notices when the network comes back.
VERDICT_TTL = 60.0
_verdicts: dict[str, tuple[float, bool]] = {}  # endpoint -> (time.monotonic() of the probe, reachable)


def _env_offline() -> bool:
    # The two variables huggingface_hub itself honours.
    return any(os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}
               for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _repo_candidates(repo_id: str) -> list[str]:
    """Every name a cache may hold the repo under; for the network, the first one is asked first.

    The official checkpoints moved under the "albert" organisation. The Hub redirects the old
    short names, but a cache filled under one name is not found under the other, so both are
    tried; the canonical "albert/..." name first, which saves the Hub a redirect.
    """
    short = official_name(repo_id)
    if short is None:
        return [repo_id]
    return [f"albert/{short}", short]


def hf_errors() -> SimpleNamespace:
    """huggingface_hub's exception classes, wherever the installed version keeps them.

    `huggingface_hub.errors` holds them all from 0.25 on (the module exists earlier, but
    without most of them); `huggingface_hub.utils` exports them in every version up to now.
    `RemoteEntryNotFoundError` exists from 1.0; earlier, a file missing from a repo raised
    `EntryNotFoundError` itself, which `LocalEntryNotFoundError` subclasses in every version,
    so the local case must always be checked first.
    """
    from huggingface_hub import utils

    try:
        from huggingface_hub import errors as modern
    except ImportError:  # before 0.22
        modern = None

    def find(name: str):
        return getattr(modern, name, None) or getattr(utils, name)

    entry = find("EntryNotFoundError")
    return SimpleNamespace(
        HFValidationError=find("HFValidationError"),
        HfHubHTTPError=find("HfHubHTTPError"),
        RepositoryNotFoundError=find("RepositoryNotFoundError"),
        GatedRepoError=find("GatedRepoError"),
        RevisionNotFoundError=find("RevisionNotFoundError"),
        EntryNotFoundError=entry,
        LocalEntryNotFoundError=find("LocalEntryNotFoundError"),
        RemoteEntryNotFoundError=getattr(modern, "RemoteEntryNotFoundError", None) or entry,
    )


def _http_session():
    """huggingface_hub's own HTTP client (requests before 1.0, httpx after): the same proxies,
    certificates and headers as the downloads that follow."""
    import huggingface_hub

    get_session = getattr(huggingface_hub, "get_session", None)
    if get_session is None:
        from huggingface_hub.utils import get_session
    return get_session()


def _probe(endpoint: str, timeout: float) -> bool:
    """True when `endpoint` answers an HTTP request at all (any status), within `timeout` seconds.

    Two attempts, so that one dropped packet on a working network does not count as "offline".
    The request runs in a daemon thread because a DNS lookup on a machine without network
    can hang far longer than any HTTP timeout covers.
    """
    answer: list[bool] = []
    try:
        session = _http_session()  # here, so that imports do not count against the deadline
    except (AttributeError, TypeError, ImportError):
        return True  # an huggingface_hub whose API this code does not know: let it decide itself

    def attempt() -> None:
        for n in range(2):
            try:
                session.head(endpoint, timeout=timeout / 2)
            except (AttributeError, TypeError):
                # An huggingface_hub whose API this code does not know: let it decide itself.
                answer.append(True)
                return
            except Exception:  # connection refused, DNS failure, timeout, TLS failure, ...
                if n == 0:
                    time.sleep(0.2)
                continue
            answer.append(True)
            return
        answer.append(False)

    thread = threading.Thread(target=attempt, name="minialbert-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(answer and answer[0])


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT.rstrip("/")


def hub_reachable() -> bool:
    """Whether the Hub endpoint (HF_ENDPOINT) answers; probed once per VERDICT_TTL seconds.

    Without this, huggingface_hub retries each missing file with backoff (about 25 s a file
    in 2.x) before it says the network is down: a command asking for eight files took minutes
    to fail on a machine without network. A Hub that answers at all keeps huggingface_hub's
    normal retries for the flaky moments that follow.
    """
    endpoint = _endpoint()
    seen = _verdicts.get(endpoint)
    if seen is not None and time.monotonic() - seen[0] < VERDICT_TTL:
        return seen[1]
    reachable = _probe(endpoint, PROBE_TIMEOUT)
    _verdicts[endpoint] = (time.monotonic(), reachable)
    return reachable


def _mark_unreachable() -> None:
    """A download failed for want of a network after huggingface_hub's own retries: do not
    make the next file of this command go through them again."""
    _verdicts[_endpoint()] = (time.monotonic(), False)


def looks_like_path(name_or_path: str | os.PathLike) -> bool:
    """True when the argument is meant as a filesystem path rather than a Hub repo id.

    Repo ids are "name" or "owner/name": never more than one slash, never a leading
    ".", "/" or "~", never a backslash.
    """
    s = os.fspath(name_or_path)
    return os.path.exists(s) or s.startswith((".", "/", "~")) or s.count("/") > 1 or "\\" in s


class ModelSource:
    """A place checkpoint files come from: `source.file("config.json")` -> local Path.

    `name_or_path` is a local directory or a Hub repo id ("albert-base-v2",
    "albert/albert-base-v2", "user/repo"). With `local_files_only=True`, or the environment
    variable HF_HUB_OFFLINE=1, only the local Hub cache is consulted.
    """

    def __init__(
        self,
        name_or_path: str | os.PathLike,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
    ):
        self.name = os.fspath(name_or_path)
        self.revision = revision
        self.cache_dir = cache_dir
        self.local_files_only = local_files_only or _env_offline()
        # The repo name the first file was found under: every later file comes from the same
        # one, so that a whole checkpoint lands in one snapshot folder.
        self._repo_id: str | None = None
        expanded = os.path.expanduser(self.name)
        if os.path.isdir(expanded):
            self.local_dir: Path | None = Path(expanded)
        elif os.path.exists(expanded):
            raise CheckpointError(
                f"{self.name} is a file, not a checkpoint directory: pass the folder that holds "
                "config.json and the weights"
            )
        elif looks_like_path(self.name):
            raise CheckpointError(
                f"no such directory: {self.name} (pass a local checkpoint folder or a Hub repo id "
                "such as albert-base-v2)"
            )
        else:
            self.local_dir = None

    def __repr__(self) -> str:
        return f"ModelSource({self.name!r})"

    @property
    def is_local(self) -> bool:
        return self.local_dir is not None

    def file(self, filename: str, *, required: bool = True) -> Path | None:
        """Local path of `filename` in this checkpoint; None if absent and not required."""
        if self.local_dir is not None:
            path = self.local_dir / filename
            if path.is_file():
                return path
            if required:
                present = sorted(p.name for p in self.local_dir.iterdir())[:12]
                hint = ""
                if filename == "config.json" and any(name.endswith(".onnx") for name in present):
                    hint = ("; it is an ONNX export: run it with --backend onnxruntime "
                            "(Embedder.from_pretrained(..., backend='onnxruntime'))")
                raise CheckpointError(
                    f"{filename} not found in {self.local_dir} (it holds: "
                    f"{', '.join(present) or 'nothing'}){hint}"
                )
            return None
        return self._hub_file(filename, required)

    # ------------------------------------------------------------------------- the Hub
    def _download(self, repo_id: str, filename: str, local_only: bool) -> Path:
        # Imported here: huggingface_hub costs ~0.3 s to import and local use never needs it.
        from huggingface_hub import hf_hub_download

        path = Path(hf_hub_download(repo_id, filename, revision=self.revision, cache_dir=self.cache_dir,
                                    local_files_only=local_only))
        self._repo_id = repo_id
        return path

    def _hub_file(self, filename: str, required: bool) -> Path | None:
        err = hf_errors()
        candidates = [self._repo_id] if self._repo_id else _repo_candidates(self.name)
        # 1. The cache, under every name: no request at all when the file is there.
        for repo_id in candidates:
            try:
                return self._download(repo_id, filename, local_only=True)
            except err.HFValidationError as e:
                raise CheckpointError(
                    f"{self.name!r} is neither a local directory nor a valid Hub repo id ({e})"
                ) from None
            except err.LocalEntryNotFoundError:
                continue
        if self.local_files_only:
            return self._not_cached(filename, required, "offline mode is on (HF_HUB_OFFLINE / local_files_only)")
        # 2. The network, once we know the Hub answers at all.
        if not hub_reachable():
            return self._not_cached(filename, required, f"the Hub ({_endpoint()}) could not be reached")
        last_error: Exception | None = None
        for repo_id in candidates:
            try:
                return self._download(repo_id, filename, local_only=False)
            except err.GatedRepoError:  # before RepositoryNotFoundError: it is a subclass
                raise CheckpointError(
                    f"{repo_id} is a gated repo: accept its conditions on its Hub page and log in "
                    "(`hf auth login` or HF_TOKEN), or pass a local checkpoint directory"
                ) from None
            except err.RepositoryNotFoundError as e:  # also what a private repo answers without a token
                last_error = e
                continue
            except err.RevisionNotFoundError:
                raise CheckpointError(f"revision {self.revision!r} not found in Hub repo {repo_id}") from None
            except err.LocalEntryNotFoundError as e:
                # huggingface_hub's word for "the request failed and the cache has nothing",
                # after its own retries. What failed is in __cause__: an HTTP answer (older
                # versions wrap a 401 or a 5xx this way), or the network itself.
                if isinstance(e.__cause__, err.HfHubHTTPError):
                    return self._http_error(e.__cause__, repo_id, filename, required)
                _mark_unreachable()
                reason = str(e.__cause__ or e).splitlines()[0][:150]
                return self._not_cached(filename, required, f"the Hub could not be reached ({reason})")
            except err.RemoteEntryNotFoundError:
                self._repo_id = repo_id  # the repo exists: later files come from it too
                if required:
                    raise CheckpointError(f"{filename} not found in Hub repo {repo_id}") from None
                return None
            except err.HfHubHTTPError as e:  # 401/403 (a bad token), 5xx after retries, ...
                return self._http_error(e, repo_id, filename, required)
            except OSError as e:  # a network failure huggingface_hub did not wrap
                _mark_unreachable()
                return self._not_cached(filename, required, f"the Hub could not be reached ({e})")
        if not required:
            return None
        raise CheckpointError(
            f"unknown model {self.name!r}: not a local directory and not found on the Hub "
            f"({type(last_error).__name__}); check the name, log in (`hf auth login`) if it is "
            "private, or pass a local checkpoint directory"
        )

    def _http_error(self, e: Exception, repo_id: str, filename: str, required: bool) -> None:
        """The Hub answered, with an HTTP error that is none of the specific ones above."""
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status in (401, 403):
            raise CheckpointError(
                f"the Hub refused access to {repo_id} (HTTP {status}): check your token "
                "(`hf auth login` or HF_TOKEN), or pass a local checkpoint directory"
            ) from None
        reason = str(e).splitlines()[0][:150]
        return self._not_cached(filename, required, f"the Hub answered with an error ({reason})")

    def _not_cached(self, filename: str, required: bool, why: str) -> None:
        if not required:
            return None
        raise CheckpointError(
            f"{self.name}: {filename} is not in the local Hugging Face cache and {why}; "
            "pass a local checkpoint directory instead (--model PATH on the command line), or "
            "connect once to fill the cache"
        )

    def checkpoint_folder(self, subfolder: str = "") -> Path:
        """Resolve a whole model + tokenizer checkpoint and return the local folder that holds it.

        For a Hub repo this downloads (or finds in the cache) config.json, the weights
        (model.safetensors, else pytorch_model.bin), spiece.model and/or tokenizer.json and the
        optional tokenizer files; they all land in one snapshot folder, which the loaders then read like any
        local directory.
        """
        prefix = f"{subfolder.strip('/')}/" if subfolder.strip("/") else ""
        config_path = self.file(prefix + "config.json")
        if self.file(prefix + "model.safetensors", required=False) is None:
            self.file(prefix + "pytorch_model.bin", required=False)
        for optional in ("tokenizer_config.json", "tokenizer.json", "special_tokens_map.json"):
            self.file(prefix + optional, required=False)
        # The tokenizer: spiece.model, or (as transformers v5 saves it) tokenizer.json alone.
        if (self.file(prefix + "spiece.model", required=False) is None
                and self.file(prefix + "tokenizer.json", required=False) is None):
            raise CheckpointError(f"{self.name}: no spiece.model or tokenizer.json found beside config.json, "
                                  "so there is no tokenizer to load")
        return config_path.parent
