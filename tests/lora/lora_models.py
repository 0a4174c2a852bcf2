"""Builders for LoRA tests: layers of every supported type and geometry, in every weight-norm style."""

import copy

import torch
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import parametrizations, weight_norm

WEIGHT_NORM_STYLES = [("plain", None), ("legacy", 0), ("legacy", 1), ("legacy", None),
                      ("parametrized", 0), ("parametrized", 1), ("parametrized", None)]


def with_weight_norm(layer: nn.Module, style: str, dim) -> nn.Module:
    if style == "legacy":
        return weight_norm(layer, dim=dim)
    if style == "parametrized":
        return parametrizations.weight_norm(layer, dim=dim)
    return layer


def draw_conv_geometry(draw, max_kernel: int, max_stride: int) -> tuple:
    """(groups, kernel, stride, dilation) of a 1-D convolution."""
    return (draw(st.integers(1, 3)), draw(st.integers(1, max_kernel)), draw(st.integers(1, max_stride)),
            draw(st.integers(1, 3)))


def draw_grouped_channels(draw, groups: int) -> tuple:
    """(in_channels, out_channels), each a multiple of ``groups``."""
    return groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))


@st.composite
def conv1d_cases(draw):
    groups, kernel, stride, dilation = draw_conv_geometry(draw, max_kernel=5, max_stride=3)
    padding_mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    padding = draw(st.sampled_from(["same", 0, 1, 2, 3] if stride == 1 else [0, 1, 2, 3]))
    layer = nn.Conv1d(*draw_grouped_channels(draw, groups), kernel,
                      stride=stride, padding=padding, dilation=dilation, groups=groups,
                      bias=draw(st.booleans()), padding_mode=padding_mode)
    length = draw(st.integers(dilation * (kernel - 1) + 4, dilation * (kernel - 1) + 12))
    x = torch.randn(draw(st.integers(1, 2)), layer.in_channels, length)
    return layer, x, draw(st.sampled_from(WEIGHT_NORM_STYLES))


@st.composite
def conv_transpose1d_cases(draw):
    groups, kernel, stride, dilation = draw_conv_geometry(draw, max_kernel=6, max_stride=4)
    padding = draw(st.integers(0, dilation * (kernel - 1) // 2))
    output_padding = draw(st.integers(0, max(stride, dilation) - 1))
    layer = nn.ConvTranspose1d(*draw_grouped_channels(draw, groups), kernel,
                               stride=stride, padding=padding, output_padding=output_padding,
                               groups=groups, bias=draw(st.booleans()), dilation=dilation)
    x = torch.randn(draw(st.integers(1, 2)), layer.in_channels, draw(st.integers(3, 9)))
    return layer, x, draw(st.sampled_from(WEIGHT_NORM_STYLES))


@st.composite
def linear_cases(draw):
    layer = nn.Linear(draw(st.integers(1, 9)), draw(st.integers(1, 9)), bias=draw(st.booleans()))
    x = torch.randn(draw(st.integers(1, 3)), draw(st.integers(1, 4)), layer.in_features)
    return layer, x, draw(st.sampled_from(WEIGHT_NORM_STYLES))


@st.composite
def embedding_cases(draw):
    num = draw(st.integers(2, 20))
    style = draw(st.sampled_from(WEIGHT_NORM_STYLES))
    # A padding row is all zeros, which weight norm cannot normalise (0/0), so only plain tables get one.
    padding_idx = draw(st.one_of(st.none(), st.integers(0, num - 1))) if style[0] == "plain" else None
    layer = nn.Embedding(num, draw(st.integers(1, 9)), padding_idx=padding_idx)
    x = torch.randint(0, num, (draw(st.integers(1, 3)), draw(st.integers(1, 6))))
    return layer, x, style


def model_around(layer: nn.Module, style: str, dim) -> nn.Module:
    """The layer inside a container (LoRA wraps layers in place, so the model must hold it)."""
    torch.manual_seed(0)
    return nn.Sequential(with_weight_norm(copy.deepcopy(layer), style, dim))


def weight_tensors_of(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" not in k}


def assert_close(actual: torch.Tensor, expected: torch.Tensor, rel: float = 1e-5) -> None:
    scale = expected.abs().max().item() + 1e-12
    error = (actual - expected).abs().max().item()
    assert error <= rel * scale + 1e-7, f"max abs error {error:.3g} vs scale {scale:.3g}"


class TinyDecoder(nn.Module):
    """RVC's decoder layout in miniature: conv_pre, weight-normed ups (ConvTranspose1d) and
    resblocks (dilated Conv1d), an embedding and a Linear, with RVC's module names."""

    def __init__(self, style: str = "legacy", channels: int = 8):
        super().__init__()
        self.emb_g = nn.Embedding(3, 4)
        self.emb_phone = nn.Linear(6, channels)
        self.conv_pre = nn.Conv1d(channels, channels, 7, padding=3)
        self.cond = nn.Conv1d(4, channels, 1)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        ch = channels
        for rate, kernel in ((2, 4), (2, 4)):
            self.ups.append(with_weight_norm(nn.ConvTranspose1d(ch, ch // 2, kernel, rate, (kernel - rate) // 2),
                                             style, 0))
            ch //= 2
            for k, dilation in ((3, 1), (5, 3)):
                self.resblocks.append(with_weight_norm(
                    nn.Conv1d(ch, ch, k, dilation=dilation, padding=dilation * (k - 1) // 2), style, 0))
        self.conv_post = nn.Conv1d(ch, 1, 7, padding=3, bias=False)

    def forward(self, phone: torch.Tensor, sid: torch.Tensor) -> torch.Tensor:
        x = self.emb_phone(phone).transpose(1, 2)
        x = self.conv_pre(x) + self.cond(self.emb_g(sid).unsqueeze(-1))
        for i, up in enumerate(self.ups):
            x = up(torch.nn.functional.leaky_relu(x, 0.1))
            x = sum(block(x) for block in self.resblocks[2 * i:2 * i + 2]) / 2
        return torch.tanh(self.conv_post(torch.nn.functional.leaky_relu(x)))


def tiny_decoder(style: str = "legacy", seed: int = 0) -> TinyDecoder:
    torch.manual_seed(seed)
    return TinyDecoder(style)


def decoder_inputs(frames: int = 12) -> tuple:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(1, frames, 6, generator=generator), torch.tensor([1])
