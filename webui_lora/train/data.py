"""Training data as RVC's loader reads it (``infer/lib/train/data_utils.py``): the filelist's pieces,
HuBERT features repeated x2 to 100 Hz and cut to 900 frames, pitch in both forms, the linear
spectrogram, everything trimmed to the shorter of features and spectrogram; RVC's bucket sampler
(length estimated from the wav's size, boundaries 100..900, each bucket padded to whole batches,
shuffled by epoch); and its zero-padding collate, longest first.

Two additions: the sampler can start part-way through an epoch (exact resume), and every item carries
a seed derived from (run seed, epoch, item), which the model's per-item random draws use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..rvc.configs import BUCKET_BOUNDARIES, RateLayout
from ..rvc.pitch import pitch_inputs
from .experiment import read_wav
from .intake import DatasetError
from .losses import MelScale

MAX_FRAMES = 900  # RVC's loader cuts features (and so everything) to 9 s


@dataclass(frozen=True)
class Item:
    wav: Path
    features: Path
    f0_hz: Optional[Path]
    speaker: int


def read_filelist(path, f0: bool) -> list:
    """RVC's filelist: ``wav|features|coarse f0|f0 Hz|speaker`` per line (``wav|features|speaker`` for
    no-f0 models); every file must exist."""
    items = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != (5 if f0 else 3):
            raise DatasetError(path, f"line {number} has {len(fields)} fields; an {'f0' if f0 else 'no-f0'} "
                                     f"dataset has {5 if f0 else 3} (prepare it again for this model)")
        try:
            speaker = int(fields[-1])
        except ValueError:
            raise DatasetError(path, f"line {number} ends in {fields[-1]!r}, not a speaker id") from None
        item = Item(Path(fields[0]), Path(fields[1]), Path(fields[3]) if f0 else None, speaker)
        missing = [p for p in (item.wav, item.features, item.f0_hz) if p is not None and not p.is_file()]
        if missing:
            raise DatasetError(missing[0], f"listed in {path} (line {number}) but missing; prepare the dataset again")
        items.append(item)
    if not items:
        raise DatasetError(path, "lists no pieces; prepare the dataset first")
    return items


class TrainingSet(torch.utils.data.Dataset):
    """The pieces of a filelist, each loaded as RVC's TextAudioLoader(MultiNSFsid) does."""

    def __init__(self, items: list, layout: RateLayout, f0: bool, f0_convention: str):
        self.items, self.layout, self.f0, self.convention = items, layout, f0, f0_convention
        self.mel = MelScale(layout)
        # RVC's length estimate, in spectrogram frames: the wav's size // (3 * hop)
        self.lengths = [os.path.getsize(item.wav) // (3 * layout.hop_length) for item in items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        features = np.repeat(np.load(item.features), 2, axis=0)[:MAX_FRAMES]
        audio = torch.from_numpy(read_wav(item.wav).astype(np.float32)).unsqueeze(0)
        spec = self.mel.linear(audio)[0]
        frames = min(len(features), spec.shape[-1])
        sample = {"index": index, "speaker": item.speaker, "phone": torch.from_numpy(features[:frames]).float(),
                  "spec": spec[:, :frames], "wave": audio[:, :frames * self.layout.hop_length]}
        if self.f0:
            coarse, hz = pitch_inputs(np.load(item.f0_hz)[:MAX_FRAMES], 0.0, self.convention)
            sample["pitch"] = torch.from_numpy(coarse[:frames]).long()
            sample["pitchf"] = torch.from_numpy(hz[:frames]).float()
        return sample


class BucketSampler(torch.utils.data.Sampler):
    """RVC's DistributedBucketSampler: batches of similar length, the same batches on every process for
    an epoch (shuffled with the epoch as seed), each process taking every ``replicas``-th item."""

    def __init__(self, lengths, batch_size: int, replicas: int = 1, rank: int = 0, shuffle: bool = True,
                 boundaries=BUCKET_BOUNDARIES):
        self.batch_size, self.replicas, self.rank, self.shuffle = batch_size, replicas, rank, shuffle
        buckets = [[] for _ in range(len(boundaries) - 1)]
        for index, length in enumerate(lengths):
            for b, (low, high) in enumerate(zip(boundaries, boundaries[1:])):
                if low < length <= high:
                    buckets[b].append(index)
                    break
        self.buckets = [bucket for bucket in buckets if bucket]
        step = replicas * batch_size
        self.bucket_sizes = [len(b) + (step - len(b) % step) % step for b in self.buckets]
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self.epoch, self.skip = epoch, skip_batches

    def batches(self) -> list:
        generator = torch.Generator().manual_seed(self.epoch)
        batches = []
        for bucket, size in zip(self.buckets, self.bucket_sizes):
            order = torch.randperm(len(bucket), generator=generator).tolist() if self.shuffle else list(range(len(bucket)))
            extra = size - len(bucket)
            order = order + order * (extra // len(bucket)) + order[: extra % len(bucket)]
            mine = order[self.rank::self.replicas]
            batches += [[bucket[i] for i in mine[j:j + self.batch_size]]
                        for j in range(0, len(mine) - self.batch_size + 1, self.batch_size)]
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        return batches

    def __iter__(self):
        return iter(self.batches()[self.skip:])

    def __len__(self) -> int:
        return sum(self.bucket_sizes) // self.replicas // self.batch_size


def collate(samples: list) -> dict:
    """Zero-pad to the longest item, longest first (RVC's order)."""
    samples = sorted(samples, key=lambda s: s["spec"].shape[-1], reverse=True)
    frames = max(s["spec"].shape[-1] for s in samples)
    batch = {"index": torch.tensor([s["index"] for s in samples]),
             "speaker": torch.tensor([s["speaker"] for s in samples]),
             "lengths": torch.tensor([s["spec"].shape[-1] for s in samples]),
             "spec": _pad([s["spec"] for s in samples], frames, -1),
             "wave": _pad([s["wave"] for s in samples], max(s["wave"].shape[-1] for s in samples), -1),
             "phone": _pad([s["phone"] for s in samples], frames, 0)}
    if "pitch" in samples[0]:
        batch["pitch"] = _pad([s["pitch"] for s in samples], frames, 0)
        batch["pitchf"] = _pad([s["pitchf"] for s in samples], frames, 0)
    return batch


def _pad(tensors: list, length: int, dim: int) -> torch.Tensor:
    padded = []
    for tensor in tensors:
        dim_ = dim % tensor.dim()
        widths = [0, 0] * (tensor.dim() - 1 - dim_) + [0, length - tensor.shape[dim_]]
        padded.append(torch.nn.functional.pad(tensor, widths))
    return torch.stack(padded)


def item_seeds(seed: int, epoch: int, indices) -> list:
    """Each item's seed for its random draws this epoch."""
    return [(seed * 1_000_003 + epoch) * 1_000_033 + int(i) for i in indices]
