"""Checkpoint I/O: every RVC file kind loads, small models save as RVC writes them, bad files get clear errors."""

import os
from collections import OrderedDict

import pytest
import torch
from torch.nn.utils import parametrizations, remove_weight_norm
from torch.nn.utils.weight_norm import WeightNorm

from builders import TINY, tiny_config, tiny_synthesizer
from webui_lora.rvc.checkpoints import (
    ArchitectureError,
    CheckpointError,
    MetadataConflictError,
    UnreadableCheckpointError,
    UnsafeCheckpointError,
    infer_config,
    load_discriminator,
    load_model,
    save_small_model,
)
from webui_lora.rvc.models import build_discriminator, build_synthesizer

FRAMES = 12
pytestmark = pytest.mark.usefixtures("one_thread")


def synthesize(model, f0, seed=7):
    gen = torch.Generator().manual_seed(123)
    width = model.enc_p.emb_phone.in_features
    phone = torch.randn(1, FRAMES, width, generator=gen)
    lengths = torch.tensor([FRAMES])
    sid = torch.tensor([1])
    torch.manual_seed(seed)
    with torch.no_grad():
        if f0:
            pitch = torch.randint(1, 255, (1, FRAMES), generator=gen)
            nsff0 = torch.rand(1, FRAMES, generator=gen) * 300 + 80
            nsff0[:, 3:5] = 0
            return model.infer(phone, lengths, pitch, nsff0, sid)[0]
        return model.infer(phone, lengths, sid)[0]


def fp16_copy(model):
    """The model as its fp16 small file holds it (values rounded to half), back in fp32."""
    version, f0 = model.version, model.uses_f0
    copy = build_synthesizer(model.config, version, f0)
    copy.load_state_dict({key: value.half().float() for key, value in model.state_dict().items()})
    return copy.eval()


def small_file(tmp_path, name, **save_kwargs):
    model = tiny_synthesizer(name)
    version, f0 = TINY[name][:2]
    path = tmp_path / f"{name}.pth"
    save_small_model(path, model, tiny_config(name), version=version, f0=f0, **save_kwargs)
    return model, path


def to_parametrized(model):
    """Switch every legacy weight-norm layer to torch's parametrized form, as Applio trains them."""
    for module in model.modules():
        if any(isinstance(hook, WeightNorm) for hook in module._forward_pre_hooks.values()):
            remove_weight_norm(module)
            parametrizations.weight_norm(module)
    return model


# ----------------------------------------------------------------------------------------- small models


@pytest.mark.parametrize("name", ["v2_f0_40k", "v2_nof0_32k"])
def test_small_model_round_trip_gives_identical_audio(tmp_path, name):
    model, path = small_file(tmp_path, name, info="10epoch")
    loaded = load_model(path)
    f0 = TINY[name][1]
    assert torch.equal(synthesize(loaded.synthesizer, f0), synthesize(fp16_copy(model), f0))
    assert (loaded.version, loaded.f0, loaded.sr, loaded.info, loaded.kind) == (
        TINY[name][0],
        f0,
        TINY[name][-1],
        "10epoch",
        "inference",
    )
    assert loaded.config == tiny_config(name)
    assert not hasattr(loaded.synthesizer, "enc_q") and not loaded.synthesizer.training

    again = tmp_path / "again.pth"
    save_small_model(again, loaded.synthesizer, loaded.config, version=loaded.version, f0=loaded.f0, info=loaded.info)
    first = torch.load(path, weights_only=True)["weight"]
    second = torch.load(again, weights_only=True)["weight"]
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_small_model_is_written_as_rvc_writes_it(tmp_path):
    model, path = small_file(tmp_path, "v2_f0_40k", info="hello")
    cpt = torch.load(path, weights_only=True)
    assert isinstance(cpt, OrderedDict)
    assert list(cpt) == ["weight", "config", "info", "sr", "f0", "version"]
    assert (cpt["info"], cpt["sr"], cpt["f0"], cpt["version"]) == ("hello", "40k", 1, "v2")
    assert cpt["config"] == tiny_config("v2_f0_40k")
    expected = {key for key in model.state_dict() if "enc_q" not in key}
    assert set(cpt["weight"]) == expected
    assert all(value.dtype == torch.float16 for value in cpt["weight"].values())
    assert [entry for entry in os.listdir(tmp_path) if entry != path.name] == []  # no temp file left


