"""Entity tables: one row per clustered entity, built from event rows and their attributes.

For signups an event is an account, so the entity table is the attribute table. For senders an
event is a message and the entity is the sender address: its categorical attributes are its
most frequent values and its behaviour is aggregated over its messages.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clustering.features import FeatureSpec
from clustering.kinds import get_kind

__all__ = [
    "DEFAULT_FEATURES",
    "PROFILE_ATTRIBUTES",
    "entity_keys",
    "entity_table",
    "most_frequent",
]

DEFAULT_FEATURES: dict[str, FeatureSpec] = {
    "signups": FeatureSpec(
        categorical={
            "ip_prefix24": 0.7,
            "ip_prefix16": 0.4,
            "ip_asn": 0.5,
            "ua_build": 1.0,
            "user_agent": 0.5,
            "device_id": 0.6,
            "email_domain": 0.8,
            "email_canonical": 1.0,
            "username_shape": 1.0,
            "display_name_shape": 0.5,
            "display_name": 0.6,
            "signup_flow": 0.3,
            "ip_country": 0.3,
        },
        numeric={
            "captcha_score": 0.4,
            "username_len": 0.3,
            "username_digits": 0.3,
            "username_vowel_share": 0.3,
        },
        cyclic={"hour": 0.3},
        text={"username": 0.8},
        counts={
            "device_id": 2.5,
            "display_name": 1.5,
            "ip_prefix24": 1.5,
            "ip_asn": 1.0,
            "ua_build": 1.5,
            "username_shape": 1.0,
            "email_domain": 1.5,
            "email_canonical": 2.0,
        },
    ),
    "senders": FeatureSpec(
        categorical={
            "sender_domain": 1.0,
            "sender_local_shape": 0.8,
            "sender_ip_prefix24": 1.0,
            "sender_ip_prefix16": 0.6,
            "x_mailer": 0.8,
            "subject_skeleton": 1.0,
            "url_domain": 1.0,
            "url_tld": 0.5,
        },
        numeric={
            "messages": 0.3,
            "recipient_count": 0.4,
            "bounce_rate": 0.4,
            "complaint_rate": 0.4,
            "subject_variety": 0.3,
        },
        log_scale=("messages", "recipient_count"),
        cyclic={"hour": 0.2},
        text={"subject_skeleton": 0.8, "sender_local": 0.4},
        counts={
            "subject_skeleton": 1.5,
            "url_domain": 1.5,
            "sender_domain": 1.0,
            "sender_ip_prefix24": 1.0,
            "x_mailer": 1.0,
        },
    ),
}

# Attributes summarised per campaign ("top shared attributes") and used by cluster scoring.
PROFILE_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "signups": (
        "email_domain",
        "email_tld",
        "email_canonical",
        "username_shape",
        "display_name_shape",
        "ip_prefix24",
        "ip_prefix16",
        "ip_asn",
        "ip_country",
        "ua_build",
        "ua_family",
        "ua_os",
        "device_id",
        "signup_flow",
    ),
    "senders": (
        "sender_domain",
        "sender_tld",
        "sender_local_shape",
        "sender_ip_prefix24",
        "sender_ip_prefix16",
        "x_mailer",
        "subject_skeleton",
        "url_domain",
        "url_tld",
    ),
}


def most_frequent(keys: pd.Series, values: pd.Series) -> pd.Series:
    """Most frequent non-missing value of ``values`` per key (ties: smallest value).

    Returns a Series indexed by the distinct keys (missing where a key has no values).
    """
    frame = pd.DataFrame({"k": keys.to_numpy(), "v": values.to_numpy()})
    counts = frame.dropna(subset=["v"]).value_counts(["k", "v"]).reset_index(name="n")
    counts = counts.sort_values(["k", "n", "v"], ascending=[True, False, True], kind="stable")
    top = counts.drop_duplicates("k").set_index("k")["v"]
    result = top.reindex(pd.Index(pd.unique(keys.to_numpy()), name=None))
    return result.astype(values.dtype) if len(result) else result


def entity_keys(kind: str, events: pd.DataFrame) -> pd.Series:
    """The entity id of each event row, normalised (sender addresses are case-insensitive)."""
    keys = events[get_kind(kind).entity_column].astype("string")
    return keys.str.lower() if kind == "senders" else keys


def entity_table(kind: str, events: pd.DataFrame, attrs: pd.DataFrame) -> pd.DataFrame:
    """One row per entity, indexed by entity id (sorted), with attribute and behaviour columns.

    Parameters
    ----------
    kind : str
        ``signups`` or ``senders``.
    events : DataFrame of shape (n_events, n_columns)
        Validated input rows.
    attrs : DataFrame of shape (n_events, n_attributes)
        ``clustering.attributes.compute_attributes(events, kind)``, same index.
    """
    if kind == "signups":
        table = attrs.copy()
        if "display_name" in events:
            # the exact name (lower-cased) is a feature, not a rule attribute: a small list of
            # names reused across a campaign links accounts that share no device or subnet
            table["display_name"] = events["display_name"].astype("string").str.lower().to_numpy()
        table.index = pd.Index(entity_keys(kind, events).to_numpy(), name="entity_id")
        return table.sort_index(kind="stable")
    if kind != "senders":
        raise ValueError(f"no entity table for kind {kind!r}")
    keys = entity_keys(kind, events)
    columns: dict[str, pd.Series] = {}
    for col in PROFILE_ATTRIBUTES["senders"]:
        if col in attrs:
            columns[col] = most_frequent(keys, attrs[col])
    table = pd.DataFrame(columns)
    table.index.name = "entity_id"
    grouped = pd.DataFrame(
        {
            "k": keys.to_numpy(),
            "recipient_count": _num(attrs, "recipient_count"),
            "bounced": _num(attrs, "bounced"),
            "complained": _num(attrs, "complained"),
            "hour": _num(attrs, "hour"),
            "skeleton": attrs["subject_skeleton"].to_numpy()
            if "subject_skeleton" in attrs
            else None,
        }
    ).groupby("k", sort=False)
    agg = pd.DataFrame(
        {
            "messages": grouped.size(),
            "recipient_count": grouped["recipient_count"].mean(),
            "bounce_rate": grouped["bounced"].mean(),
            "complaint_rate": grouped["complained"].mean(),
            "hour": grouped["hour"].median(),
            "subject_variety": grouped["skeleton"].nunique() / grouped.size(),
        }
    )
    table = table.join(agg, how="left")
    table["sender_local"] = table.index.to_series().str.split("@").str[0].to_numpy()
    return table.sort_index(kind="stable")


def _num(attrs: pd.DataFrame, col: str) -> np.ndarray:
    if col not in attrs:
        return np.full(len(attrs), np.nan)
    return pd.to_numeric(attrs[col], errors="coerce").astype("float64").to_numpy(na_value=np.nan)
