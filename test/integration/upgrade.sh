#!/usr/bin/env bash
# Upgrade path: version 0.1.0 installed and used, then ALTER EXTENSION ... UPDATE to the
# default version (0.2.0 when this was written); the upgraded extension's objects must be
# exactly those of a fresh CREATE EXTENSION.  Every other older version that is installed
# (0.2.0 once the default is later) is updated and compared the same way.
# Each check prints "ok - ..." or "not ok - ..." and what it found.
#
# Needs the throwaway cluster (bash scripts/cluster.sh start).  Creates and drops the
# databases pg_guarantee_upgrade_a (0.1.0, then updated), pg_guarantee_upgrade_b (fresh) and
# pg_guarantee_upgrade_from_<version> (other older versions); writes the compared listings
# to test/out/upgrade.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
. test/integration/data/tap.sh
# The default version, and the versions an upgrade starts from besides 0.1.0, as the project
# ships them (parallel_guarantee.control and the sql/ upgrade scripts): one check each.
TO=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" parallel_guarantee.control)
OLDER=$(ls sql/parallel_guarantee--*--*.sql | sed -E 's/.*--([0-9.]+)--[0-9.]+\.sql$/\1/' | grep -vx '0\.1\.0' | sort -uV)
plan $((15 + $(echo "$OLDER" | grep -c .)))
BIN=${PG_BIN:-/usr/lib/postgresql/${PG_MAJOR:-15}/bin}
PORT=${PG_PORT:-54329}
A=pg_guarantee_upgrade_a
B=pg_guarantee_upgrade_b
OUT=$ROOT/test/out/upgrade
mkdir -p "$OUT"

P() { local db=$1; shift; bash scripts/cluster.sh psql -d "$db" -tA -q "$@"; }
# The server must have what the project ships.
INSTALLED=$(P postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'parallel_guarantee'")
[ "$INSTALLED" = "$TO" ] || { not_ok "setup: parallel_guarantee $TO is not the installed default (found '$INSTALLED'; make && make install)"; exit; }
from_db() { echo "pg_guarantee_upgrade_from_${1//./_}"; }
drop_dbs() {
  P postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $A WITH (FORCE)" -c "DROP DATABASE IF EXISTS $B WITH (FORCE)" >/dev/null 2>&1
  for v in $OLDER; do P postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $(from_db "$v") WITH (FORCE)" >/dev/null 2>&1; done
}
tap_on_exit drop_dbs

drop_dbs
P postgres -c "CREATE DATABASE $A" -c "CREATE DATABASE $B" >/dev/null || { not_ok "setup: could not create the databases"; exit; }
# The same small table in both: 4 workers only when forced.
SMALL="CREATE TABLE small (id int) WITH (parallel_workers = 4); INSERT INTO small SELECT generate_series(1, 1000); ANALYZE small;"
RUN="SET client_min_messages = warning; SELECT status || '|' || workers_launched FROM run_with_parallel_guarantee('SELECT count(*) FROM small', force_workers => true"

# 1. Database A: version 0.1.0, used as such.
P "$A" -v ON_ERROR_STOP=1 -c "CREATE EXTENSION parallel_guarantee VERSION '0.1.0'" -c "$SMALL" >/dev/null \
  || { not_ok "setup: could not create the extension at 0.1.0 in $A"; exit; }
check "A: the extension is at 0.1.0" "0.1.0" "$(P "$A" -c "SELECT extversion FROM pg_extension WHERE extname = 'parallel_guarantee'")"
check "A: 0.1.0 has no history views and no submit function" "||" \
  "$(P "$A" -c "SELECT to_regclass('parallel_guarantee_runs'), to_regclass('parallel_guarantee_attempts'), to_regproc('submit_parallel_guarantee')")"
check "A: run_with_parallel_guarantee works at 0.1.0 (forced to 4 workers)" "target_met|4" "$(P "$A" -c "$RUN)" 2>&1)"
RUN_ID_010=$(P "$A" -c "SELECT last_value FROM parallel_guarantee_run_id_seq")

# 2. ALTER EXTENSION ... UPDATE to the default version.
check "A: ALTER EXTENSION parallel_guarantee UPDATE succeeds quietly" "" \
  "$(P "$A" -v ON_ERROR_STOP=1 -c "ALTER EXTENSION parallel_guarantee UPDATE" 2>&1 || echo "failed")"
