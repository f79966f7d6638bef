"""Pre-train ALBERT from scratch on a prepared corpus (MLM with n-gram masking + SOP).

    minialbert pretrain-data corpus/ --output data --vocab-size 8000 --valid-fraction 0.01
    python scripts/pretrain.py --data data --output-dir out \\
        --hidden-size 256 --num-layers 6 --num-heads 4 --intermediate-size 1024 \\
        --max-seq-length 128 --batch-size 32 --max-steps 2000 [--compile] [--bf16]
    python scripts/pretrain.py --corpus corpus.txt ...     # prepares into OUT/data first, then the same
    torchrun --nproc_per_node 2 scripts/pretrain.py ...     # same flags, DistributedDataParallel

What happens, in order:
  1. the prepared data (prepare.py: token-id shards, read by offset; --corpus prepares them into
     OUT/data first, on rank 0) and its tokenizer (minialbert.AlbertTokenizer, the data's
     --tokenizer-compat), saved as OUT/spiece.model + OUT/tokenizer_config.json, so inference
     tokenizes exactly as the data was tokenized;
  2. documents become sentence-order pairs; step s uses a batch that is a pure function of s
     (see data.py), each rank taking its own shard;
  3. each optimizer step runs --grad-accum micro-batches (gradients synchronized on the last
     only), clips the gradient norm, and steps LAMB or AdamW with linear warm-up/decay;
  4. every --save-every steps: OUT/checkpoint/trainer_state.pt (model, optimizer, step, RNG
     states of every rank) and OUT/{config.json, model.safetensors}, each written to a temp file
     and renamed, so a crash leaves the previous checkpoint intact; --resume continues from it
     with exactly the batches the uninterrupted run would have used;
  5. every --log-every steps: MLM loss, MLM accuracy, SOP loss/accuracy, lr, tokens/s (MFU with
     --peak-tflops) on stdout and in OUT/log.jsonl (TensorBoard too with --report-to tensorboard);
     every --eval-every steps the loss on the held-out split.

The output directory loads with minialbert.AlbertModel.from_pretrained(OUT) (or
AlbertForPreTraining, Embedder, FillMask, AlbertTokenizer), and with transformers when --sharing
is "all" (and --tokenizer-compat is "transformers", the algorithm transformers implements).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import AlbertConfig
from ..errors import ConfigError
from ..training import (REPORT_TO, Dist, ExperimentLog, Progress, add_speed_args, autocast, compile_module, rng_state,
                        run_distributed, set_rng_state, train_flops_per_token)
from . import PretrainError
from .data import TOKENIZER_COMPATS, PretrainingData, Vocab
from .objectives import PretrainingObjective
from .optim import lr_at, make_optimizer
from .prepare import PreparedData, file_sha256, open_pairs, prepare

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "trainer_state.pt"
LOG_FILE = "log.jsonl"
# Arguments that fix the data stream or the model: a resumed run must use the same values.
_RESUME_MUST_MATCH = ("data_fingerprint", "seed", "max_seq_length", "short_seq_prob", "masked_lm_prob",
                      "max_predictions", "max_ngram", "global_batch", "tokenizer_compat")


def build_parser() -> argparse.ArgumentParser:
    # A plain argparse parser: bad flags print usage and exit with status 2, as in every
    # other minialbert command.
    p = argparse.ArgumentParser(prog="minialbert pretrain", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    io = p.add_argument_group("data and output")
    source = io.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="DATA_DIR", help="a directory made by `minialbert pretrain-data`")
    source.add_argument("--corpus", nargs="+", metavar="FILE",
                        help="corpus file(s), directories or globs (.txt with blank-line-separated documents, "
                             ".jsonl/.parquet with --field, .gz): prepared into OUTPUT_DIR/data first")
    io.add_argument("--field", default=None, help="--corpus: the text field of .jsonl/.parquet rows (default: text)")
    io.add_argument("--valid-fraction", type=float, default=0.0,
                    help="--corpus: share of documents held out for the validation loss (default 0)")
    io.add_argument("--output-dir", required=True, help="where the model, vocabulary, logs and checkpoints go")
    io.add_argument("--vocab", help="an existing ALBERT-layout spiece.model (default: train one on the corpus); "
                                    "with --data, checked to be the one the data was prepared with")
    io.add_argument("--vocab-size", type=int, default=None,
                    help="size of the vocabulary to train (soft limit; default: the config's, 30000)")
    io.add_argument("--tokenizer-compat", choices=TOKENIZER_COMPATS, default=None,
                    help="AlbertTokenizer's algorithm: transformers (default; what transformers >= 5.25 does), "
                         "transformers<5.25 (5.24's ids for ( ) \" - .) or original (google-research ALBERT); "
                         "recorded in tokenizer_config.json. "
                         "With --data: the data's, which this must match if given")
    io.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/checkpoint")
    io.add_argument("--overwrite", action="store_true", help="start afresh even if OUTPUT_DIR holds a run")
    m = p.add_argument_group("model (a --config, then any size flag overrides it)")
    m.add_argument("--config", help="config.json path or preset name (albert-base-v2, ...); default albert-base-v2")
    m.add_argument("--embedding-size", type=int)
    m.add_argument("--hidden-size", type=int)
    m.add_argument("--num-layers", type=int, dest="num_hidden_layers")
    m.add_argument("--num-heads", type=int, dest="num_attention_heads")
    m.add_argument("--intermediate-size", type=int)
    m.add_argument("--num-hidden-groups", type=int)
    m.add_argument("--inner-group-num", type=int)
    m.add_argument("--sharing", choices=("all", "attention", "ffn", "none"))
    m.add_argument("--hidden-act")
    m.add_argument("--dropout", type=float, help="hidden and attention dropout probability")
    d = p.add_argument_group("examples")
    d.add_argument("--max-seq-length", type=int, default=128)
    d.add_argument("--short-seq-prob", type=float, default=0.1)
    d.add_argument("--masked-lm-prob", type=float, default=0.15)
    d.add_argument("--max-predictions", type=int, default=20, help="most masked tokens per sequence")
    d.add_argument("--max-ngram", type=int, default=3, help="longest masked span, in words")
    t = p.add_argument_group("optimization")
    t.add_argument("--batch-size", type=int, default=32, help="micro-batch per rank")
    t.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step")
    t.add_argument("--max-steps", type=int, default=1000, help="optimizer steps")
    t.add_argument("--optimizer", choices=("lamb", "adamw"), default="lamb")
    t.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    t.add_argument("--warmup-steps", type=int, default=None, help="default: 10%% of --max-steps")
    t.add_argument("--weight-decay", type=float, default=0.01)
    t.add_argument("--adam-beta1", type=float, default=0.9)
    t.add_argument("--adam-beta2", type=float, default=0.999)
    t.add_argument("--adam-eps", type=float, default=1e-6)
    t.add_argument("--lamb-bias-correction", action="store_true",
                   help="LAMB with the paper's bias correction (default: none, as ALBERT's own optimizer; "
                        "then give the warm-up at least ~100 steps)")
    t.add_argument("--max-grad-norm", type=float, default=1.0, help="0 disables clipping")
    add_speed_args(t)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda")
    t.add_argument("--threads", type=int, default=None, help="torch CPU threads per rank")
    t.add_argument("--seed", type=int, default=12345)
    o = p.add_argument_group("logging and checkpoints")
    o.add_argument("--log-every", type=int, default=10)
    o.add_argument("--eval-every", type=int, default=None,
                   help="steps between validation losses on the held-out split (default: --save-every)")
    o.add_argument("--eval-examples", type=int, default=1000, help="held-out examples per validation")
    o.add_argument("--report-to", choices=REPORT_TO, default="none",
                   help="also write TensorBoard event files to OUTPUT_DIR/tensorboard (extra: tensorboard)")
    o.add_argument("--peak-tflops", type=float, default=None,
                   help="the device's peak TFLOP/s (all ranks together count per rank): shows MFU")
    o.add_argument("--save-every", type=int, default=500)
    o.add_argument("--quiet", action="store_true", help="no stdout logging (log.jsonl is still written)")
    # Testing aids: record which examples every step used; kill the process after a step.
    p.add_argument("--log-data", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--kill-after-step", type=int, default=None, help=argparse.SUPPRESS)
    return p


# ----------------------------------------------------------------------------- helpers
def _check_args(args) -> None:
    def positive(name, value):
        if value is not None and value < 1:
            raise PretrainError(f"pretrain: --{name.replace('_', '-')} must be >= 1, got {value}")

    for name in ("batch_size", "grad_accum", "max_steps", "log_every", "save_every", "max_predictions",
                 "max_ngram", "vocab_size", "threads", "eval_every", "eval_examples"):
        positive(name, getattr(args, name))
    if args.max_seq_length < 8:
        raise PretrainError(f"pretrain: --max-seq-length must be >= 8, got {args.max_seq_length}")
    if not 0 < args.masked_lm_prob < 1:
        raise PretrainError(f"pretrain: --masked-lm-prob must be in (0, 1), got {args.masked_lm_prob}")
    if not 0 <= args.short_seq_prob <= 1:
        raise PretrainError(f"pretrain: --short-seq-prob must be in [0, 1], got {args.short_seq_prob}")
    if args.lr <= 0:
        raise PretrainError(f"pretrain: --lr must be positive, got {args.lr}")
    if args.warmup_steps is None:
        args.warmup_steps = args.max_steps // 10
    if not 0 <= args.warmup_steps <= args.max_steps:
        raise PretrainError(f"pretrain: --warmup-steps must be in [0, --max-steps], got {args.warmup_steps}")
    if not 0 <= args.valid_fraction < 1:
        raise PretrainError(f"pretrain: --valid-fraction must be in [0, 1), got {args.valid_fraction}")
    if args.data and (args.vocab_size or args.field or args.valid_fraction):
        raise PretrainError("pretrain: --vocab-size, --field and --valid-fraction belong to the preparation: "
                            "with --data they were fixed by `minialbert pretrain-data`")
    if args.vocab and args.vocab_size:
        raise PretrainError("pretrain: give --vocab (an existing vocabulary) or --vocab-size (train one), not both")


def build_config(args, vocab_size: int) -> AlbertConfig:
    if args.config is None:
        config = AlbertConfig.from_preset("albert-base-v2")
    elif Path(args.config).is_file() or args.config.endswith(".json"):
        config = AlbertConfig.from_json(args.config)
    else:
        config = AlbertConfig.from_preset(args.config)
    changes = {k: getattr(args, k) for k in (
        "embedding_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
        "num_hidden_groups", "inner_group_num", "sharing", "hidden_act") if getattr(args, k) is not None}
    if args.dropout is not None:
        changes.update(hidden_dropout_prob=args.dropout, attention_probs_dropout_prob=args.dropout)
    changes["vocab_size"] = vocab_size
    changes["max_position_embeddings"] = max(config.max_position_embeddings, args.max_seq_length)
    if "hidden_size" in changes and "num_attention_heads" not in changes \
            and changes["hidden_size"] % config.num_attention_heads:
        changes["num_attention_heads"] = max(1, changes["hidden_size"] // 64)
    extra = {k: v for k, v in config.extra.items() if k not in ("architectures", "_name_or_path")}
    return config.replace(**changes, extra=extra)


def init_albert_weights(model: nn.Module, std: float) -> None:
    """ALBERT's initialization: truncated normal(0, std) weights, zero biases, unit LayerNorm."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    if hasattr(model, "mlm_head"):
        nn.init.zeros_(model.mlm_head.bias)


