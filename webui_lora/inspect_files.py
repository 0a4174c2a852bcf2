"""What a file is, for ``python -m webui_lora info`` and the UI: RVC models and checkpoints, adapters,
feature indices and HuBERT checkpoints, each described by the loader that would use it."""

from __future__ import annotations

from pathlib import Path

from lora_core import read_adapter


def describe(path) -> dict:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.suffix == ".safetensors":
        return _adapter_facts(path)
    if path.suffix == ".index":
        return _index_facts(path)
    if path.is_dir() or path.suffix == ".pt":
        return _hubert_facts(path)
    return _checkpoint_facts(path)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def _adapter_facts(path: Path) -> dict:
    adapter = read_adapter(path)
    ranks = sorted({m.rank for m in adapter.modules.values()})
    return {"path": str(path), "type": "adapter", "size_bytes": _size(path), "modules": len(adapter.modules),
            "parameters": adapter.num_parameters(), "ranks": ranks,
            "alphas": sorted({m.alpha for m in adapter.modules.values()}),
            "target_modules": adapter.config.get("target_modules"), "base_fingerprint": adapter.base_fingerprint,
            **{key: value for key, value in adapter.extra.items()}}


def _index_facts(path: Path) -> dict:
    from .rvc.index import FeatureIndex

    index = FeatureIndex.load(path)
    return {"path": str(index.path), "type": "feature index", "size_bytes": _size(index.path), "dim": index.dim,
            "vectors": int(index.index.ntotal), "version": {256: "v1", 768: "v2"}.get(index.dim, "unknown")}


def _hubert_facts(path: Path) -> dict:
    from .rvc.hubert import load_hubert

    model = load_hubert(path)
    config = model.config
    return {"path": str(path), "type": "HuBERT", "size_bytes": _size(path), "layers": config.num_hidden_layers,
            "hidden_size": config.hidden_size, "final_proj": config.classifier_proj_size,
            "normalize_waveform": model.normalize_waveform,
            "parameters": sum(p.numel() for p in model.parameters())}


def _checkpoint_facts(path: Path) -> dict:
    from .rvc.checkpoints import ArchitectureError, inference_fingerprint, load_discriminator, load_model

    try:
        model = load_model(path)
    except ArchitectureError as err:
        if "discriminator" not in str(err):
            raise
        disc = load_discriminator(path)
        return {"path": str(path), "type": "discriminator", "kind": disc.kind, "version": disc.version,
                "size_bytes": _size(path), "parameters": sum(p.numel() for p in disc.discriminator.parameters())}
    net = model.synthesizer
    return {"path": str(path), "type": "RVC model", "kind": model.kind, "version": model.version, "sr": model.sr,
            "f0": model.f0, "info": model.info, "size_bytes": _size(path),
            "parameters": sum(p.numel() for p in net.parameters()),
            "speakers": int(net.emb_g.weight.shape[0]), "config": model.config,
            "weight_norm_keys": model.weight_norm_keys, "fingerprint": inference_fingerprint(net)}


def as_text(facts: dict) -> str:
    width = max(len(key) for key in facts)
    lines = []
    for key, value in facts.items():
        if key == "size_bytes":
            value = f"{value:,} bytes ({value / 1e6:.2f} MB)"
        elif key == "parameters":
            value = f"{value:,}"
        lines.append(f"{key.replace('_', ' '):<{width}}  {value}")
    return "\n".join(lines)
