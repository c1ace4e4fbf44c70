"""Analysts' review: campaign and entity labels, allowlist entries and rule decisions.

Everything an analyst says is written to the store (``labels``, ``allowlists``,
``rule_decisions``; :mod:`pipelines.store`) and read by the next nightly run
(:func:`pipelines.nightly.run_nightly`, through :func:`night_review`):

- **labels** (``abuse``, ``benign``, ``unsure``) of a campaign or an entity are appended, so
  the history is kept; the latest label of a target wins (:func:`campaign_labels`). Campaign
  labels teach the flagger: every night the store keeps each campaign's coordination evidence
  (:func:`campaign_evidence`), and the next night fits a cluster-level model on the evidence
  of the campaigns labelled ``abuse`` or ``benign`` (:func:`fit_label_model`,
  :class:`anomaly.label_model.LabelModel`), which decides that night's flags when the labels
  hold both classes; the night's record says what it was fitted on and which campaigns it
  flagged or unflagged against the test (:func:`label_model_effect`; ``docs/label_model.md``).
  The values benign campaigns share are proposed as allowlist entries
  (:func:`allowlist_candidates`), never applied by themselves. ``unsure`` labels and entity
  labels change nothing; they are counted in the night's record.
- **allowlist entries** (:func:`add_allowlist`) are checked as the configuration's are
  (:func:`anomaly.export.allowlist_entries`) and join the configured allowlists from the next
  night on: no rule matches them, rule learning leaves their rows out, and the bundle's
  ``allowlists`` hold them.
- **rule decisions** (:func:`review_rule`) wait in ``rule_decisions`` until a published night
  applies them (:func:`apply_decisions`): ``approve`` enforces the rule, even one the guard
  kept in shadow; ``reject`` disables it, so it leaves the bundle. Each change is a
  ``rule_audit`` row naming the analyst. A decision keeps holding on later nights: a rejected
  rule that is learned again stays out of the bundle, and an approved rule learned again
  with the same version keeps the status it had (the guard's doubts do not put it back in
  shadow; a blast-radius demotion still does).

Writes are single statements; the command line (:mod:`pipelines.cli_label`) takes the store's
lock around them so that they never interleave with a nightly run.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from datetime import date as Date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anomaly.export import allowlist_entries
from anomaly.label_model import LabelModel, coordination_decision, evidence_frame, evidence_records
from anomaly.lifecycle import AuditEvent
from anomaly.rules import Rule
from clustering.kinds import get_kind, get_spec
from pipelines.config import Allowlists, JobConfig
from pipelines.store import Store

log = logging.getLogger(__name__)

__all__ = [
    "ALLOWLIST_KINDS",
    "DECISIONS",
    "LABELS",
    "LABEL_CLASSES",
    "LISTS",
    "NightReview",
    "RuleDecision",
    "add_allowlist",
    "allowlist_candidates",
    "allowlist_value",
    "allowlists",
    "apply_decisions",
    "campaign_evidence",
    "campaign_labels",
    "entity_labels",
    "fit_label_model",
    "label_campaign",
    "label_entity",
    "label_model_effect",
    "mark_applied",
    "night_review",
    "pending_decisions",
    "remove_allowlist",
    "review_rule",
    "rule_decisions",
]

LABELS = ("abuse", "benign", "unsure")
LISTS = ("domains", "asns", "prefixes", "ids")
DECISIONS = ("approve", "reject")
# kinds with allowlists in the configuration ([allowlists.<kind>]), which the nightly job
# extends with the store's entries
ALLOWLIST_KINDS = tuple(f.name for f in fields(Allowlists))
# the campaign labels the label model learns from, as its classes (``unsure`` teaches nothing)
LABEL_CLASSES = {"abuse": 1, "benign": 0}
# a domain name as email_domain / sender_domain hold it: two or more non-empty labels
_DOMAIN = re.compile(r"(?=.{1,253}\Z)[^\s./@:;,()\[\]]+(?:\.[^\s./@:;,()\[\]]+)+")


@dataclass(frozen=True)
class RuleDecision:
    """An analyst's decision about one rule, as a night applies it.

    Attributes
    ----------
    rule_id : str
    decision : str
        ``"approve"`` (enforce) or ``"reject"`` (disable).
    analyst : str
        Named as the actor of the audit event.
    reason : str
    """

    rule_id: str
    decision: str
    analyst: str
    reason: str


# ------------------------------------------------------------------------------ checks


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value.strip()


def _timestamp(at: str | None) -> str:
    """``at`` (ISO 8601; naive means UTC) or now, as a UTC ISO string that sorts in time."""
    if at is None:
        return datetime.now(UTC).isoformat(timespec="microseconds")
    try:
        t = datetime.fromisoformat(at)
    except (TypeError, ValueError):
        raise ValueError(f"at {at!r}: expected an ISO 8601 date and time") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat(timespec="microseconds")


def _check_label(label: Any) -> str:
    if label not in LABELS:
        raise ValueError(f"label {label!r} must be one of {', '.join(LABELS)}")
    return str(label)


def _check_allowlist_kind(kind: Any) -> str:
    if kind not in ALLOWLIST_KINDS:
        raise ValueError(
            f"kind {kind!r} has no allowlists; allowlists are kept for {', '.join(ALLOWLIST_KINDS)}"
        )
    return str(kind)


def allowlist_value(kind: str, list_name: str, value: Any) -> str:
    """``value`` as list ``list_name`` of ``kind`` holds it, checked as the configuration's are.

    The checks are those of :func:`anomaly.export.allowlist_entries` (CIDR blocks, ASNs only
    for kinds with an ASN attribute, non-empty values), plus that a domain looks like one.

    Parameters
    ----------
    kind : str
        ``"signups"`` or ``"senders"`` (:data:`ALLOWLIST_KINDS`).
    list_name : str
        ``"domains"``, ``"asns"``, ``"prefixes"`` or ``"ids"``.
    value : str or int

    Returns
    -------
    str
        The normalised value: a lower-cased domain without ``@``, an AS number in decimal, a
        CIDR block with its host bits cleared, an id as given (without surrounding blanks).

    Raises
    ------
    ValueError
        Unknown kind or list, or a value the list cannot hold; the message names the value.
    """
    _check_allowlist_kind(kind)
    if list_name not in LISTS:
        raise ValueError(f"allowlist list {list_name!r} must be one of {', '.join(LISTS)}")
    where = f"allowlist {kind}/{list_name}"
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{where}: {value!r} must be a string")
    if list_name == "domains":
        entry = allowlist_entries(kind, domains=[str(value)])[0]
        domain = str(entry["condition"]["values"][0])
        if not _DOMAIN.fullmatch(domain):
            raise ValueError(f"{where}: {value!r} is not a domain name (like example.com)")
        return domain
    if list_name == "asns":
        text = str(value).strip()
        try:
            asn = int(text[2:] if text[:2].upper() == "AS" else text)
        except ValueError:
            raise ValueError(f"{where}: {value!r} is not an AS number") from None
        if not 0 < asn < 2**32:
            raise ValueError(f"{where}: AS number {value!r} out of range")
        allowlist_entries(kind, asns=[asn])  # kinds without an ASN attribute refuse it
        return str(asn)
    if list_name == "prefixes":
        entry = allowlist_entries(kind, prefixes=[str(value)])[0]
        return str(entry["condition"]["value"])
    ident = _text(str(value), f"{where}: id")
    allowlist_entries(kind, ids=[ident])
    return ident


# ------------------------------------------------------------------------------ labels


def _append_label(
    store: Store,
    kind: str,
    target: str,
    target_id: str,
    label: str,
    analyst: str,
    note: str,
    at: str | None,
) -> dict[str, Any]:
    row = {
        "kind": kind,
        "target": target,
        "target_id": target_id,
        "label": label,
        "analyst": analyst,
        "labelled_at": _timestamp(at),
        "note": note,
    }
    store.execute("INSERT INTO labels VALUES (?, ?, ?, ?, ?, ?, ?)", list(row.values()))
    log.info("%s %s/%s labelled %s by %s", target, kind, target_id, label, analyst)
    return row


def label_campaign(
    store: Store,
    kind: str,
    campaign_id: str,
    label: str,
    analyst: str,
    note: str = "",
    at: str | None = None,
) -> dict[str, Any]:
    """Label campaign ``campaign_id`` of ``kind`` ``abuse``, ``benign`` or ``unsure``.

    The label is appended (earlier ones are kept); the latest one counts.

    Parameters
    ----------
    store : Store
    kind : str
    campaign_id : str
        A persistent campaign id of the store's ``campaigns`` table (any night).
    label : str
        One of :data:`LABELS`.
    analyst : str
    note : str, optional
    at : str, optional
        When (ISO 8601; naive means UTC); default now.

    Returns
    -------
    dict
        The ``labels`` row written.

    Raises
    ------
    ValueError
        Unknown label, empty analyst, or a campaign the store does not hold for ``kind``.
    """
    label = _check_label(label)
    analyst = _text(analyst, "analyst")
    cid = _text(campaign_id, "campaign id")
    kinds = store.query("SELECT DISTINCT kind FROM campaigns WHERE campaign_id = ?", [cid])
    found = sorted(kinds["kind"].astype(str))
    if kind not in found:
        if found:
            raise ValueError(f"campaign {cid!r} is a campaign of {', '.join(found)}, not {kind}")
        raise ValueError(f"campaign {cid!r} is not in the store's campaigns table ({store.path})")
    return _append_label(store, kind, "campaign", cid, label, analyst, note or "", at)


def label_entity(
    store: Store,
    kind: str,
    entity_id: str,
    label: str,
    analyst: str,
    note: str = "",
    at: str | None = None,
) -> dict[str, Any]:
    """Label entity ``entity_id`` of ``kind`` (an account, a sender address, ...).

    As :func:`label_campaign`, for an entity of the store's ``assignments`` table (any
    night).

    Raises
    ------
    ValueError
        Unknown label, empty analyst, or an entity the store does not hold for ``kind``.
    """
    label = _check_label(label)
    analyst = _text(analyst, "analyst")
    eid = _text(entity_id, "entity id")
    n = store.query(
        "SELECT count(*) AS n FROM assignments WHERE kind = ? AND entity_id = ?", [kind, eid]
    )["n"].iloc[0]
    if not n:
        raise ValueError(f"entity {eid!r} of {kind} is not in the store's assignments table")
    return _append_label(store, kind, "entity", eid, label, analyst, note or "", at)


def _latest_labels(store: Store, target: str, kind: str | None) -> pd.DataFrame:
    sql = """
        SELECT kind, target, target_id, label, analyst, labelled_at, note FROM (
            SELECT *, row_number() OVER (
                PARTITION BY kind, target, target_id ORDER BY labelled_at DESC, rowid DESC
            ) AS k
            FROM labels WHERE target = ?
        ) WHERE k = 1
    """
    params: list[Any] = [target]
    if kind is not None:
        sql += " AND kind = ?"
        params.append(kind)
    return store.query(sql + " ORDER BY kind, target_id", params)


def campaign_labels(store: Store, kind: str | None = None) -> pd.DataFrame:
    """The latest label of every labelled campaign (of ``kind``, or of every kind).

    Returns
    -------
    DataFrame
        The ``labels`` columns (``kind``, ``target``, ``target_id``, ``label``, ``analyst``,
        ``labelled_at``, ``note``), one row per campaign, sorted by kind and id.
    """
    return _latest_labels(store, "campaign", kind)


def entity_labels(store: Store, kind: str | None = None) -> pd.DataFrame:
    """The latest label of every labelled entity; columns as :func:`campaign_labels`."""
    return _latest_labels(store, "entity", kind)


# -------------------------------------------------------------------------- allowlists


def add_allowlist(
    store: Store,
    kind: str,
    list_name: str,
    value: Any,
    analyst: str,
    reason: str,
    at: str | None = None,
) -> bool:
    """Add ``value`` to allowlist ``list_name`` of ``kind``; the next night applies it.

    Parameters
    ----------
    store : Store
    kind : str
        One of :data:`ALLOWLIST_KINDS`.
    list_name : str
        One of :data:`LISTS`.
    value : str or int
        Checked and normalised by :func:`allowlist_value`.
    analyst, reason : str
        Who and why (both required).
    at : str, optional
        When (ISO 8601); default now.

    Returns
    -------
    bool
        False when the entry was already on the list (nothing written).

    Raises
    ------
    ValueError
        A value the list cannot hold (a bad CIDR block or domain, ...), empty analyst or
        reason; the message names the value.
    """
    v = allowlist_value(kind, list_name, value)
    analyst = _text(analyst, "analyst")
    reason = _text(reason, "reason")
    have = store.query(
        "SELECT count(*) AS n FROM allowlists WHERE kind = ? AND list = ? AND value = ?",
        [kind, list_name, v],
    )["n"].iloc[0]
    if have:
        log.info("allowlist %s/%s: %s is already on it", kind, list_name, v)
        return False
    store.execute(
        "INSERT INTO allowlists VALUES (?, ?, ?, ?, ?, ?)",
        [kind, list_name, v, analyst, _timestamp(at), reason],
    )
    log.info("allowlist %s/%s: %s added by %s (%s)", kind, list_name, v, analyst, reason)
    return True


def remove_allowlist(store: Store, kind: str, list_name: str, value: Any, analyst: str) -> int:
    """Remove ``value`` from allowlist ``list_name`` of ``kind``; the next night goes without it.

    Returns
    -------
    int
        Rows removed.

    Raises
    ------
    ValueError
        The value is not on the store's list (configured entries are removed from the
        configuration, not here), or is not a value the list could hold.
    """
    v = allowlist_value(kind, list_name, value)
    analyst = _text(analyst, "analyst")
    n = int(
        store.query(
            "SELECT count(*) AS n FROM allowlists WHERE kind = ? AND list = ? AND value = ?",
            [kind, list_name, v],
        )["n"].iloc[0]
    )
    if not n:
        raise ValueError(f"allowlist {kind}/{list_name}: {v!r} is not on the store's allowlist")
    store.execute(
        "DELETE FROM allowlists WHERE kind = ? AND list = ? AND value = ?", [kind, list_name, v]
    )
    log.info("allowlist %s/%s: %s removed by %s", kind, list_name, v, analyst)
    return n


def allowlists(store: Store, kind: str | None = None) -> pd.DataFrame:
    """The store's allowlist entries (of ``kind``, or of every kind), sorted."""
    sql = "SELECT * FROM allowlists"
    params: list[Any] = []
    if kind is not None:
        sql += " WHERE kind = ?"
        params.append(kind)
    return store.query(sql + " ORDER BY kind, list, value", params)


