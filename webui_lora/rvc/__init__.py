"""RVC's own artifacts: synthesizers and checkpoints, HuBERT, pitch, audio files and feature indices."""

from .checkpoints import CheckpointError, load_discriminator, load_model, save_small_model
from .hubert import load_hubert

__all__ = ["CheckpointError", "load_discriminator", "load_hubert", "load_model", "save_small_model"]
