"""What a user hands over as a dataset -> the audio files to read: folders (recursive, sorted), single
files, and ``.zip`` archives, which are unpacked entry by entry into the experiment folder after every
entry has been checked. Nothing the user gave is modified or moved.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import UserError
from ..rvc.audio import AUDIO_SUFFIXES

ZIP_LIMIT = 4 * 1024 ** 3  # uncompressed bytes a dataset archive may unpack to
_COPY_CHUNK = 1 << 20


class DatasetError(UserError):
    """A dataset that cannot be used as given; the message names the file or folder and the fix."""


@dataclass(frozen=True)
class SourceFile:
    """One file to read, and the name the report gives it (its path inside what the user gave)."""

    path: Path
    name: str


def gather(sources, unpack_dir=None, zip_limit: int = ZIP_LIMIT) -> tuple:
    """(audio files, names of files skipped as not audio) for folders, files and zips, in the order
    given, each folder's files sorted. Zips unpack under ``unpack_dir`` (required when a zip is given)."""
    files, skipped = [], []
    for source in sources:
        source = Path(source).expanduser()
        if source.is_dir():
            found, ignored = _folder_files(source, source.name)
        elif source.suffix.lower() == ".zip":
            if unpack_dir is None:
                raise DatasetError(source, "a zip needs an experiment folder to unpack into")
            folder = unpack_zip(source, Path(unpack_dir) / _safe_stem(source), zip_limit)
            found, ignored = _folder_files(folder, source.name)
            if not found:
                listed = ", ".join(ignored[:5]) or "nothing"
                raise DatasetError(source, f"the archive holds no audio files (it holds {listed}); zip the "
                                           f"recordings themselves ({', '.join(sorted(AUDIO_SUFFIXES))})")
        elif source.is_file():
            found, ignored = [SourceFile(source, source.name)], []
        else:
            raise DatasetError(source, "no such file or folder")
        files += found
        skipped += ignored
    if not files:
        given = ", ".join(str(source) for source in sources) or "the upload"
        raise DatasetError(given, "no audio files found; give recordings (wav, flac, ogg, mp3, m4a ...), "
                                  "a folder of them, or a zip")
    return files, skipped


def _folder_files(folder: Path, label: str) -> tuple:
    def refuse(err):
        raise DatasetError(err.filename or folder, f"cannot read this folder ({err.strerror}); "
                                                   "check its permissions") from None

    found, ignored = [], []
    for root, dirs, names in os.walk(folder, onerror=refuse):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
        for name in sorted(n for n in names if not n.startswith(".")):
            path = Path(root) / name
            relative = f"{label}/{path.relative_to(folder).as_posix()}"
            if path.suffix.lower() in AUDIO_SUFFIXES:
                found.append(SourceFile(path, relative))
            else:
                ignored.append(relative)
    return sorted(found, key=lambda f: f.name), sorted(ignored)


def _safe_stem(path: Path) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in path.stem) or "dataset"


def unpack_zip(path: Path, folder: Path, limit: int = ZIP_LIMIT) -> Path:
    """Unpack ``path`` into ``folder`` (replacing an earlier unpacking of another version of it) after
    checking every entry: none may land outside the folder (absolute, ``..``, a symlink), and the total
    may not pass ``limit`` bytes, counted as written so a lying header cannot pass it. An archive
    unpacked before, unchanged, is reused."""
    if not zipfile.is_zipfile(path):
        raise DatasetError(path, "not a zip archive (or a damaged one); zip the recordings again")
    digest = file_digest(path)
    marker = folder / ".unpacked-from"
    if marker.is_file() and marker.read_text() == digest:
        return folder
    with zipfile.ZipFile(path) as archive:
        entries = [info for info in archive.infolist() if not info.is_dir()]
        for info in entries:
            problem = _unsafe_entry(info)
            if problem:
                raise DatasetError(path, f"entry {info.filename!r} {problem}; refusing the whole archive")
        declared = sum(info.file_size for info in entries)
        if declared > limit:
            raise DatasetError(path, f"unpacks to {_gib(declared)}, more than the {_gib(limit)} limit; split the "
                                     "dataset or raise the limit (--zip-limit)")
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            written = 0
            for info in entries:
                target = staging / PurePosixPath(info.filename)
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, open(target, "wb") as out:
                    while chunk := source.read(_COPY_CHUNK):
                        written += len(chunk)
                        if written > limit:
                            raise DatasetError(path, f"unpacks to more than the {_gib(limit)} limit (its header "
                                                     "understates the size); refusing it")
                        out.write(chunk)
            (staging / ".unpacked-from").write_text(digest)
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(staging, folder)
        except zipfile.BadZipFile as err:
            raise DatasetError(path, f"the archive is damaged ({err}); zip the recordings again") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def _unsafe_entry(info: zipfile.ZipInfo) -> str:
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "climbs out of the folder with '..'"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    return ""


def _gib(size: int) -> str:
    return f"{size / 1024 ** 3:.2f} GiB"


def file_digest(path) -> str:
    """sha256 of a file's bytes: the cache key of everything made from it."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_COPY_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def stage_uploads(uploads, folder) -> list:
    """Copy browser uploads [(temporary path, original name)] into ``folder``, replacing what the last
    upload left there, and return the sources to read: the folder and each zip (kept beside it, in
    ``<folder>-zips``). The copies keep the experiment rerunnable after gradio deletes its temp files."""
    folder = Path(folder)
    zips_folder = folder.with_name(f"{folder.name}-zips")
    if not uploads:
        return []
    for target in (folder, zips_folder):
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
    taken, zips = set(), []
    for path, name in uploads:
        name = _unique("".join(c if c.isalnum() or c in "-_. " else "_" for c in Path(name).name) or "upload", taken)
        if name.lower().endswith(".zip"):
            zips.append(zips_folder / name)
            shutil.copyfile(path, zips[-1])
        else:
            shutil.copyfile(path, folder / name)
    return ([folder] if any(folder.iterdir()) else []) + zips


def _unique(name: str, taken: set) -> str:
    stem, suffix, number, candidate = Path(name).stem, Path(name).suffix, 1, name
    while candidate.lower() in taken:
        number += 1
        candidate = f"{stem}_{number}{suffix}"
    taken.add(candidate.lower())
    return candidate
