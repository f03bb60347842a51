#!/usr/bin/env bash
# Crashes and shutdowns in the middle of a guaranteed run, on a private cluster (it is
# killed and restarted, so it must not be the shared one):
#   a. the run's background worker killed with SIGKILL (the server crash-restarts);
#   b. pg_ctl stop -m fast while a synchronous run is in progress, then start;
#   c. pg_ctl stop -m immediate while a synchronous run is in progress, then start;
#   d. a submitted (asynchronous) run in progress when the server is stopped -m fast;
#   e. the calling backend killed with SIGKILL (crash-restart);
#   f. one of the run's parallel workers killed with SIGKILL (crash-restart);
#   g. the run's worker ended with pg_terminate_backend (no restart);
#   h. a chunked run's coordinator killed with SIGKILL (crash-restart), then resume_chunks;
#   i. pg_ctl stop -m immediate during a chunked run, then start and resume_chunks.
# After each: the server accepts connections again, the extension works at once (a new
# guaranteed call returns target_met), no run is left in parallel_guarantee_activity, the
# runs view says the interrupted run is 'lost' at once, parallel_guarantee_wait on it returns
# 'lost' before its timeout, and its history row is 'lost' after the next run in that
# database; where the extension decides (b, d, g: its worker gets SIGTERM), the cleanup did
# not run.  What PostgreSQL itself guarantees is printed, not counted: that a killed
# CREATE TABLE AS left no table, that callers of a server that restarts get an error, and
# the cleanups of a crash.  For the
# chunked runs (h, i): the rows changed are exactly those of the chunks done, the run reads
# 'lost', and resume_chunks ends it done with every row changed once and every chunk done once.
# Each check prints "ok - ..." or "not ok - ..."; what the caller saw is printed after '#'.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
. test/integration/data/tap.sh
plan 107
PC_NAME=crash
PC_PORT=${CRASH_PORT:-54351}
. "$ROOT/test/integration/data/private_cluster.sh"
DB=crash
say() { sed 's/^/#   /'; }
P() { pc_psql -d "$DB" -tA -q "$@"; }
# Polls a query until it returns the wanted value (bounded: 20 s).
wait_for() {  # wait_for WANTED QUERY
  for _ in $(seq 1 400); do
    [ "$(P -c "$2" 2>/dev/null)" = "$1" ] && return 0
    sleep 0.05
  done
  return 1
}
# Waits for a background process to end (bounded); 0 if it ended.
wait_exit() {  # wait_exit PID SECONDS
  local i
  for i in $(seq 1 $(($2 * 20))); do
    kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null; return 0; }
    sleep 0.05
  done
  return 1
}
now_ms() { date +%s%3N; }

finish() {
  [ -n "${CALL_PID:-}" ] && kill "$CALL_PID" 2>/dev/null
  pc_stop immediate
}
tap_on_exit finish

if ! pc_init "restart_after_crash = on" "parallel_guarantee.history_days = 0"; then
  not_ok "setup: the private cluster did not start (log: $PC_LOG)"; exit
fi
pc_psql -d postgres -q -c "CREATE DATABASE $DB" >/dev/null || { not_ok "setup: could not create the database $DB"; exit; }
P -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || { not_ok "setup: could not create the extension and tables"; exit; }
CREATE EXTENSION parallel_guarantee;
-- The README's way to reach the extension's objects: its schema on the database's search_path.
ALTER DATABASE crash SET search_path = "$user", public, parallel_guarantee;
CREATE TABLE big (id int, pad text) WITH (parallel_workers = 4);
INSERT INTO big SELECT g, 'x' FROM generate_series(1, 200000) g;
VACUUM ANALYZE big;
CREATE TABLE cleanup_log (what text);
SQL
# Runs for minutes at full degree unless stopped.
SLOW="CREATE TABLE slow_out AS SELECT count(*) FROM big WHERE pg_sleep(0.01 + id*0) IS NOT NULL"
CLEAN="INSERT INTO cleanup_log VALUES ('cleanup')"
RUNNING_Q="SELECT run_id FROM parallel_guarantee_activity WHERE state = 'running' AND workers_launched = 4"
LEFT_Q="SELECT (SELECT count(*) FROM parallel_guarantee_activity) || '/' ||
               (SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('parallel worker', 'parallel_guarantee worker'))"

