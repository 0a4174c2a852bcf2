"""The Train tab's second panel: train an adapter on the experiment the dataset panel prepared (or on the
recordings given there, prepared first with its cache), with RVC-like defaults.

Start hands the run to the workspace's job runner and returns at once; a timer polls the job, so the
page stays responsive, a reload reconnects to the running job, and the queue stays free for
conversions. The work is ``Workspace.train``, the same the ``train`` command runs.
"""

from __future__ import annotations

import html
import logging
import time
from pathlib import Path

import gradio as gr
import numpy as np
from matplotlib.figure import Figure

from ..errors import UserError, describe_error
from ..jobs import CANCELLED, DONE, FAILED
from ..train.setup import D_MODES, DEFAULT_PRESET, PRESETS, AdapterSpec
from ..train.trainer import LORA_LR, LOSSES, TrainOptions
from ..workspace import NONE
from . import compat

POLL_SECONDS = 2
DEFAULT_EPOCHS = 20  # RVC's WebUI default
DEFAULT_ADAPTER = "my_voice"

log = logging.getLogger(__name__)


class TrainingPanel:
    """Built inside the Train tab, after its dataset panel, whose inputs it reads (``dataset``: the
    components for files, folder, experiment, base and f0 method)."""

    def __init__(self, workspace, dataset: dict):
        self.workspace = workspace
        self.dataset = dataset
        self._build()
        self._wire()

    # ----- layout ---------------------------------------------------------------------------------
    def _build(self):
        presets = "\n".join(f"- **{name}**: {text}" for name, (_, text) in PRESETS.items())
        gr.Markdown("### 2. Train an adapter\nTrains on the experiment above (prepared first if needed) with "
                    "RVC's objective: mel, KL, feature matching and the adversarial loss.")
        with gr.Row():
            with gr.Column():
                self.name = gr.Textbox(label="Adapter name (saved in the adapters folder)", value=DEFAULT_ADAPTER)
                self.preset = gr.Radio(label="Layers that get LoRA", choices=list(PRESETS), value=DEFAULT_PRESET)
                gr.Markdown(f"{presets}\n\n*{DEFAULT_PRESET}* is the default: it learned fastest in our runs "
                            "for a small adapter (see benchmarks/README.md).")
                with gr.Row():
                    self.rank = gr.Slider(label="Rank (capacity and size)", minimum=1, maximum=64, step=1, value=8)
                    self.alpha = gr.Number(label="Alpha (0 = the rank)", value=0)
                self.d_mode = gr.Radio(label="Discriminator", choices=list(D_MODES), value="full")
                self.use_pretrained = gr.Checkbox(
                    label="Start the discriminator and enc_q from RVC's pretrained D/G when found "
                          "(pretrained_v2/f0D40k.pth ...)", value=True)
            with gr.Column():
                with gr.Row():
                    self.epochs = gr.Slider(label="Epochs", minimum=1, maximum=1000, step=1, value=DEFAULT_EPOCHS)
                    self.batch_size = gr.Slider(label="Batch size", minimum=1, maximum=40, step=1, value=4)
                with gr.Row():
                    self.lr = gr.Number(label="Learning rate", value=LORA_LR)
                    self.save_every = gr.Number(label="Checkpoint every (steps)", value=100, precision=0)
                    self.preview_every = gr.Number(label="Preview every (epochs)", value=5, precision=0)
                with gr.Row():
                    self.start_button = gr.Button("Start", variant="primary")
                    self.resume_button = gr.Button("Resume")
                    self.cancel_button = gr.Button("Cancel", variant="stop")
                self.progress = gr.HTML(elem_id="lora_train_progress")
                self.log = gr.Textbox(label="Log", lines=6, interactive=False, elem_id="lora_train_log")
        with gr.Row():
            with gr.Column(scale=2):
                self.plot = gr.Plot(label="Losses", elem_id="lora_train_plot")
            with gr.Column(scale=1):
                self.preview_base = gr.Audio(label="Preview: the base model", type="filepath", interactive=False)
                self.preview_adapted = gr.Audio(label="Preview: with the adapter", type="filepath",
                                                interactive=False)
                self.result = gr.File(label="Adapter and index", file_count="multiple", interactive=False,
                                      elem_id="lora_train_result")
        self.seen = gr.State({})

    def _wire(self):
        d = self.dataset
        names = ["files", "folder", "experiment", "base", "f0_method", "name", "preset", "rank", "alpha", "d_mode",
                 "use_pretrained", "epochs", "batch_size", "lr", "save_every", "preview_every"]
        inputs = [d["files"], d["folder"], d["experiment"], d["base"], d["f0_method"], self.name, self.preset,
                  self.rank, self.alpha, self.d_mode, self.use_pretrained, self.epochs, self.batch_size, self.lr,
                  self.save_every, self.preview_every]
        shown = [self.progress, self.log, self.plot, self.preview_base, self.preview_adapted, self.result, self.seen]
        compat.on(self.start_button.click, compat.named_handler(self.start, names), inputs, shown,
                  "lora_train_start")
        compat.on(self.resume_button.click, compat.named_handler(self.resume, names), inputs, shown,
                  "lora_train_resume")
        compat.on(self.cancel_button.click, self.cancel, [self.seen], shown, "lora_train_cancel")
        compat.poll(self.status, [self.seen], shown, POLL_SECONDS, "lora_train_status")

    # ----- handlers -------------------------------------------------------------------------------
    def start(self, *values, resume=False):
        """Start a run (one at a time) and show it; the timer's polls show the rest."""
        try:
            base, dataset, out, options, extra = self._request(*values)
            options.resume = resume
            checkpoint = out.with_name(out.name + ".training") / "checkpoint.pt"
            if not resume and checkpoint.is_file() and not out.is_file():
                raise UserError(out.name, "has an unfinished run: press Resume to continue it, or pick another "
                                          "adapter name")
            self.workspace.start_training(base, dataset, out, options, **extra)
        except Exception as err:  # shown to the user, never a stack trace
            return self._refused(err)
        return self.status({})

    def resume(self, *values):
        """Continue the run of this adapter name from its last checkpoint."""
        return self.start(*values, resume=True)

    def cancel(self, seen):
        """Stop the running job after its current step; training saves a checkpoint first."""
        if self.workspace.jobs.cancel() is None:
            return {**self._unchanged(), self.progress: _bar_html(0, 1, "No training is running.")}
        return self.status(seen)

    def status(self, seen):
        """The job's progress, log, loss plot, previews and result; only what changed since ``seen``."""
        job = self.workspace.jobs.job
        if job is None:
            return self._unchanged()
        seen = dict(seen or {})
        if seen.get("job") == id(job) and seen.get("changes") == job.changes:
            return self._unchanged()
        events = list(job.events)
        losses = [(e.step, e.losses) for e in events if e.losses]
        heldout = [(e.step, e.heldout_mel) for e in events if e.heldout_mel is not None]
        previews = [e.preview for e in events if e.preview is not None]
        out = {**self._unchanged(), self.progress: _job_html(job, events), self.log: "\n".join(job.notes[-40:]),
               self.seen: {"job": id(job), "changes": job.changes, "previews": len(previews)}}
        if len(losses) != seen.get("points") or job.state != seen.get("state"):
            out[self.plot] = loss_figure(losses, heldout)
        out[self.seen].update(points=len(losses), state=job.state)
        if previews and (seen.get("job") != id(job) or seen.get("previews") != len(previews)):
            epoch, base, adapted = previews[-1]
            out[self.preview_base] = compat.update(value=str(base))
            out[self.preview_adapted] = compat.update(value=str(adapted), label=f"Preview: with the adapter "
                                                                                  f"(epoch {epoch})")
        if job.state == DONE and job.result is not None:
            out[self.result] = [str(p) for p in (job.result.output, job.result.index) if p is not None]
        return out

    # ----- helpers --------------------------------------------------------------------------------
    def _request(self, files, folder, experiment, base, f0_method, name, preset, rank, alpha, d_mode, use_pretrained,
                 epochs, batch_size, lr, save_every, preview_every):
        workspace = self.workspace
        if base in (None, "", NONE):
            raise UserError("no base model chosen", "pick the RVC model to adapt in the dataset panel above")
        base_path = workspace.resolve(base, "model")
        experiment_dir = workspace.experiment_dir(experiment)
        sources = dataset_sources(files, folder, experiment_dir)
        if not sources:
            if not (experiment_dir / "prepare.json").is_file():
                raise UserError(experiment_dir.name, "is not prepared yet: give recordings above (or Prepare them) "
                                                     "first")
            sources = [experiment_dir]
        options = TrainOptions(adapter=AdapterSpec(preset=preset or DEFAULT_PRESET, rank=int(rank),
                                                   alpha=float(alpha) if alpha else None),
                               d_mode=d_mode or "full", epochs=int(epochs), batch_size=int(batch_size),
                               lr=float(lr) if lr else None, save_every=max(int(save_every or 100), 1),
                               preview_every=max(int(preview_every or 0), 0))
        return base_path, sources, workspace.adapter_path(name), options, dict(
            experiment=experiment_dir, f0_method=f0_method or "rmvpe", find_pretrained=bool(use_pretrained))

    def _unchanged(self) -> dict:
        return {component: compat.update() for component in
                (self.progress, self.log, self.plot, self.preview_base, self.preview_adapted, self.result, self.seen)}

    def _refused(self, err):
        return {**self._unchanged(), self.progress: _bar_html(0, 1, f"Not started: {describe_error(err, log)}")}


