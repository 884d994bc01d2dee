"""Keras models cut at a layer into ``(body, head)``, with affine prefix folding.

Cutting rule of :func:`split`. A ``keras.Sequential`` model is a chain: it can be cut
after any of its layers. A functional model is cut after ``layer`` when that layer is
called exactly once in the model's graph, has one output tensor, and the model's
output can be computed from that tensor alone: no skip connection nor other branch
goes around the layer. The body is the graph from the model's input to that tensor,
the head the graph from that tensor to the model's output; both share the model's
layers (no copies), so they follow its training, and ``head(body(x))`` runs exactly
the operations of ``model(x)``. A layer of a nested model (a base model inside a
transfer-learning model) is named by a path, ``"base/layer"``: the nested model is cut
there, the outer model at the nested model, and the parts composed. A subclassed
model's ``call`` cannot be read, so it cannot be cut.

Affine prefix folding (docs/design.md, identity 3). ``split(..., fold=True)`` (what
:func:`layer_lmn`, :class:`LayerLMN` and :class:`LMNCallback` do by default) moves the
``Dense`` layers with a linear activation that start the head into the body (a
``Dense`` followed by a separate ``Activation`` layer counts): the samples become their
output, computed once, and the head left to interpolate through is shorter. The
connectivity matrix is the same, up to rounding, because an affine map sends segments
to segments with the same λ. A head that was a single such ``Dense`` becomes the
identity, whose LMN is 1.
"""

from __future__ import annotations

from typing import Any

import keras

from adapters.refusals import NotACutError


def defined_inputs(model: keras.Model) -> list[Any] | None:
    """The model's symbolic inputs, or ``None`` for a Sequential model not built yet."""
    try:
        return list(model.inputs)
    except (AttributeError, ValueError):
        return None


def defined_outputs(model: keras.Model) -> list[Any] | None:
    """The model's flat symbolic outputs, or ``None`` for a Sequential model not built yet."""
    try:
        return list(keras.tree.flatten(model.outputs))
    except (AttributeError, ValueError):
        return None


def _identity(tensor: Any, name: str) -> keras.Model:
    """A functional model that returns its input, shaped like the symbolic ``tensor``."""
    inputs = keras.Input(shape=tensor.shape[1:], dtype=tensor.dtype)
    return keras.Model(inputs, inputs, name=name)


def _single(tensors: list[Any]) -> Any:
    return tensors[0] if len(tensors) == 1 else tensors


def _split_sequential(model: keras.Sequential, index: int) -> tuple[keras.Model, keras.Model]:
    layers, inputs, name = model.layers, defined_inputs(model), model.name
    if not inputs:  # not built yet: both parts are built by their first call
        body = keras.Sequential(layers[: index + 1], name=f"{name}_body")
        rest = layers[index + 1 :] or [keras.layers.Identity(dtype=layers[index].dtype_policy)]
        return body, keras.Sequential(rest, name=f"{name}_head")
    start = keras.Input(shape=inputs[0].shape[1:], dtype=inputs[0].dtype)
    body = keras.Sequential([start, *layers[: index + 1]], name=f"{name}_body")
    cut = body.outputs[0]
    if index + 1 == len(layers):
        return body, _identity(cut, f"{name}_head")
    head_input = keras.Input(shape=cut.shape[1:], dtype=cut.dtype)
    return body, keras.Sequential([head_input, *layers[index + 1 :]], name=f"{name}_head")


def calls_per_layer(model: keras.Model) -> dict[str, int] | None:
    """How many times each layer is called in a functional model's graph, from its config.

    ``None`` when the model cannot write its config (a custom layer without
    ``get_config``); each layer is then taken at its first call, as ``layer.output`` is.
    """
    try:
        config = model.get_config()
    except (NotImplementedError, TypeError, ValueError):
        return None
    return {entry["name"]: len(entry.get("inbound_nodes", ())) for entry in config.get("layers", ())}


def _cut_tensor(model: keras.Model, layer: keras.layers.Layer) -> Any:
    """The one output tensor of ``layer`` in ``model``'s graph, or a ``ValueError`` naming it."""
    name = layer.name
    calls = (calls_per_layer(model) or {}).get(name, 1)
    if calls > 1:
        raise NotACutError(
            f"layer {name!r} is not a cut of {model.name!r}: it is called {calls} times in the "
            "model's graph, so it has no single output to cut at"
        )
    if isinstance(layer, keras.Model):  # a nested model's .output is the one of its own graph
        return _nested_output(model, name)
    outputs = keras.tree.flatten(layer.output)
    if len(outputs) != 1:
        raise NotACutError(f"layer {name!r} is not a cut of {model.name!r}: it has {len(outputs)} outputs")
    return outputs[0]


