"""Compression (issue 23): depth as a knob (num_layer_calls) and structured pruning.

References: transformers with num_hidden_layers = N on the same weights (ALBERT's parameters do
not depend on the number of calls, and transformers' group schedule floor(i / (N / G)) is the one
minialbert stretches to N calls); the unpruned model with the pruned heads' W^O columns and the
pruned neurons' W_2 columns zeroed (masked == pruned); autograd through explicit gates for
Michel et al.'s importance. onnx/onnxruntime are the [onnx] extra (imported unconditionally, as
in test_export.py, so a missing extra fails in CI).
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import onnxruntime  # noqa: F401  (the [onnx] extra: imported so that a missing one fails)
import pytest
import torch

from conftest import make_hf_checkpoint, random_inputs, run_ort
from minialbert import AlbertConfig, AlbertModel, Embedder, InferenceEngine
from minialbert.cli import main
from minialbert.errors import ConfigError
from minialbert.export import build_onnx, export_onnx
from minialbert.model import AlbertForMaskedLM, AlbertForPreTraining, AlbertForSequenceClassification
from minialbert.prune import (choose, compute_importance, distinct_layers, prune_model,
                              _mlm_loss)
from minialbert.weights import TransformersIncompatibleWarning

pytestmark = pytest.mark.usefixtures("one_thread")
SPM = Path(__file__).parent / "fixtures" / "tokenizer" / "spm" / "spiece.model"
VOCAB = 1506  # the fixture tokenizer's pieces


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """An AlbertForPreTraining checkpoint (3 layer calls of one shared layer) with a tokenizer."""
    d = tmp_path_factory.mktemp("compress_ckpt")
    make_hf_checkpoint(d, "AlbertForPreTraining", vocab_size=VOCAB)
    shutil.copy(SPM, d / "spiece.model")
    return d


# ------------------------------------------------------------------------- depth as a knob
def test_own_layer_count_is_bit_identical(ckpt):
    ids, mask, tt = random_inputs(vocab=VOCAB)
    plain = AlbertModel.from_pretrained(ckpt)
    same = AlbertModel.from_pretrained(ckpt, num_layer_calls=3)
    assert same.config.layer_call_count == 3 and plain.config.num_layer_calls is None
    with torch.no_grad():
        a, b = plain(ids, mask, tt), same(ids, mask, tt)
        ea, eb = InferenceEngine(plain)(ids, mask, tt), InferenceEngine(same)(ids, mask, tt)
    assert torch.equal(a.last_hidden_state, b.last_hidden_state) and torch.equal(a.pooler_output, b.pooler_output)
    assert torch.equal(ea.last_hidden_state, eb.last_hidden_state)
    # a stock config writes no new key
    assert "num_layer_calls" not in plain.config.to_dict()
    assert plain.config.to_dict() == same.config.to_dict()


@pytest.mark.parametrize("groups,inner,calls", [(1, 1, 1), (1, 1, 7), (3, 2, 4), (3, 2, 9)])
def test_layer_calls_equal_transformers_at_that_depth(tmp_path, groups, inner, calls):
    import transformers

    make_hf_checkpoint(tmp_path, "AlbertModel", num_hidden_layers=6, num_hidden_groups=groups, inner_group_num=inner)
    ref = transformers.AlbertModel.from_pretrained(tmp_path, num_hidden_layers=calls, attn_implementation="eager").eval()
    ours = AlbertModel.from_pretrained(tmp_path, num_layer_calls=calls)
    ids, mask, tt = random_inputs()
    with torch.no_grad():
        want = ref(ids, attention_mask=mask, token_type_ids=tt, output_hidden_states=True)
        got = ours(ids, mask, tt, output_hidden_states=True)
        fused = InferenceEngine(ours)(ids, mask, tt)
    assert len(got.hidden_states) == len(want.hidden_states) == calls * inner + 1
    torch.testing.assert_close(got.last_hidden_state, want.last_hidden_state, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.pooler_output, want.pooler_output, atol=1e-5, rtol=1e-5)
    real = mask.bool()  # the engine skips padding positions (zeros there)
    torch.testing.assert_close(fused.last_hidden_state[real], want.last_hidden_state[real], atol=1e-4, rtol=1e-4)


def test_layer_calls_refused_where_meaningless(ckpt):
    base = AlbertConfig(vocab_size=99, embedding_size=16, hidden_size=32, num_hidden_layers=3,
                        num_attention_heads=4, intermediate_size=37)
    with pytest.raises(ConfigError, match="exceeds the 3 distinct layers"):
        base.replace(sharing="none", num_layer_calls=4)
    base.replace(sharing="none", num_layer_calls=2)  # the first two layers: allowed
    with pytest.raises(ConfigError, match="fewer than num_hidden_groups"):
        base.replace(num_hidden_groups=3, num_layer_calls=2)
    with pytest.raises(ConfigError, match="positive integer"):
        base.replace(num_layer_calls=0)
    with pytest.raises(ConfigError, match="positive integer"):
        AlbertModel.from_pretrained(ckpt, num_layer_calls=-1)


def test_layer_calls_recorded_in_saved_config(ckpt, tmp_path):
    model = AlbertModel.from_pretrained(ckpt, num_layer_calls=5)
    with pytest.warns(TransformersIncompatibleWarning, match="num_layer_calls=5"):
        model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["num_layer_calls"] == 5
    again = AlbertModel.from_pretrained(tmp_path)
    assert again.config.layer_call_count == 5 and len(again.encoder.layer_calls()) == 5
    ids, mask, tt = random_inputs(vocab=VOCAB)
    with torch.no_grad():
        assert torch.equal(model(ids, mask, tt).last_hidden_state, again(ids, mask, tt).last_hidden_state)


def test_cli_layer_calls_embed_and_export(ckpt, tmp_path, capsys):
    texts = ["the quick brown fox", "jumps over the lazy dog today"]
    code, out, err = run(["embed", "--model", ckpt, "--layer-calls", "1", *texts], capsys)
    assert code == 0, err
    got = np.array([row["vector"] for row in json.loads(out)])
    want = Embedder.from_pretrained(ckpt, num_layer_calls=1).embed(texts)
    full = Embedder.from_pretrained(ckpt).embed(texts)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.abs(want - full).max() > 1e-3  # one call really differs from three
    # ONNX: the export runs the depth it was asked for
    path = tmp_path / "x.onnx"
    code, _, err = run(["export", "onnx", ckpt, path, "--layer-calls", "1"], capsys)
    assert code == 0, err
    ids, mask, tt = random_inputs(vocab=VOCAB)
    model = AlbertModel.from_pretrained(ckpt, num_layer_calls=1)
    with torch.no_grad():
        ref = model(ids, mask, tt).last_hidden_state
    np.testing.assert_allclose(run_ort(path, ids, mask, tt)[0], ref.numpy(), atol=1e-4)
    code, _, err = run(["embed", "--model", ckpt, "--layer-calls", "0", "x"], capsys)
    assert code == 1 and err.count("\n") == 1 and "num_layer_calls must be a positive integer" in err


# ------------------------------------------------------------------------------- pruning
def _tiny(cls=AlbertForPreTraining, seed=0, **over):
    torch.manual_seed(seed)
    cfg = AlbertConfig(**{**dict(vocab_size=99, embedding_size=16, hidden_size=32, num_hidden_layers=3,
                                 num_attention_heads=4, intermediate_size=37, max_position_embeddings=64), **over})
    model = cls(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def _masked(model, keep_heads, keep_neurons):
    """The independent reference: the full model with the removed heads' W^O columns and the
    removed neurons' W_2 columns set to zero (they then contribute nothing)."""
    import copy

    masked = copy.deepcopy(model)
    for layer, hk, nk in zip(distinct_layers(masked), keep_heads, keep_neurons):
        d = layer.attention.head_dim
        with torch.no_grad():
            for h in range(layer.attention.num_heads):
                if h not in hk:
                    layer.attention.output.weight[:, h * d:(h + 1) * d] = 0
            drop = [j for j in range(layer.feed_forward.down.in_features) if j not in nk]
            layer.feed_forward.down.weight[:, drop] = 0
    return masked


