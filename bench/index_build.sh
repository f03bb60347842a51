#!/usr/bin/env bash
# Index builds through run_with_parallel_guarantee, on a private cluster:
#  1. the overhead: a btree build on a text column at 4 workers, CREATE INDEX sent directly
#     (SET max_parallel_maintenance_workers = 4) vs the same through
#     run_with_parallel_guarantee(target_workers => 4, min_workers => 4), rounds alternated
#     (direct, via, direct, via, ...), the index dropped and a CHECKPOINT before each build;
#     medians and the ratio via/direct (target <= 1.02);
#  2. the cost of an abandoned short launch: SET max_parallel_workers = 2, target 4, min 3,
#     max_attempts 1 (2 of 4 launched: cancelled, 53G01), on two table sizes; the wall time
#     of the call, the 53G01 DETAIL's "after X ms" and the attempt's duration from
#     parallel_guarantee_attempts (target: under 50 ms, whatever the table size), then a check
#     that no index and no parallel worker was left behind.
#   bash bench/index_build.sh
# Knobs: BENCH_ROWS (rows of t_big, default 5,000,000), BENCH_SMALL_ROWS (rows of t_small,
# the second size of 2, default 1,000,000), BENCH_ROUNDS (rounds per side and per size,
# default 5), BENCH_PORT (default 54393).  Raw psql output and the server log in
# bench/out/index_build/.
# shellcheck disable=SC2028  # the echo'ed backslashes are psql meta-commands, meant literally
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ROWS=${BENCH_ROWS:-5000000}
SMALL_ROWS=${BENCH_SMALL_ROWS:-1000000}
ROUNDS=${BENCH_ROUNDS:-5}
OUT=$ROOT/bench/out/index_build
# shellcheck disable=SC2034  # read by private_cluster.sh
PC_NAME=bench_index_build
PC_PORT=${BENCH_PORT:-54393}
# shellcheck source=test/integration/data/private_cluster.sh
. "$ROOT/test/integration/data/private_cluster.sh"
mkdir -p "$OUT"
rm -f "$OUT"/*.out "$OUT"/*.err "$OUT"/server.log
START_TS=$(date +%s)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
trap 'pc_stop fast; cp -f "$PC_LOG" "$OUT/server.log" 2>/dev/null || true' EXIT

# The cluster.  maintenance_work_mem: 1 GB keeps 5 participants above the 32 MB each that
# plan_create_index_workers asks for; max_wal_size: no checkpoint forced during a build.
pc_init "jit = off" "max_worker_processes = 16" "max_parallel_workers = 8" \
        "shared_buffers = '512MB'" "maintenance_work_mem = '1GB'" "max_wal_size = '8GB'" \
  || { echo "bench: the private cluster did not start" >&2; exit 1; }
q() { pc_psql -d bench -v ON_ERROR_STOP=1 -qAtc "$1"; }
# A generated psql script (stdin) as one session; statement errors are expected and kept in
# the log, a lost connection (psql exit status 2) makes the figures meaningless.
session() {  # log-prefix
  local rc=0
  pc_psql -d bench -qAt >"$1.out" 2>"$1.err" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "bench: the psql session for $(basename "$1") failed (exit $rc); last lines of $1.err:" >&2
    tail -5 "$1.err" >&2
    exit 1
  fi
}

echo "bench: creating t_big ($ROWS rows) and t_small ($SMALL_ROWS rows) ..." >&2
pc_psql -d postgres -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE bench"
pc_psql -d bench -q -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION parallel_guarantee;
CREATE TABLE t_big (id int, h text) WITH (parallel_workers = 4);
INSERT INTO t_big SELECT g, md5(g::text) FROM generate_series(1, $ROWS) g;
CREATE TABLE t_small (id int, h text) WITH (parallel_workers = 4);
INSERT INTO t_small SELECT g, md5(g::text) FROM generate_series(1, $SMALL_ROWS) g;
VACUUM ANALYZE t_big;
VACUUM ANALYZE t_small;
-- Parallel workers and parallel_guarantee workers still alive: counted at once, then polled
-- (pg_stat_clear_snapshot, 10 ms steps) for at most 2 s.
CREATE FUNCTION ib_leftovers(OUT at_once int, OUT after_poll int, OUT waited_ms numeric)
LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
  SELECT count(*) INTO at_once FROM pg_stat_activity
   WHERE backend_type IN ('parallel worker', 'parallel_guarantee worker');
  after_poll := at_once;
  WHILE after_poll > 0 AND clock_timestamp() - t0 < interval '2 seconds' LOOP
    PERFORM pg_sleep(0.01);
    PERFORM pg_stat_clear_snapshot();
    SELECT count(*) INTO after_poll FROM pg_stat_activity
     WHERE backend_type IN ('parallel worker', 'parallel_guarantee worker');
  END LOOP;
  waited_ms := round((extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric, 1);
END \$\$;
SQL
BIG_SIZE=$(q "SELECT pg_size_pretty(pg_relation_size('t_big'))")
SMALL_SIZE=$(q "SELECT pg_size_pretty(pg_relation_size('t_small'))")

# ---------------------------------------------------------------- helpers
. "$ROOT/bench/lib.sh"
# Parallel workers that began an index sort between each "ib-mark <tag>" line of the server
# log and the next mark (trace_sort: every participant logs "begin index sort" once).
workers_per_mark() {  # tag
  awk -v tag="$1" '
    / LOG:  ib-mark / { if (armed) print n; armed = ($NF == tag); n = 0; next }
    armed && / parallel worker LOG:  begin index sort/ { n++ }
    END { if (armed) print n }' "$PC_LOG"
}
RESULT_COLS="status, workers_planned, workers_launched, attempts, round((extract(epoch FROM elapsed) * 1000)::numeric, 1)"
mark() { echo "DO \$\$BEGIN RAISE LOG 'ib-mark %', '$1'; END\$\$;"; }

# ---------------------------------------------------------------- 1. overhead
echo "bench: 1. CREATE INDEX on t_big (h), direct vs via the function, $ROUNDS rounds each ..." >&2
BUILD="CREATE INDEX t_big_h ON t_big (h)"
DROP="DROP INDEX IF EXISTS t_big_h"
via_build() {  # tag
  echo "SELECT '$1', $RESULT_COLS FROM parallel_guarantee.run_with_parallel_guarantee('$BUILD', '$DROP', target_workers => 4, min_workers => 4, max_attempts => 3);"
}
LOG1=$OUT/1_overhead
{
  # Both sides: the same session settings.  trace_sort (inherited by the guarantee worker and
  # by every parallel worker) makes each participant log "begin index sort": the count of
  # parallel workers per build, read from the server log, on both sides alike.
  echo "SET max_parallel_maintenance_workers = 4;"
  echo "SET trace_sort = on;"
  echo "$DROP;"
  # One untimed build each, to warm the caches.
  echo "$BUILD;"; echo "$DROP;"
  via_build W; echo "$DROP;"
  echo "\\timing on"
  for ((i = 1; i <= ROUNDS; i++)); do
    echo "$DROP;"; echo "CHECKPOINT;"; mark "A$i"
    echo "\\echo @@A"; echo "$BUILD;"
    echo "$DROP;"; echo "CHECKPOINT;"; mark "B$i"
    echo "\\echo @@B"; via_build B
  done
  echo "$DROP;"; mark end1
} | session "$LOG1"
A_MED=$(times_after "$LOG1.out" A | median)
B_MED=$(times_after "$LOG1.out" B | median)
A_N=$(times_after "$LOG1.out" A | count)
B_N=$(times_after "$LOG1.out" B | count)
A_SPREAD=$(times_after "$LOG1.out" A | spread)
B_SPREAD=$(times_after "$LOG1.out" B | spread)
A_EACH=$(times_after "$LOG1.out" A | awk '{printf "%s%.0f", (NR > 1 ? " " : ""), $1}')
B_EACH=$(times_after "$LOG1.out" B | awk '{printf "%s%.0f", (NR > 1 ? " " : ""), $1}')
PAIRED=$(paste -d' ' <(times_after "$LOG1.out" A) <(times_after "$LOG1.out" B) | awk 'NF == 2 {print $2 - $1}' | median)
RATIO=$(awk -v a="$A_MED" -v b="$B_MED" 'BEGIN {if (a+0 > 0 && b+0 > 0) printf "%.3f", b / a; else print "n/a"}')
RATIO_OK=$(awk -v r="$RATIO" 'BEGIN {print (r == "n/a") ? "no figure" : (r <= 1.02) ? "met" : "NOT met"}')
B_OK=$(rows_of "$LOG1.out" B | awk -F'|' '$1 == "target_met" && $3 == 4' | count)
B_ELAPSED=$(rows_of "$LOG1.out" B | awk -F'|' '{print $5}' | median)
B_ROWS=$(rows_of "$LOG1.out" B | awk -F'|' '{print $1 " " $3 "/" $2 " in " $4}' | sort | uniq -c | sed -E 's/^ *([0-9]+) /\1x /' | paste -sd, -)
A_WORKERS=""; B_WORKERS=""
for ((i = 1; i <= ROUNDS; i++)); do
  A_WORKERS+="$(workers_per_mark "A$i") "; B_WORKERS+="$(workers_per_mark "B$i") "
done
A_WORKERS=${A_WORKERS% }; B_WORKERS=${B_WORKERS% }
A_FULL=$(printf '%s\n' "$A_WORKERS" | tr ' ' '\n' | awk '$1 == 4' | count)
B_FULL=$(printf '%s\n' "$B_WORKERS" | tr ' ' '\n' | awk '$1 == 4' | count)

# ---------------------------------------------------------------- 2. abandoned attempts
echo "bench: 2. abandoned short launches (2 of 4), $ROUNDS per table size ..." >&2
LOG2=$OUT/2_abandoned
SIZES="small big"
{
  echo "SET max_parallel_maintenance_workers = 4;"
  echo "DROP INDEX IF EXISTS t_small_h;"; echo "DROP INDEX IF EXISTS t_big_h;"
  echo "\\timing on"
  # The full build of each size through the function, the pool free: the work abandoned.
  for s in $SIZES; do
    echo "CHECKPOINT;"
    echo "\\echo @@F_$s"
    echo "SELECT 'F_$s', $RESULT_COLS FROM parallel_guarantee.run_with_parallel_guarantee('CREATE INDEX t_${s}_h ON t_$s (h)', 'DROP INDEX IF EXISTS t_${s}_h', target_workers => 4, min_workers => 4, max_attempts => 3);"
    echo "DROP INDEX IF EXISTS t_${s}_h;"
  done
  # A deterministic shortage: 2 parallel workers for this session and the guarantee worker,
  # which inherits it: 2 of 4 launched, below min_workers 3 on the only attempt.
  echo "SET max_parallel_workers = 2;"
  for ((i = 1; i <= ROUNDS; i++)); do
    for s in $SIZES; do
      tag="X_$s"
      echo "CHECKPOINT;"
      echo "\\echo @@$tag"; echo "\\warn @@$tag"
      echo "SELECT '$tag', $RESULT_COLS FROM parallel_guarantee.run_with_parallel_guarantee('CREATE INDEX t_${s}_h ON t_$s (h)', 'DROP INDEX IF EXISTS t_${s}_h', target_workers => 4, min_workers => 3, max_attempts => 1, label => 'ib-$s-$i');"
      echo "\\echo S_$tag|:SQLSTATE"
      # The attempt as the run's worker recorded it, then what was left behind.
      echo "SELECT 'H_$tag', round((extract(epoch FROM a.duration) * 1000)::numeric, 1), a.workers_planned, a.workers_launched, a.outcome
              FROM parallel_guarantee.parallel_guarantee_attempts a JOIN parallel_guarantee.parallel_guarantee_runs r USING (run_id)
             WHERE r.label = 'ib-$s-$i';"
      echo "SELECT 'L_$tag', at_once, after_poll, waited_ms, (SELECT count(*) FROM pg_index WHERE indrelid = 't_$s'::regclass) FROM ib_leftovers();"
    done
  done
} | session "$LOG2"

# ---------------------------------------------------------------- table
W=$(( $(date +%s) - START_TS ))
CPU=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^model name[[:space:]]*:[[:space:]]*//')
PGVER=$(q "SELECT version()")
line() { printf '%*s\n' 100 '' | tr ' ' '-'; }
echo
echo "Index builds through run_with_parallel_guarantee — $(date -u '+%Y-%m-%d %H:%M UTC')"
line
echo "machine     nproc=$(nproc), CPU: $CPU"
echo "postgres    $PGVER"
echo "cluster     private, port $PC_PORT: jit=off, max_worker_processes=16, max_parallel_workers=8, shared_buffers=512MB, maintenance_work_mem=1GB"
echo "data        t_big: $ROWS rows ($BIG_SIZE), t_small: $SMALL_ROWS rows ($SMALL_SIZE); (id int, h text = md5), parallel_workers=4"
echo "load        loadavg (1/5/15 min) before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
if awk -v l="${LOAD_BEFORE%% *}" -v n="$(nproc)" 'BEGIN {exit !(l > n / 2)}'; then
  echo "WARNING     the machine was busy when the run started: the timings below are noisy"
