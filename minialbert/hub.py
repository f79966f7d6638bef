"""Find checkpoint files: a local directory, or a Hugging Face Hub repo through huggingface_hub.

Everything that touches the network or the Hub cache lives here, so the model, the
tokenizer and the embedder only ever see local paths. huggingface_hub does the real work
(cache layout, revisions, HF_HUB_OFFLINE); this module adds ALBERT's short names and turns
huggingface_hub's many exception types into one clear message that says what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import CheckpointError

# The official checkpoints moved under the "albert" organisation; the Hub redirects the old
# short names, but a cache filled under one name is not found under the other, so try both.
OFFICIAL_SHORT_NAMES = tuple(
    f"albert-{size}-v{v}" for v in (1, 2) for size in ("base", "large", "xlarge", "xxlarge")
)


def _env_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _repo_candidates(repo_id: str) -> list[str]:
    if repo_id in OFFICIAL_SHORT_NAMES:
        return [repo_id, f"albert/{repo_id}"]
    if repo_id.startswith("albert/") and repo_id[len("albert/"):] in OFFICIAL_SHORT_NAMES:
        return [repo_id, repo_id[len("albert/"):]]
    return [repo_id]


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
                raise CheckpointError(
                    f"{filename} not found in {self.local_dir} (it holds: "
                    f"{', '.join(present) or 'nothing'})"
                )
            return None
        return self._hub_file(filename, required)

    def _hub_file(self, filename: str, required: bool) -> Path | None:
        # Imported here: huggingface_hub costs ~0.3 s to import and local use never needs it.
        from huggingface_hub import hf_hub_download
        from huggingface_hub import errors as hf_errors

        not_cached = False
        missing_in_repo = False
        last_error: Exception | None = None
        for repo_id in _repo_candidates(self.name):
            # Cache first for every candidate name, then the network: an offline-capable
            # order that never makes a request when the file is already cached.
            for local_only in (True, False) if not self.local_files_only else (True,):
                try:
                    return Path(
                        hf_hub_download(
                            repo_id,
                            filename,
                            revision=self.revision,
                            cache_dir=self.cache_dir,
                            local_files_only=local_only,
                        )
                    )
                except hf_errors.HFValidationError as e:
                    raise CheckpointError(
                        f"{self.name!r} is neither a local directory nor a valid Hub repo id ({e})"
                    ) from None
                except hf_errors.RepositoryNotFoundError as e:
                    last_error = e
                    break
                except hf_errors.RevisionNotFoundError:
                    raise CheckpointError(
                        f"revision {self.revision!r} not found in Hub repo {repo_id}"
                    ) from None
                except (hf_errors.EntryNotFoundError, hf_errors.RemoteEntryNotFoundError) as e:
                    if isinstance(e, hf_errors.LocalEntryNotFoundError):
                        not_cached = True
                        last_error = e
                        continue
                    missing_in_repo = True
                    last_error = e
                    break
                except (OSError, hf_errors.HfHubHTTPError) as e:
                    # Network down, DNS failure, proxy refusal...: treat as "not cached".
                    not_cached = True
                    last_error = e
                    continue
        if not required and (missing_in_repo or not_cached):
            return None
        if missing_in_repo:
            raise CheckpointError(f"{filename} not found in Hub repo {self.name}")
        if not_cached:
            how = (
                "offline mode is on (HF_HUB_OFFLINE / local_files_only)"
                if self.local_files_only
                else "the Hub could not be reached"
            )
            raise CheckpointError(
                f"{self.name}: {filename} is not in the local Hugging Face cache and {how}; "
                "pass a local checkpoint directory instead (--model PATH on the command line), or "
                "connect once to fill the cache"
            )
        raise CheckpointError(
            f"unknown model {self.name!r}: not a local directory and not found on the Hub "
            f"({type(last_error).__name__}); check the name or pass a local checkpoint directory"
        )

    def checkpoint_folder(self, subfolder: str = "") -> Path:
        """Resolve a whole model + tokenizer checkpoint and return the local folder that holds it.

        For a Hub repo this downloads (or finds in the cache) config.json, the weights
        (model.safetensors, else pytorch_model.bin), spiece.model and the optional tokenizer
        files; they all land in one snapshot folder, which the loaders then read like any
        local directory.
        """
        prefix = f"{subfolder.strip('/')}/" if subfolder.strip("/") else ""
        config_path = self.file(prefix + "config.json")
        if self.file(prefix + "model.safetensors", required=False) is None:
            self.file(prefix + "pytorch_model.bin", required=False)
        for optional in ("tokenizer_config.json", "tokenizer.json", "special_tokens_map.json"):
            self.file(prefix + optional, required=False)
        if self.file(prefix + "spiece.model", required=False) is None:
            raise CheckpointError(f"{self.name}: no spiece.model found beside config.json, so there is "
                                  "no tokenizer to load")
        return config_path.parent
