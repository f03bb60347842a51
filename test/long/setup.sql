-- The long tier's database (test/long/run.sh): a small table, the outcome tables, the
-- wrappers that pgbench calls (they raise nothing, so that no client is aborted), and an
-- observer on the history table.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION parallel_guarantee;
-- The README's way: the extension's schema on the database's search_path.
ALTER DATABASE long SET search_path = "$user", public, parallel_guarantee;
SET search_path = "$user", public, parallel_guarantee;

-- Small, so that a call is fast; it plans 4 workers.
CREATE TABLE small (id int, pad text) WITH (parallel_workers = 4);
INSERT INTO small SELECT g, 'x' FROM generate_series(1, 20000) g;
VACUUM ANALYZE small;

-- One row per synchronous call: the status, or the SQLSTATE of the error; the run id when
-- there was a run; how long the call took.
CREATE TABLE outcomes (
    n        bigserial PRIMARY KEY,
    label    text NOT NULL,
    outcome  text NOT NULL,
    run_id   bigint,
    kind     int, target int, min_workers int, max_attempts int, delay_ms int, wait int, mpw int,
    launched int, attempts int,
    ms       numeric,
    message  text,
    at       timestamptz DEFAULT clock_timestamp());

-- A synchronous call.  kind 1: CREATE TABLE AS with a cleanup (the table is dropped after a
-- success); kind 4: a slow SELECT (seconds: pg_sleep per row); other kinds: a fast SELECT.
-- Catches everything, query_canceled included (WHEN OTHERS does not), wherever the
-- caller's statement_timeout fires: before the call, in it, or while recording it (a
-- statement_timeout fires at most once per statement, so the outer handler is safe).
CREATE FUNCTION load_call(p_kind int, p_target int, p_min int, p_attempts int, p_delay_ms int,
                          p_wait int, p_mpw int, p_label text)
RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    r    parallel_guarantee_result;
    st   text;
    msg  text;
    ctx  text;
    rid  bigint;
    t0   timestamptz;
    tbl  text;
    stmt text;
    cln  text;
BEGIN
    BEGIN
        t0 := clock_timestamp();
        tbl := 'long_out_' || pg_backend_pid();
        stmt := 'SELECT count(*) FROM small';
        IF p_kind = 1 THEN
            stmt := format('CREATE TABLE %I AS SELECT id %% 10 AS k, count(*) AS n FROM small GROUP BY 1', tbl);
            cln := format('DROP TABLE IF EXISTS %I', tbl);
        ELSIF p_kind = 4 THEN
            stmt := 'SELECT count(*) FROM small WHERE pg_sleep(0.0005) IS NOT NULL';
            cln := 'SELECT 1';
        END IF;
        BEGIN
            SELECT * INTO r FROM run_with_parallel_guarantee(stmt, cleanup => cln,
                target_workers => p_target, min_workers => p_min, max_attempts => p_attempts,
                retry_delay => make_interval(secs => p_delay_ms / 1000.0),
                wait_for_slots => p_wait = 1, max_wait => '0.2 s', label => p_label);
            rid := r.run_id;
            INSERT INTO outcomes (label, outcome, run_id, kind, target, min_workers, max_attempts, delay_ms, wait, mpw, launched, attempts, ms)
            VALUES (p_label, r.status, r.run_id, p_kind, p_target, p_min, p_attempts, p_delay_ms, p_wait, p_mpw, r.workers_launched, r.attempts,
                    extract(epoch FROM clock_timestamp() - t0) * 1000);
            IF p_kind = 1 THEN EXECUTE cln; END IF;
            RETURN r.status;
        EXCEPTION WHEN OTHERS OR query_canceled THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, ctx = PG_EXCEPTION_CONTEXT;
        END;
        INSERT INTO outcomes (label, outcome, run_id, kind, target, min_workers, max_attempts, delay_ms, wait, mpw, ms, message)
        VALUES (p_label, st, coalesce(rid, substring(ctx from 'parallel_guarantee worker, run ([0-9]+)')::bigint),
                p_kind, p_target, p_min, p_attempts, p_delay_ms, p_wait, p_mpw,
                extract(epoch FROM clock_timestamp() - t0) * 1000, msg);
        IF p_kind = 1 THEN EXECUTE cln; END IF;
        RETURN st;
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
        INSERT INTO outcomes (label, outcome, run_id, kind, message)
        VALUES (p_label, coalesce(st, '57014'), coalesce(rid, substring(ctx from 'parallel_guarantee worker, run ([0-9]+)')::bigint),
                p_kind, 'outside the call: ' || msg);
        IF p_kind = 1 THEN EXECUTE format('DROP TABLE IF EXISTS %I', 'long_out_' || pg_backend_pid()); END IF;
        RETURN coalesce(st, '57014');
    END;
END $f$;

-- Asynchronous runs of the soak: what was submitted, cancelled, waited for.
CREATE SEQUENCE soak_table_seq;
CREATE TABLE async_runs (
    run_id       bigint PRIMARY KEY,
    kind         int NOT NULL,            -- 0 fast SELECT, 1 slow SELECT, 2 CREATE TABLE AS
    tbl          text,
    submitted_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    cancel_calls int NOT NULL DEFAULT 0,
    cancel_true  int NOT NULL DEFAULT 0);
