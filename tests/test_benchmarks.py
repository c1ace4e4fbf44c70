"""The benchmark scripts run end to end in their quick (CI) mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from anomaly.detectors import DETECTORS

ROOT = Path(__file__).parents[1]
# the real data (never in the repository): tests that read it skip without it
SHARED_DATA = Path(os.environ.get("CAMPAIGNS_DATA") or ROOT.parent / "shared" / "data")


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
    targets = {t["name"]: t for t in adb["targets"]}
    assert set(targets) == {"ensemble_vs_best_single", "ensemble_above_chance_everywhere"}
    assert targets["ensemble_vs_best_single"]["met"] is crit["ensemble_vs_best_single"]["met"]
    assert adb["non_default_settings"] == []
    assert next(iter(doc)) == "misses"  # misses first
    assert doc["misses"] == [
        {"section": "adbench", **{k: t[k] for k in ("name", "condition", "measured", "required")}}
        for t in adb["targets"]
        if not t["met"]
    ]


def test_quality_skips_missing_data(tmp_path: Path) -> None:
    cmd = [sys.executable, "benchmarks/quality.py", "--data", str(tmp_path / "absent")]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    sections = json.loads(run.stdout)["sections"]
    assert sections["adbench"]["status"] == "skipped"
    assert "absent" in sections["adbench"]["reason"] and "skipped" in run.stderr
    assert {sections[s]["status"] for s in ("spamassassin", "cresci", "sms", "enron")} == {
        "skipped"
    }
    doc = json.loads(run.stdout)
    assert doc["misses"] == [] and set(doc["skipped"]) == set(sections)
    assert doc["protocol"] == "shipped defaults"
    # a data folder from CAMPAIGNS_DATA without an adbench/ folder: skipped too
    env = {**os.environ, "CAMPAIGNS_DATA": str(tmp_path)}
    cmd = [sys.executable, "benchmarks/quality.py", "--sections", "adbench"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    doc = json.loads(run.stdout)
    assert doc["data"] == {"folder": str(tmp_path), "from": "CAMPAIGNS_DATA"}
    assert doc["sections"]["adbench"]["status"] == "skipped"


def _senders_like(folder: Path, seed: int = 0) -> None:
    """``senders.parquet`` and ``labels.parquet`` as in the data's spamassassin_2002 folder:
    people writing to a list from their own mailboxes, and one bulk sender's rotating
    mailboxes on one /24 with one template (spam)."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2002-08-01", tz="UTC")
    words = "list kernel patch build mail thanks question release driver meeting".split()
    domains = ["example.org", "mail.example.com", "uni.example.edu", "isp.example.net"]
    rows, labels = [], []
    for p in range(160):
        sender = f"{rng.choice(words)}.{p}@{rng.choice(domains)}"
        ip = f"{rng.integers(11, 220)}.{rng.integers(0, 255)}.{rng.integers(0, 255)}.{p % 250}"
        for _ in range(int(rng.integers(1, 4))):
            subject = " ".join(rng.choice(words, size=int(rng.integers(2, 6))))
            rows.append((sender, ip, f"Re: {subject}", f"{subject} see you", None))
            labels.append(0)
    for b in range(90):
        mailer = "Bulk Mailer 3.1"
        body = f"Cheap meds! Order now at http://pills-{b % 3}.example.biz/ref{b}"
        subject = f"Cheap meds {rng.integers(10, 99)}% off"
        rows.append((f"deals{1000 + b}@promo.example.biz", f"203.0.113.{b}", subject, body, mailer))
        labels.append(1)
    ids = [f"m{i:05d}" for i in range(len(rows))]
    times = [t0 + pd.Timedelta(minutes=int(m)) for m in rng.integers(0, 60 * 24 * 60, len(rows))]
    senders = pd.DataFrame(rows, columns=["sender", "sender_ip", "subject", "body", "x_mailer"])
    senders.insert(0, "sent_at", pd.Series(times, dtype="datetime64[us, UTC]"))
    senders.insert(0, "message_id", ids)
    folder.mkdir(parents=True)
    senders.to_parquet(folder / "senders.parquet", index=False)
    groups = np.where(np.array(labels) == 1, "spam-1", "easy-ham-1")
    pd.DataFrame({"message_id": ids, "label": labels, "group": groups}).to_parquet(
        folder / "labels.parquet", index=False
    )


def _check_spamassassin(sec: dict[str, Any], splits: set[str]) -> None:
    """The figures the spamassassin section promises, whatever their values."""
    assert sec["status"] == "ok", sec
    assert set(sec["splits"]) == splits
    for split in sec["splits"].values():
        rules = split["rules"]
        assert {"rules_on_a", "rule_statuses", "half_a_rows", "half_b_rows"} <= set(rules)
        for status in ("enforce", "shadow", "all"):
            assert {"recall", "precision", "ham_rate", "ham_matched"} <= set(rules[status])
        assert {"clusters", "spam_in_pure_clusters", "flagged"} <= set(split["a"])
    assert {"precision", "recall", "flagged_campaigns"} <= set(sec["flagged"])
    assert 0 <= sec["spam_in_pure_clusters"] <= 1
    assert sec["non_default_settings"] == []  # the built-in kind with JobConfig()
    (goal,) = sec["targets"]
    assert goal["name"] == "enforced_rules_seeded_half" and isinstance(goal["met"], bool)
    assert set(goal["measured"]) == {"spam_recall", "ham_hit_rate"}


