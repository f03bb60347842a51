#!/usr/bin/env bash
# Bad input: several hundred argument combinations and statement strings for
# run_with_parallel_guarantee, submit_parallel_guarantee, parallel_guarantee_status / _wait /
# _cancel (of either kind of run) and parallel_guarantee_cancel_runs, and for the chunked
# batches (run_in_chunks, submit_chunks, resume_chunks, parallel_guarantee_chunk_status),
# each in a psql session of its own, on a private cluster.  The extension's schema is on the
# database's search_path (the README's way); a case that holds "-- hog N" runs while another
# session holds N parallel workers (a shortage that lasts over several attempts).  Hand-written
# cases are in test/integration/data/bad_input_cases.sql; NULLs in every position, extreme
# numbers, intervals, labels and run ids are generated here.  For every case the outcome
# (OK or the SQLSTATE), the message and the LOCATION are collected in
# test/out/bad_input/results.tsv.
# Checks: no XX000, no crashed backend, no hang; every error message a sentence without
# internal names; the SQLSTATEs the README documents; invalid UTF-8 refused by PostgreSQL's
# own input functions; a clean server log; the server still answers; nothing left in
# parallel_guarantee_activity and no chunked run still running; the tables the statements
# (and the keys queries) tried to damage are intact.
# Each check prints "ok - ..." or "not ok - ..." and what it found.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
. test/integration/data/tap.sh
# 23 checks, and one per group of cases (38 groups), whether or not its cases ran.
plan 61
PC_NAME=bad_input
PC_PORT=${BAD_INPUT_PORT:-54352}
. "$ROOT/test/integration/data/private_cluster.sh"
DB=badinput
OUT=$PC_DIR
FILES=$PC_DIR/files
CASES_FILE=$ROOT/test/integration/data/bad_input_cases.sql

# check_empty DESCRIPTION LIST: ok when LIST is empty, else prints it.
check_empty() {
  if [ -z "$2" ]; then ok "$1"; else not_ok "$1"; echo "$2" | head -40 | sed 's/^/    /'; fi
}
P() { pc_psql -d "$DB" -tA -q "$@"; }
finish() { pc_stop immediate; }
tap_on_exit finish

if ! pc_init "parallel_guarantee.max_async_runs = 64" "max_locks_per_transaction = 128"; then
  not_ok "setup: the private cluster did not start (log: $PC_LOG)"; exit
fi
mkdir -p "$FILES"; chown postgres: "$FILES"
pc_psql -d postgres -q -c "CREATE DATABASE $DB" >/dev/null || { not_ok "setup: could not create the database $DB"; exit; }
P -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || { not_ok "setup: could not create the extension, tables and functions"; exit; }
CREATE EXTENSION parallel_guarantee;
ALTER DATABASE badinput SET search_path = "$user", public, parallel_guarantee;
SET search_path = "$user", public, parallel_guarantee;
CREATE TABLE big (id int, pad text) WITH (parallel_workers = 4);
INSERT INTO big SELECT g, 'x' FROM generate_series(1, 100000) g;
CREATE TABLE small (id int, pad text) WITH (parallel_workers = 4);
INSERT INTO small SELECT g, 'y' FROM generate_series(1, 1000) g;
CREATE TABLE tiny (id int);
INSERT INTO tiny SELECT generate_series(1, 1000);
VACUUM ANALYZE big, small, tiny;
CREATE TABLE cleanup_log (n int);
-- One row per page: a session scanning it with max_parallel_workers_per_gather = N holds N
-- parallel workers for as long as it runs (the "-- hog N" cases).
CREATE TABLE hog (id int, pad text) WITH (fillfactor = 10, parallel_workers = 8);
INSERT INTO hog SELECT g, repeat('h', 1500) FROM generate_series(1, 64) g;
-- No USAGE on the extension's schema: it may use none of it.
CREATE ROLE plain LOGIN;
-- Infinite recursion, to hit max_stack_depth.
CREATE FUNCTION recurse(n int) RETURNS int LANGUAGE plpgsql AS
  $$ BEGIN RETURN recurse(n + 1); END $$;
CREATE PROCEDURE proc_commit() LANGUAGE plpgsql AS $$ BEGIN PERFORM count(*) FROM big; COMMIT; END $$;
CREATE PROCEDURE proc_query() LANGUAGE plpgsql AS $$ BEGIN PERFORM count(*) FROM big; END $$;
-- Falsely marked PARALLEL SAFE: a parallel worker would call the extension.
CREATE FUNCTION lying_run() RETURNS bigint PARALLEL SAFE LANGUAGE sql AS
  $$ SELECT (run_with_parallel_guarantee('SELECT count(*) FROM big')).run_id $$;
CREATE FUNCTION lying_submit() RETURNS bigint PARALLEL SAFE LANGUAGE sql AS
  $$ SELECT submit_parallel_guarantee('SELECT count(*) FROM big') $$;
CREATE FUNCTION wrapper_sql() RETURNS text LANGUAGE sql AS
  $$ SELECT status FROM run_with_parallel_guarantee('SELECT count(*) FROM big') $$;
