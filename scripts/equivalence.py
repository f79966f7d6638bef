"""Print the equivalence table: max |minialbert - transformers| per config and output.

    python scripts/equivalence.py            # small configs + albert-base-sized at 128 and 512
    python scripts/equivalence.py --quick    # small configs only

The numbers come from the very code the tests assert with: the checkpoint builder and the
inputs of tests/conftest.py (a random-weight transformers AlbertForPreTraining written by
save_pretrained; padded batches with token types) and `compare_pretraining` of
tests/test_model.py (every output, both sides on the same weights and inputs). This script
only chooses the configs and prints the table. Needs transformers and pytest (the `test`
extra); minialbert itself never imports either.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # minialbert from this checkout, and the test helpers

from conftest import make_hf_checkpoint, random_inputs  # noqa: E402
from test_model import compare_pretraining  # noqa: E402

TINY_CASES = [(f"tiny G={g} inner={i} gelu_new", {"num_hidden_groups": g, "inner_group_num": i})
              for g in (1, 2, 3) for i in (1, 2)]
TINY_CASES += [(f"tiny {act}", {"hidden_act": act}) for act in ("gelu", "relu")]
BASE = dict(vocab_size=30000, embedding_size=128, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
            intermediate_size=3072, max_position_embeddings=512, hidden_act="gelu_new")


def measure(overrides: dict, batch: int, seq: int) -> dict[str, float]:
    import minialbert

    with tempfile.TemporaryDirectory() as tmp:
        ref = make_hf_checkpoint(Path(tmp), "AlbertForPreTraining", **overrides)
        ours = minialbert.AlbertForPreTraining.from_pretrained(tmp)
    ids, mask, types = random_inputs(batch=batch, seq=seq, vocab=ref.config.vocab_size)
    return compare_pretraining(ref, ours, ids, mask, types)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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


if __name__ == "__main__":
    main()
