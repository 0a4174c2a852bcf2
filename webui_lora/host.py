"""Putting our tabs into an existing RVC WebUI: its entry file gets one hook line, its Python environment
gets only the requirements it lacks.

The hook goes in as the last statement of the entry file's one ``with gr.Tabs():`` block (found with
``ast``, so strings and continuation lines cannot mislead it), so RVC's own tabs keep their order and
its first tab stays selected. The file is backed up first; uninstall takes out exactly that line, which
gives back the original byte for byte. Requirements are checked with the host's own interpreter and
installed by a pip call that names the host's gradio, torch and numpy at their versions, so nothing of the host's
changes under it.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

from lora_core.atomic import atomic_path

from .errors import UserError

REPO = Path(__file__).resolve().parent.parent
ENTRY_FILES = ("webui.py", "infer-web.py")  # RVC 2026, RVC classic
MARKER = "# RVC-LoRA tabs"
BACKUP_SUFFIX = ".rvc-lora-backup"
PINNED = ("gradio", "torch", "numpy")  # the host's own: never changed by us
MIN_GRADIO, MIN_TORCH = (3, 14), (2, 1)
# Where RVC's installers put their interpreter: a venv in the folder, or the Windows bundle's runtime.
HOST_PYTHONS = (".venv/bin/python", "venv/bin/python", "runtime/python.exe", ".venv/Scripts/python.exe")


def hook_line(indent: str, repo: Path = REPO) -> str:
    return (f"{indent}import sys; sys.path.insert(0, {str(repo)!r}); "
            f"from webui_lora.ui.mount import mount_tabs; mount_tabs()  {MARKER}")


def find_entry(rvc_dir) -> Path:
    """The host's entry file (``webui.py``: RVC 2026, ``infer-web.py``: classic)."""
    folder = Path(rvc_dir).expanduser().resolve()
    if not folder.is_dir():
        raise UserError(str(folder), "no such folder; give the RVC WebUI folder (the one with webui.py)")
    for name in ENTRY_FILES:
        if (folder / name).is_file():
            return folder / name
    raise UserError(str(folder), f"has none of {', '.join(ENTRY_FILES)}, so it is not an RVC WebUI folder this "
                                 f"installer knows; add by hand, as the last line inside its `with gr.Tabs():` "
                                 f"block: {hook_line('').strip()}")


def insert_hook(text: str, path: Path) -> str:
    """``text`` with the hook as the last statement of its one ``with gr.Tabs():`` block (unchanged if there)."""
    if MARKER in text:
        return text
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines(keepends=True)
    block = _tabs_block(text, path)
    indent = " " * block.body[0].col_offset
    end = block.end_lineno  # 1-based last line of the block = index of the line after it
    if not lines[end - 1].endswith(("\n", "\r")):
        lines[end - 1] += newline
    lines.insert(end, hook_line(indent) + newline)
    return "".join(lines)


def remove_hook(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if MARKER not in line)


def _tabs_block(text: str, path: Path) -> ast.With:
    try:
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as err:
        raise UserError(str(path), f"is not valid Python (line {err.lineno}); fix it or restore it first") from None
    blocks = [node for node in ast.walk(tree) if isinstance(node, ast.With) and any(_is_tabs(item.context_expr)
                                                                                    for item in node.items)]
    if len(blocks) != 1:
        found = "no" if not blocks else f"{len(blocks)}"
        raise UserError(str(path), f"has {found} `with gr.Tabs():` blocks where RVC has one; nothing was changed. "
                                   f"Add by hand, as the last line inside the block that holds RVC's tabs: "
                                   f"{hook_line('').strip()}")
    return blocks[0]


def _is_tabs(node) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "Tabs"
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "gr")


def install(rvc_dir, python: Optional[str] = None, packages: bool = True) -> list:
    """Hook our tabs into the RVC WebUI at ``rvc_dir`` once its gradio and torch are known to fit; then
    install (or, without ``packages``, list) what its environment lacks. Returns what was done, a line each."""
    entry = find_entry(rvc_dir)
    python = host_python(entry.parent, python)
    installed = host_versions(python)
    lines = [check_host(python, installed)]
    original = _read(entry)
    hooked = insert_hook(original, entry)
    if hooked == original:
        lines.append(f"{entry}: the RVC-LoRA hook is already there")
    else:
        backup = entry.with_name(entry.name + BACKUP_SUFFIX)
        if not backup.exists():
            _write(backup, original)
        _write(entry, hooked)
        lines.append(f"{entry}: hook added as the last line of its `with gr.Tabs():` block (backup: {backup.name})")
    return lines + add_requirements(python, installed, install_missing=packages)


