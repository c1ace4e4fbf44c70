"""Campaign identity across nights.

Tonight's campaign ids (:func:`anomaly.campaign_rules.campaign_id_for`) hash tonight's member
ids, so the same actor's campaign gets a new id every night, and with it new rule ids
(:func:`anomaly.campaign_rules.rule_id_for`). :func:`match_campaigns` maps tonight's campaigns
onto the persistent campaigns known before tonight so that one actor keeps one id, one
``first_seen`` and one set of rule ids from night to night.

Matching is done within a kind:

1. **Shared members.** ``overlap = |A ∩ B| / min(|A|, |B|)``, a match when it is at least
   ``min_overlap``. The minimum, not the union (Jaccard): a campaign that doubles overnight
   still holds all of yesterday's members but only half of the union, and one that shrinks
   (half its accounts banned) is still wholly inside yesterday's; with the minimum both score
   1.0 and keep their id.
2. **Centroid fallback.** Signups are new accounts every night, so their campaigns share no
   members with any earlier one. A campaign of tonight that no previous campaign matches by
   members is matched to the single nearest previous campaign of its kind (Euclidean distance
   between the centroids) when that distance is at most ``max_centroid_distance``
   (``None``: no fallback). Nearness alone is weaker evidence than shared members, so it
   never merges two earlier campaigns. Centroids must live in the same feature space every
   night; a centroid of another length is not comparable and is skipped.

Resolution, when matches are not one-to-one:

- Each previous campaign has one *heir* among the tonight campaigns that match it: the one
  sharing the most members, then the largest overlap, then the smallest distance, then the
  smallest provisional id. Members shared come first because the min-normalised overlap of a
  three-member fragment wholly inside a large campaign is 1.0, above the 0.99 of the bulk
  that carries the campaign on; the bulk should keep the id.
- A tonight campaign that is heir to one previous campaign continues it (``continuing``).
  Heir to several, it keeps the best one's id (most shared members, then largest overlap,
  then earliest ``first_seen``, then smallest id) as ``merged``, and ``merged_from`` lists the
  others, which end.
- A tonight campaign that matches but inherits nothing has split off: it keeps its
  provisional id (``split``) and ``parent_id`` names the previous campaign it matched best.
- No match at all: ``new``.

Everything is sorted before it is compared, so the result does not depend on row order.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

__all__ = ["MATCH_STATUSES", "RESULT_COLUMNS", "ended_campaigns", "match_campaigns"]

MATCH_STATUSES = ("new", "continuing", "split", "merged")
RESULT_COLUMNS = (
    "provisional_id",
    "kind",
    "campaign_id",
    "status",
    "first_seen",
    "parent_id",
    "merged_from",
    "overlap",
    "distance",
)
# object columns keep None as None (the default string dtype would turn it into NaN)
_DTYPES = {"overlap": np.float64, "distance": np.float64}
_TONIGHT_COLUMNS = ("campaign_id", "kind", "members", "centroid")
_PREVIOUS_COLUMNS = ("campaign_id", "kind", "first_seen", "members", "centroid")


@dataclass(frozen=True, eq=False)  # eq=False: the centroid array has no truth value
class _Campaign:
    id: str
    kind: str
    members: frozenset[str]
    centroid: np.ndarray | None
    first_seen: str | None


@dataclass(frozen=True)
class _Edge:
    """A match between a tonight campaign and a previous one."""

    tonight: str
    previous: str
    shared: int
    overlap: float
    distance: float  # NaN when the centroids are missing or not comparable


# --------------------------------------------------------------------------- inputs


def _members(value: Any, where: str) -> frozenset[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return frozenset()
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValueError(f"{where}: members must be a list or tuple of ids, got {value!r:.80}")
    return frozenset(map(str, value))


def _centroid(value: Any, where: str) -> np.ndarray | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{where}: centroid must be 1-D, got shape {arr.shape}")
    if arr.size == 0 or not np.isfinite(arr).all():
        return None  # nothing to measure a distance with
    return arr


def _campaigns(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> list[_Campaign]:
    """Validated campaigns of ``frame``, sorted by id."""
    if missing := [c for c in columns if c not in frame.columns]:
        raise ValueError(f"{name}: missing column(s) {missing}")
    ids = frame["campaign_id"].astype(str)
    if ids.duplicated().any():
        raise ValueError(f"{name}: duplicate campaign_id {sorted(set(ids[ids.duplicated()]))}")
    out = []
    for cid, row in zip(ids, frame.itertuples(index=False), strict=True):
        where = f"{name} campaign {cid!r}"
        first = getattr(row, "first_seen", None)
        out.append(
            _Campaign(
                id=cid,
                kind=str(row.kind),
                members=_members(row.members, where),
                centroid=_centroid(row.centroid, where),
                first_seen=None if first is None or pd.isna(first) else str(first),
            )
        )
    return sorted(out, key=lambda c: c.id)


# --------------------------------------------------------------------------- matches


def _distance(a: np.ndarray | None, b: np.ndarray | None) -> float:
    if a is None or b is None or a.shape != b.shape:
        return math.nan
    return float(np.linalg.norm(a - b))


def _member_edges(
    tonight: list[_Campaign], previous: list[_Campaign], min_overlap: float
) -> list[_Edge]:
    holders: dict[tuple[str, str], list[_Campaign]] = defaultdict(list)
    for p in previous:  # an entity may sit in several earlier campaigns
        for m in p.members:
            holders[(p.kind, m)].append(p)
    edges = []
    for t in tonight:
        shared: dict[str, int] = defaultdict(int)
        by_id: dict[str, _Campaign] = {}
        for m in t.members:
            for p in holders.get((t.kind, m), ()):
                shared[p.id] += 1
                by_id[p.id] = p
        for pid in sorted(shared):
            p = by_id[pid]
            overlap = shared[pid] / min(len(t.members), len(p.members))
            if overlap >= min_overlap:
                edges.append(
                    _Edge(t.id, pid, shared[pid], overlap, _distance(t.centroid, p.centroid))
                )
    return edges


def _centroid_edges(
    tonight: list[_Campaign], previous: list[_Campaign], max_distance: float
) -> list[_Edge]:
    """One edge per tonight campaign to its nearest previous campaign, if near enough."""
    ids: dict[tuple[str, int], list[str]] = defaultdict(list)
    rows: dict[tuple[str, int], list[np.ndarray]] = defaultdict(list)
    for p in sorted(previous, key=lambda p: (_first_key(p), p.id)):  # argmin's tie order
        if p.centroid is not None:
            ids[(p.kind, p.centroid.size)].append(p.id)
            rows[(p.kind, p.centroid.size)].append(p.centroid)
    stacked = {k: np.stack(v) for k, v in rows.items()}
    edges = []
    for t in tonight:
        key = (t.kind, t.centroid.size if t.centroid is not None else -1)
        if key not in stacked:
            continue  # no centroid, or none of its kind in the same feature space
        dist = np.linalg.norm(stacked[key] - t.centroid, axis=1)
        best = int(np.argmin(dist))
        if dist[best] <= max_distance:
            edges.append(_Edge(t.id, ids[key][best], 0, 0.0, float(dist[best])))
    return edges


def _first_key(p: _Campaign) -> tuple[bool, str]:
    return (p.first_seen is None, p.first_seen or "")  # unknown first_seen sorts last


def _nan_last(x: float) -> float:
    return math.inf if math.isnan(x) else x


# --------------------------------------------------------------------------- resolution


def _resolve(
    tonight: list[_Campaign], previous: dict[str, _Campaign], edges: list[_Edge]
) -> list[dict[str, Any]]:
    """One result row per tonight campaign, in the order of ``tonight``."""
    by_previous: dict[str, list[_Edge]] = defaultdict(list)
    by_tonight: dict[str, list[_Edge]] = defaultdict(list)
    for e in edges:
        by_previous[e.previous].append(e)
        by_tonight[e.tonight].append(e)
    inherited: dict[str, list[_Edge]] = defaultdict(list)  # tonight id -> edges it inherits
    for es in by_previous.values():
        heir = min(es, key=lambda e: (-e.shared, -e.overlap, _nan_last(e.distance), e.tonight))
        inherited[heir.tonight].append(heir)
    taken = set(previous)
    rows = []
    for t in tonight:
        row = _row(t, inherited.get(t.id, []), by_tonight.get(t.id, []), previous)
        if row["status"] in ("new", "split"):
            row["campaign_id"] = _fresh_id(t.id, taken)
        taken.add(row["campaign_id"])
        rows.append(row)
    return rows


def _row(
    t: _Campaign, inherited: list[_Edge], matched: list[_Edge], previous: dict[str, _Campaign]
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "provisional_id": t.id,
        "kind": t.kind,
        "campaign_id": t.id,
        "status": "new",
        "first_seen": None,
        "parent_id": None,
        "merged_from": (),
        "overlap": math.nan,
        "distance": math.nan,
    }
    if inherited:
        keep, *rest = sorted(
            inherited,
            key=lambda e: (-e.shared, -e.overlap, _first_key(previous[e.previous]), e.previous),
        )
        row.update(
            campaign_id=keep.previous,
            status="merged" if rest else "continuing",
            first_seen=previous[keep.previous].first_seen,
            merged_from=tuple(sorted(e.previous for e in rest)),
            overlap=keep.overlap,
            distance=keep.distance,
        )
    elif matched:
        parent = min(
            matched,
            key=lambda e: (
                -e.shared,
                -e.overlap,
                _nan_last(e.distance),
                _first_key(previous[e.previous]),
                e.previous,
            ),
        )
        row.update(
            status="split",
            parent_id=parent.previous,
            overlap=parent.overlap,
            distance=parent.distance,
        )
    return row


def _fresh_id(cid: str, taken: set[str]) -> str:
    # A provisional id is the hash of a member set; should an earlier campaign have been born
    # with exactly these members, reusing its id would splice two histories together.
    if cid not in taken:
        return cid
    n = 2
    while f"{cid}.{n}" in taken:
        n += 1
    log.warning("campaign id %s is already taken; the new campaign is %s.%d", cid, cid, n)
    return f"{cid}.{n}"


# --------------------------------------------------------------------------- API


def match_campaigns(
    tonight: pd.DataFrame,
    previous: pd.DataFrame,
    *,
    min_overlap: float = 0.3,
    max_centroid_distance: float | None = None,
) -> pd.DataFrame:
    """Give each of tonight's campaigns its persistent id (see the module docstring).

    Parameters
    ----------
    tonight : DataFrame of shape (n_tonight, >= 4)
        One row per campaign of tonight: ``campaign_id`` (provisional, unique), ``kind``,
        ``members`` (list or tuple of entity ids), ``centroid`` (1-D float array of shape
        (n_features,), or None).
    previous : DataFrame of shape (n_previous, >= 5)
        The latest state of every persistent campaign that may continue tonight (not those
        that already ended): ``campaign_id`` (unique), ``kind``, ``first_seen`` (YYYY-MM-DD),
        ``members``, ``centroid``; ``last_seen`` and other columns are not read.
    min_overlap : float
        Least ``|A ∩ B| / min(|A|, |B|)`` for a match by members, in (0, 1].
    max_centroid_distance : float, optional
        Greatest Euclidean centroid distance for the fallback; None disables it.

    Returns
    -------
    DataFrame of shape (n_tonight, 9)
        Sorted by ``provisional_id``; columns :data:`RESULT_COLUMNS`: ``provisional_id``,
        ``kind``, ``campaign_id`` (persistent), ``status`` (:data:`MATCH_STATUSES`),
        ``first_seen`` (the kept campaign's for continuing and merged, else None),
        ``parent_id`` (splits, else None), ``merged_from`` (tuple, empty unless merged),
        ``overlap`` and ``distance`` to the kept or parent campaign (NaN when there is none or
        it cannot be measured; overlap 0.0 for a centroid match).

    Raises
    ------
    ValueError
        Missing columns, duplicate ids, members that are not a list, a centroid that is not
        1-D, or parameters out of range.
    """
    if not 0.0 < min_overlap <= 1.0:
        raise ValueError(f"min_overlap {min_overlap!r} must be in (0, 1]")
    if max_centroid_distance is not None and not max_centroid_distance >= 0.0:
        raise ValueError(f"max_centroid_distance {max_centroid_distance!r} must be >= 0")
    now = _campaigns(tonight, _TONIGHT_COLUMNS, "tonight")
    before = _campaigns(previous, _PREVIOUS_COLUMNS, "previous")
    edges = _member_edges(now, before, min_overlap)
    if max_centroid_distance is not None:
        matched = {e.tonight for e in edges}
        unmatched = [t for t in now if t.id not in matched]
        edges += _centroid_edges(unmatched, before, max_centroid_distance)
    rows = _resolve(now, {p.id: p for p in before}, edges)
    result = pd.DataFrame(
        {c: pd.Series([r[c] for r in rows], dtype=_DTYPES.get(c, object)) for c in RESULT_COLUMNS}
    )
    counts = result["status"].value_counts()
    log.info(
        "campaign identity: %d tonight (%s), %d ended",
        len(result),
        ", ".join(f"{counts.get(s, 0)} {s}" for s in MATCH_STATUSES),
        len(ended_campaigns(result, previous)),
    )
    return result


def ended_campaigns(result: pd.DataFrame, previous: pd.DataFrame) -> list[str]:
    """Previous campaign ids that no campaign of tonight continues (merged ones included).

    Every id of ``previous`` that is not continued is listed, so ``previous`` should hold
    only campaigns still alive, or one that ended is reported again each night.

    Parameters
    ----------
    result : DataFrame
        As returned by :func:`match_campaigns`.
    previous : DataFrame
        The ``previous`` given to it (only ``campaign_id`` is read).

    Returns
    -------
    list of str, sorted.
    """
    kept = result.loc[result["status"].isin(["continuing", "merged"]), "campaign_id"]
    return sorted(set(previous["campaign_id"].astype(str)) - set(kept.astype(str)))
