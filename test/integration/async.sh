#!/usr/bin/env bash
# Asynchronous runs: submit_parallel_guarantee returns a run id at once and the run goes on
# after the submitting session ends; parallel_guarantee_status / _wait / _cancel on it, from
# other sessions and other roles; the parallel_guarantee.max_async_runs limit (53G05).
# Each check prints "ok - ..." or "not ok - ..." and what it found.
#
# Section 5 (run ids across databases, cancel and cancel_runs across databases) runs on a
# private cluster of its own (test/out/async_ids, port $ASYNC_PORT, default 54355): it is
# restarted, and a cancel_runs(database => NULL) there must not reach other tests' runs.
#
# Needs the throwaway cluster (bash scripts/cluster.sh start).  Creates and drops the databases
# pg_guarantee_async and pg_guarantee_async_drop and the roles guarantee_async_{alice,bob,auditor};
# sets and resets parallel_guarantee.max_async_runs with ALTER SYSTEM.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
. test/integration/data/tap.sh
plan 77
DB=pg_guarantee_async
DB2=pg_guarantee_async_other   # (dropped if an earlier version of this script left it)
ALICE=guarantee_async_alice
BOB=guarantee_async_bob
AUDITOR=guarantee_async_auditor
P() { bash scripts/cluster.sh psql -d "$DB" -tA -q "$@"; }                      # as postgres
PR() { local role=$1; shift; bash scripts/cluster.sh psql -U "$role" -d "$DB" -tA -q "$@"; }  # as a role
PG() { bash scripts/cluster.sh psql -d postgres -tA -q "$@"; }
# The first error line of a statement, with its SQLSTATE ("ERROR:  42704"); empty if none.
err() {  # err ROLE SQL
  PR "$1" -v VERBOSITY=sqlstate -c "$2" 2>&1 >/dev/null | grep -m1 '^ERROR' || true
}
# Polls a query (a new session each time) until it returns the wanted value; bounded: 20 s.
wait_for() {  # wait_for WANTED QUERY
  for _ in $(seq 1 400); do
    [ "$(P -c "$2" 2>/dev/null)" = "$1" ] && return 0
    sleep 0.05
  done
  return 1
}
now_ms() { date +%s%3N; }
# What is left of runs in progress: run slots / worker backends of this extension / parallel workers.
LEFT_Q="SELECT (SELECT count(*) FROM parallel_guarantee_activity WHERE database = current_database()) || '/' ||
               (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel_guarantee worker' AND datname = current_database()) || '/' ||
               (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker' AND datname = current_database())"

drop_roles() {
  PG -c "SET client_min_messages = warning" -c "DROP ROLE IF EXISTS $ALICE, $BOB, $AUDITOR" >/dev/null 2>&1
}
# max_async_runs as it was before the test: restored on exit, whatever happens.
ASYNC_SOURCE=$(PG -c "SELECT coalesce(sourcefile, '') FROM pg_settings WHERE name = 'parallel_guarantee.max_async_runs'")
ASYNC_BEFORE=$(PG -c "SHOW parallel_guarantee.max_async_runs")
ASYNC_TOUCHED=0
restore_async() {
  [ $ASYNC_TOUCHED = 1 ] || return 0
  if [[ $ASYNC_SOURCE == *postgresql.auto.conf ]]; then
    PG -c "ALTER SYSTEM SET parallel_guarantee.max_async_runs = $ASYNC_BEFORE" -c "SELECT pg_reload_conf()" >/dev/null
  else
    PG -c "ALTER SYSTEM RESET parallel_guarantee.max_async_runs" -c "SELECT pg_reload_conf()" >/dev/null
  fi
  ASYNC_TOUCHED=0
}
finish() {
  restore_async
  # Runs this test may have left in progress (a failed check): cancel them before dropping.
  P -c "SELECT pg_cancel_backend(worker_pid) FROM parallel_guarantee_activity WHERE database IN ('$DB', '$DB2')" >/dev/null 2>&1
  PG -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "DROP DATABASE IF EXISTS $DB2 WITH (FORCE)" >/dev/null 2>&1
  drop_roles
  if [ "${X_CLUSTER:-0}" = 1 ]; then pc_stop immediate; fi
}
tap_on_exit finish

# Setup: database, extension, a table that plans 4 workers, a log for the cleanups, roles.
PG -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "DROP DATABASE IF EXISTS $DB2 WITH (FORCE)" >/dev/null
drop_roles
PG -c "CREATE DATABASE $DB" >/dev/null || { not_ok "setup: could not create the database $DB"; exit; }
# The README's way: the extension's schema on the database's search_path, and the one grant
# (USAGE on the schema) for the roles.
P -v ON_ERROR_STOP=1 >/dev/null <<SQL || { not_ok "setup: could not create the extension, tables and roles"; exit; }
CREATE EXTENSION parallel_guarantee;
ALTER DATABASE $DB SET search_path = "\$user", public, parallel_guarantee;
CREATE TABLE big (id int, pad text) WITH (parallel_workers = 4);
INSERT INTO big SELECT g, 'x' FROM generate_series(1, 200000) g;
VACUUM ANALYZE big;
CREATE TABLE cleanup_log (what text, at timestamptz DEFAULT clock_timestamp());
CREATE ROLE $ALICE LOGIN;
CREATE ROLE $BOB LOGIN;
CREATE ROLE $AUDITOR LOGIN IN ROLE pg_read_all_stats;
GRANT USAGE ON SCHEMA parallel_guarantee TO $ALICE, $BOB, $AUDITOR;
GRANT SELECT ON big TO $ALICE, $BOB, $AUDITOR;
GRANT CREATE ON SCHEMA public TO $ALICE, $BOB, $AUDITOR;
SQL
FAST="CREATE TABLE fast_out AS SELECT count(*) FROM big"
FAST_CLEAN="DROP TABLE IF EXISTS fast_out"
# A statement that runs for minutes at full degree unless stopped.
slow() { echo "CREATE TABLE $1 AS SELECT count(*) FROM big WHERE pg_sleep(0.01 + id*0) IS NOT NULL"; }
SLOW=$(slow slow_out)
SLOW_CLEAN="INSERT INTO cleanup_log (what) VALUES ('slow')"
RUNNING_Q() { echo "SELECT state || '/' || workers_launched FROM parallel_guarantee_activity WHERE run_id = $1"; }

# 1. Submit a fast run: the id comes back, the session ends, the run finishes on its own.
FAST_ID=$(P -c "SELECT submit_parallel_guarantee(\$q\$$FAST\$q\$, \$q\$$FAST_CLEAN\$q\$, label => 'async fast')" 2>&1)
if [[ $FAST_ID =~ ^[0-9]+$ ]]; then ok "submit returns a run id ($FAST_ID)"
else check "submit returns a run id" "a number" "$FAST_ID"; FAST_ID=0; fi
check "the submitted run finishes target_met with 4 workers (waited on from a new session)" "target_met|4|4|t" \
  "$(P -c "SELECT status, workers_planned, workers_launched, async FROM parallel_guarantee_wait($FAST_ID, '20 s')" 2>&1)"
check "status of the finished run" "target_met|1|4|4|t|t|async fast|t|t|$FAST" \
  "$(P -c "SELECT status, rows, workers_planned, workers_launched, attempts >= 1, async, label,
                  sqlstate IS NULL, finished_at >= started_at, statement
             FROM parallel_guarantee_status($FAST_ID)" 2>&1)"
check "the table the run made exists, with the count" "200000" "$(P -c "SELECT count FROM fast_out" 2>&1)"
t0=$(now_ms)
out=$(timeout 10 bash scripts/cluster.sh psql -d "$DB" -tA -q -c "SELECT status FROM parallel_guarantee_wait($FAST_ID)" 2>&1)
t1=$(now_ms)
check "waiting (no timeout) on a finished run returns at once" "target_met fast" \
  "$out $( [ $((t1 - t0)) -lt 2000 ] && echo fast || echo "slow: $((t1 - t0)) ms")"
check "the run's attempts are in parallel_guarantee_attempts, the last with 4 workers" "true|4|4|target met" \
  "$(P -c "SELECT (a.attempt = r.attempts) || '|' || a.workers_planned || '|' || a.workers_launched || '|' || a.outcome
             FROM parallel_guarantee_attempts a JOIN parallel_guarantee_runs r USING (run_id)
            WHERE a.run_id = $FAST_ID ORDER BY a.attempt DESC LIMIT 1" 2>&1)"

# 2. Submit a slow run; it goes on without its session; cancel it.
t0=$(now_ms)
SLOW_ID=$(P -c "SELECT submit_parallel_guarantee(\$q\$$SLOW\$q\$, \$q\$$SLOW_CLEAN\$q\$, label => 'async slow')" 2>&1)
t1=$(now_ms)
[[ $SLOW_ID =~ ^[0-9]+$ ]] || SLOW_ID=0
check "submitting a slow run returns its id at once (under 5 s)" "id fast" \
  "$( [ "$SLOW_ID" != 0 ] && echo id || echo "no id: $SLOW_ID") $( [ $((t1 - t0)) -lt 5000 ] && echo fast || echo "slow: $((t1 - t0)) ms")"
if wait_for "running/4" "$(RUNNING_Q "$SLOW_ID")"; then
  ok "the slow run is running with 4 workers after its session ended"
  check "the submitting session is gone while the run goes on" "0|running" \
    "$(P -c "SELECT (SELECT count(*) FROM pg_stat_activity p WHERE p.pid = r.caller_pid) || '|' || r.status
               FROM parallel_guarantee_status($SLOW_ID) r" 2>&1)"
  check "cancel of a run in progress returns true" "t" "$(P -c "SELECT parallel_guarantee_cancel($SLOW_ID)" 2>&1)"
  check "after the cancel, wait returns status cancelled with sqlstate 57014" "cancelled|57014" \
    "$(P -c "SELECT status, sqlstate FROM parallel_guarantee_wait($SLOW_ID, '20 s')" 2>&1)"
  check "the cancelled run's cleanup ran once" "1" "$(P -c "SELECT count(*) FROM cleanup_log WHERE what = 'slow'" 2>&1)"
  wait_for "0/0/0" "$LEFT_Q"
  check "no run slot, parallel_guarantee worker or parallel worker left (slots/workers/parallel)" "0/0/0" "$(P -c "$LEFT_Q" 2>&1)"
  # (A statement cancelled mid-run leaves no table: PostgreSQL's atomicity, not counted.)
  echo "# the cancelled run's slow_out table: '$(P -c "SELECT to_regclass('slow_out')" 2>&1)'"
  check "the cancelled run's one attempt is recorded as cancelled, with its 4 workers (attempts|outcome|launched)" "1|cancelled|4" \
    "$(P -c "SELECT count(*) || '|' || string_agg(outcome, ',') || '|' || string_agg(workers_launched::text, ',') FROM parallel_guarantee_attempts WHERE run_id = $SLOW_ID" 2>&1)"
else
  check "the slow run is running with 4 workers after its session ended" "running/4" "$(P -c "$(RUNNING_Q "$SLOW_ID")" 2>&1)"
fi
out=$(P -c "SELECT parallel_guarantee_cancel($SLOW_ID)" 2>&1)
check "cancelling a finished run again returns false with a NOTICE" \
  "NOTICE:  guaranteed run $SLOW_ID is not in progress: its status is cancelled|f" "$(echo "$out" | paste -sd'|')"

# 2b. parallel_guarantee_cancel before and after the statement finished, each made to
#     happen: the same statement (a parallel count, then an insert into late_t) is held at a
#     gate, an advisory lock this test holds, either inside the statement, after its insert
#     ("before": the statement has not finished), or in a deferred trigger that runs while
#     the run commits ("after": the statement has finished and is committing).  The cancel
#     is sent while the run waits at the gate, then the gate opens.  Before: the cancel
#     returns true, the run ends cancelled (57014), its insert is rolled back and its
#     cleanup runs.  After: the cancel waits until the run has recorded how it ended,
#     returns false naming the final status, the run ends target_met, its insert is
#     committed and no cleanup runs.
P -c "CREATE TABLE late_t (id int)" \
  -c "CREATE FUNCTION late_gate() RETURNS trigger LANGUAGE plpgsql AS \$f\$ BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN NULL; END \$f\$" \
  -c "CREATE CONSTRAINT TRIGGER late_gate AFTER INSERT ON late_t DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION late_gate()" >/dev/null
# gated_cancel WHEN STATEMENT: the run held at its gate, cancelled, then let go.
gated_cancel() {
  local when=$1 stmt=$2 hold_dir id canceller holder
  P -c "TRUNCATE late_t, cleanup_log" >/dev/null
  hold_dir=$(mktemp -d)
  mkfifo "$hold_dir/in"
  bash scripts/cluster.sh psql -d "$DB" -tA -q <"$hold_dir/in" >"$hold_dir/out" 2>&1 &
  holder=$!
  exec 3>"$hold_dir/in"
  echo "SELECT pg_advisory_lock(4242);" >&3
  wait_for 1 "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND granted"
  id=$(P -c "SELECT submit_parallel_guarantee(\$q\$$stmt\$q\$, \$c\$INSERT INTO cleanup_log (what) VALUES ('gated')\$c\$, label => 'async cancel $when')" 2>&1)
  [[ $id =~ ^[0-9]+$ ]] || { echo "# the $when run's submit: $id"; id=0; }
  if wait_for 1 "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted"; then
    ok "cancel $when the statement finished: the run waits at its gate ($([ "$when" = before ] && echo "inside the statement" || echo "in its commit"))"
    P -c "SELECT parallel_guarantee_cancel($id)" >"$hold_dir/cancel" 2>&1 &
    canceller=$!
    # Before: the cancel is answered at once.  After: it waits for the run's end.
    [ "$when" = after ] && wait_for 1 "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT parallel_guarantee_cancel($id)%' AND state = 'active'"
    sleep 0.5
    check "cancel $when the statement finished: the cancel $([ "$when" = before ] && echo "is answered at once" || echo "waits while the run is committing")" \
      "$([ "$when" = before ] && echo returned || echo running)" "$(kill -0 $canceller 2>/dev/null && echo running || echo returned)"
    echo "SELECT pg_advisory_unlock_all();" >&3
    wait $canceller
    if [ "$when" = before ]; then
      check "cancel before the statement finished: it returns true" "t" "$(paste -sd'|' "$hold_dir/cancel")"
      check "cancel before the statement finished: the run ends cancelled (57014), its insert rolled back, its cleanup run once, its attempt cancelled (status|sqlstate|rows of late_t|cleanups|attempt outcomes)" \
        "cancelled|57014|0|1|cancelled" \
        "$(P -c "SELECT status || '|' || sqlstate || '|' || (SELECT count(*) FROM late_t) || '|' || (SELECT count(*) FROM cleanup_log WHERE what = 'gated')
                        || '|' || (SELECT string_agg(outcome, ',' ORDER BY attempt) FROM parallel_guarantee_attempts WHERE run_id = $id)
                   FROM parallel_guarantee_wait($id, '20 s')" 2>&1)"
    else
      check "cancel after the statement finished: it returns false and names the final status" \
        "NOTICE:  guaranteed run $id is not in progress: its status is target_met|f" "$(paste -sd'|' "$hold_dir/cancel")"
      check "cancel after the statement finished: the run ends target_met, its insert committed, no cleanup, its attempt met the target (status|sqlstate|rows of late_t|cleanups|attempt outcomes)" \
        "target_met|-|1|0|target met" \
        "$(P -c "SELECT status || '|' || coalesce(sqlstate, '-') || '|' || (SELECT count(*) FROM late_t) || '|' || (SELECT count(*) FROM cleanup_log WHERE what = 'gated')
                        || '|' || (SELECT string_agg(outcome, ',' ORDER BY attempt) FROM parallel_guarantee_attempts WHERE run_id = $id)
                   FROM parallel_guarantee_wait($id, '20 s')" 2>&1)"
    fi
  else
    not_ok "cancel $when the statement finished: the run waits at its gate" \
      "waiting on the gate: $(P -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted" 2>&1)"
  fi
  exec 3>&-
  wait $holder
  rm -rf "$hold_dir"
  wait_for "0/0/0" "$LEFT_Q"
}
gated_cancel before "DO \$d\$ BEGIN PERFORM count(*) FROM big; INSERT INTO late_t VALUES (1); PERFORM pg_advisory_xact_lock_shared(4242); END \$d\$"
gated_cancel after "DO \$d\$ BEGIN PERFORM count(*) FROM big; INSERT INTO late_t VALUES (1); END \$d\$"

# 2c. A submit that fails before returning the run id (its statement_timeout fires while it
#     waits for the worker to start or to record the run) must not leave a run going on
#     that nobody knows of: such a run is stopped (cancelled) or never starts.  The
#     timeouts range from 1 ms, under which a submit always times out, to 200 ms, under
#     which it returns its id: both outcomes must happen, and each is checked.
P -c "CREATE TABLE unseen (ms int, outcome text, run_id bigint)" >/dev/null
for ms in 1 2 3 4 5 6 8 10 12 15 20 30 50 100 200; do
  for _ in 1 2 3 4; do
    out=$(P -c "SET statement_timeout = '${ms}ms'" -c "SELECT submit_parallel_guarantee('SELECT count(*) FROM big', label => 'async unseen')" 2>&1)
    if [[ $out =~ ^[0-9]+$ ]]; then P -c "INSERT INTO unseen VALUES ($ms, 'id', $out)" >/dev/null
    elif [[ $out == *"statement timeout"* ]]; then P -c "INSERT INTO unseen VALUES ($ms, 'timed out', NULL)" >/dev/null
    else P -c "INSERT INTO unseen VALUES ($ms, \$o\$$out\$o\$, NULL)" >/dev/null; fi
  done
done
wait_for 0 "SELECT count(*) FROM parallel_guarantee_runs WHERE label = 'async unseen' AND status = 'running'"
echo "# submits under tiny timeouts: $(P -c "SELECT string_agg(outcome || ' x' || n || ' (' || lo || '-' || hi || ' ms)', ', ') FROM (SELECT outcome, count(*) n, min(ms) lo, max(ms) hi FROM unseen GROUP BY 1) s")"
check "submits under tiny timeouts: both outcomes happened, nothing else (returned an id|timed out before it|other)" "yes|yes|0" \
  "$(P -c "SELECT CASE WHEN count(*) FILTER (WHERE outcome = 'id') > 0 THEN 'yes' ELSE 'none' END || '|' ||
                  CASE WHEN count(*) FILTER (WHERE outcome = 'timed out') > 0 THEN 'yes' ELSE 'none' END || '|' ||
                  count(*) FILTER (WHERE outcome NOT IN ('id', 'timed out')) FROM unseen" 2>&1)"
check "submits that returned an id: each of their runs ran to its end (target_met), none is missing from the history (runs|target_met)" \
  "$(P -c "SELECT count(*) || '|' || count(*) FROM unseen WHERE outcome = 'id'")" \
  "$(P -c "SELECT count(*) || '|' || count(*) FILTER (WHERE r.status = 'target_met') FROM unseen u LEFT JOIN parallel_guarantee_runs r USING (run_id) WHERE u.outcome = 'id'" 2>&1)"
check "submits that timed out before the id: every run they started is cancelled, none goes on unseen (runs not cancelled)" "0" \
  "$(P -c "SELECT count(*) FROM parallel_guarantee_runs r WHERE r.label = 'async unseen' AND r.status <> 'cancelled'
                AND r.run_id NOT IN (SELECT run_id FROM unseen WHERE run_id IS NOT NULL)" 2>&1)"
echo "# submits that timed out: $(P -c "SELECT count(*) FROM parallel_guarantee_runs r WHERE r.label = 'async unseen' AND r.run_id NOT IN (SELECT run_id FROM unseen WHERE run_id IS NOT NULL)") of them had started a run (recorded cancelled)"
wait_for "0/0/0" "$LEFT_Q"

# 3. An unknown run id.
NOID=$(P -c "SELECT coalesce(max(run_id), 0) + 1000000 FROM parallel_guarantee_runs")
check "status of an unknown run id: 42704" "ERROR:  42704" "$(err postgres "SELECT parallel_guarantee_status($NOID)")"
check "wait on an unknown run id: 42704" "ERROR:  42704" "$(err postgres "SELECT parallel_guarantee_wait($NOID)")"
check "cancel of an unknown run id: 42704" "ERROR:  42704" "$(err postgres "SELECT parallel_guarantee_cancel($NOID)")"

# 4. Roles: alice's run in progress, seen (or not) and acted on by bob and by a member of
#    pg_read_all_stats.
A_ID=$(PR $ALICE -c "SELECT submit_parallel_guarantee(\$q\$$(slow alice_out)\$q\$, 'DROP TABLE IF EXISTS alice_out', label => 'alice slow')" 2>&1)
[[ $A_ID =~ ^[0-9]+$ ]] || { echo "# alice's submit: $A_ID"; A_ID=0; }
if wait_for "running/4" "$(RUNNING_Q "$A_ID")"; then
  ok "alice's submitted run is running with 4 workers"
  check "bob cannot see alice's run: status 42704" "ERROR:  42704" "$(err $BOB "SELECT parallel_guarantee_status($A_ID)")"
  check "bob cannot see alice's run: wait 42704" "ERROR:  42704" "$(err $BOB "SELECT parallel_guarantee_wait($A_ID, '1 s')")"
  check "bob cannot see alice's run: cancel 42704" "ERROR:  42704" "$(err $BOB "SELECT parallel_guarantee_cancel($A_ID)")"
  check "bob sees no run in parallel_guarantee_runs or parallel_guarantee_activity" "0|0" \
    "$(PR $BOB -c "SELECT (SELECT count(*) FROM parallel_guarantee_runs) || '|' || (SELECT count(*) FROM parallel_guarantee_activity)" 2>&1)"
  check "bob calling the internal cancel function directly: 42704 (he may not see the run)" "ERROR:  42704" \
    "$(err $BOB "SELECT parallel_guarantee_cancel_run($A_ID)")"
  check "bob calling the internal wait function directly: 42704 (he may not see the run)" "ERROR:  42704" \
    "$(err $BOB "SELECT parallel_guarantee_wait_for($A_ID, '1 s')")"
  check "a member of pg_read_all_stats sees alice's run in progress" "running|$ALICE|alice slow|1" \
    "$(PR $AUDITOR -c "SELECT status, role, label, (SELECT count(*) FROM parallel_guarantee_runs WHERE run_id = $A_ID)
                         FROM parallel_guarantee_status($A_ID)" 2>&1)"
  check "a member of pg_read_all_stats sees alice's run in parallel_guarantee_activity" "running|$ALICE" \
    "$(PR $AUDITOR -c "SELECT state, role FROM parallel_guarantee_activity WHERE run_id = $A_ID" 2>&1)"
  check "a member of pg_read_all_stats may not wait on alice's run: 42501" "ERROR:  42501" \
    "$(err $AUDITOR "SELECT parallel_guarantee_wait($A_ID, '1 s')")"
  check "a member of pg_read_all_stats may not cancel alice's run: 42501" "ERROR:  42501" \
    "$(err $AUDITOR "SELECT parallel_guarantee_cancel($A_ID)")"
  check "alice's run is still running after those attempts" "running/4" "$(P -c "$(RUNNING_Q "$A_ID")" 2>&1)"
  check "alice cancels her own run: true" "t" "$(PR $ALICE -c "SELECT parallel_guarantee_cancel($A_ID)" 2>&1)"
  check "alice waits on her run: cancelled, 57014" "cancelled|57014" \
    "$(PR $ALICE -c "SELECT status, sqlstate FROM parallel_guarantee_wait($A_ID, '20 s')" 2>&1)"
  check "a member of pg_read_all_stats may wait on alice's finished run" "cancelled" \
    "$(PR $AUDITOR -c "SELECT status FROM parallel_guarantee_wait($A_ID)" 2>&1)"
  check "bob still cannot see alice's finished run: 42704" "ERROR:  42704" "$(err $BOB "SELECT parallel_guarantee_status($A_ID)")"
  echo "# alice's cancelled run's alice_out table: '$(P -c "SELECT to_regclass('alice_out')" 2>&1)' (not counted: PostgreSQL's atomicity)"
else
  check "alice's submitted run is running with 4 workers" "running/4" "$(P -c "$(RUNNING_Q "$A_ID")" 2>&1)"
fi
wait_for "0/0/0" "$LEFT_Q"

# 5. Run ids across databases, on a private cluster (test/integration/data/private_cluster.sh;
#    it is restarted, and cancel_runs(database => NULL) there reaches no other test's runs).
#    From 1.0 run ids are unique in the cluster: runs started alternately in two databases
#    get distinct, increasing ids, and so do runs after a restart (fast or immediate).
#    parallel_guarantee_cancel(id) of a run in progress in another database cancels it when
#    the caller may (the run's role, a superuser): a role that may not see it gets 42704, a
#    member of pg_read_all_stats, who sees it but may not act for its role, 42501.
#    parallel_guarantee_status / _wait of it refuse with 55000, naming its database.
#    parallel_guarantee_cancel_runs: database => NULL reaches every database, the default
#    only the current one; label and role filter; a role cancels only runs it may.
. "$ROOT/test/integration/data/private_cluster.sh"
pc_use async_ids "${ASYNC_PORT:-54355}"
XP() { local db=$1; shift; pc_psql -d "$db" -tA -q "$@"; }                              # as postgres
XR() { local role=$1 db=$2; shift 2; pc_psql -U "$role" -d "$db" -tA -q "$@"; }          # as a role
# The first error line of a statement run as ROLE in DB, with its SQLSTATE and message.
xerr() {  # xerr ROLE DB SQL
  XR "$1" "$2" -v VERBOSITY=verbose -c "$3" 2>&1 >/dev/null | grep -m1 '^ERROR' || true
}
xcode() { cut -c1-13; }   # "ERROR:  42704: ..." -> "ERROR:  42704"
xwait_for() {  # xwait_for DB WANTED QUERY (as postgres; bounded: 20 s)
  for _ in $(seq 1 400); do
    [ "$(XP "$1" -c "$3" 2>/dev/null)" = "$2" ] && return 0
    sleep 0.05
  done
  return 1
}
XSLOW="SELECT count(*) FROM big WHERE pg_sleep(0.01 + id*0) IS NOT NULL"
# xsubmit ROLE DB LABEL: submits a slow run (minutes), prints its id once it is running.
xsubmit() {
  local id
  id=$(XR "$1" "$2" -c "SELECT submit_parallel_guarantee(\$q\$$XSLOW\$q\$, target_workers => 2, min_workers => 0, label => '$3')" 2>&1)
  [[ $id =~ ^[0-9]+$ ]] || { echo "# $1's submit in $2: $id" >&2; echo 0; return; }
  xwait_for "$2" running "SELECT state FROM parallel_guarantee_activity WHERE run_id = $id" \
    || echo "# $1's run $id in $2 is not running: $(XP "$2" -c "SELECT state FROM parallel_guarantee_activity WHERE run_id = $id" 2>&1)" >&2
  echo "$id"
}
xquick() {  # xquick DB: a quick run's id
  XP "$1" -c "SET client_min_messages = warning" \
    -c "SELECT run_id FROM run_with_parallel_guarantee('SELECT count(*) FROM big', target_workers => 2, min_workers => 0, label => 'x quick')" 2>&1
}
# increasing ID...: "increasing" if every argument is a number above the one before.
increasing() {
  local prev=0 x
  for x in "$@"; do
    if ! [[ $x =~ ^[0-9]+$ ]] || [ "$x" -le "$prev" ]; then echo "not increasing: $*"; return; fi
    prev=$x
  done
  echo increasing
}
X_RUNNING="SELECT count(*) FROM parallel_guarantee_activity WHERE label LIKE 'x %'"

X_CLUSTER=1
if ! pc_init; then not_ok "setup: the private cluster of section 5 did not start (log: $PC_LOG)"; exit; fi
XP postgres -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || { not_ok "setup: section 5's databases and roles"; exit; }
CREATE DATABASE ida;
CREATE DATABASE idb;
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
CREATE ROLE auditor LOGIN IN ROLE pg_read_all_stats;
SQL
for db in ida idb; do
  XP "$db" -v ON_ERROR_STOP=1 >/dev/null <<SQL || { not_ok "setup: the extension in $db"; exit; }
SET client_min_messages = warning;
CREATE EXTENSION parallel_guarantee;
ALTER DATABASE $db SET search_path = "\$user", public, parallel_guarantee;
GRANT USAGE ON SCHEMA parallel_guarantee TO alice, bob, auditor;
CREATE TABLE big (id int, pad text) WITH (parallel_workers = 2);
INSERT INTO big SELECT g, 'x' FROM generate_series(1, 20000) g;
VACUUM ANALYZE big;
GRANT SELECT ON big TO alice, bob, auditor;
SQL
done

# 5a. Ids of runs started alternately in the two databases.
XIDS=()
for i in 1 2 3 4 5 6; do XIDS+=("$(xquick "$([ $((i % 2)) = 1 ] && echo ida || echo idb)")"); done
check "runs started alternately in ida and idb get distinct, increasing ids (${XIDS[*]})" "increasing" "$(increasing "${XIDS[@]}")"
check "each database's history has its own runs' ids (ida|idb)" \
  "${XIDS[0]},${XIDS[2]},${XIDS[4]}|${XIDS[1]},${XIDS[3]},${XIDS[5]}" \
  "$(XP ida -c "SELECT string_agg(run_id::text, ',' ORDER BY run_id) FROM parallel_guarantee_runs")|$(XP idb -c "SELECT string_agg(run_id::text, ',' ORDER BY run_id) FROM parallel_guarantee_runs")"
check "status in ida of idb's finished run: 42704 (its outcome is recorded in idb)" "ERROR:  42704" \
  "$(xerr postgres ida "SELECT status FROM parallel_guarantee_status(${XIDS[1]})" | xcode)"

# 5b. Ids after a restart, fast and immediate (a crash): above every id given out before.
for mode in fast immediate; do
  before=$(XP ida -c "SELECT greatest((SELECT max(run_id) FROM parallel_guarantee_runs), '$(XP idb -c "SELECT max(run_id) FROM parallel_guarantee_runs")'::bigint)")
  pc_stop "$mode"
  pc_start && pc_wait_ready
  a=$(xquick idb); b=$(xquick ida)
  check "after a restart (stop -m $mode), new runs in idb and ida get ids above every id before ($before): $a, $b" "increasing" "$(increasing "$before" "$a" "$b")"
done

# 5c. alice's run in progress in idb, seen and acted on from ida.
X1=$(xsubmit alice idb "x alice 1")
check "status in ida of alice's run in progress in idb: 55000, naming idb" \
  "ERROR:  55000: run $X1 is in progress in database \"idb\", not in this one" "$(xerr postgres ida "SELECT status FROM parallel_guarantee_status($X1)")"
check "alice waiting in ida on her run in progress in idb: 55000, naming idb" \
  "ERROR:  55000: run $X1 is in progress in database \"idb\", not in this one" "$(xerr alice ida "SELECT status FROM parallel_guarantee_wait($X1, '1 s')")"
check "bob cancelling alice's run of idb from ida: 42704 (he may not see it)" "ERROR:  42704" \
  "$(xerr bob ida "SELECT parallel_guarantee_cancel($X1)" | xcode)"
check "a member of pg_read_all_stats cancelling it from ida: 42501 (sees it, may not act for alice); it is still running" "ERROR:  42501|running" \
  "$(xerr auditor ida "SELECT parallel_guarantee_cancel($X1)" | xcode)|$(XP idb -c "SELECT state FROM parallel_guarantee_activity WHERE run_id = $X1" 2>&1)"
check "alice cancels from ida her run in progress in idb: true, and idb's history says cancelled (57014)" "t|cancelled|57014" \
  "$(XR alice ida -c "SELECT parallel_guarantee_cancel($X1)" 2>&1)|$(XR alice idb -c "SELECT status || '|' || sqlstate FROM parallel_guarantee_wait($X1, '20 s')" 2>&1)"
X2=$(xsubmit alice idb "x alice 2")
check "the superuser cancels from ida alice's run in progress in idb: true, and idb's history says cancelled" "t|cancelled" \
  "$(XP ida -c "SELECT parallel_guarantee_cancel($X2)" 2>&1)|$(XP idb -c "SELECT status FROM parallel_guarantee_wait($X2, '20 s')" 2>&1)"
check "ida's history has neither of idb's runs" "0" "$(XP ida -c "SELECT count(*) FROM parallel_guarantee_runs WHERE run_id IN ($X1, $X2)" 2>&1)"

# 5d. parallel_guarantee_cancel_runs across databases: R1 (postgres, ida, 'x cr'), R2
#     (postgres, idb, 'x cr'), R3 (bob, idb, 'x cr'), R4 (postgres, idb, 'x other').
R1=$(xsubmit postgres ida "x cr"); R2=$(xsubmit postgres idb "x cr"); R3=$(xsubmit bob idb "x cr"); R4=$(xsubmit postgres idb "x other")
xwait_for ida 4 "$X_RUNNING"
check "from ida, cancel_runs(label => 'x cr') (the database defaults to the current one) cancels ida's run only (cancelled|runs left)" "$R1|3" \
  "$(XP ida -c "SELECT string_agg(run_id::text, ',') FILTER (WHERE cancelled) FROM parallel_guarantee_cancel_runs(label => 'x cr')" 2>&1)|$(xwait_for ida 3 "$X_RUNNING"; XP ida -c "$X_RUNNING")"
check "bob in ida, cancel_runs(database => NULL): only his own run, in idb (cancelled|runs left)" "$R3|2" \
  "$(XR bob ida -c "SELECT string_agg(run_id::text, ',') FILTER (WHERE cancelled) FROM parallel_guarantee_cancel_runs(database => NULL)" 2>&1)|$(xwait_for ida 2 "$X_RUNNING"; XP ida -c "$X_RUNNING")"
check "from ida, cancel_runs(label => 'x cr', role => 'postgres', database => NULL): idb's run of that label and role (cancelled|runs left)" "$R2|1" \
  "$(XP ida -c "SELECT string_agg(run_id::text, ',') FILTER (WHERE cancelled) FROM parallel_guarantee_cancel_runs(label => 'x cr', role => 'postgres', database => NULL)" 2>&1)|$(xwait_for ida 1 "$X_RUNNING"; XP ida -c "$X_RUNNING")"
check "from ida, cancel_runs(database => NULL) cancels the rest; each run ends cancelled in its own database (cancelled|ida|idb)" "$R4|$R1 cancelled|$R2 cancelled,$R3 cancelled,$R4 cancelled" \
  "$(XP ida -c "SELECT string_agg(run_id::text, ',') FILTER (WHERE cancelled) FROM parallel_guarantee_cancel_runs(database => NULL)" 2>&1)|$(xwait_for ida 0 "$X_RUNNING"
     XP ida -c "SELECT string_agg(run_id || ' ' || status, ',' ORDER BY run_id) FROM parallel_guarantee_runs WHERE label = 'x cr'")|$(XP idb -c "SELECT string_agg(run_id || ' ' || status, ',' ORDER BY run_id) FROM parallel_guarantee_runs WHERE label IN ('x cr', 'x other')")"
