"""Run a head's last ``nn.Linear`` at the output width its matrix product is fastest at.

PyTorch's float32 ``linear`` on a CPU is much slower at some output widths than at a
slightly larger one: on the development machine (MKL, AVX-512) 31 output columns took
about twice as long as 32, while 24 was faster than 32 (``benchmarks/bench_width.py``,
docs/design.md section 4.3). Which widths are slow depends on the library and the CPU, so
:func:`widen_last_linear` measures: it times the head's last ``nn.Linear`` at its own width
and at the next multiples of 8 and 16 on the rows a block of pairs will have, and, when a
wider one is faster by :data:`MIN_GAIN` or more, runs it at that width
(:class:`WidenedLinear`: zero rows added to the weight and bias once per measurement,
inside :func:`padded_once`, or else at every call, so it follows training; the extra
outputs cut off). Whether a wider product gives the layer's own bits depends on the CPU's
kernels too (on an AMD EPYC, 31 columns widened to 32 gave other bits on 2, 3 and 5 rows,
and 10 columns widened to 16 on every row count), so a :class:`WidenedLinear` runs wide
only on the row counts where :func:`keeps_bits` found the layer's own bits on this machine
(checked once per process and shape), and only such widths are timed. The timing depends
on the machine's load, but the choice does not reach the results, which
``tests/torch/test_torch_width.py`` checks.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional

from adapters.torch.modules import acts_as_linear

logger = logging.getLogger(__name__)

#: A wider product is used only when it takes at most this fraction of the own width's time.
MIN_GAIN = 0.8
_REPEATS = 7
#: Outputs a wider product must give bit for bit, on one row count, before it runs there.
_CHECKED_VALUES = 2**16


def _padded_parameters(linear: nn.Linear, width: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``linear``'s weight and bias with zero rows added up to ``width`` outputs."""
    extra = width - linear.out_features
    weight = functional.pad(linear.weight, (0, 0, 0, extra))
    bias = None if linear.bias is None else functional.pad(linear.bias, (0, extra))
    return weight, bias


@contextlib.contextmanager
def _seeded_layer(in_features: int, out_features: int, dtype: torch.dtype) -> Iterator[nn.Linear]:
    """A random ``nn.Linear`` of this shape, seeded, under ``no_grad``; the caller's random
    state is as it was afterwards (random inputs drawn inside are seeded too)."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        yield nn.Linear(in_features, out_features, dtype=dtype)


@functools.cache
def keeps_bits(in_features: int, out_features: int, width: int, dtype: torch.dtype, rows: int) -> bool:
    """Whether a ``linear`` of this shape computed ``width`` outputs wide gives its own bits on
    ``rows`` rows, on this machine: checked once per process and shape on random layers and
    batches, :data:`_CHECKED_VALUES` outputs at least (a few outputs summed in another order
    may still agree: one row of 10 outputs did, on the machine that found it)."""
    with _seeded_layer(in_features, out_features, dtype) as linear:
        weight, bias = _padded_parameters(linear, width)
        for _ in range(-(-_CHECKED_VALUES // (rows * out_features))):
            inputs = torch.randn(rows, in_features, dtype=dtype)
            if not torch.equal(functional.linear(inputs, weight, bias)[:, :out_features], linear(inputs)):
                return False
    return True


class WidenedLinear(nn.Module):
    """``linear`` computed ``width`` outputs wide (zero rows added), its own outputs kept.

    On row counts where that would not give the layer's own bits on this machine
    (:func:`keeps_bits`), the layer itself runs.

    Parameters
    ----------
    linear : torch.nn.Linear
        The layer; its parameters are padded at every call, or once for all the calls
        inside :meth:`padded_once`, so the module follows training.
    width : int
        Output columns of the product, at least ``linear.out_features``.
    """

    def __init__(self, linear: nn.Linear, width: int) -> None:
        super().__init__()
        if width < linear.out_features:
            raise ValueError(f"width {width} is narrower than the layer's {linear.out_features} outputs")
        self.linear = linear
        self.width = width
        self._padded: tuple[torch.Tensor, torch.Tensor | None] | None = None

    @contextlib.contextmanager
    def padded_once(self) -> Iterator[None]:
        """Pad the parameters once for every call inside (they must not change meanwhile)."""
        with torch.no_grad():
            self._padded = _padded_parameters(self.linear, self.width)
        try:
            yield
        finally:
            self._padded = None

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``linear(inputs)``, computed at ``width`` output columns where that keeps its bits."""
        linear = self.linear
        rows = inputs.numel() // max(inputs.shape[-1], 1)
        if rows == 0 or not keeps_bits(
            linear.in_features, linear.out_features, self.width, linear.weight.dtype, rows
        ):
            return linear(inputs)
        weight, bias = self._padded if self._padded is not None else _padded_parameters(linear, self.width)
        return functional.linear(inputs, weight, bias)[..., : linear.out_features]


