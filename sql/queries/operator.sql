-- Recorded operator actions (store/operator.py).

-- name: record_operator_action
INSERT INTO operator_actions (action, artifact_id, lineage_id, details, actor, reason)
VALUES (%(action)s, %(artifact_id)s, %(lineage_id)s, %(details)s::jsonb, %(actor)s, %(reason)s)
RETURNING id;

-- name: lineage_exists
SELECT EXISTS (SELECT 1 FROM artifacts WHERE lineage_id = %(lineage_id)s AND artifact_type = 'model') AS present;

-- name: set_lineage_benchmark
INSERT INTO lineage_benchmarks (lineage_id, benchmark_id, action_id)
VALUES (%(lineage_id)s, %(benchmark_id)s, %(action_id)s)
ON CONFLICT (lineage_id) DO UPDATE
   SET benchmark_id = EXCLUDED.benchmark_id, action_id = EXCLUDED.action_id, set_at = now();

-- name: move_pin_to_lineage
UPDATE model_pins SET lineage_id = %(lineage_id)s WHERE artifact_id = %(artifact_id)s;

-- name: operator_actions_for
SELECT id, action, artifact_id, lineage_id, details, actor, reason, created_at
  FROM operator_actions WHERE artifact_id = %(artifact_id)s OR lineage_id = %(lineage_id)s ORDER BY id;

-- name: last_finished_job_for_artifact
-- The verdict a human is asked to confirm: the artifact's last finished job.
SELECT id, outcome, result FROM gate_jobs
 WHERE artifact_id = %(artifact_id)s AND status = 'done'
 ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT 1;
