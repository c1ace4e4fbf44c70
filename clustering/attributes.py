"""Derived, named attributes of input rows, defined once in Python and in DuckDB SQL.

Features, rule induction, the Python rule evaluator and the exported SQL all read the same
attributes (``email_domain``, ``username_shape``, ``ip_prefix24``, ``ua_family``, ...). Each is
defined once here, as a chain of small string steps that carry both forms: a DuckDB SQL
expression over the input contract's columns (it goes into the rule bundle) and a vectorised
pyarrow function run on the distinct values of the column. The tests hold the two to
identical values on hostile and random input.

How the two forms are kept identical:

- One regex engine: pyarrow's regex kernels and DuckDB's ``regexp_*`` are both RE2, and each
  step passes the same pattern string to both.
- Lower-casing is ASCII only (``translate`` in SQL, ``ascii_lower`` in Arrow): DuckDB's
  ``lower()`` and Python's ``str.lower()`` disagree on characters such as 'İ' and final 'Σ'.
- ``regexp_extract`` returns '' where there is no match: empty derived strings become NULL on
  both sides (``NULLIF(..., '')``). Lengths count code points on both sides.
- Rounding is integer half-up (DuckDB's ``round`` on doubles and Python's ``round`` differ).
- The SQL uses no lambdas or extensions, so it runs on any DuckDB >= 1.1 without network.
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clustering.kinds import SpecView, get_kind
from clustering.spec import DERIVATIONS, EntitySpec

log = logging.getLogger(__name__)

__all__ = [
    "IPV4_PATTERN",
    "IPV6_PATTERN",
    "Attribute",
    "attributes_for",
    "compute_attributes",
    "ensure_columns",
    "ipv4_int",
    "ipv4_int_sql",
    "ipv4_ints",
    "ipv6_expand",
    "ipv6_expand_sql",
    "ipv6_expanded",
    "sql_identifier",
    "sql_string",
]

Dtype = Literal["string", "integer", "float", "boolean"]

_PANDAS_DTYPES: dict[str, str] = {
    "string": "string",
    "integer": "Int64",
    "float": "float64",
    "boolean": "boolean",
}


# --------------------------------------------------------------------------- SQL literals


def sql_string(value: str) -> str:
    """Quote ``value`` as a DuckDB string literal.

    Standard SQL strings: only the quote is special (doubled); backslashes are literal in
    DuckDB's ``'...'``, so attacker text cannot leave the literal. NUL characters are spliced
    in with ``chr(0)`` so the SQL text itself stays free of them.
    """
    quoted = "'" + value.replace("'", "''") + "'"
    if "\x00" in value:
        quoted = "(" + quoted.replace("\x00", "' || chr(0) || '") + ")"
    return quoted


def sql_identifier(name: str) -> str:
    """Quote ``name`` as a DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------- string steps

_SQL_LOWER = f"'{string.ascii_uppercase}', '{string.ascii_lowercase}'"
_V = "v"  # name of the capture group pyarrow's extract_regex reports


@dataclass(frozen=True)
class _Step:
    """One transformation of string values, in SQL and over an Arrow array.

    The Arrow side runs on the distinct values of a column. pyarrow's regex kernels are RE2,
    the engine DuckDB uses, so one pattern means the same on both sides.
    """

    sql: Callable[[str], str]
    arrow: Callable[[pa.Array], pa.Array]

    def then(self, other: _Step) -> _Step:
        return _Step(
            sql=lambda x: other.sql(self.sql(x)),
            arrow=lambda a: other.arrow(self.arrow(a)),
        )


def _chain(*steps: _Step) -> _Step:
    out = steps[0]
    for s in steps[1:]:
        out = out.then(s)
    return out


def _null_like(a: pa.Array) -> pa.Scalar:
    return pa.scalar(None, type=a.type)


def _nullif_empty_arrow(a: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(a, ""), _null_like(a), a)


def _full(pattern: str) -> str:
    """``pattern`` anchored at both ends: RE2 full match for substring-match kernels."""
    return rf"\A(?:{pattern})\z"


def _named_group(pattern: str, group: int) -> str:
    """``pattern`` with capture group ``group`` (0 = whole match) named ``v``, others not
    capturing (pyarrow's ``extract_regex`` wants named groups only)."""
    out, seen, i, in_class = [], 0, 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if pattern.startswith("[]", i) or pattern.startswith("[^]", i):
                raise ValueError(f"pattern {pattern!r}: escape a leading ']' in a class")
        elif c == "(" and not pattern.startswith("(?", i):
            seen += 1
            c = f"(?P<{_V}>" if seen == group else "(?:"
        out.append(c)
        i += 1
    if group > seen:
        raise ValueError(f"pattern {pattern!r} has no group {group}")
    body = "".join(out)
    return f"(?P<{_V}>{body})" if group == 0 else body


def _lower() -> _Step:
    return _Step(sql=lambda x: f"translate({x}, {_SQL_LOWER})", arrow=pc.ascii_lower)


