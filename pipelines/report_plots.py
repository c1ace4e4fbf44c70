"""Inline SVG charts for the run report (:mod:`pipelines.report`).

Every function takes plain numbers and strings and returns one ``<svg>`` element as text: no
plotting library, no external resources, so the report opens offline. Text goes through
:func:`html.escape` and coordinates are written with fixed decimals, so the same inputs always
give the same bytes. Each chart carries a ``data-plot`` attribute that tests and readers can
select it by.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from clustering.campaign_map import FLAGGED_PALETTE, MUTED_PALETTE

__all__ = [
    "BLUE",
    "FLAG",
    "PALETTE",
    "Bar",
    "Night",
    "bar_chart",
    "campaign_map",
    "forecast_chart",
    "nice_ticks",
    "size_score_scatter",
    "timeline_chart",
]

FLAG = "#b00020"
BLUE = "#4a78b5"
LIGHT = "#a9c1e0"
GREY = "#9a9a9a"
NOISE = "#d4d4d4"
# One palette with the campaign map (flagged campaigns bright and distinct, cycled beyond
# their number; other clusters muted, so the flagged ones stand out).
PALETTE = FLAGGED_PALETTE
MUTED = MUTED_PALETTE


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _f(x: float) -> str:
    """A coordinate with one decimal (fixed, so output is byte-stable)."""
    return f"{x:.1f}"


def _num(v: float) -> str:
    """A value for a label: integers as such, otherwise three significant digits."""
    if not math.isfinite(v):
        return "–"
    if float(v).is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def _open(plot: str, w: int, h: int, label: str) -> str:
    return (
        f'<svg data-plot="{_e(plot)}" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        f'role="img" aria-label="{_e(label)}"><title>{_e(label)}</title>'
    )


def nice_ticks(hi: float, n: int = 4, *, integer: bool = False) -> list[float]:
    """Round tick values from 0 up to at least ``hi`` (steps of 1, 2 or 5 times a power of 10).

    Parameters
    ----------
    hi : float
        Largest value to cover; non-positive values give ``[0, 1]``.
    n : int
        Rough number of intervals wanted.
    integer : bool
        Steps of at least 1 (for counts).

    Returns
    -------
    list of float
        Ascending, starting at 0, the last one >= ``hi``.
    """
    if not math.isfinite(hi) or hi <= 0:
        return [0.0, 1.0]
    raw = hi / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    if integer:
        step = max(step, 1.0)
    count = math.ceil(hi / step - 1e-9)
    return [round(i * step, 10) for i in range(count + 1)]


class Night(NamedTuple):
    """One night of a kind's campaign timeline."""

    date: str
    campaigns: int
    flagged: int
    new: int
    continuing: int
    ended: int


