"""A fixture for PyTorch tests: import ``one_thread`` into a test module to run it on one thread."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One PyTorch thread: the 2 cores of the development machine are shared (see torch_engine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
