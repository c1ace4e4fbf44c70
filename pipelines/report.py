"""The run report: one self-contained HTML file (inline CSS and SVG, no network, no scripts)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from anomaly.atomic import atomic_write_text

if TYPE_CHECKING:
    from pipelines.job import KindResult

__all__ = ["write_report"]

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-size:12.5px}
th,td{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f6f6f6}.flag{color:#b00020;font-weight:600}.mono{font-family:ui-monospace,monospace}
.kpi{display:inline-block;margin:0 2em 1em 0}.kpi b{display:block;font-size:1.6em}
svg text{font:11px system-ui,sans-serif}
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _scatter(points: list[tuple[float, float, bool, str]], w: int = 520, h: int = 300) -> str:
    """Clusters as points: log size against campaign score, flagged in red."""
    points = [p for p in points if np.isfinite(p[1])]  # campaigns found by their clock
    if not points:
        return "<p>No scored clusters.</p>"
    xs = np.log10([max(p[0], 1) for p in points])
    ys = np.array([p[1] for p in points])
    x0, x1 = float(xs.min()), float(xs.max()) + 1e-9
    y0, y1 = float(min(ys.min(), 0)), float(ys.max()) + 1e-9
    pad = 40
    out = [f'<svg width="{w}" height="{h}" role="img" aria-label="clusters by size and score">']
    out.append(f'<line x1="{pad}" y1="{h - pad}" x2="{w - 10}" y2="{h - pad}" stroke="#999"/>')
    out.append(f'<line x1="{pad}" y1="10" x2="{pad}" y2="{h - pad}" stroke="#999"/>')
    for (_, _, flagged, label), x, y in zip(points, xs, ys, strict=True):
        px = pad + (x - x0) / (x1 - x0) * (w - pad - 20)
        py = h - pad - (y - y0) / (y1 - y0) * (h - pad - 20)
        col = "#b00020" if flagged else "#4a78b5"
        out.append(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{col}" fill-opacity="0.7">'
            f"<title>{_e(label)}</title></circle>"
        )
    out.append(f'<text x="{w // 2}" y="{h - 8}">log10 cluster size</text>')
    out.append('<text x="2" y="12">score</text></svg>')
    return "".join(out)


def _bars(values: dict[str, float], w: int = 520) -> str:
    if not values:
        return ""
    top = max(values.values()) or 1.0
    row = 18
    out = [f'<svg width="{w}" height="{row * len(values) + 4}" role="img" aria-label="timings">']
    for i, (name, v) in enumerate(values.items()):
        bw = v / top * (w - 260)
        out.append(f'<text x="0" y="{i * row + 13}">{_e(name)}</text>')
        out.append(f'<rect x="200" y="{i * row + 3}" width="{bw:.1f}" height="12" fill="#4a78b5"/>')
        out.append(f'<text x="{205 + bw:.1f}" y="{i * row + 13}">{v:.2f}s</text>')
    out.append("</svg>")
    return "".join(out)


def write_report(
    path: str | Path,
    record: dict[str, Any],
    kinds: dict[str, KindResult],
    bundle: dict[str, Any],
) -> None:
    """Write ``report.html`` for a run."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Campaign report {_e(record['run_id'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>Campaign report</h1><p class='mono'>{_e(record['run_id'])} · code "
        f"{_e(record['code_version'])} · bundle {_e(bundle.get('bundle_id'))}</p>",
    ]
    for kind, kr in kinds.items():
        c = record["counts"][kind]
        parts.append(f"<h2>{_e(kind)}</h2>")
        for label, key in (
            ("events", "events"),
            ("entities", "entities"),
            ("clusters", "clusters"),
            ("flagged campaigns", "flagged_campaigns"),
            ("rules (enforce)", "rules_enforce"),
        ):
            parts.append(f"<span class='kpi'><b>{_e(c[key])}</b>{label}</span>")
        parts.append(f"<span class='kpi'><b>{c['noise_share']:.0%}</b>noise</span>")
        camp = kr.campaigns.sort_values(["flagged", "score"], ascending=[False, False])
        points = [
            (float(r.size), float(r.score), bool(r.flagged), f"{r.campaign_id}: {r.reason}")
            for r in camp.itertuples()
        ]
        parts.append(_scatter(points))
        parts.append(
            "<table><tr><th>campaign</th><th>size</th><th>score</th><th>flagged</th>"
            "<th>why</th><th>shared attributes</th><th>first / last seen</th></tr>"
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
    parts.append(
        "<h2>Rules</h2><table><tr><th>id</th><th>kind</th><th>mode</th>"
        "<th>condition</th><th>hits</th><th>precision (lower bound)</th>"
        "<th>recall</th><th>why shadow</th></tr>"
    )
    for rule in bundle.get("rules", []):
        bt = rule.get("backtest", {})
        reasons = "; ".join(rule.get("provenance", {}).get("shadow_reasons", []))
        cond = json.dumps(rule["condition"], ensure_ascii=False)
        parts.append(
            f"<tr><td class='mono'>{_e(rule['id'])}</td><td>{_e(rule['kind'])}</td>"
            f"<td>{_e(rule['mode'])}</td><td class='mono'>{_e(cond)}</td>"
            f"<td>{_e(bt.get('hits'))}</td><td>{bt.get('precision', 0):.4f} "
            f"({bt.get('precision_lower', 0):.4f})</td><td>{bt.get('recall', 0):.3f}</td>"
            f"<td>{_e(reasons)}</td></tr>"
        )
    parts.append("</table><h2>Run timings</h2>")
    parts.append(_bars(record.get("timings", {})))
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
