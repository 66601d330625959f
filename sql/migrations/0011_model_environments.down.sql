-- Way back from 0011_model_environments. Never run automatically.
-- Jobs lose their routing (any daemon may claim a job that needed an
-- accelerator) and evaluations forget which environment they ran in.
DROP TRIGGER IF EXISTS gate_jobs_route ON gate_jobs;
DROP FUNCTION IF EXISTS model_eval_gate_route_job();
DROP FUNCTION IF EXISTS model_eval_gate_required_capability(text);
ALTER TABLE IF EXISTS gate_jobs DROP COLUMN IF EXISTS required_capability;
ALTER TABLE IF EXISTS eval_results DROP COLUMN IF EXISTS environment_hash;
