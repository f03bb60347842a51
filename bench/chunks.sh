#!/usr/bin/env bash
# Benchmark of chunked batch steps: rows per second on the seed's pass-expiry case.
#   bash bench/chunks.sh
# 100,000 passes (fresh before every timed run, the same rows each time: 32,382 match, a
# third already expired), expired in four ways, all timed alike by one JDBC client over one
# connection (bench/chunk_client/ChunkBench.java; connection and JVM start not timed):
#   a  plain UPDATE ... WHERE status = 'IN_PROGRESS' AND (ends_at < now() OR remaining = 0)
#   b  run_in_chunks(keys, 'UPDATE passes SET status = ''EXPIRED'' WHERE id = ANY ($1)',
#      chunk_size => 1000), workers => 1 and workers => 2
#   c  a hand-tuned client chunk loop: fetch the keys, then per chunk of 1000 send one
#      UPDATE ... WHERE id = ANY (?) and COMMIT, over the same one connection
#   d  what the seed's Spring Batch step sends (JpaItemWriter): fetch the keys, then per
#      chunk of 1000 one UPDATE ... WHERE id = ? per item in one JDBC batch, and COMMIT
#   e  the seed's step as configured: read the matching rows; per chunk, per item one
#      SELECT by id (Hibernate's merge) and one UPDATE (its flush, no JDBC batch size set),
#      the step execution's update, and COMMIT
# One untimed warm-up round, then BENCH_CHUNK_RUNS rounds (default 5, at least 3) of every
# case, the order rotating; medians.  Prints figures and ratios, asserts nothing.
# Knobs: BENCH_CHUNK_RUNS, BENCH_CHUNK_ROWS (default 100000), BENCH_CHUNK_SIZE (default 1000).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DB=pg_guarantee_bench_chunks
OUT=$ROOT/bench/out/chunks
RUNS=${BENCH_CHUNK_RUNS:-5}
ROWS=${BENCH_CHUNK_ROWS:-100000}
CHUNK=${BENCH_CHUNK_SIZE:-1000}
PORT=${PG_PORT:-54329}
JAR=${PGJDBC_JAR:-/usr/share/java/postgresql.jar}
[ "$RUNS" -ge 3 ] || { echo "bench: BENCH_CHUNK_RUNS must be at least 3" >&2; exit 2; }
command -v javac >/dev/null && [ -f "$JAR" ] || { echo "bench: needs javac and the PostgreSQL JDBC driver ($JAR)" >&2; exit 2; }
mkdir -p "$OUT"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

bash scripts/cluster.sh start >&2
psql_() { bash scripts/cluster.sh psql "$@"; }
PGOPTIONS="-c client_min_messages=warning" psql_ -d postgres -v ON_ERROR_STOP=1 -q \
  -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
psql_ -d "$DB" -v ON_ERROR_STOP=1 -q -c "CREATE EXTENSION parallel_guarantee" \
  -c "ALTER DATABASE $DB SET search_path = \"\$user\", public, parallel_guarantee"
trap 'PGOPTIONS="-c client_min_messages=warning" psql_ -d postgres -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1' EXIT

javac -d "$OUT/classes" -cp "$JAR" bench/chunk_client/ChunkBench.java
echo "bench: $RUNS rounds of 6 cases on $ROWS passes (chunk size $CHUNK) ..." >&2
java -cp "$OUT/classes:$JAR" ChunkBench "jdbc:postgresql://127.0.0.1:$PORT/$DB?user=postgres" "$ROWS" "$RUNS" "$CHUNK" \
  >"$OUT/runs.txt" 2>"$OUT/client.err" || { echo "bench: the client failed:" >&2; tail -20 "$OUT/client.err" >&2; exit 1; }

# Where the time of run_in_chunks goes, from its history: from the call (the client's clock
# just before it sent the call, bench_chunk_calls) to the first chunk claimed, of which the
# part from the run recorded (its worker started and connected) to the first chunk (the keys
# query and the chunk table); the chunk phase (first claim to last chunk done), per chunk,
# and after the last chunk.
psql_ -d "$DB" -qAt -F'|' >"$OUT/phases.txt" <<'SQL'
SELECT r.workers,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM c.first_start - b.called_at) * 1000),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM c.first_start - r.started_at) * 1000),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM c.last_end - c.first_start) * 1000),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY c.per_chunk_ms),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.finished_at - c.last_end) * 1000),
       min(extract(epoch FROM c.first_start - b.called_at) * 1000),
       max(extract(epoch FROM c.first_start - b.called_at) * 1000)
  FROM parallel_guarantee_chunk_runs r
  JOIN bench_chunk_calls b USING (run_id)
  JOIN (SELECT run_id, min(started_at) AS first_start, max(finished_at) AS last_end,
               avg(extract(epoch FROM finished_at - started_at) * 1000) AS per_chunk_ms
          FROM parallel_guarantee_chunks GROUP BY run_id) c USING (run_id)
 WHERE r.status = 'done'
 GROUP BY r.workers ORDER BY r.workers;
SQL

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) {print "n/a"; exit} if (NR%2) printf "%.1f\n", a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
ms_of() { grep "^$1|" "$OUT/runs.txt" | cut -d'|' -f3; }
MATCHING=$(head -1 "$OUT/runs.txt" | cut -d'|' -f4)
declare -A MED RANGE
for c in plain chunks_w1 chunks_w2 client_loop item_writer seed_step; do
  MED[$c]=$(ms_of $c | median)
  RANGE[$c]="$(ms_of $c | sort -g | head -1)..$(ms_of $c | sort -g | tail -1)"
