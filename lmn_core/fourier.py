"""Fourier progress measures of modular addition (Nanda et al. 2023; docs/design.md, section 6.4).

"Progress measures for grokking via mechanistic interpretability" finds that a network that
groks ``(a + b) mod p`` computes with a few *key frequencies* ``k``: its embedding lives in
their waves ``cos(2 pi k x / p)``, ``sin(2 pi k x / p)``, and its logits in ``cos(w_k (a + b
- c))``. Three measures follow:

- :func:`fourier_norm_share`: the share of the embedding table's squared norm in the given
  frequencies (with :func:`top_frequencies`, in its own strongest ones);
- :func:`restricted_loss`: the loss of the logits kept to their key-frequency components in
  ``a + b`` (and their mean over the pairs): falls when the generalizing circuit forms;
- :func:`excluded_loss`: the training loss of the logits with those components removed: rises
  when the memorizing circuit fades.

Logits come as a table over all ``p²`` pairs, row ``a * p + b`` (the order of
``reference_tasks.tasks.modular_addition``), one column per class ``c``. Everything is float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: How many key frequencies (the source's network on p = 113 used 5).
KEY_FREQUENCIES = 5


def fourier_basis(p: int) -> np.ndarray:
    """``(p, p)`` orthonormal rows over ``x = 0 … p-1``: the constant, then ``cos`` and ``sin`` waves.

    Row ``2k - 1`` is ``cos(2 pi k x / p)`` and row ``2k`` is ``sin(2 pi k x / p)``, each
    normalised, for ``k = 1 … (p - 1) // 2``; an even ``p`` ends with the alternating wave of
    ``k = p / 2``.
    """
    if int(p) != p or p < 2:
        raise ValueError(f"the modulus p must be an integer >= 2, got {p}")
    x = np.arange(p)
    rows = [np.ones(p)]
    for k in range(1, p // 2 + 1):
        rows.append(np.cos(2 * np.pi * k * x / p))
        if 2 * k != p:
            rows.append(np.sin(2 * np.pi * k * x / p))
    basis = np.array(rows)
    return basis / np.linalg.norm(basis, axis=1, keepdims=True)


def _embedding(embedding: Any) -> np.ndarray:
    table = np.asarray(embedding, dtype=np.float64)
    if table.ndim != 2 or table.shape[0] < 2:
        raise ValueError(
            f"the embedding must be a table (p, d) with one row per token, got shape {table.shape}"
        )
    if not np.isfinite(table).all():
        raise ValueError("the embedding holds NaN or infinity")
    if not np.any(table):
        raise ValueError("the embedding is all zeros: it has no norm to share")
    return table


def frequency_norms(embedding: Any) -> np.ndarray:
    """``(p // 2,)`` squared norms of the embedding in each frequency ``k = 1 … p // 2`` (cos and sin)."""
    table = _embedding(embedding)
    p = table.shape[0]
    power = np.sum((fourier_basis(p) @ table) ** 2, axis=1)
    norms = np.zeros(p // 2)
    for k in range(1, p // 2 + 1):
        norms[k - 1] = power[2 * k - 1] + (power[2 * k] if 2 * k != p else 0.0)
    return norms


def top_frequencies(embedding: Any, count: int = KEY_FREQUENCIES) -> tuple[int, ...]:
    """The ``count`` frequencies of largest :func:`frequency_norms` (ties: the lower first), ascending."""
    norms = frequency_norms(embedding)
    if not 1 <= count <= norms.size:
        raise ValueError(f"count must be between 1 and {norms.size} frequencies, got {count}")
    order = np.lexsort((np.arange(norms.size), -norms))[:count]
    return tuple(sorted(int(k) + 1 for k in order))


def _frequencies(frequencies: Any, p: int) -> tuple[int, ...]:
    chosen = tuple(int(k) for k in np.atleast_1d(np.asarray(frequencies)))
    if not chosen or any(not 1 <= k <= p // 2 for k in chosen) or len(set(chosen)) != len(chosen):
        raise ValueError(f"key frequencies must be distinct integers in 1 … {p // 2} (p = {p}), got {chosen}")
    return chosen


def fourier_norm_share(embedding: Any, frequencies: Any) -> float:
    """The share of the embedding's squared Frobenius norm in the given frequencies, in ``[0, 1]``."""
    table = _embedding(embedding)
    norms = frequency_norms(table)
    chosen = _frequencies(frequencies, table.shape[0])
    return float(sum(norms[k - 1] for k in chosen) / np.sum(table**2))


def _logit_table(logits: Any, p: int) -> np.ndarray:
    table = np.asarray(logits, dtype=np.float64)
    if table.ndim == 3 and table.shape[:2] == (p, p):
        table = table.reshape(p * p, -1)
    if table.ndim != 2 or table.shape[0] != p * p or table.shape[1] != p:
        raise ValueError(
            f"the logits must be a table (p * p, p) = ({p * p}, {p}) over all pairs a * p + b, "
            f"got shape {np.shape(logits)}"
        )
    if not np.isfinite(table).all():
        raise ValueError("the logits hold NaN or infinity")
    return table


def key_components(logits: Any, p: int, frequencies: Any) -> np.ndarray:
    """The logits' components along ``cos(2 pi k (a + b) / p)`` and ``sin(...)`` for the key ``k``.

    Each wave is a unit vector over the ``p²`` pairs; the component is the projection of
    every class's column of logits on it, summed over the key frequencies.
    """
    table = _logit_table(logits, p)
    total = (np.arange(p)[:, None] + np.arange(p)[None, :]).reshape(-1)
    components = np.zeros_like(table)
    for k in _frequencies(frequencies, p):
        for wave in (np.cos(2 * np.pi * k * total / p), np.sin(2 * np.pi * k * total / p)):
            norm = np.linalg.norm(wave)
            if norm > 1e-9 * p:  # the sine of k = p / 2 vanishes
                wave = wave / norm
                components += np.outer(wave, wave @ table)
    return components


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of float64 logits ``(M, C)`` against integer labels ``(M,)``."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-np.mean(log_probs[np.arange(labels.size), labels]))


def _rows(rows: Any, p: int) -> np.ndarray:
    if rows is None:
        return np.arange(p * p)
    chosen = np.asarray(rows)
    if chosen.dtype == bool:
        if chosen.shape != (p * p,):
            raise ValueError(f"a mask of pairs needs {p * p} entries, got shape {chosen.shape}")
        chosen = np.flatnonzero(chosen)
    if chosen.size == 0 or chosen.min() < 0 or chosen.max() >= p * p:
        raise ValueError(f"the pairs must be a non-empty selection of rows 0 … {p * p - 1}")
    return chosen.astype(np.int64)


def restricted_loss(logits: Any, p: int, frequencies: Any, rows: Any = None) -> float:
    """Cross-entropy of the logits restricted to the key frequencies, on ``rows`` (all pairs by default).

    Restricted logits: each class's mean over the ``p²`` pairs plus :func:`key_components`.
    Labels are ``(a + b) mod p``.
    """
    table = _logit_table(logits, p)
    restricted = table.mean(axis=0, keepdims=True) + key_components(table, p, frequencies)
    chosen = _rows(rows, p)
    return cross_entropy(restricted[chosen], (chosen // p + chosen % p) % p)


def excluded_loss(logits: Any, p: int, frequencies: Any, rows: Any) -> float:
    """Cross-entropy of the logits with the key frequencies removed, on ``rows`` (the training pairs).

    Excluded logits: the logits minus :func:`key_components` (projections over all pairs).
    """
    table = _logit_table(logits, p)
    excluded = table - key_components(table, p, frequencies)
    chosen = _rows(rows, p)
    return cross_entropy(excluded[chosen], (chosen // p + chosen % p) % p)
