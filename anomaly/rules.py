"""The rule language: conditions on named attributes, their SQL form and a Python evaluator.

A condition is a small JSON tree::

    {"op": "eq", "attr": a, "value": v}          {"op": "in", "attr": a, "values": [...]}
    {"op": "prefix", "attr": a, "value": "..."}  {"op": "cidr", "attr": a, "value": "10.0.0.0/8"}
    {"op": "regex", "attr": a, "pattern": "..."} {"op": "range", "attr": a, "min": x, "max": y}
    {"op": "and", "args": [...]}                 {"op": "or", "args": [...]}

Semantics, identical in :func:`evaluate` and :func:`condition_to_sql`:

- A predicate on a missing value is false (every leaf is ``COALESCE(..., FALSE)`` in SQL), so
  ``and``/``or`` never see NULL.
- ``prefix`` is a plain starts-with (``starts_with`` in SQL, never ``LIKE``).
- ``regex`` is a FULL match in RE2 syntax: DuckDB's ``regexp_full_match`` and pyarrow's RE2
  kernels run the same engine. Use :func:`regex_escape` for literal text.
- ``range`` is inclusive; either bound may be null (not both).
- ``cidr`` applies to attributes holding IP text (``ip``, ``sender_ip``). IPv4 compares the
  address as an integer; IPv6 compares fully expanded fixed-width text
  (:func:`clustering.attributes.ipv6_expand`), so any prefix length works. IPv6 text with a
  dotted IPv4 tail or a zone id never matches.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clustering.attributes import (
    Attribute,
    attributes_for,
    ipv4_int_sql,
    ipv4_ints,
    ipv6_expand_sql,
    ipv6_expanded,
    sql_identifier,
    sql_string,
)

__all__ = [
    "MODES",
    "OPS",
    "STATUSES",
    "Rule",
    "RuleError",
    "canonical_json",
    "condition_attributes",
    "condition_to_sql",
    "evaluate",
    "regex_escape",
    "rule_content_hash",
    "validate_condition",
]

OPS = ("eq", "in", "prefix", "cidr", "regex", "range", "and", "or")
MODES = ("shadow", "enforce")
# Lifecycle of a rule. Only ``enforce`` applies the action; ``shadow`` and ``canary`` report
# matches with action ``shadow``; ``disabled`` and ``expired`` match nothing.
STATUSES = ("shadow", "canary", "enforce", "disabled", "expired")
_KEYS: dict[str, tuple[set[str], set[str]]] = {  # op -> (required keys, optional keys)
    "eq": ({"attr", "value"}, set()),
    "in": ({"attr", "values"}, set()),
    "prefix": ({"attr", "value"}, set()),
    "cidr": ({"attr", "value"}, set()),
    "regex": ({"attr", "pattern"}, set()),
    "range": ({"attr"}, {"min", "max"}),
    "and": ({"args"}, set()),
    "or": ({"args"}, set()),
}
MAX_DEPTH = 32
MAX_VALUES = 10_000
MAX_PATTERN = 10_000
_RULE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
_ACTION = re.compile(r"[a-z][a-z0-9_]{0,63}")
_REGEX_META = frozenset("\\.+*?()|[]{}^$")


class RuleError(ValueError):
    """A rule or condition is invalid; the message names the rule, the path and the problem."""


def regex_escape(text: str) -> str:
    """Escape ``text`` so that it matches itself literally in RE2 (and Python ``re``)."""
    return "".join("\\" + c if c in _REGEX_META else c for c in text)


# --------------------------------------------------------------------------- validation


def _fail(rule_id: str | None, path: str, msg: str) -> RuleError:
    prefix = f"rule {rule_id!r}: " if rule_id else ""
    return RuleError(f"{prefix}{path}: {msg}")


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _value_ok(v: Any, dtype: str) -> bool:
    """Whether the JSON value ``v`` may be compared with an attribute of ``dtype``."""
    if dtype == "string":
        return isinstance(v, str)
    if dtype == "boolean":
        return isinstance(v, bool)
    if dtype == "integer":
        return isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63
    return _is_number(v) and math.isfinite(v) and (not isinstance(v, int) or abs(v) < 2**63)


def _check_text(v: str, rule_id: str | None, path: str) -> None:
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise _fail(rule_id, path, f"{v!r} is not valid Unicode text") from None


def _check_regex(pattern: Any, rule_id: str | None, path: str) -> None:
    if not isinstance(pattern, str):
        raise _fail(rule_id, path, f"pattern must be a string, got {type(pattern).__name__}")
    if len(pattern) > MAX_PATTERN:
        raise _fail(rule_id, path, f"pattern longer than {MAX_PATTERN} characters")
    _check_text(pattern, rule_id, path)
    try:  # compile with the engine that evaluates it (RE2, as in DuckDB)
        pc.match_substring_regex(pa.array([""]), _full(pattern))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise _fail(rule_id, path, f"invalid RE2 pattern {pattern!r}: {exc}") from None


def _check_cidr(value: Any, rule_id: str | None, path: str) -> None:
    if not isinstance(value, str):
        raise _fail(rule_id, path, f"cidr value must be a string, got {type(value).__name__}")
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise _fail(rule_id, path, f"invalid CIDR block {value!r}: {exc}") from None


def _check_leaf(
    cond: dict[str, Any], attr: Attribute | None, rule_id: str | None, path: str
) -> None:
    op = cond["op"]
    dtype = attr.dtype if attr is not None else None
    name = cond["attr"]
    if op in ("prefix", "regex", "cidr") and dtype not in (None, "string"):
        raise _fail(rule_id, path, f"op {op!r} needs a string attribute; {name!r} is {dtype}")
    if op == "range" and dtype not in (None, "integer", "float"):
        raise _fail(rule_id, path, f"op 'range' needs a numeric attribute; {name!r} is {dtype}")
    if op == "cidr" and attr is not None and not attr.holds_ip:
        raise _fail(rule_id, path, f"op 'cidr' needs an IP attribute; {name!r} is not one")

    def check_value(v: Any, where: str) -> None:
        if isinstance(v, str):
            _check_text(v, rule_id, where)
        ok = _value_ok(v, dtype) if dtype else isinstance(v, str | bool) or _value_ok(v, "float")
        if not ok:
            want = dtype or "string, boolean or finite number"
            kind_of = type(v).__name__
            raise _fail(rule_id, where, f"{v!r} ({kind_of}) is not a valid {want} for {name!r}")

    if op == "eq":
        check_value(cond["value"], f"{path}.value")
    elif op == "in":
        values = cond["values"]
        if not isinstance(values, list) or not values:
            raise _fail(rule_id, f"{path}.values", "must be a non-empty list")
        if len(values) > MAX_VALUES:
            raise _fail(rule_id, f"{path}.values", f"more than {MAX_VALUES} values")
        for i, v in enumerate(values):
            check_value(v, f"{path}.values[{i}]")
    elif op == "prefix":
        v = cond["value"]
        if not isinstance(v, str) or not v:
            raise _fail(rule_id, f"{path}.value", "prefix must be a non-empty string")
        _check_text(v, rule_id, f"{path}.value")
    elif op == "regex":
        _check_regex(cond["pattern"], rule_id, f"{path}.pattern")
    elif op == "cidr":
        _check_cidr(cond["value"], rule_id, f"{path}.value")
    elif op == "range":
        lo, hi = cond.get("min"), cond.get("max")
        if lo is None and hi is None:
            raise _fail(rule_id, path, "range needs min or max")
        for key, v in (("min", lo), ("max", hi)):
            if v is not None and not _value_ok(v, "float"):
                raise _fail(rule_id, f"{path}.{key}", f"{v!r} is not a finite number")
        if lo is not None and hi is not None and lo > hi:
            raise _fail(rule_id, path, f"min {lo!r} > max {hi!r}")


def _check(
    cond: Any,
    attrs: dict[str, Attribute] | None,
    rule_id: str | None,
    path: str,
    depth: int,
    kind: str | None,
) -> None:
    if depth > MAX_DEPTH:
        raise _fail(rule_id, path, f"nested deeper than {MAX_DEPTH}")
    if not isinstance(cond, dict):
        raise _fail(rule_id, path, f"condition must be an object, got {type(cond).__name__}")
    op = cond.get("op")
    if op not in _KEYS:
        raise _fail(rule_id, f"{path}.op", f"unknown op {op!r}; known: {', '.join(OPS)}")
    required, optional = _KEYS[op]
    keys = set(cond) - {"op"}
    if missing := required - keys:
        raise _fail(rule_id, path, f"op {op!r} needs key(s) {sorted(missing)}")
    if extra := keys - required - optional:
        raise _fail(rule_id, path, f"op {op!r} has unknown key(s) {sorted(extra)}")
    if op in ("and", "or"):
        args = cond["args"]
        if not isinstance(args, list) or not args:
            raise _fail(rule_id, f"{path}.args", "must be a non-empty list of conditions")
        for i, sub in enumerate(args):
            _check(sub, attrs, rule_id, f"{path}.args[{i}]", depth + 1, kind)
        return
    name = cond["attr"]
    if not isinstance(name, str):
        raise _fail(rule_id, f"{path}.attr", f"must be a string, got {type(name).__name__}")
    attr = None
    if attrs is not None:
        if name not in attrs:
            raise _fail(
                rule_id,
                f"{path}.attr",
                f"unknown attribute {name!r} for kind {kind!r}; known: {', '.join(sorted(attrs))}",
            )
        attr = attrs[name]
    _check_leaf(cond, attr, rule_id, path)


def validate_condition(cond: dict[str, Any], kind: str, *, rule_id: str | None = None) -> None:
    """Check a condition against the attributes of ``kind``.

    Raises
    ------
    RuleError
        Unknown op, attribute or key, value of the wrong type, invalid regex or CIDR block,
        empty list. The message names ``rule_id`` (when given), the path in the tree
        (``condition.args[1].attr``) and the offending attribute or op.
    """
    try:
        attrs = attributes_for(kind)
    except ValueError as exc:
        raise _fail(rule_id, "kind", str(exc)) from None
    _check(cond, attrs, rule_id, "condition", 0, kind)


def _leaves(cond: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if cond["op"] in ("and", "or"):
        for sub in cond["args"]:
            yield from _leaves(sub)
    else:
        yield cond


def condition_attributes(cond: dict[str, Any]) -> set[str]:
    """Names of the attributes a condition reads."""
    _check(cond, None, None, "condition", 0, None)
    return {leaf["attr"] for leaf in _leaves(cond)}


# --------------------------------------------------------------------------- Python evaluator


def _full(pattern: str) -> str:
    # RE2 full match as a substring match anchored at both ends (\z: true end of text).
    return rf"\A(?:{pattern})\z"


def _on_distinct(col: pd.Series, fn: Any) -> np.ndarray:
    """Boolean ``fn(arrow array of distinct values)`` broadcast back to the rows."""
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    values = pa.array(np.asarray(uniques, dtype=object), type=pa.string(), from_pandas=True)
    hit = pc.fill_null(fn(values), False).to_numpy(zero_copy_only=False)
    return np.append(hit, False)[codes]  # code -1 (missing) -> the appended False


def _cidr_mask(col: pd.Series, block: str) -> np.ndarray:
    net = ipaddress.ip_network(block, strict=True)
    if net.version == 4:
        ints = ipv4_ints(col)
        lo, hi = int(net.network_address), int(net.broadcast_address)
        return ((ints >= lo) & (ints <= hi)).fillna(False).to_numpy(dtype=bool)
    text = ipv6_expanded(col)
    lo6, hi6 = net.network_address.exploded, net.broadcast_address.exploded
    return ((text >= lo6) & (text <= hi6)).fillna(False).to_numpy(dtype=bool)


def _as_bool(x: Any) -> np.ndarray:
    return pd.Series(x).fillna(False).to_numpy(dtype=bool)


def _leaf_mask(cond: dict[str, Any], col: pd.Series) -> np.ndarray:
    op = cond["op"]
    if op == "eq":
        return _as_bool(col.isin([cond["value"]]))
    if op == "in":
        return _as_bool(col.isin(cond["values"]))
    if op == "prefix":
        return _on_distinct(col, lambda a: pc.starts_with(a, cond["value"]))
    if op == "regex":
        return _on_distinct(col, lambda a: pc.match_substring_regex(a, _full(cond["pattern"])))
    if op == "cidr":
        return _cidr_mask(col, cond["value"])
    # range: integer bounds on integer columns compare exactly, otherwise as float64
    mask = np.array(col.notna(), dtype=bool)
    for bound, cmp in ((cond.get("min"), "ge"), (cond.get("max"), "le")):
        if bound is not None:
            mask &= _as_bool(getattr(col, cmp)(bound))
    return mask


def evaluate(cond: dict[str, Any], attrs: pd.DataFrame) -> np.ndarray:
    """Rows of ``attrs`` that satisfy ``cond``.

    Parameters
    ----------
    cond : dict
        A condition tree (see the module docstring).
    attrs : DataFrame
        Attributes as returned by :func:`clustering.attributes.compute_attributes`.

    Returns
    -------
    ndarray of bool, shape (len(attrs),)

    Raises
    ------
    RuleError
        Malformed condition, or an attribute it reads is not a column of ``attrs``.
    """
    _check(cond, None, None, "condition", 0, None)
    return _evaluate(cond, attrs, "condition")


def _evaluate(cond: dict[str, Any], attrs: pd.DataFrame, path: str) -> np.ndarray:
    op = cond["op"]
    if op in ("and", "or"):
        masks = [_evaluate(sub, attrs, f"{path}.args[{i}]") for i, sub in enumerate(cond["args"])]
        return np.logical_and.reduce(masks) if op == "and" else np.logical_or.reduce(masks)
    name = cond["attr"]
    if name not in attrs.columns:
        raise RuleError(f"{path}.attr: attribute {name!r} is not among the computed attributes")
    return _leaf_mask(cond, attrs[name])


# --------------------------------------------------------------------------- SQL


def _sql_value(v: Any) -> str:
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        # Through text: the shortest repr round-trips to the same double in DuckDB.
        return f"CAST({sql_string(repr(v))} AS DOUBLE)"
    return sql_string(v)


def _leaf_sql(cond: dict[str, Any]) -> str:
    op, col = cond["op"], sql_identifier(cond["attr"])
    if op == "eq":
        pred = f"{col} = {_sql_value(cond['value'])}"
    elif op == "in":
        pred = f"{col} IN ({', '.join(_sql_value(v) for v in cond['values'])})"
    elif op == "prefix":
        pred = f"starts_with({col}, {sql_string(cond['value'])})"
    elif op == "regex":
        pred = f"regexp_full_match({col}, {sql_string(cond['pattern'])})"
    elif op == "cidr":
        net = ipaddress.ip_network(cond["value"], strict=True)
        if net.version == 4:
            lo, hi = int(net.network_address), int(net.broadcast_address)
            pred = f"({ipv4_int_sql(col)}) BETWEEN {lo} AND {hi}"
        else:
            lo6 = sql_string(net.network_address.exploded)
            hi6 = sql_string(net.broadcast_address.exploded)
            pred = f"({ipv6_expand_sql(col)}) BETWEEN {lo6} AND {hi6}"
    else:  # range
        parts = []
        if cond.get("min") is not None:
            parts.append(f"{col} >= {_sql_value(cond['min'])}")
        if cond.get("max") is not None:
            parts.append(f"{col} <= {_sql_value(cond['max'])}")
        pred = " AND ".join(parts)
    return f"COALESCE({pred}, FALSE)"


def condition_to_sql(cond: dict[str, Any]) -> str:
    """DuckDB boolean expression of ``cond`` over columns named after the attributes.

    Literals are quoted with :func:`clustering.attributes.sql_string`; no ``LIKE``; never NULL.

    Raises
    ------
    RuleError
        If the condition is malformed.
    """
    _check(cond, None, None, "condition", 0, None)
    return _to_sql(cond)


def _to_sql(cond: dict[str, Any]) -> str:
    op = cond["op"]
    if op in ("and", "or"):
        joiner = " AND " if op == "and" else " OR "
        return "(" + joiner.join(_to_sql(sub) for sub in cond["args"]) + ")"
    return _leaf_sql(cond)


# --------------------------------------------------------------------------- rules


def canonical_json(obj: Any) -> bytes:
    """Canonical bytes: sorted keys, indent 2, UTF-8 (not ASCII-escaped), trailing newline.

    numpy scalars are written as the plain numbers they hold. Bundles, bundle ids and rule
    content hashes are all computed over these bytes.

    Raises
    ------
    ValueError, TypeError
        NaN or infinity, or a value JSON cannot hold.
    """
    text = json.dumps(
        obj,
        sort_keys=True,
        indent=2,
        ensure_ascii=False,
        allow_nan=False,
        separators=(",", ": "),
        default=_json_default,
    )
    return (text + "\n").encode("utf-8")


def _json_default(value: Any) -> Any:
    # numpy scalars slip into backtest figures and parameters; they are plain numbers.
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def rule_content_hash(rule: Rule | Mapping[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of the rule's ``{"kind", "condition", "action"}``.

    What a rule matches and does, and nothing else: a new run that re-learns the same rule
    gets the same hash whatever its title, figures or timestamps. ``rule`` is a :class:`Rule`
    or a rule dict (an absent ``action`` counts as ``block``, the field's default).
    """
    body: dict[str, Any]
    if isinstance(rule, Rule):
        body = {"kind": rule.kind, "condition": rule.condition, "action": rule.action}
    else:
        body = {
            "kind": rule.get("kind"),
            "condition": rule.get("condition"),
            "action": rule.get("action", "block"),
        }
    return hashlib.sha256(canonical_json(body)).hexdigest()


