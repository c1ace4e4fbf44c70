"""Run configuration: defaults, and a TOML file that overrides them.

Unknown keys and wrong types are errors (a typo must not silently fall back to a default).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_args, get_type_hints

from anomaly.drift import HealthThresholds
from clustering.spec import read_toml

__all__ = [
    "AllowlistConfig",
    "Allowlists",
    "ConfigError",
    "JobConfig",
    "KindConfig",
    "LifecycleConfig",
    "NightlyConfig",
    "RuleConfig",
    "StoreConfig",
    "load_config",
]


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and key."""


@dataclass
class KindConfig:
    """Clustering and scoring parameters of one entity kind."""

    # the smallest campaign worth a rule: 0.1% of a 20k night is 20 entities, in fragments
    min_cluster_size: int = 8
    min_samples: int = 5
    n_neighbors: int = 20
    cluster_selection_method: str = "eom"
    max_cluster_share: float = 0.2  # no selected cluster holds more than this share of entities
    # false-discovery rate of the coordination and risk tests over a night's clusters
    fdr: float = 0.05
    # owned independent signal families that flag a cluster without risk evidence
    min_families: int = 2


@dataclass
class RuleConfig:
    """Rule induction and guard parameters."""

    min_recall: float = 0.9
    rules_per_campaign: int = 3
    max_predicates: int = 4
    enforce_precision: float = 0.98  # share of a rule's hits on flagged campaigns, to enforce
    # Wilson 95% lower bound of the share of the night's background a rule leaves alone
    enforce_background_lower: float = 0.999
    max_expected_background: float = 0.25  # estimated background hits a night, at most
    max_traffic_share: float = 0.1  # blast-radius cap: share of a day's rows one rule may hit
    ttl_days: int = 7
    action: str = "block"


@dataclass
class AllowlistConfig:
    """Values no rule may ever match, for one kind (applied to every rule, in every export)."""

    domains: list[str] = field(default_factory=list)  # email / sender domains
    asns: list[int] = field(default_factory=list)  # signups: ip_asn
    prefixes: list[str] = field(default_factory=list)  # CIDR blocks of ip / sender_ip
    ids: list[str] = field(default_factory=list)  # account_id / message_id


@dataclass
class Allowlists:
    signups: AllowlistConfig = field(default_factory=AllowlistConfig)
    senders: AllowlistConfig = field(default_factory=AllowlistConfig)


@dataclass
class NightlyConfig:
    """Where ``campaigns nightly`` reads and writes (docs/nightly.md)."""

    input_dir: str = ""  # partitions: <input_dir>/<kind>/<YYYY-MM-DD>.<ext> or .../<date>/
    out_dir: str = ""  # runs/<date>/, the published rules/, metrics/
    kinds: list[str] = field(default_factory=list)  # default: every kind with a folder
    specs: list[str] = field(default_factory=list)  # entity specs of kinds of one's own
    lookback_days: int = 7  # earlier nights: rule backtests, drift reference, identity
    # Prometheus textfile (node_exporter's collector directory); default <out_dir>/metrics/
    metrics_path: str = ""
    drift_sample: int = 200_000  # look-back rows the drift reference is computed on, at most
    min_overlap: float = 0.3  # shared members (of the smaller campaign) that continue one
    # Euclidean distance of feature centroids under which a campaign with no shared members
    # continues an earlier one (new accounts every night share no members); 0 = off. On the
    # synthetic nights a campaign's centroid moved 0.45-0.82 from one night to the next and
    # the nearest other campaign was 1.24 or more away (docs/nightly.md)
    max_centroid_distance: float = 1.0


@dataclass
class StoreConfig:
    """The nightly store (a DuckDB file)."""

    path: str = ""  # default: <nightly.out_dir>/campaigns.duckdb


