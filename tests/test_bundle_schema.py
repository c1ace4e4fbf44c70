"""Bundle schema v1: the shipped JSON Schema, rule lifecycle fields, content hashes, old bundles."""

from __future__ import annotations

import copy
import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import jsonschema
import pandas as pd
import pytest

from anomaly.export import (
    apply_bundle,
    build_bundle,
    bundle_id_of,
    bundle_schema,
    bundle_to_sql,
    canonical_json,
    load_bundle,
    validate_bundle_schema,
)
from anomaly.rules import STATUSES, Rule, RuleError, rule_content_hash
from clustering.attributes import ensure_columns

COND = {"op": "in", "attr": "email_domain", "values": ["spam.example", "junk.example"]}
BACKTEST = {
    "population": 1000,
    "hits": 40,
    "precision": 1.0,
    "precision_lower": 0.91,
    "recall": 0.95,
}


def rid(name: str) -> str:
    return "r-" + hashlib.sha256(name.encode()).hexdigest()[:12]


def _rule(name: str = "a", **kw: Any) -> Rule:
    base: dict[str, Any] = {
        "id": rid(name),
        "version": 1,
        "kind": "signups",
        "campaign_id": "su-1",
        "title": f"rule {name}",
        "condition": copy.deepcopy(COND),
        "backtest": dict(BACKTEST),
        "provenance": {"run_id": "run-1", "code_version": "0.1.0", "parameters": {}},
    }
    base.update(kw)
    return Rule(**base)


def _bundle(rules: list[Rule], **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "run_id": "run-1",
        "created_at": "2024-05-02T00:00:00+00:00",
        "code_version": "0.1.0",
        "parameters": {},
    }
    args.update(kw)
    return build_bundle(rules, **args)


def _signups() -> pd.DataFrame:
    n = 30
    return pd.DataFrame(
        {
            "account_id": [f"a{i:02d}" for i in range(n)],
            "created_at": pd.Timestamp("2024-05-01", tz="UTC"),
            "email": [f"u{i}@{'spam' if i % 2 else 'mail'}.example" for i in range(n)],
            "ip": [f"10.0.0.{i}" for i in range(n)],
        }
    )


def _write(path: Path, doc: dict[str, Any], *, reseal: bool = True) -> Path:
    if reseal:
        doc["bundle_id"] = bundle_id_of(doc)
    path.write_bytes(canonical_json(doc))
    return path


# --------------------------------------------------------------------------- the schema file


def test_schema_ships_with_the_package_and_is_valid() -> None:
    text = resources.files("anomaly").joinpath("schemas/bundle-v1.schema.json").read_text()
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert bundle_schema() == schema
    rule = schema["$defs"]["rule"]
    assert set(rule["required"]) == set(rule["properties"])  # every field described
    assert rule["properties"]["status"]["enum"] == list(STATUSES)
    assert set(schema["$defs"]["backtest"]["required"]) == {
        "population",
        "hits",
        "precision",
        "precision_lower",
        "recall",
        "expected_hits_per_day",
    }
    assert set(schema["$defs"]["provenance"]["required"]) == {
        "run_id",
        "code_version",
        "parameters",
        "inducer",
    }


def test_built_bundle_is_valid_for_any_json_schema_validator() -> None:
    bundle = _bundle([_rule("a"), _rule("b", status="enforce"), _rule("c", status="canary")])
    jsonschema.validate(bundle, bundle_schema(), cls=jsonschema.Draft202012Validator)
    validate_bundle_schema(bundle)
    rule = bundle["rules"][0]
    assert rule["content_hash"] == rule_content_hash(rule)
    assert rule["backtest"]["expected_hits_per_day"] == 40  # filled as hits
    assert rule["provenance"]["inducer"] == "unknown"
    assert rule["parent_version"] is None and rule["allowlists_applied"] == []


def test_build_fills_missing_provenance_from_the_bundle() -> None:
    bundle = _bundle([_rule(provenance={})], run_id="run-9", code_version="9.9")
    prov = bundle["rules"][0]["provenance"]
    assert prov == {
        "run_id": "run-9",
        "code_version": "9.9",
        "parameters": {},
        "inducer": "unknown",
    }


