"""Reduce blocks of pairs to their ``L`` values with ``keras.ops``, where a model's outputs are.

:class:`KerasPairReducer` is a Keras model whose input is a block of pairs ``(P, 2)``
and whose output is, per pair, its ``L`` value and a non-finite flag. Inside one
Keras inference step (``predict_on_batch``: a ``tf.function`` on TensorFlow,
``jax.jit`` on JAX, ``torch.no_grad`` on PyTorch) it interpolates the points, runs
the head and reduces to r², so only two numbers per pair leave the backend's device.
It applies the policies of :class:`lmn_core.ReductionTask` (the core's): the sums run
over the outputs shifted by ``f(x_i)``, in float64, and the constant test compares the
same float64 quantities as :func:`lmn_core.kernels.reduce_to_connectivity`.

The samples, ``f(X)`` and the tolerance live in non-trainable variables, assigned
anew for each measurement, so that the compiled step is reused across measurements.
Only ``keras.ops`` whose float64 results stay float64 on every backend are used
(on the PyTorch backend ``ops.minimum``/``ops.maximum``/``ops.matmul`` return float32).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

import lmn_core


def _minimum(a: Any, b: Any) -> Any:
    return ops.where(a < b, a, b)


def _maximum(a: Any, b: Any) -> Any:
    return ops.where(a > b, a, b)


def reducer_key(task: lmn_core.ReductionTask, sample_dtype: str) -> tuple:
    """What a :class:`KerasPairReducer` is built for: it serves every task with the same key."""
    samples = task.samples
    return (samples.shape[0], samples.shape[1:], sample_dtype, task.endpoint_outputs.shape[1], task.n_points)


class KerasPairReducer(keras.Model):
    """Pairs ``(P, 2)`` -> ``(P, 2)`` float64: ``L_ij`` and 1.0 where a sum was not finite.

    Parameters
    ----------
    head : keras.Model
        The function measured; takes ``(M, *s)`` in ``sample_dtype``.
    task : lmn_core.ReductionTask
        The first measurement; later ones with the same :func:`reducer_key` are loaded
        with :meth:`assign_task`.
    sample_dtype : str
        The dtype ``head`` takes, in which the points are interpolated.
    """

    def __init__(self, head: keras.Model, task: lmn_core.ReductionTask, sample_dtype: str) -> None:
        super().__init__(name=f"{head.name}_pair_reducer", dtype="float64")
        self.head = head
        self.key = reducer_key(task, sample_dtype)
        n_samples, self.sample_shape, _, self.n_outputs, self.n_points = self.key
        self.samples = self._variable((n_samples, *self.sample_shape), sample_dtype, "samples")
        self.endpoints = self._variable((n_samples, self.n_outputs), "float64", "endpoints")
        self.output_scales = self._variable((self.n_outputs,), "float64", "output_scales")
        self.tolerance = self._variable((2,), "float64", "tolerance")  # const_rtol, const_atol
        self.interior_lambdas = task.interior_lambdas.astype(sample_dtype)
        self.centered = task.centered_lambdas
        self.lambda_spread = task.lambda_spread
        self.assign_task(task)

    @staticmethod
    def _variable(shape: tuple[int, ...], dtype: str, name: str) -> keras.Variable:
        return keras.Variable(np.zeros(shape, dtype=dtype), dtype=dtype, trainable=False, name=name)

    def assign_task(self, task: lmn_core.ReductionTask) -> None:
        """Load one measurement's samples, ``f(X)`` and tolerance into the variables."""
        self.samples.assign(task.samples.astype(self.samples.dtype))
        self.endpoints.assign(task.endpoint_outputs)
        self.output_scales.assign(task.output_scales)
        self.tolerance.assign(np.array([task.const_rtol, task.const_atol]))

    def call(self, pairs: Any) -> Any:
        """``(P, 2)`` pairs ``i < j`` -> ``(P, 2)``: ``L_ij`` and the non-finite flag (0 or 1)."""
        n_interior = self.n_points - 2
        start = ops.take(self.samples, pairs[:, 0], axis=0)
        end = ops.take(self.samples, pairs[:, 1], axis=0)
        ones = (1,) * len(self.sample_shape)
        weights = ops.reshape(ops.convert_to_tensor(self.interior_lambdas), (1, n_interior, *ones))
        points = ops.expand_dims(start, 1) + weights * ops.expand_dims(end - start, 1)
        outputs = self.head(ops.reshape(points, (-1, *self.sample_shape)), training=False)
        interior = ops.reshape(outputs, (-1, n_interior, self.n_outputs))
        origin = ops.take(self.endpoints, pairs[:, 0], axis=0)
        to_end = ops.take(self.endpoints, pairs[:, 1], axis=0) - origin
        shifted = ops.cast(interior, "float64") - ops.expand_dims(origin, 1)
        centered = ops.convert_to_tensor(self.centered, dtype="float64")
        sum_d = ops.sum(shifted, axis=1) + to_end
        sum_cd = ops.einsum("pmk,m->pk", shifted, centered[1:-1]) + centered[-1] * to_end
        sum_dd = ops.sum(shifted * shifted, axis=1) + to_end * to_end
        # rounding is monotone, so min(y) - y_0 is exactly min(y - y_0), as the core computes it
        zero = ops.zeros_like(to_end)
        low = _minimum(ops.cast(ops.min(interior, axis=1), "float64") - origin, _minimum(to_end, zero))
        high = _maximum(ops.cast(ops.max(interior, axis=1), "float64") - origin, _maximum(to_end, zero))
        syy = sum_dd - sum_d * sum_d / self.n_points
        scale = _maximum(ops.expand_dims(self.output_scales, 0), ops.abs(origin) + _maximum(-low, high))
        constant = high - low <= self.tolerance[0] * scale + self.tolerance[1]
        r_squared = _minimum(sum_cd * sum_cd / (self.lambda_spread * syy), ops.ones_like(syy))
        values = ops.mean(ops.where(constant, ops.ones_like(r_squared), r_squared), axis=1)
        finite = ops.logical_and(ops.isfinite(syy), ops.isfinite(sum_cd))
        non_finite = ops.cast(ops.logical_not(ops.all(finite, axis=1)), "float64")
        return ops.stack([values, non_finite], axis=1)


class KerasPairReduction:
    """The :class:`lmn_core.PairReduction` of one measurement, through a :class:`KerasPairReducer`.

    Parameters
    ----------
    reducer : KerasPairReducer
        Its variables already hold the measurement's task.
    pairs_per_call : int
        Pairs per ``predict_on_batch`` call.
    """

    def __init__(self, reducer: KerasPairReducer, pairs_per_call: int) -> None:
        self.reducer = reducer
        self.pairs_per_call = pairs_per_call

    def __call__(self, pair_i: np.ndarray, pair_j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``L_ij`` and the non-finite flags of the pairs ``(pair_i[p], pair_j[p])``."""
        pairs = np.stack([pair_i, pair_j], axis=1)
        results = [
            np.asarray(self.reducer.predict_on_batch(pairs[start : start + self.pairs_per_call]))
            for start in range(0, pairs.shape[0], self.pairs_per_call)
        ]
        result = results[0] if len(results) == 1 else np.concatenate(results)
        return result[:, 0], result[:, 1] != 0.0
