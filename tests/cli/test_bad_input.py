"""Every command, given each kind of bad file, ends with one line ``error: FILE: ...`` and exit code 2."""

import subprocess
import sys

import pytest
import soundfile

from bad_files import bad_files
from builders import tiny_hubert_folder, tiny_model_file
from lora_core import LoRAConfig, inject_lora, save_adapter
from speech import flite_sentence
from webui_lora.cli import main
from webui_lora.rvc.checkpoints import load_model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_assets")
    tiny_hubert_folder(root)
    model = tiny_model_file(root / "weights", "v2_f0_40k")
    net = load_model(model).synthesizer
    inject_lora(net, LoRAConfig(r=2, target_modules=["dec.ups"]), "a")
    adapter = root / "adapters" / "voice.safetensors"
    save_adapter(net, adapter, "a")
    speech = root / "speech.wav"
    soundfile.write(speech, flite_sentence("Good morning.", "slt", 16000), 16000)
    return root, model, adapter, speech, bad_files(root / "bad", model, adapter)


def one_error_line(capsys, argv, named):
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert str(named) in lines[0] and "Traceback" not in captured.err
    return lines[0]


@pytest.mark.parametrize("kind", ["missing", "empty", "garbage", "truncated model", "truncated adapter",
                                  "not an adapter"])
def test_info(capsys, setup, kind):
    path = setup[4][kind]
    one_error_line(capsys, ["info", str(path)], path)


@pytest.mark.parametrize("kind", ["missing", "empty", "garbage", "truncated model", "folder", "discriminator",
                                  "truncated adapter"])
def test_convert_model(capsys, setup, kind):
    root, _, _, speech, bad = setup
    path = bad[kind]
    line = one_error_line(capsys, ["convert", "--model", str(path), "--input", str(speech), "--output",
                                   str(root / "out.wav"), "--assets", str(root), "--f0-method", "pm"], path)
    if kind == "discriminator":
        assert "discriminator" in line


@pytest.mark.parametrize("kind", ["missing", "truncated adapter", "not an adapter", "garbage"])
def test_convert_adapter(capsys, setup, kind):
    root, model, _, speech, bad = setup
    path = bad[kind]
    one_error_line(capsys, ["convert", "--model", str(model), "--adapter", f"{path}:0.5", "--input", str(speech),
                            "--output", str(root / "out.wav"), "--assets", str(root), "--f0-method", "pm"], path)


@pytest.mark.parametrize("kind", ["garbage", "empty", "missing"])
def test_convert_index_and_input(capsys, setup, kind):
    root, model, _, speech, bad = setup
    index = bad[kind].with_suffix(".index")
    if bad[kind].exists():
        index.write_bytes(bad[kind].read_bytes())
    base = ["convert", "--model", str(model), "--output", str(root / "out.wav"), "--assets", str(root),
            "--f0-method", "pm"]
    one_error_line(capsys, base + ["--input", str(speech), "--index", str(index)], index)
    audio = bad[kind].with_suffix(".wav")
    if bad[kind].exists():
        audio.write_bytes(bad[kind].read_bytes())
    one_error_line(capsys, base + ["--input", str(audio)], audio)


def test_bad_setting_is_named(capsys, setup):
    root, model, _, speech, _ = setup
    line = one_error_line(capsys, ["convert", "--model", str(model), "--input", str(speech), "--output",
                                   str(root / "out.wav"), "--assets", str(root), "--protect", "0.9"], "protect")
    assert "out of range; use 0.0 to 0.5" in line


def test_a_real_process_prints_no_traceback(setup):
    bad = setup[4]["truncated adapter"]
    done = subprocess.run([sys.executable, "-m", "webui_lora", "info", str(bad)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and done.stderr.startswith(f"error: {bad}: ") and "Traceback" not in done.stderr
