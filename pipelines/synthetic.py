"""Seeded synthetic signups and outbound messages with planted campaigns.

``generate`` makes several days of traffic in the input contracts of
:mod:`clustering.kinds`: a benign population (per-country names, mail domains, ISPs, diurnal
cycles, mobile carriers behind shared CGNAT addresses, a few VPN users), benign *look-alike
crowds* that tempt detectors (a campus NAT, a marketing burst, newsletters, transactional mail)
and planted *campaigns* of several styles (data-centre burst, residential proxies, low-and-slow
throwaway domains, a phone farm, ordinary-looking people from a device pool at a fixed cadence,
plus/dot aliases of a few mailboxes, a spam blast, invoice phishing). Labels are returned in
separate frames; detection code never reads them.

Every group draws from its own random stream, keyed by ``(seed, group name, day)``, so adding a
style does not change the others, and generating more days leaves the earlier ones unchanged.
(The benign population fills the rest of each day, so it is redrawn when a style is added, and
an address that clashed with one of its addresses may get a different digit suffix.)
Campaign styles are declared in :data:`GROUPS`; a new style is a row there plus a function
registered in ``_STYLES``.
"""

from __future__ import annotations

import logging
import unicodedata
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from clustering.kinds import SENDERS, SIGNUPS

log = logging.getLogger(__name__)

__all__ = ["GROUPS", "GroupSpec", "SyntheticData", "generate", "write_synthetic"]

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
FREEMAIL = (("gmail.com", 0.55), ("outlook.com", 0.2), ("hotmail.com", 0.15), ("yahoo.com", 0.1))


def _chrome(os_token: str, build: str, mobile: bool = False) -> str:
    tail = "Mobile Safari/537.36" if mobile else "Safari/537.36"
    return f"Mozilla/5.0 ({os_token}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{build} {tail}"


def _firefox(os_token: str, version: str) -> str:
    return f"Mozilla/5.0 ({os_token}; rv:{version}) Gecko/20100101 Firefox/{version}"


WIN = "Windows NT 10.0; Win64; x64"
MAC = "Macintosh; Intel Mac OS X 10_15_7"
LINUX = "X11; Linux x86_64"


# ---------------------------------------------------------------------------------------------
# The planted groups: campaigns (label "campaign") and benign look-alike crowds ("lookalike").
# ``share`` is the fraction of the day's rows of that kind; the benign population fills the rest.


@dataclass(frozen=True)
class GroupSpec:
    """One planted group, generated anew every day.

    Parameters
    ----------
    name
        Group name, written to the labels' ``group`` column; also keys the random streams.
    style
        Generator style (a key of ``_STYLES``), written to the labels' ``style`` column.
    kind
        ``"signups"`` or ``"senders"``.
    label
        ``"campaign"`` (abuse, should be blocked) or ``"lookalike"`` (benign, must not be).
    share
        Fraction of the day's rows of ``kind`` (jittered by a few percent per day).
    params
        Style parameters; see the style functions.
    yields_addresses
        Whether the group's signup addresses give way to every other group's on a clash (it
        then takes a digit suffix, as ordinary people do). Groups whose address templates are
        their fingerprint keep the default, so a new people-like group cannot rename them.
    """

    name: str
    style: str
    kind: Literal["signups", "senders"]
    label: Literal["campaign", "lookalike"]
    share: float
    params: Mapping[str, Any] = field(default_factory=dict)
    yields_addresses: bool = False


GROUPS: tuple[GroupSpec, ...] = (
    # Data-centre burst: one hosting ASN, a few /24s, one rare UA build, <first><4 digits>.
    GroupSpec(
        "dc_burst",
        "dc_burst",
        "signups",
        "campaign",
        0.035,
        {
            "asns": (14061,),
            "subnets": 3,
            "window_hours": 1.5,
            "api_share": 0.3,
            "user_agent": _chrome(WIN, "124.0.6367.60"),
            "domains": (("gmail.com", 0.5), ("outlook.com", 0.3), ("hotmail.com", 0.2)),
            "captcha": (1.5, 8.0),
        },
    ),
    # Residential proxies: scattered home IPs, <adjective>_<noun><2 digits>, a device pool.
    GroupSpec(
        "resi_proxy",
        "resi_proxy",
        "signups",
        "campaign",
        0.032,
        {
            "countries": ("US", "GB", "DE", "FR", "BR", "IN", "CA"),
            "device_pool": 25,
            "user_agents": (
                _chrome(WIN, "130.0.6723.92"),
                _chrome(WIN, "130.0.6723.117"),
                _chrome(WIN, "131.0.6778.86"),
            ),
            "display_names": (
                "Anna Smith",
                "Mark Brown",
                "Lisa Taylor",
                "John Miller",
                "Emma Wilson",
            ),
            "domains": (("gmail.com", 0.6), ("outlook.com", 0.25), ("yahoo.com", 0.15)),
            "captcha": (5.0, 3.0),
        },
    ),
    # Low and slow: consonant soup on throwaway domains that rotate daily, even cadence.
    GroupSpec(
        "low_slow",
        "low_slow",
        "signups",
        "campaign",
        0.022,
        {
            "asns": (20473, 16276),
            "tlds": (".xyz", ".top", ".click", ".shop"),
            "domains_per_day": 4,
            "name_len": (8, 10),
            "user_agents": (
                _firefox("X11; Linux x86_64", "115.0"),
                _firefox("X11; Ubuntu; Linux x86_64", "118.0"),
                _chrome(LINUX, "119.0.6045.199"),
            ),
            "captcha": (3.0, 4.0),
        },
    ),
    # Phone farm behind the same carrier CGNAT addresses as benign mobile users.
    GroupSpec(
        "mobile_farm",
        "mobile_farm",
        "signups",
        "campaign",
        0.022,
        {
            "carrier_asn": 55836,
            "cgnat_ips": 4,
            "device_pool": 40,
            "country": "IN",
            "user_agent": "AcmeMail/7.1.3 (Android 11; SM-A125F) okhttp/4.9.3",
            "domains": (("gmail.com", 0.9), ("rediffmail.com", 0.1)),
            "local_hours": (9.0, 21.0),
            "captcha": (6.0, 2.0),
        },
    ),
    # Ordinary-looking people (population names, popular mail, home ISPs, common browsers)
    # except for a pool of ~20 devices kept across days and one signup every 150 s.
    GroupSpec(
        "cadence_pool",
        "cadence_pool",
        "signups",
        "campaign",
        0.0225,
        {
            "countries": ("US", "GB", "CA", "DE"),
            "device_pool": 20,
            "period_s": 150.0,
            "jitter_s": 2.0,
            "ua_min_share": 0.02,  # desktop browsers at least this common
            "domains": (
                ("gmail.com", 0.55),
                ("outlook.com", 0.15),
                ("hotmail.com", 0.1),
                ("yahoo.com", 0.1),
                ("icloud.com", 0.1),
            ),
        },
        yields_addresses=True,
    ),
    # Plus-addressing and dotted variants of a few gmail mailboxes kept across days.
    GroupSpec(
        "alias_farm",
        "alias_farm",
        "signups",
        "campaign",
        0.02,
        {
            "bases": 6,
            "base_countries": ("US", "GB", "CA"),
            "base_len": (10, 14),
            "googlemail_share": 0.1,
            "dotted_share": 0.25,  # dots only, no '+' tag
            "dotted_per_day": 15,  # per base: dot patterns are never reused on a later day
            "tag_words": ("promo", "news", "shop", "deals", "win", "signup", "reg", "bonus"),
            "asns": (16509, 24940, 7018),
            "subnets": 2,
            "window_hours": 14.0,
            "user_agents": (
                _chrome(WIN, "131.0.6778.86"),
                _chrome(MAC, "131.0.6778.86"),
                _firefox(WIN, "132.0"),
            ),
            "captcha": (4.0, 3.0),
        },
    ),
    # Benign: a university NAT, hundreds of students within two hours.
    GroupSpec(
        "campus_nat",
        "campus_nat",
        "signups",
        "lookalike",
        0.015,
        {"university": "westbrook", "nat_ips": 2, "window_hours": 2.0, "edu_share": 0.85},
    ),
    # Benign: ordinary people answering a promo within the hour.
    GroupSpec("marketing_burst", "marketing_burst", "signups", "lookalike", 0.025, {}),
    # Parcel spam from look-alike domains, PHPMailer, two hosting /24s, many recipients.
    GroupSpec(
        "spam_blast",
        "spam_blast",
        "senders",
        "campaign",
        0.085,
        {
            "per_sender": 55,
            "asns": (9009, 16276),
            "sender_domains": (
                "dhl-parcelnotice.com",
                "ups-deliverycenter.net",
                "fedex-tracking-info.com",
                "postal-redelivery.info",
                "parcel-support24.com",
                "intl-delivery-notice.net",
            ),
            "domains_per_day": 3,
            "subjects": (
                "Your parcel #{n} is waiting – confirm delivery",
                "Delivery attempt failed for parcel #{n} – action required",
                "Parcel #{n}: confirm your address to release delivery",
            ),
            "x_mailer": "PHPMailer 6.0.7",
            "recipients": (20, 50),
            "bounce": 0.25,
            "complaint": 0.07,
            "waves": 5,
        },
    ),
    # Invoice phishing from compromised freemail accounts over residential IPs.
    GroupSpec(
        "invoice_phish",
        "invoice_phish",
        "senders",
        "campaign",
        0.03,
        {
            "per_sender": 8,
            "companies": (
                "Northwind Traders",
                "Contoso Ltd",
                "Acme Supplies",
                "Globex Corporation",
                "Initech Billing",
                "Umbrella Logistics",
                "Stark Components",
                "Wayne Office Supply",
            ),
            "url_domains": (
                "docusign-secure-view.com",
                "sharepoint-invoices.net",
                "0ffice-billing.com",
                "onedrive-docs-share.com",
                "invoice-portal-secure.net",
            ),
            "recipients": (5, 15),
            "bounce": 0.04,
            "complaint": 0.02,
        },
    ),
    # Benign: a few legitimate newsletters, batched to many recipients at a fixed hour.
    GroupSpec(
        "newsletter",
        "newsletter",
        "senders",
        "lookalike",
        0.02,
        {
            "brands": (
                ("The Morning Ledger", "news@morningledger.com", "Your weekly digest – {date}"),
                (
                    "Trailhead Outdoors",
                    "deals@trailheadoutdoors.com",
                    "This week's gear picks – {date}",
                ),
                ("Pixel Weekly", "digest@pixelweekly.com", "Pixel Weekly – {date}"),
                ("Cook Smarter", "hello@cooksmarter.com", "5 dinners for the week of {date}"),
                ("CityBeat", "news@citybeat.com", "Your weekly digest – {date}"),
            ),
            "subnets": ("167.89.118", "198.2.180", "149.72.34"),
            "recipients": (200, 1000),
        },
    ),
    # Benign: shops' templated order mail with random order numbers.
    GroupSpec(
        "transactional",
        "transactional",
        "senders",
        "lookalike",
        0.04,
        {
            "shops": (
                ("ShopMart", "shopmart.com"),
                ("Gadget Barn", "gadgetbarn.com"),
                ("Bookshelf", "bookshelf.co.uk"),
                ("Modehaus", "modehaus.de"),
                ("Loja Vida", "lojavida.com.br"),
                ("Petpal", "petpal.com"),
                ("HomeNest", "homenest.com"),
                ("Tiendita", "tiendita.com.mx"),
            ),
            "subjects": (
                "Your order #{n} has shipped",
                "Order #{n} confirmed – thanks for shopping with {shop}",
                "Your {shop} receipt for order #{n}",
            ),
            "subnets": ("54.240.8", "54.240.27", "23.251.234"),
        },
    ),
)


# ---------------------------------------------------------------------------------------------
# Reference data: countries, networks, names, domains, user agents, text.


@dataclass(frozen=True)
class Country:
    """A country of the benign population."""

    code: str
    weight: float
    tz: float  # UTC offset in November, hours
    names: tuple[tuple[str, float], ...]  # name regions and their weights
    local_domains: tuple[str, ...]
    local_share: float
    tlds: tuple[str, ...]  # for small corporate / school domains
    lang: str
    phone_share: float = 0.5  # signs up from a phone
    cell_share: float = 0.35  # ... and over the carrier network rather than home wifi
    ios_share: float = 0.25


