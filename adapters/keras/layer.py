"""The LMN of a Keras model at a layer: :class:`LayerLMN` cuts once and measures many times.

:class:`LayerOptions` is the one home of the keyword options that the Keras entry points
(``layer_lmn``, ``LayerLMN``, ``LMNCallback``) pass down to the cut and to the callables it
measures; the rest of their keywords go to :func:`lmn_core.lmn`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import keras
import numpy as np

import lmn_core
from adapters import layer as shared
from adapters.keras.activations import head_pre_activations
from adapters.keras.function import KerasFunction
from adapters.keras.graph import candidates, narrow_output, split_at
from adapters.keras.precision import warn_if_float64_off_tensorflow
from adapters.keras.regions import piecewise_linear_head
from adapters.options import Options
from lmn_core.measure import DEFAULT_N_POINTS


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
        :func:`adapters.keras.narrow_output`).
    compile_rule : bool, optional
        On the device path, run the core's r² rule compiled (see :class:`KerasFunction`:
        ``jax.jit`` unless false, ``torch.compile`` only when true).
    """

    batch_size: int | None = None
    fold: bool = True
    reduction: str = "auto"
    output: Any = None
    compile_rule: bool | None = None


class KerasBackend:
    """What Keras gives the measurement: cuts, ``KerasFunction`` parts, half precision, regions."""

    made_of = "layers"
    lister = "adapters.keras.cut_points"

    def candidates(self, model: keras.Model, options: LayerOptions) -> list[str]:
        """Every layer name and nested path, in graph order (:func:`adapters.keras.graph.candidates`)."""
        return candidates(model)

    def spelled(self, layer: str) -> str:
        """A nested path as the candidates spell it (``"base/inner"`` for ``"base.inner"``)."""
        return layer.replace(".", "/")

    def cut(
        self, model: keras.Model, layer: str, options: LayerOptions, example_inputs: Any
    ) -> tuple[keras.Model, keras.Model]:
        """:func:`adapters.keras.graph.split_at`: a Sequential's list of layers, or the functional graph."""
        return split_at(model, layer, fold=options.fold)

    def parts(
        self, model: keras.Model, layer: str, cut: tuple[keras.Model, keras.Model], options: LayerOptions
    ) -> tuple[KerasFunction, KerasFunction]:
        """The body and the head (narrowed to ``options.output``) as :class:`KerasFunction` callables."""
        body, head = cut
        body_name, head_name = (f"the {part} of the cut at layer {layer!r}" for part in ("body", "head"))
        names = None if options.output is None else list(model.output_names)
        head = narrow_output(head, options.output, names)
        return KerasFunction(body, batch_size=options.batch_size, name=body_name), KerasFunction(
            head,
            batch_size=options.batch_size,
            reduction=options.reduction,
            name=head_name,
            compile_rule=options.compile_rule,
        )

    def half_rtol(self, head: KerasFunction, samples: np.ndarray) -> float | None:
        """The tolerance of the head's output dtype when it is half precision."""
        return head.const_rtol(samples)

    @contextlib.contextmanager
    def measuring(
        self, model: keras.Model, head: KerasFunction, lmn_kwargs: dict[str, Any]
    ) -> Iterator[None]:
        """A float64 model measured off TensorFlow is warned about, once (:mod:`adapters.keras.precision`)."""
        warn_if_float64_off_tensorflow(model)
        yield

    def piecewise_linear_head(self, head: KerasFunction) -> lmn_core.PiecewiseLinearHead:
        """The head's layers as affine maps and hinges."""
        return piecewise_linear_head(head.model)

    def pre_activations(
        self, body: KerasFunction, head: KerasFunction
    ) -> Callable[[np.ndarray], list[np.ndarray]] | None:
        """The pre-activations of the head's activations (:mod:`adapters.keras.activations`)."""
        return head_pre_activations(body.model, head.model, batch_size=head.batch_size, dtype=head.dtype)


class LayerLMN(shared.LayerLMN):
    """The LMN "between ``layer`` and the output" of a Keras model, cut once, measured many times.

    See :class:`adapters.layer.LayerLMN`: the cut is :func:`adapters.keras.split`'s; body
    and head keep Keras's compiled inference functions between measurements.

    Parameters
    ----------
    model : keras.Model
        A Sequential or functional model.
    layer : str
        Keras name of the layer; see :func:`adapters.keras.split`.
    options : LayerOptions, optional
        How to cut and run (the defaults of :class:`LayerOptions` otherwise).
    **option_keywords
        Any :class:`LayerOptions` field (``batch_size=``, ``fold=``, ``reduction=``, ...),
        over ``options``.
    """

    backend = KerasBackend()
    options_type = LayerOptions


class LayerProbe(shared.LayerProbe):
    """What a Keras model gives the progress measures at ``layer``, cut once, read many times.

    See :class:`adapters.layer.LayerProbe`; the options are :class:`LayerOptions`' (``fold``
    always false: the representations are the layer's outputs).
    """

    backend = KerasBackend()
    options_type = LayerOptions
    fixed_options: ClassVar[dict[str, Any]] = {"fold": False}


class LayerRegions(shared.LayerRegions):
    """The linear regions of a Keras model's head after ``layer``, cut once, counted many times.

    See :class:`adapters.layer.LayerRegions`; the options are :class:`LayerOptions`' (``fold`` always true).
    """

    backend = KerasBackend()
    options_type = LayerOptions


def layer_regions(
    model: keras.Model, inputs: Any, layer: str, *, progress: bool = False, **option_keywords: Any
) -> lmn_core.RegionSummary:
    """The linear regions of ``model`` "between ``layer`` and the output" on ``inputs``.

    See :class:`LayerRegions`; ``option_keywords`` are :class:`LayerOptions` fields.
    """
    return LayerRegions(model, layer, **option_keywords)(inputs, progress=progress)


def layer_lmn(
    model: keras.Model,
    inputs: Any,
    layer: str,
    *,
    batch_size: int | None = None,
    fold: bool = True,
    reduction: str = "auto",
    output: Any = None,
    compile_rule: bool | None = None,
    n_points: int = DEFAULT_N_POINTS,
    memory_budget: int | None = None,
    block_pairs: int | None = None,
    const_rtol: float | None = None,
    const_atol: float = 0.0,
    progress: bool = False,
    overlap: bool | None = None,
    threads: int | None = None,
) -> lmn_core.LMNResult:
    """LMN "between ``layer`` and the output" of ``model`` on ``inputs``.

    The samples are ``X = body(inputs)``, the function is the head: see
    :func:`adapters.keras.split`. By default the linear ``Dense`` layers that start
    the head are folded into the body (the same ``L`` up to rounding, in less time).

    Parameters
    ----------
    model : keras.Model
        A Sequential or functional model.
    inputs : array_like
        Model inputs ``(N, ...)``.
    layer : str
        Keras name of the layer.
    batch_size, fold, reduction, output, compile_rule
        How the model is cut and run: the fields of :class:`LayerOptions`, with their defaults.
    n_points, memory_budget, block_pairs, const_rtol, const_atol, progress, overlap, threads
        Passed to :func:`lmn_core.lmn`, with its defaults (``const_rtol`` ``None``: the
        head's own tolerance, half precision's included).

    Returns
    -------
    lmn_core.LMNResult
    """
    options, lmn_kwargs = LayerOptions.split_call(locals())
    return LayerLMN(model, layer, options)(inputs, **lmn_kwargs)
