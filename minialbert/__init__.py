"""minialbert: a readable PyTorch ALBERT that loads the official checkpoints and matches transformers.

    import minialbert
    model = minialbert.AlbertModel.from_pretrained("albert-base-v2")
    emb = minialbert.Embedder.from_pretrained("albert-base-v2").embed(["Hello world"])

Names are imported lazily so that `import minialbert` stays cheap: torch, sentencepiece and
huggingface_hub load only when the first class that needs them is touched.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "AlbertConfig": "config",
    "AlbertModel": "model",
    "AlbertForPreTraining": "model",
    "AlbertForMaskedLM": "model",
    "AlbertOutput": "model",
    "AlbertForSequenceClassification": "model",
    "AlbertForTokenClassification": "model",
    "AlbertForQuestionAnswering": "model",
    "AlbertForMultipleChoice": "model",
    "TextClassifier": "tasks",
    "TokenTagger": "tasks",
    "QuestionAnswerer": "tasks",
    "InferenceEngine": "fast",
    "AlbertTokenizer": "tokenizer",
    "BatchEncoding": "tokenizer",
    "FillMask": "fill_mask",
    "Embedder": "embed",
    "embed_file": "stream",
    "load_vectors": "shards",
    "iter_vectors": "shards",
    "Searcher": "search",
    "build_index": "search",
    "MinialbertError": "errors",
    "CheckpointError": "errors",
    "ConfigError": "errors",
    "ModelInputError": "errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'minialbert' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
