"""The merge, merge-adapters, extract, resize, blend and info --base commands on tiny real files: each
writes its file and report, and each bad input ends as one ``error: FILE: ...`` line, nothing lost."""

import json

import pytest
import torch

from builders import tiny_model_file
from stacks import make_adapter
from webui_lora.cli import main
from webui_lora.rvc.checkpoints import load_model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("merge_cli")
    base = tiny_model_file(root / "weights", "v2_f0_40k")
    other = tiny_model_file(root / "weights", "v2_f0_40k", seed=4, file_name="other.pth")
    v1 = tiny_model_file(root / "weights", "v1_f0_48k")
    adapters = root / "adapters"
    adapters.mkdir()
    return {"root": root, "base": base, "other": other, "v1": v1,
            "a": make_adapter(base, adapters / "a.safetensors", 1, targets=["dec.ups", "enc_p"]),
            "b": make_adapter(base, adapters / "b.safetensors", 2, targets=["dec"]),
            "theirs": make_adapter(other, adapters / "theirs.safetensors", 3, targets=["dec.ups"]),
            "for_v1": make_adapter(v1, adapters / "for_v1.safetensors", 4, targets=["dec.ups"])}


def run_json(capsys, argv):
    assert main([*argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_every_command_writes_its_file(capsys, files, tmp_path):
    root = str(files["root"])
    baked = run_json(capsys, ["merge", "--base", "v2_f0_40k.pth", "--adapter", "a.safetensors:0.5",
                              "--adapter", "b:-1", "--out", "baked", "--assets", root])
    assert baked["output"] == str(files["root"] / "weights" / "baked.pth")  # a bare name goes to the weights
    assert load_model(baked["output"]).kind == "inference"
    combined = run_json(capsys, ["merge-adapters", "--adapter", "a", "--adapter", "b:0.5", "--method", "svd",
                                 "--rank", "1", "--out", str(tmp_path / "ab.safetensors"), "--assets", root])
    assert min(combined["energy"].values()) < 1
    extracted = run_json(capsys, ["extract", "--base", "other.pth", "v2_f0_40k.pth", "--tuned", baked["output"],
                                  "--energy", "0.95", "--out", str(tmp_path / "x.safetensors"), "--assets", root])
    assert "base: v2_f0_40k.pth" in extracted["report"]
    resized = run_json(capsys, ["resize", "--adapter", str(tmp_path / "x.safetensors"), "--rank", "1",
                                "--out", str(tmp_path / "x1.safetensors"), "--assets", root])
    assert resized["output"].endswith("x1.safetensors")
    blended = run_json(capsys, ["blend", "--model", "v2_f0_40k.pth", "--model", "other.pth", "--ratio", "0.25",
                                "--style", "parametrized", "--out", str(tmp_path / "mix.pth"), "--assets", root])
    assert load_model(blended["output"]).weight_norm_keys == "parametrized"
    assert main(["info", str(files["a"]), "--base", str(files["base"])]) == 0
    text = capsys.readouterr().out
    assert "fits base" in text and "yes (v2_f0_40k.pth)" in text
    assert main(["info", str(files["a"]), "--base", str(files["v1"])]) == 0
    assert "no: " in capsys.readouterr().out


def one_error_line(capsys, argv, named):
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(named) in lines[0], lines
    return lines[0]


def test_bad_input_ends_as_one_line_and_loses_nothing(capsys, files, tmp_path):
    root = files["root"]
    before = {path: path.read_bytes() for path in root.rglob("*") if path.is_file()}
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(files["a"].read_bytes()[:300])
    discriminator = tmp_path / "D_1.pth"
    from webui_lora.rvc.models import build_discriminator

    torch.save({"model": build_discriminator("v2").state_dict()}, discriminator)
    assets = ["--assets", str(root)]
    line = one_error_line(capsys, ["merge-adapters", "--adapter", str(files["a"]), "--adapter", str(files["theirs"]),
                                   "--out", str(tmp_path / "c.safetensors"), *assets], files["theirs"])
    assert "another base model" in line
    line = one_error_line(capsys, ["merge", "--base", str(files["base"]), "--adapter", str(files["for_v1"]),
                                   "--out", str(tmp_path / "m.pth"), *assets], files["for_v1"])
    assert "v1" in line
    one_error_line(capsys, ["merge", "--base", str(files["base"]), "--adapter", str(corrupt),
                            "--out", str(tmp_path / "m.pth"), *assets], corrupt)
    line = one_error_line(capsys, ["merge", "--base", str(files["base"]), "--adapter", str(files["a"]),
                                   "--out", str(files["base"]), *assets], files["base"])
    assert "is one of the inputs" in line
    one_error_line(capsys, ["resize", "--adapter", str(files["a"]), "--rank", "1", "--out", str(files["a"]),
                            *assets], files["a"])
    line = one_error_line(capsys, ["blend", "--model", str(files["base"]), "--model", str(discriminator),
                                   "--out", str(tmp_path / "b.pth"), *assets], discriminator)
    assert "discriminator" in line
    line = one_error_line(capsys, ["extract", "--base", str(files["v1"]), "--tuned", str(files["base"]),
                                   "--rank", "2", "--out", str(tmp_path / "e.safetensors"), *assets], files["base"])
    assert "fits none of the bases" in line
    assert {path: path.read_bytes() for path in root.rglob("*") if path.is_file()} == before
    assert not list(tmp_path.glob("*.pth.part")) and not (tmp_path / "m.pth").exists()
