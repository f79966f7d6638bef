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


from .argv import attach_negative_values  # noqa: F401  (re-exported: older imports)


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", default="albert-base-v2",
                   help="local checkpoint directory or Hub repo id (default: %(default)s)")
    _hub_args(p)


def _threads_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=None, metavar="N", dest="torch_threads",
                   help="torch CPU threads (default: torch's, one per core; on a small machine that is "
                        "busy with other work, 1 is often faster)")


def _layer_calls_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layer-calls", type=int, default=None, metavar="N", dest="layer_calls",
                   help="run N calls of the shared layer(s) instead of the checkpoint's num_hidden_layers "
                        "(fewer = faster; see docs/guides/compression.md)")


def _hub_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")
    p.add_argument("--cache-dir", default=None, help="Hugging Face cache directory (default: HF_HUB_CACHE)")
    p.add_argument("--offline", action="store_true",
                   help="use only the local Hugging Face cache (same as HF_HUB_OFFLINE=1)")


# ------------------------------------------------------------------------------- info
def cmd_info(args: argparse.Namespace) -> int:
    from .config import AlbertConfig, official_name
    from .hub import ModelSource, looks_like_path
    from .params import describe

    if args.engine:
        from .plan import current_plan, plan_cache_path

        print(current_plan().describe())
        print(f"  cache:                 {plan_cache_path()} (safe to delete; MINIALBERT_ENGINE_PLAN=fixed forces "
              "the fixed plan)")
        return 0
    name = args.model_pos or args.model
    if not looks_like_path(name) and official_name(name) is not None:
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


def _check_int8(args: argparse.Namespace) -> None:
    if args.int8 and args.layer not in (None, -1):
        raise MinialbertError("--int8 applies to the last layer (the inference engine's output); drop --layer or --int8")


def _embedder(args: argparse.Namespace):
    from .embed import Embedder

    _check_int8(args)
    embedder = Embedder.from_pretrained(
        args.model, revision=args.revision, cache_dir=args.cache_dir, local_files_only=args.offline, device=args.device,
        dtype=args.dtype, max_length=args.max_length, backend=args.backend, int8=args.int8,
        num_layer_calls=args.layer_calls,
    )
    if embedder.dtype_note and not getattr(args, "quiet", False):
        print(embedder.dtype_note, file=sys.stderr)  # which one --dtype auto took
    return embedder


def layer_arg(value: str) -> int | list[int]:
    """--layer: "-1" -> -1; "-1,-2" -> [-1, -2] (those layers averaged)."""
    try:
        parts = [int(p) for p in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"takes an integer or a comma-separated list such as -1,-2, got {value!r}") from None
    return parts[0] if len(parts) == 1 else parts


def _show_progress(args: argparse.Namespace, n: int) -> bool:
    return not args.quiet and n >= 64 and sys.stderr is not None and sys.stderr.isatty()


STDOUT_LIMIT = 1000  # texts printed as JSON when no --output is given
STREAM_FLAGS = ("resume", "window", "with_text", "ray")  # flags that only make sense with --output DIR/


def _is_directory_output(output: str | None) -> bool:
    import os

    return output is not None and (output.endswith(("/", os.sep)) or os.path.isdir(output))


