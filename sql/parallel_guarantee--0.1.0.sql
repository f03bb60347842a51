-- parallel_guarantee 0.1.0: run a statement with a guaranteed number of parallel workers.
\echo Use "CREATE EXTENSION parallel_guarantee" to load this file. \quit

-- Run ids: one sequence, so ids stay unique across server restarts.
CREATE SEQUENCE @extschema@.parallel_guarantee_run_id_seq;
GRANT USAGE ON SEQUENCE @extschema@.parallel_guarantee_run_id_seq TO PUBLIC;

-- What a guaranteed run came to.
CREATE TYPE @extschema@.parallel_guarantee_result AS (
    status           text,      -- target_met | degraded | failed
    rows             bigint,    -- rows the statement processed (inserted, selected, updated)
    workers_planned  integer,   -- fewest workers any Gather planned in the final attempt
    workers_launched integer,   -- fewest workers any Gather launched in the final attempt
    attempts         integer,   -- attempts used
    elapsed          interval,  -- from the call to the result
    run_id           bigint     -- this run's id
);

CREATE FUNCTION @extschema@.run_with_parallel_guarantee(
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
    label            text     DEFAULT NULL)
RETURNS @extschema@.parallel_guarantee_result
AS 'MODULE_PATHNAME', 'run_with_parallel_guarantee'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION @extschema@.run_with_parallel_guarantee(text, text, integer, integer, integer, interval, boolean, boolean, boolean, interval, integer, text) IS
'Runs a statement in a background worker as the caller, retrying server-side until it gets target_workers parallel workers';

-- The statement runs with the caller's own privileges, so EXECUTE is safe to grant; it is
-- still revoked from PUBLIC because each call holds a background worker slot.
REVOKE ALL ON FUNCTION @extschema@.run_with_parallel_guarantee(text, text, integer, integer, integer, interval, boolean, boolean, boolean, interval, integer, text) FROM PUBLIC;

-- Runs in progress, read from shared memory.
CREATE FUNCTION @extschema@.parallel_guarantee_activity(
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
    OUT label            text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'parallel_guarantee_activity'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

CREATE VIEW @extschema@.parallel_guarantee_activity AS
SELECT a.run_id, a.label, a.caller_pid, a.worker_pid, d.datname AS database, r.rolname AS role,
       a.state, a.attempt, a.max_attempts, a.target_workers, a.min_workers,
       a.workers_planned, a.workers_launched, a.started_at, a.state_since
  FROM @extschema@.parallel_guarantee_activity() a
  LEFT JOIN pg_catalog.pg_database d ON d.oid = a.database_oid
  LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.role_oid;

GRANT SELECT ON @extschema@.parallel_guarantee_activity TO PUBLIC;

-- The queue of guaranteed runs: those waiting for free workers, in the order they will be
-- admitted, then those running.
CREATE VIEW @extschema@.parallel_guarantee_queue AS
SELECT a.queue_position, a.run_id, a.label, a.caller_pid AS session_pid, a.worker_pid,
       d.datname AS database, r.rolname AS role, a.state,
       a.target_workers AS workers_needed, a.priority, a.attempt,
       a.state_since AS since
  FROM @extschema@.parallel_guarantee_activity() a
  LEFT JOIN pg_catalog.pg_database d ON d.oid = a.database_oid
  LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.role_oid
 ORDER BY a.queue_position NULLS LAST, a.started_at;

GRANT SELECT ON @extschema@.parallel_guarantee_queue TO PUBLIC;
