"""The numbers behind `minialbert inspect`: one text through the reference model, every step kept.

Everything here is plain torch + numpy; nothing draws. `compute` (what `analyze` calls) runs
`AlbertModel.forward(..., output_hidden_states=True, output_attentions=True)` once, with
forward hooks that only record what the model computes (they change nothing), and derives:

* the text's journey: pieces, ids, character spans, and the shape at each stage, each stage
  tied to its equation and to the lines of `model.py` that compute it (found at run time);
* the ALBERT paper's Figure 1 for this text (`Figure1`, `figure1_numbers`);
* attention probabilities per layer call and head, and how much of it goes to [CLS] / [SEP];
* each token's cosine similarity to every other token, at every depth;
* the parameter breakdown of `minialbert info`, next to the unfactorized, unshared BERT equivalent.
"""

from __future__ import annotations

import inspect as pyinspect  # the standard library's, not this package
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import model as model_module
from .. import tokenizer as tokenizer_module
from ..config import AlbertConfig
from ..errors import MinialbertError
from ..params import count_parameters, embedding_params, is_pruned, layer_applications

# Above this many tokens the page shows aggregated attention views (one map per layer call, the
# mean over heads, plus per-head statistics) instead of a heatmap per head: 144 heads x 128 x 128
# cells is about what a browser draws without stalling.
GRID_TOKEN_LIMIT = 128


# ------------------------------------------------------------------------------- code links
@dataclass
class CodeRef:
    """Where a computation lives: a function's line range, and the line that does the work."""

    path: str  # e.g. "minialbert/model.py"
    qualname: str  # e.g. "Encoder.forward"
    start: int  # first line of the function (1-based)
    end: int  # last line of the function (inclusive)
    line: int | None  # the line holding the computation itself (None if no snippet was given)
    source: str  # the function's text, lines start..end

    @property
    def label(self) -> str:
        where = f"L{self.line}" if self.line else f"L{self.start}-{self.end}"
        return f"{self.path}:{where} ({self.qualname}, lines {self.start}-{self.end})"


def code_ref(module, qualname: str, snippet: str | None = None) -> CodeRef:
    """Locate `module.<qualname>` in its source file now, so links stay right when the file changes.

    `snippet` picks the line inside the function that computes the stage; if the code no longer
    contains it, `line` is None (and the tests, which check every link, fail).
    """
    obj = module
    for part in qualname.split("."):
        obj = getattr(obj, part)
    lines, start = pyinspect.getsourcelines(obj)
    line = None
    if snippet is not None:
        line = next((start + k for k, text in enumerate(lines) if snippet in text), None)
    path = Path(pyinspect.getsourcefile(obj)).resolve()
    package_parent = Path(__file__).resolve().parents[2]  # the folder that holds minialbert/
    return CodeRef(path.relative_to(package_parent).as_posix(), qualname, start, start + len(lines) - 1, line, "".join(lines))


@dataclass
class Stage:
    """One step of the text's journey through the model."""

    name: str
    equation: str
    shape: tuple[int, ...]  # measured on this run (batch of 1)
    code: CodeRef
    note: str = ""