fi
line
echo "1. $BUILD at 4 workers: one psql session, \\timing, direct/via alternated, index dropped and CHECKPOINT before each"
echo "   direct: SET max_parallel_maintenance_workers = 4; via: run_with_parallel_guarantee(target_workers => 4, min_workers => 4, max_attempts => 3)"
echo
printf '| %-30s | %-16s | %-16s | %-24s |\n' "measure" "direct" "via the function" "via / direct"
printf '|%s|%s|%s|%s|\n' "--------------------------------" "------------------" "------------------" "--------------------------"
printf '| %-30s | %13s ms | %13s ms | %-24s |\n' "build time, median ($A_N+$B_N)" "$A_MED" "$B_MED" "$RATIO (<= 1.02: $RATIO_OK)"
printf '| %-30s | %16s | %16s | %21s ms |\n' "min..max, ms" "$A_SPREAD" "$B_SPREAD" "$PAIRED"
printf '| %-30s | %-16s | %-16s | %-24s |\n' "each round, ms" "$A_EACH" "$B_EACH" ""
printf '| %-30s | %-16s | %-16s | %-24s |\n' "parallel workers (server log)" "$A_WORKERS" "$B_WORKERS" ""
echo
echo "   via: $B_OK of $B_N calls target_met with workers_launched = 4 ($B_ROWS); the function's own elapsed, median: $B_ELAPSED ms"
echo "   parallel workers that began an index sort (trace_sort, both sides): 4 in $A_FULL of $A_N direct builds, in $B_FULL of $B_N via the function"
echo "   the last column of min..max: median of the paired differences (via - direct, round by round)"
line
echo "2. Cost of an abandoned short launch: SET max_parallel_workers = 2; run_with_parallel_guarantee(target_workers => 4,"
echo "   min_workers => 3, max_attempts => 1): launches 2 of 4, cancelled, 53G01; $ROUNDS calls per table, medians (max)"
echo
printf '| %-22s | %-11s | %-11s | %-18s | %-18s | %-7s | %-20s | %-13s |\n' \
  "table" "full build" "call wall" "53G01 DETAIL" "attempt (history)" "53G01" "launched, outcome" "left: idx/wkr"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|\n' "------------------------" "-------------" "-------------" "--------------------" \
  "--------------------" "---------" "----------------------" "---------------"
