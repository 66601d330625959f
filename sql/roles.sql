-- Least-privilege roles for model-eval-gate (DESIGN.md section 8,
-- docs/operations.md "Roles"). Print with `model-eval-gate roles`, apply with
-- `model-eval-gate roles --apply` (as the schema's owner, with CREATEROLE),
-- once per database and again after every upgrade. Idempotent.
--
-- The three are group roles (NOLOGIN): grant them to login roles, e.g.
--   CREATE ROLE training_bot LOGIN PASSWORD '...' IN ROLE model_eval_gate_pipeline;
--
--   model_eval_gate_pipeline  an author (training pipeline, agent): inserts
--                             artifacts and candidate model_versions rows,
--                             requests gates of its own versions, reads its
--                             own verdicts through model_eval_gate_author_verdicts()
--                             and its own rows of author_releases
--   model_eval_gate_daemon    the daemon: exactly what claiming, evaluating
--                             and applying a verdict needs
--   model_eval_gate_operator  a human: benchmarks, re-benchmarks, confirms,
--                             force-promotes, backfills, reads everything

DO $$
DECLARE
    role text;
BEGIN
    FOREACH role IN ARRAY ARRAY['model_eval_gate_pipeline', 'model_eval_gate_daemon', 'model_eval_gate_operator'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', role);
        END IF;
    END LOOP;
END;
$$;

-- Start from nothing on every apply, so a privilege removed here is removed there.
DO $$
BEGIN
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM model_eval_gate_pipeline, model_eval_gate_daemon, '
                   'model_eval_gate_operator', current_schema());
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM model_eval_gate_pipeline, model_eval_gate_daemon, '
                   'model_eval_gate_operator', current_schema());
    EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA %I FROM model_eval_gate_pipeline, model_eval_gate_daemon, '
                   'model_eval_gate_operator', current_schema());
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO model_eval_gate_pipeline, model_eval_gate_daemon, '
                   'model_eval_gate_operator', current_schema());
END;
$$;

-- The pipeline: INSERT only (the guards of migration 0014 keep its rows
-- candidates under its own name); no SELECT on any table.
-- Not universal_artifacts: its lifecycle_state is the host's view of a
-- version, which only the daemon (and `register`, run as an operator) writes.
GRANT INSERT ON artifacts, model_versions TO model_eval_gate_pipeline;
GRANT EXECUTE ON FUNCTION model_eval_gate_request(text, text, text), model_eval_gate_author_verdicts()
    TO model_eval_gate_pipeline;
-- What an author may learn of its own queries (policy section 14.2): the view
-- shows an author only its own artifacts' rows (migration 0014), and runs as
-- its owner, so nothing beneath it (holdout_queries, gate_jobs) is granted.
GRANT SELECT ON author_releases TO model_eval_gate_pipeline;

-- The daemon: read what a gate reads; write only the gate's own state.
GRANT SELECT ON artifacts, universal_artifacts, model_versions, benchmarks, gate_jobs, eval_results, tickets,
                world_model_improvements, artifact_lifecycle_history, operator_actions, lineage_benchmarks,
                model_pins, model_eval_gate_migrations, model_eval_gate_features, model_eval_gate_host_objects,
                holdout_splits, holdout_attempts, holdout_queries
    TO model_eval_gate_daemon;
GRANT INSERT, UPDATE ON gate_jobs, eval_results, tickets, universal_artifacts, tool_calls TO model_eval_gate_daemon;
GRANT INSERT ON world_model_improvements, artifact_lifecycle_history TO model_eval_gate_daemon;
-- Holdout accounting (holdout.sql): a split's row and budget, each lineage's
-- attempt counter, and every query, recorded then answered.
GRANT INSERT, UPDATE ON holdout_splits, holdout_attempts, holdout_queries TO model_eval_gate_daemon;
-- A candidate's pin follows its verdicts until it is promoted (gate.sql pin_candidate).
GRANT INSERT, UPDATE ON model_pins TO model_eval_gate_daemon;
GRANT UPDATE (is_latest, lifecycle_state, superseded_by) ON artifacts TO model_eval_gate_daemon;
GRANT UPDATE (promotion_state, promotion_notes) ON model_versions TO model_eval_gate_daemon;
-- The sequences behind the ids the daemon inserts, whatever the host named them
-- (a host table with text ids may have none).
DO $$
DECLARE
    tbl text;
    seq text;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['gate_jobs', 'eval_results', 'tickets', 'world_model_improvements',
                               'artifact_lifecycle_history', 'tool_calls', 'holdout_queries'] LOOP
        seq := pg_get_serial_sequence(tbl, 'id');
        IF seq IS NOT NULL THEN
            EXECUTE format('GRANT USAGE ON SEQUENCE %s TO model_eval_gate_daemon', seq);
        END IF;
    END LOOP;
END;
$$;
-- Host tables take their ids the host's way (migration 0001's model_eval_gate_new_<table>_id()).
GRANT EXECUTE ON FUNCTION model_eval_gate_new_tickets_id(), model_eval_gate_new_world_model_improvements_id(),
                          model_eval_gate_new_artifact_lifecycle_history_id(), model_eval_gate_new_tool_calls_id()
    TO model_eval_gate_daemon;
GRANT EXECUTE ON FUNCTION model_eval_gate_request(text, text, text) TO model_eval_gate_daemon;

-- The operator: everything on the gate's tables, but not their definitions
-- (migrations run as the owner).
DO $$
BEGIN
    EXECUTE format('GRANT ALL ON ALL TABLES IN SCHEMA %I TO model_eval_gate_operator', current_schema());
    EXECUTE format('GRANT ALL ON ALL SEQUENCES IN SCHEMA %I TO model_eval_gate_operator', current_schema());
    EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %I TO model_eval_gate_operator', current_schema());
END;
$$;
