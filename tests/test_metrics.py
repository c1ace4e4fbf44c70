"""Prometheus textfile metrics of a run."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from pipelines.metrics import write_metrics


def _record(**kw: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "run_id": "run-0123456789abcdef",
        "code_version": "0.1.0",
        "created_at": "2026-03-01T23:59:59+00:00",
        "inputs": {
            "senders": {"rows_read": 40_000, "rows_rejected": 0, "path": "s.parquet"},
            "signups": {"rows_read": 20_000, "rows_rejected": 12, "path": "u.parquet"},
        },
        "counts": {
            "senders": {
                "clusters": 9,
                "flagged_campaigns": 2,
                "rules": 3,
                "rules_enforce": 3,
                "noise_share": 0.91,
            },
            "signups": {
                "clusters": 31,
                "flagged_campaigns": 6,
                "rules": 10,
                "rules_enforce": 7,
                "noise_share": 0.8,
            },
        },
        "timings": {"read": 1.5, "features": 3.25, "outputs": 0.5},
    }
    record.update(kw)
    return record


def _samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_write_metrics_values(tmp_path: Path) -> None:
    path = tmp_path / "textfile" / "campaigns.prom"
    health = {"status": "degraded", "checks": [], "psi": {"ip_prefix24_count": 0.41, "b": 0.02}}
    write_metrics(path, _record(), health)
    m = _samples(path)
    assert m[("campaigns_rows_read", (("kind", "signups"),))] == 20_000
    assert m[("campaigns_rows_read", (("kind", "senders"),))] == 40_000
    assert m[("campaigns_rows_rejected", (("kind", "signups"),))] == 12
    assert m[("campaigns_stage_duration_seconds", (("stage", "features"),))] == 3.25
    assert m[("campaigns_clusters", (("kind", "signups"),))] == 31
    assert m[("campaigns_flagged_campaigns", (("kind", "senders"),))] == 2
    assert m[("campaigns_noise_share", (("kind", "senders"),))] == 0.91
    assert m[("campaigns_rules", (("kind", "signups"), ("status", "enforce")))] == 7
    assert m[("campaigns_rules", (("kind", "signups"), ("status", "shadow")))] == 3
    assert m[("campaigns_rules", (("kind", "senders"), ("status", "shadow")))] == 0
    assert m[("campaigns_drift_psi", (("feature", "ip_prefix24_count"),))] == 0.41
    assert m[("campaigns_run_degraded", ())] == 1
    ts = datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC).timestamp()
    assert m[("campaigns_last_run_timestamp_seconds", ())] == ts
    info = (("code_version", "0.1.0"), ("run_id", "run-0123456789abcdef"))
    assert m[("campaigns_run_info", info)] == 1
    # only the target is left behind: the temporary file was renamed
    assert [p.name for p in path.parent.iterdir()] == ["campaigns.prom"]


def test_write_metrics_is_deterministic_and_replaces(tmp_path: Path) -> None:
    a, b = tmp_path / "a.prom", tmp_path / "b.prom"
    write_metrics(a, _record(), {"status": "ok", "checks": [], "psi": {"x": 0.1}})
    write_metrics(b, _record(), {"status": "ok", "checks": [], "psi": {"x": 0.1}})
    assert a.read_bytes() == b.read_bytes()
    write_metrics(a, _record(run_id="run-2"), None)
    m = _samples(a)
    assert (("campaigns_run_info", (("code_version", "0.1.0"), ("run_id", "run-2")))) in m
    assert not any(name == "campaigns_run_info" and "run-0" in str(lb) for name, lb in m)


def test_write_metrics_health_absent_or_from_record(tmp_path: Path) -> None:
    path = tmp_path / "m.prom"
    record = _record()
    del record["created_at"]
    write_metrics(path, record)
    names = {name for name, _ in _samples(path)}
    assert "campaigns_run_degraded" not in names
    assert "campaigns_last_run_timestamp_seconds" not in names
    assert "campaigns_drift_psi" not in names
    assert "campaigns_clusters" in names

    record["health"] = {"status": "ok", "checks": [], "psi": {"f": 0.0}}
    write_metrics(path, record)
    m = _samples(path)
    assert m[("campaigns_run_degraded", ())] == 0
    assert m[("campaigns_drift_psi", (("feature", "f"),))] == 0.0


def test_write_metrics_rules_by_status_mapping(tmp_path: Path) -> None:
    path = tmp_path / "m.prom"
    record = _record(counts={"signups": {"rules": {"enforce": 4, "shadow": 1, "expired": 2}}})
    write_metrics(path, record)
    m = _samples(path)
    assert m[("campaigns_rules", (("kind", "signups"), ("status", "expired")))] == 2
    assert m[("campaigns_rules", (("kind", "signups"), ("status", "enforce")))] == 4


def test_write_metrics_minimal_record(tmp_path: Path) -> None:
    path = tmp_path / "m.prom"
    write_metrics(path, {"run_id": "r", "created_at": "2026-03-01T00:00:00"})
    m = _samples(path)
    assert (
        m[("campaigns_last_run_timestamp_seconds", ())]
        == datetime(2026, 3, 1, tzinfo=UTC).timestamp()
    )
    assert m[("campaigns_run_info", (("code_version", ""), ("run_id", "r")))] == 1


def test_write_metrics_timestamp_of_a_bare_date(tmp_path: Path) -> None:
    path = tmp_path / "m.prom"
    write_metrics(path, _record(created_at="2026-03-01"))
    expected = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
    assert _samples(path)[("campaigns_last_run_timestamp_seconds", ())] == expected
    write_metrics(path, _record(created_at=date(2026, 3, 1)))
    assert _samples(path)[("campaigns_last_run_timestamp_seconds", ())] == expected
    write_metrics(path, _record(created_at="last night"))  # not a date: left out, no error
    assert ("campaigns_last_run_timestamp_seconds", ()) not in _samples(path)
