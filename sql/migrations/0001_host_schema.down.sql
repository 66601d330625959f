-- Way back from 0001_host_schema: removes exactly what 0001 created, as
-- recorded in model_eval_gate_host_objects, and nothing the host made.
--
-- A host table the gate found stays, with every row and column it had; only
-- columns and constraints the gate added to it are dropped. A table the gate
-- created is dropped with its rows (export them first if the platform has
-- started to use it: pg_dump -t TABLE).
DO $$
DECLARE
    object record;
BEGIN
    IF to_regclass('model_eval_gate_host_objects') IS NULL THEN
        RETURN;  -- nothing recorded, nothing of ours to remove
    END IF;
    FOR object IN SELECT table_name, object_name FROM model_eval_gate_host_objects
                   WHERE kind = 'constraint' ORDER BY table_name, object_name LOOP
        IF to_regclass(format('%I', object.table_name)) IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %I DROP CONSTRAINT IF EXISTS %I', object.table_name, object.object_name);
        END IF;
    END LOOP;
    FOR object IN SELECT table_name, object_name FROM model_eval_gate_host_objects
                   WHERE kind = 'column' ORDER BY table_name, object_name LOOP
        IF to_regclass(format('%I', object.table_name)) IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %I DROP COLUMN IF EXISTS %I', object.table_name, object.object_name);
        END IF;
    END LOOP;
    -- Children before parents: the history references universal_artifacts.
    FOR object IN SELECT table_name FROM model_eval_gate_host_objects
                   WHERE kind = 'table'
                   ORDER BY array_position(ARRAY['tool_calls', 'tickets', 'world_model_improvements', 'benchmarks',
                                                 'artifact_lifecycle_history', 'universal_artifacts', 'artifacts'],
                                           table_name) NULLS FIRST LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I', object.table_name);
    END LOOP;
END;
$$;

DROP FUNCTION IF EXISTS model_eval_gate_new_artifact_lifecycle_history_id();
DROP FUNCTION IF EXISTS model_eval_gate_new_world_model_improvements_id();
DROP FUNCTION IF EXISTS model_eval_gate_new_tickets_id();
DROP FUNCTION IF EXISTS model_eval_gate_new_tool_calls_id();
DROP FUNCTION IF EXISTS model_eval_gate_define_id_function(text);
DROP FUNCTION IF EXISTS model_eval_gate_add_host_foreign_key(text, text, text);
DROP FUNCTION IF EXISTS model_eval_gate_add_host_column(text, text, text);
DROP FUNCTION IF EXISTS model_eval_gate_create_host_table(text, text);
DROP TABLE IF EXISTS model_eval_gate_host_objects;
