-- Host schema: the tables of the research platform the gate joins.
--
-- The gate never owns these tables when it finds them. This migration only
-- creates what is absent, and records in model_eval_gate_host_objects every
-- table and column it created, so that the way back (0001 down) removes
-- exactly those and nothing the host made. It never rewrites a host row and
-- never changes a host column's type: a found table is used through casts
-- (docs/operations.md, "Deploying into an existing database"), and
-- `model-eval-gate migrate --check` refuses, before anything runs, a found
-- table the gate cannot use that way.
--
-- A missing column is added without a table rewrite: nullable, with a
-- constant default at most (PostgreSQL >= 11 stores that in the catalog).
-- Foreign keys on found tables are added NOT VALID and validated by 0008
-- without blocking writes; indexes on host tables are built CONCURRENTLY by
-- 0008. pgvector is not needed here: only fingerprints use it (0006).

CREATE TABLE IF NOT EXISTS model_eval_gate_host_objects (
    kind         text NOT NULL CHECK (kind IN ('table', 'column', 'constraint', 'index')),
    table_name   text NOT NULL,
    object_name  text NOT NULL,    -- the table, column, constraint or index name
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, table_name, object_name)
);
COMMENT ON TABLE model_eval_gate_host_objects IS
    'model-eval-gate: host-schema objects the gate created (and may remove on the way back); everything else in a host table belongs to the host';

CREATE OR REPLACE FUNCTION model_eval_gate_create_host_table(p_table text, p_definition text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass(format('%I', p_table)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (%s)', p_table, p_definition);
    INSERT INTO model_eval_gate_host_objects (kind, table_name, object_name) VALUES ('table', p_table, p_table);
    RETURN true;
END;
$$;

-- Adds a column to a host table only when it lacks one of that name; an
-- existing column of another type is left alone (migrate --check judges it).
CREATE OR REPLACE FUNCTION model_eval_gate_add_host_column(p_table text, p_column text, p_definition text)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_attribute
                WHERE attrelid = format('%I', p_table)::regclass AND attname = p_column
                  AND attnum > 0 AND NOT attisdropped) THEN
        RETURN false;
    END IF;
    EXECUTE format('ALTER TABLE %I ADD COLUMN %I %s', p_table, p_column, p_definition);
    INSERT INTO model_eval_gate_host_objects (kind, table_name, object_name) VALUES ('column', p_table, p_column);
    RETURN true;
END;
$$;

-- A foreign key on a column the gate added to a found table: NOT VALID, so
-- adding it reads no rows; 0008 validates it without blocking writes.
CREATE OR REPLACE FUNCTION model_eval_gate_add_host_foreign_key(p_table text, p_name text, p_definition text)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_constraint
                WHERE conrelid = format('%I', p_table)::regclass AND conname = p_name) THEN
        RETURN false;
    END IF;
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I %s NOT VALID', p_table, p_name, p_definition);
    INSERT INTO model_eval_gate_host_objects (kind, table_name, object_name) VALUES ('constraint', p_table, p_name);
    RETURN true;
END;
$$;

DO $$
DECLARE
    created boolean;
