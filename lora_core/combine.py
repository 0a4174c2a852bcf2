"""Adapter arithmetic: combine several adapters, re-factor by SVD, resize, and extract from a fine-tune.

Everything works on each module's delta as G matrices ``[G, d0/G, rest]`` (see ``layers``), which is
the flattening the layer's own factorisation uses: Conv1d ``out x (in/G * k)``, ConvTranspose1d
``in x (out/G * k)``. An SVD of that matrix is therefore exact for any adapter of that layer.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from .adapter import Adapter, ModuleAdapter
from .config import LoRAConfig
from .errors import AdapterMismatchError
from .layers import LoRALayer, lora_class_for
from .model import find_targets
from .weights import effective_weight, effective_weight_from_state

METHODS = ("cat", "linear", "svd", "ties", "dare_linear", "dare_ties")


def svd_factors(delta: torch.Tensor, rank: Optional[int] = None, energy: Optional[float] = None) -> tuple:
    """Best rank-k factors (left [G, m, k], right [G, k, n]) of G matrices ``delta`` [G, m, n].

    ``rank`` caps k; ``energy`` in (0, 1] picks the smallest k that keeps that share of the squared
    singular values in every group. With neither, k is the numerical rank (an exact re-factoring).
    """
    U, S, Vh = torch.linalg.svd(delta.double(), full_matrices=False)
    k = _rank_to_keep(S, rank, energy)
    root = S[:, :k].sqrt()
    left = (U[:, :, :k] * root[:, None, :]).float()
    right = (root[:, :, None] * Vh[:, :k, :]).float()
    return left, right


def svd_factors_of_product(left: torch.Tensor, right: torch.Tensor, rank: Optional[int] = None,
                           energy: Optional[float] = None) -> tuple:
    """``svd_factors(left @ right)`` without forming the product: QR of both factors leaves an r x r core
    whose SVD gives the product's (r = the inner size), so a re-factoring costs O((m + n) r^2), not O(m n^2)."""
    left_q, left_r = torch.linalg.qr(left.double())
    right_q, right_r = torch.linalg.qr(right.double().transpose(1, 2))
    U, S, Vh = torch.linalg.svd(left_r @ right_r.transpose(1, 2), full_matrices=False)
    k = _rank_to_keep(S, rank, energy)
    root = S[:, :k].sqrt()
    left = ((left_q @ U[:, :, :k]) * root[:, None, :]).float()
    right = (root[:, :, None] * (Vh[:, :k, :] @ right_q.transpose(1, 2))).float()
    return left, right


def _rank_to_keep(S: torch.Tensor, rank: Optional[int], energy: Optional[float]) -> int:
    if energy is not None:
        if not 0.0 < energy <= 1.0:
            raise ValueError(f"energy must be in (0, 1], got {energy}")
        share = (S ** 2).cumsum(-1) / (S ** 2).sum(-1, keepdim=True).clamp_min(1e-300)
        needed = int(((share < energy - 1e-12).sum(-1) + 1).max())
    else:
        tolerance = S.max().item() * S.shape[-1] * torch.finfo(torch.float32).eps
        needed = int((S > tolerance).sum(-1).max())
    if rank is not None:
        needed = min(needed, rank)
    return max(1, min(needed, S.shape[-1]))


def resize_adapter(adapter: Adapter, rank: Optional[int] = None, energy: Optional[float] = None) -> Adapter:
    """The best lower-rank approximation of an adapter, module by module (rank cap and/or energy)."""
    modules = {name: mod.with_factors(*svd_factors_of_product(*_scaled_factors(mod), rank, energy))
               for name, mod in adapter.modules.items()}
    return Adapter(modules, dict(adapter.config), adapter.base_fingerprint, dict(adapter.extra))


