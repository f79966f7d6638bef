"""Embed a corpus file into a directory of Parquet shards, in bounded memory, resumable after a crash.

    from minialbert import Embedder
    from minialbert.stream import embed_file
    emb = Embedder.from_pretrained("albert-base-v2")
    embed_file(emb, "corpus.jsonl", "vectors/", field="body", pooling="mean", resume=True)
    ids, vectors = minialbert.load_vectors("vectors/")

The input is read as a stream, `window` texts at a time (20,000 by default). Each window is
embedded with `Embedder.embed`, which sorts it by length so batches pad little, and written as
one shard (see minialbert.shards). Memory holds one window: its texts, token ids and vectors.

Resuming is exact. A window's batches depend only on its own texts, so recomputing a window
after a crash gives the same batches, hence the same bits (on the same machine, device and
thread count), as an uninterrupted run. On resume, the texts of every completed window are
read again and checked against the SHA-256 the manifest recorded for them: a changed input is
refused instead of silently mixing two corpora. Only the windows not yet written are embedded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import MinialbertError
from .files import InputError
from .readers import TextInput, open_input
from .shards import OutputDirectory, OutputDirError

DEFAULT_WINDOW = 20_000


@dataclass
class RunSummary:
    """What embed_file (or the Ray path) did."""

    output: Path
    rows: int                # texts in the directory now
    complete: bool           # every text of the input is in it
    embedded: int = 0        # texts embedded by this call (the rest were done before)
    shards_written: int = 0
    shards_redone: tuple = ()  # shards found damaged on resume, and written again
    tokens: int = 0
    seconds: float = 0.0

    def count(self, rows: int, tokens: int) -> None:
        """One more shard written by this call."""
        self.embedded += rows
        self.shards_written += 1
        self.tokens += tokens


# ---------------------------------------------------------------------- identity
def model_identity(embedder, name: str | None = None, revision: str | None = None) -> dict:
    """The model as the manifest records it: a SHA-256 of everything that decides the numbers.

    That is the config, every weight (after any dtype cast), the tokenizer's files and
    options, and the embedder's lower-casing; not the path it was loaded from, so a moved
    checkpoint still resumes and a retrained one in the same folder does not.
    """
    import torch

    model, tok = embedder.model, embedder.tokenizer
    h = hashlib.sha256()
    config = {f.name: getattr(model.config, f.name) for f in dataclasses.fields(model.config) if f.name != "extra"}
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    if not isinstance(model, torch.nn.Module):  # an ONNX Runtime session (backend="onnxruntime")
        h.update(f"onnx|{model.fingerprint}|".encode())
    else:
        with torch.no_grad():
            for key, tensor in sorted(model.state_dict().items()):
                t = tensor.detach().to("cpu").contiguous().reshape(-1)
                h.update(f"{key}|{t.dtype}|{tuple(tensor.shape)}|".encode())
                if t.numel():
                    h.update(memoryview(t.view(torch.uint8).numpy()))  # no copy of the weights
    for attr in ("vocab_file", "tokenizer_file"):
        path = getattr(tok, attr, None)
        if path and os.path.isfile(path):
            h.update(Path(path).read_bytes())
    options = {k: getattr(tok, k, None) for k in ("do_lower_case", "keep_accents", "compat")}
    # Which pieces are matched as added tokens changed with transformers 5.25 (issue 25) under the same
    # compat name: a shard directory started before that change must not be resumed with the new ids.
    if hasattr(tok, "get_added_vocab"):
        options["added_tokens"] = sorted(tok.get_added_vocab().items())
    options["lowercase"] = getattr(embedder, "lowercase", False)
    h.update(json.dumps(options, sort_keys=True, default=str).encode())
    return {"name": str(name) if name is not None else None, "revision": revision,
            "fingerprint": "sha256:" + h.hexdigest(), "dtype": str(model.dtype).removeprefix("torch.")}


def texts_digest(texts: list[str]) -> str:
    """SHA-256 of a window's texts (JSON keeps the boundaries between texts unambiguous)."""
    return hashlib.sha256(json.dumps(texts, ensure_ascii=False).encode("utf-8", "surrogatepass")).hexdigest()


