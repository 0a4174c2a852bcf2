"""The synthesizers reproduce RVC's own outputs and have RVC's exact keys and parameter counts."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from webui_lora.rvc.checkpoints import load_model
from webui_lora.rvc.models import (
    RVC_CLASS_NAMES,
    SynthesizerV2F0,
    build_discriminator,
    build_synthesizer,
    synthesizer_class,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rvc_parity"
CASES = ["v1_f0_48k", "v2_f0_40k", "v2_nof0_32k"]
pytestmark = pytest.mark.usefixtures("one_thread")

# Full-size configs as RVC ships them (configs/v1/*.json, configs/v2/*.json; v2 40k uses v1 40k).
LAYOUTS = {
    "v1_32k": (513, [10, 4, 2, 2, 2], [16, 16, 4, 4, 4], 32000),
    "v1_40k": (1025, [10, 10, 2, 2], [16, 16, 4, 4], 40000),
    "v1_48k": (1025, [10, 6, 2, 2, 2], [16, 16, 4, 4, 4], 48000),
    "v2_32k": (513, [10, 8, 2, 2], [20, 16, 4, 4], 32000),
    "v2_40k": (1025, [10, 10, 2, 2], [16, 16, 4, 4], 40000),
    "v2_48k": (1025, [12, 10, 2, 2], [24, 20, 4, 4], 48000),
}
# (full G with enc_q, inference model, no-f0 inference model), reference §1.7
PARAM_COUNTS = {
    "v1_32k": (36_294_338, 27_471_170, 27_402_432),
    "v1_40k": (36_360_514, 27_439_042, 27_367_616),
    "v1_48k": (36_400_834, 27_479_362, 27_402_432),
    "v2_32k": (36_880_706, 28_057_538, 27_990_208),
    "v2_40k": (36_458_818, 27_537_346, 27_465_920),
    "v2_48k": (37_638_466, 28_716_994, 28_645_568),
}


def full_config(name):
    spec, rates, kernels, sr = LAYOUTS[name]
    return [spec, 32, 192, 192, 768, 2, 6, 3, 0, "1", [3, 7, 11], [[1, 3, 5]] * 3, rates, 512, kernels, 109, 256, sr]


def on_meta(build, *args, **kwargs):
    with torch.device("meta"):
        return build(*args, **kwargs)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def fixture_inputs(case):
    arrays = np.load(FIXTURES / case / "inputs.npz")
    return {key: torch.from_numpy(np.asarray(arrays[key])) for key in arrays.files}


def run_infer(model, inputs, f0):
    torch.manual_seed(int(inputs["seed"]))
    with torch.no_grad():
        if f0:
            out = model.infer(inputs["phone"], inputs["phone_lengths"], inputs["pitch"], inputs["nsff0"], inputs["sid"])
        else:
            out = model.infer(inputs["phone"], inputs["phone_lengths"], inputs["sid"])
    return out[0]


@pytest.mark.parametrize("case", CASES)
def test_reproduces_rvc_audio_built_like_rvc(case):
    """Built the way RVC's inference builds it (fixture README): class from config, no enc_q, fp16 into fp32."""
    cpt = torch.load(FIXTURES / case / "model.pth", map_location="cpu", weights_only=True)
    meta = json.loads((FIXTURES / case / "case.json").read_text())
    model = synthesizer_class(cpt["version"], cpt["f0"])(*cpt["config"], is_half=False)
    del model.enc_q
    model.load_state_dict(cpt["weight"], strict=True)  # stricter than RVC: every key must match
    model.eval().float()

    audio = run_infer(model, fixture_inputs(case), cpt["f0"])
    expected = np.load(FIXTURES / case / "expected.npz")["audio"]

    assert audio.shape == (1, 1, meta["samples"])
    np.testing.assert_allclose(audio[0, 0].numpy(), expected, atol=1e-4, rtol=0)
    # The errors are float rounding, far below the tolerance (some fixtures are quiet).
    assert np.abs(audio[0, 0].numpy() - expected).max() <= 1e-3 * np.abs(expected).max()


@pytest.mark.parametrize("case", CASES)
def test_reproduces_rvc_audio_through_load_model(case):
    loaded = load_model(FIXTURES / case / "model.pth")
    meta = json.loads((FIXTURES / case / "case.json").read_text())
    assert (loaded.version, int(loaded.f0), loaded.sr) == (meta["version"], meta["f0"], meta["sr"])
    assert loaded.kind == "inference"
    assert loaded.config == meta["config"]
    assert not hasattr(loaded.synthesizer, "enc_q") and not loaded.synthesizer.training

    audio = run_infer(loaded.synthesizer, fixture_inputs(case), loaded.f0)
    expected = np.load(FIXTURES / case / "expected.npz")["audio"]
    np.testing.assert_allclose(audio[0, 0].numpy(), expected, atol=1e-4, rtol=0)


