"""Bake, combine, extract, resize and blend on real RVC files made from tiny random models: each result is
checked against an independent reference (the unmerged stack, the true delta, the input model), and every
file is read back by RVC's loading rules (a strict key match)."""

import numpy as np
import pytest
import torch

from builders import TINY, tiny_model_file
from stacks import make_adapter, synth_output, unmerged_stack
from lora_core import read_adapter
from webui_lora.errors import UserError
from webui_lora.merge import bake, blend, combine, extract, resize
from webui_lora.rvc.checkpoints import load_model, read_checkpoint, save_small_model
from webui_lora.rvc.models import build_synthesizer

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def strict_rvc_load(path):
    """RVC's loader with strict=True: the file's fields, fp16 weights, and exactly the model's keys."""
    checkpoint = read_checkpoint(path)
    assert list(checkpoint) == ["weight", "config", "info", "sr", "f0", "version"]
    assert all(t.dtype == torch.float16 for t in checkpoint["weight"].values())
    net = build_synthesizer(checkpoint["config"], checkpoint["version"], checkpoint["f0"], inference=True)
    net.load_state_dict(checkpoint["weight"], strict=True)
    return checkpoint


@pytest.mark.parametrize("name", list(TINY))
def test_bake_equals_the_unmerged_stack(name, tmp_path):
    base = tiny_model_file(tmp_path, name)
    first = make_adapter(base, tmp_path / "a.safetensors", 1)
    second = make_adapter(base, tmp_path / "b.safetensors", 2, targets=["dec.ups", "flow"])
    stack = [(first, 1.0), (second, -0.5)]
    result = bake(base, stack, tmp_path / "baked.pth")
    checkpoint = strict_rvc_load(result.output)
    assert checkpoint["version"] == TINY[name][0] and checkpoint["f0"] == int(TINY[name][1])
    assert checkpoint["sr"] == f"{TINY[name][5] // 1000}k" and checkpoint["config"][1] == 32
    baked = load_model(result.output).synthesizer
    expected = synth_output(unmerged_stack(base, stack), name)
    got = synth_output(baked, name)
    plain = synth_output(load_model(base).synthesizer, name)
    error = (got - expected).abs().max() / expected.abs().max()
    assert error < 5e-3, error  # fp16 rounding of the saved weights
    assert (plain - expected).abs().max() / expected.abs().max() > 20 * error  # the adapters do show


def test_parametrized_style_and_merged_index(tmp_path):
    from webui_lora.rvc.index import FeatureIndex, build_index

    base = tiny_model_file(tmp_path, "v2_f0_40k")
    adapter = make_adapter(base, tmp_path / "a.safetensors", 1)
    rng = np.random.default_rng(0)
    first = build_index(rng.standard_normal((200, 768)).astype(np.float32), tmp_path / "a.index")
    second = build_index(rng.standard_normal((120, 768)).astype(np.float32), tmp_path / "b.index")
    result = bake(base, [(adapter, 1.0)], tmp_path / "applio.pth", style="parametrized",
                  indices=[first.path, second.path], index_out=tmp_path / "merged.index")
    weights = read_checkpoint(result.output)["weight"]
    assert any(k.endswith("parametrizations.weight.original0") for k in weights)
    assert not any(k.endswith("weight_g") for k in weights)
    loaded = load_model(result.output)
    assert loaded.weight_norm_keys == "parametrized"
    legacy = load_model(bake(base, [(adapter, 1.0)], tmp_path / "legacy.pth").output)
    assert torch.equal(synth_output(loaded.synthesizer, "v2_f0_40k"), synth_output(legacy.synthesizer, "v2_f0_40k"))
    assert FeatureIndex.load(result.index).index.ntotal == 320


