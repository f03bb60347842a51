#!/usr/bin/env bash
# pg_dump of a database that uses the extension keeps its history (and chunk history):
# dump, restore into a new database, and compare what the views show.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/integration/data/tap.sh
plan 8
BIN=${PG_BIN:-/usr/lib/postgresql/${PG_MAJOR:-15}/bin}
PORT=${PG_PORT:-54329}
HOST=$(pwd)/.cluster
SRC=pg_guarantee_dump_src
DST=pg_guarantee_dump_dst
OUT=$(pwd)/test/out/dump
mkdir -p "$OUT"
P() { local db=$1; shift; "$BIN/psql" -h "$HOST" -p "$PORT" -U postgres -d "$db" -X -q -tA -v ON_ERROR_STOP=1 "$@"; }

drop_dbs() { for db in $SRC $DST; do P postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"; done; }
tap_on_exit drop_dbs
drop_dbs
P postgres -c "CREATE DATABASE $SRC" || { not_ok "setup: could not create the database $SRC"; exit; }
P $SRC >/dev/null <<'SQL' || { not_ok "setup: could not create the extension, the table and the runs in $SRC"; exit; }
SET client_min_messages = warning;
CREATE EXTENSION parallel_guarantee;
CREATE TABLE big (id int) WITH (parallel_workers = 4);
INSERT INTO big SELECT generate_series(1, 20000);
SELECT status FROM run_with_parallel_guarantee('SELECT count(*) FROM big', force_workers => true, label => 'before dump');
SELECT status FROM run_in_chunks('SELECT id FROM big WHERE id <= 3000', 'UPDATE big SET id = id WHERE id = ANY ($1)', label => 'chunks before dump');
SQL
q_runs="SELECT string_agg(run_id || ':' || coalesce(label, '') || ':' || status || ':' || attempts, ',' ORDER BY run_id) FROM parallel_guarantee_runs"
q_attempts="SELECT count(*) FROM parallel_guarantee_attempts"
q_chunks="SELECT string_agg(run_id || ':' || status || ':' || chunks_done, ',' ORDER BY run_id) FROM parallel_guarantee_chunk_runs"
before_runs=$(P $SRC -c "$q_runs"); before_attempts=$(P $SRC -c "$q_attempts"); before_chunks=$(P $SRC -c "$q_chunks")
next_before=$(P $SRC -c "SELECT last_value FROM parallel_guarantee_run_id_seq")
check "the source database recorded a run and a chunked run" "1:before dump:target_met:1|2:done:3" \
  "$before_runs|$before_chunks"

"$BIN/pg_dump" -h "$HOST" -p "$PORT" -U postgres -Fc -f "$OUT/src.dump" $SRC 2>"$OUT/dump.err"
check "pg_dump of a database with the extension succeeds" "0" "$?"
P postgres -c "CREATE DATABASE $DST" || { not_ok "setup: could not create the database $DST"; exit; }
"$BIN/pg_restore" -h "$HOST" -p "$PORT" -U postgres -d $DST "$OUT/src.dump" 2>"$OUT/restore.err"
check "pg_restore into a new database succeeds without errors" "" "$(cat "$OUT/restore.err")"
check "the restored database has the same runs in parallel_guarantee_runs" "$before_runs" "$(P $DST -c "$q_runs")"
check "the restored database has the same attempts" "$before_attempts" "$(P $DST -c "$q_attempts")"
check "the restored database has the same chunked runs" "$before_chunks" "$(P $DST -c "$q_chunks")"
check "run ids go on after the restored ones (the sequence is dumped too)" "t" \
  "$(P $DST -c "SELECT last_value >= $next_before FROM parallel_guarantee_run_id_seq")"
new_run=$(P $DST -c "SET client_min_messages = warning; SELECT run_id FROM run_with_parallel_guarantee('SELECT count(*) FROM big', force_workers => true, label => 'after restore')" 2>&1)
check "a new run in the restored database gets a fresh run id (above $next_before)" "t" \
  "$([[ $new_run =~ ^[0-9]+$ ]] && [ "$new_run" -gt "$next_before" ] && echo t || echo "run id '$new_run'")"
