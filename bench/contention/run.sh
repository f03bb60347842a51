#!/usr/bin/env bash
# Contention benchmark for parallel_guarantee: one command.
#   bash bench/contention/run.sh
# Replays seeded contention traces (sessions that hold parallel workers for a while) against
# the seed's client-side retry loop (bench/contention/SeedLoop.java) and against
# run_with_parallel_guarantee, then runs 4 guaranteed calls at once.  Prints every figure next
# to its target; never fails on a timing.  See bench/README.md.
#
# Starts the throwaway cluster if needed, (re)creates the database pg_guarantee_contention,
# builds the Java programs into bench/out/contention/classes, and writes the printed report
# and a per-attempt log to bench/out/contention/.
# Knobs (environment): CONTENTION_ROWS (rows in bench_big, default 24,000,000: the statement
# then takes about 1.3 s at 4 workers on a quiet 2-core machine; keep it well above
# 1 s: the seed checks after 1 s and counts 0 workers for a statement that has finished),
# CONTENTION_SEED (default 20251122), CONTENTION_TRACES (default 8, at least 8),
# CONTENTION_LONG (traces with a 5-8 or 8.5-11.5 s shortage, default 2), PG_PORT (default 54329).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
DB=pg_guarantee_contention
OUT=$ROOT/bench/out/contention
JAR=${PGJDBC_JAR:-/usr/share/java/postgresql.jar}
ROWS=${CONTENTION_ROWS:-24000000}
PORT=${PG_PORT:-54329}
START_TS=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

[ -r "$JAR" ] || { echo "bench: the JDBC driver $JAR is missing (apt-get install libpostgresql-jdbc-java)" >&2; exit 2; }
command -v javac >/dev/null || { echo "bench: javac is missing (apt-get install openjdk-17-jdk-headless)" >&2; exit 2; }
mkdir -p "$OUT"

bash scripts/cluster.sh start >&2
psql_() { bash scripts/cluster.sh psql "$@"; }
q() { psql_ -d "$DB" -v ON_ERROR_STOP=1 -qAtc "$1"; }

# ---------------------------------------------------------------- build
rm -rf "$OUT/classes"
mkdir -p "$OUT/classes"
javac -nowarn -d "$OUT/classes" -cp "$JAR" bench/contention/SeedLoop.java bench/contention/ContentionBench.java

# ---------------------------------------------------------------- data
echo "bench: creating $DB with $ROWS rows in bench_big ..." >&2
PGOPTIONS="-c client_min_messages=warning" psql_ -d postgres -v ON_ERROR_STOP=1 -q \
  -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
psql_ -d "$DB" -v ON_ERROR_STOP=1 -q <<SQL
CREATE EXTENSION parallel_guarantee;
-- The README's way: the extension's schema on the database's search_path.
ALTER DATABASE $DB SET search_path = "\$user", public, parallel_guarantee;
-- The statement's table: 4 workers planned.  The planner cannot estimate the groups of
-- k % 1000 from k alone (it would assume one per row and plan no partial aggregate): an
-- expression statistic tells it there are 1000.
CREATE TABLE bench_big (k bigint, v bigint) WITH (parallel_workers = 4);
INSERT INTO bench_big SELECT i, i % 997 FROM generate_series(1, $ROWS) i;
CREATE STATISTICS bench_big_g ON (k % 1000) FROM bench_big;
VACUUM ANALYZE bench_big;
-- The hogs' table: one row per page, so that every worker gets a page and sleeps on it.
CREATE TABLE hog(id int, pad text) WITH (fillfactor=10, parallel_workers=8);
INSERT INTO hog SELECT g, repeat('x',1500) FROM generate_series(1,64) g;
VACUUM ANALYZE hog;
SQL
BIG_SIZE=$(q "SELECT pg_size_pretty(pg_relation_size('bench_big'))")
HOG_PAGES=$(q "SELECT pg_relation_size('hog') / current_setting('block_size')::int")

# ---------------------------------------------------------------- header
CPU=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^model name[[:space:]]*:[[:space:]]*//')
line() { printf '%*s\n' 104 '' | tr ' ' '-'; }
echo
echo "parallel_guarantee contention benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
line
echo "machine     nproc=$(nproc), CPU: $CPU"
echo "postgres    $(q 'SELECT version()')"
echo "extension   parallel_guarantee $(q "SELECT extversion FROM pg_extension WHERE extname = 'parallel_guarantee'")"
echo "cluster     max_parallel_workers=$(q 'SHOW max_parallel_workers'), max_worker_processes=$(q 'SHOW max_worker_processes'), reserve_slots=$(q 'SHOW parallel_guarantee.reserve_slots'); parallel workers busy elsewhere at start: $(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker'")"
echo "load        loadavg (1/5/15 min) before the run: $LOAD_START"
if awk -v l="${LOAD_START%% *}" -v n="$(nproc)" 'BEGIN {exit !(l > n / 2)}'; then
  echo "WARNING     the machine was busy when the run started: the timings below are noisy"
fi
echo "data        bench_big: $ROWS rows ($BIG_SIZE), parallel_workers=4;  hog: 64 rows on $HOG_PAGES pages, parallel_workers=8"

# ---------------------------------------------------------------- measure
rc=0
java -cp "$OUT/classes:$JAR" ContentionBench "jdbc:postgresql://127.0.0.1:$PORT/$DB" "$OUT/detail.log" \
  | tee "$OUT/report.txt" || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "bench: the Java driver stopped (exit $rc) before printing every figure; see $OUT/detail.log" >&2
  exit 1
fi
line
echo "per-attempt log: bench/out/contention/detail.log;  total bench time $(( $(date +%s) - START_TS )) s"
