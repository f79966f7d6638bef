"""What the files of a tokenizer folder mean: tokenizer_config.json in, and out again."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CheckpointError
from ..jsonio import read_json_object

if TYPE_CHECKING:
    from .albert import AlbertTokenizer


def kwargs_from_config(config: dict, tokenizer_file: str | None) -> dict[str, Any]:
    """AlbertTokenizer keywords from a tokenizer_config.json (as transformers reads it)."""
    kwargs: dict[str, Any] = {}
    for key in ("do_lower_case", "keep_accents", "model_max_length"):
        if key in config and config[key] is not None:
            kwargs[key] = config[key]
    if kwargs.get("model_max_length", 0) > 10**12:  # transformers' "unset" sentinel
        kwargs.pop("model_max_length")
    for key in ("unk_token", "pad_token", "cls_token", "sep_token", "mask_token"):
        value = config.get(key)
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str):
            kwargs[key] = value
    atd = config.get("added_tokens_decoder")
    if isinstance(atd, dict) and atd:
        base: dict[int, dict] = {}
        if tokenizer_file:
            try:
                for e in read_json_object(Path(tokenizer_file)).get("added_tokens") or []:
                    base[int(e["id"])] = e
            except (OSError, ValueError, KeyError):
                pass
        for k, v in atd.items():
            if isinstance(v, dict):
                base[int(k)] = {**v, "id": int(k)}
        kwargs["added_tokens"] = list(base.values())
    if tokenizer_file:
        kwargs["tokenizer_file"] = tokenizer_file
    # minialbert's own key: the tokenization algorithm this folder's model was trained with
    # (written by save_pretrained, e.g. after pre-training with compat="original").
    if isinstance(config.get("minialbert_compat"), str):
        kwargs["compat"] = config["minialbert_compat"]
    return kwargs


def read_tokenizer_json(path: Path) -> tuple[list[tuple[str, float]], bytes, list[dict]]:
    """(pieces and scores, precompiled character map or b"", added tokens) of a tokenizers
    Unigram tokenizer.json."""
    try:
        tj = json.loads(Path(path).read_text(encoding="utf-8"))
        vocab = tj["model"]["vocab"]
        pieces = [(str(p), float(s)) for p, s in vocab]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(
            f"cannot use {path}: expected a tokenizers Unigram tokenizer.json ({e})"
        ) from None
    # transformers takes the character map from tokenizer.json's normalizer, or none.
    charsmap = b""
    norm = tj.get("normalizer") or {}
    norms = norm.get("normalizers", [norm]) if norm.get("type") == "Sequence" else [norm]
    for nz in norms:
        if isinstance(nz, dict) and nz.get("type") == "Precompiled" and nz.get("precompiled_charsmap"):
            charsmap = base64.b64decode(nz["precompiled_charsmap"])
            break
    return pieces, charsmap, list(tj.get("added_tokens") or [])


def config_for_saving(tok: "AlbertTokenizer") -> dict[str, Any]:
    """tokenizer_config.json for `tok`, readable by transformers and by kwargs_from_config."""
    return {
        "tokenizer_class": "AlbertTokenizer",
        "do_lower_case": tok.do_lower_case,
        "keep_accents": tok.keep_accents,
        "remove_space": True,
        "model_max_length": tok.model_max_length,
        "unk_token": tok.unk_token,
        "pad_token": tok.pad_token,
        "cls_token": tok.cls_token,
        "sep_token": tok.sep_token,
        "mask_token": tok.mask_token,
        "added_tokens_decoder": {
            str(t.id): {"content": t.content, "special": t.special, "lstrip": t.lstrip,
                        "rstrip": t.rstrip, "normalized": False, "single_word": False}
            for t in sorted(tok._added.values(), key=lambda t: t.id)
        },
        "minialbert_compat": tok.compat,
    }
