"""Bundle history: diff (added, removed, changed, widened, narrowed), archive and rollback."""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from anomaly.bundle_history import carry_versions, diff_bundles, list_history, rollback
from anomaly.export import HISTORY_DIR, build_bundle, canonical_json, load_bundle, write_rules
from anomaly.rules import Rule, RuleError, rule_content_hash
from pipelines.cli import main

BACKTEST = {
    "population": 1000,
    "hits": 40,
    "precision": 1.0,
    "precision_lower": 0.91,
    "recall": 0.95,
}
DOMAINS = {"op": "in", "attr": "email_domain", "values": ["a.example", "b.example"]}
CAPTCHA = {"op": "range", "attr": "captcha_score", "min": 0.0, "max": 0.3}
UA = {"op": "prefix", "attr": "ua_build", "value": "Chrome/119.0"}
NET = {"op": "cidr", "attr": "ip", "value": "203.0.113.0/25"}


def rid(name: str) -> str:
    return "r-" + hashlib.sha256(name.encode()).hexdigest()[:12]


def _rule(name: str, condition: dict[str, Any], **kw: Any) -> Rule:
    base: dict[str, Any] = {
        "id": rid(name),
        "version": 1,
        "kind": "signups",
        "campaign_id": f"su-{name}",
        "title": f"rule {name}",
        "condition": copy.deepcopy(condition),
        "expires_at": "2024-05-09T00:00:00+00:00",
        "backtest": dict(BACKTEST),
    }
    base.update(kw)
    return Rule(**base)


def _bundle(rules: list[Rule], run_id: str = "run-1", **kw: Any) -> dict[str, Any]:
    return build_bundle(
        rules,
        run_id=run_id,
        created_at=kw.pop("created_at", "2024-05-02T00:00:00+00:00"),
        code_version="0.1.0",
        parameters={},
        **kw,
    )


def _one(old: Rule, new: Rule) -> dict[str, Any]:
    """The diff of a bundle holding ``old`` against one holding ``new`` (same id)."""
    return diff_bundles(_bundle([old]), _bundle([new], run_id="run-2"))


# --------------------------------------------------------------------------- diff


def test_added_removed_unchanged() -> None:
    keep, gone, new = _rule("keep", DOMAINS), _rule("gone", UA), _rule("new", NET, status="enforce")
    moved = _rule("keep", DOMAINS, title="renamed", version=2, parent_version=1)
    moved.backtest["hits"] = 7
    d = diff_bundles(_bundle([keep, gone]), _bundle([moved, new], run_id="run-2"))
    assert [e["id"] for e in d["added"]] == [rid("new")]
    assert [e["id"] for e in d["removed"]] == [rid("gone")]
    assert d["changed"] == [] and d["unchanged"] == 1  # title, figures, version: not changes
    added = d["added"][0]
    assert added["campaign_id"] == "su-new" and added["kind"] == "signups"
    assert "enforce" in added["summary"] and "203.0.113.0/25" in added["summary"]


