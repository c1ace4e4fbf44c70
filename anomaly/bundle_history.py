"""Rule bundles over time: what changed between two, the archive, and rolling back.

Every publication (:func:`anomaly.export.write_rules`) keeps the bundle it replaces in
``rules/history/<bundle_id>.json``. :func:`rollback` republishes one of those byte for byte
(with both SQL files regenerated from it), archiving the bundle it replaces, in one atomic
multi-file write. :func:`diff_bundles` says which rules were added, removed or changed, and
which changes provably widen or narrow what a rule matches. :func:`carry_versions` numbers
the rules of a new run against the previous bundle.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

from anomaly.export import HISTORY_DIR, load_bundle, publish_bundle
from anomaly.rules import Rule, RuleError, rule_content_hash

log = logging.getLogger(__name__)

__all__ = ["carry_versions", "diff_bundles", "list_history", "rollback"]

# How far a status lets a rule act: a higher rank matches (or enforces) more.
_STATUS_RANK = {"disabled": 0, "expired": 0, "shadow": 1, "canary": 2, "enforce": 3}


# --------------------------------------------------------------------------- versions


def carry_versions(rules: list[Rule], previous: dict[str, Any] | None) -> list[Rule]:
    """Copies of ``rules`` numbered against the ``previous`` bundle.

    A rule whose id is in ``previous`` with the same content hash keeps that version and
    parent version; with another content hash it gets ``version + 1`` and its parent
    version is the previous one. A new id keeps the version it has (1 for a new rule).
    Status, expiry and figures never change a version: the version names what the rule
    matches and does.
    """
    before = {d["id"]: d for d in (previous or {}).get("rules", []) if isinstance(d, dict)}
    out = []
    for rule in rules:
        new = Rule.from_dict(rule.to_dict())
        old = before.get(rule.id)
        if old is not None:
            if (old.get("content_hash") or rule_content_hash(old)) == rule_content_hash(rule):
                new.version, new.parent_version = old["version"], old.get("parent_version")
            else:
                new.version, new.parent_version = old["version"] + 1, old["version"]
        out.append(new)
    return out


# --------------------------------------------------------------------------- diff


def _implies(x: dict[str, Any], y: dict[str, Any]) -> bool:
    """Whether every row matching ``x`` provably matches ``y`` (sound, not complete)."""
    if x == y:
        return True
    if y["op"] == "and":
        return all(_implies(x, yj) for yj in y["args"])
    if x["op"] == "or":
        return all(_implies(xi, y) for xi in x["args"])
    if x["op"] == "and" and any(_implies(xi, y) for xi in x["args"]):
        return True
    if y["op"] == "or" and any(_implies(x, yj) for yj in y["args"]):
        return True
    if x["op"] in ("and", "or") or y["op"] in ("and", "or"):
        return False
    return x["attr"] == y["attr"] and _leaf_implies(x, y)


def _values(leaf: dict[str, Any]) -> list[Any] | None:
    if leaf["op"] == "eq":
        return [leaf["value"]]
    return list(leaf["values"]) if leaf["op"] == "in" else None


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _within(v: Any, leaf: dict[str, Any]) -> bool:
    lo, hi = leaf.get("min"), leaf.get("max")
    return _is_num(v) and (lo is None or v >= lo) and (hi is None or v <= hi)


def _leaf_implies(x: dict[str, Any], y: dict[str, Any]) -> bool:
    """Leaf predicates on one attribute (missing values match neither)."""
    xs, ys = _values(x), _values(y)
    if xs is not None:
        if ys is not None:
            return all(v in ys for v in xs)
        if y["op"] == "range":
            return all(_within(v, y) for v in xs)
        if y["op"] == "prefix":
            return all(isinstance(v, str) and v.startswith(y["value"]) for v in xs)
        return False
    if x["op"] == "range" and y["op"] == "range":
        lo_x, hi_x, lo_y, hi_y = x.get("min"), x.get("max"), y.get("min"), y.get("max")
        lo_ok = lo_y is None or (lo_x is not None and lo_x >= lo_y)
        hi_ok = hi_y is None or (hi_x is not None and hi_x <= hi_y)
        return lo_ok and hi_ok
    if x["op"] == "prefix" and y["op"] == "prefix":
        return bool(x["value"].startswith(y["value"]))
    if x["op"] == "cidr" and y["op"] == "cidr":
        a, b = ipaddress.ip_network(x["value"]), ipaddress.ip_network(y["value"])
        return a.version == b.version and a.subnet_of(b)  # type: ignore[arg-type]
    return False


def _relation(old: dict[str, Any], new: dict[str, Any]) -> str:
    """``same``, ``wider`` (new matches a proven superset), ``narrower`` or ``changed``."""
    grows, shrinks = _implies(old, new), _implies(new, old)
    if grows and shrinks:
        return "same"
    return "wider" if grows else "narrower" if shrinks else "changed"


def _text(cond: dict[str, Any], limit: int = 160) -> str:
    """A short human reading of a condition."""

    def render(c: dict[str, Any]) -> str:
        op = c["op"]
        if op in ("and", "or"):
            return "(" + f" {op} ".join(render(a) for a in c["args"]) + ")"
        if op in ("eq", "in"):
            vals = _values(c) or []
            shown = ", ".join(json.dumps(v, ensure_ascii=False) for v in vals[:3])
            more = f", +{len(vals) - 3}" if len(vals) > 3 else ""
            return f"{c['attr']} = {shown}" if op == "eq" else f"{c['attr']} in [{shown}{more}]"
        if op == "range":
            return f"{c['attr']} in [{c.get('min')}, {c.get('max')}]"
        arg = c.get("value", c.get("pattern"))
        return f"{c['attr']} {op} {json.dumps(arg, ensure_ascii=False)}"

    out = render(cond)
    out = out[1:-1] if cond["op"] in ("and", "or") else out
    return out if len(out) <= limit else out[: limit - 3] + "..."


def _condition_note(old: dict[str, Any], new: dict[str, Any], relation: str) -> str:
    word = {"wider": "widened", "narrower": "narrowed", "same": "rewritten, same matches"}
    head = f"condition {word.get(relation, 'changed')}"
    ov, nv = _values(old), _values(new)
    if ov is not None and nv is not None and old["attr"] == new["attr"]:
        gained = [v for v in nv if v not in ov]
        lost = [v for v in ov if v not in nv]
        parts = [f"+{len(gained)} value(s)"] if gained else []
        parts += [f"-{len(lost)} value(s)"] if lost else []
        return f"{head}: {new['attr']} {', '.join(parts)}"
    return f"{head}: {_text(old, 80)} -> {_text(new, 80)}"


def _entry(d: dict[str, Any], change: str, summary: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": d["id"],
        "campaign_id": d.get("campaign_id", ""),
        "kind": d.get("kind", ""),
        "change": change,
        "summary": summary,
        **extra,
    }


def _compare(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    """The diff entry of one rule present in both bundles, or None when unchanged."""
    fields: list[str] = []
    notes: list[str] = []
    directions: set[str] = set()
    if rule_content_hash(old) != rule_content_hash(new):
        if old.get("kind") != new.get("kind"):
            fields.append("kind")
            notes.append(f"kind {old.get('kind')} -> {new.get('kind')}")
            directions.add("changed")
        if old["condition"] != new["condition"]:
            relation = _relation(old["condition"], new["condition"])
            fields.append("condition")
            notes.append(_condition_note(old["condition"], new["condition"], relation))
            if relation != "same":
                directions.add(relation)
        if old.get("action", "block") != new.get("action", "block"):
            fields.append("action")
            notes.append(f"action {old.get('action')} -> {new.get('action')}")
            directions.add("changed")  # other effect, neither more nor less
    s_old, s_new = old.get("status", "shadow"), new.get("status", "shadow")
    if s_old != s_new:
        fields.append("status")
        notes.append(f"status {s_old} -> {s_new}")
        r_old, r_new = _STATUS_RANK.get(s_old, 0), _STATUS_RANK.get(s_new, 0)
        directions.add("wider" if r_new > r_old else "narrower" if r_new < r_old else "changed")
    if old.get("expires_at", "") != new.get("expires_at", ""):
        fields.append("expires_at")
        notes.append(
            f"expires {old.get('expires_at') or 'never'} -> {new.get('expires_at') or 'never'}"
        )
    if not fields:
        return None
    change = "changed"
    if directions == {"wider"}:
        change = "widened"
    elif directions == {"narrower"}:
        change = "narrowed"
    return _entry(
        new,
        change,
        f"{change}: " + "; ".join(notes),
        fields=fields,
        old_version=old.get("version"),
        new_version=new.get("version"),
        old_status=s_old,
        new_status=s_new,
    )


def _allowlist_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    out = {}
    for kind in sorted(set(old) | set(new)):
        a = {e["name"]: e for e in old.get(kind, [])}
        b = {e["name"]: e for e in new.get(kind, [])}
        out[kind] = {
            "added": sorted(set(b) - set(a)),
            "removed": sorted(set(a) - set(b)),
            "changed": sorted(n for n in set(a) & set(b) if a[n] != b[n]),
        }
    return out


def diff_bundles(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """What changed from bundle ``old`` to bundle ``new`` (both as from ``load_bundle``).

    Rules are matched by id. A rule is *changed* when its content hash (kind, condition,
    action), status or expiry differs; version, title and figures alone do not count.
    Among the changed, *widened* are those where every difference provably lets the rule
    match or enforce more (an ``in`` list that became a superset, a looser range bound, a
    shorter prefix, a larger CIDR block, a dropped conjunct, an added alternative, a status
    promoted along disabled/expired < shadow < canary < enforce) and *narrowed* the mirror
    image. Any other difference (an action, an expiry, a rewritten regex, mixed directions)
    leaves the rule only in *changed*. Allowlist entries (which exempt rows from every rule
    of their kind) are compared by name.

    Returns
    -------
    dict
        ``old_bundle_id``, ``new_bundle_id``, ``added``, ``removed``, ``changed``,
        ``widened``, ``narrowed`` (lists of entries with ``id``, ``campaign_id``, ``kind``,
        ``change`` and a human ``summary``; changed ones also ``fields``, old and new
        ``version`` and ``status``), ``unchanged`` (a count) and ``allowlists`` (per kind,
        names of entries ``added``, ``removed``, ``changed``). Lists are sorted by id.
    """
    a = {d["id"]: d for d in old.get("rules", [])}
    b = {d["id"]: d for d in new.get("rules", [])}
    added = [
        _entry(
            b[i],
            "added",
            f"added {b[i].get('status', 'shadow')} rule ({b[i].get('action', 'block')}): "
            f"{_text(b[i]['condition'])}",
        )
        for i in sorted(set(b) - set(a))
    ]
    removed = [
        _entry(
            a[i], "removed", f"removed (was {a[i].get('status', 'shadow')}, v{a[i].get('version')})"
        )
        for i in sorted(set(a) - set(b))
    ]
    changed = [e for i in sorted(set(a) & set(b)) if (e := _compare(a[i], b[i])) is not None]
    return {
        "old_bundle_id": old.get("bundle_id", ""),
        "new_bundle_id": new.get("bundle_id", ""),
        "added": added,
        "removed": removed,
        "changed": changed,
        "widened": [e for e in changed if e["change"] == "widened"],
        "narrowed": [e for e in changed if e["change"] == "narrowed"],
        "unchanged": len(set(a) & set(b)) - len(changed),
        "allowlists": _allowlist_diff(old.get("allowlists") or {}, new.get("allowlists") or {}),
    }


# --------------------------------------------------------------------------- history


def _rules_dir(path: str | os.PathLike[str]) -> Path:
    """The folder holding ``bundle.json``: ``path`` itself or, for a run folder, its rules/."""
    p = Path(path)
    if not (p / "bundle.json").exists() and (p / "rules").is_dir():
        return p / "rules"
    if not p.is_dir():
        raise RuleError(f"{p}: no such rules folder")
    return p


def _current_id(rules_dir: Path) -> str | None:
    try:
        doc = json.loads((rules_dir / "bundle.json").read_bytes())
    except (OSError, ValueError):
        return None
    bid = doc.get("bundle_id") if isinstance(doc, dict) else None
    return bid if isinstance(bid, str) else None


def list_history(rules_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The archived bundles of a rules folder, oldest first.

    Returns
    -------
    list of dict
        ``bundle_id``, ``created_at``, ``run_id``, ``path``, ``rules`` (count), ``by_kind``
        and ``by_status`` (counts); an archive that does not load has ``error`` instead of
        the figures and comes last.
    """
    rdir = _rules_dir(rules_dir)
    good, bad = [], []
    for path in sorted((rdir / HISTORY_DIR).glob("*.json")):
        try:
            b = load_bundle(path)
        except RuleError as exc:
            bad.append({"bundle_id": path.stem, "path": str(path), "error": str(exc)})
            continue
        good.append(
            {
                "bundle_id": b["bundle_id"],
                "created_at": b["created_at"],
                "run_id": b["run_id"],
                "path": str(path),
                "rules": len(b["rules"]),
                "by_kind": dict(sorted(Counter(r["kind"] for r in b["rules"]).items())),
                "by_status": dict(sorted(Counter(r["status"] for r in b["rules"]).items())),
            }
        )
    good.sort(key=lambda e: (e["created_at"], e["bundle_id"]))
    return good + bad


