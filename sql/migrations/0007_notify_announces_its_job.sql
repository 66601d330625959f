-- The notification model_eval_gate_request sends (for a trigger-queued
-- candidate, a re-gate from SQL or the CLI) says which job it announces:
-- {"job": <id>, "artifact_id": "<id>"}. The daemon treats such a payload as
-- its own announcement (the durable row exists already: it only wakes the
-- workers), so a bare `NOTIFY model_eval_gate, '<artifact id>'` from a person
-- is always a request of its own, never mistaken for a late copy of the
-- trigger's and dropped. Only the function's last statement changes.
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
