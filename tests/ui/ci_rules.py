"""When a UI test's tools are missing: skip on a developer's machine, fail in CI, which installs them."""

import os

import pytest


def require(condition: bool, message: str) -> None:
    if not condition:
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(message)
