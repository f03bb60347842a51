#!/usr/bin/env bash
# Faults around a guaranteed run: the caller terminated or timed out mid-run, the worker's
# statement cancelled from outside, no background-worker slot free, the module not
# preloaded.  Each check prints "ok - ..." or "not ok - ..." and what it found.  4 and 5 use
# private clusters under test/out/faults, on ports $FAULTS_NOPRELOAD_PORT (default 54341)
# and $FAULTS_FEWSLOTS_PORT (default 54342).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
. test/integration/data/tap.sh
plan 14
. "$ROOT/test/integration/data/private_cluster.sh"   # for 4 and 5
DB=pg_guarantee_faults
OUT=$ROOT/test/out/faults
mkdir -p "$OUT"
chown postgres: "$OUT"
P() { bash scripts/cluster.sh psql -d "$DB" -tA -q "$@"; }
# Polls a query until it returns the wanted value (bounded: 20 s).
wait_for() {  # wait_for WANTED QUERY
  for _ in $(seq 1 400); do
    [ "$(P -c "$2" 2>/dev/null)" = "$1" ] && return 0
    sleep 0.05
  done
  return 1
}
leftovers() {
  P -c "SELECT (SELECT count(*) FROM parallel_guarantee_activity) || '/' ||
               (SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('parallel worker', 'parallel_guarantee worker'))"
}

bash scripts/cluster.sh psql -d postgres -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" 2>/dev/null \
  || { not_ok "setup: could not create the database $DB"; exit; }
P -v ON_ERROR_STOP=1 <<'SQL' || { not_ok "setup: could not create the extension and the tables"; exit; }
CREATE EXTENSION parallel_guarantee;
-- The README's way to reach the extension's objects: its schema on the database's search_path.
ALTER DATABASE pg_guarantee_faults SET search_path = "$user", public, parallel_guarantee;
CREATE TABLE big (id int, pad text) WITH (parallel_workers = 4);
INSERT INTO big SELECT g, 'x' FROM generate_series(1, 200000) g;
CREATE TABLE cleanup_log (n int);
SQL
# A statement that runs for minutes at full degree unless stopped.
SLOW="CREATE TABLE slow_out AS SELECT count(*) FROM big WHERE pg_sleep(0.01 + id*0) IS NOT NULL"
CLEAN="INSERT INTO cleanup_log VALUES (1)"

start_call() {  # start_call OUTFILE [SETTINGS...]: runs the slow guaranteed call in the background
  local out=$1; shift
  { for s in "$@"; do echo "$s;"; done
    echo "SELECT status FROM run_with_parallel_guarantee(\$q\$$SLOW\$q\$, cleanup => \$q\$$CLEAN\$q\$);"
  } | bash scripts/cluster.sh psql -d "$DB" -tA -q -v VERBOSITY=verbose >"$out" 2>&1 &
  CALL_PID=$!
}

# 1. The caller is terminated mid-run.
P -c "TRUNCATE cleanup_log"
start_call "$OUT/terminated.txt"
if wait_for 4 "SELECT max(workers_launched) FROM parallel_guarantee_activity WHERE state = 'running'"; then
  P -c "SELECT pg_terminate_backend(caller_pid) FROM parallel_guarantee_activity" >/dev/null
  wait $CALL_PID 2>/dev/null
  wait_for "0/0" "SELECT (SELECT count(*) FROM parallel_guarantee_activity) || '/' || (SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('parallel worker', 'parallel_guarantee worker'))"
  check "caller terminated: no run slot and no worker left (slots/workers)" "0/0" "$(leftovers)"
  check "caller terminated: the cleanup ran once" "1" "$(P -c 'SELECT count(*) FROM cleanup_log')"
  check "caller terminated: the history says the run was cancelled, in its one attempt (status|sqlstate|attempts|outcome)" \
    "cancelled|57014|1|cancelled" \
    "$(P -c "SELECT r.status || '|' || r.sqlstate || '|' || r.attempts || '|' ||
                    (SELECT string_agg(a.outcome, ',' ORDER BY a.attempt) FROM parallel_guarantee_attempts a WHERE a.run_id = r.run_id)
               FROM parallel_guarantee_runs r WHERE r.run_id = (SELECT max(run_id) FROM parallel_guarantee_runs)" 2>&1)"
else
  check "caller terminated: the run started with 4 workers" "started" "not started: $(cat "$OUT/terminated.txt")"
fi

# 2. The caller's statement_timeout fires inside the run.
P -c "TRUNCATE cleanup_log"
start_call "$OUT/timeout.txt" "SET statement_timeout = '1s'"
wait $CALL_PID 2>/dev/null
check "statement_timeout: the caller gets 57014 with the timeout message" "ERROR:  57014: canceling statement due to statement timeout" \
  "$(grep -m1 '^ERROR' "$OUT/timeout.txt")"
wait_for "0/0" "SELECT (SELECT count(*) FROM parallel_guarantee_activity) || '/' || (SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('parallel worker', 'parallel_guarantee worker'))"
check "statement_timeout: nothing left (slots/workers)" "0/0" "$(leftovers)"
check "statement_timeout: the cleanup ran once" "1" "$(P -c 'SELECT count(*) FROM cleanup_log')"