-- For the chunked batches: the table the actions change (keys: the ids of tiny), a procedure
-- that commits and a function that runs VACUUM (each called with the chunk's keys), and
-- callers of the chunk functions falsely marked PARALLEL SAFE.
CREATE TABLE chunk_hits (id int PRIMARY KEY, hits int NOT NULL DEFAULT 0);
INSERT INTO chunk_hits (id) SELECT generate_series(1, 1000);
CREATE PROCEDURE chunk_commit(ids int[]) LANGUAGE plpgsql AS
  $$ BEGIN UPDATE chunk_hits SET hits = hits + 1 WHERE id = ANY (ids); COMMIT; END $$;
CREATE FUNCTION chunk_vacuum(ids int[]) RETURNS int LANGUAGE plpgsql AS
  $$ BEGIN EXECUTE 'VACUUM tiny'; RETURN cardinality(ids); END $$;
CREATE FUNCTION lying_chunks() RETURNS bigint PARALLEL SAFE LANGUAGE sql AS
  $$ SELECT (run_in_chunks('SELECT id FROM tiny', 'SELECT $1')).run_id $$;
CREATE FUNCTION lying_submit_chunks() RETURNS bigint PARALLEL SAFE LANGUAGE sql AS
  $$ SELECT submit_chunks('SELECT id FROM tiny', 'SELECT $1') $$;
-- Waits (at most 20 s) until a submitted chunked run has stored its key set, or has ended.
CREATE FUNCTION bi_chunks_started(run bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..400 LOOP
    IF EXISTS (SELECT 1 FROM parallel_guarantee_chunk_runs r
                WHERE r.run_id = run AND (r.chunks_total IS NOT NULL OR r.status <> 'running')) THEN
      RETURN true;
    END IF;
    PERFORM pg_sleep(0.05);
  END LOOP;
  RETURN false;
END $$;
-- The PL/pgSQL loop for the generated cases: each case in a subtransaction, its outcome
-- committed at once (a crash or hang loses nothing before it).
CREATE TABLE bi_cases (n int PRIMARY KEY, sql text NOT NULL);
CREATE TABLE bi_results (n int PRIMARY KEY, code text, msg text, ctx text, ms int);
CREATE PROCEDURE bi_idle() LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..2000 LOOP
    EXIT WHEN NOT EXISTS (SELECT 1 FROM parallel_guarantee_activity);
    PERFORM pg_sleep(0.005);
  END LOOP;
END $$;
CREATE PROCEDURE bi_run(first_n int) LANGUAGE plpgsql AS $$
DECLARE c record; t0 timestamptz; st text; m text; cx text;
BEGIN
  FOR c IN SELECT * FROM bi_cases WHERE n >= first_n ORDER BY n LOOP
    t0 := clock_timestamp(); st := 'OK'; m := ''; cx := '';
    BEGIN
      EXECUTE c.sql;
    EXCEPTION WHEN OTHERS OR query_canceled THEN
      GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT, cx = PG_EXCEPTION_CONTEXT;
    END;
    INSERT INTO bi_results VALUES (c.n, st, left(m, 300), left(cx, 300),
                                   (extract(epoch FROM clock_timestamp() - t0) * 1000)::int);
    COMMIT;
    -- A submitted run still going would hold the workers the next case wants.
    CALL bi_idle();
  END LOOP;
END $$;
-- Raises the SQLSTATE a submitted run recorded (nothing if it recorded none).
CREATE FUNCTION raise_state(s text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  IF s ~ '^[0-9A-Z]{5}$' THEN
    RAISE EXCEPTION 'the submitted run recorded SQLSTATE %', s USING ERRCODE = s;
  END IF;
  RETURN s;
END $$;
SQL
P -c "SET client_min_messages = warning" -c "SELECT run_with_parallel_guarantee('SELECT count(*) FROM big')" >/dev/null
FIRST_ID=$(P -c "SELECT min(run_id) FROM parallel_guarantee_runs WHERE status = 'target_met'")
BIG_BEFORE=$(P -c "SELECT count(*) || '/' || (SELECT count(*) FROM small) || '/' || (SELECT count(*) FROM tiny) FROM big")
# Chunked runs for the run-id cases: one done, one failed (its chunk 5 fails every time), one
# whose keys query failed (an error before any key was stored).
CK_K='$q$SELECT id FROM tiny ORDER BY id$q$'
CK_A='$a$UPDATE chunk_hits SET hits = hits + 1 WHERE id = ANY ($1)$a$'
CK_FAIL='$a$SELECT count(*) FROM unnest($1) k WHERE 1/(k - 500) IS NOT NULL$a$'
CHUNK_DONE=$(P -c "SET client_min_messages = warning" -c "SELECT run_id FROM run_in_chunks($CK_K, $CK_A, chunk_size => 250)")
P -c "SET client_min_messages = warning" -c "SELECT run_in_chunks($CK_K, $CK_FAIL, chunk_size => 100, max_retries => 0)" >/dev/null 2>&1
P -c "SET client_min_messages = warning" -c "SELECT run_in_chunks('SELECT id, id FROM tiny', $CK_A)" >/dev/null 2>&1
CHUNK_FAILED=$(P -c "SELECT max(run_id) FROM parallel_guarantee_chunk_runs WHERE status = 'failed'")
CHUNK_ERROR=$(P -c "SELECT max(run_id) FROM parallel_guarantee_chunk_runs WHERE status = 'error'")
if [ -z "$CHUNK_DONE" ] || [ -z "$CHUNK_FAILED" ] || [ -z "$CHUNK_ERROR" ]; then
  not_ok "setup: could not make the done, failed and error chunked runs (got '$CHUNK_DONE', '$CHUNK_FAILED', '$CHUNK_ERROR')"; exit
fi
HITS_BEFORE=$(P -c "SELECT count(*) FROM chunk_hits")
# Finished runs of another database of the cluster (a guaranteed one and a chunked one):
# their ids are no run of this database.
pc_psql -d postgres -q -c "CREATE DATABASE badother" >/dev/null
pc_psql -d badother -q -v ON_ERROR_STOP=1 >/dev/null 2>&1 <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION parallel_guarantee;
CREATE TABLE t (id int);
INSERT INTO t SELECT generate_series(1, 100);
SQL
OTHER_RUN=$(pc_psql -d badother -tA -q -c "SET client_min_messages = warning" -c "SELECT run_id FROM parallel_guarantee.run_with_parallel_guarantee('SELECT count(*) FROM t', target_workers => 1, min_workers => 0, force_workers => true)")
OTHER_CHUNKS=$(pc_psql -d badother -tA -q -c "SET client_min_messages = warning" -c "SELECT run_id FROM parallel_guarantee.run_in_chunks('SELECT id FROM t', 'UPDATE t SET id = id WHERE id = ANY (\$1)')")
if ! [[ $OTHER_RUN =~ ^[0-9]+$ && $OTHER_CHUNKS =~ ^[0-9]+$ ]]; then
  not_ok "setup: could not make the runs of another database (got '$OTHER_RUN', '$OTHER_CHUNKS')"; exit
fi
# An id no database has given out.
NO_RUN=$((OTHER_CHUNKS + 1000000))
LOG_START=$(stat -c %s "$PC_LOG")

# ---------------------------------------------------------------- the cases
GROUPS_=(); EXPECTS=(); SQLS=(); MODES=()
# add GROUP EXPECTED SQL [MODE]: MODE psql (default) runs the case in a psql session of its
# own; loop runs it in a PL/pgSQL loop (bi_run below) that catches its error.
MODE=psql
add() { GROUPS_+=("$1"); EXPECTS+=("$2"); SQLS+=("$3"); MODES+=("$MODE"); }

# Hand-written cases.
load_cases() {
  local group="" expect="" sql="" line
  while IFS= read -r line || [ -n "$line" ]; do
    if [[ $line == '@@#'* ]]; then continue; fi
    if [[ $line == '@@ '* ]]; then
      [ -n "$group" ] && add "$group" "$expect" "$sql"
      read -r _ group expect <<<"$line"
      sql=""
      continue
    fi
    [ -z "$group" ] && continue
    if [ -z "$sql" ]; then sql=$line; else sql+=$'\n'$line; fi
  done < "$CASES_FILE"
  [ -n "$group" ] && add "$group" "$expect" "$sql"
}
load_cases
NHAND=${#SQLS[@]}

S='$q$SELECT count(*) FROM big$q$'
RUN="SELECT status FROM run_with_parallel_guarantee"
SUB="SELECT 0 < submit_parallel_guarantee"

# The generated cases are single SELECTs: they run in a PL/pgSQL loop, each in a
# subtransaction of its own, committed one by one (many fewer connections).
MODE=loop
# NULL in each position, positionally and by name.
RUN_NAMES=(statement cleanup target_workers min_workers max_attempts retry_delay force_workers raise_on_failure wait_for_slots max_wait priority label)
RUN_VALUES=("$S" "NULL::text" "4" "2" "5" "'10 ms'::interval" "false" "true" "true" "NULL::interval" "0" "NULL::text")
RUN_TYPES=(text text integer integer integer interval boolean boolean boolean interval integer text)
SUB_NAMES=(statement cleanup target_workers min_workers max_attempts retry_delay force_workers wait_for_slots max_wait priority label)
SUB_VALUES=("$S" "NULL::text" "4" "2" "5" "'10 ms'::interval" "false" "true" "NULL::interval" "0" "NULL::text")
SUB_TYPES=(text text integer integer integer interval boolean boolean interval integer text)
null_cases() {  # null_cases FUNCTION CALLPREFIX NAMES VALUES TYPES
  local fn=$1 prefix=$2 i j args named expect
  local -n names=$3 values=$4 types=$5
  for i in "${!names[@]}"; do
    args=""; named="$S"
    for j in "${!names[@]}"; do
      if [ "$i" = "$j" ]; then args+="${args:+, }NULL::${types[$j]}"; else args+="${args:+, }${values[$j]}"; fi
    done
    case ${names[$i]} in cleanup|max_wait|label) expect=OK ;; *) expect=22004 ;; esac
    add "nulls" "$expect" "$prefix($args)"
    if [ "$i" = 0 ]; then named="statement => NULL"; else named="$S, ${names[$i]} => NULL"; fi
    add "nulls" "$expect" "$prefix($named)"
  done
  add "nulls" "22004" "$prefix(NULL)"
  args=""; for j in "${!names[@]}"; do args+="${args:+, }NULL"; done
  add "nulls" "22004" "$prefix($args)"
}
null_cases run "$RUN" RUN_NAMES RUN_VALUES RUN_TYPES
null_cases submit "$SUB" SUB_NAMES SUB_VALUES SUB_TYPES

# Extreme numbers for each integer argument.
for fn in RUN SUB; do
  prefix=${!fn}
  for v in 0 -1 1 2147483647 -2147483648; do
    case $v in 0|-1|2147483647|-2147483648) e=22023 ;; 1) e=22023 ;; esac   # target 1 < min_workers 2
    add "extreme-int" "$e" "$prefix($S, target_workers => $v)"
    case $v in 0|1) e=OK ;; *) e=22023 ;; esac
    add "extreme-int" "$e" "$prefix($S, min_workers => $v)"
    case $v in 1) e=OK ;; *) e=22023 ;; esac
    add "extreme-int" "$e" "$prefix($S, max_attempts => $v, retry_delay => '10 ms')"
    add "extreme-int" "OK" "$prefix($S, priority => $v)"
  done
  add "extreme-int" "22023" "$prefix($S, target_workers => 1, min_workers => 2)"
  add "extreme-int" "OK" "$prefix($S, target_workers => 1, min_workers => 1)"
  # A submitted run records the statement's own errors instead of raising them.
  add "extreme-int" "$([ $fn = RUN ] && echo 53G03 || echo OK)" "$prefix($S, target_workers => 8, min_workers => 8)"
  add "extreme-int" "OK" "$prefix($S, target_workers => 8, min_workers => 8, force_workers => true)"
  add "extreme-int" "53G02" "$prefix($S, target_workers => 9)"
  add "extreme-int" "53G02" "$prefix($S, target_workers => 1024)"
  add "extreme-int" "22023" "$prefix($S, target_workers => 1025)"
  add "extreme-int" "OK" "$prefix($S, max_attempts => 100, retry_delay => '10 ms')"
  add "extreme-int" "22023" "$prefix($S, max_attempts => 101)"
  add "extreme-int" "42883|22003" "$prefix($S, target_workers => 2147483648)"
