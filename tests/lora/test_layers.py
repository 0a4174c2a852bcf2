"""Every layer type, geometry and weight-norm style: a fresh adapter changes nothing, the unmerged
forward equals the merged layer, merge/unmerge restores the base, only LoRA gets gradients, and a
saved adapter loads back to the same outputs."""

import pytest
import torch
from hypothesis import example, given
from torch import nn

from lora_core import (LoRAConfig, fold_weight_norm, inject_lora, load_adapter, lora_layers,
                       mark_only_lora_trainable, merge_lora, save_adapter, unmerge_lora)
from lora_models import (WEIGHT_NORM_STYLES, assert_close, conv1d_cases, conv_transpose1d_cases, embedding_cases,
                         linear_cases, model_around, weight_tensors_of, with_weight_norm)


def check_layer_contract(layer, x, style, tmp_path):
    style_name, dim = style
    model, base, reference = (model_around(layer, style_name, dim) for _ in range(3))
    with torch.no_grad():
        expected_base = base(x)

    inject_lora(model, LoRAConfig(r=2, lora_alpha=3))
    with torch.no_grad():
        assert torch.equal(model(x), expected_base), "fresh adapter (B = 0) must be bit-identical"
    assert torch.equal(model(x).detach(), expected_base)

    inject_lora(model, LoRAConfig(r=3, lora_alpha=5, init_lora_weights=False), adapter_name="trained")
    with torch.no_grad():
        unmerged_weight_path = model(x)
    unmerged_factored_path = model(x).detach()
    assert_close(unmerged_factored_path, unmerged_weight_path)
    assert not torch.equal(unmerged_weight_path, expected_base)

    before_merge = weight_tensors_of(model)
    merge_lora(model)
    with torch.no_grad():
        assert_close(model(x), unmerged_weight_path)
    unmerge_lora(model)
    after = weight_tensors_of(model)
    assert all(torch.equal(before_merge[k], after[k]) for k in before_merge), "unmerge must restore exactly"

    mark_only_lora_trainable(model, ["trained"])
    output = model(x)
    (output.float() ** 2).sum().backward()
    for name, param in model.named_parameters():
        if name.endswith((".lora_A.trained", ".lora_B.trained")):
            assert param.grad is not None, name
        else:
            assert param.grad is None, name
    assert model[0].lora_B["trained"].grad.abs().sum() > 0

    path = tmp_path / "adapter.safetensors"
    save_adapter(model, path, "trained")
    load_adapter(reference, path, "trained")
    with torch.no_grad():
        assert torch.equal(reference(x), unmerged_weight_path)


@given(conv1d_cases())
@example((nn.Conv1d(8, 8, 11, dilation=5, padding=25), torch.randn(1, 8, 40), ("legacy", 0)))
@example((nn.Conv1d(8, 16, 5, padding=2), torch.randn(2, 8, 30), ("parametrized", 0)))
def test_conv1d(tmp_path_factory, case):
    check_layer_contract(*case, tmp_path_factory.mktemp("conv1d"))


@given(conv_transpose1d_cases())
@example((nn.ConvTranspose1d(16, 8, 16, stride=10, padding=3), torch.randn(1, 16, 7), ("legacy", 0)))
@example((nn.ConvTranspose1d(16, 8, 4, stride=2, padding=1), torch.randn(2, 16, 9), ("parametrized", 0)))
def test_conv_transpose1d(tmp_path_factory, case):
    check_layer_contract(*case, tmp_path_factory.mktemp("convt"))


@given(linear_cases())
def test_linear(tmp_path_factory, case):
    check_layer_contract(*case, tmp_path_factory.mktemp("linear"))


@given(embedding_cases())
def test_embedding(tmp_path_factory, case):
    check_layer_contract(*case, tmp_path_factory.mktemp("embedding"))


def test_conv_transpose_output_size_argument():
    model = nn.Sequential(nn.ConvTranspose1d(4, 3, 4, stride=3))
    x = torch.randn(1, 4, 5)
    inject_lora(model, LoRAConfig(r=2, init_lora_weights=False))
    layer = model[0]
    with torch.no_grad():
        weight_path = layer(x, [1, 3, 17])
    factored = layer(x, [1, 3, 17]).detach()
    assert weight_path.shape == (1, 3, 17)
    assert_close(factored, weight_path)


def test_half_precision_base_with_float32_adapter():
    model = nn.Sequential(nn.Conv1d(4, 4, 3, padding=1)).to(torch.bfloat16)
    x = torch.randn(1, 4, 10, dtype=torch.bfloat16)
    inject_lora(model, LoRAConfig(r=2, init_lora_weights=False))
    with torch.no_grad():
        assert model(x).dtype == torch.bfloat16
    assert model(x).dtype == torch.bfloat16


def test_dropout_only_in_training():
    model = nn.Sequential(nn.Linear(6, 6))
    x = torch.randn(4, 6)
    inject_lora(model, LoRAConfig(r=2, lora_dropout=0.5, init_lora_weights=False))
    model.eval()
    with torch.no_grad():
        first, second = model(x), model(x)
    assert torch.equal(first, second)
    model.train()
    torch.manual_seed(1)
    a = model(x)
    torch.manual_seed(2)
    b = model(x)
    assert not torch.equal(a, b)


@pytest.mark.parametrize("layer", [nn.Conv1d(2, 2, 3), nn.Linear(2, 2)])
def test_every_wrapper_keeps_base_layer_name(layer):
    model = nn.Sequential(layer)
    inject_lora(model, LoRAConfig(r=1))
    assert [name for name, _ in lora_layers(model)] == ["0"]
    assert "0.base_layer.weight" in model.state_dict()


@pytest.mark.parametrize("style, dim", WEIGHT_NORM_STYLES)
def test_fold_weight_norm_keeps_the_function_and_leaves_plain_weights(style, dim):
    torch.manual_seed(0)
    model = nn.Sequential(with_weight_norm(nn.Conv1d(4, 6, 3, padding=1), style, dim),
                          with_weight_norm(nn.ConvTranspose1d(6, 2, 4, 2, padding=1), style, dim))
    x = torch.randn(2, 4, 9)
    before = model(x)
    assert fold_weight_norm(model) == (0 if style == "plain" else 2)
    assert sorted(model.state_dict()) == ["0.bias", "0.weight", "1.bias", "1.weight"]
    torch.testing.assert_close(model(x), before, rtol=0, atol=0)
