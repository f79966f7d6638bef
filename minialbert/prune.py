"""Structured pruning: remove attention heads and FFN neurons from ALBERT's shared layer(s).

    minialbert prune MODEL --heads K --ffn-fraction F --data FILE --output DIR

Which heads and neurons go is decided on the user's data by the importance score of Michel et
al. 2019, "Are Sixteen Heads Really Better than One?". Give each head h a gate xi_h that multiplies
its context vector (xi_h = 1 is the model as it is); the head's importance is

    I_h = sum over examples x of | dL(x) / d xi_h |,     dL/d xi_h = sum_t <dL/d c_{h,t}, c_{h,t}>

(gradient times activation: c_{h,t} is head h's context at token t, the input of W^O, summed over
every layer call that uses the layer, since one gate would gate them all). The same score with
the gate on an FFN neuron j (its activation act(x W_1 + b_1)_j, the input of W_2) ranks the FFN
rows. The loss L is the model's own: masked-LM cross-entropy on the text (15% of the word pieces
masked, fixed seed) for a checkpoint with an MLM head, or the task loss for a fine-tuned
sequence classifier (data: a finetune table with labels).

Each distinct layer module loses its K least important heads and the fraction F of its least
important neurons: rows of W^Q, W^K, W^V (and biases) and columns of W^O for a head; the row of
W_1 (and b_1) and the column of W_2 for a neuron. The result is an ordinary smaller checkpoint;
its config lists the new shapes per distinct layer (`layer_attention_heads`,
`layer_intermediate_sizes`, see config.py), which every minialbert loader, the engine and the
ONNX export read. transformers cannot load it (it has no per-layer shapes), and saving says so.

Removing a head gives exactly the model with that head's W^O columns zeroed (tests/test_compress.py
checks pruned == masked to 1e-5).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .errors import MinialbertError


class PruneError(MinialbertError):
    """A pruning request that cannot be met (every head, a fraction outside (0, 1), no usable loss)."""


@dataclass
class Importance:
    """Per distinct layer (model.encoder's modules, in config order): one score per head, per neuron."""

    heads: list[torch.Tensor]  # each (num_heads,)
    neurons: list[torch.Tensor]  # each (intermediate_size,)
    examples: int


def distinct_layers(model: nn.Module) -> list[nn.Module]:
    """The encoder's distinct AlbertLayer modules in config order (groups flattened)."""
    base = getattr(model, "albert", model)
    enc = base.encoder
    if base.config.sharing == "all":
        return [layer for group in enc.groups for layer in group]
    if base.config.sharing != "none":
        raise PruneError(f"pruning needs sharing 'all' or 'none', this model has sharing={base.config.sharing!r}")
    return list(enc.layers)


def _gate_grads(module: nn.Linear, groups: int, store: list) -> torch.utils.hooks.RemovableHandle:
    """On every call of `module`, record sum over tokens of input * d loss / d input, per example
    and per group of input columns (a head's d_k columns, or one neuron): d loss / d gate."""

    def hook(mod, inputs, output):
        x = inputs[0]
        if not x.requires_grad:
            return

        detached = x.detach()

        def on_grad(g, x=detached):
            b = x.shape[0]
            store.append((x * g).reshape(b, -1, groups, x.shape[-1] // groups).sum(dim=(1, 3)).detach())

        x.register_hook(on_grad)

    return module.register_forward_hook(hook)


def compute_importance(model: nn.Module, batches, loss_fn) -> Importance:
    """Michel et al.'s head importance (and the same for FFN neurons) of `model` on `batches`.

    loss_fn(model, batch) -> the batch's scalar loss. Each example's term is |d L / d xi| of its
    share of that loss (with a mean over the batch's scored tokens, each example weighs by its
    number of scored tokens; the tests check this against autograd through explicit gates). The gradients
    are read with tensor hooks on W^O's and W_2's inputs, removed afterwards; the model is not changed.
    """
    layers = distinct_layers(model)
    was_training = model.training
    model.eval()
    heads = [torch.zeros(layer.attention.num_heads, dtype=torch.float64) for layer in layers]
    neurons = [torch.zeros(layer.feed_forward.up.out_features, dtype=torch.float64) for layer in layers]
    examples = 0
    requires = {p: p.requires_grad for p in model.parameters()}
    try:
        for p in model.parameters():
            p.requires_grad_(True)
        for batch in batches:
            head_store = [[] for _ in layers]
            neuron_store = [[] for _ in layers]
            handles = []
            for i, layer in enumerate(layers):
                handles.append(_gate_grads(layer.attention.output, layer.attention.num_heads, head_store[i]))
                handles.append(_gate_grads(layer.feed_forward.down, layer.feed_forward.down.in_features,
                                           neuron_store[i]))
            try:
                model.zero_grad(set_to_none=True)
                loss = loss_fn(model, batch)
                loss.backward()
            finally:
                for h in handles:
                    h.remove()
            for i in range(len(layers)):
                # sum over the layer calls first (one gate gates them all), then |.| per example
                heads[i] += torch.stack(head_store[i]).sum(0).abs().sum(0).double()
                neurons[i] += torch.stack(neuron_store[i]).sum(0).abs().sum(0).double()
            examples += int(batch["input_ids"].shape[0])
    finally:
        model.zero_grad(set_to_none=True)
        for p, r in requires.items():
            p.requires_grad_(r)
        model.train(was_training)
    return Importance(heads, neurons, examples)


def check_request(num_heads: int, heads: int | None, ffn_fraction: float | None) -> None:
    """One-line errors for a request that cannot be met."""
    if heads is None and ffn_fraction is None:
        raise PruneError("nothing to prune: give --heads K (heads to remove per layer) and/or --ffn-fraction F")
    if heads is not None:
        if heads < 0:
            raise PruneError(f"--heads must be 0 or more heads to remove, got {heads}")
        if heads >= num_heads:
            raise PruneError(f"--heads {heads} would remove every head of a layer that has {num_heads}; "
                             f"remove at most {num_heads - 1}")
    if ffn_fraction is not None and not (isinstance(ffn_fraction, (int, float)) and 0.0 < ffn_fraction < 1.0):
        raise PruneError(f"--ffn-fraction must be in (0, 1) (the share of FFN neurons to remove), got {ffn_fraction}")


def choose(importance: Importance, heads: int | None, ffn_fraction: float | None):
    """(heads to keep, neurons to keep) per distinct layer: the most important, in their original order."""
    keep_heads, keep_neurons = [], []
    for h_scores, n_scores in zip(importance.heads, importance.neurons):
        check_request(len(h_scores), heads, ffn_fraction)
        k = len(h_scores) - (heads or 0)
        keep_heads.append(sorted(torch.argsort(h_scores, descending=True, stable=True)[:k].tolist()))
        n = len(n_scores) - int(round(len(n_scores) * (ffn_fraction or 0.0)))
        if n < 1:
            raise PruneError(f"--ffn-fraction {ffn_fraction} leaves no neuron of {len(n_scores)}; use a smaller fraction")
        keep_neurons.append(sorted(torch.argsort(n_scores, descending=True, stable=True)[:n].tolist()))
    return keep_heads, keep_neurons


def pruned_state(model: nn.Module, keep_heads: list[list[int]], keep_neurons: list[list[int]]) -> dict:
    """The model's state dict with the pruned rows/columns removed (minialbert parameter names)."""
    layers = distinct_layers(model)
    cut: dict[int, tuple] = {}  # id(parameter) -> (dim, index)
    for layer, hk, nk in zip(layers, keep_heads, keep_neurons):
        att, ff = layer.attention, layer.feed_forward
        d = att.head_dim
        cols = torch.tensor([h * d + j for h in hk for j in range(d)], dtype=torch.long)
        for lin in (att.query, att.key, att.value):
            cut[id(lin.weight)] = (0, cols)
            cut[id(lin.bias)] = (0, cols)
        cut[id(att.output.weight)] = (1, cols)
        rows = torch.tensor(nk, dtype=torch.long)
        cut[id(ff.up.weight)] = (0, rows)
        cut[id(ff.up.bias)] = (0, rows)
        cut[id(ff.down.weight)] = (1, rows)
    state = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        t = p.detach()
        if id(p) in cut:
            dim, index = cut[id(p)]
            t = t.index_select(dim, index.to(t.device))
        state[name] = t.clone()
    return state


def prune_model(model: nn.Module, keep_heads: list[list[int]], keep_neurons: list[list[int]]) -> nn.Module:
    """A new model of the same class whose distinct layers keep only these heads and neurons."""
    config = model.config
    base = getattr(model, "albert", model)
    new_config = config.replace(
        layer_attention_heads=[len(h) for h in keep_heads],
        layer_intermediate_sizes=[len(n) for n in keep_neurons],
    )
    state = pruned_state(model, keep_heads, keep_neurons)
    kwargs = {}
    if type(model).__name__ == "AlbertModel":
        kwargs["add_pooling_layer"] = base.pooler is not None
    with torch.device("meta"):
        new = type(model)(new_config, **kwargs)
    new.load_state_dict(state, strict=True, assign=True)
    # Tied MLM decoder: model.py ties by passing the word embedding at call time; nothing to re-tie.
    return new.to(next(model.parameters()).device).train(model.training)


# ------------------------------------------------------------------------------------------ data
def _mlm_batches(model, tokenizer, texts: list[str], batch_size: int, max_length: int, seed: int):
    """Texts as MLM batches: 15% of the real word pieces (never [CLS]/[SEP]/padding) become [MASK]."""
    gen = torch.Generator().manual_seed(seed)
    special = {tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id}
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")
        ids = enc["input_ids"]
        maskable = enc["attention_mask"].bool()
        for s in special:
            maskable &= ids != s
        chosen = (torch.rand(ids.shape, generator=gen) < 0.15) & maskable
        # at least one masked piece per row that has any, so every example has a loss
        first = maskable.float().argmax(dim=1)
        rows = maskable.any(dim=1) & ~chosen.any(dim=1)
        chosen[rows.nonzero().flatten(), first[rows]] = True
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        yield {"input_ids": ids.masked_fill(chosen, tokenizer.mask_token_id), "attention_mask": enc["attention_mask"],
               "token_type_ids": enc["token_type_ids"], "labels": labels}


def _mlm_loss(model, batch):
    return model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], labels=batch["labels"]).loss


def _task_batches(model, tokenizer, path, batch_size: int, max_length: int):
    from .finetune.data import collate, encode_examples, read_examples

    config = model.config
    task = "regression" if config.problem_type == "regression" or config.num_labels == 1 else "classify"
    if config.problem_type == "multi_label_classification":
        raise PruneError("pruning a multi-label classifier is not supported; prune its encoder with an MLM text file")
    examples = read_examples(path, task)
    if task == "classify":
        unknown = sorted({e.label for e in examples} - set(config.label2id))
        if unknown:
            raise PruneError(f"{path}: label(s) {unknown[:3]} are not among the model's labels "
                             f"({', '.join(config.label2id)})")
    features = encode_examples(examples, tokenizer, task, config.label2id, max_length)
    dtype = torch.float32 if task == "regression" else torch.long
    for i in range(0, len(features), batch_size):
        yield collate(features[i:i + batch_size], tokenizer.pad_token_id, dtype)


def _task_loss(model, batch):
    return model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], labels=batch["labels"]).loss