@pytest.mark.parametrize(
    ("old", "new", "change"),
    [
        (DOMAINS, {**DOMAINS, "values": ["a.example", "b.example", "c.example"]}, "widened"),
        (DOMAINS, {**DOMAINS, "values": ["b.example"]}, "narrowed"),
        (DOMAINS, {"op": "eq", "attr": "email_domain", "value": "a.example"}, "narrowed"),
        (DOMAINS, {**DOMAINS, "values": ["a.example", "z.example"]}, "changed"),
        (CAPTCHA, {**CAPTCHA, "max": 0.5}, "widened"),
        (CAPTCHA, {**CAPTCHA, "min": None}, "widened"),
        (CAPTCHA, {**CAPTCHA, "min": 0.1}, "narrowed"),
        (CAPTCHA, {**CAPTCHA, "min": 0.1, "max": 0.6}, "changed"),
        (UA, {**UA, "value": "Chrome/119"}, "widened"),
        (UA, {**UA, "value": "Chrome/119.0.6045"}, "narrowed"),
        (NET, {**NET, "value": "203.0.112.0/23"}, "widened"),
        (NET, {**NET, "value": "203.0.113.0/26"}, "narrowed"),
        (NET, {**NET, "value": "2001:db8::/32"}, "changed"),
        (
            {"op": "and", "args": [DOMAINS, CAPTCHA, UA]},
            {"op": "and", "args": [UA, DOMAINS]},
            "widened",
        ),
        (
            {"op": "and", "args": [DOMAINS, UA]},
            {"op": "and", "args": [DOMAINS, UA, NET]},
            "narrowed",
        ),
        (DOMAINS, {"op": "and", "args": [DOMAINS, CAPTCHA]}, "narrowed"),
        (DOMAINS, {"op": "or", "args": [DOMAINS, NET]}, "widened"),
        (
            {"op": "and", "args": [DOMAINS, CAPTCHA]},
            {"op": "and", "args": [{**DOMAINS, "values": ["b.example"]}, {**CAPTCHA, "max": 0.9}]},
            "changed",  # one conjunct narrower, the other wider: no proof either way
        ),
        (
            {"op": "regex", "attr": "username", "pattern": "[a-z]+[0-9]{4}"},
            {"op": "regex", "attr": "username", "pattern": "[a-z]+[0-9]{2,4}"},
            "changed",  # regex containment is not decided
        ),
    ],
)
def test_condition_changes(old: dict[str, Any], new: dict[str, Any], change: str) -> None:
    d = _one(_rule("r", old), _rule("r", new))
    assert [e["id"] for e in d["changed"]] == [rid("r")]
    entry = d["changed"][0]
    assert entry["change"] == change and "condition" in entry["fields"]
    assert [e["id"] for e in d["widened"]] == ([rid("r")] if change == "widened" else [])
    assert [e["id"] for e in d["narrowed"]] == ([rid("r")] if change == "narrowed" else [])
    assert entry["summary"].startswith(change)


def test_reordered_condition_is_not_a_change() -> None:
    reordered = {"op": "and", "args": [UA, DOMAINS]}
    d = _one(_rule("r", {"op": "and", "args": [DOMAINS, UA]}), _rule("r", reordered))
    entry = d["changed"][0]  # another content hash, so listed, but neither wider nor narrower
    assert entry["change"] == "changed" and "same matches" in entry["summary"]
    same_values = {**DOMAINS, "values": ["b.example", "a.example"]}
    entry = _one(_rule("r", DOMAINS), _rule("r", same_values))["changed"][0]
    assert entry["change"] == "changed" and "same matches" in entry["summary"]


@pytest.mark.parametrize(
    ("old", "new", "change"),
    [
        ("shadow", "enforce", "widened"),
        ("shadow", "canary", "widened"),
        ("canary", "enforce", "widened"),
        ("enforce", "shadow", "narrowed"),
        ("enforce", "disabled", "narrowed"),
        ("shadow", "expired", "narrowed"),
        ("disabled", "expired", "changed"),
    ],
)
def test_status_changes(old: str, new: str, change: str) -> None:
    d = _one(_rule("r", DOMAINS, status=old), _rule("r", DOMAINS, status=new))
    entry = d["changed"][0]
    assert (entry["change"], entry["fields"]) == (change, ["status"])
    assert (entry["old_status"], entry["new_status"]) == (old, new)
    assert f"status {old} -> {new}" in entry["summary"]


def test_other_changes_are_only_changed() -> None:
    wider = {**DOMAINS, "values": ["a.example", "b.example", "c.example"]}
    cases = [
        (_rule("r", DOMAINS), _rule("r", DOMAINS, action="review"), ["action"]),
        (_rule("r", DOMAINS), _rule("r", DOMAINS, expires_at="2024-06-01T00:00:00+00:00"), None),
        (_rule("r", DOMAINS, status="enforce"), _rule("r", wider, status="shadow"), None),
    ]
    for old, new, fields in cases:
        entry = _one(old, new)["changed"][0]
        assert entry["change"] == "changed", entry
        if fields:
            assert entry["fields"] == fields
    # a widened condition promoted to enforce is widened on both counts
    entry = _one(_rule("r", DOMAINS), _rule("r", wider, status="enforce"))["changed"][0]
    assert entry["change"] == "widened" and entry["fields"] == ["condition", "status"]