def dataset_sources(files, folder, experiment_dir) -> list:
    """What the dataset panel names: uploads (copied into the experiment, as gradio's temp files may go)
    and the folder typed in."""
    from ..train.intake import stage_uploads

    sources = stage_uploads(compat.uploaded_files(files), experiment_dir / "sources" / "uploads")
    if folder and str(folder).strip():
        sources.append(Path(str(folder).strip()).expanduser())
    return sources


def _job_html(job, events) -> str:
    """A progress bar with step, epoch, the time left and the latest losses."""
    if job.state == FAILED:
        return _bar_html(0, 1, f"Training failed: {job.error}")
    progress = job.progress
    if progress is None:
        return _bar_html(0, 1, f"{job.name}: preparing the dataset...")
    total = max(progress.total_steps, 1)
    if job.state == DONE and job.result is not None:
        output = Path(job.result.output)
        size = output.stat().st_size / 1e6 if output.is_file() else 0
        return _bar_html(total, total, f"Done: {output.name} ({size:.2f} MB) after {job.result.steps} steps. It is "
                                       "in the Convert tab's adapter lists (pick the model or Refresh lists).")
    if job.state == CANCELLED:
        return _bar_html(progress.step, total, f"Stopped at step {progress.step}; the checkpoint is saved: press "
                                               "Resume to continue.")
    text = f"step {progress.step} of {total}, epoch {progress.epoch}"
    timed = [e for e in events if e.seconds > 0]  # steps of this run (a resumed one starts part-way)
    if timed:
        steps_here = progress.step - timed[0].step + 1
        left = progress.seconds / steps_here * (total - progress.step)
        text += f", about {time.strftime('%H:%M:%S', time.gmtime(left))} left"
    if job.cancel_requested:
        text += " (stopping after this step)"
    return _bar_html(progress.step, total, text, ", ".join(f"{k} {v:.3g}" for k, v in progress.losses.items()))


