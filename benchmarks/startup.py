"""Start-up: seconds from process start to the first page (HTTP 200 on /) for ``python app.py``, and for
an RVC-shaped host (tests/rvc_hosts.py) without and with our hook, run by run interleaved in one run.
The hook's cost is the difference of the two host medians. The host runs under the gradio 3.14 env of
scripts/install_ui_test_envs.sh when it is there (RVC 2026's gradio), else this interpreter.

    .venv/bin/python benchmarks/startup.py [--repeats 3] [--host-python PATH]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from rvc_hosts import write_host  # noqa: E402

sys.path.insert(0, str(ROOT))
from webui_lora.host import insert_hook  # noqa: E402

TARGETS = {"app.py first page": 10.0, "hook's cost": 2.0}


def first_page_seconds(command: list, cwd: Path, timeout: float = 120) -> float:
    """Seconds until ``command`` (given ``--port``) answers GET / with 200; the process is then stopped."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONWARNINGS": "ignore"}
    env.pop("RVC_ROOT", None)
    started = time.perf_counter()
    process = subprocess.Popen([*command, "--port", str(port)], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - started < timeout:
            if process.poll() is not None:
                raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{' '.join(command)}: no page within {timeout} s")
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    default_host = ROOT / ".gradio-envs" / "3.14" / "bin" / "python"
    parser.add_argument("--host-python", default=str(default_host if default_host.exists() else sys.executable))
    args = parser.parse_args()
    args.host_python = os.path.abspath(args.host_python)  # not resolve(): a venv's python is a symlink

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        bare, hooked = scratch / "bare", scratch / "hooked"
        write_host(bare)
        hooked_entry = write_host(hooked)
        hooked_entry.write_text(insert_hook(hooked_entry.read_text(), hooked_entry))
        (scratch / "assets").mkdir()
        runs = {"app.py first page": ([sys.executable, str(ROOT / "app.py"), "--assets", str(scratch / "assets")],
                                      ROOT),
                "host without the hook": ([args.host_python, "webui.py", "--noautoopen"], bare),
                "host with the hook": ([args.host_python, "webui.py", "--noautoopen"], hooked)}
        times = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, (command, cwd) in runs.items():
                times[name].append(first_page_seconds(command, cwd))

    medians = {name: statistics.median(values) for name, values in times.items()}
    medians["hook's cost"] = medians["host with the hook"] - medians["host without the hook"]
    print(f"host Python: {args.host_python}; median of {args.repeats}, interleaved")
    for name, seconds in medians.items():
        target = f" (target under {TARGETS[name]:g} s)" if name in TARGETS else ""
        runs_text = ", ".join(f"{value:.2f}" for value in times.get(name, []))
        print(f"{name:24s} {seconds:6.2f} s{target}" + (f"   runs: {runs_text}" if runs_text else ""))


if __name__ == "__main__":
    main()