def combine_adapters(adapters: Sequence[Adapter], weights: Optional[Sequence[float]] = None,
                     method: str = "cat", rank: Optional[int] = None, energy: Optional[float] = None,
                     density: float = 0.5, majority_sign: str = "total", seed: int = 0) -> Adapter:
    """Combine adapters made for the same base into one.

    - ``cat``: stacks the ranks; exactly ``sum_i w_i * delta_i`` (rank = sum of ranks).
    - ``linear`` / ``svd``: the same weighted sum, re-factored by SVD to ``rank`` / ``energy``
      (exact when neither truncates).
    - ``ties``: trim each weighted delta to its top ``density`` share by magnitude, elect a sign per
      entry, average the agreeing entries (Yadav et al. 2023), then SVD.
    - ``dare_linear`` / ``dare_ties``: drop entries at random with probability ``1 - density``
      (seeded), rescale the rest by ``1 / density``, then sum or TIES-merge, then SVD.
    """
    if method not in METHODS:
        raise ValueError(f"unknown combination method {method!r}; choose one of {', '.join(METHODS)}")
    if not adapters:
        raise ValueError("combine_adapters needs at least one adapter")
    weights = [1.0] * len(adapters) if weights is None else [float(w) for w in weights]
    if len(weights) != len(adapters):
        raise ValueError(f"{len(adapters)} adapters but {len(weights)} weights")
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")
    generator = torch.Generator().manual_seed(seed)
    modules = {}
    for name in _module_union(adapters):
        present = [(a.modules[name], w) for a, w in zip(adapters, weights) if name in a.modules]
        like = present[0][0]
        if method in ("cat", "linear", "svd"):
            joined = _cat(like, present)
            modules[name] = joined if method == "cat" else \
                like.with_factors(*svd_factors_of_product(*joined.factors(), rank, energy))
            continue
        deltas = [w * mod.grouped_delta() for mod, w in present]
        merged = _merge_deltas(deltas, method, density, majority_sign, generator)
        modules[name] = like.with_factors(*svd_factors(merged, rank, energy))
    return Adapter(modules, {"combined_from": [a.config for a in adapters], "method": method,
                             "weights": weights}, _shared_fingerprint(adapters), _shared_extra(adapters))


def _module_union(adapters: Sequence[Adapter]) -> list:
    names = []
    for adapter in adapters:
        names += [n for n in adapter.modules if n not in names]
    for name in names:
        layouts = {(a.modules[name].kind, tuple(a.modules[name].weight_shape), a.modules[name].groups)
                   for a in adapters if name in a.modules}
        if len(layouts) > 1:
            raise AdapterMismatchError(f"adapters disagree on the layer {name}: {sorted(layouts)}; "
                                       "they were made for different base models")
    return names


def _scaled_factors(mod: ModuleAdapter, weight: float = 1.0) -> tuple:
    """(left, right) with ``left @ right`` = ``weight`` x the module's scaled delta."""
    left, right = mod.factors()
    return left.float() * (weight * mod.scaling), right.float()


def _cat(like: ModuleAdapter, present: list) -> ModuleAdapter:
    lefts, rights = zip(*(_scaled_factors(mod, weight) for mod, weight in present))
    return like.with_factors(torch.cat(lefts, dim=-1), torch.cat(rights, dim=1))


def _merge_deltas(deltas: list, method: str, density: float, majority_sign: str, generator) -> torch.Tensor:
    stacked = torch.stack(deltas)
    if method.startswith("dare"):
        keep = torch.rand(stacked.shape, generator=generator) < density
        stacked = stacked * keep / density
        if method == "dare_linear":
            return stacked.sum(0)
    else:
        stacked = _trim_to_density(stacked, density)
    return _disjoint_merge(stacked, majority_sign)


def _trim_to_density(stacked: torch.Tensor, density: float) -> torch.Tensor:
    """Keep each delta's top ``density`` share of entries by magnitude."""
    flat = stacked.reshape(stacked.shape[0], -1)
    k = max(1, int(round(density * flat.shape[1])))
    threshold = flat.abs().topk(k, dim=1).values[:, -1:]
    return (flat * (flat.abs() >= threshold)).reshape(stacked.shape)


