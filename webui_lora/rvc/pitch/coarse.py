"""What RVC feeds its synthesizer from an f0 track: transposed Hz, unvoiced handling, coarse bins.

Training and conversion must agree on all three, so both call these functions.
"""

import numpy as np

from .constants import F0_MAX, F0_MIN

# Two ways RVC fills unvoiced frames (f0 = 0). A model must be fine-tuned and run with the one its
# base was trained on, so adapters record it.
CLASSIC = "classic"  # unvoiced stays 0 (RVC WebUI up to 2024, the 2023 pretrained bases)
INTERPOLATED = "interpolated"  # unvoiced filled linearly between voiced frames (RVC main-2026)
CONVENTIONS = (CLASSIC, INTERPOLATED)

_MEL_MIN = 1127.0 * np.log(1.0 + F0_MIN / 700.0)
_MEL_MAX = 1127.0 * np.log(1.0 + F0_MAX / 700.0)


def coarse_f0(f0):
    """Quantise f0 in Hz to the pitch-embedding rows 1..255 on RVC's mel scale.

    50 Hz and below map to 1, 1100 Hz and above to 255; unvoiced (0) maps to 1, so row 0 is never used.
    """
    mel = 1127.0 * np.log(1.0 + np.asarray(f0, dtype=np.float64) / 700.0)
    voiced = mel > 0
    mel[voiced] = (mel[voiced] - _MEL_MIN) * 254.0 / (_MEL_MAX - _MEL_MIN) + 1.0
    return np.rint(np.clip(mel, 1.0, 255.0)).astype(np.int64)


def transpose_f0(f0, semitones):
    """Shift f0 by a number of semitones (12 doubles it); unvoiced frames stay 0."""
    return np.asarray(f0, dtype=np.float32) * np.float32(2.0 ** (semitones / 12.0))


def fill_unvoiced(f0):
    """Replace unvoiced frames by linear interpolation between voiced ones, holding the end values.

    A track with no voiced frame comes back unchanged (all 0): there is nothing to interpolate.
    """
    f0 = np.array(f0, dtype=np.float32)
    voiced = f0 > 0
    if voiced.any():
        frames = np.arange(len(f0))
        f0[~voiced] = np.interp(frames[~voiced], frames[voiced], f0[voiced])
    return f0


def apply_unvoiced_convention(f0, convention):
    """Return f0 with unvoiced frames treated as `convention` (CLASSIC or INTERPOLATED) requires."""
    if convention == CLASSIC:
        return np.array(f0, dtype=np.float32)
    if convention == INTERPOLATED:
        return fill_unvoiced(f0)
    raise ValueError(f"unknown f0 convention {convention!r}; expected one of {CONVENTIONS}")


def pitch_inputs(f0, semitones=0.0, convention=CLASSIC):
    """Turn an extracted f0 track into the synthesizer's (pitch, pitchf): coarse bins and Hz.

    Same order as RVC: unvoiced convention, then transpose, then quantise.
    """
    pitchf = transpose_f0(apply_unvoiced_convention(f0, convention), semitones)
    return coarse_f0(pitchf), pitchf
