#!/usr/bin/env bash
# pg_cron end to end, with the README's example exactly as the README shows it:
#
# README example:
# -- In the database pg_cron runs in (cron.database_name), as a superuser or a role granted
# -- EXECUTE on cron.schedule_in_database: every night at 02:00, in the database sales_db.
# -- pg_cron's session there has no search_path for the extension: qualify the name.
# -- The DO block drops last night's table and builds the new one in one transaction, so
# -- the job can run every night, and an attempt abandoned for want of workers leaves
# -- last night's table in place.
# SELECT cron.schedule_in_database('nightly-sales', '0 2 * * *', $job$
#     SELECT status FROM parallel_guarantee.run_with_parallel_guarantee(
#         $stmt$
#         DO $$
#         BEGIN
#             DROP TABLE IF EXISTS tmp_sales;
#             CREATE TABLE tmp_sales AS SELECT region, sum(amount) FROM sales GROUP BY region;
#         END
#         $$
#         $stmt$,
#         target_workers => 4,
#         min_workers    => 2,
#         label          => 'cron:nightly-sales')
# $job$, 'sales_db');
# (end of README example)
#
# The script runs that text (read from the comment above), changing only the schedule
# '0 2 * * *' to every minute ('* * * * *': pg_cron 1.4 schedules by the minute; '5 seconds'
# on pg_cron 1.5 or later).  It waits for two finished firings, then checks that
# cron.job_run_details says both succeeded and that parallel_guarantee_runs in sales_db has
# each firing's run, labelled cron:nightly-sales, target_met with 4 workers, started within
# the firing.  Each check prints "ok - ..." or "not ok - ..." and what it found.
#
# Why the statement is a DO block: the cleanup argument runs only after an attempt that did
# not succeed, so a bare CREATE TABLE tmp_sales AS ... fails the second night (42P07,
# "relation already exists"); a DROP TABLE in the job's command before the SELECT runs in
# the same transaction as the call (pg_cron sends the command as one query string), so the
# run's worker waits for the caller's lock and the run is stopped (40P01).
#
# Needs the throwaway cluster (bash scripts/cluster.sh start; PG_BIN, PG_PORT as for it),
# which preloads pg_cron with cron.database_name = 'postgres'.  Creates pg_cron in postgres if
# it is missing (and leaves it); creates and drops the database sales_db (refusing to touch
# a sales_db it did not create) and the job nightly-sales.  Takes two to three minutes.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/integration/data/tap.sh
plan 11
SELF=test/integration/pg_cron.sh
JOB=nightly-sales
LABEL=cron:nightly-sales
DB=sales_db
S=parallel_guarantee
MARK="created by test/integration/pg_cron.sh"
P() { bash scripts/cluster.sh psql -d postgres -tA -q "$@"; }
PD() { bash scripts/cluster.sh psql -d "$DB" -tA -q "$@"; }

# The example, exactly as in the comment block above.
EXAMPLE=$(sed -n '/^# README example:$/,/^# (end of README example)$/p' "$SELF" | sed '1d;$d' | sed -E 's/^# ?//')

bash scripts/cluster.sh status >/dev/null || { not_ok "setup: the cluster is not running (bash scripts/cluster.sh start)"; exit; }
CRON_DB=$(P -c "SHOW cron.database_name" 2>&1)
check "pg_cron is preloaded and runs its jobs from database postgres (cron.database_name), not $DB" "postgres" "$CRON_DB"
[ "$CRON_DB" = postgres ] || exit

JOBID=
CREATED_DB=0
cleanup() {
  # The job first, so that it fires no more; then its records and the database.
  if [ -n "$JOBID" ]; then
    P -c "SELECT cron.unschedule($JOBID)" >/dev/null 2>&1
    P -c "DELETE FROM cron.job_run_details WHERE jobid = $JOBID" >/dev/null 2>&1
  fi
  if [ $CREATED_DB = 1 ]; then
    P -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
  fi
}
tap_on_exit cleanup

# pg_cron in postgres; a sales_db of our own (one a killed run of this script left is ours).
P -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS pg_cron" >/dev/null \
  || { not_ok "setup: could not create the pg_cron extension in postgres"; exit; }
