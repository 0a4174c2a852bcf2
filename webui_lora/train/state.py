"""A training run's checkpoint: everything needed to continue exactly where it stopped, in one file
written atomically and read back with ``weights_only=True`` (tensors and plain containers only).

It holds the trainable generator weights (adapter factors and enc_q, or every weight in full mode),
the discriminator, both optimisers, the schedulers, the AMP scaler, the step, epoch and position in
the epoch, every RNG state, the loss history and the options the run was started with.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..rvc.checkpoints import UnreadableCheckpointError, atomic_torch_save, read_checkpoint

FORMAT = 1
# Options that must not change between a run and its resumption: they change what is being trained.
FIXED_OPTIONS = ("mode", "base", "preset", "targets", "rank", "alpha", "rslora", "rank_pattern", "train_speaker",
                 "d_mode", "batch_size", "seed", "f0_convention", "d_width")


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": list(_listed(random.getstate()))}
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state["numpy"] = [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached]
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tupled(state["python"]))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _listed(value):
    return [_listed(v) for v in value] if isinstance(value, tuple) else value


def _tupled(value):
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value


def save_checkpoint(path: Path, payload: dict) -> None:
    atomic_torch_save({"format": FORMAT, **payload, "rng": rng_state()}, path)


def load_checkpoint(path: Path, options: dict) -> dict:
    """The checkpoint at ``path``, checked against this run's options."""
    try:
        state = read_checkpoint(path)
    except UnreadableCheckpointError as err:
        raise UserError(path, f"{err.problem}; delete it to start over (or --resume without it)") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "step" not in state:
        raise UserError(path, "is not an RVC-LoRA training checkpoint; delete it to start over")
    changed = [key for key in FIXED_OPTIONS if state["options"].get(key) != options.get(key)]
    if changed:
        was = ", ".join(f"{key}={state['options'].get(key)!r} (now {options.get(key)!r})" for key in changed)
        raise UserError(path, f"was made with other settings: {was}; resume with the same ones, or start a new "
                              "run without --resume")
    return state
