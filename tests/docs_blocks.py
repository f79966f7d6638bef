"""Find the code blocks of the documentation and decide, for each, whether the suite runs it.

The convention (CONTRIBUTING.md, "Documentation"):

* ```python blocks of one page run in order in ONE Python process (later blocks see earlier names);
* ```bash blocks of one page run in order, each in `bash -e -o pipefail`, in the same directory;
* ```text (output), ```json, ```toml, ```yaml, ```csv, ```html, ```console, ```ini blocks are not code
  to run; a fence without a language is an error (say `text` for output);
* a block preceded by the line `<!-- docs-test: skip (reason) -->` is skipped, and the reason is
  reported; a skip marker without a reason is an error;
* before running: the Hub ids albert-base-v2 / albert/albert-base-v2 / albert-large-v2 become the
  demo checkpoint (so does the CLI's default model, for commands without --model) (scripts/make_demo_checkpoint.py; albert-base-v2's shape, random weights), and
  `pip install ...` / `sudo apt-get install ...` commands become `true` (the suite runs in an
  installed environment); the working directory is a fresh temporary one holding a few small
  example inputs (`EXAMPLE_FILES`) and links to the repository's scripts/, docs/ and tests/.

Used by tests/test_docs.py and `python tests/docs_blocks.py` (prints the tally).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RUN = {"python": "python", "py": "python", "bash": "bash", "sh": "bash", "shell": "bash"}
NOT_CODE = {"text", "json", "jsonl", "toml", "yaml", "yml", "csv", "tsv", "html", "console", "ini", "mermaid"}
SKIP = re.compile(r"^<!--\s*docs-test:\s*skip\s*(?:\((?P<reason>.*)\))?\s*-->$")
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")

HUB_IDS = re.compile(r"(?<![\w/.-])(?:albert/)?albert-(?:base|large)-v2(?![\w-])")

EXAMPLE_FILES = {
    "corpus.txt": "The cat sat on the mat.\nA dog barked at the mailman.\n\nALBERT shares one layer twelve times.\n",
    "faq.txt": "To reset your password, open Settings.\nOur office opens at nine.\nRefunds take five days.\n",
    "queries.txt": "how do I reset my password\nwhen does the office open\n",
    "passages.txt": "First passage about cats.\nSecond passage about dogs.\nThird passage about birds.\n",
    "passages.jsonl": "".join(f'{{"id": {i}, "body": "passage {i} about {w}", "text": "passage {i} about {w}"}}\n'
                              for i, w in enumerate(["cats", "dogs", "birds", "fish"])),
    "docs.jsonl": "".join(f'{{"body": "document {i}", "text": "document {i}"}}\n' for i in range(3)),
}


@dataclass
class Block:
    page: Path  # relative to ROOT
    line: int  # 1-based line of the opening fence
    lang: str  # as written after the fence ("" when none)
    code: str
    skip: str | None = None  # the reason, when skipped
    error: str | None = None  # a convention broken (unlabelled fence, skip without reason)

    @property
    def kind(self) -> str:
        """'python', 'bash', 'output' (not code), 'skip' or 'error'."""
        if self.error:
            return "error"
        if self.skip is not None:
            return "skip"
        return RUN.get(self.lang, "output")

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    """Every Markdown page whose blocks the suite runs: README.md, CONTRIBUTING.md, docs/**/*.md."""
    found = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [p.relative_to(ROOT) for p in found if p.exists()]


def blocks(page: Path) -> list[Block]:
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = FENCE.match(line)
        if not m:
            i += 1
            continue
        fence, lang = m.group("fence"), m.group("info").strip().split(" ")[0].lower()
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        indent = len(m.group("indent"))
        code = "\n".join(x[indent:] if x[:indent].isspace() else x for x in lines[i + 1:end]) + "\n"
        block = Block(page, i + 1, lang, code)
        before = next((lines[k].strip() for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        skip = SKIP.match(before)
        if before.startswith("<!--") and "docs-test" in before and not skip:
            block.error = f"unreadable docs-test marker {before!r}; write <!-- docs-test: skip (reason) -->"
        elif skip:
            reason = (skip.group("reason") or "").strip()
            if not reason:
                block.error = "a docs-test skip marker needs a reason: <!-- docs-test: skip (why) -->"
            else:
                block.skip = reason
        elif not lang:
            block.error = "a code fence without a language (write ```text for output, ```python or ```bash for code)"
        elif lang not in RUN and lang not in NOT_CODE:
            block.error = f"unknown block language {lang!r} (run: {', '.join(sorted(RUN))}; " \
                          f"not run: {', '.join(sorted(NOT_CODE))})"
        out.append(block)
        i = end + 1
    return out


# Run before every bash block: the CLI's default model (albert-base-v2, when a command has no --model)
# is the demo checkpoint too. `minialbert` is a function that adds `--model DEMO` in that case.
BASH_PREAMBLE = """
minialbert() {
    case "$1" in
        embed|similarity|fill-mask|inspect)
            for arg in "$@"; do case "$arg" in --model|--model=*|-m) command minialbert "$@"; return;; esac; done
            command minialbert "$@" --model "$DOCS_TEST_DEMO";;
        *) command minialbert "$@";;
    esac
}
"""


def prepare(code: str, demo: str) -> str:
    """The text as run: Hub ids -> the demo checkpoint, installs (and their trailing comment) -> `true`."""
    code = HUB_IDS.sub(demo, code)
    code = re.sub(r"(?m)(^|&&\s*|;\s*)(?:sudo\s+)?(?:python\s+-m\s+)?pip\s+install\b[^&;\n#]*(?:#[^\n]*)?", r"\1true ", code)
    code = re.sub(r"(?m)(^|&&\s*|;\s*)(?:sudo\s+|\$SUDO\s+)?apt-get\s+(?:update|install)\b[^&;\n#]*(?:#[^\n]*)?", r"\1true ", code)
    return code


def tally() -> dict[str, int]:
    counts: dict[str, int] = {}
    for page in pages():
        for b in blocks(page):
            counts[b.kind] = counts.get(b.kind, 0) + 1
    return counts


if __name__ == "__main__":
    for page in pages():
        for b in blocks(page):
            note = b.skip or b.error or ""
            print(f"{b.kind:7} {b.where:45} {note}")
    print(tally(), file=sys.stderr)
