"""Applies sql/migrations/NNNN_name.sql in order, once each, under an advisory lock.

Each migration runs in its own transaction together with the row that
records it, so a failure leaves no half-applied migration behind. A file that
starts with `-- migrate: no-transaction` (indexes built CONCURRENTLY) runs
one statement at a time instead; its statements are idempotent, so an
interrupted run is completed by the next one. Applied files are checksummed:
editing one after it ran is refused, because the database would silently
differ from what the file now says.

Before anything is changed, the host schema is inspected
(store/host_contract.py) and an incompatible one is refused with every
problem listed. After the migrations, existing model rows get their lineage
in batches (backfill_lineage), and fingerprints are switched on if pgvector
has been installed since.

A session advisory lock does not survive a transaction pooler (each
statement may run on another server connection), so migrations through one
are refused: with pooler_mode "transaction", or when the lock is seen not to
be held by the session that runs the migration.
"""
from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg

from . import db
from .resources import sql_dir

_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_NO_TRANSACTION = "-- migrate: no-transaction"

#: How long a migration statement waits for a lock on a (busy) host table.
LOCK_TIMEOUT = "10s"
#: Model rows given their lineage per transaction by backfill_lineage.
LINEAGE_BATCH = 1000

POOLER_HINT = ("run migrate on a direct connection to PostgreSQL (not through PgBouncer in transaction mode): "
               "MODEL_EVAL_GATE_DSN=<direct dsn> MODEL_EVAL_GATE_POOLER=none model-eval-gate migrate")


class MigrationError(RuntimeError):
    pass


class HostSchemaIncompatible(MigrationError):
    """The host schema cannot be used as it is; the message lists every problem and its fix."""

    def __init__(self, report):
        self.report = report
        super().__init__(report.refusal())