def _store_allowlists(store: Store, kinds: Iterable[str]) -> dict[str, dict[str, list[str]]]:
    rows = allowlists(store)
    out: dict[str, dict[str, list[str]]] = {}
    for kind in sorted(set(kinds) & set(ALLOWLIST_KINDS)):
        mine = rows[rows["kind"] == kind]
        lists = {
            lst: sorted(set(mine.loc[mine["list"] == lst, "value"].astype(str)))
            for lst in LISTS
            if (mine["list"] == lst).any()
        }
        if lists:
            out[kind] = lists
    return out


_TOP = re.compile(r"(?:^|; )(?P<attr>[A-Za-z0-9_]+)=(?P<value>[^;()\s]+) \((?P<share>\d+)%\)")


def allowlist_candidates(store: Store, kind: str) -> pd.DataFrame:
    """Allowlist entries proposed by the labels of ``kind``; nothing is applied.

    Kept simple and explainable:

    - a campaign whose latest label is ``benign`` proposes the values its members share, read
      from its ``top_attributes`` on the last night it was seen (values at least half of its
      members share): its domain (the kind's domain attribute, ``email_domain`` /
      ``sender_domain``), AS number (``ip_asn``) and address blocks (the ``*_prefix24`` /
      ``*_prefix16`` attributes of the kind's address);
    - an entity whose latest label is ``benign`` proposes its id when the kind's entity is its
      row id (signups: ``account_id``).

    Entries already on the store's allowlist are left out.

    Returns
    -------
    DataFrame
        Columns ``kind``, ``list``, ``value``, ``share`` (of the campaign's members; 1.0 for
        an entity), ``source`` (``campaign``, ``entity``), ``target_id``, ``analyst``, sorted
        by list, value and target.
    """
    _check_allowlist_kind(kind)
    attrs = get_spec(kind).allowlist
    cols = ["kind", "list", "value", "share", "source", "target_id", "analyst"]
    rows: list[dict[str, Any]] = []
    benign = campaign_labels(store, kind)
    benign = benign[benign["label"] == "benign"]
    if len(benign):
        latest = store.query(
            """
            SELECT campaign_id, top_attributes FROM (
                SELECT *, row_number() OVER (PARTITION BY campaign_id ORDER BY date DESC) AS k
                FROM campaigns WHERE kind = ?
            ) WHERE k = 1
            """,
            [kind],
        ).set_index("campaign_id")["top_attributes"]
        for cid, analyst in zip(benign["target_id"], benign["analyst"], strict=True):
            for m in _TOP.finditer(str(latest.get(cid) or "")):
                lst = _list_of(m["attr"], attrs)
                if lst is None:
                    continue
                try:
                    value = allowlist_value(kind, lst, m["value"])
                except ValueError:
                    continue
                rows.append(
                    {
                        "kind": kind,
                        "list": lst,
                        "value": value,
                        "share": int(m["share"]) / 100,
                        "source": "campaign",
                        "target_id": cid,
                        "analyst": analyst,
                    }
                )
    k = get_kind(kind)
    if k.entity_column == k.id_column and attrs.get("ids"):
        ents = entity_labels(store, kind)
        for eid, analyst in zip(
            ents.loc[ents["label"] == "benign", "target_id"],
            ents.loc[ents["label"] == "benign", "analyst"],
            strict=True,
        ):
            rows.append(
                {
                    "kind": kind,
                    "list": "ids",
                    "value": str(eid),
                    "share": 1.0,
                    "source": "entity",
                    "target_id": eid,
                    "analyst": analyst,
                }
            )
    out = pd.DataFrame(rows, columns=cols)
    have = allowlists(store, kind)
    known = set(zip(have["list"], have["value"], strict=True))
    new = [(lst, v) not in known for lst, v in zip(out["list"], out["value"], strict=True)]
    out = out[pd.Series(new, index=out.index, dtype=bool)]
    return out.sort_values(["list", "value", "target_id"]).reset_index(drop=True)


