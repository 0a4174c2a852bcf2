"""``prepare``: a user's recordings -> a training-ready experiment folder, as RVC prepares one.

Stages: read and check every file (the QA report), cut RVC's pieces, f0 per piece (any method of the
pitch registry, on a process pool where that pays), HuBERT/ContentVec features per piece (the loader
conversion uses), the mute examples, RVC's filelist and config, and the faiss index.

Everything is cached in the folder by content: a piece is named after its source file's sha256, and
prepare.json records which settings made each file's pieces, f0 and features. A rerun over the same
data does no work; a changed file redoes its own pieces only; a changed f0 method redoes f0 only; a
changed HuBERT or version redoes features only. A run killed at any point resumes: every file is
written whole under a temporary name, and only files prepare.json lists are trusted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .experiment import MUTE_SECONDS, Experiment, read_wav, save_array, write_if_changed, write_wav
from .intake import ZIP_LIMIT, DatasetError, SourceFile, file_digest, gather
from .preprocess import SR_16K, PreprocessSettings, to_16k
from .quality import DatasetReport, FileReport, check_trainable, inspect_file

STAGES = ("read", "f0", "features", "index")
PARALLEL_F0_MIN_PIECES = 16  # fewer pieces than this finish before a worker process has started
FAST_F0_METHODS = {"pm"}  # a pool's start-up costs more than these save (pm: 2.5 s for 10 minutes)
FEATURE_BATCH = 1  # HuBERT is no faster batched on the CPU, and 8 pieces' conv activations take 1 GiB

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class Target:
    """The kind of model the data is prepared for."""

    version: str
    sr: int
    f0: bool

    @classmethod
    def of_model(cls, path) -> "Target":
        from ..rvc.checkpoints import load_model

        model = load_model(path)
        return cls(model.version, model.sr, model.f0)

    def describe(self) -> str:
        return f"{self.version} {self.sr // 1000}k {'f0' if self.f0 else 'no-f0'}"


@dataclass
class PrepareOptions:
    f0_method: str = "rmvpe"
    index: bool = True
    speaker_id: int = 0
    workers: Optional[int] = None  # f0 processes; default: all CPUs but one
    zip_limit: int = ZIP_LIMIT
    piece_seconds: float = 3.7
    seed: int = 0


@dataclass
class PrepareResult:
    experiment: Experiment
    report: DatasetReport
    index: Optional[Path]
    done: Counter = field(default_factory=Counter)  # per stage: files (read) or pieces (f0, features) computed
    reused: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        stages = []
        for stage in STAGES:
            done, reused = self.done[stage], self.reused[stage]
            if done or reused:
                stages.append(f"{stage}: {done} computed, {reused} reused")
        return (f"{self.experiment.root}: {self.report.pieces} pieces from {len(self.report.usable)} files "
                f"({self.report.usable_seconds:.1f} s); " + "; ".join(stages)
                + (f"; index {self.index.name}" if self.index else "; no index"))


# ----------------------------------------------------------------------------------------------- report
def dataset_report(sources, target: Target, unpack_dir=None, zip_limit: int = ZIP_LIMIT,
                   piece_seconds: float = 3.7, progress: Optional[Progress] = None) -> DatasetReport:
    """The QA report for ``sources`` without preparing anything (zips unpack under ``unpack_dir``)."""
    files, skipped = gather(sources, unpack_dir, zip_limit)
    settings = PreprocessSettings(target.sr, piece_seconds)
    reports = []
    for number, source in enumerate(files, 1):
        reports.append(inspect_file(source, settings)[0])
        _tell(progress, "read", number, len(files))
    return DatasetReport(target.sr, reports, skipped, _duplicates(reports))


def _duplicates(reports) -> dict:
    first, duplicates = {}, {}
    for report in reports:
        if report.digest in first:
            duplicates[report.name] = first[report.digest]
        else:
            first[report.digest] = report.name
    return duplicates


# ----------------------------------------------------------------------------------------------- prepare
def prepare(sources, out_dir, target: Target, options: PrepareOptions = PrepareOptions(), *, hubert_path=None,
            assets_dir=None, device: str = "cpu", progress: Optional[Progress] = None) -> PrepareResult:
    """Prepare ``sources`` (folders, files, zips) into the experiment folder ``out_dir`` for ``target``."""
    if hubert_path is None:
        raise DatasetError("no HuBERT found", "give --hubert PATH or put HuBERT in the assets folder")
    if target.f0:
        _check_method(options.f0_method, assets_dir)
    experiment = Experiment(out_dir, target.version, target.sr, target.f0)
    experiment.root.mkdir(parents=True, exist_ok=True)
    with _exclusive(experiment.root / ".prepare.lock", experiment.root):
        return _Preparation(experiment, target, options, Path(hubert_path), assets_dir, device, progress).run(sources)


def _check_method(method: str, assets_dir) -> None:
    from ..rvc.pitch import MethodUnavailable, available_methods

    status = {s.name: s for s in available_methods(assets_dir)}
    if method not in status:
        raise DatasetError(f"f0 method {method!r}", f"expected one of {', '.join(status)}")
    if not status[method].available:
        raise MethodUnavailable(f"f0 method {method!r} is unavailable: {status[method].reason}")


class _Preparation:
    """One run of ``prepare``: the stages in order, each skipping what prepare.json says is done."""

    def __init__(self, experiment, target, options, hubert_path, assets_dir, device, progress):
        self.experiment, self.target, self.options = experiment, target, options
        self.hubert_path, self.assets_dir, self.device = hubert_path, assets_dir, device
        self.progress = progress
        self.state = experiment.load_state()
        self.settings = PreprocessSettings(target.sr, options.piece_seconds)
        self.done, self.reused = Counter(), Counter()
        self._hubert = None

    def run(self, sources) -> PrepareResult:
        experiment = self.experiment
        files, skipped = gather(sources, experiment.sources, self.options.zip_limit)
        report = self._read(files, skipped)
        write_if_changed(experiment.report, json.dumps(report.as_dict(), indent=1, default=str).encode())
        check_trainable(report, ", ".join(str(s) for s in sources))
        usable = {f.digest for f in report.usable}
        self.state["sources"] = {d: entry for d, entry in self.state["sources"].items() if d in usable}
        self.state["f0_method"] = self.options.f0_method if self.target.f0 else None
        self.state["embedder"] = self.hubert_path.name
        self.state["dataset"] = {"seconds": report.usable_seconds, "files": len(usable),
                                 "digest": hashlib.sha256("".join(sorted(usable)).encode()).hexdigest()}
        self._save()
        self._remove_stale_files()
        entries = [self.state["sources"][d] for d in sorted(usable, key=lambda d: self.state["sources"][d]["name"])]
        with self._f0_alongside(entries):
            self._features(entries)
            self._mute()
        names = [name for entry in entries for name in entry["pieces"]]
        experiment.write_filelist(names, self.options.speaker_id, self.options.seed)
        experiment.write_config()
        index = self._index(entries) if self.options.index else None
        return PrepareResult(experiment, report, index, self.done, self.reused)

    def _save(self) -> None:
        self.experiment.save_state(self.state)

    # ----- read: QA and pieces ------------------------------------------------------------------
    def _read(self, files: list, skipped: list) -> DatasetReport:
        key, reports, sources = self.settings.key(), [], self.state["sources"]
        seen = set()
        for number, source in enumerate(files, 1):
            digest = file_digest(source.path)
            entry = sources.get(digest)
            if digest in seen:  # a duplicate: report it once more, cut it once
                first = next(r for r in reports if r.digest == digest)
                report = dataclasses.replace(first, name=source.name, path=str(source.path))
            elif entry and entry["pieces_key"] == key and self._files_exist(entry["pieces"], ("wav", "wav16k")):
                report = FileReport(**entry["report"])
                report.name, report.path = source.name, str(source.path)
                self.reused["read"] += 1
            else:
                report = self._cut(source, digest, key)
                self.done["read"] += 1
            seen.add(digest)
            reports.append(report)
            _tell(self.progress, "read", number, len(files))
        return DatasetReport(self.target.sr, reports, skipped, _duplicates(reports))

    def _cut(self, source: SourceFile, digest: str, key: str) -> FileReport:
        report, pieces = inspect_file(source, self.settings, digest)
        if pieces is None:
            self.state["sources"].pop(digest, None)
            return report
        names = [f"{digest[:12]}_{j}" for j in range(len(pieces.audio))]
        for name, audio in zip(names, pieces.audio):
            files = self.experiment.piece_files(name)
            write_wav(files["wav"], audio, self.target.sr)
            write_wav(files["wav16k"], to_16k(audio, self.target.sr), SR_16K)
        self.state["sources"][digest] = {"name": source.name, "pieces_key": key, "pieces": names,
                                         "report": report.__dict__}
        self._save()
        return report

    def _files_exist(self, names, kinds) -> bool:
        return all(self.experiment.piece_files(name)[kind].is_file() for name in names for kind in kinds)

    def _remove_stale_files(self) -> None:
        """Pieces of files no longer in the dataset, and temporaries of a killed run."""
        keep = {name for entry in self.state["sources"].values() for name in entry["pieces"]}
        e = self.experiment
        for folder in (e.gt_wavs, e.wavs_16k, e.f0_coarse, e.f0_hz, e.features):
            if folder.is_dir():
                for path in folder.iterdir():
                    if path.name.startswith(".") or path.name.split(".")[0] not in keep:
                        path.unlink()

    # ----- f0 -----------------------------------------------------------------------------------
    @contextmanager
    def _f0_alongside(self, entries: list):
        """f0 for every piece that needs it: on a process pool while the block runs (HuBERT, in this
        process, meanwhile), or here, before the block, where a pool would not pay."""
        if not self.target.f0:
            yield
            return
        method = self.options.f0_method
        key = _key("f0/1", entries[0]["pieces_key"], method)
        todo = [e for e in entries if e.get("f0_key") != key or not self._files_exist(e["pieces"], ("f0_coarse", "f0_hz"))]
        total = sum(len(e["pieces"]) for e in entries)
        jobs = [(entry, name) for entry in todo for name in entry["pieces"]]
        self.reused["f0"] += total - len(jobs)
        done, pending = total - len(jobs), Counter(entry["name"] for entry, _ in jobs)
        assets = str(self.assets_dir) if self.assets_dir else None

        def job_args(name):
            files = self.experiment.piece_files(name)
            return str(files["wav16k"]), method, assets, str(files["f0_coarse"]), str(files["f0_hz"])

        def finished(entry):
            nonlocal done
            done += 1
            self.done["f0"] += 1
            pending[entry["name"]] -= 1
            if pending[entry["name"]] == 0:
                entry["f0_key"] = key
                self._save()
            _tell(self.progress, "f0", done, total)

        workers = self.options.workers or max(1, (os.cpu_count() or 1) - 1)
        pooled = (self.device == "cpu" and method not in FAST_F0_METHODS and len(jobs) >= PARALLEL_F0_MIN_PIECES
                  and (os.cpu_count() or 1) > 1)
        if not pooled:
            for entry, name in jobs:
                f0_job(*job_args(name), device=self.device)
                finished(entry)
            yield
            return
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=get_context("spawn"),
                                 initializer=_quiet_worker) as pool:
            futures = {pool.submit(f0_job, *job_args(name)): entry for entry, name in jobs}
            try:
                yield
                for future in as_completed(futures):
                    future.result()
                    finished(futures[future])
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    # ----- features -----------------------------------------------------------------------------
    def _features(self, entries: list) -> None:
        key = _key("features/1", entries and entries[0]["pieces_key"], self.target.version, self._hubert_digest())
        todo = [e for e in entries if e.get("features_key") != key or not self._files_exist(e["pieces"], ("features",))]
        total = sum(len(e["pieces"]) for e in entries)
        done = total - sum(len(e["pieces"]) for e in todo)
        self.reused["features"] += done
        for entry in todo:
            names = entry["pieces"]
            for batch in _equal_length_batches(names, lambda n: self.experiment.piece_files(n)["wav16k"]):
                audio = np.stack([read_wav(self.experiment.piece_files(n)["wav16k"]) for n in batch])
                for name, features in zip(batch, self._content_features(audio)):
                    save_array(self.experiment.piece_files(name)["features"], features)
                done += len(batch)
                self.done["features"] += len(batch)
                _tell(self.progress, "features", done, total)
            entry["features_key"] = key
            self._save()

    def _content_features(self, audio16k: np.ndarray) -> np.ndarray:
        import torch

        if self._hubert is None:
            from ..rvc.hubert import load_hubert

            self._hubert = load_hubert(self.hubert_path, device=self.device)
        with torch.no_grad():
            features = self._hubert.features(torch.from_numpy(audio16k), self.target.version)
        features = features.float().cpu().numpy()
        if not np.isfinite(features).all():
            raise DatasetError(self.hubert_path, "HuBERT gave NaN features; the checkpoint may be damaged")
        return features

    def _hubert_digest(self) -> str:
        """The HuBERT's content hash, remembered by size and mtime so a rerun does not hash 190 MB again."""
        path = self.hubert_path
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        stamp = [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in files]
        remembered = self.state.get("hubert", {})
        if remembered.get("stamp") == stamp:
            return remembered["digest"]
        digest = hashlib.sha256("".join(file_digest(p) for p in files).encode()).hexdigest()
        self.state["hubert"] = {"stamp": stamp, "digest": digest}
        return digest

    # ----- mute, index --------------------------------------------------------------------------
    def _mute(self) -> None:
        """RVC's two silence examples (its logs/mute): 3 s of zeros, f0 all unvoiced, HuBERT's features of silence."""
        key = _key("mute/1", self.target.sr, self.target.version, self._hubert_digest())
        files = self.experiment.mute_files()
        if self.state.get("mute_key") == key and all(p.is_file() for p in files.values()):
            return
        zeros16k = np.zeros(SR_16K * MUTE_SECONDS, dtype=np.float32)
        write_wav(files["wav"], np.zeros(self.target.sr * MUTE_SECONDS, dtype=np.int16), self.target.sr)
        write_wav(files["wav16k"], zeros16k, SR_16K)
        save_array(files["features"], self._content_features(zeros16k[None])[0])
        if self.target.f0:
            frames = len(zeros16k) // 160 + 1
            save_array(files["f0_coarse"], np.ones(frames, dtype=np.int64))
            save_array(files["f0_hz"], np.zeros(frames, dtype=np.float64))
        self.state["mute_key"] = key
        self._save()

    def _index(self, entries: list) -> Path:
        from ..rvc.index import build_index, index_lists, training_vectors

        names = [name for entry in entries for name in entry["pieces"]]
        key = _key("index/1", self.options.seed, *(e["features_key"] for e in entries), *names)
        remembered = self.state.get("index", {})
        if remembered.get("key") == key and Path(remembered.get("file", "")).is_file():
            self.reused["index"] += 1
            return Path(remembered["file"])
        _tell(self.progress, "index", 0, 1)
        features = np.concatenate([np.load(self.experiment.piece_files(n)["features"]) for n in names])
        vectors = training_vectors(features, self.options.seed)
        path = self.experiment.index_path(index_lists(len(vectors)))
        build_index(vectors, path)
        for old in self.experiment.indices():
            if old != path:
                old.unlink()
        self.state["index"] = {"key": key, "file": str(path)}
        self._save()
        self.done["index"] += 1
        _tell(self.progress, "index", 1, 1)
        return path


