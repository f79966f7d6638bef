"""Fill-mask: top-k predictions of the MLM head for each [MASK] in a text.

The model runs through fast.InferenceEngine: the fused path for a stock model, the model's
own forward (model.py with your changes) otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from .errors import MinialbertError
from .hub import ModelSource
from .model import AlbertForMaskedLM


@dataclass
class MaskPrediction:
    token: str  # the sentencepiece piece, e.g. "▁capital"
    token_id: int
    score: float  # softmax probability at the masked position
    sequence: str  # the text with this mask filled (other masks left as they are)


class FillMask:
    def __init__(self, model: AlbertForMaskedLM, tokenizer):
        from .fast import InferenceEngine

        self.model = model.eval()
        self.tokenizer = tokenizer
        self.engine = InferenceEngine(self.model)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *, revision=None, cache_dir=None,
                        local_files_only=False, device=None, num_layer_calls=None) -> "FillMask":
        from .tokenizer import AlbertTokenizer

        source = ModelSource(name_or_path, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
        folder = source.checkpoint_folder()
        # AlbertForMaskedLM reads the MLM head from AlbertForMaskedLM and AlbertForPreTraining
        # checkpoints; a bare AlbertModel checkpoint has no head and is refused with the key list.
        model = AlbertForMaskedLM.from_pretrained(folder, device=device, num_layer_calls=num_layer_calls)
        return cls(model, AlbertTokenizer.from_pretrained(folder))

    def __call__(self, text: str, top_k: int = 5) -> list[list[MaskPrediction]]:
        """One list of top_k predictions per [MASK] in `text`, masks in reading order."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if top_k < 1:
            raise MinialbertError(f"top_k must be at least 1, got {top_k}")
        tok = self.tokenizer
        ids = tok(text, truncation=True, max_length=self.model.config.max_position_embeddings)["input_ids"]
        positions = [i for i, t in enumerate(ids) if t == tok.mask_token_id]
        if not positions:
            raise MinialbertError(f"no {tok.convert_ids_to_tokens(tok.mask_token_id)} token in the text; "
                                  "write [MASK] where a word should be predicted")
        with torch.inference_mode():
            logits = self.engine(torch.tensor([ids], device=self.model.albert.device)).prediction_logits[0]
        results = []
        for pos in positions:
            probs = torch.softmax(logits[pos].float(), dim=-1)
            top = torch.topk(probs, k=min(top_k, probs.numel()))
            preds = []
            for score, token_id in zip(top.values.tolist(), top.indices.tolist()):
                filled = list(ids)
                filled[pos] = token_id
                preds.append(MaskPrediction(tok.convert_ids_to_tokens(token_id), token_id, score,
                                            tok.decode(filled, skip_special_tokens=True)))
            results.append(preds)
        return results
