"""The app under the gradio versions RVC hosts run: 3.14 (RVC WebUI 2026) and 3.34 (RVC classic), each in
its own env from scripts/install_ui_test_envs.sh. It must build with no keyword silently ignored, and
its events must work through that gradio's own HTTP API."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import soundfile

from ci_rules import require

ROOT = Path(__file__).resolve().parents[2]
API_NAMES = ["lora_select_model", "lora_refresh", "lora_convert", "lora_show_output", "lora_dataset_report",
             "lora_dataset_prepare", "lora_train_start", "lora_train_resume", "lora_train_cancel",
             "lora_train_status", "lora_merge_bake_base", "lora_merge_combine_base", "lora_merge_resize_base",
             "lora_merge_bake", "lora_merge_combine", "lora_merge_extract", "lora_merge_resize", "lora_merge_blend",
             "lora_merge_inspect", "lora_merge_refresh", "lora_refresh_help"]


@pytest.mark.parametrize("version", ["3.14", "3.34"])
def test_app_builds_and_converts_under_old_gradio(version, asset_dir):
    python = ROOT / ".gradio-envs" / version / "bin" / "python"
    require(python.exists(), f"no gradio {version} env at {python.parent.parent}: "
                             "run `bash scripts/install_ui_test_envs.sh` to create it")
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("RVC_ROOT", None)
    run = subprocess.run([str(python), str(ROOT / "tests" / "ui" / "gradio3_check.py"), str(asset_dir),
                          str(asset_dir / "speech.wav")], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-4000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["gradio"] == f"{version}.0" and got["api_names"] == API_NAMES

    models, methods, _, _, _, first_adapter, *_ = got["refresh"]
    assert models["choices"] == ["v2_f0_40k.pth", "v2_nof0_32k.pth"]
    assert "pm" in methods["choices"] and "rmvpe" not in methods["choices"]
    assert first_adapter["choices"] == ["(none)", "other_base.safetensors", "voice.safetensors"]
    assert got["select_model"][-1]["value"] == "auto"

    choice, player, downloads, plot, report, _ = got["convert"]
    audio = soundfile.info(player["name"])
    assert audio.samplerate == 40000
    assert abs(audio.duration - soundfile.info(asset_dir / "speech.wav").duration) < 0.05
    assert [item["orig_name"] for item in downloads] == ["speech.wav"] and choice["value"] == "speech.wav"
    assert plot["type"] == "matplotlib" and plot["plot"].startswith("data:image/png;base64,")
    assert report.startswith("v2_f0_40k.pth with voice.safetensors x0.5, no index\nspeech.wav -> speech.wav: ")
    assert "RVC-LoRA" in got["header"][0] and "Before the first conversion" not in got["header"][0]
    assert f"HuBERT: found, {asset_dir / 'hubert_base'}" in got["header"][1]  # the Assets panel
    assert "RMVPE (pitch): missing; python -m webui_lora download-assets --only rmvpe" in got["header"][1]
    report, histogram, status = got["dataset_report"]
    assert "1 of 1 files usable" in report and histogram["type"] == "matplotlib"
    assert "Nothing prepared: " in status and "usable audio in total" in status  # one short sentence is too little

    progress, *_ = got["train_start"]
    assert "Not started: unprepared: is not prepared yet" in progress  # HTML, the message escaped
    assert all(value == {"__type__": "update"} for value in got["train_status"][:-1])  # nothing has run (the last: state)
