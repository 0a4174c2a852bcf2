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

            expected = "v2_f0_40k.pth with no adapters\nspeech.wav -> speech.wav: "
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
