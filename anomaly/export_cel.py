"""The rule bundle as CEL (Common Expression Language) expressions.

Each active rule of a kind becomes one boolean CEL expression whose inputs are the *attribute
values* of an event, not its raw columns: enforcement computes the attributes with the SQL in
the bundle's ``attributes`` section (or with :func:`clustering.attributes.compute_attributes`)
and passes one variable per attribute, named after it. :func:`cel_activation` builds the
variables from a row of ``compute_attributes`` output.

Inputs
------
- Every attribute a rule reads is a variable of CEL type ``string``, ``int``, ``double`` or
  ``bool`` (attribute dtypes ``string``, ``integer``, ``float``, ``boolean``). A missing
  value is passed as ``null``, never omitted: the expressions use no ``has()``. Declare the
  variables as ``dyn`` (or as the nullable wrapper types) where the host type-checks them.
- Companion variables for ``cidr`` on an IP attribute ``a`` (``ip``, ``sender_ip``):
  ``a__v4int`` is the IPv4 address as an ``int`` (:func:`clustering.attributes.ipv4_int`,
  null unless ``a`` is dotted IPv4 text) and ``a__v6hex`` the fully expanded lower-case IPv6
  text (:func:`clustering.attributes.ipv6_expand`, 39 characters, null unless ``a`` is pure
  hex IPv6 text). CEL has no CIDR type in its standard library, and a regex on dotted text is
  not exact, so a block is an integer range (IPv4) or a fixed-width text range (IPv6), as in
  the SQL.

Semantics, identical to :func:`anomaly.rules.evaluate`
------------------------------------------------------
- Every predicate is guarded, ``(type(x) != null_type && ...)``: on a missing value it is
  false, and no expression ever evaluates to an error, so ``!`` in allowlist guards is safe.
  (``x != null`` needs heterogeneous equality, which strict evaluators lack for numbers.)
- ``prefix`` is ``startsWith``; ``regex`` is ``matches()`` (RE2 syntax per the CEL
  specification) anchored as a full match, ``^(?:pattern)$``; every pattern is checked with
  ``google-re2`` (:func:`check_re2`) before export.
- CEL never mixes ``int`` and ``double`` implicitly: literals take the attribute's type;
  an integer attribute against a fractional bound is compared as ``double(x)``, as Python does.
- String literals are double-quoted and pure ASCII: quotes and backslashes are escaped,
  every other character outside printable ASCII becomes ``\\uXXXX`` or ``\\UXXXXXXXX``.
  Attacker text cannot leave a literal and invisible characters stay visible.

Portability: CEL implementations on RE2 (cel-go, cel-cpp, cel-python) agree with our
evaluator on every pattern; implementations on other engines (cel-rust's ``regex`` crate
treats ``\\d``, ``\\s``, ``\\w`` as Unicode classes and rejects octal escapes and ``\\Q..\\E``)
may differ on such patterns.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import re2

from anomaly.rules import (
    MAX_PATTERN,
    Rule,
    RuleError,
    condition_attributes,
    validate_condition,
)
from clustering.attributes import attributes_for, ipv4_int, ipv6_expand
from clustering.kinds import BUILTIN_KINDS, KINDS, get_kind

log = logging.getLogger(__name__)

__all__ = [
    "CEL_FORMAT",
    "CEL_FORMAT_VERSION",
    "V4_SUFFIX",
    "V6_SUFFIX",
    "active_rules",
    "bundle_to_cel",
    "cel_activation",
    "cel_string",
    "check_re2",
    "condition_to_cel",
    "output_action",
]

CEL_FORMAT = "campaign-workbench/cel-rules"
CEL_FORMAT_VERSION = 1
V4_SUFFIX = "__v4int"
V6_SUFFIX = "__v6hex"
_CEL_TYPES = {"string": "string", "integer": "int", "float": "double", "boolean": "bool"}
_IDENT = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
# CEL reserved words may not name a variable.
_RESERVED = frozenset(
    "true false null in as break const continue else for function if import let loop "
    "package namespace return var void while".split()
)
_INT64_MIN = -(2**63)
_INACTIVE = frozenset({"disabled", "expired"})  # statuses that match nothing


# --------------------------------------------------------------------------- RE2 check


def _re2_options() -> Any:
    opts = re2.Options()
    opts.log_errors = False  # the error is raised to the caller, not logged to stderr by RE2
    return opts


_RE2_OPTIONS = _re2_options()


def check_re2(pattern: str) -> None:
    """Raise :class:`~anomaly.rules.RuleError` unless RE2 (``google-re2``) accepts ``pattern``.

    Exporters call it for every regex they write; it is the same engine as DuckDB's
    ``regexp_full_match``, pyarrow's regex kernels and RE2-based CEL implementations.

    Raises
    ------
    RuleError
        Not a string, longer than :data:`anomaly.rules.MAX_PATTERN`, not valid Unicode, or a
        pattern RE2 rejects (backreferences, lookaround, bad repetition, ...).
    """
    if not isinstance(pattern, str):
        raise RuleError(f"pattern must be a string, got {type(pattern).__name__}")
    if len(pattern) > MAX_PATTERN:
        raise RuleError(f"pattern longer than {MAX_PATTERN} characters")
    try:
        pattern.encode("utf-8")
        re2.compile(pattern, _RE2_OPTIONS)
    except UnicodeEncodeError:
        raise RuleError(f"pattern {pattern!r} is not valid Unicode text") from None
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise RuleError(f"RE2 rejects pattern {pattern!r}: {detail}") from None


# --------------------------------------------------------------------------- literals


def cel_string(text: str) -> str:
    """Quote ``text`` as a CEL string literal made of printable ASCII only.

    ``"`` and ``\\`` are backslash-escaped; any other character outside ``' '..'~'``
    (control characters, NUL, DEL, every non-ASCII character) is written as ``\\uXXXX`` or,
    beyond the BMP, ``\\UXXXXXXXX``.

    Raises
    ------
    RuleError
        ``text`` holds a lone surrogate (not Unicode text; CEL has no escape for it).
    """
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif 0xD800 <= code <= 0xDFFF:
            raise RuleError(f"{text!r} is not valid Unicode text (lone surrogate)")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _cel_int(value: int) -> str:
    # -9223372036854775808 would parse as -(2**63), which overflows int64.
    return "(-9223372036854775807 - 1)" if value == _INT64_MIN else str(value)


def _cel_double(value: float) -> str:
    if not math.isfinite(value):
        raise RuleError(f"{value!r} is not a finite number")
    text = repr(float(value))  # shortest round-tripping form: '0.1', '1e+16', '5e-324'
    return text if any(c in text for c in ".e") else text + ".0"


def _literal(value: Any, dtype: str) -> str:
    """``value`` as a CEL literal of the attribute's type (validated beforehand)."""
    if dtype == "string":
        return cel_string(value)
    if dtype == "boolean":
        return "true" if value else "false"
    if dtype == "integer":
        return _cel_int(int(value))
    return _cel_double(float(value))


