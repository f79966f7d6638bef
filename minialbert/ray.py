"""Embedding with Ray Data: a callable class for `map_batches`, and the `minialbert embed --ray` driver.

In your own pipeline (any Ray Data source and sink; the model loads once per actor):

    import ray
    from minialbert.ray import RayEmbedder

    ds = ray.data.read_parquet("s3://bucket/passages/")            # a "text" column
    ds = ds.map_batches(RayEmbedder, fn_constructor_kwargs={"model": "albert-base-v2", "pooling": "mean"},
                        batch_size=4096, batch_format="pyarrow",
                        compute=ray.data.ActorPoolStrategy(size=4), num_gpus=1)   # or num_cpus=2 per actor
    ds.write_parquet("s3://bucket/vectors/")                       # + "vector": fixed_size_list<float32>

Each call embeds its batch with `Embedder.embed`, which sorts the batch by length, so the
length-aware batching of the single-process path happens inside every Ray batch too.

`embed_with_ray(input, "out/", model=...)` (the CLI's `--ray`) reads the same input formats as
minialbert.stream and writes the same resumable directory of shards and manifest: the driver
reads the input once to find where each window starts, Ray actors read and embed one window
per call, and the driver writes each window as a shard as soon as its vectors arrive.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from .errors import MinialbertError
from .files import InputError

TOKENS_COLUMN = "_minialbert_tokens"


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise MinialbertError("--ray needs Ray Data, which is not installed: pip install 'minialbert[ray]'") from None
    return ray


def _as_table(batch):
    """A map_batches batch (pyarrow Table, pandas DataFrame or dict of numpy arrays) as a pyarrow Table."""
    import pyarrow as pa

    if isinstance(batch, pa.Table):
        return batch
    if isinstance(batch, dict):
        return pa.table({k: pa.array(list(v) if getattr(v, "ndim", 1) != 1 else v) for k, v in batch.items()})
    return pa.Table.from_pandas(batch, preserve_index=False)


class RayEmbedder:
    """Texts in, vectors out, for `ray.data.Dataset.map_batches` (one model per actor).

    model: a Hub repo id or a checkpoint directory every node can read. The other keywords are
    Embedder.from_pretrained's and Embedder.embed's (prompt_name/prompt for sentence-transformers
    models with prompts; num_layer_calls=N runs N calls of the shared layer). text_column/vector_column name the
    columns; keep_text=False drops the text from the output. device=None means the GPU Ray
    assigned to the actor (num_gpus=...) if any, else the CPU, with as many torch threads as
    the actor has CPUs (num_cpus=...). window=W embeds the rows of each id // W group on their
    own, so the batches (and the bits) do not depend on how Ray cut the data into blocks.
    The output is a pyarrow Table: the input columns, then `vector` (fixed_size_list<float32>).
    """

    def __init__(self, model: str, *, text_column: str = "text", vector_column: str = "vector", keep_text: bool = True,
                 pooling: str | None = None, layer=None, normalize: bool | None = None, batch_size: int = 32,
                 max_length: int | None = None, long_text: str = "truncate", stride: int = 128,
                 device: str | None = None, dtype: str | None = None, revision: str | None = None,
                 cache_dir: str | None = None, local_files_only: bool = False, window: int | None = None,
                 prompt_name: str | None = None, prompt: str | None = None, report_tokens: bool = False,
                 int8: bool = False, num_layer_calls: int | None = None):
        import torch

        from .embed import Embedder

        if device is None:
            device = "cuda" if torch.cuda.is_available() and _assigned("GPU") else "cpu"
        cpus = _assigned("CPU")
        if device == "cpu" and cpus:
            torch.set_num_threads(max(1, int(cpus)))  # Ray's per-actor CPUs, not every core of the node
        self.embedder = Embedder.from_pretrained(model, revision=revision, cache_dir=cache_dir,
                                                 local_files_only=local_files_only, device=device, dtype=dtype,
                                                 max_length=max_length, int8=int8, num_layer_calls=num_layer_calls)
        self.text_column, self.vector_column, self.keep_text = text_column, vector_column, keep_text
        self.window, self.report_tokens = window, report_tokens
        self.kwargs = dict(pooling=pooling, layer=layer, normalize=normalize, batch_size=batch_size,
                           long_text=long_text, stride=stride, prompt_name=prompt_name, prompt=prompt)

    def __call__(self, batch):
        import pyarrow as pa

        table = _as_table(batch)
        if self.text_column not in table.column_names:
            raise MinialbertError(f"no column {self.text_column!r} in the batch (its columns: "
                                  f"{', '.join(table.column_names)}); pass text_column=")
        texts = table.column(self.text_column).to_pylist()
        if None in texts:
            raise MinialbertError(f"row {texts.index(None)} of a batch has no text (null in {self.text_column!r})")
        tokens = [0]

        def count(_sequences: int, n_tokens: int) -> None:
            tokens[0] += n_tokens

        if self.window is None:
            vectors = self.embedder.embed(texts, progress=count, **self.kwargs)
        else:  # one embed call per window, whatever blocks Ray cut
            groups = table.column("id").to_numpy() // self.window
            vectors = np.empty((len(texts), self.embedder.dim), dtype=np.float32)
            for g in dict.fromkeys(groups.tolist()):
                rows = np.flatnonzero(groups == g)
                vectors[rows] = self.embedder.embed([texts[i] for i in rows], progress=count, **self.kwargs)
        if not self.keep_text:
            table = table.drop_columns([self.text_column])
        column = pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(vectors).reshape(-1)),
                                                   self.embedder.dim)
        table = table.append_column(self.vector_column, column)
        if self.report_tokens:  # the CLI's progress bar: this call's token count, on its first row
            counts = np.zeros(len(texts), dtype=np.int64)
            counts[:1] = tokens[0]
            table = table.append_column(TOKENS_COLUMN, pa.array(counts))
        return table


def _assigned(resource: str) -> float:
    """How much of `resource` Ray gave this worker (0 outside Ray)."""
    try:
        import ray

        if not ray.is_initialized():
            return 0
        return float(ray.get_runtime_context().get_assigned_resources().get(resource, 0))
    except Exception:  # not in a Ray worker, or an older Ray without the runtime context API
        return 0


class _FileWindowEmbedder(RayEmbedder):
    """The CLI's actor: each input row names a window of the input file; read it, then embed it."""

    def __init__(self, model: str, *, path: str, input_format: str, field: str | None, with_text: bool, **kwargs):
        super().__init__(model, keep_text=with_text, report_tokens=True, **kwargs)
        self.path, self.input_format, self.field = path, input_format, field

    def __call__(self, batch):
        import pyarrow as pa

        from .readers import Position, open_input
        from .stream import texts_digest

        inp = open_input(self.path, field=self.field, format=self.input_format)
        tables = []
        for w in _as_table(batch).to_pylist():
            stream = inp.texts(Position(w["index"], w["offset"], w["line"]))
            try:
                texts = stream.take(w["rows"])
            finally:
                stream.close()
            if len(texts) != w["rows"] or texts_digest(texts) != w["sha256"]:
                raise InputError(f"{inp.name} changed while it was being embedded (texts {w['index']:,}-"
                                 f"{w['index'] + w['rows'] - 1:,}); rerun with --resume")
            ids = np.arange(w["index"], w["index"] + len(texts), dtype=np.int64)
            tables.append(super().__call__(pa.table({"id": ids, "text": texts})))
        return pa.concat_tables(tables)


