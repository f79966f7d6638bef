"""Optimizers and the learning-rate schedule used for pre-training.

LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning"), the optimizer ALBERT was
trained with, as google-research/albert's lamb_optimizer.py computes it. For each parameter
tensor w with gradient g:

    m = b1 m + (1 - b1) g                         v = b2 v + (1 - b2) g^2
    u = m / (sqrt(v) + eps) + lambda w            (lambda = weight decay; 0 for biases/LayerNorm)
    r = ||w|| / ||u||   (1 when either norm is 0; 1 for biases/LayerNorm, which skip adaptation)
    w <- w - lr * r * u

ALBERT's code has no bias correction (the LAMB paper's algorithm divides m by 1 - b1^t and v
by 1 - b2^t); `Lamb(bias_correction=True)` adds it. The correction is one scalar per step, the
same for every element: at step t it multiplies m / sqrt(v) by sqrt(1 - b2^t) / (1 - b1^t)
(0.32 at t = 1, 0.15 at t = 12, 0.8 at t = 1000, 0.97 at t = 3000). For the tensors with a
trust ratio the step is rescaled to ||w|| anyway, so only the weight decay's share of the step
differs; biases and LayerNorm take early steps up to 6.6 times larger than with the
correction, which is harmless only when the warm-up is long enough to keep the learning rate
small meanwhile (ALBERT warmed up for 3,125 steps). Measured on the tiny model of
tests/test_pretrain_train.py (300 steps, lr 2e-2): MLM loss 3.29 without the correction after
20 warm-up steps, 3.14 after 60, 3.06 after 100; 3.00 with it (20 or 60).

The "trust ratio" r scales each layer's step to its weight norm, which is what lets LAMB use
large batches. AdamW is torch.optim.AdamW. Weight decay and the trust ratio skip biases and
LayerNorm parameters, as in the original ALBERT code.

Schedule: linear warm-up from 0 to the peak lr over `warmup` steps, then linear decay to 0 at
`total` steps (BERT/ALBERT's polynomial decay with power 1).
"""

from __future__ import annotations

import torch
from torch import nn

from . import PretrainError


class Lamb(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0,
                 bias_correction=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        bias_correction=bias_correction, adapt=True)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.float()
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, dtype=torch.float32)
                    state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32)
                state["step"] += 1
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                if group["bias_correction"]:
                    m_hat = m / (1 - b1 ** state["step"])
                    v_hat = v / (1 - b2 ** state["step"])
                else:
                    m_hat, v_hat = m, v
                update = m_hat / (v_hat.sqrt() + group["eps"])
                if group["weight_decay"]:
                    update.add_(p.float(), alpha=group["weight_decay"])
                ratio = 1.0
                if group["adapt"]:
                    w_norm, u_norm = p.float().norm(), update.norm()
                    if w_norm > 0 and u_norm > 0:
                        ratio = (w_norm / u_norm).item()
                p.add_(update.to(p.dtype), alpha=-group["lr"] * ratio)
        return loss


def _no_decay(name: str) -> bool:
    return name.endswith((".bias", "mlm_head.bias")) or ".norm." in name


def make_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float,
                   betas=(0.9, 0.999), eps: float = 1e-6, bias_correction: bool = False) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for n, p in model.named_parameters():  # shared parameters appear once
        if p.requires_grad:
            (no_decay if _no_decay(n) else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if name == "lamb":
        groups[1]["adapt"] = False  # biases and LayerNorm: no trust ratio (original ALBERT)
        return Lamb(groups, lr=lr, betas=betas, eps=eps, bias_correction=bias_correction)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps)
    raise PretrainError(f"unknown optimizer {name!r}; use lamb or adamw")


def linear_schedule(warmup: int, total: int):
    """lr multiplier at optimizer step `s` (0-based): warm-up to 1, then linear decay to 0."""

    def factor(s: int) -> float:
        if warmup > 0 and s < warmup:
            return (s + 1) / warmup
        return max(0.0, (total - s) / max(1, total - warmup))

    return factor


def lr_at(peak: float, warmup: int, total: int, step: int) -> float:
    return peak * linear_schedule(warmup, total)(step)

