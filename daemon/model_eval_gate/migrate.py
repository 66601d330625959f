"""Applies sql/migrations/NNNN_name.sql in order, once each, under an advisory lock.

Each migration runs in its own transaction together with the row that
records it, so a failure leaves no half-applied migration behind. Applied files
are checksummed: editing one after it ran is refused, because the database
would silently differ from what the file now says.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg

from . import db
from .resources import sql_dir

_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    pass


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


def migrate(dsn: str, migrations: list[Migration] | None = None) -> list[Migration]:
    """Apply every pending migration; return those applied now (empty when up to date)."""
    migrations = discover() if migrations is None else migrations
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.row_factory = psycopg.rows.dict_row
        db.execute(conn, "lock_migrations")
        try:
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
                try:
                    with conn.transaction():
                        conn.execute(migration.sql)
                        db.execute(conn, "record_migration", {
                            "version": migration.version,
                            "name": migration.name,
                            "checksum": migration.checksum,
                        })
                except psycopg.Error as exc:
                    raise MigrationError(
                        f"migration {migration.path.name} failed and was rolled back: {exc}"
                    ) from exc
                applied_now.append(migration)
            return applied_now
        finally:
            db.execute(conn, "unlock_migrations")


def downgrade(dsn: str, to_version: int, migrations: list[Migration] | None = None) -> list[Migration]:
    """Run documented down migrations above to_version, newest first.

    Never run automatically: an operator (or a test on a scratch database)
    asks for it explicitly.
    """
    migrations = discover() if migrations is None else migrations
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.row_factory = psycopg.rows.dict_row
        db.execute(conn, "lock_migrations")
        try:
            applied = {s.version for s in status(conn, migrations) if s.state in ("applied", "changed")}
            reverted = []
            for migration in sorted(migrations, key=lambda m: m.version, reverse=True):
                if migration.version <= to_version or migration.version not in applied:
                    continue
                if not migration.down_path.exists():
                    raise MigrationError(f"{migration.path.name} has no {migration.down_path.name}")
                with conn.transaction():
                    conn.execute(migration.down_path.read_text())
                    db.execute(conn, "forget_migration", {"version": migration.version})
                reverted.append(migration)
            return reverted
        finally:
            db.execute(conn, "unlock_migrations")
