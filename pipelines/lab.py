"""What the notebooks (``notebooks/``, ``campaigns lab``) read a run folder with.

A run folder (``campaigns run``, ``campaigns demo``, or one night of ``campaigns nightly``
under ``<out_dir>/runs/<date>/``) holds the campaigns, the assignments, the rule bundle and
``run.json``; this module loads them into a :class:`Run`, ranks the campaigns, rebuilds a
kind's feature matrix exactly as the job built it (the folder does not keep it) and gathers
everything about one campaign (:func:`campaign_detail`). It also prepares the labelled data
of the detector lab (:func:`labelled_behaviour`).

Nothing here writes into a run folder; :func:`resolve_run` makes a small demo run when the
folder it is pointed at does not exist yet, so a notebook runs top to bottom anywhere.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clustering.attributes import compute_attributes
from clustering.entities import (
    PROFILE_ATTRIBUTES,
    entity_keys,
    entity_table,
    most_frequent,
)
from clustering.features import build_features
from clustering.kinds import get_kind
from clustering.profiles import cluster_profiles
from clustering.risk_features import features_for, with_known_risk_classes
from pipelines.readers import read_events

log = logging.getLogger(__name__)

__all__ = [
    "ENV_VAR",
    "CampaignDetail",
    "LabError",
    "LabelledBehaviour",
    "Run",
    "RunFeatures",
    "campaign_detail",
    "default_run_dir",
    "flagged_clusters",
    "labelled_behaviour",
    "latest_run",
    "load_run",
    "rank_campaigns",
    "resolve_run",
    "run_features",
    "run_from_store",
]

# The run folder the notebooks open; `campaigns lab` sets it.
ENV_VAR = "CAMPAIGNS_RUN"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TOP = re.compile(r"^(?P<attr>[^=]+)=(?P<value>.*) \((?P<share>\d+)%\)$")


class LabError(ValueError):
    """A run folder or store that cannot be opened; the message names it and why."""


@dataclass
class Run:
    """One run folder, loaded.

    Attributes
    ----------
    path : Path
        The run folder.
    record : dict
        ``run.json``.
    campaigns : DataFrame
        ``campaigns.parquet``: one row per cluster.
    assignments : DataFrame
        ``assignments.parquet``: one row per entity.
    bundle : dict
        ``rules/bundle.json``.
    paths : dict of str to Path
        The run's output files that exist (``campaigns``, ``assignments``, ``bundle``,
        ``record``, ``report``, ``evaluation``).
    """

    path: Path
    record: dict[str, Any]
    campaigns: pd.DataFrame
    assignments: pd.DataFrame
    bundle: dict[str, Any]
    paths: dict[str, Path]
    _cache: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    @property
    def run_id(self) -> str:
        return str(self.record.get("run_id", ""))

    @property
    def seed(self) -> int:
        """The job's seed (``run.json`` parameters), which the features were built with."""
        return int(self.record.get("parameters", {}).get("seed", 0))

    @property
    def kinds(self) -> list[str]:
        """The kinds the run read, in name order."""
        return sorted(self.record.get("inputs", {}))

    def input_path(self, kind: str) -> Path:
        """Where the run's ``kind`` events are now.

        ``run.json`` records the path as the job was given it; a relative one is looked up
        from the current folder, the run folder's parent (``campaigns demo --out DIR`` run
        from there) and the run folder itself.

        Raises
        ------
        LabError
            When the run read no ``kind`` or the file is nowhere to be found.
        """
        inputs = self.record.get("inputs", {})
        if kind not in inputs:
            raise LabError(f"{self.path}: the run read no {kind!r} (it read {self.kinds})")
        given = Path(str(inputs[kind]["path"])).expanduser()
        candidates = (
            [given]
            if given.is_absolute()
            else [Path.cwd() / given, self.path.parent / given, self.path / given]
        )
        for c in candidates:
            if c.exists():
                return c
        raise LabError(
            f"{self.path}: the {kind} events the run read ({given}) are not there any more; "
            f"looked in {', '.join(str(c) for c in candidates)}"
        )

    def events(self, kind: str) -> pd.DataFrame:
        """The run's ``kind`` events, read and validated again (kept after the first call).

        Logs a warning when the file's bytes differ from those the run read.
        """
        key = ("events", kind)
        if key not in self._cache:
            path = self.input_path(kind)
            result = read_events(path, kind, fmt=self.record["inputs"][kind].get("format"))
            recorded = self.record["inputs"][kind].get("sha256")
            if recorded and recorded != result.sha256:
                log.warning("%s changed since the run read it: figures may differ", path)
            self._cache[key] = result.frame
        frame: pd.DataFrame = self._cache[key]
        return frame

    def entities(self, kind: str) -> pd.DataFrame:
        """One row per entity of ``kind``, as the job built it (attributes and behaviour)."""
        key = ("entities", kind)
        if key not in self._cache:
            events = self.events(kind)
            self._cache[key] = entity_table(kind, events, compute_attributes(events, kind))
        frame: pd.DataFrame = self._cache[key]
        return frame


