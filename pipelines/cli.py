"""The `campaigns` command line.

Exit codes: 0 success, 2 bad input or usage (the message names the problem), 1 internal failure.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["main"]

log = logging.getLogger("campaigns")


class UsageError(ValueError):
    """Arguments that parse but do not make sense together."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="campaigns",
        description="Find bulk-abuse campaigns among signups and senders; export block rules.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="make synthetic data and run the whole job on it")
    d.add_argument("--out", default="campaigns-demo", help="output folder (default %(default)s)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--signups-per-day", type=int, default=20_000)
    d.add_argument("--messages-per-day", type=int, default=40_000)
    d.add_argument("--config", help="TOML file overriding the defaults")

    r = sub.add_parser("run", help="the detection job over input files")
    r.add_argument("--signups", help="signups file or folder (Parquet, CSV, JSON Lines)")
    r.add_argument("--senders", help="senders file or folder (Parquet, CSV, JSON Lines)")
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--config", help="TOML file overriding the defaults")
    r.add_argument(
        "--quarantine",
        action="store_true",
        help="write rows that break the contract to OUT/quarantine/ instead of failing",
    )

    rules = sub.add_parser("rules", help="work with rule bundles")
    rsub = rules.add_subparsers(dest="rules_command", required=True)
    a = rsub.add_parser("apply", help="apply a bundle to events, as enforcement would")
    a.add_argument("--bundle", required=True, help="path to rules/bundle.json")
    src = a.add_mutually_exclusive_group(required=True)
    src.add_argument("--signups")
    src.add_argument("--senders")
    a.add_argument("--out", required=True, help="Parquet file of matches")
    return p


def _setup_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for noisy in ("numba", "matplotlib", "faiss"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.config import load_config
    from pipelines.demo import run_demo
    from pipelines.stages import Stages

    config = load_config(args.config)
    config.seed = args.seed
    t0 = time.perf_counter()
    with Stages() as stages:
        result, figures = run_demo(
            args.out,
            seed=args.seed,
            signups_per_day=args.signups_per_day,
            messages_per_day=args.messages_per_day,
            config=config,
            stages=stages,
        )
    _print_demo(result.out_dir, figures, time.perf_counter() - t0)
    return 0


def _print_demo(out: Path, figures: dict[str, Any], seconds: float) -> None:
    print(f"\nRules learned on {figures['learned_on']}, applied to {figures['applied_to']}:")
    for kind, unit in (("signups", "signups"), ("senders", "messages")):
        f = figures[kind]
        print(
            f"  {kind:8s} blocked {f['campaign_recall']:.1%} of campaign {unit}, "
            f"hit {f['benign_hit_rate']:.3%} of benign {unit} ({f['benign_hits']} of "
            f"{f['benign_rows']})"
        )
        for group, g in f["groups"].items():
            print(f"      {g['label']:9s} {group:18s} {g['share_blocked']:6.1%} of {g['rows']}")
    print(f"\nOutputs in {out} ({seconds:.0f}s): report.html, rules/, run.json, evaluation.json")


def _cmd_run(args: argparse.Namespace) -> int:
    from pipelines.config import load_config
    from pipelines.job import run_job
    from pipelines.readers import read_events
    from pipelines.stages import Stages

    if not args.signups and not args.senders:
        raise UsageError("give --signups and/or --senders")
    config = load_config(args.config)
    out = Path(args.out)
    with Stages() as stages:
        inputs = {}
        with stages.stage("read inputs"):
            for kind in ("signups", "senders"):
                path = getattr(args, kind)
                if path:
                    q = out / "quarantine" / f"{kind}.parquet" if args.quarantine else None
                    if q is not None:
                        q.parent.mkdir(parents=True, exist_ok=True)
                    inputs[kind] = read_events(path, kind, quarantine=q)
        result = run_job(inputs, out, config, stages=stages)
    for kind, c in result.record["counts"].items():
        print(
            f"{kind}: {c['events']} rows, {c['clusters']} clusters, "
            f"{c['flagged_campaigns']} flagged, {c['rules']} rules ({c['rules_enforce']} enforce)"
        )
    print(f"outputs in {out}")
    return 0


def _cmd_rules_apply(args: argparse.Namespace) -> int:
    from anomaly.atomic import atomic_write_parquet
    from anomaly.export import apply_bundle, load_bundle
    from pipelines.readers import read_events

    kind = "signups" if args.signups else "senders"
    bundle = load_bundle(args.bundle)
    events = read_events(args.signups or args.senders, kind).frame
    matches = apply_bundle(bundle, events, kind)
    atomic_write_parquet(matches, Path(args.out))
    print(f"{len(matches)} matches written to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `campaigns` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    from anomaly.rules import RuleError
    from pipelines.config import ConfigError
    from pipelines.readers import InputError

    try:
        if args.command == "demo":
            return _cmd_demo(args)
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "rules" and args.rules_command == "apply":
            return _cmd_rules_apply(args)
    except (InputError, ConfigError, RuleError, UsageError) as e:
        print(f"campaigns: error: {e}", file=sys.stderr)
        return 2
    except FileNotFoundError as e:
        print(f"campaigns: error: no such file: {e.filename}", file=sys.stderr)
        return 2
    except Exception as e:  # the last line of defence: say what broke, exit 1
        log.exception("internal failure")
        print(f"campaigns: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
