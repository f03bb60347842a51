-- parallel_guarantee 1.1.0 -> 1.2.0: the history keeps every parallel pass of a VACUUM.
--  * parallel_guarantee_attempt_history gets pass_workers_planned and pass_workers_launched:
--    for an attempt that ran a VACUUM, each parallel index pass's planned and launched
--    workers, in the order of the passes; NULL for every other statement.
--  * parallel_guarantee_attempts shows them (two columns added at its end).
-- Install the 1.2.0 library first (the 1.1.0 SQL keeps working with it, without the columns).
\echo Use "ALTER EXTENSION parallel_guarantee UPDATE TO '1.2.0'" to load this file. \quit

ALTER TABLE parallel_guarantee.parallel_guarantee_attempt_history
  ADD COLUMN pass_workers_planned integer[],
  ADD COLUMN pass_workers_launched integer[];

CREATE OR REPLACE VIEW parallel_guarantee.parallel_guarantee_attempts WITH (security_barrier) AS
SELECT a.run_id, a.attempt, a.started_at, a.waited_ms * interval '1 millisecond' AS waited,
       a.duration_us * interval '1 microsecond' AS duration,
       a.workers_planned, a.workers_launched, a.outcome,
       a.pass_workers_planned, a.pass_workers_launched
  FROM parallel_guarantee.parallel_guarantee_attempt_history a
  JOIN parallel_guarantee.parallel_guarantee_run_history h USING (run_id)
 WHERE parallel_guarantee.parallel_guarantee_visible(h.role_oid);
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_attempts.pass_workers_planned IS
'A VACUUM''s attempt: the workers each parallel index pass planned, in the order of the passes (at most 64 kept: the first 63 and the last); NULL for other statements.';
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_attempts.pass_workers_launched IS
'A VACUUM''s attempt: the workers each parallel index pass launched, in the order of the passes (at most 64 kept: the first 63 and the last); NULL for other statements.';