# 3. The worker's own statement is cancelled from outside: a statement error for the caller.
P -c "TRUNCATE cleanup_log"
start_call "$OUT/worker_cancelled.txt"
if wait_for 4 "SELECT max(workers_launched) FROM parallel_guarantee_activity WHERE state = 'running'"; then
  P -c "SELECT pg_cancel_backend(worker_pid) FROM parallel_guarantee_activity" >/dev/null
  wait $CALL_PID 2>/dev/null
  check "worker cancelled: the caller gets 57014" "ERROR:  57014: canceling statement due to user request" \
    "$(grep -m1 '^ERROR' "$OUT/worker_cancelled.txt")"
  check "worker cancelled: the error names the worker" "1" "$(grep -c 'parallel_guarantee worker, run' "$OUT/worker_cancelled.txt")"
  wait_for "0/0" "SELECT (SELECT count(*) FROM parallel_guarantee_activity) || '/' || (SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('parallel worker', 'parallel_guarantee worker'))"
  check "worker cancelled: nothing left (slots/workers)" "0/0" "$(leftovers)"
  check "worker cancelled: the cleanup ran once" "1" "$(P -c 'SELECT count(*) FROM cleanup_log')"
else
  check "worker cancelled: the run started with 4 workers" "started" "not started: $(cat "$OUT/worker_cancelled.txt")"
fi
bash scripts/cluster.sh psql -d postgres -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null

# 4 and 5 need clusters of their own (test/integration/data/private_cluster.sh, under
# test/out/faults): one without the module preloaded, one with max_worker_processes = 3 so
# that a hog can take every background-worker slot.
M() { pc_psql -d postgres -tA -q "$@"; }

pc_use faults/nopreload "${FAULTS_NOPRELOAD_PORT:-54341}"
pc_init "shared_preload_libraries = ''" || { not_ok "setup: the cluster without the module preloaded did not start"; exit; }
M -c "CREATE EXTENSION parallel_guarantee" 2>/dev/null
check "not preloaded: a clear error with SQLSTATE 55000 and a hint" \
  "ERROR:  55000: parallel_guarantee must be loaded at server start|HINT:  Add parallel_guarantee to shared_preload_libraries in postgresql.conf and restart the server." \
  "$(M -v VERBOSITY=verbose -c "SELECT parallel_guarantee.run_with_parallel_guarantee('SELECT 1')" 2>&1 | grep -E '^(ERROR|HINT)' | paste -sd'|')"
# The views and the functions behind them answer without the module's shared memory (no
# crash): a history row left 'running' (by a server that had the module) is not called lost.
M -c "INSERT INTO parallel_guarantee.parallel_guarantee_chunk_run_history (run_id, role_oid, keys_query, action, chunk_size, max_retries,
        max_skipped, workers, status, started_at) VALUES (1, 10, 'SELECT 1', 'SELECT \$1', 1, 0, 0, 1, 'running', now())" >/dev/null 2>&1
check "not preloaded: the views and parallel_guarantee_lost/_running_chunks answer, the server stays up (status|lost|running chunks|activity)" \
  "running|false|0|0" \
  "$(M -c "SET search_path = \"\$user\", public, parallel_guarantee" \
       -c "SELECT (SELECT status FROM parallel_guarantee_chunk_runs WHERE run_id = 1) || '|' || parallel_guarantee_lost(1, true) || '|'
                 || (SELECT count(*) FROM parallel_guarantee_running_chunks()) || '|' || (SELECT count(*) FROM parallel_guarantee_activity)" 2>&1)"
pc_stop immediate

pc_use faults/fewslots "${FAULTS_FEWSLOTS_PORT:-54342}"
pc_init "max_worker_processes = 3" || { not_ok "setup: the cluster with max_worker_processes = 3 did not start"; exit; }
tap_on_exit "pc_stop immediate"
M -c "CREATE EXTENSION parallel_guarantee" -c "CREATE TABLE hog (id int, pad text) WITH (fillfactor = 10, parallel_workers = 8)" \
  -c "INSERT INTO hog SELECT g, repeat('x', 1500) FROM generate_series(1, 64) g" -c "CREATE TABLE t (id int) WITH (parallel_workers = 1)" -c "INSERT INTO t VALUES (1)"
M -c "SET max_parallel_workers_per_gather = 2" -c "SET statement_timeout = '60s'" \
  -c "SELECT count(*) FROM hog WHERE pg_sleep(3600 + id*0) IS NOT NULL" >/dev/null 2>&1 &
HOG=$!
for _ in $(seq 1 400); do
  [ "$(M -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker'")" = 2 ] && break
  sleep 0.05
done
check "no background-worker slot: a clear error (53G05), not a hang" \
  "ERROR:  53G05: could not start a background worker for the guaranteed run" \
  "$(timeout 30 "$BIN/psql" -h "$PC_DIR" -p "$PC_PORT" -U postgres -d postgres -X -tA -q -v VERBOSITY=verbose \
      -c "SELECT parallel_guarantee.run_with_parallel_guarantee('SELECT count(*) FROM t', target_workers => 1, min_workers => 1)" 2>&1 | grep -m1 '^ERROR')"
check "no background-worker slot: no run slot left taken" "0" "$(M -c 'SELECT count(*) FROM parallel_guarantee.parallel_guarantee_activity')"
M -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%FROM hog%' AND pid <> pg_backend_pid() AND backend_type = 'client backend'" >/dev/null
wait $HOG 2>/dev/null
pc_stop immediate
