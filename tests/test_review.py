"""Analysts' review: labels, allowlist entries, rule decisions, and what the next night does."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from anomaly.export import load_bundle
from anomaly.label_model import evidence_frame
from anomaly.rules import Rule
from pipelines import cli_label
from pipelines.config import JobConfig
from pipelines.nightly import _Lifecycle, run_nightly
from pipelines.review import (
    RuleDecision,
    add_allowlist,
    allowlist_candidates,
    allowlists,
    campaign_labels,
    entity_labels,
    fit_label_model,
    label_campaign,
    label_entity,
    remove_allowlist,
    review_rule,
    rule_decisions,
)
from pipelines.store import MIGRATIONS, SCHEMA_VERSION, Store, store_lock
from pipelines.synthetic import generate, write_synthetic

NIGHT = "2026-11-01"


def _camp(cid: str, flagged: bool, top: str = "", date: str = NIGHT) -> dict[str, Any]:
    return {
        "date": date,
        "kind": "signups",
        "campaign_id": cid,
        "provisional_id": cid,
        "status": "new",
        "first_seen": date,
        "parent_id": None,
        "merged_from": [],
        "size": 10,
        "score": 1.0,
        "flagged": flagged,
        "reason": "",
        "top_attributes": top,
        "centroid": [0.0],
    }


def _rule_row(rid: str, cid: str, date: str = NIGHT) -> dict[str, Any]:
    return {
        "date": date,
        "rule_id": rid,
        "version": 1,
        "kind": "signups",
        "campaign_id": cid,
        "status": "shadow",
        "created_at": None,
        "expires_at": None,
        "forecast": 1.0,
        "rule": "{}",
    }


def _fill(store: Store, flagged: int = 4, unflagged: int = 4) -> None:
    """One night: ``flagged`` + ``unflagged`` signup campaigns, their members, two rules."""
    camps = [_camp(f"f-{i}", True) for i in range(flagged)]
    camps += [_camp(f"u-{i}", False) for i in range(unflagged)]
    camps[0]["top_attributes"] = (
        "email_domain=Partner.Example (90%); email_tld=example (100%); ip_asn=64500 (100%); "
        "ip_prefix24=10.1.2.0/24 (80%); ua_build=Mozilla/5.0 (Windows; x) (60%)"
    )
    store.replace_night(
        NIGHT,
        {
            "campaigns": pd.DataFrame(camps),
            "assignments": pd.DataFrame(
                {
                    "date": NIGHT,
                    "kind": "signups",
                    "entity_id": ["acct-1", "acct-2"],
                    "cluster_id": [0, 0],
                    "campaign_id": ["f-0", "f-0"],
                }
            ),
            "rules": pd.DataFrame([_rule_row("r-1", "f-1"), _rule_row("r-2", "f-2")]),
        },
    )


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with Store(tmp_path / "s.duckdb") as s:
        _fill(s)
        yield s


# ------------------------------------------------------------------------------ labels


def test_labels_are_appended_and_the_latest_wins(store: Store) -> None:
    label_campaign(store, "signups", "f-0", "benign", "alice", at="2026-11-02T09:00:00")
    label_campaign(
        store, "signups", "f-0", "abuse", "bob", note="saw the IPs", at="2026-11-02T10:00"
    )
    label_campaign(store, "signups", "f-1", "unsure", "alice", at="2026-11-02T08:00:00+02:00")
    label_entity(store, "signups", "acct-1", "benign", "carol")
    assert store.query("SELECT count(*) AS n FROM labels")["n"].iloc[0] == 4  # history kept
    latest = campaign_labels(store)
    assert latest[["target_id", "label", "analyst"]].values.tolist() == [
        ["f-0", "abuse", "bob"],
        ["f-1", "unsure", "alice"],
    ]
    assert latest["labelled_at"].tolist()[1] == "2026-11-02T06:00:00.000000+00:00"  # UTC
    # the same instant twice: the one written last wins
    label_campaign(store, "signups", "f-0", "benign", "dave", at="2026-11-02T10:00:00+00:00")
    assert campaign_labels(store, "signups")["label"].tolist()[0] == "benign"
    assert entity_labels(store)["target_id"].tolist() == ["acct-1"]


def test_labels_are_checked(store: Store) -> None:
    with pytest.raises(ValueError, match="label 'spam' must be one of abuse, benign, unsure"):
        label_campaign(store, "signups", "f-0", "spam", "alice")
    with pytest.raises(ValueError, match="campaign 'c-404' is not in the store"):
        label_campaign(store, "signups", "c-404", "abuse", "alice")
    with pytest.raises(ValueError, match="'f-0' is a campaign of signups, not senders"):
        label_campaign(store, "senders", "f-0", "abuse", "alice")
    with pytest.raises(ValueError, match="analyst must be a non-empty string"):
        label_campaign(store, "signups", "f-0", "abuse", " ")
    with pytest.raises(ValueError, match="entity 'acct-9' of signups is not in the store"):
        label_entity(store, "signups", "acct-9", "abuse", "alice")
    with pytest.raises(ValueError, match="at 'yesterday'"):
        label_campaign(store, "signups", "f-0", "abuse", "alice", at="yesterday")
    assert store.query("SELECT count(*) AS n FROM labels")["n"].iloc[0] == 0


# -------------------------------------------------------------------------- allowlists


def test_allowlist_entries_are_checked_and_normalised(store: Store) -> None:
    assert add_allowlist(store, "signups", "domains", " @Partner.Example ", "alice", "partner")
    assert not add_allowlist(store, "signups", "domains", "partner.example", "bob", "again")
    assert add_allowlist(store, "signups", "prefixes", "10.1.2.3/16", "alice", "office")
    assert add_allowlist(store, "signups", "asns", "AS64500", "alice", "partner's network")
    assert add_allowlist(store, "senders", "ids", "<m-1@x>", "alice", "a test message")
    got = allowlists(store)[["kind", "list", "value", "added_by"]].values.tolist()
    assert got == [
        ["senders", "ids", "<m-1@x>", "alice"],
        ["signups", "asns", "64500", "alice"],
        ["signups", "domains", "partner.example", "alice"],
        ["signups", "prefixes", "10.1.0.0/16", "alice"],
    ]
    with pytest.raises(ValueError, match=r"invalid CIDR block '10\.0\.0\.300/8'"):
        add_allowlist(store, "signups", "prefixes", "10.0.0.300/8", "alice", "x")
    with pytest.raises(ValueError, match="'not a domain' is not a domain name"):
        add_allowlist(store, "signups", "domains", "not a domain", "alice", "x")
    with pytest.raises(ValueError, match="'localhost' is not a domain name"):
        add_allowlist(store, "signups", "domains", "localhost", "alice", "x")
    with pytest.raises(ValueError, match="senders have no ASN attribute"):
        add_allowlist(store, "senders", "asns", "64500", "alice", "x")
    with pytest.raises(ValueError, match="'ASx' is not an AS number"):
        add_allowlist(store, "signups", "asns", "ASx", "alice", "x")
    with pytest.raises(ValueError, match="list 'emails' must be one of"):
        add_allowlist(store, "signups", "emails", "a@b.c", "alice", "x")
    with pytest.raises(ValueError, match="kind 'logins' has no allowlists"):
        add_allowlist(store, "logins", "ids", "x", "alice", "x")
    with pytest.raises(ValueError, match="reason must be a non-empty string"):
        add_allowlist(store, "signups", "ids", "acct-1", "alice", "")
    assert remove_allowlist(store, "signups", "prefixes", "10.1.9.9/16", "bob") == 1
    with pytest.raises(ValueError, match=r"'10\.1\.0\.0/16' is not on the store's allowlist"):
        remove_allowlist(store, "signups", "prefixes", "10.1.0.0/16", "bob")
    assert len(allowlists(store, "signups")) == 2


def test_benign_campaigns_and_entities_propose_allowlist_entries(store: Store) -> None:
    assert allowlist_candidates(store, "signups").empty
    label_campaign(store, "signups", "f-0", "benign", "alice")
    label_campaign(store, "signups", "f-1", "abuse", "alice")  # abuse proposes nothing
    label_entity(store, "signups", "acct-2", "benign", "bob")
    c = allowlist_candidates(store, "signups")
    assert c[["list", "value", "share", "source", "target_id"]].values.tolist() == [
        ["asns", "64500", 1.0, "campaign", "f-0"],
        ["domains", "partner.example", 0.9, "campaign", "f-0"],
        ["ids", "acct-2", 1.0, "entity", "acct-2"],
        ["prefixes", "10.1.2.0/24", 0.8, "campaign", "f-0"],
    ]
    # proposals are not applied; once an entry is on the list it is no longer proposed
    assert allowlists(store).empty
    add_allowlist(store, "signups", "domains", "partner.example", "alice", "partner")
    assert "domains" not in set(allowlist_candidates(store, "signups")["list"])


# --------------------------------------------------------------------------- decisions


def test_rule_decisions_come_with_migration_2(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with Store(path, migrations=MIGRATIONS[:1]) as s:  # a store as version 1 left it
        _fill(s)
        assert s.schema_version() == 1
        tables = set(s.query("SELECT table_name FROM information_schema.tables")["table_name"])
        assert "rule_decisions" not in tables
    with Store(path) as s:
        assert s.schema_version() == SCHEMA_VERSION
        assert len(s.query("SELECT * FROM campaigns")) == 8  # the night is still there
        row = review_rule(s, "r-1", "approve", "alice", "checked", at="2026-11-02T09:00:00Z")
        assert row["applied_date"] is None
        review_rule(s, "r-2", "reject", "bob", "too broad")
        d = rule_decisions(s)
        assert d["rule_id"].tolist() == ["r-1", "r-2"]
        assert d["applied_date"].isna().all()
        with pytest.raises(ValueError, match="rule 'r-404' is not in the store's rules table"):
            review_rule(s, "r-404", "approve", "alice", "x")
        with pytest.raises(ValueError, match="decision 'maybe' must be one of approve, reject"):
            review_rule(s, "r-1", "maybe", "alice", "x")
        with pytest.raises(ValueError, match="reason must be a non-empty string"):
            review_rule(s, "r-1", "reject", "alice", "")
        cols = s.query("DESCRIBE rule_decisions")["column_name"].tolist()
        assert cols == ["rule_id", "decision", "analyst", "decided_at", "reason", "applied_date"]


def _rule(rid: str, status: str = "shadow", version: int = 1, **kw: Any) -> Rule:
    base: dict[str, Any] = {
        "id": rid,
        "version": version,
        "kind": "signups",
        "campaign_id": f"si-{rid}",
        "title": f"rule {rid}",
        "condition": {"op": "eq", "attr": "email_domain", "value": "x.com"},
        "status": status,
        "created_at": "2026-11-01T00:00:00+00:00",
        "expires_at": "2026-11-30T00:00:00+00:00",
        "backtest": {"expected_hits_per_day": 11, "traffic_share": 0.001},
        "provenance": {"run_id": "run-1", "shadow_reasons": kw.pop("reasons", [])},
    }
    base.update(kw)
    return Rule(**base)


def test_decisions_hold_on_later_nights() -> None:
    held = ["precision lower bound 0.9 < 0.98"]
    previous = {"rules": [_rule("r-ok", "enforce").to_dict()]}
    # tonight's rules as detection gives them: the guard keeps r-ok and r-new in shadow
    tonight = [_rule("r-ok", reasons=held), _rule("r-no", reasons=held), _rule("r-new")]
    lc = _Lifecycle(
        previous,
        [],
        "2026-11-03",
        JobConfig(),
        decisions=[RuleDecision("r-new", "reject", "bob", "too broad")],
        standing={"r-ok": "approve", "r-no": "reject"},
    )
    out = {r.id: r.status for r in lc(tonight)}
    # r-ok was approved before (same version): it keeps enforcing although the guard doubts;
    # r-no was rejected before and stays out; r-new is rejected tonight, audited
    assert out == {"r-ok": "enforce"}
    assert lc.kept_out == ["r-no"]
    assert [(e.rule_id, e.to_status, e.actor, e.reason) for e in lc.audit] == [
        ("r-new", "disabled", "bob", "analyst rejected: too broad")
    ]
    # a new version of an approved rule is the guard's to judge again
    lc = _Lifecycle(previous, [], "2026-11-03", JobConfig(), standing={"r-ok": "approve"})
    assert [r.status for r in lc([_rule("r-ok", version=2, reasons=held)])] == ["shadow"]
    # tonight's decision overrides an earlier one
    lc = _Lifecycle(
        None,
        [],
        "2026-11-03",
        JobConfig(),
        decisions=[
            RuleDecision("r-no", "reject", "bob", "first"),
            RuleDecision("r-no", "approve", "carol", "it is fine"),
        ],
        standing={"r-no": "reject"},
    )
    assert [r.status for r in lc([_rule("r-no", reasons=held)])] == ["enforce"]
    assert [d["outcome"] for d in lc.decided] == ["superseded by a later decision", "enforce"]


# ------------------------------------------------------------------------- label model


def _evidence(cid: str, flagged: bool, strength: float, date: str = NIGHT) -> dict[str, Any]:
    """A campaign_evidence row as a night writes it (anomaly.label_model.evidence_records)."""
    ev = {
        "network": strength,
        "identity": strength / 2,
        "network_log10p": 40.0 * strength,
        "families_owned": 2.0 if flagged else 0.0,
        "entity_score_auc": None,  # not measured that night
        "risk": float(flagged),
        "flagged": flagged,
    }
    return {
        "date": date,
        "kind": "signups",
        "campaign_id": cid,
        "cluster_id": 0,
        "evidence": json.dumps(ev, sort_keys=True),
    }


def _with_evidence(store: Store) -> None:
    """Night 1 again, with the evidence of its campaigns (u-3 has none: a timer pool)."""
    rows = [_evidence(f"f-{i}", True, 0.9 - 0.05 * i) for i in range(4)]
    rows += [_evidence(f"u-{i}", False, 0.1 + 0.05 * i) for i in range(3)]
    tables = {
        t: store.query(f"SELECT * FROM {t} WHERE date = ?", [NIGHT])
        for t in ("campaigns", "assignments", "rules")
    }
    store.replace_night(NIGHT, {**tables, "campaign_evidence": pd.DataFrame(rows)})


def test_labels_train_the_next_nights_label_model(store: Store) -> None:
    _with_evidence(store)
    cfg = JobConfig()
    model, rec = fit_label_model(store, "signups", cfg)  # the night after the latest
    assert model is None and not rec["usable"]
    assert "no labelled campaign with evidence before 2026-11-02" in rec["decision"]
    # labels of one class: fitted, not used, the test's decision stands
    label_campaign(store, "signups", "f-0", "benign", "alice")
    label_campaign(store, "signups", "f-1", "unsure", "alice")
    model, rec = fit_label_model(store, "signups", cfg)
    assert model is not None and not model.usable_ and not rec["usable"]
    assert rec["labels"] == {"abuse": [], "benign": ["f-0"], "unsure": ["f-1"]}
    assert rec["unsure_ignored"] == 1 and rec["trained_on"] == {"abuse": 0, "benign": 1}
    assert "all benign" in rec["decision"] and "test's decision stands" in rec["decision"]
    # both classes: used; a campaign without stored evidence is named, not guessed
    label_campaign(store, "signups", "u-0", "abuse", "bob")
    label_campaign(store, "signups", "u-3", "abuse", "bob")
    model, rec = fit_label_model(store, "signups", cfg)
    assert model is not None and model.usable_ and rec["usable"]
    assert model.random_state == cfg.seed
    assert rec["trained_on"] == {"abuse": 1, "benign": 1}
    assert rec["without_evidence"] == ["u-3"]
    assert rec["evidence_nights"] == {"f-0": NIGHT, "u-0": NIGHT}
    # anchors: the campaigns nobody labelled (f-1 is unsure: left out too)
    assert rec["anchors"] == 4 and rec["model"]["anchors"] == 4
    assert rec["model"]["used"] and set(rec["model"]["weights"]) >= {"network", "test_decision"}
    assert "fitted on 2 labelled campaigns (1 abuse, 1 benign)" in rec["decision"]
    night = store.query("SELECT campaign_id, evidence FROM campaign_evidence ORDER BY 1")
    frame = evidence_frame([json.loads(e) for e in night["evidence"]])
    p = dict(zip(night["campaign_id"], model.predict_proba(frame), strict=True))
    assert p["f-0"] < 0.5 and p["u-0"] >= 0.5  # the labels' way
    # only evidence of nights before the one scored counts, and each campaign's latest
    assert fit_label_model(store, "signups", cfg, before=NIGHT)[0] is None
    later = "2026-11-05"
    moved = pd.DataFrame([_evidence("f-0", False, 0.0, later)])
    store.replace_night(later, {"campaign_evidence": moved})
    model, rec = fit_label_model(store, "signups", cfg, before="2026-11-06")
    assert rec["evidence_nights"] == {"f-0": later, "u-0": NIGHT}
    assert rec["anchors"] == 4
    # the look-back window bounds the anchors, not the labels: labels are kept for good
    model, rec = fit_label_model(store, "signups", cfg, before="2026-11-12")
    assert rec["anchors"] == 0 and rec["trained_on"] == {"abuse": 1, "benign": 1}
    assert model is not None and model.usable_
    # a rerun's labels, given: the store's later labels do not count
    model, rec = fit_label_model(
        store, "signups", cfg, before="2026-11-02", labels={"benign": ["f-0"]}
    )
    assert rec["labels"] == {"abuse": [], "benign": ["f-0"], "unsure": []}
    assert not rec["usable"] and rec["anchors"] == 6  # u-0 and f-1 are anchors now


# ------------------------------------------------------------------------------- CLI


def _cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="campaigns")
    cli_label.add_parser(p.add_subparsers(dest="command", required=True))
    return cli_label.run(p.parse_args(argv))


def test_the_label_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.duckdb"
    with Store(path) as s:
        _fill(s)
    st = ["--store", str(path)]
    assert _cli(["label", "campaign", *st, "--kind", "signups", "f-0", "benign"]) == 0
    assert (
        _cli(["label", "entity", *st, "--kind", "signups", "acct-1", "abuse", "--note", "x"]) == 0
    )
    allow = ["label", "allow", *st, "--kind", "signups", "--list", "domains"]
    assert _cli([*allow, "Partner.Example", "--reason", "partner", "--analyst", "eve"]) == 0
    assert _cli(["label", "rule", *st, "r-1", "approve", "--reason", "checked"]) == 0
    capsys.readouterr()
    assert _cli(["label", "list", *st, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [x["target_id"] for x in out["labels"]] == ["f-0", "acct-1"]
    assert out["allowlists"][0]["value"] == "partner.example"
    assert out["allowlists"][0]["added_by"] == "eve"
    assert out["rule_decisions"][0]["applied_date"] is None
    assert {x["list"] for x in out["allowlist_candidates"]} == {"asns", "prefixes"}
    assert _cli(["label", "list", *st]) == 0
    assert "rule decisions: 1" in capsys.readouterr().out
    # bad input is a ValueError naming it (the campaigns entry point exits 2)
    with pytest.raises(ValueError, match=r"invalid CIDR block '10\.0\.0\.300/8'"):
        _cli([*allow[:-1], "prefixes", "10.0.0.300/8", "--reason", "x"])
    with pytest.raises(ValueError, match="--reason is required"):
        _cli([*allow, "other.example"])
    with pytest.raises(ValueError, match="no such store"):
        _cli(["label", "list", "--store", str(tmp_path / "typo.duckdb")])
    # while a nightly run holds the store's lock: exit 3, nothing written
    with store_lock(path):
        assert _cli(["label", "rule", *st, "r-2", "reject", "--reason", "x"]) == 3
    assert "another run holds the store's lock" in capsys.readouterr().err
    with Store(path) as s:
        assert len(rule_decisions(s)) == 1


# ------------------------------------------------------------------------ end to end


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_the_next_night_applies_labels_allowlists_and_decisions(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    write_synthetic(generate(days=3, seed=0, signups_per_day=2500, messages_per_day=2500), inputs)
    out = tmp_path / "out"
    cfg = JobConfig()
    cfg.nightly.input_dir, cfg.nightly.out_dir = str(inputs), str(out)
    night1, night2 = "2026-11-01", "2026-11-02"
    assert run_nightly(night1, cfg).published
    path = out / "campaigns.duckdb"
    with store_lock(path), Store(path) as s:
        # a flagged campaign that is a partner's (the least evidence of those with a common
        # mail domain, as a partner's signups would be): benign, and its domain allowlisted
        camps = s.query(
            "SELECT campaign_id FROM campaigns WHERE kind = 'signups' AND flagged "
            "AND top_attributes LIKE '%email_domain=%' "
            "ORDER BY reason LIKE 'owns 1 family%' DESC, campaign_id"
        )
        benign = str(camps["campaign_id"].iloc[0])
        label_campaign(s, "signups", benign, "benign", "alice", note="partner signups")
        # a campaign the test missed (most of its members are planted campaign accounts), as
        # an analyst finds it by hand: abuse
        truth = pd.read_parquet(inputs / "labels" / "signups.parquet").set_index("account_id")
        members = s.query(
            "SELECT a.entity_id, a.campaign_id FROM assignments a JOIN campaigns c "
            "USING (date, kind, campaign_id) WHERE a.kind = 'signups' AND NOT c.flagged"
        )
        members["planted"] = members["entity_id"].map(truth["label"]) == "campaign"
        share = members.groupby("campaign_id")["planted"].agg(["mean", "size"])
        missed = share[(share["mean"] > 0.5) & (share["size"] >= 10)].sort_values("size")
        abuse = str(missed.index[-1])
        label_campaign(s, "signups", abuse, "abuse", "bob", note="one device farm")
        domain = allowlist_candidates(s, "signups").query("list == 'domains'")["value"].iloc[0]
        assert add_allowlist(s, "signups", "domains", domain, "alice", "partner's domain")
        rules = s.query(
            "SELECT rule_id, status FROM rules WHERE campaign_id <> ? ORDER BY rule_id", [benign]
        )
        assert (rules["status"] == "shadow").all()  # new rules start in shadow
        approved, rejected = str(rules["rule_id"].iloc[0]), str(rules["rule_id"].iloc[1])
        review_rule(s, approved, "approve", "bob", "members checked by hand")
        review_rule(s, rejected, "reject", "bob", "too broad")
    # night 2 first runs degraded (an impossible drift threshold): its bundle is not
    # published, so the decisions stay pending for the night that is
    strict = JobConfig()
    strict.nightly, strict.health.max_psi = cfg.nightly, 1e-6
    r = run_nightly(night2, strict)
    assert r.status == "degraded" and not r.published
    with Store(path) as s:
        assert rule_decisions(s)["applied_date"].isna().all()
    # night 2 again, healthy: a rerun applies what the first run applied
    r = run_nightly(night2, cfg)
    assert r.published, r.message
    bundle = load_bundle(out / "rules" / "bundle.json")
    status = {d["id"]: d["status"] for d in bundle["rules"]}
    assert status[approved] == "enforce"
    assert rejected not in status
    entries = {e["name"]: e for e in bundle["allowlists"]["signups"]}
    assert domain in entries["domains"]["condition"]["values"]
    con = duckdb.connect(str(path), read_only=True)
    try:
        audit = con.execute(
            "SELECT rule_id, from_status, to_status, reason FROM rule_audit "
            "WHERE date = ? AND actor = 'bob' ORDER BY rule_id",
            [night2],
        ).fetchall()
        applied = con.execute("SELECT DISTINCT applied_date FROM rule_decisions").fetchall()
    finally:
        con.close()
    assert sorted(audit) == sorted(
        [
            (approved, "shadow", "enforce", "analyst approved: members checked by hand"),
            (rejected, "shadow", "disabled", "analyst rejected: too broad"),
        ]
    )
    assert applied == [(night2,)]
    record = json.loads((out / "runs" / night2 / "run.json").read_text())
    review = record["nightly"]["review"]
    assert review["allowlists"] == {"signups": {"domains": [domain]}}
    assert review["labels"]["signups"]["campaign"]["benign"] == 1
    # the labels train night 2's label model; the configured test is left alone
    assert "thresholds" not in review
    assert record["parameters"]["signups"]["fdr"] == cfg.signups.fdr
    lm = review["label_model"]["signups"]
    assert lm["usable"] and lm["trained_on"] == {"abuse": 1, "benign": 1}
    assert lm["labels"] == {"abuse": [abuse], "benign": [benign], "unsure": []}
    assert lm["evidence_nights"] == {abuse: night1, benign: night1}
    assert lm["anchors"] > 0 and "decides tonight's flags" in lm["decision"]
    assert record["detectors"]["signups"]["campaign_detector"]["label_model"]["used"]
    effect = lm["effect"]
    # the campaign labelled benign continues tonight and is not flagged any more; whatever
    # the labels change is named, and the night's strongest campaign (two exclusive families:
    # the data-centre burst) keeps the test's flag: the anchors hold the test's other decisions
    assert benign in effect["unflagged_by_labels"]
    assert effect["changed"] >= len(effect["flagged_by_labels"] + effect["unflagged_by_labels"])
    # senders have no labels: the test decides, and the record says so
    sl = review["label_model"]["senders"]
    assert not sl["usable"] and sl["model"] is None and "the test decides" in sl["decision"]
    assert sl["effect"]["changed"] == 0
    con = duckdb.connect(str(path), read_only=True)
    try:
        night2_camps = con.execute(
            "SELECT c.campaign_id, c.flagged, e.evidence FROM campaigns c LEFT JOIN "
            "campaign_evidence e USING (date, kind, campaign_id) "
            "WHERE c.date = ? AND c.kind = 'signups'",
            [night2],
        ).df()
    finally:
        con.close()
    # every campaign's evidence is kept for the next night, with the test's own decision
    assert night2_camps["evidence"].notna().all()
    stored = night2_camps.set_index("campaign_id")
    assert json.loads(stored.loc[benign, "evidence"])["flagged"]  # the test flagged it
    strongest = stored["evidence"].map(lambda e: json.loads(e)["network"] + json.loads(e)["client"])
    top = strongest.idxmax()
    assert json.loads(stored.loc[top, "evidence"])["flagged"] and stored.loc[top, "flagged"]
    assert [(d["rule_id"], d["outcome"]) for d in review["decisions"]] == [
        (approved, "enforce"),
        (rejected, "disabled"),
    ]
    assert cfg.allowlists.signups.domains == []  # the caller's configuration is untouched
    # a label written after the night does not change a rerun of it: same bytes
    before = _digests(out / "runs" / night2)
    with store_lock(path), Store(path) as s:
        label_campaign(s, "signups", benign, "abuse", "carol")
    assert run_nightly(night2, cfg).published
    assert _digests(out / "runs" / night2) == before


def test_the_campaigns_entry_point_maps_bad_labels_to_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipelines.cli import main

    path = tmp_path / "s.duckdb"
    with Store(path) as s:
        _fill(s)
    st = ["--store", str(path)]
    assert main(["label", "campaign", *st, "--kind", "signups", "f-0", "abuse"]) == 0
    assert main(["label", "campaign", *st, "--kind", "signups", "no-such", "abuse"]) == 2
    assert "no-such" in capsys.readouterr().err
    allow = ["label", "allow", *st, "--kind", "signups", "--list", "prefixes"]
    assert main([*allow, "10.0.0.300/8", "--reason", "x"]) == 2
    assert "10.0.0.300/8" in capsys.readouterr().err
