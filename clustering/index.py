"""FAISS neighbour index: the kNN graph for clustering and similarity search for analysts.

FAISS is deterministic for the exact (flat) index whatever the thread count. The IVF index
is trained with a seeded k-means and searched with a fixed ``nprobe``; its adds are
single-threaded in FAISS, so the same input and seed give the same graph.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import faiss
import numpy as np

from clustering.knn_graph import ivf_self_knn

log = logging.getLogger(__name__)

__all__ = ["NeighborIndex", "knn_recall"]


class NeighborIndex:
    """Euclidean nearest-neighbour index over a float matrix.

    Parameters
    ----------
    method : {"auto", "flat", "ivf"}
        ``auto`` uses the exact flat index below ``exact_below`` rows and IVF above.
    exact_below : int
        Row count under which ``auto`` stays exact.
    nlist : int or None
        IVF cells; default ``2 * sqrt(n)``.
    nprobe : int
        IVF cells visited per query.
    train_per_cell : int
        IVF k-means trains on at most this many sampled rows per cell.
    random_state : int
        Seed of the IVF k-means.
    """

    def __init__(
        self,
        method: str = "auto",
        exact_below: int = 100_000,
        nlist: int | None = None,
        nprobe: int = 8,
        train_per_cell: int = 64,
        random_state: int = 0,
    ) -> None:
        self.method = method
        self.exact_below = exact_below
        self.nlist = nlist
        self.nprobe = nprobe
        self.train_per_cell = train_per_cell
        self.random_state = random_state

    def fit(self, X: np.ndarray) -> NeighborIndex:
        """Build the index over ``X`` of shape (n_samples, n_features)."""
        X = _as_f32(X)
        n, d = X.shape
        if n == 0:
            raise ValueError("cannot index an empty matrix")
        method = self.method
        if method == "auto":
            method = "flat" if n < self.exact_below else "ivf"
        if method not in ("flat", "ivf"):
            raise ValueError(f"unknown index method {self.method!r}; use auto, flat or ivf")
        t0 = time.perf_counter()
        if method == "flat":
            index: faiss.Index = faiss.IndexFlatL2(d)
        else:
            index = self._train_ivf(X)
        index.add(X)
        self.index_ = index
        self.method_ = method
        self.n_features_in_ = d
        log.info("index %s over %d x %d built in %.2fs", method, n, d, time.perf_counter() - t0)
        return self

    def _train_ivf(self, X: np.ndarray) -> faiss.IndexIVFFlat:
        n, d = X.shape
        nlist = self.nlist or max(1, int(2 * np.sqrt(n)))
        quantizer = faiss.IndexFlatL2(d)
        ivf = faiss.IndexIVFFlat(quantizer, d, nlist)
        ivf.cp.seed = int(self.random_state)
        # k-means on up to ``train_per_cell`` rows a cell: the cells only route queries, and
        # FAISS's default (256 a cell, every row at a million) makes training cost more than
        # the search
        ivf.cp.max_points_per_centroid = self.train_per_cell
        # 5 Lloyd iterations instead of FAISS's 25: the cells only route the scan, and later
        # iterations move the objective by about 1% while costing most of the training
        ivf.cp.niter = 5
        ivf.train(X)
        ivf.nprobe = min(self.nprobe, nlist)
        return ivf

    def search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return Euclidean distances and ids of the ``k`` nearest neighbours, shape (m, k).

        Missing neighbours (IVF with too few candidates) have id -1 and distance ``inf``.
        """
        Q = _as_f32(Q)
        k = min(k, self.index_.ntotal)
        D, ids = self.index_.search(Q, k)
        D = np.sqrt(np.maximum(D, 0.0), dtype=np.float64)
        D[ids < 0] = np.inf
        return D, ids

    def self_knn(self, X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest neighbours of every indexed row, shape (n_samples, k).

        ``X`` is the matrix the index was fitted on. The flat index searches it exactly; IVF
        scans its own cells in place (:func:`clustering.knn_graph.ivf_self_knn`), which finds
        as many true neighbours as :meth:`search` at the same ``nprobe``, several times
        faster. Distances and missing neighbours as in :meth:`search`.
        """
        X = _as_f32(X)
        if len(X) != self.index_.ntotal or X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"self_knn needs the {self.index_.ntotal} x {self.n_features_in_} matrix the "
                f"index holds, got {X.shape}"
            )
        k = min(k, self.index_.ntotal)
        if self.method_ == "flat":
            return self.search(X, k)
        ivf = faiss.extract_index_ivf(self.index_)
        invlists = ivf.invlists
        assert invlists is not None
        lists = [
            faiss.rev_swig_ptr(invlists.get_ids(c), invlists.list_size(c)).astype(np.int64)
            if invlists.list_size(c)
            else np.zeros(0, dtype=np.int64)
            for c in range(ivf.nlist)
        ]
        centroids = ivf.quantizer.reconstruct_n(0, ivf.nlist)
        return ivf_self_knn(X, lists, centroids, ivf.nprobe, k)

    def __getstate__(self) -> dict:
        # FAISS indexes are SWIG objects: pickle them through FAISS's own serialisation.
        state = dict(self.__dict__)
        if "index_" in state:
            state["index_"] = faiss.serialize_index(state["index_"])
        return state

    def __setstate__(self, state: dict) -> None:
        if "index_" in state:
            state = {**state, "index_": faiss.deserialize_index(state["index_"])}
        self.__dict__.update(state)

    def save(self, path: str | Path) -> None:
        """Write the index to ``path`` (FAISS binary format)."""
        faiss.write_index(self.index_, str(path))

    @classmethod
    def load(cls, path: str | Path) -> NeighborIndex:
        """Read an index written by :meth:`save`."""
        obj = cls()
        obj.index_ = faiss.read_index(str(path))
        obj.method_ = "ivf" if isinstance(obj.index_, faiss.IndexIVF) else "flat"
        obj.n_features_in_ = obj.index_.d
        return obj


def knn_recall(
    index: NeighborIndex | None,
    X: np.ndarray,
    k: int,
    sample: int = 500,
    random_state: int = 0,
    found: np.ndarray | None = None,
) -> float:
    """Share of the exact ``k`` nearest neighbours that ``index`` finds, on a seeded sample.

    ``found`` (shape ``(len(X), k)``), when given, is the kNN graph already searched from
    ``index`` and is used instead of searching again. The exact neighbours come from a brute
    force over ``X`` in place (no copy of ``X`` into a second index).
    """
    X = _as_f32(X)
    rng = np.random.default_rng(random_state)
    rows = np.sort(rng.choice(len(X), size=min(sample, len(X)), replace=False))
    k = min(k, len(X))
    _, truth = faiss.knn(X[rows], X, k)
    if found is not None:
        got = found[rows, :k]
    elif index is not None:
        _, got = index.search(X[rows], k)
    else:
        raise ValueError("knn_recall needs an index or the graph it found")
    hits = sum(len(set(t) & set(g)) for t, g in zip(truth, got, strict=True))
    return hits / truth.size


def _as_f32(X: np.ndarray) -> np.ndarray:
    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("matrix has NaN or infinite values")
    return X
