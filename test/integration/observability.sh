#!/usr/bin/env bash
# Seeing the whole server (issue #16), on a private cluster (test/out/observability, port
# $OBS_PORT, default 54381, compute_query_id = on, max_downgrade_entries = 10):
#   1. parallel_guarantee_downgrades counts every parallel launch in the server, not only
#      guaranteed runs, by database, role and query id and by how far short it fell: a session
#      with plenty of workers (not downgraded), one short because a hog holds 6 of the 8
#      workers, one whose own max_parallel_workers is 1, one with 0 (serial); a role sees its
#      own rows, pg_read_all_stats all; the rows survive a clean restart; reset empties them;
#      past the bound the least-used entries are evicted and counted;
#   2. parallel_guarantee_metrics has a row for every documented metric;
#   3. a run waiting in the queue shows the extension's wait event in pg_stat_activity;
#   4. parallel_guarantee.notify_channel: LISTEN gets a JSON payload when a run ends (guaranteed
#      and chunked), and nothing when the setting is off;
#   5. retry_sqlstates: a statement that fails once with 40P01 is retried and succeeds when
#      40P01 is listed, and fails at once when it is not.
# TAP style (data/tap.sh).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
. "$ROOT/test/integration/data/tap.sh"
plan 31
PC_NAME=observability
PC_PORT=${OBS_PORT:-54381}
. "$ROOT/test/integration/data/private_cluster.sh"
P() { local db=$1; shift; PGOPTIONS="-c client_min_messages=warning ${PGOPTIONS_EXTRA:-}" pc_psql -d "$db" -tA -q "$@"; }
HOG_PID=
release_hog() {
  [ -n "$HOG_PID" ] || return 0
  P obs -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'obs_hog' AND backend_type = 'client backend'" >/dev/null
  wait "$HOG_PID" 2>/dev/null
  HOG_PID=
}
tap_on_exit 'release_hog; pc_stop immediate'

pc_setup obs "compute_query_id = on" "parallel_guarantee.max_downgrade_entries = 10" "max_parallel_workers_per_gather = 4"
P postgres -c "CREATE DATABASE obs2" >/dev/null
for db in obs obs2; do
  P "$db" -v ON_ERROR_STOP=1 >/dev/null <<SQL || { not_ok "setup: the databases could not be prepared"; exit 1; }
CREATE EXTENSION parallel_guarantee;
ALTER DATABASE $db SET search_path = "\$user", public, parallel_guarantee;
CREATE TABLE big (id int, pad text) WITH (parallel_workers = 4);
INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 100000) g;
-- One row per page, so that each of the hog's workers sleeps on its own row.
CREATE TABLE hog (id int, pad text) WITH (fillfactor = 10, parallel_workers = 8);
INSERT INTO hog SELECT g, repeat('x', 1500) FROM generate_series(1, 64) g;
VACUUM ANALYZE big;
VACUUM ANALYZE hog;
GRANT SELECT ON big TO PUBLIC;
SQL
done
P obs -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || { not_ok "setup: the roles could not be created"; exit 1; }
CREATE ROLE alice LOGIN;
CREATE ROLE watcher LOGIN IN ROLE pg_read_all_stats;
SQL
for db in obs obs2; do
  P "$db" -c "GRANT USAGE ON SCHEMA parallel_guarantee TO alice, watcher" >/dev/null
done