existing=$(P -c "SELECT coalesce(shobj_description(oid, 'pg_database'), '(no comment)') FROM pg_database WHERE datname = '$DB'")
if [ -n "$existing" ] && [ "$existing" != "$MARK" ]; then
  not_ok "setup: a database $DB exists that this script did not create (comment: $existing); not touching it"; exit
fi
# Jobs of ours left over by a killed run.
P -c "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = '$JOB' AND username = current_user AND database = '$DB'" >/dev/null
P -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
P -v ON_ERROR_STOP=1 -c "CREATE DATABASE $DB" -c "COMMENT ON DATABASE $DB IS '$MARK'" >/dev/null \
  || { not_ok "setup: could not create the database $DB"; exit; }
CREATED_DB=1
PD -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || { not_ok "setup: could not create the extension and the table sales in sales_db"; exit; }
SET client_min_messages = warning;
CREATE EXTENSION parallel_guarantee;
CREATE TABLE sales (region int, amount numeric) WITH (parallel_workers = 4);
INSERT INTO sales SELECT g % 50, g FROM generate_series(1, 200000) g;
VACUUM ANALYZE sales;
SQL
EXT_DEFAULT=$(P -c "SELECT default_version FROM pg_available_extensions WHERE name = 'parallel_guarantee'")
check "$DB has parallel_guarantee at the default version, in schema $S" "$EXT_DEFAULT|$S" \
  "$(PD -c "SELECT extversion || '|' || extnamespace::regnamespace FROM pg_extension WHERE extname = 'parallel_guarantee'")"
check "a new session in $DB (as pg_cron's is) does not find the unqualified name; the qualified one it does" "|$S.run_with_parallel_guarantee" \
  "$(PD -c "SELECT coalesce(to_regproc('run_with_parallel_guarantee')::text, '') || '|' || coalesce(to_regproc('$S.run_with_parallel_guarantee')::text, '')")"

