#!/usr/bin/env bash
# Long tier of the load and memory tests (the quick tier is test/integration/load.sh).
#   bash test/long/run.sh
# One command, about 12 minutes on 2 cores.  Starts a private cluster (test/out/long, port
# $LONG_PORT, default 54362, unix socket only), then:
#   1. load: 32 pgbench sessions for 180 s, each transaction one guaranteed call with
#      shortages made at random (test/long/load.pgbench);
#   2. memory: one session makes 10,000 successful calls, 2,000 failing calls (53G01),
#      2,000 calls cancelled mid-run by statement_timeout, and 5,000 calls inside one DO
#      block, measuring its backend's memory after 50 calls to warm up and at the end
#      (each loop has a time budget: fewer calls if the machine is too busy);
#   3. soak: 8 pgbench sessions for 120 s mixing asynchronous submits, cancels and waits
#      (test/long/soak.pgbench), beside 4 psql sessions making synchronous calls cancelled
#      at random moments by statement_timeout;
# and checks after each phase that nothing is left (runs in shared memory, workers, queue,
# dynamic shared memory segments, history rows without a final status).  Prints "ok - ..."
# / "not ok - ..." per check, then a table of figures.  Exits non-zero if a check failed.
# Knobs (environment): LONG_CLIENTS, LONG_LOAD_SECONDS, LONG_MEM_CALLS, LONG_MEM_FAIL_CALLS,
# LONG_MEM_CANCEL_CALLS, LONG_MEM_DO_CALLS, LONG_SOAK_CLIENTS, LONG_SOAK_SYNC, LONG_SOAK_SECONDS, LONG_OUT,
# LONG_PORT.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
HERE=$ROOT/test/long
OUT=${LONG_OUT:-$ROOT/test/out/long}
PORT=${LONG_PORT:-54362}
. "$ROOT/test/integration/data/private_cluster.sh"
pc_use long "$PORT" "$OUT"
CLIENTS=${LONG_CLIENTS:-32}
LOAD_SECONDS=${LONG_LOAD_SECONDS:-180}
MEM_CALLS=${LONG_MEM_CALLS:-10000}
MEM_FAIL_CALLS=${LONG_MEM_FAIL_CALLS:-2000}
MEM_CANCEL_CALLS=${LONG_MEM_CANCEL_CALLS:-2000}
MEM_DO_CALLS=${LONG_MEM_DO_CALLS:-5000}
SOAK_CLIENTS=${LONG_SOAK_CLIENTS:-8}
SOAK_SYNC=${LONG_SOAK_SYNC:-4}
SOAK_SECONDS=${LONG_SOAK_SECONDS:-120}
MEM_BOUND=1048576   # total bytes of the caller's memory contexts
TOP_BOUND=4096      # bytes used in the caller's TopMemoryContext
failures=0
START=$(date +%s)

check() {  # check DESCRIPTION EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1"; echo "    expected: $2"; echo "    found:    $3" | head -12; failures=$((failures + 1)); fi
}
check_true() {  # check_true DESCRIPTION t/f DETAIL
  if [ "$2" = t ]; then echo "ok - $1"; else echo "not ok - $1"; echo "    found: $3"; failures=$((failures + 1)); fi
}
M() { pc_psql -d long -tA -q "$@"; }
T() { pc_psql -d long -q -P footer=off "$@"; }   # aligned tables
wait_for() {  # wait_for WANTED QUERY [SECONDS]: polls every 0.1 s
  local limit=$(( ${3:-20} * 10 ))
  for _ in $(seq 1 "$limit"); do
    [ "$(M -c "$2" 2>/dev/null)" = "$1" ] && return 0
    sleep 0.1
  done
  return 1
}
now_ms() { date +%s%3N; }
trap 'pc_stop immediate' EXIT
say() { echo "# $(date +%H:%M:%S) $*"; }

