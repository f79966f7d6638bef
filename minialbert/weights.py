"""Checkpoint files <-> minialbert modules, through one explicit name table.

model.py uses short, plain parameter names; the official checkpoints use transformers'
names. The table below is the whole correspondence. Loading is strict: every parameter of
the model must be found with the right shape, and every tensor in the file must be used,
except head weights that the chosen class has no use for (an MLM head when you load an
AlbertModel, say), which are skipped.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import AlbertConfig
from .errors import CheckpointError, MinialbertError
from .files import atomic_write
from .hub import ModelSource

# minialbert name (left) -> transformers name (right); applied to module paths, the
# parameter's own name (weight / bias) is appended unchanged. {g} is the group index, {i} the
# layer index inside the group: encoder.albert_layer_groups.{g}.albert_layers.{i}.<...>.
NAME_TABLE: list[tuple[str, str]] = [
    ("embeddings.word", "embeddings.word_embeddings"),  # V x E
    ("embeddings.position", "embeddings.position_embeddings"),  # P x E
    ("embeddings.token_type", "embeddings.token_type_embeddings"),  # 2 x E
    ("embeddings.norm", "embeddings.LayerNorm"),
    ("encoder.project", "encoder.embedding_hidden_mapping_in"),  # E -> H
    ("encoder.groups.{g}.{i}.attention.query", "encoder.albert_layer_groups.{g}.albert_layers.{i}.attention.query"),
    ("encoder.groups.{g}.{i}.attention.key", "encoder.albert_layer_groups.{g}.albert_layers.{i}.attention.key"),
    ("encoder.groups.{g}.{i}.attention.value", "encoder.albert_layer_groups.{g}.albert_layers.{i}.attention.value"),
    ("encoder.groups.{g}.{i}.attention.output", "encoder.albert_layer_groups.{g}.albert_layers.{i}.attention.dense"),
    ("encoder.groups.{g}.{i}.attention.norm", "encoder.albert_layer_groups.{g}.albert_layers.{i}.attention.LayerNorm"),
    ("encoder.groups.{g}.{i}.feed_forward.up", "encoder.albert_layer_groups.{g}.albert_layers.{i}.ffn"),
    ("encoder.groups.{g}.{i}.feed_forward.down", "encoder.albert_layer_groups.{g}.albert_layers.{i}.ffn_output"),
    ("encoder.groups.{g}.{i}.feed_forward.norm", "encoder.albert_layer_groups.{g}.albert_layers.{i}.full_layer_layer_norm"),
    ("pooler", "pooler"),
    # pre-training heads (AlbertForPreTraining / AlbertForMaskedLM checkpoints)
    ("mlm_head.dense", "predictions.dense"),
    ("mlm_head.norm", "predictions.LayerNorm"),
    ("mlm_head", "predictions"),  # the MLM output bias: mlm_head.bias <-> predictions.bias
    ("sop_head.classifier", "sop_classifier.classifier"),
    # task heads (model.py section 7): the same names on both sides, beside "albert." as in
    # transformers' AlbertFor{SequenceClassification,TokenClassification,MultipleChoice,QuestionAnswering}
    ("classifier", "classifier"),
    ("qa_outputs", "qa_outputs"),
]
# In the file but never loaded: the MLM decoder is tied to the word embeddings (and its bias to
# predictions.bias), and old transformers versions saved two index buffers.
TIED_OR_BUFFERS = ("predictions.decoder.weight", "predictions.decoder.bias",
                   "embeddings.position_ids", "embeddings.token_type_ids")
# Heads of other transformers classes, ignored when the chosen class does not have them.
HEAD_PREFIXES = ("predictions.", "sop_classifier.", "classifier.", "qa_outputs.", "pooler.")


def _compile(pattern: str) -> re.Pattern:
    return re.compile(re.escape(pattern).replace(r"\{g\}", r"(?P<g>\d+)").replace(r"\{i\}", r"(?P<i>\d+)"))


_TABLE = [(_compile(ours), theirs) for ours, theirs in NAME_TABLE]


def hf_name(our_name: str) -> str:
    """transformers' name for one of our parameter names (AlbertModel layout, no 'albert.')."""
    module, _, leaf = our_name.rpartition(".")
    for pattern, theirs in _TABLE:
        m = pattern.fullmatch(module)
        if m:
            return theirs.format(**m.groupdict()) + "." + leaf
    # Ablation layouts (config.sharing != "all") have no transformers equivalent: keep our name.
    return our_name