pc_stop fast
X_CLUSTER=0

# 6. parallel_guarantee.max_async_runs = 1: a second submitted run is refused with 53G05.
ASYNC_TOUCHED=1
PG -c "ALTER SYSTEM SET parallel_guarantee.max_async_runs = 1" -c "SELECT pg_reload_conf()" >/dev/null
if wait_for 1 "SHOW parallel_guarantee.max_async_runs"; then
  ok "max_async_runs is 1 after ALTER SYSTEM and a reload"
  M_ID=$(P -c "SELECT submit_parallel_guarantee(\$q\$$SLOW\$q\$, \$q\$$SLOW_CLEAN\$q\$, label => 'async limit')" 2>&1)
  [[ $M_ID =~ ^[0-9]+$ ]] || { echo "# the first submit under the limit: $M_ID"; M_ID=0; }
  check "with max_async_runs = 1, a second submit while one is in progress fails with 53G05" "ERROR:  53G05" \
    "$(err postgres "SELECT submit_parallel_guarantee('SELECT count(*) FROM big', label => 'async refused')")"
  check "the refused submit left no run behind" "0" \
    "$(P -c "SELECT count(*) FROM parallel_guarantee_runs WHERE label = 'async refused'" 2>&1)"
  check "the first run under the limit is cancelled" "t" "$(P -c "SELECT parallel_guarantee_cancel($M_ID)" 2>&1)"
  check "the first run under the limit ends cancelled" "cancelled" \
    "$(P -c "SELECT status FROM parallel_guarantee_wait($M_ID, '20 s')" 2>&1)"
  check "once it ended, a new submit is accepted again and finishes target_met" "target_met" \
    "$(P -c "SELECT status FROM parallel_guarantee_wait(submit_parallel_guarantee('SELECT count(*) FROM big', label => 'async after limit'), '20 s')" 2>&1)"
