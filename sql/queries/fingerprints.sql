-- Behavioural fingerprints (fingerprint.py): storing them, and searching them.

-- name: store_fingerprint
-- A fingerprint is a function of the row's predictions, which never change:
-- written once, never overwritten.
UPDATE eval_results SET fingerprint = %(fingerprint)s
 WHERE artifact_id = %(artifact_id)s AND benchmark_id = %(benchmark_id)s
   AND split_hash = %(split_hash)s AND model_hash = %(model_hash)s
   AND fingerprint IS NULL
RETURNING id;

-- name: fingerprint_missing
SELECT fingerprint IS NULL AS missing FROM eval_results WHERE id = %(id)s;

-- name: set_fingerprint
UPDATE eval_results SET fingerprint = %(fingerprint)s
 WHERE id = %(id)s AND fingerprint IS NULL
RETURNING id;

-- name: stored_fingerprint
SELECT id, fingerprint
  FROM eval_results
 WHERE artifact_id = %(artifact_id)s AND benchmark_id = %(benchmark_id)s
   AND split_hash = %(split_hash)s AND model_hash = %(model_hash)s;

-- name: evaluations_missing_fingerprint
-- Served by the partial index eval_results_fingerprint_missing (0006): cheap
-- to ask when nothing is missing, however large the table.
SELECT id
  FROM eval_results
 WHERE fingerprint IS NULL AND id > %(after)s
   AND (%(benchmark_id)s::text IS NULL OR benchmark_id = %(benchmark_id)s)
   AND (%(split_hash)s::text IS NULL OR split_hash = %(split_hash)s)
 ORDER BY id
 LIMIT %(limit)s;

-- name: evaluation_predictions
SELECT id, benchmark_id, split_hash, predictions, prediction_shape FROM eval_results WHERE id = %(id)s;

-- name: version_for_similarity
SELECT a.id, a.lineage_id, a.version_number, mv.promotion_state
  FROM artifacts a LEFT JOIN model_versions mv ON mv.artifact_id = a.id
 WHERE a.id = %(id)s;

-- name: latest_evaluation_of
SELECT id, artifact_id, benchmark_id, split_hash, fingerprint, created_at
  FROM eval_results
 WHERE artifact_id = %(artifact_id)s
   AND (%(benchmark_id)s::text IS NULL OR benchmark_id = %(benchmark_id)s)
 ORDER BY created_at DESC, id DESC
 LIMIT 1;

-- name: benchmarks_evaluated
SELECT DISTINCT benchmark_id FROM eval_results WHERE artifact_id = %(artifact_id)s ORDER BY benchmark_id;

-- name: set_hnsw_ef_search
-- SET LOCAL (is_local = true): only for the search's own transaction.
SELECT set_config('hnsw.ef_search', %(ef_search)s, true);

-- name: nearest_fingerprints
-- The innermost ORDER BY distance LIMIT is what the HNSW index
-- (eval_results_fingerprint_hnsw) serves. pgvector applies the WHERE filter to
-- the index's candidates, at most hnsw.ef_search of them, so with a filter it
-- can return fewer rows than asked: fingerprint.nearest() then falls back to
-- nearest_fingerprints_exact. A version with several stored evaluations keeps
-- its nearest one. Only the k rows left are joined to their versions.
SELECT n.eval_id, n.artifact_id, n.distance, a.title, a.lineage_id, a.version_number,
       COALESCE(a.created_at::timestamptz, (SELECT created_at FROM eval_results WHERE id = n.eval_id)) AS created_at, mv.promotion_state
  FROM (SELECT * FROM (SELECT DISTINCT ON (candidates.artifact_id) candidates.*
                         FROM (SELECT e.id AS eval_id, e.artifact_id, e.fingerprint <=> %(v)s AS distance
                                 FROM eval_results e
                                WHERE e.benchmark_id = %(benchmark_id)s AND e.split_hash = %(split_hash)s
                                  AND e.artifact_id IS DISTINCT FROM %(exclude)s::text
                                  AND e.fingerprint IS NOT NULL
                                ORDER BY distance
                                LIMIT %(fetch)s) candidates
                        ORDER BY candidates.artifact_id, candidates.distance) per_version
         ORDER BY per_version.distance, per_version.artifact_id
         LIMIT %(k)s) n
  JOIN artifacts a ON a.id = n.artifact_id
  LEFT JOIN model_versions mv ON mv.artifact_id = n.artifact_id
 ORDER BY n.distance, n.artifact_id;

-- name: nearest_fingerprints_exact
-- Every fingerprint of the split, one per version: exact, no index order.
SELECT n.eval_id, n.artifact_id, n.distance, a.title, a.lineage_id, a.version_number,
       COALESCE(a.created_at::timestamptz, (SELECT created_at FROM eval_results WHERE id = n.eval_id)) AS created_at, mv.promotion_state
  FROM (SELECT * FROM (SELECT DISTINCT ON (e.artifact_id) e.id AS eval_id, e.artifact_id,
                              e.fingerprint <=> %(v)s AS distance
                         FROM eval_results e
                        WHERE e.benchmark_id = %(benchmark_id)s AND e.split_hash = %(split_hash)s
                          AND e.artifact_id IS DISTINCT FROM %(exclude)s::text
                          AND e.fingerprint IS NOT NULL
                        ORDER BY e.artifact_id, distance) per_version
         ORDER BY per_version.distance, per_version.artifact_id
         LIMIT %(k)s) n
  JOIN artifacts a ON a.id = n.artifact_id
  LEFT JOIN model_versions mv ON mv.artifact_id = n.artifact_id
 ORDER BY n.distance, n.artifact_id;

-- name: fingerprints_status
-- Fingerprints need pgvector (0006 makes the column only where it is
-- installed) and its type on this session's search_path.
SELECT EXISTS (SELECT 1 FROM pg_attribute
                WHERE attrelid = 'eval_results'::regclass AND attname = 'fingerprint' AND NOT attisdropped)
           AS has_column,
       to_regtype('vector') IS NOT NULL AS type_visible,
       (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = 'vector') AS extension_schema,
       (SELECT detail FROM model_eval_gate_features WHERE name = 'fingerprints') AS detail;

-- name: identical_predictions
-- The exact duplicates of a prediction vector on one split without
-- fingerprints (no pgvector): byte-equal stored predictions of the same
-- shape, among the split's rows (eval_results_benchmark_split).
SELECT DISTINCT ON (e.artifact_id) e.id AS eval_id, e.artifact_id, 0.0::float8 AS distance, a.title,
       a.lineage_id, a.version_number, COALESCE(a.created_at::timestamptz, e.created_at) AS created_at, mv.promotion_state
  FROM eval_results e
  JOIN artifacts a ON a.id = e.artifact_id
  LEFT JOIN model_versions mv ON mv.artifact_id = e.artifact_id
 WHERE e.benchmark_id = %(benchmark_id)s AND e.split_hash = %(split_hash)s
   AND e.artifact_id IS DISTINCT FROM %(exclude)s::text
   AND e.prediction_shape = %(shape)s::integer[] AND e.predictions = %(predictions)s
 ORDER BY e.artifact_id, e.id;
