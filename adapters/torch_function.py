"""PyTorch modules as NumPy callables for ``lmn_core``: :class:`TorchFunction` and its helpers.

A :class:`TorchFunction` runs a module on its own device, in eval mode, without
gradients, and hands its outputs to the host as NumPy arrays. Half-precision outputs
(float16, bfloat16) reach NumPy as float32, which holds them exactly; their constant
tolerance is still their own dtype's (docs/design.md, section 1.2.1), see
:func:`half_precision_rtol`. :class:`OutputSelector` picks the tensor to measure from
what a module returns (a tuple, a dict, a Hugging Face style ``ModelOutput``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

try:
    import torch
    from torch import nn
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("adapters.torch needs PyTorch: pip install 'lmn[torch]'") from error

import lmn_core
from adapters.torch_reduction import TorchPairReduction
from lmn_core.pipeline import CONST_RTOL_ULPS

DEFAULT_BATCH_SIZE = 4096
REDUCTIONS = ("auto", "device", "host")
HALF_DTYPES = (torch.float16, torch.bfloat16)

#: What ``output=`` accepts: an index, a key, or a callable on what the module returns.
OutputChoice = int | str | Callable[[Any], Any] | None


class NotOneTensorError(ValueError):
    """A module run as a function returned something else than one tensor."""


def module_device(module: nn.Module) -> torch.device | None:
    """The device of the module's first parameter or buffer, ``None`` if it has neither."""
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        return tensor.device
    return None


def floating_dtype(module: nn.Module, default: torch.dtype | None = None) -> torch.dtype:
    """The dtype of the module's first floating-point parameter or buffer, else ``default``."""
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return default if default is not None else torch.get_default_dtype()


def as_tensor(values: Any, device: torch.device | None, dtype: torch.dtype) -> torch.Tensor:
    """``values`` as a tensor on ``device``; floating-point values are cast to ``dtype``."""
    if not isinstance(values, torch.Tensor):
        array = np.asarray(values)
        if not (array.flags.writeable and array.flags.c_contiguous):
            array = np.array(array, order="C")
        values = torch.from_numpy(array)
    if values.is_floating_point():
        return values.to(device=device, dtype=dtype)
    return values.to(device=device)


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """``tensor`` on the host as NumPy; float16 and bfloat16 as float32 (exact: NumPy has no bfloat16)."""
    if tensor.dtype in HALF_DTYPES:
        tensor = tensor.float()
    return tensor.detach().cpu().numpy()


def half_precision_rtol(dtype: torch.dtype) -> float | None:
    """32 epsilons of ``dtype`` when it is float16 or bfloat16 (the core's rule), else ``None``."""
    if dtype in HALF_DTYPES:
        return CONST_RTOL_ULPS * float(torch.finfo(dtype).eps)
    return None


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put ``module`` and every submodule in eval mode, then restore each one's own mode."""
    training = [submodule for submodule in module.modules() if submodule.training]
    if training:
        module.eval()
    try:
        yield module
    finally:
        for submodule in training:
            submodule.training = True


def _describe(outputs: Any) -> str:
    if isinstance(outputs, Mapping):
        return f"a {type(outputs).__name__} with keys {list(outputs)}"
    if isinstance(outputs, tuple | list):
        return f"a {type(outputs).__name__} of {len(outputs)}"
    return f"a {type(outputs).__name__}"


def _picked(outputs: Any, output: int | str) -> Any:
    """``outputs[output]`` (an int indexes a dict's values, a str may name an attribute)."""
    try:
        if isinstance(output, int) and isinstance(outputs, Mapping):
            return list(outputs.values())[output]
        if isinstance(output, str) and not isinstance(outputs, Mapping):
            return getattr(outputs, output)
        return outputs[output]
    except (IndexError, KeyError, AttributeError, TypeError):
        raise ValueError(
            f"output={output!r} is not in what the model returns: {_describe(outputs)}"
        ) from None


def select_output(outputs: Any, output: OutputChoice) -> torch.Tensor:
    """The tensor ``output`` picks from ``outputs`` (see :class:`OutputSelector`)."""
    if output is None:
        chosen = outputs
    elif callable(output):
        chosen = output(outputs)
    elif isinstance(outputs, torch.Tensor):
        raise ValueError(
            f"output={output!r} picks from a tuple or a dict, but the model returns one tensor: "
            "leave output= out"
        )
    else:
        chosen = _picked(outputs, output)
    if isinstance(chosen, torch.Tensor):
        return chosen
    if output is None:
        raise ValueError(
            f"the model returns {_describe(outputs)}, not one tensor: choose the output to measure with "
            "output= (an index, a key, or a callable that returns a tensor)"
        )
    raise ValueError(f"output={output!r} gives {_describe(chosen)} from {_describe(outputs)}, not a tensor")


