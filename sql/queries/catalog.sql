-- name: artifact_by_id
SELECT id, artifact_type, title, version_number, parent_version_id, lineage_id, is_latest,
       lifecycle_state, superseded_by, metadata::jsonb AS metadata, created_by, created_at::timestamptz AS created_at
  FROM artifacts WHERE id = %(id)s;

-- name: artifact_exists
SELECT EXISTS (SELECT 1 FROM artifacts WHERE id = %(id)s) AS present;

-- name: model_version_exists
SELECT EXISTS (SELECT 1 FROM model_versions WHERE artifact_id = %(id)s) AS present;

-- name: insert_artifact
INSERT INTO artifacts (id, artifact_type, title, version_number, parent_version_id, version_tag,
                       changelog, is_latest, lifecycle_state, origin_type, origin_url, metadata,
                       created_by, created_at)
VALUES (%(id)s, 'model', %(title)s, %(version_number)s, %(parent_version_id)s, %(version_tag)s,
        %(changelog)s, %(is_latest)s, %(lifecycle_state)s, %(origin_type)s, %(origin_url)s,
        %(metadata)s::jsonb, %(created_by)s, now());

-- name: upsert_universal_artifact
INSERT INTO universal_artifacts (artifact_id, artifact_type, title, lifecycle_state, created_at, updated_at)
VALUES (%(id)s, 'model', %(title)s, %(lifecycle_state)s, now(), now())
ON CONFLICT (artifact_id) DO UPDATE
   SET title = EXCLUDED.title, lifecycle_state = EXCLUDED.lifecycle_state, updated_at = now();

-- name: insert_model_version
INSERT INTO model_versions (artifact_id, is_external, external_source_url, external_source_version,
                            base_model_id, code_repo_url, code_commit_sha, code_entrypoint,
                            training_started_at, training_completed_at, trained_by,
                            gpu_allocation_id, training_params_json, eval_metrics_json,
                            eval_dataset_artifact_id, benchmark_id, promotion_state, promotion_notes)
VALUES (%(artifact_id)s, %(is_external)s, %(external_source_url)s, %(external_source_version)s,
        %(base_model_id)s, %(code_repo_url)s, %(code_commit_sha)s, %(code_entrypoint)s,
        %(training_started_at)s, %(training_completed_at)s, %(trained_by)s,
        %(gpu_allocation_id)s, %(training_params_json)s::jsonb, %(eval_metrics_json)s::jsonb,
        %(eval_dataset_artifact_id)s, %(benchmark_id)s, %(promotion_state)s, %(promotion_notes)s);

-- name: legacy_models_without_version
-- The legacy metadata as its exact stored text: a SQLite-era column may hold
-- text that is not JSON at all (catalog.py parses it and says so).
SELECT a.id, a.title, a.metadata::text AS metadata_text, a.is_latest, a.lifecycle_state, a.version_number,
       a.parent_version_id, a.origin_type, a.origin_url, a.created_by, a.created_at::text AS created_at
  FROM artifacts a
 WHERE a.artifact_type = 'model'
   AND NOT EXISTS (SELECT 1 FROM model_versions mv WHERE mv.artifact_id = a.id)
 ORDER BY a.created_at, a.id;

-- name: insert_legacy_artifact
-- Loads a fixture row as the host had it before WS1 (no model_versions row).
INSERT INTO artifacts (id, artifact_type, title, version_number, is_latest, lifecycle_state,
                       origin_type, origin_url, metadata, created_by, created_at)
VALUES (%(id)s, 'model', %(title)s, 1, 1, %(lifecycle_state)s, %(origin_type)s, %(origin_url)s,
        %(metadata)s::jsonb, %(created_by)s, %(created_at)s)
ON CONFLICT (id) DO NOTHING;

-- name: update_artifact_metadata
-- The backfill's one write to a host row (a model row): what it stored comes
-- back as text, so that the way back (0005 down) can tell it is unchanged.
UPDATE artifacts SET metadata = %(metadata)s::jsonb WHERE id = %(id)s
RETURNING metadata::text AS stored_text;

-- name: insert_backfill_log
INSERT INTO model_backfill_log (artifact_id, legacy_metadata, legacy_metadata_text, backfilled_metadata_text,
                                legacy_state, extracted, metadata_valid)
VALUES (%(artifact_id)s, %(legacy_metadata)s::jsonb, %(legacy_metadata_text)s, %(backfilled_metadata_text)s,
        %(legacy_state)s::jsonb, %(extracted)s::jsonb, %(metadata_valid)s);

-- name: insert_review_item
INSERT INTO model_review_items (artifact_id, field, reason, legacy_value)
VALUES (%(artifact_id)s, %(field)s, %(reason)s, %(legacy_value)s::jsonb)
ON CONFLICT (artifact_id, field) DO NOTHING;

-- name: backfill_report_rows
SELECT l.artifact_id, a.title, l.legacy_metadata, l.legacy_state, l.extracted, l.metadata_valid,
       l.backfilled_at, a.metadata::jsonb AS current_metadata, a.is_latest, a.lifecycle_state,
       mv.promotion_state, mv.promotion_notes, mv.is_external, mv.code_repo_url, mv.code_commit_sha,
       mv.code_entrypoint, mv.trained_by, mv.benchmark_id,
       COALESCE((SELECT json_agg(json_build_object('field', r.field, 'reason', r.reason,
                                                   'legacy_value', r.legacy_value, 'status', r.status)
                                 ORDER BY r.field)
                   FROM model_review_items r WHERE r.artifact_id = l.artifact_id), '[]') AS review_items
  FROM model_backfill_log l
  JOIN artifacts a ON a.id = l.artifact_id
  JOIN model_versions mv ON mv.artifact_id = l.artifact_id
 ORDER BY a.title;

-- name: registration_benchmark
-- The benchmark a new candidate will be gated on (its own, else its
-- parent's, as the gate resolves it) and whether it is recorded.
WITH chosen AS (
    SELECT COALESCE(%(benchmark_id)s::text,
                    (SELECT benchmark_id FROM model_versions WHERE artifact_id = %(parent_id)s)) AS id
)
SELECT chosen.id AS benchmark_id, EXISTS (SELECT 1 FROM benchmarks b WHERE b.id = chosen.id) AS recorded
  FROM chosen;
