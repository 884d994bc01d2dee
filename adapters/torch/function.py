"""PyTorch modules as callables for ``lmn_core``: :class:`TorchFunction` and its helpers.

A :class:`TorchFunction` runs a module on its own device, in eval mode, without
gradients. Called with NumPy arrays it hands its outputs to the host as NumPy arrays
(half-precision outputs, float16 and bfloat16, as float32, which holds them exactly;
their constant tolerance is still their own dtype's, docs/design.md section 1.2.1, see
:func:`half_precision_rtol`). Off the CPU it offers ``lmn_core`` a
:class:`lmn_core.DevicePlan`, and the whole measurement runs on its device.
:class:`OutputSelector` picks the tensor to measure from what a module returns (a tuple,
a dict, a Hugging Face style ``ModelOutput``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np

try:
    import torch
    from torch import nn
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("adapters.torch needs PyTorch: pip install 'lmn[torch]'") from error

import lmn_core
from adapters.devices import is_torch_out_of_memory, torch_free_memory
from adapters.options import checked_compile_rule, checked_reduction, measures_on_device, rule_compiler

#: Rows per forward pass on the CPU (the fastest measured for the reference MLP on a
#: 2-core CPU); on other devices a module runs on a whole block at once.
DEFAULT_BATCH_SIZE = 4096
HALF_DTYPES = (torch.float16, torch.bfloat16)

#: What ``output=`` accepts: an index, a key, or a callable on what the module returns.
OutputChoice = int | str | Callable[[Any], Any] | None


class NotOneTensorError(ValueError):
    """A module run as a function returned something else than one tensor."""


class OutputChoiceError(ValueError):
    """``output=`` does not pick one tensor from what a model returns."""


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
    """The core's constant tolerance of ``dtype`` when it is float16 or bfloat16, else ``None``."""
    if dtype in HALF_DTYPES:
        return lmn_core.default_const_rtol(torch.finfo(dtype).eps)
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


def picked_output(outputs: Any, output: int | str) -> Any:
    """``outputs[output]`` (an int indexes a dict's values, a str may name an attribute)."""
    try:
        if isinstance(output, int) and isinstance(outputs, Mapping):
            return list(outputs.values())[output]
        if isinstance(output, str) and not isinstance(outputs, Mapping):
            return getattr(outputs, output)
        return outputs[output]
    except (IndexError, KeyError, AttributeError, TypeError):
        raise OutputChoiceError(
            f"output={output!r} is not in what the model returns: {_describe(outputs)}"
        ) from None