@pytest.mark.parametrize("style", ["legacy", "parametrized"])
def test_extraction_recovers_a_rank_r_delta(style, tmp_path):
    name = "v2_f0_40k"
    base = tiny_model_file(tmp_path, name)
    true = make_adapter(base, tmp_path / "true.safetensors", 3, targets=["dec.ups", "dec.resblocks.0", "enc_p",
                                                                        "emb_g", "flow.flows.0"], rank=2)
    tuned = bake(base, [(true, 1.0)], tmp_path / "tuned.pth", style=style).output
    result = extract([base], tuned, tmp_path / "extracted.safetensors", rank=2)
    extracted, original = read_adapter(result.output), read_adapter(true)
    assert set(extracted.modules) == set(original.modules)  # unchanged layers are detected, not assumed
    assert all(m.rank <= 2 for m in extracted.modules.values())
    assert min(result.energy.values()) > 0.99  # the rest is the fp16 rounding of the saved voice
    for name_, module in extracted.modules.items():
        exact = original.modules[name_].delta()
        assert (module.delta() - exact).norm() / exact.norm() < 0.02, name_
    assert extracted.extra["version"] == "v2" and extracted.extra["sr"] == 40000
    assert "energy retained" in result.report()


def test_extraction_picks_the_closest_base_and_refuses_other_architectures(tmp_path):
    base = tiny_model_file(tmp_path, "v2_f0_40k")
    other = tiny_model_file(tmp_path, "v2_f0_40k", seed=5, file_name="other.pth")
    foreign = tiny_model_file(tmp_path, "v1_f0_48k")
    tuned = bake(base, [(make_adapter(base, tmp_path / "a.safetensors", 1), 1.0)], tmp_path / "tuned.pth").output
    result = extract([other, foreign, base], tuned, tmp_path / "x.safetensors", energy=0.99)
    assert "base: v2_f0_40k.pth" in result.lines and result.base == base
    assert any(line.startswith("v1_f0_48k.pth: skipped") for line in result.lines)
    with pytest.raises(UserError, match="fits none of the bases given.*v1 f0"):
        extract([foreign], tuned, tmp_path / "y.safetensors", rank=2)


def test_combine_cat_is_exact_and_svd_reports_energy(tmp_path):
    name = "v2_nof0_32k"
    base = tiny_model_file(tmp_path, name)
    first = make_adapter(base, tmp_path / "a.safetensors", 1, targets=["dec"])
    second = make_adapter(base, tmp_path / "b.safetensors", 2, targets=["dec.ups", "enc_p"])
    stack = [(first, 0.7), (second, -1.0)]
    cat = combine(stack, tmp_path / "cat.safetensors")
    expected = synth_output(unmerged_stack(base, stack), name)
    got = synth_output(unmerged_stack(base, [(cat.output, 1.0)]), name)
    assert torch.allclose(got, expected, atol=1e-5 * expected.abs().max())
    assert min(cat.energy.values()) > 0.999999
    svd = combine(stack, tmp_path / "svd.safetensors", method="svd", rank=1)
    assert all(m.rank == 1 for m in read_adapter(svd.output).modules.values())
    assert min(svd.energy.values()) < 0.999 and "lowest" in svd.report()
    for method in ("ties", "dare", "dare-ties"):
        assert combine(stack, tmp_path / f"{method}.safetensors", method=method, energy=0.95).output.is_file()


def test_resize_keeps_strength_and_reports_energy(tmp_path):
    base = tiny_model_file(tmp_path, "v1_f0_48k")
    adapter = make_adapter(base, tmp_path / "a.safetensors", 1, targets=["dec"], rank=4)
    full = resize(adapter, tmp_path / "same.safetensors", rank=4)
    expected = synth_output(unmerged_stack(base, [(adapter, 0.8)]), "v1_f0_48k")
    got = synth_output(unmerged_stack(base, [(full.output, 0.8)]), "v1_f0_48k")
    assert torch.allclose(got, expected, atol=1e-5 * expected.abs().max())
    smaller = resize(adapter, tmp_path / "small.safetensors", rank=2)
    assert max(m.rank for m in read_adapter(smaller.output).modules.values()) == 2  # 1 where a layer is 1 wide
    assert 0 < min(smaller.energy.values()) < 1 and smaller.output.stat().st_size < adapter.stat().st_size


