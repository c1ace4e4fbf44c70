"""Portable exports: CEL and Rspamd match exactly what the Python evaluator matches.

CEL expressions run in cel-python (``celpy``, RE2 through google-re2, strict int/double
typing). Rspamd configuration is read back by a small Python model of Rspamd's multimap
semantics (hash maps: ASCII-case-insensitive equality; regexp maps: byte-mode PCRE search,
modelled with Python ``re`` on bytes; radix maps: address in block) and composites.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import celpy
import numpy as np
import pandas as pd
import pytest
import re2
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from anomaly.export import allowlist_entries, apply_bundle, build_bundle
from anomaly.export_cel import (
    bundle_to_cel,
    cel_activation,
    cel_string,
    check_re2,
    condition_to_cel,
)
from anomaly.export_rspamd import RspamdExport, bundle_to_rspamd, re2_to_pcre_bytes
from anomaly.rules import Rule, RuleError, evaluate, regex_escape
from clustering.attributes import compute_attributes

_HYPO = settings(
    max_examples=int(os.environ.get("CW_HYPOTHESIS_EXAMPLES", "25")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Attacker-controlled text: quotes, backslashes, LIKE and regex metacharacters, control
# characters, NUL, emoji, right-to-left and combining characters, 'İ' (lower() grows it).
HOSTILE = [
    "it's",
    'say "hi"',
    "a''b",
    "back\\slash",
    "\\'",
    '\\"',
    "100%",
    "a_b",
    "%_*",
    "(a|b)*",
    "[x]{2}.+?^$",
    "a.b|c",
    "ü-ß-İ",
    "İstanbul",
    "Ελλάδα",
    "שלום עולם",
    "\u202egnp.exe",
    "e\u0301",
    "👍\u0301",
    "👍🏽",
    "line\nbreak",
    "tab\there",
    "cr\rlf",
    "nul\x00byte",
    "'; DROP TABLE attrs; --",
    "${HOME}$x",
    "#comment",
    "/slashes/i",
    "",
]
IPS = [
    "203.0.113.7",
    "203.0.113.255",
    "203.0.114.0",
    "10.1.2.3",
    "0.0.0.0",
    "255.255.255.255",
    "2001:db8::1",
    "2001:DB8:FFFF:ffff::",
    "2001:db9::",
    "::",
    "::1",
    "fe80::1%eth0",
    "::ffff:1.2.3.4",
    "999.1.1.1",
    "not an ip",
    None,
]
_ENV = celpy.Environment()


# --------------------------------------------------------------------------- CEL helpers


def _cel_program(expr: str) -> Any:
    return _ENV.program(_ENV.compile(expr))


def _cel_eval(prog: Any, activation: dict[str, Any]) -> bool:
    result = prog.evaluate(celpy.json_to_cel(activation))
    assert isinstance(result, celpy.celtypes.BoolType), (result, activation)
    return bool(result)


def cel_mask(cond: dict[str, Any], attrs: pd.DataFrame, kind: str = "signups") -> np.ndarray:
    expr = condition_to_cel(cond, kind)
    assert expr.isascii() and expr.isprintable(), expr
    prog = _cel_program(expr)
    rows = attrs.to_dict("records")
    return np.array([_cel_eval(prog, cel_activation(r, kind)) for r in rows], dtype=bool)


def assert_cel_agrees(
    cond: dict[str, Any], attrs: pd.DataFrame | None = None, kind: str = "signups"
) -> np.ndarray:
    attrs = _attrs() if attrs is None else attrs
    py = evaluate(cond, attrs)
    cel = cel_mask(cond, attrs, kind)
    assert py.tolist() == cel.tolist(), (cond, np.flatnonzero(py), np.flatnonzero(cel))
    return py


def _attrs() -> pd.DataFrame:
    """Signup attribute frame with hostile strings, missing values and every dtype."""
    n = len(IPS)
    strings = pd.Series(HOSTILE[:n], dtype="string")
    strings.iloc[4] = pd.NA
    return pd.DataFrame(
        {
            "email_domain": strings,
            "username_shape": pd.Series(HOSTILE[-n:][::-1], dtype="string"),
            "ip": pd.Series(IPS, dtype="string"),
            "username_len": pd.array([*range(n - 2), None, 2**40], dtype="Int64"),
            "captcha_score": [0.1, 0.5, float("nan"), 1.0] * (n // 4),
            "email_local_has_plus": pd.array([True, False, None, True] * (n // 4), dtype="boolean"),
        }
    )


# --------------------------------------------------------------------------- CEL: literals


def test_cel_string_round_trips_hostile_text() -> None:
    for text in HOSTILE:
        lit = cel_string(text)
        assert lit.isascii() and lit.isprintable() and "\n" not in lit
        assert _cel_eval(_cel_program(f"{lit} == s"), {"s": text}), text
        assert not _cel_eval(_cel_program(f"{lit} == s"), {"s": text + "x"})


@_HYPO
@given(text=st.text(max_size=12))
def test_cel_string_round_trips_any_text(text: str) -> None:
    lit = cel_string(text)
    assert lit.isascii() and lit.isprintable()
    assert _cel_eval(_cel_program(f"s == {lit}"), {"s": text})


@pytest.mark.parametrize("value", HOSTILE)
def test_cel_hostile_literals_match_themselves_only(value: str) -> None:
    attrs = pd.DataFrame({"email_domain": pd.Series([*HOSTILE, None], dtype="string")})
    expected = [d == value for d in HOSTILE] + [False]
    eq = assert_cel_agrees({"op": "eq", "attr": "email_domain", "value": value}, attrs)
    assert eq.tolist() == expected
    assert_cel_agrees({"op": "in", "attr": "email_domain", "values": [value, "zz"]}, attrs)
    regex = {"op": "regex", "attr": "email_domain", "pattern": regex_escape(value)}
    assert assert_cel_agrees(regex, attrs).tolist() == expected
    around = {"op": "regex", "attr": "email_domain", "pattern": f"(?s).*{regex_escape(value)}.*"}
    assert_cel_agrees(around, attrs)
    if value:
        assert_cel_agrees({"op": "prefix", "attr": "email_domain", "value": value}, attrs)


def test_cel_prefix_is_not_like_and_not_case_folded() -> None:
    attrs = pd.DataFrame(
        {"email_domain": pd.Series(["a%b", "axb", "a_c", "abc", "A%b", "i̇x", "İx"], dtype="string")}
    )
    got = assert_cel_agrees({"op": "prefix", "attr": "email_domain", "value": "a%"}, attrs)
    assert got.tolist() == [True, False, False, False, False, False, False]
    got = assert_cel_agrees({"op": "prefix", "attr": "email_domain", "value": "İ"}, attrs)
    assert got.tolist() == [False] * 6 + [True]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("abc", [False, True, False, False, False, False]),  # full match, not search
        (".*abc.*", [True, True, False, False, False, False]),
        ("a.*", [False, True, False, False, False, False]),  # '.' stops at a newline
        ("(?s)a.*", [False, True, True, False, False, False]),
        ("abc$", [False, True, False, False, False, False]),  # '$' is the end of text
        ("(?m)abc$", [False, True, False, False, False, False]),
        ("[a-z]+\\n[a-z]+", [False, False, True, False, False, False]),
        ("(?i)ABC", [False, True, False, False, False, False]),
        ("\\d+", [False, False, False, True, False, False]),  # RE2 \d is ASCII only
        ("\\pN+", [False, False, False, True, False, True]),
        ("é+", [False, False, False, False, True, False]),
        ("a|abc", [False, True, False, False, False, False]),
        ("\\Qa.c\\E|x", [False, False, False, False, False, False]),
    ],
)
def test_cel_regex_semantics_agree(pattern: str, expected: list[bool]) -> None:
    attrs = pd.DataFrame(
        {"email_domain": pd.Series(["xabcx", "abc", "ab\ncd", "123", "éé", "١٢"], dtype="string")}
    )
    cond = {"op": "regex", "attr": "email_domain", "pattern": pattern}
    assert assert_cel_agrees(cond, attrs).tolist() == expected


@pytest.mark.parametrize(
    "block",
    [
        "203.0.113.0/24",
        "203.0.0.0/16",
        "0.0.0.0/0",
        "203.0.113.7/32",
        "10.0.0.0/8",
        "2001:db8::/32",
        "2001:db8::/47",
        "2001:db8:ffff:ffff::/64",
        "::/0",
        "::1/128",
        "::/127",
    ],
)
def test_cel_cidr_agrees_with_ipaddress(block: str) -> None:
    net = ipaddress.ip_network(block)
    got = assert_cel_agrees({"op": "cidr", "attr": "ip", "value": block})
    for ip, hit in zip(IPS, got, strict=True):
        if ip is None or "%" in ip or (":" in ip and "." in ip):
            assert not hit, ip
            continue
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            assert not hit, ip
            continue
        assert hit == (addr.version == net.version and addr in net), (ip, block)


@pytest.mark.parametrize(
    "cond",
    [
        {"op": "range", "attr": "username_len", "min": 2, "max": 5},
        {"op": "range", "attr": "username_len", "min": 2.5, "max": None},
        {"op": "range", "attr": "username_len", "min": None, "max": 3.0},
        {"op": "range", "attr": "username_len", "min": 2**40, "max": 2**40},
        {"op": "range", "attr": "username_len", "min": -(2**63) + 1, "max": 2**63 - 1},
        {"op": "range", "attr": "captcha_score", "min": 0.1, "max": 0.5},
        {"op": "range", "attr": "captcha_score", "min": 0, "max": 1},
        {"op": "range", "attr": "captcha_score", "max": 0.30000000000000004},
        {"op": "range", "attr": "captcha_score", "min": 1e-300},
        {"op": "eq", "attr": "captcha_score", "value": 1},
        {"op": "in", "attr": "captcha_score", "values": [0.1, 1]},
        {"op": "eq", "attr": "username_len", "value": 3},
        {"op": "in", "attr": "username_len", "values": [1, 2, 2**40, -(2**63) + 1]},
        {"op": "eq", "attr": "email_local_has_plus", "value": True},
        {"op": "in", "attr": "email_local_has_plus", "values": [False]},
    ],
)
def test_cel_numeric_and_boolean_ops_agree(cond: dict[str, Any]) -> None:
    assert assert_cel_agrees(cond).any()


def test_cel_int64_extremes() -> None:
    cond = {"op": "in", "attr": "username_len", "values": [-(2**63), 2**63 - 1]}
    expr = condition_to_cel(cond, "signups")
    assert "(-9223372036854775807 - 1)" in expr
    prog = _cel_program(expr)
    for value, hit in [(-(2**63), True), (2**63 - 1, True), (0, False), (None, False)]:
        assert _cel_eval(prog, {"username_len": value}) is hit


def test_cel_missing_values_never_match() -> None:
    attrs = pd.DataFrame(
        {
            "email_domain": pd.Series([None, None], dtype="string"),
            "username_len": pd.array([None, None], dtype="Int64"),
            "captcha_score": [np.nan, np.nan],
            "ip": pd.Series([None, "x"], dtype="string"),
            "email_local_has_plus": pd.array([None, None], dtype="boolean"),
        }
    )
    for cond in [
        {"op": "regex", "attr": "email_domain", "pattern": ".*"},
        {"op": "prefix", "attr": "email_domain", "value": "a"},
        {"op": "eq", "attr": "email_domain", "value": ""},
        {"op": "range", "attr": "username_len", "min": -5},
        {"op": "range", "attr": "captcha_score", "max": 5.0},
        {"op": "cidr", "attr": "ip", "value": "0.0.0.0/0"},
        {"op": "cidr", "attr": "ip", "value": "::/0"},
        {"op": "in", "attr": "email_local_has_plus", "values": [True, False]},
        {
            "op": "or",
            "args": [
                {"op": "in", "attr": "email_domain", "values": ["x"]},
                {"op": "range", "attr": "captcha_score", "min": 0.0},
            ],
        },
    ]:
        assert not assert_cel_agrees(cond, attrs).any()


def test_cel_nested_and_or() -> None:
    cond = {
        "op": "or",
        "args": [
            {
                "op": "and",
                "args": [
                    {"op": "prefix", "attr": "email_domain", "value": "a"},
                    {"op": "range", "attr": "username_len", "min": 1},
                ],
            },
            {
                "op": "and",
                "args": [
                    {"op": "cidr", "attr": "ip", "value": "2001:db8::/32"},
                    {
                        "op": "or",
                        "args": [{"op": "eq", "attr": "email_local_has_plus", "value": False}],
                    },
                ],
            },
            {"op": "regex", "attr": "username_shape", "pattern": ".*[%_].*"},
        ],
    }
    mask = assert_cel_agrees(cond)
    assert mask.any() and not mask.all()


_CHARS = st.sampled_from([*"ab%_'\"\\.*+?()[]{}|^$-é İ\n\t", "\x00", "👍", "\u0301", "\u202e"])


@_HYPO
@given(
    data=st.lists(st.one_of(st.none(), st.text(_CHARS, max_size=6)), min_size=1, max_size=12),
    literal=st.text(_CHARS, min_size=1, max_size=4),
)
def test_cel_random_literals_agree(data: list[str | None], literal: str) -> None:
    attrs = pd.DataFrame({"email_domain": pd.Series([*data, literal], dtype="string")})
    for cond in [
        {"op": "eq", "attr": "email_domain", "value": literal},
        {"op": "in", "attr": "email_domain", "values": [literal, *[d for d in data if d][:3]]},
        {"op": "prefix", "attr": "email_domain", "value": literal},
        {"op": "regex", "attr": "email_domain", "pattern": regex_escape(literal)},
        {"op": "regex", "attr": "email_domain", "pattern": "(?s).*" + regex_escape(literal) + ".*"},
    ]:
        assert assert_cel_agrees(cond, attrs)[-1]


@_HYPO
@given(
    addrs=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=10),
    addrs6=st.lists(st.integers(0, 2**128 - 1), min_size=1, max_size=10),
    base=st.integers(0, 2**128 - 1),
    plen=st.integers(0, 128),
    v4=st.booleans(),
)
def test_cel_random_cidr_agree(
    addrs: list[int], addrs6: list[int], base: int, plen: int, v4: bool
) -> None:
    if v4:
        net = ipaddress.ip_network((base % 2**32, plen % 33), strict=False)
    else:
        net = ipaddress.ip_network((base, plen), strict=False)
    ips = [str(ipaddress.IPv4Address(a)) for a in addrs] + [
        str(ipaddress.IPv6Address(a)).upper() for a in addrs6
    ]
    ips.append(str(net.network_address))
    attrs = pd.DataFrame({"ip": pd.Series(ips, dtype="string")})
    mask = assert_cel_agrees({"op": "cidr", "attr": "ip", "value": str(net)}, attrs)
    assert mask.tolist() == [ipaddress.ip_address(ip) in net for ip in ips]


@_HYPO
@given(
    values=st.lists(
        st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.integers(-5, 5)), max_size=10
    ),
    lo=st.one_of(st.none(), st.integers(-6, 6), st.floats(-6, 6)),
    hi=st.one_of(st.none(), st.integers(-6, 6), st.floats(-6, 6)),
)
def test_cel_random_int_ranges_agree(values: list[int | None], lo: Any, hi: Any) -> None:
    assume(lo is not None or hi is not None)
    assume(lo is None or hi is None or lo <= hi)
    attrs = pd.DataFrame(
        {
            "username_len": pd.array(values, dtype="Int64"),
            "captcha_score": [np.nan if v is None else v / 3 for v in values],
        }
    )
    for attr in ("username_len", "captcha_score"):
        assert_cel_agrees({"op": "range", "attr": attr, "min": lo, "max": hi}, attrs)


def test_cel_refuses_what_the_rule_language_refuses() -> None:
    with pytest.raises(RuleError, match="ghost"):
        condition_to_cel({"op": "eq", "attr": "ghost", "value": "x"}, "signups")
    with pytest.raises(RuleError, match="RE2"):
        condition_to_cel({"op": "regex", "attr": "email_domain", "pattern": "(a)\\1"}, "signups")
    with pytest.raises(RuleError, match="subject_skeleton"):
        condition_to_cel({"op": "eq", "attr": "subject_skeleton", "value": "x"}, "signups")
    # without a kind, the attributes pick it
    assert "subject_skeleton" in condition_to_cel(
        {"op": "eq", "attr": "subject_skeleton", "value": "x"}
    )


@pytest.mark.parametrize(
    "pattern", ["(a)\\1", "a(?=b)", "(?<!a)b", "(unclosed", "a{1001}", "[z-a]", "a**", "\\8"]
)
def test_check_re2_rejects(pattern: str) -> None:
    with pytest.raises(RuleError, match="RE2 rejects"):
        check_re2(pattern)


@pytest.mark.parametrize("pattern", ["abc", "(?s).*", "\\pL+", "(?P<n>x)|[[:alpha:]]", "é\x00"])
def test_check_re2_accepts(pattern: str) -> None:
    check_re2(pattern)


# --------------------------------------------------------------------------- bundles

BACKTEST = {"population": 400, "hits": 12, "precision": 1.0, "precision_lower": 0.76, "recall": 0.9}


def rid(name: str) -> str:
    """A bundle rule id (``r-`` and 12 hex digits) for a readable test name."""
    return "r-" + hashlib.sha256(name.encode()).hexdigest()[:12]


def _rule(name: str, cond: dict[str, Any], kind: str = "signups", **kw: Any) -> Rule:
    return Rule(
        id=rid(name),
        version=1,
        kind=kind,
        campaign_id=f"c-{name}",
        title=f'title of {name}: it\'s "quoted" \\ ${{HOME}} \n #not a comment',
        condition=cond,
        backtest=dict(BACKTEST),
        **kw,
    )


def _bundle(rules: list[Rule], allowlists: dict[str, Any] | None = None) -> dict[str, Any]:
    return build_bundle(
        rules,
        run_id="run-1",
        created_at="2024-05-02T00:00:00+00:00",
        code_version="0.1.0",
        parameters={},
        allowlists=allowlists,
    )


def _signups(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    domains = ["mail.example", "Fresh-Domain.xyz", "o'hara.ie", "back\\slash.io", "ü.de"]
    return pd.DataFrame(
        {
            "account_id": [f"acc-{i:04d}" for i in range(n)],
            "created_at": pd.Timestamp("2024-05-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"),
            "email": [
                f"{'user' if i % 3 else 'John.Smith'}{1900 + i % 120}@{domains[i % 5]}"
                for i in range(n)
            ],
            "ip": [
                f"203.0.{113 + i % 3}.{i % 250}" if i % 4 else f"2001:DB8:{i % 7:x}::{i:x}"
                for i in range(n)
            ],
            "username": pd.Series(
                [None if i % 5 else HOSTILE[i % len(HOSTILE)] for i in range(n)], dtype="string"
            ),
            "captcha_score": rng.random(n).round(3),
            "ip_asn": pd.array([64500 + i % 4 if i % 9 else None for i in range(n)], dtype="Int64"),
        }
    )


def _signup_rules() -> list[Rule]:
    return [
        _rule(
            "domain",
            {"op": "in", "attr": "email_domain", "values": ["o'hara.ie", "back\\slash.io"]},
            mode="enforce",
        ),
        _rule(
            "shape",
            {
                "op": "and",
                "args": [
                    {"op": "eq", "attr": "username_shape", "value": "a9999"},
                    {"op": "range", "attr": "captcha_score", "min": None, "max": 0.5},
                ],
            },
            mode="enforce",
            action="review",
        ),
        _rule(
            "net",
            {
                "op": "or",
                "args": [
                    {"op": "cidr", "attr": "ip", "value": "203.0.114.0/24"},
                    {"op": "cidr", "attr": "ip", "value": "2001:db8:3::/48"},
                ],
            },
        ),
        _rule("hostile", {"op": "in", "attr": "username", "values": HOSTILE[:10]}),
        _rule("regex", {"op": "regex", "attr": "email", "pattern": "john\\.smith19[0-4][0-9]@.*"}),
        _rule("prefix", {"op": "prefix", "attr": "email_domain", "value": "fresh-"}),
        _rule("asn", {"op": "in", "attr": "ip_asn", "values": [64501, 64503]}, mode="enforce"),
        _rule("len", {"op": "range", "attr": "username_len", "min": 2.5, "max": 6}),
        _rule("off", {"op": "eq", "attr": "email_domain", "value": "ü.de"}, status="disabled"),
    ]


def _senders(n: int = 66) -> pd.DataFrame:
    locals_ = ["promo", "it's", "a_b%", "x.y", "Ünï", "back\\slash", "q+tag"]
    domains = ["Bulk1.example", "bulk2.example", "o'hara.ie", "ü.de", "mail.top", "x.y.xyz"]
    mailers = ["MassMail 2.0", "massmail 2.0", 'Say "hi" \\ #1', "PHPMailer 6.8", "", None]
    return pd.DataFrame(
        {
            "message_id": [f"m{i:03d}" for i in range(n)],
            "sent_at": pd.Timestamp("2024-05-01", tz="UTC")
            + pd.to_timedelta(np.arange(n), unit="min"),
            "sender": [
                f"{locals_[i % 7]}{i % 5}@{domains[i % 6]}" if i % 11 else f"Promo{i}@BULK1.EXAMPLE"
                for i in range(n)
            ],
            "sender_ip": [
                f"198.51.{100 + i % 3}.{i % 200}" if i % 4 else f"2001:DB8:{i % 5:x}::{i:x}"
                for i in range(n)
            ],
            "subject": pd.Series(
                [f"Your invoice #{i} is READY" if i % 2 else None for i in range(n)], dtype="string"
            ),
            "x_mailer": pd.Series([mailers[i % 6] for i in range(n)], dtype="string"),
            "recipient_count": pd.array([i % 60 for i in range(n)], dtype="Int64"),
        }
    )


def _sender_rules() -> list[Rule]:
    return [
        _rule(
            "s-domain",
            {
                "op": "and",
                "args": [
                    {
                        "op": "in",
                        "attr": "sender_domain",
                        "values": ["bulk1.example", "o'hara.ie", "ü.de", "Upper.example"],
                    },
                    {"op": "cidr", "attr": "sender_ip", "value": "198.51.100.0/24"},
                ],
            },
            kind="senders",
            mode="enforce",
        ),
        _rule(
            "s-mailer",
            {"op": "in", "attr": "x_mailer", "values": ["MassMail 2.0", 'Say "hi" \\ #1']},
            kind="senders",
        ),
        _rule("s-no-mailer", {"op": "eq", "attr": "x_mailer", "value": ""}, kind="senders"),
        _rule(
            "s-local",
            {
                "op": "or",
                "args": [
                    {"op": "regex", "attr": "sender_local", "pattern": "promo[0-9]+|a_b%[0-2]"},
                    {"op": "prefix", "attr": "sender_local", "value": "back\\"},
                    {"op": "eq", "attr": "sender", "value": "ünï3@ü.de"},
                ],
            },
            kind="senders",
            mode="enforce",
        ),
        _rule(
            "s-v6",
            {
                "op": "and",
                "args": [
                    {"op": "cidr", "attr": "sender_ip", "value": "2001:db8:2::/48"},
                    {"op": "in", "attr": "sender_tld", "values": ["example", "xyz", "7"]},
                ],
            },
            kind="senders",
        ),
        _rule(
            "s-prefix",
            {"op": "in", "attr": "sender_ip_prefix24", "values": ["198.51.101.0/24", "1.2.3.0"]},
            kind="senders",
        ),
        _rule(
            "s-subject",
            {"op": "eq", "attr": "subject_skeleton", "value": "your invoice # is ready"},
            kind="senders",
            mode="enforce",
        ),
        _rule(
            "s-count",
            {
                "op": "and",
                "args": [
                    {"op": "eq", "attr": "sender_domain", "value": "bulk2.example"},
                    {"op": "range", "attr": "recipient_count", "min": 10, "max": 40},
                ],
            },
            kind="senders",
        ),
        _rule(
            "s-never",
            {"op": "eq", "attr": "sender_domain", "value": "UPPER.example"},
            kind="senders",
        ),
    ]


def _sender_allowlists() -> dict[str, Any]:
    return {
        "senders": allowlist_entries(
            "senders", domains=["mail.top"], prefixes=["198.51.100.128/25", "2001:db8:2::/64"]
        )
    }


def _cel_rows(doc: dict[str, Any], df: pd.DataFrame, kind: str) -> list[tuple[str, str, str]]:
    id_col = "account_id" if kind == "signups" else "message_id"
    attrs = compute_attributes(df, kind, sorted(doc["variables"].keys() - _companions(doc)))
    progs = [(r, _cel_program(r["expression"])) for r in doc["rules"]]
    out = []
    for row_id, row in zip(df[id_col], attrs.to_dict("records"), strict=True):
        activation = cel_activation(row, kind)
        assert set(doc["variables"]) <= set(activation)
        for rule, prog in progs:
            if _cel_eval(prog, activation):
                out.append((row_id, rule["id"], rule["action"]))
    return sorted(out)


def _companions(doc: dict[str, Any]) -> set[str]:
    return {n for n, v in doc["variables"].items() if "derived_from" in v}


def _py_rows(bundle: dict[str, Any], df: pd.DataFrame, kind: str) -> list[tuple[str, str, str]]:
    got = apply_bundle(bundle, df, kind)
    return sorted(tuple(str(v) for v in row) for row in got.itertuples(index=False))


@pytest.mark.parametrize("kind", ["signups", "senders"])
def test_bundle_to_cel_matches_apply_bundle_row_for_row(kind: str) -> None:
    df = _signups() if kind == "signups" else _senders()
    rules = _signup_rules() + _sender_rules()
    allow = {
        "signups": allowlist_entries("signups", domains=["mail.example"], asns=[64502]),
        **_sender_allowlists(),
    }
    for allowlists in (None, allow):
        bundle = _bundle(rules, allowlists)
        doc = bundle_to_cel(bundle, kind)
        json.dumps(doc, allow_nan=False)  # JSON-able
        assert all(r["expression"].isascii() for r in doc["rules"])
        py = _py_rows(bundle, df, kind)
        assert _cel_rows(doc, df, kind) == py
        assert len({r for _, r, _ in py}) >= 3  # worth something: several rules match
        assert {a for _, _, a in py} >= {"shadow"}
    assert rid("off") not in {r["id"] for r in bundle_to_cel(bundle, "signups")["rules"]}


def test_bundle_to_cel_documents_variables_and_allowlists() -> None:
    bundle = _bundle(_sender_rules(), _sender_allowlists())
    doc = bundle_to_cel(bundle, "senders")
    assert doc["kind"] == "senders" and doc["bundle_id"] == bundle["bundle_id"]
    v = doc["variables"]
    assert v["sender_domain"]["cel_type"] == "string" and v["sender_domain"]["sql"]
    assert v["recipient_count"]["cel_type"] == "int"
    assert v["sender_ip__v4int"]["derived_from"] == "sender_ip"
    assert v["sender_ip__v6hex"]["cel_type"] == "string"
    assert [a["name"] for a in doc["allowlists"]] == ["domains", "prefixes"]
    for rule in doc["rules"]:
        assert rule["expression"].endswith(
            "!(" + " || ".join(a["expression"] for a in doc["allowlists"]) + ")"
        )
        prog = _cel_program(rule["expression"])  # every variable, null: false, not an error
        assert not _cel_eval(prog, dict.fromkeys(v))
    no_allow = bundle_to_cel(_bundle(_sender_rules()), "senders")
    assert no_allow["allowlists"] == [] and "!(" not in no_allow["rules"][0]["expression"]


def test_cel_activation_plain_values_and_companions() -> None:
    row = {
        "ip": "2001:DB8::1",
        "username_len": np.int64(3),
        "captcha_score": float("nan"),
        "email_domain": pd.NA,
        "email_local_has_plus": np.bool_(True),
    }
    act = cel_activation(row, "signups")
    assert act["ip__v6hex"] == "2001:0db8:0000:0000:0000:0000:0000:0001"
    assert act["ip__v4int"] is None
    assert act["username_len"] == 3 and type(act["username_len"]) is int
    assert act["captcha_score"] is None and act["email_domain"] is None
    assert act["email_local_has_plus"] is True
    assert cel_activation({"ip": "10.0.0.1"})["ip__v4int"] == 167772161


# --------------------------------------------------------------------------- Rspamd model

_BLOCK = re.compile(r"^([A-Z][A-Z0-9_]*) \{\n(.*?)\n\}$", re.M | re.S)
_SETTING = re.compile(r'^  ([a-z_]+) = ("(?:[^"\\]|\\.)*"|[0-9.]+|true|false);$')


def parse_ucl_blocks(text: str) -> dict[str, dict[str, Any]]:
    """The ``NAME { key = value; }`` blocks we write, strictly: anything else fails."""
    blocks: dict[str, dict[str, Any]] = {}
    rest = _BLOCK.sub("", text)
    assert all(not line or line.startswith("#") for line in rest.splitlines()), rest
    for name, body in _BLOCK.findall(text):
        assert name not in blocks, name
        settings: dict[str, Any] = {}
        for line in body.split("\n"):
            m = _SETTING.match(line)
            assert m, line
            raw = m.group(2)
            settings[m.group(1)] = json.loads(raw) if raw[0] == '"' else raw
        blocks[name] = settings
    return blocks


def parse_map(text: str) -> list[str]:
    """Map keys as Rspamd's list parser reads our files: one key per line, '#' comments."""
    keys = []
    for line in text.split("\n"):
        if not line or line.startswith("#"):
            continue
        assert not re.search(r"[\x00-\x20\x7f]", line), line  # nothing the parser would split
        if line.startswith("/"):
            assert re.fullmatch(r"/[\x21-\x7e]+/i?", line) and "#" not in line, line
        keys.append(line)
    return keys


