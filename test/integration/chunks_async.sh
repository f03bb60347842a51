#!/usr/bin/env bash
# Submitted chunked runs: submit_chunks returns at once and the run outlives the session;
# status, wait and cancel; a cancelled run resumes without redoing a chunk; another role
# can neither see nor cancel it.  Then the caller of run_in_chunks cancelled
# (pg_cancel_backend, statement_timeout): its error names the run and the call that resumes
# it, and that very call finishes the run.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/integration/data/tap.sh
plan 19
DB=pg_guarantee_chunks_async
P() { bash scripts/cluster.sh psql -d "$DB" -tA -q -v ON_ERROR_STOP=1 "$@"; }
Q() { bash scripts/cluster.sh psql -d "$DB" -tA -q -v VERBOSITY=sqlstate "$@" 2>&1; }

finish() {
  bash scripts/cluster.sh psql -d postgres -q -c "SET client_min_messages = warning" \
    -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "DROP ROLE IF EXISTS guarantee_chunks_other"
}
tap_on_exit finish

bash scripts/cluster.sh psql -d postgres -q -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" \
  -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" \
  -c "DROP ROLE IF EXISTS guarantee_chunks_other" -c "CREATE ROLE guarantee_chunks_other" \
  || { not_ok "setup: could not create the database $DB and the role guarantee_chunks_other"; exit; }
P >/dev/null <<'SQL' || { not_ok "setup: could not create the extension and the table passes"; exit; }
SET client_min_messages = warning;
CREATE EXTENSION parallel_guarantee;
-- The README's way: the schema on the search_path, and the one grant for a role.
ALTER DATABASE pg_guarantee_chunks_async SET search_path = "$user", public, parallel_guarantee;
GRANT USAGE ON SCHEMA parallel_guarantee TO guarantee_chunks_other;
CREATE TABLE passes (id bigint PRIMARY KEY, status text, done_count int NOT NULL DEFAULT 0);
INSERT INTO passes SELECT g, 'IN_PROGRESS' FROM generate_series(1, 20000) g;
SQL

# Each chunk sleeps 0.3 s once, so the run is still going when we look, however busy the machine.
ACTION="WITH pause AS (SELECT pg_sleep(0.3)) UPDATE passes SET status = 'EXPIRED', done_count = done_count + 1 FROM pause WHERE id = ANY (\$1)"
t0=$(date +%s%3N)
id=$(P -c "SELECT submit_chunks('SELECT id FROM passes WHERE id % 2 = 0 ORDER BY id', \$a\$$ACTION\$a\$, chunk_size => 1000, label => 'async chunks')" 2>&1)
t1=$(date +%s%3N)
# Ten chunks of 0.3 s each: a call that waited for the run would take 3 s.
check "submit_chunks returns a run id at once (under 2 s, while the run takes 3 s)" "id fast" \
  "$([[ $id =~ ^[0-9]+$ ]] && echo id || echo "no id: $id") $( [ $((t1 - t0)) -lt 2000 ] && echo fast || echo "slow: $((t1 - t0)) ms")"
[[ $id =~ ^[0-9]+$ ]] || id=0
check "its status is running, under its label" "running|async chunks" "$(P -c "SELECT status || '|' || label FROM parallel_guarantee_chunk_status($id)")"

# Poll (bounded) until a few chunks are done, then cancel from another session.
for _ in $(seq 1 2400); do
  [ "$(P -c "SELECT chunks_done >= 3 FROM parallel_guarantee_chunk_runs WHERE run_id = $id")" = t ] && break
  sleep 0.05
done
echo "# before the cancel: $(P -c "SELECT string_agg(chunk_no || ':' || state, ' ' ORDER BY chunk_no) FROM parallel_guarantee_chunks WHERE run_id = $id")"
check "another role neither sees nor cancels it (42704)" "ERROR:  42704" \
  "$(Q -c "SET ROLE guarantee_chunks_other" -c "SELECT parallel_guarantee_cancel($id)" | grep -m1 ERROR)"
check "its own role cancels it the way it cancels any run, from the activity view (kind|cancelled)" "chunked|true" \
  "$(P -c "SELECT kind || '|' || parallel_guarantee_cancel(run_id) FROM parallel_guarantee_activity WHERE run_id = $id AND database = current_database()")"
check "waiting (parallel_guarantee_wait, as for any run) returns it cancelled, its kind chunked, part done" "cancelled|chunked|t" \
  "$(P -c "SELECT w.status || '|' || w.kind || '|' || CASE WHEN c.chunks_done BETWEEN 3 AND c.chunks_total - 1 THEN 't' ELSE c.chunks_done || ' of ' || c.chunks_total END
             FROM parallel_guarantee_wait($id, '60 s') w JOIN parallel_guarantee_chunk_runs c USING (run_id)")"
echo "# after the cancel: $(P -c "SELECT string_agg(chunk_no || ':' || state || ':' || attempts, ' ' ORDER BY chunk_no) FROM parallel_guarantee_chunks WHERE run_id = $id")"
check "cancelling it again (parallel_guarantee_cancel) returns false with a NOTICE naming its status" \
  "NOTICE:  chunked run $id is not in progress: its status is cancelled|f" \
  "$(P -c "SELECT parallel_guarantee_cancel($id)" 2>&1 | paste -sd'|')"
check "no worker of it is left, and no run slot (workers|slots)" "0|0" \
  "$(P -c "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel_guarantee worker' AND datname = current_database())
                 || '|' || (SELECT count(*) FROM parallel_guarantee_activity WHERE run_id = $id AND database = current_database())" 2>&1)"
