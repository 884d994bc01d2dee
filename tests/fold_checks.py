"""The check that folding a model's leading affine layer keeps L, for every framework."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest


def check_folding_keeps_the_connectivity_matrix(
    layer_lmn: Callable[..., Any], model: Any, pairs: np.ndarray, probe: str, tolerance: float
) -> None:
    """``layer_lmn`` with and without folding agree to ``tolerance`` (absolute on L, relative on LMN)."""
    plain = layer_lmn(model, pairs, probe, fold=False)
    folded = layer_lmn(model, pairs, probe)
    np.testing.assert_allclose(folded.connectivity, plain.connectivity, rtol=0, atol=tolerance)
    assert folded.lmn == pytest.approx(plain.lmn, rel=tolerance)
    assert folded.n_outputs == plain.n_outputs == 31
