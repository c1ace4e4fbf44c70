"""The nightly campaign-detection job: one date in, a published bundle (or a kept one) out.

``campaigns nightly --date YYYY-MM-DD`` (:func:`run_nightly`):

1. takes the store's lock (``<store>.lock``; a second run exits 3);
2. reads the date's partition of every kind, ``<input_dir>/<kind>/<date>.<ext>`` or a folder
   ``<input_dir>/<kind>/<date>/``, and the ``lookback_days`` before it as background;
3. measures the published rules on tonight's rows (their live hits);
4. runs detection with campaign identity (tonight's campaigns keep the ids, first-seen dates
   and rule ids of the campaigns they continue) and the rule lifecycle (rules of campaigns
   not seen tonight stay until they expire; shadow rules that kept to their forecast are
   promoted; rules past the blast-radius cap are demoted; every change is audited), with
   what analysts said (:mod:`pipelines.review`): the store's allowlist entries, a label model
   fitted on the evidence of labelled campaigns (it decides the flags when the labels hold
   both classes; the record says what it changed), and rule approvals and rejections;
5. checks drift and health against the look-back window;
6. writes the run folder ``<out_dir>/runs/<date>/``, replaces the date's records in the store
   in one transaction, and publishes the bundle to ``<out_dir>/rules/`` only when the run is
   healthy and no later night has been published; a degraded run keeps the last good bundle
   published and exits 4 with what moved;
7. writes Prometheus metrics (textfile collector format).

Rerunning a date reads the same inputs and the same store state (only nights before the date)
and so writes the same files, byte for byte, replacing its store records. Every file is written
atomically and the store commits once, so a run killed at any point leaves the previous bundle
published and the store as it was; the next run needs no repair.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import date as Date
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anomaly.atomic import atomic_write_text
from anomaly.export import apply_bundle, load_bundle, publish_bundle
from anomaly.rules import Rule, canonical_json
from clustering.kinds import BUILTIN_KINDS, get_kind, register_spec
from pipelines.config import JobConfig
from pipelines.readers import SUFFIX_FORMATS, InputError, ReadResult, read_events
from pipelines.review import (
    RuleDecision,
    apply_decisions,
    campaign_evidence,
    label_model_effect,
    mark_applied,
    night_review,
)
from pipelines.stages import Stages
from pipelines.store import Store, store_lock

log = logging.getLogger(__name__)

__all__ = ["EXIT_DEGRADED", "EXIT_LOCKED", "NightlyResult", "partition_path", "run_nightly"]

EXIT_LOCKED = 3
EXIT_DEGRADED = 4
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass
class NightlyResult:
    """What one night did."""

    date: str
    run_id: str
    status: str  # "ok" or "degraded"
    published: bool
    bundle_id: str
    run_dir: Path
    message: str
    health: dict[str, Any]
    exit_code: int
    audit: list[dict[str, Any]] = field(default_factory=list)


# ------------------------------------------------------------------------------ inputs


def _parse_date(text: str) -> Date:
    if not _DATE.match(text):
        raise InputError(f"--date {text!r}: expected YYYY-MM-DD")
    try:
        return Date.fromisoformat(text)
    except ValueError as e:
        raise InputError(f"--date {text!r}: {e}") from None


def partition_path(input_dir: Path, kind: str, day: str) -> Path | None:
    """The partition of ``kind`` for ``day``: ``<kind>/<day>/`` or ``<kind>/<day>.<ext>``."""
    folder = input_dir / kind
    found = [
        p for p in [folder / day, *(folder / f"{day}{s}" for s in SUFFIX_FORMATS)] if p.exists()
    ]
    if len(found) > 1:
        names = ", ".join(str(p) for p in found)
        raise InputError(f"{folder}: several partitions for {day} ({names}); keep one")
    return found[0] if found else None


def _kinds(config: JobConfig, input_dir: Path) -> list[str]:
    nc = config.nightly
    if nc.kinds:
        return sorted(nc.kinds)
    spec_kinds = [get_kind(k).name for k in _spec_kinds(config)]
    found = [k for k in (*BUILTIN_KINDS, *spec_kinds) if (input_dir / k).is_dir()]
    if not found:
        raise InputError(
            f"{input_dir}: no partition folders; expected {input_dir}/<kind>/<date>.<ext> "
            f"for a kind among {', '.join((*BUILTIN_KINDS, *spec_kinds))}"
        )
    return sorted(found)


def _spec_kinds(config: JobConfig) -> list[str]:
    from clustering.spec import load_spec

    return [register_spec(load_spec(p)).name for p in config.nightly.specs]


def _read_night(
    input_dir: Path, kinds: list[str], day: Date, lookback: int
) -> tuple[dict[str, ReadResult], dict[str, list[ReadResult]], dict[str, list[str]]]:
    tonight: dict[str, ReadResult] = {}
    history: dict[str, list[ReadResult]] = {}
    history_days: dict[str, list[str]] = {}
    for kind in kinds:
        path = partition_path(input_dir, kind, day.isoformat())
        if path is None:
            exts = "|".join(s.lstrip(".") for s in SUFFIX_FORMATS)
            raise InputError(
                f"{input_dir / kind}: no partition for {day.isoformat()} (expected "
                f"{day.isoformat()}.{{{exts}}} or a folder {day.isoformat()}/)"
            )
        tonight[kind] = read_events(path, kind)
        history[kind], history_days[kind] = [], []
        for back in range(lookback, 0, -1):
            d = (day - timedelta(days=back)).isoformat()
            p = partition_path(input_dir, kind, d)
            if p is not None:
                history[kind].append(read_events(p, kind))
                history_days[kind].append(d)
    return tonight, history, history_days


# ------------------------------------------------------------------------ identity


class _Identity:
    """Campaign identity for :func:`pipelines.job.detect`: keeps what it decided."""

    def __init__(
        self,
        previous: dict[str, pd.DataFrame],
        day: str,
        min_overlap: float,
        max_distance: float | None,
    ) -> None:
        self.previous, self.day = previous, day
        self.min_overlap, self.max_distance = min_overlap, max_distance
        self.matches: dict[str, pd.DataFrame] = {}
        self.ended: dict[str, pd.DataFrame] = {}
        self.centroids: dict[str, dict[str, np.ndarray]] = {}

    def __call__(
        self,
        kind: str,
        campaigns: pd.DataFrame,
        members: dict[str, np.ndarray],
        entity_ids: np.ndarray,
        X: np.ndarray,
    ) -> dict[str, str]:
        from anomaly.identity import ended_campaigns, match_campaigns

        row_of = pd.Index(entity_ids.astype(str))
        ids = sorted(set(campaigns["campaign_id"]))
        cents = {}
        for c in ids:
            rows = row_of.get_indexer(members.get(c, np.array([], dtype=str)).astype(str))
            rows = rows[rows >= 0]
            cents[c] = X[rows].mean(axis=0) if len(rows) else None
        tonight = pd.DataFrame(
            {
                "campaign_id": ids,
                "kind": kind,
                "members": [
                    tuple(sorted(members.get(c, np.array([], dtype=str)).astype(str))) for c in ids
                ],
                "centroid": [cents[c] for c in ids],
            }
        )
        previous = self.previous.get(kind, pd.DataFrame(columns=["campaign_id", "members"]))
        previous = previous.assign(
            centroid=[
                None if c is None else np.asarray(c, dtype=np.float32)
                for c in previous.get("centroid", pd.Series(dtype=object))
            ]
        )
        if len(previous):
            matched = match_campaigns(
                tonight,
                previous[["campaign_id", "kind", "first_seen", "last_seen", "members", "centroid"]],
                min_overlap=self.min_overlap,
                max_centroid_distance=self.max_distance,
            )
            gone = ended_campaigns(matched, previous)
        else:
            matched = pd.DataFrame(
                {
                    "provisional_id": ids,
                    "campaign_id": ids,
                    "status": "new",
                    "first_seen": None,
                    "parent_id": None,
                    "merged_from": [() for _ in ids],
                    "overlap": np.nan,
                    "distance": np.nan,
                }
            )
            gone = []
        matched["first_seen"] = matched["first_seen"].fillna(self.day)
        self.matches[kind] = matched
        prev = previous.set_index("campaign_id") if len(previous) else None
        self.ended[kind] = pd.DataFrame(
            {
                "date": self.day,
                "kind": kind,
                "campaign_id": gone,
                "first_seen": [
                    prev.at[g, "first_seen"] if prev is not None else None for g in gone
                ],
                "last_seen": [prev.at[g, "last_seen"] if prev is not None else None for g in gone],
            }
        )
        rename = dict(zip(matched["provisional_id"], matched["campaign_id"], strict=True))
        self.centroids[kind] = {rename[c]: v for c, v in cents.items() if v is not None}
        return rename


# ------------------------------------------------------------------------ lifecycle


class _Lifecycle:
    """Tonight's rules plus the published ones still alive, through the rule lifecycle.

    Analysts' decisions (:mod:`pipelines.review`) come first: tonight's ones set the status
    (approve -> enforce, reject -> disabled, audited with the analyst as actor); those of
    earlier nights keep holding (``standing``): a rejected rule learned again stays out, an
    approved one learned again at the same version keeps its status. Then the lifecycle
    (expiry, promotion, blast-radius demotion) runs as for any rule.
    """

    def __init__(
        self,
        previous: dict[str, Any] | None,
        nights: list[Any],
        day: str,
        config: JobConfig,
        decisions: list[RuleDecision] | None = None,
        standing: dict[str, str] | None = None,
    ) -> None:
        self.previous, self.nights, self.day, self.config = previous, nights, day, config
        self.decisions, self.standing = decisions or [], standing or {}
        self.audit: list[Any] = []
        self.decided: list[dict[str, str]] = []  # each decision and what it did
        self.kept_out: list[str] = []  # rules learned again that an analyst rejected before

    def __call__(self, rules: list[Rule]) -> list[Rule]:
        from anomaly.lifecycle import LifecyclePolicy, active, apply_lifecycle

        decided_tonight = {d.rule_id for d in self.decisions}
        self.kept_out = sorted(
            r.id
            for r in rules
            if self.standing.get(r.id) == "reject" and r.id not in decided_tonight
        )
        rules = [r for r in rules if r.id not in self.kept_out]
        tonight = {r.id for r in rules}
        carried = []
        for d in (self.previous or {}).get("rules", []):
            if d["id"] not in tonight:
                carried.append(Rule.from_dict(d))
        lc = self.config.lifecycle
        was = {
            d["id"]: d.get("status", d.get("mode")) for d in (self.previous or {}).get("rules", [])
        }
        was_version = {d["id"]: d.get("version") for d in (self.previous or {}).get("rules", [])}
        for r in rules:
            if (
                self.standing.get(r.id) == "approve"
                and was.get(r.id) in ("enforce", "shadow", "canary")
                and was_version.get(r.id) == r.version
            ):
                # an analyst approved this version: the guard's doubts do not undo that
                r.set_status(str(was[r.id]))
                continue
            if r.status != "enforce":
                continue  # the guard kept it in shadow, for reasons it recorded
            if r.id in was:
                # a rule re-learned tonight keeps the status the lifecycle gave it
                r.set_status(was[r.id] if was[r.id] in ("shadow", "canary") else "enforce")
            elif lc.new_rules_start_in_shadow:
                # a new rule proves itself on live traffic before it blocks anything
                r.set_status("shadow")
        policy = LifecyclePolicy(
            promote_after_nights=lc.promote_after_nights,
            forecast_tolerance=lc.forecast_tolerance,
            max_traffic_share=self.config.rules.max_traffic_share,
            actor=lc.actor,
        )
        everything = sorted(rules + carried, key=lambda r: r.id)
        decided, self.decided = apply_decisions(everything, self.decisions, self.day)
        out, events = apply_lifecycle(everything, self.nights, self.day, policy)
        self.audit = [*decided, *events]
        return active(out)


def _live_hits(bundle: dict[str, Any] | None, inputs: dict[str, ReadResult], day: str) -> list[Any]:
    """Hits of every published rule on tonight's rows (shadow rules hit as they would)."""
    from anomaly.lifecycle import RuleNight

    if bundle is None:
        return []
    out = []
    for kind, read in sorted(inputs.items()):
        rules = [d for d in bundle.get("rules", []) if d["kind"] == kind]
        if not rules:
            continue
        matches = apply_bundle(bundle, read.frame, kind)
        hits = matches["rule_id"].value_counts()
        for d in sorted(rules, key=lambda d: d["id"]):
            forecast = float(d.get("backtest", {}).get("expected_hits_per_day", 0.0))
            out.append(
                RuleNight(d["id"], day, int(hits.get(d["id"], 0)), forecast, len(read.frame))
            )
    return out


