-- Way back from 0004_gate_tables. Never run automatically.
-- Drops the queue (with its history of verdicts) and the evaluation cache.
DROP TRIGGER IF EXISTS model_versions_enqueue_candidate ON model_versions;
DROP FUNCTION IF EXISTS model_eval_gate_enqueue_candidate();
DROP FUNCTION IF EXISTS model_eval_gate_request(text, text, text);
DROP TABLE IF EXISTS eval_results;
DROP TABLE IF EXISTS gate_jobs;
