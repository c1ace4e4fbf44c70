"""Entity and campaign scores, with an explained threshold.

Alone each campaign member is unremarkable (an IsolationForest scores real spambots *below*
humans); together they are a dense, coordinated cluster. So the entity score (PyOD on each
entity's behaviour) is only one input; the campaign score asks how coordinated a cluster is
compared with groups of the same size drawn at random from tonight's entities:

1. each cluster gets oriented features (higher = more coordinated): per signal family
   (network, client, identity, content, timing) the strongest ``share x specificity`` of a
   shared value, plus the members' mean entity score and behaviour (captcha, bounces);
2. a PyOD ensemble is fitted on the same features of random same-size groups (the reference
   of "unrelated entities") and scores the clusters as ``-log10`` tail probabilities;
3. the threshold is the reference quantile at ``target_fpr``. Clearing it says a cluster is no
   chance grouping, which benign crowds (a campus behind one NAT, the users of one mobile
   carrier's shared addresses) are not either. So a cluster is flagged when it clears it *and*
   its members are unusual one by one (mean entity score at least ``entity_floor``, in
   ``-log10`` tail probability: 0.6 is "on average in tonight's top quarter") *and* it holds
   values exclusively in at least ``min_families`` signal families.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from anomaly.detectors import DetectorEnsemble
from clustering.kinds import SpecView
from clustering.profiles import top_code_stats

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
    """Score clusters against random groups of the same entities.

    Parameters
    ----------
    kind : str
    target_fpr : float
        Share of random groups allowed above the threshold.
    min_families : int
        Signal families a flagged cluster must share values in.
    family_floor : float
        Exclusivity (:func:`clustering.profiles.top_code_stats`) at which a family counts as
        shared.
    entity_floor : float
        Mean entity score a flagged cluster's members must reach.
    n_reference : int
        Random groups in the reference.
    random_state : int
    """

    kind: str
    target_fpr: float = 0.001
    min_families: int = 1
    family_floor: float = 0.3
    entity_floor: float = 0.6
    n_reference: int = 2000
    random_state: int = 0
    metadata_: dict[str, Any] = field(default_factory=dict, init=False)

    def _prepare(self, entities: pd.DataFrame, escore: np.ndarray) -> dict[str, Any]:
        """Factorise attributes and behaviour once; clusters and references reuse them."""
        codes = {
            a: pd.factorize(entities[a], use_na_sentinel=True)[0]
            for fam in FAMILIES[self.kind].values()
            for a in fam
            if a in entities
        }
        behaviour = {"entity_score": np.asarray(escore, dtype=np.float64)}
        for col in _BEHAVIOUR[self.kind]:
            if col in entities:
                v = pd.to_numeric(entities[col], errors="coerce").astype("float64").to_numpy()
                v = np.where(np.isnan(v), np.nanmedian(v) if (~np.isnan(v)).any() else 0.0, v)
                behaviour[col] = -v if col in _LOW_IS_SUSPICIOUS[self.kind] else v
        return {"codes": codes, "behaviour": behaviour}

    def _features(self, prep: dict[str, Any], labels: np.ndarray) -> pd.DataFrame:
        clusters, sizes = np.unique(labels[labels >= 0], return_counts=True)
        feats = pd.DataFrame(index=pd.Index(clusters, name="cluster_id"))
        for fam, members in FAMILIES[self.kind].items():
            cols = []
            for a in members:
                if a in prep["codes"]:
                    st = top_code_stats(labels, prep["codes"][a])
                    cols.append(st["exclusivity"])
            feats[fam] = np.max(np.column_stack(cols), axis=1) if cols else 0.0
        sel = labels >= 0
        pos = np.searchsorted(clusters, labels[sel])
        for col, v in prep["behaviour"].items():
            feats[col] = np.bincount(pos, weights=v[sel], minlength=len(clusters)) / sizes
        feats["log_size"] = np.log(sizes.astype(float))
        return feats

    def _reference(self, prep: dict[str, Any], n: int, sizes: np.ndarray) -> pd.DataFrame:
        """Features of random disjoint groups with the clusters' size distribution."""
        rng = np.random.default_rng(self.random_state)
        parts = []
        made = 0
        while made < self.n_reference:
            labels = np.full(n, -1, dtype=np.int64)
            perm = rng.permutation(n)
            pos = 0
            gid = 0
            while made + gid < self.n_reference:
                size = int(rng.choice(sizes))
                if pos + size > n:
                    break
                labels[perm[pos : pos + size]] = gid
                pos += size
                gid += 1
            if gid == 0:
                break
            parts.append(self._features(prep, labels))
            made += gid
        return pd.concat(parts, ignore_index=True)

    def score(self, entities: pd.DataFrame, labels: np.ndarray, escore: np.ndarray) -> pd.DataFrame:
        """Campaign score, flag and explanation per cluster.

        Parameters
        ----------
        entities : DataFrame of shape (n_entities, n_columns)
        labels : ndarray of shape (n_entities,), -1 for noise
        escore : ndarray of shape (n_entities,)
            Entity scores from :func:`entity_scores`.

        Returns
        -------
        DataFrame indexed by cluster id: the family and behaviour features, ``score``,
        ``families_shared``, ``flagged`` and ``reason``.
        """
        labels = np.asarray(labels)
        prep = self._prepare(entities, escore)
        feats = self._features(prep, labels)
        if feats.empty:
            self.metadata_ = {"detector": "none", "reason": "no clusters"}
            return feats.assign(score=[], families_shared=[], flagged=[], reason=[])
        sizes = np.unique(labels[labels >= 0], return_counts=True)[1]
        ref = self._reference(prep, len(labels), sizes)
        ens = DetectorEnsemble(target_fpr=self.target_fpr, random_state=self.random_state)
        ens.fit(ref.to_numpy())
        out = feats.copy()
        out["score"] = ens.decision_function(feats.to_numpy())
        fams = list(FAMILIES[self.kind])
        shared = feats[fams] >= self.family_floor
        out["families_shared"] = shared.sum(axis=1).astype(int)
        supporting = SUPPORTING_FAMILIES.get(self.kind, frozenset())
        primary = shared[[f for f in fams if f not in supporting]].any(axis=1)
        brand = _brand_mail(entities, labels, feats.index)
        if brand is not None:
            # Senders whose links go to their own domain (a shop's order mail) share templates
            # as every shop does: their content counts only beside identity or client evidence.
            own = [f for f in fams if f not in supporting and f != "content"]
            primary = primary & (~brand | shared[own].any(axis=1))
        above = out["score"] > ens.threshold_
        unusual = out["entity_score"] >= self.entity_floor
        enough = (out["families_shared"] >= self.min_families) & primary
        out["flagged"] = above & unusual & enough
        out["reason"] = [
            _reason(bool(a), float(e), self.entity_floor, row, fams, self.min_families, supporting)
            for a, e, (_, row) in zip(above, out["entity_score"], shared.iterrows(), strict=True)
        ]
        self.metadata_ = {
            **ens.metadata_,
            "reference": f"{len(ref)} random groups of tonight's entities, cluster-size matched",
            "min_families": self.min_families,
            "family_floor": self.family_floor,
            "entity_floor": self.entity_floor,
        }
        log.info(
            "%s: %d clusters scored, %d flagged (threshold %.2f)",
            self.kind,
            len(out),
            int(out["flagged"].sum()),
            ens.threshold_,
        )
        return out


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
    above: bool,
    escore: float,
    floor: float,
    shared: pd.Series,
    fams: list[str],
    need: int,
    supporting: frozenset[str] = frozenset(),
) -> str:
    names = [f for f in fams if shared[f]]
    if len(names) < need:
        note = f" (needs {need})"
    elif names and all(f in supporting for f in names):
        note = f" ({' and '.join(names)} alone is shared by strangers: needs another family)"
    else:
        note = ""
    parts = [
        "beyond random groups" if above else "no more coordinated than random groups",
        f"members' mean entity score {escore:.2f} {'>=' if escore >= floor else '<'} {floor}",
        f"shares {', '.join(names) if names else 'no family'}" + note,
    ]
    return "; ".join(parts)
