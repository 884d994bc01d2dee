"""Spectral clustering of a connectivity matrix, to order its samples for display.

The paper (Figure 4) rearranges the samples of ``L`` into 10 clusters by spectral
clustering. This is scikit-learn's :class:`~sklearn.cluster.SpectralClustering` on the
affinity ``max(L, 0)`` made symmetric (``affinity="precomputed"``, k-means on the
spectral embedding, seeded), followed by a display order: clusters by decreasing size.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import SpectralClustering


@dataclass(frozen=True)
class Clustering:
    """Cluster labels of the samples and the display order they give.

    Attributes
    ----------
    labels : numpy.ndarray
        ``(N,)`` cluster index of each sample; clusters are numbered by decreasing size
        (ties: by their first sample).
    order : numpy.ndarray
        ``(N,)`` permutation: the samples of cluster 0, then cluster 1, ..., each in
        increasing sample index.
    """

    labels: np.ndarray
    order: np.ndarray

    @property
    def sizes(self) -> np.ndarray:
        """Number of samples in each cluster, by cluster index."""
        return np.bincount(self.labels)


def affinity(connectivity: np.ndarray) -> np.ndarray:
    """The symmetric, non-negative affinity ``max((L + L^T) / 2, 0)`` that clustering uses.

    Raises
    ------
    ValueError
        If ``connectivity`` is not a finite square matrix.
    """
    matrix = np.asarray(connectivity, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or not np.all(np.isfinite(matrix)):
        raise ValueError(f"connectivity must be a finite square matrix, got shape {matrix.shape}")
    return np.clip((matrix + matrix.T) / 2, 0.0, None)


FIGURE4_CLUSTERS = 10


def by_size(labels: np.ndarray) -> Clustering:
    """Renumber clusters by decreasing size (ties: first sample) and order samples by cluster."""
    used, first_index, counts = np.unique(labels, return_index=True, return_counts=True)
    ranking = used[np.lexsort((first_index, -counts))]
    relabel = np.empty(used.max() + 1, dtype=np.int64)
    relabel[ranking] = np.arange(ranking.size)
    renumbered = relabel[labels]
    return Clustering(renumbered, np.argsort(renumbered, kind="stable"))


def spectral_clustering(connectivity: np.ndarray, n_clusters: int = 10, *, seed: int = 0) -> Clustering:
    """Cluster the samples of a connectivity matrix and order them cluster by cluster.

    Parameters
    ----------
    connectivity : numpy.ndarray
        ``(N, N)`` connectivity matrix ``L`` (entries in ``[0, 1]``; negative ones count as 0).
    n_clusters : int
        Number of clusters, in ``1..N`` (use ``min(10, N)`` for small ``N``).
    seed : int
        Seeds the embedding and k-means: the same matrix and seed give the same clustering.

    Returns
    -------
    Clustering

    Raises
    ------
    ValueError
        If ``connectivity`` is not a finite square matrix, or ``n_clusters`` is not in ``1..N``.
    """
    weights = affinity(connectivity)
    n = weights.shape[0]
    if not 1 <= n_clusters <= n:
        raise ValueError(f"n_clusters must be in 1..{n} (the number of samples), got {n_clusters}")
    if n_clusters == 1:
        return by_size(np.zeros(n, dtype=np.int64))
    model = SpectralClustering(n_clusters, affinity="precomputed", random_state=seed, n_init=10)
    with warnings.catch_warnings():
        # A matrix with isolated samples is not fully connected: the embedding is still usable.
        warnings.filterwarnings("ignore", message="Graph is not fully connected", category=UserWarning)
        # with as many clusters as samples scikit-learn falls back to a dense eigensolver
        warnings.filterwarnings("ignore", message="k >= N", category=RuntimeWarning)
        return by_size(model.fit_predict(weights))


def figure4_clustering(connectivity: np.ndarray, seed: int) -> Clustering:
    """The clustering Figure 4 orders a matrix by: ``min(10, N)`` clusters from ``seed``."""
    return spectral_clustering(connectivity, min(FIGURE4_CLUSTERS, connectivity.shape[0]), seed=seed)
