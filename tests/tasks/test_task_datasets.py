"""The reference tasks' tables and splits (NumPy only)."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_tasks.tasks import (
    TASKS,
    bitwise_xor,
    make_task,
    modular_addition,
    permutation_composition,
    symmetric_group,
    train_test_split,
)


def table(task):
    """The task's labels as an ``(n_tokens, n_tokens)`` operation table."""
    result = np.full((task.n_tokens, task.n_tokens), -1)
    result[task.pairs[:, 0], task.pairs[:, 1]] = task.labels
    return result


def check_all_pairs_once(task):
    assert task.pairs.shape == (task.n_tokens**2, 2)
    assert task.labels.shape == (task.n_samples,)
    assert task.pairs.dtype == task.labels.dtype == np.int64
    assert len({tuple(pair) for pair in task.pairs.tolist()}) == task.n_samples
    assert task.pairs.min() == 0 and task.pairs.max() == task.n_tokens - 1
    assert task.labels.min() >= 0 and task.labels.max() < task.n_classes


def test_paper_sizes():
    sizes = {name: (make_task(name).n_samples, make_task(name).n_classes) for name in TASKS}
    assert sizes == {"modadd": (961, 31), "s4": (576, 24), "xor": (1024, 32)}


@given(st.integers(2, 40))
def test_modular_addition_is_the_formula(p):
    task = modular_addition(p)
    check_all_pairs_once(task)
    a, b = task.pairs.T
    assert np.array_equal(task.labels, (a + b) % p)
    assert all(
        label == (x + y) % p for (x, y), label in zip(task.pairs.tolist(), task.labels.tolist(), strict=True)
    )


@settings(deadline=None)  # 16384 pairs checked in Python at 7 bits
@given(st.integers(1, 7))
def test_xor_is_the_formula(n_bits):
    task = bitwise_xor(n_bits)
    check_all_pairs_once(task)
    assert task.n_tokens == task.n_classes == 2**n_bits
    for (a, b), label in zip(task.pairs.tolist(), task.labels.tolist(), strict=True):
        bits = [((a >> k) & 1) != ((b >> k) & 1) for k in range(n_bits)]
        assert label == sum(1 << k for k, bit in enumerate(bits) if bit)


def test_symmetric_group_order_is_lexicographic():
    elements = symmetric_group(4)
    assert elements.shape == (24, 4)
    assert [tuple(row) for row in elements.tolist()] == list(itertools.permutations(range(4)))
    assert np.array_equal(elements[0], np.arange(4))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_permutation_composition_is_a_group_table(n):
    task = permutation_composition(n)
    check_all_pairs_once(task)
    t = table(task)
    size = task.n_tokens
    everyone = np.arange(size)
    # closure: every product is an element, and each row and column is a permutation (Latin square)
    assert (t >= 0).all() and (t < size).all()
    assert all(
        np.array_equal(np.sort(t[a]), everyone) and np.array_equal(np.sort(t[:, a]), everyone)
        for a in everyone
    )
    # associativity: (a b) c == a (b c) for all a, b, c
    a, b, c = np.meshgrid(everyone, everyone, everyone, indexing="ij")
    assert np.array_equal(t[t[a, b], c], t[a, t[b, c]])
    # identity: element 0
    assert np.array_equal(t[0], everyone) and np.array_equal(t[:, 0], everyone)
    # inverses: a b == b a == identity for some b
    inverse = np.argmax(t == 0, axis=1)
    assert np.array_equal(t[everyone, inverse], np.zeros(size)) and np.array_equal(
        t[inverse, everyone], np.zeros(size)
    )


def test_composition_convention_applies_h_first():
    task = permutation_composition(4)
    elements = symmetric_group(4)
    for (a, b), label in zip(task.pairs.tolist(), task.labels.tolist(), strict=True):
        g, h = elements[a], elements[b]
        assert np.array_equal(elements[label], [g[h[i]] for i in range(4)])


def test_s4_is_not_commutative():
    t = table(permutation_composition(4))
    assert not np.array_equal(t, t.T)


def test_make_task_forwards_options_and_rejects_unknown_names():
    assert make_task("modadd", p=7).n_classes == 7
    assert make_task("xor", n_bits=3).n_classes == 8
    assert make_task("s4", n=3).n_classes == 6
    with pytest.raises(ValueError, match=r"unknown task 'mod'.*modadd, s4, xor"):
        make_task("mod")
    with pytest.raises(ValueError, match="p must be an integer >= 2"):
        modular_addition(1)


@settings(max_examples=50)
@given(st.integers(2, 3000), st.floats(0.05, 0.95), st.integers(0, 2**32 - 1))
def test_split_is_disjoint_covering_and_seeded(n, fraction, seed):
    n_train = round(fraction * n)
    if not 0 < n_train < n:
        with pytest.raises(ValueError, match="leaves train or test empty"):
            train_test_split(n, train_fraction=fraction, seed=seed)
        return
    train, test = train_test_split(n, train_fraction=fraction, seed=seed)
    assert train.size == n_train
    assert np.intersect1d(train, test).size == 0
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(n))
    assert np.array_equal(train, np.sort(train)) and np.array_equal(test, np.sort(test))
    again = train_test_split(n, train_fraction=fraction, seed=seed)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], test)


def test_split_default_is_80_20_and_depends_on_the_seed():
    train, test = train_test_split(961)
    assert (train.size, test.size) == (769, 192)
    assert not np.array_equal(train_test_split(961, seed=1)[0], train)
