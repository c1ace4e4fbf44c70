"""Input contracts of the entity kinds the workbench knows (DESIGN.md, "Contracts").

One place defines each kind's columns, their types and which are required, so the readers,
the attributes and the rule exporters agree on what a row looks like.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

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


SIGNUPS = Kind(
    name="signups",
    id_column="account_id",
    time_column="created_at",
    entity_column="account_id",
    columns=(
        Column("account_id", "string", True, "unique per row"),
        Column("created_at", "timestamp", True, "when the account was created (UTC)"),
        Column("email", "string", True, "address chosen at signup"),
        Column("ip", "string", True, "IPv4 or IPv6 of the signup request"),
        Column("username", "string", False, "login name; defaults to the email's local part"),
        Column("display_name", "string"),
        Column("ip_asn", "integer", False, "autonomous system number of the IP"),
        Column("ip_country", "string", False, "ISO 3166 alpha-2"),
        Column("user_agent", "string"),
        Column("device_id", "string", False, "device or browser fingerprint"),
        Column("signup_flow", "string", False, "web, ios, android, api, ..."),
        Column("captcha_score", "float", False, "in [0, 1]; higher = more human"),
    ),
)

SENDERS = Kind(
    name="senders",
    id_column="message_id",
    time_column="sent_at",
    entity_column="sender",
    columns=(
        Column("message_id", "string", True, "unique per row"),
        Column("sent_at", "timestamp", True, "when the message was sent (UTC)"),
        Column("sender", "string", True, "envelope or header From address"),
        Column("sender_ip", "string", False, "first external relay / submission IP"),
        Column("recipient_count", "integer"),
        Column("recipient_domains", "string", False, "space-separated"),
        Column("subject", "string"),
        Column("body", "string", False, "plain text"),
        Column("x_mailer", "string", False, "mail client header"),
        Column("bounced", "boolean", False, "delivery outcome, where known"),
        Column("complained", "boolean", False, "delivery outcome, where known"),
    ),
)

KINDS: dict[str, Kind] = {SIGNUPS.name: SIGNUPS, SENDERS.name: SENDERS}


def get_kind(name: str) -> Kind:
    """Return the kind called ``name``; raise ``ValueError`` naming the known kinds."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown kind {name!r}; known kinds: {', '.join(KINDS)}") from None