def resolve_options(embedder, inp: TextInput, *, pooling=None, layer=None, normalize=None, batch_size=32,
                    max_length=None, long_text="truncate", stride=128, window=DEFAULT_WINDOW, with_text=False,
                    device: str | None = None, prompt_name: str | None = None, prompt: str | None = None) -> dict:
    """Every option that changes a vector or the directory's layout, with defaults filled in.

    Checked now, with a one-text probe, so that a bad option fails before the directory is
    touched rather than hours into the run.
    """
    if window < 1:
        raise MinialbertError(f"window must be at least 1, got {window}")
    if layer is not None and not isinstance(layer, int):
        layer = [int(x) for x in layer]
    if layer == -1 or layer == [-1]:
        layer = None
    options = {
        "pooling": pooling or embedder.pooling,
        "layer": layer,
        "normalize": embedder.normalize if normalize is None else bool(normalize),
        "batch_size": int(batch_size),
        "max_length": int(max_length or embedder.max_length),
        "long_text": long_text,
        "stride": int(stride) if long_text == "chunk" else None,  # matters only when chunking
        # the prompt's text itself (sentence-transformers models): "" for none
        "prompt": embedder.resolve_prompt(prompt_name, prompt),
        "window": int(window),
        "with_text": bool(with_text),
        "runtime": embedder.runtime,  # torch, torch-int8, onnxruntime(-int8): what computes the vectors
        "input_format": inp.format,
        "field": inp.field,
        "device": _device_type(device or embedder.model.device),
    }
    probe = embedder.embed([""], **embed_kwargs(options))
    if options["long_text"] == "chunk" and not 0 <= options["stride"] < options["max_length"] - 2:
        raise MinialbertError(f"stride must be in [0, {options['max_length'] - 2}) for max_length "
                              f"{options['max_length']}, got {options['stride']}")
    options["dim"] = int(probe.shape[1])
    return options


def _device_type(device) -> str:
    """cpu, cuda, mps: the kind of device decides the bits; which of two identical GPUs does not."""
    import torch

    return torch.device(device).type


def embed_kwargs(options: dict) -> dict:
    """The Embedder.embed arguments of a resolved options dict."""
    return {"pooling": options["pooling"], "layer": options["layer"], "normalize": options["normalize"],
            "batch_size": options["batch_size"], "max_length": options["max_length"],
            "long_text": options["long_text"], "stride": options["stride"] or 128,
            "prompt": options.get("prompt", "")}


def input_record(inp: TextInput) -> dict:
    return {"path": str(Path(inp.path).resolve()), "size": inp.size, "mtime_ns": inp.mtime_ns}


def open_output(output, model: dict, options: dict, inp: TextInput, *, resume: bool) -> OutputDirectory:
    """Create or resume the output directory; a complete run is only accepted on the same input."""
    options = json.loads(json.dumps(options))  # JSON types, as the manifest will hold them
    dim = options.pop("dim")
    out = OutputDirectory.open(output, {"model": model, "options": options, "input": input_record(inp), "dim": dim},
                               resume=resume)
    if out.complete:
        before = out.manifest["input"]
        if resume and inp.size > (before.get("size") or 0):
            # the input grew (texts appended): embed the new texts; the windows' checksums
            # prove that the old ones are unchanged (check_window)
            out.update(complete=False, total_rows=None, input=input_record(inp))
        elif before.get("size") != inp.size:
            out.close()
            raise OutputDirError(f"{output} holds a complete run made from an input of {before.get('size'):,} bytes; "
                                 f"{inp.name} now has {inp.size:,}; write the new input to another directory")
    return out


