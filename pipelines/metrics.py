"""A run's figures as Prometheus metrics, in the node_exporter textfile-collector format.

The nightly job writes one ``.prom`` file per run; node_exporter's textfile collector (started
with ``--collector.textfile.directory``) exposes it to Prometheus. Every figure comes from the
run record (``run.json``, :func:`pipelines.job._record`) and the health check
(:func:`anomaly.drift.check_health`): the file is a pure function of them, so the same run
always writes the same file. See ``deploy/README.md`` for where it goes and the alert rules.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

log = logging.getLogger(__name__)

__all__ = ["write_metrics"]

PREFIX = "campaigns_"


def _timestamp(value: Any) -> float | None:
    """Seconds since the epoch of an ISO 8601 string, datetime or date (naive = UTC).

    A bare date (``"2026-03-01"``) is midnight UTC at its start.
    """
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            log.warning("run record created_at %r is not ISO 8601; timestamp not written", value)
            return None
    else:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _rules_by_status(counts: Mapping[str, Any]) -> dict[str, float]:
    """Rules per status: a ``{status: n}`` mapping as is, else enforce and shadow from totals."""
    rules = counts.get("rules")
    if isinstance(rules, Mapping):
        return {str(s): float(n) for s, n in sorted(rules.items()) if _number(n) is not None}
    total = _number(rules)
    if total is None:
        return {}
    enforce = _number(counts.get("rules_enforce")) or 0.0
    return {"enforce": enforce, "shadow": total - enforce}


def write_metrics(path: Path, record: dict[str, Any], health: dict[str, Any] | None = None) -> None:
    """Write a run's metrics to ``path`` in the Prometheus text format, atomically.

    Uses a fresh :class:`prometheus_client.CollectorRegistry` (nothing from the process's
    default registry leaks in) and :func:`prometheus_client.write_to_textfile`, which writes a
    temporary sibling and renames it over ``path``: node_exporter never reads half a file.
    Missing parts of the record are skipped, not errors.

    Metrics (all gauges):

    - ``campaigns_rows_read{kind}``, ``campaigns_rows_rejected{kind}`` -- ``inputs``;
    - ``campaigns_stage_duration_seconds{stage}`` -- ``timings``;
    - ``campaigns_clusters{kind}``, ``campaigns_flagged_campaigns{kind}``,
      ``campaigns_noise_share{kind}`` -- ``counts``;
    - ``campaigns_rules{kind,status}`` -- ``counts[kind].rules`` as a ``{status: n}`` mapping,
      or from totals: ``enforce`` = ``rules_enforce``, ``shadow`` = ``rules - rules_enforce``;
    - ``campaigns_drift_psi{feature}`` -- ``health["psi"]``;
    - ``campaigns_run_degraded`` -- 1 if ``health["status"] == "degraded"`` else 0; absent
      when there is no health check;
    - ``campaigns_last_run_timestamp_seconds`` -- ``record["created_at"]`` (ISO 8601 date or
      date-time, or a date/datetime; naive means UTC, a bare date its midnight); absent when
      the record has none. Never the wall clock: the file depends on
      the record only;
    - ``campaigns_run_info{run_id,code_version}`` = 1.

    Parameters
    ----------
    path : Path
        Target file; it must end in ``.prom`` for the textfile collector. Parent folders are
        created.
    record : dict
        The run record (``run.json``).
    health : dict, optional
        :func:`anomaly.drift.check_health`'s result; defaults to ``record["health"]`` when the
        record carries one.
    """
    path = Path(path)
    if not path.name.endswith(".prom"):
        log.warning("metrics file %s does not end in .prom; node_exporter will ignore it", path)
    if health is None and isinstance(record.get("health"), Mapping):
        health = record["health"]
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(PREFIX + name, doc, labelnames=labels, registry=registry)

    inputs: Mapping[str, Any] = record.get("inputs") or {}
    counts: Mapping[str, Any] = record.get("counts") or {}
    timings: Mapping[str, Any] = record.get("timings") or {}

    rows_read = gauge("rows_read", "Input rows read, per entity kind.", ("kind",))
    rows_rejected = gauge("rows_rejected", "Input rows rejected by validation.", ("kind",))
    for kind, info in sorted(inputs.items()):
        if (v := _number(info.get("rows_read"))) is not None:
            rows_read.labels(kind=kind).set(v)
        if (v := _number(info.get("rows_rejected"))) is not None:
            rows_rejected.labels(kind=kind).set(v)

    durations = gauge("stage_duration_seconds", "Wall time of each job stage.", ("stage",))
    for stage, seconds in sorted(timings.items()):
        if (v := _number(seconds)) is not None:
            durations.labels(stage=stage).set(v)

    clusters = gauge("clusters", "Clusters (candidate campaigns) found.", ("kind",))
    flagged = gauge("flagged_campaigns", "Clusters flagged as campaigns.", ("kind",))
    noise = gauge("noise_share", "Share of entities left as noise.", ("kind",))
    rules = gauge("rules", "Rules exported, by mode.", ("kind", "status"))
    for kind, c in sorted(counts.items()):
        for g, key in (
            (clusters, "clusters"),
            (flagged, "flagged_campaigns"),
            (noise, "noise_share"),
        ):
            if (v := _number(c.get(key))) is not None:
                g.labels(kind=kind).set(v)
        for status, n in _rules_by_status(c).items():
            rules.labels(kind=kind, status=status).set(n)

    if health is not None:
        psi = gauge("drift_psi", "PSI of each feature against the look-back window.", ("feature",))
        for feature, value in sorted((health.get("psi") or {}).items()):
            if (v := _number(value)) is not None:
                psi.labels(feature=feature).set(v)
        degraded = gauge("run_degraded", "1 if a health check degraded the run, else 0.")
        degraded.set(1.0 if health.get("status") == "degraded" else 0.0)

    ts = _timestamp(record.get("created_at"))
    if ts is not None:
        gauge("last_run_timestamp_seconds", "created_at of the last run, seconds since epoch.").set(
            ts
        )

    info = gauge("run_info", "The last run's id and code version.", ("run_id", "code_version"))
    info.labels(
        run_id=str(record.get("run_id", "")), code_version=str(record.get("code_version", ""))
    ).set(1.0)

    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
    log.info("metrics written to %s", path)
