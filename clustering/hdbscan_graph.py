"""HDBSCAN over the FAISS k-nearest-neighbour graph.

HDBSCAN needs each point's core distance and a minimum spanning tree of the mutual
reachability distance ``max(core_i, core_j, d_ij)``. Both come from a kNN graph: the core
distance is the distance to the ``min_samples``-th neighbour (the point itself counts, as in
scikit-learn), and the MST of the kNN graph weighted by mutual reachability is the exact MST
whenever the exact MST only uses kNN edges, which holds for ``k`` comfortably above
``min_samples`` in practice. When the kNN graph falls apart into components, they are joined by
an exact mutual-reachability MST over one representative per component (the point nearest the
component's centroid), so the tree always spans every point. The condensed tree, stability and
cluster selection are hdbscan's own (pinned version; see ``tests/test_clustering.py``).

Determinism: the exact FAISS index gives the same graph whatever the thread count, and
clusters are numbered by their first member, so the same rows in the same order give the same
labels. Shuffled rows give the same partition except where mutual-reachability edges tie at a
cluster border (ARI >= 0.995 in the tests).
"""

from __future__ import annotations

import logging
import time

import numpy as np
from hdbscan._hdbscan_linkage import label as _single_linkage_label
from hdbscan.hdbscan_ import _tree_to_labels
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

from clustering.index import NeighborIndex

log = logging.getLogger(__name__)

__all__ = ["GraphHDBSCAN"]


