"""RVC's own artifacts: synthesizers and checkpoints, HuBERT, pitch, audio files and feature indices."""

from .checkpoints import CheckpointError, load_discriminator, load_model, save_small_model

__all__ = ["CheckpointError", "load_discriminator", "load_hubert", "load_model", "save_small_model"]


def __getattr__(name):
    """``load_hubert`` on first use: it pulls in transformers, which most of this package never needs."""
    if name == "load_hubert":
        from .hubert import load_hubert

        return load_hubert
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
