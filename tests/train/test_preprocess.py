"""RVC's preprocessing rules, one at a time: the causal high-pass, 3.7 s windows overlapping by 0.3 s,
the 2.5 peak rule, the 75/25 loudness mix, and the sampler's minimum length."""

import numpy as np
import pytest
from scipy import signal

from webui_lora.train.preprocess import (PreprocessSettings, high_pass, make_pieces, normalise, to_16k, trainable,
                                         windows)

SR = 40000


def test_windows_step_3_4_s_and_end_with_the_rest():
    audio = np.arange(10 * SR, dtype=np.float64)
    pieces = windows(audio, SR, 3.7)
    assert [p[0] / SR for p in pieces] == pytest.approx([0, 3.4, 6.8])
    assert [len(p) / SR for p in pieces] == pytest.approx([3.7, 3.7, 3.2])


@pytest.mark.parametrize("seconds, count", [(3.9, 1), (4.0, 1), (4.01, 2), (7.4, 2), (7.41, 3)])
def test_a_window_needs_more_than_4_s_left(seconds, count):
    assert len(windows(np.zeros(int(seconds * SR)), SR, 3.7)) == count


def test_loudness_mix_is_three_quarters_normalised_to_0_9():
    piece = np.array([0.2, -0.4, 0.1])
    mixed = normalise(piece, 0.4)
    assert mixed == pytest.approx(piece / 0.4 * 0.675 + 0.25 * piece)
    assert np.abs(mixed).max() == pytest.approx(0.675 + 0.1)


def test_high_pass_is_rvcs_causal_butterworth():
    impulse = np.zeros(4000)
    impulse[2000] = 1
    filtered = high_pass(impulse, SR)
    assert np.all(filtered[:2000] == 0)  # causal: nothing before the impulse (filtfilt would pre-ring)
    b, a = signal.butter(5, 48, btype="high", fs=SR)
    assert filtered == pytest.approx(signal.lfilter(b, a, impulse))
    hum = np.sin(2 * np.pi * 20 * np.arange(4 * SR) / SR)
    assert np.abs(high_pass(hum, SR)[SR:]).max() < 0.05  # 20 Hz rumble is gone


def test_pieces_louder_than_2_5_and_too_short_for_the_sampler_are_left_out():
    t = np.arange(int(5 * SR)) / SR
    speech = 0.3 * np.sin(2 * np.pi * 200 * t)
    loud = np.concatenate([speech, np.zeros(2 * SR), 10.0 * speech])  # peaks at 3.0
    result = make_pieces(loud, PreprocessSettings(SR))
    assert result.loud == 2 and len(result.audio) == 2  # the 3.0-peak slice's two pieces are dropped
    hop = SR // 100
    assert trainable(30286, hop) and not trainable(30285, hop)  # (4 n + 58) // 1200 > 100: about 0.757 s


def test_pieces_have_rvcs_lengths_and_16k_copies():
    t = np.arange(int(9 * SR)) / SR
    result = make_pieces(0.3 * np.sin(2 * np.pi * 180 * t), PreprocessSettings(SR))
    assert [len(p) for p in result.audio] == [int(3.7 * SR), int(3.7 * SR), 9 * SR - int(6.8 * SR)]
    assert all(0.675 < np.abs(p).max() < 0.9 for p in result.audio)  # 0.675 + a quarter of the 0.3 peak
    assert len(to_16k(result.audio[0], SR)) == int(3.7 * 16000)


def test_the_settings_key_changes_with_every_setting():
    keys = {PreprocessSettings(40000).key(), PreprocessSettings(48000).key(), PreprocessSettings(40000, 3.0).key()}
    assert len(keys) == 3 and PreprocessSettings(40000).key() == PreprocessSettings(40000).key()
