-- parallel_guarantee 0.5.1 -> 1.0.0: the 1.0 SQL surface.
--  * The extension's objects live in a schema of their own, parallel_guarantee (the control
--    file fixes it).  An install in another schema is moved into it; callers qualify the
--    names or put the schema on their search_path.
--  * One grant: USAGE on the schema gives a role everything; PUBLIC has none.
--  * One vocabulary: renamed view columns, run_id first in both result types, and one set of
--    verbs for both kinds of run (parallel_guarantee_chunk_wait and _chunk_cancel are gone:
--    parallel_guarantee_wait and parallel_guarantee_cancel take any run).
--  * parallel_guarantee_runs lists every run, with its kind; the label summary counts
--    cancelled and lost runs apart and shows elapsed statistics.
-- Restart the server after installing the 1.0.0 library (run ids become unique in the cluster).
\echo Use "ALTER EXTENSION parallel_guarantee UPDATE TO '1.0.0'" to load this file. \quit

-- Everything but the history and the run-id sequence is dropped here and created again
-- below, in the schema parallel_guarantee.  (Roles granted EXECUTE on the old functions get
-- the USAGE grant instead; see the README, "Upgrading".)
DROP FUNCTION @extschema@.parallel_guarantee_cancel_runs(text, name);
DROP FUNCTION @extschema@.parallel_guarantee_cancel(bigint);
DROP FUNCTION @extschema@.parallel_guarantee_wait(bigint, interval);
DROP FUNCTION @extschema@.parallel_guarantee_status(bigint);
DROP FUNCTION @extschema@.parallel_guarantee_chunk_cancel(bigint);
DROP FUNCTION @extschema@.parallel_guarantee_chunk_wait(bigint, interval);
DROP FUNCTION @extschema@.parallel_guarantee_chunk_status(bigint);
DROP VIEW @extschema@.parallel_guarantee_label_summary;
DROP VIEW @extschema@.parallel_guarantee_attempts;
DROP VIEW @extschema@.parallel_guarantee_runs;
DROP VIEW @extschema@.parallel_guarantee_chunks;
DROP VIEW @extschema@.parallel_guarantee_chunk_runs;
DROP VIEW @extschema@.parallel_guarantee_queue;
DROP VIEW @extschema@.parallel_guarantee_activity;
DROP FUNCTION @extschema@.parallel_guarantee_activity();
DROP FUNCTION @extschema@.parallel_guarantee_running_chunks();
DROP FUNCTION @extschema@.parallel_guarantee_lost(bigint, boolean);
DROP FUNCTION @extschema@.parallel_guarantee_visible(oid);
DROP FUNCTION @extschema@.parallel_guarantee_wait_for(bigint, interval);
DROP FUNCTION @extschema@.parallel_guarantee_cancel_run(bigint);
DROP FUNCTION @extschema@.run_with_parallel_guarantee(text, text, integer, integer, integer, interval, boolean, boolean, boolean, interval, integer, text);
DROP FUNCTION @extschema@.submit_parallel_guarantee(text, text, integer, integer, integer, interval, boolean, boolean, interval, integer, text);
DROP FUNCTION @extschema@.run_in_chunks(text, text, integer, integer, integer, integer, integer, text);
DROP FUNCTION @extschema@.submit_chunks(text, text, integer, integer, integer, integer, integer, text);
DROP FUNCTION @extschema@.resume_chunks(bigint, integer);
DROP TYPE @extschema@.parallel_guarantee_result;
DROP TYPE @extschema@.parallel_guarantee_chunk_result;

-- An install of 0.5 in another schema: its history and sequence move into the extension's
-- schema, and the extension is recorded there (what CREATE EXTENSION does for a fresh install).
DO $move$
DECLARE
    old_schema oid := pg_catalog.to_regnamespace('@extschema@');
    new_schema oid;
BEGIN
    IF '@extschema@' OPERATOR(pg_catalog.=) 'parallel_guarantee' THEN
        RETURN;
    END IF;
    IF pg_catalog.to_regnamespace('parallel_guarantee') IS NULL THEN
        CREATE SCHEMA parallel_guarantee;
        -- Created by this script, it became a member of the extension; a fresh install's
        -- schema is not (DROP EXTENSION leaves it), and neither is this one.
        ALTER EXTENSION parallel_guarantee DROP SCHEMA parallel_guarantee;
    END IF;
    new_schema := pg_catalog.to_regnamespace('parallel_guarantee');
    ALTER TABLE @extschema@.parallel_guarantee_attempt_history SET SCHEMA parallel_guarantee;
    ALTER TABLE @extschema@.parallel_guarantee_run_history SET SCHEMA parallel_guarantee;
    ALTER TABLE @extschema@.parallel_guarantee_chunk_history SET SCHEMA parallel_guarantee;
    ALTER TABLE @extschema@.parallel_guarantee_chunk_run_history SET SCHEMA parallel_guarantee;
    ALTER SEQUENCE @extschema@.parallel_guarantee_run_id_seq SET SCHEMA parallel_guarantee;
    -- ALTER EXTENSION ... SET SCHEMA refuses a non-relocatable extension: the two catalog
    -- rows it would change are changed here (ALTER EXTENSION UPDATE runs as a superuser).
    UPDATE pg_catalog.pg_extension SET extnamespace = new_schema
     WHERE extname OPERATOR(pg_catalog.=) 'parallel_guarantee';
    UPDATE pg_catalog.pg_depend SET refobjid = new_schema
     WHERE classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND objid OPERATOR(pg_catalog.=) (SELECT e.oid FROM pg_catalog.pg_extension e
                                          WHERE e.extname OPERATOR(pg_catalog.=) 'parallel_guarantee')
       AND refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
       AND refobjid OPERATOR(pg_catalog.=) old_schema;
END
$move$;

-- The one grant: USAGE on the schema.  Everything in it is usable by PUBLIC, so a role with
-- USAGE has all it needs; a role without it has nothing.
REVOKE ALL ON SCHEMA parallel_guarantee FROM PUBLIC;
COMMENT ON SCHEMA parallel_guarantee IS
'parallel_guarantee: statements run with a guaranteed number of parallel workers, and batch changes run chunk by chunk. GRANT USAGE ON SCHEMA parallel_guarantee TO a role to let it use them.';

