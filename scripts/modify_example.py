#!/usr/bin/env python
"""Modifying ALBERT, end to end: a learned scalar gate on each attention residual.

    python scripts/modify_example.py [--steps 80]

Stock ALBERT's attention sub-layer computes   LayerNorm(x + MultiHead(x)).
The modification computes                     LayerNorm(x + g * MultiHead(x)),
with one learned scalar g per attention module, initialised to 1, so the gated model starts out
as the stock model. The edit is a subclass of model.py's SelfAttention; nothing in minialbert
changes. The script

  1. builds a stock AlbertForPreTraining and a gated copy with the same weights, and checks that
     their outputs agree (g = 1);
  2. pre-trains both for --steps steps on a tiny synthetic corpus (same data, same seed), with
     minialbert's own pre-training pieces, and prints their losses side by side and the learned g;
  3. embeds sentences with each model through minialbert.Embedder. The stock model takes the
     fused inference engine; the engine refuses the gated model (one warning naming
     GatedSelfAttention) and runs its own forward, so what you measure is your model: setting
     g = 0 (attention switched off) visibly changes the vectors.

The rule: calling the model runs model.py; the engine is an optimisation that refuses to run
anything it was not built for. Runs in well under a minute on a CPU.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402, N812
from torch import nn  # noqa: E402

from minialbert import AlbertConfig, AlbertForPreTraining, Embedder  # noqa: E402
from minialbert.fast import InferenceEngine  # noqa: E402
from minialbert.model import SelfAttention  # noqa: E402
from minialbert.pretrain.data import PretrainingData, Vocab, read_documents, train_sentencepiece  # noqa: E402
from minialbert.pretrain.objectives import PretrainingObjective  # noqa: E402
from minialbert.pretrain.optim import lr_at, make_optimizer  # noqa: E402
from minialbert.pretrain.toy import write_corpus  # noqa: E402
from minialbert.pretrain.train import init_albert_weights  # noqa: E402


# --------------------------------------------------------------------------- the modification
class GatedSelfAttention(SelfAttention):
    """SelfAttention with its residual branch scaled by a learned scalar: LN(x + g * MultiHead(x))."""

    def __init__(self, config):
        super().__init__(config)
        self.gate = nn.Parameter(torch.ones(()))  # g = 1: exactly the stock layer at the start

    def forward(self, x, additive_mask, need_probs=False):
        # model.py's SelfAttention.forward, with one change (marked).
        q = self.split_heads(self.query(x))
        k = self.split_heads(self.key(x))
        v = self.split_heads(self.value(x))
        if need_probs:
            scores = torch.matmul(q, k.transpose(-1, -2)) / self.head_dim ** 0.5
            if additive_mask is not None:
                scores = scores + additive_mask
            probs = torch.softmax(scores, dim=-1)
            context = torch.matmul(self.attention_dropout(probs), v)
        else:
            p = self.attention_dropout.p if self.training else 0.0
            context, probs = F.scaled_dot_product_attention(q, k, v, attn_mask=additive_mask, dropout_p=p), None
        batch, _, seq, _ = context.shape
        attended = self.output_dropout(self.output(context.transpose(1, 2).reshape(batch, seq, -1)))
        return self.norm(x + self.gate * attended), probs  # <- the change: g * MultiHead(x)


def add_gates(model: AlbertForPreTraining) -> AlbertForPreTraining:
    """Swap every attention module for a GatedSelfAttention holding the same weights."""
    for layer in set(model.albert.encoder.layer_calls()):  # each distinct layer (ALBERT: one, called L times)
        gated = GatedSelfAttention(model.config)
        gated.load_state_dict(layer.attention.state_dict(), strict=False)  # all but the new gate
        layer.attention = gated.to(layer.attention.query.weight.device)
    return model


def gates(model) -> list[float]:
    return [round(m.gate.item(), 4) for m in model.modules() if isinstance(m, GatedSelfAttention)]


# ------------------------------------------------------------------------------ pre-training
def pretrain(model: AlbertForPreTraining, data: PretrainingData, steps: int, seed: int,
             batch_size: int = 16, lr: float = 1e-2) -> list[tuple[float, float]]:
    """A plain loop over minialbert's pieces: the same batches for every model given the seed."""
    torch.manual_seed(seed)
    objective = PretrainingObjective(model).train()
    optimizer = make_optimizer(model, "lamb", lr, weight_decay=0.01)
    losses = []
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(lr, max(1, steps // 10), steps, step)
        epoch, (indices,) = data.rank_microbatches(step, 0, 1, batch_size, 1)
        batch = data.collate(indices, epoch)
        loss, mlm, sop, _ = objective(**{k: batch[k] for k in (
            "input_ids", "attention_mask", "token_type_ids", "labels", "sentence_order_label")})
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append((mlm.item(), sop.item()))
    return losses


def window_mean(values: list[float], end: int, width: int) -> float:
    part = values[max(0, end - width):end]
    return sum(part) / len(part)


# ---------------------------------------------------------------------------------------- run
SENTENCES = ["once upon a time the red fox saw the old king.", "then the big bear met the young queen.",
             "finally the lazy dog helped the quick cat."]


def run(steps: int = 80, seed: int = 0, log=print) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        corpus = write_corpus(Path(tmp) / "corpus.txt", documents=300, seed=seed)
        docs = read_documents([corpus])
        train_sentencepiece(docs, Path(tmp) / "spiece.model", 120, seed=seed)
        vocab = Vocab.load(Path(tmp) / "spiece.model")  # an AlbertTokenizer, as inference uses
    data = PretrainingData.from_corpus([corpus], vocab, docs=docs, max_seq_length=64, seed=seed)
    config = AlbertConfig(vocab_size=vocab.size, embedding_size=32, hidden_size=64, num_hidden_layers=4,
                          num_attention_heads=2, intermediate_size=128, max_position_embeddings=64)
    torch.manual_seed(seed)
    stock = AlbertForPreTraining(config)
    init_albert_weights(stock, config.initializer_range)
    gated = add_gates(copy.deepcopy(stock))

    # 1. g = 1: the gated model is the stock model.
    batch = data.collate(range(8), epoch=0)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        start_diff = (stock.eval()(**inputs).prediction_logits - gated.eval()(**inputs).prediction_logits).abs().max().item()
    log(f"1. before training, g = {gates(gated)}: max |stock - gated| MLM logits = {start_diff:.1e}")

    # 2. pre-train both on the same batches.
    log(f"2. pre-training both for {steps} steps (LAMB, batch 16, {len(data)} SOP examples)")
    stock_losses = pretrain(stock, data, steps, seed)
    gated_losses = pretrain(gated, data, steps, seed)
    width = max(1, steps // 8)
    log(f"   {'step':>5}  {'stock MLM':>9} {'gated MLM':>9}  {'stock SOP':>9} {'gated SOP':>9}   (means over {width} steps)")
    for end in sorted({width, *(round(steps * i / 4) for i in range(1, 5))} - {0}):
        log(f"   {end:>5}  {window_mean([l[0] for l in stock_losses], end, width):>9.3f} "
            f"{window_mean([l[0] for l in gated_losses], end, width):>9.3f}  "
            f"{window_mean([l[1] for l in stock_losses], end, width):>9.3f} "
            f"{window_mean([l[1] for l in gated_losses], end, width):>9.3f}")
    learned = gates(gated)
    log(f"   learned gates g = {learned}")

    # 3. inference: the Embedder runs what you trained.
    stock_emb = Embedder(stock.albert, vocab.tokenizer, pooling="mean")
    gated_emb = Embedder(gated.albert, vocab.tokenizer, pooling="mean")
    with torch.inference_mode():  # as the Embedder runs it
        log(f"3. engine, stock model: {InferenceEngine(stock.albert.eval()).why_not_fused() or 'fused path'}")
        reason = InferenceEngine(gated.albert.eval()).why_not_fused()
    log(f"   engine, gated model: refused: {reason}")
    stock_vectors = stock_emb.embed(SENTENCES, convert_to="torch")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gated_vectors = gated_emb.embed(SENTENCES, convert_to="torch")
        with torch.no_grad():
            for m in gated.modules():
                if isinstance(m, GatedSelfAttention):
                    m.gate.zero_()  # g = 0: the attention sub-layer contributes nothing
        no_attention = gated_emb.embed(SENTENCES, convert_to="torch")
    for w in caught:
        log(f"   warning: {w.message}")
    def change(a, b) -> str:
        cos = torch.nn.functional.cosine_similarity(a, b).min().item()
        return f"max |diff| {(a - b).abs().max().item():.4f}, min cosine {cos:.5f}"

    log(f"   mean-pooled vectors of {len(SENTENCES)} sentences, stock vs gated (both trained): "
        f"{change(stock_vectors, gated_vectors)}")
    log(f"   gated, learned g vs g = 0 (attention off):          {change(gated_vectors, no_attention)}")
    return {"start_diff": start_diff, "stock_losses": stock_losses, "gated_losses": gated_losses,
            "gates": learned, "engine_reason": reason,
            "warnings": [str(w.message) for w in caught], "gated_vectors": gated_vectors,
            "no_attention_vectors": no_attention, "gated_model": gated, "tokenizer": vocab.tokenizer}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--steps", type=int, default=80, help="pre-training steps per model (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default: %(default)s, the fastest for a model this small)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    run(args.steps, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
