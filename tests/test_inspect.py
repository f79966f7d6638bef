"""minialbert.inspect: its numbers against transformers and against hand arithmetic, its code links
against the source, its files, its CLI errors, and its page in a real headless Chromium."""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import make_hf_checkpoint
from minialbert import AlbertModel, Embedder
from minialbert.cli import main
from minialbert.embed import LongTextWarning
from minialbert.errors import MinialbertError
from minialbert.inspect import GRID_TOKEN_LIMIT, analyze, figure1_numbers

SPM = Path(__file__).parent / "fixtures" / "tokenizer" / "spm" / "spiece.model"
PACKAGE = Path(__file__).parents[1] / "minialbert"
TEXT = "The cat sat on the mat, and then it slept."
CALLS = 6  # 3 layers x inner_group_num 2
LONG_TEXT = "a b c d " * 60  # far more than the checkpoint's 160 positions


def vocab_size() -> int:
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=str(SPM)).get_piece_size()


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A transformers AlbertModel (eager attention, random weights) with a real tokenizer beside it."""
    d = tmp_path_factory.mktemp("inspect_ckpt")
    ref = make_hf_checkpoint(d, "AlbertModel", attn="eager", vocab_size=vocab_size(), inner_group_num=2,
                             max_position_embeddings=160)
    shutil.copy(SPM, d / "spiece.model")
    return d, ref


@pytest.fixture(scope="module")
def embedder(ckpt):
    return Embedder.from_pretrained(ckpt[0])  # loaded once; analyze() takes it as it takes a path


@pytest.fixture(scope="module")
def report(ckpt):
    return analyze(ckpt[0], TEXT)


def reference_run(ckpt):
    """transformers' own tokenizer and eager model on the same folder: the independent reference."""
    import transformers

    d, ref = ckpt
    tok = transformers.AlbertTokenizer.from_pretrained(str(d))
    enc = tok(TEXT, return_offsets_mapping=True)
    with torch.no_grad():
        out = ref(torch.tensor([enc["input_ids"]]), output_hidden_states=True, output_attentions=True)
    return enc, out


# ------------------------------------------------------------------------------ numbers
def test_figure1_definition_on_a_hand_worked_example():
    # Two depths, two tokens. Token 0 turns from (1, 0) to (0, 1): distance sqrt(2), angle 90°.
    # Token 1 stays at (1, 1): distance 0, angle 0°. A third, padded token must not count.
    h = np.array([[[1.0, 0.0], [1.0, 1.0], [5.0, 5.0]],
                  [[0.0, 1.0], [1.0, 1.0], [-5.0, 3.0]]])
    l2, angle = figure1_numbers(h, attention_mask=[1, 1, 0])
    assert l2 == pytest.approx([np.sqrt(2) / 2], abs=1e-12) and angle == pytest.approx([45.0], abs=1e-9)
    l2, angle = figure1_numbers(h[:, :1])
    assert l2 == pytest.approx([np.sqrt(2)]) and angle == pytest.approx([90.0])


def test_numbers_equal_the_model_outputs(ckpt, report):
    model = AlbertModel.from_pretrained(ckpt[0])
    ids = torch.from_numpy(report.ids)[None]
    with torch.no_grad():
        out = model(ids, output_hidden_states=True, output_attentions=True)
    h = torch.stack(out.hidden_states)[:, 0].double()  # (D, n, H)
    att = torch.stack(out.attentions)[:, 0]  # (calls, heads, n, n)
    assert report.hidden_states.shape == (CALLS + 1, len(report.ids), 32) and att.shape[0] == CALLS

    l2 = torch.linalg.vector_norm(h[1:] - h[:-1], dim=-1).mean(-1)
    angle = torch.rad2deg(torch.acos(F.cosine_similarity(h[1:], h[:-1], dim=-1).clamp(-1, 1))).mean(-1)
    assert np.abs(report.figure1.l2 - l2.numpy()).max() <= 1e-6
    assert np.abs(report.figure1.angle - angle.numpy()).max() <= 1e-6
    assert np.abs(report.attentions - att.numpy()).max() <= 1e-6
    sim = F.cosine_similarity(h[:, :, None], h[:, None], dim=-1)
    assert np.abs(report.similarity - sim.numpy()).max() <= 1e-6
    # [CLS] is the first token and [SEP] the last: their shares are those columns, averaged over queries
    assert np.abs(report.cls_share - att[..., 0].mean(-1).numpy()).max() <= 1e-6
    assert np.abs(report.sep_share - att[..., -1].mean(-1).numpy()).max() <= 1e-6
    assert np.abs(report.embeddings - model.embeddings(ids)[0].detach().numpy()).max() <= 1e-6
    assert report.weights_of_call == [0, 1] * 3  # one group of two layers, called three times


