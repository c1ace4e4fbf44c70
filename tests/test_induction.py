"""Rule induction: precise, short, durable-first, measured on the whole background."""

from __future__ import annotations

import numpy as np
import pandas as pd

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
