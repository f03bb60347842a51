#!/usr/bin/env bash
# Upgrade paths to the default version (1.2.0): the upgraded extension's objects must be
# exactly those of a fresh CREATE EXTENSION, its history and run-id sequence kept.
#
# Since 1.0 the control file fixes `schema = parallel_guarantee`.  Two ways an older version
# can be installed, both tested:
#   (a) in schema parallel_guarantee: CREATE EXTENSION ... VERSION '<old>' under today's
#       control file puts it there.  Every older version the project ships, then updated.
#   (b) in public, as every real 0.x install was made (the old control files had no schema):
#       0.1.0 (database A) and 0.5.1 (database A5), used, then ALTER EXTENSION UPDATE moves
#       every object into schema parallel_guarantee.  To install an old version in public
#       under today's control file, this script writes a secondary control file saying
#       `schema = public` into the server's share/extension directory for the moment of that
#       CREATE EXTENSION, and removes it at once and again on exit.  PostgreSQL takes the
#       schema from the secondary control file of the version whose install script it runs:
#       parallel_guarantee--0.1.0.control, as 0.1.0 is the only version with an install
#       script (CREATE EXTENSION ... VERSION '0.5.1' runs 0.1.0's script, then the updates,
#       which stay in the schema the extension was created in).  The file is written for
#       that base version and for the version asked for.  Run this script against your own
#       (relocated) installation: PG_BIN=<its bin directory>.
# Each check prints "ok - ..." or "not ok - ..." and what it found.
#
# Needs the throwaway cluster (bash scripts/cluster.sh start; PG_BIN, PG_PORT as for it).
# Creates and drops the databases pg_guarantee_upgrade_a (0.1.0 in public), _a5 (0.5.1 in
# public), _b (fresh) and pg_guarantee_upgrade_from_<version> (case (a)), and the role
# guarantee_upgrade_batch; writes the compared listings to test/out/upgrade.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
. test/integration/data/tap.sh
# The default version, and every older version an upgrade starts from, as the project ships
# them (parallel_guarantee.control and the sql/ upgrade scripts).
TO=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" parallel_guarantee.control)
OLDER=$(ls sql/parallel_guarantee--*--*.sql | sed -E 's/.*--([0-9.]+)--[0-9.]+\.sql$/\1/' | sort -uV)
N_OLDER=$(echo "$OLDER" | grep -c .)
# The one version with an install script of its own (the Makefile's BASE_VERSION).
BASE=$(ls sql/parallel_guarantee--*.sql | grep -v -E -- '--[0-9.]+--' | sed -E 's/.*--([0-9.]+)\.sql$/\1/' | grep -vx "$TO")
plan $((48 + 3 * N_OLDER))
BIN=${PG_BIN:-/usr/lib/postgresql/${PG_MAJOR:-15}/bin}
PORT=${PG_PORT:-54329}
HOST=$ROOT/.cluster
A=pg_guarantee_upgrade_a
A5=pg_guarantee_upgrade_a5
B=pg_guarantee_upgrade_b
ROLE=guarantee_upgrade_batch
S=parallel_guarantee   # the extension's schema
OUT=$ROOT/test/out/upgrade
mkdir -p "$OUT"
# The server's extension directory (pg_config of the same bin directory computes it the same
# way the server does, from its own location).
EXTDIR=$("$BIN/pg_config" --sharedir)/extension

P() { local db=$1; shift; bash scripts/cluster.sh psql -d "$db" -tA -q "$@"; }
# As the role, connected as it (trust authentication on the throwaway cluster).
PR() { local db=$1; shift; "$BIN/psql" -h "$HOST" -p "$PORT" -U "$ROLE" -d "$db" -X -tA -q "$@"; }
# The first line of an error with its SQLSTATE ("ERROR:  42501: ..."), or the output.
first_error() { local out; out=$("$@" -v VERBOSITY=verbose 2>&1); grep -m1 -E '^(ERROR|FATAL)' <<<"$out" || echo "no error"; }
# After a check that crashed a backend: wait (bounded: 30 s) until the server, restarted by
# the postmaster, accepts connections again, so that the following checks report on their own.
wait_ready() {
  for _ in $(seq 1 300); do P postgres -c "SELECT 1" >/dev/null 2>&1 && return 0; sleep 0.1; done
}
secondary() { echo "$EXTDIR/parallel_guarantee--$1.control"; }
remove_secondaries() { for v in $OLDER; do rm -f "$(secondary "$v")"; done; }
from_db() { echo "pg_guarantee_upgrade_from_${1//./_}"; }
drop_dbs() {
  for db in $A $A5 $B $(for v in $OLDER; do from_db "$v"; done); do
    P postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
  done
  P postgres -c "SET client_min_messages = warning" -c "DROP ROLE IF EXISTS $ROLE" >/dev/null 2>&1
}
cleanup() { remove_secondaries; drop_dbs; }
tap_on_exit cleanup

