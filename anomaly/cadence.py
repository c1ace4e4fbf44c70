"""Timer-driven pools: a device pool driven by one scheduler.

A farm that looks like ordinary people in every field can still give itself away by its
scheduler: one signup every 150 seconds (give or take a second or two), each from the next
device of a pool. Among the events of devices that are used several times a day, its events
then form a long chain in which each follows the previous at nearly the same gap, which
independent people do not produce. This module finds the dominant gap, the chains, and the
devices they run through.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["timer_pools"]


def _dominant_gap(t: np.ndarray, tol: float, window: float, min_gap: float) -> float | None:
    """The forward gap (within ``window``) that occurs far more often than chance."""
    ends = np.searchsorted(t, t + window, side="right")
    parts = [t[i + 1 : ends[i]] - t[i] for i in range(len(t))]
    gaps = np.concatenate(parts) if parts else np.zeros(0)
    gaps = gaps[gaps >= min_gap]
    if len(gaps) < 20:
        return None
    width = 2 * tol
    hist, edges = np.histogram(gaps, bins=np.arange(min_gap, window + width, width))
    peak = int(np.argmax(hist))
    expected = len(gaps) / len(hist)
    # a scheduler's gap shows as a peak far above the flat level of independent arrivals
    # (five Poisson standard deviations, and at least twice the level)
    if hist[peak] < max(10.0, 2.0 * expected, expected + 5.0 * np.sqrt(expected)):
        return None
    lo, hi = edges[peak] - tol, edges[peak + 1] + tol
    sel = gaps[(gaps >= lo) & (gaps <= hi)]
    return float(np.median(sel))


def timer_pools(
    values: pd.Series,
    seconds: np.ndarray,
    *,
    min_uses: int = 5,
    tol: float = 3.0,
    window: float = 1800.0,
    min_gap: float = 20.0,
    min_chain: int = 20,
    min_values: int = 3,
) -> list[np.ndarray]:
    """Rows of device pools whose uses are chained by one scheduler's gap.

    Parameters
    ----------
    values : Series of shape (n,)
        The pooled resource of each row (a device id); missing values are ignored.
    seconds : ndarray of shape (n,)
        Event times in seconds.
    min_uses : int
        Only values used at least this often take part (single-use devices are people).
    tol : float
        Allowed deviation from the scheduler's gap, seconds.
    min_chain : int
        Events a chain needs to count.
    min_values : int
        Distinct values a pool needs.

    Returns
    -------
    list of ndarray
        Row positions of all uses of each pool's values, largest pool first.
    """
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    if not (codes >= 0).any():
        return []
    counts = np.bincount(codes[codes >= 0])
    shared = (codes >= 0) & (counts[np.maximum(codes, 0)] >= min_uses)
    rows = np.flatnonzero(shared)
    if len(rows) < min_chain:
        return []
    order = np.argsort(seconds[rows], kind="stable")
    rows = rows[order]
    t = np.asarray(seconds, dtype=np.float64)[rows]
    gap = _dominant_gap(t, tol, window, min_gap)
    if gap is None:
        return []
    # link every event to every event one scheduler gap later: a stranger that happens to
    # fall in the window joins the chain too, but its device's other uses do not
    lo = np.searchsorted(t, t + gap - tol, side="left")
    hi = np.searchsorted(t, t + gap + tol, side="right")
    parent = np.arange(len(t))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in np.flatnonzero(hi > lo):
        for j in range(int(lo[i]), int(hi[i])):
            a, b = find(int(i)), find(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    roots = np.array([find(i) for i in range(len(t))])
    pools: list[np.ndarray] = []
    for root in np.unique(roots):
        chain = np.flatnonzero(roots == root)
        if len(chain) < min_chain:
            continue
        chain_codes, hits = np.unique(codes[rows[chain]], return_counts=True)
        # a device belongs to the pool when most of its uses sit on the chain
        keep = chain_codes[hits >= 0.5 * counts[chain_codes]]
        if len(keep) >= min_values:
            pools.append(np.flatnonzero(np.isin(codes, keep)))
    pools.sort(key=len, reverse=True)
    return pools
