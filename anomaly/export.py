"""The rule bundle: canonical JSON, one DuckDB SELECT per kind, and a Python applier.

The bundle is what enforcement consumes without this project's Python. It carries every
rule's condition (JSON) and its SQL, and the SQL of every attribute the rules read, so that
:func:`bundle_to_sql` builds a self-contained query from the bundle alone. :func:`apply_bundle`
is the Python evaluator of the same bundle; the tests hold both to the same rows.

``bundle_id`` is the SHA-256 of the canonical JSON of the bundle without ``bundle_id``:
:func:`load_bundle` recomputes it, so an edited bundle (say, a rule flipped to ``enforce`` by
hand) is refused rather than half-trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anomaly.atomic import atomic_write_files
from anomaly.rules import Rule, RuleError, condition_attributes, condition_to_sql, evaluate
from clustering.attributes import attributes_for, compute_attributes, sql_identifier, sql_string
from clustering.kinds import KINDS, get_kind

log = logging.getLogger(__name__)

__all__ = [
    "BUNDLE_SCHEMA_VERSION",
    "apply_bundle",
    "build_bundle",
    "bundle_id_of",
    "bundle_to_sql",
    "canonical_json",
    "load_bundle",
    "write_rules",
]

BUNDLE_SCHEMA_VERSION = 1
_TOP_KEYS = (
    "schema_version",
    "bundle_id",
    "run_id",
    "created_at",
    "code_version",
    "parameters",
    "attributes",
    "rules",
)


def canonical_json(obj: Any) -> bytes:
    """Canonical bytes: sorted keys, indent 2, UTF-8 (not ASCII-escaped), trailing newline.

    numpy scalars are written as the plain numbers they hold.

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


