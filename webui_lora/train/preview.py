"""Preview audio during training: one held-out clip converted through the Convert pipeline by the base
alone (once) and by the base plus the adapter as it is at that epoch, written as WAV files the Train
tab plays. No index is used, so what changes between the two is the adapter alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lora_core import write_adapter

from ..rvc.audio import save_audio


class Previewer:
    """``previewer(adapter, epoch) -> (base wav, adapted wav)``."""

    def __init__(self, base_model, clip16k: np.ndarray, folder, *, assets, hubert_path, f0_method: str,
                 f0_convention: str, device: str = "cpu", seed: int = 0):
        self.base_model, self.clip = Path(base_model), np.asarray(clip16k, dtype=np.float32)
        self.folder = Path(folder)
        self.assets, self.hubert_path, self.device = assets, hubert_path, device
        self.f0_method, self.f0_convention, self.seed = f0_method, f0_convention, seed
        self._converter = None
        self._base_wav = None

    def _convert(self, adapters) -> tuple:
        from ..convert import ConversionSettings, VoiceConverter

        if self._converter is None:
            self._converter = VoiceConverter(self.assets, device=self.device, hubert_path=self.hubert_path)
        self._converter.load(self.base_model, adapters)
        settings = ConversionSettings(f0_method=self.f0_method, f0_convention=self.f0_convention, seed=self.seed)
        result = self._converter.convert_audio(self.clip, settings)
        return result.audio, result.sr

    def __call__(self, adapter, epoch: int) -> tuple:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._base_wav is None:
            self._base_wav = save_audio(self.folder / "base.wav", *self._convert([]))
        current = write_adapter(adapter, self.folder / "current.safetensors")
        adapted = save_audio(self.folder / f"epoch_{epoch:04d}.wav", *self._convert([(current, 1.0)]))
        return self._base_wav, adapted
