"""The inference engine's fused path (minialbert/fast/) equals the reference model (model.py) and transformers.

Small configs: max |diff| <= 1e-5. One albert-base-sized random model at length 512: <= 1e-4
(marked slow). No speed thresholds here: speed is measured by scripts/bench.py. Which models the
engine accepts, and what it does with the others, is tests/test_engine.py.
"""

from __future__ import annotations

import pytest
import torch

from conftest import make_hf_checkpoint, random_inputs
from minialbert import fast
from minialbert.errors import MinialbertError
from minialbert.fast import InferenceEngine
from minialbert.model import AlbertModel

SMALL = 1e-5
FULL = 1e-4


def _reference(model, *args, **kwargs):
    """model.py: calling the model always runs it."""
    with torch.no_grad():
        return model(*args, **kwargs)


def _fast(model, ids, mask=None, tt=None, pos=None, int8=False):
    """The engine's fused path; fails if the engine stepped aside. Padding positions of a
    right-padded batch must come back zero (the engine skips them; see _real)."""
    engine = InferenceEngine(model, int8=int8)
    with torch.inference_mode():
        assert engine.why_not_fused() is None
        out = engine(ids, attention_mask=mask, token_type_ids=tt, position_ids=pos)
    if mask is not None and not bool(mask.all()) and fast.forward._Packing.worth_it(mask):
        assert out.last_hidden_state[~mask.bool()].abs().max().item() == 0
    return out


def _real(hidden, mask):
    """The rows of real tokens: what the engine and model.py must agree on (model.py also computes
    values at padding positions, which the engine skips)."""
    return hidden if mask is None else hidden[mask.bool()]


def _maxdiff(a, b):
    return (a.float() - b.float()).abs().max().item()


CASES = {
    "gelu_new": dict(hidden_act="gelu_new"),
    "gelu": dict(hidden_act="gelu"),
    "relu": dict(hidden_act="relu"),
    "silu (unfused activation)": dict(hidden_act="silu"),
    "groups 2 x inner 2": dict(num_hidden_layers=4, num_hidden_groups=2, inner_group_num=2),
    "groups 3 uneven": dict(num_hidden_layers=5, num_hidden_groups=3, inner_group_num=1),
    "64-dim heads": dict(hidden_size=128, num_attention_heads=2, intermediate_size=300),
}


@pytest.fixture(scope="module", params=list(CASES), ids=list(CASES))
def pair(request, tmp_path_factory):
    d = tmp_path_factory.mktemp("fast")
    ref = make_hf_checkpoint(d, "AlbertModel", attn="sdpa", seed=3, **CASES[request.param])
    return AlbertModel.from_pretrained(d), ref


@pytest.mark.parametrize("kind", ["padded+types", "no mask", "position_ids", "batch 1"])
def test_fast_equals_reference_and_transformers(pair, kind):
    ours, hf = pair
    ids, mask, tt = random_inputs(batch=4, seq=13, seed=7)
    kwargs = dict(attention_mask=mask, token_type_ids=tt)
    if kind == "no mask":
        kwargs = {}
    elif kind == "position_ids":
        kwargs["position_ids"] = torch.randint(0, 64, ids.shape, generator=torch.Generator().manual_seed(2))
    elif kind == "batch 1":
        ids, kwargs = ids[:1, :5], {}
    out = _fast(ours, ids, kwargs.get("attention_mask"), kwargs.get("token_type_ids"), kwargs.get("position_ids"))
    ref = _reference(ours, ids, **kwargs)
    with torch.no_grad():
        theirs = hf(ids, **kwargs)
    m = kwargs.get("attention_mask")
    assert _maxdiff(_real(out.last_hidden_state, m), _real(ref.last_hidden_state, m)) <= SMALL
    assert _maxdiff(out.pooler_output, ref.pooler_output) <= SMALL
    assert _maxdiff(_real(out.last_hidden_state, m), _real(theirs.last_hidden_state, m)) <= SMALL
    assert _maxdiff(out.pooler_output, theirs.pooler_output) <= SMALL


