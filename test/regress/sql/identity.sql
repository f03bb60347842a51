-- The statement runs as the caller: role (also after SET ROLE), search_path, settings;
-- never with more privilege than the caller.
-- Run ids are numbered from 401 in this file, whatever ran before it.
DO $$ BEGIN PERFORM setval('parallel_guarantee_run_id_seq', 401, false); END $$;
SET client_min_messages = warning;
CREATE TABLE id_big (id int) WITH (parallel_workers = 4);
INSERT INTO id_big SELECT generate_series(1, 5000);
CREATE TABLE id_secret (id int) WITH (parallel_workers = 4);
INSERT INTO id_secret SELECT generate_series(1, 5000);

CREATE ROLE guarantee_batch;
CREATE ROLE guarantee_other;
GRANT SELECT ON id_big TO guarantee_batch, guarantee_other;
GRANT CREATE ON SCHEMA public TO guarantee_batch;

-- The one grant (1.0): USAGE on the schema parallel_guarantee.  PUBLIC has none, so a role
-- without it reaches nothing: the schema on its search_path is skipped (the function is not
-- found), and qualified names, functions and views alike, are refused with 42501.
SELECT has_schema_privilege('public', 'parallel_guarantee', 'USAGE') AS public_has_usage,
       has_schema_privilege('guarantee_other', 'parallel_guarantee', 'USAGE') AS other_has_usage;
CREATE FUNCTION id_try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN sqlstate || ': ' || sqlerrm;
END $$;
SET ROLE guarantee_other;
SELECT run_with_parallel_guarantee('SELECT count(*) FROM id_big');
SELECT id_try($$SELECT parallel_guarantee.run_with_parallel_guarantee('SELECT count(*) FROM id_big')$$);
SELECT id_try($$SELECT parallel_guarantee.submit_parallel_guarantee('SELECT count(*) FROM id_big')$$);
SELECT id_try($$SELECT parallel_guarantee.run_in_chunks('SELECT id FROM id_big', 'SELECT $1')$$);
SELECT id_try($$SELECT parallel_guarantee.parallel_guarantee_status(1)$$);
SELECT v AS view, id_try(format('SELECT count(*) FROM parallel_guarantee.%I', v)) AS reading
  FROM unnest(ARRAY['parallel_guarantee_activity', 'parallel_guarantee_queue', 'parallel_guarantee_runs',
                    'parallel_guarantee_attempts', 'parallel_guarantee_label_summary',
                    'parallel_guarantee_chunk_runs', 'parallel_guarantee_chunks']) v;
RESET ROLE;
-- The grant gives everything: run a statement, submit one, wait for it, read the views.
GRANT USAGE ON SCHEMA parallel_guarantee TO guarantee_batch, guarantee_other;
SET ROLE guarantee_other;
SELECT status, workers_launched FROM parallel_guarantee.run_with_parallel_guarantee('SELECT count(*) FROM id_big');
SELECT status, workers_launched FROM run_with_parallel_guarantee('SELECT count(*) FROM id_big');
SELECT submit_parallel_guarantee('SELECT count(*) FROM id_big', label => 'other submitted') AS submitted \gset
SELECT kind, status, rows, role, async FROM parallel_guarantee_wait(:submitted, '60 s');
SELECT v AS view, id_try(format('SELECT count(*) FROM parallel_guarantee.%I', v)) AS reading
  FROM unnest(ARRAY['parallel_guarantee_activity', 'parallel_guarantee_queue', 'parallel_guarantee_runs',
                    'parallel_guarantee_attempts', 'parallel_guarantee_label_summary',
                    'parallel_guarantee_chunk_runs', 'parallel_guarantee_chunks']) v;
SELECT label, status FROM parallel_guarantee_runs ORDER BY run_id;
SELECT label, runs, target_met FROM parallel_guarantee_label_summary ORDER BY label;
-- The history tables behind the views stay closed.
SELECT id_try('SELECT count(*) FROM parallel_guarantee.parallel_guarantee_run_history');
RESET ROLE;

-- SET ROLE is honoured: the table belongs to the role, current_user is the role.
SET ROLE guarantee_batch;
SELECT status FROM run_with_parallel_guarantee(
    'CREATE TABLE id_who AS SELECT current_user AS who, session_user AS via, count(*) FROM id_big');
RESET ROLE;
SELECT who, via, count FROM id_who;
SELECT tableowner FROM pg_tables WHERE tablename = 'id_who';

-- A role cannot read through the function what it cannot read directly.
SET ROLE guarantee_other;
SELECT run_with_parallel_guarantee('SELECT count(*) FROM id_secret');
RESET ROLE;

-- search_path and the caller's settings, including custom ones, are the worker's.
CREATE SCHEMA id_schema;
CREATE TABLE id_schema.id_big (id int) WITH (parallel_workers = 4);
INSERT INTO id_schema.id_big SELECT generate_series(1, 7);
SET search_path = id_schema, public, parallel_guarantee;
SET work_mem = '7MB';
SET myapp.batch_id = '42';
SELECT status FROM run_with_parallel_guarantee(
    $$CREATE TABLE id_settings AS
      SELECT count(*) AS n, current_setting('work_mem') AS work_mem,
             current_setting('myapp.batch_id') AS batch_id FROM id_big$$, force_workers => true);
RESET search_path;
SELECT * FROM id_schema.id_settings;

-- Inside a SECURITY DEFINER function the statement runs as the function's owner, as any
-- statement there would.
CREATE FUNCTION id_definer() RETURNS text LANGUAGE sql SECURITY DEFINER
  SET search_path = public AS
$$ SELECT status FROM parallel_guarantee.run_with_parallel_guarantee('CREATE TABLE id_definer_t AS SELECT current_user AS who, count(*) FROM id_secret') $$;
GRANT EXECUTE ON FUNCTION id_definer() TO guarantee_other;
SET ROLE guarantee_other;
SELECT id_definer();
RESET ROLE;
SELECT who = current_user AS ran_as_owner FROM id_definer_t;

DROP FUNCTION id_try(text);
DROP OWNED BY guarantee_batch, guarantee_other;
DROP ROLE guarantee_batch, guarantee_other;