else
  check "max_async_runs is 1 after ALTER SYSTEM and a reload" "1" "$(P -c "SHOW parallel_guarantee.max_async_runs" 2>&1)"
fi
restore_async
wait_for "$ASYNC_BEFORE" "SHOW parallel_guarantee.max_async_runs"
check "max_async_runs is back to $ASYNC_BEFORE" "$ASYNC_BEFORE" "$(P -c "SHOW parallel_guarantee.max_async_runs" 2>&1)"
# 6b. A statement that submits several runs and then fails gives its client no id: the runs
#     it started are stopped, not left to go on unseen (alice may have 4 submitted runs in
#     progress: the 5th submit of the statement fails with 53G06).
MULTI="SELECT submit_parallel_guarantee(\$q\$SELECT count(*) FROM big WHERE pg_sleep(0.01 + id*0) IS NOT NULL\$q\$, target_workers => 2, min_workers => 0, force_workers => true, label => 'multi submit') FROM generate_series(1, 6)"
check "a statement submitting 6 runs as alice fails at the 5th (53G06)" "ERROR:  53G06" \
  "$(PR "$ALICE" -v VERBOSITY=sqlstate -c "$MULTI" 2>&1 >/dev/null | grep -m1 '^ERROR')"
wait_for 0 "SELECT count(*) FROM parallel_guarantee_activity WHERE label = 'multi submit'"
check "the 4 runs it had started were stopped and recorded cancelled (none goes on unseen)" "cancelled=4" \
  "$(P -c "SELECT string_agg(status || '=' || n, ', ') FROM (SELECT status, count(*) n FROM parallel_guarantee_runs WHERE label = 'multi submit' GROUP BY 1) s" 2>&1)"