def test_fp32_small_file_loads_exactly(tmp_path):
    model = tiny_synthesizer("v2_f0_40k")
    path = tmp_path / "fp32.pth"
    weight = {key: value for key, value in model.state_dict().items() if "enc_q" not in key}
    torch.save(
        OrderedDict(weight=weight, config=tiny_config("v2_f0_40k"), info="", sr="40k", f0=1, version="v2"), path
    )
    loaded = load_model(path)
    assert torch.equal(synthesize(loaded.synthesizer, True), synthesize(model, True))


def test_metadata_is_read_off_shapes_when_missing(tmp_path):
    for name in ["v2_f0_40k", "v1_f0_48k", "v2_nof0_32k"]:
        model = tiny_synthesizer(name)
        path = tmp_path / f"{name}.pth"
        torch.save({"weight": {k: v.half() for k, v in model.state_dict().items() if "enc_q" not in k}}, path)
        loaded = load_model(path)
        assert (loaded.version, loaded.f0, loaded.sr) == (TINY[name][0], TINY[name][1], TINY[name][-1])
        assert loaded.config == tiny_config(name)
        assert torch.equal(synthesize(loaded.synthesizer, loaded.f0), synthesize(fp16_copy(model), loaded.f0))


def test_ambiguous_layout_asks_for_the_sample_rate(tmp_path):
    """A no-f0 small model in the 5-stage layout could be v1 32k or v1 48k; only the stored rate tells."""
    model = tiny_synthesizer("v1_nof0_48k")
    path = tmp_path / "bare.pth"
    torch.save({"weight": {k: v for k, v in model.state_dict().items() if "enc_q" not in k}}, path)
    with pytest.raises(CheckpointError, match="sample_rate") as caught:
        load_model(path)
    assert str(path) in str(caught.value)
    assert load_model(path, sample_rate="48k").config == tiny_config("v1_nof0_48k")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"version": "v1"}, "says version 'v1'"),
        ({"f0": 0}, "says f0 = 0"),
        ({"sr": "48k"}, "disagrees on the sample rate"),
    ],
)
def test_contradicting_metadata_is_an_error(tmp_path, change, message):
    _, path = small_file(tmp_path, "v2_f0_40k")
    cpt = torch.load(path, weights_only=True)
    cpt.update(change)
    torch.save(cpt, path)
    with pytest.raises(MetadataConflictError, match=message) as caught:
        load_model(path)
    assert str(path) in str(caught.value)


def test_config_that_does_not_describe_the_weights_is_an_error(tmp_path):
    _, path = small_file(tmp_path, "v2_f0_40k")
    cpt = torch.load(path, weights_only=True)
    cpt["config"][3] = 192
    torch.save(cpt, path)
    with pytest.raises(MetadataConflictError, match="hidden_channels = 192"):
        load_model(path)


# ------------------------------------------------------------------------------ training and pretrained


