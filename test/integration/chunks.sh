#!/usr/bin/env bash
# Chunked runs (run_in_chunks, resume_chunks) under concurrency and interruption: new
# matching rows inserted while a run expires passes (1), the caller cancelled after some
# chunks and the run resumed (2), the caller's statement_timeout mid-run and a resume (3).
# The end state is compared with that of an uninterrupted run on the same data (0).  Then
# two workers: a cancel while the helper still holds a chunk (4), a chunk failing while the
# helper is mid-chunk (5); a resume from a session with another DateStyle (6); float8 keys
# (7); the helper terminated mid-chunk (8).  Each check prints "ok - ..." or "not ok - ..."; the exit status is 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
. test/integration/data/tap.sh
plan 48
DB=pg_guarantee_chunks
OUT=$ROOT/test/out/chunks
mkdir -p "$OUT"
chown postgres: "$OUT" 2>/dev/null || true
P() { bash scripts/cluster.sh psql -d "$DB" -tA -q "$@"; }
# Polls a query until it returns the wanted value (bounded: 30 s).
wait_for() {  # wait_for WANTED QUERY
  for _ in $(seq 1 300); do
    [ "$(P -c "$2" 2>/dev/null)" = "$1" ] && return 0
    sleep 0.1
  done
  return 1
}
# Polls until a query returns t (bounded: 30 s).
wait_true() { wait_for t "$1"; }
finish() {
  # Our background callers and their workers go with the database.
  bash scripts/cluster.sh psql -d postgres -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null
}
tap_on_exit finish

bash scripts/cluster.sh psql -d postgres -q -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" \
  || { not_ok "setup: could not create the database $DB"; exit; }
P -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || { not_ok "setup: could not create the extension and tables"; exit; }
SET client_min_messages = warning;
CREATE EXTENSION parallel_guarantee;
-- The README's way to reach the extension's objects: its schema on the database's search_path.
ALTER DATABASE pg_guarantee_chunks SET search_path = "$user", public, parallel_guarantee;
CREATE TABLE passes (
    id          bigint PRIMARY KEY,
    status      text NOT NULL,
    ends_at     timestamptz NOT NULL,
    remaining   integer NOT NULL,
    orig_status text NOT NULL,
    touched     integer NOT NULL DEFAULT 0   -- every change of the row, counted by a trigger
);
CREATE FUNCTION count_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.touched := OLD.touched + 1; RETURN NEW; END $$;
CREATE TRIGGER count_change BEFORE UPDATE ON passes FOR EACH ROW EXECUTE FUNCTION count_change();
CREATE TABLE expected (id bigint PRIMARY KEY);
-- 30,000 passes, the same every time: 9,714 match (a third expired already, 40 % ended,
-- every 7th with nothing left); 39 chunks of 250.
CREATE FUNCTION reset_passes() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE passes, expected;
  INSERT INTO passes (id, status, ends_at, remaining, orig_status)
  SELECT g, s, CASE WHEN g % 5 < 2 THEN timestamptz '2020-01-01' + g * interval '1 minute'
                    ELSE timestamptz '2999-01-01' + g * interval '1 minute' END,
         CASE WHEN g % 7 = 0 THEN 0 ELSE 1 + g % 30 END, s
    FROM generate_series(1, 30000) g,
         LATERAL (SELECT CASE WHEN g % 3 = 0 THEN 'EXPIRED' ELSE 'IN_PROGRESS' END AS s) x;
  INSERT INTO expected SELECT id FROM passes WHERE status = 'IN_PROGRESS' AND (ends_at < now() OR remaining = 0);
  ANALYZE passes;
  RETURN (SELECT count(*) FROM expected);
END $$;
-- expected rows expired once / expected rows not expired / other rows changed / rows changed twice
CREATE VIEW verdict AS
SELECT count(*) FILTER (WHERE e.id IS NOT NULL AND p.status = 'EXPIRED' AND p.touched = 1) || '/' ||
       count(*) FILTER (WHERE e.id IS NOT NULL AND NOT (p.status = 'EXPIRED' AND p.touched = 1)) || '/' ||
       count(*) FILTER (WHERE e.id IS NULL AND (p.touched <> 0 OR p.status <> p.orig_status)) || '/' ||
       count(*) FILTER (WHERE p.touched > 1) AS v
  FROM passes p LEFT JOIN expected e USING (id);
