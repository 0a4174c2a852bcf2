"""The real app in a real browser: start ``python app.py`` on tiny assets, upload a spoken sentence in
headless Chromium (Debian's), pick pm, convert, download the result the page links to, then switch to
a no-f0 model and see the pitch controls go.

Needs Debian's chromium and the playwright package (its bundled driver only; no browser download).
A screenshot of the finished page is left in the test's temp folder for a human to look at.
"""

import io
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import soundfile

from ci_rules import require
from speech import one_voice_recordings

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # require() below says what to install
    sync_playwright = None

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]  # nothing leaves the machine


@pytest.fixture(scope="module")
def app_url(asset_dir, tmp_path_factory):
    require(Path(CHROMIUM).exists(), "no chromium: apt-get install chromium")
    require(sync_playwright is not None, "no playwright: pip install playwright (never `playwright install`)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path_factory.mktemp("app") / "app.log"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("RVC_ROOT", None)
    with open(log, "w") as output:
        server = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--assets", str(asset_dir)],
                                  cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_up(url, server, log)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_until_up(url, server, log, seconds=90):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"app.py exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"app.py did not answer at {url} within {seconds} s:\n{log.read_text()[-3000:]}")


def test_convert_in_the_browser(app_url, asset_dir, tmp_path):
    speech = asset_dir / "speech.wav"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(app_url, wait_until="domcontentloaded")
            convert = page.get_by_role("button", name="Convert", exact=True)
            convert.wait_for(timeout=60_000)
            page.locator("input[type=file]").set_input_files(speech)
            page.get_by_text("speech.wav").first.wait_for()
            page.get_by_label("Pitch (f0) method").click()
            page.get_by_role("option", name="pm", exact=True).click()
            convert.click()

            expected = "v2_f0_40k.pth with no adapters, index added_IVF2_Flat_nprobe_1_v2_f0_40k_v2.index\n" \
                       "speech.wav -> speech.wav: "
            expect(page.get_by_label("Report")).to_have_value(re.compile("^" + re.escape(expected)), timeout=60_000)
            link = page.locator("#lora_convert_downloads a[download]").first
            link.wait_for()
            page.locator("#lora_convert_pitch img").wait_for()
            page.screenshot(path=tmp_path / "convert_tab.png", full_page=True)
            download = page.request.get(link.get_attribute("href"))
            assert download.ok, download.status
            audio, sr = soundfile.read(io.BytesIO(download.body()))

            transpose = page.get_by_text("Transpose (semitones")
            expect(transpose).to_be_visible()
            page.get_by_label("RVC model").click()
            page.get_by_role("option", name="v2_nof0_32k.pth", exact=True).click()
            expect(page.get_by_text("no pitch (no-f0)")).to_be_visible()
            expect(transpose).to_be_hidden()  # a no-f0 model takes no pitch
        finally:
            browser.close()
    assert sr == 40000
    assert abs(len(audio) / sr - soundfile.info(speech).duration) < 0.05 and abs(audio).max() > 0


def test_train_in_the_browser_and_reconnect_after_a_reload(app_url, tmp_path):
    """Name a folder of recordings, Start, reload the page while it trains: the page finds the job again
    and shows it through to the end, with the loss plot, the preview players and the result files."""
    recordings = one_voice_recordings(tmp_path / "slt")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.goto(app_url, wait_until="domcontentloaded")
            page.get_by_role("tab", name="Train").click()
            page.get_by_label("...or a folder on this machine").fill(str(recordings))
            page.get_by_label("Experiment name (or folder)").fill(str(tmp_path / "exp"))
            page.get_by_label("Pitch (f0) method for the dataset").click()
            page.get_by_role("option", name="pm", exact=True).click()
            page.get_by_label("Adapter name").fill(str(tmp_path / "slt.safetensors"))
            epochs = page.get_by_label("number input for Epochs")
            epochs.fill("5")
            epochs.press("Enter")
            page.get_by_role("radio", name="off", exact=True).check()  # the discriminator: its cost is the trainer tests' part
            page.get_by_role("button", name="Start", exact=True).click()
            progress = page.locator("#lora_train_progress")
            expect(progress).to_contain_text("step", timeout=120_000)

            page.reload(wait_until="domcontentloaded")
            page.get_by_role("tab", name="Train").click()
            expect(page.locator("#lora_train_progress")).to_contain_text("Done: slt.safetensors", timeout=300_000)
            page.locator("#lora_train_plot img").wait_for()
            expect(page.locator("#lora_train_result")).to_contain_text(re.compile(r"slt\s*\.index"))
            expect(page.locator("#lora_train_log textarea")).to_have_value(re.compile("held-out mel L1"))
            page.screenshot(path=tmp_path / "train_tab.png", full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "slt.safetensors").is_file() and (tmp_path / "slt.index").is_file()
    assert sorted(p.name for p in (tmp_path / "slt.safetensors.training" / "previews").glob("*.wav"))[0] == "base.wav"
