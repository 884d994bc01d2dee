"""What each array library says about its devices, shared by every backend that computes with it.

A Keras model on Keras's PyTorch backend computes with PyTorch tensors as the PyTorch
adapter's modules do, so both read a CUDA device's free memory and PyTorch's
out-of-memory error here rather than one adapter importing the other. Each function
imports its library when called.
"""

from __future__ import annotations

from typing import Any


def torch_free_memory(device: Any) -> int | None:
    """Bytes free on a CUDA ``device``, memory cached by PyTorch's allocator included; else ``None``."""
    import torch

    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)


def is_torch_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is PyTorch running out of device memory."""
    import torch

    return isinstance(error, torch.OutOfMemoryError)
