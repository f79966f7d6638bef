"""The README's offline quick start and its first Python example run as written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_offline_quick_start_and_transformers_workflow_snippet(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "python scripts/make_demo_checkpoint.py demo-albert && minialbert embed" in readme
    demo = tmp_path / "demo-albert"
    made = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_demo_checkpoint.py"), str(demo)],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    out = subprocess.run([sys.executable, "-m", "minialbert", "embed", "Hello world", "--model", str(demo)],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert rows[0]["text"] == "Hello world" and len(rows[0]["vector"]) == 768

    # The first Python block of "The library" section, pointed at the demo checkpoint.
    block = re.search(r"### The usual transformers workflow.*?```python\n(.*?)```", readme, re.S).group(1)
    code = block.replace('"albert-base-v2"', repr(str(demo)))
    code += "\nassert cls_embedding.shape == (1, 768) and all_embeddings.shape[-1] == 768\n"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