done
add "extreme-int" "53G03" "$RUN(\$q\$SELECT count(*) FROM tiny\$q\$)"
add "extreme-int" "OK" "$RUN(\$q\$SELECT count(*) FROM tiny\$q\$, force_workers => true)"

# Extreme intervals for retry_delay and max_wait.
INTERVALS=("-1 us" "0" "1 us" "0.5 ms" "1 day" "1 day 1 us" "1 day -1 us" "100 years" "-100 years" "1 mon" "-1 mon 31 days" "178000000 years" "-178000000 years" "infinity")
interval_expect() {
  case $1 in
    "0"|"1 us"|"0.5 ms"|"1 day"|"1 day -1 us"|"-1 mon 31 days") echo OK ;;
    infinity) echo "22007" ;;      # PostgreSQL 15's interval input has no infinity
    *) echo 22023 ;;
  esac
}
for fn in RUN SUB; do
  prefix=${!fn}
  for iv in "${INTERVALS[@]}"; do
    e=$(interval_expect "$iv")
    add "extreme-interval" "$e" "$prefix($S, retry_delay => '$iv')"
    add "extreme-interval" "$e" "$prefix($S, max_wait => '$iv')"
  done
done

# Labels: 63, 64, 1000 bytes, multibyte at the limit, odd characters.
L63=$(printf 'a%.0s' $(seq 1 63)); L64=$(printf 'a%.0s' $(seq 1 64)); L1000=$(printf 'a%.0s' $(seq 1 1000))
E21=$(printf '€%.0s' $(seq 1 21)); E22=$(printf '€%.0s' $(seq 1 22)); L62=$(printf 'a%.0s' $(seq 1 62))
for fn in RUN SUB; do
  prefix=${!fn}
  add "labels" "OK" "$prefix($S, label => '')"
  add "labels" "OK" "$prefix($S, label => '$L63')"
  add "labels" "22023" "$prefix($S, label => '$L64')"
  add "labels" "22023" "$prefix($S, label => '$L1000')"
  add "labels" "OK" "$prefix($S, label => '$E21')"
  add "labels" "22023" "$prefix($S, label => '$E22')"
  add "labels" "22023" "$prefix($S, label => '${L62}é')"
  add "labels" "OK" "$prefix($S, label => E'tab\\there\\nnewline')"
  add "labels" "OK" "$prefix($S, label => \$l\$it's \"quoted\" \\ ; DROP TABLE big; --\$l\$)"
  add "labels" "OK" "$prefix($S, label => '   ')"
done

# Run ids for status / wait / cancel.
for id in -1 0 9223372036854775807 -9223372036854775808 123456789; do
  add "run-ids" "42704" "SELECT status FROM parallel_guarantee_status($id)"
  add "run-ids" "42704" "SELECT status FROM parallel_guarantee_wait($id)"
  add "run-ids" "42704" "SELECT status FROM parallel_guarantee_wait($id, '1 s')"
  add "run-ids" "42704" "SELECT parallel_guarantee_cancel($id)"
  add "run-ids" "OK" "SELECT parallel_guarantee_wait_for($id, '10 ms')"
  add "run-ids" "OK" "SELECT parallel_guarantee_cancel_run($id)"
