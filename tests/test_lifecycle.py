"""Rule lifecycle: promotion after quiet nights, blast-radius demotion, expiry, the audit trail."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from anomaly.lifecycle import AuditEvent, LifecyclePolicy, RuleNight, active, apply_lifecycle
from anomaly.rules import Rule

TODAY = "2024-05-08"
POLICY = LifecyclePolicy()


def _rule(rid: str = "r-a", **kw: Any) -> Rule:
    base: dict[str, Any] = {
        "id": rid,
        "version": 2,
        "kind": "signups",
        "campaign_id": f"su-{rid}",
        "title": f"rule {rid}",
        "condition": {"op": "eq", "attr": "email_domain", "value": "x.com"},
        "status": "shadow",
        "created_at": "2024-05-01T00:00:00+00:00",
        "expires_at": "2024-06-01T00:00:00+00:00",
        "backtest": {"expected_hits_per_day": 11, "traffic_share": 0.001},
        "provenance": {"run_id": "run-1", "shadow_reasons": []},
    }
    base.update(kw)
    return Rule(**base)


def _nights(
    rid: str, hits: list[int], forecast: float = 11.0, traffic: int = 10_000, end: str = TODAY
) -> list[RuleNight]:
    """One night per hit count, on consecutive dates ending at ``end``."""
    last = date.fromisoformat(end)
    days = [(last - timedelta(days=i)).isoformat() for i in range(len(hits) - 1, -1, -1)]
    return [RuleNight(rid, d, h, forecast, traffic) for d, h in zip(days, hits, strict=True)]


def test_a_shadow_rule_within_forecast_for_three_nights_is_promoted() -> None:
    out, events = apply_lifecycle([_rule()], _nights("r-a", [12, 9, 14]), TODAY, POLICY)
    assert (out[0].status, out[0].mode) == ("enforce", "enforce")
    assert events == [
        AuditEvent(
            rule_id="r-a",
            version=2,
            date=TODAY,
            from_status="shadow",
            to_status="enforce",
            actor="nightly-job",
            reason=events[0].reason,
        )
    ]
    reason = events[0].reason
    assert "shadow hits 12, 9, 14 within 2.0x forecast 11.0 for 3 nights" in reason
    assert "2024-05-06 to 2024-05-08" in reason
    assert "0.14%" in reason and "10.00%" in reason  # the worst night's share and the cap
    assert out[0].version == 2  # a status change is not a new version


def test_older_nights_outside_the_window_do_not_matter() -> None:
    nights = _nights("r-a", [500, 12, 9, 14])  # the first night is four nights ago
    out, _ = apply_lifecycle([_rule()], nights, TODAY, POLICY)
    assert out[0].status == "enforce"


def test_a_night_above_forecast_blocks_promotion() -> None:
    # 23 > 2.0 x 11
    out, events = apply_lifecycle([_rule()], _nights("r-a", [12, 23, 14]), TODAY, POLICY)
    assert (out[0].status, events) == ("shadow", [])
    out, _ = apply_lifecycle([_rule()], _nights("r-a", [12, 22, 14]), TODAY, POLICY)
    assert out[0].status == "enforce"  # exactly at the tolerance is within


def test_a_missing_night_blocks_promotion() -> None:
    nights = _nights("r-a", [12, 9, 14])
    gap = [nights[0], nights[2]]
    assert apply_lifecycle([_rule()], gap, TODAY, POLICY)[0][0].status == "shadow"
    short = _nights("r-a", [12, 9])
    assert apply_lifecycle([_rule()], short, TODAY, POLICY)[0][0].status == "shadow"
    not_tonight = _nights("r-a", [12, 9, 14], end="2024-05-07")
    assert apply_lifecycle([_rule()], not_tonight, TODAY, POLICY)[0][0].status == "shadow"
    other_rule = _nights("r-b", [12, 9, 14])
    assert apply_lifecycle([_rule()], other_rule, TODAY, POLICY)[0][0].status == "shadow"


def test_promote_after_nights_is_the_window() -> None:
    policy = LifecyclePolicy(promote_after_nights=5)
    assert apply_lifecycle([_rule()], _nights("r-a", [1] * 4), TODAY, policy)[0][0].status == (
        "shadow"
    )
    assert apply_lifecycle([_rule()], _nights("r-a", [1] * 5), TODAY, policy)[0][0].status == (
        "enforce"
    )


def test_a_small_forecast_counts_as_one() -> None:
    out, events = apply_lifecycle([_rule()], _nights("r-a", [2, 0, 1], forecast=0.0), TODAY, POLICY)
    assert out[0].status == "enforce"
    assert "within 2.0x forecast 0.0" in events[0].reason


def test_changing_forecasts_are_all_named() -> None:
    nights = [
        RuleNight("r-a", "2024-05-06", 10, 10.0, 10_000),
        RuleNight("r-a", "2024-05-07", 10, 12.5, 10_000),
        RuleNight("r-a", "2024-05-08", 10, 11.0, 10_000),
    ]
    _, events = apply_lifecycle([_rule()], nights, TODAY, POLICY)
    assert "forecasts 10.0, 12.5, 11.0" in events[0].reason


def test_a_night_over_the_blast_radius_cap_blocks_promotion() -> None:
    # within forecast (1,500 <= 2 x 1,000) but 15% of the night's rows
    nights = _nights("r-a", [1_000, 1_500, 1_000], forecast=1_000.0, traffic=10_000)
    out, events = apply_lifecycle([_rule()], nights, TODAY, POLICY)
    assert (out[0].status, events) == ("shadow", [])


def test_a_rule_the_guard_kept_in_shadow_is_never_promoted_by_traffic() -> None:
    for reasons in (
        ["precision 0.9100 < 0.98"],
        ["hits 12.00% of 2024-05-01's rows > blast-radius cap 10.00%"],
    ):
        rule = _rule(provenance={"shadow_reasons": reasons})
        out, events = apply_lifecycle([rule], _nights("r-a", [12, 9, 14]), TODAY, POLICY)
        assert (out[0].status, events) == ("shadow", [])
    no_provenance = _rule(provenance={})  # passed the guard before reasons were recorded
    out, _ = apply_lifecycle([no_provenance], _nights("r-a", [12, 9, 14]), TODAY, POLICY)
    assert out[0].status == "enforce"


@pytest.mark.parametrize("status", ["enforce", "canary"])
def test_a_rule_over_the_blast_radius_cap_tonight_is_demoted(status: str) -> None:
    rule = _rule(status=status)
    nights = [RuleNight("r-a", TODAY, 2_500, 11.0, 10_000)]
    out, events = apply_lifecycle([rule], nights, TODAY, POLICY)
    assert (out[0].status, out[0].mode) == ("shadow", "shadow")
    (event,) = events
    assert (event.from_status, event.to_status) == (status, "shadow")
    assert f"{status} hits 2500 of 10000 rows on {TODAY} = 25.00%" in event.reason
    assert "> blast-radius cap 10.00%" in event.reason


def test_an_enforced_rule_under_the_cap_or_without_figures_stays() -> None:
    rule = _rule(status="enforce")
    at_cap = [RuleNight("r-a", TODAY, 1_000, 11.0, 10_000)]  # exactly 10%
    yesterday = [RuleNight("r-a", "2024-05-07", 9_000, 11.0, 10_000)]
    for nights in (at_cap, yesterday, []):
        out, events = apply_lifecycle([rule], nights, TODAY, POLICY)
        assert (out[0].status, events) == ("enforce", [])


def test_expiry_at_or_before_the_end_of_today() -> None:
    rules = [
        _rule("r-a", expires_at="2024-05-08T12:00:00+00:00", status="enforce"),
        _rule("r-b", expires_at="2024-05-09T00:00:00+00:00"),  # the end of today: expired
        _rule("r-c", expires_at="2024-05-09T00:00:01+00:00"),
        _rule("r-d", expires_at="2024-05-03T00:00:00"),  # naive: UTC
        _rule("r-e", expires_at=""),  # no TTL
    ]
    nights = _nights("r-b", [12, 9, 14])  # expiry comes before promotion
    out, events = apply_lifecycle(rules, nights, TODAY, POLICY)
    assert [r.status for r in out] == ["expired", "expired", "shadow", "expired", "shadow"]
    assert [(e.rule_id, e.from_status, e.to_status) for e in events] == [
        ("r-a", "enforce", "expired"),
        ("r-b", "shadow", "expired"),
        ("r-d", "shadow", "expired"),
    ]
    assert events[0].reason == (
        "expires_at 2024-05-08T12:00:00+00:00 is at or before the end of 2024-05-08: expired"
    )
    assert [r.id for r in active(out)] == ["r-c", "r-e"]


def test_retired_rules_are_left_alone_and_not_active() -> None:
    rules = [
        _rule("r-a", status="disabled", expires_at="2024-05-01T00:00:00+00:00"),
        _rule("r-b", status="expired"),
    ]
    nights = _nights("r-a", [12, 9, 14]) + _nights("r-b", [12, 9, 14])
    out, events = apply_lifecycle(rules, nights, TODAY, POLICY)
    assert [r.status for r in out] == ["disabled", "expired"] and events == []
    assert active(out) == []


def test_inputs_are_not_mutated_and_outputs_are_copies() -> None:
    rules = [_rule("r-a"), _rule("r-b", status="enforce")]
    before = [r.to_dict() for r in rules]
    nights = [*_nights("r-a", [12, 9, 14]), RuleNight("r-b", TODAY, 5_000, 11.0, 10_000)]
    nights_before = list(nights)
    out, events = apply_lifecycle(rules, nights, TODAY, POLICY)
    assert [r.to_dict() for r in rules] == before
    assert nights == nights_before
    assert [r.status for r in out] == ["enforce", "shadow"] and len(events) == 2
    out[0].provenance["shadow_reasons"].append("x")
    assert rules[0].provenance["shadow_reasons"] == []


def test_rules_and_events_come_out_in_id_order() -> None:
    rules = [_rule(f"r-{c}") for c in "dbca"]
    nights = [n for c in "adcb" for n in _nights(f"r-{c}", [1, 1, 1])]
    out, events = apply_lifecycle(rules, nights, TODAY, POLICY)
    assert [r.id for r in out] == ["r-a", "r-b", "r-c", "r-d"]
    assert [e.rule_id for e in events] == ["r-a", "r-b", "r-c", "r-d"]
    again = apply_lifecycle(list(reversed(rules)), list(reversed(nights)), TODAY, POLICY)
    assert [r.to_dict() for r in again[0]] == [r.to_dict() for r in out]
    assert again[1] == events


def test_the_actor_is_the_policy_s() -> None:
    policy = LifecyclePolicy(actor="analyst:kim")
    _, events = apply_lifecycle([_rule()], _nights("r-a", [1, 1, 1]), TODAY, policy)
    assert events[0].actor == "analyst:kim"


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        apply_lifecycle([_rule()], [], "8 May 2024", POLICY)
    with pytest.raises(ValueError, match="more than one RuleNight"):
        apply_lifecycle([_rule()], _nights("r-a", [1]) * 2, TODAY, POLICY)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        RuleNight("r-a", "yesterday", 1, 1.0, 10)
    with pytest.raises(ValueError, match="hits and traffic"):
        RuleNight("r-a", TODAY, -1, 1.0, 10)
    with pytest.raises(ValueError, match="max_traffic_share"):
        LifecyclePolicy(max_traffic_share=0.0)
    with pytest.raises(ValueError, match="promote_after_nights"):
        LifecyclePolicy(promote_after_nights=0)
