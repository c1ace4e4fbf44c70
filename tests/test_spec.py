"""Entity specs: validation, what the roles give, and a user's own kind end to end."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from clustering.kinds import get_spec, register_spec
from clustering.spec import SpecError, load_spec, parse_spec
from pipelines.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "profiles.toml"

MINIMAL = """
name = "logins"
id_column = "login_id"
time_column = "at"
entity_column = "account"
[columns]
login_id = { type = "string", role = "id", required = true }
at = { type = "timestamp", role = "time", required = true }
account = { type = "string", role = "categorical", required = true }
ip = { type = "string", role = "ip" }
user_agent = { type = "string", role = "user_agent" }
failures = { type = "integer", role = "count", behaviour = true }
"""


def _spec_file(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "kind.toml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(
    ("edit", "key", "message"),
    [
        (("role = \"ip\"", "role = \"ipaddr\""), "columns.ip.role", "unknown role"),
        (("type = \"integer\", role = \"count\"", "type = \"string\", role = \"count\""),
         "columns.failures.type", "role 'count' takes"),
        (("time_column = \"at\"", "time_column = \"when\""), "time_column", "no column 'when'"),
        (("name = \"logins\"", "name = \"Logins!\""), "name", "lower-case"),
        (("[columns]", "colour = \"red\"\n[columns]"), "colour", "unknown key"),
        (("failures = { type", "failures = { weigth = 2, type"), "columns.failures.weigth",
         "unknown key"),
        (("account = { type = \"string\", role = \"categorical\", required = true }",
          "account = { type = \"string\", role = \"categorical\", family = \"colour\" }"),
         "columns.account.family", "unknown family"),
        (("role = \"time\", required = true", "role = \"time\", format = \"%d/%m/%Q\""),
         "columns.at.format", "not a usable strptime format"),
        (("role = \"time\", required = true", "role = \"time\", format = \"day-month\""),
         "columns.at.format", "no %-directive"),
        (("role = \"time\", required = true", "role = \"time\", format = 20240101"),
         "columns.at.format", "must be a non-empty string"),
        (("role = \"ip\"", "role = \"ip\", format = \"%Y\""),
         "columns.ip.format", "only timestamp columns take a format"),
    ],
)  # fmt: skip
def test_bad_specs_name_the_file_and_key(
    tmp_path: Path, edit: tuple[str, str], key: str, message: str
) -> None:
    assert edit[0] in MINIMAL
    path = _spec_file(tmp_path, MINIMAL.replace(edit[0], edit[1], 1))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value).startswith(f"{path}: {key}: ")
    assert message in str(err.value)


TWITTER = "%a %b %d %H:%M:%S %z %Y"
TWEETS = MINIMAL.replace('name = "logins"', 'name = "tweets_cli"').replace(
    'role = "time", required = true', f'role = "time", required = true, format = "{TWITTER}"'
)


def test_a_declared_time_format_is_kept_on_its_column(tmp_path: Path) -> None:
    spec = load_spec(_spec_file(tmp_path, TWEETS))
    cols = {c.name: c for c in spec.columns}
    assert cols["at"].format == TWITTER
    assert cols["login_id"].format is None  # ISO 8601 where none is declared
    assert load_spec(_spec_file(tmp_path, MINIMAL)).columns[1].format is None


def test_cli_bad_time_in_the_declared_format_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec_file(tmp_path, TWEETS)
    data = tmp_path / "tweets.csv"
    rows = [("l1", "Fri Apr 06 10:58:22 +0000 2007", "a1"), ("l2", "2007-04-06 10:58", "a2")]
    pd.DataFrame(rows, columns=["login_id", "at", "account"]).to_csv(data, index=False)
    out = tmp_path / "out"
    code = main(["run", "--spec", str(spec), "--events", f"tweets_cli={data}", "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{data}: row 2 (line 3), column 'at': cannot parse timestamp '2007-04-06 10:58'" in err
    assert f"expected format '{TWITTER}'" in err


def test_spelled_out_tables_are_checked_against_the_attributes(tmp_path: Path) -> None:
    bad = MINIMAL + "[features]\ncategorical = { ip_prefix8 = 1.0 }\n"
    with pytest.raises(SpecError, match=r"features\.categorical\.ip_prefix8: unknown attribute"):
        load_spec(_spec_file(tmp_path, bad))
    bad = MINIMAL + '[rules.attributes]\nip_prefix24 = ["in", 3]\n'
    with pytest.raises(SpecError, match=r"rules\.attributes\.ip_prefix24: must be"):
        load_spec(_spec_file(tmp_path, bad))
    bad = MINIMAL + '[entity.aggregate]\nip_prefix24 = "mode:ip_prefix24"\n'
    with pytest.raises(SpecError, match=r"entity\.aggregate\.ip_prefix24: unknown aggregate"):
        load_spec(_spec_file(tmp_path, bad))
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(_spec_file(tmp_path, "name = \n"))


def test_roles_give_attributes_features_families_and_rules() -> None:
    spec = parse_spec(tomllib.loads(MINIMAL), "logins.toml")
    names = {a.name for a in spec.attributes}
    assert {"ip_prefix24", "user_agent_build", "user_agent_family", "hour", "failures"} <= names
    # one account has many logins: its columns are aggregates of them
    assert spec.aggregate["events"] == "count"
    assert spec.aggregate["ip_prefix24"] == "most_frequent:ip_prefix24"
    assert spec.aggregate["failures"] == "mean:failures"
    assert spec.families["network"] == ("ip_prefix24", "ip_prefix16")
    assert spec.families["client"] == ("user_agent_build", "user_agent_family", "user_agent_os")
    assert spec.rule_attributes["ip_prefix24"] == ("in", 2)
    assert spec.rule_attributes["failures"] == ("range", 1)
    assert spec.features.categorical["ip_prefix24"] == pytest.approx(0.7)
    assert "failures" in spec.features.log_scale and spec.behaviour == ("failures",)
    assert spec.allowlist["prefixes"] == "ip"
    # the day an entity was made: a shared value where the data spans many days, never a
    # rule (a past day matches nothing later); many logins make an account's day their mode
    assert spec.features.categorical["day"] == pytest.approx(0.5)
    assert spec.features.counts["day"] == pytest.approx(0.5)
    assert "day" not in spec.rule_attributes
    assert spec.aggregate["day"] == "most_frequent:day"
    assert spec.aggregate["hour"] == "median:hour"


def test_the_day_weighs_nothing_within_one_day() -> None:
    from clustering.features import FeatureSpec, build_features

    days = pd.DataFrame({"day": ["2026-11-01"] * 500})
    X, _ = build_features(days, FeatureSpec(categorical={"day": 0.5}, counts={"day": 0.5}))
    assert np.ptp(X, axis=0).max() == 0.0  # every row the same point: no pull either way
    days.loc[:9, "day"] = "2012-01-17"  # a burst on another day pulls its rows together
    X, _ = build_features(days, FeatureSpec(categorical={"day": 0.5}, counts={"day": 0.5}))
    assert np.ptp(X[:10], axis=0).max() == 0.0 and np.ptp(X[10:], axis=0).max() == 0.0
    assert np.linalg.norm(X[0] - X[10]) > 0.4


def test_text_roles_give_range_rules_on_length_and_digits() -> None:
    text = MINIMAL + 'note = { type = "string", role = "text" }\n'
    spec = parse_spec(tomllib.loads(text), "logins.toml")
    for suffix in ("len", "digits", "digit_run"):
        assert spec.rule_attributes[f"note_{suffix}"] == ("range", 1)
        assert f"note_{suffix}" not in spec.features.numeric  # rules read them; no feature
        assert f"note_{suffix}" not in spec.entity_behaviour
    # with behaviour = true, the message's shape feeds the entity score
    spec = parse_spec(tomllib.loads(text.replace('"text" }', '"text", behaviour = true }')), "x")
    assert {"note_len", "note_digits", "note_digit_run"} <= set(spec.entity_behaviour)


def test_built_in_kinds_cannot_be_replaced(tmp_path: Path) -> None:
    text = MINIMAL.replace('name = "logins"', 'name = "signups"')
    with pytest.raises(SpecError, match="built-in kind"):
        register_spec(load_spec(_spec_file(tmp_path, text)))
    assert get_spec("signups").source.endswith("signups.toml")


# ---------------------------------------------------------------- a user's kind, end to end


def _profiles(seed: int = 0, n: int = 4000, n_bot: int = 400) -> pd.DataFrame:
    """Human profiles, and a bulk-created campaign sharing templates and a promo domain."""
    rng = np.random.default_rng(seed)
    syll = ["ka", "lo", "mi", "ra", "te", "vo", "zu", "an", "el", "or", "is", "ba", "de"]
    words = ["music", "coffee", "travel", "books", "football", "art", "dad", "mom", "code",
             "cats", "photography", "food", "running", "movies", "science", "student"]  # fmt: skip
    langs = ["en", "es", "fr", "de", "pt", "ja"]
    t0 = pd.Timestamp("2026-11-01", tz="UTC")
    rows = []
    for i in range(n):
        first = "".join(rng.choice(syll, size=int(rng.integers(2, 4))))
        handle = first + (str(rng.integers(1, 9999)) if rng.random() < 0.4 else "")
        desc = " ".join(rng.choice(words, size=int(rng.integers(2, 7))))
        rows.append(
            {
                "id": f"u{i:05d}",
                "created_at": t0 + pd.Timedelta(seconds=int(rng.integers(0, 86400 * 3))),
                "screen_name": handle,
                "name": first.title() + " " + "".join(rng.choice(syll, size=3)).title(),
                "description": desc if rng.random() < 0.8 else "",
                "url": f"https://{rng.choice(words)}{rng.integers(1, 999)}.example.com/"
                if rng.random() < 0.3
                else None,
                "lang": str(rng.choice(langs, p=[0.5, 0.15, 0.1, 0.1, 0.1, 0.05])),
                "default_profile": bool(rng.random() < 0.3),
                "statuses_count": int(rng.lognormal(6, 1.5)),
                "followers_count": int(rng.lognormal(5, 1.5)),
                "friends_count": int(rng.lognormal(5, 1.2)),
            }
        )
    products = ["phone", "watch", "shoes", "bag", "laptop", "camera"]
    for j in range(n_bot):
        rows.append(
            {
                "id": f"b{j:05d}",
                "created_at": t0 + pd.Timedelta(hours=30, seconds=int(rng.integers(0, 5400))),
                "screen_name": "deal"
                + "".join(rng.choice(list("abcdefgh"), size=3))
                + str(rng.integers(1000, 9999)),
                "name": "Best Deals " + str(rng.integers(10, 99)),
                "description": f"Best price on {rng.choice(products)} today "
                f"{rng.integers(10, 90)}% off, click the link",
                "url": f"https://promo-{rng.integers(1, 4)}.dealz.example/",
                "lang": "it",
                "default_profile": True,
                "statuses_count": int(rng.integers(0, 5)),
                "followers_count": int(rng.integers(0, 3)),
                "friends_count": int(rng.integers(200, 400)),
            }
        )
    frame = pd.DataFrame(rows)
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def test_a_kind_of_ones_own_runs_end_to_end(tmp_path: Path) -> None:
    frame = _profiles()
    data = tmp_path / "profiles.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "out"
    code = main(["run", "--spec", str(EXAMPLE), "--events", f"profiles={data}", "--out", str(out)])
    assert code == 0
    bots = set(frame.loc[frame["id"].str.startswith("b"), "id"])

    assign = pd.read_parquet(out / "assignments.parquet")
    campaigns = pd.read_parquet(out / "campaigns.parquet")
    flagged = set(campaigns.loc[campaigns["flagged"], "campaign_id"])
    caught = set(assign.loc[assign["campaign_id"].isin(flagged), "entity_id"])
    assert len(caught & bots) >= 0.9 * len(bots)
    assert len(caught - bots) <= 0.05 * len(caught)

    bundle = json.loads((out / "rules" / "bundle.json").read_text())
    rules = [r for r in bundle["rules"] if r["kind"] == "profiles"]
    assert rules and "profiles" in bundle["attributes"]
    # the exported SQL, run by DuckDB over the raw rows, matches the Python evaluator
    from anomaly.export import apply_bundle, load_bundle

    py = apply_bundle(load_bundle(out / "rules" / "bundle.json"), frame, "profiles")
    con = duckdb.connect()
    con.register("profiles", frame)
    query = (out / "rules" / "profiles.sql").read_text()
    got = con.execute(query).fetchdf()
    assert len(got) == len(py) > 0
    assert sorted(zip(got["id"], got["rule_id"], strict=True)) == sorted(
        zip(py["id"], py["rule_id"], strict=True)
    )
    # and so does every rule's CEL expression, on a sample of rows (cel-python is slow)
    import celpy

    from anomaly.export_cel import cel_activation
    from clustering.attributes import compute_attributes

    cel = json.loads((out / "rules" / "profiles.cel.json").read_text())
    assert cel["kind"] == "profiles" and len(cel["rules"]) == len(rules)
    sample = frame.sample(n=300, random_state=1)
    attrs = compute_attributes(sample, "profiles")
    env = celpy.Environment()
    for rule in cel["rules"]:
        prog = env.program(env.compile(rule["expression"]))
        hit = {
            rid
            for rid, row in zip(sample["id"], attrs.to_dict("records"), strict=True)
            if bool(prog.evaluate(celpy.json_to_cel(cel_activation(row, "profiles"))))
        }
        want = set(py.loc[py["rule_id"] == rule["id"], "id"]) & set(sample["id"])
        assert hit == want, rule["id"]
    enforced = set(py.loc[py["action"] != "shadow", "id"])
    assert enforced, "the campaign's rules are enforced"
    assert len(enforced - bots) <= 1


def test_cli_spec_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _spec_file(tmp_path, MINIMAL.replace('role = "ip"', 'role = "ipaddr"'))
    code = main(["run", "--spec", str(bad), "--events", "logins=x.csv", "--out", str(tmp_path)])
    assert code == 2
    assert f"{bad}: columns.ip.role: unknown role" in capsys.readouterr().err
    code = main(["run", "--events", "logins=x.csv", "--out", str(tmp_path)])
    assert code == 2 and "no --spec defines kind 'logins'" in capsys.readouterr().err


# MINIMAL with an e-mail address and a required IP
LOGINS = MINIMAL.replace(
    'ip = { type = "string", role = "ip" }',
    'email = { type = "string", role = "email" }\n'
    'ip = { type = "string", role = "ip", required = true }',
)


def _logins(seed: int = 0) -> tuple[pd.DataFrame, set[str]]:
    """People logging in from their own places, and accounts taken over from a few subnets."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2026-11-01", tz="UTC")
    browsers = [f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/{v}.0.{b}.{p} Safari/537.36"
                for v in (118, 119, 120) for b in (6045, 6099) for p in (105, 160)]  # fmt: skip
    domains = ["gmail.com", "yahoo.com", "outlook.com", "web.de", "orange.fr"]
    rows = []
    for a in range(2500):
        home = f"{rng.integers(1, 223)}.{rng.integers(0, 255)}.{rng.integers(0, 255)}"
        ua = str(rng.choice(browsers))
        for _ in range(int(rng.integers(1, 5))):
            rows.append(("u", a, home, ua, int(rng.poisson(0.2)), rng.choice(domains)))
    bot_ua = "Mozilla/5.0 (X11; Linux x86_64) Chrome/96.0.4664.45 Safari/537.36"
    for a in range(250):
        for _ in range(3):
            ip = f"185.220.{100 + rng.integers(0, 4)}"
            rows.append(("t", a, ip, bot_ua, int(rng.integers(3, 9)), rng.choice(domains)))
    out = []
    for i, (who, a, net, ua, failures, domain) in enumerate(rows):
        out.append(
            {
                "login_id": f"l{i:06d}",
                "at": t0 + pd.Timedelta(seconds=int(rng.integers(0, 86400))),
                "account": f"{who}{a:05d}",
                "email": f"{who}{a:05d}@{domain}",
                "ip": f"{net}.{rng.integers(1, 255)}",
                "user_agent": ua,
                "failures": failures,
            }
        )
    frame = pd.DataFrame(out).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return frame, {f"t{a:05d}" for a in range(250)}


