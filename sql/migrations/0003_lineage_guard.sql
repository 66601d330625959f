-- At most one is_latest = 1 model artifact per lineage, guaranteed by the
-- database itself, not only by the gate's Python.
--
-- A lineage is the tree of versions reachable through parent_version_id from
-- one root. Each model artifact carries its lineage root in lineage_id,
-- maintained by a trigger on model rows only; other artifacts keep NULL, so
-- the host's non-model rows are never written. The column is added nullable
-- (no table rewrite); existing model rows get theirs from `migrate` in
-- batches of committed transactions after this migration, never in one
-- statement that would lock the whole table (migrate.backfill_lineage).
--
-- The guard is a deferred constraint trigger rather than a unique index, so
-- that the host's own way of publishing a version (insert the new latest,
-- then retire the old one, in one transaction) keeps working: it is checked
-- when the transaction commits, under a per-lineage advisory lock that
-- serialises concurrent publishers of one lineage (READ COMMITTED, the
-- default isolation; docs/operations.md says so).

SELECT model_eval_gate_add_host_column('artifacts', 'lineage_id', 'text');

CREATE OR REPLACE FUNCTION model_eval_gate_set_lineage() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.parent_version_id IS NULL THEN
        NEW.lineage_id := NEW.id;
    ELSE
        SELECT COALESCE(lineage_id, id) INTO NEW.lineage_id FROM artifacts WHERE id = NEW.parent_version_id;
        -- The parent's foreign key is checked after this trigger; leave a
        -- missing parent for it to report, with a non-null placeholder.
        NEW.lineage_id := COALESCE(NEW.lineage_id, NEW.parent_version_id);
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION model_eval_gate_propagate_lineage() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- A re-parented model takes its whole subtree to the new lineage.
    UPDATE artifacts SET lineage_id = NEW.lineage_id
     WHERE parent_version_id = NEW.id AND artifact_type = 'model'
       AND lineage_id IS DISTINCT FROM NEW.lineage_id;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION model_eval_gate_check_one_latest() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_latest text[];
BEGIN
    -- Concurrent publishers of one lineage check one after the other; each
    -- check's statement sees what the one before it committed.
    PERFORM pg_advisory_xact_lock(hashtext('model_eval_gate.lineage'), hashtext(NEW.lineage_id));
    SELECT array_agg(id ORDER BY id) INTO v_latest
      FROM artifacts
     WHERE lineage_id = NEW.lineage_id AND artifact_type = 'model' AND is_latest = 1;
    IF cardinality(v_latest) > 1 THEN
        RAISE EXCEPTION 'model_eval_gate: lineage % would have % latest model versions: %',
                        NEW.lineage_id, cardinality(v_latest), array_to_string(v_latest, ', ')
            USING ERRCODE = 'unique_violation',
                  CONSTRAINT = 'artifacts_one_latest_model_per_lineage',
                  HINT = 'retire the old latest version (is_latest = 0) in the same transaction';
    END IF;
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS artifacts_set_lineage ON artifacts;
CREATE TRIGGER artifacts_set_lineage
    BEFORE INSERT OR UPDATE OF parent_version_id, lineage_id, artifact_type ON artifacts
    FOR EACH ROW WHEN (NEW.artifact_type = 'model')
    EXECUTE FUNCTION model_eval_gate_set_lineage();

DROP TRIGGER IF EXISTS artifacts_propagate_lineage ON artifacts;
CREATE TRIGGER artifacts_propagate_lineage
    AFTER UPDATE OF parent_version_id, lineage_id ON artifacts
    FOR EACH ROW WHEN (NEW.artifact_type = 'model' AND OLD.lineage_id IS DISTINCT FROM NEW.lineage_id)
    EXECUTE FUNCTION model_eval_gate_propagate_lineage();

DROP TRIGGER IF EXISTS artifacts_one_latest_model_per_lineage ON artifacts;
CREATE CONSTRAINT TRIGGER artifacts_one_latest_model_per_lineage
    AFTER INSERT OR UPDATE OF is_latest, lineage_id, artifact_type ON artifacts
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.artifact_type = 'model' AND NEW.is_latest = 1)
    EXECUTE FUNCTION model_eval_gate_check_one_latest();
