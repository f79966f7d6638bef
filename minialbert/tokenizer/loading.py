"""What the files of a tokenizer folder mean: spiece.model and/or tokenizer.json (the
vocabulary), tokenizer_config.json (the settings), and the config written back on saving."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..errors import CheckpointError
from ..jsonio import read_json
from .segment import AddedToken
from .spm_model import CONTROL, UNKNOWN, USER_DEFINED, SpmModel
from .tokenizer_json import read_tokenizer_json


@dataclass
class Vocabulary:
    """The pieces and everything else the files say, whichever layout they come in."""

    pieces: list[tuple[str, float]]
    unk_id: int | None  # the model's unknown piece (used when unk_token is not a piece)
    charsmap: bytes  # the precompiled character map, b"" for none
    added_tokens: list[dict]  # as transformers registers them without a tokenizer_config.json
    spm_bytes: bytes | None  # spiece.model itself (for compat="original"); None without one
    lowercase: bool | None = None  # what tokenizer.json's normalizer does; None without one
    strip_accents: bool | None = None
    template_ids: tuple[int, int] | None = None  # ids tokenizer.json's template adds for [CLS], [SEP]


def read_vocabulary(
    vocab_file: str | os.PathLike | None,
    tokenizer_file: str | os.PathLike | None,
    *,
    user_defined_added: bool = False,
) -> Vocabulary:
    """Read spiece.model and/or tokenizer.json. As in transformers, a tokenizer.json wins for
    the pieces, scores, character map and added tokens (its digit+comma pieces score 100 lower
    than in spiece.model: AlbertConverter).

    From spiece.model alone, the control pieces ([CLS] [SEP] [MASK]) become added tokens, as
    transformers registers them. The user-defined pieces (( ) " - . – £ € in ALBERT) do too
    only with `user_defined_added` (compat="transformers<5.25"): transformers 5.25 stopped
    that for Unigram models, so they are emitted whole inside words, as SentencePiece does."""
    added_types = (CONTROL, USER_DEFINED) if user_defined_added else (CONTROL,)
    spm_bytes = None
    vocab = None
    if vocab_file is not None:
        try:
            spm_bytes = Path(vocab_file).read_bytes()
        except OSError as e:
            raise CheckpointError(f"cannot read SentencePiece model {vocab_file}: {e}") from None
        try:
            model = SpmModel.parse(spm_bytes)
        except Exception:
            raise CheckpointError(
                f"{vocab_file} is not a SentencePiece model file (expected ALBERT's spiece.model)"
            ) from None
        if model.model_type != 1:
            raise CheckpointError(f"{vocab_file} is not a unigram SentencePiece model (ALBERT uses unigram)")
        vocab = Vocabulary(
            pieces=[(p, s) for p, s, _ in model.pieces],
            unk_id=next((i for i, (_, _, t) in enumerate(model.pieces) if t == UNKNOWN), None),
            charsmap=model.charsmap,
            added_tokens=[
                {"content": p, "id": i, "special": t == CONTROL, "normalized": False}
                for i, (p, _, t) in enumerate(model.pieces)
                if t in added_types
            ],
            spm_bytes=spm_bytes,
        )
    if tokenizer_file is not None:
        tj = read_tokenizer_json(tokenizer_file)
        vocab = Vocabulary(
            pieces=tj.pieces,
            unk_id=tj.unk_id if tj.unk_id is not None else (vocab.unk_id if vocab else None),
            charsmap=tj.charsmap,  # transformers takes the map from tokenizer.json, or none
            added_tokens=tj.added_tokens,
            spm_bytes=spm_bytes,
            lowercase=tj.lowercase,
            strip_accents=tj.strip_accents,
            template_ids=tj.template_ids,
        )
    if vocab is None:
        raise CheckpointError("no tokenizer files: give ALBERT's spiece.model or its tokenizer.json")
    return vocab


def kwargs_from_config(config: dict, tokenizer_file: str | os.PathLike | None) -> dict[str, Any]:
    """AlbertTokenizer keywords from a tokenizer_config.json (as transformers reads it)."""
    if config.get("add_prefix_space") is False:
        raise CheckpointError(
            "tokenizer_config.json sets add_prefix_space=false; ALBERT prepends '▁' to every word "
            "and minialbert supports only that"
        )
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
                for e in read_json(Path(tokenizer_file)).get("added_tokens") or []:
                    base[int(e["id"])] = e
            except (OSError, ValueError, KeyError):
                pass
        for k, v in atd.items():
            if isinstance(v, dict):
                base[int(k)] = {**v, "id": int(k)}
        kwargs["added_tokens"] = list(base.values())
    # minialbert's own key: the tokenization algorithm this folder's model was trained with
    # (written by save_pretrained, e.g. after pre-training with compat="original").
    if isinstance(config.get("minialbert_compat"), str):
        kwargs["compat"] = config["minialbert_compat"]
    return kwargs


def config_for_saving(settings: dict[str, Any], added: Iterable[AddedToken], compat: str) -> dict[str, Any]:
    """tokenizer_config.json, readable by transformers and by kwargs_from_config: `settings`
    (do_lower_case, keep_accents, model_max_length and the special token names), the added
    tokens, and minialbert's own key for the compat mode."""
    return {
        "tokenizer_class": "AlbertTokenizer",
        "do_lower_case": settings["do_lower_case"],
        "keep_accents": settings["keep_accents"],
        "remove_space": True,
        "model_max_length": settings["model_max_length"],
        **{k: settings[k] for k in ("unk_token", "pad_token", "cls_token", "sep_token", "mask_token")},
        "added_tokens_decoder": {
            str(t.id): {"content": t.content, "special": t.special, "lstrip": t.lstrip,
                        "rstrip": t.rstrip, "normalized": t.normalized, "single_word": False}
            for t in sorted(added, key=lambda t: t.id)
        },
        "minialbert_compat": compat,
    }