def timeline_chart(plot: str, nights: Sequence[Night], w: int = 680, h: int = 230) -> str:
    """Campaigns per night: new and continuing stacked up, ended below the axis, flagged as a
    red line.

    Parameters
    ----------
    plot : str
        ``data-plot`` name.
    nights : sequence of Night
        In date order.
    w, h : int
        Size in pixels.
    """
    if not nights:
        return "<p>No nights to show.</p>"
    left, right, top, bottom = 44, 12, 26, 34
    pw, ph = w - left - right, h - top - bottom
    up = max(max(n.new + n.continuing, n.campaigns, n.flagged) for n in nights)
    down = max(n.ended for n in nights)
    ticks = nice_ticks(float(up), integer=True)
    dticks = nice_ticks(float(down), 2, integer=True) if down else [0.0]
    span = ticks[-1] + dticks[-1]
    zero = top + ph * ticks[-1] / span

    def y(v: float) -> float:
        return zero - v / span * ph

    out = [_open(plot, w, h, "campaigns per night: new, continuing, ended and flagged")]
    for t in ticks[1:] + [-d for d in dticks[1:]]:
        out.append(
            f'<line x1="{left}" y1="{_f(y(t))}" x2="{w - right}" y2="{_f(y(t))}" stroke="#eee"/>'
            f'<text x="{left - 4}" y="{_f(y(t) + 4)}" text-anchor="end">{_num(abs(t))}</text>'
        )
    out.append(
        f'<line x1="{left}" y1="{_f(zero)}" x2="{w - right}" y2="{_f(zero)}" stroke="#999"/>'
    )
    slot = pw / len(nights)
    bw = max(min(slot * 0.7, 48.0), 1.0)
    every = max(1, math.ceil(len(nights) / 8))  # at most ~8 date labels
    line = []
    for i, n in enumerate(nights):
        cx = left + slot * (i + 0.5)
        x = cx - bw / 2
        tip = (
            f"{n.date}: {n.campaigns} campaigns ({n.new} new, {n.continuing} continuing), "
            f"{n.ended} ended, {n.flagged} flagged"
        )
        out.append(f"<g><title>{_e(tip)}</title>")
        for v0, v1, col in (
            (0, n.new, BLUE),
            (n.new, n.new + n.continuing, LIGHT),
            (0, -n.ended, GREY),
        ):
            if v1 != v0:
                y0, y1 = sorted((y(v0), y(v1)))
                out.append(
                    f'<rect x="{_f(x)}" y="{_f(y0)}" width="{_f(bw)}" '
                    f'height="{_f(y1 - y0)}" fill="{col}"/>'
                )
        out.append("</g>")
        line.append((cx, y(n.flagged)))
        if i % every == 0 or i == len(nights) - 1:
            out.append(
                f'<text x="{_f(cx)}" y="{h - bottom + 16}" text-anchor="middle">'
                f"{_e(n.date[5:] if len(nights) > 1 else n.date)}</text>"
            )
    if len(line) > 1:
        pts = " ".join(f"{_f(a)},{_f(b)}" for a, b in line)
        out.append(f'<polyline points="{pts}" fill="none" stroke="{FLAG}" stroke-width="2"/>')
    for a, b in line:
        out.append(f'<circle cx="{_f(a)}" cy="{_f(b)}" r="3.5" fill="{FLAG}"/>')
    lx = left
    for name, col in (("new", BLUE), ("continuing", LIGHT), ("ended", GREY), ("flagged", FLAG)):
        out.append(
            f'<rect x="{lx}" y="6" width="10" height="10" fill="{col}"/>'
            f'<text x="{lx + 14}" y="15">{name}</text>'
        )
        lx += 24 + 7 * len(name)
    out.append("</svg>")
    return "".join(out)


