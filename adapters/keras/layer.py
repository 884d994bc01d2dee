"""The LMN of a Keras model at a layer: :class:`LayerLMN` cuts once and measures many times.

:class:`LayerOptions` is the one home of the keyword options that the Keras entry points
(``layer_lmn``, ``LayerLMN``, ``LMNCallback``) pass down to the cut and to the callables it
measures; the rest of their keywords go to :func:`lmn_core.lmn`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras

import lmn_core
from adapters.keras.function import KerasFunction
from adapters.keras.graph import select_output
from adapters.keras.precision import warn_if_float64_off_tensorflow
from adapters.keras.split import split
from adapters.options import Options


@dataclasses.dataclass(frozen=True)
class LayerOptions(Options):
    """How a Keras model is cut at a layer and its parts run: the options of every Keras entry point.

    Attributes
    ----------
    batch_size : int, optional
        Passed to :class:`KerasFunction` for the body and the head.
    fold : bool
        Fold the linear ``Dense`` layers that start the head into the samples (the same
        ``L`` up to rounding, in less time; see :mod:`adapters.keras.graph`).
    reduction : {"auto", "device", "host"}
        Where ``lmn_core`` measures (see :class:`KerasFunction`).
    output : int, str or callable, optional
        For a model with several outputs, the one to measure (see
        :func:`adapters.keras.graph.select_output`).
    compile_rule : bool, optional
        On the device path, run the core's r² rule compiled (see :class:`KerasFunction`:
        ``jax.jit`` unless false, ``torch.compile`` only when true).
    """

    batch_size: int | None = None
    fold: bool = True
    reduction: str = "auto"
    output: Any = None
    compile_rule: bool | None = None


class LayerLMN:
    """The LMN "between ``layer`` and the output" of ``model``, split once, measured many times.

    Body and head share the model's weights, so a ``LayerLMN`` built once follows
    training (and keeps Keras's compiled inference functions between measurements).

    Parameters
    ----------
    model : keras.Model
        A Sequential or functional model.
    layer : str
        Keras name of the layer; see :func:`adapters.keras.split.split`.
    options : LayerOptions, optional
        How to cut and run (the defaults of :class:`LayerOptions` otherwise).
    **option_keywords
        Any :class:`LayerOptions` field (``batch_size=``, ``fold=``, ``reduction=``, ...),
        over ``options``.
    """

    def __init__(
        self, model: keras.Model, layer: str, options: LayerOptions | None = None, **option_keywords: Any
    ) -> None:
        options = LayerOptions.with_keywords(options, option_keywords, "LayerLMN")
        self.layer, self.model, self.options = layer, model, options
        body, head = split(model, layer, fold=options.fold)
        body_name, head_name = (f"the {part} of the cut at layer {layer!r}" for part in ("body", "head"))
        self.body = KerasFunction(body, batch_size=options.batch_size, name=body_name)
        names = None if options.output is None else list(model.output_names)
        head = select_output(head, options.output, names)
        self.head = KerasFunction(
            head,
            batch_size=options.batch_size,
            reduction=options.reduction,
            name=head_name,
            compile_rule=options.compile_rule,
        )

    def __call__(self, inputs: Any, **lmn_kwargs: Any) -> lmn_core.LMNResult:
        """LMN of the head on ``X = body(inputs)``; ``lmn_kwargs`` go to :func:`lmn_core.lmn`.

        A head that computes in float16 or bfloat16 gets the constant tolerance of that
        dtype unless ``const_rtol`` is passed. A float64 model measured on a backend other
        than TensorFlow is warned about, once (:mod:`adapters.keras.precision`).
        """
        warn_if_float64_off_tensorflow(self.model)
        samples = self.body(inputs)
        # on the device the core reads the output dtype itself; the host sees float32 copies
        if "const_rtol" not in lmn_kwargs and len(samples) and not self.head.measures_on_device:
            lmn_kwargs = {**lmn_kwargs, "const_rtol": self.head.const_rtol(samples)}
        return lmn_core.lmn(self.head, samples, **lmn_kwargs)


def layer_lmn(model: keras.Model, inputs: Any, layer: str, **keywords: Any) -> lmn_core.LMNResult:
    """LMN "between ``layer`` and the output" of ``model`` on ``inputs``.

    The samples are ``X = body(inputs)``, the function is the head: see
    :func:`adapters.keras.split.split`. By default the linear ``Dense`` layers that start
    the head are folded into the body (the same ``L`` up to rounding, in less time).

    Parameters
    ----------
    model : keras.Model
        A Sequential or functional model.
    inputs : array_like
        Model inputs ``(N, ...)``.
    layer : str
        Keras name of the layer.
    **keywords
        Any :class:`LayerOptions` field (``batch_size``, ``fold``, ``reduction``, ...) and
        any keyword of :func:`lmn_core.lmn` (``n_points``, ``memory_budget``, ``progress``, ...).

    Returns
    -------
    lmn_core.LMNResult
    """
    options, lmn_kwargs = LayerOptions.taken_from(keywords)
    return LayerLMN(model, layer, options)(inputs, **lmn_kwargs)