def _extract(pattern: str, group: int = 0) -> _Step:
    """Group ``group`` of the first match of ``pattern``; '' or no match -> missing."""
    named = _named_group(pattern, group)

    def arrow(a: pa.Array) -> pa.Array:
        return _nullif_empty_arrow(pc.struct_field(pc.extract_regex(a, named), _V))

    return _Step(
        sql=lambda x: f"NULLIF(regexp_extract({x}, {sql_string(pattern)}, {group}), '')",
        arrow=arrow,
    )


def _replace(pattern: str, repl: str, *, first_only: bool = False) -> _Step:
    """Replace every (or the first) match of ``pattern`` by ``repl`` (RE2 ``\\1`` syntax)."""
    flag = "" if first_only else ", 'g'"
    return _Step(
        sql=lambda x: f"regexp_replace({x}, {sql_string(pattern)}, {sql_string(repl)}{flag})",
        arrow=lambda a: pc.replace_substring_regex(
            a, pattern, repl, max_replacements=1 if first_only else None
        ),
    )


def _if_full_match(pattern: str, then: _Step, otherwise: _Step | None = None) -> _Step:
    """``then`` applied to values that fully match ``pattern``; ``otherwise`` (default: missing)
    applied to the others. Missing input stays missing (both steps must keep it so)."""

    def sql(x: str) -> str:
        test = f"regexp_full_match({x}, {sql_string(pattern)})"
        other = "" if otherwise is None else f" ELSE {otherwise.sql(x)}"
        return f"CASE WHEN {test} THEN {then.sql(x)}{other} END"

    def arrow(a: pa.Array) -> pa.Array:
        out = then.arrow(a)
        other = _null_like(out) if otherwise is None else otherwise.arrow(a)
        return pc.if_else(pc.match_substring_regex(a, _full(pattern)), out, other)

    return _Step(sql=sql, arrow=arrow)


def _nullif_empty() -> _Step:
    return _Step(sql=lambda x: f"NULLIF({x}, '')", arrow=_nullif_empty_arrow)


def _length() -> _Step:
    # DuckDB length() counts code points, like utf8_length.
    return _Step(sql=lambda x: f"length({x})", arrow=lambda a: pc.utf8_length(a).cast(pa.int64()))


def _count_chars(negated_class: str) -> _Step:
    """Number of characters not in ``negated_class`` ('[^0-9]' counts digits)."""
    return _chain(_replace(negated_class, ""), _length())


def _count_literal(char: str) -> _Step:
    """Number of occurrences of the single character ``char``."""
    lit = sql_string(char)
    return _Step(
        sql=lambda x: f"(length({x}) - length(replace({x}, {lit}, '')))",
        arrow=lambda a: pc.count_substring(a, char).cast(pa.int64()),
    )


def _contains(literal: str) -> _Step:
    return _Step(
        sql=lambda x: f"contains({x}, {sql_string(literal)})",
        arrow=lambda a: pc.match_substring(a, literal),
    )


def _trim(chars: str, *, right_only: bool = False) -> _Step:
    fn, kernel = ("rtrim", pc.utf8_rtrim) if right_only else ("trim", pc.utf8_trim)
    return _Step(
        sql=lambda x: f"{fn}({x}, {sql_string(chars)})",
        arrow=lambda a: kernel(a, characters=chars),
    )


def _suffix(text: str) -> _Step:
    return _Step(
        sql=lambda x: f"({x} || {sql_string(text)})",
        arrow=lambda a: pc.binary_join_element_wise(a, text, ""),
    )


def _join(left: _Step, separator: str, right: _Step) -> _Step:
    """``left`` and ``right`` of the same value joined by ``separator``; missing if either is."""
    sep = sql_string(separator)
    return _Step(
        sql=lambda x: f"({left.sql(x)} || {sep} || {right.sql(x)})",
        arrow=lambda a: pc.binary_join_element_wise(left.arrow(a), right.arrow(a), separator),
    )


def _left(n: int) -> _Step:
    return _Step(sql=lambda x: f"left({x}, {n})", arrow=lambda a: pc.utf8_slice_codeunits(a, 0, n))


