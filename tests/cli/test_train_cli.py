"""``python -m webui_lora train``: recordings -> prepare -> steps -> checkpoint -> resume -> an adapter
that converts; and each bad input as one ``error:`` line, nothing lost."""

import json

import numpy as np
import pytest
import soundfile
import torch

from builders import tiny_hubert_folder, tiny_model_file
from speech import flite_sentence
from webui_lora.cli import main
from webui_lora.rvc.index import build_index
from webui_lora.rvc.models import build_discriminator

TEXTS = ["The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
         "It is easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
         "Rice is often served in round bowls.", "The juice of lemons makes fine punch."]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_cli")
    hubert = tiny_hubert_folder(root)
    model = tiny_model_file(root / "weights", "v2_f0_40k")
    data = root / "recordings"
    data.mkdir()
    for number, text in enumerate(TEXTS):
        soundfile.write(data / f"{number}.wav", flite_sentence(text, "rms", 22050), 22050)
    return root, hubert, model, data


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def common(root, hubert):
    return ["--batch-size", "2", "--d-width", "16", "--hubert", hubert, "--assets", root, "--f0-method", "pm",
            "--preview-every", "0"]


def test_recordings_to_a_resumed_adapter_that_converts(capsys, setup, tmp_path):
    root, hubert, model, data = setup
    out = tmp_path / "voice.safetensors"
    code, stdout, _ = run(capsys, "train", "--base", model, "--dataset", data, "--out", out, "--steps", 2,
                          "--save-every", 1, "--json", *common(root, hubert))
    first = json.loads(stdout)
    assert code == 0 and first["steps"] == 2 and (root / "experiments" / "voice" / "filelist.txt").is_file()
    assert (tmp_path / "voice.safetensors.training" / "checkpoint.pt").is_file() and first["index"]
    assert first["previews"] and first["previews"][-1][2].endswith(".wav")  # the preview at the end
    code, stdout, _ = run(capsys, "train", "--base", model, "--dataset", data, "--out", out, "--steps", 4,
                          "--resume", "--json", *common(root, hubert))
    resumed = json.loads(stdout)
    assert code == 0 and resumed["steps"] == 4 and len(resumed["heldout_mel"]) >= 1
    wav = tmp_path / "converted.wav"
    code, stdout, err = run(capsys, "convert", "--model", model, "--adapter", f"{out}:0.8", "--input",
                            next(data.iterdir()), "--output", wav, "--f0-method", "pm", "--hubert", hubert,
                            "--assets", root)
    assert code == 0, err
    assert f"index: {tmp_path / 'voice.index'}" in stdout  # the adapter's own index was paired
    audio, sr = soundfile.read(wav)
    assert sr == 40000 and np.abs(audio).max() > 0


def one_error(capsys, argv, named):
    code, _, err = run(capsys, *argv)
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("error: ") and named in last and "Traceback" not in err, err
    return last


def test_bad_inputs(capsys, setup, tmp_path):
    root, hubert, model, data = setup
    base = ["--steps", 1, *common(root, hubert)]
    out = tmp_path / "a.safetensors"
    index = tmp_path / "x.index"
    build_index(np.random.default_rng(0).standard_normal((100, 768)).astype(np.float32), index)
    assert "is a feature index" in one_error(capsys, ["train", "--base", index, "--dataset", data, "--out", out,
                                                      *base], str(index))
    assert "HuBERT" in one_error(capsys, ["train", "--base", hubert, "--dataset", data, "--out", out, *base],
                                 str(hubert))
    disc = tmp_path / "D_1.pth"
    torch.save({"model": build_discriminator("v2").state_dict()}, disc)
    assert "discriminator" in one_error(capsys, ["train", "--base", disc, "--dataset", data, "--out", out, *base],
                                        str(disc))
    other_rate = tiny_model_file(tmp_path, "v1_f0_48k")
    line = one_error(capsys, ["train", "--base", model, "--pretrained-g", other_rate, "--dataset", data, "--out", out,
                              *base], str(other_rate))
    assert "v1 48k f0 model, but the base is v2 40k f0" in line
    short = tmp_path / "short"
    short.mkdir()
    soundfile.write(short / "hi.wav", flite_sentence("Hello there.", "slt", 16000), 16000)
    one_error(capsys, ["train", "--base", model, "--dataset", short, "--out", tmp_path / "s.safetensors", *base],
              "usable")
    # a dataset prepared for the v2 model, handed to a v1 base
    code, _, _ = run(capsys, "train", "--base", model, "--dataset", data, "--out", tmp_path / "ok.safetensors",
                     *base)
    assert code == 0
    prepared = root / "experiments" / "ok"
    line = one_error(capsys, ["train", "--base", other_rate, "--dataset", prepared, "--out", out, *base], str(prepared))
    assert "prepared for a v2 40k f0 model, but the base is v1 48k f0" in line
    before = model.read_bytes()
    one_error(capsys, ["train", "--base", model, "--dataset", prepared, "--out", model, *base], str(model))
    one_error(capsys, ["train", "--base", model, "--dataset", prepared, "--out", tmp_path / "a.pth", *base], "a.pth")
    assert model.read_bytes() == before
    checkpoint = tmp_path / "ok.safetensors.training" / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    line = one_error(capsys, ["train", "--base", model, "--dataset", prepared, "--out", tmp_path / "ok.safetensors",
                              "--resume", *base], str(checkpoint))
    assert "truncated or damaged" in line and "delete it to start over" in line
    one_error(capsys, ["train", "--base", model, "--dataset", prepared, "--out", tmp_path / "ok.safetensors",
                       "--preset", "all", "--rank", "4", "--resume", *base], str(checkpoint))
