"""What an ``LMNResult`` carries, the progress bar, and samples of any shape."""

from __future__ import annotations

import math

import numpy as np
from conftest import silu_mlp

import lmn_core


def test_result_fields_are_consistent() -> None:
    X = np.random.default_rng(0).normal(size=(30, 4))
    result = lmn_core.lmn(silu_mlp(4, 16, 6, seed=0, scale=3.0), X, n_points=11)
    assert (result.n_samples, result.n_points, result.n_outputs) == (30, 11, 6)
    assert math.isclose(result.lmn, 2.0**result.entropy_bits)
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(result.connectivity)), result.eigenvalues)
    negative = -result.eigenvalues[result.eigenvalues < 0].sum() / np.abs(result.eigenvalues).sum()
    assert math.isclose(result.negative_mass, negative, abs_tol=1e-15)
    assert 1.0 < result.lmn < 30.0


def test_progress_bar_does_not_change_the_result(capsys) -> None:
    X = np.random.default_rng(1).normal(size=(12, 3))
    f = silu_mlp(3, 8, 2, seed=1, scale=3.0)
    quiet = lmn_core.connectivity_matrix(f, X)
    shown = lmn_core.connectivity_matrix(f, X, progress=True, block_pairs=5)
    np.testing.assert_allclose(shown, quiet, rtol=0, atol=1e-12)
    assert "0/66" in capsys.readouterr().err


def test_samples_keep_their_shape_when_passed_to_f() -> None:
    shapes = []

    def images(x: np.ndarray) -> np.ndarray:
        shapes.append(x.shape[1:])
        return np.tanh(x).sum(axis=(2, 3))  # (M, channels)

    X = np.random.default_rng(2).normal(size=(6, 2, 3, 4))
    result = lmn_core.lmn(images, X)
    assert set(shapes) == {(2, 3, 4)}
    assert result.n_outputs == 2


def test_float32_samples_reach_f_in_float32() -> None:
    seen = []

    def record(x: np.ndarray) -> np.ndarray:
        seen.append(x.dtype)
        return np.tanh(x)

    lmn_core.lmn(record, np.random.default_rng(3).normal(size=(5, 2)).astype(np.float32))
    assert set(seen) == {np.dtype(np.float32)}


def test_results_compare_by_identity_and_never_raise():
    first = lmn_core.lmn(lambda x: np.tanh(x), np.arange(6.0).reshape(3, 2))
    again = lmn_core.lmn(lambda x: np.tanh(x), np.arange(6.0).reshape(3, 2))
    spectrum = lmn_core.spectrum(first.connectivity)
    assert first == first and first != again  # arrays inside: no elementwise ambiguity
    assert spectrum != lmn_core.spectrum(first.connectivity)
    assert first.lmn == again.lmn and len({first, again, spectrum}) == 3  # hashable


def test_the_spectrum_function_and_its_module_have_their_own_names():
    import importlib

    module = importlib.import_module("lmn_core.spectral")
    assert callable(lmn_core.spectrum) and lmn_core.spectrum is module.spectrum
    assert lmn_core.spectrum(np.eye(4)).lmn == 4.0
