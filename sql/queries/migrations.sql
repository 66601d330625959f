-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS model_eval_gate_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- name: lock_migrations
-- Session-level advisory lock: two migrators queue up instead of racing.
SELECT pg_advisory_lock(hashtext('model_eval_gate.migrate'));

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
