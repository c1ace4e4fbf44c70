"""The benchmark scripts run end to end in their quick (CI) mode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
