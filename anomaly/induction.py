"""Rule induction: a short, precise conjunction that covers one campaign.

Greedy and precision-first (REFERENCES.md, "Turning a cluster into a rule"): candidates come only
from values seen in the campaign; each step adds the predicate that removes the most background
hits while the rule still covers at least ``min_recall`` of the campaign; predicates that no
longer remove anything are dropped. Precision is measured on the whole background, never a
sample: rare false positives vanish from samples.

Actors rotate their most visible signal once blocked, so the inducer first tries only durable
attributes (shapes, classes, builds, numeric ranges) and falls back to exact values (domains,
subnets, device ids) only where durable ones cannot reach the precision floor; and it induces
several rules per campaign over disjoint attributes, each precise on its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from anomaly.rules import evaluate
from anomaly.stats import wilson_lower
from clustering.kinds import SpecView

log = logging.getLogger(__name__)

__all__ = ["RULE_ATTRIBUTES", "GreedyRuleInducer", "InducedRule"]

# Per kind, from its entity spec (clustering/specs/*.toml for the built-in kinds):
# attribute -> (predicate family, durability tier); tier 1 is what an actor cannot cheaply
# change.
RULE_ATTRIBUTES: SpecView[dict[str, tuple[str, int]]] = SpecView(lambda s: s.rule_attributes)
# Attributes every filter reads from the raw event (mail filters: sender, X-Mailer): a margin
# drawn from them keeps a rule exportable where a derived one would not.
_PORTABLE: SpecView[frozenset[str]] = SpecView(lambda s: s.portable)
# What an actor rotates first, night to night: where it connects from and where its links
# point. Durable enough for a rule, too changeable for its margin.
_ROTATED_FIRST: SpecView[frozenset[str]] = SpecView(lambda s: s.rotated_first)
# What an actor changes each attribute with (its name template, its client, its network);
# an attribute no family lists is a family of its own.
_RULE_FAMILIES: SpecView[dict[str, str]] = SpecView(lambda s: s.rule_families)
# A margin names what the whole campaign shares; a long list of values (the shapes of
# random usernames) memorises tonight's members instead.
_MAX_MARGIN_VALUES = 8


# An exact attribute and the coarser one it refines: where a lone exact predicate's near
# misses live.
_COARSER: SpecView[dict[str, str]] = SpecView(lambda s: s.coarser)


@dataclass
class InducedRule:
    """A rule found for one campaign, with its figures on the data it was learned from."""

    condition: dict[str, Any]
    attributes: tuple[str, ...]
    true_positives: int
    false_positives: int
    campaign_size: int
    background_size: int
    tier: int
    other_hits: int = 0  # hits on ignored rows (other flagged campaigns)
    core_attributes: tuple[str, ...] = ()  # the signal, without the safety margin
    expected_background: float = 0.0  # estimated background hits per run (see _add_margin)
    weighted_recall: float | None = None  # recall in entity weights, when rows were weighted

    @property
    def hits(self) -> int:
        """Every row the rule matches."""
        return self.true_positives + self.other_hits + self.false_positives

    @property
    def precision(self) -> float:
        """Share of hits on flagged campaigns (this one or another)."""
        return (self.hits - self.false_positives) / self.hits if self.hits else 0.0

    @property
    def precision_lower(self) -> float:
        return wilson_lower(self.hits - self.false_positives, self.hits)

    @property
    def recall(self) -> float:
        """Share of the campaign covered (in entity weights when rows were weighted)."""
        if self.weighted_recall is not None:
            return self.weighted_recall
        return self.true_positives / self.campaign_size if self.campaign_size else 0.0


@dataclass
class _Candidate:
    attr: str
    tier: int
    condition: dict[str, Any]
    mask: np.ndarray
    margin: bool = False  # added for safety, not part of the rule's core signal


@dataclass
class _Call:
    """Working state of one :meth:`GreedyRuleInducer.induce` call (the inducer keeps none)."""

    w: np.ndarray  # row weights for coverage and recall
    candidates: list[_Candidate]
    used: set[str]  # core attributes of the campaign's rules so far
    kind: str = ""
    margins: set[str] = field(default_factory=set)  # margin attributes of those rules
    avoid: set[str] = field(default_factory=set)  # families the rule being built may not use


class GreedyRuleInducer:
    """Induce precise conjunctive rules for one campaign against the background.

    Parameters
    ----------
    kind : str
        Entity kind; selects the attributes in :data:`RULE_ATTRIBUTES`.
    min_recall : float
        Share of the campaign a rule must keep covering.
    value_coverage : float
        An ``in`` candidate lists the campaign's most frequent values until they cover this
        share of it.
    max_values : int
        Longest ``in`` list; an attribute needing more values is no candidate.
    max_predicates : int
    n_rules : int
        Rules per campaign, over disjoint attribute sets.
    min_precision : float
        A rule whose precision on the learning data is below this is not returned.
    safety_hits : float
        Expected background hits per run (independence estimate, see ``_add_margin``) below
        which a rule needs no further predicate; 0 turns the margin off.
    max_expected_background : float
        The rule gate's ceiling on expected background hits
        (:class:`anomaly.campaign_rules.Guard`): once a rule is within it, no exact value
        from a family the rule does not use yet is added as a safety margin.
    enforce_precision : float
        The rule gate's precision floor. With ``max_expected_background`` it says which rules
        the gate would enforce: a durable rule it would keep in shadow loses to an exact one
        it would enforce, and the family-disjoint rule must pass both.
    """

    def __init__(
        self,
        kind: str,
        min_recall: float = 0.9,
        value_coverage: float = 0.97,
        max_values: int = 40,
        max_predicates: int = 4,
        n_rules: int = 3,
        min_precision: float = 0.95,
        safety_hits: float = 0.05,
        max_expected_background: float = 0.25,
        enforce_precision: float = 0.98,
    ) -> None:
        self.kind = kind
        self.min_recall = min_recall
        self.value_coverage = value_coverage
        self.max_values = max_values
        self.max_predicates = max_predicates
        self.n_rules = n_rules
        self.min_precision = min_precision
        self.safety_hits = safety_hits
        self.max_expected_background = max_expected_background
        self.enforce_precision = enforce_precision

    def induce(
        self,
        attrs: pd.DataFrame,
        positive: np.ndarray,
        ignore: np.ndarray | None = None,
        weights: np.ndarray | None = None,
    ) -> list[InducedRule]:
        """Rules covering the rows where ``positive`` is true.

        Parameters
        ----------
        attrs : DataFrame of shape (n_rows, n_attributes)
            Attributes of every row: the campaign and the whole background.
        positive : ndarray of bool, shape (n_rows,)
            The campaign's rows.
        ignore : ndarray of bool, shape (n_rows,), optional
            Rows that are neither campaign nor background: other flagged campaigns, often
            fragments of the same actor, whose hits are no false positives.
        weights : ndarray of float, shape (n_rows,), optional
            Weight of each row in coverage and recall. With one row per message and the
            sender as the entity, ``1 / messages of its sender`` makes a rule cover most
            *senders* of the campaign, so five chatty senders that clustering swept in cannot
            put their subjects into the rule.

        Returns
        -------
        list of InducedRule
            At most ``n_rules``, best first; possibly empty.
        """
        positive = np.asarray(positive, dtype=bool)
        if positive.shape != (len(attrs),):
            raise ValueError("positive must have one entry per row of attrs")
        if not positive.any():
            return []
        neg = ~positive
        if ignore is not None:
            neg &= ~np.asarray(ignore, dtype=bool)
        w = np.ones(len(attrs)) if weights is None else np.asarray(weights, dtype=np.float64)
        ctx = _Call(w=w, candidates=[], used=set(), kind=self.kind)
        ctx.candidates = self._candidates(ctx, attrs, positive)
        rules: list[InducedRule] = []
        # Families the rules so far use, all of them and those every rule relies on. An
        # actor that changes one family (a new browser build, a new name template) takes
        # down every rule that uses it, so the next rule first tries to do without all of
        # them, then without those every rule relies on, then without one of those; a rule
        # that avoids them is taken only where it costs nothing: as precise as the best
        # rule without the constraint, and as safe (expected background hits under the
        # margin's target, or no more than that rule's). Taking it wherever the gate would
        # still enforce it was measured on 13 independent worlds: no signup recall gained,
        # and one world's sender recall fell from 0.985 to 0.691.
        used_families: set[str] = set()
        relied: set[str] | None = None
        for _ in range(self.n_rules):
            pool = [c for c in ctx.candidates if c.attr not in ctx.used]
            rule = self._best_rule(ctx, pool, attrs, positive, neg)
            if rule is None or rule.precision < self.min_precision:
                break
            for avoid in _avoid_options(used_families, relied)[:-1]:
                ctx.avoid = avoid
                allowed = [c for c in pool if self._family(c.attr) not in avoid]
                robust = self._best_rule(ctx, allowed, attrs, positive, neg)
                ctx.avoid = set()
                if (
                    robust is not None
                    and robust.precision >= rule.precision
                    and robust.expected_background
                    <= max(rule.expected_background, self.safety_hits)
                ):
                    rule = robust
                    break
            rules.append(rule)
            # margins count here (a rotated margin value takes its rule down as surely), but
            # are drawn from any family: a margin kept from every family the core avoids
            # memorised tonight's members
            families = {self._family(a) for a in rule.attributes}
            used_families |= families
            relied = families if relied is None else relied & families
            ctx.used.update(rule.core_attributes)
            ctx.margins.update(set(rule.attributes) - set(rule.core_attributes))
        return self._with_disjoint(ctx, rules, attrs, positive, neg)

    def _gated(self, rule: InducedRule) -> bool:
        """Would the rule gate enforce ``rule`` on tonight's figures?"""
        return (
            rule.precision >= self.enforce_precision
            and rule.expected_background <= self.max_expected_background
        )

    def _with_disjoint(
        self,
        ctx: _Call,
        rules: list[InducedRule],
        attrs: pd.DataFrame,
        positive: np.ndarray,
        neg: np.ndarray,
    ) -> list[InducedRule]:
        """``rules`` with two of them over disjoint families, where the data allows.

        The loop above takes a rule that avoids the families used so far only where it costs
        nothing, so a campaign whose best evidence is all in one family (its client build)
        can end with every rule using it, and one new build takes all of them down. Here a
        rule that uses none of the families of one of the rules is searched among the other
        families alone (margins included), with a signal (core) no rule uses yet, and kept
        when the gate would enforce it; it takes the last slot that is not the rule it avoids.
        """
        if not rules or self.n_rules < 2:
            return rules
        fams = [{self._family(a) for a in r.attributes} for r in rules]
        gated = [self._gated(r) for r in rules]
        if any(
            gated[i] and gated[j] and not (fams[i] & fams[j])
            for i in range(len(rules))
            for j in range(i + 1, len(rules))
        ):
            return rules
        everything, used = ctx.candidates, ctx.used
        # its signal is new: a rule that re-margins one it replaces (tonight's mailboxes
        # with the captcha band instead of the client's OS) is no independent evidence, and
        # is less safe than the rule it replaces
        for i in range(len(rules)):
            if not gated[i]:
                continue
            slot = (
                len(rules)
                if len(rules) < self.n_rules
                else max(j for j in range(len(rules)) if j != i)
            )
            allowed = [c for c in everything if self._family(c.attr) not in fams[i]]
            pool = [c for c in allowed if c.attr not in used]
            # margins may be the other rules' (only their signal must differ)
            ctx.candidates, ctx.avoid, ctx.used = allowed, fams[i], set()
            try:
                robust = self._best_rule(ctx, pool, attrs, positive, neg)
            finally:
                ctx.candidates, ctx.avoid, ctx.used = everything, set(), used
            if robust is not None and self._gated(robust):
                return [*rules[:slot], robust, *rules[slot + 1 :]]
        return rules

    def _family(self, attr: str) -> str:
        return _RULE_FAMILIES[self.kind].get(attr, attr)

    def _best_rule(
        self,
        ctx: _Call,
        pool: list[_Candidate],
        attrs: pd.DataFrame,
        positive: np.ndarray,
        neg: np.ndarray,
    ) -> InducedRule | None:
        """The most precise rule from ``pool``: durable attributes first, exact values only
        where they are clearly more precise."""
        rule = None
        for tier in (1, 2):
            chosen, estimate = self._greedy(ctx, [c for c in pool if c.tier <= tier], positive, neg)
            if not chosen:
                continue
            found = self._finish(ctx, chosen, attrs, positive, neg)
            found.expected_background = estimate
            # exact values only where clearly more precise, or where the gate would enforce
            # them and not the durable rule: a rule kept in shadow blocks nothing tomorrow
            if (
                rule is None
                or found.precision_lower > rule.precision_lower + 0.005
                or (self._gated(found) and not self._gated(rule))
            ):
                rule = found
            if rule.precision >= 0.999 and self._gated(rule):
                break
        return rule

    def _candidates(
        self, ctx: _Call, attrs: pd.DataFrame, positive: np.ndarray
    ) -> list[_Candidate]:
        out: list[_Candidate] = []
        for attr, (family, tier) in RULE_ATTRIBUTES[self.kind].items():
            if attr not in attrs:
                continue
            col = attrs[attr]
            present = positive & col.notna().to_numpy()
            if ctx.w[present].sum() < self.min_recall * ctx.w[positive].sum():
                continue  # too often missing in the campaign to carry a rule
            if family == "in":
                cand = self._in_candidate(attr, tier, col, ctx.w, present)
            else:
                cand = self._range_candidate(attr, tier, col, ctx.w, present)
            if cand is not None:
                out.append(cand)
        return out

    def _in_candidate(
        self, attr: str, tier: int, col: pd.Series, weights: np.ndarray, present: np.ndarray
    ) -> _Candidate | None:
        frame = pd.DataFrame({"v": col[present].to_numpy(), "n": weights[present]})
        counts = frame.groupby("v", sort=False)["n"].sum().reset_index()
        counts = counts.sort_values(["n", "v"], ascending=[False, True], kind="stable")
        total = float(counts["n"].sum())
        # A value one entity holds is that entity's, not the campaign's: a list of them (the
        # members' own mailboxes, tonight's one-use devices) memorises tonight's members and
        # blocks nobody tomorrow. Only values the campaign shares are listed, and they must
        # cover enough of it.
        shared = counts[counts["n"] > 1 + 1e-9]
        if shared["n"].sum() < self.min_recall * total:
            return None
        counts = shared
        cum = counts["n"].cumsum().to_numpy()
        need = int(np.searchsorted(cum, self.value_coverage * total - 1e-9) + 1)
        need = min(need, len(counts))
        if need > self.max_values:
            # the longest list still carries a rule if it keeps the recall a rule needs
            if cum[self.max_values - 1] < self.min_recall * total:
                return None
            need = self.max_values
        values = sorted(_native(v) for v in counts["v"].iloc[:need])
        mask = col.isin(values).fillna(False).to_numpy(dtype=bool)
        cond = (
            {"op": "eq", "attr": attr, "value": values[0]}
            if len(values) == 1
            else {"op": "in", "attr": attr, "values": values}
        )
        return _Candidate(attr, tier, cond, mask)

    def _range_candidate(
        self, attr: str, tier: int, col: pd.Series, weights: np.ndarray, present: np.ndarray
    ) -> _Candidate | None:
        v = pd.to_numeric(col[present], errors="coerce").astype("float64").to_numpy()
        w = weights[present]
        ok = ~np.isnan(v)
        if not ok.any():
            return None
        tail = (1 - self.value_coverage) / 2
        lo, hi = np.quantile(v[ok], [tail, 1 - tail], method="inverted_cdf", weights=w[ok])
        integer = pd.api.types.is_integer_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype)
        lo_v: float | int = int(lo) if integer else float(lo)
        hi_v: float | int = int(hi) if integer else float(hi)
        full = pd.to_numeric(col, errors="coerce").astype("float64").to_numpy(na_value=np.nan)
        with np.errstate(invalid="ignore"):
            mask = (full >= lo_v) & (full <= hi_v)
        cond = {"op": "range", "attr": attr, "min": lo_v, "max": hi_v}
        return _Candidate(attr, tier, cond, mask)

    def _greedy(
        self, ctx: _Call, pool: list[_Candidate], positive: np.ndarray, neg: np.ndarray
    ) -> tuple[list[_Candidate], float]:
        wpos = np.where(positive, ctx.w, 0.0)
        need = self.min_recall * wpos.sum() - 1e-9
        cur = np.ones(len(positive), dtype=bool)
        cur_fp = int(neg.sum())
        chosen: list[_Candidate] = []
        while len(chosen) < self.max_predicates and cur_fp > 0:
            best: tuple[int, float, int, str] | None = None
            best_c: _Candidate | None = None
            for c in pool:
                if any(c.attr == ch.attr for ch in chosen):
                    continue
                new = cur & c.mask
                tp = float(wpos[new].sum())
                if tp < need:
                    continue
                fp = int(np.count_nonzero(new & neg))
                key = (cur_fp - fp, tp, -c.tier, c.attr)
                if key[0] > 0 and (best is None or key[:3] > best[:3]):
                    best, best_c = key, c
            if best_c is None:
                break
            chosen.append(best_c)
            cur &= best_c.mask
            cur_fp = int(np.count_nonzero(cur & neg))
        chosen = _prune(chosen, neg)
        if not chosen:
            return chosen, 0.5
        anchor, estimate = _core_estimate(ctx, chosen, neg)
        if self.safety_hits > 0:
            chosen, estimate = self._add_margin(ctx, chosen, anchor, estimate, wpos, need, neg)
            # margins multiply the core's estimate by rates among near misses; whatever they
            # say, a rule expects at least the background rows it hits tonight
            hits = int(np.count_nonzero(np.logical_and.reduce([c.mask for c in chosen]) & neg))
            estimate = max(estimate, float(hits))
        return chosen, estimate

    def _add_margin(
        self,
        ctx: _Call,
        chosen: list[_Candidate],
        anchor: _Candidate,
        estimate: float,
        wpos: np.ndarray,
        need: float,
        neg: np.ndarray,
    ) -> tuple[list[_Candidate], float]:
        """Add independent evidence while the rule's expected background hits stay too high.

        No background hit tonight cannot tell a rule that strays once a week from one that
        strays once a day. The expected background hits start at (hits + 0.5) and shrink by
        each added predicate's pass rate among the rule's *near misses* (background rows that
        pass all of its predicates but one): near the rule, attributes are correlated (a
        carrier's users share its country and its app), and only evidence that still
        separates there counts. Predicates are added, keeping recall, until the estimate falls
        below ``safety_hits``: from a family the rule already uses first (no new way for it to
        die when the actor changes one), then durable ones (portable ones, which Rspamd reads
        too, first among them), and an exact value (a device pool, a sender domain) only where
        no durable one still separates, and never one from a new family once the estimate is
        within ``max_expected_background``. Network and link attributes are never a margin,
        nor a list of more than a few values. A rate measured on few near misses says little,
        so it is shrunk towards the predicate's rate on the whole background (20 pseudo-rows).
        Returns the predicates and the final estimate.
        """
        # The margin is client or identity evidence: where an entity connects from and where
        # its links point are what an actor rotates first, and a margin that rotates away
        # takes the rule with it. Margin attributes may repeat across a campaign's rules (they
        # are not its signal), core attributes may not.
        pool = [
            c
            for c in ctx.candidates
            if c.attr not in _ROTATED_FIRST[ctx.kind]
            and c.attr not in ctx.used
            and len(c.condition.get("values", ())) <= _MAX_MARGIN_VALUES
        ]
        cur = np.logical_and.reduce([c.mask for c in chosen])
        # A margin must also separate next to the rule's most specific predicate: near the
        # predicates already added, an attribute it implies (an Android app's signup flow)
        # looks like evidence.
        core_near = _near_misses(ctx, [anchor], neg)
        while estimate >= self.safety_hits and len(chosen) < self.max_predicates:
            near = _near_misses(ctx, chosen, neg)
            n_near = max(int(near.sum()), 1)
            best: tuple[bool, bool, int, bool, bool, float, str] | None = None
            best_c: _Candidate | None = None
            best_rate = 1.0
            for c in pool:
                if any(c.attr == ch.attr for ch in chosen):
                    continue
                if float(wpos[cur & c.mask].sum()) < need:
                    continue
                marginal = np.count_nonzero(c.mask & neg) / max(int(neg.sum()), 1)
                rate = max(
                    _shrunk_rate(c.mask, near, marginal), _shrunk_rate(c.mask, core_near, marginal)
                )
                # evidence from a family the rule already uses first: an actor that changes
                # a family takes down every rule that uses it, so a margin from a new family
                # is one more way for the rule to die tomorrow, one from the rule's own costs
                # nothing (its rate among the near misses says whether it still separates);
                # then durable evidence, an exact value (a device pool, tonight's sender
                # domains) only where no durable predicate still separates the near misses:
                # a margin that rotates away takes its rule with it; within a tier, one a
                # mail filter reads from the raw message, then one the campaign's earlier
                # rules have not used as a margin, so one rotated value (tonight's URL TLD)
                # cannot take all of them down
                key = (
                    bool(rate >= 0.5),
                    self._family(c.attr) not in {self._family(ch.attr) for ch in chosen},
                    c.tier,
                    c.attr not in _PORTABLE[ctx.kind],
                    c.attr in ctx.margins,
                    float(rate),
                    c.attr,
                )
                if best is None or key < best:
                    best, best_c, best_rate = key, c, float(rate)
            if best_c is None or best is None or best[0]:
                break  # nothing left that says much more
            if best[1] and best_c.tier > 1 and estimate <= self.max_expected_background:
                # within the gate already: an exact value from a family the rule does not
                # use (tonight's sender domains under a subject template) would buy a smaller
                # estimate with one more way to die tomorrow. One from its own family stays:
                # stopping there too (no full user agent under its OS) let the demo's rules
                # hit two ordinary signups the next day (over the 0.01% floor)
                break
            chosen.append(replace(best_c, margin=True))
            cur &= best_c.mask
            estimate *= max(best_rate, 0.5 / n_near)
        return chosen, estimate

    def _finish(
        self,
        ctx: _Call,
        chosen: list[_Candidate],
        attrs: pd.DataFrame,
        positive: np.ndarray,
        neg: np.ndarray,
    ) -> InducedRule:
        chosen = sorted(chosen, key=lambda c: c.attr)
        cond = (
            chosen[0].condition
            if len(chosen) == 1
            else {"op": "and", "args": [c.condition for c in chosen]}
        )
        # Figures come from the shipped evaluator, not the candidate masks, so they describe
        # exactly what enforcement will run.
        hit = evaluate(cond, attrs)
        tp = int(np.count_nonzero(hit & positive))
        fp = int(np.count_nonzero(hit & neg))
        return InducedRule(
            condition=cond,
            attributes=tuple(c.attr for c in chosen),
            core_attributes=tuple(c.attr for c in chosen if not c.margin),
            true_positives=tp,
            false_positives=fp,
            campaign_size=int(positive.sum()),
            background_size=int(neg.sum()),
            other_hits=int(np.count_nonzero(hit & ~positive & ~neg)),
            weighted_recall=float(ctx.w[hit & positive].sum() / ctx.w[positive].sum()),
            tier=max(c.tier for c in chosen),
        )


