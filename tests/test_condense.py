"""The numba tree post-processing against hdbscan's own ``_tree_to_labels`` (pinned 0.8.44)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable

import hdbscan
import numpy as np
import pytest
from hdbscan._hdbscan_tree import compute_stability, get_clusters
from hdbscan.hdbscan_ import _tree_to_labels
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial.distance import cdist

from clustering.condense import tree_to_labels
from clustering.linkage import single_linkage_tree

# hdbscan's own numpy divisions (1 / lambda) at lambda 0
pytestmark = pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")


def _hdbscan_tree(X: np.ndarray, min_samples: int) -> np.ndarray:
    model = hdbscan.HDBSCAN(min_cluster_size=5, min_samples=min_samples, core_dist_n_jobs=1)
    return model.fit(X).single_linkage_tree_.to_numpy()


def _blobs(n: int, d: int, k: int, seed: int, noise: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, size=(k, d))
    spread = rng.uniform(0.3, 2.0, size=k)
    which = rng.integers(0, k, size=n - int(noise * n))
    X = centres[which] + rng.normal(size=(len(which), d)) * spread[which, None]
    return np.vstack([X, rng.uniform(-12, 12, size=(n - len(which), d))])


def _with_duplicates(seed: int) -> np.ndarray:
    # groups of copies larger than min_samples: zero mutual reachability, infinite lambda
    rng = np.random.default_rng(seed)
    X = _blobs(240, 2, 3, seed)
    copies = np.repeat(X[rng.choice(len(X), 10, replace=False)], 6, axis=0)
    return np.vstack([X, copies])


def _scipy_float32_tree(n: int, seed: int) -> np.ndarray:
    # mutual reachability rounded to float32 as in the graph path: many tied distances
    X = _blobs(n, 2, 4, seed)
    D = cdist(X, X)
    core = np.sort(D, axis=1)[:, 4]
    mr = np.maximum(np.maximum(core[:, None], core[None, :]), D).astype(np.float32)
    mst = minimum_spanning_tree(mr.astype(np.float64)).tocoo()
    edges = np.column_stack([mst.row, mst.col, mst.data]).astype(np.float64)
    edges = edges[np.argsort(edges[:, 2], kind="stable")]
    return single_linkage_tree(edges, n)


def _infinite_top(seed: int, separate: bool) -> np.ndarray:
    # the last two merges at an infinite distance (components of a disconnected graph):
    # points leave at lambda 0, or with separate blobs, clusters are born at lambda 0
    rng = np.random.default_rng(seed)
    if separate:
        X = np.vstack([rng.normal(c, 1.0, size=(100, 2)) for c in (0.0, 50.0, 100.0)])
    else:
        X = _blobs(300, 2, 4, seed)
    slt = _hdbscan_tree(X, 4)
    slt[-2:, 2] = np.inf
    return slt


def _float32_rounding() -> np.ndarray:
    # The root (stability 4) against its children (2 + 2e-8 summed): hdbscan sums them in a
    # C float, which rounds to 4.0, so EOM with allow_single_cluster keeps the root.
    return np.array([[2, 3, 1 / (2 + 1e-8), 2], [0, 1, 0.5, 2], [4, 5, 1.0, 4]])


# name -> (single-linkage tree builder, min_cluster_size)
DATASETS: dict[str, tuple[Callable[[], np.ndarray], int]] = {
    "blobs_30": (lambda: _hdbscan_tree(_blobs(30, 2, 3, 0), 3), 4),
    "blobs_200": (lambda: _hdbscan_tree(_blobs(200, 2, 4, 1), 5), 10),
    "blobs_1000_3d": (lambda: _hdbscan_tree(_blobs(1000, 3, 6, 2), 8), 15),
    "blobs_2000_small_mcs": (lambda: _hdbscan_tree(_blobs(2000, 2, 10, 3, 0.3), 4), 5),
    "blobs_5000": (lambda: _hdbscan_tree(_blobs(5000, 4, 12, 4), 10), 25),
    "duplicates": (lambda: _hdbscan_tree(_with_duplicates(5), 3), 8),
    "only_duplicates": (
        lambda: _hdbscan_tree(np.repeat(_blobs(6, 2, 2, 6, 0.0), 40, axis=0), 5),
        10,
    ),
    "integer_grid_ties": (
        lambda: _hdbscan_tree(
            np.random.default_rng(7).integers(0, 15, size=(400, 2)).astype(np.float64), 4
        ),
        8,
    ),
    "scipy_float32": (lambda: _scipy_float32_tree(500, 8), 10),
    "infinite_distances": (lambda: _infinite_top(9, separate=False), 10),
    "clusters_born_at_infinity": (lambda: _infinite_top(13, separate=True), 10),
    "single_blob": (lambda: _hdbscan_tree(_blobs(500, 2, 1, 10, 0.0), 10), 20),
    "all_noise": (lambda: _hdbscan_tree(_blobs(100, 2, 3, 11), 5), 100),
    "just_over_half": (lambda: _hdbscan_tree(_blobs(100, 2, 2, 12, 0.0), 5), 51),
    "n2": (lambda: np.array([[0.0, 1.0, 1.5, 2.0]]), 2),
    "n2_zero": (lambda: np.array([[0.0, 1.0, 0.0, 2.0]]), 2),
    "n2_inf": (lambda: np.array([[0.0, 1.0, np.inf, 2.0]]), 2),
    "n4_ties": (lambda: np.array([[0, 1, 1.0, 2], [2, 3, 1.0, 2], [4, 5, 1.0, 4]]), 2),
    "n4_split": (lambda: np.array([[0, 1, 0.5, 2], [2, 3, 1.0, 2], [4, 5, 3.0, 4]]), 2),
    "float32_rounding": (_float32_rounding, 2),
}

OPTIONS = list(itertools.product(["eom", "leaf"], ["zero", "birth"], [False, True], [False, True]))


@functools.cache
def _tree(name: str) -> np.ndarray:
    slt = DATASETS[name][0]()
    slt.setflags(write=False)
    return slt


def _epsilon(slt: np.ndarray, min_cluster_size: int) -> float:
    """A distance at which clusters are born (ties the epsilon comparisons on purpose)."""
    condensed = _tree_to_labels(None, slt, min_cluster_size)[3]
    lam = condensed["lambda_val"][(condensed["child_size"] > 1) & (condensed["lambda_val"] > 0)]
    births = np.unique(1.0 / lam) if len(lam) else np.unique(slt[:, 2])
    births = births[np.isfinite(births) & (births > 0)]
    return float(births[len(births) // 2]) if len(births) else 1.0


def _persistence(labels: np.ndarray, stab: dict[int, float], max_lambda: float) -> np.ndarray:
    """hdbscan's ``get_stability_scores`` from our labels and stabilities."""
    counts = np.bincount(labels[labels >= 0], minlength=len(stab))
    out = np.empty(len(stab))
    for k, c in enumerate(sorted(stab)):
        if np.isinf(max_lambda) or max_lambda == 0.0 or counts[k] == 0:
            out[k] = 1.0
        else:
            out[k] = stab[c] / (counts[k] * max_lambda)
    return out


