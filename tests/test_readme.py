"""The README: its two set-up commands as written, its headline table rendered from the benchmark JSON,
and its length. (Every code block in it also runs, against the demo checkpoint: tests/test_docs.py.)"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "docs" / "hooks"))
import benchmarks  # noqa: E402  (docs/hooks/benchmarks.py: the headline table's renderer)

README = (ROOT / "README.md").read_text(encoding="utf-8")
INSTALL_AND_RUN = ('pip install torch==2.13.0 && pip install -e . && minialbert embed "这是一个测试句子。" '
                   '"Another sentence." --model albert-base-v2 --pooling mean')
INSTALL_AND_TEST = ('S=$([ "$(id -u)" = 0 ] || echo sudo); pip install torch==2.13.0 && '
                    'pip install -e ".[test,viz,stream,ray,onnx,glue,docs,search,serve,tensorboard]" && '
                    "$S apt-get update && $S apt-get install -y chromium && python -m pytest -q")  # S: sudo unless root


def test_set_up_commands_are_the_ones_ci_runs(demo_checkpoint):
    assert INSTALL_AND_RUN in README and INSTALL_AND_TEST in README
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    extras = re.search(r'pip install -e "\.\[(.*?)\]"', INSTALL_AND_TEST).group(1)
    assert f'pip install -q -e ".[{extras}]"' in ci and "python -m pytest -q" in ci
    # the main job, after the install, on the demo checkpoint in place of the Hub download
    job = shlex.split(INSTALL_AND_RUN.split(" && ")[-1])
    assert job[:2] == ["minialbert", "embed"]
    args = [str(demo_checkpoint) if a == "albert-base-v2" else a for a in job[2:]]
    out = subprocess.run([sys.executable, "-m", "minialbert", "embed", *args], capture_output=True, text=True,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["text"] for r in rows] == ["这是一个测试句子。", "Another sentence."]
    assert all(len(r["vector"]) == 768 for r in rows)


def test_headline_table_is_the_rendered_json():
    result = json.loads(benchmarks.HEADLINE_RESULTS.read_text(encoding="utf-8"))
    block = README.split(benchmarks.HEADLINE_START, 1)[1].split(benchmarks.HEADLINE_END, 1)[0]
    assert block.strip() == benchmarks.headline_table(result).strip(), \
        "run: python docs/hooks/benchmarks.py --readme README.md"


def test_readme_is_short():
    """At most 250 lines: everything else lives in the documentation site."""
    assert README.count("\n") <= 250
