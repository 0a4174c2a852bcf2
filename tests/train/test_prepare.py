"""A real dataset through intake and RVC's preprocessing on CPU: pieces, f0, features, filelist,
config and index as RVC's trainer reads them; the cache; resuming a killed run."""

import json
import os

import faiss
import numpy as np
import pytest
import soundfile
from scipy.io import wavfile

from webui_lora.rvc.configs import rvc_config
from webui_lora.rvc.index import FeatureIndex, index_lists
from webui_lora.rvc.pitch import coarse_f0
from webui_lora.train import prepare as prepare_module
from webui_lora.train.preprocess import PreprocessSettings, make_pieces, windows
from webui_lora.train.prepare import PrepareOptions, Target, prepare
from webui_lora.train.slicer import Slicer

TARGET = Target("v2", 40000, True)
PM = PrepareOptions(f0_method="pm", workers=1)


def run(dataset, out, hubert, options=PM, target=TARGET):
    return prepare([dataset], out, target, options, hubert_path=hubert)


def rvc_filelist(path):
    """RVC's TextAudioLoaderMultiNSFsid reading: '|'-separated lines of wav, feature, coarse f0, f0 in Hz,
    speaker id; the loader's own checks (every file there, an int id) applied."""
    entries = []
    for line in path.read_text().split("\n"):
        fields = line.split("|")
        assert len(fields) == 5, line
        wav, feature, coarse, hz, speaker = fields
        assert all(os.path.isabs(p) and os.path.isfile(p) for p in (wav, feature, coarse, hz)) and int(speaker) == 0
        entries.append(fields)
    return entries


