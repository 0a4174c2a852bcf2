"""Exceptions raised by lora_core, each with a message a user can act on."""


class LoRAError(Exception):
    """Base class for every error lora_core raises on purpose."""


class TargetNotFoundError(LoRAError):
    """A target pattern matched no module of the model."""


class UnsupportedModuleError(LoRAError):
    """A target names a layer type that has no LoRA implementation."""


class AdapterStateError(LoRAError):
    """An operation does not fit the adapter's current state (merged, missing, ...)."""


class NonFiniteMergeError(LoRAError):
    """Merging would write NaN or Inf into a base weight."""


class AdapterFileError(LoRAError):
    """An adapter file is missing, truncated, or not an adapter."""


class AdapterMismatchError(LoRAError):
    """An adapter does not fit the model it is being loaded onto."""