for s in $SIZES; do
  tag="X_$s"
  [ "$s" = big ] && label="t_big, $ROWS rows" || label="t_small, $SMALL_ROWS rows"
  full=$(times_after "$LOG2.out" "F_$s" | median)
  wall=$(times_after "$LOG2.out" "$tag" | median)
  det=$(detail_ms_after "$LOG2.err" "$tag" | median)
  detmax=$(detail_ms_after "$LOG2.err" "$tag" | maxof)
  hist=$(rows_of "$LOG2.out" "H_$tag" | awk -F'|' '{print $1}' | median)
  histmax=$(rows_of "$LOG2.out" "H_$tag" | awk -F'|' '{print $1}' | maxof)
  n53=$(rows_of "$LOG2.out" "S_$tag" | awk '$1 == "53G01"' | count)
  launched=$(rows_of "$LOG2.out" "H_$tag" | awk -F'|' '{print $3 "/" $2 " " $4}' | sort -u | paste -sd, -)
  idx=$(rows_of "$LOG2.out" "L_$tag" | awk -F'|' '{s += $4} END {print s+0}')
  wkr=$(rows_of "$LOG2.out" "L_$tag" | awk -F'|' '{s += $1} END {print s+0}')
  printf '| %-22s | %8s ms | %8s ms | %6s (%6s) ms | %6s (%6s) ms | %3s/%-3s | %-20s | %6s/%-6s |\n' \
    "$label" "$full" "$wall" "$det" "$detmax" "$hist" "$histmax" "$n53" "$ROUNDS" "$launched" "$idx" "$wkr"
