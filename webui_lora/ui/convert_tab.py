"""The Convert tab: audio files in; converted audio, a pitch plot and a report out. One RVC model, up to
four LoRA adapters with their strengths, and RVC's conversion settings with RVC's defaults.

``build_convert_tab`` creates the components inside whatever Blocks/Tab the caller has open, so the
same tab mounts in RVC's WebUI. Handlers return ``{component: value}`` so each one names what it
changes, and they call the converter the CLI calls.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import gradio as gr
import numpy as np
from matplotlib.figure import Figure

from ..convert import ConversionSettings
from ..errors import UserError, describe_error
from ..rvc.audio import OUTPUT_FORMATS
from ..rvc.pitch import CONVENTIONS, available_methods
from ..workspace import AUTO, NONE
from . import compat

ADAPTER_SLOTS = 4  # gradio 3 cannot add components once the page is built
KEPT_RUNS = 20  # conversions whose output folders stay on disk; older ones are deleted
DEFAULTS = ConversionSettings()

log = logging.getLogger(__name__)


def build_convert_tab(workspace, output_dir=None) -> "ConvertTab":
    """Create the Convert tab in the caller's open Blocks/Tab and wire its events. ``workspace`` (a
    ``Workspace``) lists the models, adapters and indices and holds the converter and the device lock;
    converted files go to a new folder under ``output_dir`` (default: the system temp folder) per conversion."""
    return ConvertTab(workspace, output_dir)


class ConvertTab:
    """The tab's components and the handlers behind them."""

    def __init__(self, workspace, output_dir=None):
        self.workspace = workspace
        self.output_dir = Path(output_dir or Path(tempfile.gettempdir()) / "rvc_lora_outputs")
        self._build()
        self._wire()

    # ----- layout ---------------------------------------------------------------------------------
    def _build(self):
        models = list(self._models())
        model = models[0] if models else None
        view = {**self._model_view(model, [NONE] * ADAPTER_SLOTS), **self._index_view(),
                **self._method_view(DEFAULTS.f0_method)}
        file_backed = compat.supported(gr.Dropdown, allow_custom_value=True)  # API clients may name newer files
        with gr.Row():
            with gr.Column():
                self.files = gr.File(label="Audio to convert: drop one or many files", file_count="multiple",
                                     file_types=["audio"], elem_id="lora_convert_files")
                with gr.Row():
                    self.model = gr.Dropdown(label="RVC model", choices=models, value=model, **file_backed,
                                             **compat.supported(gr.Dropdown, scale=3))
                    self.refresh_button = gr.Button("Refresh lists",
                                                    **compat.supported(gr.Button, size="sm", scale=1))
                self.model_info = gr.Markdown(**view["model_info"])
                self.speaker = gr.Slider(minimum=0, step=1, label="Speaker id", **view["speaker"])
                gr.Markdown("**LoRA adapters**: only those that fit the model are offered; "
                            "strength 1 is the adapter as trained, 0 turns it off, negative inverts it.")
                self.adapters, self.strengths = [], []
                for slot in range(1, ADAPTER_SLOTS + 1):
                    with gr.Row():
                        self.adapters.append(gr.Dropdown(label=f"Adapter {slot}", **view[f"adapter_{slot}"],
                                                         **file_backed))
                        self.strengths.append(gr.Slider(minimum=-2, maximum=2, value=1, step=0.05,
                                                        label=f"Strength {slot}"))
                self.adapter_note = gr.Markdown(**view["adapter_note"])
            with gr.Column():
                with gr.Column(**view["pitch_controls"]) as self.pitch_controls:
                    self.transpose = gr.Slider(minimum=-24, maximum=24, value=DEFAULTS.transpose, step=1,
                                               label="Transpose (semitones; 12 = an octave up, -12 = down)")
                    self.f0_method = gr.Dropdown(label="Pitch (f0) method", **view["f0_method"], elem_id="lora_convert_f0")
                    self.method_note = gr.Markdown(**view["method_note"])
                    self.f0_convention = gr.Radio(
                        choices=list(CONVENTIONS), value=DEFAULTS.f0_convention,
                        label="Unvoiced frames: classic = silent (RVC up to 2024), interpolated (RVC 2026)")
                    self.filter_radius = gr.Slider(minimum=0, maximum=7, value=DEFAULTS.filter_radius, step=1,
                                                   label="Filter radius (harvest: 3 or more smooths the pitch)")
                    self.protect = gr.Slider(
                        minimum=0, maximum=0.5, value=DEFAULTS.protect, step=0.01,
                        label="Protect consonants and breaths (lower protects more; 0.5 = off)")
                self.index = gr.Dropdown(label="Feature index (auto: the first adapter's own, else the model's)",
                                         **view["index"], **file_backed)
                self.index_rate = gr.Slider(minimum=0, maximum=1, value=DEFAULTS.index_rate, step=0.01,
                                            label="Index rate (how much of the index's timbre to use)")
                self.rms_mix_rate = gr.Slider(
                    minimum=0, maximum=1, value=DEFAULTS.rms_mix_rate, step=0.01,
                    label="Volume envelope (0 = follow the input's loudness, 1 = keep the model's)")
                self.resample_sr = gr.Slider(minimum=0, maximum=48000, value=DEFAULTS.resample_sr, step=1,
                                             label="Resample the output to (Hz; 0 = the model's rate)")
                self.audio_format = gr.Radio(choices=list(OUTPUT_FORMATS), value=OUTPUT_FORMATS[0],
                                             label="Output format")
                self.convert_button = gr.Button("Convert", variant="primary")
        with gr.Row():
            with gr.Column():
                self.output_choice = gr.Dropdown(label="Listen to", choices=[], visible=False)
                self.player = gr.Audio(label="Converted audio", type="filepath", interactive=False)
                self.downloads = gr.File(label="Download", file_count="multiple", interactive=False,
                                         elem_id="lora_convert_downloads")
            with gr.Column():
                self.pitch_plot = gr.Plot(label="Pitch", elem_id="lora_convert_pitch")
                self.report = gr.Textbox(label="Report", lines=8, interactive=False, elem_id="lora_convert_report")
        self.results = gr.State({})
        self._by_key = {
            "model": self.model, "model_info": self.model_info, "speaker": self.speaker,
            "adapter_note": self.adapter_note, "pitch_controls": self.pitch_controls, "index": self.index,
            "f0_method": self.f0_method, "method_note": self.method_note,
            **{f"adapter_{slot}": dropdown for slot, dropdown in enumerate(self.adapters, 1)},
        }

    def _wire(self):
        model_outputs = [self.model_info, self.speaker, *self.adapters, self.adapter_note, self.pitch_controls,
                         self.index]
        compat.on(compat.user_edit(self.model), self.select_model, [self.model, *self.adapters], model_outputs,
                  "lora_select_model")
        compat.on(self.refresh_button.click, self.refresh, [self.model, self.index, self.f0_method, *self.adapters],
                  [self.model, self.f0_method, self.method_note, *model_outputs], "lora_refresh")
        named_inputs = [
            ("audio_files", self.files), ("model", self.model), ("speaker_id", self.speaker),
            ("transpose", self.transpose), ("f0_method", self.f0_method), ("f0_convention", self.f0_convention),
            ("filter_radius", self.filter_radius), ("index", self.index), ("index_rate", self.index_rate),
            ("protect", self.protect), ("rms_mix_rate", self.rms_mix_rate), ("resample_sr", self.resample_sr),
            ("audio_format", self.audio_format),
        ]
        for slot, (adapter, strength) in enumerate(zip(self.adapters, self.strengths), 1):
            named_inputs += [(f"adapter_{slot}", adapter), (f"strength_{slot}", strength)]
        compat.on(self.convert_button.click, compat.progress_handler(self.convert, [n for n, _ in named_inputs]),
                  [component for _, component in named_inputs],
                  [self.output_choice, self.player, self.downloads, self.pitch_plot, self.report, self.results],
                  "lora_convert")
        compat.on(compat.user_edit(self.output_choice), self.show_output, [self.output_choice, self.results],
                  [self.player, self.pitch_plot], "lora_show_output")

    # ----- handlers -------------------------------------------------------------------------------
    def select_model(self, model, *adapters):
        """A new model: its facts, the adapters that fit it, and the index back on auto."""
        return self._updates({**self._model_view(model, adapters), **self._index_view()})

    def refresh(self, model, index, f0_method, *adapters):
        """Look at the asset folders again, keeping each choice that still exists."""
        models = list(self._models())
        shown = model if model in models else (models[0] if models else None)
        return self._updates({"model": {"choices": models, "value": shown}, **self._method_view(f0_method),
                              **self._model_view(shown, adapters),
                              **self._index_view(keep=index if shown == model else None)})

    def convert(self, files, model, speaker_id, transpose, f0_method, f0_convention, filter_radius, index,
                index_rate, protect, rms_mix_rate, resample_sr, audio_format, *adapter_slots,
                report=lambda done, total, text: None):
        """Convert each uploaded file; a file that fails is reported and the others go on.
        ``adapter_slots`` alternates adapter name and strength, one pair per slot."""
        uploads = compat.uploaded_files(files)
        try:
            if not uploads:
                raise UserError("no audio yet", "drop one or more audio files into the box above")
            workspace = self.workspace
            model_path = workspace.resolve(model, "model")
            adapters = [workspace.parse_adapter(name, strength)
                        for name, strength in zip(adapter_slots[::2], adapter_slots[1::2]) if name not in (None, NONE)]
            index_path = workspace.resolve_index(index, model_path, adapters)
            settings = workspace.conversion_settings(
                speaker_id=speaker_id, transpose=transpose, f0_method=f0_method, index_path=index_path,
                index_rate=index_rate,
                filter_radius=filter_radius, protect=protect, rms_mix_rate=rms_mix_rate, resample_sr=resample_sr,
                f0_convention=f0_convention)
            with workspace.lock:
                warnings = workspace.converter.load(model_path, adapters)
                results, lines = self._convert_uploads(uploads, settings, audio_format, report)
        except Exception as err:  # shown to the user, never a stack trace
            return self._show_results({}, [f"Nothing converted: {describe_error(err, log)}"])
        used = ", ".join(f"{Path(path).name} x{strength:g}" for path, strength in adapters) or "no adapters"
        index_used = f"index {Path(index_path).name}" if index_path else "no index"
        return self._show_results(results, [f"{Path(model_path).name} with {used}, {index_used}", *lines,
                                            *(f"Warning: {text}" for text in warnings)])

    def show_output(self, name, results):
        """Play and plot one of the files the last conversion made."""
        item = (results or {}).get(name)
        if item is None:
            return {self.player: None, self.pitch_plot: None}
        return {self.player: item["path"], self.pitch_plot: pitch_figure(item["input_f0"], item["f0"], name)}

    # ----- conversion -----------------------------------------------------------------------------
    def _convert_uploads(self, uploads, settings, audio_format, report):
        self.output_dir.mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix="convert-", dir=self.output_dir))
        _prune_runs(self.output_dir, KEPT_RUNS)
        report(0, len(uploads), f"Converting {len(uploads)} file(s)")
        items = self.workspace.converter.convert_files(
            [path for path, _ in uploads], run_dir, settings, audio_format, names=[name for _, name in uploads],
            progress=lambda done, total, item: report(done, total, f"Converted {done} of {total}"))
        results, lines = {}, []
        for item, (_, name) in zip(items, uploads):
            if item.error is not None:
                lines.append(f"{name}: failed: {item.error}")
                continue
            result = item.result
            results[item.output.name] = {"path": str(item.output), "input_f0": result.input_f0, "f0": result.f0}
            stages = ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in result.timings.items())
            lines.append(f"{name} -> {item.output.name}: {len(result.audio) / result.sr:.2f} s at {result.sr} Hz "
                         f"({stages})" + ("" if result.f0 is not None else "; a no-f0 model has no pitch to plot"))
            lines += [f"Warning: {text}" for text in result.warnings]
        return results, lines

    def _show_results(self, results, lines):
        names = list(results)
        first = names[0] if names else None
        shown = self.show_output(first, results)
        return {
            self.output_choice: compat.update(choices=names, value=first, visible=len(names) > 1),
            self.player: shown[self.player],
            self.downloads: [item["path"] for item in results.values()] or None,
            self.pitch_plot: shown[self.pitch_plot],
            self.report: "\n".join(lines),
            self.results: results,
        }

    # ----- what the lists show --------------------------------------------------------------------
    def _models(self) -> dict:
        return self.workspace.choices("model")

    def _model_view(self, model, adapters) -> dict:
        """Facts about ``model``, the adapters that fit it (keeping the chosen ones that still do), and
        whether its pitch controls apply."""
        view = {"speaker": {"maximum": 1, "value": 0, "visible": False}, "pitch_controls": {"visible": True},
                "adapter_note": {"value": ""}}
        fitting = {}
        if model is None:
            view["model_info"] = {"value": "No RVC model found yet.\n\n" + self.workspace.assets.missing_help()}
        else:
            try:
                with self.workspace.lock:
                    converter = self.workspace.converter
                    compatible = converter.compatible_adapters(self.workspace.resolve(model, "model"))
                    loaded = converter.model
            except Exception as err:  # shown to the user, never a stack trace
                view["model_info"] = {"value": f"**Cannot use this model:** {describe_error(err, log)}"}
            else:
                names = {path: name for name, path in self.workspace.choices("adapter").items()}
                fitting = {names[path]: note for path, note in compatible if path in names}
                speakers = loaded.speakers
                view["model_info"] = {"value": f"RVC {loaded.version}, {loaded.sr} Hz, "
                                               f"{'with pitch (f0)' if loaded.f0 else 'no pitch (no-f0)'}, "
                                               f"{speakers} speaker{'s' if speakers != 1 else ''}"}
                view["speaker"] = {"maximum": max(speakers - 1, 1), "value": 0, "visible": speakers > 1}
                view["pitch_controls"] = {"visible": loaded.f0}
                notes = [f"- {name}: {note}" for name, note in fitting.items() if note]
                view["adapter_note"] = {"value": "\n".join(notes)}
        for slot, chosen in enumerate(adapters, 1):
            view[f"adapter_{slot}"] = {"choices": [NONE, *fitting], "value": chosen if chosen in fitting else NONE}
        return view

    def _index_view(self, keep=None) -> dict:
        """The index list: ``keep`` if it still exists, else auto (the first adapter's own index, else
        the one RVC picks for the model; the report names the one used)."""
        indices = self.workspace.choices("index")
        return {"index": {"choices": [AUTO, NONE, *indices], "value": keep if keep in indices or keep == NONE
                          else AUTO}}

    def _method_view(self, current) -> dict:
        """The pitch methods that can run here (RVC's default first choice); the others with the reason."""
        statuses = available_methods(self.workspace.assets.pitch_assets_dir())
        usable = [status.name for status in statuses if status.available]
        preferred = [name for name in (current, DEFAULTS.f0_method) if name in usable] + usable
        missing = [f"- {status.name}: {status.reason}" for status in statuses if not status.available]
        return {"f0_method": {"choices": usable, "value": preferred[0] if preferred else None},
                "method_note": {"value": "Not available here:\n" + "\n".join(missing) if missing else ""}}

    def _updates(self, view: dict) -> dict:
        return {self._by_key[key]: compat.update(**props) for key, props in view.items()}


def pitch_figure(input_f0, model_f0, title):
    """The input's f0 and the f0 fed to the model (transposed), per 10 ms frame, with gaps where unvoiced
    (the interpolated convention fills those). None for a no-f0 model, which gets no pitch."""
    if model_f0 is None:
        return None
    figure = Figure(figsize=(7, 3), layout="tight")  # not pyplot: handlers run on worker threads
    axes = figure.add_subplot()
    for f0, label, style in ((input_f0, "input", dict(color="0.75", linewidth=4)),
                             (model_f0, "fed to the model", dict(color="tab:orange", linewidth=1.5))):
        f0 = np.asarray(f0, dtype=float)
        axes.plot(np.arange(len(f0)) / 100, np.where(f0 > 0, f0, np.nan), label=label, **style)
    axes.set(title=title, xlabel="time (s)", ylabel="f0 (Hz)")
    axes.legend(loc="upper right")
    return figure


def _prune_runs(output_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` conversion folders, so a long-running app does not fill the disk."""
    runs = sorted(output_dir.glob("convert-*"), key=lambda path: path.stat().st_mtime, reverse=True)
    for old in runs[keep:]:
        shutil.rmtree(old, ignore_errors=True)