class OutputSelector(nn.Module):
    """``module`` followed by the choice of one output tensor.

    Parameters
    ----------
    module : torch.nn.Module
        The module (a model's head).
    output : int, str, callable or None
        An index into a returned tuple (or into a dict's values, in order), a key of a
        returned dict (or an attribute, as of a ``ModelOutput``), or a callable applied
        to whatever the module returns. ``None`` accepts a single tensor only, and
        refuses anything else with a message that names ``output=``.
    """

    def __init__(self, module: nn.Module, output: OutputChoice = None) -> None:
        super().__init__()
        self.module = module
        self.output = output

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """The chosen output tensor of ``module(inputs)``."""
        return select_output(self.module(inputs), self.output)


class TorchFunction:
    """A PyTorch module as a NumPy callable for ``lmn_core``.

    Each call converts the input to a tensor (floating-point input cast to ``dtype``,
    integer input kept as integers), runs the module in chunks of ``batch_size`` rows
    under ``torch.no_grad()`` in eval mode, restores every submodule's train/eval mode,
    and returns the output as a NumPy array on the host (float16 and bfloat16 as
    float32). Parameters and gradients are never touched.

    It is also a :class:`lmn_core.ReducingFunction`: with ``reduction="device"`` (the
    default, ``"auto"``, on any device but the CPU) ``lmn_core`` hands it whole blocks of
    pairs, which it interpolates, runs and reduces to their ``L`` values with torch ops
    on its device (:class:`adapters.torch_reduction.TorchPairReduction`), so that no
    interpolated point nor output crosses to the host. The points are interpolated in
    the samples' dtype (``torch.lerp``) rather than in float64 rounded once, so the two
    paths differ by about an ulp of that dtype; the r² sums run in float64 on both.

    Parameters
    ----------
    module : torch.nn.Module
        The module to run, on its own device; it must return one tensor.
    device : str or torch.device, optional
        Where to run; by default the device of the module's first parameter or buffer
        (CPU for a module without any). A module must already be on this device.
    dtype : torch.dtype, optional
        dtype of floating-point inputs; by default the module's first floating-point
        parameter's dtype.
    batch_size : int, optional
        Rows per forward pass (default 4096, the fastest measured for the reference
        MLP on a 2-core CPU).
    reduction : {"auto", "device", "host"}
        Where ``lmn_core`` reduces the outputs of interpolated points to r²: on the
        module's device (``"device"``), on the host with its Numba kernels (``"host"``),
        or on the device unless that is the CPU (``"auto"``, the default: on a CPU the
        host kernels, one fused pass each, are faster).
    copy_inputs : bool
        Copy each input before running the module: for a module that changes its input
        in place (``nn.ReLU(inplace=True)`` first), so that the caller's array stays as it was.
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        batch_size: int | None = None,
        reduction: str = "auto",
        copy_inputs: bool = False,
    ) -> None:
        own = module_device(module)
        wanted = torch.empty(0, device=device).device if device is not None else own
        if own is not None and wanted != own:
            raise ValueError(
                f"{type(module).__name__} is on {own}, not on {wanted}: "
                f"move it first with module.to({str(wanted)!r})"
            )
        self.module = module
        self.device = wanted if wanted is not None else torch.device("cpu")
        self.dtype = dtype if dtype is not None else floating_dtype(module)
        self.batch_size = DEFAULT_BATCH_SIZE if batch_size is None else int(batch_size)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction
        self.copy_inputs = copy_inputs

    def __call__(self, inputs: Any) -> np.ndarray:
        """Run the module on ``inputs`` ``(M, ...)``; return its ``(M, ...)`` output as NumPy."""
        return to_numpy(self.run(self.tensor(inputs)))

    def tensor(self, inputs: Any) -> torch.Tensor:
        """``inputs`` as the tensor the module takes: on its device, floating point in ``dtype``."""
        batch = as_tensor(inputs, self.device, self.dtype)
        return batch.clone() if self.copy_inputs else batch

    def run(self, batch: torch.Tensor) -> torch.Tensor:
        """The module's output for a batch tensor on its device, in chunks, in eval mode, without grad."""
        with torch.no_grad(), eval_mode(self.module):
            outputs = [self.module(chunk) for chunk in batch.split(self.batch_size)]
        if not isinstance(outputs[0], torch.Tensor):
            what = _describe(outputs[0])
            raise NotOneTensorError(f"{type(self.module).__name__} returns {what}, not one tensor")
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs)

    @property
    def concurrent_calls(self) -> bool:
        """Whether ``lmn_core`` may call this from several threads at once (its lanes).

        True on the CPU with one torch thread (each call then runs in the thread that
        makes it, and the lanes add CPUs that torch's own threads would not use on a small
        head) for a module already in eval mode (so no call switches modes under another).
        """
        return (
            self.device.type == "cpu"
            and torch.get_num_threads() == 1
            and not any(submodule.training for submodule in self.module.modules())
        )

    def pair_reduction(self, task: lmn_core.ReductionTask) -> TorchPairReduction | None:
        """The on-device reduction of ``task``'s pairs, or ``None`` when ``lmn_core`` reduces on the host."""
        if self.reduction == "host" or (self.reduction == "auto" and self.device.type == "cpu"):
            return None
        return TorchPairReduction(self.run, as_tensor(task.samples, self.device, self.dtype), task)
