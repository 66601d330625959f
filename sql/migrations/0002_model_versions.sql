-- model_versions: the model-specific companion of artifacts (WS1 spec).
--
-- Same column names and value vocabulary as the specification; PostgreSQL
-- types where it used SQLite stand-ins (timestamptz for *_at, jsonb for
-- *_json). is_external stays an integer 0/1 as the spec has it.

CREATE TABLE IF NOT EXISTS model_versions (
    artifact_id               text PRIMARY KEY REFERENCES artifacts(id) ON DELETE CASCADE,
    is_external               integer NOT NULL DEFAULT 0 CHECK (is_external IN (0, 1)),
    external_source_url       text,
    external_source_version   text,      -- HF revision, GitHub SHA, Zenodo version
    base_model_id             text REFERENCES artifacts(id),   -- for fine-tunes
    code_repo_url             text,
    code_commit_sha           text,
    code_entrypoint           text,      -- e.g. "forge/training/train_celltype.py"
    training_started_at       timestamptz,
    training_completed_at     timestamptz,
    trained_by                text,      -- agent_id
    gpu_allocation_id         text,      -- resource_allocations.id reference
    training_params_json      jsonb,
    eval_metrics_json         jsonb,
    eval_dataset_artifact_id  text REFERENCES artifacts(id),
    benchmark_id              text,
    promotion_state           text NOT NULL DEFAULT 'candidate'
        CHECK (promotion_state IN ('candidate', 'promoted', 'rejected', 'superseded')),
    promotion_notes           text,
    created_at                timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS idx_model_versions_base ON model_versions (base_model_id);
CREATE INDEX IF NOT EXISTS idx_model_versions_trained_by ON model_versions (trained_by);
CREATE INDEX IF NOT EXISTS idx_model_versions_promotion ON model_versions (promotion_state);