def test_allowlist_changes_are_listed() -> None:
    allow = {"signups": [{"name": "vip", "condition": NET, "reason": "office"}]}
    d = diff_bundles(
        _bundle([_rule("r", DOMAINS)]), _bundle([_rule("r", DOMAINS)], allowlists=allow)
    )
    assert d["allowlists"]["signups"] == {"added": ["vip"], "removed": [], "changed": []}
    assert d["changed"] == []  # allowlists_applied is not a change of the rule itself


def test_carry_versions() -> None:
    previous = _bundle([_rule("same", DOMAINS, version=2, parent_version=1), _rule("edit", UA)])
    edited = _rule("edit", {**UA, "value": "Chrome/12"})
    out = carry_versions(
        [_rule("same", DOMAINS, status="enforce"), edited, _rule("new", NET)], previous
    )
    assert [(r.version, r.parent_version) for r in out] == [(2, 1), (2, 1), (1, None)]
    assert edited.version == 1  # copies, not the rules given
    _bundle(out)  # still a valid bundle
    assert out[1].content_hash in ("", rule_content_hash(edited))


# --------------------------------------------------------------------------- archive, rollback


@pytest.fixture
def published(tmp_path: Path) -> dict[str, Any]:
    """Bundle A published, then bundle B over it."""
    a = _bundle([_rule("a", DOMAINS, status="enforce"), _rule("b", UA)])
    narrower = _rule("a", {**DOMAINS, "values": ["a.example"]}, status="enforce")
    b = _bundle([narrower], run_id="run-2", created_at="2024-05-03T00:00:00+00:00")
    first = write_rules(tmp_path, a)
    files_a = {k: p.read_bytes() for k, p in first.items()}
    second = write_rules(tmp_path, b)
    return {
        "dir": tmp_path / "rules",
        "a": a,
        "b": b,
        "files_a": files_a,
        "paths_a": first,
        "paths": second,
    }


def _published_bytes(rules_dir: Path) -> dict[str, bytes]:
    return {
        "bundle": (rules_dir / "bundle.json").read_bytes(),
        "signups": (rules_dir / "signups.sql").read_bytes(),
        "senders": (rules_dir / "senders.sql").read_bytes(),
    }


def test_write_rules_archives_the_bundle_it_replaces(published: dict[str, Any]) -> None:
    rules_dir, a, b = published["dir"], published["a"], published["b"]
    archived = rules_dir / HISTORY_DIR / f"{a['bundle_id']}.json"
    assert published["paths"]["archived"] == archived
    assert archived.read_bytes() == canonical_json(a) == published["files_a"]["bundle"]
    again = write_rules(rules_dir.parent, b)  # the same bundle: nothing new to keep
    assert "archived" not in again
    assert sorted(p.name for p in (rules_dir / HISTORY_DIR).iterdir()) == [archived.name]
    history = list_history(rules_dir)
    assert [(h["bundle_id"], h["rules"], h["by_status"]) for h in history] == [
        (a["bundle_id"], 2, {"enforce": 1, "shadow": 1})
    ]
    assert history[0]["created_at"] == a["created_at"] and history[0]["by_kind"] == {"signups": 2}


def test_rollback_round_trip(published: dict[str, Any]) -> None:
    rules_dir, a, b = published["dir"], published["a"], published["b"]
    result = rollback(rules_dir, a["bundle_id"])
    # every published file (bundle, SQL, CEL, Rspamd) as A had them
    again = {k: p.read_bytes() for k, p in published["paths_a"].items()}
    assert again == published["files_a"]
    assert (result["bundle_id"], result["previous"]) == (a["bundle_id"], b["bundle_id"])
    assert load_bundle(rules_dir / "bundle.json") == a
    history = {h["bundle_id"] for h in list_history(rules_dir)}
    assert history == {a["bundle_id"], b["bundle_id"]}
    assert (rules_dir / HISTORY_DIR / f"{b['bundle_id']}.json").read_bytes() == canonical_json(b)
    # forward again by prefix, through the run folder; then a no-op
    rollback(rules_dir.parent, b["bundle_id"][:10])
    assert load_bundle(rules_dir / "bundle.json") == b
    assert rollback(rules_dir, b["bundle_id"])["archived"] is None
    # and to a bundle file anywhere
    rollback(rules_dir, rules_dir / HISTORY_DIR / f"{a['bundle_id']}.json")
    assert (rules_dir / "bundle.json").read_bytes() == canonical_json(a)


