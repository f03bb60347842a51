-- The guarantee: success, degraded, failure, cleanup between attempts, several Gathers,
-- Gather Merge, leader participation off, forcing the planned degree.
-- Run ids are numbered from 101 in this file, whatever ran before it.
DO $$ BEGIN PERFORM setval('parallel_guarantee_run_id_seq', 101, false); END $$;
-- PostgreSQL's max_parallel_workers caps the parallel workers alive at once, not those one
-- Gather launches: a worker that has already finished frees its place for the next launch.
-- So that no worker can finish before the leader has launched the others (a busy machine
-- can pause the leader between launches), every 50th row costs a millisecond.
CREATE TABLE big_rows (id int, pad text) WITH (parallel_workers = 4);
INSERT INTO big_rows SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g;
CREATE VIEW big AS SELECT id, pad FROM big_rows WHERE pg_sleep(CASE WHEN id % 50 = 0 THEN 0.001 ELSE 0 END) IS NOT NULL;
ANALYZE big_rows;
CREATE TABLE tiny AS SELECT g AS id FROM generate_series(1, 10) g;
CREATE TABLE cleanup_log (at timestamptz DEFAULT now());
CREATE OR REPLACE FUNCTION try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN sqlstate || ': ' || sqlerrm;
END $$;
CREATE FUNCTION try_detail(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE d text; h text;
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
  RETURN sqlstate || E'\ndetail: ' || regexp_replace(d, '[0-9.]+ ms', 'N ms', 'g') || E'\nhint: ' || h;
END $$;

-- A shortage across several attempts comes, as in real life, from other sessions' parallel
-- workers: a submitted run (the hog) holds n of the 8 (test/pg.conf) until it is cancelled.
-- Its table has one row per page and every row sleeps an hour: each of its processes sleeps
-- on the first row it reads, so none finishes and frees its place early.
CREATE TABLE hog_rows (id int, pad text) WITH (fillfactor = 10, parallel_workers = 8);
INSERT INTO hog_rows SELECT g, repeat('x', 1500) FROM generate_series(1, 64) g;
ANALYZE hog_rows;
-- Polls (at most 60 s) until the hog runs with its n parallel workers, all of them alive.
CREATE FUNCTION hog_holds(hog bigint, n int) RETURNS boolean LANGUAGE plpgsql AS $$
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
-- Cancels the hog, waits for its end and polls (at most 60 s) until no parallel worker is left.
CREATE FUNCTION hog_released(hog bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  status text;
BEGIN
  PERFORM parallel_guarantee_cancel(hog);
  status := (parallel_guarantee_wait(hog, '60 s')).status;
  FOR i IN 1 .. 6000 LOOP
    PERFORM pg_stat_clear_snapshot();
    IF NOT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'parallel worker') THEN
      RETURN status;
    END IF;
    PERFORM pg_sleep(0.01);  -- poll
  END LOOP;
  RETURN status || ', parallel workers left';
END $$;
\set hog_statement 'SELECT count(*) FROM hog_rows WHERE pg_sleep(3600 + id * 0) IS NOT NULL'

-- Target met at once: 4 of 4 workers, one NOTICE says so, the table is there.
SELECT status, rows, workers_planned, workers_launched, attempts, run_id > 0 AS has_run_id
  FROM run_with_parallel_guarantee(
    $$CREATE TABLE sales_sum AS SELECT id % 10 AS region, count(*) AS n FROM big GROUP BY 1$$,
    cleanup => $$DROP TABLE IF EXISTS sales_sum$$);
SELECT sum(n) FROM sales_sum;

-- The plain form returns the composite too, run_id first.
SET client_min_messages = warning;
SELECT (run_with_parallel_guarantee('SELECT count(*) FROM big')).status;
SELECT (r).run_id > 0 AS run_id_first, (r).status
  FROM (SELECT run_with_parallel_guarantee('SELECT count(*) FROM big') AS r) x;
SELECT attname FROM pg_attribute
 WHERE attrelid = 'parallel_guarantee_result'::regclass AND attnum > 0 ORDER BY attnum;

-- This session's own max_parallel_workers is below the target: the run inherits it and it
-- cannot change during the run, so no retry could do better.  One attempt, judged as the
-- last, with a NOTICE naming the setting: degraded when the minimum fits (no cleanup: no
-- attempt was abandoned) ...
SET client_min_messages = notice;
SET max_parallel_workers = 3;
SELECT status, rows, workers_planned, workers_launched, attempts
  FROM run_with_parallel_guarantee(
    $$CREATE TABLE degraded_t AS SELECT count(*) AS n FROM big$$,
    cleanup => $$INSERT INTO cleanup_log DEFAULT VALUES$$,
    max_attempts => 3, retry_delay => '0');
SELECT attempt, workers_planned, workers_launched, outcome FROM parallel_guarantee_attempts
 WHERE run_id = (SELECT max(run_id) FROM parallel_guarantee_runs) ORDER BY attempt;
SELECT count(*) AS cleanups FROM cleanup_log;
SELECT n FROM degraded_t;
-- ... and 53G01 when it does not, the hint naming max_parallel_workers; the cleanup ran once,
-- after that one attempt.
SET max_parallel_workers = 1;
SELECT try_detail($$SELECT run_with_parallel_guarantee('CREATE TABLE failed_t AS SELECT count(*) FROM big',
                'INSERT INTO cleanup_log DEFAULT VALUES', max_attempts => 3, retry_delay => '0')$$);
SELECT count(*) AS attempts_recorded FROM parallel_guarantee_attempts
 WHERE run_id = (SELECT max(run_id) FROM parallel_guarantee_runs);
SELECT count(*) AS cleanups, to_regclass('failed_t') AS left_behind FROM cleanup_log;
-- min_workers => 0 accepts anything on the last attempt; max_attempts => 1 never retries
-- (and needs no NOTICE about the session's limit).
SELECT status, workers_launched, attempts
  FROM run_with_parallel_guarantee('SELECT count(*) FROM big', min_workers => 0, max_attempts => 1);
RESET max_parallel_workers;
SET client_min_messages = warning;

-- Degraded under a real shortage: the hog holds 5 of the 8 workers, so each attempt
-- launches 3 (retry mode: attempts are not held back waiting for free workers); the cleanup
-- runs after each abandoned attempt (2 of the 3 attempts), and the last accepts 3.
TRUNCATE cleanup_log;
DROP TABLE degraded_t;
SELECT submit_parallel_guarantee(:'hog_statement', target_workers => 5, min_workers => 5,
                                 label => 'hog') AS hog \gset
SELECT hog_holds(:hog, 5) AS hog_holds_5;
SELECT status, rows, workers_planned, workers_launched, attempts
  FROM run_with_parallel_guarantee(
    $$CREATE TABLE degraded_t AS SELECT count(*) AS n FROM big$$,
    cleanup => $$INSERT INTO cleanup_log DEFAULT VALUES$$,
    max_attempts => 3, retry_delay => '0', wait_for_slots => false);
SELECT count(*) AS cleanups FROM cleanup_log;
SELECT n FROM degraded_t;
SELECT hog_released(:hog) AS hog_status;

-- Failure: the hog holds 7, 1 worker is below the minimum of 2 after every attempt; SQLSTATE
-- 53G01, the detail listing the attempts, the hint pointing at the other sessions.
TRUNCATE cleanup_log;
SELECT submit_parallel_guarantee(:'hog_statement', target_workers => 7, min_workers => 7,
                                 label => 'hog') AS hog \gset
SELECT hog_holds(:hog, 7) AS hog_holds_7;
SELECT try($$SELECT run_with_parallel_guarantee('CREATE TABLE failed_t AS SELECT count(*) FROM big',
                'INSERT INTO cleanup_log DEFAULT VALUES', max_attempts => 3, retry_delay => '0',
                wait_for_slots => false)$$);
SELECT try_detail($$SELECT run_with_parallel_guarantee('CREATE TABLE failed_t AS SELECT count(*) FROM big',
                max_attempts => 2, retry_delay => '0', wait_for_slots => false)$$);
SELECT count(*) AS cleanups, to_regclass('failed_t') AS left_behind FROM cleanup_log;

-- The same failure as a row, when asked.
SELECT status, rows, workers_planned, workers_launched, attempts
  FROM run_with_parallel_guarantee('SELECT count(*) FROM big', max_attempts => 2,
                                   retry_delay => '0', wait_for_slots => false,
                                   raise_on_failure => false);
SELECT hog_released(:hog) AS hog_status;

-- With the leader not participating, launches are still judged (and the result is right).
SET parallel_leader_participation = off;
SELECT status, rows, workers_launched FROM run_with_parallel_guarantee(
    'CREATE TABLE no_leader AS SELECT count(*) AS n FROM big');
SELECT n FROM no_leader;
RESET parallel_leader_participation;
SELECT submit_parallel_guarantee(:'hog_statement', target_workers => 6, min_workers => 6,
                                 label => 'hog') AS hog \gset
SELECT hog_holds(:hog, 6) AS hog_holds_6;
SET parallel_leader_participation = off;
SELECT status, workers_launched, attempts FROM run_with_parallel_guarantee(
    'SELECT count(*) FROM big', max_attempts => 2, retry_delay => '0', wait_for_slots => false,
    raise_on_failure => false);
RESET parallel_leader_participation;
SELECT hog_released(:hog) AS hog_status;

-- Gather Merge.
SELECT status, rows, workers_launched FROM run_with_parallel_guarantee(
    'CREATE TABLE merged AS SELECT id FROM big ORDER BY id LIMIT 5');
SELECT id FROM merged ORDER BY id;

-- Several Gathers: every Gather must plan and launch the target.  Two big InitPlans pass;
-- a plan in which one Gather scans a small table fails at once, naming the table.
SELECT status, workers_planned, workers_launched FROM run_with_parallel_guarantee(
    'SELECT (SELECT count(*) FROM big) + (SELECT max(id) FROM big)');
ALTER TABLE tiny SET (parallel_workers = 1);
SELECT try($$SELECT run_with_parallel_guarantee('SELECT (SELECT count(*) FROM big) + (SELECT count(*) FROM tiny)')$$);

-- Planned fewer than the target: fails at once, with the way out in the hint.
SET client_min_messages = notice;
SELECT * FROM run_with_parallel_guarantee('SELECT count(*) FROM tiny');
SET client_min_messages = warning;
-- force_workers plans the target degree, as a "hard" parallel hint would.
SELECT status, workers_planned, workers_launched FROM run_with_parallel_guarantee(
    'SELECT count(*) FROM tiny', force_workers => true);

-- The statement commits on its own, whatever the caller's transaction does afterwards.
BEGIN;
SELECT status FROM run_with_parallel_guarantee('CREATE TABLE committed_anyway AS SELECT count(*) FROM big');
ROLLBACK;
SELECT to_regclass('committed_anyway') IS NOT NULL AS kept;

-- Nothing is left in shared memory.
SELECT count(*) FROM parallel_guarantee_activity;
