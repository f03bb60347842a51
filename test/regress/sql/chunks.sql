-- Chunked batch steps: run_in_chunks and resume_chunks on the seed's pass-expiry case.
-- 100,000 generated passes; the action expires the IN_PROGRESS passes that ended or have
-- nothing left.  A BEFORE UPDATE trigger counts every change of a row (touched), so a row
-- changed twice, or a change that should have rolled back, shows.
-- Run ids are numbered from 601 in this file, whatever ran before it.
DO $$ BEGIN PERFORM setval('parallel_guarantee_run_id_seq', 601, false); END $$;
-- The test instance makes even small scans parallel; chunk actions need no parallel plans
-- (the workers take the caller's settings).
SET max_parallel_workers_per_gather = 0;

CREATE TABLE passes (
    id          bigint PRIMARY KEY,
    status      text NOT NULL,
    ends_at     timestamptz NOT NULL,
    remaining   integer NOT NULL,
    orig_status text NOT NULL,              -- the status before any run, to see collateral changes
    touched     integer NOT NULL DEFAULT 0  -- changes of the row, counted by ck_count_change
);
CREATE FUNCTION ck_count_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.touched := OLD.touched + 1;
  RETURN NEW;
END $$;
CREATE TRIGGER ck_count_change BEFORE UPDATE ON passes FOR EACH ROW EXECUTE FUNCTION ck_count_change();

-- The matching set as it was before the run.
CREATE TABLE ck_expected (id bigint PRIMARY KEY);

-- Fresh data: a third already expired, 40 % ended, every 7th with nothing left: 32,382
-- matching passes, 33 chunks of 1000 (the last one 382).
CREATE FUNCTION ck_reset() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE passes, ck_expected;
  INSERT INTO passes (id, status, ends_at, remaining, orig_status)
  SELECT g, s, CASE WHEN g % 5 < 2 THEN timestamptz '2020-01-01' + g * interval '1 minute'
                    ELSE timestamptz '2999-01-01' + g * interval '1 minute' END,
         CASE WHEN g % 7 = 0 THEN 0 ELSE 1 + g % 30 END, s
    FROM generate_series(1, 100000) g,
         LATERAL (SELECT CASE WHEN g % 3 = 0 THEN 'EXPIRED' ELSE 'IN_PROGRESS' END AS s) x;
  INSERT INTO ck_expected
  SELECT id FROM passes WHERE status = 'IN_PROGRESS' AND (ends_at < now() OR remaining = 0);
  ANALYZE passes;
  RETURN (SELECT count(*) FROM ck_expected);
END $$;

-- The verdict on the passes: the expected rows expired exactly once, nothing else touched.
CREATE VIEW ck_verdict AS
SELECT count(*) FILTER (WHERE e.id IS NOT NULL AND p.status = 'EXPIRED' AND p.touched = 1) AS expired_once,
       count(*) FILTER (WHERE e.id IS NOT NULL AND NOT (p.status = 'EXPIRED' AND p.touched = 1)) AS not_expired,
       count(*) FILTER (WHERE e.id IS NULL AND (p.touched <> 0 OR p.status <> p.orig_status)) AS others_changed,
       count(*) FILTER (WHERE p.touched > 1) AS changed_twice
  FROM passes p LEFT JOIN ck_expected e USING (id);

-- Per run: the chunks by state, their attempts, rows and keys.
CREATE VIEW ck_chunk_summary AS
SELECT run_id, state, count(*) AS chunks, min(chunk_no) AS first_chunk, max(chunk_no) AS last_chunk,
       min(attempts) AS min_attempts, max(attempts) AS max_attempts, sum(key_count) AS keys,
       sum(rows) AS rows
  FROM parallel_guarantee_chunks GROUP BY run_id, state;

-- Errors as text: SQLSTATE and message; ck_try_full adds the detail and the hint.
CREATE FUNCTION ck_try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN sqlstate || ': ' || sqlerrm;
END $$;

CREATE FUNCTION ck_try_full(stmt text, OUT code text, OUT message text, OUT detail text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  code := '00000';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                          detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
END $$;

\set keys 'SELECT id FROM passes WHERE status = ''IN_PROGRESS'' AND (ends_at < now() OR remaining = 0) ORDER BY id'
\set action 'UPDATE passes SET status = ''EXPIRED'' WHERE id = ANY ($1)'

-- 1. The seed's case, one worker.  NOTICEs every 10 chunks (their text is fixed with one worker).
SELECT ck_reset() AS matching;
SELECT run_id, status, chunks_total, chunks_done, chunks_skipped, rows_changed
  FROM run_in_chunks(:'keys', :'action', chunk_size => 1000);
SELECT * FROM ck_verdict;
SELECT state, chunks, first_chunk, last_chunk, min_attempts, max_attempts, keys, rows
  FROM ck_chunk_summary WHERE run_id = 601;
-- Chunks hold the keys in the query's order, 1000 each (first and last key of each chunk).
SELECT bool_and(c.first_key::bigint = e.first_id AND c.last_key::bigint = e.last_id) AS chunk_keys_in_order
  FROM parallel_guarantee_chunks c
  JOIN (SELECT (n - 1) / 1000 + 1 AS chunk_no, min(id) AS first_id, max(id) AS last_id
          FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM ck_expected) x GROUP BY 1) e
    USING (chunk_no)
 WHERE c.run_id = 601;
SELECT run_id, label, status, keys_total, chunks_total, chunks_done, chunks_skipped, rows_changed,
       sqlstate, message, chunk_size, max_retries, max_skipped, workers, key_type,
       finished_at >= started_at AS finished
  FROM parallel_guarantee_chunk_runs WHERE run_id = 601;

SET client_min_messages = warning;

-- 2. Bad input: an error, and nothing changed, after each.
SELECT ck_reset() AS matching;
SELECT ck_try($$SELECT run_in_chunks('SELECT id, status FROM passes', $a$UPDATE passes SET status = 'EXPIRED' WHERE id = ANY ($1)$a$)$$);
SELECT ck_try($$SELECT run_in_chunks($k$SELECT id FROM passes WHERE status = 'IN_PROGRESS' AND (ends_at < now() OR remaining = 0)
                                       UNION ALL SELECT max(id) FROM ck_expected$k$,
                                     $a$UPDATE passes SET status = 'EXPIRED' WHERE id = ANY ($1)$a$)$$);
SELECT ck_try($$SELECT run_in_chunks($k$SELECT id FROM passes WHERE status = 'IN_PROGRESS' AND (ends_at < now() OR remaining = 0)
                                       UNION ALL SELECT NULL::bigint$k$,
                                     $a$UPDATE passes SET status = 'EXPIRED' WHERE id = ANY ($1)$a$)$$);
SELECT ck_try($$SELECT run_in_chunks('SELECT id FROM passes', $a$UPDATE passes SET status = 'EXPIRED' WHERE status = 'IN_PROGRESS'$a$)$$);
SELECT ck_try($$SELECT run_in_chunks('SELECT id FROM passes', $a$UPDATE passes SET status = 'EXPIRED' WHERE id = ANY ($1)$a$, chunk_size => 0)$$);
SELECT ck_try($$SELECT run_in_chunks('SELECT id FROM passes', $a$UPDATE passes SET status = 'EXPIRED' WHERE id = ANY ($1)$a$, chunk_size => -5)$$);
SELECT ck_try($$SELECT run_in_chunks(NULL, $a$UPDATE passes SET status = 'EXPIRED' WHERE id = ANY ($1)$a$)$$);
SELECT ck_try($$SELECT run_in_chunks('SELECT id FROM passes', NULL)$$);
SELECT ck_try($$SELECT run_in_chunks('SELECT id FROM passes', $a$UPDATE passes SET status = 'EXPIRED' WHERE id = ANY ($1)$a$, chunk_size => NULL)$$);
SELECT ck_try($$SELECT run_in_chunks('SELECT id FROM passes', $a$UPDATE passes SET status = 'EXPIRED' WHERE id = ANY ($1)$a$, max_retries => NULL)$$);
SELECT ck_try($$SELECT run_in_chunks('SELECT id FROM passes', $a$UPDATE passes SET status = 'EXPIRED' WHERE id = ANY ($1)$a$, max_retries => -1)$$);
SELECT ck_try($$SELECT run_in_chunks('SELECT id FROM passes', $a$UPDATE passes SET status = 'EXPIRED' WHERE id = ANY ($1)$a$, max_skipped => -1)$$);
SELECT ck_try($$SELECT run_in_chunks('SELECT id FROM passes', $a$UPDATE passes SET status = 'EXPIRED' WHERE id = ANY ($1)$a$, workers => 0)$$);
SELECT ck_try($$SELECT run_in_chunks('SELECT id FROM passes', $a$UPDATE passes SET status = 'EXPIRED' WHERE id = ANY ($1)$a$, notice_every => -1)$$);
SELECT ck_try($$SELECT run_in_chunks($k$UPDATE passes SET status = 'EXPIRED' RETURNING id$k$, $a$UPDATE passes SET status = 'EXPIRED' WHERE id = ANY ($1)$a$)$$);
SELECT ck_try($$SELECT run_in_chunks('SELECT id FROM no_such_table', $a$UPDATE passes SET status = 'EXPIRED' WHERE id = ANY ($1)$a$)$$);
SELECT ck_try($$SELECT resume_chunks(NULL)$$);
SELECT ck_try($$SELECT resume_chunks(999999)$$);
SELECT * FROM ck_verdict;
SELECT count(*) AS passes_touched FROM passes WHERE touched <> 0 OR status <> orig_status;
-- The errors the worker saw are in the history, with no chunk stored.
SELECT r.run_id, r.status, r.sqlstate, r.message, r.keys_total, r.chunks_total,
       (SELECT count(*) FROM parallel_guarantee_chunks c WHERE c.run_id = r.run_id) AS chunks_stored
  FROM parallel_guarantee_chunk_runs r WHERE r.run_id > 601 ORDER BY r.run_id;

-- 3. A trigger raises on one chosen key, the 4,500th matching one (in chunk 5).
-- The key is written into the function's body, so the check costs nothing per row.
CREATE FUNCTION ck_refuse_key(key bigint) RETURNS bigint LANGUAGE plpgsql AS $f$
BEGIN
  EXECUTE format($b$CREATE OR REPLACE FUNCTION ck_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id = %s THEN
    RAISE EXCEPTION 'pass %% is locked by the billing system', NEW.id USING ERRCODE = 'UE001';
  END IF;
  RETURN NEW;
END $$$b$, key);
  RETURN key;
END $f$;
SELECT ck_reset() AS matching;
SELECT ck_refuse_key(id) AS refused_key FROM ck_expected ORDER BY id OFFSET 4499 LIMIT 1;
CREATE TRIGGER ck_refuse BEFORE UPDATE ON passes FOR EACH ROW EXECUTE FUNCTION ck_refuse();
SELECT setval('parallel_guarantee_run_id_seq', 611, false) IS NOT NULL AS numbered;

-- 3a. max_skipped => 1: chunk 5 is tried 3 times (max_retries 2), then skipped and recorded
-- with its error; every other chunk committed.
SELECT ck_reset() AS matching;
SELECT run_id, status, chunks_total, chunks_done, chunks_skipped, rows_changed
  FROM run_in_chunks(:'keys', :'action', chunk_size => 1000, max_retries => 2, max_skipped => 1);
SELECT * FROM ck_verdict;
SELECT state, chunks, first_chunk, last_chunk, min_attempts, max_attempts, keys, rows
  FROM ck_chunk_summary WHERE run_id = 611 ORDER BY first_chunk;
SELECT chunk_no, state, attempts, rows, sqlstate, message FROM parallel_guarantee_chunks
 WHERE run_id = 611 AND state <> 'done';
-- Exactly the skipped chunk's rows are left as they were.
SELECT count(*) AS left_alone, bool_and(p.status = 'IN_PROGRESS' AND p.touched = 0) AS untouched
  FROM passes p JOIN ck_expected e USING (id)
 WHERE e.id BETWEEN (SELECT first_key::bigint FROM parallel_guarantee_chunks WHERE run_id = 611 AND chunk_no = 5)
                AND (SELECT last_key::bigint FROM parallel_guarantee_chunks WHERE run_id = 611 AND chunk_no = 5);
SELECT status, chunks_done, chunks_skipped, rows_changed, sqlstate, message
  FROM parallel_guarantee_chunk_runs WHERE run_id = 611;

-- 3b. max_skipped 0: the call fails with the trigger's SQLSTATE after chunk 5's 2 attempts
-- (max_retries 1); chunks 1-4 stay committed, 6-33 never ran.
SELECT ck_reset() AS matching;
SELECT * FROM ck_try_full(format('SELECT run_in_chunks(%L, %L, max_retries => 1)', :'keys', :'action'));
SELECT * FROM ck_verdict;
SELECT state, chunks, first_chunk, last_chunk, min_attempts, max_attempts, keys, rows
  FROM ck_chunk_summary WHERE run_id = 612 ORDER BY first_chunk;
SELECT chunk_no, state, attempts, sqlstate, message FROM parallel_guarantee_chunks
 WHERE run_id = 612 AND state = 'failed';
SELECT status, chunks_done, chunks_skipped, rows_changed, sqlstate, message
  FROM parallel_guarantee_chunk_runs WHERE run_id = 612;
-- Exactly chunks 1-4 (the first 4000 matching passes) are expired.
SELECT bool_and((p.status = 'EXPIRED') = (e.n <= 4000)) AS first_4000_only
  FROM passes p JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM ck_expected) e USING (id);

