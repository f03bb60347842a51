-- Bad input: every argument and statement the function refuses, each with its SQLSTATE.
-- Run ids are numbered from 201 in this file, whatever ran before it.
DO $$ BEGIN PERFORM setval('parallel_guarantee_run_id_seq', 201, false); END $$;
SET client_min_messages = warning;
CREATE TABLE args_big (id int) WITH (parallel_workers = 4);
INSERT INTO args_big SELECT generate_series(1, 5000);
CREATE OR REPLACE FUNCTION try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN sqlstate || ': ' || sqlerrm;
END $$;

-- NULLs and out-of-range numbers.
SELECT try($$SELECT run_with_parallel_guarantee(NULL)$$);
SELECT try($$SELECT run_with_parallel_guarantee('SELECT 1', target_workers => NULL)$$);
SELECT try($$SELECT run_with_parallel_guarantee('SELECT 1', retry_delay => NULL)$$);
SELECT try($$SELECT run_with_parallel_guarantee('SELECT 1', force_workers => NULL)$$);
SELECT try($$SELECT run_with_parallel_guarantee('SELECT 1', target_workers => 0)$$);
SELECT try($$SELECT run_with_parallel_guarantee('SELECT 1', target_workers => 1025)$$);
SELECT try($$SELECT run_with_parallel_guarantee('SELECT 1', min_workers => -1)$$);
SELECT try($$SELECT run_with_parallel_guarantee('SELECT 1', target_workers => 2, min_workers => 3)$$);
SELECT try($$SELECT run_with_parallel_guarantee('SELECT 1', max_attempts => 0)$$);
SELECT try($$SELECT run_with_parallel_guarantee('SELECT 1', max_attempts => 101)$$);
SELECT try($$SELECT run_with_parallel_guarantee('SELECT 1', retry_delay => '-1 second')$$);
SELECT try($$SELECT run_with_parallel_guarantee('SELECT 1', retry_delay => '2 days')$$);
SELECT try($$SELECT run_with_parallel_guarantee('SELECT 1', max_wait => '-1 second')$$);
SELECT try($$SELECT run_with_parallel_guarantee('SELECT 1', max_wait => '25 hours')$$);
SELECT try($$SELECT run_with_parallel_guarantee('SELECT 1', wait_for_slots => NULL)$$);
SELECT try($$SELECT run_with_parallel_guarantee('SELECT 1', priority => NULL)$$);

-- Statements that cannot work in a background worker's own transaction.
SELECT try($$SELECT run_with_parallel_guarantee('')$$);
SELECT try($$SELECT run_with_parallel_guarantee('  -- only a comment')$$);
SELECT try($$SELECT run_with_parallel_guarantee('SELECT 1; SELECT 2')$$);
SELECT try($$SELECT run_with_parallel_guarantee('BEGIN')$$);
SELECT try($$SELECT run_with_parallel_guarantee('COMMIT')$$);
SELECT try($$SELECT run_with_parallel_guarantee('SAVEPOINT s')$$);
SELECT try($$SELECT run_with_parallel_guarantee('SET work_mem = ''1GB''')$$);
SELECT try($$SELECT run_with_parallel_guarantee('LISTEN chan')$$);
SELECT try($$SELECT run_with_parallel_guarantee('PREPARE p AS SELECT 1')$$);
SELECT try($$SELECT run_with_parallel_guarantee('EXECUTE p')$$);
SELECT try($$SELECT run_with_parallel_guarantee('COPY args_big FROM STDIN')$$);
SELECT try($$SELECT run_with_parallel_guarantee('COPY args_big TO STDOUT')$$);
SELECT try($$SELECT run_with_parallel_guarantee('CREATE TEMP TABLE tt AS SELECT count(*) FROM args_big')$$);
SELECT try($$SELECT run_with_parallel_guarantee('CREATE TABLE pg_temp.tt (a int)')$$);
SELECT try($$SELECT run_with_parallel_guarantee('SELECT count(*) INTO TEMP tt FROM args_big')$$);
SELECT try($$SELECT run_with_parallel_guarantee('CREATE TEMP VIEW tv AS SELECT 1')$$);
SELECT try($$SELECT run_with_parallel_guarantee('SELECT count(*) FROM args_big', cleanup => 'ROLLBACK')$$);
SELECT try($$SELECT run_with_parallel_guarantee('SELECT count(*) FROM args_big', cleanup => '')$$);