# fmt: off
COUNTRIES: tuple[Country, ...] = (
    # code, weight, tz, name regions, local domains, local share, TLDs, lang, phone, cell, ios
    Country("US", 26, -5, (("en", 0.8), ("es", 0.12), ("in", 0.08)),
            ("comcast.net", "att.net", "aol.com", "verizon.net", "sbcglobal.net"), 0.12,
            (".com", ".org", ".net", ".us", ".edu"), "en", 0.5, 0.35, 0.55),
    Country("IN", 10, 5.5, (("in", 1.0),), ("rediffmail.com", "yahoo.co.in"), 0.08,
            (".in", ".co.in", ".com"), "en", 0.75, 0.7, 0.05),
    Country("BR", 9, -3, (("pt", 1.0),),
            ("uol.com.br", "bol.com.br", "terra.com.br", "ig.com.br", "yahoo.com.br"), 0.2,
            (".com.br",), "pt", 0.65, 0.5, 0.15),
    Country("GB", 6, 0, (("en", 0.85), ("in", 0.1), ("pl", 0.05)),
            ("btinternet.com", "sky.com", "virginmedia.com", "yahoo.co.uk", "hotmail.co.uk"), 0.2,
            (".co.uk", ".org.uk", ".ac.uk", ".com"), "en", 0.5, 0.35, 0.5),
    Country("DE", 6, 1, (("de", 0.85), ("tr", 0.1), ("pl", 0.05)),
            ("web.de", "gmx.de", "t-online.de", "gmx.net", "freenet.de"), 0.45,
            (".de",), "de", 0.45, 0.3, 0.35),
    Country("ID", 6, 7, (("id", 1.0),), ("yahoo.co.id", "ymail.com"), 0.08,
            (".co.id", ".id", ".com"), "en", 0.8, 0.7, 0.1),
    Country("MX", 5, -6, (("es", 1.0),), ("prodigy.net.mx", "yahoo.com.mx", "hotmail.es"), 0.15,
            (".com.mx", ".mx"), "es", 0.65, 0.5, 0.15),
    Country("FR", 5, 1, (("fr", 0.9), ("es", 0.05), ("pt", 0.05)),
            ("orange.fr", "free.fr", "laposte.net", "sfr.fr", "wanadoo.fr"), 0.35,
            (".fr",), "fr", 0.5, 0.3, 0.3),
    Country("JP", 4, 9, (("jp", 1.0),),
            ("yahoo.co.jp", "docomo.ne.jp", "ezweb.ne.jp", "softbank.ne.jp", "nifty.com"), 0.4,
            (".co.jp", ".jp", ".ac.jp"), "en", 0.6, 0.45, 0.6),
    Country("PH", 3, 8, (("ph", 1.0),), ("yahoo.com.ph",), 0.08, (".com.ph", ".ph"), "en",
            0.8, 0.7, 0.15),
    Country("TR", 3, 3, (("tr", 1.0),), ("yandex.com.tr", "mynet.com"), 0.15, (".com.tr",), "en",
            0.6, 0.5, 0.15),
    Country("VN", 3, 7, (("vn", 1.0),), ("yahoo.com.vn",), 0.05, (".vn", ".com.vn"), "en",
            0.75, 0.6, 0.15),
    Country("ES", 3, 1, (("es", 1.0),), ("hotmail.es", "telefonica.net", "yahoo.es"), 0.2,
            (".es",), "es", 0.55, 0.35, 0.2),
    Country("IT", 3, 1, (("it", 1.0),), ("libero.it", "virgilio.it", "alice.it", "tiscali.it"),
            0.35, (".it",), "en", 0.55, 0.35, 0.25),
    Country("CA", 3, -5, (("en", 0.75), ("fr", 0.15), ("in", 0.1)),
            ("rogers.com", "shaw.ca", "sympatico.ca", "hotmail.ca"), 0.12,
            (".ca", ".com"), "en", 0.5, 0.35, 0.5),
    Country("PL", 2, 1, (("pl", 1.0),), ("wp.pl", "onet.pl", "o2.pl", "interia.pl"), 0.45,
            (".pl", ".com.pl"), "en", 0.55, 0.35, 0.15),
    Country("RU", 2, 3, (("ru", 1.0),), ("mail.ru", "yandex.ru", "rambler.ru", "bk.ru"), 0.65,
            (".ru",), "en", 0.55, 0.4, 0.2),
    Country("NG", 2, 1, (("ng", 1.0),), ("yahoo.com",), 0.05, (".com.ng", ".ng"), "en",
            0.85, 0.8, 0.05),
)
# fmt: on


@dataclass(frozen=True)
class Network:
    """An autonomous system: a residential ISP, a mobile carrier, a hosting provider, ..."""

    name: str
    asn: int
    country: str
    kind: Literal["resi", "mobile", "dc", "edu"]
    prefixes: tuple[str, ...]  # /16s as "a.b"
    weight: float = 1.0
    v6: str = ""  # first two IPv6 groups, "" when the network hands out no IPv6 here
    v6_share: float = 0.0


NETWORKS: tuple[Network, ...] = (
    Network("Comcast", 7922, "US", "resi", ("73.15", "73.42", "24.6", "98.207", "68.84"), 4,
            "2601:647", 0.25),
    Network("AT&T", 7018, "US", "resi", ("99.10", "107.77", "75.20", "104.5", "108.220"), 3),
    Network("Charter", 20115, "US", "resi", ("47.144", "71.80", "97.95", "174.98"), 3),
    Network("Verizon", 701, "US", "resi", ("71.105", "72.64", "96.255", "100.8"), 2),
    Network("T-Mobile US", 21928, "US", "mobile", ("172.56", "172.58"), 2, "2607:fb90", 0.35),
    Network("Verizon Wireless", 6167, "US", "mobile", ("174.192", "174.205"), 2),
    Network("BT", 2856, "GB", "resi", ("86.128", "81.156", "109.150"), 3),
    Network("Virgin Media", 5089, "GB", "resi", ("82.2", "86.0", "80.192"), 2),
    Network("Sky", 5607, "GB", "resi", ("90.192", "2.96", "5.64"), 2, "2a02:c7c", 0.2),
    Network("EE", 12576, "GB", "mobile", ("31.94", "92.40"), 2),
    Network("Vodafone UK", 25135, "GB", "mobile", ("5.68", "31.48"), 1),
    Network("Deutsche Telekom", 3320, "DE", "resi", ("79.192", "84.128", "87.160", "93.192"), 4,
            "2003:e4", 0.3),
    Network("Vodafone DE", 3209, "DE", "resi", ("88.64", "94.134", "178.0"), 3),
    Network("Telefonica DE", 6805, "DE", "mobile", ("176.0", "89.204"), 2),
    Network("Orange FR", 3215, "FR", "resi", ("90.0", "86.192", "92.130", "109.208"), 3,
            "2a01:cb00", 0.2),
    Network("Free", 12322, "FR", "resi", ("78.192", "82.64", "88.160"), 2, "2a01:e0a", 0.3),
    Network("SFR", 15557, "FR", "resi", ("77.128", "93.8"), 2),
    Network("Bouygues Telecom", 5410, "FR", "mobile", ("176.128", "37.168"), 2),
    Network("Claro BR", 28573, "BR", "resi", ("177.32", "179.96", "189.120", "191.176"), 3),
    Network("Vivo", 18881, "BR", "resi", ("177.96", "187.32", "189.96"), 3),
    Network("TIM BR", 26615, "BR", "mobile", ("179.240", "187.90"), 2),
    Network("Airtel", 24560, "IN", "resi", ("122.160", "59.144", "223.190"), 3),
    Network("BSNL", 9829, "IN", "resi", ("117.200", "59.88", "117.248"), 2),
    Network("ACT Fibernet", 24309, "IN", "resi", ("49.207", "183.82"), 2),
    Network("Reliance Jio", 55836, "IN", "mobile", ("49.36", "49.34", "157.32"), 4,
            "2409:4040", 0.2),
    Network("Airtel Mobile", 45609, "IN", "mobile", ("106.192", "223.178"), 2),
    Network("NTT OCN", 4713, "JP", "resi", ("153.128", "180.0", "220.96"), 3),
    Network("KDDI", 2516, "JP", "resi", ("106.128", "111.86", "182.248"), 2),
    Network("SoftBank", 17676, "JP", "resi", ("126.0", "126.200", "219.100"), 2),
    Network("NTT Docomo", 9605, "JP", "mobile", ("1.66", "49.96", "110.163"), 2),
    Network("Telkom Indonesia", 7713, "ID", "resi", ("36.64", "114.120", "180.240"), 3),
    Network("Biznet", 17451, "ID", "resi", ("103.28", "114.4"), 1),
    Network("Telkomsel", 23693, "ID", "mobile", ("114.125", "182.0", "112.215"), 3),
    Network("Telmex", 8151, "MX", "resi", ("187.188", "189.128", "201.140"), 3),
    Network("Totalplay", 22884, "MX", "resi", ("187.189", "189.203"), 1),
    Network("Telcel", 28403, "MX", "mobile", ("189.197", "201.144"), 2),
    Network("Rogers", 812, "CA", "resi", ("99.224", "174.112"), 2),
    Network("Bell Canada", 577, "CA", "resi", ("70.48", "142.113"), 2),
    Network("Telus Mobility", 852, "CA", "mobile", ("154.20", "207.102"), 1),
    Network("Telefonica ES", 3352, "ES", "resi", ("79.144", "83.32", "88.0"), 2),
    Network("Orange ES", 12479, "ES", "mobile", ("90.160", "37.10"), 1),
    Network("Telecom Italia", 3269, "IT", "resi", ("79.16", "93.32", "151.16"), 2),
    Network("Fastweb", 12874, "IT", "resi", ("93.40", "2.224"), 1),
    Network("Wind Tre", 1267, "IT", "mobile", ("151.64", "5.168"), 1),
    Network("Orange Polska", 5617, "PL", "resi", ("83.24", "83.30", "31.60"), 2),
    Network("Play", 39603, "PL", "mobile", ("37.30", "46.112"), 1),
    Network("Rostelecom", 12389, "RU", "resi", ("95.24", "178.64", "188.17"), 2),
    Network("MTS", 8359, "RU", "mobile", ("83.149", "217.118"), 1),
    Network("Turk Telekom", 9121, "TR", "resi", ("78.160", "85.96"), 2),
    Network("Turkcell", 16135, "TR", "mobile", ("176.88", "188.119"), 1),
    Network("PLDT", 9299, "PH", "resi", ("112.198", "120.28"), 2),
    Network("Globe Telecom", 132199, "PH", "mobile", ("175.176", "110.54"), 2),
    Network("VNPT", 45899, "VN", "resi", ("14.160", "113.160"), 2),
    Network("Viettel", 7552, "VN", "mobile", ("27.64", "116.96"), 2),
    Network("Spectranet", 37340, "NG", "resi", ("41.75", "102.67"), 1),
    Network("MTN Nigeria", 29465, "NG", "mobile", ("102.88", "105.112"), 2),
    Network("DigitalOcean", 14061, "US", "dc", ("159.65", "167.99", "64.225"), 2),
    Network("DigitalOcean", 14061, "DE", "dc", ("134.209", "46.101"), 1),
    Network("Amazon", 16509, "US", "dc", ("3.80", "18.204", "54.160"), 2),
    Network("Amazon", 16509, "IE", "dc", ("3.250", "52.16"), 1),
    Network("Hetzner", 24940, "DE", "dc", ("88.198", "95.216", "65.108"), 2),
    Network("Hetzner", 24940, "FI", "dc", ("65.21", "95.217"), 1),
    Network("OVH", 16276, "FR", "dc", ("51.38", "54.36", "51.77"), 1.5),
    Network("Vultr", 20473, "US", "dc", ("45.32", "45.76", "149.28", "207.148"), 1),
    Network("M247", 9009, "GB", "dc", ("185.65", "89.238"), 1),
    Network("Westbrook University", 10437, "US", "edu", ("129.74",), 0),
)  # fmt: skip

