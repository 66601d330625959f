-- Behavioural fingerprints: a 256-d random projection of each stored
-- evaluation's standardised predictions (daemon/model_eval_gate/fingerprint.py
-- defines it), searched by cosine distance through an HNSW index.
--
-- The column starts NULL on existing rows: SQL cannot compute the projection.
-- The gate fills a cached row's fingerprint the next time it reads the row,
-- and `model-eval-gate similar` fills every missing one on the benchmark it
-- searches; eval_results_fingerprint_missing keeps finding them cheap.

ALTER TABLE eval_results ADD COLUMN IF NOT EXISTS fingerprint vector(256);

-- ef_construction 200, not pgvector's default 64: a lineage's versions are
-- near-duplicates of each other, and with 64 their tight clusters became
-- islands the search could not leave (benchmarks/bench_similar.py, 5,000
-- fingerprints in lineages of 50: recall of the exact top 10 was 0 for some
-- queries at ef_search 120; with 200 it is 1.0). Queries set hnsw.ef_search
-- per search (SET LOCAL); see sql/queries/fingerprints.sql.
CREATE INDEX IF NOT EXISTS eval_results_fingerprint_hnsw
    ON eval_results USING hnsw (fingerprint vector_cosine_ops) WITH (m = 16, ef_construction = 200);

-- The exact fallback scans one benchmark split's rows, not the whole table.
CREATE INDEX IF NOT EXISTS eval_results_benchmark_split
    ON eval_results (benchmark_id, split_hash);

CREATE INDEX IF NOT EXISTS eval_results_fingerprint_missing
    ON eval_results (id) WHERE fingerprint IS NULL;
