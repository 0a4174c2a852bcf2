"""Entry files shaped like RVC WebUI's two layouts, written from what RVC's files do (not copied from them):
folder settings in the environment, a Blocks holding one ``with gr.Tabs():`` of the host's own tabs (a
multi-line string at column 0 inside one, as RVC's FAQ tab has), then the ``if config.iscolab:`` branch
that queues with ``concurrency_count=511, max_size=1022`` and launches. They run: the host's first tab
echoes text under its own api name, so a test can see that the host still works with our tabs in it."""

from pathlib import Path

_HEAD = '''import os
import sys

os.environ.setdefault("weight_root", "assets/weights")
os.environ.setdefault("index_root", "logs")
os.environ.setdefault("outside_index_root", "assets/indices")
os.environ.setdefault("rmvpe_root", "assets/rmvpe")

import gradio as gr
import torch  # noqa: F401  RVC loads torch (its config probes the device) before it builds the page


class Config:
    """RVC reads only argv: --port and --noautoopen here."""

    def __init__(self):
        self.listen_port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 7865
        self.noautoopen = "--noautoopen" in sys.argv
        self.iscolab = False


config = Config()
# RVC's queue call; gradio 4 renamed concurrency_count (the newest gradio stands in for a host of its own).
QUEUE = ({"concurrency_count": 511, "max_size": 1022} if gr.__version__.startswith("3.")
         else {"default_concurrency_limit": 511, "max_size": 1022})


def echo(text):
    return "host heard: " + text


'''

_BLOCKS = '''with gr.Blocks(title="RVC WebUI") as app:
    gr.Markdown("## RVC WebUI")
    with gr.Tabs():
        with gr.TabItem("Model Inference"):
            host_in = gr.Textbox(label="Host input")
            host_out = gr.Textbox(label="Host output")
            gr.Button("Host echo").click(echo, [host_in], [host_out], api_name="infer_echo")
        with gr.TabItem("Train"):
            gr.Markdown("RVC's own training")
        with gr.TabItem("FAQ"):
            try:
                info = """# FAQ
a line at column 0 inside the block
"""
                gr.Markdown(value=info)
            except Exception:
                gr.Markdown("no FAQ")

'''

WEBUI_2026 = _HEAD + '''def launch_webui_with_port_fallback(app, config):
    queued_app = app.queue(**QUEUE)
    queued_app.launch(server_name="127.0.0.1", inbrowser=not config.noautoopen, server_port=config.listen_port,
                      quiet=True)


''' + _BLOCKS + '''    if config.iscolab:
        app.queue(**QUEUE).launch(share=True)
    else:
        launch_webui_with_port_fallback(app, config)
'''

INFER_WEB_CLASSIC = _HEAD + _BLOCKS + '''    if config.iscolab:
        app.queue(**QUEUE).launch(share=True)
    else:
        app.queue(**QUEUE).launch(
            server_name="127.0.0.1",
            inbrowser=not config.noautoopen,
            server_port=config.listen_port,
            quiet=True,
        )
'''

LAYOUTS = {"webui.py": WEBUI_2026, "infer-web.py": INFER_WEB_CLASSIC}


def write_host(folder: Path, entry: str = "webui.py", newline: str = "\n") -> Path:
    """An RVC-shaped folder's entry file (``webui.py``: 2026, ``infer-web.py``: classic)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / entry
    with open(path, "w", newline="") as handle:
        handle.write(LAYOUTS[entry].replace("\n", newline))
    return path
