"""The campaign-detection job: inputs in, every output of DESIGN.md's table out.

Deterministic by construction: the run id is a digest of the inputs, the parameters and the
code version, and rule timestamps come from the data (the latest event), not the wall clock,
so the same inputs and seed give the same bundle bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse import csgraph

from anomaly.atomic import atomic_write_parquet, atomic_write_text
from anomaly.bundle_history import carry_versions
from anomaly.cadence import timer_pools
from anomaly.campaign_rules import Guard, campaign_id_for, rules_for_campaigns
from anomaly.campaigns import attach_noise, merge_flagged
from anomaly.coordination import MIN_SHARED, OWNED
from anomaly.export import allowlist_entries, build_bundle, load_bundle, write_rules
from anomaly.induction import GreedyRuleInducer
from anomaly.rules import Rule, RuleError, evaluate
from anomaly.scoring import FAMILIES, SUPPORTING_FAMILIES, CampaignScorer, entity_scores
from clustering.attributes import compute_attributes
from clustering.entities import PROFILE_ATTRIBUTES, entity_keys, entity_table
from clustering.features import build_features
from clustering.hdbscan_graph import GraphHDBSCAN
from clustering.kinds import SpecView, get_kind, get_spec
from clustering.known_risk import (
    risk_indicators,
    risk_metadata,
)
from clustering.pivots import split_on_pivots
from clustering.profiles import cluster_profiles
from clustering.risk_features import features_for, risk_columns, with_known_risk_classes
from clustering.search import save_search
from pipelines.config import JobConfig
from pipelines.readers import ReadResult
from pipelines.stages import Stages

log = logging.getLogger(__name__)

# (kind, campaigns, members by campaign id, entity ids, feature matrix) -> {tonight's id: id}
Identify = Callable[
    [str, pd.DataFrame, dict[str, np.ndarray], np.ndarray, np.ndarray], dict[str, str]
]
# tonight's rules (versions carried) -> the rules to publish (the nightly job's lifecycle)
FinalizeRules = Callable[[list[Rule]], list[Rule]]
_AUTO: Any = object()  # run_job: read the previous bundle from the output folder

__all__ = [
    "OUTPUT_FILES",
    "KindResult",
    "RunResult",
    "code_version",
    "detect",
    "known_risk_of",
    "run_job",
    "with_known_risk_classes",
]

# The outputs of a run (DESIGN.md, "Outputs of a run"): other systems read these paths.
OUTPUT_FILES = (
    "assignments.parquet",
    "campaigns.parquet",
    "rules/bundle.json",
    "rules/signups.sql",
    "rules/senders.sql",
    "report.html",
    "run.json",
    "search/signups.faiss",
    "search/senders.faiss",
)

# Per kind, from its entity spec (clustering/specs/*.toml for the built-in kinds).
# Behaviour given to the entity-level detectors.
_BEHAVIOUR: SpecView[tuple[str, ...]] = SpecView(lambda s: s.entity_behaviour)
# Exact values that join flagged fragments of one actor into one campaign.
_MERGE_ATTRIBUTES: SpecView[tuple[str, ...]] = SpecView(lambda s: s.merge)
# Values strangers do not share by accident: they attach an actor's stray entities to its campaign.
_ATTACH_ATTRIBUTES: SpecView[tuple[str, ...]] = SpecView(lambda s: s.attach)
# One device or one mailbox behind many entities: where part of a cluster reuses them, that
# part is split off (clustering.pivots). A sender is already one mailbox.
_PIVOT_ATTRIBUTES: SpecView[tuple[str, ...]] = SpecView(lambda s: s.pivots)


def code_version() -> str:
    try:
        return version("campaign-workbench")
    except PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


@dataclass
class KindResult:
    """Everything one kind's detection produced."""

    kind: str
    events: pd.DataFrame
    attrs: pd.DataFrame
    entities: pd.DataFrame
    features: np.ndarray
    labels: np.ndarray
    entity_scores: np.ndarray
    campaigns: pd.DataFrame
    rules: list[Rule]
    clusterer: GraphHDBSCAN
    attached: np.ndarray  # campaign id of noise entities attached to a campaign, else None
    cluster_scores: pd.DataFrame  # per cluster: family exclusivity, behaviour, score, reason
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    """What :func:`run_job` wrote and found."""

    out_dir: Path
    run_id: str
    kinds: dict[str, KindResult]
    bundle: dict[str, Any]
    record: dict[str, Any]