# The example, with only its schedule changed.
CRON_VERSION=$(P -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'")
if [ "$(printf '%s\n' "$CRON_VERSION" 1.5 | sort -V | head -1)" = 1.5 ]; then SCHEDULE='5 seconds'; else SCHEDULE='* * * * *'; fi
RUN_TEXT=${EXAMPLE/"'0 2 * * *'"/"'$SCHEDULE'"}
[ "$(grep -c "'0 2 \* \* \*'" <<<"$EXAMPLE")" = 1 ] && [ "$RUN_TEXT" != "$EXAMPLE" ] \
  || { not_ok "setup: the README example in $SELF does not have its schedule '0 2 * * *' once"; exit; }
echo "# pg_cron $CRON_VERSION: the example runs with the schedule '$SCHEDULE'"
JOBID=$(P -v ON_ERROR_STOP=1 <<<"$RUN_TEXT" 2>&1)
if ! [[ $JOBID =~ ^[0-9]+$ ]]; then
  check "the README example, run in postgres, returns a job id" "a number" "$JOBID"
  JOBID=
  exit
fi
ok "the README example, run in postgres, returns a job id ($JOBID)"
# The command: the text between the two $job$ quotes.
EXPECTED_COMMAND=${EXAMPLE#*\$job\$}
EXPECTED_COMMAND=$(printf '%s' "${EXPECTED_COMMAND%%\$job\$*}")
check "cron.job has the job: name $JOB, database $DB, run as postgres, the command as written" "$JOB|$DB|postgres|same command" \
  "$(P -c "SELECT jobname || '|' || database || '|' || username FROM cron.job WHERE jobid = $JOBID")|$(
     [ "$(P -c "SELECT command FROM cron.job WHERE jobid = $JOBID")" = "$EXPECTED_COMMAND" ] && echo "same command" || echo "another command")"

# Poll (bounded: 200 s) until two firings have finished.
FINISHED_Q="SELECT count(*) FROM cron.job_run_details WHERE jobid = $JOBID AND end_time IS NOT NULL"
deadline=$(( $(date +%s) + 200 ))
finished=0
while [ "$(date +%s)" -lt $deadline ]; do
  finished=$(P -c "$FINISHED_Q" 2>/dev/null)
  [ "${finished:-0}" -ge 2 ] && break
  sleep 1
done
# No more firings: unschedule before looking at the results, and let one in progress end.
P -c "SELECT cron.unschedule($JOBID)" >/dev/null
for _ in $(seq 1 300); do
  [ "$(P -c "SELECT count(*) FROM cron.job_run_details WHERE jobid = $JOBID AND status NOT IN ('succeeded', 'failed')" 2>&1)" = 0 ] && break
  sleep 0.1
done
details() {
  echo "# cron.job_run_details of the job:"
  P -c "SELECT runid, status, return_message, start_time, end_time FROM cron.job_run_details WHERE jobid = $JOBID ORDER BY start_time" 2>&1 | sed 's/^/#   /'
  echo "# runs labelled $LABEL in $DB:"
  PD -c "SELECT run_id, status, started_at, finished_at, workers_launched, sqlstate, message FROM $S.parallel_guarantee_runs WHERE label = '$LABEL' ORDER BY run_id" 2>&1 | sed 's/^/#   /'
}
check "within 200 s pg_cron fired the job twice and both firings finished" "2" "$([ "${finished:-0}" -ge 2 ] && echo 2 || echo "${finished:-0}")"
if [ "${finished:-0}" -lt 2 ]; then details; exit; fi

FIRST_TWO="SELECT * FROM cron.job_run_details WHERE jobid = $JOBID AND end_time IS NOT NULL ORDER BY start_time LIMIT 2"
check "cron.job_run_details: both firings succeeded (the SELECT returned its one row; the second found last night's table and replaced it)" \
  "succeeded|1 row,succeeded|1 row" \
  "$(P -c "SELECT string_agg(status || '|' || return_message, ',' ORDER BY start_time) FROM ($FIRST_TWO) d")"
# The runs of those two firings: in sales_db, started between the firing's start and end.
WINDOWS=$(P -F ' ' -c "SELECT format('(%L::timestamptz, %L::timestamptz)', start_time, end_time) FROM ($FIRST_TWO) d ORDER BY start_time" | paste -sd,)
check "parallel_guarantee_runs in $DB: each of the two firings is one run labelled $LABEL, target_met, 4 of 4 workers, as postgres, the DO block" \
  "1|guaranteed|target_met|4|4|postgres|$DB|DO,1|guaranteed|target_met|4|4|postgres|$DB|DO" \
  "$(PD -c "SELECT string_agg(x, ',' ORDER BY s) FROM (
        SELECT w.s, (SELECT count(*) || '|' || min(r.kind) || '|' || min(r.status) || '|' || min(r.workers_planned) || '|' || min(r.workers_launched)
                            || '|' || min(r.role) || '|' || min(r.database) || '|' || min(split_part(ltrim(r.statement, E' \n'), ' ', 1))
                       FROM $S.parallel_guarantee_runs r
                      WHERE r.label = '$LABEL' AND r.started_at BETWEEN w.s AND w.e AND r.finished_at <= w.e) AS x
          FROM (VALUES $WINDOWS) AS w(s, e)) f" 2>&1)"
check "the table the statement builds is there: tmp_sales with its 50 regions" "50" "$(PD -c "SELECT count(*) FROM tmp_sales" 2>&1)"
FIRINGS=$(P -c "SELECT count(*) FROM cron.job_run_details WHERE jobid = $JOBID" 2>&1)
echo "# the job fired $FIRINGS time(s)"
check "every firing is one finished run, and parallel_guarantee_label_summary counts them all target_met (firings|runs|target_met|summary runs|summary target_met)" \
  "$FIRINGS|$FIRINGS|$FIRINGS|$FIRINGS|$FIRINGS" \
  "$FIRINGS|$(PD -c "SELECT count(*) || '|' || count(*) FILTER (WHERE status = 'target_met' AND finished_at IS NOT NULL) || '|' ||
                           coalesce((SELECT runs || '|' || target_met FROM $S.parallel_guarantee_label_summary WHERE label = '$LABEL'), 'no summary row')
                      FROM $S.parallel_guarantee_runs WHERE label = '$LABEL'" 2>&1)"
check "cron.job_run_details has no failed firing" "0" "$(P -c "SELECT count(*) FROM cron.job_run_details WHERE jobid = $JOBID AND status <> 'succeeded'")"

[ $TAP_FAILED = 0 ] || details