def atomic_torch_save(obj, path: Path) -> None:
    from ..weights import atomic_write

    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def params_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        h.update(name.encode())
        h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


# -------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    """Entry point (scripts/pretrain.py, `minialbert pretrain`). User mistakes raise
    MinialbertError subclasses with a one-line message."""
    from ..argv import attach_negative_values

    parser = build_parser()
    args = parser.parse_args(attach_negative_values(parser, sys.argv[1:] if argv is None else list(argv)))
    try:
        _check_args(args)
    except PretrainError as e:  # a flag value out of range: a usage error too (exit 2)
        parser.error(str(e).removeprefix("pretrain: "))
    if args.threads:
        torch.set_num_threads(args.threads)
    return run_distributed(args.device, lambda dist: _train(args, dist), PretrainError, "pretrain: ")


def _train(args, dist: Dist, plugin=None) -> int:
    """The training loop. `plugin` (None = pre-training) swaps the objective and where the model
    starts, nothing else: data, steps, optimizer, checkpoints and resume stay this loop's. It has
    model_class, student_config(args, vocab_size) -> AlbertConfig, init(model) (fresh runs only: copy weights
    in), objective(model, device) -> a module whose forward returns (loss, part1, part2, stats)
    like PretrainingObjective's and whose log_names name part1, part2 and stats' two rates, and
    resume_keys (args a resume must match). minialbert/pretrain/distill.py is the one plugin."""
    from ..model import AlbertForPreTraining

    out = Path(args.output_dir)
    ckpt_dir = out / CHECKPOINT_DIR
    state_path = ckpt_dir / STATE_FILE
    args.global_batch = dist.world * args.batch_size * args.grad_accum
    if args.corpus:
        args.corpus = [str(Path(c).resolve()) if Path(c).exists() else c for c in args.corpus]

    state = None
    if args.resume:
        if not state_path.is_file():
            raise PretrainError(f"--resume: no checkpoint at {state_path}")
        try:
            state = torch.load(state_path, map_location="cpu", weights_only=False)
        except Exception as e:
            raise PretrainError(f"--resume: cannot read {state_path}: {str(e).splitlines()[0][:200]}") from None
    elif state_path.exists() and not args.overwrite:
        raise PretrainError(f"{out} already holds a training run: pass --resume to continue it or --overwrite")

    # 1. the prepared data (--corpus: prepared into OUT/data first, by rank 0) and its vocabulary
    threads = max(1, torch.get_num_threads())
    if args.corpus:
        data_dir = out / "data"
        if dist.main:
            size = None
            if not args.vocab:
                size = args.vocab_size or (AlbertConfig.from_json(args.config).vocab_size
                                           if args.config and args.config.endswith(".json") else 30000)
            prepare(args.corpus, data_dir, vocab=args.vocab, vocab_size=size or 30000, field=args.field,
                    compat=args.tokenizer_compat or "transformers", valid_fraction=args.valid_fraction,
                    seed=args.seed, resume=True, overwrite=args.overwrite and state is None, quiet=args.quiet)
        dist.barrier()
    else:
        data_dir = Path(args.data)
    prepared = PreparedData(data_dir, "train")
    if args.tokenizer_compat is None:
        args.tokenizer_compat = prepared.compat
    elif args.tokenizer_compat != prepared.compat:
        raise PretrainError(f"--tokenizer-compat {args.tokenizer_compat}, but {data_dir} was prepared with "
                            f"{prepared.compat}")
    if args.vocab:
        if not Path(args.vocab).is_file():
            raise PretrainError(f"vocabulary file not found: {args.vocab}")
        if file_sha256(args.vocab) != prepared.tokenizer_sha256:
            raise PretrainError(f"{data_dir} was prepared with another tokenizer than --vocab {args.vocab} "
                                "(sha256 differs); prepare it again with this --vocab, or drop --vocab")
    args.data_fingerprint = prepared.fingerprint
    if state is not None:
        saved = state["args"]
        for key in _RESUME_MUST_MATCH + (plugin.resume_keys if plugin is not None else ()):
            if saved.get(key) != getattr(args, key):
                raise PretrainError(
                    f"--resume: {key} differs from the checkpoint ({saved.get(key)!r} there, "
                    f"{getattr(args, key)!r} now); the data order would not continue"
                )
    vocab_path = data_dir / "spiece.model"
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        # spiece.model + tokenizer_config.json (recording the compat mode): inference tokenizes as we do.
        Vocab.load(vocab_path, args.tokenizer_compat).tokenizer.save_pretrained(out)
    vocab = Vocab.load(vocab_path, args.tokenizer_compat, threads=threads)

    # 2. model and data
    if state is not None:
        config = AlbertConfig.from_dict(state["config"])
    else:
        try:
            config = build_config(args, vocab.size) if plugin is None else plugin.student_config(args, vocab.size)
        except ConfigError as e:
            raise PretrainError(f"pretrain: {e}") from None
    if config.vocab_size != vocab.size:
        raise PretrainError(f"config vocab_size {config.vocab_size} != vocabulary size {vocab.size}")
    if args.max_seq_length > config.max_position_embeddings:
        raise PretrainError("--max-seq-length exceeds the config's max_position_embeddings")
    examples = dict(max_seq_length=args.max_seq_length, seed=args.seed, masked_lm_prob=args.masked_lm_prob,
                    max_predictions=args.max_predictions, max_ngram=args.max_ngram)

    def pairs_of(split_data: PreparedData):
        # rank 0 writes the pair index (read by offset by every rank), the others wait for it
        if dist.main:
            open_pairs(split_data, out / "cache", args.max_seq_length, args.short_seq_prob, args.seed, build=True)
        dist.barrier()
        return open_pairs(split_data, out / "cache", args.max_seq_length, args.short_seq_prob, args.seed, build=False)

    pairs = pairs_of(prepared)
    if not len(pairs):
        raise PretrainError("the corpus yields no training example (every document is shorter than 2 tokens)")
    data = PretrainingData(pairs, vocab, **examples)
    data.step_indices(0, args.global_batch)  # raises if the corpus is smaller than one global batch
    valid = None
    if any(sh["split"] == "valid" for sh in prepared.manifest["shards"]):
        valid_pairs = pairs_of(PreparedData(data_dir, "valid"))
        if len(valid_pairs):
            valid = PretrainingData(valid_pairs, vocab, **examples)
    eval_every = args.eval_every or args.save_every

    torch.manual_seed(args.seed)  # same initial weights on every rank
    model = (AlbertForPreTraining if plugin is None else plugin.model_class)(config)
    init_albert_weights(model, config.initializer_range)
    if plugin is not None and state is None:
        plugin.init(model)
    model.to(dist.device)
    objective = PretrainingObjective(model) if plugin is None else plugin.objective(model, dist.device)
    names = getattr(objective, "log_names", ("mlm_loss", "sop_loss", "mlm_acc", "sop_acc"))
    optimizer = make_optimizer(model, args.optimizer, args.lr, args.weight_decay,
                               (args.adam_beta1, args.adam_beta2), args.adam_eps, args.lamb_bias_correction)
    step = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
        rng = state["rng"]
        if len(rng) == dist.world:
            set_rng_state(rng[dist.rank], dist.device)
    else:
        torch.manual_seed(args.seed + 1 + dist.rank)  # dropout differs per rank
    # DDP around the objective, then torch.compile around that (the order DDP documents)
    ddp = dist.wrap(objective)
    step_module = compile_module(ddp, args.compile, args.compile_backend)

    if dist.main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        (out / "train_args.json").write_text(json.dumps(vars(args), indent=2, default=str) + "\n")
        if not args.quiet:
            n = sum(p.numel() for p in model.parameters())
            print(f"pretraining {n:,} parameters (sharing={config.sharing}, E={config.embedding_size}, "
                  f"H={config.hidden_size}, L={config.num_hidden_layers}) on {len(data):,} examples, "
                  f"vocab {vocab.size}, {dist.world} rank(s) on {dist.device.type}, global batch "
                  f"{args.global_batch}, {data.steps_per_epoch(args.global_batch)} steps/epoch, "
                  f"{'resuming at step ' + str(step) if step else 'from scratch'}", flush=True)
    log = ExperimentLog(out, main=dist.main, report_to=args.report_to, filename=LOG_FILE)
    data_log = open(out / f"data_rank{dist.rank}.jsonl", "a", encoding="utf-8") if args.log_data else None

    amp = autocast(dist.device, args.bf16)
    window = torch.zeros(7, dtype=torch.float64)  # mlm_loss_sum, sop_loss_sum, micro, mlm ok, mlm n, sop ok, sop n
    tokens = 0
    t0 = time.perf_counter()
    start_time = time.perf_counter()
    objective.train()
    flops = train_flops_per_token(model, args.max_seq_length)
    peak = args.peak_tflops * 1e12 * dist.world if args.peak_tflops else None
    progress = Progress(args.max_steps, step, "pretrain", enabled=dist.main and not args.quiet,
                        flops_per_token=flops, peak_flops=peak)

    def say(line: str) -> None:
        if dist.main and not args.quiet:
            progress.write(line)

    def save_checkpoint():
        rng = dist.gather(rng_state(dist.device))
        if dist.main:
            atomic_torch_save({
                "step": step, "config": config.to_dict(), "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "rng": rng,
                "data": {"epoch": step // data.steps_per_epoch(args.global_batch),
                         "examples_consumed": step * args.global_batch, "num_examples": len(data)},
                "args": {k: v for k, v in vars(args).items()},
            }, state_path)
            model.save_pretrained(out)
        dist.barrier()

    def evaluate():
        """Loss on the first --eval-examples held-out examples (masked as in epoch 0), ranks
        splitting them; the model's own forward, in eval mode."""
        n = min(len(valid), args.eval_examples)
        mine = np.arange(dist.rank, n, dist.world)
        sums = torch.zeros(4, dtype=torch.float64)  # mlm loss x masked, masked, sop loss x batch, batch
        objective.eval()
        with torch.no_grad(), amp:
            for k in range(0, len(mine), args.batch_size):
                batch = valid.collate(mine[k:k + args.batch_size], 0)
                inputs = {key: batch[key].to(dist.device) for key in
                          ("input_ids", "attention_mask", "token_type_ids", "labels", "sentence_order_label")}
                _, l_mlm, l_sop, stats = objective(**inputs)
                sums += torch.tensor([l_mlm.item() * stats[1].item(), stats[1].item(),
                                      l_sop.item() * stats[3].item(), stats[3].item()], dtype=torch.float64)
        objective.train()
        total = dist.all_sum(sums)
        record = {"step": step, "event": "eval", "valid_mlm_loss": total[0].item() / max(1.0, total[1].item()),
                  "valid_sop_loss": total[2].item() / max(1.0, total[3].item()), "valid_examples": n}
        record["valid_loss"] = record["valid_mlm_loss"] + record["valid_sop_loss"]
        log.write(record, prefix="valid")
        say(f"step {step:>6}  valid_loss {record['valid_loss']:.4f}  (mlm {record['valid_mlm_loss']:.4f}, "
            f"sop {record['valid_sop_loss']:.4f}, {n} held-out examples)")

    try:
        while step < args.max_steps:
            lr = lr_at(args.lr, args.warmup_steps, args.max_steps, step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            epoch, micro_batches = data.rank_microbatches(step, dist.rank, dist.world, args.batch_size,
                                                          args.grad_accum)
            for j, idx in enumerate(micro_batches):
                batch = data.collate(idx, epoch)
                if data_log is not None:
                    data_log.write(json.dumps({"step": step, "micro": j, "epoch": epoch, "index": batch["index"]})
                                   + "\n")
                inputs = {k: batch[k].to(dist.device) for k in
                          ("input_ids", "attention_mask", "token_type_ids", "labels", "sentence_order_label")}
                sync = nullcontext() if (not dist.enabled or j == len(micro_batches) - 1) else ddp.no_sync()
                with sync:
                    with amp:
                        loss, l_mlm, l_sop, stats = step_module(**inputs)
                    (loss / args.grad_accum).backward()
                window += torch.tensor([l_mlm.item(), l_sop.item(), 1.0, *stats.tolist()], dtype=torch.float64)
                tokens += int(batch["attention_mask"].sum())
            if args.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if data_log is not None:
                data_log.flush()

            if step % args.log_every == 0 or step == args.max_steps:
                total = dist.all_sum(torch.cat([window, torch.tensor([float(tokens)], dtype=torch.float64)]))
                if dist.device.type == "cuda":
                    torch.cuda.synchronize()
                now = time.perf_counter()
                record = {
                    "step": step, "epoch": epoch, "lr": lr,
                    names[0]: total[0].item() / total[2].item(), names[1]: total[1].item() / total[2].item(),
                    names[2]: total[3].item() / max(1.0, total[4].item()),
                    names[3]: total[5].item() / max(1.0, total[6].item()),
                    "tokens_per_s": total[7].item() / (now - t0), "elapsed_s": now - start_time,
                }
                record.pop(None, None)  # an objective with one rate names the other None
                if peak:
                    record["mfu"] = record["tokens_per_s"] * flops / peak
                log.write(record)
                say(f"step {step:>6}  {names[0]} {record[names[0]]:.4f}  {names[2]} {record[names[2]]:.3f}  "
                    f"{names[1]} {record[names[1]]:.4f}  "
                    + (f"{names[3]} {record[names[3]]:.3f}  " if names[3] else "") + f"lr {lr:.2e}  "
                    f"tok/s {record['tokens_per_s']:,.0f}")
                progress.update(loss=record[names[0]] + record[names[1]], tokens_per_s=record["tokens_per_s"])
                window.zero_()
                tokens = 0
                t0 = time.perf_counter()
            else:
                progress.update()
            if valid is not None and (step % eval_every == 0 or step == args.max_steps):
                evaluate()
            if step % args.save_every == 0 or step == args.max_steps:
                save_checkpoint()
            if args.kill_after_step is not None and step == args.kill_after_step:
                os.kill(os.getpid(), signal.SIGKILL)  # simulate a crash (tests)
    finally:
        progress.close()

    digests = dist.gather(params_digest(model))
    if dist.main:
        final = {"event": "done", "step": step, "world_size": dist.world, "param_digests": digests,
                 "ranks_identical": len(set(digests)) == 1}
        log.write(final, prefix=None)
        if not args.quiet:
            print(f"done: {step} steps; model, tokenizer (spiece.model, tokenizer_config.json) and log in {out}",
                  flush=True)
    log.close()
    if data_log is not None:
        data_log.close()
    return 0


if __name__ == "__main__":  # python -m minialbert.pretrain.train: the same as `minialbert pretrain`
    from ..errors import MinialbertError

    try:
        sys.exit(main())
    except MinialbertError as e:
        print(f"minialbert pretrain: error: {e}", file=sys.stderr)
        sys.exit(1)
