"""Splitting off the part of a cluster that reuses devices or mailboxes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from clustering.pivots import split_on_pivots


def _cluster(n_pool: int, n_other: int, pool_size: int = 10) -> tuple[pd.DataFrame, np.ndarray]:
    """One cluster: ``n_pool`` entities on ``pool_size`` devices, ``n_other`` on their own;
    200 noise entities on their own devices."""
    devices = [f"pool{i % pool_size}" for i in range(n_pool)]
    devices += [f"own{i}" for i in range(n_other)]
    devices += [f"noise{i}" for i in range(200)]
    labels = np.r_[np.zeros(n_pool + n_other, dtype=int), np.full(200, -1)]
    return pd.DataFrame({"device_id": devices}), labels


def test_device_pool_part_is_split_off() -> None:
    ent, labels = _cluster(120, 180)
    out = split_on_pivots(ent, labels, ["device_id"], min_size=25)
    pool = ent["device_id"].str.startswith("pool").to_numpy()
    assert set(out[pool]) == {1}
    assert set(out[~pool & (labels == 0)]) == {0}
    assert (out[labels == -1] == -1).all()
    again = split_on_pivots(ent, labels, ["device_id"], min_size=25)
    np.testing.assert_array_equal(out, again)


def test_no_split_without_an_exclusive_pool_of_enough_members() -> None:
    # every member on its own device: nothing to pivot on
    ent, labels = _cluster(0, 300)
    np.testing.assert_array_equal(split_on_pivots(ent, labels, ["device_id"], min_size=25), labels)
    # a pool smaller than a cluster
    ent, labels = _cluster(20, 280)
    np.testing.assert_array_equal(split_on_pivots(ent, labels, ["device_id"], min_size=25), labels)
    # the pool is the cluster
    ent, labels = _cluster(298, 2)
    np.testing.assert_array_equal(split_on_pivots(ent, labels, ["device_id"], min_size=25), labels)
    # devices also common outside the cluster are no pivot of it
    ent, labels = _cluster(120, 180)
    outside = np.flatnonzero(labels == -1)[:120]
    ent.loc[outside, "device_id"] = [f"pool{i % 10}" for i in range(120)]
    np.testing.assert_array_equal(split_on_pivots(ent, labels, ["device_id"], min_size=25), labels)


def test_missing_columns_and_all_noise_are_left_alone() -> None:
    ent, labels = _cluster(120, 180)
    np.testing.assert_array_equal(
        split_on_pivots(ent, labels, ["email_canonical"], min_size=25), labels
    )
    noise = np.full(len(labels), -1)
    np.testing.assert_array_equal(split_on_pivots(ent, noise, ["device_id"], min_size=25), noise)