_NAMES_RAW: dict[str, tuple[str, str]] = {
    "en": (
        "James Mary John Patricia Robert Jennifer Michael Linda David Elizabeth William Barbara "
        "Richard Susan Joseph Jessica Thomas Sarah Chris Karen Daniel Emily Matthew Ashley Andrew "
        "Megan Ryan Olivia Ethan Emma Noah Chloe Tyler Hannah Kevin Laura Brian Rachel Jacob "
        "Amanda Liam Sophie Oliver Grace Jack Amelia Harry Lucy",
        "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore "
        "Martin Jackson Thompson White Harris Clark Lewis Robinson Walker Young Allen King Wright "
        "Scott Green Baker Adams Nelson Hill Campbell Mitchell Roberts Carter Phillips Evans "
        "Turner Parker Collins Edwards Stewart Morris Murphy Cook Rogers Morgan Cooper Hughes "
        "Ward Wood Hall O'Brien",
    ),
    "es": (
        "José María Juan Guadalupe Luis Carmen Carlos Ana Jorge Sofía Miguel Valentina "
        "Alejandro Fernanda Diego Daniela Javier Lucía Fernando Camila Ricardo Paula Andrés "
        "Isabel Pablo Elena Raúl Marta Sergio Gabriela",
        "García Rodríguez Martínez Hernández López González Pérez Sánchez Ramírez Torres Flores "
        "Rivera Gómez Díaz Cruz Morales Reyes Gutiérrez Ortiz Jiménez Ruiz Álvarez Castillo "
        "Romero Vargas Mendoza Moreno Herrera Medina Navarro",
    ),
    "pt": (
        "João Maria Pedro Ana Lucas Juliana Gabriel Fernanda Mateus Beatriz Rafael Camila "
        "Gustavo Larissa Felipe Letícia Bruno Mariana Thiago Amanda Leonardo Bianca Rodrigo "
        "Vitória Diego Patrícia Eduardo Carolina Vinícius Aline",
        "Silva Santos Oliveira Souza Rodrigues Ferreira Alves Pereira Lima Gomes Costa Ribeiro "
        "Martins Carvalho Almeida Lopes Soares Fernandes Vieira Barbosa Rocha Dias Nascimento "
        "Andrade Moreira Nunes Marques Machado Mendes Freitas",
    ),
    "de": (
        "Lukas Anna Leon Lea Finn Lena Jonas Laura Paul Marie Felix Sophie Maximilian Julia Tim "
        "Hannah Jan Sarah Niklas Katharina Stefan Sabine Thomas Petra Michael Claudia Andreas "
        "Nicole Jürgen Ute",
        "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer Koch "
        "Bauer Richter Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger Hofmann "
        "Hartmann Lange Schmitt Werner Krause Meier Lehmann",
    ),
    "fr": (
        "Jean Marie Pierre Camille Louis Léa Lucas Manon Hugo Chloé Thomas Inès Nicolas Julie "
        "Antoine Sarah Julien Emma Maxime Clara Alexandre Pauline Mathieu Céline Guillaume "
        "Élodie François Amélie Théo Margaux",
        "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent "
        "Lefebvre Michel Garcia David Bertrand Roux Vincent Fournier Morel Girard André Lefèvre "
        "Mercier Dupont Lambert Bonnet François Martinez",
    ),
    "it": (
        "Marco Giulia Luca Francesca Alessandro Chiara Andrea Sara Matteo Martina Lorenzo "
        "Federica Davide Valentina Simone Elisa Giuseppe Alessia Francesco Silvia Riccardo "
        "Laura Stefano Paola",
        "Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo "
        "Conti De_Luca Mancini Costa Giordano Rizzo Lombardi Moretti Barbieri Fontana Santoro "
        "Mariani",
    ),
    "pl": (
        "Piotr Anna Krzysztof Maria Tomasz Katarzyna Paweł Małgorzata Michał Agnieszka Marcin "
        "Barbara Jakub Ewa Kamil Magdalena Łukasz Joanna Mateusz Aleksandra Adam Monika",
        "Nowak Kowalski Wiśniewski Wójcik Kowalczyk Kamiński Lewandowski Zieliński Szymański "
        "Woźniak Dąbrowski Kozłowski Jankowski Mazur Kwiatkowski Krawczyk Piotrowski Grabowski "
        "Nowakowski Pawłowski",
    ),
    "ru": (
        "Aleksandr Anna Dmitry Maria Sergey Elena Andrey Olga Alexey Tatiana Ivan Natalia "
        "Mikhail Irina Nikolai Ekaterina Vladimir Svetlana Pavel Yulia Artem Anastasia",
        "Ivanov Smirnov Kuznetsov Popov Vasiliev Petrov Sokolov Mikhailov Novikov Fedorov "
        "Morozov Volkov Alekseev Lebedev Semenov Egorov Pavlov Kozlov Stepanov Nikolaev",
    ),
    "tr": (
        "Mehmet Ayşe Mustafa Fatma Ahmet Emine Ali Hatice Hüseyin Zeynep Hasan Elif Murat Merve "
        "Emre Esra Burak Büşra Can Selin",
        "Yılmaz Kaya Demir Şahin Çelik Yıldız Yıldırım Öztürk Aydın Özdemir Arslan Doğan Kılıç "
        "Aslan Çetin Kara Koç Kurt Özkan Şimşek",
    ),
    "in": (
        "Aarav Priya Rahul Ananya Amit Pooja Rohit Sneha Vikram Neha Arjun Kavya Suresh Divya "
        "Rajesh Anjali Sanjay Deepika Karan Meera Aditya Shreya Vivek Riya Manish Lakshmi Arun "
        "Swati",
        "Sharma Verma Gupta Singh Kumar Patel Reddy Iyer Nair Rao Joshi Mehta Shah Das Banerjee "
        "Chatterjee Mishra Pandey Yadav Agarwal Kapoor Malhotra Bhat Menon Pillai Desai Jain "
        "Saxena",
    ),
    "jp": (
        "Haruto Yui Sota Hina Yuto Aoi Hiroshi Yuki Takumi Sakura Ren Mei Kenji Akiko Daiki "
        "Naoko Shota Emi Kaito Miyu Takashi Ayumi",
        "Sato Suzuki Takahashi Tanaka Watanabe Ito Yamamoto Nakamura Kobayashi Kato Yoshida "
        "Yamada Sasaki Yamaguchi Matsumoto Inoue Kimura Hayashi Shimizu Mori",
    ),
    "id": (
        "Budi Siti Agus Dewi Andi Sri Rudi Putri Eko Ayu Dedi Indah Hendra Rina Fajar Wulan "
        "Rizky Nur Yoga Fitri Bayu Maya",
        "Santoso Wijaya Saputra Hidayat Pratama Kusuma Setiawan Nugroho Wibowo Susanto Halim "
        "Gunawan Siregar Lubis Hasibuan Simanjuntak Purnomo Rahman Hakim Sari",
    ),
    "vn": (
        "Anh Minh Linh Huy Trang Đức Ngọc Tuấn Thảo Khánh Hoa Long Mai Phương Quang Thu Hiếu "
        "Lan Nam Vy",
        "Nguyễn Trần Lê Phạm Hoàng Huỳnh Phan Vũ Võ Đặng Bùi Đỗ Hồ Ngô Dương Lý",
    ),
    "ph": (
        "Mark Maria Jose Angelica John Kristine Christian Mary_Grace Jerome Jasmine Paolo "
        "Camille Carlo Nicole Miguel Patricia Joshua Andrea Rafael Bea",
        "Santos Reyes Cruz Bautista Ocampo Garcia Mendoza Torres Castillo Flores Villanueva "
        "Ramos Aquino Navarro Dela_Cruz Gonzales Lopez Salazar Mercado Tolentino",
    ),
    "ng": (
        "Chinedu Ngozi Emeka Chioma Oluwaseun Funmilayo Tunde Aisha Ibrahim Amaka Segun "
        "Blessing Yusuf Fatima Obinna Adaeze Kelechi Zainab Babatunde Folake",
        "Okafor Adeyemi Okonkwo Balogun Eze Ibrahim Abubakar Nwosu Olawale Adebayo Obi Mohammed "
        "Chukwu Ogunleye Bello Afolabi Nnamdi Uche Okeke Lawal",
    ),
}

_NICKS = (
    "sunny gamer kitty tiger angel shadow rocky lucky happy dragon star jojo mimi bubba ace "
    "ninja queen prince buddy pixel"
).split()
_ADJECTIVES = (
    "happy silent brave lucky cosmic golden wild quiet rapid clever sunny misty frozen crimson "
    "gentle bold shiny lazy swift mellow fancy noble rusty snowy"
).split()
_NOUNS = (
    "tiger river falcon panda comet willow otter pixel maple rocket ember harbor lynx meadow "
    "canyon breeze badger lotus raven cedar koala summit pebble wolf"
).split()
_CORP_WORDS = (
    (
        "north blue river stone summit oak bright silver harbor pine cedar lake metro prime "
        "apex eagle maple red iron green west lincoln valley bay"
    ).split(),
    (
        "tech works labs group partners consulting logistics health law media design foods "
        "systems energy capital dental realty motors academy college school clinic studio build"
    ).split(),
)
_CHEAP_BENIGN = ("pixelcraft.xyz", "studio-maple.shop", "bakehouse.shop", "devnotes.xyz")

_POPULAR = (
    ("gmail.com", 0.55),
    ("outlook.com", 0.12),
    ("hotmail.com", 0.1),
    ("yahoo.com", 0.1),
    ("icloud.com", 0.09),
    ("proton.me", 0.04),
)

_CHROME_BUILDS = (
    ("131.0.6778.109", 0.2), ("131.0.6778.86", 0.18), ("131.0.6778.70", 0.1),
    ("130.0.6723.117", 0.12), ("130.0.6723.92", 0.1), ("130.0.6723.70", 0.06),
    ("129.0.6668.101", 0.06), ("129.0.6668.90", 0.05), ("128.0.6613.138", 0.04),
    ("128.0.6613.120", 0.03), ("127.0.6533.120", 0.03), ("126.0.6478.127", 0.02),
    ("122.0.6261.129", 0.01),
)  # fmt: skip
_EDGE_BUILDS = (
    ("131.0.2903.70", 0.35), ("131.0.2903.51", 0.2), ("130.0.2849.80", 0.2),
    ("130.0.2849.68", 0.15), ("129.0.2792.89", 0.1),
)  # fmt: skip
_FIREFOX = (("133.0", 0.3), ("132.0", 0.35), ("131.0", 0.15), ("128.0", 0.15), ("115.0", 0.05))
_SAFARI = (("18.1.1", 0.25), ("18.1", 0.3), ("18.0.1", 0.2), ("17.6", 0.15), ("17.5", 0.1))
_IOS = (
    ("18_1_1", "18.1.1", 0.25), ("18_1", "18.1", 0.3), ("18_0_1", "18.0.1", 0.15),
    ("17_7", "17.7", 0.15), ("17_6_1", "17.6.1", 0.1), ("16_7_10", "16.7.10", 0.05),
)  # fmt: skip
_ANDROID_MODELS = (
    ("SM-S918B", 0.12), ("SM-A546B", 0.12), ("SM-A145F", 0.1), ("Pixel 8", 0.08),
    ("Pixel 7a", 0.07), ("2201117TG", 0.1), ("CPH2491", 0.08), ("moto g54 5G", 0.08),
    ("SM-A125F", 0.1), ("RMX3630", 0.08), ("V2207", 0.07),
)  # fmt: skip
_ANDROID_OS = (("14", 0.4), ("13", 0.3), ("12", 0.15), ("11", 0.1), ("15", 0.05))
# App builds and the okhttp they bundle; 7.1.3 is old and rare (the phone farm's build).
_APP_BUILDS = (
    ("7.4.2", "4.12.0", 0.35), ("7.4.1", "4.12.0", 0.25), ("7.4.0", "4.12.0", 0.12),
    ("7.3.5", "4.11.0", 0.15), ("7.3.2", "4.11.0", 0.1), ("7.1.3", "4.9.3", 0.03),
)  # fmt: skip
_PARTNER_UA = "AcmeMail-Partner-SDK/2.3.1 (Java/17.0.9)"

_MAILERS = (
    (None, 0.6),
    ("Microsoft Outlook 16.0", 0.13),
    ("Apple Mail (2.3654)", 0.06),
    ("Apple Mail (2.3776)", 0.04),
    ("iPhone Mail (22B83)", 0.06),
    ("Thunderbird 115.3", 0.04),
    ("Thunderbird 128.4", 0.03),
    ("Microsoft Outlook 15.0", 0.02),
    ("K-9 Mail for Android", 0.02),
)

# Text of ordinary personal mail, per language: subject templates x topics, body lines.
_TEXT: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "templates": (
            "{t}", "Re: {t}", "Fwd: {t}", "Question about {t}", "{t}?", "Quick update on {t}",
            "About {t}", "Re: Re: {t}", "Thoughts on {t}", "{t} – update",
        ),
        "topics": (
            "dinner on Friday", "the weekend", "photos from the trip", "Saturday", "book club",
            "the kids' schedule", "rent", "the wedding", "your visit", "the move", "the project",
            "our call tomorrow", "the garden", "Mom's birthday", "the car", "concert tickets",
            "meeting notes", "the recipe", "the plumber", "holiday plans",
            "the school fundraiser", "lunch next week", "the apartment", "soccer practice",
            "the reunion", "Thanksgiving", "the quote", "my new number", "the lease",
            "the flight",
        ),
        "greetings": ("Hi,", "Hey,", "Hello,", "Hi all,", "Hi there,"),
        "lines": (
            "Are we still on for this weekend?", "Here are the photos from last weekend.",
            "Can you take a look when you get a chance?", "Thanks again for yesterday!",
            "Let me know what you think.", "Running a bit late, see you soon.",
            "I found this and thought of you.", "Call me when you're free.",
            "Attached the notes from our call.", "Happy birthday! Hope you have a great day.",
            "Just checking in – how are things?", "Sounds good to me, see you then.",
        ),
        "signoffs": ("Thanks,", "Best,", "Cheers,", "Love,", "Talk soon,"),
    },
    "de": {
        "templates": ("{t}", "AW: {t}", "WG: {t}", "Frage zu {t}", "{t}?"),
        "topics": (
            "Treffen am Samstag", "Urlaubsfotos", "das Abendessen", "die Wohnung",
            "Omas Geburtstag", "die Rechnung", "das Wochenende", "unser Telefonat",
            "die Hochzeit", "der Umzug", "Fußball am Sonntag", "Weihnachten",
        ),
        "greetings": ("Hallo,", "Hi,", "Liebe Grüße vorab,", "Servus,"),
        "lines": (
            "Passt es dir am Wochenende?", "Hier sind die Fotos vom Ausflug.",
            "Kannst du kurz drüberschauen?", "Danke nochmal für gestern!",
            "Sag mir Bescheid, was du denkst.", "Ich melde mich später.",
        ),
        "signoffs": ("Viele Grüße,", "LG,", "Danke,", "Bis bald,"),
    },
    "fr": {
        "templates": ("{t}", "RE: {t}", "TR: {t}", "Question sur {t}"),
        "topics": (
            "le dîner de vendredi", "les photos des vacances", "le week-end",
            "l'anniversaire de maman", "le déménagement", "la réunion", "le loyer",
            "les billets", "le mariage", "Noël",
        ),
        "greetings": ("Salut,", "Bonjour,", "Coucou,"),
        "lines": (
            "Tu es dispo ce week-end ?", "Voici les photos de samedi.",
            "Tu peux jeter un œil quand tu as le temps ?", "Merci encore pour hier !",
            "Dis-moi ce que tu en penses.", "Je te rappelle ce soir.",
        ),
        "signoffs": ("Bises,", "Merci,", "Bonne journée,", "À bientôt,"),
    },
    "pt": {
        "templates": ("{t}", "RE: {t}", "ENC: {t}", "Dúvida sobre {t}"),
        "topics": (
            "fotos da viagem", "o jantar de sexta", "o fim de semana", "o aniversário da mãe",
            "a mudança", "a reunião", "o aluguel", "o casamento", "os ingressos",
            "o churrasco de domingo",
        ),
        "greetings": ("Oi,", "Olá,", "E aí,"),
        "lines": (
            "Vamos nos ver no fim de semana?", "Seguem as fotos de sábado.",
            "Pode dar uma olhada quando puder?", "Obrigado de novo por ontem!",
            "Me diz o que você acha.", "Te ligo mais tarde.",
        ),
        "signoffs": ("Abraços,", "Beijos,", "Obrigado,", "Até mais,"),
    },
    "es": {
        "templates": ("{t}", "RE: {t}", "RV: {t}", "Pregunta sobre {t}"),
        "topics": (
            "la cena del viernes", "las fotos del viaje", "el fin de semana",
            "el cumpleaños de mamá", "la mudanza", "la reunión", "el alquiler", "la boda",
            "las entradas", "el partido del domingo",
        ),
        "greetings": ("Hola,", "Buenas,", "Qué tal,"),
        "lines": (
            "¿Nos vemos el fin de semana?", "Aquí van las fotos del sábado.",
            "¿Puedes echarle un vistazo cuando puedas?", "¡Gracias otra vez por ayer!",
            "Dime qué te parece.", "Te llamo luego.",
        ),
        "signoffs": ("Saludos,", "Un abrazo,", "Gracias,", "Besos,"),
    },
}  # fmt: skip

