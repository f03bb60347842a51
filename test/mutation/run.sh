#!/usr/bin/env bash
# A check that the checks can fail: a mutation round.  Each mutant is one small change to
# the extension's C++ (src/) that breaks one promise of the README; the test that guards
# that promise is run against the mutated build and must go red.
#
#   mutant      the change                                          the test that must go red
#   cleanup     RunCleanup returns at once: the cleanup never runs   pg_regress guarantee
#   one-more    every Gather launch counts one worker more           pg_regress guarantee
#   never-done  a chunk's commit marks it 'pending', never 'done'    pg_regress chunks
#   visibility  CanSee says yes: every role sees every run           test/integration/privileges.sh
#   queue       the queue serves the last come first                 isolation queue_three
#
# How to run it (as root, on a machine where `bash scripts/test.sh` runs: PostgreSQL
# $PG_MAJOR's server and headers, g++; nothing else of the suite needs to be running):
#     bash test/mutation/run.sh                    # every mutant, about 2 minutes on 2 cores
#     bash test/mutation/run.sh cleanup queue      # only the mutants named
# Before the mutants, each test named above runs once against the unmutated build and must
# pass (a test that is red anyway proves nothing).  Output is TAP, like the integration
# scripts: "1..N", then "ok - baseline: TEST passes unmutated" per test and "ok - mutant
# NAME: TEST goes red" per mutant (with the first lines that went red), or "not ok -
# mutant NAME survived: TEST stays green".  The exit status is 1 if a mutant survived, a
# baseline failed or something could not be built.
#
# It never writes the project's own tree or the system's PostgreSQL:
#   - the files git knows (with their current content) are copied to $MUTATION_DIR/tree,
#     and the mutants are applied, built and tested there;
#   - PostgreSQL's installed files are copied once to $MUTATION_DIR/pg (PostgreSQL finds
#     its libraries and extensions relative to its binaries), and the mutated library is
#     installed into that copy only;
#   - the last check compares a checksum of the project's src/ before and after.
# Environment: MUTATION_DIR (default /tmp/parallel_guarantee_mutation), PG_MAJOR (15),
# MUTATION_PORT (default 55490: the private cluster of the integration scripts it runs).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
. test/integration/data/tap.sh

PG_MAJOR=${PG_MAJOR:-15}
WORK=${MUTATION_DIR:-/tmp/parallel_guarantee_mutation}
TREE=$WORK/tree
PGROOT=$WORK/pg
PGC=$PGROOT/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
PORT=${MUTATION_PORT:-55490}
LOGS=$WORK/logs

# name|file|test|what breaks
MUTANTS=(
  "cleanup|src/pg/worker/run_worker.cpp|regress:guarantee|RunCleanup returns at once: the cleanup never runs"
  "one-more|src/pg/worker/monitor.cpp|regress:guarantee|every Gather launch counts one worker more than it got"
  "never-done|src/pg/history_chunks.cpp|regress:chunks|a chunk's commit marks it 'pending', never 'done'"
  "visibility|src/pg/api/views.cpp|integration:privileges|CanSee says yes: every role sees (and may be told about) every run"
  "queue|src/pg/shmem/run_slots.cpp|isolation:queue_three|the queue serves the last come first"
)
# The change of each mutant: the text replaced (it must occur exactly once) and its
# replacement.
mutant_old() {
  case $1 in
    cleanup) printf '%s' '    if (!g_run->has_cleanup) return;' ;;
    one-more) printf '%s' '    int launched = LaunchedWorkers(w->gather);' ;;
    never-done) printf '%s' "\"UPDATE %s SET state = 'done', attempts = attempts\"" ;;
    visibility) printf '%s' '    return has_privs_of_role(GetUserId(), run_user) ||
           has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);' ;;
    queue) printf '%s' '    return a->ticket < b->ticket;' ;;
  esac
}
mutant_new() {
  case $1 in
    cleanup) printf '%s' '    return;  /* MUTANT: the cleanup never runs */' ;;
    one-more) printf '%s' '    int launched = LaunchedWorkers(w->gather) + 1;  /* MUTANT: one worker too many */' ;;
    never-done) printf '%s' "\"UPDATE %s SET state = 'pending', attempts = attempts\"" ;;
    visibility) printf '%s' '    (void) run_user;
    return true;  /* MUTANT: no visibility rule */' ;;
    queue) printf '%s' '    return a->ticket > b->ticket;  /* MUTANT: last come, first served */' ;;
  esac
}