COMMENT ON SEQUENCE parallel_guarantee.parallel_guarantee_run_id_seq IS
'Internal: the floor of this database''s run ids (ids are unique in the cluster from 1.0).';
COMMENT ON TABLE parallel_guarantee.parallel_guarantee_run_history IS
'Internal: the history of guaranteed runs. Read parallel_guarantee_runs instead.';
COMMENT ON TABLE parallel_guarantee.parallel_guarantee_attempt_history IS
'Internal: the attempts of guaranteed runs. Read parallel_guarantee_attempts instead.';
COMMENT ON TABLE parallel_guarantee.parallel_guarantee_chunk_run_history IS
'Internal: the history of chunked runs. Read parallel_guarantee_chunk_runs instead.';
COMMENT ON TABLE parallel_guarantee.parallel_guarantee_chunk_history IS
'Internal: the chunks of chunked runs. Read parallel_guarantee_chunks instead.';


-- ---------------------------------------------------------------------------------------
-- Result types
-- ---------------------------------------------------------------------------------------

CREATE TYPE parallel_guarantee.parallel_guarantee_result AS (
    run_id           bigint,
    status           text,
    rows             bigint,
    workers_planned  integer,
    workers_launched integer,
    attempts         integer,
    elapsed          interval
);
COMMENT ON TYPE parallel_guarantee.parallel_guarantee_result IS
'What run_with_parallel_guarantee returns: how a guaranteed run ended.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_result.run_id IS 'The run''s id, unique in the cluster.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_result.status IS 'target_met, degraded (minimum met on the last attempt) or failed (raise_on_failure => false).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_result.rows IS 'Rows the statement processed (inserted, selected, updated).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_result.workers_planned IS 'Fewest workers any Gather planned in the final attempt.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_result.workers_launched IS 'Fewest workers any Gather launched in the final attempt.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_result.attempts IS 'Attempts used.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_result.elapsed IS 'From the call to the result.';

CREATE TYPE parallel_guarantee.parallel_guarantee_chunk_result AS (
    run_id         bigint,
    status         text,
    chunks_total   integer,
    chunks_done    integer,
    chunks_skipped integer,
    rows_changed   bigint,
    elapsed        interval
);
COMMENT ON TYPE parallel_guarantee.parallel_guarantee_chunk_result IS
'What run_in_chunks and resume_chunks return: how a chunked run ended.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_result.run_id IS 'The run''s id, unique in the cluster.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_result.status IS 'done or cancelled (a failed run raises its first failed chunk''s error).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_result.chunks_total IS 'Chunks of the fixed key set.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_result.chunks_done IS 'Chunks committed, by this call and before it.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_result.chunks_skipped IS 'Chunks skipped after max_retries (at most max_skipped).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_result.rows_changed IS 'Rows the committed chunks changed.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_result.elapsed IS 'From the call to the result.';


-- ---------------------------------------------------------------------------------------
-- Running statements
-- ---------------------------------------------------------------------------------------

CREATE FUNCTION parallel_guarantee.run_with_parallel_guarantee(
    statement        text,
    cleanup          text     DEFAULT NULL,
    target_workers   integer  DEFAULT 4,
    min_workers      integer  DEFAULT 2,
    max_attempts     integer  DEFAULT 5,
    retry_delay      interval DEFAULT '2 seconds',
    force_workers    boolean  DEFAULT false,
    raise_on_failure boolean  DEFAULT true,
    wait_for_slots   boolean  DEFAULT true,
    max_wait         interval DEFAULT NULL,
    priority         integer  DEFAULT 0,
    label            text     DEFAULT NULL,
    retry_sqlstates  text[]   DEFAULT NULL)
RETURNS parallel_guarantee.parallel_guarantee_result
AS 'MODULE_PATHNAME', 'run_with_parallel_guarantee'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION parallel_guarantee.run_with_parallel_guarantee(text, text, integer, integer, integer, interval, boolean, boolean, boolean, interval, integer, text, text[]) IS
'Runs a statement in a background worker as the caller, with target_workers parallel workers: waits for free workers, abandons and retries short attempts (and statement errors whose SQLSTATE retry_sqlstates lists), running cleanup between them, and returns how it ended.';

