"""The one non-UI layer every command and tab stands on: which files there are and what a user's name
for one means, which index goes with a model or adapter, settings built from a user's values, the
converter and its lock, and the runner that keeps one long job (preparing, training) at a time.

The CLI and the tabs both hold a ``Workspace`` and call the same methods, so a name that works in the
browser works on the command line, and both refuse a bad value with the same one-line message.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Optional, Sequence

from .assets import Assets
from .errors import UserError, check_new_output
from .jobs import JobRunner

AUTO, NONE = "auto", "(none)"  # index choices: RVC's own pick for the model; no index at all
KINDS = {"model": "models", "adapter": "adapters", "index": "indices"}
OUTPUTS = {"model": ("weights", ".pth"), "adapter": ("adapters", ".safetensors"), "index": ("indices", ".index")}


class Workspace:
    """The asset folders, the device, a lazily built converter and its lock, and the job runner."""

    def __init__(self, assets: Optional[Assets] = None, device: Optional[str] = None,
                 hubert_path: Optional[str] = None):
        self.assets = assets or Assets.discover()
        self.device = device
        self.hubert_path = hubert_path
        # The converter swaps models and adapters in place: its users take turns.
        self.lock = threading.Lock()
        self._converter = None
        self.jobs = JobRunner()

    @classmethod
    def open(cls, assets_dir=None, rvc_root=None, device=None, hubert_path=None) -> "Workspace":
        """From user options: ``--assets``, ``--rvc-root`` (or ``RVC_ROOT``), ``--device``, ``--hubert``."""
        return cls(Assets.discover(assets_dir, rvc_root), device, hubert_path)

    @property
    def converter(self):
        """The one ``VoiceConverter`` (built on first use: it imports torch's model code)."""
        if self._converter is None:
            from .convert import VoiceConverter

            self._converter = VoiceConverter(self.assets, device=self.device, hubert_path=self.hubert_path)
        return self._converter

    @property
    def torch_device(self) -> str:
        """The device jobs run on: the one asked for, else CUDA when torch sees it, else the CPU."""
        if self.device:
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    # ----- datasets -----------------------------------------------------------------------------
    def dataset_target(self, base=None, sr=None, version=None, f0: bool = True):
        """What to prepare data for: the model ``base`` (a name or path), or a version and rate."""
        from .rvc.configs import layout
        from .train.prepare import Target

        if base not in (None, "", NONE):
            return Target.of_model(self.resolve(base, "model"))
        if sr in (None, "") or version in (None, ""):
            raise UserError("no target model", "give the base model (--base M.pth), or --sr and --version")
        try:
            rate = layout(str(version), sr).sr
        except ValueError as err:
            raise UserError(f"--version {version} --sr {sr}", str(err)) from None
        return Target(str(version), rate, bool(f0))

    def experiment_dir(self, name_or_path) -> Path:
        """A path as given, or a bare name inside the asset folders' experiments (RVC's logs/ with --rvc-root)."""
        text = str(name_or_path or "").strip()
        if not text:
            raise UserError("no experiment folder given", "name the experiment, e.g. my_voice")
        path = Path(text).expanduser()
        return path if path.is_absolute() or len(path.parts) > 1 else self.assets.experiments_dir / text

    def adapter_path(self, name_or_path) -> Path:
        """Where a new adapter goes: a path as given, or a bare name in our adapters folder (the Convert
        tab lists it there)."""
        return self.output_path(name_or_path, "adapter")

    def output_path(self, name_or_path, kind: str) -> Path:
        """Where a new adapter, model or index goes: a path as given, or a bare name in our folder for
        that kind (``adapters``, ``weights``, ``indices``), where every tab's picker finds it."""
        folder, suffix = OUTPUTS[kind]
        text = str(name_or_path or "").strip()
        if not text:
            raise UserError(f"no {kind} name given", f"name the {kind}, e.g. my_voice")
        path = Path(text).expanduser()
        if path.is_absolute() or len(path.parts) > 1:
            return path
        return self.assets.output_dir(folder) / (text if text.endswith(suffix) else text + suffix)

    def prepare_dataset(self, sources, out_dir, target, options=None, progress=None):
        """Run ``train.prepare`` with this workspace's HuBERT, pitch assets and device, in the job slot."""
        with self.jobs.exclusive(f"preparing {Path(out_dir).name}"):
            return self._prepare(sources, out_dir, target, options, progress)

    def _prepare(self, sources, out_dir, target, options=None, progress=None):
        from .train.prepare import PrepareOptions, prepare

        return prepare(sources, out_dir, target, options or PrepareOptions(),
                       hubert_path=self.assets.require_hubert(self.hubert_path),
                       assets_dir=self.assets.pitch_assets_dir(), device=self.torch_device, progress=progress)

    # ----- training -----------------------------------------------------------------------------
    def train(self, base, dataset, out, options=None, *, f0_method: str = "rmvpe", preview_clip=None,
              experiment=None, find_pretrained: bool = False, report=None, should_stop=None, prepare_progress=None):
        """Train on ``dataset`` (a prepared experiment folder, or recordings, which are prepared first into
        ``experiment``, by default the experiments folder under the output's name) and write ``out``.
        ``find_pretrained``: take RVC's pretrained G/D for the base from the asset folders where the options
        name none. Runs in the caller's thread; the Train tab runs it as a job (``start_training``)."""
        from .rvc.audio import load_audio
        from .train.preview import Previewer
        from .train.trainer import TrainOptions, Trainer, target_of_base

        options = options or TrainOptions()
        options.device = options.device or self.torch_device
        base_path = str(base) if str(base).startswith("new:") else str(self.resolve(base, "model"))
        out = Path(out).expanduser()
        sources = [Path(s).expanduser() for s in ([dataset] if isinstance(dataset, (str, Path)) else dataset)]
        target = target_of_base(base_path)
        if find_pretrained:
            found = [self.assets.pretrained(target.version, target.sr, target.f0, kind) for kind in "GD"]
            options.pretrained_g = options.pretrained_g or (str(found[0]) if found[0] else None)
            options.pretrained_d = options.pretrained_d or (str(found[1]) if found[1] else None)
        _check_output(out, options.mode, [base_path, options.pretrained_g, options.pretrained_d, *sources])
        if len(sources) == 1 and (sources[0] / "prepare.json").is_file():
            experiment = sources[0]
        else:
            from .train.prepare import PrepareOptions

            experiment = self.experiment_dir(experiment or out.stem)
            self._prepare(sources, experiment, target, PrepareOptions(f0_method=f0_method), prepare_progress)
        previews = None
        if options.mode == "lora" and not base_path.startswith("new:"):
            user_clip = load_audio(preview_clip, 16000) if preview_clip else None
            hubert = self.assets.require_hubert(self.hubert_path)

            def previews(clip16k, method):
                return Previewer(base_path, clip16k if user_clip is None else user_clip,
                                 out.with_name(out.name + ".training") / "previews", assets=self.assets,
                                 hubert_path=hubert, f0_method=method or "pm",
                                 f0_convention=options.f0_convention, device=options.device, seed=options.seed)
        return Trainer(experiment, base_path, out, options, report=report, should_stop=should_stop,
                       previews=previews).run()

    def start_training(self, base, dataset, out, options=None, **kwargs):
        """``train`` as a background job (one at a time); returns the ``Job`` the Train tab polls."""
        def work(job):
            def prepared(stage, done, total):  # the log gets each stage's start and end
                if done in (0, total):
                    job.add_note(f"{stage}: {done} of {total}")

            job.add_note(f"training {Path(out).name} on {Path(str(base)).name}")
            return self.train(base, dataset, out, options, report=job.report,
                              should_stop=lambda: job.cancel_requested, prepare_progress=prepared, **kwargs)

        return self.jobs.start(f"training {Path(out).name}", work)

    # ----- merging ------------------------------------------------------------------------------
    def bake(self, base, adapters: Sequence, out, *, merge_index: bool = False, index_out=None, **options):
        """``merge.bake`` on names or paths: the model goes to our weights folder under a bare name, and with
        ``merge_index`` the adapters' own indices are merged into ``index_out`` (default: indices/<name>.index,
        which RVC's auto-pick pairs with the model)."""
        from .merge import bake

        out = self.output_path(out, "model")
        indices = [index for index in (paired_index(path, self.assets.indices()) for path, strength in adapters
                                        if strength) if index is not None]
        if index_out or (merge_index and indices):
            index_out = self.output_path(index_out or out.stem, "index")
        result = bake(self.resolve(base, "model"), adapters, out, indices=indices, index_out=index_out, **options)
        if merge_index and not indices:
            result.lines.append("no index merged: none of the adapters has an index beside it")
        return result

    def probe(self, clip, model, adapters: Sequence = (), out=None) -> Path:
        """``clip`` converted by ``model`` plus ``adapters`` with RVC's defaults and no index (rmvpe where it
        can run, else the first pitch method that can), for a before/after listen; returns the wav."""
        import tempfile

        from .rvc.audio import save_audio
        from .rvc.pitch import available_methods

        methods = [s.name for s in available_methods(self.assets.pitch_assets_dir()) if s.available]
        settings = self.conversion_settings(f0_method="rmvpe" if "rmvpe" in methods else methods[0], seed=0)
        with self.lock:
            self.converter.load(model, adapters)
            result = self.converter.convert_file(clip, settings)
        out = out or Path(tempfile.mkdtemp(prefix="probe-")) / "probe.wav"
        return save_audio(out, result.audio, result.sr)

    # ----- names --------------------------------------------------------------------------------
    def choices(self, kind: str) -> dict:
        """{short name: path} of the models, adapters or indices in the asset folders, as pickers list them."""
        return short_names(getattr(self.assets, KINDS[kind])())

    def resolve(self, given, kind: str) -> Path:
        """A user's name for a file: a path as given, else a name a picker shows, else a file name or stem."""
        if given is None or str(given).strip() in ("", NONE):
            raise UserError(f"no {kind} chosen", f"pick one, or put {kind} files in the asset folders")
        given = str(given).strip()
        path = Path(given).expanduser()
        if path.exists():
            return path
        choices = self.choices(kind)
        if given in choices:
            return choices[given]
        matches = [p for p in choices.values() if given in (p.name, p.stem)]
        if matches:
            return matches[0]
        listed = ", ".join(list(choices)[:10]) or "none found"
        roots = ", ".join(str(root) for root in self.assets.roots)
        raise UserError(given, f"no such {kind} file, and no {kind} of that name in {roots} (there: {listed}); "
                               "give a path, or put the file there and refresh")

    def parse_adapter(self, spec: str, strength: float = 1.0) -> tuple:
        """``path[:strength]`` -> (path, strength); a trailing ``:number`` is the strength."""
        head, sep, tail = str(spec).rpartition(":")
        if sep:
            try:
                spec, strength = head, float(tail)
            except ValueError:
                pass
        return self.resolve(spec, "adapter"), float(strength)

    # ----- index pairing ------------------------------------------------------------------------
    def index_for(self, model_path, adapters: Sequence = ()) -> Optional[Path]:
        """The index that goes with a conversion: the first adapter's own (a trained adapter's index sits
        beside it under its name), else RVC's pick for the model (the first index naming its file stem)."""
        for adapter_path, strength in adapters:
            if strength:
                paired = paired_index(adapter_path, self.assets.indices())
                if paired is not None:
                    return paired
        return self.assets.index_for_model(model_path) if model_path is not None else None

    def resolve_index(self, given, model_path, adapters: Sequence = ()) -> Optional[Path]:
        """A user's index choice: ``auto`` (the paired one, if any), none, or a name or path."""
        if given is None or str(given).strip().lower() in ("", NONE, "none"):
            return None
        if str(given).strip().lower() == AUTO:
            return self.index_for(model_path, adapters)
        return self.resolve(given, "index")

    # ----- settings -----------------------------------------------------------------------------
    def conversion_settings(self, **values):
        """``ConversionSettings`` from a user's values (strings, floats from sliders, None for a default),
        each checked against the range RVC's UI allows; the first bad one is named in the error."""
        from .convert import ConversionSettings

        defaults = ConversionSettings()
        known = {field.name for field in dataclasses.fields(ConversionSettings)}
        chosen = {}
        for name, value in values.items():
            if name not in known:
                raise UserError(name, "not a conversion setting")
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            chosen[name] = _checked_setting(name, value, getattr(defaults, name))
        return dataclasses.replace(defaults, **chosen)


# The numbers RVC's UI lets a user set, (lowest, highest).
NUMBER_RANGES = {
    "speaker_id": (0, 108),
    "transpose": (-48, 48),
    "index_rate": (0.0, 1.0),
    "filter_radius": (0, 7),
    "protect": (0.0, 0.5),
    "rms_mix_rate": (0.0, 1.0),
    "resample_sr": (0, 192000),
}


def _checked_setting(name: str, value, default):
    if name == "index_path":
        return str(value)
    if name in ("f0_method", "f0_convention"):
        from .rvc.pitch import CONVENTIONS, METHODS

        allowed = METHODS if name == "f0_method" else CONVENTIONS
        if value not in allowed:
            raise UserError(f"{name} {value!r}", f"expected one of {', '.join(allowed)}")
        return value
    kind = int if isinstance(default, int) or name == "seed" else float
    try:
        number = float(value)
        if kind is int and number != int(number):
            raise ValueError
    except (TypeError, ValueError):
        raise UserError(f"{name} {value!r}", f"expected {'a whole number' if kind is int else 'a number'}") from None
    if name in NUMBER_RANGES:
        low, high = NUMBER_RANGES[name]
        if not low <= number <= high:
            raise UserError(f"{name} {value!r}", f"out of range; use {low} to {high}")
    return kind(number)


def paired_index(adapter_path, indices: Sequence) -> Optional[Path]:
    """An adapter's own index: ``<stem>.index`` beside it, else an index in the asset folders whose
    name holds the adapter's stem (the trainer writes both names)."""
    adapter_path = Path(adapter_path)
    beside = adapter_path.with_suffix(".index")
    if beside.is_file():
        return beside
    return next((Path(p) for p in indices if adapter_path.stem in Path(p).name), None)


def short_names(paths) -> dict:
    """{name: path}, each path named by the fewest trailing parts that tell it apart from the others:
    "voice.pth", or "rvc/assets/weights/voice.pth" when our assets hold a voice.pth as well."""
    paths = [Path(path) for path in paths]
    names = {}
    for path in paths:
        for depth in range(1, len(path.parts) + 1):
            tail = path.parts[-depth:]
            if sum(other.parts[-depth:] == tail for other in paths) == 1:
                break
        names[Path(*tail).as_posix()] = path
    return names


def _check_output(out: Path, mode: str, inputs) -> None:
    """The output must be a new kind of file for the mode and never one of the inputs."""
    lora = mode == "lora"
    check_new_output(out, ".safetensors" if lora else ".pth",
                     [given for given in inputs if given and not str(given).startswith("new:")],
                     f"{'an adapter' if lora else 'an RVC model'} in {mode} mode")
