"""Our tabs inside a page someone else builds: RVC WebUI (``webui.py``, ``infer-web.py``), hosts that take
A1111's ``on_ui_tabs`` shape, and Applio's plugin folder.

RVC has no plugin mechanism, so the hook is one line inside its ``with gr.Tabs():`` block (the installer
puts it there, last, so RVC's own first tab stays the one selected). Each of our tabs is built on its
own: one that fails shows its error where it would have been and the page starts anyway. Events run in
the host's queue under ``lora_`` api names; conversions wait on our own lock, never on the host's work.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path

import gradio as gr

from ..assets import Assets
from ..errors import user_message
from ..host import ENTRY_FILES
from ..workspace import Workspace

log = logging.getLogger(__name__)

# label, module in this package, builder: each fills an open Tab from a Workspace, as the standalone app does.
TABS = (("LoRA Train", "train_tab", "build_train_tab"),
        ("LoRA Merge", "merge_tab", "build_merge_tab"),
        ("LoRA Convert", "convert_tab", "build_convert_tab"))
# RVC's folder settings (its .env and webui.py's defaults), relative to its working directory.
HOST_FOLDERS = {"weights": "weight_root", "logs": "index_root", "indices": "outside_index_root",
                "rmvpe": "rmvpe_root"}


def mount_tabs(root=None, **folders) -> Workspace | None:
    """Add "LoRA Train", "LoRA Merge" and "LoRA Convert" to the host's open ``gr.Tabs()``, over the host's
    folders (``root``: the RVC folder; default its working directory, or ``RVC_ROOT``); keyword arguments
    (weights, indices, logs, hubert, rmvpe, pretrained_v2, pretrained, adapters) override one folder each.
    Returns the Workspace, or None when even the folders could not be read (each tab then says why)."""
    try:
        workspace = host_workspace(root, **folders)
    except Exception as err:
        log.exception("RVC-LoRA: the host's folders could not be read")
        workspace, failure = None, err
    for label, module, builder in TABS:
        with gr.Tab(label):
            if workspace is None:
                gr.Markdown(failure_text(label, failure))
            else:
                build_isolated(label, module, builder, workspace)
    return workspace


def build_isolated(label: str, module: str, builder: str, workspace: Workspace) -> bool:
    """Build one tab into the open Tab; on any failure, show it there instead and let the page go on."""
    try:
        getattr(importlib.import_module(f".{module}", __package__), builder)(workspace)
        return True
    except Exception as err:
        log.exception("RVC-LoRA: building the %s tab failed", label)
        gr.Markdown(failure_text(label, err))
        return False


def failure_text(label: str, err: BaseException) -> str:
    reason = user_message(err) or f"{type(err).__name__}: {err}"
    return (f"**{label} could not be built.** {reason}\n\nThe other tabs work. The console has the full "
            "traceback; `python -m webui_lora install RVC_DIR` says which of our requirements this "
            "environment lacks.")


def host_root(root=None) -> Path:
    """The host's folder: ``root``, else the working directory when it is an RVC install, else
    ``RVC_ROOT``, else the working directory."""
    if root:
        return Path(root).expanduser().resolve()
    here = Path.cwd()
    if any((here / name).is_file() for name in ENTRY_FILES) or not os.environ.get("RVC_ROOT"):
        return here
    return Path(os.environ["RVC_ROOT"]).expanduser().resolve()


def host_workspace(root=None, **folders) -> Workspace:
    """A Workspace over the host's folders: its settings (``weight_root`` ...) from the environment,
    HuBERT, RMVPE and pretrained files in its ``assets``, its ``logs``; ours (./assets) searched last."""
    root = host_root(root)
    found = {kind: root / os.environ[variable] for kind, variable in HOST_FOLDERS.items() if os.environ.get(variable)}
    return Workspace(Assets.discover(root / "assets", root, **{**found, **folders}))


def on_ui_tabs(root=None, **folders) -> list:
    """A1111's shape: ``[(blocks, title, elem_id)]``, our tabs in one Blocks for a host to render."""
    with gr.Blocks(analytics_enabled=False) as blocks:
        with gr.Tabs():
            mount_tabs(root, **folders)
    return [(blocks, "RVC-LoRA", "rvc_lora")]


def applio_plugin() -> None:
    """Applio's plugin entry: it calls this inside its own TabItem, from Applio's folder."""
    with gr.Tabs():
        mount_tabs(Path.cwd())
