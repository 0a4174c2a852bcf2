"""``python app.py``'s arguments: loopback by default, user:pass for --auth, no CUDA no --device cuda."""

import importlib.util
from pathlib import Path

import pytest
import torch

spec = importlib.util.spec_from_file_location("launcher", Path(__file__).resolve().parents[2] / "app.py")
launcher = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launcher)


def test_defaults_listen_on_loopback_without_auth():
    args = launcher.parse_args([])
    assert (args.host, args.port, args.auth, args.assets, args.rvc_root, args.device) == \
        ("127.0.0.1", 7897, None, None, None, None)


def test_auth_splits_at_the_first_colon_and_needs_both_parts(capsys):
    assert launcher.parse_args(["--auth", "me:pa:ss"]).auth == ("me", "pa:ss")
    for bad in ("me", "me:", ":pass"):
        with pytest.raises(SystemExit):
            launcher.parse_args(["--auth", bad])
    assert "expected user:pass" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_cuda_device_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="torch sees no CUDA device"):
        launcher.main(["--device", "cuda", "--assets", str(tmp_path)])
