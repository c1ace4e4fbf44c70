"""Tests of the synthetic data generator (pipelines/synthetic.py)."""

from __future__ import annotations

import random
import time

import numpy as np
import pandas as pd
import pytest

from clustering.attributes import compute_attributes
from clustering.kinds import SENDERS, SIGNUPS, Kind
from pipelines.synthetic import GROUPS, SyntheticData, generate, write_synthetic

SMALL = {"signups_per_day": 4_000, "messages_per_day": 6_000}
LABELS = {"benign", "campaign", "lookalike"}


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return generate(days=2, seed=3, **SMALL)


@pytest.fixture(scope="module")
def full() -> tuple[SyntheticData, float]:
    """Default scale, timed."""
    t0 = time.perf_counter()
    out = generate()
    return out, time.perf_counter() - t0


def _group_rows(data: SyntheticData, kind: str, group: str) -> pd.DataFrame:
    events = data.signups if kind == "signups" else data.senders
    labels = data.signup_labels if kind == "signups" else data.sender_labels
    mask = (labels["group"] == group).to_numpy()
    return events[mask].assign(day=labels["day"].to_numpy()[mask])


# -- determinism -------------------------------------------------------------------------------


def test_same_seed_gives_identical_frames(data: SyntheticData) -> None:
    again = generate(days=2, seed=3, **SMALL)
    for name in ("signups", "senders", "signup_labels", "sender_labels"):
        pd.testing.assert_frame_equal(getattr(data, name), getattr(again, name))
    assert again.days == data.days


def test_different_seed_gives_different_data(data: SyntheticData) -> None:
    other = generate(days=2, seed=4, **SMALL)
    assert not data.signups["email"].equals(other.signups["email"])
    assert not data.senders["subject"].equals(other.senders["subject"])
    assert set(data.signups["email"]) != set(other.signups["email"])


def test_more_days_leave_earlier_days_unchanged(data: SyntheticData) -> None:
    one = generate(days=1, seed=3, **SMALL)
    n, m = len(one.signups), len(one.senders)
    pd.testing.assert_frame_equal(one.signups, data.signups.iloc[:n])
    pd.testing.assert_frame_equal(one.sender_labels, data.sender_labels.iloc[:m])


def test_global_random_state_untouched() -> None:
    # Reading (never setting) the legacy global state is the point of this test.
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    generate(days=1, seed=1, signups_per_day=1_000, messages_per_day=1_500)
    after = np.random.get_state()  # noqa: NPY002
    assert np_state[0] == after[0] and np.array_equal(np_state[1], after[1])
    assert np_state[2:] == after[2:]
    assert random.getstate() == py_state


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        generate(days=0)
    with pytest.raises(ValueError, match="too small"):
        generate(days=1, signups_per_day=20, messages_per_day=20)


# -- contracts -------------------------------------------------------------------------------


def _check_contract(df: pd.DataFrame, kind: Kind) -> None:
    assert list(df.columns) == [c.name for c in kind.columns]
    for c in kind.columns:
        s = df[c.name]
        if c.type == "timestamp":
            assert isinstance(s.dtype, pd.DatetimeTZDtype), c.name
            assert str(s.dtype.tz) == "UTC" and s.dtype.unit in ("ns", "us"), c.name
        elif c.type == "integer":
            assert s.dtype == np.int64, c.name
        elif c.type == "float":
            assert s.dtype == np.float64, c.name
        elif c.type == "boolean":
            assert s.dtype == np.bool_, c.name
        else:
            assert pd.api.types.is_string_dtype(s) or s.dtype == object, c.name
            assert s.dropna().map(type).eq(str).all(), c.name
        if c.required:
            assert s.notna().all(), c.name


def test_signups_contract(data: SyntheticData) -> None:
    df = data.signups
    _check_contract(df, SIGNUPS)
    assert df["captcha_score"].between(0, 1).all()
    assert df["email"].str.fullmatch(r"[^@\s]+@[a-z0-9.-]+\.[a-z]+").all()
    assert df["signup_flow"].isin(["web", "ios", "android", "api"]).all()
    assert df["ip_country"].str.fullmatch(r"[A-Z]{2}").all()
    ordered = df.sort_values(["created_at", "account_id"], kind="stable")
    assert ordered.index.equals(df.index)


def test_senders_contract(data: SyntheticData) -> None:
    df = data.senders
    _check_contract(df, SENDERS)
    assert (df["recipient_count"] >= 1).all()
    assert df["x_mailer"].isna().any() and df["x_mailer"].notna().any()
    first = df["recipient_domains"].str.split(" ").str.len()
    assert (first <= df["recipient_count"]).all()
    ordered = df.sort_values(["sent_at", "message_id"], kind="stable")
    assert ordered.index.equals(df.index)


