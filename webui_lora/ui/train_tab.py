"""The Train tab. Its first panel turns recordings into a training-ready experiment folder: drop audio
files or a zip (or name a folder on this machine), read the QA report and clip-length histogram, then
Prepare, with a progress bar. The work is ``train.prepare``, the same the ``prepare`` command runs.
The second panel (``training_panel``) trains an adapter on it.
"""

from __future__ import annotations

import logging

import gradio as gr
from matplotlib.figure import Figure

from ..errors import UserError, describe_error, user_message
from ..rvc.pitch import available_methods
from ..train.intake import DatasetError
from ..train.prepare import PrepareOptions, dataset_report
from ..train.quality import check_trainable
from ..workspace import NONE
from . import compat
from .training_panel import TrainingPanel, dataset_sources

DEFAULT_EXPERIMENT = "my_voice"

log = logging.getLogger(__name__)


def build_train_tab(workspace) -> "TrainTab":
    """Create the Train tab in the caller's open Blocks/Tab over ``workspace`` (a ``Workspace``)."""
    return TrainTab(workspace)


class TrainTab:
    def __init__(self, workspace):
        self.workspace = workspace
        self._build()
        self._wire()
        self.training = TrainingPanel(workspace, {"files": self.files, "folder": self.folder,
                                                  "experiment": self.experiment, "base": self.base,
                                                  "f0_method": self.f0_method})

    # ----- layout ---------------------------------------------------------------------------------
    def _build(self):
        models = list(self.workspace.choices("model"))
        methods = [s.name for s in available_methods(self.workspace.assets.pitch_assets_dir()) if s.available]
        gr.Markdown("### 1. Dataset\nA few minutes of one voice, clean and dry, is what an adapter needs. "
                    "Files are checked first; nothing you give is changed.")
        with gr.Row():
            with gr.Column():
                self.files = gr.File(label="Recordings: audio files or a .zip", file_count="multiple",
                                     elem_id="lora_dataset_files")
                self.folder = gr.Textbox(label="...or a folder on this machine (searched recursively)",
                                         placeholder="/path/to/recordings")
                self.experiment = gr.Textbox(label="Experiment name (or folder)", value=DEFAULT_EXPERIMENT)
            with gr.Column():
                self.base = gr.Dropdown(label="Base model (decides rate, version and pitch)",
                                        choices=[NONE, *models], value=models[0] if models else NONE)
                with gr.Row():
                    self.sr = gr.Radio(label="Rate (without a base model)", choices=["32k", "40k", "48k"],
                                       value="40k")
                    self.version = gr.Radio(label="Version", choices=["v1", "v2"], value="v2")
                    self.f0 = gr.Checkbox(label="With pitch (f0)", value=True)
                self.f0_method = gr.Dropdown(label="Pitch (f0) method for the dataset", choices=methods,
                                             value="rmvpe" if "rmvpe" in methods else (methods[0] if methods else None))
                self.index = gr.Checkbox(label="Build the feature index", value=True)
                with gr.Row():
                    self.report_button = gr.Button("Check dataset")
                    self.prepare_button = gr.Button("Prepare", variant="primary")
        with gr.Row():
            with gr.Column(scale=2):
                self.report = gr.Markdown(elem_id="lora_dataset_report")
            with gr.Column(scale=1):
                self.histogram = gr.Plot(label="Clip lengths", elem_id="lora_dataset_histogram")
        self.status = gr.Textbox(label="Preparation", lines=3, interactive=False, elem_id="lora_dataset_status")

    def _wire(self):
        inputs = [("files", self.files), ("folder", self.folder), ("experiment", self.experiment),
                  ("base", self.base), ("sr", self.sr), ("version", self.version), ("f0", self.f0)]
        names = [name for name, _ in inputs]
        components = [component for _, component in inputs]
        compat.on(self.report_button.click, compat.progress_handler(self.check, names), components,
                  [self.report, self.histogram, self.status], "lora_dataset_report")
        compat.on(self.prepare_button.click,
                  compat.progress_handler(self.prepare, names + ["f0_method", "index"]),
                  components + [self.f0_method, self.index], [self.report, self.histogram, self.status],
                  "lora_dataset_prepare")

    # ----- handlers -------------------------------------------------------------------------------
    def check(self, files, folder, experiment, base, sr, version, f0, report=lambda done, total, text: None):
        """The QA report for what was given, preparing nothing."""
        try:
            target, out, sources = self._request(files, folder, experiment, base, sr, version, f0)
            result = dataset_report(sources, target, out / "sources", progress=_progress(report))
        except Exception as err:  # shown to the user, never a stack trace
            return self._failed(err)
        try:
            check_trainable(result, ", ".join(map(str, sources)))
            status = "Checked; click Prepare to cut pieces and extract f0 and features."
        except DatasetError as err:
            status = f"Nothing prepared: {user_message(err)}"
        return {self.report: f"**For a {target.describe()} model.** " + result.as_markdown(),
                self.histogram: histogram_figure(result.histogram()), self.status: status}

    def prepare(self, files, folder, experiment, base, sr, version, f0, f0_method, index,
                report=lambda done, total, text: None):
        """Prepare the dataset into the experiment folder (a rerun reuses all it can)."""
        try:
            target, out, sources = self._request(files, folder, experiment, base, sr, version, f0)
            options = PrepareOptions(f0_method=f0_method or "rmvpe", index=bool(index))
            result = self.workspace.prepare_dataset(sources, out, target, options, _progress(report))
        except Exception as err:  # shown to the user, never a stack trace
            return self._failed(err)
        return {self.report: f"**For a {target.describe()} model.** " + result.report.as_markdown(),
                self.histogram: histogram_figure(result.report.histogram()),
                self.status: result.summary()}

    def _request(self, files, folder, experiment, base, sr, version, f0):
        workspace = self.workspace
        target = workspace.dataset_target(base, sr, version, f0)
        out = workspace.experiment_dir(experiment)
        sources = dataset_sources(files, folder, out)
        if not sources:
            raise UserError("no dataset yet", "drop recordings or a zip into the box, or give a folder")
        return target, out, sources

    def _failed(self, err):
        return {self.report: "", self.histogram: None, self.status: f"Nothing prepared: {describe_error(err, log)}"}


def _progress(report):
    return lambda stage, done, total: report(done, total, f"{stage}: {done} of {total}")


def histogram_figure(bins):
    """A bar chart of clip-length bins [(label, count)]."""
    figure = Figure(figsize=(5, 3), layout="tight")  # not pyplot: handlers run on worker threads
    axes = figure.add_subplot()
    labels, counts = zip(*bins) if bins else ((), ())
    axes.bar(range(len(counts)), counts, color="tab:blue")
    axes.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    axes.set(ylabel="files", title="Clip lengths")
    return figure
