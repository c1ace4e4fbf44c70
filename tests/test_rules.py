"""Rule language: validation, and evaluate() == condition_to_sql() for every op."""

from __future__ import annotations

import ipaddress
import os
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anomaly.rules import (
    Rule,
    RuleError,
    condition_attributes,
    condition_to_sql,
    evaluate,
    regex_escape,
    validate_condition,
)
from clustering.attributes import compute_attributes

_HYPO = settings(
    max_examples=int(os.environ.get("CW_HYPOTHESIS_EXAMPLES", "25")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Literals an attacker controls (they become rule values when induced from campaign data).
HOSTILE = [
    "it's",
    "a''b",
    "back\\slash",
    "\\'",
    "100%",
    "a_b",
    "%_%",
    "(a|b)*",
    "[x]{2}.+?^$",
    "ü-ß-İ",
    "Ελλάδα",
    "line\nbreak",
    "nul\x00byte",
    "'; DROP TABLE attrs; --",
    "👍\u0301",
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


def _attrs() -> pd.DataFrame:
    """Attribute frame with hostile strings, missing values and every dtype."""
    n = len(HOSTILE)
    strings = pd.Series(HOSTILE, dtype="string")
    strings.iloc[3] = pd.NA
    return pd.DataFrame(
        {
            "email_domain": strings,
            "username_shape": pd.Series(HOSTILE[::-1], dtype="string"),
            "ip": pd.Series(IPS, dtype="string"),
            "username_len": pd.array([*range(n - 2), None, 2**40], dtype="Int64"),
            "captcha_score": [0.1, 0.5, float("nan"), 1.0] * (n // 4),
            "email_local_has_plus": pd.array([True, False, None, True] * (n // 4), dtype="boolean"),
        }
    )


def _sql_rows(cond: dict[str, Any], attrs: pd.DataFrame) -> np.ndarray:
    con = duckdb.connect()
    try:
        con.register("attrs", attrs.assign(_row=np.arange(len(attrs))))
        rows = con.execute(
            f"SELECT _row FROM attrs WHERE {condition_to_sql(cond)} ORDER BY _row"
        ).fetchall()
    finally:
        con.close()
    mask = np.zeros(len(attrs), dtype=bool)
    mask[[r[0] for r in rows]] = True
    return mask


def assert_agree(cond: dict[str, Any], attrs: pd.DataFrame | None = None) -> np.ndarray:
    attrs = _attrs() if attrs is None else attrs
    py = evaluate(cond, attrs)
    assert py.dtype == bool and py.shape == (len(attrs),)
    sql = _sql_rows(cond, attrs)
    assert py.tolist() == sql.tolist(), (cond, np.flatnonzero(py), np.flatnonzero(sql))
    return py


def assert_all_agree(conds: list[dict[str, Any]], attrs: pd.DataFrame) -> list[np.ndarray]:
    """Several conditions in one query: each SQL expression as a (never NULL) column."""
    con = duckdb.connect()
    try:
        con.register("attrs", attrs.assign(_row=np.arange(len(attrs))))
        cols = ", ".join(f"{condition_to_sql(c)} AS c{i}" for i, c in enumerate(conds))
        out = con.execute(f"SELECT {cols} FROM attrs ORDER BY _row").df()
    finally:
        con.close()
    masks = []
    for i, cond in enumerate(conds):
        sql = out[f"c{i}"]
        assert sql.notna().all(), cond  # COALESCE(..., FALSE): never NULL
        py = evaluate(cond, attrs)
        assert py.tolist() == sql.astype(bool).tolist(), (cond, np.flatnonzero(py))
        masks.append(py)
    return masks


# --------------------------------------------------------------------------- Python == SQL


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_literals_match_themselves_only(value: str) -> None:
    attrs = _attrs()
    expected = (attrs["email_domain"] == value).fillna(False).to_numpy(dtype=bool)
    assert assert_agree({"op": "eq", "attr": "email_domain", "value": value}).tolist() == (
        expected.tolist()
    )
    assert assert_agree({"op": "in", "attr": "email_domain", "values": [value, "zz"]}).tolist() == (
        expected.tolist()
    )
    # an escaped literal as a regex means the literal itself
    regex = {"op": "regex", "attr": "email_domain", "pattern": regex_escape(value)}
    assert assert_agree(regex).tolist() == expected.tolist()
    if value:
        prefix = assert_agree({"op": "prefix", "attr": "email_domain", "value": value})
        starts = attrs["email_domain"].str.startswith(value).fillna(False).to_numpy(dtype=bool)
        assert prefix.tolist() == starts.tolist()


def test_prefix_is_not_like() -> None:
    attrs = pd.DataFrame({"email_domain": pd.Series(["a%b", "axb", "a_c", "abc"], dtype="string")})
    assert assert_agree(
        {"op": "prefix", "attr": "email_domain", "value": "a%"}, attrs
    ).tolist() == [
        True,
        False,
        False,
        False,
    ]
    assert assert_agree(
        {"op": "prefix", "attr": "email_domain", "value": "a_"}, attrs
    ).tolist() == [
        False,
        False,
        True,
        False,
    ]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("abc", [False, True, False, False, False]),  # full match, not search
        (".*abc.*", [True, True, False, False, False]),
        ("a.c", [False, True, False, False, False]),
        ("a.*", [False, True, False, False, False]),  # '.' stops at newline in both engines
        ("(?s)a.*", [False, True, True, False, False]),
        ("[a-z]+\\n[a-z]+", [False, False, True, False, False]),
        ("(?i)ABC", [False, True, False, False, False]),
        ("\\d+", [False, False, False, True, False]),
        ("é+", [False, False, False, False, True]),
    ],
)
def test_regex_semantics_agree(pattern: str, expected: list[bool]) -> None:
    attrs = pd.DataFrame(
        {"email_domain": pd.Series(["xabcx", "abc", "ab\ncd", "123", "éé"], dtype="string")}
    )
    assert assert_agree(
        {"op": "regex", "attr": "email_domain", "pattern": pattern}, attrs
    ).tolist() == (expected)


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
def test_cidr_agrees_with_ipaddress(block: str) -> None:
    net = ipaddress.ip_network(block)
    got = assert_agree({"op": "cidr", "attr": "ip", "value": block})
    for ip, hit in zip(IPS, got, strict=True):
        if ip is None or "%" in ip or (":" in ip and "." in ip):
            assert not hit, ip  # missing, zone ids and dotted tails never match (documented)
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
        {"op": "range", "attr": "username_len", "min": None, "max": 3},
        {"op": "range", "attr": "username_len", "min": 2**40, "max": 2**40},
        {"op": "range", "attr": "captcha_score", "min": 0.1, "max": 0.5},
        {"op": "range", "attr": "captcha_score", "max": 0.30000000000000004},
        {"op": "eq", "attr": "captcha_score", "value": 1},
        {"op": "in", "attr": "captcha_score", "values": [0.1, 1.0]},
        {"op": "eq", "attr": "username_len", "value": 3},
        {"op": "in", "attr": "username_len", "values": [1, 2, 2**40]},
        {"op": "eq", "attr": "email_local_has_plus", "value": True},
        {"op": "in", "attr": "email_local_has_plus", "values": [False]},
    ],
)
def test_numeric_and_boolean_ops_agree(cond: dict[str, Any]) -> None:
    assert_agree(cond)


def test_missing_values_never_match() -> None:
    attrs = pd.DataFrame(
        {
            "email_domain": pd.Series([None, None], dtype="string"),
            "username_len": pd.array([None, None], dtype="Int64"),
            "captcha_score": [np.nan, np.nan],
            "ip": pd.Series([None, None], dtype="string"),
        }
    )
    for cond in [
        {"op": "regex", "attr": "email_domain", "pattern": ".*"},
        {"op": "prefix", "attr": "email_domain", "value": "a"},
        {"op": "range", "attr": "username_len", "min": -5},
        {"op": "range", "attr": "captcha_score", "max": 5.0},
        {"op": "cidr", "attr": "ip", "value": "0.0.0.0/0"},
        {
            "op": "or",
            "args": [
                {"op": "in", "attr": "email_domain", "values": ["x"]},
                {"op": "range", "attr": "captcha_score", "min": 0.0},
            ],
        },
    ]:
        assert not assert_agree(cond, attrs).any()


def test_nested_and_or() -> None:
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
    mask = assert_agree(cond)
    assert mask.any() and not mask.all()
    assert condition_attributes(cond) == {
        "email_domain",
        "username_len",
        "ip",
        "email_local_has_plus",
        "username_shape",
    }


_CHARS = st.sampled_from([*"ab%_'\\.*+?()[]{}|^$-é İ\n", "\x00", "👍"])


@_HYPO
@given(
    data=st.lists(st.one_of(st.none(), st.text(_CHARS, max_size=6)), min_size=1, max_size=20),
    literal=st.text(_CHARS, min_size=1, max_size=4),
)
def test_random_literals_agree(data: list[str | None], literal: str) -> None:
    attrs = pd.DataFrame({"email_domain": pd.Series([*data, literal], dtype="string")})
    conds = [
        {"op": "eq", "attr": "email_domain", "value": literal},
        {"op": "in", "attr": "email_domain", "values": [literal, *[d for d in data if d][:3]]},
        {"op": "prefix", "attr": "email_domain", "value": literal},
        {"op": "regex", "attr": "email_domain", "pattern": regex_escape(literal)},
        {"op": "regex", "attr": "email_domain", "pattern": "(?s).*" + regex_escape(literal) + ".*"},
    ]
    for mask in assert_all_agree(conds, attrs):
        assert mask[-1]  # the literal row always matches


@_HYPO
@given(
    addrs=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=20),
    addrs6=st.lists(st.integers(0, 2**128 - 1), min_size=1, max_size=20),
    base=st.integers(0, 2**128 - 1),
    plen=st.integers(0, 128),
    v4=st.booleans(),
)
def test_random_cidr_agree(
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
    mask = assert_agree({"op": "cidr", "attr": "ip", "value": str(net)}, attrs)
    expected = [ipaddress.ip_address(ip) in net for ip in ips]
    assert mask.tolist() == expected


def test_evaluate_on_computed_attributes() -> None:
    df = pd.DataFrame(
        {
            "account_id": ["a", "b", "c"],
            "created_at": pd.Timestamp("2024-01-01", tz="UTC"),
            "email": ["john1987@mail.example", "x@Mail.Example", "y@other.org"],
            "ip": ["10.0.0.1", "10.0.1.1", "2001:db8::1"],
        }
    )
    attrs = compute_attributes(df, "signups")
    cond = {
        "op": "and",
        "args": [
            {"op": "eq", "attr": "email_domain", "value": "mail.example"},
            {"op": "cidr", "attr": "ip", "value": "10.0.0.0/16"},
        ],
    }
    assert assert_agree(cond, attrs).tolist() == [True, True, False]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("cond", "needle"),
    [
        ({"op": "eq", "attr": "no_such_attr", "value": 1}, "no_such_attr"),
        (
            {
                "op": "and",
                "args": [
                    {"op": "eq", "attr": "email_domain", "value": "x"},
                    {"op": "eq", "attr": "bogus", "value": "x"},
                ],
            },
            "condition.args[1].attr: unknown attribute 'bogus'",
        ),
        ({"op": "like", "attr": "email_domain", "value": "x%"}, "unknown op 'like'"),
        ({"op": "eq", "attr": "username_len", "value": "3"}, "username_len"),
        ({"op": "eq", "attr": "username_len", "value": True}, "username_len"),
        ({"op": "eq", "attr": "username_len", "value": 2.5}, "username_len"),
        ({"op": "eq", "attr": "username_len", "value": 2**64}, "username_len"),
        ({"op": "eq", "attr": "email_local_has_plus", "value": 1}, "email_local_has_plus"),
        ({"op": "eq", "attr": "captcha_score", "value": float("nan")}, "captcha_score"),
        ({"op": "in", "attr": "email_domain", "values": []}, "non-empty list"),
        ({"op": "in", "attr": "email_domain", "values": ["a", 3]}, "values[1]"),
        ({"op": "prefix", "attr": "email_domain", "value": ""}, "non-empty"),
        ({"op": "prefix", "attr": "username_len", "value": "1"}, "string attribute"),
        ({"op": "regex", "attr": "email_domain", "pattern": "(unclosed"}, "invalid RE2"),
        ({"op": "regex", "attr": "email_domain", "pattern": "(a)\\1"}, "invalid RE2"),
        ({"op": "regex", "attr": "email_domain", "pattern": "a(?=b)"}, "invalid RE2"),
        ({"op": "regex", "attr": "email_domain", "pattern": 5}, "pattern must be a string"),
        ({"op": "cidr", "attr": "ip", "value": "10.0.0.1/8"}, "host bits"),
        ({"op": "cidr", "attr": "ip", "value": "nonsense"}, "invalid CIDR"),
        ({"op": "cidr", "attr": "email_domain", "value": "10.0.0.0/8"}, "IP attribute"),
        ({"op": "range", "attr": "captcha_score", "min": None, "max": None}, "min or max"),
        ({"op": "range", "attr": "captcha_score", "min": 0.9, "max": 0.1}, "min 0.9 > max 0.1"),
        ({"op": "range", "attr": "email_domain", "min": 1}, "numeric attribute"),
        ({"op": "eq", "attr": "email_domain", "value": "x", "valeu": 1}, "unknown key"),
        ({"op": "eq", "attr": "email_domain"}, "needs key"),
        ({"op": "and", "args": []}, "non-empty list"),
        ("eq", "must be an object"),
        ({"op": "eq", "attr": "email_domain", "value": "\ud800"}, "not valid Unicode"),
    ],
)
def test_invalid_conditions_are_named(cond: Any, needle: str) -> None:
    with pytest.raises(RuleError) as err:
        validate_condition(cond, "signups", rule_id="r-42")
    assert needle in str(err.value)
    assert "rule 'r-42'" in str(err.value)


def test_attribute_of_the_other_kind_is_unknown() -> None:
    with pytest.raises(RuleError, match="subject_skeleton"):
        validate_condition({"op": "eq", "attr": "subject_skeleton", "value": "x"}, "signups")
    validate_condition({"op": "eq", "attr": "subject_skeleton", "value": "x"}, "senders")


def test_deep_nesting_is_refused() -> None:
    cond: dict[str, Any] = {"op": "eq", "attr": "email_domain", "value": "x"}
    for _ in range(40):
        cond = {"op": "and", "args": [cond]}
    with pytest.raises(RuleError, match="nested deeper"):
        validate_condition(cond, "signups")


def test_evaluate_names_a_missing_attribute_column() -> None:
    with pytest.raises(RuleError, match="ua_family"):
        evaluate({"op": "eq", "attr": "ua_family", "value": "Chrome"}, _attrs())


def test_regex_escape_is_re2_valid_and_literal() -> None:
    text = "".join(chr(c) for c in range(32, 127)) + "é\n\x00"
    attrs = pd.DataFrame({"email_domain": pd.Series([text, text + "x"], dtype="string")})
    cond = {"op": "regex", "attr": "email_domain", "pattern": regex_escape(text)}
    validate_condition(cond, "signups")
    assert assert_agree(cond, attrs).tolist() == [True, False]


# --------------------------------------------------------------------------- Rule


def _rule(**kw: Any) -> Rule:
    base: dict[str, Any] = {
        "id": "r-1",
        "version": 1,
        "kind": "signups",
        "campaign_id": "c-1",
        "title": "t",
        "condition": {"op": "eq", "attr": "email_domain", "value": "x.com"},
    }
    base.update(kw)
    return Rule(**base)


def test_rule_round_trip() -> None:
    rule = _rule(mode="enforce", backtest={"hits": 3}, provenance={"run_id": "r"})
    d = rule.to_dict()
    again = Rule.from_dict({**d, "sql": "ignored"})
    assert again == rule
    d["condition"]["value"] = "changed"
    assert rule.condition["value"] == "x.com"  # to_dict is a deep copy


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"id": "bad id with spaces"}, "id"),
        ({"mode": "block"}, "mode"),
        ({"action": "shadow"}, "reserved"),
        ({"action": "Drop Table"}, "action"),
        ({"version": 0}, "version"),
        ({"kind": "logins"}, "unknown kind"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"condition": {"op": "eq", "attr": "nope", "value": 1}}, "nope"),
    ],
)
def test_rule_validate(kw: dict[str, Any], needle: str) -> None:
    with pytest.raises(RuleError, match=needle):
        _rule(**kw).validate()


def test_from_dict_refuses_unknown_and_missing_keys() -> None:
    d = _rule().to_dict()
    with pytest.raises(RuleError, match="unknown key"):
        Rule.from_dict({**d, "severity": "high"})
    del d["condition"]
    with pytest.raises(RuleError, match="condition"):
        Rule.from_dict(d)
