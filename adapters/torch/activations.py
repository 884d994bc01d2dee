"""The pre-activations of a PyTorch head: what ``lmn_core.local_complexity`` counts sign changes of.

:func:`head_pre_activations` finds the activation modules of a head (``nn.ReLU``, ``nn.SiLU``,
``nn.GELU``, ``nn.Tanh``, ... in :data:`ACTIVATION_TYPES`) and returns a callable that runs
the head on points and returns, per call of an activation module in the order the calls ran
(a module called twice gives two entries), the inputs it received (its pre-activations) as
``(M, units)`` float64 arrays, caught with forward hooks. In a head cut by forward hooks
(:class:`adapters.torch.hooks.HookHead`, the whole model run with the cut layer's output
replaced) only the calls after the cut layer count: the ones before it run on placeholder
inputs. An activation written as a function call (``torch.relu(x)``) is not a module and is
not seen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from adapters.torch.hooks import HookHead

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


class _Catcher:
    """The activations' inputs of one head run, per call in a forward, over the forwards of a run."""

    def __init__(self, hook_heads: list[HookHead]) -> None:
        self.calls: dict[int, list[torch.Tensor]] = {}
        self.hook_heads = hook_heads
        self.reached = not hook_heads
        self.index = 0

    def start(self, module: nn.Module, args: Any) -> None:
        """A forward of the head begins: count the calls from the first again."""
        self.index, self.reached = 0, not self.hook_heads

    def cut_reached(self, module: nn.Module, args: Any, output: Any) -> None:
        """The cut layer of a hook-cut head ran: the calls from now on are the head's."""
        self.reached = True

    def catch(self, module: nn.Module, args: tuple[torch.Tensor, ...], output: Any) -> None:
        """An activation ran: keep its input as ``(rows, units)`` float64."""
        if not self.reached:
            return
        value = args[0].detach()
        self.calls.setdefault(self.index, []).append(
            value.reshape(value.shape[0], -1).to("cpu", torch.float64)
        )
        self.index += 1

    def hooks(self, head: nn.Module, activations: list[nn.Module]) -> list[Any]:
        """The hooks of one run on ``head``, to be removed after it."""
        handles = [head.register_forward_pre_hook(self.start)]
        handles += [
            h.model.get_submodule(h.layer).register_forward_hook(self.cut_reached) for h in self.hook_heads
        ]
        return handles + [module.register_forward_hook(self.catch) for module in activations]


def head_pre_activations(
    head: nn.Module, run: Callable[[np.ndarray], object]
) -> Callable[[np.ndarray], list[np.ndarray]] | None:
    """A callable ``points (M, ...) -> [pre-activations (M, units)]`` of ``head``'s activation modules.

    Parameters
    ----------
    head : torch.nn.Module
        The head's module (its submodules are searched); ``run`` calls its forward once per batch.
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
    hook_heads = [module for module in head.modules() if isinstance(module, HookHead)]

    def pre_activations(points: np.ndarray) -> list[np.ndarray]:
        catcher = _Catcher(hook_heads)
        handles = catcher.hooks(head, activations)
        try:
            run(points)
        finally:
            for handle in handles:
                handle.remove()
        return [torch.cat(parts).numpy() for parts in catcher.calls.values()]

    return pre_activations
