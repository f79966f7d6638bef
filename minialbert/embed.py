"""Text -> vectors: the tokenizer and the model bundled, with pooling, batching and long texts.

    from minialbert import Embedder
    emb = Embedder.from_pretrained("albert-base-v2")
    vectors = emb.embed(["first text", "second text"], pooling="mean")   # (2, 768) float32

What the seed document does by hand (tokenize, run, take last_hidden_state[:, 0]) is
`pooling="cls"`. Texts are tokenized once, sorted by length so each batch pads little,
run through the model, pooled, and put back in input order.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from .errors import CheckpointError, ConfigError, MinialbertError
from .hub import ModelSource
from .model import AlbertModel

POOLINGS = ("cls", "mean", "max", "pooler", "mean_sqrt_len")
LONG_TEXT_MODES = ("truncate", "chunk", "error")
BACKENDS = ("torch", "onnxruntime")


class LongTextWarning(UserWarning):
    """Some texts were longer than max_length and were truncated."""


# ---------------------------------------------------------------------------- pooling
def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str, pooler_output: torch.Tensor | None = None) -> torch.Tensor:
    """(batch, seq, H) token vectors + (batch, seq) mask -> (batch, H) one vector per text.

    cls:           h_[CLS], the first token (the seed document's choice)
    mean:          sum_t m_t h_t / sum_t m_t           (padding excluded)
    max:           max over real tokens, per dimension
    mean_sqrt_len: sum_t m_t h_t / sqrt(sum_t m_t)    (sentence-transformers' mode)
    pooler:        tanh(W h_[CLS] + b), the output of ALBERT's pooler layer
    """
    if mode == "cls":
        return hidden[:, 0]
    if mode == "pooler":
        if pooler_output is None:
            raise MinialbertError("pooling='pooler' needs pooler weights, and this checkpoint has none; "
                                  "use pooling='cls' or 'mean'")
        return pooler_output
    m = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "max":
        return hidden.masked_fill(m == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
    total = (hidden * m).sum(dim=1)
    count = m.sum(dim=1).clamp(min=1e-9)
    if mode == "mean":
        return total / count
    if mode == "mean_sqrt_len":
        return total / count.sqrt()
    raise MinialbertError(f"unknown pooling {mode!r}; choose from {', '.join(POOLINGS)}")


# ------------------------------------------------------------------ result containers
@dataclass
class TokenEmbeddings:
    """Per-token output for one text (no padding rows)."""

    tokens: list[str]  # sentencepiece pieces, with [CLS] and [SEP]
    offsets: list[tuple[int, int] | None]  # character span in the original text; None for [CLS]/[SEP]
    vectors: np.ndarray | torch.Tensor  # (n_tokens, H)


@dataclass
class ChunkEmbeddings:
    """The windows one long text was split into, each pooled separately."""

    vectors: np.ndarray | torch.Tensor  # (n_chunks, H)
    token_spans: list[tuple[int, int]]  # [start, end) in the text's token sequence (no specials)
    weights: list[int]  # tokens per window: the weights of the combined vector


def _check_texts(texts) -> tuple[list[str], bool]:
    if isinstance(texts, str):
        return [texts], True
    if isinstance(texts, (bytes, bytearray)) or not isinstance(texts, Iterable):
        raise TypeError(f"texts must be a str or a list of str, got {type(texts).__name__}")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts must be strings: item {i} is {type(t).__name__}")
    return texts, False


# ---------------------------------------------------------------------- the embedder
class Embedder:
    """A tokenizer and an AlbertModel, ready to turn text into vectors.

    Defaults (pooling, normalize, max_length) come from the checkpoint: a sentence-transformers
    layout sets them from its modules; otherwise pooling="cls", no normalization, max_length=512.
    """

    def __init__(self, model: AlbertModel, tokenizer, *, pooling: str = "cls", normalize: bool = False,
                 max_length: int | None = None, lowercase: bool = False):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.pooling = self._check_pooling(pooling)
        self.normalize = bool(normalize)
        limit = model.config.max_position_embeddings
        self.max_length = min(max_length or getattr(tokenizer, "model_max_length", limit) or limit, limit)
        self.lowercase = lowercase  # sentence-transformers' do_lower_case
        self.from_sentence_transformers = False
        self._warned_long = False

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *, revision: str | None = None,
                        cache_dir: str | os.PathLike | None = None, local_files_only: bool = False,
                        device: str | torch.device | None = None, dtype: torch.dtype | str | None = None,
                        pooling: str | None = None, normalize: bool | None = None,
                        max_length: int | None = None, backend: str = "torch") -> "Embedder":
        """backend="onnxruntime" (the `[onnx]` extra) runs an ONNX export instead of the PyTorch model:
        name_or_path is then a folder holding one (`minialbert export onnx`) or the .onnx file itself;
        a PyTorch checkpoint is exported in memory (float32). Last layer and pooler only, CPU, float32."""
        from .tokenizer import AlbertTokenizer

        if backend not in BACKENDS:
            raise MinialbertError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
        if backend == "onnxruntime":
            from . import onnx_backend

            export = onnx_backend.find_export(name_or_path) if Path(name_or_path).exists() else None
            if export is not None:  # an export folder: the .onnx file and the tokenizer files
                model = onnx_backend.OnnxAlbert(export).to(device, _dtype(dtype))
                return cls(model, AlbertTokenizer.from_pretrained(export.parent), pooling=pooling or "cls",
                           normalize=bool(normalize), max_length=max_length)
        source = ModelSource(name_or_path, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
        st = _read_sentence_transformers(source)
        folder = source.checkpoint_folder(st.get("transformer_path", ""))
        if backend == "onnxruntime":
            from .export import build_onnx

            model = onnx_backend.OnnxAlbert(build_onnx(AlbertModel.from_pretrained(folder))).to(device, _dtype(dtype))
        else:
            model = AlbertModel.from_pretrained(folder, dtype=_dtype(dtype), device=device)
        tokenizer = AlbertTokenizer.from_pretrained(folder)
        embedder = cls(
            model, tokenizer,
            pooling=pooling or st.get("pooling", "cls"),
            normalize=st.get("normalize", False) if normalize is None else normalize,
            max_length=max_length or st.get("max_length"),
            lowercase=st.get("lowercase", False),
        )
        embedder.from_sentence_transformers = bool(st)
        return embedder

    @property
    def dim(self) -> int:
        return self.model.config.hidden_size

    def to(self, device=None, dtype=None) -> "Embedder":
        """Move/cast the model (once; later calls reuse it)."""
        from .weights import move_model

        dtype = _dtype(dtype)
        if (device is not None and str(device) != str(self.model.device)) or (
            dtype is not None and dtype != self.model.dtype
        ):
            move_model(self.model, device, dtype)
        return self

    # -------------------------------------------------------------- tokenizing
    def _check_pooling(self, pooling: str) -> str:
        if pooling not in POOLINGS:
            raise MinialbertError(f"unknown pooling {pooling!r}; choose from {', '.join(POOLINGS)}")
        return pooling

    def _content_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text without [CLS]/[SEP]."""
        if self.lowercase:
            texts = [t.lower() for t in texts]
        return self.tokenizer.encode_batch_ids(texts)

    def _windows(self, n: int, max_length: int, stride: int) -> list[tuple[int, int]]:
        """[start, end) spans of content tokens covering n tokens, overlapping by `stride`."""
        width = max_length - 2
        if n <= width:
            return [(0, n)]
        if not 0 <= stride < width:
            raise MinialbertError(f"stride must be in [0, {width}) for max_length {max_length}, got {stride}")
        step = width - stride
        spans, start = [], 0
        while True:
            end = min(start + width, n)
            spans.append((start, end))
            if end == n:
                return spans
            start += step

    def _plan(self, texts: list[str], max_length: int, long_text: str, stride: int):
        """Split texts into model inputs: returns (sequences, owner text index, spans per text)."""
        if long_text not in LONG_TEXT_MODES:
            raise MinialbertError(f"unknown long_text mode {long_text!r}; choose from {', '.join(LONG_TEXT_MODES)}")
        if not 2 < max_length <= self.model.config.max_position_embeddings:
            raise MinialbertError(f"max_length must be between 3 and {self.model.config.max_position_embeddings}, "
                                  f"got {max_length}")
        cls_id, sep_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        sequences, owner, spans_per_text = [], [], []
        n_truncated = 0
        for i, ids in enumerate(self._content_ids(texts)):
            if len(ids) + 2 > max_length:
                if long_text == "error":
                    raise MinialbertError(f"text {i} has {len(ids) + 2} tokens, more than max_length {max_length}")
                if long_text == "truncate":
                    n_truncated += 1
                    spans = [(0, max_length - 2)]
                else:
                    spans = self._windows(len(ids), max_length, stride)
            else:
                spans = [(0, len(ids))]
            spans_per_text.append(spans)
            for s, e in spans:
                sequences.append([cls_id, *ids[s:e], sep_id])
                owner.append(i)
        self._warn_truncated(n_truncated, max_length)
        return sequences, owner, spans_per_text

    def _warn_truncated(self, n_truncated: int, max_length: int) -> None:
        """Say once per Embedder that texts were cut to max_length."""
        if n_truncated and not self._warned_long:
            self._warned_long = True
            warnings.warn(
                f"{n_truncated} text(s) longer than max_length={max_length} tokens were truncated; "
                "use long_text='chunk' (--long-text chunk) to embed them whole", LongTextWarning, stacklevel=4)

    # ---------------------------------------------------------------- running
    # A batch closes early when the next (shorter) sequence is under this fraction of the batch's
    # width, once the batch holds MIN_BATCH_TOKENS tokens: the long tail of a corpus then runs in
    # small batches of similar lengths instead of padding 32 rows to its longest text.
    SPLIT_RATIO = 0.8
    MIN_BATCH_TOKENS = 1024

    @classmethod
    def plan_batches(cls, lengths: Sequence[int], batch_size: int) -> list[list[int]]:
        """Indices grouped into batches, longest sequences first, each batch at most batch_size rows."""
        if batch_size < 1:
            raise MinialbertError(f"batch_size must be at least 1, got {batch_size}")
        order = sorted(range(len(lengths)), key=lambda k: -lengths[k])
        batches, start = [], 0
        while start < len(order):
            width, end = lengths[order[start]], start + 1
            while end < len(order) and end - start < batch_size and (
                lengths[order[end]] >= cls.SPLIT_RATIO * width or (end - start) * width < cls.MIN_BATCH_TOKENS
            ):
                end += 1
            batches.append(order[start:end])
            start = end
        return batches

    def _forward_sorted(self, sequences: list[list[int]], batch_size: int, fn, progress=None):
        """Run batches in order of length (longest first) and return fn's results in input order.

        fn(ids, mask) -> per-row results. Sorting means each batch pads only to lengths close to
        its own, which on real corpora of mixed lengths removes most of the padding work.
        """
        batches = self.plan_batches([len(s) for s in sequences], batch_size)
        results: list = [None] * len(sequences)
        pad = self.tokenizer.pad_token_id
        device = self.model.device
        with torch.inference_mode():
            for rows in batches:
                width = len(sequences[rows[0]])
                ids = torch.full((len(rows), width), pad, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for r, k in enumerate(rows):
                    seq = sequences[k]
                    ids[r, :len(seq)] = torch.tensor(seq)
                    mask[r, :len(seq)] = 1
                out = fn(ids.to(device), mask.to(device))
                for r, k in enumerate(rows):
                    results[k] = out[r]
                if progress is not None:
                    progress(len(rows))
        return results

    def _run_model(self, ids, mask, layer):
        if layer is None or layer == -1:
            out = self.model(ids, attention_mask=mask)
            return out.last_hidden_state, out.pooler_output
        out = self.model(ids, attention_mask=mask, output_hidden_states=True)
        layers = [layer] if isinstance(layer, int) else list(layer)
        n = len(out.hidden_states)
        for li in layers:
            if not -n <= li < n:
                raise MinialbertError(f"layer {li} out of range: this model has hidden states 0..{n - 1} "
                                      "(0 = after the embedding projection, -1 = last)")
        hidden = torch.stack([out.hidden_states[li] for li in layers]).mean(dim=0)
        return hidden, out.pooler_output

    def _pooling_step(self, pooling: str, layer):
        """The per-batch work of embed/embed_chunks: run the model, pool, float32 on the CPU."""
        def step(ids, mask):
            hidden, pooled = self._run_model(ids, mask, layer)
            return pool(hidden, mask, pooling, pooled).float().cpu()

        return step

    def embed(self, texts: str | Sequence[str], *, pooling: str | None = None, layer: int | Sequence[int] | None = None,
              normalize: bool | None = None, batch_size: int = 32, max_length: int | None = None,
              long_text: str = "truncate", stride: int = 128, device=None, dtype=None,
              convert_to: str = "numpy", show_progress: bool = False):
        """One vector per text, in input order: (n_texts, H) float32 (numpy, or torch with convert_to="torch").

        pooling: cls | mean | max | mean_sqrt_len | pooler (default: the embedder's).
        layer: None/-1 = last layer; an int picks hidden state `layer` (0 = after the E->H
               projection); a list averages those layers.
        long_text: "truncate" (default; warns once), "chunk" (windows of max_length tokens
               overlapping by `stride`, pooled one by one and averaged with weights = tokens per
               window), or "error".
        A single string gives a (H,) vector. show_progress draws a tqdm bar on stderr.
        """
        texts, single = _check_texts(texts)
        pooling = self._check_pooling(pooling or self.pooling)
        normalize = self.normalize if normalize is None else normalize
        if pooling == "pooler" and layer not in (None, -1):
            raise MinialbertError("pooling='pooler' always uses the last layer; drop --layer or pick another pooling")
        self.to(device, dtype)
        max_length = max_length or self.max_length
        sequences, owner, spans = self._plan(texts, max_length, long_text, stride)

        bar = None
        if show_progress:
            from tqdm import tqdm

            unit = "text" if len(sequences) == len(texts) else "window"
            bar = tqdm(total=len(sequences), unit=unit, desc="embedding", dynamic_ncols=True)
        try:
            pooled = self._forward_sorted(sequences, batch_size, self._pooling_step(pooling, layer),
                                          bar.update if bar else None)
        finally:
            if bar is not None:
                bar.close()
        vectors = torch.zeros((len(texts), self.dim), dtype=torch.float32)
        k = 0
        for i, text_spans in enumerate(spans):
            chunk = torch.stack(pooled[k:k + len(text_spans)])
            weights = torch.tensor([float(e - s) for s, e in text_spans])
            if len(text_spans) == 1:
                vectors[i] = chunk[0]
            else:  # token-count-weighted mean of the windows (the document's section 9.3)
                vectors[i] = (chunk * weights[:, None]).sum(0) / weights.sum()
            k += len(text_spans)
        if normalize:
            vectors = torch.nn.functional.normalize(vectors, dim=-1)
        vectors = vectors[0] if single else vectors
        return vectors if convert_to == "torch" else vectors.numpy()

    def embed_chunks(self, texts: str | Sequence[str], *, pooling: str | None = None, layer=None,
                     batch_size: int = 32, max_length: int | None = None, stride: int = 128,
                     normalize: bool | None = None, convert_to: str = "numpy") -> list[ChunkEmbeddings]:
        """The per-window vectors that long_text="chunk" averages, with their token spans."""
        texts, _ = _check_texts(texts)
        pooling = self._check_pooling(pooling or self.pooling)
        normalize = self.normalize if normalize is None else normalize
        sequences, owner, spans = self._plan(texts, max_length or self.max_length, "chunk", stride)

        pooled = self._forward_sorted(sequences, batch_size, self._pooling_step(pooling, layer))
        result, k = [], 0
        for text_spans in spans:
            v = torch.stack(pooled[k:k + len(text_spans)])
            if normalize:
                v = torch.nn.functional.normalize(v, dim=-1)
            result.append(ChunkEmbeddings(v if convert_to == "torch" else v.numpy(), list(text_spans),
                                          [e - s for s, e in text_spans]))
            k += len(text_spans)
        return result

    def embed_tokens(self, texts: str | Sequence[str], *, layer=None, batch_size: int = 32,
                     max_length: int | None = None, convert_to: str = "numpy") -> list[TokenEmbeddings]:
        """Every token's vector, with its piece and its character span in the original text.

        Long texts are truncated to max_length (with the usual one-time warning).
        """
        texts, _ = _check_texts(texts)
        max_length = max_length or self.max_length
        source = [t.lower() for t in texts] if self.lowercase else texts
        enc = self.tokenizer(source, truncation=True, max_length=max_length, return_offsets_mapping=True)
        sequences = enc["input_ids"]
        if not self._warned_long:  # one batched length check, only while the warning is still owed
            self._warn_truncated(sum(len(ids) + 2 > max_length for ids in self._content_ids(texts)), max_length)

        def step(ids, mask):
            hidden, _ = self._run_model(ids, mask, layer)
            return hidden.float().cpu()

        hidden = self._forward_sorted(sequences, batch_size, step)
        special = {self.tokenizer.cls_token_id, self.tokenizer.sep_token_id}
        result = []
        for ids, offsets, h in zip(sequences, enc["offset_mapping"], hidden):
            vec = h[: len(ids)]
            result.append(TokenEmbeddings(
                tokens=self.tokenizer.convert_ids_to_tokens(ids),
                offsets=[None if tid in special else (int(a), int(b)) for tid, (a, b) in zip(ids, offsets)],
                vectors=vec if convert_to == "torch" else vec.numpy(),
            ))
        return result

    def rank(self, query: str, candidates: Sequence[str], *, top_k: int | None = None, **embed_kwargs):
        """Candidates sorted by cosine similarity to the query: [(score, index, text), ...]."""
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        candidates, _ = _check_texts(candidates)
        if not candidates:
            return []
        vectors = self.embed([query, *candidates], convert_to="torch", **embed_kwargs)
        scores = torch.nn.functional.cosine_similarity(vectors[:1], vectors[1:], dim=-1)
        order = torch.argsort(scores, descending=True, stable=True).tolist()
        if top_k is not None:
            order = order[:top_k]
        return [(float(scores[i]), i, candidates[i]) for i in order]


def _dtype(dtype) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if dtype not in names:
        raise MinialbertError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16")
    return names[dtype]


# ------------------------------------------------------------- sentence-transformers
def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from None


def _read_sentence_transformers(source: ModelSource) -> dict:
    """Defaults from a sentence-transformers layout (modules.json), or {} for a plain checkpoint."""
    modules_path = source.file("modules.json", required=False)
    if modules_path is None:
        return {}
    modules = _read_json(modules_path)
    if not isinstance(modules, list):
        raise CheckpointError(f"{modules_path}: expected a list of modules")
    found: dict = {}
    for module in sorted(modules, key=lambda m: m.get("idx", 0)):
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        path = str(module.get("path", "")).strip("/")
        if kind == "Transformer":
            found["transformer_path"] = path
            cfg_path = source.file((f"{path}/" if path else "") + "sentence_bert_config.json", required=False)
            if cfg_path is not None:
                cfg = _read_json(cfg_path)
                if cfg.get("max_seq_length"):
                    found["max_length"] = int(cfg["max_seq_length"])
                found["lowercase"] = bool(cfg.get("do_lower_case", False))
        elif kind == "Pooling":
            cfg = _read_json(source.file(f"{path}/config.json"))
            modes = [name for flag, name in (
                ("pooling_mode_cls_token", "cls"), ("pooling_mode_max_tokens", "max"),
                ("pooling_mode_mean_tokens", "mean"), ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len"),
                ("pooling_mode_weightedmean_tokens", "weightedmean"), ("pooling_mode_lasttoken", "lasttoken"),
            ) if cfg.get(flag)]
            if len(modes) != 1 or modes[0] not in POOLINGS:
                raise ConfigError(f"{source.name}: sentence-transformers pooling {modes or 'none'} is not supported "
                                  "(minialbert supports exactly one of cls, mean, max, mean_sqrt_len)")
            found["pooling"] = modes[0]
        elif kind == "Normalize":
            found["normalize"] = True
        else:
            raise ConfigError(f"{source.name}: sentence-transformers module {module.get('type')!r} is not supported "
                              "(minialbert handles Transformer, Pooling and Normalize)")
    return found
