"""RVC's training configs (``configs/v1/*.json`` and ``configs/v2/*.json``) as data: the one place that
knows each rate's STFT, mel bands, decoder layout and training segment, and the JSON RVC copies into an
experiment folder.

RVC has no ``v2/40k.json``: a v2 40k model trains with ``v1/40k.json`` (the v2 difference is only the
768-wide content input, which the config does not name).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from .models.synthesizer import CONFIG_FIELDS, parse_sample_rate, sample_rate_tag


@dataclass(frozen=True)
class RateLayout:
    """One config file's rate-dependent values."""

    sr: int
    filter_length: int  # STFT size (= window length)
    hop_length: int  # samples per synthesizer frame: 10 ms at every rate
    n_mel_channels: int
    upsample_rates: tuple
    upsample_kernel_sizes: tuple
    segment_size: int  # training window in samples

    @property
    def spec_channels(self) -> int:
        return self.filter_length // 2 + 1

    @property
    def segment_frames(self) -> int:
        return self.segment_size // self.hop_length


LAYOUTS = {
    "v1/32k": RateLayout(32000, 1024, 320, 80, (10, 4, 2, 2, 2), (16, 16, 4, 4, 4), 12800),
    "v1/40k": RateLayout(40000, 2048, 400, 125, (10, 10, 2, 2), (16, 16, 4, 4), 12800),
    "v1/48k": RateLayout(48000, 2048, 480, 128, (10, 6, 2, 2, 2), (16, 16, 4, 4, 4), 11520),
    "v2/32k": RateLayout(32000, 1024, 320, 80, (10, 8, 2, 2), (20, 16, 4, 4), 12800),
    "v2/48k": RateLayout(48000, 2048, 480, 128, (12, 10, 2, 2), (24, 20, 4, 4), 17280),
}

TRAIN = {
    "log_interval": 200, "seed": 1234, "epochs": 20000, "learning_rate": 1e-4, "betas": [0.8, 0.99], "eps": 1e-9,
    "batch_size": 4, "fp16_run": True, "lr_decay": 0.999875, "init_lr_ratio": 1, "warmup_epochs": 0,
    "c_mel": 45, "c_kl": 1.0,
}
MODEL = {
    "inter_channels": 192, "hidden_channels": 192, "filter_channels": 768, "n_heads": 2, "n_layers": 6,
    "kernel_size": 3, "p_dropout": 0, "resblock": "1", "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "upsample_initial_channel": 512,
    "use_spectral_norm": False, "gin_channels": 256, "spk_embed_dim": 109,
}
# RVC's DistributedBucketSampler groups items by estimated spectrogram frames; an item of at most the
# first boundary (or above the last) is never drawn.
BUCKET_BOUNDARIES = tuple(range(100, 1000, 100))


def config_name(version: str, sr) -> str:
    """Which file RVC's WebUI picks: ``v1/<sr>`` for v1 models and for every 40k model, else ``v2/<sr>``."""
    if version not in ("v1", "v2"):
        raise ValueError(f"unknown RVC version {version!r} (expected 'v1' or 'v2')")
    tag = sample_rate_tag(sr)
    return f"v1/{tag}" if version == "v1" or tag == "40k" else f"v2/{tag}"


def layout(version: str, sr) -> RateLayout:
    name = config_name(version, sr)
    if name not in LAYOUTS:
        raise ValueError(f"RVC has no {version} config for {parse_sample_rate(sr)} Hz (rates: 32k, 40k, 48k)")
    return LAYOUTS[name]


def rvc_config(version: str, sr) -> dict:
    """The ``config.json`` RVC writes into an experiment folder for (version, rate)."""
    rate = layout(version, sr)
    model = copy.deepcopy(MODEL)
    model["upsample_rates"] = list(rate.upsample_rates)
    model["upsample_kernel_sizes"] = list(rate.upsample_kernel_sizes)
    return {
        "train": {**copy.deepcopy(TRAIN), "segment_size": rate.segment_size},
        "data": {"max_wav_value": 32768.0, "sampling_rate": rate.sr, "filter_length": rate.filter_length,
                 "hop_length": rate.hop_length, "win_length": rate.filter_length,
                 "n_mel_channels": rate.n_mel_channels, "mel_fmin": 0.0, "mel_fmax": None},
        "model": model,
    }


def synthesizer_config(version: str, sr, *, segment_frames=None) -> list:
    """RVC's 18-value constructor list for a fresh full-size model, as its trainer builds one."""
    rate = layout(version, sr)
    values = {**MODEL, "spec_channels": rate.spec_channels,
              "segment_size": rate.segment_frames if segment_frames is None else segment_frames,
              "upsample_rates": list(rate.upsample_rates), "upsample_kernel_sizes": list(rate.upsample_kernel_sizes),
              "sr": rate.sr}
    return [values[name] for name in CONFIG_FIELDS]
