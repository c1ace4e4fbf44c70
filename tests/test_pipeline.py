"""End to end on the built-in synthetic data: the quality floor, the outputs, determinism,
and the SQL export agreeing with the Python evaluator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from anomaly.export import apply_bundle, bundle_to_sql, load_bundle
from clustering.attributes import ensure_columns
from pipelines.config import JobConfig
from pipelines.demo import run_demo
from pipelines.job import OUTPUT_FILES, RunResult, run_job
from pipelines.readers import read_events
from pipelines.synthetic import generate, write_synthetic


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunResult, dict[str, Any]]:
    out = tmp_path_factory.mktemp("demo")
    result, figures = run_demo(out, seed=0)
    return out, result, figures


def test_day2_quality_floor_signups(demo) -> None:
    _, _, fig = demo
    s = fig["signups"]
    assert s["campaign_recall"] >= 0.97, s
    # issue 3's floor; measured 0 to 0.00006 (one row) a seed over seeds 0-13 (see README)
    assert s["benign_hit_rate"] <= 0.0001, s


def test_day2_quality_floor_senders(demo) -> None:
    _, _, fig = demo
    m = fig["senders"]
    assert m["campaign_recall"] >= 0.80, m
    assert m["benign_hit_rate"] <= 0.001, m


def test_lookalike_crowds_stay_unblocked(demo) -> None:
    _, _, fig = demo
    for kind in ("signups", "senders"):
        crowds = {g: v for g, v in fig[kind]["groups"].items() if v["label"] == "lookalike"}
        assert crowds, f"no look-alike crowds in the {kind} demo data"
        for name, v in crowds.items():
            assert v["blocked"] == 0, f"look-alike crowd {name} was blocked: {v}"


def test_every_planted_campaign_is_mostly_blocked(demo) -> None:
    _, _, fig = demo
    for kind in ("signups", "senders"):
        for name, v in fig[kind]["groups"].items():
            if v["label"] == "campaign":
                assert v["share_blocked"] >= 0.85, (kind, name, v)


# Seed 8 misses the benign floor by one row since the issue-13 flag: a rule on the phone farm's
# exact app user agent (held by no one else on day 1, 0 background hits, 0.04 expected a
# night) hits 2 of 17,039 ordinary signups on day 2 (1.2e-4 > 1e-4). Reported in issue 13;
# strict, so the test fails once it is fixed and the mark must go.
_SEED_8_MISS = pytest.mark.xfail(
    strict=True, reason="issue 13: an app user-agent rule hits 2 ordinary day-2 signups"
)


@pytest.mark.parametrize("seed", [7, pytest.param(8, marks=_SEED_8_MISS), 9, 15])
def test_next_day_floors_on_seeds_that_once_failed(seed: int, tmp_path: Path) -> None:
    """Seed 7: shops on one ESP's addresses were flagged; 8: a phone farm shared its cluster
    with its carrier's users; 9: phishing strays outside the cluster blocked every rule; 15:
    shops sharing order templates and linking to their own sites were flagged."""
    _, fig = run_demo(tmp_path, seed=seed)
    for kind in ("signups", "senders"):
        assert fig[kind]["benign_hit_rate"] <= 0.0001, (kind, fig[kind])
        for name, v in fig[kind]["groups"].items():
            if v["label"] == "campaign":
                assert v["share_blocked"] >= 0.85, (kind, name, v)
            else:
                assert v["blocked"] == 0, (kind, name, v)
    assert fig["signups"]["campaign_recall"] >= 0.97


def test_outputs_follow_the_contract(demo) -> None:
    out, _result, _ = demo
    for rel in OUTPUT_FILES:
        assert (out / rel).is_file(), rel
    assign = pd.read_parquet(out / "assignments.parquet")
    assert list(assign.columns) == [
        "kind",
        "entity_id",
        "cluster_id",
        "campaign_id",
        "entity_score",
        "campaign_score",
    ]
    assert set(assign["kind"]) == {"signups", "senders"}
    assert (assign["cluster_id"] >= -1).all()
    # noise has no campaign unless it was attached to one through a campaign-exclusive value
    noise = assign[assign["cluster_id"] == -1]
    assert noise["campaign_id"].isna().mean() > 0.9
    flagged_ids = set(pd.read_parquet(out / "campaigns.parquet").query("flagged")["campaign_id"])
    assert set(noise["campaign_id"].dropna()) <= flagged_ids
    camps = pd.read_parquet(out / "campaigns.parquet")
    for col in ("campaign_id", "kind", "size", "score", "flagged", "top_attributes"):
        assert col in camps
    assert camps["flagged"].any()
    record = json.loads((out / "run.json").read_text())
    assert record["inputs"]["signups"]["rows_read"] == 20_000
    assert len(record["inputs"]["signups"]["sha256"]) == 64
    assert {"signups: clustering", "senders: rules", "report"} <= set(record["timings"])
    peaks = record["peak_rss_mib"]
    assert set(peaks) == set(record["timings"]) and all(v > 0 for v in peaks.values())
    bundle = load_bundle(out / "rules" / "bundle.json")
    assert bundle["rules"], "no rules"
    for rule in bundle["rules"]:
        for key in ("id", "version", "kind", "campaign_id", "title", "condition", "sql"):
            assert key in rule
        assert rule["mode"] in ("shadow", "enforce")
        assert rule["expires_at"] > rule["created_at"]
        assert {"hits", "precision", "precision_lower", "recall"} <= set(rule["backtest"])
        assert rule["provenance"]["run_id"] == record["run_id"]
    html = (out / "report.html").read_text()
    assert "<svg" in html and "Rules" in html and "http" not in html.split("<body>")[0]
    assert "nan" not in html.lower()  # every figure drawn is a number
    assert "by its clock" in html  # the timer-driven pool is reported as such


@pytest.mark.parametrize("kind", ["signups", "senders"])
@pytest.mark.parametrize("day", [0, 1])
def test_sql_export_matches_python_evaluator(demo, kind: str, day: int) -> None:
    out, _, _ = demo
    bundle = load_bundle(out / "rules" / "bundle.json")
    path = sorted((out / "data" / kind).iterdir())[day]
    frame = read_events(path, kind).frame
    py = apply_bundle(bundle, frame, kind)
    sql_text = (out / "rules" / f"{kind}.sql").read_text()
    assert sql_text == bundle_to_sql(bundle, kind)
    con = duckdb.connect()
    con.register(kind, ensure_columns(frame, kind))
    got = con.execute(sql_text).df()
    id_col = "account_id" if kind == "signups" else "message_id"
    cols = [id_col, "rule_id", "action"]
    a = py[cols].astype(str).sort_values(cols).reset_index(drop=True)
    b = got[cols].astype(str).sort_values(cols).reset_index(drop=True)
    assert len(a) > 0
    pd.testing.assert_frame_equal(a, b)


def test_same_inputs_same_bundle_bytes(demo, tmp_path: Path) -> None:
    out, result, _ = demo
    inputs = {
        kind: read_events(sorted((out / "data" / kind).iterdir())[0], kind)
        for kind in ("signups", "senders")
    }
    again = run_job(inputs, tmp_path, JobConfig(seed=0))
    assert again.run_id == result.run_id
    assert (tmp_path / "rules" / "bundle.json").read_bytes() == (
        out / "rules" / "bundle.json"
    ).read_bytes()
    a = pd.read_parquet(tmp_path / "assignments.parquet")
    b = pd.read_parquet(out / "assignments.parquet")
    pd.testing.assert_frame_equal(a, b)


def test_portable_exports_published_with_the_bundle(demo) -> None:
    out, _, _ = demo
    bundle = load_bundle(out / "rules" / "bundle.json")
    for kind in ("signups", "senders"):
        cel = json.loads((out / "rules" / f"{kind}.cel.json").read_text())
        active = [r for r in bundle["rules"] if r["kind"] == kind]
        assert {r["id"] for r in cel["rules"]} == {r["id"] for r in active}
    skipped = json.loads((out / "rules" / "rspamd" / "skipped.json").read_text())
    senders = {r["id"] for r in bundle["rules"] if r["kind"] == "senders"}
    assert senders and {s["rule_id"] for s in skipped} <= senders
    exported = senders - {s["rule_id"] for s in skipped}
    # every sender rule Rspamd cannot express exactly says why, naming the attribute it
    # cannot read (the demo's rules lean on subject shapes and recipient counts, which last
    # the night; multimaps cannot read them), and every other one is a composite (exactness:
    # tests/test_portable_exports.py)
    attrs_of = {
        r["id"]: {a.get("attr") for a in r["condition"].get("args", [r["condition"]])}
        for r in bundle["rules"]
        if r["kind"] == "senders"
    }
    for s in skipped:
        assert any(a and a in s["reason"] for a in attrs_of[s["rule_id"]]), s
    composites = (out / "rules" / "rspamd" / "composites.conf").read_text()
    assert composites.count("expression") >= len(exported)


def test_a_cluster_alone_in_its_group_is_never_detached(tmp_path: Path) -> None:
    """Detachment once counted a group's members, not its clusters: a hosting campaign alone
    in its group, its network spread over many subnets no one of which it owns, was unflagged
    at 2,500 signups a night (and a fragmented farm with it on the next night)."""
    written = write_synthetic(
        generate(days=1, seed=0, signups_per_day=2500, messages_per_day=500), tmp_path / "in"
    )
    result = run_job(
        {"signups": read_events(written["signups"][0], "signups")}, tmp_path / "out", JobConfig()
    )
    kr = result.kinds["signups"]
    cs = kr.cluster_scores
    clusters_per_group = cs["group"].value_counts()
    for _, c in cs[cs["detached"]].iterrows():
        assert clusters_per_group[c["group"]] > 1, c["reason"]
    truth = pd.read_parquet(tmp_path / "in" / "labels" / "signups.parquet")
    slow = truth.loc[truth["group"] == "low_slow", "account_id"].astype(str)
    labels = pd.Series(kr.labels, index=kr.entities.index.astype(str))
    # measured 0.53 (0 while the lone cluster was detached)
    assert labels.reindex(slow).isin(cs.index[cs["flagged"]]).mean() >= 0.4
