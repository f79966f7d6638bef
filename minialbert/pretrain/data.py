"""Corpus -> token ids -> sentence-order pairs -> masked, sharded batches.

Corpus format: plain UTF-8 text, one document per blank-line-separated block. Each line of a
block is a segment (long lines are further split after . ! ?).

Tokenization: minialbert.AlbertTokenizer, the tokenizer that inference uses, with the compat
mode chosen for the run ("transformers", the default, or "original"). The trainer saves it in
the output directory (spiece.model + tokenizer_config.json recording the mode), so Embedder,
FillMask and AlbertTokenizer.from_pretrained(out) tokenize exactly as pre-training did. The
vocabulary is trained on text normalized by the same code (tokenizer.normalize_text).

Sentence-order prediction (SOP, Lan et al. 2019, section 3.1): an example is two *consecutive*
stretches A and B of the same document, packed as

    [CLS] A [SEP] B [SEP]          token types 0 ... 0 1 ... 1

kept in order (label 0) or swapped to [CLS] B [SEP] A [SEP] (label 1) with probability 0.5. The
chunking follows create_instances_from_document() of google-research/albert: segments are
accumulated up to the target length (max_seq_length - 3, or a random shorter length with
probability short_seq_prob), then split at a random segment boundary into A and B.

Determinism and resume: the chunking is fixed by the seed. The order of examples is a pure
function of the *global step*: step s of epoch e = s // steps_per_epoch takes the examples at
positions k*G .. (k+1)*G - 1 (k = s mod steps_per_epoch, G = the global batch: ranks x
micro-batch x accumulation) of a per-epoch shuffle of all N examples. The shuffle is a seeded
bijection of range(N) computed position by position (Shuffle: a Feistel network with cycle
walking), so it costs O(G) per step and no memory that grows with the corpus. Rank r takes
block[r::world]. The swap and the masking of example i in epoch e come from a generator seeded
with (seed, e, i). So any process that knows the step, the world size and the seed produces
exactly the same batches: resuming needs nothing but the step.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CheckpointError
from ..tokenizer import AlbertTokenizer, normalize_text
from ..tokenizer.symbols import COMPAT_MODES, CONTROL_SYMBOLS, USER_DEFINED_SYMBOLS
from . import PretrainError
from .masking import mask_tokens, word_start_table

# ALBERT's id layout, as in the official spiece.model: <pad> <unk> [CLS] [SEP] [MASK] = 0..4.
PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
TOKENIZER_COMPATS = COMPAT_MODES  # transformers (5.25+), transformers<5.25, original

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")


# --------------------------------------------------------------------------------- corpus
CORPUS_SUFFIXES = (".txt", ".text", ".jsonl", ".ndjson", ".parquet", ".pq")


def split_segments(line: str) -> list[str]:
    """One line of a document -> its segments (the line, cut after . ! ? when followed by text)."""
    line = line.strip()
    return [s for s in _SENTENCE_END.split(line) if s] if line else []


def corpus_files(paths: list[str | os.PathLike]) -> list[Path]:
    """Expand the CORPUS arguments: files as given, directories (every corpus file below them,
    sorted, .gz included) and globs (sorted). Raises PretrainError for a path that names nothing."""
    import glob

    if not paths:
        raise PretrainError("no corpus given: pass --corpus FILE [FILE ...]")
    files: list[Path] = []
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            found = sorted(f for f in path.rglob("*") if f.is_file() and _is_corpus_file(f))
            if not found:
                raise PretrainError(f"corpus directory {path} holds no .txt, .jsonl or .parquet file (or .gz of one)")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif any(c in str(arg) for c in "*?["):
            found = sorted(Path(f) for f in glob.glob(str(arg), recursive=True) if Path(f).is_file())
            if not found:
                raise PretrainError(f"corpus pattern {arg} matches no file")
            files.extend(found)
        else:
            raise PretrainError(f"corpus file not found: {path}")
    return files


def _is_corpus_file(path: Path) -> bool:
    name = path.name.lower()
    name = name[:-3] if name.endswith(".gz") else name
    return name.endswith(CORPUS_SUFFIXES)


def iter_documents(paths: list[str | os.PathLike], field: str | None = None):
    """Documents as lists of segments (raw text: the tokenizer normalizes), streamed: one line (or
    one Parquet batch) in memory at a time.

    .txt: documents are blank-line-separated blocks, each line a segment (long lines split
    after . ! ?). .jsonl/.parquet: each row's `field` (default "text") is one document, its
    lines split the same way. Files may be gzip-compressed. Raises PretrainError (one line)."""
    from ..files import InputError
    from ..readers import open_input

    for path in corpus_files(paths):
        try:
            inp = open_input(path, field=field if not _is_txt(path) else None)
            if inp.format in ("csv", "tsv"):
                raise PretrainError(f"{path}: pre-training reads .txt, .jsonl or .parquet corpora, not {inp.format}")
            stream = inp.texts()
            if inp.format == "txt":
                current: list[str] = []
                for line in stream:
                    segments = split_segments(line)
                    if segments:
                        current.extend(segments)
                    elif not line.strip() and current:
                        yield current
                        current = []
                if current:
                    yield current
            else:
                for text in stream:
                    segments = [s for line in text.splitlines() for s in split_segments(line)]
                    if segments:
                        yield segments
        except InputError as e:
            raise PretrainError(str(e)) from None


def _is_txt(path: Path) -> bool:
    name = path.name.lower()
    name = name[:-3] if name.endswith(".gz") else name
    return not name.endswith((".jsonl", ".ndjson", ".parquet", ".pq", ".csv", ".tsv"))


def read_documents(paths: list[str | os.PathLike], field: str | None = None) -> list[list[str]]:
    """All documents in memory (small corpora, tests). Raises PretrainError for missing/empty input."""
    docs = list(iter_documents(paths, field))
    if not docs:
        raise PretrainError(f"corpus is empty (no text in {', '.join(str(p) for p in paths)})")
    return docs


def train_sentencepiece(docs, model_path: str | os.PathLike, vocab_size: int,
                        seed: int = 0, threads: int = 1, compat: str = "transformers",
                        max_bytes: int | None = None) -> None:
    """Train a unigram SentencePiece model with ALBERT's special tokens and id layout.

    docs: an iterable of documents (lists of segments); with max_bytes, only the documents
    up to that much normalized text are used (a bounded sample of a stream: the iterable is
    not read further). pad=0 <pad>, unk=1 <unk>, [CLS]=2, [SEP]=3, [MASK]=4, no BOS/EOS, then
    the user-defined punctuation pieces. vocab_size is a soft limit: a small corpus gets a
    smaller vocabulary. The text is normalized as AlbertTokenizer(compat=compat) normalizes it
    (lower case, no accents), so the vocabulary holds the pieces the tokenizer will look for.
    """
    import sentencepiece as spm

    model_path = Path(model_path)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(spm, "set_random_generator_seed"):
        spm.set_random_generator_seed(seed)  # sentence shuffling: same corpus -> same vocabulary
    with tempfile.TemporaryDirectory(dir=model_path.parent) as tmp:
        text = Path(tmp) / "corpus.txt"
        written = 0
        with open(text, "w", encoding="utf-8") as f:  # streamed to disk, never held whole
            for doc in docs:
                for s in doc:
                    line = normalize_text(s, compat=compat) + "\n"
                    f.write(line)
                    written += len(line)
                if max_bytes is not None and written >= max_bytes:
                    break
        if not written:
            raise PretrainError("corpus is empty: no text to train a vocabulary on")
        prefix = Path(tmp) / "spiece"
        try:
            spm.SentencePieceTrainer.train(
                input=str(text), model_prefix=str(prefix), vocab_size=vocab_size,
                model_type="unigram", pad_id=PAD, unk_id=UNK, bos_id=-1, eos_id=-1,
                pad_piece="<pad>", unk_piece="<unk>",
                control_symbols=CONTROL_SYMBOLS, user_defined_symbols=USER_DEFINED_SYMBOLS,
                hard_vocab_limit=False, input_sentence_size=2_000_000, shuffle_input_sentence=True,
                seed_sentencepiece_size=1_000_000, num_threads=threads, minloglevel=2,
                max_sentence_length=1 << 16,
            )
        except (RuntimeError, OSError) as e:
            raise PretrainError(f"training the SentencePiece vocabulary failed: {str(e).splitlines()[0]}") from None
        os.replace(f"{prefix}.model", model_path)


@dataclass
class Vocab:
    """The run's AlbertTokenizer (ALBERT's id layout checked), plus the word-start table masking needs."""

    tokenizer: AlbertTokenizer
    size: int
    starts: np.ndarray

    @classmethod
    def load(cls, path: str | os.PathLike, compat: str = "transformers", threads: int | None = None) -> "Vocab":
        path = Path(path)
        if not path.is_file():
            raise PretrainError(f"vocabulary file not found: {path}")
        if compat not in TOKENIZER_COMPATS:
            raise PretrainError(f"tokenizer compat must be one of {', '.join(TOKENIZER_COMPATS)}, got {compat!r}")
        try:
            tokenizer = AlbertTokenizer(path, compat=compat, num_threads=threads)
        except CheckpointError as e:
            raise PretrainError(f"{path} is not an ALBERT SentencePiece model ({e})") from None
        expected = {PAD: "<pad>", UNK: "<unk>", CLS: "[CLS]", SEP: "[SEP]", MASK: "[MASK]"}
        got = dict(zip(expected, tokenizer.convert_ids_to_tokens(list(expected))))
        if got != expected:
            raise PretrainError(
                f"{path} does not have ALBERT's id layout (want {expected}, got {got}); "
                "let the trainer build the vocabulary (--vocab-size) instead"
            )
        pieces = tokenizer.convert_ids_to_tokens(list(range(tokenizer.vocab_size)))
        return cls(tokenizer, tokenizer.vocab_size, word_start_table(pieces))

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, no [CLS]/[SEP]: the tokenizer's batched fast path."""
        return self.tokenizer.encode_batch_ids(texts)


