"""`ruff check` passes on the whole tree, with the rules chosen in pyproject.toml ([tool.ruff.lint]).

Run by the suite so that CI's one command (`python -m pytest -q`) enforces it. ruff comes with the
[test] extra; without it the test skips locally and fails in CI (env CI set).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def test_ruff_check_passes():
    if importlib.util.find_spec("ruff") is None:
        if os.environ.get("CI"):
            pytest.fail("ruff is not installed; CI installs it with the [test] extra")
        pytest.skip("ruff is not installed: pip install -e '.[test]'")
    run = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", str(ROOT)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, "ruff check found problems (fix them or ignore with a reason):\n" + run.stdout + run.stderr
