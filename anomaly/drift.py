"""Drift and health of a run: did tonight's data or results move away from the look-back window?

A nightly job that runs unattended must not publish rules learned on data that changed shape
(a broken upstream export, a new client version filling a field differently) or on a
clustering that went wrong (everything noise, one giant cluster, an index that lost its
neighbours). Two tools:

* :func:`psi` / :func:`feature_psi`: the population stability index of each feature, tonight
  against a reference (the look-back window). Rules of thumb: below 0.1 stable, 0.1-0.25 a
  moderate shift, above 0.25 a large one.
* :func:`check_health`: compares the PSIs and a few run figures (clusters found, noise share,
  index recall, flagged share, median campaign score) with :class:`HealthThresholds` and says
  in plain words what moved. A ``"degraded"`` status means: keep the last good bundle.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

__all__ = [
    "PSI_EPSILON",
    "HealthThresholds",
    "categorical_psi",
    "check_health",
    "feature_psi",
    "psi",
]

PSI_EPSILON = 1e-4
"""Floor of a bin's share in :func:`psi`.

A bin empty on one side would make ``ln(cur / ref)`` infinite. Shares below the floor are
raised to it (without renormalising), so a bin holding share ``s`` on one side and nothing on
the other adds ``(s - 1e-4) * ln(s / 1e-4)``: at most about 9.2 for ``s = 1``. Differences
between samples of the same distribution rarely empty a bin that holds a tenth of the
reference, so the floor matters only for real shifts (values outside the reference's range,
a constant feature that starts to vary).
"""

_DECIMALS = 6  # rounding of every figure check_health reports (stable JSON across platforms)


def _values(a: Any, what: str) -> np.ndarray:
    x = np.asarray(a, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {x.shape}")
    return x[~np.isnan(x)]


def _edges(reference: np.ndarray, bins: int) -> np.ndarray:
    """Interior bin edges from the reference's quantiles, sorted and deduplicated.

    Bins are right-closed, ``(e[i-1], e[i]]``, the outer ones open-ended: values beyond the
    reference's range land in the first or last bin. A constant reference ``c`` gets edges
    just below ``c`` and at ``c``: one bin holding the reference, and one on either side for
    anything else.
    """
    finite = reference[np.isfinite(reference)]
    if finite.size == 0:
        return np.empty(0)
    lo, hi = finite.min(), finite.max()
    if lo == hi:
        return np.array([np.nextafter(lo, -np.inf), lo])
    qs = np.quantile(finite, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    edges: np.ndarray = np.unique(qs)
    return edges


def _shares(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(edges, x, side="left")  # number of edges < x: right-closed bins
    counts = np.bincount(idx, minlength=edges.size + 1).astype(np.float64)
    return counts / x.size


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index of one feature, ``current`` against ``reference``.

    Bin edges are the reference's quantiles at ``1/bins, ..., (bins-1)/bins``, deduplicated
    (a feature with a few distinct values gets fewer bins); bins are right-closed and the
    outer ones open-ended, so values outside the reference's range count in the outer bins.
    A constant reference gets one bin of its own value and one on each side of it. Shares
    below :data:`PSI_EPSILON` are raised to it, then
    ``PSI = sum((cur - ref) * ln(cur / ref))`` over the bins.

    Parameters
    ----------
    reference : ndarray of shape (n_ref,)
        The feature over the look-back window. NaNs are ignored; infinite values count in the
        outer bins but do not place the edges.
    current : ndarray of shape (n_cur,)
        The feature tonight. NaNs are ignored.
    bins : int, default 10
        Number of quantile bins before deduplication; at least 2.

    Returns
    -------
    float
        Non-negative; 0.0 for identical binned shares, and 0.0 (with a warning) when either
        side has no values left after dropping NaNs: there is nothing to compare. The
        computation is deterministic (no sampling).

    Raises
    ------
    ValueError
        If ``bins < 2`` or an input is not 1-D.
    """
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    ref = _values(reference, "reference")
    cur = _values(current, "current")
    if ref.size == 0 or cur.size == 0:
        log.warning(
            "PSI undefined (%d reference and %d current values after dropping NaNs); reported as 0",
            ref.size,
            cur.size,
        )
        return 0.0
    edges = _edges(ref, bins)
    return _psi_of_shares(_shares(ref, edges), _shares(cur, edges))


def _psi_of_shares(ref_shares: np.ndarray, cur_shares: np.ndarray) -> float:
    r = np.maximum(ref_shares, PSI_EPSILON)
    c = np.maximum(cur_shares, PSI_EPSILON)
    return float(max(np.sum((c - r) * np.log(c / r)), 0.0))


