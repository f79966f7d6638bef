"""`minialbert glue`: both data layouts with their quirks, official metrics checked against
scikit-learn and scipy on the predictions files, seeds and the median, resume after a kill, bad
input, and an end-to-end smoke run of the nine tasks on the demo checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minialbert.finetune.toy import write_base_checkpoint
from minialbert.glue import GlueError, run_glue
from minialbert.glue.data import find_tasks, locate
from minialbert.glue.tasks import TASKS
from minialbert.glue.toy import write_glue

REPO = Path(__file__).resolve().parent.parent
SPM = REPO / "tests" / "fixtures" / "tokenizer" / "spm" / "spiece.model"
QUICK = dict(max_steps=2, overrides=["batch_size=4", "max_length=32"], quiet=True, threads=1, device="cpu")
pytestmark = pytest.mark.usefixtures("one_thread")


def env():
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def cli(*args, check_rc=None):
    r = subprocess.run([sys.executable, "-m", "minialbert", *map(str, args)], capture_output=True, text=True,
                       env=env(), timeout=600)
    if check_rc is not None:
        assert r.returncode == check_rc, r.stderr
    return r


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("glue")
    write_base_checkpoint(d / "tiny", vocab_file=SPM, hidden_size=32, intermediate_size=64, embedding_size=16,
                          max_position_embeddings=64)
    return d


# ------------------------------------------------------------------------------ layouts
@pytest.mark.parametrize("layout", ["official", "parquet", "jsonl"])
def test_every_layout_reads_the_rows_that_were_written(tmp_path, layout):
    if layout == "parquet":
        pytest.importorskip("pyarrow")
    truth = write_glue(tmp_path, layout=layout, n_train=10, n_dev=5, n_test=3)
    found = find_tasks(tmp_path)
    assert set(found) == set(TASKS)
    for key, directory in found.items():
        files = locate(TASKS[key], directory)
        assert files.layout == {"official": "official", "parquet": "hf-parquet", "jsonl": "hf-jsonl"}[layout]
        train = files.read("train")
        assert [(e.text, e.pair, e.label) for e in train.examples] == [
            (r["text"], r["pair"], r["label"]) for r in truth[key]["train"]], key
        for split, (_, name, _) in zip(files.dev, TASKS[key].dev):
            got = files.read("dev", split).examples
            assert [(e.idx, e.label) for e in got] == [(i, r["label"]) for i, r in enumerate(truth[key][name[:-4]])]
        for split in files.test:
            assert all(e.label is None for e in files.read("test", split).examples)
        assert len(files.test) == len(TASKS[key].test) + (key == "mnli")  # + AX, the diagnostic set
        # QQP's row with missing fields is skipped (and counted), in the official files only
        assert train.skipped == (1 if key == "qqp" and layout == "official" else 0)


def test_official_quirks_by_hand(tmp_path):
    """Each quirk on a file written here, not by the toy writer."""
    (tmp_path / "CoLA").mkdir()
    (tmp_path / "CoLA" / "train.tsv").write_text("gj04\t1\t\tThe sailors rode the breeze clear of the rocks.\n"
                                                 "gj04\t0\t*\tThe more books I ask to whom he will give.\n")
    (tmp_path / "CoLA" / "dev.tsv").write_text("in\t1\t\tA \"quoted\" word.\n")
    (tmp_path / "MRPC").mkdir()
    (tmp_path / "MRPC" / "train.tsv").write_bytes("\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n"
                                                  "1\t702876\t702977\tAmrozi accused.\tReferring to him.\r\n".encode())
    (tmp_path / "MRPC" / "dev.tsv").write_text("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t1\t2\ta\tb\n")
    cola = locate(TASKS["cola"], tmp_path / "CoLA")
    rows = cola.read("train").examples
    assert [(e.text, e.label) for e in rows] == [("The sailors rode the breeze clear of the rocks.", 1),
                                                 ("The more books I ask to whom he will give.", 0)]
    assert cola.read("dev", "dev").examples[0].text == 'A "quoted" word.'
    mrpc = locate(TASKS["mrpc"], tmp_path / "MRPC").read("train").examples
    assert [(e.text, e.pair, e.label) for e in mrpc] == [("Amrozi accused.", "Referring to him.", 1)]


# ------------------------------------------------------------------ runs and their metrics
@pytest.fixture(scope="module")
def official_run(work):
    write_glue(work / "data", n_train=16, n_dev=12, n_test=4)
    results = run_glue(work / "data", str(work / "tiny"), work / "out", **QUICK)
    return work / "out", results


def test_metrics_match_sklearn_and_scipy_on_the_predictions_files(official_run):
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    out, results = official_run
    assert not results["errors"]
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    for key in TASKS:
        rows = [json.loads(line) for line in (out / key / "dev_predictions.jsonl").read_text().splitlines()]
        assert {tuple(sorted(r)) for r in rows} <= {("idx", "label", "prediction"), ("idx", "label", "prediction", "split")}
        got = results["tasks"][key]["metrics"]

        def cols(split=None, rows=rows):
            chosen = [r for r in rows if split is None or r["split"] == split]
            return [r["label"] for r in chosen], [r["prediction"] for r in chosen]

        if key == "mnli":
            expect = {s: 100 * accuracy_score(*cols(s)) for s in ("matched", "mismatched")}
        elif key == "stsb":
            gold, pred = cols()
            expect = {"pearson": 100 * pearsonr(gold, pred)[0], "spearman": 100 * spearmanr(gold, pred)[0]}
        elif key == "cola":
            expect = {"mcc": 100 * matthews_corrcoef(*cols())}
        elif key in ("mrpc", "qqp"):
            expect = {"f1": 100 * f1_score(*cols(), zero_division=0.0), "accuracy": 100 * accuracy_score(*cols())}
        else:
            expect = {"accuracy": 100 * accuracy_score(*cols())}
        assert got.keys() == expect.keys(), key
        for m in expect:
            assert got[m] == pytest.approx(expect[m], abs=1e-9), (key, m)
        assert results["tasks"][key]["score"] == pytest.approx(sum(expect.values()) / len(expect))
    scores = [results["tasks"][k]["score"] for k in TASKS if k != "wnli"]
    assert results["glue_score"]["value"] == pytest.approx(sum(scores) / 8)
    assert "WNLI" in results["glue_score"]["excluded"]
    md = (out / "results.md").read_text()
    assert "not in the average" in md and "**GLUE score**" in md and "Quick run" in md


def test_defaults_are_the_albert_paper_table_and_submission_files(official_run):
    out, results = official_run
    # google-research/albert run_glue.sh: warm-up, lr, steps, batch per task (and the paper's table)
    paper = {"sst2": (1256, 1e-5, 20935, 32), "mnli": (1000, 3e-5, 10000, 128), "cola": (320, 1e-5, 5336, 16),
             "qnli": (1986, 1e-5, 33112, 32), "qqp": (1000, 5e-5, 14000, 128), "rte": (200, 3e-5, 800, 32),
             "stsb": (214, 2e-5, 3598, 16), "mrpc": (200, 2e-5, 800, 32)}
    for key, (warmup, lr, steps, batch) in paper.items():
        d = TASKS[key].defaults
        assert (d.warmup, d.lr, d.steps, d.batch_size, d.max_length) == (warmup, lr, steps, batch, 512)
    for key, dropout in (("qqp", 0.1), ("rte", 0.1), ("cola", 0.0)):  # ALBERT DR reaches the trained model
        config = json.loads((out / key / "seed-42" / "config.json").read_text())
        assert config["hidden_dropout_prob"] == config["attention_probs_dropout_prob"] == dropout
        assert config["classifier_dropout_prob"] == 0.1
    hp = results["tasks"]["cola"]["hyperparameters"]
    assert hp["steps"] == 2 and hp["batch_size"] == 4 and hp["max_length"] == 32 and hp["lr"] == 1e-5
    assert hp["warmup"] == round(320 * 2 / 5336)
    files = sorted(p.name for p in (out / "submission").iterdir())
    assert files == sorted(["CoLA.tsv", "SST-2.tsv", "MRPC.tsv", "STS-B.tsv", "QQP.tsv", "MNLI-m.tsv", "MNLI-mm.tsv",
                            "QNLI.tsv", "RTE.tsv", "WNLI.tsv", "AX.tsv"])
    ax = (out / "submission" / "AX.tsv").read_text().splitlines()
    assert ax[0] == "index\tprediction" and len(ax) == 5
    assert all(line.split("\t")[1] in TASKS["mnli"].labels for line in ax[1:])
    rte = (out / "submission" / "RTE.tsv").read_text().splitlines()
    assert rte[0] == "index\tprediction" and len(rte) == 5
    assert all(line.split("\t")[1] in ("entailment", "not_entailment") for line in rte[1:])
    float((out / "submission" / "STS-B.tsv").read_text().splitlines()[1].split("\t")[1])


def test_hf_parquet_layout_runs_and_matches_the_official_one(work, official_run):
    pytest.importorskip("pyarrow")
    write_glue(work / "hf", layout="parquet", n_train=16, n_dev=12, n_test=4, tasks=["rte", "stsb"])
    results = run_glue(work / "hf", str(work / "tiny"), work / "out_hf", tasks="rte,stsb", **QUICK)
    for key in ("rte", "stsb"):  # same examples, seed and steps: the same predictions, whatever the layout
        assert results["tasks"][key]["layout"] == "hf-parquet"
        a = (work / "out_hf" / key / "dev_predictions.jsonl").read_text()
        b = (work / "out" / key / "dev_predictions.jsonl").read_text()
        assert a == b
    assert results["glue_score"]["value"] is None and results["glue_score"]["partial"] is not None


def test_seeds_report_the_median_run(work):
    write_glue(work / "seeds", tasks=["rte"], n_train=16, n_dev=12, n_test=0)
    results = run_glue(work / "seeds", str(work / "tiny"), work / "out_seeds", tasks="rte", seeds="1,2,3",
                       **{**QUICK, "overrides": [*QUICK["overrides"], "lr=5e-3"]})
    r = results["tasks"]["rte"]
    scores = r["scores_per_seed"]
    assert set(scores) == {"1", "2", "3"}
    assert r["score"] == sorted(scores.values())[1]
    assert scores[str(r["seed"])] == r["score"]
    chosen = (work / "out_seeds" / "rte" / f"seed-{r['seed']}" / "dev_predictions.jsonl").read_text()
    assert (work / "out_seeds" / "rte" / "dev_predictions.jsonl").read_text() == chosen


def test_resume_after_a_kill_keeps_finished_tasks_and_continues_the_task(work):
    write_glue(work / "res", tasks=["cola", "rte"], n_train=16, n_dev=8, n_test=0)
    options = dict(tasks="cola,rte", max_steps=4, overrides=["batch_size=4", "max_length=32", "eval_every=2"],
                   threads=1, device="cpu", quiet=True)
    run_glue(work / "res", str(work / "tiny"), work / "straight", **options)
    killed = cli("glue", "--data", work / "res", "--model", work / "tiny", "--output", work / "killed",
                 "--tasks", "cola,rte", "--max-steps", "4", "--set", "batch_size=4", "--set", "max_length=32",
                 "--set", "eval_every=2", "--threads", "1", "--device", "cpu", "--quiet", "--kill-in", "rte:3")
    assert killed.returncode != 0
    cola_result = work / "killed" / "cola" / "seed-42" / "result.json"
    stamp = cola_result.stat().st_mtime_ns
    assert json.loads((work / "killed" / "results.json").read_text())["tasks"].keys() == {"cola"}
    assert (work / "killed" / "rte" / "seed-42" / "checkpoint" / "trainer_state.pt").is_file()
    log = work / "killed" / "rte" / "seed-42" / "log.jsonl"
    before = log.read_text()
    with pytest.raises(GlueError, match="already holds a GLUE run"):
        run_glue(work / "res", str(work / "tiny"), work / "killed", **options)
    run_glue(work / "res", str(work / "tiny"), work / "killed", resume=True, **options)
    assert cola_result.stat().st_mtime_ns == stamp  # the finished task was kept, not rerun
    assert log.read_text().startswith(before) and len(log.read_text()) > len(before)  # continued, not restarted
    for key in ("cola", "rte"):  # and the resumed task continued exactly where it was killed
        assert (work / "killed" / key / "dev_predictions.jsonl").read_text() == \
            (work / "straight" / key / "dev_predictions.jsonl").read_text()


def test_resume_after_a_kill_between_training_and_scoring_does_not_train_again(work):
    """finetune finished (metrics.json written, no trainer state kept) but glue was killed before the
    seed's result.json: --resume scores that model, it does not train a fresh one."""
    write_glue(work / "late", tasks=["rte"], n_train=16, n_dev=8, n_test=0)
    options = dict(tasks="rte", max_steps=3, overrides=["batch_size=4", "max_length=32"], threads=1, device="cpu",
                   quiet=True)
    run_glue(work / "late", str(work / "tiny"), work / "late_out", **options)
    seed = work / "late_out" / "rte" / "seed-42"
    expected = (seed / "dev_predictions.jsonl").read_text()
    log, model = seed / "log.jsonl", next(seed.glob("*.safetensors"))
    stamps = log.stat().st_mtime_ns, model.stat().st_mtime_ns
    (seed / "result.json").unlink()
    (seed / "dev_predictions.jsonl").unlink()
    results = json.loads((work / "late_out" / "results.json").read_text())
    results["tasks"].clear()
    (work / "late_out" / "results.json").write_text(json.dumps(results))
    run_glue(work / "late", str(work / "tiny"), work / "late_out", resume=True, **options)
    assert (log.stat().st_mtime_ns, model.stat().st_mtime_ns) == stamps  # not trained again
    assert (seed / "dev_predictions.jsonl").read_text() == expected
    assert "rte" in json.loads((work / "late_out" / "results.json").read_text())["tasks"]


