"""Bundle: SQL in DuckDB returns exactly apply_bundle's rows; canonical, atomic, validated."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

import anomaly.atomic as atomic
import anomaly.export as export
from anomaly.atomic import atomic_write_bytes, atomic_write_parquet, atomic_write_text
from anomaly.export import (
    BUNDLE_SCHEMA_VERSION,
    allowlist_entries,
    apply_bundle,
    build_bundle,
    bundle_id_of,
    bundle_to_sql,
    canonical_json,
    load_bundle,
    write_rules,
)
from anomaly.rules import Rule, RuleError, regex_escape
from clustering.attributes import ensure_columns

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/119.0.6045.105 Safari/537.36"
)


def _signups(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    domains = np.array(["mail.example", "Fresh-Domain.xyz", "o'hara.ie", "back\\slash.io", "ü.de"])
    return pd.DataFrame(
        {
            "account_id": [f"acc-{i:04d}" for i in range(n)][::-1],  # not sorted on input
            "created_at": pd.Timestamp("2024-05-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"),
            "email": [
                f"{'user' if i % 3 else 'John.Smith'}{1900 + i % 120}@{domains[i % 5]}"
                for i in range(n)
            ],
            "ip": [
                f"203.0.{113 + i % 3}.{i % 250}" if i % 4 else f"2001:db8:{i % 7:x}::{i:x}"
                for i in range(n)
            ],
            "username": pd.Series([None if i % 5 else f"u{i}%_" for i in range(n)], dtype="string"),
            "user_agent": pd.Series(
                [CHROME if i % 2 else "curl/8.1.0" for i in range(n)], dtype="string"
            ),
            "captcha_score": rng.random(n).round(3),
            "ip_asn": pd.array([64500 + i % 4 if i % 9 else None for i in range(n)], dtype="Int64"),
        }
    )


def _senders(n: int = 200) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "message_id": [f"m{i:03d}" for i in range(n)],
            "sent_at": pd.Timestamp("2024-05-01", tz="UTC")
            + pd.to_timedelta(np.arange(n), unit="min"),
            "sender": [f"promo{i % 50}@Bulk{i % 3}.example" for i in range(n)],
            "sender_ip": [f"198.51.100.{i % 200}" for i in range(n)],
            "subject": pd.Series(
                [f"Your invoice #{i} is READY" if i % 2 else None for i in range(n)], dtype="string"
            ),
            "body": pd.Series(
                [f"go to http://Pay{i % 4}.example/x" for i in range(n)], dtype="string"
            ),
            "recipient_count": pd.array([i % 60 for i in range(n)], dtype="Int64"),
            "bounced": pd.array([bool(i % 3) for i in range(n)], dtype="boolean"),
        }
    )


def rid(name: str) -> str:
    """A bundle rule id (``r-`` and 12 hex digits) for a readable test name."""
    return "r-" + hashlib.sha256(name.encode()).hexdigest()[:12]


BACKTEST = {"population": 400, "hits": 12, "precision": 1.0, "precision_lower": 0.76, "recall": 0.9}


def _rule(name: str, cond: dict[str, Any], kind: str = "signups", **kw: Any) -> Rule:
    kw.setdefault("backtest", dict(BACKTEST))
    return Rule(
        id=rid(name),
        version=1,
        kind=kind,
        campaign_id=f"c-{name}",
        title=f'title of {name}: it\'s "quoted" -- not SQL',
        condition=cond,
        **kw,
    )


def _rules() -> list[Rule]:
    return [
        _rule(
            "r-domain",
            {"op": "in", "attr": "email_domain", "values": ["o'hara.ie", "back\\slash.io"]},
            mode="enforce",
        ),
        _rule(
            "r-shape",
            {
                "op": "and",
                "args": [
                    {"op": "eq", "attr": "username_shape", "value": "a9999"},
                    {"op": "range", "attr": "captcha_score", "min": None, "max": 0.5},
                ],
            },
            mode="enforce",
            action="review",
        ),
        _rule(
            "r-net",
            {
                "op": "or",
                "args": [
                    {"op": "cidr", "attr": "ip", "value": "203.0.114.0/24"},
                    {"op": "cidr", "attr": "ip", "value": "2001:db8:3::/48"},
                ],
            },
        ),
        _rule(
            "r-ua",
            {
                "op": "and",
                "args": [
                    {"op": "eq", "attr": "ua_family", "value": "curl"},
                    {"op": "prefix", "attr": "ua_build", "value": "curl/8"},
                ],
            },
            mode="enforce",
        ),
        _rule(
            "r-regex",
            {"op": "regex", "attr": "username", "pattern": "u[0-9]+" + regex_escape("%_")},
        ),
        _rule("r-asn", {"op": "in", "attr": "ip_asn", "values": [64501, 64503]}, mode="enforce"),
        _rule(
            "s-subject",
            {"op": "eq", "attr": "subject_skeleton", "value": "your invoice ## is ready"},
            kind="senders",
            mode="enforce",
        ),
        _rule(
            "s-url",
            {
                "op": "and",
                "args": [
                    {"op": "in", "attr": "url_domain", "values": ["pay1.example", "pay2.example"]},
                    {"op": "range", "attr": "recipient_count", "min": 10, "max": 40},
                ],
            },
            kind="senders",
        ),
        _rule(
            "s-bounce",
            {"op": "eq", "attr": "bounced", "value": False},
            kind="senders",
            mode="enforce",
        ),
    ]


def _bundle(rules: list[Rule] | None = None, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "run_id": "run-1",
        "created_at": "2024-05-02T00:00:00+00:00",
        "code_version": "0.1.0",
        "parameters": {"min_cluster_size": 50, "note": "ünïcode"},
    }
    args.update(kw)
    return build_bundle(_rules() if rules is None else rules, **args)


def _run_sql(sql: str, kind: str, df: pd.DataFrame) -> pd.DataFrame:
    con = duckdb.connect()
    try:
        con.register(kind, ensure_columns(df, kind))
        return con.execute(sql).df()
    finally:
        con.close()


def _rows(df: pd.DataFrame) -> list[tuple[str, ...]]:
    return [tuple(str(v) for v in row) for row in df.itertuples(index=False)]


# --------------------------------------------------------------------------- SQL == Python


@pytest.mark.parametrize("kind", ["signups", "senders"])
def test_sql_returns_exactly_apply_bundle_rows(kind: str) -> None:
    df = _signups() if kind == "signups" else _senders()
    bundle = _bundle()
    py = apply_bundle(bundle, df, kind)
    sql = _run_sql(bundle_to_sql(bundle, kind), kind, df)
    assert list(sql.columns) == list(py.columns)
    assert _rows(sql) == _rows(py)
    # the test is only worth something if rules match, in both modes
    assert set(py["action"]) >= {"shadow"} and len(set(py["rule_id"])) >= 3
    assert py["action"].isin(["block", "review", "shadow"]).all()


def test_sql_ignores_session_time_zone_and_column_order() -> None:
    df = _signups()
    bundle = _bundle(
        [_rule("r-hour", {"op": "range", "attr": "hour", "min": 3, "max": 7}, mode="enforce")]
    )
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Kolkata'")
    con.register("signups", ensure_columns(df, "signups").iloc[:, ::-1])
    sql = con.execute(bundle_to_sql(bundle, "signups")).df()
    py = apply_bundle(bundle, df, "signups")
    assert len(py) > 0 and _rows(sql) == _rows(py)


def test_shadow_rules_report_action_shadow() -> None:
    df = _signups()
    cond = {"op": "eq", "attr": "email_domain", "value": "mail.example"}
    enforce = _bundle([_rule("r-x", cond, mode="enforce", action="block")])
    shadow = _bundle([_rule("r-x", cond, mode="shadow", action="block")])
    a, b = apply_bundle(enforce, df, "signups"), apply_bundle(shadow, df, "signups")
    assert len(a) == len(b) > 0
    assert set(a["action"]) == {"block"} and set(b["action"]) == {"shadow"}


def test_no_rules_gives_valid_empty_sql() -> None:
    bundle = _bundle([])
    for kind, df in (("signups", _signups()), ("senders", _senders())):
        sql = _run_sql(bundle_to_sql(bundle, kind), kind, df)
        assert len(sql) == 0
        assert list(sql.columns) == list(apply_bundle(bundle, df, kind).columns)
        assert len(apply_bundle(bundle, df, kind)) == 0


def test_as_of_drops_expired_rules_in_both_forms() -> None:
    cond = {"op": "eq", "attr": "ua_family", "value": "curl"}
    rules = [
        _rule("r-old", cond, mode="enforce", expires_at="2024-05-01T00:00:00+00:00"),
        _rule("r-new", cond, mode="enforce", expires_at="2024-06-01T00:00:00"),
        _rule("r-forever", cond, mode="enforce"),
    ]
    bundle, df = _bundle(rules), _signups()
    as_of = datetime(2024, 5, 15, tzinfo=UTC)
    py = apply_bundle(bundle, df, "signups", as_of=as_of)
    assert set(py["rule_id"]) == {rid("r-new"), rid("r-forever")}
    assert _rows(_run_sql(bundle_to_sql(bundle, "signups", as_of=as_of), "signups", df)) == _rows(
        py
    )
    assert set(apply_bundle(bundle, df, "signups")["rule_id"]) == {
        rid("r-old"),
        rid("r-new"),
        rid("r-forever"),
    }


def test_written_sql_file_runs_as_is(tmp_path: Path) -> None:
    bundle = _bundle()
    paths = write_rules(tmp_path, bundle)
    for kind, df in (("signups", _signups()), ("senders", _senders())):
        sql = paths[kind].read_text(encoding="utf-8")
        assert _rows(_run_sql(sql, kind, df)) == _rows(apply_bundle(bundle, df, kind))


def test_apply_bundle_refuses_a_different_attribute_definition() -> None:
    bundle = _bundle()
    bundle["attributes"]["signups"]["email_domain"]["sql"] = "'x'"
    with pytest.raises(RuleError, match="email_domain"):
        apply_bundle(bundle, _signups(), "signups")


# --------------------------------------------------------------------------- bundle content


def test_bundle_layout() -> None:
    bundle = _bundle()
    assert bundle["schema_version"] == BUNDLE_SCHEMA_VERSION == 1
    assert [r["id"] for r in bundle["rules"]] == sorted(r.id for r in _rules())
    assert all(r["sql"].startswith(("COALESCE(", "(")) for r in bundle["rules"])
    assert set(bundle["attributes"]) == {"signups", "senders"}
    assert set(bundle["attributes"]["senders"]) == {
        "subject_skeleton",
        "url_domain",
        "recipient_count",
        "bounced",
    }
    for definition in bundle["attributes"]["signups"].values():
        assert set(definition) == {"dtype", "sql", "description"}
    assert bundle["bundle_id"] == bundle_id_of(bundle)
    assert {"run_id", "created_at", "code_version", "parameters"} <= set(bundle)


def test_duplicate_and_invalid_rules_are_refused() -> None:
    cond = {"op": "eq", "attr": "email_domain", "value": "x"}
    with pytest.raises(RuleError, match="duplicate"):
        _bundle([_rule("r-1", cond), _rule("r-1", cond)])
    with pytest.raises(RuleError, match=rf"{rid('r-bad')}.*ghost"):
        _bundle([_rule("r-bad", {"op": "eq", "attr": "ghost", "value": "x"})])


def test_canonical_bytes_are_deterministic(tmp_path: Path) -> None:
    rules = _rules()
    shuffled = [Rule.from_dict(json.loads(json.dumps(r.to_dict()))) for r in reversed(rules)]
    for r in shuffled:  # same content, other key order
        r.condition = dict(reversed(list(r.condition.items())))
    a, b = _bundle(rules), _bundle(shuffled)
    assert canonical_json(a) == canonical_json(b)
    assert a["bundle_id"] == b["bundle_id"]
    write_rules(tmp_path / "one", a)
    write_rules(tmp_path / "two", b)
    for name in ("bundle.json", "signups.sql", "senders.sql"):
        assert (tmp_path / "one/rules" / name).read_bytes() == (
            tmp_path / "two/rules" / name
        ).read_bytes()
    raw = (tmp_path / "one/rules/bundle.json").read_bytes()
    assert raw == canonical_json(a) and raw.endswith(b"}\n")
    assert "ünïcode".encode() in raw  # UTF-8, not \\u escapes
    assert (
        raw
        == json.dumps(json.loads(raw), sort_keys=True, indent=2, ensure_ascii=False).encode()
        + b"\n"
    )
    assert _bundle(rules, run_id="run-2")["bundle_id"] != a["bundle_id"]


def test_canonical_json_refuses_nan() -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


# --------------------------------------------------------------------------- load_bundle


def test_load_round_trip(tmp_path: Path) -> None:
    bundle = _bundle()
    paths = write_rules(tmp_path, bundle)
    assert load_bundle(paths["bundle"]) == bundle


def _write_raw(path: Path, doc: dict[str, Any]) -> Path:
    path.write_bytes(canonical_json(doc))
    return path


def _resealed(doc: dict[str, Any]) -> dict[str, Any]:
    doc["bundle_id"] = bundle_id_of(doc)
    return doc


def test_load_names_rule_and_unknown_attribute(tmp_path: Path) -> None:
    doc = _bundle()
    doc["rules"][0]["condition"] = {"op": "eq", "attr": "mystery_attr", "value": "x"}
    with pytest.raises(RuleError) as err:
        load_bundle(_write_raw(tmp_path / "b.json", _resealed(doc)))
    assert doc["rules"][0]["id"] in str(err.value) and "mystery_attr" in str(err.value)


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d.update(schema_version=2), "schema_version 2"),
        (lambda d: d.pop("rules"), "missing key"),
        (lambda d: d["rules"][0].update(sql="TRUE"), "'sql' does not match"),
        (lambda d: d["rules"][0].update(mode="yolo"), "mode"),
        (lambda d: d["rules"].append(dict(d["rules"][0])), "duplicate"),
        (lambda d: d["attributes"]["signups"].pop("email_domain"), "no definition"),
        (
            lambda d: d["rules"][1]["condition"].update(op="like"),
            r"\$\.rules\[1\]\.condition\.op: 'like' is not one of",
        ),
    ],
)
def test_load_refuses_bad_bundles(tmp_path: Path, mutate: Any, needle: str) -> None:
    doc = _bundle()
    mutate(doc)
    with pytest.raises(RuleError, match=needle):
        load_bundle(_write_raw(tmp_path / "b.json", _resealed(doc)))


def test_load_refuses_an_edited_bundle(tmp_path: Path) -> None:
    doc = _bundle()
    doc["rules"][-1]["mode"] = "enforce" if doc["rules"][-1]["mode"] == "shadow" else "shadow"
    with pytest.raises(RuleError, match="bundle_id"):
        load_bundle(_write_raw(tmp_path / "b.json", doc))  # not resealed


def test_load_refuses_broken_json(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_bytes(b'{"schema_version": 1,')
    with pytest.raises(RuleError, match="cannot read"):
        load_bundle(path)


# --------------------------------------------------------------------------- atomic writes


def _no_temp_files(directory: Path) -> bool:
    return not [p for p in directory.iterdir() if p.name.endswith(".tmp")]


def test_failed_rename_keeps_previous_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = _bundle()
    paths = write_rules(tmp_path, old)
    before = {k: p.read_bytes() for k, p in paths.items()}
    new = _bundle(_rules()[:2], run_id="run-2")

    real_replace = os.replace
    calls = {"n": 0}

    def flaky_replace(src: Any, dst: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky_replace)
    with pytest.raises(OSError, match="disk full"):
        write_rules(tmp_path, new)
    monkeypatch.setattr(os, "replace", real_replace)
    assert {k: p.read_bytes() for k, p in paths.items()} == before
    assert load_bundle(paths["bundle"]) == old
    assert _no_temp_files(tmp_path / "rules")


def test_failed_serialisation_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = write_rules(tmp_path, _bundle())
    before = {k: p.read_bytes() for k, p in paths.items()}

    def boom(obj: Any) -> bytes:
        raise TypeError("not serialisable")

    monkeypatch.setattr(export, "canonical_json", boom)
    with pytest.raises(TypeError):
        write_rules(tmp_path, _bundle(run_id="run-3"))
    assert {k: p.read_bytes() for k, p in paths.items()} == before
    assert _no_temp_files(tmp_path / "rules")


def test_failed_staging_midway_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = write_rules(tmp_path, _bundle())
    before = {k: p.read_bytes() for k, p in paths.items()}
    real_fsync, calls = os.fsync, {"n": 0}

    def flaky_fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the second temporary file
            raise OSError("I/O error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", flaky_fsync)
    with pytest.raises(OSError, match="I/O error"):
        write_rules(tmp_path, _bundle(run_id="run-4"))
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert {k: p.read_bytes() for k, p in paths.items()} == before
    assert _no_temp_files(tmp_path / "rules")


def test_atomic_write_helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "sub" / "f.txt"
    atomic_write_text(target, "héllo\n")
    assert target.read_bytes() == "héllo\n".encode()
    assert stat.S_IMODE(target.stat().st_mode) != 0o600  # not mkstemp's private mode

    def fail(src: Any, dst: Any) -> None:
        raise OSError("nope")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == "héllo\n".encode()
    assert _no_temp_files(target.parent)

    df = pd.DataFrame({"a": [1, 2], "b": ["x", None]})
    pq = atomic_write_parquet(df, tmp_path / "t.parquet", index=False)
    assert pd.read_parquet(pq).astype(object).equals(df.astype(object))

    class Unwritable(pd.DataFrame):
        def to_parquet(self, *a: Any, **k: Any) -> None:  # type: ignore[override]
            raise ValueError("bad frame")

    with pytest.raises(ValueError):
        atomic_write_parquet(Unwritable(df), pq)
    assert pd.read_parquet(pq).shape == (2, 2)
    assert _no_temp_files(tmp_path)
    assert atomic._UMASK >= 0


# --------------------------------------------------------------------------- allowlists


def _tricky_signups() -> pd.DataFrame:
    """_signups plus rows whose allowlisted values are near misses or missing."""
    df = _signups()
    extra = pd.DataFrame(
        {
            "account_id": ["acc-0007 ", "ACC-0008", "acc-x'1", "acc-x\\2"],
            "created_at": pd.Timestamp("2024-05-01 03:00", tz="UTC"),
            "email": ["a@O'HARA.IE", "b@o'hara.ie.evil", "c@back\\slash.io", "d@ü.de"],
            "ip": ["203.0.114.7", "203.0.115.300", "2001:db8:3::1", None],
            "username": pd.Series([None, "u1%_", None, None], dtype="string"),
            "user_agent": pd.Series(["curl/8.1.0"] * 4, dtype="string"),
            "captcha_score": [0.1, 0.2, 0.3, float("nan")],
            "ip_asn": pd.array([64501, None, 64503, 64502], dtype="Int64"),
        }
    )
    return pd.concat([df, extra], ignore_index=True)


SIGNUP_ALLOW = {
    "signups": allowlist_entries(
        "signups",
        domains=["O'Hara.ie", "@ü.de"],
        asns=[64503],
        prefixes=["203.0.114.0/25", "2001:db8:3::1/128"],
        ids=["acc-0100", "acc-x'1", "acc-x\\2"],
    ),
    "senders": allowlist_entries("senders", domains=["bulk1.example"], ids=["m007"]),
}


def test_allowlist_entries_shape() -> None:
    entries = SIGNUP_ALLOW["signups"]
    assert [e["name"] for e in entries] == ["asns", "domains", "ids", "prefixes"]
    by_name = {e["name"]: e for e in entries}
    assert by_name["domains"]["condition"] == {
        "op": "in",
        "attr": "email_domain",
        "values": ["o'hara.ie", "ü.de"],  # ASCII lower-cased, as the attribute holds them
    }
    assert by_name["prefixes"]["condition"]["op"] == "or"
    assert allowlist_entries("senders", prefixes=["198.51.100.9/24"])[0]["condition"] == {
        "op": "cidr",
        "attr": "sender_ip",
        "value": "198.51.100.0/24",
    }
    assert allowlist_entries("signups") == []
    with pytest.raises(RuleError, match="ASN"):
        allowlist_entries("senders", asns=[1])
    with pytest.raises(RuleError, match="CIDR"):
        allowlist_entries("signups", prefixes=["10.0.0.0/99"])


@pytest.mark.parametrize("kind", ["signups", "senders"])
def test_allowlisted_rows_match_no_rule_sql_equals_python(kind: str) -> None:
    df = _tricky_signups() if kind == "signups" else _senders()
    plain, allowed = _bundle(), _bundle(allowlists=SIGNUP_ALLOW)
    before = apply_bundle(plain, df, kind)
    after = apply_bundle(allowed, df, kind)
    assert _rows(_run_sql(bundle_to_sql(allowed, kind), kind, df)) == _rows(after)
    assert 0 < len(after) < len(before)
    # exactly the rows no allowlist entry matches survive
    exempt = set(before.iloc[:, 0]) - set(after.iloc[:, 0])
    kept = before[~before.iloc[:, 0].isin(exempt)].reset_index(drop=True)
    assert _rows(kept) == _rows(after)
    for rule in allowed["rules"]:
        names = [e["name"] for e in allowed["allowlists"][rule["kind"]]]
        assert rule["allowlists_applied"] == names


def test_allowlisted_id_domain_asn_cidr_never_match() -> None:
    df = _tricky_signups()
    ids = set(apply_bundle(_bundle(allowlists=SIGNUP_ALLOW), df, "signups")["account_id"])
    attrs = df.set_index("account_id")
    domain = attrs["email"].str.rsplit("@", n=1).str[1].str.lower()
    assert not ids & {"acc-0100", "acc-x'1", "acc-x\\2"}
    assert not ids & set(domain[domain.isin(["o'hara.ie", "ü.de"])].index)
    assert not ids & set(attrs.index[attrs["ip_asn"].eq(64503).fillna(False).to_numpy()])
    blocks = [ipaddress.ip_network("203.0.114.0/25"), ipaddress.ip_network("2001:db8:3::1/128")]

    def allowed_ip(ip: Any) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in b for b in blocks)

    in_blocks = set(attrs.index[[allowed_ip(ip) for ip in attrs["ip"].fillna("")]])
    assert len(in_blocks) > 10 and not ids & in_blocks
    assert "ACC-0008" in ids or "acc-0007 " in ids  # near misses are not exempt


def test_unknown_allowlist_attribute_is_named() -> None:
    bad = {
        "signups": [
            {"name": "vip", "condition": {"op": "eq", "attr": "tier", "value": "x"}, "reason": ""}
        ]
    }
    with pytest.raises(RuleError, match=r"allowlist signups/'vip'.*tier"):
        _bundle(allowlists=bad)
    with pytest.raises(RuleError, match="duplicate"):
        _bundle(allowlists={"signups": SIGNUP_ALLOW["signups"] * 2})
    # entries of a kind this process does not know cannot be checked (an empty list is fine)
    with pytest.raises(RuleError, match="unknown kind"):
        _bundle(allowlists={"no_such_kind": SIGNUP_ALLOW["signups"]})
    assert "no_such_kind" in _bundle(allowlists={"no_such_kind": []})["allowlists"]


def test_load_refuses_unknown_allowlist_attribute(tmp_path: Path) -> None:
    doc = _bundle(allowlists=SIGNUP_ALLOW)
    doc["allowlists"]["senders"][0]["condition"]["attr"] = "shoe_size"
    with pytest.raises(RuleError, match=r"allowlist senders/'domains'.*shoe_size"):
        load_bundle(_write_raw(tmp_path / "b.json", _resealed(doc)))


def test_allowlist_round_trip_and_layout(tmp_path: Path) -> None:
    bundle = _bundle(allowlists=SIGNUP_ALLOW)
    assert set(bundle["allowlists"]) == {"signups", "senders"}
    assert {"account_id", "ip", "ip_asn", "email_domain"} <= set(bundle["attributes"]["signups"])
    assert "message_id" in bundle["attributes"]["senders"]
    assert load_bundle(write_rules(tmp_path, bundle)["bundle"]) == bundle
    assert _bundle()["allowlists"] == {"signups": [], "senders": []}