# The server must have what the project ships.
INSTALLED=$(P postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'parallel_guarantee'")
[ "$INSTALLED" = "$TO" ] || { not_ok "setup: parallel_guarantee $TO is not the installed default (found '$INSTALLED'; make && make install)"; exit; }
[ -w "$EXTDIR" ] || { not_ok "setup: cannot write the secondary control files into $EXTDIR (run as its owner, against your own installation: PG_BIN)"; exit; }
cleanup
P postgres -c "CREATE DATABASE $A" -c "CREATE DATABASE $A5" -c "CREATE DATABASE $B" -c "CREATE ROLE $ROLE LOGIN" >/dev/null \
  || { not_ok "setup: could not create the databases and the role"; exit; }

# CREATE EXTENSION of an old version in public, as the old control file did it.
create_in_public() {  # DB VERSION
  echo "schema = public" > "$(secondary "$BASE")"
  echo "schema = public" > "$(secondary "$2")"
  P "$1" -v ON_ERROR_STOP=1 -c "CREATE EXTENSION parallel_guarantee VERSION '$2'" >/dev/null
  local rc=$?
  rm -f "$(secondary "$BASE")" "$(secondary "$2")"
  return $rc
}
ext_where() { P "$1" -c "SELECT extversion || '|' || extnamespace::regnamespace FROM pg_extension WHERE extname = 'parallel_guarantee'"; }
# Objects in public other than the test's own table small (and its row types): what an
# install in public left there.
left_in_public() {
  P "$1" -c "SELECT coalesce(string_agg(what, ', ' ORDER BY what), 'nothing') FROM (
      SELECT 'relation ' || relname AS what FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname <> 'small'
      UNION ALL SELECT 'function ' || oid::regprocedure FROM pg_proc WHERE pronamespace = 'public'::regnamespace
      UNION ALL SELECT 'type ' || typname FROM pg_type WHERE typnamespace = 'public'::regnamespace AND typname NOT IN ('small', '_small')) o"
}
# Is the schema parallel_guarantee a member of the extension?  (A fresh install's is not.)
schema_member() {
  P "$1" -c "SELECT EXISTS (SELECT FROM pg_depend WHERE classid = 'pg_namespace'::regclass AND objid = '$S'::regnamespace
                              AND refclassid = 'pg_extension'::regclass AND deptype = 'e')"
}
# The same small table everywhere: 4 workers only when forced.
SMALL="CREATE TABLE small (id int) WITH (parallel_workers = 4); INSERT INTO small SELECT generate_series(1, 1000); ANALYZE small;"
RUN_OLD="SET client_min_messages = warning; SELECT status || '|' || workers_launched FROM run_with_parallel_guarantee('SELECT count(*) FROM small', force_workers => true"
RUN_NEW="SET client_min_messages = warning; SELECT status || '|' || workers_launched FROM $S.run_with_parallel_guarantee('SELECT count(*) FROM small', force_workers => true"

# ---------------------------------------------------------------------------------------
# (b) 0.1.0 in public (database A), used, then updated: the move.
# ---------------------------------------------------------------------------------------
create_in_public "$A" 0.1.0 && P "$A" -v ON_ERROR_STOP=1 -c "$SMALL" >/dev/null \
  || { not_ok "setup: could not create the extension at 0.1.0 in public in $A"; exit; }
check "A: with a secondary control file saying schema = public, CREATE EXTENSION ... VERSION '0.1.0' installs 0.1.0 in public (as the old control file did)" \
  "0.1.0|public" "$(ext_where "$A")"
check "A: 0.1.0 has no history views and no submit function" "||" \
  "$(P "$A" -c "SELECT to_regclass('parallel_guarantee_runs'), to_regclass('parallel_guarantee_attempts'), to_regproc('submit_parallel_guarantee')")"
# The 1.0 library runs the older SQL definitions until the database is updated (README,
# "Upgrading"): a server restarted with the new library serves a 0.x database's nightly job.
check "A: run_with_parallel_guarantee of 0.1.0's SQL, run by the $TO library, works, unqualified in public (forced to 4 workers)" "target_met|4" "$(P "$A" -c "$RUN_OLD)" 2>&1)"
wait_ready
RUN_ID_010=$(P "$A" -c "SELECT last_value FROM public.parallel_guarantee_run_id_seq")

check "A: ALTER EXTENSION parallel_guarantee UPDATE succeeds quietly" "" \
  "$(P "$A" -v ON_ERROR_STOP=1 -c "ALTER EXTENSION parallel_guarantee UPDATE" 2>&1 || echo "failed")"
