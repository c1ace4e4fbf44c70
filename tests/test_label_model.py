"""The label model: analysts' campaign labels, fitted on the coordination test's evidence."""

from __future__ import annotations

import json
import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest

from anomaly.label_model import (
    LabelModel,
    coordination_decision,
    evidence_columns,
    evidence_frame,
    evidence_records,
)
from anomaly.scoring import CampaignScorer
from pipelines.config import JobConfig
from pipelines.job import detect, known_risk_of
from pipelines.readers import read_events_frame
from pipelines.stages import Stages
from pipelines.synthetic import generate


@pytest.fixture(scope="module")
def night() -> dict[str, Any]:
    """One synthetic night of signups through detection, and each cluster's truth (the
    majority of its members are planted campaign accounts)."""
    data = generate(days=1, seed=0, signups_per_day=3000, messages_per_day=1000)
    events = read_events_frame(data.signups, "signups", source="signups")
    res = detect(
        "signups",
        events,
        JobConfig(),
        Stages(show_progress=False),
        run_id="label-model-test",
        created_at=pd.Timestamp(events["created_at"].max()).to_pydatetime(),
    )
    label = data.signup_labels.set_index("account_id")["label"].reindex(res.entities.index)
    members = pd.DataFrame({"c": res.labels, "abuse": (label == "campaign").to_numpy()})
    share = members[members["c"] >= 0].groupby("c")["abuse"].mean()
    truth = (share > 0.5).astype(int).reindex(res.cluster_scores.index)
    return {"res": res, "scored": res.cluster_scores, "truth": truth}


def _twin_groups(scored: pd.DataFrame) -> tuple[int, int]:
    """Two clusters of one value group (fragments judged together: the same evidence)."""
    sizes = scored.groupby("group").size()
    group = sizes.index[sizes >= 2][0]
    a, b = scored.index[scored["group"] == group][:2]
    return int(a), int(b)


def test_fit_on_a_scored_frame_with_both_classes(night: dict[str, Any]) -> None:
    scored, truth = night["scored"], night["truth"]
    assert set(truth) == {0, 1}
    # the test misses some truth here: labels have something to teach
    assert (coordination_decision(scored).astype(int) != truth).any()
    m = LabelModel(random_state=0).fit(scored, truth)
    assert m.usable_ and m.class_counts_ == {
        "abuse": int(truth.sum()),
        "benign": int((truth == 0).sum()),
    }
    # decisions and the ranking score are not evidence; the test's decision enters once
    assert not {"flagged", "test_flagged", "score", "group", "reason"} & set(m.columns_)
    assert {"families_owned", "risk", "network", "identity_log10p"} <= set(m.columns_)
    assert set(m.metadata_["weights"]) == {*m.columns_, "test_decision"}
    assert m.metadata_["used"] and m.metadata_["why_not"] is None
    p = m.predict_proba(scored)
    assert p.shape == (len(scored),) and ((p >= 0) & (p <= 1)).all()
    # every abuse cluster ranks above every benign one, and the decisions are the labels'
    assert p[truth.to_numpy() == 1].min() > p[truth.to_numpy() == 0].max()
    assert ((p >= 0.5).astype(int) == truth.to_numpy()).all()
    # as the store keeps the evidence (JSON), the model is the same
    stored = evidence_frame([json.loads(json.dumps(r)) for r in evidence_records(scored)])
    assert not {"score", "reason", "group"} & set(stored.columns)
    again = LabelModel(random_state=0).fit(stored, truth.to_numpy())
    np.testing.assert_allclose(again.predict_proba(stored), p, rtol=1e-9)
    np.testing.assert_allclose(again.predict_proba(scored), p, rtol=1e-9)


def test_the_scorer_decides_by_a_usable_model_and_keeps_the_tests_decision(
    night: dict[str, Any],
) -> None:
    res, truth = night["res"], night["truth"]
    risk = known_risk_of("signups", res.entities)
    plain = CampaignScorer("signups").score(res.entities, res.labels, res.entity_scores, risk)
    m = LabelModel().fit(plain, truth.reindex(plain.index).fillna(0).astype(int))
    taught = CampaignScorer("signups", label_model=m).score(
        res.entities, res.labels, res.entity_scores, risk
    )
    assert (taught["test_flagged"] == plain["flagged"]).all()
    assert (taught["flagged"] == (taught["label_probability"] >= 0.5)).all()
    changed = taught.index[taught["flagged"] != taught["test_flagged"]]
    assert len(changed)  # the missed campaign of the fixture is flagged by its label
    assert all("analysts' labels overrule the test" in r for r in taught.loc[changed, "reason"])
    # evidence of a night a model decided is still the test's: the next model never learns
    # from its own decisions
    recs = evidence_records(taught)
    assert [r["flagged"] for r in recs] == plain["flagged"].tolist()
    assert "test_flagged" not in evidence_columns(taught)


