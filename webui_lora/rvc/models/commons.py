"""Small helpers shared by the RVC synthesizer parts."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import nn
from torch.nn import functional as F

LRELU_SLOPE = 0.1


def legacy_weight_norm(module: nn.Module) -> nn.Module:
    """Hook-based weight norm, as RVC uses it: keeps the ``weight_g``/``weight_v`` state-dict keys.

    Torch deprecates this form in favour of parametrizations, whose keys RVC's loader would ignore;
    we use it on purpose, so its deprecation warning is silenced here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.nn.utils.weight_norm.*", category=FutureWarning)
        return nn.utils.weight_norm(module)


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding that keeps the length of an odd-kernel, stride-1 convolution."""
    return (kernel_size * dilation - dilation) // 2


def sequence_mask(lengths: torch.Tensor, max_length: int | None = None) -> torch.Tensor:
    """[B] lengths -> [B, T] boolean mask, True inside each sequence."""
    if max_length is None:
        max_length = int(lengths.max())
    positions = torch.arange(max_length, dtype=lengths.dtype, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


def gated_activation(x: torch.Tensor, cond: torch.Tensor, channels: int) -> torch.Tensor:
    """WaveNet's gate: tanh of the first half times sigmoid of the second half of ``x + cond``."""
    total = x + cond
    return torch.tanh(total[:, :channels]) * torch.sigmoid(total[:, channels:])


def slice_segments(x: torch.Tensor, starts: torch.Tensor, size: int) -> torch.Tensor:
    """Cut ``size`` steps from the last axis of each batch item, starting at ``starts[i]``."""
    return torch.stack([x[i, ..., int(start) : int(start) + size] for i, start in enumerate(starts)])


def rand_slice_segments(x: torch.Tensor, lengths: torch.Tensor | None, size: int):
    """A random training window of ``size`` frames per item (one ``torch.rand`` draw, as RVC does)."""
    batch, _, frames = x.shape
    if lengths is None:
        lengths = frames
    last_start = lengths - size + 1
    starts = (item_rand(SLICE, batch, device=x.device) * last_start).to(dtype=torch.long)
    return slice_segments(x, starts, size), starts


# ----- per-item random numbers ----------------------------------------------------------------------
# By default the training pass draws from torch's global generator, as RVC does. Inside
# ``seeded_items(seeds)`` every batch item draws from generators of its own, seeded by its seed and the
# place of the draw, so an item gets the same window, posterior noise and NSF excitation whatever batch
# (or process) it lands in: a resumed run repeats an uninterrupted one, and N data-parallel processes
# repeat one process with N times the batch.
SLICE, POSTERIOR, PHASE, EXCITATION = 1, 2, 3, 4
_ITEM_SEEDS: ContextVar = ContextVar("item_seeds", default=None)


@contextmanager
def seeded_items(seeds):
    token = _ITEM_SEEDS.set([int(seed) for seed in seeds])
    try:
        yield
    finally:
        _ITEM_SEEDS.reset(token)


def _item_generators(place: int):
    seeds = _ITEM_SEEDS.get()
    if seeds is None:
        return None
    return [torch.Generator().manual_seed((seed * 1_000_003 + place) % (1 << 63)) for seed in seeds]


def item_rand(place: int, batch: int, *shape: int, device=None) -> torch.Tensor:
    """Uniform [0, 1) numbers of shape [batch, *shape]."""
    generators = _item_generators(place)
    if generators is None:
        return torch.rand([batch, *shape], device=device)
    if len(generators) != batch:
        raise ValueError(f"seeded_items has {len(generators)} seeds for a batch of {batch}")
    return torch.stack([torch.rand(shape, generator=g) for g in generators]).to(device)


def item_randn_like(x: torch.Tensor, time_dim: int, place: int) -> torch.Tensor:
    """Gaussian noise shaped like ``x`` [batch, ...]. Each item's numbers are drawn time-major, so an
    item's values at a time step do not depend on how far the batch is padded."""
    generators = _item_generators(place)
    if generators is None:
        return torch.randn_like(x)
    if len(generators) != x.shape[0]:
        raise ValueError(f"seeded_items has {len(generators)} seeds for a batch of {x.shape[0]}")
    order = [time_dim] + [d for d in range(1, x.dim()) if d != time_dim]
    shape = [x.shape[d] for d in order]
    back = [order.index(d) for d in range(1, x.dim())]
    noise = [torch.randn(shape, generator=g).permute(back) for g in generators]
    return torch.stack(noise).to(device=x.device, dtype=x.dtype)


def resample_frames(x: torch.Tensor, length: int | torch.Tensor | None) -> torch.Tensor:
    """Stretch [B, C, T] linearly to ``length`` steps (used by RVC's real-time path); None keeps it."""
    if length is None:
        return x
    length = int(length)
    if length == x.shape[-1]:
        return x
    return F.interpolate(x, size=length, mode="linear")