def test_a_kind_whose_entity_has_many_events(tmp_path: Path) -> None:
    spec_path = _spec_file(tmp_path, LOGINS)
    frame, taken_over = _logins()
    data = tmp_path / "logins.parquet"
    frame.to_parquet(data)
    out = tmp_path / "out"
    args = ["run", "--spec", str(spec_path), "--events", f"logins={data}", "--out", str(out)]
    assert main(args) == 0
    assign = pd.read_parquet(out / "assignments.parquet")
    assert len(assign) == frame["account"].nunique()  # one row per account, not per login
    campaigns = pd.read_parquet(out / "campaigns.parquet")
    flagged = set(campaigns.loc[campaigns["flagged"], "campaign_id"])
    caught = set(assign.loc[assign["campaign_id"].isin(flagged), "entity_id"])
    assert len(caught & taken_over) >= 0.9 * len(taken_over)
    assert len(caught - taken_over) <= 0.05 * len(caught)

    from anomaly.export import apply_bundle, load_bundle

    py = apply_bundle(load_bundle(out / "rules" / "bundle.json"), frame, "logins")
    con = duckdb.connect()
    con.register("logins", frame)
    got = con.execute((out / "rules" / "logins.sql").read_text()).fetchdf()
    assert sorted(zip(got["login_id"], got["rule_id"], strict=True)) == sorted(
        zip(py["login_id"], py["rule_id"], strict=True)
    )
    # enforcement from the command line, as for the built-in kinds
    applied = tmp_path / "matches.parquet"
    args = ["rules", "apply", "--bundle", str(out / "rules" / "bundle.json"), "--spec"]
    assert main([*args, str(spec_path), "--events", f"logins={data}", "--out", str(applied)]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(applied), py, check_dtype=False)
    hit_accounts = set(frame.loc[frame["login_id"].isin(py["login_id"]), "account"])
    assert len(hit_accounts & taken_over) >= 0.9 * len(taken_over)
    assert len(hit_accounts - taken_over) <= 2


def test_registered_kinds_do_not_change_a_built_in_bundle(tmp_path: Path) -> None:
    from anomaly.export import build_bundle, canonical_json, write_rules

    def bundle() -> dict:
        return build_bundle(
            [], run_id="r", created_at="2026-11-01T00:00:00+00:00", code_version="x", parameters={}
        )

    before = canonical_json(bundle())
    register_spec(load_spec(_spec_file(tmp_path, MINIMAL)))
    assert canonical_json(bundle()) == before
    written = write_rules(tmp_path / "out", bundle())
    assert not any("logins" in str(p) for p in written.values())
