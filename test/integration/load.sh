#!/usr/bin/env bash
# Load and memory (quick tier).  16 pgbench sessions make about 1,000 guaranteed calls with
# shortages made at random (each call sets its session's max_parallel_workers to 1..8 and
# asks for a random target, minimum, attempts, retry delay and wait_for_slots); then one
# session per path makes a few hundred calls in a row while its backend's memory is
# measured (successes, 53G01 failures, callers cancelled mid-run, calls inside one DO
# block); then one session's callers are cancelled at random moments by statement_timeout,
# and the history must still say how each run ended; then 16 sessions with SERIALIZABLE as
# their default isolation and random statement timeouts: every run is in the history and
# no worker outlives its caller's cancel by more than a second.  Each check prints "ok - ..." or
# "not ok - ..." and what it found; figures are printed as "# ..." lines.  Exits non-zero
# if any check failed.
#
# Uses a private cluster of its own (test/out/load, port $LOAD_PORT, default 54361, unix
# socket only), so it neither needs nor disturbs the project cluster on port 54329.  The
# cluster uses dynamic_shared_memory_type = mmap so that dynamic shared memory segments are
# files in its data directory and a leaked segment can be counted.
# About a minute on 2 cores.  The long tier (about 10-15 minutes, a table of figures) is
# test/long/run.sh.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
. test/integration/data/tap.sh
plan 51
OUT=${LOAD_OUT:-$ROOT/test/out/load}
PORT=${LOAD_PORT:-54361}
. "$ROOT/test/integration/data/private_cluster.sh"
pc_use load "$PORT" "$OUT"
CLIENTS=${LOAD_CLIENTS:-16}
TX=${LOAD_TX:-63}                 # calls per client: 16 x 63 = 1,008 calls
MEM_CALLS=${LOAD_MEM_CALLS:-200}  # calls measured in the memory loops (after 50 to warm up)
MEM_BOUND=${LOAD_MEM_BOUND:-1048576}

