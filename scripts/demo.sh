#!/usr/bin/env bash
# The README's first command: installs what the demo needs (scripts/setup.sh without
# --tests: no JDK or other test-only package), starts a throwaway cluster, and shows
# run_with_parallel_guarantee at work on generated data.  Leaves the cluster running.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DB=pg_guarantee_demo

bash scripts/setup.sh
bash scripts/cluster.sh start
psql_() { bash scripts/cluster.sh psql -v ON_ERROR_STOP=1 -q "$@"; }

echo
echo "== Creating database $DB with 2,000,000 generated sales rows =="
PGOPTIONS="-c client_min_messages=warning" psql_ -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
psql_ -d "$DB" <<'SQL'
CREATE EXTENSION parallel_guarantee;   -- its objects go into the schema parallel_guarantee
-- The README's recommended setting: the extension's schema on the search_path (new sessions).
ALTER DATABASE pg_guarantee_demo SET search_path = "$user", public, parallel_guarantee;
CREATE TABLE sales (id bigint, region int, amount numeric) WITH (parallel_workers = 4);
INSERT INTO sales SELECT g, g % 50, (g % 997) * 1.5 FROM generate_series(1, 2000000) g;
-- A table to keep parallel workers busy from another session (one row per page).
CREATE TABLE hog (id int, pad text) WITH (fillfactor = 10, parallel_workers = 8);
INSERT INTO hog SELECT g, repeat('x', 1500) FROM generate_series(1, 64) g;
VACUUM ANALYZE sales;
VACUUM ANALYZE hog;
SQL

echo
echo "== 1. The pool is free: the statement gets its 4 workers on the first attempt =="
psql_ -d "$DB" <<'SQL'
\x on
SELECT * FROM run_with_parallel_guarantee(
    $$CREATE TABLE tmp_sales AS SELECT region, sum(amount) AS total FROM sales GROUP BY region$$,
    cleanup        => $$DROP TABLE IF EXISTS tmp_sales$$,
    target_workers => 4,
    min_workers    => 2,
    max_attempts   => 5);
SQL

echo
# Another session keeps 6 of the 8 parallel workers busy for 1.5 seconds.
start_hog() {
  bash scripts/cluster.sh psql -d "$DB" -q -c "SET statement_timeout = '1500ms'" \
    -c "SET parallel_setup_cost = 0" -c "SET parallel_tuple_cost = 0" \
    -c "SET min_parallel_table_scan_size = 0" -c "SET max_parallel_workers_per_gather = 6" \
    -c "SELECT count(*) FROM hog WHERE pg_sleep(3600 + id*0) IS NOT NULL" >/dev/null 2>&1 &
  hog=$!
  # Poll until the hog's workers are running (bounded).
  for _ in $(seq 1 200); do
    n=$(psql_ -d "$DB" -tA -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker'")
    [ "$n" -ge 6 ] && break
    sleep 0.01
  done
  echo "   parallel workers busy in the other session: $n of 8"
}

echo "== 2. Another session holds 6 of the 8 parallel workers for 1.5 seconds =="
echo "   By default the run waits in the queue until 4 workers are free, then starts:"
echo "   no attempt is wasted."
start_hog
psql_ -d "$DB" <<'SQL'
\x on
SELECT * FROM run_with_parallel_guarantee(
    $$CREATE TABLE tmp_sales2 AS SELECT region, sum(amount) AS total FROM sales GROUP BY region$$,
    cleanup        => $$DROP TABLE IF EXISTS tmp_sales2$$,
    target_workers => 4,
    min_workers    => 2);
SQL
wait $hog 2>/dev/null || true

echo
echo "== 3. The same the client-side retry loop's way (wait_for_slots => false): short attempts are"
echo "   abandoned within milliseconds and retried after retry_delay until the workers are free =="
start_hog
psql_ -d "$DB" <<'SQL'
\x on
SELECT * FROM run_with_parallel_guarantee(
    $$CREATE TABLE tmp_sales3 AS SELECT region, sum(amount) AS total FROM sales GROUP BY region$$,
    cleanup        => $$DROP TABLE IF EXISTS tmp_sales3$$,
    target_workers => 4,
    min_workers    => 2,
    max_attempts   => 20,
    retry_delay    => '250 ms',
    wait_for_slots => false);
SQL
wait $hog 2>/dev/null || true

echo
echo "== 4. A target the server can never give fails at once, with a hint =="
psql_ -d "$DB" -c "SELECT * FROM run_with_parallel_guarantee('SELECT count(*) FROM sales', target_workers => 12)" 2>&1 || true

echo
# The commands below work as printed: they carry the port (and PG_BIN) this cluster uses.
CLUSTER=$(bash scripts/cluster.sh command)
echo "The cluster is still running. Connect with:"
echo "    $CLUSTER psql -d $DB"
echo "  (or: psql -h $ROOT/.cluster -p $(bash scripts/cluster.sh port) -U postgres $DB)"
echo "Stop it with:"
echo "    $CLUSTER stop"
