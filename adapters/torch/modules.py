"""What a PyTorch module does, seen from outside: does it act as an affine map, does it change its input.

Read by the cuts (which ``nn.Linear`` layers fold into the samples), the head's output
width (:mod:`adapters.torch.width`) and the head's callable (copying an input a module
would change in place).
"""

from __future__ import annotations

import operator

import torch
from torch import fx, nn
from torch.nn import functional

IN_PLACE_FUNCTIONS = {
    operator.iadd,
    operator.isub,
    operator.imul,
    operator.itruediv,
    operator.ifloordiv,
    operator.imod,
    operator.ipow,
    operator.iand,
    operator.ior,
    operator.ixor,
    operator.ilshift,
    operator.irshift,
    operator.imatmul,
    operator.setitem,
}


def changes_its_input(module: nn.Module) -> bool:
    """Whether ``module`` may change a tensor in place (so its callers should copy its input)."""
    if any(getattr(submodule, "inplace", False) is True for submodule in module.modules()):
        return True
    for graph_module in (sub for sub in module.modules() if isinstance(sub, fx.GraphModule)):
        for node in graph_module.graph.nodes:
            if node.op == "call_method" and node.target.endswith("_") and not node.target.endswith("__"):
                return True
            if node.op == "call_function" and (
                node.target in IN_PLACE_FUNCTIONS
                or node.kwargs.get("inplace") is True
                or getattr(node.target, "__name__", "").endswith("_")
            ):
                return True
    return False


def acts_as_linear(module: nn.Module) -> bool:
    """An ``nn.Linear`` (not a subclass) whose call is exactly its affine map (no hook changes it).

    Checked on two probe rows against ``torch.nn.functional.linear``: hooks cannot be
    listed through public API, but what they would change can be seen.
    """
    if type(module) is not nn.Linear:
        return False
    weight = module.weight
    probe = torch.linspace(-1.0, 1.0, 2 * module.in_features, device=weight.device).to(weight.dtype)
    probe = probe.reshape(2, module.in_features)
    with torch.no_grad():
        called = module(probe)
        expected = functional.linear(probe, weight, module.bias)
    return isinstance(called, torch.Tensor) and torch.equal(called, expected)
