"""The two pre-training losses, written from their equations.

Masked LM (BERT's equation, over the masked positions M only):

    L_MLM = -(1/|M|) sum_{i in M} log softmax(z_i)[x_i]

where z_i = MLMHead(h_i) are the vocabulary scores at position i and x_i the original token.

Sentence-order prediction (ALBERT's replacement of BERT's next-sentence prediction; same
binary cross-entropy form, different positives/negatives): with s_j = SOPHead(pooler_j),

    L_SOP = -(1/B) sum_j log softmax(s_j)[y_j]         y_j = 0 in order, 1 swapped

The pre-training loss is L = L_MLM + L_SOP. The MLM head is applied only to the masked
positions (as the original code does with gather_indexes); this is the same sum as scoring all
positions and ignoring the unmasked ones, at a fraction of the cost.
"""

from __future__ import annotations

import torch
from torch import nn

from .masking import IGNORE_INDEX


def cross_entropy_from_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """-(1/N) sum_n log softmax(logits_n)[target_n], in float32."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    return -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).mean()


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L_MLM for full (batch, seq, V) logits and (batch, seq) labels with -100 = not masked."""
    keep = labels != IGNORE_INDEX
    return cross_entropy_from_logits(logits[keep], labels[keep])


def sop_loss(sop_logits: torch.Tensor, sentence_order_label: torch.Tensor) -> torch.Tensor:
    return cross_entropy_from_logits(sop_logits.reshape(-1, 2), sentence_order_label.reshape(-1))


class PretrainingObjective(nn.Module):
    """Wraps an AlbertForPreTraining so that forward() returns the losses and the counts the
    trainer logs. DistributedDataParallel wraps this module (its forward must run the model)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids, labels, sentence_order_label):
        m = self.model
        out = m.albert(input_ids, attention_mask, token_type_ids)
        keep = labels != IGNORE_INDEX
        targets = labels[keep]
        mlm_logits = m.mlm_head(out.last_hidden_state[keep], m.albert.embeddings.word.weight)
        sop_logits = m.sop_head(out.pooler_output)
        l_mlm = cross_entropy_from_logits(mlm_logits, targets)
        l_sop = cross_entropy_from_logits(sop_logits, sentence_order_label)
        with torch.no_grad():
            stats = torch.stack([
                (mlm_logits.argmax(-1) == targets).sum().float(), torch.tensor(float(targets.numel())),
                (sop_logits.argmax(-1) == sentence_order_label).sum().float(),
                torch.tensor(float(sentence_order_label.numel())),
            ])
        return l_mlm + l_sop, l_mlm.detach(), l_sop.detach(), stats
