"""Run by test_gradio_versions.py under an old gradio (3.14 or 3.34): build the whole app on tiny
assets, with any keyword gradio would silently ignore turned into an error, then drive its events
through gradio 3's own HTTP API (POST /run/<api_name>) and print what came back as one JSON object.

    python gradio3_check.py ASSET_DIR SPEECH_WAV
"""

import base64
import json
import socket
import sys
import urllib.request
import warnings
from pathlib import Path

MODEL = "v2_f0_40k.pth"
NONE = "(none)"


def main(asset_dir, speech):
    warnings.filterwarnings("error", message="You have unused kwarg parameters")
    import gradio as gr

    from webui_lora.assets import Assets
    from webui_lora.ui.app import build_app
    from webui_lora.ui.convert_tab import ADAPTER_SLOTS
    from webui_lora.workspace import Workspace

    app = build_app(Workspace(Assets(Path(asset_dir)), device="cpu"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)

    def call(api_name, *data):
        request = urllib.request.Request(f"http://127.0.0.1:{port}/run/{api_name}", method="POST",
                                         data=json.dumps({"data": list(data)}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.load(response)["data"]

    upload = {"name": Path(speech).name, "is_file": False,
              "data": "data:audio/wav;base64," + base64.b64encode(Path(speech).read_bytes()).decode()}
    no_adapters = [NONE] * ADAPTER_SLOTS
    try:
        results = {
            "gradio": gr.__version__,
            "api_names": [dependency["api_name"] for dependency in app.config["dependencies"]],
            "refresh": call("lora_refresh", MODEL, NONE, "rmvpe", *no_adapters),
            "select_model": call("lora_select_model", MODEL, *no_adapters),
            "convert": call("lora_convert", [upload], MODEL, 0, 0, "pm", "classic", 3, NONE, 0.75, 0.33, 0.25, 0,
                            "wav", "voice.safetensors", 0.5, *[NONE, 1] * (ADAPTER_SLOTS - 1)),
            "header": call("lora_refresh_help"),
            "dataset_report": call("lora_dataset_report", [upload], "", str(Path(asset_dir) / "scratch" / "exp"),
                                   MODEL, "40k", "v2", True),
            "train_status": call("lora_train_status", None),
            "train_start": call("lora_train_start", None, "", str(Path(asset_dir) / "scratch" / "unprepared"), MODEL,
                                "pm", "x", "dec+flow", 4, 0, "off", False, 1, 2, 1e-3, 100, 0),
        }
    finally:
        app.close()
    print(json.dumps(results))


if __name__ == "__main__":
    main(*sys.argv[1:])
