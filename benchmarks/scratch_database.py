"""A throwaway PostgreSQL database for the benchmark scripts.

With MODEL_EVAL_GATE_DSN set, the scratch database is created on that server
(its role must be allowed to CREATE DATABASE) and dropped afterwards.
Otherwise a private embedded server (pgserver, as the daemon's default set-up
uses) is started in a fresh directory under /tmp and stopped at the end.
The server's configuration is left as it is: the figures are for its
defaults (durable commits included).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "daemon"))

from model_eval_gate import embedded, migrate  # noqa: E402


@contextmanager
def database_server(prefix: str) -> Iterator[str]:
    """Yield an admin DSN: MODEL_EVAL_GATE_DSN's server, or a private embedded one (stopped afterwards)."""
    configured = os.environ.get("MODEL_EVAL_GATE_DSN")
    if configured:
        yield configured
        return
    home = Path(tempfile.mkdtemp(prefix=f"{prefix}-pg-", dir="/tmp"))
    home.chmod(0o755)  # as root, pgserver runs PostgreSQL as its own user, which must reach it
    try:
        yield embedded.ensure_server(home).dsn("postgres")
    finally:
        embedded.stop_server(home)
        shutil.rmtree(home, ignore_errors=True)


@contextmanager
def scratch_database(prefix: str, *, admin: str | None = None, migrated: bool = True) -> Iterator[str]:
    """Yield the DSN of a new database (with the gate's migrations unless told otherwise), dropped afterwards.

    On the server of `admin`, or on one database_server starts for it alone.
    """
    if admin is None:
        with database_server(prefix) as own_admin, scratch_database(prefix, admin=own_admin, migrated=migrated) as dsn:
            yield dsn
        return
    name = f"{prefix.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        dsn = psycopg.conninfo.make_conninfo(admin, dbname=name)
        if migrated:
            migrate.migrate(dsn)
        yield dsn
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_description(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        settings = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers')"
        ).fetchall())
    where = "MODEL_EVAL_GATE_DSN" if os.environ.get("MODEL_EVAL_GATE_DSN") else "embedded pgserver"
    return (f"PostgreSQL {version} ({where}); fsync={settings.get('fsync')}, "
            f"synchronous_commit={settings.get('synchronous_commit')}, shared_buffers={settings.get('shared_buffers')} x 8kB")