def _ci(word: str) -> str:
    """Case-insensitive ASCII regex for ``word`` without ``(?i)`` (RE2 folds 'K' to 'k')."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in word)


# --------------------------------------------------------------------------- shared chains

_WS = r"[ \t\n\r\f\v]"
_AFTER_LAST_AT = _extract(r"(?s)^.*@(.*)", 1)
_BEFORE_LAST_AT = _extract(r"(?s)^(.*)@", 1)
# Canonical mailbox of a lower-cased address: the local part up to its first '+', without dots
# at Gmail (which ignores them), and googlemail.com spelled gmail.com.
_UP_TO_PLUS = _chain(_BEFORE_LAST_AT, _replace(r"(?s)\+.*", "", first_only=True))
_CANONICAL_LOCAL = _chain(
    _if_full_match(
        r"(?s).*@(gmail|googlemail)\.com", _chain(_UP_TO_PLUS, _replace(r"\.", "")), _UP_TO_PLUS
    ),
    _nullif_empty(),
)
_CANONICAL_DOMAIN = _chain(_AFTER_LAST_AT, _replace(r"\Agooglemail\.com\z", "gmail.com"))
_CANONICAL_EMAIL = _join(_CANONICAL_LOCAL, "@", _CANONICAL_DOMAIN)
# Text after the first '+' of a local part ('' without one).
_PLUS_TAG = _replace(r"(?s)\A[^+]*\+?", "", first_only=True)
# Last dot-separated label, unless it is all digits (an IP literal has no TLD).
_TLD = _chain(_extract(r"(?s)^.*\.(.*)", 1), _extract(r"(?s)^.*[^0-9].*"))
# Lower-case ASCII letter runs -> 'a', digits -> '9': "john.smith1987" -> "a.a9999".
_NAME_SHAPE = _chain(_replace("[0-9]", "9"), _replace("[a-z]+", "a"), _nullif_empty())
# Case-aware shape of free text: "Invoice 2024 READY" -> "Aa 9999 A".
_TEXT_SHAPE = _chain(
    _replace("[0-9]", "9"),
    _replace("[A-Z]+", "A"),
    _replace("[a-z]+", "a"),
    _replace(_WS + "+", " "),
    _trim(" "),
    _nullif_empty(),
)

# --------------------------------------------------------------------------- IP addresses

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_PATTERN = rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}"
_H = "[0-9a-fA-F]{1,4}"
# Textbook IPv6 (pure hex: no zone id, no dotted IPv4 tail), without lookarounds.
IPV6_PATTERN = (
    rf"({_H}:){{7}}{_H}|({_H}:){{1,7}}:|({_H}:){{1,6}}:{_H}|({_H}:){{1,5}}(:{_H}){{1,2}}"
    rf"|({_H}:){{1,4}}(:{_H}){{1,3}}|({_H}:){{1,3}}(:{_H}){{1,4}}|({_H}:){{1,2}}(:{_H}){{1,5}}"
    rf"|{_H}:(:{_H}){{1,6}}|:((:{_H}){{1,7}}|:)"
)
# Python's re agrees with RE2 on these two: explicit classes, no '$', full match only.
_IPV4_RX = re.compile(IPV4_PATTERN, re.ASCII)
_IPV6_RX = re.compile(IPV6_PATTERN, re.ASCII)


def ipv4_int(s: str) -> int | None:
    """Integer value of a dotted IPv4 address; ``None`` unless ``s`` is exactly one."""
    if not _IPV4_RX.fullmatch(s):
        return None
    a, b, c, d = (int(p) for p in s.split("."))
    return ((a * 256 + b) * 256 + c) * 256 + d


def ipv4_int_sql(x: str) -> str:
    """SQL form of :func:`ipv4_int` over the SQL expression ``x``."""
    parts = [f"TRY_CAST(split_part({x}, '.', {i}) AS BIGINT)" for i in range(1, 5)]
    value = f"((({parts[0]} * 256 + {parts[1]}) * 256 + {parts[2]}) * 256 + {parts[3]})"
    return f"CASE WHEN regexp_full_match({x}, {sql_string(IPV4_PATTERN)}) THEN {value} END"


def _n_groups(s: str) -> int:
    return 0 if s == "" else s.count(":") + 1


def ipv6_expand(s: str) -> str | None:
    """Fully expanded lower-case IPv6 text ("2001:0db8:0000:...:0001", 39 characters).

    Fixed width makes text order numeric order, so a CIDR block is a text range.
    ``None`` unless ``s`` is a pure-hex IPv6 address. Same steps as :func:`ipv6_expand_sql`.
    """
    if not _IPV6_RX.fullmatch(s):
        return None
    low = s.lower()  # validated ASCII
    if "::" in low:
        head, tail = low.split("::", 1)
        low = (head + ":" + "0:" * (8 - _n_groups(head) - _n_groups(tail)) + tail).strip(":")
    padded = re.sub("([0-9a-f]+)", r"000\1", low)
    return re.sub("[0-9a-f]*([0-9a-f]{4})", r"\1", padded)


def ipv6_expand_sql(x: str) -> str:
    """SQL form of :func:`ipv6_expand` over the SQL expression ``x``."""
    low = f"lower({x})"  # only used for validated ASCII input
    head, tail = f"split_part({low}, '::', 1)", f"split_part({low}, '::', 2)"

    def n_groups(g: str) -> str:
        colons = f"length({g}) - length(replace({g}, ':', ''))"
        return f"(CASE WHEN {g} = '' THEN 0 ELSE {colons} + 1 END)"

    zeros = f"repeat('0:', 8 - {n_groups(head)} - {n_groups(tail)})"
    joined = f"trim({head} || ':' || {zeros} || {tail}, ':')"
    expanded = f"CASE WHEN contains({low}, '::') THEN {joined} ELSE {low} END"
    padded = f"regexp_replace({expanded}, '([0-9a-f]+)', '000\\1', 'g')"
    fixed = f"regexp_replace({padded}, '[0-9a-f]*([0-9a-f]{{4}})', '\\1', 'g')"
    return f"CASE WHEN regexp_full_match({x}, {sql_string(IPV6_PATTERN)}) THEN {fixed} END"


def _where_valid(
    a: pa.Array, pattern: str, fn: Callable[[pa.Array], pa.Array], type_: pa.DataType
) -> pa.Array:
    """``fn`` over the values that fully match ``pattern`` only; others -> null."""
    valid = pc.fill_null(pc.match_substring_regex(a, _full(pattern)), False)
    mask = valid.to_numpy(zero_copy_only=False)
    out = fn(pc.filter(a, valid)).cast(type_)
    # Valid rows take their result, the others the null appended at the end.
    idx = np.where(mask, np.cumsum(mask) - 1, len(out))
    return pc.take(pa.concat_arrays([out, pa.nulls(1, type_)]), pa.array(idx))


def _ipv6_expand_valid(low_valid: pa.Array) -> pa.Array:
    low = pc.ascii_lower(low_valid)
    parts = pc.extract_regex(low, r"\A(?P<h>[0-9a-f:]*?)::(?P<t>[0-9a-f:]*)\z")
    head, tail = pc.struct_field(parts, "h"), pc.struct_field(parts, "t")

    def n_groups(g: pa.Array) -> pa.Array:
        colons = pc.count_substring(g, ":").cast(pa.int64())
        return pc.if_else(pc.equal(g, ""), 0, pc.add(colons, 1))

    zeros = pc.binary_repeat("0:", pc.subtract(8, pc.add(n_groups(head), n_groups(tail))))
    joined = pc.utf8_trim(pc.binary_join_element_wise(head, ":", zeros, tail, ""), ":")
    expanded = pc.if_else(pc.match_substring(low, "::"), joined, low)
    padded = pc.replace_substring_regex(expanded, "([0-9a-f]+)", r"000\1")
    return pc.replace_substring_regex(padded, "[0-9a-f]*([0-9a-f]{4})", r"\1")


def _ipv6_expand_arrow(a: pa.Array) -> pa.Array:
    """Vectorised :func:`ipv6_expand` (the same steps as its SQL form)."""
    return _where_valid(a, IPV6_PATTERN, _ipv6_expand_valid, pa.string())


def _ipv4_int_valid(a: pa.Array) -> pa.Array:
    parts = pc.extract_regex(a, r"\A(?P<a>[0-9]+)\.(?P<b>[0-9]+)\.(?P<c>[0-9]+)\.(?P<d>[0-9]+)\z")
    value = pa.scalar(0, pa.int64())
    for name in "abcd":
        value = pc.add(pc.multiply(value, 256), pc.struct_field(parts, name).cast(pa.int64()))
    return value


def _ipv4_int_arrow(a: pa.Array) -> pa.Array:
    """Vectorised :func:`ipv4_int`."""
    return _where_valid(a, IPV4_PATTERN, _ipv4_int_valid, pa.int64())


def ipv4_ints(values: pd.Series) -> pd.Series:
    """:func:`ipv4_int` of every value (``Int64``; missing where not an IPv4 address)."""
    return _typed(_apply_step(values, _Step(sql=ipv4_int_sql, arrow=_ipv4_int_arrow)),
                  values.index, "integer")  # fmt: skip


def ipv6_expanded(values: pd.Series) -> pd.Series:
    """:func:`ipv6_expand` of every value (``string``; missing where not IPv6)."""
    return _typed(_apply_step(values, _IPV6_EXPAND), values.index, "string")


_IPV6_EXPAND = _Step(sql=ipv6_expand_sql, arrow=_ipv6_expand_arrow)
_IP_VERSION = _Step(
    sql=lambda x: (
        f"CASE WHEN regexp_full_match({x}, {sql_string(IPV4_PATTERN)}) THEN 4 "
        f"WHEN regexp_full_match({x}, {sql_string(IPV6_PATTERN)}) THEN 6 END"
    ),
    arrow=lambda a: pc.if_else(
        pc.match_substring_regex(a, _full(IPV4_PATTERN)),
        pa.scalar(4, pa.int64()),
        pc.if_else(
            pc.match_substring_regex(a, _full(IPV6_PATTERN)),
            pa.scalar(6, pa.int64()),
            pa.scalar(None, pa.int64()),
        ),
    ),
)
_PREFIX24 = _if_full_match(
    IPV4_PATTERN, _chain(_extract(r"^([0-9]+\.[0-9]+\.[0-9]+)\.", 1), _suffix(".0/24"))
)
_PREFIX16 = _if_full_match(
    IPV4_PATTERN, _chain(_extract(r"^([0-9]+\.[0-9]+)\.", 1), _suffix(".0.0/16"))
)
_PREFIX48 = _chain(_IPV6_EXPAND, _left(14), _suffix("::/48"))
_PREFIX64 = _chain(_IPV6_EXPAND, _left(19), _suffix("::/64"))

# --------------------------------------------------------------------------- user agents

_VERSION = "/[0-9][0-9A-Za-z._-]*"
_GENERIC_TOKEN = "[A-Za-z][A-Za-z0-9_.-]*" + _VERSION
# (family, detection regex searched in the ASCII-lower-cased UA, version token in the raw UA).
# Order matters: Edge and Opera UAs also say "Chrome/", Chrome's also say "Safari/".
_UA_FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("HeadlessChrome", "headlesschrome/", _ci("HeadlessChrome") + _VERSION),
    ("Edge", "edg(e|a|ios)?/", _ci("Edg") + "[A-Za-z]*" + _VERSION),
    ("Opera", "opr/|opera", "(" + _ci("OPR") + "|" + _ci("Opera") + ")" + _VERSION),
    ("Samsung", "samsungbrowser/", _ci("SamsungBrowser") + _VERSION),
    ("Chrome", "chrome/|crios/", "(" + _ci("Chrome") + "|" + _ci("CriOS") + ")" + _VERSION),
    ("Firefox", "firefox/|fxios/", "(" + _ci("Firefox") + "|" + _ci("FxiOS") + ")" + _VERSION),
    ("Safari", "safari/", _ci("Version") + _VERSION),
    ("curl", "^curl/", _ci("curl") + _VERSION),
    ("python-requests", "python-requests/", _ci("python-requests") + _VERSION),
    ("okhttp", "okhttp/", _ci("okhttp") + _VERSION),
    (
        "Bot",
        "bot|crawl|spider|slurp|scrapy|wget|python-urllib|aiohttp|httpx|go-http-client|java/"
        "|libwww|httpclient|axios|node-fetch|headless|phantomjs|selenium|puppeteer|playwright",
        "",  # the fallback build below
    ),
)
_UA_OTHER = "Other"
_UA_OS: tuple[tuple[str, str], ...] = (
    ("Windows", "windows"),
    ("iOS", "iphone|ipad|ipod"),
    ("Android", "android"),
    ("Mac OS X", "mac os x|macintosh"),
    ("Linux", "linux|x11"),
)
# Bot and Other builds: the first name/version token after a leading "Mozilla/x.y".
_FALLBACK_BUILD = _chain(
    _replace("^Mozilla/[0-9.]+", "", first_only=True), _extract(_GENERIC_TOKEN)
)


def _ua_case(table: Iterable[tuple[str, str | _Step]], other: str | _Step) -> _Step:
    """First detection regex (searched in the ASCII-lower-cased UA) that matches picks the value.

    A value is a literal string or a ``_Step`` applied to the raw UA.
    """
    rows = list(table)

    def render(v: str | _Step, x: str) -> str:
        return v.sql(x) if isinstance(v, _Step) else sql_string(v)

    def sql(x: str) -> str:
        low = f"translate({x}, {_SQL_LOWER})"
        whens = " ".join(
            f"WHEN regexp_matches({low}, {sql_string(p)}) THEN {render(v, x)}" for p, v in rows
        )
        # Missing stays missing: NULL would otherwise fall through to ELSE.
        return f"CASE WHEN {x} IS NULL THEN NULL {whens} ELSE {render(other, x)} END"

    def value(v: str | _Step, a: pa.Array) -> pa.Array | pa.Scalar:
        return v.arrow(a) if isinstance(v, _Step) else pa.scalar(v, pa.string())

    def arrow(a: pa.Array) -> pa.Array:
        low = pc.ascii_lower(a)
        out = pc.if_else(pc.is_null(a), pa.scalar(None, pa.string()), value(other, a))
        for p, v in reversed(rows):  # the first matching row must win: apply it last
            out = pc.if_else(pc.match_substring_regex(low, p), value(v, a), out)
        return out.cast(pa.string())

    return _Step(sql=sql, arrow=arrow)


_UA_FAMILY = _ua_case(((p, fam) for fam, p, _ in _UA_FAMILIES), _UA_OTHER)
_UA_BUILD = _ua_case(
    ((p, _extract(tok) if tok else _FALLBACK_BUILD) for _, p, tok in _UA_FAMILIES),
    _FALLBACK_BUILD,
)
_UA_OS_STEP = _ua_case(((p, name) for name, p in _UA_OS), _UA_OTHER)

# --------------------------------------------------------------------------- misc chains

_SUBJECT_SKELETON = _chain(
    _lower(),
    _replace("[0-9]+", "#"),
    _replace(_WS + "+", " "),
    _trim(" "),
    _nullif_empty(),
)
_URL_HOST = _chain(
    _extract(
        "[Hh][Tt][Tt][Pp][Ss]?://([^/?#@ \\t\\n\\r\\f\\v]*@)?"
        "([^/?#:@ \\t\\n\\r\\f\\v\"'<>()\\[\\]{}\\\\]+)",
        2,
    ),
    _lower(),
    _trim(".", right_only=True),
    _nullif_empty(),
)


def _vowel_share_sql(x: str) -> str:
    letters = f"length(regexp_replace({x}, '[^a-z]', '', 'g'))"
    vowels = f"length(regexp_replace({x}, '[^aeiou]', '', 'g'))"
    # Integer round-half-up, exact on both sides (round() differs: banker's vs half-up).
    return (
        f"CASE WHEN {letters} > 0 THEN "
        f"CAST((200 * {vowels} + {letters}) // (2 * {letters}) AS DOUBLE) / 100.0 END"
    )


def _vowel_share_arrow(a: pa.Array) -> pa.Array:
    def count(neg: str) -> np.ndarray:
        n = pc.utf8_length(pc.replace_substring_regex(a, neg, ""))
        return pc.fill_null(n, 0).to_numpy(zero_copy_only=False).astype(np.int64)

    letters, vowels = count("[^a-z]"), count("[^aeiou]")
    ok = letters > 0
    share = (200 * vowels + letters) // np.where(ok, 2 * letters, 1) / 100.0
    return pa.array(share, mask=~ok, type=pa.float64())


_VOWEL_SHARE = _Step(sql=_vowel_share_sql, arrow=_vowel_share_arrow)


_DIGIT_RUNS = re.compile("[0-9]+")


def _digit_run_sql(x: str) -> str:
    runs = f"regexp_extract_all({x}, '[0-9]+')"
    return (
        f"CASE WHEN {x} IS NULL THEN NULL ELSE "
        f"coalesce(list_max(list_transform({runs}, lambda s: length(s))), 0) END"
    )


def _digit_run_arrow(a: pa.Array) -> pa.Array:
    # runs on the distinct values only (see _Step)
    return pa.array(
        [
            None if v is None else max((len(r) for r in _DIGIT_RUNS.findall(v)), default=0)
            for v in a.to_pylist()
        ],
        type=pa.int64(),
    )


# Longest run of digits: phone numbers and short codes are how bulk messages ask for a reply.
_DIGIT_RUN = _Step(sql=_digit_run_sql, arrow=_digit_run_arrow)

# --------------------------------------------------------------------------- attributes


@dataclass(frozen=True)
class Attribute:
    """A derived, named attribute of an input row.

    Attributes
    ----------
    name, kind : str
        Attribute name and the entity kind whose rows it reads.
    dtype : {"string", "integer", "float", "boolean"}
        Value type (pandas ``string``, ``Int64``, ``float64``, ``boolean``).
    sql : str
        DuckDB expression over the input contract's columns; same values as ``compute``.
    description : str
        What it means, for the bundle and the report.
    compute : callable
        ``compute(df) -> Series`` aligned with ``df``; missing values are ``<NA>`` (NaN for
        floats).
    requires : tuple of str
        Input columns it reads.
    holds_ip : bool
        Whether values are IP address text (``cidr`` predicates apply).
    """

    name: str
    kind: str
    dtype: Dtype
    sql: str
    description: str
    compute: Callable[[pd.DataFrame], pd.Series]
    requires: tuple[str, ...]
    holds_ip: bool = False


def _column_values(df: pd.DataFrame, column: str) -> pd.Series:
    """``df[column]``, or all-missing when the optional column is absent."""
    if column in df.columns:
        return df[column]
    return pd.Series(None, index=df.index, dtype="object")


def _arrow_strings(values: pd.Series) -> pa.Array:
    """The column as an Arrow string array (missing -> null)."""
    if not (pd.api.types.is_string_dtype(values.dtype) or values.dtype == object):
        values = values.astype("string")
    try:
        arr = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed objects: stringify the non-missing
        arr = pa.array(values.astype("string"), from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.string())
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = pa.array(values.astype("string"), from_pandas=True)
    # One string type throughout: kernels do not mix string and large_string arguments.
    return arr.cast(pa.string())


def _apply_step(values: pd.Series, step: _Step) -> pa.Array:
    """``step`` over the distinct values only (user agents and domains repeat a lot)."""
    enc = _arrow_strings(values).dictionary_encode()
    return pc.take(step.arrow(enc.dictionary), enc.indices)


_ARROW_TO_PANDAS = {
    pa.string(): pd.StringDtype(),
    pa.large_string(): pd.StringDtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def _typed(values: Any, index: pd.Index, dtype: Dtype) -> pd.Series:
    """Values (Arrow array, Series or array-like) as a Series of the attribute's dtype."""
    if isinstance(values, pa.Array):
        if dtype == "float":
            values = values.cast(pa.float64()).to_numpy(zero_copy_only=False)
        else:
            values = values.to_pandas(types_mapper=_ARROW_TO_PANDAS.get)
    out = pd.Series(np.asarray(values) if dtype == "float" else values, copy=False)
    out = out.astype(_PANDAS_DTYPES[dtype])
    out.index = index
    return out


