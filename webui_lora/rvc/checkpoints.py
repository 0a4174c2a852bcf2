"""Reading and writing RVC checkpoints: small inference models, G_/D_ training checkpoints, pretrained
bases, and Applio-style files with parametrized weight-norm keys.

Every file is opened with ``torch.load(weights_only=True)``, so a pickle that would run code is
refused, never executed. Metadata missing from a file (version, f0, sample rate, config) is read off
the tensor shapes; metadata that contradicts the shapes is an error, not a guess.
"""

from __future__ import annotations

import math
import os
import pickle
import re
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from lora_core.atomic import atomic_path

from ..errors import UserError

from .configs import LAYOUTS
from .models import build_discriminator, build_synthesizer, parse_sample_rate, sample_rate_tag
from .models.discriminator import PERIODS
from .models.synthesizer import CONFIG_FIELDS, CONTENT_CHANNELS

INFERENCE, TRAINING, PRETRAINED, STATE_DICT = "inference", "training", "pretrained", "state_dict"
LEGACY_KEYS, PARAMETRIZED_KEYS = "legacy", "parametrized"

_PARAMETRIZED_SUFFIXES = {
    ".parametrizations.weight.original0": ".weight_g",
    ".parametrizations.weight.original1": ".weight_v",
}
_SMALL_MODEL_FIELDS = ("weight", "config", "info", "sr", "f0", "version")

# RVC's shipped decoder layouts: (sample rate, upsample_rates, upsample_kernel_sizes, training segment in frames).
# 40k has one layout for v1 and v2; 32k and 48k differ between configs/v1 and configs/v2.
RVC_LAYOUTS = tuple((rate.sr, rate.upsample_rates, rate.upsample_kernel_sizes, rate.segment_frames)
                    for rate in LAYOUTS.values())
SMALL_MODEL_SEGMENT_SIZE = 32  # the placeholder RVC stores in every small model's config


class CheckpointError(UserError):
    """A checkpoint file cannot be used; the message names the file and what is wrong with it."""

    def __init__(self, path, problem: str):
        super().__init__(path, problem)
        self.path = self.subject


class UnreadableCheckpointError(CheckpointError):
    """Missing, empty, not a PyTorch checkpoint, or truncated/damaged."""


class UnsafeCheckpointError(CheckpointError):
    """The pickle references Python code or objects other than tensors and plain containers."""


class ArchitectureError(CheckpointError):
    """The tensors do not form an RVC model this package can build (or not the one expected)."""


class MetadataConflictError(CheckpointError):
    """The file's stored version / f0 / sample rate / config contradict each other or the tensor shapes."""


@dataclass
class RVCModel:
    """A loaded synthesizer and what is known about it.

    ``synthesizer`` has RVC's ``infer`` semantics and is in eval mode, float32, on the requested
    device; for inference files ``enc_q`` is removed. ``kind`` is one of "inference", "training",
    "pretrained", "state_dict"; ``weight_norm_keys`` records how the file stored weight norm
    ("legacy" or "parametrized"); ``extra`` holds the file's other top-level fields (e.g. Applio's
    ``embedder_model``, a training checkpoint's ``iteration``).
    """

    synthesizer: nn.Module
    version: str
    f0: bool
    sr: int
    config: list
    info: str
    kind: str
    path: str
    weight_norm_keys: str = LEGACY_KEYS
    extra: dict = field(default_factory=dict)

    @property
    def speakers(self) -> int:
        """Rows of the speaker table (RVC's loader sizes it from the file, not the config)."""
        return int(self.synthesizer.emb_g.weight.shape[0])


@dataclass
class RVCDiscriminator:
    """A loaded multi-period discriminator (eval mode) and its version and file kind."""

    discriminator: nn.Module
    version: str
    kind: str
    path: str
    weight_norm_keys: str = LEGACY_KEYS
    extra: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------- reading


