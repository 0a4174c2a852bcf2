"""Read and write a layer's *effective* weight, whatever weight-norm style it uses.

RVC layers come in three styles: a plain ``weight`` parameter; legacy hook-based weight norm
(``weight_g``/``weight_v`` with a forward pre-hook that rebuilds ``weight`` on every call, so a
write into ``weight`` is lost); and ``torch.nn.utils.parametrizations.weight_norm``
(``parametrizations.weight.original0/original1``). LoRA deltas apply to the effective weight
``g * v / ||v||``, so merging must fold into ``g``/``v`` (or the originals), never into ``weight``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.weight_norm import WeightNorm

PLAIN, LEGACY, PARAMETRIZED = "plain", "legacy", "parametrized"


@dataclass(frozen=True)
class WeightNormInfo:
    """How a module stores its weight: style and, for weight norm, the kept dim (-1 = whole tensor)."""

    style: str
    dim: Optional[int] = None


def weight_norm_info(module: nn.Module, name: str = "weight") -> WeightNormInfo:
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, WeightNorm) and hook.name == name:
            return WeightNormInfo(LEGACY, hook.dim)
    if parametrize.is_parametrized(module, name):
        for p in module.parametrizations[name]:
            if hasattr(p, "dim") and type(p).__name__ == "_WeightNorm":
                return WeightNormInfo(PARAMETRIZED, -1 if p.dim is None else p.dim)
        raise NotImplementedError(
            f"{type(module).__name__}.{name} has a parametrization other than weight norm; "
            "LoRA cannot fold a delta into it"
        )
    return WeightNormInfo(PLAIN)


def effective_weight(module: nn.Module) -> torch.Tensor:
    """The weight the module's forward uses, computed the same way its forward computes it."""
    info = weight_norm_info(module)
    if info.style == LEGACY:
        return torch._weight_norm(module.weight_v, module.weight_g, info.dim)
    return module.weight


def fold_weight_norm(model: nn.Module) -> int:
    """Replace weight norm (either style) in every submodule by the plain weight it computes, for a copy
    that only runs inference: one tensor per layer instead of g, v and the legacy style's computed copy,
    and no recomputation on every call. Returns how many layers were folded."""
    folded = 0
    for module in model.modules():
        style = weight_norm_info(module).style
        if style == LEGACY:
            torch.nn.utils.remove_weight_norm(module)
        elif style == PARAMETRIZED:
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        folded += style != PLAIN
    return folded


def stored_weight_shape(module: nn.Module) -> tuple:
    """The weight's shape, read off the stored tensors (cheaper than computing the weight)."""
    return tuple(list(weight_tensors(module).values())[-1].shape)


def all_finite(tensor: torch.Tensor) -> bool:
    """True when no entry is NaN or Inf: any such entry makes the (float32) sum non-finite. One
    reduction, no boolean temporary; a sum that overflows is refused too, which is the safe side."""
    return bool(torch.isfinite(tensor.sum(dtype=torch.float32)))


def weight_tensors(module: nn.Module) -> dict:
    """The parameters that hold the weight, by their local state-dict names."""
    info = weight_norm_info(module)
    if info.style == LEGACY:
        return {"weight_g": module.weight_g, "weight_v": module.weight_v}
    if info.style == PARAMETRIZED:
        originals = module.parametrizations.weight
        return {
            "parametrizations.weight.original0": originals.original0,
            "parametrizations.weight.original1": originals.original1,
        }
    return {"weight": module.weight}


def stored_values_for(module: nn.Module, new_weight: torch.Tensor) -> dict:
    """The values to store in :func:`weight_tensors` so that the effective weight becomes ``new_weight``.

    For weight norm, ``g`` becomes the new norm and ``v`` the new direction scaled to the old ``||v||``,
    so a model that keeps training after a merge sees the same parameter scale as its base.
    """
    info = weight_norm_info(module)
    current = weight_tensors(module)
    if info.style == PLAIN:
        return {"weight": new_weight.to(current["weight"].dtype)}
    g_key, v_key = list(current)
    old_v = current[v_key].detach().float()
    new_w = new_weight.float()
    new_g = torch.norm_except_dim(new_w, 2, info.dim)
    old_v_norm = torch.norm_except_dim(old_v, 2, info.dim)
    new_v = new_w / new_g * old_v_norm
    return {
        g_key: new_g.reshape(current[g_key].shape).to(current[g_key].dtype),
        v_key: new_v.to(current[v_key].dtype),
    }


def load_weight_values(module: nn.Module, values: dict) -> None:
    """Copy ``values`` (as returned by :func:`stored_values_for`) into the module in place."""
    tensors = weight_tensors(module)
    with torch.no_grad():
        for key, value in values.items():
            tensors[key].copy_(value)


def effective_weight_from_state(state: dict, prefix: str) -> Optional[torch.Tensor]:
    """The effective weight (float32) of the layer at ``prefix`` in a state dict of any of the three styles.

    Returns None when the state dict has no weight for that layer.
    """
    if prefix + "weight" in state:
        return state[prefix + "weight"].float()
    for g_key, v_key in (
        ("weight_g", "weight_v"),
        ("parametrizations.weight.original0", "parametrizations.weight.original1"),
    ):
        if prefix + g_key in state and prefix + v_key in state:
            g, v = state[prefix + g_key].float(), state[prefix + v_key].float()
            return torch._weight_norm(v, g, _kept_dim(g))
    return None


def _kept_dim(g: torch.Tensor) -> int:
    """The dim weight norm kept, read off ``g``: the one axis it is not 1 along; -1 (whole tensor) for one value."""
    if g.numel() == 1:
        return -1
    wide = [d for d, size in enumerate(g.shape) if size != 1]
    if len(wide) != 1:
        raise ValueError(f"cannot tell the weight-norm dim of a g tensor shaped {tuple(g.shape)}")
    return wide[0]
