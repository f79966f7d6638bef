"""Embedder against the sentence-transformers package itself.

Folders saved by `SentenceTransformer.save` (the v6 layout: `pooling_mode` as a string, v6
module types, max length in tokenizer_config.json, prompts and similarity_fn_name in
config_sentence_transformers.json) and folders in the v2-v5 layout of the Hub's existing ALBERT
repos (boolean pooling flags, max_seq_length in sentence_bert_config.json) must give what
`SentenceTransformer.encode` gives, for every pooling mode, with and without Normalize, with and
without a prompt, with include_prompt both ways. Embedder.save_pretrained must be read back by
sentence-transformers with the same vectors.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

# sentence-transformers is in the test extra that CI installs: imported unconditionally, never skipped.
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Transformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

from conftest import make_hf_checkpoint
from minialbert import Embedder
from minialbert.cli import main as cli_main
from minialbert.errors import MinialbertError

SPM = Path(__file__).parent / "fixtures" / "tokenizer" / "spm" / "spiece.model"
TOL = 1e-5
pytestmark = [pytest.mark.filterwarnings("ignore::minialbert.embed.LongTextWarning"), pytest.mark.usefixtures("one_thread")]  # truncation is intended

MAX_LENGTH = 24  # below max_position_embeddings (64), so the folder's own limit is what truncates
MODES = ["cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"]
PROMPTS = {"query": "query: ", "passage": "passage: ", "task": "the task is: "}  # 5, 8, 8 tokens

TEXTS = [
    "A short one.",
    "The quick brown fox jumps over the lazy dog, then runs far away into the forest and keeps "
    "running until the night falls over the hills.",  # more than MAX_LENGTH tokens: truncated
    "",
    "Mid length sentence about ALBERT embeddings.",
    "x",
    "It was the best of times.",
    "Numbers like 1,234.56 and words, words.",
    "Two words",
]  # 12, 57, 0, 35, 2, 12, 34 and 10 tokens with the fixture's small vocabulary


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    """A random-weight transformers ALBERT with a tokenizer saved by transformers itself."""
    import sentencepiece as spm
    import transformers

    d = tmp_path_factory.mktemp("st_base")
    make_hf_checkpoint(d, "AlbertModel", vocab_size=spm.SentencePieceProcessor(model_file=str(SPM)).get_piece_size(),
                       num_hidden_layers=2)
    spm_dir = tmp_path_factory.mktemp("st_spm")
    shutil.copy(SPM, spm_dir / "spiece.model")
    transformers.AlbertTokenizer.from_pretrained(spm_dir).save_pretrained(d)  # writes tokenizer.json only
    return d


@pytest.fixture(scope="module")
def transformer(hf_folder):
    """One sentence-transformers Transformer module, shared by every model below."""
    module = Transformer(str(hf_folder))
    module.max_seq_length = MAX_LENGTH  # saved as tokenizer_config.json's model_max_length (the v6 way)
    return module


def save_st(st: SentenceTransformer, folder: Path) -> Path:
    st.save(str(folder), create_model_card=False)  # the model card runs encode: seconds we do not need
    # transformers v5 saves tokenizer.json and no spiece.model: minialbert reads the folder as it is.
    assert not (folder / "spiece.model").exists() and (folder / "tokenizer.json").is_file()
    return folder


def make_st(transformer, mode, *, normalize=False, include_prompt=True, **kwargs) -> SentenceTransformer:
    modules = [transformer, Pooling(transformer.get_embedding_dimension(), pooling_mode=mode,
                                    include_prompt=include_prompt)]
    if normalize:
        modules.append(Normalize())
    return SentenceTransformer(modules=modules, device="cpu", prompts=dict(PROMPTS), **kwargs)


def main(argv):
    return cli_main([str(a) for a in argv])


def both(st, emb, texts=TEXTS, **kwargs):
    """(sentence-transformers, minialbert) vectors; batches of 3 so that rows are padded."""
    return st.encode(texts, batch_size=3, **kwargs), emb.embed(texts, batch_size=3, **kwargs)


@pytest.mark.parametrize("normalize", [False, True], ids=["plain", "normalize"])
@pytest.mark.parametrize("include_prompt", [True, False], ids=["with_prompt_tokens", "without_prompt_tokens"])
@pytest.mark.parametrize("mode", MODES)
def test_v6_folder_equals_sentence_transformers(tmp_path, transformer, mode, normalize, include_prompt):
    st = make_st(transformer, mode, normalize=normalize, include_prompt=include_prompt)
    folder = save_st(st, tmp_path / "st")
    saved = json.loads((folder / "1_Pooling" / "config.json").read_text())
    assert saved["pooling_mode"] == mode and "max_seq_length" not in json.loads(
        (folder / "sentence_bert_config.json").read_text())  # really the v6 layout

    emb = Embedder.from_pretrained(folder)
    assert emb.max_length == MAX_LENGTH and emb.normalize == normalize and emb.include_prompt == include_prompt
    assert emb.prompts["task"] == PROMPTS["task"]
    for kwargs in ({}, {"prompt_name": "task"}, {"prompt": "query: "}):
        want, got = both(st, emb, **kwargs)
        assert got.shape == want.shape and got.dtype == np.float32
        assert np.abs(got - want).max() <= TOL, kwargs


def test_include_prompt_false_really_drops_prompt_tokens(tmp_path, transformer):
    """The comparison above is not vacuous: without the prompt's tokens the vector changes."""
    emb = Embedder.from_pretrained(save_st(make_st(transformer, "mean", include_prompt=False), tmp_path / "st"))
    without = emb.embed(TEXTS, prompt_name="task")
    emb.include_prompt = True
    assert np.abs(emb.embed(TEXTS, prompt_name="task") - without).max() > 1e-3


