-- Least privilege (issue 10 route 8, issue 13 item 6): the functions the
-- database runs on an author's behalf are SECURITY DEFINER with a pinned
-- search_path, so a training pipeline needs only INSERT on artifacts and
-- model_versions (sql/roles.sql grants it), never rights on gate_jobs.
--
-- search_path is pinned to this schema then pg_temp (last, so a temporary
-- table cannot shadow a real one); pg_catalog is searched first implicitly.

-- True when `who` acts as an author: a member of model_eval_gate_pipeline and
-- of neither the daemon nor the operator role. False where the roles were
-- never created (a single-owner deployment has no authors to hold back).
CREATE OR REPLACE FUNCTION model_eval_gate_is_author(who name) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'model_eval_gate_pipeline') THEN
        RETURN false;
    END IF;
    IF NOT pg_has_role(who, 'model_eval_gate_pipeline', 'MEMBER') THEN
        RETURN false;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'model_eval_gate_daemon')
       AND pg_has_role(who, 'model_eval_gate_daemon', 'MEMBER') THEN
        RETURN false;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'model_eval_gate_operator')
       AND pg_has_role(who, 'model_eval_gate_operator', 'MEMBER') THEN
        RETURN false;
    END IF;
    RETURN true;
END;
$$;

-- author_releases (0009) shows an author only its own queries: those of the
-- artifacts it inserted (created_by is stamped with session_user by the
-- guard above). Anyone who is not an author (the daemon, operators, the
-- owner) sees every row. The view runs as its owner, so granting SELECT on
-- it alone still exposes nothing beneath it.
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
 WHERE q.released IS NOT NULL
   AND (NOT model_eval_gate_is_author(session_user)
        OR EXISTS (SELECT 1 FROM artifacts a WHERE a.id = q.artifact_id AND a.created_by = session_user));

-- An author inserts candidates only: never a latest, active or superseding
-- artifact, and always under its own name.
CREATE OR REPLACE FUNCTION model_eval_gate_author_artifact_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF model_eval_gate_is_author(session_user) THEN
        IF NEW.is_latest <> 0 OR NEW.lifecycle_state <> 'candidate' OR NEW.superseded_by IS NOT NULL THEN
            RAISE EXCEPTION 'model_eval_gate: an author inserts candidates only (is_latest 0, lifecycle_state candidate)'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        NEW.created_by := session_user;
    END IF;
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS artifacts_author_guard ON artifacts;
CREATE TRIGGER artifacts_author_guard
    BEFORE INSERT ON artifacts
    FOR EACH ROW EXECUTE FUNCTION model_eval_gate_author_artifact_guard();

-- An author's model_versions row is a candidate of one of its own artifacts.
CREATE OR REPLACE FUNCTION model_eval_gate_author_version_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF model_eval_gate_is_author(session_user) THEN
        IF NEW.promotion_state <> 'candidate' OR NEW.promotion_notes IS NOT NULL THEN
            RAISE EXCEPTION 'model_eval_gate: an author registers candidates only; promotion states are the gate''s'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM artifacts WHERE id = NEW.artifact_id AND created_by = session_user) THEN
            RAISE EXCEPTION 'model_eval_gate: % is not an artifact of %', NEW.artifact_id, session_user
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS model_versions_author_guard ON model_versions;
CREATE TRIGGER model_versions_author_guard
    BEFORE INSERT ON model_versions
    FOR EACH ROW EXECUTE FUNCTION model_eval_gate_author_version_guard();

-- The verdicts of the caller's own versions: state and reason code only
-- (what an author may see of hidden-label metrics is issue 11's release).
CREATE OR REPLACE FUNCTION model_eval_gate_author_verdicts()
RETURNS TABLE (artifact_id text, promotion_state text, outcome text, reason_code text, decided_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT a.id, mv.promotion_state, j.outcome, j.result->>'reason_code', j.finished_at
      FROM artifacts a
      JOIN model_versions mv ON mv.artifact_id = a.id
      LEFT JOIN LATERAL (
            SELECT g.outcome, g.result, g.finished_at FROM gate_jobs g
             WHERE g.artifact_id = a.id AND g.status = 'done' ORDER BY g.id DESC LIMIT 1) j ON true
     WHERE a.created_by = session_user
     ORDER BY a.created_at, a.id;
$$;

-- An author may ask for a re-gate of its own versions only.
CREATE OR REPLACE FUNCTION model_eval_gate_author_may_request(p_artifact_id text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT NOT model_eval_gate_is_author(session_user)
        OR EXISTS (SELECT 1 FROM artifacts WHERE id = p_artifact_id AND created_by = session_user);
$$;

CREATE OR REPLACE FUNCTION model_eval_gate_refuse_foreign_request() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT model_eval_gate_author_may_request(NEW.artifact_id) THEN
        RAISE EXCEPTION 'model_eval_gate: % may request gates of its own versions only, not %', session_user, NEW.artifact_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS gate_jobs_author_requests_own ON gate_jobs;
CREATE TRIGGER gate_jobs_author_requests_own
    BEFORE INSERT ON gate_jobs
    FOR EACH ROW EXECUTE FUNCTION model_eval_gate_refuse_foreign_request();

DO $$
DECLARE
    fn text;
BEGIN
    FOREACH fn IN ARRAY ARRAY[
        'model_eval_gate_request(text, text, text)',
        'model_eval_gate_enqueue_candidate()',
        'model_eval_gate_set_lineage()',
        'model_eval_gate_propagate_lineage()',
        'model_eval_gate_is_author(name)',
        'model_eval_gate_author_artifact_guard()',
        'model_eval_gate_author_version_guard()',
        'model_eval_gate_author_verdicts()',
        'model_eval_gate_author_may_request(text)',
        'model_eval_gate_refuse_foreign_request()'
    ] LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = %I, pg_temp', fn, current_schema());
        -- Callable only by the roles sql/roles.sql grants it to (triggers need no EXECUTE).
        -- Except model_eval_gate_is_author: author_releases calls it, and a
        -- view checks EXECUTE against its reader, whoever was granted the
        -- view; it tells only whether the caller is an author.
        IF fn <> 'model_eval_gate_is_author(name)' THEN
            EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn);
        END IF;
    END LOOP;
END;
$$;