# 6c. parallel_guarantee_cancel_runs: the runs of a label, then all the caller may cancel.
BULK="\$q\$SELECT count(*) FROM big WHERE pg_sleep(0.01 + id*0) IS NOT NULL\$q\$, target_workers => 2, min_workers => 0, force_workers => true"
P -c "SELECT submit_parallel_guarantee($BULK, label => 'bulk') FROM generate_series(1, 2)" >/dev/null 2>&1
P -c "SELECT submit_parallel_guarantee($BULK, label => 'bulk other')" >/dev/null 2>&1
wait_for 3 "SELECT count(*) FROM parallel_guarantee_activity WHERE label LIKE 'bulk%' AND database = current_database()"
check "cancel_runs(label => 'bulk') cancels exactly that label's runs (cancelled|left running)" "2|1" \
  "$(P -c "SELECT count(*) FILTER (WHERE cancelled) FROM parallel_guarantee_cancel_runs(label => 'bulk')" 2>&1)|$(P -c "SELECT count(*) FROM parallel_guarantee_activity WHERE label = 'bulk other' AND database = current_database()" 2>&1)"
check "cancel_runs() cancels the rest, and every bulk run ends cancelled" "1|cancelled=3" \
  "$(P -c "SELECT count(*) FILTER (WHERE cancelled) FROM parallel_guarantee_cancel_runs()" 2>&1)|$(wait_for 0 "SELECT count(*) FROM parallel_guarantee_activity WHERE label LIKE 'bulk%'"; P -c "SELECT string_agg(status || '=' || n, ', ') FROM (SELECT status, count(*) n FROM parallel_guarantee_runs WHERE label LIKE 'bulk%' GROUP BY 1) s" 2>&1)"

