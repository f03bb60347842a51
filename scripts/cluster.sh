#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for parallel_guarantee, owned by the postgres user.
#   scripts/cluster.sh start | stop | status | psql [args] | env
# Data directory: .cluster/data under the project; port: $PG_PORT (default 54329);
# socket directory: .cluster (so nothing else on the machine is touched).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PG_MAJOR=${PG_MAJOR:-15}
BIN=${PG_BIN:-/usr/lib/postgresql/$PG_MAJOR/bin}
PORT=${PG_PORT:-54329}
DIR=$ROOT/.cluster
DATA=$DIR/data
LOG=$DIR/server.log

die() { echo "cluster: $*" >&2; exit 1; }
as_pg() {
  if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}
running() { [ -f "$DATA/postmaster.pid" ] && as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

start() {
  [ -x "$BIN/initdb" ] || die "PostgreSQL $PG_MAJOR is not installed; run scripts/setup.sh first."
  id postgres >/dev/null 2>&1 || die "there is no postgres user; run scripts/setup.sh first."
  if running; then
    echo "cluster: already running on port $PORT (data in $DATA); reusing it."
    return 0
  fi
  if (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; then
    die "port $PORT is in use by another program; set PG_PORT to a free port."
  fi
  mkdir -p "$DIR"
  chown postgres: "$DIR"
  # postgres needs to reach the project directory.
  chmod o+x "$ROOT" 2>/dev/null || true
  runuser -u postgres -- test -w "$DIR" \
    || die "the postgres user cannot reach $DIR (a parent directory is private); clone the project somewhere it can, such as /srv or /tmp."
  if [ ! -f "$DATA/PG_VERSION" ]; then
    rm -rf "$DATA"
    as_pg "$BIN/initdb" -D "$DATA" -A trust -U postgres --no-sync >/dev/null \
      || die "initdb failed in $DATA"
    cat >> "$DATA/postgresql.conf" <<CONF
# parallel_guarantee demo cluster
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
shared_preload_libraries = 'parallel_guarantee, pg_cron'
cron.database_name = 'postgres'
cron.host = '$DIR'
max_worker_processes = 16
max_parallel_workers = 8
max_parallel_workers_per_gather = 2
fsync = off
logging_collector = off
log_line_prefix = '%m [%p] '
CONF
  fi
  # A stale pid file from a killed server is removed by pg_ctl itself when the pid is gone.
  as_pg "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null \
    || { tail -20 "$LOG" >&2; die "the server did not start (log: $LOG)"; }
  echo "cluster: running on port $PORT (data in $DATA, log in $LOG)"
}

stop() {
  if running; then
    as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
    echo "cluster: stopped"
  else
    echo "cluster: not running"
  fi
}

case "${1:-status}" in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "cluster: running on port $PORT"; else echo "cluster: not running"; exit 3; fi ;;
  psql) shift; exec "$BIN/psql" -h "$DIR" -p "$PORT" -U postgres -X "$@" ;;
  env) echo "export PGHOST=$DIR PGPORT=$PORT PGUSER=postgres" ;;
  *) die "usage: scripts/cluster.sh start|stop|status|psql|env" ;;
esac
