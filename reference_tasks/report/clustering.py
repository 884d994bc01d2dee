"""Spectral clustering of a connectivity matrix, to order its samples for display.

The paper (Figure 4) rearranges the samples of ``L`` into 10 clusters by spectral
clustering (Ng, Jordan & Weiss; von Luxburg's tutorial). Here, in NumPy alone and
deterministically:

1. affinity ``A = max(L, 0)`` made symmetric, degrees ``d = A 1``;
2. normalized affinity ``D^-1/2 A D^-1/2``; its eigenvectors of the ``k`` largest
   eigenvalues as columns, each row scaled to unit length;
3. k-means on those rows: k-means++ seeding from ``numpy.random.default_rng(seed)``,
   then Lloyd iterations, best of ``n_init`` starts by inertia.

The result is invariant to the signs LAPACK gives the eigenvectors (k-means distances are).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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


def spectral_embedding(connectivity: np.ndarray, n_clusters: int) -> np.ndarray:
    """Rows of the top ``n_clusters`` eigenvectors of the normalized affinity, unit length.

    Raises
    ------
    ValueError
        If ``connectivity`` is not a finite square matrix, or ``n_clusters`` is not in ``1..N``.
    """
    matrix = np.asarray(connectivity, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or not np.all(np.isfinite(matrix)):
        raise ValueError(f"connectivity must be a finite square matrix, got shape {matrix.shape}")
    n = matrix.shape[0]
    if not 1 <= n_clusters <= n:
        raise ValueError(f"n_clusters must be in 1..{n} (the number of samples), got {n_clusters}")
    affinity = np.clip((matrix + matrix.T) / 2, 0.0, None)
    degrees = affinity.sum(axis=1)
    scale = np.where(degrees > 0, 1 / np.sqrt(np.where(degrees > 0, degrees, 1.0)), 0.0)
    normalized = scale[:, None] * affinity * scale[None, :]
    _, vectors = np.linalg.eigh(normalized)
    top = vectors[:, ::-1][:, :n_clusters]
    norms = np.linalg.norm(top, axis=1, keepdims=True)
    return top / np.where(norms > 0, norms, 1.0)


def _kmeans_plus_plus(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centers = [points[rng.integers(points.shape[0])]]
    distances = ((points - centers[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = distances.sum()
        index = (
            rng.integers(points.shape[0]) if total <= 0 else rng.choice(points.shape[0], p=distances / total)
        )
        centers.append(points[index])
        distances = np.minimum(distances, ((points - points[index]) ** 2).sum(axis=1))
    return np.array(centers)


def _lloyd(points: np.ndarray, centers: np.ndarray, max_iter: int) -> tuple[np.ndarray, float]:
    labels = np.full(points.shape[0], -1)
    for _ in range(max_iter):
        distances = ((points[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
        new_labels = distances.argmin(axis=1)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        for cluster in range(centers.shape[0]):
            members = points[labels == cluster]
            if members.size:
                centers[cluster] = members.mean(axis=0)
    inertia = float(((points - centers[labels]) ** 2).sum())
    return labels, inertia


def kmeans(
    points: np.ndarray, n_clusters: int, *, seed: int = 0, n_init: int = 10, max_iter: int = 300
) -> np.ndarray:
    """Labels of k-means (k-means++ seeding, Lloyd iterations), best of ``n_init`` by inertia."""
    rng = np.random.default_rng(seed)
    best: tuple[float, np.ndarray] | None = None
    for _ in range(n_init):
        labels, inertia = _lloyd(points, _kmeans_plus_plus(points, n_clusters, rng), max_iter)
        if best is None or inertia < best[0]:
            best = (inertia, labels)
    assert best is not None
    return best[1]


def spectral_clustering(connectivity: np.ndarray, n_clusters: int = 10, *, seed: int = 0) -> Clustering:
    """Cluster the samples of a connectivity matrix and order them cluster by cluster.

    Parameters
    ----------
    connectivity : numpy.ndarray
        ``(N, N)`` connectivity matrix ``L`` (entries in ``[0, 1]``; negative ones count as 0).
    n_clusters : int
        Number of clusters; at most ``N`` (use ``min(10, N)`` for small ``N``).
    seed : int
        Seeds k-means++: the same matrix and seed give the same clustering.

    Returns
    -------
    Clustering
    """
    raw = kmeans(spectral_embedding(connectivity, n_clusters), n_clusters, seed=seed)
    used = np.unique(raw)
    sizes = np.array([np.count_nonzero(raw == c) for c in used])
    firsts = np.array([np.flatnonzero(raw == c)[0] for c in used])
    ranking = used[np.lexsort((firsts, -sizes))]
    relabel = np.empty(raw.max() + 1, dtype=np.int64)
    relabel[ranking] = np.arange(ranking.size)
    labels = relabel[raw]
    return Clustering(labels, np.argsort(labels, kind="stable"))
