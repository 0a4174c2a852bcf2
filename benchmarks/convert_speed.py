"""Conversion time and peak memory side by side in one run, each conversion in a fresh process.

The anchor is RVC's own pipeline (``VC.vc_single``, the WebUI's single-file button) when its code is at
``$RVC_REF``; without it, a previous revision of this project (``--previous``, default the last commit
before the speed work), checked out from git into a temporary folder. Both sides convert the same files:
speech made with flite, a full-size v2 40k f0 model and a full-size HuBERT (random weights in RVC's
formats), random RMVPE weights and an index built from the input's own features. Ours runs with the base
alone, with 3 adapters (r=8 on every layer) unmerged, and with them baked into a stock model. Rounds are
interleaved; each process makes one warm-up call, then the measured one; peak memory is the process's
peak resident size (loading included), as RVC users see it.

    .venv/bin/python benchmarks/convert_speed.py [--seconds 30] [--rounds 2] [--threads 2]
        [--configs pm,rmvpe+index] [--baseline auto|rvc|previous] [--previous REV]
    .venv/bin/python benchmarks/convert_speed.py --long 1,5,10 [--configs pm]   # peak memory vs length

RVC's side needs RVC's code (``git archive`` of RVC-Project/Retrieval-based-Voice-Conversion-WebUI: infer
configs i18n tools) and its extra imports (``pip install av ffmpeg-python einops``) in this environment.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREVIOUS = "cb0497a"  # the last commit before the conversion speed work
V2_40K = [1025, 32, 192, 192, 768, 2, 6, 3, 0, "1", [3, 7, 11], [[1, 3, 5]] * 3, [10, 10, 2, 2], 512,
          [16, 16, 4, 4], 109, 256, 40000]
SENTENCES = ["The quick brown fox jumps over the lazy dog.", "She sells sea shells by the sea shore.",
             "A journey of a thousand miles begins with a single step.", "Please call Stella and ask her to bring these things."]
SETTINGS = dict(transpose=0, protect=0.33, rms_mix_rate=0.25, index_rate=0.75, seed=0)


# ----- assets (made once, in a child process) ------------------------------------------------------------
def make_assets(folder: Path, seconds: float) -> dict:
    import numpy as np
    import soundfile
    import torch
    from transformers import HubertConfig

    sys.path.insert(0, str(ROOT / "tests"))
    from speech import flite_sentence
    from lora_core import LoRAConfig, inject_lora, save_adapter
    from webui_lora.merge import bake
    from webui_lora.rvc.checkpoints import load_model, save_small_model
    from webui_lora.rvc.hubert import load_hubert, save_hubert_folder
    from webui_lora.rvc.hubert_model import HubertWithFinalProj
    from webui_lora.rvc.index import build_index
    from webui_lora.rvc.models import build_synthesizer
    from webui_lora.rvc.pitch.rmvpe import RMVPENet

    torch.manual_seed(0)
    voices, pieces, total = ["slt", "rms", "awb"], [], 0
    while total < seconds * 16000:
        i = len(pieces) // 2
        piece = flite_sentence(SENTENCES[i % len(SENTENCES)], voices[i % len(voices)])
        pieces += [piece, np.zeros(3200, np.float32)]
        total += len(piece) + 3200
    wav = folder / "speech.wav"
    soundfile.write(wav, np.concatenate(pieces)[: int(seconds * 16000)], 16000, subtype="PCM_16")

    (folder / "weights").mkdir()
    model = folder / "weights" / "v2_40k.pth"
    save_small_model(model, build_synthesizer(V2_40K, "v2", True), V2_40K, version="v2", f0=True)
    save_hubert_folder(HubertWithFinalProj(HubertConfig(classifier_proj_size=256)).eval(), folder / "hubert_base")
    (folder / "rmvpe").mkdir()
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in RMVPENet().state_dict().items()},
               folder / "rmvpe" / "rmvpe.pt")
    audio = soundfile.read(wav, dtype="float32")[0]
    features = load_hubert(folder / "hubert_base").features(torch.from_numpy(audio)[None], "v2")[0].numpy()
    index = folder / "added_bench_v2.index"  # RVC's vc_single rewrites "trained" to "added" in index names
    build_index(features, index)
    adapters = []
    for number in range(3):
        net = load_model(model).synthesizer
        torch.manual_seed(100 + number)
        inject_lora(net, LoRAConfig(r=8, lora_alpha=8, target_modules="all", init_lora_weights=False), "a")
        adapters.append(str(folder / f"adapter{number}.safetensors"))
        save_adapter(net, adapters[-1], "a")
    merged = folder / "weights" / "v2_40k_3_adapters.pth"
    bake(model, [(path, 1.0) for path in adapters], merged)
    return dict(wav=str(wav), model=str(model), merged=str(merged), adapters=adapters, index=str(index),
                hubert=str(folder / "hubert_base"), rmvpe=str(folder / "rmvpe"), assets=str(folder))


# ----- one conversion per process ----------------------------------------------------------------------
def worker(args) -> dict:
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    job = json.loads(args.worker)
    run = run_rvc if job["impl"] == "rvc" else run_ours
    return run(job, args.threads)


def run_ours(job: dict, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from webui_lora.assets import Assets
    from webui_lora.convert import ConversionSettings, VoiceConverter

    converter = VoiceConverter(Assets.discover(job["assets"]), device="cpu")
    converter.load(job["model"], [(path, 1.0) for path in job.get("adapters", [])])
    index = job["index"] if job["with_index"] else None
    settings = ConversionSettings(f0_method=job["f0"], index_path=index, index_rate=SETTINGS["index_rate"] if index else 0,
                                  seed=SETTINGS["seed"], transpose=SETTINGS["transpose"], protect=SETTINGS["protect"],
                                  rms_mix_rate=SETTINGS["rms_mix_rate"])
    times = []
    for _ in range(job.get("calls", 2)):  # a warm-up, then the measured call
        start = time.perf_counter()
        result = converter.convert_file(job["wav"], settings)
        times.append(time.perf_counter() - start)
    return dict(warm_s=times[-1], cold_s=times[0], peak_gib=_peak_gib(), stages=result.timings)


def run_rvc(job: dict, threads: int) -> dict:
    """RVC's WebUI path, unchanged: Config() -> VC(config).get_vc(name) -> vc_single(...)."""
    rvc = Path(os.environ["RVC_REF"]).resolve()
    os.environ.update(weight_root=str(Path(job["model"]).parent), index_root="", outside_index_root="",
                      rmvpe_root=job["rmvpe"], RVC_CUDA_GRAPH="0", CUDA_VISIBLE_DEVICES="")
    sys.path.insert(0, str(rvc))
    os.chdir(rvc)
    import random

    import numpy as np
    import torch

    torch.set_num_threads(threads)
    argv, sys.argv = sys.argv, sys.argv[:1]  # RVC's Config parses the WebUI's command line
    try:
        from configs.config import Config

        config = Config()
    finally:
        sys.argv = argv
    import infer.hubert

    infer.hubert.HUBERT_MODEL_PATH = Path(job["hubert"])
    from infer.vc.modules import VC

    vc = VC(config)
    vc.get_vc(Path(job["model"]).name)
    index = job["index"] if job["with_index"] else ""
    times = []
    for _ in range(2):
        random.seed(0), np.random.seed(0), torch.manual_seed(SETTINGS["seed"])
        start = time.perf_counter()
        info, (sr, audio) = vc.vc_single(0, job["wav"], SETTINGS["transpose"], job["f0"], index,
                                         SETTINGS["index_rate"] if index else 0, 0, SETTINGS["rms_mix_rate"],
                                         SETTINGS["protect"])
        times.append(time.perf_counter() - start)
        if audio is None:
            raise SystemExit(f"RVC's vc_single failed: {info}")
    return dict(warm_s=times[-1], cold_s=times[0], peak_gib=_peak_gib())


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def spawn(job: dict, threads: int, pythonpath: Path) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--threads", str(threads), "--worker", json.dumps(job)]
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"{job['impl']} {job['f0']} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def previous_checkout(revision: str, folder: Path) -> Path:
    """This project's code at ``revision``, extracted from git (no work tree needed)."""
    folder.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "webui_lora", "lora_core"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


