"""RVC's training configs as data: the file RVC picks, and values that hold together."""

import math

import pytest

from webui_lora.rvc.configs import LAYOUTS, config_name, layout, rvc_config, synthesizer_config
from webui_lora.rvc.models import build_synthesizer


@pytest.mark.parametrize("version, sr, name", [("v1", "40k", "v1/40k"), ("v2", 40000, "v1/40k"),
                                               ("v2", "48k", "v2/48k"), ("v1", 32000, "v1/32k")])
def test_the_webui_takes_v1_for_every_40k_model(version, sr, name):
    assert config_name(version, sr) == name


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_every_config_runs_at_100_frames_a_second(name):
    rate = LAYOUTS[name]
    assert math.prod(rate.upsample_rates) == rate.hop_length == rate.sr // 100
    assert rate.segment_size % rate.hop_length == 0
    config = rvc_config(*name.split("/"))
    assert config["data"]["sampling_rate"] == rate.sr and config["train"]["segment_size"] == rate.segment_size
    assert (config["train"]["c_mel"], config["train"]["lr_decay"], config["train"]["betas"]) == (45, 0.999875, [0.8, 0.99])


def test_known_values_and_a_fresh_full_size_model():
    assert (layout("v2", "48k").segment_frames, layout("v1", "48k").segment_frames, layout("v2", "32k").spec_channels) \
        == (36, 24, 513)
    assert rvc_config("v2", "40k")["data"]["n_mel_channels"] == 125
    import torch
    with torch.device("meta"):
        model = build_synthesizer(synthesizer_config("v2", 40000), "v2", True)
    assert sum(p.numel() for p in model.parameters()) == 36_458_818  # RVC's full v2 40k generator
    with pytest.raises(ValueError, match="no v1 config for 44100 Hz"):
        layout("v1", 44100)
