-- Queries of the read-only web application (daemon/model_eval_gate/web/).
-- Each page runs its queries in one READ ONLY transaction (web_read_only),
-- so the pages are consistent with each other and can never write, whatever
-- role the application connects with.

-- name: web_read_only
SET TRANSACTION READ ONLY;

-- name: web_version
-- One model version with its lineage position and registration facts.
SELECT a.id, a.title, a.lineage_id, a.version_number, a.parent_version_id, a.version_tag, a.changelog,
       a.is_latest, a.lifecycle_state, a.superseded_by, a.created_by, a.created_at, a.metadata,
       mv.promotion_state, mv.benchmark_id, mv.trained_by, mv.code_repo_url, mv.code_commit_sha,
       mv.promotion_notes, mv.created_at AS registered_at
  FROM artifacts a
  LEFT JOIN model_versions mv ON mv.artifact_id = a.id
 WHERE a.id = %(id)s;

-- name: web_jobs_of_version
-- Every gate job of a version, newest first: its whole history.
SELECT id, reason, requested_by, status, attempt, max_attempts, run_after, worker_id, lease_until,
       extract(epoch FROM lease_until - now()) AS lease_seconds_left,
       created_at, started_at, finished_at, outcome, error, result
  FROM gate_jobs
 WHERE artifact_id = %(id)s
 ORDER BY id DESC;

-- name: web_forced_promotion
-- A force_promote() of this version: recorded on its improvement event.
SELECT w.created_at, w.source_artifact_id, w.detection_metadata
  FROM world_model_improvements w
 WHERE w.target_artifact_id = %(id)s AND w.event_type = 'model_version_promoted'
   AND (w.detection_metadata->>'forced')::boolean IS TRUE;

-- name: web_tickets_of_version
SELECT id, ticket_type, assignee, title, status, created_at
  FROM tickets
 WHERE artifact_id = %(id)s
 ORDER BY id;

-- name: web_candidate_fingerprint
-- The stored evaluation a verdict scored the candidate from (its model hash),
-- for the nearest-neighbour search.
SELECT id, fingerprint
  FROM eval_results
 WHERE artifact_id = %(artifact_id)s AND benchmark_id = %(benchmark_id)s
   AND split_hash = %(split_hash)s AND model_hash = %(model_hash)s;

-- name: web_lineage_of
SELECT lineage_id FROM artifacts WHERE id = %(id)s;

-- name: web_lineage_versions
SELECT a.id, a.title, a.version_number, a.parent_version_id, a.is_latest, a.lifecycle_state,
       a.superseded_by, a.created_by, a.created_at, mv.promotion_state, mv.benchmark_id, mv.trained_by
  FROM artifacts a
  LEFT JOIN model_versions mv ON mv.artifact_id = a.id
 WHERE a.lineage_id = %(lineage_id)s AND a.artifact_type = 'model'
 ORDER BY a.created_at, a.version_number, a.id;

-- name: web_lineage_history
-- Every lifecycle change of the lineage's versions (promotions, supersessions,
-- forced promotions, and what the host recorded before the gate).
SELECT h.id, h.artifact_id, h.from_state, h.to_state, h.reason, h.actor, h.related_artifact_id,
       h.metadata, h.created_at
  FROM artifact_lifecycle_history h
  JOIN artifacts a ON a.id = h.artifact_id
 WHERE a.lineage_id = %(lineage_id)s
 ORDER BY h.created_at, h.id;

-- name: web_lineage_verdicts
-- The gate's finished jobs on the lineage's versions, oldest first.
SELECT j.id, j.artifact_id, j.outcome, j.status, j.worker_id, j.requested_by, j.finished_at,
       j.result->>'reason_code' AS reason_code, j.result->>'reason' AS reason,
       j.result->>'compared_against' AS compared_against, j.error
  FROM gate_jobs j
  JOIN artifacts a ON a.id = j.artifact_id
 WHERE a.lineage_id = %(lineage_id)s AND j.status IN ('done', 'failed')
 ORDER BY j.finished_at, j.id;

