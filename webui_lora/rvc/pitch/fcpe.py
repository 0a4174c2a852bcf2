"""FCPE f0 as RVC main-2026 runs it (torchfcpe's bundled model, local-argmax decoder, threshold
0.006), with our own code around torchfcpe's weight file.

The bundled model (`fcpe_c_v001.pt`) is the conv-only variant: an input conv stack, six residual
Conformer convolution modules, LayerNorm and a weight-normed projection to 360 cent bins. Its mel
front end: 128 Slaney mel bands 0-8000 Hz of a 1024-point STFT every 160 samples, not centred but
padded by 432 samples each side, log-clamped at 1e-5. That yields n // 160 frames; torchfcpe repeats
the last one to return n // 160 + 1, and so do we.
"""

import re
from functools import lru_cache

import librosa
import numpy as np
import torch
import torch.nn.functional as F

from .constants import HOP_LENGTH, SAMPLE_RATE
from .packaged_weights import missing_reason, packaged_file

PACKAGE, PACKAGE_VERSION = "torchfcpe", "0.0.4"
WEIGHTS = "assets/fcpe_c_v001.pt"
THRESHOLD = 0.006
_N_FFT = 1024
_N_MELS = 128
_FMAX = 8000.0
_LOCAL_BINS = 9


def unavailable_reason():
    return missing_reason(PACKAGE, WEIGHTS, PACKAGE_VERSION)


@torch.no_grad()
def fcpe(audio, threshold=THRESHOLD, device="cpu"):
    """f0 in Hz (0 = unvoiced) for each of the n // 160 + 1 frames of 16 kHz `audio`."""
    net = _network(str(device))
    salience = net(_log_mel(audio).to(device)).cpu()[0]
    confidence, peak = salience.max(dim=1)
    window = (peak[:, None] + torch.arange(_LOCAL_BINS) - _LOCAL_BINS // 2).clamp(0, salience.shape[1] - 1)
    weights = salience.gather(1, window)
    cents = (weights * net.cent_table.cpu()[window]).sum(dim=1) / weights.sum(dim=1)
    f0 = 10.0 * 2.0 ** (cents / 1200.0)
    f0[confidence <= threshold] = 0.0
    return f0.numpy()


class FcpeNet(torch.nn.Module):
    """torchfcpe's CFNaiveMelPE with conv_only=True: log-mel frames [B, T, 128] -> bin saliences."""

    def __init__(self, n_blocks=6, width=512, n_bins=360):
        super().__init__()
        self.input_stack = torch.nn.Sequential(
            torch.nn.Conv1d(_N_MELS, width, 3, padding=1),
            torch.nn.GroupNorm(4, width),
            torch.nn.LeakyReLU(),
            torch.nn.Conv1d(width, width, 3, padding=1),
        )
        self.blocks = torch.nn.ModuleList(_ConvModule(width) for _ in range(n_blocks))
        self.norm = torch.nn.LayerNorm(width)
        self.output_proj = torch.nn.Linear(width, n_bins)
        self.register_buffer("cent_table", torch.zeros(n_bins))

    def forward(self, mel):
        x = self.input_stack(mel.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = x + block(x)
        return torch.sigmoid(self.output_proj(self.norm(x)))


class _ConvModule(torch.nn.Module):
    """Conformer convolution module: pointwise conv + GLU, depthwise conv (31), SiLU, pointwise."""

    def __init__(self, width, kernel=31):
        super().__init__()
        self.norm = torch.nn.LayerNorm(width)
        self.expand = torch.nn.Conv1d(width, 4 * width, 1)
        self.depthwise = torch.nn.Conv1d(2 * width, 2 * width, kernel, padding=kernel // 2, groups=2 * width)
        self.project = torch.nn.Conv1d(2 * width, width, 1)

    def forward(self, x):
        y = F.glu(self.expand(self.norm(x).transpose(1, 2)), dim=1)
        return self.project(F.silu(self.depthwise(y))).transpose(1, 2)


@lru_cache(maxsize=1)
def _network(device):
    path = packaged_file(PACKAGE, WEIGHTS)
    if path is None:
        raise FileNotFoundError(unavailable_reason())
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    config = checkpoint["config_dict"]["model"]
    if not config.get("conv_only"):
        raise ValueError(f"{path}: FCPE with attention layers is not supported, only the conv-only model")
    net = FcpeNet(config["n_layers"], config["hidden_dims"], config["out_dims"])
    net.load_state_dict(_renamed(checkpoint["model"]))
    return net.eval().to(device)


_CONV_MODULE_PARTS = {"0": "norm", "2": "expand", "4.conv": "depthwise", "6": "project"}
_UNUSED = {"output_proj.weight_g", "gaussian_blurred_cent_mask"}  # gain folded in; a training buffer


def _renamed(state):
    """torchfcpe's keys in our layout, its weight-normed projection folded into a plain weight."""
    renamed = {}
    for key, tensor in state.items():
        match = re.fullmatch(r"net\.encoder_layers\.(\d+)\.(.+)\.(\w+)", key)
        if key in _UNUSED or (match and match[2] == "norm"):
            continue  # the per-layer norm only feeds attention, which the conv-only model lacks
        if match:
            part = _CONV_MODULE_PARTS[match[2].removeprefix("conformer.net.")]
            renamed[f"blocks.{match[1]}.{part}.{match[3]}"] = tensor
        elif key == "output_proj.weight_v":
            gain = state["output_proj.weight_g"]
            renamed["output_proj.weight"] = gain * tensor / tensor.norm(dim=1, keepdim=True)
        else:
            renamed[key] = tensor
    return renamed


@lru_cache(maxsize=1)
def _mel_basis():
    basis = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=_N_FFT, n_mels=_N_MELS, fmin=0.0, fmax=_FMAX)
    return torch.from_numpy(basis).float()


def _log_mel(audio):
    """[1, n // 160 + 1, 128] log-mel frames, laid out like torchfcpe's Wav2MelModule."""
    signal = torch.from_numpy(np.asarray(audio, dtype=np.float32))[None, None]
    n_samples = signal.shape[-1]
    left = (_N_FFT - HOP_LENGTH) // 2
    right = max((_N_FFT - HOP_LENGTH + 1) // 2, _N_FFT - n_samples - left)
    signal = F.pad(signal, (left, right), mode="reflect" if right < n_samples else "constant")[0]
    spectrum = torch.stft(
        signal, _N_FFT, HOP_LENGTH, window=torch.hann_window(_N_FFT), center=False, return_complex=True
    )
    magnitude = torch.sqrt(spectrum.real.pow(2) + spectrum.imag.pow(2) + 1e-9)
    mel = torch.log(torch.clamp(_mel_basis() @ magnitude, min=1e-5)).transpose(1, 2)
    n_frames = n_samples // HOP_LENGTH + 1
    missing = n_frames - mel.shape[1]
    return torch.cat([mel] + [mel[:, -1:]] * missing, dim=1)[:, :n_frames]
