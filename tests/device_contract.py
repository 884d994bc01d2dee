"""Checks that every framework's device path (``lmn_core.DevicePlan``) must pass, written once.

Each check takes ``reducing(function, reduction, width=1)``: the framework adapter's
``lmn_core`` callable applying ``function`` elementwise to ``(M, width)`` inputs, with
``reduction`` ``"device"`` (measured through its plan) or ``"host"``. ``sin`` is the
framework's sine, and ``dtype`` the samples' dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import lmn_core

Reducing = Callable[..., Any]


def check_near_constant_float32_outputs_count_as_linear(reducing: Reducing, sin: Callable) -> None:
    def function(x):
        return 1000.0 + 1e-4 * sin(50.0 * x)  # varies by a few float32 ulps

    X = np.linspace(-3.0, 3.0, 12, dtype=np.float32)[:, None]
    device = reducing(function, "device")
    assert lmn_core.lmn(device, X).lmn == pytest.approx(1.0, abs=1e-12)
    strict_device = lmn_core.connectivity_matrix(device, X, const_rtol=0.0)
    strict_host = lmn_core.connectivity_matrix(reducing(function, "host"), X, const_rtol=0.0)
    assert strict_device.min() < 0.9  # with no tolerance, rounding noise reads as non-linearity
    np.testing.assert_array_equal(strict_device < 1.0, strict_host < 1.0)  # the same constant calls


def check_absolute_tolerance_is_applied_where_the_outputs_are(
    reducing: Reducing, sin: Callable, dtype: type
) -> None:
    device = reducing(lambda x: 1e-3 * sin(5.0 * x), "device")
    X = np.linspace(-1.0, 1.0, 6, dtype=dtype)[:, None]
    assert lmn_core.connectivity_matrix(device, X).min() < 0.9
    assert lmn_core.connectivity_matrix(device, X, const_atol=3e-3).min() == 1.0


def check_float32_outputs_are_summed_in_float64(reducing: Reducing, sin: Callable) -> None:
    """On samples and λ exact in float32 both paths give ``f`` the same points, so the same
    float32 outputs: ``L`` then differs only by the sums' order in float64 (float32 sums
    would be off by about 1e-7)."""
    X = np.random.default_rng(0).integers(-8, 9, size=(16, 3)).astype(np.float32)
    device, host = reducing(sin, "device", width=3), reducing(sin, "host", width=3)
    for n_points in (5, 9):  # λ = k / 4, k / 8: every interior point exact in float32
        on_device = lmn_core.connectivity_matrix(device, X, n_points=n_points)
        on_host = lmn_core.connectivity_matrix(host, X, n_points=n_points)
        assert on_device.dtype == np.float64 and on_device.min() < 0.9
        np.testing.assert_allclose(on_device, on_host, rtol=0, atol=1e-12)


def check_duplicate_samples_are_linearly_connected(reducing: Reducing, sin: Callable) -> None:
    X = np.array([[0.0, 1.0], [2.0, -1.0], [0.0, 1.0]], dtype=np.float32)
    L = lmn_core.connectivity_matrix(reducing(lambda x: sin(3.0 * x), "device", width=2), X)
    assert L[0, 2] == 1.0
    assert L[0, 1] < 0.9


def check_non_finite_interior_output_names_the_pair_and_lambda(reducing: Reducing, dtype: type) -> None:
    X = np.array([[2.0], [3.0], [0.0], [1.0]], dtype=dtype)  # first crossing: pair (0, 2) at λ = 0.75
    with pytest.raises(ValueError, match=r"between samples 0 and 2 at λ = 0\.75"):
        lmn_core.lmn(reducing(lambda x: 1.0 / (x - 0.5), "device"), X)
