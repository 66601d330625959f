-- At most one is_latest = 1 model artifact per lineage, guaranteed by the
-- database itself, not only by the gate's Python.
--
-- A lineage is the tree of versions reachable through parent_version_id from
-- one root. A unique index cannot follow a recursive chain, so each artifact
-- carries its lineage root in lineage_id, maintained by triggers, and a
-- partial unique index does the guarding.

ALTER TABLE artifacts ADD COLUMN IF NOT EXISTS lineage_id text;

-- Existing rows: each gets the root of its chain. The depth bound stops a
-- corrupt cycle from looping forever; rows in a cycle keep their own id.
WITH RECURSIVE chain AS (
    SELECT id, id AS root, parent_version_id, 0 AS depth
      FROM artifacts
    UNION ALL
    SELECT chain.id, parent.id, parent.parent_version_id, chain.depth + 1
      FROM chain
      JOIN artifacts AS parent ON parent.id = chain.parent_version_id
     WHERE chain.depth < 10000
), roots AS (
    SELECT DISTINCT ON (id) id, root FROM chain ORDER BY id, depth DESC
)
UPDATE artifacts SET lineage_id = roots.root
  FROM roots
 WHERE artifacts.id = roots.id AND artifacts.lineage_id IS DISTINCT FROM roots.root;

ALTER TABLE artifacts ALTER COLUMN lineage_id SET NOT NULL;

CREATE OR REPLACE FUNCTION model_eval_gate_set_lineage() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.parent_version_id IS NULL THEN
        NEW.lineage_id := NEW.id;
    ELSE
        SELECT lineage_id INTO NEW.lineage_id FROM artifacts WHERE id = NEW.parent_version_id;
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
    -- A re-parented artifact takes its whole subtree to the new lineage.
    UPDATE artifacts SET lineage_id = NEW.lineage_id
     WHERE parent_version_id = NEW.id AND lineage_id IS DISTINCT FROM NEW.lineage_id;
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS artifacts_set_lineage ON artifacts;
CREATE TRIGGER artifacts_set_lineage
    BEFORE INSERT OR UPDATE OF parent_version_id, lineage_id ON artifacts
    FOR EACH ROW EXECUTE FUNCTION model_eval_gate_set_lineage();

DROP TRIGGER IF EXISTS artifacts_propagate_lineage ON artifacts;
CREATE TRIGGER artifacts_propagate_lineage
    AFTER UPDATE OF parent_version_id, lineage_id ON artifacts
    FOR EACH ROW WHEN (OLD.lineage_id IS DISTINCT FROM NEW.lineage_id)
    EXECUTE FUNCTION model_eval_gate_propagate_lineage();

CREATE UNIQUE INDEX IF NOT EXISTS artifacts_one_latest_model_per_lineage
    ON artifacts (lineage_id) WHERE is_latest = 1 AND artifact_type = 'model';
CREATE INDEX IF NOT EXISTS idx_artifacts_lineage ON artifacts (lineage_id);
