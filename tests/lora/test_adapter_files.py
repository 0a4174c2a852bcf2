"""Adapter files: round trip with metadata, fingerprints, and a clear error for each bad file."""

import json
import os
import warnings

import pytest
import torch
from safetensors.torch import save_file

from lora_core import (AdapterFileError, AdapterMismatchError, FingerprintMismatchWarning, LoRAConfig,
                       base_fingerprint, inject_lora, load_adapter, read_adapter, save_adapter)
from lora_models import TinyDecoder, decoder_inputs, tiny_decoder


@pytest.fixture
def trained(tmp_path):
    config = LoRAConfig(r=4, lora_alpha=8, target_modules=["ups", "resblocks"], rank_pattern={"ups.1": 2},
                        init_lora_weights=False)
    model = tiny_decoder()
    inject_lora(model, config, "voice")
    path = tmp_path / "voice.safetensors"
    save_adapter(model, path, "voice", config=config.to_dict(), extra={"version": "v2", "sr": 40000})
    return model, path


def test_round_trip_keeps_outputs_and_metadata(trained):
    model, path = trained
    phone, sid = decoder_inputs()
    fresh = tiny_decoder()
    adapter = load_adapter(fresh, path, "loaded")
    with torch.no_grad():
        assert torch.equal(fresh(phone, sid), model(phone, sid))
    assert adapter.modules["ups.1"].rank == 2 and adapter.modules["ups.0"].rank == 4
    assert adapter.modules["ups.0"].alpha == 8 and adapter.modules["ups.0"].scaling == 2.0
    assert adapter.config["target_modules"] == ["ups", "resblocks"]
    assert adapter.extra == {"version": "v2", "sr": 40000}
    assert adapter.base_fingerprint == base_fingerprint(tiny_decoder())
    assert not [p for p in os.listdir(path.parent) if p.endswith(".tmp")]


def test_file_keys_follow_peft(trained):
    _, path = trained
    from safetensors import safe_open
    with safe_open(str(path), "pt") as handle:
        keys = set(handle.keys())
        meta = handle.metadata()
    assert "ups.0.lora_A.weight" in keys and "resblocks.3.lora_B.weight" in keys
    assert meta["rvc_lora_format"] == "1"
    assert json.loads(meta["modules"])["ups.1"]["r"] == 2


def test_fingerprint_ignores_wrappers_style_and_dtype():
    legacy = tiny_decoder("legacy")
    fingerprint = base_fingerprint(legacy)
    inject_lora(legacy, LoRAConfig(target_modules="all", init_lora_weights=False))
    assert base_fingerprint(legacy) == fingerprint
    assert base_fingerprint(tiny_decoder("parametrized")) == fingerprint
    assert base_fingerprint(tiny_decoder("legacy").half().float()) != fingerprint
    assert base_fingerprint(tiny_decoder(seed=1)) != fingerprint


def test_other_shapes_fail_naming_modules(trained):
    _, path = trained
    torch.manual_seed(0)
    wider = TinyDecoder(channels=16)
    with pytest.raises(AdapterMismatchError, match=r"ups\.0: adapter expects weight \[8, 4, 4\]"):
        load_adapter(wider, path)


def test_other_base_same_shapes_warns_or_refuses(trained):
    _, path = trained
    with pytest.warns(FingerprintMismatchWarning):
        load_adapter(tiny_decoder(seed=5), path)
    with pytest.raises(AdapterMismatchError, match="different base model"):
        load_adapter(tiny_decoder(seed=5), path, on_fingerprint_mismatch="error")
    other_base = tiny_decoder(seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_adapter(other_base, path, on_fingerprint_mismatch="ignore")


def test_missing_file(tmp_path):
    with pytest.raises(AdapterFileError, match="no such adapter file"):
        read_adapter(tmp_path / "nope.safetensors")


def test_truncated_file(trained, tmp_path):
    _, path = trained
    cut = tmp_path / "cut.safetensors"
    data = path.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(AdapterFileError, match="truncated"):
        read_adapter(cut)


def test_not_safetensors(tmp_path):
    junk = tmp_path / "model.pth"
    torch.save({"weight": torch.zeros(2)}, junk)
    with pytest.raises(AdapterFileError, match="not a readable .safetensors"):
        read_adapter(junk)


def test_safetensors_but_not_adapter(tmp_path):
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other), metadata={"format": "pt"})
    with pytest.raises(AdapterFileError, match="not an RVC-LoRA adapter"):
        read_adapter(other)


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(AdapterFileError, match="folder"):
        read_adapter(tmp_path)
