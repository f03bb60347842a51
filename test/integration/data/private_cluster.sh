# Sourced by crash.sh, bad_input.sh, privileges.sh, faults.sh, load.sh and test/long/run.sh: a
# private PostgreSQL cluster of their own under test/out/<name>, run as postgres on its own
# port, with the module preloaded.
# Needs ROOT (the project directory) set before it is sourced, and either PC_NAME and PC_PORT
# set before it is sourced too, or a call to pc_use before the other functions.
BIN=${PG_BIN:-/usr/lib/postgresql/${PG_MAJOR:-15}/bin}

# pc_use NAME PORT [DIR]: the cluster the pc_ functions act on, in test/out/NAME, or in DIR,
# a directory of the caller's that may hold files of its own.  The directory is also the
# unix socket directory; the data directory is DIR/data and the server log DIR/server.log.
pc_use() {
  PC_NAME=$1
  PC_PORT=$2
  PC_DIR=${3:-$ROOT/test/out/$1}
  PC_OWN_DIR=$([ -z "${3:-}" ] && echo 1 || echo 0)
  PC_DATA=$PC_DIR/data
  PC_LOG=$PC_DIR/server.log
}
if [ -n "${PC_NAME:-}" ]; then pc_use "$PC_NAME" "${PC_PORT:-}"; fi

# The settings of every private cluster; an argument of pc_init that sets the same name
# replaces one.
PC_DEFAULTS=(
  "shared_preload_libraries = 'parallel_guarantee'"
  "max_worker_processes = 16"
  "max_parallel_workers = 8"
  "parallel_setup_cost = 0"
  "parallel_tuple_cost = 0"
  "min_parallel_table_scan_size = 0"
  "fsync = off"
  "logging_collector = off"
  "log_line_prefix = '%m [%p] %b '"
)
# Those load.sh and test/long/run.sh add: room for their sessions' runs and workers; dynamic
# shared memory segments as files in the data directory, so that a leaked one can be
# counted; the SQLSTATE in each log line (their checks grep '] XX000 '); no line per attempt.
# shellcheck disable=SC2034  # used by the scripts that source this file
PC_LOAD_SETTINGS=(
  "max_worker_processes = 32"
  "max_connections = 60"
  "parallel_guarantee.max_runs = 64"
  "dynamic_shared_memory_type = mmap"
  "log_line_prefix = '%m [%p] %e '"
  "parallel_guarantee.log_attempts = off"
)

pc_ctl() { runuser -u postgres -- "$BIN/pg_ctl" -D "$PC_DATA" "$@"; }

# Stops a cluster left over by an earlier, interrupted run of the same script.
pc_stop_leftover() {
  if [ -f "$PC_DATA/postmaster.pid" ]; then pc_ctl -m immediate -w -t 30 stop >/dev/null 2>&1; fi
}

# PC_DEFAULTS but those the arguments replace, then the arguments.
pc_settings() {
  local d c
  for d in "${PC_DEFAULTS[@]}"; do
    for c in "$@"; do [ "${c%%[ =]*}" = "${d%%[ =]*}" ] && continue 2; done
    echo "$d"
  done
  for c in "$@"; do echo "$c"; done
}

# initdb a fresh cluster (extra settings as arguments) and start it.  Returns 1 if initdb
# failed, 2 if the server did not start.  Removes what an earlier run left: the whole
# directory when it is test/out/NAME, else only the data directory and the server log.
pc_init() {
  pc_stop_leftover
  if [ "$PC_OWN_DIR" = 1 ]; then rm -rf "$PC_DIR"; else rm -rf "$PC_DATA" "$PC_LOG"; fi
  mkdir -p "$PC_DIR"
  chown postgres: "$PC_DIR"
  runuser -u postgres -- "$BIN/initdb" -D "$PC_DATA" -A trust -U postgres --no-sync >/dev/null || return 1
  { echo "port = $PC_PORT"
    echo "listen_addresses = ''"
    echo "unix_socket_directories = '$PC_DIR'"
    pc_settings "$@"
  } >> "$PC_DATA/postgresql.conf"
  : > "$PC_LOG"; chown postgres: "$PC_LOG"
  pc_start || return 2
}
pc_start() { pc_ctl -l "$PC_LOG" -w -t 60 start >/dev/null; }
pc_stop() { pc_ctl -m "${1:-fast}" -w -t 60 stop >/dev/null 2>&1; }

# pc_setup DB [SETTINGS...]: pc_init, then CREATE DATABASE DB.  If a step fails, prints a
# "not ok - setup: ..." line and exits the script.
pc_setup() {
  local db=$1 rc; shift
  pc_init "$@"; rc=$?
  if [ $rc = 1 ]; then echo "not ok - setup: initdb failed"; exit 1; fi
  if [ $rc != 0 ]; then echo "not ok - setup: the private cluster did not start"; tail -20 "$PC_LOG"; exit 1; fi
  pc_psql -d postgres -q -c "CREATE DATABASE $db" || { echo "not ok - setup: could not create the database"; exit 1; }
}

# psql into the private cluster as postgres (more arguments: -d, -U, -c ...).
pc_psql() { "$BIN/psql" -h "$PC_DIR" -p "$PC_PORT" -U postgres -X "$@"; }

# Polls until the server accepts connections (bounded: 30 s).
pc_wait_ready() {
  for _ in $(seq 1 300); do
    "$BIN/psql" -h "$PC_DIR" -p "$PC_PORT" -U postgres -d postgres -X -tA -q -c "SELECT 1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}