@pytest.mark.parametrize("over", [{}, {"num_hidden_groups": 3, "inner_group_num": 2, "num_hidden_layers": 6},
                                  {"sharing": "none"}])
def test_pruned_equals_masked(over):
    model = _tiny(**over)
    n = model.config.num_distinct_layers
    g = torch.Generator().manual_seed(3)
    keep_heads = [sorted(torch.randperm(4, generator=g)[:2].tolist()) for _ in range(n)]
    keep_neurons = [sorted(torch.randperm(37, generator=g)[:20].tolist()) for _ in range(n)]
    pruned = prune_model(model, keep_heads, keep_neurons).eval()
    masked = _masked(model, keep_heads, keep_neurons)
    ids, mask, tt = random_inputs()
    with torch.no_grad():
        a, b = pruned(ids, mask, tt), masked(ids, mask, tt)
        fused = InferenceEngine(pruned)(ids, mask, tt)
    torch.testing.assert_close(a.prediction_logits, b.prediction_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.sop_logits, b.sop_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(fused.prediction_logits, b.prediction_logits, atol=1e-4, rtol=0)
    assert pruned.config.layer_attention_heads == [2] * n and pruned.config.layer_intermediate_sizes == [20] * n
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in model.parameters())


def test_importance_is_the_gate_gradient():
    """Michel et al.: I_h = sum_x |dL(x)/d xi_h|, with xi_h a gate on head h's context (here: on
    W^O's columns of head h, the same thing) and xi_j one on FFN neuron j; autograd on explicit gates."""
    model = _tiny()
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(2):
        ids = torch.randint(5, 99, (3, 9), generator=g)
        labels = torch.where(torch.rand(ids.shape, generator=g) < 0.3, ids, torch.full_like(ids, -100))
        labels[:, 1] = ids[:, 1]
        batches.append({"input_ids": ids, "attention_mask": torch.ones_like(ids),
                        "token_type_ids": torch.zeros_like(ids), "labels": labels})
    got = compute_importance(model, batches, _mlm_loss)
    layer = distinct_layers(model)[0]
    W_o, W_2 = layer.attention.output.weight.detach().clone(), layer.feed_forward.down.weight.detach().clone()
    want_h, want_n = torch.zeros(4, dtype=torch.float64), torch.zeros(37, dtype=torch.float64)
    for batch in batches:
        for row in range(3):  # one example at a time: |gradient| per example
            xi_h = torch.ones(4, requires_grad=True)
            xi_n = torch.ones(37, requires_grad=True)
            gates = {"albert.encoder.groups.0.0.attention.output.weight": W_o * xi_h.repeat_interleave(8),
                     "albert.encoder.groups.0.0.feed_forward.down.weight": W_2 * xi_n}
            one = {k: v[row:row + 1] for k, v in batch.items()}
            out = torch.func.functional_call(model, gates, (one["input_ids"], one["attention_mask"],
                                                            one["token_type_ids"]), {"labels": one["labels"]})
            # the batch loss is a mean over the batch's scored tokens: scale like compute_importance sees it
            n_all = int((batch["labels"] != -100).sum())
            n_row = int((one["labels"] != -100).sum())
            gh, gn = torch.autograd.grad(out.loss * n_row / n_all, (xi_h, xi_n))
            want_h += gh.abs().double()
            want_n += gn.abs().double()
    torch.testing.assert_close(got.heads[0], want_h, rtol=1e-4, atol=1e-9)
    torch.testing.assert_close(got.neurons[0], want_n, rtol=1e-4, atol=1e-9)
    keep_heads, keep_neurons = choose(got, 1, 0.5)
    assert keep_heads[0] == sorted(torch.argsort(want_h, descending=True)[:3].tolist())
    assert len(keep_neurons[0]) == 37 - round(37 * 0.5)


