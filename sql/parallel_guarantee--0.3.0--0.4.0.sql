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