-- Resumed while the cause is still there: chunk 5 fails again, with fresh attempts.
SELECT * FROM ck_try_full('SELECT resume_chunks(612)');
SELECT chunk_no, state, attempts, sqlstate FROM parallel_guarantee_chunks WHERE run_id = 612 AND state <> 'done'
 ORDER BY chunk_no LIMIT 2;
SELECT * FROM ck_verdict;
-- Resumed after the cause is gone: chunks done are not run again.
CREATE TABLE ck_before_resume AS
SELECT chunk_no, started_at, finished_at, worker_pid FROM parallel_guarantee_chunks WHERE run_id = 612 AND state = 'done';
DROP TRIGGER ck_refuse ON passes;
-- Its progress NOTICEs count the chunks done before it: the first, once this call has
-- committed chunk 5 (one chunk), says 5 of 33.
SET client_min_messages = notice;
SELECT run_id, status, chunks_total, chunks_done, chunks_skipped, rows_changed
  FROM resume_chunks(612, notice_every => 5);
SET client_min_messages = warning;
-- The end state equals an uninterrupted run.
SELECT * FROM ck_verdict;
SELECT state, chunks, first_chunk, last_chunk, min_attempts, max_attempts, keys, rows
  FROM ck_chunk_summary WHERE run_id = 612;
