-- parallel_guarantee 0.1.0 -> 0.2.0: history of runs and attempts, labels summary,
-- asynchronous runs (submit, status, wait, cancel).
\echo Use "ALTER EXTENSION parallel_guarantee UPDATE TO '0.2.0'" to load this file. \quit

-- History, written by the runs' workers in transactions of their own.  Not readable
-- directly: the views below show each role its own runs.
CREATE TABLE @extschema@.parallel_guarantee_run_history (
    run_id           bigint PRIMARY KEY,
    label            text,
    role_oid         oid NOT NULL,
    role_name        text,
    database_name    text,
    statement        text NOT NULL,
    cleanup          text,
    target_workers   integer NOT NULL,
    min_workers      integer NOT NULL,
    max_attempts     integer NOT NULL,
    retry_delay_ms   bigint NOT NULL,
    force_workers    boolean NOT NULL,
    wait_for_slots   boolean NOT NULL,
    max_wait_ms      bigint NOT NULL,
    priority         integer NOT NULL,
    async            boolean NOT NULL,
    caller_pid       integer,
    worker_pid       integer,
    started_at       timestamptz NOT NULL,
    finished_at      timestamptz,
    status           text NOT NULL,   -- running, target_met, degraded, failed, error, cancelled, lost
    rows             bigint,
    workers_planned  integer,
    workers_launched integer,
    attempts         integer,
    sqlstate         text,
    message          text
);
CREATE INDEX ON @extschema@.parallel_guarantee_run_history (finished_at);
CREATE INDEX ON @extschema@.parallel_guarantee_run_history (label);

CREATE TABLE @extschema@.parallel_guarantee_attempt_history (
    run_id           bigint NOT NULL
                     REFERENCES @extschema@.parallel_guarantee_run_history ON DELETE CASCADE,
    attempt          integer NOT NULL,
    started_at       timestamptz NOT NULL,
    waited_ms        bigint NOT NULL,   -- waiting for free workers before the attempt
    duration_us      bigint NOT NULL,   -- start of the attempt to its end or abandonment
    workers_planned  integer,
    workers_launched integer,
    outcome          text NOT NULL,
    PRIMARY KEY (run_id, attempt)
);

REVOKE ALL ON @extschema@.parallel_guarantee_run_history, @extschema@.parallel_guarantee_attempt_history FROM PUBLIC;

-- pg_dump keeps the history.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.parallel_guarantee_run_history', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.parallel_guarantee_attempt_history', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.parallel_guarantee_run_id_seq', '');

-- Who may see a run: its role and the roles that have its privileges (superusers too),
-- and members of pg_read_all_stats.
CREATE FUNCTION @extschema@.parallel_guarantee_visible(role_oid oid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog AS $$
    SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid = role_oid)
                THEN pg_catalog.pg_has_role(role_oid, 'USAGE') ELSE false END
        OR pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')
$$;

CREATE VIEW @extschema@.parallel_guarantee_runs WITH (security_barrier) AS
SELECT h.run_id, h.label, h.role_name AS role, h.database_name AS database, h.status,
       h.rows, h.workers_planned, h.workers_launched, h.attempts,
       h.started_at, h.finished_at, h.finished_at - h.started_at AS elapsed,
       h.sqlstate, h.message, h.statement, h.cleanup,
       h.target_workers, h.min_workers, h.max_attempts,
       h.retry_delay_ms * interval '1 millisecond' AS retry_delay, h.force_workers,
       h.wait_for_slots, h.max_wait_ms * interval '1 millisecond' AS max_wait, h.priority,
       h.async, h.caller_pid, h.worker_pid
  FROM @extschema@.parallel_guarantee_run_history h
 WHERE @extschema@.parallel_guarantee_visible(h.role_oid);

