"""From flagged campaigns to guarded, versioned rules.

Each flagged campaign gets up to ``rules_per_campaign`` rules over disjoint attributes
(:mod:`anomaly.induction`). Every rule is backtested on all of the run's rows with the shipped
evaluator, and guarded: it is enforced only when the Wilson 95% lower bound of its precision
clears the floor and it hits at most ``max_traffic_share`` of the rows (blast radius);
otherwise it ships in shadow mode with the reason recorded.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from anomaly.induction import GreedyRuleInducer, InducedRule
from anomaly.rules import Rule, evaluate
from anomaly.stats import wilson_lower

log = logging.getLogger(__name__)

__all__ = ["Guard", "campaign_id_for", "rule_id_for", "rules_for_campaigns"]


def _digest(*parts: str, n: int = 12) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:n]


def campaign_id_for(kind: str, member_ids: list[str] | np.ndarray) -> str:
    """Deterministic campaign id from the kind and the sorted member ids."""
    return f"{kind[:2]}-{_digest(kind, *sorted(map(str, member_ids)))}"


def rule_id_for(kind: str, campaign_id: str, attributes: tuple[str, ...]) -> str:
    """Deterministic rule id: the campaign and the attributes the rule is built on."""
    return f"r-{_digest(kind, campaign_id, *sorted(attributes))}"


def _condition_text(cond: dict[str, Any]) -> str:
    op = cond["op"]
    if op == "and":
        return " and ".join(_condition_text(c) for c in cond["args"])
    if op == "or":
        return "(" + " or ".join(_condition_text(c) for c in cond["args"]) + ")"
    if op == "eq":
        return f"{cond['attr']} = {json.dumps(cond['value'], ensure_ascii=False)}"
    if op == "in":
        vals = cond["values"]
        shown = ", ".join(json.dumps(v, ensure_ascii=False) for v in vals[:3])
        more = f", +{len(vals) - 3}" if len(vals) > 3 else ""
        return f"{cond['attr']} in [{shown}{more}]"
    if op == "range":
        return f"{cond['attr']} in [{cond.get('min')}, {cond.get('max')}]"
    return f"{cond.get('attr')} {op} {cond.get('value', cond.get('pattern'))!r}"


@dataclass(frozen=True)
class Guard:
    """When a rule may block, and for how long.

    A rule is enforced only when all hold, otherwise it ships in shadow mode with the reasons:

    - its precision (hits on flagged campaigns / all hits) clears ``enforce_precision``. A
      point estimate, not a confidence bound: a bound on precision is a bound on the number
      of hits (0.98 at 95% needs about 190 clean hits), so it let a campaign's size, not its
      evidence, decide enforcement. The uncertainty about innocent hits is carried by the
      background, where the sample is the whole night: the two conditions below;
    - the Wilson 95% lower bound of the share of tonight's background it leaves alone clears
      ``enforce_background_lower``: a rule may not touch more than a sliver of ordinary traffic,
      however large its campaign. Checked where the rule hits the background at all: with no
      hit the bound is a bound on the night's size, not on the rule;
    - on tonight's data and on every earlier day given, it hits at most ``max_traffic_share``
      of the rows (blast radius);
    - its expected background hits per night, estimated among its near misses
      (:meth:`anomaly.induction.GreedyRuleInducer._add_margin`), stay at most
      ``max_expected_background``: no hit tonight does not prove a rule that strays daily.
    """

    enforce_precision: float = 0.98
    max_expected_background: float = 0.25
    enforce_background_lower: float = 0.999
    max_traffic_share: float = 0.1
    ttl_days: int = 7
    action: str = "block"


def rules_for_campaigns(
    kind: str,
    attrs: pd.DataFrame,
    event_entity: pd.Series,
    campaigns: pd.DataFrame,
    members: dict[str, np.ndarray],
    *,
    run_id: str,
    created_at: datetime,
    code_version: str,
    parameters: dict[str, Any],
    inducer: GreedyRuleInducer | None = None,
    guard: Guard | None = None,
    history: list[tuple[str, pd.DataFrame]] | None = None,
    unsure: dict[str, np.ndarray] | None = None,
) -> list[Rule]:
    """Induce, backtest and guard rules for every flagged campaign.

    Parameters
    ----------
    kind : str
    attrs : DataFrame of shape (n_events, n_attributes)
        Attributes of every event row of the run (allowlisted rows already removed: no rule
        can hit them, so they count neither for nor against one).
    event_entity : Series of shape (n_events,)
        Entity id of each event row (normalised as in the entity table).
    campaigns : DataFrame
        One row per cluster with ``campaign_id`` and ``flagged``.
    members : dict
        campaign id -> entity ids of its members.
    inducer : GreedyRuleInducer, optional
    guard : Guard, optional
    history : list of (day, attributes), optional
        Earlier days' rows (attributes as from ``compute_attributes``): every rule is
        backtested on them (hits per day) and held to the blast-radius cap on each.
    unsure : dict, optional
        campaign id -> entity ids that may or may not be its own (members holding none of
        the values that make it a campaign): for its rules, neither campaign nor background.

    Returns
    -------
    list of Rule, sorted by id.
    """
    inducer = inducer or GreedyRuleInducer(kind)
    guard = guard or Guard()
    # entity ids as integer codes: membership tests over a million rows stay hash lookups
    codes, uniques = pd.factorize(event_entity.astype("string"), use_na_sentinel=False)
    n_rows = len(attrs)
    # every entity weighs 1 in coverage and recall, however many rows (messages) it has
    counts = np.bincount(codes, minlength=len(uniques))
    weights = 1.0 / counts[codes]
    out: list[Rule] = []
    flagged_ids = sorted({str(c) for c in campaigns.loc[campaigns["flagged"], "campaign_id"]})
    lookup = pd.Index(uniques)
    rows_of = {}
    for cid in flagged_ids:
        held = lookup.get_indexer(pd.Index(members[cid]).astype("string"))
        is_member = np.zeros(len(uniques), dtype=bool)
        is_member[held[held >= 0]] = True
        rows_of[cid] = is_member[codes]
    any_flagged = np.logical_or.reduce(list(rows_of.values())) if rows_of else None
    seen: set[str] = set()
    for cid in flagged_ids:
        positive = rows_of[cid]
        # Other flagged campaigns are neither target nor background: a rule that also covers
        # another fragment of the same actor has no false positive there.
        ignore = any_flagged & ~positive if any_flagged is not None else None
        if unsure and cid in unsure and len(unsure[cid]):
            held = lookup.get_indexer(pd.Index(unsure[cid]).astype("string"))
            maybe = np.zeros(len(uniques), dtype=bool)
            maybe[held[held >= 0]] = True
            positive = positive & ~maybe[codes]
            ignore = (ignore if ignore is not None else np.zeros(n_rows, dtype=bool)) | maybe[codes]
        for found in inducer.induce(attrs, positive, ignore, weights):
            key = json.dumps(found.condition, sort_keys=True)
            if key in seen:  # two fragments of one actor found the same rule
                continue
            seen.add(key)
            earlier = [
                {"day": day, "rows": len(a), "hits": int(evaluate(found.condition, a).sum())}
                for day, a in (history or [])
            ]
            out.append(
                _to_rule(
                    kind,
                    cid,
                    found,
                    n_rows=n_rows,
                    earlier=earlier,
                    run_id=run_id,
                    created_at=created_at,
                    code_version=code_version,
                    parameters=parameters,
                    guard=guard,
                )
            )
    out.sort(key=lambda r: r.id)
    log.info(
        "%s: %d rules (%d enforce, %d shadow)",
        kind,
        len(out),
        sum(r.mode == "enforce" for r in out),
        sum(r.mode == "shadow" for r in out),
    )
    return out


def _to_rule(
    kind: str,
    cid: str,
    found: InducedRule,
    *,
    n_rows: int,
    earlier: list[dict[str, Any]],
    run_id: str,
    created_at: datetime,
    code_version: str,
    parameters: dict[str, Any],
    guard: Guard,
) -> Rule:
    share = found.hits / n_rows if n_rows else 0.0
    bg = found.background_size
    background_lower = wilson_lower(bg - found.false_positives, bg)
    reasons = []
    if found.precision < guard.enforce_precision:
        reasons.append(f"precision {found.precision:.4f} < {guard.enforce_precision}")
    # With no background hit the bound only restates the night's size (0.999 needs about
    # 3,840 background rows): the near-miss estimate below decides instead.
    if background_lower < guard.enforce_background_lower and found.false_positives > 0:
        reasons.append(
            f"share of background left alone, lower bound {background_lower:.5f} < "
            f"{guard.enforce_background_lower}"
        )
    for day in [{"day": "tonight", "rows": n_rows, "hits": found.hits}, *earlier]:
        day_share = day["hits"] / day["rows"] if day["rows"] else 0.0
        if day_share > guard.max_traffic_share:
            reasons.append(
                f"hits {day_share:.2%} of {day['day']}'s rows > blast-radius cap "
                f"{guard.max_traffic_share:.2%}"
            )
    if found.expected_background > guard.max_expected_background:
        reasons.append(
            f"expected background hits {found.expected_background:.2f} a night > "
            f"{guard.max_expected_background}"
        )
    mode = "shadow" if reasons else "enforce"
    backtest = {
        "population": n_rows,
        "hits": found.hits,
        "campaign_hits": found.true_positives,
        "other_campaign_hits": found.other_hits,
        "background_hits": found.false_positives,
        "background_size": bg,
        "background_lower": round(background_lower, 6),
        "campaign_size": found.campaign_size,
        "precision": round(found.precision, 6),
        "precision_lower": round(found.precision_lower, 6),
        "recall": round(found.recall, 6),
        "traffic_share": round(share, 6),
        "expected_hits_per_day": found.hits,
        "expected_background_hits_per_day": round(found.expected_background, 6),
        "earlier_days": earlier,
    }
    return Rule(
        id=rule_id_for(kind, cid, found.attributes),
        version=1,
        kind=kind,
        campaign_id=cid,
        title=f"{kind} campaign {cid}: {_condition_text(found.condition)}",
        condition=found.condition,
        action=guard.action,
        mode=mode,
        created_at=created_at.isoformat(),
        expires_at=(created_at + timedelta(days=guard.ttl_days)).isoformat(),
        backtest=backtest,
        provenance={
            "run_id": run_id,
            "code_version": code_version,
            "inducer": "greedy-precision-first",
            "durability_tier": found.tier,
            "shadow_reasons": reasons,
            "parameters": parameters,
        },
    )