def campaign_map(
    plot: str,
    xy: np.ndarray,
    group: np.ndarray,
    groups: Sequence[tuple[str, bool]],
    axis_labels: tuple[str, str],
    w: int = 680,
    h: int = 440,
) -> str:
    """Entities in 2-D, coloured by campaign; flagged campaigns outlined, noise light grey.

    Parameters
    ----------
    plot : str
        ``data-plot`` name.
    xy : ndarray of shape (n, 2)
        Projected coordinates.
    group : ndarray of int, shape (n,)
        Index into ``groups`` per point, -1 for noise.
    groups : sequence of (name, flagged)
        The campaigns, flagged ones first (they take the distinct palette colours).
    axis_labels : (str, str)
        Labels of the horizontal and vertical axes.
    w, h : int
        Size in pixels; the legend takes the right-hand 170 px.
    """
    if len(xy) == 0:
        return "<p>No entities to map.</p>"
    legend_w, pad = 170, 24
    pw, ph = w - legend_w - 2 * pad, h - 2 * pad
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    px = pad + (xy[:, 0] - lo[0]) / span[0] * pw
    py = h - pad - (xy[:, 1] - lo[1]) / span[1] * ph
    out = [_open(plot, w, h, "campaign map: entities projected to two dimensions")]
    out.append(
        f'<rect x="{pad}" y="{pad}" width="{pw}" height="{ph}" fill="none" stroke="#eee"/>'
        f'<text x="{pad + pw // 2}" y="{h - 6}" text-anchor="middle">{_e(axis_labels[0])}</text>'
        f'<text x="10" y="{pad + ph // 2}" transform="rotate(-90 10 {pad + ph // 2})" '
        f'text-anchor="middle">{_e(axis_labels[1])}</text>'
    )
    colours = _map_colours(groups)
    # noise first, then unflagged clusters, flagged last: the highlighted points stay on top
    order = [-1] + [i for i, g in enumerate(groups) if not g[1]]
    order += [i for i, g in enumerate(groups) if g[1]]
    for gi in order:
        idx = np.flatnonzero(group == gi)
        if len(idx) == 0:
            continue
        if gi < 0:
            name, attrs = "noise", f'fill="{NOISE}" r="1.6"'
        elif groups[gi][1]:
            name = f"{groups[gi][0]} (flagged)"
            attrs = f'fill="{colours[gi]}" r="3" stroke="#222" stroke-width="0.6"'
        else:
            name, attrs = groups[gi][0], f'fill="{colours[gi]}" fill-opacity="0.6" r="2.2"'
        out.append(f"<g><title>{_e(name)}: {len(idx)} shown</title>")
        out.extend(f'<circle cx="{_f(px[i])}" cy="{_f(py[i])}" {attrs}/>' for i in idx)
        out.append("</g>")
    out.append(_map_legend(groups, colours, w - legend_w + 6, pad))
    out.append("</svg>")
    return "".join(out)


def _map_colours(groups: Sequence[tuple[str, bool]]) -> list[str]:
    colours, nf, nu = [], 0, 0
    for _, flagged in groups:
        if flagged:
            colours.append(PALETTE[nf % len(PALETTE)])
            nf += 1
        else:
            colours.append(MUTED[nu % len(MUTED)])
            nu += 1
    return colours


def _map_legend(groups: Sequence[tuple[str, bool]], colours: list[str], x: int, y: int) -> str:
    out, row = [], 0
    flagged = [(g[0], c) for g, c in zip(groups, colours, strict=True) if g[1]]
    for name, col in flagged[: len(PALETTE)]:
        out.append(
            f'<circle cx="{x + 5}" cy="{y + row * 16 + 5}" r="4" fill="{col}" stroke="#222" '
            f'stroke-width="0.6"/><text x="{x + 14}" y="{y + row * 16 + 9}">{_e(name)}</text>'
        )
        row += 1
    if len(flagged) > len(PALETTE):
        out.append(f'<text x="{x}" y="{y + row * 16 + 9}">… colours repeat</text>')
        row += 1
    for name, col in (("other clusters", MUTED[0]), ("noise", NOISE)):
        out.append(
            f'<circle cx="{x + 5}" cy="{y + row * 16 + 5}" r="4" fill="{col}"/>'
            f'<text x="{x + 14}" y="{y + row * 16 + 9}">{name}</text>'
        )
        row += 1
    return "".join(out)


class Bar(NamedTuple):
    """One bar of :func:`bar_chart`."""

    label: str
    value: float
    colour: str = BLUE
    text: str = ""  # shown right of the bar; default: the value
    marker: float | None = None  # a reference value drawn as a tick (e.g. background share)
    tip: str = ""


