"""The neural-source-filter excitation: a sine at the target F0 that the f0 decoder mixes into every stage.

The random draws (one uniform for the initial phases, then Gaussian noise) and the phase arithmetic
follow RVC's order exactly, so seeded inference reproduces RVC's audio.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .commons import EXCITATION, PHASE, item_rand, item_randn_like


class SineGen(nn.Module):
    """Frame-rate F0 -> sample-rate sine (plus noise), silent except for noise where F0 is 0."""

    def __init__(
        self,
        sample_rate: int,
        harmonic_num: int = 0,
        sine_amp: float = 0.1,
        noise_std: float = 0.003,
        voiced_threshold: float = 0,
    ):
        super().__init__()
        self.sample_rate = sample_rate
        self.harmonic_num = harmonic_num
        self.sine_amp = sine_amp
        self.noise_std = noise_std
        self.voiced_threshold = voiced_threshold

    @torch.no_grad()
    def forward(self, f0: torch.Tensor, upp: int):
        """f0 [B, T] in Hz -> (excitation [B, T*upp, harmonics], voiced mask [B, T*upp, 1])."""
        f0 = f0.unsqueeze(-1).float()
        harmonics = torch.arange(1, self.harmonic_num + 2, device=f0.device, dtype=torch.float32)
        cycles_per_sample = (f0 * harmonics / self.sample_rate) % 1

        # Random initial phase per harmonic; the fundamental always starts at phase 0.
        start_phase = item_rand(PHASE, f0.shape[0], harmonics.numel(), device=f0.device)
        start_phase[:, 0] = 0
        cycles_per_sample[:, 0, :] = cycles_per_sample[:, 0, :] + start_phase

        # Integrate the phase at frame rate, interpolate it to sample rate, and mark where its
        # fractional part wraps; subtracting those whole cycles keeps the sample-rate sum small.
        frame_phase = torch.cumsum(cycles_per_sample, 1) * upp
        sample_phase = _stretch(frame_phase, upp, "linear") % 1
        cycles_per_sample = _stretch(cycles_per_sample, upp, "nearest")
        wraps = torch.zeros_like(cycles_per_sample)
        wraps[:, 1:, :] = (sample_phase[:, 1:, :] - sample_phase[:, :-1, :] < 0) * -1.0
        sines = torch.sin(torch.cumsum(cycles_per_sample + wraps, dim=1) * 2 * torch.pi) * self.sine_amp

        voiced = _stretch((f0 > self.voiced_threshold).float(), upp, "nearest")
        noise_amp = voiced * self.noise_std + (1 - voiced) * self.sine_amp / 3
        noise = noise_amp * item_randn_like(sines, 1, EXCITATION)
        return sines * voiced + noise, voiced


def _stretch(x: torch.Tensor, factor: int, mode: str) -> torch.Tensor:
    """Upsample [B, T, C] along T by ``factor`` (linear with aligned corners, or nearest)."""
    align = True if mode == "linear" else None
    return F.interpolate(x.transpose(2, 1), scale_factor=float(factor), mode=mode, align_corners=align).transpose(2, 1)


class SourceModuleHnNSF(nn.Module):
    """Merge the sine harmonics into one excitation channel: tanh(Linear(sines)). Takes SineGen's arguments."""

    def __init__(self, *args, **kwargs):
        super().__init__()
        self.l_sin_gen = SineGen(*args, **kwargs)
        self.l_linear = nn.Linear(self.l_sin_gen.harmonic_num + 1, 1)

    def forward(self, f0: torch.Tensor, upp: int) -> torch.Tensor:
        """f0 [B, T] -> excitation [B, T*upp, 1] in the dtype of the model's weights."""
        sines, _ = self.l_sin_gen(f0, upp)
        return torch.tanh(self.l_linear(sines.to(self.l_linear.weight.dtype)))