done
for f in "parallel_guarantee_status(NULL)" "parallel_guarantee_wait(NULL)" "parallel_guarantee_wait(NULL, NULL)" \
         "parallel_guarantee_cancel(NULL)" "parallel_guarantee_wait_for(NULL, NULL)" "parallel_guarantee_wait_for(NULL, '1 s')"; do
  add "run-ids" "22004" "SELECT $f"
done
add "run-ids" "OK" "SELECT parallel_guarantee_cancel_run(NULL)"
for f in status wait cancel; do
  add "run-ids" "42883|22003" "SELECT parallel_guarantee_$f(9223372036854775808)"
  add "run-ids" "22P02" "SELECT parallel_guarantee_$f('abc')"
  add "run-ids" "22P02" "SELECT parallel_guarantee_$f('')"
done
add "run-ids" "22023" "SELECT parallel_guarantee_wait_for(-1, '-1 us')"
for iv in "NULL" "'0'" "'1 us'" "'-1 us'" "'1 day 1 us'" "'100 years'" "'-100 years'" "'178000000 years'" "'infinity'"; do
  case $iv in "'-1 us'"|"'-100 years'") e=22023 ;; "'infinity'") e=22007 ;; *) e=OK ;; esac
  add "run-ids" "$e" "SELECT status FROM parallel_guarantee_wait($FIRST_ID, $iv)"
done
add "run-ids" "OK" "SELECT parallel_guarantee_cancel($FIRST_ID)"
add "run-ids" "OK" "SELECT status FROM parallel_guarantee_status($FIRST_ID)"
# Ids of another database's finished runs, and an id no database gave out: no run here.
for id in "$OTHER_RUN" "$OTHER_CHUNKS" "$NO_RUN"; do
  add "run-ids" "42704" "SELECT status FROM parallel_guarantee_status($id)"
  add "run-ids" "42704" "SELECT status FROM parallel_guarantee_wait($id, '1 s')"
  add "run-ids" "42704" "SELECT parallel_guarantee_cancel($id)"
  add "run-ids" "OK" "SELECT NOT parallel_guarantee_cancel_run($id)"
done

# parallel_guarantee_cancel_runs(label, role, database): NULLs, unknown and odd names, in
# every position; nothing is in progress between the loop's cases, so each must cancel
# nothing (a row would fail the case with 22012).
CR="SELECT CASE WHEN count(*) = 0 THEN 'none' ELSE (1 / (random() * 0)::int)::text END FROM parallel_guarantee_cancel_runs"
for args in "" "NULL" "NULL, NULL" "NULL, NULL, NULL" "label => NULL" "role => NULL" "database => NULL" \
            "label => NULL, role => NULL, database => NULL" "'no such label', NULL, NULL" \
            "NULL, 'no_such_role', NULL" "NULL, NULL, 'no_such_database'" "database => 'no_such_database'" \
            "role => 'no_such_role', database => NULL" "label => '', role => '', database => ''" \
            "role => repeat('r', 200)" "database => repeat('d', 200)" "label => repeat('l', 1048576)" \
            "label => E'\\n', role => 'public', database => 'template0'" "database => 'postgres'" "database => 'badother'" \
            "'x', 'postgres', 'badinput'" "role => 'pg_read_all_stats', database => NULL" \
            "label => \$l\$'; DROP TABLE big; --\$l\$" "role => \$r\$\"; DROP TABLE big; --\$r\$"; do
  add "cancel-runs" "OK" "$CR($args)"
done
add "cancel-runs" "OK" "SELECT count(*) FROM parallel_guarantee_cancel_runs(NULL::text, NULL::name, NULL::name)"
add "cancel-runs" "42883" "SELECT count(*) FROM parallel_guarantee_cancel_runs(database => 1)"
add "cancel-runs" "42883" "SELECT count(*) FROM parallel_guarantee_cancel_runs(NULL, NULL, NULL, NULL)"
add "cancel-runs" "42883" "SELECT count(*) FROM parallel_guarantee_cancel_runs(labels => 'x')"
add "cancel-runs" "42601" "SELECT count(*) FROM parallel_guarantee_cancel_runs(label => 'x', NULL)"

# ---------------------------------------------------------------- chunked batches, generated
# run_in_chunks, submit_chunks, resume_chunks, parallel_guarantee_chunk_status, and
# parallel_guarantee_status / _wait / _cancel of chunked runs (hand-written keys queries and
# actions are in the cases file).
CHUNKS="SELECT status FROM run_in_chunks"
SUBCHUNKS="SELECT 0 < submit_chunks"
# NULL in each position of run_in_chunks and submit_chunks, positionally and by name.
CK_NAMES=(keys action chunk_size max_retries max_skipped workers notice_every label)
CK_VALUES=("$CK_K" "$CK_A" "250" "1" "0" "2" "10" "NULL::text")
CK_TYPES=(text text integer integer integer integer integer text)
chunk_null_cases() {  # chunk_null_cases CALLPREFIX
  local prefix=$1 i j args named expect
  for i in "${!CK_NAMES[@]}"; do
    args=""
    for j in "${!CK_NAMES[@]}"; do
      if [ "$i" = "$j" ]; then args+="${args:+, }NULL::${CK_TYPES[$j]}"; else args+="${args:+, }${CK_VALUES[$j]}"; fi
    done
    case ${CK_NAMES[$i]} in label) expect=OK ;; *) expect=22004 ;; esac
    add "chunk-nulls" "$expect" "$prefix($args)"
    case ${CK_NAMES[$i]} in
      keys) named="keys => NULL, action => $CK_A" ;;
      action) named="$CK_K, action => NULL" ;;
      *) named="$CK_K, $CK_A, ${CK_NAMES[$i]} => NULL" ;;
    esac
    add "chunk-nulls" "$expect" "$prefix($named)"
  done
  add "chunk-nulls" "22004" "$prefix(NULL, NULL)"
  args=""; for j in "${!CK_NAMES[@]}"; do args+="${args:+, }NULL"; done
  add "chunk-nulls" "22004" "$prefix($args)"
}
chunk_null_cases "$CHUNKS"
chunk_null_cases "$SUBCHUNKS"
for args in "NULL" "NULL::bigint, 10" "run_id => NULL" "NULL, NULL" "$CHUNK_DONE, NULL" \
            "$CHUNK_DONE, notice_every => NULL" "$CHUNK_FAILED, NULL::integer"; do
  add "chunk-nulls" "22004" "SELECT status FROM resume_chunks($args)"
done

