#!/usr/bin/env bash
# The cost of counting every parallel launch in the server (parallel_guarantee_downgrades):
# many short parallel queries from 8 pgbench sessions on one private cluster, the extension
# not loaded vs loaded (track_downgrades on), rounds alternated (off, on, off, on, ...) so that
# drift of the machine hits both alike; prints the throughput of each and the ratio
# (target >= 0.99: the count is taken once per Gather launch, never per tuple).
#   bash bench/downgrades.sh
# Knobs: BENCH_ROUNDS (rounds per side, default 3), BENCH_SECONDS (per round, default 10),
# BENCH_PORT (default 54391).  Raw pgbench output in bench/out/downgrades/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ROUNDS=${BENCH_ROUNDS:-3}
SECONDS_PER_ROUND=${BENCH_SECONDS:-10}
BIN=${PG_BIN:-/usr/lib/postgresql/${PG_MAJOR:-15}/bin}
OUT=$ROOT/bench/out/downgrades
PC_NAME=bench_downgrades
PC_PORT=${BENCH_PORT:-54391}
. "$ROOT/test/integration/data/private_cluster.sh"
mkdir -p "$OUT"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
trap 'pc_stop fast' EXIT

# The cluster, first with the extension loaded to create it and the data.
pc_init "max_connections = 40" "max_worker_processes = 24" "max_parallel_workers = 16" \
        "max_parallel_workers_per_gather = 2" "shared_buffers = '256MB'" "jit = off" \
  || { echo "bench: the private cluster did not start" >&2; exit 1; }
pc_psql -d postgres -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE DATABASE bench;
\c bench
CREATE EXTENSION parallel_guarantee;
CREATE TABLE t (id int, pad text) WITH (parallel_workers = 2);
INSERT INTO t SELECT g, 'x' FROM generate_series(1, 20000) g;
VACUUM ANALYZE t;
SQL
echo "SELECT count(*) FROM t;" > "$OUT/query.sql"
chown -R postgres: "$OUT"

set_preload() {  # on | off
  local conf=$PC_DATA/postgresql.conf
  sed -i '/^shared_preload_libraries/d' "$conf"
  if [ "$1" = on ]; then echo "shared_preload_libraries = 'parallel_guarantee'" >> "$conf"
  else echo "shared_preload_libraries = ''" >> "$conf"; fi
  pc_stop fast && pc_start
}
round() {  # on|off round-number: prints the transactions per second
  local log=$OUT/$1-$2.txt
  runuser -u postgres -- "$BIN/pgbench" -h "$PC_DIR" -p "$PC_PORT" -U postgres -n -c 8 -j 2 \
    -T "$SECONDS_PER_ROUND" -f "$OUT/query.sql" bench > "$log" 2>&1
  sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$log" | head -1
}

declare -a tps_off tps_on
for r in $(seq 1 "$ROUNDS"); do
  set_preload off; tps_off+=("$(round off "$r")")
  set_preload on;  tps_on+=("$(round on "$r")")
  # Loaded: the launches were counted (a sanity check of what is measured).
  counted=$(pc_psql -d bench -tA -c "SELECT coalesce(sum(launches), 0) FROM parallel_guarantee.parallel_guarantee_downgrades")
  echo "round $r: off ${tps_off[-1]} tps, on ${tps_on[-1]} tps ($counted launches counted so far)" >&2
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
off=$(median "${tps_off[@]}")
on=$(median "${tps_on[@]}")
ratio=$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.3f", a / b }')
echo
echo "Counting every parallel launch: 8 sessions of 'SELECT count(*) FROM t' (a Gather of 2 workers over 20,000 rows), $ROUNDS rounds of $SECONDS_PER_ROUND s per side"
printf '| %-34s | %-22s | %-22s | %-6s |\n' "measure" "extension not loaded" "loaded, counting" "ratio"
printf '|%s|%s|%s|%s|\n' "------------------------------------" "------------------------" "------------------------" "--------"
printf '| %-34s | %-22s | %-22s | %-6s |\n' "throughput, median tps" "$off" "$on" "$ratio"
printf '| %-34s | %-22s | %-22s | %-6s |\n' "each round, tps" "${tps_off[*]}" "${tps_on[*]}" ""
echo "target: ratio >= 0.99 (machine: $(nproc) cores, $(uname -r); load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg))"
