"""Adapters as data: taken from a model, put onto a model, and kept in one ``.safetensors`` file.

The file holds ``<module>.lora_A.weight`` / ``<module>.lora_B.weight`` per adapted layer (PEFT's
key style, without the adapter name, so a file loads under any name) and, in the header metadata,
the format version, each module's layer kind, weight shape, groups, rank, alpha and scaling, the
training config, a fingerprint of the base model, and free-form fields for the caller.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes
from torch import nn

from .atomic import write_atomic
from .errors import AdapterFileError, AdapterMismatchError, AdapterStateError
from .layers import LAYERS_BY_KIND, LoRALayer, lora_class_for
from .model import wrap_layer, base_module_name, lora_layers
from .weights import effective_weight

FORMAT_VERSION = 1
FORMAT_KEY = "rvc_lora_format"


class FingerprintMismatchWarning(UserWarning):
    """The adapter was trained on a base whose weights differ from this model's (shapes fit)."""


@dataclass
class ModuleAdapter:
    """One layer's adapter: its factors in the layer's native layout plus what they mean."""

    kind: str
    weight_shape: tuple
    groups: int
    lora_A: torch.Tensor
    lora_B: torch.Tensor
    alpha: float
    scaling: float

    @property
    def layer_class(self):
        return LAYERS_BY_KIND[self.kind]

    @property
    def rank(self) -> int:
        return self.lora_A.shape[0] // self.groups

    def factors(self) -> tuple:
        """(left [G, d0/G, r], right [G, r, rest]), unscaled."""
        return self.layer_class.to_factors(self.lora_A, self.lora_B, self.groups)

    def grouped_delta(self) -> torch.Tensor:
        """The scaled delta as G matrices [G, d0/G, rest], the form SVD and merging methods use."""
        left, right = self.factors()
        return torch.bmm(left.float(), right.float()) * self.scaling

    def delta(self) -> torch.Tensor:
        return self.grouped_delta().reshape(self.weight_shape)

    @classmethod
    def from_factors(cls, kind: str, weight_shape: tuple, groups: int, left, right) -> "ModuleAdapter":
        """An adapter whose delta is exactly ``left @ right`` (alpha = rank, scaling 1)."""
        A, B = LAYERS_BY_KIND[kind].from_factors(left, right, tuple(weight_shape), groups)
        rank = left.shape[-1]
        return cls(kind, tuple(weight_shape), groups, A.contiguous(), B.contiguous(), float(rank), 1.0)

    def with_factors(self, left, right) -> "ModuleAdapter":
        return ModuleAdapter.from_factors(self.kind, self.weight_shape, self.groups, left, right)


@dataclass
class Adapter:
    """A whole adapter: per-module factors plus the config, base fingerprint and caller's fields."""

    modules: dict
    config: dict = field(default_factory=dict)
    base_fingerprint: Optional[str] = None
    extra: dict = field(default_factory=dict)
    source: Optional[Path] = None  # the file it was read from, for messages

    def num_parameters(self) -> int:
        return sum(m.lora_A.numel() + m.lora_B.numel() for m in self.modules.values())


def adapter_from_model(model: nn.Module, adapter_name: str = "default", config: Optional[dict] = None,
                       extra: Optional[dict] = None, base_fingerprint: Optional[str] = None) -> Adapter:
    """Copy adapter ``adapter_name`` out of a model (CPU tensors, detached)."""
    modules = {}
    for name, layer in lora_layers(model):
        if adapter_name in layer.lora_A:
            modules[base_module_name(name)] = ModuleAdapter(
                layer.kind, layer.weight_shape, layer.groups,
                layer.lora_A[adapter_name].detach().cpu().clone(),
                layer.lora_B[adapter_name].detach().cpu().clone(),
                layer.lora_alpha[adapter_name], layer.scaling[adapter_name])
    if not modules:
        raise AdapterStateError(f"the model has no adapter named {adapter_name!r}")
    return Adapter(modules, dict(config or {}), base_fingerprint, dict(extra or {}))


