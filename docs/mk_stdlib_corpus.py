"""Write a corpus of Python standard-library docstrings: English text that every Python install has.

    python docs/mk_stdlib_corpus.py OUT.txt [--max-chars N]

One document per docstring (of a module, class or function with at least 12 words in paragraphs
of 4 words or more; doctest lines dropped), its paragraphs one per line, documents separated by a
blank line: the layout `minialbert pretrain --corpus` reads. Test suites, idlelib, lib2to3 and
site-packages are left out. The standard library is found where its modules really are, so that
this also works inside a virtual environment (whose sys.prefix holds no standard library).
scripts/make_demo_checkpoint.py trains the demo checkpoint's vocabulary on the same text.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import sys
import sysconfig
from pathlib import Path

SKIP_DIRS = {"site-packages", "dist-packages", "idlelib", "lib2to3", "__pycache__"}
MIN_DOCUMENTS = 500  # a full standard library gives about 4,000


class CorpusError(Exception):
    """The standard library's sources cannot be found or hold too little text (one line)."""


def stdlib_candidates() -> list[str]:
    """Where the standard library may be. sys.prefix is the virtual environment inside one, so it
    is not used; sysconfig's "stdlib" path and the folder of an imported pure-Python module
    (argparse) both point at the base install."""
    return [sysconfig.get_path("stdlib"), os.path.dirname(getattr(argparse, "__file__", "") or "")]


def stdlib_dir() -> Path:
    """The folder of the standard library's .py files (argparse.py lives there)."""
    candidates = stdlib_candidates()
    for folder in candidates:
        if folder and (Path(folder) / "argparse.py").is_file():
            return Path(folder)
    raise CorpusError("cannot find the Python standard library's .py files (looked in "
                      + ", ".join(repr(c) for c in candidates if c) + ")")


def source_files(root: Path) -> list[Path]:
    """The standard library's .py files in a fixed order, without tests and bundled packages."""
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and "test" not in d)
        files += [Path(dirpath) / f for f in sorted(filenames) if f.endswith(".py") and "test" not in f]
    return files


def docstring_documents(root: Path | None = None, max_chars: int | None = None) -> list[list[str]]:
    """Documents (lists of paragraphs) from the docstrings under `root` (default: stdlib_dir()),
    stopping once `max_chars` characters are collected. Raises CorpusError if fewer than
    MIN_DOCUMENTS are found."""
    root = stdlib_dir() if root is None else Path(root)
    docs, total = [], 0
    for f in source_files(root):
        try:
            tree = ast.parse(f.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                d = ast.get_docstring(node)
                if not d:
                    continue
                paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", d) if p.strip()]
                paras = [p for p in paras if len(p.split()) >= 4 and not p.startswith(">>>")]
                if sum(len(p.split()) for p in paras) >= 12:
                    docs.append(paras)
                    total += sum(len(p) for p in paras)
                    if max_chars is not None and total >= max_chars:
                        return docs
    if len(docs) < MIN_DOCUMENTS:
        raise CorpusError(f"only {len(docs)} docstrings found under {root} (expected {MIN_DOCUMENTS} or more): "
                          "is the standard library installed without its .py sources?")
    return docs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("output", metavar="OUT.txt", help="the corpus file to write")
    ap.add_argument("--max-chars", type=int, default=None, help="stop after about this many characters")
    args = ap.parse_args(argv)
    try:
        docs = docstring_documents(max_chars=args.max_chars)
    except CorpusError as e:
        print(f"mk_stdlib_corpus.py: error: {e}", file=sys.stderr)
        return 1
    out = Path(args.output)
    tmp = out.with_name(out.name + ".partial")
    tmp.write_text("\n\n".join("\n".join(d) for d in docs) + "\n", encoding="utf-8")
    os.replace(tmp, out)  # never a half-written corpus
    print(f"wrote {len(docs):,} documents to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