# A query's id, as compute_query_id gives it (EXPLAIN VERBOSE prints it).
query_id() { P "$1" -c "EXPLAIN (VERBOSE) $2" | sed -n 's/^Query Identifier: //p'; }
Q="SELECT count(*) FROM big"
QID=$(query_id obs "$Q")
[ -n "$QID" ] || not_ok "setup: no query id from EXPLAIN VERBOSE"
# The hog: 6 of the 8 parallel workers, each asleep on its first row until cancelled.
start_hog() {
  PGAPPNAME=obs_hog pc_psql -d obs -q -c "SET statement_timeout = '60s'" -c "SET max_parallel_workers_per_gather = 6" \
    -c "SELECT count(*) FROM hog WHERE pg_sleep(3600 + id * 0) IS NOT NULL" >/dev/null 2>&1 &
  HOG_PID=$!
  local held=0
  for _ in $(seq 1 300); do
    held=$(P obs -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker'")
    [ "${held:-0}" -ge 6 ] && return 0
    sleep 0.05
  done
  return 1
}

# 0. parallel_guarantee.preload_jit (on by default): with jit on, the postmaster has loaded the
#    JIT provider, so that the processes it forks do not each load LLVM.
PM_PID=$(head -1 "$PC_DATA/postmaster.pid")
check "with jit on, the postmaster has the JIT provider loaded (parallel_guarantee.preload_jit)" "on|on|1" \
  "$(P obs -c "SELECT current_setting('jit'), current_setting('parallel_guarantee.preload_jit')")|$(grep -c "/llvmjit\.so" /proc/"$PM_PID"/maps | awk '{print ($1 > 0)}')"

# 1. Downgrade statistics.
check "the reset of the downgrade statistics answers" "t" "$(P obs -c "SELECT parallel_guarantee_downgrades_reset() >= 0")"
P obs -c "$Q" >/dev/null
check "a session with plenty of workers: 1 launch of 4 of 4, not downgraded (obs, postgres, its query id)" \
  "1|4|4|1|0|0|" \
  "$(P obs -c "SELECT launches, workers_planned, workers_launched, not_downgraded, short_25_50 + short_50_75 + serial, worst_shortfall, last_downgrade FROM parallel_guarantee_downgrades WHERE database = 'obs' AND role = 'postgres' AND query_id = $QID")"
if start_hog; then
  ok "a hog session holds 6 of the 8 parallel workers"
  pc_psql -d obs2 -U alice -tA -q -c "$Q" >/dev/null
  # (The query id of the same text differs in obs2: its table has another oid.)
  check "alice's query in obs2 while the hog holds 6: 4 planned, 2 launched, short by 25-50 % (50 % worst)" \
    "1|4|2|0|1|50" \
    "$(P obs -c "SELECT launches, workers_planned, workers_launched, not_downgraded, short_25_50, worst_shortfall FROM parallel_guarantee_downgrades WHERE database = 'obs2' AND role = 'alice' AND query_id = $(query_id obs2 "$Q")")"
  release_hog
else
  not_ok "a hog session holds 6 of the 8 parallel workers"
  not_ok "alice's query in obs2 while the hog holds 6 (no hog)"
  release_hog
fi
P obs -c "SET max_parallel_workers = 1" -c "$Q" >/dev/null
P obs -c "SET max_parallel_workers = 0" -c "$Q" >/dev/null
check "the same query with the session's max_parallel_workers 1, then 0: short by 50-75 %, then serial; worst 100 %" \
  "3|1|1|1|100" \
  "$(P obs -c "SELECT launches, not_downgraded, short_50_75, serial, worst_shortfall FROM parallel_guarantee_downgrades WHERE database = 'obs' AND role = 'postgres' AND query_id = $QID")"
check "last_downgrade is set once a launch fell short" "t" \
  "$(P obs -c "SELECT last_downgrade IS NOT NULL AND last_downgrade >= first_launch FROM parallel_guarantee_downgrades WHERE database = 'obs' AND role = 'postgres' AND query_id = $QID")"
P obs -c "SELECT * FROM run_with_parallel_guarantee('$Q', target_workers => 4, min_workers => 4)" >/dev/null
check "a guaranteed run's launch is counted too (as the run's role, in its database)" "4" \
  "$(P obs -c "SELECT launches FROM parallel_guarantee_downgrades WHERE database = 'obs' AND role = 'postgres' AND query_id = $QID")"
check "alice sees her own rows only" "alice" \
  "$(pc_psql -d obs -U alice -tA -q -c "SELECT string_agg(DISTINCT role, ',') FROM parallel_guarantee.parallel_guarantee_downgrades")"
check "a member of pg_read_all_stats sees every role's rows" "alice,postgres" \
  "$(pc_psql -d obs -U watcher -tA -q -c "SELECT string_agg(DISTINCT role, ',' ORDER BY role) FROM parallel_guarantee.parallel_guarantee_downgrades")"
check "alice may not reset the statistics (42501)" "42501" \
  "$(pc_psql -d obs -U alice -tA -q -v VERBOSITY=sqlstate -c "SELECT parallel_guarantee.parallel_guarantee_downgrades_reset()" 2>&1 | sed -n 's/^ERROR: *//p')"
# (Read without a parallel plan, so that reading does not add a launch of its own.)
LIST="SET max_parallel_workers_per_gather = 0; SELECT string_agg(database || role || coalesce(query_id::text, '-') || launches || not_downgraded || short_25_50 || short_50_75 || serial, ' ' ORDER BY 1) FROM parallel_guarantee_downgrades"
BEFORE=$(P obs -c "$LIST")
pc_stop fast && pc_start
check "after a clean restart the statistics are as they were" "$BEFORE" "$(P obs -c "$LIST")"
check "the reset removes every entry and the view is empty" "t|0" \
  "$(P obs -c "SELECT parallel_guarantee_downgrades_reset() > 0, (SELECT count(*) FROM parallel_guarantee_downgrades)")"
# 15 queries with different query ids: more than the 10 entries allowed.
for i in $(seq 1 15); do
  preds=$(for _ in $(seq 1 "$i"); do printf ' AND id > 0'; done)
  P obs -c "SELECT count(*) FROM big WHERE true$preds" >/dev/null
done
check "past max_downgrade_entries (10) the table stays within its bound and the evictions are counted" "t|10|t" \
  "$(P obs -c "SELECT entries <= max_entries, max_entries, evicted > 0 FROM parallel_guarantee_downgrades_info()")"
check "the most recent query's entry survived the evictions" "1" \
  "$(P obs -c "SELECT count(*) FROM parallel_guarantee_downgrades WHERE query_id = $(query_id obs "SELECT count(*) FROM big WHERE true$preds")")"
check "parallel_guarantee.track_downgrades = off stops the counting" "0" \
  "$(P obs -c "SELECT parallel_guarantee_downgrades_reset()" >/dev/null; P obs -c "SET parallel_guarantee.track_downgrades = off" -c "$Q" >/dev/null; P obs -c "SELECT count(*) FROM parallel_guarantee_downgrades WHERE query_id = $QID")"

# 2. Metrics.
for metric in parallel_guarantee_runs_total parallel_guarantee_runs_in_progress parallel_guarantee_queue_length \
              parallel_guarantee_queue_oldest_wait_seconds parallel_guarantee_attempts_abandoned_total \
              parallel_guarantee_parallel_launches_total parallel_guarantee_parallel_workers_planned_total \
              parallel_guarantee_parallel_workers_launched_total parallel_guarantee_downgrade_entries_evicted_total \
              parallel_guarantee_parallel_workers_busy parallel_guarantee_parallel_workers_max \
              parallel_guarantee_worker_processes_max; do
  echo "$metric"
done > "$PC_DIR/metrics.expected"
P obs -c "SELECT DISTINCT metric FROM parallel_guarantee_metrics ORDER BY 1" > "$PC_DIR/metrics.found"
check "parallel_guarantee_metrics has a row for each of the 12 documented metrics, and no other" \
  "$(sort "$PC_DIR/metrics.expected" | tr '\n' ' ')" "$(tr '\n' ' ' < "$PC_DIR/metrics.found")"
check "every metric row has a help text and a value" "0" \
  "$(P obs -c "SELECT count(*) FROM parallel_guarantee_metrics WHERE help IS NULL OR value IS NULL OR labels IS NULL")"
check "the launches metric has the six buckets" "not_downgraded serial short_1_25 short_25_50 short_50_75 short_75_99" \
  "$(P obs -c "SELECT string_agg(labels->>'bucket', ' ' ORDER BY labels->>'bucket') FROM parallel_guarantee_metrics WHERE metric = 'parallel_guarantee_parallel_launches_total'")"

# The ready query files for the exporters: every query runs and gives at least one sample,
# and together they cover every metric.
for file in sql_exporter.collector.yml postgres_exporter.queries.yml; do
  case $file in
    sql_exporter*) awk '/query: \|/ { getline; sub(/^ +/, ""); print }' "contrib/metrics/$file" > "$PC_DIR/$file.sql" ;;
    *) sed -n 's/^  query: "\(.*\)"$/\1/p' "contrib/metrics/$file" > "$PC_DIR/$file.sql" ;;
  esac
  bad=0 covered=""
  while IFS= read -r query; do
    rows=$(P obs -c "SELECT count(*) FROM ($query) q" 2>&1)
    [ "$rows" -ge 1 ] 2>/dev/null || { bad=$((bad + 1)); echo "#   $file: '$query' gave '$rows'"; }
    covered="$covered $(echo "$query" | sed -n "s/.*WHERE metric = '\([a-z_0-9]*\)'.*/\1/p")"
  done < "$PC_DIR/$file.sql"
  check "contrib/metrics/$file: each of its queries runs and gives samples, and they cover the 12 metrics" "0 $(sort "$PC_DIR/metrics.expected" | tr '\n' ' ')" \
    "$bad $(echo "$covered" | tr ' ' '\n' | grep . | sort -u | tr '\n' ' ')"
