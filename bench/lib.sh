# Helpers shared by the benchmark scripts (sourced): figures from numbers on stdin, one per
# line, and the figures psql and the 53G01 detail print after "@@<tag>" marker lines.
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) {print "n/a"; exit} if (NR%2) printf "%.1f\n", a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
maxof()  { sort -g | awk 'END {if (NR==0) print "n/a"; else printf "%.1f\n", $1}'; }
spread() { sort -g | awk '{a[NR]=$1} END {if (NR) printf "%.0f..%.0f", a[1], a[NR]; else print "n/a"}'; }
count()  { awk 'END {print NR}'; }
# The first "Time: X ms" after each "@@<tag>" marker line of a psql stdout log.
times_after() {  # file tag
  awk -v tag="@@$2" '
    /^@@/ { armed = ($0 == tag); next }
    armed && /^Time: [0-9.]+ ms/ { sub(/^Time: /, ""); sub(/ ms.*/, ""); print; armed = 0 }' "$1"
}
# The "after X ms" of the 53G01 DETAIL that follows each "@@<tag>" marker (stderr log).
detail_ms_after() {  # file tag
  awk -v tag="@@$2" '
    /^@@/ { armed = ($0 == tag); next }
    armed && /^DETAIL: / { print; armed = 0 }' "$1" \
  | sed -nE 's/.*attempt 1: [0-9]+ of [0-9]+ workers launched \([0-9]+ planned\), below minimum after ([0-9.]+) ms\..*/\1/p'
}
# Lines "<tag>|..." printed on stdout (function results, checks).
rows_of() { grep -E "^$2\|" "$1" | cut -d'|' -f2- || true; }
