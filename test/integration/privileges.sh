#!/usr/bin/env bash
# Privileges, on a private cluster: roles alice and bob (ordinary, LOGIN), auditor (a member
# of pg_read_all_stats), batch (NOLOGIN) with dave (NOINHERIT member of batch), plain (no
# grants), and the superuser postgres.  The roles but plain and dave get the one grant, USAGE
# on the schema parallel_guarantee; the database's search_path ends with that schema.
#   1. a role cannot read or change through the function (statement, cleanup, submit) what
#      it cannot directly; row-level security and column privileges hold; a role without
#      USAGE on the schema can call none of its functions and read none of its views
#      (42501), and with it, everything;
#   2. a role sees only its own runs (runs, attempts, label summary, activity, queue, status,
#      pg_stat_activity), also through a leaky function; it cannot wait on or cancel another
#      role's run; a member of pg_read_all_stats sees all but cannot cancel or wait;
#   3. the extension has no SECURITY DEFINER function, its SQL and PL/pgSQL functions pin
#      search_path, PUBLIC has no USAGE on the schema (the only gate: inside it EXECUTE and
#      SELECT go to PUBLIC), the history tables and the run-id sequence stay closed;
#   4. a hostile search_path (a schema first in the path with tables, functions and
#      operators named like the extension's and pg_catalog's; look-alikes of the extension's
#      tables and internal functions in public, ahead of parallel_guarantee; temporary
#      tables named like its relations) hijacks nothing: the history is recorded correctly
#      and the hostile objects are never called nor written;
#   5. SET ROLE gives exactly that role's privileges.
# Each check prints "ok - ..." or "not ok - ..." and what it found.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
. test/integration/data/tap.sh
plan 66
PC_NAME=privileges
PC_PORT=${PRIVILEGES_PORT:-54353}
. "$ROOT/test/integration/data/private_cluster.sh"
DB=privdb
P() { pc_psql -d "$DB" -tA -q "$@"; }                                  # as postgres
R() { local role=$1; shift; pc_psql -U "$role" -d "$DB" -tA -q "$@"; }  # as a role
# The first error of a statement run as ROLE, with its SQLSTATE ("ERROR:  42501"); empty if none.
err() {  # err ROLE SQL...
  local role=$1; shift
  local args=(); for s in "$@"; do args+=(-c "$s"); done
  PGOPTIONS="-c client_min_messages=warning" R "$role" -v VERBOSITY=sqlstate "${args[@]}" 2>&1 >/dev/null | grep -m1 '^ERROR' || true
}
wait_for() {  # wait_for WANTED QUERY (as postgres; bounded: 20 s)
  for _ in $(seq 1 400); do
    [ "$(P -c "$2" 2>/dev/null)" = "$1" ] && return 0
    sleep 0.05
  done
  return 1
}
finish() { pc_stop immediate; }
tap_on_exit finish

if ! pc_init "parallel_guarantee.max_async_runs = 16" "log_min_messages = warning"; then
  not_ok "setup: the private cluster did not start (log: $PC_LOG)"; exit
fi
pc_psql -d postgres -q -c "CREATE DATABASE $DB" >/dev/null || { not_ok "setup: could not create the database $DB"; exit; }
P -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || { not_ok "setup: could not create the extension, roles and tables"; exit; }
SET client_min_messages = warning;
CREATE EXTENSION parallel_guarantee;
ALTER DATABASE privdb SET search_path = "$user", public, parallel_guarantee;
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
CREATE ROLE auditor LOGIN IN ROLE pg_read_all_stats;
CREATE ROLE plain LOGIN;
CREATE ROLE batch NOLOGIN;
CREATE ROLE dave LOGIN NOINHERIT IN ROLE batch;
CREATE SCHEMA alice AUTHORIZATION alice;
CREATE SCHEMA bob AUTHORIZATION bob;
CREATE SCHEMA auditor AUTHORIZATION auditor;
CREATE SCHEMA batch AUTHORIZATION batch;
GRANT CREATE ON DATABASE privdb TO alice;
GRANT USAGE ON SCHEMA parallel_guarantee TO alice, bob, auditor, batch;
CREATE TABLE public.big (id int, pad text) WITH (parallel_workers = 4);
INSERT INTO public.big SELECT g, 'x' FROM generate_series(1, 100000) g;
GRANT SELECT ON public.big TO alice, bob, auditor, batch;
-- Nobody but the superuser may read this.
CREATE TABLE public.secret (id int, pw text) WITH (parallel_workers = 4);
INSERT INTO public.secret SELECT g, 'pw' || g FROM generate_series(1, 100000) g;
-- Column privileges: alice may read id, not pw.
CREATE TABLE public.secret_cols (id int, pw text) WITH (parallel_workers = 4);
INSERT INTO public.secret_cols SELECT g, 'pw' || g FROM generate_series(1, 100000) g;
GRANT SELECT (id) ON public.secret_cols TO alice;
-- Row-level security: each role sees its own rows.
CREATE TABLE public.rls (id int, owner_name text) WITH (parallel_workers = 4);
INSERT INTO public.rls SELECT g, CASE WHEN g % 10 = 0 THEN 'alice' ELSE 'bob' END FROM generate_series(1, 100000) g;
ALTER TABLE public.rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON public.rls USING (owner_name = current_user);
GRANT SELECT ON public.rls TO alice, bob;
-- Only the role batch may read this.
CREATE TABLE public.batch_only (id int) WITH (parallel_workers = 4);
INSERT INTO public.batch_only SELECT generate_series(1, 100000);
GRANT SELECT ON public.batch_only TO batch;
VACUUM ANALYZE public.big, public.secret, public.secret_cols, public.rls, public.batch_only;
-- One row per page: a session scanning it with max_parallel_workers_per_gather = N holds N
-- parallel workers while it runs (a shortage that lasts over several attempts).
CREATE TABLE public.hog (id int, pad text) WITH (fillfactor = 10, parallel_workers = 8);
INSERT INTO public.hog SELECT g, repeat('h', 1500) FROM generate_series(1, 64) g;
SQL
# A statement that runs for minutes at full degree unless stopped.
slow() { echo "CREATE TABLE $1 AS SELECT count(*) FROM public.big WHERE pg_sleep(0.01 + id*0) IS NOT NULL /* $2 */"; }
Q() { echo "SET client_min_messages = warning; SELECT status FROM run_with_parallel_guarantee(\$q\$$1\$q\$${2:-})"; }
# hog_start N: a session of postgres holds N parallel workers (bounded wait: 20 s) until hog_stop.
hog_start() {
  PGAPPNAME=privileges_hog pc_psql -d "$DB" -q -c "SET max_parallel_workers_per_gather = $1" -c "SET statement_timeout = '120s'" \
    -c "SELECT count(*) FROM public.hog WHERE pg_sleep(3600 + id * 0) IS NOT NULL" >/dev/null 2>&1 &
  HOG_PID=$!
  wait_for "$1" "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_activity l ON l.pid = a.leader_pid
                  WHERE a.backend_type = 'parallel worker' AND l.application_name = 'privileges_hog'" \
    || echo "#   the hog did not get its $1 workers"
}
hog_stop() {
  P -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'privileges_hog' AND backend_type = 'client backend'" >/dev/null
  wait "$HOG_PID" 2>/dev/null
  wait_for 0 "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker'"
}

