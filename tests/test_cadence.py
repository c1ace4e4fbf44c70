"""Timer-driven device pools are found by their clock, and independent devices are not."""

from __future__ import annotations

import numpy as np
import pandas as pd

from anomaly.cadence import timer_pools


def _events(seed: int, with_pool: bool) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # 600 uses of 40 shared devices at random times (families, kiosks): no common clock
    t_other = rng.uniform(0, 86_400, 600)
    d_other = rng.integers(0, 40, 600).astype(str)
    devices = [f"o{d}" for d in d_other]
    times = list(t_other)
    is_pool = [False] * 600
    if with_pool:
        # one use every 150 s +- 2 s, round-robin over a pool of 20 devices, for 16 hours
        gaps = 150 + rng.uniform(-2, 2, 384)
        t_pool = 3_600 + np.cumsum(gaps)
        devices += [f"p{i % 20}" for i in rng.permutation(384)]
        times += list(t_pool)
        is_pool += [True] * 384
    return pd.Series(devices), np.asarray(times), np.asarray(is_pool)


def test_finds_the_pool_exactly() -> None:
    devices, times, is_pool = _events(0, with_pool=True)
    pools = timer_pools(devices, times)
    assert len(pools) == 1
    found = np.zeros(len(times), dtype=bool)
    found[pools[0]] = True
    np.testing.assert_array_equal(found, is_pool)


def test_no_pool_in_independent_arrivals() -> None:
    for seed in range(5):
        devices, times, _ = _events(seed, with_pool=False)
        assert timer_pools(devices, times) == []


def test_order_of_rows_does_not_matter() -> None:
    devices, times, is_pool = _events(1, with_pool=True)
    perm = np.random.default_rng(2).permutation(len(times))
    pools = timer_pools(devices.iloc[perm].reset_index(drop=True), times[perm])
    assert len(pools) == 1 and is_pool[perm][pools[0]].all()
    assert len(pools[0]) == is_pool.sum()
