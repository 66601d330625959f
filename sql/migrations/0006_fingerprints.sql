-- Behavioural fingerprints: a 256-d random projection of each stored
-- evaluation's standardised predictions (daemon/model_eval_gate/fingerprint.py
-- defines it), searched by cosine distance through an HNSW index.
--
-- pgvector is optional. Only fingerprints need it, so only this migration
-- asks for it: it uses the extension where it is installed (in whichever
-- schema), creates it where this role may, and otherwise leaves
-- fingerprints disabled, recorded in model_eval_gate_features with the
-- statement a superuser must run. The gate then works without them: the
-- exact no-op check compares predictions directly, and `similar` says why it
-- cannot answer. Every later `migrate` calls model_eval_gate_setup_fingerprints()
-- again, so installing pgvector afterwards turns fingerprints on.
--
-- The column starts NULL on existing rows: SQL cannot compute the projection.
-- The gate fills a cached row's fingerprint the next time it reads the row,
-- and `model-eval-gate similar` fills every missing one on the benchmark it
-- searches; eval_results_fingerprint_missing keeps finding them cheap.

CREATE TABLE IF NOT EXISTS model_eval_gate_features (
    name        text PRIMARY KEY,
    enabled     boolean NOT NULL,
    detail      text,
    checked_at  timestamptz NOT NULL DEFAULT now()
);

-- The exact fallback scans one benchmark split's rows, not the whole table.
CREATE INDEX IF NOT EXISTS eval_results_benchmark_split
    ON eval_results (benchmark_id, split_hash);

CREATE OR REPLACE FUNCTION model_eval_gate_setup_fingerprints() RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_schema text;
    v_hint   text := 'a superuser runs once, in this database: CREATE EXTENSION vector;'
                     ' then: model-eval-gate migrate';
BEGIN
    SELECT n.nspname INTO v_schema
      FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'vector';
    IF v_schema IS NULL THEN
        IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
            INSERT INTO model_eval_gate_features (name, enabled, detail)
            VALUES ('fingerprints', false, 'pgvector is not installed on this server (package postgresql-NN-pgvector); '
                                           'once it is, ' || v_hint)
            ON CONFLICT (name) DO UPDATE SET enabled = false, detail = EXCLUDED.detail, checked_at = now();
            RETURN false;
        END IF;
        BEGIN
            CREATE EXTENSION IF NOT EXISTS vector;
        EXCEPTION WHEN insufficient_privilege THEN
            INSERT INTO model_eval_gate_features (name, enabled, detail)
            VALUES ('fingerprints', false, 'role ' || current_user || ' may not create the pgvector extension; ' || v_hint)
            ON CONFLICT (name) DO UPDATE SET enabled = false, detail = EXCLUDED.detail, checked_at = now();
            RETURN false;
        END;
        SELECT n.nspname INTO v_schema
          FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = 'vector';
    END IF;
    -- Schema-qualified: the extension may live outside the search_path.
    EXECUTE format('ALTER TABLE eval_results ADD COLUMN IF NOT EXISTS fingerprint %I.vector(256)', v_schema);
    -- ef_construction 200, not pgvector's default 64: a lineage's versions are
    -- near-duplicates of each other, and with 64 their tight clusters became
    -- islands the search could not leave (benchmarks/bench_similar.py, 5,000
    -- fingerprints in lineages of 50: recall of the exact top 10 was 0 for some
    -- queries at ef_search 120; with 200 it is 1.0). Queries set hnsw.ef_search
    -- per search (SET LOCAL); see sql/queries/fingerprints.sql.
    EXECUTE format('CREATE INDEX IF NOT EXISTS eval_results_fingerprint_hnsw ON eval_results '
                   'USING hnsw (fingerprint %I.vector_cosine_ops) WITH (m = 16, ef_construction = 200)', v_schema);
    CREATE INDEX IF NOT EXISTS eval_results_fingerprint_missing
        ON eval_results (id) WHERE fingerprint IS NULL;
    INSERT INTO model_eval_gate_features (name, enabled, detail)
    VALUES ('fingerprints', true, 'pgvector in schema ' || v_schema)
    ON CONFLICT (name) DO UPDATE SET enabled = true, detail = EXCLUDED.detail, checked_at = now();
    RETURN true;
END;
$$;

SELECT model_eval_gate_setup_fingerprints();
