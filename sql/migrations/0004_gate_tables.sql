-- Gate-owned tables: the job queue, the evaluation cache, and the database
-- side of "nothing is decided twice".
--
-- artifact_id and benchmark_id are soft references (no foreign key): a job's
-- verdict and the evaluations behind it are history, and outlive the
-- artifact or benchmark row the host may delete. The unique indexes this
-- side of "decided once" needs on the host's world_model_improvements and
-- tickets are built CONCURRENTLY by 0008.

CREATE TABLE IF NOT EXISTS gate_jobs (
    id             bigserial PRIMARY KEY,
    artifact_id    text NOT NULL,
    reason         text NOT NULL DEFAULT 'registered',
    requested_by   text NOT NULL DEFAULT current_user,
    status         text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    attempt        integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts   integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    run_after      timestamptz NOT NULL DEFAULT now(),
    worker_id      text,
    lease_until    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz,
    outcome        text,
    result         jsonb,
    error          text,
    -- A running job always has an owner and a lease; only a running job has a
    -- lease (worker_id stays on finished jobs: who decided it).
    CHECK (CASE WHEN status = 'running' THEN worker_id IS NOT NULL AND lease_until IS NOT NULL
                ELSE lease_until IS NULL END)
);

-- At most one queued-or-running job per artifact: duplicate requests and
-- duplicate NOTIFYs collapse onto it.
CREATE UNIQUE INDEX IF NOT EXISTS gate_jobs_one_active_per_artifact
    ON gate_jobs (artifact_id) WHERE status IN ('queued', 'running');
-- The claim scans only queued rows, however many finished jobs accumulate.
CREATE INDEX IF NOT EXISTS gate_jobs_claimable
    ON gate_jobs (run_after, id) WHERE status = 'queued';
-- The sweep finds expired leases among running rows only.
CREATE INDEX IF NOT EXISTS gate_jobs_leases
    ON gate_jobs (lease_until) WHERE status = 'running';
CREATE INDEX IF NOT EXISTS gate_jobs_artifact ON gate_jobs (artifact_id, id);

-- One evaluation of one model directory on one split: the parent's result is
-- reused while neither its directory nor the split changed.
CREATE TABLE IF NOT EXISTS eval_results (
    id               bigserial PRIMARY KEY,
    artifact_id      text NOT NULL,
    benchmark_id     text NOT NULL,
    split_hash       text NOT NULL,
    model_hash       text NOT NULL,
    predictions      bytea NOT NULL,        -- float64, little-endian, benchmark example order
    prediction_shape integer[] NOT NULL,
    n_examples       integer NOT NULL CHECK (n_examples > 0),
    self_reported    boolean NOT NULL DEFAULT false,
    sandboxed        boolean NOT NULL,
    wall_seconds     double precision,
    cpu_seconds      double precision,
    peak_rss_bytes   bigint,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (artifact_id, benchmark_id, split_hash, model_hash)
);

-- The durable way to ask for a gate from SQL. Returns the job id (an existing
-- queued or running job is reused). Refuses what must never be re-gated.
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

-- A training pipeline's plain INSERT of a candidate is a gate request.
CREATE OR REPLACE FUNCTION model_eval_gate_enqueue_candidate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM model_eval_gate_request(NEW.artifact_id, 'registered', current_user);
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS model_versions_enqueue_candidate ON model_versions;
CREATE TRIGGER model_versions_enqueue_candidate
    AFTER INSERT ON model_versions
    FOR EACH ROW WHEN (NEW.promotion_state = 'candidate')
    EXECUTE FUNCTION model_eval_gate_enqueue_candidate();
