"""``campaigns label``: analysts' labels, allowlist entries and rule decisions, in the store.

::

    campaigns label campaign --store PATH --kind K ID abuse|benign|unsure [--note TEXT]
    campaigns label entity   --store PATH --kind K ID abuse|benign|unsure [--note TEXT]
    campaigns label allow    --store PATH --kind K --list domains VALUE --reason TEXT [--remove]
    campaigns label rule     --store PATH RULE_ID approve|reject --reason TEXT
    campaigns label list     --store PATH [--kind K] [--json]

Every subcommand takes ``--analyst NAME`` (default: the ``USER`` environment variable, else
``analyst``). The next nightly run uses what is written (:mod:`pipelines.review`). Each
command holds the store's lock (``<store>.lock``) while it works, so it never interleaves with
a nightly run: while one runs, the command exits 3 and may be retried.

Bad input raises ``ValueError`` (the ``campaigns`` entry point exits 2 with its message).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from pipelines.review import DECISIONS, LABELS, LISTS

__all__ = ["add_parser", "run"]

EXIT_LOCKED = 3


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``label`` subcommand (and its own subcommands) to ``sub``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The ``campaigns`` parser's subparsers.

    Returns
    -------
    argparse.ArgumentParser
        The ``label`` parser; its subcommand is ``args.label_command``.
    """
    p: argparse.ArgumentParser = sub.add_parser(
        "label",
        help="label campaigns and entities, allowlist values, approve or reject rules",
        description="What analysts say, written to the nightly store and used by the next "
        "nightly run (docs/nightly.md, 'Labels and reviews'). Exit codes: 0 done, 2 bad "
        "input, 3 a nightly run holds the store's lock (try again later).",
    )
    lsub = p.add_subparsers(dest="label_command", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--store", required=True, help="the nightly store (a DuckDB file)")
        q.add_argument(
            "--analyst", help="who says so (default: $USER, else 'analyst')", default=None
        )

    for target in ("campaign", "entity"):
        t = lsub.add_parser(target, help=f"label a {target}: abuse, benign or unsure")
        common(t)
        t.add_argument("--kind", required=True, help="signups, senders, or a spec's kind")
        t.add_argument("id", help=f"the {target} id (as in the store)")
        t.add_argument("label", choices=LABELS)
        t.add_argument("--note", default="", help="free text kept with the label")

    a = lsub.add_parser("allow", help="add (or --remove) an allowlist entry")
    common(a)
    a.add_argument("--kind", required=True, help="signups or senders")
    a.add_argument("--list", required=True, choices=LISTS, dest="list_name")
    a.add_argument("value", help="a domain, AS number, CIDR block or id")
    a.add_argument("--reason", help="why (required when adding)")
    a.add_argument("--remove", action="store_true", help="remove the entry instead")

    r = lsub.add_parser("rule", help="approve (enforce) or reject (disable) a rule")
    common(r)
    r.add_argument("rule_id")
    r.add_argument("decision", choices=DECISIONS)
    r.add_argument("--reason", required=True, help="why; named in the audit trail")

    ls = lsub.add_parser("list", help="labels, allowlist entries, decisions, candidates")
    common(ls)
    ls.add_argument("--kind", help="only this kind")
    ls.add_argument("--json", action="store_true", help="print JSON")
    return p


def _analyst(args: argparse.Namespace) -> str:
    return str(args.analyst or os.environ.get("USER") or "analyst")


def run(args: argparse.Namespace) -> int:
    """Carry out a parsed ``campaigns label ...`` command; returns the exit code.

    Raises
    ------
    ValueError
        Bad input (unknown campaign, rule or label, a bad CIDR block or domain, no store at
        ``--store``); the message names it.
    """
    from pipelines.store import Store, StoreLocked, store_lock

    path = Path(args.store)
    if not path.is_file():
        raise ValueError(f"--store {args.store}: no such store (the nightly job creates it)")
    try:
        with store_lock(path), Store(path) as store:
            return _run(args, store)
    except StoreLocked as e:
        print(f"campaigns label: error: {e}; try again when it has finished", file=sys.stderr)
        return EXIT_LOCKED


def _run(args: argparse.Namespace, store: Any) -> int:
    from pipelines import review

    cmd = args.label_command
    who = _analyst(args)
    if cmd in ("campaign", "entity"):
        fn = review.label_campaign if cmd == "campaign" else review.label_entity
        row = fn(store, args.kind, args.id, args.label, who, note=args.note)
        print(f"{cmd} {row['kind']}/{row['target_id']}: {row['label']} ({row['analyst']})")
        return 0
    if cmd == "allow":
        if args.remove:
            review.remove_allowlist(store, args.kind, args.list_name, args.value, who)
            print(f"allowlist {args.kind}/{args.list_name}: removed {args.value}")
            return 0
        if not args.reason:
            raise ValueError("campaigns label allow: --reason is required when adding")
        value = review.allowlist_value(args.kind, args.list_name, args.value)
        added = review.add_allowlist(store, args.kind, args.list_name, value, who, args.reason)
        said = "added" if added else "already holds"
        print(f"allowlist {args.kind}/{args.list_name}: {said} {value} (next nightly run)")
        return 0
    if cmd == "rule":
        row = review.review_rule(store, args.rule_id, args.decision, who, args.reason)
        print(
            f"rule {row['rule_id']}: {row['decision']} by {row['analyst']}, "
            "pending until the next nightly run"
        )
        return 0
    if cmd == "list":
        return _list(store, args.kind, args.json)
    raise ValueError(f"campaigns label: unknown subcommand {cmd!r}")


def _records(df: Any) -> list[dict[str, Any]]:
    return [
        {k: (None if v is None or v != v else v) for k, v in row.items()}
        for row in df.to_dict(orient="records")
    ]


def _list(store: Any, kind: str | None, as_json: bool) -> int:
    from pipelines import review

    kinds = (
        [kind]
        if kind
        else sorted(set(store.query("SELECT DISTINCT kind FROM campaigns")["kind"].astype(str)))
    )
    labels = [
        *_records(review.campaign_labels(store, kind)),
        *_records(review.entity_labels(store, kind)),
    ]
    allow = _records(review.allowlists(store, kind))
    decisions = _records(review.rule_decisions(store))
    candidates = [
        c
        for k in kinds
        if k in review.ALLOWLIST_KINDS
        for c in _records(review.allowlist_candidates(store, k))
    ]
    if as_json:
        out = {
            "labels": labels,
            "allowlists": allow,
            "rule_decisions": decisions,
            "allowlist_candidates": candidates,
        }
        print(json.dumps(out, indent=2, sort_keys=True, default=str))
        return 0
    print(f"labels (latest per target): {len(labels)}")
    for x in labels:
        note = f" - {x['note']}" if x["note"] else ""
        print(
            f"  {x['target']:8s} {x['kind']:8s} {x['target_id']}: {x['label']} "
            f"({x['analyst']}, {x['labelled_at']}){note}"
        )
    print(f"allowlist entries: {len(allow)}")
    for x in allow:
        print(f"  {x['kind']:8s} {x['list']:8s} {x['value']} ({x['added_by']}: {x['reason']})")
    print(f"rule decisions: {len(decisions)}")
    for x in decisions:
        when = f"applied {x['applied_date']}" if x["applied_date"] else "pending"
        print(f"  {x['rule_id']} {x['decision']} by {x['analyst']} ({when}): {x['reason']}")
    print(f"allowlist candidates (not applied): {len(candidates)}")
    for x in candidates:
        print(
            f"  {x['kind']:8s} {x['list']:8s} {x['value']} ({x['share']:.0%} of "
            f"{x['source']} {x['target_id']}, labelled benign by {x['analyst']})"
        )
    return 0
