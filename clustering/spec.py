"""Entity specs: a kind of entity described in TOML, with no code.

A spec names the kind's id, time and entity columns and gives every other column a *role*
(``email``, ``ip``, ``user_agent``, ``username``, ``name``, ``text``, ``url``,
``categorical``, ``numeric``, ``count``, ``boolean``, ``id``, ``ignore``). The roles decide
everything the pipeline needs to know about the kind:

- the derived **attributes** that rules read (each one a named derivation of a column with a
  Python and a DuckDB SQL form, :mod:`clustering.attributes`);
- the **features** that make one actor's entities neighbours (:mod:`clustering.features`);
- the **signal families** of the campaign score (network, client, identity, content) and the
  behaviour columns of the entity score (:mod:`anomaly.scoring`);
- the **rule predicates** (``in`` or ``range``) and their durability tier
  (:mod:`anomaly.induction`).

Any of these can also be spelled out in the spec, which then replaces what the roles give: the
built-in ``signups`` and ``senders`` specs (``clustering/specs/*.toml``) do, so their
attributes, weights and families are tuned values written down rather than defaults.
A user's own kind (logins, payments, profiles) needs a spec file only; see ``docs/specs.md``.

Errors name the file and the key (:class:`SpecError`); the CLI turns them into exit code 2.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clustering.features import FeatureSpec

__all__ = [
    "DERIVATIONS",
    "FORMAT_EXAMPLE",
    "ROLES",
    "AttributeDef",
    "ColumnSpec",
    "EntitySpec",
    "SpecError",
    "builtin_spec_path",
    "load_spec",
    "parse_spec",
    "read_toml",
]


class SpecError(ValueError):
    """A spec that cannot be used; the message names the file and the key."""


# derivation -> value type ("raw" takes the column's own type)
DERIVATIONS: dict[str, str] = {
    "raw": "raw",
    "lower": "string",
    "domain": "string",
    "domain_tld": "string",
    "local": "string",
    "local_has_plus": "boolean",
    "local_dots": "integer",
    "canonical": "string",
    "local_canonical": "string",
    "plus_tag_len": "integer",
    "local_shape": "string",
    "shape": "string",
    "length": "integer",
    "digits": "integer",
    "vowel_share": "float",
    "text_shape": "string",
    "skeleton": "string",
    "digit_run": "integer",
    "url_host": "string",
    "url_tld": "string",
    "ip_version": "integer",
    "prefix24": "string",
    "prefix16": "string",
    "prefix48": "string",
    "prefix64": "string",
    "ua_family": "string",
    "ua_os": "string",
    "ua_build": "string",
    "hour": "integer",
    "utc_date": "string",
}

COLUMN_TYPES = ("string", "timestamp", "integer", "float", "boolean")
# the instant a declared time format is tried on (and shown as an example in reader errors)
FORMAT_EXAMPLE = datetime(2007, 4, 6, 10, 58, 22, tzinfo=UTC)
FAMILY_NAMES = ("network", "client", "identity", "content", "other")


@dataclass(frozen=True)
class _Role:
    """What a role gives a column by default.

    ``attributes`` maps a suffix ("" = the column's own name) to a derivation; the other
    tables map a suffix to a weight (features) or to (predicate, tier) (rules).
    """

    types: tuple[str, ...]
    attributes: dict[str, str]
    family: str | None = None
    categorical: dict[str, float] = field(default_factory=dict)
    counts: dict[str, float] = field(default_factory=dict)
    numeric: dict[str, float] = field(default_factory=dict)
    text: dict[str, float] = field(default_factory=dict)
    rules: dict[str, tuple[str, int]] = field(default_factory=dict)
    profile: tuple[str, ...] = ()
    coarser: dict[str, str] = field(default_factory=dict)
    rotated: tuple[str, ...] = ()


ROLES: dict[str, _Role] = {
    "id": _Role(("string", "integer"), {"": "raw"}),
    "time": _Role(("timestamp",), {"hour": "hour", "day": "utc_date"}),
    "ignore": _Role(COLUMN_TYPES, {}),
    "email": _Role(
        ("string",),
        {
            "": "lower",
            "domain": "domain",
            "tld": "domain_tld",
            "local": "local",
            "canonical": "canonical",
            "local_shape": "local_shape",
            "local_has_plus": "local_has_plus",
            "plus_tag_len": "plus_tag_len",
        },
        family="identity",
        categorical={"domain": 0.8, "canonical": 1.0, "local_shape": 1.0},
        counts={"domain": 1.5, "canonical": 2.0},
        rules={
            "tld": ("in", 1),
            "local_shape": ("in", 1),
            "local_has_plus": ("in", 1),
            "plus_tag_len": ("range", 1),
            "domain": ("in", 2),
            "canonical": ("in", 2),
        },
        profile=("domain", "tld", "canonical", "local_shape"),
        coarser={"canonical": "domain", "domain": "tld"},
    ),
    "username": _Role(
        ("string",),
        {
            "": "lower",
            "shape": "shape",
            "len": "length",
            "digits": "digits",
            "vowel_share": "vowel_share",
        },
        family="identity",
        categorical={"shape": 1.0},
        numeric={"len": 0.3, "digits": 0.3, "vowel_share": 0.3},
        text={"": 0.8},
        rules={
            "shape": ("in", 1),
            "len": ("range", 1),
            "digits": ("range", 1),
            "vowel_share": ("range", 1),
        },
        profile=("shape",),
    ),
    "name": _Role(
        ("string",),
        {"": "lower", "shape": "text_shape"},
        family="identity",
        categorical={"shape": 0.5, "": 0.6},
        counts={"": 1.5},
        text={"": 0.6},
        rules={"shape": ("in", 1), "": ("in", 2)},
        profile=("shape",),
        coarser={"": "shape"},
    ),
    "url": _Role(
        ("string",),
        {"domain": "url_host", "tld": "url_tld"},
        family="content",
        categorical={"domain": 1.0, "tld": 0.5},
        counts={"domain": 1.5},
        rules={"tld": ("in", 1), "domain": ("in", 2)},
        profile=("domain", "tld"),
        coarser={"domain": "tld"},
        rotated=("domain", "tld"),
    ),
    "ip": _Role(
        ("string",),
        {
            "": "lower",
            "version": "ip_version",
            "prefix24": "prefix24",
            "prefix16": "prefix16",
            "prefix48": "prefix48",
            "prefix64": "prefix64",
        },
        family="network",
        categorical={"prefix24": 0.7, "prefix16": 0.4},
        counts={"prefix24": 1.5},
        rules={"prefix24": ("in", 2), "prefix16": ("in", 2)},
        profile=("prefix24", "prefix16"),
        coarser={"prefix24": "prefix16"},
        rotated=("prefix24", "prefix16"),
    ),
    "user_agent": _Role(
        ("string",),
        {"": "raw", "family": "ua_family", "os": "ua_os", "build": "ua_build"},
        family="client",
        categorical={"build": 1.0, "": 0.5},
        counts={"build": 1.5},
        rules={"build": ("in", 1), "family": ("in", 1), "os": ("in", 1), "": ("in", 2)},
        profile=("build", "family", "os"),
        coarser={"": "build", "build": "family"},
    ),
    "text": _Role(
        ("string",),
        {
            "skeleton": "skeleton",
            "shape": "text_shape",
            "len": "length",
            "digits": "digits",
            "digit_run": "digit_run",
            "url_domain": "url_host",
            "url_tld": "url_tld",
        },
        family="content",
        categorical={"skeleton": 1.0, "url_domain": 1.0, "url_tld": 0.5},
        counts={"skeleton": 1.5, "url_domain": 1.5},
        text={"skeleton": 0.8},
        rules={
            "skeleton": ("in", 1),
            "shape": ("in", 1),
            "len": ("range", 1),
            "digits": ("range", 1),
            "digit_run": ("range", 1),
            "url_tld": ("in", 1),
            "url_domain": ("in", 2),
        },
        profile=("skeleton", "url_domain", "url_tld"),
        coarser={"skeleton": "shape", "url_domain": "url_tld"},
        rotated=("url_domain", "url_tld"),
    ),
    "categorical": _Role(
        ("string", "integer", "boolean"),
        {"": "raw"},
        family="other",
        categorical={"": 1.0},
        counts={"": 1.0},
        rules={"": ("in", 1)},
        profile=("",),
    ),
    "numeric": _Role(
        ("integer", "float"), {"": "raw"}, numeric={"": 0.4}, rules={"": ("range", 1)}
    ),
    "count": _Role(("integer", "float"), {"": "raw"}, numeric={"": 0.4}, rules={"": ("range", 1)}),
    "boolean": _Role(("boolean",), {"": "raw"}, numeric={"": 0.3}, rules={"": ("in", 1)}),
}

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class ColumnSpec:
    """One input column: its type, whether it must be present, and its role."""

    name: str
    type: str
    role: str
    required: bool = False
    description: str = ""
    family: str | None = None
    weight: float = 1.0
    fallback: str | None = None
    behaviour: bool = False
    low_is_suspicious: bool = False
    log_scale: bool = False
    pivot: bool = False
    # strptime format of a timestamp column's text (CSV, JSON Lines); None: ISO 8601
    format: str | None = None


@dataclass(frozen=True)
class AttributeDef:
    """A derived attribute: ``derive`` applied to ``column`` (or to ``fallback`` where empty)."""

    name: str
    column: str
    derive: str
    fallback: str | None = None
    description: str = ""


@dataclass(frozen=True)
class EntitySpec:
    """Everything the pipeline knows about one entity kind (see the module docstring)."""

    name: str
    id_column: str
    time_column: str
    entity_column: str
    columns: tuple[ColumnSpec, ...]
    attributes: tuple[AttributeDef, ...]
    features: FeatureSpec
    families: dict[str, tuple[str, ...]]
    supporting_families: frozenset[str]
    profile_attributes: tuple[str, ...]
    rule_attributes: dict[str, tuple[str, int]]
    behaviour: tuple[str, ...]
    low_is_suspicious: frozenset[str]
    velocity: tuple[str, ...]
    pivots: tuple[str, ...]
    rotated_first: frozenset[str]
    portable: frozenset[str]
    coarser: dict[str, str]
    # rule attribute -> what an actor changes it with (its name template, its client...)
    rule_families: dict[str, str] = field(default_factory=dict)
    entity_behaviour: tuple[str, ...] = ()
    merge: tuple[str, ...] = ()
    attach: tuple[str, ...] = ()
    allowlist: dict[str, str | None] = field(default_factory=dict)
    entity_lowercase: bool = False
    aggregate: dict[str, str] = field(default_factory=dict)
    entity_extra: dict[str, str] = field(default_factory=dict)
    timer_pool: str | None = None
    source: str = "<built-in>"


_TOP_KEYS = {
    "name",
    "description",
    "id_column",
    "time_column",
    "entity_column",
    "entity_lowercase",
    "columns",
    "attributes",
    "features",
    "scoring",
    "rules",
    "clustering",
    "entity",
}
_COLUMN_KEYS = {
    "type",
    "role",
    "required",
    "description",
    "family",
    "weight",
    "fallback",
    "behaviour",
    "low_is_suspicious",
    "log_scale",
    "pivot",
    "format",
}


def builtin_spec_path(name: str) -> Path:
    """Path of the shipped spec of a built-in kind."""
    return Path(__file__).with_name("specs") / f"{name}.toml"


def load_spec(path: str | Path) -> EntitySpec:
    """Read and validate the spec file at ``path``.

    Raises
    ------
    SpecError
        Unreadable TOML, an unknown key, role, type or derivation, a reference to a column or
        attribute that does not exist; the message names the file and the key.
    """
    return parse_spec(read_toml(path, SpecError, "spec"), str(path))


def read_toml(path: str | Path, error: type[ValueError], what: str) -> dict[str, Any]:
    """The TOML document at ``path``; ``error`` naming the file when it is missing or broken."""
    p = Path(path)
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{p}: no such {what} file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{p}: not valid TOML: {exc}") from None


def parse_spec(data: dict[str, Any], source: str = "<spec>") -> EntitySpec:
    """Validate a parsed spec (a TOML document as a dict) and fill in what the roles give."""
    return _Parser(data, source).parse()


class _Parser:
    def __init__(self, data: dict[str, Any], source: str) -> None:
        self.data = data
        self.source = source

    def fail(self, key: str, message: str) -> SpecError:
        return SpecError(f"{self.source}: {key}: {message}")

    def table(self, obj: Any, key: str, allowed: set[str] | None = None) -> dict[str, Any]:
        if obj is None:
            return {}
        if not isinstance(obj, dict):
            raise self.fail(key, "must be a table")
        if allowed is not None:
            unknown = sorted(set(obj) - allowed)
            if unknown:
                raise self.fail(
                    f"{key}.{unknown[0]}" if key else unknown[0],
                    f"unknown key; known: {', '.join(sorted(allowed))}",
                )
        return obj

    def string(self, obj: Any, key: str) -> str:
        if not isinstance(obj, str) or not obj:
            raise self.fail(key, "must be a non-empty string")
        return obj

    def number(self, obj: Any, key: str) -> float:
        if isinstance(obj, bool) or not isinstance(obj, int | float):
            raise self.fail(key, f"must be a number, got {obj!r}")
        return float(obj)

    def flag(self, obj: Any, key: str) -> bool:
        if not isinstance(obj, bool):
            raise self.fail(key, f"must be true or false, got {obj!r}")
        return obj

    def names(self, obj: Any, key: str, known: set[str], what: str) -> tuple[str, ...]:
        if not isinstance(obj, list) or not all(isinstance(v, str) for v in obj):
            raise self.fail(key, "must be an array of strings")
        for v in obj:
            if v not in known:
                raise self.fail(key, f"unknown {what} {v!r}")
        return tuple(obj)

    def weights(self, obj: Any, key: str, known: set[str]) -> dict[str, float]:
        tab = self.table(obj, key)
        for name in tab:
            if name not in known:
                raise self.fail(f"{key}.{name}", "unknown attribute")
        return {n: self.number(v, f"{key}.{n}") for n, v in tab.items()}

    # ------------------------------------------------------------------ columns

    def columns(self) -> tuple[ColumnSpec, ...]:
        cols = self.table(self.data.get("columns"), "columns")
        if not cols:
            raise self.fail("columns", "a spec needs at least its id and time columns")
        out = []
        for name, raw in cols.items():
            key = f"columns.{name}"
            if not _NAME.match(name):
                raise self.fail(key, "column names are lower-case letters, digits and '_'")
            c = self.table(raw, key, _COLUMN_KEYS)
            role = self.string(c.get("role"), f"{key}.role")
            if role not in ROLES:
                raise self.fail(f"{key}.role", f"unknown role {role!r}; known: {', '.join(ROLES)}")
            ctype = c.get("type", "timestamp" if role == "time" else "string")
            if ctype not in COLUMN_TYPES:
                raise self.fail(f"{key}.type", f"unknown type {ctype!r}; known: {COLUMN_TYPES}")
            if ctype not in ROLES[role].types:
                raise self.fail(
                    f"{key}.type",
                    f"role {role!r} takes {' or '.join(ROLES[role].types)} columns, not {ctype}",
                )
            family = c.get("family")
            if family is not None and family not in FAMILY_NAMES:
                raise self.fail(
                    f"{key}.family", f"unknown family {family!r}; known: {FAMILY_NAMES}"
                )
            out.append(
                ColumnSpec(
                    name=name,
                    type=ctype,
                    role=role,
                    required=self.flag(c.get("required", False), f"{key}.required"),
                    description=str(c.get("description", "")),
                    family=family,
                    weight=self.number(c.get("weight", 1.0), f"{key}.weight"),
                    fallback=c.get("fallback"),
                    behaviour=self.flag(c.get("behaviour", False), f"{key}.behaviour"),
                    low_is_suspicious=self.flag(
                        c.get("low_is_suspicious", False), f"{key}.low_is_suspicious"
                    ),
                    log_scale=self.flag(c.get("log_scale", False), f"{key}.log_scale"),
                    pivot=self.flag(c.get("pivot", False), f"{key}.pivot"),
                    format=self.time_format(c.get("format"), f"{key}.format", ctype),
                )
            )
        by_name = {col.name for col in out}
        for col in out:
            if col.fallback is not None and col.fallback not in by_name:
                raise self.fail(f"columns.{col.name}.fallback", f"no column {col.fallback!r}")
        return tuple(out)

    def time_format(self, obj: Any, key: str, ctype: str) -> str | None:
        """A timestamp column's declared format: a ``strptime`` format that reads back what
        it writes (``%a %b %d %H:%M:%S %z %Y`` for Twitter's ``Fri Apr 06 10:58:22 +0000
        2007``)."""
        if obj is None:
            return None
        if ctype != "timestamp":
            raise self.fail(key, f"only timestamp columns take a format, not {ctype}")
        fmt = self.string(obj, key)
        if "%" not in fmt:
            raise self.fail(key, f"{fmt!r} has no %-directive (e.g. '%d/%m/%Y %H:%M')")
        try:
            datetime.strptime(FORMAT_EXAMPLE.strftime(fmt), fmt)
        except ValueError as exc:
            raise self.fail(key, f"{fmt!r} is not a usable strptime format: {exc}") from None
        return fmt

    # --------------------------------------------------------------- attributes

    def attributes(self, cols: dict[str, ColumnSpec]) -> tuple[AttributeDef, ...]:
        given = self.data.get("attributes")
        if given is None:
            return tuple(_role_attributes(cols))
        out = []
        for name, raw in self.table(given, "attributes").items():
            key = f"attributes.{name}"
            if not _NAME.match(name):
                raise self.fail(key, "attribute names are lower-case letters, digits and '_'")
            a = self.table(raw, key, {"column", "derive", "fallback", "description"})
            column = self.string(a.get("column"), f"{key}.column")
            if column not in cols:
                raise self.fail(f"{key}.column", f"no column {column!r}")
            derive = a.get("derive", "raw")
            if derive not in DERIVATIONS:
                raise self.fail(f"{key}.derive", f"unknown derivation {derive!r}")
            fallback = a.get("fallback")
            if fallback is not None and fallback not in cols:
                raise self.fail(f"{key}.fallback", f"no column {fallback!r}")
            out.append(AttributeDef(name, column, derive, fallback, str(a.get("description", ""))))
        return tuple(out)

    # -------------------------------------------------------------------- parse

    def parse(self) -> EntitySpec:
        d = self.table(self.data, "", _TOP_KEYS)
        name = self.string(d.get("name"), "name")
        if not _NAME.match(name):
            raise self.fail("name", "kind names are lower-case letters, digits and '_'")
        columns = self.columns()
        cols = {c.name: c for c in columns}
        id_column = self.string(d.get("id_column"), "id_column")
        time_column = self.string(d.get("time_column"), "time_column")
        entity_column = d.get("entity_column", id_column)
        for key, col in (
            ("id_column", id_column),
            ("time_column", time_column),
            ("entity_column", entity_column),
        ):
            if col not in cols:
                raise self.fail(key, f"no column {col!r} in [columns]")
        if cols[time_column].type != "timestamp":
            raise self.fail("time_column", f"column {time_column!r} must have type timestamp")
        attributes = self.attributes(cols)
        attr_names = {a.name for a in attributes}
        if len(attr_names) != len(attributes):
            raise self.fail("attributes", "two attributes share a name")

        entity = self.table(d.get("entity"), "entity", {"aggregate", "extra"})
        aggregate = {
            k: self.string(v, f"entity.aggregate.{k}")
            for k, v in self.table(entity.get("aggregate"), "entity.aggregate").items()
        }
        extra = {
            k: self.string(v, f"entity.extra.{k}")
            for k, v in self.table(entity.get("extra"), "entity.extra").items()
        }
        for part, table in (("aggregate", aggregate), ("extra", extra)):
            for k, how in table.items():
                op, _, src = how.partition(":")
                key = f"entity.{part}.{k}"
                if op not in _AGGREGATES:
                    raise self.fail(key, f"unknown aggregate {op!r}; known: {_AGGREGATES}")
                if src and src not in attr_names and src not in cols:
                    raise self.fail(key, f"no attribute or column {src!r}")
        if entity_column != id_column and not aggregate:
            aggregate = _default_aggregate(cols, attributes)
        # what the entity table holds: attributes (one row per entity) or their aggregates
        entity_cols = set(attr_names) if entity_column == id_column else set(aggregate)
        entity_cols |= set(extra)
        defaults = _role_tables(cols, attributes, entity_column)
        features = self.features(d.get("features"), defaults, entity_cols)
        scoring = self.table(
            d.get("scoring"),
            "scoring",
            {"families", "supporting", "behaviour", "low_is_suspicious", "entity_behaviour"},
        )
        families = defaults["families"]
        if "families" in scoring:
            families = {
                fam: self.names(v, f"scoring.families.{fam}", attr_names | entity_cols, "name")
                for fam, v in self.table(scoring["families"], "scoring.families").items()
            }
        rules = self.table(
            d.get("rules"),
            "rules",
            {"attributes", "rotated_first", "portable", "coarser", "allowlist", "families"},
        )
        rule_attributes = defaults["rules"]
        if "attributes" in rules:
            rule_attributes = {}
            for attr, v in self.table(rules["attributes"], "rules.attributes").items():
                key = f"rules.attributes.{attr}"
                if attr not in attr_names:
                    raise self.fail(key, "unknown attribute")
                ok = isinstance(v, list) and len(v) == 2 and v[0] in ("in", "range")
                if not ok or not isinstance(v[1], int) or v[1] not in (1, 2):
                    raise self.fail(key, 'must be ["in" or "range", tier 1 or 2]')
                rule_attributes[attr] = (str(v[0]), int(v[1]))
        rule_families: dict[str, str] = {}
        for fam, v in self.table(rules.get("families"), "rules.families").items():
            for attr in self.names(v, f"rules.families.{fam}", set(rule_attributes), "name"):
                if attr in rule_families:
                    raise self.fail(f"rules.families.{fam}", f"{attr!r} is in two families")
                rule_families[attr] = fam
        coarser = defaults["coarser"]
        if "coarser" in rules:
            coarser = {}
            for k, v in self.table(rules["coarser"], "rules.coarser").items():
                if k not in attr_names or v not in attr_names:
                    raise self.fail(f"rules.coarser.{k}", "both sides must be attributes")
                coarser[k] = v
        clustering = self.table(
            d.get("clustering"),
            "clustering",
            {"velocity", "pivots", "timer_pool", "profile", "merge", "attach"},
        )
        known = attr_names | entity_cols
        allowlist: dict[str, str | None] = dict(defaults["allowlist"])
        for k, v in self.table(rules.get("allowlist"), "rules.allowlist", set(_ALLOW_KEYS)).items():
            if v != "" and v not in attr_names:
                raise self.fail(f"rules.allowlist.{k}", f"unknown attribute {v!r}")
            allowlist[k] = v or None

        sections = {"scoring": scoring, "clustering": clustering, "rules": rules}

        def listed(where: str, default: Any, within: set[str] = known) -> tuple[str, ...]:
            """The names at ``where`` (each in ``within``), else the roles' ``default``."""
            section, key = where.split(".")
            table = sections[section]
            if key not in table:
                return tuple(default)
            return self.names(table[key], where, within, "name")

        timer_pool = clustering.get("timer_pool")
        if timer_pool is not None and timer_pool not in known:
            raise self.fail("clustering.timer_pool", f"unknown attribute {timer_pool!r}")
        return EntitySpec(
            name=name,
            id_column=id_column,
            time_column=time_column,
            entity_column=entity_column,
            columns=columns,
            attributes=attributes,
            features=features,
            families=families,
            supporting_families=frozenset(listed("scoring.supporting", (), set(families))),
            profile_attributes=listed("clustering.profile", defaults["profile"]),
            rule_attributes=rule_attributes,
            behaviour=listed("scoring.behaviour", defaults["behaviour"]),
            low_is_suspicious=frozenset(listed("scoring.low_is_suspicious", defaults["low"])),
            velocity=listed("clustering.velocity", defaults["velocity"]),
            pivots=listed("clustering.pivots", defaults["pivots"]),
            rotated_first=frozenset(listed("rules.rotated_first", defaults["rotated"], attr_names)),
            portable=frozenset(listed("rules.portable", (), attr_names)),
            coarser=coarser,
            rule_families=rule_families,
            entity_behaviour=listed("scoring.entity_behaviour", defaults["entity_behaviour"]),
            merge=listed("clustering.merge", defaults["merge"]),
            attach=listed("clustering.attach", defaults["attach"]),
            allowlist=allowlist,
            entity_lowercase=self.flag(d.get("entity_lowercase", False), "entity_lowercase"),
            aggregate=aggregate,
            entity_extra=extra,
            timer_pool=timer_pool,
            source=self.source,
        )

    def features(self, obj: Any, defaults: dict[str, Any], entity_cols: set[str]) -> FeatureSpec:
        if obj is None:
            f = {
                part: {a: w for a, w in weights.items() if a in entity_cols}
                for part, weights in defaults["features"].items()
            }
            return FeatureSpec(
                categorical=f["categorical"],
                numeric=f["numeric"],
                cyclic=f["cyclic"],
                text=f["text"],
                counts=f["counts"],
                log_scale=tuple(c for c in defaults["log_scale"] if c in entity_cols),
            )
        keys = {
            "categorical",
            "numeric",
            "cyclic",
            "text",
            "counts",
            "log_scale",
            "block_dim",
            "text_dim",
        }
        f = self.table(obj, "features", keys)
        kwargs: dict[str, Any] = {}
        for part in ("categorical", "numeric", "cyclic", "text", "counts"):
            kwargs[part] = self.weights(f.get(part), f"features.{part}", entity_cols)
        kwargs["log_scale"] = self.names(
            f.get("log_scale", []), "features.log_scale", entity_cols, "column"
        )
        for part in ("block_dim", "text_dim"):
            if part in f:
                kwargs[part] = int(self.number(f[part], f"features.{part}"))
        return FeatureSpec(**kwargs)


_ALLOW_KEYS = ("domains", "asns", "prefixes", "ids")
_AGGREGATES = (
    "most_frequent",
    "mean",
    "median",
    "count",
    "distinct_share",
    "lower",
    "entity_local",
)


def _attr_name(column: ColumnSpec, suffix: str) -> str:
    return column.name if not suffix else f"{column.name}_{suffix}"


def _role_attributes(cols: dict[str, ColumnSpec]) -> list[AttributeDef]:
    out = []
    for c in cols.values():
        for suffix, derive in ROLES[c.role].attributes.items():
            name = suffix if c.role == "time" else _attr_name(c, suffix)
            out.append(AttributeDef(name, c.name, derive, c.fallback, f"{derive} of {c.name}"))
    return out


def _role_tables(
    cols: dict[str, ColumnSpec], attributes: tuple[AttributeDef, ...], entity_column: str
) -> dict[str, Any]:
    """Features, families, rules and the rest as the roles give them, for present attributes."""
    present = {a.name for a in attributes}
    feats: dict[str, dict[str, float]] = {
        p: {} for p in ("categorical", "numeric", "cyclic", "text", "counts")
    }
    families: dict[str, list[str]] = {}
    rules: dict[str, tuple[str, int]] = {}
    profile: list[str] = []
    coarser: dict[str, str] = {}
    rotated: list[str] = []
    behaviour: list[str] = []
    low: list[str] = []
    velocity: list[str] = []
    pivots: list[str] = []
    log_scale: list[str] = []
    entity_behaviour: list[str] = []
    merge: list[str] = []
    attach: list[str] = []
    allowlist: dict[str, str | None] = dict.fromkeys(_ALLOW_KEYS)
    for c in cols.values():
        role = ROLES[c.role]
        if c.name == entity_column and c.role != "id":
            continue  # the entity's own id is no signal (and no rule should list ids)
        if c.role == "time":
            if "hour" in present:
                feats["cyclic"]["hour"] = 0.3 * c.weight
            # accounts made in one burst share their day, where the data spans months or
            # years; in one night's window every row shares it, and rarity weighs it to 0.
            # No rule reads it: a past day matches nothing the rule will meet later.
            if "day" in present:
                feats["categorical"]["day"] = 0.5 * c.weight
                feats["counts"]["day"] = 0.5 * c.weight
            continue

        def name(suffix: str, c: ColumnSpec = c) -> str:
            return _attr_name(c, suffix)

        for part in ("categorical", "numeric", "text", "counts"):
            for suffix, w in getattr(role, part).items():
                if name(suffix) in present:
                    feats[part][name(suffix)] = w * c.weight
        family = c.family or role.family
        if family is not None:
            members = [name(s) for s in role.profile if name(s) in present]
            if members:
                families.setdefault(family, []).extend(members)
        for suffix, rule in role.rules.items():
            if name(suffix) in present:
                rules[name(suffix)] = rule
        profile += [name(s) for s in role.profile if name(s) in present]
        coarser.update(
            {name(a): name(b) for a, b in role.coarser.items() if {name(a), name(b)} <= present}
        )
        rotated += [name(s) for s in role.rotated if name(s) in present]
        velocity += [name(s) for s in role.counts if name(s) in present]
        if c.role in ("numeric", "count", "boolean") and (c.behaviour or c.low_is_suspicious):
            behaviour.append(c.name)
            if c.low_is_suspicious:
                low.append(c.name)
        if c.role == "count" or c.log_scale:
            log_scale.append(c.name)
        if c.pivot:
            pivots.append(name(""))
            attach.append(name(""))
        if c.role in ("numeric", "count", "boolean") and name("") in present:
            entity_behaviour.append(name(""))
        entity_behaviour += [name(s) for s in role.numeric if s and name(s) in present]
        if c.role == "text" and c.behaviour:
            # a message's own shape is what it does: bulk messages carry a number to call
            entity_behaviour += [
                name(s) for s in ("len", "digits", "digit_run") if name(s) in present
            ]
        # exact values strangers do not share by accident join an actor's fragments
        exact = {"email": ("domain", "canonical"), "text": ("skeleton", "url_domain")}
        exact_ip = {"ip": ("prefix24",), "user_agent": ("build", "")}
        for s_ in exact.get(c.role, ()):
            if name(s_) in present:
                merge.append(name(s_))
                attach.append(name(s_))
        merge += [name(s_) for s_ in exact_ip.get(c.role, ()) if name(s_) in present]
        if c.pivot:
            merge.append(name(""))
        if c.role == "email" and allowlist["domains"] is None and name("domain") in present:
            allowlist["domains"] = name("domain")
        if c.role == "ip" and allowlist["prefixes"] is None and name("") in present:
            allowlist["prefixes"] = name("")
        if c.role == "id" and allowlist["ids"] is None and name("") in present:
            allowlist["ids"] = name("")
    return {
        "features": feats,
        "families": {k: tuple(v) for k, v in families.items()},
        "rules": rules,
        "profile": tuple(profile),
        "coarser": coarser,
        "rotated": tuple(rotated),
        "behaviour": tuple(behaviour),
        "low": tuple(low),
        "velocity": tuple(velocity),
        "pivots": tuple(pivots),
        "log_scale": tuple(log_scale),
        "entity_behaviour": tuple(dict.fromkeys(entity_behaviour)),
        "merge": tuple(dict.fromkeys(merge)),
        "attach": tuple(dict.fromkeys(attach)),
        "allowlist": allowlist,
    }


def _default_aggregate(
    cols: dict[str, ColumnSpec], attributes: tuple[AttributeDef, ...]
) -> dict[str, str]:
    """Entity columns when an entity has several events: categorical values by majority,
    numbers and flags by their mean, and how many events there were."""
    out = {"events": "count"}
    for a in attributes:
        c = cols[a.column]
        if c.role in ("numeric", "count", "boolean") and a.derive == "raw":
            out[a.name] = f"mean:{a.name}"
        elif c.role not in ("id", "time"):
            out[a.name] = f"most_frequent:{a.name}"
        elif c.role == "time":
            numeric = DERIVATIONS[a.derive] in ("integer", "float")
            out[a.name] = f"{'median' if numeric else 'most_frequent'}:{a.name}"
    return out
