"""Rule induction: precise, short, durable-first, measured on the whole background."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import numpy as np
import pandas as pd

from anomaly.campaign_rules import Guard
from anomaly.induction import GreedyRuleInducer
from anomaly.rules import evaluate
from anomaly.stats import wilson_lower


def _attrs(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_bg, n_c = 5000, 300
    shapes = rng.choice(["a.a", "a9999", "a", "a.a99", "a_a"], size=n_bg)
    builds = rng.choice([f"Chrome/12{i}.0" for i in range(8)], size=n_bg)
    asn = rng.choice([3320, 7922, 701, 14061], size=n_bg, p=[0.4, 0.3, 0.28, 0.02])
    domains = rng.choice(["gmail.com", "web.de", "yahoo.com"], size=n_bg)
    bg = pd.DataFrame(
        {
            "username_shape": shapes,
            "ua_build": builds,
            "ip_asn": asn,
            "email_domain": domains,
            "captcha_score": rng.uniform(0.3, 1.0, n_bg),
            "ip_prefix24": [f"10.{i % 50}.{i % 7}.0/24" for i in range(n_bg)],
        }
    )
    camp = pd.DataFrame(
        {
            "username_shape": ["a9999"] * n_c,
            "ua_build": ["Chrome/119.0.9999"] * n_c,
            "ip_asn": [14061] * n_c,
            "email_domain": rng.choice([f"x{i}.top" for i in range(3)], size=n_c),
            "captcha_score": rng.uniform(0.0, 0.2, n_c),
            "ip_prefix24": rng.choice(["203.0.113.0/24", "198.51.100.0/24"], size=n_c),
        }
    )
    attrs = pd.concat([bg, camp], ignore_index=True)
    attrs["ip_asn"] = attrs["ip_asn"].astype("Int64")
    for c in ("username_shape", "ua_build", "email_domain", "ip_prefix24"):
        attrs[c] = attrs[c].astype("string")
    positive = np.r_[np.zeros(n_bg, bool), np.ones(n_c, bool)]
    return attrs, positive


def test_finds_precise_durable_rules() -> None:
    attrs, pos = _attrs()
    rules = GreedyRuleInducer("signups", n_rules=3).induce(attrs, pos)
    assert rules, "no rule found"
    first = rules[0]
    assert first.tier == 1, "a durable rule exists and must be preferred"
    assert first.precision == 1.0 and first.recall >= 0.9
    assert len(first.attributes) <= 4
    # figures are those of the shipped evaluator over the whole background
    hit = evaluate(first.condition, attrs)
    assert int((hit & pos).sum()) == first.true_positives
    assert int((hit & ~pos).sum()) == first.false_positives
    assert first.precision_lower == wilson_lower(first.true_positives, first.hits)
    # several rules over disjoint attributes
    used = [set(r.core_attributes) for r in rules]
    for i in range(len(used)):
        for j in range(i + 1, len(used)):
            assert not used[i] & used[j]


def test_no_rule_when_campaign_is_indistinguishable() -> None:
    attrs, _ = _attrs()
    rng = np.random.default_rng(1)
    pos = np.zeros(len(attrs), bool)
    pos[rng.choice(5000, 200, replace=False)] = True  # random benign rows: nothing to learn
    rules = GreedyRuleInducer("signups", min_recall=0.9).induce(attrs, pos)
    assert all(r.precision >= 0.95 for r in rules)
    assert rules == []


def test_deterministic() -> None:
    attrs, pos = _attrs()
    a = GreedyRuleInducer("signups").induce(attrs, pos)
    b = GreedyRuleInducer("signups").induce(attrs.copy(), pos.copy())
    assert [r.condition for r in a] == [r.condition for r in b]


def test_wilson_lower_bound_figures() -> None:
    assert round(wilson_lower(992, 1000), 3) == 0.984
    assert round(wilson_lower(50, 50), 3) == 0.929
    assert wilson_lower(0, 0) == 0.0


def test_inducer_keeps_no_state_between_calls() -> None:
    attrs, pos = _attrs()
    inducer = GreedyRuleInducer("signups")
    before = dict(vars(inducer))
    first = inducer.induce(attrs, pos)
    assert vars(inducer) == before
    assert [r.condition for r in inducer.induce(attrs, pos)] == [r.condition for r in first]


def test_zero_hits_after_trimming_a_stray_is_weak_evidence() -> None:
    # An app build used by 300 honest people, 2 of them on the campaign's exact phone model;
    # most of the app's users share the campaign's display-name shape. The rule "model and
    # shape" has no background hit tonight only because those 2 have another shape.
    rng = np.random.default_rng(0)
    n_bg, n_app, n_c = 5000, 300, 300
    ua = np.array(
        [f"web-{i % 50}" for i in range(n_bg)] + [f"app (m{i % 40})" for i in range(n_app)],
        dtype=object,
    )
    ua[n_bg : n_bg + 2] = "app (farm)"
    build = np.r_[["web"] * n_bg, ["app"] * n_app]
    shape = np.r_[
        rng.choice(["Aa Aa", "Aa"], n_bg), rng.choice(["Aa Aa", "Aa"], n_app, p=[0.8, 0.2])
    ]
    shape[n_bg : n_bg + 2] = "Aa"
    attrs = pd.DataFrame(
        {
            "user_agent": np.r_[ua, ["app (farm)"] * n_c],
            "ua_build": np.r_[build, ["app"] * n_c],
            "display_name_shape": np.r_[shape, ["Aa Aa"] * n_c],
        }
    ).astype("string")
    pos = np.r_[np.zeros(n_bg + n_app, bool), np.ones(n_c, bool)]
    (rule,) = GreedyRuleInducer("signups", n_rules=1, safety_hits=0).induce(attrs, pos)
    assert set(rule.attributes) == {"user_agent", "display_name_shape"}
    assert rule.false_positives == 0
    # (2 + 0.5) stray hits of the model, times the shape's rate among the app's users (~0.8)
    assert 1.5 < rule.expected_background < 2.5


def test_campaign_values_listed_without_the_strays_swept_in() -> None:
    # 285 accounts on a pool of 30 devices, 15 strays on devices of their own: 45 values in
    # all, more than the longest list, but the pool alone keeps the recall a rule needs
    rng = np.random.default_rng(0)
    n_bg, n_c = 5000, 300
    dev = [f"d{i}" for i in range(n_bg)] + [f"pool{i % 30}" for i in range(285)]
    dev += [f"own{i}" for i in range(15)]
    attrs = pd.DataFrame(
        {
            "device_id": dev,
            "username_shape": rng.choice(["a.a", "a99", "a"], n_bg + n_c),
        }
    ).astype("string")
    pos = np.r_[np.zeros(n_bg, bool), np.ones(n_c, bool)]
    rules = GreedyRuleInducer("signups", n_rules=1).induce(attrs, pos)
    assert rules, "the device pool carries a rule"
    cond = rules[0].condition
    values = cond["values"] if cond.get("attr") == "device_id" else None
    assert values is not None and len(values) == 30 and all(v.startswith("pool") for v in values)
    assert rules[0].recall == 0.95 and rules[0].false_positives == 0


def test_margins_avoid_what_campaigns_rotate_and_long_value_lists() -> None:
    # A phishing template from freemail senders: tonight all its links are on .net and its
    # senders' random local parts take many shapes. Neither may serve as a safety margin:
    # tomorrow the links move and the shapes differ.
    rng = np.random.default_rng(0)
    n_bg, n_c = 6000, 400
    shapes = [f"s{i}" for i in range(30)]
    attrs = pd.DataFrame(
        {
            "subject_skeleton": np.r_[
                [f"hello {i % 500}" for i in range(n_bg)],
                rng.choice(["invoice # from acme", "invoice # from globex"], n_c),
            ],
            "url_tld": np.r_[
                rng.choice(["com", "net", "org"], n_bg, p=[0.7, 0.2, 0.1]), ["net"] * n_c
            ],
            "sender_local_shape": np.r_[rng.choice(shapes, n_bg), rng.choice(shapes[:20], n_c)],
            "sender_domain": rng.choice(["gmail.com", "outlook.com"], n_bg + n_c),
        }
    ).astype("string")
    pos = np.r_[np.zeros(n_bg, bool), np.ones(n_c, bool)]
    rules = GreedyRuleInducer("senders", n_rules=3).induce(attrs, pos)
    assert rules
    for r in rules:
        margins = set(r.attributes) - set(r.core_attributes)
        assert "url_tld" not in margins and "sender_local_shape" not in margins, r.condition


def test_a_margin_comes_from_the_rules_own_family_before_tonights_domains() -> None:
    # A lure sent from four throwaway domains with three subject templates no one else uses:
    # the templates alone hit no background row, and a margin is still wanted. Tonight's
    # sender domains separate perfectly too, but they are exact values an actor rotates
    # daily: the margin is the templates' shape (the rule's own family), and the rule still
    # blocks when tomorrow's domains are new.
    rng = np.random.default_rng(1)
    n_bg, n_c = 6000, 300
    lures = ["security alert #: confirm", "account suspended - verify by #", "unusual sign-in #"]
    shapes = ["a a 9: a", "a a - a a 9", "a a-a 9"]
    pick = rng.integers(0, 3, n_c)
    attrs = pd.DataFrame(
        {
            "subject_skeleton": np.r_[
                [f"newsletter {i % 300}" for i in range(n_bg)], np.array(lures)[pick]
            ],
            "subject_shape": np.r_[
                rng.choice(["a 9", "a a 9", "a a a"], n_bg), np.array(shapes)[pick]
            ],
            "sender_domain": np.r_[
                rng.choice(["gmail.com", "outlook.com", "shop.example"], n_bg),
                rng.choice(["bugemy.buzz", "vukyly.buzz", "mexode.buzz", "luxyme.buzz"], n_c),
            ],
        }
    ).astype("string")
    pos = np.r_[np.zeros(n_bg, bool), np.ones(n_c, bool)]
    rules = GreedyRuleInducer("senders", n_rules=1).induce(attrs, pos)
    assert rules
    first = rules[0]
    assert "sender_domain" not in first.attributes, first.condition
    assert "subject_shape" in first.attributes, first.condition
    day2 = attrs.copy()
    day2.loc[pos, "sender_domain"] = "puxo15.space"
    assert evaluate(first.condition, day2)[pos].mean() >= 0.9


def _families(rule_attrs: tuple[str, ...]) -> set[str]:
    from clustering.kinds import get_spec

    fam = get_spec("signups").rule_families
    return {fam.get(a, a) for a in rule_attrs}


def test_a_campaigns_rules_do_not_all_lean_on_one_family() -> None:
    # The campaign is precise in its client build alone, in its network alone and in its name
    # shape + mail domains: rules that all used the build would all fall when it is swapped.
    attrs, pos = _attrs()
    rules = GreedyRuleInducer("signups", n_rules=3).induce(attrs, pos)
    assert len(rules) >= 2
    families = [_families(r.core_attributes) for r in rules]
    shared_by_all = set.intersection(*families)
    assert not shared_by_all, f"every rule uses {shared_by_all}: one rotation takes them all"
    # the second rule uses none of the first rule's families where it can
    assert not (families[0] & families[1]), families


def test_rotating_one_family_leaves_a_rule_that_still_blocks() -> None:
    attrs, pos = _attrs()
    rules = GreedyRuleInducer("signups", n_rules=3).induce(attrs, pos)
    # the next day the actor swaps its client build for one the population does not use
    day2 = attrs.copy()
    day2.loc[pos, "ua_build"] = "Chrome/120.0.1111"
    blocked = np.logical_or.reduce([evaluate(r.condition, day2) for r in rules])
    assert blocked[pos].mean() >= 0.9
    assert blocked[~pos].sum() == 0


def test_unsure_rows_are_neither_campaign_nor_background() -> None:
    attrs, pos = _attrs()
    # a fifth of the campaign was left in noise: as background, they make every rule look
    # imprecise; ignored, the rule that covers them is precise
    left = np.flatnonzero(pos)[::5]
    clustered = pos.copy()
    clustered[left] = False
    charged = GreedyRuleInducer("signups", n_rules=1).induce(attrs, clustered)
    unsure = np.zeros(len(pos), dtype=bool)
    unsure[left] = True
    spared = GreedyRuleInducer("signups", n_rules=1).induce(attrs, clustered, ignore=unsure)
    assert spared and spared[0].precision == 1.0 and spared[0].false_positives == 0
    # charged with them, no rule is precise enough, or the best one counts them as misses
    assert not charged or charged[0].false_positives > 0


def _guarded(n_campaign: int, n_background: int = 5000) -> list[Any]:
    from datetime import datetime

    from anomaly.campaign_rules import Guard, rules_for_campaigns

    attrs, pos = _attrs()
    keep = np.r_[np.flatnonzero(~pos)[:n_background], np.flatnonzero(pos)[:n_campaign]]
    attrs, pos = attrs.iloc[keep].reset_index(drop=True), pos[keep]
    ids = pd.Series([f"e{i}" for i in range(len(attrs))])
    campaigns = pd.DataFrame({"campaign_id": ["c1"], "flagged": [True]})
    return rules_for_campaigns(
        "signups",
        attrs,
        ids,
        campaigns,
        {"c1": ids[pos].to_numpy()},
        run_id="run-test",
        created_at=datetime(2026, 11, 1, tzinfo=UTC),
        code_version="test",
        parameters={},
        guard=Guard(),
    )


def test_a_small_clean_campaign_is_enforced_like_a_large_one() -> None:
    # A precision bound is a bound on the number of hits (0.98 needs ~190 clean ones): it made
    # size, not evidence, decide. 40 members with no background hit enforce, as 300 do.
    for n in (40, 300):
        rules = _guarded(n)
        assert rules and rules[0].backtest["background_hits"] == 0
        assert rules[0].mode == "enforce", (n, rules[0].provenance["shadow_reasons"])
        assert rules[0].backtest["precision_lower"] < 1.0  # still reported


def test_a_clean_rule_on_a_small_night_is_enforced() -> None:
    # 0 hits in 1,500 background rows: the 0.999 bound would need 3,840 rows to be met,
    # a statement about the night's size, so the near-miss estimate decides
    rules = _guarded(40, n_background=1500)
    assert rules and rules[0].backtest["background_hits"] == 0
    assert rules[0].backtest["background_lower"] < 0.999
    assert rules[0].mode == "enforce", rules[0].provenance["shadow_reasons"]


def test_a_list_of_values_each_member_holds_alone_is_no_rule() -> None:
    # every member has its own mailbox: listing them memorises tonight's members
    attrs, pos = _attrs()
    pos = pos & (np.cumsum(pos) <= 30)  # a campaign small enough for a full list
    own = pd.Series([f"user{i}@x{i % 3}.top" for i in range(len(attrs))], dtype="string")
    ind = GreedyRuleInducer("signups")
    w = np.ones(len(attrs))
    assert ind._in_candidate("email_canonical", 2, own, w, pos) is None
    # a value the members share is listed
    shared = attrs["email_domain"]
    cand = ind._in_candidate("email_domain", 2, shared, w, pos)
    assert cand is not None and sorted(cand.condition["values"]) == ["x0.top", "x1.top", "x2.top"]


def _script_campaign(seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    # An HTTP-library script on five hosting subnets with one name template: its client is
    # its own (nobody else sends that user agent), so every rule the plain search finds can
    # use it. Its hosting ASNs carry other traffic too, so a durable network rule does not
    # reach the gate; its subnets with its name template do.
    rng = np.random.default_rng(seed)
    n_bg, n_c = 8000, 400
    ua_bg = rng.choice([f"Mozilla/5.0 Chrome/12{i}.0.0.0" for i in range(6)], n_bg)
    bg = pd.DataFrame(
        {
            "user_agent": ua_bg,
            "ua_build": [u.split()[-1] for u in ua_bg],
            "ua_family": "Chrome",
            "username_shape": rng.choice(["a.a", "a9999", "a", "a_a99"], n_bg),
            "ip_asn": rng.choice([3320, 7922, 63949], n_bg, p=[0.5, 0.45, 0.05]),
            "ip_prefix24": [f"10.{i % 200}.{i % 11}.0/24" for i in range(n_bg)],
            "captcha_score": rng.uniform(0.0, 1.0, n_bg),
        }
    )
    camp = pd.DataFrame(
        {
            "user_agent": "Apache-HttpClient/4.5.4 (Java/17.0.14)",
            "ua_build": "Apache-HttpClient/4.5.4",
            "ua_family": "Other",
            "username_shape": rng.choice(["a_a99"], n_c),
            "ip_asn": 63949,
            "ip_prefix24": rng.choice([f"172.104.{i}.0/24" for i in range(5)], n_c),
            "captcha_score": rng.uniform(0.3, 0.6, n_c),
        }
    )
    attrs = pd.concat([bg, camp], ignore_index=True)
    attrs["ip_asn"] = attrs["ip_asn"].astype("Int64")
    for c in ("user_agent", "ua_build", "ua_family", "username_shape", "ip_prefix24"):
        attrs[c] = attrs[c].astype("string")
    return attrs, np.r_[np.zeros(n_bg, bool), np.ones(n_c, bool)]


def test_two_gated_rules_over_disjoint_families_where_the_data_allows() -> None:
    attrs, pos = _script_campaign()
    gate = Guard()
    rules = GreedyRuleInducer("signups", n_rules=3).induce(attrs, pos)
    gated = [
        r
        for r in rules
        if r.precision >= gate.enforce_precision
        and r.expected_background <= gate.max_expected_background
    ]
    fams = [_families(r.attributes) for r in gated]
    assert any(
        not (fams[i] & fams[j]) for i in range(len(fams)) for j in range(i + 1, len(fams))
    ), [r.condition for r in rules]
    # tomorrow the script moves to another library version: a gated rule still blocks it
    day2 = attrs.copy()
    day2.loc[pos, "user_agent"] = "python-requests/2.32.3"
    day2.loc[pos, "ua_build"] = "python-requests/2.32.3"
    blocked = np.logical_or.reduce([evaluate(r.condition, day2) for r in gated])
    assert blocked[pos].mean() >= 0.9
    assert blocked[~pos].sum() == 0


def test_a_farms_short_list_of_display_names_carries_a_rule() -> None:
    # 300 accounts on a rare client build, with three display names between them; ordinary
    # users have names of their own. Tomorrow the farm swaps its build: the names still block.
    rng = np.random.default_rng(7)
    n_bg, n_c = 6000, 300
    names = ["anastasia ivanov", "büşra yıldız", "ayu pratama"]
    attrs = pd.DataFrame(
        {
            "ua_build": np.r_[
                rng.choice([f"Chrome/12{i}.0" for i in range(6)], n_bg), ["Edg/106.0.1"] * n_c
            ],
            "display_name": np.r_[[f"person {i}" for i in range(n_bg)], rng.choice(names, n_c)],
            "display_name_shape": np.r_[rng.choice(["Aa Aa", "Aa"], n_bg), ["Aa Aa"] * n_c],
            "username_shape": np.r_[rng.choice(["a.a", "a99", "a9999"], n_bg), ["a9999"] * n_c],
        }
    ).astype("string")
    pos = np.r_[np.zeros(n_bg, bool), np.ones(n_c, bool)]
    rules = GreedyRuleInducer("signups", n_rules=3).induce(attrs, pos)
    assert any("display_name" in r.attributes for r in rules), [r.condition for r in rules]
    day2 = attrs.copy()
    day2.loc[pos, "ua_build"] = "Chrome/99.0.1"
    blocked = np.logical_or.reduce([evaluate(r.condition, day2) for r in rules])
    assert blocked[pos].mean() >= 0.9
    assert blocked[~pos].sum() == 0
