-- Way back from 0005_backfill_records. Never run automatically.
--
-- First the backfill's one write to host rows is undone: each legacy model's
-- artifacts.metadata gets its exact legacy text back, but only where it still
-- holds what the backfill wrote (a later edit by the host is kept). Then the
-- records go: export them first if you need them (pg_dump -t model_backfill_log).
DO $$
DECLARE
    v_type text;
BEGIN
    IF to_regclass('model_backfill_log') IS NULL OR to_regclass('artifacts') IS NULL THEN
        RETURN;
    END IF;
    SELECT format_type(atttypid, atttypmod) INTO v_type FROM pg_attribute
     WHERE attrelid = 'artifacts'::regclass AND attname = 'metadata' AND NOT attisdropped;
    IF v_type IS NULL THEN
        RETURN;
    END IF;
    EXECUTE format($u$
        UPDATE artifacts a SET metadata = l.legacy_metadata_text::%s
          FROM model_backfill_log l
         WHERE a.id = l.artifact_id AND l.legacy_metadata_text IS NOT NULL
           AND a.metadata::text IS NOT DISTINCT FROM l.backfilled_metadata_text
           AND a.metadata::text IS DISTINCT FROM l.legacy_metadata_text
    $u$, v_type);
END;
$$;
DROP TABLE IF EXISTS model_review_items;
DROP TABLE IF EXISTS model_backfill_log;