SELECT count(*) AS kept, bool_and(c.started_at = b.started_at AND c.finished_at = b.finished_at
                                  AND c.worker_pid = b.worker_pid) AS unchanged
  FROM ck_before_resume b JOIN parallel_guarantee_chunks c USING (chunk_no) WHERE c.run_id = 612;
SELECT status, keys_total, chunks_done, chunks_skipped, rows_changed, sqlstate, message
  FROM parallel_guarantee_chunk_runs WHERE run_id = 612;
-- Resuming a run that is done returns its row and says so; no worker takes the run up: no
-- chunk is tried again, the run's row is unchanged, and the call returns while this
-- transaction holds that row locked (a worker taking the run up would wait for it; the
-- statement_timeout bounds that wait, should it happen).
CREATE TABLE ck_chunks_before AS
SELECT chunk_no, attempts, started_at, finished_at FROM parallel_guarantee_chunks WHERE run_id = 612;
CREATE TABLE ck_run_before AS
SELECT status, started_at, finished_at FROM parallel_guarantee_chunk_runs WHERE run_id = 612;
SET client_min_messages = notice;
BEGIN;
SET LOCAL statement_timeout = '30 s';
SELECT run_id FROM parallel_guarantee_chunk_run_history WHERE run_id = 612 FOR UPDATE;
SELECT run_id, status, chunks_total, chunks_done, chunks_skipped, rows_changed FROM resume_chunks(612);
COMMIT;
SET client_min_messages = warning;
SELECT count(*) AS chunks, bool_and(c.attempts = b.attempts AND c.started_at = b.started_at
                                    AND c.finished_at = b.finished_at) AS chunks_unchanged
  FROM ck_chunks_before b JOIN parallel_guarantee_chunks c USING (chunk_no) WHERE c.run_id = 612;