def test_pruned_checkpoint_round_trip_engine_and_onnx(tmp_path):
    model = _tiny(AlbertForMaskedLM)
    pruned = prune_model(model, [[0, 3]], [list(range(0, 37, 2))]).eval()
    with pytest.warns(TransformersIncompatibleWarning, match="pruned layer shapes"):
        pruned.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["layer_attention_heads"] == [2] and config["layer_intermediate_sizes"] == [19]
    again = AlbertForMaskedLM.from_pretrained(tmp_path)
    base = AlbertModel.from_pretrained(tmp_path)
    ids, mask, tt = random_inputs()
    with torch.no_grad():
        want = pruned(ids, mask, tt).prediction_logits
        assert torch.equal(again(ids, mask, tt).prediction_logits, want)
        h = base(ids, mask, tt)
        fused = InferenceEngine(base)(ids, mask, tt)
        int8 = InferenceEngine(base, int8=True)(ids, mask, tt)
    real = mask.bool()  # the engine skips padding positions (zeros there)
    torch.testing.assert_close(fused.last_hidden_state[real], h.last_hidden_state[real], atol=1e-4, rtol=0)
    cos = torch.nn.functional.cosine_similarity(int8.last_hidden_state, h.last_hidden_state, dim=-1)
    assert cos[mask.bool()].min() > 0.99
    onnx_out = run_ort(build_onnx(base), ids, mask, tt)
    np.testing.assert_allclose(onnx_out[0], h.last_hidden_state.numpy(), atol=1e-4)
    np.testing.assert_allclose(onnx_out[1], h.pooler_output.numpy(), atol=1e-4) if len(onnx_out) > 1 else None


