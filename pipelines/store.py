"""The store: what the nightly job remembers between nights, in one DuckDB file.

Tables (``MIGRATIONS`` creates them; ``docs/nightly.md`` describes every column):

- ``runs``: one row per night (``date``), its run id, status (``ok``, ``degraded``), whether
  its bundle was published, the run record and the health checks as JSON;
- ``assignments``: per night, kind and entity, the cluster and the persistent campaign;
- ``campaigns``: per night, the campaigns with their persistent id, how they relate to earlier
  nights (new, continuing, split, merged), first-seen date and centroid;
- ``campaign_evidence``: per night, kind and campaign, the coordination evidence its flag stood
  on (one cluster's row of :class:`anomaly.scoring.CampaignScorer`, as JSON), which analysts'
  labels train the next nights' label model on (:func:`pipelines.review.fit_label_model`);
- ``campaign_endings``: campaigns that were seen on an earlier night and not tonight;
- ``rules``: every rule version a night produced, with its status that night;
- ``rule_nights``: live hits of each published rule on each night, against its forecast;
- ``rule_audit``: every status change of a rule: who or what, when, why;
- ``labels`` and ``allowlists``: what analysts said (:mod:`pipelines.review` writes them; kept
  here so that the nightly job and the notebooks read one place);
- ``rule_decisions``: analysts' approvals and rejections of rules, pending until a published
  night applies them (``applied_date``).

A night's rows are replaced as a whole, in one transaction, so rerunning a date replaces its
records rather than adding to them, and a run killed half-way leaves the store as it was (DuckDB
rolls back an unfinished transaction when the file is next opened).

Schema versions: ``schema_version`` holds the migrations applied. Opening a store applies the
missing ones in order, each in its own transaction, so an older store opens in a newer version
of the code. A store written by a newer version than this code knows is refused with a clear
error rather than half-understood.

Concurrency: :func:`store_lock` holds an exclusive ``flock`` on ``<store>.lock`` for a run; the
operating system drops it when the process dies, however it dies, so a killed run never
leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

log = logging.getLogger(__name__)

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Store",
    "StoreError",
    "StoreLocked",
    "store_lock",
]


class StoreError(RuntimeError):
    """A store that cannot be used (newer schema, unreadable file); the message says which."""


class StoreLocked(StoreError):
    """Another run holds the store's lock."""


# Each migration is a list of statements applied in one transaction. Append new ones; never
# edit a released one (stores in the field have applied it).
MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "runs, assignments, campaigns, rules and their history, labels, allowlists",
        [
            """CREATE TABLE runs (
                date VARCHAR PRIMARY KEY,
                run_id VARCHAR NOT NULL,
                status VARCHAR NOT NULL,
                published BOOLEAN NOT NULL,
                bundle_id VARCHAR,
                message VARCHAR,
                record JSON,
                health JSON
            )""",
            """CREATE TABLE assignments (
                date VARCHAR NOT NULL,
                kind VARCHAR NOT NULL,
                entity_id VARCHAR NOT NULL,
                cluster_id BIGINT NOT NULL,
                campaign_id VARCHAR
            )""",
            """CREATE TABLE campaigns (
                date VARCHAR NOT NULL,
                kind VARCHAR NOT NULL,
                campaign_id VARCHAR NOT NULL,
                provisional_id VARCHAR NOT NULL,
                status VARCHAR NOT NULL,
                first_seen VARCHAR NOT NULL,
                parent_id VARCHAR,
                merged_from VARCHAR[],
                size BIGINT NOT NULL,
                score DOUBLE,
                flagged BOOLEAN NOT NULL,
                reason VARCHAR,
                top_attributes VARCHAR,
                centroid FLOAT[]
            )""",
            """CREATE TABLE campaign_endings (
                date VARCHAR NOT NULL,
                kind VARCHAR NOT NULL,
                campaign_id VARCHAR NOT NULL,
                first_seen VARCHAR,
                last_seen VARCHAR
            )""",
            """CREATE TABLE rules (
                date VARCHAR NOT NULL,
                rule_id VARCHAR NOT NULL,
                version INTEGER NOT NULL,
                kind VARCHAR NOT NULL,
                campaign_id VARCHAR NOT NULL,
                status VARCHAR NOT NULL,
                created_at VARCHAR,
                expires_at VARCHAR,
                forecast DOUBLE,
                rule JSON NOT NULL
            )""",
            """CREATE TABLE rule_nights (
                date VARCHAR NOT NULL,
                rule_id VARCHAR NOT NULL,
                kind VARCHAR NOT NULL,
                status VARCHAR NOT NULL,
                hits BIGINT NOT NULL,
                forecast DOUBLE,
                traffic BIGINT NOT NULL
            )""",
            """CREATE TABLE rule_audit (
                date VARCHAR NOT NULL,
                rule_id VARCHAR NOT NULL,
                version INTEGER NOT NULL,
                from_status VARCHAR,
                to_status VARCHAR NOT NULL,
                actor VARCHAR NOT NULL,
                reason VARCHAR NOT NULL
            )""",
            """CREATE TABLE labels (
                kind VARCHAR NOT NULL,
                target VARCHAR NOT NULL,
                target_id VARCHAR NOT NULL,
                label VARCHAR NOT NULL,
                analyst VARCHAR NOT NULL,
                labelled_at VARCHAR NOT NULL,
                note VARCHAR
            )""",
            """CREATE TABLE allowlists (
                kind VARCHAR NOT NULL,
                list VARCHAR NOT NULL,
                value VARCHAR NOT NULL,
                added_by VARCHAR NOT NULL,
                added_at VARCHAR NOT NULL,
                reason VARCHAR
            )""",
        ],
    ),
    (
        2,
        "rule_decisions: analysts' approvals and rejections of rules, applied by a night",
        [
            # applied_date: the published night that applied the decision (NULL: pending);
            # pipelines/review.py writes the rows, pipelines/nightly.py applies and marks them
            """CREATE TABLE rule_decisions (
                rule_id VARCHAR NOT NULL,
                decision VARCHAR NOT NULL,
                analyst VARCHAR NOT NULL,
                decided_at VARCHAR NOT NULL,
                reason VARCHAR NOT NULL,
                applied_date VARCHAR
            )""",
        ],
    ),
    (
        3,
        "campaign_evidence: the evidence of each night's campaigns, for the label model",
        [
            # evidence: anomaly.label_model.evidence_records of the campaign's cluster (the one
            # its flag stands on), with the coordination test's own decision as "flagged"
            """CREATE TABLE campaign_evidence (
                date VARCHAR NOT NULL,
                kind VARCHAR NOT NULL,
                campaign_id VARCHAR NOT NULL,
                cluster_id BIGINT NOT NULL,
                evidence JSON NOT NULL
            )""",
        ],
    ),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]