def _avoid_options(used: set[str], relied: set[str] | None) -> list[set[str]]:
    """Families to leave out of the next rule, most robust first: every family the rules so
    far use, then those every one of them relies on, then each of those alone, then none."""
    out: list[set[str]] = []
    for avoid in [set(used), set(relied or ()), *({f} for f in sorted(relied or ())), set()]:
        if avoid not in out:
            out.append(avoid)
    return out


def _near_misses(ctx: _Call, chosen: list[_Candidate], neg: np.ndarray) -> np.ndarray:
    """Background rows that pass all predicates of ``chosen`` but one.

    A lone exact predicate (one app build on one phone model) has no "all but one": its
    near misses are the rows that share the coarser value it refines (the same app build
    on other phones), or the whole background where there is none.
    """
    if len(chosen) > 1:
        passes = np.sum([c.mask for c in chosen], axis=0)
        return neg & (passes >= len(chosen) - 1)
    parent = _COARSER[ctx.kind].get(chosen[0].attr)
    for c in ctx.candidates:
        if c.attr == parent:
            return neg & c.mask
    return neg.copy()


def _core_estimate(
    ctx: _Call, chosen: list[_Candidate], neg: np.ndarray
) -> tuple[_Candidate, float]:
    """Expected background hits of a conjunction, and its most specific predicate.

    Zero background hits tonight is weak evidence when one predicate did the work and the
    others only trimmed a stray or two: a user agent matched by one benign row, and a
    display-name shape that most of that app's users share. Starting from the most specific
    predicate's hits (+0.5), each further predicate multiplies by its pass rate among the
    near misses of those before it. The estimate is never below tonight's hits + 0.5.
    """
    hits = [int(np.count_nonzero(c.mask & neg)) for c in chosen]
    order = sorted(range(len(chosen)), key=lambda i: (hits[i], chosen[i].attr))
    anchor = chosen[order[0]]
    estimate = hits[order[0]] + 0.5
    seq = [anchor]
    n_neg = max(int(neg.sum()), 1)
    for i in order[1:]:
        near = _near_misses(ctx, seq, neg)
        marginal = np.count_nonzero(chosen[i].mask & neg) / n_neg
        rate = _shrunk_rate(chosen[i].mask, near, marginal)
        estimate *= max(rate, 0.5 / max(int(near.sum()), 1))
        seq.append(chosen[i])
    actual = int(np.count_nonzero(np.logical_and.reduce([c.mask for c in chosen]) & neg))
    return anchor, max(estimate, actual + 0.5)


def _shrunk_rate(mask: np.ndarray, rows: np.ndarray, prior: float) -> float:
    """Share of ``rows`` in ``mask``, shrunk towards ``prior`` by 20 pseudo-rows."""
    return (np.count_nonzero(mask & rows) + 20 * prior) / (int(rows.sum()) + 20)


def _prune(chosen: list[_Candidate], neg: np.ndarray) -> list[_Candidate]:
    """Drop predicates whose removal lets no extra background row through."""
    changed = True
    while changed and len(chosen) > 1:
        changed = False
        full = np.logical_and.reduce([c.mask for c in chosen])
        fp_full = int(np.count_nonzero(full & neg))
        for i in range(len(chosen)):
            rest = [c for j, c in enumerate(chosen) if j != i]
            m = np.logical_and.reduce([c.mask for c in rest])
            if int(np.count_nonzero(m & neg)) <= fp_full:
                chosen = rest
                changed = True
                break
    return chosen


def _native(v: Any) -> Any:
    """Plain Python scalar for JSON (numpy and pandas scalars are not serialisable)."""
    if isinstance(v, np.generic):
        return v.item()
    return v
