"""RMVPE, RVC's default f0 method, run from a user's `rmvpe.pt`.

`rmvpe.pt` is a bare state dict of RVC's `E2E(n_blocks=4, n_gru=1, kernel_size=(2, 2))`; the
modules below keep its attribute names so the keys match one to one. Front end: centred STFT
(n_fft 1024, Hann, hop 160) -> 128 HTK mel bands 30-8000 Hz -> log(max(mel, 1e-5)), giving
n // 160 + 1 frames; the network sees them zero-padded to a multiple of 32 (five 2x poolings) and
we keep the first n // 160 + 1 outputs. Decoding: 360 bins 20 cents apart, salience-weighted mean
of the cents of the 9 bins around the peak, 0 Hz where the peak salience is <= 0.03.
"""

import threading
from functools import lru_cache
from pathlib import Path

import librosa
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import UserError
from .constants import HOP_LENGTH, SAMPLE_RATE

THRESHOLD = 0.03
_N_FFT = 1024
_N_MELS = 128
_FMIN, _FMAX = 30.0, 8000.0
_BINS = 360
_CENTS = 1997.3794084376191 + 20.0 * np.arange(_BINS)
_LOCAL_BINS = 9
_TIME_MULTIPLE = 32


def weights_path(assets_dir):
    """``rmvpe/rmvpe.pt`` under an asset folder (RVC's layout), or ``rmvpe.pt`` in a host's rmvpe folder itself."""
    folder = Path(assets_dir)
    return folder / "rmvpe.pt" if (folder / "rmvpe.pt").is_file() else folder / "rmvpe" / "rmvpe.pt"


def unavailable_reason(assets_dir):
    path = weights_path(assets_dir)
    if path.is_file():
        return None
    return (
        f"no RMVPE weights at {path}: run python -m webui_lora download-assets --only rmvpe, "
        "or point --rvc-root / RVC_ROOT at an RVC install that has them"
    )


def rmvpe(audio, model_path, threshold=THRESHOLD, device="cpu"):
    """f0 in Hz (0 = unvoiced) for each of the n // 160 + 1 frames of 16 kHz `audio`."""
    path = Path(model_path)
    stat = path.stat()
    net = _cached_network(str(path.resolve()), stat.st_mtime_ns, stat.st_size, str(device))
    return salience_to_f0(bin_saliences(net, audio, device), threshold)


