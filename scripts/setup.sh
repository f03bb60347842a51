#!/usr/bin/env bash
# Installs what parallel_guarantee needs on Debian 12 (as root), then builds and installs
# the extension.  Idempotent: a second run only rebuilds what changed.
#   bash scripts/setup.sh           what the demo needs: the server, its headers, pg_cron
#                                   (the throwaway cluster preloads it), g++ and make
#   bash scripts/setup.sh --tests   also what only the tests need (scripts/test.sh)
# It never upgrades or removes a PostgreSQL package: a package it needs that is missing is
# installed with apt-get --no-upgrade, the server headers at the installed server's version,
# and it says what it will install before it does.  It removes no installed file without
# saying which and why first.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "setup: $*" >&2; exit 1; }

TESTS=no
case "${1:-}" in
  '') ;;
  --tests) TESTS=yes ;;
  *) die "usage: bash scripts/setup.sh [--tests]" ;;
esac
SELF="bash scripts/setup.sh${1:+ $1}"

PG_MAJOR=${PG_MAJOR:-15}
SERVER=postgresql-$PG_MAJOR
HEADERS=postgresql-server-dev-$PG_MAJOR
PACKAGES=("$SERVER" "$HEADERS" "postgresql-$PG_MAJOR-cron" g++ make)
if [ $TESTS = yes ]; then
  # catch2: unit tests; libipc-run-perl: TAP modules; the JDBC driver and a JDK:
  # test/integration/jdbc.sh; gdb: walls.sh; python3: test.sh reads Catch2's report;
  # git (and npm, below): scripts/pg_matrix.sh.
  PACKAGES+=(catch2 libipc-run-perl libpostgresql-jdbc-java default-jdk-headless gdb python3 git)
fi

installed_version() { dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null | sed -n 's/^install ok installed //p'; }

missing=()
for p in "${PACKAGES[@]}"; do
  [ -n "$(installed_version "$p")" ] || missing+=("$p")
done
# pg_matrix.sh needs an npm command, not Debian's npm package (a nodejs from elsewhere may
# carry its own npm, and Debian's would conflict with it).
if [ $TESTS = yes ] && ! command -v npm >/dev/null; then missing+=(npm); fi

if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "packages missing (${missing[*]}); apt-get needs root: run as root: $SELF"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed; is Debian's archive reachable?"
  # Headers of the installed server's own version: a newer minor's headers are not worth an
  # upgrade of the server (PostgreSQL keeps the ABI within a major version).
  server_version=$(installed_version "$SERVER")
  request=()
  for p in "${missing[@]}"; do
    if [ "$p" = "$HEADERS" ] && [ -n "$server_version" ]; then
      if apt-cache madison "$HEADERS" | awk -F'|' '{gsub(/ /, "", $2); print $2}' | grep -qxF "$server_version"; then
        p="$HEADERS=$server_version"
      else
        echo "setup: the archive has no $HEADERS $server_version (the installed server's version); taking its current one, the server stays at $server_version"
      fi
    fi
    request+=("$p")
  done
  # What apt would do, before it does it: refused if a PostgreSQL package would be upgraded
  # or removed (apt may want to, for a dependency, even with --no-upgrade).
  apt_args=(install -y -qq --no-install-recommends --no-upgrade)
  plan=$(apt-get -s "${apt_args[@]}" "${request[@]}" 2>&1) \
    || die "apt-get cannot install ${request[*]}: $(grep '^E:' <<<"$plan" | tr '\n' ' ')"
  new=$(sed -nE 's/^Inst ([^ ]+) \(([^ ]+) .*/\1 \2/p' <<<"$plan")
  upgrades=$(sed -nE 's/^Inst ([^ ]+) \[([^]]+)\] \(([^ ]+) .*/\1 \2 -> \3/p' <<<"$plan")
  removals=$(sed -nE 's/^Remv ([^ ]+).*/\1/p' <<<"$plan")
  touched_pg=$( { cut -d' ' -f1 <<<"$upgrades"; echo "$removals"; } | grep -E '^(postgresql|libpq)' || true)
  if [ -n "$touched_pg" ]; then
    die "installing ${request[*]} would upgrade or remove PostgreSQL packages:
$( { sed 's/^/    upgrade /' <<<"$upgrades"; sed 's/^/    remove /' <<<"$removals"; } | grep -E ' (postgresql|libpq)')
setup never does that (someone may be using that server). To upgrade, do it yourself:
    apt-get install $(paste -sd' ' <<<"$touched_pg")
then run: $SELF"
  fi
  if [ -z "$new$upgrades$removals" ]; then
    echo "setup: apt has nothing to install for ${missing[*]}"
  else
    echo "setup: installing with apt-get --no-upgrade (missing: ${missing[*]}):"
    [ -z "$new" ] || sed 's/^/    new      /' <<<"$new"
    [ -z "$upgrades" ] || sed 's/^/    upgrade  /' <<<"$upgrades"
    [ -z "$removals" ] || sed 's/^/    remove   /' <<<"$removals"
    apt-get "${apt_args[@]}" "${request[@]}" >/dev/null || die "apt-get install failed for: ${request[*]}"
  fi
fi

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
[ -x "$PG_CONFIG" ] || die "pg_config not found at $PG_CONFIG"
make -s PG_CONFIG="$PG_CONFIG" >/dev/null || die "build failed (run 'make PG_CONFIG=$PG_CONFIG' to see why)"
# Install scripts of an earlier build that this build does not ship (a full script for an
# older version, say) would let CREATE EXTENSION or ALTER EXTENSION UPDATE run SQL that is
# not this build's: they are removed, each named first.
EXTDIR=$("$PG_CONFIG" --sharedir)/extension
for f in "$EXTDIR"/parallel_guarantee--*.sql; do
  [ -e "$f" ] || continue
  [ -e "sql/$(basename "$f")" ] && continue
  echo "setup: removing $f: an earlier build installed it and this build does not ship it"
  rm -f "$f"
done
make -s PG_CONFIG="$PG_CONFIG" install >/dev/null || die "make install failed (run 'make PG_CONFIG=$PG_CONFIG install' to see why)"
echo "setup: parallel_guarantee built and installed into $("$PG_CONFIG" --pkglibdir)"
