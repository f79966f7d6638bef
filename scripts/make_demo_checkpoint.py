"""Write a small random-weight ALBERT checkpoint with a real tokenizer, for trying minialbert offline.

    python scripts/make_demo_checkpoint.py demo-albert
    minialbert embed --model demo-albert "Hello world"

The vectors mean nothing (the weights are random); the files have exactly the layout of a
Hugging Face ALBERT repo (config.json, model.safetensors, spiece.model), so every command and
API call works on it as on albert-base-v2. Needs no network and no transformers.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch

import minialbert

SPM = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "tokenizer" / "spm" / "spiece.model"


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "demo-albert")
    import sentencepiece

    vocab = sentencepiece.SentencePieceProcessor(model_file=str(SPM)).get_piece_size()
    # albert-base-v2's shape, with the demo tokenizer's vocabulary
    config = minialbert.AlbertConfig.from_preset("albert-base-v2").replace(vocab_size=vocab)
    torch.manual_seed(0)
    model = minialbert.AlbertForPreTraining(config)
    with torch.no_grad():  # the usual BERT-style init: N(0, 0.02) weights
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, config.initializer_range)
    model.save_pretrained(out)
    shutil.copy(SPM, out / "spiece.model")
    print(f"wrote a random-weight ALBERT ({sum(p.numel() for p in model.parameters()):,} parameters) to {out}/")


if __name__ == "__main__":
    main()
