"""Training cost of a LoRA adapter against full fine-tuning of the same full-size v2 40k f0 model: batch 4,
RVC's 12800-sample window, RVC's full discriminator trained alongside, on the CPU (or CUDA with AMP).

One script run measures both arms, each in a fresh child process so its peak memory is its own: the
median step time after warm-up, the peak resident memory (CPU) or peak allocated CUDA memory,
trainable parameters, the optimiser state of the generator side (LoRA factors, and in both arms the
posterior encoder enc_q, which training needs and the adapter leaves out), and the written file:
the adapter against the RVC small model that full mode writes.

    .venv/bin/python benchmarks/train_speed.py [--steps 8] [--warmup 2] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from builders import tiny_hubert_folder  # noqa: E402
from speech import ONE_VOICE, flite_sentence  # noqa: E402

from webui_lora.train.prepare import PrepareOptions, Target, prepare  # noqa: E402
from webui_lora.train.setup import DEFAULT_PRESET, AdapterSpec  # noqa: E402
from webui_lora.train.trainer import TrainOptions, Trainer  # noqa: E402

BASE = "new:v2-40k-f0"


def make_experiment(folder: Path) -> Path:
    """About 40 s of one flite voice prepared for a v2 40k f0 model (pm pitch; a tiny HuBERT of RVC's width:
    the features' values do not change the step's cost)."""
    recordings = folder / "recordings"
    recordings.mkdir(parents=True)
    for take in range(2):
        audio = np.concatenate([flite_sentence(text, voice, 16000) for voice in ("slt", "rms") for text in ONE_VOICE])
        soundfile.write(recordings / f"take{take}.wav", audio, 16000)
    experiment = folder / "exp"
    prepare([recordings], experiment, Target("v2", 40000, True), PrepareOptions(f0_method="pm", index=False),
            hubert_path=tiny_hubert_folder(folder))
    return experiment


def run_arm(mode: str, experiment: Path, out_dir: Path, steps: int, warmup: int, device: str) -> dict:
    """Train ``steps`` steps in this process and measure them."""
    marks = []
    options = TrainOptions(mode=mode, adapter=AdapterSpec(preset=DEFAULT_PRESET, rank=8), steps=steps, batch_size=4,
                           holdout=0, save_every=10 ** 6, device=device)
    out = out_dir / ("adapter.safetensors" if mode == "lora" else "model.pth")
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    def report(progress):
        if progress.losses:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            marks.append(time.perf_counter())

    trainer = Trainer(experiment, BASE, out, options, report=report)
    started = time.perf_counter()
    trainer.run()
    step_times = np.diff([started] + marks)[warmup:]
    optimiser = {"adapter": 0, "enc_q": 0}
    names = {id(p): n for n, p in trainer.net_g.named_parameters()}
    for parameter, state in trainer.optim_g.state.items():
        kind = "enc_q" if names[id(parameter)].startswith("enc_q.") else "adapter"
        optimiser[kind] += sum(t.numel() * t.element_size() for t in state.values() if torch.is_tensor(t))
    enc_q = sum(p.numel() for n, p in trainer.net_g.named_parameters() if n.startswith("enc_q."))
    peak = torch.cuda.max_memory_allocated() if device.startswith("cuda") else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"mode": mode, "step_s": statistics.median(step_times), "steps_timed": len(step_times),
            "peak_bytes": peak, "trainable": trainer.trainable, "enc_q": enc_q, "optimiser": optimiser,
            "file_bytes": out.stat().st_size}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--arm", help=argparse.SUPPRESS)  # a child process: MODE:EXPERIMENT:OUT_DIR
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.arm:
        mode, experiment, out_dir = args.arm.split(":")
        print(json.dumps(run_arm(mode, Path(experiment), Path(out_dir), args.steps, args.warmup, args.device)))
        return
    with tempfile.TemporaryDirectory() as scratch:
        experiment = make_experiment(Path(scratch) / "data")
        results = {}
        for mode in ("lora", "full"):
            out_dir = Path(scratch) / mode
            out_dir.mkdir()
            child = subprocess.run([sys.executable, __file__, "--arm", f"{mode}:{experiment}:{out_dir}",
                                    "--steps", str(args.steps), "--warmup", str(args.warmup),
                                    "--threads", str(args.threads), "--device", args.device],
                                   capture_output=True, text=True, check=True)
            results[mode] = json.loads(child.stdout.strip().splitlines()[-1])
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {args.threads} threads"
    print(f"v2 40k f0, full size, batch 4, 12800-sample window, discriminator full; {device}; "
          f"median of {results['lora']['steps_timed']} steps after {args.warmup} warm-up")
    print("| | LoRA r=8 " + DEFAULT_PRESET + " | full fine-tuning | ratio |")
    print("|---|---:|---:|---:|")
    lora, full = results["lora"], results["full"]

    def row(name, a, b, unit=""):
        print(f"| {name} | {a:,.3f}{unit} | {b:,.3f}{unit} | {a / b:.3f}x |" if isinstance(a, float) else
              f"| {name} | {a:,}{unit} | {b:,}{unit} | {a / b:.3f}x |")

    row("step time", lora["step_s"], full["step_s"], " s")
    row("peak memory (GiB)", lora["peak_bytes"] / 2 ** 30, full["peak_bytes"] / 2 ** 30)
    row("trainable generator parameters (without enc_q)", lora["trainable"], full["trainable"])
    row("optimiser state, those parameters (bytes)", lora["optimiser"]["adapter"], full["optimiser"]["adapter"])
    both = (sum(lora["optimiser"].values()), sum(full["optimiser"].values()))
    row(f"optimiser state with enc_q ({lora['enc_q']:,} parameters, bytes)", *both)
    row("file written: adapter vs RVC small model (bytes)", lora["file_bytes"], full["file_bytes"])


if __name__ == "__main__":
    main()
