-- Way back from 0003_lineage_guard. Never run automatically.
-- After this, nothing but the gate's Python keeps one latest version per
-- lineage. lineage_id is dropped only if 0003 added it (it is recorded in
-- model_eval_gate_host_objects, and 0001's way back drops recorded columns);
-- here only the triggers and functions go.
DROP TRIGGER IF EXISTS artifacts_one_latest_model_per_lineage ON artifacts;
DROP TRIGGER IF EXISTS artifacts_propagate_lineage ON artifacts;
DROP TRIGGER IF EXISTS artifacts_set_lineage ON artifacts;
DROP FUNCTION IF EXISTS model_eval_gate_check_one_latest();
DROP FUNCTION IF EXISTS model_eval_gate_propagate_lineage();
DROP FUNCTION IF EXISTS model_eval_gate_set_lineage();
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM model_eval_gate_host_objects
                WHERE kind = 'column' AND table_name = 'artifacts' AND object_name = 'lineage_id') THEN
        ALTER TABLE artifacts DROP COLUMN IF EXISTS lineage_id;
        DELETE FROM model_eval_gate_host_objects
         WHERE kind = 'column' AND table_name = 'artifacts' AND object_name = 'lineage_id';
    END IF;
END;
$$;
