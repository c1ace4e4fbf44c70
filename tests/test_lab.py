"""The lab: reading a run folder (pipelines/lab.py), comparing detectors
(anomaly/detector_lab.py) and `campaigns lab` (pipelines/cli_lab.py), which starts a real
JupyterLab here."""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from anomaly.detector_lab import (
    compare_detectors,
    confusion_at,
    detector_scores,
    ensemble_name,
    roc_pr_curves,
    threshold_for_fpr,
)
from clustering.entities import entity_keys
from pipelines import cli_lab, lab
from pipelines.demo import run_demo
from pipelines.job import RunResult
from pipelines.store import Store

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    out = tmp_path_factory.mktemp("lab") / "demo-out"
    result, _ = run_demo(out, signups_per_day=2000, messages_per_day=2000)
    return result


def _fake_run(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "run.json").write_text("{}\n")
    return folder


# --------------------------------------------------------------------------------------------
# Finding the run


def test_latest_run_takes_a_run_folder_or_a_nightly_out_dirs_latest_night(tmp_path: Path) -> None:
    run = _fake_run(tmp_path / "one")
    assert lab.latest_run(run) == run
    out = tmp_path / "out"
    _fake_run(out / "runs" / "2026-11-01")
    latest = _fake_run(out / "runs" / "2026-11-02")
    (out / "runs" / "2026-11-03").mkdir()  # a night still being written: no run.json yet
    _fake_run(out / "runs" / "notes")
    assert lab.latest_run(out) == latest
    with pytest.raises(lab.LabError, match="no such folder"):
        lab.latest_run(tmp_path / "missing")
    with pytest.raises(lab.LabError, match="not a run folder"):
        lab.latest_run(tmp_path)
    (tmp_path / "empty" / "runs").mkdir(parents=True)
    with pytest.raises(lab.LabError, match="no night's run folder"):
        lab.latest_run(tmp_path / "empty")


def test_the_store_gives_its_latest_published_night(tmp_path: Path) -> None:
    out = tmp_path / "out"
    store = out / "campaigns.duckdb"
    with Store(store) as s:
        for date, published in (("2026-11-01", True), ("2026-11-02", True), ("2026-11-03", False)):
            s.con.execute(
                "INSERT INTO runs (date, run_id, status, published) VALUES (?, ?, ?, ?)",
                [date, f"run-{date}", "ok" if published else "degraded", published],
            )
    with pytest.raises(lab.LabError, match="2026-11-02 has no run folder"):
        lab.run_from_store(store)
    for date in ("2026-11-01", "2026-11-02", "2026-11-03"):
        _fake_run(out / "runs" / date)
    assert lab.run_from_store(store) == out / "runs" / "2026-11-02"
    assert lab.latest_run(store) == out / "runs" / "2026-11-02"  # a file is a store
    assert cli_lab.resolve(store=str(store)) == (out / "runs" / "2026-11-02").resolve()
    # the latest run folder, published or not
    assert cli_lab.resolve(run=str(out)) == (out / "runs" / "2026-11-03").resolve()
    with pytest.raises(lab.LabError, match="not both"):
        cli_lab.resolve(run=str(out), store=str(store))
    with pytest.raises(lab.LabError, match="no such store"):
        lab.run_from_store(tmp_path / "nope.duckdb")
    with Store(tmp_path / "fresh.duckdb"):
        pass
    with pytest.raises(lab.LabError, match="no published night"):
        lab.run_from_store(tmp_path / "fresh.duckdb")


def test_the_default_run_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert lab.default_run_dir(tmp_path / "notebooks") == tmp_path / "demo-out"
    assert lab.default_run_dir(tmp_path) == tmp_path / "demo-out"
    monkeypatch.chdir(tmp_path)
    assert cli_lab.resolve() == (tmp_path / "demo-out").resolve()  # made by the notebooks
    run = _fake_run(tmp_path / "elsewhere")
    monkeypatch.setenv(lab.ENV_VAR, str(run))
    assert lab.resolve_run() == run
    monkeypatch.setenv(lab.ENV_VAR, str(tmp_path / "not-yet"))
    with pytest.raises(lab.LabError, match="no such run folder"):
        lab.resolve_run(make_demo=False)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file.txt").write_text("x")
    with pytest.raises(lab.LabError, match="not a run folder"):
        lab.resolve_run(tmp_path / "junk")


