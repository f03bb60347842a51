@@# Hand-written cases for bad_input.sh.  Each case starts with a line
@@#   @@ GROUP EXPECTED
@@# where EXPECTED is an extended regex over the outcome: OK (no error) or a SQLSTATE;
@@# the lines up to the next "@@" are the SQL, sent to one psql session of its own (stopping
@@# at the first error unless the SQL contains "-- continue": then the outcome is OK if it
@@# printed FINAL-OK, else its last error).  Placeholders: {RUN} = SELECT status FROM
@@# run_with_parallel_guarantee, {SUB} = SELECT 0 < submit_parallel_guarantee, {N} = the
@@# case number, {FILES} = a directory the server may write to.  A case that holds "-- hog N"
@@# runs while another session holds N parallel workers of the 8 (a shortage that lasts over
@@# several attempts; a SET max_parallel_workers below the target would make one attempt).
@@# The extension's schema is on the database's search_path; the role plain has no USAGE on it.
@@# The statement argument is dollar-quoted with $q$ ... $q$ throughout.
@@# Chunked batches: {CHUNKS} = SELECT status FROM run_in_chunks, {SUBCHUNKS} = SELECT 0 <
@@# submit_chunks, {KEYS} = a good keys query (the 1000 ids of tiny), {ACTION} = a good action
@@# (adds 1 to those ids' rows in chunk_hits).  Keys queries are dollar-quoted with $q$, actions
@@# with $a$.

@@ empty-statement 22023
{RUN}($q$$q$)
@@ empty-statement 22023
{RUN}($q$   $q$)
@@ empty-statement 22023
{RUN}(E'\t\n\r ')
@@ empty-statement 22023
{RUN}($q$-- only a comment$q$)
@@ empty-statement 22023
{RUN}($q$/* only a comment */$q$)
@@ empty-statement 22023
{RUN}($q$;$q$)
@@ empty-statement 22023
{RUN}($q$ ; ;; ;$q$)
@@ empty-statement 22023
{SUB}($q$$q$)
@@ empty-statement 22023
{SUB}($q$ ; $q$)
@@ empty-statement 22023
{SUB}(E'\n-- nothing\n')

