-- The host-schema inspection behind `migrate --check` (store/host_contract.py).
-- Everything here only reads; nothing takes more than an ACCESS SHARE lock.

-- name: host_columns
SELECT c.relname AS table_name, a.attname AS column_name,
       format_type(a.atttypid, a.atttypmod) AS data_type,
       a.attnotnull AS not_null, d.adbin IS NOT NULL AS has_default, a.attidentity AS identity,
       a.attgenerated AS generated
  FROM pg_class c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE c.oid = ANY(SELECT to_regclass(quote_ident(t)) FROM unnest(%(tables)s::text[]) AS t)
 ORDER BY c.relname, a.attnum;

-- name: host_unique_keys
-- Column lists of the unique indexes (and primary keys) without predicate.
SELECT c.relname AS table_name,
       array_agg(a.attname::text ORDER BY k.ordinality) AS columns
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indrelid
  CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ordinality)
  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
 WHERE i.indisunique AND i.indpred IS NULL AND i.indisvalid
   AND c.oid = ANY(SELECT to_regclass(quote_ident(t)) FROM unnest(%(tables)s::text[]) AS t)
 GROUP BY c.relname, i.indexrelid;

-- name: host_objects_recorded
SELECT to_regclass('model_eval_gate_host_objects') IS NOT NULL AS present;

-- name: invalid_gate_indexes
-- Indexes the gate began to build CONCURRENTLY and a crash left INVALID.
SELECT h.table_name, h.object_name
  FROM model_eval_gate_host_objects h
  JOIN pg_class ic ON ic.oid = to_regclass(quote_ident(h.object_name))
  JOIN pg_index i ON i.indexrelid = ic.oid
 WHERE h.kind = 'index' AND NOT i.indisvalid
 ORDER BY h.object_name;

-- name: lineage_conflicts
-- Lineages (roots through parent_version_id) with more than one latest model:
-- the database guard (0003) would refuse them, so they are named first.
WITH RECURSIVE chain AS (
    SELECT id, id AS root, parent_version_id, 0 AS depth
      FROM artifacts WHERE artifact_type = 'model'
    UNION ALL
    SELECT chain.id, parent.id, parent.parent_version_id, chain.depth + 1
      FROM chain
      JOIN artifacts AS parent ON parent.id = chain.parent_version_id
     WHERE chain.depth < 1000
), roots AS (
    SELECT DISTINCT ON (id) id, root FROM chain ORDER BY id, depth DESC
)
SELECT roots.root AS lineage, array_agg(a.id::text ORDER BY a.id) AS latest
  FROM roots JOIN artifacts a ON a.id = roots.id
 WHERE a.is_latest::text IN ('1', 'true')
 GROUP BY roots.root
HAVING count(*) > 1
 ORDER BY roots.root;

-- name: duplicate_promotion_events
SELECT target_artifact_id::text AS artifact_id, array_agg(id::text ORDER BY id::text) AS rows
  FROM world_model_improvements
 WHERE event_type = 'model_version_promoted'
 GROUP BY target_artifact_id
HAVING count(*) > 1
 ORDER BY 1;

-- name: duplicate_open_rejections
SELECT artifact_id::text AS artifact_id, array_agg(id::text ORDER BY id::text) AS rows
  FROM tickets
 WHERE ticket_type = 'candidate-rejected' AND status = 'open'
 GROUP BY artifact_id
HAVING count(*) > 1
 ORDER BY 1;

-- name: vector_extension
SELECT (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = 'vector') AS schema,
       EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') AS available;

-- name: server_facts
SELECT current_setting('server_version_num')::int AS version_num, current_user AS role,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
       has_database_privilege(current_database(), 'CREATE') AS can_create_schema_objects,
       has_schema_privilege('public', 'CREATE') AS can_create_in_public;