check "resume_chunks finishes it" "done|10" "$(P -c "SELECT status || '|' || chunks_done FROM resume_chunks($id, notice_every => 0)")"
check "exactly the even ids are expired, each once" "10000|10000|0" \
  "$(P -c "SELECT count(*) FILTER (WHERE status = 'EXPIRED') || '|' || count(*) FILTER (WHERE done_count = 1) || '|' || count(*) FILTER (WHERE done_count > 1 OR (id % 2 = 1 AND status = 'EXPIRED')) FROM passes")"
check "unknown run ids are a clear error (42704)" "ERROR:  42704" "$(Q -c "SELECT parallel_guarantee_chunk_status(-5)" | grep -m1 ERROR)"
check "the history has one chunked run, the one submitted and resumed (runs|run id|label)" "1|$id|async chunks" \
  "$(P -c "SELECT count(*) || '|' || max(run_id) || '|' || max(label) FROM parallel_guarantee_chunk_runs" 2>&1)"

# The caller of run_in_chunks cancelled, by pg_cancel_backend once 3 chunks are done and by
# its own statement_timeout: its error is 57014, its DETAIL says the committed chunks stay
# committed, its HINT names the run's id and the call that resumes it.  That very call, run
# as the HINT gives it, finishes the run; its progress NOTICE counts the chunks done before
# it (10 of 10); every odd id is expired once, the even ones are untouched.
OUT=test/out/chunks_async
mkdir -p "$OUT"
ODD_KEYS="SELECT id FROM passes WHERE id % 2 = 1 ORDER BY id"
caller_cancelled() {  # caller_cancelled NAME LABEL [SETTING]: the call, its output (verbose) in $OUT/NAME.txt
  P -c "UPDATE passes SET status = 'IN_PROGRESS', done_count = 0" >/dev/null
  { [ -n "${3:-}" ] && echo "$3;"
    echo "SELECT status FROM run_in_chunks('$ODD_KEYS', \$a\$$ACTION\$a\$, chunk_size => 1000, label => '$2');"
  } | bash scripts/cluster.sh psql -d "$DB" -tA -q -v VERBOSITY=verbose >"$OUT/$1.txt" 2>&1 &
  local call=$! run resume
  if [ -z "${3:-}" ]; then   # cancelled from another session once 3 chunks are done (bounded: 60 s)
    for _ in $(seq 1 1200); do
      [ "$(P -c "SELECT chunks_done >= 3 FROM parallel_guarantee_chunk_runs WHERE label = '$2'")" = t ] && break
      sleep 0.05
    done
    P -c "SELECT pg_cancel_backend(caller_pid) FROM parallel_guarantee_activity WHERE label = '$2' AND database = current_database()" >/dev/null
  fi
  wait $call
  run=$(P -c "SELECT max(run_id) FROM parallel_guarantee_chunk_runs WHERE label = '$2'")
  sed 's/^/#   /' "$OUT/$1.txt" | grep -E 'ERROR|DETAIL|HINT'
  check "$1: the caller gets 57014, a DETAIL that committed chunks stay committed, a HINT naming parallel_guarantee.resume_chunks($run)" \
    "ERROR:  57014|committed chunks stay committed|parallel_guarantee.resume_chunks(${run:-none})" \
    "$(grep -m1 '^ERROR' "$OUT/$1.txt" | cut -c1-13)|$(grep -m1 '^DETAIL' "$OUT/$1.txt" | grep -q "Chunked run ${run:-none} .*they stay committed" && echo 'committed chunks stay committed')|$(grep -m1 '^HINT' "$OUT/$1.txt" | grep -oE 'parallel_guarantee\.resume_chunks\([0-9]+\)')"
  check "$1: the run ends cancelled, part done" "cancelled|true" \
    "$(P -c "SELECT w.status || '|' || (c.chunks_done BETWEEN 1 AND c.chunks_total - 1) FROM parallel_guarantee_wait(${run:-0}, '30 s') w JOIN parallel_guarantee_chunk_runs c USING (run_id)" 2>&1)"
  resume=$(sed -n 's/^HINT:  .* with \(SELECT \* FROM parallel_guarantee\.resume_chunks([0-9]*)\); .*/\1/p' "$OUT/$1.txt")
  echo "#   the HINT's statement: ${resume:-none}"
  P -c "${resume:-SELECT 'no statement in the HINT'}" >"$OUT/$1-resume.txt" 2>&1
  check "$1: the HINT's statement finishes the run (run|status|chunks total|chunks done) and its progress NOTICE counts the chunks done before it" \
    "${run:-none}|done|10|10|10 of 10 chunks done" \
    "$(grep -m1 -E '^[0-9]+\|' "$OUT/$1-resume.txt" | cut -d"|" -f1-4)|$(grep -oE '[0-9]+ of [0-9]+ chunks done' "$OUT/$1-resume.txt" | tail -1)"
  check "$1: every odd id expired exactly once, no even id touched (odd expired once|even touched)" "10000|0" \
    "$(P -c "SELECT count(*) FILTER (WHERE id % 2 = 1 AND status = 'EXPIRED' AND done_count = 1) || '|' || count(*) FILTER (WHERE id % 2 = 0 AND done_count <> 0) FROM passes")"
}
caller_cancelled "caller cancelled" "caller cancelled"
caller_cancelled "caller timed out" "caller timed out" "SET statement_timeout = '1500ms'"