done
rps() { awk -v n="$MATCHING" -v ms="$1" 'BEGIN {printf "%.0f", n / (ms / 1000)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }   # throughput ratio = time b / time a

echo
echo "Chunked batch benchmark: $MATCHING of $ROWS passes expired per run, chunk size $CHUNK, $RUNS runs per case"
echo "machine: $(nproc) cores, $(grep -m1 '^model name' /proc/cpuinfo | sed 's/^model name[[:space:]]*:[[:space:]]*//'); $(psql_ -d postgres -qAtc 'SELECT version()' | cut -d, -f1)"
echo "load average at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%-44s %12s %18s %12s\n' "case" "median ms" "min..max ms" "rows/s"
printf '%-44s %12s %18s %12s\n' "a  plain UPDATE (one statement)" "${MED[plain]}" "${RANGE[plain]}" "$(rps "${MED[plain]}")"
printf '%-44s %12s %18s %12s\n' "b1 run_in_chunks, workers 1" "${MED[chunks_w1]}" "${RANGE[chunks_w1]}" "$(rps "${MED[chunks_w1]}")"
printf '%-44s %12s %18s %12s\n' "b2 run_in_chunks, workers 2" "${MED[chunks_w2]}" "${RANGE[chunks_w2]}" "$(rps "${MED[chunks_w2]}")"
printf '%-44s %12s %18s %12s\n' "c  client chunk loop, one UPDATE per chunk" "${MED[client_loop]}" "${RANGE[client_loop]}" "$(rps "${MED[client_loop]}")"
printf '%-44s %12s %18s %12s\n' "d  Spring Batch item writer (JDBC batch)" "${MED[item_writer]}" "${RANGE[item_writer]}" "$(rps "${MED[item_writer]}")"
printf '%-44s %12s %18s %12s\n' "e  the seed's step as configured" "${MED[seed_step]}" "${RANGE[seed_step]}" "$(rps "${MED[seed_step]}")"
echo
echo "ratios of throughput (rows/s)                 measured   target"
printf '%-44s %9s %8s\n' "b1 run_in_chunks w1 / a plain UPDATE" "$(ratio "${MED[plain]}" "${MED[chunks_w1]}")" ">= 0.7"
printf '%-44s %9s %8s\n' "b2 run_in_chunks w2 / a plain UPDATE" "$(ratio "${MED[plain]}" "${MED[chunks_w2]}")" ">= 0.7"
printf '%-44s %9s %8s\n' "b1 run_in_chunks w1 / c client loop" "$(ratio "${MED[client_loop]}" "${MED[chunks_w1]}")" ">= 3"
printf '%-44s %9s %8s\n' "b2 run_in_chunks w2 / c client loop" "$(ratio "${MED[client_loop]}" "${MED[chunks_w2]}")" ">= 3"
printf '%-44s %9s %8s\n' "b1 run_in_chunks w1 / d item writer" "$(ratio "${MED[item_writer]}" "${MED[chunks_w1]}")" ">= 3"
printf '%-44s %9s %8s\n' "b2 run_in_chunks w2 / d item writer" "$(ratio "${MED[item_writer]}" "${MED[chunks_w2]}")" ">= 3"
printf '%-44s %9s %8s\n' "b1 run_in_chunks w1 / e the seed's step" "$(ratio "${MED[seed_step]}" "${MED[chunks_w1]}")" ">= 3"
printf '%-44s %9s %8s\n' "b2 run_in_chunks w2 / e the seed's step" "$(ratio "${MED[seed_step]}" "${MED[chunks_w2]}")" ">= 3"
echo
KEYS_MS=$(grep '^keys|' "$OUT/runs.txt" | cut -d'|' -f3 | median)
KEYS_RANGE="$(grep '^keys|' "$OUT/runs.txt" | cut -d'|' -f3 | sort -g | head -1)..$(grep '^keys|' "$OUT/runs.txt" | cut -d'|' -f3 | sort -g | tail -1)"
echo "run_in_chunks phases (medians over its runs, warm-up included, ms):"
echo "  workers | call to first chunk (min..max) | of which run recorded to first chunk | chunks | per chunk | after the last chunk"
while IFS='|' read -r w call k ch per after lo hi; do
  printf '  %7s | %8.1f (%.1f..%.1f) | %8.1f | %8.1f | %6.1f | %6.1f\n' "$w" "$call" "$lo" "$hi" "$k" "$ch" "$per" "$after"
done <"$OUT/phases.txt"
echo
echo "call to first chunk, next to the keys query alone (target: call to first chunk <= 10 ms):"
echo "  the keys query in the client's warm session (EXPLAIN ANALYZE, planning + execution, median of 11): $KEYS_MS ms ($KEYS_RANGE)"
while IFS='|' read -r w call k ch per after lo hi; do
  printf '  workers %s: call to first chunk %.1f ms = the keys query alone %.1f ms + %.1f ms around it (worker start and connection, recording the run, a fresh process'"'"'s cold caches, storing the chunks)\n' \
    "$w" "$call" "$KEYS_MS" "$(awk -v a="$call" -v b="$KEYS_MS" 'BEGIN {print a - b}')"
done <"$OUT/phases.txt"
echo "(raw timings: $OUT/runs.txt)"
