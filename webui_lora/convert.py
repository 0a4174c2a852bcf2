"""Voice conversion: RVC's pipeline with any number of LoRA adapters on one base model.

The steps and defaults are RVC's (``infer/modules/vc/pipeline.py``): 16 kHz input scaled to a 0.95
peak, 48 Hz zero-phase high-pass, reflect padding, long inputs cut near the quietest points, f0 over
the whole padded signal, HuBERT features (with optional index retrieval) per chunk, protect, the
synthesizer, RMS mix, resampling, int16 with 0.99 headroom. What RVC lacks: adapters, each with its
own strength, switched without reloading the base; models, HuBERT and adapters stay cached.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import librosa
import numpy as np
import torch
import torch.nn.functional as F

from lora_core import (LoRAError, adapter_names, apply_adapter, check_adapter_fits, delete_adapter, fold_weight_norm,
                       read_adapter, set_adapter_strength)

from .assets import Assets
from .errors import UserError, user_message
from .rvc.audio import audio_files, high_pass_coefficients, load_audio, save_audio
from .rvc.checkpoints import inference_fingerprint, load_model
from .rvc.index import FeatureIndex
from .rvc.pitch import CLASSIC, extract_f0, pitch_inputs

HUBERT_SR = 16000
WINDOW = 160  # samples per synthesizer frame at 16 kHz (10 ms)


@dataclass
class ConversionSettings:
    """RVC WebUI's single-file defaults."""

    speaker_id: int = 0
    transpose: float = 0.0
    f0_method: str = "rmvpe"
    index_path: Optional[str] = None
    index_rate: float = 0.75
    filter_radius: int = 3
    protect: float = 0.33
    rms_mix_rate: float = 0.25
    resample_sr: int = 0
    f0_convention: str = CLASSIC
    seed: Optional[int] = None


@dataclass(frozen=True)
class ChunkPlan:
    """RVC's memory presets (seconds): reflect padding, cut search radius, cut spacing, one-pass limit."""

    x_pad: int
    x_query: int
    x_center: int
    x_max: int

    @classmethod
    def for_device(cls, device: torch.device, half: bool) -> "ChunkPlan":
        if half:
            if torch.cuda.get_device_properties(device).total_memory <= 4 * 1024 ** 3:
                return cls(1, 5, 30, 32)
            return cls(3, 10, 60, 65)
        return cls(1, 6, 38, 41)

    @property
    def pad_frames(self) -> int:
        """The reflect padding on each side of a chunk, in 10 ms frames."""
        return self.x_pad * HUBERT_SR // WINDOW


@dataclass
class ConversionResult:
    audio: np.ndarray  # int16
    sr: int
    f0: Optional[np.ndarray]  # Hz per 10 ms frame fed to the synthesizer (transposed), None for no-f0 models
    input_f0: Optional[np.ndarray]  # Hz per 10 ms frame extracted from the input
    timings: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)


@dataclass
class BatchItem:
    input: Path
    output: Optional[Path] = None
    result: Optional[ConversionResult] = None
    error: Optional[str] = None