SELECT r.status, r.started_at = b.started_at AND r.finished_at = b.finished_at AS run_row_unchanged
  FROM parallel_guarantee_chunk_runs r, ck_run_before b WHERE r.run_id = 612;
SELECT count(*) AS runs_in_progress FROM parallel_guarantee_activity;
SELECT * FROM ck_verdict;

-- 4. Two workers: every chunk claimed and done exactly once.  A statement trigger makes
-- each chunk take 40 ms, so that both workers get chunks.
SELECT setval('parallel_guarantee_run_id_seq', 631, false) IS NOT NULL AS numbered;
CREATE FUNCTION ck_slow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.04); RETURN NULL; END $$;
CREATE TRIGGER ck_slow AFTER UPDATE ON passes FOR EACH STATEMENT EXECUTE FUNCTION ck_slow();
SELECT ck_reset() AS matching;
SELECT run_id, status, chunks_total, chunks_done, chunks_skipped, rows_changed
  FROM run_in_chunks(:'keys', :'action', chunk_size => 1000, workers => 2);
SELECT * FROM ck_verdict;
SELECT state, chunks, first_chunk, last_chunk, min_attempts, max_attempts, keys, rows
  FROM ck_chunk_summary WHERE run_id = 631;
SELECT count(DISTINCT worker_pid) AS workers_used FROM parallel_guarantee_chunks WHERE run_id = 631;
SELECT status, workers, chunks_done, rows_changed FROM parallel_guarantee_chunk_runs WHERE run_id = 631;
-- Two workers and a chunk skipped: the same outcome as with one.
CREATE TRIGGER ck_refuse BEFORE UPDATE ON passes FOR EACH ROW EXECUTE FUNCTION ck_refuse();
SELECT ck_reset() AS matching;
SELECT run_id, status, chunks_total, chunks_done, chunks_skipped, rows_changed
  FROM run_in_chunks(:'keys', :'action', chunk_size => 1000, workers => 2, max_skipped => 1);
