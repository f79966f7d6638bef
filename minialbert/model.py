"""ALBERT, top to bottom, one equation per block.

    ids ──> Embeddings ──> E->H projection ──> L x AlbertLayer (shared weights) ──> h
                                                                                   ├─> pooler: tanh(W h_[CLS] + b)
                                                                                   ├─> MLM head / SOP head (pre-training)
                                                                                   └─> task heads (fine-tuning, section 7)

ALBERT (Lan et al., 2019) is BERT with two parameter-saving ideas:
  1. factorized embeddings: tokens live in a small space of width E (128) and are projected to
     the hidden width H (768 for base) by one matrix, so the vocabulary costs V*E + E*H instead of V*H;
  2. cross-layer sharing: the 12 layers of base all reuse one set of layer weights.
Everything else is the Transformer encoder of Vaswani et al.: multi-head scaled dot-product
attention and a position-wise feed-forward network, each followed by a residual connection
and LayerNorm ("post-LN").

This file is the reference implementation: it favours the plain equations over speed, and
calling a model runs it line for line, whatever you change in it. Calling the model runs
model.py; the engine (fast/) is an optimisation that refuses to run anything it was not built
for: it checks that a model is made of these classes, unmodified, and otherwise steps aside.
Parameter names here are minialbert's own; `weights.py` maps them to the Hugging Face names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import AlbertConfig
from .errors import ModelInputError


# ---------------------------------------------------------------------------------------------
# Activations. ALBERT v2 uses "gelu_new", the tanh approximation of GELU from the original
# TensorFlow code; v1 uses the exact erf GELU. The names are the ones config.json files use;
# config.SUPPORTED_ACTIVATIONS lists the same names (so that a config validates without torch).
# ---------------------------------------------------------------------------------------------
def gelu_new(x: torch.Tensor) -> torch.Tensor:
    # GELU(x) ~= 0.5 x (1 + tanh( sqrt(2/pi) (x + 0.044715 x^3) ))
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gelu_fast(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)


ACTIVATIONS = {
    "gelu_new": gelu_new,
    "gelu": F.gelu,  # exact: x * Phi(x), Phi the standard normal CDF
    "gelu_python": F.gelu,
    "gelu_fast": gelu_fast,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "quick_gelu": quick_gelu,
    "relu": F.relu,
    "relu6": F.relu6,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "mish": F.mish,
    "linear": lambda x: x,
}


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------
@dataclass
class AlbertOutput:
    last_hidden_state: torch.Tensor  # (batch, seq, H): the contextual vector of every token
    pooler_output: torch.Tensor | None = None  # (batch, H): tanh(W h_[CLS] + b), None without pooler
    # With output_hidden_states=True: (batch, seq, H) after the E->H projection, then after every
    # layer call (L * inner_group_num entries), the same entries transformers v5 returns.
    hidden_states: tuple[torch.Tensor, ...] | None = None
    # With output_attentions=True: (batch, heads, seq, seq) softmax probabilities, one per layer call.
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class AlbertPreTrainingOutput:
    prediction_logits: torch.Tensor  # (batch, seq, V) MLM scores
    sop_logits: torch.Tensor | None = None  # (batch, 2) sentence-order scores; None for MLM-only
    loss: torch.Tensor | None = None  # MLM loss + SOP loss when labels are given
    mlm_loss: torch.Tensor | None = None
    sop_loss: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


# ---------------------------------------------------------------------------------------------
# 1. Factorized embedding
#    e_t = LayerNorm( WordEmb[x_t] + PosEmb[t] + TypeEmb[s_t] )         (each row has width E)
#    The E -> H projection that follows lives in the encoder, as in the official checkpoints.
# ---------------------------------------------------------------------------------------------
class Embeddings(nn.Module):
    def __init__(self, config: AlbertConfig):
        super().__init__()
        E = config.embedding_size
        # padding_idx only zeroes the gradient of the pad row (as transformers does); it does not
        # change the forward pass.
        self.word = nn.Embedding(config.vocab_size, E, padding_idx=config.pad_token_id)
        self.position = nn.Embedding(config.max_position_embeddings, E)
        self.token_type = nn.Embedding(config.type_vocab_size, E)
        self.norm = nn.LayerNorm(E, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        seq_len = input_ids.shape[1]
        if position_ids is None:
            position_ids = torch.arange(seq_len, device=input_ids.device).unsqueeze(0)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = self.word(input_ids) + self.token_type(token_type_ids) + self.position(position_ids)
        return self.dropout(self.norm(x))


# ---------------------------------------------------------------------------------------------
# 2. Multi-head self-attention, then residual + LayerNorm
#    head_i = Attention(X W_i^Q, X W_i^K, X W_i^V),  Attention(Q,K,V) = softmax(Q K^T / sqrt(d_k) + M) V
#    MultiHead(X) = Concat(head_1, ..., head_h) W^O
#    out = LayerNorm( X + MultiHead(X) )
#    M is 0 where a key is a real token and a very large negative number where it is padding,
#    so padding gets zero attention probability.
#    A pruned layer (minialbert prune) keeps h' < h heads: the same equations with the pruned
#    heads' columns of W^Q, W^K, W^V and rows of W^O removed, so its attention is h' * d_k wide.
#    Two ways to compute Attention(Q,K,V), the same equation: written out (scores, softmax,
#    weighted sum: what you read, and the probabilities output_attentions returns), or in one
#    fused kernel, F.scaled_dot_product_attention, when nobody asks for the probabilities.
# ---------------------------------------------------------------------------------------------
class SelfAttention(nn.Module):
    def __init__(self, config: AlbertConfig, num_heads: int | None = None):
        super().__init__()
        H = config.hidden_size
        self.num_heads = config.num_attention_heads if num_heads is None else num_heads  # h
        self.head_dim = config.head_dim  # d_k = H / num_attention_heads, also when pruned
        A = self.num_heads * self.head_dim  # = H unless heads were pruned
        # The h per-head matrices W_i^Q (H x d_k) stacked side by side form one H x (h d_k) matrix,
        # so one Linear computes all heads' queries at once; likewise for keys and values.
        self.query = nn.Linear(H, A)
        self.key = nn.Linear(H, A)
        self.value = nn.Linear(H, A)
        self.output = nn.Linear(A, H)  # W^O
        self.norm = nn.LayerNorm(H, eps=config.layer_norm_eps)
        self.attention_dropout = nn.Dropout(config.attention_probs_dropout_prob)
        self.output_dropout = nn.Dropout(config.hidden_dropout_prob)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        # (batch, seq, H) -> (batch, heads, seq, d_k)
        batch, seq, _ = x.shape
        return x.view(batch, seq, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self, x: torch.Tensor, additive_mask: torch.Tensor | None, need_probs: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        q = self.split_heads(self.query(x))
        k = self.split_heads(self.key(x))
        v = self.split_heads(self.value(x))

        if need_probs:  # the equation written out; returns the probabilities
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)  # Q K^T / sqrt(d_k)
            if additive_mask is not None:
                scores = scores + additive_mask  # + M, broadcast over heads and query positions
            probs = torch.softmax(scores, dim=-1)
            context = torch.matmul(self.attention_dropout(probs), v)  # (batch, heads, seq, d_k)
        else:  # softmax(Q K^T / sqrt(d_k) + M) V in one fused kernel (dropout on the probabilities too)
            p = self.attention_dropout.p if self.training else 0.0
            context, probs = F.scaled_dot_product_attention(q, k, v, attn_mask=additive_mask, dropout_p=p), None

        batch, _, seq, _ = context.shape
        concat = context.transpose(1, 2).reshape(batch, seq, -1)  # Concat(head_1..head_h)
        attended = self.output_dropout(self.output(concat))  # ... W^O
        return self.norm(x + attended), probs  # post-LN residual


# ---------------------------------------------------------------------------------------------
# 3. Position-wise feed-forward network, then residual + LayerNorm
#    FFN(x) = act(x W_1 + b_1) W_2 + b_2          (the document writes ReLU; ALBERT uses GELU)
#    out = LayerNorm( x + FFN(x) )
#    A pruned layer keeps I' < I neurons: the pruned columns of W_1 (and b_1) and rows of W_2 removed.
# ---------------------------------------------------------------------------------------------
class FeedForward(nn.Module):
    def __init__(self, config: AlbertConfig, intermediate_size: int | None = None):
        super().__init__()
        inner = config.intermediate_size if intermediate_size is None else intermediate_size  # I
        self.up = nn.Linear(config.hidden_size, inner)  # W_1, b_1
        self.down = nn.Linear(inner, config.hidden_size)  # W_2, b_2
        self.act = ACTIVATIONS[config.hidden_act]
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        # The original TF ALBERT applies dropout to the FFN output; transformers does not. Both
        # are identical at inference (and whenever hidden_dropout_prob is 0, as in all v2 configs).
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.dropout(self.down(self.act(self.up(x)))))


class AlbertLayer(nn.Module):
    """One Transformer encoder layer: attention sub-layer, then feed-forward sub-layer."""

    def __init__(self, config: AlbertConfig, index: int = 0):
        super().__init__()  # index: which distinct layer this is (its shapes when pruned)
        self.attention = SelfAttention(config, config.layer_heads(index))
        self.feed_forward = FeedForward(config, config.layer_intermediate_size(index))

    def forward(
        self, x: torch.Tensor, additive_mask: torch.Tensor | None, need_probs: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # need_probs is passed only when True, so an attention module written as forward(x, mask) still runs
        x, probs = self.attention(x, additive_mask, need_probs=True) if need_probs else self.attention(x, additive_mask)
        return self.feed_forward(x), probs


# ---------------------------------------------------------------------------------------------
# 4. The encoder: E -> H projection, then L layer calls with cross-layer parameter sharing.
#
#    ALBERT stores G = num_hidden_groups groups of inner_group_num layers. Layer call i
#    (0 <= i < L) runs every layer of group floor(i / (L / G)). albert-base: G = 1, so the
#    same layer runs 12 times. L is config.layer_call_count: num_hidden_layers, or
#    num_layer_calls when set (depth as a knob: N calls of the same weights; with G > 1 the
#    group schedule is stretched over the N calls; unshared layouts run their first N layers). The modules are called in a loop, never copied, so an export
#    (ONNX, TorchScript) keeps one copy of the shared weights.
#
#    For ablations (config.sharing != "all"), there is one layer per call, and only the
#    attention block ("attention") or only the feed-forward block ("ffn") is shared, or
#    nothing ("none", i.e. BERT with a factorized embedding).
# ---------------------------------------------------------------------------------------------
class Encoder(nn.Module):
    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.config = config
        self.project = nn.Linear(config.embedding_size, config.hidden_size)  # E -> H
        if config.sharing == "all":
            inner = config.inner_group_num
            self.groups = nn.ModuleList(
                nn.ModuleList(AlbertLayer(config, g * inner + j) for j in range(inner))
                for g in range(config.num_hidden_groups)
            )
        else:
            self.layers = nn.ModuleList(AlbertLayer(config, i) for i in range(config.num_hidden_layers))
            for layer in self.layers[1:]:
                if config.sharing == "attention":
                    layer.attention = self.layers[0].attention
                elif config.sharing == "ffn":
                    layer.feed_forward = self.layers[0].feed_forward

    def layer_calls(self) -> list[AlbertLayer]:
        """The layer module used by each successive call, in order (with repeats when shared)."""
        if self.config.sharing != "all":
            return list(self.layers)[:self.config.layer_call_count]
        calls = []
        for i in range(self.config.layer_call_count):
            calls.extend(self.groups[self.config.group_index(i)])
        return calls

    def forward(
        self,
        embedded: torch.Tensor,
        additive_mask: torch.Tensor | None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, tuple | None, tuple | None]:
        h = self.project(embedded)
        hidden_states = [h] if output_hidden_states else None
        attentions = [] if output_attentions else None
        for layer in self.layer_calls():
            h, probs = layer(h, additive_mask, need_probs=True) if output_attentions else layer(h, additive_mask)
            if output_hidden_states:
                hidden_states.append(h)
            if output_attentions:
                attentions.append(probs)
        return (
            h,
            tuple(hidden_states) if output_hidden_states else None,
            tuple(attentions) if output_attentions else None,
        )


def additive_attention_mask(attention_mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """(batch, seq) of 1 = token, 0 = padding  ->  (batch, 1, 1, seq) of 0 / very negative.

    The most negative finite value (not -inf) keeps a fully masked row finite, as transformers does.
    """
    if attention_mask is None:
        return None
    keep = attention_mask[:, None, None, :].to(torch.bool)
    return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill(~keep, torch.finfo(dtype).min)


def check_inputs(
    config: AlbertConfig,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    token_type_ids: torch.Tensor | None = None,
    position_ids: torch.Tensor | None = None,
) -> None:
    """Raise a one-line ModelInputError for inputs the model cannot use.

    Without these checks an id outside a table fails deep inside nn.Embedding with "index out of
    range in self", which does not say which input or which limit.
    """
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        shape = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else type(input_ids).__name__
        raise ModelInputError(f"input_ids must be a (batch, seq) tensor, got {shape}")
    if input_ids.shape[1] > config.max_position_embeddings:
        raise ModelInputError(
            f"sequence length {input_ids.shape[1]} exceeds max_position_embeddings "
            f"({config.max_position_embeddings}); truncate or chunk the input"
        )
    if input_ids.dtype not in (torch.long, torch.int):
        raise ModelInputError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}")
    for name, tensor, table in (
        ("input_ids", input_ids, "vocab_size"),
        ("token_type_ids", token_type_ids, "type_vocab_size"),
        ("position_ids", position_ids, "max_position_embeddings"),
    ):
        if tensor is None:
            continue
        shared = name != "input_ids" and tuple(tensor.shape) == (1, input_ids.shape[1])  # one row for the batch
        if tuple(tensor.shape) != tuple(input_ids.shape) and not shared:
            raise ModelInputError(f"{name} has shape {tuple(tensor.shape)}, input_ids {tuple(input_ids.shape)}; "
                                  "they must match")
        if tensor.numel():
            limit = getattr(config, table)
            low, high = (int(v) for v in torch.aminmax(tensor))
            if low < 0 or high >= limit:
                raise ModelInputError(f"{name} holds {high if high >= limit else low}, outside [0, {limit}) "
                                      f"({table} of this model's config)")
    if attention_mask is not None and tuple(attention_mask.shape) != tuple(input_ids.shape):
        raise ModelInputError(f"attention_mask has shape {tuple(attention_mask.shape)}, input_ids "
                              f"{tuple(input_ids.shape)}; they must match")


# ---------------------------------------------------------------------------------------------
# 5. AlbertModel: embeddings + encoder + pooler
#    pooler_output = tanh( W_p h_[CLS] + b_p )   (trained for sentence-order prediction)
# ---------------------------------------------------------------------------------------------
class AlbertModel(nn.Module):
    def __init__(self, config: AlbertConfig, add_pooling_layer: bool = True):
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size) if add_pooling_layer else None

    @property
    def device(self) -> torch.device:
        return self.embeddings.word.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.embeddings.word.weight.dtype

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> AlbertOutput:
        if not torch.compiler.is_compiling():  # the checks read values (a graph break under torch.compile)
            check_inputs(self.config, input_ids, attention_mask, token_type_ids, position_ids)
        embedded = self.embeddings(input_ids, token_type_ids, position_ids)
        mask = additive_attention_mask(attention_mask, embedded.dtype)
        h, hidden_states, attentions = self.encoder(embedded, mask, output_hidden_states, output_attentions)
        pooled = torch.tanh(self.pooler(h[:, 0])) if self.pooler is not None else None
        return AlbertOutput(h, pooled, hidden_states, attentions)

    # Loading and saving live in weights.py; these are thin doors to it.
    @classmethod
    def from_pretrained(cls, name_or_path, **kwargs) -> "AlbertModel":
        """Load a checkpoint: a local directory or a Hub repo id. See weights.load_pretrained."""
        from .weights import load_pretrained

        return load_pretrained(cls, name_or_path, **kwargs)

    def save_pretrained(self, directory) -> None:
        """Write config.json + model.safetensors with Hugging Face parameter names."""
        from .weights import save_pretrained

        save_pretrained(self, directory)


# ---------------------------------------------------------------------------------------------
# 6. Pre-training heads
#    MLM:  logits = LayerNorm( act(h W_d + b_d) ) E_word^T + b      (decoder tied to word embeddings:
#          the H -> E dense maps back into the factorized embedding space, then every token's
#          128-d embedding scores it)
#    SOP:  logits = W_s pooler_output + b_s                          (2 classes: in order / swapped)
# ---------------------------------------------------------------------------------------------
class MLMHead(nn.Module):
    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.embedding_size)
        self.act = ACTIVATIONS[config.hidden_act]
        self.norm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, h: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        return F.linear(self.norm(self.act(self.dense(h))), word_embeddings, self.bias)


class SOPHead(nn.Module):
    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, 2)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(pooled))


class AlbertForPreTraining(nn.Module):
    """ALBERT with its two pre-training heads. Loss = MLM cross-entropy + SOP cross-entropy.

    mlm:  L_MLM = -(1/N) sum_{masked i} log P(x_i | x_masked)     (labels -100 elsewhere)
    sop:  L_SOP = -(1/M) sum_j log P(y_j | segment pair j)        (0 = in order, 1 = swapped)
    """

    has_sop = True

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.config = config
        self.albert = AlbertModel(config, add_pooling_layer=self.has_sop)
        self.mlm_head = MLMHead(config)
        self.sop_head = SOPHead(config) if self.has_sop else None

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        sentence_order_label: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> AlbertPreTrainingOutput:
        out = self.albert(
            input_ids, attention_mask, token_type_ids, position_ids,
            output_hidden_states=output_hidden_states, output_attentions=output_attentions,
        )
        self._check_labels(input_ids, labels, sentence_order_label)
        logits = self.mlm_head(out.last_hidden_state, self.albert.embeddings.word.weight)
        sop_logits = self.sop_head(out.pooler_output) if self.sop_head is not None else None
        mlm_loss = sop_loss = loss = None
        if labels is not None:
            mlm_loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100)
            loss = mlm_loss
        if sentence_order_label is not None:
            sop_loss = F.cross_entropy(sop_logits.reshape(-1, 2).float(), sentence_order_label.reshape(-1))
            loss = sop_loss if loss is None else loss + sop_loss
        return AlbertPreTrainingOutput(
            logits, sop_logits, loss, mlm_loss, sop_loss, out.hidden_states, out.attentions
        )

    def _check_labels(self, input_ids, labels, sentence_order_label) -> None:
        """Labels the model cannot use are errors, never silently ignored."""
        if labels is not None:
            if tuple(labels.shape) != tuple(input_ids.shape):
                raise ModelInputError(f"labels has shape {tuple(labels.shape)}, input_ids {tuple(input_ids.shape)}; "
                                      "give one label per token (-100 where no prediction is scored)")
            scored = labels[labels != -100]
            if scored.numel() and (int(scored.min()) < 0 or int(scored.max()) >= self.config.vocab_size):
                raise ModelInputError(f"labels must be -100 or a token id in [0, {self.config.vocab_size})")
        if sentence_order_label is not None:
            if self.sop_head is None:
                raise ModelInputError(f"{type(self).__name__} has no sentence-order head: drop sentence_order_label "
                                      "(or use AlbertForPreTraining)")
            if sentence_order_label.numel() != input_ids.shape[0]:
                raise ModelInputError(f"sentence_order_label has {sentence_order_label.numel()} values for a batch "
                                      f"of {input_ids.shape[0]}; give one 0 (in order) or 1 (swapped) per sequence")
            if sentence_order_label.numel() and (int(sentence_order_label.min()) < 0 or int(sentence_order_label.max()) > 1):
                raise ModelInputError("sentence_order_label must be 0 (in order) or 1 (swapped)")

    @classmethod
    def from_pretrained(cls, name_or_path, **kwargs):
        from .weights import load_pretrained

        return load_pretrained(cls, name_or_path, **kwargs)

    def save_pretrained(self, directory) -> None:
        from .weights import save_pretrained

        save_pretrained(self, directory)


class AlbertForMaskedLM(AlbertForPreTraining):
    """ALBERT with the MLM head only (no pooler, no SOP head), like transformers' class of that name."""

    has_sop = False


