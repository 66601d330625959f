-- Down of 0012 (documented, never run automatically). Deletes evaluations
-- that would collide under the old, shorter cache key.
DELETE FROM eval_results e USING eval_results f
 WHERE e.artifact_id = f.artifact_id AND e.benchmark_id = f.benchmark_id AND e.split_hash = f.split_hash
   AND e.model_hash = f.model_hash AND e.id > f.id;
DROP INDEX IF EXISTS eval_results_cache_key;
ALTER TABLE eval_results DROP COLUMN IF EXISTS run_key;
ALTER TABLE eval_results ADD CONSTRAINT eval_results_artifact_id_benchmark_id_split_hash_model_hash_key
    UNIQUE (artifact_id, benchmark_id, split_hash, model_hash);
ALTER TABLE model_versions DROP CONSTRAINT IF EXISTS model_versions_artifact_id_is_path_component;

-- The request function as 0007 defined it (0008-0011 left it alone).
CREATE OR REPLACE FUNCTION model_eval_gate_request(
    p_artifact_id  text,
    p_reason       text DEFAULT 'manual',
    p_requested_by text DEFAULT current_user
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_state  text;
    v_job    bigint;
BEGIN
    SELECT promotion_state INTO v_state FROM model_versions WHERE artifact_id = p_artifact_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model_eval_gate: % is not a registered model version', p_artifact_id
            USING ERRCODE = 'no_data_found';
    END IF;
    IF v_state IN ('promoted', 'superseded') THEN
        RAISE EXCEPTION 'model_eval_gate: % is already %; a decided promotion is never re-gated', p_artifact_id, v_state
            USING ERRCODE = 'check_violation',
                  HINT = 'register a new candidate version instead';
    END IF;

    INSERT INTO gate_jobs (artifact_id, reason, requested_by)
    VALUES (p_artifact_id, COALESCE(p_reason, 'manual'), COALESCE(p_requested_by, current_user))
    ON CONFLICT (artifact_id) WHERE status IN ('queued', 'running') DO NOTHING
    RETURNING id INTO v_job;

    IF v_job IS NULL THEN
        SELECT id INTO v_job FROM gate_jobs
         WHERE artifact_id = p_artifact_id AND status IN ('queued', 'running');
    END IF;

    -- NOTIFY payloads are limited to 8000 bytes, and the notification is a
    -- hint; the row above is the durable request. The JSON object marks it
    -- as this function's own announcement of job v_job.
    PERFORM pg_notify('model_eval_gate',
                      json_build_object('job', v_job, 'artifact_id', p_artifact_id)::text);
    RETURN v_job;
END;
$$;