# ----------------------------------------------------------------------------- bad input
def test_bad_task_data_is_one_line_naming_the_file_and_the_others_still_run(work, capsys):
    d = work / "bad"
    write_glue(d, tasks=["cola", "sst2", "stsb", "rte", "wnli"], n_train=12, n_dev=6, n_test=0)
    (d / "RTE" / "dev.tsv").unlink()
    lines = (d / "CoLA" / "train.tsv").read_text().splitlines()
    lines[3] = lines[3].replace("\t1\t", "\t7\t", 1).replace("\t0\t", "\t7\t", 1)
    (d / "CoLA" / "train.tsv").write_text("\n".join(lines) + "\n")
    lines = (d / "STS-B" / "dev.tsv").read_text().splitlines()
    lines[2] = lines[2].rsplit("\t", 1)[0] + "\tabout four"
    (d / "STS-B" / "dev.tsv").write_text("\n".join(lines) + "\n")
    results = run_glue(d, str(work / "tiny"), work / "out_bad", tasks="cola,sst2,mrpc,stsb,rte,wnli",
                       **{**QUICK, "max_steps": 1})
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 4 and all(line.startswith("minialbert glue: ") for line in errors), err
    assert f"{d / 'CoLA' / 'train.tsv'}: line 4: label '7' is not one of CoLA's labels" in err
    assert f"{d / 'STS-B' / 'dev.tsv'}: line 3: score 'about four' is not a number" in err
    assert f"{d / 'RTE' / 'dev.tsv'}: missing" in err
    assert f"{d / 'MRPC'}: missing" in err  # asked for, but not in the folder
    assert set(results["tasks"]) == {"sst2", "wnli"}
    assert set(results["errors"]) == {"cola", "stsb", "rte", "mrpc"}
    assert json.loads((work / "out_bad" / "results.json").read_text())["errors"] == results["errors"]


