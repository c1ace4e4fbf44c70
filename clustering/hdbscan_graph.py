"""HDBSCAN over the FAISS k-nearest-neighbour graph.

HDBSCAN needs each point's core distance and a minimum spanning tree of the mutual
reachability distance ``max(core_i, core_j, d_ij)``. Both come from a kNN graph: the core
distance is the distance to the ``min_samples``-th neighbour (the point itself counts, as in
scikit-learn), and the MST of the kNN graph weighted by mutual reachability is the exact MST
whenever the exact MST only uses kNN edges, which holds for ``k`` comfortably above
``min_samples`` in practice. When the kNN graph falls apart into components, they are joined by
an exact mutual-reachability MST over one representative per component (the point nearest the
component's centroid), so the tree always spans every point. The condensed tree, stability and
cluster selection are a numba port of hdbscan's (``clustering/condense.py``; identical results to
the pinned version, see ``tests/test_condense.py``).

The MST (filter-Kruskal) and the single-linkage labelling are compiled with numba
(``clustering/linkage.py``).

The IVF graph is the index's self-join (``NeighborIndex.self_knn``, ``clustering/knn_graph.py``).

Determinism: the flat and the IVF index give the same graph whatever FAISS's and numba's thread
counts (FAISS's k-means averages each centroid in row order, IVF lists keep row order, every row
is scanned independently with ties broken by position; tested with 1 and 2 threads), MST ties
break by edge position, and
clusters are numbered by their first member, so the same rows in the same order give the same
labels. Shuffled rows give the same partition except where mutual-reachability edges tie at a
cluster border (ARI >= 0.995 in the tests).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numba
import numpy as np
from hdbscan._hdbscan_tree import outlier_scores

from clustering.condense import tree_to_labels
from clustering.index import NeighborIndex, knn_recall
from clustering.linkage import kruskal_mst, mutual_reachability_edges, single_linkage_tree

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
    algorithm : {"graph", "exact"}
        ``graph``: the MST of the kNN graph (the default, any size). ``exact``: ``hdbscan``'s
        exact all-pairs MST (O(n^2) memory: small inputs and tests); the flat index is still
        built for :meth:`predict`.
    index_method : {"auto", "flat", "ivf"}
    exact_below, nlist, nprobe
        The neighbour index: exact below ``exact_below`` rows, IVF with ``nlist`` cells
        (default ``2 * sqrt(n)``) searched ``nprobe`` cells deep above; see
        :class:`clustering.index.NeighborIndex`.
    recall_sample : int
        Rows whose exact neighbours are computed to measure the index's recall (logged, and
        kept in ``index_recall_``); an exact index is not measured.
    random_state : int
        Seed of the index training and of the recall sample.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster per point, -1 for noise; clusters numbered by their smallest member index.
    probabilities_ : ndarray of shape (n_samples,)
        Membership strength in [0, 1].
    outlier_scores_ : ndarray of shape (n_samples,)
        GLOSH outlier score in [0, 1] (higher = more of an outlier), as ``hdbscan``'s.
    condensed_tree_ : structured ndarray
        hdbscan's condensed tree (parent, child, lambda_val, child_size).
    core_distances_ : ndarray of shape (n_samples,)
    neighbors_ : ndarray of shape (n_samples, n_neighbors)
        The kNN graph (ids into the fitted rows, the point itself first; -1 where missing).
    neighbor_distances_ : ndarray of shape (n_samples, n_neighbors)
    index_ : NeighborIndex
    n_components_ : int
        Components of the kNN graph before joining.
    index_recall_ : float
        Share of the exact ``n_neighbors`` nearest neighbours the index found, on
        ``recall_sample`` seeded rows (1.0 for the exact index).
    exit_lambda_ : ndarray of shape (n_samples,)
        ``1 / distance`` at which each point left its cluster in the condensed tree.
    cluster_birth_lambda_ : ndarray of shape (n_clusters,)
        The smallest ``exit_lambda_`` among each cluster's members (see :meth:`predict`).
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
        exact_below: int = 100_000,
        nlist: int | None = None,
        nprobe: int = 3,
        recall_sample: int = 200,
        algorithm: str = "graph",
        random_state: int = 0,
    ) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.n_neighbors = n_neighbors
        self.cluster_selection_method = cluster_selection_method
        self.cluster_selection_epsilon = cluster_selection_epsilon
        self.max_cluster_share = max_cluster_share
        self.index_method = index_method
        self.exact_below = exact_below
        self.nlist = nlist
        self.nprobe = nprobe
        self.recall_sample = recall_sample
        self.algorithm = algorithm
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: None = None) -> GraphHDBSCAN:
        """Cluster ``X`` of shape (n_samples, n_features)."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        n = len(X)
        self.__dict__.pop("_outlier_scores", None)
        if self.min_cluster_size < 2:
            raise ValueError("min_cluster_size must be at least 2")
        min_samples = self.min_samples or self.min_cluster_size
        if self.algorithm not in ("graph", "exact"):
            raise ValueError(f"unknown algorithm {self.algorithm!r}; use graph or exact")
        timings: dict[str, float] = {}
        if n < 2:
            self.labels_ = np.full(n, -1, dtype=np.int64)
            self.probabilities_ = np.zeros(n)
            self.condensed_tree_ = None
            self.core_distances_ = np.zeros(n)
            self.neighbors_ = np.zeros((n, 0), dtype=np.int64)
            self.neighbor_distances_ = np.zeros((n, 0))
            self.n_components_ = n
            self.min_samples_ = min_samples
            self.exit_lambda_ = np.zeros(n)
            self.cluster_birth_lambda_ = np.zeros(0)
            self.index_recall_ = 1.0
            if n == 1:
                self.index_ = NeighborIndex(method="flat").fit(X)
            self.timings_ = timings
            return self
        k = min(max(self.n_neighbors, min_samples), n)
        t0 = time.perf_counter()
        self.index_ = NeighborIndex(
            method="flat" if self.algorithm == "exact" else self.index_method,
            exact_below=self.exact_below,
            nlist=self.nlist,
            nprobe=self.nprobe,
            random_state=self.random_state,
        ).fit(X)
        timings["index"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        D, ids = self.index_.self_knn(X, k)
        timings["knn"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        core = D[:, min(min_samples, k) - 1].copy()
        core[~np.isfinite(core)] = np.nanmax(np.where(np.isfinite(D), D, np.nan))
        if self.algorithm == "exact":
            labels, probs, condensed = self._fit_exact(X, min_samples)
            n_comp = 1
            timings["exact"] = time.perf_counter() - t0
        else:
            mst, n_comp = _mutual_reachability_mst(X, D, ids, core)
            timings["mst"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            slt = single_linkage_tree(mst, n)
            timings["linkage"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            labels, probs, _stab, condensed = tree_to_labels(
                slt,
                min_cluster_size=self.min_cluster_size,
                cluster_selection_method=self.cluster_selection_method,
                cluster_selection_epsilon=self.cluster_selection_epsilon,
                max_cluster_size=_max_size(self.max_cluster_share, n),
            )
            timings["tree"] = time.perf_counter() - t0
        self.labels_ = _renumber(np.asarray(labels, dtype=np.int64))
        self.probabilities_ = np.asarray(probs, dtype=np.float64)
        self.condensed_tree_ = condensed
        self.core_distances_ = core
        self.neighbors_ = ids
        self.neighbor_distances_ = D
        self.n_components_ = n_comp
        self.min_samples_ = min_samples
        # the distance at which each point left its cluster: new points are held to it
        exit_lambda = np.zeros(n)
        leaf = condensed["child"] < n
        exit_lambda[condensed["child"][leaf]] = condensed["lambda_val"][leaf]
        self.exit_lambda_ = exit_lambda
        birth = np.full(int(self.labels_.max()) + 1, np.inf)
        members = self.labels_ >= 0
        np.minimum.at(birth, self.labels_[members], exit_lambda[members])
        self.cluster_birth_lambda_ = birth
        t0 = time.perf_counter()
        self.index_recall_ = (
            1.0
            if self.index_.method_ == "flat"
            else knn_recall(None, X, ids.shape[1], self.recall_sample, self.random_state, found=ids)
        )
        timings["recall"] = time.perf_counter() - t0
        self.timings_ = timings
        log.info(
            "clustered %d points: %d clusters, %.1f%% noise, %d graph components, "
            "kNN recall %.3f on %d sampled rows (%s)",
            n,
            self.labels_.max() + 1,
            100 * float(np.mean(self.labels_ < 0)),
            n_comp,
            self.index_recall_,
            min(self.recall_sample, n),
            ", ".join(f"{k_} {v:.2f}s" for k_, v in timings.items()),
        )
        return self

    def predict(self, Q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Assign new points to the fitted clusters through the saved index.

        A new point ``q`` is placed as HDBSCAN would have placed it had it been in the data,
        without refitting: its core distance is the distance to its ``min_samples - 1``-th
        nearest fitted point (``q`` itself would have been the first), and its mutual
        reachability to a fitted point ``j`` is ``max(core_q, core_j, d_qj)``. ``q`` joins
        the cluster of the fitted neighbour ``j`` nearest in mutual reachability **if** ``j``
        is in a cluster and that distance is no longer than the cluster's own scale: the
        largest distance at which any of its members left it (``1 /
        cluster_birth_lambda_``). Otherwise ``q`` is noise: its nearest neighbour is noise,
        or it sits farther out than the cluster ever reached.

        Parameters
        ----------
        Q : ndarray of shape (n_queries, n_features)

        Returns
        -------
        labels : ndarray of int, shape (n_queries,)
            Cluster label, -1 for noise.
        strength : ndarray of float, shape (n_queries,)
            ``(1 / mutual reachability) / exit_lambda_[j]`` capped at 1, 0 for noise.
        """
        Q = np.ascontiguousarray(Q, dtype=np.float32)
        if Q.ndim != 2 or Q.shape[1] != self.index_.n_features_in_:
            raise ValueError(
                f"expected queries of shape (m, {self.index_.n_features_in_}), got {Q.shape}"
            )
        m = len(Q)
        labels = np.full(m, -1, dtype=np.int64)
        strength = np.zeros(m)
        if m == 0 or len(self.labels_) == 0:
            return labels, strength
        k = max(self.min_samples_, 2)
        D, ids = self.index_.search(Q, k)
        core_q = D[:, min(self.min_samples_ - 1, D.shape[1]) - 1]
        safe = np.maximum(ids, 0)
        mr = np.maximum(np.maximum(core_q[:, None], self.core_distances_[safe]), D)
        mr[ids < 0] = np.inf
        best = np.argmin(mr, axis=1)
        j = safe[np.arange(m), best]
        d = mr[np.arange(m), best]
        lam = np.where(d > 0, 1.0 / np.maximum(d, np.finfo(np.float64).tiny), np.inf)
        lab = self.labels_[j]
        birth = np.zeros(m)
        if len(self.cluster_birth_lambda_):
            birth = self.cluster_birth_lambda_[np.maximum(lab, 0)]
        ok = np.isfinite(d) & (lab >= 0) & (lam >= birth)
        labels[ok] = lab[ok]
        exit_l = self.exit_lambda_[j]
        strength[ok] = np.minimum(1.0, lam[ok] / np.maximum(exit_l[ok], 1e-300))
        return labels, strength

    def _fit_exact(self, X: np.ndarray, min_samples: int) -> tuple[np.ndarray, np.ndarray, Any]:
        """``hdbscan``'s own exact MST (Prim's over all pairs): for small inputs and tests."""
        import hdbscan

        ref = hdbscan.HDBSCAN(
            min_cluster_size=self.min_cluster_size,
            min_samples=max(1, min_samples - 1),  # hdbscan does not count the point itself
            cluster_selection_method=self.cluster_selection_method,
            cluster_selection_epsilon=self.cluster_selection_epsilon,
            max_cluster_size=_max_size(self.max_cluster_share, len(X)),
            algorithm="generic",
            core_dist_n_jobs=1,
        ).fit(X.astype(np.float64))
        return ref.labels_, ref.probabilities_, ref.condensed_tree_._raw_tree

    @property
    def outlier_scores_(self) -> np.ndarray:
        """GLOSH outlier score per point, in [0, 1] (higher = more of an outlier).

        Computed from the condensed tree on first use (about a second a million points),
        as ``hdbscan``'s ``outlier_scores_``.
        """
        cached = self.__dict__.get("_outlier_scores")
        if cached is None:
            n = len(self.labels_)
            tree = self.condensed_tree_
            cached = (
                np.zeros(n)
                if tree is None or len(tree) == 0
                else np.asarray(outlier_scores(tree), dtype=np.float64)
            )
            self._outlier_scores = cached
        return cached

    def fit_predict(self, X: np.ndarray, y: None = None) -> np.ndarray:
        return self.fit(X).labels_


def _max_size(share: float, n: int) -> int:
    if not 0 < share <= 1:
        raise ValueError("max_cluster_share must be in (0, 1]")
    return 0 if share >= 1 else max(2, int(share * n))


def _mutual_reachability_mst(
    X: np.ndarray, D: np.ndarray, ids: np.ndarray, core: np.ndarray
) -> tuple[np.ndarray, int]:
    """MST edges (i, j, weight) of the mutual-reachability kNN graph, joined across components.

    Returns the edges sorted by weight and the number of components of the kNN graph.
    """
    n = len(X)
    rows, cols, w = mutual_reachability_edges(D, ids, core)
    edges, comp = kruskal_mst(rows, cols, w, n)
    n_comp = int(comp.max()) + 1 if n else 0
    if n_comp > 1:
        joins = _join_components(X, core, comp, n_comp)
        edges = np.vstack([edges, joins])
        edges = edges[np.argsort(edges[:, 2], kind="stable")]
    return edges, n_comp


def _representatives(X: np.ndarray, comp: np.ndarray, n_comp: int) -> np.ndarray:
    """Per component, the member nearest the component's centroid (lowest index on ties)."""
    return _nearest_to_centroid(np.ascontiguousarray(X), comp.astype(np.int64), n_comp)


@numba.njit(cache=True, nogil=True)
def _nearest_to_centroid(X: np.ndarray, comp: np.ndarray, n_comp: int) -> np.ndarray:
    n, d = X.shape
    centre = np.zeros((n_comp, d))
    counts = np.zeros(n_comp)
    for i in range(n):
        counts[comp[i]] += 1.0
        for t in range(d):
            centre[comp[i], t] += X[i, t]
    for c in range(n_comp):
        centre[c] /= counts[c]
    best = np.full(n_comp, np.inf)
    rep = np.full(n_comp, -1, dtype=np.int64)
    for i in range(n):
        c = comp[i]
        s = 0.0
        for t in range(d):
            diff = X[i, t] - centre[c, t]
            s += diff * diff
        if s < best[c]:  # strict: the lowest index wins ties
            best[c] = s
            rep[c] = i
    return rep


# Above this many components their representatives are joined through a kNN graph of their
# own rather than all pairs (a dense matrix of 4,096^2 float64 is 128 MiB).
_DENSE_JOIN_MAX = 4096


def _join_components(X: np.ndarray, core: np.ndarray, comp: np.ndarray, n_comp: int) -> np.ndarray:
    """Edges joining the kNN graph's components into one tree.

    Each component is represented by the member nearest its centroid, and the components are
    joined by the mutual-reachability MST over those representatives: exact over all pairs up
    to ``_DENSE_JOIN_MAX`` components, else over the representatives' own kNN graph, joined
    the same way again if that falls apart too. These edges only decide how clusters that are
    already apart in the kNN graph merge high up the hierarchy, where every distance is large.
    """
    reps = _representatives(X, comp, n_comp)
    R = X[reps].astype(np.float64)
    core_r = core[reps]
    if n_comp <= _DENSE_JOIN_MAX:
        sq = (R**2).sum(axis=1)
        d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * R @ R.T, 0.0))
        mr = np.maximum(np.maximum(core_r[:, None], core_r[None, :]), d)
        iu, ju = np.triu_indices(n_comp, k=1)
        edges, _ = kruskal_mst(iu, ju, mr[iu, ju], n_comp)
    else:
        k = min(32, n_comp)
        sub = NeighborIndex(method="flat").fit(R)
        Dr, ir = sub.search(R, k)
        rows = np.repeat(np.arange(n_comp, dtype=np.int64), k)
        cols = ir.ravel().astype(np.int64)
        ok = (cols >= 0) & (cols != rows)
        rows, cols, dist = rows[ok], cols[ok], Dr.ravel()[ok]
        w = np.maximum(np.maximum(core_r[rows], core_r[cols]), dist)
        edges, sub_comp = kruskal_mst(rows, cols, w, n_comp)
        n_sub = int(sub_comp.max()) + 1
        if n_sub > 1:
            edges = np.vstack([edges, _join_components(R, core_r, sub_comp, n_sub)])
    out = edges.copy()
    out[:, 0] = reps[edges[:, 0].astype(np.int64)]
    out[:, 1] = reps[edges[:, 1].astype(np.int64)]
    return out


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
