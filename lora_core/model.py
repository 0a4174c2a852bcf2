"""Model-level LoRA operations: inject, switch, merge, unmerge and unload adapters in place."""

from __future__ import annotations

import re
from typing import Iterable, Iterator, Optional

from torch import nn

from .config import LoRAConfig, lora_scaling, name_matches
from .errors import AdapterStateError, NonFiniteMergeError, TargetNotFoundError
from .layers import LoRALayer, lora_class_for
from .weights import all_finite

_ADAPTER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")


def lora_layers(model: nn.Module) -> Iterator[tuple]:
    """(name, layer) for every LoRA wrapper in the model, named as the base module was."""
    for name, module in model.named_modules():
        if isinstance(module, LoRALayer):
            yield name, module


def base_module_name(name: str) -> str:
    """The module's name in the plain model: wrappers add a ``base_layer`` level."""
    return name.replace(".base_layer", "").removeprefix("base_layer.")


def find_targets(model: nn.Module, config: LoRAConfig) -> list:
    """Names of the supported layers the config selects, in model order.

    Each target must match at least one module; a matched container selects every supported
    layer inside it. Layers already wrapped count under their base name.
    """
    candidates = _supported_layers(model)
    targets = config.target_modules
    if targets is None or targets == "all":
        selected = set(candidates)
    else:
        names = _module_names(model)
        selected = set()
        for entry in [targets] if isinstance(targets, str) else targets:
            rule = entry if isinstance(targets, str) else [entry]
            matched = [n for n in names if name_matches(rule, n)]
            if not matched:
                raise TargetNotFoundError(_no_match_message(entry, candidates))
            selected |= {c for c in candidates for m in matched if c == m or c.startswith(m + ".")}
    if config.exclude_modules:
        selected = {n for n in selected if not name_matches(config.exclude_modules, n)}
    return [n for n in candidates if n in selected]


def _module_names(model: nn.Module) -> list:
    """Every submodule's base name, leaving out LoRA's own submodules."""
    names = []
    for name, _ in model.named_modules():
        parts = name.split(".")
        if name and not {"lora_A", "lora_B", "lora_dropout"} & set(parts):
            base = base_module_name(name)
            if base not in names:
                names.append(base)
    return names


def _supported_layers(model: nn.Module) -> list:
    """Base names of the layers LoRA can wrap (already wrapped ones included)."""
    names = []
    for name, module in model.named_modules():
        wrapped_base = name.split(".")[-1] == "base_layer"
        if name and (isinstance(module, LoRALayer) or (lora_class_for(module) and not wrapped_base)):
            names.append(base_module_name(name))
    return names


def _no_match_message(entry, candidates: list) -> str:
    containers = sorted({n.rsplit(".", 1)[0] for n in candidates if "." in n})
    shown = ", ".join(containers[:40]) + (f", ... ({len(containers) - 40} more)" if len(containers) > 40 else "")
    return (f"target {entry!r} matches no module. Containers with LoRA-capable layers: {shown or 'none'}. "
            f"LoRA-capable layers ({len(candidates)}): {', '.join(candidates[:12])}"
            f"{', ...' if len(candidates) > 12 else ''}.")


def inject_lora(model: nn.Module, config: LoRAConfig, adapter_name: str = "default") -> list:
    """Add adapter ``adapter_name`` to every layer the config selects, in place; returns their names.

    A layer already wrapped gets one more named adapter. The model's outputs do not change until
    the adapter is trained (``lora_B`` starts at zero).
    """
    if not _ADAPTER_NAME.fullmatch(adapter_name):
        raise ValueError(f"adapter name {adapter_name!r} must be letters, digits, '_' or '-' (no dots)")
    targets = find_targets(model, config)
    if not targets:
        raise TargetNotFoundError("the config selects no supported layer (Linear, Embedding, Conv1d, "
                                  "ConvTranspose1d) in this model")
    existing = dict(lora_layers(model))
    clash = [n for n in targets if n in existing and adapter_name in existing[n].lora_A]
    if clash:
        raise AdapterStateError(f"adapter {adapter_name!r} already exists on {clash[0]}; "
                                "delete it or choose another name")
    for name in targets:
        layer = existing.get(name) or wrap_layer(model, name)
        r = config.rank_for(name)
        alpha = config.alpha_for(name)
        layer.add_adapter(adapter_name, r, alpha, lora_scaling(r, alpha, config.use_rslora),
                          config.lora_dropout, config.init_lora_weights)
    return targets


