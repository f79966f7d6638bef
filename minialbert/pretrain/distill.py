"""Knowledge distillation through the pre-training loop (DistilBERT / TinyBERT style).

    minialbert distill --teacher T --layer-calls 6 --corpus corpus.txt --output-dir OUT
    minialbert distill --teacher T --student student.json --corpus corpus.txt --output-dir OUT
    minialbert distill --teacher CLASSIFIER --task train.jsonl --layer-calls 6 --output-dir OUT

The student learns to reproduce the teacher. On each pre-training example (the same prepared,
masked sentence pairs as `minialbert pretrain`, in the same resumable order):

    L = kl_weight * T^2 * mean_i KL( softmax(z^t_i / T) || softmax(z^s_i / T) )
      + hidden_weight * mean_k MSE( h^s_k, h^t_{m(k)} )

z are the MLM logits at the masked positions i (or, with --task, the task logits of each
example, computed on the example with its masked tokens restored); T the temperature. h^s_k is
the student's k-th hidden state (k = 0 after the embedding projection, then one per layer call)
and m(k) = round(k * D_t / D_s) the teacher's state at the same relative depth (D = number of
layer calls), compared over real tokens only.

Where the student starts: a checkpoint directory starts from its weights; a config (file or
preset) or none (the teacher's own config) starts from the teacher's weights whenever the
parameter shapes agree, which they do for a student that only runs fewer layer calls: ALBERT's
parameters do not depend on the number of calls. With --layer-calls N and sharing "all", the
student's config says num_hidden_layers = N (so transformers loads it as it is trained).

Everything but the objective and the start is `minialbert pretrain`'s loop (train._train with this
module's plugin): the tokenizer is the teacher's, and --resume continues bit-identically.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..config import AlbertConfig, official_name
from . import PretrainError
from .masking import IGNORE_INDEX

SIZE_FLAGS = ("embedding_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
              "num_hidden_groups", "inner_group_num", "sharing", "hidden_act", "dropout", "vocab_size")


class DistillError(PretrainError):
    """A distillation request that cannot run (a teacher without the head asked for, vocabularies that differ)."""


def kl_at_temperature(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * mean over rows of KL(softmax(t/T) || softmax(s/T)) (Hinton et al. 2015's scaling)."""
    t = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    s = F.log_softmax(student_logits.float() / temperature, dim=-1)
    return (t.exp() * (t - s)).sum(-1).mean() * temperature ** 2


