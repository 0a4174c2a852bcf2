"""What a user's recordings are worth before any GPU time goes into them: per file, whether it decodes,
how long it is, its rate, channels, peak, clipping, silence and loudness, how many training pieces
RVC's preprocessing makes of it, and whether it is usable (and why not); per dataset, the totals, a
clip-length histogram and warnings. The report is data (``as_dict``, saved as JSON) and text
(``as_markdown`` for the UI and the CLI).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import soxr

from ..errors import user_message
from ..rvc.audio import read_audio, wav_shortfall
from .intake import SourceFile, file_digest
from .preprocess import PreprocessSettings, make_pieces

MIN_FILE_SECONDS = 1.0
MIN_DATASET_SECONDS = 10.0  # below this, prepare refuses: not even a few batches of pieces
FEW_MINUTES = 60.0  # below this, the report warns
CLIPPING_LEVEL = 0.999
CLIPPING_WARN_SHARE = 0.001
LOW_RATE = 32000  # files below it warn when the model runs at 40k or 48k
HISTOGRAM_EDGES = (0, 1, 2, 5, 10, 30, 60, 300, math.inf)  # seconds


@dataclass
class FileReport:
    name: str
    path: str
    digest: str = ""
    decodes: bool = False
    seconds: float = 0.0
    sample_rate: int = 0
    channels: int = 0
    peak_db: float = -math.inf
    rms_db: float = -math.inf
    clipping: float = 0.0  # share of samples at full scale
    silence: float = 0.0  # share of 15 ms frames below the slicer's threshold
    speech_seconds: float = 0.0  # what the slicer keeps
    pieces: int = 0  # training pieces
    dropped: dict = field(default_factory=dict)  # pieces RVC's rules leave out, by reason
    problem: str = ""  # why the file is not usable; "" when it is
    warnings: list = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return not self.problem


def inspect_file(source: SourceFile, settings: PreprocessSettings, digest: str = "") -> tuple:
    """(FileReport, Pieces or None): decode, measure, and cut into RVC's training pieces."""
    report = FileReport(source.name, str(source.path), digest or file_digest(source.path))
    try:
        audio, sr = read_audio(source.path)
    except Exception as err:  # a bad file is reported, never raised: the others go on
        message = user_message(err)
        if message is None:
            raise
        report.problem = f"cannot be read: {message.removeprefix(f'{source.path}: ')}"
        return report, None
    report.decodes, report.sample_rate, report.channels = True, sr, audio.shape[1]
    report.seconds = len(audio) / sr
    if not np.isfinite(audio).all():
        report.problem = "holds NaN or infinite samples; export it again"
        return report, None
    magnitude = np.abs(audio)
    report.peak_db = _db(float(magnitude.max()))
    report.rms_db = _db(float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))))
    report.clipping = float(np.mean(magnitude >= CLIPPING_LEVEL))
    shortfall = wav_shortfall(source.path)
    if shortfall > 0:
        report.warnings.append(f"truncated: {shortfall:.0%} of the samples its header promises are missing "
                               "(an interrupted copy?); the rest is used")
    if report.clipping > CLIPPING_WARN_SHARE:
        report.warnings.append(f"clipping: {report.clipping:.1%} of samples at full scale; the model learns the "
                               "distortion")
    if report.seconds < MIN_FILE_SECONDS:
        report.problem = f"too short ({report.seconds:.2f} s; at least {MIN_FILE_SECONDS:g} s)"
        return report, None
    mono = audio.mean(axis=1)
    if sr != settings.sr:
        mono = soxr.resample(mono, sr, settings.sr, quality="HQ")
    pieces = make_pieces(mono, settings)
    report.silence = _silence_share(mono, settings)
    report.speech_seconds, report.pieces = pieces.spoken_seconds, len(pieces.audio)
    report.dropped = {reason: count for reason, count in (("louder than 2.5", pieces.loud), ("silent", pieces.silent),
                                                          ("under 0.75 s", pieces.too_short)) if count}
    if report.silence >= 1.0 or report.peak_db < settings.slicer.threshold_db:
        report.problem = f"all silent (nothing above {settings.slicer.threshold_db:g} dB)"
    elif not pieces.audio:
        left_out = ", ".join(f"{count} {reason}" for reason, count in report.dropped.items()) or "none"
        report.problem = f"no piece RVC would train on (left out: {left_out})"
    return report, (pieces if report.usable else None)


def _db(value: float) -> float:
    return 20 * math.log10(value) if value > 0 else -math.inf


def _silence_share(audio: np.ndarray, settings: PreprocessSettings) -> float:
    from .slicer import Slicer

    slicer = Slicer(settings.sr, settings.slicer)
    levels = slicer.frame_levels(audio)
    return float(np.mean(levels < slicer.threshold)) if len(levels) else 1.0