def test_numbers_equal_transformers(ckpt, report):
    enc, out = reference_run(ckpt)
    assert report.ids.tolist() == enc["input_ids"]
    assert report.pieces[0] == "[CLS]" and report.pieces[-1] == "[SEP]"
    assert report.spans[1:-1] == [tuple(s) for s in enc["offset_mapping"][1:-1]]
    ref_att = torch.stack(out.attentions)[:, 0].numpy()
    assert ref_att.shape == report.attentions.shape
    assert np.abs(report.attentions - ref_att).max() <= 1e-5
    ref_hidden = torch.stack(out.hidden_states)[:, 0]
    l2, angle = figure1_numbers(out.hidden_states)
    assert np.abs(report.hidden_states - ref_hidden.numpy()).max() <= 1e-5
    assert np.abs(report.figure1.l2 - l2).max() <= 1e-5 * max(1.0, float(np.abs(l2).max()))
    # arccos is steep near 0°: a 1e-7 change of a cosine near 1 moves the angle by ~1e-4 degrees, so the
    # angle is compared through its cosine.
    assert np.abs(np.cos(np.radians(report.figure1.angle)) - np.cos(np.radians(angle))).max() <= 1e-5


def test_parameter_map_against_torch_and_a_transformers_bert(ckpt, report):
    import transformers

    assert sum(p.albert for p in report.parameters) == report.parameters_counted
    c = report.config
    # the BERT-style column has a layer of its own per layer application: CALLS (3 calls x 2 inner layers)
    bert = transformers.BertModel(transformers.BertConfig(
        vocab_size=c.vocab_size, hidden_size=c.hidden_size, num_hidden_layers=CALLS,
        num_attention_heads=c.num_attention_heads, intermediate_size=c.intermediate_size,
        max_position_embeddings=c.max_position_embeddings, type_vocab_size=c.type_vocab_size))
    assert sum(p.bert for p in report.parameters) == sum(p.numel() for p in bert.parameters())


EXPECTED_CODE = {  # stage -> (file, function, text of the line that computes it)
    "pieces and ids": ("tokenizer/albert.py", "def __call__", None),
    "word embedding lookup": ("model.py", "def forward", "self.word(input_ids)"),
    "input embedding e (width E)": ("model.py", "def forward", "self.norm(x)"),
    "projection E → H": ("model.py", "def forward", "h = self.project(embedded)"),
    "queries, split into heads": ("model.py", "def forward", "q = self.split_heads(self.query(x))"),
    "attention probabilities": ("model.py", "def forward", "probs = torch.softmax(scores, dim=-1)"),
    "heads joined, residual, LayerNorm": ("model.py", "def forward", "return self.norm(x + attended), probs"),
    "feed-forward, inner": ("model.py", "def forward", "self.act(self.up(x))"),
    "feed-forward, out, residual, LayerNorm": ("model.py", "def forward", "self.down("),
    "layer calls (shared weights)": ("model.py", "def forward", "for layer in self.layer_calls():"),
    "pooler": ("model.py", "def forward", "torch.tanh(self.pooler(h[:, 0]))"),
}