# ------------------------------------------------------------- 1. reading through the function
check "alice cannot read secret directly (42501)" "ERROR:  42501" "$(err alice "SELECT count(*) FROM public.secret")"
check "alice cannot read secret through run_with_parallel_guarantee (42501)" "ERROR:  42501" \
  "$(err alice "$(Q "CREATE TABLE alice.stolen AS SELECT * FROM public.secret")")"
check "alice cannot count secret's rows through the function (42501)" "ERROR:  42501" \
  "$(err alice "$(Q "SELECT count(*) FROM public.secret")")"
SID=$(R alice -c "SELECT submit_parallel_guarantee(\$q\$CREATE TABLE alice.stolen_async AS SELECT * FROM public.secret\$q\$)" 2>&1)
check "alice's submitted read of secret ends as error 42501" "error|42501" \
  "$(R alice -c "SELECT status, sqlstate FROM parallel_guarantee_wait($SID, '20 s')" 2>&1)"
check "alice cannot read secret through the cleanup (42501)" "ERROR:  42501" \
  "$(err alice "$(Q "SELECT count(*) FROM public.big WHERE 1/(id - id) = 0" ", cleanup => \$c\$CREATE TABLE alice.stolen_cleanup AS SELECT * FROM public.secret\$c\$")")"
check "alice cannot read secret in a DO block run by the function (42501)" "ERROR:  42501" \
  "$(err alice "$(Q 'DO $$ BEGIN PERFORM count(*) FROM public.big; CREATE TABLE alice.stolen_do AS SELECT * FROM public.secret; END $$')")"
check "alice cannot become postgres inside the statement (SET ROLE in a DO block: 42501)" "ERROR:  42501" \
  "$(err alice "$(Q "DO \$\$ BEGIN EXECUTE 'SET ROLE postgres'; CREATE TABLE alice.stolen_role AS SELECT * FROM public.secret; END \$\$")")"
check "alice cannot change secret through the function (DELETE in a DO block: 42501)" "ERROR:  42501" \
  "$(err alice "$(Q 'DO $$ BEGIN PERFORM count(*) FROM public.big; DELETE FROM public.secret; END $$')")"
check "alice cannot write a server file through the function (COPY TO file: 42501)" "ERROR:  42501" \
  "$(err alice "$(Q "COPY (SELECT count(*) FROM public.big) TO '/tmp/pg_guarantee_privileges_$$.csv'")")"
check "alice cannot run a server program through the function (COPY TO PROGRAM: 42501)" "ERROR:  42501" \
  "$(err alice "$(Q "COPY (SELECT count(*) FROM public.big) TO PROGRAM 'cat > /dev/null'")")"
check "column privileges hold: alice may count secret_cols.id but not read pw (ok/42501)" "target_met|ERROR:  42501" \
  "$(R alice -c "$(Q "CREATE TABLE alice.cols_ok AS SELECT count(id) FROM public.secret_cols")" 2>/dev/null)|$(err alice "$(Q "CREATE TABLE alice.cols_pw AS SELECT count(pw) FROM public.secret_cols")")"
check "row-level security holds: alice's count through the function equals her direct count (10000)" "10000|10000" \
  "$(R alice -c "SELECT count(*) FROM public.rls")|$(R alice -c "$(Q "CREATE TABLE alice.rls_out AS SELECT count(*) AS n FROM public.rls")" -c "SELECT n FROM alice.rls_out" 2>/dev/null | tail -1)"
check "nothing was stolen: no stolen* table exists, secret still has 100000 rows" "0|100000" \
  "$(P -c "SELECT count(*) FROM pg_class WHERE relname LIKE 'stolen%'")|$(P -c "SELECT count(*) FROM public.secret")"
# The schema is the gate: plain (no USAGE) is refused every function and view of the
# extension by its qualified name (42501: permission denied for schema), and does not even
# find them unqualified (the schema drops out of its search_path).  With the one grant, USAGE
# on the schema, it runs, submits, runs chunks and reads every view; revoked, it is shut out.
GATED=(
  "SELECT parallel_guarantee.run_with_parallel_guarantee('SELECT count(*) FROM public.big')"
  "SELECT parallel_guarantee.submit_parallel_guarantee('SELECT count(*) FROM public.big')"
  "SELECT parallel_guarantee.run_in_chunks('SELECT 1', 'SELECT \$1')"
  "SELECT parallel_guarantee.submit_chunks('SELECT 1', 'SELECT \$1')"
  "SELECT parallel_guarantee.resume_chunks(1)"
  "SELECT parallel_guarantee.parallel_guarantee_status(1)"
  "SELECT parallel_guarantee.parallel_guarantee_wait(1, '1 s')"
  "SELECT parallel_guarantee.parallel_guarantee_cancel(1)"
  "SELECT * FROM parallel_guarantee.parallel_guarantee_cancel_runs(NULL, NULL, NULL)"
  "SELECT parallel_guarantee.parallel_guarantee_chunk_status(1)"
  "SELECT * FROM parallel_guarantee.parallel_guarantee_activity()"
  "SELECT parallel_guarantee.parallel_guarantee_visible(10)"
  "SELECT parallel_guarantee.parallel_guarantee_lost(1, false)"
  "SELECT * FROM parallel_guarantee.parallel_guarantee_running_chunks()"
  "SELECT parallel_guarantee.parallel_guarantee_wait_for(1, '1 s')"
  "SELECT parallel_guarantee.parallel_guarantee_cancel_run(1)"
)
for v in activity queue runs attempts label_summary chunk_runs chunks; do GATED+=("SELECT count(*) FROM parallel_guarantee.parallel_guarantee_$v"); done
gate() {  # gate ROLE: the statements of GATED not refused with 42501, with their answer
  local q out
  for q in "${GATED[@]}"; do
    out=$(err "$1" "$q")
    [ "$out" = "ERROR:  42501" ] || echo "$q: ${out:-no error}"
  done
}
check "plain, without USAGE on the schema: every function and view of the extension, by its qualified name, is refused with 42501 (${#GATED[@]} statements; any other answer listed)" "" "$(gate plain)"
check "plain, unqualified: run_with_parallel_guarantee and parallel_guarantee_runs are not found (42883|42P01)" "ERROR:  42883|ERROR:  42P01" \
  "$(err plain "SELECT run_with_parallel_guarantee('SELECT count(*) FROM public.big')")|$(err plain "SELECT count(*) FROM parallel_guarantee_runs")"