def test_fully_masked_row_matches_reference(tmp_path):
    make_hf_checkpoint(tmp_path, "AlbertModel", seed=1)
    ours = AlbertModel.from_pretrained(tmp_path)
    ids, mask, tt = random_inputs(batch=3, seq=9, seed=5)
    mask[1] = 0  # a row with no real token at all: the reference attends uniformly
    out = _fast(ours, ids, mask, tt)
    ref = _reference(ours, ids, attention_mask=mask, token_type_ids=tt)
    assert torch.isfinite(out.last_hidden_state).all()
    assert _maxdiff(out.last_hidden_state, ref.last_hidden_state) <= SMALL


def test_prepared_weights_follow_parameter_changes(tmp_path):
    """The cached fused QKV weight is rebuilt after load_state_dict / in-place edits / .to()."""
    make_hf_checkpoint(tmp_path / "a", "AlbertModel", seed=1)
    make_hf_checkpoint(tmp_path / "b", "AlbertModel", seed=2)
    model = AlbertModel.from_pretrained(tmp_path / "a")
    other = AlbertModel.from_pretrained(tmp_path / "b")
    ids, mask, tt = random_inputs(seed=9)
    _fast(model, ids, mask, tt)  # fills the cache
    model.load_state_dict(other.state_dict())  # copy_ into the same tensors
    assert _maxdiff(_real(_fast(model, ids, mask, tt).last_hidden_state, mask),
                    _real(_reference(other, ids, attention_mask=mask, token_type_ids=tt).last_hidden_state, mask)) <= SMALL
    with torch.no_grad():
        model.encoder.groups[0][0].attention.value.weight.mul_(2.0)  # in place
    assert _maxdiff(_real(_fast(model, ids, mask, tt).last_hidden_state, mask),
                    _real(_reference(model, ids, attention_mask=mask, token_type_ids=tt).last_hidden_state, mask)) <= SMALL
    model.encoder.groups[0][0].attention.key.weight = torch.nn.Parameter(torch.randn(32, 32))  # replaced
    assert _maxdiff(_real(_fast(model, ids, mask, tt).last_hidden_state, mask),
                    _real(_reference(model, ids, attention_mask=mask, token_type_ids=tt).last_hidden_state, mask)) <= SMALL
    model.double()  # dtype change (float64 runs the plain-kernel fallback)
    out = _fast(model, ids, mask, tt).last_hidden_state
    assert out.dtype == torch.float64
    assert _maxdiff(_real(out, mask),
                    _real(_reference(model, ids, attention_mask=mask, token_type_ids=tt).last_hidden_state, mask)) <= 1e-10


def test_model_loaded_under_inference_mode(tmp_path):
    """Inference tensors have no version counter: they must still give the right answer."""
    make_hf_checkpoint(tmp_path, "AlbertModel", seed=1)
    with torch.inference_mode():
        model = AlbertModel.from_pretrained(tmp_path)
        engine = InferenceEngine(model)
        ids, mask, tt = random_inputs(seed=9)
        a = engine(ids, mask, tt).last_hidden_state
        model.encoder.groups[0][0].attention.value.weight.copy_(torch.randn(32, 32))
        b = engine(ids, mask, tt).last_hidden_state
    ref = _reference(model, ids, attention_mask=mask, token_type_ids=tt).last_hidden_state
    assert _maxdiff(_real(b, mask), _real(ref, mask)) <= SMALL and _maxdiff(a, b) > 1e-4


def test_bfloat16_close_to_fp32(pair):
    ours, _ = pair
    ids, mask, tt = random_inputs(seed=6)
    ref = _fast(ours, ids, mask, tt).last_hidden_state
    model = AlbertModel(ours.config).eval()
    model.load_state_dict(ours.state_dict())
    model.to(torch.bfloat16)
    out = _fast(model, ids, mask, tt)
    assert out.last_hidden_state.dtype == torch.bfloat16
    real = mask.bool()
    cos = torch.nn.functional.cosine_similarity(out.last_hidden_state.float()[real], ref[real], dim=-1)
    assert cos.min() > 0.99
    plain = _reference(model, ids, attention_mask=mask, token_type_ids=tt).last_hidden_state
    assert _maxdiff(out.last_hidden_state[real], plain[real]) < 0.1


