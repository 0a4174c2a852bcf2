"""``python -m webui_lora``: every UI action, scriptable.

    info PATH [--json]                 what a model, checkpoint, adapter, index or HuBERT is
    convert --model M --input IN... --output OUT [options]
    prepare --dataset DIR|ZIP|FILE... --out EXP (--base M.pth | --sr 40k --version v2 [--no-f0]) [options]
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
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(run=_run_info)


def _run_info(args) -> int:
    facts = inspect_files.describe(args.path)
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
