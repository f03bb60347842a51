#!/usr/bin/env bash
# Benchmarks for parallel_guarantee: one command, prints its figures next to the baseline.
#   bash bench/run.sh
# Starts the throwaway cluster if needed, (re)creates the database pg_guarantee_bench,
# generates data, measures, and prints one table.  Raw psql logs go to bench/out/.
# Knobs (environment): BENCH_RUNS (default 10, at least 10), BENCH_ROWS (rows in b_big,
# default 7,500,000: CTAS at 4 workers takes about 1 s on a 2-core AMD EPYC).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DB=pg_guarantee_bench
OUT=$ROOT/bench/out
RUNS=${BENCH_RUNS:-10}
ROWS=${BENCH_ROWS:-7500000}
CTAS_RUNS=$((RUNS * 2))    # the 2 % target is small next to run-to-run noise: take more samples
SMALL_RUNS=$((RUNS * 3))   # the trivial statement is cheap: take more samples
FULL_RUNS=3                # full-degree runs of the long statements (several seconds each)
[ "$RUNS" -ge 10 ] || { echo "bench: BENCH_RUNS must be at least 10" >&2; exit 2; }
mkdir -p "$OUT"
START_TS=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

bash scripts/cluster.sh start >&2
psql_() { bash scripts/cluster.sh psql "$@"; }
q() { psql_ -d "$DB" -v ON_ERROR_STOP=1 -qAtc "$1"; }
# Run a generated psql script (stdin) as one session; statement errors are expected and kept
# in the log, but a lost connection (psql exit status 2, e.g. the cluster was restarted by
# someone else) makes the figures meaningless: say so and stop.
session() {  # log-prefix
  local rc=0
  psql_ -d "$DB" -qAt >"$1.out" 2>"$1.err" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "bench: the psql session for $(basename "$1") failed (exit $rc); last lines of $1.err:" >&2
    tail -5 "$1.err" >&2
    echo "bench: no figures printed; was the cluster restarted during the run? Run bench/run.sh again." >&2
    exit 1
  fi
}

# ---------------------------------------------------------------- helpers
. "$ROOT/bench/lib.sh"

# ---------------------------------------------------------------- machine
CPU=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^model name[[:space:]]*:[[:space:]]*//')
NPROC=$(nproc)
PGVER=$(psql_ -d postgres -qAtc "SELECT version()")

# ---------------------------------------------------------------- data
echo "bench: creating $DB with $ROWS rows in b_big ..." >&2
PGOPTIONS="-c client_min_messages=warning" psql_ -d postgres -v ON_ERROR_STOP=1 -q \
  -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
