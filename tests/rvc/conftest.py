"""Fixtures shared by the RVC tests."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """For modules of tiny models (opt in with ``pytestmark``): on a shared 2-core box extra threads only contend."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
