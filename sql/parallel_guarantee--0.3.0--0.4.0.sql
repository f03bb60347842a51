-- parallel_guarantee 0.3.0 -> 0.4.0: a cancel that comes too late says so.
\echo Use "ALTER EXTENSION parallel_guarantee UPDATE TO '0.4.0'" to load this file. \quit

-- parallel_guarantee_cancel_run now answers false for a run that is already committing
-- its statement (too late: it will not end cancelled), after waiting until the run has
-- recorded how it ended; the wrappers read the status again after a false answer, so the
-- NOTICE names the status the run really ended with.
CREATE OR REPLACE FUNCTION @extschema@.parallel_guarantee_cancel(run_id bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog AS $$
DECLARE
    r @extschema@.parallel_guarantee_runs;
BEGIN
    r := @extschema@.parallel_guarantee_status(run_id);
    IF @extschema@.parallel_guarantee_cancel_run(run_id) THEN
        RETURN true;
    END IF;
    r := @extschema@.parallel_guarantee_status(run_id);
    RAISE NOTICE 'guaranteed run % is not in progress: its status is %', run_id, r.status;
    RETURN false;
END $$;

CREATE OR REPLACE FUNCTION @extschema@.parallel_guarantee_chunk_cancel(run_id bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog AS $$
DECLARE
    r @extschema@.parallel_guarantee_chunk_runs;
BEGIN
    r := @extschema@.parallel_guarantee_chunk_status(run_id);
    IF @extschema@.parallel_guarantee_cancel_run(run_id) THEN
        RETURN true;
    END IF;
    r := @extschema@.parallel_guarantee_chunk_status(run_id);
    RAISE NOTICE 'chunked run % is not in progress: its status is %', run_id, r.status;
    RETURN false;
END $$;

-- A worker now claims, runs and marks a chunk done in one transaction, so a chunk in
-- progress is no longer written as 'running': it is a pending chunk whose row a live
-- worker's transaction has locked (the row's xmax is that worker's transaction id).  The
-- view shows it as 'running', with that worker and since when.  A role sees the worker
-- under the same rule as the run itself (its own, its members', pg_read_all_stats).
CREATE OR REPLACE VIEW @extschema@.parallel_guarantee_chunks WITH (security_barrier) AS
SELECT c.run_id, c.chunk_no,
       CASE WHEN a.pid IS NOT NULL THEN 'running' ELSE c.state END AS state,
       c.first_key, c.last_key, c.key_count, c.attempts,
       c.rows, c.sqlstate, c.error,
       coalesce(a.pid, c.worker_pid) AS worker_pid,
       CASE WHEN a.pid IS NOT NULL THEN a.xact_start ELSE c.started_at END AS started_at,
       c.finished_at
  FROM @extschema@.parallel_guarantee_chunk_history c
  JOIN @extschema@.parallel_guarantee_chunk_run_history r USING (run_id)
  LEFT JOIN (SELECT s.pid, s.backend_xid, s.xact_start
               FROM pg_catalog.pg_stat_get_activity(NULL) s
              WHERE s.backend_type = 'parallel_guarantee worker' AND s.backend_xid IS NOT NULL) a
         ON c.state = 'pending' AND a.backend_xid OPERATOR(pg_catalog.=) c.xmax
 WHERE @extschema@.parallel_guarantee_visible(r.role_oid);

-- A run that finished between reading its row and looking for its worker read as 'lost'.
-- The functions are now VOLATILE, so that reading the row again takes a new snapshot (READ
-- COMMITTED): a worker records the run's end before it lets go of the run, so a row still
-- 'running' after the worker is gone is really lost.

-- True while a worker in this database has the run (guaranteed or chunked).
CREATE FUNCTION @extschema@.parallel_guarantee_in_progress(run_id bigint)
RETURNS boolean
LANGUAGE sql VOLATILE SET search_path = pg_catalog AS $$
    SELECT EXISTS (
        SELECT 1 FROM @extschema@.parallel_guarantee_activity() a
         WHERE a.run_id = $1
           AND a.database_oid = (SELECT d.oid FROM pg_catalog.pg_database d
                                  WHERE d.datname = pg_catalog.current_database()))
$$;

CREATE OR REPLACE FUNCTION @extschema@.parallel_guarantee_status(run_id bigint)
RETURNS @extschema@.parallel_guarantee_runs
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog AS $$
DECLARE
    r @extschema@.parallel_guarantee_runs;
BEGIN
    IF run_id IS NULL THEN
        RAISE EXCEPTION 'run_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO r FROM @extschema@.parallel_guarantee_runs h WHERE h.run_id = $1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'there is no guaranteed run % that you may see', $1
            USING ERRCODE = '42704',
                  HINT = 'Run ids come from run_with_parallel_guarantee and submit_parallel_guarantee; '
                         'a run is visible to its role, that role''s members and pg_read_all_stats.';
    END IF;
    -- Recorded as running, but no worker has it any more (killed, server restarted): lost.
    IF r.status = 'running' AND NOT @extschema@.parallel_guarantee_in_progress($1) THEN
        SELECT * INTO r FROM @extschema@.parallel_guarantee_runs h WHERE h.run_id = $1;
        -- (Under REPEATABLE READ the row cannot change within the transaction: a run
        -- that ended after its snapshot is not called lost, it stays 'running'.)
        IF r.status = 'running'
           AND pg_catalog.current_setting('transaction_isolation') = 'read committed' THEN
            r.status := 'lost';
        END IF;
    END IF;
    RETURN r;
END $$;

CREATE OR REPLACE FUNCTION @extschema@.parallel_guarantee_chunk_status(run_id bigint)
RETURNS @extschema@.parallel_guarantee_chunk_runs
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog AS $$
DECLARE
    r @extschema@.parallel_guarantee_chunk_runs;
BEGIN
    IF run_id IS NULL THEN
        RAISE EXCEPTION 'run_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO r FROM @extschema@.parallel_guarantee_chunk_runs h WHERE h.run_id = $1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'there is no chunked run % that you may see', $1
            USING ERRCODE = '42704',
                  HINT = 'Run ids come from run_in_chunks and submit_chunks; a run is visible to '
                         'its role, that role''s members and pg_read_all_stats.';
    END IF;
    -- Recorded as running, but no worker has it any more (killed, server restarted): lost.
    IF r.status = 'running' AND NOT @extschema@.parallel_guarantee_in_progress($1) THEN
        SELECT * INTO r FROM @extschema@.parallel_guarantee_chunk_runs h WHERE h.run_id = $1;
        -- (Under REPEATABLE READ the row cannot change within the transaction: a run
        -- that ended after its snapshot is not called lost, it stays 'running'.)
        IF r.status = 'running'
           AND pg_catalog.current_setting('transaction_isolation') = 'read committed' THEN
            r.status := 'lost';
        END IF;
    END IF;
    RETURN r;
END $$;

-- A chunk's keys (8 kB for 1,000 bigint keys) are stored out of line without compression:
-- compressing them cost more than the rest of storing a run's key set.
ALTER TABLE @extschema@.parallel_guarantee_chunk_history ALTER COLUMN keys SET STORAGE EXTERNAL;