check "A: the extension is at the default version $TO" "$TO" "$(P "$A" -c "SELECT extversion FROM pg_extension WHERE extname = 'parallel_guarantee'")"
check "A: the history views and the async functions exist" "t" \
  "$(P "$A" -c "SELECT to_regclass('parallel_guarantee_runs') IS NOT NULL AND to_regclass('parallel_guarantee_attempts') IS NOT NULL
                   AND to_regclass('parallel_guarantee_label_summary') IS NOT NULL AND to_regproc('submit_parallel_guarantee') IS NOT NULL
                   AND to_regproc('parallel_guarantee_status') IS NOT NULL AND to_regproc('parallel_guarantee_wait') IS NOT NULL
                   AND to_regproc('parallel_guarantee_cancel') IS NOT NULL")"
check "A: a run after the update succeeds" "target_met|4" "$(P "$A" -c "$RUN, label => 'after upgrade')" 2>&1)"
check "A: the history records it, with a run id after those of 0.1.0" "1|target_met|4|true" \
  "$(P "$A" -c "SELECT count(*) || '|' || min(status) || '|' || min(workers_launched) || '|' || bool_and(run_id > $RUN_ID_010)
                   FROM parallel_guarantee_runs WHERE label = 'after upgrade'" 2>&1)"
check "A: and its attempts, the last with 4 workers" "true|4|target met" \
  "$(P "$A" -c "SELECT (a.attempt = r.attempts) || '|' || a.workers_launched || '|' || a.outcome FROM parallel_guarantee_attempts a
                   JOIN parallel_guarantee_runs r USING (run_id) WHERE r.label = 'after upgrade' ORDER BY a.attempt DESC LIMIT 1" 2>&1)"
check "A: a submitted run after the update finishes target_met" "target_met|4" \
  "$(P "$A" -c "SELECT status || '|' || workers_launched FROM parallel_guarantee_wait(
                   submit_parallel_guarantee('SELECT count(*) FROM small', force_workers => true, label => 'submitted after upgrade'), '20 s')" 2>&1)"

# 3. Database B: a fresh install of the default version.
P "$B" -v ON_ERROR_STOP=1 -c "CREATE EXTENSION parallel_guarantee" -c "$SMALL" >/dev/null \
  || { not_ok "setup: could not create the extension in $B"; exit; }
check "B: a fresh install is at $TO" "$TO" "$(P "$B" -c "SELECT extversion FROM pg_extension WHERE extname = 'parallel_guarantee'")"
check "B: ALTER EXTENSION parallel_guarantee UPDATE says it is already at $TO (a NOTICE, no error)" \
  "rc=0 NOTICE:  version \"$TO\" of extension \"parallel_guarantee\" is already installed" \
  "$(out=$(P "$B" -v ON_ERROR_STOP=1 -c "ALTER EXTENSION parallel_guarantee UPDATE" 2>&1); echo "rc=$? $out")"