def checkpoint_name(our_name: str) -> str:
    """The key under which a parameter named `our_name` is stored in a Hugging Face style checkpoint."""
    # Pre-training classes: the encoder lives under "albert." as in transformers' task models.
    if our_name.startswith("albert."):
        return "albert." + hf_name(our_name[len("albert."):])
    return hf_name(our_name)


# --------------------------------------------------------------------------------- reading
def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors (memory-mapped) or .bin (weights_only, never arbitrary pickles)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            tensors = {}
            with safe_open(str(path), framework="pt") as f:
                for key in f.keys():
                    tensors[key] = f.get_tensor(key)
            return tensors
        state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except FileNotFoundError:
        raise CheckpointError(f"weights file not found: {path}") from None
    except Exception as e:  # safetensors/pickle/zip errors all mean the same thing to a user
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(
            f"cannot read weights file {path}: {msg[:200]} (corrupt or truncated? delete it and "
            "download or save it again)"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    return state


def find_weights(source: ModelSource) -> Path:
    """model.safetensors if present, else pytorch_model.bin (the legacy format)."""
    path = source.file("model.safetensors", required=False)
    if path is None:
        path = source.file("pytorch_model.bin", required=False)
    if path is None:
        raise CheckpointError(
            f"{source.name}: no weights found (looked for model.safetensors and pytorch_model.bin)"
        )
    return path


def _set_parameter(model: nn.Module, name: str, tensor: torch.Tensor) -> None:
    module_path, _, leaf = name.rpartition(".")
    module = model.get_submodule(module_path) if module_path else model
    module._parameters[leaf] = nn.Parameter(tensor, requires_grad=tensor.is_floating_point())


class NewHeadWarning(UserWarning):
    """A task head was not in the checkpoint (or had another width) and was initialised randomly."""


def load_state_dict_into(model: nn.Module, state: dict[str, torch.Tensor], *, strict: bool = True,
                         source: str = "checkpoint", ignore_mismatched_sizes: bool = False) -> None:
    """Put the checkpoint tensors into `model`'s parameters (assigning, not copying).

    Raises one CheckpointError that lists every missing key, unexpected key and wrong shape.
    Task heads (`model.head_prefixes`) missing from the checkpoint are initialised as
    transformers does (N(0, initializer_range) weights, zero biases) with a NewHeadWarning; with
    `ignore_mismatched_sizes`, so is a head whose width differs from the config's.
    """
    prefix = "albert." if any(k.startswith("albert.") for k in state) else ""
    # A task model (AlbertForPreTraining, AlbertForMaskedLM) holds its encoder under "albert.".
    is_base = not any(name.startswith("albert.") for name, _ in model.named_parameters())
    wanted: dict[str, str] = {}  # checkpoint key -> our parameter name
    for name, _ in model.named_parameters():  # shared parameters appear once
        key = checkpoint_name(name)
        if is_base:
            key = prefix + key
        wanted[key] = name
    if not is_base and prefix == "":
        # An AlbertModel checkpoint (no 'albert.' prefix) loaded into a pre-training class.
        wanted = {k[len("albert."):] if k.startswith("albert.") else k: v for k, v in wanted.items()}

    missing, wrong_shape, found, fresh = [], [], {}, []
    params = dict(model.named_parameters())
    head_prefixes = getattr(model, "head_prefixes", ())
    for key, name in wanted.items():
        tensor = state.get(key)
        if tensor is None and key.endswith("predictions.bias"):
            tensor = state.get(key[: -len("bias")] + "decoder.bias")  # very old layout
        is_head = name.startswith(head_prefixes) if head_prefixes else False
        if tensor is None:
            (fresh if is_head else missing).append(name if is_head else key)
        elif tuple(tensor.shape) != tuple(params[name].shape):
            if is_head and ignore_mismatched_sizes:
                fresh.append(name)
            else:
                wrong_shape.append(f"{key}: checkpoint {tuple(tensor.shape)} vs model {tuple(params[name].shape)}")
        else:
            found[name] = tensor
    unexpected = []
    for key in state:
        if key in wanted:
            continue
        bare = key[len(prefix):] if prefix and key.startswith(prefix) else key
        if bare in TIED_OR_BUFFERS or bare.startswith(HEAD_PREFIXES):
            continue
        unexpected.append(key)
    problems = []
    if missing:
        problems.append(f"missing {len(missing)}: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
    if wrong_shape:
        problems.append(f"wrong shape: {'; '.join(wrong_shape[:8])}")
    if unexpected and strict:
        problems.append(f"unexpected {len(unexpected)}: {', '.join(unexpected[:8])}{' ...' if len(unexpected) > 8 else ''}")
    if problems:
        hint = ""
        if any(k.endswith("pooler.weight") for k in missing) and is_base:
            hint = " (this checkpoint has no pooler: load with add_pooling_layer=False)"
        elif missing and all(k.startswith(("predictions.", "sop_classifier.")) for k in missing):
            hint = (" (this checkpoint has no pre-training heads: the MLM head comes with AlbertForMaskedLM "
                    "and AlbertForPreTraining checkpoints such as the official albert-base-v2)")
        elif wrong_shape and head_prefixes and all(w.startswith(("classifier.", "qa_outputs.")) for w in wrong_shape):
            hint = (f" (the checkpoint's head has another width than the config's num_labels="
                    f"{model.config.num_labels}: load without overriding the labels, or pass "
                    "ignore_mismatched_sizes=True to train a new head)")
        raise CheckpointError(f"{source} does not fit the model: " + " | ".join(problems) + hint)
    for name, tensor in found.items():
        _set_parameter(model, name, tensor)
    if fresh:
        _init_new_head(model, fresh, source)


def _init_new_head(model: nn.Module, names: list[str], source: str) -> None:
    """transformers' initialisation for the parameters a checkpoint lacked, and one line saying so."""
    std = model.config.initializer_range
    params = dict(model.named_parameters())
    for name in names:
        shape = params[name].shape
        if name.endswith(".bias"):
            tensor = torch.zeros(shape)
        else:
            tensor = torch.empty(shape).normal_(0.0, std)
        _set_parameter(model, name, tensor)
    modules = sorted({n.rpartition(".")[0].removeprefix("albert.") for n in names})
    head = getattr(model, "classifier", None)
    width = f" ({head.out_features} labels)" if "classifier" in modules and head.out_features > 1 else ""
    warnings.warn(
        f"{type(model).__name__}: {' and '.join(modules)}{width} not in {source}, initialised randomly; "
        "its predictions mean nothing until you train it (minialbert finetune)",
        NewHeadWarning, stacklevel=4,
    )


_INIT_FUNCTIONS = ("uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_",
                   "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_")


@contextlib.contextmanager
def _skip_init():
    """Make torch.nn.init's initializers no-ops while a model is built on the meta device.

    The checkpoint overwrites every parameter anyway, and on meta tensors the initializers go
    through torch._refs, which imports torch._dynamo: about a second of cold start (and ~60 MB)
    for nothing. transformers does the same (its no_init_weights).
    """
    from torch.nn import init

    saved = {name: getattr(init, name) for name in _INIT_FUNCTIONS if hasattr(init, name)}
    for name in saved:
        setattr(init, name, lambda tensor, *args, **kwargs: tensor)
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(init, name, fn)


def load_pretrained(
    cls: type,
    name_or_path: str | os.PathLike,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    strict: bool = True,
    config: AlbertConfig | None = None,
    ignore_mismatched_sizes: bool = False,
    num_layer_calls: int | None = None,
    **model_kwargs: Any,
) -> nn.Module:
    """Build `cls` from a checkpoint directory or Hub repo, in eval mode.

    num_layer_calls=N runs N calls of the shared layer(s) instead of the checkpoint's own count
    (config.num_layer_calls; see docs/guides/compression.md); None keeps the checkpoint's.

    The model is created on the meta device (no random init, no memory) and the checkpoint's
    tensors are then assigned to it, so the weights exist once in memory.
    """
    source = ModelSource(name_or_path, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
    if config is None:
        config = AlbertConfig.from_json(source.file("config.json"))
    if num_layer_calls is not None:
        config = config.replace(num_layer_calls=num_layer_calls)
    weights_path = find_weights(source)
    state = read_state_dict(weights_path)
    if "add_pooling_layer" in inspect.signature(cls).parameters and "add_pooling_layer" not in model_kwargs:
        # AlbertModel (and subclasses): have a pooler exactly when the checkpoint has one
        # (AlbertForMaskedLM checkpoints do not).
        model_kwargs["add_pooling_layer"] = any(k.endswith("pooler.weight") for k in state)
    with torch.device("meta"), _skip_init():
        model = cls(config, **model_kwargs)
    load_state_dict_into(model, state, strict=strict, source=str(weights_path),
                         ignore_mismatched_sizes=ignore_mismatched_sizes)
    move_model(model, device, dtype)
    return model.eval()


def load_task_model(
    cls: type,
    name_or_path: str | os.PathLike,
    *,
    num_labels: int | None = None,
    id2label: dict | None = None,
    label2id: dict | None = None,
    problem_type: str | None = None,
    ignore_mismatched_sizes: bool = False,
    config: AlbertConfig | None = None,
    **kwargs: Any,
) -> nn.Module:
    """load_pretrained for the task heads of model.py section 7, with transformers' label overrides.

    `id2label` (names in id order) or `num_labels` (names LABEL_i) set the head's width;
    `label2id` defaults to the inverse of id2label.
    """
    if config is None:
        hub = {k: kwargs[k] for k in ("revision", "cache_dir", "local_files_only") if k in kwargs}
        config = AlbertConfig.from_json(ModelSource(name_or_path, **hub).file("config.json"))
    if id2label is not None:
        ids = sorted(int(i) for i in id2label)
        config = config.with_labels([id2label[i] if i in id2label else id2label[str(i)] for i in ids])
        if num_labels is not None and num_labels != config.num_labels:
            raise MinialbertError(f"num_labels={num_labels} but id2label names {config.num_labels} labels")
    elif num_labels is not None and num_labels != config.num_labels:
        config = config.with_labels(num_labels)
    if label2id is not None:
        config = config.replace(label2id=dict(label2id))
    if problem_type is not None:
        config = config.replace(problem_type=problem_type)
    return load_pretrained(cls, name_or_path, config=config, ignore_mismatched_sizes=ignore_mismatched_sizes, **kwargs)


def move_model(model: nn.Module, device=None, dtype=None) -> None:
    """model.to(device, dtype), with a clear error for a device this machine does not have."""
    if device is None and dtype is None:
        return
    try:
        model.to(device=torch.device(device) if device is not None else None, dtype=dtype)
    except (RuntimeError, AssertionError) as e:  # "Torch not compiled with CUDA enabled", bad names
        raise MinialbertError(f"cannot use device {device!r}: {str(e).splitlines()[0]}") from None


# --------------------------------------------------------------------------------- writing
def save_pretrained(model: nn.Module, directory: str | os.PathLike) -> None:
    from safetensors.torch import save_file

    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MinialbertError(f"cannot create {directory}: {e.strerror}") from None
    tensors = {
        checkpoint_name(name): p.detach().to("cpu").contiguous()
        for name, p in model.named_parameters()
    }
    arch = type(model).__name__  # AlbertModel, AlbertForPreTraining, AlbertForMaskedLM (transformers' names)
    config: AlbertConfig = model.config
    config = config.replace(extra={**config.extra, "architectures": [arch]})
    atomic_write(directory / "model.safetensors", lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    atomic_write(directory / "config.json", lambda tmp: config.to_json(tmp))
    incompatible = config.transformers_incompatibility()
    if incompatible is not None and config.sharing == "all":  # sharing != "all" has always been minialbert-only
        warnings.warn(f"{directory}: {incompatible}", TransformersIncompatibleWarning, stacklevel=3)


class TransformersIncompatibleWarning(UserWarning):
    """A saved checkpoint that transformers cannot load, or would run differently (one line)."""