-- The whole table, as one value.
CREATE VIEW fingerprint AS
SELECT md5(string_agg(id || ':' || status || ':' || touched, ',' ORDER BY id)) AS f FROM passes;
SQL

KEYS="SELECT id FROM passes WHERE status = 'IN_PROGRESS' AND (ends_at < now() OR remaining = 0) ORDER BY id"
# Slowish chunks: 50 ms of sleep each, once per chunk (a materialized CTE), besides the update.
ACTION="WITH pause AS MATERIALIZED (SELECT pg_sleep(0.05)) UPDATE passes SET status = 'EXPIRED' FROM pause WHERE id = ANY (\$1)"
MATCHING=9714
CHUNKS=39

# run_in_chunks as one psql call: run_chunks LABEL OUTFILE [SETTING...] [-- EXTRA-ARGS]
run_chunks() {
  local label=$1 out=$2; shift 2
  local extra=""
  { echo "SET client_min_messages = warning;"
    for s in "$@"; do case $s in --*) extra=", ${s#--}" ;; *) echo "$s;" ;; esac; done
    echo "SELECT run_id, status, chunks_total, chunks_done, chunks_skipped, rows_changed FROM run_in_chunks(\$k\$$KEYS\$k\$, \$a\$$ACTION\$a\$, chunk_size => 250, label => '$label'$extra);"
  } | bash scripts/cluster.sh psql -d "$DB" -tA -q -v VERBOSITY=sqlstate >"$out" 2>&1
}
run_of() { P -c "SELECT max(run_id) FROM parallel_guarantee_chunk_runs WHERE label = '$1'"; }
caller_of() { P -c "SELECT caller_pid FROM parallel_guarantee_activity WHERE label = '$1' AND database = current_database()"; }
done_chunks() { P -c "SELECT count(*) FROM parallel_guarantee_chunks WHERE run_id = $1 AND state = 'done'"; }

# 0. The uninterrupted run: the reference end state.
check "setup: $MATCHING passes match" "$MATCHING" "$(P -c 'SELECT reset_passes()')"
run_chunks plain "$OUT/plain.txt"
check "uninterrupted: the run is done with every chunk" "done|$CHUNKS|$CHUNKS|0|$MATCHING" "$(cut -d'|' -f2- "$OUT/plain.txt")"
check "uninterrupted: the matching passes expired once each, nothing else changed" "$MATCHING/0/0/0" "$(P -c 'SELECT v FROM verdict')"
REFERENCE=$(P -c "SELECT f FROM fingerprint")

# 0b. Two workers, a NOTICE every 4 chunks: the coordinator reports the progress of both
#     workers (chunks committed by either), with the run's total.
P -c "SELECT reset_passes()" >/dev/null
bash scripts/cluster.sh psql -d "$DB" -tA -q -c "SELECT status FROM run_in_chunks(\$k\$$KEYS\$k\$, \$a\$$ACTION\$a\$, chunk_size => 250, workers => 2, notice_every => 4, label => 'notices')" >"$OUT/notices.txt" 2>&1
NOTICED=$(grep -oE 'chunk run [0-9]+: [0-9]+ of [0-9]+ chunks done,' "$OUT/notices.txt" | awk '{print $4 "/" $6}' | paste -sd' ')
check_true "two workers: progress NOTICEs count both workers' chunks, rising, out of $CHUNKS ($NOTICED)" \
  "$(echo "$NOTICED" | awk -v total=$CHUNKS '{ ok = NF >= 2; prev = 0; for (i = 1; i <= NF; i++) { split($i, a, "/"); if (a[1] <= prev || a[2] != total) ok = 0; prev = a[1] } print ok ? "t" : "f" }')" "$(cat "$OUT/notices.txt")"
check "two workers: the run is done, the passes expired once each" "done $MATCHING/0/0/0" "$(tail -1 "$OUT/notices.txt") $(P -c 'SELECT v FROM verdict')"