@@ syntax 42601
{RUN}($q$SELEC count(*) FROM big$q$)
@@ syntax 42601
{RUN}($q$SELECT ($q$)
@@ syntax 42601
{RUN}($q$SELECT count(*) FROM big WHERE$q$)
@@ syntax 42601
{RUN}($q$DO $$ BEGIN $q$)
@@ syntax 42601
{RUN}($q$SELECT 'unterminated$q$)
@@ syntax 42601
{RUN}($q$/* unterminated comment$q$)
@@ syntax 42601
{SUB}($q$SELEC 1$q$)
@@ syntax 42601
{RUN}(E'\\xff')
@@ syntax 42601
{SUB}(E'\\x00\\xff')

@@ several-statements 0A000
{RUN}($q$SELECT 1; SELECT 2$q$)
@@ several-statements 0A000
{RUN}($q$SELECT count(*) FROM big; SELECT count(*) FROM big;$q$)
@@ several-statements 0A000
{RUN}($q$CREATE TABLE several_{N} AS SELECT count(*) FROM big; DROP TABLE big$q$)
@@ several-statements 0A000
{RUN}(repeat('SELECT 1;', 100000))
@@ several-statements 0A000
{SUB}($q$SELECT 1; SELECT 2$q$)
@@ several-statements 0A000
{RUN}($q$SELECT count(*) FROM big$q$, cleanup => $q$SELECT 1; SELECT 2$q$)
@@ several-statements OK
{RUN}($q$SELECT count(*) FROM big;$q$)
@@ several-statements OK
{RUN}($q$;;SELECT count(*) FROM big;;$q$)

@@ transaction-control 0A000
{RUN}($q$BEGIN$q$)
@@ transaction-control 0A000
{RUN}($q$START TRANSACTION ISOLATION LEVEL SERIALIZABLE$q$)
@@ transaction-control 0A000
{RUN}($q$COMMIT$q$)
@@ transaction-control 0A000
{RUN}($q$END$q$)
@@ transaction-control 0A000
{RUN}($q$ROLLBACK$q$)
@@ transaction-control 0A000
{RUN}($q$ABORT$q$)
@@ transaction-control 0A000
{RUN}($q$SAVEPOINT s$q$)
@@ transaction-control 0A000
{RUN}($q$RELEASE SAVEPOINT s$q$)
@@ transaction-control 0A000
{RUN}($q$ROLLBACK TO SAVEPOINT s$q$)
@@ transaction-control 0A000
{RUN}($q$PREPARE TRANSACTION 'x'$q$)
@@ transaction-control 0A000
{RUN}($q$COMMIT PREPARED 'x'$q$)
@@ transaction-control 0A000
{RUN}($q$COMMIT AND CHAIN$q$)
@@ transaction-control 0A000
{SUB}($q$BEGIN$q$)
@@ transaction-control 0A000
{SUB}($q$SAVEPOINT s$q$)
@@ transaction-control 0A000
{RUN}($q$SELECT count(*) FROM big$q$, cleanup => $q$ROLLBACK$q$)
@@ transaction-control 0A000
{RUN}($q$SELECT count(*) FROM big$q$, cleanup => $q$SAVEPOINT s$q$)

@@ set-reset 0A000
{RUN}($q$SET work_mem = '1GB'$q$)
@@ set-reset 0A000
{RUN}($q$SET LOCAL work_mem = '1GB'$q$)
@@ set-reset 0A000
{RUN}($q$SET SESSION max_parallel_workers = 0$q$)
@@ set-reset 0A000
{RUN}($q$RESET work_mem$q$)
@@ set-reset 0A000
{RUN}($q$RESET ALL$q$)
@@ set-reset 0A000
{RUN}($q$SET ROLE postgres$q$)
@@ set-reset 0A000
{RUN}($q$SET SESSION AUTHORIZATION postgres$q$)
@@ set-reset 0A000
{RUN}($q$SET TRANSACTION ISOLATION LEVEL SERIALIZABLE$q$)
@@ set-reset 0A000
{RUN}($q$SET search_path = pg_catalog$q$)
@@ set-reset 0A000
{RUN}($q$DISCARD ALL$q$)
@@ set-reset 0A000
{RUN}($q$DISCARD TEMP$q$)
@@ set-reset 0A000
{SUB}($q$SET work_mem = '1GB'$q$)
@@ set-reset 0A000
{SUB}($q$RESET ALL$q$)
@@ set-reset 0A000
{RUN}($q$SELECT count(*) FROM big$q$, cleanup => $q$RESET ALL$q$)
@@ set-reset 53G04
{RUN}($q$SHOW work_mem$q$)

@@ listen-notify 0A000
{RUN}($q$LISTEN ch$q$)
@@ listen-notify 0A000
{RUN}($q$UNLISTEN *$q$)
@@ listen-notify 0A000
{SUB}($q$LISTEN ch$q$)
@@ listen-notify 0A000
{RUN}($q$SELECT count(*) FROM big$q$, cleanup => $q$LISTEN ch$q$)
@@ listen-notify 53G04
{RUN}($q$NOTIFY ch, 'from the worker'$q$)
@@ listen-notify 53G04
{RUN}($q$SELECT pg_notify('ch', 'x')$q$)
@@ listen-notify OK
{RUN}($q$DO $$ BEGIN PERFORM pg_notify('ch', 'x'); PERFORM count(*) FROM big; END $$$q$)
@@ listen-notify OK|53G04|0A000
{RUN}($q$DO $$ BEGIN EXECUTE 'LISTEN ch'; PERFORM count(*) FROM big; END $$$q$)

@@ prepared-cursors 0A000
{RUN}($q$PREPARE p AS SELECT count(*) FROM big$q$)
@@ prepared-cursors 0A000
PREPARE p AS SELECT count(*) FROM big;
{RUN}($q$EXECUTE p$q$)
@@ prepared-cursors 0A000
{RUN}($q$DEALLOCATE ALL$q$)
@@ prepared-cursors 0A000
{RUN}($q$DECLARE c CURSOR FOR SELECT count(*) FROM big$q$)
@@ prepared-cursors 0A000
{RUN}($q$FETCH ALL FROM c$q$)
@@ prepared-cursors 0A000
{RUN}($q$CLOSE ALL$q$)
@@ prepared-cursors 0A000
PREPARE p AS SELECT count(*) FROM big;
{RUN}($q$CREATE TABLE exec_{N} AS EXECUTE p$q$)
@@ prepared-cursors 0A000
{SUB}($q$EXECUTE p$q$)
@@ prepared-cursors OK|0A000|53G04
{RUN}($q$DO $$ DECLARE n bigint; BEGIN EXECUTE 'PREPARE p2 AS SELECT count(*) FROM big'; EXECUTE 'EXECUTE p2' INTO n; END $$$q$)
@@ prepared-cursors 53G04
{RUN}($q$DO $$ DECLARE c CURSOR FOR SELECT count(*) FROM big; n bigint; BEGIN OPEN c; FETCH c INTO n; CLOSE c; END $$$q$)

@@ copy 0A000
{RUN}($q$COPY big TO STDOUT$q$)
@@ copy 0A000
{RUN}($q$COPY big FROM STDIN$q$)
@@ copy 0A000
{RUN}($q$COPY (SELECT count(*) FROM big) TO STDOUT$q$)
@@ copy 0A000
{RUN}($q$COPY big TO STDIN$q$)
@@ copy 0A000
{RUN}($q$COPY big (id) TO STDOUT WITH (FORMAT binary)$q$)
@@ copy 0A000
{SUB}($q$COPY big TO STDOUT$q$)
@@ copy 0A000
{RUN}($q$SELECT count(*) FROM big$q$, cleanup => $q$COPY big FROM STDIN$q$)
@@ copy OK
{RUN}($q$COPY (SELECT count(*) FROM big) TO '{FILES}/count_{N}.csv'$q$)
@@ copy 53G04
{RUN}($q$COPY big TO '{FILES}/big_{N}.csv'$q$)
@@ copy 53G04
{RUN}($q$COPY small FROM '{FILES}/does_not_exist.csv'$q$)
@@ copy 42602
{RUN}($q$COPY (SELECT count(*) FROM big) TO 'relative.csv'$q$)
@@ copy 53G04
{RUN}($q$COPY big TO PROGRAM 'cat > /dev/null'$q$)
@@ copy OK
{RUN}($q$COPY (SELECT id FROM big) TO PROGRAM 'cat > /dev/null'$q$)
@@ copy 0A000|53G04|OK
{RUN}($q$DO $$ BEGIN EXECUTE 'COPY big TO STDOUT'; END $$$q$)

@@ temp-objects 0A000
{RUN}($q$CREATE TEMP TABLE t_{N} (x int)$q$)
@@ temp-objects 0A000
{RUN}($q$CREATE TEMPORARY TABLE t_{N} AS SELECT count(*) FROM big$q$)
@@ temp-objects 0A000
{RUN}($q$CREATE TABLE pg_temp.t_{N} (x int)$q$)
@@ temp-objects 0A000
{RUN}($q$CREATE TABLE pg_temp.t_{N} AS SELECT count(*) FROM big$q$)
@@ temp-objects 0A000
{RUN}($q$SELECT count(*) INTO TEMP t_{N} FROM big$q$)
@@ temp-objects 0A000
{RUN}($q$SELECT count(*) INTO TEMPORARY TABLE t_{N} FROM big$q$)
@@ temp-objects 0A000
{RUN}($q$CREATE TEMP VIEW v_{N} AS SELECT 1$q$)
@@ temp-objects 0A000
{RUN}($q$CREATE TEMP SEQUENCE s_{N}$q$)
@@ temp-objects 0A000
{SUB}($q$CREATE TEMP TABLE t_{N} AS SELECT count(*) FROM big$q$)
@@ temp-objects 0A000
{RUN}($q$SELECT count(*) FROM big$q$, cleanup => $q$CREATE TEMP TABLE t_{N} (x int)$q$)
@@ temp-objects OK|0A000
{RUN}($q$CREATE UNLOGGED TABLE u_{N} AS SELECT count(*) FROM big$q$)
@@ temp-objects OK|0A000|53G04
{RUN}($q$DO $$ BEGIN CREATE TEMP TABLE dt_{N} AS SELECT count(*) FROM big; END $$$q$)
@@ temp-objects OK|0A000|53G04|25001
{RUN}($q$CREATE TEMP TABLE t_{N} ON COMMIT DROP AS SELECT count(*) FROM big$q$)

@@ do-blocks OK
{RUN}($q$DO $$ BEGIN PERFORM count(*) FROM big; END $$$q$)
@@ do-blocks 53G04
{RUN}($q$DO $$ BEGIN NULL; END $$$q$)
@@ do-blocks 2D000
{RUN}($q$DO $$ BEGIN COMMIT; END $$$q$)
@@ do-blocks 2D000
{RUN}($q$DO $$ BEGIN PERFORM count(*) FROM big; COMMIT; END $$$q$)
@@ do-blocks 2D000
{RUN}($q$DO $$ BEGIN ROLLBACK; END $$$q$)
@@ do-blocks 2D000
{RUN}($q$DO $$ BEGIN PERFORM count(*) FROM big; COMMIT AND CHAIN; END $$$q$)
@@ do-blocks 0A000
{RUN}($q$DO $$ BEGIN EXECUTE 'SAVEPOINT s'; END $$$q$)
@@ do-blocks 0A000
{RUN}($q$DO $$ BEGIN EXECUTE 'BEGIN'; END $$$q$)
@@ do-blocks 2D000
SELECT submit_parallel_guarantee($q$DO $$ BEGIN COMMIT; END $$$q$) AS id \gset
SELECT coalesce(sqlstate, status) AS sqlstate FROM parallel_guarantee_wait(:id, '20 s') \gset
SELECT raise_state(:'sqlstate')
@@ do-blocks 2D000
{RUN}($q$SELECT count(*) FROM big WHERE 1/(id - id) = 0$q$, cleanup => $q$DO $$ BEGIN COMMIT; END $$$q$)
@@ do-blocks OK
{RUN}($q$DO $$ BEGIN SET work_mem = '1MB'; PERFORM count(*) FROM big; END $$$q$)
@@ do-blocks 53G01
{RUN}($q$DO $$ BEGIN PERFORM set_config('max_parallel_workers', '1', false); PERFORM count(*) FROM big; END $$$q$, max_attempts => 2, retry_delay => '10 ms', min_workers => 2)
@@ do-blocks 53G01
{RUN}($q$DO $$ BEGIN PERFORM set_config('max_parallel_workers', '1', true); PERFORM count(*) FROM big; EXCEPTION WHEN query_canceled THEN RAISE NOTICE 'caught'; END $$$q$, max_attempts => 2, retry_delay => '10 ms', min_workers => 2)
@@ do-blocks 53G03
{RUN}($q$DO $$ BEGIN PERFORM count(*) FROM tiny; EXCEPTION WHEN OTHERS THEN NULL; END $$$q$)
@@ do-blocks 0A000
{RUN}($q$DO LANGUAGE sql $$ SELECT 1 $$$q$)
@@ do-blocks 54001
{RUN}($q$DO $$ BEGIN PERFORM count(*) FROM big; PERFORM recurse(1000000); END $$$q$)
@@ do-blocks P0001
{RUN}($q$DO $$ BEGIN PERFORM count(*) FROM big; RAISE EXCEPTION 'custom error' USING DETAIL = 'detail', HINT = 'hint'; END $$$q$)
@@ do-blocks U0001
{RUN}($q$DO $$ BEGIN PERFORM count(*) FROM big; RAISE EXCEPTION 'custom sqlstate' USING ERRCODE = 'U0001'; END $$$q$)
@@ do-blocks P0001
{RUN}($q$DO $$ BEGIN PERFORM count(*) FROM big; RAISE EXCEPTION 'a long message: %', repeat('m', 1048576); END $$$q$)
@@ do-blocks OK
SET client_min_messages = notice;
{RUN}($q$DO $$ BEGIN PERFORM count(*) FROM big; RAISE NOTICE '%', repeat('n', 1048576); END $$$q$)
@@ do-blocks OK
SET client_min_messages = notice;
{RUN}($q$DO $$ BEGIN PERFORM count(*) FROM big; FOR i IN 1..20000 LOOP RAISE NOTICE 'notice %', i; END LOOP; END $$$q$)
@@ do-blocks OK|53G04
{RUN}($q$DO $$ DECLARE n bigint; t text; BEGIN FOR i IN 1..40 LOOP SELECT count(*) INTO n FROM big WHERE id % (i + 1) = 0; EXECUTE format('SELECT count(*) FROM big b JOIN small s USING (id) WHERE b.id > %s', i) INTO n; EXECUTE format('SELECT max(pad) FROM (SELECT pad FROM big WHERE id < %s ORDER BY id) x', i * 100) INTO t; END LOOP; END $$$q$, target_workers => 2, min_workers => 0, retry_delay => '10 ms')
@@ do-blocks OK|53G04
{RUN}($q$DO $$ DECLARE n bigint; BEGIN FOR i IN 1..300 LOOP SELECT count(*) INTO n FROM big WHERE id < i; END LOOP; END $$$q$, target_workers => 2, min_workers => 0, retry_delay => '10 ms')
@@ do-blocks OK
{SUB}($q$DO $$ BEGIN PERFORM count(*) FROM big; END $$$q$)
@@ do-blocks 2D000
{RUN}($q$CALL proc_commit()$q$)
@@ do-blocks OK
{RUN}($q$CALL proc_query()$q$)
@@ do-blocks 57014
SET statement_timeout = '500ms';
{RUN}($q$DO $$ BEGIN PERFORM count(*) FROM big; LOOP PERFORM pg_sleep(0.05); END LOOP; END $$$q$)
@@ do-blocks 57P01|08006
{RUN}($q$DO $$ BEGIN PERFORM count(*) FROM big; PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5); END $$$q$)
@@ do-blocks 57014
{RUN}($q$DO $$ BEGIN PERFORM count(*) FROM big; PERFORM pg_cancel_backend(pg_backend_pid()); PERFORM pg_sleep(5); END $$$q$)

@@ recursion 0A000|53G04
{RUN}($q$SELECT run_with_parallel_guarantee('SELECT count(*) FROM big')$q$)
@@ recursion 0A000|53G04
{RUN}($q$SELECT * FROM run_with_parallel_guarantee('SELECT count(*) FROM big')$q$)
@@ recursion 0A000|53G04
{RUN}($q$SELECT submit_parallel_guarantee('SELECT count(*) FROM big')$q$)
@@ recursion 0A000
{RUN}($q$DO $$ BEGIN PERFORM run_with_parallel_guarantee('SELECT count(*) FROM big'); END $$$q$)
@@ recursion 0A000
{RUN}($q$DO $$ BEGIN PERFORM count(*) FROM big; PERFORM submit_parallel_guarantee('SELECT count(*) FROM big'); END $$$q$)
@@ recursion 0A000
{RUN}($q$DO $$ BEGIN PERFORM count(*) FROM big; EXECUTE 'SELECT run_with_parallel_guarantee($x$SELECT 1$x$)'; END $$$q$)
@@ recursion 0A000|53G04
{RUN}($q$CREATE TABLE rec_{N} AS SELECT * FROM run_with_parallel_guarantee('SELECT count(*) FROM big')$q$)
@@ recursion 0A000|25000|53G04
{RUN}($q$SELECT count(*) FROM big WHERE lying_run() IS NOT NULL$q$, target_workers => 2, min_workers => 2)
@@ recursion 0A000|25000|53G04
{RUN}($q$SELECT count(*) FROM big WHERE lying_submit() IS NOT NULL$q$, target_workers => 2, min_workers => 2)
@@ recursion 25000|0A000
SET max_parallel_workers_per_gather = 2;
SELECT count(*) FROM big WHERE lying_run() IS NOT NULL
@@ recursion 25000|0A000
SET max_parallel_workers_per_gather = 2;
SELECT count(*) FROM big WHERE lying_submit() IS NOT NULL
@@ recursion 0A000
{RUN}($q$SELECT count(*) FROM big WHERE 1/(id - id) = 0$q$, cleanup => $q$SELECT run_with_parallel_guarantee('SELECT count(*) FROM big')$q$)
@@ recursion 0A000
{RUN}($q$SELECT count(*) FROM big WHERE 1/(id - id) = 0$q$, cleanup => $q$DO $$ BEGIN PERFORM submit_parallel_guarantee('SELECT count(*) FROM big'); END $$$q$)
@@ recursion OK
{SUB}($q$DO $$ BEGIN PERFORM count(*) FROM big; PERFORM run_with_parallel_guarantee('SELECT 1'); END $$$q$)

@@ utility 53G03
{RUN}($q$VACUUM big$q$)
@@ utility 0A000
{RUN}($q$VACUUM$q$)
@@ utility 53G03
{RUN}($q$VACUUM (ANALYZE) small$q$)
@@ utility 53G04
{RUN}($q$ANALYZE small$q$)
@@ utility 0A000
{RUN}($q$CREATE INDEX CONCURRENTLY cic_{N} ON big (id)$q$)
@@ utility 0A000
{RUN}($q$REINDEX TABLE CONCURRENTLY small$q$)
@@ utility 53G04
{RUN}($q$DROP INDEX CONCURRENTLY IF EXISTS nothing_{N}$q$)
@@ utility 53G04
{RUN}($q$CREATE DATABASE db_{N}$q$)
@@ utility 53G04
{RUN}($q$DROP DATABASE IF EXISTS db_{N}$q$)
@@ utility 53G04
{RUN}($q$ALTER SYSTEM SET work_mem = '1MB'$q$)
@@ utility 53G04
{RUN}($q$CREATE TABLESPACE ts_{N} LOCATION '{FILES}'$q$)
@@ utility 25001
{RUN}($q$DO $$ BEGIN PERFORM count(*) FROM big; EXECUTE 'VACUUM big'; END $$$q$)
@@ utility 25001
{RUN}($q$DO $$ BEGIN PERFORM count(*) FROM big; EXECUTE 'CREATE DATABASE ddb_{N}'; END $$$q$)
@@ utility 25001
{RUN}($q$DO $$ BEGIN PERFORM count(*) FROM big; EXECUTE 'CREATE INDEX CONCURRENTLY dcic_{N} ON big (id)'; END $$$q$)
@@ utility 25001
SELECT submit_parallel_guarantee($q$DO $$ BEGIN PERFORM count(*) FROM big; EXECUTE 'VACUUM big'; END $$$q$) AS id \gset
SELECT coalesce(sqlstate, status) AS sqlstate FROM parallel_guarantee_wait(:id, '20 s') \gset
SELECT raise_state(:'sqlstate')
@@ utility 0A000
{RUN}($q$SELECT count(*) FROM big WHERE 1/(id - id) = 0$q$, cleanup => $q$VACUUM big$q$)
@@ utility OK
{RUN}($q$CREATE INDEX ci_{N} ON small (id)$q$)
@@ utility 53G03
{RUN}($q$CREATE INDEX ci_{N} ON tiny (id)$q$)
@@ utility 53G04
{RUN}($q$CREATE INDEX ci_{N} ON small USING hash (id)$q$)
@@ utility 0A000
{RUN}($q$REINDEX DATABASE postgres$q$)
@@ utility 53G04
{RUN}($q$TRUNCATE small$q$)
@@ utility 53G04
{RUN}($q$DROP TABLE small$q$)
@@ utility 53G04
{RUN}($q$DELETE FROM small$q$)
@@ utility 53G04
{RUN}($q$UPDATE small SET pad = 'changed'$q$)
@@ utility 53G04
{RUN}($q$INSERT INTO small SELECT * FROM big$q$)
@@ utility 53G04
{RUN}($q$WITH d AS (DELETE FROM small RETURNING *) SELECT count(*) FROM big$q$)
@@ utility 53G04
{RUN}($q$MERGE INTO small s USING big b ON s.id = b.id WHEN MATCHED THEN DELETE$q$)
@@ utility 53G04
{RUN}($q$SELECT id FROM big FOR UPDATE$q$)
@@ utility 0A000
{RUN}($q$SELECT count(*) FROM big FOR UPDATE$q$)
@@ utility 53G04
{RUN}($q$LOCK TABLE small IN ACCESS EXCLUSIVE MODE$q$)
@@ utility 53G04
{RUN}($q$CHECKPOINT$q$)
@@ utility 53G04
{RUN}($q$LOAD 'plpgsql'$q$)
@@ utility 53G04
{RUN}($q$EXPLAIN SELECT count(*) FROM big$q$)
@@ utility OK
{RUN}($q$EXPLAIN ANALYZE SELECT count(*) FROM big$q$)
@@ utility 53G04
{RUN}($q$VALUES (1)$q$)
@@ utility 53G04
{RUN}($q$SELECT 1$q$)
@@ utility OK
{RUN}($q$TABLE big$q$)
@@ utility OK
{RUN}($q$SELECT * FROM big$q$)
@@ utility OK
{RUN}($q$SELECT count(*) FROM big LIMIT 1$q$)
@@ utility OK
{RUN}($q$CREATE TABLE ctas_{N} AS SELECT count(*) FROM big$q$)
@@ utility OK
{RUN}($q$SELECT count(*) INTO into_{N} FROM big$q$)
@@ utility 42P01
{RUN}($q$SELECT count(*) FROM no_such_table$q$)
@@ utility 22012
{RUN}($q$SELECT count(*) FROM big WHERE 1/(id - id) = 0$q$)
@@ utility 53G04
{RUN}($q$SELECT pg_terminate_backend(pg_backend_pid())$q$)
@@ utility 57014|53G04
{RUN}($q$SELECT pg_cancel_backend(pg_backend_pid())$q$)
@@ utility 53G04
{RUN}($q$SELECT lo_import('/etc/hostname')$q$)
@@ utility 25001|0A000|53G04
{RUN}($q$DO $$ BEGIN PERFORM count(*) FROM big; EXECUTE 'ALTER SYSTEM SET work_mem = ''2MB'''; END $$$q$)

@@ invalid-encoding 22021
{RUN}(convert_from('\xff'::bytea, 'UTF8'))
@@ invalid-encoding 22021
{RUN}('SELECT count(*) FROM big WHERE pad <> ' || quote_literal(convert_from('\xc328'::bytea, 'UTF8')))
@@ invalid-encoding 22021
{RUN}('SELECT ' || convert_from('\xc080'::bytea, 'UTF8'))
@@ invalid-encoding 22021
{RUN}('SELECT ' || convert_from('\xeda080'::bytea, 'UTF8'))
@@ invalid-encoding 22021
{RUN}('SELECT ' || convert_from('\xf4908080'::bytea, 'UTF8'))
@@ invalid-encoding 22021
{RUN}('SELECT ' || convert_from('\x00'::bytea, 'UTF8'))
@@ invalid-encoding 22021
{RUN}(E'SELECT count(*) FROM big WHERE pad <> \'\xff\'')
@@ invalid-encoding 22021
{RUN}(E'SELECT \xc3\x28')
@@ invalid-encoding 42601|22P05|22021
{RUN}(E'SELECT \u0000')
@@ invalid-encoding 42601|22P05|22021
{RUN}(U&'SELECT \0000')
@@ invalid-encoding 54000
{RUN}('SELECT ' || chr(0))
@@ invalid-encoding 22021
{RUN}($q$SELECT count(*) FROM big$q$, cleanup => convert_from('\xff'::bytea, 'UTF8'))
@@ invalid-encoding 22021
{RUN}($q$SELECT count(*) FROM big$q$, label => convert_from('\xfeff'::bytea, 'UTF8'))
@@ invalid-encoding 22021
{SUB}(convert_from('\xff'::bytea, 'UTF8'))
@@ invalid-encoding 22021
{SUB}(E'SELECT \xff')
@@ invalid-encoding 54000
{SUB}('SELECT count(*) FROM big', label => 'a' || chr(0))
@@ invalid-encoding OK
{RUN}('SELECT count(*) FROM big WHERE pad <> ' || quote_literal(convert_from('\xe9'::bytea, 'LATIN1')))
@@ invalid-encoding OK
{RUN}('SELECT count(*) FROM big WHERE pad <> ' || quote_literal(convert_from('\xf09f9880'::bytea, 'UTF8')), label => convert_from('\xf09f9880'::bytea, 'UTF8'))
@@ invalid-encoding OK
SET client_encoding = 'LATIN1';
{RUN}($q$SELECT count(*) FROM big WHERE pad <> 'é'$q$)
@@ invalid-encoding 22023
{RUN}(convert_from('\xzz'::bytea, 'UTF8'))

@@ huge-statement OK
{RUN}('SELECT count(*) FROM big /* ' || repeat('x', 1048000) || ' */')
@@ huge-statement 54000
{RUN}('SELECT count(*) FROM big /* ' || repeat('x', 1048576) || ' */')
@@ huge-statement OK
{RUN}('SELECT count(*) FROM big WHERE pad <> ''' || repeat('y', 1048000) || '''')
@@ huge-statement 54000
{RUN}('SELECT count(*) FROM big WHERE pad <> ''' || repeat('y', 1048576) || '''')
@@ huge-statement OK
{RUN}('SELECT count(*) FROM big WHERE pad <> ''' || repeat('é', 524000) || '''')
@@ huge-statement 54000
{RUN}('SELECT count(*) FROM big WHERE pad <> ''' || repeat('é', 524288) || '''')
@@ huge-statement 54000
{RUN}('SELECT count(*) FROM big /* ' || repeat('z', 8388608) || ' */')
@@ huge-statement 54001
{RUN}('SELECT ' || repeat('1+', 524000) || '1')
@@ huge-statement 54001|42601
{RUN}('SELECT count(*) FROM big WHERE ' || repeat('(', 100000) || 'true' || repeat(')', 100000))
@@ huge-statement OK
{RUN}('SELECT count(*) FROM big WHERE id NOT IN (' || (SELECT string_agg(g::text, ',') FROM generate_series(1, 150000) g) || ')')
@@ huge-statement OK
{SUB}('SELECT count(*) FROM big /* ' || repeat('x', 1048000) || ' */')
@@ huge-statement 54000
{SUB}('SELECT count(*) FROM big /* ' || repeat('x', 1048576) || ' */')
@@ huge-statement OK
{RUN}($q$SELECT count(*) FROM big$q$, cleanup => 'SELECT 1 /* ' || repeat('c', 1048000) || ' */')
@@ huge-statement 54000
{RUN}($q$SELECT count(*) FROM big$q$, cleanup => 'SELECT 1 /* ' || repeat('c', 1048576) || ' */')
@@ huge-statement 22023
{RUN}($q$SELECT count(*) FROM big$q$, label => repeat('l', 1048576))

@@ cleanup-variants 22023
{RUN}($q$SELECT count(*) FROM big$q$, cleanup => '')
@@ cleanup-variants 22023
{RUN}($q$SELECT count(*) FROM big$q$, cleanup => '   ')
@@ cleanup-variants 22023
{RUN}($q$SELECT count(*) FROM big$q$, cleanup => '-- none')
@@ cleanup-variants 42601
{RUN}($q$SELECT count(*) FROM big$q$, cleanup => 'DROP TABL x')
@@ cleanup-variants 42601
{SUB}($q$SELECT count(*) FROM big$q$, cleanup => 'DROP TABL x')
@@ cleanup-variants OK
{RUN}($q$SELECT count(*) FROM big$q$, cleanup => NULL)
@@ cleanup-variants OK
{RUN}($q$SELECT count(*) FROM big$q$, cleanup => 'SELECT 1/0')
@@ cleanup-variants 22012
{RUN}($q$SELECT count(*) FROM big WHERE 1/(id - id) = 0$q$, cleanup => 'SELECT 1/0')
@@ cleanup-variants 42P01
{RUN}($q$SELECT count(*) FROM big WHERE 1/(id - id) = 0$q$, cleanup => 'DROP TABLE no_such_table')
@@ cleanup-variants 22012
{RUN}($q$SELECT count(*) FROM big WHERE 1/(id - id) = 0$q$, cleanup => 'DROP TABLE IF EXISTS no_such_table')
@@ cleanup-variants 57P01|08006|22012
{RUN}($q$SELECT count(*) FROM big WHERE 1/(id - id) = 0$q$, cleanup => 'SELECT pg_terminate_backend(pg_backend_pid())')
@@ cleanup-variants 57014|22012
{RUN}($q$SELECT count(*) FROM big WHERE 1/(id - id) = 0$q$, cleanup => 'SELECT pg_cancel_backend(pg_backend_pid())')
@@ cleanup-variants 53G01
-- hog 7
{RUN}($q$SELECT count(*) FROM big$q$, cleanup => 'INSERT INTO cleanup_log VALUES (1)', max_attempts => 3, retry_delay => '10 ms', wait_for_slots => false)
@@ cleanup-variants 53G01
-- hog 7
{RUN}($q$SELECT count(*) FROM big$q$, cleanup => 'SELECT count(*) FROM big', max_attempts => 2, retry_delay => '0', wait_for_slots => false)
@@ cleanup-variants 42P01
-- hog 7
{RUN}($q$SELECT count(*) FROM big$q$, cleanup => 'DROP TABLE no_such_table', max_attempts => 2, retry_delay => '0', wait_for_slots => false)

@@ caller-context OK
BEGIN;
{RUN}($q$SELECT count(*) FROM big$q$);
ROLLBACK
@@ caller-context OK
BEGIN ISOLATION LEVEL SERIALIZABLE;
{RUN}($q$CREATE TABLE ser_{N} AS SELECT count(*) FROM big$q$);
COMMIT
@@ caller-context 25006
BEGIN READ ONLY;
{RUN}($q$SELECT count(*) FROM big$q$)
@@ caller-context 25006
SET default_transaction_read_only = on;
{SUB}($q$SELECT count(*) FROM big$q$)
@@ caller-context 40P01
BEGIN;
LOCK TABLE big IN ACCESS EXCLUSIVE MODE;
{RUN}($q$SELECT count(*) FROM big$q$)
@@ caller-context 40P01
SET statement_timeout = '5s';
BEGIN;
LOCK TABLE big IN ACCESS EXCLUSIVE MODE;
SELECT status FROM parallel_guarantee_wait(submit_parallel_guarantee($q$SELECT count(*) FROM big$q$))
@@ caller-context OK
DO $$ BEGIN PERFORM run_with_parallel_guarantee($q$SELECT count(*) FROM big$q$); END $$
@@ caller-context OK
-- continue
DO $$ BEGIN FOR i IN 1..20 LOOP BEGIN PERFORM run_with_parallel_guarantee($q$SELECT count(*) FROM no_such_table$q$); EXCEPTION WHEN OTHERS THEN NULL; END; END LOOP; END $$;
SELECT 'FINAL-' || CASE WHEN status = 'target_met' THEN 'OK' ELSE status END FROM run_with_parallel_guarantee($q$SELECT count(*) FROM big$q$)
@@ caller-context OK
-- continue
SET statement_timeout = '300ms';
SELECT status FROM run_with_parallel_guarantee($q$SELECT count(*) FROM big WHERE pg_sleep(0.01 + id * 0) IS NOT NULL$q$);
RESET statement_timeout;
SELECT 'FINAL-' || CASE WHEN status = 'target_met' THEN 'OK' ELSE status END FROM run_with_parallel_guarantee($q$SELECT count(*) FROM big$q$)
@@ caller-context OK
SELECT count(*) FROM (SELECT run_with_parallel_guarantee($q$SELECT count(*) FROM big$q$) FROM generate_series(1, 3)) s
@@ caller-context OK
SELECT (run_with_parallel_guarantee($q$SELECT count(*) FROM big$q$)).status, (submit_parallel_guarantee($q$SELECT count(*) FROM big$q$)) > 0
@@ caller-context OK
BEGIN;
DECLARE c CURSOR FOR SELECT * FROM run_with_parallel_guarantee($q$SELECT count(*) FROM big$q$);
FETCH c;
COMMIT
@@ caller-context OK
WITH r AS (SELECT * FROM run_with_parallel_guarantee($q$SELECT count(*) FROM big$q$)) SELECT status FROM r
@@ caller-context OK
SELECT wrapper_sql()
@@ caller-context 42501
CREATE MATERIALIZED VIEW mv_{N} AS SELECT (run_with_parallel_guarantee($q$SELECT count(*) FROM big$q$)).status
@@ caller-context 42501
CREATE MATERIALIZED VIEW mv_{N} AS SELECT submit_parallel_guarantee($q$SELECT count(*) FROM big$q$)
@@ caller-context 53G01
SET max_parallel_workers = 0;
{RUN}($q$SELECT count(*) FROM big$q$, max_attempts => 2, retry_delay => '10 ms')
@@ caller-context OK
SET max_parallel_workers_per_gather = 0;
{RUN}($q$SELECT count(*) FROM big$q$)
@@ caller-context OK
SET parallel_leader_participation = off;
{RUN}($q$SELECT count(*) FROM big$q$)
@@ caller-context OK
SET force_parallel_mode = on;
{RUN}($q$SELECT count(*) FROM big$q$)
@@ caller-context 53G03
SET force_parallel_mode = regress;
{RUN}($q$SELECT 1$q$)
@@ caller-context 42P01
SET search_path = '';
SELECT status FROM parallel_guarantee.run_with_parallel_guarantee($q$SELECT count(*) FROM big$q$)
@@ caller-context 42883
SET search_path = '';
{RUN}($q$SELECT count(*) FROM big$q$)
@@ caller-context OK
SET search_path = pg_catalog, public, parallel_guarantee;
SET work_mem = '64kB';
SET myapp.batch_id = 'x';
SET default_transaction_isolation = 'serializable';
SET session_replication_role = replica;
SET lock_timeout = '1ms';
{RUN}($q$SELECT count(*) FROM big WHERE current_setting('myapp.batch_id') = 'x'$q$)
@@ caller-context OK
SET parallel_guarantee.log_attempts = off;
SET parallel_guarantee.history_days = 0;
{RUN}($q$SELECT count(*) FROM big$q$)
@@# plain has no USAGE on the schema: qualified names are refused (42501), unqualified
@@# ones are not found (the schema drops out of its search_path: 42883).
@@ caller-context 42883
SET SESSION AUTHORIZATION plain;
{RUN}($q$SELECT count(*) FROM big$q$)
@@ caller-context 42501
SET SESSION AUTHORIZATION plain;
SELECT status FROM parallel_guarantee.run_with_parallel_guarantee($q$SELECT count(*) FROM big$q$)
@@ caller-context 42501
SET ROLE plain;
SELECT parallel_guarantee.run_with_parallel_guarantee($q$SELECT count(*) FROM big$q$)
@@ caller-context 42501
SET ROLE plain;
SELECT parallel_guarantee.submit_parallel_guarantee($q$SELECT count(*) FROM big$q$)
@@ caller-context 42501
SET ROLE plain;
SELECT count(*) FROM parallel_guarantee.parallel_guarantee_runs
@@ caller-context 42501
SET ROLE plain;
SELECT * FROM parallel_guarantee.parallel_guarantee_cancel_runs(NULL, NULL, NULL)
@@ caller-context 42501
SET ROLE plain;
SELECT parallel_guarantee.parallel_guarantee_status(1)
@@ caller-context 42883
SET ROLE plain;
SELECT parallel_guarantee_cancel(1)


@@# ---------------------------------------------------------------- chunked batches
@@# run_in_chunks, submit_chunks, resume_chunks and the chunk status / wait / cancel.  NULLs
@@# in every position, extreme numbers, labels and run ids are generated in bad_input.sh.
@@# The cases after "fixed:" were defects this corpus found (misleading messages, rows
@@# changed twice, keys that could not be read back, $1 only in a comment, run id 0).

@@ chunk-empty 22023
{CHUNKS}($q$$q$, {ACTION})
@@ chunk-empty 22023
{CHUNKS}($q$   $q$, {ACTION})
@@ chunk-empty 22023
{CHUNKS}(E'\t\n\r ', {ACTION})
@@ chunk-empty 22023
{CHUNKS}($q$-- only a comment$q$, {ACTION})
@@ chunk-empty 22023
{CHUNKS}($q$/* only a comment */$q$, {ACTION})
@@ chunk-empty 22023
{CHUNKS}($q$ ; ;; ;$q$, {ACTION})
@@ chunk-empty 22023
{CHUNKS}({KEYS}, $a$$a$)
@@ chunk-empty 22023
{CHUNKS}({KEYS}, $a$   $a$)
@@ chunk-empty 22023
{CHUNKS}({KEYS}, E'\n-- nothing\n')
@@ chunk-empty 22023
{CHUNKS}({KEYS}, $a$/* only a comment */ ;$a$)
@@ chunk-empty 22023
{SUBCHUNKS}($q$$q$, {ACTION})
@@ chunk-empty 22023
{SUBCHUNKS}({KEYS}, $a$ ; $a$)

@@ chunk-syntax 42601
{CHUNKS}($q$SELEC id FROM tiny$q$, {ACTION})
@@ chunk-syntax 42601
{CHUNKS}($q$SELECT ($q$, {ACTION})
@@ chunk-syntax 42601
{CHUNKS}($q$SELECT id FROM tiny WHERE$q$, {ACTION})
@@ chunk-syntax 42601
{CHUNKS}($q$SELECT 'unterminated$q$, {ACTION})
@@ chunk-syntax 42601
{CHUNKS}($q$/* unterminated comment$q$, {ACTION})
@@ chunk-syntax 42601
{CHUNKS}({KEYS}, $a$UPDAT chunk_hits SET hits = 1 WHERE id = ANY ($1)$a$)
@@ chunk-syntax 42601
{CHUNKS}({KEYS}, $a$SELECT 'unterminated $1$a$)
@@ chunk-syntax 42601
{SUBCHUNKS}($q$SELEC id FROM tiny$q$, {ACTION})
@@ chunk-syntax 42601
{SUBCHUNKS}({KEYS}, $a$UPDATE chunk_hits SET WHERE id = ANY ($1)$a$)

@@# Keys queries that are not a SELECT: refused before anything runs.
@@ chunk-keys-not-select 22023
{CHUNKS}($q$INSERT INTO chunk_hits VALUES (5000) RETURNING id$q$, {ACTION})
@@ chunk-keys-not-select 22023
{CHUNKS}($q$INSERT INTO chunk_hits VALUES (5001)$q$, {ACTION})
@@ chunk-keys-not-select 22023
{CHUNKS}($q$UPDATE chunk_hits SET hits = hits RETURNING id$q$, {ACTION})
@@ chunk-keys-not-select 22023
{CHUNKS}($q$DELETE FROM chunk_hits RETURNING id$q$, {ACTION})
@@ chunk-keys-not-select 22023
{CHUNKS}($q$DO $$ BEGIN PERFORM count(*) FROM tiny; END $$$q$, {ACTION})
@@ chunk-keys-not-select 22023
{CHUNKS}($q$SHOW work_mem$q$, {ACTION})
@@ chunk-keys-not-select 22023
{CHUNKS}($q$EXPLAIN SELECT id FROM tiny$q$, {ACTION})
@@ chunk-keys-not-select 22023
{CHUNKS}($q$CALL proc_query()$q$, {ACTION})
@@ chunk-keys-not-select 0A000
{CHUNKS}($q$VACUUM tiny$q$, {ACTION})
@@ chunk-keys-not-select 22023
{CHUNKS}($q$TRUNCATE chunk_hits$q$, {ACTION})
@@ chunk-keys-not-select 22023
{CHUNKS}($q$DROP TABLE chunk_hits$q$, {ACTION})
@@ chunk-keys-not-select 0A000
{CHUNKS}($q$COPY tiny TO STDOUT$q$, {ACTION})
@@ chunk-keys-not-select 0A000
{CHUNKS}($q$COPY (SELECT id FROM tiny) TO STDOUT$q$, {ACTION})
@@ chunk-keys-not-select 0A000
{CHUNKS}($q$LISTEN ch$q$, {ACTION})
@@ chunk-keys-not-select 0A000
{CHUNKS}($q$SET work_mem = '1GB'$q$, {ACTION})
@@ chunk-keys-not-select 0A000
{CHUNKS}($q$RESET ALL$q$, {ACTION})
@@ chunk-keys-not-select 0A000
{CHUNKS}($q$BEGIN$q$, {ACTION})
@@ chunk-keys-not-select 0A000
{CHUNKS}($q$COMMIT$q$, {ACTION})
@@ chunk-keys-not-select 0A000
{CHUNKS}($q$SAVEPOINT s$q$, {ACTION})
@@ chunk-keys-not-select 0A000
{CHUNKS}($q$SELECT id FROM tiny; SELECT id FROM tiny$q$, {ACTION})
@@ chunk-keys-not-select 0A000
{CHUNKS}($q$SELECT id FROM tiny; DELETE FROM chunk_hits$q$, {ACTION})
@@ chunk-keys-not-select 0A000
{CHUNKS}($q$PREPARE p AS SELECT id FROM tiny$q$, {ACTION})
@@ chunk-keys-not-select 0A000
PREPARE p AS SELECT id FROM tiny;
{CHUNKS}($q$EXECUTE p$q$, {ACTION})
@@ chunk-keys-not-select 0A000
{CHUNKS}($q$DECLARE c CURSOR FOR SELECT id FROM tiny$q$, {ACTION})
@@ chunk-keys-not-select 0A000
{CHUNKS}($q$CREATE TEMP TABLE t_{N} AS SELECT id FROM tiny$q$, {ACTION})
@@ chunk-keys-not-select 22023
{SUBCHUNKS}($q$INSERT INTO chunk_hits VALUES (5002) RETURNING id$q$, {ACTION})
@@ chunk-keys-not-select 0A000
{SUBCHUNKS}($q$SELECT 1; SELECT 2$q$, {ACTION})
@@ chunk-keys-not-select 0A000
{SUBCHUNKS}($q$LISTEN ch$q$, {ACTION})
@@ chunk-keys-not-select OK
{CHUNKS}($q$SELECT id FROM tiny;$q$, {ACTION})
@@ chunk-keys-not-select OK
{CHUNKS}($q$;;SELECT id FROM tiny;;$q$, {ACTION})
@@ chunk-keys-not-select OK
{CHUNKS}($q$VALUES (1), (2), (3)$q$, {ACTION})
@@ chunk-keys-not-select OK
{CHUNKS}($q$TABLE tiny$q$, {ACTION})

@@# Keys queries of the wrong shape: two or zero columns, NULL keys, a key twice, a key type
@@# that has no array type or no binary output.  The worker refuses them before any chunk.
@@ chunk-keys-shape 22023
{CHUNKS}($q$SELECT id, pad FROM small$q$, {ACTION})
@@ chunk-keys-shape 22023
{CHUNKS}($q$SELECT id, id FROM tiny$q$, {ACTION})
@@ chunk-keys-shape 22023
{CHUNKS}($q$SELECT FROM tiny$q$, {ACTION})
@@ chunk-keys-shape 22004
{CHUNKS}($q$SELECT NULL::int FROM tiny$q$, {ACTION})
@@ chunk-keys-shape 22004
{CHUNKS}($q$SELECT id FROM tiny UNION ALL SELECT NULL$q$, {ACTION})
@@ chunk-keys-shape 22004
{CHUNKS}($q$SELECT NULL::text$q$, {ACTION})
@@ chunk-keys-shape 23505
{CHUNKS}($q$SELECT id FROM tiny UNION ALL SELECT 1$q$, {ACTION})
@@ chunk-keys-shape 23505
{CHUNKS}($q$SELECT id % 10 FROM tiny$q$, {ACTION})
@@ chunk-keys-shape 23505
{CHUNKS}($q$SELECT pad FROM small$q$, $a$UPDATE small SET pad = pad WHERE pad = ANY ($1)$a$)
@@ chunk-keys-shape 23505
{CHUNKS}($q$SELECT 'a' UNION ALL SELECT 'b' UNION ALL SELECT 'a'$q$, $a$SELECT $1$a$)
@@ chunk-keys-shape 23505
{CHUNKS}($q$SELECT 'NaN'::float8 UNION ALL SELECT 'NaN'::float8$q$, $a$SELECT $1$a$)
@@ chunk-keys-shape 42804
{CHUNKS}($q$SELECT ev_action FROM pg_rewrite LIMIT 3$q$, $a$SELECT $1$a$)
@@ chunk-keys-shape 42804
{CHUNKS}($q$SELECT pg_sleep(0)$q$, $a$SELECT $1$a$)
@@ chunk-keys-shape 42804
{CHUNKS}($q$SELECT ARRAY[id] FROM tiny$q$, $a$SELECT $1$a$)
@@ chunk-keys-shape 42883
{CHUNKS}($q$SELECT makeaclitem('postgres'::regrole, 'postgres'::regrole, 'SELECT', false)$q$, $a$SELECT $1$a$)
@@ chunk-keys-shape 42P01
{CHUNKS}($q$SELECT id FROM no_such_table$q$, {ACTION})
@@ chunk-keys-shape 22012
{CHUNKS}($q$SELECT 1/(id - id) FROM tiny$q$, {ACTION})
@@ chunk-keys-shape 42P02
{CHUNKS}($q$SELECT $1$q$, {ACTION})
@@ chunk-keys-shape 42704
{CHUNKS}($q$SELECT current_setting('no.such_setting')$q$, $a$SELECT $1$a$)
@@ chunk-keys-shape OK
{CHUNKS}($q$SELECT id FROM tiny WHERE false$q$, {ACTION})
@@ chunk-keys-shape OK
{CHUNKS}($q$SELECT pad || id FROM small$q$, $a$SELECT count(*) FROM small WHERE pad || id = ANY ($1)$a$)
@@ chunk-keys-shape 22023
SELECT submit_chunks($q$SELECT id, pad FROM small$q$, {ACTION}) AS id \gset
SELECT coalesce(sqlstate, status) AS sqlstate FROM parallel_guarantee_wait(:id, '20 s') \gset
SELECT raise_state(:'sqlstate')
@@ chunk-keys-shape 22004
SELECT submit_chunks($q$SELECT NULL::int FROM tiny$q$, {ACTION}) AS id \gset
SELECT coalesce(sqlstate, status) AS sqlstate FROM parallel_guarantee_wait(:id, '20 s') \gset
SELECT raise_state(:'sqlstate')
@@ chunk-keys-shape 23505
SELECT submit_chunks($q$SELECT id % 10 FROM tiny$q$, {ACTION}) AS id \gset
SELECT coalesce(sqlstate, status) AS sqlstate FROM parallel_guarantee_wait(:id, '20 s') \gset
SELECT raise_state(:'sqlstate')
@@ chunk-keys-shape 42804
SELECT submit_chunks($q$SELECT pg_sleep(0)$q$, $a$SELECT $1$a$) AS id \gset
SELECT coalesce(sqlstate, status) AS sqlstate FROM parallel_guarantee_wait(:id, '20 s') \gset
SELECT raise_state(:'sqlstate')
@@ chunk-keys-shape 42P01
SELECT submit_chunks($q$SELECT id FROM no_such_table$q$, {ACTION}) AS id \gset
SELECT coalesce(sqlstate, status) AS sqlstate FROM parallel_guarantee_wait(:id, '20 s') \gset
SELECT raise_state(:'sqlstate')

@@# Actions: without $1, with $2, several statements, transaction control, a missing table.
@@ chunk-action 22023
{CHUNKS}({KEYS}, $a$UPDATE chunk_hits SET hits = hits + 1$a$)
@@ chunk-action 22023
{CHUNKS}({KEYS}, $a$SELECT 1$a$)
@@ chunk-action 22023
{CHUNKS}({KEYS}, $a$UPDATE chunk_hits SET hits = hits + 1 WHERE id = ANY ($2)$a$)
@@ chunk-action 22023
{CHUNKS}({KEYS}, $a$SELECT $0$a$)
@@ chunk-action 22023
{CHUNKS}({KEYS}, $a$DO $$ BEGIN COMMIT; END $$$a$)
@@ chunk-action 0A000
{CHUNKS}({KEYS}, $a$VACUUM tiny$a$)
@@ chunk-action 22023
{SUBCHUNKS}({KEYS}, $a$UPDATE chunk_hits SET hits = hits + 1$a$)
@@ chunk-action 22023
{CHUNKS}({KEYS}, $a$UPDATE chunk_hits SET hits = hits + 1 WHERE id = ANY ($1) AND id <> $2$a$, max_retries => 0)
@@ chunk-action 0A000
{CHUNKS}({KEYS}, $a$UPDATE chunk_hits SET hits = hits + 1 WHERE id = ANY ($1); SELECT 1$a$)
@@ chunk-action 0A000
{CHUNKS}({KEYS}, $a$SELECT $1; SELECT $1$a$)
@@ chunk-action 0A000
{CHUNKS}({KEYS}, $a$UPDATE chunk_hits SET hits = hits + 1 WHERE id = ANY ($1); COMMIT$a$)
@@ chunk-action 0A000
{SUBCHUNKS}({KEYS}, $a$SELECT $1; SELECT $1$a$)
@@ chunk-action 0A000
{CHUNKS}({KEYS}, $a$COMMIT$a$)
@@ chunk-action 0A000
{CHUNKS}({KEYS}, $a$BEGIN$a$)
@@ chunk-action 0A000
{CHUNKS}({KEYS}, $a$ROLLBACK$a$)
@@ chunk-action 0A000
{CHUNKS}({KEYS}, $a$SAVEPOINT s$a$)
@@ chunk-action 0A000
{CHUNKS}({KEYS}, $a$COMMIT AND CHAIN$a$)
@@ chunk-action 0A000
{CHUNKS}({KEYS}, $a$PREPARE TRANSACTION 'x'$a$)
@@ chunk-action 0A000
{CHUNKS}({KEYS}, $a$LISTEN ch$a$)
@@ chunk-action 0A000
{CHUNKS}({KEYS}, $a$SET work_mem = '1GB'$a$)
@@ chunk-action 0A000
{CHUNKS}({KEYS}, $a$DISCARD ALL$a$)
@@ chunk-action 0A000
{CHUNKS}({KEYS}, $a$COPY (SELECT $1) TO STDOUT$a$)
@@ chunk-action 2D000
{CHUNKS}({KEYS}, $a$CALL chunk_commit($1)$a$, max_retries => 0)
@@ chunk-action 25001
{CHUNKS}({KEYS}, $a$SELECT chunk_vacuum($1)$a$, max_retries => 0)
@@ chunk-action 42P01
{CHUNKS}({KEYS}, $a$UPDATE no_such_table SET hits = 1 WHERE id = ANY ($1)$a$)
@@ chunk-action 42P01
{CHUNKS}({KEYS}, $a$SELECT count(*) FROM no_such_table WHERE id = ANY ($1)$a$, max_retries => 0, max_skipped => 0)
@@ chunk-action 42883
{CHUNKS}({KEYS}, $a$SELECT id FROM tiny WHERE id = $1$a$, max_retries => 0)
@@ chunk-action 22012
{CHUNKS}({KEYS}, $a$SELECT count(*) FROM unnest($1) k WHERE 1/(k - 500) IS NOT NULL$a$, chunk_size => 100, max_retries => 1)
@@ chunk-action OK
{CHUNKS}({KEYS}, $a$SELECT count(*) FROM unnest($1) k WHERE 1/(k - 500) IS NOT NULL$a$, chunk_size => 100, max_retries => 0, max_skipped => 1)
@@ chunk-action 57P01|08006
{CHUNKS}({KEYS}, $a$SELECT pg_terminate_backend(pg_backend_pid()) WHERE $1 IS NOT NULL$a$, max_retries => 0)
@@ chunk-action 57014
{CHUNKS}({KEYS}, $a$SELECT pg_cancel_backend(pg_backend_pid()), pg_sleep(5) WHERE $1 IS NOT NULL$a$, max_retries => 0)
@@ chunk-action 57014
SET statement_timeout = '500ms';
{CHUNKS}({KEYS}, $a$SELECT pg_sleep(0.2) WHERE $1 IS NOT NULL$a$, chunk_size => 100)
@@ chunk-action 42P01
SELECT submit_chunks({KEYS}, $a$UPDATE no_such_table SET hits = 1 WHERE id = ANY ($1)$a$) AS id \gset
SELECT coalesce(sqlstate, status) AS sqlstate FROM parallel_guarantee_wait(:id, '20 s') \gset
SELECT raise_state(:'sqlstate')
@@ chunk-action 2D000
SELECT submit_chunks({KEYS}, $a$CALL chunk_commit($1)$a$, max_retries => 0) AS id \gset
SELECT coalesce(sqlstate, status) AS sqlstate FROM parallel_guarantee_wait(:id, '20 s') \gset
SELECT raise_state(:'sqlstate')

@@# A chunked run inside a chunked or guaranteed one, and the other way round.
@@ chunk-recursion 0A000
{CHUNKS}({KEYS}, $a$SELECT run_in_chunks('SELECT id FROM tiny', 'SELECT $1') WHERE $1 IS NOT NULL$a$, max_retries => 0)
@@ chunk-recursion 0A000
{CHUNKS}({KEYS}, $a$SELECT count(*) FROM run_in_chunks('SELECT id FROM tiny', 'SELECT $1') WHERE $1 IS NOT NULL$a$)
@@ chunk-recursion 0A000
{CHUNKS}({KEYS}, $a$SELECT submit_chunks('SELECT id FROM tiny', 'SELECT $1') WHERE $1 IS NOT NULL$a$, max_retries => 0)
@@ chunk-recursion 0A000
{CHUNKS}({KEYS}, $a$SELECT resume_chunks(1) WHERE $1 IS NOT NULL$a$, max_retries => 0)
@@ chunk-recursion 0A000
{CHUNKS}({KEYS}, $a$SELECT run_with_parallel_guarantee('SELECT count(*) FROM big') WHERE $1 IS NOT NULL$a$, max_retries => 0)
@@ chunk-recursion 0A000
{CHUNKS}({KEYS}, $a$SELECT submit_parallel_guarantee('SELECT count(*) FROM big') WHERE $1 IS NOT NULL$a$, max_retries => 0)
@@ chunk-recursion 0A000
{CHUNKS}($q$SELECT run_id FROM run_in_chunks('SELECT id FROM tiny', 'SELECT $1')$q$, $a$SELECT $1$a$)
@@ chunk-recursion 0A000
{CHUNKS}($q$SELECT (run_with_parallel_guarantee('SELECT count(*) FROM big')).run_id$q$, $a$SELECT $1$a$)
@@ chunk-recursion 0A000
{CHUNKS}($q$SELECT submit_chunks('SELECT id FROM tiny', 'SELECT $1')$q$, $a$SELECT $1$a$)
@@ chunk-recursion 0A000
{CHUNKS}($q$SELECT lying_chunks()$q$, $a$SELECT $1$a$)
@@ chunk-recursion 0A000|53G04
{RUN}($q$SELECT run_in_chunks('SELECT id FROM tiny', 'SELECT $1')$q$)
@@ chunk-recursion 0A000
{RUN}($q$DO $$ BEGIN PERFORM count(*) FROM big; PERFORM run_in_chunks('SELECT id FROM tiny', 'SELECT $1'); END $$$q$)
@@ chunk-recursion 0A000
{RUN}($q$DO $$ BEGIN PERFORM count(*) FROM big; PERFORM resume_chunks(1); END $$$q$)
@@ chunk-recursion 0A000
{RUN}($q$SELECT count(*) FROM big WHERE 1/(id - id) = 0$q$, cleanup => $q$SELECT run_in_chunks('SELECT id FROM tiny', 'SELECT $1')$q$)
@@ chunk-recursion 0A000|25000|53G04
{RUN}($q$SELECT count(*) FROM big WHERE lying_chunks() IS NOT NULL$q$, target_workers => 2, min_workers => 2)
@@ chunk-recursion 25000|0A000
SET max_parallel_workers_per_gather = 2;
SELECT count(*) FROM small WHERE lying_chunks() IS NOT NULL
@@ chunk-recursion 25000|0A000
SET max_parallel_workers_per_gather = 2;
SELECT count(*) FROM small WHERE lying_submit_chunks() IS NOT NULL
@@ chunk-recursion 0A000
SELECT submit_chunks({KEYS}, $a$SELECT run_in_chunks('SELECT id FROM tiny', 'SELECT $1') WHERE $1 IS NOT NULL$a$, max_retries => 0) AS id \gset
SELECT coalesce(sqlstate, status) AS sqlstate FROM parallel_guarantee_wait(:id, '20 s') \gset
SELECT raise_state(:'sqlstate')

@@# Resuming, waiting on and cancelling runs in progress (run ids that do not exist are generated).
@@ chunk-resume 55006
SELECT submit_chunks({KEYS}, $a$SELECT pg_sleep(0.2) WHERE $1 IS NOT NULL$a$, chunk_size => 100) AS id \gset
SELECT status FROM resume_chunks(:id)
@@ chunk-resume OK
SELECT submit_chunks({KEYS}, $a$SELECT pg_sleep(0.2) WHERE $1 IS NOT NULL$a$, chunk_size => 100) AS id \gset
SELECT CASE WHEN status = 'running' THEN 1 ELSE 1 / (random() * 0)::int END FROM parallel_guarantee_wait(:id, '100 ms')
@@ chunk-resume OK
-- continue
SELECT submit_chunks({KEYS}, $a$SELECT pg_sleep(0.2) WHERE $1 IS NOT NULL$a$, chunk_size => 100) AS id \gset
SELECT bi_chunks_started(:id);
SELECT parallel_guarantee_cancel(:id);
SELECT status FROM parallel_guarantee_wait(:id, '20 s');
SELECT 'FINAL-' || CASE WHEN status = 'done' THEN 'OK' ELSE status END FROM resume_chunks(:id)
@@# A done run: resume_chunks returns its row, and nothing runs (the run's finish time stays).
@@ chunk-resume OK
SELECT run_id FROM run_in_chunks({KEYS}, {ACTION}) \gset
SELECT finished_at AS fin FROM parallel_guarantee_chunk_runs WHERE run_id = :run_id \gset
SELECT status AS st, chunks_done AS cd, chunks_total AS ct, run_id AS rid FROM resume_chunks(:run_id) \gset
SELECT CASE WHEN :'st' = 'done' AND :cd = :ct AND :ct = 1 AND :rid = :run_id AND finished_at = :'fin' THEN 1 ELSE 1 / (random() * 0)::int END
  FROM parallel_guarantee_chunk_runs WHERE run_id = :run_id
@@ chunk-resume OK
SELECT submit_chunks({KEYS}, {ACTION}) AS id \gset
SELECT status FROM parallel_guarantee_wait(:id, '20 s');
SELECT CASE WHEN status = 'done' THEN 1 ELSE 1 / (random() * 0)::int END FROM resume_chunks(:id)
@@ chunk-resume OK
SELECT submit_chunks({KEYS}, $a$SELECT pg_sleep(0.1) WHERE $1 IS NOT NULL$a$, chunk_size => 100) AS id \gset
SELECT parallel_guarantee_cancel(:id)
@@# wait and status answer for a chunked run in progress as for any run.
@@ chunk-resume OK
SELECT submit_chunks({KEYS}, $a$SELECT pg_sleep(0.1) WHERE $1 IS NOT NULL$a$, chunk_size => 100) AS id \gset
SELECT CASE WHEN w.kind = 'chunked' AND w.status IN ('running', 'done') THEN 1 ELSE 1 / (random() * 0)::int END FROM parallel_guarantee_wait(:id, '1 s') w

@@ chunk-caller-context OK
BEGIN;
{CHUNKS}({KEYS}, {ACTION});
ROLLBACK
@@ chunk-caller-context 25006
BEGIN READ ONLY;
{CHUNKS}({KEYS}, {ACTION})
@@ chunk-caller-context 25006
SET default_transaction_read_only = on;
{SUBCHUNKS}({KEYS}, {ACTION})
@@ chunk-caller-context 40P01
BEGIN;
LOCK TABLE chunk_hits IN ACCESS EXCLUSIVE MODE;
{CHUNKS}({KEYS}, {ACTION})
@@ chunk-caller-context 40P01
BEGIN;
LOCK TABLE tiny IN ACCESS EXCLUSIVE MODE;
{CHUNKS}({KEYS}, $a$SELECT $1$a$)
@@ chunk-caller-context 42883
SET ROLE plain;
{CHUNKS}({KEYS}, {ACTION})
@@ chunk-caller-context 42501
SET ROLE plain;
SELECT status FROM parallel_guarantee.run_in_chunks({KEYS}, {ACTION})
@@ chunk-caller-context 42501
SET ROLE plain;
SELECT parallel_guarantee.submit_chunks({KEYS}, {ACTION})
@@ chunk-caller-context 42501
SET ROLE plain;
SELECT status FROM parallel_guarantee.resume_chunks(1)
@@ chunk-caller-context 42501
SET ROLE plain;
SELECT count(*) FROM parallel_guarantee.parallel_guarantee_chunks
@@ chunk-caller-context 42501
CREATE MATERIALIZED VIEW mv_{N} AS SELECT (run_in_chunks({KEYS}, {ACTION})).status
@@ chunk-caller-context 42501
CREATE MATERIALIZED VIEW mv_{N} AS SELECT submit_chunks({KEYS}, {ACTION})
@@ chunk-caller-context OK
DO $$ BEGIN PERFORM run_in_chunks($q$SELECT id FROM tiny$q$, $a$UPDATE chunk_hits SET hits = hits + 1 WHERE id = ANY ($1)$a$); END $$
@@ chunk-caller-context OK
-- continue
DO $$ BEGIN FOR i IN 1..20 LOOP BEGIN PERFORM run_in_chunks($q$SELECT id FROM no_such_table$q$, $a$SELECT $1$a$); EXCEPTION WHEN OTHERS THEN NULL; END; END LOOP; END $$;
SELECT 'FINAL-' || CASE WHEN status = 'done' THEN 'OK' ELSE status END FROM run_in_chunks({KEYS}, {ACTION})
@@ chunk-caller-context OK
SELECT (run_in_chunks({KEYS}, {ACTION})).status, submit_chunks({KEYS}, {ACTION}) > 0
@@ chunk-caller-context OK
SELECT count(*) FROM (SELECT run_in_chunks({KEYS}, {ACTION}) FROM generate_series(1, 3)) s
@@ chunk-caller-context OK
WITH r AS (SELECT * FROM run_in_chunks({KEYS}, {ACTION})) SELECT status FROM r
@@ chunk-caller-context OK
SET search_path = pg_catalog, public, parallel_guarantee;
SET DateStyle = 'SQL, DMY';
SET extra_float_digits = -15;
SET work_mem = '64kB';
{CHUNKS}($q$SELECT id::float8 / 7 FROM tiny$q$, $a$SELECT count(*) FROM unnest($1) k WHERE k > 0$a$, chunk_size => 100)

@@ chunk-invalid-encoding 22021
{CHUNKS}(convert_from('\xff'::bytea, 'UTF8'), {ACTION})
@@ chunk-invalid-encoding 22021
{CHUNKS}(E'SELECT \xc3\x28', {ACTION})
@@ chunk-invalid-encoding 22021
{CHUNKS}({KEYS}, convert_from('\xff'::bytea, 'UTF8'))
@@ chunk-invalid-encoding 22021
{CHUNKS}({KEYS}, {ACTION}, label => convert_from('\xfeff'::bytea, 'UTF8'))
@@ chunk-invalid-encoding 22021
{SUBCHUNKS}(E'SELECT \xff', {ACTION})
@@ chunk-invalid-encoding 54000
{CHUNKS}('SELECT ' || chr(0), {ACTION})

@@ chunk-huge OK
{CHUNKS}('SELECT id FROM tiny /* ' || repeat('x', 1048000) || ' */', {ACTION})
@@ chunk-huge 54000
{CHUNKS}('SELECT id FROM tiny /* ' || repeat('x', 1048576) || ' */', {ACTION})
@@ chunk-huge OK
{CHUNKS}({KEYS}, 'UPDATE chunk_hits SET hits = hits + 1 WHERE id = ANY ($1) /* ' || repeat('x', 1048000) || ' */', chunk_size => 100)
@@ chunk-huge 54000
{CHUNKS}({KEYS}, 'UPDATE chunk_hits SET hits = hits + 1 WHERE id = ANY ($1) /* ' || repeat('x', 1048576) || ' */', chunk_size => 100)
@@ chunk-huge OK
{CHUNKS}($q$SELECT repeat(c, 1000000) FROM (VALUES ('j'), ('k'), ('l')) v(c)$q$, $a$SELECT count(*) FROM unnest($1) k$a$, chunk_size => 1)
@@ chunk-huge 22023
{CHUNKS}({KEYS}, {ACTION}, label => repeat('l', 1048576))
@@ chunk-huge OK
{SUBCHUNKS}('SELECT id FROM tiny /* ' || repeat('x', 1048000) || ' */', {ACTION})
@@ chunk-huge 54000
{SUBCHUNKS}('SELECT id FROM tiny /* ' || repeat('x', 1048576) || ' */', {ACTION})

@@# fixed: keys queries that would lock or change rows, or create a table
@@ chunk-fixed 22023
{CHUNKS}($q$SELECT id FROM tiny FOR UPDATE$q$, {ACTION})
@@ chunk-fixed 22023
{CHUNKS}($q$SELECT id FROM tiny FOR SHARE$q$, {ACTION})
@@ chunk-fixed 22023
{CHUNKS}($q$WITH d AS (DELETE FROM chunk_hits WHERE id > 5000 RETURNING id) SELECT id FROM d$q$, {ACTION})
@@ chunk-fixed 22023
{CHUNKS}($q$WITH u AS (UPDATE chunk_hits SET hits = hits RETURNING id) SELECT id FROM u$q$, {ACTION})
@@ chunk-fixed 22023
{CHUNKS}($q$SELECT id INTO keys_copy_{N} FROM tiny$q$, {ACTION})
@@ chunk-fixed 22023
{SUBCHUNKS}($q$SELECT id FROM tiny FOR UPDATE$q$, {ACTION})
@@# fixed: keys equal under the type's equality but stored differently
@@ chunk-fixed 23505
{CHUNKS}($q$SELECT id::numeric FROM tiny WHERE id <= 3 UNION ALL SELECT 1.0$q$, $a$UPDATE chunk_hits SET hits = hits + 1 WHERE id = ANY ($1)$a$, chunk_size => 2)
@@ chunk-fixed 23505
{CHUNKS}($q$SELECT 0::float8 UNION ALL SELECT '-0'::float8$q$, $a$SELECT $1$a$)
@@ chunk-fixed 23505
{CHUNKS}($q$SELECT 'a'::text UNION ALL SELECT 'a'::varchar$q$, $a$SELECT $1$a$)
@@# fixed: anonymous record keys are refused before anything is stored
@@ chunk-fixed 42804
{CHUNKS}($q$SELECT ROW(id, id) FROM tiny$q$, $a$SELECT $1$a$)
@@ chunk-fixed 42804
{CHUNKS}($q$SELECT ROW(id) FROM tiny$q$, $a$SELECT $1$a$)
@@# fixed: $1 must be a real parameter, and the only one
@@ chunk-fixed 22023
{CHUNKS}({KEYS}, $a$SELECT '$1'$a$)
@@ chunk-fixed 22023
{CHUNKS}({KEYS}, $a$SELECT 1 -- $1$a$)
@@ chunk-fixed 22023
{CHUNKS}({KEYS}, $a$SELECT 1 /* $1 */$a$)
@@ chunk-fixed 22023
{CHUNKS}({KEYS}, $a$SELECT $10$a$)
@@ chunk-fixed 22023
{CHUNKS}({KEYS}, $a$SELECT $1, $10$a$)
@@# fixed: run id 0 is never a run in progress
@@ chunk-fixed 42704
SELECT status FROM resume_chunks(0)
@@ chunk-fixed OK
SELECT CASE WHEN parallel_guarantee_wait_for(0, '1 s') AND NOT parallel_guarantee_cancel_run(0) THEN 1 ELSE 1 / (random() * 0)::int END
