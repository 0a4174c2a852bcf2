"""``python -m webui_lora info`` on every kind of file, in-process."""

import json

import pytest
import torch

from builders import tiny_model_file
from lora_core import LoRAConfig, base_fingerprint, inject_lora, save_adapter
from webui_lora.cli import main
from webui_lora.rvc.checkpoints import load_model
from webui_lora.rvc.index import build_index

FIXTURES = "tests/fixtures"


def info(capsys, path, *flags):
    assert main(["info", str(path), *flags]) == 0
    return capsys.readouterr().out


def test_model(capsys, tmp_path):
    path = tiny_model_file(tmp_path, "v1_f0_48k")
    facts = json.loads(info(capsys, path, "--json"))
    net = load_model(path).synthesizer
    assert facts["type"] == "RVC model" and facts["kind"] == "inference"
    assert (facts["version"], facts["sr"], facts["f0"]) == ("v1", 48000, True)
    assert facts["parameters"] == sum(p.numel() for p in net.parameters())
    assert facts["fingerprint"] == base_fingerprint(net) and facts["size_bytes"] == path.stat().st_size
    assert "version" in info(capsys, path) and "MB" in info(capsys, path)


def test_adapter_and_index(capsys, tmp_path):
    net = load_model(tiny_model_file(tmp_path)).synthesizer
    inject_lora(net, LoRAConfig(r=3, lora_alpha=6, target_modules=["dec.ups"]), "a")
    save_adapter(net, tmp_path / "a.safetensors", "a", config={"target_modules": ["dec.ups"]},
                 extra={"version": "v2", "sr": 40000})
    facts = json.loads(info(capsys, tmp_path / "a.safetensors", "--json"))
    assert facts["ranks"] == [3] and facts["alphas"] == [6.0] and facts["version"] == "v2"
    assert facts["target_modules"] == ["dec.ups"] and facts["base_fingerprint"] == base_fingerprint(net)
    build_index(torch.randn(300, 768).numpy(), tmp_path / "added_x.index")
    facts = json.loads(info(capsys, tmp_path / "added_x.index", "--json"))
    assert (facts["dim"], facts["vectors"], facts["version"]) == (768, 300, "v2")


def test_hubert_and_discriminator(capsys, tmp_path):
    facts = json.loads(info(capsys, f"{FIXTURES}/hubert_fairseq/hubert_fairseq.pt", "--json"))
    assert (facts["type"], facts["layers"], facts["hidden_size"], facts["final_proj"]) == ("HuBERT", 12, 64, 16)
    from webui_lora.rvc.models import build_discriminator
    torch.save({"model": build_discriminator("v1").state_dict(), "iteration": 3}, tmp_path / "D_3.pth")
    facts = json.loads(info(capsys, tmp_path / "D_3.pth", "--json"))
    assert facts["type"] == "discriminator" and facts["version"] == "v1"


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all"])
def test_bad_files_exit_2_with_the_file_named(capsys, tmp_path, content):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(content)
    assert main(["info", str(bad)]) == 2
    assert str(bad) in capsys.readouterr().err
