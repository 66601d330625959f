-- What the WS1 backfill found and what it could not decide.
--
-- model_backfill_log keeps each legacy artifact's metadata exactly as it was,
-- so the migration report can show old against new on every later run, and
-- a second backfill can see the work is done. model_review_items holds what
-- was ambiguous: recorded for a human, never guessed.

CREATE TABLE IF NOT EXISTS model_backfill_log (
    artifact_id        text PRIMARY KEY REFERENCES artifacts(id) ON DELETE CASCADE,
    legacy_metadata    jsonb NOT NULL,
    legacy_state       jsonb NOT NULL,
    extracted          jsonb NOT NULL,
    metadata_valid     boolean NOT NULL,
    backfilled_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS model_review_items (
    id            bigserial PRIMARY KEY,
    artifact_id   text NOT NULL REFERENCES artifacts(id) ON DELETE CASCADE,
    field         text NOT NULL,
    reason        text NOT NULL,
    legacy_value  jsonb,
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (artifact_id, field)
);