def bar_chart(
    plot: str,
    bars: Sequence[Bar],
    *,
    label: str,
    w: int = 520,
    label_w: int = 200,
    scale_max: float | None = None,
    threshold: float | None = None,
    threshold_text: str = "",
) -> str:
    """Horizontal bars, one a row, with optional reference ticks and a threshold line.

    Parameters
    ----------
    plot : str
        ``data-plot`` name.
    bars : sequence of Bar
    label : str
        Accessible name of the chart.
    w, label_w : int
        Width of the chart and of the label column, in pixels.
    scale_max : float, optional
        Value at the full bar length (default: the largest value, marker or threshold).
    threshold : float, optional
        Drawn as a dashed vertical line labelled ``threshold_text``.
    """
    if not bars:
        return ""
    row, top = 18, 16 if threshold is not None else 2
    values = [b.value for b in bars] + [b.marker or 0.0 for b in bars] + [threshold or 0.0]
    top_v = scale_max or max(v for v in values if math.isfinite(v)) or 1.0
    bar_w = w - label_w - 70  # room for the value text
    h = top + row * len(bars) + 4
    out = [_open(plot, w, h, label)]
    max_chars = label_w // 7  # ~7 px a character at 11 px
    for i, b in enumerate(bars):
        yy = top + i * row
        name = b.label if len(b.label) <= max_chars else b.label[: max_chars - 1] + "…"
        length = max(0.0, min(b.value, top_v)) / top_v * bar_w if math.isfinite(b.value) else 0
        tip = b.tip or f"{b.label}: {b.text or _num(b.value)}"
        out.append(
            f"<g><title>{_e(tip)}</title>"
            f'<text x="{label_w - 6}" y="{yy + 13}" text-anchor="end">{_e(name)}</text>'
            f'<rect x="{label_w}" y="{yy + 3}" width="{_f(length)}" height="12" '
            f'fill="{b.colour}"/>'
        )
        if b.marker is not None and math.isfinite(b.marker):
            mx = label_w + min(b.marker, top_v) / top_v * bar_w
            out.append(
                f'<line x1="{_f(mx)}" y1="{yy + 1}" x2="{_f(mx)}" y2="{yy + 17}" '
                'stroke="#222" stroke-width="2"/>'
            )
        out.append(
            f'<text x="{_f(label_w + length + 4)}" y="{yy + 13}">'
            f"{_e(b.text or _num(b.value))}</text></g>"
        )
    if threshold is not None:
        tx = label_w + min(threshold, top_v) / top_v * bar_w
        # label to the left of the line when it sits near the right edge
        right = tx > label_w + 0.6 * bar_w
        anchor = f'x="{_f(tx - 3)}" text-anchor="end"' if right else f'x="{_f(tx + 3)}"'
        out.append(
            f'<line x1="{_f(tx)}" y1="{top - 4}" x2="{_f(tx)}" y2="{h}" stroke="{FLAG}" '
            f'stroke-dasharray="4 3"/><text {anchor} y="11" fill="{FLAG}">'
            f"{_e(threshold_text)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def forecast_chart(
    plot: str, rows: Sequence[tuple[str, str, float, float]], w: int = 680, label_w: int = 250
) -> str:
    """Expected hits and expected background hits a day per rule, on a log axis.

    Background hits are usually thousands of times smaller than hits, so a linear axis would
    hide them; the log axis starts at 0.001 and anything below sits at its start.

    Parameters
    ----------
    plot : str
        ``data-plot`` name.
    rows : sequence of (label, status, hits, background)
        One per rule; ``status`` ``enforce`` is drawn solid, anything else as an outline.
    w, label_w : int
        Size of the chart and of its label column, in pixels.
    """
    if not rows:
        return "<p>No rules.</p>"
    row, top = 24, 22
    vmax = max(max(r[2], r[3]) for r in rows)
    lo, hi = -3, max(1, math.ceil(math.log10(max(vmax, 1.0)) + 1e-9))
    bar_w = w - label_w - 60
    h = top + row * len(rows) + 6

    def x(v: float) -> float:
        p = (math.log10(v) if v > 0 else lo) if math.isfinite(v) else lo
        return label_w + (min(max(p, lo), hi) - lo) / (hi - lo) * bar_w

    out = [_open(plot, w, h, "rule hit forecasts: expected hits and background hits a day")]
    for p in range(lo, hi + 1):
        xx = x(10.0**p)
        out.append(
            f'<line x1="{_f(xx)}" y1="{top - 4}" x2="{_f(xx)}" y2="{h}" stroke="#eee"/>'
            f'<text x="{_f(xx)}" y="{top - 8}" text-anchor="middle">{_num(10.0**p)}</text>'
        )
    for i, (name, status, hits, bg) in enumerate(rows):
        yy = top + i * row
        enforce = status == "enforce"
        fill = f'fill="{BLUE}"' if enforce else f'fill="#fff" stroke="{BLUE}" stroke-width="1.2"'
        tip = f"{name} [{status}]: {_num(hits)} hits a day, {_num(bg)} of them background"
        out.append(
            f"<g><title>{_e(tip)}</title>"
            f'<text x="{label_w - 6}" y="{yy + 12}" text-anchor="end">{_e(name)}</text>'
            f'<text x="{label_w - 6}" y="{yy + 22}" text-anchor="end" class="small" '
            f'fill="{"#1a7f37" if enforce else "#8a6d00"}">{_e(status)}</text>'
            f'<rect x="{label_w}" y="{yy + 2}" width="{_f(x(hits) - label_w)}" height="10" '
            f"{fill}/>"
            f'<rect x="{label_w}" y="{yy + 13}" width="{_f(x(bg) - label_w)}" height="7" '
            f'fill="{FLAG}"/>'
            f'<text x="{_f(x(hits) + 4)}" y="{yy + 11}">{_num(hits)}</text>'
            f'<text x="{_f(x(bg) + 4)}" y="{yy + 21}" class="small">{_num(bg)} bg</text></g>'
        )
    out.append("</svg>")
    return "".join(out)