@pytest.mark.slow
def test_full_size_length_512_equals_transformers(tmp_path):
    full = dict(vocab_size=30000, embedding_size=128, hidden_size=768, num_hidden_layers=12,
                num_attention_heads=12, intermediate_size=3072, max_position_embeddings=512)
    hf = make_hf_checkpoint(tmp_path, "AlbertModel", attn="sdpa", seed=0, **full)
    ours = AlbertModel.from_pretrained(tmp_path)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 30000, (2, 512), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 300:] = 0
    tt = torch.zeros_like(ids)
    tt[:, 200:] = 1
    out = _fast(ours, ids, mask, tt)
    with torch.no_grad():
        theirs = hf(ids, attention_mask=mask, token_type_ids=tt)
    assert _maxdiff(_real(out.last_hidden_state, mask), _real(theirs.last_hidden_state, mask)) <= FULL
    assert _maxdiff(out.pooler_output, theirs.pooler_output) <= FULL


def test_int8_close_to_fp32_and_follows_weight_changes(tmp_path):
    from minialbert.quantize import int8_available

    if not int8_available():
        pytest.skip("no FBGEMM in this build")
    make_hf_checkpoint(tmp_path, "AlbertModel", seed=1)
    model = AlbertModel.from_pretrained(tmp_path)
    ids, mask, tt = random_inputs(seed=3)
    ref = _fast(model, ids, mask, tt)
    out = _fast(model, ids, mask, tt, int8=True)
    real = mask.bool()
    assert 0 < _maxdiff(out.last_hidden_state[real], ref.last_hidden_state[real]) < 0.2
    cos = torch.nn.functional.cosine_similarity(out.pooler_output, ref.pooler_output, dim=-1)
    assert cos.min() > 0.99
    engine = InferenceEngine(model, int8=True)
    with torch.inference_mode():
        engine(ids, mask, tt)  # packs the weights
    with torch.no_grad():  # packs follow weight changes
        model.encoder.groups[0][0].feed_forward.up.weight.copy_(torch.randn(37, 32))
    with torch.inference_mode():
        changed = engine(ids, mask, tt)
    plain = _fast(model, ids, mask, tt)
    near = _maxdiff(changed.last_hidden_state[real], plain.last_hidden_state[real])
    assert near < 0.2 and _maxdiff(changed.last_hidden_state[real], out.last_hidden_state[real]) > 5 * near
    # int8 is for float32 models on the CPU: anything else is refused, not silently run in fp32
    model.to(torch.bfloat16)
    with pytest.raises(MinialbertError, match="int8 runs float32 models on the CPU"):
        with torch.inference_mode():
            engine(ids, mask, tt)


def test_large_batches_run_in_slices_of_rows(pair, monkeypatch):
    """Rows are independent: a batch sliced by SLICE_TOKENS gives model.py's numbers, token types
    and positions given per row or shared by the batch."""
    ours, hf = pair
    ids, mask, tt = random_inputs(batch=5, seq=13, seed=11)
    monkeypatch.setattr(fast.forward, "SLICE_TOKENS", 2 * 13)  # slices of 2, 2 and 1 rows
    calls = []
    real = fast.forward._embed
    monkeypatch.setattr(fast.forward, "_embed", lambda *a: calls.append(a[1].shape[0]) or real(*a))
    positions = torch.arange(13).unsqueeze(0)
    for kwargs in (dict(attention_mask=mask, token_type_ids=tt), dict(token_type_ids=tt[:1], position_ids=positions)):
        out = _fast(ours, ids, kwargs.get("attention_mask"), kwargs.get("token_type_ids"), kwargs.get("position_ids"))
        ref = _reference(ours, ids, **kwargs)
        m = kwargs.get("attention_mask")
        assert _maxdiff(_real(out.last_hidden_state, m), _real(ref.last_hidden_state, m)) <= SMALL
        assert _maxdiff(out.pooler_output, ref.pooler_output) <= SMALL
    assert calls == [2, 2, 1, 2, 2, 1]


# Each int8 kernel and activation range against model.py: tests/test_plan.py.


def test_int8_activation_bytes_are_the_quantized_values():
    """quantize_activation hands oneDNN the quantized tensor's bytes as uint8 without a copy: they
    must be the 7-bit values torch computed."""
    from minialbert import quantize

    x = torch.randn(64, 48) * 3 + 1
    values, scale, zero_point = quantize.quantize_activation(x)
    assert values.dtype == torch.uint8 and int(values.max()) <= 127
    expected = torch.clamp(torch.round(x / scale) + zero_point, 0, 127)
    assert torch.equal(values.float(), expected)
    values, scale, zero_point = quantize.quantize_activation(x, full_range=True)  # VNNI/AMX plans: 0..255
    assert int(values.max()) == 255 and int(values.min()) == 0
    assert torch.equal(values.float(), torch.clamp(torch.round(x / scale) + zero_point, 0, 255))


