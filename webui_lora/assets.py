"""Where models, adapters, indices, HuBERT and RMVPE live: our ``assets/`` folder and, optionally, an
existing RVC install (``--rvc-root`` / ``RVC_ROOT``) whose files are reused in place.

RVC's own rules apply: models are the ``*.pth`` directly in ``assets/weights``; indices are the
``*.index`` files under ``logs/`` and ``assets/indices`` (and ours beside adapters in ``assets/adapters``)
whose names do not contain "trained"; HuBERT is
``assets/hubert/hubert_base.pt`` (classic) or the transformers folder ``assets/hubert_base`` (2026).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .errors import UserError

DEFAULT_ASSETS = Path(__file__).resolve().parent.parent / "assets"


@dataclass(frozen=True)
class Assets:
    """The asset folders to search, ours first, then the RVC install's."""

    assets_dir: Path = DEFAULT_ASSETS
    rvc_root: Optional[Path] = None

    def __post_init__(self):
        object.__setattr__(self, "assets_dir", Path(self.assets_dir))
        if self.rvc_root is not None:
            object.__setattr__(self, "rvc_root", Path(self.rvc_root))

    @classmethod
    def discover(cls, assets_dir=None, rvc_root=None) -> "Assets":
        rvc_root = rvc_root or os.environ.get("RVC_ROOT") or None
        return cls(Path(assets_dir).expanduser().resolve() if assets_dir else DEFAULT_ASSETS,
                   Path(rvc_root).expanduser().resolve() if rvc_root else None)

    @property
    def roots(self) -> list:
        """Asset folders in search order: ours, then ``<rvc_root>/assets``."""
        return [self.assets_dir] + ([self.rvc_root / "assets"] if self.rvc_root else [])

    def _files(self, folder: str, pattern: str, recursive: bool = False) -> list:
        found = []
        for root in self.roots:
            base = root / folder
            if base.is_dir():
                found += sorted(p for p in (base.rglob(pattern) if recursive else base.glob(pattern)) if p.is_file())
        return found

    def models(self) -> list:
        return self._files("weights", "*.pth")

    def adapters(self) -> list:
        return self._files("adapters", "*.safetensors", recursive=True)

    def indices(self) -> list:
        """RVC's indices, plus those the trainer writes beside its adapters."""
        found = self._files("indices", "*.index", recursive=True) + self._files("adapters", "*.index", recursive=True)
        if self.rvc_root and (self.rvc_root / "logs").is_dir():
            found += sorted((self.rvc_root / "logs").rglob("*.index"))
        return [p for p in found if "trained" not in p.name]

    def index_for_model(self, model_path) -> Optional[Path]:
        """RVC's auto-pick: the first index whose name contains the model's file stem."""
        stem = Path(model_path).stem
        return next((p for p in self.indices() if stem in p.name), None)

    def hubert(self) -> Optional[Path]:
        for root in self.roots:
            for candidate in (root / "hubert" / "hubert_base.pt", root / "hubert_base", root / "hubert"):
                if candidate.is_file() or (candidate.is_dir() and (candidate / "config.json").is_file()):
                    return candidate
        return None

    def require_hubert(self, override=None) -> Path:
        """``override`` (a user's --hubert) or the HuBERT found, else an error saying where to put one."""
        path = Path(override).expanduser() if override else self.hubert()
        if path is None:
            raise UserError("no HuBERT found", "give --hubert PATH, or: " + self.missing_help())
        return path

    @property
    def experiments_dir(self) -> Path:
        """Where prepared datasets go: the RVC install's logs/ (so its trainer sees them), else ours."""
        return self.rvc_root / "logs" if self.rvc_root else self.assets_dir / "experiments"

    def rmvpe(self) -> Optional[Path]:
        return next((root / "rmvpe" / "rmvpe.pt" for root in self.roots
                     if (root / "rmvpe" / "rmvpe.pt").is_file()), None)

    def pretrained(self, version: str, sr: int, f0: bool, kind: str) -> Optional[Path]:
        """RVC's pretrained G or D (``kind``) for a version, rate and f0, as the WebUI names them:
        ``pretrained_v2/f0G40k.pth`` (v1: ``pretrained/``)."""
        name = f"{'f0' if f0 else ''}{kind}{sr // 1000}k.pth"
        folder = "pretrained_v2" if version == "v2" else "pretrained"
        return next((root / folder / name for root in self.roots if (root / folder / name).is_file()), None)

    def pitch_assets_dir(self) -> Path:
        """The asset folder the pitch registry should look in: the one holding rmvpe/rmvpe.pt, else ours."""
        rmvpe = self.rmvpe()
        return rmvpe.parent.parent if rmvpe else self.assets_dir

    def missing_help(self) -> str:
        """What to put where, for a user who has not set anything up yet."""
        lines = []
        if not self.models():
            lines.append(f"- no RVC models: put .pth files in {self.assets_dir / 'weights'} "
                         "or point --rvc-root / RVC_ROOT at your RVC WebUI folder")
        if self.hubert() is None:
            lines.append(f"- no HuBERT: put hubert_base.pt in {self.assets_dir / 'hubert'} (RVC classic) or the "
                         f"hubert_base folder in {self.assets_dir} (RVC 2026)")
        if self.rmvpe() is None:
            lines.append(f"- no RMVPE (optional, for the rmvpe pitch method): put rmvpe.pt in "
                         f"{self.assets_dir / 'rmvpe'}")
        return "\n".join(lines)
