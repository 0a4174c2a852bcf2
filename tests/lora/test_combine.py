"""Adapter arithmetic: exact where it must be exact, optimal where it truncates, seeded where random."""

import pytest
import torch
from torch import nn

from lora_core import (Adapter, LoRAConfig, ModuleAdapter, adapter_from_model, apply_adapter, combine_adapters,
                       extract_adapter, inject_lora, merge_and_unload, resize_adapter, set_adapter_strength,
                       svd_factors, svd_factors_of_product)
from lora_models import assert_close, decoder_inputs, tiny_decoder


def trained_adapter(seed: int, r: int = 2, targets=("ups", "resblocks", "emb_phone", "emb_g")) -> Adapter:
    torch.manual_seed(seed)
    model = tiny_decoder()
    inject_lora(model, LoRAConfig(r=r, lora_alpha=2 * r, target_modules=list(targets), init_lora_weights=False))
    return adapter_from_model(model, extra={"version": "v2"})


def test_cat_equals_weighted_sum_exactly():
    a, b = trained_adapter(1), trained_adapter(2, r=3, targets=("ups",))
    combined = combine_adapters([a, b], [0.5, -1.5], method="cat")
    assert combined.modules["ups.0"].rank == 5 and combined.modules["resblocks.0"].rank == 2
    for name, mod in combined.modules.items():
        expected = 0.5 * a.modules[name].delta() + (-1.5 * b.modules[name].delta() if name in b.modules else 0)
        assert_close(mod.delta(), expected, rel=1e-6)
    assert combined.extra == {"version": "v2"}


def test_cat_adapter_behaves_like_both_loaded():
    phone, sid = decoder_inputs()
    a, b = trained_adapter(1), trained_adapter(2)
    both = tiny_decoder()
    apply_adapter(both, a, "a")
    apply_adapter(both, b, "b")
    set_adapter_strength(both, "b", 0.25)
    single = tiny_decoder()
    apply_adapter(single, combine_adapters([a, b], [1.0, 0.25], method="cat"), "ab")
    with torch.no_grad():
        assert_close(single(phone, sid), both(phone, sid))


@pytest.mark.parametrize("method", ["linear", "svd"])
def test_svd_without_truncation_is_exact(method):
    a, b = trained_adapter(1), trained_adapter(2)
    combined = combine_adapters([a, b], [1.0, 2.0], method=method)
    for name, mod in combined.modules.items():
        assert mod.rank <= a.modules[name].rank + b.modules[name].rank
        assert_close(mod.delta(), a.modules[name].delta() + 2.0 * b.modules[name].delta())


def test_svd_truncation_is_optimal():
    torch.manual_seed(0)
    delta = torch.randn(2, 6, 15)
    left, right = svd_factors(delta, rank=3)
    singular = torch.linalg.svdvals(delta.double())
    expected_error = singular[:, 3:].pow(2).sum(-1).sqrt()
    actual_error = torch.linalg.matrix_norm((delta - left @ right).double())
    assert torch.allclose(actual_error, expected_error, rtol=1e-5)


@pytest.mark.parametrize("rank, energy", [(3, None), (None, 0.9), (None, None), (20, None)])
def test_factored_svd_equals_svd_of_the_product(rank, energy):
    """Resize and SVD combine re-factor from the factors alone; the result is the dense SVD's."""
    torch.manual_seed(1)
    left, right = torch.randn(3, 40, 6), torch.randn(3, 6, 70)
    dense = svd_factors(left @ right, rank, energy)
    factored = svd_factors_of_product(left, right, rank, energy)
    assert factored[0].shape == dense[0].shape and factored[1].shape == dense[1].shape
    torch.testing.assert_close(factored[0] @ factored[1], dense[0] @ dense[1], rtol=1e-4, atol=1e-4)


def test_energy_threshold_picks_smallest_rank():
    U, _ = torch.linalg.qr(torch.randn(8, 8))
    V, _ = torch.linalg.qr(torch.randn(8, 8))
    delta = (U * torch.tensor([10.0, 5.0, 1.0, 0.1, 0, 0, 0, 0])) @ V.T
    assert svd_factors(delta[None], energy=0.99)[0].shape[-1] == 2
    assert svd_factors(delta[None], energy=0.9999)[0].shape[-1] == 3
    assert svd_factors(delta[None])[0].shape[-1] == 4


def test_resize_lowers_rank_and_keeps_the_main_direction():
    adapter = trained_adapter(3, r=4)
    small = resize_adapter(adapter, rank=2)
    for name, mod in small.modules.items():
        assert mod.rank <= 2
        full = adapter.modules[name].delta()
        assert (full - mod.delta()).norm() < full.norm()


