"""The run report: one self-contained HTML file (inline CSS and SVG, no network, no scripts).

What an analyst reads first is drawn, not tabulated: drift health, campaigns per night, a 2-D
map of tonight's clusters, what each flagged campaign's members share, and what each rule is
expected to hit. The charts themselves are in :mod:`pipelines.report_plots`; this module
turns a run's results into their inputs and lays the page out. The same inputs give the same
bytes: no wall-clock time, no random ids, a seeded sample for the map.
"""

from __future__ import annotations

import html
import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from anomaly.atomic import atomic_write_text
from clustering.entities import PROFILE_ATTRIBUTES
from pipelines.report_plots import (
    BLUE,
    FLAG,
    Bar,
    Night,
    bar_chart,
    campaign_map,
    forecast_chart,
    size_score_scatter,
    timeline_chart,
)

if TYPE_CHECKING:
    from pipelines.job import KindResult

log = logging.getLogger(__name__)

__all__ = ["TIMELINE_COLUMNS", "project_2d", "write_report"]

TIMELINE_COLUMNS = ("date", "kind", "campaigns", "flagged", "new", "continuing", "ended")
MAP_SAMPLE = 3000  # points on the campaign map: enough to see shapes, small enough to render
MAP_SEED = 0
MAX_BREAKDOWNS = 12  # flagged campaigns given attribute charts
ATTRS_PER_CAMPAIGN = 3
VALUES_PER_ATTR = 5
MAX_FORECAST_RULES = 40
MAX_PSI_FEATURES = 30
PSI_THRESHOLD = 0.2  # the usual "significant shift" level, when no check names one

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{margin-top:2em;border-bottom:1px solid #ddd}h3{margin:1.4em 0 .4em}
table{border-collapse:collapse;width:100%;font-size:12.5px}
th,td{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f6f6f6}.flag{color:#b00020;font-weight:600}.mono{font-family:ui-monospace,monospace}
.kpi{display:inline-block;margin:0 2em 1em 0}.kpi b{display:block;font-size:1.6em}
svg{max-width:100%;height:auto;display:block}
svg text{font:11px system-ui,sans-serif}svg text.small{font-size:9px}
.banner{padding:.6em 1em;border-radius:4px;font-weight:600;margin:1em 0}
.ok{background:#e6f4ea;color:#1a5e2a}.degraded{background:#fde7e9;color:#8a0015}
.none{background:#f1f1f1;color:#555}
.camp{border:1px solid #eee;border-radius:4px;padding:.5em 1em;margin:1em 0}
.charts{display:flex;flex-wrap:wrap;gap:1em}.charts>div{flex:0 0 330px}
.note{color:#666;font-size:12.5px}
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _fmt(v: Any, spec: str) -> str:
    """``format(v, spec)`` for finite numbers, a dash otherwise."""
    f = _float(v)
    return format(f, spec) if math.isfinite(f) else "–"


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text)


# --------------------------------------------------------------------------- data


def project_2d(
    X: np.ndarray, labels: np.ndarray, *, budget: int = MAP_SAMPLE, seed: int = MAP_SEED
) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """A seeded sample of entities and its first two principal components.

    Cluster members are kept preferentially (every cluster keeps up to 40 points, the rest
    in proportion to size) and noise fills about a third of the budget: a uniform sample
    of a large night would be almost all noise and miss the small campaigns.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Entity features.
    labels : ndarray of shape (n,)
        Cluster per entity, -1 for noise.
    budget : int
        Rough number of points to keep.
    seed : int
        Seed of the sample.

    Returns
    -------
    idx : ndarray of int
        Sampled rows of ``X``, ascending.
    xy : ndarray of shape (len(idx), 2)
        Their coordinates on the first two components (signs fixed so that each component's
        largest loading is positive, which makes the picture stable across LAPACK builds).
    explained : (float, float)
        Share of the sample's variance each component explains.
    """
    n = len(X)
    rng = np.random.default_rng(seed)
    if n <= budget:
        idx = np.arange(n)
    else:
        noise = np.flatnonzero(labels < 0)
        clustered = labels >= 0
        n_noise = min(len(noise), budget // 3 if clustered.any() else budget)
        left = budget - n_noise
        total = int(clustered.sum())
        # up to 40 points even for a small cluster, unless there are too many clusters for that
        k_min = max(1, min(40, left // max(len(np.unique(labels[clustered])), 1)))
        picks = [rng.choice(noise, n_noise, replace=False)] if n_noise else []
        for c in np.unique(labels[clustered]):
            rows = np.flatnonzero(labels == c)
            k = min(len(rows), max(k_min, math.ceil(len(rows) * left / max(total, 1))))
            picks.append(rng.choice(rows, k, replace=False))
        idx = np.sort(np.concatenate(picks)) if picks else np.arange(0)
    Z = np.nan_to_num(np.asarray(X[idx], dtype=np.float64))
    if len(Z) < 2 or Z.shape[1] == 0:
        return idx, np.zeros((len(idx), 2)), (0.0, 0.0)
    Z = Z - Z.mean(axis=0)
    _, s, vt = np.linalg.svd(Z, full_matrices=False)
    comps = np.zeros((2, Z.shape[1]))
    comps[: min(2, len(vt))] = vt[:2]
    for i in range(2):
        if comps[i, np.argmax(np.abs(comps[i]))] < 0:
            comps[i] = -comps[i]
    var = s**2
    share = var / var.sum() if var.sum() > 0 else np.zeros_like(var)
    share = np.concatenate([share, [0.0, 0.0]])
    return idx, Z @ comps.T, (float(share[0]), float(share[1]))


def _ordered_campaigns(kr: KindResult) -> pd.DataFrame:
    """Flagged first, then by score and size, the campaign id breaking ties."""
    camp = kr.campaigns.copy()
    camp["_score"] = camp["score"].fillna(np.inf)  # found by their clock: no score, show first
    return camp.sort_values(
        ["flagged", "_score", "size", "campaign_id"],
        ascending=[False, False, False, True],
        kind="stable",
    )


def _campaign_of(kr: KindResult, camp: pd.DataFrame) -> np.ndarray:
    """The campaign id of each entity (None for noise), attached strays included."""
    by_cluster = dict(zip(camp["cluster_id"].astype(int), camp["campaign_id"], strict=True))
    mapped = pd.Series(np.asarray(kr.labels, dtype=np.int64)).map(by_cluster)
    out = mapped.to_numpy(dtype=object)
    out[mapped.isna().to_numpy()] = None
    attached = getattr(kr, "attached", None)
    if attached is not None and len(attached) == len(out):
        stray = np.array([a is not None for a in attached]) & (kr.labels < 0)
        out[stray] = attached[stray]
    return out


def _nights(
    kind: str,
    kr: KindResult,
    bundle: dict[str, Any],
    timeline: pd.DataFrame | None,
) -> list[Night]:
    """The nights of ``kind`` in ``timeline``, or tonight alone when it has none."""
    if timeline is not None:
        rows = timeline[timeline["kind"] == kind].copy()
        # dates may arrive as str, date or Timestamp (a store query); draw them as YYYY-MM-DD
        rows["date"] = rows["date"].astype(str).str[:10]
        counts = ["campaigns", "flagged", "new", "continuing", "ended"]
        rows[counts] = rows[counts].apply(pd.to_numeric, errors="coerce").fillna(0).astype(int)
        rows = rows.sort_values("date", kind="stable")
        if len(rows):
            return [
                Night(r.date, r.campaigns, r.flagged, r.new, r.continuing, r.ended)
                for r in rows.itertuples()
            ]
    # tonight alone: every campaign is new
    date = str(bundle.get("created_at") or "")[:10]
    if not date and len(kr.campaigns):
        date = str(pd.Timestamp(kr.campaigns["last_seen"].max()).date())
    # campaigns, not clusters (the record counts clusters; merged fragments share an id),
    # as pipelines.nightly counts them for the nights before
    flagged_of = kr.campaigns.groupby("campaign_id", sort=True)["flagged"].any()
    n, flagged = len(flagged_of), int(flagged_of.sum())
    return [Night(date or "tonight", n, flagged, n, 0, 0)]


def _telling_attributes(
    kind: str, entities: pd.DataFrame, members: np.ndarray, cache: dict[str, pd.Series]
) -> list[tuple[str, list[Bar]]]:
    """The attributes whose top value sets the campaign apart most from the whole night.

    "Telling" is the top value's share among members minus its share among all entities:
    gmail.com at 60% of a campaign says little when it is 55% of everyone.
    """
    scored = []
    for attr in PROFILE_ATTRIBUTES[kind]:
        if attr not in entities:
            continue
        if attr not in cache:
            cache[attr] = entities[attr].dropna().astype(str).value_counts() / len(entities)
        vals = entities[attr].iloc[members].dropna().astype(str)
        if vals.empty:
            continue
        counts = vals.value_counts()
        counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
        share = counts / len(members)
        top_value = str(share.index[0])
        telling = float(share.iloc[0]) - float(cache[attr].get(top_value, 0.0))
        if telling > 0:
            scored.append((-round(telling, 9), attr, share))
    out = []
    for _, attr, share in sorted(scored, key=lambda t: (t[0], t[1]))[:ATTRS_PER_CAMPAIGN]:
        bars = []
        for value, s in share.head(VALUES_PER_ATTR).items():
            bg = float(cache[attr].get(value, 0.0))
            bars.append(
                Bar(
                    label=str(value),
                    value=float(s),
                    colour=FLAG,
                    text=f"{s:.0%}",
                    marker=bg,
                    tip=f"{attr}={value}: {s:.1%} of the campaign, {bg:.1%} of all {kind}",
                )
            )
        out.append((attr, bars))
    return out


# --------------------------------------------------------------------------- sections


def _health_section(health: dict[str, Any] | None) -> list[str]:
    parts = ["<h2>Drift and health</h2>"]
    if health is None:
        return [*parts, "<div class='banner none'>No reference window: drift not checked.</div>"]
    status = str(health.get("status", "unknown"))
    cls = "ok" if status == "ok" else "degraded"
    checks = list(health.get("checks") or [])
    breached = [c for c in checks if c.get("breached")]
    parts.append(
        f"<div class='banner {cls}' data-status='{_e(status)}'>Status: {_e(status)} · "
        f"{len(breached)} of {len(checks)} checks breached</div>"
    )
    # pipelines.nightly names its PSI checks "psi:<feature>", all with the same threshold
    psi_checks = [c for c in checks if str(c.get("name", "")).lower().startswith("psi")]
    threshold = _float(psi_checks[0].get("threshold")) if psi_checks else PSI_THRESHOLD
    if not math.isfinite(threshold):
        threshold = PSI_THRESHOLD
    psi = sorted(
        ((str(k), _float(v)) for k, v in (health.get("psi") or {}).items()),
        key=lambda kv: (-kv[1] if math.isfinite(kv[1]) else 0.0, kv[0]),
    )
    if psi:
        parts.append("<h3>Population stability (PSI) per feature</h3>")
        if len(psi) > MAX_PSI_FEATURES:
            parts.append(f"<p class='note'>The {MAX_PSI_FEATURES} largest of {len(psi)}.</p>")
        bars = [
            Bar(name, v, FLAG if v > threshold else BLUE, _fmt(v, ".3f"))
            for name, v in psi[:MAX_PSI_FEATURES]
        ]
        parts.append(
            bar_chart(
                "psi",
                bars,
                label="PSI per feature",
                w=680,
                label_w=240,
                threshold=threshold,
                threshold_text=f"threshold {threshold:g}",
            )
        )
    if checks:
        # the PSI chart already shows every feature: list only the PSI checks that breached
        quiet = [c for c in psi_checks if not c.get("breached")]
        shown = [c for c in checks if c.get("breached")]
        shown += [c for c in checks if not c.get("breached") and c not in quiet]
        parts.append(
            "<h3>Checks</h3><table><tr><th>check</th><th>value</th><th>threshold</th>"
            "<th>breached</th><th>message</th></tr>"
        )
        for c in shown:
            hit = bool(c.get("breached"))
            parts.append(
                f"<tr><td>{_e(c.get('name'))}</td><td>{_fmt(c.get('value'), '.4g')}</td>"
                f"<td>{_fmt(c.get('threshold'), '.4g')}</td>"
                f"<td{' class=flag' if hit else ''}>{'yes' if hit else 'no'}</td>"
                f"<td>{_e(c.get('message'))}</td></tr>"
            )
        parts.append("</table>")
        if quiet:
            parts.append(
                f"<p class='note'>Not listed: {len(quiet)} PSI check(s) within the threshold "
                "(see the chart).</p>"
            )
    return parts


def _map_section(kind: str, kr: KindResult, camp: pd.DataFrame, of: np.ndarray) -> list[str]:
    if len(kr.labels) == 0:
        return []
    idx, xy, (v1, v2) = project_2d(np.asarray(kr.features), np.asarray(kr.labels))
    of = of[idx]
    order = list(dict.fromkeys(camp["campaign_id"]))  # flagged first, like the table
    flagged = set(camp.loc[camp["flagged"], "campaign_id"])
    pos = {c: i for i, c in enumerate(order)}
    group = np.array([pos.get(c, -1) if c is not None else -1 for c in of], dtype=np.int64)
    note = (
        f"<p class='note'>{len(idx):,} of {len(kr.labels):,} entities (seeded sample, "
        "clusters kept first), projected on the first two principal components of their "
        "features. Flagged campaigns are outlined; hover for names.</p>"
    )
    svg = campaign_map(
        f"map-{kind}",
        xy,
        group,
        [(c, c in flagged) for c in order],
        (f"PC1 ({v1:.0%} of variance)", f"PC2 ({v2:.0%})"),
    )
    return ["<h3>Campaign map</h3>", note, svg]


def _breakdown_section(kind: str, kr: KindResult, camp: pd.DataFrame, of: np.ndarray) -> list[str]:
    flagged = camp[camp["flagged"]].drop_duplicates("campaign_id")
    if flagged.empty:
        return []
    cache: dict[str, pd.Series] = {}
    parts = [
        "<h3>What flagged campaigns share</h3><p class='note'>Top values of the attributes "
        "that set each campaign apart; the black tick is the value's share of all "
        f"{_e(kind)} tonight.</p>"
    ]
    if len(flagged) > MAX_BREAKDOWNS:
        parts.append(f"<p class='note'>The first {MAX_BREAKDOWNS} of {len(flagged)}.</p>")
    for r in flagged.head(MAX_BREAKDOWNS).itertuples():
        members = np.flatnonzero(of == r.campaign_id)
        parts.append(
            f"<div class='camp'><b class='mono'>{_e(r.campaign_id)}</b> · {len(members):,} "
            f"members · {_e(r.reason)}<div class='charts'>"
        )
        attrs = _telling_attributes(kind, kr.entities, members, cache) if len(members) else []
        for attr, bars in attrs:
            parts.append(f"<div><b>{_e(attr)}</b>")
            parts.append(
                bar_chart(
                    f"attr-{_slug(str(r.campaign_id))}-{_slug(attr)}",
                    bars,
                    label=f"{attr} in {r.campaign_id}",
                    w=330,
                    label_w=150,
                    scale_max=1.0,
                )
            )
            parts.append("</div>")
        if not attrs:
            parts.append("<p class='note'>No attribute stands out (found by timing).</p>")
        parts.append("</div></div>")
    return parts


def _kind_section(
    kind: str,
    kr: KindResult,
    record: dict[str, Any],
    bundle: dict[str, Any],
    timeline: pd.DataFrame | None,
) -> list[str]:
    c = record["counts"][kind]
    parts = [f"<h2>{_e(kind)}</h2>"]
    for label, key in (
        ("events", "events"),
        ("entities", "entities"),
        ("clusters", "clusters"),
        ("flagged campaigns", "flagged_campaigns"),
        ("rules (enforce)", "rules_enforce"),
    ):
        parts.append(f"<span class='kpi'><b>{_e(c[key])}</b>{label}</span>")
    parts.append(f"<span class='kpi'><b>{c['noise_share']:.0%}</b>noise</span>")
    parts.append("<h3>Campaigns over time</h3>")
    if timeline is None:
        parts.append("<p class='note'>No timeline given: tonight only.</p>")
    parts.append(timeline_chart(f"timeline-{kind}", _nights(kind, kr, bundle, timeline)))
    camp = _ordered_campaigns(kr)
    of = _campaign_of(kr, camp)
    parts += _map_section(kind, kr, camp, of)
    parts.append("<h3>Clusters by size and score</h3>")
    points = [
        (float(r.size), float(r.score), bool(r.flagged), f"{r.campaign_id}: {r.reason}")
        for r in camp.itertuples()
    ]
    parts.append(size_score_scatter(f"scatter-{kind}", points))
    parts += _breakdown_section(kind, kr, camp, of)
    parts.append(
        "<h3>Campaigns</h3><table><tr><th>campaign</th><th>size</th><th>score</th>"
        "<th>flagged</th><th>why</th><th>shared attributes</th><th>first / last seen</th></tr>"
    )
    for r in camp.head(60).itertuples():
        cls = " class='flag'" if r.flagged else ""
        score = "by its clock" if np.isnan(r.score) else f"{r.score:.2f}"
        parts.append(
            f"<tr><td class='mono'>{_e(r.campaign_id)}</td><td>{r.size}</td>"
            f"<td>{score}</td><td{cls}>{'yes' if r.flagged else 'no'}</td>"
            f"<td>{_e(r.reason)}</td><td>{_e(r.top_attributes)}</td>"
            f"<td>{_e(r.first_seen)}<br>{_e(r.last_seen)}</td></tr>"
        )
    parts.append("</table>")
    return parts


def _rules_section(bundle: dict[str, Any]) -> list[str]:
    rules = list(bundle.get("rules", []))
    parts = ["<h2>Rules</h2>"]

    def forecast(rule: dict[str, Any]) -> tuple[float, float]:
        bt = rule.get("backtest", {})
        hits = bt.get("expected_hits_per_day", bt.get("hits", 0))
        bg = bt.get("expected_background_hits_per_day", 0)
        return (float(hits) if hits is not None else 0.0, float(bg) if bg is not None else 0.0)

    if rules:
        ranked = sorted(rules, key=lambda r: (str(r["kind"]), -forecast(r)[0], str(r["id"])))
        parts.append(
            "<h3>Hit forecasts</h3><p class='note'>Expected hits a day (blue; solid: enforced, "
            "outline: shadow) and expected hits on background traffic (red), log scale.</p>"
        )
        if len(ranked) > MAX_FORECAST_RULES:
            parts.append(f"<p class='note'>{MAX_FORECAST_RULES} of {len(ranked)} rules.</p>")
        rows = [
            (f"{r['kind']} · {r['id']}", str(r.get("status") or r.get("mode")), *forecast(r))
            for r in ranked[:MAX_FORECAST_RULES]
        ]
        parts.append(forecast_chart("rule-forecast", rows))
    else:
        parts.append("<p class='note'>No rules tonight.</p>")
    parts.append(
        "<table><tr><th>id</th><th>kind</th><th>mode</th>"
        "<th>condition</th><th>hits</th><th>precision (lower bound)</th>"
        "<th>recall</th><th>expected / day (background)</th><th>why shadow</th></tr>"
    )
    for rule in rules:
        bt = rule.get("backtest", {})
        reasons = "; ".join(rule.get("provenance", {}).get("shadow_reasons", []))
        cond = json.dumps(rule["condition"], ensure_ascii=False)
        hits, bg = forecast(rule)
        parts.append(
            f"<tr><td class='mono'>{_e(rule['id'])}</td><td>{_e(rule['kind'])}</td>"
            f"<td>{_e(rule['mode'])}</td><td class='mono'>{_e(cond)}</td>"
            f"<td>{_e(bt.get('hits'))}</td><td>{bt.get('precision', 0):.4f} "
            f"({bt.get('precision_lower', 0):.4f})</td><td>{bt.get('recall', 0):.3f}</td>"
            f"<td>{_fmt(hits, '.0f')} ({_fmt(bg, '.4f')})</td><td>{_e(reasons)}</td></tr>"
        )
    parts.append("</table>")
    return parts


def write_report(
    path: str | Path,
    record: dict[str, Any],
    kinds: dict[str, KindResult],
    bundle: dict[str, Any],
    *,
    timeline: pd.DataFrame | None = None,
    health: dict[str, Any] | None = None,
) -> None:
    """Write ``report.html`` for a run, atomically.

    Parameters
    ----------
    path : path
        Where to write; replaced atomically.
    record : dict
        The run record (``run.json``'s content so far): run id, counts, timings, inputs.
    kinds : dict
        kind -> :class:`pipelines.job.KindResult`.
    bundle : dict
        The rule bundle written with the run.
    timeline : DataFrame, optional
        Campaigns per night and kind, columns :data:`TIMELINE_COLUMNS` (``date`` as
        ``YYYY-MM-DD``). Without it the chart shows tonight alone, every campaign new.
    health : dict, optional
        Drift checks against a reference window: ``status`` (``ok`` or ``degraded``),
        ``checks`` (dicts of name, value, threshold, breached, message) and ``psi``
        (feature -> PSI). Without it the report says there is no reference window.

    Raises
    ------
    ValueError
        ``timeline`` lacks a column of :data:`TIMELINE_COLUMNS`.
    """
    if timeline is not None and (missing := set(TIMELINE_COLUMNS) - set(timeline.columns)):
        raise ValueError(f"timeline lacks column(s) {sorted(missing)}")
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>Campaign report {_e(record['run_id'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>Campaign report</h1><p class='mono'>{_e(record['run_id'])} · code "
        f"{_e(record['code_version'])} · bundle {_e(bundle.get('bundle_id'))}</p>",
    ]
    parts += _health_section(health)
    for kind, kr in kinds.items():
        parts += _kind_section(kind, kr, record, bundle, timeline)
    parts += _rules_section(bundle)
    timings = record.get("timings", {})
    if timings:
        parts.append("<h2>Run timings</h2>")
        bars = [Bar(str(k), float(v), BLUE, f"{float(v):.2f}s") for k, v in timings.items()]
        parts.append(bar_chart("timings", bars, label="run timings", w=680, label_w=220))
    parts.append(
        "<h2>Inputs</h2><table><tr><th>kind</th><th>path</th><th>rows</th>"
        "<th>rejected</th><th>sha256</th></tr>"
    )
    for kind, inp in record["inputs"].items():
        parts.append(
            f"<tr><td>{_e(kind)}</td><td class='mono'>{_e(inp['path'])}</td>"
            f"<td>{inp['rows_read']}</td><td>{inp['rows_rejected']}</td>"
            f"<td class='mono'>{_e(inp['sha256'][:16])}…</td></tr>"
        )
    parts.append("</table></body></html>\n")
    atomic_write_text(path, "".join(parts))
    log.debug("wrote report %s", path)