def _pcre_search(key: str, value: str) -> bool:
    body, flags = key[1 : key.rindex("/")], key[key.rindex("/") + 1 :]
    # Python's byte regexes mean what PCRE's byte mode does for what we write ('\Z' is '\z').
    rx = re.compile(body.replace("\\z", "\\Z").encode("ascii"), re.I if "i" in flags else 0)
    return rx.search(value.encode("utf-8")) is not None


def _message_values(mm: dict[str, Any], msg: dict[str, Any]) -> list[Any]:
    """What a multimap reads from a message (its columns, as the module docstring assumes)."""
    if mm["type"] == "ip":
        try:
            return [ipaddress.ip_address(msg["sender_ip"])]
        except (TypeError, ValueError):
            return []
    if mm["type"] == "header":
        assert mm["header"] == "X-Mailer"
        return [] if msg.get("x_mailer") is None else [msg["x_mailer"]]
    assert mm["type"] == "from"
    user, at, domain = msg["sender"].rpartition("@")
    if not at:
        return []
    part = {"email:addr": msg["sender"], "email:domain": domain, "email:user": user}
    return [part[mm["filter"]]]


def _map_hit(mm: dict[str, Any], keys: list[str], value: Any) -> bool:
    if mm["type"] == "ip":
        return any(value in ipaddress.ip_network(k) for k in keys)
    if mm.get("regexp") == "true":  # rspamd_regexp_search: empty text never matches
        return value != "" and any(_pcre_search(k, value) for k in keys)
    low = value.translate({c: c + 32 for c in range(65, 91)})  # hash maps: ASCII-caseless
    return any(low == k.translate({c: c + 32 for c in range(65, 91)}) for k in keys)


