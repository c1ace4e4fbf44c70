"""The `campaigns` command line: exit codes, messages naming the problem, atomic outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from anomaly.export import apply_bundle, bundle_id_of, load_bundle
from anomaly.rules import condition_to_sql
from clustering.attributes import ensure_columns
from pipelines.cli import main
from pipelines.job import OUTPUT_FILES
from pipelines.readers import read_events
from pipelines.synthetic import generate, write_synthetic


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    data = generate(days=2, seed=3, signups_per_day=6000, messages_per_day=12000)
    return write_synthetic(data, tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def run_dir(small, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    code = main(
        [
            "-q",
            "run",
            "--signups",
            str(small["signups"][0]),
            "--senders",
            str(small["senders"][0]),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    return out


def test_console_script_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert "demo" in proc.stdout and "rules" in proc.stdout


def test_run_writes_every_output(run_dir: Path) -> None:
    for rel in OUTPUT_FILES:
        assert (run_dir / rel).is_file(), rel


@pytest.mark.parametrize("kind", ["signups", "senders"])
def test_rules_apply_equals_sql(run_dir: Path, small, tmp_path: Path, kind: str) -> None:
    out = tmp_path / "matches.parquet"
    day2 = small[kind][1]
    assert (
        main(
            [
                "-q",
                "rules",
                "apply",
                "--bundle",
                str(run_dir / "rules/bundle.json"),
                f"--{kind}",
                str(day2),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    got = pd.read_parquet(out)
    id_col = "account_id" if kind == "signups" else "message_id"
    assert list(got.columns) == [id_col, "rule_id", "action"]
    con = duckdb.connect()
    con.register(kind, ensure_columns(read_events(day2, kind).frame, kind))
    sql = con.execute((run_dir / "rules" / f"{kind}.sql").read_text()).df()
    key = [id_col, "rule_id", "action"]
    pd.testing.assert_frame_equal(
        got[key].astype(str).sort_values(key).reset_index(drop=True),
        sql[key].astype(str).sort_values(key).reset_index(drop=True),
    )


def _bad_csv(tmp_path: Path, small, mutate) -> Path:
    frame = pd.read_parquet(small["signups"][0]).head(200)
    frame = mutate(frame)
    path = tmp_path / "signups.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda f: f.drop(columns=["email"]), ["signups.csv", "'email'"]),
        (
            lambda f: f.assign(
                created_at=f["created_at"].astype(str).where(f.index != 17, "yesterday")
            ),
            ["signups.csv", "row 18", "'created_at'"],
        ),
        (
            lambda f: f.assign(
                account_id=f["account_id"].where(f.index != 5, f["account_id"].iloc[2])
            ),
            ["signups.csv", "row 6", "'account_id'", "duplicate"],
        ),
        (lambda f: f.head(0), ["signups.csv", "no rows"]),
    ],
    ids=["missing-column", "bad-timestamp", "duplicate-id", "empty"],
)
def test_bad_input_exits_2_naming_file_row_column(
    tmp_path: Path, small, capsys, mutate, expected: list[str]
) -> None:
    path = _bad_csv(tmp_path, small, mutate)
    code = main(["-q", "run", "--signups", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    for part in expected:
        assert part in err, (part, err)
    assert not (tmp_path / "out" / "rules" / "bundle.json").exists()


def test_failed_run_leaves_previous_bundle_intact(run_dir: Path, tmp_path: Path, small) -> None:
    before = (run_dir / "rules" / "bundle.json").read_bytes()
    bad = _bad_csv(tmp_path, small, lambda f: f.drop(columns=["ip"]))
    assert main(["-q", "run", "--signups", str(bad), "--out", str(run_dir)]) == 2
    assert (run_dir / "rules" / "bundle.json").read_bytes() == before
    assert not [p for p in (run_dir / "rules").iterdir() if p.name.startswith(".")]


def test_quarantine_keeps_good_rows_and_counts_bad_ones(tmp_path: Path, small) -> None:
    frame = pd.read_parquet(small["signups"][0])
    frame["created_at"] = frame["created_at"].astype(str)
    frame.loc[[3, 9], "created_at"] = "not a time"
    path = tmp_path / "s.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "out"
    assert main(["-q", "run", "--signups", str(path), "--out", str(out), "--quarantine"]) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["inputs"]["signups"]["rows_rejected"] == 2
    q = pd.read_parquet(out / "quarantine" / "signups.parquet")
    assert len(q) == 2 and set(q["_column"]) == {"created_at"}


def test_usage_errors_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["run", "--out", str(tmp_path)]) == 2
    assert "--signups" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["run"])  # argparse: --out missing
    assert e.value.code == 2
    assert main(["-q", "run", "--signups", str(tmp_path / "nope.csv"), "--out", str(tmp_path)]) == 2


def test_bad_config_exits_2(tmp_path: Path, small, capsys) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[signups]\nmin_clustr_size = 3\n")
    code = main(
        [
            "-q",
            "run",
            "--signups",
            str(small["signups"][0]),
            "--out",
            str(tmp_path / "o"),
            "--config",
            str(cfg),
        ]
    )
    assert code == 2
    assert "min_clustr_size" in capsys.readouterr().err


def test_bundle_with_unknown_attribute_exits_2(
    run_dir: Path, small, tmp_path: Path, capsys
) -> None:
    bundle = json.loads((run_dir / "rules" / "bundle.json").read_text())
    bundle["rules"] = bundle["rules"][:1]
    cond = {"op": "eq", "attr": "shoe_size", "value": 3}
    bundle["rules"][0]["condition"] = cond
    bundle["rules"][0]["sql"] = condition_to_sql(cond)
    bundle["bundle_id"] = bundle_id_of(bundle)  # a well-formed bundle, but a bad attribute
    bad = tmp_path / "bundle.json"
    bad.write_text(json.dumps(bundle))
    code = main(
        [
            "-q",
            "rules",
            "apply",
            "--bundle",
            str(bad),
            "--signups",
            str(small["signups"][1]),
            "--out",
            str(tmp_path / "m.parquet"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "shoe_size" in err and bundle["rules"][0]["id"] in err
    assert not (tmp_path / "m.parquet").exists()
    assert load_bundle(run_dir / "rules" / "bundle.json")["rules"]


def test_minimal_columns_and_tiny_inputs_run(tmp_path: Path, small) -> None:
    """Only the required columns, or a handful of rows: a run, not a crash."""
    s = pd.read_parquet(small["signups"][0])
    m = pd.read_parquet(small["senders"][0])
    s[["account_id", "created_at", "email", "ip"]].to_parquet(tmp_path / "s.parquet")
    m[["message_id", "sent_at", "sender"]].to_parquet(tmp_path / "m.parquet")
    assert (
        main(
            [
                "-q",
                "run",
                "--signups",
                str(tmp_path / "s.parquet"),
                "--senders",
                str(tmp_path / "m.parquet"),
                "--out",
                str(tmp_path / "o1"),
            ]
        )
        == 0
    )
    load_bundle(tmp_path / "o1" / "rules" / "bundle.json")
    s.head(12).to_parquet(tmp_path / "tiny.parquet")
    assert (
        main(
            [
                "-q",
                "run",
                "--signups",
                str(tmp_path / "tiny.parquet"),
                "--out",
                str(tmp_path / "o2"),
            ]
        )
        == 0
    )
    record = json.loads((tmp_path / "o2" / "run.json").read_text())
    assert record["counts"]["signups"]["rules"] == 0


def test_rerun_in_place_keeps_bundle_and_versions(run_dir: Path, small) -> None:
    """The same inputs again, into the same folder: the same bundle bytes, versions kept."""
    before = (run_dir / "rules" / "bundle.json").read_bytes()
    assert (
        main(
            [
                "-q",
                "run",
                "--signups",
                str(small["signups"][0]),
                "--senders",
                str(small["senders"][0]),
                "--out",
                str(run_dir),
            ]
        )
        == 0
    )
    assert (run_dir / "rules" / "bundle.json").read_bytes() == before
    assert all(r["version"] == 1 for r in json.loads(before)["rules"])


def test_history_backtest_is_recorded(small, tmp_path: Path) -> None:
    """Rules learned on day 2 are backtested on day 1, and every rule says what it hit there."""
    out = tmp_path / "o"
    assert (
        main(
            [
                "-q",
                "run",
                "--signups",
                str(small["signups"][1]),
                "--history-signups",
                str(small["signups"][0]),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    bundle = load_bundle(out / "rules" / "bundle.json")
    day1 = len(pd.read_parquet(small["signups"][0]))
    assert bundle["rules"]
    for rule in bundle["rules"]:
        (earlier,) = rule["backtest"]["earlier_days"]
        assert earlier["rows"] == day1 and 0 <= earlier["hits"] <= day1
    record = json.loads((out / "run.json").read_text())
    assert record["history"]["signups"][0]["rows_read"] == day1


def test_configured_allowlists_bind_every_rule(small, tmp_path: Path) -> None:
    frame = read_events(small["signups"][0], "signups").frame
    out = tmp_path / "o"
    # first without allowlist: find rows that some enforce rule blocks
    assert main(["-q", "run", "--signups", str(small["signups"][0]), "--out", str(out)]) == 0
    hits = apply_bundle(load_bundle(out / "rules" / "bundle.json"), frame, "signups")
    blocked = sorted(set(hits["account_id"].astype(str)))[:3]
    assert blocked, "no rule blocked anything on the small data"
    cfg = tmp_path / "c.toml"
    cfg.write_text("[allowlists.signups]\nids = [" + ", ".join(f'"{b}"' for b in blocked) + "]\n")
    out2 = tmp_path / "o2"
    assert (
        main(
            [
                "-q",
                "run",
                "--signups",
                str(small["signups"][0]),
                "--out",
                str(out2),
                "--config",
                str(cfg),
            ]
        )
        == 0
    )
    bundle = load_bundle(out2 / "rules" / "bundle.json")
    assert [e["name"] for e in bundle["allowlists"]["signups"]] == ["ids"]
    assert all("ids" in r["allowlists_applied"] for r in bundle["rules"] if r["kind"] == "signups")
    again = apply_bundle(bundle, frame, "signups")
    assert not set(again["account_id"].astype(str)) & set(blocked)
