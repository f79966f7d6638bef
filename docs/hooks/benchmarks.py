"""MkDocs hook: the tables of docs/benchmarks.md, rendered from scripts/bench-results.json at every build.

The page's prose is written by hand; each `<!-- bench:NAME -->` line in it is replaced by a table that
scripts/bench.py's own renderers make from the JSON (`markdown_table`, `goals_table`: the same functions
`python scripts/bench.py --from-json ... --readme README.md` uses). A marker without a renderer, or a
renderer that fails on the JSON, is a build warning (an error under `mkdocs build --strict`).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("mkdocs.hooks.benchmarks")
ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "scripts" / "bench-results.json"
MARKER = "<!-- bench:{} -->"
RENDERERS = {"table": "markdown_table", "goals": "goals_table"}


def _bench_module():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        spec = importlib.util.spec_from_file_location("minialbert_bench_script", ROOT / "scripts" / "bench.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "scripts"))


def on_page_markdown(markdown: str, page, config, files):
    if page.file.src_uri != "benchmarks.md":
        return markdown
    result = json.loads(RESULTS.read_text(encoding="utf-8"))
    bench = _bench_module()
    for name, function in RENDERERS.items():
        marker = MARKER.format(name)
        if marker not in markdown:
            continue
        render = getattr(bench, function, None)
        if render is None:
            log.warning(f"scripts/bench.py has no {function}() for {marker}; update docs/hooks/benchmarks.py")
            continue
        markdown = markdown.replace(marker, render(result))
    if "<!-- bench:" in markdown:
        log.warning("docs/benchmarks.md has a <!-- bench:... --> marker that no renderer replaced")
    return markdown