def _behaviour(kind: str, entities: pd.DataFrame) -> pd.DataFrame:
    """What the entity-level detectors see: each entity's own behaviour.

    How many other entities share its device or mailbox tonight (the spec's ``pivots``) is
    the entity's own: a person rarely opens several accounts on one phone. How many share
    its subnet, client build or mail domain is not: that is a crowd, which the coordination
    test already counts; as risk it would count twice and make every crowd, a campus behind
    one NAT included, look risky for being a crowd.
    """
    cols = {c: entities[c] for c in _BEHAVIOUR[kind] if c in entities}
    frame = pd.DataFrame(cols, index=entities.index)
    for col in _PIVOT_ATTRIBUTES[kind]:
        if col in entities:
            codes = pd.factorize(entities[col], use_na_sentinel=True)[0]
            held = np.bincount(codes[codes >= 0], minlength=1)
            counts = np.where(codes >= 0, held[np.maximum(codes, 0)], 0)
            frame[f"{col}_count"] = np.log1p(counts.astype(np.float64))
    return frame


def detect(
    kind: str,
    events: pd.DataFrame,
    config: JobConfig,
    stages: Stages,
    *,
    run_id: str,
    created_at: datetime,
    history: list[tuple[str, pd.DataFrame]] | None = None,
    identify: Identify | None = None,
    label_model: Any = None,
) -> KindResult:
    """Attributes, features, clusters, scores and rules for one kind's events.

    ``history`` holds earlier days' events (day label, frame): rules are backtested on them.
    ``identify(kind, campaigns, members, entity_ids, X)`` maps tonight's campaign ids (digests
    of their members) to the ids they had on earlier nights (the nightly job's campaign
    identity); rules are then named after those, so a campaign keeps its rule ids.
    ``label_model`` (a fitted :class:`anomaly.label_model.LabelModel`) is the scorer's.
    """
    k = get_kind(kind)
    kcfg = config.kind(kind)
    seed = config.seed
    with stages.stage(f"{kind}: attributes"):
        attrs = compute_attributes(events, kind)
        entities = entity_table(kind, events, attrs)
        entities = with_known_risk_classes(kind, entities)
    with stages.stage(f"{kind}: features"):
        X, _names = build_features(entities, features_for(kind, entities), random_state=seed)
    with stages.stage(f"{kind}: clustering"):
        clusterer = GraphHDBSCAN(
            min_cluster_size=kcfg.min_cluster_size,
            min_samples=kcfg.min_samples,
            n_neighbors=kcfg.n_neighbors,
            cluster_selection_method=kcfg.cluster_selection_method,
            max_cluster_share=kcfg.max_cluster_share,
            random_state=seed,
        ).fit(X)
        labels = split_on_pivots(
            entities, clusterer.labels_, _PIVOT_ATTRIBUTES[kind], min_size=kcfg.min_cluster_size
        )
    with stages.stage(f"{kind}: scoring"):
        escore, emeta = entity_scores(_behaviour(kind, entities), random_state=seed)
        risk = known_risk_of(kind, entities)
        scorer = CampaignScorer(
            kind,
            fdr=kcfg.fdr,
            min_families=kcfg.min_families,
            random_state=seed,
            label_model=label_model,
        )
        scored = scorer.score(entities, labels, escore, risk=risk)
        event_entity = entity_keys(kind, events)
        times = events[k.time_column].groupby(event_entity.to_numpy()).min()
        profiles = cluster_profiles(
            entities,
            labels,
            PROFILE_ATTRIBUTES[kind],
            time=times.reindex(entities.index),
        )
        campaigns, members, noise_campaign = _campaign_table(
            kind, entities, labels, profiles, scored, strays=scorer.strays_
        )
        labels, campaigns = _add_timer_pools(
            kind, entities, labels, campaigns, members, times.reindex(entities.index)
        )
        if identify is not None and len(campaigns):
            rename = identify(kind, campaigns, members, entities.index.to_numpy(), X)
            campaigns["campaign_id"] = campaigns["campaign_id"].map(lambda c: rename.get(c, c))
            members = {rename.get(c, c): m for c, m in members.items()}
            noise_campaign = np.array(
                [rename.get(c, c) if c is not None else None for c in noise_campaign],
                dtype=object,
            )
    with stages.stage(f"{kind}: rules"):
        allow = allowlists_for(kind, config)
        blocked_ok = ~_allowlisted(allow, attrs)
        earlier = [(day, compute_attributes(frame, kind)) for day, frame in history or []]
        rc = config.rules
        rules = rules_for_campaigns(
            kind,
            attrs[blocked_ok],
            event_entity[blocked_ok],
            campaigns,
            members,
            unsure=_impurities(kind, entities, campaigns, members),
            run_id=run_id,
            created_at=created_at,
            code_version=code_version(),
            parameters={
                "kind": kind,
                **asdict(config.kind(kind)),
                "rules": config.to_dict()["rules"],
            },
            inducer=GreedyRuleInducer(
                kind,
                min_recall=rc.min_recall,
                n_rules=rc.rules_per_campaign,
                max_predicates=rc.max_predicates,
                max_expected_background=rc.max_expected_background,
                enforce_precision=rc.enforce_precision,
            ),
            guard=Guard(
                enforce_precision=rc.enforce_precision,
                enforce_background_lower=rc.enforce_background_lower,
                max_expected_background=rc.max_expected_background,
                max_traffic_share=rc.max_traffic_share,
                ttl_days=rc.ttl_days,
                action=rc.action,
            ),
            history=[(day, a[~_allowlisted(allow, a)]) for day, a in earlier],
        )
    return KindResult(
        kind=kind,
        events=events,
        attrs=attrs,
        entities=entities,
        features=X,
        labels=labels,
        entity_scores=escore,
        campaigns=campaigns,
        rules=rules,
        clusterer=clusterer,
        attached=noise_campaign,
        cluster_scores=scored,
        metadata={
            "entity_detector": emeta,
            "campaign_detector": scorer.metadata_,
            "known_risk": {"indicators": list(risk.columns), **risk_metadata()},
        },
    )


