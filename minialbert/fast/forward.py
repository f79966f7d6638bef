"""The fused forward pass: AlbertModel.forward's equations, for a model why_not_stock accepts."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..model import AlbertLayer, AlbertModel, AlbertOutput, additive_attention_mask
from .ops import _FloatOps, _PackCache, _qkv

__all__ = ["fused_forward", "SLICE_TOKENS"]


def _embed(model: AlbertModel, input_ids, token_type_ids, position_ids) -> torch.Tensor:
    emb = model.embeddings
    seq_len = input_ids.shape[1]
    x = F.embedding(input_ids, emb.word.weight)
    # Same sum order as model.py: word + token_type + position.
    if token_type_ids is None:
        x = x + emb.token_type.weight[0]
    else:
        x = x + F.embedding(token_type_ids, emb.token_type.weight)
    if position_ids is None:
        x = x + emb.position.weight[:seq_len]
    else:
        x = x + F.embedding(position_ids, emb.position.weight)
    return F.layer_norm(x, emb.norm.normalized_shape, emb.norm.weight, emb.norm.bias, emb.norm.eps)


class _BoundLayer:
    """One distinct AlbertLayer's weights, resolved by the ops for this call's inputs (once per
    forward, however many times the layer is called)."""

    __slots__ = ("qkv", "output", "up", "down", "heads", "head_dim", "norm1", "norm2")

    def __init__(self, layer: AlbertLayer, h: torch.Tensor, ops):
        att, ff = layer.attention, layer.feed_forward
        self.qkv = ops.bind(_qkv(att), h)
        self.output = ops.bind(att.output, h)
        self.up = ops.bind(ff.up, h)
        self.down = ops.bind(ff.down, h)  # only the rows, dtype and device of h matter
        self.heads, self.head_dim = att.num_heads, att.head_dim
        self.norm1 = (att.norm.normalized_shape, att.norm.weight, att.norm.bias, att.norm.eps)
        self.norm2 = (ff.norm.normalized_shape, ff.norm.weight, ff.norm.bias, ff.norm.eps)


def _layer(bound: _BoundLayer, h: torch.Tensor, mask: torch.Tensor | None, act: str, ops,
           packed: "_Packing | None" = None) -> torch.Tensor:
    """One layer call. h is (batch, seq, H), or with `packed` the (tokens, H) rows of the real
    tokens only: then every GEMM skips the padding, and only attention sees the padded layout."""
    heads, head_dim = bound.heads, bound.head_dim
    qkv = ops.linear(h, bound.qkv)
    if packed is not None:
        qkv = packed.unpack(qkv)
    batch, seq = qkv.shape[:2]
    q, k, v = qkv.view(batch, seq, 3, heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)  # (batch, heads, seq, d_k)
    context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    context = context.transpose(1, 2).reshape(batch, seq, heads * head_dim)
    if packed is not None:
        context = packed.pack(context)
    h = torch.layer_norm(ops.linear_add(context, bound.output, h), *bound.norm1)
    u = ops.linear_act(h, bound.up, act)
    return torch.layer_norm(ops.linear_add(u, bound.down, h), *bound.norm2)


class _Packing:
    """Where the real tokens of a right-padded batch sit, to run the GEMMs on them alone.

    Every Linear, LayerNorm and activation of a layer works row by row, so it may run on the real
    tokens' rows packed together ((tokens, H): no work on padding); attention mixes the rows of a
    sequence, so it runs on the padded layout, rebuilt in a buffer whose padding rows stay zero
    (padding keys are masked; padding queries' outputs are dropped). Output rows of padding
    positions are zero (model.py computes values there that nothing should read)."""

    def __init__(self, attention_mask: torch.Tensor):
        self.batch, self.seq = attention_mask.shape
        self.index = attention_mask.reshape(-1).nonzero().squeeze(1)  # real positions in (batch * seq)
        self._buffer: torch.Tensor | None = None

    @staticmethod
    def worth_it(attention_mask: torch.Tensor) -> bool:
        """For a mask with some padding: right padding only (each row: its tokens, then its
        padding), at least one token per row. Other masks run padded, as model.py does."""
        lengths = attention_mask.sum(dim=1)
        if bool((lengths == 0).any()):  # a row of padding alone: model.py's numbers, padded
            return False
        positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        return bool(((positions < lengths[:, None]) == attention_mask.bool()).all())

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, seq, ...) -> (tokens, ...)."""
        return x.reshape(self.batch * self.seq, *x.shape[2:]).index_select(0, self.index)

    def unpack(self, rows: torch.Tensor) -> torch.Tensor:
        """(tokens, D) -> (batch, seq, D) in a reused buffer, padding rows zero."""
        buffer = self._buffer
        if buffer is None or buffer.shape[-1] != rows.shape[-1] or buffer.dtype != rows.dtype:
            buffer = self._buffer = rows.new_zeros(self.batch * self.seq, rows.shape[-1])
        return self._scatter(rows, buffer)

    def unpack_new(self, rows: torch.Tensor) -> torch.Tensor:
        """(tokens, D) -> a new (batch, seq, D) tensor, padding rows zero."""
        return self._scatter(rows, rows.new_zeros(self.batch * self.seq, rows.shape[-1]))

    def _scatter(self, rows: torch.Tensor, into: torch.Tensor) -> torch.Tensor:
        return into.index_copy_(0, self.index, rows).view(self.batch, self.seq, rows.shape[-1])


# Batches of more than SLICE_TOKENS tokens run in slices of whole rows. The GEMMs are at least as
# fast at 1024 rows as at 4096 (scripts/profile_kernels.py), and a slice's intermediates (12 MB for base)
# are reused by the allocator, while a 32 x 128 batch's 38-50 MB QKV and FFN outputs are above
# glibc's mmap threshold: handed back to the OS after each use and paged in again by the next
# call, ~0.7 ms per MB on the machine measured (int8 at 32 x 128: ~7% faster sliced). It also
# bounds the working memory of very large batches.
SLICE_TOKENS = 1024

# Run right-padded batches on their real tokens only (_Packing). Always True in use; set False
# only to measure what it saves (scripts/bench_padding.py runs both in one process).
PACK_PADDING = True


def fused_forward(model: AlbertModel, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                  ops=None, skip_padding: bool = False) -> AlbertOutput:
    """AlbertModel.forward for inference (last layer and pooler only), fused kernels.

    Assumes what InferenceEngine checks first: a stock model, eval mode, valid inputs. Use the
    engine rather than this function. skip_padding: run a right-padded batch's GEMMs on its real
    tokens only (_Packing); the last hidden state is then zero at padding positions."""
    ops = ops if ops is not None else _FloatOps(_PackCache())
    batch, seq = input_ids.shape
    rows = max(1, SLICE_TOKENS // max(seq, 1))
    if batch > rows:  # rows are independent: run slices and join them
        def part(t, i):  # token types / positions may be one row shared by the batch
            return t[i:i + rows] if t is not None and t.shape[0] == batch else t

        outs = [fused_forward(model, input_ids[i:i + rows], part(attention_mask, i), part(token_type_ids, i),
                              part(position_ids, i), ops, skip_padding) for i in range(0, batch, rows)]
        pooled = None if outs[0].pooler_output is None else torch.cat([o.pooler_output for o in outs])
        return AlbertOutput(torch.cat([o.last_hidden_state for o in outs]), pooled)
    h = _embed(model, input_ids, token_type_ids, position_ids)
    padded = attention_mask is not None and not bool(attention_mask.all())
    packed = None
    if padded and skip_padding and PACK_PADDING and _Packing.worth_it(attention_mask):
        packed = _Packing(attention_mask)
        h = packed.pack(h)
    h = ops.linear(h, ops.bind(model.encoder.project, h))
    mask = additive_attention_mask(attention_mask, h.dtype) if padded else None
    act = model.config.hidden_act
    bound: dict = {}
    for layer in model.encoder.layer_calls():
        b = bound.get(layer)
        if b is None:
            b = bound[layer] = _BoundLayer(layer, h, ops)
        h = _layer(b, h, mask, act, ops, packed)
    if packed is not None:
        h = packed.unpack_new(h)
    pooled = None
    if model.pooler is not None:
        first = h[:, 0]
        pooled = torch.tanh(ops.linear(first, ops.bind(model.pooler, first)))
    return AlbertOutput(h, pooled)
