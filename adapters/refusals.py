"""The refusal of a layer that is not a cut, written once for every framework.

:class:`NotACutError` is what ``split`` raises for a layer that exists but is not a cut;
:func:`nearest_cut_points` is the sentence that each framework's ``split`` adds to it,
naming the nearest layers before and after it that are cuts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


class NotACutError(ValueError):
    """A layer that exists but is not a cut: the refusal that names the nearest cut points."""


def nearest_cut_points(order: Sequence[str], layer: str, is_cut: Callable[[str], bool], lister: str) -> str:
    """A sentence naming the nearest cut points before and after ``layer`` in ``order``.

    Parameters
    ----------
    order : sequence of str
        The model's layer names in graph order.
    layer : str
        The layer asked for (one past the end of ``order`` when it is not in it).
    is_cut : callable
        Whether ``split`` succeeds at a name.
    lister : str
        The function that lists them all, for the reader.
    """
    position = order.index(layer) if layer in order else len(order)
    before = next((name for name in reversed(order[:position]) if is_cut(name)), None)
    after = next((name for name in order[position + 1 :] if is_cut(name)), None)
    sides = ((before, "before"), (after, "after"))
    named = [f"{name!r} {where} it" for name, where in sides if name is not None]
    nearest = " and ".join(named) if named else "none"
    return f"The nearest cut points: {nearest} ({lister} lists them all)"
