"""The HuBERT/ContentVec content encoder RVC feeds its synthesizers: transformers `HubertModel` + `final_proj`.

`features()` runs the HubertModel submodules itself instead of `forward()` so that it matches fairseq's
`extract_features(output_layer=N)` exactly: it stops after layer N (no final encoder LayerNorm, no wasted
layers), normalises the conv front end in float32 like fairseq's Fp32GroupNorm/Fp32LayerNorm, and with a
padding mask takes each row's GroupNorm statistics over its own samples only, so a padded batch gives each
row the features it would get alone.
"""

import torch
import torch.nn.functional as F
from torch import nn
from transformers import HubertModel

from ..errors import UserError

# RVC's content features: v1 = final_proj(output of layer 9), v2 = output of layer 12 (1-based, like fairseq).
RVC_FEATURE_LAYERS = {"v1": 9, "v2": 12}
_WAVEFORM_NORM_EPS = 1e-5  # fairseq/RVC normalise with F.layer_norm over the whole utterance


def conv_output_lengths(lengths, kernel, stride):
    """Frames a valid (unpadded) 1-D convolution leaves from `lengths` samples."""
    return torch.clamp(torch.div(lengths - kernel, stride, rounding_mode="floor") + 1, min=0)


def length_mask(lengths, size):
    """[B, size] bool, True on each row's first `lengths[b]` positions."""
    return torch.arange(size, device=lengths.device)[None, :] < lengths[:, None]


def normalize_waveform(audio, lengths=None):
    """Zero-mean, unit-variance per row over its valid samples (fairseq `normalize`, HF `do_normalize`)."""
    if lengths is None:
        return F.layer_norm(audio, audio.shape[-1:], eps=_WAVEFORM_NORM_EPS)
    valid = length_mask(lengths, audio.shape[-1]).to(audio.dtype)
    count = lengths[:, None].clamp(min=1).to(audio.dtype)
    mean = (audio * valid).sum(-1, keepdim=True) / count
    var = (((audio - mean) * valid) ** 2).sum(-1, keepdim=True) / count
    return (audio - mean) * torch.rsqrt(var + _WAVEFORM_NORM_EPS) * valid


def _channel_norm(x, lengths, norm):
    """GroupNorm with one group per channel (HuBERT's first conv) over each row's valid frames, in float32."""
    x32 = x.float()
    if lengths is None:
        out = F.group_norm(x32, norm.num_groups, norm.weight.float(), norm.bias.float(), norm.eps)
    else:
        valid = length_mask(lengths, x.shape[-1])[:, None, :]
        count = lengths[:, None, None].clamp(min=1)
        mean = x32.masked_fill(~valid, 0).sum(-1, keepdim=True) / count
        var = (x32 - mean).masked_fill(~valid, 0).pow(2).sum(-1, keepdim=True) / count
        return _apply_channel_norm(x, (mean, torch.rsqrt(var + norm.eps)), norm)
    return out.to(x.dtype)


def _apply_channel_norm(x, stats, norm):
    """The one-group-per-channel GroupNorm with given (mean, rstd) [B, C, 1], in float32."""
    mean, rstd = stats
    out = (x.float() - mean) * rstd * norm.weight.float()[:, None] + norm.bias.float()[:, None]
    return out.to(x.dtype)


def _frame_norm(x, norm):
    """LayerNorm over channels of [B, C, T] in float32 (the "layer_norm" extractor mode)."""
    out = F.layer_norm(x.float().transpose(1, 2), norm.normalized_shape, norm.weight.float(), norm.bias.float(),
                       norm.eps)
    return out.transpose(1, 2).to(x.dtype)


def additive_attention_mask(frame_mask, dtype):
    """[B, 1, T, T] mask that adds the dtype's minimum to attention scores of padded keys."""
    blocked = ~frame_mask[:, None, None, :]
    mask = torch.zeros(blocked.shape, dtype=dtype, device=frame_mask.device).masked_fill(blocked,
                                                                                          torch.finfo(dtype).min)
    return mask.expand(-1, -1, frame_mask.shape[1], -1)