def test_ids_unique_across_days(data: SyntheticData) -> None:
    assert data.signups["account_id"].is_unique
    assert data.senders["message_id"].is_unique
    assert data.signups["email"].is_unique  # one account per address
    assert data.days == ["2026-11-01", "2026-11-02"]


def test_rows_fall_in_their_day(data: SyntheticData) -> None:
    for df, labels, col in (
        (data.signups, data.signup_labels, "created_at"),
        (data.senders, data.sender_labels, "sent_at"),
    ):
        assert (df[col].dt.strftime("%Y-%m-%d").to_numpy() == labels["day"].to_numpy()).all()
    counts = data.signup_labels["day"].value_counts()
    assert (counts == SMALL["signups_per_day"]).all()
    counts = data.sender_labels["day"].value_counts()
    assert (counts == SMALL["messages_per_day"]).all()


def test_realistic_population(full: tuple[SyntheticData, float]) -> None:
    data, _ = full
    pop = data.signups[(data.signup_labels["group"] == "population").to_numpy()]
    assert pop["ip_country"].nunique() >= 15
    assert pop["user_agent"].nunique() >= 100
    assert pop["email"].str.split("@").str[1].nunique() >= 500
    assert 0.01 < pop["ip"].str.contains(":").mean() < 0.15  # a few IPv6
    assert 0.01 < pop["device_id"].duplicated().mean() < 0.06  # families share devices
    # Mobile carriers put many users behind a handful of addresses.
    assert pop["ip"].value_counts().iloc[0] >= 50
    assert len({14061, 16509, 24940} & set(pop["ip_asn"])) >= 2  # a few VPN users
    assert (pop["display_name"] == "").any()
    assert (pop["username"] != pop["email"].str.split("@").str[0]).mean() > 0.03


# -- labels and groups -------------------------------------------------------------------------


def test_labels_align_with_rows(data: SyntheticData) -> None:
    sl, ml = data.signup_labels, data.sender_labels
    assert list(sl.columns) == ["account_id", "day", "label", "group", "style"]
    assert list(ml.columns) == ["message_id", "sender", "day", "label", "group", "style"]
    assert (sl["account_id"].to_numpy() == data.signups["account_id"].to_numpy()).all()
    assert (ml["message_id"].to_numpy() == data.senders["message_id"].to_numpy()).all()
    assert (ml["sender"].to_numpy() == data.senders["sender"].to_numpy()).all()
    for labels in (sl, ml):
        assert set(labels["label"]) <= LABELS
        assert ((labels["group"] == "population") == (labels["label"] == "benign")).all()
        assert set(labels["day"]) == set(data.days)
    specs = {g.name: g for g in GROUPS}
    for labels in (sl, ml):
        planted = labels[labels["group"] != "population"]
        for (group, label, style), _ in planted.groupby(["group", "label", "style"]):
            assert specs[group].label == label and specs[group].style == style


def test_every_group_every_day_with_new_entities(data: SyntheticData) -> None:
    styles = {g.style for g in GROUPS if g.label == "campaign"}
    assert len(styles) >= 5
    for spec in GROUPS:
        rows = _group_rows(data, spec.kind, spec.name)
        per_day = rows.groupby("day").size()
        assert list(per_day.index) == data.days, spec.name
        assert (per_day > 0).all(), spec.name
        if spec.kind == "senders" and spec.label == "campaign":
            day1, day2 = (set(g["sender"]) for _, g in rows.groupby("day"))
            assert not day1 & day2, spec.name  # new sender addresses every day


def test_campaign_shares(full: tuple[SyntheticData, float]) -> None:
    data, seconds = full
    for labels, lo, hi in ((data.signup_labels, 0.12, 0.17), (data.sender_labels, 0.10, 0.20)):
        share = labels.groupby("day")["label"].apply(lambda s: (s == "campaign").mean())
        assert share.between(lo, hi).all(), share.to_dict()
    assert seconds < 15  # a few seconds in practice


# -- the defining property of each group -------------------------------------------------------


def test_campus_nat_shares_one_slash24(data: SyntheticData) -> None:
    rows = _group_rows(data, "signups", "campus_nat")
    for _, g in rows.groupby("day"):
        assert g["ip"].str.rsplit(".", n=1).str[0].nunique() == 1
        assert g["ip_asn"].nunique() == 1
        assert g["created_at"].max() - g["created_at"].min() <= pd.Timedelta(hours=2)
        assert g["email"].str.endswith(".edu").mean() > 0.7
        assert g["display_name"].nunique() > len(g) / 3
        assert g["user_agent"].nunique() > 10
        assert g["captcha_score"].median() > 0.8


