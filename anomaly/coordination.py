"""Is a cluster coordinated? Calibrated tests of shared values, and of members' risk.

A cluster is a campaign candidate when *one cause* stands behind its entities in several
independent signal families (network, client, identity, content): the same device pool *and*
the same name template, the same subnets *and* the same rare client build. A crowd of ordinary
users shares values too, but they are values many others hold (gmail.com, the current Chrome),
or it is a slice of a bigger crowd (some of a campus's students behind its NAT): its values
are not *its own*.

The test, per cluster and family, has two parts, both free of data-set constants:

1. **Exclusivity**: the mean, over members, of the share of their value's holders tonight
   that sit in the cluster, counting only values at least three members share (a pair is the
   commonest innocent coincidence). The cluster *owns* a family when this is at least one
   half: most holders of its members' values are its members, so it is the crowd of those
   values and not
   a slice of a larger one. One half is the definition of "most", not a fitted number; it is
   the same at 20k and at 1M entities because it compares the cluster with its values' own
   holders, whatever the size of the night.
2. **Improbability**: for each value the cluster shares, the hypergeometric tail probability
   that a random group of the cluster's size drawn from tonight's entities holds that many of
   its holders (``scipy.stats.hypergeom``), Bonferroni-corrected over the values the cluster
   holds in that family. The family's p-values of all clusters go through Benjamini-Hochberg
   at ``fdr``: of the (cluster, family) pairs called coordinated, at most that share is
   expected to be chance groupings. This is what keeps tiny groups (two people sharing a
   household's IP) from counting; for clusters of tens of entities the tail is astronomically
   small and exclusivity decides.

Members' **risk** (the entity score of :mod:`anomaly.detectors`, the kind's behaviour columns,
known-risk indicators) is a second, separate test: per column, a one-sided rank test (Mann-
Whitney U, normal approximation with tie correction) of the members against the rest of the
night, Benjamini-Hochberg over all (cluster, column) pairs. It adds evidence and never vetoes:
a cluster that owns two independent families is flagged whatever its members look like one by
one (the Cresci spambots look *more* normal than the humans), and a cluster that owns one
family is flagged only with significant risk (a device pool at a data-centre build with failing
captchas; a content template with bounces) -- an institution's crowd (a campus NAT with its own
domain) owns at most the families its institution explains and has no risk.

Assumptions and failure modes are written up in ``docs/flagging.md``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special, stats

log = logging.getLogger(__name__)

__all__ = [
    "OWNED",
    "FamilyEvidence",
    "benjamini_hochberg",
    "family_evidence",
    "noise_strays",
    "rank_evidence",
    "value_codes",
    "value_groups",
]

# "most": a family is the cluster's own when most holders of its members' values are members
OWNED = 0.5


def benjamini_hochberg(log10_p: np.ndarray, q: float) -> np.ndarray:
    """Which tests Benjamini-Hochberg rejects at false-discovery rate ``q``.

    Parameters
    ----------
    log10_p : ndarray of shape (n_tests,)
        log10 of each p-value (p-values far below float range stay ordered); NaN = not tested.
    q : float
        False-discovery rate in (0, 1).

    Returns
    -------
    ndarray of bool, shape (n_tests,)
    """
    lp = np.asarray(log10_p, dtype=np.float64)
    out = np.zeros(len(lp), dtype=bool)
    tested = np.flatnonzero(~np.isnan(lp))
    m = len(tested)
    if m == 0:
        return out
    order = tested[np.argsort(lp[tested], kind="stable")]
    crit = np.log10(q * np.arange(1, m + 1) / m)
    ok = np.flatnonzero(lp[order] <= crit)
    if len(ok):
        out[order[: ok[-1] + 1]] = True
    return out


@dataclass
class FamilyEvidence:
    """Per cluster and family: exclusivity and the log10 p-value of its sharing."""

    clusters: np.ndarray  # (n_clusters,)
    exclusivity: pd.DataFrame  # (n_clusters, n_families)
    log10_p: pd.DataFrame  # (n_clusters, n_families); 0 where nothing is shared
    attribute: pd.DataFrame  # (n_clusters, n_families): the attribute that gives exclusivity


# Two entities sharing a value is the commonest innocent coincidence (two people in one home,
# one person signing up twice), and a cluster of such pairs is many causes, not one: a value
# is evidence of a common cause when at least three members share it.
MIN_SHARED = 3


def _log10_tail(k: np.ndarray, n_total: int, holders: np.ndarray, size: np.ndarray) -> np.ndarray:
    """log10 P(K >= k) for K ~ Hypergeom(n_total, holders, size).

    SciPy's ``logsf`` sums the pmf term by term (about 27 s for a million-entity night);
    its ``sf`` is Boost's, 160 times faster and exact down to double precision's floor.
    Below that floor the tail is dominated by its first term: ``logpmf(k)`` is a lower bound
    on ``log10 P(K >= k)`` there, short of it by ``log10(1 / (1 - r))`` for a term ratio
    ``r`` (at most 0.14 on a million-entity night): it never overstates the evidence, and
    such a p-value passes any error rate anyway.
    """
    sf = stats.hypergeom.sf(k - 1, n_total, holders, size)
    with np.errstate(divide="ignore"):
        out = np.log10(sf)
    deep = ~(sf > 1e-280)
    if deep.any():
        lpmf = stats.hypergeom.logpmf(k[deep], n_total, holders[deep], size[deep]) / np.log(10)
        out[deep] = np.where(np.isfinite(lpmf), lpmf, -1e300)
    return np.minimum(np.where(np.isfinite(out), out, -1e300), 0.0)


def _sharing(
    labels: np.ndarray,
    codes: np.ndarray,
    clusters: np.ndarray,
    sizes: np.ndarray,
    *,
    p_values: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster: exclusivity, and log10 of the Bonferroni-corrected smallest hypergeometric
    tail, over the values at least :data:`MIN_SHARED` members share (0 and 0 where none)."""
    n_total = len(labels)
    excl = np.zeros(len(clusters))
    out = np.zeros(len(clusters))
    present = codes >= 0
    sel = (labels >= 0) & present
    if not sel.any():
        return excl, out
    totals = np.bincount(codes[present])
    k = np.int64(len(totals))
    keys = labels[sel].astype(np.int64) * k + codes[sel]
    uniq, cnt = np.unique(keys, return_counts=True)
    grp, code = uniq // k, uniq % k
    gpos = np.searchsorted(clusters, grp)
    shared = cnt >= MIN_SHARED
    if not shared.any():
        return excl, out
    g, c, kk = gpos[shared], code[shared], cnt[shared]
    # mean over members of the share of their value's holders that are members
    excl = np.bincount(g, weights=kk / sizes[g] * kk / totals[c], minlength=len(clusters)).astype(
        np.float64
    )
    if not p_values:
        return excl, out
    lp = _log10_tail(kk, n_total, totals[c], sizes[g])
    n_values = np.bincount(g, minlength=len(clusters))
    best = np.full(len(clusters), np.inf)
    np.minimum.at(best, g, lp)
    has = np.isfinite(best)
    out[has] = np.minimum(0.0, best[has] + np.log10(n_values[has]))
    return excl, out


