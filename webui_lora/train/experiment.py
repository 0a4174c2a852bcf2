"""An experiment folder laid out as RVC's ``logs/<exp>/``, so RVC's own trainer can use it too:

    0_gt_wavs/<piece>.wav          float32 at the model's rate
    1_16k_wavs/<piece>.wav         float32 at 16 kHz
    2a_f0/<piece>.wav.npy          coarse pitch 1..255 per 10 ms (f0 models)
    2b-f0nsf/<piece>.wav.npy       pitch in Hz per 10 ms, 0 = unvoiced (f0 models)
    3_feature256|768/<piece>.npy   HuBERT/ContentVec features, float32 [frames at 50 Hz, 256|768]
    mute/...                       3 s of silence in the same forms (RVC ships these as logs/mute)
    filelist.txt                   RVC's training list: one line per piece plus two mute lines
    config.json                    RVC's config for the version and rate
    added_IVF<n>_Flat_nprobe_1_<exp>_<v>.index
    dataset_report.json            the QA report; prepare.json: what each file was made from (the cache)

Every file is written under a temporary name and renamed into place, so a run killed at any point
leaves only whole files, and a rerun trusts a file only if prepare.json lists it.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import numpy as np
from scipy.io import wavfile

from lora_core.atomic import atomic_path, write_atomic

from ..rvc.configs import rvc_config
from ..rvc.models.synthesizer import CONTENT_CHANNELS, sample_rate_tag

STATE_FORMAT = 1
MUTE_SECONDS = 3
MUTE_NAME = "mute"


class Experiment:
    """The paths of one experiment folder for a (version, rate, f0) target."""

    def __init__(self, root, version: str, sr: int, f0: bool):
        self.root = Path(root).resolve()
        self.name = self.root.name
        self.version, self.sr, self.f0 = version, sr, bool(f0)
        self.gt_wavs = self.root / "0_gt_wavs"
        self.wavs_16k = self.root / "1_16k_wavs"
        self.f0_coarse = self.root / "2a_f0"
        self.f0_hz = self.root / "2b-f0nsf"
        self.features = self.root / f"3_feature{CONTENT_CHANNELS[version]}"
        self.mute = self.root / "mute"
        self.filelist = self.root / "filelist.txt"
        self.config = self.root / "config.json"
        self.report = self.root / "dataset_report.json"
        self.state_file = self.root / "prepare.json"
        self.sources = self.root / "sources"  # unpacked zips and copied uploads

    # ----- one piece's files --------------------------------------------------------------------
    def piece_files(self, name: str, root: Path | None = None) -> dict:
        root = root or self.root
        files = {"wav": root / self.gt_wavs.name / f"{name}.wav", "wav16k": root / self.wavs_16k.name / f"{name}.wav",
                 "features": root / self.features.name / f"{name}.npy"}
        if self.f0:
            files["f0_coarse"] = root / self.f0_coarse.name / f"{name}.wav.npy"
            files["f0_hz"] = root / self.f0_hz.name / f"{name}.wav.npy"
        return files

    def mute_files(self) -> dict:
        files = self.piece_files(MUTE_NAME, self.mute)
        files["wav"] = files["wav"].with_name(f"{MUTE_NAME}{sample_rate_tag(self.sr)}.wav")
        return files

    def index_path(self, lists: int) -> Path:
        return self.root / f"added_IVF{lists}_Flat_nprobe_1_{self.name}_{self.version}.index"

    def indices(self) -> list:
        return sorted(self.root.glob("added_IVF*_Flat_nprobe_1_*.index"))

    # ----- writing ------------------------------------------------------------------------------
    def write_filelist(self, names, speaker_id: int = 0, seed: int = 0) -> Path:
        """RVC's filelist: absolute paths joined by '|', then the speaker id; two mute lines; shuffled."""
        def line(files):
            fields = [files["wav"], files["features"]] + ([files["f0_coarse"], files["f0_hz"]] if self.f0 else [])
            return "|".join(str(path) for path in fields) + f"|{speaker_id}"

        lines = [line(self.piece_files(name)) for name in names] + [line(self.mute_files())] * 2
        random.Random(seed).shuffle(lines)
        write_if_changed(self.filelist, "\n".join(lines).encode())
        return self.filelist

    def write_config(self) -> Path:
        """RVC's config for this version and rate, written as its WebUI writes it (sorted keys, indent 4)."""
        text = json.dumps(rvc_config(self.version, self.sr), ensure_ascii=False, indent=4, sort_keys=True) + "\n"
        write_if_changed(self.config, text.encode())
        return self.config

    def load_state(self) -> dict:
        if self.state_file.is_file():
            try:
                state = json.loads(self.state_file.read_text())
                if state.get("format") == STATE_FORMAT:
                    return state
            except (OSError, ValueError):
                pass  # unreadable: start over; every file is rewritten atomically
        return {"format": STATE_FORMAT, "sources": {}}

    def save_state(self, state: dict) -> None:
        state.update(version=self.version, sr=self.sr, f0=self.f0)
        write_if_changed(self.state_file, json.dumps(state, indent=1).encode())


def write_if_changed(path: Path, payload: bytes) -> None:
    """Write atomically unless the file already holds exactly this (a cached rerun touches nothing)."""
    if not (path.is_file() and path.read_bytes() == payload):
        write_atomic(path, payload)


def write_wav(path, audio: np.ndarray, sr: int) -> None:
    """A float32 (or int16) WAV as RVC's preprocessing writes it (scipy), atomically."""
    buffer = io.BytesIO()
    wavfile.write(buffer, sr, audio)
    write_atomic(path, buffer.getvalue())


def read_wav(path) -> np.ndarray:
    return wavfile.read(path)[1]


def save_array(path, array: np.ndarray) -> None:
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