_Compute = Callable[[pd.DataFrame], Any]


def _derived(column: str, step: _Step) -> tuple[str, _Compute]:
    """SQL and Python forms of ``step`` applied to one input column."""
    return step.sql(sql_identifier(column)), lambda df: _apply_step(
        _column_values(df, column), step
    )


def _passthrough(column: str, dtype: Dtype) -> tuple[str, _Compute]:
    """An input column as it is (cast to the attribute's type)."""
    col = sql_identifier(column)
    if dtype == "string":
        return col, lambda df: _arrow_strings(_column_values(df, column))
    if dtype == "float":
        # NaN is missing in pandas; DuckDB would keep a real NaN (and sort it above +inf).
        sql = f"NULLIF(CAST({col} AS DOUBLE), CAST('NaN' AS DOUBLE))"
        return sql, lambda df: pd.to_numeric(_column_values(df, column), errors="coerce")
    cast = {"integer": "BIGINT", "boolean": "BOOLEAN"}[dtype]
    return f"CAST({col} AS {cast})", lambda df: _column_values(df, column).astype(
        _PANDAS_DTYPES[dtype]
    )


def _utc_hour(column: str) -> tuple[str, _Compute]:
    """UTC hour of a timestamp column, whatever the session time zone.

    ``epoch_ms`` reads TIMESTAMP as UTC and TIMESTAMPTZ as an instant, whereas ``hour()`` of
    a TIMESTAMPTZ follows the session's TimeZone setting.
    """
    day = 86_400_000
    sql = (
        f"CAST((((epoch_ms({sql_identifier(column)}) % {day}) + {day}) % {day}) // 3600000 "
        "AS INTEGER)"
    )

    def compute(df: pd.DataFrame) -> Any:
        return pd.to_datetime(_column_values(df, column), utc=True).dt.hour

    return sql, compute


