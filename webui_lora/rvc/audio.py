"""Reading and writing audio files the way RVC's pipeline needs them: mono float32 at a chosen rate.

Decoding tries libsndfile first (wav, flac, ogg, mp3 with libsndfile 1.1+) and falls back to ffmpeg
when it is installed, so anything ffmpeg decodes works. Every error names the file.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile
import soxr

from lora_core.atomic import atomic_path

from ..errors import UserError

OUTPUT_FORMATS = ("wav", "flac", "mp3")
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus", ".wma", ".aiff", ".aif"}
MIN_SECONDS = 0.25
SILENCE_PEAK = 1e-4  # -80 dBFS: nothing audible to convert


class AudioInputError(UserError):
    """An input file that cannot be converted: missing, unreadable, empty, too short or silent."""


def audio_files(entries, recursive: bool = False) -> list:
    """Files as given, plus the audio files (by suffix, sorted) inside any folder given: directly inside,
    as RVC's batch conversion reads a folder, or at any depth with ``recursive``."""
    files = []
    for entry in entries:
        entry = Path(entry)
        if entry.is_dir():
            found = entry.rglob("*") if recursive else entry.iterdir()
            files += sorted(p for p in found if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        else:
            files.append(entry)
    return files


def load_audio(path, sr: int) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sr`` Hz and check that it holds something to convert."""
    audio, file_sr = read_audio(path)
    audio = audio.mean(axis=1)
    if file_sr != sr:
        audio = soxr.resample(audio, file_sr, sr, quality="HQ").astype(np.float32)
    check_convertible(audio, sr, path)
    return audio


def read_audio(path) -> tuple:
    """(samples [n, channels] float32, sample rate) as the file holds them; at least one sample."""
    path = Path(path)
    if not path.is_file():
        raise AudioInputError(f"{path}: no such audio file")
    audio, file_sr = _decode(path)
    if audio.size == 0:
        raise AudioInputError(f"{path}: the file holds no audio samples")
    return audio, file_sr


def wav_shortfall(path) -> float:
    """For a WAV whose data chunk is cut short (an interrupted copy or upload), the share of the
    promised samples missing; 0 for a whole file or another format. libsndfile reads such a file
    without a word, so intake checks it here."""
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return 0.0
        while True:
            chunk = handle.read(8)
            if len(chunk) < 8:
                return 0.0
            size = int.from_bytes(chunk[4:], "little")
            if chunk[:4] == b"data":
                present = Path(path).stat().st_size - handle.tell()
                return max(0.0, 1 - present / size) if size else 0.0
            handle.seek(size + (size & 1), 1)


def check_convertible(audio: np.ndarray, sr: int, name) -> None:
    seconds = len(audio) / sr
    if seconds < MIN_SECONDS:
        raise AudioInputError(f"{name}: too short ({seconds:.3f} s); at least {MIN_SECONDS} s of audio is needed")
    if not np.isfinite(audio).all():
        raise AudioInputError(f"{name}: the audio contains NaN or infinite samples")
    if np.abs(audio).max() <= SILENCE_PEAK:
        raise AudioInputError(f"{name}: the audio is silent (peak below -80 dBFS); nothing to convert")


def _decode(path: Path) -> tuple:
    try:
        data, file_sr = soundfile.read(str(path), dtype="float32", always_2d=True)
        return data, int(file_sr)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as sndfile_error:
        reason = str(sndfile_error)
    if shutil.which("ffmpeg"):
        return _decode_with_ffmpeg(path)
    raise AudioInputError(f"{path}: cannot decode this audio ({reason}). wav, flac, ogg and mp3 are read "
                          "directly; install ffmpeg to read other formats")


def _decode_with_ffmpeg(path: Path) -> tuple:
    """ffmpeg's decoding at the file's own rate and channel count (which ffprobe reports first)."""
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                            "stream=sample_rate,channels", "-of", "csv=p=0", str(path)],
                           capture_output=True, text=True, check=False)
    fields = probe.stdout.strip().split(",")
    if probe.returncode != 0 or len(fields) != 2 or not all(field.isdigit() for field in fields):
        detail = (probe.stderr.strip().splitlines() or ["no audio stream"])[-1]
        raise AudioInputError(f"{path}: not an audio file ffmpeg can decode ({detail})")
    file_sr, channels = int(fields[0]), int(fields[1])
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "f32le", "-"]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip().splitlines()
        raise AudioInputError(f"{path}: not an audio file ffmpeg can decode ({message[-1] if message else 'no detail'})")
    samples = np.frombuffer(result.stdout, dtype=np.float32)
    return samples[: len(samples) // channels * channels].reshape(-1, channels).copy(), file_sr


def save_audio(path, audio: np.ndarray, sr: int, audio_format: str | None = None) -> Path:
    """Write int16 or float audio atomically as wav, flac or mp3 (mp3 via libsndfile, else ffmpeg)."""
    path = Path(path)
    audio_format = (audio_format or path.suffix.lstrip(".")).lower()
    if audio_format not in OUTPUT_FORMATS:
        raise UserError(path, f"unsupported output format {audio_format!r}; use one of {', '.join(OUTPUT_FORMATS)}")
    with atomic_path(path) as temporary:
        _encode(temporary, audio, sr, audio_format)
    return path


def _encode(path: Path, audio: np.ndarray, sr: int, audio_format: str) -> None:
    subtype = "PCM_16" if audio.dtype == np.int16 and audio_format != "mp3" else None
    try:
        soundfile.write(str(path), audio, sr, format=audio_format.upper(), subtype=subtype)
        return
    except (soundfile.LibsndfileError, ValueError, TypeError):
        if audio_format != "mp3" or not shutil.which("ffmpeg"):
            raise
    with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
        soundfile.write(wav.name, audio, sr)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", wav.name, "-f", "mp3", str(path)], check=True)


@functools.lru_cache(maxsize=8)
def high_pass_coefficients(sr: int) -> tuple:
    """RVC's 48 Hz, 5th-order Butterworth high-pass (b, a), which both its training preprocessing (causal)
    and its conversion (zero-phase) apply. scipy.signal takes a second to import: only on first use."""
    from scipy import signal

    return signal.butter(N=5, Wn=48, btype="high", fs=sr)
