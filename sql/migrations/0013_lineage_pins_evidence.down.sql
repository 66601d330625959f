-- Down of 0013 (documented, never run automatically): drops the pins, the
-- lineages' operator-set benchmarks, the record of operator actions and
-- eval_results.memory_scope.
DROP TABLE IF EXISTS model_pins;
DROP TABLE IF EXISTS lineage_benchmarks;
DROP TABLE IF EXISTS operator_actions;
ALTER TABLE eval_results DROP COLUMN IF EXISTS memory_scope;
