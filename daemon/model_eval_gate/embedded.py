"""A private PostgreSQL with pgvector for the default, zero-set-up deployment.

pgserver ships PostgreSQL binaries with pgvector in a wheel. The server is
started once in `<home>/pgdata`, listens on a Unix socket only (no TCP port to
collide with or expose), and is left running when this process exits so that
later commands (`db-url`, `psql`, another daemon) reuse it.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

DATABASE = "model_eval_gate"


class EmbeddedDatabaseError(RuntimeError):
    """The embedded PostgreSQL could not be started."""


@dataclass(frozen=True)
class EmbeddedServer:
    pgdata: Path
    socket_dir: Path
    bin_dir: Path

    def dsn(self, database: str = DATABASE) -> str:
        # A libpq URI with the socket directory as host: psql, psycopg and
        # every libpq client accept it.
        return f"postgresql://postgres@/{quote(database)}?host={quote(str(self.socket_dir), safe='/')}"


# platformdirs warns at pgserver's import when XDG_RUNTIME_DIR is unset
# (systemd services, CI); pgserver then falls back to /tmp, which is fine.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def _server(pgdata: Path):
    try:
        import pgserver
    except ImportError as exc:  # pragma: no cover - pgserver is a hard dependency
        raise EmbeddedDatabaseError(
            "the embedded database needs the pgserver package; install model-eval-gate "
            "with its dependencies or set MODEL_EVAL_GATE_DSN"
        ) from exc
    # pgserver logs every step at INFO; our own logs say what matters.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        return pgserver.get_server(pgdata, cleanup_mode=None)
    except Exception as exc:
        raise EmbeddedDatabaseError(f"could not start the embedded PostgreSQL in {pgdata}: {exc}") from exc


def ensure_server(home: Path) -> EmbeddedServer:
    """Start (or reuse) the server in home/pgdata and make sure our database exists."""
    import psycopg

    pgdata = (home / "pgdata").expanduser().resolve()
    server = _server(pgdata)
    info = server.get_postmaster_info()
    embedded = EmbeddedServer(
        pgdata=pgdata,
        socket_dir=Path(info.socket_dir),
        bin_dir=_bin_dir(),
    )
    with psycopg.connect(embedded.dsn("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if not exists:
            try:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')
            except psycopg.errors.DuplicateDatabase:
                pass  # another process created it between our check and now
    return embedded


def _bin_dir() -> Path:
    import pgserver

    return Path(pgserver.__file__).parent / "pginstall" / "bin"


def stop_server(home: Path) -> None:
    """Stop the embedded server (tests, and operators who want it gone)."""
    from pgserver._commands import pg_ctl

    pgdata = (home / "pgdata").expanduser().resolve()
    if not (pgdata / "postmaster.pid").exists():
        return
    server = _server(pgdata)
    pg_ctl(["-m", "fast", "-w", "stop"], pgdata=pgdata, user=server.system_user, timeout=60)


def restart_server(home: Path) -> None:
    """Restart the embedded server in place (recovery tests use this)."""
    from pgserver._commands import pg_ctl

    pgdata = (home / "pgdata").expanduser().resolve()
    server = _server(pgdata)
    pg_ctl(["-m", "fast", "-w", "restart"], pgdata=pgdata, user=server.system_user, timeout=60)