-- A syntax error points into the statement text, not the caller's query.
\set VERBOSITY default
SELECT run_with_parallel_guarantee('SELEC count(*) FROM args_big');
SELECT run_with_parallel_guarantee('SELECT count(*) FROM args_big', cleanup => 'DROP TABL x');

-- A read-only transaction cannot start a run: it records itself in the history tables.
BEGIN READ ONLY;
SELECT try($$SELECT run_with_parallel_guarantee('SELECT count(*) FROM args_big')$$);
SELECT try($$SELECT submit_parallel_guarantee('SELECT count(*) FROM args_big')$$);
SELECT try($$SELECT run_in_chunks('SELECT id FROM args_big', 'SELECT $1')$$);
SELECT try($$SELECT submit_chunks('SELECT id FROM args_big', 'SELECT $1')$$);
SELECT try($$SELECT resume_chunks(1)$$);
ROLLBACK;
SET default_transaction_read_only = on;
SELECT run_in_chunks('SELECT id FROM args_big', 'SELECT $1');
RESET default_transaction_read_only;
-- A read-write transaction in a session whose default is read-only may start a run, and
-- the run's worker writes too.
SET default_transaction_read_only = on;
BEGIN READ WRITE;
SELECT status, chunks_total, chunks_done FROM run_in_chunks('SELECT id FROM args_big WHERE id <= 10', 'SELECT $1');
COMMIT;
RESET default_transaction_read_only;

-- Calling the function from inside its own statement.
SELECT try($$SELECT run_with_parallel_guarantee('DO $b$ BEGIN PERFORM run_with_parallel_guarantee(''SELECT 1''); END $b$')$$);
-- ... refused before anything runs when the statement's own query calls it (no run id taken).
SELECT last_value AS ids_before FROM parallel_guarantee_run_id_seq \gset
SELECT try($$SELECT run_with_parallel_guarantee('SELECT run_with_parallel_guarantee(''SELECT 1'')')$$);
SELECT try($$SELECT run_with_parallel_guarantee('CREATE TABLE args_nested AS SELECT * FROM public.submit_parallel_guarantee(''SELECT 1'')')$$);
SELECT try($$SELECT submit_parallel_guarantee('INSERT INTO args_copy SELECT (run_in_chunks(''SELECT 1'', ''SELECT $1'')).chunks_total')$$);
SELECT last_value = :ids_before AS no_run_started FROM parallel_guarantee_run_id_seq;

-- Targets that retrying can never reach fail at once.
SELECT run_with_parallel_guarantee('SELECT count(*) FROM args_big', target_workers => 9);
SELECT try($$SELECT run_with_parallel_guarantee('SELECT count(*) FROM args_big', target_workers => 9)$$);

-- Statements without a parallel plan fail at once, with a hint.
CREATE TABLE args_copy (id int);
SELECT run_with_parallel_guarantee('INSERT INTO args_copy SELECT id FROM args_big');
CREATE FUNCTION not_parallel_safe(int) RETURNS int LANGUAGE sql PARALLEL UNSAFE AS 'SELECT $1';
SELECT run_with_parallel_guarantee('SELECT count(not_parallel_safe(id)) FROM args_big');
SELECT run_with_parallel_guarantee('CLUSTER args_copy');
-- An index build runs, but one PostgreSQL plans below the target fails before it builds.
SELECT run_with_parallel_guarantee('CREATE INDEX ON args_copy (id)');
SELECT count(*) AS rows_inserted, count(*) FILTER (WHERE true) FROM args_copy;
SELECT count(*) AS indexes FROM pg_indexes WHERE tablename = 'args_copy';

-- Nothing is left in shared memory.
SELECT count(*) FROM parallel_guarantee_activity;
