"""The entity kinds the workbench knows and their input contracts (DESIGN.md, "Contracts").

Every kind is an entity spec (:mod:`clustering.spec`): the built-in ``signups`` and
``senders`` are read from ``clustering/specs/``, a user's kind is added with
:func:`register_spec`. One place defines each kind's columns, their types and which are
required, so the readers, the attributes and the rule exporters agree on what a row looks like.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from clustering.spec import EntitySpec, SpecError, builtin_spec_path, load_spec

T = TypeVar("T")

ColumnType = Literal["string", "timestamp", "integer", "float", "boolean"]


@dataclass(frozen=True)
class Column:
    """One column of an input contract."""

    name: str
    type: ColumnType
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Kind:
    """An entity kind: its input rows and the entity that is clustered.

    ``id_column`` identifies a row (an event); ``entity_column`` identifies the entity that
    is clustered. For signups both are ``account_id``; for senders a row is a message and the
    entity is the sender address.
    """

    name: str
    id_column: str
    time_column: str
    entity_column: str
    columns: tuple[Column, ...] = field(default_factory=tuple)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None


def kind_from_spec(spec: EntitySpec) -> Kind:
    """The input contract a spec describes."""
    return Kind(
        name=spec.name,
        id_column=spec.id_column,
        time_column=spec.time_column,
        entity_column=spec.entity_column,
        columns=tuple(
            Column(c.name, c.type, c.required, c.description)  # type: ignore[arg-type]
            for c in spec.columns
        ),
    )


BUILTIN_KINDS = ("signups", "senders")
_SPECS: dict[str, EntitySpec] = {k: load_spec(builtin_spec_path(k)) for k in BUILTIN_KINDS}
KINDS: dict[str, Kind] = {k: kind_from_spec(s) for k, s in _SPECS.items()}
SIGNUPS = KINDS["signups"]
SENDERS = KINDS["senders"]


def register_spec(spec: EntitySpec) -> Kind:
    """Make ``spec``'s kind known to every stage (a user kind, or a newer spec of one).

    Built-in kinds cannot be replaced: their attributes are a contract enforcement reads.
    """
    if spec.name in BUILTIN_KINDS and _SPECS[spec.name] is not spec:
        raise SpecError(f"{spec.source}: name: {spec.name!r} is a built-in kind")
    _SPECS[spec.name] = spec
    KINDS[spec.name] = kind_from_spec(spec)
    return KINDS[spec.name]


def get_kind(name: str) -> Kind:
    """Return the kind called ``name``; raise ``ValueError`` naming the known kinds."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown kind {name!r}; known kinds: {', '.join(KINDS)}") from None


def get_spec(name: str) -> EntitySpec:
    """The spec of kind ``name``; raise ``ValueError`` naming the known kinds."""
    get_kind(name)
    return _SPECS[name]


class SpecView(Mapping[str, T]):
    """``view[kind]``: one field of every registered kind's spec, read when asked.

    The per-kind tables of the stages (features, families, rule attributes, ...) are views, so
    a kind registered later is seen everywhere without copying tables around.
    """

    def __init__(self, field: Callable[[EntitySpec], T]) -> None:
        self._field = field
        self._cache: dict[str, tuple[EntitySpec, T]] = {}

    def __getitem__(self, kind: str) -> T:
        if kind not in _SPECS:
            raise KeyError(kind)
        spec = _SPECS[kind]
        hit = self._cache.get(kind)
        if hit is None or hit[0] is not spec:
            hit = (spec, self._field(spec))
            self._cache[kind] = hit
        return hit[1]

    def __iter__(self) -> Iterator[str]:
        return iter(list(_SPECS))

    def __len__(self) -> int:
        return len(_SPECS)