def load_network(path, device="cpu"):
    """RMVPENet with the weights of an RVC `rmvpe.pt`; never unpickles code (weights_only)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise UserError(path, f"not a readable RMVPE weights file ({error})") from error
    if not isinstance(state, dict):
        raise UserError(path, f"expected a state dict of RVC's RMVPE, found {type(state).__name__}")
    with torch.device("meta"):  # no random init of 90 M parameters that the file replaces anyway
        net = RMVPENet()
    missing, unexpected = _key_mismatch(net, state)
    if missing or unexpected:
        raise UserError(
            path, f"not RVC's RMVPE layout ({len(missing)} keys missing, e.g. {missing[:2]}; "
            f"{len(unexpected)} unexpected, e.g. {unexpected[:2]})"
        )
    net.load_state_dict(state, assign=True)
    net = net.eval().to(device)
    if torch.device(device).type == "cpu":
        return _compute_in_float32(net)
    return net.float()


def _compute_in_float32(net):
    """Every layer computes in float32, but convolution and norm layers keep the file's own float16
    values between calls and get float32 copies only for the length of their own call: the 90 M
    parameters take 181 MB instead of 362. float16 -> float32 is exact, so the output is bit for bit
    that of a float32 network. Calls are serialised (see ``_CALLS``): the copies live on the modules."""
    for module in net.modules():
        own = list(module.parameters(recurse=False))
        if not own:
            continue
        if isinstance(module, (nn.GRU, nn.Linear)) or own[0].dtype == torch.float32:
            module.float()  # small, or stored in float32 already (the GRU keeps flat views of its weights)
        else:
            module.register_forward_pre_hook(_widen)
            module.register_forward_hook(_narrow)
    return net


def _widen(module, _inputs):
    module._stored = {**module._parameters, **module._buffers}
    for table in (module._parameters, module._buffers):
        for name, value in table.items():
            if value is not None and value.is_floating_point():
                table[name] = value.float()


def _narrow(module, _inputs, _output):
    for table in (module._parameters, module._buffers):
        for name in table:
            table[name] = module._stored[name]
    del module._stored


_CALLS = threading.Lock()  # one network call at a time: a cached network is shared between threads


@lru_cache(maxsize=1)
def _cached_network(path, _mtime_ns, _size, device):
    """One network in memory; a changed file (new mtime or size) is loaded again."""
    return load_network(path, device)


def _key_mismatch(net, state):
    expected = net.state_dict().keys()
    return sorted(expected - state.keys()), sorted(state.keys() - expected)


@torch.no_grad()
def bin_saliences(net, audio, device="cpu"):
    """[n // 160 + 1, 360] bin saliences of 16 kHz `audio`."""
    mel = log_mel(torch.from_numpy(np.asarray(audio, dtype=np.float32))[None]).to(device)
    n_frames = mel.shape[-1]
    padded = F.pad(mel, (0, -n_frames % _TIME_MULTIPLE))
    with _CALLS:
        return net(padded)[0, :n_frames].float().cpu().numpy()


def salience_to_f0(salience, threshold=THRESHOLD):
    """Local weighted mean of the 9 bins around each frame's peak; bins past the ends weigh 0."""
    f0 = np.zeros(len(salience), dtype=np.float32)
    voiced = salience.max(axis=1) > threshold
    peaks = salience[voiced].argmax(axis=1)
    offsets = np.arange(_LOCAL_BINS) - _LOCAL_BINS // 2
    window = np.clip(peaks[:, None] + offsets, 0, _BINS - 1)
    inside = (peaks[:, None] + offsets >= 0) & (peaks[:, None] + offsets < _BINS)
    weights = np.take_along_axis(salience[voiced], window, axis=1) * inside
    cents = (weights * _CENTS[window]).sum(axis=1) / weights.sum(axis=1)
    f0[voiced] = 10.0 * 2.0 ** (cents / 1200.0)
    return f0


@lru_cache(maxsize=1)
def _mel_basis():
    basis = librosa.filters.mel(
        sr=SAMPLE_RATE, n_fft=_N_FFT, n_mels=_N_MELS, fmin=_FMIN, fmax=_FMAX, htk=True
    )
    return torch.from_numpy(basis).float()


def log_mel(audio):
    """[B, N] 16 kHz audio -> [B, 128, N // 160 + 1] log-mel frames, RMVPE's input."""
    spectrum = torch.stft(
        audio, _N_FFT, HOP_LENGTH, window=torch.hann_window(_N_FFT), center=True, return_complex=True
    )
    return torch.log(torch.clamp(_mel_basis() @ spectrum.abs(), min=1e-5))


class RMVPENet(nn.Module):
    """RVC's E2E(n_blocks=4, n_gru=1, kernel_size=(2, 2)): a U-Net over the log-mel image
    (time x 128 bands), 3 maps flattened per frame, a BiGRU and 360 sigmoid bin saliences."""

    def __init__(self, n_stages=5, n_middle=4, n_blocks=4, first_channels=16):
        super().__init__()
        self.unet = _DeepUnet(n_stages, n_middle, n_blocks, first_channels)
        self.cnn = nn.Conv2d(first_channels, 3, 3, padding=1)
        self.fc = nn.Sequential(_BiGRU(3 * _N_MELS, 256), nn.Linear(512, _BINS))

    def forward(self, mel):
        """[B, 128, T] with T a multiple of 32 -> [B, T, 360]."""
        x = self.cnn(self.unet(mel.transpose(1, 2).unsqueeze(1)))
        return torch.sigmoid(self.fc(x.transpose(1, 2).flatten(2)))


class _BiGRU(nn.Module):
    def __init__(self, n_inputs, n_hidden):
        super().__init__()
        self.gru = nn.GRU(n_inputs, n_hidden, batch_first=True, bidirectional=True)

    def forward(self, x):
        return self.gru(x)[0]


class _ResidualConv(nn.Module):
    """Two 3x3 conv-BN-ReLU layers plus the input (through a 1x1 conv when the width changes). The ReLUs
    and the sum work in place on fresh tensors: the full-resolution maps of 30 s are 26 MB each."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(n_in, n_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(n_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(n_out, n_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(n_out),
            nn.ReLU(inplace=True),
        )
        self.shortcut = nn.Conv2d(n_in, n_out, 1) if n_in != n_out else nn.Identity()

    def forward(self, x):
        return self.conv(x).add_(self.shortcut(x))


def _residual_stack(n_in, n_out, n_blocks):
    rest = [_ResidualConv(n_out, n_out) for _ in range(n_blocks - 1)]
    return nn.ModuleList([_ResidualConv(n_in, n_out)] + rest)


class _Stage(nn.Module):
    def __init__(self, n_in, n_out, n_blocks):
        super().__init__()
        self.conv = _residual_stack(n_in, n_out, n_blocks)

    def forward(self, x):
        for block in self.conv:
            x = block(x)
        return x


class _Encoder(nn.Module):
    def __init__(self, widths, n_blocks):
        super().__init__()
        self.bn = nn.BatchNorm2d(1)
        self.layers = nn.ModuleList(_Stage(a, b, n_blocks) for a, b in zip((1,) + widths[:-1], widths))

    def forward(self, x):
        """Returns the pooled bottom map and, per stage, the map before pooling (the skips)."""
        skips = []
        x = self.bn(x)
        for stage in self.layers:
            x = stage(x)
            skips.append(x)
            x = F.avg_pool2d(x, 2)
        return x, skips


class _Middle(nn.Module):
    def __init__(self, n_in, n_out, n_layers, n_blocks):
        super().__init__()
        ins = (n_in,) + (n_out,) * (n_layers - 1)
        self.layers = nn.ModuleList(_Stage(width_in, n_out, n_blocks) for width_in in ins)

    def forward(self, x):
        for stage in self.layers:
            x = stage(x)
        return x


class _UpStage(nn.Module):
    """Doubles time and frequency, then joins the encoder's skip of the same size."""

    def __init__(self, n_in, n_out, n_blocks):
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.ConvTranspose2d(n_in, n_out, 3, stride=2, padding=1, output_padding=1, bias=False),
            nn.BatchNorm2d(n_out),
            nn.ReLU(inplace=True),
        )
        self.conv2 = _residual_stack(2 * n_out, n_out, n_blocks)

    def forward(self, x, skip):
        x = torch.cat((self.conv1(x), skip), dim=1)
        for block in self.conv2:
            x = block(x)
        return x


class _Decoder(nn.Module):
    def __init__(self, widths, n_blocks):
        super().__init__()
        ins = (2 * widths[-1],) + widths[:0:-1]
        self.layers = nn.ModuleList(_UpStage(a, b, n_blocks) for a, b in zip(ins, widths[::-1]))

    def forward(self, x, skips):
        for stage, skip in zip(self.layers, reversed(skips)):
            x = stage(x, skip)
        return x


class _DeepUnet(nn.Module):
    def __init__(self, n_stages, n_middle, n_blocks, first_channels):
        super().__init__()
        widths = tuple(first_channels * 2**i for i in range(n_stages))  # 16, 32, 64, 128, 256
        self.encoder = _Encoder(widths, n_blocks)
        self.intermediate = _Middle(widths[-1], 2 * widths[-1], n_middle, n_blocks)
        self.decoder = _Decoder(widths, n_blocks)

    def forward(self, x):
        x, skips = self.encoder(x)
        return self.decoder(self.intermediate(x), skips)
