"""The Train tab's training panel without a browser: Start hands the run to the job runner and returns,
the status poll follows it to the end, the adapter it writes shows up in the Convert tab's lists with
its index paired, and Cancel / Resume continue a run where it stopped."""

import shutil
import time
from pathlib import Path

import gradio as gr
import pytest
from matplotlib.figure import Figure

from conftest import MODEL
from speech import one_voice_recordings
from webui_lora.assets import Assets
from webui_lora.train.prepare import PrepareOptions
from webui_lora.ui.convert_tab import ADAPTER_SLOTS, build_convert_tab
from webui_lora.ui.train_tab import build_train_tab
from webui_lora.workspace import AUTO, NONE, Workspace


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    return one_voice_recordings(tmp_path_factory.mktemp("voice") / "slt")


@pytest.fixture
def tabs(asset_dir, tmp_path):
    """Both tabs over one workspace on a private copy of the assets (a new adapter must not reach the
    other tests' lists)."""
    assets = shutil.copytree(asset_dir, tmp_path / "assets")
    workspace = Workspace(Assets(assets), device="cpu")
    with gr.Blocks():
        train, convert = build_train_tab(workspace), build_convert_tab(workspace, tmp_path / "outputs")
    yield train, convert, workspace
    workspace.jobs.cancel()
    _wait(train, workspace)


def settings(recordings, experiment, name, **changes):
    """The panel's inputs in order: the dataset panel's five, then the training settings (small and fast:
    the discriminator's path is the trainer tests' part)."""
    values = dict(files=None, folder=str(recordings), experiment=str(experiment), base=MODEL, f0_method="pm",
                  name=name, preset="dec+flow", rank=4, alpha=0, d_mode="off", use_pretrained=True, epochs=2,
                  batch_size=2,
                  lr=3e-3, save_every=100, preview_every=1)
    values.update(changes)
    return list(values.values())


def _wait(train, workspace, until=lambda job: not job.running, seconds=600):
    seen, out = {}, {}
    deadline = time.monotonic() + seconds
    while workspace.jobs.job is not None and not until(workspace.jobs.job):
        assert time.monotonic() < deadline, "training did not finish"
        update = train.training.status(seen)
        seen = update[train.training.seen] if isinstance(update[train.training.seen], dict) else seen
        out.update({k: v for k, v in update.items() if v != gr.update()})
        time.sleep(0.2)
    out.update({k: v for k, v in train.training.status(seen).items() if v != gr.update()})
    return out


def test_start_trains_in_the_background_and_the_adapter_reaches_the_convert_tab(tabs, recordings, tmp_path):
    train, convert, workspace = tabs
    panel = train.training
    assert panel.status({})[panel.progress] == gr.update()  # nothing has run yet
    started = panel.start(*settings(recordings, tmp_path / "exp", "slt_voice"))
    assert "Not started" not in started[panel.progress]
    refused = panel.start(*settings(recordings, tmp_path / "exp", "other"))
    assert "Not started: a job is running: training slt_voice.safetensors; wait for it" in refused[panel.progress]

    shown = _wait(train, workspace)
    assert "Done: slt_voice.safetensors" in shown[panel.progress], shown[panel.progress]
    adapter = workspace.assets.assets_dir / "adapters" / "slt_voice.safetensors"
    assert shown[panel.result] == [str(adapter), str(adapter.with_suffix(".index"))]
    assert isinstance(shown[panel.plot], Figure)
    assert Path(shown[panel.preview_adapted]["value"]).name == "epoch_0002.wav"
    assert Path(shown[panel.preview_base]["value"]).is_file()
    log = shown[panel.log]
    assert "before training: held-out mel L1" in log and "training" in log and "parameters" in log
    again = panel.status(shown[panel.seen])
    assert all(value == gr.update() for value in again.values())  # a poll with nothing new sends nothing

    view = convert.select_model(MODEL, *[NONE] * ADAPTER_SLOTS)
    assert "slt_voice.safetensors" in view[convert.adapters[0]]["choices"]
    speech = str(workspace.assets.assets_dir / "speech.wav")
    settings_in_order = dict(speaker_id=0, transpose=0, f0_method="pm", f0_convention="classic", filter_radius=3,
                             index=AUTO, index_rate=0.75, protect=0.33, rms_mix_rate=0.25, resample_sr=0,
                             audio_format="wav")
    slots = [("slt_voice.safetensors", 1.0)] + [(NONE, 1.0)] * (ADAPTER_SLOTS - 1)
    out = convert.convert([speech], MODEL, *settings_in_order.values(), *[v for slot in slots for v in slot])
    assert out[convert.report].startswith("v2_f0_40k.pth with slt_voice.safetensors x1, index slt_voice.index")


def test_cancel_saves_and_resume_continues(tabs, recordings, tmp_path):
    train, _, workspace = tabs
    panel = train.training
    out = tmp_path / "long.safetensors"
    panel.start(*settings(recordings, tmp_path / "exp", str(out), epochs=100, preview_every=0))
    _wait(train, workspace, until=lambda job: job.progress is not None and job.progress.step >= 2)
    panel.cancel({})
    stopped = _wait(train, workspace)
    assert "Stopped at step" in stopped[panel.progress] and "press Resume" in stopped[panel.progress]
    step = workspace.jobs.job.result.steps
    assert (tmp_path / "long.safetensors.training" / "checkpoint.pt").is_file() and not out.exists()

    refused = panel.start(*settings(recordings, tmp_path / "exp", str(out), epochs=100, preview_every=0))
    assert "long.safetensors: has an unfinished run: press Resume" in refused[panel.progress]
    panel.resume(*settings(recordings, tmp_path / "exp", str(out), epochs=100, preview_every=0))
    _wait(train, workspace, until=lambda job: job.progress is not None and job.progress.step > step)
    assert workspace.jobs.job.events[0].step == step  # the plan is told from where it left off
    panel.cancel({})
    _wait(train, workspace)


@pytest.mark.parametrize("change, expected", [
    (dict(base=NONE), "no base model chosen: pick the RVC model to adapt"),
    (dict(folder=""), "exp: is not prepared yet: give recordings above"),
    (dict(name=""), "no adapter name given"),
    (dict(base="v2_nof0_32k.pth"), "was prepared for a v2 40k f0 model"),
])
def test_refusals_are_one_line(tabs, recordings, tmp_path, change, expected):
    train, _, workspace = tabs
    if change.get("base", NONE) != NONE:  # an experiment prepared for another model
        workspace.prepare_dataset([recordings], tmp_path / "exp", workspace.dataset_target(MODEL),
                                  PrepareOptions(f0_method="pm"))
        change["folder"] = ""
    shown = train.training.start(*settings(recordings, tmp_path / "exp", **{"name": "x", **change}))
    _wait(train, workspace)
    message = shown[train.training.progress] if "Not started" in shown[train.training.progress] else \
        train.training.status({})[train.training.progress]
    assert expected in message and "Traceback" not in message
