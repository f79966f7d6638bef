"""Fine-tune ALBERT on a labelled task: classification, regression, tagging or extractive QA.

    minialbert finetune --task classify --model albert-base-v2 --train train.tsv --dev dev.tsv \\
        --text-column sentence --output-dir out --lr 1e-5 --batch-size 32 --max-steps 20935 --warmup-steps 1256
    minialbert finetune --task qa --model albert-base-v2 --train train-v2.0.json --dev dev-v2.0.json \\
        --output-dir squad2 --max-length 384 --doc-stride 128 --lr 5e-5 --batch-size 48 --epochs 2
    minialbert finetune ... --resume        # continue after a crash or kill, exactly

What happens, in order:
  1. the data are read and checked (columns, labels, SQuAD shape); the label set comes from
     --labels, else from a fine-tuned --model's id2label, else from the training file;
  2. the --model checkpoint is loaded with the task's head (model.py section 7); a head the
     checkpoint lacks is initialised (seeded by --seed);
  3. step s trains on a batch that is a pure function of (seed, s): a per-epoch permutation of the
     training examples, cut into batches of batch-size x grad-accum; AdamW (no decay on biases and
     LayerNorm), linear warm-up then linear decay to 0, gradient clipping, optional bf16 autocast;
  4. every --eval-every steps the dev set is scored; the best checkpoint so far (by --metric) is
     OUT/{config.json, model.safetensors} with the tokenizer beside it, loadable by minialbert and
     transformers alike;
  5. every --save-every steps, and when the run is interrupted (Ctrl-C, SIGTERM: at the end of
     the step), OUT/checkpoint/trainer_state.pt holds the model, optimizer, step, RNG state and
     evaluation history (written to a temp file and renamed), so --resume continues with exactly
     the batches and dropout masks of an uninterrupted run; a finished run deletes it (nothing is
     left to resume) unless --save-final-state keeps the last step's;
  6. OUT/log.jsonl gets the training loss (the mean over all ranks) and every evaluation;
     OUT/metrics.json the summary.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import signal
import sys
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from ..errors import MinialbertError
from . import FinetuneError
from .data import check_labels, collate, collect_labels, encode_examples, encode_tagged, \
    read_examples, read_tagged
from ..training import Dist, autocast, compile_module, run_distributed  # shared with pre-training
from ..training import rng_state as _rng_state, set_rng_state as _set_rng_state
from .options import METRICS, _check_args, _device, build_parser  # noqa: F401  (the command line)
from .metrics import accuracy, entity_f1, macro_f1, matthews_corrcoef, pearson, spearman, squad_scores

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "trainer_state.pt"
LOG_FILE = "log.jsonl"
METRICS_FILE = "metrics.json"
HEADS = {"classify": "AlbertForSequenceClassification", "regression": "AlbertForSequenceClassification",
         "multilabel": "AlbertForSequenceClassification", "tag": "AlbertForTokenClassification",
         "qa": "AlbertForQuestionAnswering"}
PROBLEM_TYPES = {"classify": "single_label_classification", "regression": "regression",
                 "multilabel": "multi_label_classification"}
# Options that do not change what is computed: they may differ between a run and its --resume.
_FREE_ON_RESUME = {"resume", "overwrite", "quiet", "kill_after_step", "interrupt_after_step", "threads", "compile",
                   "compile_backend", "save_final_state"}


# -------------------------------------------------------------------------------- data
class TaskData:
    """The task's examples, label names and encoded features, for training and dev."""

    def __init__(self, args, tokenizer, model_config):
        self.task = args.task
        self.version_2 = False
        self.dev_examples = None
        if args.task == "qa":
            from .squad import make_features, read_squad

            train, self.version_2 = read_squad(args.train)
            self.labels = None
            window = dict(max_length=args.max_length, doc_stride=args.doc_stride, max_query_length=args.max_query_length)
            self.train = make_features(train, tokenizer, training=True, **window)
            if args.dev:
                self.dev_examples, dev_v2 = read_squad(args.dev, require_answers=False)
                self.version_2 = self.version_2 or dev_v2
                self.dev = make_features(self.dev_examples, tokenizer, **window)
            self.n_train_examples = len(train)
            return
        if args.task == "tag":
            def read(path):
                return read_tagged(path, tokens_column=args.text_column, tags_column=args.label_column)

            train = read(args.train)
            dev = read(args.dev) if args.dev else None
            names = [(t, s.line) for s in train for t in s.tags]
            dev_names = [(t, s.line) for s in dev for t in s.tags] if dev else []
        else:
            def read(path):
                return read_examples(path, args.task, text_column=args.text_column, pair_column=args.pair_column,
                                     label_column=args.label_column, label_separator=args.label_separator)

            train = read(args.train)
            dev = read(args.dev) if args.dev else None
            if args.task == "multilabel":
                names = [(n, e.line) for e in train for n in e.label]
                dev_names = [(n, e.line) for e in dev for n in e.label] if dev else []
            else:
                names = [(e.label, e.line) for e in train]
                dev_names = [(e.label, e.line) for e in dev] if dev else []
        self.n_train_examples = len(train)
        if args.task == "regression":
            self.labels = None
            label2id = None
        else:
            self.labels = self._label_names(args, [n for n, _ in names], model_config)
            label2id = {n: i for i, n in enumerate(self.labels)}
            check_labels(names, label2id, args.train)
            if dev:
                check_labels(dev_names, label2id, args.dev)
        if args.task == "tag":
            self.train = encode_tagged(train, tokenizer, label2id, args.max_length)
            if dev:
                self.dev_examples = dev
                self.dev = encode_tagged(dev, tokenizer, label2id, args.max_length)
        else:
            self.train = encode_examples(train, tokenizer, args.task, label2id, args.max_length)
            if dev:
                self.dev_examples = dev
                self.dev = encode_examples(dev, tokenizer, args.task, label2id, args.max_length)

    @staticmethod
    def _label_names(args, train_names, model_config) -> list[str]:
        if args.labels:
            names = [n.strip() for n in args.labels.split(",") if n.strip()]
            if len(set(names)) != len(names) or not names:
                raise FinetuneError(f"--labels must name distinct labels, got {args.labels!r}")
            return names
        default = {i: f"LABEL_{i}" for i in range(model_config.num_labels)}
        if model_config.id2label != default:  # a fine-tuned checkpoint: keep its labels and their ids
            return [model_config.id2label[i] for i in range(model_config.num_labels)]
        return collect_labels(train_names)

    @property
    def has_dev(self) -> bool:
        return self.dev_examples is not None