def f0_job(wav16k: str, method: str, assets_dir, coarse_path: str, hz_path: str, device: str = "cpu") -> None:
    """One piece's two f0 arrays, as RVC's extract_f0 writes them (run in a worker process)."""
    from ..rvc.pitch import coarse_f0, extract_f0

    f0 = extract_f0(read_wav(wav16k), method, assets_dir=assets_dir, device=device)
    save_array(hz_path, f0.astype(np.float64))
    save_array(coarse_path, coarse_f0(f0))


def _quiet_worker() -> None:
    import torch

    torch.set_num_threads(1)  # one core per worker; the main process runs HuBERT meanwhile


def _equal_length_batches(names, path_of) -> list:
    """Names grouped by the sample count of their 16 kHz wav (read from the header), in batches."""
    from scipy.io import wavfile

    by_length = {}
    for name in names:
        with open(path_of(name), "rb") as handle:
            _, data = wavfile.read(handle, mmap=True)
            by_length.setdefault(len(data), []).append(name)
    return [group[i:i + FEATURE_BATCH] for group in by_length.values() for i in range(0, len(group), FEATURE_BATCH)]


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def _tell(progress: Optional[Progress], stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)


@contextmanager
def _exclusive(lock_path: Path, folder: Path):
    """One prepare per experiment folder at a time."""
    handle = open(lock_path, "a+")
    try:
        try:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # Windows
            import msvcrt

            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
    except OSError:
        handle.close()
        raise DatasetError(folder, "another prepare is running on this folder; wait for it or pick another") from None
    try:
        yield
    finally:
        handle.close()
