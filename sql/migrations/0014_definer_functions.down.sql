-- Down of 0014 (documented, never run automatically): the functions run as
-- their caller again, with the caller's search_path, and anyone may call
-- them; the author guards and the authors' verdict function go away, and
-- author_releases shows every row again, as 0009 defined it.
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
DROP TRIGGER IF EXISTS gate_jobs_author_requests_own ON gate_jobs;
DROP TRIGGER IF EXISTS model_versions_author_guard ON model_versions;
DROP TRIGGER IF EXISTS artifacts_author_guard ON artifacts;
DROP FUNCTION IF EXISTS model_eval_gate_refuse_foreign_request();
DROP FUNCTION IF EXISTS model_eval_gate_author_may_request(text);
DROP FUNCTION IF EXISTS model_eval_gate_author_verdicts();
DROP FUNCTION IF EXISTS model_eval_gate_author_version_guard();
DROP FUNCTION IF EXISTS model_eval_gate_author_artifact_guard();
DROP FUNCTION IF EXISTS model_eval_gate_is_author(name);
DO $$
DECLARE
    fn text;
BEGIN
    FOREACH fn IN ARRAY ARRAY['model_eval_gate_request(text, text, text)', 'model_eval_gate_enqueue_candidate()',
                              'model_eval_gate_set_lineage()', 'model_eval_gate_propagate_lineage()'] LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY INVOKER RESET search_path', fn);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', fn);
    END LOOP;
END;
$$;