def _ident(name: str) -> str:
    if not _IDENT.fullmatch(name) or name in _RESERVED:
        raise RuleError(f"attribute {name!r} is not usable as a CEL variable name")
    return name


# --------------------------------------------------------------------------- conditions


def _kind_for(cond: dict[str, Any], kind: str | None) -> str:
    """The kind whose attributes the condition reads (``kind`` itself when given)."""
    if kind is not None:
        return kind
    names = condition_attributes(cond)
    # built-in kinds first: a kind registered later must not take their conditions over
    for k in [*sorted(BUILTIN_KINDS), *sorted(set(KINDS) - set(BUILTIN_KINDS))]:
        if names <= set(attributes_for(k)):
            return k
    raise RuleError(f"attributes {sorted(names)} do not all belong to one kind; pass kind")


def _range(x: str, dtype: str, cond: dict[str, Any]) -> str:
    parts = []
    for key, cmp in (("min", ">="), ("max", "<=")):
        bound = cond.get(key)
        if bound is None:
            continue
        if dtype == "integer" and isinstance(bound, int) and not isinstance(bound, bool):
            parts.append(f"{x} {cmp} {_cel_int(bound)}")
        elif dtype == "integer":  # as Python: integer column vs fractional bound in float64
            parts.append(f"double({x}) {cmp} {_cel_double(bound)}")
        else:
            parts.append(f"{x} {cmp} {_cel_double(bound)}")
    return " && ".join(parts)


