#!/usr/bin/env bash
# Security, on a private cluster (test/out/security, port 54361): what an ordinary role
# (mallory, alice, bob; the superuser is postgres) can do to the extension through the
# code it hands it.  The extension's bookkeeping SQL runs as the owner of its tables (the
# superuser) inside the very background worker where the caller's statement, cleanup, keys
# query, action and their triggers run.  The roles have USAGE on the schema
# parallel_guarantee, which the database's search_path ends with (the README's way).
#   A. pg_temp and public planting, through every path that runs the caller's code: domains
#      named like every type and temporary views named like every relation the bookkeeping
#      might name, and views and functions in public (ahead of parallel_guarantee on the
#      search_path) named like the extension's relations and internal functions
#      (data/security_setup.sql), must never run as anyone but mallory; mallory stays an
#      ordinary role, the superuser-only table is not copied, and the run is recorded right;
#      a role without USAGE on the schema reaches nothing of it (42501);
#   B. a worker whose history write failed still obeys a cancel; concurrent serializable
#      runs are all in the history; no worker outlives its caller's cancel by over a second;
#   C. oversized statement, cleanup, keys query, action (over 1 MiB: 54000) and label (over
#      63 bytes: 22023) are refused before a run slot is taken, 40 times in a row;
#   D. fair shares: parallel_guarantee.max_runs_per_role, max_async_runs_per_role (53G06),
#      max_priority (42501), max_chunk_helpers;
#   E. bounded memory: the caller relaying 200,000 NOTICEs, a coordinator holding 3,000,000
#      keys;
#   F. resume: bob may not resume alice's run, nor take a slot or block her resume with it; a
#      run resumed by the superuser is alice's (activity, cancel) and does not take the
#      superuser's session settings (session_replication_role = replica).
# Each check prints "ok - ..." or "not ok - ..." and what it expected and found.
# shellcheck disable=SC2016  # $1, $d$ and $s$ in single quotes are SQL's
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
PC_NAME=security
PC_PORT=${SECURITY_PORT:-54361}
. "$ROOT/test/integration/data/tap.sh"
plan 45
. "$ROOT/test/integration/data/private_cluster.sh"
# SECURITY_PG_BIN: the bin directory of another (relocated) PostgreSQL installation, to run
# these checks against another build of the extension than the one installed.
BIN=${SECURITY_PG_BIN:-$BIN}
DB=secdb
P() { pc_psql -d "$DB" -tA -q "$@"; }                                  # as postgres
R() { local role=$1; shift; pc_psql -U "$role" -d "$DB" -tA -q "$@"; }  # as a role
# The first error of the statements run as ROLE, with its SQLSTATE ("ERROR:  42501"); empty if none.
err() {  # err ROLE SQL...
  local role=$1; shift
  local args=(); for s in "$@"; do args+=(-c "$s"); done
  PGOPTIONS="-c client_min_messages=warning" R "$role" -v VERBOSITY=sqlstate "${args[@]}" 2>&1 >/dev/null | grep -m1 '^ERROR' || true
}
poll() {  # poll WANTED QUERY [TENTHS]: as postgres, until QUERY answers WANTED (bounded: 20 s)
  for _ in $(seq 1 "${3:-200}"); do
    [ "$(P -c "$2" 2>/dev/null)" = "$1" ] && return 0
    sleep 0.1
  done
  return 1
}
WORK=""
BG=()   # background processes this script started
bg() { "$@" & BG+=($!); }   # bg COMMAND...: starts it in the background, remembered
wait_bg() {  # wait_bg PID [TENTHS]: waits for a background process of this script (bounded: 30 s)
  for _ in $(seq 1 "${2:-300}"); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$1" 2>/dev/null; then echo "#   background process $1 still running: stopped"; kill "$1"; fi
  wait "$1" 2>/dev/null
}
# shellcheck disable=SC2317  # called by the trap
finish() {
  local running
  running=$(jobs -pr)   # this script's background processes still running
  # shellcheck disable=SC2086  # one argument per pid
  [ -n "$running" ] && kill $running 2>/dev/null
  pc_stop immediate
}
tap_on_exit finish

# Small shared buffers: a process's peak RSS (E) then counts little shared memory.
if ! pc_init "max_worker_processes = 40" "max_parallel_workers = 16" "max_connections = 80" \
             "parallel_guarantee.max_runs = 64" "parallel_guarantee.max_async_runs = 16" \
             "shared_buffers = '16MB'" "log_line_prefix = '%m [%p] %e %b '"; then
  not_ok "setup: the private cluster did not start (log: $PC_LOG)"; exit 1
fi
WORK=$PC_DIR/work
mkdir -p "$WORK"
pc_psql -d postgres -q -c "CREATE DATABASE $DB" >/dev/null
if ! SETUP=$(P -v ON_ERROR_STOP=1 -f "$ROOT/test/integration/data/security_setup.sql" 2>&1); then
  not_ok "setup: could not create the extension, roles, tables and functions"
  echo "$SETUP" | tail -5 | sed 's/^/#   /'; tail -5 "$PC_LOG" | sed 's/^/#   /'
  exit 1
fi
log_mark() { stat -c %s "$PC_LOG"; }
log_since() { tail -c +"$(($1 + 1))" "$PC_LOG"; }   # log_since MARK: the server log written since

# ------------------------------------------------------------- A. pg_temp and public planting
# hog_start N: a session of postgres holds N parallel workers (bounded wait: 20 s) until
# hog_stop (a shortage that lasts over several attempts: a session's max_parallel_workers
# below the target would make a run of one attempt).
hog_start() {
  PGAPPNAME=sec_hog PGOPTIONS= pc_psql -d "$DB" -q -c "SET max_parallel_workers_per_gather = $1" -c "SET statement_timeout = '120s'" \
    -c "SELECT count(*) FROM public.hog WHERE pg_sleep(3600 + id * 0) IS NOT NULL" >/dev/null 2>&1 &
  HOG_PID=$!
  poll "$1" "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_activity l ON l.pid = a.leader_pid
              WHERE a.backend_type = 'parallel worker' AND l.application_name = 'sec_hog'" \
    || echo "#   the hog did not get its $1 workers"
}
hog_stop() {
  P -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'sec_hog' AND backend_type = 'client backend'" >/dev/null
  wait "$HOG_PID" 2>/dev/null
  poll 0 "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_activity l ON l.pid = a.leader_pid WHERE l.application_name = 'sec_hog'"
}
# mallory's look-alikes in public, for section A (public is writable there, as before
# PostgreSQL 15).  The checks' own queries name the extension's objects by their schema.
P -c "GRANT CREATE ON SCHEMA public TO mallory" >/dev/null
R mallory -v ON_ERROR_STOP=1 -c "SELECT mallory.plant_public(true)" >/dev/null 2>"$WORK/plant_public.err" \
  || echo "#   planting in public failed: $(head -2 "$WORK/plant_public.err")"
