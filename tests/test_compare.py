"""`minialbert compare`: pre-training and GLUE folders in one page, checked against the files the
runs wrote, in headless Chromium with every network request failing the test."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from minialbert.cli import main as cli_main
from minialbert.compare import CompareError, make_compare, read_run
from minialbert.compare.runs import pretraining_curves
from minialbert.finetune.toy import FILLER, write_base_checkpoint
from minialbert.glue import run_glue
from minialbert.glue.toy import write_glue

REPO = Path(__file__).resolve().parent.parent
SPM = REPO / "tests" / "fixtures" / "tokenizer" / "spm" / "spiece.model"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("compare")
    rng = random.Random(0)
    docs = ["\n".join(" ".join(rng.choice(FILLER) for _ in range(rng.randint(5, 12))) + "." for _ in range(4))
            for _ in range(30)]
    (d / "corpus.txt").write_text("\n\n".join(docs) + "\n")
    for sharing in ("all", "none"):
        assert cli_main(["pretrain", "--corpus", str(d / "corpus.txt"), "--output-dir", str(d / f"pre_{sharing}"),
                         "--vocab", str(SPM), "--hidden-size", "32", "--num-layers", "3", "--num-heads", "2",
                         "--intermediate-size", "64", "--embedding-size", "16", "--sharing", sharing,
                         "--max-steps", "6", "--log-every", "2", "--save-every", "6", "--batch-size", "4",
                         "--max-seq-length", "32", "--threads", "1", "--quiet"]) == 0
    write_base_checkpoint(d / "tiny", vocab_file=SPM, hidden_size=32, intermediate_size=64, embedding_size=16,
                          max_position_embeddings=64)
    write_glue(d / "data", tasks=["rte", "stsb"], n_train=12, n_dev=8, n_test=0)
    quick = dict(tasks="rte,stsb", max_steps=2, overrides=["batch_size=4", "max_length=32"], quiet=True, threads=1,
                 device="cpu")
    run_glue(d / "data", str(d / "pre_all"), d / "glue_all", **quick)
    run_glue(d / "data", str(d / "tiny"), d / "glue_tiny", **quick)
    return d


def test_pretraining_curves_and_tokens_from_the_log(runs):
    records = [json.loads(line) for line in (runs / "pre_all" / "log.jsonl").read_text().splitlines()]
    curves, estimated = pretraining_curves(records)
    train = [r for r in records if "mlm_loss" in r]
    by_name = {c.name: c for c in curves}
    assert by_name["mlm_loss"].values == [r["mlm_loss"] for r in train]
    assert by_name["sop_loss"].steps == [r["step"] for r in train] == [2, 4, 6]
    assert estimated  # today's log has tokens/s, not a token count: the page says the axis is estimated
    expected, last = 0.0, 0.0
    for r, tokens in zip(train, by_name["mlm_loss"].tokens):
        expected += r["tokens_per_s"] * (r["elapsed_s"] - last)
        last = r["elapsed_s"]
        assert tokens == pytest.approx(expected)
    # a log with exact token counts and validation records (the shape pre-training may grow into)
    log = [{"step": 10, "mlm_loss": 5.0, "sop_loss": 0.7, "tokens": 1000},
           {"step": 20, "mlm_loss": 4.0, "sop_loss": 0.6, "tokens": 2100},
           {"step": 20, "event": "eval", "mlm_loss": 4.5},
           {"step": 20, "valid_sop_loss": 0.65}]
    curves, estimated = pretraining_curves(log)
    by_name = {c.name: c for c in curves}
    assert not estimated and by_name["mlm_loss"].tokens == [1000, 2100]
    assert by_name["valid_mlm_loss"].values == [4.5] and by_name["valid_mlm_loss"].tokens == [2100]
    assert by_name["valid_sop_loss"].steps == [20]


def test_report_in_headless_chromium(runs, tmp_path):
    from test_inspect import browser_or_skip, offline_page

    browser_or_skip()

    out = make_compare([runs / "pre_all", runs / "pre_none", runs / "glue_tiny", runs / "glue_all"],
                       tmp_path / "report.html")
    html = out.read_text()
    from minialbert import AlbertModel

    for name in ("pre_all", "pre_none"):  # parameter counts: what torch counts in the loaded model
        model = AlbertModel.from_pretrained(runs / name)
        total = sum(p.numel() for p in model.parameters())  # shared modules are counted once
        calls = model.encoder.layer_calls()
        distinct = {id(m): m for m in calls}
        layers = sum(p.numel() for m in distinct.values() for p in m.parameters())
        shared = layers if len(distinct) < len(calls) else 0
        assert f"{total:,}</td><td>{layers:,}</td><td>{shared:,} (" in html
    with offline_page(tmp_path) as page:
        page.goto(out.as_uri())
        page.wait_for_function("document.querySelectorAll('#curves svg').length > 0")
        # MLM and SOP, each against steps and tokens; one line per pre-training run
        assert page.locator("#curves .chart").count() == 4
        assert page.locator("#curves .chart[data-curve='mlm_loss'][data-axis='tokens'] svg polyline").count() == 2
        # the GLUE table: the first run's scores and the other's difference to it, from results.json
        a = json.loads((runs / "glue_tiny" / "results.json").read_text())
        b = json.loads((runs / "glue_all" / "results.json").read_text())
        cells = page.locator("#glue-table tr[data-task='rte'] td").all_inner_texts()
        ra, rb = a["tasks"]["rte"]["score"], b["tasks"]["rte"]["score"]
        assert cells[2:] == [f"{ra:.1f}", f"{rb:.1f}", f"{rb - ra:+.1f}"]
        assert "not a GLUE score" in page.locator("#glue-table tr[data-task='average']").inner_text()
        # Figure 1: one curve per distinct local model (glue_all ran on pre_all: the same model)
        assert page.locator("#chart-l2 svg polyline").count() == 3
        assert page.locator("#chart-angle svg polyline").count() == 3
        # differences: sharing differs between the pre-training runs, the model between the GLUE runs
        assert "sharing" in page.locator("#pretrain-args-diff").inner_text()
        assert "model" in page.locator("#glue-args-diff").inner_text()
        assert "shared across" in page.locator("#runs-table").inner_text()


def test_bad_runs_are_one_line_errors(runs, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CompareError, match="neither a pre-training output"):
        read_run(tmp_path / "empty")
    code = cli_main(["compare", str(runs / "pre_all"), str(tmp_path / "nowhere"), "--output", str(tmp_path / "r.html")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "no such directory" in err
    code = cli_main(["compare", str(runs / "pre_all"), "--output", str(tmp_path / "r.png")])
    assert code == 1 and "ending in .html" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "r.png").exists()
