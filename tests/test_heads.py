"""Task heads (model.py section 7) against transformers' AlbertFor* classes, in both directions.

Each case: transformers builds a random-weight task model and saves it; minialbert loads it
strictly; logits and losses agree to 1e-5 on a padded batch of pairs (token types 0 and 1);
minialbert saves it again and transformers reads that back with the same logits.
"""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from conftest import make_hf_checkpoint, random_inputs
from minialbert import model as M
from minialbert.errors import CheckpointError
from minialbert.weights import NewHeadWarning

TOL = 1e-5


def _labels(case: str, batch: int, seq: int, num_labels: int):
    g = torch.Generator().manual_seed(7)
    if case == "single":
        return {"labels": torch.randint(0, num_labels, (batch,), generator=g)}
    if case == "multi":
        return {"labels": torch.randint(0, 2, (batch, num_labels), generator=g).float()}
    if case == "regression":
        return {"labels": torch.randn(batch, generator=g)}
    if case == "token":
        labels = torch.randint(0, num_labels, (batch, seq), generator=g)
        labels[:, 0] = -100  # ignored positions, as a data collator writes them
        return {"labels": labels}
    if case == "qa":
        # the last row's positions lie beyond the sequence: clamped to seq, then ignored
        return {"start_positions": torch.tensor([1, 3, seq + 5]), "end_positions": torch.tensor([2, 6, seq + 9])}
    if case == "choice":
        return {"labels": torch.randint(0, 3, (batch,), generator=g)}
    raise AssertionError(case)


CASES = {
    # name: (transformers class, minialbert class, label case, config overrides)
    "sequence/single-label": ("AlbertForSequenceClassification", M.AlbertForSequenceClassification, "single",
                              {"id2label": {0: "neg", 1: "neutral", 2: "pos"}, "label2id": {"neg": 0, "neutral": 1, "pos": 2}}),
    "sequence/multi-label": ("AlbertForSequenceClassification", M.AlbertForSequenceClassification, "multi",
                             {"num_labels": 4}),
    "sequence/regression": ("AlbertForSequenceClassification", M.AlbertForSequenceClassification, "regression",
                            {"num_labels": 1}),
    "token": ("AlbertForTokenClassification", M.AlbertForTokenClassification, "token",
              {"id2label": {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}}),
    "question-answering": ("AlbertForQuestionAnswering", M.AlbertForQuestionAnswering, "qa", {}),
    "multiple-choice": ("AlbertForMultipleChoice", M.AlbertForMultipleChoice, "choice", {}),
}


def _inputs(case: str):
    ids, mask, tt = random_inputs(batch=3, seq=11)
    if case == "choice":  # (batch, choices, seq): 3 choices per example, some padded
        ids2, mask2, tt2 = random_inputs(batch=3, seq=11, seed=2)
        ids3, mask3, tt3 = random_inputs(batch=3, seq=11, seed=3)
        return {"input_ids": torch.stack([ids, ids2, ids3], 1), "attention_mask": torch.stack([mask, mask2, mask3], 1),
                "token_type_ids": torch.stack([tt, tt2, tt3], 1)}
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt}


def _outputs(out):
    if hasattr(out, "start_logits"):
        return torch.stack([out.start_logits, out.end_logits]), out.loss
    return out.logits, out.loss


@pytest.mark.parametrize("name", list(CASES))
def test_head_matches_transformers_both_ways(name, tmp_path):
    import transformers

    hf_arch, ours_cls, case, overrides = CASES[name]
    ref = make_hf_checkpoint(tmp_path / "hf", hf_arch, num_hidden_groups=1, **overrides)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NewHeadWarning)  # the head is in the checkpoint: no notice
        ours = ours_cls.from_pretrained(tmp_path / "hf")
    inputs = _inputs(case)
    labels = _labels(case, 3, 11, ref.config.num_labels)
    with torch.no_grad():
        ref_logits, ref_loss = _outputs(ref(**inputs, **labels))
        our_logits, our_loss = _outputs(ours(**inputs, **labels))
    d_logits = (ref_logits - our_logits).abs().max().item()
    d_loss = (ref_loss - our_loss).abs().item()
    assert ref_logits.shape == our_logits.shape
    assert d_logits <= TOL and d_loss <= TOL, (d_logits, d_loss)
    assert ours.config.id2label == ref.config.id2label and ours.config.num_labels == ref.config.num_labels

    # minialbert -> transformers: the saved folder is a transformers checkpoint of the same class
    ours.save_pretrained(tmp_path / "ours")
    saved = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert saved["architectures"] == [hf_arch]
    back = getattr(transformers, hf_arch).from_pretrained(tmp_path / "ours", attn_implementation="eager").eval()
    assert back.config.id2label == ref.config.id2label
    assert back.config.label2id == {v: k for k, v in ref.config.id2label.items()} == ours.config.label2id
    with torch.no_grad():
        back_logits, back_loss = _outputs(back(**inputs, **labels))
    d_back = (back_logits - our_logits).abs().max().item()
    assert d_back <= TOL and (back_loss - our_loss).abs().item() <= TOL
    print(f"{name}: logits {d_logits:.1e} loss {d_loss:.1e}; saved by minialbert, read by transformers: {d_back:.1e}")