def test_prompt_edge_cases_equal_sentence_transformers(tmp_path, transformer):
    """A prompt longer than max_length, a prompt without a trailing space, a default prompt."""
    st = make_st(transformer, "cls", include_prompt=False, default_prompt_name="task")
    emb = Embedder.from_pretrained(save_st(st, tmp_path / "st"))
    assert emb.default_prompt_name == "task"
    long_prompt = "Represent this sentence, which may be long, for searching related passages in a corpus: "
    for kwargs in ({}, {"prompt": long_prompt}, {"prompt": "query:"}, {"prompt": ""}, {"prompt_name": "passage"}):
        want, got = both(st, emb, **kwargs)
        assert np.abs(got - want).max() <= TOL, kwargs
    for mode in ("mean", "lasttoken", "weightedmean"):  # the prompt fills the window: only [SEP] is pooled
        emb.pooling = mode
        st[1].pooling_mode = mode
        want, got = both(st, emb, prompt=long_prompt)
        assert np.abs(got - want).max() <= TOL, mode


def test_long_text_chunks_start_every_window_with_the_prompt(tmp_path, transformer):
    """Windows by hand, with transformers' own tokenizer and model: [CLS] prompt window [SEP],
    pooled without [CLS] and the prompt (include_prompt false)."""
    st = make_st(transformer, "mean", include_prompt=False)
    emb = Embedder.from_pretrained(save_st(st, tmp_path / "st"))
    tok, model = transformer.tokenizer, transformer.auto_model
    prompt, text, stride = PROMPTS["query"], TEXTS[1], 3
    joint = tok(prompt + text, add_special_tokens=False)["input_ids"]
    k = len(tok(prompt, add_special_tokens=False)["input_ids"])
    head, ids = joint[:k], joint[k:]
    width = MAX_LENGTH - 2 - k
    assert len(ids) > width
    spans, start = [], 0
    while True:
        spans.append((start, min(start + width, len(ids))))
        if spans[-1][1] == len(ids):
            break
        start += width - stride
    want = []
    for s, e in spans:
        with torch.no_grad():
            h = model(torch.tensor([[tok.cls_token_id, *head, *ids[s:e], tok.sep_token_id]])).last_hidden_state[0]
        want.append(h[1 + k:].mean(0).numpy())
    chunks = emb.embed_chunks([text], prompt_name="query", stride=stride)[0]
    assert chunks.token_spans == spans and np.abs(chunks.vectors - np.stack(want)).max() <= TOL
    got = emb.embed([text, TEXTS[0]], prompt_name="query", long_text="chunk", stride=stride)
    assert np.abs(got[0] - np.average(np.stack(want), axis=0, weights=[e - s for s, e in spans])).max() <= TOL
    assert np.abs(got[1] - st.encode(TEXTS[0], prompt_name="query")).max() <= TOL  # one window: as encode
    with pytest.raises(MinialbertError, match="leaves no room for text"):
        emb.embed([text], prompt="a prompt far longer than the window it has to fit into, " * 3, long_text="chunk")


