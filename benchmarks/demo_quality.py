"""Next-day rule quality on the built-in synthetic data, over several seeds.

For each seed: generate two days, run the whole job on day 1, apply its rules to day 2, and
report what they block (campaign recall, benign hit rate, every campaign and look-alike crowd)
with the run's stage timings. Prints one JSON document.

    python benchmarks/demo_quality.py              # seeds 0-5, default scale
    python benchmarks/demo_quality.py --quick      # seeds 0-1, half scale (CI)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from pipelines.demo import run_demo


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    p.add_argument("--signups-per-day", type=int, default=20_000)
    p.add_argument("--messages-per-day", type=int, default=40_000)
    p.add_argument("--quick", action="store_true", help="seeds 0-1 at half scale")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.quick:
        args.seeds = [0, 1]
        args.signups_per_day //= 2
        args.messages_per_day //= 2
    runs = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            _, fig = run_demo(
                Path(tmp),
                seed=seed,
                signups_per_day=args.signups_per_day,
                messages_per_day=args.messages_per_day,
            )
            runs.append({"seed": seed, "seconds": round(time.perf_counter() - t0, 2), **fig})
    summary = {}
    for kind in ("signups", "senders"):
        rec = [r[kind]["campaign_recall"] for r in runs]
        fpr = [r[kind]["benign_hit_rate"] for r in runs]
        worst = min(
            (g["share_blocked"], name)
            for r in runs
            for name, g in r[kind]["groups"].items()
            if g["label"] == "campaign"
        )
        crowd_hits = sum(
            g["blocked"]
            for r in runs
            for g in r[kind]["groups"].values()
            if g["label"] == "lookalike"
        )
        summary[kind] = {
            "campaign_recall_min": min(rec),
            "campaign_recall_mean": round(sum(rec) / len(rec), 4),
            "benign_hit_rate_max": max(fpr),
            "worst_campaign": {"name": worst[1], "share_blocked": worst[0]},
            "lookalike_rows_blocked": crowd_hits,
        }
    json.dump(
        {
            "benchmark": "demo_quality",
            "scale": {
                "signups_per_day": args.signups_per_day,
                "messages_per_day": args.messages_per_day,
            },
            "summary": summary,
            "runs": runs,
        },
        sys.stdout,
        indent=2,
        default=str,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