PRUNABLE = ("AlbertForPreTraining", "AlbertForMaskedLM", "AlbertForSequenceClassification")


def prune_checkpoint(model_path: str | os.PathLike, output: str | os.PathLike, *, heads: int | None = None,
                     ffn_fraction: float | None = None, data: str | os.PathLike, batch_size: int = 16,
                     max_length: int = 128, max_examples: int | None = 512, seed: int = 0,
                     revision=None, cache_dir=None, local_files_only: bool = False) -> dict:
    """Load a checkpoint, score its heads/neurons on `data`, write the pruned checkpoint to `output`.

    Returns a summary: the heads and neurons kept per distinct layer, the parameter counts, and
    the one-line note that transformers cannot load the result."""
    from . import model as M
    from .config import AlbertConfig
    from .files import read_texts
    from .hub import ModelSource
    from .tokenizer import AlbertTokenizer

    source = ModelSource(model_path, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
    folder = source.checkpoint_folder()
    config = AlbertConfig.from_json(Path(folder) / "config.json")
    check_request(min(config.layer_heads(i) for i in range(config.num_distinct_layers)), heads, ffn_fraction)
    arch = (config.extra.get("architectures") or ["AlbertModel"])[0]
    if arch not in PRUNABLE:
        raise PruneError(f"{model_path} is an {arch} checkpoint: pruning scores heads with the model's own loss, "
                         "so it needs an MLM head (AlbertForPreTraining / AlbertForMaskedLM) or a sequence "
                         "classifier (AlbertForSequenceClassification)")
    out = Path(output)
    if out.exists() and any(out.iterdir()):
        raise PruneError(f"{out} exists and is not empty; choose a new --output directory")
    cls = getattr(M, arch)
    model = cls.from_pretrained(folder)
    model.float()
    tokenizer = AlbertTokenizer.from_pretrained(folder)
    max_length = min(max_length, config.max_position_embeddings)
    if arch == "AlbertForSequenceClassification":
        batches = list(_task_batches(model, tokenizer, data, batch_size, max_length))
        loss_fn = _task_loss
    else:
        texts = read_texts(data)
        if not texts:
            raise PruneError(f"no texts in {data}: it is empty")
        batches = list(_mlm_batches(model, tokenizer, texts, batch_size, max_length, seed))
        loss_fn = _mlm_loss
    if max_examples is not None:
        kept, n = [], 0
        for b in batches:
            if n >= max_examples:
                break
            kept.append(b)
            n += b["input_ids"].shape[0]
        batches = kept
    importance = compute_importance(model, batches, loss_fn)
    keep_heads, keep_neurons = choose(importance, heads, ffn_fraction)
    pruned = prune_model(model, keep_heads, keep_neurons).eval()
    import warnings

    from .weights import TransformersIncompatibleWarning

    with warnings.catch_warnings():  # the CLI prints the note itself, once
        warnings.simplefilter("ignore", TransformersIncompatibleWarning)
        pruned.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {
        "output": str(out),
        "examples": importance.examples,
        "heads_kept": keep_heads,
        "intermediate_kept": [len(n) for n in keep_neurons],
        "parameters_before": sum(p.numel() for p in model.parameters()),
        "parameters_after": sum(p.numel() for p in pruned.parameters()),
        "note": pruned.config.transformers_incompatibility(),
    }
