"""A small real dataset: flite sentences in four voices, at several rates and in several formats (one
stereo, one mp3), and a tiny HuBERT to extract features with."""

import shutil
import subprocess

import numpy as np
import pytest
import soundfile

from builders import tiny_hubert_folder
from speech import flite_sentence, one_voice_recordings

SENTENCES = {
    "slt": "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background.",
    "rms": "It is easy to tell the depth of a well. These days a chicken leg is a rare dish.",
    "awb": "Rice is often served in round bowls. The juice of lemons makes fine punch.",
    "kal": "The box was thrown beside the parked truck. The hogs were fed chopped corn and garbage.",
}


def write_dataset(folder):
    """Four files: a stereo flac at 44.1 kHz, an mp3 at 22.05 kHz, a wav at 48 kHz in a subfolder, an
    ogg at 8 kHz."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "more").mkdir(exist_ok=True)
    slt = flite_sentence(SENTENCES["slt"], "slt", 44100)
    soundfile.write(folder / "slt.flac", np.stack([slt, 0.8 * slt], axis=1), 44100)
    rms = flite_sentence(SENTENCES["rms"], "rms", 22050)
    soundfile.write(folder / "rms.wav.tmp", rms, 22050, format="WAV")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(folder / "rms.wav.tmp"), "-f", "mp3",
                    str(folder / "rms.mp3")], check=True)
    (folder / "rms.wav.tmp").unlink()
    soundfile.write(folder / "more" / "awb.wav", flite_sentence(SENTENCES["awb"], "awb", 48000), 48000)
    soundfile.write(folder / "kal.ogg", flite_sentence(SENTENCES["kal"], "kal", 8000), 8000)
    (folder / "notes.txt").write_text("not audio")
    return folder


@pytest.fixture(scope="session")
def dataset_source(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("dataset") / "voice")


@pytest.fixture(scope="session")
def hubert(tmp_path_factory):
    return tiny_hubert_folder(tmp_path_factory.mktemp("hubert"))


@pytest.fixture
def dataset(dataset_source, tmp_path):
    """A private copy, so a test may change its files."""
    return shutil.copytree(dataset_source, tmp_path / "voice")


@pytest.fixture(scope="session")
def voice_recordings(tmp_path_factory):
    return one_voice_recordings(tmp_path_factory.mktemp("one_voice") / "slt")


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, voice_recordings, hubert):
    """The tiny v2 40k f0 model and the one-voice dataset prepared for it (pm pitch)."""
    from builders import tiny_model_file
    from webui_lora.train.prepare import PrepareOptions, Target, prepare

    root = tmp_path_factory.mktemp("prepared")
    model = tiny_model_file(root, "v2_f0_40k")
    prepare([voice_recordings], root / "exp", Target("v2", 40000, True), PrepareOptions(f0_method="pm"),
            hubert_path=hubert)
    return model, root / "exp"
