-- name: holdout_register_split
-- The split's accounting row, created on its first query. Budget and release
-- step follow the recorded manifest (an operator may raise a budget with
-- `benchmark add`); a refreshed split is a new split_hash, so a new row.
INSERT INTO holdout_splits (benchmark_id, split_hash, split_role, n_examples, query_budget, release_step)
VALUES (%(benchmark_id)s, %(split_hash)s, %(split_role)s, %(n_examples)s, %(query_budget)s, %(release_step)s)
ON CONFLICT (benchmark_id, split_hash, split_role)
DO UPDATE SET query_budget = EXCLUDED.query_budget, release_step = EXCLUDED.release_step
RETURNING benchmark_id, split_hash, split_role, n_examples, query_budget, release_step, first_query_at,
          (SELECT count(*) FROM holdout_queries q
            WHERE q.benchmark_id = %(benchmark_id)s AND q.split_hash = %(split_hash)s
              AND q.split_role = %(split_role)s) AS queries_used;

-- name: holdout_query_for_job
SELECT id, attempt_number, alpha, confidence FROM holdout_queries
 WHERE job_id = %(job_id)s AND job_attempt = %(job_attempt)s AND split_role = %(split_role)s;

-- name: holdout_repeated_question
-- The lineage asked exactly this question before: it keeps that attempt's number.
SELECT attempt_number FROM holdout_queries
 WHERE lineage_id = %(lineage_id)s AND benchmark_id = %(benchmark_id)s AND split_hash = %(split_hash)s
   AND split_role = %(split_role)s AND question_hash = %(question_hash)s AND attempt_number IS NOT NULL
 ORDER BY id
 LIMIT 1;

-- name: holdout_next_attempt
-- Row-locked increment: concurrent queries of one lineage get distinct numbers.
INSERT INTO holdout_attempts (lineage_id, benchmark_id, split_hash, split_role, attempts)
VALUES (%(lineage_id)s, %(benchmark_id)s, %(split_hash)s, %(split_role)s, 1)
ON CONFLICT (lineage_id, benchmark_id, split_hash, split_role)
DO UPDATE SET attempts = holdout_attempts.attempts + 1
RETURNING attempts;

-- name: holdout_insert_query
INSERT INTO holdout_queries (benchmark_id, split_hash, split_role, kind, artifact_id, lineage_id,
                             compared_against, author, requested_by, job_id, job_attempt,
                             attempt_number, alpha, confidence, question_hash)
VALUES (%(benchmark_id)s, %(split_hash)s, %(split_role)s, %(kind)s, %(artifact_id)s, %(lineage_id)s,
        %(compared_against)s, %(author)s,
        COALESCE((SELECT requested_by FROM gate_jobs WHERE id = %(job_id)s), %(requested_by)s),
        %(job_id)s, %(job_attempt)s, %(attempt_number)s, %(alpha)s, %(confidence)s, %(question_hash)s)
RETURNING id, requested_by;

-- name: holdout_answer_query
UPDATE holdout_queries
   SET outcome = %(outcome)s, reason_code = %(reason_code)s, released = %(released)s::jsonb,
       detail = %(detail)s::jsonb, compared_against = %(compared_against)s, answered_at = now()
 WHERE id = %(id)s;

-- name: holdout_recent_queries
-- Queries in the rate-limit window, by the candidate's author and by its
-- lineage; registrations (a candidate's first gate) apart from re-asks.
SELECT count(*) FILTER (WHERE author = %(author)s AND kind = 'gate')       AS author_registrations,
       count(*) FILTER (WHERE author = %(author)s AND kind <> 'gate')      AS author_regates,
       count(*) FILTER (WHERE lineage_id = %(lineage_id)s AND kind = 'gate')  AS lineage_registrations,
       count(*) FILTER (WHERE lineage_id = %(lineage_id)s AND kind <> 'gate') AS lineage_regates,
       min(asked_at) FILTER (WHERE author = %(author)s OR lineage_id = %(lineage_id)s) AS oldest
  FROM holdout_queries
 WHERE asked_at > now() - make_interval(secs => %(window_seconds)s)
   AND (author = %(author)s OR lineage_id = %(lineage_id)s);

-- name: holdout_split_status
-- Per split: queries used, promotions released, budget, age; the current
-- split of each benchmark first.
SELECT s.benchmark_id, s.split_hash, s.split_role, s.n_examples, s.query_budget, s.release_step,
       s.first_query_at, (b.split_hash = s.split_hash) AS current,
       count(q.id) AS queries_used,
       count(q.id) FILTER (WHERE q.kind IN ('gate', 'regate') AND q.released->>'outcome' IN ('promote', 'promote_with_tradeoff'))
           AS promotions_released,
       count(DISTINCT q.lineage_id) AS lineages,
       coalesce(max(q.attempt_number), 0) AS max_attempt,
       max(q.asked_at) AS last_query_at
  FROM holdout_splits s
  LEFT JOIN benchmarks b ON b.id = s.benchmark_id
  LEFT JOIN holdout_queries q
         ON q.benchmark_id = s.benchmark_id AND q.split_hash = s.split_hash AND q.split_role = s.split_role
 GROUP BY s.benchmark_id, s.split_hash, s.split_role, s.n_examples, s.query_budget, s.release_step,
          s.first_query_at, b.split_hash
 ORDER BY s.benchmark_id, (b.split_hash = s.split_hash) DESC NULLS LAST, s.first_query_at DESC, s.split_role DESC;

-- name: can_read_operator_records
-- An operator's role can read the gate's full records; an author's cannot.
SELECT has_table_privilege(current_user, 'gate_jobs', 'SELECT')
   AND has_table_privilege(current_user, 'holdout_queries', 'SELECT') AS allowed;