# ---------------------------------------------------------------------------------------------
# 7. Task heads (fine-tuning). One small layer on top of the encoder, with the parameter names
#    and config fields (num_labels, id2label, label2id, classifier_dropout_prob, problem_type)
#    of transformers' AlbertFor* classes, so the fine-tuned checkpoints on the Hub load strictly.
#
#    sequence classification:  logits = W_c dropout(pooler_output) + b_c          (batch, num_labels)
#    token classification:     logits_t = W_c dropout(h_t) + b_c                  (batch, seq, num_labels)
#    question answering:       [s_t, e_t] = W_qa h_t + b_qa                        start/end score per token
#    multiple choice:          score_k = w_c . dropout(pooler_output_k) + b_c     one score per choice k,
#                                                                                  softmax over the choices
# ---------------------------------------------------------------------------------------------
@dataclass
class TaskOutput:
    logits: torch.Tensor  # (batch, num_labels), (batch, seq, num_labels) or (batch, num_choices)
    loss: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class QuestionAnsweringOutput:
    start_logits: torch.Tensor  # (batch, seq): score of each token as the first of the answer
    end_logits: torch.Tensor  # (batch, seq): ... as the last of the answer
    loss: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class AlbertTaskModel(nn.Module):
    """What every task head shares: the encoder under `albert`, loading and saving.

    A checkpoint without the head (albert-base-v2 itself, or any pre-trained model) loads with a
    freshly initialised head and a one-line warning: that is where fine-tuning starts.
    """

    add_pooling_layer = True
    # Parameters (minialbert names) a checkpoint may lack; weights.py initialises them if missing.
    head_prefixes: tuple[str, ...] = ("classifier.", "albert.pooler.")

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.config = config
        self.albert = AlbertModel(config, add_pooling_layer=self.add_pooling_layer)

    @classmethod
    def from_pretrained(cls, name_or_path, **kwargs):
        """Load a checkpoint (directory or Hub repo id). Label overrides: num_labels=, id2label=,
        label2id=, problem_type=; ignore_mismatched_sizes=True re-initialises a head of another
        width. See weights.load_task_model."""
        from .weights import load_task_model

        return load_task_model(cls, name_or_path, **kwargs)

    def save_pretrained(self, directory) -> None:
        """config.json (labels included) + model.safetensors, readable by transformers' class of this name."""
        from .weights import save_pretrained

        save_pretrained(self, directory)


