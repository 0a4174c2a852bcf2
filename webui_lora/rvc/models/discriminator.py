"""RVC's multi-period discriminators (HiFi-GAN's MPD plus one scale discriminator), with RVC's keys:
``discriminators.K.convs.M.*`` and ``discriminators.K.conv_post.*``, K = 0 being the scale discriminator.

``width`` divides every channel count (RVC's is 1); tests train against a narrow one with the same
layers, strides and periods, as they run tiny synthesizers of RVC's layouts.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .commons import LRELU_SLOPE, legacy_weight_norm, same_padding

PERIODS = {"v1": (2, 3, 5, 7, 11, 17), "v2": (2, 3, 5, 7, 11, 17, 23, 37)}


class _Discriminator(nn.Module):
    """What both discriminators share: their ``convs``, each followed by a LeakyReLU, then ``conv_post``."""

    def forward(self, x: torch.Tensor):
        """x [B, 1, ...] -> (flattened scores, feature maps for the feature-matching loss)."""
        fmap = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            fmap.append(x)
        x = self.conv_post(x)
        fmap.append(x)
        return torch.flatten(x, 1, -1), fmap


class DiscriminatorS(_Discriminator):
    """Judges the raw waveform with grouped strided 1-D convolutions."""

    def __init__(self, width: int = 1):
        super().__init__()
        layers = [
            (1, 16, 15, 1, 1, 7),
            (16, 64, 41, 4, 4, 20),
            (64, 256, 41, 4, 16, 20),
            (256, 1024, 41, 4, 64, 20),
            (1024, 1024, 41, 4, 256, 20),
            (1024, 1024, 5, 1, 1, 2),
        ]
        convs = []
        for cin, cout, k, stride, groups, pad in layers:
            narrow_in, narrow_out = _narrow(cin, width), _narrow(cout, width)
            per_group = max(1, cin // groups)  # input channels per group, kept where the width allows
            convs.append(nn.Conv1d(narrow_in, narrow_out, k, stride, groups=max(1, narrow_in // per_group), padding=pad))
        self.convs = nn.ModuleList(legacy_weight_norm(conv) for conv in convs)
        self.conv_post = legacy_weight_norm(nn.Conv1d(_narrow(1024, width), 1, 3, 1, padding=1))


class DiscriminatorP(_Discriminator):
    """Judges every ``period``-th sample: the waveform folded into [N / period, period] and convolved along time."""

    def __init__(self, period: int, kernel_size: int = 5, stride: int = 3, width: int = 1):
        super().__init__()
        self.period = period
        padding = (same_padding(kernel_size), 0)
        channels = [_narrow(c, width) for c in (1, 32, 128, 512, 1024)]
        convs = [
            nn.Conv2d(cin, cout, (kernel_size, 1), (stride, 1), padding=padding)
            for cin, cout in zip(channels, channels[1:])
        ]
        convs.append(nn.Conv2d(channels[-1], channels[-1], (kernel_size, 1), 1, padding=padding))
        self.convs = nn.ModuleList(legacy_weight_norm(conv) for conv in convs)
        self.conv_post = legacy_weight_norm(nn.Conv2d(channels[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: torch.Tensor):
        """x [B, 1, N] -> (flattened scores, feature maps); N is reflect-padded to a multiple of the period."""
        batch, channels, length = x.shape
        if length % self.period:
            pad = self.period - length % self.period
            x = F.pad(x, (0, pad), "reflect")
            length += pad
        return super().forward(x.view(batch, channels, length // self.period, self.period))


class MultiPeriodDiscriminator(nn.Module):
    """One scale discriminator plus one period discriminator per period (RVC v1: 6 periods, v2: 8)."""

    def __init__(self, periods=PERIODS["v1"], width: int = 1):
        super().__init__()
        self.periods = tuple(periods)
        self.discriminators = nn.ModuleList([DiscriminatorS(width), *(DiscriminatorP(p, width=width)
                                                                      for p in self.periods)])

    def forward(self, y: torch.Tensor, y_hat: torch.Tensor):
        """Real and generated audio -> (real scores, fake scores, real fmaps, fake fmaps), one per discriminator."""
        real_scores, fake_scores, real_fmaps, fake_fmaps = [], [], [], []
        for disc in self.discriminators:
            score, fmap = disc(y)
            real_scores.append(score)
            real_fmaps.append(fmap)
            score, fmap = disc(y_hat)
            fake_scores.append(score)
            fake_fmaps.append(fmap)
        return real_scores, fake_scores, real_fmaps, fake_fmaps


def build_discriminator(version: str, width: int = 1) -> MultiPeriodDiscriminator:
    """RVC's MultiPeriodDiscriminator ("v1") or MultiPeriodDiscriminatorV2 ("v2"), channels divided by ``width``."""
    if version not in PERIODS:
        raise ValueError(f"unknown RVC version {version!r} (expected 'v1' or 'v2')")
    return MultiPeriodDiscriminator(PERIODS[version], width)


def _narrow(channels: int, width: int) -> int:
    """A channel count divided by the width; the 1-channel input and output stay 1."""
    return channels if channels == 1 else max(1, channels // width)