# ----- reports -------------------------------------------------------------------------------------------
def side_by_side(args, assets: dict, baseline: str, baseline_path: Path) -> None:
    configs = args.configs.split(",")
    variants = {"base": dict(model=assets["model"]),
                "3 adapters unmerged": dict(model=assets["model"], adapters=assets["adapters"]),
                "3 adapters merged": dict(model=assets["merged"])}
    rows = []
    for round_number in range(args.rounds):
        for config in configs:
            jobs = [(baseline, "base", baseline_path, dict(model=assets["model"]))]
            jobs += [("ours", name, ROOT, variant) for name, variant in variants.items()]
            for impl, name, path, variant in jobs if round_number % 2 == 0 else reversed(jobs):
                job = dict(assets, **variant, impl="rvc" if impl == "rvc" else "ours", f0=config.split("+")[0],
                           with_index="+index" in config)
                if "adapters" not in variant:
                    job.pop("adapters")
                record = spawn(job, args.threads, path)
                rows.append(dict(record, impl=impl, variant=name, config=config))
                print(f"  round {round_number} {config:<12} {impl:<8} {name:<20} warm {record['warm_s']:6.2f} s  "
                      f"peak {record['peak_gib']:.2f} GiB", flush=True)

    def median(impl, variant, config, key):
        return statistics.median(r[key] for r in rows if (r["impl"], r["variant"], r["config"]) == (impl, variant, config))

    print(f"\n{args.seconds:.0f} s of speech, v2 40k f0 model + HuBERT base (random weights), CPU float32, "
          f"{args.threads} threads, median of {args.rounds}; baseline: {baseline}")
    print(f"| config | variant | {baseline} s | ours s | time ratio | {baseline} peak GiB | ours peak GiB | "
          f"peak ratio | vs our base (time, peak) |\n|---|---|---|---|---|---|---|---|---|")
    for config in configs:
        base_time, base_peak = median(baseline, "base", config, "warm_s"), median(baseline, "base", config, "peak_gib")
        ours_base = median("ours", "base", config, "warm_s"), median("ours", "base", config, "peak_gib")
        for name in variants:
            warm, peak = median("ours", name, config, "warm_s"), median("ours", name, config, "peak_gib")
            print(f"| {config} | {name} | {base_time:.1f} | {warm:.1f} | {warm / base_time:.2f}x | {base_peak:.2f} | "
                  f"{peak:.2f} | {peak / base_peak:.2f}x | {warm / ours_base[0]:.2f}x, {peak / ours_base[1]:.2f}x |")


