-- name: candidate_for_gate
-- Host columns are read through casts (store/host_contract.py): metadata may
-- be stored as text, created_at as text, on a SQLite-era host table.
SELECT a.id, a.title, a.artifact_type, a.parent_version_id, a.lineage_id, a.is_latest,
       a.lifecycle_state, a.metadata::jsonb AS metadata, a.created_by, a.version_number,
       mv.promotion_state, mv.benchmark_id, mv.trained_by
  FROM artifacts a
  LEFT JOIN model_versions mv ON mv.artifact_id = a.id
 WHERE a.id = %(id)s;

-- name: lineage_head
SELECT a.id, a.metadata::jsonb AS metadata, mv.benchmark_id, mv.promotion_state
  FROM artifacts a LEFT JOIN model_versions mv ON mv.artifact_id = a.id
 WHERE a.lineage_id = %(lineage_id)s AND a.artifact_type = 'model' AND a.is_latest = 1;

-- name: plain_promotions_in_lineage
-- Every promotion of the lineage that needed no tradeoff and was not forced,
-- newest first: the candidates for the biocreep anchor (the best of them on
-- the benchmark; decision.biocreep_anchor). A forced promotion is a human
-- override, not evidence that a version was good, so it never anchors.
-- Host columns are read through casts (store/host_contract.py).
SELECT w.target_artifact_id AS artifact_id, a.metadata::jsonb AS metadata
  FROM world_model_improvements w
  JOIN artifacts a ON a.id = w.target_artifact_id
 WHERE w.event_type = 'model_version_promoted'
   AND a.lineage_id = %(lineage_id)s
   AND COALESCE(w.detection_metadata::jsonb->>'outcome', 'promote') = 'promote'
   AND COALESCE(w.detection_metadata::jsonb->>'forced', 'false') <> 'true'
   AND COALESCE(w.detection_metadata::jsonb->>'reason_code', '') <> 'forced_promotion'
 ORDER BY w.created_at::timestamptz DESC NULLS LAST, w.id DESC;

-- name: benchmark_row
SELECT id, title, task, primary_metric, manifest::jsonb AS manifest, path, split_hash FROM benchmarks WHERE id = %(id)s;

-- name: upsert_benchmark
INSERT INTO benchmarks (id, title, task, primary_metric, manifest, path, split_hash, created_at, updated_at)
VALUES (%(id)s, %(title)s, %(task)s, %(primary_metric)s, %(manifest)s::jsonb, %(path)s, %(split_hash)s, now(), now())
ON CONFLICT (id) DO UPDATE
   SET title = EXCLUDED.title, task = EXCLUDED.task, primary_metric = EXCLUDED.primary_metric,
       manifest = EXCLUDED.manifest, path = EXCLUDED.path, split_hash = EXCLUDED.split_hash,
       updated_at = now()
RETURNING (xmax = 0) AS inserted;

-- name: cached_evaluation
SELECT id, predictions, prediction_shape, n_examples, self_reported, sandboxed,
       wall_seconds, cpu_seconds, peak_rss_bytes, peak_memory_bytes, memory_scope, environment_hash, run_key
  FROM eval_results
 WHERE artifact_id = %(artifact_id)s AND benchmark_id = %(benchmark_id)s
   AND split_hash = %(split_hash)s AND model_hash = %(model_hash)s
   AND environment_hash = %(environment_hash)s
   AND sandboxed = %(sandboxed)s AND run_key = %(run_key)s;

-- name: recorded_benchmark_paths
-- Every recorded benchmark directory: no model directory may overlap one.
SELECT path FROM benchmarks WHERE path IS NOT NULL;

-- name: store_evaluation
INSERT INTO eval_results (artifact_id, benchmark_id, split_hash, model_hash, predictions,
                          prediction_shape, n_examples, self_reported, sandboxed,
                          wall_seconds, cpu_seconds, peak_rss_bytes, peak_memory_bytes, memory_scope,
                          environment_hash, run_key)
VALUES (%(artifact_id)s, %(benchmark_id)s, %(split_hash)s, %(model_hash)s, %(predictions)s,
        %(prediction_shape)s, %(n_examples)s, %(self_reported)s, %(sandboxed)s,
        %(wall_seconds)s, %(cpu_seconds)s, %(peak_rss_bytes)s, %(peak_memory_bytes)s, %(memory_scope)s,
        %(environment_hash)s, %(run_key)s)
ON CONFLICT (artifact_id, benchmark_id, split_hash, model_hash, environment_hash, run_key) DO NOTHING
RETURNING id;

-- name: environment_users
-- Which model versions were evaluated in each declared environment (env list).
SELECT environment_hash, array_agg(DISTINCT artifact_id ORDER BY artifact_id) AS artifact_ids
  FROM eval_results
 WHERE environment_hash <> ''
 GROUP BY environment_hash;

-- name: lineage_benchmark
SELECT lb.benchmark_id, oa.actor, oa.reason, oa.created_at
  FROM lineage_benchmarks lb JOIN operator_actions oa ON oa.id = lb.action_id
 WHERE lb.lineage_id = %(lineage_id)s;

-- name: model_pin
SELECT artifact_id, lineage_id, model_hash, benchmark_id, judged_against, pinned_at
  FROM model_pins WHERE artifact_id = %(artifact_id)s;

-- name: pins_of_content_elsewhere
-- The same model files judged under another id in another lineage.
SELECT artifact_id, lineage_id FROM model_pins
 WHERE model_hash = %(model_hash)s AND lineage_id <> %(lineage_id)s AND artifact_id <> %(artifact_id)s
 ORDER BY pinned_at LIMIT 1;

-- name: accepted_reparent
SELECT id, actor FROM operator_actions
 WHERE action = 'accept_reparent' AND artifact_id = %(artifact_id)s AND lineage_id = %(lineage_id)s
 ORDER BY id DESC LIMIT 1;

-- name: pin_model
INSERT INTO model_pins (artifact_id, lineage_id, model_hash, benchmark_id, judged_against)
VALUES (%(artifact_id)s, %(lineage_id)s, %(model_hash)s, %(benchmark_id)s, %(judged_against)s)
ON CONFLICT (artifact_id) DO NOTHING;

-- name: pin_candidate
-- A candidate's pin follows its latest verdict (its author may fix it and ask
-- again) but keeps the lineage it was first judged in; once promoted it is
-- frozen, and later gates hold the version to it.
INSERT INTO model_pins (artifact_id, lineage_id, model_hash, benchmark_id, judged_against)
VALUES (%(artifact_id)s, %(lineage_id)s, %(model_hash)s, %(benchmark_id)s, %(judged_against)s)
ON CONFLICT (artifact_id) DO UPDATE
   SET model_hash = EXCLUDED.model_hash, benchmark_id = EXCLUDED.benchmark_id,
       judged_against = EXCLUDED.judged_against, pinned_at = now()
 WHERE NOT EXISTS (SELECT 1 FROM model_versions mv WHERE mv.artifact_id = EXCLUDED.artifact_id
                    AND mv.promotion_state IN ('promoted', 'superseded'));