def size_score_scatter(
    plot: str, points: Sequence[tuple[float, float, bool, str]], w: int = 520, h: int = 260
) -> str:
    """Clusters as points: log size against campaign score, flagged in red."""
    points = [p for p in points if np.isfinite(p[1])]  # campaigns found by their clock
    if not points:
        return "<p>No scored clusters.</p>"
    xs = np.log10([max(p[0], 1) for p in points])
    ys = np.array([p[1] for p in points])
    x0, x1 = float(xs.min()), float(xs.max()) + 1e-9
    y0, y1 = float(min(ys.min(), 0)), float(ys.max()) + 1e-9
    pad = 40
    out = [_open(plot, w, h, "clusters by size and score")]
    out.append(f'<line x1="{pad}" y1="{h - pad}" x2="{w - 10}" y2="{h - pad}" stroke="#999"/>')
    out.append(f'<line x1="{pad}" y1="10" x2="{pad}" y2="{h - pad}" stroke="#999"/>')
    for (_, _, flagged, text), x, y in zip(points, xs, ys, strict=True):
        px = pad + (x - x0) / (x1 - x0) * (w - pad - 20)
        py = h - pad - (y - y0) / (y1 - y0) * (h - pad - 20)
        col = FLAG if flagged else BLUE
        out.append(
            f'<circle cx="{_f(px)}" cy="{_f(py)}" r="4" fill="{col}" fill-opacity="0.7">'
            f"<title>{_e(text)}</title></circle>"
        )
    # the ends of both axes, so sizes and scores can be read off without hovering
    out.append(
        f'<text x="{pad}" y="{h - pad + 14}" text-anchor="middle">{_num(10**x0)}</text>'
        f'<text x="{w - 20}" y="{h - pad + 14}" text-anchor="middle">{_num(round(10**x1))}'
        f'</text><text x="{pad - 4}" y="{h - pad}" text-anchor="end">{y0:.2f}</text>'
        f'<text x="{pad - 4}" y="24" text-anchor="end">{y1:.2f}</text>'
    )
    out.append(f'<text x="{w // 2}" y="{h - 8}" text-anchor="middle">cluster size (log)</text>')
    out.append('<text x="2" y="12">score</text></svg>')
    return "".join(out)
