"""adapters.torch.threads: a measurement left to the core runs the head on one torch thread."""

import numpy as np
import pytest
import torch

from adapters.torch import LayerLMN, layer
from reference_tasks.model.torch_model import GrokMLP
from reference_tasks.tasks import make_task


@pytest.fixture
def measure():
    torch.manual_seed(5)
    return LayerLMN(GrokMLP(31, 31).eval(), "hidden1"), make_task("modadd").pairs[::20]


@pytest.fixture
def head_threads(monkeypatch):
    """The torch thread counts the head runs with."""
    seen = []
    original = layer.TorchFunction.run

    def run(self, batch):
        if self.name.startswith("the head"):
            seen.append(torch.get_num_threads())
        return original(self, batch)

    monkeypatch.setattr(layer.TorchFunction, "run", run)
    return seen


def with_torch_threads(threads, run):
    own = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return run(), torch.get_num_threads()
    finally:
        torch.set_num_threads(own)


def test_left_to_the_core_the_head_runs_on_one_thread_with_one_threads_bits(measure, head_threads):
    lmn, pairs = measure
    one_thread, _ = with_torch_threads(1, lambda: lmn(pairs, threads=1, overlap=False))
    head_threads.clear()
    default, after = with_torch_threads(2, lambda: lmn(pairs))
    assert set(head_threads) == {1} and after == 2  # the process's setting is back
    np.testing.assert_array_equal(default.connectivity, one_thread.connectivity)
    head_threads.clear()
    left, _ = with_torch_threads(2, lambda: lmn(pairs, threads=None, overlap=None))
    assert set(head_threads) == {1}
    np.testing.assert_array_equal(left.connectivity, one_thread.connectivity)


@pytest.mark.parametrize("chosen", [{"threads": 1}, {"threads": 2}, {"overlap": False}])
def test_a_caller_who_chose_threads_or_overlap_keeps_torchs_threads(measure, head_threads, chosen):
    lmn, pairs = measure
    with_torch_threads(2, lambda: lmn(pairs, **chosen))
    assert set(head_threads) == {2}