# Local-time activity by hour (people sleep at night).
_DIURNAL = np.array(
    [2.0, 1.2, 0.8, 0.6, 0.6, 0.9, 1.8, 3.0, 4.0, 5.0, 5.5, 5.5,
     5.5, 5.5, 5.5, 5.5, 5.8, 6.0, 6.3, 6.5, 6.2, 5.3, 4.0, 2.8],
)  # fmt: skip
_DIURNAL = _DIURNAL / _DIURNAL.sum()

_HEX = "0123456789abcdef"
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
_CONSONANTS = "bcdfghjklmnpqrstvwxz"
_VOWELS = "aeiouy"
_FOLD = str.maketrans({"ł": "l", "Ł": "L", "ß": "ss", "ø": "o", "ı": "i", "đ": "d", "Đ": "D"})


# ---------------------------------------------------------------------------------------------
# Small vectorised helpers.


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


def _ascii(name: str) -> str:
    """Lower-case ASCII login form of a name: accents folded, spaces and punctuation dropped."""
    folded = unicodedata.normalize("NFKD", name.translate(_FOLD))
    return "".join(c for c in folded.encode("ascii", "ignore").decode().lower() if c.isalnum())


def _obj(values: Any) -> np.ndarray:
    """An object array of python strings (vectorised ``+`` concatenates them)."""
    return np.asarray(values).astype(str).astype(object)