check "A: the extension is at $TO, recorded in schema $S (pg_extension.extnamespace)" "$TO|$S" "$(ext_where "$A")"
check "A: the run-id sequence moved into $S with its value ($RUN_ID_010)" "$RUN_ID_010" \
  "$(P "$A" -c "SELECT last_value FROM $S.parallel_guarantee_run_id_seq" 2>&1)"
check "A: nothing of the extension is left in public" "nothing" "$(left_in_public "$A")"
check "A: the schema $S is not a member of the extension (as in a fresh install)" "f" "$(schema_member "$A")"
check "A: the history views and the async functions exist in $S" "t" \
  "$(P "$A" -c "SELECT to_regclass('$S.parallel_guarantee_runs') IS NOT NULL AND to_regclass('$S.parallel_guarantee_attempts') IS NOT NULL
                   AND to_regclass('$S.parallel_guarantee_label_summary') IS NOT NULL AND to_regproc('$S.submit_parallel_guarantee') IS NOT NULL
                   AND to_regproc('$S.parallel_guarantee_status') IS NOT NULL AND to_regproc('$S.parallel_guarantee_wait') IS NOT NULL
                   AND to_regproc('$S.parallel_guarantee_cancel') IS NOT NULL")"
check "A: a run after the update succeeds (qualified name)" "target_met|4" "$(P "$A" -c "$RUN_NEW, label => 'after upgrade')" 2>&1)"
check "A: the history records it, with a run id after those of 0.1.0" "1|target_met|4|true" \
  "$(P "$A" -c "SELECT count(*) || '|' || min(status) || '|' || min(workers_launched) || '|' || bool_and(run_id > $RUN_ID_010)
                   FROM $S.parallel_guarantee_runs WHERE label = 'after upgrade'" 2>&1)"
check "A: and its attempts, the last with 4 workers" "true|4|target met" \
  "$(P "$A" -c "SELECT (a.attempt = r.attempts) || '|' || a.workers_launched || '|' || a.outcome FROM $S.parallel_guarantee_attempts a
                   JOIN $S.parallel_guarantee_runs r USING (run_id) WHERE r.label = 'after upgrade' ORDER BY a.attempt DESC LIMIT 1" 2>&1)"
check "A: a submitted run after the update finishes target_met" "target_met|4" \
  "$(P "$A" -c "SELECT status || '|' || workers_launched FROM $S.parallel_guarantee_wait(
                   $S.submit_parallel_guarantee('SELECT count(*) FROM small', force_workers => true, label => 'submitted after upgrade'), '20 s')" 2>&1)"

# ---------------------------------------------------------------------------------------
# (b) 0.5.1 in public (database A5), with history of every kind and a role granted EXECUTE
#     as the 0.5.1 README said, then updated.
# ---------------------------------------------------------------------------------------
create_in_public "$A5" 0.5.1 && P "$A5" -v ON_ERROR_STOP=1 >/dev/null <<SQL || { not_ok "setup: could not create and use 0.5.1 in public in $A5"; exit; }
$SMALL
SET client_min_messages = warning;
-- The 0.5.1 README's grant (EXECUTE was revoked from PUBLIC then).
GRANT EXECUTE ON FUNCTION run_with_parallel_guarantee TO $ROLE;
GRANT SELECT, UPDATE ON small TO $ROLE;
SELECT status FROM parallel_guarantee_wait(submit_parallel_guarantee('SELECT count(*) FROM small', force_workers => true, label => 'submitted before upgrade'), '20 s');
SELECT status FROM run_in_chunks('SELECT id FROM small ORDER BY id', 'UPDATE small SET id = id WHERE id = ANY (\$1)', chunk_size => 400, label => 'chunks before upgrade');
SQL
check "A5: 0.5.1 is installed in public" "0.5.1|public" "$(ext_where "$A5")"
check "A5: at 0.5.1 the role has EXECUTE on run_with_parallel_guarantee by the README's grant only (not PUBLIC's)" "true|false" \
  "$(P "$A5" -c "SELECT has_function_privilege('$ROLE', 'run_with_parallel_guarantee(text,text,integer,integer,integer,interval,boolean,boolean,boolean,interval,integer,text)', 'EXECUTE')
                   || '|' || has_function_privilege('public', 'run_with_parallel_guarantee(text,text,integer,integer,integer,interval,boolean,boolean,boolean,interval,integer,text)', 'EXECUTE')" 2>&1)"
check "A5: run_with_parallel_guarantee of 0.5.1's SQL, run by the $TO library, works (the role's call, forced to 4 workers)" "target_met|4" \
  "$(PR "$A5" -c "$RUN_OLD, label => 'role before upgrade')" 2>&1)"
