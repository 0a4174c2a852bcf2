"""End to end on CPU: a flite-spoken sentence through a tiny random RVC model and HuBERT, with and
without adapters and an index, through the Python API and the CLI."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch

from builders import tiny_hubert_folder, tiny_model_file
from lora_core import LoRAConfig, inject_lora, save_adapter
from speech import flite_sentence
from webui_lora.assets import Assets
from webui_lora.convert import ChunkPlan, ConversionSettings, VoiceConverter, quiet_cut_points
from webui_lora.rvc.audio import AudioInputError
from webui_lora.rvc.checkpoints import load_model
from webui_lora.rvc.index import build_index

SENTENCE = "The quick brown fox jumps over the lazy dog."
FAST = dict(f0_method="pm", seed=0)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("assets")
    tiny_hubert_folder(root)
    (root / "weights").mkdir()
    model = tiny_model_file(root / "weights", "v2_f0_40k")
    tiny_model_file(root / "weights", "v1_nof0_48k")
    (root / "adapters").mkdir()
    net = load_model(model).synthesizer
    inject_lora(net, LoRAConfig(r=2, lora_alpha=2, target_modules=["dec.ups", "dec.resblocks"],
                                init_lora_weights=False), "voice")
    save_adapter(net, root / "adapters" / "voice.safetensors", "voice", extra={"version": "v2", "sr": 40000, "f0": True})
    speech = root / "speech.wav"
    soundfile.write(speech, flite_sentence(SENTENCE, "slt", 22050), 22050)
    return Assets.discover(root)


@pytest.fixture(scope="module")
def converter(assets):
    return VoiceConverter(assets, device="cpu")


def model(assets, name="v2_f0_40k"):
    return assets.assets_dir / "weights" / f"{name}.pth"


def test_output_rate_and_length(assets, converter):
    converter.load(model(assets))
    result = converter.convert_file(assets.assets_dir / "speech.wav", ConversionSettings(**FAST))
    seconds = soundfile.info(assets.assets_dir / "speech.wav").duration
    assert result.sr == 40000 and result.audio.dtype == np.int16
    assert abs(len(result.audio) / 40000 - seconds) < 0.03
    assert np.abs(result.audio).max() > 0
    assert len(result.f0) == len(result.input_f0) and (result.input_f0 > 0).mean() > 0.3
    assert set(result.timings) == {"f0", "features", "synthesis", "post"}


def test_resample_and_no_f0_model(assets, converter):
    converter.load(model(assets, "v1_nof0_48k"))
    result = converter.convert_file(assets.assets_dir / "speech.wav", ConversionSettings(resample_sr=22050, **FAST))
    assert result.sr == 22050 and result.f0 is None


def test_strength_zero_is_bit_identical_and_strength_changes_output(assets, converter):
    speech = assets.assets_dir / "speech.wav"
    adapter = assets.assets_dir / "adapters" / "voice.safetensors"
    converter.load(model(assets))
    base = converter.convert_file(speech, ConversionSettings(**FAST)).audio
    converter.load(model(assets), [(adapter, 0.0)])
    assert np.array_equal(converter.convert_file(speech, ConversionSettings(**FAST)).audio, base)
    converter.load(model(assets), [(adapter, 1.0)])
    adapted = converter.convert_file(speech, ConversionSettings(**FAST)).audio
    assert not np.array_equal(adapted, base)
    converter.load(model(assets))
    assert np.array_equal(converter.convert_file(speech, ConversionSettings(**FAST)).audio, base)


def test_adapter_for_another_model_is_refused(assets, converter):
    adapter = assets.assets_dir / "adapters" / "voice.safetensors"
    with pytest.raises(ValueError, match="voice.safetensors"):
        converter.load(model(assets, "v1_nof0_48k"), [(adapter, 1.0)])
    assert converter.compatible_adapters(model(assets, "v1_nof0_48k")) == []
    assert [p.name for p, _ in converter.compatible_adapters(model(assets))] == ["voice.safetensors"]


def test_index_retrieval(assets, converter, tmp_path):
    converter.load(model(assets))
    speech = assets.assets_dir / "speech.wav"
    from webui_lora.rvc.audio import load_audio
    feats = converter.hubert().features(load_audio(speech, 16000)[None], "v2")[0].numpy()
    rng = np.random.default_rng(0)
    index_path = tmp_path / "added_IVF1_Flat_nprobe_1_tiny_v2.index"
    build_index(np.concatenate([feats + rng.normal(0, 1.0, feats.shape), rng.normal(0, 1, (400, 768))]).astype(
        np.float32), index_path)
    base = converter.convert_file(speech, ConversionSettings(**FAST)).audio
    with_index = converter.convert_file(speech, ConversionSettings(index_path=str(index_path), index_rate=0.75, **FAST))
    rate_zero = converter.convert_file(speech, ConversionSettings(index_path=str(index_path), index_rate=0.0, **FAST))
    assert not np.array_equal(with_index.audio, base)
    assert np.array_equal(rate_zero.audio, base)


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "no such audio file"),
    (lambda p: soundfile.write(p, np.zeros(0, np.float32), 16000), "no audio samples|cannot decode"),
    (lambda p: soundfile.write(p, np.zeros(16000, np.float32), 16000), "silent"),
    (lambda p: soundfile.write(p, np.full(800, 0.1, np.float32), 16000), "too short"),
    (lambda p: p.write_text("not audio"), "cannot decode|not an audio file"),
])
def test_bad_inputs_name_the_file(assets, converter, tmp_path, make, message):
    path = tmp_path / "input.wav"
    make(path)
    converter.load(model(assets))
    with pytest.raises(AudioInputError, match=message) as info:
        converter.convert_file(path, ConversionSettings(**FAST))
    assert str(path) in str(info.value)


def test_batch_reports_bad_file_and_finishes_the_rest(assets, converter, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.wav").write_bytes((assets.assets_dir / "speech.wav").read_bytes())
    (folder / "b.wav").write_text("garbage")
    (folder / "c.flac").write_bytes(b"")
    soundfile.write(folder / "d.flac", flite_sentence("Second file.", "rms"), 16000)
    converter.load(model(assets))
    seen = []
    items = converter.convert_files([folder], tmp_path / "out", ConversionSettings(**FAST), "flac",
                                    progress=lambda done, total, item: seen.append((done, total)))
    assert [i.input.name for i in items] == ["a.wav", "b.wav", "c.flac", "d.flac"]
    assert [i.error is None for i in items] == [True, False, False, True]
    assert "b.wav" in items[1].error
    assert soundfile.info(tmp_path / "out" / "d.flac").samplerate == 40000
    assert seen[-1] == (4, 4)


def test_long_input_is_cut_near_quiet_points():
    plan = ChunkPlan(1, 1, 3, 4)
    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.3, 16000 * 10)
    audio[16000 * 3 + 4000:16000 * 3 + 4800] = 0
    cuts = quiet_cut_points(audio, plan)
    assert len(cuts) == 3 and 16000 * 3 + 4000 <= cuts[0] <= 16000 * 3 + 4800
    assert quiet_cut_points(audio[:16000 * 3], plan) == []


def test_long_input_converts_in_chunks(assets, tmp_path):
    converter = VoiceConverter(assets, device="cpu")
    converter.plan = ChunkPlan(1, 1, 2, 3)
    converter.load(model(assets))
    speech = np.concatenate([flite_sentence(SENTENCE)] * 2)
    result = converter.convert_audio(speech, ConversionSettings(**FAST))
    assert abs(len(result.audio) - len(speech) / 16000 * 40000) < 40000 * 0.05


def test_cli_convert_and_info(assets, tmp_path):
    out = tmp_path / "out.wav"
    adapter = assets.assets_dir / "adapters" / "voice.safetensors"
    command = [sys.executable, "-m", "webui_lora", "convert", "--model", "v2_f0_40k", "--adapter", f"{adapter}:0.5",
               "--input", str(assets.assets_dir / "speech.wav"), "--output", str(out), "--f0-method", "pm",
               "--assets", str(assets.assets_dir), "--seed", "0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert soundfile.info(out).samplerate == 40000
    info = subprocess.run([sys.executable, "-m", "webui_lora", "info", str(adapter), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert '"type": "adapter"' in info.stdout and '"ranks": [\n    2\n  ]' in info.stdout
    missing = subprocess.run([sys.executable, "-m", "webui_lora", "convert", "--model", "nope", "--input", "x.wav",
                              "--output", str(tmp_path), "--assets", str(assets.assets_dir)],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "nope: no such model file" in missing.stderr


@pytest.mark.parametrize("suffix, rate", [(".ogg", 44100), (".mp3", 22050), (".flac", 8000)])
def test_other_formats_rates_and_stereo_in_and_out(assets, converter, tmp_path, suffix, rate):
    mono = flite_sentence(SENTENCE, "awb", rate)
    path = tmp_path / f"stereo{suffix}"
    soundfile.write(path, np.stack([mono, 0.5 * mono], axis=1), rate)
    converter.load(model(assets))
    result = converter.convert_file(path, ConversionSettings(**FAST))
    assert abs(len(result.audio) / result.sr - len(mono) / rate) < 0.1
    from webui_lora.rvc.audio import save_audio
    written = save_audio(tmp_path / "out.mp3", result.audio, result.sr)
    info = soundfile.info(written)
    # MP3 has no 40 kHz rate: the encoder resamples to a standard one and keeps the duration.
    assert info.samplerate in (44100, 48000) and abs(info.duration - len(result.audio) / 40000) < 0.1


def test_speaker_id_out_of_range(assets, converter):
    converter.load(model(assets))
    with pytest.raises(ValueError, match="speaker id 7: out of range; v2_f0_40k.pth has 3 speakers"):
        converter.convert_file(assets.assets_dir / "speech.wav", ConversionSettings(speaker_id=7, **FAST))


def test_harvest_with_median_filter(assets, converter):
    converter.load(model(assets))
    result = converter.convert_file(assets.assets_dir / "speech.wav", ConversionSettings(f0_method="harvest", seed=0))
    assert (result.input_f0 > 0).mean() > 0.3


@pytest.mark.parametrize("rate", [0.25, 0.3])
def test_loudness_mix_is_rvcs_formula_block_by_block(rate):
    """RVC's change_rms, written as RVC writes it (librosa rms, torch linear interpolation and pow),
    against the block-wise gain and int16 conversion that keep a long output's memory flat."""
    import librosa
    import torch.nn.functional as F

    from webui_lora.convert import RmsMix, loudness_envelope, to_int16

    rng = np.random.default_rng(0)
    source = rng.standard_normal(16000 * 3 + 77) * np.linspace(0.01, 0.5, 16000 * 3 + 77)
    converted = (rng.standard_normal(40000 * 3 + 193) * 0.4).astype(np.float32)
    envelopes = []
    for audio, sr in ((source, 16000), (converted, 40000)):
        rms = librosa.feature.rms(y=audio, frame_length=sr // 2 * 2, hop_length=sr // 2)
        envelopes.append(F.interpolate(torch.from_numpy(rms).unsqueeze(0), size=len(converted), mode="linear").squeeze())
    rms_in, rms_out = envelopes[0], torch.max(envelopes[1], torch.zeros_like(envelopes[1]) + 1e-6)
    expected = converted * (torch.pow(rms_in, torch.tensor(1 - rate)) * torch.pow(rms_out, torch.tensor(rate - 1))).numpy()

    gain = RmsMix(loudness_envelope(source, 16000), loudness_envelope(converted, 40000), len(converted), rate)
    np.testing.assert_allclose(converted * gain(0, len(converted)), expected, rtol=1e-6, atol=0)  # RVC: float32 rms
    whole = (expected * (32768 / max(np.abs(expected).max() / 0.99, 1))).astype(np.int16)
    assert np.abs(to_int16(converted, gain, block=1000).astype(int) - whole).max() <= 1


@pytest.mark.parametrize("samples", [19, 5000, 70_001])
def test_block_high_pass_is_scipys_filtfilt_bit_for_bit(samples):
    from scipy import signal

    from webui_lora.convert import high_pass
    from webui_lora.rvc.audio import high_pass_coefficients

    audio = np.random.default_rng(samples).standard_normal(samples) * 0.1
    expected = signal.filtfilt(*high_pass_coefficients(16000), audio)
    assert np.array_equal(high_pass(audio, block=1000), expected)


@pytest.mark.parametrize("seconds", [41.02, 45, 76.5, 79, 200])
def test_cut_search_over_regions_matches_a_whole_input_search(seconds):
    """The search looks at window sums near each cut only; RVC computes them over the whole input."""
    plan = ChunkPlan.for_device(torch.device("cpu"), False)
    audio = np.random.default_rng(1).standard_normal(int(seconds * 16000)) * np.linspace(0.01, 1, int(seconds * 16000))
    padded = np.pad(audio, (80, 80), mode="reflect")
    sums = np.abs(np.convolve(padded, np.ones(160), mode="valid")[:len(audio)])
    query, center = 16000 * plan.x_query, 16000 * plan.x_center
    expected = [t - query + int(np.argmin(sums[t - query:t + query])) for t in range(center, len(audio), center)]
    assert quiet_cut_points(audio, plan) == (expected if len(padded) > 16000 * plan.x_max else [])