# Extreme numbers for each integer argument.
for fn in CHUNKS SUBCHUNKS; do
  prefix=${!fn}
  for v in 0 -1 1 1000000 1000001 2147483647 -2147483648; do
    case $v in 1|1000000) e=OK ;; *) e=22023 ;; esac
    add "chunk-extreme-int" "$e" "$prefix($CK_K, $CK_A, chunk_size => $v)"
  done
  for v in -1 0 100 101 2147483647 -2147483648; do
    case $v in 0|100) e=OK ;; *) e=22023 ;; esac
    add "chunk-extreme-int" "$e" "$prefix($CK_K, $CK_A, max_retries => $v)"
  done
  for v in -1 0 2147483647 -2147483648; do
    case $v in 0|2147483647) e=OK ;; *) e=22023 ;; esac
    add "chunk-extreme-int" "$e" "$prefix($CK_K, $CK_A, max_skipped => $v)"
  done
  for v in 0 -1 1 64 65 1000 2147483647 -2147483648; do
    case $v in 1|64) e=OK ;; *) e=22023 ;; esac
    add "chunk-extreme-int" "$e" "$prefix($CK_K, $CK_A, workers => $v)"
  done
  for v in -1 0 1 2147483647 -2147483648; do
    case $v in -1|-2147483648) e=22023 ;; *) e=OK ;; esac
    add "chunk-extreme-int" "$e" "$prefix($CK_K, $CK_A, chunk_size => 100, notice_every => $v)"
  done
  add "chunk-extreme-int" "42883|22003" "$prefix($CK_K, $CK_A, chunk_size => 2147483648)"
  add "chunk-extreme-int" "42883|22003" "$prefix($CK_K, $CK_A, workers => 2147483648)"
done

# Labels, as for the guaranteed runs.
for fn in CHUNKS SUBCHUNKS; do
  prefix=${!fn}
  add "chunk-labels" "OK" "$prefix($CK_K, $CK_A, label => '')"
  add "chunk-labels" "OK" "$prefix($CK_K, $CK_A, label => '$L63')"
  add "chunk-labels" "22023" "$prefix($CK_K, $CK_A, label => '$L64')"
  add "chunk-labels" "22023" "$prefix($CK_K, $CK_A, label => '$L1000')"
  add "chunk-labels" "OK" "$prefix($CK_K, $CK_A, label => '$E21')"
  add "chunk-labels" "22023" "$prefix($CK_K, $CK_A, label => '$E22')"
  add "chunk-labels" "22023" "$prefix($CK_K, $CK_A, label => '${L62}é')"
  add "chunk-labels" "OK" "$prefix($CK_K, $CK_A, label => E'tab\\there\\nnewline')"
  add "chunk-labels" "OK" "$prefix($CK_K, $CK_A, label => \$l\$it's \"quoted\" \\ ; DROP TABLE chunk_hits; --\$l\$)"
  add "chunk-labels" "OK" "$prefix($CK_K, $CK_A, label => '   ')"
done

# Run ids for resume_chunks, parallel_guarantee_chunk_status, and status / wait / cancel of
# chunked runs.  Run ids are unique in the cluster: a guaranteed run's id ($FIRST_ID) is no
# chunked run, and a chunked run's id is no guaranteed run.  (resume_chunks(0) once answered
# "chunked run 0 is still in progress", 55006, after any run had ended: a free run slot keeps
# run id 0; fixed, see chunk-fixed in the cases file.)
for id in -1 0 9223372036854775807 -9223372036854775808 123456789 "$FIRST_ID" "$OTHER_CHUNKS" "$NO_RUN"; do
  add "chunk-run-ids" "42704" "SELECT status FROM parallel_guarantee_chunk_status($id)"
  add "chunk-run-ids" "42704" "SELECT status FROM resume_chunks($id)"
done
# status, wait and cancel answer for chunked runs as for any run (cancel: false, with a
# NOTICE, for a run not in progress).
for id in "$CHUNK_DONE" "$CHUNK_FAILED" "$CHUNK_ERROR"; do
  add "chunk-run-ids" "OK" "SELECT status FROM parallel_guarantee_status($id)"
  add "chunk-run-ids" "OK" "SELECT status FROM parallel_guarantee_wait($id)"
  add "chunk-run-ids" "OK" "SELECT status FROM parallel_guarantee_wait($id, '1 s')"
  add "chunk-run-ids" "OK" "SELECT NOT parallel_guarantee_cancel($id)"
  add "chunk-run-ids" "OK" "SELECT status FROM parallel_guarantee_chunk_status($id)"
done
add "chunk-run-ids" "OK" "SELECT CASE WHEN kind = 'chunked' AND status = 'done' THEN 1 ELSE 1 / (random() * 0)::int END FROM parallel_guarantee_status($CHUNK_DONE)"
add "chunk-run-ids" "OK" "SELECT CASE WHEN kind = 'chunked' AND status = 'failed' THEN 1 ELSE 1 / (random() * 0)::int END FROM parallel_guarantee_wait($CHUNK_FAILED, '1 s')"
# The chunk-only wait and cancel are gone in 1.0.
for f in "parallel_guarantee_chunk_wait($CHUNK_DONE)" "parallel_guarantee_chunk_wait($CHUNK_DONE, '1 s')" "parallel_guarantee_chunk_cancel($CHUNK_DONE)"; do
  add "chunk-run-ids" "42883" "SELECT $f"
done
add "chunk-run-ids" "22004" "SELECT parallel_guarantee_chunk_status(NULL)"
for f in parallel_guarantee_chunk_status resume_chunks; do
  add "chunk-run-ids" "42883|22003" "SELECT $f(9223372036854775808)"
  add "chunk-run-ids" "22P02" "SELECT $f('abc')"
  add "chunk-run-ids" "22P02" "SELECT $f('')"
done
for iv in "NULL" "'0'" "'1 us'" "'-1 us'" "'1 day 1 us'" "'100 years'" "'-100 years'" "'178000000 years'" "'infinity'"; do
  case $iv in "'-1 us'"|"'-100 years'") e=22023 ;; "'infinity'") e=22007 ;; *) e=OK ;; esac
  add "chunk-run-ids" "$e" "SELECT status FROM parallel_guarantee_wait($CHUNK_DONE, $iv)"
