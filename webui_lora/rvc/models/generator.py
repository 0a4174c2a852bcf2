"""RVC's decoders: a HiFi-GAN generator, and its NSF variant that adds a sine excitation at every stage."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from lora_core import current_weight

from .commons import LRELU_SLOPE, legacy_weight_norm, resample_frames, same_padding
from .nsf import SourceModuleHnNSF


def _conv(channels: int, kernel_size: int, dilation: int) -> nn.Conv1d:
    return legacy_weight_norm(
        nn.Conv1d(channels, channels, kernel_size, 1, dilation=dilation, padding=same_padding(kernel_size, dilation))
    )


def _reach(block: nn.Module) -> int:
    """Samples on each side of an output sample that a residual block depends on: its convolutions are
    stride-1 and "same"-padded, so each reaches as far as its padding."""
    return sum(m.padding[0] for m in block.modules() if isinstance(m, nn.Conv1d))


def call_module(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """How a block applies one of its convolutions by default: the module's own forward."""
    return module(x)


class ResBlock1(nn.Module):
    """HiFi-GAN V1 residual block: per dilation, a dilated conv then a plain conv, each after a LeakyReLU."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation=(1, 3, 5)):
        super().__init__()
        self.convs1 = nn.ModuleList(_conv(channels, kernel_size, d) for d in dilation)
        self.convs2 = nn.ModuleList(_conv(channels, kernel_size, 1) for _ in dilation)

    def forward(self, x: torch.Tensor, conv=call_module) -> torch.Tensor:
        for conv1, conv2 in zip(self.convs1, self.convs2):
            y = conv(conv1, F.leaky_relu(x, LRELU_SLOPE))
            x = x + conv(conv2, F.leaky_relu(y, LRELU_SLOPE))
        return x


class ResBlock2(nn.Module):
    """HiFi-GAN V3 residual block: one dilated conv per dilation."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation=(1, 3)):
        super().__init__()
        self.convs = nn.ModuleList(_conv(channels, kernel_size, d) for d in dilation)

    def forward(self, x: torch.Tensor, conv=call_module) -> torch.Tensor:
        for layer in self.convs:
            x = x + conv(layer, F.leaky_relu(x, LRELU_SLOPE))
        return x


