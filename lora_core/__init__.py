"""Exact LoRA for the layer types RVC uses (Linear, Embedding, Conv1d, ConvTranspose1d), with or
without weight norm. Knows nothing of RVC: any torch model works."""

from .adapter import (Adapter, FingerprintMismatchWarning, ModuleAdapter, adapter_from_model, apply_adapter,
                      base_fingerprint, check_adapter_fits, load_adapter, read_adapter, save_adapter,
                      write_adapter)
from .combine import (combine_adapters, extract_adapter, resize_adapter, retained_energy, svd_factors,
                      svd_factors_of_product)
from .config import LoRAConfig
from .errors import (AdapterFileError, AdapterMismatchError, AdapterStateError, LoRAError, NonFiniteMergeError,
                     TargetNotFoundError, UnsupportedModuleError)
from .layers import LoRAConv1d, LoRAConvTranspose1d, LoRAEmbedding, LoRALayer, LoRALinear, current_weight
from .model import (adapter_names, delete_adapter, find_targets, inject_lora, lora_layers,
                    mark_only_lora_trainable, merge_and_unload, merge_lora, set_adapter_enabled,
                    set_adapter_strength, unload_lora, unmerge_lora)
from .weights import fold_weight_norm
