"""What a file is, for ``python -m webui_lora info`` and the UI: RVC models and checkpoints, adapters,
feature indices and HuBERT checkpoints, each described by the loader that would use it."""

from __future__ import annotations

from pathlib import Path

from lora_core import read_adapter


def describe(path, base=None) -> dict:
    """The facts about a file; for an adapter with ``base`` (a model file), also whether it fits that model."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.suffix == ".safetensors":
        facts = _adapter_facts(path)
        return {**facts, **_fit_facts(path, base)} if base is not None else facts
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


def _fit_facts(adapter_path: Path, base) -> dict:
    """Whether the adapter loads onto ``base`` (shapes, recorded version/rate/f0) and was trained on it."""
    from lora_core import check_adapter_fits

    from .convert import check_adapter_matches_model
    from .errors import user_message
    from .rvc.checkpoints import inference_fingerprint, load_model

    adapter = read_adapter(adapter_path)
    model = load_model(base)
    try:
        check_adapter_matches_model(adapter, model)
        check_adapter_fits(model.synthesizer, adapter)
    except Exception as err:  # a misfit is the answer, not a failure
        message = user_message(err)
        if message is None:
            raise
        return {"fits_base": f"no: {message}"}
    same = adapter.base_fingerprint in (None, inference_fingerprint(model.synthesizer))
    return {"fits_base": f"yes ({Path(base).name})",
            "trained_on_base": "yes" if same else "no: trained on another base; it loads, the sound may differ"}


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
