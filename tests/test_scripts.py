"""The scripts a new user runs first (issue 26): each answers --help in a clean interpreter without
side effects, turns argparse abbreviations off, and no script's module name shadows an installed
package (scripts/kernels.py hid the `kernels` package that transformers >= 5.25 imports, so every
script that imported transformers crashed). Plus the fixes to individual scripts: the SST-2
download without network, the stdlib corpus inside a virtual environment, and the fine-tune
curve's default output."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import closed_port

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = (ROOT / "scripts", ROOT / "docs")
SCRIPTS = [p for folder in FOLDERS for p in sorted(folder.glob("*.py"))]
IGNORED = {"__pycache__", ".pytest_cache", ".hypothesis", ".git"}


def _env() -> dict:
    """The environment of a user whose minialbert is installed (here: importable from ROOT)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _snapshot() -> dict[str, tuple[int, int]]:
    """Every file of the checkout (size, mtime): a script's --help must change none of them."""
    files = {}
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in IGNORED]
        for f in filenames:
            st = os.stat(os.path.join(dirpath, f))
            files[os.path.relpath(os.path.join(dirpath, f), ROOT)] = (st.st_size, st.st_mtime_ns)
    return files


# Runs a script as `python SCRIPT FLAG` does (its folder first on sys.path, run as __main__), once
# with --help and once with --hel, in one fresh interpreter per script (so torch, which a few
# scripts import at the top, is imported once, not twice).
RUNNER = """
import contextlib, io, json, os, runpy, sys
script = sys.argv[1]
sys.path[0] = os.path.dirname(script)
results = {}
for flag in ("--help", "--hel"):
    out, err, code = io.StringIO(), io.StringIO(), 0
    sys.argv = [script, flag]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    results[flag] = [code, out.getvalue(), err.getvalue()]
print(json.dumps(results))
"""


def _run(script: Path, cwd: Path) -> dict:
    cwd.mkdir(parents=True)
    r = subprocess.run([sys.executable, "-c", RUNNER, str(script)], cwd=cwd, env=_env(), capture_output=True,
                       text=True, timeout=300)
    try:
        return json.loads(r.stdout.splitlines()[-1])
    except (IndexError, ValueError):
        return {"--help": [r.returncode, r.stdout, r.stderr], "--hel": [r.returncode, r.stdout, r.stderr]}


def test_scripts_answer_help_without_side_effects_and_reject_abbreviations(tmp_path):
    assert len(SCRIPTS) >= 15, SCRIPTS
    before = _snapshot()
    with ThreadPoolExecutor(max_workers=4) as pool:  # most finish in ~0.1 s; a few import torch
        results = list(pool.map(lambda s: _run(s, tmp_path / s.stem), SCRIPTS))
    problems = []
    for script, result in zip(SCRIPTS, results):
        name = script.relative_to(ROOT)
        left = sorted(p.name for p in (tmp_path / script.stem).iterdir())
        if left:  # make_demo_checkpoint.py --help made a folder named --help/
            problems.append(f"{name}: created {left}")
        code, out, err = result["--help"]
        if code != 0 or not out.startswith("usage:"):
            problems.append(f"{name} --help: exit {code}, stderr {err.strip()[-300:]!r}")
        code, out, err = result["--hel"]
        if code != 2 or "show this help message" in out:  # with abbreviations on, --hel means --help
            problems.append(f"{name} --hel: accepted as an abbreviation of --help (exit {code})")
    assert not problems, "\n".join(problems)
    after = _snapshot()
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, f"--help changed files of the checkout: {changed}"


