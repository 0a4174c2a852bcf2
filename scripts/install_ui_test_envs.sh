#!/usr/bin/env bash
# The old gradio versions RVC hosts run, for tests/ui's compatibility test: .gradio-envs/3.34 (RVC
# classic) and .gradio-envs/3.14 (RVC 2026). Each is a small venv holding only gradio and the packages
# it needs at other versions than .venv has; everything else (torch, librosa, our own package) comes
# from .venv, whose site-packages each env appends to its path. Run after scripts/install.sh; safe to
# run again (an env whose gradio already imports at the right version is kept).
set -euo pipefail
cd "$(dirname "$0")/.."

base_python=.venv/bin/python
[ -x "$base_python" ] || { echo "run scripts/install.sh first: $base_python is missing" >&2; exit 1; }
base_site=$("$base_python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

# What the RVC WebUI 2026 requirements pin next to gradio 3.14; gradio 3.34 predates pydantic 2 and
# starlette 1 as well, and needs the gradio_client of its own release.
era_pins=("fastapi<0.100" "pydantic<2" "starlette<0.28" "httpx<0.24" "setuptools<81")

make_env() {
    local env=.gradio-envs/$1 version=$2; shift 2
    if [ -x "$env/bin/python" ] &&
        "$env/bin/python" -c "import gradio, sys; sys.exit(gradio.__version__ != '$version')" 2>/dev/null; then
        echo "$env: gradio $version is already there"
        return
    fi
    local started=$SECONDS
    rm -rf "$env"
    "$base_python" -m venv --without-pip "$env"
    local env_site
    env_site=$("$env/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    # addsitedir (not a bare path line) so .venv's own .pth files, the editable install among them, run too.
    echo "import site; site.addsitedir('$base_site')" > "$env_site/zz_rvc_lora_base.pth"
    # pip leaves .venv alone: packages outside the target env are never uninstalled, only shadowed.
    # Its conflict report would list .venv packages that the shadowing breaks but the env never imports.
    "$base_python" -m pip --python "$env/bin/python" install -q --no-warn-conflicts "$@"
    "$env/bin/python" -W ignore -c "import gradio; print('$env: gradio', gradio.__version__, 'ready')"
    echo "$env: $((SECONDS - started)) s, $(du -sh "$env" | cut -f1)"
}

make_env 3.14 3.14.0 "gradio==3.14.0" "${era_pins[@]}"
# httpx<0.24 holds huggingface_hub below what .venv's transformers 5 needs, so this env takes a transformers
# 4 of its own, as an RVC classic host of that era has (HuBERT runs through it).
make_env 3.34 3.34.0 "gradio==3.34.0" "gradio_client==0.2.7" "transformers>=4.36,<5" "${era_pins[@]}"
