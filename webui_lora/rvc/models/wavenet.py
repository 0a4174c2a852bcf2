"""The non-causal WaveNet stack (``WN``) used by the posterior encoder and the flow's coupling layers."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .commons import gated_activation, legacy_weight_norm, same_padding


class WN(nn.Module):
    """Gated dilated convolutions, speaker-conditioned, summing every layer's skip output.

    Each layer's output is split into a residual half (added back to the input) and a skip half;
    the last layer has only a skip half. All convolutions use legacy weight norm, as in RVC.
    """

    def __init__(
        self,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int = 0,
        p_dropout: float = 0.0,
    ):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"WN needs an odd kernel size, got {kernel_size}")
        self.hidden_channels = hidden_channels
        self.n_layers = n_layers
        self.p_dropout = float(p_dropout)
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        if gin_channels:
            self.cond_layer = legacy_weight_norm(nn.Conv1d(gin_channels, 2 * hidden_channels * n_layers, 1))
        for i in range(n_layers):
            dilation = dilation_rate**i
            self.in_layers.append(
                legacy_weight_norm(
                    nn.Conv1d(
                        hidden_channels,
                        2 * hidden_channels,
                        kernel_size,
                        dilation=dilation,
                        padding=same_padding(kernel_size, dilation),
                    )
                )
            )
            out_channels = 2 * hidden_channels if i < n_layers - 1 else hidden_channels
            self.res_skip_layers.append(legacy_weight_norm(nn.Conv1d(hidden_channels, out_channels, 1)))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.hidden_channels
        if g is not None:
            g = self.cond_layer(g)
        output = torch.zeros_like(x)
        for i, (in_layer, res_skip_layer) in enumerate(zip(self.in_layers, self.res_skip_layers)):
            x_in = in_layer(x)
            cond = g[:, 2 * hidden * i : 2 * hidden * (i + 1)] if g is not None else torch.zeros_like(x_in)
            acts = F.dropout(gated_activation(x_in, cond, hidden), self.p_dropout, self.training)
            res_skip = res_skip_layer(acts)
            if i < self.n_layers - 1:
                x = (x + res_skip[:, :hidden]) * x_mask
                output = output + res_skip[:, hidden:]
            else:
                output = output + res_skip
        return output * x_mask
