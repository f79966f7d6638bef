"""Fine-tuned models, ready to use: classify texts, tag entities, answer questions.

    from minialbert.tasks import TextClassifier, TokenTagger, QuestionAnswerer
    clf = TextClassifier.from_pretrained("textattack/albert-base-v2-SST-2")
    clf(["a gripping film", "a dull film"])          # [ClassificationResult(label, score, scores), ...]
    qa = QuestionAnswerer.from_pretrained("twmkn9/albert-base-v2-squad2")
    qa("Who wrote it?", "It was written by Ada.")    # Answer(text='Ada', start=18, end=21, score=...)
    TokenTagger.from_pretrained(folder)(["John lives in Paris"])   # [[Entity('PER', 'John', 0, 4, ...), ...]]

Each loads the tokenizer and the matching head of model.py section 7 from a checkpoint directory
or Hub repo, batches its inputs by length, and runs the model under torch.inference_mode()
through the inference engine (minialbert/fast/; `pipeline.engine`), which computes model.py's equations
with fused kernels for a stock model and otherwise calls the model itself.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from .errors import MinialbertError
from .finetune.data import Feature, collate, first_subtokens, word_spans
from .finetune.metrics import entities as bio_entities
from .embed import window_spans
from .finetune.squad import Answer, QAExample, decode_answers, make_features
from .hub import ModelSource


# ------------------------------------------------------------------------------ batching
def forward_in_batches(model, features: Sequence, pad_id: int, *, batch_size: int = 32,
                       kind: str = "sequence", engine=None) -> list:
    """Run `model` on features (longest first, so batches pad little); outputs in input order.

    engine: a fast.InferenceEngine wrapping `model` to call instead of the model itself.

    kind "sequence": one logits row per feature; "token": (length, labels) per feature;
    "qa": (start_logits, end_logits) per feature, each of the feature's length.
    """
    if batch_size < 1:
        raise MinialbertError(f"batch_size must be at least 1, got {batch_size}")
    order = sorted(range(len(features)), key=lambda i: -len(features[i].input_ids))
    out: list = [None] * len(features)
    device = next(model.parameters()).device
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            batch = collate([features[i] for i in idx], pad_id, with_labels=False)
            result = (engine or model)(**{k: v.to(device) for k, v in batch.items()})
            if kind == "qa":
                starts, ends = result.start_logits.float().cpu().numpy(), result.end_logits.float().cpu().numpy()
                for row, i in enumerate(idx):
                    n = len(features[i].input_ids)
                    out[i] = (starts[row, :n], ends[row, :n])
            else:
                logits = result.logits.float().cpu().numpy()
                for row, i in enumerate(idx):
                    out[i] = logits[row, :len(features[i].input_ids)] if kind == "token" else logits[row]
    return out


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _texts(texts, what: str = "texts") -> tuple[list[str], bool]:
    if isinstance(texts, str):
        return [texts], True
    if not isinstance(texts, (list, tuple)):
        raise TypeError(f"{what} must be a str or a list of str, got {type(texts).__name__}")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{what} must be strings: item {i} is {type(t).__name__}")
    return list(texts), False


def _load(cls_model, name_or_path, revision, cache_dir, local_files_only, device, dtype, num_layer_calls=None):
    from .embed import _dtype
    from .tokenizer import AlbertTokenizer

    from .config import AlbertConfig

    source = ModelSource(name_or_path, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
    folder = source.checkpoint_folder()
    _check_architecture(cls_model.__name__, AlbertConfig.from_json(folder / "config.json"), name_or_path)
    model = cls_model.from_pretrained(folder, device=device, dtype=_dtype(dtype), num_layer_calls=num_layer_calls)
    return model, AlbertTokenizer.from_pretrained(folder)


# The task heads of model.py section 7 and the pipeline (and CLI command) that runs each.
TASK_HEADS = {"AlbertForSequenceClassification": "TextClassifier (minialbert classify)",
              "AlbertForTokenClassification": "TokenTagger (minialbert tag)",
              "AlbertForQuestionAnswering": "QuestionAnswerer (minialbert answer)",
              "AlbertForMultipleChoice": "AlbertForMultipleChoice"}


def _check_architecture(wanted: str, config, name_or_path) -> None:
    """Refuse a checkpoint fine-tuned for another task head (config.json's `architectures`): a
    sequence classifier's `classifier` has the shape a token tagger's would, so it would load
    silently and tag nonsense. Checkpoints without a task head (albert-base-v2) load with a new,
    random head and a NewHeadWarning."""
    archs = [a for a in (config.extra.get("architectures") or []) if a in TASK_HEADS]
    if archs and wanted not in archs:
        raise MinialbertError(f"{name_or_path} is an {archs[0]} checkpoint, not an {wanted}: "
                              f"use {TASK_HEADS[archs[0]]} for it")


class _Pipeline:
    model_class: type  # set by each subclass

    def __init__(self, model, tokenizer, max_length: int | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        limit = model.config.max_position_embeddings
        self.max_length = min(max_length or getattr(tokenizer, "model_max_length", limit) or limit, limit)
        self._warned_long = False
        self._engine = None

    @property
    def engine(self):
        """The fast.InferenceEngine that runs this pipeline's model (made on first use). It takes
        its fused path for a stock model and otherwise runs the model's own forward, with a warning
        naming what is not stock. Set it to another engine of the same model, for example
        InferenceEngine(pipeline.model, int8=True)."""
        from .fast import InferenceEngine

        if self._engine is None or self._engine.model is not self.model:
            self._engine = InferenceEngine(self.model)
        return self._engine

    @engine.setter
    def engine(self, engine) -> None:
        if getattr(engine, "model", None) is not self.model:
            raise MinialbertError("the engine must wrap this pipeline's model (pipeline.model)")
        self._engine = engine

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *, revision: str | None = None,
                        cache_dir: str | os.PathLike | None = None, local_files_only: bool = False,
                        device: str | torch.device | None = None, dtype=None, max_length: int | None = None,
                        num_layer_calls: int | None = None):
        from . import model as M

        model, tokenizer = _load(getattr(M, cls.model_class), name_or_path, revision, cache_dir, local_files_only,
                                 device, dtype, num_layer_calls)
        return cls(model, tokenizer, max_length=max_length)

    @property
    def config(self):
        return self.model.config

    def _length(self, max_length: int | None) -> int:
        n = max_length or self.max_length
        if not 3 <= n <= self.config.max_position_embeddings:
            raise MinialbertError(f"max_length must be between 3 and {self.config.max_position_embeddings}, got {n}")
        return n

    def _warn_truncated(self, count: int, max_length: int) -> None:
        from .embed import LongTextWarning

        if count and not self._warned_long:
            self._warned_long = True
            warnings.warn(f"{count} input(s) longer than max_length={max_length} tokens were truncated "
                          "(--max-length on the command line)", LongTextWarning, stacklevel=3)


# -------------------------------------------------------------------- classification
@dataclass
class ClassificationResult:
    label: str | list[str] | None  # the predicted class; a list for multi-label; None for regression
    score: float  # its probability (multi-label: the highest one); the predicted value for regression
    scores: dict[str, float] = field(default_factory=dict)  # every label's probability


class TextClassifier(_Pipeline):
    """An AlbertForSequenceClassification checkpoint: label and score per text (or text pair).

    Single-label heads give softmax probabilities, multi-label heads (problem_type
    multi_label_classification) one sigmoid per label and every label over `threshold`,
    regression heads (num_labels 1) the predicted value.
    """

    model_class = "AlbertForSequenceClassification"

    @property
    def problem_type(self) -> str:
        if self.config.problem_type:
            return self.config.problem_type
        return "regression" if self.config.num_labels == 1 else "single_label_classification"

    def __call__(self, texts: str | Sequence[str], text_pairs: str | Sequence[str] | None = None, *,
                 batch_size: int = 32, max_length: int | None = None,
                 threshold: float = 0.5) -> ClassificationResult | list[ClassificationResult]:
        texts, single = _texts(texts)
        if text_pairs is not None:
            text_pairs, _ = _texts(text_pairs, "text_pairs")
            if len(text_pairs) != len(texts):
                raise MinialbertError(f"{len(texts)} texts but {len(text_pairs)} text pairs")
        n = self._length(max_length)
        enc = self.tokenizer(texts, text_pairs, truncation=True, max_length=n)
        if any(len(ids) == n for ids in enc["input_ids"]):  # some may have been cut: count them
            lengths = [len(ids) for ids in self.tokenizer.encode_batch_ids(texts + (text_pairs or []))]
            special = 3 if text_pairs is not None else 2
            full = [lengths[i] + (lengths[len(texts) + i] if text_pairs is not None else 0) + special
                    for i in range(len(texts))]
            self._warn_truncated(sum(f > n for f in full), n)
        features = [Feature(ids, types) for ids, types in zip(enc["input_ids"], enc["token_type_ids"])]
        logits = forward_in_batches(self.model, features, self.tokenizer.pad_token_id, engine=self.engine,
                                    batch_size=batch_size)
        names = [self.config.id2label[i] for i in range(self.config.num_labels)]
        results = []
        for row in logits:
            if self.problem_type == "regression":
                results.append(ClassificationResult(None, float(row[0]) if len(row) == 1 else row.tolist()))
            elif self.problem_type == "multi_label_classification":
                probs = 1.0 / (1.0 + np.exp(-row))
                chosen = [names[i] for i in np.argsort(-probs, kind="stable") if probs[i] >= threshold]
                results.append(ClassificationResult(chosen, float(probs.max()), dict(zip(names, probs.tolist()))))
            else:
                probs = _softmax(row)
                best = int(np.argmax(probs))
                results.append(ClassificationResult(names[best], float(probs[best]), dict(zip(names, probs.tolist()))))
        return results[0] if single else results


# ----------------------------------------------------------------------------- tagging
@dataclass
class Entity:
    label: str  # the entity type: "PER" for B-PER/I-PER tags
    text: str
    start: int  # character span [start, end) in the input text
    end: int
    score: float  # mean probability of the tags of its words


class TokenTagger(_Pipeline):
    """An AlbertForTokenClassification checkpoint: entities with character spans.

    A word (a whitespace-separated stretch of the text) takes the tag predicted on its first
    sub-token, as in training; consecutive words form entities by the BIO rules of
    finetune/metrics.entities. Texts longer than max_length are cut into windows sharing `stride`
    tokens, and each token takes its scores from the window where it has the most context.
    """

    model_class = "AlbertForTokenClassification"

    def tag_words(self, texts: Sequence[str], *, batch_size: int = 32, max_length: int | None = None,
                  stride: int = 64) -> list[tuple[list[tuple[int, int]], list[str], list[float]]]:
        """Per text: (word spans, tag per word, probability of that tag)."""
        texts, _ = _texts(texts)
        n = self._length(max_length)
        width = n - 2
        if not 0 <= stride < width:
            raise MinialbertError(f"stride must be in [0, {width}) for max_length {n}, got {stride}")
        enc = self.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
        cls_id, sep_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        features, owners = [], []
        for t, ids in enumerate(enc["input_ids"]):
            for ws, we in window_spans(len(ids), width, stride):
                features.append(Feature([cls_id, *ids[ws:we], sep_id], [0] * (we - ws + 2)))
                owners.append((t, ws, we))
        logits = forward_in_batches(self.model, features, self.tokenizer.pad_token_id, engine=self.engine,
                                    batch_size=batch_size, kind="token")
        per_text: list[np.ndarray] = [np.zeros((len(ids), self.config.num_labels)) for ids in enc["input_ids"]]
        context = [np.full(len(ids), -1) for ids in enc["input_ids"]]
        for (t, ws, we), rows in zip(owners, logits):
            for k in range(ws, we):
                room = min(k - ws, we - 1 - k)  # tokens of context on the shorter side
                if room > context[t][k]:
                    context[t][k] = room
                    per_text[t][k] = rows[1 + k - ws]
        results = []
        for t, text in enumerate(texts):
            spans = word_spans(text)
            first = first_subtokens(enc["offset_mapping"][t], spans)
            probs = _softmax(per_text[t]) if len(per_text[t]) else per_text[t]
            tags, scores = [], []
            for tok in first:
                if tok is None:
                    tags.append("O")
                    scores.append(1.0)
                else:
                    best = int(np.argmax(probs[tok]))
                    tags.append(self.config.id2label[best])
                    scores.append(float(probs[tok][best]))
            results.append((spans, tags, scores))
        return results

    def __call__(self, texts: str | Sequence[str], *, batch_size: int = 32, max_length: int | None = None,
                 stride: int = 64) -> list[Entity] | list[list[Entity]]:
        texts, single = _texts(texts)
        out = []
        for text, (spans, tags, scores) in zip(texts, self.tag_words(texts, batch_size=batch_size,
                                                                      max_length=max_length, stride=stride)):
            found = []
            for kind, a, b in bio_entities(tags):
                start, end = spans[a][0], spans[b - 1][1]
                found.append(Entity(kind, text[start:end], start, end, float(np.mean(scores[a:b]))))
            out.append(found)
        return out[0] if single else out


# -------------------------------------------------------------------- question answering
class QuestionAnswerer(_Pipeline):
    """An AlbertForQuestionAnswering checkpoint: the answer span in a context, or no answer.

    Long contexts are cut into windows (doc_stride tokens shared between neighbours) and the best
    span over all windows wins; see finetune/squad.py. `allow_no_answer` (SQuAD 2.0 models)
    defaults to what the checkpoint was trained for (config "version_2_with_negative", written by
    minialbert finetune); Hub checkpoints without that key need it set explicitly.
    """

    model_class = "AlbertForQuestionAnswering"

    def __init__(self, model, tokenizer, max_length: int | None = None):
        super().__init__(model, tokenizer, max_length=min(max_length or 384, model.config.max_position_embeddings))

    @property
    def version_2(self) -> bool:
        return bool(self.config.extra.get("version_2_with_negative", False))

    def answer_batch(self, questions: Sequence[str], contexts: Sequence[str], *, top_k: int = 1,
                     max_length: int | None = None, doc_stride: int = 128, max_query_length: int = 64,
                     max_answer_length: int = 30, allow_no_answer: bool | None = None,
                     null_threshold: float = 0.0, batch_size: int = 32) -> list[list[Answer]]:
        questions, _ = _texts(questions, "questions")
        contexts, _ = _texts(contexts, "contexts")
        if len(questions) != len(contexts):
            raise MinialbertError(f"{len(questions)} questions but {len(contexts)} contexts")
        for i, (q, c) in enumerate(zip(questions, contexts)):
            if not q.strip():
                raise MinialbertError(f"question {i} is empty")
            if not c.strip():
                raise MinialbertError(f"the context of question {i} is empty: there is no span to answer from")
        if top_k < 1:
            raise MinialbertError(f"top_k must be at least 1, got {top_k}")
        n = self._length(max_length)
        examples = [QAExample(str(i), q, c) for i, (q, c) in enumerate(zip(questions, contexts))]
        features = make_features(examples, self.tokenizer, max_length=n, doc_stride=doc_stride,
                                 max_query_length=max_query_length)
        logits = forward_in_batches(self.model, features, self.tokenizer.pad_token_id, engine=self.engine,
                                    batch_size=batch_size, kind="qa")
        version_2 = self.version_2 if allow_no_answer is None else allow_no_answer
        answers = decode_answers(examples, features, [s for s, _ in logits], [e for _, e in logits],
                                 n_best=max(20, top_k), max_answer_length=max_answer_length, version_2=version_2,
                                 null_threshold=null_threshold)
        return [a[:top_k] for a in answers]

    def __call__(self, question: str, context: str, **options) -> Answer:
        return self.answer_batch([question], [context], **options)[0][0]
