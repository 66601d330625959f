"""The lineage invariants of DESIGN.md section 2, asserted after every scenario."""
from __future__ import annotations


def assert_lineage_invariants(conn) -> None:
    def rows(sql):
        return conn.execute(sql).fetchall()

    doubled = rows("""SELECT lineage_id, count(*) AS n FROM artifacts
                       WHERE artifact_type = 'model' AND is_latest = 1
                       GROUP BY lineage_id HAVING count(*) > 1""")
    assert not doubled, f"lineages with more than one latest version: {doubled}"

    bad_promoted = rows("""SELECT a.id, a.is_latest, a.lifecycle_state FROM artifacts a
                            JOIN model_versions mv ON mv.artifact_id = a.id
                           WHERE mv.promotion_state = 'promoted'
                             AND (a.is_latest <> 1 OR a.lifecycle_state <> 'active')""")
    assert not bad_promoted, f"promoted versions that are not latest and active: {bad_promoted}"

    bad_superseded = rows("""SELECT a.id, a.superseded_by, a.is_latest FROM artifacts a
                              JOIN model_versions mv ON mv.artifact_id = a.id
                             WHERE mv.promotion_state = 'superseded'
                               AND (a.superseded_by IS NULL OR a.is_latest <> 0
                                    OR a.lifecycle_state <> 'superseded')""")
    assert not bad_superseded, f"superseded versions without a successor: {bad_superseded}"

    # Promotions decided by the gate (not the legacy backfill) carry exactly one
    # event, and a superseded parent exactly one history row per supersession.
    events = rows("""SELECT target_artifact_id, count(*) AS n FROM world_model_improvements
                      WHERE event_type = 'model_version_promoted'
                      GROUP BY target_artifact_id HAVING count(*) <> 1""")
    assert not events, f"promotions with other than one event: {events}"
    missing_events = rows("""SELECT a.id FROM artifacts a
                               JOIN model_versions mv ON mv.artifact_id = a.id
                              WHERE a.superseded_by IS NOT NULL
                                AND NOT EXISTS (SELECT 1 FROM world_model_improvements w
                                                 WHERE w.target_artifact_id = a.superseded_by
                                                   AND w.event_type = 'model_version_promoted')""")
    assert not missing_events, f"supersessions without a promotion event: {missing_events}"
    history = rows("""SELECT a.id, (SELECT count(*) FROM artifact_lifecycle_history h
                                     WHERE h.artifact_id = a.id AND h.to_state = 'superseded') AS n
                        FROM artifacts a WHERE a.superseded_by IS NOT NULL""")
    assert all(r["n"] == 1 for r in history), f"superseded parents without exactly one history row: {history}"
