"""Copy the weights of the reference model between PyTorch and Keras.

``torch_model.GrokMLP`` and ``keras_model.build_model`` build the same network with
the same layer names: an embedding table per ``embedding.tables`` entry (one shared,
or one per operand), then ``linear1``, ``linear2``, ``output``. A ``torch.nn.Linear``
stores ``weight`` as ``(out, in)`` and computes ``x @ weight.T + bias``; a Keras
``Dense`` stores ``kernel`` as ``(in, out)`` and computes ``x @ kernel + bias``, so
``kernel = weight.T``. With equal weights both models compute the same logits (up to
rounding), and so the same LMN at every probe layer.

Importing this module imports both frameworks.
"""

from __future__ import annotations

import keras
import numpy as np
import torch

from reference_tasks.torch_model import GrokMLP

DENSE_LAYERS = ("linear1", "linear2", "output")


def _pairs(torch_model: GrokMLP, keras_model: keras.Model) -> list[tuple[str, torch.Tensor, object, bool]]:
    """``(name, torch parameter, keras variable, transposed)`` for every weight of the model."""
    embedding = keras_model.get_layer("embedding")
    torch_tables = [table.weight for table in torch_model.embedding.tables]
    if len(torch_tables) != len(embedding.tables):
        raise ValueError(
            f"the PyTorch model has {len(torch_tables)} embedding tables, the Keras model "
            f"{len(embedding.tables)}: build both with the same shared_embedding"
        )
    pairs = [
        (f"embedding.tables.{index}", parameter, variable, False)
        for index, (parameter, variable) in enumerate(zip(torch_tables, embedding.tables, strict=True))
    ]
    for name in DENSE_LAYERS:
        linear, dense = getattr(torch_model, name), keras_model.get_layer(name)
        pairs.append((f"{name}.weight", linear.weight, dense.kernel, True))
        pairs.append((f"{name}.bias", linear.bias, dense.bias, False))
    for name, parameter, variable, transposed in pairs:
        expected = tuple(reversed(parameter.shape)) if transposed else tuple(parameter.shape)
        if tuple(variable.shape) != expected:
            raise ValueError(
                f"{name}: the PyTorch parameter has shape {tuple(parameter.shape)}, the Keras variable "
                f"{tuple(variable.shape)} (expected {expected}): build both models with the same sizes"
            )
    return pairs


def torch_to_keras(torch_model: GrokMLP, keras_model: keras.Model) -> None:
    """Copy every weight of ``torch_model`` into ``keras_model`` (cast to the Keras dtype).

    Parameters
    ----------
    torch_model : reference_tasks.torch_model.GrokMLP
        The source, on any device.
    keras_model : keras.Model
        A model from ``reference_tasks.keras_model.build_model`` of the same sizes.

    Raises
    ------
    ValueError
        If the two models do not have the same shape.
    """
    for _, parameter, variable, transposed in _pairs(torch_model, keras_model):
        values = parameter.detach().cpu().numpy()
        variable.assign(np.ascontiguousarray(values.T if transposed else values).astype(variable.dtype))


def keras_to_torch(keras_model: keras.Model, torch_model: GrokMLP) -> None:
    """Copy every weight of ``keras_model`` into ``torch_model`` (cast to the PyTorch dtype).

    Parameters
    ----------
    keras_model : keras.Model
        A model from ``reference_tasks.keras_model.build_model``.
    torch_model : reference_tasks.torch_model.GrokMLP
        The destination, on any device; its parameters are overwritten in place.

    Raises
    ------
    ValueError
        If the two models do not have the same shape.
    """
    with torch.no_grad():
        for _, parameter, variable, transposed in _pairs(torch_model, keras_model):
            values = variable.numpy()
            parameter.copy_(torch.from_numpy(np.ascontiguousarray(values.T if transposed else values)))
