"""benchmarks/entity_quality.py on tiny synthetic stand-ins of the real data's file formats."""

from __future__ import annotations

import csv
import io
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks import entity_quality as eq
from pipelines.config import KindConfig

HEADER = [
    "id",
    "name",
    "screen_name",
    "statuses_count",
    "followers_count",
    "friends_count",
    "favourites_count",
    "listed_count",
    "url",
    "lang",
    "time_zone",
    "location",
    "default_profile",
    "default_profile_image",
    "geo_enabled",
    "profile_image_url",
    "description",
    "created_at",
    "timestamp",
]
WORDS = "river apple stone cloud maple tiger ocean violet ember summit lantern quartz".split()


def _human(rng: np.random.Generator, i: int) -> list[Any]:
    w = rng.choice(WORDS, size=6)
    return [
        str(10_000 + i),
        f"{w[0].title()} {w[1].title()}{i}",
        f"{w[2]}_{w[3]}{rng.integers(1, 999)}",
        int(rng.integers(50, 50_000)),
        int(rng.integers(10, 5_000)),
        int(rng.integers(10, 2_000)),
        int(rng.integers(0, 9_000)),
        int(rng.integers(0, 80)),
        f"http://{w[4]}{i}.example.org" if rng.random() < 0.3 else None,
        str(rng.choice(["en", "it", "es", "fr"])),
        str(rng.choice(["Rome", "London", "Pacific Time (US & Canada)", ""])),
        f"{w[5].title()} City" if rng.random() < 0.5 else None,
        "1" if rng.random() < 0.3 else "",
        "",
        "",
        "http://img.example/x.jpg",
        " ".join(rng.choice(WORDS, size=int(rng.integers(3, 12)))) if rng.random() < 0.6 else "",
        f"Tue Jun {rng.integers(10, 28)} {rng.integers(0, 23):02d}:20:35 +0000 "
        f"{rng.integers(2008, 2015)}",
        "2013-06-11 13:20:35",
    ]


def _bot(rng: np.random.Generator, i: int, group: int) -> list[Any]:
    # near-duplicates of one template per group: the planted campaign
    return [
        str(900_000 * group + i),
        f"{['Lucia Bianchi', 'Appy Deals', 'Shop Promo'][group - 1]} {i % 7}",
        f"{['lucia', 'appy', 'promo'][group - 1]}{1000 + i}",
        int(rng.integers(5, 15)),
        int(rng.integers(0, 3)),
        int(rng.integers(1000, 1010)),
        0,
        0,
        None,
        ["it", "en", "en"][group - 1],
        None,
        None,
        "1",
        "1" if group == 2 else "",
        "",
        "",
        ["", "", "best deals on phone cases buy now at shop dot com"][group - 1],
        f"Sun Feb 16 19:{rng.integers(0, 59):02d}:55 +0000 2014",
        "2014-02-16 20:11:55",
    ]


def _write_csv(path: Path, rows: list[list[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, quoting=csv.QUOTE_NONNUMERIC)
        w.writerow(HEADER)
        for row in rows:
            w.writerow(["" if v is None else v for v in row])


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    cresci = root / "cresci2017"
    cresci.mkdir()
    _write_csv(cresci / "geniune_accounts.csv", [_human(rng, i) for i in range(150)])
    for g in (1, 2, 3):
        rows = [_bot(rng, i, g) for i in range(40)]
        _write_csv(cresci / f"social_spambots_{g}.csv", rows)

    spam = [f"WINNER! Claim your {i % 9}00 prize now, call 0906{i:04d} txt STOP" for i in range(60)]
    ham = [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 10)))) + f" {i}" for i in range(240)]
    (root / "sms_spam").mkdir()
    lines = [f"spam\t{t}" for t in spam] + [f"ham\t{t}" for t in ham]
    order = rng.permutation(len(lines))
    text = "\n".join(lines[i] for i in order) + "\n"
    (root / "sms_spam" / "SMSSpamCollection").write_text(text, encoding="utf-8")

    (root / "enron_spam").mkdir()
    with tarfile.open(root / "enron_spam" / "enron1-3.tar.gz", "w:gz") as tar:
        for n in (1, 2):
            for i in range(90):
                body = " ".join(rng.choice(WORDS, size=int(rng.integers(8, 30))))
                _add(tar, f"enron{n}/ham/{i}.ham.txt", f"Subject: re : {WORDS[i % 12]}\n{body}\n")
            for i in range(30):
                # two templates: one cluster may hold at most max_cluster_share of the folder
                body = ["buy viagra online now at pharmacy", "hot stock alert ticker"][i % 2]
                msg = f"Subject: cheap offer {i % 5}\n{body} {i} save\n"
                _add(tar, f"enron{n}/spam/{i}.spam.txt", msg)
    return root