# 1. New matching passes are inserted while the run goes on: they are not part of its key
#    set, so they stay untouched; the original set is expired exactly once.
P -c "SELECT reset_passes()" >/dev/null
run_chunks concurrent "$OUT/concurrent.txt" &
CALL=$!
if wait_true "SELECT count(*) >= 3 FROM parallel_guarantee_chunks c JOIN parallel_guarantee_chunk_runs r USING (run_id) WHERE r.label = 'concurrent' AND c.state = 'done'"; then
  RUN=$(run_of concurrent)
  # 6 batches of 100, ids below and above the existing ones, each in its own transaction,
  # which notes how many chunks were done when it committed.
  P -c "CREATE TABLE inserted (batch int, chunks_done_then bigint)" >/dev/null
  for b in 1 2 3 4 5 6; do
    P -c "BEGIN" \
      -c "INSERT INTO passes (id, status, ends_at, remaining, orig_status)
          SELECT CASE WHEN g % 2 = 0 THEN -($b * 1000 + g) ELSE 100000 + $b * 1000 + g END, 'IN_PROGRESS',
                 timestamptz '2020-06-01', CASE WHEN g % 3 = 0 THEN 0 ELSE 4 END, 'IN_PROGRESS'
            FROM generate_series(1, 100) g" \
      -c "INSERT INTO inserted SELECT $b, count(*) FROM parallel_guarantee_chunks WHERE run_id = $RUN AND state = 'done'" \
      -c "COMMIT" >/dev/null
    sleep 0.2
  done
  wait $CALL
  check "concurrent inserts: the run is done with every chunk" "done|$CHUNKS|$CHUNKS|0|$MATCHING" "$(cut -d'|' -f2- "$OUT/concurrent.txt")"
  check_true "concurrent inserts: batches committed while the run was going on" \
    "$(P -c "SELECT count(*) >= 3 FROM inserted WHERE chunks_done_then < $CHUNKS")" \
    "chunks done when each batch committed: $(P -c "SELECT string_agg(chunks_done_then::text, ' ' ORDER BY batch) FROM inserted")"
  check "concurrent inserts: the new matching passes are untouched (count/still IN_PROGRESS/touched)" "600/600/0" \
    "$(P -c "SELECT count(*) || '/' || count(*) FILTER (WHERE status = 'IN_PROGRESS') || '/' || count(*) FILTER (WHERE touched <> 0) FROM passes WHERE id < 0 OR id > 100000")"
  check "concurrent inserts: exactly the original matching set expired, once each (expired once/not/other/twice)" "$MATCHING/0/0/0" \
    "$(P -c "SELECT v FROM verdict")"
  check "concurrent inserts: the run's key set is the original one (keys_total)" "$MATCHING" \
    "$(P -c "SELECT keys_total FROM parallel_guarantee_chunk_runs WHERE run_id = $RUN")"
  P -c "DELETE FROM passes WHERE id < 0 OR id > 100000" >/dev/null
  check "concurrent inserts: without the new passes, the end state equals the uninterrupted run's" "$REFERENCE" "$(P -c "SELECT f FROM fingerprint")"
else
  wait $CALL
  check "concurrent inserts: the run got going" "3 chunks done" "not seen: $(cat "$OUT/concurrent.txt")"
fi

# resume_and_compare NAME RUN: resumes the run and checks the end state against the reference.
resume_and_compare() {
  local name=$1 run=$2
  P -c "CREATE TABLE done_before_$name AS SELECT chunk_no, finished_at, worker_pid FROM parallel_guarantee_chunks WHERE run_id = $run AND state = 'done'" >/dev/null
  check "$name: resume_chunks finishes the run" "done|$CHUNKS|$CHUNKS|0|$MATCHING" \
    "$(P -c "SET client_min_messages = warning" -c "SELECT status, chunks_total, chunks_done, chunks_skipped, rows_changed FROM resume_chunks($run)" 2>&1)"
  check "$name: the end state equals the uninterrupted run's" "$REFERENCE" "$(P -c "SELECT f FROM fingerprint")"
  check "$name: the matching passes expired once each, nothing else changed" "$MATCHING/0/0/0" "$(P -c 'SELECT v FROM verdict')"
  check "$name: every chunk done once (done/attempts = 1/rows)" "$CHUNKS/$CHUNKS/$MATCHING" \
    "$(P -c "SELECT count(*) FILTER (WHERE state = 'done') || '/' || count(*) FILTER (WHERE attempts = 1) || '/' || sum(rows) FROM parallel_guarantee_chunks WHERE run_id = $run")"
  check "$name: chunks done before the resume were not run again" "0" \
    "$(P -c "SELECT count(*) FROM done_before_$name b JOIN parallel_guarantee_chunks c USING (chunk_no) WHERE c.run_id = $run AND (c.finished_at, c.worker_pid) IS DISTINCT FROM (b.finished_at, b.worker_pid)")"
  check "$name: the run's status is done" "done" "$(P -c "SELECT status FROM parallel_guarantee_chunk_runs WHERE run_id = $run")"
}