def _label_dtype(task: str):
    return torch.long if task in ("classify", "tag") else torch.float32


def make_batch(task: str, features, pad_id: int) -> dict[str, torch.Tensor]:
    if task == "qa":
        batch = collate(features, pad_id, with_labels=False)
        batch["start_positions"] = torch.tensor([f.start_position for f in features])
        batch["end_positions"] = torch.tensor([f.end_position for f in features])
        return batch
    return collate(features, pad_id, _label_dtype(task))


class BatchOrder:
    """The examples of step s: positions s*B .. (s+1)*B - 1 of the endless sequence made of one
    seeded permutation per epoch. A pure function of (seed, s): a resumed run gets the same ones."""

    def __init__(self, n: int, global_batch: int, seed: int):
        self.n, self.global_batch, self.seed = n, global_batch, seed

    @functools.lru_cache(maxsize=4)
    def permutation(self, epoch: int) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def step(self, s: int) -> list[int]:
        out = []
        for k in range(s * self.global_batch, (s + 1) * self.global_batch):
            epoch, pos = divmod(k, self.n)
            out.append(self.permutation(epoch)[pos])
        return out


# -------------------------------------------------------------------------- evaluation
def evaluate(model, data: TaskData, args, pad_id: int) -> dict[str, float]:
    """Dev metrics for the task (model put in eval mode, then back to train mode)."""
    from ..tasks import forward_in_batches

    kind = {"tag": "token", "qa": "qa"}.get(data.task, "sequence")
    model.eval()
    try:
        outputs = forward_in_batches(model, data.dev, pad_id, batch_size=args.eval_batch_size, kind=kind)
    finally:
        model.train()
    if data.task == "qa":
        from .squad import decode_answers

        answers = decode_answers(data.dev_examples, data.dev, [s for s, _ in outputs], [e for _, e in outputs],
                                 n_best=args.n_best, max_answer_length=args.max_answer_length,
                                 version_2=data.version_2, null_threshold=args.null_threshold)
        golds = [[t for t, _ in e.answers] for e in data.dev_examples]
        return squad_scores(golds, [a[0].text for a in answers])
    if data.task == "tag":
        gold, pred, ok, total = [], [], 0, 0
        for sentence, feature, logits in zip(data.dev_examples, data.dev, outputs):
            tags = ["O" if t is None else data.labels[int(np.argmax(logits[t]))] for t in feature.first_token_of_word]
            gold.append(sentence.tags)
            pred.append(tags)
            ok += sum(g == p for g, p in zip(sentence.tags, tags))
            total += len(tags)
        return {**entity_f1(gold, pred), "token_accuracy": ok / max(1, total)}
    logits = np.stack(outputs)
    gold = [f.labels for f in data.dev]
    if data.task == "regression":
        pred = logits[:, 0].tolist()
        return {"pearson": pearson(gold, pred), "spearman": spearman(gold, pred),
                "mse": float(np.mean((np.asarray(gold) - np.asarray(pred)) ** 2))}
    if data.task == "multilabel":
        chosen = logits > 0  # sigmoid(logit) > 0.5
        truth = np.asarray(gold) > 0.5
        tp = int((chosen & truth).sum())
        denom = int(chosen.sum() + truth.sum())
        return {"micro_f1": 2 * tp / denom if denom else 0.0,
                "subset_accuracy": float(np.mean((chosen == truth).all(axis=1)))}
    pred = logits.argmax(axis=1).tolist()
    return {"accuracy": accuracy(gold, pred), "macro_f1": macro_f1(gold, pred), "mcc": matthews_corrcoef(gold, pred)}


