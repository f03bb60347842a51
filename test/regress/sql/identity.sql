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

-- EXECUTE is not granted to PUBLIC.
SET ROLE guarantee_other;
SELECT run_with_parallel_guarantee('SELECT count(*) FROM id_big');
RESET ROLE;
GRANT EXECUTE ON FUNCTION run_with_parallel_guarantee TO guarantee_batch, guarantee_other;

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
SET search_path = id_schema, public;
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
$$ SELECT status FROM run_with_parallel_guarantee('CREATE TABLE id_definer_t AS SELECT current_user AS who, count(*) FROM id_secret') $$;
GRANT EXECUTE ON FUNCTION id_definer() TO guarantee_other;
SET ROLE guarantee_other;
SELECT id_definer();
RESET ROLE;
SELECT who = current_user AS ran_as_owner FROM id_definer_t;

DROP OWNED BY guarantee_batch, guarantee_other;
DROP ROLE guarantee_batch, guarantee_other;
