"""A Keras model measured on its backend's device: the :class:`lmn_core.DevicePlan` of each backend.

``lmn_core`` runs the whole measurement through the array API of the arrays a plan gives
it (:mod:`lmn_core.device`). Keras's PyTorch backend computes on ``torch.Tensor``s and its
JAX backend on ``jax.Array``s, both array-API arrays; on them the pairs, their points, the
r² sums in float64, ``L`` and its spectrum stay on the backend's device. TensorFlow's
tensors are not array-API arrays, so with the TensorFlow backend the measurement runs on
the host (the model still computes in TensorFlow, through ``predict_on_batch``).

- **PyTorch backend**: the model is called on tensors under ``torch.no_grad()``; blocks
  are planned from the CUDA device's free memory; with ``compile_rule=True`` the core's
  r² rule runs compiled by ``torch.compile``, as in the PyTorch adapter.
- **JAX backend**: the model runs as one compiled function of its variables
  (``jax.jit`` of ``stateless_call``), compiled once per block shape (the core's blocks
  have one shape), and the core's r² rule as another unless ``compile_rule=False``
  (``DevicePlan.compile``: JAX runs it fused instead of one dispatched operation at a
  time; :func:`adapters.options.rule_compiler`). JAX computes in 32-bit unless
  64-bit types are switched on, so the measurement runs inside ``jax.enable_x64(True)``:
  the r² sums are float64 as on every other path, while the model keeps its own dtype;
  and inside ``jax.default_matmul_precision("highest")``, so that on a GPU its float32
  products are not computed in TF32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import keras
import numpy as np

import lmn_core
from adapters.devices import is_torch_out_of_memory, torch_free_memory
from adapters.options import rule_compiler

#: The backends whose arrays the core can measure on.
DEVICE_BACKENDS = ("torch", "jax")


class KerasDevice:
    """Plans for measuring ``model`` on the active backend's default device.

    Parameters
    ----------
    model : keras.Model
        The function measured; one input, one output.
    dtype : str, optional
        The dtype floating-point samples are cast to (the model input's).
    compile_rule : bool, optional
        Whether the core's r² rule runs compiled (``None``: the backend's default).
    """

    def __init__(self, model: keras.Model, dtype: str | None, compile_rule: bool | None = None) -> None:
        self.model, self.dtype, self.compile_rule = model, dtype, compile_rule
        self._jax_model: _JaxModel | None = None

    def plan(self) -> lmn_core.DevicePlan:
        """The :class:`lmn_core.DevicePlan` of one measurement.

        Raises
        ------
        ValueError
            On a backend whose tensors are not array-API arrays (TensorFlow).
        """
        backend = keras.backend.backend()
        if backend == "torch":
            return _torch_plan(self.model, self.dtype, self.compile_rule)
        if backend == "jax":
            if self._jax_model is None:
                self._jax_model = _JaxModel(self.model)
            return _jax_plan(self._jax_model, self.dtype, self.compile_rule)
        raise ValueError(
            f"reduction='device' needs Keras on a backend whose tensors are array-API arrays "
            f"({' or '.join(DEVICE_BACKENDS)}); the {backend} backend measures on the host: "
            "use reduction='host' or 'auto'"
        )


def _cast(array: np.ndarray, dtype: str | None) -> np.ndarray:
    if dtype is not None and array.dtype.kind == "f":
        return array.astype(dtype, copy=False)
    return array


def _torch_plan(model: keras.Model, dtype: str | None, compile_rule: bool | None) -> lmn_core.DevicePlan:
    import torch

    device = torch.device(keras.ops.zeros(()).device)

    def run(inputs: Any) -> Any:
        return model(inputs, training=False)

    return lmn_core.DevicePlan(
        to_device=lambda array: torch.from_numpy(np.ascontiguousarray(_cast(array, dtype))).to(device),
        run=run,
        free_memory=torch_free_memory(device),
        is_out_of_memory=is_torch_out_of_memory,
        session=torch.no_grad,
        compile=rule_compiler(compile_rule, "torch", torch.compile),
    )


class _JaxModel:
    """``model`` as one compiled function of its variables (recompiled only for a new shape)."""

    def __init__(self, model: keras.Model) -> None:
        import jax

        self.model = model

        def call(trainable: Any, non_trainable: Any, inputs: Any) -> Any:
            outputs, _ = model.stateless_call(trainable, non_trainable, inputs, training=False)
            return outputs

        self.compiled = jax.jit(call)

    def __call__(self, inputs: Any) -> Any:
        trainable = [variable.value for variable in self.model.trainable_variables]
        non_trainable = [variable.value for variable in self.model.non_trainable_variables]
        return self.compiled(trainable, non_trainable, inputs)


@contextlib.contextmanager
def _jax_session() -> Iterator[None]:
    """64-bit types for the float64 sums, and float32 products in full float32.

    On a GPU, JAX's default precision computes float32 matrix products in TF32 (about
    three decimal digits fewer); the PyTorch adapter's are full float32.
    """
    import jax

    with jax.enable_x64(True), jax.default_matmul_precision("highest"):
        yield


def _jax_free_memory(device: Any) -> int | None:
    stats = device.memory_stats() if device.platform != "cpu" else None
    if not stats or "bytes_limit" not in stats:
        return None
    return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))


def _is_jax_out_of_memory(error: BaseException) -> bool:
    return "RESOURCE_EXHAUSTED" in str(error)


def _jax_jit(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` of a namespace and arrays compiled by ``jax.jit`` (recompiled only for
    arrays of new shapes or dtypes)."""
    import jax

    return jax.jit(function, static_argnums=0)


def _jax_plan(run: _JaxModel, dtype: str | None, compile_rule: bool | None) -> lmn_core.DevicePlan:
    import jax
    import jax.numpy as jnp

    device = jax.devices()[0]
    return lmn_core.DevicePlan(
        to_device=lambda array: jax.device_put(jnp.asarray(_cast(array, dtype)), device),
        run=run,
        free_memory=_jax_free_memory(device),
        is_out_of_memory=_is_jax_out_of_memory,
        session=_jax_session,
        compile=rule_compiler(compile_rule, "jax", _jax_jit),
    )
