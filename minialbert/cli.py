"""The `minialbert` command. It only parses arguments and calls the library.

Mistakes a user can fix (MinialbertError, a missing file, ...) are printed as one line on
stderr with exit status 1 (2 for bad arguments, from argparse); anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from .errors import MinialbertError


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", default="albert-base-v2",
                   help="local checkpoint directory or Hub repo id (default: %(default)s)")
    _hub_args(p)


def _hub_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")
    p.add_argument("--cache-dir", default=None, help="Hugging Face cache directory (default: HF_HUB_CACHE)")
    p.add_argument("--offline", action="store_true",
                   help="use only the local Hugging Face cache (same as HF_HUB_OFFLINE=1)")


# ------------------------------------------------------------------------------- info
def cmd_info(args: argparse.Namespace) -> int:
    from .config import PRESETS, AlbertConfig
    from .hub import ModelSource, looks_like_path
    from .params import describe

    name = args.model_pos or args.model
    if not looks_like_path(name) and name.removeprefix("albert/") in PRESETS:
        config = AlbertConfig.from_preset(name)  # no download needed for the official configs
    else:
        source = ModelSource(name, revision=args.revision, cache_dir=args.cache_dir, local_files_only=args.offline)
        config = AlbertConfig.from_json(source.file("config.json"))
    if args.embedding_size is not None:
        config = config.replace(embedding_size=args.embedding_size)
    if args.sharing is not None:
        groups = {} if args.sharing == "all" else {"num_hidden_groups": 1, "inner_group_num": 1}
        config = config.replace(sharing=args.sharing, **groups)
    print(describe(config, name))
    return 0


# ------------------------------------------------------------------------------ embed
def _read_input(args: argparse.Namespace, positional: list[str]) -> list[str]:
    from .files import InputError, read_texts

    if positional and args.input:
        raise InputError("give texts as arguments or --input FILE, not both")
    if positional:
        return list(positional)
    if args.input and args.input != "-":
        texts, name = read_texts(args.input, field=args.field), args.input
    elif sys.stdin is None or (sys.stdin.isatty() and not args.input):
        raise InputError("no input: give texts as arguments, --input FILE, or pipe them on stdin")
    else:
        texts, name = read_texts(None, field=args.field, stdin_bytes=sys.stdin.buffer.read()), "stdin"
    if not texts:
        raise InputError(f"no texts in {name}: it is empty")
    return texts


def _embedder(args: argparse.Namespace):
    from .embed import Embedder

    return Embedder.from_pretrained(
        args.model, revision=args.revision, cache_dir=args.cache_dir, local_files_only=args.offline, device=args.device,
        dtype=args.dtype, max_length=args.max_length,
    )


def _layer(value: str | None):
    if value is None:
        return None
    try:
        parts = [int(p) for p in value.split(",")]
    except ValueError:
        raise MinialbertError(f"--layer takes an integer or a comma-separated list, got {value!r}") from None
    return parts[0] if len(parts) == 1 else parts


def _show_progress(args: argparse.Namespace, n: int) -> bool:
    return not args.quiet and n >= 64 and sys.stderr is not None and sys.stderr.isatty()


STDOUT_LIMIT = 1000  # texts printed as JSON when no --output is given


def cmd_embed(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from .files import write_jsonl, write_vectors

    texts = _read_input(args, args.texts)
    if args.output is None and len(texts) > STDOUT_LIMIT:
        raise MinialbertError(f"{len(texts)} texts: too many to print; write them with --output FILE.npy or .jsonl")
    if args.output is not None and args.tokens and not str(args.output).endswith((".jsonl", ".ndjson")):
        raise MinialbertError("--tokens writes JSON lines: use an --output path ending in .jsonl")
    if args.output is not None and not args.tokens and not str(args.output).lower().endswith(
            (".npy", ".jsonl", ".ndjson", ".json")):
        raise MinialbertError(f"unknown output format for {args.output}: use .npy, .jsonl or .json")
    embedder = _embedder(args)
    if args.tokens:
        rows = [
            {"text": t, "tokens": r.tokens, "offsets": r.offsets, "vectors": np.asarray(r.vectors).tolist()}
            for t, r in zip(texts, embedder.embed_tokens(texts, layer=_layer(args.layer), batch_size=args.batch_size))
        ]
        if args.output is None:
            for row in rows:
                print(json.dumps(row, ensure_ascii=False))
        else:
            write_jsonl(args.output, rows)
        return 0
    vectors = embedder.embed(
        texts, pooling=args.pooling, layer=_layer(args.layer), normalize=args.normalize,
        batch_size=args.batch_size, long_text=args.long_text, stride=args.stride,
        show_progress=_show_progress(args, len(texts)),
    )
    if args.output is None:
        print(json.dumps([{"text": t, "vector": v.tolist()} for t, v in zip(texts, vectors)], ensure_ascii=False))
    else:
        write_vectors(args.output, vectors, texts)
        if not args.quiet:
            print(f"wrote {vectors.shape[0]} x {vectors.shape[1]} vectors to {args.output}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------- similarity
def cmd_similarity(args: argparse.Namespace) -> int:
    candidates = _read_input(args, args.candidates)
    if not candidates:
        raise MinialbertError("no candidate texts to rank")
    embedder = _embedder(args)
    # Plain ALBERT [CLS] vectors are weak sentence vectors; mean pooling is the safer default
    # unless the checkpoint (sentence-transformers) says otherwise.
    pooling = args.pooling or (embedder.pooling if embedder.from_sentence_transformers else "mean")
    ranked = embedder.rank(args.query, candidates, top_k=args.top_k, pooling=pooling,
                           batch_size=args.batch_size, long_text=args.long_text)
    for score, _, text in ranked:
        print(f"{score:.4f}\t{text}")
    return 0


# -------------------------------------------------------------------------- fill-mask
def cmd_fill_mask(args: argparse.Namespace) -> int:
    import json

    from .fill_mask import FillMask

    fill = FillMask.from_pretrained(args.model, revision=args.revision, cache_dir=args.cache_dir,
                                    local_files_only=args.offline, device=args.device)
    results = fill(args.text, top_k=args.top_k)
    if args.json:
        print(json.dumps([[p.__dict__ for p in preds] for preds in results], ensure_ascii=False))
        return 0
    for n, preds in enumerate(results, start=1):
        if len(results) > 1:
            print(f"[MASK] #{n}")
        for p in preds:
            print(f"{p.score:.4f}\t{p.token}\t{p.sequence}")
    return 0


# ------------------------------------------------------------------------------ export
def cmd_export(args: argparse.Namespace) -> int:
    from .export import Int8Options, export_onnx

    int8 = False
    if args.int8:
        int8 = Int8Options(weights=args.int8_weights, per_channel=not args.per_tensor, reduce_range=args.reduce_range)
    elif args.int8_weights != "u8" or args.per_tensor or args.reduce_range:
        raise MinialbertError("--int8-weights, --per-tensor and --reduce-range only apply with --int8")
    path = export_onnx(args.model_pos, args.output, int8=int8, revision=args.revision, cache_dir=args.cache_dir,
                       local_files_only=args.offline)
    import os

    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB"
          + (f", int8 {int8.describe()}" if int8 else ", float32") + "), tokenizer files beside it", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- bench and pretrain
def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import main as bench_main

    return int(bench_main(args.rest) or 0)


def cmd_pretrain(args: argparse.Namespace) -> int:
    from .pretrain.train import main as pretrain_main

    return int(pretrain_main(args.rest) or 0)


def _embed_args(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument("--input", "-i", metavar="FILE",
                   help="one text per line, or .jsonl with --field; '-' or nothing piped = stdin")
    p.add_argument("--field", default=None, help="JSON field holding the text in .jsonl input (default: text)")
    p.add_argument("--pooling", choices=["cls", "mean", "max", "mean_sqrt_len", "pooler"], default=None,
                   help="how token vectors become one vector (default: the checkpoint's, else cls)")
    p.add_argument("--layer", default=None,
                   help="hidden layer to use: -1 last (default), 0 after the embedding projection; "
                        "'-1,-2' averages layers")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=None, help="tokens per sequence, [CLS]/[SEP] included")
    p.add_argument("--long-text", choices=["truncate", "chunk", "error"], default="truncate",
                   help="texts over --max-length: truncate (default), chunk into overlapping windows, or error")
    p.add_argument("--stride", type=int, default=128, help="tokens shared by consecutive windows with --long-text chunk")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cpu)")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=None)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary on stderr")

# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minialbert",
        description="ALBERT embeddings without transformers: inspect, embed, search, fill masks.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("info", help="print a model's config and its parameter count, broken down")
    p.add_argument("model_pos", nargs="?", metavar="MODEL", help="checkpoint directory, Hub repo id or preset")
    _model_args(p)
    p.add_argument("--embedding-size", type=int, default=None, help="override E (ablation)")
    p.add_argument("--sharing", choices=["all", "attention", "ffn", "none"], default=None,
                   help="override the cross-layer sharing strategy (ablation)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("embed", help="texts -> vectors (.npy, .jsonl, or JSON on stdout)")
    p.add_argument("texts", nargs="*", help="texts to embed (or use --input / stdin)")
    _embed_args(p)
    p.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                   help="L2-normalize the vectors (default: the checkpoint's, else no)")
    p.add_argument("--output", "-o", metavar="FILE", help="FILE.npy (float32 matrix), .jsonl or .json; "
                   "written atomically")
    p.add_argument("--tokens", action="store_true", help="write every token's vector and offsets as JSON lines")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("similarity", help="rank candidate texts by cosine similarity to a query")
    p.add_argument("query", help="the query text")
    p.add_argument("candidates", nargs="*", help="candidate texts (or use --input / stdin)")
    _embed_args(p)
    p.add_argument("--top-k", "-k", type=int, default=None, help="print only the best K")
    p.set_defaults(func=cmd_similarity)

    p = sub.add_parser("fill-mask", help="predict the words behind [MASK] with the MLM head")
    p.add_argument("text", help='a text with one or more [MASK], e.g. "Paris is the [MASK] of France."')
    _model_args(p)
    p.add_argument("--top-k", "-k", type=int, default=5)
    p.add_argument("--device", default=None)
    p.add_argument("--json", action="store_true", help="print the predictions as JSON")
    p.set_defaults(func=cmd_fill_mask)

    p = sub.add_parser("export", help="write a model in another format (onnx)")
    formats = p.add_subparsers(dest="format", metavar="FORMAT")
    formats.required = True
    p = formats.add_parser("onnx", help="ONNX (for ONNX Runtime): shared weights stored once; --int8 quantizes "
                                        "every weight MatMul")
    p.add_argument("model_pos", metavar="MODEL", help="checkpoint directory or Hub repo id")
    p.add_argument("output", metavar="OUT.onnx", help="the file to write; the tokenizer files go beside it")
    _hub_args(p)
    p.add_argument("--int8", action="store_true", help="int8 weights, dynamic int8 activations (about a third "
                                                      "of the float32 file)")
    p.add_argument("--int8-weights", choices=["u8", "s8"], default="u8",
                   help="u8 (default; safe on every x86 CPU) or s8 (for CPUs with VNNI; add --reduce-range "
                        "on CPUs without it)")
    p.add_argument("--per-tensor", action="store_true", help="one weight scale per matrix instead of per column")
    p.add_argument("--reduce-range", action="store_true", help="7-bit weights (avoids int16 saturation of s8 "
                                                              "weights on CPUs without VNNI)")
    p.set_defaults(func=cmd_export)

    for name, func, text in (("bench", cmd_bench, "benchmark minialbert against transformers (see --help)"),
                             ("pretrain", cmd_pretrain, "pre-train an ALBERT from scratch (MLM + SOP; see --help)")):
        p = sub.add_parser(name, help=text, add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=func)
    return parser


PASSTHROUGH = {"bench": cmd_bench, "pretrain": cmd_pretrain}  # commands with their own argument parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    # Warnings (e.g. texts truncated to max_length) as one readable line, not file:line noise.
    warnings.formatwarning = lambda message, category, *_, **__: f"minialbert: warning: {message}\n"
    if argv and argv[0] in PASSTHROUGH:
        # Hand everything after the command name to its own parser (argparse's REMAINDER
        # would swallow nothing when the first word is an option such as --help).
        args = argparse.Namespace(command=argv[0], func=PASSTHROUGH[argv[0]], rest=argv[1:])
    else:
        args = parser.parse_args(argv)
    if getattr(args, "top_k", 1) is not None and getattr(args, "top_k", 1) < 1:
        parser.error("--top-k must be at least 1")
    if getattr(args, "batch_size", 1) < 1:
        parser.error("--batch-size must be at least 1")
    try:
        return int(args.func(args) or 0)
    except MinialbertError as e:
        print(f"minialbert {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"minialbert {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `minialbert ... | head`
        return 0


if __name__ == "__main__":  # python -m minialbert.cli
    sys.exit(main())
