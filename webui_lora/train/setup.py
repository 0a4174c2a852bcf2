"""What a training run trains: the base synthesizer with its posterior encoder ``enc_q`` (which small
models lack), LoRA adapters on the chosen layers (or every weight in full mode), the discriminator, and
the base facts an adapter records (fingerprint, version, rate, f0).

``enc_q`` comes from ``--pretrained-g`` when given, else from the base when it has one (a G_*.pth or a
pretrained base), else it starts fresh; it is trained fully and never saved in the adapter. The
discriminator comes from ``--pretrained-d`` or starts fresh, and is trained fully (``full``), through
its own LoRA (``lora``), not at all (``frozen``), or left out with the adversarial losses (``off``,
the earlier RVC-LoRA's mel-only training, kept for comparison).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from lora_core import LoRAConfig, inject_lora, mark_only_lora_trainable

from ..errors import UserError
from ..rvc.checkpoints import RVCModel, inference_fingerprint, load_discriminator, load_model
from ..rvc.configs import layout, synthesizer_config
from ..rvc.models import build_discriminator, build_synthesizer, parse_sample_rate

ADAPTER = "default"
D_MODES = ("full", "lora", "frozen", "off")
MODES = ("lora", "full")
_DECODER = ["dec.ups", "dec.resblocks", "dec.conv_pre", "dec.cond", "dec.conv_post"]
PRESETS = {
    "dec-ups": (["dec.ups"], "the decoder's upsamplers only: the smallest adapter"),
    "dec": (_DECODER, "the whole decoder (vocoder): timbre and texture"),
    "dec+flow": (_DECODER + ["flow"], "decoder and flow: timbre plus how content maps to it"),
    "all": (_DECODER + ["flow", "enc_p"], "decoder, flow and the content encoder: the most capacity"),
}
DEFAULT_PRESET = "dec+flow"
NEW_BASE = re.compile(r"new:(v[12])-(32k|40k|48k)-(f0|nof0)")


@dataclass
class Generator:
    """The training synthesizer (with enc_q) and the facts of the base it came from."""

    net: nn.Module
    version: str
    sr: int
    f0: bool
    config: list  # RVC's 18 values, segment_size set to the training window
    fingerprint: str  # of the inference weights, as the converter computes it for the base file
    base: str  # the file (or new:...) it came from
    enc_q_from: str  # "pretrained G", "base" or "fresh"
    speakers: int = 0

    def describe(self) -> str:
        return f"{self.version} {self.sr // 1000}k {'f0' if self.f0 else 'no-f0'}"


def load_generator(base: str, pretrained_g: Optional[str] = None) -> Generator:
    """The base as a training synthesizer: a small .pth, a G_*.pth, a pretrained base, or ``new:v2-40k-f0``."""
    fresh = NEW_BASE.fullmatch(str(base))
    if fresh:
        version, sr, f0 = fresh.group(1), parse_sample_rate(fresh.group(2)), fresh.group(3) == "f0"
        net = build_synthesizer(synthesizer_config(version, sr), version, f0)
        base_state, source = None, None
    else:
        refuse_non_models(Path(base))
        source = load_model(base)
        version, sr, f0 = source.version, source.sr, source.f0
        base_state = source.synthesizer.state_dict()
        config = list(source.config)
        config[1] = _segment_frames(version, sr, base)
        net = build_synthesizer(config, version, f0)
        _load_matching(net, base_state, base)
    enc_q_from = "base" if base_state and any(k.startswith("enc_q.") for k in base_state) else "fresh"
    if pretrained_g:
        _load_posterior(net, pretrained_g, version, sr, f0)
        enc_q_from = "pretrained G"
    return Generator(net, version, sr, f0, list(net.config), inference_fingerprint(net), str(base), enc_q_from,
                     int(net.emb_g.weight.shape[0]))


def refuse_non_models(path: Path) -> None:
    """Name the files people pick by mistake before the checkpoint reader does."""
    if path.suffix == ".index":
        raise UserError(path, "is a feature index, not a model; give the RVC model (.pth) the index belongs to")
    if path.suffix == ".safetensors":
        raise UserError(path, "is an adapter, not a base model; give the RVC model (.pth) to train on")
    if path.is_dir():
        raise UserError(path, "is a folder (a HuBERT folder?), not an RVC model file (.pth)")
    if path.suffix == ".pt":
        raise UserError(path, "is a .pt checkpoint (HuBERT or RMVPE), not an RVC model (.pth); HuBERT goes to "
                              "--hubert")


def _segment_frames(version: str, sr: int, path) -> int:
    try:
        return layout(version, sr).segment_frames
    except ValueError as err:
        raise UserError(path, f"{err}; RVC trains only at 32k, 40k and 48k") from None


def _load_matching(net: nn.Module, state: dict, path) -> None:
    missing = [k for k in net.state_dict() if k not in state and not k.startswith("enc_q.")]
    if missing:
        raise UserError(path, f"lacks {len(missing)} synthesizer weights (e.g. {missing[0]}); is it an RVC model?")
    net.load_state_dict({k: v for k, v in state.items()}, strict=False)


def _load_posterior(net: nn.Module, path, version: str, sr: int, f0: bool) -> None:
    model: RVCModel = load_model(path)
    if (model.version, model.sr, model.f0) != (version, sr, f0):
        raise UserError(path, f"is a {model.version} {model.sr // 1000}k {'f0' if model.f0 else 'no-f0'} model, "
                              f"but the base is {version} {sr // 1000}k {'f0' if f0 else 'no-f0'}; give the "
                              "pretrained G of the same version, rate and pitch (e.g. pretrained_v2/f0G40k.pth)")
    state = {k: v for k, v in model.synthesizer.state_dict().items() if k.startswith("enc_q.")}
    if not state:
        raise UserError(path, "has no posterior encoder (enc_q): a small inference model; give a G_*.pth or a "
                              "pretrained base such as f0G40k.pth")
    net.load_state_dict(state, strict=False)


def load_discriminator_for(version: str, pretrained_d: Optional[str]) -> nn.Module:
    if not pretrained_d:
        return build_discriminator(version)
    loaded = load_discriminator(pretrained_d)
    if loaded.version != version:
        raise UserError(pretrained_d, f"is a {loaded.version} discriminator; a {version} model needs a {version} one "
                                      f"(pretrained{'_v2' if version == 'v2' else ''}/f0D40k.pth style)")
    return loaded.discriminator


@dataclass
class AdapterSpec:
    """Which layers get LoRA and how: a preset or explicit patterns, rank, alpha, per-pattern ranks."""

    preset: Optional[str] = DEFAULT_PRESET
    targets: Optional[list] = None
    rank: int = 8
    alpha: Optional[float] = None  # default: the rank (scaling 1)
    rslora: bool = False
    rank_pattern: dict = field(default_factory=dict)
    train_speaker: bool = False  # also learn the dataset speaker's row of the speaker table

    def lora_config(self) -> LoRAConfig:
        if self.targets:
            targets = list(self.targets)
        elif self.preset in PRESETS:
            targets = PRESETS[self.preset][0]
        else:
            raise UserError(f"preset {self.preset!r}", f"expected one of {', '.join(PRESETS)}, or give --targets")
        return LoRAConfig(r=self.rank, lora_alpha=float(self.alpha if self.alpha is not None else self.rank),
                          target_modules=targets, rank_pattern=dict(self.rank_pattern), use_rslora=self.rslora)


def add_adapter(net: nn.Module, spec: AdapterSpec, speaker: int = 0) -> int:
    """LoRA on the chosen layers (and ``speaker``'s row), everything else but enc_q frozen; returns the
    adapter's parameter count."""
    config = spec.lora_config()
    try:
        inject_lora(net, config, ADAPTER)
    except ValueError as err:
        raise UserError("--targets", str(err)) from None
    if spec.train_speaker:
        _add_speaker_row(net, speaker)
    count = mark_only_lora_trainable(net)
    for param in net.enc_q.parameters():
        param.requires_grad_(True)
    for layer in net.modules():
        if getattr(layer, "speaker_row_only", False):
            layer.lora_A[ADAPTER].requires_grad_(False)
            count -= layer.lora_A[ADAPTER].numel()
    return count


def _add_speaker_row(net: nn.Module, speaker: int) -> None:
    """One speaker's 256-float vector as a rank-1 LoRA on the speaker table: A is the fixed one-hot row
    selector, B the learned vector, so the file format and the exact merge stay those of any adapter."""
    rows = net.emb_g.weight.shape[0]
    if not 0 <= speaker < rows:
        raise UserError(f"speaker id {speaker}", f"the model has speakers 0..{rows - 1}; prepare the dataset with "
                                                 "--speaker-id in that range")
    inject_lora(net, LoRAConfig(r=1, lora_alpha=1.0, target_modules=["emb_g"]), ADAPTER)
    layer = net.emb_g
    with torch.no_grad():
        layer.lora_A[ADAPTER].zero_()
        layer.lora_A[ADAPTER][0, speaker] = 1.0
    layer.speaker_row_only = True


def full_mode(net: nn.Module) -> int:
    """Every generator weight trainable (RVC's own fine-tuning); returns the inference part's count."""
    for param in net.parameters():
        param.requires_grad_(True)
    return sum(p.numel() for n, p in net.named_parameters() if not n.startswith("enc_q."))


def adapter_bytes(count: int) -> int:
    """The .safetensors size of ``count`` float32 factors, header aside."""
    return 4 * count
