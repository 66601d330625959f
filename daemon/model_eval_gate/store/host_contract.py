"""The host contract: which host tables and columns the gate uses, and how, and the check behind `migrate --check`.

The gate joins a platform database it does not own (DESIGN.md section 10,
docs/operations.md "Deploying into an existing database"). It adapts to the
host's column types instead of changing them: JSON is read with ::jsonb and
written as jsonb (stored as text where the column is text), timestamps are
read with ::timestamptz and written as now(), and new row ids come from
model_eval_gate_new_<table>_id() (0001), which uses the column's default or
makes a text id where the host has none. What it cannot adapt to is listed
here, all of it at once, before any migration changes anything.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from .. import db

# Type families: the column types the gate can read and write through casts.
TEXT = ("text", "character varying")
JSON = ("jsonb", "json", *TEXT)
TIMESTAMP = ("timestamp with time zone", "timestamp without time zone", *TEXT)
INTEGER = ("smallint", "integer", "bigint")
NUMBER = (*INTEGER, "double precision", "real", "numeric")

_FAMILY_WORDS = {
    TEXT: "text (text or varchar)",
    JSON: "JSON (jsonb, json, or text holding JSON)",
    TIMESTAMP: "a timestamp (timestamptz, timestamp, or text)",
    INTEGER: "an integer (smallint, integer or bigint)",
    NUMBER: "a number",
}
_PREFERRED = {TEXT: "text", JSON: "jsonb", TIMESTAMP: "timestamptz", INTEGER: "integer", NUMBER: "double precision"}

# The tables the gate inserts rows into whose ids it does not choose itself:
# model_eval_gate_new_<table>_id() (0001) makes them the host's way.
GENERATED_ID_TABLES = ("artifact_lifecycle_history", "world_model_improvements", "tickets", "tool_calls")


@dataclass(frozen=True)
class Column:
    family: tuple[str, ...]
    added_if_missing: bool = False  # 0001 adds it to a found table (nullable, constant default at most)


# Table -> columns the gate reads or writes. Anything else in a host table is
# the host's: never read, never written (but a NOT NULL column without a
# default would make the gate's INSERTs fail, so it is checked).
CONTRACT: dict[str, dict[str, Column]] = {
    "artifacts": {
        "id": Column(TEXT), "artifact_type": Column(TEXT), "title": Column(TEXT), "metadata": Column(JSON),
        "created_by": Column(TEXT), "created_at": Column(TIMESTAMP),
        "version_number": Column(INTEGER, True), "parent_version_id": Column(TEXT, True),
        "version_tag": Column(TEXT, True), "changelog": Column(TEXT, True), "is_latest": Column(INTEGER, True),
        "lifecycle_state": Column(TEXT, True), "superseded_by": Column(TEXT, True),
        "origin_type": Column(TEXT, True), "origin_url": Column(TEXT, True), "lineage_id": Column(TEXT, True),
    },
    "universal_artifacts": {
        "artifact_id": Column(TEXT), "artifact_type": Column(TEXT), "title": Column(TEXT),
        "lifecycle_state": Column(TEXT), "created_at": Column(TIMESTAMP), "updated_at": Column(TIMESTAMP),
    },
    "artifact_lifecycle_history": {
        "id": Column(TEXT), "artifact_id": Column(TEXT), "from_state": Column(TEXT), "to_state": Column(TEXT),
        "reason": Column(TEXT), "actor": Column(TEXT), "related_artifact_id": Column(TEXT),
        "metadata": Column(JSON), "created_at": Column(TIMESTAMP),
    },
    "benchmarks": {
        "id": Column(TEXT), "title": Column(TEXT), "task": Column(TEXT), "primary_metric": Column(TEXT),
        "manifest": Column(JSON, True), "path": Column(TEXT, True), "split_hash": Column(TEXT, True),
        "created_at": Column(TIMESTAMP), "updated_at": Column(TIMESTAMP, True),
    },
    "world_model_improvements": {
        "id": Column(TEXT), "event_type": Column(TEXT), "target_artifact_id": Column(TEXT),
        "source_artifact_id": Column(TEXT), "magnitude": Column(TEXT), "detection_metadata": Column(JSON),
        "created_at": Column(TIMESTAMP),
    },
    "tickets": {
        "id": Column(TEXT), "ticket_type": Column(TEXT), "artifact_id": Column(TEXT), "assignee": Column(TEXT),
        "title": Column(TEXT), "body": Column(TEXT), "status": Column(TEXT), "created_at": Column(TIMESTAMP),
    },
    "tool_calls": {
        "id": Column(TEXT), "tool_name": Column(TEXT), "arguments": Column(JSON), "status": Column(TEXT),
        "duration_ms": Column(NUMBER), "error": Column(TEXT), "result_summary": Column(JSON),
        "actor": Column(TEXT), "started_at": Column(TIMESTAMP),
    },
}

# ON CONFLICT targets of the gate's upserts: these need a unique key.
UNIQUE_KEYS = {"artifacts": ("id",), "universal_artifacts": ("artifact_id",), "benchmarks": ("id",)}


@dataclass(frozen=True)
class Problem:
    """One reason the gate cannot use the host schema as it is, with the fix."""

    table: str
    column: str | None
    found: str
    needed: str
    fix: str

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        return f"{where}: found {self.found}; needs {self.needed}; fix: {self.fix}"


@dataclass
class HostReport:
    problems: list[Problem] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)   # what migrate would add (never change)
    notes: list[str] = field(default_factory=list)  # optional features and their prerequisites

    @property
    def compatible(self) -> bool:
        return not self.problems

    def refusal(self) -> str:
        lines = [f"the host schema is not compatible with model-eval-gate ({len(self.problems)} problem(s)); "
                 "nothing was changed:"]
        lines += [f"  - {p}" for p in self.problems]
        lines.append("fix these (docs/operations.md, 'Deploying into an existing database'), "
                     "then run: model-eval-gate migrate --check")
        return "\n".join(lines)

    def summary(self) -> str:
        lines = ["the host schema is compatible with model-eval-gate" if self.compatible else self.refusal()]
        if self.plan:
            lines.append("migrate will add (additive only; the way back removes exactly these):")
            lines += [f"  + {item}" for item in self.plan]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _family_of(data_type: str) -> str:
    # varchar(40) is a character varying; numeric(10,2) a numeric.
    return data_type.split("(")[0].strip()


def _id_problem(table: str, column: dict) -> Problem | None:
    if column["identity"] == "a":
        return Problem(table, "id", f"{column['data_type']} GENERATED ALWAYS AS IDENTITY",
                       "an id the gate may supply (it inserts the identity's next value)",
                       f"ALTER TABLE {table} ALTER COLUMN id SET GENERATED BY DEFAULT")
    if column["has_default"] or column["identity"] == "d":
        return None
    kind = _family_of(column["data_type"])
    if kind in TEXT or kind == "uuid":
        return None  # the gate makes text (or uuid) ids itself
    return Problem(table, "id", f"{column['data_type']} without a default",
                   "a default (a sequence or identity), or a text id the gate can generate",
                   f"ALTER TABLE {table} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY "
                   f"(then SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table})")


def _schema_problems(columns: list[dict], unique_keys: list[dict], report: HostReport) -> None:
    found: dict[str, dict[str, dict]] = {}
    for row in columns:
        found.setdefault(row["table_name"], {})[row["column_name"]] = row
    keys: dict[str, set[tuple[str, ...]]] = {}
    for row in unique_keys:
        keys.setdefault(row["table_name"], set()).add(tuple(row["columns"]))

    for table, contract in CONTRACT.items():
        live = found.get(table)
        if live is None:
            report.plan.append(f"table {table} (absent: created by the gate)")
            continue
        for name, column in contract.items():
            row = live.get(name)
            if row is None:
                if column.added_if_missing:
                    report.plan.append(f"column {table}.{name} {_PREFERRED[column.family]} (nullable)")
                else:
                    report.problems.append(Problem(
                        table, name, "no such column", _FAMILY_WORDS[column.family],
                        f"ALTER TABLE {table} ADD COLUMN {name} {_PREFERRED[column.family]}"))
                continue
            if name == "id" and table in GENERATED_ID_TABLES:
                problem = _id_problem(table, row)
                if problem:
                    report.problems.append(problem)
                if _family_of(row["data_type"]) not in (*NUMBER, *TEXT, "uuid"):
                    report.problems.append(Problem(table, name, row["data_type"], "text, an integer or uuid",
                                                   f"a host decision: the gate cannot use {table}.id as it is"))
                continue
            if _family_of(row["data_type"]) not in column.family:
                report.problems.append(Problem(
                    table, name, row["data_type"], _FAMILY_WORDS[column.family],
                    f"the gate never changes a host column's type: give it a column of {_FAMILY_WORDS[column.family]}, "
                    f"e.g. ALTER TABLE {table} ALTER COLUMN {name} TYPE {_PREFERRED[column.family]} "
                    f"USING {name}::{_PREFERRED[column.family]} (a table rewrite: plan it)"))
        for name, row in live.items():
            if name not in contract and row["not_null"] and not row["has_default"] and not row["identity"] \
                    and not row["generated"]:
                report.problems.append(Problem(
                    table, name, f"{row['data_type']} NOT NULL without a default",
                    "a default or NULL allowed: the gate's rows do not fill the host's own columns",
                    f"ALTER TABLE {table} ALTER COLUMN {name} SET DEFAULT <value> "
                    f"(or ALTER TABLE {table} ALTER COLUMN {name} DROP NOT NULL)"))
        key = UNIQUE_KEYS.get(table)
        if key and key not in keys.get(table, set()) and all(k in live for k in key):
            report.problems.append(Problem(
                table, ", ".join(key), "no unique key", f"a PRIMARY KEY or UNIQUE constraint on ({', '.join(key)})",
                f"CREATE UNIQUE INDEX CONCURRENTLY {table}_{'_'.join(key)}_key ON {table} ({', '.join(key)})"))


def _data_problems(conn: psycopg.Connection, found_tables: set[str], columns: set[tuple[str, str]],
                   report: HostReport) -> None:
    """Existing host rows that a guard of ours would refuse: named, before anything is built."""
    if {("artifacts", "parent_version_id"), ("artifacts", "is_latest")} <= columns:
        for row in db.fetch_all(conn, "lineage_conflicts"):
            report.problems.append(Problem(
                "artifacts", "is_latest", f"lineage {row['lineage']} has {len(row['latest'])} latest models: "
                + ", ".join(row["latest"]), "at most one latest (is_latest = 1) model per lineage",
                "retire all but one: UPDATE artifacts SET is_latest = 0 WHERE id IN (...)"))
    if "world_model_improvements" in found_tables and {("world_model_improvements", "event_type"),
                                                         ("world_model_improvements", "target_artifact_id")} <= columns:
        for row in db.fetch_all(conn, "duplicate_promotion_events"):
            report.problems.append(Problem(
                "world_model_improvements", "target_artifact_id",
                f"{len(row['rows'])} model_version_promoted events for {row['artifact_id']} (ids {', '.join(row['rows'])})",
                "at most one promotion event per version",
                "keep one: delete or re-type the others (event_type)"))
    if "tickets" in found_tables and {("tickets", "ticket_type"), ("tickets", "status"),
                                      ("tickets", "artifact_id")} <= columns:
        for row in db.fetch_all(conn, "duplicate_open_rejections"):
            report.problems.append(Problem(
                "tickets", "artifact_id",
                f"{len(row['rows'])} open candidate-rejected tickets for {row['artifact_id']} (ids {', '.join(row['rows'])})",
                "at most one open rejection ticket per candidate", "close all but one (status)"))
    if db.fetch_one(conn, "host_objects_recorded")["present"]:
        for row in db.fetch_all(conn, "invalid_gate_indexes"):
            report.problems.append(Problem(
                row["table_name"], None, f"index {row['object_name']} is INVALID (an interrupted CONCURRENTLY build)",
                "a valid index", f"DROP INDEX CONCURRENTLY {row['object_name']}; then model-eval-gate migrate"))


def _notes(conn: psycopg.Connection, report: HostReport) -> None:
    vector = db.fetch_one(conn, "vector_extension")
    facts = db.fetch_one(conn, "server_facts")
    if facts["version_num"] < 110000:
        report.problems.append(Problem("(server)", None, f"PostgreSQL {facts['version_num']}", "PostgreSQL 11 or later",
                                       "upgrade the server"))
    if vector["schema"]:
        report.notes.append(f"fingerprints: pgvector is installed (schema {vector['schema']})")
    elif vector["available"] and facts["superuser"]:
        report.notes.append("fingerprints: pgvector is available; migrate creates the extension")
    else:
        where = "is available on this server" if vector["available"] else "is not installed on this server"
        report.notes.append(f"fingerprints: pgvector {where}; the gate runs without it (no `similar`, the exact "
                            "no-op check still works). To enable: a superuser runs once, in this database, "
                            "CREATE EXTENSION vector; then model-eval-gate migrate")


def inspect(conn: psycopg.Connection) -> HostReport:
    """Read the host schema (and the rows our guards care about) and judge it; changes nothing."""
    report = HostReport()
    tables = list(CONTRACT)
    columns = db.fetch_all(conn, "host_columns", {"tables": tables})
    unique_keys = db.fetch_all(conn, "host_unique_keys", {"tables": tables})
    _schema_problems(columns, unique_keys, report)
    found_tables = {row["table_name"] for row in columns}
    present = {(row["table_name"], row["column_name"]) for row in columns}
    _data_problems(conn, found_tables, present, report)
    _notes(conn, report)
    if not conn.autocommit:
        conn.rollback()
    return report