def _list_of(attr: str, attrs: dict[str, str | None]) -> str | None:
    """The allowlist an attribute of ``top_attributes`` proposes values for, if any."""
    if attrs.get("domains") == attr:
        return "domains"
    if attrs.get("asns") == attr:
        return "asns"
    ip = attrs.get("prefixes")
    if ip and attr in (f"{ip}_prefix24", f"{ip}_prefix16"):
        return "prefixes"
    return None


# --------------------------------------------------------------------------- decisions


def review_rule(
    store: Store,
    rule_id: str,
    decision: str,
    analyst: str,
    reason: str,
    at: str | None = None,
) -> dict[str, Any]:
    """Record an analyst's ``approve`` or ``reject`` of a rule; the next published night applies it.

    Parameters
    ----------
    store : Store
    rule_id : str
        A rule of the store's ``rules`` table (any night's bundle).
    decision : str
        ``"approve"``: the rule enforces (even one the guard kept in shadow); ``"reject"``:
        the rule is disabled and leaves the bundle.
    analyst, reason : str
        Named in the audit trail (``actor``; ``analyst approved: <reason>``).
    at : str, optional
        When (ISO 8601); default now.

    Returns
    -------
    dict
        The ``rule_decisions`` row written (``applied_date`` None: pending).

    Raises
    ------
    ValueError
        Unknown decision or rule, empty analyst or reason.
    """
    if decision not in DECISIONS:
        raise ValueError(f"decision {decision!r} must be one of {', '.join(DECISIONS)}")
    rid = _text(rule_id, "rule id")
    analyst = _text(analyst, "analyst")
    reason = _text(reason, "reason")
    n = store.query("SELECT count(*) AS n FROM rules WHERE rule_id = ?", [rid])["n"].iloc[0]
    if not n:
        raise ValueError(
            f"rule {rid!r} is not in the store's rules table: no night's bundle had it"
        )
    row = {
        "rule_id": rid,
        "decision": decision,
        "analyst": analyst,
        "decided_at": _timestamp(at),
        "reason": reason,
        "applied_date": None,
    }
    store.execute("INSERT INTO rule_decisions VALUES (?, ?, ?, ?, ?, ?)", list(row.values()))
    log.info("rule %s: %s by %s (%s), pending", rid, decision, analyst, reason)
    return row