done
# Resuming runs that ended: done (its row comes back, nothing runs), never got its keys,
# failed (its chunk fails again).
add "chunk-run-ids" "OK" "SELECT status FROM resume_chunks($CHUNK_DONE)"
add "chunk-run-ids" "OK" "SELECT status FROM resume_chunks($CHUNK_DONE, 0)"
add "chunk-run-ids" "OK" "SELECT CASE WHEN (r).status = 'done' AND (r).run_id = $CHUNK_DONE AND (r).chunks_done = (r).chunks_total AND (r).chunks_total = 4 THEN 1 ELSE 1 / (random() * 0)::int END FROM (SELECT resume_chunks($CHUNK_DONE) r) s"
add "chunk-run-ids" "55000" "SELECT status FROM resume_chunks($CHUNK_ERROR)"
add "chunk-run-ids" "22012" "SELECT status FROM resume_chunks($CHUNK_FAILED)"
add "chunk-run-ids" "22012" "SELECT status FROM resume_chunks(run_id => $CHUNK_FAILED, notice_every => 1)"
add "chunk-run-ids" "22023" "SELECT status FROM resume_chunks($CHUNK_DONE, -1)"
add "chunk-run-ids" "22023" "SELECT status FROM resume_chunks($CHUNK_FAILED, notice_every => -2147483648)"

# Booleans (some need a SET first: each in a psql session of its own).
MODE=psql
add "booleans" "OK" "$RUN($S, force_workers => true)"
add "booleans" "OK" "$RUN($S, wait_for_slots => false)"
add "booleans" "OK" "SET max_parallel_workers = 0; SELECT status FROM run_with_parallel_guarantee($S, raise_on_failure => false, max_attempts => 1)"
add "booleans" "53G01" "SET max_parallel_workers = 0; SELECT status FROM run_with_parallel_guarantee($S, raise_on_failure => true, max_attempts => 1)"
add "booleans" "OK" "$SUB($S, force_workers => true, wait_for_slots => false)"
add "booleans" "OK" "$RUN($S, force_workers => 'yes', raise_on_failure => 'off', wait_for_slots => 'on')"

