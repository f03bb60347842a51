#!/usr/bin/env bash
# Runs every test layer of parallel_guarantee and prints "N passed, N failed".
#   1. Catch2 unit tests of the pure C++ core (also under ASan/UBSan)
#   2. pg_regress against a temporary instance started with test/pg.conf
#   3. isolation specs (pg_isolation_regress) for two-session behaviour
#   4. integration scripts (test/integration/*.sh) against the throwaway cluster
#   5. the PostgreSQL 17 and 18 matrix (scripts/pg_matrix.sh): built out of tree with their
#      headers, installed into servers of those majors, pg_regress, isolation and a real
#      worker shortage there
# Exits non-zero if any test failed.  Run as root on Debian 12 (it installs what it needs).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PG_MAJOR=${PG_MAJOR:-15}
export PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
OUT=$ROOT/test/out
passed=0
failed=0
failures=()

bash scripts/setup.sh --tests || { echo "test: setup failed"; echo "0 passed, 1 failed"; exit 1; }
rm -rf "$OUT"
mkdir -p "$OUT"
chown -R postgres: "$OUT"
chmod o+x "$ROOT" 2>/dev/null || true
if ! runuser -u postgres -- test -r "$ROOT/Makefile"; then
  echo "test: the postgres user cannot read $ROOT (a parent directory is private); clone the project somewhere it can, such as /srv or /tmp."
  echo "0 passed, 1 failed"
  exit 1
fi

declare -A layer_units=()
count() {  # count LAYER NAME RESULT
  if [ "$3" = ok ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$1: $2"); fi
}

as_pg() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi; }

# 1. Unit tests: Catch2 reports each test case; we count them from its JUnit report.  Each
# case runs twice, plain and under ASan/UBSan, and counts once: it passes when both runs do.
echo "== unit tests (Catch2, each case plain and under ASan/UBSan) =="
declare -A unit_result=()
declare -A unit_seen_sanitized=()
unit_cases=()
for variant in run run-sanitized; do
  report=$OUT/unit-$variant.xml
  make -s -C test/unit "$variant" REPORT="$report"
  if [ ! -s "$report" ]; then
    count unit "$variant (no report: build failed)" failed
    continue
  fi
  while IFS='|' read -r name result; do
    [ -n "${unit_result[$name]+x}" ] || unit_cases+=("$name")
    if [ "$result" != ok ]; then unit_result[$name]="failed ${variant#run-}"
    elif [ -z "${unit_result[$name]+x}" ]; then unit_result[$name]=ok; fi
    [ "$variant" = run-sanitized ] && unit_seen_sanitized[$name]=1
  done < <(python3 - "$report" <<'PY'
import sys, xml.etree.ElementTree as ET
for case in ET.parse(sys.argv[1]).iter('testcase'):
    bad = case.find('failure') is not None or case.find('error') is not None
    print(f"{case.get('name')}|{'failed' if bad else 'ok'}")
PY
)
done
unit_total=0
for name in "${unit_cases[@]}"; do
  unit_total=$((unit_total + 1))
  result=${unit_result[$name]}
  [ -n "${unit_seen_sanitized[$name]+x}" ] || result="failed (not run under ASan/UBSan)"
  if [ "$result" = ok ]; then count unit "$name" ok; else count unit "$name ($result)" failed; fi
done

