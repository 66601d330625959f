-- Way back from 0008_host_indexes. Never run automatically.
-- Drops the indexes on host tables that 0008 built (recorded in
-- model_eval_gate_host_objects), and only those: an index of the same name
-- the host had before is not ours and stays.
DO $$
DECLARE
    object record;
BEGIN
    FOR object IN SELECT object_name FROM model_eval_gate_host_objects WHERE kind = 'index' LOOP
        EXECUTE format('DROP INDEX IF EXISTS %I', object.object_name);
    END LOOP;
    DELETE FROM model_eval_gate_host_objects WHERE kind = 'index';
END;
$$;