def _z(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal strings."""
    return np.strings.zfill(np.asarray(values).astype(str), width).astype(object)


def _pick(rng: np.random.Generator, table: tuple[tuple[Any, float], ...], n: int) -> np.ndarray:
    """Draw ``n`` values from a ``((value, weight), ...)`` table."""
    values = np.empty(len(table), dtype=object)
    values[:] = [v for v, _ in table]
    w = np.array([w for _, w in table], dtype=float)
    return values[rng.choice(len(table), size=n, p=w / w.sum())]


def _rand_str(
    rng: np.random.Generator, n: int, length: int, alphabet: str, p: np.ndarray | None = None
) -> np.ndarray:
    """``n`` random strings of ``length`` characters from ``alphabet``."""
    alpha = np.array(list(alphabet), dtype="<U1")
    idx = rng.choice(len(alpha), size=(n, length), p=p)
    return np.ascontiguousarray(alpha[idx]).view(f"<U{length}").ravel().astype(object)


def _rand_str_var(
    rng: np.random.Generator, n: int, lo: int, hi: int, alphabet: str, p: np.ndarray | None = None
) -> np.ndarray:
    """Random strings with lengths uniform in ``[lo, hi]``."""
    lengths = rng.integers(lo, hi + 1, n)
    out = np.empty(n, dtype=object)
    for length in range(lo, hi + 1):
        m = lengths == length
        out[m] = _rand_str(rng, int(m.sum()), length, alphabet, p)
    return out


def _consonant_soup(rng: np.random.Generator, n: int, lo: int, hi: int) -> np.ndarray:
    """Random consonant-heavy strings such as ``xkvqtrbz`` (vowels ~12%)."""
    alphabet = _CONSONANTS + _VOWELS
    p = np.r_[np.full(len(_CONSONANTS), 0.88 / len(_CONSONANTS)), np.full(6, 0.12 / 6)]
    return _rand_str_var(rng, n, lo, hi, alphabet, p)


def _pronounceable(rng: np.random.Generator, n: int, syllables: int) -> np.ndarray:
    """Consonant-vowel strings such as ``kazomi`` for made-up domain names."""
    out = np.full(n, "", dtype=object)
    for _ in range(syllables):
        out = out + _rand_str(rng, n, 1, _CONSONANTS) + _rand_str(rng, n, 1, _VOWELS)
    return out


def _first_letter(values: np.ndarray) -> np.ndarray:
    return np.asarray(values).astype(str).astype("<U1").astype(object)


def _uniform_ms(rng: np.random.Generator, n: int, start_ms: float, width_ms: float) -> np.ndarray:
    """Times uniform in ``[start, start + width)``, clipped to the day."""
    t = start_ms + rng.random(n) * width_ms
    return np.clip(t, 0, DAY_MS - 1).astype(np.int64)


def _diurnal_ms(rng: np.random.Generator, tz_hours: np.ndarray) -> np.ndarray:
    """UTC millisecond-of-day for people following a local-time daily cycle.

    Local times are wrapped into the UTC day so each day's rows stay in that day's file.
    """
    n = len(tz_hours)
    local = rng.choice(24, size=n, p=_DIURNAL) * HOUR_MS + rng.integers(0, HOUR_MS, n)
    return np.mod(local - (np.asarray(tz_hours) * HOUR_MS).astype(np.int64), DAY_MS).astype(
        np.int64
    )


def _join_domains(
    rng: np.random.Generator, domains: np.ndarray, p: np.ndarray, counts: np.ndarray, kmax: int
) -> np.ndarray:
    """Space-separated distinct recipient domains, up to ``min(count, kmax)`` per row."""
    n = len(counts)
    draws = domains[rng.choice(len(domains), size=(n, kmax), p=p)]
    out = draws[:, 0].copy()
    for j in range(1, kmax):
        fresh = counts > j
        for i in range(j):  # keep the list distinct
            fresh &= draws[:, j] != draws[:, i]
        out = np.where(fresh, out + " " + draws[:, j], out)
    return out


def _beta(rng: np.random.Generator, ab: tuple[float, float], n: int) -> np.ndarray:
    return rng.beta(ab[0], ab[1], n).astype(np.float64)


def _build_uas() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """User agents per platform with realistic weights: ``{platform: (strings, probs)}``."""
    table: dict[str, list[tuple[str, float]]] = {
        k: [] for k in ("desktop", "android_web", "ios_web", "ios_app", "android_app")
    }
    for build, w in _CHROME_BUILDS:
        table["desktop"] += [
            (_chrome(WIN, build), 0.42 * w),
            (_chrome(MAC, build), 0.1 * w),
            (_chrome(LINUX, build), 0.02 * w),
        ]
        table["android_web"].append((_chrome("Linux; Android 10; K", build, True), 0.75 * w))
    for build, w in _EDGE_BUILDS:
        major = build.split(".")[0]
        ua = _chrome(WIN, f"{major}.0.0.0") + f" Edg/{build}"
        table["desktop"].append((ua, 0.16 * w))
    for version, w in _FIREFOX:
        table["desktop"] += [
            (_firefox(WIN, version), 0.06 * w),
            (_firefox("Macintosh; Intel Mac OS X 10.15", version), 0.02 * w),
            (_firefox("X11; Ubuntu; Linux x86_64", version), 0.01 * w),
        ]
        table["android_web"].append((_firefox("Android 14; Mobile", version), 0.04 * w))
    for version, w in _SAFARI:
        ua = (
            f"Mozilla/5.0 ({MAC}) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            f"Version/{version} Safari/605.1.15"
        )
        table["desktop"].append((ua, 0.11 * w))
    for model, wm in _ANDROID_MODELS:
        if model.startswith("SM-"):
            ua = (
                f"Mozilla/5.0 (Linux; Android 14; SAMSUNG {model}) AppleWebKit/537.36 "
                "(KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.6261.105 "
                "Mobile Safari/537.36"
            )
            table["android_web"].append((ua, 0.2 * wm / 0.44))
        for os_version, wo in _ANDROID_OS:
            for app, okhttp, wa in _APP_BUILDS:
                ua = f"AcmeMail/{app} (Android {os_version}; {model}) okhttp/{okhttp}"
                table["android_app"].append((ua, wm * wo * wa))
    for ios_token, ios_version, w in _IOS:
        short = ".".join(ios_version.split(".")[:2])
        table["ios_web"] += [
            (
                f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios_token} like Mac OS X) "
                f"AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{short} Mobile/15E148 "
                "Safari/604.1",
                0.9 * w,
            ),
            (
                f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios_token} like Mac OS X) "
                "AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.103 Mobile/15E148 "
                "Safari/604.1",
                0.1 * w,
            ),
        ]
        for app, _, wa in _APP_BUILDS[:-1]:
            for scale, ws in (("3.00", 0.7), ("2.00", 0.3)):
                ua = f"AcmeMail/{app} (iPhone; iOS {ios_version}; Scale/{scale})"
                table["ios_app"].append((ua, w * wa * ws))
    out = {}
    for platform, rows in table.items():
        strings = np.empty(len(rows), dtype=object)
        strings[:] = [s for s, _ in rows]
        weights = np.array([wt for _, wt in rows])
        out[platform] = (strings, weights / weights.sum())
    return out


_UAS = _build_uas()


# ---------------------------------------------------------------------------------------------
# The world: seeded reference tables shared by all days (CGNAT pools, corporate domains, ...).


class _World:
    """Reference tables for one seed; built once per :func:`generate` call."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng([seed, _crc("world")])
        self.codes = np.array([c.code for c in COUNTRIES], dtype=object)
        w = np.array([c.weight for c in COUNTRIES], dtype=float)
        self.country_p = w / w.sum()
        self.tz = np.array([c.tz for c in COUNTRIES])
        self.phone_share = np.array([c.phone_share for c in COUNTRIES])
        self.cell_share = np.array([c.cell_share for c in COUNTRIES])
        self.ios_share = np.array([c.ios_share for c in COUNTRIES])
        self.lang = np.array([c.lang for c in COUNTRIES], dtype=object)

        # Names per region: display form and ASCII login form.
        self.first: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.last: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for region, (firsts, lasts) in _NAMES_RAW.items():
            for target, raw in ((self.first, firsts), (self.last, lasts)):
                disp = np.array([s.replace("_", " ") for s in raw.split()], dtype=object)
                target[region] = (disp, np.array([_ascii(s) for s in disp], dtype=object))

        # Networks, flattened /16 prefixes, and each carrier's handful of CGNAT addresses.
        self.nets = NETWORKS
        self.asn = np.array([n.asn for n in NETWORKS], dtype=np.int64)
        self.net_country = np.array([n.country for n in NETWORKS], dtype=object)
        self.v6 = np.array([n.v6 for n in NETWORKS], dtype=object)
        self.v6_share = np.array([n.v6_share for n in NETWORKS])
        self.pfx = np.array([p for n in NETWORKS for p in n.prefixes], dtype=object)
        counts = np.array([len(n.prefixes) for n in NETWORKS])
        self.pfx_start = np.r_[0, np.cumsum(counts)[:-1]]
        self.pfx_count = counts
        self.resi: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.cell: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for ci, c in enumerate(COUNTRIES):
            for kind, by_country in (("resi", self.resi), ("mobile", self.cell)):
                idx = np.array(
                    [i for i, n in enumerate(NETWORKS) if n.country == c.code and n.kind == kind]
                )
                wts = np.array([NETWORKS[i].weight for i in idx], dtype=float)
                by_country[ci] = (idx, wts / wts.sum())
        dc = np.array([i for i, n in enumerate(NETWORKS) if n.kind == "dc"])
        wts = np.array([NETWORKS[i].weight for i in dc], dtype=float)
        self.dc = (dc, wts / wts.sum())
        self.cgnat: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for i, n in enumerate(NETWORKS):
            if n.kind != "mobile":
                continue
            blocks = [
                f"{p}.{o}"
                for p, o in zip(rng.choice(n.prefixes, 2), rng.integers(0, 256, 2), strict=True)
            ]
            ips = np.array(
                [f"{b}.{h}" for b in blocks for h in rng.choice(np.arange(2, 254), 6, False)],
                dtype=object,
            )
            busy = rng.gamma(2.0, 1.0, len(ips))  # some exit addresses carry more users
            self.cgnat[i] = (ips, busy / busy.sum())

        # Mail domains per country: popular + local + a heavy tail of small organisations.
        self.domains: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.corporate: dict[str, np.ndarray] = {}
        pop_d = np.array([d for d, _ in _POPULAR], dtype=object)
        pop_w = np.array([w for _, w in _POPULAR])
        recip_d, recip_w = [pop_d], [pop_w * 0.75 / pop_w.sum()]
        for ci, c in enumerate(COUNTRIES):
            corp = self.corporate[c.code] = self._corporate(rng, c)
            zipf = 1.0 / np.arange(1, len(corp) + 1) ** 0.7  # a long, fairly flat tail
            local = np.array(c.local_domains, dtype=object)
            local_w = 1.0 / np.arange(1, len(local) + 1)
            corp_share = 0.12
            parts = [
                pop_w / pop_w.sum() * (1 - c.local_share - corp_share),
                local_w / local_w.sum() * c.local_share,
                zipf / zipf.sum() * corp_share,
            ]
            self.domains[ci] = (np.r_[pop_d, local, corp], np.concatenate(parts))
            share = self.country_p[ci]
            recip_d += [local, corp]
            recip_w += [local_w / local_w.sum() * 0.15 * share, zipf / zipf.sum() * 0.1 * share]
        # Recipient domains of personal mail: mostly the same population domains.
        rd = pd.Series(np.concatenate(recip_w)).groupby(np.concatenate(recip_d)).sum()
        self.recipient_domains = rd.index.to_numpy(dtype=object)
        self.recipient_p = rd.to_numpy() / rd.sum()

    @staticmethod
    def _corporate(rng: np.random.Generator, c: Country, n: int = 500) -> np.ndarray:
        """``n`` distinct small company and school domains with the country's TLDs."""
        a, b = _CORP_WORDS
        k = 3 * n
        wa, wb = rng.integers(0, len(a), k), rng.integers(0, len(b), k)
        sep = np.where(rng.random(k) < 0.3, "-", "")
        tld = rng.choice(c.tlds, k)
        school = np.isin(np.array(b)[wb], ("academy", "college", "school"))
        edu = np.isin(tld, (".edu", ".ac.uk", ".ac.jp"))
        tld = np.where(edu & ~school, c.tlds[0], tld)  # only schools get academic TLDs
        candidates = [f"{a[i]}{s}{b[j]}{t}" for i, j, s, t in zip(wa, wb, sep, tld, strict=True)]
        names = list(dict.fromkeys(candidates))[:n]  # distinct, in drawn order
        if c.code == "US":  # a few small benign businesses on cheap TLDs, too
            names[40 : 40 + len(_CHEAP_BENIGN)] = _CHEAP_BENIGN
        return np.array(names, dtype=object)

    # -- people ---------------------------------------------------------------------------

    def sample_countries(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.choice(len(COUNTRIES), size=n, p=self.country_p)

    def names(
        self, rng: np.random.Generator, ci: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """First and last names (display, ASCII) for people of countries ``ci``."""
        n = len(ci)
        regions = np.empty(n, dtype=object)
        for k, c in enumerate(COUNTRIES):
            m = ci == k
            if m.any():
                regions[m] = _pick(rng, c.names, int(m.sum()))
        out = [np.empty(n, dtype=object) for _ in range(4)]
        for r in np.unique(regions):
            m = regions == r
            k = int(m.sum())
            fd, fa = self.first[r]
            ld, la = self.last[r]
            i, j = rng.integers(0, len(fd), k), rng.integers(0, len(ld), k)
            out[0][m], out[1][m], out[2][m], out[3][m] = fd[i], ld[j], fa[i], la[j]
        return out[0], out[1], out[2], out[3]

    def mail_domains(self, rng: np.random.Generator, ci: np.ndarray) -> np.ndarray:
        out = np.empty(len(ci), dtype=object)
        for k in np.unique(ci):
            m = ci == k
            d, p = self.domains[int(k)]
            out[m] = d[rng.choice(len(d), int(m.sum()), p=p)]
        return out

    # -- networks -------------------------------------------------------------------------

    def random_ips(self, rng: np.random.Generator, net: np.ndarray) -> np.ndarray:
        """Random host addresses inside the networks ``net`` (some IPv6 where offered)."""
        n = len(net)
        k = self.pfx_start[net] + (rng.random(n) * self.pfx_count[net]).astype(np.int64)
        ip = self.pfx[k] + "." + _obj(rng.integers(0, 256, n)) + "." + _obj(rng.integers(1, 255, n))
        v6 = rng.random(n) < self.v6_share[net]
        if v6.any():
            groups = [np.char.mod("%x", rng.integers(0, 65536, int(v6.sum()))) for _ in range(6)]
            tail = groups[0].astype(object)
            for g in groups[1:]:
                tail = tail + ":" + g.astype(object)
            ip[v6] = self.v6[net[v6]] + ":" + tail
        return ip

    def pick_nets(
        self,
        rng: np.random.Generator,
        ci: np.ndarray,
        table: dict[int, tuple[np.ndarray, np.ndarray]],
    ) -> np.ndarray:
        out = np.empty(len(ci), dtype=np.int64)
        for k in np.unique(ci):
            m = ci == k
            idx, p = table[int(k)]
            out[m] = idx[rng.choice(len(idx), int(m.sum()), p=p)]
        return out

    def cgnat_ips(self, rng: np.random.Generator, net: np.ndarray) -> np.ndarray:
        """Carrier addresses: a handful of shared CGNAT IPv4s per carrier, or a device IPv6."""
        out = self.random_ips(rng, net)  # IPv6 rows keep their unique device address
        v4 = ~pd.Series(out).str.contains(":").to_numpy()
        for k in np.unique(net[v4]):
            m = v4 & (net == k)
            ips, p = self.cgnat[int(k)]
            out[m] = ips[rng.choice(len(ips), int(m.sum()), p=p)]
        return out

    def access(
        self, rng: np.random.Generator, ci: np.ndarray, phone: np.ndarray, vpn_share: float = 0.02
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ip, asn, ip_country)``: home ISP, the phone's carrier, or now and then a VPN."""
        n = len(ci)
        cell = phone & (rng.random(n) < self.cell_share[ci])
        vpn = ~cell & (rng.random(n) < vpn_share)
        net = self.pick_nets(rng, ci, self.resi)
        if cell.any():
            net[cell] = self.pick_nets(rng, ci[cell], self.cell)
        if vpn.any():
            dc, p = self.dc
            net[vpn] = dc[rng.choice(len(dc), int(vpn.sum()), p=p)]
        ip = self.random_ips(rng, net)
        if cell.any():
            ip[cell] = self.cgnat_ips(rng, net[cell])
        return ip, self.asn[net], self.net_country[net]

    def subnets(
        self, rng: np.random.Generator, asns: tuple[int, ...], k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``k`` random /24s (``"a.b.c"``) in networks of ``asns`` and their network index."""
        nets = np.array([i for i, n in enumerate(NETWORKS) if n.asn in asns])
        net = nets[rng.integers(0, len(nets), k)]
        k_pfx = self.pfx_start[net] + rng.integers(0, 1 << 30, k) % self.pfx_count[net]
        return self.pfx[k_pfx] + "." + _obj(rng.integers(0, 256, k)), net

    # -- clients --------------------------------------------------------------------------

    def client(
        self, rng: np.random.Generator, ci: np.ndarray, phone: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(signup_flow, user_agent)``: desktop browsers, mobile web or the apps."""
        n = len(ci)
        ios = rng.random(n) < self.ios_share[ci]
        app = phone & (rng.random(n) < 0.65)
        platform = np.where(
            ~phone,
            "desktop",
            np.where(
                app,
                np.where(ios, "ios_app", "android_app"),
                np.where(ios, "ios_web", "android_web"),
            ),
        )
        ua = np.empty(n, dtype=object)
        for name, (strings, p) in _UAS.items():
            m = platform == name
            ua[m] = strings[rng.choice(len(strings), int(m.sum()), p=p)]
        flow = np.where(
            platform == "ios_app", "ios", np.where(platform == "android_app", "android", "web")
        )
        flow = flow.astype(object)
        api = rng.random(n) < 0.004  # partner integrations sign users up through the API
        flow[api] = "api"
        ua[api] = _PARTNER_UA
        return flow, ua


# ---------------------------------------------------------------------------------------------
# People: names, usernames, addresses.


def _username_candidates(
    rng: np.random.Generator, f: np.ndarray, last: np.ndarray, birth: tuple[int, int]
) -> tuple[list[np.ndarray], np.ndarray]:
    """Ordinary login-name styles for people named ``f last`` and their weights."""
    n = len(f)
    year = rng.integers(birth[0], birth[1] + 1, n)
    yy, y4 = _z(year % 100, 2), _obj(year)
    fi, li = _first_letter(f), _first_letter(last)
    nick = np.array(_NICKS, dtype=object)[rng.integers(0, len(_NICKS), n)]
    adj = np.array(_ADJECTIVES, dtype=object)[rng.integers(0, len(_ADJECTIVES), n)]
    noun = np.array(_NOUNS, dtype=object)[rng.integers(0, len(_NOUNS), n)]
    styles = [
        (f + "." + last, 0.2),
        (fi + last, 0.1),
        (f + "_" + last + yy, 0.07),
        (f + last, 0.08),
        (f + y4, 0.09),
        (f + "." + last + yy, 0.08),
        (nick + y4, 0.06),
        (last + "." + f, 0.05),
        (f + _obj(rng.integers(1, 1000, n)), 0.1),
        (f + li + _z(rng.integers(0, 100, n), 2), 0.05),
        (adj + noun + np.where(rng.random(n) < 0.5, _z(rng.integers(0, 100, n), 2), ""), 0.04),
        (f + "." + last + "." + y4, 0.03),
        (fi + "." + last, 0.05),
    ]
    w = np.array([s[1] for s in styles])
    return [s[0] for s in styles], w / w.sum()


def _usernames(
    rng: np.random.Generator, f: np.ndarray, last: np.ndarray, birth: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """``(email local part, username)``; the username is usually the local part."""
    n = len(f)
    cands, w = _username_candidates(rng, f, last, birth)
    stacked = np.stack(cands)
    local = stacked[rng.choice(len(cands), n, p=w), np.arange(n)]
    other = stacked[rng.choice(len(cands), n, p=w), np.arange(n)]
    username = np.where(rng.random(n) < 0.12, other, local)
    return local, username


def _display_names(rng: np.random.Generator, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    u = rng.random(len(first))
    full = first + " " + last
    out = np.where(u < 0.08, "", np.where(u < 0.13, first, full))
    initial = first + " " + _first_letter(last) + "."
    return np.where((u >= 0.13) & (u < 0.15), initial, out).astype(object)


def _people(
    rng: np.random.Generator,
    world: _World,
    ci: np.ndarray,
    birth: tuple[int, int] = (1958, 2008),
) -> dict[str, np.ndarray]:
    """Names, login names, mail domains and display names of people from countries ``ci``."""
    first_d, last_d, first_a, last_a = world.names(rng, ci)
    local, username = _usernames(rng, first_a, last_a, birth)
    domain = world.mail_domains(rng, ci)
    return {
        "first": first_d,
        "last": last_d,
        "first_a": first_a,
        "last_a": last_a,
        "local": local,
        "username": username,
        "domain": domain,
        "display_name": _display_names(rng, first_d, last_d),
    }


def _captcha_human(rng: np.random.Generator, n: int) -> np.ndarray:
    """Mostly high scores; some real people still score low."""
    low = rng.random(n) < 0.06
    return np.where(low, rng.beta(2.0, 4.0, n), rng.beta(9.0, 1.2, n)).astype(np.float64)


# ---------------------------------------------------------------------------------------------
# One day of one group.


@dataclass(frozen=True)
class _Day:
    world: _World
    seed: int
    index: int
    day: date
    sender_pool: dict[str, np.ndarray]

    def rng(self, name: str) -> np.random.Generator:
        """Stream for ``name`` on this day."""
        return np.random.default_rng([self.seed, _crc(name), self.index + 1])

    def static_rng(self, name: str) -> np.random.Generator:
        """Stream for ``name`` shared by all days (device pools, subnets, ...)."""
        return np.random.default_rng([self.seed, _crc(name), 0])


Cols = dict[str, np.ndarray]


def _signups_population(day: _Day, rng: np.random.Generator, n: int) -> Cols:
    """Ordinary users: the benign background, also the marketing crowd."""
    w = day.world
    ci = w.sample_countries(rng, n)
    p = _people(rng, w, ci)
    phone = rng.random(n) < w.phone_share[ci]
    ip, asn, ip_country = w.access(rng, ci, phone)
    flow, ua = w.client(rng, ci, phone)
    device = _rand_str(rng, n, 16, _HEX)
    # Families share a device (and then its browser and the household connection).
    donor = rng.integers(0, n, n)
    fam = rng.random(n) < 0.03
    for arr in (device, ua, flow, ip, asn, ip_country):
        arr[fam] = arr[donor[fam]]
    return {
        "t": _diurnal_ms(rng, w.tz[ci]),
        "email": p["local"] + "@" + p["domain"],
        "ip": ip,
        "username": p["username"],
        "display_name": p["display_name"],
        "ip_asn": asn,
        "ip_country": ip_country,
        "user_agent": ua,
        "device_id": device,
        "signup_flow": flow,
        "captcha_score": _captcha_human(rng, n),
    }


def _style_marketing_burst(day: _Day, spec: GroupSpec, rng: np.random.Generator, n: int) -> Cols:
    """Ordinary, diverse people answering a promo within the hour (benign)."""
    cols = _signups_population(day, rng, n)
    promo = int(rng.integers(1, 22)) * HOUR_MS + int(rng.integers(0, 4)) * 15 * 60_000
    # Responses decay after the promo goes out: exponential, truncated to the hour.
    scale = 12 * 60_000
    lag = -scale * np.log1p(-rng.random(n) * (1 - np.exp(-HOUR_MS / scale)))
    cols["t"] = (promo + lag).astype(np.int64)
    return cols


def _style_campus_nat(day: _Day, spec: GroupSpec, rng: np.random.Generator, n: int) -> Cols:
    """Students behind one university NAT /24 within two hours (benign)."""
    w = day.world
    prm = spec.params
    srng = day.static_rng(spec.name)
    uni = next(i for i, net in enumerate(NETWORKS) if net.kind == "edu")
    block = w.subnets(srng, (NETWORKS[uni].asn,), 1)[0][0]
    nat = np.array(
        [f"{block}.{h}" for h in srng.choice(np.arange(2, 254), prm["nat_ips"], False)],
        dtype=object,
    )
    us = int(np.flatnonzero(w.codes == "US")[0])
    # Mostly local students, some international ones.
    ci = np.where(rng.random(n) < 0.75, us, w.sample_countries(rng, n))
    p = _people(rng, w, ci, birth=(1999, 2008))
    edu = rng.random(n) < prm["edu_share"]
    local = p["local"].copy()
    # University logins: flast + digits for many students.
    student_id = _first_letter(p["first_a"]) + p["last_a"] + _z(rng.integers(0, 100, n), 2)
    local[edu] = np.where(rng.random(int(edu.sum())) < 0.5, student_id[edu], local[edu])
    domain = np.where(edu, f"students.{prm['university']}.edu", p["domain"])
    phone = rng.random(n) < 0.5
    flow, ua = w.client(rng, ci, phone)
    start = (15 + int(rng.integers(0, 6))) * HOUR_MS  # 10:00-16:00 US Eastern
    return {
        "t": (start + rng.beta(2, 2, n) * prm["window_hours"] * HOUR_MS).astype(np.int64),
        "email": local + "@" + domain,
        "ip": nat[rng.integers(0, len(nat), n)],
        "username": np.where(edu, local, p["username"]),
        "display_name": p["display_name"],
        "ip_asn": np.full(n, NETWORKS[uni].asn, dtype=np.int64),
        "ip_country": np.full(n, NETWORKS[uni].country, dtype=object),
        "user_agent": ua,
        "device_id": _rand_str(rng, n, 16, _HEX),
        "signup_flow": flow,
        "captcha_score": rng.beta(9.0, 1.2, n),
    }


def _mixed_names(rng: np.random.Generator, w: _World, n: int) -> tuple[np.ndarray, ...]:
    """Names from all regions, as bots draw them from a scraped list."""
    return w.names(rng, w.sample_countries(rng, n))


def _style_dc_burst(day: _Day, spec: GroupSpec, rng: np.random.Generator, n: int) -> Cols:
    """Hosting /24s, one rare UA build, ``<first><4 digits>``, a burst at a new hour daily."""
    w, prm = day.world, spec.params
    srng = day.static_rng(spec.name)
    blocks, nets = w.subnets(srng, prm["asns"], prm["subnets"])
    hour = int(srng.permutation(22)[day.index % 22])  # a different hour every day
    first_d, last_d, first_a, _ = _mixed_names(rng, w, n)
    local = first_a + _obj(rng.integers(1000, 10000, n))
    which = rng.integers(0, len(blocks), n)
    flow = np.where(rng.random(n) < prm["api_share"], "api", "web").astype(object)
    return {
        "t": _uniform_ms(rng, n, hour * HOUR_MS, prm["window_hours"] * HOUR_MS),
        "email": local + "@" + _pick(rng, prm["domains"], n),
        "ip": blocks[which] + "." + _obj(rng.integers(2, 255, n)),
        "username": local,
        "display_name": (first_d + " " + last_d).astype(object),
        "ip_asn": w.asn[nets[which]],
        "ip_country": w.net_country[nets[which]],
        "user_agent": np.full(n, prm["user_agent"], dtype=object),
        "device_id": _rand_str(rng, n, 16, _HEX),
        "signup_flow": flow,
        "captcha_score": _beta(rng, prm["captcha"], n),
    }


def _style_resi_proxy(day: _Day, spec: GroupSpec, rng: np.random.Generator, n: int) -> Cols:
    """Residential proxies abroad, ``<adj>_<noun><2 digits>``, a fixed device pool."""
    w, prm = day.world, spec.params
    srng = day.static_rng(spec.name)
    pool = _rand_str(srng, prm["device_pool"], 16, _HEX)
    countries = np.flatnonzero(np.isin(w.codes, prm["countries"]))
    ci = countries[rng.integers(0, len(countries), n)]
    net = w.pick_nets(rng, ci, w.resi)
    adj = np.array(_ADJECTIVES, dtype=object)[rng.integers(0, len(_ADJECTIVES), n)]
    noun = np.array(_NOUNS, dtype=object)[rng.integers(0, len(_NOUNS), n)]
    local = adj + "_" + noun + _z(rng.integers(0, 100, n), 2)
    uas = np.array(prm["user_agents"], dtype=object)
    names = np.array(prm["display_names"], dtype=object)
    return {
        "t": _uniform_ms(rng, n, 0, DAY_MS),
        "email": local + "@" + _pick(rng, prm["domains"], n),
        "ip": w.random_ips(rng, net),
        "username": local,
        "display_name": names[rng.integers(0, len(names), n)],
        "ip_asn": w.asn[net],
        "ip_country": w.net_country[net],
        "user_agent": uas[rng.integers(0, len(uas), n)],
        "device_id": pool[rng.integers(0, len(pool), n)],
        "signup_flow": np.full(n, "web", dtype=object),
        "captcha_score": _beta(rng, prm["captcha"], n),
    }


def _style_low_slow(day: _Day, spec: GroupSpec, rng: np.random.Generator, n: int) -> Cols:
    """Consonant soup on daily-rotating cheap-TLD domains, evenly over the day."""
    w, prm = day.world, spec.params
    k = prm["domains_per_day"]
    # New throwaway domains every day (the visible signal the actor rotates).
    domains = _pronounceable(rng, k, 3) + rng.choice(np.array(prm["tlds"], dtype=object), k)
    nets = np.array([i for i, net in enumerate(NETWORKS) if net.asn in prm["asns"]])
    net = nets[rng.integers(0, len(nets), n)]
    local = _consonant_soup(rng, n, *prm["name_len"])
    # An even cadence over 24 hours.
    t = (np.arange(n) + rng.uniform(-0.35, 0.35, n)) * (DAY_MS / n)
    uas = np.array(prm["user_agents"], dtype=object)
    display = np.where(rng.random(n) < 0.6, "", _consonant_soup(rng, n, 5, 7)).astype(object)
    return {
        "t": np.clip(t, 0, DAY_MS - 1).astype(np.int64),
        "email": local + "@" + domains[rng.integers(0, k, n)],
        "ip": w.random_ips(rng, net),
        "username": local,
        "display_name": np.array([s.capitalize() for s in display], dtype=object),
        "ip_asn": w.asn[net],
        "ip_country": w.net_country[net],
        "user_agent": uas[rng.integers(0, len(uas), n)],
        "device_id": _rand_str(rng, n, 16, _HEX),
        "signup_flow": np.full(n, "web", dtype=object),
        "captcha_score": _beta(rng, prm["captcha"], n),
    }


def _style_mobile_farm(day: _Day, spec: GroupSpec, rng: np.random.Generator, n: int) -> Cols:
    """A phone farm behind its carrier's shared CGNAT exits, one old app build."""
    w, prm = day.world, spec.params
    srng = day.static_rng(spec.name)
    carrier = next(i for i, net in enumerate(NETWORKS) if net.asn == prm["carrier_asn"])
    shared, _ = w.cgnat[carrier]
    ips = srng.choice(shared, prm["cgnat_ips"], replace=False)  # the benign users' exits too
    pool = _rand_str(srng, prm["device_pool"], 16, _HEX)
    ci = np.full(n, int(np.flatnonzero(w.codes == prm["country"])[0]))
    first_d, last_d, first_a, last_a = w.names(rng, ci)
    local = first_a + "." + last_a + _z(rng.integers(0, 100, n), 2)
    lo, hi = prm["local_hours"]
    start = (lo - COUNTRIES[ci[0]].tz) * HOUR_MS
    return {
        "t": np.mod(_uniform_ms(rng, n, 0, (hi - lo) * HOUR_MS) + int(start), DAY_MS),
        "email": local + "@" + _pick(rng, prm["domains"], n),
        "ip": ips[rng.integers(0, len(ips), n)],
        "username": local,
        "display_name": (first_d + " " + last_d).astype(object),
        "ip_asn": np.full(n, NETWORKS[carrier].asn, dtype=np.int64),
        "ip_country": np.full(n, NETWORKS[carrier].country, dtype=object),
        "user_agent": np.full(n, prm["user_agent"], dtype=object),
        "device_id": pool[rng.integers(0, len(pool), n)],
        "signup_flow": np.full(n, "android", dtype=object),
        "captcha_score": _beta(rng, prm["captcha"], n),
    }


def _common_uas(platform: str, min_share: float) -> tuple[np.ndarray, np.ndarray]:
    """User agents of ``platform`` used by at least ``min_share`` of it, and their weights."""
    strings, p = _UAS[platform]
    keep = p >= min_share
    return strings[keep], p[keep] / p[keep].sum()


def _cadence_times(
    rng: np.random.Generator, n: int, period_ms: float, jitter_ms: float
) -> np.ndarray:
    """One event every ``period_ms`` (± ``jitter_ms``) from a random start within the day.

    At scales where ``n`` periods would not fit, the period shrinks to fit 95% of the day.
    """
    period = min(period_ms, 0.95 * DAY_MS / max(n, 1))
    jitter = min(jitter_ms, period / 4)  # gaps stay positive and regular
    gaps = period + rng.uniform(-jitter, jitter, n)
    offsets = np.r_[0.0, np.cumsum(gaps[:-1])]
    start = rng.uniform(0, DAY_MS - 1 - offsets[-1])
    return np.clip(start + offsets, 0, DAY_MS - 1).astype(np.int64)


def _style_cadence_pool(day: _Day, spec: GroupSpec, rng: np.random.Generator, n: int) -> Cols:
    """Ordinary-looking people from a fixed pool of devices, one signup every few minutes.

    Names, login names, display names and captcha scores are drawn exactly as the benign
    population's; mail is on popular domains, IPs are home ISPs of a few countries, browsers
    are common desktop builds. Only the device pool (the same on every day, each device with
    its own browser) and the fixed cadence over a long stretch of the day give it away.
    """
    w, prm = day.world, spec.params
    srng = day.static_rng(spec.name)
    pool = _rand_str(srng, prm["device_pool"], 16, _HEX)
    strings, p = _common_uas("desktop", prm["ua_min_share"])
    pool_ua = strings[srng.choice(len(strings), prm["device_pool"], p=p)]
    countries = np.flatnonzero(np.isin(w.codes, prm["countries"]))
    ci = countries[rng.integers(0, len(countries), n)]
    people = _people(rng, w, ci)
    net = w.pick_nets(rng, ci, w.resi)
    dev = rng.integers(0, len(pool), n)
    t = _cadence_times(rng, n, prm["period_s"] * 1000, prm["jitter_s"] * 1000)
    return {
        "t": t,
        "email": people["local"] + "@" + _pick(rng, prm["domains"], n),
        "ip": w.random_ips(rng, net),
        "username": people["username"],
        "display_name": people["display_name"],
        "ip_asn": w.asn[net],
        "ip_country": w.net_country[net],
        "user_agent": pool_ua[dev],
        "device_id": pool[dev],
        "signup_flow": np.full(n, "web", dtype=object),
        "captcha_score": _captcha_human(rng, n),
    }


def _dotted(base: str, mask: int) -> str:
    """``base`` with a '.' in each gap between letters whose bit is set in ``mask``."""
    return base[0] + "".join(("." if mask >> i & 1 else "") + c for i, c in enumerate(base[1:]))


def _alias_bases(
    srng: np.random.Generator, w: _World, prm: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """The farm's mailboxes (``firstlast``, letters only) and their owners' display names."""
    countries = np.flatnonzero(np.isin(w.codes, prm["base_countries"]))
    ci = countries[srng.integers(0, len(countries), 400)]
    first_d, last_d, first_a, last_a = w.names(srng, ci)
    lo, hi = prm["base_len"]
    bases: dict[str, str] = {}
    for fd, ld, fa, la in zip(first_d, last_d, first_a, last_a, strict=True):
        base = fa + la
        if lo <= len(base) <= hi and base.isalpha() and base not in bases:
            bases[base] = f"{fd} {ld}"
    if len(bases) < prm["bases"]:  # pragma: no cover - 400 draws are plenty
        raise RuntimeError("too few alias base mailboxes")
    chosen = list(bases)[: prm["bases"]]
    return np.array(chosen, dtype=object), np.array([bases[b] for b in chosen], dtype=object)


def _style_alias_farm(day: _Day, spec: GroupSpec, rng: np.random.Generator, n: int) -> Cols:
    """Plus-tagged and dotted variants of a few gmail mailboxes, the same ones every day.

    ``j.o.h.n.smith+k3x9``, ``johnsmith+promo17`` and ``jo.hnsm.ith`` all deliver to
    ``johnsmith@gmail.com``. Every variant has a '+' tag or at least two dots, and bases are
    letters only: no other group writes such an address, so none is renamed on a clash and
    every variant still canonicalises to its base. Dots-only patterns come from a fixed
    per-base permutation, ``dotted_per_day`` of them a day, so no later day repeats one (once
    they run out, rows get a tag instead). IP ranges move daily; the mailboxes stay.
    """
    w, prm = day.world, spec.params
    srng = day.static_rng(spec.name)
    bases, owners = _alias_bases(srng, w, prm)
    k, per_day = len(bases), prm["dotted_per_day"]
    patterns = []
    for base in bases:
        masks = np.array([m for m in range(1 << (len(base) - 1)) if m.bit_count() >= 2])
        patterns.append(srng.permutation(masks))
    b = rng.integers(0, k, n)
    wants_dots = rng.random(n) < prm["dotted_share"]
    # Tagged variants: some without dots, others with dots in random gaps.
    dot_p = np.where(rng.random(n) < 0.4, 0.0, rng.uniform(0.1, 0.5, n))
    gap_draws = rng.random((n, max(len(x) for x in bases) - 1))
    words = np.array(prm["tag_words"], dtype=object)
    tags = np.where(
        rng.random(n) < 0.5,
        _rand_str_var(rng, n, 3, 6, _ALNUM),
        words[rng.integers(0, len(words), n)] + _obj(rng.integers(1, 1000, n)),
    )
    local = np.empty(n, dtype=object)
    used = np.zeros(k, dtype=np.int64)
    for i in range(n):
        base = bases[b[i]]
        slot = day.index * per_day + used[b[i]]
        if wants_dots[i] and used[b[i]] < per_day and slot < len(patterns[b[i]]):
            local[i] = _dotted(base, int(patterns[b[i]][slot]))
            used[b[i]] += 1
        else:
            gaps = gap_draws[i, : len(base) - 1] < dot_p[i]
            mask = int((gaps * (1 << np.arange(len(base) - 1))).sum())
            local[i] = _dotted(base, mask) + "+" + tags[i]
    domain = np.where(rng.random(n) < prm["googlemail_share"], "googlemail.com", "gmail.com")
    blocks, nets = w.subnets(rng, prm["asns"], prm["subnets"])  # new ranges every day
    which = rng.integers(0, len(blocks), n)
    username = np.where(
        rng.random(n) < 0.5,
        bases[b] + _obj(rng.integers(10, 1000, n)),
        _rand_str_var(rng, n, 8, 12, _ALNUM),
    )
    first_d, last_d, _, _ = _mixed_names(rng, w, n)
    u = rng.random(n)
    display = np.where(u < 0.4, owners[b], np.where(u < 0.7, "", first_d + " " + last_d))
    uas = np.array(prm["user_agents"], dtype=object)
    start = rng.uniform(0, 24 - prm["window_hours"]) * HOUR_MS
    return {
        "t": _uniform_ms(rng, n, start, prm["window_hours"] * HOUR_MS),
        "email": local + "@" + domain.astype(object),
        "ip": blocks[which] + "." + _obj(rng.integers(2, 255, n)),
        "username": username,
        "display_name": display.astype(object),
        "ip_asn": w.asn[nets[which]],
        "ip_country": w.net_country[nets[which]],
        "user_agent": uas[rng.integers(0, len(uas), n)],
        "device_id": _rand_str(rng, n, 16, _HEX),
        "signup_flow": np.full(n, "web", dtype=object),
        "captcha_score": _beta(rng, prm["captcha"], n),
    }


# -- senders ----------------------------------------------------------------------------------


def _sender_pool(world: _World, seed: int, size: int) -> dict[str, np.ndarray]:
    """People who send ordinary mail; the same people on every day, with varying activity."""
    rng = np.random.default_rng([seed, _crc("population:sender_pool")])
    ci = world.sample_countries(rng, size)
    p = _people(rng, world, ci)
    ip, _, _ = world.access(rng, ci, np.zeros(size, dtype=bool))
    return {
        "ci": ci,
        "email": p["local"] + "@" + p["domain"],
        "first": p["first"],
        "home_ip": ip,
        "carrier": world.pick_nets(rng, ci, world.cell),
        "phone": rng.random(size) < world.phone_share[ci],
        "mailer": _pick(rng, _MAILERS, size),
        "activity": rng.gamma(2.0, 1.0, size),
    }


def _benign_urls(rng: np.random.Generator, n: int) -> np.ndarray:
    kinds = [
        "https://www.youtube.com/watch?v=" + _rand_str(rng, n, 11, _B64),
        "https://docs.google.com/document/d/" + _rand_str(rng, n, 44, _B64) + "/edit",
        "https://drive.google.com/file/d/" + _rand_str(rng, n, 33, _B64) + "/view",
        "https://www.amazon.com/dp/B0" + _rand_str(rng, n, 8, "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"),
        "https://maps.app.goo.gl/" + _rand_str(rng, n, 17, _B64[:62]),
        "https://us02web.zoom.us/j/" + _rand_str(rng, n, 11, "0123456789"),
    ]
    return np.stack(kinds)[rng.integers(0, len(kinds), n), np.arange(n)]


def _personal_text(
    rng: np.random.Generator, lang: np.ndarray, first: np.ndarray, mailer: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Subjects and short bodies of personal mail in each sender's language."""
    n = len(lang)
    subject = np.empty(n, dtype=object)
    greet = np.empty(n, dtype=object)
    line = np.empty(n, dtype=object)
    signoff = np.empty(n, dtype=object)
    for code, text in _TEXT.items():
        m = lang == code
        k = int(m.sum())
        if not k:
            continue
        phrases = np.array(
            [t.format(t=topic) for t in text["templates"] for topic in text["topics"]], dtype=object
        )
        subject[m] = phrases[rng.integers(0, len(phrases), k)]
        for out, key in ((greet, "greetings"), (line, "lines"), (signoff, "signoffs")):
            options = np.array(text[key], dtype=object)
            out[m] = options[rng.integers(0, len(options), k)]
    url = np.where(rng.random(n) < 0.15, "\n" + _benign_urls(rng, n), "")
    iphone = np.where(mailer == "iPhone Mail (22B83)", "\n\nSent from my iPhone", "")
    body = greet + "\n\n" + line + url + "\n\n" + signoff + "\n" + first + iphone
    return subject, body


def _senders_population(day: _Day, rng: np.random.Generator, n: int) -> Cols:
    w, pool = day.world, day.sender_pool
    size = len(pool["email"])
    active = rng.random(size) < 0.6
    weight = pool["activity"] * active * rng.gamma(4.0, 0.25, size)
    who = rng.choice(size, n, p=weight / weight.sum())
    ci = pool["ci"][who]
    # From the phone over the carrier now and then; otherwise from home.
    on_cell = pool["phone"][who] & (rng.random(n) < 0.3)
    ip = pool["home_ip"][who].copy()
    if on_cell.any():
        ip[on_cell] = w.cgnat_ips(rng, pool["carrier"][who][on_cell])
    rc = rng.choice(np.arange(1, 6), n, p=[0.62, 0.18, 0.1, 0.06, 0.04]).astype(np.int64)
    mailer = pool["mailer"][who]
    subject, body = _personal_text(rng, w.lang[ci], pool["first"][who], mailer)
    return {
        "t": _diurnal_ms(rng, w.tz[ci]),
        "sender": pool["email"][who],
        "sender_ip": ip,
        "recipient_count": rc,
        "recipient_domains": _join_domains(rng, w.recipient_domains, w.recipient_p, rc, 5),
        "subject": subject,
        "body": body,
        "x_mailer": mailer,
        "bounced": rng.random(n) < 0.008,
        "complained": rng.random(n) < 0.0008,
    }


def _fill_template(templates: Any, which: np.ndarray, number: np.ndarray) -> np.ndarray:
    """``templates[which]`` with ``{n}`` replaced by ``number``, vectorised."""
    head = np.array([t.split("{n}", 1)[0] for t in templates], dtype=object)
    tail = np.array([t.split("{n}", 1)[1] for t in templates], dtype=object)
    return head[which] + number + tail[which]


def _spread(rng: np.random.Generator, n_items: int, n: int) -> np.ndarray:
    """Assign ``n`` messages to ``n_items`` senders, every sender at least once."""
    base = np.arange(min(n_items, n))
    return rng.permutation(np.r_[base, rng.integers(0, n_items, n - len(base))])


def _style_spam_blast(day: _Day, spec: GroupSpec, rng: np.random.Generator, n: int) -> Cols:
    """Parcel spam: look-alike sender domains, PHPMailer, two hosting /24s, waves."""
    w, prm = day.world, spec.params
    srng = day.static_rng(spec.name)
    blocks, _ = w.subnets(srng, prm["asns"], 2)
    k = max(1, round(n / prm["per_sender"]))
    domains = rng.choice(
        np.array(prm["sender_domains"], dtype=object), prm["domains_per_day"], False
    )
    senders = (
        _pronounceable(rng, k, 3)
        + _z(rng.integers(0, 100, k), 2)
        + "@"
        + domains[rng.integers(0, len(domains), k)]
    )
    who = _spread(rng, k, n)
    # The landing pages move daily; the shape of the URL stays.
    landing = "http://parcel-track-" + _rand_str(rng, 2, 4, _ALNUM) + ".top/"
    number = _obj(rng.integers(10000, 100000, n))
    subject = _fill_template(prm["subjects"], rng.integers(0, len(prm["subjects"]), n), number)
    url = landing[rng.integers(0, 2, n)] + _rand_str(rng, n, 10, _ALNUM)
    body = (
        "Dear customer,\n\nWe could not deliver your parcel #"
        + number
        + ". Confirm your delivery details within 48 hours: "
        + url
        + "\n\nCustomer Service"
    )
    lo, hi = prm["recipients"]
    rc = rng.integers(lo, hi + 1, n).astype(np.int64)
    waves = np.sort(rng.choice(23, prm["waves"], replace=False)) * HOUR_MS
    t = waves[rng.integers(0, len(waves), n)] + rng.random(n) * 45 * 60_000
    pop = np.array([d for d, _ in _POPULAR], dtype=object)
    pop_p = np.array([p for _, p in _POPULAR])
    return {
        "t": t.astype(np.int64),
        "sender": senders[who],
        "sender_ip": blocks[rng.integers(0, 2, n)] + "." + _obj(rng.integers(2, 255, n)),
        "recipient_count": rc,
        "recipient_domains": _join_domains(rng, pop, pop_p / pop_p.sum(), rc, 6),
        "subject": subject,
        "body": body,
        "x_mailer": np.full(n, prm["x_mailer"], dtype=object),
        "bounced": rng.random(n) < prm["bounce"],
        "complained": rng.random(n) < prm["complaint"],
    }


def _style_invoice_phish(day: _Day, spec: GroupSpec, rng: np.random.Generator, n: int) -> Cols:
    """Invoice lures from taken-over freemail accounts over residential IPs."""
    w, prm = day.world, spec.params
    k = max(1, round(n / prm["per_sender"]))
    ci = w.sample_countries(rng, k)
    people = _people(rng, w, ci)  # ordinary-looking accounts, taken over
    senders = people["local"] + "@" + _pick(rng, FREEMAIL, k)
    who = _spread(rng, k, n)
    net = w.pick_nets(rng, w.sample_countries(rng, n), w.resi)
    companies = np.array(prm["companies"], dtype=object)[rng.integers(0, len(prm["companies"]), n)]
    inv = "INV-" + _obj(rng.integers(10000, 100000, n))
    url_domains = rng.choice(np.array(prm["url_domains"], dtype=object), 2, replace=False)
    url = "https://" + url_domains[rng.integers(0, 2, n)] + "/view/" + _rand_str(rng, n, 12, _ALNUM)
    name = (people["first"] + " " + people["last"])[who]
    body = (
        "Hello,\n\nPlease find invoice "
        + inv
        + " from "
        + companies
        + " for your review. You can view and download it here: "
        + url
        + "\n\nKind regards,\n"
        + name
        + "\nAccounts Receivable, "
        + companies
    )
    lo, hi = prm["recipients"]
    rc = rng.integers(lo, hi + 1, n).astype(np.int64)
    corp = w.corporate["US"]  # the targets: small businesses
    return {
        "t": _uniform_ms(rng, n, 8 * HOUR_MS, 12 * HOUR_MS),
        "sender": senders[who],
        "sender_ip": w.random_ips(rng, net),
        "recipient_count": rc,
        "recipient_domains": _join_domains(rng, corp, np.full(len(corp), 1 / len(corp)), rc, 6),
        "subject": "Invoice " + inv + " from " + companies,
        "body": body,
        "x_mailer": np.full(n, None, dtype=object),
        "bounced": rng.random(n) < prm["bounce"],
        "complained": rng.random(n) < prm["complaint"],
    }


def _style_newsletter(day: _Day, spec: GroupSpec, rng: np.random.Generator, n: int) -> Cols:
    """A few legitimate newsletters, batched at each brand's fixed hour (benign)."""
    w, prm = day.world, spec.params
    srng = day.static_rng(spec.name)
    brands = prm["brands"]
    hours = srng.integers(6, 16, len(brands))  # each brand mails at its own fixed hour
    share = srng.dirichlet(np.full(len(brands), 3.0))
    b = rng.choice(len(brands), n, p=share)
    when = f"{day.day:%b} {day.day.day}"
    names = np.array([x[0] for x in brands], dtype=object)
    senders = np.array([x[1] for x in brands], dtype=object)
    subjects = np.array([x[2].format(date=when) for x in brands], dtype=object)
    site = np.array(["https://www." + s.split("@")[1] for s in senders], dtype=object)[b]
    body = (
        names[b]
        + " – "
        + when
        + "\n\nThis week's top stories, picked for you.\nRead online: "
        + site
        + "/newsletter/"
        + day.day.isoformat()
        + "?utm_source=email&utm_medium=newsletter\n\nUnsubscribe: "
        + site
        + "/unsubscribe?u="
        + _rand_str(rng, n, 16, _ALNUM)
    )
    lo, hi = prm["recipients"]
    rc = rng.integers(lo, hi + 1, n).astype(np.int64)
    subnets = np.array(prm["subnets"], dtype=object)
    return {
        "t": (hours[b] * HOUR_MS + rng.random(n) * 30 * 60_000).astype(np.int64),
        "sender": senders[b],
        "sender_ip": subnets[b % len(subnets)] + "." + _obj(rng.integers(2, 255, n)),
        "recipient_count": rc,
        "recipient_domains": _join_domains(rng, w.recipient_domains, w.recipient_p, rc, 8),
        "subject": subjects[b],
        "body": body,
        "x_mailer": np.full(n, None, dtype=object),
        "bounced": rng.random(n) < 0.02,
        "complained": rng.random(n) < 0.002,
    }


def _style_transactional(day: _Day, spec: GroupSpec, rng: np.random.Generator, n: int) -> Cols:
    """Shops' order mail: templated subjects with random numbers (benign)."""
    w, prm = day.world, spec.params
    shops = prm["shops"]
    s = rng.choice(len(shops), n)
    shop = np.array([x[0] for x in shops], dtype=object)[s]
    domain = np.array([x[1] for x in shops], dtype=object)[s]
    order = _obj(rng.integers(10000, 100000, n))
    # Every (template, shop) pair, then the order number.
    filled = [t.replace("{shop}", name) for t in prm["subjects"] for name, _ in shops]
    which = rng.integers(0, len(prm["subjects"]), n) * len(shops) + s
    subject = _fill_template(filled, which, order)
    first, _, _, _ = w.names(rng, w.sample_countries(rng, n))
    body = (
        "Hi "
        + first
        + ",\n\nGood news – your order #"
        + order
        + " is on its way. Track it here: https://www."
        + domain
        + "/orders/"
        + order
        + "/track\n\nThanks for shopping with "
        + shop
        + "."
    )
    subnets = np.array(prm["subnets"], dtype=object)
    rc = np.ones(n, dtype=np.int64)
    return {
        "t": _diurnal_ms(rng, np.full(n, -5.0)),
        "sender": "noreply@" + domain,
        "sender_ip": subnets[rng.integers(0, len(subnets), n)]
        + "."
        + _obj(rng.integers(2, 255, n)),
        "recipient_count": rc,
        "recipient_domains": _join_domains(rng, w.recipient_domains, w.recipient_p, rc, 1),
        "subject": subject,
        "body": body,
        "x_mailer": np.full(n, None, dtype=object),
        "bounced": rng.random(n) < 0.015,
        "complained": rng.random(n) < 0.001,
    }


_STYLES: dict[str, Callable[[_Day, GroupSpec, np.random.Generator, int], Cols]] = {
    "dc_burst": _style_dc_burst,
    "resi_proxy": _style_resi_proxy,
    "low_slow": _style_low_slow,
    "mobile_farm": _style_mobile_farm,
    "cadence_pool": _style_cadence_pool,
    "alias_farm": _style_alias_farm,
    "campus_nat": _style_campus_nat,
    "marketing_burst": _style_marketing_burst,
    "spam_blast": _style_spam_blast,
    "invoice_phish": _style_invoice_phish,
    "newsletter": _style_newsletter,
    "transactional": _style_transactional,
}


# ---------------------------------------------------------------------------------------------
# Assembly.


@dataclass
class SyntheticData:
    """Generated events and their labels.

    Attributes
    ----------
    signups
        Signup rows in the ``SIGNUPS`` contract, sorted by ``created_at`` then ``account_id``.
    senders
        Message rows in the ``SENDERS`` contract, sorted by ``sent_at`` then ``message_id``.
    signup_labels, sender_labels
        One row per event, in the same order: the id (``account_id``; ``message_id`` and
        ``sender``), ``day``, ``label`` (``benign``, ``campaign`` or ``lookalike``), ``group``
        (``population`` for ordinary users) and ``style``.
    days
        The generated dates, ``YYYY-MM-DD``.
    """

    signups: pd.DataFrame
    senders: pd.DataFrame
    signup_labels: pd.DataFrame
    sender_labels: pd.DataFrame
    days: list[str]


def _counts(day: _Day, kind: str, total: int) -> dict[str, int]:
    """Rows per group on ``day``; shares jitter a few percent from day to day."""
    out = {}
    for spec in GROUPS:
        if spec.kind != kind:
            continue
        jitter = day.rng(f"{spec.name}:count").uniform(0.93, 1.07)
        out[spec.name] = max(5, round(spec.share * total * jitter))
    if sum(out.values()) >= total:
        raise ValueError(f"{kind} per day ({total}) too small for the planted groups")
    return out


def _dedupe(address: np.ndarray, owner: np.ndarray, priority: np.ndarray) -> np.ndarray:
    """Make each address belong to one owner: later owners get digits appended.

    Earlier days win, so generating more days never changes the earlier ones; within a day
    campaigns keep their exact templates (lowest ``priority`` wins) and ordinary people whose
    address is taken get a suffix, as they would at the provider. ``owner`` holds one distinct
    key per row.
    """
    address = address.copy()
    for attempt in range(20):
        frame = pd.DataFrame({"a": address, "o": owner, "p": priority})
        first = (
            frame.sort_values(["p"], kind="stable").groupby("a", sort=False)["o"].transform("first")
        )
        clash = (frame["o"] != first.reindex(frame.index)).to_numpy()
        if not clash.any():
            return address
        pairs = frame.loc[clash, ["a", "o"]].drop_duplicates()
        # The suffix depends on the address and owner only, not on what else clashed.
        suffix = np.array(
            [str(_crc(f"{a}|{o}|{attempt}") % 999 + 1) for a, o in pairs.itertuples(index=False)],
            dtype=object,
        )
        parts = pairs["a"].str.split("@", n=1, expand=True)
        renamed = pd.Series(
            (parts[0].to_numpy(dtype=object) + suffix + "@" + parts[1].to_numpy(dtype=object)),
            index=pd.MultiIndex.from_frame(pairs),
        )
        keys = pd.MultiIndex.from_arrays([address[clash], owner[clash]])
        address[clash] = renamed.reindex(keys).to_numpy(dtype=object)
    raise RuntimeError("could not make addresses unique")  # pragma: no cover


_PANDAS_STR = int(pd.__version__.split(".")[0]) >= 3
_PRIORITY = {"campaign": 0, "lookalike": 1, "benign": 2}
_YIELD_RANK = 3  # after everyone else on the same day
_YIELDING = [g.name for g in GROUPS if g.yields_addresses]


def _assemble(
    parts: list[tuple[Cols, str, str, str, str]], kind: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Concatenate day parts into a contract frame and its labels (ids assigned in time order)."""
    k = SIGNUPS if kind == "signups" else SENDERS
    frames = []
    for cols, day_str, label, group, style in parts:
        f = pd.DataFrame(cols)
        f["_day"] = day_str
        f["_label"], f["_group"], f["_style"] = label, group, style
        f["_row"] = np.arange(len(f))
        frames.append(f)
    df = pd.concat(frames, ignore_index=True)
    start = pd.to_datetime(df["_day"].to_numpy(), utc=True).as_unit("ns")
    ts = pd.Series(start + pd.to_timedelta(df["t"].to_numpy(), unit="ms"), index=df.index)
    df[k.time_column] = ts.dt.as_unit("ns")
    df = df.sort_values([k.time_column], kind="stable").reset_index(drop=True)
    prefix = "acct-" if kind == "signups" else "msg-"
    df[k.id_column] = prefix + pd.Series(np.arange(len(df))).astype(str).str.zfill(9)
    labels_arr = df["_label"].to_numpy(dtype=object)
    day_rank = pd.factorize(df["_day"], sort=True)[0]
    rank = np.array([_PRIORITY[x] for x in labels_arr])
    rank[np.isin(df["_group"].to_numpy(dtype=object), _YIELDING)] = _YIELD_RANK
    priority = day_rank * 10 + rank
    if kind == "signups":
        old = df["email"].to_numpy(dtype=object)
        # Owners are keyed within their own group and day, so a new group shifting the
        # global row order does not change the suffix another group's clash gets.
        owner = (
            df["_group"].to_numpy(dtype=object)
            + "|"
            + df["_day"].to_numpy(dtype=object)
            + "|"
            + df["_row"].astype(str).to_numpy(dtype=object)
        )
        new = _dedupe(old, owner, priority)
        old_local = np.array([a.split("@", 1)[0] for a in old], dtype=object)
        new_local = np.array([a.split("@", 1)[0] for a in new], dtype=object)
        user = df["username"].to_numpy(dtype=object)
        df["email"] = new
        df["username"] = np.where(user == old_local, new_local, user)
    else:
        # A campaign's sender belongs to one day; a benign sender to its group on all days.
        owner = df["_group"].to_numpy(dtype=object) + np.where(
            labels_arr == "campaign", "|" + df["_day"].to_numpy(dtype=object), ""
        )
        df["sender"] = _dedupe(df["sender"].to_numpy(dtype=object), owner, priority)
    df = df.sort_values([k.time_column, k.id_column], kind="stable").reset_index(drop=True)
    events = df[[c.name for c in k.columns]].copy()
    label_cols = [k.id_column] + (["sender"] if kind == "senders" else [])
    labels = df[label_cols].copy()
    labels["day"] = df["_day"]
    labels["label"] = df["_label"]
    labels["group"] = df["_group"]
    labels["style"] = df["_style"]
    return _typed(events, kind), labels


def _typed(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Cast to the contract's dtypes."""
    k = SIGNUPS if kind == "signups" else SENDERS
    for c in k.columns:
        if c.type == "integer":
            df[c.name] = df[c.name].astype(np.int64)
        elif c.type == "float":
            df[c.name] = df[c.name].astype(np.float64)
        elif c.type == "boolean":
            df[c.name] = df[c.name].astype(bool)
        elif df[c.name].dtype == object:
            # Parts without any value (all None) came in as objects: one missing marker, and
            # pandas' own string dtype where pandas >= 3 would infer it anyway.
            col = df[c.name].where(df[c.name].notna(), None)
            df[c.name] = col.astype("str") if _PANDAS_STR else col
    return df


def generate(
    *,
    days: int = 2,
    seed: int = 0,
    signups_per_day: int = 20_000,
    messages_per_day: int = 40_000,
    start: str = "2026-11-01",
) -> SyntheticData:
    """Generate ``days`` days of signups and messages with planted campaigns.

    Parameters
    ----------
    days
        Number of consecutive UTC days, starting at ``start``.
    seed
        Seed of every random stream; the same seed gives identical frames.
    signups_per_day, messages_per_day
        Total rows per day: benign population, look-alike crowds and campaigns together
        (campaigns are ~15% of signups and ~11.5% of messages, see :data:`GROUPS`).
    start
        First date, ``YYYY-MM-DD``.

    Returns
    -------
    SyntheticData
        Events in the input contracts and their labels.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    first = datetime.strptime(start, "%Y-%m-%d").date()
    world = _World(seed)
    pool = _sender_pool(world, seed, max(50, messages_per_day // 2))
    signup_parts: list[tuple[Cols, str, str, str, str]] = []
    sender_parts: list[tuple[Cols, str, str, str, str]] = []
    dates = []
    for i in range(days):
        d = first + timedelta(days=i)
        ds = d.isoformat()
        dates.append(ds)
        day = _Day(world, seed, i, d, pool)
        for kind, total, parts, population in (
            ("signups", signups_per_day, signup_parts, _signups_population),
            ("senders", messages_per_day, sender_parts, _senders_population),
        ):
            counts = _counts(day, kind, total)
            n_benign = total - sum(counts.values())
            log.debug("%s %s: %d benign, %s", ds, kind, n_benign, counts)
            parts.append(
                (
                    population(day, day.rng(f"population:{kind}"), n_benign),
                    ds,
                    "benign",
                    "population",
                    "population",
                )
            )
            for spec in GROUPS:
                if spec.kind != kind:
                    continue
                cols = _STYLES[spec.style](day, spec, day.rng(spec.name), counts[spec.name])
                parts.append((cols, ds, spec.label, spec.name, spec.style))
    signups, signup_labels = _assemble(signup_parts, "signups")
    senders, sender_labels = _assemble(sender_parts, "senders")
    log.info(
        "generated %d signups and %d messages over %d days (seed %d)",
        len(signups),
        len(senders),
        days,
        seed,
    )
    return SyntheticData(signups, senders, signup_labels, sender_labels, dates)


_EXT = {"parquet": "parquet", "csv": "csv", "jsonl": "jsonl"}


def _write(df: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        df.to_parquet(path, index=False)
    elif fmt == "csv":
        df.to_csv(path, index=False)
    else:
        df.to_json(path, orient="records", lines=True, date_format="iso", date_unit="ms")


def write_synthetic(
    data: SyntheticData, out_dir: str | Path, fmt: str = "parquet"
) -> dict[str, list[Path]]:
    """Write one file per day and kind, plus the labels.

    Parameters
    ----------
    data
        Output of :func:`generate`.
    out_dir
        Directory; ``signups/``, ``senders/`` and ``labels/`` are created under it.
    fmt
        ``parquet``, ``csv`` or ``jsonl`` for the event files (labels are always Parquet).

    Returns
    -------
    dict
        ``{"signups": [paths by day], "senders": [paths by day], "labels": [signups, senders]}``.
    """
    if fmt not in _EXT:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(_EXT)}")
    out = Path(out_dir)
    paths: dict[str, list[Path]] = {"signups": [], "senders": [], "labels": []}
    for kind, frame in (("signups", data.signups), ("senders", data.senders)):
        k = SIGNUPS if kind == "signups" else SENDERS
        folder = out / kind
        folder.mkdir(parents=True, exist_ok=True)
        day_of = frame[k.time_column].dt.strftime("%Y-%m-%d")
        for d in data.days:
            path = folder / f"{d}.{_EXT[fmt]}"
            _write(frame.loc[day_of == d].reset_index(drop=True), path, fmt)
            paths[kind].append(path)
    labels = out / "labels"
    labels.mkdir(parents=True, exist_ok=True)
    for name, frame in (("signups", data.signup_labels), ("senders", data.sender_labels)):
        path = labels / f"{name}.parquet"
        frame.to_parquet(path, index=False)
        paths["labels"].append(path)
    log.info("wrote synthetic %s data for %d days to %s", fmt, len(data.days), out)
    return paths
