-- Host schema: the tables a research platform may already have.
--
-- Everything here is created only where absent, and lineage columns are added
-- with ADD COLUMN IF NOT EXISTS, so this migration is safe on a database that
-- already holds a host's artifacts table: it never rewrites or drops host data.

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE IF NOT EXISTS artifacts (
    id                text PRIMARY KEY,
    artifact_type     text NOT NULL,
    title             text NOT NULL DEFAULT '',
    metadata          jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_by        text,
    created_at        timestamptz NOT NULL DEFAULT now()
);

-- Lineage columns, for hosts whose artifacts table predates versioning.
ALTER TABLE artifacts ADD COLUMN IF NOT EXISTS version_number    integer NOT NULL DEFAULT 1;
ALTER TABLE artifacts ADD COLUMN IF NOT EXISTS parent_version_id text REFERENCES artifacts(id);
ALTER TABLE artifacts ADD COLUMN IF NOT EXISTS version_tag       text;
ALTER TABLE artifacts ADD COLUMN IF NOT EXISTS changelog         text;
ALTER TABLE artifacts ADD COLUMN IF NOT EXISTS is_latest         integer NOT NULL DEFAULT 1
    CHECK (is_latest IN (0, 1));
ALTER TABLE artifacts ADD COLUMN IF NOT EXISTS lifecycle_state   text NOT NULL DEFAULT 'active';
ALTER TABLE artifacts ADD COLUMN IF NOT EXISTS superseded_by     text REFERENCES artifacts(id);
ALTER TABLE artifacts ADD COLUMN IF NOT EXISTS origin_type       text;
ALTER TABLE artifacts ADD COLUMN IF NOT EXISTS origin_url        text;

CREATE INDEX IF NOT EXISTS idx_artifacts_parent_version ON artifacts (parent_version_id);
CREATE INDEX IF NOT EXISTS idx_artifacts_type ON artifacts (artifact_type);

-- One row per artifact of any kind; the lifecycle history hangs off it.
CREATE TABLE IF NOT EXISTS universal_artifacts (
    artifact_id      text PRIMARY KEY,
    artifact_type    text NOT NULL,
    title            text,
    lifecycle_state  text NOT NULL DEFAULT 'active',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS artifact_lifecycle_history (
    id                   bigserial PRIMARY KEY,
    artifact_id          text NOT NULL REFERENCES universal_artifacts(artifact_id),
    from_state           text,
    to_state             text NOT NULL,
    reason               text,
    actor                text NOT NULL,
    related_artifact_id  text,
    metadata             jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_lifecycle_history_artifact ON artifact_lifecycle_history (artifact_id);

CREATE TABLE IF NOT EXISTS benchmarks (
    id               text PRIMARY KEY,
    title            text,
    task             text NOT NULL,
    primary_metric   text NOT NULL,
    manifest         jsonb NOT NULL DEFAULT '{}'::jsonb,
    path             text,
    split_hash       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS world_model_improvements (
    id                   bigserial PRIMARY KEY,
    event_type           text NOT NULL,
    target_artifact_id   text NOT NULL,
    source_artifact_id   text,
    magnitude            text,
    detection_metadata   jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_wmi_target ON world_model_improvements (target_artifact_id);

CREATE TABLE IF NOT EXISTS tickets (
    id            bigserial PRIMARY KEY,
    ticket_type   text NOT NULL,
    artifact_id   text,
    assignee      text,
    title         text NOT NULL,
    body          text,
    status        text NOT NULL DEFAULT 'open',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_tickets_artifact ON tickets (artifact_id);

CREATE TABLE IF NOT EXISTS tool_calls (
    id               bigserial PRIMARY KEY,
    tool_name        text NOT NULL,
    arguments        jsonb NOT NULL DEFAULT '{}'::jsonb,
    status           text NOT NULL,
    duration_ms      double precision,
    error            text,
    result_summary   jsonb,
    actor            text,
    started_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_tool_calls_name ON tool_calls (tool_name, started_at);
