"""Small generated tasks with a rule a model can learn, for tests and the README's training curve.

No downloads: the words are common English words (each a single piece of the test tokenizer's
vocabulary, tests/fixtures/tokenizer/spm). The rules:
  classification  a sentence of filler words holds one marker word; its group is the label
                  (life/time/people -> "red", model/vector/layer -> "blue", year/state/flow -> "green");
  SQuAD           a passage of filler words; the answer is the word right after the marker word
                  "hidden", drawn from a set of answer words that occur nowhere else (so a small
                  model can also find it by the word itself); in SQuAD 2.0 files a quarter of the
                  passages have neither marker nor answer;
  tagging         filler words with names (PER) and places (LOC), one or two words long, BIO tags;
  majority        words of five groups, 3 to 6 of the most frequent group and one fewer of the
                  runner-up; the label is the most frequent group (a counting task with a graded
                  score: scripts/compress.py's trade-off table);
  lookup          the value word right after the marker, among three (see lookup_rows).
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

FILLER = ("many make between take more same their well such most another were against since each just even "
          "these three before those came from made very should after being must first here when last used "
          "where been also while little have still like there come some they").split()
GROUPS = {"red": ("life", "time", "people"), "blue": ("model", "vector", "layer"), "green": ("year", "state", "flow")}
MARKER = "hidden"
ANSWERS = ("never", "years", "attention", "tokenizer", "transformer", "language", "finance", "embedding", "vector", "layer")
PERSONS = ("albert", "language", "model")  # names of the toy world (one piece each)
PLACES = ("state", "flow", "life")


def _fillers(rng: random.Random, lo: int, hi: int, pool: tuple[str, ...] | list[str] = FILLER) -> list[str]:
    return [rng.choice(pool) for _ in range(rng.randint(lo, hi))]


def classification_rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.choice(sorted(GROUPS))
        words = _fillers(rng, 5, 12)
        words.insert(rng.randint(0, len(words)), rng.choice(GROUPS[label]))
        rows.append({"text": " ".join(words), "label": label})
    return rows


def _write_text_label_csvs(directory: str | Path, rows, n_train: int, n_dev: int, seed: int) -> tuple[Path, Path]:
    """train.csv (rows(n_train, seed)) and dev.csv (rows(n_dev, seed + 1)), columns text,label."""
    directory = Path(directory)
    paths = []
    for name, n, s in (("train.csv", n_train, seed), ("dev.csv", n_dev, seed + 1)):
        path = directory / name
        with open(path, "w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["text", "label"])
            w.writeheader()
            w.writerows(rows(n, s))
        paths.append(path)
    return paths[0], paths[1]


def write_classification(directory: str | Path, n_train: int = 400, n_dev: int = 100, seed: int = 0) -> tuple[Path, Path]:
    """train.csv and dev.csv with columns text,label."""
    return _write_text_label_csvs(directory, classification_rows, n_train, n_dev, seed)


def squad_data(n: int, seed: int, version_2: bool, max_words: int = 40) -> dict:
    rng = random.Random(seed)
    paragraphs = []
    for k in range(n):
        words = _fillers(rng, 4, max_words)
        answerable = not version_2 or rng.random() < 0.75
        answers = []
        at = rng.randint(0, len(words))
        if answerable:
            answer = rng.choice(ANSWERS)
            words[at:at] = [MARKER, answer]
            start = len(" ".join(words[:at + 1])) + 1
            answers = [{"text": answer, "answer_start": start}]
        context = " ".join(words)
        qa = {"id": f"q{seed}-{k}", "question": "what comes next?", "answers": answers}
        if version_2:
            qa["is_impossible"] = not answerable
        paragraphs.append({"context": context, "qas": [qa]})
    return {"version": "v2.0" if version_2 else "1.1", "data": [{"title": "toy", "paragraphs": paragraphs}]}


def write_squad(directory: str | Path, n_train: int = 400, n_dev: int = 100, seed: int = 0,
                version_2: bool = True, max_words: int = 40) -> tuple[Path, Path]:
    """train.json and dev.json in the official SQuAD layout."""
    directory = Path(directory)
    paths = []
    for name, n, s in (("train.json", n_train, seed), ("dev.json", n_dev, seed + 1)):
        path = directory / name
        path.write_text(json.dumps(squad_data(n, s, version_2, max_words)), encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1]


def tagging_rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        tokens, tags = _fillers(rng, 2, 5), []
        tags = ["O"] * len(tokens)
        for kind, names in (("PER", PERSONS), ("LOC", PLACES)):
            at = rng.randint(0, len(tokens))
            span = [rng.choice(names) for _ in range(rng.randint(1, 2))]
            tokens[at:at] = span
            tags[at:at] = [f"B-{kind}"] + [f"I-{kind}"] * (len(span) - 1)
        rows.append({"tokens": tokens, "tags": tags})
    return rows


def write_tagging(directory: str | Path, n_train: int = 200, n_dev: int = 50, seed: int = 0) -> tuple[Path, Path]:
    """train.jsonl and dev.jsonl with "tokens" and "tags"."""
    directory = Path(directory)
    paths = []
    for name, n, s in (("train.jsonl", n_train, seed), ("dev.jsonl", n_dev, seed + 1)):
        path = directory / name
        path.write_text("".join(json.dumps(r) + "\n" for r in tagging_rows(n, s)), encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1]


def write_base_checkpoint(directory: str | Path, *, vocab_file: str | Path, hidden_size: int = 64,
                          num_layers: int = 2, num_heads: int = 2, intermediate_size: int = 128,
                          embedding_size: int = 32, max_position_embeddings: int = 128, seed: int = 0) -> Path:
    """A small randomly initialised ALBERT (AlbertModel with pooler) + tokenizer, to fine-tune from."""
    import shutil

    import sentencepiece as spm
    import torch

    from ..config import AlbertConfig
    from ..model import AlbertModel
    from ..pretrain.train import init_albert_weights

    directory = Path(directory)
    vocab = spm.SentencePieceProcessor(model_file=str(vocab_file)).get_piece_size()
    config = AlbertConfig(vocab_size=vocab, embedding_size=embedding_size, hidden_size=hidden_size,
                          num_hidden_layers=num_layers, num_attention_heads=num_heads,
                          intermediate_size=intermediate_size, max_position_embeddings=max_position_embeddings)
    torch.manual_seed(seed)
    model = AlbertModel(config)
    init_albert_weights(model, config.initializer_range)
    model.save_pretrained(directory)
    shutil.copy(vocab_file, directory / "spiece.model")
    return directory


# A task that needs more than one layer: which word follows the marker? A sentence of filler
# words holds `pairs` distinct value words at random places; one of them right after the marker
# "hidden". The label is that value. Every value present is equally likely to be the answer
# (chance 1 / pairs), so the words alone say nothing: a token must first learn that the marker
# precedes it (one attention step), and [CLS] must then read that token (a second step).
LOOKUP_VALUES = ("life", "model", "year", "time")


def lookup_rows(n: int, seed: int, pairs: int = 3) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        values = rng.sample(LOOKUP_VALUES, pairs)
        asked = rng.randrange(pairs)
        words = _fillers(rng, 4, 10)
        for k in [k for k in range(pairs) if k != asked] + [asked]:  # the marker's pair last: nothing splits it
            at = rng.randint(0, len(words))
            words[at:at] = [MARKER, values[k]] if k == asked else [values[k]]
        rows.append({"text": " ".join(words), "label": values[asked]})
    return rows


def write_lookup(directory: str | Path, n_train: int = 3000, n_dev: int = 300, seed: int = 0,
                 pairs: int = 3) -> tuple[Path, Path]:
    """train.csv and dev.csv (text,label) of the key-value lookup task."""
    return _write_text_label_csvs(directory, lambda n, s: lookup_rows(n, s, pairs), n_train, n_dev, seed)


# A graded task for the compression table (scripts/compress.py): which group has the most words?
# Five groups of three words; the winner has 3 to 6 words, the runner-up exactly one fewer, the
# other three groups 0 to (winner - 1) each, among 0 to 4 filler words, all shuffled. No single
# word decides the label (most texts hold words of every group): [CLS] has to count each group
# across the text, and a margin of one word in 5 to 30 makes the counting precise, so a small
# model scores well above chance (1/5) but below 1, and losing attention capacity or depth shows.
MAJORITY_GROUPS = {"red": ("life", "time", "people"), "blue": ("model", "vector", "layer"),
                   "green": ("year", "state", "flow"), "gold": ("attention", "tokenizer", "transformer"),
                   "gray": ("language", "finance", "embedding")}


def majority_rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    names = sorted(MAJORITY_GROUPS)
    rows = []
    for _ in range(n):
        order = rng.sample(names, len(names))
        top = rng.randint(3, 6)
        counts = {order[0]: top, order[1]: top - 1, **{g: rng.randint(0, top - 1) for g in order[2:]}}
        words = _fillers(rng, 0, 4)
        for group in names:
            for _ in range(counts[group]):
                words.insert(rng.randint(0, len(words)), rng.choice(MAJORITY_GROUPS[group]))
        rows.append({"text": " ".join(words), "label": order[0]})
    return rows


def write_majority(directory: str | Path, n_train: int = 6000, n_dev: int = 1000, seed: int = 0) -> tuple[Path, Path]:
    """train.csv and dev.csv (text,label) of the majority-group task."""
    return _write_text_label_csvs(directory, majority_rows, n_train, n_dev, seed)
