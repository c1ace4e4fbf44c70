"""Sender rules as Rspamd multimap maps and composites, exported only where exact.

Each exported rule becomes one composite symbol over multimap symbols, one per predicate
(``&``, ``|`` and ``!`` as in the condition and the allowlists). Files, by name:

- ``multimap.conf``: a ``local.d/multimap.conf`` fragment, one multimap rule per predicate
  (score 0: the composite carries the score);
- ``composites.conf``: a ``local.d/composites.conf`` fragment, one composite per rule;
- ``cw_*.map``: the map files, referenced from ``map_dir``.

What Rspamd sees, assumed equal to our input columns: the SMTP sender (``from``, MIME From
when the envelope has none) is the ``sender`` column, a plain ``local@domain`` address; the
connecting IP is ``sender_ip``; the decoded ``X-Mailer`` header is ``x_mailer``.

Exported predicates (everything else is reported in :attr:`RspamdExport.skipped`, never
approximated):

====================  =====================================  ================================
attribute             multimap                               ops
====================  =====================================  ================================
sender                ``from``, ``filter = "email:addr"``    eq, in, prefix, regex
sender_domain         ``from``, ``filter = "email:domain"``  eq, in, prefix, regex
sender_local          ``from``, ``filter = "email:user"``    eq, in, prefix, regex
sender_tld            ``from``, ``filter = "email:domain"``  eq, in (regexp ``\\.tld\\z``)
x_mailer              ``header``, ``header = "X-Mailer"``    eq, in, prefix, regex
sender_ip             ``ip`` (radix)                         cidr
sender_ip_prefix16/   ``ip`` (radix)                         eq, in
24/48
====================  =====================================  ================================

Exactness:

- Our ``sender*`` attributes are ASCII lower-cased; Rspamd sees the address as sent. Plain
  hash maps compare ASCII-case-insensitively (exact for lower-case values) and regexp maps
  get the ``i`` flag, which in Rspamd's default byte mode folds ASCII only, like our
  lower-casing. A value or pattern with an ASCII capital can never match a lower-cased
  attribute: such values are dropped (a predicate left with none is false), such patterns are
  not exported. ``x_mailer`` is case-sensitive: regexp maps without ``i``.
- Literals in regexp maps are written byte by byte (``\\xHH``; ASCII letters and digits as
  they are), anchored ``\\A(?:...)\\z``: no metacharacter, ``/``, ``#``, space or newline from
  attacker text reaches the map file. Plain hash-map lines are used only for values without
  whitespace, control characters, ``#``, backslashes or a leading ``"`` or ``/``.
- Rspamd never matches an empty value (``rspamd_regexp_search`` refuses empty text), while
  an empty ``x_mailer`` (a present, empty header) is a value to us: ``''`` in a value list,
  or a pattern that matches ``''``, on ``x_mailer`` or ``sender`` is not exported.
- RE2 patterns are checked with ``google-re2`` and translated to byte-mode PCRE for a subset
  whose meaning is the same in both engines: literals, ``.``, classes with ASCII members
  (ranges, ``\\d\\s\\w`` and negations, POSIX names), groups, alternation, repetition,
  ``^ $ \\A \\z \\b \\B``, a leading ``(?s)``. Every code point becomes its UTF-8 byte
  sequence, and ``.`` or a negated class matches one whole UTF-8 character. Inline flags,
  Unicode classes (``\\pL``), ``\\C``, octal escapes and non-ASCII class members are not
  exported.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import re2

from anomaly.export_cel import active_rules, check_re2, output_action
from anomaly.rules import RuleError, validate_condition

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MAP_DIR",
    "RspamdExport",
    "SkippedRule",
    "bundle_to_rspamd",
    "re2_to_pcre_bytes",
]

DEFAULT_MAP_DIR = "${LOCAL_CONFDIR}/local.d/maps.d"
_KIND = "senders"
_NEVER = "the condition can never match (only values our attributes never take)"
# rspamd_regexp_search returns false on empty text before running the pattern.
_EMPTY = "Rspamd never matches an empty value (an empty sender, a present but empty header)"
_GROUP = "campaign_workbench"


@dataclass(frozen=True)
class SkippedRule:
    """A rule (or every rule, for an allowlist problem) left out of the export, and why."""

    rule_id: str
    reason: str


@dataclass
class RspamdExport:
    """Rspamd configuration for the exported sender rules.

    Attributes
    ----------
    files : dict
        File name -> content: ``multimap.conf``, ``composites.conf`` and ``cw_*.map``.
    skipped : list of SkippedRule
        Active sender rules that Rspamd cannot express exactly, with the reason.
    symbols : dict
        Rule id -> composite symbol of every exported rule.
    """

    files: dict[str, str] = field(default_factory=dict)
    skipped: list[SkippedRule] = field(default_factory=list)
    symbols: dict[str, str] = field(default_factory=dict)


class _Unsupported(Exception):
    """A predicate Rspamd cannot express exactly; the message says why."""


# --------------------------------------------------------------------------- byte regexes

_UPPER = frozenset(range(ord("A"), ord("Z") + 1))
_LOWER = frozenset(range(ord("a"), ord("z") + 1))
_DIGIT = frozenset(range(ord("0"), ord("9") + 1))
_ALNUM = _UPPER | _LOWER | _DIGIT
_WORD = _ALNUM | {ord("_")}
_PERL_SPACE = frozenset(b"\t\n\f\r ")  # RE2's \s: no \v
_ALL_ASCII = frozenset(range(128))
_POSIX = {
    "alnum": _ALNUM,
    "alpha": _UPPER | _LOWER,
    "ascii": _ALL_ASCII,
    "blank": frozenset(b" \t"),
    "cntrl": frozenset(range(32)) | {127},
    "digit": _DIGIT,
    "graph": frozenset(range(33, 127)),
    "lower": _LOWER,
    "print": frozenset(range(32, 127)),
    "punct": frozenset(range(33, 127)) - _ALNUM,
    "space": frozenset(b"\t\n\v\f\r "),
    "upper": _UPPER,
    "word": _WORD,
    "xdigit": _DIGIT | frozenset(b"abcdefABCDEF"),
}
_PERL = {"d": (_DIGIT, False), "s": (_PERL_SPACE, False), "w": (_WORD, False)}
_SIMPLE = {"a": "\a", "f": "\f", "t": "\t", "n": "\n", "r": "\r", "v": "\v"}
# One whole non-ASCII UTF-8 character (input is valid UTF-8, so this segments it exactly).
_UTF8_MULTI = r"(?:[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3})"
_REPEAT = re.compile(r"\{[0-9]+(?:,[0-9]*)?\}")
_HEX = re.compile(r"x\{([0-9A-Fa-f]{1,6})\}|x([0-9A-Fa-f]{2})")
_POSIX_RE = re.compile(r"\[:(\^?)([a-z]+):\]")


@dataclass(frozen=True)
class _Unit:
    """What one character position matches: ASCII bytes, specific non-ASCII characters, or
    (``any_non_ascii``) every non-ASCII character."""

    ascii: frozenset[int] = frozenset()
    chars: frozenset[str] = frozenset()
    any_non_ascii: bool = False


def _byte(b: int) -> str:
    return chr(b) if b in _ALNUM else f"\\x{b:02x}"


def _literal_bytes(text: str) -> str:
    """``text`` as a byte-mode regex matching exactly its UTF-8 bytes (no metacharacters)."""
    return "".join(_byte(b) for b in text.encode("utf-8"))


def _char(ch: str) -> str:
    """One character; a multi-byte one is grouped so that a quantifier applies to all of it."""
    body = _literal_bytes(ch)
    return body if ord(ch) < 128 else f"(?:{body})"


def _byte_class(members: frozenset[int]) -> str:
    if len(members) == 1:
        return _byte(next(iter(members)))
    runs, ordered = [], sorted(members)
    start = prev = ordered[0]
    for b in [*ordered[1:], None]:
        if b is not None and b == prev + 1:
            prev = b
            continue
        runs.append(f"\\x{start:02x}" if start == prev else f"\\x{start:02x}-\\x{prev:02x}")
        if b is not None:
            start = prev = b
    return "[" + "".join(runs) + "]"


def _render(unit: _Unit, caseless: bool) -> str:
    if caseless:
        # Under the 'i' flag a class matches c when it holds c or its other case; that is
        # "holds lower(c)" exactly when no capital is in the class without its small letter.
        if any(u in unit.ascii and u + 32 not in unit.ascii for u in _UPPER):
            raise _Unsupported("an ASCII capital in a pattern on a lower-cased attribute")
    parts = []
    if unit.ascii:
        parts.append(_byte_class(unit.ascii))
    if unit.any_non_ascii:
        parts.append(_UTF8_MULTI)
    parts += [_char(c) for c in sorted(unit.chars)]
    if not parts:
        raise _Unsupported("an empty character class")
    return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"


def _escape(p: str, i: int) -> tuple[int, str | _Unit]:
    """The escape at ``p[i] == '\\\\'``: a literal character or a class unit."""
    if i + 1 >= len(p):
        raise _Unsupported("a trailing backslash")
    c = p[i + 1]
    if c in _SIMPLE:
        return i + 2, _SIMPLE[c]
    if c.lower() in _PERL:
        members, _ = _PERL[c.lower()]
        if c.islower():
            return i + 2, _Unit(ascii=members)
        return i + 2, _Unit(ascii=_ALL_ASCII - members, any_non_ascii=True)
    if m := _HEX.match(p, i + 1):
        code = int(m.group(1) or m.group(2), 16)
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise _Unsupported(f"escape {m.group()!r} is not a character")
        return m.end(), chr(code)
    if ord(c) < 128 and not c.isalnum() and c.isprintable():
        return i + 2, c  # escaped punctuation: itself
    raise _Unsupported(f"escape '\\{c}' (Unicode classes, \\C, octal) has no exact byte form")


def _class(p: str, i: int) -> tuple[int, _Unit]:
    """The class starting at ``p[i] == '['``."""
    i += 1
    negate = p.startswith("^", i)
    i += negate
    ascii_set: set[int] = set()
    chars: set[str] = set()
    any_non_ascii = False
    first = True
    while True:
        if i >= len(p):
            raise _Unsupported("an unterminated class")
        if p[i] == "]" and not first:
            i += 1
            break
        first = False
        if m := _POSIX_RE.match(p, i):
            if m.group(2) not in _POSIX:
                raise _Unsupported(f"POSIX class {m.group()!r}")
            members = _POSIX[m.group(2)]
            if m.group(1):
                ascii_set |= _ALL_ASCII - members
                any_non_ascii = True
            else:
                ascii_set |= members
            i = m.end()
            continue
        i, item = _escape(p, i) if p[i] == "\\" else (i + 1, p[i])
        if isinstance(item, _Unit):
            ascii_set |= item.ascii
            any_non_ascii |= item.any_non_ascii
            continue
        lo = item
        if p.startswith("-", i) and i + 1 < len(p) and p[i + 1] != "]":
            i, hi = _escape(p, i + 1) if p[i + 1] == "\\" else (i + 2, p[i + 1])
            if isinstance(hi, _Unit) or ord(hi) < ord(lo):
                raise _Unsupported("a class range that is not between two characters")
            if ord(hi) >= 128:
                raise _Unsupported("a class range beyond ASCII")
            ascii_set |= set(range(ord(lo), ord(hi) + 1))
        elif ord(lo) < 128:
            ascii_set.add(ord(lo))
        else:
            chars.add(lo)
    if not negate:
        return i, _Unit(frozenset(ascii_set), frozenset(chars), any_non_ascii)
    if chars:
        raise _Unsupported("a negated class with non-ASCII members")
    return i, _Unit(ascii=_ALL_ASCII - ascii_set, any_non_ascii=not any_non_ascii)


def re2_to_pcre_bytes(pattern: str, *, caseless: bool = False) -> str:
    """Translate an RE2 pattern to a byte-mode PCRE pattern matching the same UTF-8 strings.

    The result is ASCII only, uses no ``.``, ``^``, ``$`` (whose PCRE meaning depends on the
    newline convention), and is meant for a full match wrapped as ``\\A(?:...)\\z``.

    Parameters
    ----------
    pattern : str
        An RE2 pattern (checked with :func:`anomaly.export_cel.check_re2`).
    caseless : bool
        The translation runs with PCRE's ``i`` flag against text whose ASCII letters may be
        capitals, standing for our pattern against the ASCII-lower-cased text.

    Raises
    ------
    RuleError
        RE2 rejects the pattern, or it uses a construct outside the exported subset (see the
        module docstring); the message says which.
    """
    check_re2(pattern)
    try:
        return _translate(pattern, caseless)
    except _Unsupported as exc:
        raise RuleError(f"pattern {pattern!r}: {exc} (not exported to Rspamd)") from None


def _translate(p: str, caseless: bool) -> str:
    dotall = p.startswith("(?s)")
    i = 4 if dotall else 0
    dot = _Unit(ascii=_ALL_ASCII if dotall else _ALL_ASCII - {10}, any_non_ascii=True)
    out: list[str] = []
    quantifiable = False

    def unit(u: str | _Unit) -> None:
        nonlocal quantifiable
        if isinstance(u, str):
            if caseless and ord(u) in _UPPER:
                raise _Unsupported("an ASCII capital in a pattern on a lower-cased attribute")
            out.append(_char(u))
        else:
            out.append(_render(u, caseless))
        quantifiable = True

    while i < len(p):
        c = p[i]
        if c == "\\" and p.startswith("\\Q", i):
            end = p.find("\\E", i + 2)
            stop = len(p) if end < 0 else end
            for ch in p[i + 2 : stop]:
                unit(ch)
            i = len(p) if end < 0 else end + 2
        elif c == "\\" and i + 1 < len(p) and p[i + 1] in "AzbB":
            out.append("\\" + p[i + 1])  # same meaning in both: ASCII word boundary
            quantifiable = False
            i += 2
        elif c == "\\":
            i, item = _escape(p, i)
            unit(item)
        elif c == "[":
            i, u = _class(p, i)
            unit(u)
        elif c == "(":
            if p.startswith("(?P<", i) or p.startswith("(?<", i):
                i = p.index(">", i) + 1
            elif p.startswith("(?:", i):
                i += 3
            elif p.startswith("(?", i):
                raise _Unsupported("inline flags (only a leading (?s) is exported)")
            else:
                i += 1
            out.append("(?:")  # captures do not change what matches
            quantifiable = False
        elif c in ")|":
            out.append(c)
            quantifiable = c == ")"
            i += 1
        elif c in "*+?" or (c == "{" and _REPEAT.match(p, i)):
            if not quantifiable:
                raise _Unsupported("a repetition of an anchor or of a repetition")
            m = _REPEAT.match(p, i)
            token = m.group() if m else c
            i += len(token)
            if p.startswith("?", i):  # lazy: same set of matches
                token += "?"
                i += 1
            out.append(token)
            quantifiable = False
        elif c in "^$":
            out.append("\\A" if c == "^" else "\\z")  # RE2 without (?m): text start / end
            quantifiable = False
            i += 1
        elif c == ".":
            unit(dot)
            i += 1
        else:
            unit(c)
            i += 1
    return "".join(out)


# --------------------------------------------------------------------------- predicates


@dataclass(frozen=True)
class _Source:
    """Where Rspamd reads a value: multimap type and options; ASCII case-folded or not."""

    type: str
    options: tuple[tuple[str, str], ...]
    caseless: bool
    never_empty: bool  # our attribute is null rather than '' (so '' never matches)


_FROM_ADDR = _Source("from", (("filter", "email:addr"),), caseless=True, never_empty=False)
_FROM_DOMAIN = _Source("from", (("filter", "email:domain"),), caseless=True, never_empty=True)
_FROM_USER = _Source("from", (("filter", "email:user"),), caseless=True, never_empty=True)
_X_MAILER = _Source("header", (("header", "X-Mailer"),), caseless=False, never_empty=False)
_IP = _Source("ip", (), caseless=False, never_empty=True)
_TEXT_SOURCES = {
    "sender": _FROM_ADDR,
    "sender_domain": _FROM_DOMAIN,
    "sender_local": _FROM_USER,
    "x_mailer": _X_MAILER,
}
_PREFIX_ATTRS = {"sender_ip_prefix16": 16, "sender_ip_prefix24": 24, "sender_ip_prefix48": 48}
_NOT_EXPORTED = {
    "sender_local_shape": "is derived (character runs rewritten); no multimap type computes it",
    "subject_skeleton": "is derived from the subject (digit runs and whitespace rewritten); "
    "multimaps see the raw Subject header",
    "subject_shape": "is derived from the subject (character runs rewritten); multimaps see "
    "the raw Subject header",
    "url_domain": "is the host of the FIRST http(s) URL of the plain-text body; Rspamd url maps "
    "match every URL of the message (a superset)",
    "url_tld": "is read from the FIRST http(s) URL of the plain-text body; Rspamd url maps "
    "match every URL of the message (a superset)",
    "recipient_count": "no multimap type reads the number of recipients (numeric range)",
    "hour": "no multimap type reads the send time",
    "bounced": "is a delivery outcome, known only after the message is sent",
    "complained": "is a delivery outcome, known only after the message is sent",
    "message_id": "is this project's row id; Rspamd sees no such value",
}
# Hash-map lines: no whitespace or control characters, no comment or escape characters, and
# no leading quote or slash (those start quoted and regexp keys).
_PLAIN = re.compile(r"[^\x00-\x20\x7f#\\\"/][^\x00-\x20\x7f#\\]*")


def _ascii_lower(text: str) -> str:
    return text.translate({c: c + 32 for c in _UPPER})


@dataclass
class _Atom:
    symbol: str
    source: _Source
    regexp: bool
    map_name: str
    entries: list[str]
    what: str  # for the description: attribute and op


class _Builder:
    """Turns conditions into composite expressions over multimap atoms."""

    def __init__(self) -> None:
        self.atoms: list[_Atom] = []

    def expression(self, cond: dict[str, Any], symbol: str) -> str | None:
        """Composite expression of ``cond``; None where it can never match.

        Atoms are kept only for an expression that is returned: a skipped or never-matching
        condition leaves none behind.
        """
        start = len(self.atoms)
        try:
            expr = self._expr(cond, symbol)
        except _Unsupported:
            del self.atoms[start:]
            raise
        if expr is None:
            del self.atoms[start:]
        return expr

    def _expr(self, cond: dict[str, Any], symbol: str) -> str | None:
        op = cond["op"]
        if op not in ("and", "or"):
            return self._leaf(cond, symbol)
        parts = []
        for sub in cond["args"]:
            start = len(self.atoms)
            part = self._expr(sub, symbol)
            if part is None:
                del self.atoms[start:]  # a false arm reads nothing
                if op == "and":
                    return None
                continue
            parts.append(part)
        if not parts:
            return None
        return (
            parts[0]
            if len(parts) == 1
            else "(" + f" {'&' if op == 'and' else '|'} ".join(parts) + ")"
        )

    def _atom(
        self, symbol: str, source: _Source, regexp: bool, entries: Iterable[str], what: str
    ) -> str:
        name = f"{symbol}_P{sum(a.symbol.startswith(symbol + '_P') for a in self.atoms)}"
        atom = _Atom(name, source, regexp, f"{name.lower()}.map", sorted(set(entries)), what)
        self.atoms.append(atom)
        return name

    def _leaf(self, cond: dict[str, Any], symbol: str) -> str | None:
        attr, op = cond["attr"], cond["op"]
        what = f"{attr} {op}"
        if attr in _NOT_EXPORTED:
            raise _Unsupported(f"{attr} {_NOT_EXPORTED[attr]}")
        if attr == "sender_tld":
            return self._tld(cond, symbol)
        if attr in _PREFIX_ATTRS:
            return self._ip_prefix(cond, symbol, _PREFIX_ATTRS[attr])
        if attr == "sender_ip":
            if op != "cidr":
                raise _Unsupported(
                    f"op {op!r} on sender_ip compares IP text; Rspamd compares addresses (use cidr)"
                )
            net = ipaddress.ip_network(cond["value"], strict=True)
            return self._atom(symbol, _IP, False, [str(net)], what)
        source = _TEXT_SOURCES.get(attr)
        if source is None:
            raise _Unsupported(f"no Rspamd multimap type reads attribute {attr!r}")
        caseless = source.caseless
        flags = "i" if caseless else ""
        if op in ("eq", "in"):
            values = [cond["value"]] if op == "eq" else list(cond["values"])
            if "" in values and not source.never_empty:
                raise _Unsupported(f"{attr} = '': {_EMPTY}")
            # Values our (lower-cased, empty-is-null) attribute never takes are dropped.
            values = [v for v in values if not (caseless and v != _ascii_lower(v))]
            values = [v for v in values if v or not source.never_empty]
            if not values:
                return None
            if caseless and all(_PLAIN.fullmatch(v) for v in values):
                return self._atom(symbol, source, False, values, what)
            entries = [f"/\\A(?:{_literal_bytes(v)})\\z/{flags}" for v in values]
            return self._atom(symbol, source, True, entries, what)
        if op == "prefix":
            value = cond["value"]
            if caseless and value != _ascii_lower(value):
                return None
            return self._atom(symbol, source, True, [f"/\\A{_literal_bytes(value)}/{flags}"], what)
        if op == "regex":
            try:
                body = re2_to_pcre_bytes(cond["pattern"], caseless=caseless)
            except RuleError as exc:
                raise _Unsupported(str(exc)) from None
            if not source.never_empty and re2.fullmatch(cond["pattern"], ""):
                raise _Unsupported(f"pattern {cond['pattern']!r} matches '' on {attr}: {_EMPTY}")
            return self._atom(symbol, source, True, [f"/\\A(?:{body})\\z/{flags}"], what)
        raise _Unsupported(f"op {op!r} on {attr}")

    def _tld(self, cond: dict[str, Any], symbol: str) -> str | None:
        if cond["op"] not in ("eq", "in"):
            raise _Unsupported(f"op {cond['op']!r} on sender_tld (only eq and in are exported)")
        values = [cond["value"]] if cond["op"] == "eq" else list(cond["values"])
        # sender_tld is the lower-cased label after the domain's last '.', never all digits:
        # values it cannot take are dropped.
        values = [
            v
            for v in values
            if v and "." not in v and v == _ascii_lower(v) and v.strip("0123456789")
        ]
        if not values:
            return None
        entries = [f"/\\.{_literal_bytes(v)}\\z/i" for v in values]
        return self._atom(symbol, _FROM_DOMAIN, True, entries, "sender_tld " + cond["op"])

    def _ip_prefix(self, cond: dict[str, Any], symbol: str, bits: int) -> str | None:
        attr, op = cond["attr"], cond["op"]
        if op not in ("eq", "in"):
            raise _Unsupported(f"op {op!r} on {attr} (only eq and in are exported)")
        values = [cond["value"]] if op == "eq" else list(cond["values"])
        nets = [n for n in (_canonical_prefix(v, bits) for v in values) if n is not None]
        if not nets:
            return None
        return self._atom(symbol, _IP, False, nets, f"{attr} {op}")


def _canonical_prefix(value: str, bits: int) -> str | None:
    """The network of a ``sender_ip_prefixNN`` value as our attribute spells it, else None
    (a value spelled otherwise is never taken by the attribute)."""
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError:
        return None
    if net.prefixlen != bits:
        return None
    if bits == 48:
        groups = net.network_address.exploded.split(":")[:3]
        spelled = ":".join(groups) + "::/48"
    else:
        spelled = str(net)
    return str(net) if net.version == (6 if bits == 48 else 4) and value == spelled else None


# --------------------------------------------------------------------------- rendering


def _ucl_string(text: str) -> str:
    # JSON escapes are UCL escapes; '$' is escaped too, as UCL expands $VARIABLES in strings.
    return json.dumps(text, ensure_ascii=True).replace("$", "\\u0024")


def _symbol_base(prefix: str, name: str) -> str:
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8].upper()
    cleaned = re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_")[:40]
    return f"{prefix}_{cleaned}_{digest}" if cleaned else f"{prefix}_{digest}"


def _render_multimap(atoms: list[_Atom], map_dir: str) -> str:
    lines = []
    for a in atoms:
        lines.append(f"{a.symbol} {{")
        lines.append(f"  type = {_ucl_string(a.source.type)};")
        for key, value in a.source.options:
            lines.append(f"  {key} = {_ucl_string(value)};")
        lines.append(f'  map = "{map_dir}/{a.map_name}";')
        if a.regexp:
            lines.append("  regexp = true;")
        lines.append("  score = 0.0;")
        lines.append(f"  group = {_ucl_string(_GROUP)};")
        lines.append(f"  description = {_ucl_string('Campaign Workbench predicate: ' + a.what)};")
        lines.append("}")
    return "\n".join(lines) + "\n" if lines else ""


def _render_map(atom: _Atom) -> str:
    kind = "regexp" if atom.regexp else ("radix" if atom.source.type == "ip" else "hash")
    return f"# Campaign Workbench {kind} map for {atom.symbol}\n" + "".join(
        e + "\n" for e in atom.entries
    )


def bundle_to_rspamd(
    bundle: dict[str, Any],
    *,
    as_of: datetime | None = None,
    map_dir: str = DEFAULT_MAP_DIR,
    enforce_score: float = 20.0,
) -> RspamdExport:
    """Rspamd multimap and composite configuration for the bundle's sender rules.

    Parameters
    ----------
    bundle : dict
        A bundle from :func:`anomaly.export.build_bundle` or :func:`anomaly.export.load_bundle`;
        an optional ``"allowlists": {"senders": [{"name", "condition", "reason"}]}`` is
        subtracted from every composite (``& !(...)``).
    as_of : datetime, optional
        Leave out rules whose ``expires_at`` is not after this time.
    map_dir : str
        Directory the map files are installed in, as written in ``multimap.conf``.
    enforce_score : float
        Score of an enforce rule's composite; shadow rules score 0 (the symbol still shows).

    Returns
    -------
    RspamdExport
        The files, the skipped rules with reasons, and each exported rule's composite symbol.
        If an allowlist entry cannot be exported exactly, every rule is skipped: without it
        the composites would match more than the bundle.

    Raises
    ------
    RuleError
        An invalid rule or allowlist condition, or an unusable ``map_dir``.
    """
    if not re.fullmatch(r"[A-Za-z0-9_./${}-]+", map_dir):
        raise RuleError(f"map_dir {map_dir!r}: use letters, digits and _ . / $ {{ }} - only")
    rules = active_rules(bundle, _KIND, as_of)
    builder = _Builder()
    result = RspamdExport()
    allow_parts: list[str] = []
    allow_problem = None
    for i, entry in enumerate((bundle.get("allowlists") or {}).get(_KIND) or []):
        name = str(entry.get("name") or f"allowlist {i}")
        validate_condition(entry["condition"], _KIND, rule_id=None)
        try:
            expr = builder.expression(entry["condition"], _symbol_base("CW_ALLOW", f"{i}:{name}"))
        except _Unsupported as exc:
            allow_problem = f"allowlist entry {name!r} cannot be exported exactly: {exc}"
            break
        if expr is not None:
            allow_parts.append(expr)
    guard = " | ".join(allow_parts)
    composites = []
    for rule in rules:
        rule.validate()
        if allow_problem:
            result.skipped.append(SkippedRule(rule.id, allow_problem))
            continue
        symbol = _symbol_base("CW", rule.id)
        try:
            expr = builder.expression(rule.condition, symbol)
        except _Unsupported as exc:
            result.skipped.append(SkippedRule(rule.id, str(exc)))
            continue
        if expr is None:
            result.skipped.append(SkippedRule(rule.id, _NEVER))
            continue
        if guard:
            expr = f"({expr}) & !({guard})"
        action = output_action(rule)
        score = enforce_score if action != "shadow" else 0.0  # 'shadow' is no rule's action
        composites += [
            f"# rule {rule.id} v{rule.version}: {action}",
            f"{symbol} {{",
            f"  expression = {_ucl_string(expr)};",
            f"  score = {float(score)!r};",
            f"  group = {_ucl_string(_GROUP)};",
            '  policy = "leave";',
            f"  description = {_ucl_string(f'{action}: {rule.title}')};",
            "}",
        ]
        result.symbols[rule.id] = symbol
    # Allowlist atoms are needed only by exported composites; rule atoms only when exported.
    atoms = builder.atoms if result.symbols else []
    bundle_id = str(bundle.get("bundle_id", ""))
    bundle_id = bundle_id if re.fullmatch(r"[0-9a-f]{1,64}", bundle_id) else "(no id)"
    header = (
        f"# Campaign Workbench rule bundle {bundle_id}: "
        f"{len(result.symbols)} sender rule(s) exported, {len(result.skipped)} skipped.\n"
    )
    result.files["multimap.conf"] = header + _render_multimap(atoms, map_dir)
    result.files["composites.conf"] = header + "\n".join(composites) + ("\n" if composites else "")
    for a in atoms:
        result.files[a.map_name] = _render_map(a)
    for s in result.skipped:
        log.info("rspamd export: rule %s skipped: %s", s.rule_id, s.reason)
    return result