def read_checkpoint(path):
    """``torch.load`` a file safely (weights only, on CPU), turning every failure into a CheckpointError."""
    path = os.fspath(path)
    _check_file_header(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only" not in str(error).lower():
            raise UnreadableCheckpointError(path, f"is truncated or damaged ({_first_line(error)})") from None
        found = re.search(r"GLOBAL ([\w.]+)|[Uu]nsupported class ([\w.]+)", str(error))
        what = (
            f"a reference to {found.group(found.lastindex)}"
            if found
            else "pickle instructions beyond tensors and plain containers"
        )
        raise UnsafeCheckpointError(
            path, f"contains {what}; refusing to load it, because unpickling it could run code"
        ) from None
    except Exception as error:  # torch reports damage as RuntimeError, EOFError, KeyError, ... depending on where
        raise UnreadableCheckpointError(path, f"is truncated or damaged ({_first_line(error)})") from None


def _check_file_header(path: str) -> None:
    """Reject what is plainly not a .pth before handing it to the unpickler."""
    if os.path.isdir(path):
        raise UnreadableCheckpointError(path, "is a folder, not a checkpoint file")
    if not os.path.isfile(path):
        raise UnreadableCheckpointError(path, "no such file")
    with open(path, "rb") as handle:
        head = handle.read(16)
    if not head:
        raise UnreadableCheckpointError(path, "is empty")
    if head.startswith(b"PK\x03\x04"):
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                if not any(name.endswith("data.pkl") for name in archive.namelist()):
                    raise UnreadableCheckpointError(
                        path, "is a zip archive, not a PyTorch checkpoint; unpack it and use the .pth inside"
                    )
        return  # a torch zip checkpoint (if its directory is missing, torch.load reports the truncation)
    if head[0] == 0x80:
        return  # a pickle: torch's legacy (pre-1.6) format
    if len(head) > 8 and head[8:9] == b"{":
        raise UnreadableCheckpointError(path, "is a safetensors file (an adapter?), not an RVC .pth checkpoint")
    raise UnreadableCheckpointError(path, "is not a PyTorch checkpoint")


def _first_line(error: BaseException) -> str:
    """The error's type and first sentence: torch's messages go on to paragraphs of advice."""
    text = str(error).strip().split("\n", 1)[0].split(". ", 1)[0].strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _split_checkpoint(path: str, ckpt) -> tuple:
    """-> (kind, state dict, metadata fields, extra fields)."""
    if not isinstance(ckpt, Mapping):
        raise ArchitectureError(path, f"holds a {type(ckpt).__name__}, not an RVC checkpoint dictionary")
    if isinstance(ckpt.get("weight"), Mapping):
        meta = {key: ckpt[key] for key in ("config", "info", "sr", "f0", "version") if key in ckpt}
        extra = {key: value for key, value in ckpt.items() if key not in _SMALL_MODEL_FIELDS}
        return INFERENCE, dict(ckpt["weight"]), meta, extra
    if isinstance(ckpt.get("model"), Mapping):
        kind = TRAINING if "optimizer" in ckpt else PRETRAINED
        extra = {key: value for key, value in ckpt.items() if key not in ("model", "optimizer")}
        return kind, dict(ckpt["model"]), {}, extra
    if ckpt and all(isinstance(value, torch.Tensor) for value in ckpt.values()) and _looks_like_rvc(ckpt):
        return STATE_DICT, dict(ckpt), {}, {}
    raise ArchitectureError(
        path,
        "is not an RVC checkpoint: expected a 'weight' entry (small model) or a 'model' entry "
        f"(training checkpoint or pretrained base), found {_preview(ckpt)}",
    )


def _looks_like_rvc(state: Mapping) -> bool:
    return any(key.startswith(("enc_p.", "dec.", "flow.", "discriminators.")) for key in state)


def _preview(keys, limit: int = 6) -> str:
    keys = [str(key) for key in keys]
    shown = ", ".join(keys[:limit])
    return f"{shown}, ... ({len(keys)} in all)" if len(keys) > limit else shown or "nothing"


def to_legacy_weight_norm(state: Mapping) -> tuple[dict, str]:
    """Rename parametrized weight-norm keys (``parametrizations.weight.original0/1``) to RVC's
    ``weight_g``/``weight_v``. Returns (state dict, "parametrized" or "legacy": what the input used)."""
    renamed, style = {}, LEGACY_KEYS
    for key, value in state.items():
        for suffix, legacy in _PARAMETRIZED_SUFFIXES.items():
            if key.endswith(suffix):
                key, style = key[: -len(suffix)] + legacy, PARAMETRIZED_KEYS
                break
        renamed[key] = value
    return renamed, style


def to_parametrized_weight_norm(state: Mapping) -> dict:
    """The inverse of :func:`to_legacy_weight_norm`: RVC's ``weight_g``/``weight_v`` as Applio names them."""
    legacy_to_new = {legacy: new for new, legacy in _PARAMETRIZED_SUFFIXES.items()}
    renamed = {}
    for key, value in state.items():
        for legacy, new in legacy_to_new.items():
            if key.endswith(legacy):
                key = key[: -len(legacy)] + new
                break
        renamed[key] = value
    return renamed


# --------------------------------------------------------------------------------- metadata from shapes


def _shape(state: Mapping, key: str, path: str) -> tuple:
    if key not in state:
        raise ArchitectureError(path, f"has no '{key}', which every RVC synthesizer has")
    return tuple(state[key].shape)


def _count(state: Mapping, prefix: str) -> int:
    """How many numbered children ``prefix.N.*`` the state dict has."""
    indices = {key[len(prefix) :].split(".", 1)[0] for key in state if key.startswith(prefix)}
    return len({int(index) for index in indices if index.isdigit()})


def _weight_shape(state: Mapping, prefix: str, path: str) -> tuple:
    """Shape of a layer's weight, whether stored plain or weight-normed."""
    for suffix in ("weight_v", "weight"):
        if prefix + suffix in state:
            return tuple(state[prefix + suffix].shape)
    raise ArchitectureError(path, f"has no weight for '{prefix[:-1]}', which every RVC synthesizer has")


def version_from_shapes(state: Mapping, path: str = "<state dict>") -> str:
    """v1 models embed 256-wide content features, v2 models 768-wide ones."""
    width = _shape(state, "enc_p.emb_phone.weight", path)[1]
    for version, channels in CONTENT_CHANNELS.items():
        if width == channels:
            return version
    raise ArchitectureError(path, f"embeds {width}-wide content features; RVC v1 uses 256 and v2 uses 768")


def _fields_from_shapes(state: Mapping, path: str) -> dict:
    """The config values that tensor shapes determine on their own, by config field name."""
    if "enc_p.emb_phone.weight" not in state:
        raise ArchitectureError(path, f"has none of the keys of an RVC synthesizer (found {_preview(state)})")
    hidden = _shape(state, "enc_p.emb_phone.weight", path)[0]
    filter_channels, _, kernel_size = _shape(state, "enc_p.encoder.ffn_layers.0.conv_1.weight", path)
    _, offsets, head_channels = _shape(state, "enc_p.encoder.attn_layers.0.emb_rel_k", path)
    if offsets != 21:
        raise ArchitectureError(path, f"has a relative-attention window of {offsets} offsets; RVC uses 21")
    spk_embed_dim, gin_channels = _shape(state, "emb_g.weight", path)
    n_ups = _count(state, "dec.ups.")
    n_kernels = _count(state, "dec.resblocks.") // max(n_ups, 1)
    if n_ups == 0 or n_kernels == 0:
        raise ArchitectureError(path, "has no decoder upsampling stages (dec.ups.*) or residual blocks")
    resblock = "1" if any(key.startswith("dec.resblocks.0.convs1.") for key in state) else "2"
    first_conv = "convs1.0." if resblock == "1" else "convs."
    fields = {
        "inter_channels": _shape(state, "enc_p.proj.weight", path)[0] // 2,
        "hidden_channels": hidden,
        "filter_channels": filter_channels,
        "n_heads": hidden // head_channels,
        "n_layers": _count(state, "enc_p.encoder.attn_layers."),
        "kernel_size": kernel_size,
        "resblock": resblock,
        "resblock_kernel_sizes": [
            _weight_shape(state, f"dec.resblocks.{j}.{first_conv}", path)[2] for j in range(n_kernels)
        ],
        "upsample_initial_channel": _shape(state, "dec.conv_pre.weight", path)[0],
        "upsample_kernel_sizes": [_weight_shape(state, f"dec.ups.{i}.", path)[2] for i in range(n_ups)],
        "spk_embed_dim": spk_embed_dim,
        "gin_channels": gin_channels,
    }
    if "enc_q.pre.weight" in state:
        fields["spec_channels"] = _shape(state, "enc_q.pre.weight", path)[1]
    return fields


def infer_config(state: Mapping, sr=None, kind: str = INFERENCE, path: str = "<state dict>") -> list:
    """Rebuild RVC's 18-value config from a synthesizer state dict (legacy weight-norm keys).

    The sample rate is read from ``sr`` when given, otherwise from the decoder layout, which fixes
    it except for a no-f0 small model in the 5-stage layout shared by v1 32k and v1 48k. Dilations
    do not show in shapes; RVC's own ([1, 3, 5] per kernel) are assumed.
    """
    fields = _fields_from_shapes(state, path)
    rate, rates, segment = _decoder_layout(state, tuple(fields["upsample_kernel_sizes"]), sr, path)
    n_kernels = len(fields["resblock_kernel_sizes"])
    fields.setdefault("spec_channels", _spec_channels(rate))
    fields["segment_size"] = SMALL_MODEL_SEGMENT_SIZE if kind == INFERENCE else segment
    fields["p_dropout"] = 0
    fields["resblock_dilation_sizes"] = [[1, 3, 5] if fields["resblock"] == "1" else [1, 3] for _ in range(n_kernels)]
    fields["upsample_rates"] = list(rates)
    fields["sr"] = rate
    return [fields[name] for name in CONFIG_FIELDS]


def _spec_channels(rate: int) -> int:
    """Linear-spectrogram bins of RVC's STFT at ``rate`` (the same in v1 and v2 configs)."""
    return next(layout.spec_channels for layout in LAYOUTS.values() if layout.sr == rate)


def _check_config_against_shapes(path: str, state: Mapping, config: list) -> None:
    """A stored config must describe the tensors stored beside it (the speaker count excepted, as in RVC)."""
    for name, actual in _fields_from_shapes(state, path).items():
        stated = _plain(config[CONFIG_FIELDS.index(name)])
        if name == "resblock":
            stated = str(stated)
        if name != "spk_embed_dim" and stated != actual:
            raise MetadataConflictError(path, f"its config says {name} = {stated!r}, but its weights have {actual!r}")


def _decoder_layout(state: Mapping, up_kernels: tuple, sr, path: str) -> tuple:
    """-> (sample rate, upsample_rates, training segment) of the one RVC layout the shapes allow."""
    n_noise = _count(state, "dec.noise_convs.")
    noise_kernels = [_shape(state, f"dec.noise_convs.{i}.weight", path)[2] for i in range(n_noise)]
    spec = tuple(state["enc_q.pre.weight"].shape)[1] if "enc_q.pre.weight" in state else None

    def fits(rate, rates, kernels):
        if kernels != up_kernels or (sr is not None and rate != sr):
            return False
        if spec is not None and spec != _spec_channels(rate):
            return False
        expected_noise = [2 * math.prod(rates[i + 1 :]) for i in range(len(rates) - 1)] + [1]
        return not noise_kernels or noise_kernels == expected_noise

    matches = {(rate, rates, segment) for rate, rates, kernels, segment in RVC_LAYOUTS if fits(rate, rates, kernels)}
    if len(matches) == 1:
        return matches.pop()
    if not matches:
        raise ArchitectureError(
            path,
            f"has a decoder layout (upsample kernels {list(up_kernels)}"
            + (f", sample rate {sr}" if sr is not None else "")
            + ") that is none of RVC's configs, and the file stores no config to build it from",
        )
    rates_found = " and ".join(str(rate) for rate in sorted({match[0] for match in matches}))
    raise CheckpointError(
        path, f"stores no sample rate, and its decoder layout fits {rates_found} Hz alike; pass sample_rate= to choose"
    )


def _stored_flag(value, path: str) -> bool:
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return value.strip() == "1"
    raise MetadataConflictError(path, f"has f0 = {value!r}; expected 0 or 1")


def _resolve_metadata(path: str, state: Mapping, meta: Mapping, kind: str, sample_rate) -> tuple:
    """-> (version, f0, config, sr) from the stored fields, checked against each other and the shapes."""
    version = version_from_shapes(state, path)
    if "version" in meta and meta["version"] != version:
        raise MetadataConflictError(
            path,
            f"says version {meta['version']!r} but its content embedding is {version}-sized "
            f"({CONTENT_CHANNELS[version]} wide)",
        )
    f0 = "enc_p.emb_pitch.weight" in state
    if "f0" in meta and _stored_flag(meta["f0"], path) != f0:
        raise MetadataConflictError(
            path,
            f"says f0 = {meta['f0']!r} but its weights {'have a' if f0 else 'have no'} pitch embedding "
            "(enc_p.emb_pitch)",
        )
    config = meta.get("config")
    if config is not None and (not isinstance(config, (list, tuple)) or len(config) != len(CONFIG_FIELDS)):
        raise MetadataConflictError(path, f"has a config that is not RVC's {len(CONFIG_FIELDS)}-value list: {config!r}")
    rates = {}
    claims = (
        ("its 'sr'", meta.get("sr")),
        ("its config", config[-1] if config else None),
        ("sample_rate=", sample_rate),
    )
    for source, value in claims:
        if value is not None:
            try:
                rates[source] = parse_sample_rate(value)
            except (ValueError, TypeError):
                raise MetadataConflictError(path, f"{source} holds {value!r}, which is not a sample rate") from None
    if len(set(rates.values())) > 1:
        listing = ", ".join(f"{source} says {rate}" for source, rate in rates.items())
        raise MetadataConflictError(path, f"disagrees on the sample rate: {listing}")
    rate = next(iter(rates.values()), None)

    if config is None:
        config = infer_config(state, rate, kind, path)
    else:
        if rate is None:
            raise MetadataConflictError(path, "has a config without a sample rate")
        config = list(config)
        config[-1] = rate
        _check_config_against_shapes(path, state, config)
        config[15] = int(state["emb_g.weight"].shape[0])  # RVC's loader trusts the table, not the config
    return version, f0, config, config[-1]


# ----------------------------------------------------------------------------------------------- loading


def expected_shapes(config, version: str, f0, *, inference: bool = True) -> dict:
    """Key -> shape of the synthesizer RVC would build from ``config`` (computed without allocating)."""
    with torch.device("meta"):
        model = build_synthesizer(config, version, f0, inference=inference)
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def _require_exact_fit(path, state: Mapping, shapes: Mapping, error_class, what: str) -> None:
    missing = [key for key in shapes if key not in state]
    unexpected = [key for key in state if key not in shapes]
    wrong = [
        f"{key} is {list(state[key].shape)}, expected {list(shape)}"
        for key, shape in shapes.items()
        if key in state and tuple(state[key].shape) != shape
    ]
    problems = []
    if missing:
        problems.append(f"{_count_of(missing, 'key')} missing ({_preview(missing, 4)})")
    if unexpected:
        problems.append(f"{_count_of(unexpected, 'unexpected key')} ({_preview(unexpected, 4)})")
    if wrong:
        problems.append(f"{_count_of(wrong, 'tensor')} of the wrong shape ({'; '.join(wrong[:3])})")
    if problems:
        raise error_class(path, f"{what}: " + ", ".join(problems))


def _count_of(items, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def load_model(path, device="cpu", *, sample_rate=None) -> RVCModel:
    """Load any RVC generator file: small inference model (fp16 or fp32), G_*.pth, a pretrained base
    (f0G40k.pth and kin), or an Applio-style file, into a ready synthesizer.

    ``sample_rate`` is needed only for a file that stores no rate and whose layout is ambiguous.
    """
    path = os.fspath(path)
    kind, state, meta, extra = _split_checkpoint(path, read_checkpoint(path))
    state, style = to_legacy_weight_norm(state)
    if any(key.startswith("discriminators.") for key in state):
        raise ArchitectureError(path, "is a discriminator checkpoint (D_*.pth), not a voice model; pick the "
                                      "generator (G_*.pth) or the small model from assets/weights")
    if not _looks_like_rvc(state):
        raise ArchitectureError(path, f"holds no RVC synthesizer weights (found {_preview(state)})")
    vocoder = extra.get("vocoder")
    if vocoder not in (None, "HiFi-GAN"):
        raise ArchitectureError(
            path, f"uses Applio's {vocoder!r} vocoder; only RVC's HiFi-GAN (NSF) decoder is supported"
        )
    bad = [key for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if bad:
        raise ArchitectureError(path, f"has non-tensor weights ({_preview(bad, 4)})")
    if kind == INFERENCE:
        state = {key: value for key, value in state.items() if "enc_q" not in key}
    with_posterior = any(key.startswith("enc_q.") for key in state)

    version, f0, config, rate = _resolve_metadata(path, state, meta, kind, sample_rate)
    synthesizer = build_synthesizer(config, version, f0, inference=not with_posterior)
    shapes = {key: tuple(value.shape) for key, value in synthesizer.state_dict().items()}
    source = "its config" if "config" in meta else "their shapes"
    what = f"its weights do not fit the {version} {'f0' if f0 else 'no-f0'} synthesizer built from {source}"
    _require_exact_fit(path, state, shapes, ArchitectureError, what)
    synthesizer.load_state_dict(state, strict=True)
    synthesizer.eval().float().to(device)
    return RVCModel(
        synthesizer=synthesizer,
        version=version,
        f0=f0,
        sr=rate,
        config=config,
        info=str(meta.get("info", "")),
        kind=kind,
        path=path,
        weight_norm_keys=style,
        extra=extra,
    )


def load_discriminator(path, device="cpu") -> RVCDiscriminator:
    """Load a D_*.pth training checkpoint or a pretrained f0D40k.pth-style base (``model`` entry)."""
    path = os.fspath(path)
    kind, state, _, extra = _split_checkpoint(path, read_checkpoint(path))
    state, style = to_legacy_weight_norm(state)
    count = _count(state, "discriminators.")
    versions = {len(periods) + 1: version for version, periods in PERIODS.items()}
    if count not in versions:
        what = "a generator" if "enc_p.emb_phone.weight" in state else f"{count} discriminators"
        raise ArchitectureError(path, f"holds {what}; an RVC discriminator file has 7 (v1) or 9 (v2)")
    version = versions[count]
    discriminator = build_discriminator(version)
    shapes = {key: tuple(value.shape) for key, value in discriminator.state_dict().items()}
    _require_exact_fit(path, state, shapes, ArchitectureError, f"its weights do not fit RVC's {version} discriminator")
    discriminator.load_state_dict(state, strict=True)
    discriminator.eval().float().to(device)
    return RVCDiscriminator(discriminator, version, kind, path, style, extra)


# ------------------------------------------------------------------------------------------------ saving


def save_small_model(path, weights, config, *, version: str, f0, info: str = "", sr=None,
                     weight_norm_keys: str = LEGACY_KEYS) -> str:
    """Write a small inference model exactly as RVC does, atomically; returns the path.

    ``weights`` is a synthesizer or its state dict; ``enc_q`` keys are dropped and parametrized
    weight-norm keys renamed to RVC's, then the key set and shapes must match the model RVC builds
    from ``config`` exactly, or nothing is written. Tensors are stored fp16; ``sr`` (default:
    ``config[17]``) is stored as "40k"-style text and ``f0`` as 0/1. ``weight_norm_keys="parametrized"``
    stores weight norm under Applio's ``parametrizations.weight.original0/1`` names instead of RVC's.
    """
    path = os.fspath(path)
    state = weights.state_dict() if isinstance(weights, nn.Module) else dict(weights)
    state, _ = to_legacy_weight_norm(state)
    state = {key: value for key, value in state.items() if "enc_q" not in key}
    config = _plain(list(config))
    if len(config) != len(CONFIG_FIELDS):
        raise ValueError(f"an RVC config has {len(CONFIG_FIELDS)} values, got {len(config)}")
    rate = parse_sample_rate(config[-1])
    if sr is not None and parse_sample_rate(sr) != rate:
        raise MetadataConflictError(path, f"sr={sr!r} contradicts the config's sample rate {rate}")
    config[-1] = rate
    if "emb_g.weight" in state:
        config[15] = int(state["emb_g.weight"].shape[0])
    if version not in CONTENT_CHANNELS:
        raise ValueError(f"unknown RVC version {version!r} (expected 'v1' or 'v2')")
    if "enc_p.emb_phone.weight" in state and version_from_shapes(state, path) != version:
        raise MetadataConflictError(path, f"version={version!r} contradicts the weights' content width")
    if ("enc_p.emb_pitch.weight" in state) != bool(f0):
        pitch = "have a pitch embedding" if not f0 else "have no pitch embedding"
        raise MetadataConflictError(path, f"f0={f0!r} contradicts the weights, which {pitch}")
    shapes = expected_shapes(config, version, f0, inference=True)
    what = (
        "nothing written: the weights do not match the model RVC builds from this config "
        "(RVC's loader would silently skip the difference)"
    )
    _require_exact_fit(path, state, shapes, ArchitectureError, what)

    checkpoint = OrderedDict()
    if weight_norm_keys not in (LEGACY_KEYS, PARAMETRIZED_KEYS):
        raise ValueError(f"weight_norm_keys must be {LEGACY_KEYS!r} or {PARAMETRIZED_KEYS!r}")
    if weight_norm_keys == PARAMETRIZED_KEYS:
        state = to_parametrized_weight_norm(state)
    checkpoint["weight"] = {key: value.detach().to("cpu", torch.float16).contiguous() for key, value in state.items()}
    checkpoint["config"] = config
    checkpoint["info"] = str(info)
    checkpoint["sr"] = sample_rate_tag(rate)
    checkpoint["f0"] = int(bool(f0))
    checkpoint["version"] = version
    atomic_torch_save(checkpoint, path)
    return path


def _plain(value):
    """Config values as RVC's JSON gives them: lists, not tuples; Python numbers, not numpy/tensors."""
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, str):
        return value.item()
    return value


def inference_fingerprint(synthesizer: nn.Module) -> str:
    """The base fingerprint adapters record and are checked against: the synthesizer's weights without
    ``enc_q``, which conversion never uses (so a G_*.pth and its adapters agree with or without it)."""
    from lora_core import base_fingerprint

    state = {k: v for k, v in synthesizer.state_dict().items() if not k.startswith("enc_q.")}
    return base_fingerprint(state)


def atomic_torch_save(obj, path) -> None:
    """``torch.save`` that never leaves a half-written checkpoint under the real name."""
    with atomic_path(path) as temporary:
        torch.save(obj, temporary)