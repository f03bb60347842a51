-- Index builds: CREATE INDEX and REINDEX get the guarantee (the leader's launch watched
-- without a Gather), the planned degree is checked before the build, and what cannot be
-- guaranteed is refused with a sentence.
-- Run ids are numbered from 901 in this file, whatever ran before it.
DO $$ BEGIN PERFORM setval('parallel_guarantee_run_id_seq', 901, false); END $$;
-- parallel_workers = 4: PostgreSQL plans 4 workers for an index build on the table,
-- whatever its size and maintenance_work_mem (capped by max_parallel_maintenance_workers,
-- which the run raises to the target).
CREATE TABLE items (id int, name text) WITH (parallel_workers = 4);
INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 50000) g;
ANALYZE items;
CREATE TABLE mt_cleanup_log (at timestamptz DEFAULT now());
CREATE FUNCTION mt_try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE d text; h text;
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
  RETURN sqlstate || ': ' || sqlerrm || E'\ndetail: ' || regexp_replace(d, '[0-9.]+ ms', 'N ms', 'g')
         || E'\nhint: ' || h;
END $$;
CREATE FUNCTION index_count(idx text) RETURNS bigint LANGUAGE sql AS
  $$ SELECT count(*) FROM pg_class WHERE relname = idx AND relkind = 'i' $$;

-- 1. A btree build with its target: 4 of 4, one NOTICE, the index is there and valid.
SELECT status, workers_planned, workers_launched, attempts
  FROM run_with_parallel_guarantee('CREATE INDEX items_name ON items (name)',
                                   'DROP INDEX IF EXISTS items_name', 4, 2, 3);
SELECT indisvalid, indisready FROM pg_index WHERE indexrelid = 'items_name'::regclass;
SELECT count(*) FROM items WHERE name = md5('42');
-- Recorded as any run: the attempt's planned and launched workers.
SELECT attempt, workers_planned, workers_launched, outcome
  FROM parallel_guarantee_attempts WHERE run_id = 901;
SELECT kind, status, workers_planned, workers_launched, statement
  FROM parallel_guarantee_runs WHERE run_id = 901;

-- 2. REINDEX INDEX and REINDEX TABLE (every index of the table is built in turn, each
-- launch held to the target).
CREATE INDEX items_id ON items (id);
SELECT status, workers_planned, workers_launched
  FROM run_with_parallel_guarantee('REINDEX INDEX items_name', NULL, 4, 4, 1);
SELECT status, workers_planned, workers_launched
  FROM run_with_parallel_guarantee('REINDEX TABLE items', NULL, 4, 4, 1);
DROP INDEX items_id;

-- 3. This session's max_parallel_workers below the target: one attempt, judged against the
-- minimum: degraded with 3 of 4, the index built once.
DROP INDEX items_name;
SET max_parallel_workers = 3;
SELECT status, workers_planned, workers_launched, attempts
  FROM run_with_parallel_guarantee('CREATE INDEX items_name ON items (name)',
                                   'INSERT INTO mt_cleanup_log DEFAULT VALUES', 4, 2, 3);
SELECT index_count('items_name') AS indexes, (SELECT count(*) FROM mt_cleanup_log) AS cleanups;
DROP INDEX items_name;

-- 4. Below the minimum: 53G01, the build rolled back (no index left), the cleanup ran once.
SET max_parallel_workers = 1;
SELECT mt_try($$SELECT * FROM run_with_parallel_guarantee('CREATE INDEX items_name ON items (name)',
                    'INSERT INTO mt_cleanup_log DEFAULT VALUES', 4, 2, 3)$$);
SELECT index_count('items_name') AS indexes, (SELECT count(*) FROM mt_cleanup_log) AS cleanups;
SELECT status, workers_planned, workers_launched, sqlstate
  FROM parallel_guarantee_runs WHERE run_id = (SELECT max(run_id) FROM parallel_guarantee_runs);
RESET max_parallel_workers;