def long_inputs(args, assets: dict, minutes: list, folder: Path) -> None:
    """Peak memory of converting 1, 5, 10... minutes (the same speech repeated), one process each."""
    import numpy as np
    import soundfile

    speech, sr = soundfile.read(assets["wav"], dtype="float32")
    print(f"\nlong inputs: v2 40k f0 model, CPU float32, {args.threads} threads, base model")
    print("| config | minutes | time s (first call) | real-time factor | peak GiB |\n|---|---|---|---|---|")
    for config in args.configs.split(","):
        for length in minutes:
            wav = folder / f"speech_{length}min.wav"
            if not wav.exists():
                soundfile.write(wav, np.resize(speech, int(length * 60 * sr)), sr, subtype="PCM_16")
            job = dict(assets, wav=str(wav), impl="ours", f0=config.split("+")[0], with_index="+index" in config,
                       calls=1)  # one call: loading is in the peak either way, and 10 minutes take a while
            job.pop("adapters")
            record = spawn(job, args.threads, ROOT)
            print(f"| {config} | {length} | {record['warm_s']:.1f} | {record['warm_s'] / (length * 60):.2f} | "
                  f"{record['peak_gib']:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--configs", default="pm,rmvpe+index")
    parser.add_argument("--baseline", choices=["auto", "rvc", "previous"], default="auto")
    parser.add_argument("--previous", default=PREVIOUS, help="git revision of this project to compare with")
    parser.add_argument("--long", help="comma-separated input lengths in minutes: peak memory per length")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "assets").mkdir()
        # Made in a child process, so no measured process carries the cost of making them.
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            assets = pool.apply(make_assets, (folder / "assets", args.seconds))
        if args.long:
            long_inputs(args, assets, [float(m) for m in args.long.split(",")], folder)
            return
        baseline = args.baseline if args.baseline != "auto" else ("rvc" if os.environ.get("RVC_REF") else "previous")
        if baseline == "rvc" and not os.environ.get("RVC_REF"):
            raise SystemExit("--baseline rvc needs RVC's code: set RVC_REF to a folder with RVC's infer/ and configs/")
        path = ROOT
        if baseline == "previous":
            path = previous_checkout(args.previous, folder / "previous")
        side_by_side(args, assets, baseline, path)


if __name__ == "__main__":
    main()
