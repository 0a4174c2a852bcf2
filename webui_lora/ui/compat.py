"""Everything that differs between the gradio versions our tabs run under, in one place: 3.14 (RVC
WebUI 2026), 3.34 (RVC WebUI classic) and the newest. UI code builds components and events through
these helpers, so the same tab mounts in an RVC host and runs standalone.

Features are detected, not version numbers compared, so a release in between gets what it has.
gradio 3.14 accepts unknown keyword arguments without a word and ignores them, and its updates take
only the keywords each component's ``update()`` names (value, choices, visible, label, minimum,
maximum, ...); optional niceties go through ``supported``.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import gradio as gr

API_PREFIX = "lora_"  # RVC's own routes are infer_*, train_*, ckpt_*, uvr_*; gradio renames duplicates silently

_PROGRESS = getattr(gr, "Progress", None)  # gradio 3.20 and newer; needs the queue


# New property values for an output component. gr.update exists in every version we support and builds
# the update dict RVC also returns by hand; Component.update() did not survive gradio 4.
update = gr.update


def supported(component: type, **options) -> dict:
    """The ``options`` that ``component`` really takes (e.g. ``info``, ``allow_custom_value``, both
    newer than 3.14); the rest are dropped here instead of being swallowed by gradio."""
    parameters = inspect.signature(component.__init__).parameters
    return {name: value for name, value in options.items()
            if name in parameters and parameters[name].kind is not inspect.Parameter.VAR_KEYWORD}


def uploaded_files(value) -> list:
    """(path, original file name) for each file a ``gr.File`` input delivered. Left at its default
    ``type``, gradio 4+ hands over paths and gradio 3 temp-file objects whose ``.name`` is the path and
    ``.orig_name`` the name the user uploaded."""
    if value is None:
        return []
    files = []
    for item in value if isinstance(value, (list, tuple)) else [value]:
        path = Path(getattr(item, "name", item))
        files.append((path, Path(getattr(item, "orig_name", None) or path).name))
    return files


def on(trigger, fn, inputs, outputs, api_name: str, **options):
    """Attach ``fn`` to an event (``button.click``, ``dropdown.change``) under a public API name: every
    event of ours has one, so each UI action can be scripted, and each starts with ``lora_``."""
    if not api_name.startswith(API_PREFIX):
        raise ValueError(f"api_name {api_name!r} must start with {API_PREFIX!r}")
    return trigger(fn, inputs=inputs, outputs=outputs, api_name=api_name, **options)


def poll(fn, inputs, outputs, seconds: float, api_name: str):
    """Run ``fn`` every ``seconds`` while the page is open, from page load on: a ``gr.Timer`` where
    gradio has one (4.40 on; its ticks skip the queue's limit and show no spinner), else a load event
    with ``every`` on the Blocks being built (gradio 3, which needs the queue for it)."""
    timer = getattr(gr, "Timer", None)
    if timer is not None:
        return on(timer(seconds).tick, fn, inputs, outputs, api_name, show_progress="hidden", concurrency_limit=None)
    from gradio.context import Context

    return on(Context.root_block.load, fn, inputs, outputs, api_name, every=seconds, show_progress=False)


def user_edit(component):
    """The event for a user's own edit of ``component``: ``.input`` where it exists (3.3x on), since
    ``.change`` also fires when a handler sets the value and would redo that handler's work; 3.14 has
    only ``.change``, so there a programmatic update runs the listener once more."""
    return getattr(component, "input", None) or component.change


def named_handler(fn, arg_names, progress: bool = False):
    """An event handler taking the inputs named ``arg_names`` (the names API clients see) that calls
    ``fn(*inputs)``. gradio passes inputs positionally and reads names from the signature, so it is
    spelled out here, which also lets an input list be built from data (adapter slots)."""
    parameters = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in arg_names]
    if not progress:
        def handler(*inputs):
            return fn(*inputs)
    elif _PROGRESS is None:
        def handler(*inputs):
            return fn(*inputs, report=_ignore_progress)
    else:
        # gradio finds gr.Progress by a parameter's default
        parameters.append(inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                            default=_PROGRESS()))

        def handler(*inputs):
            *inputs, tracker = inputs
            return fn(*inputs, report=lambda done, total, text: tracker(done / max(total, 1), desc=text))
    handler.__signature__ = inspect.Signature(parameters)
    handler.__name__ = handler.__qualname__ = fn.__name__
    handler.__doc__ = fn.__doc__
    return handler


def progress_handler(fn, arg_names):
    """``named_handler`` for an ``fn(*inputs, report=...)`` whose ``report(done, total, text)`` drives
    gr.Progress where gradio has it and does nothing on 3.14."""
    return named_handler(fn, arg_names, progress=True)


def _ignore_progress(done, total, text):
    """gradio 3.14 has no progress bar; the handler's result says how it went."""


def enable_queue(blocks: gr.Blocks, concurrency: int):
    """Queue the events (gr.Progress needs it; long conversions must not time out a plain HTTP call) with
    ``concurrency`` workers: ``concurrency_count`` in gradio 3, ``default_concurrency_limit`` since 4."""
    parameters = inspect.signature(blocks.queue).parameters
    key = "default_concurrency_limit" if "default_concurrency_limit" in parameters else "concurrency_count"
    return blocks.queue(**{key: concurrency})
