"""Small helpers shared by the RVC synthesizer parts."""

from __future__ import annotations

import warnings

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
    starts = (torch.rand([batch]).to(device=x.device) * last_start).to(dtype=torch.long)
    return slice_segments(x, starts, size), starts


def resample_frames(x: torch.Tensor, length: int | torch.Tensor | None) -> torch.Tensor:
    """Stretch [B, C, T] linearly to ``length`` steps (used by RVC's real-time path); None keeps it."""
    if length is None:
        return x
    length = int(length)
    if length == x.shape[-1]:
        return x
    return F.interpolate(x, size=length, mode="linear")