@dataclass
class RunFeatures:
    """A kind's feature matrix, rebuilt, with each row's cluster and campaign.

    Attributes
    ----------
    kind : str
    X : ndarray of shape (n_entities, n_features), float32
    entity_ids : Index
        One per row of ``X`` (sorted, as in the job).
    names : list of str
        One per column of ``X``.
    labels : ndarray of int, shape (n_entities,)
        Cluster id per row from ``assignments.parquet`` (-1 noise).
    campaign_ids : ndarray of object, shape (n_entities,)
        Campaign id per row, ``None`` where there is none.
    """

    kind: str
    X: np.ndarray
    entity_ids: pd.Index
    names: list[str]
    labels: np.ndarray
    campaign_ids: np.ndarray


@dataclass
class CampaignDetail:
    """Everything about one campaign of a run.

    Attributes
    ----------
    campaign_id, kind : str
    summary : dict
        Size, members, clusters, flagged, score and the campaign detector's threshold,
        reasons, first and last seen, rule counts.
    clusters : DataFrame
        Its rows of ``campaigns.parquet`` (one per cluster).
    members : DataFrame
        Its rows of ``assignments.parquet``; ``attached`` marks strays joined to it through
        an exclusive value (cluster -1).
    shared : DataFrame
        Per profile attribute: the members' most common value, its ``share`` among them and
        its ``specificity`` (share of that value's holders that are members), most shared
        first.
    top_attributes : DataFrame
        ``campaigns.parquet``'s ``top_attributes`` of each cluster, parsed: ``cluster_id``,
        ``attribute``, ``value``, ``share``.
    timeline : Series
        Member events per hour, over every hour of the run's events of that kind (zeros
        included), so a burst shows against the whole night.
    scores : DataFrame
        Entity-score figures of the members next to all of the kind's entities.
    rules : DataFrame
        Its rules in the bundle: id, mode, action, version, attributes, SQL condition,
        shadow reasons.
    backtest : DataFrame
        Each rule's backtest (precision and its lower bound, recall, hits, background hits,
        expected hits a day, earlier days).
    """

    campaign_id: str
    kind: str
    summary: dict[str, Any]
    clusters: pd.DataFrame
    members: pd.DataFrame
    shared: pd.DataFrame
    top_attributes: pd.DataFrame
    timeline: pd.Series
    scores: pd.DataFrame
    rules: pd.DataFrame
    backtest: pd.DataFrame


@dataclass
class LabelledBehaviour:
    """Entity behaviour (what the job's entity detectors see) with the generator's labels.

    Attributes
    ----------
    kind : str
    X : DataFrame of shape (n_entities, n_features)
        Numeric, missing values filled with the column median as the job fills them.
    y : ndarray of int, shape (n_entities,)
        1 for a planted campaign's entity, 0 otherwise (ordinary users and look-alike crowds).
    label, group : ndarray of str
        The generator's label (``benign``, ``campaign``, ``lookalike``) and group of each
        entity (a sender: those of most of its messages).
    source : str
        Where the events came from (a run's inputs or a fresh generation).
    """

    kind: str
    X: pd.DataFrame
    y: np.ndarray
    label: np.ndarray
    group: np.ndarray
    source: str