def infer_problem_type(config: AlbertConfig, labels: torch.Tensor) -> str:
    """transformers' rule when config.problem_type is unset: one output -> regression; integer
    labels -> single-label (softmax) classification; otherwise multi-label (one sigmoid per label)."""
    if config.problem_type is not None:
        return config.problem_type
    if config.num_labels == 1:
        return "regression"
    if labels.dtype in (torch.long, torch.int):
        return "single_label_classification"
    return "multi_label_classification"


class AlbertForSequenceClassification(AlbertTaskModel):
    """pooler_output -> dropout -> Linear(H, num_labels).

    loss, by problem_type:  regression   MSE(logits, y)              (num_labels == 1: both squeezed)
                            single-label -(1/N) sum_i log softmax(logits_i)[y_i]
                            multi-label  mean BCE(sigmoid(logits), y)  (y: 0/1 per label)
    """

    def __init__(self, config: AlbertConfig):
        super().__init__(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
                output_hidden_states=False, output_attentions=False) -> TaskOutput:
        out = self.albert(input_ids, attention_mask, token_type_ids, position_ids,
                          output_hidden_states=output_hidden_states, output_attentions=output_attentions)
        logits = self.classifier(self.dropout(out.pooler_output))
        loss = None
        if labels is not None:
            kind = infer_problem_type(self.config, labels)
            scores = logits.float()
            if kind == "regression":
                y = labels.to(scores.dtype)
                loss = F.mse_loss(scores.squeeze(), y.squeeze()) if self.config.num_labels == 1 else F.mse_loss(scores, y)
            elif kind == "single_label_classification":
                loss = F.cross_entropy(scores.view(-1, self.config.num_labels), labels.view(-1))
            else:
                loss = F.binary_cross_entropy_with_logits(scores, labels.to(scores.dtype))
        return TaskOutput(logits, loss, out.hidden_states, out.attentions)