class PoolerRefused(MigrationError):
    """An advisory-lock migration through a transaction pooler."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    @property
    def down_path(self) -> Path:
        return self.path.with_name(f"{self.version:04d}_{self.name}.down.sql")

    @property
    def transactional(self) -> bool:
        return not self.sql.lstrip().startswith(_NO_TRANSACTION)


def split_statements(text: str) -> list[str]:
    """Top-level SQL statements of a file: semicolons inside quotes, dollar quotes and comments do not split."""
    statements, start, i, n = [], 0, 0, len(text)
    while i < n:
        char = text[i]
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        if char == "'":
            end = i + 1
            while True:
                end = text.find("'", end)
                if end < 0 or not text.startswith("''", end):
                    break
                end += 2
            i = n if end < 0 else end + 1
            continue
        if char == "$":
            tag = re.match(r"\$[A-Za-z_]*\$", text[i:])
            if tag:
                end = text.find(tag.group(0), i + len(tag.group(0)))
                i = n if end < 0 else end + len(tag.group(0))
                continue
        if char == ";":
            statement = text[start:i].strip()
            if _has_code(statement):
                statements.append(statement)
            start = i + 1
        i += 1
    tail = text[start:].strip()
    if _has_code(tail):
        statements.append(tail)
    return statements


def _has_code(statement: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in statement.splitlines())


@dataclass(frozen=True)
class MigrationStatus:
    version: int
    name: str
    state: str  # applied, pending, changed (checksum differs), missing (file gone)
    applied_at: datetime | None


def discover(directory: Path | None = None) -> list[Migration]:
    directory = directory or sql_dir() / "migrations"
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_FILE.match(path.name)
        if match:  # NNNN_name.down.sql does not match: it has a dot in the name
            found.append(Migration(int(match.group(1)), match.group(2), path))
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise MigrationError(f"two migration files share a version number in {directory}")
    return found


def status(conn: psycopg.Connection, migrations: list[Migration] | None = None) -> list[MigrationStatus]:
    migrations = discover() if migrations is None else migrations
    db.execute(conn, "create_migrations_table")
    applied = {row["version"]: row for row in db.fetch_all(conn, "applied_migrations")}
    if not conn.autocommit:
        conn.commit()
    result = []
    for migration in migrations:
        row = applied.pop(migration.version, None)
        if row is None:
            result.append(MigrationStatus(migration.version, migration.name, "pending", None))
        elif row["checksum"] != migration.checksum:
            result.append(MigrationStatus(migration.version, migration.name, "changed", row["applied_at"]))
        else:
            result.append(MigrationStatus(migration.version, migration.name, "applied", row["applied_at"]))
    for version, row in sorted(applied.items()):
        result.append(MigrationStatus(version, row["name"], "missing", row["applied_at"]))
    return result


def unapplied(conn: psycopg.Connection, migrations: list[Migration] | None = None) -> list[Migration] | None:
    """The migrations this database still lacks; None when it was never migrated. Writes nothing."""
    migrations = discover() if migrations is None else migrations
    if not db.fetch_one(conn, "migrations_table_exists")["present"]:
        return None
    applied = {row["version"] for row in db.fetch_all(conn, "applied_migrations")}
    if not conn.autocommit:
        conn.rollback()
    return [m for m in migrations if m.version not in applied]


def _connect(dsn: str) -> psycopg.Connection:
    # No server-side prepared statements: migrate may run through a pooler
    # (it refuses to migrate there, but --check and status work).
    conn = psycopg.connect(dsn, autocommit=True, prepare_threshold=None)
    conn.row_factory = psycopg.rows.dict_row
    return conn


def _lock(conn: psycopg.Connection) -> None:
    """Take the migration lock, polling: two migrators queue up instead of racing."""
    while not db.fetch_one(conn, "try_lock_migrations")["locked"]:
        time.sleep(0.2)


def check(dsn: str):
    """Inspect the host schema in a read-only transaction; returns a HostReport. Changes nothing."""
    from .store import host_contract

    with _connect(dsn) as conn:
        with conn.transaction():
            db.execute(conn, "read_only_transaction")
            return host_contract.inspect(conn)


def _refuse_pooler(conn: psycopg.Connection, pooler_mode: str | None) -> None:
    """Refuse a pooler that cannot keep the migration's session advisory lock.

    Three checks, the cheapest and surest first: the operator's setting; the
    start-up pid against the server session's (a pooler of any mode hands out
    a pid of its own), which finds a pooler nobody configured; and the lock
    seen from two statements (a pooler that passed on the real pid).
    MODEL_EVAL_GATE_POOLER=session says the pooler keeps one server session
    per client, where the lock holds.
    """
    if pooler_mode == "transaction":
        raise PoolerRefused("refusing to migrate through a transaction pooler (MODEL_EVAL_GATE_POOLER=transaction): "
                            "the migration lock is a session advisory lock, which such a pooler cannot keep; "
                            + POOLER_HINT)
    if pooler_mode != "session" and db.behind_a_pooler(conn):
        raise PoolerRefused("refusing to migrate: a connection pooler answers this connection (its start-up pid "
                            "is not the server session's), and the migration lock is a session advisory lock "
                            "that a transaction pooler cannot keep; " + POOLER_HINT
                            + " (for a session pooler, MODEL_EVAL_GATE_POOLER=session)")
    first = db.fetch_one(conn, "session_probe")
    second = db.fetch_one(conn, "session_probe")
    if not (first["holds_advisory_lock"] and second["holds_advisory_lock"]) or first["pid"] != second["pid"]:
        raise PoolerRefused("refusing to migrate: the migration's advisory lock is not held by the server session "
                            "running the statements, so a transaction pooler sits between us and PostgreSQL; "
                            + POOLER_HINT)


def migrate(dsn: str, migrations: list[Migration] | None = None, *, pooler_mode: str | None = None) -> list[Migration]:
    """Apply every pending migration; return those applied now (empty when up to date).

    Refuses, changing nothing, an incompatible host schema (HostSchemaIncompatible)
    and a transaction pooler (PoolerRefused).
    """
    from .store import host_contract

    migrations = discover() if migrations is None else migrations
    with _connect(dsn) as conn:
        if pooler_mode == "transaction":  # before the lock, which would not be ours to release
            _refuse_pooler(conn, pooler_mode)
        _lock(conn)
        try:
            _refuse_pooler(conn, pooler_mode)
            with conn.transaction():
                db.execute(conn, "read_only_transaction")
                report = host_contract.inspect(conn)
            if not report.compatible:
                raise HostSchemaIncompatible(report)
            db.execute(conn, "set_migration_lock_timeout", {"lock_timeout": LOCK_TIMEOUT})
            states = status(conn, migrations)
            changed = [s for s in states if s.state == "changed"]
            if changed:
                names = ", ".join(f"{s.version:04d}_{s.name}.sql" for s in changed)
                raise MigrationError(
                    f"refusing to migrate: {names} changed after it was applied "
                    "(write a new migration instead of editing an applied one)"
                )
            pending = {s.version for s in states if s.state == "pending"}
            applied_now = []
            for migration in migrations:
                if migration.version not in pending:
                    continue
                _apply(conn, migration)
                applied_now.append(migration)
            _after_migrations(conn)
            return applied_now
        finally:
            if not conn.closed:
                db.execute(conn, "unlock_migrations")


def _failed(migration: Migration, exc: psycopg.Error, *, rolled_back: bool) -> MigrationError:
    what = "failed and was rolled back" if rolled_back else "failed part-way (its statements are idempotent: " \
                                                            "run migrate again once the cause is fixed)"
    hint = ""
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        hint = (f" (no lock within {LOCK_TIMEOUT}: a long transaction holds a table this migration alters; "
                "run migrate again when the host is quieter)")
    return MigrationError(f"migration {migration.path.name} {what}: {' '.join(str(exc).split())}{hint}")


def _apply(conn: psycopg.Connection, migration: Migration) -> None:
    record = {"version": migration.version, "name": migration.name, "checksum": migration.checksum}
    if migration.transactional:
        try:
            with conn.transaction():
                conn.execute(migration.sql)
                db.execute(conn, "record_migration", record)
        except psycopg.Error as exc:
            raise _failed(migration, exc, rolled_back=True) from exc
        return
    try:
        for statement in split_statements(migration.sql):
            conn.execute(statement)
        db.execute(conn, "record_migration", record)
    except psycopg.Error as exc:
        raise _failed(migration, exc, rolled_back=False) from exc


def backfill_lineage(conn: psycopg.Connection, *, batch: int = LINEAGE_BATCH) -> int:
    """Give existing model rows their lineage, one short transaction per batch; returns the rows updated."""
    total = 0
    while True:
        updated = db.execute(conn, "backfill_lineage_batch", {"batch": batch}).rowcount
        total += updated
        if updated < 1:
            break
    left = db.fetch_one(conn, "models_without_lineage")["ids"]
    if left:
        raise MigrationError(f"{len(left)} model artifact(s) have no lineage root (their parent_version_id chain "
                             f"loops): {', '.join(left[:20])}; fix parent_version_id, then run migrate again")
    return total


def _after_migrations(conn: psycopg.Connection) -> None:
    """The steps that follow every migrate: lineage backfill, host id functions, pgvector."""
    if db.fetch_one(conn, "has_function", {"signature": "model_eval_gate_set_lineage()"})["present"]:
        backfill_lineage(conn)
    db.execute(conn, "refresh_host_id_functions")
    if db.fetch_one(conn, "has_function", {"signature": "model_eval_gate_setup_fingerprints()"})["present"]:
        feature = db.fetch_one(conn, "fingerprints_feature")
        if feature is None or not feature["enabled"]:
            db.fetch_one(conn, "setup_fingerprints")


def downgrade(dsn: str, to_version: int, migrations: list[Migration] | None = None, *,
              pooler_mode: str | None = None) -> list[Migration]:
    """Run documented down migrations above to_version, newest first.

    Never run automatically: an operator (or a test on a scratch database)
    asks for it explicitly.
    """
    migrations = discover() if migrations is None else migrations
    with _connect(dsn) as conn:
        if pooler_mode == "transaction":
            _refuse_pooler(conn, pooler_mode)
        _lock(conn)
        try:
            _refuse_pooler(conn, pooler_mode)
            applied = {s.version for s in status(conn, migrations) if s.state in ("applied", "changed")}
            reverted = []
            for migration in sorted(migrations, key=lambda m: m.version, reverse=True):
                if migration.version <= to_version or migration.version not in applied:
                    continue
                if not migration.down_path.exists():
                    raise MigrationError(f"{migration.path.name} has no {migration.down_path.name}")
                try:
                    with conn.transaction():
                        conn.execute(migration.down_path.read_text())
                        db.execute(conn, "forget_migration", {"version": migration.version})
                except psycopg.Error as exc:
                    raise MigrationError(f"{migration.down_path.name} failed and was rolled back: "
                                         f"{' '.join(str(exc).split())}") from exc
                reverted.append(migration)
            return reverted
        finally:
            db.execute(conn, "unlock_migrations")
