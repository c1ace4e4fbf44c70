"""A 2-D map of a night's entities: UMAP to place them, datashader to draw them.

:func:`fit_map` fits umap-learn's UMAP on a seeded sample of the feature rows and places the
other rows with ``UMAP.transform``, chunk by chunk, so a million entities cost one fit on the
sample plus a linear pass. :func:`render_map` draws the points with datashader: the canvas
counts points per pixel and per colour, so overplotting turns into density instead of a
solid blot and a million points stay readable. Flagged clusters take bright colours and are
drawn over everything else; other clusters are muted and noise is light grey.

Both need the ``lab`` extra (``pip install -e '.[lab]'``): umap-learn and datashader.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

__all__ = [
    "FLAGGED_PALETTE",
    "MUTED_PALETTE",
    "NOISE_COLOR",
    "CampaignMap",
    "MapImage",
    "fit_map",
    "render_map",
]

# The hues of the map and of the report (pipelines/report_plots.py): flagged clusters cycle
# through the bright ones, other clusters through the muted ones, noise is light grey.
FLAGGED_PALETTE = (
    "#d62728",
    "#1f77b4",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#393b79",
    "#637939",
)
MUTED_PALETTE = ("#9ecae1", "#a1d99b", "#fdd0a2", "#dadaeb", "#c7e9c0", "#fdae6b", "#bcbddc")
NOISE_COLOR = "#b4b4b4"

# Below this many rows UMAP's spectral layout is not meaningful; the map is the first two
# principal components instead.
_MIN_UMAP_ROWS = 10


@dataclass
class CampaignMap:
    """Where each row of a feature matrix lands in 2-D.

    Attributes
    ----------
    coords : ndarray of shape (n_rows, 2), float32
        The map coordinates, in the rows' order.
    sample_index : ndarray of int
        Rows the UMAP was fitted on (sorted); the others were placed by ``transform``.
    model : umap.UMAP or None
        The fitted UMAP; ``None`` when there were too few rows for one (the map is then the
        first two principal components) or no rows at all.
    random_state : int
    chunk_size : int
        Rows per ``transform`` call.
    """

    coords: np.ndarray
    sample_index: np.ndarray
    model: Any
    random_state: int
    chunk_size: int

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Place new rows ``X`` (same columns as the fitted matrix) on the map.

        Parameters
        ----------
        X : ndarray of shape (n, d)

        Returns
        -------
        ndarray of shape (n, 2), float32
        """
        X = _check_matrix(X)
        if self.model is None:
            raise ValueError("this map has no UMAP model (too few rows to fit one)")
        out = np.empty((len(X), 2), dtype=np.float32)
        for start in range(0, len(X), self.chunk_size):
            stop = min(start + self.chunk_size, len(X))
            with _quiet_umap():
                out[start:stop] = self.model.transform(X[start:stop])
        return out


class MapImage(NamedTuple):
    """A rendered map.

    Attributes
    ----------
    image : ndarray of shape (height, width, 4), uint8
        RGBA, row 0 at the top (``matplotlib.pyplot.imshow(image, extent=extent)`` shows it
        the right way up); transparent where no point falls.
    extent : (float, float, float, float)
        ``(x_min, x_max, y_min, y_max)`` of the map coordinates the image covers.
    colors : dict of int to str
        Cluster id -> the colour it is drawn in (``-1``: noise), for a legend.
    """

    image: np.ndarray
    extent: tuple[float, float, float, float]
    colors: dict[int, str]