class AlbertForTokenClassification(AlbertTaskModel):
    """Every token: h_t -> dropout -> Linear(H, num_labels). Loss: cross-entropy over the tokens
    whose label is not -100 (padding, special tokens and non-first sub-tokens carry -100)."""

    add_pooling_layer = False
    head_prefixes = ("classifier.",)

    def __init__(self, config: AlbertConfig):
        super().__init__(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
                output_hidden_states=False, output_attentions=False) -> TaskOutput:
        out = self.albert(input_ids, attention_mask, token_type_ids, position_ids,
                          output_hidden_states=output_hidden_states, output_attentions=output_attentions)
        logits = self.classifier(self.dropout(out.last_hidden_state))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float().view(-1, self.config.num_labels), labels.view(-1), ignore_index=-100)
        return TaskOutput(logits, loss, out.hidden_states, out.attentions)


class AlbertForQuestionAnswering(AlbertTaskModel):
    """Extractive QA: Linear(H, 2) on every token gives a start score s_t and an end score e_t; the
    answer is the span i <= j maximising s_i + e_j (decoding lives in finetune/squad.py).

    loss = (CE(start_logits, start) + CE(end_logits, end)) / 2, with positions clamped to [0, seq]
    and position seq ignored: an answer outside the window contributes nothing, as in transformers.
    """

    add_pooling_layer = False
    head_prefixes = ("qa_outputs.",)

    def __init__(self, config: AlbertConfig):
        super().__init__(config)
        if config.num_labels != 2:
            from .errors import ConfigError

            raise ConfigError(f"question answering needs num_labels=2 (start and end), the config says {config.num_labels}")
        self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                start_positions=None, end_positions=None, output_hidden_states=False,
                output_attentions=False) -> QuestionAnsweringOutput:
        out = self.albert(input_ids, attention_mask, token_type_ids, position_ids,
                          output_hidden_states=output_hidden_states, output_attentions=output_attentions)
        start_logits, end_logits = self.qa_outputs(out.last_hidden_state).unbind(dim=-1)
        loss = None
        if start_positions is not None and end_positions is not None:
            ignored = start_logits.shape[1]  # one past the last position
            start = start_positions.reshape(-1).clamp(0, ignored)
            end = end_positions.reshape(-1).clamp(0, ignored)
            loss = (F.cross_entropy(start_logits.float(), start, ignore_index=ignored)
                    + F.cross_entropy(end_logits.float(), end, ignore_index=ignored)) / 2
        return QuestionAnsweringOutput(start_logits.contiguous(), end_logits.contiguous(), loss,
                                       out.hidden_states, out.attentions)