# --------------------------------------------------------------------------------- Figure 1
def _transitions(hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(D, ..., H) hidden states -> L2 distance and angle in degrees between consecutive depths.

    Both are (D - 1, ...): entry l compares h_{l+1} with h_l for every token, in float64.
    The angle is arccos(cos(a, b)) computed as 2 arcsin(|a/|a| - b/|b|| / 2), the same angle: arccos
    is so steep near 0° that rounding a cosine of 1 - 1e-16 alone would give 1e-6 degrees.
    """
    h = np.asarray(hidden, dtype=np.float64)
    before, after = h[:-1], h[1:]
    l2 = np.linalg.norm(after - before, axis=-1)
    unit = h / np.linalg.norm(h, axis=-1, keepdims=True)
    chord = np.linalg.norm(unit[1:] - unit[:-1], axis=-1)
    return l2, np.degrees(2 * np.arcsin(np.clip(chord / 2, 0.0, 1.0)))


def _stack_hidden(hidden_states) -> np.ndarray:
    if isinstance(hidden_states, (list, tuple)):
        return np.stack([t.detach().float().cpu().numpy() if torch.is_tensor(t) else np.asarray(t)
                         for t in hidden_states])
    return hidden_states.detach().float().cpu().numpy() if torch.is_tensor(hidden_states) else np.asarray(hidden_states)


def figure1_numbers(hidden_states, attention_mask=None) -> tuple[np.ndarray, np.ndarray]:
    """The ALBERT paper's Figure 1: per layer call, mean L2 distance and mean angle (degrees).

    hidden_states: `model(..., output_hidden_states=True).hidden_states` (a tuple of
    (batch, seq, H) tensors, the first after the E->H projection) or an array (D, [batch,] seq, H).
    attention_mask: (batch, seq) or (seq,) of 1 = token, 0 = padding; padding is left out of the
    means. Returns two arrays of D - 1 values: entry l - 1 is the mean over real tokens of
    ||h_l - h_{l-1}||_2 and of arccos(cos(h_l, h_{l-1})) in degrees. Works on a batch of many
    texts, which is how to average the curve over a corpus.
    """
    l2, angle = _transitions(_stack_hidden(hidden_states))
    if attention_mask is None:
        return l2.reshape(len(l2), -1).mean(1), angle.reshape(len(angle), -1).mean(1)
    mask = np.asarray(attention_mask.cpu() if torch.is_tensor(attention_mask) else attention_mask, dtype=bool)
    return l2[:, mask].mean(1), angle[:, mask].mean(1)


@dataclass
class Figure1:
    """Figure 1 of the ALBERT paper for one model and one text.

    For each layer call l = 1..L' (L' = num_hidden_layers x inner_group_num): the L2 distance
    ||h_l - h_{l-1}||_2 and the angle arccos(cos(h_l, h_{l-1})) in degrees between the layer
    call's input and output vector, averaged over the text's tokens ([CLS] and [SEP] included;
    a single text has no padding). h_0 is the E->H projection's output, the input of the first
    layer call. The E-wide input embedding has no point of its own: it lives in another space
    (width E, not H), so no distance or angle to h_0 exists.
    """

    model: str
    l2: np.ndarray  # (L',) mean over tokens
    angle: np.ndarray  # (L',) degrees, mean over tokens
    l2_per_token: np.ndarray  # (L', n)
    angle_per_token: np.ndarray  # (L', n)
    pieces: list[str] = field(default_factory=list)

    @classmethod
    def from_hidden(cls, model: str, hidden: np.ndarray, pieces: list[str]) -> "Figure1":
        l2, angle = _transitions(hidden)  # hidden: (L' + 1, n, H)
        return cls(model, l2.mean(1), angle.mean(1), l2, angle, list(pieces))

    @property
    def layer_calls(self) -> np.ndarray:
        return np.arange(1, len(self.l2) + 1)

    def rows(self) -> list[dict]:
        return [{"model": self.model, "layer_call": int(k), "l2": float(d), "angle_deg": float(a)}
                for k, d, a in zip(self.layer_calls, self.l2, self.angle)]


# ---------------------------------------------------------------------------- parameters
@dataclass
class ParameterPart:
    """One part of the parameter count, for ALBERT and for the same H and L without its two ideas."""

    name: str
    albert: int
    bert: int
    albert_formula: str
    bert_formula: str


def parameter_map(c: AlbertConfig, has_pooler: bool = True) -> list[ParameterPart]:
    """The `minialbert info` breakdown, part by part, next to the unfactorized and unshared BERT.

    The BERT column has V x H embeddings (no projection) and a separate layer per layer application
    (L x inner_group_num; with a pruned checkpoint's shapes); both columns sum
    to `params.count_parameters(c)`'s model and bert_equivalent counts.
    """
    n = count_parameters(c)
    H = c.hidden_size
    pooler = n.pooler if has_pooler else 0
    return [
        ParameterPart("word embeddings", n.word_embeddings, c.vocab_size * H, "V·E", "V·H"),
        ParameterPart("position + type embeddings, LayerNorm", n.position_and_type_embeddings,
                      embedding_params(c, H) - c.vocab_size * H, "(P+T)·E + 2E", "(P+T)·H + 2H"),
        ParameterPart("projection E→H", n.projection, 0, "E·H + H", "none"),
        ParameterPart("transformer layers", n.layers, n.bert_layers,
                      f"{n.distinct_attention_blocks} attention + {n.distinct_ffn_blocks} FFN block(s)",
                      f"{len(layer_applications(c))} layers" + (", pruned alike" if is_pruned(c) else "")),
        ParameterPart("pooler", pooler, pooler, "H² + H" if has_pooler else "none", "H² + H" if has_pooler else "none"),
    ]


# -------------------------------------------------------------------------------- report
@dataclass
class Analysis:
    """Everything `minialbert inspect` shows, as arrays (`report.Report` adds the output methods).
    n = tokens (with [CLS] and [SEP]), L' = layer calls (num_hidden_layers x inner_group_num),
    D = L' + 1 depths (0 = after the E->H projection)."""

    model: str
    text: str
    config: AlbertConfig
    pieces: list[str]
    ids: np.ndarray  # (n,) int64
    spans: list[tuple[int, int] | None]  # character span of each piece in `text`; None for [CLS]/[SEP]
    special: np.ndarray  # (n,) bool: [CLS], [SEP] (and any other control token)
    n_tokens_full: int  # tokens the whole text has; more than n when it was truncated
    max_length: int
    embeddings: np.ndarray  # (n, E) e_t, the factorized input embedding (after its LayerNorm)
    hidden_states: np.ndarray  # (D, n, H)
    attentions: np.ndarray  # (L', heads, n, n) softmax probabilities; rows are queries
    figure1: Figure1
    cls_share: np.ndarray  # (L', heads): mean over queries of the probability on [CLS]
    sep_share: np.ndarray  # (L', heads): the same for [SEP]
    entropy: np.ndarray  # (L', heads): mean over queries of -sum p log p (nats)
    distance: np.ndarray  # (L', heads): mean over queries of sum_k p_k |q - k| (tokens)
    similarity: np.ndarray  # (D, n, n): cosine of token i and token j at depth d
    stages: list[Stage]
    parameters: list[ParameterPart]
    parameters_counted: int  # distinct parameters of the loaded module, counted by torch
    weights_of_call: list[int]  # call l uses distinct layer weights number weights_of_call[l]
    token: int  # the token selected first in the similarity view
    compare: list[Figure1] = field(default_factory=list)

    @property
    def n_tokens(self) -> int:
        return len(self.ids)

    @property
    def truncated(self) -> bool:
        return self.n_tokens_full > self.n_tokens

    @property
    def aggregated(self) -> bool:
        """True when the page shows per-layer aggregates instead of a heatmap per head."""
        return self.n_tokens > GRID_TOKEN_LIMIT

    @property
    def notices(self) -> list[str]:
        out = []
        if self.truncated:
            out.append(f"the text has {self.n_tokens_full} tokens; only the first {self.max_length} "
                       f"(the model's maximum, [CLS] and [SEP] included) were inspected")
        if self.aggregated:
            out.append(f"{self.n_tokens} tokens is more than {GRID_TOKEN_LIMIT}: the attention section shows the "
                       "mean over heads per layer call and per-head statistics instead of a map per head")
        return out

    def figure1_rows(self) -> list[dict]:
        return [row for f in [self.figure1, *self.compare] for row in f.rows()]


# ------------------------------------------------------------------------------ analyzing
def _load(spec, tokenizer, *, revision, cache_dir, local_files_only, device):
    """(AlbertModel, tokenizer, lowercase, max_length) from any of the accepted inputs."""
    from ..embed import Embedder
    from ..model import AlbertModel

    if isinstance(spec, (str, os.PathLike)):
        spec = Embedder.from_pretrained(spec, revision=revision, cache_dir=cache_dir,
                                        local_files_only=local_files_only, device=device)
    if isinstance(spec, Embedder):
        return spec.model, tokenizer or spec.tokenizer, spec.lowercase, spec.max_length
    model = getattr(spec, "albert", spec)  # AlbertForPreTraining / AlbertForMaskedLM hold one
    if not isinstance(model, AlbertModel):
        raise TypeError("analyze() takes a checkpoint name or path, an Embedder, or an AlbertModel "
                        f"(with tokenizer=...), got {type(spec).__name__}")
    if tokenizer is None:
        raise MinialbertError("analyze(model, text) needs the model's tokenizer: pass tokenizer=AlbertTokenizer...")
    limit = model.config.max_position_embeddings
    return model, tokenizer, False, min(getattr(tokenizer, "model_max_length", limit) or limit, limit)


def _check_text(text) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not text.strip():
        raise MinialbertError("the text is empty: give some words to inspect")
    return text


def _encode(tokenizer, text: str, lowercase: bool, max_length: int):
    source = text.lower() if lowercase else text
    enc = tokenizer(source, truncation=True, max_length=max_length, return_offsets_mapping=True)
    full = len(tokenizer.encode(source))
    return enc, full


def _name(spec, name: str | None, fallback: str) -> str:
    if name:
        return name
    return os.fspath(spec) if isinstance(spec, (str, os.PathLike)) else fallback


def _pick_token(token, pieces: list[str], special: np.ndarray) -> int:
    n = len(pieces)
    if token is None:
        return next((i for i in range(n) if not special[i]), 0)
    if isinstance(token, (int, np.integer)) and not isinstance(token, bool):
        if not -n <= token < n:
            raise MinialbertError(f"token index {token} is out of range: the text has {n} tokens (0..{n - 1})")
        return int(token) % n
    if isinstance(token, str):
        if token.lstrip("-").isdigit():
            return _pick_token(int(token), pieces, special)
        for i, piece in enumerate(pieces):
            if token in (piece, piece.lstrip("▁")):
                return i
        listing = " ".join(pieces[:40]) + (" ..." if n > 40 else "")
        raise MinialbertError(f"token {token!r} is not among the text's pieces ({listing}); "
                              "give a piece or an index")
    raise TypeError(f"token must be an int index or a piece, got {type(token).__name__}")


def _distinct_weights(calls: list) -> list[int]:
    """For each layer call, the number of the distinct layer module it runs (0, 1, ...)."""
    seen: dict[int, int] = {}
    return [seen.setdefault(id(layer), len(seen)) for layer in calls]


@torch.inference_mode()
def _forward(model, ids: list[int], record: bool):
    """One reference forward pass with every hidden state and attention map; hooks record shapes."""
    captured: dict[str, torch.Tensor] = {}
    handles = []
    if record:
        first = model.encoder.layer_calls()[0]
        watch = {
            "word": model.embeddings.word, "embedded": model.embeddings, "projected": model.encoder.project,
            "query": first.attention.query, "attended": first.attention, "ffn_up": first.feed_forward.up,
            "ffn_out": first.feed_forward,
        }
        if model.pooler is not None:
            watch["pooler"] = model.pooler

        def recorder(key):
            def hook(_module, _inputs, output):  # records the first call only (shared modules repeat)
                captured.setdefault(key, output[0] if isinstance(output, tuple) else output)
            return hook

        handles = [module.register_forward_hook(recorder(key)) for key, module in watch.items()]
    was_training = model.training
    model.eval()  # dropout off, whatever state the caller left the model in
    try:
        x = torch.tensor([ids], device=model.device)
        out = model(x, attention_mask=torch.ones_like(x), token_type_ids=torch.zeros_like(x),
                    output_hidden_states=True, output_attentions=True)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    hidden = np.stack([h[0].float().cpu().numpy() for h in out.hidden_states])
    return out, hidden, captured


def _stages(model, captured, out, n: int) -> list[Stage]:
    heads, calls = out.attentions[0].shape[1], len(out.attentions)  # fewer than num_attention_heads once pruned
    q = tuple(captured["query"].shape)
    m, tok = model_module, tokenizer_module
    stages = [
        Stage("pieces and ids", "text → SentencePiece pieces → ids x = [CLS] x₁ … xₖ [SEP]", (1, n),
              code_ref(tok, "AlbertTokenizer.__call__")),
        Stage("word embedding lookup", "E_word[x_t]: a row of the V × E table", tuple(captured["word"].shape),
              code_ref(m, "Embeddings.forward", "self.word(input_ids)")),
        Stage("input embedding e (width E)", "e_t = LayerNorm(E_word[x_t] + E_pos[t] + E_type[s_t])",
              tuple(captured["embedded"].shape), code_ref(m, "Embeddings.forward", "self.norm(x)"),
              "the factorized embedding: no context yet"),
        Stage("projection E → H", "h⁰_t = e_t W_proj + b_proj", tuple(captured["projected"].shape),
              code_ref(m, "Encoder.forward", "self.project(embedded)"), "hidden state 0"),
        Stage("queries, split into heads", "Q = h W^Q, viewed as (batch, heads, n, d_k); K and V alike",
              (q[0], heads, q[1], q[2] // heads), code_ref(m, "SelfAttention.forward", "self.split_heads(self.query(x))")),
        Stage("attention probabilities", "A = softmax(Q Kᵀ / √d_k + M)", tuple(out.attentions[0].shape),
              code_ref(m, "SelfAttention.forward", "torch.softmax(scores")),
        Stage("heads joined, residual, LayerNorm", "LN(h + Concat(A₁V₁, …, A_hV_h) W^O)",
              tuple(captured["attended"].shape), code_ref(m, "SelfAttention.forward", "self.norm(x + attended)")),
        Stage("feed-forward, inner", "act(x W₁ + b₁)", tuple(captured["ffn_up"].shape),
              code_ref(m, "FeedForward.forward", "self.act(self.up(x))")),
        Stage("feed-forward, out, residual, LayerNorm", "h' = LN(x + act(x W₁ + b₁) W₂ + b₂)",
              tuple(captured["ffn_out"].shape), code_ref(m, "FeedForward.forward", "self.norm(x +")),
        Stage("layer calls (shared weights)", "h^l = Layer_g(l)(h^(l-1)),  g(l) = ⌊l / (L/G)⌋,  l = 1 … L",
              (calls + 1, *out.hidden_states[0].shape), code_ref(m, "Encoder.forward", "for layer in self.layer_calls()"),
              f"{calls} calls of {len(set(_distinct_weights(model.encoder.layer_calls())))} distinct layer(s); "
              "hidden states 0..L stacked"),
    ]
    if "pooler" in captured:
        stages.append(Stage("pooler", "tanh(W_p h_[CLS] + b_p)", tuple(out.pooler_output.shape),
                            code_ref(m, "AlbertModel.forward", "torch.tanh(self.pooler")))
    return stages


def _attention_stats(att: np.ndarray, special_cls: np.ndarray, special_sep: np.ndarray):
    """[CLS] share, [SEP] share, entropy (nats) and mean distance (tokens), each (calls, heads)."""
    a = att.astype(np.float64)
    n = a.shape[-1]
    cls_share = a[..., special_cls].sum(-1).mean(-1)
    sep_share = a[..., special_sep].sum(-1).mean(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(a > 0, a * np.log(a), 0.0).sum(-1).mean(-1)
    offsets = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :])
    distance = (a * offsets).sum(-1).mean(-1)
    return cls_share, sep_share, entropy, distance


def _similarity(hidden: np.ndarray) -> np.ndarray:
    h = hidden.astype(np.float64)
    unit = h / np.linalg.norm(h, axis=-1, keepdims=True)
    return np.einsum("dih,djh->dij", unit, unit).astype(np.float32)


def compute(model, text: str, *, tokenizer=None, name: str | None = None, token: int | str | None = None,
            compare: Any = None, max_length: int | None = None, revision: str | None = None,
            cache_dir: str | os.PathLike | None = None, local_files_only: bool = False,
            device: str | torch.device | None = None) -> Analysis:
    """Run `text` through `model` once and return every number the report shows
    (`minialbert.inspect.analyze` returns the same as a `Report`, which can also save and show itself).

    model: a checkpoint directory or Hub repo id, an `Embedder`, or an `AlbertModel` /
      `AlbertForPreTraining` (then pass `tokenizer`).
    token: the token the similarity view starts on (index or piece; default: the first word piece).
    compare: another model, a list of them, or a dict {label: model}; each a checkpoint name or path,
      or an Embedder. Its Figure 1 on the same text is overlaid (its own tokenizer splits the text;
      its depth may differ).
    max_length: tokens kept, [CLS]/[SEP] included (default and maximum: the model's); longer
      texts are truncated with a `LongTextWarning`.
    """
    from ..embed import LongTextWarning

    text = _check_text(text)
    load = dict(revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, device=device)
    albert, tok, lowercase, limit = _load(model, tokenizer, **load)
    if max_length is not None and not 2 < max_length <= limit:
        raise MinialbertError(f"max_length must be between 3 and {limit}, got {max_length}")
    max_length = max_length or limit
    enc, full = _encode(tok, text, lowercase, max_length)
    ids = list(enc["input_ids"])
    pieces = tok.convert_ids_to_tokens(ids)
    control = {tok.cls_token_id, tok.sep_token_id}
    special = np.array([i in control for i in ids])
    spans = [None if s else (int(a), int(b)) for s, (a, b) in zip(special, enc["offset_mapping"])]
    if full > len(ids):
        warnings.warn(f"the text has {full} tokens; only the first {max_length} are inspected",
                      LongTextWarning, stacklevel=3)

    out, hidden, captured = _forward(albert, ids, record=True)
    attentions = np.stack([a[0].float().cpu().numpy() for a in out.attentions])
    label = _name(model, name, "model")
    id_array = np.array(ids, dtype=np.int64)
    stats = _attention_stats(attentions, id_array == tok.cls_token_id, id_array == tok.sep_token_id)
    if isinstance(compare, dict):
        others = list(compare.items())
    else:
        listed = compare if isinstance(compare, (list, tuple)) else ([] if compare is None else [compare])
        others = [(_name(other, None, f"compare {k + 1}"), other) for k, other in enumerate(listed)]
    return Analysis(
        model=label, text=text, config=albert.config, pieces=pieces, ids=id_array, spans=spans, special=special,
        n_tokens_full=full, max_length=max_length,
        embeddings=captured["embedded"][0].float().cpu().numpy(),
        hidden_states=hidden, attentions=attentions,
        figure1=Figure1.from_hidden(label, hidden, pieces),
        cls_share=stats[0], sep_share=stats[1], entropy=stats[2], distance=stats[3],
        similarity=_similarity(hidden),
        stages=_stages(albert, captured, out, len(ids)),
        parameters=parameter_map(albert.config, albert.pooler is not None),
        parameters_counted=sum(p.numel() for p in albert.parameters()),
        weights_of_call=_distinct_weights(albert.encoder.layer_calls()),
        token=_pick_token(token, pieces, special),
        compare=[_figure1_of(other, text, other_name, load) for other_name, other in others],
    )


def _figure1_of(spec, text: str, label: str, load: dict) -> Figure1:
    """Figure 1 of another model on the same text, tokenized by that model's own tokenizer."""
    albert, tok, lowercase, limit = _load(spec, None, **load)
    enc, _ = _encode(tok, text, lowercase, limit)
    ids = list(enc["input_ids"])
    _, hidden, _ = _forward(albert, ids, record=False)
    return Figure1.from_hidden(label, hidden, tok.convert_ids_to_tokens(ids))
