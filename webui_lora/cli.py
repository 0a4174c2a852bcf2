"""``python -m webui_lora``: every UI action, scriptable.

    info PATH [--json]                 what a model, checkpoint, adapter, index or HuBERT is
    convert --model M --input IN... --output OUT [options]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import inspect_files
from .assets import Assets
from .rvc.pitch import CONVENTIONS


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webui_lora", description="RVC-LoRA: LoRA adapters for RVC.")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_info(commands)
    _add_convert(commands)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (OSError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _add_assets_options(parser) -> None:
    parser.add_argument("--assets", help="asset folder (default: ./assets of this project)")
    parser.add_argument("--rvc-root", help="an RVC WebUI folder whose assets to reuse (or set RVC_ROOT)")


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
    parser.add_argument("--hubert", help="HuBERT: hubert_base.pt or a transformers folder (default: from assets)")
    parser.add_argument("--f0-method", default="rmvpe")
    parser.add_argument("--transpose", type=float, default=0, help="semitones")
    parser.add_argument("--index", help="feature index (.index); default: none")
    parser.add_argument("--index-rate", type=float, default=0.75)
    parser.add_argument("--protect", type=float, default=0.33)
    parser.add_argument("--rms-mix-rate", type=float, default=0.25)
    parser.add_argument("--filter-radius", type=int, default=3)
    parser.add_argument("--resample-sr", type=int, default=0)
    parser.add_argument("--speaker-id", type=int, default=0)
    parser.add_argument("--f0-convention", choices=CONVENTIONS, default=CONVENTIONS[0])
    parser.add_argument("--format", choices=("wav", "flac", "mp3"), default="wav")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when present)")
    _add_assets_options(parser)
    parser.set_defaults(run=_run_convert)


def _run_convert(args) -> int:
    from tqdm import tqdm

    from .convert import ConversionSettings, VoiceConverter, expand_inputs
    from .rvc.audio import save_audio

    assets = Assets.discover(args.assets, args.rvc_root)
    converter = VoiceConverter(assets, device=args.device, hubert_path=args.hubert)
    model = resolve_file(args.model, assets.models(), "model")
    adapters = [parse_adapter(spec, assets) for spec in args.adapter]
    for message in converter.load(model, adapters):
        print(f"warning: {message}", file=sys.stderr)
    settings = ConversionSettings(
        speaker_id=args.speaker_id, transpose=args.transpose, f0_method=args.f0_method, index_path=args.index,
        index_rate=args.index_rate, filter_radius=args.filter_radius, protect=args.protect,
        rms_mix_rate=args.rms_mix_rate, resample_sr=args.resample_sr, f0_convention=args.f0_convention,
        seed=args.seed)
    output = Path(args.output)
    inputs = expand_inputs(args.input)
    if len(inputs) == 1 and output.suffix.lstrip(".").lower() in ("wav", "flac", "mp3"):
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


def resolve_file(given: str, known: list, what: str) -> Path:
    """A path as given, else a file in the asset folders with that name or stem."""
    path = Path(given).expanduser()
    if path.exists():
        return path
    matches = [p for p in known if given in (p.name, p.stem)]
    if matches:
        return matches[0]
    names = ", ".join(p.name for p in known[:10]) or "none found"
    raise FileNotFoundError(f"{given}: no such {what} file, and no {what} of that name in the assets ({names})")


def parse_adapter(spec: str, assets: Assets) -> tuple:
    """``path[:strength]`` -> (path, strength); a trailing ``:number`` is the strength."""
    path, strength = spec, 1.0
    head, sep, tail = spec.rpartition(":")
    if sep:
        try:
            path, strength = head, float(tail)
        except ValueError:
            pass
    return resolve_file(path, assets.adapters(), "adapter"), strength
