"""Entity tables: one row per clustered entity, built from event rows and their attributes.

For signups an event is an account, so the entity table is the attribute table. For senders an
event is a message and the entity is the sender address: its categorical attributes are its
most frequent values and its behaviour is aggregated over its messages. The kind's entity
spec (:mod:`clustering.spec`) says which, and how each entity column is aggregated.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clustering.features import FeatureSpec
from clustering.kinds import SpecView, get_spec

__all__ = [
    "DEFAULT_FEATURES",
    "PROFILE_ATTRIBUTES",
    "entity_keys",
    "entity_table",
    "most_frequent",
]

# Per kind, from its entity spec (clustering/specs/*.toml for the built-in kinds).
DEFAULT_FEATURES: SpecView[FeatureSpec] = SpecView(lambda s: s.features)
# Attributes summarised per campaign ("top shared attributes") and used by cluster scoring.
PROFILE_ATTRIBUTES: SpecView[tuple[str, ...]] = SpecView(lambda s: s.profile_attributes)


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
    """The entity id of each event row, normalised (lower-cased where the spec says so)."""
    spec = get_spec(kind)
    keys = events[spec.entity_column].astype("string")
    return keys.str.lower() if spec.entity_lowercase else keys


def entity_table(kind: str, events: pd.DataFrame, attrs: pd.DataFrame) -> pd.DataFrame:
    """One row per entity, indexed by entity id (sorted), with attribute and behaviour columns.

    Where an event is the entity (a signup is an account) the table is the attribute table.
    Otherwise (a message and its sender) each entity column is the spec's aggregate over the
    entity's events: the most frequent value, a mean, a median, the number of events, the
    share of distinct values, or the local part of the entity id.

    Parameters
    ----------
    kind : str
    events : DataFrame of shape (n_events, n_columns)
        Validated input rows.
    attrs : DataFrame of shape (n_events, n_attributes)
        ``clustering.attributes.compute_attributes(events, kind)``, same index.
    """
    spec = get_spec(kind)
    keys = entity_keys(kind, events)
    if spec.entity_column == spec.id_column:
        table = attrs.copy()
        for name, how in spec.entity_extra.items():
            if _has_source(how, events, attrs):
                table[name] = _aggregate(how, keys, events, attrs, None).to_numpy()
        table.index = pd.Index(keys.to_numpy(), name="entity_id")
        return table.sort_index(kind="stable")
    grouped = None
    columns: dict[str, pd.Series] = {}
    for name, how in spec.aggregate.items():
        if how.split(":")[0] not in ("most_frequent", "entity_local"):
            if grouped is None:
                grouped = _numeric_groups(keys, attrs, spec.aggregate)
        columns[name] = _aggregate(how, keys, events, attrs, grouped)
    index = pd.Index(pd.unique(keys.to_numpy()))
    table = pd.DataFrame({n: c.reindex(index) for n, c in columns.items()}, index=index)
    table.index.name = "entity_id"
    for name, how in spec.entity_extra.items():
        if _has_source(how, events, attrs):
            values = _aggregate(how, keys, events, attrs, None)
            table[name] = most_frequent(keys, values).reindex(index)
    return table.sort_index(kind="stable")


def _numeric_groups(keys: pd.Series, attrs: pd.DataFrame, aggregate: dict[str, str]) -> Any:
    """Events grouped by entity, one column per ``op:source`` the aggregates need."""
    frame: dict[str, Any] = {"k": keys.to_numpy()}
    for how in aggregate.values():
        op, _, src = how.partition(":")
        if op in ("mean", "median"):
            frame[how] = _num(attrs, src)
        elif op == "distinct_share":
            frame[how] = attrs[src].to_numpy()
    return pd.DataFrame(frame).groupby("k", sort=False)


def _has_source(how: str, events: pd.DataFrame, attrs: pd.DataFrame) -> bool:
    src = how.partition(":")[2]
    return not src or src in events or src in attrs


def _aggregate(
    how: str, keys: pd.Series, events: pd.DataFrame, attrs: pd.DataFrame, grouped: Any
) -> pd.Series:
    op, _, src = how.partition(":")
    if op == "lower":
        values = events[src] if src in events else attrs[src]
        return values.astype("string").str.lower()
    if op == "most_frequent":
        return most_frequent(keys, attrs[src])
    if op == "entity_local":
        uniq = pd.Index(pd.unique(keys.to_numpy()))
        return pd.Series(uniq.to_series().str.split("@").str[0].to_numpy(), index=uniq)
    if op == "count":
        return grouped.size()
    if op == "mean":
        return grouped[how].mean()
    if op == "median":
        return grouped[how].median()
    if op == "distinct_share":
        return grouped[how].nunique() / grouped.size()
    raise ValueError(f"unknown aggregate {how!r}")


def _num(attrs: pd.DataFrame, col: str) -> np.ndarray:
    if col not in attrs:
        return np.full(len(attrs), np.nan)
    return pd.to_numeric(attrs[col], errors="coerce").astype("float64").to_numpy(na_value=np.nan)