def test_build_refuses_missing_backtest_figure_with_path() -> None:
    backtest = {k: v for k, v in BACKTEST.items() if k != "precision_lower"}
    with pytest.raises(
        RuleError, match=r"\$\.rules\[0\]\.backtest: 'precision_lower' is a required"
    ):
        _bundle([_rule(backtest=backtest)])


def test_build_refuses_an_id_outside_the_pattern() -> None:
    with pytest.raises(RuleError, match=r"\$\.rules\[0\]\.id: 'rule-1' does not match"):
        _bundle([_rule(id="rule-1")])


# --------------------------------------------------------------------------- load rejects


def _valid_doc() -> dict[str, Any]:
    doc = _bundle([_rule("x", status="enforce"), _rule("y")])
    assert [r["status"] for r in doc["rules"]] == ["enforce", "shadow"]  # rules sorted by id
    return doc


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (
            lambda d: d["rules"][1]["backtest"].pop("expected_hits_per_day"),
            r"\$\.rules\[1\]\.backtest: 'expected_hits_per_day' is a required property",
        ),
        (
            lambda d: d["rules"][0]["provenance"].pop("inducer"),
            r"\$\.rules\[0\]\.provenance: 'inducer' is a required property",
        ),
        (lambda d: d["rules"][0].update(status="paused"), r"\$\.rules\[0\]\.status: 'paused'"),
        (
            lambda d: d["rules"][0].update(mode="shadow"),
            r"\$\.rules\[0\]\.mode: .*mode is 'enforce' exactly when status is 'enforce'",
        ),
        (lambda d: d["rules"][1].update(status="enforce"), r"\$\.rules\[1\]\.mode"),
        (lambda d: d["rules"][0].update(content_hash="abc"), r"\$\.rules\[0\]\.content_hash"),
        (lambda d: d["rules"][0].pop("parent_version"), r"\$\.rules\[0\]: 'parent_version'"),
        (lambda d: d["rules"][0].update(severity="high"), r"\$\.rules\[0\]: Additional prop"),
        (lambda d: d.update(extra=1), r"\$: Additional properties"),
        (lambda d: d["allowlists"].pop("senders"), r"\$\.allowlists: 'senders' is a required"),
        (lambda d: d["rules"][0]["backtest"].update(precision=1.5), r"precision: 1\.5"),
    ],
)
def test_load_refuses_schema_violations_naming_the_path(
    tmp_path: Path, mutate: Any, needle: str
) -> None:
    doc = _valid_doc()
    mutate(doc)
    with pytest.raises(RuleError, match=needle) as err:
        load_bundle(_write(tmp_path / "b.json", doc))
    assert str(tmp_path / "b.json") in str(err.value)


def test_load_refuses_a_stale_content_hash(tmp_path: Path) -> None:
    doc = _valid_doc()
    doc["rules"][0]["action"] = "review"  # hash no longer matches; bundle resealed
    with pytest.raises(RuleError, match=rf"{doc['rules'][0]['id']}.*content_hash"):
        load_bundle(_write(tmp_path / "b.json", doc))


def test_load_refuses_wrong_allowlists_applied(tmp_path: Path) -> None:
    doc = _valid_doc()
    doc["rules"][0]["allowlists_applied"] = ["domains"]
    with pytest.raises(RuleError, match="allowlists_applied"):
        load_bundle(_write(tmp_path / "b.json", doc))


def test_load_refuses_nan(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text(canonical_json(_valid_doc()).decode().replace('"hits": 40', '"hits": NaN'))
    with pytest.raises(RuleError, match="cannot read"):
        load_bundle(path)


# --------------------------------------------------------------------------- Rule fields


def test_mode_and_status_follow_each_other() -> None:
    assert (_rule().mode, _rule().status) == ("shadow", "shadow")
    assert _rule(mode="enforce").status == "enforce"
    assert _rule(status="enforce").mode == "enforce"
    assert _rule(status="canary").mode == "shadow"
    rule = _rule()
    rule.set_status("enforce")
    assert (rule.mode, rule.status) == ("enforce", "enforce")
    rule.validate()
    with pytest.raises(RuleError, match="status"):
        rule.set_status("paused")


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"mode": "enforce", "status": "shadow"}, "disagrees"),
        ({"mode": "shadow", "status": "enforce"}, "disagrees"),
        ({"status": "paused"}, "status"),
        ({"parent_version": 1}, "parent_version"),  # must be below version
        ({"content_hash": "0" * 64}, "content_hash"),
        ({"allowlists_applied": "domains"}, "allowlists_applied"),
    ],
)
def test_rule_validate_new_fields(kw: dict[str, Any], needle: str) -> None:
    with pytest.raises(RuleError, match=needle):
        _rule(**kw).validate()


