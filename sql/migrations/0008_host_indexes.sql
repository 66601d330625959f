-- migrate: no-transaction
--
-- Indexes on host tables, built CONCURRENTLY: the host keeps reading and
-- writing while they are built. That cannot happen inside a transaction, so
-- the runner executes this file one statement at a time (the line above).
-- Each index is first recorded in model_eval_gate_host_objects if it does not
-- exist yet, so the way back drops only indexes the gate built; every
-- statement is idempotent, so an interrupted run is finished by the next
-- `migrate`. (An interrupted CONCURRENTLY build leaves an INVALID index;
-- `migrate --check` names it and says how to drop it.)
--
-- The two unique indexes are the database side of "decided once": one
-- promotion event per version, one open rejection ticket per candidate.
-- `migrate --check` names existing host rows that would break them before
-- anything runs.
--
-- Last, the foreign keys 0001 added NOT VALID to a found artifacts table are
-- validated: VALIDATE CONSTRAINT reads the table under a lock that lets
-- writes through.

INSERT INTO model_eval_gate_host_objects (kind, table_name, object_name)
SELECT 'index', 'artifacts', 'idx_artifacts_parent_version' WHERE to_regclass('idx_artifacts_parent_version') IS NULL
ON CONFLICT DO NOTHING;
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_artifacts_parent_version
    ON artifacts (parent_version_id);

INSERT INTO model_eval_gate_host_objects (kind, table_name, object_name)
SELECT 'index', 'artifacts', 'idx_artifacts_type' WHERE to_regclass('idx_artifacts_type') IS NULL
ON CONFLICT DO NOTHING;
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_artifacts_type
    ON artifacts (artifact_type);

INSERT INTO model_eval_gate_host_objects (kind, table_name, object_name)
SELECT 'index', 'artifacts', 'idx_artifacts_lineage' WHERE to_regclass('idx_artifacts_lineage') IS NULL
ON CONFLICT DO NOTHING;
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_artifacts_lineage
    ON artifacts (lineage_id) WHERE artifact_type = 'model';

INSERT INTO model_eval_gate_host_objects (kind, table_name, object_name)
SELECT 'index', 'artifact_lifecycle_history', 'idx_lifecycle_history_artifact' WHERE to_regclass('idx_lifecycle_history_artifact') IS NULL
ON CONFLICT DO NOTHING;
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_lifecycle_history_artifact
    ON artifact_lifecycle_history (artifact_id);

INSERT INTO model_eval_gate_host_objects (kind, table_name, object_name)
SELECT 'index', 'world_model_improvements', 'idx_wmi_target' WHERE to_regclass('idx_wmi_target') IS NULL
ON CONFLICT DO NOTHING;
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_wmi_target
    ON world_model_improvements (target_artifact_id);

INSERT INTO model_eval_gate_host_objects (kind, table_name, object_name)
SELECT 'index', 'tickets', 'idx_tickets_artifact' WHERE to_regclass('idx_tickets_artifact') IS NULL
ON CONFLICT DO NOTHING;
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_tickets_artifact
    ON tickets (artifact_id);

INSERT INTO model_eval_gate_host_objects (kind, table_name, object_name)
SELECT 'index', 'tool_calls', 'idx_tool_calls_name' WHERE to_regclass('idx_tool_calls_name') IS NULL
ON CONFLICT DO NOTHING;
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_tool_calls_name
    ON tool_calls (tool_name, started_at);

INSERT INTO model_eval_gate_host_objects (kind, table_name, object_name)
SELECT 'index', 'world_model_improvements', 'world_model_improvements_one_promotion' WHERE to_regclass('world_model_improvements_one_promotion') IS NULL
ON CONFLICT DO NOTHING;
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS world_model_improvements_one_promotion
    ON world_model_improvements (target_artifact_id) WHERE event_type = 'model_version_promoted';

INSERT INTO model_eval_gate_host_objects (kind, table_name, object_name)
SELECT 'index', 'tickets', 'tickets_one_open_rejection' WHERE to_regclass('tickets_one_open_rejection') IS NULL
ON CONFLICT DO NOTHING;
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS tickets_one_open_rejection
    ON tickets (artifact_id) WHERE ticket_type = 'candidate-rejected' AND status = 'open';

DO $$
DECLARE
    object record;
BEGIN
    FOR object IN SELECT h.table_name, h.object_name FROM model_eval_gate_host_objects h
                    JOIN pg_constraint c ON c.conname = h.object_name
                                        AND c.conrelid = to_regclass(format('%I', h.table_name))
                   WHERE h.kind = 'constraint' AND NOT c.convalidated LOOP
        EXECUTE format('ALTER TABLE %I VALIDATE CONSTRAINT %I', object.table_name, object.object_name);
    END LOOP;
END;
$$;