def value_groups(
    entities: pd.DataFrame,
    labels: np.ndarray,
    attributes: list[str] | tuple[str, ...],
    attr_codes: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Join clusters that are fragments of one crowd: labels of the joined groups.

    HDBSCAN splits a crowd along whatever it varies (two user-agent builds, day and night):
    each fragment then holds only part of the crowd's values, and neither looks like their
    owner. Two clusters are joined when values they share (at least three members each) are
    held by neither alone mostly, by the two together mostly (at least half of the holders),
    and cover at least half of each. A cluster that owns a value alone is no fragment of
    another (a vast crowd on gmail.com joins nothing), and values held mostly outside
    clusters (gmail.com on an ordinary night) join nothing either.

    Parameters
    ----------
    entities : DataFrame of shape (n_entities, n_columns)
    labels : ndarray of shape (n_entities,), -1 for noise
    attributes : columns whose values join fragments
    attr_codes : dict, optional
        Attribute -> value codes (:func:`value_codes`), to factorize each column once.

    Returns
    -------
    ndarray of shape (n_entities,)
        The smallest cluster id of each entity's group; -1 for noise.
    """
    labels = np.asarray(labels)
    clusters, sizes = np.unique(labels[labels >= 0], return_counts=True)
    parent = np.arange(len(clusters))
    if attr_codes is None:
        attr_codes = value_codes(entities, attributes)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    for attr in attributes:
        if attr not in entities or len(clusters) < 2:
            continue
        codes = attr_codes[attr]
        present = codes >= 0
        sel = (labels >= 0) & present
        if not sel.any():
            continue
        totals = np.bincount(codes[present])
        frame = pd.DataFrame({"v": codes[sel], "c": np.searchsorted(clusters, labels[sel])})
        counts = frame.value_counts(["v", "c"]).reset_index(name="n")
        counts = counts[counts["n"] >= MIN_SHARED]
        by_value = counts.groupby("v")
        held = by_value["n"].transform("sum").to_numpy()
        n_clusters = by_value["c"].transform("size").to_numpy()
        total = totals[counts["v"].to_numpy()]
        keep = (n_clusters >= 2) & (2 * held >= total)
        # the joining values must be what both fragments are made of: together they cover
        # most of each (a device pool of 40 ids covers a fragment only all together)
        counts = counts[keep]
        if counts.empty:
            continue
        pairs = counts.merge(counts, on="v", suffixes=("_a", "_b"))
        pairs = pairs[pairs["c_a"].to_numpy() < pairs["c_b"].to_numpy()]
        total_v = totals[pairs["v"].to_numpy()]
        na, nb = pairs["n_a"].to_numpy(), pairs["n_b"].to_numpy()
        # fragments are slices that own the value only together; a cluster that owns it
        # alone is no fragment of another (a vast crowd and gmail.com)
        pairs = pairs[(2 * na < total_v) & (2 * nb < total_v) & (2 * (na + nb) >= total_v)]
        cover = pairs.groupby(["c_a", "c_b"], sort=True)[["n_a", "n_b"]].sum()
        a_ids = cover.index.get_level_values(0).to_numpy()
        b_ids = cover.index.get_level_values(1).to_numpy()
        ok = (2 * cover["n_a"].to_numpy() >= sizes[a_ids]) & (
            2 * cover["n_b"].to_numpy() >= sizes[b_ids]
        )
        for a, b in zip(a_ids[ok].tolist(), b_ids[ok].tolist(), strict=True):
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(i) for i in range(len(clusters))], dtype=np.int64)
    out = np.full(len(labels), -1, dtype=np.int64)
    member = labels >= 0
    out[member] = clusters[roots[np.searchsorted(clusters, labels[member])]]
    return out


def value_codes(
    entities: pd.DataFrame, attributes: list[str] | tuple[str, ...]
) -> dict[str, np.ndarray]:
    """Integer value codes per attribute of ``entities`` (-1 where missing)."""
    # an empty string is no value strangers could share on purpose: missing, like null
    return {
        a: pd.factorize(_blank_as_missing(entities[a]), use_na_sentinel=True)[0]
        for a in attributes
        if a in entities
    }


def _blank_as_missing(col: pd.Series) -> pd.Series:
    if col.dtype != object and not isinstance(col.dtype, pd.StringDtype):
        return col
    blank = (col == "").to_numpy(dtype=bool, na_value=False)
    return col.mask(blank) if blank.any() else col


def noise_strays(
    entities: pd.DataFrame,
    labels: np.ndarray,
    families: dict[str, tuple[str, ...]],
    *,
    primary: tuple[str, ...] | list[str] | None = None,
    clusters: np.ndarray | None = None,
    codes: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Labels with each noise entity that is a cluster's stray given that cluster's label.

    HDBSCAN's noise means "not confidently placed", not "not a member": an actor whose
    entities vary in many values (a throwaway domain and a random name each) leaves half of
    itself as noise, and the clustered half then holds only half of its values' holders and
    looks like a slice of a larger crowd. A cluster *leans on* a value when at least
    :data:`MIN_SHARED` members share it and at least :data:`OWNED` of its *clustered* holders
    are members. A noise entity is the cluster's stray when it holds a value ``v`` the
    cluster leans on in one family and also values it leans on in another (one of the two
    primary), and the tie holds *both ways, mostly beyond chance*: the share of ``v``'s noise
    holders that also hold the cluster's values of the other family exceeds the share of all
    the noise that does by at least :data:`OWNED`, and the same for the entity's value of the
    other family towards the first.

    The excess over the noise's own rate is what tells an actor's unplaced entities from
    ordinary ones: a carrier's users on gmail.com hold the carrier's NAT and gmail.com as
    often as gmail.com is popular, and a country's users hold its networks and its mail
    domains together more than at random, but not "most of them, beyond the rate of the
    night"; an actor's unplaced entities hold its subnets *with* its old browser builds,
    which nobody else holds. Both ways, because one way is what a country does: the holders
    of its display-name spellings sit on its networks, not the other way round.

    Parameters
    ----------
    entities : DataFrame of shape (n_entities, n_columns)
    labels : ndarray of shape (n_entities,), -1 for noise
    families : dict
        Family name -> attribute columns of ``entities``.
    primary : sequence of str, optional
        Families of which a stray's pair must hold one (default: all of them).
    clusters : ndarray of int, optional
        The clusters that may gain strays (default: all).
    codes : dict, optional
        Attribute -> value codes (:func:`value_codes`), to factorize each column once.

    Returns
    -------
    ndarray of shape (n_entities,)
        ``labels`` with strays relabelled; a stray of several clusters goes to the one it is
        tied to through the most (value, family) pairs (then the smallest id).
    """
    labels = np.asarray(labels)
    out = labels.copy()
    noise_pos = np.flatnonzero(labels < 0)
    n_noise = len(noise_pos)
    if n_noise < MIN_SHARED or not (labels >= 0).any():
        return out
    if clusters is not None and not len(clusters):
        return out
    primary_set = set(families if primary is None else primary)
    if codes is None:
        codes = value_codes(entities, [a for attrs in families.values() for a in attrs])
    # per family and attribute: the cluster each noise entity's value leans on (-1: none)
    # and the value's code
    leaning: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for fam, attrs in families.items():
        for a in attrs:
            if a not in entities:
                continue
            col = codes[a]
            sel = (labels >= 0) & (col >= 0)
            if not sel.any():
                continue
            k = np.int64(col.max() + 1)
            clustered_total = np.bincount(col[sel], minlength=int(k))
            keys = labels[sel].astype(np.int64) * k + col[sel]
            uniq, cnt = np.unique(keys, return_counts=True)
            code = uniq % k
            lean = (cnt >= MIN_SHARED) & (cnt >= OWNED * clustered_total[code])
            if not lean.any():
                continue
            # at most one cluster holds a majority of a value's clustered holders
            owner = np.full(int(k), -1, dtype=np.int64)
            owner[code[lean]] = uniq[lean] // k
            if clusters is not None:
                owner[~np.isin(owner, clusters)] = -1
            nc = col[noise_pos]
            held = np.where(nc >= 0, owner[np.maximum(nc, 0)], -1)
            if (held >= 0).any():
                leaning.setdefault(fam, []).append((held, nc))
    # per family: how much of the noise holds each cluster's values of that family
    base: dict[str, pd.Series] = {}
    for fam, cols in leaning.items():
        pairs = pd.concat(
            [pd.DataFrame({"e": np.flatnonzero(h >= 0), "c": h[h >= 0]}) for h, _ in cols]
        ).drop_duplicates()
        base[fam] = pairs["c"].value_counts() / n_noise
    # tied[(a, b)]: the cluster a noise entity is tied to from family a towards family b
    tied: dict[tuple[str, str], np.ndarray] = {}
    for fam_a, cols_a in leaning.items():
        for fam_b, cols_b in leaning.items():
            if fam_a == fam_b or not ({fam_a, fam_b} & primary_set):
                continue
            towards = np.full(n_noise, -1, dtype=np.int64)
            for held_a, code_a in cols_a:
                mask = held_a >= 0
                also = np.zeros(n_noise, dtype=bool)
                for held_b, _ in cols_b:
                    also |= mask & (held_b == held_a)
                pos = np.flatnonzero(mask)
                frame = pd.DataFrame({"v": code_a[pos], "x": also[pos]})
                per = frame.groupby("v", sort=True)["x"].agg(["size", "sum"])
                owner = pd.Series(held_a[pos], index=code_a[pos]).groupby(level=0).first()
                rate = base[fam_b].reindex(owner.reindex(per.index).to_numpy()).fillna(0.0)
                excess = per["sum"].to_numpy() / per["size"].to_numpy() - rate.to_numpy()
                values = per.index[(per["sum"].to_numpy() >= MIN_SHARED) & (excess >= OWNED)]
                if not len(values):
                    continue
                hit = pos[also[pos] & np.isin(code_a[pos], values.to_numpy())]
                towards[hit] = held_a[hit]
            tied[(fam_a, fam_b)] = towards
    # both ways: the actor's subnets are held with its builds, and its builds with its
    # subnets; a country's display-name spellings are held with its networks, but its
    # networks not with those spellings
    ties_e, ties_c = [], []
    for (fam_a, fam_b), towards in tied.items():
        if fam_a > fam_b or (fam_b, fam_a) not in tied:
            continue
        both = np.flatnonzero((towards >= 0) & (towards == tied[(fam_b, fam_a)]))
        ties_e.append(both)
        ties_c.append(towards[both])
    if not ties_e or not sum(len(t) for t in ties_e):
        return out
    ties = pd.DataFrame({"e": np.concatenate(ties_e), "c": np.concatenate(ties_c)})
    per_e = ties.value_counts().reset_index(name="n")
    per_e = per_e.sort_values(["e", "n", "c"], ascending=[True, False, True], kind="stable")
    best = per_e.drop_duplicates("e")
    out[noise_pos[best["e"].to_numpy()]] = best["c"].to_numpy()
    return out


def family_evidence(
    entities: pd.DataFrame,
    labels: np.ndarray,
    families: dict[str, tuple[str, ...]],
    extended: np.ndarray | None = None,
    codes: dict[str, np.ndarray] | None = None,
) -> FamilyEvidence:
    """Exclusivity and improbability of every cluster's sharing, per signal family.

    Parameters
    ----------
    entities : DataFrame of shape (n_entities, n_columns)
    labels : ndarray of shape (n_entities,)
        Cluster per entity, -1 for noise.
    families : dict
        Family name -> attribute columns of ``entities``.
    extended : ndarray of shape (n_entities,), optional
        ``labels`` with the clusters' noise strays (:func:`noise_strays`): exclusivity counts
        them as members; the p-values stay those of the clusters HDBSCAN formed.
    codes : dict, optional
        Attribute -> value codes (:func:`value_codes`), to factorize each column once.

    Returns
    -------
    FamilyEvidence
        A family's exclusivity is its best attribute's; its p-value that attribute's.
    """
    labels = np.asarray(labels)
    clusters, sizes = np.unique(labels[labels >= 0], return_counts=True)
    if codes is None:
        codes = value_codes(entities, [a for attrs in families.values() for a in attrs])
    ext_labels, ext_sizes = None, None
    if extended is not None and (np.asarray(extended) != labels).any():
        ext_labels = np.asarray(extended)
        ext_sizes = np.bincount(
            np.searchsorted(clusters, ext_labels[ext_labels >= 0]), minlength=len(clusters)
        )
    excl = pd.DataFrame(index=pd.Index(clusters, name="cluster_id"))
    lp = pd.DataFrame(index=excl.index)
    attr = pd.DataFrame(index=excl.index)
    for fam, members in families.items():
        cols_e, cols_p, names = [], [], []
        for a in members:
            if a not in entities:
                continue
            col = codes[a]
            e, p = _sharing(labels, col, clusters, sizes)
            if ext_labels is not None and ext_sizes is not None:
                e, _ = _sharing(ext_labels, col, clusters, ext_sizes, p_values=False)
            cols_e.append(e)
            cols_p.append(p)
            names.append(a)
        if not names:
            excl[fam] = 0.0
            lp[fam] = 0.0
            attr[fam] = None
            continue
        e = np.column_stack(cols_e)
        p = np.column_stack(cols_p)
        best = np.argmax(e, axis=1)
        rows = np.arange(len(clusters))
        excl[fam] = e[rows, best]
        lp[fam] = p[rows, best]
        attr[fam] = np.asarray(names, dtype=object)[best]
    return FamilyEvidence(clusters, excl, lp, attr)


def rank_evidence(labels: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-sided Mann-Whitney U of each cluster's members against the rest of the night.

    Parameters
    ----------
    labels : ndarray of shape (n_entities,)
    values : ndarray of shape (n_entities,)
        Higher = riskier; NaN = unknown (left out of the test).

    Returns
    -------
    auc : ndarray of shape (n_clusters,)
        P(member > non-member) + P(tie)/2, the U statistic over its range (0.5 = no shift).
    log10_p : ndarray of shape (n_clusters,)
        log10 of the normal approximation's upper tail, with the tie correction.
    """
    labels = np.asarray(labels)
    v = np.asarray(values, dtype=np.float64)
    clusters = np.unique(labels[labels >= 0])
    auc = np.full(len(clusters), 0.5)
    lp = np.zeros(len(clusters))
    known = ~np.isnan(v)
    n = int(known.sum())
    if n < 3 or len(clusters) == 0:
        return auc, lp
    ranks = stats.rankdata(v[known])
    lab = labels[known]
    member = lab >= 0
    pos = np.searchsorted(clusters, lab[member])
    n1 = np.bincount(pos, minlength=len(clusters)).astype(np.float64)
    r1 = np.bincount(pos, weights=ranks[member], minlength=len(clusters))
    n2 = n - n1
    u = r1 - n1 * (n1 + 1) / 2
    _, tie_counts = np.unique(v[known], return_counts=True)
    tie = float(np.sum(tie_counts**3 - tie_counts)) / (n * (n - 1))
    var = n1 * n2 / 12.0 * ((n + 1) - tie)
    ok = (n1 > 0) & (n2 > 0) & (var > 0)
    auc[ok] = u[ok] / (n1[ok] * n2[ok])
    z = np.zeros(len(clusters))
    z[ok] = (u[ok] - n1[ok] * n2[ok] / 2 - 0.5) / np.sqrt(var[ok])  # continuity-corrected
    lp[ok] = special.log_ndtr(-z[ok]) / np.log(10)
    return auc, lp