def _map_windows(ray, ds, kwargs: dict):
    """ds.map_batches(_FileWindowEmbedder, **kwargs), with actor restarts off.

    A failed window is redone by --resume, so restarting an actor buys nothing; and Ray Data's
    default (restart forever) makes Ray's core worker print an error-looking line about
    constructor arguments on every run (ray-project/ray#53727). Ray 2.60 deprecates passing
    max_restarts this way; without it (a later Ray) that line comes back, and nothing else changes.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        try:
            return ds.map_batches(_FileWindowEmbedder, max_restarts=0, **kwargs)
        except TypeError:
            return ds.map_batches(_FileWindowEmbedder, **kwargs)


def scan_windows(inp, window: int) -> list[dict]:
    """Read the input once: where each window starts, how many texts it has, and their digest."""
    from .stream import texts_digest

    stream, windows = inp.texts(), []
    try:
        while True:
            start = stream.position
            texts = stream.take(window)
            if not texts:
                return windows
            windows.append({"window": len(windows), "index": start.index, "offset": start.offset, "line": start.line,
                            "rows": len(texts), "sha256": texts_digest(texts)})
    finally:
        stream.close()


def _grown_texts(inp, out, w: dict) -> list[str] | None:
    """The texts of window w when its shard holds fewer rows than it now has, else None.

    That is the partial last window of an earlier run whose input has since grown (texts
    appended): check_window compares the shard with these texts' first rows, so that the window
    is embedded again whole and its new shard records what it extends (as embed_file does)."""
    from .readers import Position

    done = out.completed.get(w["window"])
    if done is None or done["rows"] >= w["rows"] or done["texts_sha256"] == w["sha256"]:
        return None
    stream = inp.texts(Position(w["index"], w["offset"], w["line"]))
    try:
        return stream.take(w["rows"])
    finally:
        stream.close()


def _user_error(e: BaseException) -> MinialbertError | None:
    """The MinialbertError behind a Ray task failure, if that is what it was."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, MinialbertError):
            return e
        cause = getattr(e, "cause", None)
        e = cause if isinstance(cause, BaseException) else (e.__cause__ or e.__context__)
    return None