P -c "GRANT USAGE ON SCHEMA parallel_guarantee TO plain" -c "GRANT SELECT ON public.big TO plain" >/dev/null
ONE=$(R plain -c "SET client_min_messages = warning" \
  -c "SELECT 'run ' || status FROM run_with_parallel_guarantee('SELECT count(*) FROM public.big', target_workers => 2, min_workers => 0, label => 'plain')" \
  -c "SELECT 'submit ' || status FROM parallel_guarantee_wait(submit_parallel_guarantee('SELECT count(*) FROM public.big', target_workers => 2, min_workers => 0, label => 'plain'), '20 s')" \
  -c "SELECT 'chunks ' || status FROM run_in_chunks('SELECT 1', 'SELECT \$1', label => 'plain')" \
  -c "SELECT 'views ' || (SELECT count(*) FROM parallel_guarantee_runs) || ' ' || (SELECT count(*) FROM parallel_guarantee_attempts) || ' '
          || (SELECT runs FROM parallel_guarantee_label_summary WHERE label = 'plain') || ' ' || (SELECT count(*) FROM parallel_guarantee_chunk_runs) || ' '
          || (SELECT count(*) FROM parallel_guarantee_chunks) || ' ' || (SELECT count(*) FROM parallel_guarantee_activity) || ' ' || (SELECT count(*) FROM parallel_guarantee_queue)" 2>&1 | paste -sd'|')
P -c "REVOKE USAGE ON SCHEMA parallel_guarantee FROM plain" -c "REVOKE SELECT ON public.big FROM plain" >/dev/null
check "the one grant: with USAGE on the schema, plain runs, submits, runs chunks and reads every view (its own runs: runs attempts label chunk-runs chunks activity queue); revoked, it is refused again" \
  "run target_met|submit target_met|chunks done|views 3 2 3 1 1 0 0|ERROR:  42501" \
  "$ONE|$(err plain "SELECT count(*) FROM parallel_guarantee.parallel_guarantee_runs")"

# ------------------------------------------------------------- 2. visibility
# Finished runs of bob and alice, then a slow run of alice in progress.
R bob -c "$(Q "CREATE TABLE bob.done AS SELECT count(*) FROM public.big /* bob_marker */" ", label => 'bob-label'")" >/dev/null 2>&1
R alice -c "$(Q "CREATE TABLE alice.done AS SELECT count(*) FROM public.big /* alice_marker */" ", label => 'alice-secret-label'")" >/dev/null 2>&1
AID=$(R alice -c "SELECT submit_parallel_guarantee(\$q\$$(slow alice.slow_out alice_marker)\$q\$, label => 'alice-secret-label')" 2>&1)
[[ $AID =~ ^[0-9]+$ ]] || { echo "# alice's submit: $AID"; AID=0; }
if wait_for "running|4" "SELECT state || '|' || workers_launched FROM parallel_guarantee_activity WHERE run_id = $AID"; then
  ok "alice's submitted run $AID is running with 4 workers"
else
  not_ok "alice's submitted run $AID is running with 4 workers"
fi
VIS_Q="SELECT (SELECT count(*) FROM parallel_guarantee_runs WHERE role = 'alice' OR statement LIKE '%alice_marker%') || '|' ||
              (SELECT count(*) FROM parallel_guarantee_attempts a WHERE a.run_id IN (SELECT run_id FROM parallel_guarantee_runs WHERE role = 'alice')) || '|' ||
              (SELECT count(*) FROM parallel_guarantee_label_summary WHERE label = 'alice-secret-label') || '|' ||
              (SELECT count(*) FROM parallel_guarantee_activity WHERE run_id = $AID OR role = 'alice') || '|' ||
              (SELECT count(*) FROM parallel_guarantee_queue WHERE run_id = $AID OR role = 'alice')"
ALICE_RUNS=$(P -c "SELECT count(*) FROM parallel_guarantee_runs WHERE role = 'alice'")
ALICE_ATT=$(P -c "SELECT count(*) FROM parallel_guarantee_attempts a JOIN parallel_guarantee_runs r USING (run_id) WHERE r.role = 'alice'")
echo "#   alice has $ALICE_RUNS runs and $ALICE_ATT attempts in the history (seen by the superuser)"
check "bob sees none of alice's runs (runs|attempts|label summary|activity|queue)" "0|0|0|0|0" "$(R bob -c "$VIS_Q" 2>&1)"
check "bob sees his own run in parallel_guarantee_runs and the label summary" "1|1" \
  "$(R bob -c "SELECT (SELECT count(*) FROM parallel_guarantee_runs WHERE label = 'bob-label') || '|' || (SELECT runs FROM parallel_guarantee_label_summary WHERE label = 'bob-label')" 2>&1)"
check "bob sees only bob's runs in parallel_guarantee_runs" "bob" "$(R bob -c "SELECT string_agg(DISTINCT role, ',') FROM parallel_guarantee_runs" 2>&1)"
check "alice sees her runs everywhere (runs|attempts|label summary|activity|queue)" "$ALICE_RUNS|$ALICE_ATT|1|1|1" "$(R alice -c "$VIS_Q" 2>&1)"
check "alice does not see bob's run" "0" "$(R alice -c "SELECT count(*) FROM parallel_guarantee_runs WHERE role = 'bob' OR label = 'bob-label'" 2>&1)"
check "a member of pg_read_all_stats sees all (runs|attempts|label summary|activity|queue)" "$ALICE_RUNS|$ALICE_ATT|1|1|1" "$(R auditor -c "$VIS_Q" 2>&1)"
check "bob: status, wait and cancel of alice's run say 42704 (not visible)" "ERROR:  42704|ERROR:  42704|ERROR:  42704" \
  "$(err bob "SELECT parallel_guarantee_status($AID)")|$(err bob "SELECT parallel_guarantee_wait($AID, '1 s')")|$(err bob "SELECT parallel_guarantee_cancel($AID)")"
# PUBLIC may execute these internal functions: they must refuse too (42501 or 42704).
internal=$(echo "$(err bob "SELECT parallel_guarantee_wait_for($AID, '1 s')")|$(err bob "SELECT parallel_guarantee_cancel_run($AID)")" | sed -E 's/ERROR:  42(501|704)/refused/g')
check "bob: the internal wait and cancel functions on alice's run refuse (42501 or 42704)" "refused|refused" "$internal"
check "bob cannot read the history tables directly (42501/42501)" "ERROR:  42501|ERROR:  42501" \
  "$(err bob "SELECT count(*) FROM parallel_guarantee_run_history")|$(err bob "SELECT count(*) FROM parallel_guarantee_attempt_history")"
check "bob cannot write the history tables (42501)" "ERROR:  42501" \
  "$(err bob "UPDATE parallel_guarantee_run_history SET status = 'lost'")"
WPID=$(P -c "SELECT worker_pid FROM parallel_guarantee_activity WHERE run_id = $AID")
check "bob sees no query text of alice's worker in pg_stat_activity" "<insufficient privilege>" \
  "$(R bob -c "SELECT coalesce(query, 'NULL') FROM pg_stat_activity WHERE pid = ${WPID:-0}" 2>&1)"
check "the auditor sees alice's worker's query in pg_stat_activity" "1" \
  "$(R auditor -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel_guarantee worker' AND query LIKE '%alice_marker%'" 2>&1)"
