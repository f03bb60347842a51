-- parallel_guarantee 1.0.0 -> 1.1.0: index builds and VACUUM get the guarantee.
--  * run_with_parallel_guarantee and submit_parallel_guarantee take CREATE INDEX,
--    REINDEX INDEX | TABLE and VACUUM of named tables (the library does the work; no
--    function changes its signature).
--  * The comments say that workers planned and launched count an index build's launches
--    as they count a Gather's.
-- Install the 1.1.0 library first (the 1.0.0 SQL keeps working with it).
\echo Use "ALTER EXTENSION parallel_guarantee UPDATE TO '1.1.0'" to load this file. \quit

COMMENT ON FUNCTION parallel_guarantee.run_with_parallel_guarantee(text, text, integer, integer, integer, interval, boolean, boolean, boolean, interval, integer, text, text[]) IS
'Runs a statement (a query, CREATE TABLE AS, a DO block, an index build: CREATE INDEX, REINDEX INDEX or TABLE, or a VACUUM of named tables) in a background worker as the caller, with target_workers parallel workers: waits for free workers, abandons and retries short attempts (and statement errors whose SQLSTATE retry_sqlstates lists), running cleanup between them, and returns how it ended.';
COMMENT ON FUNCTION parallel_guarantee.submit_parallel_guarantee(text, text, integer, integer, integer, interval, boolean, boolean, interval, integer, text, text[]) IS
'Starts a guaranteed run (a query, CREATE TABLE AS, a DO block, an index build or a VACUUM) that goes on without the caller once the calling transaction commits; returns its run id (see parallel_guarantee_wait, parallel_guarantee_status).';

COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_result.workers_planned IS 'Fewest workers any Gather (or index build or VACUUM pass) planned in the final attempt.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_result.workers_launched IS 'Fewest workers any Gather (or index build or VACUUM pass) launched in the final attempt.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_activity.workers_planned IS 'Workers planned by the current attempt''s Gathers, index builds or VACUUM passes (fewest).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_activity.workers_launched IS 'Workers launched by the current attempt''s Gathers, index builds or VACUUM passes (fewest).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.workers_planned IS 'Fewest workers any Gather (or index build or VACUUM pass) planned in the final attempt (guaranteed).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_runs.workers_launched IS 'Fewest workers any Gather (or index build or VACUUM pass) launched in the final attempt (guaranteed).';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_attempts.workers_planned IS 'Fewest workers any Gather (or index build or VACUUM pass) of the attempt planned.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_attempts.workers_launched IS 'Fewest workers any Gather (or index build or VACUUM pass) of the attempt launched.';
COMMENT ON VIEW parallel_guarantee.parallel_guarantee_downgrades IS
'Every Gather and Gather Merge launch in the server (guaranteed run or not), and every index build of a guaranteed run, since the last reset, per database, role and query id, by how far short of its plan it fell. Rows of the roles you may see (yours, your roles'', all with pg_read_all_stats).';