class VoiceConverter:
    """Holds the loaded base model, its adapters, HuBERT and index between conversions."""

    def __init__(self, assets: Optional[Assets] = None, device: Optional[str] = None,
                 hubert_path: Optional[str] = None):
        self.assets = assets or Assets.discover()
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.half = self.device.type == "cuda"
        self.plan = ChunkPlan.for_device(self.device, self.half)
        self.hubert_path = hubert_path
        self._model = None
        self._model_key = None
        self._fingerprint = None
        self._adapters: dict = {}  # adapter name on the model -> (path, mtime)
        self._hubert = None
        self._hubert_key = None
        self._index = None
        self._index_key = None

    # ----- caches -------------------------------------------------------------------------
    def load(self, model_path, adapters: Sequence = ()) -> list:
        """Make ``model_path`` plus ``adapters`` [(path, strength), ...] current; returns warnings.

        The base is loaded once per file version; adapters are added or removed as the list changes;
        a strength change alone touches no file.
        """
        self._ensure_model(model_path)
        wanted = {_adapter_name(path): (Path(path), strength) for path, strength in adapters}
        net = self._model.synthesizer
        for name in [n for n in adapter_names(net) if n not in wanted or
                     self._adapters.get(n) != _file_key(wanted[n][0])]:
            delete_adapter(net, name)
            self._adapters.pop(name, None)
        messages = []
        for name, (path, strength) in wanted.items():
            if name not in self._adapters:
                messages += self._attach(net, name, path)
            set_adapter_strength(net, name, float(strength))
        return messages

    def _ensure_model(self, model_path) -> None:
        key = _file_key(model_path)
        if key != self._model_key:
            self._model = load_model(model_path, device=self.device)
            # Adapters record the fingerprint of the file's weights (weight norm and all), so take it first;
            # conversion then needs each layer's plain weight only (less memory, no recompute per call).
            self._fingerprint = inference_fingerprint(self._model.synthesizer)
            fold_weight_norm(self._model.synthesizer)
            if self.half:
                self._model.synthesizer.half()
            self._model_key, self._adapters = key, {}

    def _attach(self, net, name: str, path: Path) -> list:
        adapter = read_adapter(path)
        check_adapter_matches_model(adapter, self._model)
        apply_adapter(net, adapter, name)
        self._adapters[name] = _file_key(path)
        if adapter.base_fingerprint and adapter.base_fingerprint != self._fingerprint:
            return [f"{path}: this adapter was trained on a different base model; shapes fit, but the result "
                    "may not sound as intended"]
        return []

    def compatible_adapters(self, model_path, adapter_paths: Optional[Sequence] = None) -> list:
        """(path, note) for each adapter that fits ``model_path``: shapes and recorded version, rate and f0
        agree; ``note`` is "" or says the adapter was trained on another base (it loads, with a warning)."""
        self._ensure_model(model_path)
        compatible = []
        for path in adapter_paths if adapter_paths is not None else self.assets.adapters():
            try:
                adapter = read_adapter(path)
                check_adapter_fits(self._model.synthesizer, adapter)
                check_adapter_matches_model(adapter, self._model)
            except (LoRAError, ValueError):
                continue
            other_base = adapter.base_fingerprint and adapter.base_fingerprint != self._fingerprint
            compatible.append((Path(path), "trained on another base model" if other_base else ""))
        return compatible

    @property
    def model(self):
        if self._model is None:
            raise RuntimeError("no model loaded; call load() first")
        return self._model

    def hubert(self):
        path = self.assets.require_hubert(self.hubert_path)
        key = _file_key(path)
        if key != self._hubert_key:
            from .rvc.hubert import load_hubert  # transformers: imported on first use, not at page start

            self._hubert, self._hubert_key = load_hubert(path, device=self.device), key
        return self._hubert

    def feature_index(self, path) -> Optional[FeatureIndex]:
        if not path:
            return None
        key = _file_key(FeatureIndex.resolve_path(path))
        if key != self._index_key:
            self._index, self._index_key = FeatureIndex.load(key[0]), key
        return self._index

    # ----- conversion ---------------------------------------------------------------------
    def convert_audio(self, audio16k: np.ndarray, settings: ConversionSettings) -> ConversionResult:
        """Convert mono float32 audio at 16 kHz with the loaded model and adapters."""
        model, timings = self.model, {}
        audio = np.asarray(audio16k, dtype=np.float64)
        peak = np.abs(audio).max() / 0.95
        if peak > 1:
            audio = audio / peak
        audio = high_pass(audio)

        index = None
        if settings.index_rate != 0 and settings.index_path:
            index = self.feature_index(settings.index_path)
            index.check_dim(256 if model.version == "v1" else 768)
        plan = self.plan
        t_pad = HUBERT_SR * plan.x_pad
        cuts = quiet_cut_points(audio, plan)
        source_loudness = loudness_envelope(audio, HUBERT_SR)
        # Everything downstream reads float32 (f0, HuBERT): one float32 copy of the padded input is all a
        # long input keeps while it converts.
        padded = np.pad(audio, (t_pad, t_pad), mode="reflect").astype(np.float32)
        del audio
        frames = len(padded) // WINDOW

        start = time.perf_counter()
        pitch = pitchf = input_f0 = target_f0 = None
        if model.f0:
            options = {"filter_radius": settings.filter_radius} if settings.f0_method == "harvest" else {}
            input_f0 = extract_f0(padded, settings.f0_method, assets_dir=self.assets.pitch_assets_dir(),
                                  device=str(self.device), **options)[:frames]
            coarse, target_f0 = pitch_inputs(input_f0, settings.transpose, settings.f0_convention)
            pitch = torch.as_tensor(coarse[:frames], device=self.device).long().unsqueeze(0)
            pitchf = torch.as_tensor(target_f0[:frames], device=self.device).float().unsqueeze(0)
        timings["f0"] = time.perf_counter() - start
        release_freed_memory()

        if not 0 <= settings.speaker_id < model.speakers:
            raise UserError(f"speaker id {settings.speaker_id}", f"out of range; {Path(model.path).name} has "
                                                             f"{model.speakers} speakers (0..{model.speakers - 1})")
        if settings.seed is not None:
            torch.manual_seed(settings.seed)
        sid = torch.tensor([settings.speaker_id], device=self.device).long()
        pieces, begin, timings["features"], timings["synthesis"] = [], 0, 0.0, 0.0
        for end in [c // WINDOW * WINDOW for c in cuts] + [None]:
            stop = None if end is None else end + 2 * t_pad + WINDOW
            frame_stop = None if end is None else (end + 2 * t_pad) // WINDOW
            chunk_pitch = None if pitch is None else (pitch[:, begin // WINDOW:frame_stop],
                                                      pitchf[:, begin // WINDOW:frame_stop])
            out = self._convert_chunk(padded[begin:stop], chunk_pitch, index, settings, sid, timings)
            pieces.append(out)
            begin = end if end is not None else begin

        start = time.perf_counter()
        converted = np.concatenate(pieces)
        pieces.clear()
        gain = None
        if settings.rms_mix_rate != 1:
            gain = RmsMix(source_loudness, loudness_envelope(converted, model.sr), len(converted),
                          settings.rms_mix_rate)
        out_sr = model.sr
        if settings.resample_sr >= 16000 and settings.resample_sr != model.sr:
            if gain is not None:
                converted, gain = converted * gain(0, len(converted)), None
            converted = librosa.resample(converted, orig_sr=model.sr, target_sr=settings.resample_sr)
            out_sr = settings.resample_sr
        output = to_int16(converted, gain)
        timings["post"] = time.perf_counter() - start
        unpadded = slice(plan.pad_frames, frames - plan.pad_frames)
        return ConversionResult(output, out_sr, None if target_f0 is None else target_f0[unpadded],
                                None if input_f0 is None else input_f0[unpadded], timings)

    def _convert_chunk(self, chunk: np.ndarray, chunk_pitch, index, settings, sid, timings) -> np.ndarray:
        """The audio of one chunk without its reflect padding (``plan.x_pad`` seconds each side), which the
        prior and flow see but the decoder never renders."""
        model = self.model
        dtype = torch.float16 if self.half else torch.float32
        start = time.perf_counter()
        with torch.no_grad():
            source = torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32)).to(self.device, dtype)
            feats = self.hubert().features(source.unsqueeze(0), model.version)
        protecting = settings.protect < 0.5 and chunk_pitch is not None
        original = feats.clone() if protecting else None
        if index is not None:
            retrieved = index.retrieve(feats[0].float().cpu().numpy())
            rate = settings.index_rate
            feats = (torch.from_numpy(retrieved).to(feats).unsqueeze(0) * rate + (1 - rate) * feats)
        frames = min(len(chunk) // WINDOW, 2 * feats.shape[1])
        feats = _frame_rate(feats)[:, :frames]
        timings["features"] += time.perf_counter() - start
        release_freed_memory()

        start = time.perf_counter()
        with torch.no_grad():
            lengths = torch.tensor([frames], device=self.device).long()
            kept = (self.plan.pad_frames, frames - self.plan.pad_frames)
            if chunk_pitch is None:
                audio = model.synthesizer.infer(feats, lengths, sid, decode_frames=kept)[0]
            else:
                pitch, pitchf = (p[:, :frames] for p in chunk_pitch)
                if protecting:
                    # Unvoiced frames (f0 < 1 Hz) keep (1 - protect) of the un-retrieved features.
                    keep = torch.where(pitchf < 1, settings.protect, 1.0).unsqueeze(-1).to(feats.dtype)
                    feats = feats * keep + _frame_rate(original)[:, :frames] * (1 - keep)
                audio = model.synthesizer.infer(feats, lengths, pitch, pitchf.to(feats.dtype), sid,
                                                decode_frames=kept)[0]
        timings["synthesis"] += time.perf_counter() - start
        audio = audio[0, 0].float().cpu().numpy()
        release_freed_memory()
        return audio

    def convert_file(self, path, settings: ConversionSettings) -> ConversionResult:
        audio = load_audio(path, HUBERT_SR)
        return self.convert_audio(audio, settings)

    def convert_files(self, inputs: Sequence, output_dir, settings: ConversionSettings, audio_format: str = "wav",
                      progress: Optional[Callable] = None, names: Optional[Sequence] = None) -> list:
        """Convert many files (or every audio file in a folder) into ``output_dir``; a file that fails
        is reported in its item and the rest go on. Outputs are named after ``names`` (default: the
        inputs' names), with ``_2``, ``_3``... when two share a stem. ``progress(done, total, item)``
        runs after each file."""
        files = audio_files(inputs)
        names = list(names) if names is not None else [path.name for path in files]
        items, taken = [], set()
        for number, (path, name) in enumerate(zip(files, names), 1):
            item = BatchItem(path)
            try:
                item.result = self.convert_file(path, settings)
                stem = _unused_stem(Path(name).stem, taken)
                item.output = save_audio(Path(output_dir) / f"{stem}.{audio_format}", item.result.audio,
                                         item.result.sr, audio_format)
            except Exception as err:  # one bad file must not stop the batch; the message goes to the user
                item.error = user_message(err) or f"{path}: {type(err).__name__}: {err}"
            items.append(item)
            if progress:
                progress(number, len(files), item)
        return items


def release_freed_memory() -> None:
    """Hand freed heap pages back to the system between stages. glibc keeps them mapped, so without this
    the resident size after HuBERT, the prior and each decoder tile is the sum of every stage's high-water
    mark rather than what is alive (a 30 s conversion: about 0.3 GiB more). No-op off glibc."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _unused_stem(stem: str, taken: set) -> str:
    """``stem``, or ``stem_2``, ``stem_3``... when an earlier output took it; records the one returned."""
    candidate, number = stem, 1
    while candidate in taken:
        number += 1
        candidate = f"{stem}_{number}"
    taken.add(candidate)
    return candidate


def check_adapter_matches_model(adapter, model) -> None:
    """Refuse an adapter whose recorded RVC version, rate or f0 flag differ from the model's."""
    for key, have in (("version", model.version), ("sr", model.sr), ("f0", model.f0)):
        if key in adapter.extra and adapter.extra[key] != have:
            raise UserError(adapter.source, f"adapter was made for a {key}={adapter.extra[key]!r} model, but "
                                            f"{Path(model.path).name} has {key}={have!r}; pick an adapter for this model")


def high_pass(audio: np.ndarray, block: int = 1 << 20) -> np.ndarray:
    """RVC's conversion high-pass: its 48 Hz Butterworth, zero-phase, as ``scipy.signal.filtfilt`` computes
    it (odd extension of 3 x 6 samples, steady-state initial conditions, forward then backward), but a block
    at a time with the filter state carried over, into one float64 array: an IIR filter run in blocks
    is the same arithmetic in the same order, and a 10-minute input needs one copy instead of four."""
    from scipy import signal

    b, a = high_pass_coefficients(HUBERT_SR)
    audio = np.asarray(audio, dtype=np.float64)
    edge = 3 * max(len(a), len(b))
    if len(audio) <= edge:
        return signal.filtfilt(b, a, audio)  # scipy's own message for input that is too short
    steady = signal.lfilter_zi(b, a)
    head = 2 * audio[0] - audio[edge:0:-1]
    tail = 2 * audio[-1] - audio[-2:-edge - 2:-1]
    out = np.empty(len(audio) + 2 * edge)
    state = steady * head[0]
    for start in range(0, len(out), block):  # forward over head + audio + tail
        stop = min(start + block, len(out))
        piece = _extended(head, audio, tail, start, stop)
        out[start:stop], state = signal.lfilter(b, a, piece, zi=state)
    state = steady * out[-1]
    for stop in range(len(out), 0, -block):  # backward, in place
        start = max(stop - block, 0)
        backward, state = signal.lfilter(b, a, out[start:stop][::-1], zi=state)
        out[start:stop] = backward[::-1]
    return out[edge:-edge]


def _extended(head: np.ndarray, audio: np.ndarray, tail: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Samples ``start:stop`` of head + audio + tail without building the whole concatenation."""
    parts, offset = [], 0
    for part in (head, audio, tail):
        lo, hi = max(start - offset, 0), min(stop - offset, len(part))
        if lo < hi:
            parts.append(part[lo:hi])
        offset += len(part)
    return np.concatenate(parts)


def quiet_cut_points(audio: np.ndarray, plan: ChunkPlan) -> list:
    """Where RVC cuts a long input: every ``x_center`` seconds, at the frame within ``x_query`` seconds
    whose 10 ms window sum is closest to zero (RVC sums raw samples, not magnitudes; kept for parity)."""
    half = WINDOW // 2
    if len(audio) + 2 * half <= HUBERT_SR * plan.x_max:
        return []
    query, center = HUBERT_SR * plan.x_query, HUBERT_SR * plan.x_center
    cuts = []
    for t in range(center, len(audio), center):
        # Window sums over the reflect-padded input, for this search region only (not the whole input).
        first, last = t - query, min(t + query, len(audio))
        region = audio[first - half:last + half - 1]
        if last + half - 1 > len(audio):
            region = np.pad(audio[first - half:], (0, last + half - 1 - len(audio)), mode="reflect")
        sums = np.abs(np.convolve(region, np.ones(WINDOW), mode="valid"))
        cuts.append(first + int(np.argmin(sums)))
    return cuts


def loudness_envelope(audio: np.ndarray, sr: int) -> np.ndarray:
    """RMS over half-second frames, the envelope RVC's loudness mix compares."""
    return frame_rms(audio, frame_length=sr // 2 * 2, hop_length=sr // 2)


class RmsMix:
    """RVC's loudness mix as a gain per output sample: rms_in^(1-rate) * rms_out^(rate-1), the two
    envelopes linearly interpolated to the output length (torch's ``linear``, align_corners=False) and
    rms_out clamped at 1e-6. Called for a block of samples at a time, so a long output never needs its
    float64 envelopes and gain whole."""

    def __init__(self, rms_in: np.ndarray, rms_out: np.ndarray, length: int, rate: float):
        self.rms_in, self.rms_out, self.length = rms_in, rms_out, length
        # RVC raises to torch.tensor(1 - rate), a float32 scalar: the same rounded exponents here.
        self.exponents = float(np.float32(1 - rate)), float(np.float32(rate - 1))

    def __call__(self, start: int, stop: int) -> np.ndarray:
        rms_in = _stretch_linear(self.rms_in, self.length, start, stop)
        rms_out = np.maximum(_stretch_linear(self.rms_out, self.length, start, stop), 1e-6)
        return np.power(rms_in, self.exponents[0]) * np.power(rms_out, self.exponents[1])


def _stretch_linear(values: np.ndarray, length: int, start: int, stop: int) -> np.ndarray:
    """Samples ``start:stop`` of ``values`` linearly interpolated to ``length`` (torch's formula)."""
    source = np.maximum((np.arange(start, stop, dtype=np.float64) + 0.5) * (len(values) / length) - 0.5, 0)
    left = source.astype(np.int64)
    right = np.minimum(left + 1, len(values) - 1)
    weight = source - left
    return (1 - weight) * values[left] + weight * values[right]


def frame_rms(audio: np.ndarray, frame_length: int, hop_length: int, frames_per_block: int = 64) -> np.ndarray:
    """Root-mean-square per frame, frames centred on multiples of ``hop_length`` over zero padding
    (librosa.feature.rms with its defaults, without its first-call start-up cost), in float64, a block
    of frames at a time."""
    half = frame_length // 2
    count = (len(audio) + 2 * half - frame_length) // hop_length + 1
    rms = np.empty(count)
    for first in range(0, count, frames_per_block):
        last = min(first + frames_per_block, count)
        lo, hi = first * hop_length - half, (last - 1) * hop_length - half + frame_length
        segment = np.zeros(hi - lo)
        segment[max(-lo, 0):min(len(audio), hi) - lo] = audio[max(lo, 0):min(len(audio), hi)]
        frames = np.lib.stride_tricks.sliding_window_view(segment, frame_length)[::hop_length]
        rms[first:last] = np.sqrt(np.mean(frames ** 2, axis=1))
    return rms


def to_int16(audio: np.ndarray, gain: Optional[Callable] = None, block: int = 1 << 20) -> np.ndarray:
    """Scale ``audio`` (times ``gain(start, stop)`` when given) to int16, only attenuating when the peak
    exceeds 0.99; a block at a time (the gain is worked out twice: for the peak, then for the output)."""
    def blocks():
        for start in range(0, len(audio), block):
            stop = min(start + block, len(audio))
            yield start, stop, audio[start:stop] if gain is None else audio[start:stop] * gain(start, stop)

    peak = max((np.abs(values).max() for _, _, values in blocks()), default=0.0) / 0.99
    scale = 32768 / peak if peak > 1 else 32768
    out = np.empty(len(audio), dtype=np.int16)
    for start, stop, values in blocks():
        out[start:stop] = (values * scale).astype(np.int16)
    return out


def _frame_rate(feats: torch.Tensor) -> torch.Tensor:
    """HuBERT's 50 Hz frames to the synthesizer's 100 Hz by repeating each frame, as RVC does."""
    return F.interpolate(feats.permute(0, 2, 1), scale_factor=2).permute(0, 2, 1)


def _file_key(path) -> tuple:
    path = Path(path).resolve()
    stat = path.stat()
    return str(path), stat.st_mtime_ns, stat.st_size


def _adapter_name(path) -> str:
    """A stable adapter name per file (adapter names cannot hold dots or slashes)."""
    path = Path(path).resolve()
    return f"{''.join(c if c.isalnum() else '_' for c in path.stem)[:40]}_" \
           f"{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
