"""HDBSCAN's tree post-processing (condense, stability, selection, labels), compiled with numba.

A port of ``hdbscan`` 0.8.44's ``_hdbscan_tree.pyx`` as used by ``hdbscan_._tree_to_labels``:
the same condensed tree row for row, the same labels and the same probabilities. hdbscan's
Cython keeps lists, dicts and sets of Python ints (BFS lists, ``parent_to_children``,
``is_cluster``), which costs 4-6 s at a million points; here every step is an array pass.

The steps keep hdbscan's names so the two can be read side by side:

1. ``condense_tree``: walk the single-linkage tree breadth first; a split into two children of
   at least ``min_cluster_size`` points makes two new clusters, a smaller child's points
   fall out of the cluster at that split's lambda (``1 / distance``).
2. ``compute_stability``: per cluster, ``sum((lambda_child - lambda_birth) * child_size)``.
3. ``get_clusters``: excess of mass (``eom``) or ``leaf`` selection, then the
   ``cluster_selection_epsilon`` search.
4. ``do_labelling``: each point takes its nearest selected ancestor's label.
5. ``get_probabilities``: ``lambda_point / max lambda of the point's cluster``, capped at 1.

Cluster ids are those of hdbscan (the root is ``n``, new clusters ``n + 1, ...`` in BFS
order), so a child's id is always larger than its parent's: arrays indexed by ``id - n`` are
a topological order, which replaces hdbscan's recursive searches by one pass up or down.

Two of hdbscan's quirks are kept on purpose so the results are identical: the EOM subtree
stability is accumulated in a C ``float`` (float32, rounded after each addition) before being
compared with and stored over the cluster's own float64 stability, and labels number the
selected clusters by ascending tree id (not by size or position). One is not: hdbscan's
epsilon search divides by a cluster's birth lambda and raises ``ZeroDivisionError`` for a
cluster born at an infinite distance (lambda 0); here that cluster's epsilon is infinite.

Not ported: ``match_reference_implementation`` (always False),
``cluster_selection_persistence`` and ``cluster_selection_epsilon_max`` (hdbscan's defaults).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["CONDENSED_TREE_DTYPE", "tree_to_labels"]

# hdbscan's condense_tree output (intp is int64 on the 64-bit platforms this runs on)
CONDENSED_TREE_DTYPE = np.dtype(
    [("parent", np.intp), ("child", np.intp), ("lambda_val", np.float64), ("child_size", np.intp)]
)


# ---------------------------------------------------------------------------------------------
# 1. condense_tree
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _bfs_from_hierarchy(
    hierarchy: np.ndarray, bfs_root: int, num_points: int, queue: np.ndarray
) -> int:
    """Breadth-first node order below ``bfs_root`` written into ``queue``; returns its length.

    A FIFO queue visits nodes in the same order as hdbscan's level-by-level list.
    """
    queue[0] = bfs_root
    head = 0
    tail = 1
    while head < tail:
        node = queue[head]
        head += 1
        if node >= num_points:
            queue[tail] = np.int64(hierarchy[node - num_points, 0])
            queue[tail + 1] = np.int64(hierarchy[node - num_points, 1])
            tail += 2
    return tail


@numba.njit(cache=True, nogil=True)
def _fall_out(
    hierarchy: np.ndarray,
    sub_root: int,
    cluster: int,
    lambda_value: float,
    queue: np.ndarray,
    ignore: np.ndarray,
    res: np.ndarray,
    res_lambda: np.ndarray,
    pos: int,
) -> int:
    """Rows for the points below ``sub_root`` leaving ``cluster`` at ``lambda_value``.

    Points in BFS order, as hdbscan; ``res`` holds (parent, child, child_size) per row.
    Returns the next free row.
    """
    num_points = hierarchy.shape[0] + 1
    count = _bfs_from_hierarchy(hierarchy, sub_root, num_points, queue)
    for i in range(count):
        sub_node = queue[i]
        if sub_node < num_points:
            res[pos, 0] = cluster
            res[pos, 1] = sub_node
            res[pos, 2] = 1
            res_lambda[pos] = lambda_value
            pos += 1
        ignore[sub_node] = True  # the whole runt subtree is consumed here
    return pos


@numba.njit(cache=True, nogil=True)
def _condense_tree(
    hierarchy: np.ndarray, min_cluster_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """hdbscan's ``condense_tree``: its parent, child, lambda_val and child_size columns."""
    root = 2 * hierarchy.shape[0]
    num_points = root // 2 + 1
    next_label = num_points + 1

    node_list = np.empty(root + 1, dtype=np.int64)
    n_nodes = _bfs_from_hierarchy(hierarchy, root, num_points, node_list)
    queue = np.empty(root + 1, dtype=np.int64)  # scratch for the runt subtrees

    relabel = np.empty(root + 1, dtype=np.int64)
    relabel[root] = num_points
    ignore = np.zeros(root + 1, dtype=np.bool_)

    max_rows = 2 * num_points
    res = np.empty((max_rows, 3), dtype=np.int64)
    res_lambda = np.empty(max_rows, dtype=np.float64)
    pos = 0

    for i in range(n_nodes):
        node = node_list[i]
        if ignore[node] or node < num_points:
            continue
        row = node - num_points
        left = int(hierarchy[row, 0])
        right = int(hierarchy[row, 1])
        distance = hierarchy[row, 2]
        lambda_value = 1.0 / distance if distance > 0.0 else np.inf
        left_count = int(hierarchy[left - num_points, 3]) if left >= num_points else 1
        right_count = int(hierarchy[right - num_points, 3]) if right >= num_points else 1
        cluster = relabel[node]

        if left_count >= min_cluster_size and right_count >= min_cluster_size:
            # a true split: two new clusters, born at this lambda
            for child, count in ((left, left_count), (right, right_count)):
                relabel[child] = next_label
                next_label += 1
                res[pos, 0] = cluster
                res[pos, 1] = relabel[child]
                res[pos, 2] = count
                res_lambda[pos] = lambda_value
                pos += 1
        else:
            # A runt side's points fall out of the cluster here (left before right, as in
            # hdbscan); a large side carries the cluster on under the same id. Two runts:
            # the cluster dissolves.
            if left_count < min_cluster_size:
                pos = _fall_out(
                    hierarchy, left, cluster, lambda_value, queue, ignore, res, res_lambda, pos
                )
            else:
                relabel[left] = cluster
            if right_count < min_cluster_size:
                pos = _fall_out(
                    hierarchy, right, cluster, lambda_value, queue, ignore, res, res_lambda, pos
                )
            else:
                relabel[right] = cluster

    return res[:pos, 0].copy(), res[:pos, 1].copy(), res_lambda[:pos], res[:pos, 2].copy()