def _composite(expr: str, hits: dict[str, bool]) -> bool:
    tokens = re.findall(r"[A-Z0-9_]+|[&|!()]", expr)
    assert "".join(tokens) == expr.replace(" ", ""), expr
    pos = 0

    def parse_or() -> bool:
        nonlocal pos
        value = parse_and()
        while pos < len(tokens) and tokens[pos] == "|":
            pos += 1
            value = parse_and() | value
        return value

    def parse_and() -> bool:
        nonlocal pos
        value = parse_not()
        while pos < len(tokens) and tokens[pos] == "&":
            pos += 1
            value = parse_not() & value
        return value

    def parse_not() -> bool:
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok == "!":
            return not parse_not()
        if tok == "(":
            value = parse_or()
            assert tokens[pos] == ")"
            pos += 1
            return value
        return hits[tok]  # KeyError: an undefined symbol

    result = parse_or()
    assert pos == len(tokens)
    return result


def rspamd_rows(export: RspamdExport, df: pd.DataFrame) -> set[tuple[str, str]]:
    """(message_id, rule_id) of every composite that fires, per the Rspamd model."""
    multimaps = parse_ucl_blocks(export.files["multimap.conf"])
    composites = parse_ucl_blocks(export.files["composites.conf"])
    maps = {
        name: parse_map(export.files[mm["map"].rsplit("/", 1)[1]]) for name, mm in multimaps.items()
    }
    by_symbol = {sym: rule_id for rule_id, sym in export.symbols.items()}
    out = set()
    for msg in df.to_dict("records"):
        msg = {k: (None if v is None or v is pd.NA else v) for k, v in msg.items()}
        hits = {
            name: any(_map_hit(mm, maps[name], v) for v in _message_values(mm, msg))
            for name, mm in multimaps.items()
        }
        for sym, comp in composites.items():
            if _composite(comp["expression"], hits):
                out.add((msg["message_id"], by_symbol[sym]))
    return out


