-- name: lock_artifacts
-- Lock the rows a verdict touches, always in id order, so two appliers
-- (siblings promoting over one parent) cannot deadlock.
SELECT a.id, a.lineage_id, a.is_latest, a.lifecycle_state, a.superseded_by, a.title, a.created_by,
       mv.promotion_state, mv.trained_by
  FROM artifacts a LEFT JOIN model_versions mv ON mv.artifact_id = a.id
 WHERE a.id = ANY(%(ids)s)
 ORDER BY a.id
   FOR UPDATE OF a;

-- name: current_head_locked
SELECT id FROM artifacts
 WHERE lineage_id = %(lineage_id)s AND artifact_type = 'model' AND is_latest = 1
   FOR UPDATE;

-- name: supersede_artifact
UPDATE artifacts SET is_latest = 0, lifecycle_state = 'superseded', superseded_by = %(successor)s
 WHERE id = %(id)s;

-- name: supersede_model_version
UPDATE model_versions SET promotion_state = 'superseded' WHERE artifact_id = %(id)s;

-- name: activate_artifact
UPDATE artifacts SET is_latest = 1, lifecycle_state = 'active' WHERE id = %(id)s;

-- name: set_model_version_state
UPDATE model_versions SET promotion_state = %(state)s, promotion_notes = %(notes)s WHERE artifact_id = %(id)s;

-- name: set_promotion_notes
UPDATE model_versions SET promotion_notes = %(notes)s WHERE artifact_id = %(id)s;

-- name: park_candidate
UPDATE artifacts SET is_latest = 0, lifecycle_state = 'candidate' WHERE id = %(id)s;

-- name: set_universal_state
INSERT INTO universal_artifacts (artifact_id, artifact_type, title, lifecycle_state, created_at, updated_at)
VALUES (%(id)s, 'model', %(title)s, %(state)s, now(), now())
ON CONFLICT (artifact_id) DO UPDATE SET lifecycle_state = EXCLUDED.lifecycle_state, updated_at = now();

-- name: insert_history
-- Host tables get their ids the host's way (model_eval_gate_new_*_id, 0001)
-- and an explicit created_at (a SQLite-era column may have no default).
INSERT INTO artifact_lifecycle_history (id, artifact_id, from_state, to_state, reason, actor,
                                        related_artifact_id, metadata, created_at)
VALUES (model_eval_gate_new_artifact_lifecycle_history_id(), %(id)s, %(from_state)s, %(to_state)s, %(reason)s,
        %(actor)s, %(related)s, %(metadata)s::jsonb, now());

-- name: insert_promotion_event
INSERT INTO world_model_improvements (id, event_type, target_artifact_id, source_artifact_id, magnitude,
                                      detection_metadata, created_at)
VALUES (model_eval_gate_new_world_model_improvements_id(), 'model_version_promoted', %(target)s, %(source)s,
        %(magnitude)s, %(metadata)s::jsonb, now())
ON CONFLICT (target_artifact_id) WHERE event_type = 'model_version_promoted' DO NOTHING
RETURNING id;

-- name: insert_rejection_ticket
INSERT INTO tickets (id, ticket_type, artifact_id, assignee, title, body, status, created_at)
VALUES (model_eval_gate_new_tickets_id(), 'candidate-rejected', %(artifact_id)s, %(assignee)s, %(title)s, %(body)s,
        'open', now())
ON CONFLICT (artifact_id) WHERE ticket_type = 'candidate-rejected' AND status = 'open' DO NOTHING
RETURNING id;