def rule_decisions(store: Store, pending_only: bool = False) -> pd.DataFrame:
    """Every rule decision (or the pending ones), in the order they were made."""
    where = " WHERE applied_date IS NULL" if pending_only else ""
    return store.query(f"SELECT * FROM rule_decisions{where} ORDER BY decided_at, rowid")


def pending_decisions(store: Store) -> list[RuleDecision]:
    """The decisions no published night has applied yet, in the order they were made."""
    df = rule_decisions(store, pending_only=True)
    return [
        RuleDecision(str(r.rule_id), str(r.decision), str(r.analyst), str(r.reason))
        for r in df.itertuples()
    ]


def _standing(store: Store, before: str) -> dict[str, str]:
    """Rule id -> the latest decision nights before ``before`` applied."""
    df = store.query(
        """
        SELECT rule_id, decision FROM (
            SELECT *, row_number() OVER (
                PARTITION BY rule_id ORDER BY applied_date DESC, decided_at DESC, rowid DESC
            ) AS k
            FROM rule_decisions WHERE applied_date IS NOT NULL AND applied_date < ?
        ) WHERE k = 1 ORDER BY rule_id
        """,
        [before],
    )
    return dict(zip(df["rule_id"].astype(str), df["decision"].astype(str), strict=True))


def apply_decisions(
    rules: Sequence[Rule], decisions: Sequence[RuleDecision], day: str
) -> tuple[list[AuditEvent], list[dict[str, str]]]:
    """Set the status of ``rules`` (in place) as analysts decided, for the night of ``day``.

    Decisions are applied in order; when several are about one rule the last one counts and
    the others are ``superseded``. ``approve`` -> ``enforce``, ``reject`` -> ``disabled``.

    Returns
    -------
    events : list of AuditEvent
        One per status change; the actor is the analyst, the reason ``analyst approved:
        <reason>`` (``rejected``).
    outcomes : list of dict
        One per decision: its fields and ``outcome`` (``enforce``, ``disabled``, ``already
        enforce``, ``not in tonight's bundle``, ``superseded by a later decision``).
    """
    last = {d.rule_id: i for i, d in enumerate(decisions)}
    by_id = {r.id: r for r in rules}
    events: list[AuditEvent] = []
    outcomes: list[dict[str, str]] = []
    for i, d in enumerate(decisions):
        rule = by_id.get(d.rule_id)
        to = "enforce" if d.decision == "approve" else "disabled"
        if last[d.rule_id] != i:
            outcome = "superseded by a later decision"
        elif rule is None:
            outcome = "not in tonight's bundle"
        elif rule.status == to:
            outcome = f"already {to}"
        else:
            verb = "approved" if d.decision == "approve" else "rejected"
            events.append(
                AuditEvent(
                    rule.id,
                    rule.version,
                    day,
                    rule.status,
                    to,
                    d.analyst,
                    f"analyst {verb}: {d.reason}",
                )
            )
            rule.set_status(to)
            outcome = to
        outcomes.append({**asdict(d), "outcome": outcome})
    return events, outcomes