# 4. The extension's objects in A and in B: every member (pg_depend deptype 'e') with its
#    definition, privileges and comment; for relations their columns, constraints, indexes
#    and options; for sequences their parameters; and the extension's own row.
cat > "$OUT/members.sql" <<'SQL'
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'parallel_guarantee'),
members AS (
  SELECT d.classid, d.objid, pg_describe_object(d.classid, d.objid, d.objsubid) AS what
    FROM pg_depend d, ext
   WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
cols AS (  -- columns of a relation (a table, a view, a composite type)
  SELECT a.attrelid, string_agg(format('  column %s %s%s%s', a.attname, format_type(a.atttypid, a.atttypmod),
                                       CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                                       coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')),
                                E'\n' ORDER BY a.attnum) AS list
    FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
   WHERE a.attnum > 0 AND NOT a.attisdropped
   GROUP BY a.attrelid),
rels AS (
  SELECT c.oid, concat_ws(E'\n',
           format('  relkind %s, options %s, acl %s, rls %s, comment %s', c.relkind, c.reloptions, coalesce(c.relacl::text, '(default)'),
                  c.relrowsecurity, obj_description(c.oid, 'pg_class')),
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
             (SELECT format(E'%s  acl %s, comment %s', pg_get_functiondef(p.oid), coalesce(p.proacl::text, '(default)'), obj_description(p.oid, 'pg_proc'))
                FROM pg_proc p WHERE p.oid = m.objid)
           WHEN 'pg_class'::regclass THEN (SELECT def FROM rels WHERE rels.oid = m.objid)
           WHEN 'pg_type'::regclass THEN
             (SELECT format('  type %s, acl %s, comment %s', t.typtype, coalesce(t.typacl::text, '(default)'), obj_description(t.oid, 'pg_type'))
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
ORDER BY 1;
SQL
P "$A" -v ON_ERROR_STOP=1 -f "$OUT/members.sql" >"$OUT/members-a.txt" 2>&1
P "$B" -v ON_ERROR_STOP=1 -f "$OUT/members.sql" >"$OUT/members-b.txt" 2>&1
n=$(grep -c -E '^(function|table|view|sequence|type) ' "$OUT/members-b.txt")
if diff -u "$OUT/members-a.txt" "$OUT/members-b.txt" >"$OUT/members.diff"; then
  ok "the upgraded extension's $n member objects equal a fresh install's (definitions, columns, privileges)"
else
  not_ok "the upgraded extension's member objects equal a fresh install's"
  sed 's/^/    /' "$OUT/members.diff" | head -150
fi
check "the listing has every member, each with its definition" "$n members, 0 without a definition" \
  "$(P "$B" -c "SELECT count(*) FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
                   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'parallel_guarantee')") members, $(grep -c '^(no definition listed' "$OUT/members-b.txt") without a definition"
# The other older versions: each updated to the default must list the same.
for v in $OLDER; do
  db=$(from_db "$v")
  if P postgres -c "CREATE DATABASE $db" >/dev/null && P "$db" -v ON_ERROR_STOP=1 -c "CREATE EXTENSION parallel_guarantee VERSION '$v'" \
       -c "ALTER EXTENSION parallel_guarantee UPDATE" >/dev/null; then
    P "$db" -v ON_ERROR_STOP=1 -f "$OUT/members.sql" >"$OUT/members-from-$v.txt" 2>&1
    if diff -u "$OUT/members-from-$v.txt" "$OUT/members-b.txt" >"$OUT/members-from-$v.diff"; then
      ok "$v updated to $TO: its member objects equal a fresh install's"
    else
      not_ok "$v updated to $TO: its member objects equal a fresh install's"
      sed 's/^/    /' "$OUT/members-from-$v.diff" | head -150
    fi
  else
    check "$v can be installed and updated to $TO" "yes" "no"
  fi
done

# 5. The same through pg_dump: in binary-upgrade mode it writes out every member object; the
#    objects' oids, xids and LSNs differ between the databases and are masked, and so is the
#    sequences' values (A has had runs).
dump() {
  "$BIN/pg_dump" -h "$ROOT/.cluster" -p "$PORT" -U postgres -s --binary-upgrade "$1" 2>&1 \
    | grep -v -E 'binary_upgrade_set_next_|^\\(un)?restrict ' \
    | sed -E "s/(binary_upgrade_create_empty_extension\('[^']*', '[^']*', [a-z]+, '[^']*', )'\{[0-9,]*\}'/\1'{OIDS}'/;
              s/oid = '[0-9]+'/oid = 'OID'/; s/(relfrozenxid|relminmxid) = '[0-9]+'/\1 = 'XID'/g;
              s/(setval\('[^']*', )[0-9]+, (true|false)\)/\1N, B)/"
}
dump "$A" >"$OUT/dump-a.sql"
dump "$B" >"$OUT/dump-b.sql"
if ! grep -q "ALTER EXTENSION parallel_guarantee ADD" "$OUT/dump-b.sql"; then
  check "pg_dump --binary-upgrade -s lists the extension's members" "ALTER EXTENSION parallel_guarantee ADD ..." "$(head -5 "$OUT/dump-b.sql")"
elif diff -u "$OUT/dump-a.sql" "$OUT/dump-b.sql" >"$OUT/dump.diff"; then
  ok "pg_dump --binary-upgrade -s of the upgraded database equals the fresh one's ($(grep -c "ALTER EXTENSION parallel_guarantee ADD" "$OUT/dump-b.sql") members)"
else
  not_ok "pg_dump --binary-upgrade -s of the upgraded database equals the fresh one's"
  sed 's/^/    /' "$OUT/dump.diff" | head -150
fi