# --------------------------------------------------------------------------------------------
# Finding and loading a run


def default_run_dir(cwd: str | os.PathLike[str] | None = None) -> Path:
    """The run folder used when ``CAMPAIGNS_RUN`` is not set: ``demo-out`` at the repository
    root (the README's demo output), i.e. ``../demo-out`` from ``notebooks/``."""
    here = Path(cwd) if cwd is not None else Path.cwd()
    return (here.parent if here.name == "notebooks" else here) / "demo-out"


def latest_run(root: str | os.PathLike[str]) -> Path:
    """The run folder ``root`` stands for.

    Parameters
    ----------
    root : path
        A run folder (it holds ``run.json``); a nightly ``out_dir`` (its latest
        ``runs/<YYYY-MM-DD>/`` with a ``run.json``); or a nightly store file (its latest
        published night, :func:`run_from_store`).

    Raises
    ------
    LabError
        When ``root`` is none of these.
    """
    p = Path(root).expanduser()
    if p.is_file():
        return run_from_store(p)
    if (p / "run.json").is_file():
        return p
    runs = p / "runs"
    if runs.is_dir():
        nights = sorted(
            d for d in runs.iterdir() if _DATE.match(d.name) and (d / "run.json").is_file()
        )
        if nights:
            return nights[-1]
        raise LabError(f"{runs}: no night's run folder (runs/<YYYY-MM-DD>/run.json) yet")
    if not p.exists():
        raise LabError(f"{p}: no such folder")
    raise LabError(f"{p}: not a run folder (no run.json) nor a nightly out_dir (no runs/)")


def run_from_store(store: str | os.PathLike[str]) -> Path:
    """The run folder of the store's latest published night, ``<store's folder>/runs/<date>``.

    The store is opened read-only (a nightly run may be writing it; its default place is
    ``<out_dir>/campaigns.duckdb``, docs/nightly.md), and the night is the one
    :meth:`pipelines.store.Store.last_published` gives.

    Raises
    ------
    LabError
        When the store cannot be read, has no published night, or the night's folder is
        missing.
    """
    import duckdb

    path = Path(store).expanduser()
    if not path.is_file():
        raise LabError(f"{path}: no such store")
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            row = con.execute(
                "SELECT date FROM runs WHERE published ORDER BY date DESC LIMIT 1"
            ).fetchone()
    except duckdb.Error as e:
        raise LabError(f"{path}: cannot read the store: {e}") from e
    if row is None:
        raise LabError(f"{path}: the store has no published night yet")
    run_dir = path.parent / "runs" / str(row[0])
    if not (run_dir / "run.json").is_file():
        raise LabError(f"{path}: latest published night {row[0]} has no run folder {run_dir}")
    return run_dir


def resolve_run(
    path: str | os.PathLike[str] | None = None,
    *,
    make_demo: bool = True,
    seed: int = 0,
    signups_per_day: int = 3000,
    messages_per_day: int = 3000,
) -> Path:
    """The run folder a notebook opens.

    Parameters
    ----------
    path : path, optional
        Default: the ``CAMPAIGNS_RUN`` environment variable, else :func:`default_run_dir`.
        Anything :func:`latest_run` accepts.
    make_demo : bool
        When the folder does not exist (or is empty), make a small demo run in it
        (:func:`pipelines.demo.run_demo` with the sizes below; about 20 s on 2 cores).
    seed, signups_per_day, messages_per_day : int
        The demo's.

    Raises
    ------
    LabError
        When the folder exists but holds no run, or is missing and ``make_demo`` is false.
    """
    given = path if path is not None else os.environ.get(ENV_VAR) or default_run_dir()
    p = Path(given).expanduser()
    if p.exists() and not (p.is_dir() and not any(p.iterdir())):
        return latest_run(p)
    if not make_demo:
        raise LabError(f"{p}: no such run folder")
    from pipelines.demo import run_demo

    log.info("no run in %s: making a demo run there", p)
    run_demo(p, seed=seed, signups_per_day=signups_per_day, messages_per_day=messages_per_day)
    return p


