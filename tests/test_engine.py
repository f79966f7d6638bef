"""What you read is what runs: calling a model runs model.py, and the inference engine that the
Embedder, FillMask and the CLI use takes its fused path only for a stock model.

Every modification a researcher makes (a subclass, a monkeypatched method, a hook, a replaced
sub-module) changes the output of model(...) and Embedder.embed under torch.inference_mode()
exactly as it does with gradients on; a stock model takes the fused path (counted, not timed).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import random_inputs
from minialbert import AlbertConfig, AlbertForMaskedLM, AlbertForPreTraining, AlbertModel, AlbertTokenizer, Embedder
from minialbert import fast
from minialbert.errors import ModelInputError
from minialbert.fast import EngineFallbackWarning, InferenceEngine, why_not_stock
from minialbert.fill_mask import FillMask
from minialbert.model import (AlbertForMultipleChoice, AlbertForQuestionAnswering, AlbertForSequenceClassification,
                              AlbertForTokenClassification, FeedForward, SelfAttention)

SPM = Path(__file__).parent / "fixtures" / "tokenizer" / "spm" / "spiece.model"
pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: tiny models, one thread
TEXTS = ["A short one.", "Numbers like 1,234.56 and (brackets) - dashes.", "x", ""]


@pytest.fixture(scope="module")
def tokenizer():
    return AlbertTokenizer(SPM)


def config(tokenizer, **overrides) -> AlbertConfig:
    return AlbertConfig(**{**dict(vocab_size=tokenizer.vocab_size, embedding_size=16, hidden_size=32,
                                  num_hidden_layers=3, num_attention_heads=4, intermediate_size=37,
                                  max_position_embeddings=64), **overrides})


def randomized(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2 + (1.0 if p.dim() == 1 and "norm.weight" in _name(model, p)
                                                                else 0.0))
    return model.eval()


def _name(model, param) -> str:
    return next(n for n, p in model.named_parameters() if p is param)


@pytest.fixture(autouse=True)
def fresh_warnings():
    fast.engine._WARNED.clear()  # "once per reason" is per process; each test starts afresh
    yield
    fast.engine._WARNED.clear()


@pytest.fixture
def fused_calls(monkeypatch):
    """Counts calls of the fused forward (the engine looks it up at call time)."""
    calls = []
    real = fast.forward.fused_forward

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(fast.forward, "fused_forward", counting)
    return calls


def maxdiff(a, b) -> float:
    return (a.float() - b.float()).abs().max().item()


def ids_of(tokenizer, text) -> torch.Tensor:
    return torch.tensor([[tokenizer.cls_token_id, *tokenizer.encode_batch_ids([text])[0], tokenizer.sep_token_id]])


# ------------------------------------------------------------------------- the stock model
def test_stock_model_takes_the_fused_path(tokenizer, fused_calls):
    model = randomized(AlbertModel(config(tokenizer)))
    ids, mask, tt = random_inputs(batch=3, seq=9, vocab=tokenizer.vocab_size, seed=2)
    with torch.no_grad():
        reference = model(ids, attention_mask=mask, token_type_ids=tt)
    assert fused_calls == []  # calling the model never takes the fused path
    with torch.inference_mode():
        out = model(ids, attention_mask=mask, token_type_ids=tt)
        assert fused_calls == []
        engine_out = InferenceEngine(model)(ids, attention_mask=mask, token_type_ids=tt)
    assert len(fused_calls) == 1
    assert maxdiff(out.last_hidden_state, reference.last_hidden_state) == 0
    real = mask.bool()  # the engine skips padding (zeros there); model.py computes values nothing reads
    assert maxdiff(engine_out.last_hidden_state[real], reference.last_hidden_state[real]) <= 1e-5
    assert engine_out.last_hidden_state[~real].abs().max().item() == 0
    assert maxdiff(engine_out.pooler_output, reference.pooler_output) <= 1e-5

    emb = Embedder(model, tokenizer)
    with warnings.catch_warnings():
        warnings.simplefilter("error", EngineFallbackWarning)  # a stock model never falls back
        vectors = emb.embed(TEXTS, convert_to="torch")
    assert len(fused_calls) > 1
    for text, vector in zip(TEXTS, vectors):
        with torch.no_grad():
            expected = model(ids_of(tokenizer, text)).last_hidden_state[0, 0]
        assert maxdiff(vector, expected) <= 1e-5
    # hidden states of another layer: the model itself runs (the engine has no per-layer outputs)
    before = len(fused_calls)
    emb.embed(TEXTS, layer=1)
    assert len(fused_calls) == before


@pytest.mark.parametrize("sharing", ["attention", "ffn", "none"])
def test_ablation_layouts_take_the_fused_path(tokenizer, fused_calls, sharing):
    model = randomized(AlbertModel(config(tokenizer, sharing=sharing, num_hidden_layers=4)), seed=1)
    ids, mask, tt = random_inputs(batch=3, seq=11, vocab=tokenizer.vocab_size, seed=3)
    with torch.no_grad():
        reference = model(ids, attention_mask=mask, token_type_ids=tt)
    with torch.inference_mode():
        out = InferenceEngine(model)(ids, attention_mask=mask, token_type_ids=tt)
    assert fused_calls == [1]
    real = mask.bool()
    assert maxdiff(out.last_hidden_state[real], reference.last_hidden_state[real]) <= 1e-5
    assert maxdiff(out.pooler_output, reference.pooler_output) <= 1e-5


@pytest.mark.parametrize("cls", [AlbertForMaskedLM, AlbertForPreTraining])
def test_pretraining_classes_and_fill_mask_take_the_fused_path(tokenizer, fused_calls, cls):
    model = randomized(cls(config(tokenizer)), seed=2)
    ids, mask, tt = random_inputs(batch=2, seq=8, vocab=tokenizer.vocab_size, seed=4)
    with torch.no_grad():
        reference = model(ids, attention_mask=mask, token_type_ids=tt)
    with torch.inference_mode():
        out = InferenceEngine(model)(ids, attention_mask=mask, token_type_ids=tt)
    assert maxdiff(out.prediction_logits, reference.prediction_logits) <= 1e-5
    if cls is AlbertForPreTraining:
        assert maxdiff(out.sop_logits, reference.sop_logits) <= 1e-5
    else:
        assert out.sop_logits is None and reference.sop_logits is None
    fill = FillMask(model, tokenizer)
    predictions = fill("the [MASK] is here.", top_k=3)[0]
    assert len(fused_calls) == 2
    with torch.no_grad():
        ids = torch.tensor([tokenizer("the [MASK] is here.")["input_ids"]])
        probs = model(ids).prediction_logits[0, ids[0].tolist().index(tokenizer.mask_token_id)].softmax(-1)
    assert [p.token_id for p in predictions] == probs.topk(3).indices.tolist()


TASK_CLASSES = [AlbertForSequenceClassification, AlbertForTokenClassification, AlbertForQuestionAnswering,
                AlbertForMultipleChoice]


@pytest.mark.parametrize("cls", TASK_CLASSES)
def test_task_heads_take_the_fused_path(tokenizer, fused_calls, cls):
    model = randomized(cls(config(tokenizer, num_labels=2 if cls is AlbertForQuestionAnswering else 3)), seed=5)
    ids, mask, tt = random_inputs(batch=4, seq=10, vocab=tokenizer.vocab_size, seed=6)
    if cls is AlbertForMultipleChoice:  # (batch, choices, seq)
        ids, mask, tt = (t.view(2, 2, 10) for t in (ids, mask, tt))
    with torch.no_grad():
        reference = model(ids, attention_mask=mask, token_type_ids=tt)
    with torch.inference_mode():
        out = InferenceEngine(model)(ids, attention_mask=mask, token_type_ids=tt)
    assert fused_calls == [1]
    if cls is AlbertForQuestionAnswering:
        assert maxdiff(out.start_logits, reference.start_logits) <= 1e-5
        assert maxdiff(out.end_logits, reference.end_logits) <= 1e-5
        assert out.start_logits.shape == reference.start_logits.shape == (4, 10)
    else:
        assert out.logits.shape == reference.logits.shape
        assert maxdiff(out.logits, reference.logits) <= 1e-5


def test_task_pipelines_run_the_engine_and_honour_a_changed_head(tokenizer, fused_calls):
    """TextClassifier (and the CLI's classify) take the fused path; a replaced head forward makes
    the engine step aside, and the changed head is what the pipeline then reports."""
    from minialbert.tasks import QuestionAnswerer, TextClassifier

    model = randomized(AlbertForSequenceClassification(config(tokenizer, num_labels=3)), seed=7)
    clf = TextClassifier(model, tokenizer)
    with warnings.catch_warnings():
        warnings.simplefilter("error", EngineFallbackWarning)
        results = clf(TEXTS)
    assert len(fused_calls) == 1
    for text, result in zip(TEXTS, results):
        with torch.no_grad():
            probs = model(ids_of(tokenizer, text)).logits[0].softmax(-1)
        assert abs(result.scores[result.label] - probs.max().item()) <= 1e-5
        assert result.label == model.config.id2label[probs.argmax().item()]

    qa = QuestionAnswerer(randomized(AlbertForQuestionAnswering(config(tokenizer)), seed=8), tokenizer)
    qa("Who is here?", "The cat is here.")
    assert len(fused_calls) == 2

    class AlwaysFirst(nn.Linear):  # a researcher's head: every text gets the first label
        def forward(self, x):
            return torch.tensor([10.0, 0.0, 0.0]).expand(*x.shape[:-1], 3)

    model.classifier = AlwaysFirst(model.config.hidden_size, 3)
    with pytest.warns(EngineFallbackWarning, match="classifier is a AlwaysFirst"):
        changed = clf(TEXTS)
    assert len(fused_calls) == 2  # the model's own forward ran
    assert {r.label for r in changed} == {model.config.id2label[0]}


# ------------------------------------------------------------------ modified models
class HalvedAttention(SelfAttention):
    """A subclass with a changed forward: the attention block's output is halved."""

    def forward(self, x, additive_mask):
        out, probs = super().forward(x, additive_mask)
        return out * 0.5, probs


def subclass_attention(model, monkeypatch):
    for layer in model.encoder.layer_calls():
        new = HalvedAttention(model.config)
        new.load_state_dict(layer.attention.state_dict())
        layer.attention = new.eval()
    return "HalvedAttention, not SelfAttention"


def patch_feed_forward(model, monkeypatch):
    original = FeedForward.forward
    monkeypatch.setattr(FeedForward, "forward", lambda self, x: original(self, x) + 1.0)
    return "FeedForward.forward was replaced"


def hook_on_a_layer(model, monkeypatch):
    model.encoder.groups[0][0].register_forward_hook(lambda module, args, out: (out[0].flip(-1), out[1]))
    return "encoder.groups.0.0 has a forward hook"


def replace_a_submodule(model, monkeypatch):
    attention = model.encoder.groups[0][0].attention
    attention.output = nn.Sequential(attention.output, nn.Tanh())
    return "encoder.groups.0.0.attention.output is a Sequential, not Linear"


MODIFICATIONS = [subclass_attention, patch_feed_forward, hook_on_a_layer, replace_a_submodule]


@pytest.mark.parametrize("modify", MODIFICATIONS, ids=lambda f: f.__name__)
def test_modifications_change_inference_exactly_as_with_gradients_on(tokenizer, fused_calls, monkeypatch, modify):
    model = randomized(AlbertModel(config(tokenizer)), seed=5)
    ids, mask, tt = random_inputs(batch=3, seq=9, vocab=tokenizer.vocab_size, seed=6)
    stock = model(ids, attention_mask=mask, token_type_ids=tt).last_hidden_state.detach()
    stock_vector = Embedder(model, tokenizer).embed(TEXTS[1], convert_to="torch")
    fused_calls.clear()
    reason = modify(model, monkeypatch)

    # The reference forward, run by hand with gradients on (nothing could skip it).
    with_grad = model(ids, attention_mask=mask, token_type_ids=tt).last_hidden_state
    assert with_grad.requires_grad and maxdiff(with_grad, stock) > 1e-2  # the change is visible
    with torch.inference_mode():
        inference = model(ids, attention_mask=mask, token_type_ids=tt).last_hidden_state
    assert maxdiff(inference, with_grad.detach()) <= 1e-6

    emb = Embedder(model, tokenizer)
    with pytest.warns(EngineFallbackWarning, match=reason) as record:
        for text in TEXTS:  # one text per call: the same unpadded input as the hand-run reference
            expected = model(ids_of(tokenizer, text)).last_hidden_state[0, 0].detach()
            vector = emb.embed(text, convert_to="torch")
            assert maxdiff(vector, expected) <= 1e-6, text
    assert len([w for w in record if w.category is EngineFallbackWarning]) == 1  # once, not per call
    assert maxdiff(emb.embed(TEXTS[1], convert_to="torch"), stock_vector) > 1e-2
    assert fused_calls == []
    assert why_not_stock(model) is not None and reason in why_not_stock(model)


def test_warning_is_once_per_reason(tokenizer):
    model = randomized(AlbertModel(config(tokenizer)))
    ids = torch.tensor([[2, 10, 11, 3]])
    engine = InferenceEngine(model)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        handle = model.encoder.register_forward_pre_hook(lambda module, args: None)
        with torch.inference_mode():
            engine(ids), engine(ids)
        handle.remove()
        model.train()
        with torch.inference_mode():
            engine(ids), engine(ids)
    messages = [str(w.message) for w in record if w.category is EngineFallbackWarning]
    assert len(messages) == 2
    assert "encoder has a forward hook or pre-hook" in messages[0]
    assert "the model is in training mode" in messages[1]
    assert all("\n" not in m and m.endswith("running the model's own forward instead") for m in messages)


# ------------------------------------------------------------------ why_not_stock, one line each
class MyAlbert(AlbertModel):
    pass


def _global_hook(model):
    return nn.modules.module.register_module_forward_hook(lambda module, args, out: out)


CHECKS = {
    "a subclass of AlbertModel": (lambda m: MyAlbert(m.config), "the model is a MyAlbert, not one of minialbert's own classes"),
    "instance forward": (lambda m: setattr(m.encoder.groups[0][0].feed_forward, "forward", lambda x: x),
                         "encoder.groups.0.0.feed_forward.forward was replaced on the instance"),
    "pre-hook": (lambda m: m.embeddings.norm.register_forward_pre_hook(lambda module, args: None),
                 "embeddings.norm has a forward hook or pre-hook"),
    "global hook": (_global_hook, "a global forward hook or pre-hook is registered"),
    "activation": (lambda m: setattr(m.encoder.groups[0][0].feed_forward, "act", torch.relu),
                   "encoder.groups.0.0.feed_forward.act is not the config's activation 'gelu_new'"),
    "layer list entry": (lambda m: m.encoder.groups[0].append(nn.Identity()),
                         "encoder.groups.0.1 is a Identity, not AlbertLayer"),
    "torch module subclass": (lambda m: setattr(m.encoder, "project", type("MyLinear", (nn.Linear,), {})(16, 32)),
                              "encoder.project is a MyLinear, not Linear"),
    "max_norm": (lambda m: setattr(m.embeddings.word, "max_norm", 1.0), "embeddings.word renormalizes its rows"),
    "no pooler is fine": (lambda m: setattr(m, "pooler", None), None),
}


@pytest.mark.parametrize("name", list(CHECKS))
def test_why_not_stock_names_what_is_not_stock(tokenizer, monkeypatch, name):
    change, expected = CHECKS[name]
    model = AlbertModel(config(tokenizer)).eval()
    assert why_not_stock(model) is None
    result = change(model)
    try:
        if isinstance(result, AlbertModel):  # the change built a new model
            model = result
        reason = why_not_stock(model)
        assert reason == expected if expected is None else expected in reason, reason
    finally:
        if hasattr(result, "remove"):
            result.remove()
    assert why_not_stock(AlbertModel(config(tokenizer))) is None


def test_methods_are_compared_with_those_recorded_at_import(tokenizer, monkeypatch):
    model = AlbertModel(config(tokenizer)).eval()
    monkeypatch.setattr(SelfAttention, "split_heads", SelfAttention.split_heads)  # the same function: fine
    assert why_not_stock(model) is None
    import functools

    original = SelfAttention.split_heads
    monkeypatch.setattr(SelfAttention, "split_heads", functools.wraps(original)(lambda self, x: original(self, x)))
    assert why_not_stock(model) == "SelfAttention.split_heads was replaced (it is no longer the function model.py defines)"


def test_gradients_wanted_means_the_model_runs(tokenizer, fused_calls):
    model = randomized(AlbertModel(config(tokenizer)))
    ids = torch.tensor([[2, 10, 11, 3]])
    with pytest.warns(EngineFallbackWarning, match="gradients are enabled"):
        out = InferenceEngine(model)(ids)
    assert out.last_hidden_state.requires_grad and fused_calls == []
    model.requires_grad_(False)  # nothing to differentiate: the fused path is exact
    InferenceEngine(model)(ids)
    assert fused_calls == [1]


# ------------------------------------------------------------------ arguments that cannot apply
def test_arguments_that_cannot_apply_are_one_line_errors(tokenizer):
    c = config(tokenizer)
    mlm = AlbertForMaskedLM(c).eval()
    pre = AlbertForPreTraining(c).eval()
    ids = torch.tensor([[2, 10, 11, 3], [2, 12, 3, 0]])
    cases = [
        (lambda: mlm(ids, sentence_order_label=torch.tensor([0, 1])), "AlbertForMaskedLM has no sentence-order head"),
        (lambda: pre(ids, labels=torch.zeros(2, 3, dtype=torch.long)), "labels has shape (2, 3)"),
        (lambda: pre(ids, labels=torch.full((2, 4), c.vocab_size)), "labels must be -100 or a token id"),
        (lambda: pre(ids, sentence_order_label=torch.tensor([0, 1, 1])), "sentence_order_label has 3 values"),
        (lambda: pre(ids, sentence_order_label=torch.tensor([0, 2])), "must be 0 (in order) or 1 (swapped)"),
        (lambda: mlm(ids + c.vocab_size), f"input_ids holds {c.vocab_size + 12}, outside [0, {c.vocab_size}) (vocab_size"),
        (lambda: mlm(ids, token_type_ids=torch.full_like(ids, 2)), "token_type_ids holds 2, outside [0, 2)"),
        (lambda: mlm(ids, position_ids=torch.full_like(ids, 64)), "position_ids holds 64, outside [0, 64)"),
        (lambda: mlm(ids, attention_mask=torch.ones(2, 5)), "attention_mask has shape (2, 5)"),
        (lambda: mlm(ids.float()), "input_ids must hold integer token ids"),
        (lambda: mlm(ids[0]), "input_ids must be a (batch, seq) tensor"),
        (lambda: mlm(torch.zeros(1, 65, dtype=torch.long)), "exceeds max_position_embeddings (64)"),
        (lambda: InferenceEngine(mlm)(ids, output_hidden_states=True), "call the model itself"),
        (lambda: InferenceEngine(mlm)(ids + c.vocab_size), "outside [0,"),
    ]
    for call, words in cases:
        with torch.inference_mode(), pytest.raises(ModelInputError) as info:
            call()
        assert words in str(info.value) and "\n" not in str(info.value), (words, str(info.value))
    with torch.no_grad():  # positions or token types shared by the batch, as (1, seq), are fine
        mlm(ids, position_ids=torch.arange(4)[None], token_type_ids=torch.zeros(1, 4, dtype=torch.long))


def test_cli_embed_takes_the_fused_path(tokenizer, tmp_path, fused_calls, capsys):
    from minialbert.cli import main

    model = randomized(AlbertModel(config(tokenizer)))
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    assert main(["embed", "hello there", "--model", str(tmp_path)]) == 0
    assert fused_calls == [1]


def test_modify_example_script():
    """scripts/modify_example.py (the README's "Modifying ALBERT") runs, and what it reports is true."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("modify_example", Path(__file__).parents[1] / "scripts" / "modify_example.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    lines = []
    result = script.run(steps=3, log=lines.append)
    assert result["start_diff"] == 0.0  # g = 1: the subclass computes exactly SelfAttention's equations
    assert len(result["gated_losses"]) == 3 and all(0 < m < 10 and 0 < s < 10 for m, s in result["gated_losses"])
    assert "encoder.groups.0.0.attention is a GatedSelfAttention, not SelfAttention" in result["engine_reason"]
    assert len(result["warnings"]) == 1 and "GatedSelfAttention" in result["warnings"][0]
    # The vectors it printed are the gated model's own forward (here with g = 0, as left by the script).
    model, tok = result["gated_model"].albert, result["tokenizer"]
    for text, vector in zip(script.SENTENCES, result["no_attention_vectors"]):
        with torch.no_grad():
            expected = model(ids_of(tok, text)).last_hidden_state[0].mean(0)
        assert maxdiff(vector, expected) <= 1e-6
    assert maxdiff(result["gated_vectors"], result["no_attention_vectors"]) > 1e-3
    assert any(line.startswith("3. engine, stock model: fused path") for line in lines)