# interrupted NAME RUN: the state a cancelled run must be in.
interrupted() {
  local name=$1 run=$2
  wait_for cancelled "SELECT status FROM parallel_guarantee_chunk_runs WHERE run_id = $run"
  check "$name: within 30 s the run's status is cancelled, with SQLSTATE 57014 and a finish time" "cancelled|57014|true" \
    "$(P -c "SELECT status || '|' || coalesce(sqlstate, '-') || '|' || (finished_at IS NOT NULL) FROM parallel_guarantee_chunk_runs WHERE run_id = $run" 2>&1)"
  wait_for 0 "SELECT count(*) FROM parallel_guarantee_activity WHERE run_id = $run AND database = current_database()"
  local done rows
  done=$(done_chunks "$run")
  rows=$(P -c "SELECT coalesce(sum(rows), 0) FROM parallel_guarantee_chunks WHERE run_id = $run AND state = 'done'")
  check_true "$name: stopped part-way (some chunks done, some not)" "$([ "$done" -ge 3 ] && [ "$done" -lt $CHUNKS ] && echo t || echo f)" "$done of $CHUNKS done"
  check "$name: committed chunks stay committed, nothing else changed (expired once/not/other/twice)" "$rows/$((MATCHING - rows))/0/0" \
    "$(P -c 'SELECT v FROM verdict')"
  check "$name: no chunk is left running or failed; the rest is pending" "$((CHUNKS - done))/0" \
    "$(P -c "SELECT count(*) FILTER (WHERE state = 'pending') || '/' || count(*) FILTER (WHERE state IN ('running', 'failed', 'skipped')) FROM parallel_guarantee_chunks WHERE run_id = $run")"
}

# 2. The caller is cancelled (pg_cancel_backend) after K chunks are done, then resumed.
K=10
P -c "SELECT reset_passes()" >/dev/null
run_chunks cancel "$OUT/cancel.txt" &
CALL=$!
if wait_true "SELECT count(*) >= $K FROM parallel_guarantee_chunks c JOIN parallel_guarantee_chunk_runs r USING (run_id) WHERE r.label = 'cancel' AND c.state = 'done'"; then
  RUN=$(run_of cancel)
  P -c "SELECT pg_cancel_backend($(caller_of cancel))" >/dev/null
  wait $CALL
  check "cancel: the caller gets 57014" "ERROR:  57014" "$(grep -m1 '^ERROR' "$OUT/cancel.txt")"
  interrupted cancel "$RUN"
  resume_and_compare cancel "$RUN"
else
  wait $CALL
  check "cancel: $K chunks got done" "$K chunks" "not seen: $(cat "$OUT/cancel.txt")"
fi

# 3. The caller's statement_timeout fires mid-run, then the run is resumed.
P -c "SELECT reset_passes()" >/dev/null
run_chunks timeout "$OUT/timeout.txt" "SET statement_timeout = '1500ms'"
RUN=$(run_of timeout)
check "statement_timeout: the caller gets 57014" "ERROR:  57014" "$(grep -m1 '^ERROR' "$OUT/timeout.txt")"
# The run must be in the history: without its id the checks below fail, none is skipped.
interrupted timeout "${RUN:-0}"
resume_and_compare timeout "${RUN:-0}"

