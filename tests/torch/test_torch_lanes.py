"""The PyTorch adapter in lmn_core's lanes: several threads call the head at once, same L."""

import threading

import numpy as np
import torch
from torch import nn
from torch_threads import one_thread  # noqa: F401

from adapters.torch import LayerLMN, TorchFunction
from reference_tasks.model.torch_model import GrokMLP
from reference_tasks.tasks import make_task


def test_concurrent_calls_need_the_cpu_one_torch_thread_and_eval_mode():
    module = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    module.eval()
    assert TorchFunction(module).concurrent_calls is True
    module.train()  # each call would switch modes under the others
    assert TorchFunction(module).concurrent_calls is False
    module.eval()
    torch.set_num_threads(2)  # torch's own threads, one team per calling thread
    try:
        assert TorchFunction(module).concurrent_calls is False
    finally:
        torch.set_num_threads(1)


def test_layer_lmn_in_lanes_gives_the_one_thread_matrix_bit_for_bit():
    torch.manual_seed(3)
    model = GrokMLP(31, 31)
    threads: set[int] = set()
    model.hidden2.register_forward_hook(lambda module, inputs, output: threads.add(threading.get_ident()))
    pairs = make_task("modadd").pairs[::6]  # 161 samples, 12880 pairs
    measure = LayerLMN(model, "hidden1", batch_size=256)
    one = measure(pairs, threads=1, block_pairs=64)
    assert len(threads) == 1
    threads.clear()
    three = measure(pairs, threads=3, block_pairs=64)
    assert len(threads) == 3
    np.testing.assert_array_equal(three.connectivity, one.connectivity)
    assert three.lmn == one.lmn
    assert model.training  # each measurement restores the model's own mode