# --------------------------------------------------------------------------- health


def _psi_per_column(
    kind: str, tonight: pd.DataFrame, reference: pd.DataFrame, bins: int
) -> dict[str, float]:
    """PSI of each feature column of ``kind``'s entity table against the look-back window."""
    from anomaly.drift import categorical_psi, psi
    from clustering.entities import DEFAULT_FEATURES

    spec = DEFAULT_FEATURES[kind]
    out: dict[str, float] = {}
    numeric = [*spec.numeric, *spec.cyclic]
    for col in sorted(set(numeric)):
        if col in tonight and col in reference:
            ref = pd.to_numeric(reference[col], errors="coerce").astype("float64").to_numpy()
            cur = pd.to_numeric(tonight[col], errors="coerce").astype("float64").to_numpy()
            if col in spec.log_scale:
                ref, cur = np.log1p(np.clip(ref, 0, None)), np.log1p(np.clip(cur, 0, None))
            out[f"{kind}.{col}"] = psi(ref, cur, bins=bins)
    for col in sorted(set(spec.categorical) | set(spec.counts)):
        if col in tonight and col in reference and col not in out:
            out[f"{kind}.{col}"] = categorical_psi(reference[col], tonight[col], top=bins)
    return out


def _health(
    result: Any,
    history: dict[str, list[ReadResult]],
    ref_scores: np.ndarray,
    config: JobConfig,
) -> dict[str, Any]:
    from anomaly.drift import check_health
    from clustering.attributes import compute_attributes
    from clustering.entities import entity_table

    psi_all: dict[str, float] = {}
    for kind, kr in sorted(result.kinds.items()):
        frames = [r.frame for r in history.get(kind, [])]
        if not frames:
            continue
        ref_events = pd.concat(frames, ignore_index=True)
        if len(ref_events) > config.nightly.drift_sample:
            ref_events = ref_events.sample(n=config.nightly.drift_sample, random_state=config.seed)
        ref_entities = entity_table(kind, ref_events, compute_attributes(ref_events, kind))
        psi_all.update(_psi_per_column(kind, kr.entities, ref_entities, bins=10))
    labels = np.concatenate([kr.labels for kr in result.kinds.values()])
    # the evidence of what is flagged: the mix of ordinary clusters moves from night to night
    scores = np.concatenate(
        [
            kr.campaigns.loc[kr.campaigns["flagged"], "score"].to_numpy(dtype=float)
            for kr in result.kinds.values()
        ]
    )
    recalls = [float(kr.clusterer.index_recall_) for kr in result.kinds.values()]
    return check_health(
        psi=psi_all,
        n_clusters=int(sum(len(kr.campaigns) for kr in result.kinds.values())),
        noise_share=float(np.mean(labels < 0)) if len(labels) else 0.0,
        index_recall=min(recalls) if recalls else None,
        campaign_scores=scores,
        reference_scores=ref_scores if len(ref_scores) else None,
        thresholds=config.health,
    )