def test_in_place_tanh_gelu_is_the_tanh_gelu():
    """fast/act.py's y * sigmoid(2z) form against the tanh formula in float64, to float32 rounding;
    in place; bfloat16 through ATen's kernel."""
    from minialbert.fast.act import gelu_tanh_

    y = torch.linspace(-12, 12, 20001)
    x = y.double()
    ref = 0.5 * x * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (x + 0.044715 * x**3)))
    out = gelu_tanh_(y)
    assert out.data_ptr() == y.data_ptr()
    assert ((out.double() - ref).abs() <= 1e-6 * (1 + ref.abs())).all()
    b = torch.linspace(-6, 6, 101, dtype=torch.bfloat16)
    assert torch.equal(gelu_tanh_(b.clone()), torch.nn.functional.gelu(b, approximate="tanh"))


def test_right_padded_batches_skip_the_padding(pair, monkeypatch):
    """A right-padded batch runs its GEMMs on the real tokens' rows only (fast/forward.py, _Packing):
    model.py's numbers at every real token and in the pooler, zeros at padding positions. A mask
    that is not right padding (left padding, holes) runs padded, equal to model.py everywhere."""
    ours, hf = pair
    ids, mask, tt = random_inputs(batch=4, seq=13, seed=7)  # rows 1-3 padded at the end
    rows_seen = []
    real_linear = fast.ops._FloatOps.linear
    monkeypatch.setattr(fast.ops._FloatOps, "linear", staticmethod(
        lambda x, bound: rows_seen.append(x.numel() // x.shape[-1]) or real_linear(x, bound)))
    out = _fast(ours, ids, mask, tt)
    ref = _reference(ours, ids, attention_mask=mask, token_type_ids=tt)
    with torch.no_grad():
        theirs = hf(ids, attention_mask=mask, token_type_ids=tt)
    real = mask.bool()
    assert rows_seen[0] == int(mask.sum()) < mask.numel()  # the projection saw the real tokens only
    assert _maxdiff(out.last_hidden_state[real], ref.last_hidden_state[real]) <= SMALL
    assert _maxdiff(out.last_hidden_state[real], theirs.last_hidden_state[real]) <= SMALL
    assert _maxdiff(out.pooler_output, ref.pooler_output) <= SMALL
    assert out.last_hidden_state[~real].abs().max().item() == 0

    rows_seen.clear()
    left = torch.flip(mask, dims=[1])  # left padding: runs padded
    out = _fast(ours, ids, left, tt)
    ref = _reference(ours, ids, attention_mask=left, token_type_ids=tt)
    assert rows_seen[0] == mask.numel()
    assert _maxdiff(out.last_hidden_state, ref.last_hidden_state) <= SMALL


def test_int8_right_padded_equals_int8_padded(tmp_path):
    """int8 on packed rows: the same GEMMs per real token as on the padded batch, except that each
    activation's quantization range now comes from real tokens alone; both close to model.py."""
    from minialbert.quantize import int8_available

    if not int8_available():
        pytest.skip("no FBGEMM in this build")
    make_hf_checkpoint(tmp_path, "AlbertModel", seed=1)
    model = AlbertModel.from_pretrained(tmp_path)
    ids, mask, tt = random_inputs(batch=4, seq=13, seed=3)
    real = mask.bool()
    ref = _reference(model, ids, attention_mask=mask, token_type_ids=tt)
    out = _fast(model, ids, mask, tt, int8=True)
    one_by_one = [_fast(model, ids[i:i + 1, :int(mask[i].sum())], None, tt[i:i + 1, :int(mask[i].sum())], int8=True)
                  for i in range(4)]
    cos = torch.nn.functional.cosine_similarity(out.last_hidden_state[real], ref.last_hidden_state[real], dim=-1)
    assert cos.min() > 0.99
    assert out.last_hidden_state[~real].abs().max().item() == 0
    for i, alone in enumerate(one_by_one):  # each row as if embedded alone, to int8's precision
        n = int(mask[i].sum())
        assert _maxdiff(out.last_hidden_state[i, :n], alone.last_hidden_state[0]) < 0.2