def hidden_mse(student_states, teacher_states, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the student's states k of MSE(h^s_k, h^t_round(k * D_t / D_s)) on real tokens."""
    d_s, d_t = len(student_states) - 1, len(teacher_states) - 1
    keep = mask.bool()
    total = 0.0
    for k, hs in enumerate(student_states):
        ht = teacher_states[round(k * d_t / d_s)]
        total = total + F.mse_loss(hs[keep].float(), ht[keep].float())
    return total / len(student_states)


class DistillationObjective(nn.Module):
    """The distillation loss in PretrainingObjective's shape: forward(batch) -> (loss, kl, mse, stats).

    The teacher is held outside the module tree (not a sub-module): it is never trained, saved
    in the student's checkpoint, or wrapped by DistributedDataParallel."""

    def __init__(self, model: nn.Module, teacher: nn.Module, *, task: bool, temperature: float,
                 kl_weight: float, hidden_weight: float):
        super().__init__()
        self.model = model
        self._teacher = (teacher,)
        self.task = task
        self.temperature = temperature
        self.kl_weight = kl_weight
        self.hidden_weight = hidden_weight
        self.log_names = ("kl", "hidden_mse", "teacher_agreement", None if task else "mlm_acc")

    def forward(self, input_ids, attention_mask, token_type_ids, labels, sentence_order_label):
        teacher = self._teacher[0]
        keep = labels != IGNORE_INDEX
        want_hidden = self.hidden_weight > 0
        if self.task:  # the task logits of the example as written: its masked tokens restored
            ids = torch.where(keep, labels, input_ids)
            with torch.no_grad():
                t_out = teacher(ids, attention_mask, token_type_ids, output_hidden_states=want_hidden)
            s_out = self.model(ids, attention_mask, token_type_ids, output_hidden_states=want_hidden)
            s_logits, t_logits = s_out.logits, t_out.logits
            s_states, t_states = s_out.hidden_states, t_out.hidden_states
        else:
            with torch.no_grad():
                t_base = teacher.albert(input_ids, attention_mask, token_type_ids, output_hidden_states=want_hidden)
                t_logits = teacher.mlm_head(t_base.last_hidden_state[keep], teacher.albert.embeddings.word.weight)
            s_base = self.model.albert(input_ids, attention_mask, token_type_ids, output_hidden_states=want_hidden)
            s_logits = self.model.mlm_head(s_base.last_hidden_state[keep], self.model.albert.embeddings.word.weight)
            s_states, t_states = s_base.hidden_states, t_base.hidden_states
        kl = kl_at_temperature(s_logits, t_logits, self.temperature)
        mse = hidden_mse(s_states, t_states, attention_mask) if want_hidden else kl.new_zeros(())
        loss = self.kl_weight * kl + self.hidden_weight * mse
        with torch.no_grad():
            agree = (s_logits.argmax(-1) == t_logits.argmax(-1)).sum().float()
            n = torch.tensor(float(s_logits.shape[0]))
            ok = (s_logits.argmax(-1) == labels[keep]).sum().float() if not self.task else torch.tensor(0.0)
            stats = torch.stack([agree, n, ok, n if not self.task else torch.tensor(0.0)])
        return loss, kl.detach(), mse.detach(), stats


# ------------------------------------------------------------------------------ the plugin
def _architecture(folder: Path) -> str:
    return (AlbertConfig.from_json(folder / "config.json").extra.get("architectures") or ["AlbertModel"])[0]


class DistillPlugin:
    """What train._train asks of a plugin: the student's config, class, start and objective."""

    resume_keys = ("teacher", "student", "task", "layer_calls", "temperature", "kl_weight", "hidden_weight")

    def __init__(self, args):
        from .. import model as M

        self.args = args
        teacher_dir = Path(args.teacher)
        arch = _architecture(teacher_dir)
        if args.task:
            if arch != "AlbertForSequenceClassification":
                raise DistillError(f"--task distils a fine-tuned sequence classifier; the teacher {args.teacher} is "
                                   f"an {arch} checkpoint")
            self.model_class = M.AlbertForSequenceClassification
        else:
            if arch not in ("AlbertForPreTraining", "AlbertForMaskedLM"):
                raise DistillError(f"the teacher {args.teacher} is an {arch} checkpoint without an MLM head: MLM "
                                   "distillation needs AlbertForPreTraining or AlbertForMaskedLM (for a fine-tuned "
                                   "classifier, distil its task logits with --task FILE)")
            self.model_class = M.AlbertForPreTraining
        load_cls = self.model_class if args.task else getattr(M, arch)
        self.teacher = load_cls.from_pretrained(teacher_dir).float().eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.student_dir = None
        if args.student and Path(args.student).is_dir():
            self.student_dir = Path(args.student)

    def student_config(self, args, vocab_size: int) -> AlbertConfig:
        t = self.teacher.config
        if self.student_dir is not None:
            config = AlbertConfig.from_json(self.student_dir / "config.json")
        elif args.student:
            if Path(args.student).is_file() or args.student.endswith(".json"):
                config = AlbertConfig.from_json(args.student)
            elif official_name(args.student) is not None:
                config = AlbertConfig.from_preset(args.student)
            else:
                raise DistillError(f"--student {args.student!r} is neither a checkpoint directory, a config.json "
                                   "nor a preset name")
            # the task head's labels are the teacher's
            config = config.replace(num_labels=t.num_labels, id2label=t.id2label, label2id=t.label2id,
                                    problem_type=t.problem_type)
        else:
            config = t.replace(extra={})
        if config.vocab_size != t.vocab_size or config.vocab_size != vocab_size:
            raise DistillError(f"the student's vocabulary ({config.vocab_size} pieces) differs from the teacher's "
                               f"({t.vocab_size}): the KL compares scores of the same tokens, so they must be equal")
        if args.layer_calls is not None:
            if config.sharing == "all":  # transformers then loads the student as it runs
                config = config.replace(num_hidden_layers=args.layer_calls, num_layer_calls=None)
            else:
                config = config.replace(num_layer_calls=args.layer_calls)
        if args.hidden_weight > 0 and config.hidden_size != t.hidden_size:
            raise DistillError(f"hidden-state MSE needs the teacher's hidden size ({t.hidden_size}), the student has "
                               f"{config.hidden_size}: use --hidden-weight 0")
        if args.max_seq_length > config.max_position_embeddings:
            raise DistillError(f"--max-seq-length {args.max_seq_length} exceeds the student's "
                               f"max_position_embeddings ({config.max_position_embeddings})")
        return config.replace(extra={k: v for k, v in config.extra.items() if k not in ("architectures", "_name_or_path")})

    def init(self, model: nn.Module) -> None:
        """Start from the student checkpoint's weights, else the teacher's where every shape agrees."""
        if self.student_dir is not None:
            from ..hub import ModelSource
            from ..weights import find_weights, load_state_dict_into, read_state_dict

            path = find_weights(ModelSource(self.student_dir))
            load_state_dict_into(model, read_state_dict(path), strict=False, source=str(path))
            self.started_from = str(self.student_dir)
            return
        mine, theirs = model.state_dict(), self.teacher.state_dict()
        if set(mine) <= set(theirs) and all(mine[k].shape == theirs[k].shape for k in mine):
            model.load_state_dict({k: theirs[k] for k in mine})
            self.started_from = "the teacher's weights"
        else:
            self.started_from = "a fresh initialization (shapes differ from the teacher's)"

    def objective(self, model: nn.Module, device) -> nn.Module:
        self.teacher.to(device)
        a = self.args
        return DistillationObjective(model, self.teacher, task=bool(a.task), temperature=a.temperature,
                                     kl_weight=a.kl_weight, hidden_weight=a.hidden_weight)


# ------------------------------------------------------------------------------------ CLI
def build_parser() -> argparse.ArgumentParser:
    from .train import build_parser as pretrain_parser

    p = pretrain_parser()
    p.prog = "minialbert distill"
    p.allow_abbrev = False
    p.description = __doc__.split("\n\n")[0]
    for group in p._mutually_exclusive_groups:  # --corpus/--data are optional with --task (its texts are the corpus)
        if any(action.dest == "corpus" for action in group._group_actions):
            group.required = False
    g = p.add_argument_group("distillation")
    g.add_argument("--teacher", required=True, metavar="DIR", help="the teacher checkpoint (with an MLM head, or "
                   "a fine-tuned sequence classifier with --task)")
    g.add_argument("--student", default=None, metavar="CONFIG_OR_DIR",
                   help="student config.json / preset, or a checkpoint directory to start from "
                        "(default: the teacher's config and weights)")
    g.add_argument("--layer-calls", type=int, default=None, metavar="N", help="the student runs N layer calls")
    g.add_argument("--task", default=None, metavar="FILE",
                   help="a `minialbert finetune` table (text[, text_pair]) whose texts become the corpus; the KL "
                        "is then on the teacher's task logits")
    g.add_argument("--temperature", type=float, default=2.0)
    g.add_argument("--kl-weight", type=float, default=1.0)
    g.add_argument("--hidden-weight", type=float, default=1.0, help="weight of the hidden-state MSE (0: off)")
    p.set_defaults(lr=1e-4, optimizer="adamw", warmup_steps=None)
    return p


def _task_corpus(path: str, out: Path) -> str:
    """The task table's texts as a corpus file in OUT (one document per example: text, then pair)."""
    from ..finetune.data import read_examples

    examples = read_examples(path, "classify", require_labels=False)
    out.mkdir(parents=True, exist_ok=True)
    corpus = out / "task_corpus.txt"
    text = "\n\n".join("\n".join(x for x in (e.text, e.text_pair) if x) for e in examples) + "\n"
    if not corpus.exists() or corpus.read_text(encoding="utf-8") != text:
        corpus.write_text(text, encoding="utf-8")
    return str(corpus)


def main(argv: list[str] | None = None) -> int:
    from ..argv import attach_negative_values
    from ..training import run_distributed
    from .train import _check_args, _train

    parser = build_parser()
    args = parser.parse_args(attach_negative_values(parser, sys.argv[1:] if argv is None else list(argv)))
    given = [f for f in SIZE_FLAGS if getattr(args, f, None) is not None] + (["config"] if args.config else [])
    if given:
        parser.error(f"--{given[0].replace('_', '-')} does not apply to distill: describe the student with "
                     "--student CONFIG_OR_DIR and/or --layer-calls N")
    if args.vocab:
        parser.error("--vocab does not apply to distill: the student uses the teacher's tokenizer")
    if args.layer_calls is not None and args.layer_calls < 1:
        parser.error(f"--layer-calls must be at least 1, got {args.layer_calls}")
    if args.temperature <= 0:
        parser.error(f"--temperature must be positive, got {args.temperature}")
    if args.kl_weight < 0 or args.hidden_weight < 0 or args.kl_weight + args.hidden_weight == 0:
        parser.error("--kl-weight and --hidden-weight must be >= 0, and not both 0")
    if args.data:
        parser.error("--data does not apply to distill: give --corpus FILE (prepared with the teacher's tokenizer)")
    if not args.corpus and not args.task:
        parser.error("give --corpus FILE (MLM distillation) or --task FILE")
    try:
        _check_args(args)
    except PretrainError as e:
        parser.error(str(e).removeprefix("pretrain: "))
    teacher = Path(args.teacher)
    if not (teacher / "config.json").is_file():
        raise DistillError(f"--teacher {args.teacher}: not a checkpoint directory (no config.json)")
    if not (teacher / "spiece.model").is_file():
        raise DistillError(f"--teacher {args.teacher} has no spiece.model: the student needs the teacher's tokenizer")
    args.teacher = str(teacher.resolve())
    args.vocab = str(teacher / "spiece.model")
    compat_file = teacher / "tokenizer_config.json"
    if compat_file.is_file():
        args.tokenizer_compat = json.loads(compat_file.read_text()).get("minialbert_compat", args.tokenizer_compat)
    if args.task:
        args.corpus = [_task_corpus(args.task, Path(args.output_dir)), *(args.corpus or [])]
    if args.threads:
        torch.set_num_threads(args.threads)
    plugin = DistillPlugin(args)
    def train(dist) -> int:
        code = _train(args, dist, plugin)
        if dist.main and not args.quiet and hasattr(plugin, "started_from"):
            print(f"the student started from {plugin.started_from}", flush=True)
        return code

    return run_distributed(args.device, train, PretrainError, "pretrain: ")


__all__ = ["DistillPlugin", "DistillationObjective", "hidden_mse", "kl_at_temperature", "main"]