# -------------------------------------------------------------------------- records


def _night_tables(
    day: str,
    result: Any,
    identity: _Identity,
    lifecycle: _Lifecycle,
    nights: list[Any],
    status: str,
    record: dict[str, Any],
    health: dict[str, Any],
    previous: dict[str, Any] | None,
) -> dict[str, pd.DataFrame]:
    assignments = pd.read_parquet(result.out_dir / "assignments.parquet")
    assign = pd.DataFrame(
        {
            "date": day,
            "kind": assignments["kind"].astype(str),
            "entity_id": assignments["entity_id"].astype(str),
            "cluster_id": assignments["cluster_id"].astype("int64"),
            "campaign_id": assignments["campaign_id"].astype("object"),
        }
    )
    camp_rows = []
    for kind, kr in sorted(result.kinds.items()):
        matched = identity.matches.get(kind)
        by_id = matched.set_index("campaign_id") if matched is not None else None
        cents = identity.centroids.get(kind, {})
        for _, c in kr.campaigns.drop_duplicates("campaign_id").iterrows():
            cid = str(c["campaign_id"])
            m = by_id.loc[cid] if by_id is not None and cid in by_id.index else None
            if isinstance(m, pd.DataFrame):
                m = m.iloc[0]
            cent = cents.get(cid)
            camp_rows.append(
                {
                    "date": day,
                    "kind": kind,
                    "campaign_id": cid,
                    "provisional_id": str(m["provisional_id"]) if m is not None else cid,
                    "status": str(m["status"]) if m is not None else "new",
                    "first_seen": str(m["first_seen"]) if m is not None else day,
                    "parent_id": (
                        None
                        if m is None or m["parent_id"] is None or pd.isna(m["parent_id"])
                        else str(m["parent_id"])
                    ),
                    "merged_from": list(m["merged_from"])
                    if m is not None and m["merged_from"] is not None
                    else [],
                    "size": int(kr.campaigns.loc[kr.campaigns["campaign_id"] == cid, "size"].sum()),
                    "score": float(c["score"]),
                    "flagged": bool(c["flagged"]),
                    "reason": str(c["reason"]),
                    "top_attributes": str(c["top_attributes"]),
                    "centroid": None if cent is None else [float(x) for x in cent],
                }
            )
    campaigns = pd.DataFrame(
        camp_rows,
        columns=[
            "date",
            "kind",
            "campaign_id",
            "provisional_id",
            "status",
            "first_seen",
            "parent_id",
            "merged_from",
            "size",
            "score",
            "flagged",
            "reason",
            "top_attributes",
            "centroid",
        ],
    )
    evidence = pd.concat(
        [
            campaign_evidence(kind, kr.campaigns, kr.cluster_scores)
            for kind, kr in sorted(result.kinds.items())
        ]
        or [pd.DataFrame(columns=["kind", "campaign_id", "cluster_id", "evidence"])],
        ignore_index=True,
    )
    evidence.insert(0, "date", day)
    endings = pd.concat(
        [e for e in identity.ended.values()]
        or [pd.DataFrame(columns=["date", "kind", "campaign_id", "first_seen", "last_seen"])],
        ignore_index=True,
    )
    rules = pd.DataFrame(
        [
            {
                "date": day,
                "rule_id": d["id"],
                "version": int(d["version"]),
                "kind": d["kind"],
                "campaign_id": d["campaign_id"],
                "status": d.get("status", d.get("mode")),
                "created_at": d.get("created_at"),
                "expires_at": d.get("expires_at"),
                "forecast": float(d.get("backtest", {}).get("expected_hits_per_day", 0.0)),
                "rule": canonical_json(d).decode(),
            }
            for d in result.bundle["rules"]
        ],
        columns=[
            "date",
            "rule_id",
            "version",
            "kind",
            "campaign_id",
            "status",
            "created_at",
            "expires_at",
            "forecast",
            "rule",
        ],
    )
    status_of = {d["id"]: d.get("status", d.get("mode")) for d in result.bundle["rules"]}
    rule_kinds = {d["id"]: d["kind"] for d in (previous or {}).get("rules", [])}
    rule_nights = pd.DataFrame(
        [
            {
                "date": day,
                "rule_id": n.rule_id,
                "kind": rule_kinds.get(n.rule_id, ""),
                "status": status_of.get(n.rule_id, "removed"),
                "hits": n.hits,
                "forecast": n.forecast,
                "traffic": n.traffic,
            }
            for n in nights
        ],
        columns=["date", "rule_id", "kind", "status", "hits", "forecast", "traffic"],
    )
    audit = pd.DataFrame(
        [
            {
                "date": day,
                "rule_id": e.rule_id,
                "version": int(e.version),
                "from_status": e.from_status,
                "to_status": e.to_status,
                "actor": e.actor,
                "reason": e.reason,
            }
            for e in lifecycle.audit
        ],
        columns=["date", "rule_id", "version", "from_status", "to_status", "actor", "reason"],
    )
    runs = pd.DataFrame(
        [
            {
                "date": day,
                "run_id": result.run_id,
                "status": status,
                "published": False,
                "bundle_id": result.bundle["bundle_id"],
                "message": "; ".join(c["message"] for c in health["checks"] if c["breached"]),
                "record": json.dumps(record, sort_keys=True, default=str),
                "health": json.dumps(health, sort_keys=True),
            }
        ]
    )
    return {
        "runs": runs,
        "assignments": assign,
        "campaigns": campaigns,
        "campaign_evidence": evidence,
        "campaign_endings": endings,
        "rules": rules,
        "rule_nights": rule_nights,
        "rule_audit": audit,
    }


