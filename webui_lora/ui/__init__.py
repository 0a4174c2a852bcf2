"""The Gradio UI: one module per tab, each built inside the caller's open Blocks/Tab so it runs in
our own page (``app.build_app``) and inside RVC's WebUI alike; ``compat`` absorbs the differences
between gradio 3.14, 3.34 and the newest."""