def _disjoint_merge(stacked: torch.Tensor, majority_sign: str) -> torch.Tensor:
    """Per entry, elect a sign and average the deltas that agree with it (TIES)."""
    if majority_sign == "total":
        sign = torch.sign(stacked.sum(0))
    elif majority_sign == "frequency":
        sign = torch.sign(torch.sign(stacked).sum(0))
    else:
        raise ValueError("majority_sign must be 'total' or 'frequency'")
    agree = (torch.sign(stacked) == sign) & (stacked != 0)
    return (stacked * agree).sum(0) / agree.sum(0).clamp_min(1)


def _shared_fingerprint(adapters: Sequence[Adapter]) -> Optional[str]:
    prints = {a.base_fingerprint for a in adapters}
    return prints.pop() if len(prints) == 1 else None


def _shared_extra(adapters: Sequence[Adapter]) -> dict:
    """The caller's fields all inputs agree on (e.g. the RVC version and sample rate)."""
    shared = dict(adapters[0].extra)
    for adapter in adapters[1:]:
        shared = {k: v for k, v in shared.items() if adapter.extra.get(k) == v}
    return shared


def extract_adapter(model: nn.Module, tuned_state: dict, rank: Optional[int] = None,
                    energy: Optional[float] = None, target_modules=None, min_change: float = 0.0,
                    progress=None) -> Adapter:
    """An adapter approximating ``tuned_state - model`` on every supported layer by truncated SVD
    of the effective-weight deltas (weight norm resolved on both sides, in any style).

    ``model`` is the base (it supplies the layer types and base weights); ``tuned_state`` is a
    state dict of the same architecture with the same module names. Layers whose weight changed by
    at most ``min_change`` of its norm (0: not at all) are left out, so rounding noise (a base stored
    at fp16 on one side) is not mistaken for training. Biases and norm parameters are not part of a
    LoRA and are not captured. ``progress(done, total, name)`` is called after each layer.
    """
    modules = {}
    names = find_targets(model, LoRAConfig(target_modules=target_modules))
    for done, name in enumerate(names, 1):
        module = model.get_submodule(name)
        base = module.base_layer if isinstance(module, LoRALayer) else module
        base_weight = effective_weight(base).detach().float()
        tuned_weight = effective_weight_from_state(tuned_state, name + ".")
        if tuned_weight is None:
            raise AdapterMismatchError(f"the tuned state dict has no weight for {name}")
        if tuned_weight.shape != base_weight.shape:
            raise AdapterMismatchError(f"{name}: tuned weight {list(tuned_weight.shape)} vs base "
                                       f"{list(base_weight.shape)}; not the same architecture")
        delta = tuned_weight.to(base_weight.device) - base_weight
        if delta.any() and delta.norm() > min_change * base_weight.norm():
            groups = getattr(base, "groups", 1)
            grouped = delta.reshape(groups, delta.shape[0] // groups, -1).cpu()
            modules[name] = ModuleAdapter.from_factors(lora_class_for(base).kind, tuple(delta.shape), groups,
                                                       *svd_factors(grouped, rank, energy))
        if progress is not None:
            progress(done, len(names), name)
    return Adapter(modules, {"extracted": True, "rank": rank, "energy": energy})


def retained_energy(approximation: torch.Tensor, exact: torch.Tensor) -> float:
    """The share of ``exact``'s squared norm an approximation keeps: 1 - |exact - approx|^2 / |exact|^2
    (for a truncated SVD, the kept singular values' energy share)."""
    exact, approximation = exact.double(), approximation.double()
    total = float((exact ** 2).sum())
    return 1.0 if total == 0 else 1.0 - float(((exact - approximation) ** 2).sum()) / total