def _utc_date(column: str) -> tuple[str, _Compute]:
    """UTC calendar date ('YYYY-MM-DD') of a timestamp column, whatever the session time zone."""
    sql = (
        f"CAST(CAST(make_timestamp(epoch_ms({sql_identifier(column)}) * 1000) AS DATE) AS VARCHAR)"
    )

    def compute(df: pd.DataFrame) -> Any:
        return pd.to_datetime(_column_values(df, column), utc=True).dt.strftime("%Y-%m-%d")

    return sql, compute


_OWN_USERNAME = _chain(_lower(), _nullif_empty())
_EMAIL_LOCAL = _chain(_lower(), _BEFORE_LAST_AT)


# ------------------------------------------------------------------ derivations of a spec

_NAME_STEPS: dict[str, _Step] = {
    "shape": _NAME_SHAPE,
    "length": _length(),
    "digits": _count_chars("[^0-9]"),
    "vowel_share": _VOWEL_SHARE,
}
_STEPS: dict[str, _Step] = {
    "lower": _lower(),
    "domain": _chain(_lower(), _AFTER_LAST_AT),
    "domain_tld": _chain(_lower(), _AFTER_LAST_AT, _TLD),
    "local": _chain(_lower(), _BEFORE_LAST_AT),
    "local_has_plus": _chain(_lower(), _BEFORE_LAST_AT, _contains("+")),
    "local_dots": _chain(_lower(), _BEFORE_LAST_AT, _count_literal(".")),
    "canonical": _chain(_lower(), _CANONICAL_EMAIL),
    "local_canonical": _chain(_lower(), _CANONICAL_LOCAL),
    "plus_tag_len": _chain(_lower(), _BEFORE_LAST_AT, _PLUS_TAG, _length()),
    "local_shape": _chain(_lower(), _BEFORE_LAST_AT, _NAME_SHAPE),
    "text_shape": _TEXT_SHAPE,
    "skeleton": _SUBJECT_SKELETON,
    "digit_run": _chain(_nullif_empty(), _DIGIT_RUN),  # as length and digits: empty = missing
    "url_host": _URL_HOST,
    "url_tld": _chain(_URL_HOST, _TLD),
    "ip_version": _IP_VERSION,
    "prefix24": _PREFIX24,
    "prefix16": _PREFIX16,
    "prefix48": _PREFIX48,
    "prefix64": _PREFIX64,
    "ua_family": _UA_FAMILY,
    "ua_os": _UA_OS_STEP,
    "ua_build": _UA_BUILD,
    **{name: _chain(_OWN_USERNAME, step) for name, step in _NAME_STEPS.items()},
}
# what a derivation means when the spec does not say
_DESCRIPTIONS: dict[str, str] = {
    "raw": "{column} (input), as it is",
    "lower": "{column}, ASCII lower-cased",
    "domain": "lower-cased text after the last '@' of {column}",
    "domain_tld": "last dot-separated label of the domain of {column} (null if none or all digits)",
    "local": "lower-cased text before the last '@' of {column}",
    "local_has_plus": "whether the local part of {column} has a '+' tag",
    "local_dots": "number of '.' in the local part of {column}",
    "canonical": "the mailbox {column} delivers to: local part up to its first '+' (without '.' "
    "at gmail.com) + '@' + domain, googlemail.com -> gmail.com",
    "local_canonical": "local part of {column} up to its first '+', without '.' at gmail.com",
    "plus_tag_len": "code points after the first '+' of the local part of {column}",
    "local_shape": "local part of {column} with digits -> '9', then [a-z] runs -> 'a'",
    "shape": "{column} lower-cased, digits -> '9', then [a-z] runs -> 'a'",
    "length": "length of {column} in code points",
    "digits": "number of ASCII digits in {column}",
    "vowel_share": "share of [aeiou] among [a-z] letters of {column}, rounded half-up to 0.01",
    "text_shape": "{column} with digits -> '9', [A-Z] runs -> 'A', [a-z] runs -> 'a', "
    "whitespace runs -> ' ', trimmed",
    "skeleton": "{column} lower-cased, digit runs -> '#', whitespace runs -> ' ', trimmed",
    "digit_run": "length of the longest run of ASCII digits in {column} (0 if none; null if empty)",
    "url_host": "lower-cased host of the first http(s) URL in {column}",
    "url_tld": "last label of the host of the first http(s) URL in {column}",
    "ip_version": "4 or 6 when {column} is a valid IP address, else null",
    "prefix24": "'a.b.c.0/24' for an IPv4 {column}, else null",
    "prefix16": "'a.b.0.0/16' for an IPv4 {column}, else null",
    "prefix48": "first three groups of an IPv6 {column}, zero-padded lower-case hex, + '::/48'",
    "prefix64": "first four groups of an IPv6 {column}, zero-padded lower-case hex, + '::/64'",
    "ua_family": "browser or client family from an ordered token table: "
    + ", ".join(f for f, _, _ in _UA_FAMILIES)
    + ", else 'Other'",
    "ua_os": "operating system: " + ", ".join(n for n, _ in _UA_OS) + ", else 'Other'",
    "ua_build": "version token of the user agent's family in {column}",
    "hour": "UTC hour of {column}",
    "utc_date": "UTC calendar date of {column}, 'YYYY-MM-DD'",
}


