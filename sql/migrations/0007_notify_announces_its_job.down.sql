-- Way back from 0007_notify_announces_its_job: the notification carries the bare
-- artifact id again (as 0004 defined it). Never run automatically.
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

    -- Only the id travels: NOTIFY payloads are limited to 8000 bytes, and the
    -- notification is a hint; the row above is the durable request.
    PERFORM pg_notify('model_eval_gate', p_artifact_id);
    RETURN v_job;
END;
$$;