# ---------------------------------------------------------------------------------------------
# 2. compute_stability
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _compute_stability(
    parent: np.ndarray, child: np.ndarray, lambdas: np.ndarray, sizes: np.ndarray
) -> np.ndarray:
    """hdbscan's ``compute_stability`` as an array indexed by ``cluster id - root``."""
    root = parent.min()
    num_clusters = parent.max() - root + 1
    # every cluster but the root is the child of exactly one row: its birth
    births = np.full(num_clusters, np.nan)
    for i in range(len(child)):
        if child[i] >= root:
            births[child[i] - root] = lambdas[i]
    births[0] = 0.0
    result = np.zeros(num_clusters, dtype=np.float64)
    for i in range(len(parent)):  # row order: the same floating-point sums as hdbscan
        p = parent[i] - root
        result[p] += (lambdas[i] - births[p]) * sizes[i]
    return result


@numba.njit(cache=True, nogil=True)
def _max_lambdas(parent: np.ndarray, lambdas: np.ndarray, num_clusters: int) -> np.ndarray:
    """hdbscan's ``max_lambdas``: the largest lambda among each cluster's direct children."""
    root = parent.min()
    deaths = np.zeros(num_clusters, dtype=np.float64)
    for i in range(len(parent)):
        p = parent[i] - root
        deaths[p] = max(deaths[p], lambdas[i])
    return deaths


