"""Minimum spanning tree and single-linkage labelling over a sparse graph, compiled with numba.

At a million points the kNN graph has tens of millions of edges. SciPy's sparse MST wants a
deduplicated CSR matrix first (a lexsort and a conversion as costly as the tree), and
hdbscan's ``label`` walks its union-find through Python-level method calls (about 17 s at a
million points). Kruskal's algorithm over the edges sorted once does both jobs: it needs no
deduplication (a repeated edge joins nothing the second time) and it emits the tree's edges
already in the order single linkage consumes them.

Ties are broken by the edge's position in the input (a stable sort), so the same graph in the
same order always gives the same tree.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["kruskal_mst", "mutual_reachability_edges", "single_linkage_tree"]


@numba.njit(cache=True, nogil=True)
def _find(parent: np.ndarray, x: int) -> int:
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:  # path compression
        nxt = parent[x]
        parent[x] = root
        x = nxt
    return root


@numba.njit(cache=True, nogil=True)
def _knn_edges(
    D: np.ndarray, ids: np.ndarray, core: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, k = ids.shape
    # int32 ends: at a million points and 16 neighbours that is 128 MiB less
    u = np.empty(n * k, dtype=np.int32)
    v = np.empty(n * k, dtype=np.int32)
    w = np.empty(n * k, dtype=np.float32)
    m = 0
    for i in range(n):
        ci = core[i]
        for j in range(k):
            t = ids[i, j]
            if t < 0 or t == i:
                continue
            u[m] = i
            v[m] = t
            w[m] = max(ci, core[t], D[i, j])
            m += 1
    return u[:m], v[:m], w[:m]


def mutual_reachability_edges(
    D: np.ndarray, ids: np.ndarray, core: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges ``(i, ids[i, j])`` of a kNN graph weighted by mutual reachability.

    ``max(core_i, core_j, d_ij)``; self loops and missing neighbours (-1) are dropped.
    """
    if len(ids) >= 2**31:
        raise ValueError("more than 2**31 points: the edge ends are int32")
    return _knn_edges(
        np.ascontiguousarray(D, dtype=np.float64),
        np.ascontiguousarray(ids, dtype=np.int64),
        np.ascontiguousarray(core, dtype=np.float64),
    )


