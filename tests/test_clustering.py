"""HDBSCAN over the FAISS kNN graph, the index and the profiles."""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import HDBSCAN
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from clustering.hdbscan_graph import GraphHDBSCAN
from clustering.index import NeighborIndex, knn_recall
from clustering.profiles import cluster_profiles, top_values


def _blobs(n: int = 4000, d: int = 8, seed: int = 0) -> np.ndarray:
    X, _ = make_blobs(n, n_features=d, centers=8, cluster_std=1.0, random_state=seed)
    rng = np.random.default_rng(seed)
    noise = rng.uniform(X.min(0), X.max(0), size=(n // 4, d))
    return np.vstack([X, noise])


def test_matches_exact_hdbscan_on_blobs() -> None:
    X = _blobs()
    ours = GraphHDBSCAN(min_cluster_size=50, min_samples=10, n_neighbors=16).fit(X).labels_
    ref = HDBSCAN(min_cluster_size=50, min_samples=10, copy=True).fit_predict(X)
    assert adjusted_rand_score(ref, ours) >= 0.97
    assert ours.max() + 1 == ref.max() + 1


def test_deterministic_and_row_order_stable() -> None:
    X = _blobs(seed=1)
    a = GraphHDBSCAN(min_cluster_size=40, min_samples=8).fit(X).labels_
    b = GraphHDBSCAN(min_cluster_size=40, min_samples=8).fit(X).labels_
    np.testing.assert_array_equal(a, b)
    perm = np.random.default_rng(3).permutation(len(X))
    c = GraphHDBSCAN(min_cluster_size=40, min_samples=8).fit(X[perm]).labels_
    # The partition survives a shuffle; only tied mutual-reachability edges at cluster borders
    # may resolve differently (documented in clustering/hdbscan_graph.py).
    assert adjusted_rand_score(a[perm], c) >= 0.995


def test_disconnected_graph_is_joined() -> None:
    rng = np.random.default_rng(0)
    far = [rng.normal(loc=c, scale=0.1, size=(60, 3)) for c in (0.0, 100.0, 200.0)]
    X = np.vstack(far)
    model = GraphHDBSCAN(min_cluster_size=20, min_samples=5, n_neighbors=8).fit(X)
    assert model.n_components_ == 3
    assert model.labels_.max() + 1 == 3
    for i in range(3):
        assert len(set(model.labels_[i * 60 : (i + 1) * 60])) == 1


def test_duplicate_points_and_tiny_inputs() -> None:
    X = np.vstack([np.zeros((50, 2)), np.ones((50, 2))])
    labels = GraphHDBSCAN(min_cluster_size=10, min_samples=5).fit(X).labels_
    assert set(labels) == {0, 1}
    assert GraphHDBSCAN(min_cluster_size=5).fit(np.zeros((1, 2))).labels_.tolist() == [-1]
    with pytest.raises(ValueError):
        GraphHDBSCAN(min_cluster_size=1).fit(X)


def test_ivf_index_recall_and_roundtrip(tmp_path) -> None:
    X = _blobs(n=6000, d=16).astype(np.float32)
    idx = NeighborIndex(method="ivf", nprobe=8, random_state=0).fit(X)
    assert idx.method_ == "ivf"
    assert knn_recall(idx, X, k=10, sample=200) > 0.8
    idx.save(tmp_path / "i.faiss")
    again = NeighborIndex.load(tmp_path / "i.faiss")
    d1, i1 = idx.search(X[:5], 5)
    d2, i2 = again.search(X[:5], 5)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(d1, d2)
    with pytest.raises(ValueError):
        NeighborIndex().fit(np.array([[np.nan, 1.0]]))


def test_profiles_share_and_specificity() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1, -1, -1])
    vals = pd.Series(["x", "x", "x", "y", "y", "y", "y", "x"])
    tv = top_values(labels, vals)
    assert tv.loc[0, "value"] == "x" and tv.loc[0, "share"] == pytest.approx(0.75)
    assert tv.loc[0, "specificity"] == pytest.approx(3 / 4)
    assert tv.loc[1, "specificity"] == pytest.approx(2 / 4)
    ent = pd.DataFrame({"a": vals})
    t = pd.Series(pd.date_range("2026-01-01", periods=8, freq="20min", tz="UTC"))
    prof = cluster_profiles(ent, labels, ["a"], time=t)
    assert prof["size"].tolist() == [4, 2]
    assert prof.loc[0, "hour_concentration"] == pytest.approx(0.75)


