-- parallel_guarantee 0.4.0 -> 0.5.0: the views say 'lost' and 'running' by the run's own rule.
\echo Use "ALTER EXTENSION parallel_guarantee UPDATE TO '0.5.0'" to load this file. \quit

-- True if a run the caller may see is recorded as running but no worker has it any more
-- (killed, server restarted).  The run's row is read again under a new snapshot (READ
-- COMMITTED), so a run that ended a moment ago is not called lost; under REPEATABLE READ
-- and SERIALIZABLE the answer is false.  PARALLEL UNSAFE: the fresh snapshot cannot be taken
-- in parallel mode, so a query on the run views does not use a parallel plan.
CREATE FUNCTION @extschema@.parallel_guarantee_lost(run_id bigint, chunked boolean)
RETURNS boolean
AS 'MODULE_PATHNAME', 'parallel_guarantee_lost'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

-- The chunk each worker of a chunked run is on, from the run's slot in shared memory, for
-- the runs the caller may see.
CREATE FUNCTION @extschema@.parallel_guarantee_running_chunks(
    OUT run_id     bigint,
    OUT chunk_no   integer,
    OUT worker_pid integer,
    OUT since      timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'parallel_guarantee_running_chunks'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- The run views show 'lost' for a run recorded as running that no worker has any more (until
-- 0.4.0 only the status functions did; the views kept 'running' until a resume).
CREATE OR REPLACE VIEW @extschema@.parallel_guarantee_runs WITH (security_barrier) AS
SELECT h.run_id, h.label, h.role_name AS role, h.database_name AS database,
       CASE WHEN h.status = 'running' AND @extschema@.parallel_guarantee_lost(h.run_id, false)
            THEN 'lost' ELSE h.status END AS status,
       h.rows, h.workers_planned, h.workers_launched, h.attempts,
       h.started_at, h.finished_at, h.finished_at - h.started_at AS elapsed,
       h.sqlstate, h.message, h.statement, h.cleanup,
       h.target_workers, h.min_workers, h.max_attempts,
       h.retry_delay_ms * interval '1 millisecond' AS retry_delay, h.force_workers,
       h.wait_for_slots, h.max_wait_ms * interval '1 millisecond' AS max_wait, h.priority,
       h.async, h.caller_pid, h.worker_pid
  FROM @extschema@.parallel_guarantee_run_history h
 WHERE @extschema@.parallel_guarantee_visible(h.role_oid);

CREATE OR REPLACE VIEW @extschema@.parallel_guarantee_chunk_runs WITH (security_barrier) AS
SELECT r.run_id, r.label, r.role_name AS role, r.database_name AS database,
       CASE WHEN r.status = 'running' AND @extschema@.parallel_guarantee_lost(r.run_id, true)
            THEN 'lost' ELSE r.status END AS status,
       r.total_keys, r.total_chunks,
       (SELECT count(*) FROM @extschema@.parallel_guarantee_chunk_history c
         WHERE c.run_id = r.run_id AND c.state = 'done') AS chunks_done,
       r.chunks_skipped,
       (SELECT coalesce(sum(c.rows), 0) FROM @extschema@.parallel_guarantee_chunk_history c
         WHERE c.run_id = r.run_id AND c.state = 'done') AS rows_changed,
       r.started_at, r.finished_at, r.finished_at - r.started_at AS elapsed,
       r.sqlstate, r.message, r.keys_query, r.action, r.chunk_size, r.max_retries,
       r.max_skipped, r.workers, r.key_type::regtype AS key_type
  FROM @extschema@.parallel_guarantee_chunk_run_history r
 WHERE @extschema@.parallel_guarantee_visible(r.role_oid);

-- A chunk shows 'running' while a worker of its run is on it, known from the run's slot:
-- the same visibility rule as the run (until 0.4.0 it came from pg_stat_activity, which
-- hides another session user's transactions, so a member of the run's role saw 'pending').
CREATE OR REPLACE VIEW @extschema@.parallel_guarantee_chunks WITH (security_barrier) AS
SELECT c.run_id, c.chunk_no,
       CASE WHEN a.chunk_no IS NOT NULL THEN 'running' ELSE c.state END AS state,
       c.first_key, c.last_key, c.key_count, c.attempts,
       c.rows, c.sqlstate, c.error,
       coalesce(a.worker_pid, c.worker_pid) AS worker_pid,
       coalesce(a.since, c.started_at) AS started_at,
       c.finished_at
  FROM @extschema@.parallel_guarantee_chunk_history c
  JOIN @extschema@.parallel_guarantee_chunk_run_history r USING (run_id)
  LEFT JOIN @extschema@.parallel_guarantee_running_chunks() a
         ON c.state = 'pending' AND a.run_id = c.run_id AND a.chunk_no = c.chunk_no
 WHERE @extschema@.parallel_guarantee_visible(r.role_oid);

-- The status functions read the views, which now say 'lost' themselves.
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
    RETURN r;
END $$;

DROP FUNCTION @extschema@.parallel_guarantee_in_progress(bigint);
