"""The layers of a Keras model that are cuts (:func:`cut_points`), and :func:`split`, which names them.

The names (paths into nested models included, ``"base/block_3_add"``) that
:func:`adapters.keras.split`, ``layer_lmn``, ``LayerLMN`` and ``LMNCallback`` accept, in
the order of ``model.layers`` (a functional model's layers in the order of its graph), a
nested model's own cut points just before the nested model itself. Input layers are left
out. Whether a name is a cut is decided by ``split`` itself, so the list and the refusals
never disagree.
"""

from __future__ import annotations

import keras

from adapters import layer as shared
from adapters.keras.layer import KerasBackend, LayerOptions


def cut_points(model: keras.Model) -> list[str]:
    """The layer names and nested paths at which :func:`adapters.keras.split` succeeds, in graph order.

    Parameters
    ----------
    model : keras.Model
        A Sequential or functional model (a subclassed model has none: its ``call``
        cannot be read).

    Returns
    -------
    list of str
        Names as ``split`` takes them; a layer of a nested model as ``"outer/inner"``.
    """
    return shared.backend_cut_points(KerasBackend(), model, LayerOptions(), None)


def split(model: keras.Model, layer: str, *, fold: bool = False) -> tuple[keras.Model, keras.Model]:
    """Cut ``model`` after ``layer`` into ``(body, head)`` with ``head(body(x)) == model(x)``.

    See the module docstring for the rule. Body and head share the model's layers
    (no copies), so they follow its training.

    Parameters
    ----------
    model : keras.Model
        A ``keras.Sequential`` or functional model.
    layer : str
        The Keras name of one of ``model.layers``, or a path into a nested model
        (``"base/block_3_add"`` or ``"base.block_3_add"``); the body ends with its output.
    fold : bool
        Move the linear ``Dense`` layers that start the head into the body (affine
        prefix folding, see the module docstring).

    Returns
    -------
    tuple of keras.Model
        ``(body, head)``; ``head`` is the identity when ``layer`` is the last one, or
        when only linear ``Dense`` layers follow it and ``fold`` is true.

    Raises
    ------
    ValueError
        If ``layer`` is not a layer of the model, or is not a cut of it (the message
        then names the nearest cut points before and after it).
    """
    return shared.cut_with_nearest(KerasBackend(), model, layer, LayerOptions(fold=fold), None)
