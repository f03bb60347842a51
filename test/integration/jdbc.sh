#!/usr/bin/env bash
# JDBC integration test: a client that sets a fetch size (autocommit off, so pgjdbc runs the
# query through a row-limited portal) gets a serial plan, because PostgreSQL never runs a
# row-limited portal in parallel; the same statement through run_with_parallel_guarantee, with
# the same fetch size, gets its 4 workers.  The extension's objects are in the schema
# parallel_guarantee: the client reaches them as a Java program would, with
# currentSchema=public,parallel_guarantee in the JDBC URL or with qualified names; it also
# reads the result row by position (run_id first).  See jdbc/GuaranteeJdbc.java for the checks.
#
# Needs the throwaway cluster (bash scripts/cluster.sh start), javac and Debian's
# /usr/share/java/postgresql.jar.  Port: $PG_PORT (default 54329).  Creates and drops the
# database pg_guarantee_jdbc; builds into test/out/jdbc.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
. test/integration/data/tap.sh
# GuaranteeJdbc's six checks, relayed, and whether it finished.
plan 7
export PG_PORT=${PG_PORT:-54329}
DB=pg_guarantee_jdbc
JAR=${PGJDBC_JAR:-/usr/share/java/postgresql.jar}
BUILD=$ROOT/test/out/jdbc
SRC=$ROOT/test/integration/jdbc/GuaranteeJdbc.java

psql_pg() { bash "$ROOT/scripts/cluster.sh" psql -v ON_ERROR_STOP=1 -q "$@"; }
fail_setup() { not_ok "setup: $*"; exit; }

drop_db() { psql_pg -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1; }

[ -r "$JAR" ] || fail_setup "the PostgreSQL JDBC driver $JAR is missing (apt-get install libpostgresql-jdbc-java)"
command -v javac >/dev/null || fail_setup "javac is missing (apt-get install openjdk-17-jdk-headless)"
bash scripts/cluster.sh status >/dev/null || fail_setup "the cluster is not running on port $PG_PORT (bash scripts/cluster.sh start)"

# 1. The database, the extension and a table that plans 4 workers.
psql_pg -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" \
  || fail_setup "could not create the database $DB"
tap_on_exit drop_db
psql_pg -d "$DB" <<'SQL' || fail_setup "could not create the extension and the table big"
CREATE EXTENSION parallel_guarantee;
CREATE TABLE big (id integer NOT NULL, payload text NOT NULL);
INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 200000) g;
ALTER TABLE big SET (parallel_workers = 4);
VACUUM ANALYZE big;
SQL

# 2. Build and run the client.
rm -rf "$BUILD"
mkdir -p "$BUILD/classes"
javac -nowarn -d "$BUILD/classes" -cp "$JAR" "$SRC" || fail_setup "javac failed on $SRC"
# Its "ok - " and "not ok - " lines are counted here like the script's own.
timeout 120 java -cp "$BUILD/classes:$JAR" GuaranteeJdbc "$PG_PORT" "$DB" >"$BUILD/out.txt" 2>&1
rc=$?
while IFS= read -r line; do
  case $line in
    "ok - "*) ok "${line#ok - }" ;;
    "not ok - "*) not_ok "${line#not ok - }" ;;
    *) echo "$line" ;;
  esac
done <"$BUILD/out.txt"
check "GuaranteeJdbc finished within 120 s (exit status 0, or 1 when a check failed)" "finished" \
  "$([ $rc = 0 ] || [ $rc = 1 ] && echo finished || echo "exit status $rc$([ $rc = 124 ] && echo ': timed out')")"
