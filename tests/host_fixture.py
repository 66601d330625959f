"""A SQLite-era host database, as a research platform migrated from SQLite has it.

Everything is TEXT that SQLite let be TEXT: metadata as JSON text with its own
spacing, duplicate keys, empty strings and non-JSON; timestamps as text in
SQLite's datetime() format; text ids without defaults in every table. The
host's own columns sit among the gate's, a few hundred non-model artifacts
live in lineages (several "latest" per lineage: only models are guarded),
and the platform's 8 legacy models wait for their WS1 backfill.

host_rows() is the yardstick: the exact stored text of every row the host
had, in the host's own columns.
"""
from __future__ import annotations

import hashlib
import json
import random

import psycopg

from model_eval_gate.catalog import legacy_fixture

HOST_TABLES = ("artifacts", "universal_artifacts", "artifact_lifecycle_history", "benchmarks",
               "world_model_improvements", "tickets", "tool_calls")

SCHEMA = """
CREATE TABLE artifacts (
    id                 TEXT PRIMARY KEY,
    artifact_type      TEXT NOT NULL,
    title              TEXT NOT NULL DEFAULT '',
    metadata           TEXT,
    created_by         TEXT,
    created_at         TEXT,
    version_number     INTEGER DEFAULT 1,
    parent_version_id  TEXT,
    version_tag        TEXT,
    changelog          TEXT,
    is_latest          INTEGER DEFAULT 1,
    lifecycle_state    TEXT DEFAULT 'active',
    superseded_by      TEXT,
    origin_type        TEXT,
    origin_url         TEXT,
    quality_score      REAL,
    sqlite_rowid       INTEGER,
    curator_notes      TEXT
);
CREATE TABLE universal_artifacts (
    artifact_id      TEXT PRIMARY KEY,
    artifact_type    TEXT NOT NULL,
    title            TEXT,
    lifecycle_state  TEXT DEFAULT 'active',
    created_at       TEXT,
    updated_at       TEXT,
    owner_team       TEXT
);
CREATE TABLE artifact_lifecycle_history (
    id                   TEXT PRIMARY KEY,
    artifact_id          TEXT NOT NULL,
    from_state           TEXT,
    to_state             TEXT NOT NULL,
    reason               TEXT,
    actor                TEXT NOT NULL,
    related_artifact_id  TEXT,
    metadata             TEXT,
    created_at           TEXT
);
CREATE TABLE benchmarks (
    id              TEXT PRIMARY KEY,
    title           TEXT,
    task            TEXT NOT NULL,
    primary_metric  TEXT NOT NULL,
    created_at      TEXT,
    description     TEXT
);
CREATE TABLE world_model_improvements (
    id                  TEXT PRIMARY KEY,
    event_type          TEXT NOT NULL,
    target_artifact_id  TEXT NOT NULL,
    source_artifact_id  TEXT,
    magnitude           TEXT,
    detection_metadata  TEXT,
    created_at          TEXT,
    reviewed            INTEGER DEFAULT 0
);
CREATE TABLE tickets (
    id           TEXT PRIMARY KEY,
    ticket_type  TEXT NOT NULL,
    artifact_id  TEXT,
    assignee     TEXT,
    title        TEXT NOT NULL,
    body         TEXT,
    status       TEXT DEFAULT 'open',
    created_at   TEXT,
    priority     INTEGER DEFAULT 3
);
CREATE TABLE tool_calls (
    id              TEXT PRIMARY KEY,
    tool_name       TEXT NOT NULL,
    arguments       TEXT,
    status          TEXT NOT NULL,
    duration_ms     REAL,
    error           TEXT,
    result_summary  TEXT,
    actor           TEXT,
    started_at      TEXT
);
"""

# Metadata texts as years of SQLite-era writers left them.
MESSY_METADATA = [
    '{"rows": 1200, "rows": 1250}',             # a key twice: jsonb would keep one
    '',                                          # empty: jsonb would refuse it
    '  {"columns":["a","b"] ,"sep":";"}  ',     # its own spacing
    'not json at all',
    None,
    '{"score": 1.50, "unicode": "caf\\u00e9"}',  # 1.50 and an escape, which jsonb rewrites
    '{}',
    '[1, 2, 3]',
]


def _stamp(rng: random.Random) -> str:
    return f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00"