def _exported_py_rows(bundle: dict[str, Any], df: pd.DataFrame, exported: set[str]) -> set[Any]:
    py = apply_bundle(bundle, df, "senders")
    return {(m, r) for m, r in zip(py["message_id"], py["rule_id"], strict=True) if r in exported}


# --------------------------------------------------------------------------- Rspamd tests


@pytest.mark.parametrize("with_allowlists", [False, True])
def test_rspamd_export_matches_python_for_exported_rules(with_allowlists: bool) -> None:
    bundle = _bundle(_sender_rules(), _sender_allowlists() if with_allowlists else None)
    export = bundle_to_rspamd(bundle)
    skipped = {s.rule_id: s.reason for s in export.skipped}
    assert set(export.symbols) | set(skipped) == {r.id for r in _sender_rules()}
    assert "subject_skeleton" in skipped[rid("s-subject")]
    assert "number of recipients" in skipped[rid("s-count")]
    assert "never match" in skipped[rid("s-never")]
    assert "empty value" in skipped[rid("s-no-mailer")]
    df = _senders()
    expected = _exported_py_rows(bundle, df, set(export.symbols))
    assert rspamd_rows(export, df) == expected
    # worth something: every exported rule matches (the allowlists exempt one rule's rows)
    assert len({r for _, r in expected}) == (4 if with_allowlists else 5)


