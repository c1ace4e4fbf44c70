"""The benchmark scripts run end to end in their quick (CI) mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from anomaly.detectors import DETECTORS

ROOT = Path(__file__).parents[1]


def test_clustering_benchmark_quick() -> None:
    cmd = [sys.executable, "benchmarks/clustering.py", "--quick", "--methods", "ours", "hdbscan"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    doc = json.loads(run.stdout)
    results = {r["method"]: r for r in doc["results"]}
    assert {"ours", "hdbscan"} <= results.keys()
    for method in ("ours", "hdbscan"):
        assert results[method]["status"] == "ok", results[method]
        assert results[method]["n"] == 20_000
    ours = results["ours"]
    assert ours["exact_reference"] in ("sklearn", "fast_hdbscan")
    assert ours["ari_vs_exact"] >= 0.9
    assert ours["n_clusters"] > 0
    assert ours["timings"]  # our step timings (names are the clusterer's)
    assert doc["parameters"]["per_method"]["hdbscan"]["min_samples"] == 9
    assert {"summary", "targets", "machine"} <= doc.keys()


def test_demo_quality_benchmark_runs_as_a_script() -> None:
    # as a script, benchmarks/ comes first on sys.path, where clustering.py would shadow the
    # clustering package
    cmd = [sys.executable, "benchmarks/demo_quality.py", "--seeds", "0"]
    cmd += ["--signups-per-day", "3000", "--messages-per-day", "6000"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    doc = json.loads(run.stdout)
    assert doc["summary"]["floors"]["seeds"] == 1
    assert doc["runs"][0]["signups"]["campaign_rows"] > 0


def _adbench_like(path: Path, seed: int, n: int = 400, d: int = 6) -> None:
    """An ADBench-style .npz: Gaussian inliers and 5% planted anomalies shifted by 4 sd."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.zeros(n, dtype=np.int64)
    planted = rng.choice(n, size=n // 20, replace=False)
    y[planted] = 1
    X[planted] += rng.choice([-4.0, 4.0], size=(len(planted), d))
    np.savez(path, X=X, y=y)


def test_quality_adbench_scores_planted_anomalies(tmp_path: Path) -> None:
    (tmp_path / "adbench").mkdir()
    _adbench_like(tmp_path / "adbench" / "1_planted.npz", seed=1)
    _adbench_like(tmp_path / "adbench" / "2_planted.npz", seed=2, d=12)
    cmd = [sys.executable, "benchmarks/quality.py", "--sections", "adbench"]
    run = subprocess.run(
        [*cmd, "--data", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    doc = json.loads(run.stdout)
    assert set(doc["sections"]) == {"adbench"}
    assert doc["machine"]["cpu_count"] and doc["machine"]["versions"]["pyod"]
    adb = doc["sections"]["adbench"]
    assert adb["status"] == "ok"
    assert adb["detectors"] == list(DETECTORS)  # every shipped detector, not only the ensemble's
    assert set(adb["sets"]) == {"1_planted", "2_planted"}
    methods = [*DETECTORS, "ensemble"]
    for res in adb["sets"].values():
        assert (res["n"], res["anomaly_share"]) == (400, 0.05)
        for m in methods:
            assert res[m]["status"] == "ok", res[m]
            assert res[m]["roc_auc"] > 0.8, (m, res[m])
            assert 0 < res[m]["average_precision"] <= 1
            assert res[m]["seconds"] >= 0
    assert set(adb["means"]) == set(methods)
    assert adb["means"]["ensemble"]["roc_auc"] > 0.8
    crit = adb["criteria"]
    assert crit["sets"] == 2
    for c in (crit["ensemble_vs_best_single"], crit["ensemble_above_chance_everywhere"]):
        assert isinstance(c["met"], bool) and c["condition"]
    assert crit["ensemble_vs_best_single"]["best_single_detector"] in DETECTORS


def test_quality_skips_missing_data(tmp_path: Path) -> None:
    cmd = [sys.executable, "benchmarks/quality.py", "--data", str(tmp_path / "absent")]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    sections = json.loads(run.stdout)["sections"]
    assert sections["adbench"]["status"] == "skipped"
    assert "absent" in sections["adbench"]["reason"] and "skipped" in run.stderr
    assert {sections[s]["status"] for s in ("cresci", "sms", "enron")} == {"skipped"}
    # a data folder from CAMPAIGNS_DATA without an adbench/ folder: skipped too
    env = {**os.environ, "CAMPAIGNS_DATA": str(tmp_path)}
    cmd = [sys.executable, "benchmarks/quality.py", "--sections", "adbench"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    doc = json.loads(run.stdout)
    assert doc["data"] == {"folder": str(tmp_path), "from": "CAMPAIGNS_DATA"}
    assert doc["sections"]["adbench"]["status"] == "skipped"
