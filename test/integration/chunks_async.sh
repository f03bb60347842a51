#!/usr/bin/env bash
# Submitted chunked runs: submit_chunks returns at once and the run outlives the session;
# status, wait and cancel; a cancelled run resumes without redoing a chunk; another role
# can neither see nor cancel it.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/integration/data/tap.sh
plan 11
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
CREATE TABLE passes (id bigint PRIMARY KEY, status text, done_count int NOT NULL DEFAULT 0);
INSERT INTO passes SELECT g, 'IN_PROGRESS' FROM generate_series(1, 20000) g;
GRANT EXECUTE ON FUNCTION parallel_guarantee_chunk_cancel(bigint) TO guarantee_chunks_other;
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
  "$(Q -c "SET ROLE guarantee_chunks_other" -c "SELECT parallel_guarantee_chunk_cancel($id)" | grep -m1 ERROR)"
check "its own role cancels it the way it cancels any run, from the activity view (kind|cancelled)" "chunked|true" \
  "$(P -c "SELECT kind || '|' || parallel_guarantee_cancel(run_id) FROM parallel_guarantee_activity WHERE run_id = $id AND database = current_database()")"
check "waiting returns it cancelled, part done" "cancelled|t" \
  "$(P -c "SELECT status || '|' || CASE WHEN chunks_done BETWEEN 3 AND total_chunks - 1 THEN 't' ELSE chunks_done || ' of ' || total_chunks END FROM parallel_guarantee_chunk_wait($id, '60 s')")"
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
