#!/usr/bin/env python
"""Task heads vs transformers: max |Δ| of logits and losses, both directions, as a markdown table.

    python scripts/equivalence_heads.py

For each head, transformers builds a random-weight AlbertFor* model (random biases and LayerNorm
too) and saves it; minialbert loads it and both run a padded batch of text pairs (token types 0
and 1) with labels. Then minialbert saves the model and transformers loads that folder: the
last column compares its logits with minialbert's. Tiny configs and albert-base-v2's shape.
Needs transformers (a test-only dependency).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
# torch, transformers and the test helpers are imported where used, so that --help is instant.


def inputs(case: str, batch: int, seq: int, vocab: int):
    import torch
    from conftest import random_inputs

    def one(seed):
        return random_inputs(batch=batch, seq=seq, vocab=vocab, seed=seed)

    if case == "choice":
        parts = [one(s) for s in (1, 2, 3)]
        return {k: torch.stack([p[i] for p in parts], 1) for i, k in enumerate(("input_ids", "attention_mask",
                                                                               "token_type_ids"))}
    ids, mask, tt = one(1)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt}


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False).parse_args(argv)
    import torch
    import transformers
    from conftest import make_hf_checkpoint
    from test_heads import CASES, _labels, _outputs

    sizes = {
        "tiny (H=32, 3 layers)": ({}, 3, 11),
        "albert-base-v2 shape, 2x128": (dict(vocab_size=30000, embedding_size=128, hidden_size=768, num_hidden_layers=12,
                                             num_attention_heads=12, intermediate_size=3072,
                                             max_position_embeddings=512), 2, 128),
    }
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, float32, CPU\n")
    print("| head | config | logits | loss | saved by minialbert, read by transformers: logits |")
    print("|---|---|---|---|---|")
    for name, (arch, ours_cls, case, overrides) in CASES.items():
        for size, (dims, batch, seq) in sizes.items():
            with tempfile.TemporaryDirectory() as d:
                ref = make_hf_checkpoint(Path(d) / "hf", arch, **overrides, **dims)
                ours = ours_cls.from_pretrained(Path(d) / "hf")
                x = inputs(case, batch, seq, ref.config.vocab_size)
                y = _labels(case, batch, seq, ref.config.num_labels)
                if case == "qa":
                    y = {k: v[:batch] for k, v in y.items()}
                with torch.no_grad():
                    rl, rloss = _outputs(ref(**x, **y))
                    ol, oloss = _outputs(ours(**x, **y))
                ours.save_pretrained(Path(d) / "ours")
                back = getattr(transformers, arch).from_pretrained(Path(d) / "ours", attn_implementation="eager").eval()
                with torch.no_grad():
                    bl, _ = _outputs(back(**x, **y))
            print(f"| {name} | {size} | {(rl - ol).abs().max().item():.1e} | {(rloss - oloss).abs().item():.1e} "
                  f"| {(bl - ol).abs().max().item():.1e} |", flush=True)


if __name__ == "__main__":
    main()