done

# 3. The wait event of a queued run.
if start_hog; then
  P obs -c "SELECT * FROM run_with_parallel_guarantee('$Q', target_workers => 4, min_workers => 4, max_wait => '30 s', label => 'queued')" >/dev/null 2>&1 &
  RUN_PID=$!
  seen=
  for _ in $(seq 1 200); do
    seen=$(P obs -c "SELECT s.wait_event_type || '/' || s.wait_event FROM parallel_guarantee_activity a JOIN pg_stat_activity s ON s.pid = a.worker_pid
                      WHERE a.label = 'queued' AND a.state = 'waiting for slots' AND s.wait_event IS NOT NULL")
    [ -n "$seen" ] && break
    sleep 0.05
  done
  case $seen in
    Extension/Extension|Extension/ParallelGuaranteeQueue) ok "a queued run's worker shows the extension's wait event ($seen)" ;;
    *) not_ok "a queued run's worker shows the extension's wait event" "found: '${seen:-nothing}'" ;;
  esac
  release_hog
  wait "$RUN_PID"
  check "the queued run then ran and met its target" "target_met" "$(P obs -c "SELECT status FROM parallel_guarantee_runs WHERE label = 'queued'")"
else
  not_ok "a queued run's worker shows the extension's wait event (no hog)"
  not_ok "the queued run then ran and met its target (no hog)"
  release_hog
