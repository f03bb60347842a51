-- parallel_guarantee 0.2.0 -> 0.3.0: chunked batch steps (run_in_chunks, resume_chunks).
\echo Use "ALTER EXTENSION parallel_guarantee UPDATE TO '0.3.0'" to load this file. \quit

-- One row per chunked run, written by its workers in transactions of their own.
CREATE TABLE @extschema@.parallel_guarantee_chunk_run_history (
    run_id         bigint PRIMARY KEY,
    label          text,
    role_oid       oid NOT NULL,
    role_name      text,
    database_name  text,
    keys_query     text NOT NULL,
    action         text NOT NULL,
    chunk_size     integer NOT NULL,
    max_retries    integer NOT NULL,
    max_skipped    integer NOT NULL,
    workers        integer NOT NULL,
    key_type       oid,
    total_keys     bigint,
    total_chunks   integer,
    chunks_skipped integer NOT NULL DEFAULT 0,
    status         text NOT NULL,    -- running, done, failed, cancelled, error, lost
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    sqlstate       text,
    message        text
);

-- The fixed key set, cut into chunks; a chunk is done exactly when its action committed.
-- The keys are kept in the array's binary form (array_send), which no session setting
-- (DateStyle, extra_float_digits, ...) can change; first and last key are for reading.
CREATE TABLE @extschema@.parallel_guarantee_chunk_history (
    run_id      bigint NOT NULL
                REFERENCES @extschema@.parallel_guarantee_chunk_run_history ON DELETE CASCADE,
    chunk_no    integer NOT NULL,
    keys        bytea NOT NULL,
    first_key   text,
    last_key    text,
    key_count   integer NOT NULL,
    state       text NOT NULL,       -- pending, running, done, skipped, failed
    attempts    integer NOT NULL DEFAULT 0,
    rows        bigint,
    sqlstate    text,
    error       text,
    worker_pid  integer,
    started_at  timestamptz,
    finished_at timestamptz,
    PRIMARY KEY (run_id, chunk_no)
);
CREATE INDEX ON @extschema@.parallel_guarantee_chunk_history (run_id, state, chunk_no);

REVOKE ALL ON @extschema@.parallel_guarantee_chunk_run_history,
              @extschema@.parallel_guarantee_chunk_history FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.parallel_guarantee_chunk_run_history', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.parallel_guarantee_chunk_history', '');

CREATE TYPE @extschema@.parallel_guarantee_chunk_result AS (
    run_id         bigint,
    status         text,      -- done | failed | cancelled
    chunks_total   integer,
    chunks_done    integer,
    chunks_skipped integer,
    rows_changed   bigint,
    elapsed        interval
);

CREATE FUNCTION @extschema@.run_in_chunks(
    keys         text,
    action       text,
    chunk_size   integer DEFAULT 1000,
    max_retries  integer DEFAULT 2,
    max_skipped  integer DEFAULT 0,
    workers      integer DEFAULT 1,
    notice_every integer DEFAULT 10,
    label        text    DEFAULT NULL)
RETURNS @extschema@.parallel_guarantee_chunk_result
AS 'MODULE_PATHNAME', 'run_in_chunks'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.resume_chunks(run_id bigint, notice_every integer DEFAULT 10)
RETURNS @extschema@.parallel_guarantee_chunk_result
AS 'MODULE_PATHNAME', 'resume_chunks'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.submit_chunks(
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

REVOKE ALL ON FUNCTION @extschema@.run_in_chunks(text, text, integer, integer, integer, integer, integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.submit_chunks(text, text, integer, integer, integer, integer, integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.resume_chunks(bigint, integer) FROM PUBLIC;

CREATE VIEW @extschema@.parallel_guarantee_chunk_runs WITH (security_barrier) AS
SELECT r.run_id, r.label, r.role_name AS role, r.database_name AS database, r.status,
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

CREATE VIEW @extschema@.parallel_guarantee_chunks WITH (security_barrier) AS
SELECT c.run_id, c.chunk_no, c.state, c.first_key, c.last_key, c.key_count, c.attempts,
       c.rows, c.sqlstate, c.error,
       c.worker_pid, c.started_at, c.finished_at
  FROM @extschema@.parallel_guarantee_chunk_history c
  JOIN @extschema@.parallel_guarantee_chunk_run_history r USING (run_id)
 WHERE @extschema@.parallel_guarantee_visible(r.role_oid);

GRANT SELECT ON @extschema@.parallel_guarantee_chunk_runs, @extschema@.parallel_guarantee_chunks TO PUBLIC;

-- The status, wait and cancel surface of submitted chunked runs.
CREATE FUNCTION @extschema@.parallel_guarantee_chunk_status(run_id bigint)
RETURNS @extschema@.parallel_guarantee_chunk_runs
LANGUAGE plpgsql STABLE SET search_path = pg_catalog AS $$
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
    IF r.status = 'running' AND NOT EXISTS (
           SELECT 1 FROM @extschema@.parallel_guarantee_activity() a
            WHERE a.run_id = $1
              AND a.database_oid = (SELECT d.oid FROM pg_catalog.pg_database d
                                     WHERE d.datname = pg_catalog.current_database())) THEN
        r.status := 'lost';
    END IF;
    RETURN r;
END $$;

CREATE FUNCTION @extschema@.parallel_guarantee_chunk_wait(run_id bigint, timeout interval DEFAULT NULL)
RETURNS @extschema@.parallel_guarantee_chunk_runs
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog AS $$
BEGIN
    PERFORM @extschema@.parallel_guarantee_chunk_status(run_id);
    PERFORM @extschema@.parallel_guarantee_wait_for(run_id, timeout);
    RETURN @extschema@.parallel_guarantee_chunk_status(run_id);
END $$;

CREATE FUNCTION @extschema@.parallel_guarantee_chunk_cancel(run_id bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog AS $$
DECLARE
    r @extschema@.parallel_guarantee_chunk_runs;
BEGIN
    r := @extschema@.parallel_guarantee_chunk_status(run_id);
    IF @extschema@.parallel_guarantee_cancel_run(run_id) THEN
        RETURN true;
    END IF;
    RAISE NOTICE 'chunked run % is not in progress: its status is %', run_id, r.status;
    RETURN false;
END $$;
