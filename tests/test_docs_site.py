"""The documentation site builds with `mkdocs build --strict`, and the Learn notebook runs.

--strict turns every warning into an error: a broken link, a missing page or image, an API name
mkdocstrings cannot find, and the Learn page's own check that model.py still has the code each
equation names (docs/hooks/learn.py). The [docs] extra brings mkdocs, nbclient and ipykernel;
without it these tests skip locally and fail in CI (env CI set).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _need(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is not installed; CI installs it with the [docs] extra")
        pytest.skip(f"{module} is not installed: pip install -e '.[docs]'")


def test_mkdocs_build_strict(tmp_path):
    _need("mkdocs")
    _need("mkdocstrings_handlers.python")
    site = tmp_path / "site"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "NO_MKDOCS_2_WARNING": "1", "HF_HUB_OFFLINE": "1"}
    # not -q: mkdocs drops warnings below its log level before --strict counts them
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    learn = (site / "learn" / "albert" / "index.html").read_text(encoding="utf-8")
    # generated from this very model.py (its digest is on the page), code beside equations
    digest = hashlib.sha256((ROOT / "minialbert" / "model.py").read_bytes()).hexdigest()[:12]
    assert digest in learn
    assert 'class="arithmatex"' in learn and 'class="learn-code"' in learn and "FeedForward" in learn
    assert "11,683,584" in learn  # albert-base-v2's AlbertModel, from the parameter arithmetic
    assert (site / "learn" / "inspect-report.html").stat().st_size > 10_000
    assert (site / "assets" / "katex" / "katex.min.js").exists()
    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "--long-text" in cli and "minialbert finetune" in cli
    # nothing on any page is fetched from another host (the site works offline)
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        for needle in ('src="http', 'href="https://fonts', "cdn.jsdelivr", "unpkg.com", "googleapis"):
            assert needle not in text, f"{page.relative_to(site)} loads {needle}..."


def test_learn_notebook_runs(demo_checkpoint):
    _need("nbclient")
    _need("ipykernel")
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "docs" / "learn" / "albert.ipynb", as_version=4)
    os.environ["MINIALBERT_MODEL"] = str(demo_checkpoint)  # the kernel inherits the environment
    old_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), old_path])
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT / "docs" / "learn")}}).execute()
    finally:
        os.environ.pop("MINIALBERT_MODEL")
        os.environ["PYTHONPATH"] = old_path
    outputs = "".join(o.get("text", "") for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs)
    assert "by formula" in outputs and "layer call 12" in outputs
