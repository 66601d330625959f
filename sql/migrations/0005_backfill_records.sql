-- What the WS1 backfill found and what it could not decide.
--
-- model_backfill_log keeps each legacy artifact's metadata exactly as it was,
-- so the migration report can show old against new on every later run, and
-- a second backfill can see the work is done. The exact stored text (the host
-- column may be TEXT, with its own spacing and duplicate keys) is kept too,
-- with the text the backfill wrote, so the way back (0005 down) can restore a
-- model row the host has not touched since, byte for byte.
-- model_review_items holds what was ambiguous: recorded for a human, never
-- guessed. Both reference artifacts softly: the record outlives the artifact.

CREATE TABLE IF NOT EXISTS model_backfill_log (
    artifact_id                text PRIMARY KEY,
    legacy_metadata            jsonb NOT NULL,
    legacy_metadata_text       text,
    backfilled_metadata_text   text,
    legacy_state               jsonb NOT NULL,
    extracted                  jsonb NOT NULL,
    metadata_valid             boolean NOT NULL,
    backfilled_at              timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS model_review_items (
    id            bigserial PRIMARY KEY,
    artifact_id   text NOT NULL,
    field         text NOT NULL,
    reason        text NOT NULL,
    legacy_value  jsonb,
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (artifact_id, field)
);