# Starts the slow guaranteed call in the background (its output in OUTFILE).
start_call() {  # start_call OUTFILE LABEL
  timeout 120 "$BIN/psql" -h "$PC_DIR" -p "$PC_PORT" -U postgres -d "$DB" -X -tA -q -v VERBOSITY=verbose \
    -c "SELECT status FROM run_with_parallel_guarantee(\$q\$$SLOW\$q\$, cleanup => \$q\$$CLEAN\$q\$, label => '$2')" \
    >"$1" 2>&1 &
  CALL_PID=$!
}
# Waits until the slow run is running with its 4 workers; prints its run id.
running_run() {
  local id=""
  for _ in $(seq 1 400); do
    id=$(P -c "$RUNNING_Q" 2>/dev/null)
    [ -n "$id" ] && { echo "$id"; return 0; }
    sleep 0.05
  done
  return 1
}

# The checks after the server is back: CASE RUN_ID CLEANUP, where CLEANUP says whether the
# extension decided that the cleanup does not run ("not run": its worker got SIGTERM and the
# README says the cleanup does not run then) or PostgreSQL did ("crash": every process was
# killed; the count is printed, not checked).
after_restart() {
  local c=$1 id=$2 cleanup=$3
  if pc_wait_ready; then ok "$c: the server accepts connections again"
  else not_ok "$c: the server does not accept connections within 30 s"; tail -20 "$PC_LOG" | say; return; fi
  check "$c: parallel_guarantee_activity is empty and no worker is left (slots/workers)" "0/0" "$(P -c "$LEFT_Q" 2>&1)"
  local before t0 t1 waited
  before=$(P -c "SELECT status FROM parallel_guarantee_runs WHERE run_id = $id" 2>&1)
  check "$c: before any new run, parallel_guarantee_runs already says run $id is 'lost' (recorded running, no worker has it)" "lost" "$before"
  # The README: wait returns when the run is no longer in progress (the row says 'lost'),
  # or when the timeout passes (the row still says 'running').  The run is gone: 'lost',
  # well before the 5 s.
  t0=$(now_ms)
  waited=$(timeout 15 "$BIN/psql" -h "$PC_DIR" -p "$PC_PORT" -U postgres -d "$DB" -X -tA -q \
             -c "SELECT status FROM parallel_guarantee_wait($id, '5 s')" 2>&1)
  t1=$(now_ms)
  check "$c: parallel_guarantee_wait($id, '5 s') on the vanished run returns 'lost' before its timeout (status|returned)" "lost|returned" \
    "$waited|$( [ $((t1 - t0)) -lt 4000 ] && echo returned || echo "took $((t1 - t0)) ms")"
  local new
  new=$(PGOPTIONS="-c client_min_messages=warning" timeout 30 "$BIN/psql" -h "$PC_DIR" -p "$PC_PORT" -U postgres -d "$DB" -X -tA -q -v VERBOSITY=verbose \
          -c "SELECT status || '|' || workers_launched || '|' || run_id FROM run_with_parallel_guarantee('SELECT count(*) FROM big',
                 target_workers => 4, min_workers => 4, max_attempts => 3, retry_delay => '100 ms', label => 'after $c')" 2>&1)
  check "$c: a new guaranteed call at once returns target_met with 4 workers" "target_met|4" "${new%|*}"
  local new_id=${new##*|}
  check "$c: the new run's id is above the interrupted run's ($id)" "above" \
    "$( [[ $new_id =~ ^[0-9]+$ ]] && [ "$new_id" -gt "$id" ] && echo above || echo "new run id '$new_id'")"
  check "$c: after the next run, the interrupted run $id is 'lost' with a finish time" "lost|t" \
    "$(P -c "SELECT status, finished_at IS NOT NULL FROM parallel_guarantee_runs WHERE run_id = $id" 2>&1)"
  # PostgreSQL's atomicity: a statement that never committed left no table.  Not counted.
  echo "#   $c: the interrupted statement's slow_out table: '$(P -c "SELECT to_regclass('slow_out')" 2>&1)'"
  local cleanups
  cleanups=$(P -c "SELECT count(*) FROM cleanup_log" 2>&1)
  if [ "$cleanup" = "not run" ]; then
    check "$c: the cleanup did not run (the worker was stopped by SIGTERM: its transaction rolls back, no cleanup)" "0" "$cleanups"
  else
    echo "#   $c: cleanup runs recorded: $cleanups (every process was killed: not counted)"
  fi
  check "$c: the new run left nothing behind (slots/workers)" "0/0" "$(P -c "$LEFT_Q" 2>&1)"
  P -c "TRUNCATE cleanup_log" >/dev/null 2>&1
}

# What the caller saw, and that it ended instead of hanging.  When the server restarted
# (or the caller itself was killed), every session was ended by PostgreSQL: that the
# caller's call ended with an error is then not the extension's doing and is printed, not
# counted ("restart"); a call still waiting after 30 s is counted as a failure.  When the
# server went on ("counted"), both are checked.
caller_ended() {  # caller_ended CASE OUTFILE restart|counted
  local ended=yes
  if ! wait_exit "$CALL_PID" 30; then ended=no; kill "$CALL_PID" 2>/dev/null; fi
  CALL_PID=
  echo "#   $1: the caller saw:"; say < "$2"
  local got
  got=$(grep -qE '^(ERROR|FATAL)|server closed the connection|connection to server was lost|terminat' "$2" && ! grep -qE '^(target_met|degraded)$' "$2" && echo error || echo "no error")
  if [ "$3" = counted ]; then
    check "$1: the caller's call ended (no hang)" "yes" "$ended"
    check "$1: the caller got an error, not a result" "error" "$got"
  elif [ $ended = yes ]; then
    echo "#   $1: the caller's call ended ($got; every session was ended by PostgreSQL: not counted)"
  else
    not_ok "$1: the caller's call is still waiting after 30 s"
  fi
}
# Log lines of one case: from byte offset FROM.
case_log() { tail -c +"$(($1 + 1))" "$PC_LOG" | grep -E 'PANIC|TRAP|terminated by signal|exited with exit code|shutdown|crash|not properly|parallel_guarantee worker|FATAL' | head -12 | say; }
logsize() { stat -c %s "$PC_LOG"; }

# a. The run's worker killed with SIGKILL.
L0=$(logsize)
start_call "$ROOT/test/out/crash/a.txt" crash-a
if ID=$(running_run); then
  WPID=$(P -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'parallel_guarantee worker'")
  echo "#   a: run $ID running with 4 workers; worker pid $WPID gets SIGKILL"
  kill -KILL "$WPID"
  caller_ended "a (worker SIGKILL)" "$ROOT/test/out/crash/a.txt" restart
  after_restart "a (worker SIGKILL)" "$ID" crash
  check "a: the server log says the worker was killed by signal 9 (and nothing else was)" "1|1" \
    "$(tail -c +"$((L0 + 1))" "$PC_LOG" | grep -c 'terminated by signal')|$(tail -c +"$((L0 + 1))" "$PC_LOG" | grep -c "(PID $WPID) was terminated by signal 9")"
  echo "#   a: server log:"; case_log "$L0"
else
  check "a: the slow run started with 4 workers" "started" "not started: $(cat "$ROOT/test/out/crash/a.txt")"
  kill "$CALL_PID" 2>/dev/null
fi

# b. pg_ctl stop -m fast mid-run, then start.
for mode in fast immediate; do
  c="b (stop -m fast)"; [ $mode = immediate ] && c="c (stop -m immediate)"
  L0=$(logsize)
  start_call "$ROOT/test/out/crash/$mode.txt" "crash-$mode"
  if ID=$(running_run); then
    t0=$(now_ms)
    if pc_stop $mode; then t1=$(now_ms); ok "$c: pg_ctl stop -m $mode finished ($((t1 - t0)) ms)"
    else not_ok "$c: pg_ctl stop -m $mode failed or timed out (60 s)"; pc_stop immediate; fi
    caller_ended "$c" "$ROOT/test/out/crash/$mode.txt" restart
    if pc_start; then ok "$c: the server starts again"
    else not_ok "$c: the server does not start again"; tail -20 "$PC_LOG" | say; fi
    after_restart "$c" "$ID" "$([ $mode = fast ] && echo "not run" || echo crash)"
    echo "#   $c: server log:"; case_log "$L0"
  else
    check "$c: the slow run started with 4 workers" "started" "not started: $(cat "$ROOT/test/out/crash/$mode.txt")"
    kill "$CALL_PID" 2>/dev/null
  fi
done

# d. A submitted run in progress when the server is stopped -m fast.
c="d (submitted run, stop -m fast)"
L0=$(logsize)
ID=$(P -c "SELECT submit_parallel_guarantee(\$q\$$SLOW\$q\$, \$q\$$CLEAN\$q\$, label => 'crash-d')" 2>&1)
if [[ $ID =~ ^[0-9]+$ ]] && wait_for "running|4" "SELECT state || '|' || workers_launched FROM parallel_guarantee_activity WHERE run_id = $ID"; then
  ok "$c: the submitted run $ID is running with 4 workers"
  if pc_stop fast; then ok "$c: pg_ctl stop -m fast finished"
  else not_ok "$c: pg_ctl stop -m fast failed or timed out (60 s)"; pc_stop immediate; fi
  if pc_start; then ok "$c: the server starts again"
  else not_ok "$c: the server does not start again"; fi
  after_restart "$c" "$ID" "not run"
  echo "#   $c: the submitted run's final row: $(P -c "SELECT status, sqlstate, message, attempts FROM parallel_guarantee_status($ID)" 2>&1)"
  echo "#   $c: its attempts: $(P -c "SELECT attempt || ' ' || outcome FROM parallel_guarantee_attempts WHERE run_id = $ID" 2>&1 | paste -sd';')"
  echo "#   $c: server log:"; case_log "$L0"
else
  check "$c: the submitted run starts with 4 workers" "running" "id '$ID': $(P -c "SELECT * FROM parallel_guarantee_activity" 2>&1)"
fi

# e. The calling backend killed with SIGKILL.
c="e (caller SIGKILL)"
L0=$(logsize)
start_call "$ROOT/test/out/crash/e.txt" crash-e
if ID=$(running_run); then
  CPID=$(P -c "SELECT caller_pid FROM parallel_guarantee_activity WHERE run_id = $ID")
  kill -KILL "$CPID"
  caller_ended "$c" "$ROOT/test/out/crash/e.txt" restart
  after_restart "$c" "$ID" crash
  echo "#   $c: server log:"; case_log "$L0"
else
  check "$c: the slow run started with 4 workers" "started" "not started: $(cat "$ROOT/test/out/crash/e.txt")"
  kill "$CALL_PID" 2>/dev/null
fi

# f. One of the run's parallel workers killed with SIGKILL.
c="f (parallel worker SIGKILL)"
L0=$(logsize)
start_call "$ROOT/test/out/crash/f.txt" crash-f
if ID=$(running_run); then
  PPID_=$(P -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'parallel worker' LIMIT 1")
  kill -KILL "$PPID_"
  caller_ended "$c" "$ROOT/test/out/crash/f.txt" restart
  after_restart "$c" "$ID" crash
  echo "#   $c: server log:"; case_log "$L0"
else
  check "$c: the slow run started with 4 workers" "started" "not started: $(cat "$ROOT/test/out/crash/f.txt")"
  kill "$CALL_PID" 2>/dev/null
fi

# g. The run's worker terminated with pg_terminate_backend (SIGTERM, no crash-restart).
c="g (worker pg_terminate_backend)"
L0=$(logsize)
start_call "$ROOT/test/out/crash/g.txt" crash-g
if ID=$(running_run); then
  P -c "SELECT pg_terminate_backend(worker_pid) FROM parallel_guarantee_activity WHERE run_id = $ID" >/dev/null
  caller_ended "$c" "$ROOT/test/out/crash/g.txt" counted
  check "$c: the caller's error is the worker's own (57P01, terminated), naming the run" \
    "ERROR:  57P01: terminating background worker \"parallel_guarantee worker\" due to administrator command|parallel_guarantee worker, run $ID" \
    "$(grep -m1 -E '^(ERROR|FATAL)' "$ROOT/test/out/crash/g.txt")|$(grep -m1 -E '^parallel_guarantee worker, run ' "$ROOT/test/out/crash/g.txt")"
  wait_for "0/0" "$LEFT_Q"
  check "$c: the history says what happened: lost, 57P01, terminated during attempt 1, its attempt row 'worker terminated'" \
    "lost|57P01|true|1|worker terminated" \
    "$(P -c "SELECT r.status || '|' || r.sqlstate || '|' || (r.message LIKE '%terminated during attempt 1%') || '|' || r.attempts || '|' || a.outcome
               FROM parallel_guarantee_runs r LEFT JOIN parallel_guarantee_attempts a USING (run_id) WHERE r.run_id = $ID" 2>&1)"
  after_restart "$c" "$ID" "not run"
  echo "#   $c: server log:"; case_log "$L0"
else
  check "$c: the slow run started with 4 workers" "started" "not started: $(cat "$ROOT/test/out/crash/g.txt")"
  not_ok "$c: the history says what happened (not run: no run started)"
  kill "$CALL_PID" 2>/dev/null
fi

# g2. The run's worker terminated after its last attempt, during the cleanup: the last
# attempt (kept to be written with the run's end) is written with the termination.
c="g2 (worker pg_terminate_backend during the cleanup after the last attempt)"
timeout 120 "$BIN/psql" -h "$PC_DIR" -p "$PC_PORT" -U postgres -d "$DB" -X -tA -q -v VERBOSITY=verbose \
  -c "SELECT status FROM run_with_parallel_guarantee('SELECT 1/0', cleanup => 'SELECT pg_sleep(60)', label => 'crash-g2')" \
  >"$ROOT/test/out/crash/g2.txt" 2>&1 &
CALL_PID=$!
if wait_for "cleaning up" "SELECT state FROM parallel_guarantee_activity WHERE label = 'crash-g2'"; then
  ID=$(P -c "SELECT run_id FROM parallel_guarantee_activity WHERE label = 'crash-g2'")
  P -c "SELECT pg_terminate_backend(worker_pid) FROM parallel_guarantee_activity WHERE run_id = $ID" >/dev/null
  caller_ended "$c" "$ROOT/test/out/crash/g2.txt" counted
  wait_for "0/0" "$LEFT_Q"
  check "$c: the history says lost, terminated after attempt 1, and keeps that attempt's row as it ended (statement error)" \
    "lost|57P01|true|1|1:statement error" \
    "$(P -c "SELECT r.status || '|' || r.sqlstate || '|' || (r.message LIKE '%terminated after attempt 1, during its cleanup%') || '|' || r.attempts || '|' || a.attempt || ':' || a.outcome
               FROM parallel_guarantee_runs r LEFT JOIN parallel_guarantee_attempts a USING (run_id) WHERE r.run_id = $ID" 2>&1)"
else
  not_ok "$c: the run reached its cleanup" "found: $(P -c "SELECT state FROM parallel_guarantee_activity WHERE label = 'crash-g2'" 2>&1) $(cat "$ROOT/test/out/crash/g2.txt")"
  kill "$CALL_PID" 2>/dev/null; CALL_PID=
fi

# h, i. Chunked runs (submit_chunks, 2 workers): the coordinator killed with SIGKILL
# (crash-restart), and the server stopped -m immediate, mid-run.  A chunk is done exactly
# when its changes committed, so after the crash the rows changed are those of the done
# chunks; the run reads 'lost', nothing is left running, and resume_chunks finishes it with
# every row changed exactly once.
CHUNK_ROWS=20000
CHUNK_SIZE=500
CHUNKS=$((CHUNK_ROWS / CHUNK_SIZE))
CHUNK_KEYS='SELECT id FROM chunk_t ORDER BY id'
CHUNK_ACTION='UPDATE chunk_t SET touched = touched + 1 WHERE id = ANY ($1)'
# A fresh table of 20,000 rows; each updated row sleeps 0.5 ms in a trigger, so a run of 40
# chunks of 500 with two workers lasts several seconds.
chunk_table() {
  P -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS chunk_t;
CREATE TABLE chunk_t (id int PRIMARY KEY, touched int NOT NULL DEFAULT 0);
INSERT INTO chunk_t (id) SELECT g FROM generate_series(1, 20000) g;
CREATE OR REPLACE FUNCTION chunk_slow() RETURNS trigger LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM pg_sleep(0.0005); RETURN NEW; END $f$;
CREATE TRIGGER chunk_slow BEFORE UPDATE ON chunk_t FOR EACH ROW EXECUTE FUNCTION chunk_slow();
VACUUM ANALYZE chunk_t;
SQL
}
# Submits the chunked run; prints its id.
submit_chunked() {  # submit_chunked LABEL
  P -c "SELECT submit_chunks('$CHUNK_KEYS', '$CHUNK_ACTION', chunk_size => $CHUNK_SIZE,
                             workers => 2, notice_every => 0, label => '$1')" 2>&1
}
# Polls (bounded: 60 s) until at least 4 of the run's chunks are done.
some_chunks_done() {  # some_chunks_done RUN_ID
  local end=$(( $(date +%s) + 60 ))
  while [ "$(date +%s)" -lt "$end" ]; do
    [ "$(P -c "SELECT count(*) >= 4 FROM parallel_guarantee_chunks WHERE run_id = $1 AND state = 'done'" 2>/dev/null)" = t ] && return 0
    sleep 0.05
  done
  return 1
}
chunk_states() {  # chunk_states RUN_ID: e.g. "done:6 pending:34"
  P -c "SELECT string_agg(state || ':' || n, ' ' ORDER BY state) FROM (SELECT state, count(*) n FROM parallel_guarantee_chunks WHERE run_id = $1 GROUP BY state) s" 2>&1
}
# What became of a chunked run that did not get going: its status and chunks.
chunk_run_state() {  # chunk_run_state RUN_ID-OR-ERROR
  [[ $1 =~ ^[0-9]+$ ]] || return 0
  echo "$(P -c "SELECT status FROM parallel_guarantee_chunk_runs WHERE run_id = $1" 2>&1) $(chunk_states "$1")"
}
# The checks after the server is back: CASE RUN_ID.
after_chunks() {
  local c=$1 id=$2
  if pc_wait_ready; then ok "$c: the server accepts connections again"
  else not_ok "$c: the server does not accept connections within 30 s"; tail -20 "$PC_LOG" | say; return; fi
  check "$c: parallel_guarantee_activity is empty and no worker is left (slots/workers)" "0/0" "$(P -c "$LEFT_Q" 2>&1)"
  echo "#   $c: run $id's chunks: $(chunk_states "$id")"
  check "$c: parallel_guarantee_chunk_runs says run $id is 'lost'" "lost" \
    "$(P -c "SELECT status FROM parallel_guarantee_chunk_runs WHERE run_id = $id" 2>&1)"
  check "$c: parallel_guarantee_chunk_status($id) reads 'lost' (recorded running, no worker has it)" "lost" \
    "$(P -c "SELECT status FROM parallel_guarantee_chunk_status($id)" 2>&1)"
  check "$c: no chunk of run $id reads 'running'" "0" \
    "$(P -c "SELECT count(*) FROM parallel_guarantee_chunks WHERE run_id = $id AND state = 'running'" 2>&1)"
  # Each row against its chunk: changed once if the chunk is done, not at all otherwise.
  check "$c: the rows changed are exactly those of the done chunks, each once (wrong/rows covered)" "0|$CHUNK_ROWS" \
    "$(P -c "SELECT count(*) FILTER (WHERE t.touched <> CASE WHEN c.state = 'done' THEN 1 ELSE 0 END) || '|' || count(*)
               FROM chunk_t t JOIN parallel_guarantee_chunks c
                 ON c.run_id = $id AND t.id BETWEEN c.first_key::int AND c.last_key::int" 2>&1)"
  local t0 t1 waited
  t0=$(now_ms)
  waited=$(timeout 15 "$BIN/psql" -h "$PC_DIR" -p "$PC_PORT" -U postgres -d "$DB" -X -tA -q \
             -c "SELECT status FROM parallel_guarantee_wait($id, '5 s')" 2>&1)
  t1=$(now_ms)
  check "$c: parallel_guarantee_wait($id, '5 s') returns 'lost' before its timeout" "lost|returned" \
    "$waited|$( [ $((t1 - t0)) -lt 5000 ] && echo returned || echo "took $((t1 - t0)) ms")"
  local res
  res=$(timeout 120 "$BIN/psql" -h "$PC_DIR" -p "$PC_PORT" -U postgres -d "$DB" -X -tA -q -v VERBOSITY=verbose \
          -c "SELECT status || '|' || chunks_done || '|' || chunks_total FROM resume_chunks($id, notice_every => 0)" 2>&1)
  check "$c: resume_chunks($id) ends done with every chunk (status|done|total)" "done|$CHUNKS|$CHUNKS" "$res"
  check "$c: every row is changed exactly once (touched <> 1 / rows)" "0|$CHUNK_ROWS" \
    "$(P -c "SELECT count(*) FILTER (WHERE touched <> 1) || '|' || count(*) FROM chunk_t" 2>&1)"
  check "$c: every chunk is done, in one committed try (chunks/done with attempts = 1)" "$CHUNKS|$CHUNKS" \
    "$(P -c "SELECT count(*) || '|' || count(*) FILTER (WHERE state = 'done' AND attempts = 1) FROM parallel_guarantee_chunks WHERE run_id = $id" 2>&1)"
  check "$c: the run then reads done, all rows changed, with a finish time" "done|$CHUNK_ROWS|t" \
    "$(P -c "SELECT status || '|' || rows_changed || '|' || CASE WHEN finished_at IS NOT NULL THEN 't' ELSE 'f' END FROM parallel_guarantee_chunk_status($id)" 2>&1)"
  check "$c: the resume left nothing behind (slots/workers)" "0/0" "$(P -c "$LEFT_Q" 2>&1)"
}

# h. The chunked run's coordinator killed with SIGKILL.
c="h (chunked run, coordinator SIGKILL)"
L0=$(logsize)
chunk_table || not_ok "$c: could not create the chunk table"
ID=$(submit_chunked crash-h)
if [[ $ID =~ ^[0-9]+$ ]] && some_chunks_done "$ID"; then
  WPID=$(P -c "SELECT worker_pid FROM parallel_guarantee_activity WHERE run_id = $ID")
  before=$(chunk_states "$ID")
  echo "#   $c: run $ID, chunks before the kill: $before; coordinator pid $WPID gets SIGKILL"
  check "$c: the run is mid-way when killed (one coordinator, chunks not all done)" "1|mid-way" \
    "$(printf '%s\n' "$WPID" | grep -c '^[0-9]\+$')|$(P -c "SELECT CASE WHEN count(*) FILTER (WHERE state = 'done') < $CHUNKS THEN 'mid-way' ELSE 'all done' END FROM parallel_guarantee_chunks WHERE run_id = $ID")"
  kill -KILL $WPID
  # The postmaster notices and crash-restarts (bounded: 30 s).
  for _ in $(seq 1 300); do
    tail -c +"$((L0 + 1))" "$PC_LOG" | grep -q 'all server processes terminated; reinitializing' && break
    sleep 0.1
  done
  check "$c: the server crash-restarts (log: reinitializing)" "1" \
    "$(tail -c +"$((L0 + 1))" "$PC_LOG" | grep -c 'all server processes terminated; reinitializing')"
  after_chunks "$c" "$ID"
  check "$c: the server log says the coordinator was killed by signal 9 (and nothing else was)" "1|1" \
    "$(tail -c +"$((L0 + 1))" "$PC_LOG" | grep -c 'terminated by signal')|$(tail -c +"$((L0 + 1))" "$PC_LOG" | grep -c "(PID $WPID) was terminated by signal 9")"
  echo "#   $c: server log:"; case_log "$L0"
else
  check "$c: the chunked run started and got 4 chunks done" "started" "id '$ID': $(chunk_run_state "$ID")"
fi

# i. The server stopped -m immediate during a chunked run, then started.
c="i (chunked run, stop -m immediate)"
L0=$(logsize)
chunk_table || not_ok "$c: could not create the chunk table"
ID=$(submit_chunked crash-i)
if [[ $ID =~ ^[0-9]+$ ]] && some_chunks_done "$ID"; then
  echo "#   $c: run $ID, chunks before the stop: $(chunk_states "$ID")"
  if pc_stop immediate; then ok "$c: pg_ctl stop -m immediate finished"
  else not_ok "$c: pg_ctl stop -m immediate failed or timed out (60 s)"; fi
  if pc_start; then ok "$c: the server starts again"
  else not_ok "$c: the server does not start again"; tail -20 "$PC_LOG" | say; fi
  after_chunks "$c" "$ID"
  echo "#   $c: server log:"; case_log "$L0"
else
  check "$c: the chunked run started and got 4 chunks done" "started" "id '$ID': $(chunk_run_state "$ID")"
fi

# The whole server log: no PANIC, no assertion failure, no crash but the ones caused here.
check "server log: no PANIC and no TRAP" "0" "$(grep -cE 'PANIC|TRAP:' "$PC_LOG")"
check "server log: processes terminated by a signal are only the four killed here (SIGKILL)" "4|0" \
  "$(grep -c 'terminated by signal' "$PC_LOG")|$(grep 'terminated by signal' "$PC_LOG" | grep -vc 'signal 9')"
check "server log: no WARNING from the history (could not ... in the history)" "0" "$(grep -c 'in the history' "$PC_LOG")"
grep -E 'in the history' "$PC_LOG" | head -5 | say

if pc_stop fast; then ok "the private cluster stops cleanly at the end"
else not_ok "the private cluster does not stop cleanly at the end"; fi