SELECT * FROM ck_verdict;
SELECT state, chunks, first_chunk, last_chunk, min_attempts, max_attempts, keys, rows
  FROM ck_chunk_summary WHERE run_id = 632 ORDER BY first_chunk;
DROP TRIGGER ck_refuse ON passes;
DROP TRIGGER ck_slow ON passes;

-- 5. Keys of type text (with characters an array literal must quote) and uuid.
SELECT setval('parallel_guarantee_run_id_seq', 641, false) IS NOT NULL AS numbered;
CREATE TABLE ck_codes (code text PRIMARY KEY, hits integer NOT NULL DEFAULT 0);
INSERT INTO ck_codes (code) VALUES ('plain'), ('with space'), ('comma,inside'), ('"quoted"'),
  ('{braces}'), ('back\slash'), ('NULL'), ('null'), (''), ('  padded  '), ('ünïcødé'), ('it''s'),
  ('semi;colon'), (E'new\nline');
INSERT INTO ck_codes (code) SELECT 'code-' || g FROM generate_series(1, 86) g;
SELECT run_id, status, chunks_total, chunks_done, rows_changed
  FROM run_in_chunks('SELECT code FROM ck_codes ORDER BY code COLLATE "C"',
                     'UPDATE ck_codes SET hits = hits + 1 WHERE code = ANY ($1)', chunk_size => 7);
SELECT count(*) AS codes, count(*) FILTER (WHERE hits = 1) AS hit_once FROM ck_codes;
SELECT key_type, keys_total, chunks_total FROM parallel_guarantee_chunk_runs WHERE run_id = 641;
SELECT chunk_no, first_key, last_key, key_count FROM parallel_guarantee_chunks
 WHERE run_id = 641 AND chunk_no <= 3 ORDER BY chunk_no;

CREATE TABLE ck_devices (id uuid PRIMARY KEY, seen integer NOT NULL DEFAULT 0, active boolean NOT NULL);
INSERT INTO ck_devices SELECT md5(g::text)::uuid, 0, g % 4 <> 0 FROM generate_series(1, 5000) g;
SELECT run_id, status, chunks_total, chunks_done, rows_changed
  FROM run_in_chunks('SELECT id FROM ck_devices WHERE active',
                     'UPDATE ck_devices SET seen = seen + 1 WHERE id = ANY ($1)', chunk_size => 1000);
SELECT active, seen, count(*) FROM ck_devices GROUP BY 1, 2 ORDER BY 1, 2;
SELECT key_type, keys_total, chunks_total FROM parallel_guarantee_chunk_runs WHERE run_id = 642;
-- $1 really is a uuid[] (not text[]): the action may use uuid functions on its elements.
CREATE TABLE ck_uuid_seen (id uuid, elem_type regtype);
SELECT run_id, status, rows_changed
  FROM run_in_chunks('SELECT id FROM ck_devices WHERE NOT active',
                     'INSERT INTO ck_uuid_seen SELECT k, pg_typeof(k) FROM unnest($1) k', chunk_size => 500);
