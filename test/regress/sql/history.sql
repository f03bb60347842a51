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
-- Other sessions' parallel workers make the shortage: a submitted run (the hog) holds n of
-- the 8 (test/pg.conf).  One row per page, each sleeping an hour: none of its processes
-- finishes early.
CREATE TABLE hist_hog_rows (id int, pad text) WITH (fillfactor = 10, parallel_workers = 8);
INSERT INTO hist_hog_rows SELECT g, repeat('x', 1500) FROM generate_series(1, 64) g;
\set hog_statement 'SELECT count(*) FROM hist_hog_rows WHERE pg_sleep(3600 + id * 0) IS NOT NULL'
-- Polls (at most 60 s) until the hog runs with its n parallel workers, all of them alive.
CREATE FUNCTION hist_hog_holds(hog bigint, n int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1 .. 6000 LOOP
    PERFORM pg_stat_clear_snapshot();
    IF EXISTS (SELECT FROM parallel_guarantee_activity a
                WHERE a.run_id = hog AND a.state = 'running' AND a.workers_launched = n
                  AND (SELECT count(*) FROM pg_stat_activity s
                        WHERE s.backend_type = 'parallel worker' AND s.leader_pid = a.worker_pid) = n) THEN
      RETURN true;
    END IF;
    PERFORM pg_sleep(0.01);  -- poll
  END LOOP;
  RETURN false;
END $$;
-- Only this file's runs, of both kinds.
TRUNCATE parallel_guarantee_run_history, parallel_guarantee_chunk_run_history CASCADE;

-- Success, degraded, failure (53G01), a statement error, each with a label.  The hog holds 5
-- of the 8 workers while the degraded and the failed run make their two attempts each.
SELECT status FROM run_with_parallel_guarantee('SELECT count(*) FROM hist_big', label => 'ok');
SELECT submit_parallel_guarantee(:'hog_statement', target_workers => 5, min_workers => 5,
                                 label => 'hog') AS hog \gset
SELECT hist_hog_holds(:hog, 5) AS hog_holds_5;
SELECT status FROM run_with_parallel_guarantee('SELECT count(*) FROM hist_big', max_attempts => 2,
                                               retry_delay => '0', wait_for_slots => false,
                                               label => 'degraded');
DO $$ BEGIN
  PERFORM run_with_parallel_guarantee('SELECT count(*) FROM hist_big', min_workers => 4, max_attempts => 2,
                                      retry_delay => '0', wait_for_slots => false, label => 'failed');
EXCEPTION WHEN OTHERS THEN NULL;
END $$;
SELECT parallel_guarantee_cancel(:hog) AS hog_cancelled;
SELECT status FROM parallel_guarantee_wait(:hog, '60 s');
DO $$ BEGIN
  PERFORM run_with_parallel_guarantee('SELECT count(*) / 0 FROM hist_big', label => 'error');
EXCEPTION WHEN OTHERS THEN NULL;
END $$;

-- The caller rolls back: the statement's own work and the history stay.
BEGIN;
SELECT status FROM run_with_parallel_guarantee('CREATE TABLE hist_kept AS SELECT count(*) FROM hist_big',
                                               label => 'rolled back caller');
ROLLBACK;

-- max_wait not given: the run had 30 minutes (1.0 default).
SELECT label, kind, status, rows, workers_planned, workers_launched, attempts, sqlstate, message,
       statement, finished_at >= started_at AS finished, async, max_wait
  FROM parallel_guarantee_runs ORDER BY run_id;
SELECT r.label, a.attempt, a.workers_planned, a.workers_launched, a.outcome
  FROM parallel_guarantee_attempts a JOIN parallel_guarantee_runs r USING (run_id)
 ORDER BY a.run_id, a.attempt;
SELECT label, runs, target_met, degraded, done, failed, errors, cancelled, lost, running, avg_attempts
  FROM parallel_guarantee_label_summary ORDER BY label;
SELECT status, label FROM parallel_guarantee_status(
    (SELECT max(run_id) FROM parallel_guarantee_runs));

-- The history tables themselves are not readable by ordinary roles; the views show each
-- role its own runs, and everything to pg_read_all_stats.
CREATE ROLE hist_alice;
CREATE ROLE hist_bob;
CREATE ROLE hist_auditor IN ROLE pg_read_all_stats;
GRANT SELECT ON hist_big TO hist_alice, hist_bob;
-- The one grant: USAGE on the schema (EXECUTE and SELECT inside it are PUBLIC's).
GRANT USAGE ON SCHEMA parallel_guarantee TO hist_alice, hist_bob, hist_auditor;
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

-- The label summary counts each ending apart, for both kinds of run: label 'nightly' gets
-- 3 runs that met their target, 1 degraded and 1 failed (the hog, itself a 'nightly' run,
-- holds 5 of the 8 workers meanwhile), 2 chunked runs done and 1 failed (1 failed of each
-- kind: 2), 1 statement error, 1 lost (recorded as running, no worker has it), and the hog
-- running, then cancelled.
DO $$ BEGIN
  FOR i IN 1 .. 3 LOOP
    PERFORM run_with_parallel_guarantee('SELECT count(*) FROM hist_big', label => 'nightly');
  END LOOP;
  FOR i IN 1 .. 2 LOOP
    PERFORM run_in_chunks('SELECT g FROM generate_series(1, 3) g', 'SELECT $1', chunk_size => 2,
                          label => 'nightly');
  END LOOP;
END $$;
DO $$ BEGIN
  PERFORM run_in_chunks('SELECT g FROM generate_series(1, 3) g', 'SELECT 1 / (cardinality($1) - cardinality($1))', chunk_size => 2,
                        max_retries => 0, label => 'nightly');
EXCEPTION WHEN OTHERS THEN NULL;
END $$;
DO $$ BEGIN
  PERFORM run_with_parallel_guarantee('SELECT count(*) / 0 FROM hist_big', label => 'nightly');
EXCEPTION WHEN OTHERS THEN NULL;
END $$;
SELECT submit_parallel_guarantee(:'hog_statement', target_workers => 5, min_workers => 5,
                                 label => 'nightly') AS hog \gset
SELECT hist_hog_holds(:hog, 5) AS hog_holds_5;
SELECT status FROM run_with_parallel_guarantee('SELECT count(*) FROM hist_big', max_attempts => 1,
                                               wait_for_slots => false, label => 'nightly');
SELECT status FROM run_with_parallel_guarantee('SELECT count(*) FROM hist_big', min_workers => 4,
                                               max_attempts => 1, wait_for_slots => false,
                                               raise_on_failure => false, label => 'nightly');
INSERT INTO parallel_guarantee_run_history (run_id, label, role_oid, role_name, statement, target_workers,
    min_workers, max_attempts, retry_delay_ms, force_workers, wait_for_slots, max_wait_ms,
    priority, async, started_at, status)
VALUES (590, 'nightly', 10, current_user, 'SELECT 1', 4, 2, 5, 2000, false, true, 1800000, 0, true,
        now(), 'running');
SELECT runs, target_met, degraded, done, failed, errors, cancelled, lost, running
  FROM parallel_guarantee_label_summary WHERE label = 'nightly';
SELECT parallel_guarantee_cancel(:hog) AS hog_cancelled;
SELECT status FROM parallel_guarantee_wait(:hog, '60 s');
SELECT runs, target_met, degraded, done, failed, errors, cancelled, lost, running
  FROM parallel_guarantee_label_summary WHERE label = 'nightly';
SELECT kind, status, count(*) FROM parallel_guarantee_runs WHERE label = 'nightly'
 GROUP BY 1, 2 ORDER BY 1, 2;
-- Elapsed statistics over the finished runs (the lost one has none): the average and the
-- 95th percentile lie between the shortest and the longest, the last is that of the run
-- that finished last; the average attempts are those of the guaranteed runs.
SELECT s.avg_elapsed BETWEEN r.shortest AND r.longest AS avg_within,
       s.p95_elapsed BETWEEN r.shortest AND r.longest AS p95_within,
       s.p95_elapsed >= (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY elapsed)
                           FROM parallel_guarantee_runs WHERE label = 'nightly') AS p95_above_median,
       s.last_elapsed = r.last_finished AS last_is_latest,
       s.last_started = r.last_started AS last_started_is_latest,
       s.avg_attempts = r.avg_attempts AS avg_attempts_guaranteed
  FROM parallel_guarantee_label_summary s,
       (SELECT min(elapsed) AS shortest, max(elapsed) AS longest, max(started_at) AS last_started,
               (array_agg(elapsed ORDER BY finished_at DESC) FILTER (WHERE finished_at IS NOT NULL))[1]
                 AS last_finished,
               round(avg(attempts) FILTER (WHERE kind = 'guaranteed'), 2) AS avg_attempts
          FROM parallel_guarantee_runs WHERE label = 'nightly') r
 WHERE s.label = 'nightly';
SELECT count(*) FILTER (WHERE elapsed IS NULL) AS runs_without_elapsed,
       count(*) FILTER (WHERE elapsed IS NULL AND status <> 'lost') AS finished_without_elapsed
  FROM parallel_guarantee_runs WHERE label = 'nightly';
DELETE FROM parallel_guarantee_run_history WHERE run_id = 590;

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