# ------------------------------------------------------------------------------ instances
class Draws:
    """Uniform draws from a numpy Generator, taken 65,536 at a time: random() -> [0, 1), and
    integers(low, high) -> low..high-1 (floor of a scaled uniform), the two calls chunk_document
    makes. The pair index makes one or two draws per pair; a scalar Generator call costs 1-3 us,
    which made the index pass twice as long."""

    def __init__(self, rng: np.random.Generator, block: int = 1 << 16):
        self.rng, self.block = rng, block
        self.buffer: list[float] = []
        self.i = 0

    def random(self) -> float:
        if self.i == len(self.buffer):
            self.buffer, self.i = self.rng.random(self.block).tolist(), 0
        self.i += 1
        return self.buffer[self.i - 1]

    def integers(self, low: int, high: int) -> int:
        return min(high - 1, low + int(self.random() * (high - low)))


def chunk_document(lengths, max_tokens: int, short_seq_prob: float, rng: Draws):
    """Cut one document (the token counts of its non-empty segments) into sentence-order pairs.

    Yields (a_start, a_end, b_end): token offsets from the document's first token; A is
    tokens[a_start:a_end], B is tokens[a_end:b_end] (consecutive segments are contiguous). The
    random draws are those of google-research/albert's create_instances_from_document: one
    for the target length per document, one for the A/B split per chunk."""
    target = max_tokens
    if rng.random() < short_seq_prob:
        target = rng.integers(2, max_tokens + 1)
    chunk: list[int] = []  # lengths of the segments in the current chunk
    start = offset = length = 0
    last = len(lengths) - 1
    for i, n in enumerate(lengths):
        chunk.append(n)
        length += n
        offset += n
        if i == last or length >= target:
            if len(chunk) >= 2:
                a_end = rng.integers(1, len(chunk))
                yield start, start + sum(chunk[:a_end]), offset
            elif chunk[0] >= 2:  # one segment: split it inside
                yield start, start + rng.integers(1, chunk[0]), offset
            chunk, length, start = [], 0, offset