def check_window(out: OutputDirectory, window: int, digest: str, texts: list[str] | None = None) -> bool:
    """True if `window` is already done; refuses an input whose texts changed under a done window.

    A partial last window that has grown (texts appended to the input, then --resume) is not
    done: it is embedded again whole, and its new shard records `extends` (the rows and texts
    checksum it began with), so that `minialbert index --update` adds only the new rows.
    """
    shard = out.completed.get(window)
    if shard is None:
        return False
    if shard["texts_sha256"] != digest:
        rows = shard["rows"]
        if texts is not None and rows < len(texts) and texts_digest(texts[:rows]) == shard["texts_sha256"]:
            out.grown[window] = shard.get("extends") or {"rows": rows, "texts_sha256": shard["texts_sha256"]}
            return False
        first = shard["first_id"]
        raise OutputDirError(f"the input's texts {first:,}-{first + shard['rows'] - 1:,} differ from those "
                             f"{out.path / shard['file']} was made from: the input changed since that run; "
                             "restore it, or write to another directory")
    return True


def check_no_extra_windows(out: OutputDirectory, n_windows: int) -> None:
    extra = [k for k in out.completed if k >= n_windows]
    if extra:
        raise OutputDirError(f"{out.path} holds shards past the end of the input (window {extra[0]} of "
                             f"{n_windows}): the input changed since that run; write to another directory")


@contextmanager
def guarded_run(out: OutputDirectory, *closing):
    """Around a run's loop: a user error says which shards are kept; the lock and files close."""
    try:
        yield
    except MinialbertError as e:
        raise type(e)(kept_message(e, out)) from None
    finally:
        for thing in closing:
            thing.close()
        out.close()


def kept_message(e: MinialbertError, out: OutputDirectory) -> str:
    """A bad line found mid-run: say that the work done so far is safe, and how to continue."""
    n = len(out.completed)
    if not isinstance(e, InputError) or not n:
        return str(e)
    return (f"{e}; the {n} completed shard(s) ({out.rows_done:,} texts) in {out.path} are kept: fix the input and "
            "rerun with --resume")