# ------------------------------------------------------------------------- state & files
def _write_json(path: Path, obj) -> None:
    from ..files import atomic_write

    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8"))


def _check_writable(out: Path) -> None:
    """Fail at once, with one line, if `out` cannot be created or written, without creating it."""
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise FinetuneError(f"cannot create {out}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise FinetuneError(f"cannot create {out}: {existing} is not writable")


def _saved_args(args) -> dict:
    return {k: v for k, v in vars(args).items() if k not in _FREE_ON_RESUME}


def _load_state(path: Path, args) -> dict:
    if not path.is_file():
        raise FinetuneError(f"--resume: no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise FinetuneError(f"--resume: cannot read {path}: {str(e).splitlines()[0][:200]}") from None
    saved, now = state["args"], _saved_args(args)
    for key in sorted(set(saved) | set(now)):
        if saved.get(key) != now.get(key):
            flag = "--" + key.replace("_", "-")
            raise FinetuneError(f"--resume: {flag} differs from the checkpoint ({saved.get(key)!r} there, "
                                f"{now.get(key)!r} now); resume with the same options, or start afresh with --overwrite")
    return state


# --------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    """Entry point (scripts/finetune.py, `minialbert finetune`). Bad flags print the usage and exit
    2, as in every command; other user mistakes raise MinialbertError (one line, exit 1)."""
    from ..argv import attach_negative_values

    parser = build_parser()
    args = parser.parse_args(attach_negative_values(parser, sys.argv[1:] if argv is None else list(argv)))
    try:
        _check_args(args)
    except FinetuneError as e:  # a flag value out of range: a usage error too (exit 2)
        parser.error(str(e))
    if args.threads:
        torch.set_num_threads(args.threads)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # torchrun: data-parallel, one process per rank
        return run_distributed(args.device, lambda dist: _train(args, dist), FinetuneError)
    return _train(args)


def _say(args, message: str) -> None:
    if not args.quiet:
        print(message, file=sys.stderr, flush=True)


class _Interrupt:
    """Ctrl-C (SIGINT) or SIGTERM while training: noted by a handler and acted on at the end of
    the step (the trainer state is then whole: never half an optimizer update). A second Ctrl-C
    interrupts at once. Under torchrun the ranks agree (a one-number all_reduce a step), since
    saving the state is a collective."""

    def __init__(self):
        self.signum = 0
        self.previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: no handler, Python's default behaviour
                pass

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    def _handle(self, signum, frame):
        if self.signum:  # the second time: stop now
            self.restore()
            raise KeyboardInterrupt
        self.signum = signum

    def requested(self, dist: Dist) -> bool:
        if dist.enabled:
            anyone = dist.all_sum(torch.tensor([float(self.signum > 0)], dtype=torch.float64))[0].item()
            if anyone and not self.signum:  # another rank was interrupted
                self.signum = signal.SIGINT
        return bool(self.signum)

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}


def _train(args, dist: Dist | None = None) -> int:
    from .. import model as M
    from ..config import AlbertConfig
    from ..hub import ModelSource
    from ..pretrain.optim import lr_at, make_optimizer
    from ..tokenizer import AlbertTokenizer
    from ..weights import NewHeadWarning, move_model

    out = Path(args.output_dir)
    state_path = out / CHECKPOINT_DIR / STATE_FILE
    device = dist.device if dist is not None else _device(args.device)
    if dist is None:
        dist = Dist("cpu")  # one process (WORLD_SIZE unset): no process group
    main = dist.main
    state = None
    if args.resume:
        if not state_path.is_file() and (out / METRICS_FILE).is_file():
            raise FinetuneError(f"--resume: the run in {out} has finished ({METRICS_FILE}); nothing to resume "
                                "(start afresh with --overwrite)")
        state = _load_state(state_path, args)
    elif (state_path.exists() or (out / METRICS_FILE).exists()) and not args.overwrite:
        raise FinetuneError(f"{out} already holds a fine-tuning run: pass --resume to continue it or --overwrite")
    _check_writable(out)  # early, before the model and data are read; created only once they are

    # 1. tokenizer, config, data
    if state is None:
        source = ModelSource(args.model, revision=args.revision, cache_dir=args.cache_dir, local_files_only=args.offline)
        folder = source.checkpoint_folder()
        tokenizer = AlbertTokenizer.from_pretrained(folder)
        base_config = AlbertConfig.from_json(folder / "config.json")
    else:
        folder = None
        tokenizer = AlbertTokenizer.from_pretrained(out)
        base_config = AlbertConfig.from_dict(state["config"])
    data = TaskData(args, tokenizer, base_config)
    if not data.train:
        raise FinetuneError(f"{args.train}: no training examples")
    global_batch = dist.world * args.batch_size * args.grad_accum
    max_steps = args.max_steps or max(1, math.ceil(args.epochs * len(data.train) / global_batch))
    warmup = args.warmup_steps if args.warmup_steps is not None else round(args.warmup_ratio * max_steps)
    if not 0 <= warmup <= max_steps:
        raise FinetuneError(f"--warmup-steps must be in [0, {max_steps}], got {warmup}")
    steps_per_epoch = max(1, math.ceil(len(data.train) / global_batch))
    eval_every = args.eval_every or steps_per_epoch
    save_every = args.save_every or eval_every

    # 2. model
    cls = getattr(M, HEADS[args.task])
    if state is None:
        changes = {}
        if args.classifier_dropout is not None:
            changes["classifier_dropout_prob"] = args.classifier_dropout
        if args.dropout is not None:
            changes.update(hidden_dropout_prob=args.dropout, attention_probs_dropout_prob=args.dropout)
        config = base_config.replace(**changes)
        if args.task in PROBLEM_TYPES:
            labels = data.labels if data.labels is not None else ["LABEL_0"]
            config = config.with_labels(labels, problem_type=PROBLEM_TYPES[args.task])
        if args.task == "qa":  # two outputs (start, end); whether "no answer" is a possible answer
            config = config.with_labels(2).replace(extra={**config.extra, "version_2_with_negative": data.version_2})
        elif args.task == "tag":
            config = config.with_labels(data.labels)
        config = config.replace(extra={k: v for k, v in config.extra.items() if k not in ("_name_or_path",)})
        torch.manual_seed(args.seed)  # the new head's initial weights
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", NewHeadWarning)
            # a head of another width (a checkpoint fine-tuned on other labels) is replaced too
            model = cls.from_pretrained(folder, config=config, ignore_mismatched_sizes=True)
        for w in caught:
            if issubclass(w.category, NewHeadWarning):
                _say(args, f"finetune: {args.model} has no trained {HEADS[args.task]} head: starting from a new one")
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    else:
        config = AlbertConfig.from_dict(state["config"])
        model = cls(config)
        model.load_state_dict(state["model"])
    move_model(model, device)
    model.train()
    optimizer = make_optimizer(model, "adamw", args.lr, args.weight_decay, (args.adam_beta1, args.adam_beta2),
                               args.adam_eps)
    step, history, best = 0, [], None
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        step, history, best = state["step"], state["history"], state["best"]
        rng = state["rng"]
        _set_rng_state(rng[dist.rank] if isinstance(rng, list) else rng, device)
    else:
        torch.manual_seed(args.seed + 1 + dist.rank)  # dropout masks (rank 0 as without torchrun)
        if main:
            try:  # everything a run needs has loaded: only now does the output folder appear
                out.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise FinetuneError(f"cannot create {out}: {e.strerror}") from None
            tokenizer.save_pretrained(out)
            (out / "train_args.json").write_text(json.dumps(vars(args), indent=2, default=str) + "\n")
            if not data.has_dev:
                model.save_pretrained(out)
    ddp = dist.wrap(model)  # DistributedDataParallel with torchrun, else the model itself
    step_model = compile_module(ddp, args.compile, args.compile_backend)
    pad_id = tokenizer.pad_token_id
    order = BatchOrder(len(data.train), global_batch, args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    say_args = args if main else argparse.Namespace(quiet=True)  # one rank speaks
    _say(say_args, f"finetune: {args.task} on {data.n_train_examples:,} examples ({len(data.train):,} inputs)"
               + (f", {len(data.labels)} labels" if data.labels else "")
               + f"; {n_params:,} parameters on {device.type}; {max_steps} steps of {global_batch} "
               f"({max_steps * global_batch / len(data.train):.2f} epochs), warm-up {warmup}; "
               + (f"resuming at step {step}" if step else "from the start"))

    amp = autocast(device, args.bf16)
    log = open(out / LOG_FILE if main else os.devnull, "a" if state is not None else "w", encoding="utf-8")
    start_time = time.perf_counter()
    window_loss, window_n = 0.0, 0
    last_eval = history[-1] if history else None

    def save_state():
        from ..files import atomic_write

        rngs = dist.gather(_rng_state(device))
        if not main:
            return
        state = {"step": step, "config": config.to_dict(), "model": model.state_dict(),
                 "optimizer": optimizer.state_dict(), "rng": rngs[0] if dist.world == 1 else rngs,
                 "history": history, "best": best, "args": _saved_args(args)}
        state_path.parent.mkdir(exist_ok=True)
        atomic_write(state_path, lambda tmp: torch.save(state, tmp))

    def run_eval():
        nonlocal best, last_eval
        if not main:  # rank 0 evaluates; the others wait for it
            dist.barrier()
            return
        scores = evaluate(model, data, args, pad_id)
        record = {"step": step, "epoch": round(step * global_batch / len(data.train), 4), **scores}
        history.append(record)
        last_eval = record
        log.write(json.dumps({"event": "eval", **record}) + "\n")
        log.flush()
        if best is None or scores[args.metric] > best[args.metric]:
            best = record
            model.save_pretrained(out)
        dist.barrier()

    progress, postfix = None, {}
    interrupt = _Interrupt()
    if not args.quiet and main:
        from tqdm import tqdm

        progress = tqdm(total=max_steps, initial=step, desc="finetune", unit="step", dynamic_ncols=True,
                        file=sys.stderr)
    try:
        while step < max_steps:
            lr = lr_at(args.lr, warmup, max_steps, step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            indices = order.step(step)[dist.rank::dist.world]  # this rank's share of the global batch
            for j in range(args.grad_accum):
                micro = [data.train[i] for i in indices[j * args.batch_size:(j + 1) * args.batch_size]]
                batch = {k: v.to(device) for k, v in make_batch(args.task, micro, pad_id).items()}
                sync = nullcontext() if (not dist.enabled or j == args.grad_accum - 1) else ddp.no_sync()
                with sync:
                    with amp:
                        loss = step_model(**batch).loss
                    (loss / args.grad_accum).backward()
                window_loss += loss.item()
                window_n += 1
            if args.interrupt_after_step is not None and step + 1 == args.interrupt_after_step:
                os.kill(os.getpid(), signal.SIGINT)  # tests: Ctrl-C in the middle of a step
            if args.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step % args.log_every == 0 or step == max_steps:
                # the mean over every rank's micro-batches (each rank holds only its own losses)
                total = dist.all_sum(torch.tensor([window_loss, float(window_n)], dtype=torch.float64))
                record = {"step": step, "loss": total[0].item() / total[1].item(), "lr": lr,
                          "elapsed_s": round(time.perf_counter() - start_time, 3)}
                log.write(json.dumps(record) + "\n")
                log.flush()
                window_loss, window_n = 0.0, 0
                postfix["loss"] = f"{record['loss']:.4f}"
            if data.has_dev and (step % eval_every == 0 or step == max_steps):
                run_eval()
                if last_eval is not None:
                    postfix[f"dev_{args.metric}"] = f"{last_eval[args.metric]:.4f}"
            if step % save_every == 0 or step == max_steps:
                if not data.has_dev and main:
                    model.save_pretrained(out)
                if step < max_steps or args.save_final_state:  # a finished run has nothing to resume
                    save_state()
            if progress is not None:
                progress.set_postfix(postfix, refresh=False)
                progress.update(1)
            if args.kill_after_step is not None and step == args.kill_after_step:
                os.kill(os.getpid(), signal.SIGKILL)  # simulate a crash (tests)
            if step < max_steps and interrupt.requested(dist):
                if step % save_every:  # else just saved
                    save_state()
                if progress is not None:
                    progress.close()
                    progress = None
                if main:  # said even with --quiet: the run did not finish
                    print(f"finetune: interrupted ({interrupt.name}) after step {step} of {max_steps}; the trainer "
                          f"state is in {state_path}: continue with the same command and --resume",
                          file=sys.stderr, flush=True)
                # as an uncaught signal would: a caller (glue, a notebook) stops too; the CLI exits 130
                if interrupt.signum == signal.SIGINT:
                    raise KeyboardInterrupt
                raise SystemExit(128 + interrupt.signum)
    finally:
        interrupt.restore()
        if progress is not None:
            progress.close()
        log.close()

    if main and not args.save_final_state and state_path.is_file():
        state_path.unlink()  # an earlier step's state: the finished run has nothing left to resume

    if not main:
        return 0
    summary = {
        "task": args.task, "model": args.model, "metric": args.metric, "steps": step,
        "epochs": round(step * global_batch / len(data.train), 4), "train_examples": data.n_train_examples,
        "train_inputs": len(data.train), "dev_examples": len(data.dev_examples) if data.has_dev else 0,
        "labels": data.labels, "best": best, "final": history[-1] if history else None, "history": history,
        "runtime_s": round(time.perf_counter() - start_time, 3),
    }
    _write_json(out / METRICS_FILE, summary)
    if best is not None:
        _say(args, f"finetune: best dev {args.metric} {best[args.metric]:.4f} at step {best['step']}; "
                   f"model in {out}, metrics in {out / METRICS_FILE}")
    else:
        _say(args, f"finetune: done, {step} steps; model in {out}")
    return 0


if __name__ == "__main__":  # python -m minialbert.finetune.train
    try:
        sys.exit(main())
    except MinialbertError as e:
        print(f"minialbert finetune: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:  # Ctrl-C: the run said where its state is
        sys.exit(130)