# 4. Two workers; the helper holds a slow chunk (the first chunk it takes: its first row
#    sleeps 6 s) when the caller is cancelled, the coordinator having done every other
#    chunk.  (Which chunk the helper takes first depends on when it starts, so the slow
#    chunk is the helper's first, whatever its number.)  The run may report cancelled, and
#    be resumed, only once no worker of it runs a chunk any more: otherwise the chunk runs
#    twice.
P -c "SELECT reset_passes()" >/dev/null
P >/dev/null <<'SQL'
CREATE SEQUENCE helper_slow_once;
CREATE FUNCTION slow_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF pg_backend_pid() <> (SELECT worker_pid FROM parallel_guarantee_activity
                           WHERE label = 'cancel2' AND database = current_database()) THEN
    -- a sequence: a rollback does not undo it, so only the helper's first row ever sleeps
    IF nextval('helper_slow_once') = 1 THEN PERFORM pg_sleep(6); END IF;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER slow_key BEFORE UPDATE ON passes FOR EACH ROW EXECUTE FUNCTION slow_key();
SQL
run_chunks cancel2 "$OUT/cancel2.txt" "--workers => 2" &
CALL=$!
# The coordinator does every other chunk and then waits for the helper's chunk.
HELD=""
if wait_true "SELECT count(*) = $((CHUNKS - 1)) FROM parallel_guarantee_chunks c JOIN parallel_guarantee_chunk_runs r USING (run_id) WHERE r.label = 'cancel2' AND c.state = 'done'"; then
  HELD=$(P -c "SELECT chunk_no || ':' || (c.worker_pid <> a.worker_pid) FROM parallel_guarantee_chunks c JOIN parallel_guarantee_chunk_runs r USING (run_id)
                 JOIN parallel_guarantee_activity a ON a.run_id = r.run_id AND a.database = current_database()
                WHERE r.label = 'cancel2' AND c.state = 'running'")
fi
if [[ $HELD =~ ^[0-9]+:true$ ]]; then
  K=${HELD%%:*}
  RUN=$(run_of cancel2)
  HELPER=$(P -c "SELECT worker_pid FROM parallel_guarantee_chunks WHERE run_id = $RUN AND chunk_no = $K")
  echo "# two workers, cancel: the helper (pid $HELPER) holds chunk $K, the coordinator did the other $((CHUNKS - 1))"
  P -c "SELECT pg_cancel_backend($(caller_of cancel2))" >/dev/null
  wait $CALL
  check "two workers, cancel: the caller gets 57014" "ERROR:  57014" "$(grep -m1 '^ERROR' "$OUT/cancel2.txt")"
  wait_for cancelled "SELECT status FROM parallel_guarantee_chunk_runs WHERE run_id = $RUN"
  wait_for 0 "SELECT count(*) FROM parallel_guarantee_activity WHERE run_id = $RUN AND database = current_database()"
  STATE=$(P -c "SELECT (SELECT status FROM parallel_guarantee_chunk_runs WHERE run_id = $RUN) || '/' ||
                       (SELECT count(*) FROM pg_stat_activity WHERE pid = $HELPER) || '/' ||
                       (SELECT state FROM parallel_guarantee_chunks WHERE run_id = $RUN AND chunk_no = $K)")
  check "two workers, cancel: once the run is over (cancelled, no run slot), its helper is gone and the helper's chunk is pending (status/helpers alive/chunk)" \
    "cancelled/0/pending" "$STATE"
  P -c "SET client_min_messages = warning" -c "SELECT status FROM resume_chunks($RUN)" >"$OUT/cancel2-resume.txt" 2>&1
  check "two workers, cancel, resume: the run is done" "done" "$(cat "$OUT/cancel2-resume.txt")"
  check "two workers, cancel, resume: the matching passes expired once each (expired once/not/other/twice)" "$MATCHING/0/0/0" "$(P -c 'SELECT v FROM verdict')"
  check "two workers, cancel, resume: no pass changed twice" "0" "$(P -c 'SELECT count(*) FROM passes WHERE touched > 1')"
else
  wait $CALL
  check "two workers, cancel: the helper (not the coordinator) held a chunk while the rest got done" "N:true" \
    "running (chunk:held by the helper): '$HELD'; not done at the end: '$(P -c "SELECT string_agg(chunk_no || ':' || state, ' ' ORDER BY chunk_no) FROM parallel_guarantee_chunks c JOIN parallel_guarantee_chunk_runs r USING (run_id) WHERE r.label = 'cancel2' AND c.state <> 'done'")' / $(cat "$OUT/cancel2.txt")"
fi
P -c "DROP TRIGGER slow_key ON passes" -c "DROP FUNCTION slow_key()" -c "DROP SEQUENCE helper_slow_once" >/dev/null

# 5. Two workers; chunk 5 fails beyond its limits (max_retries 0, max_skipped 0) while the
#    helper is in the middle of chunk 4 (slow: 3 s), the coordinator having done the slow
#    chunk 1 (1 s).  The call must raise chunk 5's own error; chunk 4 did nothing wrong.
P -c "SELECT reset_passes()" >/dev/null
P >/dev/null <<SQL
CREATE TEMP TABLE k AS SELECT id, row_number() OVER (ORDER BY id) AS n FROM expected;
DO \$d\$ BEGIN EXECUTE format(\$f\$CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
  IF NEW.id = %s THEN PERFORM pg_sleep(1); END IF;
  IF NEW.id = %s THEN PERFORM pg_sleep(3); END IF;
  IF NEW.id = %s THEN RAISE EXCEPTION 'pass %% is locked', NEW.id USING ERRCODE = 'UE001'; END IF;
  RETURN NEW;
END \$\$\$f\$, (SELECT id FROM k WHERE n = 50), (SELECT id FROM k WHERE n = 800), (SELECT id FROM k WHERE n = 1050));
END \$d\$;
CREATE TRIGGER refuse BEFORE UPDATE ON passes FOR EACH ROW EXECUTE FUNCTION refuse();
SQL
run_chunks fail2 "$OUT/fail2.txt" "--workers => 2, max_retries => 0"
RUN=$(run_of fail2)
check "two workers, a chunk fails: the call raises the failing chunk's SQLSTATE" "ERROR:  UE001" "$(grep -m1 '^ERROR' "$OUT/fail2.txt")"
check "two workers, a chunk fails: the run records chunk 5's error" "UE001|chunk 5 failed after 1 attempt: pass $(P -c "SELECT id FROM expected ORDER BY id OFFSET 1049 LIMIT 1") is locked" \
  "$(P -c "SELECT sqlstate || '|' || message FROM parallel_guarantee_chunk_runs WHERE run_id = $RUN")"
check "two workers, a chunk fails: only chunk 5 is failed (the other worker's chunk is not)" "5:UE001" \
  "$(P -c "SELECT string_agg(chunk_no || ':' || sqlstate, ' ' ORDER BY chunk_no) FROM parallel_guarantee_chunks WHERE run_id = $RUN AND state = 'failed'")"
P -c "DROP TRIGGER refuse ON passes" >/dev/null
check "two workers, a chunk fails, resume: done" "done" "$(P -c "SET client_min_messages = warning" -c "SELECT status FROM resume_chunks($RUN)" 2>&1)"
check "two workers, a chunk fails, resume: the end state equals the uninterrupted run's" "$REFERENCE" "$(P -c "SELECT f FROM fingerprint")"

# 6. Resumed from a session with another DateStyle: the keys are the same dates.  Keys 1-12
#    February, 6 per chunk; the first call (DateStyle SQL, DMY) stops at chunk 1.
P >/dev/null <<'SQL'
CREATE TABLE days (d date PRIMARY KEY, hits integer NOT NULL DEFAULT 0);
INSERT INTO days SELECT date '2024-01-01' + g FROM generate_series(0, 365) g;
CREATE FUNCTION refuse_day() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN IF NEW.d = date '2024-02-03' THEN RAISE EXCEPTION 'not now' USING ERRCODE = 'UE002'; END IF; RETURN NEW; END $$;
CREATE TRIGGER refuse_day BEFORE UPDATE ON days FOR EACH ROW EXECUTE FUNCTION refuse_day();
SQL
P -v VERBOSITY=sqlstate -c "SET DateStyle = 'SQL, DMY'" -c "SET client_min_messages = warning" \
  -c "SELECT status FROM run_in_chunks(\$\$SELECT d FROM days WHERE d BETWEEN '2024-02-01' AND '2024-02-12' ORDER BY d\$\$,
        'UPDATE days SET hits = hits + 1 WHERE d = ANY (\$1)', chunk_size => 6, max_retries => 0, label => 'dates')" >"$OUT/dates.txt" 2>&1
RUN=$(run_of dates)
check "DateStyle: the first call stops at chunk 1 (UE002)" "ERROR:  UE002" "$(grep -m1 '^ERROR' "$OUT/dates.txt")"
P -c "DROP TRIGGER refuse_day ON days" >/dev/null
P -c "SET client_min_messages = warning" -c "SELECT status FROM resume_chunks($RUN)" >"$OUT/dates-resume.txt" 2>&1
check "DateStyle: resumed with DateStyle ISO, MDY, exactly 1-12 February are updated" "2024-02-01..2024-02-12: 12" \
  "$(P -c "SELECT min(d) || '..' || max(d) || ': ' || count(*) FROM days WHERE hits > 0")"

# 7. float8 keys, the caller with extra_float_digits = 0 (the pre-12 default some clients
#    still set): every key is processed.
P >/dev/null <<'SQL'
CREATE TABLE readings (v float8 PRIMARY KEY, hits integer NOT NULL DEFAULT 0);
INSERT INTO readings SELECT g / 3.0 FROM generate_series(1, 20) g;
SQL
P -c "SET extra_float_digits = 0" -c "SET client_min_messages = warning" \
  -c "SELECT status, rows_changed FROM run_in_chunks('SELECT v FROM readings', 'UPDATE readings SET hits = hits + 1 WHERE v = ANY (\$1)', chunk_size => 10)" >"$OUT/floats.txt" 2>&1
check "float8 keys, extra_float_digits = 0: every key's row updated once (run status|rows changed / rows hit once)" "done|20 / 20" \
  "$(cat "$OUT/floats.txt") / $(P -c "SELECT count(*) FROM readings WHERE hits = 1")"

# 8. Two workers; the helper is terminated (pg_terminate_backend) in the middle of a chunk.
#    Its chunk rolls back and stays pending; the coordinator does it once the helper is
#    gone, so the call ends done with every row changed once.
P >/dev/null <<'SQL'
CREATE TABLE slow_rows (id int PRIMARY KEY, touched int NOT NULL DEFAULT 0);
INSERT INTO slow_rows SELECT g FROM generate_series(1, 100) g;
SQL
P -c "SET client_min_messages = warning" -c "SELECT status || '|' || chunks_done || '|' || rows_changed FROM run_in_chunks('SELECT id FROM slow_rows ORDER BY id',
        'UPDATE slow_rows SET touched = touched + 1 FROM pg_sleep(0.3) WHERE id = ANY (\$1)', chunk_size => 10, workers => 2, label => 'helper-killed')" >"$OUT/helper-killed.txt" 2>&1 &