def test_cli_prune_end_to_end_and_bad_input(ckpt, tmp_path, capsys):
    data = tmp_path / "texts.txt"
    data.write_text("\n".join(f"the {w} sat on the mat number {i}" for i, w in enumerate(["cat", "dog", "fox"] * 6)))
    out = tmp_path / "pruned"
    code, stdout, err = run(["prune", ckpt, "--heads", "2", "--ffn-fraction", "0.5", "--data", data,
                             "--output", out], capsys)
    assert code == 0, err
    assert stdout.strip() == str(out) and "transformers cannot load" in err
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["layer_attention_heads"] == [2] and cfg["layer_intermediate_sizes"] == [37 - round(37 * 0.5)]
    emb = Embedder.from_pretrained(out)  # every loader takes it; so does the CLI
    code, stdout, err = run(["embed", "--model", out, "--layer-calls", "2", "hello world"], capsys)
    assert code == 0, err
    assert emb.embed(["hello world"]).shape == (1, 32)
    onnx_path = export_onnx(str(out), tmp_path / "onnx" / "p.onnx")
    assert onnx_path.exists()
    for argv, message in (
        (["--heads", "4"], "would remove every head"),
        (["--ffn-fraction", "1.5"], "must be in (0, 1)"),
        (["--ffn-fraction", "0"], "must be in (0, 1)"),
        ([], "nothing to prune"),
    ):
        code, _, err = run(["prune", ckpt, *argv, "--data", data, "--output", tmp_path / "bad"], capsys)
        assert code == 1 and err.count("\n") == 1 and message in err, err
        assert not (tmp_path / "bad").exists()
    bare = tmp_path / "bare"
    AlbertModel.from_pretrained(ckpt).save_pretrained(bare)
    shutil.copy(SPM, bare / "spiece.model")
    code, _, err = run(["prune", bare, "--heads", "1", "--data", data, "--output", tmp_path / "bad"], capsys)
    assert code == 1 and err.count("\n") == 1 and "needs an MLM head" in err


def test_prune_a_classifier_on_its_task_data(ckpt, tmp_path, capsys):
    with warnings.catch_warnings():  # a fresh head: "initialised randomly" is expected here
        warnings.simplefilter("ignore")
        model = AlbertForSequenceClassification.from_pretrained(ckpt, id2label={0: "neg", 1: "pos"})
    d = tmp_path / "clf"
    model.save_pretrained(d)
    shutil.copy(SPM, d / "spiece.model")
    table = tmp_path / "train.jsonl"
    table.write_text("\n".join(json.dumps({"text": f"text {i} is fine", "label": "pos" if i % 2 else "neg"})
                               for i in range(10)) + "\n")
    code, _, err = run(["prune", d, "--heads", "1", "--data", table, "--output", tmp_path / "out"], capsys)
    assert code == 0, err
    pruned = AlbertForSequenceClassification.from_pretrained(tmp_path / "out")
    assert pruned.config.layer_attention_heads == [3] and pruned.config.id2label == {0: "neg", 1: "pos"}


