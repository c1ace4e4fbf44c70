"""Known-risk classes as entity columns and clustering features, per kind.

The classes come from maintained lists (:mod:`clustering.known_risk`); which entity columns
hold a kind's mail domain, IP and ASN come from the built-in kinds' table or a spec's
allowlist roles. The job, the saved search index and the lab all build their features here,
so the matrix they rebuild is the one the clustering saw.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from clustering.entities import DEFAULT_FEATURES
from clustering.features import FeatureSpec
from clustering.kinds import get_spec
from clustering.known_risk import KIND_COLUMNS, domain_class, network_class

__all__ = ["CLASS_FEATURES", "features_for", "risk_columns", "with_known_risk_classes"]

# Classes of values from the maintained lists (clustering/known_risk.py) as features: a
# low-and-slow actor's entities share no value, only classes (throwaway domains on hosting
# networks). Not rule attributes: they have no SQL form an enforcement service could run.
CLASS_FEATURES = {"domain_class": 0.5, "network_class": 0.5}


def risk_columns(kind: str, entities: pd.DataFrame) -> dict[str, str]:
    """The entity columns known-risk lookups read: mail domain, IP, ASN (those present)."""
    cols = dict(KIND_COLUMNS.get(kind, {}))
    if not cols:
        allow = get_spec(kind).allowlist
        cols = {
            "email_domain": allow.get("domains") or "",
            "ip": allow.get("prefixes") or "",
            "asn": allow.get("asns") or "",
        }
    return {
        k: v
        for k, v in cols.items()
        if k in ("email_domain", "ip", "asn") and v and v in entities.columns
    }


def with_known_risk_classes(kind: str, entities: pd.DataFrame) -> pd.DataFrame:
    """``entities`` with ``domain_class`` and ``network_class`` where the input allows."""
    cols = risk_columns(kind, entities)
    out = entities.copy()
    if "email_domain" in cols:
        out["domain_class"] = domain_class(entities[cols["email_domain"]]).astype("string")
    if "ip" in cols or "asn" in cols:
        ips = entities[cols["ip"]] if "ip" in cols else None
        asns = entities[cols["asn"]] if "asn" in cols else None
        out["network_class"] = network_class(ips, asns).astype("string")
    return out


def features_for(kind: str, entities: pd.DataFrame) -> FeatureSpec:
    """The kind's spec features, plus the known-risk classes ``entities`` holds."""
    spec = DEFAULT_FEATURES[kind]
    extra = {c: w for c, w in CLASS_FEATURES.items() if c in entities}
    if not extra:
        return spec
    return dataclasses.replace(spec, categorical={**spec.categorical, **extra})