done
echo
echo "   target: under 50 ms from launch to workers gone, whatever the table size"
echo "   full build = one call through the function with the pool free (4 workers): the work the abandoned attempt saves"
echo "   call wall = psql \\timing of the failing call (adds the guarantee worker's start, its planning and the error's return)"
echo "   53G01 DETAIL = 'after X ms' (attempt start -> rolled back, its parallel workers exited);"
echo "   attempt (history) = parallel_guarantee_attempts.duration of the same attempt"
echo "   left: indexes on the table after the call / parallel and parallel_guarantee workers alive right after the error"
for s in $SIZES; do
  polled=$(rows_of "$LOG2.out" "L_X_$s" | awk -F'|' '{s += $2} END {print s+0}')
  longest=$(rows_of "$LOG2.out" "L_X_$s" | awk -F'|' '{print $3}' | maxof)
  echo "   t_$s: workers still alive after a poll of at most 2 s: $polled (longest poll $longest ms)"
done
# What the server log shows of the abandoned attempts' parallel workers (a worker cancelled
# before it attached reports "could not map dynamic shared memory segment", one terminated
# by its leader's rollback "terminating background worker ... due to administrator command").
WORKER_MSGS=$(awk '/ LOG:  ib-mark end1$/ {f = 1; next} f && / parallel worker (ERROR|FATAL): / {sub(/.* parallel worker /, ""); print}' "$PC_LOG" \
  | sort | uniq -c | sed -E 's/^ *([0-9]+) /\1x /' | paste -sd';' - | sed 's/;/; /g')
echo "   server log, the abandoned attempts' parallel workers: ${WORKER_MSGS:-nothing}"
line
echo "raw output: bench/out/index_build/{1_overhead,2_abandoned}.{out,err} and server.log; total bench time ${W} s"
