"""The speed guide's benchmark and goals tables (docs/guides/speed.md) are rendered from the committed
JSON files (scripts/bench-results*.json) by scripts/bench.py (bench_report.py), never typed by hand: this fails when
they drift apart."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PAGE = ROOT / "docs" / "guides" / "speed.md"


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_report_script", ROOT / "scripts" / "bench_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("json_name, markers, sides", [
    ("bench-results.json", "", ("transformers fp32", "minialbert fp32", "minialbert int8", "ORT int8 U8U8 per-channel",
                                "ORT int8 U8S8 per-channel", "ORT int8, minialbert export", "ORT fp32, minialbert export")),
    ("bench-results-vnni.json", "vnni", ("transformers fp32", "minialbert fp32", "minialbert int8", "minialbert bf16",
                                         "minialbert int8, fixed plan", "minialbert int8, inference-mode load",
                                         "ORT int8 U8S8 per-channel", "ORT fp32, minialbert export")),
])
def test_speed_page_tables_are_the_rendered_json(json_name, markers, sides):
    bench = _bench_module()
    result = json.loads((ROOT / "scripts" / json_name).read_text(encoding="utf-8"))
    page = PAGE.read_text(encoding="utf-8")
    (t0, t1), (g0, g1) = bench.markers(markers)
    block = page.split(t0, 1)[1].split(t1, 1)[0]
    assert block.strip() == bench.markdown_table(result).strip()
    goals = page.split(g0, 1)[1].split(g1, 1)[0]
    assert goals.strip() == bench.goals_for(result).strip()
    # The table names the machine it was measured on, and every side of the table.
    assert result["machine"]["cpu"] in block and result["machine"]["cpu_flags"] in block
    for side in sides:
        assert f"| {side} |" in block


def test_goal_ratios_pair_the_rounds_of_a_run():
    """A ratio of two sides is the median of their per-round ratios when the times are in round
    order (rounds ran side by side), and the ratio of medians for older JSON files (sorted times)."""
    bench = _bench_module()
    # Round 2 was slow for both sides alike: paired, side a is 1.25x, 1.25x, 0.8x faster than b.
    a = {"median": 100 / 1.6, "seconds": [0.8, 1.6, 1.0], "in_round_order": True}
    b = {"median": 100 / 1.0, "seconds": [1.0, 2.0, 0.8], "in_round_order": True}
    result = {"model": {"1x16": {"a": a, "b": b}}}
    value, note = bench.ratio(result, "1x16", "a", "b")
    assert value == pytest.approx(1.25) and note == "2/3 rounds >= 1"
    for side in (a, b):
        del side["in_round_order"]
    value, note = bench.ratio(result, "1x16", "a", "b")
    assert value == pytest.approx(0.625) and note is None  # 62.5 / 100, the medians'
