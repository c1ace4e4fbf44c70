"""``campaigns similar``: the nearest entities of a run, why, and a rule for a candidate set.

Wired into :mod:`pipelines.cli` through :func:`add_parser` and :func:`run`::

    campaigns similar --run DIR --kind signups QUERY... [--k 20] [--expand] [--rule] [--json]

A QUERY is an entity id, an e-mail address, or a quoted description of ``attr=value`` terms
that must all hold (``"email_domain=mailinator.com ua_family=HeadlessChrome"``); see
:func:`clustering.search.resolve`. The entities the queries match are the seeds.

Errors in what was asked (an unknown attribute, id or kind, a run without a search index, a
query matching nothing) raise :class:`pipelines.cli.UsageError` naming the query or attribute
(exit 2).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import pandas as pd

__all__ = ["add_parser", "run"]

_SHOWN_ROWS = 60  # table rows printed before "... n more (--json for all)"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``similar`` subcommand to ``sub`` (the ``add_subparsers()`` object)."""
    p: argparse.ArgumentParser = sub.add_parser(
        "similar",
        help="nearest entities of a run to ids, addresses or a description, and why",
        description="Find the entities of a run nearest to the ones the queries name, with "
        "their distances and the attributes they share; --expand grows the seeds into a "
        "candidate campaign and --rule induces a rule for it with the run's own settings.",
        epilog="QUERY: an entity id; an e-mail address (also finds the other spellings of "
        "its mailbox where the kind has a canonical one); or attr=value terms that must all "
        'hold, quoted as one argument: "email_domain=mailinator.com ua_family=HeadlessChrome".',
    )
    p.add_argument("queries", nargs="+", metavar="QUERY", help="id, e-mail or attr=value terms")
    p.add_argument("--run", required=True, metavar="DIR", help="a run's output folder")
    p.add_argument("--kind", default="signups", help="entity kind (default %(default)s)")
    p.add_argument("--k", type=int, default=20, help="neighbours per seed (default %(default)s)")
    p.add_argument(
        "--expand",
        action="store_true",
        help="grow the seeds into a candidate campaign (mutual neighbours, --rounds hops)",
    )
    p.add_argument("--rounds", type=int, default=2, help="hops of --expand (default %(default)s)")
    p.add_argument(
        "--max-distance",
        type=float,
        default=None,
        help="radius of --expand (default: median distance of the seeds to their k-th neighbour)",
    )
    p.add_argument(
        "--rule",
        action="store_true",
        help="induce a rule for the candidate campaign as the run's job would (implies "
        "--expand; reads the run's input events again)",
    )
    p.add_argument(
        "--max-seeds",
        type=int,
        default=20,
        help="seeds whose neighbours are listed, at most (default %(default)s; --expand "
        "uses every matched entity)",
    )
    p.add_argument(
        "--spec",
        action="append",
        default=[],
        metavar="FILE",
        help="entity spec (TOML) of a kind of your own, as given to `campaigns run`",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``campaigns similar``; print a table (or JSON) and return the exit code."""
    from clustering.search import SearchError
    from pipelines.cli import UsageError

    try:
        return _run(args)
    except SearchError as e:
        raise UsageError(str(e)) from e


def _run(args: argparse.Namespace) -> int:
    from clustering.kinds import register_spec
    from clustering.search import candidate_rule, expand, load_search, resolve, similar
    from clustering.spec import load_spec
    from pipelines.cli import UsageError

    if args.k < 1 or args.rounds < 0 or args.max_seeds < 1:
        raise UsageError("--k and --max-seeds must be at least 1, --rounds at least 0")
    for path in args.spec:
        register_spec(load_spec(path))
    search = load_search(args.run, args.kind)
    found = resolve(search, args.queries)
    matched = found.attrs["matched"]
    seeds = list(dict.fromkeys(found["entity_id"].dropna().astype(str)))
    if not seeds:
        shown = ", ".join(repr(q) for q in args.queries)
        raise UsageError(f"no {args.kind} entity of {args.run} matches {shown}")
    result: dict[str, Any] = {
        "run": str(args.run),
        "kind": args.kind,
        "entities": int(search.meta["n"]),
        "index_type": search.meta.get("index_type"),
        "queries": [
            {"query": q, "how": h, "matched": int(matched[q])}
            for q, h in found.drop_duplicates("query")[["query", "how"]].itertuples(index=False)
        ],
        "seeds": seeds,
    }
    table: pd.DataFrame
    if args.expand or args.rule:
        table = expand(search, seeds, k=args.k, rounds=args.rounds, max_distance=args.max_distance)
        result["expand"] = {
            "max_distance": table.attrs["max_distance"],
            "k": args.k,
            "rounds": args.rounds,
            "members": _records(table),
        }
        if args.rule:
            rule = candidate_rule(args.run, args.kind, table["entity_id"].astype(str).tolist())
            result["rule"] = rule.to_dict() if rule is not None else None
    else:
        table = similar(search, seeds[: args.max_seeds], k=args.k)
        result["similar"] = _records(table)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
        return 0
    _print_text(result, table, args)
    return 0


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-able dicts (missing values -> None)."""
    records: list[dict[str, Any]] = json.loads(df.to_json(orient="records", force_ascii=False))
    return records


def _print_text(result: dict[str, Any], table: pd.DataFrame, args: argparse.Namespace) -> None:
    print(
        f"{result['kind']} of {result['run']}: {result['entities']} entities "
        f"({result['index_type']})"
    )
    for q in result["queries"]:
        what = f"{q['matched']} entities" if q["matched"] else "no entity matched"
        print(f"  query {q['query']!r} ({q['how']}): {what}")
    seeds = result["seeds"]
    if "expand" in result:
        e = result["expand"]
        hops = table["hop"].value_counts().sort_index()
        by_hop = ", ".join(f"hop {h}: {n}" for h, n in hops.items())
        print(
            f"candidate campaign: {len(table)} entities ({by_hop}) within distance "
            f"{e['max_distance']:.4f}, k={e['k']}, {e['rounds']} rounds"
        )
        camp = table["campaign_id"].astype("string").fillna("(noise)")
        counts = camp.value_counts().sort_index()
        flagged = dict(zip(camp, table["flagged"], strict=True))
        for cid, n in counts.sort_values(ascending=False, kind="stable").head(8).items():
            print(f"  {cid}: {n}{' (flagged)' if flagged.get(cid) else ''}")
        _print_table(table, ["entity_id", "hop", "via", "distance", "cluster", "campaign_id"])
        if "rule" in result:
            _print_rule(result["rule"])
        return
    if len(seeds) > args.max_seeds:
        print(f"neighbours of the first {args.max_seeds} of {len(seeds)} seeds (--max-seeds)")
    for seed, rows in table.groupby("seed", sort=False):
        print(f"\nseed {seed}: {len(rows)} nearest")
        _print_table(rows, ["rank", "entity_id", "distance", "cluster", "campaign_id", "shared"])


def _print_table(df: pd.DataFrame, columns: list[str]) -> None:
    shown = df[columns].head(_SHOWN_ROWS)
    text = shown.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.4f}")
    print("\n".join("  " + line for line in text.splitlines()))
    if len(df) > _SHOWN_ROWS:
        print(f"  ... {len(df) - _SHOWN_ROWS} more (--json for all)")


def _print_rule(rule: dict[str, Any] | None) -> None:
    if rule is None:
        print("rule: none reaches the inducer's precision floor for this candidate")
        return
    bt = rule["backtest"]
    print(f"rule {rule['id']} ({rule['status']}): {rule['title']}")
    print(
        f"  hits {bt['hits']} of {bt['population']} rows, candidate hits {bt['campaign_hits']}, "
        f"background hits {bt['background_hits']}, precision {bt['precision']:.4f} (lower "
        f"{bt['precision_lower']:.4f}), recall {bt['recall']:.4f}"
    )
    for reason in rule["provenance"].get("shadow_reasons", []):
        print(f"  shadow: {reason}")
