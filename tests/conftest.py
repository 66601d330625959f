"""Shared fixtures: a real PostgreSQL (embedded by default), one clean database per test.

MODEL_EVAL_GATE_TEST_DSN points the suite at an existing server instead; it
must allow CREATE DATABASE. Nothing here skips: a missing database fails.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "daemon"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

TEMPLATE = "meg_test_template"


def _with_database(dsn: str, database: str) -> str:
    return psycopg.conninfo.make_conninfo(dsn, dbname=database)


@pytest.fixture(scope="session")
def pg_admin_dsn():
    """A DSN with CREATE DATABASE rights on a real server."""
    configured = os.environ.get("MODEL_EVAL_GATE_TEST_DSN")
    if configured:
        yield configured
        return
    from model_eval_gate import embedded

    # Not under pytest's 0700 tmp tree: as root, pgserver runs PostgreSQL as
    # its own system user, which must be able to reach the data directory.
    home = Path(tempfile.mkdtemp(prefix="meg-test-pg-"))
    home.chmod(0o755)
    server = embedded.ensure_server(home)
    admin = server.dsn("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        # Durability buys nothing for throwaway test databases.
        for setting in ("fsync = off", "synchronous_commit = off", "full_page_writes = off"):
            conn.execute(f"ALTER SYSTEM SET {setting}")
        conn.execute("SELECT pg_reload_conf()")
    yield admin
    embedded.stop_server(home)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def migrated_template(pg_admin_dsn):
    from model_eval_gate import migrate

    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
    migrate.migrate(_with_database(pg_admin_dsn, TEMPLATE))
    return TEMPLATE


def _create_database(admin_dsn: str, template: str | None) -> tuple[str, str]:
    name = f"meg_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return name, _with_database(admin_dsn, name)


def _drop_database(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_dsn(pg_admin_dsn):
    """A clean database with no migrations applied."""
    name, dsn = _create_database(pg_admin_dsn, None)
    yield dsn
    _drop_database(pg_admin_dsn, name)


@pytest.fixture
def dsn(pg_admin_dsn, migrated_template):
    """A clean, fully migrated database of its own for each test."""
    name, dsn = _create_database(pg_admin_dsn, migrated_template)
    yield dsn
    _drop_database(pg_admin_dsn, name)


@pytest.fixture
def settings(dsn, tmp_path):
    from model_eval_gate.config import Settings

    return Settings(dsn=dsn, home=tmp_path / "home", artifact_root=tmp_path / "artifacts")


@pytest.fixture
def conn(settings):
    from model_eval_gate import db

    with db.connect(settings, autocommit=True) as connection:
        yield connection
