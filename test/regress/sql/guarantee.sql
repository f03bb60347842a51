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

-- Target met at once: 4 of 4 workers, the NOTICEs say so, the table is there.
SELECT status, rows, workers_planned, workers_launched, attempts, run_id > 0 AS has_run_id
  FROM run_with_parallel_guarantee(
    $$CREATE TABLE sales_sum AS SELECT id % 10 AS region, count(*) AS n FROM big GROUP BY 1$$,
    cleanup => $$DROP TABLE IF EXISTS sales_sum$$);
SELECT sum(n) FROM sales_sum;

-- The plain form returns the composite too.
SET client_min_messages = warning;
SELECT (run_with_parallel_guarantee('SELECT count(*) FROM big')).status;

-- Degraded: this session (and so the worker) may launch only 3 parallel workers; the
-- cleanup runs after each abandoned attempt (2 of the 3 attempts).
SET max_parallel_workers = 3;
SELECT status, rows, workers_planned, workers_launched, attempts
  FROM run_with_parallel_guarantee(
    $$CREATE TABLE degraded_t AS SELECT count(*) AS n FROM big$$,
    cleanup => $$INSERT INTO cleanup_log DEFAULT VALUES$$,
    max_attempts => 3, retry_delay => '0');
SELECT count(*) AS cleanups FROM cleanup_log;
SELECT n FROM degraded_t;

-- Failure: 1 worker is below the minimum of 2 after every attempt; SQLSTATE 53G01.
SET max_parallel_workers = 1;
TRUNCATE cleanup_log;
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
SELECT try($$SELECT run_with_parallel_guarantee('CREATE TABLE failed_t AS SELECT count(*) FROM big',
                'INSERT INTO cleanup_log DEFAULT VALUES', max_attempts => 3, retry_delay => '0')$$);
SELECT try_detail($$SELECT run_with_parallel_guarantee('CREATE TABLE failed_t AS SELECT count(*) FROM big',
                max_attempts => 2, retry_delay => '0')$$);
SELECT count(*) AS cleanups, to_regclass('failed_t') AS left_behind FROM cleanup_log;

-- The same failure as a row, when asked.
SELECT status, rows, workers_planned, workers_launched, attempts
  FROM run_with_parallel_guarantee('SELECT count(*) FROM big', max_attempts => 2,
                                   retry_delay => '0', raise_on_failure => false);

-- min_workers => 0 accepts anything on the last attempt; max_attempts => 1 never retries.
SELECT status, workers_launched, attempts
  FROM run_with_parallel_guarantee('SELECT count(*) FROM big', min_workers => 0, max_attempts => 1);
RESET max_parallel_workers;

-- With the leader not participating, launches are still judged (and the result is right).
SET parallel_leader_participation = off;
SELECT status, rows, workers_launched FROM run_with_parallel_guarantee(
    'CREATE TABLE no_leader AS SELECT count(*) AS n FROM big');
SELECT n FROM no_leader;
SET max_parallel_workers = 2;
SELECT status, workers_launched, attempts FROM run_with_parallel_guarantee(
    'SELECT count(*) FROM big', max_attempts => 2, retry_delay => '0', raise_on_failure => false);
RESET max_parallel_workers;
RESET parallel_leader_participation;

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
