-- History: every run and attempt is recorded in transactions of their own, whatever the
-- caller does; each role sees its own runs; old runs are purged.
-- Run ids are numbered from 501 in this file, whatever ran before it.
DO $$ BEGIN PERFORM setval('parallel_guarantee_run_id_seq', 501, false); END $$;
SET client_min_messages = warning;
-- PostgreSQL's max_parallel_workers caps the parallel workers alive at once, not those one
-- Gather launches: a worker that has already finished frees its place for the next launch.
-- So that no worker can finish before the leader has launched the others (a busy machine
-- can pause the leader between launches), every 50th row costs a millisecond.
CREATE TABLE hist_big_rows (id int) WITH (parallel_workers = 4);
INSERT INTO hist_big_rows SELECT generate_series(1, 5000);
CREATE VIEW hist_big AS SELECT id FROM hist_big_rows WHERE pg_sleep(CASE WHEN id % 50 = 0 THEN 0.001 ELSE 0 END) IS NOT NULL;
TRUNCATE parallel_guarantee_run_history CASCADE;

-- Success, degraded, failure (53G01), a statement error, each with a label.
SELECT status FROM run_with_parallel_guarantee('SELECT count(*) FROM hist_big', label => 'ok');
SET max_parallel_workers = 3;
SELECT status FROM run_with_parallel_guarantee('SELECT count(*) FROM hist_big', max_attempts => 2,
                                               retry_delay => '0', label => 'degraded');
SET max_parallel_workers = 1;
DO $$ BEGIN
  PERFORM run_with_parallel_guarantee('SELECT count(*) FROM hist_big', max_attempts => 2,
                                      retry_delay => '0', label => 'failed');
EXCEPTION WHEN OTHERS THEN NULL;
END $$;
RESET max_parallel_workers;
DO $$ BEGIN
  PERFORM run_with_parallel_guarantee('SELECT count(*) / 0 FROM hist_big', label => 'error');
EXCEPTION WHEN OTHERS THEN NULL;
END $$;

-- The caller rolls back: the statement's own work and the history stay.
BEGIN;
SELECT status FROM run_with_parallel_guarantee('CREATE TABLE hist_kept AS SELECT count(*) FROM hist_big',
                                               label => 'rolled back caller');
ROLLBACK;

SELECT label, status, rows, workers_planned, workers_launched, attempts, sqlstate, message,
       statement, finished_at >= started_at AS finished, async
  FROM parallel_guarantee_runs ORDER BY run_id;
SELECT r.label, a.attempt, a.workers_planned, a.workers_launched, a.outcome
  FROM parallel_guarantee_attempts a JOIN parallel_guarantee_runs r USING (run_id)
 ORDER BY a.run_id, a.attempt;
SELECT label, runs, target_met, degraded, failed, errors, avg_attempts
  FROM parallel_guarantee_label_summary ORDER BY label;
SELECT status, label FROM parallel_guarantee_status(
    (SELECT max(run_id) FROM parallel_guarantee_runs));

-- The history tables themselves are not readable by ordinary roles; the views show each
-- role its own runs, and everything to pg_read_all_stats.
CREATE ROLE hist_alice;
CREATE ROLE hist_bob;
CREATE ROLE hist_auditor IN ROLE pg_read_all_stats;
GRANT SELECT ON hist_big TO hist_alice, hist_bob;
GRANT EXECUTE ON FUNCTION run_with_parallel_guarantee TO hist_alice, hist_bob;
SELECT run_id AS ok_run FROM parallel_guarantee_runs WHERE label = 'ok' \gset
SET ROLE hist_alice;
SELECT status FROM run_with_parallel_guarantee('SELECT count(*) FROM hist_big', label => 'alice job');
SELECT label, role, statement FROM parallel_guarantee_runs;
SELECT count(*) FROM parallel_guarantee_run_history;
RESET ROLE;
SET ROLE hist_bob;
SELECT status FROM run_with_parallel_guarantee('SELECT count(*) FROM hist_big', label => 'bob job');
SELECT label, role FROM parallel_guarantee_runs;
SELECT count(*) FROM parallel_guarantee_attempts;
SELECT label FROM parallel_guarantee_label_summary;
\set VERBOSITY sqlstate
SELECT parallel_guarantee_status(:ok_run);
\set VERBOSITY default
RESET ROLE;
SET ROLE hist_auditor;
SELECT count(*) AS runs_seen FROM parallel_guarantee_runs;
RESET ROLE;
SET ROLE hist_alice;
SELECT count(*) AS runs_seen FROM parallel_guarantee_runs;
RESET ROLE;

-- Retention: a run that finishes purges runs older than parallel_guarantee.history_days.
INSERT INTO parallel_guarantee_run_history (run_id, label, role_oid, statement, target_workers,
    min_workers, max_attempts, retry_delay_ms, force_workers, wait_for_slots, max_wait_ms,
    priority, async, started_at, finished_at, status)
VALUES (-1, 'ancient', 10, 'SELECT 1', 4, 2, 5, 2000, false, true, 8000, 0, false,
        now() - interval '40 days', now() - interval '40 days', 'target_met'),
       (-2, 'recent', 10, 'SELECT 1', 4, 2, 5, 2000, false, true, 8000, 0, false,
        now() - interval '2 days', now() - interval '2 days', 'target_met');
SET parallel_guarantee.history_days = 30;
SELECT status FROM run_with_parallel_guarantee('SELECT count(*) FROM hist_big', label => 'purger');
SELECT label FROM parallel_guarantee_run_history WHERE run_id < 0 ORDER BY run_id DESC;
SET parallel_guarantee.history_days = 1;
SELECT status FROM run_with_parallel_guarantee('SELECT count(*) FROM hist_big', label => 'purger');
SELECT count(*) AS old_runs_left FROM parallel_guarantee_run_history WHERE run_id < 0;
RESET parallel_guarantee.history_days;

-- An unknown run id is a clear error.
SELECT parallel_guarantee_status(-42);

DROP OWNED BY hist_alice, hist_bob, hist_auditor;
DROP ROLE hist_alice, hist_bob, hist_auditor;
