"""Rule lifecycle: expiry, shadow-to-enforce promotion and blast-radius demotion, audited.

:func:`apply_lifecycle` looks at each rule and at its live figures of the last nights (hits,
the backtest's forecast, the rows of its kind) and moves it, at most once a night:

- **expired** when ``expires_at`` is at or before the end of ``today``: tonight's bundle is
  used until the next run, so a rule that expires during the day must not be published
  tonight. Expiry comes before everything else.
- **shadow -> enforce** when each of the last ``promote_after_nights`` nights (consecutive
  dates ending today, none missing) had at most ``forecast_tolerance * max(forecast, 1)`` hits
  and hit at most ``max_traffic_share`` of its kind's rows. Only a rule whose backtest passed
  the guard may be promoted: one with any ``provenance["shadow_reasons"]``
  (:func:`anomaly.campaign_rules.rules_for_campaigns` records why the guard kept it in
  shadow) never is. Live hit counts cannot tell a campaign's rows from benign ones, so they
  are no evidence of precision, and a backtest that broke the blast-radius cap on some day is
  not cleared by a few quiet nights either. What is promoted is a rule that passed the guard
  but was held in shadow (shadow before enforce, or demoted earlier by this module).
- **enforce / canary -> shadow** when tonight's hits exceed ``max_traffic_share`` of tonight's
  rows of its kind. The guard is untouched, so a demoted rule may be promoted again after
  ``promote_after_nights`` nights back under the cap.

``disabled`` and ``expired`` rules are left alone (a person disabled the one; the other is
history). A status change never changes a rule's ``version``: the version names what a rule
matches and does (:func:`anomaly.bundle_history.carry_versions`). Every change is an
:class:`AuditEvent` whose reason states the figures it was decided on.
"""

from __future__ import annotations

import copy
import logging
import math
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from anomaly.rules import Rule

log = logging.getLogger(__name__)

__all__ = ["AuditEvent", "LifecyclePolicy", "RuleNight", "active", "apply_lifecycle"]

_RETIRED = ("expired", "disabled")  # statuses that match nothing and are never changed here


@dataclass(frozen=True)
class LifecyclePolicy:
    """When a rule is promoted or demoted, and who is named as doing it.

    Attributes
    ----------
    promote_after_nights : int
        Consecutive nights, ending today, a shadow rule must stay within forecast.
    forecast_tolerance : float
        A night's hits are within forecast when at most this times ``max(forecast, 1)``.
    max_traffic_share : float
        Blast-radius cap: the share of a night's rows of its kind a rule may hit.
    actor : str
        Recorded in every audit event.
    """

    promote_after_nights: int = 3
    forecast_tolerance: float = 2.0
    max_traffic_share: float = 0.1
    actor: str = "nightly-job"

    def __post_init__(self) -> None:
        if self.promote_after_nights < 1:
            raise ValueError(f"promote_after_nights {self.promote_after_nights!r} must be >= 1")
        if not self.forecast_tolerance > 0:
            raise ValueError(f"forecast_tolerance {self.forecast_tolerance!r} must be > 0")
        if not 0 < self.max_traffic_share <= 1:
            raise ValueError(f"max_traffic_share {self.max_traffic_share!r} must be in (0, 1]")


@dataclass(frozen=True)
class RuleNight:
    """One rule's live figures for one night.

    Attributes
    ----------
    rule_id : str
    date : str
        YYYY-MM-DD.
    hits : int
        Rows of its kind the rule matched that night.
    forecast : float
        Expected hits per day, from the rule's backtest (``expected_hits_per_day``).
    traffic : int
        Rows of the rule's kind that night.
    """

    rule_id: str
    date: str
    hits: int
    forecast: float
    traffic: int

    def __post_init__(self) -> None:
        _parse_day(self.date)
        if self.hits < 0 or self.traffic < 0:
            raise ValueError(f"rule {self.rule_id!r} on {self.date}: hits and traffic must be >= 0")
        if not (math.isfinite(self.forecast) and self.forecast >= 0):
            raise ValueError(f"rule {self.rule_id!r} on {self.date}: forecast must be >= 0")

    @property
    def share(self) -> float:
        """Hits / traffic (0 for a night without rows or hits)."""
        if self.traffic == 0:
            return 0.0 if self.hits == 0 else math.inf
        return self.hits / self.traffic


@dataclass(frozen=True)
class AuditEvent:
    """One status change of one rule."""

    rule_id: str
    version: int
    date: str
    from_status: str
    to_status: str
    actor: str
    reason: str


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValueError(f"{text!r} is not a YYYY-MM-DD date") from None


def _num(x: float) -> str:
    return str(round(float(x), 3))


# --------------------------------------------------------------------------- decisions


def _expiry(rule: Rule, day: date) -> str | None:
    end_of_day = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    if not rule.expired(end_of_day):
        return None
    return f"expires_at {rule.expires_at} is at or before the end of {day.isoformat()}: expired"


