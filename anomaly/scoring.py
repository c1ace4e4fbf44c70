"""Entity and campaign scores, and the flag: a calibrated test of coordination.

Alone each campaign member is unremarkable (an IsolationForest scores real spambots *below*
humans); together they are a coordinated cluster. So the entity score (PyOD on each entity's
behaviour) is evidence, never a veto, and the flag asks how improbable the cluster's sharing
is (:mod:`anomaly.coordination`):

1. per signal family (network, client, identity, content), the cluster's exclusivity (how much
   of its values' holders tonight are its members) and the hypergeometric tail probability of
   its sharing under random grouping; the cluster *owns* a family when most holders of its
   values are its members and the tail survives Benjamini-Hochberg at ``fdr`` over every
   (cluster, family) test of the night;
2. per risk column (the entity score, the kind's behaviour columns, known-risk indicators), a
   one-sided Mann-Whitney test of members against the rest of the night, Benjamini-Hochberg
   at ``fdr``, and a large effect (AUC at least 0.714, Cohen's d = 0.8);
3. flagged: ``min_families`` owned independent families, or one with risky members.

Nothing here depends on the size of the night or on abuse being the minority: exclusivity
compares a cluster with its values' own holders, and the tests' error rate is stated over the
night's clusters. ``docs/flagging.md`` has the assumptions and failure modes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from anomaly.coordination import (
    MIN_SHARED,
    OWNED,
    benjamini_hochberg,
    family_evidence,
    noise_strays,
    rank_evidence,
    value_codes,
    value_groups,
)
from anomaly.detectors import DetectorEnsemble
from clustering.kinds import SpecView

log = logging.getLogger(__name__)

__all__ = ["FAMILIES", "SUPPORTING_FAMILIES", "CampaignScorer", "entity_scores"]

# Per kind, from its entity spec (clustering/specs/*.toml for the built-in kinds).
# Independent signal families: an actor rarely shares values in several of them by chance.
FAMILIES: SpecView[dict[str, tuple[str, ...]]] = SpecView(lambda s: s.families)
# Families that count only beside another: mail senders share their provider's sending
# addresses (an ESP's, a shop platform's) with strangers, so shared sending infrastructure
# alone says "same provider", not "same actor".
SUPPORTING_FAMILIES: SpecView[frozenset[str]] = SpecView(lambda s: s.supporting_families)
# Behaviour of the entity score, and the columns where a *low* value is the suspicious one.
_BEHAVIOUR: SpecView[tuple[str, ...]] = SpecView(lambda s: s.behaviour)
_LOW_IS_SUSPICIOUS: SpecView[frozenset[str]] = SpecView(lambda s: s.low_is_suspicious)
# Cohen's "large" effect (d = 0.8) as a probability of superiority: a member outranks a random
# entity of the night 71% of the time. A convention, not fitted: with thousands of members a
# test alone calls a 51% shift significant.
LARGE_EFFECT_AUC = 0.714


def entity_scores(
    behaviour: pd.DataFrame, random_state: int = 0
) -> tuple[np.ndarray, dict[str, Any]]:
    """PyOD ensemble score per entity (higher = more anomalous) and its metadata.

    Parameters
    ----------
    behaviour : DataFrame of shape (n_entities, n_features)
        Numeric behaviour; missing values are filled with the column median.
    """
    X = behaviour.apply(pd.to_numeric, errors="coerce").astype("float64")
    X = X.fillna(X.median()).fillna(0.0).to_numpy()
    if len(X) < 2 or X.shape[1] == 0:
        return np.zeros(len(X)), {"detector": "none", "reason": "too few entities or features"}
    ens = DetectorEnsemble(random_state=random_state).fit(X)
    return ens.decision_scores_, ens.metadata_


@dataclass
class CampaignScorer:
    """Flag clusters whose members are coordinated, with a stated false-discovery rate.

    The decision (:mod:`anomaly.coordination`, ``docs/flagging.md``): a cluster is flagged when
    it *owns* (exclusivity at least one half, Benjamini-Hochberg significant at ``fdr``)
    ``min_families`` independent signal families, or one family with significantly risky
    members (a large rank effect, also at ``fdr``). A supporting family (senders' sending
    networks, shared with strangers at every mail provider) counts only beside a primary one.

    Parameters
    ----------
    kind : str
    fdr : float
        False-discovery rate of both Benjamini-Hochberg procedures (family ownership, risk).
    min_families : int
        Owned families that flag a cluster without risk evidence: the "several independent
        signals" of the definition, not a fitted number.
    random_state : int
        Kept for the estimator contract; the tests are deterministic.
    label_model : anomaly.label_model.LabelModel, optional
        Fitted on analysts' labelled clusters; where usable, its P(abuse) >= 0.5 decides
        (``test_flagged`` keeps the test's own decision, ``label_probability`` the model's).

    Attributes
    ----------
    metadata_ : dict
        The test's settings and counts (detector, version, fdr, tests, strays).
    strays_ : ndarray of shape (n_entities,)
        After :meth:`score`: per noise entity, the group (its smallest cluster id) whose values
        it holds as a stray (:func:`anomaly.coordination.noise_strays`); -1 elsewhere.
    """

    kind: str
    fdr: float = 0.05
    min_families: int = 2
    random_state: int = 0
    label_model: Any = None
    metadata_: dict[str, Any] = field(default_factory=dict, init=False)
    _last_tests: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    strays_: np.ndarray | None = field(default=None, init=False, repr=False)
    _owned: pd.DataFrame | None = field(default=None, init=False, repr=False)
    _attribute: pd.DataFrame | None = field(default=None, init=False, repr=False)

    def _risk_columns(
        self, entities: pd.DataFrame, escore: np.ndarray, risk: pd.DataFrame | None
    ) -> dict[str, np.ndarray]:
        """Per-entity risk values, oriented higher = riskier."""
        cols = {"entity_score": np.asarray(escore, dtype=np.float64)}
        for col in _BEHAVIOUR[self.kind]:
            if col in entities:
                v = pd.to_numeric(entities[col], errors="coerce").astype("float64").to_numpy()
                cols[col] = -v if col in _LOW_IS_SUSPICIOUS[self.kind] else v
        if risk is not None:
            for col in risk.columns:
                cols[col] = pd.to_numeric(risk[col], errors="coerce").astype("float64").to_numpy()
        return cols

    def _group_scores(
        self,
        entities: pd.DataFrame,
        labels: np.ndarray,
        escore: np.ndarray,
        risk: pd.DataFrame | None,
        codes: dict[str, np.ndarray],
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """The evidence and flag of each group (``labels``: group per entity, -1 noise), and
        ``labels`` with the risky groups' noise strays."""
        fams = list(FAMILIES[self.kind])
        supporting = SUPPORTING_FAMILIES.get(self.kind, frozenset())
        # risk: large, significant rank shifts of members against the rest of the night
        cols = self._risk_columns(entities, escore, risk)
        aucs, lps = {}, {}
        for col, v in cols.items():
            aucs[col], lps[col] = rank_evidence(labels, v)
        auc_m = np.column_stack(list(aucs.values()))
        lp_m = np.column_stack(list(lps.values()))
        risk_sig = benjamini_hochberg(lp_m.ravel(), self.fdr).reshape(lp_m.shape)
        risky = risk_sig & (auc_m >= LARGE_EFFECT_AUC)
        groups = np.unique(labels[labels >= 0])
        # Only a risky group's noise counts as its strays: an ordinary crowd's values are held
        # in the noise by more of the same (a provider's other customers, on its network and
        # its domain), one cause that is no campaign's, and counting them would make the
        # crowd own what its provider explains.
        extended = noise_strays(
            entities,
            labels,
            FAMILIES[self.kind],
            primary=[f for f in fams if f not in supporting],
            clusters=groups[risky.any(axis=1)],
            codes=codes,
        )
        ev = family_evidence(entities, labels, FAMILIES[self.kind], extended=extended, codes=codes)
        out = ev.exclusivity.copy()
        sizes = pd.Series(labels[labels >= 0]).value_counts()
        out["log_size"] = np.log(sizes.reindex(out.index).to_numpy(dtype=np.float64))
        n_strays = pd.Series(extended[(extended >= 0) & (labels < 0)]).value_counts()
        strays = n_strays.reindex(out.index).fillna(0).to_numpy(dtype=np.int64)
        for fam in fams:
            out[f"{fam}_log10p"] = -ev.log10_p[fam]
        # one BH over every (cluster, family) test: the error rate is stated over the night
        lp = ev.log10_p[fams].to_numpy()
        tested = np.where(ev.exclusivity[fams].to_numpy() > 0, lp, np.nan)
        significant = benjamini_hochberg(tested.ravel(), self.fdr).reshape(lp.shape)
        owned = pd.DataFrame(
            (ev.exclusivity[fams].to_numpy() >= OWNED) & significant,
            index=out.index,
            columns=fams,
        )
        primary_fams = [f for f in fams if f not in supporting]
        brand = _brand_mail(entities, labels, out.index)
        if brand is not None and "content" in owned:
            # Senders whose links go to their own domain (a shop's order mail) share templates
            # as every shop does: their content counts only beside identity or client evidence.
            own = [f for f in primary_fams if f != "content"]
            owned["content"] &= ~brand | owned[own].any(axis=1)
        org = _organisation_domain(labels, out.index, ev.attribute, risk)
        if org is not None and {"identity", "network"} <= set(owned.columns):
            # An organisation's people use its own mail domain from its own network: one cause
            # (the organisation), so the two families count once. A throwaway or free-mail
            # domain carries no such tie to a network.
            owned["identity"] &= ~(org & owned["network"])
        n_primary = owned[primary_fams].sum(axis=1)
        n_owned = np.where(n_primary > 0, owned.sum(axis=1), 0)
        out["families_owned"] = n_owned.astype(int)
        out["organisation_domain"] = org if org is not None else pd.Series(False, out.index)
        for col in cols:
            out[f"{col}_auc"] = aucs[col]
        out["risk"] = risky.any(axis=1)
        strongest = np.where(risky, auc_m, 0.0).max(axis=1)
        out["flagged"] = (out["families_owned"] >= self.min_families) | (
            (out["families_owned"] >= 1) & out["risk"]
        )
        # ranking, in [0, 1]: the share of the evidence a cluster could hold (every family
        # exclusive, the strongest risk effect complete)
        total = ev.exclusivity[fams].sum(axis=1).to_numpy() + np.where(out["risk"], strongest, 0)
        out["score"] = (total / (len(fams) + 1)).round(6)
        names = list(cols)
        out["reason"] = [
            _reason(
                owned.loc[c],
                ev.exclusivity.loc[c, fams],
                ev.attribute.loc[c, fams],
                [n for n, r in zip(names, risky[i], strict=True) if r],
                supporting,
                self.min_families,
                int(strays[i]),
            )
            for i, c in enumerate(out.index)
        ]
        self._owned = owned
        self._attribute = ev.attribute[fams]
        self._last_tests = {
            "risk_columns": names,
            "tests": int(np.isfinite(tested).sum()) + lp_m.size,
            "strays": int(((extended >= 0) & (labels < 0)).sum()),
        }
        return out, extended

    def _detach_bystanders(
        self,
        entities: pd.DataFrame,
        labels: np.ndarray,
        groups: np.ndarray,
        extended: np.ndarray,
        out: pd.DataFrame,
        codes: dict[str, np.ndarray],
    ) -> None:
        """Unflag a group's clusters that hold too little of the evidence it was flagged on.

        Fragments are judged together, but a cluster joins a group through one family (a
        carrier's CGNAT subnets it shares with a phone farm) while the group may be flagged on
        others (the farm's device pool). A cluster keeps the group's flag only where at least
        half of its members hold the group's owned values (held by at least
        :data:`MIN_SHARED` of the group, at least :data:`OWNED` of their holders in it) in
        every family the group owns, or in ``min_families`` of them. The others are marked
        ``detached``: unflagged, and never joined to a campaign afterwards. ``codes`` are the
        family attributes' value codes of the test (:func:`value_codes`: blanks are missing).
        """
        out["detached"] = False
        owned, attribute = self._owned, self._attribute
        if owned is None or attribute is None:
            return
        clustered = labels >= 0
        n_clusters = out["group"].value_counts()  # clusters per group, not members
        multi = n_clusters.index[n_clusters.to_numpy() > 1]
        judged = out["flagged"].to_numpy(dtype=bool) & np.isin(out["group"].to_numpy(), multi)
        if not judged.any():
            return
        group_ids = out["group"].to_numpy()
        in_judged = clustered & np.isin(groups, group_ids[judged])
        takes_part = pd.DataFrame(False, index=out.index, columns=owned.columns)
        for fam in owned.columns:
            fam_owned = owned[fam].reindex(multi).fillna(False).astype(bool)
            attrs = attribute[fam].reindex(fam_owned.index[fam_owned.to_numpy()])
            for attr in pd.unique(attrs.dropna()):
                col = codes[attr]
                present = col >= 0
                if not present.any():
                    continue
                totals = np.bincount(col[present])
                gs = attrs.index[(attrs == attr).to_numpy()].to_numpy()
                sel = in_judged & present & np.isin(groups, gs)
                # the group's noise strays hold its values too (they counted in its flag)
                with_strays = present & np.isin(extended, gs) & (in_judged | ~clustered)
                k = np.int64(len(totals))
                all_keys = extended[with_strays].astype(np.int64) * k + col[with_strays]
                uniq, cnt = np.unique(all_keys, return_counts=True)
                value_owned = (cnt >= MIN_SHARED) & (cnt >= OWNED * totals[uniq % k])
                keys = groups[sel].astype(np.int64) * k + col[sel]
                holds = np.isin(keys, uniq[value_owned])
                share = pd.Series(holds).groupby(labels[sel]).sum() / pd.Series(
                    labels[clustered]
                ).value_counts().reindex(np.unique(labels[sel]))
                part = share.reindex(out.index).fillna(0.0).to_numpy() >= 0.5
                takes_part[fam] |= part & np.isin(group_ids, gs)
        n_part = takes_part.sum(axis=1).to_numpy()
        need = np.minimum(out["families_owned"].to_numpy(), self.min_families)
        detached = judged & (n_part < need)
        if not detached.any():
            return
        out.loc[detached, "detached"] = True
        out.loc[detached, "flagged"] = False
        out.loc[detached, "reason"] = [
            f"judged with the clusters of group {g}, but holds its owned values in {n} of the "
            f"{int(f)} families it was flagged on: not flagged with it"
            for g, n, f in zip(
                group_ids[detached],
                n_part[detached],
                out.loc[detached, "families_owned"],
                strict=True,
            )
        ]

    def score(
        self,
        entities: pd.DataFrame,
        labels: np.ndarray,
        escore: np.ndarray,
        risk: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Evidence, flag and explanation per cluster.

        Parameters
        ----------
        entities : DataFrame of shape (n_entities, n_columns)
        labels : ndarray of shape (n_entities,), -1 for noise
        escore : ndarray of shape (n_entities,)
            Entity scores from :func:`entity_scores` (higher = more anomalous).
        risk : DataFrame of shape (n_entities, n_indicators), optional
            Known-risk indicators (higher = riskier; NaN = unknown), e.g. from
            :func:`clustering.known_risk.risk_indicators`.

        Returns
        -------
        DataFrame indexed by cluster id: per family its exclusivity (``<family>``) and
        ``-log10`` p-value (``<family>_log10p``), per risk column its rank effect
        (``<col>_auc``), ``families_owned``, ``risk``, ``score``, ``flagged``, ``reason`` and
        ``detached`` (a cluster judged with its group but not flagged with it).
        """
        if not 0 < self.fdr < 1:
            raise ValueError("fdr must be in (0, 1)")
        if self.min_families < 1:
            raise ValueError("min_families must be at least 1")
        labels = np.asarray(labels)
        fams = list(FAMILIES[self.kind])
        clusters = np.unique(labels[labels >= 0])
        if len(clusters) == 0:
            self.metadata_ = {"detector": "coordination", "reason": "no clusters"}
            return pd.DataFrame(
                columns=[
                    *fams,
                    "group",
                    "families_owned",
                    "risk",
                    "score",
                    "flagged",
                    "reason",
                    "detached",
                ],
                index=pd.Index([], name="cluster_id"),
            )
        # fragments of one crowd are judged together: a half of a campaign holds half of its
        # values, a slice of a campus a slice of its NAT
        attributes = [a for fam in FAMILIES[self.kind].values() for a in fam]
        codes = value_codes(entities, attributes)
        groups = value_groups(entities, labels, attributes, codes)
        group_of = (
            pd.Series(groups[labels >= 0], index=labels[labels >= 0]).groupby(level=0).first()
        )
        gl, extended = self._group_scores(entities, groups, escore, risk, codes)
        self.strays_ = np.where(labels < 0, extended, -1)
        out = gl.reindex(group_of.reindex(clusters).to_numpy())
        out.index = pd.Index(clusters, name="cluster_id")
        out.insert(len(fams), "group", group_of.reindex(clusters).to_numpy())
        if self.label_model is not None and getattr(self.label_model, "usable_", False):
            p = self.label_model.predict_proba(out)
            out["test_flagged"] = out["flagged"]
            out["label_probability"] = p
            out["flagged"] = p >= 0.5
            changed = out["flagged"] != out["test_flagged"]
            out.loc[changed, "reason"] = [
                f"{r}; analysts' labels overrule the test: P(abuse) {q:.2f}"
                for r, q in zip(out.loc[changed, "reason"], p[changed.to_numpy()], strict=True)
            ]
        self._detach_bystanders(entities, labels, groups, extended, out, codes)
        self.metadata_ = {
            "detector": "coordination",
            "version": 1,
            "fdr": self.fdr,
            "min_families": self.min_families,
            "owned_exclusivity": OWNED,
            "risk_effect_auc": LARGE_EFFECT_AUC,
            "groups": int(out["group"].nunique()),
            "label_model": getattr(self.label_model, "metadata_", None),
            **self._last_tests,
        }
        log.info(
            "%s: %d clusters scored, %d flagged (coordination test, FDR %.3g)",
            self.kind,
            len(out),
            int(out["flagged"].sum()),
            self.fdr,
        )
        return out


def _organisation_domain(
    labels: np.ndarray, groups: pd.Index, attribute: pd.DataFrame, risk: pd.DataFrame | None
) -> pd.Series | None:
    """Per group: is its identity evidence an organisation's own mail domain?

    True where the identity family's strongest attribute is a mail domain and most members'
    domains are neither free-mail nor disposable (:mod:`clustering.known_risk`). None where
    the input gives no domain classes.
    """
    if risk is None or not {"freemail_domain", "disposable_domain"} <= set(risk.columns):
        return None
    if "identity" not in attribute:
        return None
    public = (
        risk["freemail_domain"].fillna(0).to_numpy()
        + risk["disposable_domain"].fillna(0).to_numpy()
    )
    known = risk["freemail_domain"].notna().to_numpy()
    member = (labels >= 0) & known
    share_public = pd.Series(public[member]).groupby(labels[member]).mean()
    share_public = share_public.reindex(groups).fillna(1.0)
    by_domain = attribute["identity"].astype("string").str.endswith("_domain").fillna(False)
    return (by_domain & (share_public < 0.5)).astype(bool)


def _brand_mail(
    entities: pd.DataFrame, labels: np.ndarray, clusters: pd.Index, share: float = 0.9
) -> pd.Series | None:
    """Per cluster: do at least ``share`` of its senders link to their own domain?"""
    if "sender_domain" not in entities or "url_domain" not in entities:
        return None
    sd = entities["sender_domain"].astype("string").str.lower().fillna("").tolist()
    ud = entities["url_domain"].astype("string").str.lower().fillna("").tolist()
    aligned = np.array(
        [
            bool(s) and bool(u) and (u == s or u.endswith("." + s))
            for s, u in zip(sd, ud, strict=True)
        ],
        dtype=bool,
    )
    members = labels >= 0
    per = pd.Series(aligned[members]).groupby(labels[members]).mean()
    return (per.reindex(clusters).fillna(0.0) >= share).astype(bool)


def _reason(
    owned: pd.Series,
    exclusivity: pd.Series,
    attrs: pd.Series,
    risky: list[str],
    supporting: frozenset[str],
    need: int,
    strays: int = 0,
) -> str:
    """The evidence of one cluster in words."""
    names = [f for f in owned.index if owned[f]]
    fams = ", ".join(f"{f} ({attrs[f]}, exclusivity {exclusivity[f]:.2f})" for f in names)
    if not names:
        best = exclusivity.idxmax()
        parts = [
            f"owns no family (strongest: {best}, exclusivity {exclusivity[best]:.2f}: "
            "most holders of its values are outside it)"
        ]
    elif all(f in supporting for f in names):
        parts = [f"owns only {fams}, which strangers share: needs another family"]
    else:
        parts = [f"owns {len(names)} famil{'y' if len(names) == 1 else 'ies'}: {fams}"]
    if strays:
        parts.append(
            f"counting {strays} noise entit{'y' if strays == 1 else 'ies'} that hold its values "
            "in several families"
        )
    if risky:
        parts.append(f"members riskier than the night on {', '.join(risky)}")
    elif names and len(names) < need:
        parts.append(f"members no riskier than the night (one family needs risk, or {need})")
    return "; ".join(parts)