def test_cli_lab_fails_with_exit_2_naming_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="campaigns")
    cli_lab.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["lab", "--run", str(tmp_path / "missing"), "--no-browser"])
    assert args.port == cli_lab.DEFAULT_PORT and args.no_browser
    assert cli_lab.run(args) == 2
    assert "no such folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["lab", "--run", "a", "--store", "b"])
    cmd = cli_lab.jupyter_command(tmp_path, 9999, "tok", open_browser=False)
    assert cmd[:3] == [sys.executable, "-m", "jupyterlab"] and "--no-browser" in cmd
    assert "--ServerApp.token=tok" in cmd and "--ServerApp.port_retries=0" in cmd


# --------------------------------------------------------------------------------------------
# Reading a run


def test_run_features_are_the_matrix_the_job_clustered(demo: RunResult) -> None:
    run = lab.load_run(demo.out_dir)
    assert run.run_id == demo.run_id and run.kinds == ["senders", "signups"]
    assert {"record", "campaigns", "assignments", "bundle", "report"} <= set(run.paths)
    for kind in run.kinds:
        f = lab.run_features(run, kind)
        job = demo.kinds[kind]
        np.testing.assert_array_equal(f.X, job.features)
        assert list(f.entity_ids) == list(job.entities.index.astype(str))
        np.testing.assert_array_equal(f.labels, job.labels)
        assert lab.flagged_clusters(run, kind) == set(
            job.campaigns.loc[job.campaigns["flagged"], "cluster_id"].astype(int)
        )


def test_relative_input_paths_are_found_from_the_run_folders_parent(
    demo: RunResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = lab.load_run(demo.out_dir)
    path = Path(run.record["inputs"]["signups"]["path"])
    rel = path.relative_to(demo.out_dir.parent)  # as `campaigns demo --out demo-out` records
    run.record["inputs"]["signups"]["path"] = str(rel)
    monkeypatch.chdir(REPO)
    assert run.input_path("signups") == demo.out_dir.parent / rel
    run.record["inputs"]["signups"]["path"] = "gone/2026-11-01.parquet"
    with pytest.raises(lab.LabError, match="not there any more"):
        run.input_path("signups")
    with pytest.raises(lab.LabError, match="read no 'logins'"):
        run.input_path("logins")


def test_ranking_and_the_top_campaigns_detail(demo: RunResult) -> None:
    run = lab.load_run(demo.out_dir)
    ranked = lab.rank_campaigns(run)
    assert len(ranked) == run.campaigns["campaign_id"].nunique()
    flagged = ranked["flagged"].to_numpy()
    assert flagged[0] and not (np.diff(flagged.astype(int)) > 0).any()  # flagged first
    scored = ranked[ranked["flagged"] & ranked["score"].notna()]["score"].to_numpy()
    assert (np.diff(scored) <= 0).all()
    assert ranked["rules"].sum() == sum(
        r["campaign_id"] in set(ranked["campaign_id"]) for r in run.bundle["rules"]
    )
    top = ranked.iloc[0]
    d = lab.campaign_detail(run, top["campaign_id"])
    assert d.kind == top["kind"] and d.summary["flagged"]
    assert len(d.members) == top["members"] == d.summary["members"]
    assert set(d.members["campaign_id"]) == {top["campaign_id"]}
    # every member event is on the timeline, which spans the whole night
    events = run.events(d.kind)
    keys = entity_keys(d.kind, events).astype(str)
    assert d.timeline.sum() == int(keys.isin(set(d.members["entity_id"])).sum())
    assert len(d.timeline) >= 20 and (d.timeline >= 0).all()
    assert d.shared["share"].is_monotonic_decreasing and d.shared["share"].iloc[0] > 0.5
    assert set(d.top_attributes["attribute"]) <= set(d.shared["attribute"])
    assert d.scores.loc["entities", "campaign"] == len(d.members)
    assert set(d.rules["campaign_id"]) <= {top["campaign_id"]}
    assert list(d.backtest["rule_id"]) == list(d.rules["rule_id"])
    if len(d.backtest):
        assert ((d.backtest["precision"] >= 0) & (d.backtest["precision"] <= 1)).all()
    with pytest.raises(lab.LabError, match="no campaign"):
        lab.campaign_detail(run, "si-nope")


def test_detector_lab_on_the_demos_labels(demo: RunResult) -> None:
    run = lab.load_run(demo.out_dir)
    data = lab.labelled_behaviour("signups", run)
    assert "demo's labels" in data.source
    entities = demo.kinds["signups"].entities
    assert len(data.X) == len(entities) and not data.X.isna().any().any()
    assert 0.05 < data.y.mean() < 0.4
    assert set(np.unique(data.label)) == {"benign", "campaign", "lookalike"}
    assert ((data.label == "campaign") == (data.y == 1)).all()

    scores = detector_scores(data.X, random_state=0)
    assert list(scores) == ["ecod", "copod", "hbos", "iforest", ensemble_name()]
    table = compare_detectors(data.X, data.y, scores=scores, target_fpr=0.02)
    assert set(table.index) == set(scores)
    assert table["average_precision"].is_monotonic_decreasing
    assert (table["roc_auc"] > 0.6).all()  # behaviour alone separates planted campaigns
    assert (table["fpr"] < 0.03).all()
    # the job's ensemble: the same scores as anomaly.scoring gives the job
    np.testing.assert_allclose(scores[ensemble_name()], demo.kinds["signups"].entity_scores)

    s = scores[ensemble_name()]
    thr = threshold_for_fpr(s[data.y == 0], 0.05)
    c = confusion_at(data.y, s, thr)
    assert c["tp"] + c["fn"] == data.y.sum() and c["fp"] + c["tn"] == (data.y == 0).sum()
    assert abs(c["fpr"] - 0.05) < 0.01
    curves = roc_pr_curves(data.y, s)
    assert curves["roc"][0][0] == 0 and curves["roc"][1][-1] == 1
    with pytest.raises(ValueError):
        threshold_for_fpr(s, 1.5)
    fresh = lab.labelled_behaviour("senders", None, signups_per_day=600, messages_per_day=600)
    assert "generated" in fresh.source and len(fresh.X) == len(fresh.y)


def test_compare_detectors_fits_when_no_scores_are_given() -> None:
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(size=(300, 3)), rng.normal(6, 1, size=(15, 3))])
    y = np.r_[np.zeros(300), np.ones(15)]
    table = compare_detectors(X, y, detectors=("hbos", "iforest"), ensemble=None)
    assert list(table.columns[:2]) == ["roc_auc", "average_precision"]
    assert (table["roc_auc"] > 0.95).all()
    assert isinstance(table, pd.DataFrame)


