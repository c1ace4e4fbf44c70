"""Comparing the PyOD detectors on labelled data (``notebooks/detector_lab.ipynb``).

The job never sees labels; this module is for choosing and checking detectors and thresholds
where labels exist (the built-in generator's, :func:`pipelines.lab.labelled_behaviour`). Every
detector is fitted the way the job fits it: unsupervised, on all rows, scored by its own
``decision_scores_`` (:class:`anomaly.detectors.Detector`,
:class:`anomaly.detectors.DetectorEnsemble`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from anomaly.detectors import DETECTORS, Detector, DetectorEnsemble

log = logging.getLogger(__name__)

__all__ = [
    "ENSEMBLE",
    "compare_detectors",
    "confusion_at",
    "detector_scores",
    "ensemble_name",
    "roc_pr_curves",
    "threshold_for_fpr",
]

# The ensemble the job's entity scoring uses (anomaly.scoring.entity_scores).
ENSEMBLE = ("ecod", "iforest", "hbos")


def ensemble_name(names: Sequence[str] = ENSEMBLE) -> str:
    """The key of an ensemble's scores in :func:`detector_scores` (``ensemble(a,b,c)``)."""
    return "ensemble(" + ",".join(names) + ")"


def detector_scores(
    X: Any,
    detectors: Sequence[str] = DETECTORS,
    *,
    ensemble: Sequence[str] | None = ENSEMBLE,
    random_state: int = 0,
) -> dict[str, np.ndarray]:
    """Each detector's score of every row (higher = more anomalous), fitted on all rows.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    detectors : sequence of str
        Names from :data:`anomaly.detectors.DETECTORS`.
    ensemble : sequence of str or None
        Also score with a :class:`~anomaly.detectors.DetectorEnsemble` of these (default: the
        job's); ``None`` for none.
    random_state : int

    Returns
    -------
    dict
        Detector name (``ensemble(...)`` for the ensemble) -> scores of shape (n_samples,),
        in the order fitted; each fit time is logged.
    """
    X = np.asarray(X, dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    for name in detectors:
        started = time.perf_counter()
        out[name] = Detector(name, random_state=random_state).fit(X).decision_scores_
        log.info("%s fitted on %d rows in %.2fs", name, len(X), time.perf_counter() - started)
    if ensemble:
        started = time.perf_counter()
        ens = DetectorEnsemble(tuple(ensemble), random_state=random_state).fit(X)
        out[ensemble_name(ensemble)] = ens.decision_scores_
        log.info("ensemble fitted on %d rows in %.2fs", len(X), time.perf_counter() - started)
    return out


def threshold_for_fpr(scores_reference: Any, target_fpr: float) -> float:
    """The score above which ``target_fpr`` of the reference scores lie.

    The same rule as :class:`anomaly.detectors.Detector`: the ``1 - target_fpr`` quantile of
    the reference, a row being flagged when its score is strictly above it.

    Parameters
    ----------
    scores_reference : array-like of shape (n,)
        Scores of rows that should not be flagged (the benign rows with labels; all rows
        without, as the job does).
    target_fpr : float
        In (0, 1).

    Raises
    ------
    ValueError
        On an empty reference or a rate outside (0, 1).
    """
    ref = np.asarray(scores_reference, dtype=np.float64)
    if not 0 < target_fpr < 1:
        raise ValueError("target_fpr must be in (0, 1)")
    if ref.size == 0 or not np.isfinite(ref).all():
        raise ValueError("reference scores must be non-empty and finite")
    return float(np.quantile(ref, 1 - target_fpr))


def confusion_at(y: Any, scores: Any, threshold: float) -> dict[str, float]:
    """Confusion counts and rates when rows scoring strictly above ``threshold`` are flagged.

    Returns
    -------
    dict
        ``threshold``, ``tp``, ``fp``, ``tn``, ``fn``, ``fpr``, ``recall``, ``precision``
        (NaN where undefined).
    """
    y = np.asarray(y).astype(bool)
    flagged = np.asarray(scores, dtype=np.float64) > threshold
    tp = int((flagged & y).sum())
    fp = int((flagged & ~y).sum())
    tn = int((~flagged & ~y).sum())
    fn = int((~flagged & y).sum())
    return {
        "threshold": float(threshold),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "fpr": fp / (fp + tn) if fp + tn else float("nan"),
        "recall": tp / (tp + fn) if tp + fn else float("nan"),
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
    }


def compare_detectors(
    X: Any,
    y: Any,
    random_state: int = 0,
    *,
    detectors: Sequence[str] = DETECTORS,
    ensemble: Sequence[str] | None = ENSEMBLE,
    target_fpr: float = 0.01,
    scores: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """ROC AUC and average precision of every detector against labels ``y`` (1 = positive).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    random_state : int
    detectors, ensemble
        As :func:`detector_scores`.
    target_fpr : float
        The false-positive rate of the operating point reported: the threshold comes from
        the negatives' scores (:func:`threshold_for_fpr`).
    scores : dict, optional
        Scores already computed with :func:`detector_scores` (then ``X`` is not refitted).

    Returns
    -------
    DataFrame
        Indexed by detector, best average precision first: ``roc_auc``,
        ``average_precision``, and at the operating point ``threshold``, ``recall``,
        ``precision``, ``fpr`` (measured), ``tp``, ``fp``.
    """
    y = np.asarray(y).astype(np.int64)
    if scores is None:
        scores = detector_scores(X, detectors, ensemble=ensemble, random_state=random_state)
    both = len(np.unique(y)) == 2
    rows = []
    for name, s in scores.items():
        if len(s) != len(y):
            raise ValueError(f"{name}: {len(s)} scores for {len(y)} labels")
        row: dict[str, Any] = {
            "detector": name,
            "roc_auc": float(roc_auc_score(y, s)) if both else float("nan"),
            "average_precision": float(average_precision_score(y, s)) if both else float("nan"),
        }
        if (y == 0).any():
            c = confusion_at(y, s, threshold_for_fpr(s[y == 0], target_fpr))
            row.update({k: c[k] for k in ("threshold", "recall", "precision", "fpr", "tp", "fp")})
        rows.append(row)
    out = pd.DataFrame(rows).set_index("detector")
    return out.sort_values("average_precision", ascending=False, kind="stable")


def roc_pr_curves(y: Any, scores: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The ROC curve ``(fpr, tpr)`` and the precision-recall curve ``(recall, precision)``."""
    y = np.asarray(y).astype(np.int64)
    fpr, tpr, _ = roc_curve(y, scores)
    precision, recall, _ = precision_recall_curve(y, scores)
    return {"roc": (fpr, tpr), "pr": (recall, precision)}
