"""RVC's training objective (``infer/lib/train/losses.py``, ``mel_processing.py``): LSGAN generator and
discriminator losses, feature matching x2, KL between posterior and prior, and the log-mel L1 (x45 in
the trainer) computed from a linear magnitude STFT with librosa's mel filters."""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from ..rvc.configs import RateLayout

MEL_FLOOR = 1e-5  # log(clamp(mel, 1e-5))
FEATURE_MATCHING_WEIGHT = 2


class MelScale:
    """RVC's spectrograms for one rate: linear magnitude (what enc_q reads) and log-mel (the loss)."""

    def __init__(self, layout: RateLayout):
        self.layout = layout

    def linear(self, audio: torch.Tensor) -> torch.Tensor:
        """[B, N] -> [B, n_fft/2+1, frames]: Hann window, reflect padding of (n_fft - hop)/2, no centring,
        magnitude sqrt(re^2 + im^2 + 1e-6)."""
        n_fft, hop = self.layout.filter_length, self.layout.hop_length
        pad = (n_fft - hop) // 2
        audio = F.pad(audio.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
        window = torch.hann_window(n_fft, device=audio.device, dtype=audio.dtype)
        spec = torch.stft(audio, n_fft, hop_length=hop, win_length=n_fft, window=window, center=False,
                          normalized=False, onesided=True, return_complex=True)
        return torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-6)

    def mel_of_linear(self, spec: torch.Tensor) -> torch.Tensor:
        basis = _mel_basis(self.layout.sr, self.layout.filter_length, self.layout.n_mel_channels)
        return torch.log(torch.clamp(basis.to(spec) @ spec, min=MEL_FLOOR))

    def mel(self, audio: torch.Tensor) -> torch.Tensor:
        return self.mel_of_linear(self.linear(audio))


@lru_cache(maxsize=8)
def _mel_basis(sr: int, n_fft: int, n_mels: int) -> torch.Tensor:
    from librosa.filters import mel

    return torch.from_numpy(mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=0.0, fmax=None))


def discriminator_loss(real_scores, fake_scores) -> torch.Tensor:
    """LSGAN: sum over sub-discriminators of mean((1 - D(real))^2) + mean(D(fake)^2)."""
    return sum(torch.mean((1 - real.float()) ** 2) + torch.mean(fake.float() ** 2)
               for real, fake in zip(real_scores, fake_scores))


def generator_loss(fake_scores) -> torch.Tensor:
    return sum(torch.mean((1 - fake.float()) ** 2) for fake in fake_scores)


def feature_matching_loss(real_maps, fake_maps) -> torch.Tensor:
    """2 x the sum over every layer of every sub-discriminator of mean |real - fake| (real detached)."""
    return FEATURE_MATCHING_WEIGHT * sum(torch.mean(torch.abs(real.float().detach() - fake.float()))
                                         for reals, fakes in zip(real_maps, fake_maps)
                                         for real, fake in zip(reals, fakes))


def kl_loss(z_p, logs_q, m_p, logs_p, mask) -> torch.Tensor:
    """KL(posterior || prior) per masked frame, as VITS estimates it from the flowed sample z_p."""
    z_p, logs_q, m_p, logs_p, mask = (t.float() for t in (z_p, logs_q, m_p, logs_p, mask))
    kl = logs_p - logs_q - 0.5 + 0.5 * (z_p - m_p) ** 2 * torch.exp(-2.0 * logs_p)
    return torch.sum(kl * mask) / torch.sum(mask)
