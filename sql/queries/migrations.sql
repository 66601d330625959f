-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS model_eval_gate_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- name: try_lock_migrations
-- Polled rather than waited for: a session blocked in pg_advisory_lock holds
-- a snapshot, and CREATE INDEX CONCURRENTLY in the session that holds the
-- lock waits for every such snapshot to end (a deadlock).
SELECT pg_try_advisory_lock(hashtext('model_eval_gate.migrate')) AS locked;

-- name: unlock_migrations
SELECT pg_advisory_unlock(hashtext('model_eval_gate.migrate'));

-- name: applied_migrations
SELECT version, name, checksum, applied_at FROM model_eval_gate_migrations ORDER BY version;

-- name: record_migration
INSERT INTO model_eval_gate_migrations (version, name, checksum) VALUES (%(version)s, %(name)s, %(checksum)s);

-- name: forget_migration
DELETE FROM model_eval_gate_migrations WHERE version = %(version)s;

-- name: has_vector_type
SELECT to_regtype('vector') IS NOT NULL AS present;

-- name: migrations_table_exists
-- Read-only: whether this database was ever migrated (the CLI checks before a command).
SELECT to_regclass('model_eval_gate_migrations') IS NOT NULL AS present;

-- name: read_only_transaction
-- The compatibility check's transaction: whatever it runs, it cannot write.
SET TRANSACTION READ ONLY;

-- name: set_migration_lock_timeout
-- A migration waiting for a lock on a busy host table would queue every host
-- query behind it; give up instead, and say so.
SELECT set_config('lock_timeout', %(lock_timeout)s, false);

-- name: session_probe
-- Through a transaction pooler each statement may run on another server
-- connection: a session advisory lock is then not held where we run.
SELECT pg_backend_pid() AS pid,
       EXISTS (SELECT 1 FROM pg_locks
                WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted) AS holds_advisory_lock;

-- name: backfill_lineage_batch
-- Existing model rows get their lineage root a batch at a time, each batch
-- its own short transaction; parents before children (a row is ready once
-- its parent has a lineage, is not a model, or is missing). The set-lineage
-- trigger (0003) computes the same value from the parent.
UPDATE artifacts AS a
   SET lineage_id = ready.lineage_id
  FROM (SELECT child.id, COALESCE(parent.lineage_id, parent.id, child.id) AS lineage_id
          FROM artifacts child
          LEFT JOIN artifacts parent ON parent.id = child.parent_version_id
         WHERE child.artifact_type = 'model' AND child.lineage_id IS NULL
           AND (child.parent_version_id IS NULL OR parent.id IS NULL
                OR parent.artifact_type IS DISTINCT FROM 'model' OR parent.lineage_id IS NOT NULL)
         LIMIT %(batch)s) AS ready
 WHERE a.id = ready.id;

-- name: models_without_lineage
SELECT array_agg(id::text ORDER BY id) AS ids FROM artifacts WHERE artifact_type = 'model' AND lineage_id IS NULL;

-- name: refresh_host_id_functions
-- The host may have changed an id column since 0001 (given it a default):
-- the gate's id functions follow.
SELECT model_eval_gate_define_id_function(t)
  FROM unnest(ARRAY['artifact_lifecycle_history', 'world_model_improvements', 'tickets', 'tool_calls']) AS t
 WHERE to_regprocedure('model_eval_gate_define_id_function(text)') IS NOT NULL;

-- name: fingerprints_feature
SELECT enabled, detail FROM model_eval_gate_features WHERE name = 'fingerprints';

-- name: setup_fingerprints
SELECT model_eval_gate_setup_fingerprints() AS enabled;

-- name: has_function
SELECT to_regprocedure(%(signature)s) IS NOT NULL AS present;

-- name: has_table
SELECT to_regclass(%(name)s) IS NOT NULL AS present;
