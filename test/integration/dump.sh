#!/usr/bin/env bash
# pg_dump of a database that uses the extension keeps its history (both kinds of run), its
# schema and the one grant, and run ids go on above the restored ones:
#   - into a new database of the same cluster (pg_restore -d);
#   - into a fresh cluster (pg_restore -C, as when moving a database to another server):
#     run ids are unique in the cluster from 1.0, and a fresh cluster's counter starts at 0,
#     so only the database's own run-id sequence (dumped with it) keeps a new id above the
#     restored ones.  The source database's ids are made to come from the cluster counter
#     (another database's runs take ids in between), so the check fails if the sequence is
#     not raised to the ids the database got.
#
# Needs the throwaway cluster (bash scripts/cluster.sh start; PG_BIN, PG_PORT as for it).
# Creates and drops the databases pg_guarantee_dump_src, _dst and _other there, and the role
# guarantee_dump_batch; starts and stops a private cluster in test/out/dump_fresh on port
# $DUMP_PORT (default 54363).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
. test/integration/data/tap.sh
plan 16
BIN=${PG_BIN:-/usr/lib/postgresql/${PG_MAJOR:-15}/bin}
PORT=${PG_PORT:-54329}
HOST=$ROOT/.cluster
SRC=pg_guarantee_dump_src
DST=pg_guarantee_dump_dst
OTHER=pg_guarantee_dump_other
ROLE=guarantee_dump_batch
S=parallel_guarantee
OUT=$ROOT/test/out/dump
mkdir -p "$OUT"
PC_NAME=dump_fresh
PC_PORT=${DUMP_PORT:-54363}
. test/integration/data/private_cluster.sh
P() { local db=$1; shift; "$BIN/psql" -h "$HOST" -p "$PORT" -U postgres -d "$db" -X -q -tA -v ON_ERROR_STOP=1 "$@"; }
F() { local db=$1; shift; pc_psql -d "$db" -q -tA -v ON_ERROR_STOP=1 "$@"; }

drop_dbs() {
  for db in $SRC $DST $OTHER; do P postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"; done
  P postgres -c "SET client_min_messages = warning" -c "DROP ROLE IF EXISTS $ROLE"
}
cleanup() { drop_dbs; pc_stop; }
tap_on_exit cleanup
drop_dbs
P postgres -c "CREATE DATABASE $SRC" -c "CREATE DATABASE $OTHER" -c "CREATE ROLE $ROLE" || { not_ok "setup: could not create the databases and the role"; exit; }
# The other database's runs take ids from the cluster's counter between the source's runs.
P $OTHER >/dev/null <<SQL || { not_ok "setup: could not create the extension and a table in $OTHER"; exit; }
CREATE EXTENSION parallel_guarantee;
CREATE TABLE small (id int) WITH (parallel_workers = 4);
INSERT INTO small SELECT generate_series(1, 1000);
SQL
other_runs() {  # N: runs in the other database
  local i
  for i in $(seq 1 "$1"); do
    P $OTHER -c "SET client_min_messages = warning" -c "SELECT $S.run_with_parallel_guarantee('SELECT count(*) FROM small', force_workers => true)" >/dev/null
  done
}
# The source: as the README sets a database up (the schema on its search_path, the one grant).
other_runs 2
P $SRC >/dev/null <<SQL || { not_ok "setup: could not create the extension, the table and the runs in $SRC"; exit; }
SET client_min_messages = warning;
CREATE EXTENSION parallel_guarantee;
ALTER DATABASE $SRC SET search_path = "\$user", public, $S;
GRANT USAGE ON SCHEMA $S TO $ROLE;
CREATE TABLE big (id int) WITH (parallel_workers = 4);
INSERT INTO big SELECT generate_series(1, 20000);
SELECT status FROM $S.run_with_parallel_guarantee('SELECT count(*) FROM big', force_workers => true, label => 'before dump');
SQL
other_runs 2
P $SRC >/dev/null <<SQL || { not_ok "setup: could not make the chunked and the submitted run in $SRC"; exit; }
SET client_min_messages = warning;
SELECT status FROM $S.run_in_chunks('SELECT id FROM big WHERE id <= 3000', 'UPDATE big SET id = id WHERE id = ANY (\$1)', label => 'chunks before dump');
SELECT status FROM $S.parallel_guarantee_wait($S.submit_parallel_guarantee('SELECT count(*) FROM big', force_workers => true, label => 'submitted before dump'), '20 s');
SQL
q_runs="SELECT string_agg(run_id || ':' || kind || ':' || coalesce(label, '') || ':' || status || ':' || coalesce(attempts::text, '-'), ',' ORDER BY run_id) FROM $S.parallel_guarantee_runs"
q_attempts="SELECT count(*) FROM $S.parallel_guarantee_attempts"
q_chunks="SELECT string_agg(run_id || ':' || status || ':' || chunks_done, ',' ORDER BY run_id) FROM $S.parallel_guarantee_chunk_runs"
q_max_id="SELECT max(run_id) FROM $S.parallel_guarantee_runs"
before_runs=$(P $SRC -c "$q_runs"); before_attempts=$(P $SRC -c "$q_attempts"); before_chunks=$(P $SRC -c "$q_chunks")
max_before=$(P $SRC -c "$q_max_id")
next_before=$(P $SRC -c "SELECT last_value FROM $S.parallel_guarantee_run_id_seq")
check "the source database recorded a guaranteed run, a chunked run (3 chunks done) and a submitted run" \
  "guaranteed:before dump:target_met:1,chunked:chunks before dump:done:-,guaranteed:submitted before dump:target_met:1|done:3" \
  "$(echo "$before_runs" | tr ',' '\n' | cut -d: -f2- | paste -sd,)|$(echo "$before_chunks" | cut -d: -f2-)"
