-- Verdict integrity (issue 10): what an author can no longer steer.
--
-- 1. An artifact id is a path component (artifact_root/models/<id>): the
--    database itself refuses a model version whose id is not one safe
--    component, so a plain SQL insert cannot bind "..", "." or "a/../b".
--    NOT VALID: rows that predate the rule are left alone (the gate refuses
--    to run them instead); every new or updated row is checked.
-- 2. The evaluation cache is keyed by the run conditions too (run_key: a hash
--    of sandboxed or not, interpreter and environment, limits), so an
--    evaluation made unsandboxed is never reused by a sandboxed gate. Rows
--    stored before this migration carry run_key 'unkeyed' and match nothing.
--    The uniqueness includes environment_hash (0011) as well: one version
--    evaluated in two environments is two stored results, not one.

-- The durable gate request refuses an unsafe id too (older rows included).
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
    -- The id becomes a path component of the model directory: refuse anything
    -- but one safe component, even for rows older than the CHECK (0012).
    IF p_artifact_id IS NULL OR p_artifact_id !~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$' THEN
        RAISE EXCEPTION 'model_eval_gate: artifact id % is not one safe path component', quote_literal(p_artifact_id)
            USING ERRCODE = 'check_violation',
                  HINT = 'ids are 1-200 characters from A-Z a-z 0-9 _ . : -, starting with a letter or digit';
    END IF;
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


ALTER TABLE model_versions DROP CONSTRAINT IF EXISTS model_versions_artifact_id_is_path_component;
ALTER TABLE model_versions ADD CONSTRAINT model_versions_artifact_id_is_path_component
    CHECK (artifact_id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$') NOT VALID;

ALTER TABLE eval_results ADD COLUMN IF NOT EXISTS run_key text NOT NULL DEFAULT 'unkeyed';
ALTER TABLE eval_results DROP CONSTRAINT IF EXISTS eval_results_artifact_id_benchmark_id_split_hash_model_hash_key;
CREATE UNIQUE INDEX IF NOT EXISTS eval_results_cache_key
    ON eval_results (artifact_id, benchmark_id, split_hash, model_hash, environment_hash, run_key);
