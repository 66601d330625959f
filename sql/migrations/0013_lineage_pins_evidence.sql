-- Verdict integrity (issue 10), routes 2, 3, 5 and 6: the benchmark and the
-- comparator belong to the lineage, model files are pinned, and tradeoff
-- evidence says how it was measured.
--
-- operator_actions: every human decision that changes what a lineage is
-- judged on (re-benchmark, accepting a cross-lineage re-parent, confirming a
-- self-scored promotion). Kept without foreign keys: the record outlives the
-- rows it is about.
CREATE TABLE IF NOT EXISTS operator_actions (
    id           bigserial PRIMARY KEY,
    action       text NOT NULL CHECK (action IN ('rebenchmark', 'accept_reparent', 'confirm_promotion')),
    artifact_id  text,
    lineage_id   text,
    details      jsonb NOT NULL DEFAULT '{}'::jsonb,
    actor        text NOT NULL CHECK (btrim(actor) <> ''),
    reason       text NOT NULL CHECK (btrim(reason) <> ''),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS operator_actions_artifact ON operator_actions (artifact_id, id);

-- The benchmark a lineage is judged on when an operator re-benchmarked it;
-- without a row, it is the benchmark of the lineage's head.
CREATE TABLE IF NOT EXISTS lineage_benchmarks (
    lineage_id    text PRIMARY KEY,
    benchmark_id  text NOT NULL REFERENCES benchmarks(id),
    action_id     bigint NOT NULL REFERENCES operator_actions(id),
    set_at        timestamptz NOT NULL DEFAULT now()
);

-- Each model version's files, pinned by content hash at its first evaluation
-- for a verdict, with the lineage it was first judged in. No foreign key:
-- a version deleted and re-inserted elsewhere meets its own pin again.
CREATE TABLE IF NOT EXISTS model_pins (
    artifact_id     text PRIMARY KEY,
    lineage_id      text NOT NULL,
    model_hash      text NOT NULL,
    benchmark_id    text NOT NULL,
    judged_against  text,
    pinned_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS model_pins_hash ON model_pins (model_hash);

-- How an evaluation's peak memory was measured (the sandbox result's
-- memory_scope: "cgroup", "process_tree" or "largest_process"); a memory
-- tradeoff claim is verifiable only on a whole-sandbox figure.
ALTER TABLE eval_results ADD COLUMN IF NOT EXISTS memory_scope text;