def _present(x: str) -> str:
    # Not ``x != null``: strict evaluators (cel-python) have no int/double-vs-null overload;
    # comparing types is defined everywhere.
    return f"type({x}) != null_type"


def _leaf(cond: dict[str, Any], dtype: str) -> str:
    op = cond["op"]
    x = _ident(cond["attr"])
    if op == "cidr":
        net = ipaddress.ip_network(cond["value"], strict=True)
        if net.version == 4:
            v = x + V4_SUFFIX
            lo, hi = int(net.network_address), int(net.broadcast_address)
            return f"({_present(v)} && {v} >= {lo} && {v} <= {hi})"
        v = x + V6_SUFFIX
        lo6 = cel_string(net.network_address.exploded)
        hi6 = cel_string(net.broadcast_address.exploded)
        return f"({_present(v)} && {v} >= {lo6} && {v} <= {hi6})"
    if op == "eq":
        pred = f"{x} == {_literal(cond['value'], dtype)}"
    elif op == "in":
        pred = f"{x} in [{', '.join(_literal(v, dtype) for v in cond['values'])}]"
    elif op == "prefix":
        pred = f"{x}.startsWith({cel_string(cond['value'])})"
    elif op == "regex":
        check_re2(cond["pattern"])
        pred = f"{x}.matches({cel_string('^(?:' + cond['pattern'] + ')$')})"
    else:
        pred = _range(x, dtype, cond)
    return f"({_present(x)} && {pred})"


def _to_cel(cond: dict[str, Any], dtypes: Mapping[str, str]) -> str:
    op = cond["op"]
    if op in ("and", "or"):
        joiner = " && " if op == "and" else " || "
        return "(" + joiner.join(_to_cel(sub, dtypes) for sub in cond["args"]) + ")"
    return _leaf(cond, dtypes[cond["attr"]])


def condition_to_cel(cond: dict[str, Any], kind: str | None = None) -> str:
    """CEL boolean expression of ``cond`` over attribute variables (see the module docstring).

    Parameters
    ----------
    cond : dict
        A condition tree (:mod:`anomaly.rules`).
    kind : str, optional
        ``"signups"`` or ``"senders"``: the attributes' types come from it. By default, the
        first kind that defines every attribute the condition reads.

    Returns
    -------
    str
        Pure-ASCII CEL; true exactly where :func:`anomaly.rules.evaluate` is true, never null
        or an error when every variable is passed (null for missing values).

    Raises
    ------
    RuleError
        Malformed condition, an attribute unknown to the kind, a value of the wrong type or a
        pattern RE2 rejects.
    """
    k = _kind_for(cond, kind)
    validate_condition(cond, k)
    dtypes = {name: a.dtype for name, a in attributes_for(k).items()}
    return _to_cel(cond, dtypes)


def _companions(cond: dict[str, Any]) -> set[str]:
    """Companion variables the condition's ``cidr`` leaves read."""
    if cond["op"] in ("and", "or"):
        return set().union(*(_companions(sub) for sub in cond["args"]))
    if cond["op"] != "cidr":
        return set()
    version = ipaddress.ip_network(cond["value"], strict=True).version
    return {cond["attr"] + (V4_SUFFIX if version == 4 else V6_SUFFIX)}


