"""The measurement at a layer, written once over a small backend per framework.

A :class:`Backend` is what a framework gives the measurement (docs/design.md, section
3.6): the cut of a model at a layer into a body and a head, each wrapped as a callable
for :mod:`lmn_core` (its device plan included), the head's half-precision tolerance, the
context a measurement runs in, and the head read as a piecewise-linear map. On it,
:class:`LayerLMN` (cut once, measure many times) and :class:`LayerRegions` (cut once,
count the linear regions many times) and :class:`LayerProbe` (what a probe gives the
progress measures) are written once for every framework; each
framework's subpackage only names its backend and its options. :func:`backend_cut_points`
and :func:`cut_with_nearest` are the cut points of any backend and its refusal of a layer
that is not one, naming the nearest cut points before and after it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Protocol

import numpy as np

import lmn_core
from adapters.options import Options
from adapters.refusals import NotACutError, nearest_cut_points


class Part(Protocol):
    """A body or a head as a callable for ``lmn_core`` (``TorchFunction``, ``KerasFunction``)."""

    measures_on_device: bool

    def __call__(self, inputs: Any) -> Any: ...


class Backend(Protocol):
    """What one framework gives :class:`LayerLMN` and :class:`LayerRegions`."""

    #: What a model is made of, for messages ("modules", "layers").
    made_of: str
    #: The public function that lists the cut points, for messages.
    lister: str

    def candidates(self, model: Any, options: Any) -> list[str]:
        """The names a cut may be asked at, in the order of the model's graph."""
        ...

    def spelled(self, layer: str) -> str:
        """``layer`` as :meth:`candidates` spells it (a nested path's separator)."""
        ...

    def cut(self, model: Any, layer: str, options: Any, example_inputs: Any) -> tuple[Any, Any]:
        """The model cut after ``layer``: ``(body, head)``; a ``NotACutError`` where it is not a cut.

        The backend's cut strategies are tried in its stated order.
        """
        ...

    def parts(self, model: Any, layer: str, cut: tuple[Any, Any], options: Any) -> tuple[Part, Part]:
        """The cut's body and head as callables for ``lmn_core``, the head picking the output."""
        ...

    def half_rtol(self, head: Part, samples: Any) -> float | None:
        """The constant tolerance of the head's output dtype when it is half precision, else ``None``."""
        ...

    def measuring(self, model: Any, head: Part, lmn_kwargs: dict[str, Any]) -> AbstractContextManager[Any]:
        """What holds while ``lmn_core`` measures (eval mode, a widened last layer, threads, a warning)."""
        ...

    def piecewise_linear_head(self, head: Part) -> lmn_core.PiecewiseLinearHead:
        """The head as affine maps and hinges (its weights of now), or ``ValueError`` naming what is not."""
        ...

    def pre_activations(self, body: Part, head: Part) -> Callable[[Any], list[Any]] | None:
        """``points -> [pre-activations (M, units)]`` of the head's activations, the points at the
        body's output; ``None`` if it has none or they cannot be read."""
        ...


def cut_with_nearest(
    backend: Backend, model: Any, layer: str, options: Any, example_inputs: Any
) -> tuple[Any, Any]:
    """``backend.cut``, its refusal of a layer that is not a cut naming the nearest cut points."""
    try:
        return backend.cut(model, layer, options, example_inputs)
    except NotACutError as error:
        order = backend.candidates(model, options)
        spelled = layer if layer in order else backend.spelled(layer)

        def cut(name: str) -> object:
            return backend.cut(model, name, options, example_inputs)

        raise refused_with_nearest(error, order, spelled, cut, backend.lister) from None


def backend_cut_points(backend: Backend, model: Any, options: Any, example_inputs: Any) -> list[str]:
    """The candidates of ``model`` at which ``backend.cut`` succeeds, in graph order."""
    return cut_points(
        backend.candidates(model, options), lambda name: backend.cut(model, name, options, example_inputs)
    )


class CutOnce:
    """A model cut at ``layer`` once, its body and head wrapped by the backend (the base of the two below).

    Subclasses name :attr:`backend` and :attr:`options_type`, and the options every use
    of the cut takes (:attr:`fixed_options`).
    """

    backend: ClassVar[Backend]
    options_type: ClassVar[type[Options]]
    fixed_options: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        model: Any,
        layer: str,
        options: Options | None = None,
        *,
        example_inputs: Any = None,
        **option_keywords: Any,
    ) -> None:
        options = self.options_type.with_keywords(options, option_keywords, type(self).__name__)
        options = dataclasses.replace(options, **self.fixed_options)  # type: ignore[type-var]
        self.model, self.layer, self.options = model, layer, options
        cut = cut_with_nearest(self.backend, model, layer, options, example_inputs)
        self.body, self.head = self.backend.parts(model, layer, cut, options)
        self.check()

    def check(self) -> None:
        """What a subclass refuses as soon as the cut is made (nothing here)."""


