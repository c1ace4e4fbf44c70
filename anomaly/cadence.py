"""Timer-driven pools: devices that act on one shared clock.

A farm that looks like ordinary people in every field can still give itself away by its
scheduler: one signup every 150 seconds, spread over a pool of devices. Each device's events
then sit on the same grid (same period, same phase), which ordinary devices never share. This
module finds such grids per value (a device id) and groups the values that share one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["grid_of", "timer_pools"]


def grid_of(
    seconds: np.ndarray,
    *,
    tol: float = 5.0,
    min_events: int = 6,
    min_period: float = 20.0,
    max_period: float = 3600.0,
) -> tuple[float, float] | None:
    """The (period, phase) grid all of ``seconds`` sit on within ``tol``, or None.

    Candidate periods are the smallest gaps divided by 1-3; the largest candidate that fits
    every event is refined by least squares. The phase is in [0, period).
    """
    t = np.sort(np.asarray(seconds, dtype=np.float64))
    if len(t) < min_events:
        return None
    d = t - t[0]
    gaps = np.diff(t)
    gaps = gaps[gaps > tol]
    if len(gaps) == 0:
        return None
    cands = sorted(
        {
            g / k
            for g in np.sort(gaps)[:4]
            for k in range(1, 13)
            if min_period <= g / k <= max_period
        },
        reverse=True,
    )
    for p in cands:
        fitted = _fit_grid(d, p, tol)
        if fitted is not None:
            period = fitted
            phase = float(np.mean(t - np.round(d / period) * period) % period)
            return period, phase
    return None


def _fit_grid(d: np.ndarray, p: float, tol: float) -> float | None:
    """Refine period ``p`` on a growing window of offsets ``d``; None if some event is off-grid.

    A period guessed from one gap is off by a fraction of a second, which adds up over a day
    of ticks: fit it on the events within a few ticks first, then widen.
    """
    horizon = 8 * p
    while True:
        window = d <= horizon
        k = np.round(d[window] / p)
        if np.any(np.abs(d[window] - k * p) > tol):
            return None
        if k @ k > 0:
            p = float(k @ d[window] / (k @ k))
        if window.all():
            return p
        horizon *= 4


def timer_pools(
    values: pd.Series,
    seconds: np.ndarray,
    *,
    tol: float = 5.0,
    min_events: int = 6,
    min_values: int = 3,
) -> list[np.ndarray]:
    """Groups of rows whose value (e.g. device id) shares one grid with other values.

    Parameters
    ----------
    values : Series of shape (n,)
        The pooled resource of each row (device id); missing values are ignored.
    seconds : ndarray of shape (n,)
        Event times in seconds.
    min_values : int
        A grid must be shared by at least this many values to count as a pool.

    Returns
    -------
    list of ndarray
        Row positions of each pool, largest first.
    """
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    counts = np.bincount(codes[codes >= 0]) if (codes >= 0).any() else np.zeros(0, dtype=int)
    grids: list[tuple[float, float, int]] = []
    for code in np.flatnonzero(counts >= min_events):
        g = grid_of(seconds[codes == code], tol=tol, min_events=min_events)
        if g is not None:
            grids.append((g[0], g[1], int(code)))
    grids.sort()
    used = [False] * len(grids)
    pools: list[np.ndarray] = []
    for i, (p, ph, _) in enumerate(grids):
        if used[i]:
            continue
        members = [i]
        for j in range(i + 1, len(grids)):
            pj, phj, _ = grids[j]
            if abs(pj - p) > 1.0:
                break
            delta = abs(phj - ph) % p
            if not used[j] and min(delta, p - delta) <= 2 * tol:
                members.append(j)
        if len(members) >= min_values:
            for j in members:
                used[j] = True
            rows = np.flatnonzero(np.isin(codes, [grids[j][2] for j in members]))
            pools.append(rows)
    pools.sort(key=len, reverse=True)
    return pools