def _with_fallback(column: str, fallback: str, step: _Step | None) -> tuple[str, _Compute]:
    """``step`` over ``column`` lower-cased, or the local part of ``fallback`` where empty."""
    base_sql = (
        f"COALESCE({_OWN_USERNAME.sql(sql_identifier(column))}, "
        f"{_EMAIL_LOCAL.sql(sql_identifier(fallback))})"
    )

    def base(df: pd.DataFrame) -> pa.Array:
        own = _apply_step(_column_values(df, column), _OWN_USERNAME)
        local = _apply_step(_column_values(df, fallback), _EMAIL_LOCAL)
        return pc.coalesce(own, local)

    if step is None:
        return base_sql, base

    def compute(df: pd.DataFrame) -> Any:
        enc = base(df).dictionary_encode()
        return pc.take(step.arrow(enc.dictionary), enc.indices)

    return step.sql(base_sql), compute


def _from_spec(spec: EntitySpec) -> dict[str, Attribute]:
    cols = {c.name: c for c in spec.columns}
    out: dict[str, Attribute] = {}
    for a in spec.attributes:
        col = cols[a.column]
        kind_of = DERIVATIONS[a.derive]
        dtype = cast(
            Dtype,
            ("string" if col.type == "timestamp" else col.type) if kind_of == "raw" else kind_of,
        )
        if a.derive == "raw":
            form = _passthrough(a.column, dtype)
        elif a.derive == "hour":
            form = _utc_hour(a.column)
        elif a.derive == "utc_date":
            form = _utc_date(a.column)
        elif a.fallback is not None:
            step = None if a.derive == "lower" else _NAME_STEPS.get(a.derive, _STEPS[a.derive])
            form = _with_fallback(a.column, a.fallback, step)
        else:
            form = _derived(a.column, _STEPS[a.derive])
        sql, raw = form

        def compute(df: pd.DataFrame, raw: Any = raw, dtype: Dtype = dtype) -> pd.Series:
            return _typed(raw(df), df.index, dtype)

        requires = (a.column,) if a.fallback is None else (a.column, a.fallback)
        out[a.name] = Attribute(
            name=a.name,
            kind=spec.name,
            dtype=dtype,
            sql=sql,
            description=a.description or _DESCRIPTIONS[a.derive].format(column=a.column),
            compute=compute,
            requires=requires,
            holds_ip=col.role == "ip" and a.derive == "lower",
        )
    return out


