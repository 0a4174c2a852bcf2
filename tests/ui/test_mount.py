"""Our tabs inside an RVC-shaped host, as a user gets them: ``python -m webui_lora install`` puts the hook
into the host's entry file, the host starts under its own gradio (3.14 as RVC 2026, 3.34 as RVC classic,
and the newest) on 127.0.0.1, and headless Chromium shows the host's tab first and ours after it; our
Convert tab converts a file there and the host's own tab still answers. A tab that fails to build leaves
the host and the other tabs working."""

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import gradio as gr
import pytest

from ci_rules import require
from rvc_hosts import write_host
from test_browser import CHROMIUM, CHROMIUM_ARGS, _wait_until_up, expect, sync_playwright
from webui_lora.cli import main
from webui_lora.ui import mount

ROOT = Path(__file__).resolve().parents[2]
HOST_TABS = ("Model Inference", "Train", "FAQ")
OUR_TABS = ("LoRA Train", "LoRA Merge", "LoRA Convert")
HOSTS = {"3.14": ("webui.py", ROOT / ".gradio-envs" / "3.14" / "bin" / "python"),
         "3.34": ("infer-web.py", ROOT / ".gradio-envs" / "3.34" / "bin" / "python"),
         "newest": ("webui.py", Path(sys.executable))}


def rvc_folder(folder: Path, asset_dir: Path, entry: str) -> Path:
    """An RVC install's layout: models in assets/weights, the HuBERT folder, indices, and the entry file."""
    for name in ("weights", "hubert_base", "indices", "adapters"):
        shutil.copytree(asset_dir / name, folder / "assets" / name)
    (folder / "logs").mkdir()
    write_host(folder, entry)
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("gradio_version", list(HOSTS))
def test_installed_tabs_work_inside_an_rvc_host(gradio_version, asset_dir, tmp_path, capsys):
    entry, python = HOSTS[gradio_version]
    require(python.exists(), f"no gradio {gradio_version} env at {python}: run `bash scripts/install_ui_test_envs.sh`")
    require(Path(CHROMIUM).exists() and sync_playwright is not None, "no chromium or playwright")
    host = rvc_folder(tmp_path / "rvc", asset_dir, entry)
    assert main(["install", str(host), "--python", str(python), "--check-only"]) == 0
    assert "the host environment has every requirement of RVC-LoRA" in capsys.readouterr().out

    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONWARNINGS": "ignore"}
    env.pop("RVC_ROOT", None)
    log = tmp_path / "host.log"
    with open(log, "w") as output:
        server = subprocess.Popen([str(python), entry, "--port", str(port), "--noautoopen"], cwd=host, env=env,
                                  stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(f"http://127.0.0.1:{port}/", server, log)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1600, "height": 1200})
                page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
                host_in = page.get_by_label("Host input")
                host_in.wait_for(timeout=60_000)  # the host's first tab is the one shown
                for label in HOST_TABS + OUR_TABS:
                    expect(tab_button(page, label)).to_be_visible()
                tab_button(page, "LoRA Convert").click()
                page.locator("#lora_convert_files input[type=file]").set_input_files(asset_dir / "speech.wav")
                page.get_by_text("speech.wav").first.wait_for()
                choose(page, "lora_convert_f0", "pm")
                page.get_by_role("button", name="Convert", exact=True).click()
                expected = ("v2_f0_40k.pth with no adapters, index added_IVF2_Flat_nprobe_1_v2_f0_40k_v2.index\n"
                            "speech.wav -> speech.wav: ")
                expect(page.locator("#lora_convert_report textarea")).to_have_value(
                    re.compile("^" + re.escape(expected)), timeout=90_000)
                page.screenshot(path=tmp_path / "host_with_lora_tabs.png", full_page=True)

                tab_button(page, "Model Inference").click()
                host_in.fill("hello")
                page.get_by_role("button", name="Host echo", exact=True).click()
                expect(page.get_by_label("Host output")).to_have_value("host heard: hello", timeout=30_000)
            finally:
                browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def tab_button(page, label):
    """A top tab's button: role "tab" from gradio 4 on (which also keeps hidden copies for its overflow
    menu), a plain button before."""
    tabs = page.get_by_role("tab", name=label, exact=True)
    return tabs if tabs.count() else page.locator("button").filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))


def choose(page, elem_id, option):
    """Pick ``option`` in a dropdown: a native select in gradio 3.14, a list under a text box later."""
    select = page.locator(f"#{elem_id} select")
    if select.count():
        select.select_option(option)
        return
    page.locator(f"#{elem_id} input").click()
    page.locator(f'li[aria-label="{option}"]:visible').first.click()  # 3.34: role "button"; 4+: "option"


def test_a_tab_that_fails_to_build_leaves_the_host_and_the_other_tabs(asset_dir, tmp_path, monkeypatch):
    def broken(workspace):
        raise RuntimeError("merge tab exploded")

    monkeypatch.setattr("webui_lora.ui.merge_tab.build_merge_tab", broken)
    host = rvc_folder(tmp_path / "rvc", asset_dir, "webui.py")
    with gr.Blocks() as app:
        with gr.Tabs():
            with gr.Tab("Model Inference"):
                gr.Textbox(label="Host input")
            workspace = mount.mount_tabs(host)
    assert top_tabs(app) == ["Model Inference", *OUR_TABS]
    shown = [block.value or "" for block in app.blocks.values() if isinstance(block, gr.Markdown)]
    assert any("**LoRA Merge could not be built.** RuntimeError: merge tab exploded" in text for text in shown)
    api_names = {d["api_name"] for d in app.config["dependencies"]}
    assert {"lora_convert", "lora_train_start"} <= api_names and not any("merge" in n for n in api_names if n)
    assert [p.name for p in workspace.assets.models()] == ["v2_f0_40k.pth", "v2_nof0_32k.pth"]
    assert workspace.assets.output_dir("weights") == host / "assets" / "weights"
    assert workspace.assets.experiments_dir == host / "logs"


def test_host_folders_come_from_its_settings_and_keywords_override(tmp_path, monkeypatch):
    host = tmp_path / "rvc"
    write_host(host)
    monkeypatch.chdir(host)
    monkeypatch.setenv("weight_root", "assets/my_weights")
    monkeypatch.setenv("RVC_ROOT", str(tmp_path / "elsewhere"))  # the working directory is an RVC install: it wins
    workspace = mount.host_workspace(hubert=tmp_path / "contentvec")
    assert workspace.assets.rvc_root == host and workspace.assets.dirs("weights")[0] == host / "assets" / "my_weights"
    assert workspace.assets.folders["hubert"] == tmp_path / "contentvec"
    monkeypatch.chdir(tmp_path)
    assert mount.host_workspace().assets.rvc_root == tmp_path / "elsewhere"


def test_on_ui_tabs_gives_one_blocks_in_a1111_shape(asset_dir, tmp_path):
    host = rvc_folder(tmp_path / "rvc", asset_dir, "webui.py")
    [(blocks, title, elem_id)] = mount.on_ui_tabs(host)
    assert isinstance(blocks, gr.Blocks) and (title, elem_id) == ("RVC-LoRA", "rvc_lora")
    assert top_tabs(blocks) == list(OUR_TABS)


def top_tabs(blocks):
    """The labels of the tabs directly in the page's Tabs (not the sub-tabs inside ours)."""
    tabs = next(block for block in blocks.blocks.values() if isinstance(block, gr.Tabs))
    return [child.label for child in tabs.children]
