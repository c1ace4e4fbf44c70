"""Analysts' labels teach the flagger: a cluster-level model on the coordination evidence.

The coordination test (:mod:`anomaly.coordination`) decides with no labels at all. Where
analysts have labelled campaigns (``campaigns label``, the review notebook), their labels say
which evidence patterns tonight's data calls abuse: an institution's crowd that owns two
families (label it benign once, and crowds like it stop being flagged), or a farm whose members
look ordinary and own one family (label it abuse). In the spirit of LinkedIn's cluster
classifier for fake-account clusters, a regularised logistic regression is fitted on the
evidence of the labelled clusters, with the test's own decision among its inputs, so with few
labels it mostly repeats the test and moves only where the labels disagree with it.

Few labels alone would not do that. Two labels that both contradict the test (a flagged crowd
called benign, a missed farm called abuse) teach a linear model one direction, "what the test
flags is benign", and it would unflag the night's strongest campaigns. So the test's own
decisions on clusters nobody labelled (``anchors``: earlier nights' campaigns in the store, or
the night's other clusters) enter the fit as weak labels carrying ``anchor_share`` of the total
weight: the labels then move the decision only where some evidence tells their clusters apart
from the clusters the test decided the other way.

The model is used only when the labels hold both classes: labels of one class cannot say
where the boundary lies, and the test's decision stands.

The nightly job keeps each campaign's evidence in the store (:func:`evidence_records`, table
``campaign_evidence``), so labels given on any earlier night train the next one
(:func:`pipelines.review.fit_label_model`); ``docs/label_model.md`` has its measured effect.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

log = logging.getLogger(__name__)

__all__ = [
    "LabelModel",
    "coordination_decision",
    "evidence_columns",
    "evidence_frame",
    "evidence_matrix",
    "evidence_records",
]

# columns of CampaignScorer's frame that are not evidence (or are a decision: the test's enters
# as the last column of the evidence matrix, a label model's never does)
_NOT_EVIDENCE = frozenset(
    {"group", "flagged", "test_flagged", "reason", "label_probability", "score"}
)


def evidence_columns(scored: pd.DataFrame) -> list[str]:
    """The numeric evidence columns of a :class:`anomaly.scoring.CampaignScorer` frame."""
    return [
        c
        for c in scored.columns
        if c not in _NOT_EVIDENCE and pd.api.types.is_numeric_dtype(scored[c])
    ]


def coordination_decision(scored: pd.DataFrame) -> pd.Series:
    """The coordination test's own decision per cluster (``test_flagged`` where a label model
    decided, else ``flagged``)."""
    col = "test_flagged" if "test_flagged" in scored else "flagged"
    return scored[col].astype(bool)


def evidence_records(scored: pd.DataFrame) -> list[dict[str, Any]]:
    """Each cluster's evidence as the store keeps it, one JSON-able dict per row of ``scored``.

    Every evidence column (:func:`evidence_columns`) as a float (``None`` for a missing value)
    and ``flagged``, the test's own decision (:func:`coordination_decision`): a label model's
    decision never becomes evidence for the next one.
    """
    cols = evidence_columns(scored)
    values = scored[cols].apply(pd.to_numeric, errors="coerce").astype("float64")
    test = coordination_decision(scored).to_numpy()
    out = []
    for i, row in enumerate(values.itertuples(index=False, name=None)):
        rec: dict[str, Any] = {
            c: (None if not np.isfinite(v) else float(v)) for c, v in zip(cols, row, strict=True)
        }
        rec["flagged"] = bool(test[i])
        out.append(rec)
    return out


def evidence_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """:func:`evidence_records` back as a frame :meth:`LabelModel.fit` takes (numeric columns,
    ``flagged`` boolean); records of different nights may hold different columns."""
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame({"flagged": []})
    for c in frame.columns:
        if c == "flagged":
            frame[c] = frame[c].fillna(False).astype(bool)
        else:
            frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
    return frame


def evidence_matrix(scored: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Evidence of each cluster in ``columns``' order, shape (n_clusters, n_columns + 1).

    A column the frame lacks (a risk indicator tonight's input cannot give) reads as "no
    evidence": 0.5 for a rank effect (``*_auc``), 0 otherwise. ``-log10`` p-values are
    compressed with ``log1p`` (they run to the hundreds for large clusters; an infinite one is
    capped). The last column is the test's own decision (:func:`coordination_decision`).
    """
    cols = []
    for c in columns:
        if c in scored:
            v = pd.to_numeric(scored[c], errors="coerce").astype("float64").to_numpy()
        else:
            v = np.full(len(scored), 0.5 if c.endswith("_auc") else 0.0)
        if c.endswith("_log10p"):
            v = np.log1p(np.clip(v, 0, 1e6))
        cols.append(np.nan_to_num(v, nan=0.5 if c.endswith("_auc") else 0.0))
    known = "test_flagged" in scored or "flagged" in scored
    test = coordination_decision(scored) if known else pd.Series(np.zeros(len(scored)))
    cols.append(test.to_numpy(dtype=np.float64))
    return np.column_stack(cols)