def known_risk_of(kind: str, entities: pd.DataFrame) -> pd.DataFrame:
    """Known-risk indicators of ``kind``'s entities that its input can give (may be empty).

    The mail domain, IP and ASN columns come from the built-in kinds' table, or from a spec's
    allowlist columns (the roles' domain, prefix and ASN attributes). Captcha, bounce and
    complaint rates are left to the scorer's behaviour columns, so no evidence counts twice.
    """
    args = risk_columns(kind, entities)
    if not args:
        return pd.DataFrame(index=entities.index)
    classes = entities[[c for c in ("domain_class", "network_class") if c in entities]]
    ind = risk_indicators(entities, **args, classes=classes)
    return ind.loc[:, ind.notna().any()].drop(
        columns=["low_captcha", "bounce_rate", "complaint_rate"], errors="ignore"
    )


def allowlists_for(kind: str, config: JobConfig) -> list[dict[str, Any]]:
    """The configured allowlist entries of ``kind``, as bundle entries (rule conditions)."""
    a = getattr(config.allowlists, kind, None)
    if a is None:  # kinds from an entity spec have no configured allowlists
        return []
    return allowlist_entries(kind, domains=a.domains, asns=a.asns, prefixes=a.prefixes, ids=a.ids)


def _allowlisted(entries: list[dict[str, Any]], attrs: pd.DataFrame) -> np.ndarray:
    mask = np.zeros(len(attrs), dtype=bool)
    for entry in entries:
        mask |= evaluate(entry["condition"], attrs)
    return mask


