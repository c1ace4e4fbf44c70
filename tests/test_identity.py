"""Campaigns keep their id across nights: growth, splits, merges, endings, the centroid fallback."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from anomaly.identity import RESULT_COLUMNS, ended_campaigns, match_campaigns


def ids(prefix: str, lo: int, hi: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(lo, hi))


def tonight(*rows: tuple[Any, ...]) -> pd.DataFrame:
    """Rows of (provisional id, members[, centroid[, kind]])."""
    return pd.DataFrame(
        [
            {
                "campaign_id": r[0],
                "kind": r[3] if len(r) > 3 else "senders",
                "members": r[1],
                "centroid": None if len(r) < 3 or r[2] is None else np.asarray(r[2], float),
            }
            for r in rows
        ],
        columns=["campaign_id", "kind", "members", "centroid"],
    )


def previous(*rows: tuple[Any, ...]) -> pd.DataFrame:
    """Rows of (persistent id, first_seen, members[, centroid[, kind]])."""
    return pd.DataFrame(
        [
            {
                "campaign_id": r[0],
                "kind": r[4] if len(r) > 4 else "senders",
                "first_seen": r[1],
                "last_seen": "2024-05-07",
                "members": r[2],
                "centroid": None if len(r) < 4 or r[3] is None else np.asarray(r[3], float),
            }
            for r in rows
        ],
        columns=["campaign_id", "kind", "first_seen", "last_seen", "members", "centroid"],
    )


def row(result: pd.DataFrame, provisional: str) -> dict[str, Any]:
    hit = result[result["provisional_id"] == provisional]
    assert len(hit) == 1
    return hit.iloc[0].to_dict()


def test_a_growing_campaign_keeps_its_id_and_first_seen() -> None:
    prev = previous(("se-old", "2024-05-01", ids("a", 0, 10)))
    now = tonight(("se-tonight", ids("a", 0, 10) + ids("b", 0, 30)))
    result = match_campaigns(now, prev)
    assert list(result.columns) == list(RESULT_COLUMNS)
    r = row(result, "se-tonight")
    assert r["campaign_id"] == "se-old"
    assert r["status"] == "continuing"
    assert r["first_seen"] == "2024-05-01"
    assert r["overlap"] == 1.0  # all of yesterday's members, though a quarter of the union
    assert r["parent_id"] is None and r["merged_from"] == ()
    assert ended_campaigns(result, prev) == []


def test_a_shrinking_campaign_keeps_its_id() -> None:
    prev = previous(("se-old", "2024-05-01", ids("a", 0, 40)))
    result = match_campaigns(tonight(("se-t", ids("a", 0, 12))), prev)
    assert row(result, "se-t")["campaign_id"] == "se-old"


def test_a_campaign_sharing_nothing_is_new_and_the_old_one_ends() -> None:
    prev = previous(("se-old", "2024-05-01", ids("a", 0, 10)))
    result = match_campaigns(tonight(("se-t", ids("b", 0, 10))), prev)
    r = row(result, "se-t")
    assert (r["campaign_id"], r["status"], r["first_seen"]) == ("se-t", "new", None)
    assert math.isnan(r["overlap"]) and math.isnan(r["distance"])
    assert ended_campaigns(result, prev) == ["se-old"]


def test_overlap_below_the_floor_is_no_match() -> None:
    prev = previous(("se-old", "2024-05-01", ids("a", 0, 10)))
    now = tonight(("se-t", ids("a", 0, 2) + ids("b", 0, 20)))
    assert row(match_campaigns(now, prev), "se-t")["status"] == "new"  # 2 / 10 < 0.3
    assert row(match_campaigns(now, prev, min_overlap=0.2), "se-t")["status"] == "continuing"


def test_a_split_keeps_the_id_on_the_bulk_and_names_the_parent() -> None:
    prev = previous(("se-old", "2024-05-01", ids("a", 0, 20)))
    # the bulk took in new members (overlap 17/20); the fragment is wholly old (overlap 3/3)
    now = tonight(("se-frag", ids("a", 17, 20)), ("se-bulk", ids("a", 0, 17) + ids("n", 0, 10)))
    result = match_campaigns(now, prev)
    bulk, frag = row(result, "se-bulk"), row(result, "se-frag")
    assert (bulk["campaign_id"], bulk["status"]) == ("se-old", "continuing")
    assert (frag["campaign_id"], frag["status"], frag["parent_id"]) == (
        "se-frag",
        "split",
        "se-old",
    )
    assert frag["first_seen"] is None
    assert frag["overlap"] == 1.0
    assert ended_campaigns(result, prev) == []


def test_an_even_split_goes_to_the_smallest_provisional_id() -> None:
    prev = previous(("se-old", "2024-05-01", ids("a", 0, 20)))
    now = tonight(("se-z", ids("a", 10, 20)), ("se-y", ids("a", 0, 10)))
    result = match_campaigns(now, prev)
    assert row(result, "se-y")["status"] == "continuing"
    assert row(result, "se-z")["status"] == "split"


def test_an_even_split_goes_to_the_nearest_centroid_before_the_id() -> None:
    prev = previous(("se-old", "2024-05-01", ids("a", 0, 20), [0.0, 0.0]))
    now = tonight(("se-y", ids("a", 0, 10), [3.0, 0.0]), ("se-z", ids("a", 10, 20), [1.0, 0.0]))
    result = match_campaigns(now, prev)
    assert row(result, "se-z")["status"] == "continuing"
    assert row(result, "se-z")["distance"] == pytest.approx(1.0)
    assert row(result, "se-y")["parent_id"] == "se-old"


def test_a_merge_keeps_the_earliest_of_equal_matches_and_ends_the_others() -> None:
    prev = previous(
        ("se-p1", "2024-05-03", ids("a", 0, 10)),
        ("se-p2", "2024-05-01", ids("b", 0, 10)),
        ("se-p3", "2024-05-02", ids("c", 0, 10)),
    )
    now = tonight(("se-t", ids("a", 0, 10) + ids("b", 0, 10) + ids("c", 0, 10)))
    result = match_campaigns(now, prev)
    r = row(result, "se-t")
    assert (r["campaign_id"], r["status"], r["first_seen"]) == ("se-p2", "merged", "2024-05-01")
    assert r["merged_from"] == ("se-p1", "se-p3")
    assert ended_campaigns(result, prev) == ["se-p1", "se-p3"]


def test_a_merge_keeps_the_id_of_the_campaign_that_brought_most_members() -> None:
    prev = previous(
        ("se-big", "2024-05-03", ids("a", 0, 100)),
        ("se-tiny", "2024-05-01", ids("b", 0, 3)),
    )
    # the tiny one is wholly inside (overlap 1.0), the big one 90% (0.9): the bulk decides
    now = tonight(("se-t", ids("a", 0, 90) + ids("b", 0, 3) + ids("n", 0, 50)))
    r = row(match_campaigns(now, prev), "se-t")
    assert (r["campaign_id"], r["merged_from"]) == ("se-big", ("se-tiny",))
    assert r["overlap"] == pytest.approx(0.9)


def test_a_campaign_continued_elsewhere_is_not_merged_into_a_weaker_match() -> None:
    prev = previous(
        ("se-p1", "2024-05-01", ids("a", 0, 10)), ("se-p2", "2024-05-01", ids("b", 0, 10))
    )
    # t1 holds all of p1 and 4 of p2; t2 holds the other 6 of p2: p2's heir is t2
    now = tonight(("se-t1", ids("a", 0, 10) + ids("b", 0, 4)), ("se-t2", ids("b", 4, 10)))
    result = match_campaigns(now, prev)
    assert (row(result, "se-t1")["campaign_id"], row(result, "se-t1")["status"]) == (
        "se-p1",
        "continuing",
    )
    assert (row(result, "se-t2")["campaign_id"], row(result, "se-t2")["status"]) == (
        "se-p2",
        "continuing",
    )


def test_campaigns_match_only_within_their_kind() -> None:
    prev = previous(("su-old", "2024-05-01", ids("a", 0, 10), [0.0], "signups"))
    now = tonight(("se-t", ids("a", 0, 10), [0.0], "senders"))
    result = match_campaigns(now, prev, max_centroid_distance=1.0)
    assert row(result, "se-t")["status"] == "new"
    assert ended_campaigns(result, prev) == ["su-old"]


def test_new_accounts_every_night_match_by_centroid() -> None:
    prev = previous(
        ("su-p1", "2024-05-01", ids("a", 0, 30), [0.0, 0.0], "signups"),
        ("su-p2", "2024-05-02", ids("b", 0, 30), [10.0, 10.0], "signups"),
        ("su-p3", "2024-05-02", ids("c", 0, 30), None, "signups"),
    )
    now = tonight(
        ("su-near", ids("x", 0, 30), [0.6, 0.8], "signups"),
        ("su-far", ids("y", 0, 30), [50.0, 50.0], "signups"),
        ("su-none", ids("z", 0, 30), None, "signups"),
    )
    assert set(match_campaigns(now, prev)["status"]) == {"new"}  # fallback off by default
    result = match_campaigns(now, prev, max_centroid_distance=2.0)
    near = row(result, "su-near")
    assert (near["campaign_id"], near["status"], near["first_seen"]) == (
        "su-p1",
        "continuing",
        "2024-05-01",
    )
    assert near["distance"] == pytest.approx(1.0) and near["overlap"] == 0.0
    assert row(result, "su-far")["status"] == "new"
    assert row(result, "su-none")["status"] == "new"
    assert ended_campaigns(result, prev) == ["su-p2", "su-p3"]


def test_centroid_ties_go_to_the_earliest_and_other_feature_spaces_are_skipped() -> None:
    prev = previous(
        ("su-late", "2024-05-03", ids("a", 0, 5), [1.0, 0.0], "signups"),
        ("su-early", "2024-05-02", ids("b", 0, 5), [-1.0, 0.0], "signups"),
        ("su-3d", "2024-05-01", ids("c", 0, 5), [0.0, 0.0, 0.0], "signups"),
    )
    now = tonight(("su-t", ids("x", 0, 5), [0.0, 0.0], "signups"))
    r = row(match_campaigns(now, prev, max_centroid_distance=1.0), "su-t")
    assert (r["campaign_id"], r["distance"]) == ("su-early", 1.0)


def test_centroid_fallback_never_merges_and_members_come_first() -> None:
    prev = previous(
        ("se-p1", "2024-05-01", ids("a", 0, 10), [0.0]),
        ("se-p2", "2024-05-01", ids("b", 0, 10), [0.1]),
    )
    # se-m shares members with p2 (and is far from it); se-c shares none but sits on p1 and p2
    now = tonight(("se-m", ids("b", 0, 10), [9.0]), ("se-c", ids("n", 0, 10), [0.05]))
    result = match_campaigns(now, prev, max_centroid_distance=1.0)
    assert row(result, "se-m")["campaign_id"] == "se-p2"
    c = row(result, "se-c")
    assert (c["campaign_id"], c["status"], c["merged_from"]) == ("se-p1", "continuing", ())


def test_empty_inputs() -> None:
    empty_now, empty_prev = tonight(), previous()
    prev = previous(("se-old", "2024-05-01", ids("a", 0, 10)))
    assert match_campaigns(empty_now, prev).empty
    assert ended_campaigns(match_campaigns(empty_now, prev), prev) == ["se-old"]
    result = match_campaigns(tonight(("se-t", ids("a", 0, 5))), empty_prev)
    assert row(result, "se-t")["status"] == "new"


def test_a_new_campaign_never_takes_an_id_already_in_use() -> None:
    # tonight's members hash to an id an earlier, unrelated campaign already has
    prev = previous(("se-x", "2024-05-01", ids("a", 0, 10)))
    result = match_campaigns(tonight(("se-x", ids("b", 0, 10))), prev)
    assert row(result, "se-x")["campaign_id"] == "se-x.2"


def test_bad_inputs_are_named() -> None:
    prev = previous(("se-old", "2024-05-01", ids("a", 0, 10)))
    with pytest.raises(ValueError, match="missing column"):
        match_campaigns(tonight(("se-t", ids("a", 0, 5))).drop(columns="centroid"), prev)
    with pytest.raises(ValueError, match="duplicate campaign_id"):
        match_campaigns(tonight(("se-t", ("a0",)), ("se-t", ("a1",))), prev)
    with pytest.raises(ValueError, match="members must be"):
        match_campaigns(tonight(("se-t", "a0")), prev)
    with pytest.raises(ValueError, match="min_overlap"):
        match_campaigns(tonight(), prev, min_overlap=0.0)


def _scenario() -> tuple[pd.DataFrame, pd.DataFrame]:
    prev = previous(
        ("se-grow", "2024-05-01", ids("g", 0, 20), [0.0, 1.0]),
        ("se-split", "2024-05-02", ids("s", 0, 20), [1.0, 0.0]),
        ("se-m1", "2024-05-03", ids("m", 0, 10), None),
        ("se-m2", "2024-05-03", ids("k", 0, 10), None),
        ("se-gone", "2024-05-01", ids("q", 0, 10), None),
        ("su-p", "2024-05-04", ids("u", 0, 30), [5.0, 5.0], "signups"),
    )
    now = tonight(
        ("se-1", ids("g", 0, 20) + ids("h", 0, 5), [0.0, 1.1]),
        ("se-2", ids("s", 0, 10), [1.0, 0.2]),
        ("se-3", ids("s", 10, 20), [1.0, 0.1]),
        ("se-4", ids("m", 0, 10) + ids("k", 0, 10), None),
        ("se-5", ids("w", 0, 10), None),
        ("su-6", ids("v", 0, 30), [5.0, 5.5], "signups"),
    )
    return now, prev


def test_the_scenario_as_a_whole() -> None:
    now, prev = _scenario()
    result = match_campaigns(now, prev, max_centroid_distance=1.0)
    pairs = zip(result["campaign_id"], result["status"], strict=True)
    got = dict(zip(result["provisional_id"], pairs, strict=True))
    assert got == {
        "se-1": ("se-grow", "continuing"),
        "se-2": ("se-2", "split"),
        "se-3": ("se-split", "continuing"),  # equal halves: the nearer centroid keeps the id
        "se-4": ("se-m1", "merged"),
        "se-5": ("se-5", "new"),
        "su-6": ("su-p", "continuing"),
    }
    assert ended_campaigns(result, prev) == ["se-gone", "se-m2"]
    assert result["campaign_id"].is_unique


def test_row_and_member_order_do_not_change_the_result() -> None:
    now, prev = _scenario()
    expected = match_campaigns(now, prev, max_centroid_distance=1.0)
    rng = np.random.default_rng(0)
    for _ in range(5):
        now_s = now.sample(frac=1, random_state=int(rng.integers(1 << 30))).reset_index(drop=True)
        prev_s = prev.sample(frac=1, random_state=int(rng.integers(1 << 30)))
        now_s["members"] = [tuple(rng.permutation(list(m))) for m in now_s["members"]]
        got = match_campaigns(now_s, prev_s, max_centroid_distance=1.0)
        pd.testing.assert_frame_equal(got, expected)