def _nested_output(model: keras.Model, name: str) -> Any:
    """The tensor that the nested model ``name`` produces in ``model``'s graph, found from its config."""
    config = model.get_config()
    declared = config.get("output_layers", ())
    declared = [declared] if declared and isinstance(declared[0], str) else list(declared)
    for position, history in enumerate(declared):
        if history[0] == name:
            return keras.tree.flatten(model.outputs)[position]
    for entry in config.get("layers", ()):
        nodes = entry.get("inbound_nodes", ())
        histories = _history(nodes[0]["args"]) if nodes else []
        consumer = model.get_layer(entry["name"])
        for position, history in enumerate(histories):
            if history[0] == name and not isinstance(consumer, keras.Model):
                return keras.tree.flatten(consumer.input)[position]
    raise ValueError(f"cannot find the output of the nested model {name!r} in {model.name!r}'s graph")


def _consumers(model: keras.Model, tensor: Any) -> list[keras.layers.Layer]:
    """The layers whose (first) call takes ``tensor`` among its inputs."""
    found = []
    for layer in model.layers:
        try:
            inputs = keras.tree.flatten(layer.input)
        except (AttributeError, ValueError):  # an input layer
            continue
        if any(tensor is candidate for candidate in inputs):
            found.append(layer)
    return found


def _split_functional(model: keras.Model, layer: keras.layers.Layer) -> tuple[keras.Model, keras.Model]:
    name = layer.name
    cut = _cut_tensor(model, layer)
    model_inputs, model_outputs = list(model.inputs), list(model.outputs)
    if any(cut is tensor for tensor in model_inputs):
        body = _identity(cut, f"{model.name}_body")
    else:
        body = keras.Model(_single(model_inputs), cut, name=f"{model.name}_body")
    if len(model_outputs) == 1 and cut is model_outputs[0]:
        return body, _identity(cut, f"{model.name}_head")
    try:
        head = keras.Model(cut, _single(model_outputs), name=f"{model.name}_head")
    except ValueError as error:
        raise NotACutError(
            f"layer {name!r} is not a cut of {model.name!r}: the model's output depends on more than "
            "that layer's output (a skip connection or another branch goes around it)"
        ) from error
    return body, head


def _is_affine(layer: keras.layers.Layer) -> bool:
    """A ``Dense`` as it is (not a subclass), with a linear activation and not quantized."""
    return (
        type(layer) is keras.layers.Dense
        and layer.activation is keras.activations.linear
        and layer.quantization_mode is None
    )


def _affine_successor(model: keras.Model, layer: str) -> str | None:
    """The name of the affine layer that alone takes ``layer``'s output, if the model goes on with one.

    ``layer`` must already be a cut of ``model``.
    """
    layers = model.layers
    index = [item.name for item in layers].index(layer)
    if isinstance(model, keras.Sequential):
        following = layers[index + 1] if index + 1 < len(layers) else None
        return following.name if following is not None and _is_affine(following) else None
    cut = _cut_tensor(model, layers[index])
    consumers = _consumers(model, cut)
    if len(consumers) != 1 or any(cut is tensor for tensor in model.outputs):
        return None
    successor = consumers[0]
    called_once = (calls_per_layer(model) or {}).get(successor.name, 1) == 1
    return successor.name if called_once and _is_affine(successor) else None


def _history(node: Any) -> list[list[Any]]:
    """The ``keras_history`` entries (producer name, node, tensor index) in a config's node."""
    if isinstance(node, dict):
        history = (
            node.get("config", {}).get("keras_history")
            if node.get("class_name") == "__keras_tensor__"
            else None
        )
        return (
            [history]
            if history is not None
            else [found for value in node.values() for found in _history(value)]
        )
    if isinstance(node, list | tuple):
        return [found for value in node for found in _history(value)]
    return []


def _inbound_tensor(model: keras.Model, name: str) -> Any:
    """The one tensor that the layer ``name`` of a functional model is called on, from its config."""
    entries = {entry["name"]: entry for entry in model.get_config().get("layers", ())}
    nodes = entries[name].get("inbound_nodes", ())
    histories = _history(nodes[0]["args"]) if len(nodes) == 1 else []
    if len(nodes) != 1 or len(histories) != 1:
        raise ValueError(f"cannot cut inside {name!r} in {model.name!r}: it is not called once on one tensor")
    producer, _, index = histories[0]
    return keras.tree.flatten(model.get_layer(producer).output)[index]