# ---------------------------------------------------------------- running them
# hog_start N: another session holds N parallel workers (bounded wait: 20 s) until hog_stop.
hog_start() {
  PGAPPNAME=bad_input_hog "$BIN/psql" -h "$PC_DIR" -p "$PC_PORT" -U postgres -d "$DB" -X -q \
    -c "SET max_parallel_workers_per_gather = $1" -c "SET statement_timeout = '120s'" \
    -c "SELECT count(*) FROM hog WHERE pg_sleep(3600 + id * 0) IS NOT NULL" >/dev/null 2>&1 &
  HOG_PID=$!
  for _ in $(seq 1 400); do
    [ "$(P -c "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_activity l ON l.pid = a.leader_pid
                WHERE a.backend_type = 'parallel worker' AND l.application_name = 'bad_input_hog'")" = "$1" ] && return 0
    sleep 0.05
  done
  echo "# the hog did not get its $1 workers"
}
hog_stop() {
  P -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'bad_input_hog' AND backend_type = 'client backend'" >/dev/null
  wait "$HOG_PID" 2>/dev/null
  for _ in $(seq 1 400); do
    [ "$(P -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker'")" = 0 ] && return 0
    sleep 0.05
  done
}
RESULTS=$OUT/results.tsv
: > "$RESULTS"
NOW=$(date +%s)
ncase=${#SQLS[@]}
# The loop cases: load them, then CALL bi_run until every case has an outcome; a crash or a
# hang (psql timeout) is recorded for the first case without one, and the loop goes on after it.
{ for i in "${!SQLS[@]}"; do
    [ "${MODES[$i]}" = loop ] || continue
    printf 'INSERT INTO bi_cases VALUES (%d, $bicase$%s$bicase$);\n' "$((i + 1))" "${SQLS[$i]}"
  done; } > "$OUT/loop_cases.sql"
P -v ON_ERROR_STOP=1 -f "$OUT/loop_cases.sql" >/dev/null || not_ok "setup: could not load the loop cases"
for _ in $(seq 1 20); do
  next=$(P -c "SELECT min(n) FROM bi_cases c WHERE NOT EXISTS (SELECT 1 FROM bi_results r WHERE r.n = c.n)")
  [ -z "$next" ] && break
  out=$(PGAPPNAME=bad_input_loop PGOPTIONS="-c client_min_messages=warning" timeout 120 \
          "$BIN/psql" -h "$PC_DIR" -p "$PC_PORT" -U postgres -d "$DB" -X -q -tA -c "CALL bi_run($next)" 2>&1)
  rc=$?
  [ $rc = 0 ] && continue
  P -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'bad_input_loop'" >/dev/null 2>&1
  pc_wait_ready
  stuck=$(P -c "SELECT min(n) FROM bi_cases c WHERE NOT EXISTS (SELECT 1 FROM bi_results r WHERE r.n = c.n)")
  [ -z "$stuck" ] && break
  what=CRASH; [ $rc = 124 ] && what=TIMEOUT
  P -c "INSERT INTO bi_results VALUES ($stuck, '$what', \$m\$$(head -c 250 <<<"$out" | tr '\n\t' '  ')\$m\$, '', 0)" >/dev/null
done
P -c "COPY (SELECT n, code, coalesce(nullif(msg, ''), '-'), '-', ms FROM bi_results ORDER BY n) TO STDOUT" > "$OUT/loop_results.tsv"

for i in "${!SQLS[@]}"; do
  n=$((i + 1))
  if [ "${MODES[$i]}" = loop ]; then
    IFS=$'\t' read -r _ code msg loc ms < <(awk -F'\t' -v n="$n" '$1 == n' "$OUT/loop_results.tsv")
    [ -z "${code:-}" ] && { code=MISSING; msg="no outcome recorded"; loc=-; ms=0; }
    [ "$msg" = - ] && msg=""; loc="(PL/pgSQL loop)"
    if [ "$code" = 57014 ] && [[ $msg == *'statement timeout'* ]]; then code=HANG; fi
    first=${SQLS[$i]//$'\n'/ }
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "${GROUPS_[$i]}" "${EXPECTS[$i]}" "$code" "$msg" "$loc" "${first:0:160}" "$ms" >> "$RESULTS"
    continue
  fi
  sql=${SQLS[$i]//\{RUN\}/$RUN}
  sql=${sql//\{SUB\}/$SUB}
  sql=${sql//\{CHUNKS\}/"$CHUNKS"}
  sql=${sql//\{SUBCHUNKS\}/"$SUBCHUNKS"}
  sql=${sql//\{KEYS\}/"$CK_K"}
  sql=${sql//\{ACTION\}/"$CK_A"}
  sql=${sql//\{N\}/$n}
  sql=${sql//\{FILES\}/$FILES}
  stop=1; [[ $sql == *'-- continue'* ]] && stop=0
  # Waits first (bounded) for submitted runs of earlier cases to end.
  printf 'CALL bi_idle();\n%s;\n' "$sql" > "$OUT/case_$n.sql"
  hog=""; [[ $sql =~ --\ hog\ ([0-9]+) ]] && hog=${BASH_REMATCH[1]}
  [ -n "$hog" ] && hog_start "$hog"
  c0=$(date +%s%3N)
  # One awk per case reads psql's output: the last error's SQLSTATE, message and LOCATION,
  # whether the case printed FINAL-OK, and whether the connection was lost.
  IFS=$'\t' read -r code msg loc final crash < <(
    { PGOPTIONS="-c client_min_messages=warning -c statement_timeout=20s" timeout 45 \
        "$BIN/psql" -h "$PC_DIR" -p "$PC_PORT" -U postgres -d "$DB" -X -q -tA \
        -v ON_ERROR_STOP=$stop -v VERBOSITY=verbose -f "$OUT/case_$n.sql" 2>&1
      echo "@@rc=$?"; } | awk '
    /^(psql:[^:]*:[0-9]+: )?(ERROR|FATAL):  [0-9A-Z][0-9A-Z][0-9A-Z][0-9A-Z][0-9A-Z]: / {
      line = $0; sub(/^psql:[^:]*:[0-9]+: /, "", line); p = index(line, ":  ")
      code = substr(line, p + 3, 5); msg = substr(line, p + 10, 300); gsub(/\t/, " ", msg)
      loc = ""; want = 1; next }
    want && /^LOCATION:  / { loc = substr($0, 12); want = 0 }
    /FINAL-OK/ { final = 1 }
    /server closed the connection unexpectedly|connection to server was lost|terminating connection because of crash/ { if (crash == "") crash = substr($0, 1, 200) }
    /^@@rc=/ { rc = substr($0, 6) }
    END { if (code == "") code = "OK"; if (rc == 124) code = "TIMEOUT"
          printf "%s\t%s\t%s\t%s\t%s\n", code, (msg == "" ? "-" : msg), (loc == "" ? "-" : loc), final + 0, (crash == "" ? "-" : crash) }')
  ms=$(( $(date +%s%3N) - c0 ))
  [ -n "$hog" ] && hog_stop
  [ "$msg" = - ] && msg=""; [ "$loc" = - ] && loc=""
  if [ $stop = 0 ] && [ "$final" = 1 ]; then code=OK; msg=""; loc=""; fi
  [ "$code" = TIMEOUT ] && msg="psql did not return within 45 s"
  if [ "$crash" != - ]; then code=CRASH; msg=$crash; fi
  if [ "$code" = 57014 ] && [[ $msg == *'statement timeout'* ]] && ! [[ ${EXPECTS[$i]} =~ 57014 ]]; then code=HANG; fi
  first=${SQLS[$i]//$'\n'/ }; first=${first//$'\t'/ }
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "${GROUPS_[$i]}" "${EXPECTS[$i]}" "$code" "$msg" "$loc" "${first:0:160}" "$ms" >> "$RESULTS"
done
ELAPSED=$(( $(date +%s) - NOW ))
echo "# $ncase cases ($NHAND hand-written, $((ncase - NHAND)) generated) ran in $ELAPSED s; results in ${RESULTS#$ROOT/}"

# ---------------------------------------------------------------- checks
check "every one of the $ncase cases ran and has an outcome (at least 300)" "$ncase|yes" "$(wc -l < "$RESULTS")|$( [ "$ncase" -ge 300 ] && echo yes || echo "only $ncase cases")"
echo "# outcomes per SQLSTATE:"
cut -f4 "$RESULTS" | sort | uniq -c | sort -rn | awk '{printf "#   %-8s %s\n", $2, $1}'

fmt() { awk -F'\t' '{printf "case %s [%s] %s: %s (%s) | %s\n", $1, $2, $4, $5, $6, $7}'; }
check_empty "no case ends with SQLSTATE XX000" "$(awk -F'\t' '$4 == "XX000"' "$RESULTS" | fmt)"
check_empty "no case crashes a backend or loses the connection" "$(awk -F'\t' '$4 == "CRASH" || $4 == "MISSING"' "$RESULTS" | fmt)"
check_empty "no case hangs (statement_timeout of 20 s or psql timeout of 45 s)" "$(awk -F'\t' '$4 == "HANG" || $4 == "TIMEOUT"' "$RESULTS" | fmt)"
check_empty "every error message is a sentence (two words or more)" \
  "$(awk -F'\t' '$4 != "OK" && $4 != "CRASH" && $4 != "TIMEOUT" && split($5, w, " ") < 2' "$RESULTS" | fmt)"
check_empty "no error message shows C++ or internal names (std::, ::, elog, SPI_, cache lookup, lost track, node type)" \
  "$(awk -F'\t' '$4 != "OK" && $5 ~ /std::|[A-Za-z_]::[A-Za-z_]|elog|ereport|SPI_|cache lookup failed|unrecognized node type|lost track of|invalid memory alloc|terminate called|what\(\)|nullptr|basic_string|bad_alloc|Assert/' "$RESULTS" | fmt)"
# One check per group of cases as defined above (a group none of whose cases ran fails).
for g in $(printf '%s\n' "${GROUPS_[@]}" | awk '!seen[$0]++'); do
  defined=$(printf '%s\n' "${GROUPS_[@]}" | grep -cxF -- "$g")
  total=$(awk -F'\t' -v g="$g" '$2 == g' "$RESULTS" | wc -l)
  check_empty "$g: all $defined cases give the documented outcome" \
    "$([ "$total" = "$defined" ] || echo "ran $total of $defined cases")$(awk -F'\t' -v g="$g" '$2 == g && $4 !~ ("^(" $3 ")$")' "$RESULTS" | awk -F'\t' '{printf "case %s expected %s, got %s: %s (%s) | %s\n", $1, $3, $4, $5, $6, $7}')"
done
check_empty "invalid UTF-8: every refusal comes from PostgreSQL's input functions (LOCATION outside the extension's sources)" \
  "$(awk -F'\t' '$2 ~ /invalid-encoding$/ && $4 != "OK" && $6 ~ /(launcher|module|monitor|worker|history|pool|policy|chunks)\.cpp/' "$RESULTS" | fmt)"
echo "# invalid UTF-8 refusals, where PostgreSQL raised them:"
awk -F'\t' '$2 ~ /invalid-encoding$/ && $4 != "OK" {print $6}' "$RESULTS" | sed -E 's/:[0-9]+$//' | sort | uniq -c | sed 's/^/#   /'
echo "# errors raised by the extension itself, by location:"
awk -F'\t' '$6 ~ /\.cpp/ {print $4 " " $6}' "$RESULTS" | sed -E 's/:[0-9]+$//' | sort | uniq -c | sort -rn | sed 's/^/#   /'

# The cleanup runs after every attempt that did not succeed (3 short attempts: 3 times).
check "the cleanup ran once after each of the 3 short attempts" "3" "$(P -c "SELECT count(*) FROM cleanup_log" 2>&1)"

# README: statements that run no query "fail at once, before any attempt is wasted" (53G04),
# and an index build planned below the target fails before it builds (53G03).  Does the
# statement run first?  A COPY to a file and to a program, and a CREATE INDEX whose (falsely
# IMMUTABLE, not PARALLEL SAFE) expression counts its calls in a sequence.
P >/dev/null 2>&1 <<SQL
CREATE SEQUENCE probe_calls;
CREATE FUNCTION probe(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS
  \$\$ BEGIN PERFORM nextval('probe_calls'); RETURN \$1; END \$\$;
SQL
t0=$(date +%s%3N)
ONCE=$(P -v VERBOSITY=sqlstate -c "SET client_min_messages = warning" \
  -c "SELECT run_with_parallel_guarantee(\$q\$CREATE INDEX probe_idx ON small ((probe(id)))\$q\$)" 2>&1 | grep -m1 '^ERROR')
t1=$(date +%s%3N)
ONCE+=" | $(P -v VERBOSITY=sqlstate -c "SET client_min_messages = warning" \
  -c "SELECT run_with_parallel_guarantee(\$q\$COPY big TO PROGRAM 'cat > $FILES/program_ran.csv'\$q\$)" 2>&1 | grep -m1 '^ERROR')"
echo "#   CREATE INDEX and COPY TO PROGRAM through the function: $ONCE (CREATE INDEX took $((t1 - t0)) ms)"
check "an index build refused for its planned degree (53G03: the expression is not PARALLEL SAFE) evaluated no index expression" "0 calls" \
  "$(P -c "SELECT CASE WHEN is_called THEN last_value ELSE 0 END || ' calls' FROM probe_calls" 2>&1)"
check "53G04 'runs no query' comes before the statement runs: COPY wrote no file and ran no program" "no file" \
  "$(ls "$FILES"/big_*.csv "$FILES"/program_ran.csv 2>/dev/null | xargs -r -n1 basename | paste -sd' ' | sed 's/^$/no file/')"

# Labels round-trip through the history unchanged.
check "labels of 63 bytes and of 21 three-byte characters are recorded whole" "2|2" \
  "$(P -c "SELECT count(*) FILTER (WHERE label = '$L63') || '|' || count(*) FILTER (WHERE label = '$E21') FROM parallel_guarantee_runs WHERE kind = 'guaranteed'")"
check "chunked runs: labels of 63 bytes and of 21 three-byte characters are recorded whole" "2|2" \
  "$(P -c "SELECT count(*) FILTER (WHERE label = '$L63') || '|' || count(*) FILTER (WHERE label = '$E21') FROM parallel_guarantee_chunk_runs")"

# The server afterwards.
check "the server still answers" "1" "$(P -c "SELECT 1" 2>&1)"
for _ in $(seq 1 300); do
  [ "$(P -c "SELECT count(*) FROM parallel_guarantee_activity" 2>/dev/null)" = 0 ] && break
  sleep 0.1
done
check "no run left in parallel_guarantee_activity (submitted runs finished within 30 s)" "0" \
  "$(P -c "SELECT count(*) FROM parallel_guarantee_activity" 2>&1)"
P -c "SELECT run_id, state, label FROM parallel_guarantee_activity" 2>&1 | sed 's/^/#   still in progress: /' | grep -v '^#   still in progress: $'
# A chunked run whose worker was terminated stays 'running' in its history row; the status
# function calls it lost.  None may still be running.
check "no chunked run still in progress (parallel_guarantee_chunk_status)" "0" \
  "$(P -c "SELECT count(*) FROM parallel_guarantee_chunk_runs r WHERE (parallel_guarantee_chunk_status(r.run_id)).status = 'running'" 2>&1)"
check "every chunked run that ended done has each of its chunks done or skipped" "0" \
  "$(P -c "SELECT count(*) FROM parallel_guarantee_chunk_runs WHERE status = 'done' AND chunks_done + chunks_skipped <> coalesce(chunks_total, 0)" 2>&1)"
echo "# chunked runs: $(P -c "SELECT string_agg(status || ' ' || n, ', ' ORDER BY status) FROM (SELECT (parallel_guarantee_chunk_status(run_id)).status, count(*) n FROM parallel_guarantee_chunk_runs GROUP BY 1) s")"
check "no parallel_guarantee worker or parallel worker left" "0" \
  "$(P -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('parallel worker', 'parallel_guarantee worker')" 2>&1)"
# One more run marks runs whose worker vanished (a worker that terminated itself) as lost.
P -c "SET client_min_messages = warning" -c "SELECT run_with_parallel_guarantee('SELECT count(*) FROM big')" >/dev/null 2>&1
check "no run is left 'running' in the history after the next run" "0" \
  "$(P -c "SELECT count(*) FROM parallel_guarantee_runs WHERE status = 'running'" 2>&1)"
echo "# statuses of all runs in the history: $(P -c "SELECT string_agg(status || ' ' || n, ', ' ORDER BY status) FROM (SELECT status, count(*) n FROM parallel_guarantee_runs GROUP BY status) s")"
echo "# submitted runs: $(P -c "SELECT string_agg(status || ' ' || n, ', ' ORDER BY status) FROM (SELECT status, count(*) n FROM parallel_guarantee_runs WHERE async GROUP BY status) s")"
check "the tables statements tried to truncate, delete or drop are intact (big/small/tiny rows)" "$BIG_BEFORE" \
  "$(P -c "SELECT count(*) || '/' || (SELECT count(*) FROM small) || '/' || (SELECT count(*) FROM tiny) FROM big" 2>&1)"
check "chunk_hits, which keys queries tried to insert into, truncate and drop, keeps its rows" "$HITS_BEFORE" \
  "$(P -c "SELECT count(*) FROM chunk_hits" 2>&1)"
check "no database or tablespace was created by a statement" "0|0" \
  "$(P -c "SELECT (SELECT count(*) FROM pg_database WHERE datname LIKE '%db\_%') || '|' || (SELECT count(*) FROM pg_tablespace WHERE spcname LIKE 'ts\_%')" 2>&1)"
check "no temporary or half-built object was left (no relation named t_N, dt_N, rec_N, cic_N)" "0" \
  "$(P -c "SELECT count(*) FROM pg_class WHERE relname ~ '^(t|dt|rec|cic|dcic|exec|several)_[0-9]+$'" 2>&1)"
LOGPART=$(tail -c +"$((LOG_START + 1))" "$PC_LOG")
check_empty "server log: no process terminated by a signal, no PANIC, no TRAP" \
  "$(grep -E 'server process .* was terminated|terminated by signal|PANIC|TRAP:' <<<"$LOGPART" | cut -c1-300)"
echo "# server log: $(grep -c 'ERROR:' <<<"$LOGPART") ERROR lines, $(grep -c 'FATAL:' <<<"$LOGPART") FATAL lines, $(grep -c 'WARNING:' <<<"$LOGPART") WARNING lines"
grep 'WARNING:' <<<"$LOGPART" | sed -E 's/^[^]]*\] //' | cut -c1-200 | sort | uniq -c | sort -rn | head -5 | sed 's/^/#   /'

pc_stop fast
