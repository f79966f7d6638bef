"""Text -> vectors: the tokenizer and the model bundled, with pooling, batching and long texts.

    from minialbert import Embedder
    emb = Embedder.from_pretrained("albert-base-v2")
    vectors = emb.embed(["first text", "second text"], pooling="mean")   # (2, 768) float32

The usual transformers recipe (tokenize, run the model, take last_hidden_state[:, 0]) is
`pooling="cls"`. Texts are tokenized once, sorted by length so each batch pads little,
run through the model, pooled, and put back in input order.

Which code runs: the last layer (layer=None or -1, the default) comes from the model through
fast.InferenceEngine, which takes its fused path for a stock model and otherwise runs the
model's own forward (and says so once); any other `layer` needs every hidden state, so the
model itself runs (model.py), output_hidden_states=True.

The parts that do not need the Embedder live beside it: `pooling` (the seven pooling modes),
`batching` (length-sorted batches, long-text windows), `st_format` (sentence-transformers
folders). Their public names are importable from here too, as before the split.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import batching
from .batching import LONG_TEXT_MODES, LongTextWarning, check_texts, window_spans
from .errors import ConfigError, MinialbertError
from .hub import ModelSource
from .model import AlbertModel
from .pooling import POOLINGS, pool
from .st_format import (
    SIMILARITY_FUNCTIONS,
    ST_POOLING_NAMES,
    read_sentence_transformers,
    sentence_transformers_files,
)

BACKENDS = ("torch", "onnxruntime")


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


# ---------------------------------------------------------------------- the embedder
class Embedder:
    """A tokenizer and an AlbertModel, ready to turn text into vectors.

    Defaults (pooling, normalize, max_length) come from the checkpoint: a sentence-transformers
    layout sets them from its modules; otherwise pooling="cls", no normalization, max_length=512.

    Also from a sentence-transformers layout (config_sentence_transformers.json, 1_Pooling):
    prompts:             {name: text} prepended to texts by embed(prompt_name=...)
    default_prompt_name: the prompt embed uses when given none (None: no prompt)
    include_prompt:      False leaves [CLS] and the prompt's tokens out of the pooling
    similarity_fn_name:  cosine | dot | euclidean | manhattan, the score of similarity() and rank()
    """

    def __init__(self, model: AlbertModel, tokenizer, *, pooling: str = "cls", normalize: bool = False,
                 max_length: int | None = None, lowercase: bool = False, prompts: dict[str, str] | None = None,
                 default_prompt_name: str | None = None, include_prompt: bool = True,
                 similarity_fn_name: str = "cosine"):
        self.model = model.eval()
        self._engine = None  # fast.InferenceEngine for self.model, made on first use
        self.tokenizer = tokenizer
        self.pooling = self._check_pooling(pooling)
        self.normalize = bool(normalize)
        limit = model.config.max_position_embeddings
        self.max_length = min(max_length or getattr(tokenizer, "model_max_length", limit) or limit, limit)
        self.lowercase = lowercase  # sentence-transformers' do_lower_case
        self.prompts = dict(prompts or {})
        if default_prompt_name is not None and default_prompt_name not in self.prompts:
            raise MinialbertError(f"default_prompt_name {default_prompt_name!r} is not one of the prompts "
                                  f"({', '.join(map(repr, self.prompts)) or 'there are none'})")
        self.default_prompt_name = default_prompt_name
        self.include_prompt = bool(include_prompt)
        if similarity_fn_name not in SIMILARITY_FUNCTIONS:
            raise MinialbertError(f"unknown similarity_fn_name {similarity_fn_name!r}; "
                                  f"choose from {', '.join(SIMILARITY_FUNCTIONS)}")
        self.similarity_fn_name = similarity_fn_name
        self.from_sentence_transformers = False
        self.dtype_note: str | None = None  # what dtype="auto" took, and why (from_pretrained)
        self._warned_long = False

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *, revision: str | None = None,
                        cache_dir: str | os.PathLike | None = None, local_files_only: bool = False,
                        device: str | torch.device | None = None, dtype: torch.dtype | str | None = None,
                        pooling: str | None = None, normalize: bool | None = None,
                        max_length: int | None = None, backend: str = "torch", int8: bool = False,
                        num_layer_calls: int | None = None) -> "Embedder":
        """backend="onnxruntime" (the `[onnx]` extra) runs an ONNX export instead of the PyTorch model:
        name_or_path is then a folder holding one (`minialbert export onnx`) or the .onnx file itself;
        a PyTorch checkpoint is exported in memory (float32). Last layer and pooler only, CPU, float32.

        int8=True runs last-layer outputs through the inference engine's int8 GEMMs
        (InferenceEngine(model, int8=True): x86 CPU, float32; mean-pooled cosine to float32
        >= 0.9997 on the benchmark corpus). With backend="onnxruntime" a checkpoint is exported in
        memory with int8 weights for this CPU (export.Int8Options.for_this_cpu(): "s8" with VNNI or
        AMX, the fastest batch-1 path there; "u8" elsewhere); an export folder must be an --int8 one.

        num_layer_calls=N runs N calls of the shared layer(s) instead of the checkpoint's count
        (AlbertModel.from_pretrained's; docs/guides/compression.md). An ONNX export folder has its
        depth built in: export with `--layer-calls N` instead.

        dtype="auto": bfloat16 on CPUs that multiply it natively (AVX512-BF16 or AMX; ~1.7x
        float32, mean-pooled cosine to float32 >= 0.999 on the benchmark corpus), float32
        elsewhere and with int8, ONNX Runtime or a non-CPU device; `embedder.dtype_note` says which."""
        from .tokenizer import AlbertTokenizer

        dtype_note = None
        if isinstance(dtype, str) and dtype == "auto":
            dtype, dtype_note = _auto_dtype(int8, backend, device)

        if backend not in BACKENDS:
            raise MinialbertError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
        if int8:
            if (device is not None and torch.device(device).type != "cpu") or _dtype(dtype) not in (None, torch.float32):
                raise MinialbertError("int8 runs float32 models on the CPU: drop --device/--dtype (or int8)")
        if backend == "onnxruntime":
            from . import onnx_backend

            export = onnx_backend.find_export(name_or_path) if Path(name_or_path).exists() else None
            if export is not None:  # an export folder: the .onnx file and the tokenizer files
                if num_layer_calls is not None:
                    raise MinialbertError("num_layer_calls does not apply to an ONNX export (its depth is fixed in "
                                          "the graph); export with `minialbert export onnx ... --layer-calls N`")
                model = onnx_backend.OnnxAlbert(export).to(device, _dtype(dtype))
                if int8 and model.int8 == "none":
                    raise MinialbertError(f"{export} is a float32 export; for int8 give the checkpoint (exported in "
                                          "memory with int8 weights for this CPU) or export with --int8")
                return cls(model, AlbertTokenizer.from_pretrained(export.parent), pooling=pooling or "cls",
                           normalize=bool(normalize), max_length=max_length)
        source = ModelSource(name_or_path, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
        st = read_sentence_transformers(source)
        folder = source.checkpoint_folder(st.get("transformer_path", ""))
        if backend == "onnxruntime":
            from .export import Int8Options, build_onnx

            model = onnx_backend.OnnxAlbert(build_onnx(AlbertModel.from_pretrained(
                folder, num_layer_calls=num_layer_calls), int8=Int8Options.for_this_cpu() if int8 else False)
            ).to(device, _dtype(dtype))
        else:
            model = AlbertModel.from_pretrained(folder, dtype=_dtype(dtype), device=device,
                                                num_layer_calls=num_layer_calls)
        tokenizer = AlbertTokenizer.from_pretrained(folder)
        if st.get("dimension") not in (None, model.config.hidden_size):
            raise ConfigError(f"{source.name}: the Pooling module expects {st['dimension']}-d token vectors but the "
                              f"model's hidden size is {model.config.hidden_size}")
        embedder = cls(
            model, tokenizer,
            pooling=pooling or st.get("pooling", "cls"),
            normalize=st.get("normalize", False) if normalize is None else normalize,
            max_length=max_length or st.get("max_length"),
            lowercase=st.get("lowercase", False),
            prompts=st.get("prompts"),
            default_prompt_name=st.get("default_prompt_name"),
            include_prompt=st.get("include_prompt", True),
            similarity_fn_name=st.get("similarity_fn_name") or "cosine",
        )
        embedder.from_sentence_transformers = bool(st)
        embedder.dtype_note = dtype_note
        if int8 and backend == "torch":
            from .fast import InferenceEngine

            embedder.engine = InferenceEngine(model, int8=True)
        return embedder

    @property
    def runtime(self) -> str:
        """What computes last-layer vectors: "torch" (the fp32 engine, or the model itself),
        "torch-int8" (the int8 engine) or "onnxruntime" (an ONNX export; "onnxruntime-int8" for
        an --int8 one). Streaming records it, so that a resume cannot mix them."""
        if not isinstance(self.model, torch.nn.Module):
            return "onnxruntime" + ("" if getattr(self.model, "int8", "none") == "none" else "-int8")
        return "torch-int8" if getattr(self._engine, "int8", False) else "torch"

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write the model, the tokenizer and a sentence-transformers layout into `directory`.

        Embedder.from_pretrained and sentence-transformers both load the folder and give the same
        vectors (tested with sentence-transformers 6.2; the layout is the v2-v5 one, which later
        versions read): pooling, include_prompt, normalization, max_length, lower-casing, prompts,
        default_prompt_name and similarity_fn_name are all recorded.
        """
        from .files import atomic_write

        if self.pooling not in ST_POOLING_NAMES:
            raise MinialbertError(f"pooling={self.pooling!r} has no sentence-transformers equivalent, so this "
                                  "Embedder cannot be saved as a sentence-transformers model; set "
                                  "emb.pooling to one of " + ", ".join(ST_POOLING_NAMES) + ", or save the model "
                                  "and tokenizer alone (emb.model.save_pretrained, emb.tokenizer.save_pretrained)")
        out = Path(directory)
        self.model.save_pretrained(out)
        self.tokenizer.save_pretrained(out)
        for name, content in sentence_transformers_files(self).items():
            path = out / name
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise MinialbertError(f"cannot create {path.parent}: {e.strerror}") from None
            text = json.dumps(content, indent=2, ensure_ascii=False) + "\n"
            atomic_write(path, lambda tmp, text=text: Path(tmp).write_text(text, encoding="utf-8"))

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

    def _windows(self, n: int, max_length: int, stride: int, reserved: int = 0) -> list[tuple[int, int]]:
        """[start, end) spans of content tokens covering n tokens, overlapping by `stride`.

        `reserved` tokens of each window are taken by a prompt that starts every window.
        """
        width = max_length - 2 - reserved
        if n <= width:
            return [(0, n)]
        with_prompt = f" with a {reserved}-token prompt" if reserved else ""
        if width < 1:
            raise MinialbertError(f"the prompt takes {reserved} tokens and leaves no room for text at max_length "
                                  f"{max_length}; raise max_length or use a shorter prompt")
        if not 0 <= stride < width:
            raise MinialbertError(f"stride must be in [0, {width}) for max_length {max_length}{with_prompt}, "
                                  f"got {stride}")
        return window_spans(n, width, stride)

    def _plan(self, texts: list[str], max_length: int, long_text: str, stride: int, prompt: str = ""):
        """Split texts into model inputs: returns (sequences, owner text index, spans per text).

        With a prompt, each text is tokenized as prompt + text (the string sentence-transformers
        tokenizes), and its first k tokens, k = the prompt's own token count, start every window;
        spans count the tokens after them.
        """
        if long_text not in LONG_TEXT_MODES:
            raise MinialbertError(f"unknown long_text mode {long_text!r}; choose from {', '.join(LONG_TEXT_MODES)}")
        if not 2 < max_length <= self.model.config.max_position_embeddings:
            raise MinialbertError(f"max_length must be between 3 and {self.model.config.max_position_embeddings}, "
                                  f"got {max_length}")
        cls_id, sep_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        sequences, owner, spans_per_text = [], [], []
        n_truncated = 0
        k = len(self._content_ids([prompt])[0]) if prompt else 0
        for i, joint in enumerate(self._content_ids([prompt + t for t in texts] if prompt else texts)):
            head, ids = joint[:k], joint[k:]
            room = max_length - 2 - len(head)
            if len(ids) > room:
                if long_text == "error":
                    raise MinialbertError(f"text {i} has {len(joint) + 2} tokens{' with its prompt' if k else ''}, "
                                          f"more than max_length {max_length}")
                if long_text == "truncate":
                    n_truncated += 1
                    spans = [(0, max(room, 0))]
                else:
                    spans = self._windows(len(ids), max_length, stride, reserved=len(head))
            else:
                spans = [(0, len(ids))]
            spans_per_text.append(spans)
            for s, e in spans:
                # head[:max_length - 2]: a prompt longer than a window is cut like any long text
                sequences.append([cls_id, *head[:max_length - 2], *ids[s:e], sep_id])
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
    # see batching.plan_batches; class attributes so that a subclass or a benchmark can change them
    SPLIT_RATIO = batching.SPLIT_RATIO
    MIN_BATCH_TOKENS = batching.MIN_BATCH_TOKENS

    @classmethod
    def plan_batches(cls, lengths: Sequence[int], batch_size: int) -> list[list[int]]:
        """Indices grouped into batches, longest sequences first, each batch at most batch_size rows."""
        return batching.plan_batches(lengths, batch_size, split_ratio=cls.SPLIT_RATIO,
                                     min_batch_tokens=cls.MIN_BATCH_TOKENS)

    def _forward_sorted(self, sequences: list[list[int]], batch_size: int, fn, progress=None):
        """Run batches in order of length (longest first) and return fn's results in input order.

        fn(ids, mask) -> per-row results. Sorting means each batch pads only to lengths close to
        its own, which on real corpora of mixed lengths removes most of the padding work.
        progress(rows, tokens), when given, is called after each batch (tokens: real, not padding).
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
                    progress(len(rows), int(mask.sum()))
        return results

    @property
    def engine(self):
        """The fast.InferenceEngine that runs self.model for last-layer outputs (rebuilt if the
        model is replaced). Assign `InferenceEngine(embedder.model, int8=True)` to use int8.
        With backend="onnxruntime" the model is an ONNX Runtime session, which is its own engine."""
        if not isinstance(self.model, torch.nn.Module):  # onnx_backend.OnnxAlbert
            return self.model
        if self._engine is None or self._engine.model is not self.model:
            from .fast import InferenceEngine

            self._engine = InferenceEngine(self.model)
        return self._engine

    @engine.setter
    def engine(self, engine) -> None:
        if engine.model is not self.model:
            raise MinialbertError("the engine must wrap this Embedder's model (embedder.model)")
        self._engine = engine

    def _run_model(self, ids, mask, layer):
        if layer is None or layer == -1:
            out = self.engine(ids, attention_mask=mask)
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

    def _pooling_step(self, pooling: str, layer, skip: int = 0):
        """The per-batch work of embed/embed_chunks: run the model, pool, float32 on the CPU."""
        def step(ids, mask):
            hidden, pooled = self._run_model(ids, mask, layer)
            # clone: "cls" pooling is a view of the whole (batch, seq, H) output, and each kept row
            # would keep it alive (a 20,000-text window of albert-base: ~3 GB)
            return pool(hidden, mask, pooling, pooled, skip=skip).float().cpu().clone()

        return step

    # ---------------------------------------------------------------- prompts
    def resolve_prompt(self, prompt_name: str | None = None, prompt: str | None = None) -> str:
        """The text to prepend, as sentence-transformers' encode resolves it.

        An explicit `prompt` wins (prompt="" means none, even over a default); else the stored
        prompt called `prompt_name`; else the one called `default_prompt_name`; else none.
        """
        if prompt is not None:
            if prompt_name is not None:
                raise MinialbertError("give a prompt or a prompt_name, not both")
            if not isinstance(prompt, str):
                raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
            return prompt
        name = self.default_prompt_name if prompt_name is None else prompt_name
        if name is None:
            return ""
        if name not in self.prompts:
            have = ", ".join(map(repr, self.prompts))
            raise MinialbertError(f"no prompt named {name!r}: " + (f"this model's prompts are {have}" if have else
                                  "this model has no stored prompts; pass the text itself with prompt=... (--prompt)"))
        return self.prompts[name]

    def _prompt_skip(self, prompt: str, max_length: int) -> int:
        """Leading tokens left out of pooling: [CLS] + the prompt's tokens when include_prompt is False.

        sentence-transformers counts them by tokenizing the prompt alone (truncated to max_length)
        and dropping its final [SEP]; the count is the same for every text.
        """
        if not prompt or self.include_prompt:
            return 0
        return min(len(self._content_ids([prompt])[0]) + 1, max_length - 1)

    def embed(self, texts: str | Sequence[str], *, pooling: str | None = None, layer: int | Sequence[int] | None = None,
              normalize: bool | None = None, batch_size: int = 32, max_length: int | None = None,
              long_text: str = "truncate", stride: int = 128, device=None, dtype=None,
              convert_to: str = "numpy", show_progress: bool = False, prompt_name: str | None = None,
              prompt: str | None = None, progress=None):
        """One vector per text, in input order: (n_texts, H) float32 (numpy, or torch with convert_to="torch").

        pooling: cls | mean | max | mean_sqrt_len | weightedmean | lasttoken | pooler (default: the embedder's).
        layer: None/-1 = last layer; an int picks hidden state `layer` (0 = after the E->H
               projection); a list averages those layers.
        long_text: "truncate" (default; warns once), "chunk" (windows of max_length tokens
               overlapping by `stride`, pooled one by one and averaged with weights = tokens per
               window), or "error".
        prompt_name / prompt: prepend a stored prompt (self.prompts[prompt_name]) or this text, as
               SentenceTransformer.encode does; by default the model's default_prompt_name, if any.
               With include_prompt False the prompt's tokens are not pooled. Long texts keep the
               prompt at the start of every window.
        A single string gives a (H,) vector. show_progress draws a tqdm bar on stderr; progress, a
        callable(sequences, tokens), is called after each model batch (for callers that draw their
        own progress, such as the streaming writer in minialbert.stream).
        """
        texts, single = check_texts(texts)
        pooling = self._check_pooling(pooling or self.pooling)
        normalize = self.normalize if normalize is None else normalize
        if pooling == "pooler" and layer not in (None, -1):
            raise MinialbertError("pooling='pooler' always uses the last layer; drop --layer or pick another pooling")
        prompt = self.resolve_prompt(prompt_name, prompt)
        self.to(device, dtype)
        max_length = max_length or self.max_length
        sequences, owner, spans = self._plan(texts, max_length, long_text, stride, prompt)

        bar = None
        if show_progress:
            from tqdm import tqdm

            unit = "text" if len(sequences) == len(texts) else "window"
            bar = tqdm(total=len(sequences), unit=unit, desc="embedding", dynamic_ncols=True)

        def tick(n_sequences: int, n_tokens: int) -> None:
            if bar is not None:
                bar.update(n_sequences)
            if progress is not None:
                progress(n_sequences, n_tokens)

        try:
            step = self._pooling_step(pooling, layer, self._prompt_skip(prompt, max_length))
            pooled = self._forward_sorted(sequences, batch_size, step,
                                          tick if bar is not None or progress is not None else None)
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
            else:  # token-count-weighted mean of the windows (README: Embedder, long texts)
                vectors[i] = (chunk * weights[:, None]).sum(0) / weights.sum()
            k += len(text_spans)
        if normalize:
            vectors = torch.nn.functional.normalize(vectors, dim=-1)
        vectors = vectors[0] if single else vectors
        return vectors if convert_to == "torch" else vectors.numpy()

    def embed_chunks(self, texts: str | Sequence[str], *, pooling: str | None = None, layer=None,
                     batch_size: int = 32, max_length: int | None = None, stride: int = 128,
                     normalize: bool | None = None, convert_to: str = "numpy", prompt_name: str | None = None,
                     prompt: str | None = None) -> list[ChunkEmbeddings]:
        """The per-window vectors that long_text="chunk" averages, with their token spans.

        With a prompt, every window starts with it and the spans count the tokens after it.
        """
        texts, _ = check_texts(texts)
        pooling = self._check_pooling(pooling or self.pooling)
        normalize = self.normalize if normalize is None else normalize
        prompt = self.resolve_prompt(prompt_name, prompt)
        max_length = max_length or self.max_length
        sequences, owner, spans = self._plan(texts, max_length, "chunk", stride, prompt)

        step = self._pooling_step(pooling, layer, self._prompt_skip(prompt, max_length))
        pooled = self._forward_sorted(sequences, batch_size, step)
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
        texts, _ = check_texts(texts)
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

    def similarity(self, a, b):
        """(len(a), len(b)) scores by self.similarity_fn_name, as SentenceTransformer.similarity.

        cosine: cos(a_i, b_j); dot: a_i . b_j; euclidean / manhattan: minus the L2 / L1 distance
        (higher is more similar in all four). Takes vectors (1-d) or matrices, numpy or torch;
        returns numpy for numpy input, torch otherwise.
        """
        as_numpy = isinstance(a, np.ndarray)
        x = torch.atleast_2d(torch.as_tensor(a, dtype=torch.float32))
        y = torch.atleast_2d(torch.as_tensor(b, dtype=torch.float32)).to(x.device)
        fn = self.similarity_fn_name
        if fn == "cosine":
            scores = F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).T
        elif fn == "dot":
            scores = x @ y.T
        else:
            scores = -torch.cdist(x, y, p=2.0 if fn == "euclidean" else 1.0)
        return scores.cpu().numpy() if as_numpy else scores

    def rank(self, query: str, candidates: Sequence[str], *, top_k: int | None = None, prompt_name: str | None = None,
             prompt: str | None = None, document_prompt_name: str | None = None, document_prompt: str | None = None,
             **embed_kwargs):
        """Candidates sorted by similarity to the query, best first: [(score, index, text), ...].

        The score is self.similarity_fn_name's (cosine for plain checkpoints). Prompts follow
        sentence-transformers' encode_query / encode_document: the query gets prompt_name/prompt,
        by default the stored "query" prompt; the candidates get document_prompt_name/
        document_prompt, by default the first stored of "document", "passage", "corpus"; either
        falls back to default_prompt_name.
        """
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        candidates, _ = check_texts(candidates)
        if not candidates:
            return []
        if prompt_name is None and prompt is None and "query" in self.prompts:
            prompt_name = "query"
        if document_prompt_name is None and document_prompt is None:
            document_prompt_name = next((n for n in ("document", "passage", "corpus") if n in self.prompts), None)
        q = self.embed([query], convert_to="torch", prompt_name=prompt_name, prompt=prompt, **embed_kwargs)
        docs = self.embed(candidates, convert_to="torch", prompt_name=document_prompt_name, prompt=document_prompt,
                          **embed_kwargs)
        scores = self.similarity(q, docs)[0]
        order = torch.argsort(scores, descending=True, stable=True).tolist()
        if top_k is not None:
            order = order[:top_k]
        return [(float(scores[i]), i, candidates[i]) for i in order]


def _auto_dtype(int8: bool, backend: str, device) -> tuple[torch.dtype, str]:
    """dtype="auto": plan.auto_dtype() for the CPU engine; float32 where bfloat16 is not an option."""
    from .plan import auto_dtype

    if int8 or backend != "torch" or (device is not None and torch.device(device).type != "cpu"):
        return torch.float32, "dtype auto: float32 (auto picks bfloat16 only for the PyTorch CPU path without int8)"
    return auto_dtype()


def _dtype(dtype) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return _auto_dtype(False, "torch", None)[0]
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if dtype not in names:
        raise MinialbertError(f"unknown dtype {dtype!r}; use float32, bfloat16, float16 or auto")
    return names[dtype]
