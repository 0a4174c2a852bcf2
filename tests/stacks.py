"""Random adapters on tiny models, the unmerged stack they form, and a synthesizer's output on fixed
inputs: the references merge results are compared with."""

import torch

from builders import TINY
from lora_core import LoRAConfig, apply_adapter, inject_lora, read_adapter, save_adapter
from webui_lora.rvc.checkpoints import load_model

FRAMES = 24


def synth_output(net, name, seed=0):
    """The synthesizer's audio for fixed random inputs (noise seeded)."""
    version, f0 = TINY[name][:2]
    generator = torch.Generator().manual_seed(1)
    phone = torch.randn(1, FRAMES, 256 if version == "v1" else 768, generator=generator)
    lengths, sid = torch.tensor([FRAMES]), torch.tensor([0])
    torch.manual_seed(seed)
    with torch.no_grad():
        if f0:
            pitch = torch.randint(1, 255, (1, FRAMES), generator=generator)
            nsff0 = 100 + 200 * torch.rand(1, FRAMES, generator=generator)
            return net.infer(phone, lengths, pitch, nsff0, sid)[0]
        return net.infer(phone, lengths, sid)[0]


def make_adapter(model_path, out, seed, targets=None, rank=2, version=None):
    """A random (non-zero) adapter for the model at ``model_path``, recording its version, rate and f0."""
    model = load_model(model_path)
    torch.manual_seed(seed)
    inject_lora(model.synthesizer, LoRAConfig(r=rank, lora_alpha=rank, target_modules=targets,
                                              init_lora_weights=False), "a")
    with torch.no_grad():
        for name, param in model.synthesizer.named_parameters():
            if "lora_B" in name:
                param.mul_(0.05)
    save_adapter(model.synthesizer, out, "a", extra={"version": version or model.version, "sr": model.sr,
                                                     "f0": model.f0})
    return out


def unmerged_stack(model_path, adapters):
    model = load_model(model_path)
    for number, (path, strength) in enumerate(adapters):
        apply_adapter(model.synthesizer, read_adapter(path), f"s{number}", strength)
    return model.synthesizer
