"""The demo: synthetic data, the whole job on day 1, its rules applied to day 2.

Only this module and the tests read the generator's labels, to measure what the rules learned
on day 1 block on day 2; detection never sees them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anomaly.atomic import atomic_write_text
from anomaly.export import apply_bundle
from clustering.kinds import get_kind
from pipelines.config import JobConfig
from pipelines.job import RunResult, run_job
from pipelines.readers import read_events
from pipelines.stages import Stages
from pipelines.synthetic import generate, write_synthetic
from pipelines.worlds import generate_world

log = logging.getLogger(__name__)

__all__ = ["evaluate_rules", "run_demo"]


def evaluate_rules(
    bundle: dict[str, Any], events: pd.DataFrame, labels: pd.DataFrame, kind: str
) -> dict[str, Any]:
    """What the bundle's enforce rules block on labelled events.

    Returns recall on campaign rows, the share of benign rows hit (look-alike crowds
    included), and the hits per campaign and per look-alike crowd.
    """
    k = get_kind(kind)
    matches = apply_bundle(bundle, events, kind)
    blocked_ids = set(matches.loc[matches["action"] != "shadow", k.id_column].astype(str))
    shadow_ids = set(matches.loc[matches["action"] == "shadow", k.id_column].astype(str))
    lab = labels.set_index(labels[k.id_column].astype(str))
    ids = events[k.id_column].astype(str)
    lab = lab.reindex(ids)
    blocked = ids.isin(blocked_ids).to_numpy()
    shadow = ids.isin(shadow_ids).to_numpy()
    is_campaign = (lab["label"] == "campaign").to_numpy()
    benign = ~is_campaign
    per_group: dict[str, Any] = {}
    for group, idx in lab.groupby("group", sort=True).indices.items():
        lbl = str(lab["label"].iloc[idx[0]])
        if lbl == "benign" and group == "population":
            continue
        per_group[str(group)] = {
            "label": lbl,
            "rows": len(idx),
            "blocked": int(blocked[idx].sum()),
            "share_blocked": round(float(blocked[idx].mean()), 4),
        }
    return {
        "rows": len(ids),
        "campaign_rows": int(is_campaign.sum()),
        "benign_rows": int(benign.sum()),
        "campaign_recall": round(float(blocked[is_campaign].mean()), 4)
        if is_campaign.any()
        else None,
        "benign_hit_rate": round(float(blocked[benign].mean()), 6) if benign.any() else None,
        "benign_hits": int(blocked[benign].sum()),
        "shadow_campaign_recall": round(float((blocked | shadow)[is_campaign].mean()), 4)
        if is_campaign.any()
        else None,
        "groups": per_group,
    }


def run_demo(
    out_dir: str | Path,
    *,
    seed: int = 0,
    signups_per_day: int = 20_000,
    messages_per_day: int = 40_000,
    config: JobConfig | None = None,
    stages: Stages | None = None,
    world: int | None = None,
) -> tuple[RunResult, dict[str, Any]]:
    """Generate two days, run the job on day 1, evaluate its rules on day 2.

    Writes the synthetic inputs under ``out_dir/data``, the run outputs in ``out_dir`` and the
    day-2 figures in ``out_dir/evaluation.json``. With ``world``, the data come from
    :func:`pipelines.worlds.generate_world` instead of the built-in world of ``seed``.
    """
    out = Path(out_dir)
    stages = stages or Stages(show_progress=False)
    config = config or JobConfig(seed=seed)
    with stages.stage("demo: synthetic data"):
        if world is None:
            data = generate(
                days=2,
                seed=seed,
                signups_per_day=signups_per_day,
                messages_per_day=messages_per_day,
            )
        else:
            data = generate_world(
                world,
                days=2,
                signups_per_day=signups_per_day,
                messages_per_day=messages_per_day,
            )
        paths = write_synthetic(data, out / "data")
    with stages.stage("read inputs"):
        inputs = {kind: read_events(paths[kind][0], kind) for kind in ("signups", "senders")}
    result = run_job(inputs, out, config, stages=stages)
    with stages.stage("demo: apply day-1 rules to day 2"):
        figures: dict[str, Any] = {
            "learned_on": data.days[0],
            "applied_to": data.days[1],
            "seed": seed,
        }
        if world is not None:
            figures["world"] = world
        label_frames = {"signups": data.signup_labels, "senders": data.sender_labels}
        for kind in ("signups", "senders"):
            day2 = read_events(paths[kind][1], kind).frame
            figures[kind] = evaluate_rules(result.bundle, day2, label_frames[kind], kind)
        figures["timings"] = dict(stages.timings)
    atomic_write_text(
        out / "evaluation.json", json.dumps(figures, indent=2, sort_keys=True, default=_json) + "\n"
    )
    return result, figures


def _json(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    return str(o)