def check_adapter_fits(model: nn.Module, adapter: Adapter) -> None:
    """Raise :class:`AdapterMismatchError` naming the first modules that do not fit the model."""
    problems = []
    for name, mod in adapter.modules.items():
        try:
            module = model.get_submodule(name)
        except AttributeError:
            problems.append(f"{name}: no such module in the model")
            continue
        base = module.base_layer if isinstance(module, LoRALayer) else module
        layer_cls = lora_class_for(base)
        if layer_cls is None or layer_cls.kind != mod.kind:
            problems.append(f"{name}: adapter is for a {mod.kind} layer, model has {type(base).__name__}")
            continue
        shape, groups = tuple(effective_weight(base).shape), getattr(base, "groups", 1)
        if shape != tuple(mod.weight_shape) or groups != mod.groups:
            problems.append(f"{name}: adapter expects weight {list(mod.weight_shape)} (groups {mod.groups}), "
                            f"model has {list(shape)} (groups {groups})")
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise AdapterMismatchError("adapter does not fit this model: " + "; ".join(problems[:5]) + more)


def apply_adapter(model: nn.Module, adapter: Adapter, adapter_name: str = "default", strength: float = 1.0,
                  on_fingerprint_mismatch: str = "ignore") -> None:
    """Put ``adapter`` onto the model as ``adapter_name``. Shapes that do not fit are an error; a base
    whose weights differ from the one the adapter was trained on warns (``"warn"``), raises
    (``"error"``), or passes (``"ignore"``)."""
    if on_fingerprint_mismatch not in ("warn", "error", "ignore"):
        raise ValueError("on_fingerprint_mismatch must be 'warn', 'error' or 'ignore'")
    check_adapter_fits(model, adapter)
    existing = dict(lora_layers(model))
    if any(adapter_name in layer.lora_A for layer in existing.values()):
        raise AdapterStateError(f"the model already has an adapter named {adapter_name!r}")
    if adapter.base_fingerprint and on_fingerprint_mismatch != "ignore":
        _check_fingerprint(model, adapter, on_fingerprint_mismatch)
    for name, mod in adapter.modules.items():
        layer = existing.get(name) or wrap_layer(model, name)
        layer.add_adapter(adapter_name, mod.rank, mod.alpha, mod.scaling)
        device = layer.lora_A[adapter_name].device
        with torch.no_grad():
            layer.lora_A[adapter_name].copy_(mod.lora_A.to(device))
            layer.lora_B[adapter_name].copy_(mod.lora_B.to(device))
        layer.strength[adapter_name] = float(strength)


def _check_fingerprint(model: nn.Module, adapter: Adapter, on_mismatch: str) -> None:
    if base_fingerprint(model) == adapter.base_fingerprint:
        return
    message = (f"{adapter.source or 'adapter'}: this adapter was trained on a different base model (fingerprint "
               f"{adapter.base_fingerprint[:12]}); shapes fit, but the result may not sound as intended")
    if on_mismatch == "error":
        raise AdapterMismatchError(message)
    warnings.warn(message, FingerprintMismatchWarning, stacklevel=3)


# ----- fingerprint -----------------------------------------------------------------------------
_PARAMETRIZED = {"parametrizations.weight.original0": "weight_g", "parametrizations.weight.original1": "weight_v"}


