"""The least-privilege roles (sql/roles.sql): print them for a DBA, or apply them."""
from __future__ import annotations

import psycopg

from ..resources import sql_dir

ROLES = ("model_eval_gate_pipeline", "model_eval_gate_daemon", "model_eval_gate_operator")


def roles_sql() -> str:
    return (sql_dir() / "roles.sql").read_text()


def apply_roles(conn: psycopg.Connection) -> None:
    """Create (if missing) and grant the three roles in the connection's database and schema, in one transaction.

    Needs the schema's owner with CREATEROLE (or a superuser).
    """
    with conn.transaction():
        conn.execute(roles_sql())