def _demotion(rule: Rule, tonight: RuleNight | None, policy: LifecyclePolicy) -> str | None:
    if tonight is None or tonight.share <= policy.max_traffic_share:
        return None
    return (
        f"{rule.status} hits {tonight.hits} of {tonight.traffic} rows on {tonight.date} = "
        f"{tonight.share:.2%} > blast-radius cap {policy.max_traffic_share:.2%}: "
        "demoted to shadow"
    )


def _passed_guard(rule: Rule) -> bool:
    return not rule.provenance.get("shadow_reasons")


def _promotion(
    rule: Rule, nights: dict[str, RuleNight], day: date, policy: LifecyclePolicy
) -> str | None:
    if not _passed_guard(rule):
        return None
    n = policy.promote_after_nights
    dates = [(day - timedelta(days=i)).isoformat() for i in range(n - 1, -1, -1)]
    got = [w for d in dates if (w := nights.get(d)) is not None]
    if len(got) < n:  # a missing night proves nothing
        return None
    tol = policy.forecast_tolerance
    if any(w.hits > tol * max(w.forecast, 1.0) for w in got):
        return None
    if any(w.share > policy.max_traffic_share for w in got):
        return None
    forecasts = sorted({w.forecast for w in got})
    said = (
        f"forecast {_num(forecasts[0])}"
        if len(forecasts) == 1
        else f"forecasts {', '.join(_num(w.forecast) for w in got)}"
    )
    return (
        f"shadow hits {', '.join(str(w.hits) for w in got)} within {_num(tol)}x {said} "
        f"for {n} nights ({dates[0]} to {dates[-1]}), traffic share at most "
        f"{max(w.share for w in got):.2%} <= blast-radius cap {policy.max_traffic_share:.2%}: "
        "promoted"
    )


def _decide(
    rule: Rule, nights: dict[str, RuleNight], day: date, policy: LifecyclePolicy
) -> tuple[str, str] | None:
    """(new status, reason), or None to leave the rule as it is."""
    if rule.status in _RETIRED:
        return None
    if reason := _expiry(rule, day):
        return "expired", reason
    if rule.status in ("enforce", "canary"):
        if reason := _demotion(rule, nights.get(day.isoformat()), policy):
            return "shadow", reason
    elif rule.status == "shadow" and (reason := _promotion(rule, nights, day, policy)):
        return "enforce", reason
    return None


def _nights_by_rule(nights: list[RuleNight]) -> dict[str, dict[str, RuleNight]]:
    twice = [k for k, c in Counter((n.rule_id, n.date) for n in nights).items() if c > 1]
    if twice:
        raise ValueError(f"more than one RuleNight for (rule_id, date) {sorted(twice)}")
    out: dict[str, dict[str, RuleNight]] = {}
    for n in nights:
        out.setdefault(n.rule_id, {})[n.date] = n
    return out


# --------------------------------------------------------------------------- API


def apply_lifecycle(
    rules: list[Rule], nights: list[RuleNight], today: str, policy: LifecyclePolicy
) -> tuple[list[Rule], list[AuditEvent]]:
    """Move rules through their lifecycle for the night of ``today`` (module docstring).

    Parameters
    ----------
    rules : list of Rule, length n_rules
        Not modified.
    nights : list of RuleNight
        Live figures, any number per rule (at most one per rule and date); nights of rules
        not in ``rules`` are ignored.
    today : str
        YYYY-MM-DD, the night being processed.
    policy : LifecyclePolicy

    Returns
    -------
    rules : list of Rule, length n_rules
        Copies with their new statuses (``mode`` kept in step), sorted by id then version;
        expired ones included (see :func:`active`).
    events : list of AuditEvent
        One per change, in the same order.

    Raises
    ------
    ValueError
        ``today`` is not a date, or two RuleNights share a rule id and date.
    """
    day = _parse_day(today)
    by_rule = _nights_by_rule(nights)
    out: list[Rule] = []
    events: list[AuditEvent] = []
    for rule in sorted(rules, key=lambda r: (r.id, r.version)):
        new = copy.deepcopy(rule)
        change = _decide(new, by_rule.get(rule.id, {}), day, policy)
        if change is not None:
            status, reason = change
            events.append(
                AuditEvent(rule.id, rule.version, today, rule.status, status, policy.actor, reason)
            )
            new.set_status(status)
        out.append(new)
    moves = Counter(e.to_status for e in events)
    log.info(
        "lifecycle %s: %d rules, %d promoted, %d demoted, %d expired",
        today,
        len(out),
        moves["enforce"],
        moves["shadow"],
        moves["expired"],
    )
    return out, events


def active(rules: list[Rule]) -> list[Rule]:
    """The rules that may be published: all but ``expired`` and ``disabled`` ones, in order."""
    return [r for r in rules if r.status not in _RETIRED]