SELECT elem_type, count(*) FROM ck_uuid_seen GROUP BY 1;

-- No keys at all: a run with no chunks.
SELECT run_id, status, chunks_total, chunks_done, rows_changed
  FROM run_in_chunks('SELECT id FROM passes WHERE false', :'action');

-- 6. A role without USAGE on the schema parallel_guarantee can neither start nor resume a
-- run nor read the views (42501); with it, it sees no run of another role.
CREATE ROLE ck_nobody;
GRANT SELECT, UPDATE ON passes TO ck_nobody;
SET ROLE ck_nobody;
SELECT ck_try($$SELECT parallel_guarantee.run_in_chunks('SELECT id FROM passes', 'UPDATE passes SET status = ''X'' WHERE id = ANY ($1)')$$);
SELECT ck_try($$SELECT parallel_guarantee.resume_chunks(612)$$);
SELECT ck_try($$SELECT count(*) FROM parallel_guarantee.parallel_guarantee_chunk_runs$$);
RESET ROLE;
GRANT USAGE ON SCHEMA parallel_guarantee TO ck_nobody;
SET ROLE ck_nobody;
SELECT ck_try($$SELECT resume_chunks(612)$$);
SELECT count(*) AS runs_visible FROM parallel_guarantee_chunk_runs;
RESET ROLE;
REVOKE USAGE ON SCHEMA parallel_guarantee FROM ck_nobody;
REVOKE ALL ON passes FROM ck_nobody;
DROP ROLE ck_nobody;

-- 7. A run recorded as running that no worker has is 'lost' in the view and the status
--    function (READ COMMITTED), and stays 'running' under REPEATABLE READ; nothing is
--    running now, so no chunk is shown running.
INSERT INTO parallel_guarantee_chunk_run_history
       (run_id, role_oid, role_name, keys_query, action, chunk_size, max_retries, max_skipped,
        workers, status, started_at)
VALUES (690, current_user::regrole, current_user, 'SELECT 1', 'SELECT $1', 1, 0, 0, 1, 'running', now());
SELECT status FROM parallel_guarantee_chunk_runs WHERE run_id = 690;
SELECT status FROM parallel_guarantee_chunk_status(690);
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT status FROM parallel_guarantee_chunk_runs WHERE run_id = 690;
COMMIT;
SELECT parallel_guarantee_lost(690, true) AS lost, parallel_guarantee_lost(690, false) AS lost_as_guaranteed,
       parallel_guarantee_lost(601, true) AS finished_run_lost, parallel_guarantee_lost(-1, true) AS unknown_lost;
SELECT count(*) AS chunks_running FROM parallel_guarantee_running_chunks();
DELETE FROM parallel_guarantee_chunk_run_history WHERE run_id = 690;

-- 8. Bounded memory: the coordinator holds one chunk's keys at a time and checks that the
--    keys are unique on a sorted copy that spills to disk past work_mem; a duplicate is
--    found however far apart the two are, and leaves no chunk stored.
SELECT setval('parallel_guarantee_run_id_seq', 661, false) IS NOT NULL AS numbered;
SET work_mem = '64kB';
-- 200,000 keys, the first one again at the end.
SELECT ck_try($$SELECT run_in_chunks('SELECT g FROM generate_series(1, 200000) g UNION ALL SELECT 1',
                                     'SELECT cardinality($1)')$$);
