"""The `campaigns` command line.

Exit codes: 0 success, 2 bad input or usage (the message names the problem), 1 internal failure;
``campaigns nightly`` adds 3 (another run holds the store's lock) and 4 (run degraded by a
health check; the last good bundle stays published).
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
    r.add_argument(
        "--spec",
        action="append",
        default=[],
        metavar="FILE",
        help="entity spec (TOML) of a kind of your own; repeat for several (docs/specs.md)",
    )
    r.add_argument(
        "--events",
        action="append",
        default=[],
        metavar="KIND=PATH",
        help="input file or folder of a kind defined by --spec; repeat for several",
    )
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--config", help="TOML file overriding the defaults")
    for kind in ("signups", "senders"):
        r.add_argument(
            f"--history-{kind}",
            nargs="+",
            default=[],
            metavar="PATH",
            help=f"earlier days' {kind} (one file or folder per day): rules are backtested on them",
        )
    r.add_argument(
        "--quarantine",
        action="store_true",
        help="write rows that break the contract to OUT/quarantine/ instead of failing",
    )

    n = sub.add_parser(
        "nightly",
        help="the nightly job: one date's partitions, the store, a published bundle",
        description="Exit codes: 0 published (or a rerun of an earlier night), 1 internal "
        "error, 2 bad input or configuration, 3 another run holds the store's lock, 4 run "
        "degraded by a health check (the last good bundle stays published).",
    )
    n.add_argument("--date", required=True, help="the night to process, YYYY-MM-DD")
    n.add_argument("--config", required=True, help="TOML file with a [nightly] table")

    from pipelines import cli_lab, cli_label, cli_similar

    cli_lab.add_parser(sub)
    cli_similar.add_parser(sub)
    cli_label.add_parser(sub)

    rules = sub.add_parser("rules", help="work with rule bundles")
    rsub = rules.add_subparsers(dest="rules_command", required=True)
    a = rsub.add_parser("apply", help="apply a bundle to events, as enforcement would")
    a.add_argument("--bundle", required=True, help="path to rules/bundle.json")
    src = a.add_mutually_exclusive_group(required=True)
    src.add_argument("--signups")
    src.add_argument("--senders")
    src.add_argument("--events", metavar="KIND=PATH", help="events of a kind defined by --spec")
    a.add_argument("--spec", action="append", default=[], metavar="FILE", help="entity spec")
    a.add_argument("--out", required=True, help="Parquet file of matches")
    df = rsub.add_parser("diff", help="rules added, removed, changed, widened, narrowed")
    df.add_argument("old", help="earlier bundle.json")
    df.add_argument("new", help="later bundle.json")
    df.add_argument("--json", action="store_true", help="print the diff as JSON")
    rb = rsub.add_parser("rollback", help="republish an archived bundle, atomically")
    rb.add_argument("--rules", required=True, help="rules folder (holding bundle.json)")
    to = rb.add_mutually_exclusive_group(required=True)
    to.add_argument("--to", help="bundle id (or unique prefix) from --list, or a bundle file")
    to.add_argument("--list", action="store_true", help="list the archived bundles")
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

    sources = {k: getattr(args, k) for k in ("signups", "senders") if getattr(args, k)}
    sources.update(_spec_sources(args.spec, args.events))
    if not sources:
        raise UsageError("give --signups, --senders and/or --spec FILE --events KIND=PATH")
    config = load_config(args.config)
    out = Path(args.out)
    with Stages() as stages:
        inputs = {}
        with stages.stage("read inputs"):
            for kind, path in sources.items():
                q = out / "quarantine" / f"{kind}.parquet" if args.quarantine else None
                if q is not None:
                    q.parent.mkdir(parents=True, exist_ok=True)
                inputs[kind] = read_events(path, kind, quarantine=q)
        history = {}
        with stages.stage("read history"):
            for kind in inputs:
                paths = getattr(args, f"history_{kind}", [])
                history[kind] = [read_events(p, kind) for p in paths]
        result = run_job(inputs, out, config, stages=stages, history=history)
    for kind, c in result.record["counts"].items():
        print(
            f"{kind}: {c['events']} rows, {c['clusters']} clusters, "
            f"{c['flagged_campaigns']} flagged, {c['rules']} rules ({c['rules_enforce']} enforce)"
        )
    print(f"outputs in {out}")
    return 0


def _cmd_nightly(args: argparse.Namespace) -> int:
    from pipelines.config import load_config
    from pipelines.nightly import run_nightly
    from pipelines.stages import Stages

    config = load_config(args.config)
    with Stages() as stages:
        result = run_nightly(args.date, config, stages=stages)
    stream = sys.stdout if result.exit_code == 0 else sys.stderr
    print(f"campaigns nightly: {result.message}", file=stream)
    print(f"outputs in {result.run_dir}", file=stream)
    return result.exit_code


def _spec_sources(specs: list[str], events: list[str]) -> dict[str, str]:
    """Register the ``--spec`` kinds; ``--events KIND=PATH`` pairs, checked against them."""
    from clustering.kinds import register_spec
    from clustering.spec import load_spec

    defined = {register_spec(load_spec(path)).name for path in specs}
    out: dict[str, str] = {}
    for item in events:
        kind, sep, path = item.partition("=")
        if not sep or not kind or not path:
            raise UsageError(f"--events {item!r}: expected KIND=PATH")
        if kind not in defined:
            known = ", ".join(sorted(defined)) or "none"
            raise UsageError(f"--events {item!r}: no --spec defines kind {kind!r} (given: {known})")
        if kind in out:
            raise UsageError(f"--events: kind {kind!r} given twice")
        out[kind] = path
    if defined - set(out):
        raise UsageError(f"--spec kinds without --events: {', '.join(sorted(defined - set(out)))}")
    return out


def _cmd_rules_apply(args: argparse.Namespace) -> int:
    from anomaly.atomic import atomic_write_parquet
    from anomaly.export import apply_bundle, load_bundle
    from pipelines.readers import read_events

    if args.events:
        ((kind, path),) = _spec_sources(args.spec, [args.events]).items()
    else:
        kind, path = ("signups", args.signups) if args.signups else ("senders", args.senders)
    bundle = load_bundle(args.bundle)
    events = read_events(path, kind).frame
    matches = apply_bundle(bundle, events, kind)
    atomic_write_parquet(matches, Path(args.out))
    print(f"{len(matches)} matches written to {args.out}")
    return 0


def _cmd_rules_diff(args: argparse.Namespace) -> int:
    import json

    from anomaly.bundle_history import diff_bundles
    from anomaly.export import load_bundle

    d = diff_bundles(load_bundle(args.old), load_bundle(args.new))
    if args.json:
        print(json.dumps(d, indent=2, sort_keys=True, ensure_ascii=False))
        return 0
    print(
        f"{d['old_bundle_id'][:12]} -> {d['new_bundle_id'][:12]}: {len(d['added'])} added, "
        f"{len(d['removed'])} removed, {len(d['changed'])} changed ({len(d['widened'])} "
        f"widened, {len(d['narrowed'])} narrowed), {d['unchanged']} unchanged"
    )
    marks = {"added": "+", "removed": "-", "widened": ">", "narrowed": "<", "changed": "~"}
    for e in d["added"] + d["removed"] + d["changed"]:
        print(f"  {marks[e['change']]} {e['id']} {e['kind']:8s} {e['campaign_id']}: {e['summary']}")
    for kind, a in d["allowlists"].items():
        for what in ("added", "removed", "changed"):
            if a[what]:
                print(f"  allowlist {kind}: {what} {', '.join(a[what])}")
    return 0


def _cmd_rules_rollback(args: argparse.Namespace) -> int:
    from anomaly.bundle_history import list_history, rollback

    if args.list:
        history = list_history(args.rules)
        for h in history:
            if "error" in h:
                print(f"  {h['bundle_id'][:12]}  unreadable: {h['error']}")
                continue
            kinds = ", ".join(f"{n} {k}" for k, n in h["by_kind"].items()) or "no rules"
            statuses = ", ".join(f"{n} {s}" for s, n in h["by_status"].items())
            print(f"  {h['bundle_id'][:12]}  {h['created_at']}  {kinds}  ({statuses})")
        if not history:
            print("no archived bundles")
        return 0
    r = rollback(args.rules, args.to)
    if r["previous"] == r["bundle_id"]:
        print(f"{r['bundle_id'][:12]} is already published; nothing changed")
    else:
        print(f"published {r['bundle_id'][:12]} (was {str(r['previous'])[:12]})")
        if r["archived"]:
            print(f"kept the replaced bundle as {r['archived']}")
    return 0


def _analyst_command(run: Any, args: argparse.Namespace) -> int:
    """An analyst's command: a ValueError is their input (an unknown id, a bad value), exit 2."""
    try:
        return int(run(args))
    except ValueError as e:
        raise UsageError(str(e)) from e


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `campaigns` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    from anomaly.rules import RuleError
    from clustering.spec import SpecError
    from pipelines.config import ConfigError
    from pipelines.readers import InputError
    from pipelines.store import StoreError, StoreLocked

    try:
        if args.command == "demo":
            return _cmd_demo(args)
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "nightly":
            return _cmd_nightly(args)
        if args.command == "lab":
            from pipelines import cli_lab

            return cli_lab.run(args)
        if args.command == "similar":
            from pipelines import cli_similar

            return _analyst_command(cli_similar.run, args)
        if args.command == "label":
            from pipelines import cli_label

            return _analyst_command(cli_label.run, args)
        if args.command == "rules" and args.rules_command == "apply":
            return _cmd_rules_apply(args)
        if args.command == "rules" and args.rules_command == "diff":
            return _cmd_rules_diff(args)
        if args.command == "rules" and args.rules_command == "rollback":
            return _cmd_rules_rollback(args)
    except StoreLocked as e:
        print(f"campaigns: error: {e}", file=sys.stderr)
        return 3
    except (InputError, ConfigError, RuleError, UsageError, SpecError, StoreError) as e:
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