def _add(tar: tarfile.TarFile, name: str, text: str) -> None:
    raw = text.encode("latin-1")
    info = tarfile.TarInfo(name)
    info.size = len(raw)
    tar.addfile(info, io.BytesIO(raw))


def test_cresci_finds_planted_bots(data: Path) -> None:
    out = eq.cresci(data, quick=False)
    assert out["status"] == "ok"
    assert out["accounts"] == {
        "genuine": 150,
        "social_spambots_1": 40,
        "social_spambots_2": 40,
        "social_spambots_3": 40,
    }
    names = [f"social_spambots_{g}_in_pure_clusters" for g in (1, 2, 3)]
    assert [t["name"] for t in out["targets"]] == names
    found = [t["measured"] for t in out["targets"]]
    assert max(found) >= 0.8, found
    assert all(isinstance(t["met"], bool) and t["required"] for t in out["targets"])
    flagged = out["flagged"]
    assert {"precision", "recall", "recall_per_group", "entities_in_flagged"} <= set(flagged)
    rules = out["rules"]
    assert {"enforce", "shadow", "all", "rules_on_a", "half_b_rows"} <= set(rules)
    assert set(rules["all"]["recall_per_group"]) == {f"social_spambots_{g}" for g in (1, 2, 3)}
    assert out["settings"]["kind"]["seed"] == 0
    assert out["settings"]["protocol"] == "shipped defaults"


def test_default_protocol_reports_per_set_settings_unapplied(data: Path) -> None:
    default = eq.cresci(data, quick=True)
    tuned = eq.cresci(data, quick=True, tuned=True)
    settings = {s["setting"]: s for s in default["non_default_settings"]}
    # the schema (roles, the declared time format) is applied and is no tuning setting
    assert settings["columns"]["applied"] and not settings["columns"]["tuning"]
    assert settings["columns"]["value"]["created_at"] == "time"
    fmt = settings["columns.created_at.format"]
    assert fmt["applied"] and not fmt["tuning"]
    # the per-set settings are listed, with their defaults, and not applied
    cap = settings["kinds.profiles.max_cluster_share"]
    shipped = KindConfig().max_cluster_share
    assert (cap["value"], cap["default"], cap["tuning"], cap["applied"]) == (
        1.0,
        shipped,
        True,
        False,
    )
    assert settings["features.numeric"]["tuning"] and not settings["features.numeric"]["applied"]
    assert default["settings"]["kind"]["max_cluster_share"] == shipped
    assert tuned["settings"]["kind"]["max_cluster_share"] == 1.0
    assert tuned["settings"]["protocol"] != default["settings"]["protocol"]
    assert all(s["applied"] for s in tuned["non_default_settings"])


def test_sms_finds_planted_spam(data: Path) -> None:
    out = eq.sms(data, quick=False)
    assert out["status"] == "ok"
    assert out["messages"] == 300 and out["spam"] == 60
    assert out["spam_in_pure_clusters"] >= 0.8
    assert [t["name"] for t in out["targets"]] == ["spam_in_pure_clusters"]
    assert out["targets"][0]["met"] is True
    assert out["flagged"]["recall"] is not None
    assert out["rules"]["all"]["ham_matched"] == 0
    assert out["rules"]["all"]["recall"] is not None


def test_enron_per_folder(data: Path) -> None:
    # The tiny folders' templates have 15 copies: the default min_cluster_size (8) finds them,
    # with no per-set setting
    out = eq.enron(data, quick=False)
    assert out["status"] == "ok"
    assert set(out["folders"]) == {"enron1", "enron2"}
    for fig in out["folders"].values():
        assert fig["messages"] == 120 and fig["spam"] == 30
        assert fig["spam_in_pure_clusters"] >= 0.8
        assert "rules" in fig and "flagged" in fig
    assert out["targets"] == []
    assert KindConfig().min_cluster_size <= 15
    assert not [s for s in out["non_default_settings"] if s["setting"].endswith("cluster_size")]


def test_deterministic(data: Path) -> None:
    assert eq.sms(data, quick=True) == eq.sms(data, quick=True)


@pytest.mark.parametrize("fn", [eq.spamassassin, eq.cresci, eq.sms, eq.enron])
def test_missing_folder_is_skipped(tmp_path: Path, fn: Any) -> None:
    out = fn(tmp_path / "nowhere", quick=True)
    assert out["status"] == "skipped"
    assert out["reason"]
