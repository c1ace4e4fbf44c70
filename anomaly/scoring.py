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
3. the threshold is the reference quantile at ``target_fpr``, and a cluster is flagged when it
   clears it *and* shares values in at least ``min_families`` independent families: a campus
   behind one NAT shares a network, a campaign shares a network, a client and a template.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from anomaly.detectors import DetectorEnsemble
from clustering.profiles import cluster_profiles

log = logging.getLogger(__name__)

__all__ = ["FAMILIES", "CampaignScorer", "entity_scores"]

# Independent signal families: an actor rarely shares values in several of them by chance.
FAMILIES: dict[str, dict[str, tuple[str, ...]]] = {
    "signups": {
        "network": ("ip_prefix24", "ip_prefix16", "ip_asn"),
        "client": ("ua_build", "user_agent", "device_id"),
        "identity": ("username_shape", "display_name_shape", "email_domain", "email_tld"),
    },
    "senders": {
        "network": ("sender_ip_prefix24", "sender_ip_prefix16"),
        "client": ("x_mailer",),
        "identity": ("sender_domain", "sender_local_shape", "sender_tld"),
        "content": ("subject_skeleton", "url_domain", "url_tld"),
    },
}

# Behaviour columns where a *low* value is the suspicious one.
_LOW_IS_SUSPICIOUS = {"captcha_score"}
_BEHAVIOUR: dict[str, tuple[str, ...]] = {
    "signups": ("captcha_score",),
    "senders": ("bounce_rate", "complaint_rate", "recipient_count"),
}


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
        ``share x specificity`` at which a family counts as shared.
    n_reference : int
        Random groups in the reference.
    random_state : int
    """

    kind: str
    target_fpr: float = 0.001
    min_families: int = 2
    family_floor: float = 0.5
    n_reference: int = 2000
    random_state: int = 0
    metadata_: dict[str, Any] = field(default_factory=dict, init=False)

    def _features(
        self, entities: pd.DataFrame, labels: np.ndarray, escore: np.ndarray
    ) -> pd.DataFrame:
        attrs = [a for fam in FAMILIES[self.kind].values() for a in fam]
        prof = cluster_profiles(entities, labels, attrs)
        feats = pd.DataFrame(index=prof.index)
        for fam, members in FAMILIES[self.kind].items():
            cols = [
                prof[f"{a}_share"] * prof[f"{a}_specificity"]
                for a in members
                if f"{a}_share" in prof
            ]
            feats[fam] = np.max(np.column_stack(cols), axis=1) if cols else 0.0
        frame = pd.DataFrame({"c": labels, "e": escore})
        for col in _BEHAVIOUR[self.kind]:
            if col in entities:
                v = pd.to_numeric(entities[col], errors="coerce").astype("float64").to_numpy()
                frame[col] = -v if col in _LOW_IS_SUSPICIOUS else v
        g = frame[frame["c"] >= 0].groupby("c")
        means = g.mean().reindex(prof.index)
        feats["entity_score"] = means["e"]
        for col in _BEHAVIOUR[self.kind]:
            if col in means:
                feats[col] = means[col]
        feats["log_size"] = np.log(prof["size"].astype(float))
        return feats.fillna(feats.median()).fillna(0.0)

    def _reference(self, entities: pd.DataFrame, sizes: np.ndarray, escore: np.ndarray):  # type: ignore[no-untyped-def]
        """Features of random disjoint groups with the clusters' size distribution."""
        rng = np.random.default_rng(self.random_state)
        n = len(entities)
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
            parts.append(self._features(entities, labels, escore))
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
        feats = self._features(entities, labels, escore)
        if feats.empty:
            self.metadata_ = {"detector": "none", "reason": "no clusters"}
            return feats.assign(score=[], families_shared=[], flagged=[], reason=[])
        ref = self._reference(
            entities, feats.index.map(lambda c: (labels == c).sum()).to_numpy(), escore
        )
        ens = DetectorEnsemble(target_fpr=self.target_fpr, random_state=self.random_state)
        ens.fit(ref.to_numpy())
        out = feats.copy()
        out["score"] = ens.decision_function(feats.to_numpy())
        fams = list(FAMILIES[self.kind])
        shared = feats[fams] >= self.family_floor
        out["families_shared"] = shared.sum(axis=1).astype(int)
        above = out["score"] > ens.threshold_
        out["flagged"] = above & (out["families_shared"] >= self.min_families)
        out["reason"] = [
            _reason(bool(a), row, fams, self.min_families)
            for a, (_, row) in zip(above, shared.iterrows(), strict=True)
        ]
        self.metadata_ = {
            **ens.metadata_,
            "reference": f"{len(ref)} random groups of tonight's entities, cluster-size matched",
            "min_families": self.min_families,
            "family_floor": self.family_floor,
        }
        log.info(
            "%s: %d clusters scored, %d flagged (threshold %.2f)",
            self.kind,
            len(out),
            int(out["flagged"].sum()),
            ens.threshold_,
        )
        return out


def _reason(above: bool, shared: pd.Series, fams: list[str], need: int) -> str:
    names = [f for f in fams if shared[f]]
    fam_text = ", ".join(names) if names else "none"
    if not above:
        return f"below threshold (shares: {fam_text})"
    if len(names) < need:
        return f"above threshold but shares only {fam_text}"
    return f"above threshold; shares {fam_text}"
