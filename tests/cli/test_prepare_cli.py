"""``python -m webui_lora prepare``: the report, the preparation and its cache, and every bad input as
one ``error:`` line with exit code 2."""

import json
import zipfile

import pytest

from builders import tiny_hubert_folder, tiny_model_file
from speech import flite_sentence
from webui_lora.cli import main

import soundfile


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("prepare_cli")
    hubert = tiny_hubert_folder(root)
    data = root / "data"
    data.mkdir()
    for number, voice in enumerate(("slt", "rms", "awb")):
        text = "A large size in stockings is hard to sell. The fish twisted and turned on the bent hook."
        soundfile.write(data / f"{voice}.wav", flite_sentence(text, voice, 22050), 22050)
    return root, hubert, data


def cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_prepare_then_reuse_everything(capsys, setup, tmp_path):
    root, hubert, data = setup
    model = tiny_model_file(tmp_path, "v1_f0_48k")
    argv = ["prepare", "--dataset", str(data), "--out", str(tmp_path / "exp"), "--base", str(model),
            "--f0-method", "pm", "--hubert", str(hubert), "--json"]
    code, out, _ = cli(capsys, *argv)
    first = json.loads(out)
    assert code == 0 and first["target"] == "v1 48k f0" and first["computed"]["read"] == 3
    assert first["report"]["pieces"] > 0 and first["index"].endswith("_exp_v1.index")
    code, out, _ = cli(capsys, *argv)
    again = json.loads(out)
    assert code == 0 and again["computed"] == {} and again["reused"]["features"] == first["report"]["pieces"]
    code, out, _ = cli(capsys, *argv[:-1])
    assert code == 0 and "**3 of 3 files usable**" in out and "read: 0 computed, 3 reused" in out


def test_report_only_prepares_nothing(capsys, setup, tmp_path):
    root, hubert, data = setup
    code, out, _ = cli(capsys, "prepare", "--dataset", str(data / "slt.wav"), "--out", str(tmp_path / "exp"),
                       "--sr", "32k", "--version", "v2", "--no-f0", "--report-only")
    assert code == 0 and "Dataset for a v2 32k no-f0 model" in out and "| data/slt.wav |" not in out
    assert "| slt.wav |" in out and not (tmp_path / "exp" / "filelist.txt").exists()


def one_error(capsys, argv, named):
    code, _, err = cli(capsys, *argv)
    last = err.strip().splitlines()[-1]  # after any progress bars
    assert code == 2 and last.startswith("error: ") and named in last and err.count("error: ") == 1, err
    assert "Traceback" not in err
    return last


def test_bad_inputs(capsys, setup, tmp_path):
    root, hubert, data = setup
    base = ["--out", str(tmp_path / "exp"), "--sr", "40k", "--version", "v2", "--hubert", str(hubert),
            "--f0-method", "pm"]
    empty = tmp_path / "empty"
    empty.mkdir()
    one_error(capsys, ["prepare", "--dataset", str(empty), *base], "no audio files found")
    docs = tmp_path / "docs.zip"
    with zipfile.ZipFile(docs, "w") as z:
        z.writestr("a.txt", "x")
    one_error(capsys, ["prepare", "--dataset", str(docs), *base], f"{docs}: the archive holds no audio files")
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"not a zip")
    one_error(capsys, ["prepare", "--dataset", str(fake), *base], f"{fake}: not a zip archive")
    one_error(capsys, ["prepare", "--dataset", str(tmp_path / "gone"), *base], "gone: no such file or folder")
    short = tmp_path / "short"
    short.mkdir()
    soundfile.write(short / "hi.wav", flite_sentence("Hi.", "slt", 16000), 16000)
    one_error(capsys, ["prepare", "--dataset", str(short), *base], "short: none of its 1 file(s) is usable")
    line = one_error(capsys, ["prepare", "--dataset", str(data), "--out", str(tmp_path / "e"), "--sr", "44k",
                              "--version", "v2"], "--sr 44k")
    assert "not a sample rate" in line
    one_error(capsys, ["prepare", "--dataset", str(data), "--out", str(tmp_path / "e")], "no target model")
    bad_model = tmp_path / "bad.pth"
    bad_model.write_bytes(b"garbage" * 9)
    one_error(capsys, ["prepare", "--dataset", str(data), "--out", str(tmp_path / "e"), "--base", str(bad_model)],
              str(bad_model))
    line = one_error(capsys, ["prepare", "--dataset", str(data), *base[:-2], "--assets", str(tmp_path)], "rmvpe")
    assert "unavailable" in line