# 7. DROP EXTENSION while a run of the database is in progress is refused; once the run is
#    over it succeeds.
DB3=pg_guarantee_async_drop
PD() { bash scripts/cluster.sh psql -d "$DB3" -tA -q "$@"; }
PG -c "DROP DATABASE IF EXISTS $DB3" >/dev/null 2>&1
PG -c "CREATE DATABASE $DB3" >/dev/null
PD -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE EXTENSION parallel_guarantee;
ALTER DATABASE $DB3 SET search_path = "\$user", public, parallel_guarantee;
CREATE TABLE big (id int, pad text) WITH (parallel_workers = 4);
INSERT INTO big SELECT g, 'x' FROM generate_series(1, 20000) g;
SQL
D_ID=$(PD -c "SELECT submit_parallel_guarantee(\$q\$$SLOW\$q\$, target_workers => 2, min_workers => 0, force_workers => true, label => 'under a drop')" 2>&1)
wait_for "running" "SELECT state FROM parallel_guarantee_activity WHERE run_id = ${D_ID:-0} AND database = '$DB3'"
check "DROP EXTENSION while a run of the database is in progress is refused (55006)" "ERROR:  55006" \
  "$(PD -v VERBOSITY=sqlstate -c "DROP EXTENSION parallel_guarantee" 2>&1 >/dev/null | grep -m1 '^ERROR')"
