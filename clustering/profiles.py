"""Campaign profiles: what the members of each cluster share, and how unusual that is.

For every cluster and attribute: the most frequent value, the share of members holding it
(``share``) and the share of all holders of that value that sit in the cluster
(``specificity``). A campaign shares values that are frequent inside and rare outside (a rare
user-agent build: share 1.0, specificity 1.0); a crowd of ordinary users shares common values
(gmail.com: share 0.4, specificity 0.05).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["cluster_profiles", "top_values"]


def top_values(labels: np.ndarray, values: pd.Series) -> pd.DataFrame:
    """Most frequent value per cluster with its share and specificity.

    Parameters
    ----------
    labels : ndarray of shape (n_entities,)
        Cluster per entity, -1 for noise (ignored).
    values : Series of shape (n_entities,)

    Returns
    -------
    DataFrame indexed by cluster id with columns ``value``, ``share``, ``specificity``.
    """
    labels = np.asarray(labels)
    frame = pd.DataFrame({"c": labels, "v": values.to_numpy()})
    totals = frame["v"].value_counts(dropna=True)
    clustered = frame[frame["c"] >= 0]
    sizes = clustered.groupby("c").size()
    counts = clustered.dropna(subset=["v"]).value_counts(["c", "v"]).reset_index(name="n")
    counts["vs"] = counts["v"].astype(str)
    counts = counts.sort_values(["c", "n", "vs"], ascending=[True, False, True], kind="stable")
    top = counts.drop_duplicates("c").set_index("c")
    out = pd.DataFrame(index=sizes.index)
    out["value"] = top["v"].reindex(sizes.index)
    out["share"] = (top["n"] / sizes).reindex(sizes.index).fillna(0.0)
    bg = totals.reindex(top["v"].to_numpy()).to_numpy(dtype=float)
    spec = pd.Series(top["n"].to_numpy() / np.where(bg > 0, bg, np.nan), index=top.index)
    out["specificity"] = spec.reindex(sizes.index).fillna(0.0)
    return out


def cluster_profiles(
    entities: pd.DataFrame,
    labels: np.ndarray,
    attributes: tuple[str, ...] | list[str],
    time: pd.Series | None = None,
) -> pd.DataFrame:
    """One row per cluster: size, first/last seen and per-attribute share and specificity.

    Parameters
    ----------
    entities : DataFrame of shape (n_entities, n_columns)
    labels : ndarray of shape (n_entities,)
    attributes : attribute columns to profile
    time : Series of timestamps of shape (n_entities,), optional
        Gives ``first_seen``, ``last_seen`` and ``hour_concentration`` (share of members in the
        cluster's busiest hour of day).

    Returns
    -------
    DataFrame indexed by cluster id; columns ``size``, ``<attr>_value``, ``<attr>_share``,
    ``<attr>_specificity`` and, with ``time``, the time columns.
    """
    labels = np.asarray(labels)
    if len(labels) != len(entities):
        raise ValueError("labels must have one entry per entity")
    ids = np.unique(labels[labels >= 0])
    out = pd.DataFrame(index=pd.Index(ids, name="cluster_id"))
    out["size"] = pd.Series(labels[labels >= 0]).value_counts().reindex(ids).to_numpy()
    for attr in attributes:
        if attr not in entities:
            continue
        tv = top_values(labels, entities[attr]).reindex(ids)
        out[f"{attr}_value"] = tv["value"].to_numpy()
        out[f"{attr}_share"] = tv["share"].to_numpy(dtype=float)
        out[f"{attr}_specificity"] = tv["specificity"].to_numpy(dtype=float)
    if time is not None and len(ids):
        t = pd.to_datetime(pd.Series(time.to_numpy()), utc=True)
        frame = pd.DataFrame({"c": labels, "t": t, "h": t.dt.floor("h")})
        frame = frame[frame["c"] >= 0]
        g = frame.groupby("c")
        out["first_seen"] = g["t"].min().reindex(ids).to_numpy()
        out["last_seen"] = g["t"].max().reindex(ids).to_numpy()
        busiest = frame.value_counts(["c", "h"]).groupby(level=0).max()
        out["hour_concentration"] = (busiest.reindex(ids) / out["size"]).to_numpy(dtype=float)
    return out
