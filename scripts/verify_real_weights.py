"""Trust, but verify: minialbert against transformers on the real albert-base-v2.

    python scripts/verify_real_weights.py                   # downloads albert-base-v2 once
    python scripts/verify_real_weights.py --model albert-large-v2
    python scripts/verify_real_weights.py --model ./some-local-albert-checkpoint

Downloads the checkpoint (or finds it in the Hugging Face cache), loads it with both
libraries, and prints one table row per comparison:

  * every output of the model, max |difference| per output: last_hidden_state, pooler_output,
    every hidden state, the MLM logits (a padded batch with a sentence pair and a 512-token text);
  * the tokenizer on 1,000 varied strings (ids, token types, attention mask, offsets): the
    number of strings that differ in any of them;
  * the `minialbert embed` command (mean pooling; its entry point called in this process)
    against transformers' tokenizer and model with the same pooling done by hand.

Exits with status 1 when any difference is above --tolerance (default 1e-5) or any string
tokenizes differently; with a one-line message and status 1 when the checkpoint cannot be had
(no network and nothing cached). Needs transformers (pip install -e ".[test]").

minialbert's model is called plainly here, as a user calls it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # minialbert from this checkout

SENTENCES = [
    "Hello world!",
    "The quick brown fox jumps over the lazy dog.",
    "ALBERT shares one layer's weights across all twelve of its layers.",
    "Numbers like 1,234.56 and 3.14159, dates like 2019-09-26.",
    "Café, naïve, résumé: accents are stripped by the uncased model.",
    "Paris is the [MASK] of France.",
    "   leading and trailing spaces   ",
    "",
]
WORDS = ("the of and to in is was that for it with as on be at by had are but from or have an they which one "
         "you were her all she there would their we him been has when who will more if out so said what up its "
         "about into than them can only other new some could time these two may then do first any my now such "
         "language model embedding transformer attention layer hidden vector tokenizer sentence").split()
EXTRAS = ["1,000", "3.5", "2,019,", "(see above)", '"quoted"', "£40", "€12", "—", "naïve", "café", "Über",
          "straße", "İstanbul", "Σωκράτης", "ΟΔΟΣ", "Москва", "東京", "日本語", "한국어", "안녕하세요", "العربية",
          "ﬁnance", "ｆｕｌｌｗｉｄｔｈ", "①②", "½", "™", "😀", "👩‍💻", "e\u0301", "\u200b", "\t", "\n", "  ",
          "[MASK]", "[CLS]", "<unk>", "``quotes''", "a.b", "x-y", "don't", "U.S.A.", "e-mail", "#hash", "@user"]


def varied_strings(n: int, seed: int = 0) -> list[str]:
    """n strings mixing English words with the hard cases: accents, scripts, numbers with
    commas, emoji, zero-width and control characters, whitespace runs, special tokens, and a
    few texts longer than 512 tokens."""
    rng = random.Random(seed)
    out = list(SENTENCES)
    while len(out) < n:
        length = int(min(max(rng.lognormvariate(2.3, 0.9), 1), 400 if rng.random() < 0.02 else 60))
        words = [rng.choice(EXTRAS) if rng.random() < 0.25 else rng.choice(WORDS) for _ in range(length)]
        if rng.random() < 0.3:
            words = [w.capitalize() if rng.random() < 0.3 else w.upper() if rng.random() < 0.1 else w for w in words]
        sep = rng.choice([" ", " ", " ", "  ", "\t", " \n "])
        out.append(sep.join(words))
    return out[:n]


def fail(message: str) -> None:
    print(f"verify_real_weights: {message}", file=sys.stderr)
    sys.exit(1)


def max_diff(a, b) -> float:
    return (a.float() - b.float()).abs().max().item()


def max_tokens(folder: Path) -> int:
    """512, or less for a checkpoint with fewer positions."""
    from minialbert import AlbertConfig

    return min(512, AlbertConfig.from_json(folder / "config.json").max_position_embeddings)


def compare_model(folder: Path, hf_tok) -> list[tuple[str, float]]:
    import torch
    import transformers

    import minialbert

    texts = SENTENCES[:6] + [" ".join(varied_strings(40, seed=1))]  # the last one is cut at 512 tokens
    enc = hf_tok(texts, padding=True, truncation=True, max_length=max_tokens(folder), return_tensors="pt",
                 return_token_type_ids=True)
    pair = hf_tok(["How old are you?"], ["I am six years old."], padding="max_length",
                  max_length=enc["input_ids"].shape[1], return_tensors="pt", return_token_type_ids=True)
    kw = {k: torch.cat([enc[k], pair[k]]) for k in ("input_ids", "attention_mask", "token_type_ids")}
    theirs = transformers.AlbertModel.from_pretrained(folder, attn_implementation="eager").eval()
    ours = minialbert.AlbertModel.from_pretrained(folder)
    with torch.no_grad():
        r = theirs(**kw, output_hidden_states=True)
        o = ours(**kw, output_hidden_states=True)
    rows = [("last_hidden_state", max_diff(r.last_hidden_state, o.last_hidden_state)),
            ("pooler_output", max_diff(r.pooler_output, o.pooler_output)),
            (f"hidden_states (all {len(r.hidden_states)})",
             max(max_diff(a, b) for a, b in zip(r.hidden_states, o.hidden_states, strict=True)))]
    del theirs, ours
    theirs = transformers.AlbertForMaskedLM.from_pretrained(folder, attn_implementation="eager").eval()
    ours = minialbert.AlbertForMaskedLM.from_pretrained(folder)
    with torch.no_grad():
        rows.append(("mlm_logits", max_diff(theirs(**kw).logits, ours(**kw).prediction_logits)))
    return rows


def compare_tokenizer(folder: Path, hf_tok, n: int) -> tuple[int, list[str]]:
    from minialbert import AlbertTokenizer

    ours = AlbertTokenizer.from_pretrained(folder)
    strings = varied_strings(n)
    keys = ("input_ids", "token_type_ids", "attention_mask", "offset_mapping")
    bad = []
    for s in strings:
        a = hf_tok(s, truncation=True, max_length=512, return_offsets_mapping=True, return_token_type_ids=True)
        b = ours(s, truncation=True, max_length=512, return_offsets_mapping=True)
        if any([tuple(x) if isinstance(x, (list, tuple)) else x for x in a[k]] !=
               [tuple(x) if isinstance(x, (list, tuple)) else x for x in b[k]] for k in keys):
            bad.append(s)
    return len(strings), bad


def compare_cli(folder: Path, hf_tok) -> tuple[int, float]:
    """`minialbert embed --pooling mean` (the command's own entry point, in this process)
    against transformers' tokenizer and model, each text alone, mean-pooled by hand."""
    import numpy as np
    import torch
    import transformers

    from minialbert.cli import main as cli_main

    texts = [s for s in varied_strings(48, seed=2) if s.strip() and "\n" not in s][:32]
    model = transformers.AlbertModel.from_pretrained(folder).eval()
    want = []
    for t in texts:
        ids = hf_tok(t, truncation=True, max_length=max_tokens(folder))["input_ids"]
        with torch.no_grad():
            want.append(model(torch.tensor([ids])).last_hidden_state[0].mean(0).numpy())
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
        with warnings.catch_warnings():  # texts over the limit: truncated on both sides alike
            warnings.simplefilter("ignore")
            code = cli_main(["embed", "--model", str(folder), "--pooling", "mean", "--input",
                             str(Path(tmp) / "in.txt"), "--output", str(Path(tmp) / "v.npy"), "--quiet"])
        if code != 0:
            fail(f"minialbert embed exited with status {code}")
        got = np.load(Path(tmp) / "v.npy")
    return len(texts), float(np.abs(got - np.stack(want)).max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--model", default="albert-base-v2", help="Hub repo id or local checkpoint (default: %(default)s)")
    parser.add_argument("--revision", default=None)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--strings", type=int, default=1000, help="strings for the tokenizer check (default 1000)")
    parser.add_argument("--tolerance", type=float, default=1e-5, help="largest max |difference| accepted (default 1e-5)")
    args = parser.parse_args(argv)
    import importlib.util

    if importlib.util.find_spec("transformers") is None:
        fail('needs transformers, the reference: pip install -e ".[test]"')

    from minialbert.errors import MinialbertError
    from minialbert.hub import ModelSource

    try:  # the Hub through minialbert: cache first, and one quick line when there is no network
        folder = ModelSource(args.model, revision=args.revision, cache_dir=args.cache_dir).checkpoint_folder()
    except MinialbertError as e:
        fail(f"cannot get {args.model}: {e}")
    print(f"checkpoint: {args.model} ({folder})", flush=True)
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    hf_tok = transformers.AlbertTokenizer.from_pretrained(folder)

    rows = [(name, diff, diff <= args.tolerance) for name, diff in compare_model(folder, hf_tok)]
    n, bad = compare_tokenizer(folder, hf_tok, args.strings)
    rows.append((f"tokenizer, {n:,} strings (ids, types, mask, offsets)", f"{len(bad)} differ", not bad))
    n_cli, cli_diff = compare_cli(folder, hf_tok)
    rows.append((f"`minialbert embed` vs transformers, mean pooling, {n_cli} texts", cli_diff, cli_diff <= args.tolerance))

    print(f"\n| check | max abs difference | ok (<= {args.tolerance:g}) |\n|---|---|---|")
    for name, diff, ok in rows:
        shown = f"{diff:.1e}" if isinstance(diff, float) else diff
        print(f"| {name} | {shown} | {'yes' if ok else 'NO'} |")
    for s in bad[:5]:
        print(f"tokenizer differs on: {json.dumps(s, ensure_ascii=False)[:200]}")
    if all(ok for _, _, ok in rows):
        print("\nall checks passed")
        return 0
    print("\nsome checks FAILED", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