echo "#   mallory's look-alikes in public: $(P -c "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname LIKE 'parallel_guarantee%'") relations, $(P -c "SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND proname LIKE 'parallel_guarantee%'") functions"
# Before each path: mallory an ordinary role again, the audit and loot empty.
a_reset() {
  P -c "ALTER ROLE mallory NOSUPERUSER" -c "TRUNCATE mallory.audit, mallory.loot" \
    -c "UPDATE mallory.flags SET fail_at = 0, plant = false" >/dev/null
  A_MARK=$(log_mark)
}
# What the path left: planted (the traps were set in a worker) | mallory superuser? | rows
# copied from public.secret | audit rows of the traps run as another role | server log lines
# of the traps run as another role | the run's recorded status.
a_outcome() {  # a_outcome STATUS_QUERY [STATUS]: STATUS, if given, instead of the query's answer
  local planted super loot foreign logged status
  planted=$(P -c "SELECT count(*) > 0 FROM mallory.audit WHERE tag LIKE 'planted %'")
  super=$(P -c "SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'")
  loot=$(P -c "SELECT count(*) FROM mallory.loot")
  foreign=$(P -c "SELECT count(*) FROM mallory.audit WHERE cu <> 'mallory'")
  logged=$(log_since "$A_MARK" | grep 'planted code ran as' | grep -vc 'ran as mallory ')
  if [ $# -ge 2 ]; then status=$2; else status=$(P -c "$1" 2>&1); fi
  echo "planted=$planted|rolsuper=$super|loot=$loot|foreign=$foreign|log=$logged|status=$status"
  # What fired, and as whom, for the reader.
  P -c "SELECT '#     ' || cu || ' ran ' || string_agg(DISTINCT tag, ', ') FROM mallory.audit WHERE cu <> 'mallory' GROUP BY cu" >&2
}
a_expect() { echo "planted=t|rolsuper=f|loot=0|foreign=0|log=0|status=$1"; }
Q() { echo "SET client_min_messages = warning; $1"; }
PLANT_DO='DO $d$ BEGIN PERFORM mallory.plant($p$PLACE$p$); PERFORM count(*) FROM public.big; END $d$'
plant_do() { echo "${PLANT_DO//PLACE/$1}"; }

# A1. The statement of run_with_parallel_guarantee.
a_reset
ID=$(R mallory -c "$(Q "SELECT run_id FROM run_with_parallel_guarantee(\$s\$$(plant_do statement)\$s\$, target_workers => 2, min_workers => 1)")" 2>&1)
check "A1 statement of run_with_parallel_guarantee: traps planted in the worker never run as another role; mallory not superuser, secret not copied; run recorded target_met" \
  "$(a_expect target_met)" "$(a_outcome "SELECT status FROM parallel_guarantee.parallel_guarantee_runs WHERE run_id = ${ID//[^0-9]/0}")"

# A2. The cleanup: every attempt is short (a hog holds 15 of the 16 parallel workers), so the
# cleanup runs after attempt 1 (abandoned) and attempt 2 (below minimum).
a_reset
hog_start 15
ID=$(R mallory -c "$(Q "SELECT run_id FROM run_with_parallel_guarantee(\$s\$SELECT count(*) FROM public.big\$s\$,
        cleanup => \$c\$$(plant_do cleanup)\$c\$, target_workers => 2, min_workers => 2, max_attempts => 2,
        retry_delay => '0', wait_for_slots => false, raise_on_failure => false)")" 2>&1)
hog_stop
check "A2 cleanup of run_with_parallel_guarantee (attempts abandoned): traps never run as another role; run recorded failed after 2 attempts" \
  "$(a_expect failed/2)" "$(a_outcome "SELECT status || '/' || attempts FROM parallel_guarantee.parallel_guarantee_runs WHERE run_id = ${ID//[^0-9]/0}")"

# A3. submit_parallel_guarantee.
a_reset
ID=$(R mallory -c "$(Q "SELECT submit_parallel_guarantee(\$s\$$(plant_do submit)\$s\$, target_workers => 2, min_workers => 1)")" 2>&1)
R mallory -c "SELECT status FROM parallel_guarantee_wait(${ID//[^0-9]/0}, '30 s')" >/dev/null 2>&1
check "A3 submit_parallel_guarantee: traps never run as another role; run recorded target_met" \
  "$(a_expect target_met)" "$(a_outcome "SELECT status FROM parallel_guarantee.parallel_guarantee_runs WHERE run_id = ${ID//[^0-9]/0}")"

# Chunked runs: 100 keys.  mallory's session (whose settings the worker takes) plans
# serially, so that the bookkeeping's queries do too: in a parallel plan the traps could not
# write (mallory's own choice: the default costs would not plan those small queries parallel).
export PGOPTIONS="-c max_parallel_workers_per_gather=0"
chunks() {  # chunks KEYS ACTION MORE_ARGUMENTS: as mallory, the run's id
  R mallory -c "$(Q "SELECT run_id FROM run_in_chunks(\$k\$$1\$k\$, \$a\$$2\$a\$, max_retries => 0$3)")" 2>&1 | tail -1
}
CHUNK_STATUS="SELECT status || '/' || chunks_done || '/' || chunks_total FROM parallel_guarantee.parallel_guarantee_chunk_runs WHERE run_id ="

# A4. The keys query (a volatile function in it can create objects).
a_reset
ID=$(chunks "SELECT id FROM mallory.keys WHERE mallory.plant('keys query') ORDER BY id" "UPDATE mallory.items SET n = n + 1 WHERE id = ANY (\$1)" ", chunk_size => 25")
check "A4 keys query of run_in_chunks: traps never run as another role; run recorded done, 4 of 4 chunks" \
  "$(a_expect done/4/4)" "$(a_outcome "$CHUNK_STATUS ${ID//[^0-9]/0}")"

# A5. The action: a function it calls, then a trigger on the table it updates.
a_reset
ID=$(chunks "SELECT id FROM mallory.keys ORDER BY id" "SELECT mallory.act_plant(\$1)" ", chunk_size => 25")
check "A5 action of run_in_chunks (a function it calls): traps never run as another role; run recorded done, 4 of 4 chunks" \
  "$(a_expect done/4/4)" "$(a_outcome "$CHUNK_STATUS ${ID//[^0-9]/0}")"
a_reset
ID=$(chunks "SELECT id FROM mallory.keys ORDER BY id" "UPDATE mallory.trig_items SET n = n + 1 WHERE id = ANY (\$1)" ", chunk_size => 25")
check "A6 action of run_in_chunks (a trigger on the table it updates): traps never run as another role; run recorded done, 4 of 4 chunks" \
  "$(a_expect done/4/4)" "$(a_outcome "$CHUNK_STATUS ${ID//[^0-9]/0}")"

# A7. workers => 2: the helper plants too.
a_reset
ID=$(chunks "SELECT id FROM mallory.keys ORDER BY id" "SELECT mallory.act_plant(\$1)" ", chunk_size => 5, workers => 2")
echo "#   workers => 2: traps planted in $(P -c "SELECT count(DISTINCT pid) FROM mallory.audit WHERE tag LIKE 'planted %'") processes"
check "A7 action of run_in_chunks with workers => 2 (coordinator and helper): traps never run as another role; run recorded done, 20 of 20 chunks" \
  "$(a_expect done/20/20)" "$(a_outcome "$CHUNK_STATUS ${ID//[^0-9]/0}")"

# A8. submit_chunks.
a_reset
ID=$(R mallory -c "$(Q "SELECT submit_chunks(\$k\$SELECT id FROM mallory.keys ORDER BY id\$k\$, \$a\$SELECT mallory.act_plant(\$1)\$a\$, chunk_size => 25)")" 2>&1)
R mallory -c "SELECT status FROM parallel_guarantee_wait(${ID//[^0-9]/0}, '30 s')" >/dev/null 2>&1
check "A8 submit_chunks: traps never run as another role; run recorded done, 4 of 4 chunks" \
  "$(a_expect done/4/4)" "$(a_outcome "$CHUNK_STATUS ${ID//[^0-9]/0}")"

# A9, A10. resume_chunks, by mallory and by the superuser: a run fails on key 55 (without
# planting); the resumed run's action plants.
for resumer in mallory postgres; do
  a_reset
  P -c "UPDATE mallory.flags SET fail_at = 55, plant = false" >/dev/null
  R mallory -c "$(Q "SELECT run_id FROM run_in_chunks(\$k\$SELECT id FROM mallory.keys ORDER BY id\$k\$, \$a\$SELECT mallory.act_flags(\$1)\$a\$, chunk_size => 10, max_retries => 0, label => 'resumable-$resumer')")" >/dev/null 2>&1
  ID=$(P -c "SELECT max(run_id) FROM parallel_guarantee.parallel_guarantee_chunk_runs WHERE label = 'resumable-$resumer'")
  FIRST=$(P -c "$CHUNK_STATUS ${ID:-0}")
  a_reset
  P -c "UPDATE mallory.flags SET fail_at = 0, plant = true" >/dev/null
  if [ $resumer = mallory ]; then R mallory -c "$(Q "SELECT status FROM resume_chunks(${ID:-0})")" >/dev/null 2>&1
  else P -c "$(Q "SELECT status FROM resume_chunks(${ID:-0})")" >/dev/null 2>&1; fi
  echo "#   mallory's run $ID before the resume: $FIRST"
  check "A$([ $resumer = mallory ] && echo 9 || echo 10) resume_chunks by $resumer of mallory's failed run: traps never run as another role; run recorded done, 10 of 10 chunks" \
    "$(a_expect done/10/10)" "$(a_outcome "$CHUNK_STATUS ${ID:-0}")"
done
# A11. mallory's own session: the views and status functions run the extension's code in
# the caller's backend (parallel_guarantee_lost reads the history as the tables' owner), after
# mallory planted there.  Two runs of hers are recorded running with no worker (copies of her
# latest), so that the views ask whether they are lost.
a_reset
P -c "CREATE TEMP TABLE fake AS SELECT * FROM parallel_guarantee.parallel_guarantee_run_history WHERE role_name = 'mallory' ORDER BY run_id DESC LIMIT 1" \
  -c "UPDATE fake SET run_id = 900000001, label = 'fake-running', status = 'running', finished_at = NULL" \
  -c "INSERT INTO parallel_guarantee.parallel_guarantee_run_history SELECT * FROM fake" \
  -c "CREATE TEMP TABLE fake_chunks AS SELECT * FROM parallel_guarantee.parallel_guarantee_chunk_run_history WHERE role_name = 'mallory' ORDER BY run_id DESC LIMIT 1" \
  -c "UPDATE fake_chunks SET run_id = 900000002, label = 'fake-running', status = 'running', finished_at = NULL" \
  -c "INSERT INTO parallel_guarantee.parallel_guarantee_chunk_run_history SELECT * FROM fake_chunks" >/dev/null
A11=$(R mallory -c "SET client_min_messages = warning" -c "SELECT mallory.plant('own session')" \
  -c "SELECT count(*) FROM parallel_guarantee.parallel_guarantee_runs" -c "SELECT count(*) FROM parallel_guarantee.parallel_guarantee_attempts" \
  -c "SELECT count(*) FROM parallel_guarantee.parallel_guarantee_label_summary" -c "SELECT count(*) FROM parallel_guarantee.parallel_guarantee_activity" \
  -c "SELECT count(*) FROM parallel_guarantee.parallel_guarantee_queue" -c "SELECT count(*) FROM parallel_guarantee.parallel_guarantee_chunk_runs" \
  -c "SELECT count(*) FROM parallel_guarantee.parallel_guarantee_chunks" \
  -c "SELECT (parallel_guarantee.parallel_guarantee_status(900000001)).status" -c "SELECT (parallel_guarantee.parallel_guarantee_chunk_status(900000002)).status" \
  -c "SELECT (parallel_guarantee.parallel_guarantee_wait(900000001, '0')).status" -c "SELECT (parallel_guarantee.parallel_guarantee_wait(900000002, '0')).status" \
  -c "SELECT parallel_guarantee.parallel_guarantee_cancel(900000001)" -c "SELECT parallel_guarantee.parallel_guarantee_cancel(900000002)" \
  -c "SELECT parallel_guarantee.parallel_guarantee_lost(900000001, false)" -c "SELECT parallel_guarantee.parallel_guarantee_lost(900000002, true)" 2>&1 | tail -8 | paste -sd/)
check "A11 mallory's own session, traps planted, reading every view and status function: traps never run as another role; her workerless runs read lost (status, chunk status, wait, wait of the chunked run, cancel, cancel of the chunked run, lost, lost)" \
  "$(a_expect lost/lost/lost/lost/f/f/t/t)" \
  "$(a_outcome "" "$A11")"
P -c "DELETE FROM parallel_guarantee.parallel_guarantee_run_history WHERE run_id = 900000001" -c "DELETE FROM parallel_guarantee.parallel_guarantee_chunk_run_history WHERE run_id = 900000002" >/dev/null

# The traps themselves work: the same SQL a bookkeeping statement would send -- a cast to
# int4 and an unqualified relation, with search_path = 'pg_catalog' -- run by the superuser
# in a session where mallory planted them, runs mallory's code as the superuser, who then
# makes mallory a superuser and copies the secret.  (So the checks above can fail.)
a_reset
P -c "SET ROLE mallory" -c "SELECT mallory.plant('trap test')" -c "RESET ROLE" -c "SET search_path = pg_catalog" -c "SET max_parallel_workers_per_gather = 0" \
  -c "SELECT count(*)::int4 FROM pg_catalog.pg_am" -c "SELECT count(*) FROM parallel_guarantee_chunk_history" >/dev/null 2>&1
# And public's: an unqualified relation or internal function on the README's search_path.
P -c "SELECT count(*) FROM parallel_guarantee_runs" -c "SELECT parallel_guarantee_visible(10)" >/dev/null 2>&1
check "(the traps work: SQL with a cast to int4 and an unqualified relation, run by the superuser after mallory planted in its session, and an unqualified relation and function on the README's search_path, run mallory's code as postgres: cast|relation|public relation|public function|rolsuper|secret copied)" \
  "true|true|true|true|t|t" \
  "$(P -c "SELECT coalesce(bool_or(tag = 'domain int4'), false) || '|' || coalesce(bool_or(tag = 'view parallel_guarantee_chunk_history'), false)
                 || '|' || coalesce(bool_or(tag = 'public view parallel_guarantee_runs'), false) || '|' || coalesce(bool_or(tag = 'public function parallel_guarantee_visible'), false)
            FROM mallory.audit WHERE cu = 'postgres'")|$(P -c "SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'")|$(P -c "SELECT count(*) > 0 FROM mallory.loot")"
a_reset
R mallory -c "SELECT mallory.plant_public(false)" >/dev/null
P -c "REVOKE CREATE ON SCHEMA public FROM mallory" >/dev/null
unset PGOPTIONS

# A12. The schema is the gate: eve, without USAGE on it, reaches nothing of the extension by
# its qualified names (42501), and takes no run slot.
P -c "CREATE ROLE eve LOGIN" -c "GRANT SELECT ON public.big TO eve" >/dev/null
GATE=""
for q in "SELECT parallel_guarantee.run_with_parallel_guarantee('SELECT count(*) FROM public.big')" \
         "SELECT parallel_guarantee.submit_parallel_guarantee('SELECT count(*) FROM public.big')" \
         "SELECT parallel_guarantee.run_in_chunks('SELECT id FROM public.big', 'SELECT \$1')" \
         "SELECT parallel_guarantee.submit_chunks('SELECT id FROM public.big', 'SELECT \$1')" \
         "SELECT parallel_guarantee.resume_chunks(1)" "SELECT parallel_guarantee.parallel_guarantee_cancel(1)" \
         "SELECT * FROM parallel_guarantee.parallel_guarantee_cancel_runs(database => NULL)" \
         "SELECT parallel_guarantee.parallel_guarantee_cancel_run(1)" "SELECT count(*) FROM parallel_guarantee.parallel_guarantee_runs" \
         "SELECT count(*) FROM parallel_guarantee.parallel_guarantee_activity"; do
  GATE+="$(err eve "$q" | sed 's/^ERROR:  //') "
done
check "A12 eve, without USAGE on the schema: running, submitting, chunks, resume, cancel, cancel_runs, the internal cancel and the views all refused (42501 each)|run slots taken" \
  "42501 42501 42501 42501 42501 42501 42501 42501 42501 42501 |0" "$GATE|$(P -c "SELECT count(*) FROM parallel_guarantee_activity")"
echo "# A took ${SECONDS}s"

# ------------------------------------------------------------- B. cancels and failed history writes
alive() { P -c "SELECT count(*) FROM pg_stat_activity WHERE pid IN (${1:-0})"; }   # alive PID_LIST: how many still exist
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# Polls (every 50 ms, for at most 1 s) until none of PID_LIST exists; prints how many are left.
gone_within_1s() {
  local deadline=$(($(now_ms) + 1000)) left
  while :; do
    left=$(alive "$1")
    [ "$left" = 0 ] || [ "$(now_ms)" -ge "$deadline" ] && break
    sleep 0.05
  done
  echo "$left"
}
# Ends what a check left running: the given workers (of runs this script started).
end_workers() { [ -n "${1:-}" ] && P -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE pid IN ($1)" >/dev/null; }
# A statement that runs for minutes at full degree unless stopped.
SLOW='SELECT count(*) FROM public.big WHERE pg_sleep(0.01 + id * 0) IS NOT NULL'

# B1, B2. A worker whose first history write failed still obeys a cancel: of its caller,
# and pg_cancel_backend of the worker itself.  The write is made to fail deterministically:
# a history row (a copy of the latest) takes the run id the next run will get.  One attempt
# with min_workers 0: no abandoned attempt (whose error would reset the cancel hold-off
# count by chance) comes between the failed write and the cancel.
for how in caller worker; do
  NEXT=$(P -c "SELECT nextval('parallel_guarantee_run_id_seq') + 1")
  P -c "CREATE TEMP TABLE fake AS SELECT * FROM parallel_guarantee_run_history ORDER BY run_id DESC LIMIT 1" \
    -c "UPDATE fake SET run_id = $NEXT, label = 'fake', status = 'target_met'" \
    -c "INSERT INTO parallel_guarantee_run_history SELECT * FROM fake" >/dev/null
  MARK=$(log_mark)
  PGAPPNAME=sec_b1_$how bg pc_psql -U alice -d "$DB" -tA -q -v VERBOSITY=sqlstate \
    -c "SELECT status FROM run_with_parallel_guarantee(\$s\$$SLOW\$s\$, target_workers => 2, min_workers => 0, max_attempts => 1, label => 'b1-$how')" \
    >"$WORK/b1_$how.out" 2>&1
  CALLER=${BG[-1]}
  WPID=""
  for _ in $(seq 1 150); do
    WPID=$(P -c "SELECT worker_pid FROM parallel_guarantee_activity WHERE label = 'b1-$how' AND state = 'running'")
    [ -n "$WPID" ] && break
    kill -0 "$CALLER" 2>/dev/null || break
    sleep 0.1
  done
  FAILED=$(log_since "$MARK" | grep -c 'could not record the run')
  echo "#   b1-$how: run $NEXT, worker ${WPID:-none}, its history write failed: $([ "$FAILED" -gt 0 ] && echo yes || echo no)"
  N=$([ $how = caller ] && echo 1 || echo 2)
  if [ -z "$WPID" ]; then
    # Refusing the run when its history cannot be written obeys too (nothing left to cancel).
    if kill -0 "$CALLER" 2>/dev/null; then OUTCOME="not running after 15 s"; else OUTCOME="obeys"; fi
    end_workers "$(P -c "SELECT string_agg(worker_pid::text, ',') FROM parallel_guarantee_activity WHERE label = 'b1-$how'")"
  else
    if [ $how = caller ]; then P -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'sec_b1_caller' AND backend_type = 'client backend'" >/dev/null
    else P -c "SELECT pg_cancel_backend($WPID)" >/dev/null; fi
    LEFT=$(gone_within_1s "$WPID")
    OUTCOME=$([ "$LEFT" = 0 ] && echo obeys || echo "worker still running 1 s after the cancel")
    end_workers "$WPID"
  fi
  check "B$N a worker whose history write failed obeys pg_cancel_backend of its $how (gone within 1 s, or the run refused at once)" "obeys" "$OUTCOME"
  wait_bg "$CALLER"
  echo "#   b1-$how: the caller said: $(tr '\n' ' ' < "$WORK/b1_$how.out" | head -c 200)"
done

# B3. The same after a failed write of an abandoned attempt, mid-run: attempt 1 (short of
# workers: a hog holds 15 of the 16) sleeps 1 s before its Gather, meanwhile a history row
# (a copy of the latest) takes its attempt number; attempt 2 (the last; min_workers 0) runs
# on, degraded, for minutes; its caller is cancelled.
MARK=$(log_mark)
hog_start 15
PGAPPNAME=sec_b1_attempt bg pc_psql -U alice -d "$DB" -tA -q -v VERBOSITY=sqlstate \
  -c "SELECT status FROM run_with_parallel_guarantee(\$s\$DO \$d\$ BEGIN PERFORM pg_sleep(1); PERFORM count(*) FROM public.big WHERE pg_sleep(0.01 + id * 0) IS NOT NULL; END \$d\$\$s\$,
        target_workers => 2, min_workers => 0, max_attempts => 2, retry_delay => '0', wait_for_slots => false, label => 'b1-attempt')" \
  >"$WORK/b1_attempt.out" 2>&1
CALLER=${BG[-1]}
OUTCOME="attempt 1 never ran"
if poll 1 "SELECT count(*) FROM parallel_guarantee_activity WHERE label = 'b1-attempt' AND attempt = 1 AND state = 'running'" 100; then
  RID=$(P -c "SELECT run_id FROM parallel_guarantee_activity WHERE label = 'b1-attempt'")
  P -c "CREATE TEMP TABLE fake AS SELECT * FROM parallel_guarantee_attempt_history ORDER BY run_id DESC LIMIT 1" \
    -c "UPDATE fake SET run_id = $RID, attempt = 1" -c "INSERT INTO parallel_guarantee_attempt_history SELECT * FROM fake" >/dev/null
  OUTCOME="obeys"   # if the run stops at once instead, nothing is left to cancel
  if poll 1 "SELECT count(*) FROM parallel_guarantee_activity WHERE label = 'b1-attempt' AND attempt = 2 AND state = 'running'" 100; then
    WPID=$(P -c "SELECT worker_pid FROM parallel_guarantee_activity WHERE label = 'b1-attempt'")
    P -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'sec_b1_attempt' AND backend_type = 'client backend'" >/dev/null
    LEFT=$(gone_within_1s "$WPID")
    OUTCOME=$([ "$LEFT" = 0 ] && echo obeys || echo "worker still running 1 s after the cancel")
    end_workers "$WPID"
  fi
fi
echo "#   b1-attempt: the attempt's history write failed: $(log_since "$MARK" | grep -q 'could not record an attempt' && echo yes || echo no)"
check "B3 a worker whose history write of an abandoned attempt failed obeys pg_cancel_backend of its caller in the next attempt (gone within 1 s, or the run stopped)" "obeys" "$OUTCOME"
wait_bg "$CALLER"
hog_stop
echo "#   b1-attempt: the caller said: $(tr '\n' ' ' < "$WORK/b1_attempt.out" | head -c 200)"

# B4. Runs started together under default_transaction_isolation = serializable (and a 3 s
# statement_timeout) all reach the history: the worker's bookkeeping must not take the
# caller's isolation level (serialization failures between runs' history writes).  With
# raise_on_failure => false every call that started a run returns its id.
MARK=$(log_mark)
B4=()
B4_CALL="SELECT run_id FROM run_with_parallel_guarantee('SELECT count(*) FROM public.big', target_workers => 1, min_workers => 1, raise_on_failure => false, label => 'b4')"
for i in $(seq 1 8); do
  PGOPTIONS="-c default_transaction_isolation=serializable -c statement_timeout=3s" PGAPPNAME=sec_b4 \
    bg pc_psql -U alice -d "$DB" -tA -q -v VERBOSITY=sqlstate -c "$B4_CALL" -c "$B4_CALL" -c "$B4_CALL" >"$WORK/b4_$i.out" 2>&1
  B4+=("${BG[-1]}")
done
for p in "${B4[@]}"; do wait_bg "$p"; done
IDS=$(cat "$WORK"/b4_*.out | grep -E '^[0-9]+$' | paste -sd,)
NIDS=$(echo "${IDS:-}" | tr ',' '\n' | grep -c .)
grep -h ERROR "$WORK"/b4_*.out | sort | uniq -c | sed 's/^ */#   b4 calls: /'
check "B4 8 concurrent serializable sessions, 3 runs each: runs that returned their id|of them in parallel_guarantee_runs with a final status|runs labelled b4 in the history" \
  "24|24|24" \
  "$NIDS|$(P -c "SELECT count(*) FROM parallel_guarantee_runs WHERE run_id IN (${IDS:-0}) AND status IN ('target_met', 'degraded', 'failed')")|$(P -c "SELECT count(*) FROM parallel_guarantee_runs WHERE label = 'b4'")"
check "B4 no history write failed meanwhile (server log: 'could not ... in the history')" "0" \
  "$(log_since "$MARK" | grep -c 'in the history')"
log_since "$MARK" | grep 'in the history' | head -3 | sed 's/^/#   /'

# B5. No worker outlives its caller's cancel by more than a second: 8 long runs started
# together under serializable (whose history writes may conflict), their callers cancelled.
B5=()
for i in $(seq 1 8); do
  PGOPTIONS="-c default_transaction_isolation=serializable" PGAPPNAME=sec_b5 \
    bg pc_psql -U alice -d "$DB" -tA -q -v VERBOSITY=sqlstate \
    -c "SELECT status FROM run_with_parallel_guarantee(\$s\$$SLOW\$s\$, target_workers => 1, min_workers => 0, max_attempts => 1, label => 'b5')" \
    >"$WORK/b5_$i.out" 2>&1
  B5+=("${BG[-1]}")
done
poll 8 "SELECT count(*) FROM parallel_guarantee_activity WHERE label = 'b5' AND state = 'running'" 200 \
  || echo "#   b5: only $(P -c "SELECT count(*) FROM parallel_guarantee_activity WHERE label = 'b5' AND state = 'running'") of 8 runs running"
WPIDS=$(P -c "SELECT string_agg(worker_pid::text, ',') FROM parallel_guarantee_activity WHERE label = 'b5' AND worker_pid IS NOT NULL")
P -c "SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity WHERE application_name = 'sec_b5' AND backend_type = 'client backend'" >/dev/null
check "B5 8 long runs under serializable, callers cancelled: every worker gone within 1 s (workers left)" "0" "$(gone_within_1s "$WPIDS")"
end_workers "$WPIDS"
for p in "${B5[@]}"; do wait_bg "$p"; done
poll 0 "SELECT count(*) FROM parallel_guarantee_activity" 100
check "B5 the 8 cancelled runs are in the history as cancelled" "8" \
  "$(P -c "SELECT count(*) FROM parallel_guarantee_runs WHERE label = 'b5' AND status = 'cancelled'")"
echo "# B done at ${SECONDS}s"

# ------------------------------------------------------------- C. oversized arguments
# Each text argument may hold 1 MiB (1048576 bytes); a longer one is refused with 54000
# (a label of 64 bytes or more: 22023) before any run slot is taken, 40 times in a row,
# and a normal run works afterwards.  The texts are built by the server (rpad), so the
# client sends little.
MIB=1048576
big_text() {  # big_text SQL_PREFIX LENGTH: an SQL expression, PREFIX /* xxx... */ of LENGTH bytes
  echo "rpad(\$t\$$1 /*\$t\$, $2 - 2, 'x') || '*/'"
}
OVER=$((MIB + 1))
STMT_OVER=$(big_text 'DO $d$ BEGIN PERFORM count(*) FROM public.big; END $d$' $OVER)
KEYS_OVER=$(big_text 'SELECT id FROM mallory.keys' $OVER)
ACTION_OVER=$(big_text 'UPDATE mallory.items SET n = n + 1 WHERE id = ANY ($1)' $OVER)
c_case() {  # c_case NAME WANTED_SQLSTATE SQL: SQL 40 times as mallory, then what was left and whether a run works
  local name=$1 want=$2 sql=$3 out wanted other
  out=$(for _ in $(seq 1 40); do echo "$sql;"; done \
        | PGOPTIONS="-c client_min_messages=warning" R mallory -v VERBOSITY=sqlstate 2>&1)
  wanted=$(echo "$out" | grep -c "^ERROR:  $want")
  other=$(echo "$out" | grep -v "^ERROR:  $want" | grep -E '^(ERROR|[a-z_]+$|[0-9]+$)' | sort | uniq -c | sed 's/^ *//' | paste -sd' ')
  check "C $name: 40 calls all refused with $want (other answers: none), then no run slot left, and a normal run works" \
    "40 x $want, other: |activity 0|target_met" \
    "$wanted x $want, other: $other|activity $(P -c "SELECT count(*) FROM parallel_guarantee_activity")|$(R mallory -c "$(Q "SELECT status FROM run_with_parallel_guarantee('SELECT count(*) FROM public.big', target_workers => 2, min_workers => 1)")" 2>&1)"
}
c_case "statement of 1 MiB + 1 byte (run_with_parallel_guarantee)" 54000 \
  "SELECT status FROM run_with_parallel_guarantee($STMT_OVER, target_workers => 2, min_workers => 1)"
c_case "statement of 1 MiB + 1 byte (submit_parallel_guarantee)" 54000 \
  "SELECT submit_parallel_guarantee($STMT_OVER, target_workers => 2, min_workers => 1)"
c_case "cleanup of 1 MiB + 1 byte" 54000 \
  "SELECT status FROM run_with_parallel_guarantee('SELECT count(*) FROM public.big', cleanup => $(big_text 'DROP TABLE IF EXISTS mallory.nothing' $OVER), target_workers => 2, min_workers => 1)"
c_case "label of 64 bytes" 22023 \
  "SELECT status FROM run_with_parallel_guarantee('SELECT count(*) FROM public.big', target_workers => 2, min_workers => 1, label => repeat('l', 64))"
c_case "keys query of 1 MiB + 1 byte (run_in_chunks)" 54000 \
  "SELECT status FROM run_in_chunks($KEYS_OVER, 'UPDATE mallory.items SET n = n + 1 WHERE id = ANY (\$1)')"
c_case "action of 1 MiB + 1 byte (run_in_chunks)" 54000 \
  "SELECT status FROM run_in_chunks('SELECT id FROM mallory.keys', $ACTION_OVER)"
c_case "keys query and action of 1 MiB + 1 byte (submit_chunks)" 54000 \
  "SELECT submit_chunks($KEYS_OVER, $ACTION_OVER)"
c_case "label of 64 bytes (run_in_chunks)" 22023 \
  "SELECT status FROM run_in_chunks('SELECT id FROM mallory.keys', 'UPDATE mallory.items SET n = n + 1 WHERE id = ANY (\$1)', label => repeat('l', 64))"
# Just under the limit is accepted.
UNDER=$((MIB - 1024))
check "C a statement, cleanup and label just under the limits (1 MiB - 1 kB; 63 bytes) run" "target_met" \
  "$(R mallory -c "$(Q "SELECT status FROM run_with_parallel_guarantee($(big_text 'DO $d$ BEGIN PERFORM count(*) FROM public.big; END $d$' $UNDER),
        cleanup => $(big_text 'DROP TABLE IF EXISTS mallory.nothing' $UNDER), target_workers => 2, min_workers => 1, label => repeat('l', 63))")" 2>&1)"
check "C a keys query and action just under the limit (1 MiB - 1 kB) run" "done" \
  "$(R mallory -c "$(Q "SELECT status FROM run_in_chunks($(big_text 'SELECT id FROM mallory.keys' $UNDER), $(big_text 'UPDATE mallory.items SET n = n + 1 WHERE id = ANY ($1)' $UNDER), chunk_size => 50)")" 2>&1)"
echo "# C done at ${SECONDS}s"

# ------------------------------------------------------------- D. fair shares
# conf NAME=VALUE...: ALTER SYSTEM SET (VALUE "reset": RESET) and reload; restarts the
# server if a new session does not see the values within 5 s (a setting that needs one).
conf_seen() {
  local kv value seen
  for _ in $(seq 1 50); do
    seen=1
    for kv in "$@"; do
      value=${kv#*=}; [ "$value" = reset ] && continue
      [ "$(P -c "SELECT current_setting('${kv%%=*}', true)" 2>/dev/null)" = "$value" ] || { seen=0; break; }
    done
    [ $seen = 1 ] && return 0
    sleep 0.1
  done
  return 1
}
conf() {
  local kv out refused=0
  for kv in "$@"; do
    if [ "${kv#*=}" = reset ]; then out=$(P -c "ALTER SYSTEM RESET ${kv%%=*}" 2>&1)
    else out=$(P -c "ALTER SYSTEM SET ${kv%%=*} = '${kv#*=}'" 2>&1); fi
    [ -n "$out" ] && { echo "#   ALTER SYSTEM ${kv%%=*}: $out"; refused=1; }
  done
  P -c "SELECT pg_reload_conf()" >/dev/null
  [ $refused = 1 ] && return 1   # an unknown setting: nothing to wait for
  conf_seen "$@" && return 0
  echo "#   $* not seen after a reload: restarting the server"
  pc_stop fast; pc_start; pc_wait_ready
  conf_seen "$@" || echo "#   $* not seen after a restart either"
}
cancel_label() {  # cancel_label LABEL: cancels the runs of that label (as postgres), waits until none is left
  P -c "SELECT count(parallel_guarantee_cancel(run_id)) FROM parallel_guarantee_activity WHERE label = '$1'" >/dev/null 2>&1
  poll 0 "SELECT count(*) FROM parallel_guarantee_activity WHERE label = '$1'" 100 \
    || end_workers "$(P -c "SELECT string_agg(worker_pid::text, ',') FROM parallel_guarantee_activity WHERE label = '$1'")"
}
is_id() { [[ $1 =~ ^[0-9]+$ ]] && echo id || echo "$1"; }
submit_slow() {  # submit_slow ROLE LABEL: submits a run of minutes; its id, or the error
  local out
  out=$(PGOPTIONS="-c client_min_messages=warning" R "$1" -v VERBOSITY=sqlstate \
        -c "SELECT submit_parallel_guarantee(\$s\$$SLOW\$s\$, target_workers => 1, min_workers => 1, label => '$2')" 2>&1 | head -1)
  is_id "$out"
}
quick() { echo "SELECT status FROM run_with_parallel_guarantee('SELECT count(*) FROM public.big', target_workers => 1, min_workers => 1${1:-})"; }
quick_as() { R "$1" -c "$(Q "$(quick "${2:-}")")" 2>&1 | head -1; }   # quick_as ROLE [, MORE]: status or error

# D1. parallel_guarantee.max_runs_per_role = 2: a third run of the same role in progress is
# refused (53G06), submitted or not; another role still starts one.
conf parallel_guarantee.max_runs_per_role=2 parallel_guarantee.max_async_runs_per_role=8
check "D1 max_runs_per_role = 2: mallory's 2 submits|a 3rd submit|a synchronous run meanwhile|alice's run meanwhile" \
  "id|id|ERROR:  53G06|ERROR:  53G06|target_met" \
  "$(submit_slow mallory d1)|$(submit_slow mallory d1)|$(submit_slow mallory d1 | sed 's/^id$/accepted/')|$(err mallory "$(quick)")|$(quick_as alice)"
cancel_label d1

# D2. parallel_guarantee.max_async_runs_per_role = 1: a second submitted run of the same
# role is refused (53G06); its synchronous runs and another role's submits are not.
conf parallel_guarantee.max_runs_per_role=8 parallel_guarantee.max_async_runs_per_role=1
check "D2 max_async_runs_per_role = 1: mallory's submit|a 2nd submit|a synchronous run meanwhile|alice's submit meanwhile" \
  "id|ERROR:  53G06|target_met|id" \
  "$(submit_slow mallory d2)|$(submit_slow mallory d2 | sed 's/^id$/accepted/')|$(quick_as mallory)|$(submit_slow alice d2)"
cancel_label d2
conf parallel_guarantee.max_runs_per_role=reset parallel_guarantee.max_async_runs_per_role=reset

# D3. parallel_guarantee.max_priority (superuser-set, 0 by default): asking more is 42501;
# an ordinary role cannot raise its own; the DBA grants it per role or with GRANT SET.
check "D3 max_priority 0: mallory's run at priority 0|at priority 1|a submit at priority 5" \
  "target_met|ERROR:  42501|ERROR:  42501" \
  "$(quick_as mallory)|$(err mallory "$(quick ", priority => 1")")|$(err mallory "SELECT submit_parallel_guarantee('SELECT count(*) FROM public.big', priority => 5)")"
check "D3 mallory cannot raise her own max_priority: SET|set_config|ALTER ROLE SET (42501 each)" \
  "ERROR:  42501|ERROR:  42501|ERROR:  42501" \
  "$(err mallory "SET parallel_guarantee.max_priority = 10")|$(err mallory "SELECT set_config('parallel_guarantee.max_priority', '10', false)")|$(err mallory "ALTER ROLE mallory SET parallel_guarantee.max_priority = 10")"
P -c "ALTER ROLE alice SET parallel_guarantee.max_priority = 10" 2>&1 | sed 's/^/#   /'
check "D3 ALTER ROLE alice SET parallel_guarantee.max_priority = 10: alice at priority 10|at 11" \
  "target_met|ERROR:  42501" "$(quick_as alice ", priority => 10")|$(err alice "$(quick ", priority => 11")")"
P -c "GRANT SET ON PARAMETER parallel_guarantee.max_priority TO bob" 2>&1 | sed 's/^/#   /'
check "D3 GRANT SET ON PARAMETER parallel_guarantee.max_priority TO bob: bob sets it to 5 and runs at priority 5" \
  "target_met" "$(R bob -c "SET parallel_guarantee.max_priority = 5" -c "$(Q "$(quick ", priority => 5")")" 2>&1 | head -1)"

# D4. parallel_guarantee.max_chunk_helpers = 2: workers => 64 starts at most 2 helpers, and
# says so.  The action sleeps, so that the helpers can be counted while it runs.
conf parallel_guarantee.max_chunk_helpers=2
PGAPPNAME=sec_d4 bg pc_psql -U alice -d "$DB" -tA -q -v VERBOSITY=verbose \
  -c "SELECT status FROM run_in_chunks('SELECT id FROM alice.items ORDER BY id', 'SELECT pg_sleep(0.2) WHERE cardinality(\$1) > 0', chunk_size => 1, workers => 64, label => 'd4')" \
  >"$WORK/d4.out" 2>&1
CALLER=${BG[-1]}
HELPERS="SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'parallel_guarantee%'
            AND pid NOT IN (SELECT worker_pid FROM parallel_guarantee_activity WHERE worker_pid IS NOT NULL)"
MAXH=0
for _ in $(seq 1 100); do [ "$(P -c "$HELPERS")" -gt 0 ] && break; sleep 0.1; done
for _ in $(seq 1 10); do   # the most seen over a second
  h=$(P -c "$HELPERS"); [ "$h" -gt "$MAXH" ] && MAXH=$h
  sleep 0.1
done
P -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'sec_d4' AND backend_type = 'client backend'" >/dev/null
wait_bg "$CALLER"
poll 0 "SELECT count(*) FROM parallel_guarantee_activity" 100
grep -m2 -i 'helper\|workers' "$WORK/d4.out" | sed 's/^/#   d4 said: /'
check "D4 max_chunk_helpers = 2: run_in_chunks(workers => 64) runs at most 2 helpers (most seen) and a NOTICE names the setting" \
  "2|yes" "$MAXH|$(grep -q 'max_chunk_helpers' "$WORK/d4.out" && echo yes || echo no)"
conf parallel_guarantee.max_chunk_helpers=reset
echo "# D done at ${SECONDS}s"

# ------------------------------------------------------------- E. bounded memory
# E1. The caller relays 200,000 NOTICEs of its worker: its peak memory (VmHWM, read by the
# session itself from /proc/self/status) stays below 100 MB.
E1=$(P <<'SQL' 2>/dev/null | tail -1
SELECT substring(pg_read_file('/proc/self/status'), 'VmHWM:\s*(\d+)') AS before_kb \gset
SELECT status FROM run_with_parallel_guarantee($s$DO $d$ BEGIN FOR i IN 1..200000 LOOP RAISE NOTICE 'notice number %', i; END LOOP; PERFORM count(*) FROM public.big; END $d$$s$, target_workers => 1, min_workers => 1);
SELECT :before_kb || '|' || substring(pg_read_file('/proc/self/status'), 'VmHWM:\s*(\d+)');
SQL
)
echo "#   caller relaying 200,000 NOTICEs: peak memory (VmHWM) before the call ${E1%%|*} kB, after ${E1#*|} kB"
check "E1 the caller's peak memory stays below 100 MB while it relays 200,000 NOTICEs" "yes" \
  "$([ -n "${E1#*|}" ] && [ "${E1#*|}" -lt 102400 ] 2>/dev/null && echo yes || echo "no: ${E1#*|} kB")"

# E2. A chunked run over 3,000,000 bigint keys with work_mem = 4MB: the coordinator's peak
# memory (VmHWM, sampled from /proc while it runs) stays below 100 MB.
PGOPTIONS="-c work_mem=4MB -c max_parallel_workers_per_gather=0 -c client_min_messages=warning" \
  bg pc_psql -U alice -d "$DB" -tA -q \
  -c "SELECT status || '/' || chunks_total FROM run_in_chunks('SELECT g FROM generate_series(1::bigint, 3000000) g', 'SELECT 1 WHERE cardinality(\$1) > 0', chunk_size => 100000, label => 'e2')" \
  >"$WORK/e2.out" 2>&1
CALLER=${BG[-1]}
W=""
for _ in $(seq 1 200); do
  W=$(P -c "SELECT worker_pid FROM parallel_guarantee_activity WHERE label = 'e2'")
  [ -n "$W" ] && break
  kill -0 "$CALLER" 2>/dev/null || break
  sleep 0.02
done
HWM=0; ANON=0; T0=$(now_ms)
# VmHWM only grows: the last reading before the process exits is its peak.  Bounded: 60 s.
while [ -n "$W" ] && [ -r "/proc/$W/status" ] && [ $(($(now_ms) - T0)) -lt 60000 ]; do
  h=$(awk '/^VmHWM/ {print $2}' "/proc/$W/status" 2>/dev/null); a=$(awk '/^RssAnon/ {print $2}' "/proc/$W/status" 2>/dev/null)
  [ -n "$h" ] && [ "$h" -gt "$HWM" ] && HWM=$h
  [ -n "$a" ] && [ "$a" -gt "$ANON" ] && ANON=$a
  sleep 0.02
done
wait_bg "$CALLER"
echo "#   3,000,000 keys: the coordinator (pid ${W:-none}) peaked at $HWM kB (VmHWM; private memory at most $ANON kB seen) in $(($(now_ms) - T0)) ms"
check "E2 run_in_chunks over 3,000,000 bigint keys (work_mem 4MB): done in 30 chunks, the coordinator's peak memory below 100 MB" \
  "done/30|yes" "$(head -1 "$WORK/e2.out")|$([ "$HWM" -gt 0 ] && [ "$HWM" -lt 102400 ] && echo yes || echo "no: $HWM kB")"
# (A chunk count beyond int32 -- chunk_size 1 over 2^31 keys -- is not tried: collecting that
# many keys takes far longer than this script may run.)
echo "# E done at ${SECONDS}s"

# ------------------------------------------------------------- F. resume
# A chunked run of alice's that failed on key 55: chunks 1-5 done, 6-10 to resume.  Its id.
alice_failed_run() {
  P -c "UPDATE alice.flags SET fail_at = 55, sleep_s = 0" >/dev/null
  R alice -c "$(Q "SELECT status FROM run_in_chunks('SELECT id FROM alice.items ORDER BY id', 'SELECT alice.act(\$1)', chunk_size => 10, max_retries => 0, label => '$1')")" >/dev/null 2>&1
  P -c "UPDATE alice.flags SET fail_at = 0" >/dev/null
  P -c "SELECT max(run_id) FROM parallel_guarantee_chunk_runs WHERE label = '$1'"
}

# F1. bob may not resume alice's run: 42501, before he takes a run slot, so that he cannot
# block alice's own resume.  The superuser holds the run's row meanwhile (as a resume's
# first step would), so a resume that gets past the permission check would wait there,
# slot taken, where it can be seen.
FID=$(alice_failed_run f1)
echo "#   alice's run $FID: $(P -c "$CHUNK_STATUS ${FID:-0}")"
PGAPPNAME=sec_f1_lock bg pc_psql -d "$DB" -tA -q -c "BEGIN" \
  -c "SELECT 1 FROM parallel_guarantee_chunk_run_history WHERE run_id = ${FID:-0} FOR UPDATE" -c "SELECT pg_sleep(60)" >/dev/null 2>&1
LOCKER=${BG[-1]}
poll 1 "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sec_f1_lock' AND query LIKE '%pg_sleep%'" 100
PGAPPNAME=sec_f1_bob bg pc_psql -U bob -d "$DB" -tA -q -v VERBOSITY=sqlstate -c "SELECT status FROM resume_chunks(${FID:-0})" \
  >"$WORK/f1_bob.out" 2>&1
BOB=${BG[-1]}
BOB_SEEN=0
for _ in $(seq 1 20); do   # 2 s: bob's runs in the activity view (as the superuser sees it)
  n=$(P -c "SELECT count(*) FROM parallel_guarantee_activity WHERE role = 'bob' OR run_id = ${FID:-0}")
  [ "$n" -gt "$BOB_SEEN" ] && BOB_SEEN=$n
  sleep 0.1
done
# alice's own resume, while bob's call is in progress (or right after it).
PGAPPNAME=sec_f1_alice bg pc_psql -U alice -d "$DB" -tA -q -v VERBOSITY=sqlstate -c "SET client_min_messages = warning" \
  -c "SELECT status FROM resume_chunks(${FID:-0})" >"$WORK/f1_alice.out" 2>&1
ALICE=${BG[-1]}
# Either she waits for the superuser's row lock (her resume started) or she was refused.
for _ in $(seq 1 30); do
  kill -0 "$ALICE" 2>/dev/null || break
  [ "$(P -c "SELECT count(*) FROM parallel_guarantee_activity WHERE role = 'alice'")" != 0 ] && break
  sleep 0.1
done
P -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sec_f1_lock' AND backend_type = 'client backend'" >/dev/null
wait_bg "$LOCKER" 50
wait_bg "$BOB"
wait_bg "$ALICE"
# 42501 (permission denied) is what was asked for; 42704 is the README's answer for a run the
# caller may not see ("to the caller, no run at all"): either refuses without telling more.
check "F1 bob resuming alice's run: refused (42501, or 42704: a run he may not see)|slots of bob (or of that run) seen in the activity view meanwhile|alice's own resume meanwhile" \
  "refused|0|done" \
  "$(grep -m1 -E '^ERROR|^[a-z]+$' "$WORK/f1_bob.out" | sed -E 's/^ERROR:  42(501|704)$/refused/')|$BOB_SEEN|$(grep -m1 -E '^ERROR|^[a-z]+$' "$WORK/f1_alice.out")"
check "F1 afterwards: alice's run done, no run left in the activity view" "done/10/10|0" \
  "$(P -c "$CHUNK_STATUS ${FID:-0}")|$(P -c "SELECT count(*) FROM parallel_guarantee_activity")"

# F2. A run the superuser resumes is alice's: the activity view shows it as alice's, alice
# sees it and may cancel it.  Her action sleeps 0.5 s per chunk meanwhile.
FID=$(alice_failed_run f2)
P -c "UPDATE alice.flags SET sleep_s = 0.5" >/dev/null
PGAPPNAME=sec_f2 bg pc_psql -d "$DB" -tA -q -v VERBOSITY=sqlstate -c "SET client_min_messages = warning" \
  -c "SELECT status FROM resume_chunks(${FID:-0})" >"$WORK/f2.out" 2>&1
RESUMER=${BG[-1]}
poll 1 "SELECT count(*) FROM parallel_guarantee_activity WHERE run_id = ${FID:-0} AND worker_pid IS NOT NULL" 100
F2_ROLE=$(P -c "SELECT role FROM parallel_guarantee_activity WHERE run_id = ${FID:-0}")
F2_SEES=$(R alice -c "SELECT count(*) FROM parallel_guarantee_activity WHERE run_id = ${FID:-0}" 2>&1)
F2_CANCEL=$(err alice "SELECT parallel_guarantee_cancel(${FID:-0})")
[ -z "$F2_CANCEL" ] && F2_CANCEL="cancel accepted"
wait_bg "$RESUMER"
P -c "UPDATE alice.flags SET sleep_s = 0" >/dev/null
check "F2 a run resumed by the superuser: its role in the activity view|alice sees it|alice cancels it|its status afterwards" \
  "alice|1|cancel accepted|cancelled" \
  "$F2_ROLE|$F2_SEES|$F2_CANCEL|$(P -c "SELECT status FROM parallel_guarantee_chunk_runs WHERE run_id = ${FID:-0}")"

# F3. The superuser's session_replication_role = replica (a setting only a superuser may
# make, which silences triggers) does not reach alice's action: her table's trigger logs
# every row the resumed chunks change (keys 51-100).
FID=$(alice_failed_run f3)
P -c "TRUNCATE alice.trig_log" >/dev/null
F3=$(P -v VERBOSITY=sqlstate -c "SET session_replication_role = replica" -c "$(Q "SELECT status FROM resume_chunks(${FID:-0})")" 2>&1 | tail -1)
check "F3 the superuser (session_replication_role = replica) resumes alice's run: it ends done|rows alice's trigger logged" \
  "done|50" "$F3|$(P -c "SELECT count(*) FROM alice.trig_log")"
echo "# F done at ${SECONDS}s"

# ------------------------------------------------------------- the end
poll 0 "SELECT count(*) FROM parallel_guarantee_activity" 100
check "nothing left in parallel_guarantee_activity and no worker of ours left" "0|0" \
  "$(P -c "SELECT (SELECT count(*) FROM parallel_guarantee_activity) || '|' || (SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'parallel_guarantee%')")"
check "server log: no PANIC, no TRAP, no process terminated by a signal" "0" \
  "$(grep -cE 'PANIC|TRAP:|terminated by signal' "$PC_LOG")"
echo "# $SECONDS s in all"