def test_another_seed_gives_other_audio():
    """The prior and NSF draws are live: the seed must matter, or parity above would be luck."""
    case = "v2_f0_40k"
    model = load_model(FIXTURES / case / "model.pth").synthesizer
    inputs = fixture_inputs(case)
    first = run_infer(model, inputs, True)
    inputs["seed"] = inputs["seed"] + 1
    assert not torch.allclose(first, run_infer(model, inputs, True), atol=1e-4)


@pytest.mark.parametrize("case", CASES)
def test_fixture_key_set_is_exactly_ours(case):
    cpt = torch.load(FIXTURES / case / "model.pth", map_location="cpu", weights_only=True)
    model = on_meta(build_synthesizer, cpt["config"], cpt["version"], cpt["f0"], inference=True)
    ours = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    theirs = {key: tuple(value.shape) for key, value in cpt["weight"].items()}
    assert ours == theirs


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_full_size_parameter_and_key_counts(name):
    version = name[:2]
    full_g, inference, nono = PARAM_COUNTS[name]
    f0_model = on_meta(build_synthesizer, full_config(name), version, True)
    nono_model = on_meta(build_synthesizer, full_config(name), version, False, inference=True)

    assert n_params(f0_model) == full_g
    assert n_params(f0_model) - n_params(f0_model.enc_q) == inference
    assert n_params(nono_model) == nono

    five_stages = len(LAYOUTS[name][1]) == 5
    keys = f0_model.state_dict()
    assert sum(1 for key in keys if key.startswith("enc_q.")) == 103
    assert sum(1 for key in keys if not key.startswith("enc_q.")) == (516 if five_stages else 457)
    assert len(nono_model.state_dict()) == (503 if five_stages else 446)


def test_v2_40k_key_shapes_match_reference_table():
    model = on_meta(build_synthesizer, full_config("v2_40k"), "v2", True, inference=True)
    shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert shapes["enc_p.emb_phone.weight"] == (192, 768)
    assert shapes["enc_p.emb_pitch.weight"] == (256, 192)
    assert shapes["enc_p.encoder.attn_layers.5.conv_q.weight"] == (192, 192, 1)
    assert shapes["enc_p.encoder.attn_layers.0.emb_rel_k"] == (1, 21, 96)
    assert shapes["enc_p.encoder.norm_layers_2.5.gamma"] == (192,)
    noise_convs = [shapes[f"dec.noise_convs.{i}.weight"] for i in range(4)]
    assert noise_convs == [(256, 1, 80), (128, 1, 8), (64, 1, 4), (32, 1, 1)]
    assert shapes["dec.ups.0.weight_g"] == (512, 1, 1) and shapes["dec.ups.0.weight_v"] == (512, 256, 16)
    assert shapes["dec.resblocks.11.convs2.2.weight_v"] == (32, 32, 11)
    assert shapes["dec.conv_post.weight"] == (1, 32, 7) and "dec.conv_post.bias" not in shapes
    assert shapes["dec.m_source.l_linear.weight"] == (1, 1)
    assert shapes["flow.flows.6.enc.cond_layer.weight_v"] == (1152, 256, 1)
    assert shapes["flow.flows.0.enc.res_skip_layers.2.weight_v"] == (192, 192, 1)
    assert shapes["emb_g.weight"] == (109, 256)
    assert not any(key.startswith(("flow.flows.1.", "flow.flows.3.")) for key in shapes)


@pytest.mark.parametrize("version, total, count", [("v1", 54_968_286, 7), ("v2", 71_410_594, 9)])
def test_discriminator_parameter_counts_and_keys(version, total, count):
    mpd = on_meta(build_discriminator, version)
    assert n_params(mpd) == total
    assert len(mpd.discriminators) == count
    assert n_params(mpd.discriminators[0]) == 5_641_362
    assert all(n_params(d) == 8_221_154 for d in mpd.discriminators[1:])
    keys = set(mpd.state_dict())
    assert {"discriminators.0.convs.0.weight_g", "discriminators.0.conv_post.weight_v"} <= keys
    assert "discriminators.1.convs.4.bias" in keys


def test_rvc_class_names_and_half_flag():
    assert RVC_CLASS_NAMES["SynthesizerTrnMs768NSFsid"] is SynthesizerV2F0
    config = full_config("v2_40k")
    config[-1] = "40k"
    model = on_meta(RVC_CLASS_NAMES["SynthesizerTrnMs768NSFsid"], *config, is_half=True)
    assert model.sample_rate == 40000
    nono = RVC_CLASS_NAMES["SynthesizerTrnMs256NSFsid_nono"]
    on_meta(nono, *full_config("v1_48k"), is_half=False, use_spectral_norm=False)  # RVC's trainer passes extras