wait_ready
# What the upgrade must keep: each history table's rows, the sequence, the runs the views show.
HISTORY_TABLES="parallel_guarantee_run_history parallel_guarantee_attempt_history parallel_guarantee_chunk_run_history parallel_guarantee_chunk_history"
# Columns a later version added (NULL in the rows made before it) are left out of the digest.
ADDED_COLUMNS="'pass_workers_planned', 'pass_workers_launched'"
history_digest() {  # DB SCHEMA
  local t out=
  for t in $HISTORY_TABLES; do
    out+="$t $(P "$1" -c "SELECT count(*) || ' rows, md5 ' || md5(coalesce(string_agg(r, E'\n' ORDER BY r), ''))
                          FROM (SELECT (to_jsonb(h) - ARRAY[$ADDED_COLUMNS])::text AS r FROM $2.$t h) d" 2>&1); "
  done
  echo "$out"
}
HIST_BEFORE=$(history_digest "$A5" public)
SEQ_BEFORE=$(P "$A5" -c "SELECT last_value || ' ' || is_called FROM public.parallel_guarantee_run_id_seq")
RUNS_BEFORE=$(P "$A5" -c "SELECT string_agg(x, ',' ORDER BY x) FROM (
    SELECT run_id || ':guaranteed:' || label || ':' || status AS x FROM parallel_guarantee_runs
    UNION ALL SELECT run_id || ':chunked:' || label || ':' || status FROM parallel_guarantee_chunk_runs) r")
MAX_ID_BEFORE=$(P "$A5" -c "SELECT greatest((SELECT max(run_id) FROM parallel_guarantee_runs), (SELECT max(run_id) FROM parallel_guarantee_chunk_runs))")
check "A5: the history has the runs made at 0.5.1 (a submitted run, a chunked run)" \
  "chunked:chunks before upgrade:done,guaranteed:submitted before upgrade:target_met" \
  "$(echo "$RUNS_BEFORE" | tr ',' '\n' | cut -d: -f2- | grep -E ':(chunks|submitted) before upgrade:' | sort | paste -sd,)"

# A view of the user's on an extension view: the update drops and recreates the views, so
# PostgreSQL refuses (what a user with a dashboard view sees); nothing changes.
P "$A5" -v ON_ERROR_STOP=1 -c "CREATE VIEW my_nightly_runs AS SELECT run_id, label, status FROM parallel_guarantee_runs" >/dev/null
check "A5: a user's view on parallel_guarantee_runs stops ALTER EXTENSION UPDATE (2BP01), which changes nothing (still 0.5.1 in public)" \
  "ERROR:  2BP01: cannot drop view parallel_guarantee_runs because other objects depend on it|0.5.1|public" \
  "$(first_error P "$A5" -c "ALTER EXTENSION parallel_guarantee UPDATE")|$(ext_where "$A5")"
P "$A5" -v ON_ERROR_STOP=1 -c "DROP VIEW my_nightly_runs" >/dev/null

check "A5: ALTER EXTENSION parallel_guarantee UPDATE succeeds quietly" "" \
  "$(P "$A5" -v ON_ERROR_STOP=1 -c "ALTER EXTENSION parallel_guarantee UPDATE" 2>&1 || echo "failed")"
check "A5: the extension is at $TO, recorded in schema $S" "$TO|$S" "$(ext_where "$A5")"
check "A5: the four history tables moved into $S with every row unchanged" "$HIST_BEFORE" "$(history_digest "$A5" $S)"
check "A5: the run made on 0.5.1's SQL by the $TO library recorded its attempt, without the pass columns the old table lacked (attempts|with passes)" "1|0" \
  "$(P "$A5" -c "SELECT count(*) || '|' || count(*) FILTER (WHERE a.pass_workers_planned IS NOT NULL OR a.pass_workers_launched IS NOT NULL)
                 FROM $S.parallel_guarantee_attempt_history a JOIN $S.parallel_guarantee_run_history r USING (run_id)
                WHERE r.label = 'role before upgrade'" 2>&1)"
check "A5: the run-id sequence moved into $S with its value" "$SEQ_BEFORE" \
  "$(P "$A5" -c "SELECT last_value || ' ' || is_called FROM $S.parallel_guarantee_run_id_seq" 2>&1)"
check "A5: parallel_guarantee_runs lists every run made at 0.5.1, both kinds, same ids, labels and statuses" "$RUNS_BEFORE" \
  "$(P "$A5" -c "SELECT string_agg(run_id || ':' || kind || ':' || label || ':' || status, ',' ORDER BY run_id || ':' || kind || ':' || label || ':' || status)
                   FROM $S.parallel_guarantee_runs" 2>&1)"
