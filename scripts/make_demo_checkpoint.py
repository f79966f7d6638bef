"""Write a small random-weight ALBERT checkpoint with a real tokenizer, for trying minialbert offline.

    python scripts/make_demo_checkpoint.py demo-albert
    minialbert embed --model demo-albert "Hello world"

The files have exactly the layout of a Hugging Face ALBERT repo (config.json, model.safetensors,
spiece.model), so every command and API call works on it as on albert-base-v2. The model has
albert-base-v2's shape (E=128, H=768, 12 heads, FFN 3072, one shared layer called 12 times) except
its vocabulary: 6,000 word pieces instead of 30,000, trained in a second or so with SentencePiece
(unigram, ALBERT's id layout and normalisation, as `minialbert pretrain` trains one) on English
text every Python install has: the standard library's docstrings (docs/mk_stdlib_corpus.py), or
your own text with --corpus. English words become word pieces ("▁the", "▁function", "ing"); the
weights are random, so vectors and fill-mask predictions mean nothing. Deterministic: the same
Python (standard library) gives the same files. Needs no network and no transformers.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VOCAB_SIZE = 6000  # a full standard library supports about 7,000 pieces; this leaves a margin
MAX_CORPUS_CHARS = 2_000_000  # bounds the time on a Python with a larger standard library


def corpus_documents(corpus: str | None) -> list[list[str]]:
    """Documents (lists of lines) to train the vocabulary on: --corpus, else the stdlib's docstrings."""
    from minialbert.errors import MinialbertError
    from minialbert.pretrain.data import read_documents

    if corpus is not None:
        return read_documents([corpus])
    spec = importlib.util.spec_from_file_location("mk_stdlib_corpus", ROOT / "docs" / "mk_stdlib_corpus.py")
    stdlib = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stdlib)
    try:
        return stdlib.docstring_documents(max_chars=MAX_CORPUS_CHARS)
    except stdlib.CorpusError as e:
        raise MinialbertError(f"{e}; pass --corpus FILE (plain English text) instead") from None


def train_vocabulary(docs: list[list[str]], vocab_size: int) -> bytes:
    """A unigram SentencePiece model (bytes) in ALBERT's id layout, trained on the text as the
    tokenizer normalises it (as minialbert.pretrain.data.train_sentencepiece does). The sentences
    go in and the model comes out in memory, so no temporary path is recorded in the model and
    the same corpus always gives the same bytes (one thread, fixed seed)."""
    import io

    import sentencepiece as spm

    from minialbert.errors import MinialbertError
    from minialbert.tokenizer import normalize_text
    from minialbert.tokenizer.symbols import trainer_options

    lines = [line for d in docs for s in d if (line := normalize_text(s).strip())]
    if hasattr(spm, "set_random_generator_seed"):
        spm.set_random_generator_seed(0)
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab_size, model_type="unigram",
            hard_vocab_limit=False, character_coverage=1.0, num_threads=1, minloglevel=2, max_sentence_length=1 << 16,
            **trainer_options())
    except RuntimeError as e:
        raise MinialbertError(f"training the vocabulary failed: {str(e).splitlines()[0]}") from None
    return model.getvalue()


def make_demo(out: Path, corpus: str | None = None, vocab_size: int = VOCAB_SIZE) -> tuple[int, int]:
    """Write the demo checkpoint to `out`; return (parameters, vocabulary size)."""
    import shutil
    import tempfile

    docs = corpus_documents(corpus)  # first: a bad --corpus fails before torch is imported

    import sentencepiece
    import torch

    import minialbert

    with tempfile.TemporaryDirectory() as tmp:  # `out` appears only once everything has worked
        spm_path = Path(tmp) / "spiece.model"
        spm_path.write_bytes(train_vocabulary(docs, vocab_size))
        vocab = sentencepiece.SentencePieceProcessor(model_file=str(spm_path)).get_piece_size()
        config = minialbert.AlbertConfig.from_preset("albert-base-v2").replace(vocab_size=vocab)
        torch.manual_seed(0)
        model = minialbert.AlbertForPreTraining(config)
        with torch.no_grad():  # the usual BERT-style init: N(0, 0.02) weights
            for p in model.parameters():
                if p.dim() > 1:
                    p.normal_(0.0, config.initializer_range)
        model.save_pretrained(out)
        shutil.copy(spm_path, out / "spiece.model")
    return sum(p.numel() for p in model.parameters()), vocab


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("output", nargs="?", default="demo-albert", metavar="DIR",
                    help="folder to write (default: %(default)s)")
    ap.add_argument("--corpus", metavar="FILE", default=None,
                    help="train the vocabulary on this plain-text file instead of the standard library's docstrings")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))  # run from a checkout
    from minialbert.errors import MinialbertError

    try:
        n, vocab = make_demo(Path(args.output), args.corpus)
    except MinialbertError as e:
        print(f"make_demo_checkpoint.py: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote a random-weight ALBERT ({n:,} parameters, {vocab:,}-piece vocabulary) to {args.output}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
