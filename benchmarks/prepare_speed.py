"""Dataset preparation speed: N minutes of flite speech (four voices, 15 s files) prepared for a v2 40k f0
model with a full-size HuBERT base (random weights, saved as a transformers folder), on the CPU.

For each f0 method: a cold run into a fresh experiment folder, then a cached rerun over the same data.
Prints wall time per stage (read = decode + QA + slice + write pieces, f0, features, index), the
total, the peak resident memory of the process, and the cached rerun against the cold run.

    .venv/bin/python benchmarks/prepare_speed.py [--minutes 10] [--methods pm,fcpe] [--threads 2]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch
from transformers import HubertConfig

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from speech import FLITE_VOICES, flite_sentence  # noqa: E402

from webui_lora.rvc.hubert import save_hubert_folder  # noqa: E402
from webui_lora.rvc.hubert_model import HubertWithFinalProj  # noqa: E402
from webui_lora.train.prepare import PrepareOptions, Target, prepare  # noqa: E402

SENTENCES = [
    "The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.", "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.", "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.", "A large size in stockings is hard to sell.",
]
FILE_SECONDS = 15


def make_dataset(folder: Path, minutes: float) -> float:
    """15 s files of sentences with short pauses, voices in turn, until ``minutes`` of audio exist."""
    folder.mkdir(parents=True)
    total, number, sr = 0.0, 0, 16000
    rng = np.random.default_rng(0)
    while total < minutes * 60:
        voice = FLITE_VOICES[number % len(FLITE_VOICES)]
        parts, length = [], 0
        while length < FILE_SECONDS * sr:
            speech = flite_sentence(SENTENCES[rng.integers(len(SENTENCES))], voice, sr)
            pause = np.zeros(int(rng.uniform(0.2, 0.9) * sr), dtype=np.float32)
            parts += [speech, pause]
            length += len(speech) + len(pause)
        audio = np.concatenate(parts)
        soundfile.write(folder / f"{voice}_{number:03d}.wav", audio, sr)
        total += len(audio) / sr
        number += 1
    return total


def peak_rss_gib() -> tuple:
    """Peak resident memory of this process, and of the largest f0 worker process, in GiB."""
    return tuple(resource.getrusage(who).ru_maxrss / 1024 ** 2
                 for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


def timed_run(data, out, hubert, method):
    start = time.perf_counter()
    marks = {"read": [start, start]}

    def progress(stage, done, total):
        now = time.perf_counter()
        marks.setdefault(stage, [now, now])[1] = now

    result = prepare([data], out, Target("v2", 40000, True), PrepareOptions(f0_method=method),
                     hubert_path=hubert, progress=progress)
    total = time.perf_counter() - start
    return result, total, marks


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--methods", default="pm,fcpe")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        seconds = make_dataset(scratch / "data", args.minutes)
        torch.manual_seed(0)
        hubert = scratch / "hubert_base"
        save_hubert_folder(HubertWithFinalProj(HubertConfig(classifier_proj_size=256)).eval(), hubert)
        print(f"dataset: {seconds / 60:.1f} min of flite speech in {len(list((scratch / 'data').iterdir()))} files; "
              f"HuBERT base, random weights; torch threads {args.threads}")
        print("| f0 | run | total | read | f0 | features | index | pieces | peak RSS (main / worker) |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for method in args.methods.split(","):
            out = scratch / f"exp_{method}"
            cold_total = None
            for run in ("cold", "cached"):
                result, total, marks = timed_run(scratch / "data", out, hubert, method)
                # a stage's time runs from its first progress call to the next stage's first one
                starts = sorted((first, stage) for stage, (first, _) in marks.items())
                spans = {stage: (starts[i + 1][0] if i + 1 < len(starts) else marks[stage][1]) - first
                         for i, (first, stage) in enumerate(starts)}
                cells = " | ".join(f"{spans.get(stage, 0.0):.1f} s" for stage in ("read", "f0", "features", "index"))
                ratio = "" if cold_total is None else f" ({total / cold_total:.3f}x cold)"
                main_rss, worker_rss = peak_rss_gib()
                print(f"| {method} | {run} | {total:.1f} s{ratio} | {cells} | {result.report.pieces} | "
                      f"{main_rss:.2f} / {worker_rss:.2f} GiB |")
                cold_total = cold_total or total


if __name__ == "__main__":
    main()
