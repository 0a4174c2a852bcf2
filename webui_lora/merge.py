"""Adapters and models as files: bake a stack into a stock RVC model, combine adapters, extract one from
a fine-tuned voice, resize one, blend two models. The algebra is ``lora_core``'s; this module opens
real RVC files, checks that they belong together, writes the result atomically (never over an input)
and says in a report what was kept. The ``merge*``/``extract``/``resize``/``blend`` commands and the
Merge tab call these functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from lora_core import (AdapterMismatchError, apply_adapter, combine_adapters, extract_adapter, merge_and_unload,
                       read_adapter, resize_adapter, retained_energy, write_adapter)
from lora_core.weights import effective_weight, load_weight_values, stored_values_for, weight_tensors

from .errors import UserError, check_new_output
from .rvc.checkpoints import (LEGACY_KEYS, SMALL_MODEL_SEGMENT_SIZE, RVCModel, inference_fingerprint, load_model,
                              save_small_model)
from .rvc.models.synthesizer import CONFIG_FIELDS

# How ``merge-adapters`` names lora_core's methods.
COMBINE_METHODS = {"cat": "cat", "svd": "svd", "ties": "ties", "dare": "dare_linear", "dare-ties": "dare_ties"}
STYLES = (LEGACY_KEYS, "parametrized")

Progress = Optional[Callable[[int, int, str], None]]


@dataclass
class MergeResult:
    """What an operation wrote and the report that says what it kept."""

    output: Path
    lines: list = field(default_factory=list)
    index: Optional[Path] = None
    energy: dict = field(default_factory=dict)  # module -> retained energy share, where there is a loss
    base: Optional[Path] = None  # extract: the base the adapter is for (the closest of those given)

    def report(self) -> str:
        return "\n".join([f"wrote {self.output} ({self.output.stat().st_size / 1e6:.2f} MB)", *self.lines]
                         + ([f"index: {self.index}"] if self.index else []))


# ----- bake -----------------------------------------------------------------------------------------
def bake(base, adapters: Sequence, out, *, style: str = LEGACY_KEYS, info: Optional[str] = None,
         indices: Sequence = (), index_out=None, progress: Progress = None) -> MergeResult:
    """Fold ``adapters`` [(path, strength), ...] into the model ``base`` and write a small RVC model:
    fp16, RVC's exact keys and fields, weight norm as RVC (``legacy``) or Applio (``parametrized``) names
    it. With ``index_out``, the ``indices`` (the adapters' own) are merged into one index there."""
    if style not in STYLES:
        raise UserError(f"style {style!r}", f"expected one of {', '.join(STYLES)}")
    out = Path(out)
    check_new_output(out, ".pth", [base, *(path for path, _ in adapters), *indices], "an RVC model")
    if index_out is not None:
        check_new_output(index_out, ".index", [*indices], "a feature index")
    model = _load_voice(base)
    net = model.synthesizer
    names, notes, fingerprint = [], [], None
    for number, (path, strength) in enumerate(adapters, 1):
        adapter = read_adapter(path)
        _check_adapter_for(adapter, model)
        if adapter.base_fingerprint:
            fingerprint = fingerprint or inference_fingerprint(net)
            if adapter.base_fingerprint != fingerprint:
                notes.append(f"note: {Path(path).name} was trained on another base model; shapes fit")
        apply_adapter(net, adapter, f"adapter{number}", float(strength))
        names.append(f"{Path(path).name} x{float(strength):g}")
        if progress:
            progress(number, len(adapters) + 1, f"added {Path(path).name}")
    merge_and_unload(net)
    config = list(model.config)
    config[CONFIG_FIELDS.index("segment_size")] = SMALL_MODEL_SEGMENT_SIZE
    stack = ", ".join(names) or "no adapters"
    save_small_model(out, net, config, version=model.version, f0=model.f0, weight_norm_keys=style,
                     info=info if info is not None else f"{Path(base).name} + {stack}")
    result = MergeResult(out, [f"baked {stack} into {Path(base).name} ({model.version}, {model.sr} Hz, "
                               f"{'f0' if model.f0 else 'no-f0'}; {style} weight-norm keys)", *notes])
    if index_out is not None:
        result.index = merge_indices(indices, index_out, 256 if model.version == "v1" else 768)
    if progress:
        progress(len(adapters) + 1, len(adapters) + 1, "written")
    return result


def merge_indices(paths: Sequence, out, dim: int) -> Path:
    """One RVC index over the vectors of several (the adapters' training sets together)."""
    from .rvc.index import FeatureIndex, build_index, training_vectors

    if not paths:
        raise UserError(Path(out), "no index to merge: none of the adapters has an index beside it; "
                                   "leave out the index output or name the indices")
    loaded = [FeatureIndex.load(path) for path in paths]
    for index in loaded:
        index.check_dim(dim)
    vectors = np.concatenate([index.vectors for index in loaded])
    return build_index(training_vectors(vectors), out).path


# ----- combine and resize ---------------------------------------------------------------------------
def combine(adapters: Sequence, out, *, method: str = "cat", rank: Optional[int] = None,
            energy: Optional[float] = None, density: float = 0.5, seed: int = 0) -> MergeResult:
    """Combine adapters [(path, strength), ...] of one base into one adapter: ``cat`` is exact (the ranks
    add up); ``svd``, ``ties``, ``dare`` and ``dare-ties`` re-factor to ``rank`` / ``energy``."""
    if method not in COMBINE_METHODS:
        raise UserError(f"method {method!r}", f"expected one of {', '.join(COMBINE_METHODS)}")
    if len(adapters) < 2:
        raise UserError("one adapter given", "combining needs two or more adapters (resize re-factors one)")
    out = Path(out)
    check_new_output(out, ".safetensors", [path for path, _ in adapters], "an adapter")
    loaded = [read_adapter(path) for path, _ in adapters]
    _check_same_base(loaded)
    weights = [float(strength) for _, strength in adapters]
    combined = combine_adapters(loaded, weights, COMBINE_METHODS[method], rank, energy, density, seed=seed)
    result = MergeResult(out, [f"combined {', '.join(f'{a.source.name} x{w:g}' for a, w in zip(loaded, weights))} "
                               f"by {method}"])
    for name, module in combined.modules.items():
        exact = sum(w * a.modules[name].grouped_delta() for a, w in zip(loaded, weights) if name in a.modules)
        result.energy[name] = retained_energy(module.grouped_delta(), exact)
    combined.extra.update(combined_from=[a.source.name for a in loaded])
    write_adapter(combined, out)
    result.lines += energy_lines(result.energy, combined)
    return result


def resize(adapter_path, out, *, rank: Optional[int] = None, energy: Optional[float] = None) -> MergeResult:
    """The adapter at a lower rank (or the smallest rank keeping ``energy`` per layer); the delta is
    stored with scaling 1, so strength 1 still means the adapter as trained."""
    if rank is None and energy is None:
        raise UserError("no target size", "give --rank R or --energy E (e.g. 0.9)")
    out = Path(out)
    check_new_output(out, ".safetensors", [adapter_path], "an adapter")
    adapter = read_adapter(adapter_path)
    resized = resize_adapter(adapter, rank, energy)
    result = MergeResult(out, [f"resized {Path(adapter_path).name} from rank "
                               f"{_ranks(adapter)} to {_ranks(resized)}"])
    for name, module in resized.modules.items():
        result.energy[name] = retained_energy(module.grouped_delta(), adapter.modules[name].grouped_delta())
    resized.extra.update(resized_from=Path(adapter_path).name)
    write_adapter(resized, out)
    result.lines += energy_lines(result.energy, resized, adapter)
    return result


# ----- extract --------------------------------------------------------------------------------------
def extract(bases: Sequence, tuned, out, *, rank: Optional[int] = None, energy: Optional[float] = None,
            min_change: float = 1e-3, progress: Progress = None) -> MergeResult:
    """An adapter that turns a base into the fine-tuned voice ``tuned``: truncated SVD of each layer's
    effective-weight change. With several ``bases`` the closest of those that fit is used (and reported).
    Layers that changed by less than ``min_change`` of their norm (fp16 rounding) are left out."""
    if rank is None and energy is None:
        raise UserError("no target size", "give --rank R or --energy E (e.g. 0.9)")
    if not bases:
        raise UserError("no base model", "give --base: the model the voice was fine-tuned from")
    out = Path(out)
    check_new_output(out, ".safetensors", [*bases, tuned], "an adapter")
    voice = _load_voice(tuned)
    base, lines = _closest_base(bases, voice)
    tuned_state = voice.synthesizer.state_dict()
    net = base.synthesizer
    adapter = extract_adapter(net, tuned_state, rank, energy, min_change=min_change,
                              progress=None if progress is None else
                              lambda done, total, name: progress(done, total, f"layer {name}"))
    if not adapter.modules:
        raise UserError(tuned, f"does not differ from {Path(base.path).name} in any layer an adapter can hold")
    adapter.base_fingerprint = inference_fingerprint(net)
    adapter.extra.update(version=base.version, sr=base.sr, f0=base.f0, base=Path(base.path).name,
                         extracted_from=Path(tuned).name)
    result = MergeResult(out, lines, base=Path(base.path))
    for name, module in adapter.modules.items():
        exact = (_effective(voice.synthesizer, name) - _effective(net, name)).reshape(module.grouped_delta().shape)
        result.energy[name] = retained_energy(module.grouped_delta(), exact)
    write_adapter(adapter, out)
    size = Path(tuned).stat().st_size
    result.lines += [f"{len(adapter.modules)} layers changed; {adapter.num_parameters():,} adapter parameters, "
                     f"{out.stat().st_size / 1e6:.2f} MB vs {size / 1e6:.2f} MB for the voice "
                     f"({out.stat().st_size / size:.1%})",
                     *_uncaptured(net, tuned_state), *energy_lines(result.energy, adapter)]
    return result


def _closest_base(bases: Sequence, voice: RVCModel) -> tuple:
    """The candidate base nearest the voice (mean relative weight distance), and report lines."""
    fitting, lines = [], []
    for path in bases:
        candidate = _load_voice(path)
        difference = architecture_difference(candidate, voice)
        if difference:
            lines.append(f"{Path(path).name}: skipped, {difference}")
            continue
        fitting.append((_distance(candidate.synthesizer, voice.synthesizer), candidate))
    if not fitting:
        raise UserError(voice.path, "fits none of the bases given: " + "; ".join(lines))
    fitting.sort(key=lambda item: item[0])
    if len(bases) > 1:
        lines += [f"{Path(c.path).name}: distance {d:.4f}" for d, c in fitting]
    lines.append(f"base: {Path(fitting[0][1].path).name}")
    return fitting[0][1], lines


def _distance(base: torch.nn.Module, voice: torch.nn.Module) -> float:
    """Mean over layers of |W_voice - W_base| / |W_base| on effective weights."""
    voice_modules = dict(voice.named_modules())
    ratios = []
    for name, module in base.named_modules():
        if hasattr(module, "weight") and isinstance(getattr(module, "weight", None), torch.Tensor):
            w_base = effective_weight(module).detach().float()
            w_voice = effective_weight(voice_modules[name]).detach().float()
            ratios.append(float((w_voice - w_base).norm() / w_base.norm().clamp_min(1e-12)))
    return float(np.mean(ratios))


def _effective(net: torch.nn.Module, name: str) -> torch.Tensor:
    return effective_weight(net.get_submodule(name)).detach().float()


def _uncaptured(net: torch.nn.Module, tuned_state: dict) -> list:
    """A line on the tensors an adapter cannot carry (biases, norms) that the voice changed."""
    base_state = net.state_dict()
    changed = [key for key, value in base_state.items() if not key.endswith(("weight", "weight_g", "weight_v"))
               and key in tuned_state and (tuned_state[key].float() - value.float()).norm()
               > 1e-3 * value.float().norm().clamp_min(1e-12)]
    if not changed:
        return []
    return [f"not carried by an adapter: {len(changed)} changed biases/other tensors (e.g. {changed[0]})"]


# ----- blend ----------------------------------------------------------------------------------------
def blend(model_a, model_b, ratio: float, out, *, style: str = LEGACY_KEYS, info: Optional[str] = None) -> MergeResult:
    """``ratio`` of model A plus ``1 - ratio`` of model B, on effective weights (weight norm resolved,
    then re-split into g and v), written as a small RVC model; RVC's fusion averages g and v apart."""
    if not 0.0 <= float(ratio) <= 1.0:
        raise UserError(f"ratio {ratio}", "use 0 to 1 (the share of model A)")
    if style not in STYLES:
        raise UserError(f"style {style!r}", f"expected one of {', '.join(STYLES)}")
    out = Path(out)
    check_new_output(out, ".pth", [model_a, model_b], "an RVC model")
    a, b = _load_voice(model_a), _load_voice(model_b)
    difference = architecture_difference(a, b)
    if difference:
        raise UserError(model_b, f"cannot be blended with {Path(model_a).name}: {difference}")
    ratio = float(ratio)
    net_a, modules_b = a.synthesizer, dict(b.synthesizer.named_modules())
    done = set()
    with torch.no_grad():
        for name, module in net_a.named_modules():
            if not isinstance(getattr(module, "weight", None), torch.Tensor) or name.endswith("base_layer"):
                continue
            mixed = ratio * effective_weight(module).float() + (1 - ratio) * effective_weight(modules_b[name]).float()
            load_weight_values(module, stored_values_for(module, mixed))
            done |= {f"{name}.{key}" for key in weight_tensors(module)}
        state_b = b.synthesizer.state_dict()
        for key, tensor in net_a.state_dict().items():
            if key not in done and tensor.is_floating_point():
                tensor.copy_(ratio * tensor + (1 - ratio) * state_b[key].to(tensor.dtype))
    config = list(a.config)
    config[CONFIG_FIELDS.index("segment_size")] = SMALL_MODEL_SEGMENT_SIZE
    text = f"{ratio:g} x {Path(model_a).name} + {1 - ratio:g} x {Path(model_b).name}"
    save_small_model(out, net_a, config, version=a.version, f0=a.f0, weight_norm_keys=style,
                     info=info if info is not None else f"blend of {text}")
    return MergeResult(out, [f"blended {text} on effective weights"])


# ----- checks ---------------------------------------------------------------------------------------
def _load_voice(path) -> RVCModel:
    """A model for merging: any RVC generator file, without the training-only posterior encoder."""
    model = load_model(path)
    if hasattr(model.synthesizer, "enc_q"):
        del model.synthesizer.enc_q
    return model


def architecture_difference(a: RVCModel, b: RVCModel) -> Optional[str]:
    """None when the two models have one architecture, else what differs, in words."""
    if (a.version, a.f0) != (b.version, b.f0):
        return (f"{Path(a.path).name} is {a.version} {'f0' if a.f0 else 'no-f0'}, "
                f"{Path(b.path).name} is {b.version} {'f0' if b.f0 else 'no-f0'}")
    for number, name in enumerate(CONFIG_FIELDS):
        if name in ("segment_size", "spk_embed_dim", "p_dropout"):
            continue
        if a.config[number] != b.config[number]:
            return f"{name} is {a.config[number]!r} in {Path(a.path).name} but {b.config[number]!r} in {Path(b.path).name}"
    if a.speakers != b.speakers:
        return f"{Path(a.path).name} has {a.speakers} speakers, {Path(b.path).name} has {b.speakers}"
    return None


def _check_adapter_for(adapter, model: RVCModel) -> None:
    from lora_core import check_adapter_fits

    from .convert import check_adapter_matches_model

    check_adapter_matches_model(adapter, model)
    try:
        check_adapter_fits(model.synthesizer, adapter)
    except AdapterMismatchError as err:
        raise UserError(adapter.source, f"does not fit {Path(model.path).name}: {err}") from None


def _check_same_base(adapters: Sequence) -> None:
    """Adapters to combine must share a base: the same recorded version, rate and f0, and fingerprint."""
    first = adapters[0]
    for other in adapters[1:]:
        for key in ("version", "sr", "f0"):
            if key in first.extra and key in other.extra and first.extra[key] != other.extra[key]:
                raise UserError(other.source, f"is for a {key}={other.extra[key]!r} model but {first.source.name} "
                                              f"is for {key}={first.extra[key]!r}; combine adapters of one base")
        if first.base_fingerprint and other.base_fingerprint and first.base_fingerprint != other.base_fingerprint:
            raise UserError(other.source, f"was trained on another base model than {first.source.name} (fingerprints "
                                          f"{other.base_fingerprint[:12]} and {first.base_fingerprint[:12]}); "
                                          "combine adapters of one base")


# ----- reports --------------------------------------------------------------------------------------
def _ranks(adapter) -> str:
    ranks = sorted({module.rank for module in adapter.modules.values()})
    return str(ranks[0]) if len(ranks) == 1 else f"{ranks[0]}-{ranks[-1]}"


def energy_lines(energy: dict, adapter, before=None) -> list:
    """The size and the retained energy: overall, then the layers that kept the least."""
    if not energy:
        return []
    lines = [f"rank {_ranks(adapter)}, {adapter.num_parameters():,} parameters"
             + (f" (was {before.num_parameters():,})" if before is not None else "")
             + f"; energy retained: mean {np.mean(list(energy.values())):.2%}, lowest {min(energy.values()):.2%}"]
    lowest = sorted(energy.items(), key=lambda item: item[1])[:5]
    lines += [f"  {name}: rank {adapter.modules[name].rank}, {share:.2%}" for name, share in lowest if share < 0.9999]
    return lines
