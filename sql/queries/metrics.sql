-- Queries of the daemon's Prometheus exporter (metrics.py), run at scrape
-- time on the exporter's own connection.

-- name: metrics_statement_timeout
-- A scrape must not hang on a stuck database: Prometheus times out and the
-- exporter says database_up 0 instead.
SELECT set_config('statement_timeout', %(ms)s, false);

-- name: metrics_queue
-- One pass over the queued and running rows (the partial indexes keep it
-- cheap however many finished jobs there are), one count of failed jobs, and
-- the daemons' control connections (application_name is visible to every role).
SELECT count(*) FILTER (WHERE status = 'queued') AS queued,
       count(*) FILTER (WHERE status = 'queued' AND run_after <= now()) AS due,
       COALESCE(extract(epoch FROM now() - min(run_after) FILTER (WHERE status = 'queued' AND run_after <= now())),
                0)::double precision AS oldest_due_age_seconds,
       count(*) FILTER (WHERE status = 'running') AS running,
       (SELECT count(*) FROM gate_jobs WHERE status = 'failed') AS failed,
       (SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'model-eval-gate-daemon') AS daemons
  FROM gate_jobs
 WHERE status IN ('queued', 'running');