def load_run(run_dir: str | os.PathLike[str]) -> Run:
    """Load a run folder's campaigns, assignments, bundle and record.

    Raises
    ------
    LabError
        When one of the four files is missing.
    """
    p = Path(run_dir).expanduser()
    files = {
        "record": p / "run.json",
        "campaigns": p / "campaigns.parquet",
        "assignments": p / "assignments.parquet",
        "bundle": p / "rules" / "bundle.json",
    }
    missing = [str(f.relative_to(p)) for f in files.values() if not f.is_file()]
    if missing:
        raise LabError(f"{p}: not a complete run folder, missing {', '.join(missing)}")
    paths = dict(files)
    for name, rel in (("report", "report.html"), ("evaluation", "evaluation.json")):
        if (p / rel).is_file():
            paths[name] = p / rel
    return Run(
        path=p,
        record=json.loads(files["record"].read_text(encoding="utf-8")),
        campaigns=pd.read_parquet(files["campaigns"]),
        assignments=pd.read_parquet(files["assignments"]),
        bundle=json.loads(files["bundle"].read_text(encoding="utf-8")),
        paths=paths,
    )


# --------------------------------------------------------------------------------------------
# Campaigns


# the columns of rank_campaigns, in order
RANKED_COLUMNS = (
    "campaign_id",
    "kind",
    "flagged",
    "score",
    "size",
    "members",
    "clusters",
    "rules",
    "rules_enforce",
    "reason",
    "top_attributes",
    "first_seen",
    "last_seen",
)


def rank_campaigns(run: Run, kind: str | None = None) -> pd.DataFrame:
    """Campaigns (clusters of one campaign merged), flagged first, then by score and size.

    Returns
    -------
    DataFrame
        One row per campaign: ``campaign_id``, ``kind``, ``flagged``, ``score`` (its best
        cluster's), ``size`` (clustered entities), ``members`` (with attached strays),
        ``clusters``, ``rules``, ``rules_enforce``, ``reason``, ``top_attributes`` (of its
        largest cluster), ``first_seen``, ``last_seen``. Timer-driven device pools have no
        score (NaN) and rank after scored flagged campaigns.
    """
    camps = run.campaigns if kind is None else run.campaigns[run.campaigns["kind"] == kind]
    if camps.empty:
        return pd.DataFrame(columns=list(RANKED_COLUMNS))
    members = run.assignments["campaign_id"].value_counts()
    rules = _rules_frame(run.bundle)
    largest = camps.sort_values(["size", "cluster_id"], ascending=[False, True])
    largest = largest.drop_duplicates("campaign_id").set_index("campaign_id")
    g = camps.groupby("campaign_id", sort=False)
    out = pd.DataFrame(
        {
            "kind": g["kind"].first(),
            "flagged": g["flagged"].any(),
            "score": g["score"].max(),
            "size": g["size"].sum(),
            "clusters": g["cluster_id"].nunique(),
            "first_seen": g["first_seen"].min(),
            "last_seen": g["last_seen"].max(),
        }
    )
    out["members"] = members.reindex(out.index).fillna(0).astype(np.int64)
    per_campaign = rules.groupby("campaign_id")["mode"] if len(rules) else None
    out["rules"] = (
        per_campaign.size().reindex(out.index).fillna(0).astype(np.int64)
        if per_campaign is not None
        else 0
    )
    out["rules_enforce"] = (
        per_campaign.agg(lambda m: int((m == "enforce").sum()))
        .reindex(out.index)
        .fillna(0)
        .astype(np.int64)
        if per_campaign is not None
        else 0
    )
    out["reason"] = largest["reason"].reindex(out.index)
    out["top_attributes"] = largest["top_attributes"].reindex(out.index)
    out = out.rename_axis("campaign_id").reset_index()
    out = out.sort_values(
        ["flagged", "score", "size", "campaign_id"],
        ascending=[False, False, False, True],
        na_position="last",
        kind="stable",
    )
    return out[list(RANKED_COLUMNS)].reset_index(drop=True)


