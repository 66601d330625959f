-- Model environments and worker capabilities (docs/environments.md).
--
-- A job may need a capability that only some daemons offer (an accelerator).
-- The candidate's metadata says so (evaluation_resources.accelerator); a
-- BEFORE INSERT trigger copies it onto the job, so every way a job is made
-- (the candidate trigger, model_eval_gate_request, a NOTIFY) routes it the
-- same, and a daemon claims it only if MODEL_EVAL_GATE_WORKER_CAPABILITIES
-- names it. A job that needs nothing (NULL) is claimed by any daemon.
ALTER TABLE gate_jobs ADD COLUMN IF NOT EXISTS required_capability text;

CREATE OR REPLACE FUNCTION model_eval_gate_required_capability(p_artifact_id text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_capability text;
BEGIN
    -- Read through text: a host whose metadata column is text (not jsonb)
    -- routes the same; metadata that is not JSON needs no capability.
    SELECT lower(((metadata::text)::jsonb) -> 'evaluation_resources' ->> 'accelerator')
      INTO v_capability
      FROM artifacts WHERE id = p_artifact_id;
    RETURN NULLIF(v_capability, '');
EXCEPTION WHEN invalid_text_representation THEN
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION model_eval_gate_route_job()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
BEGIN
    IF NEW.required_capability IS NULL THEN
        NEW.required_capability := model_eval_gate_required_capability(NEW.artifact_id);
    END IF;
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS gate_jobs_route ON gate_jobs;
CREATE TRIGGER gate_jobs_route BEFORE INSERT ON gate_jobs
    FOR EACH ROW EXECUTE FUNCTION model_eval_gate_route_job();

-- Which environment an evaluation ran in: '' for the default interpreter, or
-- the content address of the model's declared environment.
ALTER TABLE eval_results ADD COLUMN IF NOT EXISTS environment_hash text NOT NULL DEFAULT '';