CREATE VIEW @extschema@.parallel_guarantee_attempts WITH (security_barrier) AS
SELECT a.run_id, a.attempt, a.started_at, a.waited_ms * interval '1 millisecond' AS waited,
       a.duration_us * interval '1 microsecond' AS duration,
       a.workers_planned, a.workers_launched, a.outcome
  FROM @extschema@.parallel_guarantee_attempt_history a
  JOIN @extschema@.parallel_guarantee_run_history h USING (run_id)
 WHERE @extschema@.parallel_guarantee_visible(h.role_oid);

-- Per label: is the nightly step starved?
CREATE VIEW @extschema@.parallel_guarantee_label_summary AS
SELECT r.label, count(*) AS runs,
       count(*) FILTER (WHERE r.status = 'target_met') AS target_met,
       count(*) FILTER (WHERE r.status = 'degraded') AS degraded,
       count(*) FILTER (WHERE r.status = 'failed') AS failed,
       count(*) FILTER (WHERE r.status IN ('error', 'cancelled', 'lost')) AS errors,
       round(avg(r.attempts), 2) AS avg_attempts,
       avg(w.waited) AS avg_wait,
       max(r.started_at) AS last_started
  FROM @extschema@.parallel_guarantee_runs r
  LEFT JOIN LATERAL (SELECT sum(a.waited) AS waited FROM @extschema@.parallel_guarantee_attempts a
                      WHERE a.run_id = r.run_id) w ON true
 GROUP BY r.label;

GRANT SELECT ON @extschema@.parallel_guarantee_runs, @extschema@.parallel_guarantee_attempts,
                @extschema@.parallel_guarantee_label_summary TO PUBLIC;

-- Asynchronous runs.
CREATE FUNCTION @extschema@.submit_parallel_guarantee(
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
    label            text     DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'submit_parallel_guarantee'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION @extschema@.submit_parallel_guarantee(text, text, integer, integer, integer, interval, boolean, boolean, interval, integer, text) FROM PUBLIC;

CREATE FUNCTION @extschema@.parallel_guarantee_wait_for(run_id bigint, timeout interval)
RETURNS boolean
AS 'MODULE_PATHNAME', 'parallel_guarantee_wait_for'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.parallel_guarantee_cancel_run(run_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'parallel_guarantee_cancel_run'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

-- The run's row from the history; an error if there is none the caller may see.
CREATE FUNCTION @extschema@.parallel_guarantee_status(run_id bigint)
RETURNS @extschema@.parallel_guarantee_runs
LANGUAGE plpgsql STABLE SET search_path = pg_catalog AS $$
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
    IF r.status = 'running' AND NOT EXISTS (
           SELECT 1 FROM @extschema@.parallel_guarantee_activity() a
            WHERE a.run_id = $1
              AND a.database_oid = (SELECT d.oid FROM pg_catalog.pg_database d
                                     WHERE d.datname = pg_catalog.current_database())) THEN
        r.status := 'lost';
    END IF;
    RETURN r;
END $$;

-- Waits until the run has finished (or the timeout passed), then returns its row.
CREATE FUNCTION @extschema@.parallel_guarantee_wait(run_id bigint, timeout interval DEFAULT NULL)
RETURNS @extschema@.parallel_guarantee_runs
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog AS $$
BEGIN
    PERFORM @extschema@.parallel_guarantee_status(run_id);
    PERFORM @extschema@.parallel_guarantee_wait_for(run_id, timeout);
    RETURN @extschema@.parallel_guarantee_status(run_id);
END $$;

-- Asks a run in progress to stop (its statement is cancelled and its cleanup runs).
CREATE FUNCTION @extschema@.parallel_guarantee_cancel(run_id bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog AS $$
DECLARE
    r @extschema@.parallel_guarantee_runs;
BEGIN
    r := @extschema@.parallel_guarantee_status(run_id);
    IF @extschema@.parallel_guarantee_cancel_run(run_id) THEN
        RETURN true;
    END IF;
    RAISE NOTICE 'guaranteed run % is not in progress: its status is %', run_id, r.status;
    RETURN false;
END $$;