def test_labels_of_one_class_are_not_used(night: dict[str, Any]) -> None:
    scored, truth = night["scored"], night["truth"]
    abuse = truth.index[truth == 1]
    m = LabelModel().fit(scored.loc[abuse], np.ones(len(abuse), dtype=int))
    assert not m.usable_
    assert m.metadata_["used"] is False and "one class" in m.metadata_["why_not"]
    assert m.metadata_["weights"] is None
    # the test's decision stands, and the scorer leaves its flags alone
    np.testing.assert_array_equal(m.predict_proba(scored), scored["flagged"].astype(float))
    res = night["res"]
    risk = known_risk_of("signups", res.entities)
    out = CampaignScorer("signups", label_model=m).score(
        res.entities, res.labels, res.entity_scores, risk
    )
    assert "test_flagged" not in out and (out["flagged"] == scored["flagged"]).all()
    none = LabelModel().fit(scored.iloc[:0], np.zeros(0, dtype=int))
    assert not none.usable_ and none.n_labels_ == 0


def test_bad_labels_are_refused(night: dict[str, Any]) -> None:
    scored = night["scored"]
    with pytest.raises(ValueError, match="labels for"):
        LabelModel().fit(scored, np.ones(len(scored) - 1, dtype=int))
    with pytest.raises(ValueError, match="0 \\(benign\\) or 1 \\(abuse\\)"):
        LabelModel().fit(scored, np.full(len(scored), 2))
    with pytest.raises(ValueError, match="C must be positive"):
        LabelModel(C=0).fit(scored, night["truth"])
    with pytest.raises(RuntimeError, match="not fitted"):
        LabelModel().predict_proba(scored)


def test_seeded_fits_are_identical(night: dict[str, Any]) -> None:
    scored, truth = night["scored"], night["truth"]
    a = LabelModel(random_state=7).fit(scored, truth)
    b = LabelModel(random_state=7).fit(scored, truth)
    np.testing.assert_array_equal(a.predict_proba(scored), b.predict_proba(scored))
    assert a.metadata_ == b.metadata_
    assert a.get_params() == {"C": 1.0, "random_state": 7, "anchor_share": 0.5}
    assert b.set_params(C=0.5).C == 0.5
    with pytest.raises(ValueError, match="unknown parameter"):
        b.set_params(penalty="l1")


def test_pickle_round_trip(night: dict[str, Any]) -> None:
    scored, truth = night["scored"], night["truth"]
    m = LabelModel().fit(scored, truth)
    back = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(back.predict_proba(scored), m.predict_proba(scored))
    assert back.metadata_ == m.metadata_ and back.columns_ == m.columns_


def test_a_label_against_the_test_moves_that_kind_of_cluster(night: dict[str, Any]) -> None:
    scored, truth = night["scored"], night["truth"]
    # two fragments of one crowd hold the same evidence: label one, and the other follows
    labelled, twin = _twin_groups(scored)
    assert scored.loc[labelled, "flagged"] and truth[labelled] == 1
    rest = truth.drop(twin)
    agree = LabelModel().fit(scored.loc[rest.index], rest)
    assert agree.predict_proba(scored.loc[[twin]])[0] >= 0.5
    said_benign = rest.copy()
    said_benign[labelled] = 0  # an analyst says the test's flag is wrong
    against = LabelModel().fit(scored.loc[rest.index], said_benign)
    assert against.predict_proba(scored.loc[[twin]])[0] < 0.5
    # a campaign the test missed, labelled abuse, flags a cluster like it (its evidence a
    # little stronger); labelled benign, it does not
    missed = int(truth.index[(truth == 1) & ~scored["flagged"]][0])
    like = scored.loc[[missed]].copy()
    like.index = pd.Index([10_000], name=scored.index.name)
    for col in ("network", "client", "identity"):
        like[col] = like[col] * 1.02
    assert LabelModel().fit(scored, truth).predict_proba(like)[0] >= 0.5
    benign = truth.copy()
    benign[missed] = 0
    assert LabelModel().fit(scored, benign).predict_proba(like)[0] < 0.5


def test_anchors_keep_the_tests_other_decisions(night: dict[str, Any]) -> None:
    scored, truth = night["scored"], night["truth"]
    test = coordination_decision(scored)
    # two labels, both against the test: a flagged campaign called benign, a missed one abuse
    # (one without a fragment twin: a twin would follow its label, as the test above shows)
    alone_in_group = scored["group"].map(scored["group"].value_counts()) == 1
    said_benign = int(truth.index[test & (truth == 1) & alone_in_group][-1])
    said_abuse = int(truth.index[~test & (truth == 1)][0])
    labels = pd.Series({said_benign: 0, said_abuse: 1})
    others = scored.drop(labels.index)
    alone = LabelModel().fit(scored.loc[labels.index], labels)
    moved = (alone.predict_proba(others) >= 0.5) != test.drop(labels.index).to_numpy()
    assert moved.any()  # the labels alone move clusters they say nothing about
    anchored = LabelModel().fit(scored.loc[labels.index], labels, anchors=others)
    assert anchored.n_anchors_ == len(others) and anchored.metadata_["anchors"] == len(others)
    p = anchored.predict_proba(scored)
    decided = pd.Series(p >= 0.5, index=scored.index)
    # the labelled clusters go the labels' way, every other one keeps the test's decision
    assert not decided[said_benign] and decided[said_abuse]
    assert (decided.drop(labels.index) == test.drop(labels.index)).all()
    with pytest.raises(ValueError, match="anchor_share"):
        LabelModel(anchor_share=1.0).fit(scored.loc[labels.index], labels, anchors=others)
    # no anchor weight: the labels alone
    np.testing.assert_allclose(
        LabelModel(anchor_share=0)
        .fit(scored.loc[labels.index], labels, anchors=others)
        .predict_proba(scored),
        alone.predict_proba(scored),
    )
