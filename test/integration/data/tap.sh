# Sourced first by every integration script (test/integration/*.sh): how a script reports
# its checks, TAP style, and how it fails when it ran fewer checks than it declared.
#
# The convention, for scripts/test.sh and for anyone reading a script's output:
#   - the first line a script prints is its plan, "1..N": the number of checks it runs
#     when nothing is skipped;
#   - each check prints one line, "ok - WHAT" or "not ok - WHAT" (no number), possibly
#     followed by indented or "#" lines saying what was expected and found;
#   - if the checks that ran are not N (a block skipped because a prerequisite is missing,
#     an early exit, a check in a branch not taken), the script prints one more line,
#     "not ok - SCRIPT: ran K of N checks", when it exits;
#   - the exit status is 1 if any check failed or the count is off, 0 otherwise.
# A missing prerequisite is a failed check ("not ok - setup: ..."), never a silent skip.
#
# Functions:
#   plan N                     declare N checks and print "1..N" (call it before any output)
#   ok WHAT                    a check that passed
#   not_ok WHAT [DETAIL...]    a check that failed, with detail lines
#   check WHAT EXPECTED ACTUAL ok if EXPECTED = ACTUAL, else not ok showing both
#   check_true WHAT t|f FOUND  ok if t, else not ok showing FOUND
#   tap_on_exit COMMAND        the script's own cleanup, run (before the count) on exit
# Checks must run in the script's own shell (not in a subshell or a pipeline), or they
# are not counted.
TAP_NAME=$(basename "$0" .sh)
TAP_PLANNED=
TAP_RAN=0
TAP_FAILED=0
TAP_CLEANUP=

plan() {
  TAP_PLANNED=$1
  echo "1..$TAP_PLANNED"
  trap tap_exit EXIT
}
ok() {
  TAP_RAN=$((TAP_RAN + 1))
  echo "ok - $1"
}
not_ok() {
  TAP_RAN=$((TAP_RAN + 1))
  TAP_FAILED=$((TAP_FAILED + 1))
  echo "not ok - $1"
  shift
  local line
  for line in "$@"; do echo "    $line"; done
}
check() {  # check WHAT EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "expected: $2" "found:    $3"; fi
}
check_true() {  # check_true WHAT t|f FOUND
  if [ "$2" = t ]; then ok "$1"; else not_ok "$1" "found: $3"; fi
}
tap_on_exit() { TAP_CLEANUP=$1; }
tap_exit() {
  trap - EXIT
  if [ -n "$TAP_CLEANUP" ]; then eval "$TAP_CLEANUP"; fi
  if [ "$TAP_RAN" != "$TAP_PLANNED" ]; then
    echo "not ok - $TAP_NAME: ran $TAP_RAN of $TAP_PLANNED checks"
    TAP_FAILED=$((TAP_FAILED + 1))
  fi
  if [ "$TAP_FAILED" = 0 ]; then exit 0; else exit 1; fi
}
