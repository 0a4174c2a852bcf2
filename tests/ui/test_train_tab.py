"""The Train tab's dataset panel without a browser: built under the installed gradio, its handlers
called the way gradio calls them."""

import zipfile

import gradio as gr
import numpy as np
import pytest
import soundfile
from matplotlib.figure import Figure

from speech import flite_sentence
from webui_lora.ui.train_tab import build_train_tab
from webui_lora.workspace import NONE, Workspace


@pytest.fixture(scope="module")
def tab(assets):
    with gr.Blocks():
        return build_train_tab(Workspace(assets, device="cpu"))


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recordings")
    paths = []
    for voice in ("slt", "rms", "awb"):
        text = "The small pup gnawed a hole in the sock. The swan dive was far short of perfect."
        soundfile.write(folder / f"{voice}.wav", flite_sentence(text, voice, 22050), 22050)
        paths.append(str(folder / f"{voice}.wav"))
    return paths


def test_check_reports_without_preparing(tab, recordings, tmp_path):
    out = tab.check(recordings, "", str(tmp_path / "exp"), "v2_f0_40k.pth", "40k", "v2", True)
    assert out[tab.report].startswith("**For a v2 40k f0 model.** **3 of 3 files usable**")
    assert "| uploads/slt.wav |" in out[tab.report] and isinstance(out[tab.histogram], Figure)
    assert not (tmp_path / "exp" / "filelist.txt").exists()


def test_prepare_writes_the_experiment_and_a_rerun_reuses_it(tab, recordings, tmp_path):
    steps = []
    out = tab.prepare(recordings, "", str(tmp_path / "exp"), NONE, "32k", "v1", False, "pm", True,
                      report=lambda *step: steps.append(step))
    assert "read: 3 computed, 0 reused" in out[tab.status] and (tmp_path / "exp" / "filelist.txt").is_file()
    assert (tmp_path / "exp" / "3_feature256").is_dir() and not (tmp_path / "exp" / "2a_f0").exists()
    assert steps[-1][2].startswith("index") and all(done <= total for done, total, _ in steps)
    folder = str(tmp_path / "exp" / "sources" / "uploads")  # the copies: gradio's temp files may be gone
    again = tab.prepare(None, folder, str(tmp_path / "exp"), NONE, "32k", "v1", False, "pm", True)
    assert "read: 0 computed, 3 reused" in again[tab.status]


@pytest.mark.parametrize("case, expected", [
    ("nothing", "Nothing prepared: no dataset yet: drop recordings or a zip"),
    ("zip of text", "docs.zip: the archive holds no audio files"),
    ("silence", "none of its 1 file(s) is usable"),
    ("no such folder", "no such file or folder"),
    ("bad rate", "not a sample rate"),
])
def test_bad_datasets_get_one_clear_message(tab, tmp_path, case, expected):
    files, folder, sr = None, "", "40k"
    if case == "zip of text":
        files = [str(tmp_path / "docs.zip")]
        with zipfile.ZipFile(files[0], "w") as z:
            z.writestr("notes.txt", "x")
    elif case == "silence":
        files = [str(tmp_path / "room.wav")]
        soundfile.write(files[0], np.zeros(32000, dtype=np.float32), 16000)
    elif case == "no such folder":
        folder = str(tmp_path / "gone")
    elif case == "bad rate":
        files, sr = [str(tmp_path / "x.wav")], "44k"
    for handler in (tab.check, lambda *a: tab.prepare(*a, "pm", True)):
        out = handler(files, folder, str(tmp_path / "exp"), NONE, sr, "v2", True)
        message = out[tab.status]
        assert message.startswith("Nothing prepared: ") and expected in message and "Traceback" not in message
