"""The engine's per-machine plan (minialbert/plan.py): its cache, the fixed plan, each kernel
choice against model.py, dtype="auto", and the inference-tensor cliff."""

from __future__ import annotations

import dataclasses
import json
import sys
import warnings

import pytest
import torch

from conftest import make_hf_checkpoint, random_inputs
from minialbert import AlbertModel, InferenceEngine, plan
from minialbert.errors import MinialbertError

AVX2 = {"name": "AMD EPYC 7B13", "machine": "x86_64", "logical_cpus": 2, "avx2": True, "avx512": False,
        "vnni": False, "avx512_bf16": False, "amx": False}
ZEN5 = {**AVX2, "name": "AMD EPYC 9B45", "avx512": True, "vnni": True, "avx512_bf16": True}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty plan cache, a fresh process memo, and a fake measurement that counts its calls."""
    monkeypatch.setenv("MINIALBERT_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("MINIALBERT_ENGINE_PLAN", raising=False)
    monkeypatch.setattr(plan, "_MEMO", {})
    calls = []

    def fake_measure(features):
        calls.append(features["name"])
        return plan.Plan(int8_full_range=features["vnni"], int8_onednn_rows=64 + len(calls), fp32_packed_below=256,
                         bf16=features["avx512_bf16"], source="measured", cpu=features["name"])

    monkeypatch.setattr(plan, "measure", fake_measure)
    return tmp_path / "engine-plan.json", calls


def _forget(monkeypatch):
    monkeypatch.setattr(plan, "_MEMO", {})  # as a new process would


def test_plan_cache_written_once_then_reused(cache, monkeypatch):
    path, calls = cache
    first = plan.current_plan(AVX2)
    assert calls == ["AMD EPYC 7B13"] and first.source == "measured" and path.is_file()
    stored = json.loads(path.read_text())
    (entry,) = stored["plans"].values()
    assert entry["signature"]["torch"] == torch.__version__ and entry["plan"]["int8_onednn_rows"] == 65
    _forget(monkeypatch)
    again = plan.current_plan(AVX2)
    assert calls == ["AMD EPYC 7B13"]  # not measured again
    assert again.source == "cache" and dataclasses.replace(again, source="measured") == first
    before = path.read_bytes()
    _forget(monkeypatch)
    plan.current_plan(AVX2)
    assert path.read_bytes() == before  # a hit does not rewrite the file


def test_plan_cache_invalidated_by_cpu_and_torch_version(cache, monkeypatch):
    path, calls = cache
    plan.current_plan(AVX2)
    _forget(monkeypatch)
    other = plan.current_plan(ZEN5)  # another CPU signature
    assert calls == ["AMD EPYC 7B13", "AMD EPYC 9B45"] and other.int8_full_range and other.bf16
    _forget(monkeypatch)
    monkeypatch.setattr(torch, "__version__", "9.9.9")  # another torch
    plan.current_plan(AVX2)
    assert len(calls) == 3
    monkeypatch.undo()  # back to the real torch; both old entries are still there
    assert len(json.loads(path.read_text())["plans"]) == 3


@pytest.mark.parametrize("content", ["{not json", '{"format": 1, "plans": [1]}', '{"format": 99, "plans": {}}', ""])
def test_corrupt_plan_cache_is_ignored_with_a_warning(cache, content):
    path, calls = cache
    path.write_text(content)
    with pytest.warns(plan.PlanCacheWarning, match="corrupt engine plan cache"):
        got = plan.current_plan(AVX2)
    assert calls == ["AMD EPYC 7B13"] and got.source == "measured"
    assert json.loads(path.read_text())["format"] == 1  # rewritten whole


def test_wrong_entry_is_measured_again(cache, monkeypatch):
    path, calls = cache
    plan.current_plan(AVX2)
    data = json.loads(path.read_text())
    (key,) = data["plans"]
    data["plans"][key]["plan"] = {"int8_onednn_rows": "many"}
    path.write_text(json.dumps(data))
    _forget(monkeypatch)
    assert plan.current_plan(AVX2).source == "measured" and len(calls) == 2


def test_fixed_plan_forced_by_the_environment(cache, monkeypatch):
    path, calls = cache
    monkeypatch.setenv("MINIALBERT_ENGINE_PLAN", "fixed")
    got = plan.current_plan(ZEN5)
    assert got == plan.FIXED and calls == [] and not path.exists()
    assert (got.int8_full_range, got.int8_onednn_rows, got.fp32_packed_below) == (False, 128, 128)
    monkeypatch.setenv("MINIALBERT_ENGINE_PLAN", "fastest")
    with pytest.raises(MinialbertError, match="MINIALBERT_ENGINE_PLAN='fastest' is not a plan"):
        plan.current_plan(ZEN5)


def test_unwritable_cache_warns_and_still_gives_a_plan(cache, monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("MINIALBERT_CACHE_DIR", str(blocker / "sub"))  # a directory below a file
    with pytest.warns(plan.PlanCacheWarning, match="cannot write the engine plan cache"):
        assert plan.current_plan(AVX2).source == "measured"


def test_real_measurement_follows_the_flags():
    """The measured plan on this machine: 8-bit activations exactly when the flags say VNNI/AMX
    (and the probe, a product of 255 x 127 pairs, then sums exactly), crossovers in range."""
    from minialbert import quantize

    if not quantize.int8_available():
        pytest.skip("no FBGEMM / oneDNN int8 in this torch build")
    features = plan.cpu_features()
    got = plan.measure(features)
    assert got.int8_full_range == bool(features["vnni"] or features["amx"])
    assert got.bf16 == plan.native_bf16(features)
    assert 32 <= got.int8_onednn_rows <= 2048 and 32 <= got.fp32_packed_below <= 2048
    assert got.source == "measured" and features["name"] in got.cpu


# ------------------------------------------------------------------ each choice against model.py
def _transformers_like(seed=0):
    from minialbert.config import AlbertConfig

    torch.manual_seed(seed)
    model = AlbertModel(AlbertConfig(vocab_size=500, embedding_size=64, hidden_size=128, num_hidden_layers=6,
                                     num_attention_heads=4, intermediate_size=512, max_position_embeddings=64)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_((1.0 if name.endswith("norm.weight") else 0.0) + (0.1 if "norm" in name else 0.02) * torch.randn_like(p))
    return model


def _run(model, ids, mask, tt, **engine_kwargs):
    with torch.inference_mode():
        return InferenceEngine(model, **engine_kwargs)(ids, mask, tt)


def _cosines(out, ref, mask):
    m = mask.unsqueeze(-1).float()
    mean = lambda h: (h.float() * m).sum(1) / m.sum(1)  # noqa: E731
    cos = torch.nn.functional.cosine_similarity
    return (cos(mean(out.last_hidden_state), mean(ref.last_hidden_state), dim=-1).min().item(),
            cos(out.pooler_output, ref.pooler_output, dim=-1).min().item())


def _full_range_ok() -> bool:
    features = plan.cpu_features()
    return bool(features["vnni"] or features["amx"]) and plan._saturation_free()


@pytest.mark.parametrize("bits", [7, 8])
@pytest.mark.parametrize("kernel", ["fbgemm", "onednn", "onednn+gelu"])
def test_each_int8_choice_within_its_bound_of_model_py(kernel, bits):
    """Each int8 kernel with each activation range the plan can choose: mean-pooled cosine to
    model.py >= 0.999 and pooler >= 0.998 (the documented bound), on transformers-like weights."""
    from minialbert import quantize

    if not quantize.int8_available():
        pytest.skip("no FBGEMM / oneDNN int8 in this torch build")
    if bits == 8 and not _full_range_ok():
        pytest.skip("8-bit activations need VNNI or AMX (they saturate elsewhere; the plan never picks them there)")
    choice = plan.Plan(int8_full_range=bits == 8, int8_onednn_rows=10**9 if kernel == "fbgemm" else 1,
                       gelu_tanh_fused=kernel == "onednn+gelu")
    model = _transformers_like()
    ids, mask, tt = random_inputs(batch=4, seq=40, vocab=500, seed=2)
    out = _run(model, ids, mask, tt, int8=True, plan=choice)
    with torch.no_grad():
        ref = model(ids, attention_mask=mask, token_type_ids=tt)
    mean_cos, pooler_cos = _cosines(out, ref, mask)
    assert mean_cos >= 0.999 and pooler_cos >= 0.998
    assert (out.last_hidden_state - ref.last_hidden_state).abs().max() > 1e-4  # really int8


def test_full_range_is_more_accurate_than_7_bits():
    """Where the plan picks 8-bit activations it is for accuracy at equal speed: closer to model.py."""
    if not _full_range_ok():
        pytest.skip("8-bit activations need VNNI or AMX")
    model = _transformers_like(seed=1)
    ids, mask, tt = random_inputs(batch=4, seq=40, vocab=500, seed=4)
    with torch.no_grad():
        ref = model(ids, attention_mask=mask, token_type_ids=tt).last_hidden_state
    err = {bits: (_run(model, ids, mask, tt, int8=True, plan=plan.Plan(int8_full_range=bits == 8,
                                                                        int8_onednn_rows=1)).last_hidden_state
                  - ref)[mask.bool()].pow(2).mean().item() for bits in (7, 8)}
    assert err[8] < err[7]


@pytest.mark.parametrize("gelu_fused", [False, True])
@pytest.mark.parametrize("packed_below", [1, 10**9])
def test_each_fp32_layout_equals_model_py(packed_below, gelu_fused):
    """fp32 weights as stored, or laid out for oneDNN; tanh GELU in the GEMM's post-op or after
    it: each equals model.py to float rounding."""
    model = _transformers_like()
    assert model.config.hidden_act == "gelu_new"  # the tanh GELU, which the post-op choice is about
    ids, mask, tt = random_inputs(batch=2, seq=20, vocab=500, seed=5)
    out = _run(model, ids, mask, tt, plan=plan.Plan(fp32_packed_below=packed_below, gelu_tanh_fused=gelu_fused))
    with torch.no_grad():
        ref = model(ids, attention_mask=mask, token_type_ids=tt)
    real = mask.bool()  # the engine skips padding positions (zeros there)
    assert (out.last_hidden_state[real] - ref.last_hidden_state[real]).abs().max() <= 1e-5
    assert (out.pooler_output - ref.pooler_output).abs().max() <= 1e-5


def test_bf16_layouts_agree_and_stay_close_to_model_py():
    """bf16 calls of few rows also use packed weights (where oneDNN runs bf16): the same numbers
    as unpacked ones, and close to model.py in float32."""
    model = _transformers_like()
    ids, mask, tt = random_inputs(batch=2, seq=20, vocab=500, seed=5)
    with torch.no_grad():
        ref = model(ids, attention_mask=mask, token_type_ids=tt)
    half = __import__("copy").deepcopy(model).to(torch.bfloat16)
    outs = [_run(half, ids, mask, tt, plan=plan.Plan(fp32_packed_below=n)) for n in (1, 10**9)]
    assert (outs[0].last_hidden_state.float() - outs[1].last_hidden_state.float()).abs().max() <= 0.02
    mean_cos, pooler_cos = _cosines(outs[1], ref, mask)
    assert mean_cos >= 0.999 and pooler_cos >= 0.99


def test_engine_plan_is_this_machines_or_the_one_given():
    model = _transformers_like()
    assert InferenceEngine(model).plan() == plan.current_plan()
    given = plan.Plan(int8_onednn_rows=7)
    assert InferenceEngine(model, plan=given).plan() is given
    with pytest.raises(TypeError, match="plan must be"):
        InferenceEngine(model, plan={"int8_onednn_rows": 7})


# ------------------------------------------------------------------ the inference-mode cliff
def test_model_loaded_in_inference_mode_is_cached_like_any_other(tmp_path, monkeypatch):
    """A model loaded under inference_mode has inference-tensor parameters: the engine makes them
    ordinary (same values), so its packs are made once, not on every call, with the same output."""
    from minialbert import quantize

    if not quantize.int8_available():
        pytest.skip("no FBGEMM / oneDNN int8 in this torch build")
    make_hf_checkpoint(tmp_path, "AlbertModel", seed=1)
    normal = AlbertModel.from_pretrained(tmp_path)
    with torch.inference_mode():
        loaded = AlbertModel.from_pretrained(tmp_path)
    assert all(p.is_inference() for p in loaded.parameters())
    ids, mask, tt = random_inputs(seed=3)
    made = []
    real = quantize.Int8Linear.__init__
    monkeypatch.setattr(quantize.Int8Linear, "__init__", lambda self, *a: made.append(1) or real(self, *a))
    engine = InferenceEngine(loaded, int8=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "inference tensors" warning any more
        with torch.inference_mode():
            first = engine(ids, mask, tt)
            packs = len(made)
            second = engine(ids, mask, tt)
    assert packs > 0 and len(made) == packs  # nothing re-derived on the second call
    assert not any(p.is_inference() for p in loaded.parameters())
    assert torch.equal(first.last_hidden_state, second.last_hidden_state)
    assert torch.equal(first.last_hidden_state, _run(normal, ids, mask, tt, int8=True).last_hidden_state)
    with torch.no_grad():  # the model itself still computes what it did
        assert torch.equal(loaded(ids, attention_mask=mask, token_type_ids=tt).last_hidden_state,
                           normal(ids, attention_mask=mask, token_type_ids=tt).last_hidden_state)


# ------------------------------------------------------------------ dtype="auto"
@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    import subprocess

    d = tmp_path_factory.mktemp("demo") / "demo-albert"
    subprocess.run([sys.executable, "scripts/make_demo_checkpoint.py", str(d)], check=True, capture_output=True,
                   cwd=str(__import__("pathlib").Path(__file__).parents[1]))
    return d


def _fake_cpu(monkeypatch, features, mkldnn_bf16):
    monkeypatch.setattr(plan, "cpu_features", lambda: dict(features))
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: mkldnn_bf16, raising=False)


def test_auto_dtype_without_bf16_is_float32(monkeypatch, demo):
    from minialbert import Embedder

    _fake_cpu(monkeypatch, AVX2, False)
    assert plan.auto_dtype() == (torch.float32, "dtype auto: float32 (this CPU has no native bfloat16: "
                                                "no AVX512-BF16 or AMX)")
    emb = Embedder.from_pretrained(demo, dtype="auto")
    assert emb.model.dtype == torch.float32 and "float32" in emb.dtype_note


def test_auto_dtype_with_faked_bf16_flags_is_bfloat16(monkeypatch, demo, capsys):
    from minialbert import Embedder
    from minialbert.cli import main

    _fake_cpu(monkeypatch, ZEN5, True)
    emb = Embedder.from_pretrained(demo, dtype="auto")
    assert emb.model.dtype == torch.bfloat16 and emb.dtype_note == "dtype auto: bfloat16 (this CPU has AVX512-BF16)"
    assert Embedder.from_pretrained(demo, dtype="auto", int8=True).model.dtype == torch.float32
    _fake_cpu(monkeypatch, {**ZEN5, "avx512_bf16": False, "amx": True}, True)
    assert plan.auto_dtype()[1] == "dtype auto: bfloat16 (this CPU has AMX)"
    # the CLI says which one it took, on stderr
    assert main(["embed", "hello world", "--model", str(demo), "--dtype", "auto"]) == 0
    captured = capsys.readouterr()
    assert "dtype auto: bfloat16 (this CPU has AMX)" in captured.err and "dtype auto" not in captured.out
    assert main(["embed", "hello world", "--model", str(demo), "--dtype", "auto", "--quiet"]) == 0
    assert "dtype auto" not in capsys.readouterr().err


def test_info_engine_prints_the_plan(capsys, monkeypatch):
    from minialbert.cli import main

    monkeypatch.setenv("MINIALBERT_ENGINE_PLAN", "fixed")
    assert main(["info", "--engine"]) == 0
    out = capsys.readouterr().out
    assert "engine plan (fixed)" in out and "7-bit" in out and "FBGEMM below 128 rows" in out
    assert "engine-plan.json" in out
