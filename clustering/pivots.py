"""Split a cluster where part of it shares devices or mailboxes that nobody else uses.

Density clustering groups entities that look alike, and a phone farm behind a carrier's
shared addresses looks like the carrier's other users on every feature but one: its accounts
reuse a pool of devices. HDBSCAN can keep farm and carrier users in one cluster when the
whole is more stable than its parts; the campaign score then averages the farm with honest
people, and no rule can cover the cluster without hitting them. Reuse of one device or one
mailbox across many entities is the pivot an investigator follows, so a cluster is split
where enough of its members hold such reused values.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

__all__ = ["split_on_pivots"]


def split_on_pivots(
    entities: pd.DataFrame,
    labels: np.ndarray,
    attributes: tuple[str, ...] | list[str],
    *,
    min_size: int,
    exclusive: float = 0.9,
    max_share: float = 0.95,
) -> np.ndarray:
    """Labels with each cluster's pivot-sharing part split off as a cluster of its own.

    Parameters
    ----------
    entities : DataFrame of shape (n_entities, n_columns)
    labels : ndarray of int, shape (n_entities,)
        Cluster labels, -1 for noise.
    attributes : columns that identify one device or mailbox (``device_id``)
    min_size : int
        Smallest part that is split off (the clustering's ``min_cluster_size``).
    exclusive : float
        Share of a value's holders (tonight, all entities) that must be in the cluster: a
        value also common outside it is no pivot of this cluster.
    max_share : float
        A part holding more than this share of its cluster is the cluster; nothing is split.

    Returns
    -------
    ndarray of int, shape (n_entities,)
        New labels; split-off parts get labels above the current maximum, in cluster order.
    """
    labels = np.asarray(labels).copy()
    codes = {
        a: pd.factorize(entities[a], use_na_sentinel=True)[0] for a in attributes if a in entities
    }
    if not codes or not (labels >= 0).any():
        return labels
    next_label = int(labels.max()) + 1
    for cid in np.unique(labels[labels >= 0]):
        members = labels == cid
        part = np.zeros(len(labels), dtype=bool)
        for c in codes.values():
            valid = c >= 0
            if not (members & valid).any():
                continue
            total = np.bincount(c[valid])
            inside = np.bincount(c[members & valid], minlength=len(total))
            pivot = (inside >= 2) & (inside >= exclusive * total)
            part |= members & valid & pivot[np.maximum(c, 0)]
        n_part, n_members = int(part.sum()), int(members.sum())
        if n_part >= min_size and n_part <= max_share * n_members and n_members - n_part > 0:
            labels[part] = next_label
            log.info(
                "cluster %d: %d of %d members share devices or mailboxes; split off as %d",
                cid,
                n_part,
                n_members,
                next_label,
            )
            next_label += 1
    return labels