check "the run goes on, recorded" "running|running" \
  "$(PD -c "SELECT (SELECT state FROM parallel_guarantee_activity WHERE run_id = $D_ID AND database = '$DB3') || '|' || status FROM parallel_guarantee_runs WHERE run_id = $D_ID" 2>&1)"
PD -c "SELECT parallel_guarantee_cancel($D_ID)" >/dev/null 2>&1
check "once the run is cancelled and over, DROP EXTENSION succeeds" "cancelled|DROP EXTENSION" \
  "$(PD -c "SELECT status FROM parallel_guarantee_wait($D_ID, '20 s')" 2>&1)|$(bash scripts/cluster.sh psql -d "$DB3" -c "DROP EXTENSION parallel_guarantee" 2>&1)"
check "another database's DROP EXTENSION is not held back by runs elsewhere" "DROP EXTENSION" \
  "$(PD -c "CREATE EXTENSION parallel_guarantee" -c "SELECT 1 FROM pg_sleep(0)" >/dev/null 2>&1; O2=$(P -c "SELECT submit_parallel_guarantee(\$q\$$SLOW\$q\$, target_workers => 2, min_workers => 0, force_workers => true, label => 'elsewhere')" 2>&1); bash scripts/cluster.sh psql -d "$DB3" -c "DROP EXTENSION parallel_guarantee" 2>&1; P -c "SELECT parallel_guarantee_cancel($O2)" >/dev/null 2>&1; P -c "SELECT parallel_guarantee_wait($O2, '20 s')" >/dev/null 2>&1)"
PG -c "DROP DATABASE IF EXISTS $DB3" >/dev/null 2>&1

wait_for "0/0/0" "$LEFT_Q"
check "at the end: no run slot or worker left (slots/workers/parallel)" "0/0/0" "$(P -c "$LEFT_Q" 2>&1)"