def build_pairs(docs_ids: list[list[list[int]]], max_seq_length: int, short_seq_prob: float,
                seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split every document into (A, B) pairs of consecutive text, in original order (in memory;
    the trainer does the same over prepared shards, see shards.pair_index)."""
    rng = Draws(np.random.default_rng([seed, 1]))
    pairs = []
    for doc in docs_ids:
        doc = [s for s in doc if s]
        tokens = np.asarray([t for s in doc for t in s], dtype=np.int32)
        for a0, a1, b1 in chunk_document([len(s) for s in doc], max_seq_length - 3, short_seq_prob, rng):
            pairs.append((tokens[a0:a1], tokens[a1:b1]))
    return pairs


def truncate_pair(a: np.ndarray, b: np.ndarray, max_tokens: int, rng: np.random.Generator):
    """Trim the longer side, at its front or back at random, until |A| + |B| <= max_tokens."""
    a, b = list(a), list(b)
    while len(a) + len(b) > max_tokens:
        longer = a if len(a) > len(b) else b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()
    return a, b


_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


class Shuffle:
    """A seeded pseudo-random permutation of range(n), evaluated at any positions in O(1) memory:
    shuffle(positions) -> the examples at those positions of the shuffled order.

    A balanced Feistel network over the smallest even number of bits that covers n (any round
    function gives a bijection of that power-of-two domain), with cycle walking (a value >= n
    is passed through the network again until it lands below n; Black & Rogaway, "Ciphers with
    arbitrary finite domains", 2002), which keeps it a bijection of range(n). The round function
    is splitmix64's finalizer of (half ^ round key); the 6 round keys come from (seed, 3, epoch).
    Unlike a stored permutation (8 bytes per example), nothing grows with the corpus."""

    ROUNDS = 6

    def __init__(self, n: int, seed: int, epoch: int):
        if n < 1:
            raise ValueError("Shuffle needs n >= 1")
        self.n = n
        bits = max(2, (n - 1).bit_length())
        self.half = np.uint64((bits + 1) // 2)
        self.mask = np.uint64((1 << int(self.half)) - 1)
        self.keys = np.random.default_rng([seed, 3, epoch]).integers(0, 2**63, size=self.ROUNDS, dtype=np.uint64)

    def _network(self, x: np.ndarray) -> np.ndarray:
        left, right = x >> self.half, x & self.mask
        for key in self.keys:
            z = right ^ key
            z = (z ^ (z >> np.uint64(30))) * _MIX1
            z = (z ^ (z >> np.uint64(27))) * _MIX2
            z ^= z >> np.uint64(31)
            left, right = right, left ^ (z & self.mask)
        return (left << self.half) | right

    def __call__(self, positions) -> np.ndarray:
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size and (positions.min() < 0 or positions.max() >= self.n):
            raise IndexError(f"positions must be in [0, {self.n})")
        out = self._network(positions.astype(np.uint64))
        walk = out >= self.n
        while walk.any():  # at most a few rounds: the domain is < 4n
            out[walk] = self._network(out[walk])
            walk = out >= self.n
        return out.astype(np.int64)


class PretrainingData:
    """The examples of one corpus, and the deterministic, sharded order in which they are used."""

    def __init__(self, pairs, vocab: Vocab, *, max_seq_length: int, seed: int,
                 masked_lm_prob: float = 0.15, max_predictions: int = 20, max_ngram: int = 3):
        self.pairs = pairs
        self.vocab = vocab
        self.max_seq_length = max_seq_length
        self.seed = seed
        self.masked_lm_prob = masked_lm_prob
        self.max_predictions = max_predictions
        self.max_ngram = max_ngram
        self._shuffle_epoch = -1
        self._shuffle = None

    @classmethod
    def from_corpus(cls, paths, vocab: Vocab, *, max_seq_length: int, seed: int,
                    short_seq_prob: float = 0.1, docs=None, **kw) -> "PretrainingData":
        docs = read_documents(paths) if docs is None else docs
        flat = vocab.encode([s for d in docs for s in d])
        docs_ids, k = [], 0
        for d in docs:
            docs_ids.append(flat[k:k + len(d)])
            k += len(d)
        pairs = build_pairs(docs_ids, max_seq_length, short_seq_prob, seed)
        if not pairs:
            raise PretrainError("the corpus yields no training example (every document is shorter than 2 tokens)")
        return cls(pairs, vocab, max_seq_length=max_seq_length, seed=seed, **kw)

    def __len__(self) -> int:
        return len(self.pairs)

    # ------------------------------------------------------------------ one example
    def example(self, index: int, epoch: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.seed, 2, epoch, index])
        a, b = self.pairs[index]
        a, b = truncate_pair(a, b, self.max_seq_length - 3, rng)
        swapped = rng.random() < 0.5
        if swapped:  # SOP label 1: the two consecutive segments in the wrong order
            a, b = b, a
        ids = np.array([CLS, *a, SEP, *b, SEP], dtype=np.int64)
        types = np.zeros_like(ids)
        types[len(a) + 2:] = 1
        maskable = np.ones(len(ids), dtype=bool)
        maskable[[0, len(a) + 1, len(ids) - 1]] = False
        inputs, labels = mask_tokens(
            ids, maskable, self.vocab.starts, rng, mask_id=MASK, vocab_size=self.vocab.size,
            masked_lm_prob=self.masked_lm_prob, max_predictions=self.max_predictions,
            max_ngram=self.max_ngram,
        )
        return {"input_ids": inputs, "token_type_ids": types, "labels": labels,
                "sentence_order_label": np.int64(swapped), "index": index}

    # ------------------------------------------------------------------ the order
    def steps_per_epoch(self, global_batch: int) -> int:
        return len(self.pairs) // global_batch

    def shuffle(self, epoch: int) -> "Shuffle":
        if epoch != self._shuffle_epoch:
            self._shuffle = Shuffle(len(self.pairs), self.seed, epoch)
            self._shuffle_epoch = epoch
        return self._shuffle

    def step_indices(self, step: int, global_batch: int) -> tuple[int, np.ndarray]:
        """(epoch, the G example indices of global step `step`) -- a pure function of the step."""
        per_epoch = self.steps_per_epoch(global_batch)
        if per_epoch == 0:
            raise PretrainError(
                f"the corpus has {len(self.pairs)} examples, fewer than one global batch of {global_batch} "
                "(ranks x --batch-size x --grad-accum); use a bigger corpus or a smaller batch"
            )
        epoch, k = divmod(step, per_epoch)
        return epoch, self.shuffle(epoch)(np.arange(k * global_batch, (k + 1) * global_batch))

    def rank_microbatches(self, step: int, rank: int, world: int, batch_size: int,
                          accum: int) -> tuple[int, list[np.ndarray]]:
        """This rank's shard of step `step`, cut into `accum` micro-batches of `batch_size`."""
        epoch, block = self.step_indices(step, world * batch_size * accum)
        mine = block[rank::world]
        return epoch, [mine[j * batch_size:(j + 1) * batch_size] for j in range(accum)]

    def collate(self, indices, epoch: int) -> dict:
        import torch

        examples = [self.example(int(i), epoch) for i in indices]
        n = max(len(e["input_ids"]) for e in examples)
        batch = {
            "input_ids": np.full((len(examples), n), PAD, dtype=np.int64),
            "attention_mask": np.zeros((len(examples), n), dtype=np.int64),
            "token_type_ids": np.zeros((len(examples), n), dtype=np.int64),
            "labels": np.full((len(examples), n), -100, dtype=np.int64),
        }
        for row, e in enumerate(examples):
            k = len(e["input_ids"])
            batch["input_ids"][row, :k] = e["input_ids"]
            batch["attention_mask"][row, :k] = 1
            batch["token_type_ids"][row, :k] = e["token_type_ids"]
            batch["labels"][row, :k] = e["labels"]
        out = {k: torch.from_numpy(v) for k, v in batch.items()}
        out["sentence_order_label"] = torch.tensor([int(e["sentence_order_label"]) for e in examples])
        out["index"] = [e["index"] for e in examples]
        return out