@numba.njit(cache=True, nogil=True)
def _still_joining(parent: np.ndarray, u: np.ndarray, v: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The edges of ``idx`` whose ends are still apart (indices, not copies, at 10M edges)."""
    keep = np.zeros(len(idx), dtype=np.bool_)
    for i in range(len(idx)):
        e = idx[i]
        keep[i] = _find(parent, u[e]) != _find(parent, v[e])
    return idx[keep]


@numba.njit(cache=True, nogil=True)
def _kruskal_into(
    parent: np.ndarray,
    rank: np.ndarray,
    order: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    w: np.ndarray,
    out_u: np.ndarray,
    out_v: np.ndarray,
    out_w: np.ndarray,
    m: int,
) -> int:
    n = len(parent)
    for e in order:
        if m == n - 1:
            break
        a = _find(parent, u[e])
        b = _find(parent, v[e])
        if a == b:
            continue
        if rank[a] < rank[b]:
            a, b = b, a
        parent[b] = a
        if rank[a] == rank[b]:
            rank[a] += 1
        out_u[m] = u[e]
        out_v[m] = v[e]
        out_w[m] = w[e]
        m += 1
    return m


def kruskal_mst(
    u: np.ndarray, v: np.ndarray, w: np.ndarray, n: int, light_share: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """Minimum spanning forest of an undirected graph given as an edge list.

    Parameters
    ----------
    u, v : ndarray of int, shape (n_edges,)
        Edge end points in ``[0, n)``; repeated and reversed edges are fine.
    w : ndarray of float, shape (n_edges,)
    n : int
        Number of vertices.

    Returns
    -------
    edges : ndarray of shape (n_tree_edges, 3)
        ``(u, v, weight)`` rows sorted by weight (ties by input position).
    component : ndarray of int, shape (n,)
        Component id of every vertex (ids are 0..n_components-1, in order of first vertex).
    """
    # int32 ends stay int32 (the kNN graph's); anything else becomes int64
    ends = (
        np.int32
        if np.asarray(u).dtype == np.int32 and np.asarray(v).dtype == np.int32
        else np.int64
    )
    u = np.ascontiguousarray(u, dtype=ends)
    v = np.ascontiguousarray(v, dtype=ends)
    # float32 sorts faster, and the distances come from float32 vectors anyway
    w = np.ascontiguousarray(w, dtype=np.float32)
    n = int(n)
    parent = np.arange(n, dtype=np.int64)
    rank = np.zeros(n, dtype=np.int8)
    size = max(n - 1, 0)
    out_u = np.empty(size, dtype=np.int64)
    out_v = np.empty(size, dtype=np.int64)
    out_w = np.empty(size, dtype=np.float32)
    # Filter-Kruskal: the lightest edges (most of the tree) first; of the rest, only those
    # still joining two components are sorted. Ties break by input position either way.
    m = 0
    if len(w) > 4 * n and 0 < light_share < 1:
        pivot = np.partition(w, int(light_share * len(w)))[int(light_share * len(w))]
        order = _stable_argsort(w, np.flatnonzero(w <= pivot))
        m = _kruskal_into(parent, rank, order, u, v, w, out_u, out_v, out_w, m)
        heavy = _still_joining(parent, u, v, np.flatnonzero(w > pivot))
        order = _stable_argsort(w, heavy)
    else:
        order = _stable_argsort(w)
    m = _kruskal_into(parent, rank, order, u, v, w, out_u, out_v, out_w, m)
    tu, tv, tw = out_u[:m], out_v[:m], out_w[:m]
    edges = np.column_stack([tu.astype(np.float64), tv.astype(np.float64), tw.astype(np.float64)])
    return edges, _component_ids(parent)


def _stable_argsort(w: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
    """``idx[np.argsort(w[idx], kind="stable")]`` for float32 weights, about twice as fast.

    Non-negative float32 values order like their bit patterns, so weight and position pack
    into one uint64 key whose plain (SIMD) sort is the stable order; the keys are built in
    place, one 8-byte array for the lot (at ten million edges the temporaries of the numpy
    expression cost more memory than the edges).
    """
    if idx is None:
        idx = np.arange(len(w), dtype=np.int64)
    sub = w[idx]
    if len(idx) >= 2**32 or not (sub >= 0).all():  # NaN and negatives fail the test too
        return idx[np.argsort(sub, kind="stable")]
    del sub
    key = _packed_keys(w, idx)
    key.sort()
    return _unpack_order(key, idx)


@numba.njit(cache=True, nogil=True)
def _packed_keys(w: np.ndarray, idx: np.ndarray) -> np.ndarray:
    key = np.empty(len(idx), dtype=np.uint64)
    bits = w.view(np.uint32)
    for i in range(len(idx)):
        b = bits[idx[i]]
        if b == 0x80000000:  # -0.0 sorts as +0.0
            b = 0
        key[i] = (np.uint64(b) << np.uint64(32)) | np.uint64(i)
    return key


@numba.njit(cache=True, nogil=True)
def _unpack_order(key: np.ndarray, idx: np.ndarray) -> np.ndarray:
    out = np.empty(len(key), dtype=np.int64)
    for i in range(len(key)):
        out[i] = idx[key[i] & np.uint64(0xFFFFFFFF)]
    return out


@numba.njit(cache=True, nogil=True)
def _component_ids(parent: np.ndarray) -> np.ndarray:
    """Component ids 0.. in order of first vertex, from Kruskal's own union-find."""
    n = len(parent)
    comp = np.empty(n, dtype=np.int64)
    root_id = np.full(n, -1, dtype=np.int64)
    next_id = 0
    for x in range(n):
        r = _find(parent, x)
        if root_id[r] < 0:
            root_id[r] = next_id
            next_id += 1
        comp[x] = root_id[r]
    return comp


@numba.njit(cache=True, nogil=True)
def _label(edges: np.ndarray, n: int) -> np.ndarray:
    # hdbscan's union-find: every merge creates a new node n, n+1, ...
    parent = np.full(2 * n - 1, -1, dtype=np.int64)
    size = np.zeros(2 * n - 1, dtype=np.int64)
    size[:n] = 1
    next_label = n
    out = np.empty((len(edges), 4), dtype=np.float64)
    for i in range(len(edges)):
        a = int(edges[i, 0])
        b = int(edges[i, 1])
        aa = a
        while parent[aa] != -1:
            aa = parent[aa]
        while parent[a] != -1 and parent[a] != aa:  # path compression
            nxt = parent[a]
            parent[a] = aa
            a = nxt
        bb = b
        while parent[bb] != -1:
            bb = parent[bb]
        while parent[b] != -1 and parent[b] != bb:
            nxt = parent[b]
            parent[b] = bb
            b = nxt
        out[i, 0] = aa
        out[i, 1] = bb
        out[i, 2] = edges[i, 2]
        out[i, 3] = size[aa] + size[bb]
        parent[aa] = next_label
        parent[bb] = next_label
        size[next_label] = size[aa] + size[bb]
        next_label += 1
    return out


def single_linkage_tree(edges: np.ndarray, n: int) -> np.ndarray:
    """Single-linkage tree (scipy/hdbscan format) of a spanning tree sorted by weight.

    Parameters
    ----------
    edges : ndarray of shape (n - 1, 3)
        ``(u, v, weight)`` rows of a spanning tree, sorted by weight.
    n : int

    Returns
    -------
    ndarray of shape (n - 1, 4)
        ``(left, right, distance, size)`` per merge, as ``hdbscan._hdbscan_linkage.label``.
    """
    return _label(np.ascontiguousarray(edges, dtype=np.float64), int(n))
