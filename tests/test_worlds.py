"""Tests of the many-worlds generator (pipelines/worlds.py) and its benchmark mode."""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from clustering.kinds import SENDERS, SIGNUPS
from pipelines.readers import read_events
from pipelines.synthetic import SyntheticData, generate, write_synthetic
from pipelines.worlds import (
    SENDER_FAMILIES,
    SIGNUP_FAMILIES,
    ActorSpec,
    generate_world,
    world_actors,
    world_crowds,
)

ROOT = Path(__file__).parents[1]
SMALL: dict[str, Any] = {"signups_per_day": 4_000, "messages_per_day": 4_000}
LABELS = {"benign", "campaign", "lookalike"}
GTLDS = {"xyz", "top", "click", "shop", "online", "site", "icu", "buzz", "store", "live", "fun"}
GTLDS |= {"space", "club", "cfd", "sbs"}
HOSTING_ASNS = {14061, 16509, 24940, 16276, 20473, 9009, 63949, 51167, 60781, 12876, 45102}
HOSTING_ASNS |= {132203, 31898, 396982, 8075, 40676, 53667}

# The event columns each family writes (the rest of a row must not move when it rotates).
SIGNUP_COLUMNS = {
    "name": {"email", "username"},
    "domain": {"email", "username"},  # an address taken on the new domain gets digits
    "network": {"ip", "ip_asn", "ip_country"},
    "client": {"user_agent", "signup_flow"},
    "device": {"device_id"},
    "display": {"display_name"},
    "captcha": {"captcha_score"},
}
SENDER_COLUMNS = {
    "name": {"sender"},
    "domain": {"sender"},
    "network": {"sender_ip"},
    "client": {"x_mailer"},
    "content": {"subject", "body", "recipient_domains"},  # the lure picks its targets
}


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return generate_world(0, **SMALL)


