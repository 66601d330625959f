-- Way back from 0009_holdout_accounting. Never run automatically.
-- Drops the query record and every lineage's attempt count: a later up
-- migration starts every lineage at attempt 1 again, which hands each one
-- a fresh false-promotion budget on splits it has already queried.
DROP VIEW IF EXISTS author_releases;
DROP TABLE IF EXISTS holdout_queries;
DROP TABLE IF EXISTS holdout_attempts;
DROP TABLE IF EXISTS holdout_splits;
