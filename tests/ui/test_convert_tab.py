"""The Convert tab without a browser: built under the installed gradio, its handlers called the way
gradio calls them, on tiny assets."""

import inspect
import os
from pathlib import Path

import gradio as gr
import pytest
import soundfile
from matplotlib.figure import Figure

from builders import tiny_model_file
from webui_lora.assets import Assets
from webui_lora.ui import compat
from webui_lora.ui.app import build_app, header_text
from webui_lora.ui.convert_tab import ADAPTER_SLOTS, NONE, build_convert_tab
from webui_lora.workspace import AUTO, Workspace

MODEL, NO_F0_MODEL = "v2_f0_40k.pth", "v2_nof0_32k.pth"
INDEX = "added_IVF2_Flat_nprobe_1_v2_f0_40k_v2.index"
NO_ADAPTERS = [NONE] * ADAPTER_SLOTS
API_NAMES = {"lora_select_model", "lora_refresh", "lora_convert", "lora_show_output", "lora_dataset_report",
             "lora_dataset_prepare", "lora_train_start", "lora_train_resume", "lora_train_cancel",
             "lora_train_status", "lora_refresh_help", "lora_merge_bake_base", "lora_merge_combine_base",
             "lora_merge_resize_base", "lora_merge_bake", "lora_merge_combine", "lora_merge_extract", "lora_merge_resize",
             "lora_merge_blend", "lora_merge_inspect", "lora_merge_refresh"}


@pytest.fixture(scope="module")
def tab(assets, tmp_path_factory):
    with gr.Blocks():
        return build_convert_tab(Workspace(assets, device="cpu"), tmp_path_factory.mktemp("outputs"))


def convert(tab, files, model=MODEL, adapters=(), report=None, **changes):
    """tab.convert with the tab's defaults (pm for speed), ``changes`` applied, ``adapters`` in the slots."""
    settings = dict(speaker_id=0, transpose=0, f0_method="pm", f0_convention="classic", filter_radius=3,
                    index=NONE, index_rate=0.75, protect=0.33, rms_mix_rate=0.25, resample_sr=0, audio_format="wav")
    settings.update(changes)
    slots = list(adapters) + [(NONE, 1.0)] * (ADAPTER_SLOTS - len(adapters))
    extra = {"report": report} if report else {}
    return tab.convert(files, model, *settings.values(), *[value for slot in slots for value in slot], **extra)


def test_model_offers_only_fitting_adapters_and_the_index_goes_back_to_auto(tab):
    shown = tab.select_model(MODEL, "voice.safetensors", "v1_voice.safetensors", NONE, NONE)
    assert shown[tab.adapters[0]]["choices"] == [NONE, "other_base.safetensors", "voice.safetensors"]
    assert shown[tab.adapters[0]]["value"] == "voice.safetensors"
    assert shown[tab.adapters[1]]["value"] == NONE  # the v1 adapter does not fit a v2 model
    assert "other_base.safetensors: trained on another base model" in shown[tab.adapter_note]["value"]
    assert shown[tab.index]["value"] == AUTO and shown[tab.index]["choices"] == [AUTO, NONE, INDEX]
    assert shown[tab.pitch_controls]["visible"] is True
    assert shown[tab.model_info]["value"] == "RVC v2, 40000 Hz, with pitch (f0), 3 speakers"
    assert shown[tab.speaker] == compat.update(maximum=2, value=0, visible=True)


def test_no_f0_model_hides_pitch_controls_and_drops_f0_adapters(tab):
    shown = tab.select_model(NO_F0_MODEL, "voice.safetensors", NONE, NONE, NONE)
    assert shown[tab.pitch_controls]["visible"] is False
    assert shown[tab.adapters[0]] == compat.update(choices=[NONE], value=NONE)
    assert shown[tab.index]["value"] == AUTO


def test_unavailable_pitch_methods_are_left_out_with_their_reason(tab):
    shown = tab.refresh(MODEL, NONE, "rmvpe", *NO_ADAPTERS)
    assert "pm" in shown[tab.f0_method]["choices"] and "rmvpe" not in shown[tab.f0_method]["choices"]
    assert shown[tab.f0_method]["value"] != "rmvpe"
    assert "- rmvpe: no RMVPE weights at" in shown[tab.method_note]["value"]
    assert shown[tab.model] == compat.update(choices=[MODEL, NO_F0_MODEL], value=MODEL)


def test_conversion_gives_audio_plot_downloads_and_report(tab, asset_dir):
    speech = asset_dir / "speech.wav"
    progress = []
    out = convert(tab, [str(speech), str(speech)], adapters=[("voice.safetensors", 0.5)], index=AUTO,
                  report=lambda *step: progress.append(step))
    played = Path(out[tab.player])
    assert soundfile.info(played).samplerate == 40000
    assert abs(soundfile.info(played).duration - soundfile.info(speech).duration) < 0.05
    assert isinstance(out[tab.pitch_plot], Figure)
    assert [Path(path).name for path in out[tab.downloads]] == ["speech.wav", "speech_2.wav"]
    assert out[tab.output_choice] == compat.update(choices=["speech.wav", "speech_2.wav"], value="speech.wav",
                                                   visible=True)
    report = out[tab.report]
    assert report.startswith(f"v2_f0_40k.pth with voice.safetensors x0.5, index {INDEX}\n")  # the model's
    assert "speech.wav -> speech_2.wav: " in report and "synthesis" in report and "failed" not in report
    assert progress[0][:2] == (0, 2) and progress[-1] == (2, 2, "Converted 2 of 2")

    second = tab.show_output("speech_2.wav", out[tab.results])
    assert second[tab.player] == out[tab.downloads][1] and isinstance(second[tab.pitch_plot], Figure)


