"""Load RVC's HuBERT/ContentVec from either form users have, and write the transformers-folder form.

Forms: a fairseq checkpoint file (RVC classic's `assets/hubert/hubert_base.pt`, ContentVec legacy), read with
a restricted unpickler and renamed to transformers keys; or a transformers folder (`config.json` +
`model.safetensors` / `pytorch_model.bin`, optional `preprocessor_config.json`), as RVC 2026's
`assets/hubert_base` and Applio's `contentvec`. Both give the same `HubertWithFinalProj`, whose
`features(audio, version)` is what RVC feeds its synthesizers.
"""

import json
import os

import safetensors.torch
import torch
from transformers import HubertConfig

from lora_core.atomic import atomic_path

from .checkpoints import CheckpointError, UnsafeCheckpointError
from .fairseq_checkpoint import read_checkpoint
from .hubert_fairseq import (check_is_hubert, fairseq_sections, hubert_config_from_fairseq,
                             transformers_state_from_fairseq)
from .hubert_model import RVC_FEATURE_LAYERS, HubertWithFinalProj

__all__ = ["CheckpointError", "HubertWithFinalProj", "RVC_FEATURE_LAYERS", "UnsafeCheckpointError",
           "load_hubert", "save_hubert_folder"]

_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# The positional conv's weight norm is saved as torch's legacy weight_g/weight_v or as parametrizations,
# depending on the torch/transformers that wrote it; either loads into whichever the model uses.
_WEIGHT_NORM_ALIASES = (("parametrizations.weight.original0", "weight_g"),
                        ("parametrizations.weight.original1", "weight_v"),
                        ("weight_g", "parametrizations.weight.original0"),
                        ("weight_v", "parametrizations.weight.original1"))


def default_dtype(device):
    """float16 on CUDA, as RVC runs HuBERT there; float32 elsewhere."""
    return torch.float16 if torch.device(device).type == "cuda" else torch.float32


def load_hubert(path, device="cpu", dtype=None):
    """Load a fairseq HuBERT `.pt` or a transformers HuBERT folder as a frozen `HubertWithFinalProj`.

    Raises FileNotFoundError for a missing path, `UnsafeCheckpointError` for a pickle that would run code,
    and `CheckpointError` for anything else that is not a usable HuBERT; every message names the path.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        model = _load_transformers_folder(path)
    elif os.path.isfile(path):
        model = _load_fairseq_checkpoint(path)
    else:
        raise FileNotFoundError(f"{path}: no HuBERT checkpoint file or folder there")
    model.requires_grad_(False)
    return model.to(device=device, dtype=dtype or default_dtype(device)).eval()


def save_hubert_folder(model, folder):
    """Write `model` as a transformers folder that `load_hubert` and RVC 2026 (`assets/hubert_base`) load."""
    os.makedirs(folder, exist_ok=True)
    preprocessor = {"feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
                    "sampling_rate": 16000, "padding_value": 0.0, "padding_side": "right",
                    "do_normalize": bool(model.normalize_waveform), "return_attention_mask": False}
    state = {key: tensor.detach().cpu().contiguous() for key, tensor in model.state_dict().items()}
    with atomic_path(os.path.join(folder, "config.json")) as target:
        target.write_text(model.config.to_json_string(use_diff=False), encoding="utf-8")
    with atomic_path(os.path.join(folder, "preprocessor_config.json")) as target:
        target.write_text(json.dumps(preprocessor, indent=2) + "\n", encoding="utf-8")
    with atomic_path(os.path.join(folder, "model.safetensors")) as target:
        safetensors.torch.save_file(state, str(target), metadata={"format": "pt"})


def _load_fairseq_checkpoint(path):
    checkpoint = read_checkpoint(path)
    model_cfg, task_cfg = fairseq_sections(checkpoint, path)
    check_is_hubert(model_cfg, checkpoint["model"], path)
    config, normalize = hubert_config_from_fairseq(model_cfg, task_cfg, path)
    state, unknown_keys = transformers_state_from_fairseq(checkpoint["model"])
    model = _empty_model(config, normalize)
    _load_weights(model, state, path, unknown_keys)
    return model


def _load_transformers_folder(path):
    config_file = os.path.join(path, "config.json")
    if not os.path.isfile(config_file):
        checkpoints = sorted(name for name in os.listdir(path) if name.endswith((".pt", ".pth")))
        hint = f"; it holds {checkpoints}: pass that file itself" if checkpoints else ""
        raise CheckpointError(path, f"folder has no config.json, so it is not a transformers HuBERT folder{hint}")
    raw_config = _read_json(config_file)
    if raw_config.get("model_type") != "hubert":
        raise CheckpointError(config_file, f"model_type is {raw_config.get('model_type')!r}, not 'hubert'")
    model = _empty_model(HubertConfig.from_dict(raw_config), _folder_normalizes(path))
    state = _read_folder_weights(path)
    if not any(key.startswith("final_proj.") for key in state):
        model.final_proj = None  # a plain HuBERT/ContentVec folder: v2 features only (v1 needs final_proj)
    _load_weights(model, state, path)
    return model


def _empty_model(config, normalize):
    """The model without allocated weights (meta tensors): loading then adopts the file's tensors, so
    a 95 M-parameter HuBERT never holds a random copy beside the real one."""
    with torch.device("meta"):
        return HubertWithFinalProj(config, normalize_waveform=normalize)


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as err:
        raise CheckpointError(path, f"unreadable JSON ({err})") from None


def _folder_normalizes(path):
    """The folder's `do_normalize` (unset: True, HF's default); no preprocessor file: False, as HuBERT base
    and ContentVec were trained on unnormalised audio."""
    preprocessor_file = os.path.join(path, "preprocessor_config.json")
    if not os.path.isfile(preprocessor_file):
        return False
    return bool(_read_json(preprocessor_file).get("do_normalize", True))


def _read_folder_weights(path):
    for name in _WEIGHT_FILES:
        weights_file = os.path.join(path, name)
        if not os.path.isfile(weights_file):
            continue
        try:
            if name.endswith(".safetensors"):
                return safetensors.torch.load_file(weights_file, device="cpu")
            return torch.load(weights_file, map_location="cpu", weights_only=True)
        except Exception as err:  # corrupt file or a pickle that needs more than tensors
            raise CheckpointError(weights_file, f"cannot be read as weights ({err})") from None
    raise CheckpointError(path, f"folder has none of {list(_WEIGHT_FILES)}")


def _load_weights(model, state, path, unknown_keys=()):
    """Strict load whose error lists every missing and unexpected key, naming the file."""
    expected = model.state_dict().keys()
    aliases = {key[: -len(name)] + alias: key for key in expected
               for name, alias in _WEIGHT_NORM_ALIASES if key.endswith("." + name)}
    state = {aliases.get(key, key): tensor for key, tensor in state.items()}
    missing = sorted(set(expected) - state.keys())
    unexpected = sorted(set(state) - set(expected)) + sorted(unknown_keys)
    if missing or unexpected:
        raise CheckpointError(path, f"weights do not fit the HuBERT its config describes; "
                              f"missing keys {missing}, unexpected keys {unexpected}")
    try:
        model.load_state_dict(state, assign=True)
    except RuntimeError as err:  # a tensor whose shape disagrees with the config
        raise CheckpointError(path, f"weights do not fit the HuBERT its config describes; {err}") from None
