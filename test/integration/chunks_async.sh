#!/usr/bin/env bash
# Submitted chunked runs: submit_chunks returns at once and the run outlives the session;
# status, wait and cancel; a cancelled run resumes without redoing a chunk; another role
# can neither see nor cancel it.
set -uo pipefail
cd "$(dirname "$0")/../.."
DB=pg_guarantee_chunks_async
failures=0
check() {  # check DESCRIPTION EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1"; echo "    expected: $2"; echo "    found:    $3"; failures=$((failures + 1)); fi
}
P() { bash scripts/cluster.sh psql -d "$DB" -tA -q -v ON_ERROR_STOP=1 "$@"; }
Q() { bash scripts/cluster.sh psql -d "$DB" -tA -q -v VERBOSITY=sqlstate "$@" 2>&1; }

bash scripts/cluster.sh psql -d postgres -q -c "SET client_min_messages = warning" \
  -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
bash scripts/cluster.sh psql -d postgres -q -c "SET client_min_messages = warning" \
  -c "DROP ROLE IF EXISTS guarantee_chunks_other" -c "CREATE ROLE guarantee_chunks_other"
P >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION parallel_guarantee;
CREATE TABLE passes (id bigint PRIMARY KEY, status text, done_count int NOT NULL DEFAULT 0);
INSERT INTO passes SELECT g, 'IN_PROGRESS' FROM generate_series(1, 20000) g;
GRANT EXECUTE ON FUNCTION parallel_guarantee_chunk_cancel(bigint) TO guarantee_chunks_other;
SQL

# Each chunk sleeps 0.3 s once, so the run is still going when we look, however busy the machine.
ACTION="WITH pause AS (SELECT pg_sleep(0.3)) UPDATE passes SET status = 'EXPIRED', done_count = done_count + 1 FROM pause WHERE id = ANY (\$1)"
id=$(P -c "SELECT submit_chunks('SELECT id FROM passes WHERE id % 2 = 0 ORDER BY id', \$a\$$ACTION\$a\$, chunk_size => 1000, label => 'async chunks')")
check "submit_chunks returns a run id at once" "t" "$( [ "${id:-0}" -gt 0 ] && echo t || echo f)"
check "its status is running, under its label" "running|async chunks" "$(P -c "SELECT status || '|' || label FROM parallel_guarantee_chunk_status($id)")"

# Poll (bounded) until a few chunks are done, then cancel from another session.
for _ in $(seq 1 2400); do
  [ "$(P -c "SELECT chunks_done >= 3 FROM parallel_guarantee_chunk_runs WHERE run_id = $id")" = t ] && break
  sleep 0.05
done
echo "# before the cancel: $(P -c "SELECT string_agg(chunk_no || ':' || state, ' ' ORDER BY chunk_no) FROM parallel_guarantee_chunks WHERE run_id = $id")"
check "another role neither sees nor cancels it (42704)" "ERROR:  42704" \
  "$(Q -c "SET ROLE guarantee_chunks_other" -c "SELECT parallel_guarantee_chunk_cancel($id)" | grep -m1 ERROR)"
check "its own role cancels it" "t" "$(P -c "SELECT parallel_guarantee_chunk_cancel($id)")"
check "waiting returns it cancelled, part done" "cancelled|t" \
  "$(P -c "SELECT status || '|' || CASE WHEN chunks_done BETWEEN 3 AND total_chunks - 1 THEN 't' ELSE chunks_done || ' of ' || total_chunks END FROM parallel_guarantee_chunk_wait($id, '60 s')")"
echo "# after the cancel: $(P -c "SELECT string_agg(chunk_no || ':' || state || ':' || attempts, ' ' ORDER BY chunk_no) FROM parallel_guarantee_chunks WHERE run_id = $id")"
check "cancelling it again says it is not in progress" "f" "$(P -c "SELECT parallel_guarantee_chunk_cancel($id)" 2>/dev/null)"
check "no worker of it is left" "0" \
  "$(P -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel_guarantee worker' AND datname = current_database()")"
check "resume_chunks finishes it" "done|10" "$(P -c "SELECT status || '|' || chunks_done FROM resume_chunks($id, notice_every => 0)")"
check "exactly the even ids are expired, each once" "10000|10000|0" \
  "$(P -c "SELECT count(*) FILTER (WHERE status = 'EXPIRED') || '|' || count(*) FILTER (WHERE done_count = 1) || '|' || count(*) FILTER (WHERE done_count > 1 OR (id % 2 = 1 AND status = 'EXPIRED')) FROM passes")"
check "unknown run ids are a clear error (42704)" "ERROR:  42704" "$(Q -c "SELECT parallel_guarantee_chunk_status(-5)" | grep -m1 ERROR)"

bash scripts/cluster.sh psql -d postgres -q -c "SET client_min_messages = warning" \
  -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "DROP ROLE IF EXISTS guarantee_chunks_other"
exit $((failures > 0))