@dataclass
class DatasetReport:
    """Every file's report and what they add up to, for one target model rate."""

    sr: int
    files: list
    skipped: list = field(default_factory=list)  # names of files that are not audio by their suffix
    duplicates: dict = field(default_factory=dict)  # name -> name of the file with the same content

    @property
    def usable(self) -> list:
        return [f for f in self.files if f.usable and f.name not in self.duplicates]

    @property
    def total_seconds(self) -> float:
        return sum(f.seconds for f in self.files)

    @property
    def usable_seconds(self) -> float:
        """What training sees: the slicer's output of the usable files."""
        return sum(f.speech_seconds for f in self.usable)

    @property
    def pieces(self) -> int:
        return sum(f.pieces for f in self.usable)

    def histogram(self) -> list:
        """[(label, count)] of file durations."""
        bins = []
        for low, high in zip(HISTOGRAM_EDGES, HISTOGRAM_EDGES[1:]):
            label = f"{low:g}-{high:g} s" if high != math.inf else f"{low:g} s+"
            bins.append((label, sum(low <= f.seconds < high for f in self.files if f.decodes)))
        return bins

    def warnings(self) -> list:
        notes = []
        if self.usable and self.usable_seconds < FEW_MINUTES:
            notes.append(f"only {self.usable_seconds:.1f} s of usable audio: under a minute an adapter rarely "
                         "sounds like the voice; RVC recommends 10 minutes or more")
        low = [f for f in self.usable if f.sample_rate < LOW_RATE]
        if low and self.sr >= 40000:
            names = ", ".join(f"{f.name} ({f.sample_rate} Hz)" for f in low[:5])
            notes.append(f"{len(low)} file(s) recorded below {LOW_RATE // 1000} kHz for a {self.sr // 1000} kHz "
                         f"model: {names}; they hold nothing above half their rate, so the model learns muffled "
                         "highs there")
        notes += [f"{f.name}: {warning}" for f in self.files for warning in f.warnings]
        notes += [f"{name}: same audio as {first}; used once" for name, first in self.duplicates.items()]
        return notes

    def as_dict(self) -> dict:
        return {"sr": self.sr, "total_seconds": self.total_seconds, "usable_seconds": self.usable_seconds,
                "pieces": self.pieces, "files": [asdict(f) | {"usable": f.usable} for f in self.files],
                "refused": {f.name: f.problem for f in self.files if not f.usable}, "skipped": self.skipped,
                "duplicates": self.duplicates, "histogram": self.histogram(), "warnings": self.warnings()}

    @classmethod
    def from_dict(cls, data: dict) -> "DatasetReport":
        files = [FileReport(**{k: v for k, v in f.items() if k != "usable"}) for f in data["files"]]
        return cls(data["sr"], files, list(data.get("skipped", [])), dict(data.get("duplicates", {})))

    def as_markdown(self) -> str:
        refused = [f for f in self.files if not f.usable]
        lines = [f"**{len(self.usable)} of {len(self.files)} files usable**: {_minutes(self.usable_seconds)} to "
                 f"train on (long silences cut) out of {_minutes(self.total_seconds)} recorded, {self.pieces} "
                 f"training pieces at {self.sr // 1000} kHz.", "",
                 "| file | length | rate | ch | peak dB | rms dB | silence | pieces | status |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for f in self.files:
            status = "duplicate" if f.name in self.duplicates else ("ok" if f.usable else f.problem)
            if f.warnings and f.usable:
                status += " (" + "; ".join(w.split(":")[0] for w in f.warnings) + ")"
            lines.append(f"| {f.name} | {f.seconds:.1f} s | {f.sample_rate or '-'} | {f.channels or '-'} | "
                         f"{f.peak_db:.1f} | {f.rms_db:.1f} | {f.silence:.0%} | {f.pieces} | {status} |")
        lines += ["", "Clip lengths: " + ", ".join(f"{label}: {count}" for label, count in self.histogram() if count)]
        if refused:
            lines += ["", "**Refused:**"] + [f"- {f.name}: {f.problem}" for f in refused]
        if self.skipped:
            lines += ["", f"Not audio, skipped: {', '.join(self.skipped[:10])}"
                      + (f" and {len(self.skipped) - 10} more" if len(self.skipped) > 10 else "")]
        notes = self.warnings()
        if notes:
            lines += ["", "**Warnings:**"] + [f"- {note}" for note in notes]
        return "\n".join(lines)


def _minutes(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def check_trainable(report: DatasetReport, subject) -> None:
    """Refuse a dataset with too little usable audio to train on, naming it and what to do."""
    from .intake import DatasetError

    if not report.usable:
        reasons = "; ".join(f"{f.name}: {f.problem}" for f in report.files[:3])
        raise DatasetError(subject, f"none of its {len(report.files)} file(s) is usable ({reasons})")
    if report.usable_seconds < MIN_DATASET_SECONDS:
        raise DatasetError(subject, f"only {report.usable_seconds:.1f} s of usable audio in total; at least "
                                    f"{MIN_DATASET_SECONDS:g} s is needed (RVC recommends 10 minutes or more): "
                                    "add recordings")
