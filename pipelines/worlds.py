"""Many synthetic worlds: each world seed draws its own population, crowds and campaigns.

:func:`pipelines.synthetic.generate` has one fixed world, the one detection was tuned on.
:func:`generate_world` draws a new world from an integer: its own population mix (country
weights, free-mail shares, browser and app-build popularity, how many people sign up from a
phone behind carrier CGNAT, how often a household shares a device, which names are common),
its own benign *look-alike crowds* (a campus NAT, a marketing burst, an office NAT, an app
release day, conference wifi; newsletters, shop mail, login codes) and 6-10 *actors*
composed from a grammar of behaviours rather than picked from fixed styles.

An actor is a set of trait families (:data:`SIGNUP_FAMILIES`, :data:`SENDER_FAMILIES`). Each
family has a *kind* (the class of its values: a name template, throwaway domains on new gTLDs,
one hosting ASN with a few /24s, one rare browser build, a device pool, ...) and a *mode*:
``fixed`` (the same values on every day), ``random`` (fresh values on every row, drawn like the
population's) or ``rotate`` (new values of the same kind every day). :func:`world_actors`
describes them; ``generate_world(..., rotate={actor: family})`` regenerates the days after
the first with that one family of that actor moved to values the actor never used (a new
build, a new ASN and /24s, new domains, another name template, a new device pool, another
cadence, ...), leaving every other column of every row unchanged. Every world has a
*low-and-slow* signup actor: random ``[a-z0-9]{10}`` local parts on throwaway domains that
rotate daily, hosting ASNs, no display name, spread over the whole day, ~0.2% of signups.

Every random choice comes from a generator seeded from ``(world, group name, ...)`` and, for
anything drawn per day, the day; no global state. Labels follow :mod:`pipelines.synthetic`.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

from pipelines.synthetic import (
    _ADJECTIVES,
    _ALNUM,
    _ANDROID_MODELS,
    _ANDROID_OS,
    _APP_BUILDS,
    _HEX,
    _IOS,
    _MAILERS,
    _NOUNS,
    _POPULAR,
    _UAS,
    COUNTRIES,
    DAY_MS,
    HOUR_MS,
    LINUX,
    MAC,
    NETWORKS,
    WIN,
    Cols,
    GroupSpec,
    SyntheticData,
    _assemble,
    _beta,
    _cadence_times,
    _captcha_human,
    _chrome,
    _consonant_soup,
    _crc,
    _Day,
    _display_names,
    _diurnal_ms,
    _dotted,
    _firefox,
    _first_letter,
    _join_domains,
    _obj,
    _people,
    _pronounceable,
    _rand_str,
    _rand_str_var,
    _sender_pool,
    _senders_population,
    _spread,
    _style_newsletter,
    _style_transactional,
    _usernames,
    _World,
    _z,
)

log = logging.getLogger(__name__)

__all__ = [
    "SENDER_FAMILIES",
    "SIGNUP_FAMILIES",
    "ActorSpec",
    "Trait",
    "generate_world",
    "world_actors",
    "world_crowds",
]

Mode = Literal["fixed", "random", "rotate"]

SIGNUP_FAMILIES = (
    "name",
    "domain",
    "network",
    "client",
    "device",
    "display",
    "captcha",
    "cadence",
)
SENDER_FAMILIES = ("name", "domain", "network", "client", "content", "cadence")

_TAG = _crc("pipelines.worlds")  # keeps every stream apart from generate()'s


def _rng(world: int, *keys: str | int) -> np.random.Generator:
    """The stream for ``keys`` (group name, family, day, ...) in ``world``."""
    return np.random.default_rng(
        [_TAG, world, *(_crc(k) if isinstance(k, str) else int(k) for k in keys)]
    )


# ---------------------------------------------------------------------------------------------
# Reference data only the worlds use.

_GTLDS = (
    ".xyz", ".top", ".click", ".shop", ".online", ".site", ".icu", ".buzz", ".store", ".live",
    ".fun", ".space", ".club", ".cfd", ".sbs",
)  # fmt: skip
_FREEMAIL_ALL = (
    "gmail.com", "outlook.com", "hotmail.com", "yahoo.com", "icloud.com", "proton.me",
    "gmx.com", "mail.com", "aol.com", "yandex.com", "zoho.com",
)  # fmt: skip
_EXTRA_FREEMAIL = (
    ("gmx.com", 0.02), ("mail.com", 0.015), ("aol.com", 0.015), ("yandex.com", 0.01),
    ("zoho.com", 0.006),
)  # fmt: skip

# Hosting networks beyond synthetic.NETWORKS' ("name", asn, country, /16 prefixes); their
# prefixes overlap no other network's, so a /24 names its ASN.
_MORE_HOSTING = (
    ("Linode", 63949, "US", ("45.79", "172.104", "139.162")),
    ("Contabo", 51167, "DE", ("161.97", "207.180", "62.171")),
    ("Leaseweb", 60781, "NL", ("212.32", "5.79")),
    ("Scaleway", 12876, "FR", ("51.15", "163.172", "212.47")),
    ("Alibaba Cloud", 45102, "SG", ("47.74", "8.219")),
    ("Tencent Cloud", 132203, "SG", ("43.134", "129.226")),
    ("Oracle Cloud", 31898, "US", ("129.146", "150.136")),
    ("Google Cloud", 396982, "US", ("34.118", "35.203")),
    ("Microsoft Azure", 8075, "US", ("20.42", "52.170")),
    ("Psychz", 40676, "US", ("104.149", "172.106")),
    ("FranTech", 53667, "US", ("209.141", "198.98")),
)
_HOSTING: dict[int, tuple[str, tuple[str, ...]]] = {}  # asn -> (country, /16s)
for _net in NETWORKS:
    if _net.kind == "dc":
        _where, _have = _HOSTING.get(_net.asn, (_net.country, ()))
        _HOSTING[_net.asn] = (_where, _have + _net.prefixes)
for _, _asn, _where, _have in _MORE_HOSTING:
    _HOSTING[_asn] = (_where, _have)
_PFX_OWNER = {p: (asn, c) for asn, (c, ps) in _HOSTING.items() for p in ps}
_HOSTING_ASNS = tuple(sorted(_HOSTING))

# Universities for campus crowds: (slug, country, ASN, /16, student mail domain).
_UNIVERSITIES = (
    ("westbrook", "US", 10437, "129.74", "students.westbrook.edu"),
    ("northfield", "US", 3807, "128.210", "northfield.edu"),
    ("kingsbridge", "GB", 786, "138.37", "kingsbridge.ac.uk"),
    ("halden", "DE", 680, "141.30", "stud.tu-halden.de"),
    ("belleville", "FR", 2200, "193.48", "etu.univ-belleville.fr"),
    ("saopedro", "BR", 1916, "200.130", "aluno.usaopedro.edu.br"),
    ("rampur", "IN", 55824, "14.139", "iitrampur.ac.in"),
    ("kitano", "JP", 2907, "133.11", "kitano-u.ac.jp"),
)
# Email service providers' sending /24s (newsletters, shops, login codes).
_ESP_SUBNETS = (
    "167.89.118", "198.2.180", "149.72.34", "54.240.8", "54.240.27", "23.251.234",
    "205.201.132", "198.21.5", "192.174.91", "50.31.56",
)  # fmt: skip
_BRAND_A = (
    "Morning Daily Weekly City Green Pixel Trail Urban Coastal Bright Maple Harbor Summit "
    "Garden Metro"
).split()
_BRAND_B = "Ledger Digest Beat Post Gazette Notes Outdoors Kitchen Review Dispatch Journal".split()
_SHOP_A = "Gadget Book Pet Home Mode Trend Fresh Sport Kids Craft Tool Style".split()
_SHOP_B = "Barn Shelf Pal Nest Haus Hub Mart Box Corner Depot Lane Market".split()
_SHOP_TLDS = (".com", ".com", ".co.uk", ".de", ".com.br", ".fr", ".com.mx", ".in")

# Brands impersonated by look-alike sender domains, and the words glued to them.
_BRANDS = (
    "dhl ups fedex usps royalmail dpd paypal amazon netflix microsoft apple docusign chase "
    "wellsfargo coinbase binance"
).split()
_BRAND_WORDS = (
    "parcelnotice delivery tracking support secure verify account billing service notice help "
    "center online alerts update portal"
).split()
_BRAND_TLDS = (".com", ".net", ".info", ".co", ".online", ".support", ".services")
_ROLE_WORDS = "support billing notice service info account security delivery admin team".split()

# Populations' browser majors; an actor's "rare" build is never one of these.
_POP_CHROME = {122, 126, 127, 128, 129, 130, 131}
_RARE_CHROME = tuple(m for m in range(100, 126) if m not in _POP_CHROME)
_RARE_FIREFOX = tuple(m for m in range(100, 128) if m not in (115,))
_POP_APP = {b for b, _, _ in _APP_BUILDS}
_EMULATORS = ("sdk_gphone64_x86_64", "SM-G960F", "Redmi Note 8", "SM-J730F", "Nexus 5X")
_SCRIPTS = ("python-requests", "okhttp", "axios", "curl", "Apache-HttpClient", "Go-http-client")
_MAILER_TOOLS = (
    "PHPMailer", "Swift Mailer", "Atomic Mail Sender", "The Bat!", "Microsoft CDO",
    "SendBlaster",
)  # fmt: skip

_CAPTCHA = {"low": (1.5, 8.0), "mid": (4.0, 4.0), "high": (9.0, 1.5)}

# Senders' lures: subject templates ({n} a number) and the body's opening.
_THEMES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "parcel": (
        (
            "Your parcel #{n} is waiting – confirm delivery",
            "Delivery attempt failed for parcel #{n}",
            "Parcel #{n}: confirm your address to release delivery",
        ),
        "Dear customer,\n\nWe could not deliver your parcel. Confirm your details within 48 "
        "hours: ",
        "\n\nCustomer Service",
    ),
    "invoice": (
        (
            "Invoice INV-{n} attached",
            "Payment reminder: invoice {n} overdue",
            "Re: invoice {n} – please review",
        ),
        "Hello,\n\nPlease find the invoice for your review. You can view and download it here: ",
        "\n\nKind regards,\nAccounts Receivable",
    ),
    "account": (
        (
            "Action required: unusual sign-in (case {n})",
            "Your account will be suspended – verify by {n}",
            "Security alert #{n}: confirm your identity",
        ),
        "Dear user,\n\nWe noticed unusual activity on your account. Verify your identity to "
        "avoid suspension: ",
        "\n\nThe Security Team",
    ),
    "prize": (
        (
            "Congratulations! You won a ${n} gift card",
            "Claim your reward #{n} today",
            "You have been selected – prize #{n}",
        ),
        "Congratulations!\n\nYou are one of our lucky winners. Claim your reward here: ",
        "\n\nRewards Team",
    ),
    "crypto": (
        (
            "Your wallet received {n} USDT – claim now",
            "Bonus {n} USDT waiting in your account",
            "Withdrawal {n} pending – confirm",
        ),
        "Hello,\n\nA deposit is waiting in your wallet. Log in to confirm the transfer: ",
        "\n\nSupport",
    ),
    "job": (
        (
            "Remote position – earn ${n} a week",
            "Your application #{n} was shortlisted",
            "Part-time offer {n}: start today",
        ),
        "Hi,\n\nWe reviewed your profile and have a flexible position for you. Details: ",
        "\n\nHR Department",
    ),
}


# ---------------------------------------------------------------------------------------------
# The population mix of one world.


class _MixWorld(_World):
    """:class:`pipelines.synthetic._World` with this world's weights on top.

    The base class builds the reference tables (names, networks, corporate domains); this
    redraws what makes worlds differ: country weights, phone and carrier shares, name
    popularity and region mix, free-mail shares, CGNAT pool sizes and UA popularity.
    """

    def __init__(self, world: int) -> None:
        super().__init__(_crc(f"worlds:{world}"))
        self.world = world
        rng = _rng(world, "mix")
        n_c = len(COUNTRIES)
        w = np.array([c.weight for c in COUNTRIES], dtype=float) * rng.lognormal(0.0, 0.6, n_c)
        hot = rng.choice(n_c, 2, replace=False)  # a couple of markets this product is big in
        w[hot] *= rng.uniform(2.0, 5.0, 2)
        self.country_p = w / w.sum()
        self.phone_share = np.clip(self.phone_share * rng.uniform(0.75, 1.3), 0.15, 0.92)
        self.cell_share = np.clip(self.cell_share * rng.uniform(0.6, 1.5), 0.05, 0.9)
        self.ios_share = np.clip(self.ios_share * rng.lognormal(0.0, 0.3, n_c), 0.02, 0.85)
        self.app_share = float(rng.uniform(0.45, 0.8))
        self.api_share = float(rng.uniform(0.001, 0.006))
        self.family_share = float(rng.uniform(0.01, 0.06))
        self.vpn_share = float(rng.uniform(0.005, 0.03))
        self._mix_names(rng)
        self._mix_domains(rng)
        self._mix_cgnat(rng)
        self.uas = {
            platform: (strings, _renorm(p * rng.lognormal(0.0, 0.7, len(p))))
            for platform, (strings, p) in _UAS.items()
        }

    def _mix_names(self, rng: np.random.Generator) -> None:
        """Per-country name-region mix and per-region name popularity."""
        self.regions: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for ci, c in enumerate(COUNTRIES):
            regs = np.array([r for r, _ in c.names], dtype=object)
            wts = np.array([x for _, x in c.names]) * rng.lognormal(0.0, 0.4, len(regs))
            self.regions[ci] = (regs, _renorm(wts))
        self.first_p = {r: _popularity(rng, len(d)) for r, (d, _) in self.first.items()}
        self.last_p = {r: _popularity(rng, len(d)) for r, (d, _) in self.last.items()}

    def _mix_domains(self, rng: np.random.Generator) -> None:
        """Free-mail shares, local-provider shares and the corporate tail, per country."""
        table = (*_POPULAR, *_EXTRA_FREEMAIL)
        self.free_d = np.array([d for d, _ in table], dtype=object)
        self.free_p = _renorm(np.array([x for _, x in table]) * rng.lognormal(0.0, 0.5, len(table)))
        corp_share = float(rng.uniform(0.06, 0.2))
        recip_d, recip_w = [self.free_d], [self.free_p * 0.75]
        for ci, c in enumerate(COUNTRIES):
            corp = self.corporate[c.code]
            zipf = _renorm(1.0 / np.arange(1, len(corp) + 1) ** rng.uniform(0.5, 0.9))
            local = np.array(c.local_domains, dtype=object)
            local_w = _renorm(1.0 / np.arange(1, len(local) + 1))
            local_share = float(np.clip(c.local_share * rng.lognormal(0.0, 0.35), 0.02, 0.7))
            parts = [
                self.free_p * (1 - local_share - corp_share),
                local_w * local_share,
                zipf * corp_share,
            ]
            self.domains[ci] = (np.r_[self.free_d, local, corp], np.concatenate(parts))
            share = self.country_p[ci]
            recip_d += [local, corp]
            recip_w += [local_w * 0.15 * share, zipf * 0.1 * share]
        rd = pd.Series(np.concatenate(recip_w)).groupby(np.concatenate(recip_d)).sum()
        self.recipient_domains = rd.index.to_numpy(dtype=object)
        self.recipient_p = rd.to_numpy() / rd.sum()

    def _mix_cgnat(self, rng: np.random.Generator) -> None:
        """How many shared exit addresses each carrier has in this world."""
        for i, net in enumerate(self.nets):
            if net.kind != "mobile":
                continue
            blocks = rng.integers(1, 4)
            ips = [
                f"{rng.choice(net.prefixes)}.{rng.integers(0, 256)}.{h}"
                for _ in range(blocks)
                for h in rng.choice(np.arange(2, 254), rng.integers(2, 13), replace=False)
            ]
            busy = rng.gamma(2.0, 1.0, len(ips))
            self.cgnat[i] = (np.array(ips, dtype=object), busy / busy.sum())

    def names(
        self, rng: np.random.Generator, ci: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """First and last names (display, ASCII) with this world's regions and popularity."""
        n = len(ci)
        regions = np.empty(n, dtype=object)
        for k in np.unique(ci):
            m = ci == k
            regs, p = self.regions[int(k)]
            regions[m] = regs[rng.choice(len(regs), int(m.sum()), p=p)]
        out = [np.empty(n, dtype=object) for _ in range(4)]
        for r in np.unique(regions):
            m = regions == r
            k = int(m.sum())
            fd, fa = self.first[r]
            ld, la = self.last[r]
            i = rng.choice(len(fd), k, p=self.first_p[r])
            j = rng.choice(len(ld), k, p=self.last_p[r])
            out[0][m], out[1][m], out[2][m], out[3][m] = fd[i], ld[j], fa[i], la[j]
        return out[0], out[1], out[2], out[3]

    def client(
        self, rng: np.random.Generator, ci: np.ndarray, phone: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(signup_flow, user_agent)`` with this world's app share and UA popularity."""
        n = len(ci)
        ios = rng.random(n) < self.ios_share[ci]
        app = phone & (rng.random(n) < self.app_share)
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
        for name, (strings, p) in self.uas.items():
            m = platform == name
            ua[m] = strings[rng.choice(len(strings), int(m.sum()), p=p)]
        flow = np.where(
            platform == "ios_app", "ios", np.where(platform == "android_app", "android", "web")
        ).astype(object)
        api = rng.random(n) < self.api_share
        flow[api] = "api"
        ua[api] = "AcmeMail-Partner-SDK/2.3.1 (Java/17.0.9)"
        return flow, ua

    def country_index(self, code: str) -> int:
        return int(np.flatnonzero(self.codes == code)[0])


def _renorm(w: np.ndarray) -> np.ndarray:
    return np.asarray(w, dtype=float) / float(np.sum(w))


def _popularity(rng: np.random.Generator, k: int) -> np.ndarray:
    """Zipf-like weights over a random order; about a fifth of the names unused here."""
    w = (rng.permutation(k) + 1.0) ** -rng.uniform(0.3, 1.1)
    unused = rng.random(k) < 0.2
    if (~unused).sum() >= 3:
        w[unused] = 0.0
    return _renorm(w)


@dataclass(frozen=True)
class _WDay(_Day):
    """A day of a world; streams are keyed by ``(world, name, day)`` apart from generate()'s."""

    def rng(self, name: str) -> np.random.Generator:
        return _rng(self.seed, name, self.index + 1)

    def static_rng(self, name: str) -> np.random.Generator:
        return _rng(self.seed, name, 0)


def _mix(day: _Day) -> _MixWorld:
    return cast(_MixWorld, day.world)


# ---------------------------------------------------------------------------------------------
# Actors: a grammar of traits.


@dataclass(frozen=True)
class Trait:
    """One trait family of an actor.

    Attributes
    ----------
    family
        One of :data:`SIGNUP_FAMILIES` or :data:`SENDER_FAMILIES`.
    kind
        The class of the values, e.g. ``random_string``, ``throwaway``, ``hosting_one``,
        ``rare_build``, ``pool``, ``window``.
    mode
        ``fixed`` (same values every day), ``random`` (fresh values every row, drawn from the
        population or the kind's class) or ``rotate`` (new values of the kind every day).
    params
        The kind's parameters (template length, ASNs, TLDs, pool size, ...).
    values
        The concrete values on the first day (the /24s, the UA strings, the domains, ...;
        empty for ``random`` families without a class-level value), as filled in by
        :func:`world_actors`.
    """

    family: str
    kind: str
    mode: Mode
    params: Mapping[str, Any] = field(default_factory=dict)
    values: tuple[Any, ...] = ()


# Kinds whose forced rotation cannot move them anywhere new: they already draw every row
# from the population.
_NOT_ROTATABLE = {
    ("domain", "population"),
    ("domain", "compromised"),
    ("client", "common"),
    ("client", "mobile_web"),
    ("client", "population"),
    ("device", "none"),
    ("display", "population"),
    ("display", "soup"),
}


@dataclass(frozen=True)
class ActorSpec:
    """A campaign actor of a world.

    Attributes
    ----------
    name
        Group name in the labels (unique in the world); keys the actor's random streams.
    kind
        ``"signups"`` or ``"senders"`` (the entity of a sender actor is its ``sender``).
    style
        Short description written to the labels' ``style`` column (``low_slow`` for the
        low-and-slow actor every world has, else the kinds of its main families).
    share
        Fraction of the day's rows of ``kind`` (jittered a few percent per day).
    traits
        Family name -> :class:`Trait`.
    params
        Actor-level parameters that are no trait family: the personas' countries, messages per
        sender, recipients per message, bounce and complaint rates.
    """

    name: str
    kind: Literal["signups", "senders"]
    style: str
    share: float
    traits: Mapping[str, Trait]
    params: Mapping[str, Any] = field(default_factory=dict)

    def mode(self, family: str) -> Mode:
        """The mode of ``family``."""
        return self.traits[family].mode

    @property
    def rotatable(self) -> tuple[str, ...]:
        """Families that ``generate_world(rotate=...)`` moves to values never used."""
        return tuple(f for f, t in self.traits.items() if (f, t.kind) not in _NOT_ROTATABLE)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _choice(rng: np.random.Generator, options: Sequence[str], p: Sequence[float]) -> str:
    return str(options[int(rng.choice(len(options), p=_renorm(np.array(p))))])


def _countries(rng: np.random.Generator, w: _MixWorld, lo: int, hi: int) -> tuple[str, ...]:
    """A few countries, the world's big markets more likely."""
    k = int(rng.integers(lo, hi + 1))
    idx = rng.choice(
        len(COUNTRIES), k, replace=False, p=np.sqrt(w.country_p) / np.sqrt(w.country_p).sum()
    )
    return tuple(str(w.codes[i]) for i in idx)


def _name_params(rng: np.random.Generator, kind: str) -> dict[str, Any]:
    """A random template of the name family ``kind``."""
    if kind == "random_string":
        alphabet = _choice(rng, ("alnum", "alpha", "soup"), (0.5, 0.25, 0.25))
        return {"alphabet": alphabet, "length": int(rng.integers(6, 15))}
    if kind == "first_digits":
        return {
            "sep": _choice(rng, ("", ".", "_"), (0.6, 0.2, 0.2)),
            "digits": int(rng.integers(2, 5)),
        }
    if kind == "adj_noun":
        return {
            "sep": _choice(rng, ("_", ".", "", "-"), (0.5, 0.2, 0.2, 0.1)),
            "digits": int(rng.integers(0, 4)),
        }
    if kind == "pronounceable":
        return {"syllables": int(rng.integers(2, 5)), "digits": int(rng.integers(0, 4))}
    if kind == "role":
        return {
            "sep": _choice(rng, ("", ".", "-", "_"), (0.4, 0.2, 0.2, 0.2)),
            "digits": int(rng.integers(1, 4)),
        }
    if kind == "alias":
        return {
            "bases": int(rng.integers(3, 11)),
            "googlemail_share": float(rng.uniform(0, 0.15)),
            "dotted_share": float(rng.uniform(0.1, 0.4)),
        }
    return {}  # people: the population's own login styles


def _g_name(rng: np.random.Generator, senders: bool) -> Trait:
    if senders:
        kinds: tuple[str, ...] = ("random_string", "pronounceable", "role", "first_digits")
        kind = _choice(rng, kinds, (0.25, 0.3, 0.25, 0.2))
    else:
        kinds = ("random_string", "first_digits", "adj_noun", "pronounceable", "people", "alias")
        kind = _choice(rng, kinds, (0.2, 0.2, 0.15, 0.15, 0.2, 0.1))
    mode: Mode = "random" if kind == "people" else ("rotate" if rng.random() < 0.25 else "fixed")
    return Trait("name", kind, mode, _name_params(rng, kind))


def _throwaway_params(rng: np.random.Generator) -> dict[str, Any]:
    tlds = rng.choice(_GTLDS, int(rng.integers(2, 5)), replace=False)
    return {
        "tlds": tuple(str(t) for t in tlds),
        "per_domain": int(rng.integers(3, 10)),
        "count": int(rng.integers(2, 7)),
    }


def _g_domain(rng: np.random.Generator, name: Trait, senders: bool) -> Trait:
    if name.kind == "alias":
        return Trait(
            "domain",
            "alias_gmail",
            "fixed",
            {
                "providers": ("gmail.com", "googlemail.com"),
                "weights": (1 - name.params["googlemail_share"], name.params["googlemail_share"]),
            },
        )
    if senders:
        kind = _choice(rng, ("lookalike_brand", "throwaway"), (0.6, 0.4))
    else:
        kind = _choice(rng, ("freemail", "throwaway", "population"), (0.45, 0.3, 0.25))
    if kind == "freemail":
        k = int(rng.integers(1, 5))
        providers = tuple(str(d) for d in rng.choice(_FREEMAIL_ALL[:6], k, replace=False))
        weights = tuple(float(x) for x in _renorm(rng.dirichlet(np.full(k, 2.0)) + 0.05))
        mode: Mode = "rotate" if rng.random() < 0.15 else "fixed"
        return Trait("domain", kind, mode, {"providers": providers, "weights": weights})
    if kind == "throwaway":
        return Trait(
            "domain", kind, "rotate" if rng.random() < 0.75 else "fixed", _throwaway_params(rng)
        )
    if kind == "lookalike_brand":
        params = {"brand": str(rng.choice(_BRANDS)), "count": int(rng.integers(2, 7))}
        return Trait("domain", kind, "rotate" if rng.random() < 0.7 else "fixed", params)
    return Trait("domain", "population", "random")


def _hosting_params(
    rng: np.random.Generator, many: bool, avoid: Sequence[int] = ()
) -> dict[str, Any]:
    options = [a for a in _HOSTING_ASNS if a not in avoid]
    k = int(rng.integers(2, 5)) if many else 1
    asns = tuple(int(a) for a in rng.choice(options, min(k, len(options)), replace=False))
    subnets = int(rng.integers(4, 17)) if many else int(rng.integers(1, 6))
    return {"asns": asns, "subnets": subnets}


def _g_network(rng: np.random.Generator, w: _MixWorld, senders: bool) -> Trait:
    kinds = ("hosting_one", "hosting_many", "resi_proxy", "mobile_cgnat")
    kind = _choice(rng, kinds, (0.35, 0.3, 0.35, 0.0) if senders else (0.3, 0.25, 0.3, 0.15))
    if kind in ("hosting_one", "hosting_many"):
        params = _hosting_params(rng, kind == "hosting_many")
        return Trait("network", kind, "rotate" if rng.random() < 0.35 else "fixed", params)
    if kind == "resi_proxy":
        return Trait("network", kind, "random", {"countries": _countries(rng, w, 2, 7)})
    return Trait(
        "network", kind, "rotate" if rng.random() < 0.3 else "fixed", _carrier_params(rng, w)
    )


def _carrier_params(
    rng: np.random.Generator, w: _MixWorld, avoid: Sequence[int] = ()
) -> dict[str, Any]:
    """A mobile carrier (weighted by how many of the world's users ride carriers) and exits."""
    carriers = [i for i, n in enumerate(NETWORKS) if n.kind == "mobile" and n.asn not in avoid]
    weight = np.array(
        [w.country_p[w.country_index(NETWORKS[i].country)] * NETWORKS[i].weight for i in carriers]
    )
    i = int(rng.choice(carriers, p=_renorm(weight)))
    exits = len(w.cgnat[i][0])
    return {
        "carrier": i,
        "asn": NETWORKS[i].asn,
        "exits": int(rng.integers(1, max(2, exits // 2) + 1)),
    }


def _g_client(rng: np.random.Generator, network: Trait, senders: bool) -> Trait:
    if senders:
        kind = _choice(
            rng, ("mailer_fixed", "mailers_few", "population", "none"), (0.4, 0.2, 0.2, 0.2)
        )
        if kind == "mailer_fixed":
            return Trait(
                "client",
                kind,
                "rotate" if rng.random() < 0.2 else "fixed",
                {"tool": str(rng.choice(_MAILER_TOOLS)), "count": 1},
            )
        if kind == "mailers_few":
            return Trait(
                "client",
                kind,
                "fixed",
                {"tool": str(rng.choice(_MAILER_TOOLS)), "count": int(rng.integers(2, 4))},
            )
        return Trait("client", kind, "random" if kind == "population" else "fixed")
    if network.kind == "mobile_cgnat":
        kind = _choice(rng, ("app", "mobile_web"), (0.75, 0.25))
    else:
        kinds = ("rare_build", "few_builds", "common", "app", "script")
        kind = _choice(rng, kinds, (0.3, 0.25, 0.25, 0.1, 0.1))
    mode: Mode = "rotate" if rng.random() < 0.3 else "fixed"
    if kind in ("rare_build", "few_builds"):
        browser = _choice(rng, ("chrome", "edge", "firefox"), (0.65, 0.15, 0.2))
        os_token = _choice(rng, (WIN, MAC, LINUX), (0.6, 0.2, 0.2))
        count = 1 if kind == "rare_build" else int(rng.integers(2, 5))
        api = float(rng.uniform(0, 0.3)) if rng.random() < 0.3 else 0.0
        return Trait(
            "client",
            kind,
            mode,
            {"browser": browser, "os": os_token, "count": count, "api_share": api},
        )
    if kind == "app":
        return Trait(
            "client",
            kind,
            mode,
            {"models": int(rng.integers(1, 4)), "emulator": bool(rng.random() < 0.4)},
        )
    if kind == "script":
        return Trait("client", kind, mode, {"library": str(rng.choice(_SCRIPTS))})
    return Trait("client", kind, "random", {"min_share": float(rng.uniform(0.005, 0.03))})


def _g_device(rng: np.random.Generator, client: Trait) -> Trait:
    p_pool = 0.7 if client.kind in ("app", "mobile_web") else 0.4
    if rng.random() < p_pool:
        mode: Mode = "rotate" if rng.random() < 0.3 else "fixed"
        return Trait("device", "pool", mode, {"size": int(rng.integers(10, 61))})
    return Trait("device", "none", "random")


def _g_display(rng: np.random.Generator) -> Trait:
    kind = _choice(rng, ("empty", "small_list", "population", "soup"), (0.3, 0.25, 0.35, 0.1))
    if kind == "empty":
        return Trait("display", kind, "fixed")
    if kind == "small_list":
        mode: Mode = "rotate" if rng.random() < 0.3 else "fixed"
        return Trait("display", kind, mode, {"size": int(rng.integers(3, 13))})
    return Trait("display", kind, "random")


def _g_captcha(rng: np.random.Generator) -> Trait:
    return Trait("captcha", _choice(rng, ("low", "mid", "high"), (0.35, 0.35, 0.3)), "fixed")


def _g_cadence(rng: np.random.Generator, senders: bool) -> Trait:
    kinds = ("window", "periodic", "diurnal", "waves")
    kind = _choice(rng, kinds, (0.45, 0.0, 0.15, 0.4) if senders else (0.6, 0.2, 0.2, 0.0))
    mode: Mode = "rotate" if rng.random() < 0.5 else "fixed"
    if kind == "window":
        width = _log_uniform(rng, 1 / 3, 24.0)
        width = 24.0 if width > 20 else round(width, 2)
        return Trait(
            "cadence", kind, mode, {"width_h": width, "start_h": float(rng.integers(0, 96)) / 4}
        )
    if kind == "periodic":
        period = round(_log_uniform(rng, 30.0, 600.0), 1)
        return Trait(
            "cadence", kind, mode, {"period_s": period, "jitter": float(rng.uniform(0.005, 0.05))}
        )
    if kind == "waves":
        return Trait(
            "cadence",
            kind,
            mode,
            {"waves": int(rng.integers(2, 9)), "width_min": int(rng.integers(20, 61))},
        )
    tz = float(COUNTRIES[int(rng.integers(0, len(COUNTRIES)))].tz)
    return Trait("cadence", kind, "fixed", {"tz": tz})


# Which lures fit an impersonated brand.
_BRAND_THEMES = {
    **dict.fromkeys(("dhl", "ups", "fedex", "usps", "royalmail", "dpd"), ("parcel",)),
    **dict.fromkeys(("paypal", "amazon", "netflix", "apple", "chase", "wellsfargo"), ("account",)),
    "microsoft": ("account", "invoice"),
    "docusign": ("invoice",),
    **dict.fromkeys(("coinbase", "binance"), ("crypto", "account")),
}


def _g_content(rng: np.random.Generator, domain: Trait) -> Trait:
    themes = _BRAND_THEMES.get(domain.params.get("brand", ""), tuple(_THEMES))
    mode: Mode = "rotate" if rng.random() < 0.7 else "fixed"
    return Trait("content", "lure", mode, {"theme": str(rng.choice(themes))})


def _signup_actor(w: _MixWorld, world: int, i: int) -> ActorSpec:
    """Signup actor ``i``; actor 0 is the world's low-and-slow actor."""
    rng = _rng(world, "actor:signups", i)
    params = {"countries": _countries(rng, w, 1, 6)}
    if i == 0:
        network = Trait(
            "network",
            "hosting_many",
            "rotate" if rng.random() < 0.5 else "fixed",
            _hosting_params(rng, True),
        )
        client = _g_client(rng, network, False)
        traits = {
            "name": Trait("name", "random_string", "fixed", {"alphabet": "alnum", "length": 10}),
            "domain": Trait("domain", "throwaway", "rotate", _throwaway_params(rng)),
            "network": network,
            "client": client,
            "device": _g_device(rng, client),
            "display": Trait("display", "empty", "fixed"),
            "captcha": _g_captcha(rng),
            "cadence": Trait("cadence", "window", "fixed", {"width_h": 24.0, "start_h": 0.0}),
        }
        share = float(rng.uniform(0.0015, 0.0025))
        return ActorSpec(f"su{i}_low_slow", "signups", "low_slow", share, traits, params)
    name = _g_name(rng, False)
    network = _g_network(rng, w, False)
    client = _g_client(rng, network, False)
    traits = {
        "name": name,
        "domain": _g_domain(rng, name, False),
        "network": network,
        "client": client,
        "device": _g_device(rng, client),
        "display": _g_display(rng),
        "captcha": _g_captcha(rng),
        "cadence": _g_cadence(rng, False),
    }
    style = "/".join(traits[f].kind for f in ("network", "name", "domain", "client"))
    tag = f"{network.kind.split('_')[0]}_{name.kind}"
    return ActorSpec(
        f"su{i}_{tag}", "signups", style, _log_uniform(rng, 0.001, 0.05), traits, params
    )


def _sender_actor(w: _MixWorld, world: int, i: int) -> ActorSpec:
    """Sender actor ``i``: a blast from its own domains, or hijacked free-mail accounts."""
    rng = _rng(world, "actor:senders", i)
    params: dict[str, Any] = {"countries": _countries(rng, w, 1, 6)}
    if rng.random() < 0.35:  # taken-over accounts: people's names and mail, home IPs
        name = Trait("name", "people", "random")
        domain = Trait("domain", "compromised", "random")
        network = Trait("network", "resi_proxy", "random", {"countries": _countries(rng, w, 1, 5)})
        client = Trait("client", _choice(rng, ("population", "none"), (0.6, 0.4)), "random")
        params.update(per_sender=int(rng.integers(3, 15)), recipients=(3, int(rng.integers(8, 25))))
        params.update(
            bounce=float(rng.uniform(0.01, 0.06)), complaint=float(rng.uniform(0.005, 0.03))
        )
    else:
        name = _g_name(rng, True)
        domain = _g_domain(rng, name, True)
        network = _g_network(rng, w, True)
        client = _g_client(rng, network, True)
        lo = int(rng.integers(5, 30))
        params.update(
            per_sender=int(rng.integers(10, 90)), recipients=(lo, lo + int(rng.integers(5, 40)))
        )
        params.update(
            bounce=float(rng.uniform(0.05, 0.35)), complaint=float(rng.uniform(0.01, 0.09))
        )
    traits = {
        "name": name,
        "domain": domain,
        "network": network,
        "client": client,
        "content": _g_content(rng, domain),
        "cadence": _g_cadence(rng, True),
    }
    style = (
        "/".join(traits[f].kind for f in ("network", "domain", "client"))
        + "/"
        + traits["content"].params["theme"]
    )
    return ActorSpec(
        f"ms{i}_{domain.kind}", "senders", style, _log_uniform(rng, 0.001, 0.05), traits, params
    )


# ---------------------------------------------------------------------------------------------
# Look-alike crowds (benign; label "lookalike").


def _draw_crowds(world: int, w: _MixWorld) -> tuple[GroupSpec, ...]:
    """Which crowds this world has, how big and with which institutions."""
    rng = _rng(world, "crowds")
    out: list[GroupSpec] = []
    uni = _UNIVERSITIES[int(rng.integers(0, len(_UNIVERSITIES)))]
    office_c = _countries(rng, w, 1, 1)[0]
    event_c = _countries(rng, w, 1, 1)[0]
    corp = w.corporate[office_c]
    signups: list[tuple[float, GroupSpec]] = [
        (
            0.7,
            GroupSpec(
                "campus_nat",
                "campus_nat",
                "signups",
                "lookalike",
                float(rng.uniform(0.005, 0.025)),
                {
                    "slug": uni[0],
                    "country": uni[1],
                    "asn": uni[2],
                    "prefix": uni[3],
                    "domain": uni[4],
                    "nat_ips": int(rng.integers(1, 5)),
                    "window_hours": float(rng.uniform(1.0, 4.0)),
                    "edu_share": float(rng.uniform(0.6, 0.95)),
                },
            ),
        ),
        (
            0.75,
            GroupSpec(
                "marketing_burst",
                "marketing_burst",
                "signups",
                "lookalike",
                float(rng.uniform(0.005, 0.03)),
                {"decay_min": float(rng.uniform(5, 20))},
            ),
        ),
        (
            0.6,
            GroupSpec(
                "office_nat",
                "office_nat",
                "signups",
                "lookalike",
                float(rng.uniform(0.002, 0.01)),
                {
                    "country": office_c,
                    "company_domain": str(corp[int(rng.integers(0, 60))]),
                    "ips": int(rng.integers(1, 3)),
                    "window_hours": float(rng.uniform(6.0, 9.0)),
                    "domain_share": float(rng.uniform(0.5, 0.9)),
                },
            ),
        ),
        (
            0.55,
            GroupSpec(
                "app_release",
                "app_release",
                "signups",
                "lookalike",
                float(rng.uniform(0.005, 0.04)),
                {
                    "version": f"7.{int(rng.integers(5, 9))}.{int(rng.integers(0, 4))}",
                    "okhttp": "4.12.0",
                },
            ),
        ),
        (
            0.5,
            GroupSpec(
                "event_wifi",
                "event_wifi",
                "signups",
                "lookalike",
                float(rng.uniform(0.002, 0.01)),
                {
                    "country": event_c,
                    "window_hours": float(rng.uniform(2.0, 4.0)),
                    "ips": int(rng.integers(1, 3)),
                },
            ),
        ),
    ]
    n_brands, n_shops, n_apps = (int(x) for x in rng.integers((2, 3, 1), (7, 11, 4)))
    senders: list[tuple[float, GroupSpec]] = [
        (
            0.8,
            GroupSpec(
                "newsletter",
                "newsletter",
                "senders",
                "lookalike",
                float(rng.uniform(0.005, 0.03)),
                {
                    "brands": _brands(rng, n_brands),
                    "subnets": _strs(
                        rng.choice(_ESP_SUBNETS, int(rng.integers(1, 4)), replace=False)
                    ),
                    "recipients": (int(rng.integers(50, 300)), int(rng.integers(400, 1500))),
                },
            ),
        ),
        (
            0.8,
            GroupSpec(
                "transactional",
                "transactional",
                "senders",
                "lookalike",
                float(rng.uniform(0.01, 0.05)),
                {
                    "shops": _shops(rng, n_shops),
                    "subjects": (
                        "Your order #{n} has shipped",
                        "Order #{n} confirmed – thanks for shopping with {shop}",
                        "Your {shop} receipt for order #{n}",
                    ),
                    "subnets": _strs(
                        rng.choice(_ESP_SUBNETS, int(rng.integers(1, 4)), replace=False)
                    ),
                },
            ),
        ),
        (
            0.6,
            GroupSpec(
                "login_codes",
                "login_codes",
                "senders",
                "lookalike",
                float(rng.uniform(0.005, 0.03)),
                {
                    "apps": tuple(
                        (s.capitalize(), s + str(rng.choice((".com", ".io", ".app"))))
                        for s in _pronounceable(rng, n_apps, 3)
                    ),
                    "subnets": _strs(rng.choice(_ESP_SUBNETS, 2, replace=False)),
                    "tz": float(rng.choice([c.tz for c in COUNTRIES])),
                },
            ),
        ),
    ]
    for options, least in ((signups, 2), (senders, 1)):
        keep = [spec for p, spec in options if rng.random() < p]
        missing = [spec for _, spec in options if spec not in keep]
        order = rng.permutation(len(missing))
        keep += [missing[j] for j in order[: max(0, least - len(keep))]]
        out += sorted(keep, key=lambda s: s.name)
    return tuple(out)


def _strs(values: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in values)


def _brands(rng: np.random.Generator, k: int) -> tuple[tuple[str, str, str], ...]:
    """Newsletters: (brand, sender address, subject template with ``{date}``)."""
    out: dict[str, tuple[str, str, str]] = {}
    while len(out) < k:
        a, b = str(rng.choice(_BRAND_A)), str(rng.choice(_BRAND_B))
        local = str(rng.choice(("news", "digest", "hello", "weekly")))
        subject = str(
            rng.choice(
                ("Your weekly digest – {date}", f"{a} {b} – {{date}}", "This week's picks – {date}")
            )
        )
        out.setdefault(f"{a} {b}", (f"The {a} {b}", f"{local}@{a.lower()}{b.lower()}.com", subject))
    return tuple(out.values())


def _shops(rng: np.random.Generator, k: int) -> tuple[tuple[str, str], ...]:
    out: dict[str, tuple[str, str]] = {}
    while len(out) < k:
        a, b = str(rng.choice(_SHOP_A)), str(rng.choice(_SHOP_B))
        out.setdefault(a + b, (f"{a} {b}", f"{a.lower()}{b.lower()}{rng.choice(_SHOP_TLDS)}"))
    return tuple(out.values())


def _population_signups(day: _Day, rng: np.random.Generator, n: int) -> Cols:
    """Ordinary users of this world (its own device sharing and VPN shares)."""
    w = _mix(day)
    ci = w.sample_countries(rng, n)
    p = _people(rng, w, ci)
    phone = rng.random(n) < w.phone_share[ci]
    ip, asn, ip_country = w.access(rng, ci, phone, w.vpn_share)
    flow, ua = w.client(rng, ci, phone)
    device = _rand_str(rng, n, 16, _HEX)
    donor = rng.integers(0, n, n)
    fam = rng.random(n) < w.family_share  # households share a device and connection
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


def _local_window(
    rng: np.random.Generator, n: int, tz: float, start_h: float, width_h: float
) -> np.ndarray:
    """UTC ms of day for a local-time window, beta-shaped like a crowd arriving and leaving."""
    t = (start_h - tz) * HOUR_MS + rng.beta(2, 2, n) * width_h * HOUR_MS
    return np.mod(t, DAY_MS).astype(np.int64)


def _crowd_people(
    day: _Day,
    rng: np.random.Generator,
    ci: np.ndarray,
    phone_share: float,
    birth: tuple[int, int] = (1958, 2008),
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """People of countries ``ci`` with their own devices and browsers: ``(people, flow, ua)``."""
    w = _mix(day)
    p = _people(rng, w, ci, birth=birth)
    flow, ua = w.client(rng, ci, rng.random(len(ci)) < phone_share)
    return p, flow, ua


def _crowd_campus_nat(day: _Day, spec: GroupSpec, rng: np.random.Generator, n: int) -> Cols:
    """Students behind their university's NAT within a few hours, many on the campus domain."""
    w, prm = _mix(day), spec.params
    srng = day.static_rng(spec.name)
    block = f"{prm['prefix']}.{int(srng.integers(0, 256))}"
    nat = np.array(
        [f"{block}.{h}" for h in srng.choice(np.arange(2, 254), prm["nat_ips"], False)],
        dtype=object,
    )
    home = w.country_index(prm["country"])
    ci = np.where(rng.random(n) < 0.75, home, w.sample_countries(rng, n))
    p, flow, ua = _crowd_people(day, rng, ci, 0.5, birth=(1999, 2008))
    edu = rng.random(n) < prm["edu_share"]
    student_id = _first_letter(p["first_a"]) + p["last_a"] + _z(rng.integers(0, 100, n), 2)
    local = np.where(edu & (rng.random(n) < 0.5), student_id, p["local"])
    tz = COUNTRIES[home].tz
    start = float(rng.uniform(9, 15))
    return {
        "t": _local_window(rng, n, tz, start, prm["window_hours"]),
        "email": local + "@" + np.where(edu, prm["domain"], p["domain"]),
        "ip": nat[rng.integers(0, len(nat), n)],
        "username": np.where(edu, local, p["username"]),
        "display_name": p["display_name"],
        "ip_asn": np.full(n, prm["asn"], dtype=np.int64),
        "ip_country": np.full(n, prm["country"], dtype=object),
        "user_agent": ua,
        "device_id": _rand_str(rng, n, 16, _HEX),
        "signup_flow": flow,
        "captcha_score": rng.beta(9.0, 1.2, n),
    }


def _crowd_marketing_burst(day: _Day, spec: GroupSpec, rng: np.random.Generator, n: int) -> Cols:
    """Ordinary, diverse people answering a promo within the hour."""
    cols = _population_signups(day, rng, n)
    promo = int(rng.integers(1, 22)) * HOUR_MS + int(rng.integers(0, 4)) * 15 * 60_000
    scale = spec.params["decay_min"] * 60_000
    lag = -scale * np.log1p(-rng.random(n) * (1 - np.exp(-HOUR_MS / scale)))
    cols["t"] = (promo + lag).astype(np.int64)
    return cols


def _office_ips(day: _Day, spec: GroupSpec, k: int) -> tuple[np.ndarray, int, str]:
    """``k`` fixed addresses on one business line of a home ISP of the crowd's country."""
    w = _mix(day)
    srng = day.static_rng(spec.name)
    ci = w.country_index(spec.params["country"])
    net = int(w.pick_nets(srng, np.array([ci]), w.resi)[0])
    pfx = w.pfx[w.pfx_start[net] + int(srng.integers(0, w.pfx_count[net]))]
    block = f"{pfx}.{int(srng.integers(0, 256))}"
    ips = np.array([f"{block}.{h}" for h in srng.choice(np.arange(2, 254), k, False)], dtype=object)
    return ips, int(w.asn[net]), str(w.net_country[net])


def _crowd_office_nat(day: _Day, spec: GroupSpec, rng: np.random.Generator, n: int) -> Cols:
    """Staff of one company onboarding from the office connection over a working day."""
    w, prm = _mix(day), spec.params
    ips, asn, country = _office_ips(day, spec, prm["ips"])
    ci = np.full(n, w.country_index(prm["country"]))
    p, flow, ua = _crowd_people(day, rng, ci, 0.25, birth=(1960, 2002))
    work = rng.random(n) < prm["domain_share"]
    work_local = p["first_a"] + "." + p["last_a"]
    local = np.where(work, work_local, p["local"])
    tz = COUNTRIES[int(ci[0])].tz
    return {
        "t": _local_window(rng, n, tz, 8.5, prm["window_hours"]),
        "email": local + "@" + np.where(work, prm["company_domain"], p["domain"]),
        "ip": ips[rng.integers(0, len(ips), n)],
        "username": np.where(work, local, p["username"]),
        "display_name": p["display_name"],
        "ip_asn": np.full(n, asn, dtype=np.int64),
        "ip_country": np.full(n, country, dtype=object),
        "user_agent": ua,
        "device_id": _rand_str(rng, n, 16, _HEX),
        "signup_flow": flow,
        "captcha_score": _captcha_human(rng, n),
    }


def _crowd_event_wifi(day: _Day, spec: GroupSpec, rng: np.random.Generator, n: int) -> Cols:
    """Attendees of a conference signing up over the venue wifi within a few hours."""
    w, prm = _mix(day), spec.params
    ips, asn, country = _office_ips(day, spec, prm["ips"])
    home = w.country_index(prm["country"])
    ci = np.where(rng.random(n) < 0.6, home, w.sample_countries(rng, n))
    p, flow, ua = _crowd_people(day, rng, ci, 0.7)
    start = float(rng.uniform(9, 16))
    return {
        "t": _local_window(rng, n, COUNTRIES[home].tz, start, prm["window_hours"]),
        "email": p["local"] + "@" + p["domain"],
        "ip": ips[rng.integers(0, len(ips), n)],
        "username": p["username"],
        "display_name": p["display_name"],
        "ip_asn": np.full(n, asn, dtype=np.int64),
        "ip_country": np.full(n, country, dtype=object),
        "user_agent": ua,
        "device_id": _rand_str(rng, n, 16, _HEX),
        "signup_flow": flow,
        "captcha_score": _captcha_human(rng, n),
    }


def _crowd_app_release(day: _Day, spec: GroupSpec, rng: np.random.Generator, n: int) -> Cols:
    """Phone users updating to today's app release: one fresh build, everything else theirs."""
    w, prm = _mix(day), spec.params
    ci = w.sample_countries(rng, n)
    p = _people(rng, w, ci)
    phone = np.ones(n, dtype=bool)
    ip, asn, ip_country = w.access(rng, ci, phone, w.vpn_share)
    ios = rng.random(n) < w.ios_share[ci]
    model = np.array([m for m, _ in _ANDROID_MODELS], dtype=object)[
        rng.choice(len(_ANDROID_MODELS), n, p=_renorm(np.array([x for _, x in _ANDROID_MODELS])))
    ]
    os_v = np.array([o for o, _ in _ANDROID_OS], dtype=object)[
        rng.choice(len(_ANDROID_OS), n, p=_renorm(np.array([x for _, x in _ANDROID_OS])))
    ]
    ios_v = np.array([v for _, v, _ in _IOS], dtype=object)[rng.integers(0, len(_IOS), n)]
    android_ua = (
        f"AcmeMail/{prm['version']} (Android " + os_v + "; " + model + f") okhttp/{prm['okhttp']}"
    )
    ios_ua = f"AcmeMail/{prm['version']} (iPhone; iOS " + ios_v + "; Scale/3.00)"
    return {
        "t": _diurnal_ms(rng, w.tz[ci]),
        "email": p["local"] + "@" + p["domain"],
        "ip": ip,
        "username": p["username"],
        "display_name": p["display_name"],
        "ip_asn": asn,
        "ip_country": ip_country,
        "user_agent": np.where(ios, ios_ua, android_ua).astype(object),
        "device_id": _rand_str(rng, n, 16, _HEX),
        "signup_flow": np.where(ios, "ios", "android").astype(object),
        "captcha_score": _captcha_human(rng, n),
    }


def _crowd_login_codes(day: _Day, spec: GroupSpec, rng: np.random.Generator, n: int) -> Cols:
    """Apps' sign-in codes and password resets: one recipient each, all day."""
    w, prm = _mix(day), spec.params
    apps = prm["apps"]
    a = rng.integers(0, len(apps), n)
    name = np.array([x[0] for x in apps], dtype=object)[a]
    domain = np.array([x[1] for x in apps], dtype=object)[a]
    code = _z(rng.integers(0, 1_000_000, n), 6)
    kind = rng.random(n) < 0.7
    subject = np.where(
        kind, "Your " + name + " sign-in code is " + code, "Reset your " + name + " password"
    )
    body = np.where(
        kind,
        "Your code is "
        + code
        + ". It expires in 10 minutes. If this wasn't you, ignore this email.",
        "We received a request to reset your password: https://"
        + domain
        + "/reset/"
        + _rand_str(rng, n, 24, _ALNUM),
    )
    subnets = np.array(prm["subnets"], dtype=object)
    rc = np.ones(n, dtype=np.int64)
    return {
        "t": _diurnal_ms(rng, np.full(n, prm["tz"])),
        "sender": np.where(kind, "no-reply@", "security@").astype(object) + domain,
        "sender_ip": subnets[rng.integers(0, len(subnets), n)]
        + "."
        + _obj(rng.integers(2, 255, n)),
        "recipient_count": rc,
        "recipient_domains": _join_domains(rng, w.recipient_domains, w.recipient_p, rc, 1),
        "subject": subject.astype(object),
        "body": body.astype(object),
        "x_mailer": np.full(n, None, dtype=object),
        "bounced": rng.random(n) < 0.01,
        "complained": rng.random(n) < 0.0005,
    }


_CROWDS: dict[str, Callable[[_Day, GroupSpec, np.random.Generator, int], Cols]] = {
    "campus_nat": _crowd_campus_nat,
    "marketing_burst": _crowd_marketing_burst,
    "office_nat": _crowd_office_nat,
    "event_wifi": _crowd_event_wifi,
    "app_release": _crowd_app_release,
    "newsletter": _style_newsletter,
    "transactional": _style_transactional,
    "login_codes": _crowd_login_codes,
}


# ---------------------------------------------------------------------------------------------
# The plan of a world, and the values of each actor's families.


@dataclass(frozen=True)
class _Plan:
    world: int
    mix: _MixWorld
    actors: tuple[ActorSpec, ...]
    crowds: tuple[GroupSpec, ...]


@functools.lru_cache(maxsize=32)
def _plan(world: int) -> _Plan:
    """The world's mix, actors and crowds (drawn once; none of it depends on the scale)."""
    w = _MixWorld(world)
    rng = _rng(world, "actors")
    n_actors = int(rng.integers(6, 11))
    n_senders = int(rng.integers(1, 4))
    actors = [_signup_actor(w, world, i) for i in range(n_actors - n_senders)]
    actors += [_sender_actor(w, world, i) for i in range(n_senders)]
    return _Plan(world, w, tuple(actors), _draw_crowds(world, w))


def _fresh(
    gen: Callable[[np.random.Generator, int], Sequence[Any]],
    rng: np.random.Generator,
    k: int,
    exclude: frozenset[Any] = frozenset(),
) -> tuple[Any, ...]:
    """``k`` distinct values from ``gen`` that are not in ``exclude``, in drawn order.

    Fewer when the candidates run out (then values may repeat an earlier day's rather than
    none being left).
    """
    out: dict[Any, None] = {}
    for _ in range(50):
        for v in gen(rng, max(8, 2 * k)):
            if v not in exclude and v not in out:
                out[v] = None
                if len(out) == k:
                    return tuple(out)
    if not out:
        out = dict.fromkeys(gen(rng, k))
    return tuple(out)


def _gen_blocks(asns: Sequence[int]) -> Callable[[np.random.Generator, int], list[str]]:
    prefixes = [p for a in asns for p in _HOSTING[int(a)][1]]
    return lambda rng, m: [
        f"{prefixes[int(i)]}.{int(o)}"
        for i, o in zip(rng.integers(0, len(prefixes), m), rng.integers(0, 256, m), strict=True)
    ]


def _gen_throwaway(tlds: Sequence[str]) -> Callable[[np.random.Generator, int], list[str]]:
    def gen(rng: np.random.Generator, m: int) -> list[str]:
        stem = _pronounceable(rng, m, int(rng.integers(2, 4))) + np.where(
            rng.random(m) < 0.3, _obj(rng.integers(1, 100, m)), ""
        )
        return list(stem + np.asarray(tlds, dtype=object)[rng.integers(0, len(tlds), m)])

    return gen


def _gen_brand(brand: str) -> Callable[[np.random.Generator, int], list[str]]:
    def gen(rng: np.random.Generator, m: int) -> list[str]:
        word = np.asarray(_BRAND_WORDS, dtype=object)[rng.integers(0, len(_BRAND_WORDS), m)]
        sep = np.where(rng.random(m) < 0.6, "-", "")
        tail = np.where(rng.random(m) < 0.25, _obj(rng.integers(1, 100, m)), "")
        tld = np.asarray(_BRAND_TLDS, dtype=object)[rng.integers(0, len(_BRAND_TLDS), m)]
        return list(brand + sep + word + tail + tld)

    return gen


def _gen_browser(browser: str, os_token: str) -> Callable[[np.random.Generator, int], list[str]]:
    """Browser UAs of builds no population uses (old majors, made-up build numbers)."""

    def gen(rng: np.random.Generator, m: int) -> list[str]:
        if browser == "firefox":
            majors = rng.choice(_RARE_FIREFOX, m)
            token = "Macintosh; Intel Mac OS X 10.15" if os_token == MAC else os_token
            return [_firefox(token, f"{x}.0") for x in majors]
        majors = rng.choice(_RARE_CHROME, m)
        builds = 4896 + (majors - 100) * 61 + rng.integers(0, 40, m)
        patch = rng.integers(0, 250, m)
        out = []
        for mj, b, pt in zip(majors, builds, patch, strict=True):
            if browser == "edge":
                out.append(_chrome(os_token, f"{mj}.0.0.0") + f" Edg/{mj}.0.{b - 2000}.{pt}")
            else:
                out.append(_chrome(os_token, f"{mj}.0.{b}.{pt}"))
        return out

    return gen


def _gen_app(rng: np.random.Generator, m: int) -> list[str]:
    """Old app builds (``AcmeMail/x.y.z`` before 7.4) the population does not run.

    Release-day crowds get 7.5 and later, so an actor never shares a benign crowd's build.
    """
    builds = [f"{a}.{b}.{c}" for a, b, c in rng.integers((5, 0, 0), (8, 10, 10), (m, 3))]
    return ["AcmeMail/" + b for b in builds if b not in _POP_APP and b < "7.4"]


def _gen_script(library: str) -> Callable[[np.random.Generator, int], list[str]]:
    def gen(rng: np.random.Generator, m: int) -> list[str]:
        a, b, c = rng.integers(0, 40, m), rng.integers(0, 15, m), rng.integers(0, 10, m)
        if library == "python-requests":
            return [f"python-requests/2.{x % 33}.{z % 4}" for x, z in zip(a, c, strict=True)]
        if library == "okhttp":
            return [f"okhttp/{3 + x % 2}.{y}.{z}" for x, y, z in zip(a, b, c, strict=True)]
        if library == "axios":
            return [f"axios/{x % 2}.{y % 8}.{z}" for x, y, z in zip(a, b, c, strict=True)]
        if library == "curl":
            return [
                f"curl/{7 + x % 2}.{y * 5 + z}.{z % 3}" for x, y, z in zip(a, b, c, strict=True)
            ]
        if library == "Apache-HttpClient":
            return [
                f"Apache-HttpClient/4.5.{y} (Java/{11 + 6 * (x % 2)}.0.{z + 10})"
                for x, y, z in zip(a, b, c, strict=True)
            ]
        return [f"Go-http-client/{1 + x % 2}.{y % 2}" for x, y in zip(a, b, strict=True)]

    return gen


def _gen_mailer(tool: str) -> Callable[[np.random.Generator, int], list[str]]:
    def gen(rng: np.random.Generator, m: int) -> list[str]:
        a, b, c = rng.integers(0, 10, m), rng.integers(0, 10, m), rng.integers(0, 30, m)
        if tool == "PHPMailer":
            return [f"PHPMailer {5 + x % 2}.{y}.{z}" for x, y, z in zip(a, b, c, strict=True)]
        if tool == "The Bat!":
            return [
                f"The Bat! (v{8 + x % 3}.{y}.{z}) Professional"
                for x, y, z in zip(a, b, c, strict=True)
            ]
        if tool == "Microsoft CDO":
            return [
                f"Microsoft CDO for Windows 2000 6.{x}.{3790 + z}"
                for x, z in zip(a, c, strict=True)
            ]
        return [f"{tool} {4 + x % 6}.{y}.{z}" for x, y, z in zip(a, b, c, strict=True)]

    return gen


def _gen_names(w: _MixWorld) -> Callable[[np.random.Generator, int], list[str]]:
    def gen(rng: np.random.Generator, m: int) -> list[str]:
        fd, ld, _, _ = w.names(rng, w.sample_countries(rng, m))
        return list(fd + " " + ld)

    return gen


def _gen_bases(
    w: _MixWorld, countries: Sequence[str]
) -> Callable[[np.random.Generator, int], list[str]]:
    """Mailboxes ``firstlast`` (letters only, 10-14 long) of people of ``countries``."""
    ci_options = np.array([w.country_index(c) for c in countries])

    def gen(rng: np.random.Generator, m: int) -> list[str]:
        _, _, fa, la = w.names(rng, ci_options[rng.integers(0, len(ci_options), 8 * m)])
        return [
            f + ln
            for f, ln in zip(fa, la, strict=True)
            if (f + ln).isalpha() and 10 <= len(f + ln) <= 14
        ]

    return gen


def _name_descriptor(kind: str, params: Mapping[str, Any]) -> str:
    return kind + ":" + ",".join(f"{k}={params[k]}" for k in sorted(params) if k != "bases")


def _forced_trait(plan: _Plan, actor: ActorSpec, trait: Trait) -> Trait:
    """``trait`` moved to a class of values the actor never used (its other modes kept)."""
    rng = _rng(plan.world, actor.name, trait.family, "forced")
    fam, kind, prm = trait.family, trait.kind, dict(trait.params)
    mode: Mode = trait.mode if trait.mode != "random" else "fixed"
    if fam == "name":
        options = (
            ("random_string", "pronounceable", "role", "first_digits")
            if actor.kind == "senders"
            else ("random_string", "first_digits", "adj_noun", "pronounceable")
        )
        new = str(rng.choice([k for k in options if k != kind]))
        return Trait(fam, new, mode, _name_params(rng, new))
    if fam == "domain":
        if kind in ("freemail", "alias_gmail"):
            left = [d for d in _FREEMAIL_ALL if d not in prm["providers"] and d != "googlemail.com"]
            k = min(len(prm["providers"]), len(left))
            providers = tuple(str(d) for d in rng.choice(left, k, replace=False))
            return Trait(
                fam, "freemail", mode, {"providers": providers, "weights": tuple([1.0 / k] * k)}
            )
        if kind == "throwaway":
            left = [t for t in _GTLDS if t not in prm["tlds"]]
            prm["tlds"] = tuple(
                str(t) for t in rng.choice(left, min(len(prm["tlds"]), len(left)), replace=False)
            )
        elif kind == "lookalike_brand":
            prm["brand"] = str(rng.choice([b for b in _BRANDS if b != prm["brand"]]))
        return Trait(fam, kind, trait.mode, prm)
    if fam == "network":
        if kind.startswith("hosting"):
            avoid = list(prm["asns"])
            new_asns = [a for a in _HOSTING_ASNS if a not in avoid]
            prm["asns"] = tuple(int(a) for a in rng.choice(new_asns, len(avoid), replace=False))
        elif kind == "resi_proxy":
            left = [str(c) for c in plan.mix.codes if c not in prm["countries"]]
            prm["countries"] = tuple(
                str(c) for c in rng.choice(left, len(prm["countries"]), replace=False)
            )
        elif kind == "mobile_cgnat":
            prm = _carrier_params(rng, plan.mix, avoid=(prm["asn"],))
        return Trait(fam, kind, trait.mode, prm)
    if fam == "client" and kind == "none":
        return Trait(
            fam, "mailer_fixed", "fixed", {"tool": str(rng.choice(_MAILER_TOOLS)), "count": 1}
        )
    if fam == "display" and kind == "empty":
        return Trait(fam, "small_list", "fixed", {"size": int(rng.integers(3, 13))})
    if fam == "captcha":
        return Trait(fam, str(rng.choice([k for k in _CAPTCHA if k != kind])), "fixed")
    if fam == "cadence":
        if kind == "window":
            width = prm["width_h"]
            prm["width_h"] = round(
                float(rng.uniform(2, 8))
                if width >= 20
                else (width / 2 if width >= 1 else width * 2),
                2,
            )
        elif kind == "periodic":
            prm["period_s"] = round(prm["period_s"] * float(rng.uniform(1.5, 2.5)), 1)
        elif kind == "diurnal":
            prm["tz"] = float((prm["tz"] + 24 + rng.uniform(6, 12)) % 24 - 12)
        elif kind == "waves":
            prm["width_min"] = int(prm["width_min"]) + 15
        return Trait(fam, kind, trait.mode, prm)
    if fam == "content":
        return Trait(
            fam,
            kind,
            trait.mode,
            {"theme": str(rng.choice([t for t in _THEMES if t != prm["theme"]]))},
        )
    return trait  # pools, builds, lists: same class, values from a stream of their own


def _palette(
    plan: _Plan,
    actor: ActorSpec,
    trait: Trait,
    day: int,
    n: int,
    key: str,
    exclude: frozenset[Any],
) -> dict[str, Any]:
    """The values of ``trait`` on ``day`` (``n`` rows): ``{"values": (...), ...}``.

    ``fixed`` families draw from slot 0 of their stream, ``rotate`` ones from the day's slot,
    avoiding ``exclude`` (what the actor used before).
    """
    w = plan.mix
    slot = day if trait.mode == "rotate" else 0
    rng = _rng(plan.world, actor.name, trait.family, key, slot)
    fam, kind, prm = trait.family, trait.kind, trait.params

    if fam == "name":
        if kind == "people":
            return {"values": ()}
        if kind == "alias":
            bases = _fresh(_gen_bases(w, actor.params["countries"]), rng, prm["bases"], exclude)
            return {"values": bases}
        args = dict(prm)
        if slot > 0:  # another template of the same shape family
            for _ in range(50):
                if _name_descriptor(kind, args) not in exclude:
                    break
                args = _name_params(rng, kind)
        return {"values": (_name_descriptor(kind, args),), "args": args}

    if fam == "domain":
        if kind in ("population", "compromised"):
            return {"values": ()}
        if kind in ("freemail", "alias_gmail"):
            providers, weights = tuple(prm["providers"]), tuple(prm["weights"])
            if slot > 0 and kind == "freemail":  # other providers today
                left = [d for d in _FREEMAIL_ALL if d not in exclude] or list(_FREEMAIL_ALL)
                providers = tuple(
                    str(d) for d in rng.choice(left, min(len(providers), len(left)), replace=False)
                )
                weights = tuple([1.0 / len(providers)] * len(providers))
            return {"values": providers, "weights": weights}
        if kind == "throwaway":
            # several a day, each used by a handful of rows
            k = max(3, math.ceil(n / prm["per_domain"])) if trait.mode == "rotate" else prm["count"]
            return {"values": _fresh(_gen_throwaway(prm["tlds"]), rng, k, exclude)}
        return {"values": _fresh(_gen_brand(prm["brand"]), rng, prm["count"], exclude)}

    if fam == "network":
        if kind.startswith("hosting"):
            return {"values": _fresh(_gen_blocks(prm["asns"]), rng, prm["subnets"], exclude)}
        if kind == "resi_proxy":
            return {"values": tuple(prm["countries"])}
        exits = w.cgnat[prm["carrier"]][0]
        return {"values": _fresh(lambda r, m: list(r.choice(exits, m)), rng, prm["exits"], exclude)}

    if fam == "client":
        if kind in ("common", "mobile_web", "population"):
            return {"values": ()}
        if kind == "none":
            return {"values": (None,)}
        if kind in ("rare_build", "few_builds"):
            values = _fresh(_gen_browser(prm["browser"], prm["os"]), rng, prm["count"], exclude)
            if kind == "few_builds":  # one of the most common builds among the rare ones
                strings, p = w.uas["desktop"]
                common = [str(strings[i]) for i in np.argsort(-p) if strings[i] not in exclude]
                values = (*values[:-1], common[0])
            return {"values": values}
        if kind == "app":
            srng = _rng(plan.world, actor.name, "client", "models")  # the farm's phones stay
            pool = _EMULATORS if prm["emulator"] else tuple(m for m, _ in _ANDROID_MODELS)
            models = srng.choice(pool, prm["models"], replace=False)
            os_v, okhttp = srng.choice(("9", "10", "11", "12")), srng.choice(("3.14.9", "4.9.3"))
            builds = {str(u).split(" ")[0] for u in exclude}
            build = _fresh(_gen_app, rng, 1, frozenset(builds))[0]
            uas = (f"{build} (Android {os_v}; {md}) okhttp/{okhttp}" for md in models)
            return {"values": tuple(uas)}
        if kind == "script":
            return {"values": _fresh(_gen_script(prm["library"]), rng, 1, exclude)}
        return {"values": _fresh(_gen_mailer(prm["tool"]), rng, prm["count"], exclude)}

    if fam == "device":
        if kind == "none":
            return {"values": ()}
        return {
            "values": _fresh(
                lambda r, m: list(_rand_str(r, m, 16, _HEX)), rng, prm["size"], exclude
            )
        }

    if fam == "display":
        if kind == "empty":
            return {"values": ("",)}
        if kind == "small_list":
            return {"values": _fresh(_gen_names(w), rng, prm["size"], exclude)}
        return {"values": ()}

    if fam == "captcha":
        a, b = _CAPTCHA[kind]
        jitter = _rng(plan.world, actor.name, "captcha", "jitter").uniform(0.8, 1.25, 2)
        return {"values": (round(float(a * jitter[0]), 3), round(float(b * jitter[1]), 3))}

    if fam == "cadence":
        if kind == "window":
            start = prm["start_h"]
            if slot > 0 or key == "forced":
                starts = _fresh(lambda r, m: list(r.integers(0, 96, m) / 4), rng, 1, exclude)
                start = float(starts[0])
            return {"values": (start,), "width_h": prm["width_h"]}
        if kind == "periodic":
            period = prm["period_s"]
            if slot > 0:
                period = float(
                    _fresh(
                        lambda r, m: list(np.round(period * r.uniform(0.5, 2.0, m), 1)),
                        rng,
                        1,
                        exclude,
                    )[0]
                )
            return {"values": (period,), "jitter": prm["jitter"]}
        if kind == "waves":
            hours = _fresh(lambda r, m: list(r.integers(0, 24, m)), rng, prm["waves"], exclude)
            return {"values": tuple(sorted(hours)), "width_min": prm["width_min"]}
        return {"values": (prm["tz"],)}

    # content: the lure's landing domains
    gen = _gen_throwaway((".top", ".xyz", ".info", ".click", ".online", ".link"))
    return {"values": _fresh(gen, rng, 2, exclude), "theme": prm["theme"]}


def _family_palettes(
    plan: _Plan, actor: ActorSpec, family: str, counts: Sequence[int], forced: bool
) -> list[tuple[Trait, dict[str, Any]]]:
    """``(trait, palette)`` of ``family`` for every day.

    With ``forced``, days after the first use :func:`_forced_trait` and a stream of their own,
    excluding every value of the first day (and, when rotating, of the days between).
    """
    base = actor.traits[family]
    moved = _forced_trait(plan, actor, base) if forced else None
    out: list[tuple[Trait, dict[str, Any]]] = []
    used: set[Any] = set()
    first: frozenset[Any] = frozenset()
    for day, n in enumerate(counts):
        if moved is not None and day >= 1:
            trait, key = moved, "forced"
            exclude = frozenset(used) if trait.mode == "rotate" else first
        else:
            trait, key = base, "base"
            exclude = frozenset(used) if trait.mode == "rotate" else frozenset()
        pal = _palette(plan, actor, trait, day, n, key, exclude)
        out.append((trait, pal))
        used |= set(pal["values"])
        if day == 0:
            first = frozenset(pal["values"])
    return out


# ---------------------------------------------------------------------------------------------
# Rows of one actor on one day: every family from its own stream.


def _persona(plan: _Plan, actor: ActorSpec, day: int, n: int) -> dict[str, np.ndarray]:
    """Names the actor's rows are built on (shared by its name and display families)."""
    w = plan.mix
    rng = _rng(plan.world, actor.name, "persona", day + 1)
    options = np.array([w.country_index(c) for c in actor.params["countries"]])
    ci = options[rng.integers(0, len(options), n)]
    fd, ld, fa, la = w.names(rng, ci)
    return {"ci": ci, "first": fd, "last": ld, "first_a": fa, "last_a": la}


def _capacity_digits(digits: int, variety: int, n: int) -> int:
    """At least ``digits``, and enough that ``n`` names rarely clash."""
    need = math.ceil(math.log10(max(1.0, 4 * n / max(variety, 1))))
    return max(digits, need)


def _make_locals(
    kind: str,
    args: Mapping[str, Any],
    values: Sequence[Any],
    rng: np.random.Generator,
    persona: Mapping[str, np.ndarray],
    idx: np.ndarray,
    n_total: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Local parts and usernames for rows ``idx`` of the day."""
    n = len(idx)
    fa, la = persona["first_a"][idx], persona["last_a"][idx]
    if kind == "random_string":
        length = int(args["length"])
        if args["alphabet"] == "soup":
            local = _consonant_soup(rng, n, length, length)
        else:
            local = _rand_str(
                rng, n, length, _ALNUM if args["alphabet"] == "alnum" else _ALNUM[:26]
            )
        return local, local
    if kind == "people":
        return _usernames(rng, fa, la, (1962, 2006))
    if kind == "alias":
        return _alias_locals(rng, np.asarray(values, dtype=object), args, n)
    if kind == "first_digits":
        d = _capacity_digits(int(args["digits"]), 40, n_total)
        local = fa + args["sep"] + _z(rng.integers(0, 10**d, n), d)
        return local, local
    if kind == "adj_noun":
        d = _capacity_digits(int(args["digits"]), len(_ADJECTIVES) * len(_NOUNS), n_total)
        adj = np.asarray(_ADJECTIVES, dtype=object)[rng.integers(0, len(_ADJECTIVES), n)]
        noun = np.asarray(_NOUNS, dtype=object)[rng.integers(0, len(_NOUNS), n)]
        tail = _z(rng.integers(0, 10**d, n), d) if d else np.full(n, "", dtype=object)
        local = adj + args["sep"] + noun + tail
        return local, local
    if kind == "pronounceable":
        syl = int(args["syllables"])
        d = _capacity_digits(int(args["digits"]), 120**syl, n_total)
        tail = _z(rng.integers(0, 10**d, n), d) if d else np.full(n, "", dtype=object)
        local = _pronounceable(rng, n, syl) + tail
        return local, local
    # role
    d = _capacity_digits(int(args["digits"]), len(_ROLE_WORDS), n_total)
    word = np.asarray(_ROLE_WORDS, dtype=object)[rng.integers(0, len(_ROLE_WORDS), n)]
    local = word + args["sep"] + _z(rng.integers(0, 10**d, n), d)
    return local, local


def _alias_locals(
    rng: np.random.Generator, bases: np.ndarray, args: Mapping[str, Any], n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Plus-tagged and dotted variants of a few mailboxes (at least two dots when untagged)."""
    b = rng.integers(0, len(bases), n)
    dotted = rng.random(n) < args["dotted_share"]
    tags = np.where(
        rng.random(n) < 0.5,
        _rand_str_var(rng, n, 3, 6, _ALNUM),
        np.asarray(("promo", "news", "shop", "deals", "win", "reg"), dtype=object)[
            rng.integers(0, 6, n)
        ]
        + _obj(rng.integers(1, 1000, n)),
    )
    gap_p = np.where(rng.random(n) < 0.4, 0.0, rng.uniform(0.1, 0.5, n))
    gaps = rng.random((n, 13))
    local = np.empty(n, dtype=object)
    for i in range(n):  # bit masks per row; alias farms are a few percent of a day at most
        base = str(bases[b[i]])
        g = gaps[i, : len(base) - 1]
        mask = int(
            ((g < (0.35 if dotted[i] else gap_p[i])) * (1 << np.arange(len(base) - 1))).sum()
        )
        if dotted[i]:
            while mask.bit_count() < 2:
                mask |= 1 << int(rng.integers(0, len(base) - 1))
            local[i] = _dotted(base, mask)
        else:
            local[i] = _dotted(base, mask) + "+" + tags[i]
    username = np.where(
        rng.random(n) < 0.5,
        bases[b] + _obj(rng.integers(10, 1000, n)),
        _rand_str_var(rng, n, 8, 12, _ALNUM),
    )
    return local, username


def _actor_locals(
    trait: Trait,
    pal: Mapping[str, Any],
    rng: np.random.Generator,
    persona: Mapping[str, np.ndarray],
    n: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The name family's local parts, distinct within the day (the actor retries a taken one)."""
    args = pal.get("args", trait.params)
    idx = np.arange(n)
    local, username = _make_locals(trait.kind, args, pal["values"], rng, persona, idx, n)
    for _ in range(8):
        dup = pd.Series(local).duplicated().to_numpy()
        if not dup.any():
            break
        again = idx[dup]
        local[again], username[again] = _make_locals(
            trait.kind, args, pal["values"], rng, persona, again, n
        )
    return local, username


def _actor_domains(
    plan: _Plan,
    trait: Trait,
    pal: Mapping[str, Any],
    rng: np.random.Generator,
    persona: Mapping[str, np.ndarray],
    n: int,
) -> np.ndarray:
    values = np.asarray(pal["values"], dtype=object)
    if trait.kind == "population":
        return plan.mix.mail_domains(rng, persona["ci"])
    if trait.kind == "compromised":
        w = plan.mix
        return w.free_d[rng.choice(len(w.free_d), n, p=w.free_p)]
    if trait.kind in ("freemail", "alias_gmail"):
        return values[rng.choice(len(values), n, p=_renorm(np.array(pal["weights"])))]
    return values[_spread(rng, len(values), n)]  # throwaway or look-alike: every one used


def _actor_network(
    plan: _Plan, trait: Trait, pal: Mapping[str, Any], rng: np.random.Generator, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ip, asn, country)``."""
    w = plan.mix
    values = np.asarray(pal["values"], dtype=object)
    if trait.kind.startswith("hosting"):
        which = rng.integers(0, len(values), n)
        owners = [_PFX_OWNER[b.rsplit(".", 1)[0]] for b in values]
        asn = np.array([o[0] for o in owners], dtype=np.int64)[which]
        country = np.array([o[1] for o in owners], dtype=object)[which]
        return values[which] + "." + _obj(rng.integers(2, 255, n)), asn, country
    if trait.kind == "resi_proxy":
        options = np.array([w.country_index(c) for c in values])
        net = w.pick_nets(rng, options[rng.integers(0, len(options), n)], w.resi)
        return w.random_ips(rng, net), w.asn[net], w.net_country[net]
    carrier = NETWORKS[trait.params["carrier"]]
    ip = values[rng.integers(0, len(values), n)]
    return ip, np.full(n, carrier.asn, dtype=np.int64), np.full(n, carrier.country, dtype=object)


def _actor_client(
    plan: _Plan, trait: Trait, pal: Mapping[str, Any], rng: np.random.Generator, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(signup_flow, user_agent)``."""
    w = plan.mix
    kind = trait.kind
    if kind in ("common", "mobile_web"):
        strings, p = w.uas["desktop" if kind == "common" else "android_web"]
        keep = p >= trait.params.get("min_share", 0.0) if kind == "common" else p > 0
        if keep.sum() < 3:
            keep = p >= np.sort(p)[-3]
        ua = strings[keep][rng.choice(int(keep.sum()), n, p=_renorm(p[keep]))]
        return np.full(n, "web", dtype=object), ua
    if kind == "app":
        options = np.asarray(pal["values"], dtype=object)
        return np.full(n, "android", dtype=object), options[rng.integers(0, len(options), n)]
    values = np.asarray(pal["values"], dtype=object)
    ua = values[rng.integers(0, len(values), n)]
    if kind == "script":
        return np.full(n, "api", dtype=object), ua
    api = rng.random(n) < trait.params.get("api_share", 0.0)
    return np.where(api, "api", "web").astype(object), ua


def _actor_times(
    trait: Trait, pal: Mapping[str, Any], rng: np.random.Generator, n: int
) -> np.ndarray:
    kind = trait.kind
    if kind == "window":
        start = pal["values"][0] * HOUR_MS
        t = start + rng.random(n) * pal["width_h"] * HOUR_MS
        return np.mod(t, DAY_MS).astype(np.int64)
    if kind == "periodic":
        period = pal["values"][0] * 1000
        return _cadence_times(rng, n, period, period * pal["jitter"])
    if kind == "waves":
        hours = np.asarray(pal["values"], dtype=np.int64)
        t = (
            hours[rng.integers(0, len(hours), n)] * HOUR_MS
            + rng.random(n) * pal["width_min"] * 60_000
        )
        return np.mod(t, DAY_MS).astype(np.int64)
    return _diurnal_ms(rng, np.full(n, pal["values"][0]))


def _actor_signups(
    plan: _Plan,
    actor: ActorSpec,
    day: int,
    n: int,
    fams: Mapping[str, tuple[Trait, dict[str, Any]]],
) -> Cols:
    def rows(family: str) -> np.random.Generator:
        return _rng(plan.world, actor.name, family, "rows", day + 1)

    persona = _persona(plan, actor, day, n)
    local, username = _actor_locals(*fams["name"], rows("name"), persona, n)
    domain = _actor_domains(plan, *fams["domain"], rows("domain"), persona, n)
    ip, asn, country = _actor_network(plan, *fams["network"], rows("network"), n)
    flow, ua = _actor_client(plan, *fams["client"], rows("client"), n)

    trait, pal = fams["device"]
    drng = rows("device")
    if trait.kind == "pool":
        pool = np.asarray(pal["values"], dtype=object)
        device = pool[drng.integers(0, len(pool), n)]
    else:
        device = _rand_str(drng, n, 16, _HEX)

    trait, pal = fams["display"]
    prng = rows("display")
    if trait.kind == "population":
        display = _display_names(prng, persona["first"], persona["last"])
    elif trait.kind == "soup":
        soup = _consonant_soup(prng, n, 5, 7)
        display = np.array([s.capitalize() for s in soup], dtype=object)
    else:
        names = np.asarray(pal["values"], dtype=object)
        display = names[prng.integers(0, len(names), n)]

    _, pal = fams["captcha"]
    return {
        "t": _actor_times(*fams["cadence"], rows("cadence"), n),
        "email": local + "@" + domain,
        "ip": ip,
        "username": username,
        "display_name": display,
        "ip_asn": np.asarray(asn, dtype=np.int64),
        "ip_country": country,
        "user_agent": ua,
        "device_id": device,
        "signup_flow": flow,
        "captcha_score": _beta(rows("captcha"), pal["values"], n),
    }


def _actor_senders(
    plan: _Plan,
    actor: ActorSpec,
    day: int,
    n: int,
    fams: Mapping[str, tuple[Trait, dict[str, Any]]],
) -> Cols:
    def rows(family: str) -> np.random.Generator:
        return _rng(plan.world, actor.name, family, "rows", day + 1)

    w, prm = plan.mix, actor.params
    k = _entities(actor, n)
    arng = _rng(plan.world, actor.name, "volume", day + 1)
    who = _spread(arng, k, n)
    persona = _persona(plan, actor, day, k)
    local, _ = _actor_locals(*fams["name"], rows("name"), persona, k)
    domain = _actor_domains(plan, *fams["domain"], rows("domain"), persona, k)
    ip, _, _ = _actor_network(plan, *fams["network"], rows("network"), n)

    trait, pal = fams["client"]
    crng = rows("client")
    if trait.kind == "population":
        mailers = np.array([m for m, _ in _MAILERS], dtype=object)
        per_sender = mailers[
            crng.choice(len(mailers), k, p=_renorm(np.array([x for _, x in _MAILERS])))
        ]
    else:
        values = np.asarray(pal["values"], dtype=object)
        per_sender = values[crng.integers(0, len(values), k)]
    x_mailer = per_sender[who]

    trait, pal = fams["content"]
    trng = rows("content")
    templates, opening, closing = _THEMES[pal["theme"]]
    number = _obj(trng.integers(10000, 100000, n))
    heads = np.array([t.split("{n}")[0] for t in templates], dtype=object)
    tails = np.array([t.split("{n}")[1] for t in templates], dtype=object)
    which = trng.integers(0, len(templates), n)
    landing = np.asarray(pal["values"], dtype=object)
    url = (
        "https://"
        + landing[trng.integers(0, len(landing), n)]
        + "/"
        + _rand_str(trng, n, 10, _ALNUM)
    )
    lo, hi = prm["recipients"]
    rc = arng.integers(lo, hi + 1, n).astype(np.int64)
    if pal["theme"] == "invoice":  # small businesses are the targets
        corp = w.corporate[str(prm["countries"][0])]
        targets, target_p = corp, np.full(len(corp), 1 / len(corp))
    else:
        targets, target_p = w.free_d, w.free_p
    return {
        "t": _actor_times(*fams["cadence"], rows("cadence"), n),
        "sender": (local + "@" + domain)[who],
        "sender_ip": ip,
        "recipient_count": rc,
        "recipient_domains": _join_domains(arng, targets, target_p, rc, 6),
        "subject": heads[which] + number + tails[which],
        "body": opening + url + closing,
        "x_mailer": x_mailer,
        "bounced": arng.random(n) < prm["bounce"],
        "complained": arng.random(n) < prm["complaint"],
    }


# ---------------------------------------------------------------------------------------------
# Public API.


def world_actors(
    world: int, *, signups_per_day: int = 20_000, messages_per_day: int = 40_000
) -> list[ActorSpec]:
    """The campaign actors of ``world``, each trait with its first day's values.

    Parameters
    ----------
    world
        World number.
    signups_per_day, messages_per_day
        Scale the values are shown for (only the number of daily throwaway domains depends
        on it).

    Returns
    -------
    list of ActorSpec
        Signup actors first (the first is the low-and-slow one), then sender actors.
    """
    plan = _plan(world)
    totals = {"signups": signups_per_day, "senders": messages_per_day}
    out = []
    for actor in plan.actors:
        n = _entities(actor, _count(world, actor.name, actor.share, totals[actor.kind], 0))
        traits = {}
        for family, trait in actor.traits.items():
            pal = _palette(plan, actor, trait, 0, n, "base", frozenset())
            traits[family] = replace(trait, values=tuple(pal["values"]))
        out.append(replace(actor, traits=traits))
    return out


def world_crowds(world: int) -> list[GroupSpec]:
    """The benign look-alike crowds of ``world`` (label ``lookalike``)."""
    return list(_plan(world).crowds)


def _entities(actor: ActorSpec, n: int) -> int:
    """Entities behind ``n`` rows: accounts for signups, sender addresses for messages."""
    return n if actor.kind == "signups" else max(1, round(n / actor.params["per_sender"]))


def _count(world: int, name: str, share: float, total: int, day: int) -> int:
    """Rows of a group on ``day``; shares jitter a few percent from day to day."""
    jitter = _rng(world, name, "count", day + 1).uniform(0.93, 1.07)
    return max(5, round(share * total * jitter))


def _check_rotate(plan: _Plan, rotate: Mapping[str, str] | None) -> dict[str, str]:
    actors = {a.name: a for a in plan.actors}
    for name, family in (rotate or {}).items():
        if name not in actors:
            raise ValueError(
                f"world {plan.world} has no actor {name!r}; actors: {', '.join(actors)}"
            )
        if family not in actors[name].traits:
            known = ", ".join(actors[name].traits)
            raise ValueError(f"actor {name!r} has no trait family {family!r}; families: {known}")
        if family not in actors[name].rotatable:
            log.warning(
                "actor %s draws %s from the population; rotating it changes nothing", name, family
            )
    return dict(rotate or {})


def _actors_yield(
    parts: Sequence[tuple[Cols, str, str, str, str]], actors: set[str], column: str
) -> None:
    """Give actors' addresses that another group already holds a digit suffix, in place.

    An actor whose address is taken retries with digits, as a bot does, so whether an
    ordinary person keeps their address never depends on what the actors drew (and moving one
    of an actor's families leaves everyone else's rows alone). Parts come in day order, each
    day's population and crowds before its actors.
    """
    taken: set[str] = set()
    for cols, day, _, group, _ in parts:
        address = cols[column]
        if group not in actors:
            taken.update(address)
            continue
        address = address.copy()
        for attempt in range(20):
            clash = np.fromiter((a in taken for a in address), dtype=bool, count=len(address))
            if column == "email":  # one account per address; a sender sends many messages
                clash |= pd.Series(address).duplicated().to_numpy()
            if not clash.any():
                break
            for i in np.flatnonzero(clash):
                local, domain = str(address[i]).rsplit("@", 1)
                suffix = _crc(f"{address[i]}|{group}|{day}|{attempt}") % 999 + 1
                address[i] = f"{local}{suffix}@{domain}"
        if column == "email":
            old_local = np.array([a.rsplit("@", 1)[0] for a in cols[column]], dtype=object)
            new_local = np.array([a.rsplit("@", 1)[0] for a in address], dtype=object)
            cols["username"] = np.where(cols["username"] == old_local, new_local, cols["username"])
        cols[column] = address
        taken.update(address)


def generate_world(
    world: int,
    *,
    days: int = 2,
    signups_per_day: int = 20_000,
    messages_per_day: int = 40_000,
    start: str = "2026-11-01",
    rotate: Mapping[str, str] | None = None,
) -> SyntheticData:
    """Generate ``days`` days of signups and messages of world ``world``.

    Parameters
    ----------
    world
        World number: seeds the population mix, the crowds, the actors and every row.
    days
        Number of consecutive UTC days, starting at ``start``.
    signups_per_day, messages_per_day
        Total rows per day: benign population, look-alike crowds and actors together.
    start
        First date, ``YYYY-MM-DD``.
    rotate
        Actor name -> trait family (see :func:`world_actors`, ``ActorSpec.rotatable``): from
        the second day on, that family of that actor takes values the actor never used (a
        new build, new ASNs and /24s, new domains, another name template, a new device pool,
        another cadence, ...). Every other column of every row stays as without ``rotate``.

    Returns
    -------
    SyntheticData
        Events in the input contracts and their labels, as :func:`pipelines.synthetic.generate`.

    Raises
    ------
    ValueError
        On ``days < 1``, a scale too small for the planted groups, or an unknown actor or
        family in ``rotate``.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    plan = _plan(world)
    forced = _check_rotate(plan, rotate)
    first = datetime.strptime(start, "%Y-%m-%d").date()
    totals = {"signups": signups_per_day, "senders": messages_per_day}
    groups: list[ActorSpec | GroupSpec] = [*plan.crowds, *plan.actors]
    counts = {
        g.name: [_count(world, g.name, g.share, totals[g.kind], d) for d in range(days)]
        for g in groups
    }
    planted = {
        (kind, d): sum(counts[g.name][d] for g in groups if g.kind == kind)
        for kind in totals
        for d in range(days)
    }
    for (kind, _), n_planted in planted.items():
        if n_planted >= totals[kind]:
            raise ValueError(f"{kind} per day ({totals[kind]}) too small for the planted groups")
    families = {}
    for a in plan.actors:
        entities = [_entities(a, c) for c in counts[a.name]]
        families[a.name] = {
            f: _family_palettes(plan, a, f, entities, forced.get(a.name) == f) for f in a.traits
        }
    pool = _sender_pool(plan.mix, _crc(f"worlds:{world}:senders"), max(50, messages_per_day // 2))
    parts: dict[str, list[tuple[Cols, str, str, str, str]]] = {"signups": [], "senders": []}
    dates = []
    for d in range(days):
        ds = (first + timedelta(days=d)).isoformat()
        dates.append(ds)
        day = _WDay(plan.mix, world, d, first + timedelta(days=d), pool)
        for kind, population in (
            ("signups", _population_signups),
            ("senders", _senders_population),
        ):
            n_benign = totals[kind] - planted[kind, d]
            parts[kind].append(
                (
                    population(day, day.rng(f"population:{kind}"), n_benign),
                    ds,
                    "benign",
                    "population",
                    "population",
                )
            )
            for spec in plan.crowds:
                if spec.kind == kind:
                    cols = _CROWDS[spec.style](day, spec, day.rng(spec.name), counts[spec.name][d])
                    parts[kind].append((cols, ds, spec.label, spec.name, spec.style))
            for actor in plan.actors:
                if actor.kind != kind:
                    continue
                fams = {f: families[actor.name][f][d] for f in actor.traits}
                make = _actor_signups if kind == "signups" else _actor_senders
                cols = make(plan, actor, d, counts[actor.name][d], fams)
                parts[kind].append((cols, ds, "campaign", actor.name, actor.style))
    actor_names = {a.name for a in plan.actors}
    for kind in parts:
        _actors_yield(parts[kind], actor_names, "email" if kind == "signups" else "sender")
    signups, signup_labels = _assemble(parts["signups"], "signups")
    senders, sender_labels = _assemble(parts["senders"], "senders")
    log.info(
        "world %d: %d signups and %d messages over %d days, %d actors, %d crowds",
        world,
        len(signups),
        len(senders),
        days,
        len(plan.actors),
        len(plan.crowds),
    )
    return SyntheticData(signups, senders, signup_labels, sender_labels, dates)