def _embed_to_directory(args: argparse.Namespace) -> int:
    """--output DIR/: stream the input into Parquet shards (minialbert.stream, or minialbert.ray)."""
    if args.texts or not args.input or args.input == "-":
        raise MinialbertError("--output DIR/ streams a file: give it with --input FILE (texts on the command line "
                              "or stdin go to .npy/.jsonl outputs)")
    if args.tokens:
        raise MinialbertError("--tokens writes JSON lines: use an --output path ending in .jsonl")
    options = dict(field=args.field, pooling=args.pooling, layer=args.layer, normalize=args.normalize,
                   batch_size=args.batch_size, max_length=args.max_length, long_text=args.long_text,
                   stride=args.stride, with_text=args.with_text, resume=args.resume,
                   prompt_name=args.prompt_name, prompt=args.prompt)
    if args.window is not None:
        options["window"] = args.window
    progress = False if args.quiet else (True if sys.stderr is not None and sys.stderr.isatty() else "log")
    redo = (lambda name: print(f"minialbert embed: {name} is missing or damaged; embedding it again",
                               file=sys.stderr)) if not args.quiet else None
    if args.ray is not None:
        from .ray import embed_with_ray

        if args.device is not None:
            raise MinialbertError("--device does not apply to --ray: actors use a GPU with --ray-gpus, else the CPU")
        if args.backend != "torch":
            raise MinialbertError("--backend onnxruntime does not apply to --ray: Ray actors run the PyTorch model "
                                  "(--int8 for int8)")
        _check_int8(args)

        summary = embed_with_ray(
            args.input, args.output, model=args.model, revision=args.revision, cache_dir=args.cache_dir,
            local_files_only=args.offline, dtype=args.dtype, address=None if args.ray == "local" else args.ray,
            actors=args.ray_actors, cpus_per_actor=args.ray_cpus, gpus_per_actor=args.ray_gpus,
            progress=progress, on_redo=redo, int8=args.int8, num_layer_calls=args.layer_calls, **options)
    else:
        from .stream import embed_file

        summary = embed_file(_embedder(args), args.input, args.output, progress=progress, model_name=args.model,
                             revision=args.revision, on_redo=redo, **options)
    if not args.quiet:
        if summary.embedded == 0 and summary.complete:
            print(f"nothing to do: {args.output} already holds all {summary.rows:,} vectors", file=sys.stderr)
        else:
            print(f"wrote {summary.embedded:,} vectors in {summary.shards_written} shard(s) to {args.output} "
                  f"({summary.rows:,} in all)", file=sys.stderr)
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from .files import JSONL_SUFFIXES, VECTOR_SUFFIXES, check_output_path, write_jsonl, write_vectors

    if _is_directory_output(args.output):
        return _embed_to_directory(args)
    ray_flags = [flag for flag, value, default in (("--ray-actors", args.ray_actors, None), ("--ray-cpus", args.ray_cpus, 1),
                                                    ("--ray-gpus", args.ray_gpus, 0)) if value != default]
    if ray_flags and args.ray is None:
        raise MinialbertError(f"{', '.join(ray_flags)} only work(s) with --ray")
    used = [f"--{f.replace('_', '-')}" for f in STREAM_FLAGS if getattr(args, f) not in (None, False)]
    if used:
        raise MinialbertError(f"{', '.join(used)} only work(s) with a directory output: --output DIR/")
    texts = _read_input(args, args.texts)
    if args.output is None and len(texts) > STDOUT_LIMIT:
        raise MinialbertError(f"{len(texts)} texts: too many to print; write them with --output FILE.npy or .jsonl")
    if args.output is not None:  # before the model loads: a typo should cost nothing
        check_output_path(args.output, JSONL_SUFFIXES if args.tokens else VECTOR_SUFFIXES,
                          hint="" if args.tokens else "; or a directory of Parquet shards (end the path with /)")
    if args.tokens and (args.prompt_name is not None or args.prompt):
        raise MinialbertError("--tokens writes the text's own tokens and takes no prompt; drop --prompt-name/--prompt")
    embedder = _embedder(args)
    if args.tokens:
        rows = [
            {"text": t, "tokens": r.tokens, "offsets": r.offsets, "vectors": np.asarray(r.vectors).tolist()}
            for t, r in zip(texts, embedder.embed_tokens(texts, layer=args.layer, batch_size=args.batch_size))
        ]
        if args.output is None:
            for row in rows:
                print(json.dumps(row, ensure_ascii=False))
        else:
            write_jsonl(args.output, rows)
        return 0
    vectors = embedder.embed(
        texts, pooling=args.pooling, layer=args.layer, normalize=args.normalize,
        batch_size=args.batch_size, long_text=args.long_text, stride=args.stride,
        show_progress=_show_progress(args, len(texts)), prompt_name=args.prompt_name, prompt=args.prompt,
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
    ranked = embedder.rank(args.query, candidates, top_k=args.top_k, pooling=pooling, layer=args.layer,
                           batch_size=args.batch_size, long_text=args.long_text, stride=args.stride,
                           prompt_name=args.prompt_name, prompt=args.prompt,
                           document_prompt_name=args.document_prompt_name, document_prompt=args.document_prompt)
    for score, _, text in ranked:
        print(f"{score:.4f}\t{text}")
    return 0


# ------------------------------------------------------------------- index / search / serve
def cmd_index(args: argparse.Namespace) -> int:
    from .search import build_index

    s = build_index(args.vectors, kind=args.kind, output=args.output, metric=args.metric, update=args.update,
                    threads=args.threads, M=args.M, ef_construction=args.ef_construction, ef_search=args.ef_search,
                    nlist=args.nlist, pq_m=args.pq_m, nprobe=args.nprobe, rerank=args.rerank)
    if not args.quiet:
        what = (f"added {s.added:,} vector(s)" if args.update else f"indexed {s.count:,} vector(s)")
        print(f"{what} ({s.kind}, {s.count:,} in all) in {s.seconds:.1f} s: {s.path}", file=sys.stderr)
        for note in s.notes:
            print(f"minialbert index: note: {note}", file=sys.stderr)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    import json

    from .search import Searcher

    queries = _read_input(args, args.queries)
    searcher = Searcher.from_index(args.index, model=args.model, device=args.device, threads=args.threads,
                                   local_files_only=args.offline, cache_dir=args.cache_dir, nprobe=args.nprobe,
                                   ef_search=args.ef_search, rerank=args.rerank)
    hits = searcher.search(queries, k=args.top_k, with_text=args.with_text)
    for i, query in enumerate(queries):
        rows = hits.rows(i)
        if args.json:
            print(json.dumps({"query": query, "hits": rows}, ensure_ascii=False))
            continue
        if len(queries) > 1:
            print(f"# {query}")
        for row in rows:
            text = f"\t{row['text']}" if "text" in row else ""
            print(f"{row['score']:.4f}\t{row['id']}{text}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import ServeOptions, serve

    return serve(ServeOptions(
        model=args.model, index=args.index, host=args.host, port=args.port, int8=args.int8, backend=args.backend,
        max_batch_tokens=args.max_batch_tokens, max_batch_size=args.max_batch_size, max_queue=args.max_queue,
        api_key=args.api_key,
        max_body_bytes=args.max_body_bytes, max_inputs=args.max_inputs, device=args.device, revision=args.revision,
        cache_dir=args.cache_dir, local_files_only=args.offline, log_level=args.log_level))


def _add_search_commands(sub) -> None:
    p = sub.add_parser("index", help="build a vector index over `embed --output DIR/` shards ([search] extra for "
                                     "hnsw/ivf-pq)", allow_abbrev=False)
    p.add_argument("vectors", metavar="VECTORS_DIR", help="a directory written by `minialbert embed --output DIR/`")
    p.add_argument("--kind", choices=["exact", "hnsw", "ivf-flat", "ivf-sq8", "ivf-pq"], default="exact",
                   help="exact (no extra; chunked matrix products), hnsw (FAISS graph), or FAISS inverted lists "
                        "storing float32 (ivf-flat), 8-bit (ivf-sq8) or product-quantized (ivf-pq) vectors")
    p.add_argument("--output", "-o", default=None, metavar="INDEX_DIR", help="default: VECTORS_DIR/index")
    p.add_argument("--update", action="store_true",
                   help="add the shards written since the index was built (after `embed --resume` on more input)")
    p.add_argument("--metric", choices=["cosine", "dot", "euclidean", "manhattan"], default=None,
                   help="default: the model's (sentence-transformers' similarity_fn_name), else cosine")
    p.add_argument("--threads", type=int, default=None, help="FAISS threads (default: all cores)")
    p.add_argument("--M", type=int, default=None, help="hnsw: links per node (default 32)")
    p.add_argument("--ef-construction", type=int, default=None, help="hnsw: build beam (default 100)")
    p.add_argument("--ef-search", type=int, default=None, help="hnsw: search beam (default 128)")
    p.add_argument("--nlist", type=int, default=None, help="ivf-*: inverted lists (default 4 sqrt(n))")
    p.add_argument("--pq-m", type=int, default=None, help="ivf-pq: sub-quantizers, divides dim (default dim/4: dim bytes per vector)")
    p.add_argument("--nprobe", type=int, default=None, help="ivf-*: lists visited per query (default 64; "
                                                            "`search --nprobe` overrides it)")
    p.add_argument("--rerank", type=int, default=None, help="ivf-*: k x RERANK candidates re-scored exactly "
                                                            "(default: ivf-flat 1, ivf-sq8 2, ivf-pq 50)")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", help="nearest stored texts to a query, from an index", allow_abbrev=False)
    p.add_argument("queries", nargs="*", metavar="QUERY", help="query texts (or --input FILE / stdin)")
    p.add_argument("--index", required=True, metavar="DIR", help="an index directory (or the vectors directory "
                                                                 "holding index/)")
    p.add_argument("--top-k", "-k", type=int, default=10)
    p.add_argument("--with-text", action="store_true", default=None, help="print the texts (needs embed --with-text)")
    p.add_argument("--json", action="store_true", help="one JSON line per query: {query, hits: [{id, score, text}]}")
    p.add_argument("--model", "-m", default=None, help="default: the model the index records")
    _hub_args(p)
    p.add_argument("--input", "-i", metavar="FILE", help="queries, one per line")
    p.add_argument("--field", default=None, help="JSON field of .jsonl --input")
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=None, help="FAISS threads for a batch of queries (default: all "
                                                             "cores; one query runs on one)")
    p.add_argument("--nprobe", type=int, default=None, help="ivf-* indexes: lists visited per query (default: the "
                                                            "index's)")
    p.add_argument("--rerank", type=int, default=None, help="ivf-* indexes: k x RERANK candidates re-scored")
    p.add_argument("--ef-search", type=int, default=None, help="hnsw indexes: search beam (default: the index's)")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("serve", help="an HTTP embedding server (OpenAI and TEI APIs; [serve] extra)",
                       allow_abbrev=False)
    _model_args(p)
    p.add_argument("--index", default=None, metavar="DIR", help="also serve POST /search over this index")
    p.add_argument("--host", default="127.0.0.1", help="default: %(default)s (loopback only)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--int8", action="store_true", help="int8 GEMMs in every layer (x86 CPU); with --backend "
                                                       "onnxruntime, an int8 export made in memory for this CPU")
    p.add_argument("--backend", choices=["torch", "onnxruntime"], default="torch")
    p.add_argument("--device", default=None)
    _threads_arg(p)
    p.add_argument("--max-batch-tokens", type=int, default=16384,
                   help="tokens (padded) per merged model batch (default %(default)s)")
    p.add_argument("--max-batch-size", type=int, default=32,
                   help="texts per merged model batch (default %(default)s)")
    p.add_argument("--max-queue", type=int, default=256, help="texts waiting before 503 (default %(default)s)")
    p.add_argument("--max-inputs", type=int, default=512, help="texts per request before 413 (default %(default)s)")
    p.add_argument("--max-body-bytes", type=int, default=4 * 2**20, help="request body before 413 (default 4 MiB)")
    p.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY' (default: none; also "
                                                   "MINIALBERT_API_KEY)")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=cmd_serve)


