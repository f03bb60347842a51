#!/usr/bin/env bash
# pg_cron end to end: a job scheduled every minute calls run_with_parallel_guarantee; its row
# in cron.job_run_details says succeeded, and the run's row in parallel_guarantee_runs (found
# by its label and by started_at lying within the job's start_time .. end_time) says
# target_met with 4 workers.  Each check prints "ok - ..." or "not ok - ..." and what it found.
#
# Needs the throwaway cluster (bash scripts/cluster.sh start), which preloads pg_cron with
# cron.database_name = 'postgres'.  Works in the database postgres: creates pg_cron there if it
# is missing (and leaves it), and parallel_guarantee (dropped at the end if this script created
# it; updated to the default version if it was older); creates and drops the table
# pg_cron_big and the job pg_guarantee_cron_test.  pg_cron 1.4 fires at minute boundaries, so
# this takes up to about two minutes.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/integration/data/tap.sh
plan 9
JOB=pg_guarantee_cron_test
LABEL=cron:$JOB
P() { bash scripts/cluster.sh psql -d postgres -tA -q "$@"; }

bash scripts/cluster.sh status >/dev/null || { not_ok "setup: the cluster is not running (bash scripts/cluster.sh start)"; exit; }
CRON_DB=$(P -c "SHOW cron.database_name" 2>&1)
[ "$CRON_DB" = postgres ] || { not_ok "setup: pg_cron is not preloaded with cron.database_name = 'postgres' (found: $CRON_DB)"; exit; }

# What existed before: drop only what this script creates.
EXT_BEFORE=$(P -c "SELECT extversion FROM pg_extension WHERE extname = 'parallel_guarantee'")
EXT_DEFAULT=$(P -c "SELECT default_version FROM pg_available_extensions WHERE name = 'parallel_guarantee'")
CREATED_EXT=0
JOBID=

cleanup() {
  # The job first, so that it fires no more; then its records and what this script created.
  if [ -n "$JOBID" ]; then
    P -c "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobid = $JOBID" >/dev/null 2>&1
    P -c "DELETE FROM cron.job_run_details WHERE jobid = $JOBID" >/dev/null 2>&1
  fi
  # A firing still in progress would hold pg_cron_big: stop it (bounded by the lock timeout).
  P -c "SELECT pg_cancel_backend(worker_pid) FROM parallel_guarantee_activity WHERE label = '$LABEL'" >/dev/null 2>&1
  P -c "SET lock_timeout = '20s'" -c "DROP TABLE IF EXISTS pg_cron_big" >/dev/null
  if [ $CREATED_EXT = 1 ]; then
    P -c "SET lock_timeout = '20s'" -c "DROP EXTENSION IF EXISTS parallel_guarantee" >/dev/null
  else
    P -c "DELETE FROM parallel_guarantee_run_history WHERE label = '$LABEL'" >/dev/null 2>&1
  fi
}
tap_on_exit cleanup

# Setup in postgres: pg_cron, parallel_guarantee at its default version, a table that plans 4
# workers, and no job of ours left over from an interrupted run.
P -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS pg_cron" >/dev/null \
  || { not_ok "setup: could not create the pg_cron extension in postgres"; exit; }
if [ -z "$EXT_BEFORE" ]; then
  P -v ON_ERROR_STOP=1 -c "CREATE EXTENSION parallel_guarantee" >/dev/null \
    || { not_ok "setup: could not create the parallel_guarantee extension in postgres"; exit; }
  CREATED_EXT=1
elif [ "$EXT_BEFORE" != "$EXT_DEFAULT" ]; then
  echo "# parallel_guarantee $EXT_BEFORE was installed in postgres; updating it to $EXT_DEFAULT (it stays updated)"
  P -v ON_ERROR_STOP=1 -c "ALTER EXTENSION parallel_guarantee UPDATE" >/dev/null \
    || { not_ok "setup: could not update parallel_guarantee in postgres from $EXT_BEFORE"; exit; }
fi
# The run's function must be the one a fresh install has (label is its last argument).
SIG="run_with_parallel_guarantee(text,text,integer,integer,integer,interval,boolean,boolean,boolean,interval,integer,text)"
if [ "$(P -c "SELECT to_regprocedure('$SIG') IS NOT NULL")" != t ]; then
  not_ok "setup: parallel_guarantee in postgres does not have $SIG" \
    "it has: $(P -c "SELECT string_agg(oid::regprocedure::text, ', ') FROM pg_proc WHERE proname = 'run_with_parallel_guarantee'")" \
    "(installed from an older script; reinstall it: DROP EXTENSION parallel_guarantee; CREATE EXTENSION parallel_guarantee;)"
  exit
fi
# A job of ours left over from a run of this script that was killed.
P -c "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = '$JOB' AND username = current_user" >/dev/null
P -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || { not_ok "setup: could not create the table pg_cron_big"; exit; }
SET client_min_messages = warning;
DROP TABLE IF EXISTS pg_cron_big;
CREATE TABLE pg_cron_big (id int, pad text) WITH (parallel_workers = 4);
INSERT INTO pg_cron_big SELECT g, 'x' FROM generate_series(1, 200000) g;
VACUUM ANALYZE pg_cron_big;
SQL
check "parallel_guarantee in postgres is at the default version" "$EXT_DEFAULT" \
  "$(P -c "SELECT extversion FROM pg_extension WHERE extname = 'parallel_guarantee'")"

