"""Record what a given transformers release makes of the tokenizer hard cases, as JSON.

    python scripts/tokenizer_reference.py --transformers 5.24.0 \
        --out tests/fixtures/tokenizer/transformers-5.24.0.json.gz

installs that release (with --no-deps: it uses this Python's tokenizers, sentencepiece,
huggingface-hub) into a temporary folder, runs transformers' AlbertTokenizer from there in a
subprocess on every hard case of tests/tokenizer_cases.py (both sets, for each folder and
setting in CONFIGS; ids and offsets of each text alone, and of the pairs), and writes the JSON
(gzip-compressed when the name ends in .gz).
`--transformers installed` runs the transformers this Python imports instead; `--target DIR`
reuses (or keeps) an install folder.

This is how tests/fixtures/tokenizer/transformers-5.24.0.json.gz was made: the recorded output of
transformers 5.24.0 itself, which tests/test_tokenizer_compat.py compares
compat="transformers<5.25" with (CI cannot install two transformers versions in one
environment). Regenerate it with the command above after changing tests/tokenizer_cases.py or
the fixture models. scripts/check_upstream.py uses the same functions for the newest release.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "tokenizer"

# (folder under tests/fixtures/tokenizer, keyword arguments of from_pretrained)
CONFIGS = [
    ("spm", {}),
    ("spm", {"do_lower_case": False, "keep_accents": True}),
    ("hub", {}),
    ("hub_converted", {}),
]
PAIR_OPTIONS = {"truncation": "longest_first", "max_length": 40, "padding": "max_length"}


def config_name(folder: str, kwargs: dict) -> str:
    return folder + "".join(f"-{k}={v}" for k, v in kwargs.items())


def cases() -> dict[str, list]:
    """The hard sets by name: lists of texts, and "pairs": a list of (a, b)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from tokenizer_cases import HARD_STRINGS, PAIRS, SYMBOL_STRINGS

    return {"hard": list(HARD_STRINGS), "symbols": list(SYMBOL_STRINGS), "pairs": [list(p) for p in PAIRS]}


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def model_digests() -> dict[str, str]:
    return {
        str(p.relative_to(FIXTURES)): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
        for folder in sorted({f for f, _ in CONFIGS})
        for p in sorted((FIXTURES / folder).iterdir())
    }


def encode_all(tokenize) -> dict:
    """{set: {"input_ids": [...], "offset_mapping": [...] (, "token_type_ids")}} for one tokenizer
    call `tokenize(texts, pairs=None, **options)` that returns transformers-style lists."""
    out = {}
    for name, items in cases().items():
        if name == "pairs":
            enc = tokenize([a for a, _ in items], [b for _, b in items], return_offsets_mapping=True, **PAIR_OPTIONS)
            fields = ("input_ids", "token_type_ids", "attention_mask", "offset_mapping")
        else:
            enc = tokenize(items, return_offsets_mapping=True)
            fields = ("input_ids", "offset_mapping")
        out[name] = {f: [[list(x) for x in row] if f == "offset_mapping" else list(row) for row in enc[f]] for f in fields}
    return out


def record_installed() -> dict:
    """Run the transformers this Python imports on every CONFIG and set."""
    import warnings

    import sentencepiece
    import tokenizers
    import transformers

    warnings.simplefilter("ignore")
    result = {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
              "sentencepiece": sentencepiece.__version__, "models": model_digests(),
              "cases": {k: digest(v) for k, v in cases().items()}, "configs": {}}
    for folder, kwargs in CONFIGS:
        tok = transformers.AlbertTokenizer.from_pretrained(str(FIXTURES / folder), **kwargs)

        def tokenize(texts, pairs=None, tok=tok, **kw):
            enc = tok(texts, pairs, return_token_type_ids=True, return_attention_mask=True, **kw)
            return {k: enc[k] for k in enc}

        result["configs"][config_name(folder, kwargs)] = encode_all(tokenize)
    return result


def install(version: str, target: Path, deps: bool = False) -> None:
    """pip-install transformers==version (or the newest for "latest") into `target`, without
    touching this Python's packages; with `deps`, its dependencies (tokenizers, ...) too."""
    spec = "transformers" if version == "latest" else f"transformers=={version}"
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--upgrade", "--target", str(target), spec]
    if not deps:
        cmd.insert(4, "--no-deps")
    print("$", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True)


def record(version: str, target: str | None = None, deps: bool = False) -> dict:
    """The record of transformers `version` ("installed", "latest" or a release number), each
    run in a fresh subprocess that imports it from its own folder."""
    if version == "installed":
        return record_installed()
    with tempfile.TemporaryDirectory(prefix="tf-") as tmp:
        folder = Path(target) if target else Path(tmp)
        if not (folder / "transformers").is_dir() or version == "latest":
            install(version, folder, deps)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT)])}
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            out = Path(f.name)
        try:
            subprocess.run([sys.executable, str(Path(__file__).resolve()), "--transformers", "installed", "--out", str(out)],
                           check=True, env=env, cwd=tmp)
            data = load(out)
        finally:
            out.unlink(missing_ok=True)
    if version not in ("latest", data["transformers"]):
        raise SystemExit(f"asked for transformers {version}, the subprocess imported {data['transformers']}")
    return data


def write(data: dict, path: Path) -> None:
    """JSON, gzip-compressed (reproducibly: no time stamp) when `path` ends in .gz."""
    raw = (json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    if path.suffix == ".gz":
        raw = gzip.compress(raw, mtime=0)
    path.write_bytes(raw)


def load(path: Path) -> dict:
    raw = path.read_bytes()
    return json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--transformers", default="installed",
                   help="a release number, 'latest', or 'installed' (this Python's own)")
    p.add_argument("--target", help="folder for the pip install (kept; reused when it holds transformers)")
    p.add_argument("--out", required=True, help="the JSON file to write")
    args = p.parse_args(argv)
    data = record(args.transformers, args.target)
    write(data, Path(args.out))
    print(f"transformers {data['transformers']}: {args.out} ({Path(args.out).stat().st_size // 1024} KiB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
