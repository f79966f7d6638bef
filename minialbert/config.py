"""AlbertConfig: every hyper-parameter that changes ALBERT's computation, as a dataclass.

It reads and writes the Hugging Face `config.json` format, so the same file serves
minialbert and transformers. Fields that only matter to transformers' bookkeeping
(`architectures`, `transformers_version`, ...) are kept aside in `extra` and written back.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

# The activations that ALBERT configs may name (transformers' ACT2FN keys): the keys of
# model.ACTIVATIONS, listed here so that a config validates without importing torch.
SUPPORTED_ACTIVATIONS = (
    "gelu_new", "gelu", "gelu_fast", "gelu_pytorch_tanh", "gelu_python", "quick_gelu",
    "relu", "relu6", "silu", "swish", "tanh", "sigmoid", "mish", "linear",
)

# Cross-layer sharing strategies (Lan et al. 2019, Table 4). "all" is ALBERT proper and is
# controlled by num_hidden_groups / inner_group_num exactly as in the official code.
SHARING_STRATEGIES = ("all", "attention", "ffn", "none")

# What a sequence-classification head optimises (transformers' `problem_type`); None = inferred
# from num_labels and the labels' dtype, as transformers does (see model.py section 7).
PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")


@dataclass
class AlbertConfig:
    vocab_size: int = 30000
    embedding_size: int = 128  # E: the factorized embedding width (V x E, then E -> H)
    hidden_size: int = 768  # H
    num_hidden_layers: int = 12  # L: how many times a layer is applied
    num_hidden_groups: int = 1  # G: how many distinct parameter groups those L calls cycle through
    inner_group_num: int = 1  # layers inside one group, applied one after the other
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu_new"
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    classifier_dropout_prob: float | None = 0.1  # task heads; None = use hidden_dropout_prob
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    pad_token_id: int | None = 0
    bos_token_id: int | None = 2
    eos_token_id: int | None = 3
    # minialbert extension for ablations: which blocks are shared across layers (see model.py).
    sharing: str = "all"
    # minialbert extension (docs/guides/compression.md): how many layer calls to run; None = the
    # checkpoint's num_hidden_layers. Use `config.layer_call_count` for the value in effect.
    num_layer_calls: int | None = None
    # minialbert extension written by `minialbert prune`: the shapes of each *distinct* layer module
    # (sharing="all": G * inner_group_num entries, group by group; sharing="none": one per layer).
    # None = every layer has num_attention_heads heads and intermediate_size FFN neurons. A pruned
    # layer keeps head_dim = hidden_size / num_attention_heads, so its attention is heads * head_dim wide.
    layer_attention_heads: list[int] | None = None
    layer_intermediate_sizes: list[int] | None = None
    # Task heads (fine-tuning), with transformers' names. num_labels is the head's width; it
    # follows id2label when that is given. id2label/label2id default to LABEL_0, LABEL_1, ...
    num_labels: int | None = None  # None = len(id2label), else 2 (transformers' default)
    id2label: dict[int, str] | None = None
    label2id: dict[str, int] | None = None
    problem_type: str | None = None  # one of PROBLEM_TYPES, or None to infer it
    # Keys of config.json that do not change the computation; kept so to_json round-trips.
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._settle_labels()
        self.validate()

    def _settle_labels(self) -> None:
        """Make num_labels, id2label and label2id agree, the way transformers' config does."""
        if self.id2label is not None:
            if not isinstance(self.id2label, dict):
                raise ConfigError(f"config: id2label must be a mapping of ids to names, got {self.id2label!r}")
            try:  # JSON keys are strings
                id2label = {int(k): str(v) for k, v in self.id2label.items()}
            except (TypeError, ValueError):
                raise ConfigError(f"config: id2label keys must be integers, got {list(self.id2label)}") from None
            if sorted(id2label) != list(range(len(id2label))):
                raise ConfigError(f"config: id2label must number the labels 0..n-1, got ids {sorted(id2label)}")
            if self.num_labels is not None and self.num_labels != len(id2label):
                raise ConfigError(
                    f"config: num_labels={self.num_labels} but id2label names {len(id2label)} labels; "
                    "change both together with config.with_labels(...)"
                )
            self.id2label = dict(sorted(id2label.items()))
            self.num_labels = len(id2label)
        else:
            if self.num_labels is None:
                self.num_labels = 2
            if not isinstance(self.num_labels, int) or isinstance(self.num_labels, bool) or self.num_labels < 1:
                raise ConfigError(f"config: num_labels must be a positive integer, got {self.num_labels!r}")
            self.id2label = {i: f"LABEL_{i}" for i in range(self.num_labels)}
        if self.label2id is None:
            self.label2id = {name: i for i, name in self.id2label.items()}
        else:
            try:
                self.label2id = {str(k): int(v) for k, v in self.label2id.items()}
            except (AttributeError, TypeError, ValueError):
                raise ConfigError(f"config: label2id must map label names to integer ids, got {self.label2id!r}") from None

    def with_labels(self, labels: "int | list[str] | tuple[str, ...]", problem_type: str | None = None) -> "AlbertConfig":
        """A copy whose task head has these labels: a count (names LABEL_i) or the names in id order."""
        if isinstance(labels, int):
            names = [f"LABEL_{i}" for i in range(labels)]
        else:
            names = [str(n) for n in labels]
            if len(set(names)) != len(names):
                raise ConfigError(f"config: label names must be distinct, got {names}")
        id2label = dict(enumerate(names))
        return dataclasses.replace(self, num_labels=len(names), id2label=id2label,
                                   label2id={n: i for i, n in id2label.items()},
                                   problem_type=problem_type if problem_type is not None else self.problem_type)

    # ----------------------------------------------------------------- checks
    def validate(self) -> None:
        def positive(name: str) -> None:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"config: {name} must be a positive integer, got {value!r}")

        for name in (
            "vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_hidden_groups",
            "inner_group_num", "num_attention_heads", "intermediate_size",
            "max_position_embeddings", "type_vocab_size",
        ):
            positive(name)
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"config: hidden_size {self.hidden_size} is not divisible by "
                f"num_attention_heads {self.num_attention_heads}"
            )
        if self.num_hidden_groups > self.num_hidden_layers:
            raise ConfigError(
                f"config: num_hidden_groups ({self.num_hidden_groups}) exceeds num_hidden_layers "
                f"({self.num_hidden_layers}); some groups would never be used"
            )
        if self.hidden_act not in SUPPORTED_ACTIVATIONS:
            raise ConfigError(
                f"config: unsupported hidden_act {self.hidden_act!r}; "
                f"supported: {', '.join(SUPPORTED_ACTIVATIONS)}"
            )
        if self.sharing not in SHARING_STRATEGIES:
            raise ConfigError(
                f"config: unknown sharing strategy {self.sharing!r}; use one of {SHARING_STRATEGIES}"
            )
        if self.sharing != "all" and (self.num_hidden_groups != 1 or self.inner_group_num != 1):
            raise ConfigError(
                f"config: sharing={self.sharing!r} needs num_hidden_groups=1 and inner_group_num=1 "
                "(groups are ALBERT's own 'all' sharing)"
            )
        self._validate_compression()
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout_prob"):
            p = getattr(self, name)
            if p is None and name == "classifier_dropout_prob":
                continue  # transformers: the heads then use hidden_dropout_prob
            if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= float(p) < 1.0:
                raise ConfigError(f"config: {name} must be in [0, 1), got {p!r}")
        if self.problem_type is not None and self.problem_type not in PROBLEM_TYPES:
            raise ConfigError(f"config: problem_type must be one of {', '.join(PROBLEM_TYPES)} (or null), "
                              f"got {self.problem_type!r}")
        if self.problem_type == "single_label_classification" and self.num_labels == 1:
            raise ConfigError("config: problem_type single_label_classification needs num_labels >= 2 "
                              "(use regression for one output)")

    def _validate_compression(self) -> None:
        calls = self.num_layer_calls
        if calls is not None:
            if not isinstance(calls, int) or isinstance(calls, bool) or calls < 1:
                raise ConfigError(f"config: num_layer_calls must be a positive integer, got {calls!r}")
            if self.sharing != "all" and calls > self.num_hidden_layers:
                raise ConfigError(
                    f"config: num_layer_calls={calls} exceeds the {self.num_hidden_layers} distinct layers of "
                    f"sharing={self.sharing!r}; only ALBERT's shared layers (sharing='all') can run more calls"
                )
            if self.sharing == "all" and calls < self.num_hidden_groups:
                raise ConfigError(
                    f"config: num_layer_calls={calls} is fewer than num_hidden_groups={self.num_hidden_groups}; "
                    "some parameter groups would never run"
                )
        distinct = self.num_distinct_layers
        for name, full in (("layer_attention_heads", self.num_attention_heads),
                           ("layer_intermediate_sizes", self.intermediate_size)):
            sizes = getattr(self, name)
            if sizes is None:
                continue
            if self.sharing in ("attention", "ffn"):
                raise ConfigError(f"config: {name} (a pruned model) needs sharing 'all' or 'none', "
                                  f"not {self.sharing!r}")
            if (not isinstance(sizes, (list, tuple)) or len(sizes) != distinct
                    or any(not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= full for v in sizes)):
                raise ConfigError(f"config: {name} must list {distinct} integer(s) in [1, {full}] "
                                  f"(one per distinct layer), got {sizes!r}")
            setattr(self, name, list(sizes))

    @property
    def layer_call_count(self) -> int:
        """How many layer calls the encoder runs: num_layer_calls, or num_hidden_layers when unset."""
        return self.num_hidden_layers if self.num_layer_calls is None else self.num_layer_calls

    @property
    def num_distinct_layers(self) -> int:
        """How many layer modules the encoder stores (ALBERT base: 1)."""
        return self.num_hidden_groups * self.inner_group_num if self.sharing == "all" else self.num_hidden_layers

    def layer_heads(self, index: int) -> int:
        """Attention heads of the index-th distinct layer (fewer than num_attention_heads once pruned)."""
        return self.num_attention_heads if self.layer_attention_heads is None else self.layer_attention_heads[index]

    def layer_intermediate_size(self, index: int) -> int:
        """FFN width of the index-th distinct layer (smaller than intermediate_size once pruned)."""
        return self.intermediate_size if self.layer_intermediate_sizes is None else self.layer_intermediate_sizes[index]

    def transformers_incompatibility(self) -> str | None:
        """Why transformers' AlbertModel would not load (or would run differently) a checkpoint with
        this config, in one line; None when it loads it as minialbert runs it."""
        reasons = []
        if self.sharing != "all":
            reasons.append(f"sharing={self.sharing!r}")
        if self.layer_attention_heads is not None or self.layer_intermediate_sizes is not None:
            reasons.append("pruned layer shapes (layer_attention_heads / layer_intermediate_sizes)")
        if self.layer_call_count != self.num_hidden_layers:
            reasons.append(f"num_layer_calls={self.layer_call_count} (transformers would run "
                           f"num_hidden_layers={self.num_hidden_layers} calls)")
        if not reasons:
            return None
        return "transformers cannot load this checkpoint as minialbert runs it: " + "; ".join(reasons)

    @property
    def classifier_dropout(self) -> float:
        """The dropout probability in front of a task head."""
        return self.hidden_dropout_prob if self.classifier_dropout_prob is None else self.classifier_dropout_prob

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def group_index(self, layer: int) -> int:
        """Which parameter group the layer-th call uses: ALBERT's floor(i / (L / G)), with L the
        number of calls that run (layer_call_count). With num_layer_calls = N != L the group schedule
        is stretched over the N calls, in order: each group keeps its share (N / G calls); with G = 1
        (every official checkpoint) every call runs the one shared group."""
        return int(layer / (self.layer_call_count / self.num_hidden_groups))

    # ------------------------------------------------------------ json in/out
    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> "AlbertConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
        model_type = data.get("model_type")
        if model_type is None:
            # The first ALBERT config.json files on the Hub carry no model_type; accept them when
            # they have ALBERT's own keys.
            if "embedding_size" not in data and "inner_group_num" not in data:
                raise ConfigError(
                    f"{source}: no model_type and no ALBERT keys (embedding_size, inner_group_num): "
                    "not an ALBERT config"
                )
        elif model_type != "albert":
            raise ConfigError(
                f"{source}: model_type is {model_type!r}, not 'albert'; minialbert only runs ALBERT "
                "checkpoints"
            )
        pos_type = data.get("position_embedding_type", "absolute")
        if pos_type != "absolute":
            raise ConfigError(
                f"{source}: position_embedding_type {pos_type!r} is not supported "
                "(minialbert implements ALBERT's learned absolute positions only)"
            )
        names = {f.name for f in dataclasses.fields(cls)} - {"extra", "sharing"}
        known = {k: v for k, v in data.items() if k in names}
        if known.get("id2label") is not None:
            known.pop("num_labels", None)  # transformers: id2label decides the head's width
        eos = known.get("eos_token_id")
        if isinstance(eos, list):  # transformers allows a list; ALBERT uses one id
            known["eos_token_id"] = eos[0] if eos else None
        extra = {k: v for k, v in data.items() if k not in names and k != "minialbert_sharing"}
        sharing = data.get("minialbert_sharing", "all")
        try:
            return cls(**known, sharing=sharing, extra=extra)
        except TypeError as e:  # pragma: no cover - defensive: wrong value types
            raise ConfigError(f"{source}: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.extra)
        for f in dataclasses.fields(self):
            if f.name in ("extra", "sharing", "num_labels", "id2label", "label2id", "problem_type",
                          "num_layer_calls", "layer_attention_heads", "layer_intermediate_sizes"):
                continue
            data[f.name] = getattr(self, f.name)
        # Labels as transformers v5 writes them: only when they differ from its defaults (2 labels
        # named LABEL_0, LABEL_1), with string keys; transformers derives num_labels from id2label.
        default_names = {i: f"LABEL_{i}" for i in range(self.num_labels)}
        if self.num_labels != 2 or self.id2label != default_names:
            data["id2label"] = {str(i): name for i, name in self.id2label.items()}
            data["label2id"] = dict(self.label2id)
        if self.problem_type is not None:
            data["problem_type"] = self.problem_type
        # minialbert's compression fields, only when they change something (stock configs are unchanged).
        if self.layer_call_count != self.num_hidden_layers:
            data["num_layer_calls"] = self.layer_call_count
        for name in ("layer_attention_heads", "layer_intermediate_sizes"):
            if getattr(self, name) is not None:
                data[name] = list(getattr(self, name))
        data["model_type"] = "albert"
        if self.sharing != "all":
            # transformers cannot build these models; the key makes that explicit.
            data["minialbert_sharing"] = self.sharing
        return dict(sorted(data.items()))

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "AlbertConfig":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read config file {path}: {e}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path} is not valid JSON ({e.msg} at line {e.lineno})") from None
        return cls.from_dict(data, source=str(path))

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def replace(self, **changes: Any) -> "AlbertConfig":
        return dataclasses.replace(self, **changes)

    # ---------------------------------------------------------------- presets
    @classmethod
    def from_preset(cls, name: str) -> "AlbertConfig":
        """The config of an official checkpoint, e.g. "albert-base-v2" or "albert/albert-base-v2"."""
        key = official_name(name)
        if key is None:
            raise ConfigError(f"no preset {name!r}; presets: {', '.join(PRESETS)}")
        return cls(**PRESETS[key])