check "A5: nothing of the extension is left in public" "nothing" "$(left_in_public "$A5")"
check "A5: the schema $S is not a member of the extension" "f" "$(schema_member "$A5")"

# The renamed columns (1.0's one vocabulary): old names gone, new ones present.
columns() {  # DB RELATION: its columns in order
  P "$A5" -c "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = '$S.$2'::regclass AND attnum > 0 AND NOT attisdropped" 2>&1
}
has_cols() {  # RELATION NEW... -- OLD...: "new: present|old: gone" or what is off
  local rel=$1; shift
  local cols new=() old=() side=new c res
  cols=",$(columns "$A5" "$rel"),"
  for c in "$@"; do
    if [ "$c" = -- ]; then side=old; continue; fi
    if [ $side = new ]; then new+=("$c"); else old+=("$c"); fi
  done
  res="new:"
  for c in "${new[@]}"; do [[ $cols == *",$c,"* ]] && res+=" $c" || res+=" MISSING-$c"; done
  res+="|old:"
  for c in "${old[@]}"; do [[ $cols == *",$c,"* ]] && res+=" STILL-$c"; done
  echo "$res"
}
check "A5: parallel_guarantee_queue has caller_pid, target_workers, state_since (no session_pid, workers_needed, since)" \
  "new: caller_pid target_workers state_since|old:" "$(has_cols parallel_guarantee_queue caller_pid target_workers state_since -- session_pid workers_needed since)"
check "A5: parallel_guarantee_chunk_runs has keys_total, chunks_total, keys (no total_keys, total_chunks, keys_query)" \
  "new: keys_total chunks_total keys|old:" "$(has_cols parallel_guarantee_chunk_runs keys_total chunks_total keys -- total_keys total_chunks keys_query)"
check "A5: parallel_guarantee_chunks has message (no error)" "new: message|old:" "$(has_cols parallel_guarantee_chunks message -- error)"
check "A5: parallel_guarantee_runs has kind right after run_id" "run_id,kind" "$(columns "$A5" parallel_guarantee_runs | cut -d, -f1-2)"
check "A5: parallel_guarantee_result has run_id first: run_id, status, rows, workers_planned, workers_launched, attempts, elapsed" \
  "run_id,status,rows,workers_planned,workers_launched,attempts,elapsed" "$(columns "$A5" parallel_guarantee_result)"
ROW=$(P "$A5" -F '|' -c "SET client_min_messages = warning" \
       -c "SELECT * FROM $S.run_with_parallel_guarantee('SELECT count(*) FROM small', force_workers => true, label => 'after upgrade')" 2>&1)
IFS='|' read -r f1 f2 _ _ f5 _ <<<"$ROW"
check "A5: SELECT * FROM run_with_parallel_guarantee(...) returns run_id first (above every id of 0.5.1), then status, ... workers_launched" \
  "run_id above $MAX_ID_BEFORE|target_met|4" \
  "$([[ $f1 =~ ^[0-9]+$ ]] && [ "$f1" -gt "$MAX_ID_BEFORE" ] && echo "run_id above $MAX_ID_BEFORE" || echo "first column '$f1'")|$f2|$f5"
check "A5: a chunked run after the update gets an id above every id of 0.5.1, and finishes done" "t|done" \
  "$(P "$A5" -F '|' -c "SET client_min_messages = warning" \
       -c "SELECT run_id > $MAX_ID_BEFORE, status FROM $S.run_in_chunks('SELECT id FROM small ORDER BY id', 'UPDATE small SET id = id WHERE id = ANY (\$1)', chunk_size => 400, label => 'chunks after upgrade')" 2>&1)"

# The role granted EXECUTE on the old function: the old function, and its grant, are gone; the
# new one is executable by PUBLIC inside the schema, which the role may not use yet.
check "A5: after the move the role's old per-function grant is gone (the function was recreated; EXECUTE is PUBLIC's, the schema the gate)" \
  "acl {=X/postgres,postgres=X/postgres}|execute true|usage false" \
  "$(P "$A5" -c "SELECT 'acl ' || proacl::text || '|execute ' || has_function_privilege('$ROLE', oid, 'EXECUTE')
                          || '|usage ' || has_schema_privilege('$ROLE', '$S', 'USAGE')
                     FROM pg_proc WHERE oid = '$S.run_with_parallel_guarantee'::regproc" 2>&1)"
check "A5: the role calling the qualified name without USAGE on the schema: 42501 permission denied for schema" \
  "ERROR:  42501: permission denied for schema $S" "$(first_error PR "$A5" -c "$RUN_NEW)")"