def rank_r_state(r: int, seed: int) -> tuple:
    """A fine-tuned state whose every weight delta is truly rank r per group."""
    donor = tiny_decoder()
    torch.manual_seed(seed)
    inject_lora(donor, LoRAConfig(r=r, lora_alpha=r, target_modules="all", init_lora_weights=False))
    truth = adapter_from_model(donor)
    merge_and_unload(donor)
    return donor.state_dict(), truth


@pytest.mark.parametrize("style", ["legacy", "parametrized", "plain"])
def test_extraction_of_rank_r_delta_is_exact(style):
    base = tiny_decoder(style)
    tuned_state, truth = rank_r_state(r=2, seed=4)
    extracted = extract_adapter(base, tuned_state, rank=2)
    assert set(extracted.modules) == set(truth.modules)
    for name, mod in extracted.modules.items():
        assert mod.rank <= 2
        assert_close(mod.delta(), truth.modules[name].delta(), rel=1e-4)
    phone, sid = decoder_inputs()
    tuned = tiny_decoder()
    tuned.load_state_dict(tuned_state)
    apply_adapter(base, extracted)
    with torch.no_grad():
        assert_close(base(phone, sid), tuned(phone, sid), rel=1e-4)


def test_extraction_skips_unchanged_layers_and_respects_targets():
    base = tiny_decoder()
    tuned_state, _ = rank_r_state(r=1, seed=5)
    tuned_state = dict(tuned_state)
    for key in list(tuned_state):
        if key.startswith("conv_pre."):
            tuned_state[key] = base.state_dict()[key]
    assert "conv_pre" not in extract_adapter(base, tuned_state, rank=1).modules
    assert set(extract_adapter(base, tuned_state, rank=1, target_modules=["ups"]).modules) == {"ups.0", "ups.1"}


def test_grouped_conv_factors_stay_block_diagonal():
    conv = nn.Conv1d(6, 9, 3, groups=3)
    model = nn.Sequential(conv)
    inject_lora(model, LoRAConfig(r=2, init_lora_weights=False))
    mod = adapter_from_model(model).modules["0"]
    refactored = mod.with_factors(*svd_factors(mod.grouped_delta()))
    assert_close(refactored.delta(), mod.delta())


def test_ties_and_dare():
    a, b = trained_adapter(1), trained_adapter(2)
    single = combine_adapters([a], [1.0], method="ties", density=1.0)
    for name, mod in single.modules.items():
        assert_close(mod.delta(), a.modules[name].delta(), rel=1e-5)
    dare_full = combine_adapters([a, b], method="dare_linear", density=1.0)
    linear = combine_adapters([a, b], method="linear")
    for name in linear.modules:
        assert_close(dare_full.modules[name].delta(), linear.modules[name].delta(), rel=1e-5)
    first = combine_adapters([a, b], method="dare_ties", density=0.5, seed=7)
    again = combine_adapters([a, b], method="dare_ties", density=0.5, seed=7)
    other = combine_adapters([a, b], method="dare_ties", density=0.5, seed=8)
    assert torch.equal(first.modules["ups.0"].delta(), again.modules["ups.0"].delta())
    assert not torch.equal(first.modules["ups.0"].delta(), other.modules["ups.0"].delta())
    ties = combine_adapters([a, b], method="ties", density=0.3)
    delta = ties.modules["resblocks.1"].delta()
    assert torch.isfinite(delta).all() and delta.abs().sum() > 0


def test_ties_elects_sign_and_averages_agreeing_entries():
    one = ModuleAdapter.from_factors("linear", (1, 3), 1, torch.tensor([[[1.0]]]), torch.tensor([[[2.0, -1.0, 4.0]]]))
    two = ModuleAdapter.from_factors("linear", (1, 3), 1, torch.tensor([[[1.0]]]), torch.tensor([[[4.0, 3.0, -1.0]]]))
    merged = combine_adapters([Adapter({"x": one}), Adapter({"x": two})], method="ties", density=1.0)
    assert_close(merged.modules["x"].delta(), torch.tensor([[3.0, 3.0, 4.0]]), rel=1e-5)


def test_mismatched_layers_refuse():
    a = trained_adapter(1)
    other = Adapter({"ups.0": ModuleAdapter.from_factors("conv_transpose1d", (8, 2, 4), 1,
                                                         torch.zeros(1, 8, 1), torch.zeros(1, 1, 8))})
    with pytest.raises(Exception, match="ups.0"):
        combine_adapters([a, other], method="cat")
