"""The four RVC synthesizers (v1/v2 content features x with/without pitch), built from RVC's 18-value config.

Class names here say what each is; ``RVC_CLASS_NAMES`` maps RVC's own names to them. Module and
parameter names are RVC's, so state dicts load both ways with a strict key match.
"""

from __future__ import annotations

import torch
from torch import nn

from .commons import rand_slice_segments, slice_segments
from .encoders import PosteriorEncoder, TextEncoder
from .flow import ResidualCouplingBlock
from .generator import Generator, GeneratorNSF

SAMPLE_RATE_TAGS = {"32k": 32000, "40k": 40000, "48k": 48000}
CONTENT_CHANNELS = {"v1": 256, "v2": 768}
CONFIG_FIELDS = (
    "spec_channels",
    "segment_size",
    "inter_channels",
    "hidden_channels",
    "filter_channels",
    "n_heads",
    "n_layers",
    "kernel_size",
    "p_dropout",
    "resblock",
    "resblock_kernel_sizes",
    "resblock_dilation_sizes",
    "upsample_rates",
    "upsample_initial_channel",
    "upsample_kernel_sizes",
    "spk_embed_dim",
    "gin_channels",
    "sr",
)
PRIOR_NOISE_SCALE = 0.66666  # RVC samples the prior at 2/3 temperature


def parse_sample_rate(sr) -> int:
    """32000, "32000" or "32k" -> 32000."""
    if isinstance(sr, str):
        text = sr.strip().lower()
        if text in SAMPLE_RATE_TAGS:
            return SAMPLE_RATE_TAGS[text]
        if text.isdigit():
            return int(text)
        raise ValueError(f"not a sample rate: {sr!r} (expected e.g. 40000 or '40k')")
    if isinstance(sr, bool) or int(sr) != sr or sr <= 0:
        raise ValueError(f"not a sample rate: {sr!r}")
    return int(sr)


def sample_rate_tag(sr) -> str:
    """40000 -> "40k", the form RVC stores in a small model's ``sr`` field."""
    rate = parse_sample_rate(sr)
    return f"{rate // 1000}k" if rate % 1000 == 0 else str(rate)


class _Synthesizer(nn.Module):
    """VITS without duration modelling: prior encoder ``enc_p``, posterior encoder ``enc_q`` (training
    only), flow, decoder ``dec`` and speaker table ``emb_g``.

    Constructor arguments are RVC's config list in order (see ``CONFIG_FIELDS``). ``is_half`` and any
    further keywords (RVC's trainer passes its whole model section) are accepted and not used.
    """

    version: str
    uses_f0: bool

    def __init__(
        self,
        spec_channels,
        segment_size,
        inter_channels,
        hidden_channels,
        filter_channels,
        n_heads,
        n_layers,
        kernel_size,
        p_dropout,
        resblock,
        resblock_kernel_sizes,
        resblock_dilation_sizes,
        upsample_rates,
        upsample_initial_channel,
        upsample_kernel_sizes,
        spk_embed_dim,
        gin_channels,
        sr=None,
        is_half=False,
        **unused_hparams,
    ):
        arguments = locals()  # taken before any other local exists: just the arguments, by name
        super().__init__()
        self.sample_rate = None if sr is None else parse_sample_rate(sr)
        self.config = [arguments[name] for name in CONFIG_FIELDS[:-1]] + [self.sample_rate]
        self.segment_size = segment_size
        self.enc_p = TextEncoder(
            CONTENT_CHANNELS[self.version],
            inter_channels,
            hidden_channels,
            filter_channels,
            n_heads,
            n_layers,
            kernel_size,
            p_dropout,
            f0=self.uses_f0,
        )
        decoder_args = (
            inter_channels,
            resblock,
            resblock_kernel_sizes,
            resblock_dilation_sizes,
            upsample_rates,
            upsample_initial_channel,
            upsample_kernel_sizes,
            gin_channels,
        )
        if self.uses_f0:
            if self.sample_rate is None:
                raise ValueError(f"{type(self).__name__} needs the sample rate (config[17]) for its NSF source")
            self.dec = GeneratorNSF(*decoder_args, sr=self.sample_rate)
        else:
            self.dec = Generator(*decoder_args)
        self.enc_q = PosteriorEncoder(spec_channels, inter_channels, hidden_channels, 5, 1, 16, gin_channels)
        self.flow = ResidualCouplingBlock(inter_channels, hidden_channels, 5, 1, 3, gin_channels=gin_channels)
        self.emb_g = nn.Embedding(spk_embed_dim, gin_channels)

    def _train_step(self, phone, phone_lengths, pitch, y, y_lengths, sid):
        """The training pass up to the decoder: speaker vector, a random z window and its starts, masks, KL terms."""
        g = self.emb_g(sid).unsqueeze(-1)
        m_p, logs_p, x_mask = self.enc_p(phone, pitch, phone_lengths)
        z, m_q, logs_q, y_mask = self.enc_q(y, y_lengths, g=g)
        z_p = self.flow(z, y_mask, g=g)
        z_slice, ids_slice = rand_slice_segments(z, y_lengths, self.segment_size)
        return g, z_slice, ids_slice, x_mask, y_mask, (z, z_p, m_p, logs_p, m_q, logs_q)

    def _sample_latent(self, phone, phone_lengths, pitch, g, skip_head, return_length):
        """Sample z_p from the prior and map it back through the flow to z.

        With ``skip_head``/``return_length`` (RVC's real-time path) only the last 24 frames before the
        head are kept as flow context, and z is cropped to ``return_length`` frames after the head.
        """
        crop = skip_head is not None and return_length is not None
        head = int(skip_head) if crop else 0
        flow_head = max(head - 24, 0)
        m_p, logs_p, x_mask = self.enc_p(phone, pitch, phone_lengths, flow_head if crop else None)
        z_p = (m_p + torch.exp(logs_p) * torch.randn_like(m_p) * PRIOR_NOISE_SCALE) * x_mask
        z = self.flow(z_p, x_mask, g=g, reverse=True)
        if crop:
            start, length = head - flow_head, int(return_length)
            z, x_mask = z[:, :, start : start + length], x_mask[:, :, start : start + length]
        return z, x_mask, (z, z_p, m_p, logs_p)