fi

# 4. NOTIFY when a run ends.  psql prints a notification after the statement that received it.
payload() { sed -n 's/^Asynchronous notification "runs_done" with payload "\(.*\)" received from server process with PID [0-9]*\.$/\1/p'; }
OUT=$(P obs -c "LISTEN runs_done" -c "SET parallel_guarantee.notify_channel = 'runs_done'" \
        -c "SELECT status FROM run_with_parallel_guarantee('$Q', target_workers => 2, min_workers => 2, label => 'notified')" 2>&1)
PAYLOAD=$(echo "$OUT" | payload)
check "LISTEN gets one notification when a guaranteed run ends" "1" "$(echo "$OUT" | grep -c '^Asynchronous notification "runs_done"')"
check "its payload: run id, kind, label, status, workers, attempts, elapsed" "t|guaranteed|notified|target_met|2|2|1|t" \
  "$(P obs -c "SELECT (p->>'run_id')::bigint = (SELECT run_id FROM parallel_guarantee_runs WHERE label = 'notified'), p->>'kind', p->>'label', p->>'status',
                      p->>'workers_planned', p->>'workers_launched', p->>'attempts', (p->>'elapsed_ms')::float > 0
                 FROM (SELECT '$PAYLOAD'::jsonb AS p) x" 2>&1)"
OUT=$(P obs -c "LISTEN runs_done" -c "SET parallel_guarantee.notify_channel = 'runs_done'" \
        -c "SELECT status FROM run_in_chunks('SELECT id FROM big WHERE id <= 2500', 'UPDATE big SET pad = pad WHERE id = ANY(\$1)', label => 'notified_chunks')" 2>&1)
PAYLOAD=$(echo "$OUT" | payload)
check "a chunked run's end is notified too: kind, status, chunks" "chunked|done|3|3|2500" \
  "$(P obs -c "SELECT p->>'kind', p->>'status', p->>'chunks_total', p->>'chunks_done', p->>'rows' FROM (SELECT '$PAYLOAD'::jsonb AS p) x" 2>&1)"
OUT=$(P obs -c "LISTEN runs_done" -c "SELECT status FROM run_with_parallel_guarantee('$Q', target_workers => 2, min_workers => 2)" 2>&1)
check "with parallel_guarantee.notify_channel unset nothing is sent" "0" "$(echo "$OUT" | grep -c 'Asynchronous notification')"

# 5. retry_sqlstates.  The statement fails with 40P01 until the cleanup has run once.
P obs -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE TABLE ready (x int);
CREATE FUNCTION check_ready() RETURNS int LANGUAGE plpgsql STABLE PARALLEL RESTRICTED AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM ready) THEN
        RAISE EXCEPTION 'deadlock detected (simulated)' USING ERRCODE = '40P01';
    END IF;
    RETURN 1;
END $$;
SQL
check "a statement that deadlocks once is retried and succeeds when 40P01 is listed" "target_met|2" \
  "$(P obs -c "SELECT status, attempts FROM run_with_parallel_guarantee('SELECT count(*), check_ready() FROM big', 'INSERT INTO ready VALUES (1)',
                  target_workers => 2, min_workers => 2, retry_delay => '10 ms', retry_sqlstates => '{40001,40P01}', label => 'retried')" 2>&1)"
check "its first attempt is recorded as a retried statement error" "1 statement error, retried|2 target met" \
  "$(P obs -c "SELECT string_agg(a.attempt || ' ' || a.outcome, '|' ORDER BY a.attempt) FROM parallel_guarantee_attempts a JOIN parallel_guarantee_runs r USING (run_id) WHERE r.label = 'retried'")"
P obs -c "TRUNCATE ready" >/dev/null
check "the same statement fails at once with 40P01 when only 40001 is listed" "40P01" \
  "$(P obs -v VERBOSITY=sqlstate -c "SELECT status FROM run_with_parallel_guarantee('SELECT count(*), check_ready() FROM big', 'INSERT INTO ready VALUES (1)',
                  target_workers => 2, min_workers => 2, retry_delay => '10 ms', retry_sqlstates => '{40001}', label => 'not_retried')" 2>&1 | sed -n 's/^ERROR: *//p')"
check "that run made one attempt and ended in error" "error|1" \
  "$(P obs -c "SELECT r.status, (SELECT count(*) FROM parallel_guarantee_attempts a WHERE a.run_id = r.run_id) FROM parallel_guarantee_runs r WHERE r.label = 'not_retried'")"
