-- Way back from 0010_bounded_text. Never run automatically.
DROP TRIGGER IF EXISTS gate_jobs_reason_bounded ON gate_jobs;
DROP TRIGGER IF EXISTS artifacts_model_metadata_bounded ON artifacts;
DROP FUNCTION IF EXISTS model_eval_gate_bounded_request();
DROP FUNCTION IF EXISTS model_eval_gate_bounded_metadata();
DROP FUNCTION IF EXISTS model_eval_gate_jsonb_depth(jsonb, integer);
ALTER TABLE eval_results DROP COLUMN IF EXISTS memory_scope;
ALTER TABLE eval_results DROP COLUMN IF EXISTS peak_memory_bytes;
