-- Way back from 0002_model_versions. Never run automatically.
-- Drops every model version row: export it first (pg_dump -t model_versions).
DROP TABLE IF EXISTS model_versions;
