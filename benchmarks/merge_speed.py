"""The Merge tools on full-size RVC files: a v2 40k f0 model (fresh weights), three rank-8 adapters of the
trainer's default preset, and a "fine-tuned voice" that differs from the base in every weight (what a full
fine-tuning run leaves). Each operation runs end to end as the CLI runs it, file reading and writing
included, and is timed over a few repeats (median). The baseline in the same run is the cost of just
loading the base model and writing it back as an RVC small model, which every operation includes.

    .venv/bin/python benchmarks/merge_speed.py [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lora_core import inject_lora, save_adapter  # noqa: E402
from webui_lora.merge import bake, combine, extract, resize  # noqa: E402
from webui_lora.rvc.checkpoints import load_model, save_small_model  # noqa: E402
from webui_lora.rvc.configs import synthesizer_config  # noqa: E402
from webui_lora.rvc.models import build_synthesizer  # noqa: E402
from webui_lora.train.setup import AdapterSpec  # noqa: E402

V2_40K = synthesizer_config("v2", 40000)
TARGETS = {"bake of 3 adapters": 2.0, "extract at rank 16": 10.0, "combine of 3 by SVD (rank 16)": 5.0}


def write_files(folder: Path) -> tuple:
    torch.manual_seed(0)
    base = folder / "base.pth"
    net = build_synthesizer(V2_40K, "v2", True)
    save_small_model(base, net, V2_40K, version="v2", f0=True)
    adapters = []
    for number in range(3):
        model = load_model(base)
        torch.manual_seed(100 + number)
        config = AdapterSpec(rank=8).lora_config()
        config.init_lora_weights = False
        inject_lora(model.synthesizer, config, "a")
        path = folder / f"adapter{number}.safetensors"
        save_adapter(model.synthesizer, path, "a", extra={"version": "v2", "sr": 40000, "f0": True})
        adapters.append(path)
    tuned = folder / "tuned.pth"
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.02 * parameter.abs().mean())
    save_small_model(tuned, net, V2_40K, version="v2", f0=True)
    return base, adapters, tuned


def median_seconds(fn, out: Path, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        out.unlink(missing_ok=True)
        started = time.perf_counter()
        fn(out)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        base, adapters, tuned = write_files(folder)
        stack = [(path, 1.0) for path in adapters]

        def reload_and_save(out):
            model = load_model(base)
            save_small_model(out, model.synthesizer, model.config, version="v2", f0=True)

        runs = {
            "load + save the base (baseline)": (reload_and_save, "copy.pth"),
            "bake of 3 adapters": (lambda out: bake(base, stack, out), "baked.pth"),
            "extract at rank 16": (lambda out: extract([base], tuned, out, rank=16), "extracted.safetensors"),
            "combine of 3 by SVD (rank 16)": (lambda out: combine(stack, out, method="svd", rank=16),
                                              "svd.safetensors"),
            "combine of 3 by cat": (lambda out: combine(stack, out, method="cat"), "cat.safetensors"),
            "resize to rank 4": (lambda out: resize(adapters[0], out, rank=4), "r4.safetensors"),
        }
        print(f"full-size v2 40k f0, CPU fp32, {args.threads} threads, median of {args.repeats}")
        baseline = None
        for label, (fn, name) in runs.items():
            seconds = median_seconds(fn, folder / name, args.repeats)
            baseline = baseline or seconds
            target = f"  (target < {TARGETS[label]:.0f} s)" if label in TARGETS else ""
            print(f"{label:34s} {seconds:7.2f} s  {seconds / baseline:5.2f}x baseline{target}")
        result = extract([base], tuned, folder / "report.safetensors", rank=16)
        print("extract report:", *result.lines[:3], sep="\n  ")


if __name__ == "__main__":
    main()