CALL=$!
HELPER_Q="SELECT pid FROM pg_stat_activity WHERE backend_type = 'parallel_guarantee worker' AND datname = current_database()
            AND pid NOT IN (SELECT worker_pid FROM parallel_guarantee_activity WHERE worker_pid IS NOT NULL)
            AND pid IN (SELECT worker_pid FROM parallel_guarantee_chunks c JOIN parallel_guarantee_chunk_runs r USING (run_id)
                         WHERE r.label = 'helper-killed' AND c.state = 'running')"
if wait_true "SELECT count(*) = 1 FROM ($HELPER_Q) h"; then
  P -c "SELECT pg_terminate_backend(pid) FROM ($HELPER_Q) h" >/dev/null
  wait $CALL
  check "helper terminated mid-chunk: the call ends done with all 10 chunks and 100 rows (status|chunks done|rows)" "done|10|100" "$(cat "$OUT/helper-killed.txt")"
  check "helper terminated mid-chunk: every row changed exactly once" "100" "$(P -c "SELECT count(*) FROM slow_rows WHERE touched = 1")"
else
  wait $CALL
  check "helper terminated mid-chunk: the helper was seen on a chunk" "a helper on a chunk" "$(cat "$OUT/helper-killed.txt")"
fi

echo "# $((TAP_RAN - TAP_FAILED)) of $TAP_RAN checks passed"