check "A5: the role calling the unqualified name (its search_path has no $S): 42883, the function does not exist" \
  "42883" "$(first_error PR "$A5" -c "$RUN_OLD)" | sed -E 's/^ERROR:  ([0-9A-Z]{5}):.*/\1/')"
P "$A5" -v ON_ERROR_STOP=1 -c "GRANT USAGE ON SCHEMA $S TO $ROLE" >/dev/null
check "A5: after GRANT USAGE ON SCHEMA $S TO the role, it runs the qualified name (target_met, 4 workers)" "target_met|4" \
  "$(PR "$A5" -c "$RUN_NEW, label => 'role after upgrade')" 2>&1)"
check "A5: and, with ALTER ROLE ... SET search_path = \"\$user\", public, $S, the unqualified name, and sees its runs" \
  "target_met|4|role after upgrade,role search_path" \
  "$(P "$A5" -c "ALTER ROLE $ROLE IN DATABASE $A5 SET search_path = \"\$user\", public, $S" >/dev/null
     echo "$(PR "$A5" -c "$RUN_OLD, label => 'role search_path')" 2>&1)|$(PR "$A5" -c "SELECT string_agg(label, ',' ORDER BY label)
        FROM parallel_guarantee_runs WHERE role = '$ROLE' AND label <> 'role before upgrade'" 2>&1)")"
# The role's grants go, so that A5 compares with B below.
P "$A5" -c "ALTER ROLE $ROLE IN DATABASE $A5 RESET search_path" -c "REVOKE USAGE ON SCHEMA $S FROM $ROLE" -c "REVOKE ALL ON small FROM $ROLE" >/dev/null

# ---------------------------------------------------------------------------------------
# A fresh install (database B).
# ---------------------------------------------------------------------------------------
P "$B" -v ON_ERROR_STOP=1 -c "CREATE EXTENSION parallel_guarantee" -c "$SMALL" >/dev/null \
  || { not_ok "setup: could not create the extension in $B"; exit; }
check "B: a fresh install is at $TO, in schema $S" "$TO|$S" "$(ext_where "$B")"
check "B: ALTER EXTENSION parallel_guarantee UPDATE says it is already at $TO (a NOTICE, no error)" \
  "rc=0 NOTICE:  version \"$TO\" of extension \"parallel_guarantee\" is already installed" \
  "$(out=$(P "$B" -v ON_ERROR_STOP=1 -c "ALTER EXTENSION parallel_guarantee UPDATE" 2>&1); echo "rc=$? $out")"
check "B: CREATE EXTENSION parallel_guarantee SCHEMA public is refused" \
  "ERROR:  0A000: extension \"parallel_guarantee\" must be installed in schema \"parallel_guarantee\"" \
  "$(first_error P "$B" -c "DROP EXTENSION parallel_guarantee" -c "CREATE EXTENSION parallel_guarantee SCHEMA public")"
P "$B" -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS parallel_guarantee" >/dev/null

# ---------------------------------------------------------------------------------------
# The extension's objects compared with B's: every member (pg_depend deptype 'e') with its
# definition (functions: full signature, defaults, body), privileges and comment; for
# relations (tables, views, composite types) their columns with column comments and
# privileges, constraints, indexes, triggers and options; for sequences their parameters;
# the extension's own row and dependencies; the schema parallel_guarantee (owner, ACL,
# comment, membership) and every object in it, member or not.
# ---------------------------------------------------------------------------------------
cat > "$OUT/members.sql" <<'SQL'
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'parallel_guarantee'),
members AS (
  SELECT d.classid, d.objid, pg_describe_object(d.classid, d.objid, d.objsubid) AS what
    FROM pg_depend d, ext
   WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
member_oids AS (SELECT classid, objid FROM members),
cols AS (  -- columns of a relation (a table, a view, a composite type)
  SELECT a.attrelid, string_agg(format('  column %s %s%s%s%s%s', a.attname, format_type(a.atttypid, a.atttypmod),
                                       CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                                       coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), ''),
                                       coalesce(', acl ' || a.attacl::text, ''),
                                       coalesce(', comment ' || col_description(a.attrelid, a.attnum), '')),
                                E'\n' ORDER BY a.attnum) AS list
    FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
   WHERE a.attnum > 0 AND NOT a.attisdropped
   GROUP BY a.attrelid),
