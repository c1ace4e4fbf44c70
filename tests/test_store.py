"""The nightly store: migrations, replacing a night, and the lock."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from pipelines.store import MIGRATIONS, SCHEMA_VERSION, Store, StoreError, StoreLocked, store_lock


def _run_row(date: str, run_id: str = "run-1") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "date": date,
                "run_id": run_id,
                "status": "ok",
                "published": False,
                "bundle_id": "b" * 64,
                "message": "",
                "record": "{}",
                "health": "{}",
            }
        ]
    )


def _assign(date: str, ids: list[str], campaign: str | None = "c-1") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": date,
            "kind": "signups",
            "entity_id": ids,
            "cluster_id": [0] * len(ids),
            "campaign_id": [campaign] * len(ids),
        }
    )


def test_a_new_store_has_every_migration(tmp_path: Path) -> None:
    with Store(tmp_path / "s.duckdb") as s:
        assert s.schema_version() == SCHEMA_VERSION
        tables = set(s.query("SELECT table_name FROM information_schema.tables")["table_name"])
        assert {"runs", "assignments", "campaigns", "rules", "rule_audit", "labels"} <= tables


def test_an_older_store_opens_in_a_newer_version(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    # a store as version 1 of the code left it, with a night in it
    with Store(path, migrations=MIGRATIONS[:1]) as s:
        s.replace_night("2026-11-01", {"runs": _run_row("2026-11-01")})
    later = [
        *MIGRATIONS,
        (
            SCHEMA_VERSION + 1,
            "a note per run",
            ["ALTER TABLE runs ADD COLUMN note VARCHAR DEFAULT 'none'"],
        ),
    ]
    with Store(path, migrations=later) as s:
        assert s.schema_version() == SCHEMA_VERSION + 1
        row = s.query("SELECT date, run_id, note FROM runs").iloc[0].to_dict()
        assert row == {"date": "2026-11-01", "run_id": "run-1", "note": "none"}
    # and this code refuses the store the newer code left, rather than misread it
    with pytest.raises(StoreError, match="newer than this code knows"):
        Store(path)


def test_replacing_a_night_replaces_rather_than_adds(tmp_path: Path) -> None:
    with Store(tmp_path / "s.duckdb") as s:
        s.replace_night(
            "2026-11-01",
            {"runs": _run_row("2026-11-01"), "assignments": _assign("2026-11-01", ["a", "b"])},
        )
        s.replace_night(
            "2026-11-02",
            {"runs": _run_row("2026-11-02"), "assignments": _assign("2026-11-02", ["c"])},
        )
        s.replace_night(
            "2026-11-01",
            {"runs": _run_row("2026-11-01", "run-2"), "assignments": _assign("2026-11-01", ["a"])},
        )
        runs = s.query("SELECT date, run_id FROM runs ORDER BY date")
        assert runs.values.tolist() == [["2026-11-01", "run-2"], ["2026-11-02", "run-1"]]
        assert s.query("SELECT count(*) AS n FROM assignments")["n"].iloc[0] == 2


def test_a_failed_replacement_leaves_the_night_as_it_was(tmp_path: Path) -> None:
    with Store(tmp_path / "s.duckdb") as s:
        s.replace_night(
            "2026-11-01",
            {"runs": _run_row("2026-11-01"), "assignments": _assign("2026-11-01", ["a", "b"])},
        )
        bad = _assign("2026-11-01", ["x"]).drop(columns="cluster_id")
        with pytest.raises(ValueError, match="columns"):
            s.replace_night(
                "2026-11-01", {"runs": _run_row("2026-11-01", "run-9"), "assignments": bad}
            )
        assert s.query("SELECT run_id FROM runs")["run_id"].tolist() == ["run-1"]
        assert s.query("SELECT count(*) AS n FROM assignments")["n"].iloc[0] == 2


def test_campaigns_before_gives_each_campaigns_latest_members(tmp_path: Path) -> None:
    def camp(date: str, cid: str, size: int) -> dict[str, object]:
        return {
            "date": date,
            "kind": "signups",
            "campaign_id": cid,
            "provisional_id": cid,
            "status": "new",
            "first_seen": "2026-11-01",
            "parent_id": None,
            "merged_from": [],
            "size": size,
            "score": 1.0,
            "flagged": True,
            "reason": "",
            "top_attributes": "",
            "centroid": [0.0, 1.0],
        }

    with Store(tmp_path / "s.duckdb") as s:
        s.replace_night(
            "2026-11-01",
            {
                "campaigns": pd.DataFrame([camp("2026-11-01", "c-1", 2)]),
                "assignments": _assign("2026-11-01", ["a", "b"]),
            },
        )
        s.replace_night(
            "2026-11-02",
            {
                "campaigns": pd.DataFrame([camp("2026-11-02", "c-1", 3)]),
                "assignments": _assign("2026-11-02", ["a", "b", "c"]),
            },
        )
        prev = s.campaigns_before("2026-11-03", "signups", "2026-10-25")
        assert prev["campaign_id"].tolist() == ["c-1"]
        assert prev["last_seen"].tolist() == ["2026-11-02"]
        assert prev["members"].tolist() == [("a", "b", "c")]
        # only nights before the date count: a rerun of 11-02 sees 11-01's state
        assert s.campaigns_before("2026-11-02", "signups", "2026-10-25")["members"].tolist() == [
            ("a", "b")
        ]


def _hold(path: str, ready: mp.synchronize.Event, release: mp.synchronize.Event) -> None:
    with store_lock(path):
        ready.set()
        release.wait(30)


def test_the_lock_stops_a_second_run_and_dies_with_its_holder(tmp_path: Path) -> None:
    path = str(tmp_path / "s.duckdb")
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(path, ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with (
            pytest.raises(StoreLocked, match=r"s\.duckdb\.lock: another run holds"),
            store_lock(path),
        ):
            pass
    finally:
        release.set()
        holder.join(30)
    with store_lock(path):  # released when its holder ended
        pass
    # a holder killed with SIGKILL leaves no stale lock behind
    code = (
        "import time\nfrom pipelines.store import store_lock\n"
        f"with store_lock({path!r}):\n    print('held', flush=True)\n    time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(StoreLocked):
            with store_lock(path):
                pass
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        time.sleep(0.1)
        with store_lock(path):
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