def test_rspamd_config_is_plausible_and_escaped() -> None:
    bundle = _bundle(_sender_rules(), _sender_allowlists())
    export = bundle_to_rspamd(bundle)
    multimaps = parse_ucl_blocks(export.files["multimap.conf"])
    composites = parse_ucl_blocks(export.files["composites.conf"])
    assert set(composites) == set(export.symbols.values())
    for name, comp in composites.items():
        symbols = set(re.findall(r"[A-Z0-9_]+", comp["expression"]))
        assert symbols and symbols <= set(multimaps), name
        assert comp["policy"] == "leave"
    # attacker text in descriptions: JSON-escaped, '$' too (UCL expands variables)
    text = export.files["composites.conf"]
    assert text.isascii() and "$" not in text and "\n #not" not in text
    assert "\\u0024{HOME}" in text
    used = {f"{m['map'].rsplit('/', 1)[1]}" for m in multimaps.values()}
    assert used == {f for f in export.files if f.endswith(".map")}
    for mm in multimaps.values():
        assert mm["map"].startswith("${LOCAL_CONFDIR}/local.d/maps.d/cw_")
        keys = parse_map(export.files[mm["map"].rsplit("/", 1)[1]])
        assert keys
        if mm.get("regexp") == "true":
            assert all(k.isascii() for k in keys)
    mailer = next(
        export.files[m["map"].rsplit("/", 1)[1]]
        for m in multimaps.values()
        if m.get("header") == "X-Mailer"
    )
    # '"', '\', '#' and ' ' never appear raw in a regexp map entry
    assert "/\\A(?:Say\\x20\\x22hi\\x22\\x20\\x5c\\x20\\x231)\\z/" in mailer