def file_times(folder):
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_pieces_follow_rvcs_rules_and_every_file_has_rvcs_shapes(dataset, hubert, tmp_path):
    result = run(dataset, tmp_path / "exp", hubert)
    exp, report = result.experiment, result.report
    assert [f.name for f in report.files] == ["voice/kal.ogg", "voice/more/awb.wav", "voice/rms.mp3", "voice/slt.flac"]
    assert report.skipped == ["voice/notes.txt"] and all(f.usable for f in report.files)
    assert [(f.sample_rate, f.channels) for f in report.files] == [(8000, 1), (48000, 1), (22050, 1), (44100, 2)]

    names = []
    for digest, entry in json.loads(exp.state_file.read_text())["sources"].items():
        names += entry["pieces"]
        source = next(f for f in report.files if f.digest == digest)
        assert all(name.startswith(digest[:12]) for name in entry["pieces"])
        # the pieces are the windows of the slicer's spans, at the model's rate
        gt = [wavfile.read(exp.piece_files(n)["wav"]) for n in entry["pieces"]]
        assert all(sr == 40000 and audio.dtype == np.float32 for sr, audio in gt)
        decoded = soundfile.read(source.path, dtype="float32", always_2d=True) if not source.path.endswith(".mp3") \
            else None
        if decoded is not None and decoded[1] == 48000:  # check the windowing against the spans directly
            import soxr
            mono = soxr.resample(decoded[0].mean(axis=1), 48000, 40000, quality="HQ")
            from webui_lora.train.preprocess import high_pass
            spans = Slicer(40000).spans(high_pass(mono.astype(np.float64), 40000))
            lengths = [len(w) for a, b in spans for w in windows(np.zeros(b - a), 40000, 3.7)]
            assert [len(audio) for _, audio in gt] == [n for n in lengths if n > 30285]
        assert all(len(audio) <= int(4.0 * 40000) for _, audio in gt)  # 3.7 s, or a last piece under 4 s
    assert len(names) == report.pieces > 0

    voiced = []
    for name in names:
        files = exp.piece_files(name)
        sr16, audio16 = wavfile.read(files["wav16k"])
        samples = len(audio16)
        assert sr16 == 16000 and abs(samples / 16000 - len(wavfile.read(files["wav"])[1]) / 40000) < 1e-3
        coarse, hz, features = (np.load(files[k]) for k in ("f0_coarse", "f0_hz", "features"))
        assert coarse.dtype == np.int64 and hz.dtype == np.float64 and features.dtype == np.float32
        assert len(coarse) == len(hz) == samples // 160  # pm's frame count, RVC's p_len
        assert np.array_equal(coarse, coarse_f0(hz)) and (hz > 0).any()
        voiced.append(hz > 0)
        assert features.shape == ((samples - 400) // 320 + 1, 768)  # HuBERT's 50 Hz frames, v2 width
        assert abs(2 * len(features) - len(hz)) <= 2  # what RVC's loader lines up after repeating x2

    assert np.concatenate(voiced).mean() > 0.3  # speech is mostly voiced
    entries = rvc_filelist(exp.filelist)
    assert len(entries) == len(names) + 2
    mute = [e for e in entries if "/mute/" in e[0]]
    assert len(mute) == 2 and mute[0] == mute[1] and mute[0][0].endswith("mute/0_gt_wavs/mute40k.wav")
    assert np.load(mute[0][2]).tolist() == [1] * 301 and not np.load(mute[0][3]).any()
    assert np.load(mute[0][1]).shape == (149, 768) and wavfile.read(mute[0][0])[1].dtype == np.int16
    assert json.loads(exp.config.read_text()) == rvc_config("v2", 40000)
    assert json.loads(exp.config.read_text())["data"]["hop_length"] == 400

    frames = sum(len(np.load(exp.piece_files(n)["features"])) for n in names)
    index = faiss.read_index(str(result.index))
    assert result.index.name == f"added_IVF{index_lists(frames)}_Flat_nprobe_1_exp_v2.index"
    assert (index.ntotal, index.d) == (frames, 768) and FeatureIndex.load(result.index).dim == 768
    assert json.loads(exp.report.read_text())["pieces"] == len(names)


def test_a_rerun_does_no_work_and_a_changed_file_redoes_only_its_pieces(dataset, hubert, tmp_path):
    out = tmp_path / "exp"
    first = run(dataset, out, hubert)
    before = file_times(out)
    again = run(dataset, out, hubert)
    assert sum(again.done.values()) == 0 and again.reused["read"] == 4
    assert again.reused["f0"] == again.reused["features"] == first.report.pieces
    assert file_times(out) == before  # nothing rewritten

    changed = dataset / "slt.flac"
    audio, sr = soundfile.read(changed)
    soundfile.write(changed, audio[: len(audio) * 2 // 3], sr)
    third = run(dataset, out, hubert)
    slt_pieces = next(f for f in third.report.files if f.name == "voice/slt.flac").pieces
    assert third.done["read"] == 1 and third.reused["read"] == 3
    assert third.done["f0"] == third.done["features"] == slt_pieces and third.done["index"] == 1
    after = file_times(out)
    unchanged = [p for p in before if p.parent.name == "0_gt_wavs" and p in after]
    assert unchanged and all(after[p] == before[p] for p in unchanged)
    stale = set(before) - set(after)
    assert stale and all(p.name.startswith(first.report.files[3].digest[:12]) or "IVF" in p.name for p in stale)


def test_a_changed_f0_method_redoes_f0_only(dataset, hubert, tmp_path):
    out = tmp_path / "exp"
    first = run(dataset, out, hubert)
    second = run(dataset, out, hubert, PrepareOptions(f0_method="dio", workers=1))
    assert second.done["f0"] == first.report.pieces
    assert second.done["read"] == second.done["features"] == second.done["index"] == 0


def test_f0_on_a_process_pool_matches_f0_in_process(dataset, hubert, tmp_path, monkeypatch):
    monkeypatch.setattr(prepare_module, "PARALLEL_F0_MIN_PIECES", 1)
    monkeypatch.setattr(prepare_module, "FAST_F0_METHODS", set())
    pooled = run(dataset, tmp_path / "pooled", hubert, PrepareOptions(f0_method="pm", workers=2))
    inline = run(dataset, tmp_path / "inline", hubert)
    for name in json.loads(pooled.experiment.state_file.read_text())["sources"].popitem()[1]["pieces"]:
        a, b = pooled.experiment.piece_files(name), inline.experiment.piece_files(name)
        assert np.array_equal(np.load(a["f0_hz"]), np.load(b["f0_hz"]))


def test_a_killed_run_resumes_and_never_trusts_a_partial_file(dataset, hubert, tmp_path, monkeypatch):
    out = tmp_path / "exp"
    calls = []
    real = prepare_module._Preparation._content_features

    def dies_on_the_third_batch(self, audio):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-way
        return real(self, audio)

    monkeypatch.setattr(prepare_module._Preparation, "_content_features", dies_on_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        run(dataset, out, hubert)
    monkeypatch.undo()
    assert not list(out.rglob("*.part"))  # the interrupted write left nothing behind
    (out / "0_gt_wavs" / ".stray.wav.part").write_bytes(b"half a file")  # what a SIGKILL could leave
    resumed = run(dataset, out, hubert)
    assert resumed.reused["read"] == 4 and resumed.reused["f0"] == resumed.report.pieces
    assert 0 < resumed.done["features"] < resumed.report.pieces  # the two finished files were kept
    assert not (out / "0_gt_wavs" / ".stray.wav.part").exists()
    rvc_filelist(resumed.experiment.filelist)


def test_no_f0_and_v1_targets(dataset, hubert, tmp_path):
    result = run(dataset, tmp_path / "exp", hubert, PrepareOptions(index=False), Target("v1", 48000, False))
    exp = result.experiment
    assert not exp.f0_coarse.exists() and result.index is None
    lines = exp.filelist.read_text().split("\n")
    assert all(len(line.split("|")) == 3 for line in lines) and "3_feature256" in lines[0]
    assert json.loads(exp.config.read_text())["data"]["sampling_rate"] == 48000
    name = lines[0].split("|")[0]
    assert wavfile.read(name)[0] == 48000 and np.load(lines[0].split("|")[1]).shape[1] == 256


def test_make_pieces_equals_what_prepare_wrote(dataset, hubert, tmp_path):
    result = run(dataset, tmp_path / "exp", hubert)
    source = next(f for f in result.report.files if f.name == "voice/more/awb.wav")
    import soxr
    audio, sr = soundfile.read(source.path, dtype="float32")
    expected = make_pieces(soxr.resample(audio, sr, 40000, quality="HQ"), PreprocessSettings(40000)).audio
    names = json.loads(result.experiment.state_file.read_text())["sources"][source.digest]["pieces"]
    written = [wavfile.read(result.experiment.piece_files(n)["wav"])[1] for n in names]
    assert len(written) == len(expected) and all(np.array_equal(a, b) for a, b in zip(written, expected))
