"""RVC's decoders: a HiFi-GAN generator, and its NSF variant that adds a sine excitation at every stage."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .commons import LRELU_SLOPE, legacy_weight_norm, resample_frames, same_padding
from .nsf import SourceModuleHnNSF


def _conv(channels: int, kernel_size: int, dilation: int) -> nn.Conv1d:
    return legacy_weight_norm(
        nn.Conv1d(channels, channels, kernel_size, 1, dilation=dilation, padding=same_padding(kernel_size, dilation))
    )


def _convs(block: nn.Module) -> list:
    return [m for m in block.modules() if isinstance(m, nn.Conv1d)]


class ResBlock1(nn.Module):
    """HiFi-GAN V1 residual block: per dilation, a dilated conv then a plain conv, each after a LeakyReLU."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation=(1, 3, 5)):
        super().__init__()
        self.convs1 = nn.ModuleList(_conv(channels, kernel_size, d) for d in dilation)
        self.convs2 = nn.ModuleList(_conv(channels, kernel_size, 1) for _ in dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv1, conv2 in zip(self.convs1, self.convs2):
            y = conv1(F.leaky_relu(x, LRELU_SLOPE))
            x = x + conv2(F.leaky_relu(y, LRELU_SLOPE))
        return x


class ResBlock2(nn.Module):
    """HiFi-GAN V3 residual block: one dilated conv per dilation."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation=(1, 3)):
        super().__init__()
        self.convs = nn.ModuleList(_conv(channels, kernel_size, d) for d in dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, LRELU_SLOPE))
        return x


class Generator(nn.Module):
    """Latent frames -> waveform: transposed-conv upsampling stages, each followed by a multi-receptive-field
    fusion (the mean of one residual block per kernel size).

    In eval mode a long input is decoded in tiles of ``tile_frames`` frames, each with enough context on
    both sides to cover the receptive field, so the result is the same function (to float rounding) while
    the 40 kHz intermediates stay a few MB instead of hundreds: far less memory, far fewer page faults.
    """

    tile_frames: int | None = 256

    def __init__(
        self,
        initial_channel: int,
        resblock: str,
        resblock_kernel_sizes,
        resblock_dilation_sizes,
        upsample_rates,
        upsample_initial_channel: int,
        upsample_kernel_sizes,
        gin_channels: int = 0,
    ):
        super().__init__()
        self.num_kernels = len(resblock_kernel_sizes)
        self.upp = math.prod(upsample_rates)
        block_class = ResBlock1 if str(resblock) == "1" else ResBlock2

        self.conv_pre = nn.Conv1d(initial_channel, upsample_initial_channel, 7, 1, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (rate, kernel) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            in_channels, channels = upsample_initial_channel // 2**i, upsample_initial_channel // 2 ** (i + 1)
            self.ups.append(
                legacy_weight_norm(
                    nn.ConvTranspose1d(in_channels, channels, kernel, rate, padding=(kernel - rate) // 2)
                )
            )
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(block_class(channels, k, d))
        self.conv_post = nn.Conv1d(channels, 1, 7, 1, padding=3, bias=False)
        if gin_channels:
            self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1)

    def forward(self, x: torch.Tensor, g: torch.Tensor | None = None, n_res=None) -> torch.Tensor:
        """x [B, C, T] -> audio [B, 1, T * hop]. ``n_res`` stretches x to that many frames first."""
        return self._synthesize(resample_frames(x, n_res), g, source=None)

    def _synthesize(self, x, g, source):
        frames = x.shape[-1]
        if self.training or not self.tile_frames or frames <= self.tile_frames + 2 * self.context_frames:
            return self._synthesize_span(x, g, source)
        context, pieces = self.context_frames, []
        for start in range(0, frames, self.tile_frames):
            stop = min(start + self.tile_frames, frames)
            lo, hi = max(start - context, 0), min(stop + context, frames)
            span_source = None if source is None else source[..., lo * self.upp:hi * self.upp]
            audio = self._synthesize_span(x[..., lo:hi], g, span_source)
            pieces.append(audio[..., (start - lo) * self.upp:(stop - lo) * self.upp])
        return torch.cat(pieces, dim=-1)

    @property
    def context_frames(self) -> int:
        """Input frames on each side that can reach an output sample: conv_pre, and per stage the
        transposed conv plus the widest residual block, converted to frames at that stage's rate."""
        reach, rate = self.conv_pre.kernel_size[0] // 2, 1
        for i, up in enumerate(self.ups):
            kernel, stride = up.kernel_size[0], up.stride[0]
            reach += math.ceil(kernel / stride)
            rate *= stride
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            widest = max(sum(conv.dilation[0] * (conv.kernel_size[0] - 1) // 2 for conv in _convs(block))
                         for block in blocks)
            reach += math.ceil(widest / rate)
        return reach + math.ceil(self.conv_post.kernel_size[0] / rate) + 1

    def _synthesize_span(self, x, g, source):
        x = self.conv_pre(x)
        if g is not None:
            x = x + self.cond(g)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            if source is not None:
                x = x + self.noise_convs[i](source)
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            x = sum(block(x) for block in blocks) / self.num_kernels
        # HiFi-GAN's last activation uses torch's default slope (0.01), not LRELU_SLOPE.
        x = self.conv_post(F.leaky_relu(x))
        return torch.tanh(x)


class GeneratorNSF(Generator):
    """The f0 decoder: before each stage's fusion, adds a learned strided projection of the NSF
    excitation, downsampled to that stage's rate.

    Takes Generator's arguments plus ``sr``, the output sample rate the excitation is generated at.
    """

    def __init__(self, *args, sr: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.m_source = SourceModuleHnNSF(sr)
        self.noise_convs = nn.ModuleList()
        for i, up in enumerate(self.ups):
            if i + 1 < len(self.ups):  # the excitation is at the output rate: stride over the stages still to come
                stride = math.prod(later.stride[0] for later in self.ups[i + 1 :])
                self.noise_convs.append(nn.Conv1d(1, up.out_channels, stride * 2, stride, padding=stride // 2))
            else:
                self.noise_convs.append(nn.Conv1d(1, up.out_channels, 1))

    def forward(self, x: torch.Tensor, f0: torch.Tensor, g: torch.Tensor | None = None, n_res=None) -> torch.Tensor:
        """x [B, C, T], f0 [B, T] Hz -> audio [B, 1, T * hop]."""
        source = self.m_source(f0, self.upp).transpose(1, 2)
        if n_res is not None:
            source = resample_frames(source, int(n_res) * self.upp)
            x = resample_frames(x, n_res)
        return self._synthesize(x, g, source)
