"""The Merge tab: adapters and models as files. Sub-tabs bake a stack into a stock RVC model, combine
adapters, extract an adapter from a fine-tuned voice, resize one, blend two models, and inspect an
adapter. Each shows the file it wrote and the report, and with a probe clip a before/after listen
converted by the Convert pipeline. The work is ``webui_lora.merge`` (through the workspace), the same
the ``merge``, ``merge-adapters``, ``extract``, ``resize`` and ``blend`` commands run.
"""

from __future__ import annotations

import logging

import gradio as gr

from .. import inspect_files
from ..errors import UserError, describe_error
from ..merge import COMBINE_METHODS, STYLES, blend, combine, extract, resize
from ..workspace import NONE
from . import compat

SLOTS = 4  # adapter slots per stack (gradio 3 cannot add components once the page is built)

log = logging.getLogger(__name__)


def build_merge_tab(workspace) -> "MergeTab":
    """Create the Merge tab in the caller's open Blocks/Tab over ``workspace`` (a ``Workspace``)."""
    return MergeTab(workspace)


class MergeTab:
    def __init__(self, workspace):
        self.workspace = workspace
        self._build()
        self._wire()

    # ----- layout ---------------------------------------------------------------------------------
    def _build(self):
        models = self._models()
        first = models[0] if models else None
        adapters = self._fitting(first)
        with gr.Row():
            self.probe = gr.Audio(label="Probe clip (optional): each result is converted with it, before and after",
                                  type="filepath")
            self.refresh_button = gr.Button("Refresh lists")
        self.stacks = {}
        with gr.Tabs():
            with gr.Tab("Bake"):
                gr.Markdown("Fold adapters into the base: a stock RVC `.pth` that RVC, Applio and other tools load.")
                self.bake_base = gr.Dropdown(label="Base model", choices=models, value=first)
                self.stacks["bake"] = self._stack(adapters)
                with gr.Row():
                    self.bake_style = gr.Radio(label="Weight-norm keys", choices=list(STYLES), value=STYLES[0])
                    self.bake_index = gr.Checkbox(label="Merge the adapters' indices into one", value=True)
                self.bake_name = gr.Textbox(label="New model name (saved in the weights folder)", value="baked")
                self.bake_info = gr.Textbox(label="Info text (default: what it was made from)")
                self.bake_button = gr.Button("Bake", variant="primary")
                self.bake_out = self._outputs("bake")
            with gr.Tab("Combine"):
                gr.Markdown("Several adapters of one base into one. *cat* is exact (ranks add up); the others "
                            "re-factor to a rank or an energy share.")
                self.combine_base = gr.Dropdown(label="Base model (offers the adapters that fit; used to listen)",
                                                choices=models, value=first)
                self.stacks["combine"] = self._stack(adapters)
                with gr.Row():
                    self.combine_method = gr.Dropdown(label="Method", choices=list(COMBINE_METHODS), value="cat")
                    self.combine_rank, self.combine_energy = self._size_inputs()
                    self.combine_density = gr.Slider(label="Density (ties, dare)", minimum=0.05, maximum=1,
                                                     value=0.5, step=0.05)
                self.combine_name = gr.Textbox(label="New adapter name", value="combined")
                self.combine_button = gr.Button("Combine", variant="primary")
                self.combine_out = self._outputs("combine")
            with gr.Tab("Extract"):
                gr.Markdown("Turn a fine-tuned RVC voice into a small adapter against its base, without "
                            "retraining. Give several candidate bases and the closest is used.")
                several = compat.supported(gr.Dropdown, multiselect=True)  # gradio 3.14: one base
                self.extract_bases = gr.Dropdown(label="Base model(s)", choices=models, **several,
                                                 value=([first] if first else []) if several else first)
                self.extract_tuned = gr.Dropdown(label="Fine-tuned voice", choices=models, value=None)
                with gr.Row():
                    self.extract_rank, self.extract_energy = self._size_inputs(rank=16)
                self.extract_name = gr.Textbox(label="New adapter name", value="extracted")
                self.extract_button = gr.Button("Extract", variant="primary")
                self.extract_out = self._outputs("extract")
            with gr.Tab("Resize"):
                self.resize_base = gr.Dropdown(label="Base model (offers the adapters that fit; used to listen)",
                                               choices=models, value=first)
                self.resize_adapter = gr.Dropdown(label="Adapter", choices=[NONE, *adapters], value=NONE)
                with gr.Row():
                    self.resize_rank, self.resize_energy = self._size_inputs(rank=4)
                self.resize_name = gr.Textbox(label="New adapter name", value="resized")
                self.resize_button = gr.Button("Resize", variant="primary")
                self.resize_out = self._outputs("resize")
            with gr.Tab("Blend"):
                gr.Markdown("Two models of one architecture, mixed on their effective weights (RVC's fusion "
                            "averages weight norm's g and v apart).")
                with gr.Row():
                    self.blend_a = gr.Dropdown(label="Model A", choices=models, value=first)
                    self.blend_b = gr.Dropdown(label="Model B", choices=models, value=None)
                self.blend_ratio = gr.Slider(label="Share of model A", minimum=0, maximum=1, value=0.5, step=0.01)
                self.blend_style = gr.Radio(label="Weight-norm keys", choices=list(STYLES), value=STYLES[0])
                self.blend_name = gr.Textbox(label="New model name", value="blended")
                self.blend_button = gr.Button("Blend", variant="primary")
                self.blend_out = self._outputs("blend")
            with gr.Tab("Inspect"):
                self.inspect_adapter = gr.Dropdown(label="Adapter", choices=[NONE, *self._adapters()], value=NONE)
                self.inspect_base = gr.Dropdown(label="Check against model", choices=[NONE, *models], value=NONE)
                self.inspect_button = gr.Button("Inspect")
                self.inspect_report = gr.Textbox(label="Adapter", lines=14, interactive=False,
                                                 elem_id="lora_merge_inspect_report")

    def _stack(self, adapters):
        slots = []
        for slot in range(1, SLOTS + 1):
            with gr.Row():
                picker = gr.Dropdown(label=f"Adapter {slot}", choices=[NONE, *adapters], value=NONE)
                strength = gr.Slider(label=f"Strength {slot}", minimum=-2, maximum=2, value=1, step=0.05)
            slots.append((picker, strength))
        return slots

    def _size_inputs(self, rank=0):
        return (gr.Number(label="Rank (0: no cap)", value=rank, precision=0),
                gr.Slider(label="Energy share to keep (0: use the rank)", minimum=0, maximum=1, value=0, step=0.01))

    def _outputs(self, name):
        with gr.Row():
            file = gr.File(label="Result", interactive=False, elem_id=f"lora_merge_{name}_file")
            report = gr.Textbox(label="Report", lines=8, interactive=False, elem_id=f"lora_merge_{name}_report")
        with gr.Row():
            before = gr.Audio(label="Before", type="filepath", interactive=False)
            after = gr.Audio(label="After", type="filepath", interactive=False)
        return [file, report, before, after]

    def _wire(self):
        for name, base in (("bake", self.bake_base), ("combine", self.combine_base)):
            pickers = [picker for picker, _ in self.stacks[name]]
            compat.on(base.change, self.fitting_adapters, [base, *pickers], pickers, f"lora_merge_{name}_base")
        compat.on(self.resize_base.change, self.fitting_adapters, [self.resize_base, self.resize_adapter],
                  [self.resize_adapter], "lora_merge_resize_base")

        def stack_inputs(name):
            return [component for slot in self.stacks[name] for component in slot]

        actions = [
            ("bake", self.bake_button, self.bake,
             [("base", self.bake_base), ("style", self.bake_style), ("merge_index", self.bake_index),
              ("name", self.bake_name), ("info", self.bake_info)], self.bake_out),
            ("combine", self.combine_button, self.combine,
             [("base", self.combine_base), ("method", self.combine_method), ("rank", self.combine_rank),
              ("energy", self.combine_energy), ("density", self.combine_density), ("name", self.combine_name)],
             self.combine_out),
            ("extract", self.extract_button, self.extract,
             [("bases", self.extract_bases), ("tuned", self.extract_tuned), ("rank", self.extract_rank),
              ("energy", self.extract_energy), ("name", self.extract_name)], self.extract_out),
            ("resize", self.resize_button, self.resize,
             [("base", self.resize_base), ("adapter", self.resize_adapter), ("rank", self.resize_rank),
              ("energy", self.resize_energy), ("name", self.resize_name)], self.resize_out),
            ("blend", self.blend_button, self.blend,
             [("model_a", self.blend_a), ("model_b", self.blend_b), ("ratio", self.blend_ratio),
              ("style", self.blend_style), ("name", self.blend_name)], self.blend_out),
        ]
        for name, button, fn, named, outputs in actions:
            named = [("probe", self.probe), *named]
            slots = [f"{kind}_{slot}" for slot in range(1, SLOTS + 1) for kind in ("adapter", "strength")]
            components = [c for _, c in named] + (stack_inputs(name) if name in self.stacks else [])
            names = [n for n, _ in named] + (slots if name in self.stacks else [])
            compat.on(button.click, compat.progress_handler(fn, names), components, outputs, f"lora_merge_{name}")
        compat.on(self.inspect_button.click, self.inspect, [self.inspect_adapter, self.inspect_base],
                  [self.inspect_report], "lora_merge_inspect")
        lists = [self.bake_base, self.combine_base, self.extract_tuned, self.resize_base, self.blend_a, self.blend_b,
                 self.extract_bases, self.inspect_base, self.inspect_adapter]
        compat.on(self.refresh_button.click, self.refresh, lists, lists, "lora_merge_refresh")

    # ----- handlers -------------------------------------------------------------------------------
    def fitting_adapters(self, base, *chosen):
        """The adapters that fit ``base``, keeping each slot's choice where it still fits."""
        fitting = self._fitting(base)
        return [compat.update(choices=[NONE, *fitting], value=value if value in fitting else NONE) for value in chosen]

    def refresh(self, *values):
        """Look at the asset folders again (new models and adapters from any tab or command)."""
        models, adapters = self._models(), self._adapters()
        *single, bases, inspect_base, inspect_adapter = values
        return [*(compat.update(choices=models, value=value if value in models else None) for value in single),
                compat.update(choices=models, value=[value for value in _as_list(bases) if value in models]
                              if isinstance(bases, list) else (bases if bases in models else None)),
                compat.update(choices=[NONE, *models], value=inspect_base if inspect_base in models else NONE),
                compat.update(choices=[NONE, *adapters], value=inspect_adapter if inspect_adapter in adapters
                              else NONE)]

    def bake(self, probe, base, style, merge_index, name, info, *slots, report=None):
        """Bake the stack into a new model in the weights folder."""
        def work():
            stack = self._stack_values(slots)
            if not stack:
                raise UserError("no adapters chosen", "pick at least one adapter to bake in")
            base_path = self.workspace.resolve(base, "model")
            result = self.workspace.bake(base_path, stack, name, merge_index=bool(merge_index),
                                         style=style, info=info or None, progress=report)
            return result, (base_path, []), (result.output, [])
        return self._run(work, probe)

    def combine(self, probe, base, method, rank, energy, density, name, *slots, report=None):
        """Combine the stack into one adapter in the adapters folder."""
        def work():
            stack = self._stack_values(slots)
            rank_, energy_ = _size(rank, energy)
            result = combine(stack, self.workspace.output_path(name, "adapter"), method=method, rank=rank_,
                             energy=energy_, density=float(density))
            base_path = self.workspace.resolve(base, "model")
            return result, (base_path, stack), (base_path, [(result.output, 1.0)])
        return self._run(work, probe)

    def extract(self, probe, bases, tuned, rank, energy, name, report=None):
        """Extract an adapter from the fine-tuned voice against the closest base."""
        def work():
            rank_, energy_ = _size(rank, energy)
            candidates = [self.workspace.resolve(b, "model") for b in _as_list(bases)]
            tuned_path = self.workspace.resolve(tuned, "model")
            result = extract(candidates, tuned_path, self.workspace.output_path(name, "adapter"), rank=rank_,
                             energy=energy_, progress=report)
            return result, (tuned_path, []), (result.base, [(result.output, 1.0)])
        return self._run(work, probe)

    def resize(self, probe, base, adapter, rank, energy, name, report=None):
        """Resize the adapter into a new one."""
        def work():
            rank_, energy_ = _size(rank, energy)
            adapter_path = self.workspace.resolve(adapter, "adapter")
            result = resize(adapter_path, self.workspace.output_path(name, "adapter"), rank=rank_, energy=energy_)
            base_path = self.workspace.resolve(base, "model")
            return result, (base_path, [(adapter_path, 1.0)]), (base_path, [(result.output, 1.0)])
        return self._run(work, probe)

    def blend(self, probe, model_a, model_b, ratio, style, name, report=None):
        """Blend model A and model B into a new model."""
        def work():
            a, b = self.workspace.resolve(model_a, "model"), self.workspace.resolve(model_b, "model")
            result = blend(a, b, float(ratio), self.workspace.output_path(name, "model"), style=style)
            return result, (a, []), (result.output, [])
        return self._run(work, probe)

    def inspect(self, adapter, base):
        """Everything in the adapter's metadata and, given a model, whether it fits."""
        try:
            path = self.workspace.resolve(adapter, "adapter")
            base_path = None if base in (None, NONE) else self.workspace.resolve(base, "model")
            return inspect_files.as_text(inspect_files.describe(path, base_path))
        except Exception as err:  # shown to the user, never a stack trace
            return describe_error(err, log)

    # ----- helpers --------------------------------------------------------------------------------
    def _run(self, work, probe):
        """Run an operation; then, with a probe clip, convert it before and after. -> (file, report, before, after)."""
        try:
            result, before, after = work()
        except Exception as err:  # shown to the user, never a stack trace
            return [None, f"Nothing written: {describe_error(err, log)}", None, None]
        text = result.report()
        listened = [None, None]
        if probe:
            try:
                listened = [self.workspace.probe(probe, *before), self.workspace.probe(probe, *after)]
            except Exception as err:  # the file is written; only the listen failed
                text += f"\nNo before/after listen: {describe_error(err, log)}"
        return [str(result.output), text + "\nRefresh the lists in the other tabs to pick it there.", *listened]

    def _stack_values(self, slots):
        return [self.workspace.parse_adapter(name, strength)
                for name, strength in zip(slots[::2], slots[1::2]) if name not in (None, NONE)]

    def _models(self) -> list:
        return list(self.workspace.choices("model"))

    def _adapters(self) -> list:
        return list(self.workspace.choices("adapter"))

    def _fitting(self, base) -> list:
        """Names of the adapters that fit ``base`` (all of them while no base is chosen or it cannot load)."""
        if base in (None, NONE):
            return self._adapters()
        names = {path: name for name, path in self.workspace.choices("adapter").items()}
        try:
            with self.workspace.lock:
                compatible = self.workspace.converter.compatible_adapters(self.workspace.resolve(base, "model"))
        except Exception as err:  # an unloadable base offers nothing; its action will say why
            log.info("no adapters for %s: %s", base, err)
            return []
        return [names[path] for path, _ in compatible if path in names]


def _size(rank, energy) -> tuple:
    """The rank / energy inputs as the merge functions take them (0 means not given)."""
    rank = int(rank or 0)
    energy = float(energy or 0)
    return (rank if rank > 0 else None), (energy if energy > 0 else None)


def _as_list(value) -> list:
    """A multiselect's value (a list; one name or None on gradio 3.14) as a list."""
    return list(value) if isinstance(value, (list, tuple)) else ([] if value in (None, "") else [value])