rels AS (
  SELECT c.oid, concat_ws(E'\n',
           format('  relkind %s, owner %s, options %s, acl %s, rls %s, comment %s', c.relkind, c.relowner::regrole, c.reloptions,
                  coalesce(c.relacl::text, '(default)'), c.relrowsecurity, obj_description(c.oid, 'pg_class')),
           (SELECT list FROM cols WHERE cols.attrelid = c.oid),
           (SELECT string_agg(format('  constraint %s %s', co.conname, pg_get_constraintdef(co.oid)), E'\n' ORDER BY co.conname)
              FROM pg_constraint co WHERE co.conrelid = c.oid),
           (SELECT string_agg('  index ' || pg_get_indexdef(i.indexrelid), E'\n' ORDER BY 1)
              FROM pg_index i WHERE i.indrelid = c.oid),
           (SELECT string_agg('  trigger ' || pg_get_triggerdef(t.oid), E'\n' ORDER BY 1)
              FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal),
           CASE WHEN c.relkind IN ('v', 'm') THEN '  view ' || pg_get_viewdef(c.oid, true) END,
           (SELECT format('  sequence %s start %s increment %s min %s max %s cache %s cycle %s', s.seqtypid::regtype,
                          s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
              FROM pg_sequence s WHERE s.seqrelid = c.oid)) AS def
    FROM pg_class c)
SELECT m.what || E'\n' || coalesce(
         CASE m.classid
           WHEN 'pg_proc'::regclass THEN
             (SELECT format(E'%s  owner %s, acl %s, comment %s', pg_get_functiondef(p.oid), p.proowner::regrole,
                            coalesce(p.proacl::text, '(default)'), obj_description(p.oid, 'pg_proc'))
                FROM pg_proc p WHERE p.oid = m.objid)
           WHEN 'pg_class'::regclass THEN (SELECT def FROM rels WHERE rels.oid = m.objid)
           WHEN 'pg_type'::regclass THEN
             (SELECT format('  type %s, owner %s, acl %s, comment %s', t.typtype, t.typowner::regrole,
                            coalesce(t.typacl::text, '(default)'), obj_description(t.oid, 'pg_type'))
                     || coalesce(E'\n' || (SELECT list FROM cols WHERE cols.attrelid = t.typrelid), '')
                FROM pg_type t WHERE t.oid = m.objid)
         END, '(no definition listed for this kind of object)')
  FROM members m
UNION ALL
SELECT format('extension %s version %s schema %s relocatable %s config %s', e.extname, e.extversion,
              e.extnamespace::regnamespace, e.extrelocatable,
              (SELECT string_agg(format('%s [%s]', cfg::regclass, cond), ', ' ORDER BY cfg::regclass::text)
                 FROM unnest(e.extconfig, e.extcondition) AS u(cfg, cond)))
  FROM pg_extension e WHERE e.extname = 'parallel_guarantee'
UNION ALL
SELECT format('extension depends on %s (%s)', pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid), d.deptype)
  FROM pg_depend d, ext WHERE d.classid = 'pg_extension'::regclass AND d.objid = ext.oid
UNION ALL
SELECT format(E'schema %s\n  owner %s, acl %s, comment %s, member of the extension %s', n.nspname, n.nspowner::regrole,
              coalesce(n.nspacl::text, '(default)'), obj_description(n.oid, 'pg_namespace'),
              EXISTS (SELECT FROM member_oids mo WHERE mo.classid = 'pg_namespace'::regclass AND mo.objid = n.oid))
  FROM pg_namespace n WHERE n.nspname = 'parallel_guarantee'
UNION ALL
SELECT format('in schema parallel_guarantee: %s, member %s', o.what, EXISTS (SELECT FROM member_oids mo WHERE mo.classid = o.classid AND mo.objid = o.oid))
  FROM (SELECT 'pg_class'::regclass AS classid, c.oid, format('relation %s (relkind %s)', c.relname, c.relkind) AS what
          FROM pg_class c WHERE c.relnamespace = 'parallel_guarantee'::regnamespace
        UNION ALL
        SELECT 'pg_proc'::regclass, p.oid, 'function ' || p.oid::regprocedure::text
          FROM pg_proc p WHERE p.pronamespace = 'parallel_guarantee'::regnamespace
        UNION ALL
        SELECT 'pg_type'::regclass, t.oid, format('type %s (typtype %s)', t.typname, t.typtype)
          FROM pg_type t WHERE t.typnamespace = 'parallel_guarantee'::regnamespace) o