check "its run ids came from the cluster's counter (another database's runs took ids between), and its sequence was raised to the last" \
  "ids not consecutive, sequence = $max_before" \
  "$(ids=$(echo "$before_runs" | tr ',' '\n' | cut -d: -f1 | paste -sd' ')
     read -r i1 i2 i3 <<<"$ids"
     [ $((i2 - i1)) -gt 1 ] && [ $((i3 - i2)) -ge 1 ] && echo -n "ids not consecutive" || echo -n "ids $ids"
     echo ", sequence = $next_before")"

"$BIN/pg_dump" -h "$HOST" -p "$PORT" -U postgres -Fc -f "$OUT/src.dump" $SRC 2>"$OUT/dump.err"
check "pg_dump of a database with the extension succeeds" "0" "$?"
# The restore script: the schema is not a member of the extension, so it is dumped as a
# schema of its own and must come back before the extension that is created in it.
"$BIN/pg_restore" -f "$OUT/src.sql" "$OUT/src.dump"
line_schema=$(grep -n -m1 "^CREATE SCHEMA $S;" "$OUT/src.sql" | cut -d: -f1)
line_ext=$(grep -n -m1 "^CREATE EXTENSION IF NOT EXISTS parallel_guarantee WITH SCHEMA $S;" "$OUT/src.sql" | cut -d: -f1)
check "the restore script has CREATE SCHEMA $S before CREATE EXTENSION parallel_guarantee WITH SCHEMA $S" "schema first" \
  "$([ -n "$line_schema" ] && [ -n "$line_ext" ] && [ "$line_schema" -lt "$line_ext" ] && echo "schema first" || echo "CREATE SCHEMA at line '${line_schema}', CREATE EXTENSION at line '${line_ext}'")"