def flagged_clusters(run: Run, kind: str) -> set[int]:
    """Cluster ids of ``kind``'s flagged clusters (the ``flagged`` argument of
    :func:`clustering.campaign_map.render_map`)."""
    c = run.campaigns
    return {int(x) for x in c.loc[(c["kind"] == kind) & c["flagged"], "cluster_id"]}


def run_features(run: Run, kind: str) -> RunFeatures:
    """Rebuild ``kind``'s feature matrix as the job built it, with each row's cluster.

    Reads the events the run read (``run.json`` inputs), then
    :func:`clustering.attributes.compute_attributes`, :func:`clustering.entities.entity_table`
    and :func:`clustering.features.build_features` with the kind's features
    (:func:`clustering.risk_features.features_for`, known-risk classes included) and the
    run's seed: the same matrix the clustering saw, for the same inputs and code version.
    """
    entities = with_known_risk_classes(kind, run.entities(kind))
    X, names = build_features(entities, features_for(kind, entities), random_state=run.seed)
    a = run.assignments[run.assignments["kind"] == kind].set_index("entity_id")
    ids = entities.index.astype(str)
    missing = int((~ids.isin(a.index)).sum())
    if missing:
        log.warning(
            "%s: %d of %d entities have no assignment (noise here)", kind, missing, len(ids)
        )
    labels = a["cluster_id"].reindex(ids).fillna(-1).to_numpy(dtype=np.int64)
    camp = a["campaign_id"].astype(object).reindex(ids)
    campaign_ids = np.array([None if pd.isna(v) else str(v) for v in camp], dtype=object)
    return RunFeatures(kind, X, pd.Index(ids, name="entity_id"), names, labels, campaign_ids)


def campaign_detail(run: Run, campaign_id: str) -> CampaignDetail:
    """Members, shared values, timeline, scores and rules of one campaign.

    Reads the run's input events for the shared values and the timeline.

    Raises
    ------
    LabError
        When the run has no such campaign.
    """
    clusters = run.campaigns[run.campaigns["campaign_id"] == campaign_id]
    if clusters.empty:
        raise LabError(f"{run.path}: no campaign {campaign_id!r}")
    kind = str(clusters["kind"].iloc[0])
    a = run.assignments[run.assignments["kind"] == kind]
    members = a[a["campaign_id"] == campaign_id].copy()
    members["attached"] = members["cluster_id"] < 0
    members = members.reset_index(drop=True)

    entities = run.entities(kind)
    is_member = entities.index.astype(str).isin(members["entity_id"])
    shared = _shared_values(entities, is_member, PROFILE_ATTRIBUTES[kind])
    timeline = _timeline(run.events(kind), kind, set(members["entity_id"]))

    detectors = run.record.get("detectors", {}).get(kind, {})
    cdet = detectors.get("campaign_detector", {})
    edet = detectors.get("entity_detector", {})
    scores = _score_table(members["entity_score"], a["entity_score"], edet.get("threshold"))

    rules = _rules_frame(run.bundle)
    rules = rules[rules["campaign_id"] == campaign_id] if len(rules) else rules
    backtest = _backtest_frame(run.bundle, campaign_id)
    summary = {
        "campaign_id": campaign_id,
        "kind": kind,
        "flagged": bool(clusters["flagged"].any()),
        "score": float(clusters["score"].max()),
        "fdr": cdet.get("fdr"),
        "min_families": cdet.get("min_families"),
        "size": int(clusters["size"].sum()),
        "members": len(members),
        "attached": int(members["attached"].sum()),
        "clusters": sorted(int(c) for c in clusters["cluster_id"]),
        "reasons": [str(r) for r in clusters["reason"]],
        "first_seen": clusters["first_seen"].min(),
        "last_seen": clusters["last_seen"].max(),
        "rules": len(rules),
        "rules_enforce": int((rules["mode"] == "enforce").sum()) if len(rules) else 0,
    }
    return CampaignDetail(
        campaign_id=campaign_id,
        kind=kind,
        summary=summary,
        clusters=clusters.reset_index(drop=True),
        members=members,
        shared=shared,
        top_attributes=_parse_top(clusters),
        timeline=timeline,
        scores=scores,
        rules=rules.reset_index(drop=True),
        backtest=backtest,
    )


