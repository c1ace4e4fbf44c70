"""The IVF self-join that gives clustering its kNN graph."""

from __future__ import annotations

import faiss
import numba
import numpy as np
import pytest
from sklearn.datasets import make_blobs

from clustering.index import NeighborIndex, knn_recall


def _points(n: int, d: int, seed: int) -> np.ndarray:
    X, _ = make_blobs(n, n_features=d, centers=12, cluster_std=1.5, random_state=seed)
    noise = np.random.default_rng(seed).uniform(X.min(0), X.max(0), size=(n // 4, d))
    return np.vstack([X, noise]).astype(np.float32)


def test_scanning_every_cell_is_exact() -> None:
    X = _points(3000, 8, seed=0)
    idx = NeighborIndex(method="ivf", nlist=16, nprobe=16).fit(X)
    D, ids = idx.self_knn(X, 12)
    Dt, It = faiss.knn(X, X, 12)
    np.testing.assert_allclose(D, np.sqrt(np.maximum(Dt, 0)), rtol=1e-4, atol=1e-4)
    # continuous data: no ties, so the ids agree too; each point is its own first neighbour
    assert (ids == It).mean() > 0.999
    np.testing.assert_array_equal(ids[:, 0], np.arange(len(X)))


def test_finds_as_many_neighbours_as_faiss_search() -> None:
    X = _points(20000, 16, seed=1)
    idx = NeighborIndex(method="ivf", nprobe=5).fit(X)
    _, ids = idx.self_knn(X, 10)
    ours = knn_recall(None, X, 10, sample=400, found=ids)
    theirs = knn_recall(idx, X, 10, sample=400)
    assert ours >= theirs - 0.02
    assert ours > 0.7


def test_same_graph_whatever_the_thread_count() -> None:
    X = _points(12000, 16, seed=2)
    idx = NeighborIndex(method="ivf", nprobe=4).fit(X)
    before = numba.get_num_threads()
    try:
        graphs = []
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            graphs.append(idx.self_knn(X, 10))
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(graphs[0][1], graphs[1][1])
    np.testing.assert_array_equal(graphs[0][0], graphs[1][0])


def test_missing_neighbours_and_a_foreign_matrix() -> None:
    X = _points(80, 4, seed=3)
    idx = NeighborIndex(method="ivf", nlist=40, nprobe=1).fit(X)
    D, ids = idx.self_knn(X, 10)
    assert (ids < 0).any(), "one cell of two or three rows cannot hold ten neighbours"
    assert np.isinf(D[ids < 0]).all() and np.isfinite(D[ids >= 0]).all()
    assert (D[:, 1:] >= D[:, :-1]).all()
    with pytest.raises(ValueError, match="matrix the index holds"):
        idx.self_knn(X[:50], 10)