def nested_path(model: keras.Model, layer: str) -> tuple[str, str] | None:
    """``("base", "block_3_add")`` when ``layer`` is a path into a nested model, else ``None``.

    A path joins names with ``/`` (as Keras writes them) or ``.`` (as PyTorch does).
    """
    names = {item.name for item in model.layers}
    for separator in ("/", "."):
        outer, found, rest = layer.partition(separator)
        if found and outer in names and isinstance(model.get_layer(outer), keras.Model):
            return outer, rest
    return None


def _split_nested(model: keras.Model, outer: str, inner: str, fold: bool) -> tuple[keras.Model, keras.Model]:
    """Cut ``model`` inside its nested model ``outer``, after that model's layer ``inner``."""
    if isinstance(model, keras.Sequential) or not isinstance(model, keras.Function):
        raise ValueError(f"cannot cut inside {outer!r}: {model.name!r} is not a functional model")
    inner_body, inner_head = split_at(model.get_layer(outer), inner, fold=fold)
    _, outer_head = _split(model, outer)  # the nested model must itself be a cut
    body = keras.Model(
        _single(list(model.inputs)), inner_body(_inbound_tensor(model, outer)), name=f"{model.name}_body"
    )
    cut = body.outputs[0]
    start = keras.Input(shape=cut.shape[1:], dtype=cut.dtype)
    return body, keras.Model(start, outer_head(inner_head(start)), name=f"{model.name}_head")


def split_at(model: keras.Model, layer: str, *, fold: bool = False) -> tuple[keras.Model, keras.Model]:
    """:func:`split` without the nearest cut points in its refusal (a ``NotACutError``)."""
    path = nested_path(model, layer) if layer not in {item.name for item in model.layers} else None
    if path is not None:
        return _split_nested(model, *path, fold=fold)
    body, head = _split(model, layer)
    if not fold:
        return body, head
    folded = layer
    while (successor := _affine_successor(model, folded)) is not None:
        folded = successor
    # every path to the output runs through the cut, and from it through the affine layers alone
    return (body, head) if folded == layer else _split(model, folded)


def _split(model: keras.Model, layer: str) -> tuple[keras.Model, keras.Model]:
    names = [item.name for item in model.layers]
    if layer not in names:
        raise ValueError(f"no layer {layer!r} in {model.name!r}; its layers are {names}")
    if isinstance(model, keras.Sequential):
        return _split_sequential(model, names.index(layer))
    if not isinstance(model, keras.Function):
        raise ValueError(
            f"cannot cut {model.name!r} ({type(model).__name__}) at layer {layer!r}: it is a subclassed "
            "model, whose call cannot be read; build it as a Sequential or functional model"
        )
    return _split_functional(model, model.layers[names.index(layer)])


def narrow_output(head: keras.Model, output: Any, output_names: list[str] | None = None) -> keras.Model:
    """The head narrowed to the one output tensor that ``output`` picks.

    ``output`` is an index into the head's outputs, a key of its dict output or the name
    of an output layer (``output_names``: the whole model's, in the head's order; the
    head's own by default), or a callable on its symbolic outputs (with ``keras.ops``);
    ``None`` keeps a head with one output and refuses one with several.
    """
    if output is None:
        n_outputs = len(defined_outputs(head) or [None])
        if n_outputs != 1:
            raise ValueError(
                f"{head.name!r} returns {n_outputs} outputs: pick the one to measure with output= "
                "(an index, a key or an output layer's name, or a callable)"
            )
        return head
    output_names = list(head.output_names) if output_names is None else output_names
    outputs = head.output
    try:
        if callable(output):
            chosen = output(outputs)
        elif isinstance(outputs, dict) or isinstance(output, int):
            chosen = outputs[output] if isinstance(outputs, dict) else keras.tree.flatten(outputs)[output]
        else:
            chosen = keras.tree.flatten(outputs)[output_names.index(output)]
    except (KeyError, IndexError, ValueError, TypeError):
        names = list(outputs) if isinstance(outputs, dict) else output_names
        raise ValueError(f"output={output!r} is not an output of {head.name!r}; it has {names}") from None
    return keras.Model(head.inputs, chosen, name=f"{head.name}_output")


def candidates(model: keras.Model) -> list[str]:
    """Every layer name and nested path, in graph order, input layers aside."""
    names: list[str] = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            names.extend(f"{layer.name}/{inner}" for inner in candidates(layer))
        names.append(layer.name)
    return names