@pytest.mark.parametrize(("method", "eps", "limit_size", "allow_single"), OPTIONS)
@pytest.mark.parametrize("name", list(DATASETS))
def test_matches_hdbscan(
    name: str, method: str, eps: str, limit_size: bool, allow_single: bool
) -> None:
    slt = _tree(name)
    mcs = DATASETS[name][1]
    n = len(slt) + 1
    options = {
        "cluster_selection_method": method,
        "cluster_selection_epsilon": _epsilon(slt, mcs) if eps == "birth" else 0.0,
        "max_cluster_size": max(2 * mcs, n // 4) if limit_size else 0,
        "allow_single_cluster": allow_single,
    }
    labels, probs, stab, condensed = tree_to_labels(slt, mcs, **options)
    try:
        ref = _tree_to_labels(None, slt, mcs, **options)
    except ZeroDivisionError:
        # hdbscan's epsilon search divides by the birth lambda of a cluster born at an
        # infinite distance (see clustering/condense.py); a huge finite distance instead
        assert name == "clusters_born_at_infinity"
        finite = slt.copy()
        finite[~np.isfinite(finite[:, 2]), 2] = np.finfo(np.float64).max
        with np.errstate(over="ignore"):  # 1 / lambda of that huge distance
            ref_labels, ref_probs = _tree_to_labels(None, finite, mcs, **options)[:2]
        np.testing.assert_array_equal(labels, ref_labels)
        np.testing.assert_allclose(probs, ref_probs, rtol=0, atol=1e-12)
        return
    ref_labels, ref_probs, ref_persistence, ref_condensed, _ = ref

    assert condensed.dtype == ref_condensed.dtype
    np.testing.assert_array_equal(condensed, ref_condensed)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(probs, ref_probs, rtol=0, atol=1e-12)

    # the selected clusters' stabilities: hdbscan's dict after its selection updates it
    ref_stab = compute_stability(ref_condensed)
    get_clusters(
        ref_condensed,
        ref_stab,
        method,
        allow_single,
        False,
        options["cluster_selection_epsilon"],
        options["max_cluster_size"],
    )
    assert len(stab) == len(ref_persistence)
    assert list(stab) == sorted(stab)
    for c, s in stab.items():
        np.testing.assert_equal(s, ref_stab[c])
    max_lambda = float(ref_condensed["lambda_val"].max())
    np.testing.assert_array_equal(_persistence(labels, stab, max_lambda), ref_persistence)


def test_the_options_have_an_effect() -> None:
    """The grid above is not vacuous: epsilon, the size cap and leaf change the blobs' labels."""
    slt = _tree("blobs_2000_small_mcs")
    base = tree_to_labels(slt, 5)[0]
    eps = _epsilon(slt, 5)
    for options in (
        {"cluster_selection_method": "leaf"},
        {"cluster_selection_epsilon": eps},
        {"max_cluster_size": 20},
    ):
        assert not np.array_equal(tree_to_labels(slt, 5, **options)[0], base), options  # type: ignore[arg-type]


def test_rejects_bad_arguments() -> None:
    slt = _tree("n4_split")
    with pytest.raises(ValueError, match="min_cluster_size"):
        tree_to_labels(slt, 1)
    with pytest.raises(ValueError, match="cluster_selection_method"):
        tree_to_labels(slt, 2, cluster_selection_method="mass")
    with pytest.raises(ValueError, match="shape"):
        tree_to_labels(np.zeros((0, 4)), 2)