# Tables whose rows belong to one night: a rerun of the date replaces exactly these.
NIGHTLY_TABLES = (
    "runs",
    "assignments",
    "campaigns",
    "campaign_evidence",
    "campaign_endings",
    "rules",
    "rule_nights",
    "rule_audit",
)


@contextlib.contextmanager
def store_lock(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold the exclusive lock of the store at ``path`` (``<path>.lock``) or raise.

    Raises
    ------
    StoreLocked
        When another process holds it; the message names the lock file and its holder.
    """
    lock = Path(f"{os.fspath(path)}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            raise StoreLocked(
                f"{lock}: another run holds the store's lock ({holder}); not starting a second"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        yield lock
    finally:
        # closing the descriptor releases the lock; the file stays (removing it would race
        # with a run that has just opened it)
        os.close(fd)


class Store:
    """The nightly job's DuckDB store.

    Parameters
    ----------
    path : path
        The DuckDB file (created with its parent folder when missing).
    migrations : list, optional
        The migrations to apply (tests open a store at an older version with a prefix).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        migrations: list[tuple[int, str, list[str]]] | None = None,
    ) -> None:
        self.path = Path(path)
        self.migrations = MIGRATIONS if migrations is None else migrations
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path))
        except duckdb.Error as e:
            raise StoreError(f"{self.path}: cannot open the store: {e}") from e
        self._migrate()

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def schema_version(self) -> int:
        row = self.con.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def _migrate(self) -> None:
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
            "description VARCHAR NOT NULL)"
        )
        have = self.schema_version()
        known = self.migrations[-1][0] if self.migrations else 0
        if have > known:
            raise StoreError(
                f"{self.path}: the store is at schema version {have}, newer than this code "
                f"knows ({known}); upgrade campaign-workbench to open it"
            )
        for version, description, statements in self.migrations:
            if version <= have:
                continue
            self.con.execute("BEGIN TRANSACTION")
            try:
                for sql in statements:
                    self.con.execute(sql)
                self.con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, description])
                self.con.execute("COMMIT")
            except Exception:
                self.con.execute("ROLLBACK")
                raise
            log.info("%s: schema migrated to version %d (%s)", self.path, version, description)

    # ------------------------------------------------------------------ nights

    def replace_night(self, date: str, tables: dict[str, pd.DataFrame]) -> None:
        """Replace every row of night ``date`` by ``tables`` (table name -> rows), atomically.

        Tables of :data:`NIGHTLY_TABLES` not in ``tables`` lose their rows of that night too.
        Every frame must hold the table's columns (``date`` included); extra columns fail.
        """
        unknown = set(tables) - set(NIGHTLY_TABLES)
        if unknown:
            raise ValueError(f"not nightly tables: {sorted(unknown)}")
        # a store opened with fewer migrations (tests open older versions) lacks later tables
        have = set(self.query("SELECT table_name FROM information_schema.tables")["table_name"])
        missing = sorted(set(tables) - have)
        if missing:
            raise ValueError(f"tables {missing} are not in the store (schema version too old)")
        self.con.execute("BEGIN TRANSACTION")
        try:
            for table in NIGHTLY_TABLES:
                if table not in have:
                    continue
                self.con.execute(f"DELETE FROM {table} WHERE date = ?", [date])
            for table, frame in tables.items():
                if frame.empty:
                    continue
                if not (frame["date"] == date).all():
                    raise ValueError(f"{table}: rows of another night than {date}")
                cols = [c[0] for c in self.con.execute(f"DESCRIBE {table}").fetchall()]
                if list(frame.columns) != cols:
                    raise ValueError(f"{table}: columns {list(frame.columns)} != {cols}")
                self.con.register("_night_rows", frame)
                try:
                    self.con.execute(f"INSERT INTO {table} SELECT * FROM _night_rows")
                finally:
                    self.con.unregister("_night_rows")
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            raise

    def mark_published(self, date: str, bundle_id: str) -> None:
        self.con.execute(
            "UPDATE runs SET published = true, bundle_id = ? WHERE date = ?", [bundle_id, date]
        )

    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        """Run one statement that returns nothing (an insert, update or delete)."""
        self.con.execute(sql, params or [])

    # ------------------------------------------------------------------ reading

    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run ``sql`` against the store and return the result as a DataFrame."""
        return self.con.execute(sql, params or []).df()

    def run(self, date: str) -> dict[str, Any] | None:
        df = self.query("SELECT * FROM runs WHERE date = ?", [date])
        if df.empty:
            return None
        row = df.iloc[0].to_dict()
        for key in ("record", "health"):
            if isinstance(row.get(key), str):
                row[key] = json.loads(row[key])
        return row

    def last_published(self, before: str | None = None) -> dict[str, Any] | None:
        """The latest night whose bundle was published (strictly before ``before``)."""
        sql = "SELECT date FROM runs WHERE published"
        params: list[Any] = []
        if before is not None:
            sql += " AND date < ?"
            params.append(before)
        df = self.query(sql + " ORDER BY date DESC LIMIT 1", params)
        return None if df.empty else self.run(str(df["date"].iloc[0]))

    def campaigns_before(self, date: str, kind: str, since: str) -> pd.DataFrame:
        """Each campaign's latest state on nights in ``[since, date)``, with its members then."""
        camps = self.query(
            """
            SELECT * FROM (
                SELECT *, row_number() OVER (PARTITION BY campaign_id ORDER BY date DESC) AS k
                FROM campaigns WHERE kind = ? AND date >= ? AND date < ?
            ) WHERE k = 1 ORDER BY campaign_id
            """,
            [kind, since, date],
        ).drop(columns="k")
        # an ended campaign stays ended: identity does not revive it by accident
        ended = self.query(
            "SELECT DISTINCT campaign_id FROM campaign_endings WHERE kind = ? AND date < ?",
            [kind, date],
        )
        camps = camps[~camps["campaign_id"].isin(ended["campaign_id"])]
        if camps.empty:
            return camps.assign(members=[])
        members = self.query(
            """
            SELECT a.campaign_id, a.date, list(a.entity_id ORDER BY a.entity_id) AS members
            FROM assignments a
            WHERE a.kind = ? AND a.date >= ? AND a.date < ? AND a.campaign_id IS NOT NULL
            GROUP BY a.campaign_id, a.date
            """,
            [kind, since, date],
        )
        members = members.set_index(["campaign_id", "date"])["members"]
        camps = camps.reset_index(drop=True)
        camps["members"] = [
            tuple(members.get((c, d), ()))
            for c, d in zip(camps["campaign_id"], camps["date"], strict=True)
        ]
        camps = camps.rename(columns={"date": "last_seen"})
        return camps

    def rules_on(self, date: str) -> pd.DataFrame:
        return self.query("SELECT * FROM rules WHERE date = ? ORDER BY rule_id", [date])

    def rule_nights(self, since: str, before: str) -> pd.DataFrame:
        return self.query(
            "SELECT * FROM rule_nights WHERE date >= ? AND date < ? ORDER BY rule_id, date",
            [since, before],
        )
