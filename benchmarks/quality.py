"""Campaign Workbench on real public data: one section per data set, one JSON document.

The data sits outside the repository (it is not ours to ship, and several licences are
research-use only; see ``../shared/data/README.md``), so the folder is an argument: ``--data
DIR``, else the ``CAMPAIGNS_DATA`` environment variable, else ``../shared/data`` beside the
repository if it exists. A section whose folder is missing is reported as ``{"status":
"skipped", "reason": ...}`` (with a message on stderr) and the script still exits 0: a fresh
clone has no data. Unmet criteria do not change the exit status either: this is a report.

One protocol on every set (issue 13): the shipped defaults, with no per-set settings. Every
setting a section uses that differs from them is listed in its ``non_default_settings``
(``tuning`` false for what a spec must say about the data's schema); ``--tuned`` applies the
per-set settings the entity sections used before, for comparison. Every section reports its
``targets`` with ``met`` and the measured numbers, and the document starts with ``misses``,
every unmet target of every section.

    python benchmarks/quality.py                               # every section
    python benchmarks/quality.py --sections adbench            # ADBench only
    python benchmarks/quality.py --data DIR --quick            # fewest rows, no time split (CI)
    python benchmarks/quality.py -v > quality.json             # progress on stderr

Sections (``SECTIONS``):

- ``adbench``: every PyOD detector of :mod:`anomaly.detectors` and the default
  :class:`~anomaly.detectors.DetectorEnsemble`, fitted unsupervised on ``X`` of each
  ``adbench/*.npz`` (seed 0; ``y`` only scores them): ROC AUC, average precision and
  seconds (wall time of one fit, which scores the fitted rows; imports and numba compilation
  are done by a warm-up fit first) per set, their means, and the issue's criteria with
  ``"met"`` and the measured numbers.
- ``spamassassin``: the SpamAssassin 2002 senders through the built-in ``senders`` kind and
  ``JobConfig()`` (``benchmarks/entity_quality.py``): spam senders in >= 90%-pure clusters,
  flagged-campaign precision and recall, and enforced and shadow rules learned on a seeded
  half of the messages (and on the earlier period) applied to the other half (the later one).
- ``cresci``, ``sms``, ``enron``: entity kinds from specs (``benchmarks/entity_quality.py``,
  ``benchmarks/specs/``, their schema only unless ``--tuned``): the share of each abuse group
  in clusters at least 90% pure for it, flagged-campaign precision and recall, and the
  precision and recall of rules learned on one seeded half and applied to the other.

See ``docs/evaluation.md`` for what each figure means and the measured tables.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# the sibling module of the entity sections (this folder is sys.path[0] when run as a script)
import entity_quality
import numpy as np

log = logging.getLogger("quality")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
SEED = 0
# The README's eight ADBench "Classical" sets; others found in the folder are measured too.
ADBENCH_SETS = (
    "38_thyroid",
    "6_cardio",
    "23_mammography",
    "30_satellite",
    "32_shuttle",
    "28_pendigits",
    "35_SpamBase",
    "5_campaign",
)
QUICK_SETS = 3
# Issue 5: the combination's mean ROC AUC may trail the best single detector's by at most this.
ENSEMBLE_MARGIN = 0.01
CHANCE = 0.5


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def _mean(values: list[float | None]) -> float | None:
    """Mean over all sets; None if one lacks the figure (a mean over fewer is not comparable)."""
    if not values or any(v is None for v in values):
        return None
    return float(np.mean([v for v in values if v is not None]))


def _score(model: Any, X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """ROC AUC, average precision and fit seconds of ``model`` fitted unsupervised on ``X``."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    t0 = time.perf_counter()
    try:
        scores = model.fit(X).decision_scores_
    except Exception as exc:  # one failing detector should not hide the others' figures
        log.warning("fit failed: %s", exc)
        return {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
    seconds = time.perf_counter() - t0
    return {
        "status": "ok",
        "roc_auc": float(roc_auc_score(y, scores)),
        "average_precision": float(average_precision_score(y, scores)),
        "seconds": round(seconds, 3),
    }


def _adbench_files(folder: Path, quick: bool) -> list[Path]:
    files = sorted(folder.glob("*.npz"))
    if quick:
        # y alone gives the row count without loading X
        rows = {f: len(np.load(f, allow_pickle=True)["y"]) for f in files}
        files = sorted(files, key=lambda f: (rows[f], f.name))[:QUICK_SETS]
    return files


def _adbench_criteria(
    names: list[str], sets: dict[str, dict[str, Any]], means: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The issue's two ADBench conditions, each with its measured numbers and ``met``."""
    ens_mean = means["ensemble"]["roc_auc"]
    singles = {n: means[n]["roc_auc"] for n in names if means[n]["roc_auc"] is not None}
    best = max(singles, key=lambda n: singles[n]) if singles else None
    floor = None if best is None else singles[best] - ENSEMBLE_MARGIN
    vs_best: dict[str, Any] = {
        "condition": (
            f"mean ROC AUC of the default combination >= the best single detector's mean "
            f"ROC AUC - {ENSEMBLE_MARGIN}"
        ),
        "ensemble_mean_roc_auc": _round(ens_mean),
        "best_single_detector": best,
        "best_single_mean_roc_auc": _round(None if best is None else singles[best]),
        "required_at_least": _round(floor),
        "met": bool(ens_mean is not None and floor is not None and ens_mean >= floor),
    }
    if len(singles) < len(names) or ens_mean is None:
        vs_best["note"] = "some set has no figure (a fit failed), so some means are missing"
    per_set = {s: r.get("ensemble", {}).get("roc_auc") for s, r in sets.items()}
    below = sorted(s for s, v in per_set.items() if v is not None and v < CHANCE)
    unmeasured = sorted(s for s, v in per_set.items() if v is None)
    worst = min(((v, s) for s, v in per_set.items() if v is not None), default=(None, None))
    chance: dict[str, Any] = {
        "condition": f"ROC AUC of the default combination >= {CHANCE} on every set",
        "ensemble_min_roc_auc": _round(worst[0]),
        "worst_set": worst[1],
        "sets_below": below,
        # a set without a figure is not evidence that the condition holds there
        "sets_unmeasured": unmeasured,
        "met": bool(per_set) and not below and not unmeasured,
    }
    return {
        "sets": len(per_set),
        "ensemble_vs_best_single": vs_best,
        "ensemble_above_chance_everywhere": chance,
    }


def _adbench_targets(criteria: dict[str, Any]) -> list[dict[str, Any]]:
    """The two criteria as targets (``name``, ``condition``, ``measured``, ``required``)."""
    vs_best = criteria["ensemble_vs_best_single"]
    chance = criteria["ensemble_above_chance_everywhere"]
    return [
        entity_quality.target(
            "ensemble_vs_best_single",
            vs_best["condition"],
            vs_best["ensemble_mean_roc_auc"],
            vs_best["required_at_least"],
            vs_best["met"],
            best_single_detector=vs_best["best_single_detector"],
        ),
        entity_quality.target(
            "ensemble_above_chance_everywhere",
            chance["condition"],
            chance["ensemble_min_roc_auc"],
            CHANCE,
            chance["met"],
            worst_set=chance["worst_set"],
            sets_unmeasured=chance["sets_unmeasured"],
        ),
    ]


def adbench(folder: Path, quick: bool, tuned: bool = False) -> dict[str, Any]:
    """ROC AUC and average precision of each shipped detector and the default ensemble.

    Parameters
    ----------
    folder : Path
        The ``adbench`` folder: ``*.npz`` files holding ``X`` (features) and ``y`` (1 anomaly).
    quick : bool
        Only the ``QUICK_SETS`` sets with the fewest rows.
    tuned : bool
        Unused: the detectors have no per-set settings.

    Returns
    -------
    dict
        ``status``, ``detectors``, ``ensemble`` (its members and combination), ``sets`` (per
        set: n, d, anomaly share and per method ``roc_auc``, ``average_precision``,
        ``seconds``), ``means``, ``criteria``, ``targets`` (the criteria with ``met``) and
        ``non_default_settings`` (none).
    """
    from anomaly.detectors import DETECTORS, Detector, DetectorEnsemble

    files = _adbench_files(folder, quick)
    if not files:
        reason = f"no .npz files in {folder}"
        log.warning("adbench skipped: %s", reason)
        return {"status": "skipped", "reason": reason}
    missing = [] if quick else sorted(set(ADBENCH_SETS) - {f.stem for f in files})
    if missing:
        log.warning("adbench: sets listed in the data README but absent: %s", ", ".join(missing))
    names = list(DETECTORS)
    ensemble = DetectorEnsemble(random_state=SEED)
    # Imports and numba compilation (HBOS) happen on the first fit: take them out of the
    # first set's seconds. numba compiles once per memory layout, and ADBench's X is
    # Fortran-ordered, so both layouts.
    warm = np.random.default_rng(SEED).normal(size=(256, 4))
    models: list[Any] = [*(Detector(n, random_state=SEED) for n in names), ensemble]
    for model in models:
        for layout in (warm, np.asfortranarray(warm)):
            model.fit(layout)
    sets: dict[str, dict[str, Any]] = {}
    for path in files:
        data = np.load(path, allow_pickle=True)
        X = np.asarray(data["X"], dtype=np.float64)
        y = np.asarray(data["y"]).astype(np.int64).ravel()
        if len(np.unique(y)) != 2:
            log.warning("adbench %s: labels are not binary, skipped", path.stem)
            sets[path.stem] = {"status": "error", "error": "y needs both classes 0 and 1"}
            continue
        log.info("adbench %s: %d x %d", path.stem, *X.shape)
        res: dict[str, Any] = {
            "status": "ok",
            "n": int(X.shape[0]),
            "d": int(X.shape[1]),
            "anomaly_share": round(float(y.mean()), 4),
        }
        for name in names:
            res[name] = _score(Detector(name, random_state=SEED), X, y)
        # A fresh ensemble refits its members, as the pipeline does, so its seconds are its own.
        res["ensemble"] = _score(DetectorEnsemble(ensemble.detectors, random_state=SEED), X, y)
        sets[path.stem] = res
    means = {
        m: {
            metric: _mean([r.get(m, {}).get(metric) for r in sets.values()])
            for metric in ("roc_auc", "average_precision")
        }
        for m in [*names, "ensemble"]
    }
    criteria = _adbench_criteria(names, sets, means)
    for r in sets.values():
        for m in [*names, "ensemble"]:
            for metric in ("roc_auc", "average_precision"):
                if metric in r.get(m, {}):
                    r[m][metric] = _round(r[m][metric])
    return {
        "status": "ok",
        "folder": str(folder),
        "quick": quick,
        "seed": SEED,
        "detectors": names,
        "ensemble": {
            "detectors": list(ensemble.detectors),
            "combination": "mean -log10 tail probability",
        },
        "missing_sets": missing,
        "sets": sets,
        "means": {m: {k: _round(v) for k, v in d.items()} for m, d in means.items()},
        "criteria": criteria,
        "targets": _adbench_targets(criteria),
        # every detector as shipped: Detector(name, random_state=0), DetectorEnsemble(...)
        "non_default_settings": [],
    }


@dataclass(frozen=True)
class Section:
    """One evaluation: the data sub-folder it reads and the function that measures it."""

    folder: str
    # (folder, quick, tuned) -> the section's document; None: not implemented yet
    run: Callable[[Path, bool, bool], dict[str, Any]] | None


SECTIONS: dict[str, Section] = {
    "adbench": Section("adbench", adbench),
    "spamassassin": Section("spamassassin_2002", entity_quality.spamassassin),
    "cresci": Section("cresci2017", entity_quality.cresci),
    "sms": Section("sms_spam", entity_quality.sms),
    "enron": Section("enron_spam", entity_quality.enron),
}


def _data_folder(arg: str | None) -> tuple[Path | None, str]:
    """The data folder and where it came from; None when no default exists."""
    if arg:
        return Path(arg), "--data"
    if os.environ.get("CAMPAIGNS_DATA"):
        return Path(os.environ["CAMPAIGNS_DATA"]), "CAMPAIGNS_DATA"
    if DEFAULT_DATA.is_dir():
        return DEFAULT_DATA, "default"
    return None, "none"


def _run_section(name: str, data: Path | None, quick: bool, tuned: bool) -> dict[str, Any]:
    section = SECTIONS[name]
    if section.run is None:
        return {"status": "not_implemented"}
    reason = None
    if data is None:
        reason = f"no data folder: pass --data DIR or set CAMPAIGNS_DATA (looked in {DEFAULT_DATA})"
    elif not data.is_dir():
        reason = f"data folder {data} does not exist"
    elif not (data / section.folder).is_dir():
        reason = f"{data / section.folder} does not exist"
    if reason:
        log.warning("%s skipped: %s", name, reason)
        return {"status": "skipped", "reason": reason}
    assert data is not None
    t0 = time.perf_counter()
    out = section.run(data / section.folder, quick, tuned)
    return {**out, "seconds": round(time.perf_counter() - t0, 2)}


def misses(sections: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every target with ``met`` false, section by section, with what was measured.

    Parameters
    ----------
    sections : dict
        Section name -> its document (``targets``: a list of
        :func:`entity_quality.target` dicts).

    Returns
    -------
    list of dict
        ``section`` and the target's ``name``, ``condition``, ``measured`` and ``required``.
    """
    out = []
    for name, doc in sections.items():
        for t in doc.get("targets", []):
            if not t["met"]:
                out.append(
                    {
                        "section": name,
                        **{k: t[k] for k in ("name", "condition", "measured", "required")},
                    }
                )
    return out


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in ("pyod", "scikit-learn", "numpy", "scipy"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _machine(load_at_start: tuple[float, float, float]) -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        # seconds are only comparable between runs on an otherwise idle machine
        "load_average_at_start": [round(x, 2) for x in load_at_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "versions": _versions(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="data folder (default: $CAMPAIGNS_DATA, else ../shared/data)")
    p.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    p.add_argument(
        "--quick",
        action="store_true",
        help=(
            f"{QUICK_SETS} smallest ADBench sets, enron1 only, "
            "no half/half rules but SpamAssassin's seeded half"
        ),
    )
    p.add_argument(
        "--tuned",
        action="store_true",
        help="apply the per-set settings of the entity sections (default: the shipped defaults)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    # Run as a script, this folder is sys.path[0], and benchmarks/clustering.py would shadow
    # the clustering package that the project's modules import.
    here = Path(__file__).resolve().parent
    sys.path[:] = [q for q in sys.path if Path(q or ".").resolve() != here]
    load_at_start = os.getloadavg()
    data, source = _data_folder(args.data)
    sections = {name: _run_section(name, data, args.quick, args.tuned) for name in args.sections}
    json.dump(
        {
            # first: what falls short, then everything measured
            "misses": misses(sections),
            "skipped": [n for n, doc in sections.items() if doc.get("status") == "skipped"],
            "benchmark": "quality",
            "data": {"folder": None if data is None else str(data), "from": source},
            "quick": args.quick,
            "protocol": "per-set settings (--tuned)" if args.tuned else "shipped defaults",
            "sections": sections,
            "machine": _machine(load_at_start),
        },
        sys.stdout,
        indent=2,
        default=str,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
