"""One set of checks over every detector and estimator the packages expose.

Seeded determinism, pickle round-trip, ``__init__`` that only stores its arguments, fitted
attributes ending in ``_``, and for detectors: higher score = more anomalous, and a threshold
that holds its target false-positive rate on the reference data.
"""

from __future__ import annotations

import inspect
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from anomaly.detectors import DETECTORS, Detector, DetectorEnsemble
from clustering.embeddings import CharNgramEmbedder
from clustering.hdbscan_graph import GraphHDBSCAN
from clustering.index import NeighborIndex


def _data(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    inliers = rng.normal(size=(600, 5))
    outliers = rng.normal(loc=6.0, size=(12, 5))
    return np.vstack([inliers, outliers])


def _texts() -> list[str]:
    return [f"anna{1900 + i}" for i in range(40)] + [f"xq{i}zz" for i in range(40)]


# name -> (factory, fit+output function)
ESTIMATORS: dict[str, tuple[Callable[[], Any], Callable[[Any], np.ndarray]]] = {
    **{
        f"detector-{name}": (
            (lambda name=name: Detector(name, target_fpr=0.05, random_state=0)),
            (lambda est: est.fit(_data()).decision_function(_data(1))),
        )
        for name in DETECTORS
    },
    "ensemble": (
        lambda: DetectorEnsemble(target_fpr=0.05, random_state=0),
        lambda est: est.fit(_data()).decision_function(_data(1)),
    ),
    "graph-hdbscan": (
        lambda: GraphHDBSCAN(min_cluster_size=20, min_samples=5, random_state=0),
        lambda est: est.fit(_data()).labels_,
    ),
    "graph-hdbscan-ivf-predict": (
        lambda: GraphHDBSCAN(
            min_cluster_size=20, min_samples=5, index_method="ivf", nlist=16, random_state=0
        ),
        lambda est: est.fit(_data()).predict(_data(1))[0],
    ),
    "graph-hdbscan-exact": (
        lambda: GraphHDBSCAN(min_cluster_size=20, min_samples=5, algorithm="exact"),
        lambda est: est.fit(_data()).labels_,
    ),
    "char-ngram-embedder": (
        lambda: CharNgramEmbedder(n_components=6, random_state=0),
        lambda est: est.fit(_texts()).transform(_texts()),
    ),
    "neighbor-index": (
        lambda: NeighborIndex(method="ivf", nlist=8, random_state=0),
        lambda est: est.fit(_data().astype(np.float32)).search(_data(1)[:20], 5)[1],
    ),
}


@pytest.fixture(params=sorted(ESTIMATORS))
def estimator(
    request: pytest.FixtureRequest,
) -> tuple[str, Callable[[], Any], Callable[[Any], np.ndarray]]:
    factory, run = ESTIMATORS[request.param]
    return request.param, factory, run


def test_init_only_stores_arguments(estimator) -> None:
    _, factory, _ = estimator
    est = factory()
    params = inspect.signature(type(est).__init__).parameters
    for name in params:
        if name == "self":
            continue
        assert hasattr(est, name), f"{type(est).__name__} does not store {name}"
    fitted = [a for a in vars(est) if a.endswith("_") and not a.startswith("_")]
    assert fitted == [], f"fitted attributes before fit: {fitted}"


def test_seeded_determinism(estimator) -> None:
    _, factory, run = estimator
    np.testing.assert_array_equal(run(factory()), run(factory()))


def test_pickle_round_trip(estimator) -> None:
    _, factory, run = estimator
    est = factory()
    out = run(est)
    again = pickle.loads(pickle.dumps(est))
    assert any(a.endswith("_") for a in vars(again))
    if hasattr(again, "decision_function"):
        np.testing.assert_array_equal(again.decision_function(_data(1)), out)
    elif hasattr(again, "search"):
        np.testing.assert_array_equal(again.search(_data(1)[:20], 5)[1], out)
    elif hasattr(again, "transform"):
        np.testing.assert_array_equal(again.transform(_texts()), out)
    else:
        np.testing.assert_array_equal(again.labels_, out)


@pytest.mark.parametrize("name", [*DETECTORS, "ensemble"])
def test_detector_contract(name: str) -> None:
    X = _data()
    det = DetectorEnsemble(target_fpr=0.05) if name == "ensemble" else Detector(name, 0.05)
    det.fit(X)
    assert det.decision_scores_.shape == (len(X),)
    # higher = more anomalous: the planted outliers rank on top
    assert det.decision_scores_[-12:].mean() > np.quantile(det.decision_scores_[:-12], 0.95)
    assert set(np.unique(det.labels_)) <= {0, 1}
    assert det.labels_.mean() <= 0.05 + 12 / len(X) + 0.01
    for key in ("detector", "library", "threshold", "target_fpr"):
        assert key in det.metadata_


@pytest.mark.parametrize("name", [*DETECTORS, "ensemble"])
def test_scores_of_new_rows_do_not_depend_on_the_batch(name: str) -> None:
    """ECOD and COPOD refit on training + batch in PyOD: copies must not hide each other."""
    X = _data()
    det = DetectorEnsemble(target_fpr=0.05) if name == "ensemble" else Detector(name, 0.05)
    det.fit(X)
    outlier = np.full((1, X.shape[1]), 8.0)
    alone = det.decision_function(outlier)
    crowd = det.decision_function(np.vstack([outlier] * 200 + [X[:50]]))
    np.testing.assert_allclose(crowd[:200], alone[0])
    np.testing.assert_allclose(crowd[200:], det.decision_function(X[:50]))
    assert alone[0] > np.quantile(det.decision_scores_, 0.99)


@pytest.mark.parametrize("name", [*DETECTORS, "ensemble"])
def test_detector_column_order_matters_consistently(name: str) -> None:
    """Permuting feature columns must not change which rows are most anomalous."""
    X = _data()
    perm = np.array([3, 0, 4, 1, 2])
    make = (
        (lambda: DetectorEnsemble(target_fpr=0.05))
        if name == "ensemble"
        else (lambda: Detector(name, 0.05))
    )
    a = make().fit(X).decision_scores_
    b = make().fit(X[:, perm]).decision_scores_
    top_a = set(np.argsort(-a)[:12])
    top_b = set(np.argsort(-b)[:12])
    assert len(top_a & top_b) >= 10


def test_detector_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        Detector("ecod").fit(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError):
        Detector("nope").fit(_data())
    with pytest.raises(ValueError):
        Detector("ecod", target_fpr=0.0).fit(_data())
    with pytest.raises(ValueError, match="max_fit_rows"):
        Detector("hbos", max_fit_rows=1).fit(_data())


@pytest.mark.parametrize("name", DETECTORS)
def test_sampled_fit_scores_every_row_and_finds_the_outliers(name: str) -> None:
    """A sample-fitted detector still scores (and thresholds on) every reference row."""
    X = _data()
    det = Detector(name, 0.05, random_state=3, max_fit_rows=len(X) // 3).fit(X)
    again = Detector(name, 0.05, random_state=3, max_fit_rows=len(X) // 3).fit(X)
    np.testing.assert_array_equal(det.decision_scores_, again.decision_scores_)
    assert det.decision_scores_.shape == det.fit_scores_.shape == (len(X),)
    assert det.decision_scores_[-12:].mean() > np.quantile(det.decision_scores_[:-12], 0.95)
    batch_dependent = name in ("ecod", "copod")
    assert det.metadata_["fitted_rows"] == (len(X) if batch_dependent else len(X) // 3)
    if not batch_dependent:  # the sampled fit scores rows as new rows, one by one
        np.testing.assert_allclose(det.decision_function(X[:40]), det.decision_scores_[:40])