def mark_applied(store: Store, day: str, decisions: Sequence[RuleDecision]) -> None:
    """Mark ``decisions`` (still pending) as applied by night ``day``."""
    for d in decisions:
        store.execute(
            "UPDATE rule_decisions SET applied_date = ? WHERE applied_date IS NULL "
            "AND rule_id = ? AND decision = ? AND analyst = ? AND reason = ?",
            [day, d.rule_id, d.decision, d.analyst, d.reason],
        )


# ------------------------------------------------------------------------- label model


def campaign_evidence(kind: str, campaigns: pd.DataFrame, scored: pd.DataFrame) -> pd.DataFrame:
    """The evidence each of tonight's campaigns stands on, as the store keeps it.

    A campaign can hold several clusters (fragments judged together, clusters joined to a
    flagged one); its evidence is that of the cluster its flag stands on: the first of its
    clusters by the coordination test's decision, then ``score`` (highest first), then cluster
    id. Campaigns without a scored cluster (timer-driven pools) have none.

    Parameters
    ----------
    kind : str
    campaigns : DataFrame
        ``KindResult.campaigns`` (``campaign_id``, ``cluster_id``).
    scored : DataFrame
        ``KindResult.cluster_scores``: :class:`anomaly.scoring.CampaignScorer`'s frame.

    Returns
    -------
    DataFrame
        ``kind``, ``campaign_id``, ``cluster_id`` and ``evidence``
        (:func:`anomaly.label_model.evidence_records`, JSON), one row per campaign.
    """
    cols = ["kind", "campaign_id", "cluster_id", "evidence"]
    if scored is None or scored.empty or campaigns.empty:
        return pd.DataFrame(columns=cols)
    c = campaigns[["campaign_id", "cluster_id"]].copy()
    c["cluster_id"] = c["cluster_id"].astype("int64")
    c = c[c["cluster_id"].isin(scored.index)]
    c["test"] = coordination_decision(scored).reindex(c["cluster_id"]).to_numpy(dtype=bool)
    score = pd.to_numeric(scored["score"], errors="coerce").reindex(c["cluster_id"])
    c["score"] = score.fillna(-1.0).to_numpy(dtype=np.float64)
    c = c.sort_values(
        ["campaign_id", "test", "score", "cluster_id"], ascending=[True, False, False, True]
    ).drop_duplicates("campaign_id")
    records = evidence_records(scored.loc[c["cluster_id"].to_numpy()])
    return pd.DataFrame(
        {
            "kind": kind,
            "campaign_id": c["campaign_id"].astype(str).to_numpy(),
            "cluster_id": c["cluster_id"].to_numpy(dtype=np.int64),
            "evidence": [json.dumps(r, sort_keys=True) for r in records],
        },
        columns=cols,
    )


