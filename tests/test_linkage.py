"""The compiled MST and single-linkage steps against SciPy's and hdbscan's."""

from __future__ import annotations

import numpy as np
from hdbscan._hdbscan_linkage import label as hdbscan_label
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import minimum_spanning_tree

from clustering.linkage import kruskal_mst, mutual_reachability_edges, single_linkage_tree


def _graph(n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    u = rng.integers(0, n, m)
    v = rng.integers(0, n, m)
    w = rng.random(m).astype(np.float32)
    return u, v, w


def test_kruskal_matches_scipy_total_weight_and_components() -> None:
    for seed, light in [(0, 0.3), (1, 0.0), (2, 0.9)]:
        n = 2000
        u, v, w = _graph(n, 12 * n, seed)
        keep = u != v
        u, v, w = u[keep], v[keep], w[keep]
        edges, comp = kruskal_mst(u, v, w, n, light_share=light)
        # scipy keeps one weight per (i, j): the smallest, as a minimum spanning tree would
        lo, hi = np.minimum(u, v), np.maximum(u, v)
        order = np.lexsort((w, hi, lo))
        first = np.ones(len(order), bool)
        first[1:] = (lo[order][1:] != lo[order][:-1]) | (hi[order][1:] != hi[order][:-1])
        o = order[first]
        ref = minimum_spanning_tree(coo_matrix((w[o], (lo[o], hi[o])), shape=(n, n)).tocsr())
        assert np.isclose(edges[:, 2].sum(), ref.sum(), rtol=1e-6)
        assert (np.diff(edges[:, 2]) >= 0).all(), "tree edges come sorted by weight"
        assert len(edges) == n - (comp.max() + 1)


def test_forest_of_a_disconnected_graph() -> None:
    u = np.array([0, 1, 3, 4])
    v = np.array([1, 2, 4, 5])
    w = np.array([1.0, 2.0, 1.0, 3.0])
    edges, comp = kruskal_mst(u, v, w, 7)
    assert len(edges) == 4
    assert comp.tolist() == [0, 0, 0, 1, 1, 1, 2]


def test_single_linkage_tree_equals_hdbscans() -> None:
    n = 3000
    u, v, w = _graph(n, 10 * n, 0)
    keep = u != v
    edges, comp = kruskal_mst(u[keep], v[keep], w[keep], n)
    assert comp.max() == 0
    ours = single_linkage_tree(edges, n)
    ref = hdbscan_label(np.ascontiguousarray(edges))
    np.testing.assert_array_equal(ours, ref)


def test_mutual_reachability_edges() -> None:
    ids = np.array([[0, 1, -1], [1, 0, 2], [2, 1, 0]])
    D = np.array([[0.0, 1.0, np.inf], [0.0, 1.0, 2.0], [0.0, 2.0, 3.0]])
    core = np.array([1.0, 1.0, 2.5])
    u, v, w = mutual_reachability_edges(D, ids, core)
    got = sorted(zip(u.tolist(), v.tolist(), np.round(w, 6).tolist(), strict=True))
    assert got == [(0, 1, 1.0), (1, 0, 1.0), (1, 2, 2.5), (2, 0, 3.0), (2, 1, 2.5)]