class LabelModel:
    """Logistic regression from coordination evidence to P(abuse), fitted on labelled clusters.

    Parameters
    ----------
    C : float
        Inverse regularisation strength (scikit-learn's default, 1.0; not tuned on the
        evaluation sets, see ``docs/label_model.md``).
    random_state : int
    anchor_share : float
        Share of the fit's total weight that the anchors (the test's decisions on unlabelled
        clusters, :meth:`fit`) carry, in [0, 1): 0.5 (the default) weighs them, together, as
        much as the labels together. Not tuned on the evaluation sets either.

    Attributes
    ----------
    columns_ : list of str
        Evidence columns the model was fitted on (:func:`evidence_columns`).
    usable_ : bool
        Whether the labels held both classes (else the model changes nothing).
    n_labels_ : int
    class_counts_ : dict
        ``{"abuse": n, "benign": n}``.
    metadata_ : dict
        What the record shows: the class counts, whether the model is used (and why not), and
        the fitted weights per standardised evidence column (``test_decision``: the test's).
    """

    def __init__(self, C: float = 1.0, random_state: int = 0, anchor_share: float = 0.5) -> None:
        self.C = C
        self.random_state = random_state
        self.anchor_share = anchor_share

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"C": self.C, "random_state": self.random_state, "anchor_share": self.anchor_share}

    def set_params(self, **params: Any) -> LabelModel:
        for k, v in params.items():
            if k not in ("C", "random_state", "anchor_share"):
                raise ValueError(f"unknown parameter {k!r}")
            setattr(self, k, v)
        return self

    def fit(
        self,
        scored: pd.DataFrame,
        y: np.ndarray | pd.Series,
        anchors: pd.DataFrame | None = None,
    ) -> LabelModel:
        """Fit on the evidence of labelled clusters.

        Parameters
        ----------
        scored : DataFrame of shape (n_labelled, n_columns)
            Rows of :class:`anomaly.scoring.CampaignScorer` frames (any nights), one per
            labelled cluster, with the test's ``flagged``.
        y : array-like of shape (n_labelled,)
            1 = abuse, 0 = benign.
        anchors : DataFrame of shape (n_anchors, n_columns), optional
            Evidence of clusters nobody labelled; their test decision is their weak label
            (together ``anchor_share`` of the weight). Without them the labels alone decide.
        """
        if not self.C > 0:
            raise ValueError("C must be positive")
        if not 0 <= self.anchor_share < 1:
            raise ValueError("anchor_share must be in [0, 1)")
        y = np.asarray(y)
        if len(y) != len(scored):
            raise ValueError(f"{len(y)} labels for {len(scored)} clusters")
        if len(y) and not np.isin(y, [0, 1]).all():
            raise ValueError("labels must be 0 (benign) or 1 (abuse)")
        y = y.astype(np.int64)
        if anchors is None or self.anchor_share == 0:
            anchors = scored.iloc[:0]
        self.columns_ = evidence_columns(scored)
        self.columns_ += [c for c in evidence_columns(anchors) if c not in self.columns_]
        self.n_labels_ = len(y)
        self.n_anchors_ = len(anchors)
        self.class_counts_ = {"abuse": int(y.sum()), "benign": int(len(y) - y.sum())}
        self.usable_ = bool(self.class_counts_["abuse"] and self.class_counts_["benign"])
        if self.usable_:
            n = len(y)
            # labels: balanced classes, n in all; anchors: anchor_share of the total
            w_lab = np.where(y == 1, n / (2 * self.class_counts_["abuse"]), 0.0)
            w_lab += np.where(y == 0, n / (2 * self.class_counts_["benign"]), 0.0)
            share = self.anchor_share
            w_anchor = n * share / (1 - share) / len(anchors) if len(anchors) else 0.0
            X = np.vstack(
                [evidence_matrix(scored, self.columns_), evidence_matrix(anchors, self.columns_)]
            )
            target = np.concatenate([y, coordination_decision(anchors).to_numpy(dtype=np.int64)])
            weight = np.concatenate([w_lab, np.full(len(anchors), w_anchor)])
            self.model_ = make_pipeline(
                StandardScaler(),
                LogisticRegression(C=self.C, random_state=self.random_state),
            ).fit(X, target, logisticregression__sample_weight=weight)
        weights = None
        if self.usable_:
            coef = self.model_[-1].coef_[0]
            names = [*self.columns_, "test_decision"]
            weights = {n: round(float(w), 4) for n, w in zip(names, coef, strict=True)}
        self.metadata_: dict[str, Any] = {
            "model": "logistic regression (standardised evidence, balanced classes, anchored "
            "by the test's decisions on unlabelled clusters)",
            "C": self.C,
            "anchor_share": self.anchor_share,
            "labels": self.n_labels_,
            **self.class_counts_,
            "anchors": self.n_anchors_,
            "used": self.usable_,
            "why_not": None
            if self.usable_
            else "labels of one class (or none): the test's decision stands",
            "weights": weights,
        }
        log.info(
            "label model: %d labelled clusters (%d abuse, %d benign), %s",
            self.n_labels_,
            self.class_counts_["abuse"],
            self.class_counts_["benign"],
            "used" if self.usable_ else "not used: labels of one class",
        )
        return self

    def predict_proba(self, scored: pd.DataFrame) -> np.ndarray:
        """P(abuse) per cluster, shape (n_clusters,); the test's decision (0/1) if unusable."""
        if not hasattr(self, "usable_"):
            raise RuntimeError("LabelModel is not fitted")
        if not self.usable_:
            return coordination_decision(scored).to_numpy(dtype=np.float64)
        if len(scored) == 0:
            return np.zeros(0)
        return self.model_.predict_proba(evidence_matrix(scored, self.columns_))[:, 1]