M() { pc_psql -d load -tA -q "$@"; }
# For checks that expect an empty answer: the query's rows, or, if the query failed,
# "query failed: ERROR ..." (never empty), so that a failing query fails its check.
MQ() {
  local out rc
  out=$(M -v ON_ERROR_STOP=1 "$@" 2>"$OUT/mq.err"); rc=$?
  if [ $rc != 0 ]; then echo "query failed (psql exit status $rc): $(grep -m1 -E 'ERROR|FATAL|psql' "$OUT/mq.err")"; else printf '%s' "$out"; fi
}
# The run ids of the server log lines "run N: attempt 1/A launched ..." after line FROM,
# sorted (from 1.0 the first attempt logs no separate "started" line: its launch line, said
# when its Gather has launched its workers, is the first a run logs when it need not wait).
attempt_launched_ids() { tail -n +"$(($1 + 1))" "$OUT/server.log" | sed -n 's/.*parallel_guarantee: run \([0-9]*\): attempt 1\/[0-9]* launched .*/\1/p' | sort -u; }
# started_vs_history LABEL FROM: the runs whose first attempt launched its workers (their
# worker logged the launch after line FROM of the server log) against the history's runs
# labelled LABEL, as "missing|extra|no launch recorded": runs that launched but are not in
# the history at all | recorded runs whose first attempt has workers launched but whose
# launch was not logged | runs whose launch was logged but whose first attempt is recorded
# without workers launched.  The first two must be 0.
started_vs_history() {
  local started all with
  started=$(attempt_launched_ids "$2")
  all=$(MQ -c "SELECT run_id FROM parallel_guarantee_runs WHERE label = '$1'" | sort -u)
  with=$(MQ -c "SELECT r.run_id FROM parallel_guarantee_runs r JOIN parallel_guarantee_attempts a ON a.run_id = r.run_id AND a.attempt = 1
                 WHERE r.label = '$1' AND a.workers_launched IS NOT NULL" | sort -u)
  echo "$(comm -23 <(echo "$started") <(echo "$all") | grep -c .)|$(comm -13 <(echo "$started") <(echo "$with") | grep -c .)|$(comm -23 <(echo "$started") <(echo "$with") | grep -c .)"
}
# Polls a query until it returns the wanted value (bounded: 20 s).
wait_for() {  # wait_for WANTED QUERY
  for _ in $(seq 1 400); do
    [ "$(M -c "$2" 2>/dev/null)" = "$1" ] && return 0
    sleep 0.05
  done
  return 1
}
now_ms() { date +%s%3N; }
tap_on_exit 'pc_stop immediate'

# ---------------------------------------------------------------- the private cluster
# test/integration/data/private_cluster.sh, with its settings and PC_LOAD_SETTINGS; pc_setup
# stops a cluster left running by an interrupted earlier run and replaces the data directory
# and the server log; the other files of an earlier run are removed here.
rm -f "$OUT"/*.log "$OUT"/*.txt
pc_setup load "${PC_LOAD_SETTINGS[@]}"

M -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || { not_ok "setup: could not create the extension, table and wrapper"; exit; }
CREATE EXTENSION parallel_guarantee;
-- The README's way: the extension's schema on the database's search_path.
ALTER DATABASE load SET search_path = "$user", public, parallel_guarantee;
SET search_path = "$user", public, parallel_guarantee;
-- Small, so that a call is fast; it plans 4 workers.
CREATE TABLE small (id int, pad text) WITH (parallel_workers = 4);
INSERT INTO small SELECT g, 'x' FROM generate_series(1, 20000) g;
VACUUM ANALYZE small;
-- One row per call: the status, or the SQLSTATE of the error; the run id when there was a run.
CREATE TABLE outcomes (
    n        bigserial PRIMARY KEY,
    label    text,
    outcome  text NOT NULL,
    run_id   bigint,
    kind     int, target int, min_workers int, max_attempts int, delay_ms int, wait int, mpw int,
    launched int, attempts int,
    message  text,
    at       timestamptz DEFAULT clock_timestamp());
-- Calls run_with_parallel_guarantee and records how it ended; raises nothing, so that a
-- pgbench client is never aborted.  kind 1: CREATE TABLE AS with a cleanup (the table is
-- dropped after a success); other kinds: a SELECT.
CREATE FUNCTION load_call(p_kind int, p_target int, p_min int, p_attempts int, p_delay_ms int,
                          p_wait int, p_mpw int, p_label text DEFAULT 'load')
RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    r   parallel_guarantee_result;
    st  text;
    msg text;
    ctx text;
    tbl text := 'load_out_' || pg_backend_pid();
    stmt text := 'SELECT count(*) FROM small';
    cln  text;
BEGIN
    IF p_kind = 1 THEN
        stmt := format('CREATE TABLE %I AS SELECT id %% 10 AS k, count(*) AS n FROM small GROUP BY 1', tbl);
        cln := format('DROP TABLE IF EXISTS %I', tbl);
    END IF;
    BEGIN
        SELECT * INTO r FROM run_with_parallel_guarantee(stmt, cleanup => cln,
            target_workers => p_target, min_workers => p_min, max_attempts => p_attempts,
            retry_delay => make_interval(secs => p_delay_ms / 1000.0),
            wait_for_slots => p_wait = 1, max_wait => '0.2 s', label => p_label);
        INSERT INTO outcomes (label, outcome, run_id, kind, target, min_workers, max_attempts, delay_ms, wait, mpw, launched, attempts)
        VALUES (p_label, r.status, r.run_id, p_kind, p_target, p_min, p_attempts, p_delay_ms, p_wait, p_mpw, r.workers_launched, r.attempts);
        IF p_kind = 1 THEN EXECUTE cln; END IF;
        RETURN r.status;
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, ctx = PG_EXCEPTION_CONTEXT;
    END;
    INSERT INTO outcomes (label, outcome, run_id, kind, target, min_workers, max_attempts, delay_ms, wait, mpw, message)
    VALUES (p_label, st, substring(ctx from 'parallel_guarantee worker, run ([0-9]+)')::bigint,
            p_kind, p_target, p_min, p_attempts, p_delay_ms, p_wait, p_mpw, msg);
    RETURN st;
END $f$;
SQL
# Dynamic shared memory segments smaller than 1 MB: the control segment, and those of runs
# and parallel queries in progress (the statistics' DSA grows by segments of 1 MB or more).
small_dsm() { find "$PC_DATA/pg_dynshmem" -type f -size -1024k | wc -l; }
DSM_BASE=$(small_dsm)

# ---------------------------------------------------------------- 1. 16 sessions, ~1,000 calls
cat > "$OUT/load.pgbench" <<'PGB'
\set kind random(1, 3)
\set mpw random(1, 8)
\set target random(2, 4)
\set minw random(0, :target)
\set attempts random(1, 3)
\set delay random(0, 1) * random(1, 5)
\set wait random(0, 1)
SET max_parallel_workers = :mpw;
SELECT load_call(:kind, :target, :minw, :attempts, :delay, :wait, :mpw);
PGB
chown postgres: "$OUT/load.pgbench"
CALLS=$((CLIENTS * TX))
t0=$(now_ms)
timeout 300 runuser -u postgres -- "$BIN/pgbench" -h "$OUT" -p "$PORT" -U postgres -n -c "$CLIENTS" -j 2 -t "$TX" \
  -f "$OUT/load.pgbench" load >"$OUT/pgbench.txt" 2>&1
PGB_RC=$?
t1=$(now_ms)
check "pgbench: $CLIENTS clients x $TX calls finished (exit status)" "0" "$PGB_RC"
[ $PGB_RC = 0 ] || sed 's/^/    # /' "$OUT/pgbench.txt" | tail -15
check "every call recorded an outcome (no client aborted)" "$CALLS" "$(M -c "SELECT count(*) FROM outcomes WHERE label = 'load'")"
awk -v n="$CALLS" -v ms="$((t1 - t0))" 'BEGIN { printf "# %d calls in %.1f s: %.1f calls/s\n", n, ms / 1000, n * 1000 / ms }'
echo "# outcomes: $(M -c "SELECT string_agg(outcome || '=' || n, ', ' ORDER BY n DESC) FROM (SELECT outcome, count(*) n FROM outcomes WHERE label = 'load' GROUP BY 1) s")"
echo "# by session max_parallel_workers < target: $(M -c "SELECT string_agg(outcome || '=' || n, ', ' ORDER BY n DESC) FROM (SELECT outcome, count(*) n FROM outcomes WHERE label = 'load' AND mpw < target GROUP BY 1) s")"

UNEXPECTED=$(MQ -c "SELECT string_agg(outcome || ' x' || n || ': ' || coalesce(msg, ''), E'\n') FROM (
                     SELECT outcome, count(*) n, min(message) msg FROM outcomes
                      WHERE label = 'load' AND outcome NOT IN ('target_met', 'degraded', '53G01', '53G02', '53G03', '53G05')
                      GROUP BY 1) s")
check "every call ended with success, degraded or 53G01/53G02/53G03/53G05 (unexpected outcomes)" "" "$UNEXPECTED"

# After the load: nothing left running.
wait_for 0 "SELECT count(*) FROM parallel_guarantee_activity"
check "no run left in parallel_guarantee_activity" "0" "$(M -c "SELECT count(*) FROM parallel_guarantee_activity")"
wait_for 0 "SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('parallel worker', 'parallel_guarantee worker')"
check "no parallel_guarantee worker or parallel worker left" "0" \
  "$(M -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('parallel worker', 'parallel_guarantee worker')")"
check "the queue is empty" "0" "$(M -c "SELECT count(*) FROM parallel_guarantee_queue")"
check "no dynamic shared memory segment left (segments under 1 MB in pg_dynshmem)" "$DSM_BASE" "$(small_dsm)"

# The history agrees with what the callers saw.
check "every history row has a final status (rows left 'running' or marked 'lost')" "0" \
  "$(M -c "SELECT count(*) FROM parallel_guarantee_runs WHERE label = 'load' AND status NOT IN ('target_met', 'degraded', 'failed', 'error')")"
check "history rows = calls that got a run id" "$(M -c "SELECT count(*) FROM outcomes WHERE label = 'load' AND run_id IS NOT NULL")" \
  "$(M -c "SELECT count(*) FROM parallel_guarantee_runs WHERE label = 'load'")"
# Every call started a run but those refused before any run starts (53G02: can never be
# reached; 53G05: no run or background-worker slot): the history has exactly those runs.
check "runs in the history = runs started: $CALLS calls minus those refused before a run starts (53G02, 53G05)" \
  "$(M -c "SELECT count(*) FILTER (WHERE outcome NOT IN ('53G02', '53G05')) FROM outcomes WHERE label = 'load'")" \
  "$(M -c "SELECT count(*) FROM parallel_guarantee_runs WHERE label = 'load'")"
check "the run ids of the history are those the callers got (missing / extra)" "0/0" \
  "$(M -c "SELECT (SELECT count(*) FROM outcomes o WHERE label = 'load' AND run_id IS NOT NULL AND NOT EXISTS (SELECT FROM parallel_guarantee_runs r WHERE r.run_id = o.run_id))
               || '/' || (SELECT count(*) FROM parallel_guarantee_runs r WHERE label = 'load' AND NOT EXISTS (SELECT FROM outcomes o WHERE o.run_id = r.run_id))")"
# 53G02 means "can never be reached" (README: "Retrying cannot help"): targets 2-4 always
# fit this server (max_parallel_workers 8, max_worker_processes 32) when it is idle.
check "no 53G02 (\"can never be reached\") for targets an idle server reaches" "" \
  "$(MQ -c "SELECT count(*) || ' x 53G02: ' || min(message) FROM outcomes WHERE label = 'load' AND outcome = '53G02' HAVING count(*) > 0")"
check "only errors raised before a run starts (53G02, 53G05) have no run id" "" \
  "$(MQ -c "SELECT string_agg(DISTINCT outcome, ',') FROM outcomes WHERE label = 'load' AND run_id IS NULL AND outcome NOT IN ('53G02', '53G05')")"
MISMATCH=$(MQ -c "SELECT string_agg(format('run %s: caller %s, history %s/%s', o.run_id, o.outcome, r.status, r.sqlstate), E'\n')
                   FROM outcomes o JOIN parallel_guarantee_runs r USING (run_id)
                  WHERE o.label = 'load' AND NOT (
                        (o.outcome IN ('target_met', 'degraded') AND r.status = o.outcome AND r.sqlstate IS NULL
                         AND r.attempts = o.attempts AND r.workers_launched IS NOT DISTINCT FROM o.launched)
                     OR (o.outcome = '53G01' AND r.status = 'failed' AND r.sqlstate = '53G01')
                     OR (o.outcome NOT IN ('target_met', 'degraded', '53G01') AND r.status = 'error' AND r.sqlstate = o.outcome))")
check "each history row says what its caller got (status, SQLSTATE, attempts, workers)" "" "$MISMATCH"
# A session max_parallel_workers below the target cannot change during the run: one attempt.
check "calls whose session max_parallel_workers was below the target were judged in one attempt (such runs|those with more attempts)" "some|0" \
  "$(M -c "SELECT CASE WHEN count(*) > 0 THEN 'some' ELSE 'none' END || '|' || count(*) FILTER (WHERE r.attempts > 1)
             FROM outcomes o JOIN parallel_guarantee_runs r USING (run_id) WHERE o.label = 'load' AND o.mpw < o.target")"
check "each run has as many attempt rows as its attempts" "" \
  "$(MQ -c "SELECT string_agg(format('run %s: %s attempts, %s rows', r.run_id, r.attempts, (SELECT count(*) FROM parallel_guarantee_attempts a WHERE a.run_id = r.run_id)), E'\n')
             FROM parallel_guarantee_runs r WHERE label = 'load'
              AND r.attempts IS DISTINCT FROM (SELECT count(*) FROM parallel_guarantee_attempts a WHERE a.run_id = r.run_id)")"
check "degraded and successful runs launched what they promise (target_met >= target, degraded in [min, target))" "" \
  "$(MQ -c "SELECT string_agg(format('run %s: %s with %s of target %s min %s', run_id, outcome, launched, target, min_workers), E'\n')
             FROM outcomes WHERE label = 'load' AND NOT (
                  (outcome = 'target_met' AND launched >= target)
               OR (outcome = 'degraded' AND launched >= min_workers AND launched < target)
               OR outcome NOT IN ('target_met', 'degraded'))")"
check "no table left behind by the CREATE TABLE AS calls" "0" "$(M -c "SELECT count(*) FROM pg_class WHERE relname LIKE 'load_out_%'")"

# ---------------------------------------------------------------- 2. memory of one caller
# One session per path: 50 calls to warm up, the backend's memory (sum of total_bytes of
# pg_backend_memory_contexts, and the bytes used in TopMemoryContext, where a leak that
# outlives transactions lands), $MEM_CALLS calls (each its own transaction, as a client
# sends them), the memory again.  Paths: success; failure (53G01: the session's
# max_parallel_workers is below the minimum); the caller cancelled mid-run by a random
# statement_timeout of 1-40 ms; and all the calls inside one DO block (one transaction).
MEMQ="SELECT sum(total_bytes) AS total, (SELECT used_bytes FROM pg_backend_memory_contexts WHERE name = 'TopMemoryContext') AS top FROM pg_backend_memory_contexts"
TOP_BOUND=${LOAD_TOP_BOUND:-2048}
mem_report() {  # mem_report NAME "TOTAL_BEFORE TOTAL_AFTER TOP_BEFORE TOP_AFTER"
  local name=$1 tb ta ub ua
  read -r tb ta ub ua <<<"$2"
  if [ -z "$ua" ]; then
    check "memory ($name): the loop ran" "four figures" "${2:-nothing}: $(tail -3 "$OUT/mem-$name.err" 2>/dev/null)"
    return
  fi
  echo "# memory ($name): $MEM_CALLS calls: total $tb -> $ta bytes (growth $((ta - tb))), TopMemoryContext used $ub -> $ua (growth $((ua - ub)), $(awk -v g=$((ua - ub)) -v n="$MEM_CALLS" 'BEGIN { printf "%.1f", g / n }') bytes/call)"
  check_true "memory ($name): the caller's memory grows less than $MEM_BOUND bytes over $MEM_CALLS calls" \
    "$([ $((ta - tb)) -lt "$MEM_BOUND" ] && echo t || echo f)" "growth $((ta - tb)) bytes ($tb -> $ta)"
  check_true "memory ($name): the caller's TopMemoryContext keeps nothing per call (used bytes grow less than $TOP_BOUND over $MEM_CALLS calls)" \
    "$([ $((ua - ub)) -lt "$TOP_BOUND" ] && echo t || echo f)" "TopMemoryContext used bytes $ub -> $ua: $((ua - ub)) bytes over $MEM_CALLS calls"
}
mem_loop() {  # mem_loop NAME SETUP GENERATOR-QUERY: the generator's rows are run by \gexec
  local name=$1 setup=$2 gen=$3
  { echo "SET client_min_messages = warning;"
    echo "$setup"
    echo "$gen FROM generate_series(1, 50) \\gexec"
    echo "RESET statement_timeout;"
    echo "$MEMQ \\gset before_"
    echo "$gen FROM generate_series(1, $MEM_CALLS) \\gexec"
    echo "RESET statement_timeout;"
    echo "$MEMQ \\gset after_"
    echo "\\echo MEM :before_total :after_total :before_top :after_top"
  } | M >"$OUT/mem-$name.txt" 2>"$OUT/mem-$name.err"
  mem_report "$name" "$(sed -n 's/^MEM //p' "$OUT/mem-$name.txt")"
}
CALL="run_with_parallel_guarantee('SELECT count(*) FROM small', target_workers => 2, min_workers => 0, max_attempts => 1, label => 'mem')"
mem_loop success "" "SELECT \$c\$SELECT status FROM $CALL\$c\$"
check "memory (success): every call succeeded" "$((MEM_CALLS + 50))" "$(grep -cE '^(target_met|degraded)$' "$OUT/mem-success.txt")"

FAIL="run_with_parallel_guarantee('SELECT count(*) FROM small', target_workers => 2, min_workers => 2, max_attempts => 1, label => 'mem-fail')"
mem_loop failure "SET max_parallel_workers = 1;" "SELECT \$c\$SELECT status FROM $FAIL\$c\$"
# PostgreSQL's max_parallel_workers caps the parallel workers alive at once: on a busy
# machine the first worker can finish the small scan and exit before the second is
# registered, and the run then counts 2 launched.  Rare; the failing path is what is measured.
FAILED=$(grep -c 'launched 1 of 2 parallel workers, below min_workers 2' "$OUT/mem-failure.err")
MET=$(grep -c '^target_met$' "$OUT/mem-failure.txt")
echo "# memory (failure): $FAILED calls failed with 53G01, $MET got 2 workers one after the other"
check "memory (failure): every call failed with 53G01 (or got its 2 workers one after the other)" "$((MEM_CALLS + 50))" "$((FAILED + MET))"
check_true "memory (failure): at least 90 % of the calls failed with 53G01" "$([ $((FAILED * 10)) -ge $(((MEM_CALLS + 50) * 9)) ] && echo t || echo f)" "$FAILED of $((MEM_CALLS + 50))"

# A statement that runs for seconds (pg_sleep per row), cancelled after 1-40 ms.
SLOW="run_with_parallel_guarantee('SELECT count(*) FROM small WHERE pg_sleep(0.001) IS NOT NULL', cleanup => 'SELECT 1', target_workers => 2, min_workers => 0, max_attempts => 1, label => 'mem-cancel')"
LOG_CANCEL=$(wc -l < "$OUT/server.log")
mem_loop cancel "SET parallel_guarantee.log_attempts = on;" "SELECT format('SET statement_timeout = %s', 1 + (random() * 39)::int), \$c\$SELECT status FROM $SLOW\$c\$"
# A timeout that fires as a statement ends cancels the next one "due to user request"
# (PostgreSQL's own behaviour): both are 57014.
# The SET before a call can itself be cancelled by the previous, tiny timeout: so at least
# one 57014 per call, and no other error.
mem_cancels=$(grep -cE '^ERROR:  canceling statement due to (statement timeout|user request)' "$OUT/mem-cancel.err")
check "memory (cancel): every call was cancelled by its statement_timeout (57014)" "t|0" \
  "$( [ "$mem_cancels" -ge $((MEM_CALLS + 50)) ] && echo t || echo "f ($mem_cancels of $((MEM_CALLS + 50)))")|$(grep -E '^ERROR:' "$OUT/mem-cancel.err" | grep -cvE 'canceling statement due to (statement timeout|user request)')"

# Inside one DO block: one transaction for all the calls.  The same function measures both
# times, so its compiled code and plan count in both figures.
M >"$OUT/mem-do.txt" 2>"$OUT/mem-do.err" <<SQL
SET client_min_messages = warning;
CREATE FUNCTION pg_temp.backend_memory() RETURNS text LANGUAGE plpgsql AS
  \$f\$BEGIN RETURN (SELECT sum(total_bytes) || ' ' || (SELECT used_bytes FROM pg_backend_memory_contexts WHERE name = 'TopMemoryContext') FROM pg_backend_memory_contexts); END\$f\$;
DO \$\$
DECLARE before text; after text; r parallel_guarantee_result;
BEGIN
    FOR i IN 1 .. 50 + $MEM_CALLS LOOP
        IF i = 51 THEN before := pg_temp.backend_memory(); END IF;
        SELECT * INTO r FROM run_with_parallel_guarantee('SELECT count(*) FROM small', target_workers => 2, min_workers => 0, max_attempts => 1, label => 'mem-do');
    END LOOP;
    after := pg_temp.backend_memory();
    RAISE WARNING 'MEM % %', before, after;
END \$\$;
SQL
mem_report do "$(sed -n 's/.*MEM \([0-9]*\) \([0-9]*\) \([0-9]*\) \([0-9]*\).*/\1 \3 \2 \4/p' "$OUT/mem-do.err")"

wait_for 0 "SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('parallel worker', 'parallel_guarantee worker')"
check "memory loops: every history row has a final status" "" \
  "$(MQ -c "SELECT string_agg(label || ': ' || status || ' x' || n, ', ') FROM (SELECT label, status, count(*) n FROM parallel_guarantee_runs WHERE label LIKE 'mem%' AND status NOT IN ('target_met', 'degraded', 'failed', 'error', 'cancelled') GROUP BY 1, 2) s")"
check "cancelled callers (slow statement): their recorded runs say cancelled, 57014" "" \
  "$(MQ -c "SELECT string_agg(status || '/' || coalesce(sqlstate, '-') || ' x' || n, ', ') FROM (SELECT status, sqlstate, count(*) n FROM parallel_guarantee_runs WHERE label = 'mem-cancel' AND (status, sqlstate) IS DISTINCT FROM ('cancelled', '57014') GROUP BY 1, 2) s")"
echo "# cancelled callers (slow statement): $(M -c "SELECT count(*) FROM parallel_guarantee_runs WHERE label = 'mem-cancel'") of $((MEM_CALLS + 50)) runs are in the history"
# Every run whose first attempt launched its workers (its worker logged the launch) is in
# the history, and every recorded launch was logged.
SVH=$(started_vs_history mem-cancel "$LOG_CANCEL")
echo "# cancelled callers (slow statement): launches logged but recorded without workers: ${SVH##*|}"
check "cancelled callers (slow statement): every run that launched is in the history, every recorded launch was logged (runs missing|launches not logged)" "0|0" "${SVH%|*}"

# ---------------------------------------------------------------- 3. callers cancelled at any moment
# A fast statement under a random statement_timeout: the caller is cancelled while its
# worker starts, runs the attempt, or records the run, or not at all.  The timeouts are
# drawn from 1 ms to twice the median duration of the same call measured here first, so
# that both outcomes happen on any machine: calls that return their result and calls
# cancelled on the way (some of those after their statement finished: then the run's
# work is committed and the history says target_met).  Whatever the moment, the run must
# end with a final status in the history (README: "Nothing stays running"; "Every run
# and every attempt is recorded").
RACE_CALLS=${LOAD_RACE_CALLS:-300}
RACE_CALL="run_with_parallel_guarantee('SELECT count(*) FROM small', cleanup => 'SELECT 1', target_workers => 2, min_workers => 0, max_attempts => 1, label => 'race')"
RACE_MEASURE="run_with_parallel_guarantee('SELECT count(*) FROM small', cleanup => 'SELECT 1', target_workers => 2, min_workers => 0, max_attempts => 1, label => 'race-measure')"
RACE_MS=$(M -c "SET client_min_messages = warning" -c "CREATE TEMP TABLE d (ms float8)" \
            -c "DO \$\$ DECLARE t timestamptz; BEGIN FOR i IN 1 .. 11 LOOP t := clock_timestamp(); PERFORM * FROM $RACE_MEASURE; INSERT INTO d VALUES (extract(epoch FROM clock_timestamp() - t) * 1000); END LOOP; END \$\$" \
            -c "SELECT ceil(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms))::int FROM d" 2>&1 | tail -1)
[[ $RACE_MS =~ ^[0-9]+$ ]] || { echo "# measuring the call failed: $RACE_MS"; RACE_MS=10; }
LOG_LINES=$(wc -l < "$OUT/server.log")
{ echo "SET client_min_messages = warning;"
  echo "SET parallel_guarantee.log_attempts = on;"
  echo "SELECT format('SET statement_timeout = %s', 1 + (random() * ($((2 * RACE_MS)) - 1))::int), \$c\$SELECT 'result ' || status || ' ' || run_id FROM $RACE_CALL\$c\$ FROM generate_series(1, $RACE_CALLS) \\gexec"
} | M >"$OUT/race.txt" 2>"$OUT/race.err"
wait_for 0 "SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('parallel worker', 'parallel_guarantee worker')"
RACE_CANCELLED=$(grep -cE '^ERROR:  canceling statement due to (statement timeout|user request)' "$OUT/race.err")
RACE_RESULTS=$(grep -cE '^result (target_met|degraded) [0-9]+$' "$OUT/race.txt")
M -c "CREATE TABLE race_results (run_id bigint, status text)" >/dev/null
sed -n 's/^result \([a-z_]*\) \([0-9]*\)$/INSERT INTO race_results VALUES (\2, '"'"'\1'"'"');/p' "$OUT/race.txt" | M >/dev/null
echo "# callers cancelled at any moment: timeouts 1-$((2 * RACE_MS)) ms (a call takes a median $RACE_MS ms); $RACE_CALLS calls, $RACE_CANCELLED cancelled, $RACE_RESULTS returned a result; history: $(M -c "SELECT string_agg(status || '=' || n, ', ' ORDER BY n DESC) FROM (SELECT status, count(*) n FROM parallel_guarantee_runs WHERE label = 'race' GROUP BY 1) s")"
echo "# callers cancelled after their statement had finished (caller 57014, run target_met): $(M -c "SELECT count(*) FROM parallel_guarantee_runs r WHERE label = 'race' AND status = 'target_met' AND run_id NOT IN (SELECT run_id FROM race_results)")"
check "callers cancelled at any moment: both outcomes happened (some calls returned their result, some were cancelled by their timeout)" "yes|yes" \
  "$([ "$RACE_RESULTS" -gt 0 ] && echo yes || echo "no result")|$([ "$RACE_CANCELLED" -gt 0 ] && echo yes || echo "none cancelled")"
# A SET statement_timeout can itself be cancelled by the previous, tiny timeout: so each
# call has at least one outcome, and every error is a cancel.
race_outcomes=$((RACE_CANCELLED + RACE_RESULTS))
check "callers cancelled at any moment: every call returned its result or got 57014" "t|0" \
  "$( [ "$race_outcomes" -ge "$RACE_CALLS" ] && echo t || echo "f ($race_outcomes of $RACE_CALLS)")|$(grep -E '^ERROR:' "$OUT/race.err" | grep -cvE 'canceling statement due to (statement timeout|user request)')"
check "callers cancelled at any moment: each call that returned a result has its run in the history, with that status (results|in the history with the same status)" \
  "$RACE_RESULTS|$RACE_RESULTS" \
  "$(MQ -c "SELECT count(*) || '|' || count(*) FILTER (WHERE r.status = x.status) FROM race_results x LEFT JOIN parallel_guarantee_runs r USING (run_id)")"
check "callers cancelled at any moment: every other run ended cancelled (57014), or target_met when the cancel came after its statement finished (runs neither)" "0" \
  "$(MQ -c "SELECT count(*) FROM parallel_guarantee_runs WHERE label = 'race' AND run_id NOT IN (SELECT run_id FROM race_results)
               AND (status, coalesce(sqlstate, '-')) NOT IN (('cancelled', '57014'), ('target_met', '-'))")"
check "callers cancelled at any moment: no run left 'running' or marked 'lost' in the history" "" \
  "$(MQ -c "SELECT string_agg(status || ' x' || n, ', ') FROM (SELECT status, count(*) n FROM parallel_guarantee_runs WHERE label = 'race' AND status IN ('running', 'lost') GROUP BY 1) s")"
# Every run whose first attempt launched its workers (its worker logged the launch) is in
# the history, and every recorded launch was logged.
SVH=$(started_vs_history race "$LOG_LINES")
echo "# callers cancelled at any moment: launches logged but recorded without workers: ${SVH##*|}"
check "callers cancelled at any moment: every run that launched is in the history, every recorded launch was logged (runs missing|launches not logged)" "0|0" "${SVH%|*}"
check "callers cancelled at any moment: the workers recorded every run (no 'could not ... in the history' warning)" "" \
  "$(tail -n +"$((LOG_LINES + 1))" "$OUT/server.log" | grep -o "WARNING:  parallel_guarantee: could not .* in the history: .*" | sort | uniq -c | sed 's/^ *//')"
check "callers cancelled at any moment: each recorded run has its attempt rows" "" \
  "$(MQ -c "SELECT string_agg(format('run %s (%s): %s attempts, %s rows', r.run_id, r.status, r.attempts, (SELECT count(*) FROM parallel_guarantee_attempts a WHERE a.run_id = r.run_id)), E'\n')
             FROM parallel_guarantee_runs r WHERE label = 'race' AND status NOT IN ('running', 'lost')
              AND r.attempts IS DISTINCT FROM (SELECT count(*) FROM parallel_guarantee_attempts a WHERE a.run_id = r.run_id)" | head -5)"

# ---------------------------------------------------------------- 4. serializable sessions, random timeouts
# 16 sessions whose default isolation is SERIALIZABLE, each making calls under a random
# statement_timeout of 1-400 ms, half of them slow (3 s), half fast: their workers write the
# history at the same moments.  The bookkeeping must not inherit the sessions' isolation or
# timeouts (a history write that failed used to leave its worker deaf to every cancel, and
# its run missing from the history): every run whose worker started an attempt is in the
# history with a final status, and no worker outlives its caller by more than a second.
SER_SESSIONS=${LOAD_SER_SESSIONS:-16}
SER_CALLS=${LOAD_SER_CALLS:-12}
LOG_SER=$(wc -l < "$OUT/server.log")
for s in $(seq 1 "$SER_SESSIONS"); do
  { echo "SET client_min_messages = warning;"
    echo "SET parallel_guarantee.log_attempts = on;"
    for c in $(seq 1 "$SER_CALLS"); do
      echo "SET statement_timeout = $(( (RANDOM % 400) + 1 ));"
      if [ $((c % 2)) = 0 ]; then
        echo "SELECT status FROM run_with_parallel_guarantee(\$s\$SELECT count(*) FROM small WHERE id < 8 AND pg_sleep(0.4 * (id % 2)) IS NOT NULL\$s\$, target_workers => 2, min_workers => 0, max_attempts => 1, force_workers => true, label => 'serial');"
      else
        echo "SELECT status FROM run_with_parallel_guarantee('SELECT count(*) FROM small', target_workers => 2, min_workers => 0, max_attempts => 1, label => 'serial');"
      fi
    done
  } | PGOPTIONS="-c default_transaction_isolation=serializable" M >/dev/null 2>"$OUT/serial-$s.err" &
done
wait
SER_END=$(now_ms)
# Bounded poll: the workers of the cancelled callers must all be gone within a second.
gone_ms=-1
for _ in $(seq 1 100); do
  if [ "$(M -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel_guarantee worker'")" = 0 ]; then
    gone_ms=$(( $(now_ms) - SER_END )); break
  fi
  sleep 0.02
done
check_true "serializable sessions, random timeouts: no worker outlives its caller by more than a second" \
  "$([ "$gone_ms" -ge 0 ] && [ "$gone_ms" -le 1000 ] && echo t || echo f)" \
  "workers still there $([ "$gone_ms" -ge 0 ] && echo "${gone_ms} ms" || echo "after 2 s") after the last caller ended: $(M -c "SELECT string_agg(pid || ' ' || state, ', ') FROM pg_stat_activity WHERE backend_type = 'parallel_guarantee worker'")"
wait_for 0 "SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('parallel worker', 'parallel_guarantee worker')"
SER_STARTED=$(attempt_launched_ids "$LOG_SER")
echo "# serializable sessions: $((SER_SESSIONS * SER_CALLS)) calls, $(echo "$SER_STARTED" | grep -c .) runs launched workers; history: $(M -c "SELECT string_agg(status || '=' || n, ', ' ORDER BY n DESC) FROM (SELECT status, count(*) n FROM parallel_guarantee_runs WHERE label = 'serial' GROUP BY 1) s")"
check_true "serializable sessions: some runs launched workers (the check has something to check)" \
  "$([ "$(echo "$SER_STARTED" | grep -c .)" -gt 0 ] && echo t || echo f)" "none launched"
SVH=$(started_vs_history serial "$LOG_SER")
echo "# serializable sessions: launches logged but recorded without workers: ${SVH##*|}"
check "serializable sessions: every run that launched is in the history, every recorded launch was logged (runs missing|launches not logged)" "0|0" "${SVH%|*}"
check "serializable sessions: every recorded run has a final status (none 'running' or 'lost')" "" \
  "$(MQ -c "SELECT string_agg(status || ' x' || n, ', ') FROM (SELECT status, count(*) n FROM parallel_guarantee_runs WHERE label = 'serial' AND status IN ('running', 'lost') GROUP BY 1) s")"
check "serializable sessions: no history write failed (no 'could not ... in the history' warning)" "" \
  "$(tail -n +"$((LOG_SER + 1))" "$OUT/server.log" | grep -o "WARNING:  parallel_guarantee: could not .* in the history: .*" | sort | uniq -c | sed 's/^ *//' | head -3)"
# 16 runs of 3 workers each do not fit max_worker_processes = 32: some calls get 53G05.
check "serializable sessions: every error the callers got was their own timeout or 53G05 (no worker slot)" "" \
  "$(cat "$OUT"/serial-*.err | grep -E '^ERROR:' | grep -vE 'canceling statement due to (statement timeout|user request)|could not start a background worker for the guaranteed run' | sort | uniq -c | head -3)"

# ---------------------------------------------------------------- the end
wait_for 0 "SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('parallel worker', 'parallel_guarantee worker')"
check "at the end: no run slot, no worker left (slots/workers)" "0/0" \
  "$(M -c "SELECT (SELECT count(*) FROM parallel_guarantee_activity) || '/' || (SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('parallel worker', 'parallel_guarantee worker'))")"
check "at the end: no dynamic shared memory segment left (segments under 1 MB in pg_dynshmem)" "$DSM_BASE" "$(small_dsm)"
check "the server log has no crash, PANIC or XX000" "" \
  "$(grep -E 'terminated by signal|was terminated|PANIC|TRAP|\] XX000 |server process .* exited with exit code [2-9]' "$OUT/server.log" | head -5)"
check "load and memory loops: no 'could not ... in the history' warning in the server log" "" \
  "$(head -n "$LOG_LINES" "$OUT/server.log" | grep -o "WARNING:  parallel_guarantee: could not .* in the history: .*" | sort | uniq -c | sed 's/^ *//')"

pc_stop immediate