# A leaky function: evaluated before the visibility filter, it would see alice's rows.
R bob -q >/dev/null 2>&1 <<'SQL'
CREATE TABLE bob.leaked (v text);
CREATE FUNCTION bob.leak(text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS
  $$ BEGIN INSERT INTO bob.leaked VALUES ($1); RETURN true; END $$;
SELECT count(*) FROM parallel_guarantee_runs WHERE bob.leak(statement) AND bob.leak(label);
SELECT count(*) FROM parallel_guarantee_attempts WHERE bob.leak(run_id::text || outcome);
SELECT count(*) FROM parallel_guarantee_label_summary WHERE bob.leak(label);
SELECT count(*) FROM parallel_guarantee_activity WHERE bob.leak(label);
SELECT count(*) FROM parallel_guarantee_queue WHERE bob.leak(label);
SQL
check "a leaky function in bob's WHERE clause sees none of alice's statements or labels" "0|0" \
  "$(R bob -c "SELECT count(*) FILTER (WHERE v LIKE '%alice%') || '|' || count(*) FILTER (WHERE v LIKE '%$AID%') FROM bob.leaked" 2>&1)"
check "auditor: status of alice's run works, wait and cancel say 42501" "running|ERROR:  42501|ERROR:  42501|ERROR:  42501" \
  "$(R auditor -c "SELECT status FROM parallel_guarantee_status($AID)" 2>&1)|$(err auditor "SELECT parallel_guarantee_wait($AID, '1 s')")|$(err auditor "SELECT parallel_guarantee_cancel($AID)")|$(err auditor "SELECT parallel_guarantee_cancel_run($AID)")"
check "alice's run is still running after bob's and the auditor's attempts" "running|4" \
  "$(P -c "SELECT state || '|' || workers_launched FROM parallel_guarantee_activity WHERE run_id = $AID")"
check "alice cancels her own run: true, then cancelled/57014" "t|cancelled|57014" \
  "$(R alice -c "SELECT parallel_guarantee_cancel($AID)" 2>&1)|$(R alice -c "SELECT status, sqlstate FROM parallel_guarantee_wait($AID, '20 s')" 2>&1)"
check "bob still cannot see alice's finished run (42704)" "ERROR:  42704" "$(err bob "SELECT parallel_guarantee_status($AID)")"

# ------------------------------------------------------------- 3. the catalog
EXT_FUNCS="SELECT p.oid, p.proname, p.prosecdef, p.proconfig, l.lanname, p.proacl
             FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
             JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                             AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
             JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'parallel_guarantee'"
echo "#   the extension's functions: $(P -c "SELECT string_agg(proname || ' (' || lanname || ')', ', ' ORDER BY proname) FROM ($EXT_FUNCS) f")"
check "the extension has functions, and none is SECURITY DEFINER" "yes|0" \
  "$(P -c "SELECT CASE WHEN count(*) >= 8 THEN 'yes' ELSE 'only ' || count(*) END || '|' || count(*) FILTER (WHERE prosecdef) FROM ($EXT_FUNCS) f")"
# (A query that fails prints its error, which is not the expected answer.)
check "every SQL and PL/pgSQL function of the extension pins search_path (proconfig; functions without it)" "none" \
  "$(P -c "SELECT coalesce(string_agg(proname || ' ' || coalesce(array_to_string(proconfig, ','), 'no proconfig'), '; '), 'none')
             FROM ($EXT_FUNCS) f WHERE lanname IN ('sql', 'plpgsql')
              AND NOT EXISTS (SELECT 1 FROM unnest(coalesce(proconfig, '{}')) c WHERE c LIKE 'search_path=%')" 2>&1)"
echo "#   their settings: $(P -c "SELECT string_agg(proname || ' ' || array_to_string(proconfig, ','), '; ' ORDER BY proname) FROM ($EXT_FUNCS) f WHERE lanname IN ('sql', 'plpgsql')")"
check "PUBLIC has no USAGE on the schema: plain and dave (NOINHERIT) have none, alice, bob, auditor and batch have the grant (plain|dave|alice|bob|auditor|batch)" \
  "f|f|t|t|t|t" \
  "$(P -c "SELECT string_agg(has_schema_privilege(r, 'parallel_guarantee', 'USAGE')::text, '|' ORDER BY o)
             FROM unnest(ARRAY['plain', 'dave', 'alice', 'bob', 'auditor', 'batch']) WITH ORDINALITY AS u(r, o)" 2>&1 | sed 's/true/t/g; s/false/f/g')"
check "inside the schema EXECUTE and SELECT go to PUBLIC, so USAGE alone decides, but for the server-wide reset of the downgrade statistics (functions: those PUBLIC may not execute|views: those PUBLIC may not read)" "19: parallel_guarantee_downgrades_reset|9: none" \
  "$(P -c "SELECT count(*) || ': ' || coalesce(string_agg(proname, ', ') FILTER (WHERE NOT has_function_privilege('plain', f.oid, 'EXECUTE')), 'none') FROM ($EXT_FUNCS) f")|$(P -c "SELECT count(*) || ': ' || coalesce(string_agg(c.relname, ', ') FILTER (WHERE NOT has_table_privilege('plain', c.oid, 'SELECT')), 'none')
             FROM pg_class c WHERE c.relnamespace = 'parallel_guarantee'::regnamespace AND c.relkind = 'v'")"
check "the 4 history tables stay closed to a role with USAGE on the schema (tables: those alice may select from)" "4: none" \
  "$(P -c "SELECT count(*) || ': ' || coalesce(string_agg(c.relname, ', ') FILTER (WHERE has_table_privilege('alice', c.oid, 'SELECT')), 'none')
             FROM pg_class c WHERE c.relnamespace = 'parallel_guarantee'::regnamespace AND c.relkind = 'r'")"
check "the run-id sequence is not usable by a role with USAGE on the schema: alice cannot burn run ids (usage|nextval)" "f|ERROR:  42501" \
  "$(P -c "SELECT has_sequence_privilege('alice', 'parallel_guarantee.parallel_guarantee_run_id_seq', 'USAGE')")|$(R alice -v VERBOSITY=sqlstate -c "SELECT nextval('parallel_guarantee.parallel_guarantee_run_id_seq')" 2>&1 >/dev/null | grep -m1 '^ERROR')"

# ------------------------------------------------------------- 4. a hostile search_path
# Alice's schema "evil" shadows pg_catalog and the extension: every function logs a call
# (a sequence, which a rollback does not undo) and a WARNING, and returns a plausible value.
R alice -v ON_ERROR_STOP=1 -q >/dev/null 2>"$PC_DIR/evil_setup.err" <<'SQL' || not_ok "setup: alice's hostile schema: $(head -3 "$PC_DIR/evil_setup.err")"
CREATE SCHEMA evil;
CREATE SEQUENCE evil.hits;
GRANT USAGE ON SCHEMA evil TO PUBLIC;
GRANT USAGE ON SEQUENCE evil.hits TO PUBLIC;
CREATE FUNCTION evil.hit(what text) RETURNS void LANGUAGE plpgsql AS
  $$ BEGIN PERFORM pg_catalog.nextval('evil.hits'); RAISE WARNING 'hijacked: %', what; END $$;
CREATE TABLE evil.parallel_guarantee_run_history (run_id bigint, status text, role_oid oid, statement text, label text);
CREATE TABLE evil.parallel_guarantee_attempt_history (run_id bigint, attempt int);
CREATE TABLE evil.parallel_guarantee_runs (run_id bigint, status text);
CREATE TABLE evil.pg_roles (oid oid, rolname name);
CREATE TABLE evil.pg_database (oid oid, datname name);
GRANT ALL ON ALL TABLES IN SCHEMA evil TO PUBLIC;
CREATE FUNCTION evil.pg_has_role(oid, text) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.hit('pg_has_role(oid,text)'); RETURN true; END $$;
CREATE FUNCTION evil.pg_has_role(name, text) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.hit('pg_has_role(name,text)'); RETURN true; END $$;
CREATE FUNCTION evil.pg_has_role(text, text) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.hit('pg_has_role(text,text)'); RETURN true; END $$;
CREATE FUNCTION evil.pg_has_role(name, name, text) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.hit('pg_has_role(name,name,text)'); RETURN true; END $$;
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.hit('now'); RETURN pg_catalog.now(); END $$;
CREATE FUNCTION evil.clock_timestamp() RETURNS timestamptz LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.hit('clock_timestamp'); RETURN pg_catalog.clock_timestamp(); END $$;
CREATE FUNCTION evil.count(bigint) RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.hit('count(bigint)'); RETURN 0; END $$;
CREATE FUNCTION evil.count_sfunc(bigint, anyelement) RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.hit('count aggregate'); RETURN $1 + 1; END $$;
CREATE AGGREGATE evil.count(anyelement) (SFUNC = evil.count_sfunc, STYPE = bigint, INITCOND = '0');
CREATE FUNCTION evil.nextval(regclass) RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.hit('nextval'); RETURN 1; END $$;
CREATE FUNCTION evil.current_setting(text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.hit('current_setting'); RETURN ''; END $$;
CREATE FUNCTION evil.int8eq(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.hit('= on int8'); RETURN true; END $$;
CREATE FUNCTION evil.int8ne(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.hit('<> on int8'); RETURN false; END $$;
CREATE FUNCTION evil.int8lt(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.hit('< on int8'); RETURN true; END $$;
CREATE FUNCTION evil.oideq(oid, oid) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.hit('= on oid'); RETURN true; END $$;
CREATE FUNCTION evil.texteq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.hit('= on text'); RETURN true; END $$;
CREATE FUNCTION evil.tstzlt(timestamptz, timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.hit('< on timestamptz'); RETURN true; END $$;
CREATE FUNCTION evil.tstzmi(timestamptz, timestamptz) RETURNS interval LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.hit('- on timestamptz'); RETURN '0'; END $$;
CREATE FUNCTION evil.i8mul(bigint, interval) RETURNS interval LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.hit('* bigint interval'); RETURN '0'; END $$;
CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.int8eq);
CREATE OPERATOR evil.<> (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.int8ne);
CREATE OPERATOR evil.< (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.int8lt);
CREATE OPERATOR evil.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = evil.oideq);
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.texteq);
CREATE OPERATOR evil.< (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.tstzlt);
CREATE OPERATOR evil.- (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.tstzmi);
CREATE OPERATOR evil.* (LEFTARG = bigint, RIGHTARG = interval, FUNCTION = evil.i8mul);
SQL
# Look-alikes of the extension's tables and internal functions in public, which comes ahead
# of parallel_guarantee on the README's search_path: alice plants them (a database whose
# public schema is writable, as before PostgreSQL 15), and evil gets the internal functions
# too.  Each function logs a call and a WARNING.
P -c "GRANT CREATE ON SCHEMA public TO alice" >/dev/null
R alice -v ON_ERROR_STOP=1 -q >/dev/null 2>"$PC_DIR/public_setup.err" <<'SQL' || not_ok "setup: alice's look-alikes in public: $(head -3 "$PC_DIR/public_setup.err")"
CREATE TABLE public.parallel_guarantee_run_history (run_id bigint, status text, role_oid oid, statement text, label text);
CREATE TABLE public.parallel_guarantee_attempt_history (run_id bigint, attempt int);
CREATE TABLE public.parallel_guarantee_chunk_run_history (run_id bigint, status text, role_oid oid);
CREATE TABLE public.parallel_guarantee_chunk_history (run_id bigint, chunk_no int, state text);
CREATE TABLE public.parallel_guarantee_runs (run_id bigint, status text);
CREATE SEQUENCE public.parallel_guarantee_run_id_seq;
GRANT ALL ON public.parallel_guarantee_run_history, public.parallel_guarantee_attempt_history, public.parallel_guarantee_chunk_run_history,
             public.parallel_guarantee_chunk_history, public.parallel_guarantee_runs, public.parallel_guarantee_run_id_seq TO PUBLIC;
DO $d$
DECLARE
  f text[];
  s text;
BEGIN
  FOREACH f SLICE 1 IN ARRAY ARRAY[
      ['parallel_guarantee_visible', 'oid', 'boolean', 'true'],
      ['parallel_guarantee_lost', 'bigint, boolean', 'boolean', 'false'],
      ['parallel_guarantee_cancel_run', 'bigint', 'boolean', 'false'],
      ['parallel_guarantee_wait_for', 'bigint, interval', 'boolean', 'true'],
      ['parallel_guarantee_status', 'bigint', 'text', '''hijacked'''],
      ['current_database', '', 'name', '''hijacked''']]
  LOOP
    FOREACH s IN ARRAY ARRAY['public', 'evil'] LOOP
      EXECUTE format('CREATE FUNCTION %I.%I(%s) RETURNS %s LANGUAGE plpgsql AS $f$ BEGIN PERFORM evil.hit(%L); RETURN %s; END $f$',
                     s, f[1], f[2], f[3], s || '.' || f[1], f[4]);
    END LOOP;
  END LOOP;
END $d$;
SQL
HOSTILE="SET search_path = evil, pg_catalog, alice, public, parallel_guarantee"
# Temporary tables named like every relation of the extension, in the caller's session (for
# relations, pg_temp is searched first when the path does not name it).
TEMP_NAMES="parallel_guarantee_run_history parallel_guarantee_attempt_history parallel_guarantee_chunk_run_history parallel_guarantee_chunk_history
            parallel_guarantee_runs parallel_guarantee_attempts parallel_guarantee_activity parallel_guarantee_queue parallel_guarantee_label_summary
            parallel_guarantee_chunk_runs parallel_guarantee_chunks parallel_guarantee_run_id_seq"
TEMPS=""; TEMPS_WRITTEN="SELECT 'temporary look-alikes written: ' || n FROM (SELECT 0"
for t in $TEMP_NAMES; do
  TEMPS+="CREATE TEMP TABLE $t (run_id bigint, status text, role_oid oid, label text); "
  TEMPS_WRITTEN+=" OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_temp.$t)"
done
TEMPS_WRITTEN+=") s(n) WHERE n OPERATOR(pg_catalog.<>) 0"
hostile_psql() {  # hostile_psql ROLE SQL: SQL in a session of ROLE with the temporary look-alikes and the hostile path
  pc_psql -U "$1" -d "$DB" -X -tA -q 2>&1 <<SQL
SET client_min_messages = warning;
$TEMPS
$HOSTILE;
$2
$TEMPS_WRITTEN;
SQL
}
hostile_session() {  # hostile_session ROLE LABEL TARGET: runs, submits, waits, cancels with the hostile path
  local role=$1 label=$2 target=$3
  hostile_psql "$role" "SELECT 'run|' || status FROM parallel_guarantee.run_with_parallel_guarantee(\$q\$CREATE TABLE $target.hs_run AS SELECT pg_catalog.count(*) FROM public.big\$q\$, label => '$label');"
  # Short of workers over both attempts: another session holds 6 of the 8.
  hog_start 6
  hostile_psql "$role" "SELECT 'short|' || status FROM parallel_guarantee.run_with_parallel_guarantee(\$q\$SELECT pg_catalog.count(*) FROM public.big\$q\$,
       cleanup => \$c\$DROP TABLE IF EXISTS $target.nothing\$c\$, min_workers => 3, max_attempts => 2, retry_delay => '10 ms',
       wait_for_slots => false, raise_on_failure => false, label => '$label');"
  hog_stop
  hostile_psql "$role" "SELECT parallel_guarantee.submit_parallel_guarantee(\$q\$CREATE TABLE $target.hs_sub AS SELECT pg_catalog.count(*) FROM public.big\$q\$, label => '$label') AS id \\gset
SELECT 'wait|' || status FROM parallel_guarantee.parallel_guarantee_wait(:id, '20 s');
SELECT 'status|' || status FROM parallel_guarantee.parallel_guarantee_status(:id);
SELECT 'cancel|' || parallel_guarantee.parallel_guarantee_cancel(:id);
SELECT 'views|' || ((SELECT pg_catalog.count(*) FROM parallel_guarantee.parallel_guarantee_runs) OPERATOR(pg_catalog.>) 0)
       || '|' || ((SELECT pg_catalog.count(*) FROM parallel_guarantee.parallel_guarantee_attempts) OPERATOR(pg_catalog.>) 0)
       || '|' || ((SELECT pg_catalog.count(*) FROM parallel_guarantee.parallel_guarantee_label_summary) OPERATOR(pg_catalog.>) 0)
       || '|' || ((SELECT pg_catalog.count(*) FROM parallel_guarantee.parallel_guarantee_activity) OPERATOR(pg_catalog.>=) 0)
       || '|' || ((SELECT pg_catalog.count(*) FROM parallel_guarantee.parallel_guarantee_queue) OPERATOR(pg_catalog.>=) 0);"
}
LOG0=$(stat -c %s "$PC_LOG")
A_OUT=$(hostile_session alice hostile-alice alice)
echo "$A_OUT" | sed 's/^/#   alice with the hostile search_path: /'
check "alice with a hostile search_path: run, short run, submit, wait, status, cancel and the views all work" \
  "run|target_met short|failed wait|target_met status|target_met cancel|false views|true|true|true|true|true" \
  "$(echo "$A_OUT" | sed -E 's/run [0-9]+ is/run X is/' | paste -sd' ')"
# The superuser, whose session the hostile functions would most like to run in.
S_OUT=$(hostile_session postgres hostile-super public)
check "the superuser with the same hostile search_path: the same results" \
  "run|target_met short|failed wait|target_met status|target_met cancel|false views|true|true|true|true|true" \
  "$(echo "$S_OUT" | sed -E 's/run [0-9]+ is/run X is/' | paste -sd' ')"
check "the hostile functions and operators (in evil and in public) were never called (evil.hits untouched)" "never" \
  "$(P -c "SELECT CASE WHEN is_called THEN last_value || ' calls' ELSE 'never' END FROM evil.hits" 2>&1)"
check "no 'hijacked' WARNING and no history WARNING in the server log" "0|0" \
  "$(tail -c +"$((LOG0 + 1))" "$PC_LOG" | grep -c 'hijacked')|$(tail -c +"$((LOG0 + 1))" "$PC_LOG" | grep -c 'in the history')"
tail -c +"$((LOG0 + 1))" "$PC_LOG" | grep -E 'hijacked|in the history' | head -5 | sed 's/^/#   /'
# The traps work: the hostile path makes alice's own unqualified now() call evil.now, and the
# README's path makes her unqualified parallel_guarantee_visible() call public's look-alike.
TRAPS=$( { R alice -c "$HOSTILE" -c "SELECT now() IS NOT NULL"; R alice -c "SELECT parallel_guarantee_visible(10)"; } 2>&1 >/dev/null | sed -n 's/^WARNING:  hijacked: //p' | paste -sd'|')
check "(the traps themselves work: in alice's own session an unqualified now() calls evil.now, parallel_guarantee_visible() public's look-alike)" \
  "now|public.parallel_guarantee_visible" "$TRAPS"
check "the hostile look-alike tables and sequence (in evil and public) stayed empty (evil|public|public sequence)" "0|0|never" \
  "$(P -c "SELECT (SELECT count(*) FROM evil.parallel_guarantee_run_history) + (SELECT count(*) FROM evil.parallel_guarantee_attempt_history) + (SELECT count(*) FROM evil.parallel_guarantee_runs)
                 || '|' || (SELECT count(*) FROM public.parallel_guarantee_run_history) + (SELECT count(*) FROM public.parallel_guarantee_attempt_history)
                         + (SELECT count(*) FROM public.parallel_guarantee_chunk_run_history) + (SELECT count(*) FROM public.parallel_guarantee_chunk_history)
                         + (SELECT count(*) FROM public.parallel_guarantee_runs)
                 || '|' || (SELECT CASE WHEN is_called THEN 'used' ELSE 'never' END FROM public.parallel_guarantee_run_id_seq)" 2>&1)"
# (public's look-alikes come ahead of the extension on the postgres sessions' path too: the
# queries below name the extension's views by their schema.)
check "the history recorded the hostile-path runs correctly (as superuser: label|role|status|attempts recorded)" \
  "hostile-alice|alice|failed|2;hostile-alice|alice|target_met|1;hostile-alice|alice|target_met|1;hostile-super|postgres|failed|2;hostile-super|postgres|target_met|1;hostile-super|postgres|target_met|1" \
  "$(P -c "SELECT string_agg(r.label || '|' || r.role || '|' || r.status || '|' || (SELECT count(*) FROM parallel_guarantee.parallel_guarantee_attempts a WHERE a.run_id = r.run_id), ';' ORDER BY r.label, r.status)
             FROM parallel_guarantee.parallel_guarantee_runs r WHERE r.label LIKE 'hostile-%'" 2>&1)"
check "the hostile-path runs' tables exist with the right count and owner" "100000|alice;100000|alice;100000|postgres;100000|postgres" \
  "$(P -c "SELECT (SELECT count FROM alice.hs_run) || '|' || (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'alice.hs_run'::regclass) || ';' ||
                 (SELECT count FROM alice.hs_sub) || '|' || (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'alice.hs_sub'::regclass) || ';' ||
                 (SELECT count FROM public.hs_run) || '|' || (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'public.hs_run'::regclass) || ';' ||
                 (SELECT count FROM public.hs_sub) || '|' || (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'public.hs_sub'::regclass)" 2>&1)"
# public's look-alikes go, so that the checks below find the extension's objects on the path.
P -q -c "SET client_min_messages = warning" -c "DROP TABLE public.parallel_guarantee_run_history, public.parallel_guarantee_attempt_history,
           public.parallel_guarantee_chunk_run_history, public.parallel_guarantee_chunk_history, public.parallel_guarantee_runs" \
  -c "DROP SEQUENCE public.parallel_guarantee_run_id_seq" \
  -c "DROP FUNCTION public.parallel_guarantee_visible(oid), public.parallel_guarantee_lost(bigint, boolean), public.parallel_guarantee_cancel_run(bigint),
           public.parallel_guarantee_wait_for(bigint, interval), public.parallel_guarantee_status(bigint), public.current_database()" \
  -c "REVOKE CREATE ON SCHEMA public FROM alice"

# ------------------------------------------------------------- 5. SET ROLE
check "dave (NOINHERIT member of batch) cannot call the function or read batch_only as himself" "ERROR:  42501|ERROR:  42501" \
  "$(err dave "SELECT parallel_guarantee.run_with_parallel_guarantee('SELECT count(*) FROM public.batch_only')")|$(err dave "SELECT count(*) FROM public.batch_only")"
check "dave after SET ROLE batch: the run works and its table belongs to batch (status|owner|current_user|session_user)" "target_met|batch|batch|dave" \
  "$(R dave -c "SET ROLE batch" -c "$(Q "CREATE TABLE batch.setrole_out AS SELECT current_user::text AS cu, session_user::text AS su, count(*) FROM public.batch_only GROUP BY 1, 2")" 2>&1)|$(P -c "SELECT pg_get_userbyid(relowner) || '|' || cu || '|' || su FROM pg_class, batch.setrole_out WHERE oid = 'batch.setrole_out'::regclass" 2>&1)"
check "dave after SET ROLE batch: RESET ROLE inside the statement falls back to dave, who may not read batch_only (42501)" "ERROR:  42501" \
  "$(err dave "SET ROLE batch" "$(Q "DO \$\$ BEGIN EXECUTE 'RESET ROLE'; PERFORM count(*) FROM public.batch_only; END \$\$")")"
# A submitted run of dave's after SET ROLE batch, seen while it runs: its role in the
# activity view, and in the history with the synchronous one above.
DSID=$(R dave -c "SET client_min_messages = warning" -c "SET ROLE batch" \
         -c "SELECT submit_parallel_guarantee(\$q\$$(slow batch.setrole_slow setrole_out)\$q\$, label => 'dave-as-batch')" 2>&1)
[[ $DSID =~ ^[0-9]+$ ]] || { echo "# dave's submit as batch: $DSID"; DSID=0; }
wait_for "running" "SELECT state FROM parallel_guarantee_activity WHERE run_id = $DSID"
check "dave after SET ROLE batch: his runs are batch's, in the activity view and the history (activity role of his submitted run|roles of his runs in the history)" "batch|batch x2" \
  "$(P -c "SELECT (SELECT role FROM parallel_guarantee_activity WHERE run_id = $DSID) || '|' ||
                 (SELECT string_agg(DISTINCT role, ',') || ' x' || count(*) FROM parallel_guarantee_runs WHERE statement LIKE '%setrole_out%')" 2>&1)"
P -c "SELECT parallel_guarantee_cancel($DSID)" -c "SELECT parallel_guarantee_wait($DSID, '20 s')" >/dev/null 2>&1
check "the superuser after SET ROLE alice: the table belongs to alice (status|owner|current_user)" "target_met|alice|alice" \
  "$(P -c "SET ROLE alice" -c "$(Q "CREATE TABLE alice.super_as_alice AS SELECT current_user::text AS cu, count(*) FROM public.big GROUP BY 1")" 2>&1)|$(P -c "SELECT pg_get_userbyid(relowner) || '|' || cu FROM pg_class, alice.super_as_alice WHERE oid = 'alice.super_as_alice'::regclass" 2>&1)"
check "the superuser after SET ROLE alice cannot read secret through the function (42501)" "ERROR:  42501" \
  "$(err postgres "SET ROLE alice" "$(Q "SELECT count(*) FROM public.secret")")"
check "the superuser after SET ROLE alice: a submitted run is alice's too (role|owner)" "alice|alice" \
  "$(P -c "SET client_min_messages = warning" -c "SET ROLE alice" -c "SELECT role FROM parallel_guarantee_wait(submit_parallel_guarantee(\$q\$CREATE TABLE alice.super_as_alice_async AS SELECT count(*) FROM public.big\$q\$), '20 s')" 2>&1)|$(P -c "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'alice.super_as_alice_async'::regclass" 2>&1)"

# ------------------------------------------------------------- 6. chunked runs
# (run_in_chunks is part of every version this script tests: a missing function fails the
# checks below, it does not skip them.)
# (The roles' USAGE on the schema covers run_in_chunks, submit_chunks and resume_chunks.)
R alice -q -c "CREATE TABLE alice.keys AS SELECT generate_series(1, 100) AS id" -c "CREATE TABLE alice.loot (pw text)" -c "CREATE TABLE alice.touched (id int)" >/dev/null 2>&1
CH() { echo "SET client_min_messages = warning; SELECT status FROM run_in_chunks(\$k\$$1\$k\$, \$a\$$2\$a\$, chunk_size => 50, max_retries => 0${3:-})"; }
check "chunks: alice cannot read secret through the keys query (42501)" "ERROR:  42501" \
  "$(err alice "$(CH "SELECT id FROM public.secret ORDER BY id" "INSERT INTO alice.touched SELECT unnest(\$1::int[])")")"
check "chunks: alice cannot read secret through the action (42501), and nothing was copied" "ERROR:  42501|0" \
  "$(err alice "$(CH "SELECT id FROM alice.keys ORDER BY id" "INSERT INTO alice.loot SELECT pw FROM public.secret WHERE id = ANY (\$1)" ", label => 'alice-chunks'")")|$(P -c "SELECT count(*) FROM alice.loot")"
CID=$(P -c "SELECT max(run_id) FROM parallel_guarantee_chunk_runs WHERE label = 'alice-chunks'")
check "chunks: bob sees none of alice's chunked runs or chunks; the auditor sees them" "0|0|1|yes" \
  "$(R bob -c "SELECT count(*) FROM parallel_guarantee_chunk_runs WHERE role = 'alice'")|$(R bob -c "SELECT count(*) FROM parallel_guarantee_chunks")|$(R auditor -c "SELECT count(*) FROM parallel_guarantee_chunk_runs WHERE run_id = ${CID:-0}")|$(R auditor -c "SELECT CASE WHEN count(*) > 0 THEN 'yes' ELSE 'no' END FROM parallel_guarantee_chunks WHERE run_id = ${CID:-0}")"
check "chunks: bob can neither see nor resume alice's failed run (42704 / 42501 or 42704)" "ERROR:  42704|refused" \
  "$(err bob "SELECT parallel_guarantee_chunk_status(${CID:-0})")|$(err bob "SELECT resume_chunks(${CID:-0})" | sed -E 's/ERROR:  42(501|704)/refused/')"
# Alice's stored action failed for lack of privileges.  If someone with more privileges
# (here the superuser, as the failure's HINT invites) resumes it, it must still run with
# alice's privileges -- not with the resumer's.
RESUMED=$(P -v VERBOSITY=sqlstate -c "SET client_min_messages = warning" -c "SELECT status FROM resume_chunks(${CID:-0})" 2>&1 | head -1)
check "chunks: the superuser resuming alice's run does not run alice's action with superuser privileges (alice gets no secret rows)" "0" \
  "$(R alice -c "SELECT count(*) FROM alice.loot" 2>&1)"
echo "#   the superuser's resume_chunks(${CID:-0}) said: $RESUMED; the run's row now: $(P -c "SELECT status, role FROM parallel_guarantee_chunk_runs WHERE run_id = ${CID:-0}")"

# The resumer's session must not leak to the action: alice's action resets the role (in
# her own session that gives alice; in a superuser's resume it would give postgres).
R alice -q -c "CREATE TABLE alice.loot2 (pw text)" -c "CREATE FUNCTION alice.reset_and_take(ids int[]) RETURNS int
    LANGUAGE plpgsql AS \$f\$ BEGIN PERFORM set_config('role', 'none', true);
    EXECUTE 'INSERT INTO alice.loot2 SELECT pw FROM public.secret WHERE id = ANY (\$1)' USING ids; RETURN 1; END \$f\$" >/dev/null 2>&1
check "chunks: alice's role-resetting action fails in her own run (42501)" "ERROR:  42501" \
  "$(err alice "$(CH "SELECT id FROM alice.keys ORDER BY id" "SELECT alice.reset_and_take(\$1)" ", label => 'alice-reset'")")"
RID=$(P -c "SELECT max(run_id) FROM parallel_guarantee_chunk_runs WHERE label = 'alice-reset'")
RESUMED=$(P -v VERBOSITY=sqlstate -c "SET client_min_messages = warning" -c "SELECT status FROM resume_chunks(${RID:-0})" 2>&1 | grep -m1 -E '^(ERROR|done|failed)')
check "chunks: the superuser's resume refuses the action's RESET ROLE (42501) and alice gets no secret rows" "ERROR:  42501|0" \
  "$RESUMED|$(P -c "SELECT count(*) FROM alice.loot2" 2>&1)"

# A member of the run's role sees which chunk is running, whoever's session started the
# run: dave (SET ROLE batch) submits, erin (another member of batch) watches.  The running
# chunk comes from the run's slot, not from pg_stat_activity, which hides dave's session
# from erin.  Bob sees nothing of it.
P -q -c "CREATE ROLE erin LOGIN IN ROLE batch" \
  -c "CREATE TABLE batch.slow_keys AS SELECT g AS id FROM generate_series(1, 40) g" \
  -c "ALTER TABLE batch.slow_keys OWNER TO batch" >/dev/null
SID=$(R dave -c "SET client_min_messages = warning" -c "SET ROLE batch" \
        -c "SELECT submit_chunks(\$k\$SELECT id FROM batch.slow_keys\$k\$, \$a\$SELECT pg_sleep(1) WHERE \$1 IS NOT NULL\$a\$, chunk_size => 10, label => 'batch-slow')" 2>&1)
if [[ $SID =~ ^[0-9]+$ ]] && wait_for 1 "SELECT count(*) FROM parallel_guarantee_chunks WHERE run_id = $SID AND state = 'running'"; then
  check "chunks: erin (a member of batch) sees dave's batch run with one chunk running, by its worker (status|running|worker is the run's)" "running|1|t" \
    "$(R erin -c "SELECT status FROM parallel_guarantee_chunk_runs WHERE run_id = $SID")|$(R erin -c "SELECT count(*) FROM parallel_guarantee_chunks WHERE run_id = $SID AND state = 'running'")|$(R erin -c "SELECT bool_and(worker_pid IS NOT NULL AND started_at IS NOT NULL) FROM parallel_guarantee_chunks WHERE run_id = $SID AND state = 'running'")"
  check "chunks: bob sees no chunk of batch's run" "0" "$(R bob -c "SELECT count(*) FROM parallel_guarantee_chunks WHERE run_id = $SID")"
  P -c "SELECT parallel_guarantee_cancel($SID)" >/dev/null 2>&1
  wait_for 0 "SELECT count(*) FROM parallel_guarantee_activity" >/dev/null
else
  check "chunks: dave's submitted batch run shows a running chunk" "a run with a running chunk" \
    "$SID / $(P -c "SELECT string_agg(state, ' ') FROM parallel_guarantee_chunks WHERE run_id = ${SID//[^0-9]/0}" 2>&1)"
fi

# ------------------------------------------------------------- the end
for _ in $(seq 1 200); do
  [ "$(P -c "SELECT count(*) FROM parallel_guarantee_activity")" = 0 ] && break
  sleep 0.1
done
check "nothing left in parallel_guarantee_activity and no worker left" "0|0" \
  "$(P -c "SELECT (SELECT count(*) FROM parallel_guarantee_activity) || '|' || (SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('parallel worker', 'parallel_guarantee worker'))")"
check "server log: no PANIC, no TRAP, no process terminated by a signal" "0" \
  "$(grep -cE 'PANIC|TRAP:|terminated by signal' "$PC_LOG")"
pc_stop fast