def test_stage_links_point_at_the_code_that_computes_them(report):
    assert [s.name for s in report.stages] == list(EXPECTED_CODE)
    for stage in report.stages:
        file, definition, snippet = EXPECTED_CODE[stage.name]
        code = stage.code
        assert code.path == f"minialbert/{file}"
        lines = (PACKAGE / file).read_text(encoding="utf-8").splitlines(keepends=True)
        assert lines[code.start - 1].strip().startswith(definition), (stage.name, lines[code.start - 1])
        assert code.source == "".join(lines[code.start - 1:code.end])
        # the range ends where the function does: the next line is blank, or less indented
        indent = len(lines[code.start - 1]) - len(lines[code.start - 1].lstrip())
        after = lines[code.end] if code.end < len(lines) else "\n"
        assert not after.strip() or len(after) - len(after.lstrip()) <= indent
        if snippet:
            assert code.start <= code.line <= code.end and snippet in lines[code.line - 1], stage.name
    shapes = {s.name: s.shape for s in report.stages}
    n = len(report.ids)
    assert shapes["input embedding e (width E)"] == (1, n, 16) and shapes["projection E → H"] == (1, n, 32)
    assert shapes["attention probabilities"] == (1, 4, n, n) and shapes["feed-forward, inner"] == (1, n, 37)
    assert shapes["queries, split into heads"] == (1, 4, n, 8) and shapes["pooler"] == (1, 32)


def test_token_choice(embedder, report):
    assert report.token == 1  # first word piece
    chosen = analyze(embedder, TEXT, token="sa")
    assert chosen.pieces[chosen.token] == "sa" and np.array_equal(chosen.attentions, report.attentions)
    assert analyze(embedder, TEXT, token=-1).token == len(report.ids) - 1
    with pytest.raises(MinialbertError, match="not among the text's pieces"):
        analyze(embedder, TEXT, token="zebra")
    with pytest.raises(MinialbertError, match="text is empty"):
        analyze(embedder, " \n")


def test_long_text_is_truncated_with_a_notice_and_aggregated(embedder):
    with pytest.warns(LongTextWarning, match="only the first 160"):
        r = analyze(embedder, LONG_TEXT)
    assert len(r.ids) == 160 and r.truncated and r.aggregated and 160 > GRID_TOKEN_LIMIT
    assert any("only the first 160" in n for n in r.notices) and any("mean over heads" in n for n in r.notices)
    page = r.to_html()
    assert "only the first 160" in page and '"mode":"layers"' in page


def test_compare_overlays_a_model_of_another_depth(embedder, tmp_path):
    import transformers

    other = make_hf_checkpoint(tmp_path, "AlbertModel", attn="eager", vocab_size=vocab_size(), num_hidden_layers=5,
                               seed=3)
    shutil.copy(SPM, tmp_path / "spiece.model")
    r = analyze(embedder, TEXT, name="base", compare={"deeper": str(tmp_path)})
    ids = transformers.AlbertTokenizer.from_pretrained(str(tmp_path))(TEXT)["input_ids"]
    with torch.no_grad():
        l2, angle = figure1_numbers(other(torch.tensor([ids]), output_hidden_states=True).hidden_states)
    assert [f.model for f in [r.figure1, *r.compare]] == ["base", "deeper"]
    assert len(r.compare[0].l2) == 5 and np.abs(r.compare[0].l2 - l2).max() <= 1e-5 * max(1.0, float(l2.max()))
    rows = r.figure1_rows()
    assert len(rows) == CALLS + 5 and rows[-1]["model"] == "deeper" and rows[-1]["layer_call"] == 5
    assert rows[-1]["angle_deg"] == pytest.approx(angle[-1], abs=1e-3)


# ---------------------------------------------------------------------------- the page
def test_page_is_self_contained_and_notebook_ready(report, tmp_path):
    page = report.to_html()
    assert not re.search(r"(?i)\b(src|href)\s*=\s*[\"']?(https?:|//)", page)
    assert not re.search(r"https?://", page)  # no URL at all, not even an SVG namespace
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    frame = report._repr_html_()
    assert frame.startswith("<iframe srcdoc=\"") and html.unescape(frame.split('"')[1]) == page
    path = report.save_html(tmp_path)
    assert path == tmp_path / "report.html" and path.read_text(encoding="utf-8") == page


