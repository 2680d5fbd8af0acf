#!/bin/sh
# compat-check.sh: the migration-compatibility gate of a VMM's CI
# (docs/COMPAT.md, "In a VMM's CI").
#
#   compat-check.sh [--schema FILE|DIR] [--both-ways] [--strict] ARTIFACTS NEW
#
# ARTIFACTS holds the streams kept from earlier releases: one subdirectory
# per release (ARTIFACTS/1.0/*.mig, ARTIFACTS/1.1/*.mig, ...), or the
# streams themselves for a single release. NEW is a directory of streams the
# build under test wrote. For every earlier release R:
#
#   1. migstream-validate [--schema S] on each stream of R: the new build's
#      reader must load what R wrote, and its states must fit the schema;
#   2. migstream-compat R NEW: nothing R's streams carry may have changed
#      incompatibly in NEW's (devices, fields, types, versions, features).
#
# NEW's own streams are validated too. The tools come from $MIGSTREAM_TOOLS
# (a directory) if set, else from PATH, so the new build's tools can be used
# before they are installed.
#
# Exit status: 0 every check passed; 1 a stream is invalid or unreadable, or
# a release is incompatible; 2 usage error or a tool could not be run.
set -u

prog=compat-check.sh
usage() {
  echo "usage: $prog [--schema FILE|DIR] [--both-ways] [--strict] ARTIFACTS NEW" >&2
  exit 2
}

schema= compat_opts= validate_opts=
while [ $# -gt 0 ]; do
  case $1 in
    --schema) [ $# -ge 2 ] || usage; schema=$2; shift 2 ;;
    --both-ways) compat_opts="$compat_opts --both-ways"; shift ;;
    --strict) compat_opts="$compat_opts --strict"; validate_opts="--strict"; shift ;;
    --help|-h) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; break ;;
    -*) echo "$prog: unknown option '$1'" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -eq 2 ] || usage
artifacts=$1 new=$2
[ -d "$artifacts" ] || { echo "$prog: $artifacts: not a directory" >&2; exit 2; }
[ -d "$new" ] || { echo "$prog: $new: not a directory" >&2; exit 2; }

tool() {
  if [ -n "${MIGSTREAM_TOOLS:-}" ]; then echo "$MIGSTREAM_TOOLS/$1"; else echo "$1"; fi
}
validate=$(tool migstream-validate) compat=$(tool migstream-compat)

failed=0 broken=0
log=$(mktemp) || exit 2
trap 'rm -f "$log"' EXIT

# run LABEL COMMAND...: runs a check, prints one line, and the tool's report
# (indented) when the check does not pass.
run() {
  label=$1
  shift
  "$@" >"$log" 2>&1
  status=$?
  case $status in
    0) echo "ok   $label" ;;
    1) echo "FAIL $label"; sed 's/^/    /' "$log"; failed=$((failed + 1)) ;;
    126|127) echo "ERROR $label: cannot run the tool"; sed 's/^/    /' "$log"; broken=$((broken + 1)) ;;
    # exit 2: the tool could not read an input (an I/O error, say): that
    # fails the check as surely as an incompatibility does.
    *) echo "FAIL $label (exit $status)"; sed 's/^/    /' "$log"; failed=$((failed + 1)) ;;
  esac
}

# validate_dir DIR: every regular file of DIR that is not hidden.
validate_dir() {
  for f in "$1"/*; do
    [ -f "$f" ] || continue
    if [ -n "$schema" ]; then
      run "validate $f" "$validate" $validate_opts --schema "$schema" "$f"
    else
      run "validate $f" "$validate" $validate_opts "$f"
    fi
  done
}

# The releases: subdirectories of ARTIFACTS, or ARTIFACTS itself.
releases=
for d in "$artifacts"/*; do
  [ -d "$d" ] && releases="$releases $d"
done
[ -n "$releases" ] || releases=$artifacts

for r in $releases; do
  validate_dir "$r"
  run "compat $r -> $new" "$compat" $compat_opts "$r" "$new"
done
validate_dir "$new"

echo "checks failed: $failed, tools not run: $broken"
[ $broken -eq 0 ] || exit 2
[ $failed -eq 0 ] || exit 1
exit 0
