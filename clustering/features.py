"""Entity features: shared rare values, behaviour and text, as one float matrix.

A campaign's members share values that few others have (a user-agent build, a device pool, a
subnet, a template). Each categorical attribute becomes a small block holding a pseudo-random
unit vector per value, scaled by the value's rarity: entities that share a rare value coincide
in that block, entities that share a common value (gmail.com, the current Chrome) barely move,
and values nobody else has push their entity away from everyone. Numeric behaviour is robustly
scaled; texts go through character n-gram embeddings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from clustering.embeddings import CharNgramEmbedder

log = logging.getLogger(__name__)

__all__ = ["FeatureSpec", "build_features", "hashed_value_vectors", "rarity_weights"]

_MIX = np.uint64(0x9E3779B97F4A7C15)


@dataclass
class FeatureSpec:
    """Which entity columns become features, and with what weight.

    Parameters
    ----------
    categorical : dict
        Column -> block weight; rare shared values pull entities together.
    numeric : dict
        Column -> weight; robust-scaled and clipped.
    cyclic : dict
        Column (hour of day, 0-23) -> weight; encoded as a point on the circle.
    text : dict
        Column -> weight; character n-gram embedding.
    log_scale : tuple of str
        Numeric columns taken as ``log1p`` before scaling (volumes: 5 and 500 recipients
        must not both clip to the same extreme).
    counts : dict
        Column -> weight; how many entities share the entity's value (log scale). Members of
        one campaign share a device pool or a subnet through different values, but they all
        sit in crowds of similar size, where most people are alone.
    block_dim : int
        Dimension of each categorical block (high enough that distinct values sit at
        nearly the same distance from each other).
    text_dim : int
        Dimension of each text embedding.
    """

    categorical: dict[str, float] = field(default_factory=dict)
    numeric: dict[str, float] = field(default_factory=dict)
    cyclic: dict[str, float] = field(default_factory=dict)
    text: dict[str, float] = field(default_factory=dict)
    counts: dict[str, float] = field(default_factory=dict)
    log_scale: tuple[str, ...] = ()
    block_dim: int = 8
    text_dim: int = 12


def rarity_weights(values: pd.Series, saturate: float = 0.02) -> np.ndarray:
    """Per-row weight in [0, 1] of each row's value: how much sharing it says.

    ``log(n / count) / log(1 / saturate)``, capped at 1: every value held by at most
    ``saturate`` of the rows weighs 1 (sharing a device with 30 others is as telling as with
    3), more common values weigh less (sharing gmail.com says little), missing values 0.
    Unique values weigh 1 too: they make their holders differ, which is what they say.
    """
    n = len(values)
    out = np.zeros(n)
    if n < 2:
        return out
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    present = codes >= 0
    if not present.any():
        return out
    counts = np.bincount(codes[present])
    idf = np.log(n / counts[codes[present]]) / np.log(1.0 / saturate)
    out[present] = np.minimum(idf, 1.0)
    return out


def hashed_value_vectors(values: pd.Series, dim: int, salt: str) -> np.ndarray:
    """Deterministic pseudo-random unit vectors, one per value, shape (n, dim).

    The vector depends only on the value and ``salt``, not on the data around it, so the same
    value maps to the same point in every run.
    """
    text = values.astype("string").fillna("").to_numpy(dtype=object)
    h = pd.util.hash_array(text, hash_key=_salt_key(salt), categorize=True).astype(np.uint64)
    out = np.empty((len(text), dim), dtype=np.float64)
    with np.errstate(over="ignore"):
        for j in range(dim):
            z = h + _MIX * np.uint64(j + 1)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
            out[:, j] = (z >> np.uint64(11)).astype(np.float64) / 2.0**53 - 0.5
    out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-12
    return out


def _salt_key(salt: str) -> str:
    return (salt + "0" * 16)[:16]


def _crowd_size(values: pd.Series, saturate: float = 0.02) -> np.ndarray:
    """``log(count)`` of each row's value, scaled so a value held by ``saturate`` of rows is 1."""
    n = len(values)
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    out = np.zeros(n)
    present = codes >= 0
    if n < 2 or not present.any():
        return out
    counts = np.bincount(codes[present])
    out[present] = np.log(counts[codes[present]]) / np.log(max(2.0, saturate * n))
    return np.minimum(out, 1.5)


def _robust_scale(x: pd.Series) -> np.ndarray:
    v = pd.to_numeric(x, errors="coerce").astype("float64").to_numpy(na_value=np.nan)
    if np.isnan(v).all():
        return np.zeros(len(v))
    med = np.nanmedian(v)
    q1, q3 = np.nanpercentile(v, [25, 75])
    scale = q3 - q1
    if scale <= 0:
        scale = np.nanstd(v) or 1.0
    z = (v - med) / scale
    return np.clip(np.nan_to_num(z, nan=0.0), -5.0, 5.0)


def build_features(
    entities: pd.DataFrame, spec: FeatureSpec, random_state: int = 0
) -> tuple[np.ndarray, list[str]]:
    """Build the feature matrix of ``entities``.

    Parameters
    ----------
    entities : DataFrame of shape (n_entities, n_columns)
    spec : FeatureSpec
    random_state : int
        Seed of the text embeddings.

    Returns
    -------
    X : ndarray of shape (n_entities, n_features), float32
    names : list of str
        One name per feature column.
    """
    # each block is cast on arrival: a million rows of 130 float64 columns, stacked, would
    # hold three copies of the matrix at once
    blocks: list[np.ndarray] = []
    names: list[str] = []
    n = len(entities)
    for col, weight in spec.categorical.items():
        if col not in entities:
            continue
        vals = entities[col]
        vec = hashed_value_vectors(vals, spec.block_dim, salt=col)
        vec *= (weight * rarity_weights(vals))[:, None]
        blocks.append(vec.astype(np.float32))
        names += [f"{col}#{j}" for j in range(spec.block_dim)]
    for col, weight in spec.numeric.items():
        if col not in entities:
            continue
        values = entities[col]
        if col in spec.log_scale:
            values = np.log1p(
                pd.to_numeric(values, errors="coerce").astype("float64").clip(lower=0)
            )
        blocks.append((weight * _robust_scale(values))[:, None].astype(np.float32))
        names.append(col)
    for col, weight in spec.cyclic.items():
        if col not in entities:
            continue
        h = (
            pd.to_numeric(entities[col], errors="coerce")
            .astype("float64")
            .to_numpy(na_value=np.nan)
        )
        ang = 2 * np.pi * np.nan_to_num(h, nan=0.0) / 24.0
        present = ~np.isnan(h)
        blocks.append(
            (weight * np.column_stack([np.cos(ang), np.sin(ang)]) * present[:, None]).astype(
                np.float32
            )
        )
        names += [f"{col}_cos", f"{col}_sin"]
    for col, weight in spec.counts.items():
        if col not in entities:
            continue
        blocks.append((weight * _crowd_size(entities[col]))[:, None].astype(np.float32))
        names.append(f"{col}_count")
    for col, weight in spec.text.items():
        if col not in entities:
            continue
        texts = entities[col].astype("string").fillna("").tolist()
        emb = CharNgramEmbedder(n_components=spec.text_dim, random_state=random_state)
        blocks.append((weight * emb.fit_transform(texts)).astype(np.float32))
        names += [f"{col}~{j}" for j in range(spec.text_dim)]
    if not blocks:
        return np.zeros((n, 0), dtype=np.float32), []
    X = np.hstack(blocks)
    log.info("features: %d entities x %d columns", n, X.shape[1])
    return X, names