@pytest.mark.parametrize("case", ["no_task", "no_tokenizer", "unknown_task"])
def test_errors_that_stop_the_run_are_one_line(work, tmp_path, case):
    import shutil

    data, model = tmp_path / "data", work / "tiny"
    data.mkdir()
    if case != "no_task":
        write_glue(data, tasks=["rte"], n_train=4, n_dev=2, n_test=0)
    if case == "no_tokenizer":
        model = tmp_path / "model"
        shutil.copytree(work / "tiny", model)
        (model / "spiece.model").unlink()
    r = cli("glue", "--data", data, "--model", model, "--output", tmp_path / "out",
            *(["--tasks", "rte,mnlx"] if case == "unknown_task" else []))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    expected = {"no_task": f"{data}: no GLUE task in it", "no_tokenizer": f"{model}",
                "unknown_task": "unknown GLUE task 'mnlx'"}[case]
    assert expected in r.stderr
    if case == "no_tokenizer":
        assert "spiece.model" in r.stderr and "tokenizer" in r.stderr
    assert not (tmp_path / "out").exists()


def test_run_glue_refuses_bad_overrides_and_a_task_folder_as_data(work, tmp_path):
    write_glue(tmp_path, tasks=["rte"], n_train=2, n_dev=2, n_test=0)
    with pytest.raises(GlueError, match="this is the RTE folder itself"):
        run_glue(tmp_path / "RTE", str(work / "tiny"), tmp_path / "never")
    for bad in (["lr=fast"], ["steps=0"], ["colour=red"], ["nosuch.lr=1e-5"]):
        with pytest.raises(GlueError, match="--set"):
            run_glue(work / "data", str(work / "tiny"), work / "never", overrides=bad)


# -------------------------------------------------------------------------- smoke run
@pytest.mark.slow
def test_smoke_run_of_the_nine_tasks_on_the_demo_checkpoint(tmp_path):
    """The docs' smoke command on an albert-base-sized checkpoint (the time is printed, not checked)."""
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_demo_checkpoint.py"), str(tmp_path / "demo")],
                   check=True, capture_output=True, env=env())
    write_glue(tmp_path / "glue_data", n_train=8, n_dev=4, n_test=2)
    start = time.perf_counter()
    cli("glue", "--data", tmp_path / "glue_data", "--model", tmp_path / "demo", "--output", tmp_path / "out",
        "--max-steps", "1", "--set", "batch_size=4", "--set", "max_length=32", "--select", "last", "--quiet",
        "--threads", "1", check_rc=0)
    print(f"smoke run of the nine GLUE tasks on the demo checkpoint: {time.perf_counter() - start:.1f} s")
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(results["tasks"]) == set(TASKS) and results["glue_score"]["value"] is not None
