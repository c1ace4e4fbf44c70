"""The rule bundle: canonical JSON, one DuckDB SELECT per kind, and a Python applier.

The bundle is what enforcement consumes without this project's Python. It carries every
rule's condition (JSON) and its SQL, the allowlists, and the SQL of every attribute the rules
and allowlists read, so that :func:`bundle_to_sql` builds a self-contained query from the
bundle alone. :func:`apply_bundle` is the Python evaluator of the same bundle; the tests hold
both to the same rows. The layout is fixed by a JSON Schema shipped with the package
(``anomaly/schemas/bundle-v1.schema.json``, described in ``docs/rules.md``).

``bundle_id`` is the SHA-256 of the canonical JSON of the bundle without ``bundle_id``:
:func:`load_bundle` recomputes it, so an edited bundle (say, a rule flipped to ``enforce`` by
hand) is refused rather than half-trusted.

Publishing (:func:`write_rules`, :func:`publish_bundle`) keeps the bundle it replaces in
``rules/history/<bundle_id>.json``, which :mod:`anomaly.bundle_history` rolls back to.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import ipaddress
import json
import logging
import os
import re
from collections.abc import Iterable
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from anomaly.atomic import atomic_write_files
from anomaly.rules import (
    MODES,
    Rule,
    RuleError,
    canonical_json,
    condition_attributes,
    condition_to_sql,
    evaluate,
    rule_content_hash,
    validate_condition,
)
from clustering.attributes import attributes_for, compute_attributes, sql_identifier, sql_string
from clustering.kinds import BUILTIN_KINDS, KINDS, SpecView, get_kind

log = logging.getLogger(__name__)

__all__ = [
    "BUNDLE_SCHEMA_VERSION",
    "HISTORY_DIR",
    "allowlist_entries",
    "apply_bundle",
    "build_bundle",
    "bundle_id_of",
    "bundle_schema",
    "bundle_to_sql",
    "canonical_json",
    "load_bundle",
    "publish_bundle",
    "validate_bundle_schema",
    "write_rules",
]

BUNDLE_SCHEMA_VERSION = 1
HISTORY_DIR = "history"  # under the rules folder: replaced bundles, as <bundle_id>.json
_SCHEMA_FILE = "schemas/bundle-v1.schema.json"
_TOP_KEYS = (
    "schema_version",
    "bundle_id",
    "run_id",
    "created_at",
    "code_version",
    "parameters",
    "attributes",
    "rules",
)  # and "allowlists", except in bundles written before it existed (upgraded on load)
_ENTRY_KEYS = frozenset({"name", "condition", "reason"})
_ENTRY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_BUNDLE_ID = re.compile(r"[0-9a-f]{64}")
_INACTIVE = frozenset({"disabled", "expired"})  # statuses that match nothing
# allowlist_entries: the attribute each plain list is about, per kind (None: not available)
_ALLOW_ATTRS: SpecView[dict[str, str | None]] = SpecView(lambda s: s.allowlist)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def bundle_id_of(bundle: dict[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of ``bundle`` without its ``bundle_id``."""
    body = {k: v for k, v in bundle.items() if k != "bundle_id"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


# --------------------------------------------------------------------------- schema


@functools.cache
def _validator() -> Draft202012Validator:
    text = resources.files("anomaly").joinpath(_SCHEMA_FILE).read_text(encoding="utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def bundle_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of bundle schema version 1, as shipped (a copy)."""
    return copy.deepcopy(_validator().schema)


def validate_bundle_schema(bundle: Any, *, where: str = "bundle") -> None:
    """Check ``bundle`` against the shipped JSON Schema.

    Only the layout: ids, hashes, SQL and attributes are checked by :func:`load_bundle`.

    Raises
    ------
    RuleError
        ``"<where>: <JSON path>: <problem>"`` for the most relevant violation, naming the
        rule id when the path is inside a rule, and how many other violations there are.
    """
    errors = list(_validator().iter_errors(bundle))
    if not errors:
        return
    err = best_match(errors)
    path = list(err.absolute_path)
    rule = ""
    if len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int):
        entry = bundle["rules"][path[1]]
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            rule = f" (rule {entry['id']!r})"
    hint = ""
    if path and path[-1] == "mode" and err.validator == "const":  # the status/mode if-then
        hint = " (mode is 'enforce' exactly when status is 'enforce')"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    raise RuleError(f"{where}: {err.json_path}: {err.message}{hint}{rule}{more}")


# --------------------------------------------------------------------------- allowlists


def allowlist_entries(
    kind: str,
    *,
    domains: Iterable[str] = (),
    asns: Iterable[int] = (),
    prefixes: Iterable[str] = (),
    ids: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Allowlist entries of ``kind`` from plain lists, ready for :func:`build_bundle`.

    Parameters
    ----------
    kind : str
        ``"signups"`` or ``"senders"``.
    domains : iterable of str
        Email domains (signups: ``email_domain``) or sender domains (``sender_domain``);
        ASCII lower-cased, surrounding blanks and a leading ``@`` dropped, as the attribute
        holds them.
    asns : iterable of int
        Autonomous system numbers (signups only: ``ip_asn``).
    prefixes : iterable of str
        CIDR blocks (or single addresses) of ``ip`` / ``sender_ip``; host bits are cleared.
    ids : iterable of str
        ``account_id`` / ``message_id`` values.

    Returns
    -------
    list of dict
        One entry per non-empty list, named ``domains``, ``asns``, ``prefixes``, ``ids``
        (sorted by name), each ``{"name", "condition", "reason"}``.

    Raises
    ------
    RuleError
        ASNs for senders, an invalid CIDR block, empty or mistyped values.
    """
    attrs = _ALLOW_ATTRS[get_kind(kind).name]
    out: list[dict[str, Any]] = []

    def add(name: str, condition: dict[str, Any], reason: str) -> None:
        entry = {"name": name, "condition": condition, "reason": reason}
        _check_entry(entry, kind)
        out.append(entry)

    cond: dict[str, Any]
    doms = sorted({_domain(d) for d in domains})
    if doms:
        cond = {"op": "in", "attr": attrs["domains"], "values": doms}
        add("domains", cond, "allowlisted domains (configuration)")
    asn_values = sorted(set(asns))
    if asn_values:
        if attrs["asns"] is None:
            raise RuleError(f"allowlist {kind}/asns: {kind} have no ASN attribute")
        cond = {"op": "in", "attr": attrs["asns"], "values": asn_values}
        add("asns", cond, "allowlisted autonomous systems (configuration)")
    nets = sorted({_network(p, kind) for p in prefixes}, key=lambda n: (n.version, n))
    if nets:
        blocks = [{"op": "cidr", "attr": attrs["prefixes"], "value": str(n)} for n in nets]
        cond = blocks[0] if len(blocks) == 1 else {"op": "or", "args": blocks}
        add("prefixes", cond, "allowlisted address blocks (configuration)")
    id_values = sorted({str(i) for i in ids})
    if id_values:
        cond = {"op": "in", "attr": attrs["ids"], "values": id_values}
        add("ids", cond, f"allowlisted {attrs['ids']} values (configuration)")
    return sorted(out, key=lambda e: e["name"])


def _domain(text: Any) -> str:
    if not isinstance(text, str):
        raise RuleError(f"allowlist domain {text!r} must be a string")
    d = text.strip().lstrip("@").translate(_ASCII_LOWER)  # as email_domain holds it
    if not d:
        raise RuleError(f"allowlist domain {text!r} is empty")
    return d


def _network(text: Any, kind: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(str(text).strip(), strict=False)
    except ValueError as exc:
        raise RuleError(f"allowlist {kind}/prefixes: invalid CIDR block {text!r}: {exc}") from None


def _check_entry(entry: Any, kind: str) -> None:
    """One allowlist entry; errors name the entry (``allowlist signups/'domains': ...``)."""
    if not isinstance(entry, dict):
        raise RuleError(f"allowlist {kind}: entry must be an object, got {type(entry).__name__}")
    name = entry.get("name")
    label = f"allowlist {kind}/{name!r}"
    if set(entry) != _ENTRY_KEYS:
        raise RuleError(f"{label}: keys must be {sorted(_ENTRY_KEYS)}, got {sorted(entry)}")
    if not isinstance(name, str) or not _ENTRY_NAME.fullmatch(name):
        raise RuleError(f"{label}: name must match {_ENTRY_NAME.pattern}")
    if not isinstance(entry["reason"], str):
        raise RuleError(f"{label}: reason must be a string")
    try:
        validate_condition(entry["condition"], kind)
    except RuleError as exc:
        raise RuleError(f"{label}: {exc}") from None


def bundle_kinds(bundle: dict[str, Any]) -> list[str]:
    """The kinds a bundle speaks of: the built-in ones, then those of its rules and allowlists.

    Not every kind registered in this process: the same rules must give the same bundle and
    the same exported files whatever else the process has seen.
    """
    rules = bundle.get("rules") or []
    used = {r.get("kind") for r in rules if isinstance(r, dict)}
    used |= set(bundle.get("allowlists") or {})
    return _with_builtins(k for k in used if isinstance(k, str))


def _with_builtins(kinds: Iterable[str]) -> list[str]:
    return [*BUILTIN_KINDS, *sorted(set(kinds) - set(BUILTIN_KINDS))]


def _normalise_allowlists(
    allowlists: Any, kinds: Iterable[str] = ()
) -> dict[str, list[dict[str, Any]]]:
    """Every kind's entries, checked, deep-copied and sorted by name.

    The result has the built-in kinds, ``kinds`` and those of ``allowlists``; a kind with
    entries must be known to this process (its attributes check them).
    """
    if allowlists is None:
        allowlists = {}
    if not isinstance(allowlists, dict):
        raise RuleError("allowlists must be an object: kind -> list of entries")
    if unknown := sorted(k for k, v in allowlists.items() if v and k not in KINDS):
        raise RuleError(f"allowlists: unknown kind(s) {unknown}; known: {list(KINDS)}")
    out: dict[str, list[dict[str, Any]]] = {}
    for kind in _with_builtins([*kinds, *allowlists]):
        entries = allowlists.get(kind) or []
        if not isinstance(entries, list):
            raise RuleError(f"allowlist {kind}: must be a list of entries")
        seen: set[str] = set()
        for entry in entries:
            _check_entry(entry, kind)
            if entry["name"] in seen:
                raise RuleError(f"allowlist {kind}/{entry['name']!r}: duplicate entry name")
            seen.add(entry["name"])
        out[kind] = sorted(copy.deepcopy(entries), key=lambda e: e["name"])
    return out


def _allow_entries(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    entries = (bundle.get("allowlists") or {}).get(kind) or []
    return list(entries)


def _attributes_of(entries: list[dict[str, Any]]) -> set[str]:
    return set().union(*(condition_attributes(e["condition"]) for e in entries))


# --------------------------------------------------------------------------- build


def build_bundle(
    rules: list[Rule],
    *,
    run_id: str,
    created_at: str,
    code_version: str,
    parameters: dict[str, Any],
    allowlists: dict[str, list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Assemble the versioned rule bundle.

    Parameters
    ----------
    rules : list of Rule
        Rules of any kinds; validated here (not modified). Ids must be unique. Each rule's
        ``backtest`` must hold ``population``, ``hits``, ``precision``, ``precision_lower``
        and ``recall``; a missing ``expected_hits_per_day`` is taken as ``hits`` (the
        figures describe one day of data). Missing ``provenance`` keys are filled in:
        ``inducer`` as ``"unknown"``, ``run_id``, ``code_version`` and ``parameters`` from
        the bundle's.
    run_id, created_at, code_version : str
        Provenance of the bundle.
    parameters : dict
        JSON-able parameters of the run that made the rules.
    allowlists : dict, optional
        kind -> list of entries ``{"name", "condition", "reason"}`` (see
        :func:`allowlist_entries`): rows matching any entry of their kind are matched by no
        rule.

    Returns
    -------
    dict
        ``schema_version``, ``bundle_id``, ``run_id``, ``created_at``, ``code_version``,
        ``parameters``, ``attributes`` (per kind, the dtype, SQL and description of every
        attribute the rules and allowlists read), ``allowlists`` (both kinds, entries sorted
        by name) and ``rules`` (sorted by id, each with its ``sql``, ``content_hash`` and
        ``allowlists_applied``). Valid against the shipped JSON Schema, and a JSON round
        trip: equal to what :func:`load_bundle` returns for it.

    Raises
    ------
    RuleError
        An invalid rule or allowlist entry, a duplicate id, or a bundle that the schema
        refuses (the message names the JSON path and the rule).
    """
    allow = _normalise_allowlists(allowlists, {r.kind for r in rules})
    seen: set[str] = set()
    for rule in rules:
        rule.validate()
        if rule.id in seen:
            raise RuleError(f"rule {rule.id!r}: duplicate rule id")
        seen.add(rule.id)
    ordered = sorted(rules, key=lambda r: r.id)
    used: dict[str, set[str]] = {}
    for rule in ordered:
        used.setdefault(rule.kind, set()).update(condition_attributes(rule.condition))
    for kind, entries in allow.items():
        if entries:
            used.setdefault(kind, set()).update(_attributes_of(entries))
    attributes = {
        kind: {
            name: {"dtype": a.dtype, "sql": a.sql, "description": a.description}
            for name, a in sorted(attributes_for(kind).items())
            if name in names
        }
        for kind, names in sorted(used.items())
    }
    provenance = {"run_id": run_id, "code_version": code_version, "parameters": parameters}
    doc: dict[str, Any] = {
        "schema_version": BUNDLE_SCHEMA_VERSION,
        "run_id": run_id,
        "created_at": created_at,
        "code_version": code_version,
        "parameters": parameters,
        "attributes": attributes,
        "allowlists": allow,
        "rules": [_rule_entry(r, [e["name"] for e in allow[r.kind]], provenance) for r in ordered],
    }
    doc = json.loads(canonical_json(doc))  # plain JSON types only: equal to a reload
    doc["bundle_id"] = bundle_id_of(doc)
    validate_bundle_schema(doc, where="build_bundle")
    return doc


def _rule_entry(rule: Rule, allow_names: list[str], provenance: dict[str, Any]) -> dict[str, Any]:
    d = rule.to_dict()
    d["content_hash"] = rule_content_hash(rule)
    d["allowlists_applied"] = allow_names
    backtest, prov = d["backtest"], d["provenance"]
    if "expected_hits_per_day" not in backtest and "hits" in backtest:
        backtest["expected_hits_per_day"] = backtest["hits"]  # figures cover one day
    prov.setdefault("inducer", "unknown")
    for key, value in provenance.items():
        prov.setdefault(key, copy.deepcopy(value))
    d["sql"] = condition_to_sql(rule.condition)
    return d


# --------------------------------------------------------------------------- apply


def _active_rules(bundle: dict[str, Any], kind: str, as_of: datetime | None) -> list[Rule]:
    rules = [Rule.from_dict(d) for d in bundle["rules"] if d.get("kind") == kind]
    rules = [r for r in rules if r.status not in _INACTIVE]
    if as_of is not None:
        rules = [r for r in rules if not r.expired(as_of)]
    return sorted(rules, key=lambda r: r.id)


def _output_action(rule: Rule) -> str:
    return rule.action if rule.status == "enforce" else "shadow"


def bundle_to_sql(bundle: dict[str, Any], kind: str, *, as_of: datetime | None = None) -> str:
    """One DuckDB SELECT applying the bundle's ``kind`` rules to a table named after the kind.

    The table (``signups`` or ``senders``) must have every column of the input contract.
    The query returns the id column (``account_id`` / ``message_id``), ``rule_id`` and
    ``action`` (the rule's action for ``enforce`` rules, ``shadow`` for ``shadow`` and
    ``canary`` rules), one row per match, ordered by id then rule id. ``disabled`` and
    ``expired`` rules match nothing, and neither does any rule on a row matched by one of the
    kind's allowlist entries. With no rules it is valid and returns no rows.

    Parameters
    ----------
    bundle : dict
        A bundle from :func:`build_bundle` or :func:`load_bundle`.
    kind : str
        ``"signups"`` or ``"senders"``.
    as_of : datetime, optional
        Leave out rules whose ``expires_at`` is not after this time. By default expiry is
        left to the enforcement service (``expires_at`` is in the bundle).
    """
    k = get_kind(kind)
    idc = sql_identifier(k.id_column)
    rules = _active_rules(bundle, kind, as_of)
    allow = _allow_entries(bundle, kind)
    header = (
        f"-- Campaign Workbench rule bundle {bundle.get('bundle_id', '')} "
        f"(schema {bundle.get('schema_version')}): {len(rules)} {kind} rule(s), "
        f"{len(allow)} allowlist entr{'y' if len(allow) == 1 else 'ies'}.\n"
        f"-- Input: table {kind} with the input contract's columns. "
        f"Output: {k.id_column}, rule_id, action.\n"
    )
    if not rules:
        return (
            f"{header}SELECT CAST({idc} AS VARCHAR) AS {idc}, CAST(NULL AS VARCHAR) AS rule_id, "
            f"CAST(NULL AS VARCHAR) AS action\nFROM {kind}\nWHERE FALSE\n"
        )
    defs = bundle["attributes"][kind]
    names = sorted(
        set().union(*(condition_attributes(r.condition) for r in rules)) | _attributes_of(allow)
    )
    columns = [f"    {idc}"] + [f"    {defs[n]['sql']} AS {sql_identifier(n)}" for n in names]
    # An allowlisted row is matched by no rule. COALESCE: NULL must never mean "not allowed".
    exempt = ""
    if allow:
        either = " OR ".join(f"({condition_to_sql(e['condition'])})" for e in allow)
        exempt = f"\n  AND NOT COALESCE({either}, FALSE)"
    selects = [
        f"SELECT {idc}, {sql_string(r.id)} AS rule_id, {sql_string(_output_action(r))} AS action\n"
        f"FROM attrs\nWHERE ({condition_to_sql(r.condition)}){exempt}"
        for r in rules
    ]
    return (
        f"{header}WITH attrs AS (\n  SELECT\n"
        + ",\n".join(columns)
        + f"\n  FROM {kind}\n)\n"
        + "\nUNION ALL\n".join(selects)
        + f"\nORDER BY {idc}, rule_id\n"
    )


def _check_definitions(bundle: dict[str, Any], kind: str, names: set[str]) -> list[str]:
    """Attributes whose definition in the bundle differs from this code version."""
    defs = bundle.get("attributes", {}).get(kind, {})
    current = attributes_for(kind)
    return sorted(
        n
        for n in names
        if n not in defs
        or defs[n].get("sql") != current[n].sql
        or defs[n].get("dtype") != current[n].dtype
    )


def apply_bundle(
    bundle: dict[str, Any], df: pd.DataFrame, kind: str, *, as_of: datetime | None = None
) -> pd.DataFrame:
    """The Python evaluator of a bundle: the same rows :func:`bundle_to_sql` returns.

    Parameters
    ----------
    bundle : dict
        A bundle from :func:`build_bundle` or :func:`load_bundle`.
    df : DataFrame
        Rows of the input contract of ``kind`` (absent optional columns count as missing).
    kind : str
        ``"signups"`` or ``"senders"``.
    as_of : datetime, optional
        As in :func:`bundle_to_sql`.

    Returns
    -------
    DataFrame
        Columns ``account_id`` (resp. ``message_id``), ``rule_id``, ``action`` (``string``),
        one row per match, sorted by id then rule id, with a fresh index. Rows matched by an
        allowlist entry of ``kind`` never appear; ``disabled`` and ``expired`` rules match
        nothing; ``shadow`` and ``canary`` rules report action ``shadow``.

    Raises
    ------
    RuleError
        The bundle defines an attribute differently from this code version (the Python
        evaluator could not honour it).
    """
    k = get_kind(kind)
    rules = _active_rules(bundle, kind, as_of)
    allow = _allow_entries(bundle, kind) if rules else []
    names: set[str] = _attributes_of(allow)
    for rule in rules:
        names |= condition_attributes(rule.condition)
    if stale := _check_definitions(bundle, kind, names):
        raise RuleError(
            f"bundle {bundle.get('bundle_id', '')!r} defines {kind} attribute(s) {stale} "
            "differently from this code version; rebuild the bundle or use its SQL"
        )
    attrs = compute_attributes(df, kind, sorted(names))
    exempt = np.zeros(len(df), dtype=bool)
    for entry in allow:
        exempt |= evaluate(entry["condition"], attrs)
    ids = df[k.id_column].to_numpy(dtype=object)
    parts: list[pd.DataFrame] = []
    for rule in rules:
        hit = np.flatnonzero(evaluate(rule.condition, attrs) & ~exempt)
        parts.append(
            pd.DataFrame(
                {
                    k.id_column: ids[hit],
                    "rule_id": rule.id,
                    "action": _output_action(rule),
                }
            )
        )
    columns = [k.id_column, "rule_id", "action"]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    out = out.astype(dict.fromkeys(columns, "string"))
    # Code-point order, as DuckDB sorts VARCHAR; ties keep rule order (already by id).
    return out.sort_values(columns[:2], kind="stable", na_position="last").reset_index(drop=True)


# --------------------------------------------------------------------------- load


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_bundle(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a bundle written by :func:`write_rules`.

    The checks, in order: readable JSON (no NaN or infinity); ``schema_version`` 1; the top
    keys; ``bundle_id`` matches the content; the shipped JSON Schema; then what a schema
    cannot say (valid conditions over known attributes, each rule's SQL and content hash,
    unique ids, attribute definitions, ``allowlists_applied``).

    A version-1 bundle written before allowlists and rule lifecycles existed (no
    ``allowlists`` key) is upgraded in memory after its ``bundle_id`` is checked: no
    allowlists, ``status`` from ``mode``, ``parent_version`` null, ``content_hash``
    computed, ``expected_hits_per_day`` = ``hits``, ``inducer`` ``"unknown"``. It keeps the
    ``bundle_id`` it has on disk.

    Raises
    ------
    RuleError
        Anything above, the message naming the file and the JSON path or rule id and the
        attribute or op.
    """
    p = Path(path)
    try:
        bundle = json.loads(p.read_bytes().decode("utf-8"), parse_constant=_no_constants)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise RuleError(f"{p}: cannot read the bundle: {exc}") from None
    if not isinstance(bundle, dict):
        raise RuleError(f"{p}: a bundle is a JSON object")
    version = bundle.get("schema_version")
    if version != BUNDLE_SCHEMA_VERSION:
        raise RuleError(
            f"{p}: schema_version {version!r} is not supported (expected {BUNDLE_SCHEMA_VERSION})"
        )
    if missing := [key for key in _TOP_KEYS if key not in bundle]:
        raise RuleError(f"{p}: missing key(s) {missing}")
    if bundle["bundle_id"] != bundle_id_of(bundle):
        raise RuleError(f"{p}: bundle_id does not match the content (edited after it was built?)")
    if "allowlists" not in bundle:
        log.info("%s: bundle predates allowlists and rule status; upgraded in memory", p)
        bundle = _upgrade_legacy(bundle)
    validate_bundle_schema(bundle, where=str(p))
    try:
        _normalise_allowlists(bundle["allowlists"])
    except RuleError as exc:
        raise RuleError(f"{p}: {exc}") from None
    _validate_rules(bundle, p)
    return bundle


def _upgrade_legacy(bundle: dict[str, Any]) -> dict[str, Any]:
    """A bundle from before allowlists and rule lifecycles, with the new keys' defaults."""
    out = copy.deepcopy(bundle)
    out["allowlists"] = {kind: [] for kind in BUILTIN_KINDS}
    for d in out["rules"] if isinstance(out["rules"], list) else []:
        if not isinstance(d, dict):
            continue  # the schema names it
        if "status" not in d and d.get("mode", "shadow") in MODES:
            d["status"] = d.get("mode", "shadow")
        d.setdefault("parent_version", None)
        d.setdefault("allowlists_applied", [])
        d.setdefault("content_hash", rule_content_hash(d))
        backtest, prov = d.get("backtest"), d.get("provenance")
        if isinstance(backtest, dict) and "hits" in backtest:
            backtest.setdefault("expected_hits_per_day", backtest["hits"])
        if isinstance(prov, dict):
            prov.setdefault("inducer", "unknown")
    return out


def _validate_rules(bundle: dict[str, Any], p: Path) -> None:
    seen: set[str] = set()
    definitions = bundle["attributes"]
    for kind, entries in bundle["allowlists"].items():
        for entry in entries:
            for name in sorted(condition_attributes(entry["condition"])):
                if name not in definitions.get(kind, {}):
                    raise RuleError(
                        f"{p}: allowlist {kind}/{entry['name']!r}: attribute {name!r} has no "
                        "definition in the bundle"
                    )
    for entry in bundle["rules"]:
        try:
            rule = Rule.from_dict(entry)
            rule.validate()
        except RuleError as exc:
            raise RuleError(f"{p}: {exc}") from None
        if rule.id in seen:
            raise RuleError(f"{p}: rule {rule.id!r}: duplicate rule id")
        seen.add(rule.id)
        if entry.get("sql") != condition_to_sql(rule.condition):
            raise RuleError(f"{p}: rule {rule.id!r}: 'sql' does not match its condition")
        names = sorted(e["name"] for e in bundle["allowlists"][rule.kind])
        if sorted(rule.allowlists_applied) != names:
            raise RuleError(
                f"{p}: rule {rule.id!r}: allowlists_applied {rule.allowlists_applied} is not "
                f"the {rule.kind} allowlist {names}"
            )
        defs = definitions.get(rule.kind)
        for name in sorted(condition_attributes(rule.condition)):
            d = defs.get(name) if isinstance(defs, dict) else None
            if not isinstance(d, dict):
                raise RuleError(
                    f"{p}: rule {rule.id!r}: attribute {name!r} has no definition in the bundle"
                )
        if stale := _check_definitions(bundle, rule.kind, condition_attributes(rule.condition)):
            log.warning(
                "%s: rule %s reads attribute(s) %s defined differently from this code version; "
                "the bundle's SQL is authoritative",
                p,
                rule.id,
                stale,
            )


# --------------------------------------------------------------------------- publish


def _claimed_id(raw: bytes) -> str | None:
    """The ``bundle_id`` a published file claims, if it holds a well-formed one."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    bid = doc.get("bundle_id") if isinstance(doc, dict) else None
    return bid if isinstance(bid, str) and _BUNDLE_ID.fullmatch(bid) else None


def _archive_of_current(rules_dir: Path, new_id: Any) -> tuple[Path, bytes] | None:
    """Where and what to archive of the bundle about to be replaced (None: nothing to keep)."""
    try:
        raw = (rules_dir / "bundle.json").read_bytes()
    except FileNotFoundError:
        return None
    old_id = _claimed_id(raw)
    if old_id is not None and old_id == new_id:
        return None  # republishing the same bundle
    # An unreadable file is kept too (under its hash): never destroy what enforcement used.
    name = old_id or f"unreadable-{hashlib.sha256(raw).hexdigest()[:16]}"
    target = rules_dir / HISTORY_DIR / f"{name}.json"
    if target.exists():
        if target.read_bytes() != raw:
            log.warning("%s already archived with other bytes; keeping the archived copy", name)
        return None
    return target, raw


def publish_bundle(
    rules_dir: str | os.PathLike[str], bundle: dict[str, Any], *, data: bytes | None = None
) -> dict[str, Path]:
    """Make ``bundle`` the published one in ``rules_dir``, keeping the one it replaces.

    Writes ``bundle.json``, and for every kind ``<kind>.sql`` and ``<kind>.cel.json`` (rendered
    from ``bundle`` by this code version), the Rspamd configuration of the sender rules in
    ``rspamd/`` (with ``rspamd/skipped.json``: rules Rspamd cannot express exactly), and
    copies the bundle being replaced to ``history/<its bundle_id>.json`` (unless it is the
    same bundle or already archived).
    Everything is rendered and written to temporary files before any target is replaced;
    the archive copy is renamed first and ``bundle.json`` last, and a failed rename restores
    the files already replaced, so a reader never sees a half-written or mismatched bundle.

    Parameters
    ----------
    rules_dir : path
        The folder holding ``bundle.json`` (created if needed).
    bundle : dict
        The bundle to publish (validated by the caller).
    data : bytes, optional
        The bytes to write as ``bundle.json`` (default: ``canonical_json(bundle)``); a
        rollback republishes an archived file byte for byte.

    Returns
    -------
    dict
        ``{"bundle": path, "signups": path, "senders": path}`` and, when the replaced
        bundle was archived, ``"archived": path``.
    """
    # the portable exports import this module's helpers: import them here, not at the top
    from anomaly.export_cel import bundle_to_cel
    from anomaly.export_rspamd import bundle_to_rspamd

    rules_dir = Path(rules_dir)
    payloads: dict[str, tuple[Path, bytes]] = {
        kind: (rules_dir / f"{kind}.sql", bundle_to_sql(bundle, kind).encode("utf-8"))
        for kind in bundle_kinds(bundle)
    }
    for kind in bundle_kinds(bundle):
        payloads[f"{kind}.cel"] = (
            rules_dir / f"{kind}.cel.json",
            canonical_json(bundle_to_cel(bundle, kind)),
        )
    rspamd = bundle_to_rspamd(bundle)
    for name, text in sorted(rspamd.files.items()):
        payloads[f"rspamd/{name}"] = (rules_dir / "rspamd" / name, text.encode("utf-8"))
    payloads["rspamd/skipped"] = (
        rules_dir / "rspamd" / "skipped.json",
        canonical_json([{"rule_id": x.rule_id, "reason": x.reason} for x in rspamd.skipped]),
    )
    payloads["bundle"] = (
        rules_dir / "bundle.json",
        canonical_json(bundle) if data is None else data,
    )
    archive = _archive_of_current(rules_dir, bundle.get("bundle_id"))
    files: dict[str | os.PathLike[str], bytes] = dict([archive]) if archive else {}
    files.update(dict(payloads.values()))
    atomic_write_files(files)
    paths = {name: path for name, (path, _) in payloads.items()}
    if archive:
        paths["archived"] = archive[0]
        log.info("archived the replaced rule bundle as %s", archive[0])
    log.info("published rule bundle %s in %s", bundle.get("bundle_id", ""), rules_dir)
    return paths


def write_rules(out_dir: str | os.PathLike[str], bundle: dict[str, Any]) -> dict[str, Path]:
    """Publish ``bundle`` as ``OUT/rules/bundle.json`` and ``OUT/rules/<kind>.sql``, atomically.

    The bundle it replaces is kept in ``OUT/rules/history/`` (see :func:`publish_bundle`).

    Returns
    -------
    dict
        ``{"bundle": path, "signups": path, "senders": path}`` (and ``"archived"``).
    """
    return publish_bundle(Path(out_dir) / "rules", bundle)