def _start_ray(ray, address: str | None) -> bool:
    """Connect to (or start) Ray; True if this call started it (and so should shut it down)."""
    if ray.is_initialized():
        return False
    # Ray's own INFO/WARNING lines (token auth, "progress bars disabled", execution summaries)
    # would interleave with minialbert's progress on the console; errors still show, and Ray
    # Data's log file in the Ray session directory keeps everything.
    logging.getLogger("ray").setLevel(logging.ERROR)
    for handler in logging.getLogger("ray.data").handlers:
        if "File" not in type(handler).__name__:
            handler.setLevel(logging.ERROR)
    kwargs = dict(address=address, log_to_driver=False, configure_logging=False)
    if address is None and not os.environ.get("RAY_ADDRESS"):
        kwargs["include_dashboard"] = False  # only allowed when starting a new local Ray
    try:
        ray.init(**kwargs)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise MinialbertError(f"cannot connect to Ray at {address or 'a new local instance'}: "
                              f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from None
    return True


def embed_with_ray(source, output, *, model: str, revision: str | None = None, cache_dir: str | None = None,
                   local_files_only: bool = False, dtype: str | None = None, address: str | None = None,
                   actors: int | None = None, cpus_per_actor: float = 1, gpus_per_actor: float = 0,
                   field: str | None = None, pooling: str | None = None, layer=None, normalize: bool | None = None,
                   batch_size: int = 32, max_length: int | None = None, long_text: str = "truncate",
                   stride: int = 128, prompt_name: str | None = None, prompt: str | None = None,
                   window: int | None = None, with_text: bool = False, resume: bool = False,
                   progress: bool | str = False, on_redo=None, int8: bool = False,
                   num_layer_calls: int | None = None):
    """minialbert.stream.embed_file, with Ray actors doing the embedding: same directory, same resume.

    address: None starts a local Ray (or joins the cluster RAY_ADDRESS names); "auto",
    "host:6379" or "ray://host:10001" join that cluster. The input file and a local `model`
    directory must be readable at the same path by every node (a Hub repo id works anywhere);
    the output directory is written by this process only.
    """
    ray = _import_ray()
    from .embed import Embedder
    from .readers import open_input
    from .stream import (DEFAULT_WINDOW, Progress, RunSummary, check_no_extra_windows, check_window, guarded_run,
                         model_identity, open_output, resolve_options)

    t0 = time.perf_counter()
    inp = open_input(source, field=field)
    # The driver loads the model too, on its CPU: to fingerprint it for the manifest and to
    # check the options before any actor starts.
    if int8 and gpus_per_actor:
        raise MinialbertError("int8 runs on the CPU: drop --ray-gpus (or --int8)")
    embedder = Embedder.from_pretrained(model, revision=revision, cache_dir=cache_dir,
                                        local_files_only=local_files_only, dtype=dtype, max_length=max_length,
                                        int8=int8, num_layer_calls=num_layer_calls)
    options = resolve_options(embedder, inp, pooling=pooling, layer=layer, normalize=normalize, batch_size=batch_size,
                              max_length=max_length, long_text=long_text, stride=stride,
                              window=window or DEFAULT_WINDOW, with_text=with_text,
                              device="cuda" if gpus_per_actor else "cpu", prompt_name=prompt_name, prompt=prompt)
    identity = model_identity(embedder, model, revision)
    del embedder
    W = options["window"]
    peek = inp.texts()
    empty = not peek.take(1)
    peek.close()
    if empty:  # before the directory is created
        raise InputError(f"no texts in {inp.name}: it is empty")
    out = open_output(output, identity, options, inp, resume=resume)
    summary = RunSummary(output=out.path, rows=out.rows_done, complete=out.complete, shards_redone=tuple(out.redone))
    for name in out.redone if on_redo else ():
        on_redo(name)
    bar = Progress(progress)
    with guarded_run(out, bar):
        if out.complete:
            return summary
        windows = scan_windows(inp, W)
        bar.total, bar.estimated = windows[-1]["index"] + windows[-1]["rows"], False
        pending = []
        for w in windows:
            if check_window(out, w["window"], w["sha256"], _grown_texts(inp, out, w)):
                bar.skip(w["rows"])
            else:
                pending.append(w)
        check_no_extra_windows(out, len(windows))
        started = _start_ray(ray, address)
        try:
            _run_windows(ray, out, pending, actors=actors, model=model, inp=inp, options=options,
                         cpus_per_actor=cpus_per_actor, gpus_per_actor=gpus_per_actor, bar=bar, summary=summary,
                         revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, dtype=dtype,
                         int8=int8, num_layer_calls=num_layer_calls)
        finally:
            if started:
                ray.shutdown()
        out.finish(windows[-1]["index"] + windows[-1]["rows"])
        summary.rows, summary.complete = out.rows_done, True
    summary.seconds = time.perf_counter() - t0
    return summary


def _run_windows(ray, out, pending: list[dict], *, actors: int | None, model: str, inp, options: dict,
                 cpus_per_actor: float, gpus_per_actor: float, bar, summary, **load) -> None:
    """Embed the pending windows on Ray actors; write each as a shard as soon as it is whole.

    load: revision, cache_dir, local_files_only, dtype, int8, num_layer_calls (how each actor loads the model).
    """
    from .stream import embed_kwargs

    W, with_text = options["window"], options["with_text"]
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # minialbert draws its own (texts/s, tokens/s, ETA)
    context.print_on_execution_start = False
    resources = ray.cluster_resources()
    kind, per_actor = ("GPU", gpus_per_actor) if gpus_per_actor else ("CPU", cpus_per_actor)
    if resources.get(kind, 0) < per_actor:
        raise MinialbertError(f"the Ray cluster has {resources.get(kind, 0):g} {kind}(s); each actor asks for "
                              f"{per_actor:g} (--ray-{kind.lower()}s)")
    n_actors = max(1, min(actors or int(resources[kind] // per_actor), len(pending)))
    constructor = dict(path=str(inp.path.resolve()), input_format=inp.format, field=inp.field, with_text=with_text,
                       device="cuda" if gpus_per_actor else "cpu", window=W, **load, **embed_kwargs(options))
    ds = _map_windows(ray, ray.data.from_items(pending, override_num_blocks=len(pending)), dict(
        fn_constructor_args=(str(model),), fn_constructor_kwargs=constructor, batch_size=1,
        batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=n_actors),
        num_cpus=cpus_per_actor, num_gpus=gpus_per_actor or None))
    expected = {w["window"]: w for w in pending}
    parts: dict[int, list] = {}  # windows whose rows Ray has returned in more than one piece
    bar.begin()
    try:
        for table in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            windows = table.column("id").to_numpy() // W
            for k in np.unique(windows).tolist():
                parts.setdefault(k, []).append(table.filter(windows == k))
                if sum(p.num_rows for p in parts[k]) == expected[k]["rows"]:
                    _write_window(out, k, parts.pop(k), expected[k]["sha256"], with_text, bar, summary)
    except Exception as e:
        user = _user_error(e)
        if user is None:
            raise
        raise type(user)(str(user).splitlines()[0]) from None
    if parts:
        raise RuntimeError(f"Ray returned incomplete windows {sorted(parts)}")  # a bug, not a user error


def _write_window(out, k: int, parts: list, digest: str, with_text: bool, bar, summary) -> None:
    import pyarrow as pa

    from .shards import _vectors_of

    table = pa.concat_tables(parts)
    table = table.take(np.argsort(table.column("id").to_numpy(), kind="stable"))
    tokens = int(np.sum(table.column(TOKENS_COLUMN).to_numpy()))
    texts = table.column("text").to_pylist() if with_text else None
    shard = out.write_shard(k, table.column("id").to_numpy(), _vectors_of(table, out.path), texts, digest,
                            extends=out.grown.get(k))
    summary.count(table.num_rows, tokens)
    bar.window_done(table.num_rows, shard["file"], n_tokens=tokens)
