-- Holdout accounting (docs/model_promotion_policy.md, "Holdout accounting"):
-- every query that scores a model on a split's hidden labels is recorded,
-- each lineage's attempts on a split are counted (they share one
-- false-promotion budget), and what an author was told is kept apart from
-- the full-precision answer, which stays with operators.

-- One row per benchmark split the gate has answered on (a refreshed split
-- has a new split_hash, hence a new row and fresh counters).
CREATE TABLE IF NOT EXISTS holdout_splits (
    benchmark_id   text NOT NULL,
    split_hash     text NOT NULL,
    split_role     text NOT NULL DEFAULT 'public' CHECK (split_role IN ('public', 'confirmation')),
    n_examples     integer CHECK (n_examples > 0),
    query_budget   integer NOT NULL CHECK (query_budget >= 1),
    release_step   double precision NOT NULL CHECK (release_step > 0),
    first_query_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (benchmark_id, split_hash, split_role)
);

-- Attempts per (lineage, split): attempt k is tested at alpha_k
-- (policy/multiplicity.py). A counter row, incremented under its row lock,
-- so two concurrent queries of one lineage never get the same number.
CREATE TABLE IF NOT EXISTS holdout_attempts (
    lineage_id   text NOT NULL,
    benchmark_id text NOT NULL,
    split_hash   text NOT NULL,
    split_role   text NOT NULL,
    attempts     integer NOT NULL CHECK (attempts >= 0),
    PRIMARY KEY (lineage_id, benchmark_id, split_hash, split_role),
    FOREIGN KEY (benchmark_id, split_hash, split_role) REFERENCES holdout_splits
);

-- Every query against a split: gate, re-gate, dry run, quick run. No
-- foreign key to artifacts: the record outlives the artifact it scored.
CREATE TABLE IF NOT EXISTS holdout_queries (
    id               bigserial PRIMARY KEY,
    benchmark_id     text NOT NULL,
    split_hash       text NOT NULL,
    split_role       text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('gate', 'regate', 'dry_run', 'quick')),
    artifact_id      text NOT NULL,
    lineage_id       text NOT NULL,
    compared_against text,
    author           text,                 -- the candidate's trained_by, else created_by
    requested_by     text NOT NULL,        -- who asked: the job's requester or the API caller
    db_user          text NOT NULL DEFAULT session_user,
    job_id           bigint,
    job_attempt      integer,
    -- A comparison's attempt number on the split and its level; NULL for a
    -- root version, which is compared with nothing.
    attempt_number   integer CHECK (attempt_number >= 1),
    alpha            double precision CHECK (alpha > 0 AND alpha < 1),
    confidence       double precision CHECK (confidence > 0 AND confidence < 1),
    CHECK ((attempt_number IS NULL) = (alpha IS NULL) AND (alpha IS NULL) = (confidence IS NULL)),
    -- SHA-256 of (split, the head's predictions, the candidate's): the same
    -- question asked again by the lineage gets the same attempt number, so
    -- the same level and the same interval, and spends nothing.
    question_hash    text,
    outcome          text,
    reason_code      text,
    released         jsonb,                -- exactly what the author may see (policy/release.py)
    detail           jsonb,                -- the full-precision answer: operators only
    asked_at         timestamptz NOT NULL DEFAULT now(),
    answered_at      timestamptz,
    FOREIGN KEY (benchmark_id, split_hash, split_role) REFERENCES holdout_splits
);
-- A job re-evaluated against a new head (merge-queue style) is one query:
-- only one of its answers is ever released.
CREATE UNIQUE INDEX IF NOT EXISTS holdout_queries_one_per_job_attempt
    ON holdout_queries (job_id, job_attempt, split_role) WHERE job_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS holdout_queries_split ON holdout_queries (benchmark_id, split_hash, split_role);
CREATE INDEX IF NOT EXISTS holdout_queries_lineage_recent ON holdout_queries (lineage_id, asked_at);
CREATE INDEX IF NOT EXISTS holdout_queries_author_recent ON holdout_queries (author, asked_at);
CREATE INDEX IF NOT EXISTS holdout_queries_artifact ON holdout_queries (artifact_id, id);
CREATE INDEX IF NOT EXISTS holdout_queries_question
    ON holdout_queries (lineage_id, benchmark_id, split_hash, split_role, question_hash, id);

-- What authors (the pipeline role) may read: verdict, reason code, and for
-- a promotion the primary metric rounded to the split's release step. A
-- view runs with its owner's privileges, so granting SELECT on it alone
-- (GRANT SELECT ON author_releases TO <pipeline role>) exposes none of the
-- tables beneath it.
CREATE OR REPLACE VIEW author_releases AS
SELECT q.id                                   AS query_id,
       q.artifact_id,
       q.lineage_id,
       q.benchmark_id,
       q.split_role,
       q.kind,
       q.attempt_number,
       q.alpha,
       q.released->>'outcome'                 AS outcome,
       q.released->>'reason_code'             AS reason_code,
       q.released->>'reason'                  AS reason,
       q.released->>'primary_metric'          AS primary_metric,
       (q.released->>'primary_value')::double precision AS primary_value,
       (q.released->>'release_step')::double precision  AS release_step,
       q.released->>'confirmation'            AS confirmation,
       q.answered_at
  FROM holdout_queries q
 WHERE q.released IS NOT NULL;