psql_ -d "$DB" -v ON_ERROR_STOP=1 -q <<SQL
CREATE EXTENSION parallel_guarantee;
-- The README's way: the extension's schema on the database's search_path.
ALTER DATABASE $DB SET search_path = "\$user", public, parallel_guarantee;
CREATE TABLE b_big (id bigint, g int, v bigint) WITH (parallel_workers = 4);
INSERT INTO b_big SELECT i, i % 1000, i % 997 FROM generate_series(1, $ROWS) i;
CREATE TABLE b_small (id int, v int) WITH (parallel_workers = 4);
INSERT INTO b_small SELECT g, g FROM generate_series(1, 1000) g;
VACUUM ANALYZE b_big;
VACUUM ANALYZE b_small;
-- Parallel workers and parallel_guarantee workers still alive in this database: counted at
-- once, then polled (pg_stat_clear_snapshot, 10 ms steps) for at most 2 s.
CREATE FUNCTION b_leftovers(OUT at_once int, OUT after_poll int, OUT waited_ms numeric)
LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
  SELECT count(*) INTO at_once FROM pg_stat_activity
   WHERE datname = current_database()
     AND backend_type IN ('parallel worker', 'parallel_guarantee worker');
  after_poll := at_once;
  WHILE after_poll > 0 AND clock_timestamp() - t0 < interval '2 seconds' LOOP
    PERFORM pg_sleep(0.01);
    PERFORM pg_stat_clear_snapshot();
    SELECT count(*) INTO after_poll FROM pg_stat_activity
     WHERE datname = current_database()
       AND backend_type IN ('parallel worker', 'parallel_guarantee worker');
  END LOOP;
  waited_ms := round((extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric, 1);
END \$\$;
SQL
BIG_SIZE=$(q "SELECT pg_size_pretty(pg_relation_size('b_big'))")
BUSY_AT_START=$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker'")

# Statements.  CTAS for 1a; S1/S2 for 2: the same aggregate over b_big appended 3 and 6 times
# (Parallel Append), so S2 does twice S1's work.
CTAS="CREATE TABLE b_out AS SELECT g, sum(v) AS s, avg(v::numeric * 1.5) AS a, count(*) AS n FROM b_big GROUP BY g"
CTAS_Q="SELECT g, sum(v) AS s, avg(v::numeric * 1.5) AS a, count(*) AS n FROM b_big GROUP BY g"
TRIVIAL="SELECT count(*) FROM b_small"
long_stmt() {  # n: number of copies of b_big
  local from="SELECT g, v FROM b_big" i
  for ((i = 1; i < $1; i++)); do from="$from UNION ALL SELECT g, v FROM b_big"; done
  echo "CREATE TABLE b_long AS SELECT g, sum(v) AS s, avg(v::numeric * 1.5) AS a, count(*) AS n FROM ($from) t GROUP BY g"
}
S1=$(long_stmt 3)
S2=$(long_stmt 6)
sq() { printf '%s' "$1" | sed "s/'/''/g"; }   # quote for a SQL literal
RESULT_COLS="status, workers_planned, workers_launched, attempts, round((extract(epoch FROM elapsed) * 1000)::numeric, 1)"
via() {  # tag statement [cleanup]: one guaranteed call printing "tag|status|planned|launched|attempts|elapsed_ms"
  echo "SELECT '$1', $RESULT_COLS FROM run_with_parallel_guarantee('$(sq "$2")', target_workers => 4, min_workers => 4);"
}

# ---------------------------------------------------------------- 1a. CTAS overhead
echo "bench: 1a. CTAS, direct vs via the function, $CTAS_RUNS runs each ..." >&2
LOG1A=$OUT/1a
{
  echo "SET client_min_messages = warning;"
  echo "SET max_parallel_workers_per_gather = 4;"
  echo "\\echo @@explain"
  echo "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) $CTAS_Q;"
  echo "DROP TABLE IF EXISTS b_out;"
  # warm-up, untimed by the parser
  echo "$CTAS;"; echo "DROP TABLE b_out;"
  via W "$CTAS"; echo "DROP TABLE b_out;"
  echo "\\timing on"
  for ((i = 1; i <= CTAS_RUNS; i++)); do
    echo "\\echo @@A"; echo "$CTAS;"; echo "DROP TABLE b_out;"
    echo "\\echo @@B"; via B "$CTAS"; echo "DROP TABLE b_out;"
  done
} | session "$LOG1A"
A_MED=$(times_after "$LOG1A.out" A | median)
B_MED=$(times_after "$LOG1A.out" B | median)
A_N=$(times_after "$LOG1A.out" A | count)
B_N=$(times_after "$LOG1A.out" B | count)
CTAS_DIRECT_LAUNCHED=$(grep -m1 -oE 'Workers Launched: [0-9]+' "$LOG1A.out" | grep -oE '[0-9]+$' || echo '?')
B_OK=$(rows_of "$LOG1A.out" B | awk -F'|' '$1=="target_met" && $3==4' | count)
# Spread of each side, and the median of the paired differences (B_i - A_i, run i of each).
spread() { sort -g | awk '{a[NR]=$1} END {if (NR) printf "%.0f..%.0f", a[1], a[NR]; else print "n/a"}'; }
A_SPREAD=$(times_after "$LOG1A.out" A | spread)
B_SPREAD=$(times_after "$LOG1A.out" B | spread)
PAIRED=$(paste -d' ' <(times_after "$LOG1A.out" A) <(times_after "$LOG1A.out" B) | awk 'NF == 2 {print $2 - $1}' | median)
RATIO=$(awk -v a="$A_MED" -v b="$B_MED" 'BEGIN {if (a+0 > 0 && b+0 > 0) printf "%.3f", b / a; else print "n/a"}')
RATIO_OK=$(awk -v r="$RATIO" 'BEGIN {print (r == "n/a") ? "no figure" : (r <= 1.02) ? "met" : "NOT met"}')

# ---------------------------------------------------------------- 1b. trivial statement overhead
echo "bench: 1b. trivial statement, direct vs via the function, $SMALL_RUNS runs each ..." >&2
LOG1B=$OUT/1b
{
  echo "SET client_min_messages = warning;"
  echo "SET max_parallel_workers_per_gather = 4;"
  echo "SET parallel_setup_cost = 0;"
  echo "SET parallel_tuple_cost = 0;"
  echo "\\echo @@explain"
  echo "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) $TRIVIAL;"
  echo "$TRIVIAL;"; via W "$TRIVIAL"
  echo "\\timing on"
  for ((i = 1; i <= SMALL_RUNS; i++)); do
    echo "\\echo @@A"; echo "$TRIVIAL;"
    echo "\\echo @@B"; via B "$TRIVIAL"
  done
} | session "$LOG1B"
SA_MED=$(times_after "$LOG1B.out" A | median)
SB_MED=$(times_after "$LOG1B.out" B | median)
SA_N=$(times_after "$LOG1B.out" A | count)
SB_N=$(times_after "$LOG1B.out" B | count)
SMALL_PLAN=$(awk '/^@@explain/{f=1;next} f && /Gather|Workers (Planned|Launched)/' "$LOG1B.out" | sed -E 's/^ *(-> *)?//' | paste -sd',' - | sed 's/,/, /g')
SB_PLANNED=$(rows_of "$LOG1B.out" B | awk -F'|' '{print $2}' | sort -u | paste -sd/ -)
SB_LAUNCHED=$(rows_of "$LOG1B.out" B | awk -F'|' '{print $3}' | sort -u | paste -sd/ -)
SB_OK=$(rows_of "$LOG1B.out" B | awk -F'|' '$1=="target_met" && $3==4' | count)
ADDED=$(awk -v a="$SA_MED" -v b="$SB_MED" 'BEGIN {if (a+0 > 0 && b+0 > 0) printf "%+.1f", b - a; else print "n/a"}')
ADDED_OK=$(awk -v d="$ADDED" 'BEGIN {print (d == "n/a") ? "no figure" : (d <= 10) ? "met" : "NOT met"}')

# ---------------------------------------------------------------- 2. abandoned attempts
echo "bench: 2. full-degree runs of S1/S2 ($FULL_RUNS each), then $RUNS abandoned attempts per case ..." >&2
LOG2=$OUT/2
CASES="S1:on S2:on S1:off S2:off"
{
  echo "SET client_min_messages = warning;"
  echo "SET max_parallel_workers_per_gather = 4;"
  echo "DROP TABLE IF EXISTS b_long;"
  echo "\\timing on"
  # Full degree (the pool is free): the whole statement through the function.
  for ((i = 1; i <= FULL_RUNS; i++)); do
    echo "\\echo @@F1"; via F1 "$S1"; echo "DROP TABLE b_long;"
    echo "\\echo @@F2"; via F2 "$S2"; echo "DROP TABLE b_long;"
  done
  # A deterministic shortage: one parallel worker for the whole server, for this session
  # and the guarantee worker, which inherits the caller's settings.
  echo "SET max_parallel_workers = 1;"
  for ((i = 1; i <= RUNS; i++)); do
    for c in $CASES; do
      s=${c%%:*}; j=${c##*:}; tag="${s}_jit$j"
      [ "$s" = S1 ] && stmt=$S1 || stmt=$S2
      echo "\\timing off"; echo "SET jit = $j;"; echo "\\timing on"
      echo "\\echo @@$tag"; echo "\\warn @@$tag"
      echo "SELECT '$tag', $RESULT_COLS FROM run_with_parallel_guarantee('$(sq "$stmt")', target_workers => 4, min_workers => 4, max_attempts => 1);"
      echo "\\timing off"
      echo "SELECT 'L_$tag', at_once, after_poll, waited_ms FROM b_leftovers();"
      echo "DROP TABLE IF EXISTS b_long;"
      echo "\\timing on"
    done
  done
} | session "$LOG2"
F1_MED=$(times_after "$LOG2.out" F1 | median)
F2_MED=$(times_after "$LOG2.out" F2 | median)
F1_PL=$(rows_of "$LOG2.out" F1 | awk -F'|' '{print $1" "$3"/"$2}' | sort -u | paste -sd, -)
F2_PL=$(rows_of "$LOG2.out" F2 | awk -F'|' '{print $1" "$3"/"$2}' | sort -u | paste -sd, -)

# ---------------------------------------------------------------- table
W=$(( $(date +%s) - START_TS ))
OTHERS_END=$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
line() { printf '%*s\n' 100 '' | tr ' ' '-'; }
echo
echo "parallel_guarantee benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
line
echo "machine     nproc=$NPROC, CPU: $CPU"
echo "postgres    $PGVER"
echo "cluster     max_parallel_workers=$(q 'SHOW max_parallel_workers'), max_worker_processes=$(q 'SHOW max_worker_processes'), jit=$(q 'SHOW jit') (default); parallel workers busy elsewhere at start: $BUSY_AT_START"
echo "load        loadavg (1/5/15 min) before the run: $LOAD_START; other client backends on the cluster at the end: $OTHERS_END"
if awk -v l="${LOAD_START%% *}" -v n="$NPROC" 'BEGIN {exit !(l > n / 2)}' || [ "$BUSY_AT_START" -gt 0 ]; then
  echo "WARNING     the machine or the cluster was busy when the run started: the timings below are noisy"
fi
echo "data        b_big: $ROWS rows ($BIG_SIZE), parallel_workers=4;  b_small: 1000 rows, parallel_workers=4"
line
echo "1. Overhead with no contention: one psql session, \\timing, interleaved A,B,A,B..., median"
echo "   both sides: SET max_parallel_workers_per_gather = 4; via = run_with_parallel_guarantee(target_workers=>4, min_workers=>4)"
echo
printf '   %-44s %12s %12s %16s %10s  %s\n' "" "direct (A)" "via (B)" "difference" "target" ""
printf '   %-44s %9s ms %9s ms %16s %10s  %s\n' "a. CTAS ~1 s ($A_N+$B_N runs)" "$A_MED" "$B_MED" "ratio $RATIO" "<= 1.02" "$RATIO_OK"
printf '   %-44s %9s ms %9s ms %13s ms %10s  %s\n' "b. trivial SELECT count(*) ($SA_N+$SB_N runs)" "$SA_MED" "$SB_MED" "$ADDED" "<= 10 ms" "$ADDED_OK"
echo
echo "   a. $CTAS"
echo "      direct EXPLAIN ANALYZE: Workers Launched: $CTAS_DIRECT_LAUNCHED;  via: $B_OK of $B_N calls target_met with 4 workers launched
      noise: min..max direct $A_SPREAD ms, via $B_SPREAD ms; median of paired differences (via - direct): $PAIRED ms"
echo "   b. $TRIVIAL  (session: parallel_setup_cost = 0, parallel_tuple_cost = 0)"
echo "      direct EXPLAIN ANALYZE: $SMALL_PLAN"
echo "      via: workers_planned=$SB_PLANNED, workers_launched=$SB_LAUNCHED; $SB_OK of $SB_N calls target_met with 4 launched"
line
echo "2. Cost of an abandoned attempt: SET max_parallel_workers = 1; target 4, min 4, max_attempts 1"
echo "   attempt cost = the 53G01 DETAIL's 'after X ms' (attempt start -> rolled back, its parallel workers exited)"
echo "   S1 = CTAS aggregate over b_big x3 (UNION ALL), S2 = the same over b_big x6 (twice the work)"
echo
printf '   %-16s %16s %15s %12s %16s %24s\n' "statement" "full run, 4 wkrs" "abandoned: med" "max" "call wall med" "seed loop (baseline)"
for c in $CASES; do
  s=${c%%:*}; j=${c##*:}; tag="${s}_jit$j"
  [ "$s" = S1 ] && full=$F1_MED || full=$F2_MED
  med=$(detail_ms_after "$LOG2.err" "$tag" | median)
  mx=$(detail_ms_after "$LOG2.err" "$tag" | maxof)
  n=$(detail_ms_after "$LOG2.err" "$tag" | count)
  wall=$(times_after "$LOG2.out" "$tag" | median)
  printf '   %-16s %13s ms %12s ms %9s ms %13s ms %21s ms\n' "$s, jit=$j ($n)" "$full" "$med" "$mx" "$wall" "1000"
done
echo
for c in $CASES; do
  s=${c%%:*}; j=${c##*:}; tag="${s}_jit$j"
  left=$(rows_of "$LOG2.out" "L_$tag" | awk -F'|' '{s += $2} END {print s+0}')
  at_once=$(rows_of "$LOG2.out" "L_$tag" | awk -F'|' '{s += $1} END {print s+0}')
  waited=$(rows_of "$LOG2.out" "L_$tag" | awk -F'|' '{print $3}' | maxof)
  checks=$(rows_of "$LOG2.out" "L_$tag" | count)
  errs=$(detail_ms_after "$LOG2.err" "$tag" | count)
  printf '   %-14s workers left behind: %s   (%s checks; seen right after the error: %s; longest check %s ms; 53G01 raised %s of %s calls)\n' \
    "$s, jit=$j" "$left" "$checks" "$at_once" "$waited" "$errs" "$RUNS"
done
echo
echo "   full run = median of $FULL_RUNS calls through the function with the pool free (jit default): S1 $F1_PL, S2 $F2_PL"
echo "   call wall = psql \\timing of the failing call: adds the guarantee worker's start and the error's return."
echo "   seed loop = the seed's client-side loop sleeps a fixed 1 s before it even looks at the launched"
echo "   workers, so an attempt it abandons costs at least 1000 ms (not measured: a fixed figure)."
line
echo "raw psql logs: bench/out/{1a,1b,2}.{out,err};  total bench time ${W} s"