def test_training_checkpoint_with_enc_q(tmp_path):
    model = tiny_synthesizer("v2_f0_40k")
    optimizer = torch.optim.AdamW(model.parameters(), 1e-4, betas=(0.8, 0.99), eps=1e-9)
    model.emb_g.weight.square().sum().backward()
    optimizer.step()  # so the file carries Adam moments, as a real G_*.pth does
    path = tmp_path / "G_2333333.pth"
    state = {"model": model.state_dict(), "iteration": 7, "optimizer": optimizer.state_dict(), "learning_rate": 1e-4}
    torch.save(state, path)

    loaded = load_model(path)
    assert loaded.kind == "training" and loaded.extra["iteration"] == 7
    assert hasattr(loaded.synthesizer, "enc_q")
    assert (loaded.version, loaded.f0, loaded.sr) == ("v2", True, 40000)
    config = tiny_config("v2_f0_40k")
    assert loaded.config == config  # the 40k training segment happens to be RVC's placeholder, 32 frames
    assert torch.equal(synthesize(loaded.synthesizer, True), synthesize(model, True))


def test_pretrained_base_tells_32k_from_48k_by_its_spectrogram_width(tmp_path):
    """f0G48k-style base without metadata: enc_q's input width (1025 bins) rules out 32k."""
    model = tiny_synthesizer("v1_nof0_48k")
    path = tmp_path / "G48k.pth"
    torch.save({"model": {k: v.half() for k, v in model.state_dict().items()}}, path)
    loaded = load_model(path)
    assert (loaded.kind, loaded.sr, loaded.config[1]) == ("pretrained", 48000, 24)
    assert loaded.config[12] == [10, 6, 2, 2, 2]


def test_applio_parametrized_file_matches_the_legacy_one(tmp_path):
    model, legacy_path = small_file(tmp_path, "v2_f0_40k")
    applio = to_parametrized(tiny_synthesizer("v2_f0_40k"))
    weight = {k: v.half() for k, v in applio.state_dict().items() if "enc_q" not in k}
    assert any(".parametrizations.weight.original0" in key for key in weight)
    path = tmp_path / "applio.pth"
    extra = {"epoch": 3, "step": 30, "embedder_model": "contentvec", "vocoder": "HiFi-GAN", "speakers_id": 1}
    config = tiny_config("v2_f0_40k")
    torch.save(OrderedDict(weight=weight, config=config, sr=40000, f0=True, version="v2", **extra), path)

    loaded = load_model(path)
    assert loaded.weight_norm_keys == "parametrized"
    assert loaded.extra["embedder_model"] == "contentvec"
    legacy = load_model(legacy_path)
    audio, legacy_audio = synthesize(loaded.synthesizer, True), synthesize(legacy.synthesizer, True)
    torch.testing.assert_close(audio, legacy_audio, atol=1e-5, rtol=0)

    resaved = tmp_path / "resaved.pth"
    save_small_model(resaved, applio, loaded.config, version="v2", f0=1)
    resaved_keys = set(torch.load(resaved, weights_only=True)["weight"])
    assert resaved_keys == set(torch.load(legacy_path, weights_only=True)["weight"])


def test_applio_refinegan_is_refused(tmp_path):
    _, path = small_file(tmp_path, "v2_f0_40k")
    cpt = torch.load(path, weights_only=True)
    cpt["vocoder"] = "RefineGAN"
    torch.save(cpt, path)
    with pytest.raises(ArchitectureError, match="RefineGAN"):
        load_model(path)


def test_discriminator_files(tmp_path):
    """D_*.pth / f0D40k.pth: v1 has 7 discriminators. Stored as broadcast scalars to keep the file tiny."""
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in build_discriminator("v1").state_dict().items()}
    state = {key: torch.full((1,), 0.5, dtype=torch.float16).expand(shape) for key, shape in shapes.items()}
    path = tmp_path / "D_100.pth"
    torch.save({"model": state, "iteration": 3, "optimizer": {}, "learning_rate": 1e-4}, path)

    loaded = load_discriminator(path)
    assert (loaded.version, loaded.kind) == ("v1", "training")
    assert torch.all(loaded.discriminator.discriminators[3].conv_post.bias == 0.5)
    with pytest.raises(ArchitectureError, match=r"discriminator checkpoint .*pick the generator"):
        load_model(path)
    _, generator_path = small_file(tmp_path, "v2_f0_40k")
    with pytest.raises(ArchitectureError, match="generator"):
        load_discriminator(generator_path)