def _events(data: SyntheticData, kind: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    if kind == "signups":
        return data.signups, data.signup_labels
    return data.senders, data.sender_labels


def _rows(data: SyntheticData, kind: str, group: str, day: int | None = None) -> pd.DataFrame:
    events, labels = _events(data, kind)
    mask = labels["group"] == group
    if day is not None:
        mask &= labels["day"] == data.days[day]
    return events[mask.to_numpy()].assign(day=labels["day"].to_numpy()[mask.to_numpy()])


# -- determinism and variety -------------------------------------------------------------------


def test_same_world_gives_identical_frames(data: SyntheticData) -> None:
    again = generate_world(0, **SMALL)
    for name in ("signups", "senders", "signup_labels", "sender_labels"):
        pd.testing.assert_frame_equal(getattr(data, name), getattr(again, name))
    assert again.days == data.days == ["2026-11-01", "2026-11-02"]


def test_global_random_state_untouched() -> None:
    np_state: Any = np.random.get_state()  # noqa: NPY002
    py_state = random.getstate()
    generate_world(5, days=1, signups_per_day=2_000, messages_per_day=2_000)
    after: Any = np.random.get_state()  # noqa: NPY002
    assert np_state[0] == after[0] and np.array_equal(np_state[1], after[1])
    assert random.getstate() == py_state


def test_worlds_differ_materially(data: SyntheticData) -> None:
    other = generate_world(1, **SMALL)
    pop = [d.signups[(d.signup_labels["group"] == "population").to_numpy()] for d in (data, other)]
    shares = [p["ip_country"].value_counts(normalize=True) for p in pop]
    mix = shares[0].sub(shares[1], fill_value=0).abs().sum() / 2  # total variation distance
    assert mix > 0.1, mix
    domains = [p["email"].str.split("@").str[1].value_counts(normalize=True) for p in pop]
    assert domains[0].sub(domains[1], fill_value=0).abs().sum() / 2 > 0.05
    shared = set(data.signups["email"]) & set(other.signups["email"])
    assert len(shared) < 0.02 * len(data.signups)  # common names only
    styles = [{a.style for a in world_actors(w)} for w in range(4)]
    assert len(set(map(frozenset, styles))) == 4  # no two worlds plant the same actors
    crowds = {tuple(sorted(c.name for c in world_crowds(w))) for w in range(10)}
    assert len(crowds) > 2  # which crowds a world has varies


@pytest.mark.parametrize("world", range(10))
def test_actors_from_the_grammar(world: int) -> None:
    actors = world_actors(world)
    assert 6 <= len(actors) <= 10
    senders = [a for a in actors if a.kind == "senders"]
    assert 1 <= len(senders) <= 3
    assert len({a.name for a in actors}) == len(actors)
    for a in actors:
        families = SIGNUP_FAMILIES if a.kind == "signups" else SENDER_FAMILIES
        assert tuple(a.traits) == families, a.name
        assert 0.001 <= a.share <= 0.05, a.name
        for family, t in a.traits.items():
            assert t.family == family and t.mode in ("fixed", "random", "rotate"), a.name
            if t.mode != "random":
                assert t.values, (a.name, family)


def test_families_fixed_random_or_rotating() -> None:
    traits = [(f, t.mode) for w in range(10) for a in world_actors(w) for f, t in a.traits.items()]
    assert {m for _, m in traits} == {"fixed", "random", "rotate"}
    for family in ("name", "domain", "network", "client", "device", "cadence"):
        assert {m for f, m in traits if f == family} >= {"fixed", "rotate"}, family


@pytest.mark.parametrize("world", range(10))
def test_every_world_has_a_low_and_slow_actor(world: int) -> None:
    slow = [a for a in world_actors(world) if a.style == "low_slow"]
    assert len(slow) == 1
    a = slow[0]
    assert a.kind == "signups" and 0.0015 <= a.share <= 0.0025
    t = a.traits
    assert (t["name"].kind, t["name"].mode) == ("random_string", "fixed")
    assert t["name"].params == {"alphabet": "alnum", "length": 10}
    assert (t["domain"].kind, t["domain"].mode) == ("throwaway", "rotate")
    assert t["network"].kind == "hosting_many"
    assert (t["display"].kind, t["display"].values) == ("empty", ("",))
    assert t["cadence"].params["width_h"] == 24.0


def test_low_and_slow_rows(data: SyntheticData) -> None:
    name = next(a.name for a in world_actors(0) if a.style == "low_slow")
    rows = _rows(data, "signups", name)
    local = rows["email"].str.split("@").str[0]
    assert local.str.fullmatch(r"[a-z0-9]{10}").all()
    assert (rows["username"] == local).all() and (rows["display_name"] == "").all()
    assert rows["ip_asn"].isin(HOSTING_ASNS).all()
    domains = [set(g["email"].str.split("@").str[1]) for _, g in rows.groupby("day")]
    assert not domains[0] & domains[1]  # throwaway domains rotate daily
    for d in domains:
        assert len(d) >= 2 and all(x.rsplit(".", 1)[1] in GTLDS for x in d)
    per_domain = rows["email"].str.split("@").str[1].value_counts()
    assert per_domain.max() <= 12  # each used by a handful
    share = rows.groupby("day").size() / SMALL["signups_per_day"]
    assert share.between(0.001, 0.003).all()


def test_low_and_slow_spread_over_the_day() -> None:
    data = generate_world(2, days=1, signups_per_day=30_000, messages_per_day=2_000)
    name = next(a.name for a in world_actors(2) if a.style == "low_slow")
    hours = _rows(data, "signups", name)["created_at"].dt.hour
    assert hours.nunique() >= 18


# -- contracts, readers and labels ---------------------------------------------------------------


def test_events_have_generate_dtypes(data: SyntheticData) -> None:
    ref = generate(days=1, seed=0, signups_per_day=2_000, messages_per_day=2_000)
    for kind, frame in (("signups", data.signups), ("senders", data.senders)):
        k = SIGNUPS if kind == "signups" else SENDERS
        expected = ref.signups if kind == "signups" else ref.senders
        assert list(frame.columns) == [c.name for c in k.columns]
        assert frame.dtypes.equals(expected.dtypes), kind
        for c in k.required:
            assert frame[c].notna().all(), c
    assert data.signups["account_id"].is_unique and data.signups["email"].is_unique
    assert data.senders["message_id"].is_unique
    assert data.signups["captcha_score"].between(0, 1).all()
    assert data.signups["email"].str.fullmatch(r"[^@\s]+@[a-z0-9.-]+\.[a-z]+").all()
    assert data.signups["signup_flow"].isin(["web", "ios", "android", "api"]).all()
    assert (data.senders["recipient_count"] >= 1).all()


def test_written_files_pass_the_readers(data: SyntheticData, tmp_path: Path) -> None:
    paths = write_synthetic(data, tmp_path)
    for kind in ("signups", "senders"):
        events, _ = _events(data, kind)
        total = 0
        for path in paths[kind]:
            total += len(read_events(path, kind).frame)
        assert total == len(events)


def test_labels_align_with_rows(data: SyntheticData) -> None:
    sl, ml = data.signup_labels, data.sender_labels
    assert list(sl.columns) == ["account_id", "day", "label", "group", "style"]
    assert list(ml.columns) == ["message_id", "sender", "day", "label", "group", "style"]
    assert (sl["account_id"].to_numpy() == data.signups["account_id"].to_numpy()).all()
    assert (ml["message_id"].to_numpy() == data.senders["message_id"].to_numpy()).all()
    assert (ml["sender"].to_numpy() == data.senders["sender"].to_numpy()).all()
    actors = {a.name: a for a in world_actors(0)}
    crowds = {c.name: c for c in world_crowds(0)}
    for kind, labels in (("signups", sl), ("senders", ml)):
        assert set(labels["label"]) <= LABELS
        assert ((labels["group"] == "population") == (labels["label"] == "benign")).all()
        planted = labels[labels["group"] != "population"]
        for (group, label, style), _ in planted.groupby(["group", "label", "style"]):
            if label == "campaign":
                assert actors[group].kind == kind and actors[group].style == style
            else:
                assert crowds[group].label == "lookalike" and crowds[group].kind == kind
        kinds = {a.name for a in actors.values() if a.kind == kind}
        kinds |= {c.name for c in crowds.values() if c.kind == kind}
        for day in data.days:  # every actor and crowd on every day
            assert set(planted.loc[planted["day"] == day, "group"]) == kinds
    counts = sl["day"].value_counts()
    assert (counts == SMALL["signups_per_day"]).all()


def test_crowds_look_like_people(data: SyntheticData) -> None:
    for c in world_crowds(0):
        rows = _rows(data, c.kind, c.name)
        if c.kind == "signups":
            assert rows["captcha_score"].median() > 0.7, c.name
            assert rows["device_id"].nunique() > 0.9 * len(rows), c.name
            assert rows["display_name"].nunique() > len(rows) / 4, c.name
            assert rows["user_agent"].nunique() >= min(5, len(rows) // 3), c.name
        else:
            assert rows["bounced"].mean() < 0.05, c.name


def test_campaign_senders_new_each_day(data: SyntheticData) -> None:
    for a in world_actors(0):
        if a.kind != "senders":
            continue
        rows = _rows(data, "senders", a.name)
        day1, day2 = (set(g["sender"]) for _, g in rows.groupby("day"))
        assert not day1 & day2, a.name


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        generate_world(0, days=0)
    with pytest.raises(ValueError, match="too small"):
        generate_world(0, days=1, signups_per_day=30, messages_per_day=30)
    with pytest.raises(ValueError, match="no actor"):
        generate_world(0, days=2, **SMALL, rotate={"nobody": "client"})
    first = world_actors(0)[0].name
    with pytest.raises(ValueError, match="no trait family"):
        generate_world(0, days=2, **SMALL, rotate={first: "content"})


# -- the rotate hook -------------------------------------------------------------------------


def _pick(family: str) -> ActorSpec:
    """An actor of world 0 whose ``family`` rotates to somewhere new (fixed first)."""
    actors = [a for a in world_actors(0, **SMALL) if family in a.rotatable]
    actors.sort(key=lambda a: a.traits[family].mode != "fixed")
    return actors[0]


@pytest.mark.parametrize("family", ["network", "client", "device", "name", "domain"])
def test_rotate_changes_only_that_family(data: SyntheticData, family: str) -> None:
    actor = _pick(family)
    rotated = generate_world(0, **SMALL, rotate={actor.name: family})
    for kind in ("signups", "senders"):
        events, labels = _events(data, kind)
        r_events, r_labels = _events(rotated, kind)
        pd.testing.assert_frame_equal(labels, r_labels)
        mine = (labels["group"] == actor.name).to_numpy()
        pd.testing.assert_frame_equal(events[~mine], r_events[~mine])  # everyone else
        if kind != actor.kind:
            pd.testing.assert_frame_equal(events, r_events)
            continue
        day1 = mine & (labels["day"] == data.days[0]).to_numpy()
        pd.testing.assert_frame_equal(events[day1], r_events[day1])  # the first day stays
        day2 = mine & (labels["day"] == data.days[1]).to_numpy()
        moved = (SIGNUP_COLUMNS if kind == "signups" else SENDER_COLUMNS)[family]
        keep = [c for c in events.columns if c not in moved]
        pd.testing.assert_frame_equal(events.loc[day2, keep], r_events.loc[day2, keep])
        # ... and the family's values on day 2 are ones the actor never used on day 1.
        column = {"name": "email", "domain": "email", "client": "user_agent"}.get(family)
        column = column or sorted(moved)[0]
        before, after = events.loc[day1, column], r_events.loc[day2, column]
        if family == "network":
            before, after = (s.str.rsplit(".", n=1).str[0] for s in (before, after))
            asns = set(events.loc[day1, "ip_asn"]) if kind == "signups" else set()
            assert not asns & set(r_events.loc[day2, "ip_asn"]) if asns else True
        if family == "domain":
            before, after = (s.str.split("@").str[1] for s in (before, after))
        if family == "name":
            before, after = (s.str.split("@").str[0] for s in (before, after))
            assert not set(_shape(before)) & set(_shape(after))  # another template
        assert not set(before.dropna()) & set(after.dropna()), (actor.name, family)


def _shape(values: pd.Series) -> pd.Series:
    return values.str.replace(r"\d", "9", regex=True).str.replace(r"[a-z]+", "a", regex=True)


def test_rotate_cadence_moves_only_the_times(data: SyntheticData) -> None:
    actor = _pick("cadence")
    rotated = generate_world(0, **SMALL, rotate={actor.name: "cadence"})
    events, labels = _events(data, actor.kind)
    r_events, r_labels = _events(rotated, actor.kind)
    k = SIGNUPS if actor.kind == "signups" else SENDERS
    for frame, lab in ((events, labels), (r_events, r_labels)):
        assert (lab[k.id_column].to_numpy() == frame[k.id_column].to_numpy()).all()
    # Ids follow time order, so compare each group's rows as sets of values.
    for group in labels["group"].unique():
        a = _rows(data, actor.kind, group, 1).drop(columns=[k.id_column, k.time_column, "day"])
        b = _rows(rotated, actor.kind, group, 1).drop(columns=[k.id_column, k.time_column, "day"])
        key = list(a.columns)
        a = a.sort_values(key).reset_index(drop=True)
        b = b.sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)
    t1 = _rows(data, actor.kind, actor.name, 1)[k.time_column]
    t2 = _rows(rotated, actor.kind, actor.name, 1)[k.time_column]
    assert not t1.reset_index(drop=True).equals(t2.reset_index(drop=True))


# -- the benchmark's worlds mode ---------------------------------------------------------------


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location(
        "demo_quality", ROOT / "benchmarks/demo_quality.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_run(world: int, recall: float, crowd_hits: int) -> dict[str, Any]:
    def kind(rate: float) -> dict[str, Any]:
        return {
            "campaign_recall": recall,
            "benign_hit_rate": rate,
            "benign_hits": 0,
            "groups": {
                "su0_low_slow": {
                    "label": "campaign",
                    "rows": 40,
                    "blocked": 40,
                    "share_blocked": recall,
                },
                "campus_nat": {
                    "label": "lookalike",
                    "rows": 99,
                    "blocked": crowd_hits,
                    "share_blocked": 0,
                },
            },
        }

    return {"world": world, "seconds": 1.0, "signups": kind(0.0), "senders": kind(0.0)}


def test_benchmark_world_floors() -> None:
    bench = _bench()
    runs = [_fake_run(0, 1.0, 0), _fake_run(1, 0.5, 3)]
    floors = bench._world_floors(runs)
    assert next(iter(floors)) == "misses"  # what failing worlds miss comes first
    assert floors["worlds_meeting_all"] == 1 and floors["worlds"] == 2
    assert set(floors["misses"]) == {"1"}
    missed = " | ".join(floors["misses"]["1"])
    assert "signups recall 0.5" in missed and "senders recall 0.5" in missed
    assert "su0_low_slow 0.5" in missed and "look-alike campus_nat 3 rows" in missed
    report = bench._world_report(runs[1], {"su0_low_slow": "low_slow"})
    assert report["signups_campaigns"]["su0_low_slow"]["style"] == "low_slow"
    assert report["signups_lookalike_rows_blocked"] == {"campus_nat": 3}


@pytest.mark.slow
def test_benchmark_worlds_quick_runs_as_a_script() -> None:
    cmd = [sys.executable, "benchmarks/demo_quality.py", "--worlds", "2", "--quick"]
    cmd += ["--signups-per-day", "6000", "--messages-per-day", "6000"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    doc = json.loads(run.stdout)
    assert doc["mode"] == "worlds" and doc["summary"]["floors"]["worlds"] == 2
    assert [w["world"] for w in doc["worlds"]] == [0, 1]
    assert doc["worlds"][0]["signups_campaigns"]
