"""The nightly job: partitions, the store, identity, lifecycle, health, reruns and kills."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from anomaly.export import load_bundle
from pipelines.cli import main
from pipelines.config import JobConfig
from pipelines.nightly import run_nightly
from pipelines.synthetic import generate, write_synthetic

ROOT = Path(__file__).resolve().parents[1]
NIGHTS = ("2026-11-01", "2026-11-02", "2026-11-03")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nightly-inputs")
    write_synthetic(generate(days=3, seed=0, signups_per_day=2500, messages_per_day=2500), root)
    return root


def _config(inputs: Path, out: Path, **nightly: object) -> JobConfig:
    cfg = JobConfig()
    cfg.nightly.input_dir = str(inputs)
    cfg.nightly.out_dir = str(out)
    for k, v in nightly.items():
        setattr(cfg.nightly, k, v)
    return cfg


def _toml(inputs: Path, out: Path, extra: str = "") -> str:
    return f'[nightly]\ninput_dir = "{inputs}"\nout_dir = "{out}"\n{extra}'


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def three_nights(inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nightly-out")
    cfg = _config(inputs, out)
    for night in NIGHTS:
        r = run_nightly(night, cfg)
        assert r.exit_code == 0 and r.published, r.message
    return out


def test_three_nights_fill_the_store_and_publish(three_nights: Path) -> None:
    out = three_nights
    con = duckdb.connect(str(out / "campaigns.duckdb"), read_only=True)
    runs = con.execute("SELECT date, status, published FROM runs ORDER BY date").fetchall()
    assert runs == [(n, "ok", True) for n in NIGHTS]
    # the published bundle is the last night's, and enforcement can load it
    last = con.execute("SELECT bundle_id FROM runs WHERE date = ?", [NIGHTS[-1]]).fetchone()
    assert last is not None
    assert load_bundle(out / "rules" / "bundle.json")["bundle_id"] == last[0]
    assert (out / "runs" / NIGHTS[-1] / "report.html").is_file()
    # the published rules were measured on the next night's rows
    nights = con.execute("SELECT DISTINCT date FROM rule_nights ORDER BY date").fetchall()
    assert [n for (n,) in nights] == list(NIGHTS[1:])
    # metrics for Prometheus, in the textfile collector's format
    prom = (out / "metrics" / "campaigns.prom").read_text()
    assert 'campaigns_rows_read{kind="signups"}' in prom and "campaigns_run_degraded 0.0" in prom


def test_campaigns_keep_their_ids_across_nights(three_nights: Path, inputs: Path) -> None:
    import pandas as pd

    con = duckdb.connect(str(three_nights / "campaigns.duckdb"), read_only=True)
    camps = con.execute(
        "SELECT date, campaign_id, status, first_seen FROM campaigns "
        "WHERE kind = 'signups' AND flagged"
    ).df()
    members = con.execute(
        "SELECT date, entity_id, campaign_id FROM assignments WHERE kind = 'signups' "
        "AND campaign_id IS NOT NULL"
    ).df()
    labels = pd.read_parquet(inputs / "labels" / "signups.parquet").set_index("account_id")
    members["group"] = members["entity_id"].map(labels["group"])
    group_of = members.groupby(["date", "campaign_id"])["group"].agg(
        lambda s: s.value_counts().index[0]
    )
    camps["group"] = [
        group_of[(d, c)] for d, c in zip(camps["date"], camps["campaign_id"], strict=True)
    ]
    # every planted campaign seen on two nights running keeps one id (its accounts are new
    # every night: identity comes from where its centroid is)
    for group in ("dc_burst", "mobile_farm", "resi_proxy"):
        rows = camps[camps["group"] == group].sort_values("date")
        assert rows["date"].nunique() >= 2, group
        first = rows[rows["date"] == rows["date"].min()]["campaign_id"]
        later = rows[rows["date"] > rows["date"].min()]
        assert set(later["campaign_id"]) & set(first), group
        kept = later[later["campaign_id"].isin(set(first))]
        assert (kept["status"] == "continuing").all()
        assert (kept["first_seen"] == rows["date"].min()).all()


def test_a_rerun_gives_the_same_bytes_and_replaces_its_records(
    three_nights: Path, inputs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    shutil.copytree(three_nights, out)
    night = out / "runs" / NIGHTS[1]
    before = _digests(night)
    published = (out / "rules" / "bundle.json").read_bytes()

    def counts() -> list[int]:
        con = duckdb.connect(str(out / "campaigns.duckdb"), read_only=True)
        try:
            return [
                con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                for t in (
                    "runs",
                    "assignments",
                    "campaigns",
                    "campaign_evidence",
                    "rules",
                    "rule_nights",
                )
            ]
        finally:
            con.close()

    rows = counts()
    r = run_nightly(NIGHTS[1], _config(inputs, out))
    assert r.exit_code == 0
    assert _digests(night) == before
    assert counts() == rows
    # a rerun of an earlier night does not publish over a later one
    assert not r.published and "stays published" in r.message
    assert (out / "rules" / "bundle.json").read_bytes() == published


def test_rules_are_promoted_after_nights_within_forecast(inputs: Path, tmp_path: Path) -> None:
    cfg = _config(inputs, tmp_path / "out")
    cfg.lifecycle.promote_after_nights = 1
    cfg.lifecycle.forecast_tolerance = 5.0
    # 2,500 rows a night are too few for the default guard's confidence bounds
    cfg.rules.enforce_background_lower = 0.99
    cfg.rules.max_expected_background = 5.0
    for night in NIGHTS[:2]:
        assert run_nightly(night, cfg).exit_code == 0
    con = duckdb.connect(str(tmp_path / "out" / "campaigns.duckdb"), read_only=True)
    first = con.execute("SELECT rule_id, status FROM rules WHERE date = ?", [NIGHTS[0]]).df()
    assert len(first) and (first["status"] == "shadow").all()  # new rules start in shadow
    audit = con.execute("SELECT * FROM rule_audit WHERE date = ?", [NIGHTS[1]]).df()
    promoted = audit[audit["to_status"] == "enforce"]
    assert len(promoted), "no rule was promoted"
    assert (promoted["actor"] == "nightly-job").all()
    assert promoted["reason"].str.contains("within 5.0x forecast").all()
    published = load_bundle(tmp_path / "out" / "rules" / "bundle.json")
    status = {r["id"]: r["status"] for r in published["rules"]}
    assert all(status.get(rid) == "enforce" for rid in promoted["rule_id"])


def test_a_degraded_night_keeps_the_last_good_bundle(
    inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    cfg = tmp_path / "c.toml"
    cfg.write_text(_toml(inputs, out))
    assert main(["nightly", "--date", NIGHTS[0], "--config", str(cfg)]) == 0
    good = (out / "rules" / "bundle.json").read_bytes()
    # a threshold no night can meet: tonight's features always move a little
    cfg.write_text(_toml(inputs, out, "[health]\nmax_psi = 0.000001\n"))
    capsys.readouterr()
    assert main(["nightly", "--date", NIGHTS[1], "--config", str(cfg)]) == 4
    err = capsys.readouterr().err
    assert "run degraded, bundle not published" in err and "drifted: PSI" in err
    assert (out / "rules" / "bundle.json").read_bytes() == good
    con = duckdb.connect(str(out / "campaigns.duckdb"), read_only=True)
    assert con.execute(
        "SELECT status, published FROM runs WHERE date = ?", [NIGHTS[1]]
    ).fetchone() == (
        "degraded",
        False,
    )
    prom = (out / "metrics" / "campaigns.prom").read_text()
    assert "campaigns_run_degraded 1.0" in prom


def test_bad_dates_and_missing_partitions_exit_2(
    inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(_toml(inputs, tmp_path / "out"))
    assert main(["nightly", "--date", "2026-13-01", "--config", str(cfg)]) == 2
    assert "--date '2026-13-01'" in capsys.readouterr().err
    assert main(["nightly", "--date", "2026-10-01", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "no partition for 2026-10-01" in err and str(inputs / "senders") in err


def test_a_second_run_on_the_same_store_exits_3(
    inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipelines.store import store_lock

    out = tmp_path / "out"
    cfg = tmp_path / "c.toml"
    cfg.write_text(_toml(inputs, out))
    with store_lock(out / "campaigns.duckdb"):
        assert main(["nightly", "--date", NIGHTS[0], "--config", str(cfg)]) == 3
    assert "another run holds the store's lock" in capsys.readouterr().err
    assert not (out / "rules").exists()


def _nightly_process(cfg: Path, night: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "-v",
            "nightly",
            "--date",
            night,
            "--config",
            str(cfg),
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )


def _kill_after(proc: subprocess.Popen[str], marker: str) -> bool:
    """SIGKILL ``proc`` as soon as its log shows ``marker``; False if it ended first."""
    assert proc.stderr is not None
    for line in proc.stderr:
        if marker in line:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(60)
            return True
    proc.wait(60)
    return False


@pytest.mark.parametrize(
    "marker",
    [
        "stage read inputs",  # killed while detecting
        "stage outputs",  # the run folder written, its report and the store not yet
        "stage store",  # the store committed, the bundle not yet published
    ],
)
def test_a_run_killed_at_any_stage_leaves_the_bundle_and_recovers(
    three_nights: Path, inputs: Path, tmp_path: Path, marker: str
) -> None:
    # night 1 published; night 2 is killed with SIGKILL at a stage, then run again
    out = tmp_path / "out"
    cfg = tmp_path / "c.toml"
    cfg.write_text(_toml(inputs, out))
    assert main(["nightly", "--date", NIGHTS[0], "--config", str(cfg)]) == 0
    published = (out / "rules").joinpath("bundle.json").read_bytes()
    sql = (out / "rules" / "signups.sql").read_bytes()
    killed = _kill_after(_nightly_process(cfg, NIGHTS[1]), marker)
    assert killed, f"the run ended before {marker!r}"
    # enforcement still reads a whole bundle with the SQL of that same bundle: the previous
    # one, or (killed after the store commit) tonight's if its publication had completed
    reference = three_nights / "runs" / NIGHTS[1] / "rules"
    now = (out / "rules" / "bundle.json").read_bytes()
    assert load_bundle(out / "rules" / "bundle.json")
    if marker != "stage store" or now == published:
        assert now == published
        assert (out / "rules" / "signups.sql").read_bytes() == sql
    else:
        assert now == (reference / "bundle.json").read_bytes()
        assert (out / "rules" / "signups.sql").read_bytes() == (
            reference / "signups.sql"
        ).read_bytes()
    # the next run needs no repair: no stale lock, the store opens, and the outputs are
    # those of a run that was never interrupted
    proc = _nightly_process(cfg, NIGHTS[1])
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert proc.wait(300) == 0, err[-2000:]
    got, want = _digests(out / "runs" / NIGHTS[1]), _digests(three_nights / "runs" / NIGHTS[1])
    assert sorted(got) == sorted(want)
    differ = [f for f in sorted(want) if got[f] != want[f]]
    if "run.json" in differ:  # name what differs in the record
        a = json.loads((out / "runs" / NIGHTS[1] / "run.json").read_text())
        b = json.loads((three_nights / "runs" / NIGHTS[1] / "run.json").read_text())
        differ += [
            f"run.json:{k}: {a.get(k)!r:.300} != {b.get(k)!r:.300}"
            for k in b
            if a.get(k) != b.get(k)
        ]
    assert differ == []
    assert (out / "rules" / "bundle.json").read_bytes() == (
        three_nights / "runs" / NIGHTS[1] / "rules" / "bundle.json"
    ).read_bytes()
    con = duckdb.connect(str(out / "campaigns.duckdb"), read_only=True)
    runs = con.execute("SELECT date, published FROM runs ORDER BY date").fetchall()
    assert runs == [(NIGHTS[0], True), (NIGHTS[1], True)]
    record = json.loads((out / "runs" / NIGHTS[1] / "run.json").read_text())
    assert record["nightly"]["previous_published"] == NIGHTS[0]