def test_infer_config_works_on_a_state_dict():
    model = tiny_synthesizer("v2_nof0_32k")
    assert infer_config(model.state_dict(), kind="training")[-1] == 32000


# ------------------------------------------------------------------------------------------ bad files


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"weight": {"emb_g.weight": torch.zeros(1)}, "info": RunsCode(marker)}, path)
    with pytest.raises(UnsafeCheckpointError, match="system") as caught:
        load_model(path)
    assert str(path) in str(caught.value) and "could run code" in str(caught.value)
    assert not marker.exists()


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("these are not weights")
    with pytest.raises(UnreadableCheckpointError, match="not a PyTorch checkpoint") as caught:
        load_model(path)
    assert str(path) in str(caught.value)


def test_truncated_file(tmp_path):
    _, path = small_file(tmp_path, "v2_f0_40k")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableCheckpointError, match="truncated or damaged") as caught:
        load_model(path)
    assert str(path) in str(caught.value)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(UnreadableCheckpointError, match="no such file"):
        load_model(tmp_path / "absent.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(UnreadableCheckpointError, match="is empty"):
        load_model(tmp_path / "empty.pth")


def test_wrong_architecture(tmp_path):
    path = tmp_path / "random.pth"
    torch.save({"conv.weight": torch.randn(4, 4), "fc.bias": torch.randn(4)}, path)
    with pytest.raises(ArchitectureError, match="not an RVC checkpoint") as caught:
        load_model(path)
    assert str(path) in str(caught.value)

    torch.save({"weight": {"conv.weight": torch.randn(4, 4)}, "config": [], "sr": "40k"}, path)
    with pytest.raises(ArchitectureError, match="no RVC synthesizer weights"):
        load_model(path)


def test_weights_that_do_not_fit_their_layout(tmp_path):
    model = tiny_synthesizer("v2_f0_40k")
    state = {k: v for k, v in model.state_dict().items() if "enc_q" not in k}
    del state["flow.flows.2.post.bias"]
    path = tmp_path / "partial.pth"
    torch.save({"weight": state}, path)
    with pytest.raises(ArchitectureError, match=r"1 key missing \(flow.flows.2.post.bias\)"):
        load_model(path)


# ----------------------------------------------------------------------------------------- save refusals


def test_save_refuses_a_key_set_rvc_would_not_load_strictly(tmp_path):
    model = tiny_synthesizer("v2_f0_40k")
    path = tmp_path / "out.pth"
    state = model.state_dict()
    state["dec.conv_pre.lora_A"] = torch.zeros(2, 8, 7)
    with pytest.raises(ArchitectureError, match="1 unexpected key"):
        save_small_model(path, state, tiny_config("v2_f0_40k"), version="v2", f0=1)
    state = {k: v for k, v in model.state_dict().items() if k != "dec.cond.bias"}
    with pytest.raises(ArchitectureError, match="1 key missing"):
        save_small_model(path, state, tiny_config("v2_f0_40k"), version="v2", f0=1)
    with pytest.raises(MetadataConflictError, match="f0=0"):
        save_small_model(path, model, tiny_config("v2_f0_40k"), version="v2", f0=0)
    with pytest.raises(MetadataConflictError, match="version='v1'"):
        save_small_model(path, model, tiny_config("v2_f0_40k"), version="v1", f0=1)
    assert os.listdir(tmp_path) == []


def test_save_replaces_an_existing_file_atomically(tmp_path):
    _, path = small_file(tmp_path, "v2_f0_40k", info="old")
    model = tiny_synthesizer("v2_f0_40k", seed=1)
    save_small_model(path, model, tiny_config("v2_f0_40k"), version="v2", f0=True, info="new", sr="40k")
    assert load_model(path).info == "new"
    assert os.listdir(tmp_path) == [path.name]