def _shared_values(
    entities: pd.DataFrame, is_member: np.ndarray, attributes: tuple[str, ...]
) -> pd.DataFrame:
    cols = ["attribute", "value", "share", "specificity"]
    if not is_member.any():
        return pd.DataFrame(columns=cols)
    prof = cluster_profiles(entities, np.where(is_member, 0, -1), attributes).iloc[0]
    rows = [
        {
            "attribute": attr,
            "value": prof[f"{attr}_value"],
            "share": float(prof[f"{attr}_share"]),
            "specificity": float(prof[f"{attr}_specificity"]),
        }
        for attr in attributes
        if f"{attr}_value" in prof.index and pd.notna(prof[f"{attr}_value"])
    ]
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(
        ["share", "specificity", "attribute"], ascending=[False, False, True], kind="stable"
    ).reset_index(drop=True)


def _timeline(events: pd.DataFrame, kind: str, members: set[str]) -> pd.Series:
    k = get_kind(kind)
    keys = entity_keys(kind, events).astype(str)
    hours = pd.to_datetime(events[k.time_column], utc=True).dt.floor("h")
    if hours.empty:
        return pd.Series([], dtype=np.int64, name="events", index=pd.DatetimeIndex([], tz="UTC"))
    counts = hours[keys.isin(members).to_numpy()].value_counts()
    full = pd.date_range(hours.min(), hours.max(), freq="h", name="hour")
    return counts.reindex(full, fill_value=0).astype(np.int64).rename("events")


def _score_table(
    members: pd.Series, everyone: pd.Series, entity_threshold: float | None
) -> pd.DataFrame:
    def figures(s: pd.Series) -> dict[str, float]:
        s = s.dropna()
        out = {
            "entities": float(len(s)),
            "entity score mean": float(s.mean()) if len(s) else np.nan,
            "entity score median": float(s.median()) if len(s) else np.nan,
            "entity score p90": float(s.quantile(0.9)) if len(s) else np.nan,
        }
        if entity_threshold is not None and len(s):
            out["share above entity threshold"] = float((s > entity_threshold).mean())
        return out

    return pd.DataFrame({"campaign": figures(members), "all entities": figures(everyone)})


def _rules_frame(bundle: dict[str, Any]) -> pd.DataFrame:
    from anomaly.rules import condition_attributes

    rows = []
    for r in bundle.get("rules", []):
        rows.append(
            {
                "rule_id": r.get("id"),
                "campaign_id": r.get("campaign_id"),
                "kind": r.get("kind"),
                "mode": r.get("mode"),
                "action": r.get("action"),
                "version": r.get("version"),
                "attributes": ", ".join(sorted(condition_attributes(r.get("condition", {})))),
                "sql": r.get("sql"),
                "expires_at": r.get("expires_at"),
                "shadow_reasons": "; ".join(r.get("provenance", {}).get("shadow_reasons", [])),
            }
        )
    cols = [
        "rule_id",
        "campaign_id",
        "kind",
        "mode",
        "action",
        "version",
        "attributes",
        "sql",
        "expires_at",
        "shadow_reasons",
    ]
    return pd.DataFrame(rows, columns=cols)


