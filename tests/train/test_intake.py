"""Bad datasets, each refused or flagged with its own message naming the file, and nothing lost."""

import hashlib
import os
import stat
import zipfile

import numpy as np
import pytest
import soundfile

from speech import flite_sentence
from webui_lora.train import intake
from webui_lora.train.intake import DatasetError, gather, stage_uploads, unpack_zip
from webui_lora.train.prepare import PrepareOptions, Target, dataset_report, prepare

TARGET = Target("v2", 40000, True)


def digests(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def prepare_refuses(sources, out, hubert, match):
    with pytest.raises(DatasetError, match=match):
        prepare(sources, out, TARGET, PrepareOptions(f0_method="pm", workers=1), hubert_path=hubert)


def test_an_empty_upload_or_folder(tmp_path):
    with pytest.raises(DatasetError, match="the upload: no audio files found"):
        gather([])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty: no audio files found"):
        gather([tmp_path / "empty"])
    with pytest.raises(DatasetError, match="nowhere: no such file or folder"):
        gather([tmp_path / "nowhere"])


def test_a_zip_of_non_audio(tmp_path):
    archive = tmp_path / "docs.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt", "hello")
        z.writestr("cover.jpg", b"\xff\xd8")
    with pytest.raises(DatasetError, match=r"docs.zip: the archive holds no audio files \(it holds docs.zip/cover.jpg"):
        gather([archive], tmp_path / "exp")


@pytest.mark.parametrize("entry, problem", [("../../evil.wav", "climbs out of the folder with '..'"),
                                            ("/etc/evil.wav", "has an absolute path"),
                                            ("ok/../../evil.wav", "climbs out")])
def test_zip_slip_entries_refuse_the_whole_archive(tmp_path, entry, problem):
    archive = tmp_path / "slip.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("good.wav", b"RIFF")
        z.writestr(entry, b"RIFF")
    with pytest.raises(DatasetError, match=f"slip.zip: entry '{entry}' {problem}"):
        unpack_zip(archive, tmp_path / "exp" / "slip")
    assert not (tmp_path / "exp").exists() and not (tmp_path.parent / "evil.wav").exists()


def test_a_symlink_entry_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    info = zipfile.ZipInfo("voice.wav")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(info, "/etc/passwd")
    with pytest.raises(DatasetError, match="entry 'voice.wav' is a symbolic link"):
        unpack_zip(archive, tmp_path / "out")


def test_a_zip_bomb_is_refused_before_anything_is_written(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.wav", b"\0" * 200_000)  # compresses to a few hundred bytes
    assert archive.stat().st_size < 2000
    with pytest.raises(DatasetError, match=r"bomb.zip: unpacks to 0.00 GiB, more than the 0.00 GiB limit"):
        unpack_zip(archive, tmp_path / "out", limit=100_000)
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == [archive]


def test_a_good_zip_unpacks_once_and_its_audio_is_read(tmp_path, dataset_source):
    archive = tmp_path / "voice.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(dataset_source.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(dataset_source).as_posix())
    files, skipped = gather([archive], tmp_path / "exp")
    assert [f.name for f in files] == ["voice.zip/kal.ogg", "voice.zip/more/awb.wav", "voice.zip/rms.mp3",
                                       "voice.zip/slt.flac"] and skipped == ["voice.zip/notes.txt"]
    first = files[0].path.stat().st_mtime_ns
    gather([archive], tmp_path / "exp")
    assert files[0].path.stat().st_mtime_ns == first  # unchanged archive: not unpacked again


def test_silent_short_undecodable_truncated_and_clipped_files_are_reported(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    speech = flite_sentence("One more sentence for the report.", "slt", 16000)
    soundfile.write(folder / "good.wav", speech, 16000)
    soundfile.write(folder / "silent.wav", np.zeros(32000, dtype=np.float32), 16000)
    soundfile.write(folder / "short.wav", speech[:8000], 16000)
    (folder / "broken.mp3").write_bytes(b"ID3 but nothing after it")
    soundfile.write(folder / "clipped.wav", np.clip(speech * 8, -1, 1), 16000, subtype="PCM_16")
    soundfile.write(folder / "cut.wav", speech, 16000, subtype="PCM_16")
    whole = (folder / "cut.wav").read_bytes()
    (folder / "cut.wav").write_bytes(whole[: len(whole) // 2])
    before = digests(folder)
    report = dataset_report([folder], TARGET)
    problems = {f.name.split("/")[-1]: f.problem for f in report.files}
    assert problems["good.wav"] == "" and problems["clipped.wav"] == "" and problems["cut.wav"] == ""
    assert problems["silent.wav"].startswith("all silent")
    assert problems["short.wav"] == "too short (0.50 s; at least 1 s)"
    assert problems["broken.mp3"].startswith("cannot be read: ")
    warnings = "\n".join(report.warnings())
    assert "mixed/clipped.wav: clipping: " in warnings and "mixed/cut.wav: truncated: 50% of the samples" in warnings
    text = report.as_markdown()
    assert "**Refused:**" in text and "- mixed/short.wav: too short" in text
    assert digests(folder) == before  # nothing the user gave is changed


def test_all_silent_and_too_little_audio_refuse_to_prepare(tmp_path, hubert):
    silent = tmp_path / "silent"
    silent.mkdir()
    soundfile.write(silent / "room.wav", np.zeros(48000, dtype=np.float32), 16000)
    prepare_refuses([silent], tmp_path / "exp", hubert, r"none of its 1 file\(s\) is usable \(silent/room.wav: all silent")
    little = tmp_path / "little"
    little.mkdir()
    soundfile.write(little / "hi.wav", flite_sentence("Hello there, how are you?", "rms", 16000), 16000)
    prepare_refuses([little], tmp_path / "exp2", hubert, r"little: only \d\.\d s of usable audio in total; at least 10 s")
    assert not (tmp_path / "exp2" / "filelist.txt").exists()  # nothing a trainer would take for a dataset


def test_an_unreadable_folder_is_named(tmp_path, monkeypatch):
    folder = tmp_path / "locked"
    folder.mkdir()

    def walk(top, onerror):
        onerror(PermissionError(13, "Permission denied", str(top)))
        return iter(())

    monkeypatch.setattr(intake.os, "walk", walk)
    with pytest.raises(DatasetError, match=f"{folder}: cannot read this folder \\(Permission denied\\)"):
        gather([folder])


def test_uploads_are_copied_and_replace_the_last_upload(tmp_path):
    (tmp_path / "t1").write_bytes(b"a")
    (tmp_path / "t2").write_bytes(b"b")
    (tmp_path / "t3").write_bytes(b"PK")
    sources = stage_uploads([(tmp_path / "t1", "take 1.wav"), (tmp_path / "t2", "take 1.wav"),
                             (tmp_path / "t3", "more.zip")], tmp_path / "exp" / "uploads")
    assert sources == [tmp_path / "exp" / "uploads", tmp_path / "exp" / "uploads-zips" / "more.zip"]
    assert sorted(os.listdir(sources[0])) == ["take 1.wav", "take 1_2.wav"]
    assert stage_uploads([(tmp_path / "t1", "new.wav")], tmp_path / "exp" / "uploads") == [sources[0]]
    assert os.listdir(sources[0]) == ["new.wav"] and (tmp_path / "t1").read_bytes() == b"a"