_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass
class Rule:
    """One block rule for one campaign.

    ``id`` is stable across runs for the same campaign. ``status`` is the rule's lifecycle
    state (:data:`STATUSES`); ``mode`` is the older two-state view of it, kept because the
    bundle contract names it: ``mode == "enforce"`` exactly when ``status == "enforce"``, and
    ``shadow`` otherwise. Give either one when constructing (the other is derived); giving
    both with different meanings fails :meth:`validate`. :meth:`set_status` changes both.

    ``content_hash`` (:func:`rule_content_hash`) is filled in by the bundle builder; when set,
    :meth:`validate` checks it. ``parent_version`` is the version this one replaced (``None``
    for a first version). ``allowlists_applied`` names the allowlist entries that exempt rows
    from this rule.
    """

    id: str
    version: int
    kind: str
    campaign_id: str
    title: str
    condition: dict[str, Any]
    action: str = "block"
    mode: str = ""  # "" = derive from status ("shadow" when neither is given)
    created_at: str = ""
    expires_at: str = ""
    backtest: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    status: str = ""  # "" = derive from mode
    parent_version: int | None = None
    content_hash: str = ""
    allowlists_applied: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Callers that predate ``status`` pass only ``mode`` (and old bundles hold only it);
        # newer ones pass only ``status``. Derive the missing one so both always agree.
        if not self.status:
            self.status = "enforce" if self.mode == "enforce" else "shadow"
        if not self.mode:
            self.mode = "enforce" if self.status == "enforce" else "shadow"

    def set_status(self, status: str) -> None:
        """Move the rule to ``status`` (one of :data:`STATUSES`), keeping ``mode`` in step.

        Raises
        ------
        RuleError
            Unknown status.
        """
        if status not in STATUSES:
            raise _fail(self.id, "status", f"{status!r} must be one of {STATUSES}")
        self.status = status
        self.mode = "enforce" if status == "enforce" else "shadow"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (a deep copy)."""
        return copy.deepcopy(asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Rule:
        """Rule from a dict such as :meth:`to_dict` or a bundle entry (its ``sql`` is ignored).

        Keys added after the first bundles (``status``, ``parent_version``, ``content_hash``,
        ``allowlists_applied``) may be absent: they take their defaults, ``status`` following
        ``mode``.

        Raises
        ------
        RuleError
            Missing or unknown keys.
        """
        if not isinstance(d, dict):
            raise RuleError(f"rule must be an object, got {type(d).__name__}")
        rid = d.get("id") if isinstance(d.get("id"), str) else None
        names = {f.name for f in fields(cls)}
        required = {"id", "version", "kind", "campaign_id", "title", "condition"}
        if missing := required - set(d):
            raise _fail(rid, "rule", f"missing key(s) {sorted(missing)}")
        if extra := set(d) - names - {"sql"}:
            raise _fail(rid, "rule", f"unknown key(s) {sorted(extra)}")
        return cls(**copy.deepcopy({k: v for k, v in d.items() if k in names}))

    def validate(self) -> None:
        """Check every field and the condition; raise :class:`RuleError` naming this rule."""
        rid = self.id if isinstance(self.id, str) else None
        if not isinstance(self.id, str) or not _RULE_ID.fullmatch(self.id):
            raise _fail(rid, "id", f"{self.id!r} must match {_RULE_ID.pattern}")
        if not _is_int(self.version) or self.version < 1:
            raise _fail(rid, "version", f"{self.version!r} must be an integer >= 1")
        if self.parent_version is not None and (
            not _is_int(self.parent_version) or not 1 <= self.parent_version < self.version
        ):
            raise _fail(
                rid,
                "parent_version",
                f"{self.parent_version!r} must be null or an integer in [1, version)",
            )
        if self.mode not in MODES:
            raise _fail(rid, "mode", f"{self.mode!r} must be one of {MODES}")
        if self.status not in STATUSES:
            raise _fail(rid, "status", f"{self.status!r} must be one of {STATUSES}")
        if (self.mode == "enforce") != (self.status == "enforce"):
            raise _fail(
                rid,
                "mode",
                f"mode {self.mode!r} disagrees with status {self.status!r} "
                "(mode is 'enforce' exactly when status is)",
            )
        if not isinstance(self.action, str) or not _ACTION.fullmatch(self.action):
            raise _fail(rid, "action", f"{self.action!r} must match {_ACTION.pattern}")
        if self.action == "shadow":
            raise _fail(rid, "action", "'shadow' is reserved for shadow-mode matches")
        for key in ("campaign_id", "title"):
            if not isinstance(getattr(self, key), str):
                raise _fail(rid, key, "must be a string")
        for key in ("created_at", "expires_at"):
            value = getattr(self, key)
            if not isinstance(value, str) or (value and _parse_time(value) is None):
                raise _fail(rid, key, f"{value!r} must be '' or an ISO 8601 timestamp")
        for key in ("backtest", "provenance"):
            if not isinstance(getattr(self, key), dict):
                raise _fail(rid, key, "must be an object")
        applied = self.allowlists_applied
        if not isinstance(applied, list) or not all(isinstance(n, str) for n in applied):
            raise _fail(rid, "allowlists_applied", "must be a list of allowlist entry names")
        validate_condition(self.condition, self.kind, rule_id=rid)
        if not isinstance(self.content_hash, str) or (
            self.content_hash and not _HEX64.fullmatch(self.content_hash)
        ):
            raise _fail(rid, "content_hash", f"{self.content_hash!r} must be '' or 64 hex digits")
        if self.content_hash and self.content_hash != rule_content_hash(self):
            raise _fail(
                rid, "content_hash", "does not match kind, condition and action (edited rule?)"
            )

    def expired(self, as_of: datetime) -> bool:
        """Whether ``expires_at`` is set and not after ``as_of`` (naive times are UTC)."""
        until = _parse_time(self.expires_at) if self.expires_at else None
        return until is not None and until <= _aware(as_of)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _parse_time(text: str) -> datetime | None:
    try:
        return _aware(datetime.fromisoformat(text))
    except ValueError:
        return None