# --------------------------------------------------------------------------------------------
# `campaigns lab`, for real


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, None


def test_campaigns_lab_starts_jupyterlab_on_the_notebooks(
    demo: RunResult, tmp_path: Path, record_property: Any
) -> None:
    port = _free_port()
    env = dict(os.environ)
    env.pop(lab.ENV_VAR, None)
    env.pop("DISPLAY", None)  # --no-browser is given anyway
    # keep the server's runtime files and config away from the user's
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    env["JUPYTER_CONFIG_DIR"] = str(tmp_path / "config")
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    started = time.monotonic()
    with stdout.open("w") as out, stderr.open("w") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipelines.cli_lab",
                "--run",
                str(demo.out_dir),
                "--port",
                str(port),
                "--no-browser",
            ],
            stdout=out,
            stderr=err,
            env=env,
            cwd=tmp_path,
        )
    try:
        deadline = started + 40
        token = None
        status: tuple[int, Any] = (0, None)
        while time.monotonic() < deadline:
            assert proc.poll() is None, stderr.read_text()[-3000:]
            if token is None:
                for line in stdout.read_text().splitlines():
                    if f"http://127.0.0.1:{port}/lab" in line and "token=" in line:
                        token = line.rsplit("token=", 1)[1].strip()
            if token is not None:
                try:
                    status = _get(f"http://127.0.0.1:{port}/api/status?token={token}")
                except (urllib.error.URLError, OSError):
                    status = (0, None)
                if status[0] == 200:
                    break
            time.sleep(0.5)
        seconds = time.monotonic() - started
        record_property("jupyterlab_start_seconds", round(seconds, 1))
        log.info("JupyterLab answered /api/status after %.1fs", seconds)
        assert token, f"no URL with a token printed: {stdout.read_text()!r}"
        assert status[0] == 200, f"no answer in 40 s: {stderr.read_text()[-3000:]}"
        assert "started" in status[1]
        # the token is required, the root is notebooks/, and the run is in the environment
        assert _get(f"http://127.0.0.1:{port}/api/status")[0] == 403
        code, listing = _get(f"http://127.0.0.1:{port}/api/contents?token={token}")
        assert code == 200
        names = {c["name"] for c in listing["content"]}
        assert {"campaign_explorer.ipynb", "detector_lab.ipynb"} <= names
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
        assert f"{lab.ENV_VAR}={demo.out_dir.resolve()}".encode() in environ
        assert f"run {demo.out_dir.resolve()}" in stdout.read_text()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
