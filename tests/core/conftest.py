"""Shared strategies and small functions for the core tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import strategies as st

Function = Callable[[np.ndarray], np.ndarray]


def silu_mlp(n_inputs: int, n_hidden: int, n_outputs: int, seed: int, scale: float = 1.0) -> Function:
    """A random float64 MLP ``Linear -> SiLU -> Linear -> tanh -> Linear`` on flattened samples."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(size=(n_inputs, n_hidden)) * scale / np.sqrt(n_inputs)
    b1 = rng.normal(size=n_hidden)
    w2 = rng.normal(size=(n_hidden, n_hidden)) / np.sqrt(n_hidden)
    w3 = rng.normal(size=(n_hidden, n_outputs)) / np.sqrt(n_hidden)

    def f(x: np.ndarray) -> np.ndarray:
        h = x.reshape(x.shape[0], -1) @ w1 + b1
        h = h / (1.0 + np.exp(-h))
        return np.tanh(h @ w2) @ w3

    return f


def grid_values(low: float = -4.0, high: float = 4.0, step: float = 0.25) -> st.SearchStrategy[float]:
    """Dyadic grid values: distinct samples differ by at least ``step``, sums are exact."""
    count = round((high - low) / step)
    return st.integers(0, count).map(lambda i: low + i * step)


@st.composite
def sample_sets(draw: st.DrawFn, max_samples: int = 10, max_rank: int = 3) -> np.ndarray:
    """Samples ``(N, *s)`` of any rank on the dyadic grid, duplicates included."""
    rank = draw(st.integers(1, max_rank))
    shape = tuple(draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank)))
    n_distinct = draw(st.integers(1, max_samples))
    size = n_distinct * int(np.prod(shape))
    values = draw(st.lists(grid_values(), min_size=size, max_size=size))
    distinct = np.array(values, dtype=np.float64).reshape((n_distinct, *shape))
    picks = draw(st.lists(st.integers(0, n_distinct - 1), min_size=1, max_size=max_samples))
    return distinct[np.array(picks)]
