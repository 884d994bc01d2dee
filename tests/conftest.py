"""Tests marked ``gpu`` need a CUDA device: where PyTorch sees none they are reported as skipped."""

from __future__ import annotations

import importlib.util

import pytest


def cuda_available() -> bool:
    """Whether PyTorch is installed and sees a CUDA device."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_tests = [item for item in items if "gpu" in item.keywords]
    if gpu_tests and not cuda_available():
        for item in gpu_tests:
            item.add_marker(pytest.mark.skipif(True, reason="needs a CUDA device (run with -m gpu on one)"))