-- 1 and 1.0 are one numeric key, 100,000 keys apart too.
SELECT code, message ~ '^the keys query returned the key 1(\.0)? more than once$' AS names_the_key
  FROM ck_try_full($$SELECT run_in_chunks('SELECT 1.0 UNION ALL SELECT g::numeric FROM generate_series(2, 100000) g
                                           UNION ALL SELECT 1', 'SELECT cardinality($1)')$$);
-- A type without a btree ordering (point) is compared on its bytes.
SELECT ck_try($$SELECT run_in_chunks('SELECT point(g, g) FROM generate_series(1, 20000) g UNION ALL SELECT point(1, 1)',
                                     'SELECT cardinality($1)')$$);
-- The same 200,000 keys once each: 200 chunks of 1000, in the query's order.
SELECT run_id, status, chunks_total, chunks_done
  FROM run_in_chunks('SELECT g FROM generate_series(1, 200000) g', 'SELECT cardinality($1)');
SELECT count(*) AS chunks,
       bool_and(first_key::int = (chunk_no - 1) * 1000 + 1 AND last_key::int = chunk_no * 1000
                AND key_count = 1000) AS chunk_keys_in_order
  FROM parallel_guarantee_chunks WHERE run_id = 664;
RESET work_mem;

-- A keys query with a parallel plan hands its rows over in parallel mode, where nothing
-- may be written: its chunks are written once it has ended, the same chunks as above.
SET max_parallel_workers_per_gather = 2;
CREATE FUNCTION ck_plan_is_parallel(query text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
    IF line LIKE '%Gather%' THEN RETURN true; END IF;
  END LOOP;
  RETURN false;
END $$;
SELECT ck_plan_is_parallel(:'keys') AS keys_plan_is_parallel;
SELECT ck_reset() AS matching;
SELECT run_id, status, chunks_total, chunks_done, chunks_skipped, rows_changed
  FROM run_in_chunks(:'keys', :'action', chunk_size => 1000);
SELECT * FROM ck_verdict;
SELECT state, chunks, first_chunk, last_chunk, min_attempts, max_attempts, keys, rows
  FROM ck_chunk_summary WHERE run_id = 665;
SELECT bool_and(c.first_key::bigint = e.first_id AND c.last_key::bigint = e.last_id) AS chunk_keys_in_order
  FROM parallel_guarantee_chunks c
  JOIN (SELECT (n - 1) / 1000 + 1 AS chunk_no, min(id) AS first_id, max(id) AS last_id
          FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM ck_expected) x GROUP BY 1) e
    USING (chunk_no)
 WHERE c.run_id = 665;
-- A duplicate in a parallel keys query: the chunks waiting to be written never are.
SELECT ck_reset() AS matching;
SELECT ck_try(format('SELECT run_in_chunks(%L, %L)',
                     'SELECT id FROM passes WHERE status = ''IN_PROGRESS'' AND (ends_at < now() OR remaining = 0) '
                     'UNION ALL SELECT min(id) FROM ck_expected', :'action'));
SELECT * FROM ck_verdict;
SET max_parallel_workers_per_gather = 0;
SELECT r.run_id, r.status, r.sqlstate, r.keys_total, r.chunks_total,
       (SELECT count(*) FROM parallel_guarantee_chunks c WHERE c.run_id = r.run_id) AS chunks_stored
  FROM parallel_guarantee_chunk_runs r WHERE r.run_id BETWEEN 661 AND 669 ORDER BY r.run_id;

-- All the runs of this file.
SELECT run_id, label, status, keys_total, chunks_total, chunks_done, chunks_skipped, rows_changed,
       sqlstate, key_type
  FROM parallel_guarantee_chunk_runs WHERE run_id >= 601 ORDER BY run_id;
RESET client_min_messages;
RESET max_parallel_workers_per_gather;

-- 9. One set of verbs for both kinds of run.  A submitted chunked run blocks on chunk 4 (an
-- advisory lock this session holds) after committing chunks 1-3; parallel_guarantee_cancel
-- stops it, parallel_guarantee_wait and parallel_guarantee_status return its
-- parallel_guarantee_runs row (kind chunked); resumed, its progress counts the 3 chunks done
-- before; a cancel once it is done answers false and says why.
SELECT setval('parallel_guarantee_run_id_seq', 671, false) IS NOT NULL AS numbered;
SELECT pg_advisory_lock(4711) IS NOT NULL AS holding_chunk_4;
SELECT submit_chunks('SELECT g FROM generate_series(1, 6) g',
                     'SELECT pg_advisory_xact_lock(4711) FROM unnest($1) k WHERE k = 4',
                     chunk_size => 1, label => 'verbs') AS chunked \gset
-- Polls (at most 60 s) until chunks 1-3 are done and chunk 4 is running.
DO $$ BEGIN
  FOR i IN 1 .. 6000 LOOP
    EXIT WHEN (SELECT count(*) FROM parallel_guarantee_chunks WHERE run_id = 671 AND state = 'done') = 3
          AND EXISTS (SELECT FROM parallel_guarantee_chunks WHERE run_id = 671 AND chunk_no = 4 AND state = 'running');
    PERFORM pg_sleep(0.01);  -- poll
  END LOOP;
END $$;
SELECT run_id, kind, label, state FROM parallel_guarantee_activity WHERE run_id = :chunked;
SELECT run_id, kind, status, rows, statement, target_workers FROM parallel_guarantee_status(:chunked);
SELECT parallel_guarantee_cancel(:chunked) AS cancelled;
SELECT run_id, kind, status, rows, finished_at IS NOT NULL AS finished
  FROM parallel_guarantee_wait(:chunked, '60 s');
SELECT chunk_no, state FROM parallel_guarantee_chunks WHERE run_id = :chunked ORDER BY chunk_no;
SELECT pg_advisory_unlock(4711) AS released;
SET client_min_messages = notice;
SELECT run_id, status, chunks_total, chunks_done, chunks_skipped, rows_changed
  FROM resume_chunks(:chunked, notice_every => 1);
SELECT parallel_guarantee_cancel(:chunked) AS cancelled;
SET client_min_messages = warning;
SELECT run_id, kind, status, rows FROM parallel_guarantee_status(:chunked);
SELECT run_id, kind, status FROM parallel_guarantee_wait(:chunked);
-- parallel_guarantee_runs lists the chunked runs too, with kind and the action as statement;
-- the guaranteed-only columns are NULL for them.
SELECT run_id, kind, label, status, rows, statement, target_workers,
       num_nulls(cleanup, workers_planned, workers_launched, attempts, min_workers, max_attempts,
                 retry_delay, force_workers, wait_for_slots, max_wait, priority, async, caller_pid,
                 worker_pid) AS guaranteed_only_nulls
  FROM parallel_guarantee_runs WHERE run_id IN (611, 612, :chunked) ORDER BY run_id;
SELECT count(*) = (SELECT count(*) FROM parallel_guarantee_chunk_runs) AS every_chunked_run_listed
  FROM parallel_guarantee_runs WHERE kind = 'chunked';
RESET client_min_messages;

-- 10. Retention: a chunked run that ends purges the chunked runs (and their chunks) that
-- finished more than parallel_guarantee.history_days ago; a run still marked running stays.
INSERT INTO parallel_guarantee_chunk_run_history (run_id, label, role_oid, keys_query, action, chunk_size,
    max_retries, max_skipped, workers, status, started_at, finished_at)
VALUES (-11, 'ancient', 10, 'SELECT 1', 'SELECT $1', 1, 0, 0, 1, 'failed', now() - interval '40 days', now() - interval '40 days'),
       (-12, 'recent', 10, 'SELECT 1', 'SELECT $1', 1, 0, 0, 1, 'done', now() - interval '2 days', now() - interval '2 days'),
       (-13, 'unfinished', 10, 'SELECT 1', 'SELECT $1', 1, 0, 0, 1, 'running', now() - interval '40 days', NULL);
INSERT INTO parallel_guarantee_chunk_history (run_id, chunk_no, keys, key_count, state)
VALUES (-11, 1, '\x00', 1, 'failed'), (-12, 1, '\x00', 1, 'done'), (-13, 1, '\x00', 1, 'pending');
SET parallel_guarantee.history_days = 30;
SELECT status FROM run_in_chunks('SELECT g FROM generate_series(1, 3) g', 'SELECT $1', label => 'chunk purger');
SELECT r.label, count(c.chunk_no) AS chunks
  FROM parallel_guarantee_chunk_run_history r LEFT JOIN parallel_guarantee_chunk_history c USING (run_id)
 WHERE r.run_id < 0 GROUP BY r.run_id, r.label ORDER BY r.run_id DESC;
SELECT count(*) AS orphan_chunks FROM parallel_guarantee_chunk_history WHERE run_id = -11;
-- history_days = 0 keeps everything.
UPDATE parallel_guarantee_chunk_run_history SET finished_at = now() - interval '400 days' WHERE run_id = -12;
SET parallel_guarantee.history_days = 0;
SELECT status FROM run_in_chunks('SELECT g FROM generate_series(1, 3) g', 'SELECT $1', label => 'chunk purger');
SELECT count(*) AS old_runs_left FROM parallel_guarantee_chunk_run_history WHERE run_id < 0;
RESET parallel_guarantee.history_days;
DELETE FROM parallel_guarantee_chunk_run_history WHERE run_id < 0;