def test_no_script_shadows_an_installed_module(tmp_path):
    names = {folder: [p.stem for p in sorted(folder.glob("*.py"))] for folder in FOLDERS}
    code = (
        "import importlib, importlib.util, json, os, sys\n"
        "names = json.loads(sys.argv[1])\n"
        "everything = [n for folder in names for n in names[folder]]\n"
        "clash = [n for n in everything if importlib.util.find_spec(n) is not None]\n"
        "assert not clash, f'script names that are also installed modules: {clash}'\n"
        "sys.path[:0] = list(names)  # as when a script of these folders runs\n"
        "from transformers import AlbertModel, AlbertTokenizer  # what scripts/kernels.py broke\n"
        "for folder in names:\n"
        "    for n in names[folder]:\n"
        "        m = importlib.import_module(n)\n"
        "        assert os.path.dirname(os.path.abspath(m.__file__)) == folder, (n, m.__file__)\n"
        "print('ok', len(everything))\n"
    )
    arg = json.dumps({str(folder): n for folder, n in names.items()})
    r = subprocess.run([sys.executable, "-c", code, arg], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                       timeout=300)
    total = sum(map(len, names.values()))
    assert r.returncode == 0 and r.stdout.strip() == f"ok {total}", r.stderr[-2000:]
    assert not list(tmp_path.iterdir())  # importing a script does nothing but define it


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------- get_glue_sst2.py
def test_sst2_download_without_network_is_one_line_and_leaves_nothing(tmp_path):
    script = ROOT / "scripts" / "get_glue_sst2.py"
    url = f"{closed_port()}/glue/data/SST-2.zip"
    r = subprocess.run([sys.executable, str(script), str(tmp_path / "SST-2"), "--url", url], capture_output=True,
                       text=True, env=_env(), timeout=120)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("get_glue_sst2.py: error: cannot download "), r.stderr
    assert not (tmp_path / "SST-2").exists()

    # the same zip layout as GLUE's, from a file:// URL (a downloaded copy)
    archive = tmp_path / "SST-2.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("SST-2/train.tsv", "sentence\tlabel\nit 's a charming journey \t1\ndull\t0\n")
        z.writestr("SST-2/dev.tsv", "sentence\tlabel\ngripping\t1\n")
    r = subprocess.run([sys.executable, str(script), str(tmp_path / "SST-2"), "--url", archive.as_uri()],
                       capture_output=True, text=True, env=_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "SST-2" / "dev.tsv").read_text() == "sentence\tlabel\ngripping\t1\n"
    assert "train.tsv: 2 sentences" in r.stderr and sorted(p.name for p in (tmp_path / "SST-2").iterdir()) == [
        "dev.tsv", "train.tsv"]

    bad = tmp_path / "not-a.zip"
    bad.write_text("<html>moved</html>")
    r = subprocess.run([sys.executable, str(script), str(tmp_path / "x"), "--url", bad.as_uri()],
                       capture_output=True, text=True, env=_env(), timeout=120)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "cannot read GLUE's SST-2.zip" in r.stderr
    assert not (tmp_path / "x").exists()


# ------------------------------------------------------------------------ mk_stdlib_corpus.py
def test_stdlib_corpus_inside_a_virtual_environment(tmp_path):
    """In a venv, sys.prefix holds no standard library: the old script globbed it and silently
    wrote a 1-byte corpus."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    out = tmp_path / "corpus.txt"
    r = subprocess.run([str(python), str(ROOT / "docs" / "mk_stdlib_corpus.py"), str(out), "--max-chars", "200000"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    probe = subprocess.run([str(python), "-c", "import sys; print(sys.prefix != sys.base_prefix)"],
                           capture_output=True, text=True)
    assert probe.stdout.strip() == "True"  # really inside a venv
    text = out.read_text(encoding="utf-8")
    docs = text.strip().split("\n\n")
    assert len(text) >= 200_000 and len(docs) > 100
    # English prose from docstrings, e.g. argparse's "Command-line parsing library"
    assert all(len(d.split()) >= 12 for d in docs) and " the " in text and not text.startswith(">>>")


def test_stdlib_corpus_fails_in_one_line_without_sources(tmp_path, capsys, monkeypatch):
    corpus = _load(ROOT / "docs" / "mk_stdlib_corpus.py")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "argparse.py").write_text('"""Only one docstring in this folder, which is far too little '
                                                  'text to train a vocabulary on."""\n')
    with pytest.raises(corpus.CorpusError, match=r"only 1 docstrings found under .*: is the standard library "
                                                 r"installed without its \.py sources\?"):
        corpus.docstring_documents(tmp_path / "lib")
    monkeypatch.setattr(corpus, "stdlib_candidates", lambda: [str(tmp_path / "nowhere")])
    assert corpus.main([str(tmp_path / "out.txt")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot find the Python standard library's .py files" in err
    assert not (tmp_path / "out.txt").exists()


# -------------------------------------------------------------------------- finetune_curve.py
def test_finetune_curve_writes_outside_the_checkout_by_default():
    curve = _load(ROOT / "scripts" / "finetune_curve.py")
    args = curve.parse_args([])
    png, work = Path(args.png).resolve(), Path(args.work).resolve()
    assert ROOT not in png.parents and ROOT not in work.parents, (png, work)  # it overwrote docs/finetune_curve.png
    assert curve.parse_args(["--output", "docs/finetune_curve.png"]).png == "docs/finetune_curve.png"



# ------------------------------------------------------------------------- repository hygiene
def test_files_the_ci_script_and_readme_name_exist():
    """.ci/run pointed at a DEVELOPERS.md the repository does not have; the README at scripts by
    their old names."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"[\w./-]+\.md\b", ci))
    named |= set(re.findall(r"\b(?:scripts|docs)/[\w-]+\.py\b", ci + readme))
    missing = sorted(p for p in named if not (ROOT / p).is_file())
    assert not missing, missing


def test_quick_start_outputs_are_ignored_by_git():
    lines = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert {"/demo-albert/", ".venv/"} <= set(lines)
    in_git = shutil.which("git") and subprocess.run(["git", "-C", str(ROOT), "rev-parse"], capture_output=True)
    if in_git and in_git.returncode == 0:  # a checkout (CI's is): ask git itself
        r = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "demo-albert/config.json", ".venv/bin/python"],
                           capture_output=True, text=True)
        assert r.stdout.split() == ["demo-albert/config.json", ".venv/bin/python"], r
