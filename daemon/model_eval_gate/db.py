"""Connections, the pgvector adapter, retry policy, and the named queries in sql/queries/."""
from __future__ import annotations

import re
from functools import cache
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads
from tenacity import (
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from .bounded_json import loads_from_database
from .config import Settings
from .resources import sql_dir

_NAME_LINE = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)

# Errors after which the same statement may well succeed on a new connection:
# the server restarted, a connection was terminated, a network blip.
TRANSIENT_ERRORS = (psycopg.OperationalError, psycopg.errors.AdminShutdown)


def is_connection_loss(exc: BaseException) -> bool:
    """The database went away (restart, terminated backend, network): not the statement's fault.

    Narrower than TRANSIENT_ERRORS: a lock or statement timeout is an
    OperationalError too, but the server answered it.
    """
    if isinstance(exc, psycopg.InterfaceError):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    sqlstate = exc.sqlstate
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03")


class QueryNotFound(KeyError):
    pass


@cache
def _all_queries() -> dict[str, str]:
    queries: dict[str, str] = {}
    for path in sorted((sql_dir() / "queries").glob("*.sql")):
        text = path.read_text()
        marks = list(_NAME_LINE.finditer(text))
        for mark, following in zip(marks, marks[1:] + [None]):
            body = text[mark.end(): following.start() if following else len(text)].strip()
            if mark.group(1) in queries:
                raise ValueError(f"query {mark.group(1)!r} is defined twice (second in {path.name})")
            queries[mark.group(1)] = body
    return queries


def query(name: str) -> str:
    """The text of a named query from sql/queries/*.sql."""
    try:
        return _all_queries()[name]
    except KeyError:
        raise QueryNotFound(f"no query named {name!r} in {sql_dir() / 'queries'}") from None


def execute(conn: psycopg.Connection, name: str, params: Any = None) -> psycopg.Cursor:
    return conn.execute(query(name), params)


class RepliesOutOfStep(psycopg.InterfaceError):
    """The reply to a statement was not its reply; the connection was closed.

    Seen once through PgBouncer 1.18 in transaction mode: a query that
    returns rows got the command status "SET" (PgBouncer's own SET, sent when
    it hands a server connection to a client with another application_name),
    and every later reply on that connection was one statement late. An
    InterfaceError, so callers treat it as a lost connection: they open a
    new one and try again, and a gate does not count it as the model's attempt.
    """


def out_of_step(conn: psycopg.Connection, name: str, reply: str | None) -> RepliesOutOfStep:
    conn.close()
    return RepliesOutOfStep(f"query {name} got the reply {reply!r}, not its rows: this connection is out of step "
                            "with its server (through a pooler?), so it was closed")


def _rows(conn: psycopg.Connection, name: str, params: Any) -> psycopg.Cursor:
    cursor = execute(conn, name, params)
    if cursor.description is None:  # every fetched query returns rows, perhaps none
        raise out_of_step(conn, name, cursor.statusmessage)
    return cursor


def fetch_one(conn: psycopg.Connection, name: str, params: Any = None) -> dict | None:
    return _rows(conn, name, params).fetchone()


def fetch_all(conn: psycopg.Connection, name: str, params: Any = None) -> list[dict]:
    return _rows(conn, name, params).fetchall()


def resolve_dsn(settings: Settings) -> str:
    """The configured DSN, or the embedded server's (started if needed)."""
    if settings.dsn:
        return settings.dsn
    from .embedded import ensure_server

    return ensure_server(settings.home).dsn()


def connect(
    settings_or_dsn: Settings | str,
    *,
    autocommit: bool = False,
    application_name: str = "model-eval-gate",
    pooler: str | None = None,
) -> psycopg.Connection:
    """A connection with dict rows, keepalives, and pgvector registered when installed.

    Behind a pooler (Settings.pooler, or `pooler` for a bare DSN) psycopg
    prepares no statements: a transaction pooler hands the server connection
    to other clients between transactions, where our prepared statements
    would collide with theirs (DuplicatePreparedStatement) or be run by them.
    """
    if isinstance(settings_or_dsn, str):
        dsn = settings_or_dsn
    else:
        dsn = resolve_dsn(settings_or_dsn)
        pooler = pooler or settings_or_dsn.pooler
    conn = psycopg.connect(
        dsn,
        autocommit=autocommit,
        row_factory=dict_row,
        application_name=application_name,
        # TCP keepalives find a half-open connection that would otherwise
        # never raise; libpq ignores them on Unix sockets.
        keepalives=1,
        keepalives_idle=30,
        keepalives_interval=10,
        keepalives_count=3,
        connect_timeout=10,
        prepare_threshold=None if pooler not in (None, "none") else 5,
    )
    if conn.prepare_threshold is not None and behind_a_pooler(conn):
        # A pooler nobody configured (MODEL_EVAL_GATE_POOLER=none): prepared
        # statements would collide on its shared server connections, so
        # prepare nothing here either; the daemon and migrate say so.
        conn.prepare_threshold = None
    # Stored JSON nested thousands deep must not raise RecursionError on read.
    set_json_loads(loads_from_database, conn)
    register_vector_if_present(conn)
    return conn


def behind_a_pooler(conn: psycopg.Connection) -> bool:
    """Whether something other than PostgreSQL answered this connection's start-up (PgBouncer, pgpool...).

    libpq keeps the pid the server sent at start-up (BackendKeyData); a
    pooler sends its own, random one, since the server session behind it
    changes. So the two disagree behind a pooler, in every pooling mode, and
    agree on a direct connection.
    """
    in_transaction = conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
    server_pid = fetch_one(conn, "server_backend_pid")["pid"]
    if not conn.autocommit and not in_transaction:
        conn.rollback()  # leave the connection as we found it: outside a transaction
    return server_pid != conn.info.backend_pid


def register_vector_if_present(conn: psycopg.Connection) -> None:
    # Before the first migration, or without pgvector (it is optional), the
    # vector type does not exist; where it is installed outside the
    # search_path, fingerprints are disabled (fingerprint.unavailable_reason).
    present = fetch_one(conn, "has_vector_type")["present"]
    if not conn.autocommit:
        conn.rollback()
    if present:
        from pgvector.psycopg import register_vector

        register_vector(conn)
        if not conn.autocommit:
            conn.rollback()


def retrying_transient(attempts: int = 5, max_wait: float = 10.0):
    """Decorator: retry a database operation on transient errors, with jittered backoff."""
    return retry(
        retry=retry_if_exception_type(TRANSIENT_ERRORS),
        wait=wait_exponential_jitter(initial=0.2, max=max_wait),
        stop=stop_after_attempt(attempts),
        reraise=True,
    )
