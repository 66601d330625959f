-- Queries of the daemon (worker.py) and of its operator commands (`status`).
-- The queue's own statements (claim, heartbeat, fence, release, fail, sweep)
-- live in jobs.sql.

-- name: listen_gate_channel
LISTEN model_eval_gate;

-- name: notify_gate_channel
-- The LISTEN probe (worker.py _listen_works), sent from a second connection.
SELECT pg_notify('model_eval_gate', %(payload)s);

-- name: round_trip
-- The listening connection's periodic proof of life: a half-open connection
-- raises no error while it only waits for notifications.
SELECT 1 AS alive;

-- name: request_gate_for_notify
-- A bare NOTIFY with an artifact id (never the queue's own announcements,
-- which carry their job: worker.announced_job) is a request. It joins the
-- artifact's queued or running job if there is one (a sender may repeat
-- itself a thousand times); anything else is a new request, made the durable
-- way (refusing promoted and superseded versions with a clear error), however
-- soon after the last verdict it comes. COALESCE evaluates its second argument
-- only when no active job absorbs the notification.
WITH absorbing AS (
    SELECT id, status FROM gate_jobs
     WHERE artifact_id = %(artifact_id)s AND status IN ('queued', 'running')
     ORDER BY id DESC
     LIMIT 1
)
SELECT COALESCE((SELECT id FROM absorbing),
                model_eval_gate_request(%(artifact_id)s, 'notify', %(requested_by)s)) AS job_id,
       (SELECT status FROM absorbing) AS absorbed_by_status;

-- name: cancel_claimed_job
-- A claimed job with nothing left to gate (the version was decided meanwhile,
-- e.g. force-promoted): finished as cancelled, fenced like every other write.
UPDATE gate_jobs
   SET status = 'cancelled', error = %(error)s, finished_at = now(), lease_until = NULL
 WHERE id = %(job_id)s AND worker_id = %(worker_id)s AND attempt = %(attempt)s AND status = 'running'
RETURNING id;

-- name: job_by_id
SELECT id, artifact_id, status, attempt, max_attempts, worker_id, lease_until, run_after, outcome, error
  FROM gate_jobs WHERE id = %(job_id)s;

-- name: daemons_connected
-- One control connection per running daemon (application_name is visible to
-- every role, unlike the query text).
SELECT count(*) AS daemons FROM pg_stat_activity
 WHERE datname = current_database() AND application_name = 'model-eval-gate-daemon';

-- name: status_queue
SELECT count(*) FILTER (WHERE run_after <= now()) AS due,
       count(*) FILTER (WHERE run_after > now()) AS waiting,
       min(run_after) FILTER (WHERE run_after > now()) AS next_run_after
  FROM gate_jobs
 WHERE status = 'queued';

-- name: status_running
SELECT id, artifact_id, worker_id, attempt, max_attempts, reason, started_at,
       extract(epoch FROM lease_until - now()) AS lease_seconds_left,
       extract(epoch FROM now() - started_at) AS running_seconds
  FROM gate_jobs
 WHERE status = 'running'
 ORDER BY started_at, id;

-- name: status_failed
SELECT id, artifact_id, attempt, max_attempts, worker_id, finished_at, error,
       count(*) OVER () AS total
  FROM gate_jobs
 WHERE status = 'failed'
 ORDER BY finished_at DESC NULLS LAST, id DESC
 LIMIT %(limit)s;

-- name: status_decisions
-- The last verdicts the gate applied, with the primary metric's row of each
-- result's metric table (errors and root versions may have no delta).
SELECT j.id, j.artifact_id AS candidate, j.result->>'compared_against' AS compared_against,
       j.outcome, j.result->>'reason_code' AS reason_code,
       (j.result->>'head_moved')::boolean AS head_moved,
       p.metric, p.delta, p.ci_low, p.ci_high, j.finished_at
  FROM gate_jobs j
  LEFT JOIN LATERAL (
        SELECT row_->>'metric' AS metric,
               (row_->>'delta')::double precision AS delta,
               (row_->>'ci_low')::double precision AS ci_low,
               (row_->>'ci_high')::double precision AS ci_high
          FROM jsonb_array_elements(CASE WHEN jsonb_typeof(j.result->'metric_table') = 'array'
                                         THEN j.result->'metric_table' ELSE '[]'::jsonb END) AS row_
         WHERE row_->>'role' = 'primary'
         LIMIT 1) p ON true
 WHERE j.status = 'done'
 ORDER BY j.finished_at DESC, j.id DESC
 LIMIT %(limit)s;