CREATE INDEX ON async_runs (submitted_at);
CREATE TABLE soak_events (
    n       bigserial PRIMARY KEY,
    what    text NOT NULL,                -- submit, cancel, wait
    outcome text NOT NULL,                -- ok/true/false/a status, or an SQLSTATE
    run_id  bigint,
    message text,
    at      timestamptz DEFAULT clock_timestamp());

CREATE FUNCTION soak_submit(p_kind int, p_target int, p_min int, p_attempts int) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
    id   bigint;
    st   text;
    msg  text;
    tbl  text;
    stmt text := 'SELECT count(*) FROM small';
    cln  text;
BEGIN
    IF p_kind = 1 THEN
        stmt := 'SELECT count(*) FROM small WHERE pg_sleep(0.0005) IS NOT NULL';
        cln := 'SELECT 1';
    ELSIF p_kind = 2 THEN
        tbl := 'soak_out_' || nextval('soak_table_seq');
        stmt := format('CREATE TABLE %I AS SELECT id %% 10 AS k, count(*) AS n FROM small GROUP BY 1', tbl);
        cln := format('DROP TABLE IF EXISTS %I', tbl);
    END IF;
    BEGIN
        id := submit_parallel_guarantee(stmt, cleanup => cln, target_workers => p_target,
                  min_workers => p_min, max_attempts => p_attempts, retry_delay => '5 ms',
                  wait_for_slots => true, max_wait => '1 s', label => 'soak-async');
        INSERT INTO async_runs (run_id, kind, tbl) VALUES (id, p_kind, tbl);
        INSERT INTO soak_events (what, outcome, run_id) VALUES ('submit', 'ok', id);
        RETURN 'ok';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    END;
    INSERT INTO soak_events (what, outcome, message) VALUES ('submit', st, msg);
    RETURN st;
END $f$;

-- Cancels one of the runs submitted in the last 3 seconds (maybe finished already, maybe
-- cancelled by another session already).
CREATE FUNCTION soak_cancel() RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    id  bigint;
    ok  boolean;
    st  text;
    msg text;
BEGIN
    SELECT run_id INTO id FROM async_runs WHERE submitted_at > clock_timestamp() - interval '3 s'
     ORDER BY random() LIMIT 1;
    IF id IS NULL THEN RETURN 'none'; END IF;
    BEGIN
        SET LOCAL client_min_messages = warning;
        ok := parallel_guarantee_cancel(id);
        UPDATE async_runs SET cancel_calls = cancel_calls + 1, cancel_true = cancel_true + ok::int WHERE run_id = id;
        INSERT INTO soak_events (what, outcome, run_id) VALUES ('cancel', ok::text, id);
        RETURN ok::text;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    END;
    INSERT INTO soak_events (what, outcome, run_id, message) VALUES ('cancel', st, id, msg);
    RETURN st;
END $f$;

-- Waits up to 50 ms for one of the runs submitted in the last 3 seconds.
CREATE FUNCTION soak_wait() RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    id  bigint;
    s   text;
    st  text;
    msg text;
BEGIN
    SELECT run_id INTO id FROM async_runs WHERE submitted_at > clock_timestamp() - interval '3 s'
     ORDER BY random() LIMIT 1;
    IF id IS NULL THEN RETURN 'none'; END IF;
    BEGIN
        SELECT status INTO s FROM parallel_guarantee_wait(id, '50 ms');
        INSERT INTO soak_events (what, outcome, run_id) VALUES ('wait', s, id);
        RETURN s;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    END;
    INSERT INTO soak_events (what, outcome, run_id, message) VALUES ('wait', st, id, msg);
    RETURN st;
END $f$;

-- Observer (test instrumentation, not part of the extension): every time a run's history
-- row goes from 'running' to 'lost', note it.  A run noted here that later finished with
-- another status was alive when it was marked lost.
CREATE TABLE lost_marks (run_id bigint, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION public.note_lost() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO public.lost_marks (run_id) VALUES (NEW.run_id); RETURN NULL; END$$;
CREATE TRIGGER note_lost AFTER UPDATE ON parallel_guarantee_run_history FOR EACH ROW
  WHEN (OLD.status = 'running' AND NEW.status = 'lost') EXECUTE FUNCTION public.note_lost();

-- The same function measures the backend's memory every time, so its compiled code and
-- plan count in every figure: total bytes of all contexts, and bytes used in
-- TopMemoryContext (where what outlives a transaction lands).
CREATE FUNCTION backend_memory() RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
    RETURN (SELECT sum(total_bytes) || ' ' ||
                   (SELECT used_bytes FROM pg_backend_memory_contexts WHERE name = 'TopMemoryContext')
              FROM pg_backend_memory_contexts);
END $f$;

-- Figures for the final table.
CREATE TABLE mem_figures (n serial, loop text, calls int, total_before bigint, total_after bigint,
                          top_before bigint, top_after bigint, seconds numeric);
CREATE TABLE phase_figures (label text PRIMARY KEY, description text, seconds numeric, ord int);
