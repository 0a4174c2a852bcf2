"""RVC's silence slicer on hand-made signals whose silences are known to the sample."""

import numpy as np
import pytest

from webui_lora.train.slicer import Slicer, SlicerSettings

SR = 40000


def tone(seconds, level=0.3, f=220.0):
    t = np.arange(int(seconds * SR)) / SR
    return level * np.sin(2 * np.pi * f * t)


def silence(seconds):
    return np.zeros(int(seconds * SR))


def concat(*parts):
    """The signal and the [start, stop) sample range of each part."""
    bounds, start = [], 0
    for part in parts:
        bounds.append((start, start + len(part)))
        start += len(part)
    return np.concatenate(parts), bounds


@pytest.fixture
def slicer():
    return Slicer(SR)


def test_frames_follow_rvcs_rounding(slicer):
    assert (slicer.hop, slicer.window) == (600, 2400)  # 15 ms hop; window min(400 ms, 4 hops)
    assert (slicer.min_length, slicer.min_interval, slicer.max_kept) == (100, 27, 33)
    assert slicer.threshold == pytest.approx(10 ** (-42 / 20))


def test_a_long_pause_is_cut_keeping_at_most_half_a_second_each_side(slicer):
    audio, ((_, speech_end), (pause_start, pause_end), (next_start, _)) = concat(tone(2), silence(2), tone(2))
    spans = slicer.spans(audio)
    assert len(spans) == 2
    (first_start, first_stop), (second_start, second_stop) = spans
    assert first_start == 0 and second_stop == len(audio)
    kept_after, kept_before = first_stop - speech_end, next_start - second_start
    window = slicer.window
    assert 0 <= kept_after <= 0.5 * SR + window and 0 <= kept_before <= 0.5 * SR + window
    assert np.all(audio[first_stop:second_start] == 0)  # only silence is dropped


@pytest.mark.parametrize("pause", [0.3, 0.39])
def test_a_pause_shorter_than_min_interval_stays(slicer, pause):
    audio, _ = concat(tone(2), silence(pause), tone(2))
    assert slicer.spans(audio) == [(0, len(audio))]


def test_a_medium_pause_is_cut_once_at_its_quietest_frame(slicer):
    audio, (_, (pause_start, pause_end), _) = concat(tone(2), silence(0.5), tone(2))
    spans = slicer.spans(audio)
    assert len(spans) == 2 and spans[0][1] == spans[1][0]  # a cut point, nothing dropped
    assert pause_start <= spans[0][1] <= pause_end


def test_no_cut_after_a_clip_shorter_than_min_length(slicer):
    audio, _ = concat(tone(0.6), silence(0.6), tone(2))  # speech resumes 1.2 s in: under min_length
    assert slicer.spans(audio) == [(0, len(audio))]


def test_leading_and_trailing_silence_are_trimmed_to_half_a_second(slicer):
    audio, ((_, lead_end), (speech_start, speech_end), _) = concat(silence(1.5), tone(3), silence(2))
    spans = slicer.spans(audio)
    assert len(spans) == 1
    start, stop = spans[0]
    assert lead_end - 0.5 * SR - slicer.window <= start <= lead_end
    assert speech_end <= stop <= speech_end + 0.5 * SR + slicer.window


def test_quiet_noise_under_the_threshold_counts_as_silence(slicer):
    rng = np.random.default_rng(0)
    hiss = rng.standard_normal(int(2 * SR)) * 10 ** (-60 / 20)
    audio, (_, (pause_start, pause_end), _) = concat(tone(2), hiss, tone(2))
    spans = slicer.spans(audio)
    assert len(spans) == 2 and pause_start < spans[0][1] < spans[1][0] < pause_end


def test_many_pauses_give_ordered_disjoint_spans_covering_every_tone(slicer):
    rng = np.random.default_rng(1)
    parts = []
    for _ in range(8):
        parts += [tone(rng.uniform(1.6, 3)), silence(rng.uniform(0.6, 2.5))]
    audio, bounds = concat(*parts)
    spans = slicer.spans(audio)
    assert all(a < b <= c for (a, b), (c, _) in zip(spans, spans[1:]))
    for start, stop in bounds[::2]:  # every tone sample is kept
        assert any(a <= start and stop <= b for a, b in spans)


def test_settings_are_checked():
    with pytest.raises(ValueError, match="min_length_ms >= min_interval_ms >= hop_ms"):
        Slicer(SR, SlicerSettings(min_length_ms=100, min_interval_ms=400))
