-- Way back from 0005_backfill_records. Never run automatically.
-- The legacy metadata copies are the only record of the pre-WS1 blobs: export first.
DROP TABLE IF EXISTS model_review_items;
DROP TABLE IF EXISTS model_backfill_log;
