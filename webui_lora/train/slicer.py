"""RVC's silence slicer (``infer/lib/slicer2.py``, from openvpi's audio-slicer), the one used on every
training file: long silences are cut out, keeping at most ``max_silence_kept`` of each around the speech.

Levels are RMS over ``min(min_interval, 4 hops)``-sample windows centred on every hop (zero padded).
A quiet stretch is cut when it lasts ``min_interval`` and the clip before it ``min_length`` (or when it
leads the file and outlasts ``max_silence_kept``); the cut falls on the quietest frames, and a long
stretch loses its middle. Frame counts and rounding follow RVC's code, so the pieces are RVC's pieces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SlicerSettings:
    """RVC's training values (its preprocess.py), in dB and milliseconds."""

    threshold_db: float = -42.0
    min_length_ms: int = 1500
    min_interval_ms: int = 400
    hop_ms: int = 15
    max_silence_kept_ms: int = 500


class Slicer:
    """Finds the spans of a signal to keep, in samples."""

    def __init__(self, sr: int, settings: SlicerSettings = SlicerSettings()):
        s = settings
        if not s.min_length_ms >= s.min_interval_ms >= s.hop_ms:
            raise ValueError("slicer settings need min_length_ms >= min_interval_ms >= hop_ms")
        if s.max_silence_kept_ms < s.hop_ms:
            raise ValueError("slicer settings need max_silence_kept_ms >= hop_ms")
        interval_samples = sr * s.min_interval_ms / 1000
        self.threshold = 10 ** (s.threshold_db / 20.0)
        self.hop = round(sr * s.hop_ms / 1000)
        self.window = min(round(interval_samples), 4 * self.hop)
        self.min_length = round(sr * s.min_length_ms / 1000 / self.hop)  # frames
        self.min_interval = round(interval_samples / self.hop)  # frames
        self.max_kept = round(sr * s.max_silence_kept_ms / 1000 / self.hop)  # frames

    def frame_levels(self, audio: np.ndarray) -> np.ndarray:
        """RMS per hop, each window centred on its frame over zero padding (librosa's rms framing)."""
        half = self.window // 2
        padded = np.pad(np.asarray(audio, dtype=np.float64), (half, half))
        windows = np.lib.stride_tricks.sliding_window_view(padded, self.window)[:: self.hop]
        return np.sqrt(np.mean(windows ** 2, axis=1))

    def cuts(self, levels: np.ndarray) -> list:
        """Frame ranges [begin, end) to drop; a zero-width range is a plain cut point."""
        quietest = lambda begin, end: begin + int(np.argmin(levels[begin:end]))  # noqa: E731
        cuts, silence_start, clip_start = [], None, 0
        for i, level in enumerate(levels):
            if level < self.threshold:
                if silence_start is None:
                    silence_start = i
                continue
            if silence_start is None:
                continue
            leading = silence_start == 0 and i > self.max_kept
            worth_cutting = i - silence_start >= self.min_interval and i - clip_start >= self.min_length
            if not (leading or worth_cutting):
                silence_start = None
                continue
            length = i - silence_start
            if length <= self.max_kept:  # short: one cut at its quietest frame
                middle = quietest(silence_start, i + 1)
                cuts.append((0, middle) if silence_start == 0 else (middle, middle))
                clip_start = middle
            else:  # long: keep up to max_kept on each side, drop the rest
                left = quietest(silence_start, silence_start + self.max_kept + 1)
                right = quietest(i - self.max_kept, i + 1)
                if silence_start == 0:
                    cuts.append((0, right))
                    clip_start = right
                elif length <= 2 * self.max_kept:  # the two kept margins overlap
                    middle = quietest(i - self.max_kept, silence_start + self.max_kept + 1)
                    cuts.append((min(left, middle), max(right, middle)))
                    clip_start = max(right, middle)
                else:
                    cuts.append((left, right))
                    clip_start = right
            silence_start = None
        total = len(levels)
        if silence_start is not None and total - silence_start >= self.min_interval:
            end = min(total, silence_start + self.max_kept)
            cuts.append((quietest(silence_start, end + 1), total + 1))
        return cuts

    def spans(self, audio: np.ndarray) -> list:
        """[(start, stop)] sample ranges of ``audio`` to keep, in order."""
        n = len(audio)
        if n <= self.min_length:  # RVC compares samples with frames here; kept for identical pieces
            return [(0, n)]
        levels = self.frame_levels(audio)
        cuts = self.cuts(levels)
        if not cuts:
            return [(0, n)]
        total = len(levels)
        frames = ([(0, cuts[0][0])] if cuts[0][0] > 0 else []) + \
            [(cuts[k][1], cuts[k + 1][0]) for k in range(len(cuts) - 1)] + \
            ([(cuts[-1][1], total)] if cuts[-1][1] < total else [])
        return [(begin * self.hop, min(n, end * self.hop)) for begin, end in frames]

    def slice(self, audio: np.ndarray) -> list:
        return [audio[start:stop] for start, stop in self.spans(audio)]