def _resolve(rdir: Path, to: str | os.PathLike[str]) -> Path:
    """The bundle file ``to`` names: a file, or a bundle id (or unique prefix) in history."""
    candidate = Path(to)
    if candidate.is_file():
        return candidate
    key = str(to)
    archived = sorted((rdir / HISTORY_DIR).glob("*.json"))
    found = [p for p in archived if p.stem == key] or [
        p for p in archived if len(key) >= 6 and p.stem.startswith(key)
    ]
    if len(found) == 1:
        return found[0]
    current = _current_id(rdir)
    if not found and current is not None and len(key) >= 6 and current.startswith(key):
        return rdir / "bundle.json"  # already published: rolling back to it changes nothing
    if found:
        raise RuleError(f"bundle id prefix {key!r} is ambiguous: {[p.stem for p in found]}")
    known = ", ".join(p.stem[:12] for p in archived) or "none"
    raise RuleError(f"no bundle {key!r} in {rdir / HISTORY_DIR} (archived: {known})")


def rollback(rules_dir: str | os.PathLike[str], to: str | os.PathLike[str]) -> dict[str, Any]:
    """Republish an earlier bundle in ``rules_dir``, atomically.

    Parameters
    ----------
    rules_dir : path
        The folder holding ``bundle.json`` (or a run folder with ``rules/`` in it).
    to : str or path
        A bundle id (or a unique prefix of at least 6 characters) archived in
        ``rules_dir/history/``, or the path of a bundle file.

    Returns
    -------
    dict
        ``bundle_id`` (now published), ``previous`` (the id it replaced, or None),
        ``source`` (the file republished) and ``archived`` (where the replaced bundle was
        kept, or None; nothing is written when ``to`` is already published).

    Raises
    ------
    RuleError
        Unknown or ambiguous id, or a target that does not load (it is validated like any
        bundle). On any failure the published files are left as they were.
    """
    rdir = _rules_dir(rules_dir)
    source = _resolve(rdir, to)
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise RuleError(f"{source}: cannot read the bundle: {exc}") from None
    bundle = load_bundle(source)
    if json.loads(raw).get("bundle_id") != bundle["bundle_id"]:
        raise RuleError(f"{source}: changed while it was being read; try again")
    previous = _current_id(rdir)
    current = rdir / "bundle.json"
    if current.exists() and current.read_bytes() == raw:
        log.info("%s is already the published bundle in %s", bundle["bundle_id"], rdir)
        return {
            "bundle_id": bundle["bundle_id"],
            "previous": previous,
            "source": str(source),
            "archived": None,
        }
    paths = publish_bundle(rdir, bundle, data=raw)
    archived = paths.get("archived")
    log.info("rolled back %s from %s to %s", rdir, previous, bundle["bundle_id"])
    return {
        "bundle_id": bundle["bundle_id"],
        "previous": previous,
        "source": str(source),
        "archived": str(archived) if archived else None,
    }