BEGIN
    created := model_eval_gate_create_host_table('artifacts', $t$
        id                text PRIMARY KEY,
        artifact_type     text NOT NULL,
        title             text NOT NULL DEFAULT '',
        metadata          jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_by        text,
        created_at        timestamptz NOT NULL DEFAULT now(),
        version_number    integer NOT NULL DEFAULT 1,
        parent_version_id text REFERENCES artifacts(id),
        version_tag       text,
        changelog         text,
        is_latest         integer NOT NULL DEFAULT 1 CHECK (is_latest IN (0, 1)),
        lifecycle_state   text NOT NULL DEFAULT 'active',
        superseded_by     text REFERENCES artifacts(id),
        origin_type       text,
        origin_url        text
    $t$);
    IF NOT created THEN
        -- A host artifacts table from before versioning: the lineage columns.
        PERFORM model_eval_gate_add_host_column('artifacts', 'version_number', 'integer DEFAULT 1');
        PERFORM model_eval_gate_add_host_column('artifacts', 'parent_version_id', 'text');
        PERFORM model_eval_gate_add_host_column('artifacts', 'version_tag', 'text');
        PERFORM model_eval_gate_add_host_column('artifacts', 'changelog', 'text');
        PERFORM model_eval_gate_add_host_column('artifacts', 'is_latest', 'integer DEFAULT 1');
        PERFORM model_eval_gate_add_host_column('artifacts', 'lifecycle_state', $d$text DEFAULT 'active'$d$);
        PERFORM model_eval_gate_add_host_column('artifacts', 'superseded_by', 'text');
        PERFORM model_eval_gate_add_host_column('artifacts', 'origin_type', 'text');
        PERFORM model_eval_gate_add_host_column('artifacts', 'origin_url', 'text');
        IF EXISTS (SELECT 1 FROM model_eval_gate_host_objects
                    WHERE kind = 'column' AND table_name = 'artifacts' AND object_name = 'parent_version_id') THEN
            PERFORM model_eval_gate_add_host_foreign_key('artifacts', 'artifacts_parent_version_id_fkey',
                                                         'FOREIGN KEY (parent_version_id) REFERENCES artifacts(id)');
        END IF;
        IF EXISTS (SELECT 1 FROM model_eval_gate_host_objects
                    WHERE kind = 'column' AND table_name = 'artifacts' AND object_name = 'superseded_by') THEN
            PERFORM model_eval_gate_add_host_foreign_key('artifacts', 'artifacts_superseded_by_fkey',
                                                         'FOREIGN KEY (superseded_by) REFERENCES artifacts(id)');
        END IF;
    END IF;

    -- One row per artifact of any kind; the lifecycle history hangs off it.
    PERFORM model_eval_gate_create_host_table('universal_artifacts', $t$
        artifact_id      text PRIMARY KEY,
        artifact_type    text NOT NULL,
        title            text,
        lifecycle_state  text NOT NULL DEFAULT 'active',
        created_at       timestamptz NOT NULL DEFAULT now(),
        updated_at       timestamptz NOT NULL DEFAULT now()
    $t$);

    PERFORM model_eval_gate_create_host_table('artifact_lifecycle_history', $t$
        id                   bigserial PRIMARY KEY,
        artifact_id          text NOT NULL REFERENCES universal_artifacts(artifact_id),
        from_state           text,
        to_state             text NOT NULL,
        reason               text,
        actor                text NOT NULL,
        related_artifact_id  text,
        metadata             jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at           timestamptz NOT NULL DEFAULT now()
    $t$);

    created := model_eval_gate_create_host_table('benchmarks', $t$
        id               text PRIMARY KEY,
        title            text,
        task             text NOT NULL,
        primary_metric   text NOT NULL,
        manifest         jsonb NOT NULL DEFAULT '{}'::jsonb,
        path             text,
        split_hash       text,
        created_at       timestamptz NOT NULL DEFAULT now(),
        updated_at       timestamptz NOT NULL DEFAULT now()
    $t$);
    IF NOT created THEN
        -- What the gate records about a benchmark directory (benchmark add).
        PERFORM model_eval_gate_add_host_column('benchmarks', 'manifest', 'jsonb');
        PERFORM model_eval_gate_add_host_column('benchmarks', 'path', 'text');
        PERFORM model_eval_gate_add_host_column('benchmarks', 'split_hash', 'text');
        PERFORM model_eval_gate_add_host_column('benchmarks', 'updated_at', 'timestamptz');
    END IF;

    PERFORM model_eval_gate_create_host_table('world_model_improvements', $t$
        id                   bigserial PRIMARY KEY,
        event_type           text NOT NULL,
        target_artifact_id   text NOT NULL,
        source_artifact_id   text,
        magnitude            text,
        detection_metadata   jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at           timestamptz NOT NULL DEFAULT now()
    $t$);

    PERFORM model_eval_gate_create_host_table('tickets', $t$
        id            bigserial PRIMARY KEY,
        ticket_type   text NOT NULL,
        artifact_id   text,
        assignee      text,
        title         text NOT NULL,
        body          text,
        status        text NOT NULL DEFAULT 'open',
        created_at    timestamptz NOT NULL DEFAULT now()
    $t$);

    PERFORM model_eval_gate_create_host_table('tool_calls', $t$
        id               bigserial PRIMARY KEY,
        tool_name        text NOT NULL,
        arguments        jsonb NOT NULL DEFAULT '{}'::jsonb,
        status           text NOT NULL,
        duration_ms      double precision,
        error            text,
        result_summary   jsonb,
        actor            text,
        started_at       timestamptz NOT NULL DEFAULT now()
    $t$);
END;
$$;

-- New row ids for the host tables the gate inserts into: the column's own
-- default where it has one (a sequence, an identity, gen_random_uuid()), and
-- a text id where a SQLite-era table has a text id and no default. Built from
-- the host's catalog, so each INSERT of ours names its id the host's way.
CREATE OR REPLACE FUNCTION model_eval_gate_define_id_function(p_table text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_type     text;
    v_default  text;
    v_identity "char";
    v_body     text;
BEGIN
    SELECT format_type(a.atttypid, a.atttypmod), pg_get_expr(d.adbin, d.adrelid), a.attidentity
      INTO v_type, v_default, v_identity
      FROM pg_attribute a
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE a.attrelid = format('%I', p_table)::regclass AND a.attname = 'id' AND NOT a.attisdropped;
    IF v_identity IN ('a', 'd') THEN
        v_body := format('SELECT nextval(pg_get_serial_sequence(%L, %L))::%s', p_table, 'id', v_type);
    ELSIF v_default IS NOT NULL THEN
        v_body := format('SELECT (%s)::%s', v_default, v_type);
    ELSIF v_type IN ('text', 'character varying') OR v_type LIKE 'character varying(%' THEN
        v_body := format('SELECT (%L || gen_random_uuid()::text)::%s', p_table || ':', v_type);
    ELSIF v_type = 'uuid' THEN
        v_body := 'SELECT gen_random_uuid()';
    ELSE
        -- migrate --check refuses this host schema before it gets here.
        RAISE EXCEPTION 'model_eval_gate: %.id is % without a default; the gate cannot make ids for it', p_table, v_type;
    END IF;
    EXECUTE format('CREATE OR REPLACE FUNCTION %I() RETURNS %s LANGUAGE sql VOLATILE AS %L',
                   'model_eval_gate_new_' || p_table || '_id', v_type, v_body);
END;
$$;

SELECT model_eval_gate_define_id_function(t)
  FROM unnest(ARRAY['artifact_lifecycle_history', 'world_model_improvements', 'tickets', 'tool_calls']) AS t;
