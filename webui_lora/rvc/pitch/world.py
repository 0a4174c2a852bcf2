"""WORLD vocoder f0 (pyworld): `harvest` (slow, robust) and `dio` (fast), both refined by StoneMask.

pyworld puts frame k at k * 10 ms, so a clip of n samples gives n // 160 + 1 frames, like RVC.
"""

import warnings

import numpy as np

from .constants import F0_MAX, F0_MIN, HOP_LENGTH, SAMPLE_RATE

_FRAME_PERIOD_MS = 1000.0 * HOP_LENGTH / SAMPLE_RATE


def unavailable_reason():
    try:
        _pyworld()
    except ImportError as error:
        # pyworld 0.3.5 reads its version through pkg_resources, gone from setuptools 81 on
        hint = "; pip install 'setuptools<81'" if "pkg_resources" in str(error) else ""
        return f"pyworld cannot be imported ({error}{hint})"
    return None


def harvest(audio, filter_radius=0):
    """Harvest + StoneMask. RVC's conversion passes its `filter_radius` (default 3): above 2 it
    median-filters the track with a kernel of 3 (always 3, whatever the radius); training uses 0."""
    f0 = _refined("harvest", audio)
    if filter_radius <= 2:
        return f0
    from scipy.signal import medfilt  # scipy.signal costs about a second to import: only when used

    return medfilt(f0, 3)


def dio(audio):
    """DIO + StoneMask, as RVC's training extraction runs it."""
    return _refined("dio", audio)


def _refined(estimator_name, audio):
    pyworld = _pyworld()
    signal = audio.astype(np.float64)
    coarse, times = getattr(pyworld, estimator_name)(
        signal, fs=SAMPLE_RATE, f0_floor=F0_MIN, f0_ceil=F0_MAX, frame_period=_FRAME_PERIOD_MS
    )
    return pyworld.stonemask(signal, coarse, times, SAMPLE_RATE)


def _pyworld():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        import pyworld
    return pyworld