def _bar_html(done, total, text, detail="") -> str:
    lines = "".join(f"<div>{html.escape(line)}</div>" for line in (text, detail) if line)
    return f'<div><progress value="{done}" max="{total}" style="width:100%"></progress>{lines}</div>'


def loss_figure(losses, heldout, smoothing: int = 10):
    """Training losses per step (faint) with their running mean over ``smoothing`` steps (batches of
    short and long pieces differ a lot), on a log scale, and the held-out mel L1 per epoch."""
    figure = Figure(figsize=(8, 3.2), layout="tight")  # not pyplot: handlers run on worker threads
    left, right = figure.subplots(1, 2)
    steps = np.array([step for step, _ in losses])
    for number, name in enumerate(LOSSES):
        values = np.array([point.get(name, np.nan) for _, point in losses], dtype=float)
        if not np.any(values > 0):  # not in this run (the adversarial terms with the discriminator off)
            continue
        color = f"C{number}"
        left.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
        window = min(smoothing, len(values))
        mean = np.convolve(values, np.ones(window) / window, mode="valid")
        left.plot(steps[window - 1:], mean, color=color, label=name, linewidth=1.5)
    left.set(xlabel="step", title="training losses", yscale="log")
    if losses:
        left.legend(loc="upper right", fontsize="small")
    if heldout:
        right.plot(*zip(*heldout), marker="o", color="tab:red")
    right.set(xlabel="step", title="held-out mel L1 (lower is better)")
    return figure
