"""A Keras model as a callable for ``lmn_core``, half precision included.

On the host every forward pass goes through ``model.predict_on_batch``, Keras's compiled
inference step, in inference mode; off the CPU, on the PyTorch and JAX backends, the
whole measurement runs on the backend's device (:mod:`adapters.keras.device`). Outputs
in float16 or bfloat16 (a ``"float16"``/``"bfloat16"`` dtype policy, or
``"mixed_float16"``) leave the host path as float32, since NumPy has no bfloat16 and
``lmn_core`` measures float32 or float64; :meth:`KerasFunction.const_rtol` then gives the
constant tolerance of the half dtype they were computed in (docs/design.md, section 1.2.1).
"""

from __future__ import annotations

from typing import Any

import keras
import ml_dtypes
import numpy as np

import lmn_core
from adapters.keras.device import DEVICE_BACKENDS, KerasDevice
from adapters.keras.graph import defined_inputs, defined_outputs
from adapters.options import checked_compile_rule, checked_reduction, measures_on_device

DEFAULT_BATCH_SIZE = 8192
HALF_DTYPES = ("float16", "bfloat16")


def half_const_rtol(dtype: Any) -> float | None:
    """``lmn_core``'s constant tolerance (32 epsilons) of a half dtype; ``None`` for any other dtype."""
    name = str(keras.backend.standardize_dtype(dtype))
    if name not in HALF_DTYPES:
        return None
    return lmn_core.default_const_rtol(ml_dtypes.finfo(name).eps)


def _input_dtype(model: keras.Model) -> str | None:
    """The floating dtype NumPy inputs are cast to: the model input's, else its first floating weight's.

    Half dtypes give float32: the model casts its inputs itself, and NumPy has no bfloat16.
    """
    inputs = defined_inputs(model)
    dtypes = [inputs[0].dtype] if inputs else [weight.dtype for weight in model.weights]
    for dtype in dtypes:
        name = str(keras.backend.standardize_dtype(dtype))
        if "float" in name:
            return "float32" if name in HALF_DTYPES else name
        if inputs:
            return None
    return None


def on_accelerator() -> bool:
    """Whether the Keras backend puts new tensors on an accelerator (GPU, TPU, ...) rather than the CPU."""
    return "cpu" not in str(getattr(keras.ops.zeros(()), "device", "cpu")).lower()


class KerasFunction:
    """A Keras model as a NumPy callable for ``lmn_core``.

    Each call converts the input to a NumPy array (floating-point input cast to the
    dtype of the model's input, or of its first floating-point weight when the model
    has no defined input yet, float32 for a half dtype; integer input kept as
    integers), runs ``model.predict_on_batch`` on chunks of ``batch_size`` rows, and
    returns the output as one NumPy array (float32 when the model computed it in half
    precision). ``predict_on_batch`` runs in inference mode and never changes a weight
    (nor a BatchNormalization statistic).

    It is also a :class:`lmn_core.DeviceFunction`: with ``reduction="device"`` (the
    default, ``"auto"``, on the PyTorch and JAX backends when their default device is
    not the CPU) ``lmn_core`` runs the whole measurement on the backend's device
    (:mod:`adapters.keras.device`): the pairs, their points, the model on whole blocks,
    the r² sums in float64, ``L`` and its spectrum, so that no interpolated point nor
    output crosses to the host. The points are interpolated in the input dtype above
    rather than in float64 rounded once, so the two paths differ by about an ulp of that
    dtype. The TensorFlow backend measures on the host.

    Parameters
    ----------
    model : keras.Model
        A model with one input and one output.
    batch_size : int, optional
        Rows per forward pass (default 8192: on a 2-core CPU, one call per block of
        ``lmn_core``'s default 4 MiB budget is the fastest).
    name : str, optional
        What the model is, for error messages (``"the head of the cut at layer 'fc1'"``): an
        error it raises comes back as an :class:`lmn_core.FunctionError` naming it and the
        input's shape and dtype, the original chained.
    reduction : {"auto", "device", "host"}
        Where ``lmn_core`` measures: on the backend's device (``"device"``, the PyTorch
        and JAX backends), on the host with its Numba kernels around calls of the model
        (``"host"``), or on the device where the backend allows it and it is not the CPU
        (``"auto"``, the default).
    compile_rule : bool, optional
        On the device path, run the core's r² rule of each block compiled
        (``lmn_core.DevicePlan.compile``): by ``jax.jit`` on the JAX backend unless false,
        by ``torch.compile`` on the PyTorch backend only when true (it costs seconds, once
        per process and kind of block). The same ``L`` to about 1e-15.
    """

    def __init__(
        self,
        model: keras.Model,
        *,
        batch_size: int | None = None,
        reduction: str = "auto",
        name: str | None = None,
        compile_rule: bool | None = None,
    ) -> None:
        self.model = model
        self.name = name if name is not None else f"model {model.name!r}"
        self.batch_size = DEFAULT_BATCH_SIZE if batch_size is None else int(batch_size)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        inputs = defined_inputs(model)
        if inputs is not None and len(inputs) != 1:
            raise ValueError(f"KerasFunction needs a model with one input; {model.name!r} has {len(inputs)}")
        self.dtype = _input_dtype(model)
        self.reduction = checked_reduction(reduction)
        outputs = defined_outputs(model)
        self.output_dtype: str | None = str(outputs[0].dtype) if outputs and len(outputs) == 1 else None
        self._device = KerasDevice(model, self.dtype, checked_compile_rule(compile_rule))

    def __call__(self, inputs: Any) -> np.ndarray:
        """Run the model on ``inputs`` ``(M, ...)``; return its ``(M, ...)`` output as NumPy."""
        array = np.asarray(inputs)
        if self.dtype is not None and array.dtype.kind == "f":
            array = array.astype(self.dtype, copy=False)
        outputs = []
        for start in range(0, array.shape[0], self.batch_size):
            output = self._predict(array[start : start + self.batch_size])
            if not isinstance(output, np.ndarray):
                raise TypeError(
                    f"KerasFunction needs a model with one output; {self.model.name!r} returned "
                    f"{type(output).__name__}"
                )
            self.output_dtype = str(output.dtype)
            outputs.append(output.astype(np.float32) if self.output_dtype in HALF_DTYPES else output)
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)

    def _predict(self, batch: np.ndarray) -> Any:
        """``predict_on_batch``; an error of the model comes back naming it and the input."""
        try:
            return self.model.predict_on_batch(batch)
        except Exception as error:
            raise lmn_core.FunctionError.raised_by(self.name, batch, error) from error

    def const_rtol(self, samples: np.ndarray) -> float | None:
        """The constant tolerance of a half-precision output dtype, else ``None`` (``lmn_core``'s default).

        The dtype is read from the model's symbolic output, or from one call on
        ``samples[:1]`` when the model has none yet.
        """
        if self.output_dtype is None:
            self(samples[:1])
        return half_const_rtol(self.output_dtype)

    @property
    def measures_on_device(self) -> bool:
        """Whether ``lmn_core`` measures on the backend's device (see ``reduction``)."""
        possible = keras.backend.backend() in DEVICE_BACKENDS
        return measures_on_device(self.reduction, off_the_cpu=on_accelerator(), possible=possible)

    def device_plan(self) -> lmn_core.DevicePlan | None:
        """How ``lmn_core`` runs the measurement on the backend's device, or ``None`` for the host."""
        return self._device.plan() if self.measures_on_device else None