-- 5. Planned fewer than the target, said at once (53G03), nothing built: the table's own
-- parallel_workers, then maintenance_work_mem as the cap (the table's setting removed).
ALTER TABLE items SET (parallel_workers = 2);
SELECT mt_try($$SELECT * FROM run_with_parallel_guarantee('CREATE INDEX items_name ON items (name)',
                    NULL, 4, 4, 3)$$);
ALTER TABLE items RESET (parallel_workers);
SET maintenance_work_mem = '64MB';
SELECT mt_try($$SELECT * FROM run_with_parallel_guarantee('CREATE INDEX items_name ON items (name)',
                    NULL, 4, 4, 3)$$);
SELECT index_count('items_name') AS indexes;
-- force_workers plans the target for the table, as for a query.
SELECT status, workers_planned, workers_launched
  FROM run_with_parallel_guarantee('CREATE INDEX items_name ON items (name)', NULL, 4, 4, 1,
                                   force_workers => true);
-- Enough maintenance_work_mem for 4 workers and the leader (5 x 32 MB): planned 4 by the
-- table's size (test/pg.conf: min_parallel_table_scan_size = 0).
DROP INDEX items_name;
SET maintenance_work_mem = '160MB';
SELECT status, workers_planned, workers_launched
  FROM run_with_parallel_guarantee('CREATE INDEX items_name ON items (name)', NULL, 4, 4, 1);
RESET maintenance_work_mem;
DROP INDEX items_name;
ALTER TABLE items SET (parallel_workers = 4);

-- 6. An index PostgreSQL builds serially: 53G04 with the reason; an expression index whose
-- function is not marked PARALLEL SAFE is planned no worker: 53G03 says so.
SELECT mt_try($$SELECT * FROM run_with_parallel_guarantee('CREATE INDEX items_hash ON items USING hash (name)',
                    NULL, 4, 4, 1)$$);
SELECT index_count('items_hash') AS indexes;
CREATE FUNCTION unsafe_lower(t text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RETURN lower(t); END $$;
SELECT mt_try($$SELECT * FROM run_with_parallel_guarantee('CREATE INDEX items_lower ON items (unsafe_lower(name))',
                    NULL, 4, 4, 1)$$);

-- 7. Refused before anything runs, each with its reason.
SELECT mt_try($$SELECT * FROM run_with_parallel_guarantee('CREATE INDEX CONCURRENTLY items_c ON items (name)',
                    NULL, 4, 4, 1)$$);
SELECT mt_try($$SELECT * FROM run_with_parallel_guarantee('REINDEX (CONCURRENTLY) TABLE items', NULL, 4, 4, 1)$$);
SELECT mt_try($$SELECT * FROM run_with_parallel_guarantee('REINDEX SCHEMA public', NULL, 4, 4, 1)$$);
SELECT mt_try($$SELECT * FROM run_with_parallel_guarantee('VACUUM (PARALLEL 4) items', NULL, 4, 4, 1)$$);
SELECT mt_try($$SELECT * FROM run_with_parallel_guarantee('CLUSTER items USING items_name', NULL, 4, 4, 1)$$);
-- A cleanup may drop what a build left (DROP INDEX), but not build concurrently either.
SELECT mt_try($$SELECT * FROM run_with_parallel_guarantee('CREATE INDEX items_name ON items (name)',
                    'CREATE INDEX CONCURRENTLY x ON items (id)', 4, 4, 1)$$);

-- 8. submit_parallel_guarantee takes an index build too.
SELECT status, workers_launched
  FROM parallel_guarantee_wait(submit_parallel_guarantee('CREATE INDEX items_name ON items (name)',
                                                         'DROP INDEX IF EXISTS items_name', 4, 4, 3));
SELECT index_count('items_name') AS indexes;

-- 9. Every build of the statement is checked before the first one starts: a REINDEX TABLE
-- whose second index PostgreSQL would build serially (an expression that is not PARALLEL
-- SAFE) fails at once, and the first index is not rebuilt meanwhile.
CREATE INDEX items_lower ON items (unsafe_lower(name));
SELECT relfilenode AS name_file FROM pg_class WHERE relname = 'items_name' \gset
SELECT mt_try($$SELECT * FROM run_with_parallel_guarantee('REINDEX TABLE items', NULL, 4, 4, 1)$$);
SELECT relfilenode = :name_file AS items_name_not_rebuilt FROM pg_class WHERE relname = 'items_name';
DROP INDEX items_lower;
-- A partitioned table: each partition is checked before any is built (53G03 names the one
-- planned below the target), and nothing is left.
CREATE TABLE parts (id int, name text) PARTITION BY RANGE (id);
CREATE TABLE parts_1 PARTITION OF parts FOR VALUES FROM (0) TO (50000) WITH (parallel_workers = 4);
CREATE TABLE parts_2 PARTITION OF parts FOR VALUES FROM (50000) TO (100000) WITH (parallel_workers = 2);
INSERT INTO parts SELECT g, md5(g::text) FROM generate_series(1, 99999) g;
SELECT mt_try($$SELECT * FROM run_with_parallel_guarantee('CREATE INDEX parts_name ON parts (name)', NULL, 4, 4, 1)$$);
SELECT count(*) AS indexes FROM pg_class WHERE relname LIKE 'parts%name%';
ALTER TABLE parts_2 SET (parallel_workers = 4);
SELECT status, workers_planned, workers_launched
  FROM run_with_parallel_guarantee('CREATE INDEX parts_name ON parts (name)', NULL, 4, 4, 1);
SELECT count(*) AS indexes FROM pg_class WHERE relname LIKE 'parts%name%';
-- A REINDEX of a partitioned table commits partition by partition: refused.
SELECT mt_try($$SELECT * FROM run_with_parallel_guarantee('REINDEX TABLE parts', NULL, 4, 4, 1)$$);
SELECT mt_try($$SELECT * FROM run_with_parallel_guarantee('REINDEX INDEX parts_name', NULL, 4, 4, 1)$$);
DROP TABLE parts;
-- CREATE INDEX IF NOT EXISTS of an index that exists builds nothing and succeeds (a nightly
-- step run twice), with no workers.
SELECT status, workers_planned, workers_launched
  FROM run_with_parallel_guarantee('CREATE INDEX IF NOT EXISTS items_name ON items (name)', NULL, 4, 4, 1);

-- 10. VACUUM of named tables: run at the top level; each parallel pass held to the target.
-- Six indexes of at least min_parallel_index_scan_size: PostgreSQL gives each to one
-- process, the leader included, so it plans up to 5 workers (PARALLEL 4: 4).
CREATE TABLE orders (id int, a int, b int, c int, d int, e int) WITH (autovacuum_enabled = off);
INSERT INTO orders SELECT g, g, g % 1000, g % 777, g % 333, g % 99 FROM generate_series(1, 100000) g;
CREATE INDEX ON orders (id); CREATE INDEX ON orders (a); CREATE INDEX ON orders (b);
CREATE INDEX ON orders (c); CREATE INDEX ON orders (d); CREATE INDEX ON orders (e);
DELETE FROM orders WHERE id % 3 = 0;
SELECT status, workers_planned, workers_launched, attempts
  FROM run_with_parallel_guarantee('VACUUM (PARALLEL 4) orders', NULL, 4, 2, 3);
-- The history keeps each parallel pass: planned and launched workers, in order.
CREATE VIEW last_run_passes AS
SELECT attempt, outcome, pass_workers_planned, pass_workers_launched
  FROM parallel_guarantee_attempts WHERE run_id = (SELECT max(run_id) FROM parallel_guarantee_runs)
 ORDER BY attempt;
SELECT * FROM last_run_passes;
-- VACUUM ran as a client's VACUUM would: it counted the live rows (CREATE INDEX had counted 100,000).
SELECT reltuples::bigint AS live_rows FROM pg_class WHERE relname = 'orders';
-- This session's max_parallel_workers below the target: one attempt, degraded with 2.
DELETE FROM orders WHERE id % 3 = 1;
SET max_parallel_workers = 2;
SELECT status, workers_planned, workers_launched, attempts
  FROM run_with_parallel_guarantee('VACUUM (PARALLEL 4) orders', NULL, 4, 2, 3);
SELECT * FROM last_run_passes;
-- With no worker to be had at all (the pool refuses every registration): PostgreSQL still
-- reports the pass ("launched 0"), which is judged below the minimum: 53G01.
DELETE FROM orders WHERE id % 3 = 2;
SET max_parallel_workers = 0;
SELECT mt_try($$SELECT * FROM run_with_parallel_guarantee('VACUUM (PARALLEL 4) orders', NULL, 4, 2, 3)$$);
SELECT * FROM last_run_passes;
RESET max_parallel_workers;
-- Fewer than the target, said before anything runs (53G03): PARALLEL caps it, or the indexes.
SELECT mt_try($$SELECT * FROM run_with_parallel_guarantee('VACUUM (PARALLEL 2) orders', NULL, 4, 2, 3)$$);
SELECT mt_try($$SELECT * FROM run_with_parallel_guarantee('VACUUM orders', NULL, 6, 2, 3)$$);
-- No VACUUM ran (the check came first): no passes.  Other statements have none either.
SELECT * FROM last_run_passes;
SELECT count(*) AS index_build_attempts_with_passes
  FROM parallel_guarantee_attempts a JOIN parallel_guarantee_runs r USING (run_id)
 WHERE r.statement NOT LIKE 'VACUUM%' AND (a.pass_workers_planned IS NOT NULL OR a.pass_workers_launched IS NOT NULL);
-- Refused: FULL (one process), no table named, PARALLEL 0, a VACUUM as the cleanup; ANALYZE
-- alone runs in one process (53G04).
SELECT mt_try($$SELECT * FROM run_with_parallel_guarantee('VACUUM FULL orders', NULL, 4, 2, 3)$$);
SELECT mt_try($$SELECT * FROM run_with_parallel_guarantee('VACUUM', NULL, 4, 2, 3)$$);
SELECT mt_try($$SELECT * FROM run_with_parallel_guarantee('VACUUM (PARALLEL 0) orders', NULL, 4, 2, 3)$$);
SELECT mt_try($$SELECT * FROM run_with_parallel_guarantee('SELECT 1', 'VACUUM orders', 4, 2, 3)$$);
SELECT mt_try($$SELECT * FROM run_with_parallel_guarantee('ANALYZE orders', NULL, 4, 2, 3)$$);
-- Two tables in one VACUUM: a pass each, in the order they were vacuumed.
CREATE TABLE orders_b (id int, a int, b int, c int, d int, e int) WITH (autovacuum_enabled = off);
INSERT INTO orders_b SELECT g, g, g % 1000, g % 777, g % 333, g % 99 FROM generate_series(1, 100000) g;
CREATE INDEX ON orders_b (id); CREATE INDEX ON orders_b (a); CREATE INDEX ON orders_b (b);
CREATE INDEX ON orders_b (c); CREATE INDEX ON orders_b (d); CREATE INDEX ON orders_b (e);
CREATE TABLE orders_c (LIKE orders_b) WITH (autovacuum_enabled = off);
INSERT INTO orders_c SELECT * FROM orders_b;
CREATE INDEX ON orders_c (id); CREATE INDEX ON orders_c (a); CREATE INDEX ON orders_c (b);
CREATE INDEX ON orders_c (c); CREATE INDEX ON orders_c (d);
DELETE FROM orders_b WHERE id % 2 = 0;
DELETE FROM orders_c WHERE id % 2 = 0;
-- orders_c has five indexes: PARALLEL 4 plans 4 for both tables.
SELECT status, workers_planned, workers_launched, attempts
  FROM run_with_parallel_guarantee('VACUUM (PARALLEL 4) orders_b, orders_c', NULL, 4, 2, 3);
SELECT * FROM last_run_passes;
DROP TABLE orders_b, orders_c;
DROP VIEW last_run_passes;
DROP TABLE orders;

DROP TABLE items, mt_cleanup_log;
DROP FUNCTION mt_try(text), index_count(text), unsafe_lower(text);