class LayerLMN(CutOnce):
    """The LMN "between ``layer`` and the output" of ``model``, cut once, measured many times.

    The samples are ``X = body(inputs)``, the function is the head followed by the choice
    of ``output``. Body and head share the model's weights, so one ``LayerLMN`` follows
    training. A head that computes in float16 or bfloat16 is measured with the constant
    tolerance of its own dtype (docs/design.md, section 1.2.1) unless ``const_rtol`` is
    passed. Subclasses name :attr:`backend` and :attr:`options_type`.

    Parameters
    ----------
    model
        The model, on the device it runs on.
    layer : str
        The layer's name (see the framework's ``cut_points``).
    options : Options, optional
        How to cut and run (the defaults of :attr:`options_type` otherwise).
    example_inputs : array_like, optional
        Samples' inputs on which a cut is checked once (a graph or hook cut).
    **option_keywords
        Any field of :attr:`options_type`, over ``options``.
    """

    def samples(self, inputs: Any) -> Any:
        """``X = body(inputs)`` as a NumPy array (float16 and bfloat16 as float32)."""
        return self.body(inputs)

    def __call__(self, inputs: Any, **lmn_kwargs: Any) -> lmn_core.LMNResult:
        """LMN of the head on ``X = body(inputs)``; ``lmn_kwargs`` go to :func:`lmn_core.lmn`."""
        samples = self.samples(inputs)
        with self.backend.measuring(self.model, self.head, lmn_kwargs):
            # on the device the core reads the output dtype itself; the host sees float32 copies
            if lmn_kwargs.get("const_rtol") is None and len(samples) and not self.head.measures_on_device:
                rtol = self.backend.half_rtol(self.head, samples)
                if rtol is not None:
                    lmn_kwargs = {**lmn_kwargs, "const_rtol": rtol}
            return lmn_core.lmn(self.head, samples, **lmn_kwargs)


class LayerRegions(CutOnce):
    """The linear regions of ``model``'s head after ``layer``, cut once, counted many times.

    The cut is :class:`LayerLMN`'s with the head's leading affine layers folded into the
    samples (``fold=True``), with the same ``output``, ``input`` and ``fixed_inputs``. The
    head is read again at every count, so it follows training, and checked against the
    head itself on the first samples.

    Parameters
    ----------
    model, layer, options, example_inputs, **option_keywords
        As for :class:`LayerLMN` (``fold`` is always true here).
    """

    fixed_options: ClassVar[dict[str, Any]] = {"fold": True}

    def check(self) -> None:
        """Refuse a head that is not piecewise linear at once, when the cut is made."""
        self.backend.piecewise_linear_head(self.head)

    def __call__(self, inputs: Any, *, progress: bool = False) -> lmn_core.RegionSummary:
        """Regions and pieces of the head on ``X = body(inputs)`` (see :func:`lmn_core.linear_regions`)."""
        samples = self.body(inputs)
        extracted = self.backend.piecewise_linear_head(self.head)
        if not extracted.agrees_with(self.head, samples):
            raise ValueError(
                f"the head after {self.layer!r} does not compute what its {self.backend.made_of} say (a "
                "hook, a branch, a layer used twice, or work outside them): its linear regions cannot be "
                "read from its weights"
            )
        return lmn_core.linear_regions(extracted, samples, progress=progress)


class LayerProbe(CutOnce):
    """What ``model`` gives the progress measures at ``layer`` (docs/design.md, section 6.1), cut once.

    The cut is unfolded (``fold`` and any output widening off): the representations are the
    layer's own outputs, flattened to ``(N, d)``, and the head starts at them. Read many
    times, so it follows training.

    Parameters
    ----------
    model, layer, options, example_inputs, **option_keywords
        As for :class:`LayerLMN`.
    """

    def check(self) -> None:
        """Learn once whether the head is piecewise linear (its regions can then be counted) and
        how its pre-activations are read (``None``: it has no activation)."""
        try:
            self.backend.piecewise_linear_head(self.head)
        except ValueError:
            self.piecewise_linear = False
        else:
            self.piecewise_linear = True
        self.head_pre_activations = self.backend.pre_activations(self.body, self.head)

    @property
    def supplies(self) -> frozenset[str]:
        """The probe's needs (:data:`lmn_core.progress.PROBE_NEEDS`) it meets: ``representations``
        always, ``pre_activations`` where the head has activations, ``pwl_head`` where it is
        piecewise linear."""
        given = {"representations"}
        if self.head_pre_activations is not None:
            given.add("pre_activations")
        if self.piecewise_linear:
            given.add("pwl_head")
        return frozenset(given)

    def outputs(self, inputs: Any) -> np.ndarray:
        """The model's outputs on ``inputs`` (the head after the body, the output chosen)."""
        return np.asarray(self.head(self.body(inputs)))

    def measure_inputs(self, inputs: Any, *, step: int | None = None) -> lmn_core.MeasureInputs:
        """The probe's part of :class:`lmn_core.MeasureInputs` on ``inputs``: representations,
        the head's pre-activations (where it has activations) and its piecewise-linear form
        (where it is one and the representations are vectors)."""
        samples = np.asarray(self.body(inputs))
        shape = samples.shape[1:]
        pre_activations = self.head_pre_activations
        flat = self.piecewise_linear and len(shape) == 1

        def unflattened(points: Any) -> list[Any]:
            return pre_activations(np.asarray(points).reshape(len(points), *shape))

        return lmn_core.MeasureInputs(
            step=step,
            probe=self.layer,
            representations=samples.reshape(len(samples), -1),
            pre_activations=None if pre_activations is None else unflattened,
            pwl_head=self.backend.piecewise_linear_head(self.head) if flat else None,
        )


def cut_points(order: Sequence[str], cut: Callable[[str], object]) -> list[str]:
    """The names in ``order`` at which ``cut`` succeeds (it raises ``ValueError`` where it does not)."""
    return [name for name in order if _is_cut(cut, name)]


def _is_cut(cut: Callable[[str], object], name: str) -> bool:
    try:
        cut(name)
    except ValueError:
        return False
    return True


def refused_with_nearest(
    error: NotACutError, order: Sequence[str], layer: str, cut: Callable[[str], object], lister: str
) -> NotACutError:
    """``error`` with the sentence naming the nearest cut points before and after ``layer``."""
    nearest = nearest_cut_points(order, layer, lambda name: _is_cut(cut, name), lister)
    return NotACutError(f"{error}. {nearest}")
