"""The trainer end to end: a tiny model learns, resume-after-kill reproduces the uninterrupted run,
two torchrun CPU ranks end with identical weights, and the output loads in minialbert and transformers."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from minialbert.pretrain.toy import write_corpus
from minialbert.pretrain.train import main

REPO = Path(__file__).resolve().parent.parent
SCRIPT = str(REPO / "scripts" / "pretrain.py")
TINY = ["--hidden-size", "64", "--num-layers", "2", "--num-heads", "2",
        "--intermediate-size", "128", "--embedding-size", "32", "--max-seq-length", "64",
        "--threads", "1", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus") / "corpus.txt", documents=400, seed=0)


@pytest.fixture(scope="module")
def vocab(corpus):
    """One SentencePiece model for the runs that do not test vocabulary training (saves time)."""
    from minialbert.pretrain.data import read_documents, train_sentencepiece

    path = corpus.parent / "spiece.model"
    train_sentencepiece(read_documents([corpus]), path, 120)
    return ["--vocab", str(path)]


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def env():
    e = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return e


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_tiny_model_learns_mlm_and_sop(tmp_path, corpus, one_thread):
    # ALBERT's LAMB has no bias correction, so its warm-up must be long (see optim.py): with 20
    # warm-up steps instead of 100 the MLM loss ends at 3.29 instead of 3.06.
    out = tmp_path / "run"
    assert main(["--corpus", str(corpus), "--output-dir", str(out), *TINY, "--vocab-size", "120", "--batch-size", "16",
                 "--max-steps", "300", "--optimizer", "lamb", "--lr", "2e-2", "--warmup-steps", "100",
                 "--log-every", "25", "--save-every", "300"]) == 0
    log = [r for r in read_log(out) if "mlm_loss" in r]
    first, last = log[0], log[-1]
    vocab = json.loads((out / "config.json").read_text())["vocab_size"]
    print(f"ln V = {math.log(vocab):.3f}; first window {first}; last window {last}")
    assert last["step"] == 300
    assert last["mlm_loss"] < first["mlm_loss"] - 0.5  # well below where it started
    assert last["mlm_loss"] < 0.8 * math.log(vocab)  # and far below uniform guessing
    assert last["mlm_acc"] > first["mlm_acc"] + 0.1
    assert last["sop_acc"] > 0.7  # chance is 0.5
    assert all(r["tokens_per_s"] > 0 for r in log)

    # The output directory loads with minialbert and, for sharing="all", with transformers.
    import transformers

    from minialbert import AlbertModel

    ours = AlbertModel.from_pretrained(out)
    ref = transformers.AlbertModel.from_pretrained(out, attn_implementation="eager").eval()
    ids = torch.randint(5, vocab, (2, 12))
    with torch.no_grad():
        diff = (ours(ids).last_hidden_state - ref(ids).last_hidden_state).abs().max().item()
    assert diff < 1e-5
    assert (out / "spiece.model").is_file()


def test_bf16_autocast_and_adamw_with_accumulation(tmp_path, corpus, vocab, one_thread):
    out = tmp_path / "bf16"
    assert main(["--corpus", str(corpus), "--output-dir", str(out), *TINY, *vocab, "--batch-size", "4",
                 "--grad-accum", "2", "--max-steps", "4", "--optimizer", "adamw", "--lr", "1e-3",
                 "--bf16", "--log-every", "2", "--sharing", "ffn"]) == 0
    log = [r for r in read_log(out) if "mlm_loss" in r]
    assert len(log) == 2 and all(math.isfinite(r["mlm_loss"]) for r in log)
    from minialbert import AlbertModel

    assert AlbertModel.from_pretrained(out).config.sharing == "ffn"


def _data_by_step(out: Path, rank: int = 0) -> dict:
    """(step, micro) -> example indices; the last record wins (work redone after a resume)."""
    seen = {}
    for line in (out / f"data_rank{rank}.jsonl").read_text().splitlines():
        r = json.loads(line)
        seen[r["step"], r["micro"]] = r["index"]
    return seen


def test_resume_after_kill_continues_exactly(tmp_path, corpus, vocab, one_thread):
    from safetensors.torch import load_file

    args = ["--corpus", str(corpus), *TINY, *vocab, "--batch-size", "4", "--grad-accum", "2", "--max-steps", "8",
            "--save-every", "3", "--log-every", "1", "--dropout", "0.1", "--optimizer", "lamb",
            "--lr", "5e-3", "--log-data"]
    ref, crash = tmp_path / "ref", tmp_path / "crash"
    assert main([*args, "--output-dir", str(ref)]) == 0  # the uninterrupted run

    p = subprocess.run([sys.executable, SCRIPT, *args, "--output-dir", str(crash), "--kill-after-step", "5"],
                       env=env(), capture_output=True, text=True, timeout=300)
    assert p.returncode == -9, p.stderr  # killed by SIGKILL mid-run, after step 5
    state = torch.load(crash / "checkpoint" / "trainer_state.pt", weights_only=False)
    assert state["step"] == 3  # the last checkpoint (steps 4 and 5 are lost with the process)
    assert state["data"]["examples_consumed"] == 3 * 8
    # A crash in the middle of writing leaves only a temp file beside the intact checkpoint.
    (crash / "checkpoint" / ".trainer_state.pt.abc.tmp").write_bytes(b"half a checkpoint")

    p = subprocess.run([sys.executable, SCRIPT, *args, "--output-dir", str(crash), "--resume"],
                       env=env(), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr

    # Same examples at every step (none lost, none repeated), and bit-identical final weights.
    a, b = _data_by_step(ref), _data_by_step(crash)
    assert a == b and len(a) == 16
    used = [i for (step, micro), idx in sorted(a.items()) for i in idx]
    assert len(used) == len(set(used)) == 64  # one epoch is longer than 64 examples: no repeats
    wa, wb = load_file(str(ref / "model.safetensors")), load_file(str(crash / "model.safetensors"))
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # The log continues after the checkpoint step.
    steps = [r["step"] for r in read_log(crash) if "mlm_loss" in r]
    assert steps == [1, 2, 3, 4, 5, 4, 5, 6, 7, 8]
    ref_loss = {r["step"]: r["mlm_loss"] for r in read_log(ref) if "mlm_loss" in r}
    crash_loss = {r["step"]: r["mlm_loss"] for r in read_log(crash) if "mlm_loss" in r}
    assert ref_loss == crash_loss


def test_resume_refuses_a_different_data_stream(tmp_path, corpus, vocab, one_thread):
    from minialbert.errors import MinialbertError

    out = tmp_path / "r"
    base = ["--corpus", str(corpus), "--output-dir", str(out), *TINY, *vocab, "--batch-size", "4", "--max-steps", "2"]
    assert main(base) == 0
    with pytest.raises(MinialbertError, match="already holds a training run"):
        main(base)
    with pytest.raises(MinialbertError, match="global_batch differs"):
        main([*base, "--resume", "--batch-size", "8"])


def test_torchrun_two_cpu_ranks_end_identical(tmp_path, corpus, vocab):
    out, data = tmp_path / "ddp", tmp_path / "data"
    prepare = [sys.executable, "-m", "minialbert", "pretrain-data", str(corpus), *vocab, "--output", str(data), "--quiet"]
    assert subprocess.run(prepare, env=env(), timeout=120).returncode == 0
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", SCRIPT,
           "--data", str(data), "--output-dir", str(out), *TINY, "--batch-size", "4", "--grad-accum", "2",
           "--max-steps", "6", "--save-every", "3", "--log-every", "2", "--dropout", "0.1", "--log-data"]
    p = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    done = read_log(out)[-1]
    assert done["event"] == "done" and done["world_size"] == 2
    assert done["ranks_identical"] and len(set(done["param_digests"])) == 1
    # Each rank read its own shard: disjoint per step, together the global batch of 2 x 4 x 2.
    r0, r1 = _data_by_step(out, 0), _data_by_step(out, 1)
    for step in range(6):
        x = [i for m in range(2) for i in r0[step, m]]
        y = [i for m in range(2) for i in r1[step, m]]
        assert len(x) == len(y) == 8 and not set(x) & set(y)
    from minialbert import AlbertModel

    assert AlbertModel.from_pretrained(out).config.vocab_size > 5


# 50 strings where tokenizers disagree: digits with commas and dots, ALBERT's user-defined symbols
# ( ) " - . – £ €, accents, CJK, whitespace runs, special tokens written in the text, quotes.
HARD_STRINGS = [
    "1,000", "3.14", "1,234,567.89", "version 2.0.1", "12,5% of 1,024", "$1,000.00 and €12,50", "in 2019, then",
    "10,000 people", "3.5 stars.", "0.001,0.002",
    "(see above)", '"quoted"', "well-known", "the end.", "a – dash", "£40", "€12", "(a) - (b).", '"(x)"', "a.b.c",
    "naïve café", "résumé", "Ångström", "crème brûlée", "Zürich", "São Paulo", "façade", "ÉCOLE", "Dvořák",
    "Ελληνικά ΣΊΣΥΦΟΣ",
    "这是一个测试句子。", "日本語のテキスト", "한국어 문장입니다", "中文,English混合1,000", "東京2020",
    "a  b", "tab\tseparated", "  leading and trailing  ", "non\u00a0breaking space", "ideographic\u3000space",
    "Paris is the [MASK] of France.", "[MASK]", "a[MASK]b", "[CLS] and [SEP] in text", "[mask] lower case",
    "``double`` and ''single''", "it's", "ﬁne ligature", "x² and ①", "Ⅻ o'clock",
]


@pytest.mark.parametrize("compat", ["transformers", "original"])
def test_pretraining_and_inference_tokenize_alike(tmp_path, corpus, one_thread, compat):
    """A checkpoint written by pre-training tokenizes, through Embedder, FillMask and
    AlbertTokenizer.from_pretrained, exactly as the pre-training data pipeline did."""
    from minialbert import AlbertForMaskedLM, AlbertModel, AlbertTokenizer, Embedder
    from minialbert.fill_mask import FillMask
    from minialbert.pretrain.data import Vocab, read_documents

    assert len(HARD_STRINGS) == 50
    text = tmp_path / "corpus.txt"
    one_line = [s for s in HARD_STRINGS if "\n" not in s]
    text.write_text(corpus.read_text(encoding="utf-8") + "\n\n" + "\n\n".join(one_line * 3) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["--corpus", str(text), "--output-dir", str(out), *TINY, "--vocab-size", "200", "--batch-size", "4",
                 "--max-steps", "2", "--tokenizer-compat", compat]) == 0
    assert json.loads((out / "tokenizer_config.json").read_text())["minialbert_compat"] == compat

    # The pipeline's ids: the vocabulary and the documents exactly as the trainer made them.
    pipeline = Vocab.load(out / "spiece.model", compat)
    docs = read_documents([text])
    assert any(d == [HARD_STRINGS[0]] for d in docs)  # raw text reaches the tokenizer
    ids = pipeline.encode(HARD_STRINGS)

    loaded = AlbertTokenizer.from_pretrained(out)
    embedder = Embedder.from_pretrained(out)
    fill = FillMask.from_pretrained(out)
    for tok in (loaded, embedder.tokenizer, fill.tokenizer):
        assert tok.compat == compat
        assert tok.encode_batch_ids(HARD_STRINGS) == ids
        assert [tok(s)["input_ids"][1:-1] for s in HARD_STRINGS] == ids
    # The choice matters on these strings: the other algorithm gives other ids for some of them.
    other = AlbertTokenizer(out / "spiece.model", compat="original" if compat == "transformers" else "transformers")
    assert sum(a != b for a, b in zip(other.encode_batch_ids(HARD_STRINGS), ids)) >= 5

    # What the Embedder runs on is those ids: its vectors are the model's on [CLS] ids [SEP].
    model = AlbertModel.from_pretrained(out)
    vectors = embedder.embed(HARD_STRINGS[:8], convert_to="torch")
    for s, v, row in zip(HARD_STRINGS, vectors, ids):
        with torch.no_grad():
            expected = model(torch.tensor([[2, *row, 3]])).last_hidden_state[0, 0]
        assert (v - expected).abs().max().item() <= 1e-5, s
    if compat == "transformers":  # the original algorithm never recognised [MASK] written in text
        predictions = fill("Paris is the [MASK] of France.", top_k=2)[0]
        with torch.no_grad():
            logits = AlbertForMaskedLM.from_pretrained(out)(torch.tensor([[2, *ids[40], 3]])).prediction_logits
        position = ids[40].index(4) + 1
        assert [p.token_id for p in predictions] == logits[0, position].topk(2).indices.tolist()


def test_log_lines_and_the_progress_bar_share_a_pipe_in_order():
    """`pretrain ... 2>&1 | tee log`: stdout is then a block-buffered pipe and the bar (stderr)
    is not; each log line must still come out whole, above the bar, when it is written."""
    code = ("from minialbert.training import Progress\n"
            "p = Progress(4, 0, 'pretrain', enabled=True)\n"
            "for i in range(4):\n"
            "    p.update(loss=1.0 / (i + 1))\n"
            "    p.write(f'step {i + 1} line')\n"
            "p.close()\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["PYTHONPATH"] = str(REPO)
    raw = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                         timeout=120).stdout.decode()

    def shown(segment):  # what a terminal shows for one line: each \r goes back to column 0
        screen: list[str] = []
        for part in segment.split("\r"):
            screen[:len(part)] = part
        return "".join(screen).rstrip()

    lines = [shown(s) for s in raw.split("\n")]
    assert [x for x in lines if "line" in x] == [f"step {i} line" for i in range(1, 5)], raw
    assert raw.index("step 4 line") < raw.index("4/4"), raw  # written at once, not flushed at exit