WORKERS_Q="SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('parallel worker', 'parallel_guarantee worker')"
small_dsm() { find "$PC_DATA/pg_dynshmem" -type f -size -1024k | wc -l; }
leftovers() {  # leftovers PHASE: runs in shared memory, workers, queue, segments
  wait_for 0 "SELECT count(*) FROM parallel_guarantee_activity" 180
  wait_for 0 "$WORKERS_Q" 30
  check "$1: no run left in parallel_guarantee_activity / no worker left / queue empty" "0/0/0" \
    "$(M -c "SELECT (SELECT count(*) FROM parallel_guarantee_activity) || '/' || ($WORKERS_Q) || '/' || (SELECT count(*) FROM parallel_guarantee_queue)")"
  check "$1: no dynamic shared memory segment left (segments under 1 MB in pg_dynshmem)" "$DSM_BASE" "$(small_dsm)"
}
history_warnings() {  # history_warnings FROM-LINE TO-LINE
  sed -n "$1,$2p" "$OUT/server.log" | grep -o "WARNING:  parallel_guarantee: could not .* in the history: .*" | sort | uniq -c | sed 's/^ *//'
}

# ---------------------------------------------------------------- the private cluster
# test/integration/data/private_cluster.sh, with its settings and PC_LOAD_SETTINGS; pc_setup
# stops a cluster left running by an interrupted earlier run and replaces the data directory
# and the server log; the other files of an earlier run are removed here.
rm -f "$OUT"/*.log "$OUT"/*.txt "$OUT"/*.err
LIB=$("$BIN/pg_config" --pkglibdir)/parallel_guarantee.so
LIB_MD5=$(md5sum "$LIB" | cut -d' ' -f1)
pc_setup long "${PC_LOAD_SETTINGS[@]}"
M -f "$HERE/setup.sql" >/dev/null || { echo "not ok - setup: test/long/setup.sql failed"; exit 1; }
cp "$HERE/load.pgbench" "$HERE/soak.pgbench" "$OUT/"
chown postgres: "$OUT"/*.pgbench
DSM_BASE=$(small_dsm)
say "library $LIB (md5 $LIB_MD5), extension $(M -c "SELECT extversion FROM pg_extension WHERE extname = 'parallel_guarantee'")"

pgbench() {  # pgbench LOGNAME ARGS...: as postgres, NOTICEs silenced
  local log=$1; shift
  PGOPTIONS="-c client_min_messages=warning" timeout $((LOAD_SECONDS + SOAK_SECONDS + 300)) \
    runuser -u postgres -- "$BIN/pgbench" -h "$OUT" -p "$PORT" -U postgres -n "$@" long >"$OUT/$log" 2>&1
}

# ---------------------------------------------------------------- 1. load
say "1. load: $CLIENTS sessions for $LOAD_SECONDS s"
LOG1=$(wc -l < "$OUT/server.log")
t0=$(now_ms)
pgbench load-pgbench.txt -c "$CLIENTS" -j 2 -T "$LOAD_SECONDS" -f "$OUT/load.pgbench"
RC=$?
t1=$(now_ms)
M -c "INSERT INTO phase_figures VALUES ('long-load', '1. load: $CLIENTS sessions, random shortages', $(( (t1 - t0) / 1000 )), 1)"
check "load: pgbench ran to the end, no client aborted" "0" "$RC"
[ $RC = 0 ] || tail -8 "$OUT/load-pgbench.txt" | sed 's/^/    # /'
check "load: every transaction recorded its call's outcome" \
  "$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$OUT/load-pgbench.txt")" \
  "$(M -c "SELECT count(*) FROM outcomes WHERE label = 'long-load'")"
check "load: every call ended with success, degraded or 53G01/53G02/53G03/53G05 (unexpected outcomes)" "" \
  "$(M -c "SELECT string_agg(outcome || ' x' || n || ': ' || coalesce(msg, ''), E'\n') FROM (
             SELECT outcome, count(*) n, min(message) msg FROM outcomes WHERE label = 'long-load'
                AND outcome NOT IN ('target_met', 'degraded', '53G01', '53G02', '53G03', '53G05') GROUP BY 1) s")"
leftovers "load"
check "load: every history row has a final status" "" \
  "$(M -c "SELECT string_agg(status || ' x' || n, ', ') FROM (SELECT status, count(*) n FROM parallel_guarantee_runs WHERE label = 'long-load' AND status NOT IN ('target_met', 'degraded', 'failed', 'error') GROUP BY 1) s")"
check "load: history rows = calls that got a run id (missing from the history / extra)" "0/0" \
  "$(M -c "SELECT (SELECT count(*) FROM outcomes o WHERE label = 'long-load' AND run_id IS NOT NULL AND NOT EXISTS (SELECT FROM parallel_guarantee_runs r WHERE r.run_id = o.run_id))
               || '/' || (SELECT count(*) FROM parallel_guarantee_runs r WHERE label = 'long-load' AND NOT EXISTS (SELECT FROM outcomes o WHERE o.run_id = r.run_id))")"
# 53G02 means "can never be reached" (README: "Retrying cannot help"): targets 2-4 always
# fit this server (max_parallel_workers 8, max_worker_processes 32) when it is idle.
check "load: no 53G02 (\"can never be reached\") for targets an idle server reaches" "0" \
  "$(M -c "SELECT count(*) FROM outcomes WHERE label = 'long-load' AND outcome = '53G02'")"
[ "$(M -c "SELECT count(*) FROM outcomes WHERE label = 'long-load' AND outcome = '53G02'")" = 0 ] \
  || echo "    # e.g.: $(M -c "SELECT message FROM outcomes WHERE label = 'long-load' AND outcome = '53G02' LIMIT 1")"
check "load: only errors raised before a run starts (53G02, 53G05) have no run id" "" \
  "$(M -c "SELECT string_agg(DISTINCT outcome, ',') FROM outcomes WHERE label = 'long-load' AND run_id IS NULL AND outcome NOT IN ('53G02', '53G05')")"
check "load: each history row says what its caller got" "" \
  "$(M -c "SELECT string_agg(format('run %s: caller %s, history %s/%s', o.run_id, o.outcome, r.status, r.sqlstate), E'\n')
             FROM outcomes o JOIN parallel_guarantee_runs r USING (run_id)
            WHERE o.label = 'long-load' AND NOT (
                  (o.outcome IN ('target_met', 'degraded') AND r.status = o.outcome AND r.sqlstate IS NULL AND r.attempts = o.attempts)
               OR (o.outcome = '53G01' AND r.status = 'failed' AND r.sqlstate = '53G01')
               OR (o.outcome NOT IN ('target_met', 'degraded', '53G01') AND r.status = 'error' AND r.sqlstate = o.outcome))")"
check "load: each run has as many attempt rows as its attempts" "" \
  "$(M -c "SELECT string_agg(format('run %s: %s attempts, %s rows', r.run_id, r.attempts, (SELECT count(*) FROM parallel_guarantee_attempts a WHERE a.run_id = r.run_id)), E'\n')
             FROM parallel_guarantee_runs r WHERE label = 'long-load'
              AND r.attempts IS DISTINCT FROM (SELECT count(*) FROM parallel_guarantee_attempts a WHERE a.run_id = r.run_id)")"
check "load: target_met launched >= target, degraded launched in [min, target)" "" \
  "$(M -c "SELECT string_agg(format('run %s: %s with %s of target %s min %s', run_id, outcome, launched, target, min_workers), E'\n')
             FROM outcomes WHERE label = 'long-load' AND NOT (
                  (outcome = 'target_met' AND launched >= target)
               OR (outcome = 'degraded' AND launched >= min_workers AND launched < target)
               OR outcome NOT IN ('target_met', 'degraded'))")"
check "load: no table left behind by the CREATE TABLE AS calls" "0" "$(M -c "SELECT count(*) FROM pg_class WHERE relname LIKE 'long_out_%'")"
LOG1E=$(wc -l < "$OUT/server.log")
check "load: no 'could not ... in the history' warning" "" "$(history_warnings "$((LOG1 + 1))" "$LOG1E")"

# ---------------------------------------------------------------- 2. memory
# One session per loop; each call its own transaction (\gexec), except the DO loop.  The
# machine may be shared, so each loop has a time budget: every generated call is guarded by
# "CASE WHEN clock_timestamp() < deadline", so calls past the deadline are skipped (they
# print an empty line) and the loop makes its wanted number of calls or as many as fit.
# The table says how many calls each loop made.
mem_loop() {  # mem_loop NAME WANTED BUDGET-SECONDS SETUP CALL [PRE-COLUMN]
  local name=$1 wanted=$2 budget=$3 setup=$4 call=$5 pre=${6:-} made
  say "2. memory: $name, up to $wanted calls in $budget s"
  { echo "SET client_min_messages = warning;"
    echo "$setup"
    echo "SELECT $pre format('SELECT CASE WHEN clock_timestamp() < %L THEN (%s) END', clock_timestamp() + interval '1 day', \$c\$$call\$c\$) FROM generate_series(1, 50) \\gexec"
    echo "RESET statement_timeout;"
    echo "SELECT backend_memory() AS before \\gset"
    echo "SELECT extract(epoch FROM clock_timestamp()) AS t0 \\gset"
    echo "SELECT $pre format('SELECT CASE WHEN clock_timestamp() < %L THEN (%s) END', clock_timestamp() + interval '$budget s', \$c\$$call\$c\$) FROM generate_series(1, $wanted) \\gexec"
    echo "RESET statement_timeout;"
    echo "SELECT backend_memory() AS after \\gset"
    echo "SELECT split_part(:'before', ' ', 1)::bigint AS tb, split_part(:'after', ' ', 1)::bigint AS ta, split_part(:'before', ' ', 2)::bigint AS ub, split_part(:'after', ' ', 2)::bigint AS ua, round(extract(epoch FROM clock_timestamp()) - :t0, 1) AS secs \\gset"
    echo "\\echo MEM :tb :ta :ub :ua :secs"
  } | M >"$OUT/mem-$name.txt" 2>"$OUT/mem-$name.err"
  made=$(( wanted - $(grep -c '^$' "$OUT/mem-$name.txt") ))
  local tb ta ub ua secs
  read -r tb ta ub ua secs <<<"$(sed -n 's/^MEM //p' "$OUT/mem-$name.txt")"
  [ -n "$secs" ] && M -c "INSERT INTO mem_figures (loop, calls, total_before, total_after, top_before, top_after, seconds) VALUES ('$name', $made, $tb, $ta, $ub, $ua, $secs)"
  MADE=$made
  mem_checks "$name" "$made" "$tb $ta $ub $ua"
}
mem_checks() {  # mem_checks NAME CALLS "TB TA UB UA"
  local tb ta ub ua
  read -r tb ta ub ua <<<"$3"
  if [ -z "$ua" ]; then check "memory ($1): the loop ran" "four figures" "${3:-nothing}: $(tail -3 "$OUT/mem-$1.err")"; return; fi
  check_true "memory ($1): the caller's memory grows less than $MEM_BOUND bytes over $2 calls" \
    "$([ $((ta - tb)) -lt $MEM_BOUND ] && echo t || echo f)" "growth $((ta - tb)) bytes ($tb -> $ta)"
  check_true "memory ($1): the caller's TopMemoryContext keeps nothing per call (used bytes grow less than $TOP_BOUND over $2 calls)" \
    "$([ $((ua - ub)) -lt $TOP_BOUND ] && echo t || echo f)" "TopMemoryContext used bytes $ub -> $ua: $((ua - ub)) bytes, $(awk -v g=$((ua - ub)) -v n="$2" 'BEGIN { printf "%.1f", g / n }') per call"
}
FAST="SELECT count(*) FROM small"
SLOW="SELECT count(*) FROM small WHERE pg_sleep(0.001) IS NOT NULL"
mem_loop success "$MEM_CALLS" 150 "" \
  "SELECT status FROM run_with_parallel_guarantee('$FAST', target_workers => 2, min_workers => 0, max_attempts => 1, label => 'mem')"
check "memory (success): every call succeeded" "$((MADE + 50))" "$(grep -cE '^(target_met|degraded)$' "$OUT/mem-success.txt")"

mem_loop failure "$MEM_FAIL_CALLS" 40 "SET max_parallel_workers = 1;" \
  "SELECT status FROM run_with_parallel_guarantee('$FAST', target_workers => 2, min_workers => 2, max_attempts => 1, label => 'mem-fail')"
check_true "memory (failure): at least 90 % of the calls failed with 53G01" \
  "$([ $(( $(grep -c '^ERROR:  launched 1 of 2 parallel workers' "$OUT/mem-failure.err") * 10 )) -ge $(( (MADE + 50) * 9 )) ] && echo t || echo f)" \
  "$(grep -c '^ERROR:  launched 1 of 2 parallel workers' "$OUT/mem-failure.err") of $((MADE + 50))"

mem_loop cancel "$MEM_CANCEL_CALLS" 60 "" \
  "SELECT status FROM run_with_parallel_guarantee('$SLOW', cleanup => 'SELECT 1', target_workers => 2, min_workers => 0, max_attempts => 1, label => 'mem-cancel')" \
  "format('SET statement_timeout = %s', 1 + (random() * 39)::int),"
# A timeout that fires as a statement ends cancels the next one "due to user request"
# (PostgreSQL's own behaviour): both are 57014.  The SET before a call can itself be
# cancelled so by the previous, tiny timeout: so at least one 57014 per call, and no other
# error (as in test/integration/load.sh).
MEM_CANCELS=$(grep -cE '^ERROR:  canceling statement due to (statement timeout|user request)' "$OUT/mem-cancel.err")
check "memory (cancel): every call was cancelled (57014), no other error" "t|0" \
  "$([ "$MEM_CANCELS" -ge $((MADE + 50)) ] && echo t || echo "f ($MEM_CANCELS of $((MADE + 50)))")|$(grep -E '^ERROR:' "$OUT/mem-cancel.err" | grep -cvE 'canceling statement due to (statement timeout|user request)')"

say "2. memory: one DO block, up to $MEM_DO_CALLS calls in 90 s"
M >"$OUT/mem-do.txt" 2>"$OUT/mem-do.err" <<SQL
SET client_min_messages = warning;
DO \$\$
DECLARE before text; after text; r parallel_guarantee_result; t0 timestamptz; deadline timestamptz; made int := 0;
BEGIN
    FOR i IN 1 .. 50 + $MEM_DO_CALLS LOOP
        IF i = 51 THEN before := backend_memory(); t0 := clock_timestamp(); deadline := t0 + interval '90 s'; END IF;
        EXIT WHEN i > 50 AND clock_timestamp() >= deadline;
        SELECT * INTO r FROM run_with_parallel_guarantee('$FAST', target_workers => 2, min_workers => 0, max_attempts => 1, label => 'mem-do');
        IF i > 50 THEN made := made + 1; END IF;
    END LOOP;
    after := backend_memory();
    INSERT INTO mem_figures (loop, calls, total_before, total_after, top_before, top_after, seconds)
    VALUES ('do', made, split_part(before, ' ', 1)::bigint, split_part(after, ' ', 1)::bigint,
            split_part(before, ' ', 2)::bigint, split_part(after, ' ', 2)::bigint,
            round(extract(epoch FROM clock_timestamp() - t0)::numeric, 1));
END \$\$;
SQL
mem_checks do "$(M -c "SELECT calls FROM mem_figures WHERE loop = 'do'")" \
  "$(M -c "SELECT total_before || ' ' || total_after || ' ' || top_before || ' ' || top_after FROM mem_figures WHERE loop = 'do'")"
leftovers "memory"
check "memory: every history row has a final status" "" \
  "$(M -c "SELECT string_agg(label || ': ' || status || ' x' || n, ', ') FROM (SELECT label, status, count(*) n FROM parallel_guarantee_runs WHERE label LIKE 'mem%' AND status NOT IN ('target_met', 'degraded', 'failed', 'error', 'cancelled') GROUP BY 1, 2) s")"
LOG2E=$(wc -l < "$OUT/server.log")
check "memory: no 'could not ... in the history' warning" "" "$(history_warnings "$((LOG1E + 1))" "$LOG2E")"

# ---------------------------------------------------------------- 3. soak
# Asynchronous submits, cancels and waits from pgbench, and beside them synchronous calls
# from psql sessions whose statement_timeout (1-80 ms, random per call) cancels the caller
# at any moment: while its worker starts, runs, cleans up or records the run.  psql goes on
# after an error; a timeout that fires before load_call catches it is counted from psql's
# error output.
soak_sync() {  # soak_sync N END-EPOCH: one psql session after another until END
  local n=$1 end=$2
  while [ "$(date +%s)" -lt "$end" ]; do
    M >>"$OUT/soak-sync-$n.txt" 2>>"$OUT/soak-sync-$n.err" <<'SQL'
SET client_min_messages = warning;
SELECT format('SET statement_timeout = %s', 1 + (random() * 79)::int),
       format('SELECT load_call(%s, %s, %s, %s, 5, 1, 8, %L)', k, t, (random() * t)::int, 1 + (random() * 2)::int, 'soak-sync')
  FROM (SELECT 3 + (random() < 0.5)::int AS k, 1 + (random() * 3)::int AS t FROM generate_series(1, 50)) s \gexec
SQL
  done
}
say "3. soak: $SOAK_CLIENTS pgbench sessions (asynchronous) and $SOAK_SYNC psql sessions (synchronous) for $SOAK_SECONDS s"
SOAK_END=$(( $(date +%s) + SOAK_SECONDS ))
SYNC_PIDS=()
for n in $(seq 1 "$SOAK_SYNC"); do soak_sync "$n" "$SOAK_END" & SYNC_PIDS+=($!); done
t0=$(now_ms)
pgbench soak-pgbench.txt -c "$SOAK_CLIENTS" -j 2 -T "$SOAK_SECONDS" -f "$OUT/soak.pgbench"
RC=$?
for p in "${SYNC_PIDS[@]}"; do wait "$p"; done
t1=$(now_ms)
M -c "INSERT INTO phase_figures VALUES ('soak-sync', '3. soak: $SOAK_SYNC callers cancelled at random (1-80 ms)', $(( (t1 - t0) / 1000 )), 3)"
check "soak: pgbench ran to the end, no client aborted" "0" "$RC"
[ $RC = 0 ] || tail -8 "$OUT/soak-pgbench.txt" | sed 's/^/    # /'
SYNC_OUTSIDE=$(cat "$OUT"/soak-sync-*.err 2>/dev/null | grep -cE '^ERROR:  canceling statement due to (statement timeout|user request)')
check "soak: psql reported no error but the statement timeouts that fired outside load_call" "" \
  "$(cat "$OUT"/soak-sync-*.err 2>/dev/null | grep '^ERROR' | grep -vE 'canceling statement due to (statement timeout|user request)' | sort | uniq -c | head -5)"
say "3. soak: draining the submitted runs"
leftovers "soak"
check "soak: synchronous calls ended with success, degraded, 53G01/53G02/53G03/53G05 or 57014 (unexpected outcomes)" "" \
  "$(M -c "SELECT string_agg(outcome || ' x' || n || ': ' || coalesce(msg, ''), E'\n') FROM (
             SELECT outcome, count(*) n, min(message) msg FROM outcomes WHERE label = 'soak-sync'
                AND outcome NOT IN ('target_met', 'degraded', '53G01', '53G02', '53G03', '53G05', '57014') GROUP BY 1) s")"
check "soak: submits, cancels and waits ended as documented (unexpected outcomes)" "" \
  "$(M -c "SELECT string_agg(what || ' ' || outcome || ' x' || n || ': ' || coalesce(msg, ''), E'\n') FROM (
             SELECT what, outcome, count(*) n, min(message) msg FROM soak_events
              WHERE NOT ((what = 'submit' AND outcome IN ('ok', '53G05'))
                      OR (what = 'cancel' AND outcome IN ('true', 'false'))
                      OR (what = 'wait' AND outcome IN ('running', 'target_met', 'degraded', 'failed', 'error', 'cancelled')))
              GROUP BY 1, 2) s")"
check "soak: every submitted run is in the history" "0" \
  "$(M -c "SELECT count(*) FROM async_runs a WHERE NOT EXISTS (SELECT FROM parallel_guarantee_runs r WHERE r.run_id = a.run_id)")"
check "soak: every history row has a final status (no 'running', no 'lost')" "" \
  "$(M -c "SELECT string_agg(label || ': ' || status || ' x' || n, ', ') FROM (SELECT label, status, count(*) n FROM parallel_guarantee_runs WHERE label LIKE 'soak%' AND status NOT IN ('target_met', 'degraded', 'failed', 'error', 'cancelled') GROUP BY 1, 2) s")"
check "soak: a submitted run whose cancel returned true ended cancelled (others, by final status)" "" \
  "$(M -c "SELECT string_agg(status || ' x' || n, ', ') FROM (SELECT r.status, count(*) n FROM async_runs a JOIN parallel_guarantee_runs r USING (run_id) WHERE a.cancel_true > 0 AND r.status <> 'cancelled' GROUP BY 1) s")"
check "soak: CREATE TABLE AS runs left their table exactly when they succeeded (history status of the mismatches)" "" \
  "$(M -c "SELECT string_agg(format('%s table %s x%s', status, CASE WHEN has THEN 'left' ELSE 'missing' END, n), ', ') FROM (
             SELECT r.status, to_regclass(a.tbl) IS NOT NULL AS has, count(*) n FROM async_runs a JOIN parallel_guarantee_runs r USING (run_id)
              WHERE a.kind = 2 AND (to_regclass(a.tbl) IS NOT NULL) <> (r.status IN ('target_met', 'degraded')) GROUP BY 1, 2) s")"
LOG3E=$(wc -l < "$OUT/server.log")
check "soak: no 'could not ... in the history' warning" "" "$(history_warnings "$((LOG2E + 1))" "$LOG3E")"

# ---------------------------------------------------------------- everything
check "no run marked 'lost' while its worker was alive (lost, then finished)" "" \
  "$(M -c "SELECT string_agg(format('run %s (%s) marked lost at %s, finished %s at %s', m.run_id, r.label, m.at::time, r.status, r.finished_at::time), E'\n')
             FROM lost_marks m JOIN parallel_guarantee_runs r USING (run_id) WHERE r.status <> 'lost'")"
check "the server log has no crash, PANIC or XX000" "" \
  "$(grep -E 'terminated by signal|was terminated|PANIC|TRAP|\] XX000 |server process .* exited with exit code [2-9]' "$OUT/server.log" | head -5)"
# A running server keeps the library it loaded at start (PostgreSQL matches loaded
# libraries by path first), so a reinstall meanwhile does not change what was tested.
[ "$(md5sum "$LIB" | cut -d' ' -f1)" = "$LIB_MD5" ] || say "note: $LIB was reinstalled during the run; the server kept the one it loaded at start (md5 $LIB_MD5)"
LOST_FINAL=$(M -c "SELECT count(*) FROM parallel_guarantee_runs WHERE status = 'lost'")
RUNNING_FINAL=$(M -c "SELECT count(*) FROM parallel_guarantee_runs WHERE status = 'running'")

# ---------------------------------------------------------------- the table of figures
END=$(date +%s)
echo
echo "== parallel_guarantee long tier: figures ($(nproc) cores, $(( (END - START) / 60 )) min $(( (END - START) % 60 )) s, extension $(M -c "SELECT extversion FROM pg_extension WHERE extname = 'parallel_guarantee'"), library md5 ${LIB_MD5:0:12}) =="
T <<'SQL'
\pset title 'Calls (runs/s: calls that started a run; 53G02 and 53G05 fail before one)'
SELECT p.description AS phase, count(o.*) AS calls, p.seconds AS s,
       round(count(o.*) / nullif(p.seconds, 0), 1) AS "calls/s",
       round(count(o.run_id) / nullif(p.seconds, 0), 1) AS "runs/s",
       count(*) FILTER (WHERE outcome = 'target_met') AS target_met,
       count(*) FILTER (WHERE outcome = 'degraded') AS degraded,
       count(*) FILTER (WHERE outcome = '53G01') AS "53G01",
       count(*) FILTER (WHERE outcome = '53G02') AS "53G02",
       count(*) FILTER (WHERE outcome = '53G03') AS "53G03",
       count(*) FILTER (WHERE outcome = '53G05') AS "53G05",
       count(*) FILTER (WHERE outcome = '57014') AS "57014",
       count(*) FILTER (WHERE outcome NOT IN ('target_met', 'degraded', '53G01', '53G02', '53G03', '53G05', '57014')) AS other,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS "p50 ms",
       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS "p95 ms",
       round(max(ms), 1) AS "max ms"
  FROM phase_figures p LEFT JOIN outcomes o ON o.label = p.label
 GROUP BY p.label, p.description, p.seconds, p.ord ORDER BY p.ord;
\pset title 'Asynchronous runs (soak)'
SELECT (SELECT count(*) FROM soak_events WHERE what = 'submit' AND outcome = 'ok') AS submitted,
       (SELECT count(*) FROM soak_events WHERE what = 'submit' AND outcome = '53G05') AS "refused 53G05",
       (SELECT count(*) FROM soak_events WHERE what = 'cancel' AND outcome = 'true') AS "cancel true",
       (SELECT count(*) FROM soak_events WHERE what = 'cancel' AND outcome = 'false') AS "cancel false",
       (SELECT count(*) FROM soak_events WHERE what = 'wait') AS waits,
       (SELECT string_agg(status || '=' || n, ' ' ORDER BY n DESC) FROM (SELECT r.status, count(*) n FROM async_runs a JOIN parallel_guarantee_runs r USING (run_id) GROUP BY 1) s) AS "final statuses";
\pset title 'Memory of the calling backend (after 50 calls to warm up)'
SELECT loop, calls, total_before AS "total before", total_after AS "total after",
       total_after - total_before AS "growth bytes",
       top_after - top_before AS "TopMemoryContext used growth",
       round((top_after - top_before)::numeric / calls, 1) AS "bytes/call",
       seconds AS s, round(calls / nullif(seconds, 0), 1) AS "calls/s"
  FROM mem_figures ORDER BY n;
SQL
T <<SQL
\pset title 'Leftovers and history at the end'
SELECT (SELECT count(*) FROM parallel_guarantee_activity) AS "runs in shared memory",
       ($WORKERS_Q) AS workers,
       (SELECT count(*) FROM parallel_guarantee_queue) AS queued,
       '$DSM_BASE -> $(small_dsm)' AS "DSM segments < 1 MB",
       (SELECT count(*) FROM parallel_guarantee_runs) AS "history rows",
       $RUNNING_FINAL AS running, $LOST_FINAL AS lost,
       (SELECT count(*) FROM lost_marks m JOIN parallel_guarantee_runs r USING (run_id) WHERE r.status <> 'lost') AS "marked lost while alive",
       $(grep -c "WARNING:  parallel_guarantee: could not .* in the history" "$OUT/server.log") AS "history write warnings",
       $(grep -cE 'terminated by signal|PANIC|\] XX000 ' "$OUT/server.log") AS "crash/XX000 lines";
SQL
echo "soak: $SYNC_OUTSIDE synchronous calls were cancelled before load_call could catch it (not in the table above)"
echo "$failures checks failed"
[ "${LONG_KEEP:-0}" = 1 ] && { echo "# LONG_KEEP=1: the cluster is left running: $BIN/psql -h $OUT -p $PORT -U postgres -d long"; trap - EXIT; exit $((failures > 0)); }
pc_stop immediate
exit $((failures > 0))