def _labelled_campaigns(store: Store, kind: str) -> dict[str, list[str]]:
    """The campaigns of ``kind`` by their latest label (``abuse``, ``benign``, ``unsure``)."""
    latest = campaign_labels(store, kind)
    return {
        lab: sorted(latest.loc[latest["label"] == lab, "target_id"].astype(str)) for lab in LABELS
    }


def _anchors(
    store: Store, kind: str, since: str, before: str, leave_out: list[str]
) -> pd.DataFrame:
    """The latest evidence of every campaign of nights ``[since, before)`` but ``leave_out``."""
    ev = store.query(
        """
        SELECT campaign_id, evidence FROM (
            SELECT *, row_number() OVER (PARTITION BY campaign_id ORDER BY date DESC) AS k
            FROM campaign_evidence
            WHERE kind = ? AND date >= ? AND date < ?
              AND NOT list_contains(?::VARCHAR[], campaign_id)
        ) WHERE k = 1 ORDER BY campaign_id
        """,
        [kind, since, before, leave_out],
    )
    return evidence_frame([json.loads(e) for e in ev["evidence"]])


def _evidence_before(store: Store, kind: str, before: str, ids: list[str]) -> pd.DataFrame:
    """Each of campaigns ``ids``' latest evidence on a night before ``before``."""
    if not ids:
        return pd.DataFrame(columns=["campaign_id", "date", "evidence"])
    return store.query(
        """
        SELECT campaign_id, date, evidence FROM (
            SELECT *, row_number() OVER (PARTITION BY campaign_id ORDER BY date DESC) AS k
            FROM campaign_evidence
            WHERE kind = ? AND date < ? AND list_contains(?::VARCHAR[], campaign_id)
        ) WHERE k = 1 ORDER BY campaign_id
        """,
        [kind, before, ids],
    )


