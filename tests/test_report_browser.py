"""The run report (``report.html``) from a small real run: offline, deterministic, and drawn
without errors by a real headless Chromium (Debian's package, driven by Playwright).

Chromium is not downloaded by Playwright here: CI installs Debian's ``chromium`` (``.ci/run``)
and the test fails, rather than skips, when it is missing, so a broken report cannot pass
unseen.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import Browser, sync_playwright

from pipelines.config import JobConfig
from pipelines.job import RunResult, run_job
from pipelines.readers import read_events
from pipelines.report import project_2d, write_report
from pipelines.synthetic import generate, write_synthetic

log = logging.getLogger(__name__)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Signups alone: the senders' detectors add ~6 s of fixed cost (JIT, SVD) and draw with the same
# code; the timeline below also names senders, which the report must ignore.
KINDS = ("signups",)

# Shaped like anomaly.drift.check_health's answer: one "psi:<feature>" check per feature.
HEALTH: dict[str, Any] = {
    "status": "degraded",
    "checks": [
        {
            "name": "psi:signups.ua_build",
            "value": 0.31,
            "threshold": 0.2,
            "breached": True,
            # markup in data must come out as text, never as markup
            "message": "ua_build shifted <script>alert(1)</script> & more",
        },
        {
            "name": "psi:signups.hour",
            "value": 0.12,
            "threshold": 0.2,
            "breached": False,
            "message": "feature signups.hour stable",
        },
        {"name": "min_clusters", "value": 5.0, "threshold": 1.0, "breached": False, "message": ""},
    ],
    "psi": {"signups.ua_build": 0.31, "signups.hour": 0.12, "signups.ip_asn": float("nan")},
}


def _timeline() -> pd.DataFrame:
    rows = []
    for i, date in enumerate(pd.date_range("2026-10-28", "2026-11-02").strftime("%Y-%m-%d")):
        for kind in ("signups", "senders"):
            new, cont = 1 + i % 3, 2 + i % 2
            rows.append(
                {
                    "date": date,
                    "kind": kind,
                    "campaigns": new + cont,
                    "flagged": 1 + i % 2,
                    "new": new,
                    "continuing": cont,
                    "ended": i % 2,
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """A small two-day synthetic signups run (day 1 as history), ~10 s on 2 cores."""
    out = tmp_path_factory.mktemp("report-run")
    data = generate(days=2, seed=0, signups_per_day=3000, messages_per_day=200)
    paths = write_synthetic(data, out / "data")
    inputs = {k: read_events(paths[k][1], k) for k in KINDS}
    history = {k: [read_events(paths[k][0], k)] for k in KINDS}
    return run_job(inputs, out, JobConfig(seed=0), history=history)


@pytest.fixture(scope="module")
def full_report(run: RunResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run's report with a timeline and a degraded health record."""
    path = tmp_path_factory.mktemp("report-full") / "report.html"
    write_report(path, run.record, run.kinds, run.bundle, timeline=_timeline(), health=HEALTH)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium "
            "(apt-get install chromium); Playwright's own browser download is not used"
        )
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_report_is_offline_deterministic_and_escaped(run: RunResult, full_report: Path) -> None:
    again = full_report.with_name("again.html")
    write_report(again, run.record, run.kinds, run.bundle, timeline=_timeline(), health=HEALTH)
    text = full_report.read_text(encoding="utf-8")
    assert again.read_bytes() == full_report.read_bytes()
    default = (run.out_dir / "report.html").read_text(encoding="utf-8")
    for page in (text, default):
        assert "http://" not in page and "https://" not in page
        assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in text
    assert "No reference window" in default and "No reference window" not in text
    assert "Status: degraded · 1 of 3 checks breached" in text
    assert "Not listed: 1 PSI check(s)" in text  # the quiet PSI check is in the chart only
    assert 'data-plot="timeline-signups"' in text and "timeline-senders" not in text


def test_timeline_needs_its_columns(run: RunResult, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ended"):
        write_report(
            tmp_path / "r.html",
            run.record,
            run.kinds,
            run.bundle,
            timeline=_timeline().drop(columns="ended"),
        )
    assert not (tmp_path / "r.html").exists()


def test_report_without_campaigns_or_rules(run: RunResult, tmp_path: Path) -> None:
    """A quiet night (all noise, no rules) still gives a complete page."""
    kr = run.kinds["signups"]
    quiet = dataclasses.replace(
        kr, campaigns=kr.campaigns.iloc[0:0], labels=np.full(len(kr.labels), -1)
    )
    path = tmp_path / "quiet.html"
    write_report(path, run.record, {"signups": quiet}, {**run.bundle, "rules": []})
    text = path.read_text(encoding="utf-8")
    assert 'data-plot="timeline-signups"' in text and 'data-plot="map-signups"' in text
    assert "No scored clusters" in text and "No rules tonight" in text
    assert "rule-forecast" not in text and "What flagged campaigns share" not in text


def test_projection_is_seeded_and_keeps_every_cluster() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(20_000, 6)).astype(np.float32)
    labels = np.full(len(X), -1)
    labels[:50], labels[50:5050] = 0, 1  # a small cluster and a large one among noise
    idx, xy, explained = project_2d(X, labels, budget=3000)
    again = project_2d(X, labels, budget=3000)
    assert np.array_equal(idx, again[0]) and np.array_equal(xy, again[1])
    assert len(idx) <= 3100 and xy.shape == (len(idx), 2)
    assert set(labels[idx]) == {-1, 0, 1} and (labels[idx] == 0).sum() == 40
    assert 0 < explained[1] <= explained[0] < 1


def _open(browser: Browser, path: Path, shot: Path) -> dict[str, Any]:
    """Load ``path``; return what went wrong, what was requested and the plots' sizes."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("request", lambda r: requests.append(r.url))
    url = path.resolve().as_uri()
    page.goto(url, wait_until="load")
    boxes = {}
    for svg in page.locator("svg[data-plot]").all():
        name = svg.get_attribute("data-plot")
        svg.scroll_into_view_if_needed()
        boxes[name] = svg.bounding_box()
    marks = page.locator("svg[data-plot^='map-'] circle").count()
    page.screenshot(path=str(shot), full_page=True)
    page.close()
    return {"url": url, "errors": errors, "requests": requests, "boxes": boxes, "marks": marks}


@pytest.mark.parametrize("which", ["full", "defaults"])
def test_report_renders_in_chromium(
    which: str, run: RunResult, full_report: Path, browser: Browser, tmp_path: Path
) -> None:
    path = full_report if which == "full" else run.out_dir / "report.html"
    shot = tmp_path / f"report-{which}.png"
    seen = _open(browser, path, shot)
    assert seen["errors"] == []
    assert [u for u in seen["requests"] if u != seen["url"]] == []
    expected = {"rule-forecast", "timings"}
    for kind in KINDS:
        expected |= {f"timeline-{kind}", f"map-{kind}", f"scatter-{kind}"}
    if which == "full":
        expected.add("psi")
    boxes = seen["boxes"]
    assert expected <= set(boxes), sorted(expected - set(boxes))
    if any(kr.campaigns["flagged"].any() for kr in run.kinds.values()):
        assert any(name.startswith("attr-") for name in boxes), sorted(boxes)
    for name, box in boxes.items():
        assert box is not None and box["width"] > 50 and box["height"] > 10, (name, box)
    assert seen["marks"] > 100  # the campaign maps drew their points
    assert shot.stat().st_size > 50_000
    log.info("screenshot of the %s report: %s", which, shot)
