"""Parameter arithmetic: where ALBERT's parameters are, and what factorization and sharing save.

Computed from the config with closed-form counts (no model is built), and checked against
the real modules by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import AlbertConfig


def attention_params(c: AlbertConfig, heads: int | None = None) -> int:
    H = c.hidden_size
    A = H if heads is None else heads * c.head_dim  # narrower once heads are pruned
    return 3 * (H * A + A) + (A * H + H) + 2 * H  # W^Q, W^K, W^V, W^O with biases, then LayerNorm


def ffn_params(c: AlbertConfig, intermediate_size: int | None = None) -> int:
    H, I = c.hidden_size, c.intermediate_size if intermediate_size is None else intermediate_size
    return (H * I + I) + (I * H + H) + 2 * H  # W_1, W_2 with biases, then LayerNorm


def embedding_params(c: AlbertConfig, width: int) -> int:
    return (c.vocab_size + c.max_position_embeddings + c.type_vocab_size) * width + 2 * width


@dataclass
class ParameterCount:
    word_embeddings: int  # V x E
    position_and_type_embeddings: int  # (P + T) x E + LayerNorm
    projection: int  # E x H + H
    layers: int  # all distinct layer weights
    distinct_attention_blocks: int
    distinct_ffn_blocks: int
    pooler: int
    mlm_head: int
    sop_head: int
    bert_equivalent: int  # unfactorized (V x H), unshared (a layer per application), same H, shapes, pooler
    bert_layers: int  # its layers: one per layer application, with that application's (pruned) shapes

    @property
    def model(self) -> int:
        """AlbertModel with pooler (what `AlbertModel.from_pretrained` holds)."""
        return (self.word_embeddings + self.position_and_type_embeddings + self.projection
                + self.layers + self.pooler)

    @property
    def pretraining(self) -> int:
        return self.model + self.mlm_head + self.sop_head


def layer_applications(c: AlbertConfig) -> list[int]:
    """The distinct layer each layer application runs, in order: for sharing "all", call i runs
    every inner layer of group g(i) (indices g * inner_group_num + j); unshared layouts store one
    layer per num_hidden_layers. The BERT-style count gives each application its own weights."""
    if c.sharing != "all":
        return list(range(c.num_hidden_layers))
    return [c.group_index(i) * c.inner_group_num + j for i in range(c.layer_call_count) for j in range(c.inner_group_num)]


def is_pruned(c: AlbertConfig) -> bool:
    return c.layer_attention_heads is not None or c.layer_intermediate_sizes is not None


def count_parameters(c: AlbertConfig) -> ParameterCount:
    E, H = c.embedding_size, c.hidden_size
    if c.sharing == "all":
        n_attn = n_ffn = c.num_hidden_groups * c.inner_group_num
    else:
        n_attn = 1 if c.sharing == "attention" else c.num_hidden_layers
        n_ffn = 1 if c.sharing == "ffn" else c.num_hidden_layers
    pooler = H * H + H

    def layer(i: int) -> int:  # the i-th distinct layer, with its own (pruned) shapes
        return attention_params(c, c.layer_heads(i)) + ffn_params(c, c.layer_intermediate_size(i))

    # the BERT-style model: one layer of its own per application, each with the shapes it runs
    bert_layers = sum(layer(i) for i in layer_applications(c))
    bert = embedding_params(c, H) + bert_layers + pooler
    return ParameterCount(
        word_embeddings=c.vocab_size * E,
        position_and_type_embeddings=(c.max_position_embeddings + c.type_vocab_size) * E + 2 * E,
        projection=E * H + H,
        layers=(sum(layer(i) for i in range(c.num_distinct_layers)) if is_pruned(c)  # per distinct layer
                else n_attn * attention_params(c) + n_ffn * ffn_params(c)),
        distinct_attention_blocks=n_attn,
        distinct_ffn_blocks=n_ffn,
        pooler=pooler,
        mlm_head=(H * E + E) + 2 * E + c.vocab_size,  # dense, LayerNorm, output bias (decoder tied)
        sop_head=2 * H + 2,
        bert_equivalent=bert,
        bert_layers=bert_layers,
    )


def describe(c: AlbertConfig, name: str = "") -> str:
    """The text `minialbert info` prints."""
    n = count_parameters(c)
    E, H, V = c.embedding_size, c.hidden_size, c.vocab_size
    applications = len(layer_applications(c))

    def row(label: str, value: int, note: str = "") -> str:
        return f"  {label:<34}{value:>14,}  {note}".rstrip()

    factorization_saving = embedding_params(c, H) - embedding_params(c, E) - n.projection
    sharing_saving = n.bert_layers - n.layers
    lines = [f"ALBERT model {name}".rstrip(), "config:"]
    for key, value in c.to_dict().items():
        if key in ("architectures", "transformers_version", "torch_dtype", "dtype"):
            continue
        lines.append(f"  {key:<34}{value}")
    calls = c.layer_call_count
    shared = (
        f"{c.num_hidden_groups} group(s) x {c.inner_group_num} layer(s), called {calls} times"
        if c.sharing == "all" else f"sharing={c.sharing}: {n.distinct_attention_blocks} attention, "
        f"{n.distinct_ffn_blocks} FFN blocks" + (f", the first {calls} run" if calls != c.num_hidden_layers else "")
    )
    if is_pruned(c):
        unpruned = count_parameters(c.replace(layer_attention_heads=None, layer_intermediate_sizes=None))
        lines.append(f"pruned layer shapes (head width {c.head_dim}, as before pruning):")
        for i in range(c.num_distinct_layers):
            lines.append(f"  layer {i:<28}{c.layer_heads(i)} of {c.num_attention_heads} heads, "
                         f"{c.layer_intermediate_size(i):,} of {c.intermediate_size:,} FFN neurons")
    lines += [
        "parameters:",
        row("word embeddings (V x E)", n.word_embeddings, f"{V} x {E}"),
        row("position + type embeddings, LN", n.position_and_type_embeddings),
        row("projection E -> H", n.projection, f"{E} x {H} + {H}"),
        row("transformer layer weights", n.layers, shared),
        row("pooler", n.pooler),
        row("= AlbertModel", n.model),
        row("MLM head (decoder tied)", n.mlm_head),
        row("SOP head", n.sop_head),
        row("= AlbertForPreTraining", n.pretraining),
        "what the two ALBERT ideas save" + (" (the BERT-style model has the same pruned shapes):" if is_pruned(c) else ":"),
        row("unfactorized + unshared (BERT)", n.bert_equivalent,
            f"V x H embeddings, {applications} separate layers" + (", pruned alike" if is_pruned(c) else "")),
        row("saved by factorization", factorization_saving, "V x H -> V x E + E x H"),
        row("saved by cross-layer sharing", sharing_saving),
        f"  ALBERT is {n.model / n.bert_equivalent:.1%} of the BERT-style count",
    ]
    if is_pruned(c):
        lines += ["what pruning saves:",
                  row("unpruned AlbertModel", unpruned.model),
                  row("saved by pruning", unpruned.model - n.model,
                      f"{1 - n.model / unpruned.model:.1%} of the model, "
                      f"{1 - n.layers / unpruned.layers:.1%} of the layer weights")]
    return "\n".join(lines)
