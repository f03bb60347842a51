-- parallel_guarantee 0.5.0 -> 0.5.1: security fixes, nearly all in the shared library (see
-- CHANGELOG.md).  Restart the server after installing the library.
\echo Use "ALTER EXTENSION parallel_guarantee UPDATE TO '0.5.1'" to load this file. \quit

-- The run-id sequence is the extension's own: the functions take ids from it without a
-- privilege check, and nobody else needs to (an ordinary role could burn ids).
REVOKE ALL ON SEQUENCE @extschema@.parallel_guarantee_run_id_seq FROM PUBLIC;

-- One kind of run, one set of verbs: the activity and queue views say which kind each run
-- is, and parallel_guarantee_cancel cancels a chunked run too (it said there was no such run,
-- so SELECT parallel_guarantee_cancel(run_id) FROM parallel_guarantee_activity aborted).
DROP VIEW @extschema@.parallel_guarantee_queue;
DROP VIEW @extschema@.parallel_guarantee_activity;
DROP FUNCTION @extschema@.parallel_guarantee_activity();
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
    OUT label            text,
    OUT kind             text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'parallel_guarantee_activity'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

CREATE VIEW @extschema@.parallel_guarantee_activity AS
SELECT a.run_id, a.label, a.caller_pid, a.worker_pid, d.datname AS database, r.rolname AS role,
       a.state, a.attempt, a.max_attempts, a.target_workers, a.min_workers,
       a.workers_planned, a.workers_launched, a.started_at, a.state_since, a.kind
  FROM @extschema@.parallel_guarantee_activity() a
  LEFT JOIN pg_catalog.pg_database d ON d.oid = a.database_oid
  LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.role_oid;
GRANT SELECT ON @extschema@.parallel_guarantee_activity TO PUBLIC;

CREATE VIEW @extschema@.parallel_guarantee_queue AS
SELECT a.queue_position, a.run_id, a.label, a.caller_pid AS session_pid, a.worker_pid,
       d.datname AS database, r.rolname AS role, a.state,
       a.target_workers AS workers_needed, a.priority, a.attempt,
       a.state_since AS since, a.kind
  FROM @extschema@.parallel_guarantee_activity() a
  LEFT JOIN pg_catalog.pg_database d ON d.oid = a.database_oid
  LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.role_oid
 ORDER BY a.queue_position NULLS LAST, a.started_at;
GRANT SELECT ON @extschema@.parallel_guarantee_queue TO PUBLIC;

CREATE OR REPLACE FUNCTION @extschema@.parallel_guarantee_cancel(run_id bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog AS $$
DECLARE
    r @extschema@.parallel_guarantee_runs;
BEGIN
    -- Guaranteed and chunked runs share one sequence of ids: a chunked run's id is its.
    IF NOT EXISTS (SELECT FROM @extschema@.parallel_guarantee_runs h WHERE h.run_id = $1)
       AND EXISTS (SELECT FROM @extschema@.parallel_guarantee_chunk_runs c WHERE c.run_id = $1) THEN
        RETURN @extschema@.parallel_guarantee_chunk_cancel($1);
    END IF;
    r := @extschema@.parallel_guarantee_status(run_id);
    IF @extschema@.parallel_guarantee_cancel_run(run_id) THEN
        RETURN true;
    END IF;
    r := @extschema@.parallel_guarantee_status(run_id);
    RAISE NOTICE 'guaranteed run % is not in progress: its status is %', run_id, r.status;
    RETURN false;
END $$;

-- Cancels, in this database, the runs in progress the caller may cancel (its own role's and
-- those of roles it is a member of; a superuser: all), all of them or those of a label or a
-- role; one row per run asked to stop.
CREATE FUNCTION @extschema@.parallel_guarantee_cancel_runs(
    label     text DEFAULT NULL,
    role      name DEFAULT NULL,
    OUT run_id    bigint,
    OUT kind      text,
    OUT cancelled boolean)
RETURNS SETOF record
LANGUAGE sql VOLATILE SET search_path = pg_catalog AS $$
    SELECT a.run_id, a.kind, @extschema@.parallel_guarantee_cancel(a.run_id)
      FROM @extschema@.parallel_guarantee_activity a
     WHERE a.database = pg_catalog.current_database()
       AND ($1 IS NULL OR a.label OPERATOR(pg_catalog.=) $1)
       AND ($2 IS NULL OR a.role OPERATOR(pg_catalog.=) $2)
       AND pg_catalog.pg_has_role(a.role, 'USAGE')
     ORDER BY a.run_id
$$;
