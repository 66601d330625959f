-- Way back from 0003_lineage_guard. Never run automatically.
-- After this, nothing but the gate's Python keeps one latest version per lineage.
DROP INDEX IF EXISTS idx_artifacts_lineage;
DROP INDEX IF EXISTS artifacts_one_latest_model_per_lineage;
DROP TRIGGER IF EXISTS artifacts_propagate_lineage ON artifacts;
DROP TRIGGER IF EXISTS artifacts_set_lineage ON artifacts;
DROP FUNCTION IF EXISTS model_eval_gate_propagate_lineage();
DROP FUNCTION IF EXISTS model_eval_gate_set_lineage();
ALTER TABLE artifacts DROP COLUMN IF EXISTS lineage_id;