# ---------------------------------------------------------------------- progress
class Progress:
    """texts/s, tokens/s and ETA, on a tqdm bar (a terminal) or one line per shard (a log file).

    The total may be unknown up front (a text file): it is then estimated from the bytes read
    so far against the file's size, and becomes exact when the input ends. Texts done by an
    earlier run count as done but not in the rates: the clock starts with the first real work.
    """

    def __init__(self, mode: bool | str | None, *, total: int | None = None, file=None):
        self.mode = "bar" if mode is True else (mode or None)
        self.file = file or sys.stderr
        self.total, self.estimated = total, total is None
        self.done = self.skipped = self.tokens = 0
        self.start: float | None = None
        self._in_window = 0
        self.bar = None

    def begin(self) -> None:
        if self.start is not None:
            return
        self.start = time.perf_counter()
        if self.mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=self.done, unit=" texts", dynamic_ncols=True,
                            desc="embedding", file=self.file, smoothing=0.05)

    def estimate(self, texts_read: int, bytes_read: int, size: int, finished: bool = False) -> None:
        if finished:
            self.total, self.estimated = texts_read, False
        elif self.estimated and bytes_read:
            self.total = max(texts_read, round(texts_read * size / bytes_read))
        if self.bar is not None and self.total is not None:
            self.bar.total = self.total
            self.bar.refresh()

    def skip(self, n: int) -> None:
        self.done += n
        self.skipped += n
        if self.bar is not None:
            self.bar.update(n)

    def batch(self, n_sequences: int, n_tokens: int) -> None:
        """After each model batch (Embedder.embed's progress callback)."""
        self.begin()
        self.tokens += n_tokens
        self._in_window += n_sequences
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.tokens_rate():,.0f} tokens/s", refresh=False)
            self.bar.update(n_sequences)

    def window_done(self, n_texts: int, shard: str, n_tokens: int = 0) -> None:
        """A shard was written: correct the count to exact texts (chunked texts are several sequences)."""
        self.begin()
        self.tokens += n_tokens
        if self.bar is not None:
            self.bar.update(n_texts - self._in_window)
            self.bar.set_postfix_str(f"{self.tokens_rate():,.0f} tokens/s")
        self.done += n_texts
        self._in_window = 0
        if self.mode == "log":
            total = f"{'~' if self.estimated else ''}{self.total:,}" if self.total else "?"
            print(f"minialbert embed: {shard} written, {self.done:,}/{total} texts, {self.texts_rate():,.0f} texts/s, "
                  f"{self.tokens_rate():,.0f} tokens/s, ETA {self.eta()}", file=self.file, flush=True)

    def elapsed(self) -> float:
        return max(time.perf_counter() - self.start, 1e-9) if self.start is not None else 1e-9

    def texts_rate(self) -> float:
        return (self.done - self.skipped) / self.elapsed() if self.start is not None else 0.0

    def tokens_rate(self) -> float:
        return self.tokens / self.elapsed() if self.start is not None else 0.0

    def eta(self) -> str:
        rate = self.texts_rate()
        if not self.total or not rate:
            return "?"
        s = int(max(self.total - self.done, 0) / rate)
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------- the run
def embed_file(embedder, source: str | os.PathLike, output: str | os.PathLike, *, field: str | None = None,
               pooling: str | None = None, layer=None, normalize: bool | None = None, batch_size: int = 32,
               max_length: int | None = None, long_text: str = "truncate", stride: int = 128,
               prompt_name: str | None = None, prompt: str | None = None,
               window: int = DEFAULT_WINDOW, with_text: bool = False, resume: bool = False,
               progress: bool | str = False, model_name: str | None = None, revision: str | None = None,
               on_redo: Callable[[str], None] | None = None) -> RunSummary:
    """Embed every text of `source` (.txt, .jsonl, .csv, .tsv, .parquet) into Parquet shards in `output`.

    Options are those of Embedder.embed, plus: field (the JSON field or column holding the
    text), window (texts sorted by length together and written as one shard), with_text
    (store each text beside its vector), resume (continue the run the directory holds; a
    fresh directory is fine too), progress (True: a tqdm bar; "log": one line per shard).
    model_name/revision are recorded in the manifest for people; resuming compares the
    model's fingerprint (model_identity), not its name. on_redo(shard) is told about shards
    that were found damaged and are written again.
    """
    t0 = time.perf_counter()
    inp = open_input(source, field=field)
    options = resolve_options(embedder, inp, pooling=pooling, layer=layer, normalize=normalize,
                              batch_size=batch_size, max_length=max_length, long_text=long_text, stride=stride,
                              window=window, with_text=with_text, prompt_name=prompt_name, prompt=prompt)
    kwargs = embed_kwargs(options)
    W = options["window"]
    stream = inp.texts()
    try:
        first = stream.take(W)  # read (and so check) the start of the input before creating anything
        if not first:
            raise InputError(f"no texts in {inp.name}: it is empty")
        out = open_output(output, model_identity(embedder, model_name, revision), options, inp, resume=resume)
    except BaseException:
        stream.close()
        raise
    summary = RunSummary(Path(output), out.rows_done, out.complete, shards_redone=tuple(out.redone))
    if on_redo:
        for name in out.redone:
            on_redo(name)
    if out.complete:
        stream.close()
        out.close()
        return summary
    bar = Progress(progress, total=inp.num_rows)
    with guarded_run(out, bar, stream):
        k, texts = 0, first
        while texts:
            bar.estimate(stream.index, stream.bytes_read, inp.size)
            digest = texts_digest(texts)
            if check_window(out, k, digest, texts):
                bar.skip(len(texts))
            else:
                ids = np.arange(k * W, k * W + len(texts), dtype=np.int64)
                tokens_before = bar.tokens
                try:
                    vectors = embedder.embed(texts, progress=bar.batch, **kwargs)
                except MinialbertError as e:  # e.g. long_text="error": its text number counts from the window
                    raise type(e)(f"{e} (text numbers count from id {k * W:,}, where window {k} starts)") from None
                shard = out.write_shard(k, ids, vectors, texts if options["with_text"] else None, digest,
                                        extends=out.grown.get(k))
                summary.count(len(texts), bar.tokens - tokens_before)
                bar.window_done(len(texts), shard["file"])
            k += 1
            texts = stream.take(W)
        bar.estimate(stream.index, stream.bytes_read, inp.size, finished=True)
        check_no_extra_windows(out, k)
        out.finish(stream.index)
        summary.rows, summary.complete = out.rows_done, True
    summary.seconds = time.perf_counter() - t0
    return summary