def test_similarity_and_rank_follow_the_model(tmp_path, transformer):
    st = make_st(transformer, "mean", similarity_fn_name="dot")
    emb = Embedder.from_pretrained(save_st(st, tmp_path / "st"))
    assert emb.similarity_fn_name == "dot"
    query, docs = TEXTS[0], TEXTS[1:]
    # rank: the query as encode_query embeds it, the candidates as encode_document does
    want = st.similarity(st.encode_query([query]), st.encode_document(docs))[0].numpy()
    ranked = emb.rank(query, docs)
    assert [i for _, i, _ in ranked] == np.argsort(-want, kind="stable").tolist()
    assert np.abs(np.array([s for s, _, _ in ranked]) - want[[i for _, i, _ in ranked]]).max() <= 1e-4
    a, b = emb.embed(TEXTS[:3]), emb.embed(TEXTS[3:])
    for fn in ("cosine", "dot", "euclidean", "manhattan"):
        st.similarity_fn_name = emb.similarity_fn_name = fn
        assert np.abs(emb.similarity(a, b) - st.similarity(a, b).numpy()).max() <= 1e-4, fn


def test_cli_prompts_equal_sentence_transformers(tmp_path, transformer, capsys):
    st = make_st(transformer, "weightedmean", normalize=True, include_prompt=False)
    folder = save_st(st, tmp_path / "st")
    texts = TEXTS[:2] + TEXTS[3:]  # no empty argument
    assert main(["embed", *texts, "-m", folder, "--prompt-name", "query"]) == 0
    got = np.array([row["vector"] for row in json.loads(capsys.readouterr().out)])
    assert np.abs(got - st.encode(texts, prompt_name="query")).max() <= TOL
    assert main(["embed", *texts, "-m", folder, "--prompt", "passage: "]) == 0
    got = np.array([row["vector"] for row in json.loads(capsys.readouterr().out)])
    assert np.abs(got - st.encode(texts, prompt="passage: ")).max() <= TOL

    assert main(["similarity", TEXTS[0], *texts[1:], "-m", folder, "--prompt-name", "task",
                 "--document-prompt-name", "passage"]) == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    want = st.similarity(st.encode([TEXTS[0]], prompt_name="task"), st.encode(texts[1:], prompt_name="passage"))[0]
    assert [t for _, t in lines] == [texts[1:][i] for i in torch.argsort(want, descending=True, stable=True)]
    assert np.abs(np.array([float(s) for s, _ in lines]) - want.sort(descending=True).values.numpy()).max() <= 1e-4

    assert main(["embed", "a", "-m", folder, "--prompt-name", "nope"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no prompt named 'nope'" in err and "'query'" in err
    with pytest.raises(SystemExit) as e:
        main(["embed", "a", "-m", folder, "--prompt-name", "query", "--prompt", "x"])
    assert e.value.code == 2
    assert main(["embed", "a", "-m", folder, "--prompt-name", "query", "--tokens"]) == 1


def write_legacy_folder(root: Path, hf_folder: Path, *, flags: dict, max_seq_length: int, normalize: bool,
                        do_lower_case: bool = False) -> Path:
    """The v2-v5 layout of the Hub's ALBERT sentence-transformers repos, written by hand."""
    root.mkdir()
    for f in hf_folder.iterdir():
        shutil.copy(f, root / f.name)
    shutil.copy(SPM, root / "spiece.model")  # the Hub repos ship spiece.model
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (root / "modules.json").write_text(json.dumps(modules, indent=2))
    (root / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length,
                                                                "do_lower_case": do_lower_case}))
    (root / "config_sentence_transformers.json").write_text(json.dumps(
        {"__version__": {"sentence_transformers": "2.0.0", "transformers": "4.7.0", "pytorch": "1.9.0+cu102"}}))
    (root / "1_Pooling").mkdir()
    (root / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, **flags}))
    return root


OLD_FLAGS = ("pooling_mode_cls_token", "pooling_mode_mean_tokens", "pooling_mode_max_tokens",
             "pooling_mode_mean_sqrt_len_tokens")  # the four flags of sentence-transformers v1-v2.1


@pytest.mark.parametrize("flag,mode", [("pooling_mode_mean_tokens", "mean"), ("pooling_mode_cls_token", "cls"),
                                       ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len"),
                                       ("pooling_mode_weightedmean_tokens", "weightedmean"),
                                       ("pooling_mode_lasttoken", "lasttoken")])
def test_legacy_folder_equals_sentence_transformers(tmp_path, hf_folder, flag, mode):
    flags = {f: f == flag for f in OLD_FLAGS}
    if flag not in OLD_FLAGS:  # v2.2+ writes all six flags
        flags.update({"pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": False, flag: True})
    folder = write_legacy_folder(tmp_path / "old", hf_folder, flags=flags, max_seq_length=16, normalize=True,
                                 do_lower_case=True)
    st = SentenceTransformer(str(folder), device="cpu")
    emb = Embedder.from_pretrained(folder)
    assert (emb.pooling, emb.normalize, emb.max_length, emb.prompts) == (mode, True, 16, {})
    want, got = both(st, emb)
    assert np.abs(got - want).max() <= TOL
    want, got = both(st, emb, prompt="query: ")
    assert np.abs(got - want).max() <= TOL