def test_rspamd_unexportable_allowlist_skips_every_rule() -> None:
    allow = {"senders": allowlist_entries("senders", ids=["m001"])}
    export = bundle_to_rspamd(_bundle(_sender_rules(), allow))
    assert not export.symbols and len(export.skipped) == len(_sender_rules())
    assert all("allowlist entry 'ids'" in s.reason for s in export.skipped)
    assert parse_ucl_blocks(export.files["multimap.conf"]) == {}


_LITERAL_CHARS = st.sampled_from([*"ab%_'\"\\.*+?()[]{}|^$-é #/", "\t", "\x00", "👍", "\u202e"])


@_HYPO
@given(
    data=st.lists(st.text(_LITERAL_CHARS, min_size=1, max_size=5), min_size=1, max_size=8),
    literal=st.text(_LITERAL_CHARS, min_size=1, max_size=4),
    upper=st.booleans(),
)
def test_rspamd_random_literals_agree(data: list[str], literal: str, upper: bool) -> None:
    n = len(data) + 1
    df = pd.DataFrame(
        {
            "message_id": [f"m{i}" for i in range(n)],
            "sent_at": pd.Timestamp("2024-05-01", tz="UTC"),
            "sender": [f"{d}@{d.upper() if upper else d}.x" for d in [*data, literal]],
            "sender_ip": "198.51.100.1",
            "x_mailer": pd.Series([*data, literal], dtype="string"),
        }
    )
    conds = {
        "eq-mailer": {"op": "eq", "attr": "x_mailer", "value": literal},
        "in-domain": {"op": "in", "attr": "sender_domain", "values": [f"{literal}.x", *data[:2]]},
        "prefix-local": {"op": "prefix", "attr": "sender_local", "value": literal},
        "regex-mailer": {"op": "regex", "attr": "x_mailer", "pattern": regex_escape(literal)},
        "regex-domain": {
            "op": "regex",
            "attr": "sender_domain",
            "pattern": "(?s).*" + regex_escape(literal) + ".*",
        },
    }
    rules = [_rule(name, c, kind="senders") for name, c in conds.items()]
    bundle = _bundle(rules)
    export = bundle_to_rspamd(bundle)
    assert rspamd_rows(export, df) == _exported_py_rows(bundle, df, set(export.symbols))
    assert {rid("eq-mailer"), rid("regex-mailer")} <= set(export.symbols)


