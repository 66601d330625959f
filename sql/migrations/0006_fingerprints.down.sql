-- Way back from 0006_fingerprints. Never run automatically.
-- Drops every stored fingerprint and the similarity index; the evaluations
-- themselves (and their predictions) stay, so a later up migration plus
-- `model-eval-gate similar` (which backfills) recomputes them exactly.
DROP INDEX IF EXISTS eval_results_fingerprint_missing;
DROP INDEX IF EXISTS eval_results_benchmark_split;
DROP INDEX IF EXISTS eval_results_fingerprint_hnsw;
ALTER TABLE IF EXISTS eval_results DROP COLUMN IF EXISTS fingerprint;