def categorical_psi(reference: pd.Series, current: pd.Series, top: int = 10) -> float:
    """PSI of a categorical column: the reference's ``top`` most common values, the rest, missing.

    Parameters
    ----------
    reference : Series of shape (n_ref,)
    current : Series of shape (n_cur,)
    top : int
        Values of their own; every other value falls in one bin, missing ones in another.
    """
    keep = reference.astype("string").value_counts().index[:top]

    def binned(s: pd.Series) -> pd.Series:
        s = s.astype("string")
        return s.where(s.isin(keep), other="<other>").fillna("<missing>")

    r = binned(reference).value_counts(normalize=True)
    c = binned(current).value_counts(normalize=True)
    cats = sorted(set(r.index) | set(c.index))
    return _psi_of_shares(
        r.reindex(cats).fillna(0.0).to_numpy(), c.reindex(cats).fillna(0.0).to_numpy()
    )


def feature_psi(
    reference: np.ndarray, current: np.ndarray, names: Sequence[str], bins: int = 10
) -> dict[str, float]:
    """PSI of every column of a feature matrix (see :func:`psi`).

    Parameters
    ----------
    reference : ndarray of shape (n_ref, d)
        Features over the look-back window (e.g. :func:`clustering.features.build_features`
        of the earlier days).
    current : ndarray of shape (n_cur, d)
        Tonight's features, same columns in the same order.
    names : list of str, length d
        Column names (unique).
    bins : int, default 10

    Returns
    -------
    dict
        Feature name -> PSI, in column order.

    Raises
    ------
    ValueError
        If the matrices are not 2-D, their column counts differ from each other or from
        ``names``, or the names repeat.
    """
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    if ref.ndim != 2 or cur.ndim != 2:
        raise ValueError(f"feature matrices must be 2-D, got shapes {ref.shape} and {cur.shape}")
    if not (ref.shape[1] == cur.shape[1] == len(names)):
        raise ValueError(
            f"column counts differ: reference {ref.shape[1]}, current {cur.shape[1]}, "
            f"names {len(names)}"
        )
    if len(set(names)) != len(names):
        raise ValueError("feature names must be unique")
    return {name: psi(ref[:, j], cur[:, j], bins=bins) for j, name in enumerate(names)}


@dataclass
class HealthThresholds:
    """When a run counts as degraded (``[health]`` table of the job's TOML config).

    Attributes
    ----------
    max_psi : float, default 0.25
        A feature whose PSI against the look-back window exceeds this has drifted.
    min_clusters : int, default 1
        Fewer clusters than this (over the kinds checked together) is degraded.
    max_clusters : int or None, default None
        More clusters than this is degraded; None: no upper bound.
    max_noise_share : float, default 0.95
        Share of entities left as noise above this is degraded.
    min_index_recall : float, default 0.5
        Measured recall of an approximate neighbour index below this is degraded (not
        checked for an exact index, whose recall is None).
    max_flagged_share_change : float or None, default None
        Largest allowed absolute change of the flagged share (entities in flagged campaigns
        over all entities, in [0, 1]) against the look-back window's; e.g. 0.05 is five
        percentage points. None: not checked.
    max_score_shift : float, default 0.25
        Largest allowed absolute shift of the median score of flagged campaigns against the
        look-back window's, in score units (:class:`anomaly.scoring.CampaignScorer`: the share
        of the evidence a cluster could hold, 0 to 1; 0.25 is a quarter of the range).
    """

    max_psi: float = 0.25
    min_clusters: int = 1
    max_clusters: int | None = None
    max_noise_share: float = 0.95
    min_index_recall: float = 0.5
    max_flagged_share_change: float | None = None
    max_score_shift: float = 0.25


def _round(x: float) -> float:
    """Round to a fixed number of decimals; -0.0 becomes 0.0, NaN stays NaN."""
    v = round(float(x), _DECIMALS)
    return v + 0.0


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _check(name: str, value: float, threshold: float, breached: bool, message: str) -> dict:
    return {
        "name": name,
        "value": _round(value),
        "threshold": _round(threshold),
        "breached": bool(breached),
        "message": message,
    }


def _above(value: float, limit: float) -> bool:
    """``value > limit``, and a value that is not a number breaches too."""
    return not math.isfinite(value) or value > limit


def _below(value: float, limit: float) -> bool:
    return not math.isfinite(value) or value < limit