# --------------------------------------------------------------------------- RE2 -> PCRE bytes

_RX_LITERALS = ["a", "b", "A", "é", "👍", "\\.", "\\n", "-", "\\x{e9}", "\\Q.*\\E"]
_RX_CLASSES = [".", "[a-c]", "[^b]", "[é]", "[aé]", "\\d", "\\w", "\\s", "\\D", "\\W", "\\S"]
_RX_CLASSES += ["[[:alpha:]]", "[^\\d\\n]", "[[:^digit:]]", "[-a]", "[]a]", "[^]a]"]


def _regexes(lower_only: bool) -> st.SearchStrategy[str]:
    lits = [x for x in _RX_LITERALS if not (lower_only and x == "A")]
    classes = [c for c in _RX_CLASSES if not (lower_only and c in ("\\D", "\\W", "\\S"))]
    atom = st.sampled_from(lits + classes)
    quant = st.sampled_from(["", "", "*", "+", "?", "{1,2}", "*?", "{2}"])

    def grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, inner).map("".join),
            st.tuples(inner, inner).map("|".join),
            st.tuples(inner, quant).map(lambda t: f"(?:{t[0]}){t[1]}"),
            st.tuples(inner, quant).map(lambda t: f"({t[0]}){t[1]}"),
        )

    body = st.recursive(st.tuples(atom, quant).map("".join), grow, max_leaves=6)
    return st.tuples(st.sampled_from(["", "(?s)", "^", ""]), body, st.sampled_from(["", "$"])).map(
        "".join
    )


_TEXTS = st.lists(st.text(st.sampled_from([*"aAbBc1_-.é\n ", "👍", "É"]), max_size=5), max_size=8)


@_HYPO
@given(pattern=_regexes(lower_only=False), texts=_TEXTS)
def test_re2_to_pcre_bytes_same_matches(pattern: str, texts: list[str]) -> None:
    body = re2_to_pcre_bytes(pattern)
    assert body.isascii()
    attrs = pd.DataFrame({"x_mailer": pd.Series(texts, dtype="string")})
    py = evaluate({"op": "regex", "attr": "x_mailer", "pattern": pattern}, attrs)
    got = [_pcre_search(f"/\\A(?:{body})\\z/", t) for t in texts]
    assert py.tolist() == got, (pattern, body)