def test_save_writes_numbers_and_pngs(report, tmp_path):
    written = report.save(tmp_path / "new" / "dir")
    names = sorted(p.name for p in written)
    assert names == sorted(["report.html", "figure1.csv", "figure1.json", "figure1.png", "attention.png",
                            "special_tokens.png", "similarity.png", "parameters.png"])
    for p in written:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 2000
    rows = list(csv.DictReader(io.StringIO((tmp_path / "new" / "dir" / "figure1.csv").read_text())))
    assert [int(r["layer_call"]) for r in rows] == list(range(1, CALLS + 1))
    assert np.allclose([float(r["l2"]) for r in rows], report.figure1.l2, rtol=1e-12)
    doc = json.loads((tmp_path / "new" / "dir" / "figure1.json").read_text())
    assert doc["models"][0]["angle_deg"] == report.figure1.angle.tolist() and "E->H projection" in doc["definition"]
    assert not list((tmp_path / "new" / "dir").glob(".*tmp"))  # no temp files left behind


def test_without_matplotlib_the_page_and_numbers_still_come(ckpt, embedder, tmp_path, monkeypatch, capsys):
    import sys

    from minialbert.inspect.output import VizWarning

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    r = analyze(embedder, TEXT)
    with pytest.warns(VizWarning, match=r"pip install 'minialbert\[viz\]'"):
        written = r.save(tmp_path / "a")
    assert sorted(p.name for p in written) == ["figure1.csv", "figure1.json", "report.html"]
    with pytest.raises(MinialbertError, match="PNGs need matplotlib"):
        r.save(tmp_path / "b", png=True)
    assert not (tmp_path / "b").exists()
    with pytest.warns(VizWarning, match="PNGs not written: matplotlib is not installed"):
        code, _, _ = run(["inspect", TEXT, "--model", ckpt[0], "-o", tmp_path / "c", "-q"], capsys)
    assert code == 0 and sorted(p.name for p in (tmp_path / "c").iterdir()) == sorted(p.name for p in written)


# ------------------------------------------------------------------------------- the CLI
def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_writes_the_report(ckpt, tmp_path, capsys):
    out_dir = tmp_path / "rep"
    code, out, err = run(["inspect", TEXT, "--model", ckpt[0], "--output", out_dir, "--no-png", "--token", "sa"], capsys)
    assert code == 0, err
    assert out.strip() == str(out_dir / "report.html") and "wrote report.html, figure1.csv, figure1.json" in err
    assert sorted(p.name for p in out_dir.iterdir()) == ["figure1.csv", "figure1.json", "report.html"]
    # the CSV holds Figure 1 of transformers' own hidden states for this text
    _, ref_out = reference_run(ckpt)
    l2, _ = figure1_numbers(ref_out.hidden_states)
    rows = list(csv.DictReader(io.StringIO((out_dir / "figure1.csv").read_text())))
    assert np.abs(np.array([float(r["l2"]) for r in rows]) - l2).max() <= 1e-5 * max(1.0, float(l2.max()))
    assert rows[0]["model"] == str(ckpt[0])


@pytest.mark.parametrize("argv, message", [
    (["inspect", "   ", "--output", "{tmp}/r"], "the text is empty"),
    (["inspect", "hello", "--output", "{tmp}/a_file"], "exists and is not a directory"),
    (["inspect", "hello", "--output", "{tmp}/r", "--model", "nobody/no-such-model", "--offline",
      "--cache-dir", "{tmp}/empty-cache"], "not in the local Hugging Face cache"),
    (["inspect", "hello", "--output", "{tmp}/r", "--token", "zebra"], "not among the text's pieces"),
])
def test_cli_errors_are_one_line(ckpt, tmp_path, capsys, argv, message):
    (tmp_path / "a_file").write_text("x")
    argv = [a.format(tmp=tmp_path) for a in argv]
    if "--model" not in argv:
        argv += ["--model", str(ckpt[0])]
    code, out, err = run(argv, capsys)
    assert code == 1 and out == ""
    assert message in err and err.count("\n") == 1 and err.startswith("minialbert inspect: error:")
    assert not (tmp_path / "r").exists()  # nothing half-made