def test_marketing_burst_within_one_hour(data: SyntheticData) -> None:
    rows = _group_rows(data, "signups", "marketing_burst")
    for _, g in rows.groupby("day"):
        assert g["created_at"].max() - g["created_at"].min() < pd.Timedelta(hours=1)
        assert g["ip_country"].nunique() >= 5 and g["user_agent"].nunique() > 20


def test_campaign_fingerprints(data: SyntheticData) -> None:
    dc = _group_rows(data, "signups", "dc_burst")
    for _, g in dc.groupby("day"):
        assert g["user_agent"].nunique() == 1
        assert g["ip"].str.rsplit(".", n=1).str[0].nunique() <= 3
        assert g["created_at"].max() - g["created_at"].min() <= pd.Timedelta(hours=2)
        assert g["username"].str.fullmatch(r"[a-z]+\d{4}").all()
    ua = dc["user_agent"].iloc[0]
    benign = data.signups[(data.signup_labels["label"] != "campaign").to_numpy()]
    assert not (benign["user_agent"] == ua).any()  # a build nobody else uses

    resi = _group_rows(data, "signups", "resi_proxy")
    assert resi["username"].str.fullmatch(r"[a-z]+_[a-z]+\d{2}").all()
    pools = [set(g["device_id"]) for _, g in resi.groupby("day")]
    assert len(pools[0] | pools[1]) <= 25 and pools[0] & pools[1]
    assert resi["ip_country"].nunique() >= 4

    slow = _group_rows(data, "signups", "low_slow")
    domains = [set(g["email"].str.split("@").str[1]) for _, g in slow.groupby("day")]
    assert not domains[0] & domains[1]  # throwaway domains rotate daily
    assert all(d.rsplit(".", 1)[1] in {"xyz", "top", "click", "shop"} for d in domains[0])

    farm = _group_rows(data, "signups", "mobile_farm")
    assert farm["user_agent"].nunique() == 1 and farm["signup_flow"].eq("android").all()
    assert farm["device_id"].nunique() <= 40
    pop = data.signups[(data.signup_labels["group"] == "population").to_numpy()]
    assert pop["ip"].isin(set(farm["ip"])).any()  # the carrier's exits are shared

    spam = _group_rows(data, "senders", "spam_blast")
    assert spam["x_mailer"].eq("PHPMailer 6.0.7").all()
    assert spam["sender_ip"].str.rsplit(".", n=1).str[0].nunique() <= 2
    assert spam["recipient_count"].between(20, 50).all() and spam["bounced"].mean() > 0.1
    phish = _group_rows(data, "senders", "invoice_phish")
    assert phish["subject"].str.fullmatch(r"Invoice INV-\d{5} from .+").all()
    assert phish["x_mailer"].isna().all()


def _shape(values: pd.Series) -> pd.Series:
    return values.str.replace(r"[0-9]", "9", regex=True).str.replace(r"[a-z]+", "a", regex=True)


def test_cadence_pool_fixed_cadence_and_device_pool(data: SyntheticData) -> None:
    rows = _group_rows(data, "signups", "cadence_pool")
    days = list(rows.groupby("day"))
    assert [d for d, _ in days] == data.days
    for _, g in days:
        gaps = g["created_at"].sort_values().diff().dt.total_seconds().dropna()
        assert len(gaps) > 50
        assert abs(gaps.mean() - 150) < 1 and gaps.std() < 2
        assert gaps.between(147.9, 152.1).all()  # 150 s ± 2 s, every time
        assert g.groupby("device_id")["user_agent"].nunique().eq(1).all()  # one browser each
    starts = [g["created_at"].min().time() for _, g in days]
    assert starts[0] != starts[1]  # a different start every day
    pools = [set(g["device_id"]) for _, g in days]
    assert len(pools[0] | pools[1]) <= 20 and len(pools[0] & pools[1]) >= 15  # same pool