def test_problem_type_is_inferred_as_transformers_does(tmp_path):
    """Unset problem_type: integer labels -> softmax CE, float labels -> BCE, one output -> MSE;
    an explicit problem_type wins over the labels' dtype."""
    ref = make_hf_checkpoint(tmp_path / "a", "AlbertForSequenceClassification", num_labels=3)
    ours = M.AlbertForSequenceClassification.from_pretrained(tmp_path / "a")
    inputs = _inputs("single")
    with torch.no_grad():
        logits = ours(**inputs).logits
        y_int = torch.tensor([2, 0, 1])
        assert torch.allclose(ours(**inputs, labels=y_int).loss, torch.nn.functional.cross_entropy(logits, y_int))
        y_multi = torch.tensor([[1.0, 0, 1], [0, 0, 0], [0, 1, 1]])
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y_multi)
        assert torch.allclose(ours(**inputs, labels=y_multi).loss, bce)
        assert ours.config.problem_type is None  # inference does not write into the config
        explicit = M.AlbertForSequenceClassification.from_pretrained(tmp_path / "a", problem_type="regression")
        y = torch.randn(3, 3)
        assert torch.allclose(explicit(**inputs, labels=y).loss, torch.nn.functional.mse_loss(logits, y))
    del ref


def test_missing_head_is_initialised_with_one_notice(tiny_checkpoint, tmp_path):
    d, _ = tiny_checkpoint  # an AlbertForPreTraining checkpoint: encoder, pooler, MLM and SOP heads
    with pytest.warns(NewHeadWarning) as record:
        model = M.AlbertForTokenClassification.from_pretrained(d, id2label={0: "O", 1: "B-X", 2: "I-X"})
    assert len(record) == 1
    message = str(record[0].message)
    assert "\n" not in message and "classifier (3 labels)" in message and "minialbert finetune" in message
    w = model.classifier.weight
    assert w.shape == (3, 32) and not w.is_meta and 0.005 < w.std().item() < 0.05  # N(0, 0.02)
    assert torch.equal(model.classifier.bias, torch.zeros(3))
    # the encoder is the checkpoint's
    base = M.AlbertModel.from_pretrained(d)
    assert torch.equal(model.albert.embeddings.word.weight, base.embeddings.word.weight)

    with pytest.warns(NewHeadWarning, match="qa_outputs"):
        M.AlbertForQuestionAnswering.from_pretrained(d)


def test_head_of_another_width_is_a_checkpoint_error(tmp_path):
    make_hf_checkpoint(tmp_path, "AlbertForSequenceClassification", num_labels=3)
    with pytest.raises(CheckpointError, match=r"classifier.weight: checkpoint \(3, 32\) vs model \(5, 32\).*"
                                              r"ignore_mismatched_sizes"):
        M.AlbertForSequenceClassification.from_pretrained(tmp_path, num_labels=5)
    # A config.json whose labels disagree with the weights in the same folder, too.
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["id2label"] = {"0": "a", "1": "b"}
    cfg.pop("label2id", None)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="wrong shape"):
        M.AlbertForSequenceClassification.from_pretrained(tmp_path)
    with pytest.warns(NewHeadWarning, match=r"classifier \(2 labels\)"):
        model = M.AlbertForSequenceClassification.from_pretrained(tmp_path, ignore_mismatched_sizes=True)
    assert model.config.id2label == {0: "a", 1: "b"}


def test_config_label_fields_round_trip(tmp_path):
    from minialbert.config import AlbertConfig
    from minialbert.errors import ConfigError

    c = AlbertConfig().with_labels(["neg", "pos", "mixed"], problem_type="single_label_classification")
    c.to_json(tmp_path / "c.json")
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["id2label"] == {"0": "neg", "1": "pos", "2": "mixed"} and data["problem_type"] == "single_label_classification"
    back = AlbertConfig.from_json(tmp_path / "c.json")
    assert back.id2label == {0: "neg", 1: "pos", 2: "mixed"} and back.label2id == {"neg": 0, "pos": 1, "mixed": 2}
    assert back.num_labels == 3
    # transformers' default (2 labels LABEL_0/1) is not written, as transformers v5 does
    assert "id2label" not in AlbertConfig().to_dict()
    with pytest.raises(ConfigError, match="num_labels=4 but id2label names 2"):
        AlbertConfig(num_labels=4, id2label={0: "a", 1: "b"})
    with pytest.raises(ConfigError, match="problem_type"):
        AlbertConfig(problem_type="ranking")