def test_ivf_graph_matches_exact_and_is_thread_count_deterministic() -> None:
    import faiss

    X = _blobs(n=16000, d=16, seed=3)
    exact = GraphHDBSCAN(min_cluster_size=50, min_samples=10, index_method="flat").fit(X)
    before = faiss.omp_get_max_threads(), numba.get_num_threads()
    try:
        runs = []
        for threads in (1, 2):
            faiss.omp_set_num_threads(threads)
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            m = GraphHDBSCAN(min_cluster_size=50, min_samples=10, index_method="ivf", nprobe=5)
            runs.append(m.fit(X))
    finally:
        faiss.omp_set_num_threads(before[0])
        numba.set_num_threads(before[1])
    np.testing.assert_array_equal(runs[0].labels_, runs[1].labels_)
    assert runs[0].index_.method_ == "ivf"
    assert adjusted_rand_score(exact.labels_, runs[0].labels_) >= 0.97


def test_outlier_scores_and_probabilities() -> None:
    X = _blobs()
    m = GraphHDBSCAN(min_cluster_size=50, min_samples=10).fit(X)
    s = m.outlier_scores_
    assert s.shape == (len(X),) and np.all((s >= 0) & (s <= 1))
    noise = m.labels_ < 0
    # the uniform noise sits far out: its GLOSH scores are higher than the members'
    assert np.median(s[noise]) > np.median(s[~noise])
    assert np.all(m.probabilities_[noise] == 0) and np.all(m.probabilities_[~noise] > 0)
    assert m.outlier_scores_ is s  # computed once


def test_new_points_join_their_clusters_through_the_saved_index() -> None:
    import pickle

    X = _blobs(n=6000, d=8, seed=1)
    rng = np.random.default_rng(0)
    held = rng.random(len(X)) < 0.1
    m = GraphHDBSCAN(min_cluster_size=50, min_samples=10).fit(X[~held])
    assert 0.0 <= m.index_recall_ <= 1.0
    full = GraphHDBSCAN(min_cluster_size=50, min_samples=10).fit(X).labels_
    m2 = pickle.loads(pickle.dumps(m))  # the saved model: index included
    labels, strength = m2.predict(X[held])
    assert labels.shape == strength.shape == (int(held.sum()),)
    # held-out points land where clustering them with the rest puts them
    assert adjusted_rand_score(full[held], labels) >= 0.9
    # far away from everything: noise
    far, s_far = m2.predict(np.full((3, 8), 1e3, dtype=np.float32))
    assert far.tolist() == [-1, -1, -1] and s_far.tolist() == [0.0, 0.0, 0.0]
    assert np.all((strength >= 0) & (strength <= 1))
    with pytest.raises(ValueError):
        m2.predict(np.zeros((2, 3)))


def test_index_recall_is_measured_for_the_ivf_index() -> None:
    X = _blobs(n=12000, d=8, seed=2)
    m = GraphHDBSCAN(min_cluster_size=50, min_samples=10, index_method="ivf").fit(X)
    assert m.index_.method_ == "ivf" and 0.5 < m.index_recall_ <= 1.0
    assert "recall" in m.timings_


def test_exact_path_agrees_with_the_graph_and_with_sklearn() -> None:
    X = _blobs(n=3000, d=8, seed=4)
    exact = GraphHDBSCAN(min_cluster_size=50, min_samples=10, algorithm="exact").fit(X)
    graph = GraphHDBSCAN(min_cluster_size=50, min_samples=10).fit(X)
    ref = HDBSCAN(min_cluster_size=50, min_samples=10, copy=True).fit_predict(X)
    assert adjusted_rand_score(ref, exact.labels_) >= 0.99
    assert adjusted_rand_score(exact.labels_, graph.labels_) >= 0.97
    assert exact.outlier_scores_.shape == (len(X),)
    labels, _ = exact.predict(X[:50])
    assert adjusted_rand_score(exact.labels_[:50], labels) >= 0.9
    with pytest.raises(ValueError, match="algorithm"):
        GraphHDBSCAN(algorithm="boruvka").fit(X)
