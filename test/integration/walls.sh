#!/usr/bin/env bash
# The walls, on a private cluster (test/out/walls, port $WALLS_PORT, default 54371):
#   1. the C++ wall: with every C++ allocation in the server failing (a test shim preloaded
#      into the server, data/failing_new.cpp, throws std::bad_alloc from operator new while
#      a flag file exists), a run gets a clear out-of-memory ERROR, the run is recorded as
#      such, and the server never crashes: no C++ exception unwinds through PostgreSQL;
#   2. no slot leak: with dynamic shared memory that cannot be created (the cluster's
#      pg_dynshmem made unwritable; dynamic_shared_memory_type = mmap), 40 calls in a row get
#      the error and leave no run slot behind ('starting' forever, 32 of them used to block
#      the extension until a restart); afterwards a run works;
#   3. signals reach only the process meant: a session cancelling a run is stopped (gdb) at
#      the very kill() of the run's worker; meanwhile the worker's statement finishes, but
#      the worker cannot exit (and its pid cannot be reused) until the signal has gone out,
#      because the signal is sent under the slot lock it must take to leave its slot.
# TAP style (data/tap.sh): the plan first, then "ok - ..." or "not ok - ..." per check.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
. "$ROOT/test/integration/data/tap.sh"
plan 12
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
-- The README's way to reach the extension's objects: its schema on the database's search_path.
ALTER DATABASE walls SET search_path = "$user", public, parallel_guarantee;
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

# 3. Signals only under the slot lock, to a process that is still the run's.
SLOW="SELECT submit_parallel_guarantee(\$s\$SELECT count(*) FROM big WHERE pg_sleep(CASE WHEN id = 1 THEN 1.5 ELSE 0 END) IS NOT NULL\$s\$, target_workers => 2, min_workers => 0, label => 'signal')"
RUN_ID=$(P -c "$SLOW" 2>&1)
WORKER=""
for _ in $(seq 1 100); do
  WORKER=$(P -c "SELECT worker_pid FROM parallel_guarantee_activity WHERE run_id = ${RUN_ID:-0} AND state = 'running'" 2>/dev/null)
  [ -n "$WORKER" ] && break; sleep 0.02
done
rm -f "$OUT/canceller.fifo"; mkfifo "$OUT/canceller.fifo"
# The cancelling session: it prints its pid, then waits for the cancel statement.
{ echo "SELECT 'pid ' || pg_backend_pid();"; cat "$OUT/canceller.fifo"; } | P >"$OUT/canceller.out" 2>&1 &
CANCELLER_JOB=$!
exec 7>"$OUT/canceller.fifo"
CANCELLER=""
for _ in $(seq 1 100); do CANCELLER=$(sed -n 's/^pid //p' "$OUT/canceller.out"); [ -n "$CANCELLER" ] && break; sleep 0.02; done
# gdb stops the canceller at kill(worker, SIGINT) and holds it there for 3 s (the worker's
# statement ends within 1.5 s), recording whether the worker is still alive then.
cat >"$OUT/gdb.cmd" <<GDB
set pagination off
break kill if \$rdi == ${WORKER:-0} && \$rsi == 2
continue
shell sleep 3
shell if kill -0 ${WORKER:-0} 2>/dev/null; then echo WORKER_ALIVE > $OUT/gdb.verdict; else echo WORKER_GONE > $OUT/gdb.verdict; fi
detach
quit
GDB
rm -f "$OUT/gdb.verdict"
timeout 60 gdb -q -batch -p "${CANCELLER:-0}" -x "$OUT/gdb.cmd" >"$OUT/gdb.log" 2>&1 &
GDB_JOB=$!
sleep 1   # gdb attaches (a bounded wait would need gdb to say so; one second is ample)
echo "SELECT parallel_guarantee_cancel($RUN_ID);" >&7
exec 7>&-
wait $GDB_JOB
wait $CANCELLER_JOB
check "while a cancel is at kill() of the run's worker, the worker cannot exit (its pid stays its own)" \
  "WORKER_ALIVE" "$(cat "$OUT/gdb.verdict" 2>/dev/null || echo "gdb did not stop at kill(): $(tail -2 "$OUT/gdb.log" | tr '\n' ' ')")"
P -c "SELECT parallel_guarantee_wait($RUN_ID, '10 s')" >/dev/null 2>&1
check "then the signal reaches it and the run ends (cancelled or, when the cancel came too late, target_met)" "t" \
  "$(P -c "SELECT status IN ('cancelled', 'target_met') FROM parallel_guarantee_runs WHERE run_id = $RUN_ID" 2>&1)"
check "nothing left behind, no crash" "0|" \
  "$(P -c "SELECT count(*) FROM parallel_guarantee_activity")|$(grep -E 'terminated by signal|PANIC' "$PC_LOG" | head -2)"
