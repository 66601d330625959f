-- Queries of `model-eval-gate demo` (daemon/model_eval_gate/demo/runner.py).
--
-- The two inserts are what a training pipeline that does not use Python runs
-- to register a candidate: a plain artifacts row and a plain model_versions
-- row, in one transaction. Nothing else is needed: the AFTER INSERT trigger
-- on model_versions queues the gate job and NOTIFYs the daemon.

-- name: demo_link_benchmark
-- The platform operator's step before switching the gate on: say which
-- benchmark each legacy model is judged on (the legacy blobs named none).
UPDATE model_versions SET benchmark_id = %(benchmark_id)s
 WHERE artifact_id = %(artifact_id)s
RETURNING artifact_id;

-- name: demo_insert_candidate_artifact
-- A new version under its parent: never latest, lifecycle 'candidate' until
-- the gate decides (is_latest defaults to 1 on host tables, so it is explicit).
INSERT INTO artifacts (id, artifact_type, title, version_number, parent_version_id, version_tag,
                       changelog, is_latest, lifecycle_state, origin_type, metadata, created_by, created_at)
SELECT %(id)s, 'model', %(title)s, parent.version_number + 1, parent.id, %(version_tag)s,
       %(changelog)s, 0, 'candidate', 'internal', %(metadata)s::jsonb, %(created_by)s, now()
  FROM artifacts parent
 WHERE parent.id = %(parent_id)s
RETURNING id, version_number;

-- name: demo_insert_candidate_version
INSERT INTO model_versions (artifact_id, is_external, code_repo_url, code_commit_sha, code_entrypoint,
                            training_started_at, training_completed_at, trained_by,
                            training_params_json, eval_metrics_json, benchmark_id, promotion_state)
VALUES (%(artifact_id)s, 0, %(code_repo_url)s, %(code_commit_sha)s, %(code_entrypoint)s,
        now() - interval '47 minutes', now() - interval '2 minutes', %(trained_by)s,
        %(training_params)s::jsonb, '{}'::jsonb, %(benchmark_id)s, 'candidate');

-- name: demo_gate_progress
-- The latest gate job of each watched artifact, and the verdict's primary row.
SELECT DISTINCT ON (j.artifact_id)
       j.artifact_id, j.id AS job_id, j.status, j.outcome, j.worker_id, j.attempt, j.error,
       j.result->>'reason_code' AS reason_code,
       j.result->>'compared_against' AS compared_against,
       extract(epoch FROM j.finished_at - j.started_at) AS seconds,
       (SELECT row_ FROM jsonb_array_elements(CASE WHEN jsonb_typeof(j.result->'metric_table') = 'array'
                                                   THEN j.result->'metric_table' ELSE '[]'::jsonb END) AS row_
         WHERE row_->>'role' = 'primary' LIMIT 1) AS primary_row
  FROM gate_jobs j
 WHERE j.artifact_id = ANY(%(artifact_ids)s)
 ORDER BY j.artifact_id, j.id DESC;

-- name: demo_verdicts
-- Everything the verdict table and the demo's own checks need, per artifact.
SELECT a.id AS artifact_id, a.title, a.parent_version_id, a.is_latest, a.lifecycle_state, a.superseded_by,
       mv.promotion_state, mv.benchmark_id,
       j.id AS job_id, j.status AS job_status, j.outcome, j.result,
       (SELECT t.id FROM tickets t
         WHERE t.artifact_id = a.id AND t.ticket_type = 'candidate-rejected' AND t.status = 'open'
         ORDER BY t.id DESC LIMIT 1) AS ticket_id,
       (SELECT t.assignee FROM tickets t
         WHERE t.artifact_id = a.id AND t.ticket_type = 'candidate-rejected' AND t.status = 'open'
         ORDER BY t.id DESC LIMIT 1) AS ticket_assignee,
       (SELECT count(*) FROM world_model_improvements w
         WHERE w.target_artifact_id = a.id AND w.event_type = 'model_version_promoted') AS promotion_events,
       (SELECT p.superseded_by FROM artifacts p WHERE p.id = j.result->>'compared_against') AS compared_superseded_by
  FROM artifacts a
  JOIN model_versions mv ON mv.artifact_id = a.id
  LEFT JOIN LATERAL (SELECT * FROM gate_jobs g WHERE g.artifact_id = a.id ORDER BY g.id DESC LIMIT 1) j ON true
 WHERE a.id = ANY(%(artifact_ids)s);

-- name: demo_lineage_heads
-- Lineages of the watched artifacts with their number of latest versions (the gate keeps it at one).
SELECT a.lineage_id, count(*) FILTER (WHERE a.is_latest = 1) AS latest,
       max(a.id) FILTER (WHERE a.is_latest = 1) AS head
  FROM artifacts a
 WHERE a.lineage_id IN (SELECT lineage_id FROM artifacts WHERE id = ANY(%(artifact_ids)s))
   AND a.artifact_type = 'model'
 GROUP BY a.lineage_id;

-- name: demo_promotion_states
SELECT promotion_state, count(*) AS n FROM model_versions GROUP BY promotion_state ORDER BY promotion_state;

-- name: demo_titles
SELECT id, title FROM artifacts;

-- name: demo_lineage_versions
SELECT a.id, a.version_number, a.is_latest, a.lifecycle_state, a.superseded_by, mv.promotion_state
  FROM artifacts a
  JOIN model_versions mv ON mv.artifact_id = a.id
 WHERE a.lineage_id = %(lineage_id)s
 ORDER BY a.version_number, a.created_at, a.id;