def wrap_layer(model: nn.Module, name: str) -> LoRALayer:
    """Replace the layer at ``name`` by its LoRA wrapper (no adapters yet) and return the wrapper."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    base = getattr(parent, child)
    layer = lora_class_for(base)(base)
    setattr(parent, child, layer)
    return layer


def adapter_names(model: nn.Module) -> list:
    names = []
    for _, layer in lora_layers(model):
        names += [n for n in layer.lora_A if n not in names]
    return names


def _layers_with(model: nn.Module, adapter_name: str) -> list:
    layers = [layer for _, layer in lora_layers(model) if adapter_name in layer.lora_A]
    if not layers:
        raise AdapterStateError(f"the model has no adapter named {adapter_name!r}; "
                                f"it has {adapter_names(model) or 'none'}")
    return layers


def set_adapter_strength(model: nn.Module, adapter_name: str, strength: float) -> None:
    """Scale an adapter's effect (1 = as trained, 0 = off, negative = pushed the other way)."""
    layers = _layers_with(model, adapter_name)
    if any(layer.merged_adapters for layer in layers):
        raise AdapterStateError("cannot change strength while adapters are merged; unmerge first")
    for layer in layers:
        layer.strength[adapter_name] = float(strength)


def set_adapter_enabled(model: nn.Module, adapter_name: str, enabled: bool) -> None:
    layers = _layers_with(model, adapter_name)
    if any(layer.merged_adapters for layer in layers):
        raise AdapterStateError("cannot switch adapters while they are merged; unmerge first")
    for layer in layers:
        (layer.disabled.discard if enabled else layer.disabled.add)(adapter_name)


def delete_adapter(model: nn.Module, adapter_name: str) -> None:
    for layer in _layers_with(model, adapter_name):
        layer.delete_adapter(adapter_name)


def mark_only_lora_trainable(model: nn.Module, adapter_names_: Optional[Iterable[str]] = None,
                             extra_trainable: Iterable[str] = ()) -> int:
    """Freeze everything but the LoRA factors (of the named adapters, default all) and any parameter
    whose name matches a regex in ``extra_trainable``; returns the trainable parameter count."""
    wanted = None if adapter_names_ is None else set(adapter_names_)
    patterns = [re.compile(p) for p in extra_trainable]
    count = 0
    for name, param in model.named_parameters():
        parts = name.split(".")
        is_lora = len(parts) >= 2 and parts[-2] in ("lora_A", "lora_B")
        train = (is_lora and (wanted is None or parts[-1] in wanted)) or any(
            p.search(base_module_name(name)) for p in patterns)
        param.requires_grad_(train)
        count += param.numel() if train else 0
    return count


def merge_lora(model: nn.Module, adapter_names_: Optional[Iterable[str]] = None) -> None:
    """Fold adapters (default: the active ones, at their strengths) into the base weights.

    All merged weights are computed and checked before any is written, so a merge that would put
    NaN or Inf into a weight changes nothing and names the module.
    """
    plans = []
    for name, layer in lora_layers(model):
        if layer.merged_adapters:
            raise AdapterStateError(f"{name} already has merged adapters; unmerge first")
        names = layer.active_adapters() if adapter_names_ is None else [
            n for n in adapter_names_ if n in layer.lora_A]
        if names:
            values = layer.merged_values(names)
            bad = [k for k, t in values.items() if not all_finite(t)]
            if bad:
                raise NonFiniteMergeError(
                    f"merging {names} into {name} would write NaN/Inf into {name}.{bad[0]}; nothing was "
                    "merged. Lower the adapter strength or check the adapter for non-finite values.")
            plans.append((layer, names, values))
    for layer, names, values in plans:
        layer.apply_merge(names, values)


def unmerge_lora(model: nn.Module) -> None:
    """Restore every merged layer's base weights exactly."""
    for _, layer in lora_layers(model):
        layer.unmerge()


def unload_lora(model: nn.Module, merge: bool = False) -> nn.Module:
    """Remove every LoRA wrapper, putting the base layers back; with ``merge`` fold the active
    adapters in first. Afterwards ``state_dict()`` has exactly the base model's keys and shapes."""
    if merge:
        merge_lora(model)
    else:
        unmerge_lora(model)
    for name, layer in list(lora_layers(model)):
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, layer.base_layer)
    return model


def merge_and_unload(model: nn.Module) -> nn.Module:
    return unload_lora(model, merge=True)