# 1. Into a new database of the same cluster.
P postgres -c "CREATE DATABASE $DST" || { not_ok "setup: could not create the database $DST"; exit; }
"$BIN/pg_restore" -h "$HOST" -p "$PORT" -U postgres -d $DST "$OUT/src.dump" 2>"$OUT/restore.err"
check "pg_restore into a new database succeeds without errors" "" "$(cat "$OUT/restore.err")"
check "the restored database has the same runs in parallel_guarantee_runs (both kinds)" "$before_runs" "$(P $DST -c "$q_runs" 2>&1)"
check "the restored database has the same attempts" "$before_attempts" "$(P $DST -c "$q_attempts" 2>&1)"
check "the restored database has the same chunked runs" "$before_chunks" "$(P $DST -c "$q_chunks" 2>&1)"
check "the run-id sequence is restored with its value" "$next_before" "$(P $DST -c "SELECT last_value FROM $S.parallel_guarantee_run_id_seq" 2>&1)"
check "the restored schema $S keeps its comment and the role's USAGE grant, PUBLIC has none, and it is not a member of the extension" \
  "comment t|role usage t|public usage f|member f" \
  "$(P $DST -c "SELECT 'comment ' || (obj_description('$S'::regnamespace, 'pg_namespace') LIKE 'parallel_guarantee: %')::text::char
                      || '|role usage ' || has_schema_privilege('$ROLE', '$S', 'USAGE')::text::char
                      || '|public usage ' || coalesce((SELECT bool_or(a.grantee = 0) FROM aclexplode((SELECT nspacl FROM pg_namespace WHERE nspname = '$S')) a
                                                        WHERE a.privilege_type = 'USAGE'), false)::text::char
                      || '|member ' || EXISTS (SELECT FROM pg_depend WHERE classid = 'pg_namespace'::regclass AND objid = '$S'::regnamespace
                                                 AND refclassid = 'pg_extension'::regclass AND deptype = 'e')::text::char" 2>&1)"
new_run=$(P $DST -c "SET client_min_messages = warning" -c "SELECT run_id FROM $S.run_with_parallel_guarantee('SELECT count(*) FROM big', force_workers => true, label => 'after restore')" 2>&1)
check "a new run in the restored database gets a run id above every restored one (above $max_before)" "t" \
  "$([[ $new_run =~ ^[0-9]+$ ]] && [ "$new_run" -gt "$max_before" ] && echo t || echo "run id '$new_run'")"

# 2. Into a fresh cluster, with the database created by pg_restore -C (its settings come too);
#    the role first, as pg_dumpall --globals-only would bring it.
if ! pc_init; then not_ok "setup: the fresh cluster in $PC_DIR (port $PC_PORT) did not start"; tail -5 "$PC_LOG"; exit; fi
F postgres -c "CREATE ROLE $ROLE" >/dev/null || { not_ok "setup: could not create the role in the fresh cluster"; exit; }
"$BIN/pg_restore" -h "$PC_DIR" -p "$PC_PORT" -U postgres -C -d postgres "$OUT/src.dump" 2>"$OUT/restore-fresh.err"
check "pg_restore -C into a fresh cluster succeeds without errors" "" "$(cat "$OUT/restore-fresh.err")"
check "the fresh cluster's copy has the same runs (both kinds) and chunked runs" "$before_runs|$before_chunks" \
  "$(F $SRC -c "$q_runs" 2>&1)|$(F $SRC -c "$q_chunks" 2>&1)"
check "its database setting search_path came back: the unqualified name resolves to $S's function; the role has USAGE on $S" \
  "$S|t" \
  "$(F $SRC -c "SELECT (SELECT pronamespace::regnamespace::text FROM pg_proc WHERE oid = to_regproc('run_with_parallel_guarantee'))
                      || '|' || has_schema_privilege('$ROLE', '$S', 'USAGE')::text::char" 2>&1)"
fresh_run=$(F $SRC -c "SET client_min_messages = warning" -c "SELECT run_id FROM run_with_parallel_guarantee('SELECT count(*) FROM big', force_workers => true, label => 'after restore')" 2>&1)
check "in the fresh cluster (its run-id counter new) a new run gets an id above every restored one (above $max_before)" "t" \
  "$([[ $fresh_run =~ ^[0-9]+$ ]] && [ "$fresh_run" -gt "$max_before" ] && echo t || echo "run id '$fresh_run'")"
fresh_chunked=$(F $SRC -c "SET client_min_messages = warning" -c "SELECT run_id FROM run_in_chunks('SELECT id FROM big WHERE id <= 100', 'UPDATE big SET id = id WHERE id = ANY (\$1)', label => 'after restore')" 2>&1)
check "and a new chunked run an id above that one" "t" \
  "$([[ $fresh_chunked =~ ^[0-9]+$ ]] && [[ $fresh_run =~ ^[0-9]+$ ]] && [ "$fresh_chunked" -gt "$fresh_run" ] && echo t || echo "run id '$fresh_chunked' after '$fresh_run'")"