def base_fingerprint(model_or_state: object) -> str:
    """sha256 over the base tensors' names, shapes and float32 bytes, independent of LoRA wrappers,
    of the weight-norm style and of the dtype the model was loaded in."""
    if isinstance(model_or_state, nn.Module):
        if any(layer.merged_adapters for _, layer in lora_layers(model_or_state)):
            raise AdapterStateError("cannot fingerprint the base while adapters are merged; unmerge first")
        state = model_or_state.state_dict()
    else:
        state = model_or_state
    entries = {}
    for key, tensor in state.items():
        parts = key.split(".")
        if {"lora_A", "lora_B"} & set(parts):
            continue
        key = base_module_name(key)
        for long, short in _PARAMETRIZED.items():
            key = key.replace(long, short)
        entries[key] = tensor
    digest = hashlib.sha256()
    for key in sorted(entries):
        tensor = entries[key].detach().cpu()
        tensor = tensor.float() if tensor.is_floating_point() else tensor
        digest.update(f"{key}:{list(tensor.shape)};".encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


# ----- files -----------------------------------------------------------------------------------
def write_adapter(adapter: Adapter, path, dtype: Optional[torch.dtype] = None) -> Path:
    """Write the adapter atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    tensors, modules = {}, {}
    for name, mod in adapter.modules.items():
        tensors[f"{name}.lora_A.weight"] = mod.lora_A.to(dtype or mod.lora_A.dtype).contiguous()
        tensors[f"{name}.lora_B.weight"] = mod.lora_B.to(dtype or mod.lora_B.dtype).contiguous()
        modules[name] = {"kind": mod.kind, "weight_shape": list(mod.weight_shape), "groups": mod.groups,
                         "r": mod.rank, "alpha": mod.alpha, "scaling": mod.scaling}
    metadata = {
        "format": "pt",
        FORMAT_KEY: str(FORMAT_VERSION),
        "modules": json.dumps(modules),
        "lora_config": json.dumps(adapter.config),
        "target_modules": json.dumps(adapter.config.get("target_modules")),
        "base_fingerprint": adapter.base_fingerprint or "",
        "extra": json.dumps(adapter.extra),
    }
    payload = save_safetensors_bytes(tensors, metadata)
    write_atomic(path, payload)
    return path


def read_adapter(path) -> Adapter:
    """Read an adapter file, with a distinct clear error for each way it can be wrong."""
    path = Path(path)
    if not path.exists():
        raise AdapterFileError(f"{path}: no such adapter file")
    if not path.is_file():
        raise AdapterFileError(f"{path}: is a folder, not an adapter file (.safetensors)")
    data = path.read_bytes()
    try:
        tensors = load_safetensors_bytes(data)
        metadata = _safetensors_metadata(data)
    except (SafetensorError, ValueError, json.JSONDecodeError) as err:
        raise AdapterFileError(f"{path}: not a readable .safetensors file; it may be truncated or in "
                               f"another format ({err})") from err
    if FORMAT_KEY not in metadata:
        raise AdapterFileError(f"{path}: a .safetensors file but not an RVC-LoRA adapter (no "
                               f"'{FORMAT_KEY}' in its metadata); convert it or pick the adapter file")
    if int(metadata[FORMAT_KEY]) > FORMAT_VERSION:
        raise AdapterFileError(f"{path}: adapter format {metadata[FORMAT_KEY]} is newer than this "
                               f"version understands ({FORMAT_VERSION}); update RVC-LoRA")
    try:
        modules = {name: _module_from_file(name, info, tensors)
                   for name, info in json.loads(metadata["modules"]).items()}
        return Adapter(modules, json.loads(metadata.get("lora_config", "{}")),
                       metadata.get("base_fingerprint") or None, json.loads(metadata.get("extra", "{}")), path)
    except (KeyError, ValueError, RuntimeError, TypeError) as err:
        raise AdapterFileError(f"{path}: adapter metadata and tensors disagree ({err}); the file is damaged") \
            from err


def _safetensors_metadata(data: bytes) -> dict:
    header_len = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + header_len]).get("__metadata__", {}) or {}


def _module_from_file(name: str, info: dict, tensors: dict) -> ModuleAdapter:
    mod = ModuleAdapter(info["kind"], tuple(info["weight_shape"]), int(info["groups"]),
                        tensors[f"{name}.lora_A.weight"], tensors[f"{name}.lora_B.weight"],
                        float(info["alpha"]), float(info["scaling"]))
    if mod.kind not in LAYERS_BY_KIND:
        raise ValueError(f"unknown layer kind {mod.kind!r} for {name}")
    left, right = mod.factors()
    if torch.bmm(left.float(), right.float()).numel() != torch.Size(mod.weight_shape).numel():
        raise ValueError(f"factors of {name} do not multiply to its weight shape {list(mod.weight_shape)}")
    return mod


def save_adapter(model: nn.Module, path, adapter_name: str = "default", config: Optional[dict] = None,
                 extra: Optional[dict] = None, fingerprint: Optional[str] = None,
                 dtype: Optional[torch.dtype] = None) -> Adapter:
    """Save one adapter of ``model`` to ``path``; the base fingerprint is computed unless given."""
    adapter = adapter_from_model(model, adapter_name, config, extra,
                                 fingerprint if fingerprint is not None else base_fingerprint(model))
    write_adapter(adapter, path, dtype)
    return adapter


def load_adapter(model: nn.Module, path, adapter_name: str = "default", strength: float = 1.0,
                 on_fingerprint_mismatch: str = "warn") -> Adapter:
    """Read an adapter file and put it onto ``model`` (see :func:`apply_adapter`)."""
    adapter = read_adapter(path)
    apply_adapter(model, adapter, adapter_name, strength, on_fingerprint_mismatch)
    return adapter
