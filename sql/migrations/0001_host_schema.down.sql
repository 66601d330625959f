-- Way back from 0001_host_schema. Never run automatically.
--
-- These are host tables: on a deployment where the host created them before
-- this project, DO NOT run this file; drop only what this project added
-- (the lineage columns are harmless to keep). On a database this project
-- created, the statements below remove everything 0001 made.
DROP TABLE IF EXISTS tool_calls;
DROP TABLE IF EXISTS tickets;
DROP TABLE IF EXISTS world_model_improvements;
DROP TABLE IF EXISTS benchmarks;
DROP TABLE IF EXISTS artifact_lifecycle_history;
DROP TABLE IF EXISTS universal_artifacts;
DROP TABLE IF EXISTS artifacts;
-- The vector extension may serve other schemas; drop it only if nothing else uses it.
DROP EXTENSION IF EXISTS vector;