def _past_timeline(store: Store, since: str, day: str) -> pd.DataFrame:
    """Campaigns per night and kind over the look-back window (nights before ``day``)."""
    past = store.query(
        """
        SELECT date, kind, count(*) AS campaigns, count_if(flagged) AS flagged,
               count_if(status = 'new') AS new,
               count_if(status <> 'new') AS continuing
        FROM campaigns WHERE date >= ? AND date < ? GROUP BY date, kind
        """,
        [since, day],
    )
    ended = store.query(
        "SELECT date, kind, count(*) AS ended FROM campaign_endings "
        "WHERE date >= ? AND date < ? GROUP BY date, kind",
        [since, day],
    )
    return past.merge(ended, on=["date", "kind"], how="left")


def _timeline(past: pd.DataFrame, day: str, identity: _Identity, result: Any) -> pd.DataFrame:
    """The look-back window's campaigns per night and kind, and tonight's, for the report."""
    rows = []
    for kind, m in sorted(identity.matches.items()):
        rows.append(
            {
                "date": day,
                "kind": kind,
                "campaigns": len(m),
                "flagged": int(
                    result.kinds[kind].campaigns.drop_duplicates("campaign_id")["flagged"].sum()
                ),
                "new": int((m["status"] == "new").sum()),
                "continuing": int((m["status"] != "new").sum()),
                "ended": len(identity.ended.get(kind, [])),
            }
        )
    out = pd.concat([past, pd.DataFrame(rows)], ignore_index=True)
    out["ended"] = out["ended"].fillna(0).astype(int)
    return out.sort_values(["date", "kind"]).reset_index(drop=True)