# 2 and 3. pg_regress and isolation specs: one line per test, "test NAME ... ok|FAILED".
pg_layer() {  # pg_layer TARGET LABEL
  echo "== $2 =="
  local log=$OUT/$1.log
  as_pg make -s "$1" PG_CONFIG="$PG_CONFIG" >"$log" 2>&1
  local rc=$?
  cat "$log"
  local n=0
  while read -r name result; do
    n=$((n + 1)); count "$2" "$name" "$result"
    layer_units[$2]=$(( ${layer_units[$2]:-0} + 1 ))
  done < <(sed -nE 's/^(not )?ok [0-9]+ +[-+] +([A-Za-z0-9_]+) .*/\2 \1/p; s/^ *(test +)?([A-Za-z0-9_]+) +\.\.\. +(ok|FAILED|failed).*/\2 \3/p' "$log" \
           | awk '{ r = ($2 == "ok") ? "ok" : "failed"; if ($2 == "not") r = "failed"; if (NF == 1) r = "ok"; print $1, r }')
  if [ "$n" = 0 ] || { [ $rc != 0 ] && ! grep -qE 'FAILED|failed|not ok' "$log"; }; then
    count "$2" "$1 (harness failed, see $log)" failed
  fi
  for f in "$OUT"/*/regression.diffs; do [ -s "$f" ] && { echo "--- $f"; head -200 "$f"; }; done
}
pg_layer regresscheck "pg_regress"
pg_layer isolationcheck "isolation"

# Runs a script that prints its plan ("1..N", the checks it declares; test/integration/
# data/tap.sh) and then "ok - what" or "not ok - what" per check, and counts the checks; a
# script that ran fewer or more checks than it declared, or declared none, fails.  Its
# output goes to test/out/LOG.log.
script_layer() {  # script_layer NAME SCRIPT LOG
  local log=$OUT/$3.log rc n=0 line planned
  timeout 900 bash "$2" >"$log" 2>&1
  rc=$?
  cat "$log"
  while IFS= read -r line; do
    n=$((n + 1))
    case "$line" in
      "ok - "*) count "$1" "${line#ok - }" ok ;;
      *) count "$1" "${line#not ok - }" failed ;;
    esac
  done < <(grep -E '^(not )?ok - ' "$log" | grep -vE "^not ok - [A-Za-z0-9_-]+: ran [0-9]+ of [0-9]+ checks$")
  layer_units[$1]=$n
  planned=$(sed -n '1s/^1\.\.\([0-9][0-9]*\)$/\1/p' "$log")
  if [ -z "$planned" ]; then count "$1" "no plan line (1..N) first: the checks it meant to run are unknown" failed
  elif [ "$planned" != "$n" ]; then count "$1" "declared $planned checks, reported $n" failed; fi
  if [ $rc != 0 ] && ! grep -q '^not ok - ' "$log"; then count "$1" "script exited $rc" failed; fi
  [ "$n" = 0 ] && [ $rc = 0 ] && count "$1" "script reported no checks" failed
}

# 4. Integration scripts against the throwaway cluster.
echo "== integration =="
# The throwaway cluster: reused if it runs already (the demo's), else started and, at the
# end, stopped again, so that the test command leaves nothing running that it started.
cluster_was_running=$(bash scripts/cluster.sh status >/dev/null 2>&1 && echo yes || echo no)
bash scripts/cluster.sh start || { count integration "cluster start" failed; }
PG_PORT=$(bash scripts/cluster.sh port); export PG_PORT  # the cluster's port, for the scripts that read it
for script in test/integration/*.sh; do
  [ -f "$script" ] || continue
  name=$(basename "$script" .sh)
  script_layer "$name" "$script" "integration-$name"
done

[ "$cluster_was_running" = yes ] || bash scripts/cluster.sh stop >/dev/null

# 5. PostgreSQL 17 and 18: their own servers, the system's 15 untouched (under a minute
# with the downloads cached in .cache/pg-matrix; 1-2 minutes on a first run).
echo "== PostgreSQL 17 and 18 (scripts/pg_matrix.sh) =="
script_layer pg-matrix scripts/pg_matrix.sh pg-matrix

echo
integration_checks=0
for name in "${!layer_units[@]}"; do
  case $name in unit|pg_regress|isolation|pg-matrix) ;; *) integration_checks=$((integration_checks + layer_units[$name])) ;; esac
done
echo "Counted: $unit_total Catch2 cases (each passed plain and under ASan/UBSan), ${layer_units[pg_regress]:-0} pg_regress files and ${layer_units[isolation]:-0} isolation specs (each a file of many assertions, counted once), $integration_checks integration checks, ${layer_units[pg-matrix]:-0} PostgreSQL 17/18 checks."
if [ $failed -gt 0 ]; then
  echo "Failed:"
  printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ $failed = 0 ]
