"""Reading the JSON files of a checkpoint folder, with one-line errors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import CheckpointError


def read_json(path: str | os.PathLike) -> Any:
    """The parsed content of a JSON file; CheckpointError when it cannot be read or parsed."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise CheckpointError(f"cannot read {path}: {e}") from None


def read_json_object(path: str | os.PathLike) -> dict:
    """Like read_json, for files that must hold a JSON object (config.json and the like)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} does not hold a JSON object")
    return data
