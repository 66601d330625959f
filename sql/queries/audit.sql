-- name: record_tool_call
INSERT INTO tool_calls (id, tool_name, arguments, status, duration_ms, error, result_summary, actor, started_at)
VALUES (model_eval_gate_new_tool_calls_id(), %(tool_name)s, %(arguments)s::jsonb, %(status)s, %(duration_ms)s, %(error)s,
        %(result_summary)s::jsonb, %(actor)s, %(started_at)s);