ORDER BY 1;
SQL
listing() { P "$1" -v ON_ERROR_STOP=1 -f "$OUT/members.sql" 2>&1; }
listing "$B" >"$OUT/members-b.txt"
# pg_dump in binary-upgrade mode writes out every member object; the objects' oids, xids and
# LSNs differ between the databases and are masked, and so are the sequences' values (the
# databases have had runs).
dump() {
  "$BIN/pg_dump" -h "$HOST" -p "$PORT" -U postgres -s --binary-upgrade "$1" 2>&1 \
    | grep -v -E 'binary_upgrade_set_next_|^\\(un)?restrict ' \
    | sed -E "s/(binary_upgrade_create_empty_extension\('[^']*', '[^']*', [a-z]+, '[^']*', )'\{[0-9,]*\}'/\1'{OIDS}'/;
              s/oid = '[0-9]+'/oid = 'OID'/; s/(relfrozenxid|relminmxid) = '[0-9]+'/\1 = 'XID'/g;
              s/(setval\('[^']*', )[0-9]+, (true|false)\)/\1N, B)/"
}
dump "$B" >"$OUT/dump-b.sql"
n=$(grep -c -E '^(function|table|view|sequence|type) ' "$OUT/members-b.txt")
check "the listing of B has every member, each with its definition, and the schema" "$n members, 0 without a definition, schema listed" \
  "$(P "$B" -c "SELECT count(*) FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
                   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'parallel_guarantee')") members, $(grep -c '^(no definition listed' "$OUT/members-b.txt") without a definition, $(grep -q "^schema $S\$" "$OUT/members-b.txt" && echo "schema listed" || echo "no schema line")"
dump_has_members=$(grep -c "ALTER EXTENSION parallel_guarantee ADD" "$OUT/dump-b.sql")
check "pg_dump --binary-upgrade -s of B lists the extension's members and CREATE SCHEMA $S" "members yes, schema yes" \
  "members $([ "$dump_has_members" -gt 0 ] && echo yes || echo no), schema $(grep -q "^CREATE SCHEMA $S;" "$OUT/dump-b.sql" && echo yes || echo no)"

compare() {  # DB NAME: listing and dump equal to B's
  listing "$1" >"$OUT/members-$2.txt"
  if diff -u "$OUT/members-$2.txt" "$OUT/members-b.txt" >"$OUT/members-$2.diff"; then
    ok "$2: the extension's $n member objects, its schema and dependencies equal a fresh install's (definitions, signatures, columns, comments, privileges)"
  else
    not_ok "$2: the extension's member objects, its schema and dependencies equal a fresh install's"
    sed 's/^/    /' "$OUT/members-$2.diff" | head -150
  fi
  dump "$1" >"$OUT/dump-$2.sql"
  if diff -u "$OUT/dump-$2.sql" "$OUT/dump-b.sql" >"$OUT/dump-$2.diff"; then
    ok "$2: pg_dump --binary-upgrade -s equals the fresh install's ($dump_has_members members)"
  else
    not_ok "$2: pg_dump --binary-upgrade -s equals the fresh install's"
    sed 's/^/    /' "$OUT/dump-$2.diff" | head -150
  fi
}
compare "$A" "0.1.0-in-public"
compare "$A5" "0.5.1-in-public"

# (a) Every older version created in schema parallel_guarantee (today's control file), then
#     updated: in the right schema, and equal to a fresh install.
for v in $OLDER; do
  db=$(from_db "$v")
  if P postgres -c "CREATE DATABASE $db" >/dev/null && P "$db" -v ON_ERROR_STOP=1 -c "CREATE EXTENSION parallel_guarantee VERSION '$v'" -c "$SMALL" >/dev/null; then
    check "$v in schema $S: CREATE EXTENSION ... VERSION '$v' installs it there, ALTER EXTENSION UPDATE takes it to $TO" \
      "$v|$S $TO|$S" "$(ext_where "$db") $(P "$db" -v ON_ERROR_STOP=1 -c "ALTER EXTENSION parallel_guarantee UPDATE" >/dev/null 2>&1; ext_where "$db")"
    compare "$db" "$v-in-$S"
  else
    not_ok "$v in schema $S: CREATE EXTENSION ... VERSION '$v' installs it there" "the database or the extension could not be created"
    not_ok "$v-in-$S: member objects (not compared)"; not_ok "$v-in-$S: pg_dump (not compared)"
  fi
done

# DROP EXTENSION leaves the schema, empty, after the move as after a fresh install.
schema_after_drop() {
  P "$1" -c "SET client_min_messages = warning" -c "DROP EXTENSION parallel_guarantee" \
    -c "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = '$S') || ' schema, '
               || (SELECT count(*) FROM pg_class WHERE relnamespace = '$S'::regnamespace) + (SELECT count(*) FROM pg_proc WHERE pronamespace = '$S'::regnamespace)
               || ' objects in it'" 2>&1
}
check "DROP EXTENSION leaves the schema $S, empty: after the move from public (A5) as after a fresh install (B)" \
  "A5: 1 schema, 0 objects in it; B: 1 schema, 0 objects in it" "A5: $(schema_after_drop "$A5"); B: $(schema_after_drop "$B")"

[ -z "$(ls "$EXTDIR"/parallel_guarantee--*.control 2>/dev/null)" ] || echo "# warning: secondary control files still in $EXTDIR (removed on exit)"