class _PitchSynthesizer(_Synthesizer):
    """f0 model: coarse pitch embedding in the prior, NSF decoder driven by F0 in Hz."""

    uses_f0 = True

    def forward(self, phone, phone_lengths, pitch, pitchf, y, y_lengths, ds=None):
        """Training pass on a random ``segment_size``-frame window. Returns
        (audio, window starts, x_mask, y_mask, (z, z_p, m_p, logs_p, m_q, logs_q))."""
        g, z_slice, ids_slice, x_mask, y_mask, stats = self._train_step(phone, phone_lengths, pitch, y, y_lengths, ds)
        pitchf = slice_segments(pitchf, ids_slice, self.segment_size)
        return self.dec(z_slice, pitchf, g=g), ids_slice, x_mask, y_mask, stats

    def infer(self, phone, phone_lengths, pitch, nsff0, sid, skip_head=None, return_length=None, return_length2=None,
              decode_frames=None):
        """phone [B, T, C], phone_lengths [B], pitch [B, T] coarse, nsff0 [B, T] Hz, sid [B] ->
        (audio [B, 1, T * hop], x_mask, (z, z_p, m_p, logs_p)). Draws the prior noise, then the NSF phase and noise.
        ``decode_frames`` (start, stop): the audio of those frames only (see Generator.forward)."""
        g = self.emb_g(sid).unsqueeze(-1)
        z, x_mask, stats = self._sample_latent(phone, phone_lengths, pitch, g, skip_head, return_length)
        if skip_head is not None and return_length is not None:
            head = int(skip_head)
            nsff0 = nsff0[:, head : head + int(return_length)]
        return self.dec(z * x_mask, nsff0, g=g, n_res=return_length2, frames=decode_frames), x_mask, stats


class _PlainSynthesizer(_Synthesizer):
    """No-f0 model: content features only, plain HiFi-GAN decoder."""

    uses_f0 = False

    def forward(self, phone, phone_lengths, y, y_lengths, ds):
        """Training pass; same returns as the f0 model's."""
        g, z_slice, ids_slice, x_mask, y_mask, stats = self._train_step(phone, phone_lengths, None, y, y_lengths, ds)
        return self.dec(z_slice, g=g), ids_slice, x_mask, y_mask, stats

    def infer(self, phone, phone_lengths, sid, skip_head=None, return_length=None, return_length2=None,
              decode_frames=None):
        """phone [B, T, C], phone_lengths [B], sid [B] -> (audio [B, 1, T * hop], x_mask, (z, z_p, m_p, logs_p));
        ``decode_frames`` as in the f0 model."""
        g = self.emb_g(sid).unsqueeze(-1)
        z, x_mask, stats = self._sample_latent(phone, phone_lengths, None, g, skip_head, return_length)
        return self.dec(z * x_mask, g=g, n_res=return_length2, frames=decode_frames), x_mask, stats


class SynthesizerV1F0(_PitchSynthesizer):
    """RVC's SynthesizerTrnMs256NSFsid: 256-dim (v1) content features with pitch."""

    version = "v1"


class SynthesizerV2F0(_PitchSynthesizer):
    """RVC's SynthesizerTrnMs768NSFsid: 768-dim (v2) content features with pitch."""

    version = "v2"


class SynthesizerV1NoF0(_PlainSynthesizer):
    """RVC's SynthesizerTrnMs256NSFsid_nono: 256-dim (v1) content features, no pitch."""

    version = "v1"


class SynthesizerV2NoF0(_PlainSynthesizer):
    """RVC's SynthesizerTrnMs768NSFsid_nono: 768-dim (v2) content features, no pitch."""

    version = "v2"


RVC_CLASS_NAMES = {
    "SynthesizerTrnMs256NSFsid": SynthesizerV1F0,
    "SynthesizerTrnMs768NSFsid": SynthesizerV2F0,
    "SynthesizerTrnMs256NSFsid_nono": SynthesizerV1NoF0,
    "SynthesizerTrnMs768NSFsid_nono": SynthesizerV2NoF0,
}


def synthesizer_class(version: str, f0) -> type:
    """The class RVC picks for (version, f0 flag)."""
    classes = {
        ("v1", True): SynthesizerV1F0,
        ("v2", True): SynthesizerV2F0,
        ("v1", False): SynthesizerV1NoF0,
        ("v2", False): SynthesizerV2NoF0,
    }
    if version not in CONTENT_CHANNELS:
        raise ValueError(f"unknown RVC version {version!r} (expected 'v1' or 'v2')")
    return classes[(version, bool(f0))]


def build_synthesizer(config, version: str, f0, *, inference: bool = False, is_half: bool = False) -> _Synthesizer:
    """Construct the synthesizer for (version, f0) from RVC's 18-value config list.

    ``inference=True`` removes ``enc_q``, as RVC does before loading a small model. Build under
    ``with torch.device("meta"):`` to get shapes without allocating.
    """
    config = list(config)
    if len(config) != len(CONFIG_FIELDS):
        raise ValueError(f"an RVC config has {len(CONFIG_FIELDS)} values, got {len(config)}")
    model = synthesizer_class(version, f0)(*config, is_half=is_half)
    if inference:
        del model.enc_q
    return model
