#!/usr/bin/env bash
# Where the time of a call goes: N calls of run_with_parallel_guarantee on a trivial
# statement with a Gather, with parallel_guarantee.trace_phases on, and the same statement
# sent directly in the same session, side by side; median per phase, JIT off and on
# (jit_above_cost = 0, so that JIT compiles even the trivial statement: the worst case).
#   bash bench/phases.sh
# Knobs: BENCH_CALLS (default 30).  Uses the throwaway cluster (scripts/cluster.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${BENCH_CALLS:-30}
DB=pg_guarantee_phases
OUT=bench/out/phases
mkdir -p "$OUT"
bash scripts/cluster.sh start >&2
psql_() { bash scripts/cluster.sh psql -X "$@"; }
PGOPTIONS="-c client_min_messages=warning" psql_ -d postgres -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
psql_ -d "$DB" -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION parallel_guarantee;
CREATE TABLE t (id int) WITH (parallel_workers = 2);
INSERT INTO t SELECT generate_series(1, 100000);
VACUUM ANALYZE t;
-- One row per page, so that each of the hog's workers sleeps on its own row.
CREATE TABLE hog (id int, pad text) WITH (fillfactor = 10, parallel_workers = 8);
INSERT INTO hog SELECT g, repeat('x', 1500) FROM generate_series(1, 64) g;
VACUUM ANALYZE hog;
SQL

measure() {  # name, session settings
  local name=$1 settings=$2
  {
    echo "SET search_path = public, parallel_guarantee;"
    echo "SET parallel_guarantee.trace_phases = on;"
    echo "$settings"
    echo "SET max_parallel_workers_per_gather = 2;"
    echo "SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;"
    echo "\\timing on"
    for _ in $(seq 1 "$CALLS"); do
      echo "SELECT 'direct';"
      echo "SELECT count(*) FROM t;"
      echo "SELECT 'guaranteed';"
      echo "SELECT status FROM run_with_parallel_guarantee('SELECT count(*) FROM t', target_workers => 2, min_workers => 2);"
    done
  } | psql_ -d "$DB" -qAt > "$OUT/$name.out" 2> "$OUT/$name.err"
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) {print "-"; exit} if (NR%2) printf "%.2f", a[(NR+1)/2]; else printf "%.2f", (a[NR/2]+a[NR/2+1])/2}'; }

PHASES=("checks and registration" "worker start" "connection" "recording the run" "waiting and planning"
        "launch" "execution and commit" "recording the end" "result to the caller" "worker exit" "total")
measure jit_off "SET jit = off;"
measure jit_on "SET jit = on; SET jit_above_cost = 0;"

echo
echo "Where a call's time goes: a trivial SELECT count(*) over 100,000 rows with a Gather of 2 workers, $CALLS calls each, medians in ms"
printf '| %-24s | %-10s | %-10s |\n' "phase" "jit off" "jit on"
printf '|%s|%s|%s|\n' "--------------------------" "------------" "------------"
for phase in "${PHASES[@]}"; do
  row=()
  for name in jit_off jit_on; do
    if [ "$phase" = total ]; then
      v=$( (sed -n 's/.*; total \([0-9.]*\)$/\1/p' "$OUT/$name.err" || true) | median)
    else
      v=$( (grep -o "$phase [0-9.]*" "$OUT/$name.err" || true) | awk '{print $NF}' | median)
    fi
    row+=("$v")
  done
  printf '| %-24s | %-10s | %-10s |\n' "$phase" "${row[0]}" "${row[1]}"
done
# The time of each block's last statement (the marker SELECT prints a time of its own first).
block_times() {  # file marker
  awk -v m="$2" '/^(direct|guaranteed)$/ { if (in_block && last != "") print last; in_block = ($0 == m); last = ""; next }
                 in_block && /^Time: / { last = $2 }
                 END { if (in_block && last != "") print last }' "$1"
}
for name in jit_off jit_on; do
  direct=$(block_times "$OUT/$name.out" direct | median)
  through=$(block_times "$OUT/$name.out" guaranteed | median)
  echo "$name: the statement sent directly $direct ms, through the function $through ms (psql's \\timing, medians; difference $(awk -v a="$through" -v b="$direct" 'BEGIN { printf "%.2f", a - b }') ms)"
done

# Abandoned attempts while another session holds the workers: a hog holds 6 of the 8 for
# 2 s; a run with target 4, attempts left and no queue (wait_for_slots => false, retry every
# 100 ms) abandons its attempts until the hog is gone.  The attempts' durations come from
# parallel_guarantee_attempts (attempt start to rolled back), JIT on at jit_above_cost = 0.
abandoned() {  # jit settings
  PGOPTIONS="-c statement_timeout=2000 -c max_parallel_workers_per_gather=6 -c parallel_setup_cost=0 -c parallel_tuple_cost=0" \
    psql_ -d "$DB" -qAt -c "SELECT count(*) FROM hog WHERE pg_sleep(3600 + id * 0) IS NOT NULL" >/dev/null 2>&1 &
  local hog=$!
  for _ in $(seq 1 200); do
    [ "$(psql_ -d "$DB" -qAt -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker'")" -ge 6 ] && break
    sleep 0.01
  done
  psql_ -d "$DB" -qAt -c "SET search_path = public, parallel_guarantee" -c "$1" \
    -c "SET parallel_setup_cost = 0" -c "SET parallel_tuple_cost = 0" -c "SET client_min_messages = warning" \
    -c "SELECT status FROM run_with_parallel_guarantee('SELECT count(*) FROM t', target_workers => 4, min_workers => 4,
          max_attempts => 50, retry_delay => '100 ms', wait_for_slots => false, force_workers => true, label => 'bench-abandoned')" >/dev/null
  wait $hog 2>/dev/null || true
  psql_ -d "$DB" -qAt -c "SELECT extract(epoch FROM a.duration) * 1000 FROM parallel_guarantee.parallel_guarantee_attempts a
                            WHERE a.outcome = 'abandoned' AND a.run_id = (SELECT max(run_id) FROM parallel_guarantee.parallel_guarantee_runs
                                                                           WHERE label = 'bench-abandoned')"
}
off=$(abandoned "SET jit = off" | tee "$OUT/abandoned_jit_off.txt" | median)
on=$(abandoned "SET jit = on; SET jit_above_cost = 0" | tee "$OUT/abandoned_jit_on.txt" | median)
echo
echo "Abandoned attempts while another session holds 6 of the 8 workers (target 4, judged before any worker starts): median $off ms (jit off, $(wc -l < "$OUT/abandoned_jit_off.txt") attempts), $on ms (jit on, $(wc -l < "$OUT/abandoned_jit_on.txt") attempts); the client-side retry loop: >= 1000 ms each"