def fit_label_model(
    store: Store,
    kind: str,
    config: JobConfig,
    before: str | None = None,
    labels: dict[str, list[str]] | None = None,
) -> tuple[LabelModel | None, dict[str, Any]]:
    """The label model the night of ``before`` scores ``kind`` with, and what it was fitted on.

    Every campaign of ``kind`` whose latest label is ``abuse`` or ``benign`` (``unsure`` ones are
    left out) contributes the evidence it stood on the last night it was seen before
    ``before`` (table ``campaign_evidence``), whatever night it was labelled on:
    :class:`anomaly.label_model.LabelModel` (seed ``config.seed``) is fitted on those, anchored
    by the test's decisions on the campaigns nobody labelled of the look-back window
    (``config.nightly.lookback_days`` nights before ``before``, each in its latest state). It
    is used only when the labels hold both classes; otherwise tonight's flags are the test's.

    Parameters
    ----------
    store : Store
    kind : str
    config : JobConfig
        Its ``seed`` and look-back window.
    before : str, optional
        YYYY-MM-DD: evidence of earlier nights only. Default: the day after the store's latest
        night (the model the next night would fit).
    labels : dict, optional
        ``{"abuse": [campaign ids], "benign": [...], "unsure": [...]}`` instead of the store's
        latest labels (a rerun of a night uses the labels its first run used).

    Returns
    -------
    model : LabelModel or None
        None when no labelled campaign has evidence (nothing to fit).
    record : dict
        ``labels`` (the ids, by label), ``unsure_ignored``, ``trained_on`` (labelled
        campaigns with evidence, by class), ``without_evidence`` (labelled campaigns the store
        holds no evidence for before ``before``: seen only tonight or later, or timer-driven
        pools), ``evidence_nights`` (campaign id -> the night its evidence is from),
        ``anchors`` (unlabelled campaigns anchoring the fit), ``usable``, ``decision`` (in
        words) and ``model`` (its metadata).
    """
    if before is None:
        last = store.query("SELECT max(date) AS d FROM campaigns WHERE kind = ?", [kind])["d"]
        day = Date.fromisoformat(str(last.iloc[0])) if last.notna().iloc[0] else Date.today()
        before = (day + timedelta(days=1)).isoformat()
    if labels is None:
        labels = _labelled_campaigns(store, kind)
    labels = {lab: sorted(str(i) for i in labels.get(lab, [])) for lab in LABELS}
    unsure = labels["unsure"]
    ids = sorted({i for lab in LABEL_CLASSES for i in labels[lab]})
    ev = _evidence_before(store, kind, before, ids)
    have = set(ev["campaign_id"].astype(str))
    cls = {i: LABEL_CLASSES[lab] for lab in LABEL_CLASSES for i in labels[lab]}
    trained = {lab: sum(i in have for i in labels[lab]) for lab in LABEL_CLASSES}
    record: dict[str, Any] = {
        "labels": labels,
        "unsure_ignored": len(unsure),
        "trained_on": trained,
        "without_evidence": [i for i in ids if i not in have],
        "evidence_nights": dict(
            zip(ev["campaign_id"].astype(str), ev["date"].astype(str), strict=True)
        ),
        "anchors": 0,
        "usable": False,
        "model": None,
    }
    model: LabelModel | None = None
    if len(ev):
        frame = evidence_frame([json.loads(e) for e in ev["evidence"]])
        y = ev["campaign_id"].astype(str).map(cls).to_numpy(dtype=np.int64)
        since = Date.fromisoformat(before) - timedelta(days=config.nightly.lookback_days)
        anchors = _anchors(store, kind, since.isoformat(), before, sorted({*ids, *unsure}))
        record["anchors"] = len(anchors)
        model = LabelModel(random_state=config.seed).fit(frame, y, anchors=anchors)
        record["usable"] = bool(model.usable_)
        record["model"] = model.metadata_
    n = trained["abuse"] + trained["benign"]
    if record["usable"]:
        record["decision"] = (
            f"{kind}: label model fitted on {n} labelled campaigns ({trained['abuse']} abuse, "
            f"{trained['benign']} benign), anchored by the test's decisions on "
            f"{len(anchors)} unlabelled ones, decides tonight's flags (P(abuse) >= 0.5)"
        )
    elif n:
        one = "abuse" if trained["abuse"] else "benign"
        record["decision"] = (
            f"{kind}: {n} labelled campaigns, all {one}: labels of one class cannot place a "
            "boundary, the model is not used and the test's decision stands"
        )
    else:
        record["decision"] = (
            f"{kind}: no labelled campaign with evidence before {before}: the test decides"
        )
    log.info("%s", record["decision"])
    return model, record


def label_model_effect(scored: pd.DataFrame, campaigns: pd.DataFrame) -> dict[str, Any]:
    """What a night's label model changed against the coordination test.

    Parameters
    ----------
    scored : DataFrame
        ``KindResult.cluster_scores`` (with ``test_flagged`` when a usable model decided).
    campaigns : DataFrame
        ``KindResult.campaigns``: names the campaigns of the changed clusters.

    Returns
    -------
    dict
        ``clusters``, ``test_flagged`` and ``flagged`` (clusters), ``changed`` (clusters whose
        decision the model changed), and the campaigns of those: ``flagged_by_labels`` (the
        test did not flag them, the model does) and ``unflagged_by_labels``.
    """
    flagged = scored["flagged"].astype(bool) if len(scored) else pd.Series(dtype=bool)
    test = coordination_decision(scored) if len(scored) else flagged
    camp_of = campaigns.set_index(campaigns["cluster_id"].astype("int64"))["campaign_id"]

    def named(mask: pd.Series) -> list[str]:
        return sorted({str(camp_of.get(int(c), c)) for c in scored.index[mask.to_numpy()]})

    up, down = flagged & ~test, ~flagged & test
    return {
        "clusters": len(scored),
        "test_flagged": int(test.sum()),
        "flagged": int(flagged.sum()),
        "changed": int((up | down).sum()),
        "flagged_by_labels": named(up),
        "unflagged_by_labels": named(down),
    }


# ------------------------------------------------------------------------------ nights


