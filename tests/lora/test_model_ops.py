"""Model-level behaviour: target selection, several adapters, strengths, merge-and-unload."""

import pytest
import torch

from lora_core import (AdapterStateError, LoRAConfig, NonFiniteMergeError, TargetNotFoundError, adapter_names,
                       delete_adapter, find_targets, inject_lora, lora_layers, mark_only_lora_trainable,
                       merge_and_unload, merge_lora, set_adapter_enabled, set_adapter_strength, unload_lora,
                       unmerge_lora)
from lora_models import assert_close, decoder_inputs, tiny_decoder

UPS = ["ups.0", "ups.1"]
RESBLOCKS = [f"resblocks.{i}" for i in range(4)]


def test_original_rvc_lora_config_works_as_written():
    model = tiny_decoder()
    wrapped = inject_lora(model, LoRAConfig(r=8, lora_alpha=16, target_modules=["ups", "resblocks"]))
    assert wrapped == UPS + RESBLOCKS


@pytest.mark.parametrize("targets, expected", [
    (["conv_pre"], ["conv_pre"]),
    (["ups.1"], ["ups.1"]),
    (r"resblocks\.[02]", ["resblocks.0", "resblocks.2"]),
    ("all", ["emb_g", "emb_phone", "conv_pre", "cond"] + UPS + RESBLOCKS + ["conv_post"]),
])
def test_target_selection(targets, expected):
    assert find_targets(tiny_decoder(), LoRAConfig(target_modules=targets)) == expected


def test_exclude_and_patterns():
    config = LoRAConfig(r=4, lora_alpha=4, target_modules=["ups", "resblocks"], exclude_modules=["resblocks.3"],
                        rank_pattern={r"ups\.\d": 2}, alpha_pattern={"resblocks.0": 8})
    model = tiny_decoder()
    inject_lora(model, config)
    layers = dict(lora_layers(model))
    assert "resblocks.3" not in layers
    assert layers["ups.0"].rank("default") == 2 and layers["resblocks.1"].rank("default") == 4
    assert layers["resblocks.0"].scaling["default"] == 2.0 and layers["ups.0"].scaling["default"] == 2.0


def test_pattern_matching_nothing_lists_what_exists():
    with pytest.raises(TargetNotFoundError) as info:
        inject_lora(tiny_decoder(), LoRAConfig(target_modules=["upsamplers"]))
    assert "'upsamplers'" in str(info.value) and "ups" in str(info.value) and "resblocks" in str(info.value)


def test_adapters_add_scale_and_switch():
    phone, sid = decoder_inputs()
    model = tiny_decoder()
    with torch.no_grad():
        base = model(phone, sid)
    inject_lora(model, LoRAConfig(r=2, target_modules="all", init_lora_weights=False), "a")
    inject_lora(model, LoRAConfig(r=3, target_modules=["ups"], init_lora_weights=False), "b")
    assert adapter_names(model) == ["a", "b"]
    with torch.no_grad():
        both = model(phone, sid)
        set_adapter_enabled(model, "b", False)
        only_a = model(phone, sid)
        set_adapter_strength(model, "a", 0.0)
        assert torch.equal(model(phone, sid), base), "strength 0 must be bit-identical to the base"
        set_adapter_strength(model, "a", -1.0)
        negative = model(phone, sid)
        set_adapter_enabled(model, "b", True)
        set_adapter_strength(model, "a", 1.0)
        assert_close(model(phone, sid), both)
    assert not torch.allclose(only_a, both) and not torch.allclose(negative, only_a)


def test_strengths_add_linearly_on_one_layer():
    model = tiny_decoder()
    inject_lora(model, LoRAConfig(r=2, target_modules=["ups.0"], init_lora_weights=False), "a")
    layer = dict(lora_layers(model))["ups.0"]
    one = layer.delta_weight("a").detach()
    set_adapter_strength(model, "a", -0.5)
    assert_close(layer.delta_weight("a").detach(), -0.5 * one)


@pytest.mark.parametrize("style", ["legacy", "parametrized", "plain"])
def test_merge_and_unload_gives_base_keys_and_same_outputs(style):
    phone, sid = decoder_inputs()
    base_keys = {k: v.shape for k, v in tiny_decoder(style).state_dict().items()}
    model = tiny_decoder(style)
    inject_lora(model, LoRAConfig(r=2, target_modules="all", init_lora_weights=False), "a")
    inject_lora(model, LoRAConfig(r=2, target_modules=["resblocks"], init_lora_weights=False), "b")
    set_adapter_strength(model, "b", 0.7)
    with torch.no_grad():
        unmerged = model(phone, sid)
        merge_and_unload(model)
        assert_close(model(phone, sid), unmerged)
    assert {k: v.shape for k, v in model.state_dict().items()} == base_keys
    assert not list(lora_layers(model))


def test_unload_without_merge_restores_base():
    phone, sid = decoder_inputs()
    model = tiny_decoder()
    with torch.no_grad():
        base = model(phone, sid)
    inject_lora(model, LoRAConfig(r=2, target_modules="all", init_lora_weights=False))
    merge_lora(model)
    unload_lora(model)
    with torch.no_grad():
        assert torch.equal(model(phone, sid), base)


def test_non_finite_merge_refuses_and_names_module():
    model = tiny_decoder()
    inject_lora(model, LoRAConfig(r=2, target_modules=["ups", "resblocks"], init_lora_weights=False))
    layer = dict(lora_layers(model))["resblocks.2"]
    with torch.no_grad():
        layer.lora_B["default"][0, 0, 0] = float("inf")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(NonFiniteMergeError, match=r"resblocks\.2"):
        merge_lora(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(layer.merged_adapters for _, layer in lora_layers(model))


def test_merged_state_rules():
    model = tiny_decoder()
    inject_lora(model, LoRAConfig(r=2, target_modules=["ups"]), "a")
    merge_lora(model)
    with pytest.raises(AdapterStateError):
        set_adapter_strength(model, "a", 0.5)
    with pytest.raises(AdapterStateError):
        merge_lora(model)
    with pytest.raises(AdapterStateError):
        delete_adapter(model, "a")
    unmerge_lora(model)
    delete_adapter(model, "a")
    assert adapter_names(model) == []
    with pytest.raises(AdapterStateError):
        set_adapter_strength(model, "a", 1.0)


def test_only_lora_is_trainable():
    model = tiny_decoder()
    inject_lora(model, LoRAConfig(r=2, target_modules=["ups"]), "a")
    count = mark_only_lora_trainable(model, extra_trainable=[r"^emb_g\.weight$"])
    expected = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n) + model.emb_g.weight.numel()
    assert count == expected
    assert model.emb_g.weight.requires_grad and not model.conv_pre.weight.requires_grad


def test_invalid_adapter_name():
    with pytest.raises(ValueError):
        inject_lora(tiny_decoder(), LoRAConfig(target_modules=["ups"]), "my.adapter")


def test_wrapped_layers_still_answer_base_attributes():
    model = tiny_decoder()
    inject_lora(model, LoRAConfig(r=2, target_modules="all"))
    assert model.emb_phone.in_features == 6 and model.ups[0].stride == (2,)
    assert model.emb_g.weight is model.emb_g.base_layer.weight
    with pytest.raises(AttributeError):
        model.ups[0].no_such_attribute
