#!/usr/bin/env bash
# Installs everything parallel_guarantee needs on Debian 12 (as root), then builds and
# installs the extension. Idempotent: a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "setup: $*" >&2; exit 1; }

PG_MAJOR=${PG_MAJOR:-15}
PACKAGES=(
  "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" "postgresql-contrib"
  "postgresql-$PG_MAJOR-cron" catch2 libipc-run-perl libpostgresql-jdbc-java
  default-jdk-headless g++ make clang-14 llvm-14 gdb
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# The server headers must match the installed server's minor version; when the archive
# offers a newer minor we let apt upgrade the server, libpq and friends together.
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "packages missing (${missing[*]}) and apt-get needs root; run as root."
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed; is Debian's archive reachable?"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" "postgresql-client-$PG_MAJOR" libpq5 >/dev/null \
    || die "apt-get install failed for: ${missing[*]}"
fi

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
[ -x "$PG_CONFIG" ] || die "pg_config not found at $PG_CONFIG"
make -s PG_CONFIG="$PG_CONFIG" >/dev/null || die "build failed (run 'make' to see why)"
# Scripts of an earlier build (a full script for an older version, say) must not shadow
# the ones this build installs.
rm -f "$("$PG_CONFIG" --sharedir)"/extension/parallel_guarantee--*.sql
make -s PG_CONFIG="$PG_CONFIG" install >/dev/null || die "make install failed"
echo "setup: parallel_guarantee built and installed into $("$PG_CONFIG" --pkglibdir)"