def _preset(hidden: int, layers: int, heads: int, intermediate: int, v2: bool) -> dict[str, Any]:
    # Values from the config.json files of the official Hub repos. v2 uses gelu_new and no
    # dropout; v1 uses exact (erf) gelu and dropout 0.1, except xxlarge-v1 which has no dropout.
    dropout = 0.0 if v2 or hidden == 4096 else 0.1
    return dict(
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=intermediate, embedding_size=128, vocab_size=30000,
        hidden_act="gelu_new" if v2 else "gelu",
        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
    )


PRESETS: dict[str, dict[str, Any]] = {
    f"albert-{size}-v{v}": _preset(*dims, v2=(v == 2))
    for v in (1, 2)
    for size, dims in {
        "base": (768, 12, 12, 3072),
        "large": (1024, 24, 16, 4096),
        "xlarge": (2048, 24, 16, 8192),  # 16 heads, not H/64
        "xxlarge": (4096, 12, 64, 16384),
    }.items()
}


def official_name(name: str) -> str | None:
    """The short name of an official ALBERT checkpoint ("albert-base-v2"), given either form.

    The official repos moved from "albert-base-v2" to "albert/albert-base-v2"; both spellings
    name the same checkpoint. Anything else (a user repo, a path) gives None.
    """
    key = name[len("albert/"):] if name.startswith("albert/") else name
    return key if key in PRESETS else None