# --------------------------------------------------------------------------- activation


def _ip_attributes(kind: str | None) -> set[str]:
    kinds = [get_kind(kind).name] if kind is not None else sorted(KINDS)
    return {n for k in kinds for n, a in attributes_for(k).items() if a.holds_ip}


def _plain(value: Any) -> Any:
    """A pandas/numpy cell as a plain Python value; missing (NA, NaN, None) -> None."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def cel_activation(attrs_row: Mapping[str, Any], kind: str | None = None) -> dict[str, Any]:
    """CEL variables for one event: its attribute values plus the IP companion variables.

    Parameters
    ----------
    attrs_row : mapping
        Attribute name -> value, e.g. one record of
        :func:`clustering.attributes.compute_attributes` output (``df.to_dict("records")``).
    kind : str, optional
        Restricts which attributes count as IP attributes (default: those of any kind).

    Returns
    -------
    dict
        Plain Python values (``str``, ``int``, ``float``, ``bool``, ``None`` for missing,
        NaN included); for each IP attribute ``a`` also ``a__v4int`` and ``a__v6hex``.
    """
    ip_names = _ip_attributes(kind)
    out: dict[str, Any] = {}
    for name, raw in attrs_row.items():
        value = _plain(raw)
        out[name] = value
        if name in ip_names:
            text = value if isinstance(value, str) else None
            out[name + V4_SUFFIX] = None if text is None else ipv4_int(text)
            out[name + V6_SUFFIX] = None if text is None else ipv6_expand(text)
    return out


# --------------------------------------------------------------------------- bundle


def _status(rule: Rule) -> str:
    # Bundles carry ``status`` (shadow, canary, enforce, disabled, expired); older ones only
    # ``mode``, which ``status`` follows.
    return str(getattr(rule, "status", "") or rule.mode)


def active_rules(bundle: dict[str, Any], kind: str, as_of: datetime | None) -> list[Rule]:
    """Rules of ``kind`` that match anything: not ``disabled`` or ``expired`` (nor past
    ``expires_at`` at ``as_of``), sorted by id."""
    rules = [Rule.from_dict(d) for d in bundle.get("rules", []) if d.get("kind") == kind]
    rules = [r for r in rules if _status(r) not in _INACTIVE]
    if as_of is not None:
        rules = [r for r in rules if not r.expired(as_of)]
    return sorted(rules, key=lambda r: r.id)


def output_action(rule: Rule) -> str:
    """What a match of ``rule`` reports: its action when enforced, else ``shadow``."""
    return rule.action if _status(rule) == "enforce" else "shadow"


def _allowlists(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The bundle's allowlist entries of ``kind`` (none when the bundle has no allowlists)."""
    entries = (bundle.get("allowlists") or {}).get(kind) or []
    if not isinstance(entries, list):
        raise RuleError(f"allowlists.{kind} must be a list of entries")
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or "condition" not in e:
            raise RuleError(f"allowlists.{kind}[{i}] must be an object with a 'condition'")
    return entries


def _variables(
    bundle: dict[str, Any], kind: str, names: set[str], companions: set[str]
) -> dict[str, dict[str, Any]]:
    defs = (bundle.get("attributes") or {}).get(kind) or {}
    current = attributes_for(kind)
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(names):
        d = defs.get(name) or {}
        a = current[name]
        dtype = d.get("dtype", a.dtype)
        out[name] = {
            "cel_type": _CEL_TYPES[dtype],
            "nullable": True,
            "attribute": name,
            "sql": d.get("sql", a.sql),
            "description": d.get("description", a.description),
        }
    for name in sorted(companions):
        if name.endswith(V4_SUFFIX):
            attr = name.removesuffix(V4_SUFFIX)
            out[name] = {
                "cel_type": "int",
                "nullable": True,
                "derived_from": attr,
                "description": f"{attr} as an integer when it is dotted IPv4 text, else null "
                "(((a*256+b)*256+c)*256+d)",
            }
        else:
            attr = name.removesuffix(V6_SUFFIX)
            out[name] = {
                "cel_type": "string",
                "nullable": True,
                "derived_from": attr,
                "description": f"{attr} as fully expanded lower-case IPv6 text (8 groups of 4 "
                "hex digits) when it is pure-hex IPv6 text, else null",
            }
    return out