class PackedConvs:
    """Runs a decoder's convolutions as 2-D convolutions on channels-last [B, C, 1, T] tensors, oneDNN's
    fastest layout for these shapes (about 1.5x the [B, C, T] speed for the 3-tap layers), with each
    layer's weight (weight norm and active LoRA adapters folded in) computed once per decode, not per call."""

    def __init__(self):
        self._weights = {}

    @staticmethod
    def to_2d(x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(2).contiguous(memory_format=torch.channels_last)

    def __call__(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        weight = self._weights.get(module)
        if weight is None:
            weight = self._weights[module] = self.to_2d(current_weight(module))
        stride, padding, dilation = (1, module.stride[0]), (0, module.padding[0]), (1, module.dilation[0])
        if module.transposed:
            return F.conv_transpose2d(x, weight, module.bias, stride, padding, (0, module.output_padding[0]),
                                      module.groups, dilation)
        return F.conv2d(x, weight, module.bias, stride, padding, dilation, module.groups)


def _tiles(begin: int, end: int, step: int, outermost: bool) -> list:
    """(start, stop, computed_from) per tile of ``begin:end``: the tile keeps start:stop and is computed
    from ``computed_from``. A tile's length decides the shapes of every convolution inside it, and oneDNN
    builds and caches kernels per shape (about 12 MB per new chunk length at 1M-value tiles), so lengths
    come from a fixed set. Inner spans have lengths from that set already: they split into equal tiles
    near ``step`` (so a tile's output, a little over the next stage's step, goes whole rather than as a
    full tile plus a sliver). The outermost span, a chunk of any length, takes tiles of exactly ``step``,
    and its last tile is computed from further left, to a whole eighth of ``step``."""
    if not outermost:
        count = max(round((end - begin) / step), 1)
        bounds = [begin + (end - begin) * i // count for i in range(count + 1)]
        return [(start, stop, start) for start, stop in zip(bounds, bounds[1:])]
    granule, tiles = max(step // 8, 1), []
    for start in range(begin, end, step):
        stop = min(start + step, end)
        width = min(step, -(-(stop - start) // granule) * granule)
        tiles.append((start, stop, max(stop - width, 0)))
    return tiles


class Generator(nn.Module):
    """Latent frames -> waveform: transposed-conv upsampling stages, each followed by a multi-receptive-field
    fusion (the mean of one residual block per kernel size).

    In eval mode each stage works on tiles of about ``tile_elements`` output values (channels x samples),
    each with enough context on both sides for every later layer's receptive field, so the result is the same
    function (to float rounding) while the working set stays cache-sized: a 40 kHz stage of a long input
    would otherwise be hundreds of MB. Tiles are cut per stage, so context is recomputed only at the
    rate of the stage that needs it.
    """

    tile_elements: int | None = 1 << 20

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

    def forward(self, x: torch.Tensor, g: torch.Tensor | None = None, n_res=None, frames=None) -> torch.Tensor:
        """x [B, C, T] -> audio [B, 1, T * hop]. ``n_res`` stretches x to that many frames first;
        ``frames`` (start, stop) returns only the audio of those frames, the samples a whole decode gives
        there (in eval mode the rest is never computed: RVC crops a second of padding off each side)."""
        return self._synthesize(resample_frames(x, n_res), g, None, frames)

    def _synthesize(self, x, g, source, frames):
        if self.training or not self.tile_elements:
            audio = self._decode(x, g, source, call_module, tiled=False)
            return audio if frames is None else audio[..., frames[0] * self.upp:frames[1] * self.upp]
        conv = PackedConvs()
        source = None if source is None else conv.to_2d(source)
        audio = self._decode(conv.to_2d(x), None if g is None else g.unsqueeze(2), source, conv, tiled=True,
                             frames=frames)
        return audio.squeeze(2)

    def _decode(self, x, g, source, conv, tiled: bool, frames=None):
        x = conv(self.conv_pre, x)
        if g is not None:
            x = x + conv(self.cond, g)
        return self._stages(x, source, 0, conv, tiled, frames)

    def _stages(self, x, source, first, conv, tiled, span=None):
        """Stages ``first``.. and the output layer on x, stage ``first``'s input over some span, with the
        excitation over the same span at the output rate; tiles the span when the stage's output is large.
        ``span`` (start, stop) of x's samples: decode only those (with their context)."""
        if first == len(self.ups):
            # HiFi-GAN's last activation uses torch's default slope (0.01), not LRELU_SLOPE.
            return torch.tanh(conv(self.conv_post, F.leaky_relu(x)))
        length, up = x.shape[-1], self.samples_per_input(first)
        step, context = self._tile_plan(first) if tiled else (length, 0)
        tiles = _tiles(*(span or (0, length)), step, outermost=span is not None)
        if span is None and len(tiles) == 1:
            return self._stages(self._stage(first, x, source, conv), source, first + 1, conv, tiled)
        pieces = []
        for start, stop, computed_from in tiles:
            lo, hi = max(computed_from - context, 0), min(stop + context, length)
            span_source = None if source is None else source[..., lo * up:hi * up]
            audio = self._stages(x[..., lo:hi], span_source, first, conv, tiled)
            pieces.append(audio[..., (start - lo) * up:(stop - lo) * up])
        return torch.cat(pieces, dim=-1)

    def _stage(self, i, x, source, conv):
        x = conv(self.ups[i], F.leaky_relu(x, LRELU_SLOPE))
        if source is not None:
            x = x + conv(self.noise_convs[i], source)
        blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
        return sum(block(x, conv) for block in blocks) / self.num_kernels

    def samples_per_input(self, stage: int) -> int:
        """Output samples per input sample of ``stage``."""
        return math.prod(up.stride[0] for up in self.ups[stage:])

    def _tile_plan(self, stage: int) -> tuple:
        """(tile length, context on each side) in input samples of ``stage``: tiles hold about
        ``tile_elements`` output values of the stage and are at least 8x their context."""
        context = self.context(stage)
        up = self.ups[stage]
        step = self.tile_elements // (up.out_channels * up.stride[0])
        return max(step, 8 * context, 1), context

    def context(self, stage: int) -> int:
        """Input samples of ``stage`` on each side that can reach an output sample: per later stage the
        transposed conv, the excitation's strided conv and the widest residual block, then the output conv."""
        reach = self.conv_post.kernel_size[0] // 2
        for i in reversed(range(stage, len(self.ups))):
            up = self.ups[i]
            widest = max(_reach(block) for block in self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels])
            reach = math.ceil((reach + widest + 2 + up.kernel_size[0]) / up.stride[0]) + 1
        return reach


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

    def forward(self, x: torch.Tensor, f0: torch.Tensor, g: torch.Tensor | None = None, n_res=None,
                frames=None) -> torch.Tensor:
        """x [B, C, T], f0 [B, T] Hz -> audio [B, 1, T * hop]; ``frames`` as in Generator. The excitation
        is drawn for every frame all the same, so the random numbers are those of a whole decode."""
        source = self.m_source(f0, self.upp).transpose(1, 2)
        if n_res is not None:
            source = resample_frames(source, int(n_res) * self.upp)
            x = resample_frames(x, n_res)
        return self._synthesize(x, g, source, frames)