def test_quality_spamassassin_on_planted_senders(tmp_path: Path) -> None:
    _senders_like(tmp_path / "spamassassin_2002")
    cmd = [sys.executable, "benchmarks/quality.py", "--sections", "spamassassin"]
    run = subprocess.run(
        [*cmd, "--data", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    doc = json.loads(run.stdout)
    sec = doc["sections"]["spamassassin"]
    _check_spamassassin(sec, {"seeded_half", "by_time"})
    labels = pd.read_parquet(tmp_path / "spamassassin_2002" / "labels.parquet")
    assert (sec["messages"], sec["spam_messages"]) == (len(labels), 90)
    assert sec["spam_senders"] == 90 and sec["senders_with_mixed_labels"] == 0
    # the bulk sender's mailboxes share a template, a /24 and a mailer: one pure cluster
    assert sec["spam_in_pure_clusters"] >= 0.5
    unmet = [t["name"] for t in sec["targets"] if not t["met"]]
    assert [m["name"] for m in doc["misses"]] == unmet


@pytest.mark.skipif(
    not (SHARED_DATA / "spamassassin_2002").is_dir(), reason=f"no real data in {SHARED_DATA}"
)
def test_quality_spamassassin_quick_on_the_real_senders() -> None:
    cmd = [sys.executable, "benchmarks/quality.py", "--sections", "spamassassin", "--quick"]
    run = subprocess.run(
        [*cmd, "--data", str(SHARED_DATA)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    sec = json.loads(run.stdout)["sections"]["spamassassin"]
    _check_spamassassin(sec, {"seeded_half"})  # --quick: no split by time
    assert (sec["messages"], sec["spam_messages"]) == (3000, 500)


def test_label_quality_quick_on_synthetic_signups() -> None:
    cmd = [sys.executable, "benchmarks/label_quality.py", "--quick"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    doc = json.loads(run.stdout)
    assert list(doc)[:3] == ["misses", "no_effect", "labels_not_followed"]  # costs first
    (name,) = doc["sets"]
    res = doc["sets"][name]
    assert res["status"] == "ok" and res["clusters"] >= 5
    assert set(res["samplers"]) == {"top", "flagged_and_near_misses"}
    order = [c["score"] for c in res["review_order"]]
    assert order == sorted(order, reverse=True)
    for sampler, per_k in res["samplers"].items():
        assert set(per_k) == {"0", "5", "20"}
        for k in ("5", "20"):
            r = per_k[k]
            assert r["labelled"]["clusters"] == min(int(k), res["clusters"])
            assert r["labelled"]["abuse"] + r["labelled"]["benign"] == r["labelled"]["clusters"]
            assert r["same_clusters"]  # labels change flags, never the clustering
            test = {k: v for k, v in r["overall"]["test"].items() if k != "entities_in_flagged"}
            assert test == {k: res["test"][k] for k in ("precision", "recall")}
            for scope in ("overall", "unlabelled"):
                for fig in ("precision", "recall"):
                    for who in ("test", "with_labels"):
                        v = r[scope][who][fig]
                        assert v is None or 0 <= v <= 1
            if not r["model"]["used"]:  # one class: the test's flags, and said so
                assert r["overall"]["with_labels"] == r["overall"]["test"]
                assert not r["changed_clusters"]
                assert {"set": name, "sampler": sampler, "k": int(k)}.items() <= next(
                    u for u in doc["no_effect"] if (u["sampler"], u["k"]) == (sampler, int(k))
                ).items()
    # the top of the list is the planted campaigns: five labels of one class teach nothing
    assert not res["samplers"]["top"]["5"]["model"]["used"]
    # flags and near misses hold both classes: the missed campaign below the flags is
    # labelled abuse and flagged by its label
    near = res["samplers"]["flagged_and_near_misses"]["5"]
    assert near["model"]["used"] and near["labelled"]["benign"] >= 1
    assert any(
        c["labelled"] and not c["test_flagged"] and c["flagged"] and c["abuse_share"] > 0.5
        for c in near["changed_clusters"]
    )
    for m in doc["misses"]:
        assert m["with_labels"] is None or m["test"] is None or m["with_labels"] < m["test"]
    for c in doc["labels_not_followed"]:
        assert (c["label"] == "abuse") != c["flagged"]


def test_label_quality_skips_missing_data(tmp_path: Path) -> None:
    cmd = [sys.executable, "benchmarks/label_quality.py", "--data", str(tmp_path / "absent")]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    doc = json.loads(run.stdout)
    assert set(doc["sets"]) == {"spamassassin", "cresci", "sms", "enron"}
    assert {s["status"] for s in doc["sets"].values()} == {"skipped"}
    assert doc["misses"] == [] and doc["no_effect"] == [] and doc["labels_not_followed"] == []
