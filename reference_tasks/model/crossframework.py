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
import torch

from reference_tasks.model import keras_model as keras_reference
from reference_tasks.model.torch_model import GrokMLP


def torch_to_keras(torch_model: GrokMLP, keras_model: keras.Model) -> None:
    """Copy every weight of ``torch_model`` into ``keras_model`` (cast to the Keras dtype).

    Parameters
    ----------
    torch_model : reference_tasks.model.torch_model.GrokMLP
        The source, on any device.
    keras_model : keras.Model
        A model from ``reference_tasks.model.keras_model.build_model`` of the same sizes.

    Raises
    ------
    ValueError
        If the two models do not have the same shape.
    """
    arrays = {name: value.detach().cpu().numpy() for name, value in torch_model.state_dict().items()}
    keras_reference.load_arrays(keras_model, arrays)


def keras_to_torch(keras_model: keras.Model, torch_model: GrokMLP) -> None:
    """Copy every weight of ``keras_model`` into ``torch_model`` (cast to the PyTorch dtype).

    Parameters
    ----------
    keras_model : keras.Model
        A model from ``reference_tasks.model.keras_model.build_model``.
    torch_model : reference_tasks.model.torch_model.GrokMLP
        The destination, on any device; its parameters are overwritten in place.

    Raises
    ------
    ValueError
        If the two models do not have the same shape.
    """
    state = torch_model.state_dict()
    arrays = keras_reference.snapshot_arrays(keras_model)
    missing, unknown = set(state) - set(arrays), set(arrays) - set(state)
    if missing or unknown:
        raise ValueError(
            f"the Keras model does not fit the PyTorch model (build both with the same "
            f"shared_embedding): missing {sorted(missing)}, unexpected {sorted(unknown)}"
        )
    for name, value in arrays.items():
        if tuple(value.shape) != tuple(state[name].shape):
            raise ValueError(
                f"{name}: the Keras weight has shape {value.shape} in PyTorch layout, the PyTorch "
                f"parameter {tuple(state[name].shape)}: build both models with the same sizes"
            )
    torch_model.load_state_dict({name: torch.from_numpy(value) for name, value in arrays.items()})
