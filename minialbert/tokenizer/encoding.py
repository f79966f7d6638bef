"""The tokenizer's output: truncation, padding and the BatchEncoding dict, as in transformers."""

from __future__ import annotations

from typing import Any

from ..errors import MinialbertError

PADDING = {False: None, None: None, "do_not_pad": None, True: "longest", "longest": "longest", "max_length": "max_length"}
TRUNCATION = {
    False: None,
    None: None,
    "do_not_truncate": None,
    True: "longest_first",
    "longest_first": "longest_first",
    "only_first": "only_first",
    "only_second": "only_second",
}


class BatchEncoding(dict):
    """A dict (input_ids, token_type_ids, attention_mask[, offset_mapping]) with attribute access."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to(self, device: Any) -> "BatchEncoding":
        return BatchEncoding({k: (v.to(device) if hasattr(v, "to") else v) for k, v in self.items()})


def modes(padding: Any, truncation: Any) -> tuple[str | None, str | None]:
    """(padding mode, truncation mode) of transformers' padding= and truncation= values."""
    try:
        pad_mode = PADDING[padding]
    except (KeyError, TypeError):
        raise MinialbertError(f"padding must be False, True, 'longest' or 'max_length', not {padding!r}") from None
    try:
        trunc_mode = TRUNCATION[truncation]
    except (KeyError, TypeError):
        raise MinialbertError(
            "truncation must be False, True, 'longest_first', 'only_first' or 'only_second', "
            f"not {truncation!r}"
        ) from None
    return pad_mode, trunc_mode


def truncate_lengths(la: int, lb: int | None, budget: int, mode: str) -> tuple[int, int | None]:
    """Target lengths, as tokenizers' truncate_encodings computes them, for a `budget` of
    tokens left after the special tokens (the caller checks that it is not negative)."""
    if lb is None:
        if mode == "only_second":
            raise MinialbertError("truncation='only_second' needs a text_pair")
        return min(la, budget), None
    if la + lb <= budget:
        return la, lb
    if mode == "longest_first":
        n1, n2 = la, lb
        swap = n1 > n2
        if swap:
            n1, n2 = n2, n1
        if n1 > budget:
            n2 = n1
        else:
            n2 = max(n1, budget - n1)
        if n1 + n2 > budget:
            n1 = budget // 2
            n2 = n1 + budget % 2
        if swap:
            n1, n2 = n2, n1
        return min(la, n1), min(lb, n2)
    to_remove = la + lb - budget
    if mode == "only_first":
        if la > to_remove:
            return la - to_remove, lb
    else:
        if lb > to_remove:
            return la, lb - to_remove
    raise MinialbertError(
        f"truncation={mode!r} cannot fit the pair into max_length: the sequence to truncate is "
        "too short; use truncation='longest_first' or a larger max_length"
    )


def pad(
    input_ids: list[list[int]],
    type_ids: list[list[int]],
    offsets: list[list[tuple[int, int]]],
    *,
    pad_id: int,
    target: int,
) -> list[list[int]]:
    """Pad every row on the right to `target` tokens (in place); return the attention masks."""
    masks = [[1] * len(s) for s in input_ids]
    for k in range(len(input_ids)):
        missing = target - len(input_ids[k])
        if missing > 0:
            input_ids[k] = input_ids[k] + [pad_id] * missing
            type_ids[k] = type_ids[k] + [0] * missing
            masks[k] = masks[k] + [0] * missing
            if offsets:
                offsets[k] = offsets[k] + [(0, 0)] * missing
    return masks


def to_tensor(rows: list, kind: str) -> Any:
    if kind == "np":
        import numpy as np

        return np.asarray(rows, dtype=np.int64)
    import torch

    return torch.tensor(rows, dtype=torch.long)
