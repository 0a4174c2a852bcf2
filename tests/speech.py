"""Test audio made on the spot: sentences spoken by Debian's flite, and harmonic tones whose f0 is
known exactly (for pitch, conversion and training tests that need real signals but no downloads)."""

import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import librosa
import numpy as np
import soundfile

FLITE_VOICES = ("slt", "rms", "awb", "kal")  # US female, US male, Scottish male, US male (8 kHz)


def flite_available():
    return shutil.which("flite") is not None


def flite_sentence(text, voice="slt", sr=16000):
    """`text` spoken by flite's `voice` as float32 mono at `sr` (flite's 8/16 kHz resampled)."""
    return _spoken(text, voice, sr).copy()


@lru_cache(maxsize=64)
def _spoken(text, voice, sr):
    if not flite_available():
        raise FileNotFoundError("flite is not installed: apt-get install flite")
    if voice not in FLITE_VOICES:
        raise ValueError(f"unknown flite voice {voice!r}; expected one of {FLITE_VOICES}")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "speech.wav"
        command = ["flite", "-voice", voice, "-t", text, "-o", str(path)]
        subprocess.run(command, check=True, capture_output=True)
        audio, native_sr = soundfile.read(path, dtype="float32")
    if native_sr != sr:
        audio = librosa.resample(audio, orig_sr=native_sr, target_sr=sr)
    return audio.astype(np.float32)


def vibrato_curve(duration_s, sr, base_hz, depth_cents=50.0, rate_hz=5.5, glide_semitones=0.0):
    """Per-sample f0 in Hz: a sung-like vibrato of +-`depth_cents` around a line gliding from
    `base_hz` by `glide_semitones` over the clip."""
    t = np.arange(int(round(duration_s * sr))) / sr
    cents = 100.0 * glide_semitones * t / duration_s + depth_cents * np.sin(2 * np.pi * rate_hz * t)
    return base_hz * 2.0 ** (cents / 1200.0)


def harmonic_tone(f0_curve, sr, n_harmonics=12, peak=0.5, fade_s=0.01):
    """A voice-like harmonic tone (harmonic k at amplitude 1/k, none above Nyquist) that follows
    the per-sample `f0_curve` in Hz; `f0_at_frames` gives its ground-truth f0 per analysis frame."""
    f0_curve = np.asarray(f0_curve, dtype=np.float64)
    phase = 2 * np.pi * np.cumsum(f0_curve) / sr
    tone = np.zeros_like(phase)
    for k in range(1, n_harmonics + 1):
        tone += np.where(k * f0_curve < sr / 2, np.sin(k * phase) / k, 0.0)
    ramp = np.clip(np.arange(len(tone)) / max(1.0, fade_s * sr), 0.0, 1.0)
    tone *= np.minimum(ramp, ramp[::-1])  # fade in and out: no clicks at the ends
    return (peak * tone / np.abs(tone).max()).astype(np.float32)


def f0_at_frames(f0_curve, hop, n_frames):
    """The per-sample curve read at frame centres k * hop (the last sample past the end)."""
    positions = np.minimum(np.arange(n_frames) * hop, len(f0_curve) - 1)
    return np.asarray(f0_curve, dtype=np.float64)[positions]


ONE_VOICE = [
    "The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.", "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.", "Four hours of steady work faced us.",
]


def one_voice_recordings(folder, voice="slt"):
    """Eight sentences by one flite voice, two to a file: about 20 s of speech."""
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(0, len(ONE_VOICE), 2):
        audio = np.concatenate([flite_sentence(ONE_VOICE[number], voice, 16000), np.zeros(4000, np.float32),
                                flite_sentence(ONE_VOICE[number + 1], voice, 16000)])
        soundfile.write(folder / f"{voice}_{number // 2}.wav", audio, 16000)
    return folder
