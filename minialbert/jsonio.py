"""Reading the JSON files of a checkpoint folder, with one-line errors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import CheckpointError


def read_json(path: str | os.PathLike, *, expect: type = dict) -> Any:
    """A checkpoint's JSON file (config, tokenizer or sentence-transformers settings), checked
    to hold a JSON `expect` (dict, list, or object for anything); a CheckpointError naming the
    file otherwise."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise CheckpointError(f"cannot read {path}: {e}") from None
    if not isinstance(data, expect):
        kind = {dict: "a JSON object", list: "a JSON list"}.get(expect, expect.__name__)
        raise CheckpointError(f"{path} does not hold {kind}")
    return data
