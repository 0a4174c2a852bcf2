"""``python -m webui_lora``: every UI action, scriptable.

    info PATH [--json]                 what a model, checkpoint, adapter, index or HuBERT is
    convert --model M --input IN... --output OUT [options]
    prepare --dataset DIR|ZIP|FILE... --out EXP (--base M.pth | --sr 40k --version v2 [--no-f0]) [options]
    train --base M.pth --dataset DIR|ZIP|EXP --out A.safetensors [options]
    merge --base M.pth --adapter A[:S]... --out OUT.pth     bake adapters into a stock RVC model
    merge-adapters --adapter A[:S]... --out A.safetensors --method cat|svd|ties|dare|dare-ties
    extract --base M.pth... --tuned V.pth --out A.safetensors (--rank R | --energy E)
    resize --adapter A --out B.safetensors (--rank R | --energy E)
    blend --model A.pth --model B.pth --ratio 0.5 --out C.pth
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import inspect_files
from .errors import user_message
from .rvc.audio import OUTPUT_FORMATS
from .rvc.pitch import CONVENTIONS
from .workspace import AUTO, Workspace


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webui_lora", description="RVC-LoRA: LoRA adapters for RVC.")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_info(commands)
    _add_convert(commands)
    _add_prepare(commands)
    _add_train(commands)
    _add_merge_commands(commands)
    _add_download(commands)
    _add_host_commands(commands)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except Exception as err:  # a user's bad file or value ends as one line; anything else is a bug
        message = user_message(err)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2


def _add_workspace_options(parser, device: bool = True) -> None:
    parser.add_argument("--assets", help="asset folder (default: ./assets of this project)")
    parser.add_argument("--rvc-root", help="an RVC WebUI folder whose assets to reuse (or set RVC_ROOT)")
    parser.add_argument("--hubert", help="HuBERT: hubert_base.pt or a transformers folder (default: from assets)")
    if device:
        parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when present)")


def _workspace(args) -> Workspace:
    return Workspace.open(args.assets, args.rvc_root, getattr(args, "device", None), args.hubert)


def _add_info(commands) -> None:
    parser = commands.add_parser("info", help="describe a model, checkpoint, adapter, index or HuBERT")
    parser.add_argument("path")
    parser.add_argument("--base", help="for an adapter: the model to check it against")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(run=_run_info)


def _run_info(args) -> int:
    facts = inspect_files.describe(args.path, args.base)
    if args.json:
        print(json.dumps(facts, indent=2, default=str))
    else:
        print(inspect_files.as_text(facts))
    return 0


def _add_convert(commands) -> None:
    parser = commands.add_parser("convert", help="convert audio files with a model plus adapters")
    parser.add_argument("--model", required=True, help="RVC .pth (a path, or a name in assets/weights)")
    parser.add_argument("--adapter", action="append", default=[], metavar="A.safetensors[:STRENGTH]",
                        help="an adapter and its strength (default 1); repeat for several")
    parser.add_argument("--input", nargs="+", required=True, help="audio files and/or folders")
    parser.add_argument("--output", required=True, help="output folder (or a file name for a single input)")
    parser.add_argument("--f0-method", default="rmvpe")
    parser.add_argument("--transpose", type=float, default=0, help="semitones")
    parser.add_argument("--index", default=AUTO,
                        help="feature index (.index path or name); 'auto' (default) takes the first adapter's "
                             "own index, else the one RVC pairs with the model; 'none' for no index")
    parser.add_argument("--index-rate", type=float, default=0.75)
    parser.add_argument("--protect", type=float, default=0.33)
    parser.add_argument("--rms-mix-rate", type=float, default=0.25)
    parser.add_argument("--filter-radius", type=int, default=3)
    parser.add_argument("--resample-sr", type=int, default=0)
    parser.add_argument("--speaker-id", type=int, default=0)
    parser.add_argument("--f0-convention", choices=CONVENTIONS, default=CONVENTIONS[0])
    parser.add_argument("--format", choices=OUTPUT_FORMATS, default="wav")
    parser.add_argument("--seed", type=int)
    _add_workspace_options(parser)
    parser.set_defaults(run=_run_convert)


def _run_convert(args) -> int:
    from tqdm import tqdm

    from .rvc.audio import audio_files, save_audio

    workspace = _workspace(args)
    model = workspace.resolve(args.model, "model")
    adapters = [workspace.parse_adapter(spec) for spec in args.adapter]
    index = workspace.resolve_index(args.index, model, adapters)
    settings = workspace.conversion_settings(
        speaker_id=args.speaker_id, transpose=args.transpose, f0_method=args.f0_method,
        index_path=index, index_rate=args.index_rate, filter_radius=args.filter_radius,
        protect=args.protect, rms_mix_rate=args.rms_mix_rate, resample_sr=args.resample_sr,
        f0_convention=args.f0_convention, seed=args.seed)
    converter = workspace.converter
    for message in converter.load(model, adapters):
        print(f"warning: {message}", file=sys.stderr)
    if index is not None:
        print(f"index: {index}")
    output = Path(args.output)
    inputs = audio_files(args.input)
    if len(inputs) == 1 and output.suffix.lstrip(".").lower() in OUTPUT_FORMATS:
        result = converter.convert_file(inputs[0], settings)
        save_audio(output, result.audio, result.sr)
        print(f"{inputs[0]} -> {output}")
        return 0
    with tqdm(total=len(inputs), unit="file", desc="converting") as bar:
        items = converter.convert_files(inputs, output, settings, args.format,
                                        progress=lambda done, total, item: bar.update(1))
    for item in items:
        print(f"{item.input} -> {item.output}" if item.error is None else f"FAILED {item.error}")
    failed = sum(item.error is not None for item in items)
    print(f"{len(items) - failed} converted, {failed} failed")
    return 1 if failed else 0


def _add_prepare(commands) -> None:
    parser = commands.add_parser("prepare", help="check a dataset and prepare it for training, as RVC does")
    parser.add_argument("--dataset", nargs="+", required=True, metavar="DIR|ZIP|FILE",
                        help="recordings: folders (searched recursively), zips and/or audio files")
    parser.add_argument("--out", required=True,
                        help="experiment folder (a bare name goes under the assets' experiments/, or RVC's logs/)")
    parser.add_argument("--base", help="the RVC model to train on: its version, rate and f0 decide the preparation")
    parser.add_argument("--sr", help="without --base: 32k, 40k or 48k")
    parser.add_argument("--version", choices=("v1", "v2"), help="without --base: v1 (256-d) or v2 (768-d) features")
    parser.add_argument("--no-f0", action="store_true", help="without --base: for a model without pitch")
    parser.add_argument("--f0-method", default="rmvpe", help="pitch method for the f0 files (default rmvpe, RVC's)")
    parser.add_argument("--index", action=argparse.BooleanOptionalAction, default=True,
                        help="build the faiss index of the features (default: yes)")
    parser.add_argument("--speaker-id", type=int, default=0, help="speaker id written into the filelist")
    parser.add_argument("--workers", type=int, help="f0 processes (default: CPUs - 1)")
    parser.add_argument("--zip-limit", type=float, default=4.0, help="GiB a zip may unpack to (default 4)")
    parser.add_argument("--report-only", action="store_true", help="print the QA report and prepare nothing")
    parser.add_argument("--json", action="store_true", help="print the report and what was done as JSON")
    _add_workspace_options(parser)
    parser.set_defaults(run=_run_prepare)


def _run_prepare(args) -> int:
    from tqdm import tqdm

    from .train.prepare import PrepareOptions, dataset_report

    workspace = _workspace(args)
    target = workspace.dataset_target(args.base, args.sr, args.version, not args.no_f0)
    out = workspace.experiment_dir(args.out)
    zip_limit = int(args.zip_limit * 1024 ** 3)
    bars = {}

    def progress(stage, done, total):
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=f"{stage:>8}", unit="file" if stage == "read" else "piece",
                                     disable=args.json)
        bar.n = done
        bar.refresh()

    try:
        if args.report_only:
            report = dataset_report(args.dataset, target, out / "sources", zip_limit, progress=progress)
            summary = None
        else:
            options = PrepareOptions(f0_method=args.f0_method, index=args.index, speaker_id=args.speaker_id,
                                     workers=args.workers, zip_limit=zip_limit)
            result = workspace.prepare_dataset(args.dataset, out, target, options, progress)
            report, summary = result.report, result
    finally:
        for bar in bars.values():
            bar.close()
    if args.json:
        facts = {"target": target.describe(), "report": report.as_dict()}
        if summary is not None:
            facts.update(experiment=str(summary.experiment.root), filelist=str(summary.experiment.filelist),
                         index=str(summary.index) if summary.index else None, computed=dict(summary.done),
                         reused=dict(summary.reused))
        print(json.dumps(facts, indent=2, default=str))
        return 0
    print(f"Dataset for a {target.describe()} model\n")
    print(report.as_markdown())
    if summary is not None:
        print()
        print(summary.summary())
    return 0


def _add_train(commands) -> None:
    from .train.setup import D_MODES, DEFAULT_PRESET, MODES, PRESETS

    parser = commands.add_parser("train", help="train a LoRA adapter (or the whole model) with RVC's objective",
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="presets:\n" + "\n".join(f"  {name:9} {text}" for name, (_, text)
                                                                  in PRESETS.items()))
    parser.add_argument("--base", required=True,
                        help="RVC model to adapt (.pth: small model, G_*.pth or pretrained base), or new:v2-40k-f0")
    parser.add_argument("--dataset", nargs="+", required=True, metavar="DIR|ZIP|EXP",
                        help="a prepared experiment folder, or recordings (prepared first, with the cache)")
    parser.add_argument("--out", required=True, help="the adapter (.safetensors), or the model (.pth) with --mode full")
    parser.add_argument("--pretrained-g", help="RVC's pretrained G of the same version/rate/f0, for enc_q")
    parser.add_argument("--pretrained-d", help="RVC's pretrained D of the same version (default: a fresh one)")
    parser.add_argument("--find-pretrained", action="store_true",
                        help="take RVC's pretrained G/D for the base from the asset folders (pretrained_v2/f0G40k.pth)")
    parser.add_argument("--d-mode", choices=D_MODES, default="full",
                        help="train the discriminator fully (RVC), through LoRA, not at all, or leave it out")
    parser.add_argument("--d-width", type=int, default=1, help="a fresh discriminator's channel divisor (RVC: 1)")
    parser.add_argument("--preset", choices=list(PRESETS), default=DEFAULT_PRESET, help="which layers get LoRA")
    parser.add_argument("--targets", nargs="+", metavar="PATTERN", help="module names or patterns instead of a preset")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--alpha", type=float, help="LoRA alpha (default: the rank)")
    parser.add_argument("--rslora", action="store_true", help="scale by alpha/sqrt(rank)")
    parser.add_argument("--rank-pattern", nargs="+", default=[], metavar="REGEX=RANK",
                        help="per-module ranks, e.g. dec.ups=16")
    parser.add_argument("--train-speaker", action="store_true",
                        help="also learn the dataset speaker's row of the speaker table (256 numbers)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, help="epochs (default 20, RVC's)")
    length.add_argument("--steps", type=int, help="optimiser steps instead of epochs")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, help="learning rate (default 1e-3 for adapters, 1e-4 in full mode)")
    parser.add_argument("--f0-method", default="rmvpe", help="pitch method when the dataset still needs preparing")
    parser.add_argument("--f0-convention", choices=CONVENTIONS, default=CONVENTIONS[0])
    parser.add_argument("--save-every", type=int, default=100, help="steps between checkpoints")
    parser.add_argument("--preview-every", type=int, default=5, help="epochs between preview conversions (0: end)")
    parser.add_argument("--preview-clip", help="audio to preview on (default: a held-out piece of the dataset)")
    parser.add_argument("--holdout", type=int, default=1, help="pieces kept out of training for previews")
    parser.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    parser.add_argument("--mode", choices=MODES, default="lora", help="lora (default), or full fine-tuning")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    _add_workspace_options(parser)
    parser.set_defaults(run=_run_train)


def _run_train(args) -> int:
    import signal
    import threading

    from tqdm import tqdm

    from .train.setup import AdapterSpec
    from .train.trainer import TrainOptions

    spec = AdapterSpec(preset=None if args.targets else args.preset, targets=args.targets, rank=args.rank,
                       alpha=args.alpha, rslora=args.rslora, rank_pattern=_rank_pattern(args.rank_pattern),
                       train_speaker=args.train_speaker)
    options = TrainOptions(mode=args.mode, adapter=spec, d_mode=args.d_mode, pretrained_g=args.pretrained_g,
                           pretrained_d=args.pretrained_d, d_width=args.d_width, epochs=args.epochs, steps=args.steps,
                           batch_size=args.batch_size, lr=args.lr, seed=args.seed, save_every=args.save_every,
                           preview_every=args.preview_every, holdout=args.holdout, f0_convention=args.f0_convention,
                           device=args.device, resume=args.resume)
    stop = threading.Event()

    def interrupted(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nstopping after this step and saving a checkpoint (Ctrl-C again to quit at once)", file=sys.stderr)

    bar = None

    def report(progress):
        nonlocal bar
        if bar is None:
            bar = tqdm(total=progress.total_steps, initial=progress.step, unit="step", desc="training",
                       disable=args.json)
        if progress.message:
            bar.write(progress.message, file=sys.stderr)
        bar.n = progress.step
        bar.set_postfix({k: f"{v:.3g}" for k, v in progress.losses.items()}, refresh=True)

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        result = _workspace(args).train(args.base, args.dataset, args.out, options, f0_method=args.f0_method,
                                        preview_clip=args.preview_clip, find_pretrained=args.find_pretrained,
                                        report=report, should_stop=stop.is_set)
    finally:
        signal.signal(signal.SIGINT, previous)
        if bar is not None:
            bar.close()
    facts = {"output": None if result.stopped else str(result.output), "index": str(result.index) if result.index
             else None, "steps": result.steps, "epochs": result.epochs, "final_losses": result.losses,
             "heldout_mel": result.heldout_mel, "trainable_parameters": result.trainable, "stopped": result.stopped,
             "previews": [[e, str(a), str(b)] for e, a, b in result.previews]}
    if args.json:
        print(json.dumps(facts, indent=2))
    elif result.stopped:
        print(f"stopped at step {result.steps}; the checkpoint is saved: run the same command with --resume")
    else:
        print(f"{result.output} ({result.output.stat().st_size:,} bytes) after {result.steps} steps, "
              f"{result.epochs} epochs" + (f"; index {result.index}" if result.index else ""))
    return 130 if result.stopped else 0


def _rank_pattern(entries) -> dict:
    from .errors import UserError

    patterns = {}
    for entry in entries:
        pattern, sep, rank = entry.rpartition("=")
        if not sep or not rank.isdigit() or int(rank) < 1:
            raise UserError(f"--rank-pattern {entry}", "expected REGEX=RANK with a positive whole rank, e.g. dec.ups=16")
        patterns[pattern] = int(rank)
    return patterns


def _add_merge_commands(commands) -> None:
    from .merge import COMBINE_METHODS, STYLES

    def size_options(parser, required: bool):
        size = parser.add_mutually_exclusive_group(required=required)
        size.add_argument("--rank", type=int, help="rank per layer")
        size.add_argument("--energy", type=float, help="per layer, the smallest rank keeping this share (0-1]")

    def common(parser, run, model_out: bool):
        if model_out:
            parser.add_argument("--style", choices=STYLES, default=STYLES[0],
                                help="weight-norm keys: legacy (RVC, default) or parametrized (Applio)")
            parser.add_argument("--info", help="the model's info text (default: what it was made from)")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        _add_workspace_options(parser, device=False)
        parser.set_defaults(run=run)

    adapter_help = "an adapter and its strength (default 1; negative allowed); repeat for several"
    parser = commands.add_parser("merge", help="bake a base plus adapters into a stock RVC .pth")
    parser.add_argument("--base", required=True, help="the RVC model the adapters were made for")
    parser.add_argument("--adapter", action="append", required=True, metavar="A.safetensors[:STRENGTH]",
                        help=adapter_help)
    parser.add_argument("--out", required=True, help="the new model (.pth; a bare name goes into assets/weights)")
    parser.add_argument("--index-out", help="also merge the adapters' own indices into this .index")
    common(parser, _run_merge, model_out=True)

    parser = commands.add_parser("merge-adapters", help="combine adapters of one base into one adapter")
    parser.add_argument("--adapter", action="append", required=True, metavar="A.safetensors[:STRENGTH]",
                        help=adapter_help)
    parser.add_argument("--out", required=True, help="the new adapter (.safetensors)")
    parser.add_argument("--method", choices=list(COMBINE_METHODS), default="cat",
                        help="cat: exact, ranks add up (default); svd/ties/dare/dare-ties re-factor to --rank/--energy")
    size_options(parser, required=False)
    parser.add_argument("--density", type=float, default=0.5, help="ties/dare: share of entries kept (default 0.5)")
    parser.add_argument("--seed", type=int, default=0, help="dare: the random drop's seed")
    common(parser, _run_merge_adapters, model_out=False)

    parser = commands.add_parser("extract", help="turn a fine-tuned RVC voice into an adapter against its base")
    parser.add_argument("--base", nargs="+", required=True, metavar="M.pth",
                        help="the base it was tuned from; several: the closest is chosen and reported")
    parser.add_argument("--tuned", required=True, help="the fine-tuned voice (.pth)")
    parser.add_argument("--out", required=True, help="the adapter (.safetensors)")
    size_options(parser, required=True)
    parser.add_argument("--min-change", type=float, default=1e-3,
                        help="layers that changed by less than this share of their norm are left out")
    common(parser, _run_extract, model_out=False)

    parser = commands.add_parser("resize", help="re-factor an adapter to a lower rank or energy share")
    parser.add_argument("--adapter", required=True)
    parser.add_argument("--out", required=True, help="the smaller adapter (.safetensors)")
    size_options(parser, required=True)
    common(parser, _run_resize, model_out=False)

    parser = commands.add_parser("blend", help="blend two RVC models of one architecture (RVC's fusion, done right)")
    parser.add_argument("--model", action="append", required=True, metavar="M.pth", help="give exactly two")
    parser.add_argument("--ratio", type=float, default=0.5, help="the first model's share (0-1, default 0.5)")
    parser.add_argument("--out", required=True, help="the blended model (.pth)")
    common(parser, _run_blend, model_out=True)


def _print_result(args, result) -> int:
    if args.json:
        print(json.dumps({"output": str(result.output), "index": str(result.index) if result.index else None,
                          "report": result.lines, "energy": result.energy}, indent=2))
    else:
        print(result.report())
    return 0


def _run_merge(args) -> int:
    workspace = _workspace(args)
    adapters = [workspace.parse_adapter(spec) for spec in args.adapter]
    return _print_result(args, workspace.bake(args.base, adapters, args.out, index_out=args.index_out,
                                              style=args.style, info=args.info))


def _run_merge_adapters(args) -> int:
    from .merge import combine

    workspace = _workspace(args)
    adapters = [workspace.parse_adapter(spec) for spec in args.adapter]
    return _print_result(args, combine(adapters, workspace.output_path(args.out, "adapter"), method=args.method,
                                       rank=args.rank, energy=args.energy, density=args.density, seed=args.seed))


def _run_extract(args) -> int:
    from tqdm import tqdm

    from .merge import extract

    workspace = _workspace(args)
    bars = []

    def progress(done, total, text):  # the bar starts with the first layer, after the inputs are checked
        if not bars:
            bars.append(tqdm(total=total, unit="layer", desc="extracting", disable=args.json))
        bars[0].n = done
        bars[0].refresh()

    try:
        result = extract([workspace.resolve(base, "model") for base in args.base],
                         workspace.resolve(args.tuned, "model"), workspace.output_path(args.out, "adapter"),
                         rank=args.rank, energy=args.energy, min_change=args.min_change, progress=progress)
    finally:
        for bar in bars:
            bar.close()
    return _print_result(args, result)


def _run_resize(args) -> int:
    from .merge import resize

    workspace = _workspace(args)
    return _print_result(args, resize(workspace.resolve(args.adapter, "adapter"),
                                      workspace.output_path(args.out, "adapter"), rank=args.rank, energy=args.energy))


def _run_blend(args) -> int:
    from .errors import UserError
    from .merge import blend

    if len(args.model) != 2:
        raise UserError(f"--model given {len(args.model)} times", "give exactly two models to blend")
    workspace = _workspace(args)
    first, second = (workspace.resolve(model, "model") for model in args.model)
    return _print_result(args, blend(first, second, args.ratio, workspace.output_path(args.out, "model"),
                                     style=args.style, info=args.info))


def _add_download(commands) -> None:
    from .download import ASSETS, DEFAULT, SOURCE

    parser = commands.add_parser("download-assets", help="fetch RVC's standard assets (HuBERT, RMVPE, pretrained)")
    parser.add_argument("--only", help=f"comma-separated, from {', '.join(ASSETS)} (default: {','.join(DEFAULT)})")
    parser.add_argument("--dest", help="the asset folder to fill (default: ./assets of this project)")
    parser.add_argument("--source", default=SOURCE, help="the model repository's download address")
    parser.add_argument("--timeout", type=float, default=30, help="seconds to wait for the server (default 30)")
    parser.set_defaults(run=_run_download)


def _run_download(args) -> int:
    from tqdm import tqdm

    from .assets import DEFAULT_ASSETS
    from .download import download_assets, select

    names = select(args.only)
    bars = {}

    def progress(done, total, name):
        bar = bars.get(name)
        if bar is None:
            bar = bars[name] = tqdm(total=total, initial=done, unit="B", unit_scale=True, desc=name)
        bar.update(done - bar.n)

    try:
        lines = download_assets(names, Path(args.dest) if args.dest else DEFAULT_ASSETS, source=args.source,
                                timeout=args.timeout, progress=progress)
    finally:
        for bar in bars.values():
            bar.close()
    print("\n".join(lines))
    return 0


def _add_host_commands(commands) -> None:
    parser = commands.add_parser("install", help="add our tabs to an RVC WebUI (one hook line in webui.py / infer-web.py)")
    parser.add_argument("rvc_dir", help="the RVC WebUI folder")
    parser.add_argument("--python", help="the host's Python (default: its venv or runtime folder, else this one)")
    parser.add_argument("--check-only", action="store_true",
                        help="say which of our requirements the host lacks instead of installing them")
    parser.set_defaults(run=_run_install)
    parser = commands.add_parser("uninstall", help="take the hook out of an RVC WebUI again (the file as it was)")
    parser.add_argument("rvc_dir", help="the RVC WebUI folder")
    parser.set_defaults(run=_run_uninstall)


def _run_install(args) -> int:
    from .host import install

    print("\n".join(install(args.rvc_dir, python=args.python, packages=not args.check_only)))
    return 0


def _run_uninstall(args) -> int:
    from .host import uninstall

    print("\n".join(uninstall(args.rvc_dir)))
    return 0