CREATE FUNCTION parallel_guarantee.submit_parallel_guarantee(
    statement        text,
    cleanup          text     DEFAULT NULL,
    target_workers   integer  DEFAULT 4,
    min_workers      integer  DEFAULT 2,
    max_attempts     integer  DEFAULT 5,
    retry_delay      interval DEFAULT '2 seconds',
    force_workers    boolean  DEFAULT false,
    wait_for_slots   boolean  DEFAULT true,
    max_wait         interval DEFAULT NULL,
    priority         integer  DEFAULT 0,
    label            text     DEFAULT NULL,
    retry_sqlstates  text[]   DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'submit_parallel_guarantee'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION parallel_guarantee.submit_parallel_guarantee(text, text, integer, integer, integer, interval, boolean, boolean, interval, integer, text, text[]) IS
'Starts a guaranteed run that goes on without the caller once the calling transaction commits; returns its run id (see parallel_guarantee_wait, parallel_guarantee_status).';

CREATE FUNCTION parallel_guarantee.run_in_chunks(
    keys         text,
    action       text,
    chunk_size   integer DEFAULT 1000,
    max_retries  integer DEFAULT 2,
    max_skipped  integer DEFAULT 0,
    workers      integer DEFAULT 1,
    notice_every integer DEFAULT 10,
    label        text    DEFAULT NULL)
RETURNS parallel_guarantee.parallel_guarantee_chunk_result
AS 'MODULE_PATHNAME', 'run_in_chunks'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION parallel_guarantee.run_in_chunks(text, text, integer, integer, integer, integer, integer, text) IS
'Runs action once per chunk of the fixed key set the keys query returns ($1 is the chunk''s keys as an array), each chunk in a transaction of its own, retried or skipped as asked; returns how the run ended.';

CREATE FUNCTION parallel_guarantee.submit_chunks(
    keys         text,
    action       text,
    chunk_size   integer DEFAULT 1000,
    max_retries  integer DEFAULT 2,
    max_skipped  integer DEFAULT 0,
    workers      integer DEFAULT 1,
    notice_every integer DEFAULT 10,
    label        text    DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'submit_chunks'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION parallel_guarantee.submit_chunks(text, text, integer, integer, integer, integer, integer, text) IS
'Starts a chunked run that goes on without the caller once the calling transaction commits; returns its run id.';

CREATE FUNCTION parallel_guarantee.resume_chunks(run_id bigint, notice_every integer DEFAULT 10)
RETURNS parallel_guarantee.parallel_guarantee_chunk_result
AS 'MODULE_PATHNAME', 'resume_chunks'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION parallel_guarantee.resume_chunks(bigint, integer) IS
'Continues a cancelled, failed or lost chunked run with the chunks not yet done (a done run: returns its row, nothing runs).';


-- ---------------------------------------------------------------------------------------
-- Internal functions (the views call them; not meant to be called directly)
-- ---------------------------------------------------------------------------------------

CREATE FUNCTION parallel_guarantee.parallel_guarantee_activity(
    OUT run_id           bigint,
    OUT caller_pid       integer,
    OUT worker_pid       integer,
    OUT database_oid     oid,
    OUT role_oid         oid,
    OUT state            text,
    OUT attempt          integer,
    OUT max_attempts     integer,
    OUT target_workers   integer,
    OUT min_workers      integer,
    OUT workers_planned  integer,
    OUT workers_launched integer,
    OUT started_at       timestamptz,
    OUT state_since      timestamptz,
    OUT queue_position   integer,
    OUT priority         integer,
    OUT label            text,
    OUT kind             text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'parallel_guarantee_activity'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION parallel_guarantee.parallel_guarantee_activity() IS
'Internal: the runs in progress, read from shared memory (the parallel_guarantee_activity view reads it).';

-- Who may see a run: its role and the roles that have its privileges (superusers too),
-- and members of pg_read_all_stats.
CREATE FUNCTION parallel_guarantee.parallel_guarantee_visible(role_oid oid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog AS $$
    SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid = role_oid)
                THEN pg_catalog.pg_has_role(role_oid, 'USAGE') ELSE false END
        OR pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')
$$;
COMMENT ON FUNCTION parallel_guarantee.parallel_guarantee_visible(oid) IS
'Internal: may the current role see the runs of this role (its own, a role it is a member of, or pg_read_all_stats)?';

-- True if a run the caller may see is recorded as running but no worker has it any more
-- (killed, server restarted); the row is read again under a new snapshot (READ COMMITTED).
CREATE FUNCTION parallel_guarantee.parallel_guarantee_lost(run_id bigint, chunked boolean)
RETURNS boolean
AS 'MODULE_PATHNAME', 'parallel_guarantee_lost'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION parallel_guarantee.parallel_guarantee_lost(bigint, boolean) IS
'Internal: is this run recorded as running while no worker has it any more?';

CREATE FUNCTION parallel_guarantee.parallel_guarantee_running_chunks(
    OUT run_id     bigint,
    OUT chunk_no   integer,
    OUT worker_pid integer,
    OUT since      timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'parallel_guarantee_running_chunks'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION parallel_guarantee.parallel_guarantee_running_chunks() IS
'Internal: the chunk each worker of a chunked run is on, from shared memory.';

CREATE FUNCTION parallel_guarantee.parallel_guarantee_wait_for(run_id bigint, timeout interval)
RETURNS boolean
AS 'MODULE_PATHNAME', 'parallel_guarantee_wait_for'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION parallel_guarantee.parallel_guarantee_wait_for(bigint, interval) IS
'Internal: waits until the run is no longer in progress in this database; false on timeout. Call parallel_guarantee_wait instead.';

CREATE FUNCTION parallel_guarantee.parallel_guarantee_cancel_run(run_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'parallel_guarantee_cancel_run'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION parallel_guarantee.parallel_guarantee_cancel_run(bigint) IS
'Internal: asks a run in progress (in any database) to stop. Call parallel_guarantee_cancel instead.';


-- ---------------------------------------------------------------------------------------
-- Views
-- ---------------------------------------------------------------------------------------

CREATE VIEW parallel_guarantee.parallel_guarantee_activity AS
SELECT a.run_id, a.kind, a.label, a.caller_pid, a.worker_pid, d.datname AS database,
       r.rolname AS role, a.state, a.attempt, a.max_attempts, a.target_workers, a.min_workers,
       a.workers_planned, a.workers_launched, a.started_at, a.state_since
  FROM parallel_guarantee.parallel_guarantee_activity() a
  LEFT JOIN pg_catalog.pg_database d ON d.oid = a.database_oid
  LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.role_oid;
COMMENT ON VIEW parallel_guarantee.parallel_guarantee_activity IS
'Runs in progress in every database, from shared memory: those of the roles you may see (yours, your roles'', or all with pg_read_all_stats).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_activity.run_id IS 'The run''s id, unique in the cluster.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_activity.kind IS 'guaranteed (run_with_parallel_guarantee, submit_parallel_guarantee) or chunked (run_in_chunks, submit_chunks, resume_chunks).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_activity.label IS 'The label the caller gave, if any.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_activity.caller_pid IS 'The calling session''s process id.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_activity.worker_pid IS 'The run''s background worker (NULL until it has started).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_activity.database IS 'The database the run is in.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_activity.role IS 'The role the run runs as.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_activity.state IS 'starting, waiting for slots, running, waiting to retry, cleaning up or finishing.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_activity.attempt IS 'The attempt in progress (guaranteed runs).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_activity.max_attempts IS 'Attempts allowed.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_activity.target_workers IS 'Parallel workers the run must get (a chunked run: its workers).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_activity.min_workers IS 'The fewest workers the last attempt may go on with.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_activity.workers_planned IS 'Workers planned by the current attempt''s Gathers (fewest).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_activity.workers_launched IS 'Workers launched by the current attempt''s Gathers (fewest).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_activity.started_at IS 'When the run was called.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_activity.state_since IS 'When the run entered its state.';

CREATE VIEW parallel_guarantee.parallel_guarantee_queue AS
SELECT a.queue_position, a.run_id, a.kind, a.label, a.caller_pid, a.worker_pid,
       d.datname AS database, r.rolname AS role, a.state, a.target_workers, a.priority,
       a.attempt, a.state_since
  FROM parallel_guarantee.parallel_guarantee_activity() a
  LEFT JOIN pg_catalog.pg_database d ON d.oid = a.database_oid
  LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.role_oid
 ORDER BY a.queue_position NULLS LAST, a.started_at;
COMMENT ON VIEW parallel_guarantee.parallel_guarantee_queue IS
'The queue for parallel workers: runs waiting for free workers in the order they will be admitted, then the runs in progress.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_queue.queue_position IS '1 = admitted next; NULL for a run that is not waiting.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_queue.run_id IS 'The run''s id, unique in the cluster.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_queue.kind IS 'guaranteed or chunked.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_queue.label IS 'The label the caller gave, if any.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_queue.caller_pid IS 'The calling session''s process id.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_queue.worker_pid IS 'The run''s background worker.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_queue.database IS 'The database the run is in.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_queue.role IS 'The role the run runs as.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_queue.state IS 'As in parallel_guarantee_activity.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_queue.target_workers IS 'Free parallel workers the run waits for.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_queue.priority IS 'Higher is admitted first; equal priorities in order of arrival.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_queue.attempt IS 'The attempt that waits or runs.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_queue.state_since IS 'When the run entered its state (for a waiting run: since when it waits).';

-- Every run, both kinds, one row each.  A run recorded as running that no worker has any
-- more shows 'lost'.
CREATE VIEW parallel_guarantee.parallel_guarantee_runs WITH (security_barrier) AS
SELECT h.run_id, 'guaranteed'::text AS kind, h.label, h.role_name AS role,
       h.database_name AS database,
       CASE WHEN h.status = 'running' AND parallel_guarantee.parallel_guarantee_lost(h.run_id, false)
            THEN 'lost' ELSE h.status END AS status,
       h.rows, h.workers_planned, h.workers_launched, h.attempts,
       h.started_at, h.finished_at, h.finished_at - h.started_at AS elapsed,
       h.sqlstate, h.message, h.statement, h.cleanup,
       h.target_workers, h.min_workers, h.max_attempts,
       h.retry_delay_ms * interval '1 millisecond' AS retry_delay, h.force_workers,
       h.wait_for_slots, h.max_wait_ms * interval '1 millisecond' AS max_wait, h.priority,
       h.async, h.caller_pid, h.worker_pid
  FROM parallel_guarantee.parallel_guarantee_run_history h
 WHERE parallel_guarantee.parallel_guarantee_visible(h.role_oid)
UNION ALL
SELECT c.run_id, 'chunked'::text, c.label, c.role_name, c.database_name,
       CASE WHEN c.status = 'running' AND parallel_guarantee.parallel_guarantee_lost(c.run_id, true)
            THEN 'lost' ELSE c.status END,
       (SELECT coalesce(sum(k.rows), 0) FROM parallel_guarantee.parallel_guarantee_chunk_history k
         WHERE k.run_id = c.run_id AND k.state = 'done'),
       NULL, NULL, NULL,
       c.started_at, c.finished_at, c.finished_at - c.started_at,
       c.sqlstate, c.message, c.action, NULL,
       c.workers, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
  FROM parallel_guarantee.parallel_guarantee_chunk_run_history c
 WHERE parallel_guarantee.parallel_guarantee_visible(c.role_oid);
COMMENT ON VIEW parallel_guarantee.parallel_guarantee_runs IS
'Every run of this database, guaranteed and chunked, that you may see (your role''s, your roles'', or all with pg_read_all_stats). Chunked runs'' details are in parallel_guarantee_chunk_runs.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.run_id IS 'The run''s id (unique in the cluster from 1.0).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.kind IS 'guaranteed or chunked.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.label IS 'The label the caller gave, if any.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.role IS 'The role the run ran as.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.database IS 'The database the run ran in.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.status IS 'running; guaranteed: target_met, degraded, failed; chunked: done, failed; either: error, cancelled, lost (recorded as running, but no worker has it any more).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.rows IS 'Rows the statement processed; chunked: rows changed by the committed chunks.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.workers_planned IS 'Fewest workers any Gather planned in the final attempt (guaranteed).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.workers_launched IS 'Fewest workers any Gather launched in the final attempt (guaranteed).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.attempts IS 'Attempts used (guaranteed).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.started_at IS 'When the run was called.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.finished_at IS 'When it ended (NULL while running).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.elapsed IS 'finished_at - started_at.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.sqlstate IS 'The error''s SQLSTATE, for a run that did not succeed.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.message IS 'The error''s message, for a run that did not succeed.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.statement IS 'The statement; chunked: the action.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.cleanup IS 'The cleanup statement (guaranteed).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.target_workers IS 'target_workers; chunked: workers.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.min_workers IS 'The argument of the call (guaranteed).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.max_attempts IS 'The argument of the call (guaranteed).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.retry_delay IS 'The argument of the call (guaranteed).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.force_workers IS 'The argument of the call (guaranteed).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.wait_for_slots IS 'The argument of the call (guaranteed).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.max_wait IS 'The bound on waiting for free workers the run had (guaranteed).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.priority IS 'The argument of the call (guaranteed).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.async IS 'Submitted with submit_parallel_guarantee (guaranteed).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.caller_pid IS 'The calling session''s process id (guaranteed).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.worker_pid IS 'The run''s background worker (guaranteed).';

CREATE VIEW parallel_guarantee.parallel_guarantee_attempts WITH (security_barrier) AS
SELECT a.run_id, a.attempt, a.started_at, a.waited_ms * interval '1 millisecond' AS waited,
       a.duration_us * interval '1 microsecond' AS duration,
       a.workers_planned, a.workers_launched, a.outcome
  FROM parallel_guarantee.parallel_guarantee_attempt_history a
  JOIN parallel_guarantee.parallel_guarantee_run_history h USING (run_id)
 WHERE parallel_guarantee.parallel_guarantee_visible(h.role_oid);
COMMENT ON VIEW parallel_guarantee.parallel_guarantee_attempts IS
'Each attempt of the guaranteed runs you may see.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_attempts.run_id IS 'The run.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_attempts.attempt IS 'The attempt''s number, from 1.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_attempts.started_at IS 'When the attempt started.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_attempts.waited IS 'How long the attempt waited for free workers before it started.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_attempts.duration IS 'From the start of the attempt to its end or abandonment.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_attempts.workers_planned IS 'Fewest workers any Gather of the attempt planned.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_attempts.workers_launched IS 'Fewest workers any Gather of the attempt launched.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_attempts.outcome IS 'target met, degraded, abandoned, failed short, planned fewer, statement error, cancelled, worker terminated, ...';

-- Per label: is the nightly step starved?
CREATE VIEW parallel_guarantee.parallel_guarantee_label_summary AS
SELECT r.label, count(*) AS runs,
       count(*) FILTER (WHERE r.status = 'target_met') AS target_met,
       count(*) FILTER (WHERE r.status = 'degraded') AS degraded,
       count(*) FILTER (WHERE r.status = 'done') AS done,
       count(*) FILTER (WHERE r.status = 'failed') AS failed,
       count(*) FILTER (WHERE r.status = 'error') AS errors,
       count(*) FILTER (WHERE r.status = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE r.status = 'lost') AS lost,
       count(*) FILTER (WHERE r.status = 'running') AS running,
       round(avg(r.attempts), 2) AS avg_attempts,
       avg(w.waited) AS avg_wait,
       avg(r.elapsed) AS avg_elapsed,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY r.elapsed) AS p95_elapsed,
       (array_agg(r.elapsed ORDER BY r.finished_at DESC) FILTER (WHERE r.finished_at IS NOT NULL))[1] AS last_elapsed,
       max(r.started_at) AS last_started
  FROM parallel_guarantee.parallel_guarantee_runs r
  LEFT JOIN LATERAL (SELECT sum(a.waited) AS waited
                       FROM parallel_guarantee.parallel_guarantee_attempts a
                      WHERE r.kind = 'guaranteed' AND a.run_id = r.run_id) w ON true
 GROUP BY r.label;
COMMENT ON VIEW parallel_guarantee.parallel_guarantee_label_summary IS
'Per label, the runs (both kinds) you may see: how they ended and how long they took. Is the nightly step starved?';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_label_summary.label IS 'The label (NULL: runs without one).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_label_summary.runs IS 'Runs with this label.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_label_summary.target_met IS 'Guaranteed runs that got their target.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_label_summary.degraded IS 'Guaranteed runs that went on with at least min_workers on their last attempt.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_label_summary.done IS 'Chunked runs done.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_label_summary.failed IS 'Guaranteed runs below min_workers; chunked runs stopped by a failed chunk.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_label_summary.errors IS 'Runs whose statement (or keys query) raised an error.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_label_summary.cancelled IS 'Runs cancelled.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_label_summary.lost IS 'Runs whose worker went away without recording an end.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_label_summary.running IS 'Runs in progress.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_label_summary.avg_attempts IS 'Average attempts of the guaranteed runs.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_label_summary.avg_wait IS 'Average time a guaranteed run waited for free workers, all attempts together.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_label_summary.avg_elapsed IS 'Average elapsed time of the finished runs.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_label_summary.p95_elapsed IS '95th percentile of the finished runs'' elapsed time.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_label_summary.last_elapsed IS 'Elapsed time of the run that finished last.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_label_summary.last_started IS 'When the latest run started.';

CREATE VIEW parallel_guarantee.parallel_guarantee_chunk_runs WITH (security_barrier) AS
SELECT r.run_id, r.label, r.role_name AS role, r.database_name AS database,
       CASE WHEN r.status = 'running' AND parallel_guarantee.parallel_guarantee_lost(r.run_id, true)
            THEN 'lost' ELSE r.status END AS status,
       r.total_keys AS keys_total, r.total_chunks AS chunks_total,
       (SELECT count(*) FROM parallel_guarantee.parallel_guarantee_chunk_history c
         WHERE c.run_id = r.run_id AND c.state = 'done') AS chunks_done,
       r.chunks_skipped,
       (SELECT coalesce(sum(c.rows), 0) FROM parallel_guarantee.parallel_guarantee_chunk_history c
         WHERE c.run_id = r.run_id AND c.state = 'done') AS rows_changed,
       r.started_at, r.finished_at, r.finished_at - r.started_at AS elapsed,
       r.sqlstate, r.message, r.keys_query AS keys, r.action, r.chunk_size, r.max_retries,
       r.max_skipped, r.workers, r.key_type::regtype AS key_type
  FROM parallel_guarantee.parallel_guarantee_chunk_run_history r
 WHERE parallel_guarantee.parallel_guarantee_visible(r.role_oid);
COMMENT ON VIEW parallel_guarantee.parallel_guarantee_chunk_runs IS
'The chunked runs of this database you may see, with their progress.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_runs.run_id IS 'The run''s id.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_runs.label IS 'The label the caller gave, if any.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_runs.role IS 'The role the run runs as.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_runs.database IS 'The database the run ran in.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_runs.status IS 'running, done, failed, cancelled, error or lost.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_runs.keys_total IS 'Keys in the fixed key set (after removing duplicates).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_runs.chunks_total IS 'Chunks of the key set.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_runs.chunks_done IS 'Chunks committed.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_runs.chunks_skipped IS 'Chunks skipped after max_retries.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_runs.rows_changed IS 'Rows the committed chunks changed.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_runs.started_at IS 'When the run was called.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_runs.finished_at IS 'When it ended (NULL while running).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_runs.elapsed IS 'finished_at - started_at.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_runs.sqlstate IS 'The error''s SQLSTATE, for a run that did not end done.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_runs.message IS 'The error''s message, for a run that did not end done.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_runs.keys IS 'The keys query.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_runs.action IS 'The action run per chunk.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_runs.chunk_size IS 'Keys per chunk.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_runs.max_retries IS 'Retries of a failing chunk.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_runs.max_skipped IS 'Chunks that may be skipped before the run fails.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_runs.workers IS 'Workers asked for.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunk_runs.key_type IS 'The type of the keys.';

CREATE VIEW parallel_guarantee.parallel_guarantee_chunks WITH (security_barrier) AS
SELECT c.run_id, c.chunk_no,
       CASE WHEN a.chunk_no IS NOT NULL THEN 'running' ELSE c.state END AS state,
       c.first_key, c.last_key, c.key_count, c.attempts,
       c.rows, c.sqlstate, c.error AS message,
       coalesce(a.worker_pid, c.worker_pid) AS worker_pid,
       coalesce(a.since, c.started_at) AS started_at,
       c.finished_at
  FROM parallel_guarantee.parallel_guarantee_chunk_history c
  JOIN parallel_guarantee.parallel_guarantee_chunk_run_history r USING (run_id)
  LEFT JOIN parallel_guarantee.parallel_guarantee_running_chunks() a
         ON c.state = 'pending' AND a.run_id = c.run_id AND a.chunk_no = c.chunk_no
 WHERE parallel_guarantee.parallel_guarantee_visible(r.role_oid);
COMMENT ON VIEW parallel_guarantee.parallel_guarantee_chunks IS
'Each chunk of the chunked runs you may see.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunks.run_id IS 'The run.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunks.chunk_no IS 'The chunk''s number, from 1, in key order.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunks.state IS 'pending, running, done, skipped or failed.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunks.first_key IS 'The chunk''s first key, as text.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunks.last_key IS 'The chunk''s last key, as text.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunks.key_count IS 'Keys in the chunk.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunks.attempts IS 'Times the action ran for it.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunks.rows IS 'Rows the committed action changed.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunks.sqlstate IS 'The last error''s SQLSTATE.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunks.message IS 'The last error''s message.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunks.worker_pid IS 'The worker that ran it (or runs it).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunks.started_at IS 'When its last try started.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunks.finished_at IS 'When it was done, skipped or failed.';


-- ---------------------------------------------------------------------------------------
-- Status, wait, cancel: any run, either kind
-- ---------------------------------------------------------------------------------------

-- The run's row; an error if there is none the caller may see.
CREATE FUNCTION parallel_guarantee.parallel_guarantee_status(run_id bigint)
RETURNS parallel_guarantee.parallel_guarantee_runs
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog AS $$
DECLARE
    r parallel_guarantee.parallel_guarantee_runs;
    elsewhere name;
BEGIN
    IF run_id IS NULL THEN
        RAISE EXCEPTION 'run_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO r FROM parallel_guarantee.parallel_guarantee_runs h WHERE h.run_id = $1;
    IF NOT FOUND THEN
        SELECT a.database INTO elsewhere FROM parallel_guarantee.parallel_guarantee_activity a
         WHERE a.run_id = $1 AND a.database <> current_database() LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'run % is in progress in database "%", not in this one', $1, elsewhere
                USING ERRCODE = '55000',
                      DETAIL = 'A run''s outcome is recorded in its own database.',
                      HINT = format('Connect to database "%s" to see it; parallel_guarantee_cancel(%s) cancels it from here.',
                                    elsewhere, $1);
        END IF;
        RAISE EXCEPTION 'there is no run % that you may see', $1
            USING ERRCODE = '42704',
                  HINT = 'Run ids come from run_with_parallel_guarantee, submit_parallel_guarantee, run_in_chunks '
                         'and submit_chunks; a run is visible to its role, that role''s members and '
                         'pg_read_all_stats, in the database it ran in.';
    END IF;
    RETURN r;
END $$;
COMMENT ON FUNCTION parallel_guarantee.parallel_guarantee_status(bigint) IS
'The parallel_guarantee_runs row of a run of either kind (42704 if there is none you may see; 55000 for a run in progress in another database).';

-- Waits until the run has finished (or the timeout passed), then returns its row.
CREATE FUNCTION parallel_guarantee.parallel_guarantee_wait(run_id bigint, timeout interval DEFAULT NULL)
RETURNS parallel_guarantee.parallel_guarantee_runs
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog AS $$
BEGIN
    PERFORM parallel_guarantee.parallel_guarantee_status(run_id);
    PERFORM parallel_guarantee.parallel_guarantee_wait_for(run_id, timeout);
    RETURN parallel_guarantee.parallel_guarantee_status(run_id);
END $$;
COMMENT ON FUNCTION parallel_guarantee.parallel_guarantee_wait(bigint, interval) IS
'Waits until a run of either kind has ended (or the timeout passed), then returns its parallel_guarantee_runs row.';

-- Asks a run in progress to stop (its statement is cancelled and its cleanup runs; a chunked
-- run stops after its committed chunks).  A run in progress in another database is cancelled
-- too: run ids are unique in the cluster.
CREATE FUNCTION parallel_guarantee.parallel_guarantee_cancel(run_id bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog AS $$
DECLARE
    r parallel_guarantee.parallel_guarantee_runs;
BEGIN
    IF run_id IS NULL THEN
        RAISE EXCEPTION 'run_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT FROM parallel_guarantee.parallel_guarantee_runs h WHERE h.run_id = $1)
       AND EXISTS (SELECT FROM parallel_guarantee.parallel_guarantee_activity a
                    WHERE a.run_id = $1 AND a.database <> current_database()) THEN
        RETURN parallel_guarantee.parallel_guarantee_cancel_run(run_id);
    END IF;
    r := parallel_guarantee.parallel_guarantee_status(run_id);
    IF parallel_guarantee.parallel_guarantee_cancel_run(run_id) THEN
        RETURN true;
    END IF;
    r := parallel_guarantee.parallel_guarantee_status(run_id);
    RAISE NOTICE '% run % is not in progress: its status is %', r.kind, run_id, r.status;
    RETURN false;
END $$;
COMMENT ON FUNCTION parallel_guarantee.parallel_guarantee_cancel(bigint) IS
'Asks a run of either kind, in any database, to stop; true if it was in progress and will end cancelled. Only the run''s role, its members and superusers may.';

-- Cancels the runs in progress the caller may cancel (its own role's and those of roles it is
-- a member of; a superuser: all), of a label, a role, a database (NULL: every database).
CREATE FUNCTION parallel_guarantee.parallel_guarantee_cancel_runs(
    label     text DEFAULT NULL,
    role      name DEFAULT NULL,
    database  name DEFAULT pg_catalog.current_database(),
    OUT run_id    bigint,
    OUT kind      text,
    OUT cancelled boolean)
RETURNS SETOF record
LANGUAGE sql VOLATILE SET search_path = pg_catalog AS $$
    SELECT a.run_id, a.kind, parallel_guarantee.parallel_guarantee_cancel_run(a.run_id)
      FROM parallel_guarantee.parallel_guarantee_activity a
     WHERE ($3 IS NULL OR a.database OPERATOR(pg_catalog.=) $3)
       AND ($1 IS NULL OR a.label OPERATOR(pg_catalog.=) $1)
       AND ($2 IS NULL OR a.role OPERATOR(pg_catalog.=) $2)
       AND pg_catalog.pg_has_role(a.role, 'USAGE')
     ORDER BY a.run_id
$$;
COMMENT ON FUNCTION parallel_guarantee.parallel_guarantee_cancel_runs(text, name, name) IS
'Cancels the runs in progress you may cancel, of a label, a role and a database (NULL: any; database defaults to the current one); one row per run asked to stop.';

-- A chunked run's detailed row.
CREATE FUNCTION parallel_guarantee.parallel_guarantee_chunk_status(run_id bigint)
RETURNS parallel_guarantee.parallel_guarantee_chunk_runs
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog AS $$
DECLARE
    r parallel_guarantee.parallel_guarantee_chunk_runs;
BEGIN
    IF run_id IS NULL THEN
        RAISE EXCEPTION 'run_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO r FROM parallel_guarantee.parallel_guarantee_chunk_runs h WHERE h.run_id = $1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'there is no chunked run % that you may see', $1
            USING ERRCODE = '42704',
                  HINT = 'Run ids come from run_in_chunks and submit_chunks; a run is visible to '
                         'its role, that role''s members and pg_read_all_stats.';
    END IF;
    RETURN r;
END $$;
COMMENT ON FUNCTION parallel_guarantee.parallel_guarantee_chunk_status(bigint) IS
'The parallel_guarantee_chunk_runs row of a chunked run: its progress in detail.';

-- ---------------------------------------------------------------------------------------
-- The whole server: every parallel launch counted, and metrics to scrape
-- ---------------------------------------------------------------------------------------

CREATE FUNCTION parallel_guarantee.parallel_guarantee_downgrades(
    OUT database_oid     oid,
    OUT role_oid         oid,
    OUT query_id         bigint,
    OUT launches         bigint,
    OUT workers_planned  bigint,
    OUT workers_launched bigint,
    OUT not_downgraded   bigint,
    OUT short_1_25       bigint,
    OUT short_25_50      bigint,
    OUT short_50_75      bigint,
    OUT short_75_99      bigint,
    OUT serial           bigint,
    OUT worst_shortfall  integer,
    OUT first_launch     timestamptz,
    OUT last_launch      timestamptz,
    OUT last_downgrade   timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'parallel_guarantee_downgrades'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION parallel_guarantee.parallel_guarantee_downgrades() IS
'Internal: the downgrade statistics, read from shared memory (the parallel_guarantee_downgrades view reads it).';

CREATE VIEW parallel_guarantee.parallel_guarantee_downgrades AS
SELECT d.datname AS database, r.rolname AS role, g.query_id, g.launches,
       g.workers_planned, g.workers_launched, g.not_downgraded, g.short_1_25, g.short_25_50,
       g.short_50_75, g.short_75_99, g.serial, g.worst_shortfall, g.first_launch,
       g.last_launch, g.last_downgrade
  FROM parallel_guarantee.parallel_guarantee_downgrades() g
  LEFT JOIN pg_catalog.pg_database d ON d.oid = g.database_oid
  LEFT JOIN pg_catalog.pg_roles r ON r.oid = g.role_oid;
COMMENT ON VIEW parallel_guarantee.parallel_guarantee_downgrades IS
'Every Gather and Gather Merge launch in the server (guaranteed run or not) since the last reset, per database, role and query id, by how far short of its plan it fell. Rows of the roles you may see (yours, your roles'', all with pg_read_all_stats).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_downgrades.database IS 'The database of the launches.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_downgrades.role IS 'The role that ran the query.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_downgrades.query_id IS 'The query id (as in pg_stat_statements and pg_stat_activity), NULL when compute_query_id gave none.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_downgrades.launches IS 'Gather and Gather Merge launches counted (each Gather once per execution of its query).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_downgrades.workers_planned IS 'Parallel workers planned, summed over the launches.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_downgrades.workers_launched IS 'Parallel workers launched, summed over the launches.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_downgrades.not_downgraded IS 'Launches that got every planned worker.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_downgrades.short_1_25 IS 'Launches short by more than 0 % and at most 25 % of the planned workers.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_downgrades.short_25_50 IS 'Launches short by more than 25 % and at most 50 %.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_downgrades.short_50_75 IS 'Launches short by more than 50 % and at most 75 %.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_downgrades.short_75_99 IS 'Launches short by more than 75 % that still got a worker.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_downgrades.serial IS 'Launches that got no worker at all (the leader ran alone).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_downgrades.worst_shortfall IS 'The largest shortfall seen, in per cent of the planned workers (100: serial).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_downgrades.first_launch IS 'The first launch counted.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_downgrades.last_launch IS 'The latest launch counted.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_downgrades.last_downgrade IS 'The latest launch that fell short (NULL: never).';

CREATE FUNCTION parallel_guarantee.parallel_guarantee_downgrades_reset()
RETURNS bigint
AS 'MODULE_PATHNAME', 'parallel_guarantee_downgrades_reset'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION parallel_guarantee.parallel_guarantee_downgrades_reset() IS
'Empties parallel_guarantee_downgrades for the whole server; the number of entries removed. Superusers only, unless granted.';

CREATE FUNCTION parallel_guarantee.parallel_guarantee_downgrades_info(
    OUT entries     bigint,
    OUT max_entries integer,
    OUT evicted     bigint,
    OUT reset_at    timestamptz)
AS 'MODULE_PATHNAME', 'parallel_guarantee_downgrades_info'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION parallel_guarantee.parallel_guarantee_downgrades_info() IS
'The downgrade table: entries in use, its bound (parallel_guarantee.max_downgrade_entries), entries evicted to stay within it, and when it was last reset.';

-- Metrics in the shape monitoring tools want (one row per sample: name, labels, value, help),
-- for sql_exporter or postgres_exporter (contrib/metrics/ has ready query files).
CREATE VIEW parallel_guarantee.parallel_guarantee_metrics AS
WITH runs AS (
    SELECT r.kind, r.status, coalesce(r.label, '') AS label, count(*) AS n
      FROM parallel_guarantee.parallel_guarantee_runs r
     GROUP BY 1, 2, 3),
activity AS (SELECT * FROM parallel_guarantee.parallel_guarantee_queue),
downgrades AS (SELECT * FROM parallel_guarantee.parallel_guarantee_downgrades),
info AS (SELECT * FROM parallel_guarantee.parallel_guarantee_downgrades_info())
SELECT 'parallel_guarantee_runs_total'::text AS metric,
       jsonb_build_object('database', current_database(), 'kind', runs.kind, 'status', runs.status, 'label', runs.label) AS labels,
       runs.n::double precision AS value,
       'Runs recorded in this database''s history, by kind, status and label.'::text AS help
  FROM runs
UNION ALL
SELECT 'parallel_guarantee_runs_in_progress', jsonb_build_object('kind', k.kind),
       (SELECT count(*) FROM activity a WHERE a.kind = k.kind)::double precision,
       'Runs in progress in the server, by kind.'
  FROM (VALUES ('guaranteed'), ('chunked')) k(kind)
UNION ALL
SELECT 'parallel_guarantee_queue_length', '{}'::jsonb,
       (SELECT count(*) FROM activity a WHERE a.queue_position IS NOT NULL AND a.queue_position > 0)::double precision,
       'Runs waiting for free parallel workers.'
UNION ALL
SELECT 'parallel_guarantee_queue_oldest_wait_seconds', '{}'::jsonb,
       coalesce((SELECT extract(epoch FROM now() - min(a.state_since)) FROM activity a
                  WHERE a.queue_position IS NOT NULL AND a.queue_position > 0), 0)::double precision,
       'How long the longest-waiting queued run has waited.'
UNION ALL
SELECT 'parallel_guarantee_attempts_abandoned_total', jsonb_build_object('database', current_database()),
       (SELECT count(*) FROM parallel_guarantee.parallel_guarantee_attempts a WHERE a.outcome = 'abandoned')::double precision,
       'Attempts abandoned short of their target, in this database''s history.'
UNION ALL
SELECT 'parallel_guarantee_parallel_launches_total', jsonb_build_object('bucket', b.bucket),
       coalesce(sum(b.n), 0)::double precision,
       'Gather launches in the server since the last reset, by how far short of their plan they fell.'
  FROM (SELECT 'not_downgraded' AS bucket, d.not_downgraded AS n FROM downgrades d
        UNION ALL SELECT 'short_1_25', d.short_1_25 FROM downgrades d
        UNION ALL SELECT 'short_25_50', d.short_25_50 FROM downgrades d
        UNION ALL SELECT 'short_50_75', d.short_50_75 FROM downgrades d
        UNION ALL SELECT 'short_75_99', d.short_75_99 FROM downgrades d
        UNION ALL SELECT 'serial', d.serial FROM downgrades d
        UNION ALL SELECT x.b, 0 FROM (VALUES ('not_downgraded'), ('short_1_25'), ('short_25_50'),
                                             ('short_50_75'), ('short_75_99'), ('serial')) x(b)) b
 GROUP BY b.bucket
UNION ALL
SELECT 'parallel_guarantee_parallel_workers_planned_total', '{}'::jsonb,
       coalesce((SELECT sum(d.workers_planned) FROM downgrades d), 0)::double precision,
       'Parallel workers planned by the launches counted since the last reset.'
UNION ALL
SELECT 'parallel_guarantee_parallel_workers_launched_total', '{}'::jsonb,
       coalesce((SELECT sum(d.workers_launched) FROM downgrades d), 0)::double precision,
       'Parallel workers launched by the launches counted since the last reset.'
UNION ALL
SELECT 'parallel_guarantee_downgrade_entries_evicted_total', '{}'::jsonb,
       coalesce((SELECT i.evicted FROM info i), 0)::double precision,
       'Downgrade entries evicted to stay within parallel_guarantee.max_downgrade_entries.'
UNION ALL
SELECT 'parallel_guarantee_parallel_workers_busy', '{}'::jsonb,
       (SELECT count(*) FROM pg_catalog.pg_stat_activity s WHERE s.backend_type = 'parallel worker')::double precision,
       'Parallel workers running now (pg_stat_activity).'
UNION ALL
SELECT 'parallel_guarantee_parallel_workers_max', '{}'::jsonb,
       pg_catalog.current_setting('max_parallel_workers')::double precision,
       'The server''s max_parallel_workers.'
UNION ALL
SELECT 'parallel_guarantee_worker_processes_max', '{}'::jsonb,
       pg_catalog.current_setting('max_worker_processes')::double precision,
       'The server''s max_worker_processes (parallel workers, run workers and other background workers share it).';
COMMENT ON VIEW parallel_guarantee.parallel_guarantee_metrics IS
'Metrics to scrape: one row per sample, with the metric''s name, labels (jsonb), value and help text. See contrib/metrics/ for sql_exporter and postgres_exporter query files.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_metrics.metric IS 'The metric''s name (Prometheus style).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_metrics.labels IS 'The sample''s labels, as a jsonb object of strings.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_metrics.value IS 'The sample''s value.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_metrics.help IS 'What the metric means.';

-- Inside the schema everything is usable by whoever may use the schema.
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA parallel_guarantee TO PUBLIC;
GRANT SELECT ON parallel_guarantee.parallel_guarantee_activity, parallel_guarantee.parallel_guarantee_queue,
                parallel_guarantee.parallel_guarantee_runs, parallel_guarantee.parallel_guarantee_attempts,
                parallel_guarantee.parallel_guarantee_label_summary, parallel_guarantee.parallel_guarantee_chunk_runs,
                parallel_guarantee.parallel_guarantee_chunks, parallel_guarantee.parallel_guarantee_downgrades,
                parallel_guarantee.parallel_guarantee_metrics TO PUBLIC;
-- Emptying the server-wide statistics is for superusers, or those they grant it to.
REVOKE EXECUTE ON FUNCTION parallel_guarantee.parallel_guarantee_downgrades_reset() FROM PUBLIC;