# ---------------------------------------------------------------------------------------------
# 3. get_clusters
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _cluster_tree(
    parent: np.ndarray,
    child: np.ndarray,
    lambdas: np.ndarray,
    sizes: np.ndarray,
    num_clusters: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rows with ``child_size > 1`` as arrays indexed by ``cluster id - root``.

    Returns each cluster's parent (-1 for the root), birth lambda and size, and its cluster
    children in row order (CSR: ``children[start[c]:start[c + 1]]``), the order of hdbscan's
    ``parent_to_children`` lists.
    """
    root = parent.min()
    cl_parent = np.full(num_clusters, -1, dtype=np.int64)
    cl_lambda = np.zeros(num_clusters, dtype=np.float64)
    cl_size = np.zeros(num_clusters, dtype=np.int64)
    start = np.zeros(num_clusters + 1, dtype=np.int64)
    for i in range(len(parent)):
        if sizes[i] > 1:
            c = child[i] - root
            cl_parent[c] = parent[i] - root
            cl_lambda[c] = lambdas[i]
            cl_size[c] = sizes[i]
            start[parent[i] - root + 1] += 1
    for c in range(num_clusters):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    children = np.empty(start[-1], dtype=np.int64)
    for i in range(len(parent)):
        if sizes[i] > 1:
            p = parent[i] - root
            children[fill[p]] = child[i] - root
            fill[p] += 1
    return cl_parent, cl_lambda, cl_size, start, children


@numba.njit(cache=True, nogil=True)
def _birth_epsilon(lambda_value: float) -> float:
    # hdbscan divides in Cython and raises ZeroDivisionError at lambda 0: the cluster was
    # born at an infinite distance, so its epsilon is infinite
    return 1.0 / lambda_value if lambda_value != 0.0 else np.inf


@numba.njit(cache=True, nogil=True)
def _epsilon_search(
    candidates: np.ndarray,
    cl_parent: np.ndarray,
    cl_lambda: np.ndarray,
    cluster_selection_epsilon: float,
    allow_single_cluster: bool,
) -> np.ndarray:
    """hdbscan's ``_epsilon_search_fast`` over the candidate clusters (a boolean mask).

    A candidate born below epsilon is replaced by the ancestor hdbscan's
    ``_traverse_upwards_fast`` returns: the first ancestor born above epsilon, or the root's
    child on its path (the root itself with ``allow_single_cluster``). hdbscan skips
    candidates already under a selected ancestor; as birth distances only grow towards the
    root, those would reach that same ancestor, so the set does not depend on that (or on
    set iteration order).
    """
    num_clusters = len(cl_parent)
    # the answer of _traverse_upwards_fast for every cluster, parents first
    upwards = np.zeros(num_clusters, dtype=np.int64)
    for c in range(1, num_clusters):
        p = cl_parent[c]
        if p == 0:
            upwards[c] = 0 if allow_single_cluster else c
        elif _birth_epsilon(cl_lambda[p]) > cluster_selection_epsilon:
            upwards[c] = p
        else:
            upwards[c] = upwards[p]
    selected = np.zeros(num_clusters, dtype=np.bool_)
    for c in range(1, num_clusters):
        if candidates[c]:
            if _birth_epsilon(cl_lambda[c]) < cluster_selection_epsilon:
                selected[upwards[c]] = True
            else:
                selected[c] = True
    return selected


@numba.njit(cache=True, nogil=True)
def _get_clusters(
    stability: np.ndarray,
    cl_parent: np.ndarray,
    cl_lambda: np.ndarray,
    cl_size: np.ndarray,
    start: np.ndarray,
    children: np.ndarray,
    num_points: int,
    leaf: bool,
    allow_single_cluster: bool,
    cluster_selection_epsilon: float,
    max_cluster_size: int,
) -> np.ndarray:
    """hdbscan's cluster selection of ``get_clusters``: the selected clusters (a mask).

    ``stability`` is updated in place as hdbscan updates its dict: a cluster EOM passes over
    takes the (float32) sum of its children's stabilities.
    """
    num_clusters = len(stability)
    has_cluster_tree = len(children) > 0
    # hdbscan's node_list: every cluster, the root only with allow_single_cluster
    first = 0 if allow_single_cluster else 1
    if max_cluster_size <= 0:
        max_cluster_size = num_points + 1  # never triggers
    sizes = cl_size.copy()
    if allow_single_cluster:
        # hdbscan sizes the root by its cluster children only (0 if it never splits)
        sizes[0] = 0
        for k in range(start[0], start[1]):
            sizes[0] += cl_size[children[k]]

    is_cluster = np.zeros(num_clusters, dtype=np.bool_)
    if not leaf:
        # Excess of mass, children before parents (ids are a topological order).
        kept = np.zeros(num_clusters, dtype=np.bool_)
        for node in range(num_clusters - 1, first - 1, -1):
            # hdbscan's `cdef float subtree_stability`: float32, rounded after each addition
            subtree_stability = np.float32(0.0)
            for k in range(start[node], start[node + 1]):
                subtree_stability = np.float32(
                    np.float64(subtree_stability) + stability[children[k]]
                )
            if np.float64(subtree_stability) > stability[node] or sizes[node] > max_cluster_size:
                stability[node] = np.float64(subtree_stability)
            else:
                kept[node] = True
        # hdbscan unselects the whole subtree of each kept cluster: a cluster stays selected
        # iff it was kept and no ancestor was (parents first)
        covered = np.zeros(num_clusters, dtype=np.bool_)
        for node in range(1, num_clusters):
            p = cl_parent[node]
            covered[node] = covered[p] or kept[p]
        for node in range(first, num_clusters):
            is_cluster[node] = kept[node] and not covered[node]

        if cluster_selection_epsilon != 0.0 and has_cluster_tree:
            n_selected = is_cluster.sum()
            only_root = n_selected == 1 and is_cluster[0]
            # EOM choosing the root alone skips the epsilon search (the root can only be
            # chosen with allow_single_cluster, which is when hdbscan keeps it)
            if not only_root:
                is_cluster = _epsilon_search(
                    is_cluster,
                    cl_parent,
                    cl_lambda,
                    cluster_selection_epsilon,
                    allow_single_cluster,
                )
    else:
        # Leaves of the cluster tree (none without a cluster tree: then everything is noise,
        # even with allow_single_cluster, as in hdbscan).
        leaves = np.zeros(num_clusters, dtype=np.bool_)
        if has_cluster_tree:
            for node in range(1, num_clusters):
                leaves[node] = start[node + 1] == start[node]
        if cluster_selection_epsilon != 0.0:
            leaves = _epsilon_search(
                leaves, cl_parent, cl_lambda, cluster_selection_epsilon, allow_single_cluster
            )
        for node in range(first, num_clusters):
            is_cluster[node] = leaves[node]
    return is_cluster


# ---------------------------------------------------------------------------------------------
# 4. do_labelling and 5. get_probabilities
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _do_labelling(
    parent: np.ndarray,
    child: np.ndarray,
    lambdas: np.ndarray,
    is_cluster: np.ndarray,
    cl_parent: np.ndarray,
    deaths: np.ndarray,
    allow_single_cluster: bool,
    cluster_selection_epsilon: float,
) -> np.ndarray:
    """hdbscan's ``do_labelling``: each point takes its nearest selected ancestor's label.

    hdbscan's union-find joins every row whose child is not selected; its set roots are the
    selected clusters and the root. Points under the root alone are labelled only when the
    root is the single selected cluster, and then only those that left it at or after its
    largest lambda (or ``1 / epsilon`` with an epsilon).
    """
    root = parent.min()
    num_clusters = len(is_cluster)
    label_of = np.full(num_clusters, -1, dtype=np.int64)
    n_selected = 0
    for c in range(num_clusters):
        if is_cluster[c]:
            label_of[c] = n_selected
            n_selected += 1
    # the union-find root of each cluster, parents first
    top = np.zeros(num_clusters, dtype=np.int64)
    for c in range(1, num_clusters):
        top[c] = c if is_cluster[c] else top[cl_parent[c]]
    single_root = n_selected == 1 and allow_single_cluster and is_cluster[0]

    labels = np.full(root, -1, dtype=np.int64)
    for i in range(len(child)):
        point = child[i]
        if point >= root:
            continue
        cluster = top[parent[i] - root]
        if cluster != 0:
            labels[point] = label_of[cluster]
        elif single_root:
            if cluster_selection_epsilon != 0.0:
                if lambdas[i] >= 1.0 / cluster_selection_epsilon:
                    labels[point] = label_of[0]
            elif lambdas[i] >= deaths[0]:
                labels[point] = label_of[0]
    return labels


@numba.njit(cache=True, nogil=True)
def _get_probabilities(
    parent: np.ndarray,
    child: np.ndarray,
    lambdas: np.ndarray,
    labels: np.ndarray,
    is_cluster: np.ndarray,
    deaths: np.ndarray,
) -> np.ndarray:
    """hdbscan's ``get_probabilities``: ``min(lambda, death) / death`` of the point's cluster."""
    root = parent.min()
    selected = np.flatnonzero(is_cluster)  # label -> cluster, ids ascending
    result = np.zeros(len(labels), dtype=np.float64)
    for i in range(len(child)):
        point = child[i]
        if point >= root or labels[point] == -1:
            continue
        max_lambda = deaths[selected[labels[point]]]
        if max_lambda == 0.0 or not np.isfinite(lambdas[i]):
            result[point] = 1.0
        else:
            result[point] = min(lambdas[i], max_lambda) / max_lambda
    return result


# ---------------------------------------------------------------------------------------------
# Glue
# ---------------------------------------------------------------------------------------------


def tree_to_labels(
    single_linkage_tree: np.ndarray,
    min_cluster_size: int,
    cluster_selection_method: str = "eom",
    cluster_selection_epsilon: float = 0.0,
    max_cluster_size: int = 0,
    allow_single_cluster: bool = False,
) -> tuple[np.ndarray, np.ndarray, dict[int, float], np.ndarray]:
    """Flat HDBSCAN clusters from a single-linkage tree, as ``hdbscan_._tree_to_labels``.

    Parameters
    ----------
    single_linkage_tree : ndarray of shape (n_samples - 1, 4)
        ``(left, right, distance, size)`` per merge, merges sorted by distance (the output
        of :func:`clustering.linkage.single_linkage_tree` or hdbscan's ``label``).
    min_cluster_size : int
        At least 2.
    cluster_selection_method : {"eom", "leaf"}
    cluster_selection_epsilon : float
        Clusters born below this distance are merged up to their ancestor born above it.
    max_cluster_size : int
        EOM does not select clusters larger than this (0: no limit).
    allow_single_cluster : bool
        Whether the root may be selected.

    Returns
    -------
    labels : ndarray of int64, shape (n_samples,)
        Cluster per point, -1 for noise; clusters numbered in order of their tree ids.
    probabilities : ndarray of float64, shape (n_samples,)
        Membership strength in [0, 1].
    stabilities : dict of int to float
        Stability of each selected cluster, keyed by its condensed-tree id in label order,
        as hdbscan's stability dict after selection (a cluster EOM passed over but the
        epsilon search selected holds its subtree's summed stability).
    condensed_tree : structured ndarray
        hdbscan's condensed tree: fields ``parent``, ``child``, ``lambda_val``,
        ``child_size``, the same rows in the same order.
    """
    hierarchy = np.ascontiguousarray(single_linkage_tree, dtype=np.float64)
    if hierarchy.ndim != 2 or hierarchy.shape[1] != 4 or hierarchy.shape[0] < 1:
        raise ValueError(
            f"expected a single-linkage tree of shape (n - 1, 4), n >= 2; got {hierarchy.shape}"
        )
    if min_cluster_size < 2:
        raise ValueError("min_cluster_size must be at least 2")
    if cluster_selection_method not in ("eom", "leaf"):
        raise ValueError(
            f"invalid cluster_selection_method {cluster_selection_method!r}; use eom or leaf"
        )
    num_points = hierarchy.shape[0] + 1

    # 1. condense_tree
    parent, child, lambdas, sizes = _condense_tree(hierarchy, int(min_cluster_size))
    # 2. compute_stability
    stability = _compute_stability(parent, child, lambdas, sizes)
    num_clusters = len(stability)
    # 3. get_clusters
    cl_parent, cl_lambda, cl_size, start, children = _cluster_tree(
        parent, child, lambdas, sizes, num_clusters
    )
    is_cluster = _get_clusters(
        stability,
        cl_parent,
        cl_lambda,
        cl_size,
        start,
        children,
        num_points,
        cluster_selection_method == "leaf",
        bool(allow_single_cluster),
        float(cluster_selection_epsilon),
        int(max_cluster_size),
    )
    deaths = _max_lambdas(parent, lambdas, num_clusters)
    # 4. do_labelling
    labels = _do_labelling(
        parent,
        child,
        lambdas,
        is_cluster,
        cl_parent,
        deaths,
        bool(allow_single_cluster),
        float(cluster_selection_epsilon),
    )
    # 5. get_probabilities
    probabilities = _get_probabilities(parent, child, lambdas, labels, is_cluster, deaths)

    selected = np.flatnonzero(is_cluster)
    stabilities = {
        int(c) + num_points: float(s)
        for c, s in zip(selected.tolist(), stability[selected].tolist(), strict=True)
    }
    condensed = np.empty(len(parent), dtype=CONDENSED_TREE_DTYPE)
    condensed["parent"] = parent
    condensed["child"] = child
    condensed["lambda_val"] = lambdas
    condensed["child_size"] = sizes
    return labels, probabilities, stabilities, condensed
