"""Pooling: (batch, seq, H) token vectors + mask -> one vector per text.

The seven modes of `Embedder.embed(pooling=...)`; the same names sentence-transformers uses,
except `mean_sqrt_len` (its `mean_sqrt_len_tokens`) and `pooler` (ALBERT's own pooler layer).
"""

from __future__ import annotations

import torch

from .errors import MinialbertError

POOLINGS = ("cls", "mean", "max", "pooler", "mean_sqrt_len", "weightedmean", "lasttoken")


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str, pooler_output: torch.Tensor | None = None,
         skip: int = 0) -> torch.Tensor:
    """(batch, seq, H) token vectors + (batch, seq) mask -> (batch, H) one vector per text.

    cls:           h_[CLS], the first token (BERT's sentence vector, the usual recipe)
    mean:          sum_t m_t h_t / sum_t m_t           (padding excluded)
    max:           max over real tokens, per dimension
    mean_sqrt_len: sum_t m_t h_t / sqrt(sum_t m_t)    (sentence-transformers' mean_sqrt_len_tokens)
    weightedmean:  sum_t t m_t h_t / sum_t t m_t      (t = 1, 2, ... the position; later tokens weigh more)
    lasttoken:     h of the last real token ([SEP]: minialbert pads on the right)
    pooler:        tanh(W h_[CLS] + b), the output of ALBERT's pooler layer

    skip > 0 leaves the first `skip` tokens out of the pooling (not out of attention): that is
    how a sentence-transformers model with include_prompt=false drops [CLS] and the prompt's
    tokens. cls then takes the first token left in, and weightedmean keeps the positions t of
    the full sequence, both as sentence-transformers does.
    """
    if mode == "pooler":
        if pooler_output is None:
            raise MinialbertError("pooling='pooler' needs pooler weights, and this checkpoint has none; "
                                  "use pooling='cls' or 'mean'")
        return pooler_output
    if skip:
        mask = mask.clone()
        mask[:, :skip] = 0
    rows = torch.arange(hidden.size(0), device=hidden.device)
    if mode == "cls":
        # argmax finds the first 1; a row with nothing left (a prompt as long as the sequence) gives 0
        return hidden[:, 0] if not skip else hidden[rows, mask.argmax(dim=1)]
    if mode == "lasttoken":
        last = hidden.size(1) - 1 - mask.flip(1).argmax(dim=1)
        return hidden[rows, last] * mask[rows, last].unsqueeze(-1).to(hidden.dtype)  # zeros if nothing is left
    m = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "max":
        return hidden.masked_fill(m == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
    if mode == "weightedmean":
        # positions in float32 even for half-precision runs: bfloat16 holds integers exactly only up to 256
        acc = torch.promote_types(hidden.dtype, torch.float32)
        positions = torch.arange(1, hidden.size(1) + 1, device=hidden.device, dtype=acc).view(1, -1, 1)
        weights = m.to(acc) * positions
        return ((hidden.to(acc) * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)).to(hidden.dtype)
    total = (hidden * m).sum(dim=1)
    count = m.sum(dim=1).clamp(min=1e-9)
    if mode == "mean":
        return total / count
    if mode == "mean_sqrt_len":
        return total / count.sqrt()
    raise MinialbertError(f"unknown pooling {mode!r}; choose from {', '.join(POOLINGS)}")