def bundle_id_of(bundle: dict[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of ``bundle`` without its ``bundle_id``."""
    body = {k: v for k, v in bundle.items() if k != "bundle_id"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def build_bundle(
    rules: list[Rule],
    *,
    run_id: str,
    created_at: str,
    code_version: str,
    parameters: dict[str, Any],
) -> dict[str, Any]:
    """Assemble the versioned rule bundle.

    Parameters
    ----------
    rules : list of Rule
        Rules of any kinds; validated here. Ids must be unique.
    run_id, created_at, code_version : str
        Provenance of the bundle.
    parameters : dict
        JSON-able parameters of the run that made the rules.

    Returns
    -------
    dict
        ``schema_version``, ``bundle_id``, ``run_id``, ``created_at``, ``code_version``,
        ``parameters``, ``attributes`` (per kind, the dtype, SQL and description of every
        attribute the rules read) and ``rules`` (sorted by id, each with its ``sql``). The
        dict is a JSON round trip, equal to what :func:`load_bundle` returns for it.

    Raises
    ------
    RuleError
        An invalid rule or a duplicate id.
    """
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
    attributes = {
        kind: {
            name: {"dtype": a.dtype, "sql": a.sql, "description": a.description}
            for name, a in sorted(attributes_for(kind).items())
            if name in names
        }
        for kind, names in sorted(used.items())
    }
    doc: dict[str, Any] = {
        "schema_version": BUNDLE_SCHEMA_VERSION,
        "run_id": run_id,
        "created_at": created_at,
        "code_version": code_version,
        "parameters": parameters,
        "attributes": attributes,
        "rules": [{**r.to_dict(), "sql": condition_to_sql(r.condition)} for r in ordered],
    }
    doc = json.loads(canonical_json(doc))  # plain JSON types only: equal to a reload
    doc["bundle_id"] = bundle_id_of(doc)
    return doc


def _active_rules(bundle: dict[str, Any], kind: str, as_of: datetime | None) -> list[Rule]:
    rules = [Rule.from_dict(d) for d in bundle["rules"] if d.get("kind") == kind]
    if as_of is not None:
        rules = [r for r in rules if not r.expired(as_of)]
    return sorted(rules, key=lambda r: r.id)


def _output_action(rule: Rule) -> str:
    return rule.action if rule.mode == "enforce" else "shadow"


def bundle_to_sql(bundle: dict[str, Any], kind: str, *, as_of: datetime | None = None) -> str:
    """One DuckDB SELECT applying the bundle's ``kind`` rules to a table named after the kind.

    The table (``signups`` or ``senders``) must have every column of the input contract.
    The query returns the id column (``account_id`` / ``message_id``), ``rule_id`` and
    ``action`` (the rule's action for enforce rules, ``shadow`` for shadow rules), one row
    per match, ordered by id then rule id. With no rules it is valid and returns no rows.

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
    header = (
        f"-- Campaign Workbench rule bundle {bundle.get('bundle_id', '')} "
        f"(schema {bundle.get('schema_version')}): {len(rules)} {kind} rule(s).\n"
        f"-- Input: table {kind} with the input contract's columns. "
        f"Output: {k.id_column}, rule_id, action.\n"
    )
    if not rules:
        return (
            f"{header}SELECT CAST({idc} AS VARCHAR) AS {idc}, CAST(NULL AS VARCHAR) AS rule_id, "
            f"CAST(NULL AS VARCHAR) AS action\nFROM {kind}\nWHERE FALSE\n"
        )
    defs = bundle["attributes"][kind]
    names = sorted(set().union(*(condition_attributes(r.condition) for r in rules)))
    columns = [f"    {idc}"] + [f"    {defs[n]['sql']} AS {sql_identifier(n)}" for n in names]
    selects = [
        f"SELECT {idc}, {sql_string(r.id)} AS rule_id, {sql_string(_output_action(r))} AS action\n"
        f"FROM attrs\nWHERE {condition_to_sql(r.condition)}"
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
        one row per match, sorted by id then rule id, with a fresh index.

    Raises
    ------
    RuleError
        The bundle defines an attribute differently from this code version (the Python
        evaluator could not honour it).
    """
    k = get_kind(kind)
    rules = _active_rules(bundle, kind, as_of)
    names = set().union(*(condition_attributes(r.condition) for r in rules)) if rules else set()
    if stale := _check_definitions(bundle, kind, names):
        raise RuleError(
            f"bundle {bundle.get('bundle_id', '')!r} defines {kind} attribute(s) {stale} "
            "differently from this code version; rebuild the bundle or use its SQL"
        )
    attrs = compute_attributes(df, kind, sorted(names))
    ids = df[k.id_column].to_numpy(dtype=object)
    parts: list[pd.DataFrame] = []
    for rule in rules:
        hit = np.flatnonzero(evaluate(rule.condition, attrs))
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


def load_bundle(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a bundle written by :func:`write_rules`.

    Raises
    ------
    RuleError
        Unreadable JSON, unknown schema version, missing keys, an invalid rule (the message
        names the rule id and the attribute or op), a rule whose SQL does not match its
        condition, duplicate ids, missing attribute definitions, or a ``bundle_id`` that does
        not match the content.
    """
    p = Path(path)
    try:
        bundle = json.loads(p.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
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
    if not isinstance(bundle["rules"], list) or not isinstance(bundle["attributes"], dict):
        raise RuleError(f"{p}: 'rules' must be a list and 'attributes' an object")
    _validate_rules(bundle, p)
    if bundle["bundle_id"] != bundle_id_of(bundle):
        raise RuleError(f"{p}: bundle_id does not match the content (edited after it was built?)")
    return bundle


def _validate_rules(bundle: dict[str, Any], p: Path) -> None:
    seen: set[str] = set()
    for entry in bundle["rules"]:
        rule = Rule.from_dict(entry)
        rule.validate()
        if rule.id in seen:
            raise RuleError(f"{p}: rule {rule.id!r}: duplicate rule id")
        seen.add(rule.id)
        if entry.get("sql") != condition_to_sql(rule.condition):
            raise RuleError(f"{p}: rule {rule.id!r}: 'sql' does not match its condition")
        defs = bundle["attributes"].get(rule.kind)
        for name in sorted(condition_attributes(rule.condition)):
            d = defs.get(name) if isinstance(defs, dict) else None
            if not isinstance(d, dict) or not {"dtype", "sql", "description"} <= set(d):
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


def write_rules(out_dir: str | os.PathLike[str], bundle: dict[str, Any]) -> dict[str, Path]:
    """Write ``rules/bundle.json`` and ``rules/<kind>.sql`` for every kind, atomically.

    Everything is rendered and written to temporary files before any target is replaced;
    ``bundle.json`` is renamed last and a failed rename restores the files already replaced,
    so a reader never sees a half-written or mismatched bundle.

    Returns
    -------
    dict
        ``{"bundle": path, "signups": path, "senders": path}``.
    """
    rules_dir = Path(out_dir) / "rules"
    payloads: dict[str, tuple[Path, bytes]] = {
        kind: (rules_dir / f"{kind}.sql", bundle_to_sql(bundle, kind).encode("utf-8"))
        for kind in KINDS
    }
    payloads["bundle"] = (rules_dir / "bundle.json", canonical_json(bundle))
    atomic_write_files({path: data for path, data in payloads.values()})
    log.info("wrote rule bundle %s to %s", bundle.get("bundle_id", ""), rules_dir)
    return {name: path for name, (path, _) in payloads.items()}