class HubertWithFinalProj(HubertModel):
    """HubertModel plus ContentVec's `final_proj`; state-dict keys match RVC 2026's `assets/hubert_base`.
    `final_proj` is None for a folder without it (plain HuBERT/ContentVec): those serve v2 models only.

    A frozen feature extractor: `train()` keeps it in eval mode because dropout would change RVC's features.
    `normalize_waveform` mirrors the checkpoint's fairseq `task.normalize` / HF `do_normalize`.
    """

    def __init__(self, config, normalize_waveform=False):
        super().__init__(config)
        self.final_proj = nn.Linear(config.hidden_size, config.classifier_proj_size)
        self.normalize_waveform = normalize_waveform

    def train(self, mode=True):
        """Ignore `mode`: a parent's `.train()` must not switch on dropout here."""
        return super().train(False)

    @torch.no_grad()
    def features(self, audio, version, padding_mask=None):
        """RVC content features [B, T, D] of audio [B, N] at 16 kHz (tensor or array), in the model's dtype.

        `padding_mask` [B, N] is True on padding samples, which must sit at the end of each row (fairseq/RVC
        convention). Frames past a row's own length hold values that mean nothing.
        """
        layer = self._feature_layer(version)
        param = self.feature_projection.projection.weight
        audio = torch.as_tensor(audio, dtype=torch.float32, device=param.device)
        lengths = self._sample_lengths(audio, padding_mask)
        if self.normalize_waveform:
            audio = normalize_waveform(audio, lengths)
        frames, frame_lengths = self._conv_frames(audio.to(param.dtype), lengths)
        hidden = self.feature_projection(frames)
        hidden = self._encode(hidden, frame_lengths, layer)
        return self.final_proj(hidden) if version == "v1" else hidden

    def _feature_layer(self, version):
        if version not in RVC_FEATURE_LAYERS:
            raise ValueError(f"RVC feature version must be one of {sorted(RVC_FEATURE_LAYERS)}, not {version!r}")
        if version == "v1" and self.final_proj is None:
            raise UserError("this HuBERT folder has no final_proj", "it serves v2 models only; for a v1 model use "
                            "RVC's hubert_base.pt or a folder with final_proj (download-assets --only hubert)")
        layer = RVC_FEATURE_LAYERS[version]
        if layer > self.config.num_hidden_layers:
            raise UserError(f"{version} features come from layer {layer}; this HuBERT has only "
                             f"{self.config.num_hidden_layers} layers")
        return layer

    @staticmethod
    def _sample_lengths(audio, padding_mask):
        """Each row's unpadded length, or None when nothing is padded (the faster, unmasked path)."""
        if audio.dim() != 2:
            raise ValueError(f"audio must be [batch, samples], got shape {tuple(audio.shape)}")
        if padding_mask is None:
            return None
        padding_mask = torch.as_tensor(padding_mask, dtype=torch.bool, device=audio.device)
        if padding_mask.shape != audio.shape:
            raise ValueError(f"padding_mask shape {tuple(padding_mask.shape)} differs from audio "
                             f"{tuple(audio.shape)}")
        if not padding_mask.any():
            return None
        lengths = (~padding_mask).sum(-1)
        if not torch.equal(padding_mask, ~length_mask(lengths, audio.shape[1])):
            raise ValueError("padding_mask must mark padding only at the end of each row")
        return lengths

    front_end_tile_frames = 128  # frames per tile of the unpadded conv front end (2.56 s at 16 kHz)

    def _conv_frames(self, audio, lengths):
        """Conv front end: [B, N] samples -> [B, T, C] frames, plus per-row frame counts (None: no padding).

        Unpadded input goes through in tiles of ``front_end_tile_frames`` frames: the first layer's 512 x N/5
        activations of a 30 s chunk are 200 MB each (three at once), a tile's are a few MB and stay in cache.
        Its GroupNorm normalises each channel over the whole row, so a first pass takes those statistics.
        """
        receptive, stride = self._front_end_geometry()
        frames = (audio.shape[-1] - receptive) // stride + 1
        first_norm = getattr(self.feature_extractor.conv_layers[0], "layer_norm", None)
        per_channel = not isinstance(first_norm, nn.GroupNorm) or first_norm.num_groups == first_norm.num_channels
        if lengths is not None or frames <= 2 * self.front_end_tile_frames or not per_channel:
            return self._conv_layers(audio[:, None, :], lengths, norm_stats=None)
        stats = self._first_layer_stats(audio) if isinstance(first_norm, nn.GroupNorm) else None
        tiles = []
        for first in range(0, frames, self.front_end_tile_frames):
            last = min(first + self.front_end_tile_frames, frames)
            span = audio[:, None, first * stride:(last - 1) * stride + receptive]
            tiles.append(self._conv_layers(span, None, norm_stats=stats)[0])
        return torch.cat(tiles, dim=1), None

    def _conv_layers(self, x, lengths, norm_stats):
        """[B, 1, N] -> ([B, T, C], frame counts); ``norm_stats`` (mean, rstd) [B, C, 1] stand in for the
        first layer's GroupNorm statistics."""
        for conv_layer in self.feature_extractor.conv_layers:
            x = conv_layer.conv(x)
            if lengths is not None:
                lengths = conv_output_lengths(lengths, conv_layer.conv.kernel_size[0], conv_layer.conv.stride[0])
            norm = getattr(conv_layer, "layer_norm", None)
            if isinstance(norm, nn.GroupNorm):
                x = _channel_norm(x, lengths, norm) if norm_stats is None else _apply_channel_norm(x, norm_stats, norm)
            elif norm is not None:
                x = _frame_norm(x, norm)
            x = conv_layer.activation(x)
        return x.transpose(1, 2), lengths

    def _front_end_geometry(self):
        """(receptive field, stride) of one output frame, in samples."""
        receptive, stride = 1, 1
        for conv_layer in self.feature_extractor.conv_layers:
            receptive += (conv_layer.conv.kernel_size[0] - 1) * stride
            stride *= conv_layer.conv.stride[0]
        return receptive, stride

    def _first_layer_stats(self, audio):
        """Per-row, per-channel mean and 1/std of the first conv's output over the whole row, without
        running it: the conv is linear in its input windows x, so mean = w.E[x] + b and
        E[y^2] = w E[x x^T] w^T + 2 b w.E[x] + b^2, from the windows' kernel x kernel second moments."""
        conv = self.feature_extractor.conv_layers[0].conv
        norm = self.feature_extractor.conv_layers[0].layer_norm
        windows = audio.double().unfold(-1, conv.kernel_size[0], conv.stride[0])  # [B, T, K] (a view)
        first_moment = windows.mean(1)  # [B, K]
        second_moment = windows.transpose(1, 2) @ windows / windows.shape[1]  # [B, K, K]
        weight = conv.weight.double()[:, 0, :]  # [C, K]
        bias = conv.bias.double() if conv.bias is not None else weight.new_zeros(weight.shape[0])
        mean = first_moment @ weight.T + bias  # [B, C]
        square = torch.einsum("ck,bkl,cl->bc", weight, second_moment, weight) + 2 * bias * (mean - bias) + bias**2
        var = (square - mean * mean).clamp(min=0)
        return mean.float()[..., None], torch.rsqrt(var + norm.eps).float()[..., None]

    def _encode(self, hidden, frame_lengths, last_layer):
        """Positional conv, then transformer layers 1..last_layer, as fairseq's TransformerEncoder does."""
        encoder = self.encoder
        attention_mask = None
        if frame_lengths is not None:
            frame_mask = length_mask(frame_lengths, hidden.shape[1])
            hidden = hidden.masked_fill(~frame_mask[..., None], 0)
            attention_mask = additive_attention_mask(frame_mask, hidden.dtype)
        hidden = hidden + encoder.pos_conv_embed(hidden)
        if not self.config.do_stable_layer_norm:
            hidden = encoder.layer_norm(hidden)
        for layer in encoder.layers[:last_layer]:
            output = layer(hidden, attention_mask=attention_mask)
            hidden = output[0] if isinstance(output, tuple) else output  # transformers 4.x returns a tuple
        return hidden