# -------------------------------------------------------------------- a real browser
CHROMIUM = os.environ.get("MINIALBERT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def browser_or_skip():
    """The browser test must run in CI (`.ci/run` installs Chromium and playwright): fail there, skip elsewhere."""
    reason = None
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ImportError:
        reason = "playwright is not installed (pip install -e '.[test]')"
    if reason is None and not Path(CHROMIUM).exists():
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test cannot run in CI: {reason}")
        pytest.skip(reason)


@contextmanager
def offline_page(tmp_path: Path):
    """A headless Chromium page (playwright) that records every request and console problem. On
    leaving, it asserts that nothing broke and that no request left the machine (file, data and
    about URLs only): the reports must work offline. Fails in CI, skips elsewhere, without a browser."""
    browser_or_skip()
    from playwright.sync_api import sync_playwright

    requests, problems = [], []
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1280, "height": 900})
        try:
            page = context.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            yield page
        finally:
            context.close()
    assert problems == []
    assert requests and all(u.startswith(("file://", "data:", "about:")) for u in requests), requests


def distinct_colours(png: bytes) -> int:
    from PIL import Image

    return len(Image.open(io.BytesIO(png)).convert("RGB").getcolors(1 << 24))


def test_report_in_headless_chromium(embedder, report, tmp_path):
    browser_or_skip()
    path = report.save_html(tmp_path / "report.html")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LongTextWarning)
        aggregated = analyze(embedder, LONG_TEXT)  # 160 tokens: above the grid limit
    aggregated_path = aggregated.save_html(tmp_path / "aggregated.html")
    with offline_page(tmp_path) as page:
        page.goto(path.as_uri())
        page.wait_for_function("document.querySelectorAll('#grid canvas.cell').length > 0")

        heads = report.attentions.shape[1]
        assert page.locator("#grid canvas.cell").count() == CALLS * heads
        assert page.locator("#tokens tbody tr").count() == len(report.ids)
        assert distinct_colours(page.locator("#grid").screenshot()) > 50  # heatmaps, not a blank box

        def big_view():
            return page.evaluate("document.getElementById('big-heatmap').toDataURL()")

        before = big_view()
        last = page.locator("#grid canvas.cell").nth(CALLS * heads - 1)
        last.click()
        assert big_view() != before
        assert page.locator("#sel-layer").input_value() == str(CALLS - 1)
        assert page.locator("#sel-head").input_value() == str(heads - 1)
        assert "selected" in last.get_attribute("class")

        page.locator("#lines-left span").nth(1).hover()  # a query token: only its lines, a status line
        assert "query 1" in page.locator("#big-status").inner_text()
        assert page.locator("#lines-left span.hot").count() == 1

        sim_before = page.evaluate("document.getElementById('sim-heatmap').toDataURL()")
        page.locator("#sel-token").select_option("3")
        assert page.evaluate("document.getElementById('sim-heatmap').toDataURL()") != sim_before
        assert page.locator("#chart-l2 svg polyline").count() == 1
        assert page.locator("#chart-params svg rect").count() >= 8

        page.set_content(report._repr_html_())  # the notebook view: scripts run inside the srcdoc iframe
        frame = page.frame_locator("iframe")
        frame.locator("#grid canvas.cell").first.wait_for()
        assert frame.locator("#grid canvas.cell").count() == CALLS * heads

        page.goto(aggregated_path.as_uri())  # above 128 tokens: one mean map per layer call, a notice
        page.wait_for_function("document.querySelectorAll('#grid canvas.cell').length > 0")
        assert page.locator("#grid canvas.cell").count() == CALLS
        assert any("mean over heads" in t for t in page.locator(".notice").all_inner_texts())
        assert page.locator("#lines").is_hidden()