# -------------------------------------------------------------------------- fill-mask
def cmd_fill_mask(args: argparse.Namespace) -> int:
    import json

    from .fill_mask import FillMask

    fill = FillMask.from_pretrained(args.model, revision=args.revision, cache_dir=args.cache_dir,
                                    local_files_only=args.offline, device=args.device,
                                    num_layer_calls=args.layer_calls)
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


# ---------------------------------------------------------------------------- inspect
def cmd_inspect(args: argparse.Namespace) -> int:
    from .inspect import make_report

    _, written = make_report(
        args.model, args.text, args.output, png=False if args.no_png else None, token=args.token,
        compare=args.compare, max_length=args.max_length, revision=args.revision, cache_dir=args.cache_dir,
        local_files_only=args.offline, device=args.device,
    )
    if not args.quiet:
        print(f"wrote {', '.join(p.name for p in written)} to {args.output}", file=sys.stderr)
    print(written[0])  # report.html, for `xdg-open "$(minialbert inspect ...)"`
    return 0


# ------------------------------------------------------------------------------ export
def cmd_export(args: argparse.Namespace) -> int:
    from .export import Int8Options, export_onnx
    from .plan import int8_without_saturation

    int8 = False
    if args.int8:
        int8 = Int8Options(weights=args.int8_weights, per_channel=not args.per_tensor, reduce_range=args.reduce_range)
    elif args.int8_weights != "u8" or args.per_tensor or args.reduce_range:
        raise MinialbertError("--int8-weights, --per-tensor and --reduce-range only apply with --int8")
    path = export_onnx(args.model_pos, args.output, int8=int8, revision=args.revision, cache_dir=args.cache_dir,
                       local_files_only=args.offline, num_layer_calls=args.layer_calls)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB"
          + (f", int8 {int8.describe()}" if int8 else ", float32") + "), tokenizer files beside it", file=sys.stderr)
    if int8 and int8.weights == "u8" and int8_without_saturation():
        print("note: this CPU multiplies u8 x s8 without saturating (VNNI/AMX): --int8-weights s8 runs faster "
              "here (ONNX Runtime's U8S8 kernel); u8 stays accurate on every x86 CPU", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------- prune
def cmd_prune(args: argparse.Namespace) -> int:
    from .prune import prune_checkpoint

    summary = prune_checkpoint(args.model_pos, args.output, heads=args.heads, ffn_fraction=args.ffn_fraction,
                               data=args.data, batch_size=args.batch_size, max_length=args.max_length,
                               max_examples=args.max_examples, seed=args.seed, revision=args.revision,
                               cache_dir=args.cache_dir, local_files_only=args.offline)
    before, after = summary["parameters_before"], summary["parameters_after"]
    if not args.quiet:
        heads = ", ".join(str(len(h)) for h in summary["heads_kept"])
        print(f"scored on {summary['examples']} examples; kept heads per layer: {heads}; FFN neurons per layer: "
              f"{', '.join(map(str, summary['intermediate_kept']))}; parameters {before:,} -> {after:,} "
              f"({after / before:.1%})", file=sys.stderr)
        if summary["note"]:
            print(f"minialbert prune: note: {summary['note']}", file=sys.stderr)
    print(summary["output"])
    return 0


# ----------------------------------------------------------------------- distill
def cmd_distill(args: argparse.Namespace) -> int:
    from .pretrain.distill import main as distill_main

    return int(distill_main(args.rest) or 0)


# ---------------------------------------------------------------------- pretrain
def cmd_glue(args: argparse.Namespace) -> int:
    from .glue.run import main as glue_main

    return int(glue_main(args.rest) or 0)


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import main as compare_main

    return int(compare_main(args.rest) or 0)


def cmd_pretrain(args: argparse.Namespace) -> int:
    from .pretrain.train import main as pretrain_main

    return int(pretrain_main(args.rest) or 0)


# -------------------------------------------------------------- fine-tuned task models
# classify / answer / tag run the heads of model.py section 7 through minialbert.tasks;
def cmd_pretrain_data(args: argparse.Namespace) -> int:
    from .pretrain.prepare import main as prepare_main

    return int(prepare_main(args.rest) or 0)


# finetune hands its argument list to minialbert.finetune.train.
def cmd_finetune(args: argparse.Namespace) -> int:
    from .finetune.train import main as finetune_main

    return int(finetune_main(args.rest) or 0)


def _task_args(p: argparse.ArgumentParser, max_length_default: int = 512) -> None:
    _model_args(p)
    _layer_calls_arg(p)
    p.add_argument("--output", "-o", metavar="FILE", help="FILE.jsonl, .json, .csv or .tsv (written atomically; "
                   "default: JSON lines on stdout)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=None,
                   help=f"tokens per input, special tokens included (default: {max_length_default}, or less if "
                        "the model's max_position_embeddings is smaller)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cpu)")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=None)
    _threads_arg(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no summary on stderr")


def _pipeline(cls, args: argparse.Namespace):
    return cls.from_pretrained(args.model, revision=args.revision, cache_dir=args.cache_dir,
                               local_files_only=args.offline, device=args.device, dtype=args.dtype,
                               num_layer_calls=args.layer_calls)


def _emit(args: argparse.Namespace, rows: list[dict]) -> None:
    import json

    from .files import write_rows

    if args.output is None:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return
    write_rows(args.output, rows)
    if not args.quiet:
        print(f"wrote {len(rows)} results to {args.output}", file=sys.stderr)


def _plain_texts(args: argparse.Namespace, positional: list[str]) -> list[str]:
    """Texts from arguments, a .txt/.jsonl --input (one per line / --text-column field) or stdin."""
    args.field = args.text_column if args.input and str(args.input).endswith((".jsonl", ".ndjson")) else None
    return _read_input(args, positional)


def cmd_classify(args: argparse.Namespace) -> int:
    from .files import TABLE_SUFFIXES, InputError
    from .tasks import TextClassifier

    pairs = args.pair or None
    if args.input and args.input != "-" and str(args.input).lower().endswith(TABLE_SUFFIXES):
        from .finetune.data import read_examples

        if args.texts or pairs:
            raise InputError("give texts as arguments or --input FILE, not both")
        examples = read_examples(args.input, "classify", text_column=args.text_column, pair_column=args.pair_column,
                                 require_labels=False)
        texts = [e.text for e in examples]
        if any(e.text_pair is not None for e in examples):
            pairs = [e.text_pair or "" for e in examples]
    else:
        texts = _plain_texts(args, args.texts)
        if pairs is not None and len(pairs) != len(texts):
            raise MinialbertError(f"{len(texts)} texts but {len(pairs)} --pair texts: give one --pair per text")
    classifier = _pipeline(TextClassifier, args)
    results = classifier(texts, pairs, batch_size=args.batch_size, max_length=args.max_length)
    rows = []
    for i, (text, r) in enumerate(zip(texts, results)):
        row = {"text": text}
        if pairs is not None:
            row["text_pair"] = pairs[i]
        row.update(label=r.label, score=r.score)
        if args.all_scores and r.scores:
            row["scores"] = r.scores
        rows.append(row)
    _emit(args, rows)
    return 0


def cmd_answer(args: argparse.Namespace) -> int:
    from .files import InputError
    from .tasks import QuestionAnswerer

    if args.input:
        if args.question is not None or args.context is not None:
            raise InputError("give --question and --context, or --input FILE, not both")
        from .finetune.squad import read_squad

        examples, _ = read_squad(args.input, require_answers=False)
        ids = [e.id for e in examples]
        questions, contexts = [e.question for e in examples], [e.context for e in examples]
    else:
        if args.question is None or args.context is None:
            raise InputError("give --question Q and --context C (or --input FILE.jsonl with question and context)")
        ids, questions, contexts = [None], [args.question], [args.context]
    qa = _pipeline(QuestionAnswerer, args)
    results = qa.answer_batch(questions, contexts, top_k=args.top_k, max_length=args.max_length,
                              doc_stride=args.doc_stride, max_query_length=args.max_query_length,
                              max_answer_length=args.max_answer_length, allow_no_answer=args.allow_no_answer,
                              null_threshold=args.null_threshold, batch_size=args.batch_size)

    def answer_row(a) -> dict:
        return {"answer": a.text, "start": a.start, "end": a.end, "score": a.score, "no_answer": a.is_null}

    rows = []
    for qid, question, answers in zip(ids, questions, results):
        row = {"id": qid} if qid is not None else {}
        row["question"] = question
        row.update(answer_row(answers[0]))
        if args.top_k > 1:
            row["answers"] = [answer_row(a) for a in answers]
        rows.append(row)
    _emit(args, rows)
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    from .tasks import TokenTagger

    texts = _plain_texts(args, args.texts)
    tagger = _pipeline(TokenTagger, args)
    found = tagger(texts, batch_size=args.batch_size, max_length=args.max_length, stride=args.stride)
    _emit(args, [{"text": t, "entities": [e.__dict__ for e in ents]} for t, ents in zip(texts, found)])
    return 0


def _add_task_commands(sub) -> None:
    p = sub.add_parser("classify", help="label texts (or text pairs) with a fine-tuned sequence classifier")
    p.add_argument("texts", nargs="*", help="texts to classify (or use --input / stdin)")
    p.add_argument("--pair", action="append", metavar="TEXT",
                   help="second text of a pair (premise/hypothesis, ...); once per text")
    p.add_argument("--input", "-i", metavar="FILE", help=".csv/.tsv/.jsonl with --text-column (and --pair-column), "
                   "or one text per line; '-' = stdin")
    p.add_argument("--text-column", default=None, help="column or JSON field of the text (default: text)")
    p.add_argument("--pair-column", default=None, help="column of the second text (default: text_pair if present)")
    p.add_argument("--all-scores", action="store_true", help="also write every label's probability")
    _task_args(p)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("answer", help="extract the answer to a question from a context (extractive QA)")
    p.add_argument("--question", "-Q", default=None)
    p.add_argument("--context", "-C", default=None)
    p.add_argument("--input", "-i", metavar="FILE",
                   help="JSON lines with question and context (and id), or a SQuAD .json file")
    p.add_argument("--top-k", "-k", type=int, default=1, help="also list the K best answers")
    p.add_argument("--doc-stride", type=int, default=128, help="tokens shared by consecutive windows of a long context")
    p.add_argument("--max-query-length", type=int, default=64, help="question tokens kept")
    p.add_argument("--max-answer-length", type=int, default=30, help="longest answer, in tokens")
    p.add_argument("--allow-no-answer", action=argparse.BooleanOptionalAction, default=None,
                   help="SQuAD 2.0: answer 'no answer' when it scores best (default: as the model was trained)")
    p.add_argument("--null-threshold", type=float, default=0.0,
                   help="'no answer' must beat the best span by more than this")
    _task_args(p, max_length_default=384)
    p.set_defaults(func=cmd_answer)

    p = sub.add_parser("tag", help="find entities (BIO tags) with character spans")
    p.add_argument("texts", nargs="*", help="texts to tag (or use --input / stdin)")
    p.add_argument("--input", "-i", metavar="FILE", help="one text per line, or .jsonl with --text-column")
    p.add_argument("--text-column", default=None, help="JSON field of the text in .jsonl input (default: text)")
    p.add_argument("--stride", type=int, default=64, help="tokens shared by consecutive windows of a long text")
    _task_args(p)
    p.set_defaults(func=cmd_tag)


def _embed_args(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    _layer_calls_arg(p)
    p.add_argument("--input", "-i", metavar="FILE",
                   help="one text per line, or .jsonl with --field; '-' or nothing piped = stdin")
    p.add_argument("--field", default=None, help="JSON field holding the text in .jsonl input (default: text)")
    p.add_argument("--pooling", choices=["cls", "mean", "max", "mean_sqrt_len", "weightedmean", "lasttoken", "pooler"],
                   default=None,
                   help="how token vectors become one vector (default: the checkpoint's, else cls)")
    p.add_argument("--layer", type=layer_arg, default=None,
                   help="hidden layer to use: -1 last (default), 0 after the embedding projection; "
                        "-1,-2 averages layers")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=None, help="tokens per sequence, [CLS]/[SEP] included")
    p.add_argument("--long-text", choices=["truncate", "chunk", "error"], default="truncate",
                   help="texts over --max-length: truncate (default), chunk into overlapping windows, or error")
    p.add_argument("--stride", type=int, default=128, help="tokens shared by consecutive windows with --long-text chunk")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cpu)")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16", "auto"], default=None,
                   help="auto: bfloat16 on CPUs with AVX512-BF16 or AMX, float32 elsewhere (says which on stderr)")
    p.add_argument("--int8", action="store_true",
                   help="int8 GEMMs in every layer, for last-layer vectors (x86 CPU): mean-pooled cosine to float32 >= 0.999 on the "
                        "benchmark corpus; with --backend onnxruntime, an int8 export made in memory for this CPU "
                        "(the fastest batch-1 path on VNNI CPUs); speed per CPU in docs/guides/speed.md")
    p.add_argument("--backend", choices=["torch", "onnxruntime"], default="torch",
                   help="onnxruntime: run an ONNX export (a folder from `minialbert export onnx`, or the checkpoint "
                        "exported in memory); needs the [onnx] extra")
    _threads_arg(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary on stderr")


def _prompt_args(p: argparse.ArgumentParser, prefix: str = "", to: str = "each text",
                 default: str = "the model's default prompt") -> None:
    """--prompt-name NAME | --prompt TEXT; with prefix="document", --document-prompt-name | --document-prompt."""
    flag = f"--{prefix}-prompt" if prefix else "--prompt"
    group = p.add_mutually_exclusive_group()
    group.add_argument(flag + "-name", metavar="NAME", default=None,
                       help=f"prepend the model's stored prompt NAME to {to} (default: {default}, if any)")
    group.add_argument(flag, metavar="TEXT", default=None, help=f"prepend TEXT to {to} instead; '' for no prompt")


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minialbert", allow_abbrev=False,
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
    p.add_argument("--engine", action="store_true",
                   help="print the inference engine's kernel plan for this machine instead (no model needed)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("embed", help="texts -> vectors (.npy, .jsonl, or JSON on stdout)")
    p.add_argument("texts", nargs="*", help="texts to embed (or use --input / stdin)")
    _embed_args(p)
    p.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                   help="L2-normalize the vectors (default: the checkpoint's, else no)")
    p.add_argument("--output", "-o", metavar="FILE", help="FILE.npy (float32 matrix), .jsonl or .json, written "
                   "atomically; or DIR/ (trailing slash): stream --input into Parquet shards, resumable")
    p.add_argument("--tokens", action="store_true", help="write every token's vector and offsets as JSON lines")
    _prompt_args(p)
    g = p.add_argument_group("streaming into --output DIR/ (reads .txt, .jsonl, .csv, .tsv, .parquet)")
    g.add_argument("--resume", action="store_true",
                   help="continue the run DIR holds (after a crash or kill); a new DIR is fine too")
    g.add_argument("--window", type=int, default=None,
                   help="texts sorted by length together and written as one shard (default: 20000)")
    g.add_argument("--with-text", action="store_true", help="store each text beside its vector")
    g.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="embed with Ray Data actors: alone, a local Ray (or the cluster RAY_ADDRESS names); "
                        "or a cluster address such as auto or ray://host:10001")
    g.add_argument("--ray-actors", type=int, default=None, help="actors (model copies); default: all CPUs/GPUs")
    g.add_argument("--ray-cpus", type=float, default=1, help="CPUs per actor (default: 1)")
    g.add_argument("--ray-gpus", type=float, default=0, help="GPUs per actor (default: 0)")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("similarity", help="rank candidate texts by similarity to a query (cosine unless the "
                       "model says otherwise)")
    p.add_argument("query", help="the query text")
    p.add_argument("candidates", nargs="*", help="candidate texts (or use --input / stdin)")
    _embed_args(p)
    p.add_argument("--top-k", "-k", type=int, default=None, help="print only the best K")
    _prompt_args(p, to="the query", default="the model's 'query' prompt, else its default prompt")
    _prompt_args(p, "document", to="each candidate",
                 default="the model's 'document', 'passage' or 'corpus' prompt, else its default prompt")
    p.set_defaults(func=cmd_similarity)

    p = sub.add_parser("fill-mask", help="predict the words behind [MASK] with the MLM head")
    p.add_argument("text", help='a text with one or more [MASK], e.g. "Paris is the [MASK] of France."')
    _model_args(p)
    _layer_calls_arg(p)
    p.add_argument("--top-k", "-k", type=int, default=5)
    p.add_argument("--device", default=None)
    _threads_arg(p)
    p.add_argument("--json", action="store_true", help="print the predictions as JSON")
    p.set_defaults(func=cmd_fill_mask)

    p = sub.add_parser("inspect", help="see inside: a self-contained HTML report (Figure 1, attention, similarity)")
    p.add_argument("text", help="the text to run through the model")
    _model_args(p)
    p.add_argument("--output", "-o", default="inspect-report", metavar="DIR",
                   help="directory for report.html, figure1.csv/.json and PNGs (default: %(default)s)")
    p.add_argument("--compare", action="append", metavar="MODEL",
                   help="overlay this checkpoint's Figure 1 (repeatable; its depth may differ)")
    p.add_argument("--token", default=None,
                   help="token the similarity view starts on: an index or a piece (default: the first word piece)")
    p.add_argument("--max-length", type=int, default=None, help="tokens kept, [CLS]/[SEP] included (default: the model's)")
    p.add_argument("--no-png", action="store_true", help="skip the matplotlib PNGs")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cpu)")
    _threads_arg(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no summary on stderr")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("export", help="write a model in another format (onnx)")
    formats = p.add_subparsers(dest="format", metavar="FORMAT")
    formats.required = True
    p = formats.add_parser("onnx", help="ONNX (for ONNX Runtime): shared weights stored once; --int8 quantizes "
                                        "every weight MatMul")
    p.add_argument("model_pos", metavar="MODEL", help="checkpoint directory or Hub repo id")
    p.add_argument("output", metavar="OUT.onnx", help="the file to write; the tokenizer files go beside it")
    _hub_args(p)
    _layer_calls_arg(p)
    p.add_argument("--int8", action="store_true", help="int8 weights, dynamic int8 activations (about a third "
                                                      "of the float32 file)")
    p.add_argument("--int8-weights", choices=["u8", "s8"], default="u8",
                   help="u8 (default; accurate on every x86 CPU) or s8 (the faster kernel; on CPUs without VNNI "
                        "add --reduce-range)")
    p.add_argument("--per-tensor", action="store_true", help="one weight scale per matrix instead of per column")
    p.add_argument("--reduce-range", action="store_true", help="7-bit weights (avoids int16 saturation of s8 "
                                                              "weights on CPUs without VNNI)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("prune", allow_abbrev=False,
                       help="remove the least important attention heads and FFN neurons (Michel et al. "
                            "2019 importance on your data); writes a smaller checkpoint")
    p.add_argument("model_pos", metavar="MODEL", help="checkpoint with an MLM head or a sequence-classification head")
    p.add_argument("--heads", type=int, default=None, metavar="K", help="attention heads to remove from each layer")
    p.add_argument("--ffn-fraction", type=float, default=None, metavar="F",
                   help="share of FFN neurons to remove from each layer, in (0, 1)")
    p.add_argument("--data", required=True, metavar="FILE",
                   help="texts to score on (one per line / .jsonl; MLM loss), or a finetune table with labels for a "
                        "fine-tuned classifier (task loss)")
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="new checkpoint directory")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=128, help="tokens per example while scoring")
    p.add_argument("--max-examples", type=int, default=512, help="score on at most this many examples")
    p.add_argument("--seed", type=int, default=0, help="which word pieces are masked for the MLM loss")
    _hub_args(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no summary on stderr")
    p.set_defaults(func=cmd_prune)

    for name, func, text in (("pretrain-data", cmd_pretrain_data, "tokenize a corpus once into memory-mappable "
                                                                  "shards for pretrain --data (see --help)"),
                             ("pretrain", cmd_pretrain, "pre-train an ALBERT from scratch (MLM + SOP; see --help)"),
                             ("finetune", cmd_finetune, "fine-tune a task head: classify, regression, multilabel, "
                                                        "tag, qa (see --help)"),
                             ("glue", cmd_glue, "fine-tune and score a model on the GLUE tasks (see --help)"),
                             ("compare", cmd_compare, "pre-training and GLUE runs side by side in one HTML page"),
                             ("distill", cmd_distill, "train a smaller/shallower student to mimic a teacher "
                                                      "(KL + hidden-state MSE, the pretrain loop; see --help)")):
        p = sub.add_parser(name, help=text, add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=func)
    _add_task_commands(sub)
    _add_search_commands(sub)
    return no_abbreviations(parser)


def no_abbreviations(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Turn off argparse's prefix matching on `parser` and every subcommand's parser, so that a
    misspelt flag (`--poolin mean`) is an error instead of silently meaning `--pooling`."""
    for p in _parsers(parser):
        p.allow_abbrev = False
    return parser


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found, stack = [], [parser]
    while stack:
        p = stack.pop()
        found.append(p)
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
    return found


def _command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)parser of the command that `args` came from, so that a bad value is reported with
    that command's usage (`minialbert embed: error: ...`), not the top-level one."""
    while True:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        name = getattr(args, sub.dest, None) if sub is not None else None
        if name not in getattr(sub, "choices", {}):
            return parser
        parser = sub.choices[name]


PASSTHROUGH = {"pretrain": cmd_pretrain, "pretrain-data": cmd_pretrain_data, "finetune": cmd_finetune, "glue": cmd_glue,  # commands with their own
               "compare": cmd_compare, "distill": cmd_distill}  # argument parser


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
        args, unknown = parser.parse_known_args(attach_negative_values(parser, argv))
        parser = _command_parser(parser, args)
        if unknown:  # reported with the subcommand's usage, as argparse does for its other errors
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command != "search" and getattr(args, "top_k", 1) is not None and getattr(args, "top_k", 1) < 1:
        parser.error("--top-k must be at least 1")
    if getattr(args, "batch_size", 1) < 1:
        parser.error("--batch-size must be at least 1")
    if getattr(args, "window", None) is not None and args.window < 1:
        parser.error("--window must be at least 1")
    if getattr(args, "ray_actors", None) is not None and args.ray_actors < 1:
        parser.error("--ray-actors must be at least 1")
    threads = getattr(args, "torch_threads", None)
    if threads is not None:
        if threads < 1:
            parser.error("--threads must be at least 1")
        if getattr(args, "ray", None) is not None:
            parser.error("--threads sets this process's threads; with --ray each actor runs --ray-cpus threads")
        import torch

        torch.set_num_threads(threads)  # the process's intra-op pool: threads started later use it too
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
