"""Print the equivalence table: max |minialbert - transformers| per config and output.

    python scripts/equivalence.py            # small configs + albert-base-sized at 128 and 512
    python scripts/equivalence.py --quick    # small configs only

The numbers come from the very code the tests assert with: the checkpoint builder and the
inputs of tests/conftest.py (a random-weight transformers AlbertForPreTraining written by
save_pretrained; padded batches with token types) and `compare_pretraining` of
tests/test_model.py (every output, both sides on the same weights and inputs). Calling a
minialbert model runs model.py (every column but "engine ..."); the "engine ..." columns are
minialbert.InferenceEngine's fused path on the same weights. A second table compares the engine
with model.py on the ablation layouts (sharing = attention / ffn / none), which transformers
cannot build. Needs transformers and pytest (the `test` extra); minialbert itself never imports
either.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # minialbert from this checkout, and the test helpers
# The test helpers (conftest, test_model) import torch and transformers: imported where used, so
# that --help is instant.

TINY_CASES = [(f"tiny G={g} inner={i} gelu_new", {"num_hidden_groups": g, "inner_group_num": i})
              for g in (1, 2, 3) for i in (1, 2)]
TINY_CASES += [(f"tiny {act}", {"hidden_act": act}) for act in ("gelu", "relu")]
BASE = dict(vocab_size=30000, embedding_size=128, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
            intermediate_size=3072, max_position_embeddings=512, hidden_act="gelu_new")


def measure(overrides: dict, batch: int, seq: int) -> dict[str, float]:
    """Every output of model.py against transformers, plus the engine's fused path."""
    import torch
    from conftest import make_hf_checkpoint, random_inputs
    from test_model import compare_pretraining

    import minialbert

    with tempfile.TemporaryDirectory() as tmp:
        ref = make_hf_checkpoint(Path(tmp), "AlbertForPreTraining", **overrides)
        ours = minialbert.AlbertForPreTraining.from_pretrained(tmp)
        base = minialbert.AlbertModel.from_pretrained(tmp)
    ids, mask, types = random_inputs(batch=batch, seq=seq, vocab=ref.config.vocab_size)
    result = compare_pretraining(ref, ours, ids, mask, types)
    engine = minialbert.InferenceEngine(base)
    with torch.inference_mode():
        assert engine.why_not_fused() is None
        fused = engine(ids, attention_mask=mask, token_type_ids=types)
        want = ref.albert(ids, attention_mask=mask, token_type_ids=types)
    result["engine last_hidden_state"] = (fused.last_hidden_state - want.last_hidden_state).abs().max().item()
    result["engine pooler_output"] = (fused.pooler_output - want.pooler_output).abs().max().item()
    return result


def measure_ablation(overrides: dict, sharing: str, batch: int, seq: int) -> tuple[float, float]:
    """Random weights (every parameter) for an ablation layout; engine vs model.py."""
    import torch

    import minialbert
    from conftest import TINY, random_inputs

    config = minialbert.AlbertConfig(**{**TINY, **overrides}, sharing=sharing)
    torch.manual_seed(0)
    model = minialbert.AlbertModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * 0.02 + (1.0 if name.endswith("norm.weight") else 0.0))
            if name.endswith(".bias") or "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    ids, mask, types = random_inputs(batch=batch, seq=seq, vocab=config.vocab_size)
    kw = dict(attention_mask=mask, token_type_ids=types)
    with torch.no_grad():
        ref = model(ids, **kw)
    engine = minialbert.InferenceEngine(model)
    with torch.inference_mode():
        assert engine.why_not_fused() is None
        out = engine(ids, **kw)
    return ((ref.last_hidden_state - out.last_hidden_state).abs().max().item(),
            (ref.pooler_output - out.pooler_output).abs().max().item())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--quick", action="store_true", help="small configs only")
    args = parser.parse_args()
    cases = [(name, cfg, 3, 11) for name, cfg in TINY_CASES]
    if not args.quick:
        cases += [("albert-base-v2 size, 2x128", BASE, 2, 128), ("albert-base-v2 size, 2x512", BASE, 2, 512)]
    columns = None
    for name, cfg, batch, seq in cases:
        result = measure(cfg, batch, seq)
        if columns is None:
            columns = list(result)
            print("| config | " + " | ".join(columns) + " |")
            print("|---|" + "---|" * len(columns))
        print(f"| {name} | " + " | ".join(f"{result[c]:.1e}" for c in columns) + " |", flush=True)

    print("\nInference engine vs model.py (no transformers equivalent), max |diff|:\n")
    print("| config | sharing | last_hidden_state | pooler_output |")
    print("|---|---|---|---|")
    sizes = [("tiny", {}, 3, 11)]
    if not args.quick:
        sizes.append(("albert-base-v2 size, 2x128", BASE, 2, 128))
    for name, cfg, batch, seq in sizes:
        for sharing in ("all", "attention", "ffn", "none"):
            last, pooled = measure_ablation(cfg, sharing, batch, seq)
            print(f"| {name} | {sharing} | {last:.1e} | {pooled:.1e} |", flush=True)


if __name__ == "__main__":
    main()
