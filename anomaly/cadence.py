"""Timer-driven pools: a device pool driven by one scheduler.

A farm that looks like ordinary people in every field can still give itself away by its
scheduler: one signup every 150 seconds (give or take a second or two), each from the next
device of a pool. Among the events of devices that are used several times a day, its events
then form a long chain in which each follows the previous at nearly the same gap, which
independent people do not produce. This module finds the dominant gap, the chains, and the
devices they run through.
"""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd

__all__ = ["timer_pools"]


def _dominant_gap(t: np.ndarray, tol: float, window: float, min_gap: float) -> float | None:
    """The forward gap (within ``window``) that occurs far more often than chance.

    ``t`` is sorted. The gaps are counted, not kept: at a million signups a day the events of
    shared devices have hundreds of millions of gaps within half an hour of each other.
    """
    ends = np.searchsorted(t, t + window, side="right")
    width = 2 * tol
    edges = np.arange(min_gap, window + width, width)
    if len(edges) < 2:
        return None
    hist, n_gaps = _gap_histogram(t, ends, min_gap, edges)
    if n_gaps < 20:
        return None
    peak = int(np.argmax(hist))
    expected = n_gaps / len(hist)
    # a scheduler's gap shows as a peak far above the flat level of independent arrivals
    # (five Poisson standard deviations, and at least twice the level)
    if hist[peak] < max(10.0, 2.0 * expected, expected + 5.0 * np.sqrt(expected)):
        return None
    lo, hi = edges[peak] - tol, edges[peak + 1] + tol
    return float(np.median(_gaps_between(t, ends, max(lo, min_gap), hi)))


@numba.njit(cache=True, nogil=True)
def _gap_histogram(
    t: np.ndarray, ends: np.ndarray, min_gap: float, edges: np.ndarray
) -> tuple[np.ndarray, int]:
    # np.histogram's bins: half-open [a, b), the last one closed
    hist = np.zeros(len(edges) - 1, dtype=np.int64)
    n_gaps = 0
    for i in range(len(t)):
        for j in range(i + 1, ends[i]):
            g = t[j] - t[i]
            if g < min_gap:
                continue
            n_gaps += 1
            if g > edges[-1]:
                continue
            # equal-width bins: the bin is arithmetic, not a binary search per gap (hundreds
            # of millions at a million signups)
            b = int((g - edges[0]) / (edges[1] - edges[0]))
            hist[min(b, len(hist) - 1)] += 1
    return hist, n_gaps


@numba.njit(cache=True, nogil=True)
def _gaps_between(t: np.ndarray, ends: np.ndarray, lo: float, hi: float) -> np.ndarray:
    n = 0
    for i in range(len(t)):
        for j in range(i + 1, ends[i]):
            g = t[j] - t[i]
            if lo <= g <= hi:
                n += 1
    out = np.empty(n)
    n = 0
    for i in range(len(t)):
        for j in range(i + 1, ends[i]):
            g = t[j] - t[i]
            if lo <= g <= hi:
                out[n] = g
                n += 1
    return out


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