@contextlib.contextmanager
def padded_once(module: nn.Module) -> Iterator[None]:
    """Every :class:`WidenedLinear` in ``module`` pads its parameters once for the calls inside."""
    with contextlib.ExitStack() as stack:
        for layer in module.modules():
            if isinstance(layer, WidenedLinear):
                stack.enter_context(layer.padded_once())
        yield


def candidate_widths(out_features: int) -> list[int]:
    """The layer's own width, then the next multiples of 8 and 16 above it."""
    widths = [out_features]
    for multiple in (8, 16):
        wider = -(-out_features // multiple) * multiple
        if wider not in widths:
            widths.append(wider)
    return widths


def _fastest_seconds(layers: dict[int, nn.Module], inputs: torch.Tensor) -> dict[int, float]:
    """Each layer's quickest of :data:`_REPEATS` calls, the layers taken in turn (what other
    work on the machine adds to a call is never negative, so the minimum is the cost)."""
    seconds = dict.fromkeys(layers, float("inf"))
    for _ in range(_REPEATS):
        for width, layer in layers.items():
            start = time.perf_counter()
            layer(inputs)
            seconds[width] = min(seconds[width], time.perf_counter() - start)
    return seconds


@functools.cache
def fastest_width(in_features: int, out_features: int, dtype: torch.dtype, rows: int) -> int:
    """The output width at which a CPU ``linear`` of this shape runs fastest on ``rows`` rows.

    Its own width unless a wider one that keeps its bits on ``rows`` rows (:func:`keeps_bits`)
    takes at most :data:`MIN_GAIN` of its time; measured once per process and shape, on
    random weights and inputs.
    """
    wider = [
        w for w in candidate_widths(out_features)[1:] if keeps_bits(in_features, out_features, w, dtype, rows)
    ]
    if not wider:
        return out_features
    with _seeded_layer(in_features, out_features, dtype) as linear:
        inputs = torch.randn(rows, in_features, dtype=dtype)
        layers: dict[int, nn.Module] = {out_features: linear}
        layers.update({width: WidenedLinear(linear, width) for width in wider})
        for layer in layers.values():
            layer(inputs)  # warm-up
        seconds = _fastest_seconds(layers, inputs)
    fastest = min(seconds, key=seconds.__getitem__)
    width = fastest if seconds[fastest] <= MIN_GAIN * seconds[out_features] else out_features
    logger.debug(
        "linear %d -> %d on %d rows: %s; runs %d wide",
        in_features,
        out_features,
        rows,
        ", ".join(f"{key} wide {1e6 * value:.0f} us" for key, value in seconds.items()),
        width,
    )
    return width


def widen_last_linear(head: nn.Module, rows: int) -> nn.Module:
    """``head`` with its last module run at its fastest output width (see the module docstring).

    Only a plain ``nn.Sequential`` head that ends in a plain ``nn.Linear`` on the CPU is
    changed; a new ``nn.Sequential`` of the same modules is returned, ``head`` is left as
    it is. Anything else is returned unchanged.
    """
    if type(head) is not nn.Sequential or len(head) == 0:
        return head
    last = head[-1]
    if not acts_as_linear(last) or last.weight.device.type != "cpu":
        return head
    width = fastest_width(last.in_features, last.out_features, last.weight.dtype, rows)
    if width == last.out_features:
        return head
    return nn.Sequential(*list(head)[:-1], WidenedLinear(last, width))