@dataclass
class LifecycleConfig:
    """How published rules change status from night to night."""

    promote_after_nights: int = 3  # shadow nights within forecast before enforcing
    forecast_tolerance: float = 2.0  # live hits up to this many times the forecast are fine
    actor: str = "nightly-job"  # who the audit trail names for automatic changes
    # new rules that pass the guard start in shadow and are promoted after
    # promote_after_nights nights within forecast (false: they enforce at once)
    new_rules_start_in_shadow: bool = True


# Sections only the nightly job reads: a plain run leaves them out of its parameters (and so
# out of its run id and bundle) while they hold their defaults.
_NIGHTLY_SECTIONS = ("health", "nightly", "store", "lifecycle")


@dataclass
class JobConfig:
    """Everything a run depends on besides its inputs."""

    seed: int = 0
    signups: KindConfig = field(default_factory=KindConfig)
    senders: KindConfig = field(default_factory=lambda: KindConfig(n_neighbors=15))
    rules: RuleConfig = field(default_factory=RuleConfig)
    allowlists: Allowlists = field(default_factory=Allowlists)
    # kinds defined by an entity spec: ``[kinds.<name>]`` tables with KindConfig's keys
    kinds: dict[str, KindConfig] = field(default_factory=dict)
    # when a nightly run counts as degraded (``[health]`` table; anomaly/drift.py)
    health: HealthThresholds = field(default_factory=HealthThresholds)
    nightly: NightlyConfig = field(default_factory=NightlyConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)

    def kind(self, name: str) -> KindConfig:
        if name in ("signups", "senders"):
            cfg = getattr(self, name)
            assert isinstance(cfg, KindConfig)
            return cfg
        return self.kinds.get(name) or KindConfig()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if not out["kinds"]:
            # runs of the built-in kinds only keep the parameters (and run ids) they had
            del out["kinds"]
        # where files are is not how they are analysed: moving a folder keeps the run id
        for key in ("input_dir", "out_dir", "specs", "metrics_path"):
            del out["nightly"][key]
        del out["store"]
        defaults = asdict(JobConfig())
        for key in _NIGHTLY_SECTIONS:
            if key in out and {k: v for k, v in defaults[key].items() if k in out[key]} == out[key]:
                del out[key]
        return out


def _apply(obj: Any, data: dict[str, Any], path: str, where: str) -> None:
    known = {f.name: f for f in fields(obj)}
    for key, value in data.items():
        name = f"{where}{key}"
        if key not in known:
            raise ConfigError(f"{path}: unknown key {name!r}; known: {', '.join(sorted(known))}")
        current = getattr(obj, key)
        if key == "kinds" and isinstance(obj, JobConfig):
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: {name!r} must be a table of kinds")
            for kind, table in value.items():
                if not isinstance(table, dict):
                    raise ConfigError(f"{path}: '{name}.{kind}' must be a table")
                cfg = current.setdefault(kind, KindConfig())
                _apply(cfg, table, path, f"{name}.{kind}.")
            continue
        if is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: {name!r} must be a table")
            _apply(current, value, path, f"{name}.")
            continue
        expected = type(current)
        if current is None:
            # an optional setting: the type it takes when set, from the field's annotation
            hinted = get_args(get_type_hints(type(obj))[key])
            options = [t for t in hinted if t is not type(None)]
            expected = options[0] if options else object
        if expected is list:
            if not isinstance(value, list):
                raise ConfigError(f"{path}: {name!r} must be an array")
            setattr(obj, key, list(value))
            continue
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or isinstance(value, bool) != (expected is bool):
            raise ConfigError(
                f"{path}: {name!r} must be {expected.__name__}, got {type(value).__name__}"
            )
        setattr(obj, key, value)


def load_config(path: str | Path | None) -> JobConfig:
    """Defaults, overridden by the TOML file at ``path`` when given."""
    cfg = JobConfig()
    if path is None:
        return cfg
    data = read_toml(path, ConfigError, "config")
    _apply(cfg, data, str(path), "")
    return cfg