# The mutants asked for (all by default), and the tests they need.
WANTED=("$@")
SELECTED=()
for m in "${MUTANTS[@]}"; do
  name=${m%%|*}
  if [ ${#WANTED[@]} = 0 ] || printf '%s\n' "${WANTED[@]}" | grep -qxF -- "$name"; then SELECTED+=("$m"); fi
done
for w in "${WANTED[@]}"; do
  printf '%s\n' "${MUTANTS[@]}" | cut -d'|' -f1 | grep -qxF -- "$w" || { echo "mutation: no mutant named '$w'" >&2; exit 2; }
done
TESTS=$(printf '%s\n' "${SELECTED[@]}" | cut -d'|' -f3 | awk '!seen[$0]++')
# One baseline per test, one check per mutant, and src/ untouched.
plan $(( $(echo "$TESTS" | grep -c .) + ${#SELECTED[@]} + 1 ))

src_sum() { (cd "$ROOT" && find src -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1); }
SRC_BEFORE=$(src_sum)
T0=$(date +%s)

# ---------------------------------------------------------------- the scratch copies
[ -n "$WORK" ] && [ "$WORK" != / ] || { not_ok "setup: MUTATION_DIR must name a scratch directory"; exit; }
mkdir -p "$WORK" "$LOGS"
chmod 755 "$WORK"
if [ ! -x "$PGC" ]; then
  echo "# copying PostgreSQL $PG_MAJOR's installed files to $PGROOT (once)"
  mkdir -p "$PGROOT/usr/lib/postgresql" "$PGROOT/usr/share/postgresql" "$PGROOT/usr/include"
  cp -a "/usr/lib/postgresql/$PG_MAJOR" "$PGROOT/usr/lib/postgresql/" \
    && cp -a "/usr/share/postgresql/$PG_MAJOR" "$PGROOT/usr/share/postgresql/" \
    && cp -a /usr/include/postgresql "$PGROOT/usr/include/" \
    || { not_ok "setup: could not copy PostgreSQL $PG_MAJOR from /usr (is it installed?)"; exit; }
fi
[ "$("$PGC" --pkglibdir)" = "$PGROOT/usr/lib/postgresql/$PG_MAJOR/lib" ] \
  || { not_ok "setup: the copy's pg_config does not point into the copy ($("$PGC" --pkglibdir))"; exit; }
rm -rf -- "$TREE"
mkdir -p "$TREE"
git -C "$ROOT" ls-files -z | (cd "$ROOT" && tar --null --ignore-failed-read -T - -cf -) | (cd "$TREE" && tar -xf -) \
  || { not_ok "setup: could not copy the project's files to $TREE"; exit; }
mkdir -p "$TREE/test/out"
chown -R postgres: "$TREE/test/out" "$LOGS"
runuser -u postgres -- test -r "$TREE/Makefile" || { not_ok "setup: the postgres user cannot read $TREE"; exit; }

build() {  # build LOG: builds the scratch tree and installs it into the PostgreSQL copy
  (cd "$TREE" && make -s -j2 PG_CONFIG="$PGC" install) >"$1" 2>&1
}
# run_test TEST LOG: 0 if the test passed.
run_test() {
  local kind=${1%%:*} name=${1#*:}
  rm -rf "$TREE/test/out"; mkdir -p "$TREE/test/out"; chown postgres: "$TREE/test/out"
  case $kind in
    regress) (cd "$TREE" && timeout 600 runuser -u postgres -- make -s PG_CONFIG="$PGC" regresscheck REGRESS="$name") >"$2" 2>&1 ;;
    isolation) (cd "$TREE" && timeout 600 runuser -u postgres -- make -s PG_CONFIG="$PGC" isolationcheck ISOLATION="$name") >"$2" 2>&1 ;;
    integration) (cd "$TREE" && PG_BIN="$("$PGC" --bindir)" PRIVILEGES_PORT=$PORT CRASH_PORT=$PORT BAD_INPUT_PORT=$PORT \
                    LOAD_PORT=$PORT timeout 600 bash "test/integration/$name.sh") >"$2" 2>&1 ;;
  esac
}
# What went red: the first "not ok" lines, or the start of pg_regress's diffs.
red_lines() {
  { grep -m3 '^not ok - ' "$1"
    for d in "$TREE"/test/out/*/regression.diffs; do [ -s "$d" ] && grep -m4 '^[-+][^-+]' "$d"; done
  } 2>/dev/null | head -4 | cut -c1-160
}

# ---------------------------------------------------------------- the baseline
if ! build "$LOGS/build-baseline.log"; then
  not_ok "setup: the unmutated tree does not build (log: $LOGS/build-baseline.log)"; exit
fi
for t in $TESTS; do
  if run_test "$t" "$LOGS/baseline-${t/:/-}.log"; then ok "baseline: $t passes unmutated"
  else not_ok "baseline: $t passes unmutated" "log: $LOGS/baseline-${t/:/-}.log"; red_lines "$LOGS/baseline-${t/:/-}.log" | sed 's/^/#     /'; fi
done

# ---------------------------------------------------------------- the mutants
for m in "${SELECTED[@]}"; do
  IFS='|' read -r name file test what <<<"$m"
  t1=$(date +%s)
  log=$LOGS/mutant-$name.log
  # Apply: the text must occur exactly once in the scratch copy's file.
  if ! python3 - "$TREE/$file" "$(mutant_old "$name")" "$(mutant_new "$name")" <<'PY'
import sys
path, old, new = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path).read()
if text.count(old) != 1:
    sys.exit("the text to mutate occurs %d times in %s" % (text.count(old), path))
open(path, "w").write(text.replace(old, new))
PY
  then
    not_ok "mutant $name ($what): could not be applied to $file (the source changed: update test/mutation/run.sh)"
    continue
  fi
  if ! build "$log.build"; then
    not_ok "mutant $name ($what): does not build" "log: $log.build"
  elif run_test "$test" "$log"; then
    not_ok "mutant $name survived: $test stays green ($what)" "log: $log"
  else
    ok "mutant $name ($what): $test goes red ($(( $(date +%s) - t1 )) s)"
    red_lines "$log" | sed 's/^/#     /'
  fi
  # Back to the project's own text of the file.
  cp "$ROOT/$file" "$TREE/$file"
done
build "$LOGS/build-restored.log" || echo "# rebuilding the unmutated tree failed (log: $LOGS/build-restored.log)"

check "the project's own src/ is untouched (checksum before|after)" "$SRC_BEFORE" "$(src_sum)"
echo "# mutation round: $(( $(date +%s) - T0 )) s; logs in $LOGS"