_REGISTRY = SpecView(_from_spec)


def attributes_for(kind: str) -> dict[str, Attribute]:
    """All attributes of ``kind``, by name (a fresh dict; the attributes are immutable).

    Raises
    ------
    ValueError
        If ``kind`` is unknown.
    """
    get_kind(kind)
    return dict(_REGISTRY[kind])


def ensure_columns(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    """``df`` with every absent optional contract column added as typed, all-missing.

    SQL over a table needs every column it names; Python treats absent optional columns as
    missing. Adding them makes a frame usable by both.
    """
    k = get_kind(kind)
    missing = [c for c in k.columns if c.name not in df.columns]
    if not missing:
        return df
    types = {
        "string": "string",
        "integer": "Int64",
        "float": "float64",
        "boolean": "boolean",
        "timestamp": "datetime64[us, UTC]",
    }
    extra = {c.name: pd.Series(None, index=df.index, dtype=types[c.type]) for c in missing}
    return df.assign(**extra)


def compute_attributes(
    df: pd.DataFrame, kind: str, names: Iterable[str] | None = None
) -> pd.DataFrame:
    """Compute attributes of ``kind`` for every row of ``df``.

    Parameters
    ----------
    df : DataFrame
        Rows of the input contract of ``kind``; absent optional columns count as missing.
    kind : str
        ``"signups"`` or ``"senders"``.
    names : iterable of str, optional
        Attributes to compute (default: all, in definition order).

    Returns
    -------
    DataFrame
        Index aligned with ``df``, one column per attribute: ``string``, ``Int64``,
        ``float64`` or ``boolean``.

    Raises
    ------
    ValueError
        Unknown kind or attribute, or a required input column is absent.
    """
    attrs = attributes_for(kind)
    wanted = list(attrs) if names is None else list(names)
    unknown = [n for n in wanted if n not in attrs]
    if unknown:
        raise ValueError(f"unknown {kind} attribute(s) {unknown}; known: {sorted(attrs)}")
    k = get_kind(kind)
    cols: dict[str, pd.Series] = {}
    for name in wanted:
        a = attrs[name]
        absent = [c for c in a.requires if c not in df.columns and c in k.required]
        if absent:
            raise ValueError(f"attribute {name!r} needs required column(s) {absent}")
        cols[name] = a.compute(df)
    return pd.DataFrame(cols, index=df.index)
