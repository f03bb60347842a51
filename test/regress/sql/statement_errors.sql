-- The statement's own errors reach the caller unchanged (SQLSTATE, message, detail, hint)
-- with a context line naming the worker; they are not retried; the cleanup runs after them.
-- Run ids are numbered from 301 in this file, whatever ran before it.
DO $$ BEGIN PERFORM setval('parallel_guarantee_run_id_seq', 301, false); END $$;
SET client_min_messages = warning;
-- PostgreSQL's max_parallel_workers caps the parallel workers alive at once, not those one
-- Gather launches: a worker that has already finished frees its place for the next launch.
-- So that no worker can finish before the leader has launched the others (a busy machine
-- can pause the leader between launches), every 50th row costs a millisecond.
CREATE TABLE err_big_rows (id int) WITH (parallel_workers = 4);
INSERT INTO err_big_rows SELECT generate_series(1, 5000);
CREATE VIEW err_big AS SELECT id FROM err_big_rows WHERE pg_sleep(CASE WHEN id % 50 = 0 THEN 0.001 ELSE 0 END) IS NOT NULL;
CREATE TABLE err_log (what text);
CREATE TABLE err_unique (id int PRIMARY KEY);
INSERT INTO err_unique VALUES (1);

\set VERBOSITY default
SELECT run_with_parallel_guarantee('SELECT count(*) / 0 FROM err_big',
                                   cleanup => $$INSERT INTO err_log VALUES ('cleanup')$$);
SELECT what, count(*) FROM err_log GROUP BY what;

SELECT run_with_parallel_guarantee('SELECT count(*) FROM no_such_table');
SELECT run_with_parallel_guarantee('DO $$ BEGIN INSERT INTO err_unique VALUES (1); END $$');
SELECT run_with_parallel_guarantee($q$DO $b$ BEGIN
    RAISE EXCEPTION 'custom failure' USING ERRCODE = 'P0001', DETAIL = 'the detail', HINT = 'the hint';
  END $b$$q$);

-- The error keeps its SQLSTATE for programs.
\set VERBOSITY sqlstate
SELECT run_with_parallel_guarantee('SELECT count(*) / 0 FROM err_big');
SELECT run_with_parallel_guarantee('DO $$ BEGIN INSERT INTO err_unique VALUES (1); END $$');
\set VERBOSITY default

-- A failing cleanup stops the run and says so: after the first abandoned attempt, no
-- other attempt.  The shortage comes from another run (the hog) holding 7 of the 8 parallel
-- workers (test/pg.conf), on a table where every row sleeps an hour (one row per page:
-- none of its processes finishes early).
CREATE TABLE err_hog_rows (id int, pad text) WITH (fillfactor = 10, parallel_workers = 8);
INSERT INTO err_hog_rows SELECT g, repeat('x', 1500) FROM generate_series(1, 64) g;
SELECT submit_parallel_guarantee('SELECT count(*) FROM err_hog_rows WHERE pg_sleep(3600 + id * 0) IS NOT NULL',
                                 target_workers => 7, min_workers => 7, label => 'hog') AS hog \gset
-- Polls (at most 60 s) until the hog runs with its 7 parallel workers.
DO $$ BEGIN
  FOR i IN 1 .. 6000 LOOP
    PERFORM pg_stat_clear_snapshot();
    EXIT WHEN EXISTS (SELECT FROM parallel_guarantee_activity a
                       WHERE a.label = 'hog' AND a.state = 'running' AND a.workers_launched = 7
                         AND (SELECT count(*) FROM pg_stat_activity s
                               WHERE s.backend_type = 'parallel worker' AND s.leader_pid = a.worker_pid) = 7);
    PERFORM pg_sleep(0.01);  -- poll
  END LOOP;
END $$;
SELECT workers_launched AS hog_holds FROM parallel_guarantee_activity WHERE run_id = :hog;
SELECT run_with_parallel_guarantee('SELECT count(*) FROM err_big', cleanup => 'SELECT 1 / 0',
                                   retry_delay => '0', wait_for_slots => false);
SELECT status, attempts, sqlstate FROM parallel_guarantee_runs
 WHERE run_id = (SELECT max(run_id) FROM parallel_guarantee_runs);
SELECT parallel_guarantee_cancel(:hog) AS hog_cancelled;
SELECT status FROM parallel_guarantee_wait(:hog, '60 s');

-- NOTICEs raised by the statement reach the caller as they happen.
SET client_min_messages = notice;
SELECT (run_with_parallel_guarantee($q$DO $b$ BEGIN
    RAISE NOTICE 'hello from the worker';
    PERFORM count(*) FROM err_big;
  END $b$$q$)).status;

-- The statement needs a lock the caller's own open transaction holds: a clear error (the
-- deadlock detector cannot see it), not a hang; nothing is left running.
SET client_min_messages = warning;
CREATE TABLE err_locked (a int);
BEGIN;
LOCK TABLE err_locked IN ACCESS EXCLUSIVE MODE;
SELECT run_with_parallel_guarantee('CREATE TABLE err_locked_copy AS SELECT count(*) FROM err_big, err_locked');
ROLLBACK;
-- Poll (bounded) until the run's worker has finished its cleanup and left.
DO $$ BEGIN
  FOR i IN 1 .. 1000 LOOP
    EXIT WHEN NOT EXISTS (SELECT FROM parallel_guarantee_activity);
    PERFORM pg_sleep(0.01);  -- poll
  END LOOP;
END $$;
SELECT to_regclass('err_locked_copy') AS left_behind, count(*) AS runs_in_progress
  FROM parallel_guarantee_activity;
