-- name: request_gate
SELECT model_eval_gate_request(%(artifact_id)s, %(reason)s, %(requested_by)s) AS job_id;

-- name: claim_job_for_artifact
-- Claim the queued job of one artifact (a direct `gate` call); a job another
-- worker holds is skipped, not waited for.
UPDATE gate_jobs
   SET status = 'running', worker_id = %(worker_id)s, attempt = attempt + 1,
       lease_until = now() + make_interval(secs => %(lease_seconds)s),
       started_at = now(), error = NULL
 WHERE id = (SELECT id FROM gate_jobs
              WHERE artifact_id = %(artifact_id)s AND status = 'queued'
              FOR UPDATE SKIP LOCKED)
RETURNING id, artifact_id, reason, requested_by, attempt, max_attempts, worker_id, lease_until;

-- name: claim_next_job
-- The daemon's claim: oldest runnable job, skipping rows other workers hold
-- and jobs that need a capability this daemon does not offer.
-- The claiming daemon's retry budget (MODEL_EVAL_GATE_MAX_ATTEMPTS) becomes
-- the job's, so the sweep and the worker agree on when to stop retrying; a
-- job already past a smaller budget still gets the attempt it was claimed for.
UPDATE gate_jobs
   SET status = 'running', worker_id = %(worker_id)s, attempt = attempt + 1,
       max_attempts = GREATEST(attempt + 1, %(max_attempts)s),
       lease_until = now() + make_interval(secs => %(lease_seconds)s),
       started_at = now(), error = NULL
 WHERE id = (SELECT id FROM gate_jobs
              WHERE status = 'queued' AND run_after <= now()
                AND (required_capability IS NULL
                     OR required_capability = ANY(%(capabilities)s::text[]))
              ORDER BY run_after, id
              FOR UPDATE SKIP LOCKED
              LIMIT 1)
RETURNING id, artifact_id, reason, requested_by, attempt, max_attempts, worker_id, lease_until,
          (SELECT parent_version_id FROM artifacts WHERE artifacts.id = gate_jobs.artifact_id) AS parent_id;

-- name: active_job_for_artifact
SELECT id, status, worker_id, lease_until, attempt FROM gate_jobs
 WHERE artifact_id = %(artifact_id)s AND status IN ('queued', 'running');

-- name: heartbeat_job
UPDATE gate_jobs SET lease_until = now() + make_interval(secs => %(lease_seconds)s)
 WHERE id = %(job_id)s AND worker_id = %(worker_id)s AND attempt = %(attempt)s AND status = 'running'
RETURNING lease_until;

-- name: fence_and_finish_job
-- The fence: only the worker that holds this attempt's live lease finishes
-- the job. Run inside the transaction that applies the verdict, so a stale
-- worker's whole write rolls back.
UPDATE gate_jobs
   SET status = %(status)s, outcome = %(outcome)s, result = %(result)s::jsonb, error = %(error)s,
       finished_at = now(), lease_until = NULL
 WHERE id = %(job_id)s AND worker_id = %(worker_id)s AND attempt = %(attempt)s
   AND status = 'running' AND lease_until > now()
RETURNING id;

-- name: release_job
-- Hand a job back to the queue (shutdown, or a transient failure to retry later).
UPDATE gate_jobs
   SET status = 'queued', worker_id = NULL, lease_until = NULL,
       run_after = now() + make_interval(secs => %(delay_seconds)s), error = %(error)s,
       attempt = CASE WHEN %(count_attempt)s THEN attempt ELSE attempt - 1 END
 WHERE id = %(job_id)s AND worker_id = %(worker_id)s AND attempt = %(attempt)s AND status = 'running'
RETURNING id;

-- name: fail_job
UPDATE gate_jobs
   SET status = 'failed', error = %(error)s, finished_at = now(), lease_until = NULL
 WHERE id = %(job_id)s AND worker_id = %(worker_id)s AND attempt = %(attempt)s AND status = 'running'
RETURNING id;

-- name: requeue_expired_leases
-- The sweep: a worker that died leaves a running job whose lease ran out.
-- Jobs with attempts left go back to the queue; the others fail.
UPDATE gate_jobs
   SET status = CASE WHEN attempt < max_attempts THEN 'queued' ELSE 'failed' END,
       finished_at = CASE WHEN attempt < max_attempts THEN NULL ELSE now() END,
       error = 'lease expired (worker ' || worker_id || ' stopped heartbeating) at attempt ' || attempt,
       worker_id = CASE WHEN attempt < max_attempts THEN NULL ELSE worker_id END,
       lease_until = NULL, run_after = now()
 WHERE id IN (SELECT id FROM gate_jobs
               WHERE status = 'running' AND lease_until < now()
               FOR UPDATE SKIP LOCKED)
RETURNING id, artifact_id, status, attempt;

-- name: cancel_queued_jobs_for_artifact
UPDATE gate_jobs SET status = 'cancelled', finished_at = now(), error = %(why)s
 WHERE artifact_id = %(artifact_id)s AND status = 'queued'
RETURNING id;
