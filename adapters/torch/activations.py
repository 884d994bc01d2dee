"""The pre-activations of a PyTorch head: what ``lmn_core.local_complexity`` counts sign changes of.

:func:`head_pre_activations` finds the activation modules of a head (``nn.ReLU``, ``nn.SiLU``,
``nn.GELU``, ``nn.Tanh``, ... in :data:`ACTIVATION_TYPES`) and returns a callable that runs
the head on points and returns, per activation module in the order they ran, the inputs it
received (its pre-activations) as ``(M, units)`` float64 arrays, caught with forward hooks.
An activation written as a function call (``torch.relu(x)``) is not a module and is not seen.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

#: The elementwise activations whose inputs are pre-activations (their kink or bend sits at zero).
ACTIVATION_TYPES = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.SiLU,
    nn.GELU,
    nn.Mish,
    nn.Softplus,
    nn.Tanh,
    nn.Hardtanh,
    nn.Hardswish,
)


def head_pre_activations(
    head: nn.Module, run: Callable[[np.ndarray], object]
) -> Callable[[np.ndarray], list[np.ndarray]] | None:
    """A callable ``points (M, ...) -> [pre-activations (M, units)]`` of ``head``'s activation modules.

    Parameters
    ----------
    head : torch.nn.Module
        The head's module (its submodules are searched).
    run : callable
        Runs the head on NumPy points (a :class:`~adapters.torch.TorchFunction`), in batches.

    Returns
    -------
    callable or None
        ``None`` when the head has no activation module.
    """
    activations = list(dict.fromkeys(m for m in head.modules() if isinstance(m, ACTIVATION_TYPES)))
    if not activations:
        return None

    def pre_activations(points: np.ndarray) -> list[np.ndarray]:
        caught: dict[int, list[torch.Tensor]] = {}

        def catch(module: nn.Module, args: tuple[torch.Tensor, ...], output: object) -> None:
            value = args[0].detach()
            caught.setdefault(id(module), []).append(
                value.reshape(value.shape[0], -1).to("cpu", torch.float64)
            )

        hooks = [module.register_forward_hook(catch) for module in activations]
        try:
            run(points)
        finally:
            for hook in hooks:
                hook.remove()
        return [torch.cat(caught[id(module)]).numpy() for module in activations if id(module) in caught]

    return pre_activations