# ------------------------------------------------------------------------------ run


def run_nightly(day_text: str, config: JobConfig, *, stages: Stages | None = None) -> NightlyResult:
    """Run the nightly job for ``day_text`` (YYYY-MM-DD) as ``config.nightly`` describes.

    Raises
    ------
    InputError, ConfigError
        Bad date, missing partition, malformed input (exit 2).
    StoreLocked
        Another run holds the store (exit 3).
    """
    from pipelines.job import run_job
    from pipelines.metrics import write_metrics
    from pipelines.report import write_report

    day = _parse_date(day_text)
    d = day.isoformat()
    nc = config.nightly
    if not nc.input_dir or not nc.out_dir:
        from pipelines.config import ConfigError

        raise ConfigError("[nightly] input_dir and out_dir must be set for campaigns nightly")
    input_dir, out = Path(nc.input_dir), Path(nc.out_dir)
    store_path = Path(config.store.path) if config.store.path else out / "campaigns.duckdb"
    stages = stages or Stages(show_progress=False)
    since = (day - timedelta(days=nc.lookback_days)).isoformat()
    from anomaly.lifecycle import RuleNight

    with store_lock(store_path):
        with stages.stage("read inputs"):
            kinds = _kinds(config, input_dir)
            inputs, history, history_days = _read_night(input_dir, kinds, day, nc.lookback_days)
        # The store is open only to read the nights before this one and, at the end, to
        # record it: analysts' read-only connections are refused while a process writes.
        with Store(store_path) as store:
            prev_night = store.last_published(before=d)
            past_nights = [
                RuleNight(r.rule_id, r.date, int(r.hits), float(r.forecast), int(r.traffic))
                for r in store.rule_nights(since, d).itertuples()
            ]
            previous = {k: store.campaigns_before(d, k, since) for k in kinds}
            ref_scores = store.query(
                "SELECT score FROM campaigns WHERE date >= ? AND date < ? AND score IS NOT NULL "
                "AND flagged",
                [since, d],
            )["score"].to_numpy(dtype=float)
            past_timeline = _past_timeline(store, since, d)
            # analysts' allowlist entries (on a copy of the configuration: the caller's is
            # left alone), label models and rule decisions
            review = night_review(store, d, config, kinds)
            config = review.config
        prev_bundle = None
        if prev_night is not None:
            prev_bundle = load_bundle(out / "runs" / prev_night["date"] / "rules" / "bundle.json")
        with stages.stage("live rule hits"):
            nights_tonight = _live_hits(prev_bundle, inputs, d)
        identity = _Identity(previous, d, nc.min_overlap, nc.max_centroid_distance or None)
        lifecycle = _Lifecycle(
            prev_bundle,
            past_nights + nights_tonight,
            d,
            config,
            decisions=review.decisions,
            standing=review.standing,
        )
        run_dir = out / "runs" / d
        result = run_job(
            inputs,
            run_dir,
            config,
            stages=stages,
            history=history,
            identify=identity,
            label_model=review.label_models,
            finalize_rules=lifecycle,
            previous_bundle=prev_bundle,
            report=False,
            record_timings=False,
        )
        with stages.stage("health"):
            health = _health(result, history, ref_scores, config)
        status = str(health["status"])
        record = {
            **result.record,
            "nightly": {
                "date": d,
                "lookback_days": nc.lookback_days,
                "history_days": history_days,
                "previous_published": prev_night["date"] if prev_night else None,
                "status": status,
                "review": {
                    **review.record,
                    "label_model": {
                        kind: {
                            **fitted,
                            "effect": label_model_effect(
                                result.kinds[kind].cluster_scores, result.kinds[kind].campaigns
                            )
                            if kind in result.kinds
                            else None,
                        }
                        for kind, fitted in sorted(review.record["label_model"].items())
                    },
                    "decisions": lifecycle.decided,
                    "rejected_earlier": lifecycle.kept_out,
                },
            },
            "health": health,
        }
        with stages.stage("report"):
            write_report(
                run_dir / "report.html",
                record,
                result.kinds,
                result.bundle,
                timeline=_timeline(past_timeline, d, identity, result),
                health=health,
            )
        atomic_write_text(
            run_dir / "run.json", json.dumps(record, indent=2, sort_keys=True, default=str) + "\n"
        )
        tables = _night_tables(
            d, result, identity, lifecycle, nights_tonight, status, record, health, prev_bundle
        )
        with Store(store_path) as store:
            with stages.stage("store"):
                store.replace_night(d, tables)
                latest = store.last_published()
            newer = latest is not None and latest["date"] > d
            published = False
            if status == "ok" and not newer:
                with stages.stage("publish"):
                    publish_bundle(out / "rules", result.bundle)
                    store.mark_published(d, result.bundle["bundle_id"])
                    # decisions count as applied once their bundle is published; a degraded
                    # night's are applied again by the next night
                    mark_applied(store, d, review.decisions)
                published = True
        breaches = [c["message"] for c in health["checks"] if c["breached"]]
        if status != "ok":
            kept = str(latest["bundle_id"])[:12] if latest is not None else "none"
            message = f"{d}: run degraded, bundle not published (kept {kept}): " + "; ".join(
                breaches
            )
        elif newer and latest is not None:
            message = f"{d}: rerun of an earlier night; {latest['date']} stays published"
        else:
            message = f"{d}: published {result.bundle['bundle_id'][:12]}"
        metrics_record = {**record, "timings": dict(stages.timings), "created_at": d}
        metrics = Path(nc.metrics_path) if nc.metrics_path else out / "metrics" / "campaigns.prom"
        write_metrics(metrics, metrics_record, health)
    log.info("%s", message)
    return NightlyResult(
        date=d,
        run_id=result.run_id,
        status=status,
        published=published,
        bundle_id=result.bundle["bundle_id"],
        run_dir=run_dir,
        message=message,
        health=health,
        exit_code=EXIT_DEGRADED if status != "ok" else 0,
        audit=[vars(e) for e in lifecycle.audit],
    )