class GraphHDBSCAN:
    """HDBSCAN clustering driven by a FAISS neighbour graph.

    Parameters
    ----------
    min_cluster_size : int
        Smallest group that counts as a cluster.
    min_samples : int or None
        Neighbourhood size for the core distance, the point itself included; default
        ``min_cluster_size``.
    n_neighbors : int
        Neighbours per point in the kNN graph (at least ``min_samples``).
    cluster_selection_method : {"eom", "leaf"}
    cluster_selection_epsilon : float
    max_cluster_share : float
        Largest share of the points one selected cluster may hold (1.0: no limit). Ordinary
        traffic can form one vast, loosely dense cluster; capping it makes the selection look
        inside, where campaigns are.
    index_method : {"auto", "flat", "ivf"}
        Passed to :class:`clustering.index.NeighborIndex`.
    random_state : int
        Seed of the index training.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster per point, -1 for noise; clusters numbered by their smallest member index.
    probabilities_ : ndarray of shape (n_samples,)
        Membership strength in [0, 1].
    core_distances_ : ndarray of shape (n_samples,)
    neighbors_ : ndarray of shape (n_samples, n_neighbors)
        The kNN graph (ids into the fitted rows, the point itself first; -1 where missing).
    neighbor_distances_ : ndarray of shape (n_samples, n_neighbors)
    index_ : NeighborIndex
    n_components_ : int
        Components of the kNN graph before joining.
    timings_ : dict
        Seconds per step.
    """

    def __init__(
        self,
        min_cluster_size: int = 30,
        min_samples: int | None = None,
        n_neighbors: int = 16,
        cluster_selection_method: str = "eom",
        cluster_selection_epsilon: float = 0.0,
        max_cluster_share: float = 1.0,
        index_method: str = "auto",
        random_state: int = 0,
    ) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.n_neighbors = n_neighbors
        self.cluster_selection_method = cluster_selection_method
        self.cluster_selection_epsilon = cluster_selection_epsilon
        self.max_cluster_share = max_cluster_share
        self.index_method = index_method
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: None = None) -> GraphHDBSCAN:
        """Cluster ``X`` of shape (n_samples, n_features)."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        n = len(X)
        if self.min_cluster_size < 2:
            raise ValueError("min_cluster_size must be at least 2")
        min_samples = self.min_samples or self.min_cluster_size
        timings: dict[str, float] = {}
        if n < 2:
            self.labels_ = np.full(n, -1, dtype=np.int64)
            self.probabilities_ = np.zeros(n)
            self.core_distances_ = np.zeros(n)
            self.neighbors_ = np.zeros((n, 0), dtype=np.int64)
            self.neighbor_distances_ = np.zeros((n, 0))
            self.n_components_ = n
            self.timings_ = timings
            return self
        k = min(max(self.n_neighbors, min_samples), n)
        t0 = time.perf_counter()
        self.index_ = NeighborIndex(method=self.index_method, random_state=self.random_state).fit(X)
        D, ids = self.index_.search(X, k)
        timings["knn"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        core = D[:, min(min_samples, k) - 1].copy()
        core[~np.isfinite(core)] = np.nanmax(np.where(np.isfinite(D), D, np.nan))
        mst, n_comp = _mutual_reachability_mst(X, D, ids, core)
        timings["mst"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        order = np.argsort(mst[:, 2], kind="stable")
        slt = _single_linkage_label(np.ascontiguousarray(mst[order]))
        labels, probs, _stab, _condensed, _ = _tree_to_labels(
            None,
            slt,
            min_cluster_size=self.min_cluster_size,
            cluster_selection_method=self.cluster_selection_method,
            cluster_selection_epsilon=self.cluster_selection_epsilon,
            max_cluster_size=_max_size(self.max_cluster_share, n),
        )
        timings["tree"] = time.perf_counter() - t0
        self.labels_ = _renumber(np.asarray(labels, dtype=np.int64))
        self.probabilities_ = np.asarray(probs, dtype=np.float64)
        self.core_distances_ = core
        self.neighbors_ = ids
        self.neighbor_distances_ = D
        self.n_components_ = n_comp
        self.timings_ = timings
        log.info(
            "clustered %d points: %d clusters, %.1f%% noise, %d graph components (%s)",
            n,
            self.labels_.max() + 1,
            100 * float(np.mean(self.labels_ < 0)),
            n_comp,
            ", ".join(f"{k_} {v:.2f}s" for k_, v in timings.items()),
        )
        return self

    def fit_predict(self, X: np.ndarray, y: None = None) -> np.ndarray:
        return self.fit(X).labels_


def _max_size(share: float, n: int) -> int:
    if not 0 < share <= 1:
        raise ValueError("max_cluster_share must be in (0, 1]")
    return 0 if share >= 1 else max(2, int(share * n))


def _mutual_reachability_mst(
    X: np.ndarray, D: np.ndarray, ids: np.ndarray, core: np.ndarray
) -> tuple[np.ndarray, int]:
    """MST edges (i, j, weight) of the mutual-reachability kNN graph, joined across components."""
    n = len(X)
    rows = np.repeat(np.arange(n), ids.shape[1])
    cols = ids.ravel()
    dist = D.ravel()
    keep = (cols >= 0) & (cols != rows)
    rows, cols, dist = rows[keep], cols[keep], dist[keep]
    w = np.maximum(np.maximum(core[rows], core[cols]), dist)
    # csgraph treats 0 as "no edge": duplicates collapse to one edge, and exact ties at zero
    # weight (identical points) get a tiny positive weight that keeps their edge.
    w = np.maximum(w, np.finfo(np.float64).tiny)
    lo, hi = np.minimum(rows, cols), np.maximum(rows, cols)
    graph = _min_edge_graph(lo, hi, w, n)
    tree = minimum_spanning_tree(graph).tocoo()
    edges = np.column_stack([tree.row, tree.col, tree.data]).astype(np.float64)
    n_comp, comp = connected_components(tree, directed=False)
    if n_comp > 1:
        edges = np.vstack([edges, _join_components(X, core, comp, n_comp)])
    return edges, int(n_comp)


def _min_edge_graph(lo: np.ndarray, hi: np.ndarray, w: np.ndarray, n: int):  # type: ignore[no-untyped-def]
    """Sparse upper-triangular graph keeping the smallest weight of repeated edges."""
    key = lo.astype(np.int64) * n + hi
    order = np.lexsort((w, key))
    key, w, lo, hi = key[order], w[order], lo[order], hi[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    return coo_matrix((w[first], (lo[first], hi[first])), shape=(n, n)).tocsr()


def _join_components(X: np.ndarray, core: np.ndarray, comp: np.ndarray, n_comp: int) -> np.ndarray:
    """Edges of an exact mutual-reachability MST over one representative per component."""
    reps = np.empty(n_comp, dtype=np.int64)
    for c in range(n_comp):
        members = np.flatnonzero(comp == c)
        centre = X[members].mean(axis=0)
        reps[c] = members[np.argmin(((X[members] - centre) ** 2).sum(axis=1))]
    R = X[reps].astype(np.float64)
    d = np.sqrt(np.maximum(((R[:, None, :] - R[None, :, :]) ** 2).sum(-1), 0.0))
    mr = np.maximum(np.maximum(core[reps][:, None], core[reps][None, :]), d)
    mr = np.maximum(mr, np.finfo(np.float64).tiny)
    np.fill_diagonal(mr, 0.0)
    tree = minimum_spanning_tree(np.triu(mr)).tocoo()
    return np.column_stack([reps[tree.row], reps[tree.col], tree.data]).astype(np.float64)


def _renumber(labels: np.ndarray) -> np.ndarray:
    """Number clusters by their first member so labels do not depend on tree internals."""
    out = np.full_like(labels, -1)
    mask = labels >= 0
    if not mask.any():
        return out
    uniq, first = np.unique(labels[mask], return_index=True)
    mapping = np.full(int(uniq.max()) + 1, -1, dtype=np.int64)
    mapping[uniq[np.argsort(first, kind="stable")]] = np.arange(len(uniq))
    out[mask] = mapping[labels[mask]]
    return out
