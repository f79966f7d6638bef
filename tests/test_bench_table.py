"""The README's benchmark and goals tables are rendered from the committed JSON (scripts/bench-results.json)
by scripts/bench.py, never typed by hand: this fails when the two drift apart."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_script", ROOT / "scripts" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_table_is_the_rendered_json():
    bench = _bench_module()
    result = json.loads((ROOT / "scripts" / "bench-results.json").read_text(encoding="utf-8"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split(bench.README_START, 1)[1].split(bench.README_END, 1)[0]
    assert block.strip() == bench.markdown_table(result).strip()
    goals = readme.split(bench.GOALS_START, 1)[1].split(bench.GOALS_END, 1)[0]
    assert goals.strip() == bench.goals_table(result).strip()
    # The table names the machine it was measured on, and every side of the table.
    assert result["machine"]["cpu"] in block and result["machine"]["cpu_flags"] in block
    for side in ("transformers fp32", "minialbert fp32", "minialbert int8", "ORT int8 U8U8 per-channel",
                 "ORT int8 U8S8 per-channel", "ORT int8, minialbert export", "ORT fp32, minialbert export"):
        assert f"| {side} |" in block
