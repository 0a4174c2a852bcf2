"""Tiny random RVC artifacts in the real formats: synthesizers with real decoder layouts and small
widths, their small ``.pth`` files, and a HuBERT folder whose features have RVC's real widths."""

from pathlib import Path

import torch
from transformers import HubertConfig

from webui_lora.rvc.checkpoints import save_small_model
from webui_lora.rvc.hubert import save_hubert_folder
from webui_lora.rvc.hubert_model import HubertWithFinalProj
from webui_lora.rvc.models import build_synthesizer

# name: (version, f0, upsample_rates, upsample_kernel_sizes, spec_channels, sr)
TINY = {
    "v2_f0_40k": ("v2", True, [10, 10, 2, 2], [16, 16, 4, 4], 1025, 40000),
    "v1_f0_48k": ("v1", True, [10, 6, 2, 2, 2], [16, 16, 4, 4, 4], 1025, 48000),
    "v2_nof0_32k": ("v2", False, [10, 8, 2, 2], [20, 16, 4, 4], 513, 32000),
    "v1_nof0_48k": ("v1", False, [10, 6, 2, 2, 2], [16, 16, 4, 4, 4], 1025, 48000),
}


def tiny_config(name):
    _, _, rates, kernels, spec, sr = TINY[name]
    return [spec, 32, 8, 16, 32, 2, 2, 3, 0, "1", [3, 7, 11], [[1, 3, 5]] * 3, rates, 32, kernels, 3, 16, sr]


def tiny_synthesizer(name, seed=0):
    """A random full generator (with enc_q) whose flow is not the identity, so every part shows."""
    version, f0 = TINY[name][:2]
    torch.manual_seed(seed)
    model = build_synthesizer(tiny_config(name), version, f0)
    with torch.no_grad():
        for flow in model.flow.flows[::2]:
            flow.post.weight.normal_(0, 0.1)
    return model.eval()


def tiny_model_file(folder, name="v2_f0_40k", seed=0, file_name=None):
    """A small inference .pth, written as RVC writes one."""
    version, f0 = TINY[name][:2]
    path = Path(folder) / (file_name or f"{name}.pth")
    save_small_model(path, tiny_synthesizer(name, seed), tiny_config(name), version=version, f0=f0, info="tiny")
    return path


def tiny_hubert_folder(folder, seed=0):
    """A random HuBERT with 12 layers of width 768 and final_proj to 256 (so v1 and v2 features have
    RVC's widths) but a tiny FFN and conv front end, saved as a transformers folder."""
    config = HubertConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=4, intermediate_size=32,
                          conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=16,
                          classifier_proj_size=256, feat_extract_norm="group", do_stable_layer_norm=False)
    torch.manual_seed(seed)
    path = Path(folder) / "hubert_base"
    save_hubert_folder(HubertWithFinalProj(config).eval(), path)
    return path