# The job: a SELECT (its rows are discarded), so that every firing can succeed.
JOBID=$(P -c "SELECT cron.schedule('$JOB', '* * * * *', \$job\$SELECT status FROM run_with_parallel_guarantee('SELECT count(*) FROM pg_cron_big', label => '$LABEL')\$job\$)" 2>&1)
if ! [[ $JOBID =~ ^[0-9]+$ ]]; then
  check "cron.schedule returns a job id" "a number" "$JOBID"
  JOBID=
  exit
fi
ok "the job $JOB is scheduled (job id $JOBID), every minute"

# Poll (bounded: 130 s) until the job has a finished run.
FINISHED_Q="SELECT count(*) > 0 FROM cron.job_run_details d WHERE d.jobid = $JOBID AND d.end_time IS NOT NULL"
deadline=$(( $(date +%s) + 130 ))
found=f
while [ "$(date +%s)" -lt $deadline ]; do
  found=$(P -c "$FINISHED_Q" 2>/dev/null)
  [ "$found" = t ] && break
  sleep 1
done
# No more firings: unschedule before looking at the results.
P -c "SELECT cron.unschedule($JOBID)" >/dev/null
details() {
  echo "# cron.job_run_details of the job:"
  P -c "SELECT runid, status, return_message, start_time, end_time FROM cron.job_run_details WHERE jobid = $JOBID" 2>&1 | sed 's/^/#   /'
  echo "# runs labelled $LABEL:"
  P -c "SELECT run_id, status, started_at, finished_at, workers_launched, sqlstate, message FROM parallel_guarantee_runs WHERE label = '$LABEL'" 2>&1 | sed 's/^/#   /'
}
if [ "$found" != t ]; then
  check "within 130 s pg_cron ran the job" "t" "$found"
  details
  exit
fi
ok "within 130 s pg_cron ran the job"

# The job's first finished firing, and the runs that started within it.
read -r RUNID CRON_STATUS < <(P -F ' ' -c "SELECT runid, status FROM cron.job_run_details WHERE jobid = $JOBID AND end_time IS NOT NULL ORDER BY start_time LIMIT 1")
check "the job's run in cron.job_run_details succeeded (its SELECT returned one row)" "succeeded|1 row" \
  "$(P -c "SELECT status, return_message FROM cron.job_run_details WHERE runid = $RUNID")"
MATCH_Q="FROM parallel_guarantee_runs r, cron.job_run_details d
         WHERE d.runid = $RUNID AND r.label = '$LABEL' AND r.started_at BETWEEN d.start_time AND d.end_time"
check "exactly one run labelled $LABEL started between the job's start_time and end_time" "1" "$(P -c "SELECT count(*) $MATCH_Q")"
check "that run met its target: status, planned and launched workers, role, database, statement" \
  "target_met|4|4|postgres|postgres|SELECT count(*) FROM pg_cron_big" \
  "$(P -c "SELECT r.status, r.workers_planned, r.workers_launched, r.role, r.database, r.statement $MATCH_Q")"
check "that run also finished before the job's end_time" "t" "$(P -c "SELECT bool_and(r.finished_at <= d.end_time) $MATCH_Q")"
check "its attempts are all recorded, numbered 1 to attempts, the last with 4 workers launched (rows = attempts|last)" "true|4|target met" \
  "$(P -c "SELECT (count(*) = max(r.attempts) AND min(a.attempt) = 1 AND max(a.attempt) = max(r.attempts))::text || '|' ||
                  (array_agg(a.workers_launched || '|' || a.outcome ORDER BY a.attempt DESC))[1]
             FROM parallel_guarantee_attempts a JOIN parallel_guarantee_runs r USING (run_id)
            WHERE a.run_id = (SELECT r.run_id $MATCH_Q)" 2>&1)"
# Every firing of the job called the function once: once the firings are over (the job is
# unscheduled above), the runs labelled $LABEL are exactly as many as the firings, all
# finished, and the label summary counts them all.
for _ in $(seq 1 300); do
  [ "$(P -c "SELECT count(*) FROM cron.job_run_details WHERE jobid = $JOBID AND status NOT IN ('succeeded', 'failed')" 2>&1)" = 0 ] && break
  sleep 0.1
done
FIRINGS=$(P -c "SELECT count(*) FROM cron.job_run_details WHERE jobid = $JOBID" 2>&1)
echo "# the job fired $FIRINGS time(s)"
check "each firing of the job is one finished run in the history, all counted by the label summary (firings|runs|finished|summary runs|summary target_met)" \
  "$FIRINGS|$FIRINGS|$FIRINGS|$FIRINGS|$FIRINGS" \
  "$FIRINGS|$(P -c "SELECT count(*) || '|' || count(*) FILTER (WHERE status = 'target_met' AND finished_at IS NOT NULL) || '|' ||
                           coalesce((SELECT runs || '|' || target_met FROM parallel_guarantee_label_summary WHERE label = '$LABEL'), 'no summary row')
                      FROM parallel_guarantee_runs WHERE label = '$LABEL'" 2>&1)"

[ $TAP_FAILED = 0 ] || details
