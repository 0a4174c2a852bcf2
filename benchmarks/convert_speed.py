"""Conversion speed and memory: 30 s of speech through a full-size v2 40k f0 model (random weights) and a
full-size HuBERT (random weights), pm f0, no index, float32, on the CPU.

Runs the base model alone, the base plus 3 adapters (r=8 on every layer) unmerged, and the same adapters
merged, interleaved in one process, and prints per-stage times, the real-time factor, the peak resident
memory added during each conversion, and ratios against the base.

    .venv/bin/python benchmarks/convert_speed.py [--seconds 30] [--repeats 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from transformers import HubertConfig

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from speech import flite_sentence  # noqa: E402

from lora_core import LoRAConfig, inject_lora, merge_lora, save_adapter, unmerge_lora  # noqa: E402
from webui_lora.assets import Assets  # noqa: E402
from webui_lora.convert import ConversionSettings, VoiceConverter  # noqa: E402
from webui_lora.rvc.checkpoints import load_model, save_small_model  # noqa: E402
from webui_lora.rvc.hubert import save_hubert_folder  # noqa: E402
from webui_lora.rvc.hubert_model import HubertWithFinalProj  # noqa: E402
from webui_lora.rvc.models import build_synthesizer  # noqa: E402

V2_40K = [1025, 32, 192, 192, 768, 2, 6, 3, 0, "1", [3, 7, 11], [[1, 3, 5]] * 3, [10, 10, 2, 2], 512,
          [16, 16, 4, 4], 109, 256, 40000]
SENTENCES = ["The quick brown fox jumps over the lazy dog.", "She sells sea shells by the sea shore.",
             "A journey of a thousand miles begins with a single step.", "Please call Stella and ask her to bring these things."]


class PeakMemory:
    """Peak resident memory above the level at entry, sampled every 5 ms."""

    def __enter__(self):
        self.start = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.added = self.peak - self.start


def _rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def speech(seconds: float) -> np.ndarray:
    voices = ["slt", "rms", "awb"]
    pieces, total, i = [], 0, 0
    while total < seconds * 16000:
        piece = flite_sentence(SENTENCES[i % len(SENTENCES)], voices[i % len(voices)])
        pieces += [piece, np.zeros(3200, np.float32)]
        total += len(piece) + 3200
        i += 1
    return np.concatenate(pieces)[: int(seconds * 16000)]


def write_assets(folder: Path, adapters: int) -> tuple:
    torch.manual_seed(0)
    (folder / "weights").mkdir()
    model_path = folder / "weights" / "v2_40k.pth"
    save_small_model(model_path, build_synthesizer(V2_40K, "v2", True), V2_40K, version="v2", f0=True)
    save_hubert_folder(HubertWithFinalProj(HubertConfig(classifier_proj_size=256)).eval(), folder / "hubert_base")
    adapter_paths = []
    for number in range(adapters):
        net = load_model(model_path).synthesizer
        torch.manual_seed(100 + number)
        inject_lora(net, LoRAConfig(r=8, lora_alpha=8, target_modules="all", init_lora_weights=False), "a")
        path = folder / f"adapter{number}.safetensors"
        save_adapter(net, path, "a")
        adapter_paths.append(path)
    return model_path, adapter_paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    audio = speech(args.seconds)
    settings = ConversionSettings(f0_method="pm", seed=0)

    with tempfile.TemporaryDirectory() as folder:
        # Made in a child process, so this process's peak memory is that of loading and converting alone.
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            model_path, adapter_paths = pool.apply(write_assets, (Path(folder), 3))
        converter = VoiceConverter(Assets.discover(folder), device="cpu")
        converter.load(model_path)
        converter.convert_audio(audio[:16000 * 3], settings)  # warm-up: loads HuBERT, first-call costs

        variants = {
            "base": lambda: converter.load(model_path),
            "3 adapters unmerged": lambda: converter.load(model_path, [(p, 1.0) for p in adapter_paths]),
            "3 adapters merged": lambda: (converter.load(model_path, [(p, 1.0) for p in adapter_paths]),
                                          merge_lora(converter.model.synthesizer)),
        }
        results = {name: [] for name in variants}
        outputs, process_peak = {}, 0
        for _ in range(args.repeats):
            for name, prepare in variants.items():
                prepare()
                with PeakMemory() as memory:
                    start = time.perf_counter()
                    result = converter.convert_audio(audio, settings)
                    total = time.perf_counter() - start
                unmerge_lora(converter.model.synthesizer)
                results[name].append((total, result.timings, memory.added))
                if name == "base" and not process_peak:
                    process_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
                outputs[name] = result.audio

    print(f"{args.seconds:.0f} s of speech, v2 40k f0 model + HuBERT base (random weights), pm, float32, "
          f"{args.threads} threads, median of {args.repeats}")
    base_total = statistics.median(r[0] for r in results["base"])
    base_memory = statistics.median(r[2] for r in results["base"])
    for name, runs in results.items():
        total = statistics.median(r[0] for r in runs)
        memory = statistics.median(r[2] for r in runs)
        stages = {k: statistics.median(r[1][k] for r in runs) for k in runs[0][1]}
        stage_text = "  ".join(f"{k} {v:.2f}s" for k, v in stages.items())
        print(f"{name:<20} total {total:6.2f} s  RTF {total / args.seconds:.3f}  {total / base_total:.3f}x base  "
              f"peak +{memory / 2**30:.2f} GiB ({memory / base_memory:.2f}x)  [{stage_text}]")
    print(f"process peak after loading the model and HuBERT and converting with the base: "
          f"{process_peak / 2**30:.2f} GiB")
    merged_vs_unmerged = np.abs(outputs["3 adapters merged"].astype(int) - outputs["3 adapters unmerged"]).max()
    print(f"max |merged - unmerged| output difference: {merged_vs_unmerged} (int16 steps)")


if __name__ == "__main__":
    main()