def test_parameter_count_of_a_pruned_config():
    from minialbert.params import count_parameters

    model = _tiny(AlbertModel, num_hidden_groups=3, inner_group_num=2, num_hidden_layers=6)
    pruned = prune_model(model, [[0], [1, 2], [0, 1, 2], [3], [0, 3], [2]], [list(range(k)) for k in (5, 9, 37, 1, 20, 7)])
    n = count_parameters(pruned.config)
    assert n.model == sum(p.numel() for p in pruned.parameters())
    # the BERT-style model `info` compares with has the same pruned shapes, one layer per application
    # (6 calls x 2 inner layers; call i runs group i // 2): an unshared, unfactorized model built alike
    c = pruned.config
    runs = [2 * (i // 2) + j for i in range(6) for j in range(2)]
    bert = AlbertModel(c.replace(sharing="none", num_hidden_groups=1, inner_group_num=1, num_hidden_layers=12,
                                 embedding_size=c.hidden_size,
                                 layer_attention_heads=[c.layer_attention_heads[k] for k in runs],
                                 layer_intermediate_sizes=[c.layer_intermediate_sizes[k] for k in runs]))
    projection = c.hidden_size * c.hidden_size + c.hidden_size  # E -> H, which BERT does not have
    assert n.bert_equivalent == sum(p.numel() for p in bert.parameters()) - projection


def test_info_describes_a_pruned_checkpoint(ckpt, tmp_path, capsys):
    pruned = tmp_path / "pruned"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TransformersIncompatibleWarning)
        prune_model(AlbertModel.from_pretrained(ckpt), [[1, 2]], [list(range(10))]).save_pretrained(pruned)
    code, out, err = run(["info", pruned], capsys)
    assert code == 0, err

    def value(label):  # the count on the line that starts with label
        line = next(x for x in out.splitlines() if x.strip().startswith(label))
        return int(line[len(line) - len(line.lstrip()) + len(label):].split()[0].replace(",", ""))

    model = AlbertModel.from_pretrained(pruned)
    c = model.config
    assert f"layer 0 {' ' * 26}2 of {c.num_attention_heads} heads, 10 of {c.intermediate_size:,} FFN neurons" in out
    count = sum(p.numel() for p in model.parameters())
    unpruned = sum(p.numel() for p in AlbertModel.from_pretrained(ckpt).parameters())
    assert value("= AlbertModel") == count and value("unpruned AlbertModel") == unpruned
    assert value("saved by pruning") == unpruned - count
    # the BERT-style count is pruned alike: "saved by sharing" is only what sharing saves
    # (num_hidden_layers - 1 more copies of the one pruned layer)
    layer = sum(p.numel() for p in model.encoder.groups.parameters())
    assert value("saved by cross-layer sharing") == (c.num_hidden_layers - 1) * layer


def test_inspect_compares_teacher_with_shallow_and_pruned_variants(ckpt, tmp_path, capsys):
    shallow, pruned = tmp_path / "shallow", tmp_path / "pruned"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TransformersIncompatibleWarning)
        AlbertModel.from_pretrained(ckpt, num_layer_calls=2).save_pretrained(shallow)
        prune_model(AlbertModel.from_pretrained(ckpt), [[1, 2]], [list(range(10))]).save_pretrained(pruned)
    for d in (shallow, pruned):
        shutil.copy(SPM, d / "spiece.model")
    out = tmp_path / "report"
    code, stdout, err = run(["inspect", "the cat sat", "--model", pruned, "--compare", ckpt, "--compare", shallow,
                             "--output", out, "--no-png", "--quiet"], capsys)
    assert code == 0, err
    import csv

    rows = list(csv.DictReader(open(out / "figure1.csv", encoding="utf-8")))
    calls = {}
    for r in rows:
        calls.setdefault(r["model"], []).append(int(r["layer_call"]))
    # one line per model, each as deep as it runs: the pruned model and the teacher 3 calls, the shallow one 2
    assert sorted(len(v) for v in calls.values()) == [2, 3, 3], calls
    assert any("shallow" in m for m in calls) and any("pruned" in m for m in calls)


def test_lookup_task_label_is_the_word_after_the_marker():
    from minialbert.finetune.toy import LOOKUP_VALUES, MARKER, lookup_rows

    rows = lookup_rows(300, seed=0)
    for row in rows:
        words = row["text"].split()
        assert words.count(MARKER) == 1 and row["label"] == words[words.index(MARKER) + 1]
        present = [w for w in words if w in LOOKUP_VALUES]
        assert len(present) == len(set(present)) == 3  # three distinct values: no shortcut by the words
    # the answer is not predictable from the order of the values either
    rank = [[w for w in r["text"].split() if w in LOOKUP_VALUES].index(r["label"]) for r in rows]
    assert all(60 <= rank.count(k) <= 140 for k in range(3))


def test_majority_task_label_is_the_most_frequent_group():
    """The trade-off table's task: counted here from the text, independently of the generator."""
    from minialbert.finetune.toy import MAJORITY_GROUPS, majority_rows

    group_of = {w: g for g, words in MAJORITY_GROUPS.items() for w in words}
    rows = majority_rows(500, seed=3)
    for row in rows:
        counts = sorted(((sum(group_of.get(w) == g for w in row["text"].split()), g) for g in MAJORITY_GROUPS),
                        reverse=True)
        assert counts[0][1] == row["label"] and counts[0][0] == counts[1][0] + 1 and 3 <= counts[0][0] <= 6
    # no group wins by its name: every label about equally often
    assert all(70 <= sum(r["label"] == g for r in rows) <= 130 for g in MAJORITY_GROUPS)