def test_blend_with_itself_is_the_identity_and_styles_mix(tmp_path):
    name = "v2_f0_40k"
    model = tiny_model_file(tmp_path, name)
    same = blend(model, model, 0.3, tmp_path / "same.pth")
    strict_rvc_load(same.output)
    original, blended = read_checkpoint(model)["weight"], read_checkpoint(same.output)["weight"]
    for key, tensor in original.items():
        assert torch.allclose(blended[key].float(), tensor.float(), rtol=2e-3, atol=1e-6), key
    parametrized = tmp_path / "parametrized.pth"
    loaded = load_model(model)
    save_small_model(parametrized, loaded.synthesizer, loaded.config, version="v2", f0=True,
                     weight_norm_keys="parametrized")
    mixed = blend(model, parametrized, 0.5, tmp_path / "mixed.pth")
    out = synth_output(load_model(mixed.output).synthesizer, name)
    assert torch.allclose(out, synth_output(loaded.synthesizer, name), atol=1e-2 * out.abs().max())


def test_blend_is_on_effective_weights(tmp_path):
    """A 50/50 blend's effective weights are the mean of the two models' (RVC averages g and v apart)."""
    from lora_core.weights import effective_weight

    a = tiny_model_file(tmp_path, "v2_f0_40k", seed=1, file_name="a.pth")
    b = tiny_model_file(tmp_path, "v2_f0_40k", seed=2, file_name="b.pth")
    mixed = load_model(blend(a, b, 0.5, tmp_path / "ab.pth").output).synthesizer
    net_a, net_b = load_model(a).synthesizer, load_model(b).synthesizer
    layer = "dec.ups.0"
    mean = ((effective_weight(net_a.get_submodule(layer)) + effective_weight(net_b.get_submodule(layer))) / 2).detach()
    assert torch.allclose(effective_weight(mixed.get_submodule(layer)), mean, atol=2e-3 * float(mean.abs().max()))


def test_bad_input_is_refused_and_nothing_is_lost(tmp_path):
    base = tiny_model_file(tmp_path, "v2_f0_40k")
    other_base = tiny_model_file(tmp_path, "v2_f0_40k", seed=9, file_name="other.pth")
    v1 = tiny_model_file(tmp_path, "v1_f0_48k")
    mine = make_adapter(base, tmp_path / "mine.safetensors", 1, targets=["dec.ups"])
    theirs = make_adapter(other_base, tmp_path / "theirs.safetensors", 2, targets=["dec.ups"])
    wrong_version = make_adapter(base, tmp_path / "v1.safetensors", 3, targets=["dec.ups"], version="v1")
    before = {p: p.read_bytes() for p in (base, mine, theirs)}
    with pytest.raises(UserError, match="theirs.safetensors.*another base model than mine.safetensors"):
        combine([(mine, 1), (theirs, 1)], tmp_path / "c.safetensors")
    with pytest.raises(UserError, match="v1.safetensors.*version='v1'"):
        bake(base, [(wrong_version, 1)], tmp_path / "x.pth")
    with pytest.raises(UserError, match="mine.safetensors.*does not fit v1_f0_48k.pth|version"):
        bake(v1, [(mine, 1)], tmp_path / "x.pth")
    with pytest.raises(UserError, match="is one of the inputs"):
        bake(base, [(mine, 1)], base)
    with pytest.raises(UserError, match="is one of the inputs"):
        resize(mine, mine, rank=1)
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(mine.read_bytes()[:200])
    with pytest.raises(Exception, match="corrupt.safetensors.*truncated"):
        combine([(mine, 1), (corrupt, 1)], tmp_path / "c.safetensors")
    discriminator = tmp_path / "D_1.pth"
    torch.save({"model": build_synthesizer_d().state_dict()}, discriminator)
    with pytest.raises(UserError, match="D_1.pth.*discriminator"):
        blend(base, discriminator, 0.5, tmp_path / "y.pth")
    with pytest.raises(UserError, match="other.pth|v1_f0_48k"):
        blend(base, v1, 0.5, tmp_path / "y.pth")
    assert {p: p.read_bytes() for p in before} == before
    assert not (tmp_path / "c.safetensors").exists() and not (tmp_path / "x.pth").exists()


def build_synthesizer_d():
    from webui_lora.rvc.models import build_discriminator

    return build_discriminator("v2")
