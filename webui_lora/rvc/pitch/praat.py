"""Praat's autocorrelation pitch (parselmouth), RVC's `pm` method.

Praat only places frames where a whole 60 ms window fits, so it returns fewer than n // 160 frames;
RVC zero-pads them to exactly n // 160 (one fewer than the other methods), the extra zero going
to the left when the gap is odd. We do the same.
"""

import numpy as np

from .constants import F0_MAX, F0_MIN, HOP_LENGTH, SAMPLE_RATE

VOICING_THRESHOLD = 0.6


def unavailable_reason():
    try:
        import parselmouth  # noqa: F401
    except ImportError as error:
        return f"praat-parselmouth cannot be imported ({error})"
    return None


def pm(audio):
    import parselmouth

    pitch = parselmouth.Sound(audio.astype(np.float64), SAMPLE_RATE).to_pitch_ac(
        time_step=HOP_LENGTH / SAMPLE_RATE,
        voicing_threshold=VOICING_THRESHOLD,
        pitch_floor=F0_MIN,
        pitch_ceiling=F0_MAX,
    )
    f0 = pitch.selected_array["frequency"]
    gap = len(audio) // HOP_LENGTH - len(f0)
    left = (gap + 1) // 2
    return np.pad(f0, (left, gap - left))