@_HYPO
@given(pattern=_regexes(lower_only=True), texts=_TEXTS)
def test_re2_to_pcre_bytes_caseless_stands_for_lower_casing(pattern: str, texts: list[str]) -> None:
    try:
        body = re2_to_pcre_bytes(pattern, caseless=True)
    except RuleError:
        return  # '[^a]'-like classes with a capital but not its small letter are refused
    lower = [t.translate({c: c + 32 for c in range(65, 91)}) for t in texts]
    attrs = pd.DataFrame({"x_mailer": pd.Series(lower, dtype="string")})
    py = evaluate({"op": "regex", "attr": "x_mailer", "pattern": pattern}, attrs)
    got = [_pcre_search(f"/\\A(?:{body})\\z/i", t) for t in texts]
    assert py.tolist() == got, (pattern, body)


@pytest.mark.parametrize(
    ("pattern", "needle"),
    [
        ("(?i)abc", "inline flags"),
        ("a(?m:b)", "inline flags"),
        ("\\pL", "no exact byte form"),
        ("\\C", "no exact byte form"),
        ("\\101", "no exact byte form"),
        ("[^é]", "negated class with non-ASCII"),
        ("[a-é]", "beyond ASCII"),
        ("(a)\\1", "RE2 rejects"),
    ],
)
def test_re2_to_pcre_bytes_refuses_what_it_cannot_translate(pattern: str, needle: str) -> None:
    with pytest.raises(RuleError, match=re.escape(needle)):
        re2_to_pcre_bytes(pattern)
    with pytest.raises(RuleError, match="capital"):
        re2_to_pcre_bytes("Abc", caseless=True)
    assert re2.compile("x")  # the engine the checks run on is importable


# --------------------------------------------------------------------------- real Rspamd


_HAVE_RSPAMD = shutil.which("rspamd") is not None and Path("/etc/rspamd/rspamd.conf").exists()


def _local_confdir(tmp_path: Path, export: RspamdExport, ports: list[int]) -> Path:
    """A LOCAL_CONFDIR with the export installed as documented, on private ports."""
    local = tmp_path / "conf"
    maps = local / "local.d" / "maps.d"
    maps.mkdir(parents=True)
    for name, text in export.files.items():
        target = local / "local.d" / name if name.endswith(".conf") else maps / name
        target.write_text(text, encoding="utf-8")
    workers = {"normal": ports[0], "controller": ports[1], "proxy": ports[2]}
    for worker, port in workers.items():
        (local / "local.d" / f"worker-{worker}.inc").write_text(
            f'bind_socket = "127.0.0.1:{port}";\ncount = 1;\n', encoding="utf-8"
        )
    (local / "local.d" / "worker-fuzzy.inc").write_text("count = 0;\n", encoding="utf-8")
    (local / "local.d" / "logging.inc").write_text(
        f'type = "file";\nfilename = "{tmp_path}/rspamd.log";\nlevel = "info";\n',
        encoding="utf-8",
    )
    return local


def _free_ports(n: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(n)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _rspamd_vars(tmp_path: Path, local: Path) -> list[str]:
    for d in ("db", "run"):
        (tmp_path / d).mkdir(exist_ok=True)
    return [
        f"--var=LOCAL_CONFDIR={local}",
        f"--var=DBDIR={tmp_path / 'db'}",
        f"--var=RUNDIR={tmp_path / 'run'}",
        f"--var=LOGDIR={tmp_path}",
    ]


@pytest.mark.slow
@pytest.mark.skipif(not _HAVE_RSPAMD, reason="rspamd is not installed")
def test_rspamadm_configtest_accepts_the_export(tmp_path: Path) -> None:
    export = bundle_to_rspamd(_bundle(_sender_rules(), _sender_allowlists()))
    local = _local_confdir(tmp_path, export, _free_ports(3))
    args = ["rspamadm", *_rspamd_vars(tmp_path, local)[:1], "configtest"]
    run = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "syntax OK" in run.stdout, run.stdout + run.stderr


def _scan(port: int, msg: dict[str, Any]) -> set[str]:
    import http.client

    headers = [f"From: <{msg['sender']}>", "To: <rcpt@example.org>", "Subject: test"]
    if msg.get("x_mailer") is not None:
        headers.append(f"X-Mailer: {msg['x_mailer']}")
    body = ("\r\n".join(headers) + "\r\n\r\nhello\r\n").encode("utf-8")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("POST", "/checkv2")
        conn.putheader("From", msg["sender"].encode("utf-8"))  # the SMTP sender
        conn.putheader("IP", msg["sender_ip"])
        conn.putheader("Rcpt", "rcpt@example.org")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        conn.send(body)
        return set(json.loads(conn.getresponse().read())["symbols"])
    finally:
        conn.close()


@pytest.mark.slow
@pytest.mark.skipif(not _HAVE_RSPAMD, reason="rspamd is not installed")
def test_real_rspamd_matches_python_on_hostile_senders(tmp_path: Path) -> None:
    """Scan every message with a real Rspamd running the export: same (message, rule) pairs."""
    import signal
    import time

    bundle = _bundle(_sender_rules(), _sender_allowlists())
    export = bundle_to_rspamd(bundle)
    ports = _free_ports(3)
    local = _local_confdir(tmp_path, export, ports)
    user = ["-i", "-u", "root", "-g", "root"] if os.geteuid() == 0 else []
    proc = subprocess.Popen(
        ["rspamd", "-f", *user, "-c", "/etc/rspamd/rspamd.conf", *_rspamd_vars(tmp_path, local)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        df = _senders()
        msgs = [
            {k: (None if v is pd.NA else v) for k, v in m.items()} for m in df.to_dict("records")
        ]
        deadline = time.monotonic() + 180
        while True:  # the normal worker answers once maps and regexps are loaded
            try:
                _scan(ports[0], msgs[0])
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "rspamd did not start"
                time.sleep(1)
        time.sleep(2)
        by_symbol = {sym: rule_id for rule_id, sym in export.symbols.items()}
        real = {
            (m["message_id"], by_symbol[s])
            for m in msgs
            for s in _scan(ports[0], m)
            if s in by_symbol
        }
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the daemon we started and its workers
        proc.wait(timeout=60)
    expected = _exported_py_rows(bundle, df, set(export.symbols))
    assert real == expected
    assert real == rspamd_rows(export, df)  # and the model agrees with the real thing
