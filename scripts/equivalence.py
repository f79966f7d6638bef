"""Print the equivalence table: max |minialbert - transformers| per config and output.

    python scripts/equivalence.py            # small configs + albert-base-sized at 128 and 512
    python scripts/equivalence.py --quick    # small configs only

Both sides load the same random-weight checkpoint written by transformers' save_pretrained;
inputs are padded batches with token types. Calling a minialbert model runs model.py (every
column but "engine ..."); the "engine ..." columns are minialbert.InferenceEngine's fused path
on the same model. A second table compares the engine with model.py on the ablation layouts
(sharing = attention / ffn / none), which transformers cannot build.
Needs transformers (a test dependency); minialbert itself never imports it.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import torch


os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # keep the table readable


def build(tmp: str, **cfg):
    import transformers

    config = transformers.AlbertConfig(**cfg)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    ref = transformers.AlbertForPreTraining(config).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
    ref.save_pretrained(tmp)
    return ref


def inputs(batch: int, seq: int, vocab: int):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, vocab, (batch, seq), generator=g)
    mask = torch.ones_like(ids)
    for b in range(1, batch):
        mask[b, max(2, seq - seq // 4 * b):] = 0
    types = torch.zeros_like(ids)
    types[:, seq // 2:] = 1
    return ids, mask, types * mask


def measure(cfg: dict, batch: int, seq: int) -> dict[str, float]:
    import minialbert

    with tempfile.TemporaryDirectory() as tmp:
        ref = build(tmp, **cfg)
        ours = minialbert.AlbertForPreTraining.from_pretrained(tmp)
        base = minialbert.AlbertModel.from_pretrained(tmp)
    ids, mask, types = inputs(batch, seq, cfg["vocab_size"])
    kw = dict(attention_mask=mask, token_type_ids=types)
    engine = minialbert.InferenceEngine(base)
    with torch.no_grad():
        r = ref(ids, output_hidden_states=True, output_attentions=True, **kw)
        o = ours(ids, output_hidden_states=True, output_attentions=True, **kw)
        rb = ref.albert(ids, **kw)
        ob = base(ids, **kw)  # model.py
    with torch.inference_mode():
        assert engine.why_not_fused() is None
        ef = engine(ids, **kw)  # the fused path

    def d(a, b):
        return (a - b).abs().max().item()

    return {
        "last_hidden_state": d(rb.last_hidden_state, ob.last_hidden_state),
        "pooler_output": d(rb.pooler_output, ob.pooler_output),
        "engine last_hidden_state": d(rb.last_hidden_state, ef.last_hidden_state),
        "engine pooler_output": d(rb.pooler_output, ef.pooler_output),
        "hidden_states (all)": max(d(a, b) for a, b in zip(r.hidden_states, o.hidden_states)),
        "attentions (all)": max(d(a, b) for a, b in zip(r.attentions, o.attentions)),
        "mlm_logits": d(r.prediction_logits, o.prediction_logits),
        "sop_logits": d(r.sop_logits, o.sop_logits),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small configs only")
    args = parser.parse_args()
    tiny = dict(vocab_size=99, embedding_size=16, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                intermediate_size=37, max_position_embeddings=64)
    cases = [(f"tiny G={g} inner={i} gelu_new", {**tiny, "num_hidden_groups": g, "inner_group_num": i}, 3, 11)
             for g in (1, 2, 3) for i in (1, 2)]
    cases += [(f"tiny {act}", {**tiny, "hidden_act": act}, 3, 11) for act in ("gelu", "relu")]
    if not args.quick:
        base = dict(vocab_size=30000, embedding_size=128, hidden_size=768, num_hidden_layers=12,
                    num_attention_heads=12, intermediate_size=3072, hidden_act="gelu_new",
                    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        cases += [("albert-base-v2 size, 2x128", base, 2, 128), ("albert-base-v2 size, 2x512", base, 2, 512)]
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
    sizes = [("tiny", tiny, 3, 11)]
    if not args.quick:
        sizes.append(("albert-base-v2 size, 2x128", base, 2, 128))
    for name, cfg, batch, seq in sizes:
        for sharing in ("all", "attention", "ffn", "none"):
            result = measure_ablation(cfg, sharing, batch, seq)
            print(f"| {name} | {sharing} | {result[0]:.1e} | {result[1]:.1e} |", flush=True)


def measure_ablation(cfg: dict, sharing: str, batch: int, seq: int) -> tuple[float, float]:
    """Random weights (every parameter) for an ablation layout; engine vs model.py."""
    import minialbert

    config = minialbert.AlbertConfig(**{k: v for k, v in cfg.items()}, sharing=sharing)
    torch.manual_seed(0)
    model = minialbert.AlbertModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * 0.02 + (1.0 if name.endswith("norm.weight") else 0.0))
            if name.endswith(".bias") or "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    ids, mask, types = inputs(batch, seq, cfg["vocab_size"])
    kw = dict(attention_mask=mask, token_type_ids=types)
    with torch.no_grad():
        ref = model(ids, **kw)
    engine = minialbert.InferenceEngine(model)
    with torch.inference_mode():
        assert engine.why_not_fused() is None
        out = engine(ids, **kw)
    return ((ref.last_hidden_state - out.last_hidden_state).abs().max().item(),
            (ref.pooler_output - out.pooler_output).abs().max().item())


if __name__ == "__main__":
    main()
