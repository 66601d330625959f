-- Way back from 0006_fingerprints. Never run automatically.
-- Drops every stored fingerprint and the similarity index; the evaluations
-- themselves (and their predictions) stay, so a later up migration plus
-- `model-eval-gate similar` (which backfills) recomputes them exactly.
-- The pgvector extension stays: other schemas may use it, and whoever
-- installed it removes it (DROP EXTENSION vector, as a superuser).
DROP INDEX IF EXISTS eval_results_fingerprint_missing;
DROP INDEX IF EXISTS eval_results_benchmark_split;
DROP INDEX IF EXISTS eval_results_fingerprint_hnsw;
ALTER TABLE IF EXISTS eval_results DROP COLUMN IF EXISTS fingerprint;
DROP FUNCTION IF EXISTS model_eval_gate_setup_fingerprints();
DROP TABLE IF EXISTS model_eval_gate_features;
