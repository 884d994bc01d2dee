"""reference_tasks.testbeds.data: the testbeds' samples are what their docstrings say."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_tasks.experiment.protocol import data_problem
from reference_tasks.testbeds.data import digits, modular_addition_sequences, parity_subset, sparse_parity


@given(st.integers(2, 40))
@settings(max_examples=20, deadline=None)
def test_modular_addition_lists_every_a_b_equals_sequence_with_its_sum(p):
    data = modular_addition_sequences(p)
    assert data.inputs.shape == (p * p, 3) and data.n_tokens == p + 1 and data.n_classes == p
    a, b, equals = data.inputs.T
    assert (equals == p).all()
    assert sorted(zip(a.tolist(), b.tolist(), strict=True)) == [(i, j) for i in range(p) for j in range(p)]
    np.testing.assert_array_equal(data.labels, (a + b) % p)
    assert data_problem(data) is None


@given(st.integers(3, 60), st.integers(1, 3), st.integers(0, 2**31))
@settings(max_examples=20, deadline=None)
def test_parity_labels_are_the_parity_of_the_hidden_subset(n_bits, k, data_seed):
    data = sparse_parity(n_bits, k, n_samples=300, data_seed=data_seed)
    subset = parity_subset(n_bits, k, data_seed)
    assert len(set(subset.tolist())) == k
    bits = data.inputs
    assert bits.shape == (300, n_bits) and bits.dtype == np.float32 and set(np.unique(bits)) <= {-1.0, 1.0}
    odd_minus_ones = (bits[:, subset] < 0).sum(axis=1) % 2
    np.testing.assert_array_equal(data.labels, odd_minus_ones)
    assert data_problem(data) is None


def test_parity_follows_its_data_seed_alone():
    first, again, other = sparse_parity(data_seed=3), sparse_parity(data_seed=3), sparse_parity(data_seed=4)
    np.testing.assert_array_equal(first.inputs, again.inputs)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert not np.array_equal(first.inputs, other.inputs)
    assert 0.45 < first.labels.mean() < 0.55


def test_parity_refuses_a_subset_larger_than_the_bits():
    with pytest.raises(ValueError, match="k must be at most n_bits = 4, got 5"):
        sparse_parity(4, 5)


def test_digits_are_scikit_learns_images_scaled_to_the_unit_interval():
    data = digits()
    assert data.inputs.shape == (1797, 64) and data.inputs.dtype == np.float32
    assert data.inputs.min() == 0.0 and data.inputs.max() == 1.0
    assert np.bincount(data.labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert data.n_tokens is None and data_problem(data) is None