def test_rollback_to_unknown_or_broken_bundle(published: dict[str, Any], tmp_path: Path) -> None:
    rules_dir = published["dir"]
    before = _published_bytes(rules_dir)
    with pytest.raises(RuleError, match="no bundle 'f00f00f00f'"):
        rollback(rules_dir, "f00f00f00f")
    broken = rules_dir / HISTORY_DIR / f"{'e' * 64}.json"
    broken.write_text(json.dumps({"schema_version": 1}))
    with pytest.raises(RuleError, match="missing key"):
        rollback(rules_dir, "e" * 64)
    with pytest.raises(RuleError, match="no such rules folder"):
        rollback(tmp_path / "nowhere", "abc")
    assert _published_bytes(rules_dir) == before
    assert list_history(rules_dir)[-1]["error"]


def test_failed_rollback_leaves_the_published_bundle(
    published: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    rules_dir = published["dir"]
    before = _published_bytes(rules_dir)
    history_before = sorted(p.name for p in (rules_dir / HISTORY_DIR).iterdir())
    real_replace, calls = os.replace, {"n": 0}

    def flaky_replace(src: Any, dst: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # archive and signups.sql done; senders.sql fails
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky_replace)
    with pytest.raises(OSError, match="disk full"):
        rollback(rules_dir, published["a"]["bundle_id"])
    monkeypatch.setattr(os, "replace", real_replace)
    assert _published_bytes(rules_dir) == before
    assert load_bundle(rules_dir / "bundle.json") == published["b"]
    assert sorted(p.name for p in (rules_dir / HISTORY_DIR).iterdir()) == history_before
    assert not [p for p in rules_dir.rglob("*.tmp")]


# --------------------------------------------------------------------------- CLI


def test_cli_diff(published: dict[str, Any], tmp_path: Path, capsys) -> None:
    old = published["dir"] / HISTORY_DIR / f"{published['a']['bundle_id']}.json"
    new = published["dir"] / "bundle.json"
    assert main(["-q", "rules", "diff", str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "1 removed, 1 changed (0 widened, 1 narrowed)" in out
    assert f"< {rid('a')}" in out and f"- {rid('b')}" in out
    assert main(["-q", "rules", "diff", str(old), str(new), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [e["id"] for e in d["narrowed"]] == [rid("a")]
    missing = tmp_path / "missing.json"
    assert main(["-q", "rules", "diff", str(old), str(missing)]) == 2
    assert "missing.json" in capsys.readouterr().err
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{")
    assert main(["-q", "rules", "diff", str(garbage), str(new)]) == 2
    assert "garbage.json" in capsys.readouterr().err


def test_cli_rollback(published: dict[str, Any], tmp_path: Path, capsys) -> None:
    rules_dir, a = published["dir"], published["a"]
    assert main(["-q", "rules", "rollback", "--rules", str(rules_dir), "--list"]) == 0
    assert a["bundle_id"][:12] in capsys.readouterr().out
    assert main(["-q", "rules", "rollback", "--rules", str(rules_dir), "--to", "0123456789"]) == 2
    assert "0123456789" in capsys.readouterr().err
    assert main(["-q", "rules", "rollback", "--rules", str(tmp_path / "no"), "--list"]) == 2
    capsys.readouterr()
    assert main(["-q", "rules", "rollback", "--rules", str(rules_dir), "--to", a["bundle_id"]]) == 0
    assert a["bundle_id"][:12] in capsys.readouterr().out
    assert (rules_dir / "bundle.json").read_bytes() == canonical_json(a)
    with pytest.raises(SystemExit):  # --to and --list are exclusive: argparse usage error
        main(["rules", "rollback", "--rules", str(rules_dir), "--to", "x", "--list"])