def fit_map(
    X: np.ndarray,
    sample: int = 20_000,
    random_state: int = 0,
    *,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    chunk_size: int = 50_000,
) -> CampaignMap:
    """Fit a 2-D UMAP on a seeded sample of ``X`` and place every row.

    The UMAP uses ``init="spectral"``, the Euclidean metric and ``random_state``, which makes
    umap-learn run single-threaded and deterministic: the same ``X`` and ``random_state``
    give the same coordinates, byte for byte (``tests/test_campaign_map.py`` checks this).
    The spectral start keeps well-separated groups apart better than a random one; umap-learn
    itself falls back to a (seeded) random start when the eigen-solver fails.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Float feature rows (:func:`clustering.features.build_features`); cast to float32.
    sample : int
        Rows the UMAP is fitted on, drawn without replacement with ``random_state``; every
        row when ``n_rows <= sample``. The rest are placed with ``UMAP.transform``.
    random_state : int
    n_neighbors : int
        UMAP's neighbourhood size (capped at the number of fitted rows minus one).
    min_dist : float
        UMAP's minimum distance between embedded points.
    chunk_size : int
        Rows per ``transform`` call (bounds memory on a million rows); smaller when fewer
        than 4096 rows are fitted. A row's coordinates depend on the rows placed with it
        (UMAP's optimisation samples negatives from one stream), so they are reproducible for
        a given ``chunk_size``, not across sizes.

    Returns
    -------
    CampaignMap
        With ``coords`` of shape (n_rows, 2). With fewer than 10 rows there is no UMAP: the
        coordinates are the first two principal components (zeros for missing ones).

    Raises
    ------
    ValueError
        When ``X`` is not a 2-D matrix of finite values, or ``sample`` < 2.
    """
    X = _check_matrix(X)
    if sample < 2:
        raise ValueError("sample must be at least 2")
    n = len(X)
    if n < _MIN_UMAP_ROWS:
        return CampaignMap(_pca2(X), np.arange(n), None, random_state, chunk_size)
    rng = np.random.default_rng(random_state)
    idx = np.sort(rng.choice(n, size=sample, replace=False)) if n > sample else np.arange(n)
    from umap import UMAP

    started = time.perf_counter()
    model = UMAP(
        n_components=2,
        n_neighbors=min(n_neighbors, len(idx) - 1),
        min_dist=min_dist,
        metric="euclidean",
        init="spectral",
        random_state=random_state,
        transform_seed=random_state,
        n_jobs=1,
    )
    with _quiet_umap():
        model.fit(X[idx])
    fitted = time.perf_counter() - started
    # under 4096 fitted rows umap-learn places new rows with a dense distance matrix to all
    # of them (float64): keep each chunk's matrix near 128 MiB
    chunk = max(1, chunk_size if len(idx) >= 4096 else min(chunk_size, 2**24 // len(idx)))
    out = CampaignMap(np.empty((n, 2), dtype=np.float32), idx, model, random_state, chunk)
    out.coords[idx] = np.asarray(model.embedding_, dtype=np.float32)
    rest = np.setdiff1d(np.arange(n), idx, assume_unique=True)
    if len(rest):
        out.coords[rest] = out.transform(X[rest])
    log.info(
        "campaign map: UMAP fitted on %d of %d rows in %.1fs, %d placed in %.1fs",
        len(idx),
        n,
        fitted,
        len(rest),
        time.perf_counter() - started - fitted,
    )
    return out


def render_map(
    coords: np.ndarray,
    labels: np.ndarray,
    flagged: Collection[int],
    width: int = 900,
    height: int = 600,
    *,
    extent: tuple[float, float, float, float] | None = None,
    spread: int = 1,
) -> MapImage:
    """Draw map coordinates coloured by cluster with datashader.

    The canvas counts points per pixel and colour (``datashader.count_cat``); each pixel's
    colour mixes the colours of its points and its opacity follows the histogram-equalised
    count, so dense campaigns and sparse noise are both visible at any number of points.
    Two layers: noise (grey) and unflagged clusters (muted palette), then flagged clusters
    (bright palette, more opaque) on top. Flagged points are widened by ``spread`` pixels
    (``datashader.transfer_functions.spread``); the others too while they are sparse (fewer
    than a tenth of the pixels), so a few thousand points are as visible as a million.

    Parameters
    ----------
    coords : ndarray of shape (n, 2)
        :attr:`CampaignMap.coords`.
    labels : ndarray of int, shape (n,)
        Cluster id per point, ``-1`` (or any negative value) for noise.
    flagged : collection of int
        Cluster ids of flagged clusters.
    width, height : int
        Image size in pixels.
    extent : (x_min, x_max, y_min, y_max), optional
        The region drawn; default the points' bounding box plus a 3% margin.
    spread : int
        Pixels a point is widened by on each side (0 = none).

    Returns
    -------
    MapImage
        ``(image, extent, colors)``: RGBA uint8 of shape (height, width, 4) with row 0 at
        the top, the region it covers and each cluster's colour. Colours are assigned by
        cluster id: flagged clusters in increasing id order cycle through
        :data:`FLAGGED_PALETTE`, the others through :data:`MUTED_PALETTE`.
    """
    import datashader as ds
    import datashader.transfer_functions as tf

    coords = np.asarray(coords, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64, copy=False)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f"coords must have shape (n, 2), got {coords.shape}")
    if len(labels) != len(coords):
        raise ValueError(f"{len(labels)} labels for {len(coords)} points")
    if width < 1 or height < 1:
        raise ValueError("width and height must be positive")
    if not np.isfinite(coords).all():
        raise ValueError("coords has NaN or infinite values")
    labels = np.where(labels < 0, -1, labels)
    box = _extent(coords) if extent is None else tuple(float(v) for v in extent)
    x0, x1, y0, y1 = box
    clusters = np.unique(labels[labels >= 0])
    flag_set = {int(c) for c in flagged}
    is_flagged = np.array([int(c) in flag_set for c in clusters], dtype=bool)
    colors: dict[int, str] = {-1: NOISE_COLOR}
    for i, c in enumerate(clusters[is_flagged]):
        colors[int(c)] = FLAGGED_PALETTE[i % len(FLAGGED_PALETTE)]
    for i, c in enumerate(clusters[~is_flagged]):
        colors[int(c)] = MUTED_PALETTE[i % len(MUTED_PALETTE)]
    started = time.perf_counter()
    canvas = ds.Canvas(plot_width=width, plot_height=height, x_range=(x0, x1), y_range=(y0, y1))
    point_flagged = np.isin(labels, clusters[is_flagged])
    sparse = int((~point_flagged).sum()) < width * height // 10
    layers = []
    for mask, palette, min_alpha, widen in (
        (~point_flagged, (NOISE_COLOR, *MUTED_PALETTE), 90, spread if sparse else 0),
        (point_flagged, FLAGGED_PALETTE, 210, spread),
    ):
        if not mask.any():
            continue
        # one category per colour (clusters sharing a colour share a category), so the
        # aggregate stays (height, width, a dozen) however many clusters there are
        code_of = {col: i for i, col in enumerate(palette)}
        keys = np.array(sorted(k for k in colors if colors[k] in code_of), dtype=np.int64)
        key_codes = np.array([code_of[colors[int(k)]] for k in keys], dtype=np.int64)
        codes = key_codes[np.searchsorted(keys, labels[mask])]
        frame = pd.DataFrame(
            {
                "x": coords[mask, 0],
                "y": coords[mask, 1],
                "c": pd.Categorical.from_codes(codes, categories=list(palette)),
            }
        )
        agg = canvas.points(frame, "x", "y", agg=ds.count_cat("c"))
        img = tf.shade(agg, color_key=list(palette), how="eq_hist", min_alpha=min_alpha)
        if widen > 0:
            img = tf.spread(img, px=widen)
        layers.append(img)
    if layers:
        stacked = tf.stack(*layers) if len(layers) > 1 else layers[0]
        # datashader packs a pixel as r | g << 8 | b << 16 | a << 24: little-endian bytes
        rgba = np.ascontiguousarray(stacked.data, dtype="<u4")
        image = rgba.view(np.uint8).reshape(height, width, 4)[::-1].copy()
    else:
        image = np.zeros((height, width, 4), dtype=np.uint8)
    log.info(
        "campaign map: %d points (%d flagged) drawn at %dx%d in %.2fs",
        len(coords),
        int(point_flagged.sum()),
        width,
        height,
        time.perf_counter() - started,
    )
    return MapImage(image, (x0, x1, y0, y1), colors)


def _check_matrix(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("matrix has NaN or infinite values")
    return X


def _pca2(X: np.ndarray) -> np.ndarray:
    out = np.zeros((len(X), 2), dtype=np.float32)
    if len(X) < 2 or X.shape[1] == 0:
        return out
    centred = X.astype(np.float64) - X.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    k = min(2, len(s))
    # sign fixed by the largest loading, so the result does not depend on the LAPACK build
    proj = u[:, :k] * s[:k]
    signs = np.sign(proj[np.abs(proj).argmax(axis=0), np.arange(k)])
    out[:, :k] = proj * np.where(signs == 0, 1.0, signs)
    return out


def _extent(coords: np.ndarray) -> tuple[float, float, float, float]:
    if len(coords) == 0:
        return (0.0, 1.0, 0.0, 1.0)
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    span = hi - lo
    pad = np.where(span > 0, span * 0.03, 1.0)
    return (
        float(lo[0] - pad[0]),
        float(hi[0] + pad[0]),
        float(lo[1] - pad[1]),
        float(hi[1] + pad[1]),
    )


class _quiet_umap(warnings.catch_warnings):
    """umap-learn warns that a seed forces one thread, which is the point here."""

    def __enter__(self) -> None:
        super().__enter__()
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
