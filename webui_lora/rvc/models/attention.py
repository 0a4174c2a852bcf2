"""The transformer inside RVC's prior encoder: VITS-style self-attention with relative positions.

All projections are Conv1d with kernel 1 (not Linear) and layer norms name their parameters
``gamma``/``beta``; both matter because they fix the state-dict keys RVC files use.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of [B, C, T] tensors."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.transpose(1, -1), (self.channels,), self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)


class MultiHeadAttention(nn.Module):
    """Self-attention whose scores and values also see learned embeddings of the offset j - i.

    Offsets within ``window_size`` each have their own embedding (one table shared by all heads);
    farther pairs get no positional term.
    """

    def __init__(self, channels: int, out_channels: int, n_heads: int, p_dropout: float = 0.0, window_size: int = 10):
        super().__init__()
        if channels % n_heads:
            raise ValueError(f"channels ({channels}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window_size = window_size
        self.p_dropout = p_dropout
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        offsets = 2 * window_size + 1
        std = self.k_channels**-0.5
        self.emb_rel_k = nn.Parameter(torch.randn(1, offsets, self.k_channels) * std)
        self.emb_rel_v = nn.Parameter(torch.randn(1, offsets, self.k_channels) * std)
        for conv in (self.conv_q, self.conv_k, self.conv_v):
            nn.init.xavier_uniform_(conv.weight)

    def forward(self, x: torch.Tensor, context: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        out = self.attention(self.conv_q(x), self.conv_k(context), self.conv_v(context), attn_mask)
        return self.conv_o(out)

    def attention(self, query, key, value, mask=None):
        batch, channels, length = key.shape
        if query.shape[2] != length:
            raise ValueError("relative-position attention needs query and key of the same length")
        query = self._split_heads(query) / math.sqrt(self.k_channels)
        key, value = self._split_heads(key), self._split_heads(value)
        # Eval attends in blocks of query rows: the same function, but each [rows, T] score block stays in
        # cache instead of several [T, T] matrices per layer (hundreds of MB for a 30 s chunk).
        rows = length if self.training else self.query_block
        out = torch.cat([self._attend(query[:, :, first:first + rows], key, value,
                                      None if mask is None else mask[:, :, first:first + rows], first)
                         for first in range(0, length, rows)], dim=2)
        return out.transpose(2, 3).reshape(batch, channels, length)

    query_block = 64

    def _attend(self, query, key, value, mask, first_row):
        """Attention of query rows ``first_row``.. over all keys: [B, H, R, D] -> [B, H, R, D]."""
        length = key.shape[2]
        scores = query @ key.transpose(-2, -1)
        scores = scores + self._band_to_matrix(query @ self.emb_rel_k.transpose(-2, -1), first_row, length)
        if mask is not None:
            scores = scores.masked_fill(mask == 0, -1e4)
        weights = F.dropout(F.softmax(scores, dim=-1), self.p_dropout, self.training)
        return weights @ value + self._matrix_to_band(weights, first_row) @ self.emb_rel_v

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """[B, H*D, T] -> [B, H, T, D]."""
        batch, _, length = x.shape
        return x.view(batch, self.n_heads, self.k_channels, length).transpose(2, 3)

    def _band_index(self, first_row: int, rows: int, device) -> torch.Tensor:
        """For row i, the columns i .. i+2w of a matrix padded by w on both sides: offsets -w..w."""
        rows = torch.arange(first_row, first_row + rows, device=device).unsqueeze(1)
        return rows + torch.arange(2 * self.window_size + 1, device=device)

    def _band_to_matrix(self, band: torch.Tensor, first_row: int, length: int) -> torch.Tensor:
        """[..., R, 2w+1] per-offset values of rows ``first_row``.. -> [..., R, T] with value[i, j] at offset
        j - i, zero outside."""
        w = self.window_size
        index = self._band_index(first_row, band.shape[-2], band.device).expand(band.shape)
        padded = band.new_zeros(*band.shape[:-1], length + 2 * w)
        return padded.scatter(-1, index, band)[..., w : w + length]

    def _matrix_to_band(self, matrix: torch.Tensor, first_row: int) -> torch.Tensor:
        """[..., R, T] rows ``first_row``.. -> [..., R, 2w+1]: the entries at offsets -w..w from the diagonal,
        zero past the edges."""
        w = self.window_size
        padded = F.pad(matrix, (w, w))
        index = self._band_index(first_row, matrix.shape[-2], matrix.device).expand(*matrix.shape[:-1], 2 * w + 1)
        return padded.gather(-1, index)


class FFN(nn.Module):
    """Two masked 'same'-padded convolutions with a ReLU between."""

    def __init__(
        self, in_channels: int, out_channels: int, filter_channels: int, kernel_size: int, p_dropout: float = 0.0
    ):
        super().__init__()
        self.kernel_size = kernel_size
        self.p_dropout = p_dropout
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, out_channels, kernel_size)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv_1(self._pad(x * x_mask)))
        x = F.dropout(x, self.p_dropout, self.training)
        return self.conv_2(self._pad(x * x_mask)) * x_mask

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, ((self.kernel_size - 1) // 2, self.kernel_size // 2))


class Encoder(nn.Module):
    """Post-norm transformer: x = norm(x + attn(x)); x = norm(x + ffn(x)), masked throughout."""

    def __init__(
        self,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int = 1,
        p_dropout: float = 0.0,
        window_size: int = 10,
    ):
        super().__init__()
        self.p_dropout = p_dropout
        self.attn_layers = nn.ModuleList()
        self.norm_layers_1 = nn.ModuleList()
        self.ffn_layers = nn.ModuleList()
        self.norm_layers_2 = nn.ModuleList()
        for _ in range(int(n_layers)):
            self.attn_layers.append(
                MultiHeadAttention(hidden_channels, hidden_channels, n_heads, p_dropout, window_size)
            )
            self.norm_layers_1.append(ChannelLayerNorm(hidden_channels))
            self.ffn_layers.append(FFN(hidden_channels, hidden_channels, filter_channels, kernel_size, p_dropout))
            self.norm_layers_2.append(ChannelLayerNorm(hidden_channels))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        attn_mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)
        x = x * x_mask
        for attn, norm_1, ffn, norm_2 in zip(self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2):
            x = norm_1(x + F.dropout(attn(x, x, attn_mask), self.p_dropout, self.training))
            x = norm_2(x + F.dropout(ffn(x, x_mask), self.p_dropout, self.training))
        return x * x_mask