def _backtest_frame(bundle: dict[str, Any], campaign_id: str) -> pd.DataFrame:
    rows = []
    for r in bundle.get("rules", []):
        if r.get("campaign_id") != campaign_id:
            continue
        bt = dict(r.get("backtest", {}))
        earlier = bt.pop("earlier_days", [])
        rows.append({"rule_id": r.get("id"), **bt, "earlier_days": len(earlier)})
    # a flagged campaign may have no rule (none precise enough): an empty frame, same columns
    return pd.DataFrame(rows, columns=None if rows else ["rule_id", "earlier_days"])


def _parse_top(clusters: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for cid, text in zip(clusters["cluster_id"], clusters["top_attributes"], strict=True):
        for part in str(text or "").split("; "):
            m = _TOP.match(part.strip())
            if m:
                rows.append(
                    {
                        "cluster_id": int(cid),
                        "attribute": m["attr"],
                        "value": m["value"],
                        "share": int(m["share"]) / 100,
                    }
                )
    return pd.DataFrame(rows, columns=["cluster_id", "attribute", "value", "share"])


# --------------------------------------------------------------------------------------------
# The detector lab's data


def labelled_behaviour(
    kind: str = "signups",
    run: Run | None = None,
    *,
    seed: int = 0,
    signups_per_day: int = 3000,
    messages_per_day: int = 3000,
) -> LabelledBehaviour:
    """The behaviour matrix the job's entity detectors see, with the generator's labels.

    With a demo run (its folder holds ``data/labels/<kind>.parquet``) the run's own events
    are used; otherwise one day is generated (:func:`pipelines.synthetic.generate`, the sizes
    and seed given). The behaviour columns are the kind's spec's ``entity_behaviour`` plus
    ``log1p`` velocity counts, exactly as :mod:`pipelines.job` builds them, with missing
    values filled by the column median as :func:`anomaly.scoring.entity_scores` does.
    """
    from pipelines.job import _behaviour  # the job's own definition, not a copy

    labels_file = run.path / "data" / "labels" / f"{kind}.parquet" if run is not None else None
    if run is not None and labels_file is not None and labels_file.is_file():
        events = run.events(kind)
        labels = pd.read_parquet(labels_file)
        source = f"the run's {kind} events ({run.input_path(kind)}) and the demo's labels"
    else:
        from pipelines.synthetic import generate

        data = generate(
            days=1, seed=seed, signups_per_day=signups_per_day, messages_per_day=messages_per_day
        )
        events = data.signups if kind == "signups" else data.senders
        labels = data.signup_labels if kind == "signups" else data.sender_labels
        source = f"one generated day (seed {seed}, {len(events)} {kind} rows)"
    id_col = get_kind(kind).id_column
    lab = labels.set_index(labels[id_col].astype(str)).reindex(events[id_col].astype(str))
    if lab["label"].isna().any():
        raise LabError(f"{kind}: {int(lab['label'].isna().sum())} events have no label")
    entities = entity_table(kind, events, compute_attributes(events, kind))
    keys = entity_keys(kind, events).astype(str)
    keys.index = lab.index
    # an entity is a campaign's when most of its events are
    campaign_share = (lab["label"] == "campaign").groupby(keys.to_numpy()).mean()
    ids = entities.index.astype(str)
    y = (campaign_share.reindex(ids).to_numpy() >= 0.5).astype(np.int64)
    label = most_frequent(keys, lab["label"].astype(str)).reindex(ids).to_numpy(dtype=object)
    group = most_frequent(keys, lab["group"].astype(str)).reindex(ids).to_numpy(dtype=object)
    X = _behaviour(kind, entities).apply(pd.to_numeric, errors="coerce").astype("float64")
    X = X.fillna(X.median()).fillna(0.0)
    log.info("%s: %d entities, %d of a campaign; %s", kind, len(X), int(y.sum()), source)
    return LabelledBehaviour(kind, X, y, label, group, source)
