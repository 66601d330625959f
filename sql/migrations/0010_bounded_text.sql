-- Size caps on what authors store (docs/sandbox.md, "Size caps").
--
-- The Python side refuses these at registration (bounded_json, safe_text);
-- the database refuses them too, because a training pipeline may insert rows
-- with plain SQL. Model metadata nested thousands deep made psycopg's JSON
-- loader raise RecursionError on every later read of the row, which broke
-- every gate of its lineage and force-promote; megabytes of it were copied
-- into job results, history rows and events.
--
-- A trigger rather than a table CHECK: rows that exist already are neither
-- rewritten nor re-checked, and a CHECK (even NOT VALID) would refuse every
-- later UPDATE of such a row, its supersession included. The trigger checks
-- what is inserted and metadata that an update changes; it raises SQLSTATE
-- 23514 (check_violation) naming the rule, as a CHECK would. Legacy rows
-- that are over the limits are read by the gate as unreadable metadata and
-- get an error verdict.

-- The container nesting depth of a jsonb value ({} and [] are 1), computed
-- without recursion in the server's stack; walking stops past `limit_depth`.
CREATE OR REPLACE FUNCTION model_eval_gate_jsonb_depth(doc jsonb, limit_depth integer DEFAULT 64)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    WITH RECURSIVE walk(value, depth) AS (
        SELECT doc, 1 WHERE jsonb_typeof(doc) IN ('object', 'array')
        UNION ALL
        SELECT child.value, walk.depth + 1
          FROM walk
          CROSS JOIN LATERAL (
              SELECT e.value FROM jsonb_each(CASE WHEN jsonb_typeof(walk.value) = 'object'
                                                  THEN walk.value ELSE '{}'::jsonb END) AS e
              UNION ALL
              SELECT a.value FROM jsonb_array_elements(CASE WHEN jsonb_typeof(walk.value) = 'array'
                                                            THEN walk.value ELSE '[]'::jsonb END) AS a
          ) AS child
         WHERE jsonb_typeof(child.value) IN ('object', 'array') AND walk.depth <= limit_depth
    )
    SELECT COALESCE(max(depth), 0) FROM walk
$$;

CREATE OR REPLACE FUNCTION model_eval_gate_bounded_metadata() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    size integer;
    depth integer;
BEGIN
    IF NEW.artifact_type IS DISTINCT FROM 'model' THEN
        RETURN NEW;  -- datasets, reports: the host's business
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.metadata IS NOT DISTINCT FROM OLD.metadata THEN
        RETURN NEW;
    END IF;
    -- 262144 bytes and depth 32: bounded_json.MAX_METADATA_BYTES and MAX_JSON_DEPTH.
    size := octet_length(NEW.metadata::text);
    IF size > 262144 THEN
        RAISE EXCEPTION 'model_eval_gate: metadata of % is % bytes, over the limit of 262144', NEW.id, size
            USING ERRCODE = 'check_violation', CONSTRAINT = 'artifacts_model_metadata_bounded';
    END IF;
    -- Hosts keep metadata as jsonb, json or text (the SQLite-era schema):
    -- text that is not JSON at all is the host's business, not a depth.
    BEGIN
        depth := model_eval_gate_jsonb_depth(NEW.metadata::text::jsonb, 32);
    EXCEPTION WHEN invalid_text_representation THEN
        depth := 0;
    END;
    IF depth > 32 THEN
        RAISE EXCEPTION 'model_eval_gate: metadata of % is nested more than 32 deep', NEW.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'artifacts_model_metadata_bounded';
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS artifacts_model_metadata_bounded ON artifacts;
CREATE TRIGGER artifacts_model_metadata_bounded
    BEFORE INSERT OR UPDATE OF metadata, artifact_type ON artifacts
    FOR EACH ROW EXECUTE FUNCTION model_eval_gate_bounded_metadata();

CREATE OR REPLACE FUNCTION model_eval_gate_bounded_request() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
BEGIN
    -- 1000 characters: safe_text.MAX_REASON_CHARS.
    IF char_length(NEW.reason) > 1000 OR char_length(COALESCE(NEW.requested_by, '')) > 1000 THEN
        RAISE EXCEPTION 'model_eval_gate: a gate request''s reason and requester are at most 1000 characters'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'gate_jobs_reason_bounded';
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS gate_jobs_reason_bounded ON gate_jobs;
CREATE TRIGGER gate_jobs_reason_bounded
    BEFORE INSERT ON gate_jobs
    FOR EACH ROW EXECUTE FUNCTION model_eval_gate_bounded_request();

-- The whole sandbox's peak memory and how it was measured (sandbox_memory.py):
-- 'cgroup', 'process_tree' or 'largest_process'. Rows stored before this have
-- neither, which reads as 'largest_process' (peak_rss_bytes only).
ALTER TABLE eval_results ADD COLUMN IF NOT EXISTS peak_memory_bytes bigint;
ALTER TABLE eval_results ADD COLUMN IF NOT EXISTS memory_scope text;