def bundle_to_cel(
    bundle: dict[str, Any], kind: str, *, as_of: datetime | None = None
) -> dict[str, Any]:
    """The bundle's ``kind`` rules as a JSON-able document of CEL expressions.

    Parameters
    ----------
    bundle : dict
        A bundle from :func:`anomaly.export.build_bundle` or :func:`anomaly.export.load_bundle`.
        An optional top-level ``"allowlists": {kind: [{"name", "condition", "reason"}]}``
        excludes its matches from every rule: ``(rule) && !(allow1 || allow2 ...)``.
    kind : str
        ``"signups"`` or ``"senders"``.
    as_of : datetime, optional
        Leave out rules whose ``expires_at`` is not after this time (by default expiry is left
        to the enforcement service; each rule carries its ``expires_at``).

    Returns
    -------
    dict
        ``format``, ``format_version``, ``bundle_id``, ``schema_version``, ``kind``,
        ``inputs`` (how to build the variables), ``variables`` (name -> CEL type, nullability
        and the attribute's SQL, or the companion's definition), ``rules`` (sorted by id: ``id``,
        ``version``, ``campaign_id``, ``status``, ``action`` (``shadow`` unless enforced),
        ``expires_at``, ``expression``) and ``allowlists`` (``name``, ``reason``,
        ``expression``). A rule matches an event where its expression is true.

    Raises
    ------
    RuleError
        An invalid rule or allowlist condition (see :func:`condition_to_cel`).
    """
    get_kind(kind)
    rules = active_rules(bundle, kind, as_of)
    allow = _allowlists(bundle, kind)
    allow_exprs = [condition_to_cel(e["condition"], kind) for e in allow]
    names: set[str] = set()
    companions: set[str] = set()
    for cond in [r.condition for r in rules] + [e["condition"] for e in allow]:
        names |= condition_attributes(cond)
        companions |= _companions(cond)
    guard = " || ".join(allow_exprs)
    out_rules = []
    for rule in rules:
        rule.validate()
        expr = condition_to_cel(rule.condition, kind)
        if guard:
            expr = f"({expr}) && !({guard})"
        out_rules.append(
            {
                "id": rule.id,
                "version": rule.version,
                "campaign_id": rule.campaign_id,
                "status": _status(rule),
                "action": output_action(rule),
                "expires_at": rule.expires_at,
                "expression": expr,
            }
        )
    log.debug("exported %d %s rule(s) to CEL", len(out_rules), kind)
    return {
        "format": CEL_FORMAT,
        "format_version": CEL_FORMAT_VERSION,
        "bundle_id": bundle.get("bundle_id", ""),
        "schema_version": bundle.get("schema_version"),
        "kind": kind,
        "inputs": (
            "One variable per attribute, computed from the event with the attribute's SQL "
            "(bundle 'attributes' section) and passed as null when missing; for every "
            f"'{V4_SUFFIX}'/'{V6_SUFFIX}' variable, the IP attribute it is derived from as "
            "described. Declare variables as dyn (or nullable wrapper types). A rule matches "
            "where its expression is true; 'matches' is an RE2 full match."
        ),
        "variables": _variables(bundle, kind, names, companions),
        "rules": out_rules,
        "allowlists": [
            {"name": e.get("name", ""), "reason": e.get("reason", ""), "expression": x}
            for e, x in zip(allow, allow_exprs, strict=True)
        ],
    }
