#!/usr/bin/env bash
# Index builds through run_with_parallel_guarantee (issue #15), on a private cluster
# (test/out/maintenance, port $MAINTENANCE_PORT, default 54383; max_parallel_maintenance_workers
# left at its default, 2, below every target here: the run raises it for the command):
#   1. cancelling the caller in the middle of a 4-worker CREATE INDEX (a 2-million-row table):
#      the caller gets 57014, the half-built index is gone, the cleanup ran once, no parallel
#      worker or run worker is left, and the history says cancelled;
#   2. CREATE INDEX on a partitioned table with two partitions: target met with 4 workers, the
#      index on both partitions;
#   3. REINDEX TABLE of a table with two btree indexes (and a TOAST table): target met, both
#      rebuilt; REINDEX TABLE of a table whose only index is a hash index: 53G04;
#   4. a role that is not superuser builds an index on its own table (target met, the index is
#      its own) and gets 42501 "must be owner" on a table it does not own: the build runs as
#      the caller;
#   5. the history: the builds' runs and attempts, with 4 planned and 4 launched;
#   6. a session whose max_parallel_workers (2) is below the target: one attempt, judged as the
#      last (a NOTICE says so), degraded with 2 workers, the index built once;
#   7. a build abandoned before launching while a hog holds 6 of the 8 workers, retried once
#      the hog is gone: target met on attempt 2, the cleanup ran once, the index built once;
#   8. a short launch on the last attempt, seen by the 1 ms watch of the leader's workers and
#      cancelled: 53G01, no index left;
#   9. VACUUM of a table with six indexes while the hog holds 6 of the 8 workers: each pass
#      short, the VACUUM cancelled and retried, degraded on the last attempt with 2; the same
#      VACUUM waiting in the queue, then met once the hog is gone; each attempt's passes (planned,
#      launched) kept in the history; no worker left.
#  10. CREATE INDEX CONCURRENTLY and REINDEX CONCURRENTLY through submit_parallel_guarantee
#      (a call that waits is refused: the build would wait for the caller's snapshot): target
#      met with a valid index; short on its last attempt, its INVALID index dropped by the
#      cleanup, or left behind without one.
# TAP style (data/tap.sh): the plan first, then "ok - ..." or "not ok - ..." per check.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
. "$ROOT/test/integration/data/tap.sh"
plan 50
PC_NAME=maintenance
PC_PORT=${MAINTENANCE_PORT:-54383}
. "$ROOT/test/integration/data/private_cluster.sh"
DB=mt
P() { PGOPTIONS="-c client_min_messages=warning" pc_psql -d "$DB" -tA -q "$@"; }              # as postgres
PR() { local role=$1; shift; PGOPTIONS="-c client_min_messages=warning" pc_psql -U "$role" -d "$DB" -tA -q "$@"; }
# The first error line of a statement, with its SQLSTATE and message ("ERROR:  42501: must be ...").
err() {  # err ROLE SQL...
  local role=$1; shift
  pc_psql -U "$role" -d "$DB" -tA -q -v VERBOSITY=verbose "$@" 2>&1 >/dev/null | grep -m1 '^ERROR' || true
}
# Polls a query (a new session each time) until it returns WANTED; bounded by TRIES x 50 ms.
wait_for() {  # wait_for WANTED QUERY [TRIES]
  for _ in $(seq 1 "${3:-400}"); do
    [ "$(P -c "$2" 2>/dev/null)" = "$1" ] && return 0
    sleep 0.05
  done
  return 1
}
# Waits (bounded) for a background process of this script to end; stops it if it does not.
wait_exit() {  # wait_exit PID SECONDS
  for _ in $(seq 1 $(($2 * 20))); do
    kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null; return 0; }
    sleep 0.05
  done
  echo "#   background process $1 still running after $2 s: stopped"
  kill "$1" 2>/dev/null; wait "$1" 2>/dev/null
  return 1
}
# What is left of runs in progress: run slots / run workers / parallel workers.
LEFT_Q="SELECT (SELECT count(*) FROM parallel_guarantee_activity) || '/' ||
               (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel_guarantee worker') || '/' ||
               (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker')"
# Indexes on a table (valid or not): a build retried after a leftover would show two.
INDEXES_Q() { echo "SELECT count(*) FROM pg_index WHERE indrelid = '$1'::regclass"; }
CLEANUPS_Q() { echo "SELECT count(*) FROM cleanup_log WHERE what = '$1'"; }
PASSES_Q() {  # one run's VACUUM passes per attempt: "attempt:{planned per pass}:{launched per pass},..."
  echo "SELECT string_agg(a.attempt || ':' || coalesce(a.pass_workers_planned::text, 'none') || ':' || coalesce(a.pass_workers_launched::text, 'none'), ',' ORDER BY a.attempt)
          FROM parallel_guarantee_attempts a JOIN parallel_guarantee_runs r USING (run_id) WHERE r.label = '$1'"
}
ATTEMPTS_Q() {  # one run's attempts: "attempt:outcome:planned:launched,..."
  echo "SELECT string_agg(a.attempt || ':' || a.outcome || ':' || a.workers_planned || ':' || a.workers_launched, ',' ORDER BY a.attempt)
          FROM parallel_guarantee_attempts a JOIN parallel_guarantee_runs r USING (run_id) WHERE r.label = '$1'"
}

# The hog: 6 of the 8 parallel workers, each asleep on its first row until cancelled.
HOG_PID=
start_hog() {
  PGAPPNAME=mt_hog pc_psql -d "$DB" -q -c "SET statement_timeout = '120s'" -c "SET max_parallel_workers_per_gather = 6" \
    -c "SELECT count(*) FROM hog WHERE pg_sleep(3600 + id * 0) IS NOT NULL" >/dev/null 2>&1 &
  HOG_PID=$!
  wait_for 6 "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker'" 400
}
release_hog() {
  [ -n "$HOG_PID" ] || return 0
  P -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'mt_hog' AND backend_type = 'client backend'" >/dev/null
  wait_exit "$HOG_PID" 20
  HOG_PID=
  wait_for 0 "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker'" 200
}
# Background callers of this script not yet waited for (sections 1 and 7).
CANCEL_PID=
RETRY_PID=
finish() {
  release_hog
  local pid
  for pid in $CANCEL_PID $RETRY_PID; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  pc_stop immediate
}
tap_on_exit finish

pc_setup "$DB"
P -v ON_ERROR_STOP=1 >/dev/null <<SQL || { not_ok "setup: the extension, tables and role could not be created"; exit 1; }
CREATE EXTENSION parallel_guarantee;
ALTER DATABASE $DB SET search_path = "\$user", public, parallel_guarantee;
CREATE TABLE cleanup_log (what text, at timestamptz DEFAULT clock_timestamp());
-- 1. Big enough that a 4-worker build takes seconds on a busy 2-core machine.
CREATE TABLE big (id int, t text) WITH (parallel_workers = 4);
INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 2000000) g;
-- 2. Two partitions, each planned 4 workers by its own parallel_workers.
CREATE TABLE pt (id int, t text) PARTITION BY RANGE (id);
CREATE TABLE pt1 PARTITION OF pt FOR VALUES FROM (1) TO (100001) WITH (parallel_workers = 4);
CREATE TABLE pt2 PARTITION OF pt FOR VALUES FROM (100001) TO (200001) WITH (parallel_workers = 4);
INSERT INTO pt SELECT g, md5(g::text) FROM generate_series(1, 200000) g;
-- 3. Two btree indexes (the text column gives the table a TOAST table and its index too);
--    a table whose only index is a hash index.
CREATE TABLE two (id int, t text) WITH (parallel_workers = 4);
INSERT INTO two SELECT g, md5(g::text) FROM generate_series(1, 100000) g;
CREATE INDEX two_id ON two (id);
CREATE INDEX two_t ON two (t);
CREATE TABLE hashed (id int, t text) WITH (parallel_workers = 4);
INSERT INTO hashed SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
CREATE INDEX hashed_id ON hashed USING hash (id);
-- 4. A role that is not superuser, with the one grant the README asks for, CREATE on the
--    schema (PostgreSQL 15 asks it of CREATE INDEX) and a table of its own.
CREATE ROLE builder LOGIN;
GRANT USAGE ON SCHEMA parallel_guarantee TO builder;
GRANT CREATE ON SCHEMA public TO builder;
CREATE TABLE owned (id int, t text) WITH (parallel_workers = 4);
INSERT INTO owned SELECT g, md5(g::text) FROM generate_series(1, 100000) g;
ALTER TABLE owned OWNER TO builder;
-- 6., 7., 8.
CREATE TABLE deg (id int, v int) WITH (parallel_workers = 4);
INSERT INTO deg SELECT g, g % 1000 FROM generate_series(1, 100000) g;
CREATE TABLE retried (id int, v int) WITH (parallel_workers = 4);
INSERT INTO retried SELECT g, g % 1000 FROM generate_series(1, 100000) g;
CREATE TABLE short (id int, v int) WITH (parallel_workers = 4);
INSERT INTO short SELECT g, g % 1000 FROM generate_series(1, 100000) g;
-- 9. Six indexes VACUUM vacuums in parallel (5 workers at most, PARALLEL 4: 4).
CREATE TABLE orders (id int, a int, b int, c int, d int, e int) WITH (autovacuum_enabled = off);
INSERT INTO orders SELECT g, g, g % 1000, g % 777, g % 333, g % 99 FROM generate_series(1, 100000) g;
CREATE INDEX ON orders (id); CREATE INDEX ON orders (a); CREATE INDEX ON orders (b);
CREATE INDEX ON orders (c); CREATE INDEX ON orders (d); CREATE INDEX ON orders (e);
-- One row per page, so that each of the hog's workers sleeps on its own row.
CREATE TABLE hog (id int, pad text) WITH (fillfactor = 10, parallel_workers = 8);
INSERT INTO hog SELECT g, repeat('x', 1500) FROM generate_series(1, 64) g;
VACUUM ANALYZE hog;
SQL

# 1. Cancelling the caller in the middle of the build.
CANCEL_OUT=$PC_DIR/cancelled.out
PGAPPNAME=mt_cancelled pc_psql -d "$DB" -tA -q -v VERBOSITY=verbose -c "SET maintenance_work_mem = '256MB'" \
  -c "SELECT * FROM run_with_parallel_guarantee('CREATE INDEX big_t ON big (t)', \$c\$INSERT INTO cleanup_log (what) VALUES ('big_t')\$c\$, 4, 4, 1, label => 'cancelled build')" \
  >"$CANCEL_OUT" 2>&1 &
CANCEL_PID=$!
# The caller, once its run is running and 4 parallel workers have the run's worker as leader.
CALLER=
for _ in $(seq 1 400); do
  CALLER=$(P -c "SELECT a.caller_pid FROM parallel_guarantee_activity a
                  WHERE a.label = 'cancelled build' AND a.state = 'running'
                    AND (SELECT count(*) FROM pg_stat_activity s WHERE s.backend_type = 'parallel worker' AND s.leader_pid = a.worker_pid) = 4" 2>/dev/null)
  [ -n "$CALLER" ] && break
  kill -0 "$CANCEL_PID" 2>/dev/null || break
  sleep 0.05
done
if [ -n "$CALLER" ]; then
  ok "the build is running with 4 parallel workers whose leader is the run's worker"
  # The activity view says the launch while the build runs (the timer publishes it).
  SHOWN=$(P -c "SELECT workers_planned || '/' || coalesce(workers_launched::text, 'none') FROM parallel_guarantee_activity
                 WHERE label = 'cancelled build'" 2>&1)
  P -c "SELECT pg_cancel_backend($CALLER)" >/dev/null
  check "during the build parallel_guarantee_activity shows 4 planned, 4 launched" "4/4" "$SHOWN"
else
  not_ok "the build is running with 4 parallel workers whose leader is the run's worker" \
    "activity: $(P -c "SELECT state || ' ' || coalesce(worker_pid::text, '-') FROM parallel_guarantee_activity WHERE label = 'cancelled build'" 2>&1)" \
    "caller's output: $(head -3 "$CANCEL_OUT" | paste -sd' ')"
  not_ok "during the build parallel_guarantee_activity shows 4 planned, 4 launched (the build was not seen running)"
fi
wait_exit "$CANCEL_PID" 30
CANCEL_PID=
check "the cancelled caller gets 57014" "ERROR:  57014: canceling statement due to user request" \
  "$(grep -m1 '^ERROR' "$CANCEL_OUT" || head -3 "$CANCEL_OUT" | paste -sd' ')"
check "no index big_t exists afterwards, nor any index on big (big_t|indexes)" "none|0" \
  "$(P -c "SELECT coalesce(to_regclass('big_t')::text, 'none') || '|' || ($(INDEXES_Q big))" 2>&1)"
wait_for "0/0/0" "$LEFT_Q" 200
check "within 10 s no run slot, run worker or parallel worker is left (slots/workers/parallel)" "0/0/0" "$(P -c "$LEFT_Q" 2>&1)"
check "the history: the run cancelled (57014), its one attempt cancelled after launching 4 of 4 (status|sqlstate|attempts)" \
  "cancelled|57014|1:cancelled:4:4" \
  "$(P -c "SELECT status || '|' || coalesce(sqlstate, '-') FROM parallel_guarantee_runs WHERE label = 'cancelled build'" 2>&1)|$(P -c "$(ATTEMPTS_Q 'cancelled build')" 2>&1)"
check "the cancelled build's cleanup ran once" "1" "$(P -c "$(CLEANUPS_Q big_t)" 2>&1)"

# 1b. Builds so small that their workers finish within milliseconds: each is still counted
# with all 4 workers (a worker seen once counts, even after it has exited), 40 in a row.
P -c "CREATE TABLE one_row (id int) WITH (parallel_workers = 4); INSERT INTO one_row VALUES (1)" >/dev/null
TINY=$(P -c "DO \$\$
  DECLARE r record; bad int := 0;
  BEGIN
    FOR i IN 1 .. 40 LOOP
      -- A name each: the caller's transaction must not lock the table the builds need.
      SELECT * INTO r FROM run_with_parallel_guarantee(format('CREATE INDEX one_row_%s ON one_row (id)', i),
                                                       NULL, 4, 4, 1);
      IF r.status <> 'target_met' OR r.workers_launched <> 4 THEN bad := bad + 1; END IF;
    END LOOP;
    RAISE WARNING 'short: %', bad;
  END \$\$" 2>&1 | sed -n 's/.*WARNING:  short: //p')
check "40 one-row builds in a row: every one target met with 4 launched (builds counted short)" "0" "${TINY:-error}"

# 2. A partitioned table: each partition's build held to the target.
check "CREATE INDEX on a partitioned table with two partitions: target met, 4 planned, 4 launched, 1 attempt" \
  "target_met|4|4|1" \
  "$(P -c "SELECT status, workers_planned, workers_launched, attempts FROM run_with_parallel_guarantee('CREATE INDEX pt_t ON pt (t)', NULL, 4, 4, 1, label => 'partitioned')" 2>&1)"
check "the index is valid on the parent and on both partitions (parent|partition:valid)" "true|pt1:true,pt2:true" \
  "$(P -c "SELECT (SELECT indisvalid::text FROM pg_index WHERE indexrelid = to_regclass('pt_t')) || '|' ||
                  (SELECT string_agg(x.indrelid::regclass || ':' || x.indisvalid::text, ',' ORDER BY x.indrelid::regclass::text)
                     FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid WHERE i.inhparent = to_regclass('pt_t'))" 2>&1)"

# 3. REINDEX TABLE.
BEFORE=$(P -c "SELECT pg_relation_filenode('two_id') || ',' || pg_relation_filenode('two_t')")
check "REINDEX TABLE of a table with two btree indexes and a TOAST table: target met, 4 planned, 4 launched" \
  "target_met|4|4|1" \
  "$(P -c "SELECT status, workers_planned, workers_launched, attempts FROM run_with_parallel_guarantee('REINDEX TABLE two', NULL, 4, 4, 1, label => 'reindex two')" 2>&1)"
check "both indexes were rebuilt (new files) and are valid" "2|2" \
  "$(P -c "SELECT count(*) FILTER (WHERE pg_relation_filenode(indexrelid) <> ALL (string_to_array('$BEFORE', ',')::oid[])) || '|' || count(*) FILTER (WHERE indisvalid)
             FROM pg_index WHERE indexrelid IN ('two_id'::regclass, 'two_t'::regclass)" 2>&1)"
check "REINDEX TABLE of a table whose only index is a hash index (built serially): 53G04, the hash index still there" \
  "ERROR:  53G04|1" \
  "$(err postgres -c "SELECT * FROM run_with_parallel_guarantee('REINDEX TABLE hashed', NULL, 4, 4, 1, label => 'reindex hashed')" | cut -c1-13)|$(P -c "$(INDEXES_Q hashed)" 2>&1)"

# 4. A role that is not superuser: the build runs as the caller.
check "builder (not superuser) builds an index on its own table: target met, 4 launched" "target_met|4|4" \
  "$(PR builder -c "SELECT status, workers_planned, workers_launched FROM parallel_guarantee.run_with_parallel_guarantee('CREATE INDEX owned_t ON owned (t)', NULL, 4, 4, 1, label => 'builder own')" 2>&1)"
check "the index is builder's and on its table (index|owner|table)" "owned_t|builder|owned" \
  "$(P -c "SELECT c.relname || '|' || pg_get_userbyid(c.relowner) || '|' || x.indrelid::regclass FROM pg_class c JOIN pg_index x ON x.indexrelid = c.oid WHERE c.oid = to_regclass('owned_t')" 2>&1)"
check "builder building an index on a table it does not own gets 42501 'must be owner', and no index is made" \
  "ERROR:  42501: must be owner of table two|none" \
  "$(err builder -c "SELECT * FROM parallel_guarantee.run_with_parallel_guarantee('CREATE INDEX two_by_builder ON two (t)', NULL, 4, 4, 1, label => 'builder not owner')")|$(P -c "SELECT coalesce(to_regclass('two_by_builder')::text, 'none')" 2>&1)"
# No lock on a table the role may not build on: with a writer's transaction open on "two"
# (its ROW EXCLUSIVE lock conflicts with the SHARE lock a build takes), the role's CREATE INDEX
# and REINDEX through the function fail at once with 42501, instead of queueing for a lock
# the role could never take itself (which would stall every later writer of the table).
HOLD_OUT=$PC_DIR/holder.out
pc_psql -d "$DB" -tA -q -c "BEGIN" -c "INSERT INTO two VALUES (0, 'held')" -c "SELECT pg_sleep(20)" >"$HOLD_OUT" 2>&1 &
HOLDER_PID=$!
wait_for 1 "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'two' AND l.mode = 'RowExclusiveLock' AND l.granted" 200
check "a role that does not own the table: CREATE INDEX through the function fails at once with 42501 while a writer holds the table" \
  "ERROR:  42501: must be owner of table two" \
  "$(err builder -c "SET statement_timeout = '5s'" -c "SELECT * FROM parallel_guarantee.run_with_parallel_guarantee('CREATE INDEX two_by_builder2 ON two (t)', NULL, 4, 4, 1, label => 'builder locked out')")"
check "... and REINDEX INDEX of its index fails at once with 42501 too" \
  "ERROR:  42501: must be owner of index two_t" \
  "$(err builder -c "SET statement_timeout = '5s'" -c "SELECT * FROM parallel_guarantee.run_with_parallel_guarantee('REINDEX INDEX two_t', NULL, 4, 4, 1, label => 'builder locked out')")"
P -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(20)%' AND pid <> pg_backend_pid()" >/dev/null
wait_exit "$HOLDER_PID" 30
check "builder sees its runs in the history, as its own (label role status sqlstate)" \
  "builder locked out builder error 42501,builder locked out builder error 42501,builder not owner builder error 42501,builder own builder target_met -" \
  "$(PR builder -c "SELECT string_agg(label || ' ' || role || ' ' || status || ' ' || coalesce(sqlstate, '-'), ',' ORDER BY label) FROM parallel_guarantee.parallel_guarantee_runs" 2>&1)"

# 5. The history of the guaranteed builds.
check "the partitioned build's run: kind, status, planned, launched, attempts, statement" \
  "guaranteed|target_met|4|4|1|CREATE INDEX pt_t ON pt (t)" \
  "$(P -c "SELECT kind, status, workers_planned, workers_launched, attempts, statement FROM parallel_guarantee_runs WHERE label = 'partitioned'" 2>&1)"
check "the builds' attempts are recorded with 4 planned and 4 launched (label attempt:outcome:planned:launched)" \
  "builder own 1:target met:4:4|partitioned 1:target met:4:4|reindex two 1:target met:4:4" \
  "$(P -c "SELECT string_agg(r.label || ' ' || a.attempt || ':' || a.outcome || ':' || a.workers_planned || ':' || a.workers_launched, '|' ORDER BY r.label)
             FROM parallel_guarantee_attempts a JOIN parallel_guarantee_runs r USING (run_id)
            WHERE r.label IN ('partitioned', 'reindex two', 'builder own')" 2>&1)"

# 6. The session's max_parallel_workers below the target: one attempt, judged as the last.
OUT=$(pc_psql -d "$DB" -tA -q -c "SET max_parallel_workers = 2" \
        -c "SELECT status || '|' || workers_planned || '|' || workers_launched || '|' || attempts
              FROM run_with_parallel_guarantee('CREATE INDEX ON deg (v)', \$c\$INSERT INTO cleanup_log (what) VALUES ('deg')\$c\$, 4, 2, label => 'degraded build')" 2>&1)
NOTE=$(echo "$OUT" | grep -m1 "max_parallel_workers (2) is below target_workers (4).*one attempt" || true)
if [ -n "$NOTE" ]; then ok "a NOTICE says the one attempt is judged as the last (${NOTE#NOTICE:  })"
else not_ok "a NOTICE says the one attempt is judged as the last" "output: $(echo "$OUT" | paste -sd'|')"; fi
check "with max_parallel_workers = 2 and target 4, min 2: degraded, 4 planned, 2 launched, 1 attempt" "degraded|4|2|1" \
  "$(echo "$OUT" | grep -v '^NOTICE' | tail -1)"
check "the history says degraded with 2 launched, its one attempt degraded (status|launched|attempts)" "degraded|2|1:degraded:4:2" \
  "$(P -c "SELECT status || '|' || workers_launched FROM parallel_guarantee_runs WHERE label = 'degraded build'" 2>&1)|$(P -c "$(ATTEMPTS_Q 'degraded build')" 2>&1)"
check "the index exists exactly once, valid, and no cleanup ran (indexes|valid|cleanups)" "1|1|0" \
  "$(P -c "$(INDEXES_Q deg)")|$(P -c "SELECT count(*) FROM pg_index WHERE indrelid = 'deg'::regclass AND indisvalid")|$(P -c "$(CLEANUPS_Q deg)" 2>&1)"

# 7. Abandoned before launching while a hog holds 6 of the 8 workers, retried once it is gone.
if start_hog; then ok "a hog session holds 6 of the 8 parallel workers"
else not_ok "a hog session holds 6 of the 8 parallel workers" "found: $(P -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker'" 2>&1)"; fi
RETRY_OUT=$PC_DIR/retried.out
pc_psql -d "$DB" -tA -q -c "SELECT status || '|' || workers_planned || '|' || workers_launched || '|' || attempts
    FROM run_with_parallel_guarantee('CREATE INDEX ON retried (v)', \$c\$INSERT INTO cleanup_log (what) VALUES ('retried')\$c\$,
                                     4, 4, 3, '5 s', wait_for_slots => false, label => 'retried build')" >"$RETRY_OUT" 2>&1 &
RETRY_PID=$!
if wait_for "waiting to retry" "SELECT state FROM parallel_guarantee_activity WHERE label = 'retried build'" 200; then
  ok "attempt 1 is abandoned and the run waits to retry"
else
  not_ok "attempt 1 is abandoned and the run waits to retry" \
    "found: $(P -c "SELECT state || '|' || attempt FROM parallel_guarantee_activity WHERE label = 'retried build'" 2>&1)"
fi
release_hog
wait_exit "$RETRY_PID" 60
RETRY_PID=
check "attempt 1 said it was abandoned before launching, and attempt 2 met the target (NOTICEs|result)" \
  "1|target_met|4|4|2" \
  "$(grep -c 'attempt 1/3: only 2 of 4 planned workers free (target 4), short of target: abandoned before launching, will retry' "$RETRY_OUT")|$(grep -v '^NOTICE' "$RETRY_OUT" | tail -1)"
check "its attempts: 1 abandoned (2 of 4 free), 2 target met with 4" "1:abandoned:4:2,2:target met:4:4" \
  "$(P -c "$(ATTEMPTS_Q 'retried build')" 2>&1)"
check "the cleanup ran once, and the index exists exactly once (cleanups|indexes)" "1|1" \
  "$(P -c "$(CLEANUPS_Q retried)" 2>&1)|$(P -c "$(INDEXES_Q retried)" 2>&1)"

# 8. Short on the last attempt: the launch goes ahead, the watch sees 2 of 4 and cancels it.
if start_hog; then ok "the hog holds 6 of the 8 parallel workers again"
else not_ok "the hog holds 6 of the 8 parallel workers again" "found: $(P -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker'" 2>&1)"; fi
check "a build that launches 2 of 4 on its last attempt, min 4: 53G01" \
  "ERROR:  53G01: launched 2 of 4 parallel workers, below min_workers 4, after 1 attempt" \
  "$(err postgres -c "SELECT * FROM run_with_parallel_guarantee('CREATE INDEX ON short (v)', \$c\$INSERT INTO cleanup_log (what) VALUES ('short')\$c\$, 4, 4, 1, wait_for_slots => false, label => 'short build')")"
release_hog
check "the short build was rolled back: no index, its attempt below minimum with 2 launched, the cleanup ran once (indexes|attempts|cleanups)" \
  "0|1:below minimum:4:2|1" \
  "$(P -c "$(INDEXES_Q short)" 2>&1)|$(P -c "$(ATTEMPTS_Q 'short build')" 2>&1)|$(P -c "$(CLEANUPS_Q short)" 2>&1)"

# 9. VACUUM: each parallel index pass held to the target.
P -c "DELETE FROM orders WHERE id % 3 = 0" >/dev/null
if start_hog; then ok "VACUUM: the hog holds 6 of the 8 parallel workers"
else not_ok "VACUUM: the hog holds 6 of the 8 parallel workers" "found: $(P -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker'" 2>&1)"; fi
check "VACUUM (PARALLEL 4) while 2 workers are free, no queue, 3 attempts: degraded with 2 on the last (status|launched|attempts)" \
  "degraded|2|3" \
  "$(P -c "SELECT status || '|' || workers_launched || '|' || attempts FROM run_with_parallel_guarantee('VACUUM (PARALLEL 4) orders', NULL, 4, 2, 3, retry_delay => '50 ms', wait_for_slots => false, label => 'vacuum short')" 2>&1)"
check "its attempts: two passes cut short and cancelled, then accepted with 2 (attempt:outcome:planned:launched)" \
  "1:abandoned:4:2,2:abandoned:4:2,3:degraded:4:2" "$(P -c "$(ATTEMPTS_Q 'vacuum short')" 2>&1)"
check "the history keeps each attempt's passes: one pass planned 4, launched 2, each time (attempt:planned:launched)" \
  "1:{4}:{2},2:{4}:{2},3:{4}:{2}" "$(P -c "$(PASSES_Q 'vacuum short')" 2>&1)"
# A later attempt that runs no VACUUM keeps no passes (not the earlier attempt's): attempt 1
# is cut short, its cleanup drops two of the six indexes, and attempt 2's degree check
# refuses the VACUUM (four indexes: at most 3 workers).
P -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
-- Six indexes on distinct values (all above min_parallel_index_scan_size).
CREATE TABLE orders_x WITH (autovacuum_enabled = off) AS SELECT g AS id, g AS a, -g AS b FROM generate_series(1, 100000) g;
CREATE INDEX orders_x_1 ON orders_x (id); CREATE INDEX orders_x_2 ON orders_x (a);
CREATE INDEX orders_x_3 ON orders_x (b); CREATE INDEX orders_x_4 ON orders_x (id, a);
CREATE INDEX orders_x_5 ON orders_x (a, b); CREATE INDEX orders_x_6 ON orders_x (b, id);
DELETE FROM orders_x WHERE id % 2 = 0;
SQL
OUT=$(P -v VERBOSITY=verbose -c "SELECT status FROM run_with_parallel_guarantee('VACUUM (PARALLEL 4) orders_x', 'DROP INDEX IF EXISTS orders_x_5, orders_x_6', 4, 2, 3, retry_delay => '50 ms', wait_for_slots => false, label => 'vacuum refused later')" 2>&1)
check "a VACUUM cut short whose cleanup drops two indexes: its second attempt is refused before it runs (53G03)" \
  "ERROR:  53G03" "$(echo "$OUT" | grep -m1 -E '^ERROR' | cut -d: -f1-2)"
check "its history: attempt 1's pass (planned 4, launched 2), none for attempt 2 (attempt:planned:launched)" \
  "1:{4}:{2},2:none:none" "$(P -c "$(PASSES_Q 'vacuum refused later')" 2>&1)"
P -c "DROP TABLE orders_x" >/dev/null
P -c "DELETE FROM orders WHERE id % 3 = 1" >/dev/null
PGAPPNAME=mt_vacuum_wait pc_psql -d "$DB" -tA -q -c "SET client_min_messages = warning" \
  -c "SELECT status || '|' || coalesce(workers_launched::text, 'none') || '|' || attempts FROM run_with_parallel_guarantee('VACUUM (PARALLEL 4) orders', NULL, 4, 4, 3, label => 'vacuum queued')" \
  >"$PC_DIR/vacuum_wait.out" 2>&1 &
VACUUM_PID=$!
wait_for "waiting for slots" "SELECT state FROM parallel_guarantee_activity WHERE label = 'vacuum queued'" 200
QUEUED=$(P -c "SELECT state FROM parallel_guarantee_activity WHERE label = 'vacuum queued'" 2>&1)
release_hog
wait_exit "$VACUUM_PID" 60
check "the same VACUUM, queued while the hog held the workers, then run with its 4 once it was gone (state seen|status|launched|attempts)" \
  "waiting for slots|target_met|4|1" "$QUEUED|$(cat "$PC_DIR/vacuum_wait.out")"
check "its pass in the history: planned 4, launched 4 (attempt:planned:launched)" \
  "1:{4}:{4}" "$(P -c "$(PASSES_Q 'vacuum queued')" 2>&1)"
check "index builds keep no passes (attempts of builds with pass columns set)" "0" \
  "$(P -c "SELECT count(*) FROM parallel_guarantee_attempts a JOIN parallel_guarantee_runs r USING (run_id) WHERE r.statement NOT LIKE 'VACUUM%' AND a.pass_workers_launched IS NOT NULL" 2>&1)"
check "VACUUM ran: the table's live rows counted (33,333 of 100,000 left)" "33333" \
  "$(P -c "SELECT reltuples::bigint FROM pg_class WHERE relname = 'orders'" 2>&1)"

# 10. Concurrent builds, submitted and followed with parallel_guarantee_status (short
# statements: a waiting session's snapshot would hold the build up).
finished() {  # finished RUN_ID: polls (at most 60 s) until the run is no longer running
  for _ in $(seq 1 1200); do
    [ "$(P -c "SELECT status FROM parallel_guarantee_status($1)" 2>/dev/null)" != running ] && return 0
    sleep 0.05
  done
  return 1
}
check "a call that waits for CREATE INDEX CONCURRENTLY is refused at once (0A000)" \
  "ERROR:  0A000: a concurrent index build cannot run in a call that waits for it" \
  "$(err postgres -c "SELECT * FROM run_with_parallel_guarantee('CREATE INDEX CONCURRENTLY two_c ON two (id)', NULL, 4, 4, 1)")"
RUN=$(P -c "SELECT submit_parallel_guarantee('CREATE INDEX CONCURRENTLY big_c ON big (t)', 'DROP INDEX IF EXISTS big_c', 4, 4, 3, label => 'concurrent build')" 2>&1)
finished "$RUN"
check "CREATE INDEX CONCURRENTLY submitted: target met with 4 of 4, one attempt, the index valid (status|planned|launched|attempts|valid)" \
  "target_met|4|4|1|t" \
  "$(P -c "SELECT status || '|' || workers_planned || '|' || workers_launched || '|' || attempts FROM parallel_guarantee_runs WHERE run_id = $RUN" 2>&1)|$(P -c "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('big_c')" 2>&1)"
RUN=$(P -c "SELECT submit_parallel_guarantee('REINDEX INDEX CONCURRENTLY big_c', NULL, 4, 4, 1, label => 'concurrent reindex')" 2>&1)
finished "$RUN"
check "REINDEX INDEX CONCURRENTLY submitted: target met with 4 of 4, the index valid (status|launched|valid)" \
  "target_met|4|t" \
  "$(P -c "SELECT status || '|' || workers_launched FROM parallel_guarantee_runs WHERE run_id = $RUN" 2>&1)|$(P -c "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('big_c')" 2>&1)"
P -c "DROP INDEX big_c" >/dev/null
RUN=$(PGOPTIONS="-c client_min_messages=warning" pc_psql -d "$DB" -tA -q -c "SET max_parallel_workers = 2" \
  -c "SELECT submit_parallel_guarantee('CREATE INDEX CONCURRENTLY big_c ON big (t)', \$c\$INSERT INTO cleanup_log (what) VALUES ('big_c')\$c\$, 4, 3, 3, label => 'concurrent short')" 2>&1)
finished "$RUN"
check "a concurrent build with 2 of 4 on its last attempt, min 3: failed with 2 launched, the cleanup ran once (status|launched|cleanups)" \
  "failed|2|1" \
  "$(P -c "SELECT status || '|' || workers_launched FROM parallel_guarantee_runs WHERE run_id = $RUN" 2>&1)|$(P -c "$(CLEANUPS_Q big_c)" 2>&1)"
check "... and the INVALID index PostgreSQL leaves is there for a cleanup to drop (name|valid)" \
  "big_c|false" "$(P -c "SELECT c.relname || '|' || i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'big_c'" 2>&1)"
P -c "DROP INDEX big_c" >/dev/null
RUN=$(PGOPTIONS="-c client_min_messages=warning" pc_psql -d "$DB" -tA -q -c "SET max_parallel_workers = 2" \
  -c "SELECT submit_parallel_guarantee('CREATE INDEX CONCURRENTLY big_c ON big (t)', 'DROP INDEX IF EXISTS big_c', 4, 3, 3, label => 'concurrent short cleaned')" 2>&1)
finished "$RUN"
check "with DROP INDEX IF EXISTS as the cleanup, the short concurrent build leaves no index (status|indexes)" \
  "failed|0" \
  "$(P -c "SELECT status FROM parallel_guarantee_runs WHERE run_id = $RUN" 2>&1)|$(P -c "SELECT count(*) FROM pg_class WHERE relname = 'big_c'" 2>&1)"

wait_for "0/0/0" "$LEFT_Q" 200
check "at the end: no run slot, run worker or parallel worker left (slots/workers/parallel)" "0/0/0" "$(P -c "$LEFT_Q" 2>&1)"
