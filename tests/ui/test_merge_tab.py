"""The Merge tab without a browser: built under the installed gradio, its handlers called the way gradio
calls them, on a private copy of the tiny UI assets (results land in its weights and adapters folders)."""

import shutil

import gradio as gr
import pytest

from webui_lora.assets import Assets
from webui_lora.rvc.checkpoints import load_model
from webui_lora.ui.merge_tab import SLOTS, build_merge_tab
from webui_lora.workspace import NONE, Workspace

MODEL = "v2_f0_40k.pth"


@pytest.fixture(scope="module")
def workspace(asset_dir, tmp_path_factory):
    root = shutil.copytree(asset_dir, tmp_path_factory.mktemp("merge_tab") / "assets")
    return Workspace(Assets(root), device="cpu")


@pytest.fixture(scope="module")
def tab(workspace):
    with gr.Blocks():
        return build_merge_tab(workspace)


def slots(*chosen):
    filled = [value for pair in chosen for value in pair]
    return filled + [NONE, 1.0] * (SLOTS - len(chosen))


def test_pickers_offer_only_adapters_that_fit(tab):
    shown = tab.fitting_adapters(MODEL, "voice.safetensors", "v1_voice.safetensors", NONE, NONE)
    assert shown[0]["choices"] == [NONE, "other_base.safetensors", "voice.safetensors"]
    assert shown[0]["value"] == "voice.safetensors" and shown[1]["value"] == NONE


def test_bake_writes_a_model_the_other_tabs_list_and_listens_before_and_after(tab, workspace, asset_dir):
    file, report, before, after = tab.bake(str(asset_dir / "speech.wav"), MODEL, "legacy", True, "baked", "",
                                           *slots(("voice.safetensors", 0.5)))
    assert file == str(workspace.assets.assets_dir / "weights" / "baked.pth"), report
    assert "baked voice.safetensors x0.5" in report and load_model(file).kind == "inference"
    assert "no index merged" in report
    assert before and after and before != after
    assert "baked.pth" in workspace.choices("model")  # the Convert tab's refresh lists it
    refreshed = tab.refresh(MODEL, MODEL, None, MODEL, MODEL, None, [MODEL], NONE, NONE)
    assert "baked.pth" in refreshed[0]["choices"]


def test_combine_extract_resize_blend_and_inspect(tab, workspace):
    file, report, _, _ = tab.combine(None, MODEL, "svd", 1, 0, 0.5, "both",
                                     *slots(("voice.safetensors", 1.0), ("voice.safetensors", 0.5)))
    assert file and file.endswith("both.safetensors") and "energy retained" in report
    tuned, *_ = tab.bake(None, MODEL, "legacy", False, "tuned", "", *slots(("voice.safetensors", 1.0)))
    file, report, _, _ = tab.extract(None, [MODEL], "tuned.pth", 0, 0.95, "pulled")
    assert file and file.endswith("pulled.safetensors") and "base: v2_f0_40k.pth" in report, report
    file, report, _, _ = tab.resize(None, MODEL, "pulled.safetensors", 1, 0, "pulled_r1")
    assert file and "resized pulled.safetensors" in report
    file, report, _, _ = tab.blend(None, MODEL, "tuned.pth", 0.5, "parametrized", "half")
    assert file and load_model(file).weight_norm_keys == "parametrized"
    text = tab.inspect("pulled.safetensors", MODEL)
    assert "fits base" in text and "yes" in text and "extracted from" in text


def test_bad_input_is_one_message_and_writes_nothing(tab, workspace, asset_dir):
    file, report, _, _ = tab.bake(None, MODEL, "legacy", False, "x", "", *slots())
    assert file is None and report.startswith("Nothing written: no adapters chosen")
    file, report, _, _ = tab.bake(None, "v2_nof0_32k.pth", "legacy", False, "x", "",
                                  *slots(("v1_voice.safetensors", 1.0)))
    assert file is None and "v1_voice.safetensors" in report and "v1" in report
    file, report, _, _ = tab.combine(None, MODEL, "cat", 0, 0, 0.5, "y", *slots(("voice.safetensors", 1.0)))
    assert file is None and "two or more adapters" in report
    file, report, _, _ = tab.combine(None, MODEL, "cat", 0, 0, 0.5, "y",
                                     *slots(("voice.safetensors", 1.0), ("other_base.safetensors", 1.0)))
    assert file is None and "another base model" in report
    file, report, _, _ = tab.blend(None, MODEL, "v2_nof0_32k.pth", 0.5, "legacy", "z")
    assert file is None and "cannot be blended" in report
    file, report, _, _ = tab.resize(None, MODEL, "voice.safetensors", 0, 0, "w")
    assert file is None and "--rank" in report
    assert not any(name in workspace.choices("model") for name in ("x.pth", "z.pth"))
    assert "no such adapter file" in tab.inspect("missing.safetensors", MODEL) or "missing" in \
        tab.inspect("missing.safetensors", MODEL)
