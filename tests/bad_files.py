"""Broken inputs of every kind a user hands us by mistake, made on the spot from good files."""

from pathlib import Path

import torch
from safetensors.torch import save_file


def bad_files(folder, model_path, adapter_path) -> dict:
    """{kind: path}: a missing file, an empty one, random bytes, a truncated model and adapter, a
    safetensors file that is not an adapter, a folder, and a discriminator where a model belongs."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = {"missing": folder / "missing.pth", "folder": folder / "a_folder.pth"}
    files["folder"].mkdir(exist_ok=True)
    (files.setdefault("empty", folder / "empty.pth")).write_bytes(b"")
    (files.setdefault("garbage", folder / "garbage.pth")).write_bytes(b"this is not a checkpoint" * 10)
    model = Path(model_path).read_bytes()
    (files.setdefault("truncated model", folder / "truncated.pth")).write_bytes(model[: len(model) // 2])
    adapter = Path(adapter_path).read_bytes()
    (files.setdefault("truncated adapter", folder / "truncated.safetensors")).write_bytes(adapter[: len(adapter) // 2])
    files["not an adapter"] = folder / "plain.safetensors"
    save_file({"weight": torch.zeros(3)}, files["not an adapter"])
    from webui_lora.rvc.models import build_discriminator
    files["discriminator"] = folder / "D_1.pth"
    torch.save({"model": build_discriminator("v1").state_dict(), "iteration": 1}, files["discriminator"])
    return files