def test_no_f0_model_converts_without_a_plot(tab, asset_dir):
    out = convert(tab, [str(asset_dir / "speech.wav")], model=NO_F0_MODEL, resample_sr=16000, audio_format="flac")
    assert soundfile.info(out[tab.player]).samplerate == 16000 and out[tab.player].endswith(".flac")
    assert out[tab.pitch_plot] is None and "no-f0 model has no pitch to plot" in out[tab.report]


def test_bad_file_is_named_and_the_others_still_convert(tab, asset_dir):
    out = convert(tab, [str(asset_dir / "not_audio.wav"), str(asset_dir / "speech.wav")])
    lines = out[tab.report].splitlines()
    assert lines[1].startswith("not_audio.wav: failed: ") and "not_audio.wav" in lines[1][len("not_audio.wav"):]
    assert lines[2].startswith("speech.wav -> speech.wav")
    assert "Traceback" not in out[tab.report] and list(out[tab.results]) == ["speech.wav"]


@pytest.mark.parametrize("case, expected", [
    (dict(adapters=[("v1_voice.safetensors", 1.0)]), "was made for a version='v1' model"),
    (dict(model="missing.pth"), "missing.pth: no such model file, and no model of that name"),
    (dict(index_rate=3), "index_rate 3: out of range; use 0.0 to 1.0"),
    (dict(model=None), "Nothing converted: no model chosen"),
    (dict(files=None), "no audio yet"),
    (dict(f0_method="rmvpe"), "f0 method 'rmvpe' is unavailable"),
])
def test_refusals_are_clear_messages(tab, asset_dir, case, expected):
    files = case.pop("files", [str(asset_dir / "speech.wav")])
    out = convert(tab, files, **case)
    assert expected in out[tab.report] and "Traceback" not in out[tab.report]
    assert out[tab.player] is None and out[tab.results] == {}


def test_empty_assets_explain_themselves_and_refresh_finds_new_models(tmp_path):
    assets = Assets(tmp_path)
    with gr.Blocks():
        tab = build_convert_tab(Workspace(assets, device="cpu"), tmp_path / "outputs")
    assert "no RVC models: put .pth files in" in header_text(assets) and "no HuBERT" in header_text(assets)
    assert "No RVC model found yet" in tab.select_model(None, *NO_ADAPTERS)[tab.model_info]["value"]
    (tmp_path / "weights").mkdir()
    tiny_model_file(tmp_path / "weights", "v2_nof0_32k", file_name="new_voice.pth")
    shown = tab.refresh(None, NONE, "pm", *NO_ADAPTERS)
    assert shown[tab.model] == compat.update(choices=["new_voice.pth"], value="new_voice.pth")
    assert shown[tab.model_info]["value"].endswith("no pitch (no-f0), 3 speakers")
    assert "no RVC models" not in header_text(assets)


def test_app_has_every_action_under_a_lora_api_name(assets):
    app = build_app(Workspace(assets, device="cpu"))
    assert {d["api_name"] for d in app.config["dependencies"]} == API_NAMES


def test_convert_handler_signature_names_inputs_and_asks_for_progress():
    seen = []
    handler = compat.progress_handler(lambda a, b, report: seen.append((a, b, report)), ["first", "second"])
    parameters = list(inspect.signature(handler).parameters.values())
    assert [p.name for p in parameters] == ["first", "second", "progress"]
    assert isinstance(parameters[2].default, gr.Progress)
    handler(1, 2, gr.Progress())  # outside a queued event the tracker does nothing
    seen[0][2](1, 2, "half way")
    assert seen[0][:2] == (1, 2)


def test_uploaded_files_reads_every_version_s_value(tmp_path):
    class Gradio3Upload:  # gradio 3's File(type="file"): a temp file object
        name, orig_name = str(tmp_path / "tmpab12.wav"), "take 1.wav"

    assert compat.uploaded_files(None) == []
    assert compat.uploaded_files("/tmp/x/a.wav") == [(Path("/tmp/x/a.wav"), "a.wav")]
    assert compat.uploaded_files([Gradio3Upload()]) == [(tmp_path / "tmpab12.wav", "take 1.wav")]


def test_supported_drops_options_a_component_does_not_take_and_on_wants_our_prefix():
    assert compat.supported(gr.Dropdown, allow_custom_value=True, no_such_option=1) == {"allow_custom_value": True}
    with gr.Blocks():
        button = gr.Button()
        with pytest.raises(ValueError, match="must start with 'lora_'"):
            compat.on(button.click, print, [], [], "convert")


def test_old_output_folders_are_pruned(tmp_path):
    from webui_lora.ui.convert_tab import _prune_runs
    for number in range(5):
        run = tmp_path / f"convert-{number}"
        run.mkdir()
        os.utime(run, (number, number))
    _prune_runs(tmp_path, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["convert-3", "convert-4"]