def test_content_hash_is_what_the_rule_matches_and_does() -> None:
    a = _rule("a")
    same = _rule("b", title="other", backtest={**BACKTEST, "hits": 1}, version=3, status="canary")
    assert rule_content_hash(a) == rule_content_hash(same) == rule_content_hash(a.to_dict())
    reordered = _rule("a", condition=dict(reversed(list(COND.items()))))
    assert rule_content_hash(reordered) == rule_content_hash(a)
    assert rule_content_hash(_rule(action="review")) != rule_content_hash(a)
    narrower = _rule(condition={**COND, "values": ["spam.example"]})
    assert rule_content_hash(narrower) != rule_content_hash(a)
    _rule(content_hash=rule_content_hash(a), version=2, parent_version=1).validate()


def test_old_style_rule_dicts_still_load() -> None:
    old = {
        "id": rid("old"),
        "version": 1,
        "kind": "signups",
        "campaign_id": "su-1",
        "title": "t",
        "condition": COND,
        "action": "block",
        "mode": "enforce",
        "created_at": "",
        "expires_at": "",
        "backtest": {},
        "provenance": {},
        "sql": "ignored",
    }
    rule = Rule.from_dict(old)
    assert (rule.status, rule.mode, rule.parent_version, rule.content_hash) == (
        "enforce",
        "enforce",
        None,
        "",
    )
    assert rule.allowlists_applied == []
    rule.validate()
    assert Rule.from_dict({**old, "mode": "shadow"}).status == "shadow"


def test_bundle_written_before_schema_v1_fields_still_loads(tmp_path: Path) -> None:
    """A bundle as the first version of write_rules wrote it: no allowlists, no status."""
    new = _bundle([_rule("x", status="enforce"), _rule("y")])
    legacy = copy.deepcopy(new)
    del legacy["allowlists"], legacy["bundle_id"]
    for r in legacy["rules"]:
        for key in ("status", "parent_version", "content_hash", "allowlists_applied"):
            del r[key]
        del r["backtest"]["expected_hits_per_day"], r["provenance"]["inducer"]
    path = _write(tmp_path / "bundle.json", legacy)
    loaded = load_bundle(path)
    assert loaded["bundle_id"] == legacy["bundle_id"]  # the id on disk
    assert [r["status"] for r in loaded["rules"]] == ["enforce", "shadow"]
    assert loaded["rules"] == new["rules"]
    assert loaded["allowlists"] == {"signups": [], "senders": []}
    df = _signups()
    assert apply_bundle(loaded, df, "signups").equals(apply_bundle(new, df, "signups"))
    legacy["rules"][0]["mode"] = "shadow"  # edited without resealing: still refused
    with pytest.raises(RuleError, match="bundle_id"):
        load_bundle(_write(tmp_path / "edited.json", legacy, reseal=False))


# --------------------------------------------------------------------------- statuses applied


def test_each_status_in_sql_and_python() -> None:
    rules = [_rule(s, status=s) for s in STATUSES]
    bundle = _bundle(rules)
    df = _signups()
    py = apply_bundle(bundle, df, "signups")
    con = duckdb.connect()
    con.register("signups", ensure_columns(df, "signups"))
    sql = con.execute(bundle_to_sql(bundle, "signups")).df()
    con.close()
    rows = [tuple(map(str, r)) for r in py.itertuples(index=False)]
    assert rows == [tuple(map(str, r)) for r in sql.itertuples(index=False)]
    action = dict(zip(py["rule_id"], py["action"], strict=False))
    assert action == {rid("enforce"): "block", rid("shadow"): "shadow", rid("canary"): "shadow"}
    assert py.groupby("rule_id").size().tolist() == [15, 15, 15]  # disabled, expired: nothing
