#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for parallel_guarantee, owned by the postgres user.
#   bash scripts/cluster.sh start | stop | status | psql [args] | env | port | command
# Data directory: .cluster/data under the project; socket directory: .cluster (so nothing
# else on the machine is touched).  Port: $PG_PORT when set; else the one the cluster runs
# on (postmaster.pid) or was last started on (the data directory's postgresql.conf); else
# 54329.  `start` with a PG_PORT records that port in postgresql.conf, so the other
# commands find it without PG_PORT.
#   port     prints the port;
#   command  prints how to call this script with the settings in use (PG_PORT, PG_BIN,
#            PG_MAJOR), for hints that must work as printed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PG_MAJOR=${PG_MAJOR:-15}
BIN=${PG_BIN:-/usr/lib/postgresql/$PG_MAJOR/bin}
DEFAULT_PORT=54329
DIR=$ROOT/.cluster
DATA=$DIR/data
LOG=$DIR/server.log

# The port of the data directory: the running server's (line 4 of postmaster.pid), else
# the last "port = " line of postgresql.conf (the one start writes); empty if neither.
data_port() {
  local p=''
  [ -f "$DATA/postmaster.pid" ] && { p=$(sed -n 4p "$DATA/postmaster.pid" 2>/dev/null) || p=''; }
  case $p in ''|*[!0-9]*) p='' ;; esac
  if [ -z "$p" ] && [ -f "$DATA/postgresql.conf" ]; then
    p=$(sed -nE 's/^port *= *([0-9]+).*/\1/p' "$DATA/postgresql.conf" 2>/dev/null | tail -1)
  fi
  echo "$p"
}
DATA_PORT=$(data_port)
PORT=${PG_PORT:-${DATA_PORT:-$DEFAULT_PORT}}

# This script's command line with the settings that differ from the defaults (the port
# given, else $PORT).
command_line() {
  local port=${1:-$PORT} c=''
  [ "$port" = "$DEFAULT_PORT" ] || c+="PG_PORT=$port "
  if [ -n "${PG_BIN:-}" ]; then c+=$(printf 'PG_BIN=%q ' "$PG_BIN")
  elif [ "$PG_MAJOR" != 15 ]; then c+="PG_MAJOR=$PG_MAJOR "; fi
  echo "${c}bash scripts/cluster.sh"
}

die() { echo "cluster: $*" >&2; exit 1; }
as_pg() {
  if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}
running() { [ -f "$DATA/postmaster.pid" ] && as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

start() {
  [ -x "$BIN/initdb" ] || die "PostgreSQL $PG_MAJOR is not installed in $BIN; run bash scripts/setup.sh first."
  id postgres >/dev/null 2>&1 || die "there is no postgres user; run bash scripts/setup.sh first."
  if running; then
    [ "$PORT" = "$DATA_PORT" ] \
      || die "the cluster is already running on port $DATA_PORT, not $PORT (data in $DATA); stop it first to start it on $PORT: $(command_line "$DATA_PORT") stop"
    echo "cluster: already running on port $PORT (data in $DATA); reusing it."
    return 0
  fi
  if (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; then
    die "port $PORT is in use by another program; set PG_PORT to a free port (PG_PORT=<port> bash scripts/cluster.sh start)."
  fi
  mkdir -p "$DIR"
  chown postgres: "$DIR"
  # postgres needs to reach the project directory.
  chmod o+x "$ROOT" 2>/dev/null || true
  runuser -u postgres -- test -w "$DIR" \
    || die "the postgres user cannot reach $DIR (a parent directory is private); clone the project somewhere it can, such as /srv or /tmp."
  if [ ! -f "$DATA/PG_VERSION" ]; then
    if [ -e "$DATA" ]; then
      echo "cluster: removing $DATA: it has no PG_VERSION (an initdb that did not finish)"
      rm -rf "$DATA"
    fi
    as_pg "$BIN/initdb" -D "$DATA" -A trust -U postgres --no-sync >/dev/null \
      || die "initdb failed in $DATA"
    as_pg tee -a "$DATA/postgresql.conf" >/dev/null <<CONF
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
  elif [ "$PORT" != "$(sed -nE 's/^port *= *([0-9]+).*/\1/p' "$DATA/postgresql.conf" | tail -1)" ]; then
    # Started on another port than last time: recorded, for the commands that follow.
    as_pg sed -i -E '/^port *= *[0-9]+/d' "$DATA/postgresql.conf"
    echo "port = $PORT" | as_pg tee -a "$DATA/postgresql.conf" >/dev/null
    echo "cluster: port $PORT recorded in $DATA/postgresql.conf"
  fi
  # A stale pid file from a killed server is removed by pg_ctl itself when the pid is gone.
  as_pg "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null \
    || { tail -20 "$LOG" >&2; die "the server did not start (log: $LOG)"; }
  echo "cluster: running on port $PORT (data in $DATA, log in $LOG)"
  echo "cluster: connect with: $(command_line) psql"
  echo "cluster: stop with:    $(command_line) stop"
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
  status) if running; then echo "cluster: running on port $DATA_PORT"; else echo "cluster: not running"; exit 3; fi ;;
  psql) shift; exec "$BIN/psql" -h "$DIR" -p "$PORT" -U postgres -X "$@" ;;
  env) echo "export PGHOST=$DIR PGPORT=$PORT PGUSER=postgres" ;;
  port) echo "$PORT" ;;
  command) command_line ;;
  *) die "usage: bash scripts/cluster.sh start|stop|status|psql [args]|env|port|command" ;;
esac
