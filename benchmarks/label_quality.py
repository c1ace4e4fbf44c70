"""Analysts' labels teach the flagger: flagged-campaign precision and recall with 0, 5 and 20
labelled clusters, on every labelled real data set (issue 13, item 3).

For each set: detection with the shipped defaults (``JobConfig()``; of a spec only its schema,
as ``benchmarks/entity_quality.py`` runs it), then an analyst reviews the top of the list:

- **sampler ``top``** (the issue's): clusters ordered by the coordination test's ``score``,
  highest first, ties broken by a seeded permutation (``--seed``, default 0); the first ``k``
  are labelled with their truth (abuse when most of their members are abuse).
- **sampler ``flagged_and_near_misses``** (for comparison): the first ``ceil(k/2)`` flagged
  clusters and the first ``floor(k/2)`` unflagged ones, each in the same order: an analyst who
  checks the flags and the near misses below them. Reviewing only the top of the list mostly
  sees flagged clusters, often of one class, and labels of one class are not used.

The labels fit :class:`anomaly.label_model.LabelModel` (seed 0, its defaults) as the nightly
job fits it (:func:`pipelines.review.fit_label_model`): on the labelled clusters' evidence,
anchored by the test's decisions on the clusters nobody labelled (the nightly job's anchors
are the look-back window's campaigns; a set here is one night, so they are its other
clusters). When the labels hold both classes, detection runs again with the model
(:func:`pipelines.job.detect` ``label_model=``): the clusters are the same (clustering comes
before scoring), the flags are the model's, and merging, stray attachment and timer pools
follow from them as in a run. Labels of one class leave the model unused: the flags are the
test's, by construction, and the run is not repeated.

Figures (the definitions of ``benchmarks/entity_quality.py``, entity level): precision is the
share of entities in flagged campaigns that are abuse, recall the share of abuse entities
inside a flagged campaign. Each is given overall and on the entities outside the labelled
clusters (``unlabelled``: what the labels teach beyond what they say), for the test alone and
with the labels. ``misses`` (first in the document) lists every figure the labels made worse
(lower than the test's; or, where the test flagged nothing, a precision below one half: the
labels added more benign entities to flagged campaigns than abuse); ``no_effect`` every case
whose labels held one class; ``labels_not_followed`` every labelled cluster a used model still
decides against its own label.

    python benchmarks/label_quality.py --data ../shared/data       # every labelled real set
    python benchmarks/label_quality.py --data ../shared/data --only sms cresci
    python benchmarks/label_quality.py --quick                     # synthetic signups (CI)

Real data: Cresci-2017 (Cresci et al., WWW'17 Companion), SMS Spam Collection (Almeida &
Hidalgo 2011), Enron-Spam enron1-3 (Metsis, Androutsopoulos & Paliouras, CEAS 2006), the
SpamAssassin public corpus 2002 groups. ``docs/label_model.md`` has the measured tables.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import os
import platform
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# the sibling module with the real sets' loaders (this folder is sys.path[0] as a script)
import entity_quality as eq
import numpy as np
import pandas as pd

log = logging.getLogger("quality.labels")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
KS = (0, 5, 20)
SAMPLERS = ("top", "flagged_and_near_misses")
SEED = 0


@dataclass
class LabelledSet:
    """One data set as detection takes it, and its truth (per event row)."""

    name: str
    kind: str
    events: pd.DataFrame
    labels: np.ndarray
    positive: list[str]
    config: Any  # JobConfig
    source: str


# ------------------------------------------------------------------------------ the sets


def _spamassassin(data: Path) -> list[LabelledSet] | str:
    from pipelines.config import JobConfig
    from pipelines.readers import read_events

    folder = eq._folder(data, "spamassassin_2002")
    if not (folder / "senders.parquet").is_file() or not (folder / "labels.parquet").is_file():
        return f"{folder}: missing senders.parquet or labels.parquet"
    events = read_events(folder / "senders.parquet", "senders").frame
    truth = pd.read_parquet(folder / "labels.parquet", columns=["message_id", "label"])
    found = events["message_id"].astype(str).map(truth.set_index("message_id")["label"])
    keep = found.notna().to_numpy()
    events = events.loc[keep].reset_index(drop=True)
    spam = found[keep].astype(int).to_numpy() == 1
    labels = np.where(spam, "spam", "ham").astype(object)
    return [
        LabelledSet(
            "spamassassin",
            "senders",
            events,
            labels,
            ["spam"],
            JobConfig(),
            "built-in senders kind",
        )
    ]


def _cresci(data: Path) -> list[LabelledSet] | str:
    folder = eq._folder(data, "cresci2017")
    missing = [n for n in eq.CRESCI_FILES.values() if not (folder / n).is_file()]
    if missing:
        return f"{folder}: missing {', '.join(missing)}"
    s = eq.setup(eq.SPECS / "profiles.toml")
    raw, labels = eq.read_profiles(folder)
    bots = [g for g in eq.CRESCI_FILES if g != "genuine"]
    events = eq._typed(raw, s.kind)
    return [LabelledSet("cresci", s.kind, events, labels, bots, s.config, str(s.spec))]


def _sms(data: Path) -> list[LabelledSet] | str:
    path = eq._folder(data, "sms_spam") / "SMSSpamCollection"
    if not path.is_file():
        return f"{path} does not exist"
    raw = pd.read_csv(path, sep="\t", header=None, names=["label", "text"], quoting=3)
    raw = raw.dropna(subset=["text"]).reset_index(drop=True)
    s = eq.setup(eq.SPECS / "sms.toml")
    frame = eq._messages(list(zip(raw["label"], raw["text"], strict=True)), "sms")
    labels = frame.pop("label").to_numpy(dtype=object)
    events = eq._typed(frame, s.kind)
    return [LabelledSet("sms", s.kind, events, labels, ["spam"], s.config, str(s.spec))]


def _uncompressed(archive: Path) -> tarfile.TarFile:
    """``archive`` read once, front to back, as an uncompressed tar in memory: reading members
    out of order from a gzip stream decompresses it again for each one."""
    buf = io.BytesIO()
    with tarfile.open(archive, "r|*") as src, tarfile.open(fileobj=buf, mode="w") as dst:
        for m in src:
            fh = src.extractfile(m) if m.isfile() else None
            dst.addfile(m, fh)
    buf.seek(0)
    return tarfile.open(fileobj=buf, mode="r")


def _enron(data: Path) -> list[LabelledSet] | str:
    folder = eq._folder(data, "enron_spam")
    archives = eq._enron_archives(folder) if folder.is_dir() else {}
    if not archives:
        return f"{folder}: no enron1-3 archives"
    s = eq.setup(eq.SPECS / "enron.toml")
    out = []
    opened: dict[Path, tarfile.TarFile] = {}
    for name, archive in archives.items():
        if archive not in opened:
            opened[archive] = _uncompressed(archive)
        rows = eq._enron_messages(opened[archive], name)  # the entity sections' own parsing
        frame = pd.DataFrame(
            {
                "message_id": [f"{name}-{i:06d}" for i in range(len(rows))],
                "sent_at": eq.CONSTANT_DAY,
                "subject": [r[1] for r in rows],
                "body": [r[2] for r in rows],
            }
        )
        labels = np.array([r[0] for r in rows], dtype=object)
        events = eq._typed(frame, s.kind)
        out.append(LabelledSet(name, s.kind, events, labels, ["spam"], s.config, str(s.spec)))
    for tar in opened.values():
        tar.close()
    return out


SETS: dict[str, Callable[[Path], list[LabelledSet] | str]] = {
    "spamassassin": _spamassassin,
    "cresci": _cresci,
    "sms": _sms,
    "enron": _enron,
}


def synthetic_set(signups: int = 3000, seed: int = 0) -> LabelledSet:
    """One night of the built-in generator's signups (``--quick``): planted campaigns are
    abuse; the population and the look-alike crowds (a campus NAT, a marketing burst) are
    not."""
    from pipelines.config import JobConfig
    from pipelines.readers import read_events_frame
    from pipelines.synthetic import generate

    data = generate(days=1, seed=seed, signups_per_day=signups, messages_per_day=1000)
    events = read_events_frame(data.signups, "signups", source="synthetic signups")
    truth = data.signup_labels.set_index("account_id")["label"]
    labels = events["account_id"].map(truth).to_numpy(dtype=object)
    return LabelledSet(
        f"synthetic_signups_{signups}",
        "signups",
        events,
        labels,
        ["campaign"],
        JobConfig(),
        f"pipelines.synthetic.generate(days=1, seed={seed}, signups_per_day={signups})",
    )


# ----------------------------------------------------------------------------- sampling


def review_order(scored: pd.DataFrame, seed: int = SEED) -> pd.Index:
    """Clusters as an analyst reads the list: by ``score``, highest first; ties in a seeded
    random order."""
    rng = np.random.default_rng(seed)
    tie = rng.permutation(len(scored))
    score = pd.to_numeric(scored["score"], errors="coerce").fillna(-1.0).to_numpy()
    order = np.lexsort((tie, -score))
    return scored.index[order]


def sample(scored: pd.DataFrame, k: int, sampler: str, seed: int = SEED) -> list[int]:
    """The ``k`` clusters ``sampler`` labels (fewer when the set has fewer clusters)."""
    order = review_order(scored, seed)
    if sampler == "top":
        return [int(c) for c in order[:k]]
    if sampler == "flagged_and_near_misses":
        from anomaly.label_model import coordination_decision

        test = coordination_decision(scored).reindex(order).to_numpy()
        flagged, unflagged = list(order[test]), list(order[~test])
        n_flag = min(math.ceil(k / 2), len(flagged))
        n_un = min(k - n_flag, len(unflagged))
        n_flag = min(k - n_un, len(flagged))  # the rest from the other side when one runs out
        return [int(c) for c in [*flagged[:n_flag], *unflagged[:n_un]]]
    raise ValueError(f"unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}")


# ------------------------------------------------------------------------------ figures


def _detect(s: LabelledSet, label_model: Any = None) -> Any:
    from pipelines.job import detect
    from pipelines.stages import Stages

    time_col = eq._time_column(s.kind)
    created_at = pd.Timestamp(s.events[time_col].max()).floor("s").to_pydatetime()
    return detect(
        s.kind,
        s.events,
        s.config,
        Stages(show_progress=False),
        run_id=f"label-quality-{s.name}",
        created_at=created_at,
        label_model=label_model,
    )


def _pr(inside: np.ndarray, abuse: np.ndarray, subset: np.ndarray) -> dict[str, Any]:
    flagged = inside & subset
    tp = int((flagged & abuse).sum())
    return {
        "precision": eq._ratio(tp, int(flagged.sum())),
        "recall": eq._ratio(tp, int((abuse & subset).sum())),
        "entities_in_flagged": int(flagged.sum()),
    }


def _cluster_truth(res: Any, abuse: np.ndarray) -> pd.DataFrame:
    """Per scored cluster: size, abuse share and truth (most members abuse)."""
    lab = np.asarray(res.labels)
    members = pd.DataFrame({"c": lab, "abuse": abuse})
    g = members[members["c"] >= 0].groupby("c")["abuse"].agg(["size", "mean"])
    g = g.reindex(res.cluster_scores.index)
    return pd.DataFrame(
        {
            "size": g["size"].fillna(0).astype(int),
            "abuse_share": g["mean"].fillna(0.0),
            "truth": (g["mean"].fillna(0.0) > 0.5).astype(int),
        },
        index=res.cluster_scores.index,
    )


def _one_k(
    s: LabelledSet,
    base: Any,
    ent_abuse: np.ndarray,
    truth: pd.DataFrame,
    labelled: list[int],
) -> dict[str, Any]:
    from anomaly.label_model import LabelModel, coordination_decision

    scored = base.cluster_scores
    y = truth.loc[labelled, "truth"].to_numpy(dtype=np.int64)
    anchors = scored.drop(index=labelled)
    model = LabelModel(random_state=s.config.seed).fit(scored.loc[labelled], y, anchors=anchors)
    res = _detect(s, model) if model.usable_ else base
    same = bool(np.array_equal(np.asarray(res.labels), np.asarray(base.labels)))
    inside_test = eq.in_flagged_campaigns(base)
    inside = eq.in_flagged_campaigns(res)
    everyone = np.ones(len(ent_abuse), dtype=bool)
    outside = ~np.isin(np.asarray(base.labels), labelled)
    test_flag = coordination_decision(scored)
    changed = []
    if model.usable_:
        now = res.cluster_scores
        p = pd.to_numeric(now["label_probability"], errors="coerce")
        for c in now.index[now["flagged"].astype(bool) != test_flag.reindex(now.index)]:
            changed.append(
                {
                    "cluster": int(c),
                    "labelled": int(c) in labelled,
                    "size": int(truth.loc[c, "size"]),
                    "abuse_share": eq._r(float(truth.loc[c, "abuse_share"])),
                    "test_flagged": bool(test_flag[c]),
                    "flagged": bool(now.loc[c, "flagged"]),
                    "p_abuse": eq._r(float(p[c])),
                }
            )
    # labelled clusters whose decision is not their label: the model could not fit it
    decided = res.cluster_scores["flagged"].astype(bool).reindex(labelled).to_numpy()
    overruled = [
        {"cluster": c, "label": "abuse" if t else "benign", "flagged": bool(d)}
        for c, t, d in zip(labelled, y, decided, strict=True)
        if bool(t) != bool(d)
    ]
    return {
        "labelled": {
            "clusters": len(labelled),
            "abuse": int(y.sum()),
            "benign": int(len(y) - y.sum()),
            "ids": labelled,
        },
        "model": {
            "used": bool(model.usable_),
            "why_not": model.metadata_["why_not"],
            "anchors": model.n_anchors_,
        },
        "same_clusters": same,
        "changed_clusters": changed,
        "labels_not_followed": overruled,
        "overall": {
            "test": _pr(inside_test, ent_abuse, everyone),
            "with_labels": _pr(inside, ent_abuse, everyone),
        },
        "unlabelled": {
            "clusters": int(len(scored) - len(labelled)),
            "entities": int(outside.sum()),
            "abuse_entities": int((ent_abuse & outside).sum()),
            "test": _pr(inside_test, ent_abuse, outside),
            "with_labels": _pr(inside, ent_abuse, outside),
        },
    }


def measure(s: LabelledSet, ks: tuple[int, ...] = KS, seed: int = SEED) -> dict[str, Any]:
    """Every sampler and ``k`` on one set (see the module's docstring)."""
    t0 = time.perf_counter()
    log.info("%s: %d rows, detecting", s.name, len(s.events))
    base = _detect(s)
    ent = eq._entity_labels(base, s.events, s.labels, s.kind)
    ent_abuse = np.isin(ent, s.positive)
    truth = _cluster_truth(base, ent_abuse)
    scored = base.cluster_scores
    test = eq.flagged_figures(base, ent, s.positive)
    out: dict[str, Any] = {
        "status": "ok",
        "kind": s.kind,
        "source": s.source,
        "rows": len(s.events),
        "entities": len(ent),
        "abuse_entities": int(ent_abuse.sum()),
        "clusters": len(scored),
        "abuse_clusters": int(truth["truth"].sum()),
        "test_flagged_clusters": int(scored["flagged"].astype(bool).sum()),
        "test": {k: test[k] for k in ("precision", "recall", "flagged_campaigns")},
        "review_order": [
            {
                "cluster": int(c),
                "score": eq._r(float(scored.loc[c, "score"])),
                "test_flagged": bool(scored.loc[c, "flagged"]),
                "size": int(truth.loc[c, "size"]),
                "abuse_share": eq._r(float(truth.loc[c, "abuse_share"])),
            }
            for c in review_order(scored, seed)
        ],
        "samplers": {},
    }
    for sampler in SAMPLERS:
        per_k: dict[str, Any] = {}
        for k in ks:
            if k == 0:
                per_k["0"] = {"labelled": {"clusters": 0}, "overall": {"test": out["test"]}}
                continue
            labelled = sample(scored, k, sampler, seed)
            log.info("%s: %s, %d labelled clusters", s.name, sampler, len(labelled))
            per_k[str(k)] = _one_k(s, base, ent_abuse, truth, labelled)
        out["samplers"][sampler] = per_k
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def misses(sets: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Figures the labels made worse (see the module's docstring), and the cases whose labels
    were not used."""
    worse, unused = [], []
    for name, res in sets.items():
        if res.get("status") != "ok":
            continue
        for sampler, per_k in res["samplers"].items():
            for k, r in per_k.items():
                if k == "0":
                    continue
                if not r["model"]["used"]:
                    unused.append(
                        {
                            "set": name,
                            "sampler": sampler,
                            "k": int(k),
                            "labelled": {x: r["labelled"][x] for x in ("abuse", "benign")},
                            "why": r["model"]["why_not"],
                        }
                    )
                    continue
                for scope in ("overall", "unlabelled"):
                    for fig in ("precision", "recall"):
                        a, b = r[scope]["test"][fig], r[scope]["with_labels"][fig]
                        # lower than the test's; or, where the test flagged nothing, flags
                        # that are mostly benign (more false positives than catches)
                        if (a is not None and (b is None or b < a)) or (
                            a is None and fig == "precision" and b is not None and b < 0.5
                        ):
                            worse.append(
                                {
                                    "set": name,
                                    "sampler": sampler,
                                    "k": int(k),
                                    "scope": scope,
                                    "figure": fig,
                                    "test": a,
                                    "with_labels": b,
                                }
                            )
    return worse, unused


# -------------------------------------------------------------------------------- main


def _data_folder(arg: Path | None) -> tuple[Path, str]:
    if arg is not None:
        return arg, "--data"
    if os.environ.get("CAMPAIGNS_DATA"):
        return Path(os.environ["CAMPAIGNS_DATA"]), "CAMPAIGNS_DATA"
    return DEFAULT_DATA, "default"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=None, help="the real data (../shared/data)")
    p.add_argument("--only", nargs="+", choices=list(SETS), default=list(SETS))
    p.add_argument("--quick", action="store_true", help="synthetic signups only (CI)")
    p.add_argument("--seed", type=int, default=SEED, help="the sampler's tie-break seed")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    eq._project_imports()
    t0 = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    data: dict[str, Any]
    if args.quick:
        s = synthetic_set()
        results[s.name] = measure(s, seed=args.seed)
        data = {"folder": None, "from": "--quick (synthetic)"}
    else:
        folder, source = _data_folder(args.data)
        data = {"folder": str(folder), "from": source}
        for name in args.only:
            found = SETS[name](folder) if folder.is_dir() else f"{folder} does not exist"
            if isinstance(found, str):
                log.warning("%s skipped: %s", name, found)
                results[name] = {"status": "skipped", "reason": found}
                continue
            for s in found:
                results[s.name] = measure(s, seed=args.seed)
    worse, unused = misses(results)
    not_followed = [
        {"set": name, "sampler": sampler, "k": int(k), **c}
        for name, res in results.items()
        if res.get("status") == "ok"
        for sampler, per_k in res["samplers"].items()
        for k, r in per_k.items()
        for c in r.get("labels_not_followed", [])
        if r["model"]["used"]
    ]
    from anomaly.label_model import LabelModel

    lm = LabelModel()
    doc = {
        "misses": worse,
        "no_effect": unused,
        "labels_not_followed": not_followed,
        "protocol": {
            "settings": "shipped defaults (JobConfig(); a spec's schema only)",
            "ks": list(KS),
            "samplers": {
                "top": "clusters by score, highest first (ties: seeded permutation); the first "
                "k labelled with their truth (abuse when most members are abuse)",
                "flagged_and_near_misses": "the first ceil(k/2) flagged clusters and the first "
                "floor(k/2) unflagged ones, in the same order",
            },
            "seed": args.seed,
            "model": {**lm.get_params(), "anchors": "the set's unlabelled clusters"},
            "figures": "entity level: precision = abuse share of entities in flagged campaigns, "
            "recall = share of abuse entities inside one; overall and outside the labelled "
            "clusters",
        },
        "data": data,
        "sets": results,
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "seconds": round(time.perf_counter() - t0, 1),
        },
    }
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