def create_sqlite_era_host(dsn: str, *, n_lineages: int = 60, versions: int = 5, seed: int = 13) -> None:
    """The host schema and its data (300 non-model artifacts by default, and the 8 legacy models)."""
    rng = random.Random(seed)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
        with conn.transaction():
            rowid = 0
            for lineage in range(n_lineages):
                kind = ("dataset", "notebook", "figure", "protocol")[lineage % 4]
                parent = None
                for version in range(1, versions + 1):
                    rowid += 1
                    artifact_id = f"{kind}-{lineage:03d}-v{version}"
                    # Non-models may have several latest versions: the host never cared.
                    latest = 1 if version == versions or (lineage % 7 == 0 and version == versions - 1) else 0
                    conn.execute(
                        "INSERT INTO artifacts (id, artifact_type, title, metadata, created_by, created_at, "
                        "version_number, parent_version_id, is_latest, lifecycle_state, origin_type, quality_score, "
                        "sqlite_rowid, curator_notes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        (artifact_id, kind, f"{kind} {lineage} v{version}", MESSY_METADATA[rowid % len(MESSY_METADATA)],
                         f"user{lineage % 9}", _stamp(rng), version, parent, latest,
                         "active" if latest else "archived", "internal", round(rng.random(), 3), rowid,
                         None if rowid % 3 else "checked by hand"))
                    conn.execute(
                        "INSERT INTO universal_artifacts (artifact_id, artifact_type, title, lifecycle_state, "
                        "created_at, updated_at, owner_team) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                        (artifact_id, kind, f"{kind} {lineage} v{version}", "active", _stamp(rng), _stamp(rng),
                         f"team-{lineage % 5}"))
                    if parent is not None:
                        conn.execute(
                            "INSERT INTO artifact_lifecycle_history (id, artifact_id, from_state, to_state, reason, "
                            "actor, related_artifact_id, metadata, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                            (f"h-{rowid}", parent, "active", "archived", "new version", "curator", artifact_id,
                             MESSY_METADATA[(rowid + 3) % len(MESSY_METADATA)], _stamp(rng)))
                    parent = artifact_id
            for model in legacy_fixture():
                rowid += 1
                # The legacy models' metadata as the SQLite writer spaced it.
                text = json.dumps(model["metadata"], indent=1, ensure_ascii=True).replace("\n", "\r\n")
                conn.execute(
                    "INSERT INTO artifacts (id, artifact_type, title, metadata, created_by, created_at, version_number, "
                    "is_latest, lifecycle_state, origin_type, origin_url, sqlite_rowid) "
                    "VALUES (%s, 'model', %s, %s, %s, %s, 1, 1, %s, %s, %s, %s)",
                    (model["id"], model["title"], text, model["created_by"],
                     model["created_at"].replace("T", " ").removesuffix("Z"), model["lifecycle_state"],
                     model["origin_type"], model["origin_url"], rowid))
            for index in range(5):
                conn.execute("INSERT INTO benchmarks (id, title, task, primary_metric, created_at, description) "
                             "VALUES (%s, %s, 'binary', 'auroc', %s, %s)",
                             (f"host-bench-{index}", f"host benchmark {index}", _stamp(rng), "from the SQLite days"))
                conn.execute("INSERT INTO world_model_improvements (id, event_type, target_artifact_id, "
                             "source_artifact_id, magnitude, detection_metadata, created_at) "
                             "VALUES (%s, 'dataset_refreshed', %s, NULL, 'small', %s, %s)",
                             (f"wmi-{index}", f"dataset-{index * 4:03d}-v5", MESSY_METADATA[index], _stamp(rng)))
                conn.execute("INSERT INTO tickets (id, ticket_type, artifact_id, assignee, title, body, status, "
                             "created_at, priority) VALUES (%s, 'curation', %s, 'curator', %s, %s, 'open', %s, %s)",
                             (f"T-{index}", f"notebook-{index * 4 + 1:03d}-v5", f"check notebook {index}",
                              "text\r\nwith CRLF", _stamp(rng), index))
                conn.execute("INSERT INTO tool_calls (id, tool_name, arguments, status, duration_ms, error, "
                             "result_summary, actor, started_at) VALUES (%s, 'host_tool', %s, 'ok', %s, NULL, %s, "
                             "'host', %s)", (f"call-{index}", MESSY_METADATA[index + 1], 1.5 * index,
                                              MESSY_METADATA[index + 2], _stamp(rng)))


def host_columns(conn) -> dict[str, list[str]]:
    """Each host table's columns, in order (as the host made them, before migrate)."""
    rows = conn.execute("SELECT table_name, column_name FROM information_schema.columns "
                        "WHERE table_schema = 'public' AND table_name = ANY(%s) ORDER BY table_name, ordinal_position",
                        (list(HOST_TABLES),)).fetchall()
    columns: dict[str, list[str]] = {}
    for row in rows:
        table, column = (row["table_name"], row["column_name"]) if isinstance(row, dict) else row
        columns.setdefault(table, []).append(column)
    return columns


def host_rows(conn, columns: dict[str, list[str]]) -> dict[str, dict[str, str]]:
    """{table: {first column's value: the row's exact stored text in the host's columns}}."""
    found = {}
    for table, names in columns.items():
        select = psycopg.sql.SQL("SELECT t::text AS text, {key}::text AS key FROM (SELECT {cols} FROM {table}) t").format(
            key=psycopg.sql.Identifier(names[0]), table=psycopg.sql.Identifier(table),
            cols=psycopg.sql.SQL(", ").join(map(psycopg.sql.Identifier, names)))
        found[table] = {}
        for row in conn.execute(select):
            key, text = (row["key"], row["text"]) if isinstance(row, dict) else (row[1], row[0])
            found[table][key] = text
    return found


def checksum(rows: dict[str, dict[str, str]]) -> str:
    digest = hashlib.sha256()
    for table in sorted(rows):
        for key in sorted(rows[table]):
            digest.update(f"{table}\0{key}\0{rows[table][key]}\n".encode())
    return digest.hexdigest()