def test_cadence_pool_otherwise_looks_ordinary(full: tuple[SyntheticData, float]) -> None:
    data, _ = full
    rows = _group_rows(data, "signups", "cadence_pool")
    pop = data.signups[(data.signup_labels["group"] == "population").to_numpy()]
    for _, g in rows.groupby("day"):
        span = g["created_at"].max() - g["created_at"].min()
        assert span > pd.Timedelta(hours=15)  # a long stretch of the day at default scale
        assert len(g) > 400 and g["device_id"].nunique() == 20
    # Population names, login styles, popular mail, home ISPs, common browsers, human captcha.
    assert set(_shape(rows["username"])) <= set(_shape(pop["username"]))
    assert rows["display_name"].nunique() > len(rows) / 3
    assert rows["user_agent"].isin(set(pop["user_agent"])).all()
    assert (
        rows["email"]
        .str.split("@")
        .str[1]
        .isin({"gmail.com", "outlook.com", "hotmail.com", "yahoo.com", "icloud.com"})
        .all()
    )
    assert set(rows["ip_country"]) == {"US", "GB", "CA", "DE"}
    assert not rows["ip_asn"].isin({14061, 16509, 24940, 16276, 20473, 9009}).any()
    assert rows["ip"].nunique() > 0.95 * len(rows)
    assert rows["captcha_score"].median() > 0.8


def test_alias_farm_variants_of_few_mailboxes(data: SyntheticData) -> None:
    rows = _group_rows(data, "signups", "alias_farm")
    attrs = compute_attributes(
        rows.drop(columns="day"), "signups", ["email_canonical", "email_local", "email_domain"]
    )
    rows = rows.assign(**{c: attrs[c].to_numpy() for c in attrs})
    days = list(rows.groupby("day"))
    assert [d for d, _ in days] == data.days
    bases = [set(g["email_canonical"]) for _, g in days]
    assert len(bases[0]) == 6 and bases[0] == bases[1]  # the same mailboxes every day
    assert all(b.endswith("@gmail.com") for b in bases[0])
    assert rows["email_domain"].isin({"gmail.com", "googlemail.com"}).all()
    assert (rows["email_domain"] == "googlemail.com").any()
    local = rows["email_local"]
    assert (local.str.contains("+", regex=False) | (local.str.count(r"\.") >= 2)).all()
    assert local.str.contains("+", regex=False).mean() > 0.5
    assert (~local.str.contains("+", regex=False)).sum() > 20  # dots-only variants, too
    assert rows["email"].is_unique  # new variants every day
    assert not rows["email"].isin(bases[0]).any()  # never the plain mailbox
    prefixes = [set(g["ip"].str.rsplit(".", n=1).str[0]) for _, g in days]
    assert all(len(p) <= 2 for p in prefixes) and not prefixes[0] & prefixes[1]


def test_lookalike_senders(data: SyntheticData) -> None:
    news = _group_rows(data, "senders", "newsletter")
    assert news["sender"].nunique() <= 10 and news["recipient_count"].min() >= 100
    shop = _group_rows(data, "senders", "transactional")
    assert shop["sender"].str.startswith("noreply@").all()
    assert shop["subject"].str.contains(r"#\d{5}").all()
    people = _group_rows(data, "senders", "population")
    assert people["recipient_count"].between(1, 5).all()
    assert people["subject"].nunique() > 100 and people["bounced"].mean() < 0.03


# -- files -------------------------------------------------------------------------------------


def _read(path, fmt: str) -> pd.DataFrame:
    if fmt == "parquet":
        return pd.read_parquet(path)
    if fmt == "csv":
        return pd.read_csv(path)
    return pd.read_json(path, lines=True)


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_write_round_trip(tmp_path, fmt: str) -> None:
    data = generate(days=2, seed=5, signups_per_day=800, messages_per_day=1_200)
    paths = write_synthetic(data, tmp_path, fmt)
    assert [p.name for p in paths["signups"]] == [f"{d}.{fmt}" for d in data.days]
    assert [p.parent.name for p in paths["senders"]] == ["senders", "senders"]
    for kind, frame in (("signups", data.signups), ("senders", data.senders)):
        k = SIGNUPS if kind == "signups" else SENDERS
        back = [_read(p, fmt) for p in paths[kind]]
        assert sum(len(b) for b in back) == len(frame)
        assert set(back[0].columns) == {c.name for c in k.columns}
        ids = pd.concat(back)[k.id_column].astype(str)
        assert ids.tolist() == frame[k.id_column].tolist()
    for p in paths["signups"]:
        assert len(_read(p, fmt)) == 800
    for p in paths["senders"]:
        assert len(_read(p, fmt)) == 1_200
    labels = [pd.read_parquet(p) for p in paths["labels"]]
    assert [p.name for p in paths["labels"]] == ["signups.parquet", "senders.parquet"]
    assert len(labels[0]) == len(data.signups) and len(labels[1]) == len(data.senders)


def test_write_rejects_unknown_format(tmp_path) -> None:
    data = generate(days=1, seed=5, signups_per_day=800, messages_per_day=1_200)
    with pytest.raises(ValueError, match="unknown format"):
        write_synthetic(data, tmp_path, "xml")