-- name: web_lineage_promotions
-- Each promotion's recorded verdict (forced, actor), oldest first, with its
-- metric table: from the promotion's gate job when the event names it (an
-- event may carry only the author's release), else from the event itself; a
-- forced promotion has neither, so the version's last gate verdict with a
-- table (the rejection it overrode) says what it measured.
SELECT w.target_artifact_id AS artifact_id, w.source_artifact_id, w.magnitude, w.created_at,
       w.detection_metadata,
       COALESCE(j.result->'metric_table', w.detection_metadata->'metric_table') AS metric_table,
       (SELECT last.result->'metric_table' FROM gate_jobs last
         WHERE last.artifact_id = w.target_artifact_id AND last.status = 'done'
           AND jsonb_typeof(last.result->'metric_table') = 'array'
           AND jsonb_array_length(last.result->'metric_table') > 0
         ORDER BY last.id DESC LIMIT 1) AS last_measured_table
  FROM world_model_improvements w
  JOIN artifacts a ON a.id = w.target_artifact_id
  LEFT JOIN gate_jobs j ON j.id = (w.detection_metadata->>'job_id')::bigint
 WHERE a.lineage_id = %(lineage_id)s AND w.event_type = 'model_version_promoted'
 ORDER BY w.created_at, w.id;

-- name: web_lineages
-- Every model lineage, with its head and how many versions it has.
SELECT a.lineage_id,
       count(*) AS versions,
       max(a.created_at) AS last_registered_at,
       (SELECT h.id FROM artifacts h
         WHERE h.lineage_id = a.lineage_id AND h.artifact_type = 'model' AND h.is_latest = 1) AS head_id,
       (SELECT r.title FROM artifacts r WHERE r.id = a.lineage_id) AS root_title,
       count(*) FILTER (WHERE mv.promotion_state = 'candidate') AS candidates
  FROM artifacts a
  LEFT JOIN model_versions mv ON mv.artifact_id = a.id
 WHERE a.artifact_type = 'model'
 GROUP BY a.lineage_id
 ORDER BY max(a.created_at) DESC, a.lineage_id;

-- name: web_queued_jobs
SELECT j.id, j.artifact_id, j.reason, j.requested_by, j.attempt, j.max_attempts, j.run_after, j.created_at,
       j.error, extract(epoch FROM now() - j.created_at) AS queued_seconds,
       extract(epoch FROM j.run_after - now()) AS due_in_seconds
  FROM gate_jobs j
 WHERE j.status = 'queued'
 ORDER BY j.run_after, j.id
 LIMIT %(limit)s;

-- name: web_connected_daemons
-- The daemons' control connections. Columns PostgreSQL hides from roles
-- without pg_read_all_stats come back NULL, and the page says "hidden".
SELECT pid, usename, client_addr::text AS client_addr, backend_start, state
  FROM pg_stat_activity
 WHERE datname = current_database() AND application_name = 'model-eval-gate-daemon'
 ORDER BY backend_start NULLS LAST, pid;

-- name: web_benchmarks
-- Each recorded benchmark, its split's size (from stored evaluations of the
-- current split) and its use by versions, gates and the evaluation cache.
SELECT b.id, b.title, b.task, b.primary_metric, b.manifest, b.split_hash, b.created_at, b.updated_at,
       (SELECT max(e.n_examples) FROM eval_results e
         WHERE e.benchmark_id = b.id AND e.split_hash = b.split_hash) AS n_examples,
       (SELECT count(*) FROM model_versions mv WHERE mv.benchmark_id = b.id) AS versions,
       (SELECT count(*) FROM eval_results e WHERE e.benchmark_id = b.id) AS evaluations,
       (SELECT count(*) FROM gate_jobs j WHERE j.status = 'done' AND j.result->>'benchmark_id' = b.id) AS verdicts,
       (SELECT max(j.finished_at) FROM gate_jobs j
         WHERE j.status = 'done' AND j.result->>'benchmark_id' = b.id) AS last_verdict_at
  FROM benchmarks b
 ORDER BY b.id;
