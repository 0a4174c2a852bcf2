"""Reading and writing audio files the way RVC's pipeline needs them: mono float32 at a chosen rate.

Decoding tries libsndfile first (wav, flac, ogg, mp3 with libsndfile 1.1+) and falls back to ffmpeg
when it is installed, so anything ffmpeg decodes works. Every error names the file.
"""

from __future__ import annotations

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
    path = Path(path)
    if not path.is_file():
        raise AudioInputError(f"{path}: no such audio file")
    audio, file_sr = _decode(path)
    if audio.size == 0:
        raise AudioInputError(f"{path}: the file holds no audio samples")
    if file_sr != sr:
        audio = soxr.resample(audio, file_sr, sr, quality="HQ").astype(np.float32)
    check_convertible(audio, sr, path)
    return audio


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
        return data.mean(axis=1), int(file_sr)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as sndfile_error:
        reason = str(sndfile_error)
    if shutil.which("ffmpeg"):
        return _decode_with_ffmpeg(path), 48000
    raise AudioInputError(f"{path}: cannot decode this audio ({reason}). wav, flac, ogg and mp3 are read "
                          "directly; install ffmpeg to read other formats")


def _decode_with_ffmpeg(path: Path) -> np.ndarray:
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "1", "-ar", "48000", "-"]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip().splitlines()
        raise AudioInputError(f"{path}: not an audio file ffmpeg can decode ({message[-1] if message else 'no detail'})")
    return np.frombuffer(result.stdout, dtype=np.float32).copy()


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
