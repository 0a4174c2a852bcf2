"""Where models, adapters, indices, HuBERT, RMVPE and RVC's pretrained files live.

Search order: folders named on the command line (``--assets DIR``, or one folder per kind when RVC
WebUI hosts our tabs), then an existing RVC install (``--rvc-root`` / ``RVC_ROOT``) whose files are
reused in place, then this project's ``./assets``. RVC's own rules apply: models are the ``*.pth``
directly in ``assets/weights``; indices are the ``*.index`` files under ``logs/`` and ``assets/indices``
(and ours beside adapters in ``assets/adapters``) whose names do not contain "trained"; HuBERT is
``assets/hubert/hubert_base.pt`` (classic) or the transformers folder ``assets/hubert_base`` (2026).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

from .errors import UserError

DEFAULT_ASSETS = Path(__file__).resolve().parent.parent / "assets"
# The kinds a caller may point at a folder of its own (a host's weight_root, rmvpe_root, ...).
FOLDER_KINDS = ("weights", "indices", "adapters", "hubert", "rmvpe", "pretrained_v2", "pretrained", "logs")
DOWNLOAD = "python -m webui_lora download-assets --only {}"


@dataclass(frozen=True)
class Assets:
    """The asset folders to search, and ``assets_dir``: where our own outputs go."""

    assets_dir: Path = DEFAULT_ASSETS
    rvc_root: Optional[Path] = None
    folders: Mapping[str, Path] = field(default_factory=dict)  # kind -> folder, searched before the roots
    search_project: bool = False  # also search ./assets, last (what discover() gives)

    def __post_init__(self):
        unknown = sorted(set(self.folders) - set(FOLDER_KINDS))
        if unknown:
            raise UserError(f"folders {unknown}", f"unknown asset kind; choose from {', '.join(FOLDER_KINDS)}")
        object.__setattr__(self, "assets_dir", Path(self.assets_dir))
        object.__setattr__(self, "folders", {kind: Path(path) for kind, path in self.folders.items()})
        if self.rvc_root is not None:
            object.__setattr__(self, "rvc_root", Path(self.rvc_root))

    @classmethod
    def discover(cls, assets_dir=None, rvc_root=None, **folders) -> "Assets":
        """From a user's ``--assets`` and ``--rvc-root`` (else ``RVC_ROOT``) and per-kind folders."""
        rvc_root = rvc_root or os.environ.get("RVC_ROOT") or None
        return cls(_absolute(assets_dir) if assets_dir else DEFAULT_ASSETS, _absolute(rvc_root) if rvc_root else None,
                   {kind: _absolute(path) for kind, path in folders.items() if path}, search_project=True)

    @property
    def roots(self) -> list:
        """Asset folders in search order: ``--assets``, ``<rvc_root>/assets``, then ./assets."""
        found = [] if self.assets_dir == DEFAULT_ASSETS else [self.assets_dir]
        found += [self.rvc_root / "assets"] if self.rvc_root else []
        found += [DEFAULT_ASSETS] if self.search_project or self.assets_dir == DEFAULT_ASSETS else []
        return list(dict.fromkeys(found))

    def dirs(self, kind: str) -> list:
        """The folders holding one kind of file, in search order."""
        found = [self.folders[kind]] if kind in self.folders else []
        if kind == "logs":
            return found + ([self.rvc_root / "logs"] if self.rvc_root else [])
        return list(dict.fromkeys(found + [root / kind for root in self.roots]))

    def output_dir(self, kind: str) -> Path:
        """Where new files of a kind go: the folder given for it (a host's weights), else ours."""
        return self.folders.get(kind, self.assets_dir / kind)

    def _files(self, kind: str, pattern: str, recursive: bool = False) -> list:
        found = []
        for base in self.dirs(kind):
            if base.is_dir():
                found += sorted(p for p in (base.rglob(pattern) if recursive else base.glob(pattern)) if p.is_file())
        return list(dict.fromkeys(found))

    def models(self) -> list:
        return self._files("weights", "*.pth")

    def adapters(self) -> list:
        return self._files("adapters", "*.safetensors", recursive=True)

    def indices(self) -> list:
        """RVC's indices, plus those the trainer writes beside its adapters."""
        found = [path for kind in ("indices", "adapters", "logs") for path in self._files(kind, "*.index", True)]
        return [p for p in dict.fromkeys(found) if "trained" not in p.name]

    def index_for_model(self, model_path) -> Optional[Path]:
        """RVC's auto-pick: the first index whose name contains the model's file stem."""
        stem = Path(model_path).stem
        return next((p for p in self.indices() if stem in p.name), None)

    def hubert(self) -> Optional[Path]:
        """The first HuBERT: a given file or folder, else ``hubert/hubert_base.pt`` or a ``hubert_base``
        (or ``hubert``) transformers folder in each root."""
        given = self.folders.get("hubert")
        candidates = [given, given / "hubert_base.pt", given / "hubert_base"] if given else []
        for root in self.roots:
            candidates += [root / "hubert" / "hubert_base.pt", root / "hubert_base", root / "hubert"]
        return next((path for path in candidates if path.is_file() or (path / "config.json").is_file()), None)

    def require_hubert(self, override=None) -> Path:
        """``override`` (a user's --hubert) or the HuBERT found, else an error saying where to put one."""
        path = Path(override).expanduser() if override else self.hubert()
        if path is None:
            raise UserError("no HuBERT found", "give --hubert PATH, or: " + self.missing_help())
        return path

    @property
    def experiments_dir(self) -> Path:
        """Where prepared datasets go: the RVC install's logs/ (so its trainer sees them), else ours."""
        logs = self.dirs("logs")
        return logs[0] if logs else self.assets_dir / "experiments"

    def rmvpe(self) -> Optional[Path]:
        return next((base / "rmvpe.pt" for base in self.dirs("rmvpe") if (base / "rmvpe.pt").is_file()), None)

    def pretrained(self, version: str, sr: int, f0: bool, kind: str) -> Optional[Path]:
        """RVC's pretrained G or D (``kind``) for a version, rate and f0, as the WebUI names them:
        ``pretrained_v2/f0G40k.pth`` (v1: ``pretrained/``)."""
        name = f"{'f0' if f0 else ''}{kind}{sr // 1000}k.pth"
        folder = "pretrained_v2" if version == "v2" else "pretrained"
        return next((base / name for base in self.dirs(folder) if (base / name).is_file()), None)

    def pitch_assets_dir(self) -> Path:
        """The folder the pitch registry looks in for rmvpe: the one holding rmvpe.pt, else ours."""
        rmvpe = self.rmvpe()
        return rmvpe.parent if rmvpe else self.assets_dir

    def status(self) -> list:
        """(what, found path or None, how to get it) for everything the app uses, for a status panel."""
        any_pretrained = next((path for base in self.dirs("pretrained_v2") if base.is_dir()
                               for path in sorted(base.glob("f0G*.pth"))), None)
        models = self.models()
        return [
            ("RVC models", models[0].parent if models else None,
             f"put .pth files in {self.dirs('weights')[0]}, or set RVC_ROOT to your RVC WebUI folder"),
            ("HuBERT", self.hubert(), DOWNLOAD.format("hubert")),
            ("RMVPE (pitch)", self.rmvpe(), DOWNLOAD.format("rmvpe")),
            ("pretrained v2 (training)", any_pretrained, DOWNLOAD.format("pretrained-v2")),
        ]

    def status_text(self) -> str:
        """The status as Markdown lines: found where, or missing and the command that gets it."""
        return "\n".join(f"- {what}: {'found, ' + str(path) if path else 'missing; ' + fix}"
                         for what, path, fix in self.status())

    def missing_help(self) -> str:
        """What to put where (and the command that fetches it), for a user who has not set anything up yet."""
        return "\n".join(f"- no {what}: {fix}" for what, path, fix in self.status() if path is None)


def _absolute(path) -> Path:
    return Path(path).expanduser().resolve()
