"""The 2-D campaign map (clustering/campaign_map.py): UMAP placement and datashader drawing."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import pytest

from clustering.campaign_map import (
    FLAGGED_PALETTE,
    NOISE_COLOR,
    CampaignMap,
    fit_map,
    render_map,
)

log = logging.getLogger(__name__)


def _blobs(n_per: int = 150, k: int = 4, d: int = 24, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 12.0
    X = np.concatenate([c + rng.normal(size=(n_per, d)) for c in centres]).astype(np.float32)
    return X, np.repeat(np.arange(k), n_per)


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    X, y = _blobs()
    return X, y


@pytest.fixture(scope="module")
def fitted(blobs: tuple[np.ndarray, np.ndarray]) -> CampaignMap:
    X, _ = blobs
    # 400 of the 600 rows are fitted, the other 200 placed with transform
    return fit_map(X, sample=400, random_state=3)


def test_same_seed_gives_the_same_coordinates(
    blobs: tuple[np.ndarray, np.ndarray], fitted: CampaignMap
) -> None:
    X, _ = blobs
    again = fit_map(X, sample=400, random_state=3)
    assert fitted.coords.shape == (len(X), 2)
    assert fitted.coords.dtype == np.float32
    assert np.isfinite(fitted.coords).all()
    assert len(fitted.sample_index) == 400
    np.testing.assert_array_equal(fitted.sample_index, again.sample_index)
    np.testing.assert_array_equal(fitted.coords, again.coords)


def test_separated_blobs_stay_separated(
    blobs: tuple[np.ndarray, np.ndarray], fitted: CampaignMap
) -> None:
    _, y = blobs
    xy = fitted.coords.astype(np.float64)
    centroids = np.array([xy[y == c].mean(axis=0) for c in np.unique(y)])
    spread = max(
        float(np.sqrt(((xy[y == c] - centroids[c]) ** 2).sum(axis=1)).mean()) for c in np.unique(y)
    )
    gaps = [
        float(np.linalg.norm(centroids[a] - centroids[b]))
        for a in range(len(centroids))
        for b in range(a + 1, len(centroids))
    ]
    log.info("closest centroids %.2f apart, largest mean spread %.2f", min(gaps), spread)
    assert min(gaps) > 2 * spread
    # the transformed rows land with their own blob, too
    placed = np.setdiff1d(np.arange(len(y)), fitted.sample_index)
    nearest = np.argmin(((xy[placed, None, :] - centroids[None, :, :]) ** 2).sum(axis=2), axis=1)
    assert (nearest == y[placed]).mean() > 0.98


def test_transform_places_new_rows_and_tiny_inputs_fall_back(fitted: CampaignMap) -> None:
    X, _ = _blobs(n_per=5, seed=0)
    xy = fitted.transform(X)
    assert xy.shape == (len(X), 2) and np.isfinite(xy).all()
    tiny = fit_map(X[:4], random_state=0)  # too few rows for UMAP: principal components
    assert tiny.model is None and tiny.coords.shape == (4, 2)
    assert fit_map(np.zeros((0, 3), dtype=np.float32)).coords.shape == (0, 2)
    with pytest.raises(ValueError, match="NaN"):
        fit_map(np.full((20, 2), np.nan))


def test_render_shape_colours_and_flagged_on_top(
    blobs: tuple[np.ndarray, np.ndarray], fitted: CampaignMap
) -> None:
    _, y = blobs
    labels = y.copy()
    labels[::10] = -1  # some noise
    out = render_map(fitted.coords, labels, {2}, width=320, height=200)
    image, extent, colors = out
    assert image.shape == (200, 320, 4) and image.dtype == np.uint8
    drawn = image[..., 3] > 0
    assert drawn.any() and not drawn.all()
    x0, x1, y0, y1 = extent
    assert x0 < fitted.coords[:, 0].min() and x1 > fitted.coords[:, 0].max()
    assert y0 < fitted.coords[:, 1].min() and y1 > fitted.coords[:, 1].max()
    assert colors[-1] == NOISE_COLOR and colors[2] == FLAGGED_PALETTE[0]
    # the flagged blob's pixels carry its bright colour; row 0 is the top of the map
    rgb = np.array([int(FLAGGED_PALETTE[0][i : i + 2], 16) for i in (1, 3, 5)])
    cx, cy = fitted.coords[y == 2].mean(axis=0)
    col = int((cx - x0) / (x1 - x0) * 320)
    row = int((y1 - cy) / (y1 - y0) * 200)
    patch = image[max(0, row - 6) : row + 7, max(0, col - 6) : col + 7].reshape(-1, 4)
    patch = patch[patch[:, 3] > 0]
    assert len(patch) and np.abs(patch[:, :3].astype(int) - rgb).sum(axis=1).min() < 30
    # nothing flagged, nothing drawn
    assert render_map(fitted.coords, labels, set()).image.shape == (600, 900, 4)
    empty = render_map(np.zeros((0, 2)), np.zeros(0, dtype=int), set(), width=10, height=5)
    assert empty.image.shape == (5, 10, 4) and not empty.image.any()


def test_200k_points_render(record_property: Callable[[str, object], None]) -> None:
    rng = np.random.default_rng(0)
    n = 200_000
    labels = rng.integers(-1, 300, size=n)
    coords = rng.normal(size=(n, 2)) + (labels[:, None] % 17) * 3.0
    flagged = set(range(0, 300, 7))
    started = time.perf_counter()
    out = render_map(coords, labels, flagged)
    seconds = time.perf_counter() - started
    log.info("render_map: %d points at 900x600 in %.2fs", n, seconds)
    record_property("render_seconds", round(seconds, 3))
    assert out.image.shape == (600, 900, 4)
    assert (out.image[..., 3] > 0).mean() > 0.05
    assert len(out.colors) == 301
