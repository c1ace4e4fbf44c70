"""Attributes: Python values equal DuckDB SQL values, on hostile input and on random input."""

from __future__ import annotations

import ipaddress
import math
import os
import time

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clustering.attributes import (
    attributes_for,
    compute_attributes,
    ensure_columns,
    ipv4_int,
    ipv4_ints,
    ipv6_expand,
    ipv6_expanded,
    sql_string,
)
from clustering.kinds import get_kind

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/119.0.6045.105 Safari/537.36"
)
EDGE = CHROME + " Edg/119.0.2151.58"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
ANDROID_SAMSUNG = (
    "Mozilla/5.0 (Linux; Android 13; SM-S901B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
OPERA = CHROME + " OPR/105.0.0.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HEADLESS = CHROME.replace("Chrome/", "HeadlessChrome/")

# Hostile values: non-ASCII case pairs, quotes, backslashes, several '@', empty strings,
# control characters, NUL, regex and LIKE metacharacters, IPv6 spellings, odd user agents.
EMAILS = [
    "John.Smith1987+promo@Example.COM",
    "a@b@c.d",
    "nodomain",
    "",
    "@",
    "x@",
    "@y.org",
    "İstanbul@ÉXAMPLE.org.",
    "ΣΊΣΥΦΟΣ@Ελλάδα.gr",
    "o'brien@quote's.com",
    "back\\slash@dom\\ain.net",
    "tab\tand\nnewline@x.io\n",
    "nul\x00byte@x.io",
    "100%_under@like.com",
    "(a|b)*@[re].gex",
    "user@127.0.0.1",
    "user@localhost",
    "dots...@x..y",
    "k\u212aelvin@straße.de",
    "e\u0301@emoji👍.com",
]
USERNAMES = [
    None,
    "",
    "john.smith1987",
    "ÜNÏCODE99",
    "a'b\\c",
    "x",
    "AEIOU",
    "bcdfg",
    "aebcdfgh",  # 2 vowels / 8 letters = 0.25
    "abcdefgh",  # 2/8
    "abbbbbbb",  # 1/8 = 0.125 -> 0.13 (half up, not banker's 0.12)
    "1234",
    "__--..",
    "a\nb",
    "ǅemal",
    "MiXeD99case",
    "ııı",
    "ß",
    "a1b2c3",
    "\x00",
]
IPS = [
    "203.0.113.7",
    "2001:DB8::1",
    "::",
    "::1",
    "1::",
    "999.1.1.1",
    "01.2.3.4",
    "1.2.3",
    "1.2.3.4.5",
    "255.255.255.255",
    "0.0.0.0",
    "::ffff:1.2.3.4",
    "fe80::1%eth0",
    "1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7:8:9",
    "1::2::3",
    "abcd:EF01::",
    "",
    " 1.2.3.4",
    "1.2.3.4\n",
]
UAS = [
    CHROME,
    EDGE,
    IPHONE,
    ANDROID_SAMSUNG,
    FIREFOX,
    OPERA,
    GOOGLEBOT,
    HEADLESS,
    "curl/7.68.0",
    "python-requests/2.31.0",
    "okhttp/4.9.2",
    "Go-http-client/1.1",
    "",
    None,
    "MyScraper/1.0 (+http://x)",
    "CHROME/1.2 weird casing",
    "Mozilla/5.0",
    "ſcrapy/2.0",  # long s folds to 's' under RE2 (?i); we never use (?i)
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 Version/17.1 Safari/605",
    "x'; DROP TABLE signups; --",
]


def _signups_frame() -> pd.DataFrame:
    n = len(EMAILS)
    times = pd.to_datetime(
        [
            "2024-01-01T05:10:00Z",
            "2024-01-01T23:59:59Z",
            "1969-12-31T23:30:00Z",
            "2024-06-01T00:00:00Z",
            "2000-02-29T12:00:00Z",
        ]
        * (n // 5),
        utc=True,
    )
    return pd.DataFrame(
        {
            "account_id": [f"acc-{i}" for i in range(n)],
            "created_at": times,
            "email": EMAILS,
            "ip": IPS,
            "username": pd.Series(USERNAMES, dtype="string"),
            "display_name": pd.Series(
                ["John Smith", "JOHN 2", None, "x\ty  z ", "", "Ünï Çödé", "a'b", "  ", "ÉA", "9"]
                * 2,
                dtype="string",
            ),
            "ip_asn": pd.array([64500, None] * (n // 2), dtype="Int64"),
            "ip_country": pd.Series(["US", None, "", "de"] * (n // 4), dtype="string"),
            "user_agent": pd.Series(UAS, dtype="string"),
            "device_id": pd.Series([f"dev{i % 3}" if i % 4 else None for i in range(n)]),
            "signup_flow": pd.Series(["web", "api", None, "ios"] * (n // 4), dtype="string"),
            "captcha_score": [0.1, float("nan"), 0.5, 1.0, None] * (n // 5),
        }
    )


SUBJECTS = [
    "Your invoice #12345 is READY",
    "  spaced\t\tout \n subject  ",
    "",
    None,
    "ÜBER 50% OFF!!!",
    "o'reilly \\ back",
    "123",
    "a\x00b",
]
BODIES = [
    "click http://Evil.Example.COM/path?x=1 now",
    "HTTPS://user:pw@Login.Bank.example:8443/x and http://second.org",
    "no url here",
    None,
    "see https://xn--bcher-kva.example. and more",
    "http://192.168.0.1/admin",
    "http://",
    "url in quotes 'http://q.example/' end",
]


def _senders_frame() -> pd.DataFrame:
    n = len(SUBJECTS)
    return pd.DataFrame(
        {
            "message_id": [f"m{i}" for i in range(n)],
            "sent_at": pd.to_datetime(["2024-03-01T13:45:00"] * n),  # naive: read as UTC
            "sender": [
                "Promo2024@Mailer.EXAMPLE",
                "a@b@c",
                "bare",
                "",
                "İx@Ü.de",
                "x'y@q.com",
                "news.letter99@x.co.uk",
                "\\@\\",
            ],
            "sender_ip": [
                "198.51.100.23",
                "2001:db8:1:2::5",
                None,
                "bad",
                "",
                "::",
                "1.1.1.1",
                "x",
            ],
            "recipient_count": pd.array([1, None, 50, 0, 3, 2, 1, 7], dtype="Int64"),
            "recipient_domains": ["a.com b.com"] * n,
            "subject": pd.Series(SUBJECTS, dtype="string"),
            "body": pd.Series(BODIES, dtype="string"),
            "x_mailer": pd.Series(["PHPMailer 6.0", None, "", "Outlook"] * 2, dtype="string"),
            "bounced": pd.array([True, False, None, True] * 2, dtype="boolean"),
            "complained": pd.array([None, False, True, False] * 2, dtype="boolean"),
        }
    )


def _plain(values: pd.Series) -> list[object]:
    """Python scalars with every kind of missing as None (for exact comparison)."""
    out: list[object] = []
    for v in values.astype(object):
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
        elif isinstance(v, np.generic):
            out.append(v.item())
        else:
            out.append(v)
    return out


def sql_attributes(df: pd.DataFrame, kind: str, names: list[str] | None = None) -> pd.DataFrame:
    """Every attribute's SQL run by DuckDB over ``df`` registered under the kind's name."""
    attrs = attributes_for(kind)
    names = list(attrs) if names is None else names
    table = ensure_columns(df, kind).assign(_row=np.arange(len(df)))
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'America/New_York'")  # hour must not depend on it
        con.register(kind, table)
        select = ", ".join(f'{attrs[n].sql} AS "{n}"' for n in names)
        return con.execute(f"SELECT {select} FROM {kind} ORDER BY _row").df()
    finally:
        con.close()


def assert_same_values(df: pd.DataFrame, kind: str, names: list[str] | None = None) -> None:
    py = compute_attributes(df, kind, names)
    sql = sql_attributes(df, kind, list(py.columns))
    for name in py.columns:
        left, right = _plain(py[name]), _plain(sql[name])
        if left != right:
            diff = [(i, a, b) for i, (a, b) in enumerate(zip(left, right, strict=True)) if a != b]
            raise AssertionError(f"{kind}.{name}: Python != SQL at (row, py, sql) {diff[:5]}")


# --------------------------------------------------------------------------- Python == SQL


@pytest.mark.parametrize("kind", ["signups", "senders"])
def test_every_attribute_same_in_python_and_sql(kind: str) -> None:
    df = _signups_frame() if kind == "signups" else _senders_frame()
    assert_same_values(df, kind)


# Addresses for the canonical-mailbox attributes: Gmail spellings, tags, dots, several '@',
# newlines around the domain, non-ASCII case pairs, empty parts.
ALIAS_EMAILS = [
    "J.o.hn+x@GMail.com",
    "john.smith+a+b@googlemail.com",
    "John.Smith+x@Example.com",
    "a.b+c@GOOGLEMAIL.COM",
    "a.b+@gmail.com",
    "+tag@gmail.com",
    "...@gmail.com",
    "a..b@gmail.com",
    "a.b@gmail.com.",
    "a.b@gmail.com\n",
    "a.b@sub.gmail.com",
    "a.b@googlemail.com.evil",
    "x@y.z@gmail.com",
    "a+b@c+d.com",
    "a\n.b+t\nx@gmail.com",
    "İ.x+é@gmail.com",
    "e\u0301+\u0301@googlemail.com",
    "k\u212a.x@gmail.com",
    "o'brien.x+1@gmail.com",
    "\x00.a+b@gmail.com",
    "plus+only",
    "x+y@",
    "@gmail.com",
    "",
]


def test_canonical_email_attributes_same_in_python_and_sql() -> None:
    n = len(ALIAS_EMAILS)
    df = pd.DataFrame(
        {
            "account_id": [f"a{i}" for i in range(n)],
            "created_at": pd.Timestamp("2024-01-01", tz="UTC"),
            "email": ALIAS_EMAILS,
            "ip": "1.2.3.4",
        }
    )
    names = ["email_canonical", "email_local_canonical", "email_plus_tag_len"]
    assert_same_values(df, "signups", names)
    out = compute_attributes(df, "signups", names)
    assert out["email_canonical"].iloc[:4].tolist() == [
        "john@gmail.com",
        "johnsmith@gmail.com",
        "john.smith@example.com",
        "ab@gmail.com",
    ]


def test_absent_optional_columns_are_missing_and_agree() -> None:
    df = _signups_frame()[["account_id", "created_at", "email", "ip"]]
    py = compute_attributes(df, "signups")
    assert py["ua_family"].isna().all()
    assert py["captcha_score"].isna().all()
    # username falls back to the email's local part
    assert py["username"].iloc[0] == "john.smith1987+promo"
    assert_same_values(df, "signups")


@pytest.mark.parametrize("kind", ["signups", "senders"])
def test_empty_and_all_missing_frames(kind: str) -> None:
    frame = _signups_frame() if kind == "signups" else _senders_frame()
    empty = compute_attributes(frame.iloc[:0], kind)
    assert len(empty) == 0 and list(empty.columns) == list(attributes_for(kind))
    optional = [c.name for c in get_kind(kind).columns if not c.required]
    blank = frame.copy()
    for col in optional:
        blank[col] = None
    assert_same_values(blank, kind)
    out = compute_attributes(blank, kind)
    for name, a in attributes_for(kind).items():
        if not set(a.requires) & set(get_kind(kind).required):
            assert out[name].isna().all(), name


def test_required_column_absent_is_an_error() -> None:
    with pytest.raises(ValueError, match="email"):
        compute_attributes(pd.DataFrame({"account_id": ["a"]}), "signups", ["email_domain"])


def test_unknown_attribute_or_kind() -> None:
    with pytest.raises(ValueError, match="nope"):
        compute_attributes(_signups_frame(), "signups", ["nope"])
    with pytest.raises(ValueError, match="unknown kind"):
        attributes_for("logins")


# --------------------------------------------------------------------------- documented values


def _one(kind: str, name: str, **cols: object) -> object:
    base: dict[str, object] = (
        {"account_id": "a", "created_at": pd.Timestamp("2024-01-01", tz="UTC"), "email": "x@y.z"}
        if kind == "signups"
        else {"message_id": "m", "sent_at": pd.Timestamp("2024-01-01", tz="UTC"), "sender": "s@d"}
    )
    base["ip" if kind == "signups" else "sender_ip"] = "1.2.3.4"
    base.update(cols)
    df = pd.DataFrame({k: [v] for k, v in base.items()})
    value = _plain(compute_attributes(df, kind, [name])[name])[0]
    assert _plain(sql_attributes(df, kind, [name])[name])[0] == value
    return value


@pytest.mark.parametrize(
    ("name", "cols", "expected"),
    [
        ("email_domain", {"email": "A@b@Example.COM"}, "example.com"),
        ("email_tld", {"email": "a@mail.example.co.UK"}, "uk"),
        ("email_tld", {"email": "a@localhost"}, None),
        ("email_tld", {"email": "a@10.0.0.1"}, None),
        ("email_local", {"email": "John.Smith+x@d.com"}, "john.smith+x"),
        ("email_local_has_plus", {"email": "a+b@d.com"}, True),
        ("email_local_has_plus", {"email": "ab@d.com"}, False),
        ("email_local_dots", {"email": "a.b.c@d.e.f"}, 2),
        ("email_canonical", {"email": "J.o.hn+x@GMail.com"}, "john@gmail.com"),
        ("email_canonical", {"email": "j.o.h.n.smith+k3x9@googlemail.com"}, "johnsmith@gmail.com"),
        ("email_canonical", {"email": "John.Smith+x+y@Example.COM"}, "john.smith@example.com"),
        ("email_canonical", {"email": "a.b@gmail.com.evil"}, "a.b@gmail.com.evil"),
        ("email_canonical", {"email": "+x@gmail.com"}, None),
        ("email_canonical", {"email": "no-at-sign"}, None),
        ("email_local_canonical", {"email": "Jo.Hn+x@gmail.com"}, "john"),
        ("email_local_canonical", {"email": "Jo.Hn+x@yahoo.com"}, "jo.hn"),
        ("email_local_canonical", {"email": "a@b+c@gmail.com"}, "a@b"),
        ("email_plus_tag_len", {"email": "a+promo17@d.com"}, 7),
        ("email_plus_tag_len", {"email": "a+b+c@d.com"}, 3),
        ("email_plus_tag_len", {"email": "a+@d.com"}, 0),
        ("email_plus_tag_len", {"email": "ab@d.com"}, 0),
        ("email_plus_tag_len", {"email": "a+é\u0301@d.com"}, 2),  # code points
        ("email_plus_tag_len", {"email": "no-at+sign"}, None),
        ("username", {"username": "", "email": "Fall.Back@d.com"}, "fall.back"),
        ("username", {"username": "MiXed", "email": "z@d.com"}, "mixed"),
        ("username_shape", {"username": "john.smith1987"}, "a.a9999"),
        ("username_shape", {"username": "ÉLISE_99"}, "Éa_99"),
        ("username_len", {"username": "e\u0301"}, 2),  # code points, not graphemes
        ("username_digits", {"username": "a1b22"}, 3),
        ("username_vowel_share", {"username": "abbbbbbb"}, 0.13),
        ("username_vowel_share", {"username": "1234"}, None),
        # 23/40 = 0.575: DuckDB's round(x, 2) on the double gives 0.57, half-up gives 0.58
        ("username_vowel_share", {"username": "a" * 23 + "b" * 17}, 0.58),
        ("display_name_shape", {"display_name": " John  SMITH 2nd "}, "Aa A 9a"),
        ("ip_version", {"ip": "2001:db8::1"}, 6),
        ("ip_version", {"ip": "300.1.1.1"}, None),
        ("ip_prefix24", {"ip": "203.0.113.77"}, "203.0.113.0/24"),
        ("ip_prefix16", {"ip": "203.0.113.77"}, "203.0.0.0/16"),
        ("ip_prefix48", {"ip": "2001:DB8:a::1"}, "2001:0db8:000a::/48"),
        ("ip_prefix64", {"ip": "::1"}, "0000:0000:0000:0000::/64"),
        ("ip_prefix24", {"ip": "2001:db8::1"}, None),
        ("ua_family", {"user_agent": CHROME}, "Chrome"),
        ("ua_family", {"user_agent": EDGE}, "Edge"),
        ("ua_family", {"user_agent": OPERA}, "Opera"),
        ("ua_family", {"user_agent": ANDROID_SAMSUNG}, "Samsung"),
        ("ua_family", {"user_agent": IPHONE}, "Safari"),
        ("ua_family", {"user_agent": FIREFOX}, "Firefox"),
        ("ua_family", {"user_agent": GOOGLEBOT}, "Bot"),
        ("ua_family", {"user_agent": HEADLESS}, "HeadlessChrome"),
        ("ua_family", {"user_agent": "curl/8.0"}, "curl"),
        ("ua_family", {"user_agent": "Mozilla/5.0"}, "Other"),
        ("ua_os", {"user_agent": IPHONE}, "iOS"),
        ("ua_os", {"user_agent": ANDROID_SAMSUNG}, "Android"),
        ("ua_os", {"user_agent": CHROME}, "Windows"),
        ("ua_os", {"user_agent": FIREFOX}, "Linux"),
        ("ua_build", {"user_agent": CHROME}, "Chrome/119.0.6045.105"),
        ("ua_build", {"user_agent": EDGE}, "Edg/119.0.2151.58"),
        ("ua_build", {"user_agent": IPHONE}, "Version/17.1"),
        ("ua_build", {"user_agent": GOOGLEBOT}, "Googlebot/2.1"),
        ("ua_build", {"user_agent": "python-requests/2.31.0"}, "python-requests/2.31.0"),
        ("hour", {"created_at": pd.Timestamp("2024-01-01T23:59:59", tz="UTC")}, 23),
        ("hour", {"created_at": pd.Timestamp("2024-01-01T05:00:00+03:00")}, 2),
        ("hour", {"created_at": pd.Timestamp("1969-12-31T23:30:00", tz="UTC")}, 23),
    ],
)
def test_signup_attribute_values(name: str, cols: dict[str, object], expected: object) -> None:
    assert _one("signups", name, **cols) == expected


@pytest.mark.parametrize(
    ("name", "cols", "expected"),
    [
        ("sender", {"sender": "News@X.COM"}, "news@x.com"),
        ("sender_domain", {"sender": "a@Mail.X.com"}, "mail.x.com"),
        ("sender_tld", {"sender": "a@Mail.X.com"}, "com"),
        ("sender_local_shape", {"sender": "Promo2024.x@d.com"}, "a9999.a"),
        ("sender_ip_prefix24", {"sender_ip": "198.51.100.23"}, "198.51.100.0/24"),
        ("subject_skeleton", {"subject": "  Invoice  #12345\tREADY  "}, "invoice ## ready"),
        ("subject_shape", {"subject": "Invoice 2024 READY"}, "Aa 9999 A"),
        ("url_domain", {"body": "x HTTPS://u:p@Login.Bank.example:8443/a"}, "login.bank.example"),
        ("url_domain", {"body": "end http://q.example. Bye"}, "q.example"),
        ("url_domain", {"body": "no link"}, None),
        ("url_tld", {"body": "see http://a.b.Example/x"}, "example"),
        ("hour", {"sent_at": pd.Timestamp("2024-03-01T13:45:00")}, 13),
    ],
)
def test_sender_attribute_values(name: str, cols: dict[str, object], expected: object) -> None:
    assert _one("senders", name, **cols) == expected


def test_dtypes_and_index_alignment() -> None:
    df = _signups_frame()
    df.index = pd.Index([f"r{i}" for i in range(len(df))])
    out = compute_attributes(df, "signups")
    assert out.index.equals(df.index)
    for name, a in attributes_for("signups").items():
        expected = {
            "string": "string",
            "integer": "Int64",
            "float": "float64",
            "boolean": "boolean",
        }
        assert str(out[name].dtype) == expected[a.dtype], name


def test_every_attribute_documents_its_inputs() -> None:
    for kind in ("signups", "senders"):
        columns = {c.name for c in get_kind(kind).columns}
        for name, a in attributes_for(kind).items():
            assert a.name == name and a.kind == kind and a.description
            assert set(a.requires) <= columns, name
            for col in a.requires:
                assert f'"{col}"' in a.sql, (name, col)


def test_sql_string_survives_hostile_text() -> None:
    con = duckdb.connect()
    for text in ["it's", "a\\b", "\x00", "x\x00y'z", "ü'\n--", "%_*"]:
        assert con.execute(f"SELECT {sql_string(text)}").fetchall()[0][0] == text


# --------------------------------------------------------------------------- IP helpers


def test_ip_helpers_match_the_standard_library() -> None:
    rng = np.random.default_rng(7)
    v4 = [str(ipaddress.IPv4Address(int(x))) for x in rng.integers(0, 2**32, 200)]
    v6 = [
        str(ipaddress.IPv6Address(int(x) << 64 | int(y)))
        for x, y in rng.integers(0, 2**63, (200, 2))
    ]
    values = pd.Series(v4 + v6 + ["::", "1::", "::ffff:0:0"], dtype="string")
    ints, texts = ipv4_ints(values), ipv6_expanded(values)
    for i, v in enumerate(values):
        addr = ipaddress.ip_address(v)
        if addr.version == 4:
            assert ints.iloc[i] == int(addr) == ipv4_int(v)
            assert pd.isna(texts.iloc[i])
        else:
            assert texts.iloc[i] == addr.exploded == ipv6_expand(v)
            assert pd.isna(ints.iloc[i])


# --------------------------------------------------------------------------- hypothesis

_ALPHABET = st.sampled_from(
    list("aAbBzZeEiIoOuU09")
    + list("@.+_-'\\% \t\n")
    + ["é", "İ", "ı", "ß", "Σ", "K", "ſ", "👍", "\u0301", "\x00"]
)
_TEXT = st.text(alphabet=_ALPHABET, max_size=14)
# More examples on demand: CW_HYPOTHESIS_EXAMPLES=500 pytest tests/test_attributes.py
_HYPO = settings(
    max_examples=int(os.environ.get("CW_HYPOTHESIS_EXAMPLES", "25")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def _ip_text(draw: st.DrawFn) -> str:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return str(ipaddress.IPv4Address(draw(st.integers(0, 2**32 - 1))))
    if choice == 1:
        addr = ipaddress.IPv6Address(draw(st.integers(0, 2**128 - 1)))
        text = draw(st.sampled_from([str(addr), addr.exploded]))
        return text.upper() if draw(st.booleans()) else text
    if choice == 2:
        groups = draw(st.lists(st.sampled_from(["0", "1", "ab", "FFFF", "", "00001"]), max_size=9))
        return ":".join(groups)
    return draw(st.text(alphabet=st.sampled_from(list("0123456789.:abcdefgX ")), max_size=20))


@_HYPO
@given(
    emails=st.lists(
        st.tuples(
            _TEXT,
            st.sampled_from(["@", "@@", ""]),
            # Gmail spellings exercise the canonical mailbox's dot rule.
            st.one_of(_TEXT, st.sampled_from(["gmail.com", "GoogleMail.COM", "gmail.com."])),
        ).map("".join),
        min_size=1,
        max_size=25,
    ),
    usernames=st.lists(st.one_of(st.none(), _TEXT), min_size=1, max_size=25),
    ips=st.lists(_ip_text(), min_size=1, max_size=25),
)
def test_random_signups_same_in_python_and_sql(
    emails: list[str], usernames: list[str | None], ips: list[str]
) -> None:
    n = min(len(emails), len(usernames), len(ips))
    df = pd.DataFrame(
        {
            "account_id": [str(i) for i in range(n)],
            "created_at": pd.Timestamp("2024-01-01", tz="UTC"),
            "email": emails[:n],
            "ip": ips[:n],
            "username": pd.Series(usernames[:n], dtype="string"),
            "display_name": pd.Series(emails[:n], dtype="string"),
            "user_agent": pd.Series([u or "" for u in usernames[:n]], dtype="string"),
        }
    )
    assert_same_values(df, "signups")


@_HYPO
@given(
    texts=st.lists(
        st.lists(
            st.one_of(_TEXT, st.sampled_from(["http://", "HTTPS://", "@", ".", ":8", "/"])),
            max_size=6,
        ).map("".join),
        min_size=1,
        max_size=25,
    )
)
def test_random_senders_same_in_python_and_sql(texts: list[str]) -> None:
    n = len(texts)
    df = pd.DataFrame(
        {
            "message_id": [str(i) for i in range(n)],
            "sent_at": pd.Timestamp("2024-01-01", tz="UTC"),
            "sender": texts,
            "subject": pd.Series(texts, dtype="string"),
            "body": pd.Series(texts[::-1], dtype="string"),
        }
    )
    assert_same_values(df, "senders")


# --------------------------------------------------------------------------- speed


def test_fast_on_100k_rows() -> None:
    n = 100_000
    rng = np.random.default_rng(0)
    uas = np.array([CHROME.replace("6045", str(i)) for i in range(300)], dtype=object)
    df = pd.DataFrame(
        {
            "account_id": np.arange(n).astype(str),
            "created_at": pd.Timestamp("2024-01-01", tz="UTC"),
            "email": [f"User.{i}+t@Dom{i % 5000}.example.com" for i in range(n)],
            "ip": [
                f"10.{i % 256}.{i // 256 % 256}.1" if i % 3 else f"2001:db8::{i:x}"
                for i in range(n)
            ],
            "user_agent": rng.choice(uas, n),
        }
    )
    for name in ["email_domain", "username_shape", "ua_build", "ip_prefix48", "ip_prefix24"]:
        start = time.perf_counter()
        compute_attributes(df, "signups", [name])
        assert time.perf_counter() - start < 1.0, name


# ------------------------------------------------------------- derivations of spec roles

NOTES_SPEC = """
name = "notes"
id_column = "note_id"
time_column = "at"
[columns]
note_id = { type = "string", role = "id", required = true }
at = { type = "timestamp", role = "time", required = true }
text = { type = "string", role = "text" }
"""


def test_text_and_time_role_derivations_agree_in_python_and_sql() -> None:
    import tomllib

    from clustering.kinds import register_spec
    from clustering.spec import parse_spec

    register_spec(parse_spec(tomllib.loads(NOTES_SPEC), "notes.toml"))
    texts = [
        "Call 08712300220 now, 2 prizes",  # the longest run counts, not the first
        "no digits at all",
        "",
        None,
        "٣٣٣ Arabic-Indic digits are not ASCII 12",
        "e\u0301 1 22 333",
    ]
    at = pd.to_datetime(
        [
            "2024-01-01T23:59:59.999Z",
            "2024-01-02T00:00:00Z",
            "1969-12-31T23:30:00Z",
            "2024-01-01T05:00:00+03:00",  # 02:00 UTC
            "2014-02-18T10:00:00Z",
            "2000-02-29T12:00:00Z",
        ],
        utc=True,
        format="ISO8601",
    )
    df = pd.DataFrame({"note_id": [f"n{i}" for i in range(6)], "at": at, "text": texts})
    assert_same_values(df, "notes")
    got = compute_attributes(df, "notes")
    assert _plain(got["text_digit_run"]) == [11, 0, None, None, 2, 3]
    assert _plain(got["text_digits"]) == [12, 0, None, None, 2, 6]
    assert _plain(got["day"]) == [
        "2024-01-01",
        "2024-01-02",
        "1969-12-31",
        "2024-01-01",
        "2014-02-18",
        "2000-02-29",
    ]