def _add_timer_pools(
    kind: str,
    entities: pd.DataFrame,
    labels: np.ndarray,
    campaigns: pd.DataFrame,
    members: dict[str, np.ndarray],
    times: pd.Series,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Device pools driven by one scheduler become campaigns (new clusters) of their own.

    Their members may look like anyone else in every field, so the density clustering leaves
    them as noise or inside ordinary crowds; :func:`anomaly.cadence.timer_pools` finds them by
    their clock. Members already in a flagged campaign stay where they are.
    """
    pool_column = get_spec(kind).timer_pool
    if pool_column is None or pool_column not in entities or len(entities) == 0:
        return labels, campaigns
    # seconds since the epoch whatever the timestamp unit (readers give us, generators ns)
    epoch = pd.Timestamp(0, tz="UTC")
    seconds = (pd.to_datetime(times, utc=True) - epoch).dt.total_seconds().to_numpy()
    pools = timer_pools(entities[pool_column], seconds)
    if not pools:
        return labels, campaigns
    labels = labels.copy()
    flagged_clusters = set(campaigns.loc[campaigns["flagged"], "cluster_id"])
    ids = entities.index.to_numpy()
    rows = [campaigns]
    for rows_of_pool in pools:
        free = rows_of_pool[~np.isin(labels[rows_of_pool], list(flagged_clusters))]
        if len(free) < 0.5 * len(rows_of_pool):
            continue  # already a flagged campaign
        cid = int(labels.max()) + 1
        labels[free] = cid
        camp = campaign_id_for(kind, ids[free])
        members[camp] = ids[free].astype(str)
        n_dev = entities[pool_column].iloc[free].nunique()
        t = times.iloc[free]
        rows.append(
            pd.DataFrame(
                [
                    {
                        "campaign_id": camp,
                        "kind": kind,
                        "cluster_id": cid,
                        "size": len(free),
                        "score": float("nan"),
                        "flagged": True,
                        "reason": f"{n_dev} devices driven by one scheduler "
                        "(a use at a fixed gap, chained through the pool)",
                        "families_owned": 1,
                        "top_attributes": "",
                        "first_seen": t.min(),
                        "last_seen": t.max(),
                        "hour_concentration": float("nan"),
                    }
                ]
            )
        )
        log.info("%s: timer-driven pool of %d devices, %d entities", kind, n_dev, len(free))
    return labels, pd.concat(rows, ignore_index=True)


def _without_public_providers(kind: str, entities: pd.DataFrame) -> pd.DataFrame:
    """``entities`` with free-mail domains blanked in the mail-domain column.

    A free-mail provider is shared by strangers by accident: when a campaign happens to hold
    most of a small provider's users tonight, the provider's other users are people, not the
    actor's strays, and must neither join campaigns nor be attached to one through it.
    """
    col = risk_columns(kind, entities).get("email_domain")
    if col is None or "domain_class" not in entities:
        return entities
    public = (entities["domain_class"] == "freemail").fillna(False).to_numpy(dtype=bool)
    if not public.any():
        return entities
    out = entities.copy()
    out[col] = out[col].mask(public)
    return out


def _impurities(
    kind: str, entities: pd.DataFrame, campaigns: pd.DataFrame, members: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Per flagged campaign, members outside the crowd that its values hold together.

    A campaign's values are those at least ``MIN_SHARED`` members share and most of whose
    holders tonight are members, in a primary signal family (what the flag rests on). A
    member holding none of them was swept in by its neighbours (two newsletter senders in a
    look-alike-brand cluster), and so is, where the largest crowd the campaign's values
    connect holds most members (members are connected when they share a campaign value),
    every member outside that crowd: its rules need not cover them, nor be charged for
    hitting them.
    """
    primary = [
        a
        for fam, attrs in FAMILIES[kind].items()
        if fam not in SUPPORTING_FAMILIES[kind]
        for a in attrs
        if a in entities
    ]
    out: dict[str, np.ndarray] = {}
    flagged = sorted(set(campaigns.loc[campaigns["flagged"], "campaign_id"]))
    if not flagged:
        return out
    ids = entities.index.astype(str)
    # value codes and holder counts once per attribute, not once per campaign (1M entities)
    coded = []
    for a in primary:
        codes = pd.factorize(entities[a], use_na_sentinel=True)[0]
        ok = codes >= 0
        coded.append((codes, ok, np.bincount(codes[ok], minlength=1)))
    for cid in flagged:
        is_member = ids.isin(pd.Index(members[cid]).astype(str))
        pos = np.flatnonzero(is_member)
        holds = np.zeros(len(pos), dtype=bool)
        # members joined through a campaign value they share: one cause is one connected
        # crowd, and a sub-crowd tied to the rest by none of them (a newsletter's six
        # senders on their own templates, swept into a lure campaign's cluster) is another
        edges_a, edges_b = [], []
        for codes, ok, total in coded:
            if not ok[pos].any():
                continue
            inside = np.bincount(codes[pos][ok[pos]], minlength=len(total))
            theirs = (inside >= MIN_SHARED) & (inside >= OWNED * total)
            member_codes = codes[pos]
            has = ok[pos] & theirs[np.maximum(member_codes, 0)]
            holds |= has
            where = np.flatnonzero(has)
            if len(where):
                first = pd.Series(where).groupby(member_codes[where]).transform("first")
                edges_a.append(where)
                edges_b.append(first.to_numpy())
        if not holds.any():
            continue
        ends_a, ends_b = np.concatenate(edges_a), np.concatenate(edges_b)
        graph = sparse.coo_matrix(
            (np.ones(len(ends_a)), (ends_a, ends_b)), shape=(len(pos), len(pos))
        )
        _, root = csgraph.connected_components(graph, directed=False)
        sizes = np.bincount(root[holds], minlength=len(pos))
        core = holds & (root == int(np.argmax(sizes)))
        if core.sum() < OWNED * len(pos):
            # no crowd holds most of the campaign together (a device pool whose members
            # share one device each with a few others): only the members holding nothing
            # are swept in
            core = holds
        if core.sum() < len(pos):
            out[cid] = ids[pos[~core]].to_numpy()
    return out


def _with_strays(
    attached: dict[int, np.ndarray], strays: np.ndarray, group_of: dict[int, int]
) -> dict[int, np.ndarray]:
    """``attached`` plus the scorer's noise strays of flagged clusters, each entity once."""
    claimed = np.zeros(len(strays), dtype=bool)
    for pos in attached.values():
        claimed[pos] = True
    out = dict(attached)
    cand = np.flatnonzero((strays >= 0) & ~claimed)
    if not len(cand):
        return out
    gids = np.array([group_of.get(int(c), -1) for c in strays[cand]], dtype=np.int64)
    for gid in np.unique(gids[gids >= 0]).tolist():
        extra = cand[gids == gid]
        prev = out.get(gid, np.array([], dtype=np.int64))
        out[gid] = np.sort(np.concatenate([prev, extra]))
    return out


def _campaign_table(
    kind: str,
    entities: pd.DataFrame,
    labels: np.ndarray,
    profiles: pd.DataFrame,
    scored: pd.DataFrame,
    strays: np.ndarray | None = None,
) -> tuple[pd.DataFrame, dict[str, np.ndarray], np.ndarray]:
    """One row per cluster, the members of each campaign, and the campaign of each noise
    entity attached to one (None elsewhere).

    ``strays`` (:attr:`anomaly.scoring.CampaignScorer.strays_`): per noise entity, the cluster
    whose values it holds in several families (-1 elsewhere); it joins that cluster's campaign
    when the cluster is flagged, as the entities attached through exclusive values do.
    """
    ids = entities.index.to_numpy()
    members: dict[str, np.ndarray] = {}
    rows = []
    flag = scored["flagged"].to_numpy(dtype=bool)
    # partial evidence (one owned family, or risky members): may join a flagged campaign
    partial = (scored["families_owned"] >= 1) | scored["risk"]
    suspicious = partial.to_numpy(dtype=bool) & ~flag
    if "detached" in scored:  # a group's bystander: judged with it, holds little of it
        suspicious &= ~scored["detached"].to_numpy(dtype=bool)
    joinable = _without_public_providers(kind, entities)
    group_of = merge_flagged(
        joinable,
        labels,
        scored.index[flag].to_numpy(),
        _MERGE_ATTRIBUTES[kind],
        candidates=scored.index[suspicious].to_numpy(),
    )
    groups: dict[int, list[int]] = {}
    for c, g in sorted(group_of.items()):
        groups.setdefault(g, []).append(c)
    attached = attach_noise(joinable, labels, groups, _ATTACH_ATTRIBUTES[kind])
    if strays is not None:
        # strays of the clusters flagged on their own evidence, not of those that joined
        own = {int(c) for c in scored.index[flag]}
        attached = _with_strays(attached, strays, {c: g for c, g in group_of.items() if c in own})
    campaign_of_noise = np.full(len(labels), None, dtype=object)
    for cid in profiles.index:
        group = groups.get(group_of.get(int(cid), -2), [int(cid)])
        extra = attached.get(group_of.get(int(cid), -2), np.array([], dtype=np.int64))
        mem = np.concatenate([ids[np.isin(labels, group)], ids[extra]])
        camp = campaign_id_for(kind, mem)
        members[camp] = mem.astype(str)
        campaign_of_noise[extra] = camp
        prof = profiles.loc[cid]
        top = []
        for attr in PROFILE_ATTRIBUTES[kind]:
            if f"{attr}_share" in prof and prof[f"{attr}_share"] >= 0.5:
                top.append(f"{attr}={prof[f'{attr}_value']} ({prof[f'{attr}_share']:.0%})")
        sc = scored.loc[cid]
        joined = int(cid) in group_of and not bool(sc["flagged"])
        reason = str(sc["reason"])
        if joined:
            reason += f"; joined the campaign of cluster {group_of[int(cid)]} through shared values"
        rows.append(
            {
                "campaign_id": camp,
                "kind": kind,
                "cluster_id": int(cid),
                "size": int(prof["size"]),
                "score": float(sc["score"]),
                "flagged": bool(sc["flagged"]) or joined,
                "reason": reason,
                "families_owned": int(sc["families_owned"]),
                "top_attributes": "; ".join(top),
                "first_seen": prof.get("first_seen"),
                "last_seen": prof.get("last_seen"),
                "hour_concentration": float(prof.get("hour_concentration", np.nan)),
            }
        )
    if attached:
        log.info(
            "%s: %d stray entities attached to campaigns through exclusive values",
            kind,
            sum(len(v) for v in attached.values()),
        )
    table = pd.DataFrame(
        rows,
        columns=[
            "campaign_id",
            "kind",
            "cluster_id",
            "size",
            "score",
            "flagged",
            "reason",
            "families_owned",
            "top_attributes",
            "first_seen",
            "last_seen",
            "hour_concentration",
        ],
    )
    return table, members, campaign_of_noise


def _assignments(res: KindResult) -> pd.DataFrame:
    camp_of = dict(zip(res.campaigns["cluster_id"], res.campaigns["campaign_id"], strict=True))
    score_of = res.campaigns.groupby("campaign_id")["score"].max().to_dict()
    campaign = np.array([camp_of.get(int(c)) for c in res.labels], dtype=object)
    flagged = set(res.campaigns.loc[res.campaigns["flagged"], "cluster_id"])
    stray = np.array([a is not None for a in res.attached]) & ~np.isin(res.labels, list(flagged))
    campaign[stray] = res.attached[stray]
    return pd.DataFrame(
        {
            "kind": res.kind,
            "entity_id": res.entities.index.astype(str),
            "cluster_id": res.labels.astype(np.int64),
            "campaign_id": pd.array(campaign, dtype="string"),
            "entity_score": res.entity_scores.astype(np.float64),
            "campaign_score": np.array(
                [score_of.get(c, np.nan) if c is not None else np.nan for c in campaign]
            ),
        }
    )


def _run_id(
    inputs: dict[str, ReadResult], config: JobConfig, history: dict[str, list[ReadResult]]
) -> str:
    h = hashlib.sha256()
    for kind in sorted(inputs):
        h.update(f"{kind}:{inputs[kind].sha256}:{inputs[kind].rows_read}".encode())
        for r in history.get(kind, []):
            h.update(f"history:{kind}:{r.sha256}:{r.rows_read}".encode())
    h.update(json.dumps(config.to_dict(), sort_keys=True).encode())
    h.update(code_version().encode())
    return "run-" + h.hexdigest()[:16]


def run_job(
    inputs: dict[str, ReadResult],
    out_dir: str | Path,
    config: JobConfig | None = None,
    *,
    stages: Stages | None = None,
    history: dict[str, list[ReadResult]] | None = None,
    identify: Identify | None = None,
    label_model: dict[str, Any] | None = None,
    finalize_rules: FinalizeRules | None = None,
    previous_bundle: dict[str, Any] | None = _AUTO,
    report: bool = True,
    record_timings: bool = True,
) -> RunResult:
    """Run detection on every input kind and write the outputs into ``out_dir``.

    Parameters
    ----------
    inputs : dict
        kind -> validated input (:func:`pipelines.readers.read_events`).
    out_dir : path
        Created if missing. Files are replaced atomically.
    config : JobConfig, optional
    stages : Stages, optional
        Progress and timings; a quiet one is made when omitted.
    history : dict, optional
        kind -> earlier days' inputs; every rule is backtested on them.
    identify : callable, optional
        Campaign identity across nights (see :func:`detect`).
    label_model : dict, optional
        kind -> fitted :class:`anomaly.label_model.LabelModel` for its scoring (see
        :func:`detect`); kinds without one are scored by the test alone.
    finalize_rules : callable, optional
        Tonight's rules, versions carried, -> the rules the bundle holds.
    previous_bundle : dict or None, optional
        The bundle rule versions are carried from (default: ``out_dir/rules/bundle.json``).
    report : bool
        Write ``report.html`` (the nightly job writes its own, with drift and history).
    record_timings : bool
        Keep stage timings and memory in ``run.json``; without them, the same inputs give
        the same ``run.json`` bytes (the nightly job reports timings as metrics instead).
    """
    from pipelines.report import write_report  # report pulls plotting code; keep it lazy

    if not inputs:
        raise ValueError("no inputs: give --signups, --senders and/or --events")
    config = config or JobConfig()
    stages = stages or Stages(show_progress=False)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    history = history or {}
    run_id = _run_id(inputs, config, history)
    latest = max(inputs[k].frame[get_kind(k).time_column].max() for k in inputs)
    created_at = pd.Timestamp(latest).floor("s").to_pydatetime()
    kinds: dict[str, KindResult] = {}
    for kind in sorted(inputs):
        earlier = [(Path(r.path).stem, r.frame) for r in history.get(kind, [])]
        kinds[kind] = detect(
            kind,
            inputs[kind].frame,
            config,
            stages,
            run_id=run_id,
            created_at=created_at,
            history=earlier,
            identify=identify,
            label_model=(label_model or {}).get(kind),
        )
    with stages.stage("outputs"):
        # a rule that matches the same as in the bundle it replaces keeps its version
        previous = _previous_bundle(out) if previous_bundle is _AUTO else previous_bundle
        all_rules = carry_versions([r for kr in kinds.values() for r in kr.rules], previous)
        if finalize_rules is not None:
            all_rules = finalize_rules(all_rules)
        bundle = build_bundle(
            all_rules,
            run_id=run_id,
            created_at=created_at.isoformat(),
            code_version=code_version(),
            parameters=config.to_dict(),
            allowlists={k: allowlists_for(k, config) for k in sorted(inputs)},
        )
        write_rules(out, bundle)
        assignments = pd.concat([_assignments(kr) for kr in kinds.values()], ignore_index=True)
        atomic_write_parquet(assignments, out / "assignments.parquet")
        campaigns = pd.concat([kr.campaigns for kr in kinds.values()], ignore_index=True)
        atomic_write_parquet(campaigns, out / "campaigns.parquet")
        for kind, kr in kinds.items():
            save_search(out / "search", kind, kr)  # similar-entity search (clustering/search.py)
    record = _record(run_id, inputs, config, kinds, bundle, stages.timings)
    record["history"] = {
        k: [{"path": r.path, "rows_read": r.rows_read, "sha256": r.sha256} for r in rs]
        for k, rs in sorted(history.items())
    }
    if report:
        with stages.stage("report"):
            write_report(out / "report.html", record, kinds, bundle)
    if record_timings:
        record["timings"] = dict(stages.timings)
        record["peak_rss_mib"] = dict(stages.peak_rss_mib)
    else:
        del record["timings"]
    atomic_write_text(
        out / "run.json", json.dumps(record, indent=2, sort_keys=True, default=str) + "\n"
    )
    return RunResult(out_dir=out, run_id=run_id, kinds=kinds, bundle=bundle, record=record)


def _previous_bundle(out: Path) -> dict[str, Any] | None:
    path = out / "rules" / "bundle.json"
    if not path.exists():
        return None
    try:
        return load_bundle(path)
    except (RuleError, ValueError) as e:
        # never block tonight's rules on last night's file; the archive keeps it for review
        log.warning("previous bundle %s unreadable, versions start afresh: %s", path, e)
        return None


def _record(
    run_id: str,
    inputs: dict[str, ReadResult],
    config: JobConfig,
    kinds: dict[str, KindResult],
    bundle: dict[str, Any],
    timings: dict[str, float],
) -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for pkg in ("numpy", "pandas", "scikit-learn", "faiss-cpu", "hdbscan", "pyod", "duckdb"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    return {
        "run_id": run_id,
        "code_version": code_version(),
        "python": platform.python_version(),
        "versions": versions,
        "inputs": {
            k: {
                "path": r.path,
                "format": r.format,
                "rows_read": r.rows_read,
                "rows_rejected": r.rows_rejected,
                "sha256": r.sha256,
                "quarantine": r.quarantine_path,
            }
            for k, r in sorted(inputs.items())
        },
        "parameters": config.to_dict(),
        "counts": {
            k: {
                "events": len(kr.events),
                "entities": len(kr.entities),
                "clusters": len(kr.campaigns),
                "noise_share": round(float(np.mean(kr.labels < 0)), 6) if len(kr.labels) else 0.0,
                "flagged_campaigns": int(kr.campaigns["flagged"].sum()),
                "rules": len(kr.rules),
                "rules_enforce": sum(r.mode == "enforce" for r in kr.rules),
                "graph_components": kr.clusterer.n_components_,
            }
            for k, kr in sorted(kinds.items())
        },
        "detectors": {k: kr.metadata for k, kr in sorted(kinds.items())},
        "bundle_id": bundle.get("bundle_id"),
        "timings": dict(timings),
    }
