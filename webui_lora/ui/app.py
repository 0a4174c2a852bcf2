"""The standalone page: a header that says which assets are missing and how to get them, a status panel
of every asset found or missing, then one tab
per job. Each tab is built by a function that fills the caller's open Tab, the same function an RVC
WebUI host calls, so a new tab is one more ``with gr.Tab(...)`` here."""

from __future__ import annotations

from functools import partial

import gradio as gr

from . import compat
from .convert_tab import build_convert_tab
from .merge_tab import build_merge_tab
from .train_tab import build_train_tab

TITLE = "RVC-LoRA"


def build_app(workspace) -> gr.Blocks:
    """The whole page over ``workspace`` (a ``Workspace``: asset folders, device, converter), queued."""
    with gr.Blocks(title=TITLE, analytics_enabled=False) as app:
        header = gr.Markdown(header_text(workspace.assets))
        with gr.Accordion("Assets: what is found, what is missing", open=False):
            status = gr.Markdown(workspace.assets.status_text())
        with gr.Tabs():
            with gr.Tab("Convert"):
                convert = build_convert_tab(workspace)
            with gr.Tab("Train"):
                build_train_tab(workspace)
            with gr.Tab("Merge"):
                build_merge_tab(workspace)
        compat.on(convert.refresh_button.click, partial(page_status, workspace.assets), [], [header, status],
                  "lora_refresh_help")
    # One worker: conversions are CPU/GPU bound and share one loaded model.
    compat.enable_queue(app, concurrency=1)
    return app


def page_status(assets) -> tuple:
    """The header and the asset status panel, read again (after a download or a copy into assets/)."""
    return header_text(assets), assets.status_text()


def header_text(assets) -> str:
    """The title, plus what to put where while models or HuBERT are missing."""
    text = f"# {TITLE}\nConvert voices with an RVC model and LoRA adapters."
    if not assets.models() or assets.hubert() is None:
        text += "\n\n**Before the first conversion:**\n\n" + assets.missing_help()
    return text
