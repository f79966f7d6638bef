"""Every code block of the documentation runs, or says why it does not (tests/docs_blocks.py).

One test per page: its ```python blocks run in order in one Python process, its ```bash blocks in
`bash -e -o pipefail`, interleaved in page order, in a fresh directory, against the demo checkpoint
in place of albert-base-v2. `test_every_block_is_accounted_for` checks the convention itself (no
fence without a language, no skip without a reason) and prints the tally.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from docs_blocks import BASH_PREAMBLE, EXAMPLE_FILES, ROOT, blocks, pages, prepare, tally  # noqa: E402

# A persistent Python process per page: one block per request line (JSON), one reply line per block.
RUNNER = textwrap.dedent('''
    import contextlib, json, sys, traceback
    scope = {"__name__": "__main__"}
    for line in sys.stdin:
        req = json.loads(line)
        try:
            with contextlib.redirect_stdout(sys.stderr):
                exec(compile(req["code"], req["where"], "exec"), scope)
            reply = {"ok": True}
        except BaseException:
            reply = {"ok": False, "error": traceback.format_exc(limit=-4)}
        sys.__stdout__.write("@@docs-test@@" + json.dumps(reply) + "\\n")
        sys.__stdout__.flush()
''')


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(HF_HUB_OFFLINE="1", MPLBACKEND="Agg", OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "2"),
               PYTHONWARNINGS="ignore", TQDM_DISABLE="1")
    return env


def _workdir(tmp_path: Path) -> Path:
    for name, text in EXAMPLE_FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    for name in ("scripts", "docs", "tests"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    return tmp_path


def _runnable(page: str) -> bool:
    return any(b.kind in ("python", "bash") for b in blocks(Path(page)))


@pytest.mark.parametrize("page", [str(p) for p in pages() if _runnable(str(p))])
def test_page_code_blocks_run(page, demo_checkpoint, tmp_path):
    cwd, env = _workdir(tmp_path), _env()
    env["DOCS_TEST_DEMO"] = str(demo_checkpoint)
    python = None
    try:
        for block in blocks(Path(page)):
            code = prepare(block.code, str(demo_checkpoint))
            if block.kind == "bash":
                run = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", BASH_PREAMBLE + code], cwd=cwd, env=env,
                                     capture_output=True, text=True, timeout=600)
                assert run.returncode == 0, f"{block.where} (bash) exited {run.returncode}:\n{code}\n" \
                                            f"--- stderr ---\n{run.stderr[-3000:]}"
            elif block.kind == "python":
                if python is None:
                    python = subprocess.Popen([sys.executable, "-c", RUNNER], cwd=cwd, env=env, text=True,
                                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                              stderr=subprocess.DEVNULL)
                python.stdin.write(json.dumps({"code": code, "where": block.where}) + "\n")
                python.stdin.flush()
                reply = None
                for line in python.stdout:
                    if line.startswith("@@docs-test@@"):
                        reply = json.loads(line[len("@@docs-test@@"):])
                        break
                assert reply is not None, f"{block.where}: the Python process died"
                assert reply["ok"], f"{block.where} (python) failed:\n{code}\n{reply['error']}"
    finally:
        if python is not None:
            python.stdin.close()
            python.wait(timeout=60)


def test_every_block_is_accounted_for(capsys):
    """No fence without a language, no skip without a reason; the tally is printed (run with -s)."""
    errors = [f"{b.where}: {b.error}" for p in pages() for b in blocks(p) if b.error]
    assert not errors, "\n".join(errors)
    counts = tally()
    skipped = [f"  {b.where}: {b.skip}" for p in pages() for b in blocks(p) if b.kind == "skip"]
    with capsys.disabled():
        print(f"\ndocs code blocks: {counts.get('python', 0)} python + {counts.get('bash', 0)} bash run, "
              f"{counts.get('output', 0)} output (not code), {counts.get('skip', 0)} skipped:")
        print("\n".join(skipped))
    assert counts.get("python", 0) + counts.get("bash", 0) > 0