@dataclass
class NightReview:
    """What the analysts' review changes for one night (:func:`night_review`).

    Attributes
    ----------
    config : JobConfig
        A copy of the run's configuration with the store's allowlist entries.
    label_models : dict
        kind -> the :class:`anomaly.label_model.LabelModel` fitted on its labelled campaigns
        (kinds with no labelled campaign with evidence have none); pass it to
        :func:`pipelines.job.run_job`.
    decisions : list of RuleDecision
        The rule decisions tonight applies.
    standing : dict
        Rule id -> the latest decision earlier nights applied (``approve``, ``reject``).
    record : dict
        For the run record: the store's allowlist entries, label counts and, per kind, what the
        label model was fitted on (:func:`fit_label_model`'s record; the nightly job adds its
        ``effect``, :func:`label_model_effect`).
    """

    config: JobConfig
    label_models: dict[str, LabelModel]
    decisions: list[RuleDecision]
    standing: dict[str, str]
    record: dict[str, Any]


def _label_summary(store: Store, kinds: Iterable[str]) -> dict[str, dict[str, dict[str, int]]]:
    out: dict[str, dict[str, dict[str, int]]] = {}
    for kind in sorted(kinds):
        out[kind] = {}
        for target, latest in (
            ("campaign", campaign_labels(store, kind)),
            ("entity", entity_labels(store, kind)),
        ):
            counts = latest["label"].value_counts()
            out[kind][target] = {lab: int(counts.get(lab, 0)) for lab in LABELS}
    return out


def night_review(store: Store, day: str, config: JobConfig, kinds: Sequence[str]) -> NightReview:
    """Read what analysts said for the night of ``day`` (YYYY-MM-DD) of ``kinds``.

    A first run of a night reads the store as it is: its allowlist entries, the campaign labels
    (each kind's label model is fitted on the labelled campaigns' evidence of nights before
    ``day``, :func:`fit_label_model`) and the pending rule decisions. A rerun of a night (the
    store has its run record) applies what the first run applied, read from that record: the
    same entries, labels and decisions, so it writes the same files; later labels, entries and
    decisions wait for the next new night.

    ``config`` is not modified.
    """
    prior = store.run(day)
    recorded = ((prior or {}).get("record") or {}).get("nightly", {}).get("review")
    used: dict[str, dict[str, Any]] = {}
    if recorded is not None:
        allow: dict[str, dict[str, list[str]]] = recorded["allowlists"]
        labels = recorded["labels"]
        # a record written before the label model (it moved thresholds instead) used no model
        used = recorded.get("label_model", {})
        decisions = [
            RuleDecision(d["rule_id"], d["decision"], d["analyst"], d["reason"])
            for d in recorded["decisions"]
        ]
    else:
        allow = _store_allowlists(store, kinds)
        labels = _label_summary(store, kinds)
        decisions = pending_decisions(store)
    cfg = copy.deepcopy(config)
    for kind, lists in sorted(allow.items()):
        a = getattr(cfg.allowlists, kind)
        for lst, values in sorted(lists.items()):
            have = getattr(a, lst)
            new = [int(v) if lst == "asns" else v for v in values]
            setattr(a, lst, [*have, *(v for v in new if v not in have)])
    models: dict[str, LabelModel] = {}
    fitted: dict[str, dict[str, Any]] = {}
    for kind in sorted(kinds):
        if recorded is not None:
            rec = used.get(kind, {})
            model, fitted[kind] = fit_label_model(
                store, kind, cfg, before=day, labels=rec.get("labels", {})
            )
        else:
            model, fitted[kind] = fit_label_model(store, kind, cfg, before=day)
        if model is not None:
            models[kind] = model
    return NightReview(
        config=cfg,
        label_models=models,
        decisions=decisions,
        standing=_standing(store, day),
        record={"allowlists": allow, "labels": labels, "label_model": fitted},
    )


def nightly_from_demo(run_dir: str | Path, out_dir: str | Path, nights: int = 1) -> JobConfig:
    """Run the nightly job on the first ``nights`` days of a demo run's data, for notebooks.

    ``campaigns demo`` writes its synthetic days to ``<run_dir>/data/<kind>/<date>.parquet``,
    the nightly job's partition layout; this points a nightly configuration at them, with its
    output (and store) in ``out_dir``, and runs the nights not yet in the store.

    Returns
    -------
    JobConfig
        The configuration used (``config.nightly.out_dir`` holds the store and runs/).

    Raises
    ------
    ValueError
        When ``run_dir`` has no ``data/signups`` folder of day files.
    """
    from pipelines.nightly import run_nightly

    data = Path(run_dir) / "data"
    days = sorted(p.stem for p in (data / "signups").glob("*.parquet"))
    if not days:
        raise ValueError(f"{data}: no day files under signups/ (make it with campaigns demo)")
    config = JobConfig()
    config.nightly.input_dir = str(data)
    config.nightly.out_dir = str(out_dir)
    store_path = Path(out_dir) / "campaigns.duckdb"
    done: set[str] = set()
    if store_path.exists():
        with Store(store_path) as store:
            done = set(store.query("SELECT date FROM runs")["date"])
    for day in days[:nights]:
        if day not in done:
            run_nightly(day, config)
    return config