def uninstall(rvc_dir) -> list:
    """Take the hook out again; the file is then the original, byte for byte. Returns what was done."""
    entry = find_entry(rvc_dir)
    text = _read(entry)
    if MARKER not in text:
        return [f"{entry}: no RVC-LoRA hook in it; nothing to do"]
    restored = remove_hook(text)
    _write(entry, restored)
    backup = entry.with_name(entry.name + BACKUP_SUFFIX)
    if not backup.exists():
        return [f"{entry}: hook removed"]
    if _read(backup) != restored:
        return [f"{entry}: hook removed; the file was edited since install, so {backup.name} is kept"]
    backup.unlink()
    return [f"{entry}: hook removed; the file is the original again"]


def host_python(rvc_dir: Path, python: Optional[str] = None) -> str:
    """The host's interpreter: ``python`` as given, else one of RVC's install layouts, else this one."""
    if python:
        return python
    found = next((rvc_dir / candidate for candidate in HOST_PYTHONS if (rvc_dir / candidate).is_file()), None)
    return str(found) if found else sys.executable


def check_host(python: str, installed: dict) -> str:
    """One line on the host's gradio, torch and numpy; an error if its gradio or torch is too old for us."""
    for name, minimum in (("gradio", MIN_GRADIO), ("torch", MIN_TORCH)):
        if name not in installed or _release(installed[name]) < minimum:
            raise UserError(f"host {name} {installed.get(name, 'missing')}",
                            f"RVC-LoRA needs {name} {'.'.join(map(str, minimum))} or newer; nothing was changed")
    return f"host Python {python}: " + ", ".join(f"{name} {installed.get(name, 'missing')}" for name in PINNED)


def add_requirements(python: str, installed: dict, install_missing: bool = True) -> list:
    """Lines on each of our requirements the host lacks; those are pip installed (when ``install_missing``)
    with the host's gradio, torch and numpy held where they are."""
    missing, clashes = plan_requirements(installed, read_requirements())
    if clashes:
        raise UserError("host packages", "; ".join(clashes) + ": these are the host's own and are left alone")
    if not missing:
        return ["the host environment has every requirement of RVC-LoRA"]
    lines = ["missing in the host environment: " + ", ".join(missing)]
    command = pip_command(python, missing, installed)
    if not install_missing:
        return lines + ["install them with: " + " ".join(f'"{word}"' if " " in word or "<" in word or ">" in word
                                                           else word for word in command)]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        tail = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UserError("pip", f"could not install {', '.join(missing)} without changing the host's "
                               f"{', '.join(PINNED)} ({tail[0]}); nothing of the host's was changed")
    return lines + [f"installed into the host environment: {', '.join(missing)}"]


def pip_command(python: str, missing: list, installed: dict) -> list:
    """pip into the host's environment, its gradio, torch and numpy named at their own versions so that
    pip refuses (instead of making) any change to them."""
    return [python, "-m", "pip", "install", *missing, *(f"{name}=={installed[name]}" for name in PINNED
                                                        if name in installed)]


def host_versions(python: str) -> dict:
    """{distribution name (lower case): version} of everything installed in ``python``'s environment."""
    # The first of two copies wins, as it does on import (a venv that extends another's site-packages).
    code = ("import importlib.metadata as m, json\nfound = {}\nfor d in m.distributions():\n"
            "    found.setdefault((d.metadata['Name'] or '').lower(), d.version)\nprint(json.dumps(found))")
    try:
        run = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONWARNINGS": "ignore"})
    except OSError as err:
        raise UserError(python, f"cannot run the host's Python ({err}); give it with --python") from None
    if run.returncode != 0:
        raise UserError(python, f"the host's Python failed ({(run.stderr.strip().splitlines() or ['?'])[-1]})")
    return {name.replace("_", "-"): version for name, version in json.loads(run.stdout).items()}


def read_requirements(path: Path = REPO / "requirements.txt") -> list:
    """Our runtime requirements, one specifier string each (comments dropped)."""
    return [line.split("#")[0].strip() for line in path.read_text().splitlines()
            if line.split("#")[0].strip() and not line.startswith("-")]


def plan_requirements(installed: dict, requirements: list) -> tuple:
    """(requirements the host lacks or has too old, clashes with the host's pinned packages)."""
    from packaging.requirements import Requirement

    missing, clashes = [], []
    for text in requirements:
        requirement = Requirement(text)
        name = requirement.name.lower().replace("_", "-")
        have = installed.get(name)
        if have is not None and requirement.specifier.contains(have, prereleases=True):
            continue
        if name in PINNED:
            clashes.append(f"RVC-LoRA wants {text}, the host has {name} {have or 'missing'}")
        else:
            missing.append(text)
    return missing, clashes


def _release(version: str) -> tuple:
    from packaging.version import Version

    return Version(version).release[:2]


def _read(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as handle:
        return handle.read()


def _write(path: Path, text: str) -> None:
    with atomic_path(path) as target:
        with open(target, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
