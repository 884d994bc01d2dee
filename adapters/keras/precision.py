"""The precision a Keras model is measured in: float64 is float64 on the TensorFlow backend only.

Keras 3 promotes 64-bit floats to 32-bit in the operations of its other backends
(PyTorch, JAX), so there a float64 model's matrix products run in float32 and its LMN
has float32 precision, although its weights and outputs are float64. The adapter says
so once per model (:func:`warn_if_float64_off_tensorflow`), naming the backend.
"""

from __future__ import annotations

import warnings
import weakref

import keras

_warned: weakref.WeakSet[keras.Model] = weakref.WeakSet()


def is_float64(model: keras.Model) -> bool:
    """Whether the model computes in float64 or holds float64 weights."""
    return model.compute_dtype == "float64" or any(str(weight.dtype) == "float64" for weight in model.weights)


def warn_if_float64_off_tensorflow(model: keras.Model) -> None:
    """Warn, once per model, when a float64 model is measured on a backend other than TensorFlow."""
    backend = keras.backend.backend()
    if backend == "tensorflow" or model in _warned or not is_float64(model):
        return
    _warned.add(model)
    warnings.warn(
        f"{model.name!r} is a float64 model measured on Keras's {backend} backend, which computes float64 "
        "matrix products in float32 (Keras 3 promotes 64-bit floats to 32-bit there): its LMN has float32 "
        "precision. Measure on the TensorFlow backend (KERAS_BACKEND=tensorflow) for float64.",
        UserWarning,
        stacklevel=3,
    )