def _median(scores: np.ndarray | None) -> float | None:
    if scores is None:
        return None
    x = np.asarray(scores, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else None


def check_health(
    *,
    psi: Mapping[str, float],
    n_clusters: int,
    noise_share: float,
    index_recall: float | None,
    campaign_scores: np.ndarray,
    reference_scores: np.ndarray | None,
    thresholds: HealthThresholds,
    flagged_share: float | None = None,
    reference_flagged_share: float | None = None,
) -> dict[str, Any]:
    """Compare a run's drift and figures with ``thresholds``; say what moved.

    Parameters
    ----------
    psi : dict
        Feature name -> PSI against the look-back window (:func:`feature_psi`).
    n_clusters : int
        Clusters found tonight.
    noise_share : float
        Share of tonight's entities left as noise, in [0, 1].
    index_recall : float or None
        Measured recall of the neighbour index; None for an exact index (check skipped).
    campaign_scores : ndarray of shape (n_campaigns,)
        Tonight's campaign scores. NaNs are ignored.
    reference_scores : ndarray of shape (n_reference,) or None
        Campaign scores over the look-back window; None or empty: score shift not checked
        (nor when tonight has no scores).
    thresholds : HealthThresholds
    flagged_share, reference_flagged_share : float, optional
        Share of entities in flagged campaigns tonight and over the look-back window; the
        flagged-share check runs only when both are given and
        ``thresholds.max_flagged_share_change`` is set.

    Returns
    -------
    dict
        ``{"status": "ok" | "degraded", "checks": [...], "psi": {name: float}}``. Each check
        is ``{"name", "value", "threshold", "breached", "message"}``; the message of a
        breached check says what moved. Checks come in a fixed order: one ``psi:<feature>``
        per feature (in the order of ``psi``), then ``min_clusters``, ``max_clusters``,
        ``noise_share``, ``index_recall``, ``flagged_share_change``, ``score_shift`` (each
        present when it applies). Figures are rounded to 6 decimals, so the JSON is stable.
        A value that is not a number breaches its check.
    """
    t = thresholds
    checks: list[dict[str, Any]] = []
    for name, value in psi.items():
        v = float(value)
        if not math.isfinite(v):
            msg = f"feature {name}: PSI could not be computed ({v})"
        elif v > t.max_psi:
            msg = (
                f"feature {name} drifted: PSI {_fmt(v)} > {_fmt(t.max_psi)} "
                "against the look-back window"
            )
        else:
            msg = f"feature {name} stable: PSI {_fmt(v)} <= {_fmt(t.max_psi)}"
        checks.append(_check(f"psi:{name}", v, t.max_psi, _above(v, t.max_psi), msg))

    n = int(n_clusters)
    breached = n < t.min_clusters
    msg = (
        f"only {n} clusters found, fewer than the minimum {t.min_clusters}"
        if breached
        else f"{n} clusters found (minimum {t.min_clusters})"
    )
    checks.append(_check("min_clusters", n, t.min_clusters, breached, msg))
    if t.max_clusters is not None:
        breached = n > t.max_clusters
        msg = (
            f"{n} clusters found, more than the maximum {t.max_clusters}"
            if breached
            else f"{n} clusters found (maximum {t.max_clusters})"
        )
        checks.append(_check("max_clusters", n, t.max_clusters, breached, msg))

    ns = float(noise_share)
    breached = _above(ns, t.max_noise_share)
    msg = (
        f"noise share {_fmt(ns)} > {_fmt(t.max_noise_share)}: almost nothing clustered"
        if breached
        else f"noise share {_fmt(ns)} <= {_fmt(t.max_noise_share)}"
    )
    checks.append(_check("noise_share", ns, t.max_noise_share, breached, msg))

    if index_recall is not None:
        r = float(index_recall)
        breached = _below(r, t.min_index_recall)
        msg = (
            f"neighbour index recall {_fmt(r)} < {_fmt(t.min_index_recall)}: "
            "the approximate index misses too many true neighbours"
            if breached
            else f"neighbour index recall {_fmt(r)} >= {_fmt(t.min_index_recall)}"
        )
        checks.append(_check("index_recall", r, t.min_index_recall, breached, msg))

    if (
        t.max_flagged_share_change is not None
        and flagged_share is not None
        and reference_flagged_share is not None
    ):
        now, before = float(flagged_share), float(reference_flagged_share)
        change = abs(now - before)
        breached = _above(change, t.max_flagged_share_change)
        msg = (
            f"flagged share moved from {_fmt(before)} to {_fmt(now)} "
            f"(change {_fmt(change)} > {_fmt(t.max_flagged_share_change)}) "
            "against the look-back window"
            if breached
            else f"flagged share {_fmt(now)} (look-back {_fmt(before)}, change {_fmt(change)})"
        )
        checks.append(
            _check("flagged_share_change", change, t.max_flagged_share_change, breached, msg)
        )

    now_median, ref_median = _median(campaign_scores), _median(reference_scores)
    if now_median is not None and ref_median is not None:
        shift = now_median - ref_median
        breached = _above(abs(shift), t.max_score_shift)
        msg = (
            f"median campaign score moved by {shift:+.4g} ({_fmt(ref_median)} -> "
            f"{_fmt(now_median)}), more than {_fmt(t.max_score_shift)} "
            "against the look-back window"
            if breached
            else f"median campaign score {_fmt(now_median)} "
            f"(look-back {_fmt(ref_median)}, shift {shift:+.4g})"
        )
        checks.append(_check("score_shift", abs(shift), t.max_score_shift, breached, msg))

    degraded = any(c["breached"] for c in checks)
    for c in checks:
        if c["breached"]:
            log.warning("health check %s breached: %s", c["name"], c["message"])
    return {
        "status": "degraded" if degraded else "ok",
        "checks": checks,
        "psi": {name: _round(v) for name, v in psi.items()},
    }