def select_output(outputs: Any, output: OutputChoice) -> torch.Tensor:
    """The tensor ``output`` picks from ``outputs`` (see :class:`OutputSelector`)."""
    if output is None:
        chosen = outputs
    elif callable(output):
        chosen = output(outputs)
    elif isinstance(outputs, torch.Tensor):
        raise OutputChoiceError(
            f"output={output!r} picks from a tuple or a dict, but the model returns one tensor: "
            "leave output= out"
        )
    else:
        chosen = picked_output(outputs, output)
    if isinstance(chosen, torch.Tensor):
        return chosen
    if output is None:
        raise OutputChoiceError(
            f"the model returns {_describe(outputs)}, not one tensor: choose the output to measure with "
            "output= (an index, a key, or a callable that returns a tensor)"
        )
    raise OutputChoiceError(
        f"output={output!r} gives {_describe(chosen)} from {_describe(outputs)}, not a tensor"
    )


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
    """A PyTorch module as a callable for ``lmn_core``.

    Each call converts the input to a tensor (floating-point input cast to ``dtype``,
    integer input kept as integers), runs the module under ``torch.no_grad()`` in eval
    mode (on the CPU in chunks of ``batch_size`` rows), restores every submodule's
    train/eval mode, and returns the output as a NumPy array on the host (float16 and
    bfloat16 as float32); inside :meth:`evaluating`, the modes are switched once for the
    whole measurement instead. Parameters and gradients are never touched.

    It is also a :class:`lmn_core.DeviceFunction`: with ``reduction="device"`` (the
    default, ``"auto"``, on any device but the CPU) ``lmn_core`` runs the whole
    measurement on the module's device (:mod:`lmn_core.device`): the pairs, their points,
    the module on whole blocks, the r² sums in float64, ``L`` and its spectrum, with
    blocks sized from the device's free memory; nothing but the eigenvalues comes back
    to the host. The points are interpolated in the samples' dtype rather than in float64
    rounded once, so the two paths differ by about an ulp of that dtype.

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
        Rows per forward pass; by default :data:`DEFAULT_BATCH_SIZE` on the CPU and
        every row at once elsewhere.
    reduction : {"auto", "device", "host"}
        Where ``lmn_core`` measures: on the module's device (``"device"``), on the host
        with its Numba kernels around calls of the module (``"host"``), or on the device
        unless that is the CPU (``"auto"``, the default: on a CPU the host kernels, one
        fused pass each, are faster).
    copy_inputs : bool
        Copy each input before running the module: for a module that changes its input
        in place (``nn.ReLU(inplace=True)`` first), so that the caller's array stays as it was.
    compile_rule : bool, optional
        On the device path, run the core's r² rule of each block compiled by
        ``torch.compile`` (``lmn_core.DevicePlan.compile``): fused kernels in place of one
        kernel per array operation, the same ``L`` to about 1e-15. Compiling costs seconds,
        once per process and kind of block (a shape, a dtype, a device), so it pays in a
        training loop that measures often, not in a single measurement; ``None`` (the
        default) leaves it off (:func:`adapters.options.rule_compiler`).
    name : str, optional
        What the module is, for error messages (``"the head of the cut at layer 'fc1'"``); an
        error the module raises comes back as an :class:`lmn_core.FunctionError` naming it
        and the input's shape and dtype, the original chained. By default the module's class.
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
        compile_rule: bool | None = None,
        name: str | None = None,
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
        if batch_size is not None and int(batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if batch_size is None and self.device.type == "cpu":
            batch_size = DEFAULT_BATCH_SIZE
        self.batch_size = None if batch_size is None else int(batch_size)
        self.reduction = checked_reduction(reduction)
        self.copy_inputs, self.compile_rule = copy_inputs, checked_compile_rule(compile_rule)
        self.name = name if name is not None else type(module).__name__
        self._evaluations = 0  # measurements under way in :meth:`evaluating`

    def __call__(self, inputs: Any) -> np.ndarray:
        """Run the module on ``inputs`` ``(M, ...)``; return its ``(M, ...)`` output as NumPy."""
        return to_numpy(self.run(self.tensor(inputs)))

    def tensor(self, inputs: Any) -> torch.Tensor:
        """``inputs`` as the tensor the module takes: on its device, floating point in ``dtype``."""
        return as_tensor(inputs, self.device, self.dtype)

    def run(self, batch: torch.Tensor) -> torch.Tensor:
        """The module's output for a batch tensor on its device, in eval mode, without grad.

        In chunks of ``batch_size`` rows when it is set; on a copy when ``copy_inputs``.
        """
        if self.copy_inputs:
            batch = batch.clone()
        whole = self.batch_size is None or batch.shape[0] <= self.batch_size
        chunks = [batch] if whole else batch.split(self.batch_size)
        try:
            with torch.no_grad(), nullcontext() if self._evaluations else eval_mode(self.module):
                outputs = [self.module(chunk) for chunk in chunks]
        except (torch.OutOfMemoryError, lmn_core.FunctionError, NotOneTensorError, OutputChoiceError):
            raise  # the core shrinks its blocks on the first; the others name their part already
        except Exception as error:
            raise lmn_core.FunctionError.raised_by(self.name, batch, error) from error
        if not isinstance(outputs[0], torch.Tensor):
            what = _describe(outputs[0])
            raise NotOneTensorError(f"{type(self.module).__name__} returns {what}, not one tensor")
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs)

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """The module in eval mode for a whole measurement, which each call then leaves as it is
        rather than walking every submodule to switch and restore it (14 µs a call)."""
        with eval_mode(self.module):
            self._evaluations += 1
            try:
                yield
            finally:
                self._evaluations -= 1

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

    @property
    def measures_on_device(self) -> bool:
        """Whether ``lmn_core`` measures on the module's device (see ``reduction``)."""
        return measures_on_device(self.reduction, off_the_cpu=self.device.type != "cpu")

    def device_plan(self) -> lmn_core.DevicePlan | None:
        """How ``lmn_core`` runs the measurement on the module's device, or ``None`` for the host."""
        if not self.measures_on_device:
            return None
        return lmn_core.DevicePlan(
            to_device=self.tensor,
            run=self.run,
            free_memory=torch_free_memory(self.device),
            is_out_of_memory=is_torch_out_of_memory,
            session=self._session,
            compile=rule_compiler(self.compile_rule, "torch", torch.compile),
        )

    @contextmanager
    def _session(self) -> Iterator[None]:
        """No gradients, the module in eval mode, for the whole measurement."""
        with torch.no_grad(), self.evaluating():
            yield
