"""MkDocs hook: the tables of docs/benchmarks.md, rendered from scripts/bench-results.json at every build.

Also the README's headline table (`headline_table`): `python docs/hooks/benchmarks.py --readme README.md`
rewrites it between its markers, and tests/test_readme.py checks that the README holds exactly that.

The page's prose is written by hand; each `<!-- bench:NAME -->` line in it is replaced by a table that
scripts/bench_report.py's renderers (bench.py's tables) make from the JSON (`markdown_table`, `goals_table`: the same functions
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
# The README's headline comes from the newest run, made on the engine as it is now (the per-CPU plan).
HEADLINE_RESULTS = ROOT / "scripts" / "bench-results-vnni.json"
MARKER = "<!-- bench:{} -->"
RENDERERS = {"table": "markdown_table", "goals": "goals_table"}
HEADLINE_START, HEADLINE_END = "<!-- headline:start -->", "<!-- headline:end -->"
HEADLINE_SIDES = ("transformers fp32", "minialbert fp32", "minialbert int8", "ORT fp32, minialbert export")


def headline_table(result: dict) -> str:
    """The README's one table: how exact each side is, and how fast, from one benchmark run."""
    m, acc = result["machine"], result["accuracy"]["sides"]
    latency = result["model"]["1x16"]
    batch = result["model"]["32x128"]
    base_lat = latency["transformers fp32"]["latency_ms"]
    base_tok = batch["transformers fp32"]["median"]
    rows = ["| side | max \\|Δ\\| vs `model.py` | min cosine, mean-pooled | latency, 1 × 16 tokens (speed-up) | tokens/s, 32 × 128 (speed-up) |",
            "|---|---:|---:|---:|---:|"]
    for side in HEADLINE_SIDES:
        a, lat, tok = acc[side], latency[side]["latency_ms"], batch[side]["median"]
        rows.append(f"| {side} | {a['max_abs_diff']:.1e} | {a['cos_min_mean_pooled']:.7f} | "
                    f"{lat:.1f} ms ({base_lat / lat:.2f}×) | {tok:,.0f} ({tok / base_tok:.2f}×) |")
    rows += ["", f"albert-base-v2's shape, {result['accuracy']['texts']} texts ({result['accuracy']['tokens']:,} tokens) "
             f"for the accuracy columns; {m['cpu']} ({m.get('cpu_flags', '')}), {m['logical_cpus']} logical CPUs, "
             f"{result['threads']} thread(s), torch {m['torch']}, transformers {m.get('transformers')}; "
             + ("CPU time of the calling thread, " if result.get("clock") == "cpu" else "")
             + f"medians of interleaved rounds, ratios against transformers in the same run "
             f"(`scripts/{HEADLINE_RESULTS.name}`)."]
    return "\n".join(rows)


def render_readme(readme: Path) -> None:
    result = json.loads(HEADLINE_RESULTS.read_text(encoding="utf-8"))
    text = readme.read_text(encoding="utf-8")
    head, rest = text.split(HEADLINE_START, 1)
    _, tail = rest.split(HEADLINE_END, 1)
    readme.write_text(f"{head}{HEADLINE_START}\n{headline_table(result)}\n{HEADLINE_END}{tail}", encoding="utf-8")


def _bench_module():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        spec = importlib.util.spec_from_file_location("minialbert_bench_report", ROOT / "scripts" / "bench_report.py")
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
            log.warning(f"scripts/bench_report.py has no {function}() for {marker}; update docs/hooks/benchmarks.py")
            continue
        markdown = markdown.replace(marker, render(result))
    if "<!-- bench:" in markdown:
        log.warning("docs/benchmarks.md has a <!-- bench:... --> marker that no renderer replaced")
    return markdown


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Rewrite the README's headline table from the newest benchmark JSON (HEADLINE_RESULTS)",
                                     allow_abbrev=False)
    parser.add_argument("--readme", type=Path, required=True)
    render_readme(parser.parse_args().readme)
