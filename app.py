"""Start the RVC-LoRA web app.

    python app.py [--host 127.0.0.1] [--port 7897] [--assets DIR] [--rvc-root DIR] [--auth user:pass]
                  [--device cpu|cuda]

It listens on 127.0.0.1 unless --host says otherwise, never makes a share link and sends no analytics.
With no models yet, the page says what to put where.
"""

import argparse
import os

# gradio reads this when it is imported, so it is set before anything imports gradio.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="RVC-LoRA: convert voices with RVC models and LoRA adapters")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 opens the app to your network)")
    parser.add_argument("--port", type=int, default=7897, help="port to listen on (default 7897)")
    parser.add_argument("--assets", help="asset folder with weights/, adapters/, indices/, hubert/, rmvpe/ "
                                         "(default: assets/ next to this file)")
    parser.add_argument("--rvc-root", help="an RVC WebUI folder whose models, indices, HuBERT and RMVPE to use "
                                           "as well (or set RVC_ROOT)")
    parser.add_argument("--auth", type=_credentials, help="user:pass that the page asks for")
    parser.add_argument("--device", choices=["cpu", "cuda"], help="where to convert (default: cuda if available)")
    return parser.parse_args(argv)


def _credentials(text):
    user, colon, password = text.partition(":")
    if not (user and colon and password):
        raise argparse.ArgumentTypeError("expected user:pass")
    return user, password


def main(argv=None):
    args = parse_args(argv)
    import torch

    from webui_lora.ui.app import build_app
    from webui_lora.workspace import Workspace

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device here")
    app = build_app(Workspace.open(args.assets, args.rvc_root, args.device))
    app.launch(server_name=args.host, server_port=args.port, auth=args.auth, share=False, inbrowser=False,
               show_error=True)


if __name__ == "__main__":
    main()
