"""Campaigns from flagged clusters: fragments of one actor become one campaign.

HDBSCAN often splits one actor along a value it rotates (three user-agent builds, two device
pools), and each fragment alone is too small to prove a rule precise. Flagged clusters are
joined when they share a value that is, tonight, used almost only by flagged entities and that
covers a real part of each fragment: the same throwaway domains, the same device pool, the same
subnet. A suspicious cluster that was not flagged on its own (members unusual one by one, but
no family shared strongly enough) joins a campaign the same way: it is the same actor's
fragment, and leaving it in the background would charge the campaign's rules for hitting it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["merge_flagged"]


def merge_flagged(
    entities: pd.DataFrame,
    labels: np.ndarray,
    flagged: np.ndarray,
    attributes: tuple[str, ...] | list[str],
    *,
    candidates: np.ndarray | None = None,
    exclusive: float = 0.6,
    coverage: float = 0.05,
) -> dict[int, int]:
    """Group flagged clusters that share exclusive values.

    Parameters
    ----------
    entities : DataFrame of shape (n_entities, n_columns)
    labels : ndarray of shape (n_entities,)
        Cluster per entity, -1 for noise.
    flagged : ndarray of int
        Ids of the flagged clusters.
    attributes : columns whose values can join clusters
    candidates : ndarray of int, optional
        Unflagged clusters that may join a campaign (never form one on their own).
    exclusive : float
        Share of a value's holders that must be in flagged (or candidate) clusters; a
        majority, not all: an actor's strays outside every cluster hold its values too.
    coverage : float
        Share of each of the two clusters that the exclusive values they share must cover
        together.

    Returns
    -------
    dict
        Cluster id -> group id (the smallest flagged cluster id in the group), for every
        flagged cluster and every candidate that joined one.
    """
    flagged_set = {int(c) for c in flagged}
    cand = {int(c) for c in (candidates if candidates is not None else [])} - flagged_set
    pool = np.asarray(sorted(flagged_set | cand), dtype=np.int64)
    parent = {int(c): int(c) for c in pool}

    def find(c: int) -> int:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra == rb:
            return
        # a flagged cluster is always the root, so the group id is a flagged cluster
        ra_f, rb_f = ra in flagged_set, rb in flagged_set
        if ra_f != rb_f:
            parent[rb if ra_f else ra] = ra if ra_f else rb
        else:
            parent[max(ra, rb)] = min(ra, rb)

    if len(pool) < 2:
        return {c: c for c in flagged_set}
    in_flagged = np.isin(labels, pool)
    sizes = pd.Series(labels[in_flagged]).value_counts()
    for attr in attributes:
        if attr not in entities:
            continue
        codes, _ = pd.factorize(entities[attr], use_na_sentinel=True)
        present = codes >= 0
        if not present.any():
            continue
        totals = np.bincount(codes[present])
        sel = in_flagged & present
        frame = pd.DataFrame({"c": labels[sel], "v": codes[sel]})
        counts = frame.value_counts(["v", "c"]).reset_index(name="n")
        flagged_total = counts.groupby("v")["n"].transform("sum")
        counts = counts[flagged_total >= exclusive * totals[counts["v"].to_numpy()]]
        # Two clusters join when the exclusive values they share cover enough of each
        # *together*: a pool of 25 devices splits any cluster into small shares per device.
        counts = counts[counts.groupby("v")["c"].transform("size").to_numpy() >= 2]
        if counts.empty:
            continue
        pairs = counts.merge(counts, on="v", suffixes=("_a", "_b"))
        pairs = pairs[pairs["c_a"].to_numpy() < pairs["c_b"].to_numpy()]
        shared = pairs.groupby(["c_a", "c_b"], sort=True)[["n_a", "n_b"]].sum()
        a_ids = shared.index.get_level_values(0).to_numpy()
        b_ids = shared.index.get_level_values(1).to_numpy()
        ok = (shared["n_a"].to_numpy() >= coverage * sizes.reindex(a_ids).to_numpy()) & (
            shared["n_b"].to_numpy() >= coverage * sizes.reindex(b_ids).to_numpy()
        )
        # components (and so group ids) do not depend on the order of the unions
        for a, b in zip(a_ids[ok].tolist(), b_ids[ok].tolist(), strict=True):
            union(int(a), int(b))
    groups = {c: find(c) for c in parent}
    return {c: g for c, g in groups.items() if g in flagged_set}


def attach_noise(
    entities: pd.DataFrame,
    labels: np.ndarray,
    groups: dict[int, list[int]],
    attributes: tuple[str, ...] | list[str],
    *,
    exclusive: float = 0.6,
    rounds: int = 3,
) -> dict[int, np.ndarray]:
    """Entities outside every campaign that hold a value used mostly by one campaign.

    HDBSCAN leaves some of an actor's entities as noise or in an ordinary cluster (a phishing
    sender with few messages, a signup at the edge of the burst). One that holds a value which,
    tonight, at least ``exclusive`` of its holders share with a campaign's members (the
    campaign's look-alike URL domain, its throwaway mail domain, its device pool) is that
    actor's: leaving it in the background would charge the campaign's rules with false
    positives that are no such thing. Use attributes that strangers do not share by accident
    (domains, devices, templates), not shared infrastructure (a carrier's NAT addresses).

    Parameters
    ----------
    entities : DataFrame of shape (n_entities, n_columns)
    labels : ndarray of shape (n_entities,)
    groups : dict
        Campaign group id -> the cluster ids it is made of.
    attributes : columns whose values can attach an entity
    exclusive : float
    rounds : int
        Passes: the strays attached in one pass count as members in the next, so a value
        held mostly by clustered members and strays together attaches the rest.

    Returns
    -------
    dict
        Group id -> positions (into ``entities``) of the noise entities it gains. An entity
        goes to the first group (by id) that claims it.
    """
    in_any = np.isin(labels, [c for cs in groups.values() for c in cs])
    noise = ~in_any
    claimed = np.zeros(len(labels), dtype=bool)
    out: dict[int, np.ndarray] = {}
    codes = {
        a: pd.factorize(entities[a], use_na_sentinel=True)[0] for a in attributes if a in entities
    }
    totals = {
        a: np.bincount(c[c >= 0]) if (c >= 0).any() else np.zeros(0) for a, c in codes.items()
    }
    for gid in sorted(groups):
        members = np.isin(labels, groups[gid])
        gained = np.zeros(len(labels), dtype=bool)
        # Strays attached in one round make the values they carry the campaign's in the next
        # (a look-alike URL domain shared by clustered members and strays alike).
        for _ in range(rounds):
            gain = np.zeros(len(labels), dtype=bool)
            for a, c in codes.items():
                if len(totals[a]) == 0:
                    continue
                held = c[(members | gained) & (c >= 0)]
                if len(held) == 0:
                    continue
                inside = np.bincount(held, minlength=len(totals[a]))
                excl = (inside >= 2) & (inside >= exclusive * totals[a])
                gain |= noise & ~claimed & ~gained & (c >= 0) & excl[np.maximum(c, 0)]
            if not gain.any():
                break
            gained |= gain
        if gained.any():
            out[gid] = np.flatnonzero(gained)
            claimed |= gained
    return out
