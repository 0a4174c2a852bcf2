"""RVC's preprocessing of one training file (``infer/modules/train/preprocess.py``): a causal 48 Hz
high-pass, the silence slicer, 3.7 s pieces overlapping by 0.3 s, pieces louder than 2.5 dropped, and
each piece mixed 75 % peak-normalised (to 0.9) with 25 % as it was. RVC writes every piece at the
model's rate and at 16 kHz (for f0 and HuBERT); so do we.

One difference, said here because it changes the folder, not the training: RVC also writes pieces so
short that its bucket sampler never draws them (estimated at 100 spectrogram frames or fewer, about
0.75 s); we count them and leave them out, so no f0 or HuBERT time goes to them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import numpy as np
import soxr

from ..rvc.audio import high_pass_coefficients
from ..rvc.configs import BUCKET_BOUNDARIES
from .slicer import Slicer, SlicerSettings

SR_16K = 16000
OVERLAP_SECONDS = 0.3
PEAK_LIMIT = 2.5  # a piece peaking above this is dropped (RVC: "filtered")
NORMALISED_PEAK = 0.9
NORMALISED_SHARE = 0.75
FLOAT_WAV_HEADER = 58  # bytes scipy writes before float32 samples; RVC estimates lengths from file sizes


@dataclass(frozen=True)
class PreprocessSettings:
    """What a piece depends on besides the source audio; its ``key`` names a cache entry."""

    sr: int
    piece_seconds: float = 3.7  # RVC uses 3.0 on fp32-only or 4 GB GPUs
    slicer: SlicerSettings = field(default_factory=SlicerSettings)

    def key(self) -> str:
        text = json.dumps({"stage": "pieces/1", **asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Pieces:
    """One file's training pieces at the model's rate, and what was left out."""

    audio: list  # float32 arrays
    loud: int = 0  # dropped: peak above PEAK_LIMIT
    silent: int = 0  # dropped: not one non-zero sample (RVC would divide by zero)
    too_short: int = 0  # dropped: the sampler would never draw them
    spoken_seconds: float = 0.0  # audio kept by the slicer, before windowing


def high_pass(audio: np.ndarray, sr: int) -> np.ndarray:
    """RVC's causal 5th-order Butterworth at 48 Hz (lfilter: zero phase pre-rings, its authors found)."""
    from scipy import signal

    return signal.lfilter(*high_pass_coefficients(sr), audio)


def windows(audio: np.ndarray, sr: int, piece_seconds: float) -> list:
    """RVC's windowing of one slice: ``piece_seconds`` every ``piece_seconds - 0.3`` s while more than
    ``piece_seconds + 0.3`` s is left, then the rest as the last piece (same float arithmetic as RVC)."""
    pieces, step, tail = [], piece_seconds - OVERLAP_SECONDS, piece_seconds + OVERLAP_SECONDS
    i = 0
    while True:
        start = int(sr * step * i)
        i += 1
        if len(audio[start:]) > tail * sr:
            pieces.append(audio[start:start + int(piece_seconds * sr)])
        else:
            pieces.append(audio[start:])
            return pieces


def normalise(piece: np.ndarray, peak: float) -> np.ndarray:
    """RVC's loudness mix of a piece whose peak is ``peak`` (above 0, at most PEAK_LIMIT)."""
    return (piece / peak * (NORMALISED_PEAK * NORMALISED_SHARE) + (1 - NORMALISED_SHARE) * piece).astype(np.float32)


def trainable(samples: int, hop: int) -> bool:
    """Whether RVC's bucket sampler would ever draw a piece of ``samples`` (its estimate of spectrogram
    frames is the float32 file's size // (3 * hop))."""
    return (4 * samples + FLOAT_WAV_HEADER) // (3 * hop) > BUCKET_BOUNDARIES[0]


def make_pieces(audio: np.ndarray, settings: PreprocessSettings) -> Pieces:
    """Mono float audio already at ``settings.sr`` -> its training pieces."""
    sr = settings.sr
    slicer = Slicer(sr, settings.slicer)
    result = Pieces([])
    hop = sr // 100
    for chunk in slicer.slice(high_pass(np.asarray(audio, dtype=np.float64), sr)):
        result.spoken_seconds += len(chunk) / sr
        for piece in windows(chunk, sr, settings.piece_seconds):
            peak = float(np.abs(piece).max()) if len(piece) else 0.0
            if peak > PEAK_LIMIT:
                result.loud += 1
            elif peak == 0.0:
                result.silent += 1
            elif not trainable(len(piece), hop):
                result.too_short += 1
            else:
                result.audio.append(normalise(piece, peak))
    return result


def to_16k(piece: np.ndarray, sr: int) -> np.ndarray:
    """The 16 kHz copy f0 and HuBERT read (librosa's default resampler in RVC is soxr HQ)."""
    return soxr.resample(piece, sr, SR_16K, quality="HQ").astype(np.float32)
