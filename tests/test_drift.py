"""Drift (PSI) and run health checks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anomaly.drift import PSI_EPSILON, HealthThresholds, check_health, feature_psi, psi
from pipelines.config import ConfigError, JobConfig, load_config


def test_psi_zero_for_identical_samples() -> None:
    x = np.random.default_rng(0).normal(size=5000)
    assert psi(x, x) == 0.0
    assert psi(x, x.copy()[::-1]) == 0.0  # order does not matter


def test_psi_small_for_same_distribution_large_for_shifted() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=20_000)
    same = rng.normal(size=20_000)
    shifted = rng.normal(loc=1.0, size=20_000)
    assert psi(ref, same) < 0.01
    assert psi(ref, shifted) > 0.25
    assert psi(ref, rng.normal(loc=3.0, size=20_000)) > psi(ref, shifted)


def test_psi_hand_computed() -> None:
    # bins=2: one edge at the median 2.5 -> (-inf, 2.5], (2.5, inf)
    # reference shares 0.5 / 0.5, current 0.75 / 0.25
    # PSI = 0.25 ln(0.75/0.5) + (-0.25) ln(0.25/0.5) = 0.25 ln 3
    got = psi(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 1.0, 1.0, 4.0]), bins=2)
    assert got == pytest.approx(0.25 * math.log(3.0), abs=1e-12)


def test_psi_empty_bin_uses_epsilon_floor() -> None:
    # everything tonight beyond the reference's top edge: bin 1 holds 1 vs 0.5, bin 0 0 vs 0.5
    ref = np.array([1.0, 2.0, 3.0, 4.0])
    cur = np.array([9.0, 9.0])
    expected = 0.5 * math.log(1.0 / 0.5) + (PSI_EPSILON - 0.5) * math.log(PSI_EPSILON / 0.5)
    assert psi(ref, cur, bins=2) == pytest.approx(expected, abs=1e-12)


def test_psi_ignores_nans() -> None:
    ref = np.array([1.0, 2.0, np.nan, 3.0, 4.0, np.nan])
    cur = np.array([np.nan, 1.0, 1.0, 1.0, 4.0])
    assert psi(ref, cur, bins=2) == pytest.approx(0.25 * math.log(3.0), abs=1e-12)
    # only NaNs on one side: nothing to compare
    assert psi(ref, np.array([np.nan, np.nan])) == 0.0
    assert psi(np.array([np.nan]), cur) == 0.0


def test_psi_infinite_values_land_in_outer_bins() -> None:
    ref = np.array([1.0, 2.0, 3.0, 4.0, np.inf])
    assert math.isfinite(psi(ref, np.array([1.0, 2.0, 3.0, 4.0, np.inf])))
    assert psi(ref, ref) == 0.0


def test_psi_constant_reference() -> None:
    ref = np.full(100, 3.0)
    assert psi(ref, np.full(50, 3.0)) == 0.0
    # values on either side of the constant are out of range, in bins of their own
    above = psi(ref, np.array([3.0] * 5 + [4.0] * 5))
    below = psi(ref, np.array([3.0] * 5 + [2.0] * 5))
    assert above == pytest.approx(below)
    expected = (0.5 - 1.0) * math.log(0.5) + (0.5 - PSI_EPSILON) * math.log(0.5 / PSI_EPSILON)
    assert above == pytest.approx(expected, abs=1e-12)
    assert above > 0.25


def test_psi_discrete_feature_deduplicates_edges() -> None:
    # mostly ones: many quantiles coincide; still finite and zero for the same shares
    ref = np.array([1.0] * 90 + [2.0] * 5 + [3.0] * 5)
    assert psi(ref, ref[::-1]) == 0.0
    assert psi(ref, np.array([1.0] * 50 + [3.0] * 50)) > 0.25


def test_psi_is_deterministic() -> None:
    rng = np.random.default_rng(7)
    ref, cur = rng.lognormal(size=3000), rng.lognormal(mean=0.2, size=2000)
    assert psi(ref, cur) == psi(ref.copy(), cur.copy())
    assert psi(ref, cur) >= 0.0


def test_psi_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="bins"):
        psi(np.arange(5.0), np.arange(5.0), bins=1)
    with pytest.raises(ValueError, match="1-D"):
        psi(np.ones((3, 2)), np.ones(3))


def test_feature_psi_matrices() -> None:
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(4000, 3))
    cur = rng.normal(size=(3000, 3))
    cur[:, 1] += 2.0
    out = feature_psi(ref, cur, ["a", "b", "c"])
    assert list(out) == ["a", "b", "c"]
    assert out["a"] < 0.05 and out["c"] < 0.05 and out["b"] > 0.25
    assert out["b"] == psi(ref[:, 1], cur[:, 1])
    with pytest.raises(ValueError, match="column counts"):
        feature_psi(ref, cur[:, :2], ["a", "b", "c"])
    with pytest.raises(ValueError, match="unique"):
        feature_psi(ref, cur, ["a", "a", "c"])


def _health(**kw: object) -> dict:
    args: dict = {
        "psi": {"ip_prefix24_count": 0.05, "hour_cos": 0.01},
        "n_clusters": 12,
        "noise_share": 0.6,
        "index_recall": 0.97,
        "campaign_scores": np.array([2.0, 3.0, 4.0]),
        "reference_scores": np.array([2.5, 3.0, 3.5, np.nan]),
        "thresholds": HealthThresholds(),
    }
    args.update(kw)
    return check_health(**args)  # type: ignore[arg-type]


def test_check_health_ok() -> None:
    h = _health()
    assert set(h) == {"status", "checks", "psi"}
    assert h["status"] == "ok"
    names = [c["name"] for c in h["checks"]]
    assert names == [
        "psi:ip_prefix24_count",
        "psi:hour_cos",
        "min_clusters",
        "noise_share",
        "index_recall",
        "score_shift",
    ]
    for c in h["checks"]:
        assert set(c) == {"name", "value", "threshold", "breached", "message"}
        assert isinstance(c["value"], float) and isinstance(c["threshold"], float)
        assert c["breached"] is False
    assert h["psi"] == {"ip_prefix24_count": 0.05, "hour_cos": 0.01}


def test_check_health_psi_breach_message() -> None:
    h = _health(psi={"ip_prefix24_count": 0.41, "hour_cos": 0.01})
    assert h["status"] == "degraded"
    (c,) = [c for c in h["checks"] if c["breached"]]
    assert c["name"] == "psi:ip_prefix24_count"
    assert c["message"] == (
        "feature ip_prefix24_count drifted: PSI 0.41 > 0.25 against the look-back window"
    )
    assert (c["value"], c["threshold"]) == (0.41, 0.25)


@pytest.mark.parametrize(
    ("kw", "name", "words"),
    [
        ({"n_clusters": 0}, "min_clusters", "only 0 clusters found"),
        (
            {"n_clusters": 80, "thresholds": HealthThresholds(max_clusters=50)},
            "max_clusters",
            "80 clusters found, more than the maximum 50",
        ),
        ({"noise_share": 0.99}, "noise_share", "noise share 0.99 > 0.95"),
        ({"index_recall": 0.3}, "index_recall", "recall 0.3 < 0.5"),
        (
            {"campaign_scores": np.array([5.0, 6.0])},
            "score_shift",
            "median campaign score moved by +2.5 (3 -> 5.5)",
        ),
        (
            {
                "flagged_share": 0.2,
                "reference_flagged_share": 0.02,
                "thresholds": HealthThresholds(max_flagged_share_change=0.05),
            },
            "flagged_share_change",
            "flagged share moved from 0.02 to 0.2",
        ),
        ({"noise_share": float("nan")}, "noise_share", "noise share nan"),
    ],
)
def test_check_health_breaches(kw: dict, name: str, words: str) -> None:
    h = _health(**kw)
    assert h["status"] == "degraded"
    breached = [c for c in h["checks"] if c["breached"]]
    assert [c["name"] for c in breached] == [name]
    assert words in breached[0]["message"]


def test_check_health_optional_checks_skipped() -> None:
    h = _health(index_recall=None, reference_scores=None)
    names = {c["name"] for c in h["checks"]}
    assert "index_recall" not in names and "score_shift" not in names
    assert "max_clusters" not in names and "flagged_share_change" not in names
    # flagged share needs both shares and a threshold
    h = _health(flagged_share=0.5, thresholds=HealthThresholds(max_flagged_share_change=0.1))
    assert "flagged_share_change" not in {c["name"] for c in h["checks"]}
    # no campaigns tonight: no median to compare
    h = _health(campaign_scores=np.array([]))
    assert "score_shift" not in {c["name"] for c in h["checks"]}


def test_check_health_rounding_is_stable() -> None:
    rng = np.random.default_rng(11)
    ref, cur = rng.normal(size=(2000, 2)), rng.normal(loc=0.3, size=(1500, 2))
    runs = [
        json.dumps(
            _health(psi=feature_psi(ref, cur, ["x", "y"]), noise_share=1 / 3), sort_keys=True
        )
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    h = json.loads(runs[0])
    for v in h["psi"].values():
        assert v == round(v, 6)
    ns = next(c for c in h["checks"] if c["name"] == "noise_share")
    assert ns["value"] == 0.333333


def test_health_thresholds_in_config(tmp_path: Path) -> None:
    assert JobConfig().health == HealthThresholds()
    # defaults stay out of a plain run's parameters (and so of its run id and bundle)
    assert "health" not in JobConfig().to_dict()
    path = tmp_path / "config.toml"
    path.write_text(
        "[health]\nmax_psi = 0.3\nmin_clusters = 2\nmin_index_recall = 1\nmax_clusters = 50\n"
    )
    cfg = load_config(path)
    assert cfg.to_dict()["health"]["max_psi"] == 0.3
    assert cfg.health.max_clusters == 50  # an optional (None) setting takes a number
    assert cfg.health.max_psi == 0.3
    assert cfg.health.min_clusters == 2
    assert cfg.health.min_index_recall == 1.0
    path.write_text("[health]\nmax_pis = 0.3\n")
    with pytest.raises(ConfigError, match=r"config\.toml.*health\.max_pis"):
        load_config(path)
    path.write_text('[health]\nmax_psi = "high"\n')
    with pytest.raises(ConfigError, match=r"health\.max_psi.*float"):
        load_config(path)


def test_categorical_psi_by_hand() -> None:
    from anomaly.drift import categorical_psi

    ref = pd.Series(["a", "a", "b", "b"])
    assert categorical_psi(ref, ref) == 0.0
    # shares 0.5/0.5 -> 0.75/0.25: 0.25 ln 1.5 + 0.25 ln 2
    got = categorical_psi(ref, pd.Series(["a", "a", "a", "b"]))
    assert got == pytest.approx(0.25 * np.log(1.5) + 0.25 * np.log(2.0))
    # values outside the reference's top ones share one bin, missing ones another
    few = categorical_psi(ref, pd.Series(["a", "b", "c", None]), top=2)
    assert few == pytest.approx(categorical_psi(ref, pd.Series(["a", "b", "z", None]), top=2))
    assert few > 1.0
