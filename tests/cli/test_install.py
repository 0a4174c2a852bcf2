"""``install`` / ``uninstall`` on copies of entry files shaped like RVC's two layouts: the hook lands as the
last statement of the Tabs block, twice is once, uninstall gives the original back byte for byte, and a
file the installer does not know is left untouched with a message that says what to add."""

import ast
import sys

import pytest

from rvc_hosts import write_host
from webui_lora.cli import main
from webui_lora.host import MARKER, insert_hook, pip_command, plan_requirements

HOST_VERSIONS = {"gradio": "3.14.0", "torch": "2.13.0+cpu", "numpy": "1.26.4"}


def install(capsys, folder, *flags):
    code = main(["install", str(folder), "--python", sys.executable, "--check-only", *flags])
    return code, capsys.readouterr()


@pytest.mark.parametrize("entry", ["webui.py", "infer-web.py"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_install_twice_is_once_and_uninstall_restores_the_bytes(tmp_path, capsys, entry, newline):
    path = write_host(tmp_path, entry, newline)
    original = path.read_bytes()
    code, out = install(capsys, tmp_path)
    assert code == 0, out.err
    hooked = path.read_bytes()
    assert "hook added as the last line of its `with gr.Tabs():` block" in out.out
    assert install(capsys, tmp_path)[1].out.count("already there") == 1 and path.read_bytes() == hooked
    assert (tmp_path / f"{entry}.rvc-lora-backup").read_bytes() == original

    text = hooked.decode()
    assert text.count(MARKER) == 1 and text.replace("\r\n", "\n").count("\n") == original.decode().count(newline) + 1
    tabs = next(node for node in ast.walk(ast.parse(text)) if isinstance(node, ast.With)
                and ast.unparse(node.items[0].context_expr) == "gr.Tabs()")
    hook = [node for node in tabs.body if node.lineno == tabs.body[-1].lineno]  # one line, four statements
    assert MARKER in text.splitlines()[hook[0].lineno - 1] and hook[0].col_offset == 8  # inside, after RVC's tabs
    assert ast.unparse(hook[-1]) == "mount_tabs()" and len(hook) == 4

    assert main(["uninstall", str(tmp_path)]) == 0
    assert "the file is the original again" in capsys.readouterr().out
    assert path.read_bytes() == original and not (tmp_path / f"{entry}.rvc-lora-backup").exists()
    assert main(["uninstall", str(tmp_path)]) == 0 and "nothing to do" in capsys.readouterr().out


def test_an_unknown_folder_or_file_is_left_untouched_with_what_to_add(tmp_path, capsys):
    assert main(["install", str(tmp_path), "--check-only"]) == 2
    err = capsys.readouterr().err
    assert "has none of webui.py, infer-web.py" in err and "mount_tabs()" in err and len(err.splitlines()) == 1
    odd = tmp_path / "webui.py"
    odd.write_text("import gradio as gr\nwith gr.Blocks() as app:\n    gr.Markdown('no tabs')\n")
    before = odd.read_bytes()
    code, out = install(capsys, tmp_path)
    assert code == 2 and "no `with gr.Tabs():` blocks" in out.err
    assert odd.read_bytes() == before and not (tmp_path / "webui.py.rvc-lora-backup").exists()


def test_a_file_without_tabs_says_so(tmp_path, capsys):
    (tmp_path / "webui.py").write_text("import gradio as gr\nwith gr.Blocks() as app:\n    gr.Markdown('x')\n")
    code, out = install(capsys, tmp_path)
    assert code == 2 and "has no `with gr.Tabs():` blocks where RVC has one; nothing was changed" in out.err


def test_broken_python_is_not_touched(tmp_path, capsys):
    (tmp_path / "infer-web.py").write_text("with gr.Tabs(:\n")
    code, out = install(capsys, tmp_path)
    assert code == 2 and "is not valid Python (line 1)" in out.err


def test_the_hook_is_inserted_even_when_the_block_is_the_end_of_the_file(tmp_path):
    text = "import gradio as gr\nwith gr.Blocks() as app:\n    with gr.Tabs():\n        gr.Markdown('x')"
    hooked = insert_hook(text, tmp_path / "webui.py")
    assert hooked.splitlines()[-1].startswith("        import sys;") and MARKER in hooked
    ast.parse(hooked)


def test_requirements_plan_names_what_is_missing_and_never_touches_the_hosts_own():
    ours = ["torch>=2.1", "numpy>=1.23", "gradio>=3.14", "safetensors>=0.4", "soxr>=0.3", "faiss-cpu>=1.7.4"]
    assert plan_requirements({**HOST_VERSIONS, "faiss-cpu": "1.15.1"}, ours) == (["safetensors>=0.4", "soxr>=0.3"], [])
    missing, clashes = plan_requirements({**HOST_VERSIONS, "numpy": "1.21.0"}, ours)
    assert clashes == ["RVC-LoRA wants numpy>=1.23, the host has numpy 1.21.0"]
    command = pip_command("/rvc/.venv/bin/python", ["soxr>=0.3"], HOST_VERSIONS)
    assert command == ["/rvc/.venv/bin/python", "-m", "pip", "install", "soxr>=0.3", "gradio==3.14.0",
                       "torch==2.13.0+cpu", "numpy==1.26.4"]


def test_a_host_gradio_too_old_is_refused_before_the_file_changes(tmp_path, capsys, monkeypatch):
    path = write_host(tmp_path)
    before = path.read_bytes()
    monkeypatch.setattr("webui_lora.host.host_versions", lambda python: {**HOST_VERSIONS, "gradio": "3.9.1"})
    code, out = install(capsys, tmp_path)
    assert code == 2 and "RVC-LoRA needs gradio 3.14 or newer; nothing was changed" in out.err
    assert path.read_bytes() == before


def test_check_only_lists_the_missing_and_the_pip_line(tmp_path, capsys, monkeypatch):
    write_host(tmp_path)
    monkeypatch.setattr("webui_lora.host.host_versions", lambda python: dict(HOST_VERSIONS))
    code, out = install(capsys, tmp_path)
    assert code == 0 and "missing in the host environment: safetensors>=0.4" in out.out
    assert f'install them with: {sys.executable} -m pip install "safetensors>=0.4"' in out.out
    assert "gradio==3.14.0 torch==2.13.0+cpu numpy==1.26.4" in out.out
