# Sourced by crash.sh, bad_input.sh and privileges.sh: a private PostgreSQL cluster of their
# own under test/out/<name>, run as postgres on its own port, with the module preloaded.
# Needs ROOT (the project directory), PC_NAME and PC_PORT set before it is sourced.
BIN=/usr/lib/postgresql/${PG_MAJOR:-15}/bin
PC_DIR=$ROOT/test/out/$PC_NAME          # also the unix socket directory
PC_DATA=$PC_DIR/data
PC_LOG=$PC_DIR/server.log

pc_ctl() { runuser -u postgres -- "$BIN/pg_ctl" -D "$PC_DATA" "$@"; }

# Stops a cluster left over by an earlier, interrupted run of the same script.
pc_stop_leftover() {
  if [ -f "$PC_DATA/postmaster.pid" ]; then pc_ctl -m immediate -w -t 30 stop >/dev/null 2>&1; fi
}

# initdb a fresh cluster (extra settings as arguments) and start it.
pc_init() {
  pc_stop_leftover
  rm -rf "$PC_DIR"
  mkdir -p "$PC_DIR"
  chown postgres: "$PC_DIR"
  runuser -u postgres -- "$BIN/initdb" -D "$PC_DATA" -A trust -U postgres --no-sync >/dev/null || return 1
  { echo "port = $PC_PORT"
    echo "listen_addresses = ''"
    echo "unix_socket_directories = '$PC_DIR'"
    echo "shared_preload_libraries = 'parallel_guarantee'"
    echo "max_worker_processes = 16"
    echo "max_parallel_workers = 8"
    echo "parallel_setup_cost = 0"
    echo "parallel_tuple_cost = 0"
    echo "min_parallel_table_scan_size = 0"
    echo "fsync = off"
    echo "logging_collector = off"
    echo "log_line_prefix = '%m [%p] %b '"
    for c in "$@"; do echo "$c"; done
  } >> "$PC_DATA/postgresql.conf"
  : > "$PC_LOG"; chown postgres: "$PC_LOG"
  pc_start
}
pc_start() { pc_ctl -l "$PC_LOG" -w -t 60 start >/dev/null; }
pc_stop() { pc_ctl -m "${1:-fast}" -w -t 60 stop >/dev/null 2>&1; }

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
