#!/usr/bin/env bash
# The walls, on a private cluster (test/out/walls, port $WALLS_PORT, default 54371):
#   1. the C++ wall: with every C++ allocation in the server failing (a test shim preloaded
#      into the server, data/failing_new.cpp, throws std::bad_alloc from operator new while
#      a flag file exists), a run gets a clear out-of-memory ERROR, the run is recorded as
#      such, and the server never crashes: no C++ exception unwinds through PostgreSQL;
#   2. no slot leak: with dynamic shared memory that cannot be created (the cluster's
#      pg_dynshmem made unwritable; dynamic_shared_memory_type = mmap), 40 calls in a row get
#      the error and leave no run slot behind ('starting' forever, 32 of them used to block
#      the extension until a restart); afterwards a run works.
# TAP style (data/tap.sh): the plan first, then "ok - ..." or "not ok - ..." per check.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
. "$ROOT/test/integration/data/tap.sh"
plan 9
PC_NAME=walls
PC_PORT=${WALLS_PORT:-54371}
. "$ROOT/test/integration/data/private_cluster.sh"
OUT=$ROOT/test/out/walls-shim   # beside the cluster's directory, which pc_init recreates
FLAG=$OUT/fail-new
P() { PGOPTIONS="-c client_min_messages=warning" pc_psql -d walls -tA -q "$@"; }
# The first error line of a statement, with its SQLSTATE.
err() { P -v VERBOSITY=sqlstate "$@" 2>&1 >/dev/null | grep -m1 '^ERROR' || true; }
tap_on_exit 'rm -f "$FLAG"; chmod 700 "$PC_DATA/pg_dynshmem" 2>/dev/null; pc_stop immediate'

mkdir -p "$OUT"
if ! g++ -std=c++17 -shared -fPIC -O2 -o "$OUT/failing_new.so" "$ROOT/test/integration/data/failing_new.cpp" 2>"$OUT/shim.err"; then
  not_ok "setup: the failing operator new shim does not build" "$(head -3 "$OUT/shim.err")"; exit 1
fi
chown -R postgres: "$OUT"
rm -f "$FLAG"
export FAILING_NEW_FLAG=$FLAG
LD_PRELOAD=$OUT/failing_new.so pc_init "dynamic_shared_memory_type = mmap" "jit = off" "log_line_prefix = '%m [%p] %e '"
rc=$?
if [ $rc != 0 ]; then not_ok "setup: the private cluster did not start (pc_init $rc)" "$(tail -3 "$PC_LOG")"; exit 1; fi
pc_psql -d postgres -q -c "CREATE DATABASE walls" >/dev/null
if ! P -v ON_ERROR_STOP=1 >/dev/null 2>"$OUT/setup.err" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION parallel_guarantee;
CREATE TABLE big (id int) WITH (parallel_workers = 2);
INSERT INTO big SELECT generate_series(1, 10000);
SQL
then not_ok "setup: extension and table" "$(head -3 "$OUT/setup.err")"; exit 1; fi
RUN="SELECT status FROM run_with_parallel_guarantee('SELECT count(*) FROM big', target_workers => 2, min_workers => 0, label => 'wall')"

# 1. The C++ wall.
check "before: a run succeeds (the shim lets allocations through without the flag)" "target_met" "$(P -c "$RUN" 2>&1)"
touch "$FLAG"; chown postgres: "$FLAG"
check "every C++ allocation failing: the run gets a clear out-of-memory error (53200)" \
  "ERROR:  53200" "$(err -c "$RUN")"
rm -f "$FLAG"
check "the server did not crash (no process terminated by a signal, no restart)" "" \
  "$(grep -E 'terminated by signal|was terminated|server process .* exited with exit code [2-9]|all server processes terminated' "$PC_LOG" | head -3)"
check "the run is in the history as an error, 53200, saying so" "error|53200|parallel_guarantee ran out of memory" \
  "$(P -c "SELECT status || '|' || sqlstate || '|' || message FROM parallel_guarantee_runs WHERE label = 'wall' ORDER BY run_id DESC LIMIT 1")"
check "after: a run succeeds again" "target_met" "$(P -c "$RUN" 2>&1)"

# 2. No slot leak when the run's dynamic shared memory cannot be created.
chmod 500 "$PC_DATA/pg_dynshmem"
errors=$(for _ in $(seq 1 40); do err -c "$RUN"; done | sed 's/: could not.*//' | sort | uniq -c | sed 's/^ *//')
chmod 700 "$PC_DATA/pg_dynshmem"
check "no dynamic shared memory: 40 calls in a row each get the segment's error (42501)" "40 ERROR:  42501" "$errors"
check "no dynamic shared memory: no run slot is left behind" "0" "$(P -c "SELECT count(*) FROM parallel_guarantee_activity")"
check "afterwards a run works (the slots are free)" "target_met" "$(P -c "$RUN" 2>&1)"
check "the server log has no XX000 or crash" "" \
  "$(grep -E '\] XX000 |terminated by signal|PANIC' "$PC_LOG" | head -3)"