@pytest.mark.parametrize("pooling_mode,modes", [
    (["mean", "max"], "mean + max"), ("pooling_mode_cls_token,pooling_mode_mean_tokens", "cls + mean")])
def test_combined_pooling_modes_are_refused(tmp_path, hf_folder, transformer, pooling_mode, modes):
    if isinstance(pooling_mode, list):  # saved by sentence-transformers itself, which concatenates them
        folder = save_st(make_st(transformer, tuple(pooling_mode)), tmp_path / "st")
    else:
        folder = write_legacy_folder(tmp_path / "st", hf_folder, max_seq_length=16, normalize=False,
                                     flags={f: f in pooling_mode.split(",") for f in OLD_FLAGS})
    with pytest.raises(MinialbertError, match=f"pooling combines {modes.replace('+', '[+]')}") as e:
        Embedder.from_pretrained(folder)
    assert "\n" not in str(e.value)


def test_one_element_list_and_refusals(tmp_path, transformer):
    folder = save_st(make_st(transformer, "lasttoken"), tmp_path / "st")
    pooling = folder / "1_Pooling" / "config.json"
    cfg = json.loads(pooling.read_text())
    pooling.write_text(json.dumps({**cfg, "pooling_mode": ["lasttoken"]}))
    assert Embedder.from_pretrained(folder).pooling == "lasttoken"

    pooling.write_text(json.dumps({**cfg, "embedding_dimension": 48}))
    with pytest.raises(MinialbertError, match="48-d token vectors"):
        Embedder.from_pretrained(folder)
    pooling.write_text(json.dumps(cfg))

    st_config = folder / "config_sentence_transformers.json"
    original = st_config.read_text()
    st_config.write_text(json.dumps({**json.loads(original), "model_type": "CrossEncoder"}))
    with pytest.raises(MinialbertError, match="CrossEncoder"):
        Embedder.from_pretrained(folder)
    st_config.write_text(original)

    modules = json.loads((folder / "modules.json").read_text())
    (folder / "modules.json").write_text(json.dumps(modules + [
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.base.modules.dense.Dense"}]))
    with pytest.raises(MinialbertError, match="Dense.* is not supported"):
        Embedder.from_pretrained(folder)
    (folder / "modules.json").write_text(json.dumps(modules[:1]))
    with pytest.raises(MinialbertError, match="no Pooling module"):
        Embedder.from_pretrained(folder)


def test_save_pretrained_round_trips_through_sentence_transformers(tmp_path, transformer):
    st = make_st(transformer, "weightedmean", normalize=True, include_prompt=False, default_prompt_name="query",
                 similarity_fn_name="manhattan")
    emb = Embedder.from_pretrained(save_st(st, tmp_path / "st"))
    emb.max_length = 20
    emb.save_pretrained(tmp_path / "saved")
    # a tokenizer.json-only folder is written back as it came: the same tokenizer.json, no spiece.model
    assert not (tmp_path / "saved" / "spiece.model").exists()
    assert (tmp_path / "saved" / "tokenizer.json").read_bytes() == (tmp_path / "st" / "tokenizer.json").read_bytes()

    back = Embedder.from_pretrained(tmp_path / "saved")
    for attr in ("pooling", "normalize", "max_length", "include_prompt", "prompts", "default_prompt_name",
                 "similarity_fn_name", "lowercase"):
        assert getattr(back, attr) == getattr(emb, attr), attr
    st_back = SentenceTransformer(str(tmp_path / "saved"), device="cpu")
    assert st_back.similarity_fn_name == "manhattan" and st_back.default_prompt_name == "query"
    for kwargs in ({}, {"prompt_name": "task"}, {"prompt": ""}):
        want, got = both(st_back, back, **kwargs)
        assert np.abs(got - want).max() <= TOL, kwargs
        assert np.abs(emb.embed(TEXTS, **kwargs) - want).max() <= TOL, kwargs


def test_save_pretrained_of_a_plain_checkpoint(tmp_path, hf_folder):
    plain = tmp_path / "plain"
    shutil.copytree(hf_folder, plain)
    shutil.copy(SPM, plain / "spiece.model")
    emb = Embedder.from_pretrained(plain, pooling="mean_sqrt_len")
    emb.save_pretrained(tmp_path / "saved")
    want, got = both(SentenceTransformer(str(tmp_path / "saved"), device="cpu"), emb)
    assert np.abs(got - want).max() <= TOL
    emb.pooling = "pooler"
    with pytest.raises(MinialbertError, match="no sentence-transformers equivalent"):
        emb.save_pretrained(tmp_path / "pooler")