class AlbertForMultipleChoice(AlbertTaskModel):
    """Inputs (batch, choices, seq): each choice is encoded on its own (as a batch of batch*choices),
    scored by Linear(H, 1) on its pooler output; loss = cross-entropy over the choices."""

    def __init__(self, config: AlbertConfig):
        super().__init__(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, 1)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
                output_hidden_states=False, output_attentions=False) -> TaskOutput:
        if input_ids.dim() != 3:
            raise ValueError(f"input_ids must be (batch, choices, seq), got shape {tuple(input_ids.shape)}")
        num_choices = input_ids.shape[1]

        def flat(t):
            return None if t is None else t.reshape(-1, t.shape[-1])

        out = self.albert(flat(input_ids), flat(attention_mask), flat(token_type_ids), flat(position_ids),
                          output_hidden_states=output_hidden_states, output_attentions=output_attentions)
        logits = self.classifier(self.dropout(out.pooler_output)).view(-1, num_choices)
        loss = F.cross_entropy(logits.float(), labels.view(-1)) if labels is not None else None
        return TaskOutput(logits, loss, out.hidden_states, out.attentions)


# ---------------------------------------------------------------------------------------------
# The methods of the classes above, and of the torch modules they are built from, as they were
# when this file was imported. Nothing here uses the record: fast/engine.py's InferenceEngine compares
# the live classes with it, so that a method replaced later (monkeypatching) makes the engine
# step aside and let the model run its own forward.
# ---------------------------------------------------------------------------------------------
STOCK_CLASSES = (AlbertModel, AlbertForPreTraining, AlbertForMaskedLM, Embeddings, Encoder, AlbertLayer,
                 SelfAttention, FeedForward, MLMHead, SOPHead, AlbertForSequenceClassification,
                 AlbertForTokenClassification, AlbertForQuestionAnswering, AlbertForMultipleChoice)
TORCH_CLASSES = (nn.Linear, nn.LayerNorm, nn.Embedding, nn.Dropout)
STOCK_METHODS = {  # class -> {name: the function (or property) that name resolved to, up to nn.Module}
    cls: {name: value for base in reversed(cls.__mro__[:cls.__mro__.index(nn.Module)])
          for name, value in vars(base).items() if callable(value) or isinstance(value, property)}
    for cls in STOCK_CLASSES + TORCH_CLASSES
}
STOCK_FUNCTIONS = {"additive_attention_mask": additive_attention_mask, "check_inputs": check_inputs}
STOCK_ACTIVATIONS = dict(ACTIVATIONS)
